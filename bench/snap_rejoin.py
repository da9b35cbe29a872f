#!/usr/bin/env python3
"""A follower rejoins a large rzk ensemble by SNAP while the leader takes writes: the
leader's write latency during the SNAP, against the same writes without it.

Not a test: it measures and prints (bench/FINDINGS.md keeps the findings). For each rzk
binary given (e.g. one built before the streamed SNAP and one after), on a fresh 3-server
ensemble on 127.0.0.1 (direct peer links, tickTime 2000, initLimit 60, snapshotSizeFactor=-1
so the sync is a SNAP whatever the log holds):

1. `rzk bench load` fills the tree with --nodes znodes of 100 bytes, through the leader;
2. a follower is stopped (SIGKILL) and its dataDir emptied: it comes back as a new member
   (a follower restarted with its data, in the same epoch, makes an rzk leader step down
   and start an election, which would measure something else);
3. baseline: `rzk bench set` on the leader (--clients sessions, 1 request in flight each)
   for --seconds; its p50 / p99 / max;
4. the same writes again, the follower restarted 2 s in: the SNAP happens under them; the
   time until the follower serves, and the writes' p50 / p99 / max.

With --zookeeper the same runs on a 3-server Apache ZooKeeper 3.8 ensemble too (the `rzk bench`
client of the first --bin; -Xmx from --zk-heap-mb). The follower's peak resident size
(VmHWM) is read after it serves. --snap-count (default 1,000,000) keeps the number of
snapshots each server writes during the load small (disk); the work directory is removed at
the end (RZK_TEST_WORKDIR puts it elsewhere, e.g. /tmp).

--scenario diff: a follower away for --diff-txns txns (stopped with its data; the others take
that many setData of --value-size bytes on 1000 keys), then restarted: which sync its leader
chose (mntr's zk_diff_count / zk_snap_count), the time until it serves and until it has the
leader's zxid. Server defaults (snapCount, snapshotSizeFactor) unless --snap-count /
--factor are given (--factor: a zoo.cfg line for rzk, -Dzookeeper.snapshotSizeFactor for
ZooKeeper, which ignores the zoo.cfg line).

    cargo build --release -p rzk
    .venv/bin/python bench/snap_rejoin.py --bin before=/tmp/rzk-main --bin after=target/release/rzk --nodes 1000000
    RZK_TEST_WORKDIR=/tmp/sr .venv/bin/python bench/snap_rejoin.py --bin rzk=target/release/rzk --zookeeper \
        --scenario diff --nodes 100000 --diff-txns 1000000
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import zkharness as h  # noqa: E402
import zkensemble as ze  # noqa: E402

from test_catch_up import mntr, sync_counts  # noqa: E402


def bench(binary: str, args, timeout: float) -> str:
    r = subprocess.run([binary, "bench"] + args, capture_output=True, timeout=timeout)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    if r.returncode != 0:
        raise RuntimeError("rzk bench %s failed:\n%s" % (" ".join(args), out[-2000:]))
    return out


def latency_line(out: str) -> str:
    """The bench report's lines about latency and throughput."""
    lines = [l.strip() for l in out.splitlines()]
    keep = [l for l in lines if l.startswith("ops ") or l.startswith("latency")]
    return " | ".join(" ".join(l.split()) for l in keep)


def peak_rss_mib(m) -> str:
    """The member process's peak and current resident size (MiB), from /proc."""
    try:
        st = Path("/proc/%d/status" % m.proc.pid).read_text()
    except (OSError, AttributeError):
        return "?"
    v = {l.split(":")[0]: int(l.split()[1]) for l in st.splitlines() if l.startswith(("VmHWM", "VmRSS"))}
    return "peak %.0f MiB, now %.0f MiB" % (v.get("VmHWM", 0) / 1024, v.get("VmRSS", 0) / 1024)


def fsync_line(m) -> str:
    """The member's txn log fsync times since the last srst (mntr's fsynctime summary)."""
    v = mntr(m)
    if "zk_max_fsynctime" not in v:
        return ""
    return " | leader fsync avg %s ms max %s ms (%s fsyncs)" % (v.get("zk_avg_fsynctime"), v.get("zk_max_fsynctime"),
                                                             v.get("zk_cnt_fsynctime"))


def ensemble(kind: str, name: str, a, cfg: dict):
    timing = {"tickTime": 2000, "initLimit": 60, "syncLimit": 10}
    jvm = None
    if kind == "zookeeper":
        jvm = [f for f in ze.ZK_ENSEMBLE_JVM if not f.startswith("-Xmx")] + ["-Xmx%dm" % a.zk_heap_mb]
        if a.scenario == "diff" and a.factor is not None:
            # ZooKeeper reads it as a system property only (a zoo.cfg line is ignored).
            jvm.append("-Dzookeeper.snapshotSizeFactor=%s" % a.factor)
    return ze.Ensemble(kind, 3, name="snaprejoin-" + name, proxied=False, timing=timing, extra_cfg=cfg, zk_jvm=jvm)


def load(client: str, at: str, name: str, nodes: int) -> None:
    t = time.monotonic()
    bench(client, ["load", "--servers", at, "--nodes", str(nodes), "--fanout", "1000", "--clients", "8",
                   "--inflight", "64", "--value-size", "100", "--root", "/load"], timeout=3600)
    print("%s: loaded %d znodes in %.1f s" % (name, nodes, time.monotonic() - t), flush=True)


