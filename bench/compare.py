#!/usr/bin/env python3
"""rzk against Apache ZooKeeper 3.8, side by side, on this machine.

Starts Apache ZooKeeper (Debian's jars, java) and rzk from the same zoo.cfg settings
(standalone, forceSync=yes, same tickTime), runs the same `rzk bench` workloads against each
in alternation (ZooKeeper first in odd repetitions, rzk first in even ones), each server fresh
for every repetition, and writes a markdown report of medians (docs/BENCH.md), a PNG chart of
latency distributions, and the raw JSON of every run.

Also measured, once per server: resident memory per znode after loading N znodes (RSS delta /
N) and the restart time with that tree (from process start until a getData of the last
loaded znode succeeds).

Run it with bench/compare.sh (which builds rzk and makes the venv with matplotlib), e.g.
    bench/compare.sh                       # the full comparison (about 15 minutes)
    bench/compare.sh --reps 1 --duration 2 --nodes 100000 --out /tmp/b.md   # a quick look
    bench/compare.sh --tls --nodes 0 --out docs/BENCH-tls.md --no-readme     # over TLS

With --tls both servers serve a secureClientPort (ZooKeeper with its Netty connection factory,
the only one that speaks TLS; rzk with the same PEM key and trust stores, ssl.clientAuth=need)
and `rzk bench` connects to it with a client certificate (tests/tlspki.py makes the PKI).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import zkharness  # noqa: E402  (server command lines, free ports, raw jute client)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# (name, extra `rzk bench` arguments). Order within a server's lifetime: reads first, then
# writes that grow the tree, then the session workloads.
WORKLOADS = [
    ("get", []),
    ("exists", []),
    ("children", ["--parents", "4", "--width", "1000"]),
    ("mixed", ["--read-ratio", "0.9"]),
    ("set", []),
    # One session, one request at a time: the latency of a single fsync'ed write.
    ("create1", ["--clients", "1", "--inflight", "1"]),
    ("create", []),
    ("multi", ["--multi-size", "5"]),
    ("watch", ["--clients", "100", "--inflight", "1"]),
    ("churn", ["--clients", "8", "--inflight", "1"]),
    ("expiry", ["--clients", "100", "--ephemerals", "10", "--ops", "1"]),
]
# What each workload's "ops/s" counts.
UNIT = {"watch": "rounds/s", "churn": "sessions/s", "expiry": "rounds"}
# Rows that run another `rzk bench` workload with their own settings.
WORKLOAD_OF = {"create1": "create"}
LABEL = {"create1": "create, 1 session x 1 in flight"}


# ----------------------------------------------------------------------------------------
# servers
# ----------------------------------------------------------------------------------------


class Proc:
    """One server process (ZooKeeper or rzk) with its own work dir, started from zoo.cfg."""

    def __init__(self, kind: str, workdir: Path, tick_ms: int, zk_heap_mb: int, tls=None):
        self.kind = kind
        # With TLS (a tlspki.Pki): clients use secure_port; `port` (plaintext) stays for probes.
        self.tls = tls
        self.secure_port = zkharness.free_port() if tls else None
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.tick_ms = tick_ms
        self.zk_heap_mb = zk_heap_mb
        self.port = zkharness.free_port()
        self.p: Optional[subprocess.Popen] = None
        self.log = None
        # More zoo.cfg settings (the same for both kinds), e.g. maxSessionTimeout.
        self.extra_cfg: Dict[str, object] = {}

    def write_config(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        cfg = {
            "tickTime": self.tick_ms,
            "initLimit": 10,
            "syncLimit": 5,
            "dataDir": self.datadir,
            "clientPort": self.port,
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": 0,
            "forceSync": "yes",
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
        }
        cfg.update(self.extra_cfg)
        if self.tls is not None:
            cfg.update({
                "secureClientPort": self.secure_port,
                "secureClientPortAddress": "127.0.0.1",
                "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
                "ssl.keyStore.location": self.tls.p("server-store.pem"),
                "ssl.trustStore.location": self.tls.p("ca.pem"),
            })
        (self.workdir / "zoo.cfg").write_text("".join("%s=%s\n" % kv for kv in cfg.items()))
        if self.kind == "zookeeper":
            conf = self.workdir / "conf"
            conf.mkdir(exist_ok=True)
            # WARN, not INFO: per-session INFO lines would tax ZooKeeper in the churn workload.
            (conf / "log4j.properties").write_text(
                "log4j.rootLogger=WARN, FILE\n"
                "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
                "log4j.appender.FILE.File=%s\n"
                "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.FILE.layout.ConversionPattern=%%d{ISO8601} %%-5p [%%t] - %%m%%n\n"
                % (self.workdir / "zookeeper.log")
            )

    def command(self) -> List[str]:
        cfg = str(self.workdir / "zoo.cfg")
        if self.kind == "rzk":
            return [str(rzk_bin()), "server", "--config", cfg]
        # The Netty factory (TLS) needs netty's codec and resolver, which zookeeper.jar's
        # manifest does not list.
        netty = [j for j in TLS_EXTRA_JARS if os.path.exists(j)] if self.tls is not None else []
        cp = ":".join([str(self.workdir / "conf")] + zkharness.ZK_JARS + netty)
        # As zkServer.sh runs it (default GC, -Xmx), with a heap big enough for the load step.
        return [
            zkharness.ZK_JAVA,
            "-Xmx%dm" % self.zk_heap_mb,
            "-Djava.awt.headless=true",
            "-Dlog4j.configuration=file:%s" % (self.workdir / "conf" / "log4j.properties"),
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.4lw.commands.whitelist=*",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-cp",
            cp,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            cfg,
        ]

    def spawn(self) -> float:
        """Starts the process; returns the monotonic time just before the exec."""
        self.write_config()
        self.log = open(self.workdir / "server.log", "ab")
        env = dict(os.environ)
        env.setdefault("RZK_LOG", "warn")
        t0 = time.monotonic()
        self.p = zkharness.spawn(niced(self.command()), stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(self.workdir), env=env)
        return t0

    def start(self, timeout: float = 90.0) -> None:
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError("%s exited during start-up (see %s)" % (self.kind, self.workdir / "server.log"))
            try:
                if zkharness.four_letter(self.port, "srvr", timeout=2.0).startswith("Zookeeper version"):
                    return
            except (OSError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError("%s not serving within %.0f s" % (self.kind, timeout))

    def stop(self) -> None:
        if self.p is not None:
            zkharness.kill_process_group(self.p, term_timeout=30.0)
            self.p = None
        if self.log is not None:
            self.log.close()
            self.log = None

    # -- /proc ------------------------------------------------------------------------
    def cpu_s(self) -> float:
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status(self, key: str) -> int:
        """A kB value from /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return 0


