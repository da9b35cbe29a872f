#!/usr/bin/env python3
"""Durability benchmark: rzk vs Apache ZooKeeper 3.8 on the same machine and disk.

Not a test: it prints numbers (and a Markdown table with --markdown). Measures, with
fsync on (forceSync=yes, the default for both):

1. write throughput and latency: P client processes, each with W async creates in
   flight (kazoo), 100-byte values, for S seconds on an empty dataDir;
2. restart time with N znodes: both servers start from the same dataDir (one snapshot of
   N znodes written by `gen_tree`), timed from exec to the first answered read; RSS then;
3. the snapshot's effect on write latency: one synchronous writer on the N-znode tree,
   with snapCount small enough that snapshots of the whole tree are taken during the
   run, against the same run with snapshots effectively off.

    bench/durability.sh            # builds release binaries, then runs this
    .venv/bin/python bench/durability.py --znodes 1000000 --seconds 10 --markdown

The client is Python (kazoo), which caps what one process can drive; both servers get
the same clients. ZooKeeper runs with -Xmx6g -XX:+UseG1GC (its harness defaults are
sized for tests, not 1M znodes).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import zkharness as h  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402

h.JVM_FLAGS[:] = ["-Xms1g", "-Xmx6g", "-XX:+UseG1GC", "-XX:-UsePerfData", "-Djava.awt.headless=true"]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


def rss_mb(pid: int) -> float:
    """RSS of the process group leader's newest descendant java/rzk (the server)."""
    best = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = (d / "stat").read_text().split()
            if int(st[4]) != pid and int(d.name) != pid:  # process group
                continue
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            continue
    return best / 1024.0


def writer_proc(hosts, seconds, window, tag, q):
    zk = KazooClient(hosts=hosts, timeout=30)
    zk.start(timeout=30)
    import threading

    sem = threading.Semaphore(window)
    lat = []
    lock = threading.Lock()
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        sem.acquire()
        i += 1
        t0 = time.monotonic()

        def done(a, t0=t0):
            try:
                a.get()
                with lock:
                    lat.append(time.monotonic() - t0)
            except Exception:
                pass
            sem.release()

        zk.create_async("/w/%s-%d" % (tag, i), b"v" * 100).rawlink(done)
    for _ in range(window):
        sem.acquire(timeout=30)
    zk.stop()
    q.put(lat)


def throughput(s: h.Server, seconds: float, procs: int, window: int):
    zk = KazooClient(hosts=s.hosts, timeout=30)
    zk.start(timeout=30)
    zk.ensure_path("/w")
    zk.stop()
    q = mp.Queue()
    ps = [mp.Process(target=writer_proc, args=(s.hosts, seconds, window, "p%d" % i, q)) for i in range(procs)]
    t0 = time.monotonic()
    for p in ps:
        p.start()
    lat = []
    for _ in ps:
        lat.extend(q.get(timeout=seconds + 120))
    for p in ps:
        p.join()
    elapsed = time.monotonic() - t0
    return len(lat) / max(seconds, elapsed - 1.0), pct(lat, 50) * 1000, pct(lat, 99) * 1000


def sync_writer(s: h.Server, seconds: float):
    zk = KazooClient(hosts=s.hosts, timeout=30)
    zk.start(timeout=30)
    zk.ensure_path("/s")
    lat = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        t0 = time.monotonic()
        zk.set("/s", b"x%d" % i)
        lat.append(time.monotonic() - t0)
    zk.stop()
    return pct(lat, 50) * 1000, pct(lat, 99) * 1000, max(lat) * 1000, len(lat)


def start_on(kind: str, src: Path | None, **cfg) -> tuple:
    wd = h.make_workdir("bench-" + kind)
    if src is not None:
        shutil.copytree(src, wd / "data")
    s = h.make_server(kind, workdir=wd, extra_cfg={k: str(v) for k, v in cfg.items()})
    s.keep_data = True
    s.ready_timeout = 600
    t0 = time.monotonic()
    s.start()
    zk = KazooClient(hosts=s.hosts, timeout=60)
    zk.start(timeout=600)
    if src is not None:
        zk.get("/bench/d0/n0")
    ready = time.monotonic() - t0
    zk.stop()
    return s, wd, ready


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--kinds", default="rzk,zookeeper")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("RZK_BIN", str(ROOT / "target" / "release" / "rzk"))
    gen = ROOT / "target" / "release" / "examples" / "gen_tree"
    tree = h.WORK_ROOT / ("bench-tree-%d" % a.znodes)
    if not tree.exists():
        subprocess.run([str(gen), str(tree), str(a.znodes)], check=True)
    rows = {}
    for kind in a.kinds.split(","):
        r = rows[kind] = {}
        # 1. throughput and latency, fsync on, empty dataDir
        s, wd, _ = start_on(kind, None)
        r["tput"], r["p50"], r["p99"] = throughput(s, a.seconds, a.procs, a.window)
        s.cleanup()
        shutil.rmtree(wd, ignore_errors=True)
        # 2. restart time with N znodes
        s, wd, r["restart"] = start_on(kind, tree)
        r["rss"] = rss_mb(s.proc.pid)
        # 3. single writer latency without snapshots (same server, snapCount default 100000)
        r["nosnap"] = sync_writer(s, a.seconds)
        s.cleanup()
        shutil.rmtree(wd, ignore_errors=True)
        # 3b. with snapshots of the N-znode tree during the run
        s, wd, _ = start_on(kind, tree, snapCount=2000)
        r["snap"] = sync_writer(s, a.seconds)
        log = (s.workdir / "server.log").read_text(errors="replace") + (
            (s.workdir / "zookeeper.log").read_text(errors="replace") if (s.workdir / "zookeeper.log").exists() else "")
        r["snaps"] = log.count("snapshot written") + log.count("Snapshotting:")
        s.cleanup()
        shutil.rmtree(wd, ignore_errors=True)
        print(kind, r, flush=True)
    if a.markdown:
        print("\n| | " + " | ".join(rows) + " |\n|---|" + "---|" * len(rows))
        def line(name, f):
            print("| %s | %s |" % (name, " | ".join(f(rows[k]) for k in rows)))
        line("write throughput, fsync on (creates/s, %d procs x %d in flight)" % (a.procs, a.window), lambda r: "%.0f" % r["tput"])
        line("write latency p50 / p99 (ms)", lambda r: "%.2f / %.2f" % (r["p50"], r["p99"]))
        line("restart with %d znodes (s, exec to first read)" % a.znodes, lambda r: "%.2f" % r["restart"])
        line("RSS after restart (MB)", lambda r: "%.0f" % r["rss"])
        line("1 writer, no snapshot: p50 / p99 / max (ms)", lambda r: "%.2f / %.2f / %.1f" % r["nosnap"][:3])
        line("1 writer, snapshots of the whole tree during the run: p50 / p99 / max (ms)", lambda r: "%.2f / %.2f / %.1f" % r["snap"][:3])
        line("snapshots taken during that run", lambda r: "%d" % r["snaps"])


if __name__ == "__main__":
    main()
