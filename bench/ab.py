#!/usr/bin/env python3
"""Two rzk binaries against each other (an A/B), on this machine, with one load generator.

Answers "did this change make rzk slower?" where bench/compare.sh answers "how does rzk compare
with ZooKeeper?": ZooKeeper's own numbers move between runs of compare.sh far more than rzk's, so
a ratio there cannot show a few percent either way. Here the two servers alternate (A first in
odd repetitions, B first in even ones), each fresh for every repetition, and the same client
binary (RZK_BENCH_BIN, or B) drives both. Printed: every run, then per workload the median, the
spread and B's median over A's.

    bench/ab.py --a /tmp/rzk-old --b target/release/rzk --workloads get,set --reps 10
    bench/ab.py --a /tmp/rzk-old --b target/release/rzk --restart --nodes 1000000 --reps 10

With --restart it loads N znodes once (with B), then for each repetition copies that dataDir,
starts A or B on the copy and times until a getData of the last znode succeeds.

To make A from an older commit:
    git worktree add /tmp/old <rev> && cargo build --release --manifest-path /tmp/old/Cargo.toml
(the binary is then /tmp/old/target/release/rzk). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (Proc, bench, time_to_serve)


class BinProc(compare.Proc):
    """An rzk server process run from a given binary."""

    def __init__(self, binary: Path, workdir: Path, tick_ms: int):
        super().__init__("rzk", workdir, tick_ms, 0)
        self.binary = binary

    def command(self) -> List[str]:
        return [str(self.binary), "server", "--config", str(self.workdir / "zoo.cfg")]


def order(rep: int, a: Path, b: Path) -> List[tuple]:
    pair = [("A", a), ("B", b)]
    return pair if rep % 2 == 1 else pair[::-1]


def throughput(args, work: Path) -> Dict[str, Dict[str, List[float]]]:
    out: Dict[str, Dict[str, List[float]]] = {}
    for w in args.workloads.split(","):
        out[w] = {"A": [], "B": []}
        for rep in range(1, args.reps + 1):
            for tag, binary in order(rep, args.a, args.b):
                proc = BinProc(binary, work / ("%s-%s-%d" % (w, tag, rep)), args.tick_time)
                proc.workdir.mkdir(parents=True)
                try:
                    proc.start()
                    res = compare.bench(args, proc, w, dict(compare.WORKLOADS).get(w, []), proc.workdir, "bench")
                finally:
                    proc.stop()
                    shutil.rmtree(proc.workdir, ignore_errors=True)
                out[w][tag].append(res["ops_per_sec"])
                print("%-8s rep %2d  %s  %10.0f ops/s  p99 %s us" % (w, rep, tag, res["ops_per_sec"], res.get("latency_us", {}).get("p99")), flush=True)
    return out


def restart(args, work: Path) -> Dict[str, Dict[str, List[float]]]:
    base = BinProc(args.b, work / "base", args.tick_time)
    base.workdir.mkdir(parents=True)
    try:
        base.start()
        res = compare.bench(args, base, "load", ["--nodes", str(args.nodes), "--fanout", "1000"], base.workdir, "load")
    finally:
        base.stop()
    last = res["extra"]["last_path"]
    print("loaded %d znodes; probing %s" % (res["extra"]["nodes_created"], last), flush=True)
    times: Dict[str, List[float]] = {"A": [], "B": []}
    for rep in range(1, args.reps + 1):
        for tag, binary in order(rep, args.a, args.b):
            run = work / "run"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(base.workdir / "data", run / "data")
            proc = BinProc(binary, run, args.tick_time)
            try:
                took, _ = compare.time_to_serve(proc, proc.spawn(), last, 300)
            finally:
                proc.stop()
            if took is None:
                raise RuntimeError("%s did not serve %s after restart (see %s)" % (binary, last, run / "server.log"))
            times[tag].append(took)
            print("restart  rep %2d  %s  %8.3f s" % (rep, tag, took), flush=True)
    return {"restart_s": times}


def summary(results: Dict[str, Dict[str, List[float]]], lower_is_better: bool) -> None:
    print("\n%-10s %12s %12s %8s   %s" % ("workload", "A median", "B median", "B/A", "spread (min..max) A | B"))
    for w, r in results.items():
        ma, mb = statistics.median(r["A"]), statistics.median(r["B"])
        print("%-10s %12.3f %12.3f %8.3f   %.3f..%.3f | %.3f..%.3f%s" % (
            w, ma, mb, mb / ma, min(r["A"]), max(r["A"]), min(r["B"]), max(r["B"]),
            "   (lower is better)" if lower_is_better else ""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=Path, required=True, help="the baseline rzk binary")
    p.add_argument("--b", type=Path, required=True, help="the candidate rzk binary")
    p.add_argument("--workloads", default="get,set,mixed,create,churn")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--restart", action="store_true", help="time restarts with --nodes znodes instead")
    p.add_argument("--nodes", type=int, default=1000000)
    p.add_argument("--duration", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--inflight", type=int, default=16)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--client-threads", type=int, default=1)
    p.add_argument("--tick-time", type=int, default=2000)
    p.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = p.parse_args()
    args.a, args.b = args.a.resolve(), args.b.resolve()
    if not os.environ.get("RZK_BENCH_BIN"):
        os.environ["RZK_BENCH_BIN"] = str(args.b)
    work = Path(tempfile.mkdtemp(prefix="rzk-ab-"))
    try:
        results = restart(args, work) if args.restart else throughput(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary(results, args.restart)
    if args.json:
        args.json.write_text(json.dumps({"a": str(args.a), "b": str(args.b), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
