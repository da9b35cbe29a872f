#!/usr/bin/env python3
"""rzk against Apache ZooKeeper 3.8 at scale, side by side on this machine.

Steps (--steps picks some; each starts a fresh server per kind, one server at a time):

- tree N (for each N of --nodes): load N znodes of --value-size bytes (`rzk bench load`,
  1000 children per parent) into a fresh server: load rate, resident bytes per znode (RSS
  delta over the load, and for ZooKeeper again after a full GC), mntr's
  approximate_data_size; then a restart with the same dataDir: the time until a getData of
  the last znode succeeds, the size of the snapshot the server writes on start-up (both
  snapshot the replayed tree) and how long that file took to write (first sight of the file
  to its last growth, polled every 10 ms). During the load all but the newest two snapshots
  are deleted as they are superseded (autopurge's job), or 20,000,000 znodes fill the disk.
- rzk alone at --rzk-alone-nodes (20,000,000 by default): the same, plus the peak resident size.
- sessions: `rzk bench sessions`: first --detached sessions that each create an ephemeral
  and drop their connection (not closed; their timeouts all end --detached-timeout ms after
  the first opens, and both servers get maxSessionTimeout for it), so that with --sessions
  connected ones (over 127.0.0.x source addresses; this machine's open-files limit of
  20,000 caps those) 100,000 sessions live on the server at once; the connected ones are
  held --hold seconds: bytes per session of each kind, server CPU for the pings; then
  --expire of the connected ones vanish at once: the time until their ephemerals are gone
  (and after their last packets); then the detached ones expire together while a getData
  probe times the server's answers.
- watches: `rzk bench watches`: --watch-sessions sessions x --watch-keys znodes (memory per
  watch, fan-out to those sessions), then --fanout-sessions sessions on one znode (the
  fan-out of one change to that many watchers).

The helpers (server processes, `rzk bench` runs, full GC, machine facts) are bench/compare.py's.
Run it with bench/compare-scale.sh, e.g.
    bench/compare-scale.sh                                   # the full run (about 40 minutes)
    bench/compare-scale.sh --nodes 100000 --rzk-alone-nodes 0 --sessions 2000 --expire 200 --detached 5000 \\
        --detached-timeout 60000 --watch-keys 100 --fanout-sessions 1000 --out /tmp/s.md --no-readme   # a quick look
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (Proc, bench, time_to_serve, full_gc, machine, fmt_num, ratio)
from compare import REPO, Proc, bench, fmt_num, full_gc, machine, time_to_serve  # noqa: E402

KINDS = ("zookeeper", "rzk")


class SnapWatch:
    """Polls a dataDir's version-2 for snapshot files that appear after it starts: when each
    was first seen, when it last grew, and its size."""

    def __init__(self, datadir: Path):
        self.dir = datadir / "version-2"
        self.before = set(self._names())
        self.files: Dict[str, dict] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _names(self) -> List[str]:
        try:
            return [n for n in os.listdir(self.dir) if n.startswith("snapshot.") or n.startswith("tmp.snapshot.")]
        except OSError:
            return []

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for n in self._names():
                if n in self.before:
                    continue
                try:
                    size = os.path.getsize(self.dir / n)
                except OSError:
                    continue
                # rzk writes tmp.snapshot.Z and renames it when complete: one file.
                key = n[4:] if n.startswith("tmp.") else n
                f = self.files.setdefault(key, {"first": now, "grew": now, "size": size, "name": n})
                if size != f["size"] or n != f["name"]:
                    f.update(size=size, grew=now, name=n)
            self._stop.wait(0.01)

    def stop(self) -> Optional[dict]:
        """The newest new snapshot: its size and write time (seconds), or None."""
        self._stop.set()
        self._t.join()
        if not self.files:
            return None
        name = max(self.files, key=lambda n: int(n.split(".", 1)[1], 16))
        f = self.files[name]
        try:
            f["size"] = os.path.getsize(self.dir / f["name"])
        except OSError:
            pass
        return {"file": name, "bytes": f["size"], "write_s": f["grew"] - f["first"]}


class Purger:
    """Keeps a loading server's dataDir small, as autopurge would (snapRetainCount=2): every
    2 s, deletes all but the newest two snapshots and the logs older than the older of them
    (but the newest of those, which may hold the txns after it). At 20,000,000 znodes a
    snapshot every 100,000 txns would otherwise fill the disk."""

    def __init__(self, datadir: Path):
        self.dir = datadir / "version-2"
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @staticmethod
    def _zxid(name: str) -> int:
        try:
            return int(name.split(".")[1], 16)
        except (IndexError, ValueError):
            return -1

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            try:
                names = os.listdir(self.dir)
            except OSError:
                continue
            snaps = sorted((n for n in names if n.startswith("snapshot.")), key=self._zxid)
            if len(snaps) <= 2:
                continue
            keep_from = self._zxid(snaps[-2])
            for n in snaps[:-2]:
                try:
                    os.unlink(self.dir / n)
                except OSError:
                    pass
            logs = sorted((n for n in names if n.startswith("log.")), key=self._zxid)
            old = [n for n in logs if self._zxid(n) < keep_from]
            for n in old[:-1]:
                try:
                    os.unlink(self.dir / n)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def cpu_seconds(pid: int) -> Optional[float]:
    """The CPU time (user + system, all threads) a process has used so far: unlike wall time
    it holds when other work shares the cores."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def heap_for(nodes: int, args) -> int:
    """ZooKeeper's -Xmx (MB) for a tree of `nodes`: --zk-heap, or about 1.6 GB per million."""
    return max(args.zk_heap, int(nodes / 1e6 * 1600))


