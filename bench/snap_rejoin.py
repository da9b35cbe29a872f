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

    cargo build --release -p rzk
    .venv/bin/python bench/snap_rejoin.py --bin before=/tmp/rzk-main --bin after=target/release/rzk --nodes 1000000
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


def run(name: str, binary: str, nodes: int, seconds: int, clients: int) -> None:
    os.environ["RZK_BIN"] = binary
    timing = {"tickTime": 2000, "initLimit": 60, "syncLimit": 10}
    cfg = {"snapshotSizeFactor": "-1"}
    with ze.Ensemble("rzk", 3, name="snaprejoin-" + name, proxied=False, timing=timing, extra_cfg=cfg) as ens:
        leader = ens.wait_for_leader()
        f = ens.followers()[0]
        at = "127.0.0.1:%d" % leader.client_port
        t = time.monotonic()
        bench(binary, ["load", "--servers", at, "--nodes", str(nodes), "--fanout", "1000", "--clients", "8",
                       "--inflight", "64", "--value-size", "100", "--root", "/load"], timeout=3600)
        print("%s: loaded %d znodes in %.1f s" % (name, nodes, time.monotonic() - t), flush=True)
        ens.wait_converged(timeout=600)
        f.kill9()
        shutil.rmtree(f.version_dir)
        set_args = ["set", "--servers", at, "--clients", str(clients), "--inflight", "1", "--keys", "1000",
                    "--root", "/w", "--duration", str(seconds)]
        base = bench(binary, set_args, timeout=seconds + 120)
        print("%s: baseline writes: %s" % (name, latency_line(base)), flush=True)
        p = subprocess.Popen([binary, "bench"] + set_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(2)
            t = time.monotonic()
            f.start()
            f.wait_serving(timeout=600)
            rejoin_s = time.monotonic() - t
            out, _ = p.communicate(timeout=seconds + 600)
        finally:
            if p.poll() is None:
                p.kill()
        print("%s: follower served %.1f s after its restart (SNAP of %d znodes)" % (name, rejoin_s, nodes), flush=True)
        text = out.decode("utf-8", "replace")
        print("%s: writes during the SNAP: %s" % (name, latency_line(text) or text[-1500:]), flush=True)
        ens.wait_converged(timeout=600)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="name=path of an rzk binary (repeatable)")
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=int, default=20, help="measured seconds of writes, each run")
    ap.add_argument("--clients", type=int, default=4)
    a = ap.parse_args()
    for spec in a.bin:
        name, _, path = spec.partition("=")
        run(name, str(Path(path).resolve()), a.nodes, a.seconds, a.clients)
    h.kill_all_started()
    return 0


if __name__ == "__main__":
    sys.exit(main())