def run(name: str, kind: str, client: str, a) -> None:
    nodes, seconds, clients = a.nodes, a.seconds, a.clients
    cfg = {"snapshotSizeFactor": "-1", "snapCount": str(a.snap_count or 1_000_000)}
    with ensemble(kind, name, a, cfg) as ens:
        try:
            leader = ens.wait_for_leader()
            f = ens.followers()[0]
            at = "127.0.0.1:%d" % leader.client_port
            load(client, at, name, nodes)
            ens.wait_converged(timeout=900)
            f.kill9()
            shutil.rmtree(f.version_dir)
            set_args = ["set", "--servers", at, "--clients", str(clients), "--inflight", "1", "--keys", "1000",
                        "--root", "/w", "--duration", str(seconds)]
            h.four_letter(leader.client_port, "srst")
            base = bench(client, set_args, timeout=seconds + 120)
            print("%s: baseline writes: %s%s" % (name, latency_line(base), fsync_line(leader)), flush=True)
            h.four_letter(leader.client_port, "srst")
            p = subprocess.Popen([client, "bench"] + set_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                time.sleep(2)
                t = time.monotonic()
                f.start()
                f.wait_serving(timeout=900)
                rejoin_s = time.monotonic() - t
                rss = peak_rss_mib(f)
                out, _ = p.communicate(timeout=seconds + 900)
            finally:
                if p.poll() is None:
                    p.kill()
            print("%s: follower served %.1f s after its restart (SNAP of %d znodes); its memory: %s; the leader's: %s"
                  % (name, rejoin_s, nodes, rss, peak_rss_mib(leader)), flush=True)
            if kind == "rzk":
                got = [l for l in f.log_text().splitlines() if "received the leader's SNAP" in l]
                if got:
                    print("%s: %s" % (name, got[-1].strip()), flush=True)
            text = out.decode("utf-8", "replace")
            print("%s: writes during the SNAP: %s%s" % (name, latency_line(text) or text[-1500:], fsync_line(leader)), flush=True)
            ens.wait_converged(timeout=900)
        finally:
            ens.stop()
            shutil.rmtree(ens.workdir, ignore_errors=True)


def run_diff(name: str, kind: str, client: str, a) -> None:
    cfg = {}
    if a.snap_count:
        cfg["snapCount"] = str(a.snap_count)
    if a.factor is not None:
        cfg["snapshotSizeFactor"] = a.factor
    with ensemble(kind, name, a, cfg) as ens:
        try:
            leader = ens.wait_for_leader()
            f = ens.followers()[0]
            at = "127.0.0.1:%d" % leader.client_port
            load(client, at, name, a.nodes)
            ens.wait_converged(timeout=900)
            f.stop()
            t = time.monotonic()
            out = bench(client, ["set", "--servers", at, "--clients", "32", "--inflight", "16", "--keys", "1000",
                                 "--value-size", "100", "--root", "/w", "--ops", str(a.diff_txns)], timeout=3600)
            print("%s: %d txns while the follower was away, in %.1f s: %s" % (name, a.diff_txns, time.monotonic() - t,
                                                                            latency_line(out)), flush=True)
            before = sync_counts(ens)
            snaps = sum(p.stat().st_size for p in leader.version_dir.glob("snapshot.*"))
            logs = sum(p.stat().st_size for p in leader.version_dir.glob("log.*"))
            print("%s: the leader's dataDir: snapshots %.0f MiB, logs %.0f MiB (files)" % (name, snaps / 2**20, logs / 2**20), flush=True)
            target = leader.zxid()
            t = time.monotonic()
            f.start()
            f.wait_serving(timeout=900)
            served = time.monotonic() - t
            h.wait_until(lambda: (f.zxid() or 0) >= target, 900, 0.05, "the follower to reach the leader's zxid")
            caught = time.monotonic() - t
            after = sync_counts(ens)
            how = "+".join(k for k, n in (("DIFF", after[0] - before[0]), ("SNAP", after[1] - before[1])) if n > 0) or "?"
            print("%s: sync: %s (diff %d->%d, snap %d->%d); served %.1f s after its restart, at the leader's zxid after %.1f s; its memory: %s"
                  % (name, how, before[0], after[0], before[1], after[1], served, caught, peak_rss_mib(f)), flush=True)
            # What the leader logged about syncing learners (rzk's words, ZooKeeper's LearnerHandler).
            keys = ("SNAP", "DIFF", "no DIFF", "Synchronizing with", "Sending", "sizeLimit", "txnlog", "TxnLog")
            for line in leader.log_text().splitlines()[-4000:]:
                if any(k in line for k in keys):
                    print("%s: leader: %s" % (name, line.strip()[:300]), flush=True)
        finally:
            ens.stop()
            shutil.rmtree(ens.workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="name=path of an rzk binary (repeatable)")
    ap.add_argument("--zookeeper", action="store_true", help="also run Apache ZooKeeper 3.8 (after the rzk binaries)")
    ap.add_argument("--scenario", choices=("snap", "diff"), default="snap")
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=int, default=20, help="measured seconds of writes, each run")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--snap-count", type=int, default=0, help="snapCount (snap: default 1,000,000; diff: the server's default)")
    ap.add_argument("--factor", default=None, help="diff: snapshotSizeFactor (default: the server's, 0.33)")
    ap.add_argument("--diff-txns", type=int, default=1_000_000)
    ap.add_argument("--zk-heap-mb", type=int, default=4096)
    a = ap.parse_args()
    runs = []
    for spec in a.bin:
        name, _, path = spec.partition("=")
        runs.append((name, "rzk", str(Path(path).resolve())))
    if a.zookeeper:
        runs.append(("zookeeper", "zookeeper", runs[0][2]))
    for name, kind, binary in runs:
        os.environ["RZK_BIN"] = binary
        (run_diff if a.scenario == "diff" else run)(name, kind, binary, a)
    h.kill_all_started()
    return 0


if __name__ == "__main__":
    sys.exit(main())