def tree_step(args, kind: str, nodes: int, work: Path, log_dir: Path) -> dict:
    proc = Proc(kind, work / ("%s-tree-%d" % (kind, nodes)), args.tick_time, heap_for(nodes, args))
    proc.workdir.mkdir(parents=True)
    out: Dict[str, object] = {"nodes": nodes, "zk_heap_mb": heap_for(nodes, args) if kind == "zookeeper" else None}
    try:
        proc.start()
        bench(args, proc, "get", ["--duration", "2", "--keys", "100"], log_dir, "%s-%d-warm" % (kind, nodes))
        time.sleep(1.0)
        full_gc(proc)
        rss0 = proc.status("VmRSS")
        purger = Purger(proc.datadir)
        try:
            res = bench(args, proc, "load", ["--nodes", str(nodes), "--fanout", "1000", "--server-pid", str(proc.p.pid)],
                        log_dir, "%s-%d-load" % (kind, nodes))
        finally:
            purger.stop()
        time.sleep(2.0)
        rss1 = proc.status("VmRSS")
        out.update(load_per_sec=res["ops_per_sec"], rss_before=rss0, rss_after=rss1, peak_rss=proc.status("VmHWM"),
                   bytes_per_znode=(rss1 - rss0) / nodes, nodes_created=res["extra"]["nodes_created"],
                   approximate_data_size=res["extra"].get("mntr", {}).get("zk_approximate_data_size"),
                   znode_count=res["extra"].get("mntr", {}).get("zk_znode_count"))
        if full_gc(proc):
            rss2 = proc.status("VmRSS")
            out.update(rss_after_gc=rss2, bytes_per_znode_after_gc=(rss2 - rss0) / nodes)
        last = res["extra"]["last_path"]
        proc.stop()
        snaps = SnapWatch(proc.datadir)
        restart, _ = time_to_serve(proc, proc.spawn(), last, 900)
        if restart is not None:
            out["restart_cpu_s"] = cpu_seconds(proc.p.pid)
        out["restart_s"] = restart
        # The start-up snapshot may still be being written when the server serves.
        time.sleep(2.0)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and snaps.files and max(f["grew"] for f in snaps.files.values()) > time.monotonic() - 2:
            time.sleep(0.5)
        out["snapshot"] = snaps.stop()
        if restart is not None:
            out["rss_after_restart"] = proc.status("VmRSS")
            out["peak_rss_after_restart"] = proc.status("VmHWM")
    finally:
        proc.stop()
        shutil.rmtree(proc.datadir, ignore_errors=True)
    return out