NICE = 0


def niced(cmd: List[str]) -> List[str]:
    """The command under `nice -n NICE` (servers and bench client alike), when --nice is set."""
    return ["nice", "-n", str(NICE)] + cmd if NICE else cmd


def rzk_bin() -> Path:
    return Path(os.environ.get("RZK_BIN") or (REPO / "target" / "release" / "rzk"))


class CpuSampler:
    """Samples a server's CPU seconds every 100 ms, so the measured phase of a run can be
    cut out afterwards (setup and warm-up excluded)."""

    def __init__(self, proc: Proc):
        self.proc = proc
        self.samples: List[tuple] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.proc.cpu_s()))
            except (OSError, ValueError):
                pass
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()
        try:
            self.samples.append((time.monotonic(), self.proc.cpu_s()))
        except (OSError, ValueError):
            pass

    def percent(self, start: float, end: float) -> Optional[float]:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return None
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else None


# ----------------------------------------------------------------------------------------
# running the bench
# ----------------------------------------------------------------------------------------


TLS_EXTRA_JARS = ["/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"]


def bench(args, proc: Proc, workload: str, extra: List[str], log_dir: Path, tag: str) -> dict:
    opts = {
        # Over TLS the name must match the server certificate's (tlspki: localhost).
        "--servers": ("localhost:%d" % proc.secure_port) if proc.tls is not None else "127.0.0.1:%d" % proc.port,
        "--clients": str(args.clients),
        "--inflight": str(args.inflight),
        "--value-size": str(args.value_size),
        "--threads": str(args.client_threads),
    }
    if workload not in ("expiry", "load"):
        opts.update({"--duration": str(args.duration), "--warmup": str(args.warmup)})
    opts.update(dict(zip(extra[::2], extra[1::2])))  # the workload's own settings win
    # The load generator: $RZK_BENCH_BIN if set (an A/B of two servers keeps one client).
    cmd = [os.environ.get("RZK_BENCH_BIN") or str(rzk_bin()), "bench", WORKLOAD_OF.get(workload, workload), "--json", "--quiet"]
    for k, v in opts.items():
        cmd += [k, v]
    if proc.tls is not None:
        cmd += ["--tls-ca", proc.tls.p("ca.pem"), "--tls-cert", proc.tls.p("client.pem"), "--tls-key", proc.tls.p("client.key")]
    sampler = CpuSampler(proc)
    load_1m = os.getloadavg()[0]
    t_start = time.monotonic()
    r = subprocess.run(niced(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=args.duration + args.warmup + 600)
    t_end = time.monotonic()
    sampler.stop()
    (log_dir / ("%s.stderr" % tag)).write_bytes(r.stderr)
    if r.returncode != 0:
        raise RuntimeError("rzk bench %s against %s failed (%d): %s" % (workload, proc.kind, r.returncode, r.stderr.decode(errors="replace")[-2000:]))
    res = json.loads(r.stdout)
    measured_start = max(t_start, t_end - res["elapsed_s"])
    res["server_cpu_percent"] = sampler.percent(measured_start, t_end)
    res["loadavg_1m_at_start"] = load_1m
    res["command"] = cmd
    (log_dir / ("%s.json" % tag)).write_text(json.dumps(res, indent=1))
    return res


def probe_get(port: int, path: str) -> Optional[int]:
    """Connects and gets `path`; returns the error code, or None if the server is not
    serving yet."""
    try:
        with zkharness.RawSession("127.0.0.1", port, timeout=5.0) as s:
            s.connect(timeout_ms=10000)
            if s.negotiated_timeout <= 0:
                return None
            _, _, err, _ = s.get_data(path)
            return err
    except (OSError, zkharness.ConnectionClosed, TimeoutError, Exception):
        return None


def time_to_serve(proc: Proc, t0: float, path: str, limit: float) -> (Optional[float], bool):
    """After `proc.spawn()` returned `t0`: the seconds until a getData of `path` succeeds
    (None if the process exits or `limit` seconds pass first), and whether the server
    answered NoNode instead (serving, but the tree is gone: no durability)."""
    while time.monotonic() < t0 + limit:
        if proc.p.poll() is not None:
            break
        err = probe_get(proc.port, path)
        if err == 0:
            return time.monotonic() - t0, False
        if err == -101:
            return None, True
        time.sleep(0.02)
    return None, False


def full_gc(proc: Proc) -> bool:
    """For ZooKeeper: a full collection (`jcmd <pid> GC.run`), then a pause for the heap to
    shrink. False for rzk, or when jcmd is missing."""
    if proc.kind != "zookeeper":
        return False
    jcmd = Path(os.path.realpath(shutil.which(zkharness.ZK_JAVA) or zkharness.ZK_JAVA)).parent / "jcmd"
    if not jcmd.exists():
        return False
    r = subprocess.run([str(jcmd), str(proc.p.pid), "GC.run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    time.sleep(3.0)
    return r.returncode == 0


def memory_and_restart(args, kind: str, work: Path, log_dir: Path) -> dict:
    """Loads N znodes into a fresh server, measures RSS per znode, restarts it, and times
    until the last znode can be read again."""
    proc = Proc(kind, work / ("%s-memory" % kind), args.tick_time, args.zk_heap)
    proc.workdir.mkdir(parents=True)
    out: Dict[str, object] = {}
    try:
        proc.start()
        # Warm the server up a little so the baseline includes its steady-state overhead.
        bench(args, proc, "get", ["--duration", "2", "--warmup", "0", "--keys", "100"], log_dir, "%s-memory-warm" % kind)
        time.sleep(1.0)
        full_gc(proc)
        rss0 = proc.status("VmRSS")
        res = bench(args, proc, "load", ["--nodes", str(args.nodes), "--fanout", "1000"], log_dir, "%s-load" % kind)
        time.sleep(2.0)
        rss1 = proc.status("VmRSS")
        out.update(
            load_ops_per_sec=res["ops_per_sec"],
            rss_before=rss0,
            rss_after=rss1,
            peak_rss=proc.status("VmHWM"),
            bytes_per_znode=(rss1 - rss0) / args.nodes,
            nodes_created=res["extra"]["nodes_created"],
        )
        # ZooKeeper's resident size depends on when G1 last collected and how far it grew the
        # heap; after a full collection (G1 then gives unused heap back) it is closer to what
        # the tree needs. rzk has no collector: the same figure twice.
        if full_gc(proc):
            rss2 = proc.status("VmRSS")
            out.update(rss_after_gc=rss2, bytes_per_znode_after_gc=(rss2 - rss0) / args.nodes)
        else:
            out.update(rss_after_gc=rss1, bytes_per_znode_after_gc=out["bytes_per_znode"])
        last = res["extra"]["last_path"]
        proc.stop()
        # Restart with the same data dir.
        restart, lost = time_to_serve(proc, proc.spawn(), last, 300)
        out["restart_s"] = restart
        out["restart_lost_data"] = lost
        if restart is not None:
            out["rss_after_restart"] = proc.status("VmRSS")
    finally:
        proc.stop()
        shutil.rmtree(proc.datadir, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def median_run(runs: List[dict]) -> dict:
    """The run whose throughput is the median (its latency percentiles go in the chart)."""
    s = sorted(runs, key=lambda r: r["ops_per_sec"])
    return s[len(s) // 2]


def fmt_num(v, digits=0) -> str:
    if v is None:
        return "n/a"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, digits)


def fmt_ms(us) -> str:
    return "n/a" if us is None else "%.2f" % (us / 1000.0)


def ratio(a, b, invert=False) -> str:
    if a is None or b is None or a == 0 or b == 0:
        return "n/a"
    return "%.2fx" % (a / b)


def machine() -> Dict[str, str]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    java = subprocess.run([zkharness.ZK_JAVA, "-version"], capture_output=True, text=True).stderr.splitlines()
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": "%.1f GiB" % (mem / 2**30),
        "kernel": platform.release(),
        "java": java[0] if java else "?",
        "rzk": rev or "?",
        "load": "%.2f %.2f %.2f" % os.getloadavg(),
    }


def write_chart(path: Path, runs: Dict[str, Dict[str, List[dict]]], workloads: List[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # expiry is one sample per run, bounded below by the session timeout: not a distribution.
    shown = [w for w in workloads if w != "expiry" and w in runs["zookeeper"] and w in runs["rzk"]]
    if not shown:
        return
    cols = 3
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for i, w in enumerate(shown):
        ax = axes[i // cols][i % cols]
        for kind, color in (("zookeeper", "#d62728"), ("rzk", "#1f77b4")):
            r = median_run(runs[kind][w])
            pts = r["latency_us"].get("percentiles") or []
            if not pts:
                continue
            xs = [1.0 / (1.0 - min(p, 99.9999) / 100.0) for p, _ in pts]
            ys = [v / 1000.0 for _, v in pts]
            ax.plot(xs, ys, marker="o", ms=3, color=color, label="%s (%s ops/s)" % ("ZooKeeper" if kind == "zookeeper" else "rzk", fmt_num(r["ops_per_sec"])))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [2, 10, 100, 1000, 10000, 100000]
        ax.set_xticks(ticks)
        ax.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99", "p99.999"])
        ax.set_title("%s: %s" % (w, runs["rzk"][w][0].get("latency_of", "latency")))
        ax.set_ylabel("ms")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for j in range(len(shown), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("Latency percentiles, median run of each workload (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def build_report(args, runs, servers, memory, info, started: str, chart_rel: str, cmdline: str) -> (str, str):
    w_names = [w for w, _ in WORKLOADS if w in args.workloads]
    lines = []
    lines.append("# rzk vs Apache ZooKeeper 3.8: benchmark%s\n" % (" over TLS" if getattr(args, "tls", False) else ""))
    lines.append("Generated by `bench/compare.sh` (see `bench/compare.py`); do not edit by hand.\n")
    lines.append("- **Date:** %s" % started)
    lines.append("- **Machine:** %s cores, %s, %s RAM, Linux %s; load average at start %s" % (info["nproc"], info["cpu"], info["ram"], info["kernel"], info["load"]))
    lines.append("- **Servers:** Apache ZooKeeper 3.8.0 (Debian, %s, `-Xmx%dm`, default GC) and rzk `%s` (release build)" % (info["java"], args.zk_heap, info["rzk"]))
    lines.append("- **Mode:** standalone, `tickTime=%d`, `forceSync=yes`, `maxClientCnxns=0`, loopback; client and server share the machine" % args.tick_time)
    if getattr(args, "tls", False):
        lines.append("- **TLS:** every session connects to the `secureClientPort` (ZooKeeper: `NettyServerCnxnFactory`; rzk: rustls) with a client certificate (`ssl.clientAuth=need`, PEM key and trust stores from `tests/tlspki.py`); the TLS handshake is part of each session's connect")
    lines.append("- **Load:** `rzk bench`, %d sessions x %d in flight, %d-byte values, %d client thread(s); %g s warm-up + %g s measured per run; %d repetitions, servers alternating, each fresh per repetition" % (args.clients, args.inflight, args.value_size, args.client_threads, args.warmup, args.duration, args.reps))
    lines.append("- **Command:** `%s`%s" % (cmdline, " (servers and client under `nice -n %d`)" % args.nice if getattr(args, "nice", 0) else ""))
    loads = [r.get("loadavg_1m_at_start") for k in runs for w in runs[k] for r in runs[k][w]]
    loads = [x for x in loads if x is not None]
    if loads:
        lines.append("- **Machine load during the runs** (1-minute load average when each run started): %.1f to %.1f, median %.1f. The machine is shared; other processes' load lands on both servers alike only on average, which is why the servers alternate and medians are reported." % (min(loads), max(loads), statistics.median(loads)))
    lines.append("")
    lines.append("Both servers are durable: a write is answered only after its transaction is in the")
    lines.append("transaction log and fdatasync'ed (`forceSync=yes`; both group-commit the writes queued")
    lines.append("during one fdatasync).\n")
    lines.append("## Throughput and latency (medians of %d runs)\n" % args.reps)
    lines.append("| workload | ZooKeeper ops/s | rzk ops/s | rzk/ZK | ZK p50 ms | rzk p50 ms | ZK p99 ms | rzk p99 ms | p99 rzk/ZK | ZK p99.9 ms | rzk p99.9 ms | ZK CPU % | rzk CPU % | client CPU % (ZK / rzk) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for w in w_names:
        z = runs["zookeeper"].get(w, [])
        r = runs["rzk"].get(w, [])
        if not z or not r:
            continue
        m = lambda rs, f: median([f(x) for x in rs])  # noqa: E731
        zo, ro = m(z, lambda x: x["ops_per_sec"]), m(r, lambda x: x["ops_per_sec"])
        zp50, rp50 = m(z, lambda x: x["latency_us"].get("p50")), m(r, lambda x: x["latency_us"].get("p50"))
        zp99, rp99 = m(z, lambda x: x["latency_us"].get("p99")), m(r, lambda x: x["latency_us"].get("p99"))
        zp999, rp999 = m(z, lambda x: x["latency_us"].get("p999")), m(r, lambda x: x["latency_us"].get("p999"))
        zc, rc = m(z, lambda x: x.get("server_cpu_percent")), m(r, lambda x: x.get("server_cpu_percent"))
        zcc, rcc = m(z, lambda x: x["client_cpu"]["percent"]), m(r, lambda x: x["client_cpu"]["percent"])
        unit = UNIT.get(w, "")
        label = LABEL.get(w, w) if not unit else "%s (%s)" % (w, unit)
        if w == "expiry":
            # A round's "latency" is the time until all ephemerals are gone; rounds/s is meaningless.
            lines.append("| %s | | | | %s | %s | | | | | | %s | %s | %s / %s |" % (
                "expiry (time until gone, ms)", fmt_ms(zp50), fmt_ms(rp50), fmt_num(zc), fmt_num(rc), fmt_num(zcc), fmt_num(rcc)))
        else:
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
                label, fmt_num(zo), fmt_num(ro), ratio(ro, zo), fmt_ms(zp50), fmt_ms(rp50), fmt_ms(zp99), fmt_ms(rp99),
                ratio(rp99, zp99), fmt_ms(zp999), fmt_ms(rp999), fmt_num(zc), fmt_num(rc), fmt_num(zcc), fmt_num(rcc)))
        summary[w] = dict(zk=zo, rzk=ro, zk_p99=zp99, rzk_p99=rp99, zk_p50=zp50, rzk_p50=rp50)
    lines.append("")
    lines.append("Latency is per request (watch: from the setData until the last of the watchers is notified;")
    lines.append("churn: connect + handshake + closeSession; expiry: from the sessions vanishing until their")
    lines.append("ephemerals are gone, which cannot be shorter than the negotiated session timeout). CPU % is")
    lines.append("100 per busy core, over the measured phase; a client CPU near 100 means the one-thread client")
    lines.append("was the limit.\n")
    if args.reps > 1:
        lines.append("Spread over the %d repetitions (lowest to highest; the table above shows medians):\n" % args.reps)
        lines.append("| workload | ZooKeeper ops/s | rzk ops/s | ZooKeeper p99 ms | rzk p99 ms |")
        lines.append("|---|---:|---:|---:|---:|")
        for w in w_names:
            z, r = runs["zookeeper"].get(w, []), runs["rzk"].get(w, [])
            if not z or not r or w == "expiry":
                continue

            def span(rs, f, fmt):
                xs = [f(x) for x in rs if f(x) is not None]
                return "%s to %s" % (fmt(min(xs)), fmt(max(xs))) if xs else "n/a"
            ops = lambda x: x["ops_per_sec"]  # noqa: E731
            p99 = lambda x: x["latency_us"].get("p99")  # noqa: E731
            lines.append("| %s | %s | %s | %s | %s |" % (LABEL.get(w, w), span(z, ops, fmt_num), span(r, ops, fmt_num), span(z, p99, fmt_ms), span(r, p99, fmt_ms)))
        lines.append("")
    extra_rows = []
    for w in ("watch", "churn"):
        if w in runs["rzk"] and w in runs["zookeeper"]:
            pass
    lines.append("## Server resources\n")
    lines.append("| | ZooKeeper | rzk | rzk/ZK |")
    lines.append("|---|---:|---:|---:|")
    zpk = max([s["peak_rss"] for s in servers["zookeeper"]] or [0]) or None
    rpk = max([s["peak_rss"] for s in servers["rzk"]] or [0]) or None
    lines.append("| peak RSS over the workloads (MiB) | %s | %s | %s |" % (fmt_num(zpk and zpk / 2**20), fmt_num(rpk and rpk / 2**20), ratio(rpk, zpk)))
    zm, rm = memory.get("zookeeper", {}), memory.get("rzk", {})
    if zm or rm:
        n = args.nodes
        lines.append("| load %s znodes (creates/s) | %s | %s | %s |" % (fmt_num(n), fmt_num(zm.get("load_ops_per_sec")), fmt_num(rm.get("load_ops_per_sec")), ratio(rm.get("load_ops_per_sec"), zm.get("load_ops_per_sec"))))
        lines.append("| RSS before / after the load (MiB) | %s / %s | %s / %s | |" % (
            fmt_num(zm.get("rss_before", 0) / 2**20), fmt_num(zm.get("rss_after", 0) / 2**20), fmt_num(rm.get("rss_before", 0) / 2**20), fmt_num(rm.get("rss_after", 0) / 2**20)))
        lines.append("| resident bytes per znode (%d-byte values) | %s | %s | %s |" % (args.value_size, fmt_num(zm.get("bytes_per_znode")), fmt_num(rm.get("bytes_per_znode")), ratio(rm.get("bytes_per_znode"), zm.get("bytes_per_znode"))))
        if zm.get("bytes_per_znode_after_gc") is not None:
            lines.append("| the same after a full GC (ZooKeeper: `jcmd GC.run` before and after the load) | %s | %s | %s |" % (
                fmt_num(zm.get("bytes_per_znode_after_gc")), fmt_num(rm.get("bytes_per_znode_after_gc")), ratio(rm.get("bytes_per_znode_after_gc"), zm.get("bytes_per_znode_after_gc"))))

        def rs(m):
            if m.get("restart_s") is not None:
                return "%.2f s" % m["restart_s"]
            if m.get("restart_lost_data"):
                return "**lost the tree**"
            return "failed"
        lines.append("| restart with %s znodes (start until the last znode is served) | %s | %s | %s |" % (
            fmt_num(n), rs(zm), rs(rm), ratio(rm.get("restart_s"), zm.get("restart_s"))))
    lines.append("")
    lines.append("## Targets (issue 6)\n")
    lines.append("| target | result | met? |")
    lines.append("|---|---|---|")

    def tgt(name, value, ok):
        lines.append("| %s | %s | %s |" % (name, value, "n/a" if ok is None else ("yes" if ok else "**no**")))

    for w in ("create", "set"):
        s = summary.get(w)
        if s and s["zk"] and s["rzk"]:
            q = s["rzk"] / s["zk"]
            tgt("%s throughput >= 2x" % w, "%.2fx" % q, q >= 2)
    for w in ("get", "exists", "mixed"):
        s = summary.get(w)
        if s and s["zk"] and s["rzk"]:
            q = s["rzk"] / s["zk"]
            tgt("%s throughput >= 1.5x" % w, "%.2fx" % q, q >= 1.5)
    for w in ("get", "set", "create", "mixed"):
        s = summary.get(w)
        if s and s["zk_p99"] and s["rzk_p99"]:
            q = s["rzk_p99"] / s["zk_p99"]
            tgt("%s p99 <= 0.5x (at each server's own saturation)" % w, "%.2fx" % q, q <= 0.5)
    if zm.get("bytes_per_znode") and rm.get("bytes_per_znode"):
        # Judged against ZooKeeper's smaller (after full GC) figure when there is one.
        zb = zm.get("bytes_per_znode_after_gc") or zm["bytes_per_znode"]
        rb = rm.get("bytes_per_znode_after_gc") or rm["bytes_per_znode"]
        q = rb / zb
        tgt("memory per znode <= 0.25x (ZooKeeper after a full GC)" if zm.get("bytes_per_znode_after_gc") else "memory per znode <= 0.25x", "%.2fx" % q, q <= 0.25)
    if zm.get("restart_s") and rm.get("restart_s"):
        q = zm["restart_s"] / rm["restart_s"]
        tgt("restart >= 3x faster", "%.1fx faster" % q, q >= 3)
    elif zm.get("restart_s"):
        tgt("restart >= 3x faster", "rzk: failed (see the resources table)", False)
    lines.append("")
    lines.append("The p99 comparison is at each server's saturation point (closed loop, same concurrency), so a")
    lines.append("server that is faster also queues less; a fixed-rate comparison awaits an open-loop mode.\n")
    lines.append("![latency percentiles](%s)\n" % chart_rel)
    lines.append("## 3-server ensembles\n")
    lines.append("**Awaiting the ensemble issue:** rzk runs standalone only today. When it runs a quorum, this")
    lines.append("script's `--ensemble` section will start 3 servers of each kind on loopback (same zoo.cfg with")
    lines.append("`server.N` lines) and run the same workloads against all three; see `ENSEMBLE` in")
    lines.append("`bench/compare.py`.\n")
    findings = REPO / "bench" / "FINDINGS.md"
    if findings.exists():
        lines.append(findings.read_text().rstrip("\n") + "\n")
    lines.append("## Reproduce\n")
    lines.append("```sh\nbench/compare.sh                                   # this report (~15 min on 2 cores)\n"
                 "cargo run --release -p rzk -- bench get --servers 127.0.0.1:2181   # one workload, text report\n```\n")
    lines.append("Raw JSON of every run: `bench/.work/<date>/` (not committed).\n")
    report = "\n".join(lines)

    # The short table for README.md.
    short = ["| workload | ZooKeeper 3.8 | rzk | rzk/ZK |", "|---|---:|---:|---:|"]
    for w in ("create", "set", "get", "mixed"):
        s = summary.get(w)
        if s:
            short.append("| %s ops/s | %s | %s | %s |" % (w, fmt_num(s["zk"]), fmt_num(s["rzk"]), ratio(s["rzk"], s["zk"])))
    s = summary.get("create1")
    if s:
        short.append("| one writer's create p50 ms | %s | %s | %s |" % (fmt_ms(s["zk_p50"]), fmt_ms(s["rzk_p50"]), ratio(s["rzk_p50"], s["zk_p50"])))
    s = summary.get("get")
    if s:
        short.append("| get p99 ms | %s | %s | %s |" % (fmt_ms(s["zk_p99"]), fmt_ms(s["rzk_p99"]), ratio(s["rzk_p99"], s["zk_p99"])))
    if zm.get("bytes_per_znode") and rm.get("bytes_per_znode"):
        short.append("| resident bytes per znode | %s | %s | %s |" % (fmt_num(zm["bytes_per_znode"]), fmt_num(rm["bytes_per_znode"]), ratio(rm["bytes_per_znode"], zm["bytes_per_znode"])))
    if zm.get("bytes_per_znode_after_gc") and rm.get("bytes_per_znode_after_gc"):
        zb, rb = zm["bytes_per_znode_after_gc"], rm["bytes_per_znode_after_gc"]
        short.append("| the same, ZooKeeper after a full GC | %s | %s | %s |" % (fmt_num(zb), fmt_num(rb), ratio(rb, zb)))
    if zm.get("restart_s"):
        short.append("| restart with %s znodes | %.1f s | %s | %s |" % (fmt_num(args.nodes), zm["restart_s"],
                     "%.1f s" % rm["restart_s"] if rm.get("restart_s") else "failed", ratio(rm.get("restart_s"), zm["restart_s"])))
    short_md = "\n".join(short)
    short_md += "\n\n%s, %s cores (%s), standalone, fsync on for both, `bench/compare.sh`; details in [docs/BENCH.md](docs/BENCH.md)." % (started[:10], info["nproc"], info["cpu"])
    return report, short_md


def update_readme(short_md: str) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    block = "%s\n%s\n%s" % (start, short_md, end)
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n## Benchmark\n\n" + block + "\n"
    readme.write_text(text)


# The 3-server section: awaiting the ensemble issue. When rzk runs a quorum, start three
# Procs per kind with server.1..3 lines (peer and election ports from free_port()), pass all
# three client ports in --servers, and run WORKLOADS as above.
ENSEMBLE = None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per run")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--client-threads", type=int, default=1)
    ap.add_argument("--nodes", type=int, default=1_000_000, help="znodes for the memory/restart step (0 skips it)")
    ap.add_argument("--tick-time", type=int, default=2000)
    ap.add_argument("--zk-heap", type=int, default=3072, help="ZooKeeper -Xmx in MB")
    ap.add_argument("--workloads", default=",".join(w for w, _ in WORKLOADS))
    ap.add_argument("--servers", default="zookeeper,rzk", help="which servers (both for a comparison)")
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCH.md"))
    ap.add_argument("--chart", default=None, help="PNG path (default: beside --out, bench-latency.png)")
    ap.add_argument("--no-readme", action="store_true", help="do not update README.md's table")
    ap.add_argument("--ensemble", action="store_true", help="3-server ensembles (awaits the ensemble issue)")
    ap.add_argument("--tls", action="store_true", help="clients connect over TLS to each server's secureClientPort")
    ap.add_argument("--nice", type=int, default=0,
                    help="run both servers and the client under nice -n N (negative, as root, to keep other work on a shared machine from skewing the numbers)")
    ap.add_argument("--report-from", metavar="DIR", help="only re-render the report from DIR/summary.json of an earlier run")
    args = ap.parse_args()
    args.workloads = [w for w in args.workloads.split(",") if w]
    known = {w for w, _ in WORKLOADS}
    for w in args.workloads:
        if w not in known:
            ap.error("unknown workload %r (known: %s)" % (w, ", ".join(sorted(known))))
    kinds = [k for k in args.servers.split(",") if k]
    global NICE
    NICE = args.nice
    if args.ensemble:
        print("compare: 3-server ensembles await the ensemble issue (rzk runs standalone only)", file=sys.stderr)
        return 2
    if not rzk_bin().is_file():
        print("compare: %s not found (cargo build --release -p rzk)" % rzk_bin(), file=sys.stderr)
        return 2

    if args.report_from:
        saved = json.loads((Path(args.report_from) / "summary.json").read_text())
        a = saved.get("args", {})
        for k, v in a.items():
            if k not in ("out", "chart", "no_readme", "report_from"):
                setattr(args, k, v)
        out = Path(args.out)
        chart = Path(args.chart) if args.chart else out.parent / "bench-latency.png"
        write_chart(chart, saved["runs"], args.workloads)
        report, short = build_report(args, saved["runs"], saved["servers"], saved["memory"], saved["info"], saved.get("started", "?"),
                                     os.path.relpath(chart, out.parent), saved.get("cmdline", "bench/compare.sh"))
        out.write_text(report)
        if not args.no_readme:
            update_readme(short)
        print("compare: wrote %s and %s from %s" % (out, chart, args.report_from), file=sys.stderr)
        return 0
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    info = machine()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = REPO / "bench" / ".work" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    work = log_dir / "servers"
    work.mkdir()
    pki = None
    if args.tls:
        import tlspki  # noqa: E402  (the tests' PKI: CA, server and client certificates)
        pki = tlspki.Pki(log_dir / "pki")
    runs: Dict[str, Dict[str, List[dict]]] = {k: {} for k in ("zookeeper", "rzk")}
    servers: Dict[str, List[dict]] = {k: [] for k in ("zookeeper", "rzk")}
    extra = dict(WORKLOADS)
    for rep in range(args.reps):
        order = kinds if rep % 2 == 0 else list(reversed(kinds))
        for kind in order:
            proc = Proc(kind, work / ("%s-%d" % (kind, rep)), args.tick_time, args.zk_heap, tls=pki)
            proc.workdir.mkdir(parents=True)
            print("== rep %d/%d: %s" % (rep + 1, args.reps, kind), file=sys.stderr, flush=True)
            try:
                proc.start()
                for w in args.workloads:
                    res = bench(args, proc, w, extra[w], log_dir, "%s-%d-%s" % (kind, rep, w))
                    runs[kind].setdefault(w, []).append(res)
                    print("   %-9s %12s ops/s  p99 %8s ms  server CPU %s%%  client CPU %.0f%%" % (
                        w, fmt_num(res["ops_per_sec"]), fmt_ms(res["latency_us"].get("p99")),
                        fmt_num(res.get("server_cpu_percent")), res["client_cpu"]["percent"]), file=sys.stderr, flush=True)
                servers[kind].append({"peak_rss": proc.status("VmHWM")})
            finally:
                proc.stop()
                shutil.rmtree(proc.datadir, ignore_errors=True)
    memory = {}
    if args.nodes > 0:
        for kind in kinds:
            print("== memory and restart with %d znodes: %s" % (args.nodes, kind), file=sys.stderr, flush=True)
            memory[kind] = memory_and_restart(args, kind, work, log_dir)
            print("   %s" % json.dumps(memory[kind]), file=sys.stderr, flush=True)
    cmdline = ("bench/compare.sh " + " ".join(sys.argv[1:])).strip()
    saved_args = {k: v for k, v in vars(args).items()}
    (log_dir / "summary.json").write_text(json.dumps({"runs": runs, "servers": servers, "memory": memory, "info": info,
                                                      "started": started, "cmdline": cmdline, "args": saved_args}, indent=1))
    if set(kinds) != {"zookeeper", "rzk"}:
        print("compare: raw results in %s (a report needs both servers)" % log_dir, file=sys.stderr)
        return 0
    out = Path(args.out)
    chart = Path(args.chart) if args.chart else out.parent / "bench-latency.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_chart(chart, runs, args.workloads)
    report, short = build_report(args, runs, servers, memory, info, started, os.path.relpath(chart, out.parent), cmdline)
    out.write_text(report)
    if not args.no_readme:
        update_readme(short)
    print("compare: wrote %s and %s (raw JSON in %s)" % (out, chart, log_dir), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
