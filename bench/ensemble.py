#!/usr/bin/env python3
"""3-server rzk against 3-server Apache ZooKeeper 3.8, side by side on this machine.

Not a test: it measures and writes a report (docs/BENCH-ensemble.md by default).

For each repetition, each kind (the order alternates between repetitions) gets a fresh
3-server ensemble on 127.0.0.1 from the same zoo.cfg (tickTime/initLimit/syncLimit of
ZooKeeper's zoo_sample.cfg unless told otherwise, forceSync=yes, direct peer links, no
proxies), and then:

1. throughput and latency: `rzk bench <workload> --servers s1,s2,s3` (sessions spread
   round-robin over the three, so two thirds of the writes go through followers), for
   the read workload (get), the write workloads (set, create) and mixed (90% reads);
   ops/s, p50/p99/p99.9 from the bench's own histogram, and the CPU the three servers
   used together;
2. fail-over: writers (one session per member to start with, each a synchronous setData
   loop with fail-over to the other members, bench clients are Python) run steadily, the
   leader is killed with SIGKILL, and the report gives the time from the kill to
   - the first write (started after the kill) acknowledged by anyone,
   - every writer having such a write acknowledged,
   - a new leader reported by `srvr`;
   the killed server is restarted and the ensemble converges before the next kill.

    bench/compare-ensemble.sh                          # builds rzk (release), runs this
    bench/compare-ensemble.sh --kinds zookeeper --reps 1 --duration 5 --kills 3
    .venv/bin/python bench/ensemble.py --help

rzk's binary: $RZK_BIN, default target/release/rzk (the `rzk bench` load generator is the
same binary, whatever the servers are).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
import zkharness as h  # noqa: E402
import zkensemble as ze  # noqa: E402
from compare import fmt_ms, fmt_num, machine, median, ratio  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")

WORKLOADS = {
    "get": [],
    "mixed": ["--read-ratio", "0.9"],
    "set": [],
    "create": [],
}


def rzk_bin() -> Path:
    return Path(os.environ.get("RZK_BIN") or (REPO / "target" / "release" / "rzk"))


def cpu_s(pid: int) -> float:
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def group_cpu_s(ens: ze.Ensemble) -> float:
    """CPU seconds of every running member (java or rzk is the group leader's child or
    itself; for `java` run directly the pid is the JVM)."""
    return sum(cpu_s(m.proc.pid) for m in ens.running())


def start_ensemble(args, kind: str, work: Path) -> ze.Ensemble:
    os.environ["RZK_BIN"] = str(rzk_bin())
    ens = ze.Ensemble(
        kind, 3, proxied=False, name="bench", workdir=work,
        extra_cfg={"forceSync": "yes", "maxClientCnxns": "0", "snapCount": str(args.snap_count)},
        zk_jvm=["-Xmx%dm" % args.zk_heap, "-Djava.awt.headless=true"],
        log_level="WARN", env={"RZK_LOG": "warn"},
        timing={"tickTime": args.tick, "initLimit": args.init_limit, "syncLimit": args.sync_limit},
    )
    try:
        ens.start(timeout=120)
    except BaseException:
        ens.stop()
        raise
    return ens


def run_bench(args, ens: ze.Ensemble, workload: str, log_dir: Path, tag: str) -> dict:
    opts = {
        "--servers": ",".join("127.0.0.1:%d" % m.client_port for m in ens.members),
        "--clients": str(args.clients),
        "--inflight": str(args.inflight),
        "--value-size": str(args.value_size),
        "--threads": str(args.client_threads),
        "--duration": str(args.duration),
        "--warmup": str(args.warmup),
    }
    extra = WORKLOADS[workload]
    opts.update(dict(zip(extra[::2], extra[1::2])))
    cmd = [str(rzk_bin()), "bench", workload, "--json", "--quiet"]
    for k, v in opts.items():
        cmd += [k, v]
    c0, t0 = group_cpu_s(ens), time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=args.duration + args.warmup + 600)
    c1, t1 = group_cpu_s(ens), time.monotonic()
    (log_dir / ("%s.stderr" % tag)).write_bytes(r.stderr)
    if r.returncode != 0:
        raise RuntimeError("rzk bench %s failed (%d): %s" % (workload, r.returncode, r.stderr.decode(errors="replace")[-2000:]))
    res = json.loads(r.stdout)
    # whole-run CPU (setup and warm-up included) of the three servers together
    res["servers_cpu_percent"] = 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else None
    res["command"] = cmd
    (log_dir / ("%s.json" % tag)).write_text(json.dumps(res, indent=1))
    return res


def failover(args, ens: ze.Ensemble, log_dir: Path, tag: str) -> List[dict]:
    """Kill the leader `args.kills` times under a steady synchronous write load."""
    trials = []
    zk = ze.FailoverClient("setup", ens.members)
    for i in range(args.writers):
        zk.create("/failover-w%d" % i, b"")
    zk.close()
    for k in range(args.kills):
        ens.wait_for_leader(120)
        ens.wait_converged(120)
        hist: List[dict] = []
        stop = threading.Event()
        clients = []

        def write(i: int) -> None:
            c = ze.FailoverClient("w%d" % i, ens.members, hist, retry_sleep=0.005, io_timeout=10.0)
            c.next = i  # writer i starts on member i % 3
            clients.append(c)
            n = 0
            while not stop.is_set():
                n += 1
                c.set("/failover-w%d" % i, b"%d" % n, connect_timeout=120)
            c.close()

        threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(args.writers)]
        for t in threads:
            t.start()
        time.sleep(args.steady)
        leader = ens.wait_for_leader(30)
        elected = {}

        def watch_election() -> None:
            while "t" not in elected and not stop.is_set():
                for m in ens.running():
                    if m.mode() == "leader":
                        elected["t"] = time.monotonic()
                        elected["sid"] = m.sid
                        return
                time.sleep(0.01)

        t_kill = time.monotonic()
        leader.kill9()
        watcher = threading.Thread(target=watch_election, daemon=True)
        watcher.start()

        def acked_after(name: str) -> Optional[float]:
            ends = [o["end"] for o in list(hist) if o["client"] == name and o["status"] == "ok" and o["start"] > t_kill]
            return min(ends) if ends else None

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(acked_after("w%d" % i) is not None for i in range(args.writers)):
                break
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(30)
        watcher.join(5)
        firsts = [acked_after("w%d" % i) for i in range(args.writers)]
        got = [f for f in firsts if f is not None]
        before = [o for o in hist if o["status"] == "ok" and o["end"] < t_kill]
        trial = {
            "kill": k + 1,
            "killed_sid": leader.sid,
            "new_leader_sid": elected.get("sid"),
            "first_ack_s": (min(got) - t_kill) if got else None,
            "all_writers_s": (max(got) - t_kill) if len(got) == len(firsts) else None,
            "leader_s": (elected["t"] - t_kill) if "t" in elected else None,
            "writes_per_s_before": len(before) / args.steady if args.steady else None,
            "unknown_outcome": sum(1 for o in hist if o["status"] == "unknown"),
        }
        trials.append(trial)
        print("  kill %d: s%d killed; first write acknowledged after %s s, all %d writers after %s s, leader s%s after %s s"
              % (k + 1, leader.sid, _s(trial["first_ack_s"]), args.writers, _s(trial["all_writers_s"]),
                 trial["new_leader_sid"], _s(trial["leader_s"])), flush=True)
        leader.start()
        leader.wait_serving(120)
    (log_dir / ("%s-failover.json" % tag)).write_text(json.dumps(trials, indent=1))
    return trials


def _s(v) -> str:
    return "n/a" if v is None else "%.3f" % v


# ----------------------------------------------------------------------------------------


def build_report(args, runs, failovers, info, started: str, cmdline: str, errors) -> str:
    kinds = [k for k in args.kinds if runs.get(k) or failovers.get(k)]
    L = []
    L.append("# 3-server rzk vs 3-server Apache ZooKeeper 3.8: benchmark\n")
    L.append("Generated by `bench/compare-ensemble.sh` (see `bench/ensemble.py`); do not edit by hand.\n")
    L.append("- **Date:** %s UTC" % started)
    L.append("- **Machine:** %s cores, %s, %s RAM, Linux %s; load average at start %s" % (
        info["nproc"], info["cpu"], info["ram"], info["kernel"], info["load"]))
    names = {"zookeeper": "three Apache ZooKeeper 3.8.0 (Debian, %s, `-Xmx%dm`, default GC)" % (info["java"], args.zk_heap),
             "rzk": "three rzk `%s` (release build)" % info["rzk"]}
    L.append("- **Servers:** %s, all on this machine with the client" % " / ".join(names[k] for k in kinds))
    L.append("- **zoo.cfg:** `tickTime=%d`, `initLimit=%d`, `syncLimit=%d`, `forceSync=yes`, `snapCount=%d`, "
             "`server.1..3=127.0.0.1:<q>:<e>` (direct loopback links), same file for both" % (
                 args.tick, args.init_limit, args.sync_limit, args.snap_count))
    L.append("- **Load:** `rzk bench`, %d sessions x %d in flight spread over the three servers, %d-byte values; "
             "%d s warm-up + %d s measured per run; %d repetition(s), kinds alternating, a fresh ensemble each" % (
                 args.clients, args.inflight, args.value_size, args.warmup, args.duration, args.reps))
    L.append("- **Fail-over:** %d synchronous writers (Python, raw protocol, one per member at first, fail-over to "
             "the others), leader killed with SIGKILL %d time(s) per ensemble after %.0f s of steady writing" % (
                 args.writers, args.kills, args.steady))
    L.append("- **Command:** `%s`" % cmdline)
    if "rzk" not in kinds:
        L.append("\n> rzk was not measured in this run (`--kinds %s`): these are Apache ZooKeeper's numbers alone, "
                 "taken with the same settings rzk will get." % ",".join(args.kinds))
    if errors:
        L.append("\n**Failures:**\n")
        for e in errors:
            L.append("- %s" % e)
    L.append("\n## Throughput and latency (medians over repetitions)\n")
    hdr = "| workload |"
    sep = "|---|"
    for k in kinds:
        hdr += " %s ops/s | %s p50 ms | %s p99 ms | %s p99.9 ms | %s servers CPU %% |" % ((k,) * 5)
        sep += "---:|---:|---:|---:|---:|"
    if len(kinds) == 2:
        hdr += " ops/s %s/%s | p99 %s/%s |" % (kinds[1], kinds[0], kinds[1], kinds[0])
        sep += "---:|---:|"
    L.append(hdr)
    L.append(sep)
    for w in args.workloads:
        row = "| %s |" % w
        meds = {}
        for k in kinds:
            rs = runs.get(k, {}).get(w, [])
            ops = median([r["ops_per_sec"] for r in rs])
            p50 = median([r["latency_us"].get("p50") for r in rs])
            p99 = median([r["latency_us"].get("p99") for r in rs])
            p999 = median([r["latency_us"].get("p999") for r in rs])
            cpu = median([r.get("servers_cpu_percent") for r in rs])
            meds[k] = (ops, p99)
            row += " %s | %s | %s | %s | %s |" % (fmt_num(ops), fmt_ms(p50), fmt_ms(p99), fmt_ms(p999), fmt_num(cpu))
        if len(kinds) == 2:
            row += " %s | %s |" % (ratio(meds[kinds[1]][0], meds[kinds[0]][0]), ratio(meds[kinds[1]][1], meds[kinds[0]][1]))
        L.append(row)
    L.append("\nErrors reported by the load generator: %s." % ", ".join(
        "%s %s: %d" % (k, w, sum(r.get("error_count", 0) for r in runs.get(k, {}).get(w, [])))
        for k in kinds for w in args.workloads))
    L.append("\n## Leader fail-over: SIGKILL of the leader under write load\n")
    L.append("Seconds from the kill. *First write*: the first write started after the kill and acknowledged "
             "(by any server, to any writer); *all writers*: every writer has had such a write acknowledged; "
             "*leader*: a survivor's `srvr` says `Mode: leader`. Median (min - max) over %d kill(s) x %d repetition(s).\n"
             % (args.kills, args.reps))
    L.append("| | first write acknowledged s | all writers writing again s | new leader s | writes/s before the kill | every trial: first write acknowledged s |")
    L.append("|---|---:|---:|---:|---:|---|")
    for k in kinds:
        ts = failovers.get(k, [])

        def cell(key, digits=3):
            xs = [t[key] for t in ts if t.get(key) is not None]
            if not xs:
                return "n/a"
            return "%.*f (%.*f - %.*f)" % (digits, statistics.median(xs), digits, min(xs), digits, max(xs))

        missing = sum(1 for t in ts if t.get("all_writers_s") is None)
        every = ", ".join("%.2f" % x for x in sorted(t["first_ack_s"] for t in ts if t.get("first_ack_s") is not None))
        L.append("| %s | %s | %s | %s | %s | %s |" % (k, cell("first_ack_s"), cell("all_writers_s"), cell("leader_s"),
                                                     cell("writes_per_s_before", 0), every)
                 + (" %d kill(s) without full recovery |" % missing if missing else ""))
    L.append("\nEvery run's JSON (rzk bench output, fail-over trials) is in `%s`." % args.log_dir_rel)
    return "\n".join(L) + "\n"


def report_from(summary: Path, out: Path) -> int:
    d = json.loads(summary.read_text())
    args = argparse.Namespace(**d["settings"])
    report = build_report(args, d["runs"], d["failovers"], d["info"], d["started"], d["cmdline"], d["errors"])
    out.write_text(report)
    print(report)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="zookeeper,rzk", help="comma separated: zookeeper, rzk")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma separated, from: %s" % ", ".join(WORKLOADS))
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--client-threads", type=int, default=1)
    ap.add_argument("--kills", type=int, default=3, help="leader kills per ensemble (0: skip the fail-over part)")
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--steady", type=float, default=3.0, help="seconds of writing before each kill")
    ap.add_argument("--tick", type=int, default=2000)
    ap.add_argument("--init-limit", type=int, default=10)
    ap.add_argument("--sync-limit", type=int, default=5)
    ap.add_argument("--snap-count", type=int, default=100000)
    ap.add_argument("--zk-heap", type=int, default=1024, help="ZooKeeper -Xmx in MiB, per server")
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCH-ensemble.md"))
    ap.add_argument("--work", default=str(REPO / "bench" / ".work"))
    ap.add_argument("--report-from", metavar="SUMMARY_JSON",
                    help="write the report from an earlier run's results/summary.json (its settings) without measuring")
    args = ap.parse_args()
    if args.report_from:
        return report_from(Path(args.report_from), Path(args.out))
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %r" % w)
    if not rzk_bin().is_file():
        ap.error("no rzk binary at %s (cargo build --release -p rzk, or set RZK_BIN)" % rzk_bin())
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
    work = Path(args.work) / ("ensemble-%s" % stamp)
    log_dir = work / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        args.log_dir_rel = str(log_dir.relative_to(REPO))
    except ValueError:
        args.log_dir_rel = str(log_dir)
    info = machine()
    cmdline = "bench/compare-ensemble.sh " + " ".join(sys.argv[1:])
    runs: Dict[str, Dict[str, List[dict]]] = {k: {w: [] for w in args.workloads} for k in args.kinds}
    failovers: Dict[str, List[dict]] = {k: [] for k in args.kinds}
    errors: List[str] = []
    for rep in range(args.reps):
        order = args.kinds if rep % 2 == 0 else list(reversed(args.kinds))
        for kind in order:
            print("== rep %d/%d: 3-server %s" % (rep + 1, args.reps, kind), flush=True)
            ens = None
            try:
                ens = start_ensemble(args, kind, work / ("%s-rep%d" % (kind, rep + 1)))
                for w in args.workloads:
                    res = run_bench(args, ens, w, log_dir, "%s-rep%d-%s" % (kind, rep + 1, w))
                    runs[kind][w].append(res)
                    lat = res["latency_us"]
                    print("  %-7s %10s ops/s  p50 %s ms  p99 %s ms  servers CPU %s%%  errors %d" % (
                        w, fmt_num(res["ops_per_sec"]), fmt_ms(lat.get("p50")), fmt_ms(lat.get("p99")),
                        fmt_num(res.get("servers_cpu_percent")), res.get("error_count", 0)), flush=True)
                if args.kills:
                    failovers[kind] += failover(args, ens, log_dir, "%s-rep%d" % (kind, rep + 1))
            except Exception as e:  # report what failed and go on with the other kind
                msg = "%s, repetition %d: %s" % (kind, rep + 1, str(e).splitlines()[0] if str(e) else type(e).__name__)
                errors.append(msg)
                print("  FAILED: %s" % e, flush=True)
            finally:
                if ens is not None:
                    ens.stop()
    report = build_report(args, runs, failovers, info, started, cmdline, errors)
    out = Path(args.out)
    out.write_text(report)
    settings = {k: v for k, v in vars(args).items() if k != "report_from"}
    (log_dir / "summary.json").write_text(json.dumps({"runs": runs, "failovers": failovers, "info": info,
                                                      "errors": errors, "settings": settings, "started": started,
                                                      "cmdline": cmdline}, indent=1, default=str))
    print("\n" + report)
    print("written to %s" % out)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