def sessions_step(args, kind: str, work: Path, log_dir: Path) -> dict:
    proc = Proc(kind, work / ("%s-sessions" % kind), args.tick_time, args.zk_heap)
    if args.detached > 0:
        # The same for both: the detached sessions' timeouts must be granted as asked.
        proc.extra_cfg["maxSessionTimeout"] = args.detached_timeout + 60_000
    proc.workdir.mkdir(parents=True)
    try:
        proc.start()
        bench(args, proc, "get", ["--duration", "2", "--keys", "100"], log_dir, "%s-sessions-warm" % kind)
        full_gc(proc)
        res = bench(args, proc, "sessions", [
            "--clients", str(args.sessions), "--expire", str(args.expire), "--duration", str(args.hold),
            "--session-timeout", "30000", "--expiry-timeout", str(args.expiry_timeout),
            "--detached", str(args.detached), "--detached-timeout", str(args.detached_timeout),
            "--local-addrs", str(args.local_addrs), "--server-pid", str(proc.p.pid), "--io-timeout", "120"],
            log_dir, "%s-sessions" % kind)
        ex = res["extra"]
        return {"sessions": ex["sessions"], "bytes_per_session": ex.get("server_bytes_per_session"),
                "open_per_sec": ex["sessions_opened_per_sec"], "pings_per_sec": ex["pings_per_sec"],
                "cpu_percent_idle": ex.get("server_cpu_percent_idle"), "ping_p99_us": res["latency_us"].get("p99"),
                "ping_max_us": res["latency_us"].get("max"),
                "expiry": ex["expiry"], "rss_after": ex.get("server_rss_bytes"), "detached": ex.get("detached"),
                "rss_all_open": ex.get("server_rss_all_open_bytes"), "bytes_per_session_all": ex.get("server_bytes_per_session_all")}
    finally:
        proc.stop()
        shutil.rmtree(proc.datadir, ignore_errors=True)


def watches_step(args, kind: str, work: Path, log_dir: Path) -> dict:
    proc = Proc(kind, work / ("%s-watches" % kind), args.tick_time, args.zk_heap)
    proc.workdir.mkdir(parents=True)
    out: Dict[str, object] = {}
    try:
        proc.start()
        bench(args, proc, "get", ["--duration", "2", "--keys", "100"], log_dir, "%s-watches-warm" % kind)
        full_gc(proc)
        pid = ["--server-pid", str(proc.p.pid), "--io-timeout", "120", "--local-addrs", str(args.local_addrs)]
        res = bench(args, proc, "watches", ["--clients", str(args.watch_sessions), "--keys", str(args.watch_keys),
                                           "--value-size", "10", "--ops", "3"] + pid, log_dir, "%s-watches" % kind)
        ex = res["extra"]
        out.update(watches=ex["watches"], bytes_per_watch=ex.get("server_bytes_per_watch"),
                   set_per_sec=ex["watches_set_per_sec"], watch_count=ex["mntr"].get("zk_watch_count"),
                   fanout_sessions=args.watch_sessions, fanout_p50_us=res["latency_us"].get("p50"))
        if args.fanout_sessions > 0:
            res = bench(args, proc, "watches", ["--clients", str(args.fanout_sessions), "--keys", "1", "--value-size", "10",
                                               "--ops", "3"] + pid, log_dir, "%s-fanout" % kind)
            out.update(wide_sessions=args.fanout_sessions, wide_fanout_p50_us=res["latency_us"].get("p50"),
                       wide_fanout_max_us=res["latency_us"].get("max"), wide_client_cpu=res["client_cpu"]["percent"],
                       wide_bytes_per_session=res["extra"].get("server_bytes_per_watch"))
    finally:
        proc.stop()
        shutil.rmtree(proc.datadir, ignore_errors=True)
    return out


def mib(b) -> str:
    return "-" if b is None else "%s MiB" % fmt_num(b / 2**20)


def ms(us) -> str:
    return "-" if us is None else "%.1f ms" % (us / 1000.0)


def secs(s) -> str:
    return "-" if s is None else "%.1f s" % s


def ratio(z, r, higher_better=True) -> str:
    if not z or not r:
        return "-"
    return "%.2fx" % ((r / z) if higher_better else (z / r))


def failures(L: List[str], by_kind: Dict[str, Optional[dict]]) -> None:
    """Notes a failed step under its table (an empty column above)."""
    for name, d in by_kind.items():
        if d and d.get("error"):
            L.append("%s's step failed: `%s`\n" % (name, d["error"].strip().splitlines()[-1][:300]))


def build_report(args, res, info, started, cmdline) -> (str, str):
    L: List[str] = []
    L.append("# rzk vs Apache ZooKeeper 3.8 at scale\n")
    L.append("- **Date:** %s" % started)
    L.append("- **Machine:** %s cores (%s), %s RAM, Linux %s; load average at start %s" % (info["nproc"], info["cpu"], info["ram"], info["kernel"], info["load"]))
    L.append("- **Servers:** Apache ZooKeeper 3.8.0 (Debian, %s, default GC, -Xmx as listed) and rzk `%s` (release build), "
             "standalone, `tickTime=%d`, `forceSync=yes`, `maxClientCnxns=0`, loopback" % (info["java"], info["rzk"], args.tick_time))
    L.append("- **Command:** `%s`" % cmdline)
    L.append("- **Noise:** other work shared the 2 cores during the run (builds of other branches): memory figures "
             "are the servers' own and hold; rates and times are noisy and one run each.\n")
    L.append("Resident bytes per znode are the server's RSS growth over the load (after a warm-up, ZooKeeper after a full "
             "GC before it) divided by the znodes; each znode has %d bytes of data and a 27-byte path, 1000 per parent. "
             "Restart is from process start until a getData of the last znode succeeds; the snapshot is the one each "
             "server writes on start-up after replaying its log, its write time from the file's first sight to its "
             "last growth (polled every 10 ms).\n" % args.value_size)
    short: List[str] = ["| at scale | ZooKeeper 3.8 | rzk | rzk vs ZK |", "|---|---:|---:|---:|"]
    for t in res.get("tree", []):
        n = t["nodes"]
        z, r = t.get("zookeeper"), t.get("rzk")
        L.append("## %s znodes%s\n" % (fmt_num(n), "" if z else " (rzk alone)"))
        L.append("| | ZooKeeper 3.8 | rzk | rzk vs ZK |")
        L.append("|---|---:|---:|---:|")
        g = lambda d, k: (d or {}).get(k)  # noqa: E731
        snap = lambda d, k: ((d or {}).get("snapshot") or {}).get(k)  # noqa: E731
        rows = [
            ("load rate (creates/s)", fmt_num(g(z, "load_per_sec")), fmt_num(g(r, "load_per_sec")), ratio(g(z, "load_per_sec"), g(r, "load_per_sec"))),
            ("resident bytes per znode", fmt_num(g(z, "bytes_per_znode")), fmt_num(g(r, "bytes_per_znode")), ratio(g(z, "bytes_per_znode"), g(r, "bytes_per_znode"), False)),
            ("the same, ZooKeeper after a full GC", fmt_num(g(z, "bytes_per_znode_after_gc")), fmt_num(g(r, "bytes_per_znode")), ratio(g(z, "bytes_per_znode_after_gc"), g(r, "bytes_per_znode"), False)),
            ("resident after the load", mib(g(z, "rss_after")), mib(g(r, "rss_after")), ""),
            ("peak resident (load)", mib(g(z, "peak_rss")), mib(g(r, "peak_rss")), ""),
            ("mntr approximate_data_size", mib(g(z, "approximate_data_size")), mib(g(r, "approximate_data_size")), ""),
            ("restart to serving", secs(g(z, "restart_s")), secs(g(r, "restart_s")), ratio(g(z, "restart_s"), g(r, "restart_s"), False)),
            ("... CPU time used by then", secs(g(z, "restart_cpu_s")), secs(g(r, "restart_cpu_s")), ratio(g(z, "restart_cpu_s"), g(r, "restart_cpu_s"), False)),
            ("snapshot size", mib(snap(z, "bytes")), mib(snap(r, "bytes")), ""),
            ("snapshot write time", secs(snap(z, "write_s")), secs(snap(r, "write_s")), ratio(snap(z, "write_s"), snap(r, "write_s"), False)),
            ("resident after restart", mib(g(z, "rss_after_restart")), mib(g(r, "rss_after_restart")), ""),
            ("peak resident (restart)", mib(g(z, "peak_rss_after_restart")), mib(g(r, "peak_rss_after_restart")), ""),
        ]
        if z:
            L.append("| ZooKeeper -Xmx | %s MB | | |" % fmt_num(z.get("zk_heap_mb")))
        for row in rows:
            L.append("| %s |" % " | ".join(row))
        L.append("")
        failures(L, {"ZooKeeper": z, "rzk": r})
        if z and r:
            short.append("| %s znodes: resident bytes per znode | %s | %s | %s |" % (fmt_num(n), fmt_num(z.get("bytes_per_znode")), fmt_num(r.get("bytes_per_znode")), ratio(z.get("bytes_per_znode"), r.get("bytes_per_znode"), False)))
            short.append("| %s znodes: restart (CPU time by then) | %s (%s) | %s (%s) | %s (%s) |" % (
                fmt_num(n), secs(z.get("restart_s")), secs(z.get("restart_cpu_s")), secs(r.get("restart_s")), secs(r.get("restart_cpu_s")),
                ratio(z.get("restart_s"), r.get("restart_s"), False), ratio(z.get("restart_cpu_s"), r.get("restart_cpu_s"), False)))
        elif r:
            peak = max(r.get("peak_rss") or 0, r.get("peak_rss_after_restart") or 0) or None
            short.append("| %s znodes (rzk alone): resident after the load, peak (load or restart) | | %s, %s | |" % (fmt_num(n), mib(r.get("rss_after")), mib(peak)))
    s = res.get("sessions")
    if s:
        z, r = s.get("zookeeper") or {}, s.get("rzk") or {}
        total = args.sessions + args.detached
        L.append("## %s sessions\n" % fmt_num(total) if args.detached else "## %s idle sessions\n" % fmt_num(args.sessions))
        if args.detached:
            L.append("First %s sessions each create an ephemeral and drop their connection without closing (no file descriptor "
                     "left on either side), all asking for timeouts that end %d s after the first opened (maxSessionTimeout=%d "
                     "on both servers); then %s connected ones (this machine's open-files limit of 20,000 caps those), so %s "
                     "sessions live on the server at once. Memory per session: the RSS growth while each kind opens, divided by "
                     "its number.\n" % (fmt_num(args.detached), args.detached_timeout // 1000, args.detached_timeout + 60_000,
                                        fmt_num(args.sessions), fmt_num(total)))
        L.append("The connected ones are opened over %d source addresses, held %d s, each pinging every third of its timeout (30 s asked; %s of them "
                 "asked %d ms and ping every %.1f s); then those %s vanish at once.\n" % (
                     args.local_addrs, args.hold, fmt_num(args.expire), args.expiry_timeout, args.expiry_timeout / 3000.0, fmt_num(args.expire)))
        L.append("| | ZooKeeper 3.8 | rzk | rzk vs ZK |")
        L.append("|---|---:|---:|---:|")
        zd, rd = z.get("detached") or {}, r.get("detached") or {}
        if args.detached:
            L.append("| resident bytes per session, all %s | %s | %s | %s |" % (fmt_num(total), fmt_num(z.get("bytes_per_session_all")), fmt_num(r.get("bytes_per_session_all")), ratio(z.get("bytes_per_session_all"), r.get("bytes_per_session_all"), False)))
            L.append("| ... per session without a connection (%s) | %s | %s | %s |" % (fmt_num(args.detached), fmt_num(zd.get("server_bytes_per_session")), fmt_num(rd.get("server_bytes_per_session")), ratio(zd.get("server_bytes_per_session"), rd.get("server_bytes_per_session"), False)))
            L.append("| ... resident with all %s open | %s | %s | %s |" % (fmt_num(total), mib(z.get("rss_all_open")), mib(r.get("rss_all_open")), ratio(z.get("rss_all_open"), r.get("rss_all_open"), False)))
            L.append("| sessions without a connection opened per second | %s | %s | %s |" % (fmt_num(zd.get("sessions_opened_per_sec")), fmt_num(rd.get("sessions_opened_per_sec")), ratio(zd.get("sessions_opened_per_sec"), rd.get("sessions_opened_per_sec"))))
        L.append("| resident bytes per connected session | %s | %s | %s |" % (fmt_num(z.get("bytes_per_session")), fmt_num(r.get("bytes_per_session")), ratio(z.get("bytes_per_session"), r.get("bytes_per_session"), False)))
        L.append("| sessions opened per second | %s | %s | %s |" % (fmt_num(z.get("open_per_sec")), fmt_num(r.get("open_per_sec")), ratio(z.get("open_per_sec"), r.get("open_per_sec"))))
        L.append("| pings per second (held) | %s | %s | |" % (fmt_num(z.get("pings_per_sec")), fmt_num(r.get("pings_per_sec"))))
        L.append("| server CPU while held (%% of a core) | %s | %s | %s |" % (fmt_num(z.get("cpu_percent_idle"), 1), fmt_num(r.get("cpu_percent_idle"), 1), ratio(z.get("cpu_percent_idle"), r.get("cpu_percent_idle"), False)))
        L.append("| ping round trip p99 | %s | %s | %s |" % (ms(z.get("ping_p99_us")), ms(r.get("ping_p99_us")), ratio(z.get("ping_p99_us"), r.get("ping_p99_us"), False)))
        ze, re_ = z.get("expiry") or {}, r.get("expiry") or {}
        L.append("| %s sessions vanish: first ephemeral gone | %s | %s | |" % (fmt_num(args.expire), ms(ze.get("first_gone_ms", 0) * 1000 or None), ms(re_.get("first_gone_ms", 0) * 1000 or None)))
        L.append("| ... all %s ephemerals gone | %s | %s | %s |" % (fmt_num(args.expire), ms(ze.get("all_gone_ms", 0) * 1000 or None), ms(re_.get("all_gone_ms", 0) * 1000 or None), ratio(ze.get("all_gone_ms"), re_.get("all_gone_ms"), False)))
        L.append("| ... first gone after the earliest last packet (rule: %d to %d ms) | %s | %s | |" % (args.expiry_timeout, args.expiry_timeout + args.tick_time, ms(ze.get("first_gone_after_earliest_last_packet_ms", 0) * 1000 or None), ms(re_.get("first_gone_after_earliest_last_packet_ms", 0) * 1000 or None)))
        L.append("| ... all gone after the latest last packet (rule: at most %d ms) | %s | %s | |" % (args.expiry_timeout + args.tick_time, ms(ze.get("all_gone_after_latest_last_packet_ms", 0) * 1000 or None), ms(re_.get("all_gone_after_latest_last_packet_ms", 0) * 1000 or None)))
        if args.detached:
            L.append("| %s without a connection expire together: first ephemeral gone after their deadline | %s | %s | |" % (fmt_num(args.detached), ms(zd.get("first_gone_after_deadline_ms", 0) * 1000 or None), ms(rd.get("first_gone_after_deadline_ms", 0) * 1000 or None)))
            L.append("| ... all %s gone after their deadline | %s | %s | %s |" % (fmt_num(args.detached), ms(zd.get("all_gone_after_deadline_ms", 0) * 1000 or None), ms(rd.get("all_gone_after_deadline_ms", 0) * 1000 or None), ratio(zd.get("all_gone_after_deadline_ms"), rd.get("all_gone_after_deadline_ms"), False)))
            for key, label in (("probe_p50_us", "p50"), ("probe_p99_us", "p99"), ("probe_max_us", "max")):
                L.append("| ... getData probe meanwhile, %s | %s | %s | %s |" % (label, ms(zd.get(key)), ms(rd.get(key)), ratio(zd.get(key), rd.get(key), False)))
            L.append("| ping round trip max (whole run) | %s | %s | %s |" % (ms(z.get("ping_max_us")), ms(r.get("ping_max_us")), ratio(z.get("ping_max_us"), r.get("ping_max_us"), False)))
        L.append("")
        failures(L, {"ZooKeeper": z, "rzk": r})
        short.append("| %s idle sessions: resident bytes per connected session | %s | %s | %s |" % (fmt_num(args.sessions), fmt_num(z.get("bytes_per_session")), fmt_num(r.get("bytes_per_session")), ratio(z.get("bytes_per_session"), r.get("bytes_per_session"), False)))
        if args.detached:
            short.append("| %s sessions: resident bytes per session | %s | %s | %s |" % (fmt_num(total), fmt_num(z.get("bytes_per_session_all")), fmt_num(r.get("bytes_per_session_all")), ratio(z.get("bytes_per_session_all"), r.get("bytes_per_session_all"), False)))
    w = res.get("watches")
    if w:
        z, r = w.get("zookeeper") or {}, w.get("rzk") or {}
        L.append("## %s watches\n" % fmt_num(args.watch_sessions * args.watch_keys))
        L.append("%d sessions each watch %s znodes (exists with a watch); then one setData on a znode all of them watch "
                 "(fan-out: from the setData sent until the last notification is read, median of 3). Then %s sessions "
                 "on one znode. One client thread reads every notification: its CPU is shown.\n" % (args.watch_sessions, fmt_num(args.watch_keys), fmt_num(args.fanout_sessions)))
        L.append("| | ZooKeeper 3.8 | rzk | rzk vs ZK |")
        L.append("|---|---:|---:|---:|")
        L.append("| resident bytes per watch | %s | %s | %s |" % (fmt_num(z.get("bytes_per_watch")), fmt_num(r.get("bytes_per_watch")), ratio(z.get("bytes_per_watch"), r.get("bytes_per_watch"), False)))
        L.append("| watches set per second | %s | %s | %s |" % (fmt_num(z.get("set_per_sec")), fmt_num(r.get("set_per_sec")), ratio(z.get("set_per_sec"), r.get("set_per_sec"))))
        L.append("| mntr watch_count | %s | %s | |" % (fmt_num(z.get("watch_count")), fmt_num(r.get("watch_count"))))
        L.append("| fan-out to %d sessions, p50 | %s | %s | %s |" % (args.watch_sessions, ms(z.get("fanout_p50_us")), ms(r.get("fanout_p50_us")), ratio(z.get("fanout_p50_us"), r.get("fanout_p50_us"), False)))
        if args.fanout_sessions:
            L.append("| fan-out to %s watchers, p50 | %s | %s | %s |" % (fmt_num(args.fanout_sessions), ms(z.get("wide_fanout_p50_us")), ms(r.get("wide_fanout_p50_us")), ratio(z.get("wide_fanout_p50_us"), r.get("wide_fanout_p50_us"), False)))
            L.append("| ... client CPU (%% of a core) | %s | %s | |" % (fmt_num(z.get("wide_client_cpu")), fmt_num(r.get("wide_client_cpu"))))
        L.append("")
        failures(L, {"ZooKeeper": z, "rzk": r})
        short.append("| %s watches: resident bytes per watch | %s | %s | %s |" % (fmt_num(args.watch_sessions * args.watch_keys), fmt_num(z.get("bytes_per_watch")), fmt_num(r.get("bytes_per_watch")), ratio(z.get("bytes_per_watch"), r.get("bytes_per_watch"), False)))
    short.append("")
    short.append("%s, %s cores, `bench/compare-scale.sh`; details in [docs/BENCH-scale.md](docs/BENCH-scale.md)." % (started.split(" ")[0], info["nproc"]))
    return "\n".join(L) + "\n", "\n".join(short)


def update_readme(short_md: str) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    start, end = "<!-- scale:start -->", "<!-- scale:end -->"
    block = "%s\n%s\n%s" % (start, short_md, end)
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\nAt scale (`bench/compare-scale.sh`, [docs/BENCH-scale.md](docs/BENCH-scale.md)):\n\n" + block + "\n"
    readme.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="tree,alone,sessions,watches")
    ap.add_argument("--servers", default="zookeeper,rzk")
    ap.add_argument("--nodes", default="2000000,5000000", help="tree sizes for both servers")
    ap.add_argument("--rzk-alone-nodes", type=int, default=20_000_000)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=18_000, help="connected sessions (open files cap them)")
    ap.add_argument("--detached", type=int, default=82_000, help="sessions without a connection, opened first")
    ap.add_argument("--detached-timeout", type=int, default=240_000, help="ms from the first detached session until all their timeouts end")
    ap.add_argument("--expire", type=int, default=10_000)
    ap.add_argument("--expiry-timeout", type=int, default=4000)
    ap.add_argument("--hold", type=int, default=20, help="seconds the idle sessions are held")
    ap.add_argument("--local-addrs", type=int, default=8)
    ap.add_argument("--watch-sessions", type=int, default=100)
    ap.add_argument("--watch-keys", type=int, default=10_000)
    ap.add_argument("--fanout-sessions", type=int, default=100_000)
    ap.add_argument("--tick-time", type=int, default=2000)
    ap.add_argument("--zk-heap", type=int, default=3072, help="ZooKeeper -Xmx in MB (at least; trees get 1.6 GB per million znodes)")
    ap.add_argument("--clients", type=int, default=32, help="sessions of the load step")
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCH-scale.md"))
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--reuse", metavar="DIR", help="start from DIR/summary.json of an earlier run: the steps and servers run now replace its entries")
    args = ap.parse_args()
    # compare.bench's settings for every run (the scale workloads end by themselves).
    args.client_threads, args.duration, args.warmup = 1, args.hold, 0
    steps = set(args.steps.split(","))
    kinds = [k for k in args.servers.split(",") if k]
    if not compare.rzk_bin().is_file():
        print("compare-scale: %s not found (cargo build --release -p rzk)" % compare.rzk_bin(), file=sys.stderr)
        return 2
    # Servers and the client inherit this: a connection is a file descriptor.
    want = args.sessions + args.fanout_sessions + 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    info = machine()
    log_dir = REPO / "bench" / ".work" / ("scale-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    work = log_dir / "servers"
    work.mkdir(parents=True)
    res: Dict[str, object] = {"tree": []}
    if args.reuse:
        res = json.loads((Path(args.reuse) / "summary.json").read_text())["res"]

    def tree_row(n: int) -> dict:
        for row in res["tree"]:
            if row["nodes"] == n:
                return row
        row = {"nodes": n}
        res["tree"].append(row)
        return row

    def save():
        (log_dir / "summary.json").write_text(json.dumps({"res": res, "info": info, "started": started, "args": vars(args)}, indent=1))

    def step(name, fn, *a):
        print("== %s" % name, file=sys.stderr, flush=True)
        try:
            r = fn(*a)
        except Exception as e:  # one failed step must not lose the others
            print("   failed: %s" % e, file=sys.stderr, flush=True)
            r = {"error": str(e)[-500:]}
        print("   %s" % json.dumps(r), file=sys.stderr, flush=True)
        save()
        return r

    if "tree" in steps:
        for n in [int(x) for x in args.nodes.split(",") if x]:
            row = tree_row(n)
            for k in kinds:
                row[k] = step("tree %d: %s" % (n, k), tree_step, args, k, n, work, log_dir)
    if "alone" in steps and args.rzk_alone_nodes > 0 and "rzk" in kinds:
        n = args.rzk_alone_nodes
        tree_row(n)["rzk"] = step("tree %d: rzk alone" % n, tree_step, args, "rzk", n, work, log_dir)
    for name, fn in (("sessions", sessions_step), ("watches", watches_step)):
        if name in steps:
            res.setdefault(name, {})
            for k in kinds:
                res[name][k] = step("%s: %s" % (name, k), fn, args, k, work, log_dir)
    save()
    cmdline = ("bench/compare-scale.sh " + " ".join(sys.argv[1:])).strip()
    report, short = build_report(args, res, info, started, cmdline)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    if not args.no_readme:
        update_readme(short)
    print("compare-scale: wrote %s (raw JSON in %s)" % (out, log_dir), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
