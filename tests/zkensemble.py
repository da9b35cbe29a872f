"""Multi-process ensembles for the tests: N servers (Apache ZooKeeper 3.8 or rzk, or a mix)
on 127.0.0.1, each with its own dataDir, myid, zoo.cfg and log, every peer link through a
`peerproxy.Proxy` the test can cut; plus a failover client that records a history for
`history.py`, and readers for the txn log and snapshot files a member leaves.

    with Ensemble("zookeeper", 3) as ens:       # every process stopped on exit, even on failure
        leader = ens.wait_for_leader()           # bounded; reads Mode: from `srvr`
        ens.isolate(leader.sid)                  # reset + refuse every link to and from it
        ens.heal()
        leader.kill9(); leader.start()           # same ports and data
        ens.wait_converged()                     # same Zxid everywhere

Topology. Member i listens on its own quorum and election ports (its `server.i` line);
for every other member j its zoo.cfg names two proxies of the link i->j, which forward
to j's real ports. The first message on an election connection names the connecting
server's election address, and ZooKeeper's challenge winner connects back to it: the
election proxies rewrite it to the proxy of the way back, so no byte bypasses them. So every byte between i and j passes a proxy of link i->j (the
connections i opened) or j->i (those j opened): `block(i, j)` stalls exactly the bytes
from i to j on all of them (a one-way partition), `cut(i, j)` resets and refuses both
links (a partition that TCP notices at once). Client ports are direct.

Both implementations get the same zoo.cfg keys (tickTime, initLimit, syncLimit, dataDir,
clientPort, clientPortAddress, peerType, server.N=127.0.0.1:q:e[:observer], ...);
ZooKeeper runs as `java ... QuorumPeerMain zoo.cfg`, rzk as `rzk server --config zoo.cfg`.
"""

from __future__ import annotations

import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import zkharness as h
from peerproxy import DOWN, UP, Proxy, ProxyHub, election_address_rewriter

# Ensemble timing: tickTime 500 ms keeps tests quick; syncLimit is generous (5 s) because
# three JVMs share two busy cores, and a follower dropped for a slow tick would make a test
# flaky rather than wrong. A killed or cut peer is noticed at once (RST). initLimit (5 s)
# bounds a ZooKeeper quirk: a leader whose would-be follower sits in a later election round
# waits initLimit ticks for it before electing again.
TICK_TIME = 500
INIT_LIMIT = 10
SYNC_LIMIT = 10

ZK_ENSEMBLE_JVM = [f for f in h.JVM_FLAGS if not f.startswith("-Xmx")] + ["-Xmx256m"]


def _ephemeral_range() -> Tuple[int, int]:
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def _port_pool(n: int) -> List[int]:
    """n distinct loopback ports that are free now, taken below the kernel's ephemeral
    range: ports from bind(0) are ephemeral ones, which any outgoing connection (the
    proxies', the servers' own) may take before the server binds them."""
    lo, _ = _ephemeral_range()
    top = lo - 1 if lo > 20000 else 65535
    bottom = 10000 if lo > 20000 else _ephemeral_range()[1] + 1
    rng = random.Random()
    out: List[int] = []
    while len(out) < n:
        port = rng.randint(bottom, top)
        if port in out:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            out.append(port)
        except OSError:
            pass
        finally:
            s.close()
    return out


def parse_srvr(text: str) -> Dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


# ----------------------------------------------------------------------------------------
# one member
# ----------------------------------------------------------------------------------------


class Member:
    """One ensemble member: its ports, dirs and process. start() keeps the dataDir."""

    def __init__(self, ens: "Ensemble", sid: int, kind: str, observer: bool):
        self.ens = ens
        self.sid = sid
        self.kind = kind
        self.observer = observer
        self.workdir = ens.workdir / ("s%d-%s" % (sid, kind))
        self.datadir = self.workdir / "data"
        self.cfg_path = self.workdir / "zoo.cfg"
        self.log_path = self.workdir / "server.log"
        self.client_port = 0
        self.quorum_port = 0
        self.election_port = 0
        self.proc: Optional[subprocess.Popen] = None
        self._logf = None
        self.starts = 0
        # the sids whose server.N lines its zoo.cfg lists (None: every member's), for
        # ensembles whose membership changes by rolling restarts
        self.servers: Optional[List[int]] = None

    # -- addresses -------------------------------------------------------------------
    @property
    def hosts(self) -> str:
        return "127.0.0.1:%d" % self.client_port

    @property
    def quorum_host(self) -> str:
        """The host of its server.N line: 127.0.0.<sid+1> with the ensemble's member_hosts."""
        return "127.0.0.%d" % (self.sid + 1) if self.ens.member_hosts else self.ens.server_host

    @property
    def address(self) -> Tuple[str, int]:
        return ("127.0.0.1", self.client_port)

    def __repr__(self):
        return "<s%d %s%s :%d>" % (self.sid, self.kind, " observer" if self.observer else "", self.client_port)

    # -- config ----------------------------------------------------------------------
    def config_lines(self) -> List[str]:
        cfg = {
            "tickTime": str(self.ens.timing["tickTime"]),
            "initLimit": str(self.ens.timing["initLimit"]),
            "syncLimit": str(self.ens.timing["syncLimit"]),
            "dataDir": str(self.datadir),
            "clientPort": str(self.client_port),
            "clientPortAddress": "127.0.0.1",
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "minSessionTimeout": str(h.MIN_SESSION_TIMEOUT),
            "maxSessionTimeout": str(h.MAX_SESSION_TIMEOUT),
        }
        if self.observer:
            cfg["peerType"] = "observer"
        cfg.update(self.ens.extra_cfg)
        cfg.update(self.ens.member_cfg.get(self.sid, {}))
        lines = ["%s=%s" % kv for kv in cfg.items()]
        for m in self.ens.members:
            if self.servers is not None and m.sid not in self.servers:
                continue
            if m.sid == self.sid or not self.ens.proxied:
                q, e = m.quorum_port, m.election_port
            else:
                q = self.ens.links[(self.sid, m.sid, "quorum")].port
                e = self.ens.links[(self.sid, m.sid, "election")].port
            addr = "%s:%d:%d" % (m.quorum_host, q, e)
            if self.ens.multi_address == "both-live":
                addr = "%s|127.0.0.1:%d:%d" % (addr, m.alt_quorum_port, m.alt_election_port)
            elif self.ens.multi_address == "first-dead":
                # its own line: two addresses it binds; the others': a dead one first
                first = (m.alt_quorum_port, m.alt_election_port) if m.sid == self.sid else (self.ens.dead_ports[0], self.ens.dead_ports[1])
                addr = "127.0.0.1:%d:%d|%s" % (first[0], first[1], addr)
            client = ";127.0.0.1:%d" % m.client_port if self.ens.client_addresses else ""
            lines.append("server.%d=%s%s%s" % (m.sid, addr, ":observer" if m.observer else "", client))
        if self.ens.multi_address:
            lines.append("multiAddress.enabled=true")
        return lines

    def write_config(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        (self.datadir / "myid").write_text("%d\n" % self.sid)
        self.cfg_path.write_text("\n".join(self.config_lines()) + "\n")
        if self.kind == "zookeeper":
            conf = self.workdir / "conf"
            conf.mkdir(exist_ok=True)
            (conf / "log4j.properties").write_text(
                "log4j.rootLogger=%s, FILE\n"
                "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
                "log4j.appender.FILE.File=%s\n"
                "log4j.appender.FILE.Append=true\n"
                "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.FILE.layout.ConversionPattern=%%d{ISO8601} %%-5p [%%t:%%C{1}@%%L] - %%m%%n\n"
                # The audit appender of ZooKeeper's shipped configuration (used with audit.enable).
                "log4j.logger.org.apache.zookeeper.audit.Slf4jAuditLogger=INFO, RFAAUDIT\n"
                "log4j.additivity.org.apache.zookeeper.audit.Slf4jAuditLogger=false\n"
                "log4j.appender.RFAAUDIT=org.apache.log4j.RollingFileAppender\n"
                "log4j.appender.RFAAUDIT.File=%s\n"
                "log4j.appender.RFAAUDIT.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.RFAAUDIT.layout.ConversionPattern=%%d{ISO8601} %%p %%c{2}: %%m%%n\n"
                % (self.ens.log_level, self.workdir / "zookeeper.log", self.workdir / "zookeeper_audit.log")
            )

    def command(self) -> List[str]:
        if self.kind == "rzk":
            return self.ens.wrap + [str(h.rzk_binary()), "server", "--config", str(self.cfg_path)]
        cp = ":".join([str(self.workdir / "conf")] + h.ZK_JARS + self.ens.zk_extra_jars)
        return (
            self.ens.wrap
            + [h.ZK_JAVA]
            + self.ens.zk_jvm
            + [
                "-Dlog4j.configuration=file:%s" % (self.workdir / "conf" / "log4j.properties"),
                "-Dzookeeper.admin.enableServer=false",
                "-Dzookeeper.4lw.commands.whitelist=*",
                "-Dzookeeper.jmx.log4j.disable=true",
                "-cp",
                cp,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(self.cfg_path),
            ]
        )

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> "Member":
        """Start the process (on the data it has); does not wait. See wait_serving()."""
        assert not self.is_running(), "%r is already running" % self
        self.write_config()
        self._logf = open(self.log_path, "ab")
        self._logf.write(("=== start %d of s%d (%s): %s\n" % (self.starts + 1, self.sid, self.kind, " ".join(self.command()))).encode())
        self._logf.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.ens.env)
        self.proc = h.spawn(self.command(), stdin=subprocess.DEVNULL, stdout=self._logf,
                            stderr=subprocess.STDOUT, cwd=str(self.workdir), env=env)
        self.starts += 1
        return self

    def kill9(self) -> None:
        """SIGKILL the process group at once (no shutdown hooks, nothing flushed)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        h.kill_process_group(self.proc, term_timeout=0.1)
        self.proc = None
        self._close_log()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        if self.proc is not None:
            h.kill_process_group(self.proc)
            self.proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError("s%d (%s) exited with %s\n%s" % (self.sid, self.kind, self.proc.returncode, self.log_tail()))

    # -- four-letter words -------------------------------------------------------------
    def srvr(self) -> Optional[Dict[str, str]]:
        """Parsed `srvr`, or None if the member is down or not serving (LOOKING)."""
        if not self.is_running():
            return None
        try:
            t = h.four_letter(self.client_port, "srvr", timeout=2.0)
        except (OSError, TimeoutError):
            return None
        if not t.startswith("Zookeeper version"):
            return None
        return parse_srvr(t)

    def mode(self) -> Optional[str]:
        s = self.srvr()
        return s.get("Mode") if s else None

    def zxid(self) -> Optional[int]:
        s = self.srvr()
        return int(s["Zxid"], 16) if s and "Zxid" in s else None

    def wait_serving(self, timeout: float = 60.0) -> str:
        def serving():
            self.check_alive()
            return self.mode()

        return h.wait_until(serving, timeout, 0.1, "s%d to serve" % self.sid)

    # -- files -------------------------------------------------------------------------
    @property
    def version_dir(self) -> Path:
        return self.datadir / "version-2"

    def txn_zxids(self) -> List[int]:
        """Every zxid in the member's txn log files, in file order."""
        return [e[0] for e in read_txn_logs(self.version_dir)]

    def snapshot_zxids(self) -> List[int]:
        return sorted(int(p.name.split(".", 1)[1], 16) for p in self.version_dir.glob("snapshot.*")
                      if re.fullmatch(r"snapshot\.[0-9a-f]+", p.name))

    def epochs(self) -> Tuple[Optional[int], Optional[int]]:
        """(acceptedEpoch, currentEpoch) from the epoch files."""
        def rd(n):
            try:
                return int((self.version_dir / n).read_text().strip())
            except (OSError, ValueError):
                return None
        return rd("acceptedEpoch"), rd("currentEpoch")

    def bind_failed(self) -> bool:
        """The member exited because a port was taken."""
        if self.proc is None or self.proc.poll() is None:
            return False
        t = self.log_text()
        return "Address already in use" in t or "AddrInUse" in t

    def log_text(self) -> str:
        """Everything the server logged (ZooKeeper: zookeeper.log; rzk: its stdout)."""
        out = ""
        for p in (self.log_path, self.workdir / "zookeeper.log"):
            try:
                out += p.read_text(errors="replace")
            except OSError:
                pass
        return out

    def log_tail(self, n: int = 40) -> str:
        out = []
        for p in (self.log_path, self.workdir / "zookeeper.log"):
            try:
                lines = p.read_text(errors="replace").splitlines()
            except OSError:
                continue
            # the harness polls every member with srvr: those lines would fill the tail
            lines = [ln for ln in lines if "Processing srvr command" not in ln]
            out.append("--- %s ---\n%s" % (p, "\n".join(lines[-n:])))
        return "\n".join(out)


# ----------------------------------------------------------------------------------------
# the ensemble
# ----------------------------------------------------------------------------------------


class Ensemble:
    """N members and the proxies between them. A context manager: __exit__ stops every
    process and proxy, also when the test failed; kept work dirs hold zoo.cfg and logs."""

    def __init__(self, kind="zookeeper", n: int = 3, observers: Iterable[int] = (), proxied: bool = True,
                 extra_cfg: Optional[Dict[str, str]] = None, member_cfg: Optional[Dict[int, Dict[str, str]]] = None,
                 name: str = "ensemble", workdir: Optional[Path] = None, zk_jvm: Optional[List[str]] = None,
                 log_level: str = "INFO", env: Optional[Dict[str, str]] = None, timing: Optional[Dict[str, int]] = None,
                 wrap: Optional[List[str]] = None, multi_address: Optional[str] = None,
                 client_addresses: bool = False, zk_extra_jars: Sequence[str] = (),
                 start_only: Optional[Iterable[int]] = None, server_host: str = "127.0.0.1",
                 member_hosts: bool = False):
        """extra_cfg: zoo.cfg keys for every member (member_cfg: per sid); zk_jvm: JVM flags
        for ZooKeeper members (default: small heap, quick start, for tests); log_level:
        ZooKeeper's log4j root level; env: added to every member's environment; timing:
        tickTime/initLimit/syncLimit overrides; wrap: a command prefix (e.g. nice -n 5).
        multi_address (unproxied ensembles only; ZooKeeper 3.6's `a|b` server lines):
        "both-live" gives every server a second pair of ports it binds too; "first-dead"
        lists, for every other server, a first address where nothing listens, so each
        connection must fail over to the second. client_addresses: each server.N line ends
        with `;127.0.0.1:<its clientPort>` (ZooKeeper 3.5's form), so members know each
        other's client ports. zk_extra_jars: added to ZooKeeper members' class path
        (netty's codec for a TLS quorum port). start_only: the sids start() starts (default:
        all); the others are there to be started later, each listing the sids given in its
        `servers`. server_host: the host of the server.N lines (a name that resolves to
        127.0.0.1 only, e.g. localhost for Kerberos principals). member_hosts (unproxied
        ensembles only): member N's server.N line names 127.0.0.<N+1>, its own loopback
        address, so members can share one port number (observerMasterPort: every observer
        connects to that number on a voter's quorum host); client ports stay on 127.0.0.1."""
        self.server_host = server_host
        assert not (member_hosts and proxied), "member_hosts needs an unproxied ensemble"
        self.member_hosts = member_hosts
        kinds = [kind] * n if isinstance(kind, str) else list(kind)
        assert len(kinds) == n
        self.workdir = Path(workdir) if workdir else h.make_workdir("%s-%s" % (name, "-".join(sorted(set(kinds)))))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.zk_jvm = list(zk_jvm) if zk_jvm is not None else ZK_ENSEMBLE_JVM
        self.log_level = log_level
        self.env = dict(env or {})
        self.timing = {"tickTime": TICK_TIME, "initLimit": INIT_LIMIT, "syncLimit": SYNC_LIMIT}
        self.timing.update(timing or {})
        self.wrap = list(wrap or [])
        self.zk_extra_jars = list(zk_extra_jars)
        self.extra_cfg = {k: str(v) for k, v in (extra_cfg or {}).items()}
        self.member_cfg = {sid: {k: str(v) for k, v in c.items()} for sid, c in (member_cfg or {}).items()}
        self.proxied = proxied
        self.client_addresses = client_addresses
        assert multi_address in (None, "both-live", "first-dead")
        assert not (multi_address and proxied), "multi-address lines need an unproxied ensemble"
        self.multi_address = multi_address
        # ports nobody binds: the dead first addresses of "first-dead"
        self.dead_ports = _port_pool(2) if multi_address == "first-dead" else []
        observers = set(observers)
        self.members = [Member(self, i + 1, kinds[i], (i + 1) in observers) for i in range(n)]
        self.start_only = set(start_only) if start_only is not None else None
        if self.start_only is not None:
            for m in self.members:
                m.servers = sorted(self.start_only)
        self.hub: Optional[ProxyHub] = None
        self.links: Dict[Tuple[int, int, str], Proxy] = {}
        self._assign_ports()
        if proxied:
            self.hub = ProxyHub()
            for a in self.members:
                for b in self.members:
                    if a is not b:
                        self.links[(a.sid, b.sid, "quorum")] = self.hub.add(
                            "s%d->s%d quorum" % (a.sid, b.sid), ("127.0.0.1", b.quorum_port))
                        self.links[(a.sid, b.sid, "election")] = self.hub.add(
                            "s%d->s%d election" % (a.sid, b.sid), ("127.0.0.1", b.election_port))
            # a's election connection to b announces a's address; b may connect back to it
            # (ZooKeeper does, when a has the smaller sid): make that the proxy b->a
            for (a, b, link), p in self.links.items():
                if link == "election":
                    back = self.links[(b, a, "election")]
                    p.rewrite_first_up = election_address_rewriter("127.0.0.1:%d" % back.port)

    def _assign_ports(self) -> None:
        ports = _port_pool(5 * len(self.members))
        for m in self.members:
            m.client_port, m.quorum_port, m.election_port, m.alt_quorum_port, m.alt_election_port = ports[:5]
            ports = ports[5:]
        for (a, b, link), p in self.links.items():
            m = self.member(b)
            p.retarget(("127.0.0.1", m.quorum_port if link == "quorum" else m.election_port))

    # -- access ----------------------------------------------------------------------
    def member(self, sid: int) -> Member:
        return self.members[sid - 1]

    def __getitem__(self, sid: int) -> Member:
        return self.member(sid)

    @property
    def hosts(self) -> str:
        """The connection string listing every member."""
        return ",".join(m.hosts for m in self.members)

    def hosts_of(self, members: Sequence[Member]) -> str:
        return ",".join(m.hosts for m in members)

    def running(self) -> List[Member]:
        return [m for m in self.members if m.is_running()]

    def voters(self) -> List[Member]:
        return [m for m in self.members if not m.observer]

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 90.0, attempts: int = 3) -> "Ensemble":
        """Start every member and wait for a leader. If a member could not bind a port
        (taken since it was chosen), everything starts again on fresh ports."""
        for attempt in range(attempts):
            for m in self.members:
                if self.start_only is None or m.sid in self.start_only:
                    m.start()
            try:
                self.wait_for_leader(timeout)
                return self
            except AssertionError:
                if attempt + 1 == attempts or not any(m.bind_failed() for m in self.members):
                    raise
            for m in self.members:
                m.stop()
            self._assign_ports()
        return self

    def stop(self) -> None:
        for m in self.members:
            try:
                m.stop()
            except Exception:
                pass
        if self.hub is not None:
            self.hub.close()
            self.hub = None

    def __enter__(self) -> "Ensemble":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def check_alive(self) -> None:
        for m in self.members:
            m.check_alive()

    # -- roles -----------------------------------------------------------------------
    def modes(self, members: Optional[Sequence[Member]] = None) -> Dict[int, Optional[str]]:
        return {m.sid: m.mode() for m in (members or self.running())}

    def wait_for_leader(self, timeout: float = 60.0, members: Optional[Sequence[Member]] = None,
                        not_sid: Optional[int] = None) -> Member:
        """Wait until every member given (default: every running one) serves, exactly one of
        them leads (not `not_sid`, when given) and the rest follow or observe. Bounded."""
        last = {}

        def ok():
            nonlocal last
            self.check_alive()
            ms = list(members) if members else self.running()
            last = self.modes(ms)
            leaders = [sid for sid, mode in last.items() if mode == "leader"]
            if len(leaders) != 1 or leaders[0] == not_sid:
                return None
            if any(mode not in ("leader", "follower", "observer") for mode in last.values()):
                return None
            return self.member(leaders[0])

        try:
            return h.wait_until(ok, timeout, 0.1, "a leader")
        except TimeoutError:
            raise AssertionError("no leader within %.0fs; modes %s\n%s" % (timeout, last, self.log_tails()))

    def leader(self) -> Optional[Member]:
        ls = [m for m in self.running() if m.mode() == "leader"]
        return ls[0] if len(ls) == 1 else None

    def followers(self) -> List[Member]:
        return [m for m in self.running() if m.mode() == "follower"]

    def wait_converged(self, timeout: float = 60.0, members: Optional[Sequence[Member]] = None) -> int:
        """Wait until every given member (default: all running) serves and reports the same
        Zxid in `srvr`; returns it."""
        last = {}

        def ok():
            nonlocal last
            self.check_alive()
            ms = list(members) if members else self.running()
            last = {m.sid: m.zxid() for m in ms}
            vals = set(last.values())
            if None in vals or len(vals) != 1:
                return None
            return vals.pop() or -1

        try:
            z = h.wait_until(ok, timeout, 0.1, "the same zxid everywhere")
        except TimeoutError:
            raise AssertionError("members did not converge within %.0fs: zxids %s\n%s" % (
                timeout, {k: (hex(v) if v is not None else None) for k, v in last.items()}, self.log_tails()))
        return 0 if z == -1 else z

    # -- faults ----------------------------------------------------------------------
    # Each call changes every proxy it touches in one step on the proxy thread, so no peer
    # can slip a message through a link that is about to be cut (a partition that forms
    # link by link is a different, messier fault: ZooKeeper re-elects through the gaps).

    def _atomically(self, actions) -> None:
        def run():
            for proxy, method, args in actions:
                getattr(proxy, method)(*args)

        self.hub.call(run)

    def _set_direction(self, src: int, dst: int, is_open: bool, links=("quorum", "election")) -> None:
        acts = []
        for (x, y, link), p in self.links.items():
            if link not in links:
                continue
            if (x, y) == (src, dst):
                acts.append((p, "_set_open", (UP, is_open)))
            elif (x, y) == (dst, src):
                acts.append((p, "_set_open", (DOWN, is_open)))
        self._atomically(acts)

    def block(self, src: int, dst: int, links=("quorum", "election")) -> None:
        """Stall every byte from member src to member dst (one way): UP on src's links to
        dst, DOWN on dst's links to src. Connections stay open; bytes wait."""
        self._set_direction(src, dst, False, links)

    def unblock(self, src: int, dst: int, links=("quorum", "election")) -> None:
        self._set_direction(src, dst, True, links)

    def cut_pairs(self, pairs, links=("quorum", "election")) -> None:
        """Reset every connection between each pair (a, b) and refuse new ones, both ways,
        all in one step."""
        want = {frozenset(pr) for pr in pairs}
        self._atomically([(p, "_cut", ()) for (x, y, link), p in self.links.items()
                          if link in links and frozenset((x, y)) in want])

    def cut(self, a: int, b: int, links=("quorum", "election")) -> None:
        self.cut_pairs([(a, b)], links)

    def partition(self, *groups: Sequence[int]) -> None:
        """Cut every link between members of different groups; a member in no group is
        cut from everyone."""
        group_of = {}
        for i, g in enumerate(groups):
            for sid in g:
                group_of[sid] = i
        self.cut_pairs([(a.sid, b.sid) for a in self.members for b in self.members
                        if a.sid < b.sid and group_of.get(a.sid, -a.sid) != group_of.get(b.sid, -b.sid)])

    def log_unreplicated_proposal(self, leader: Member, z0: int, path: str = "/trunc/victim"):
        """Has `leader` log a create of `path` that no follower receives: its links to the
        followers are blocked (and stay blocked on return) before a raw session asks for the
        create. `z0` is the last zxid every member holds. Returns the proposal's zxid and the
        session that asked (still open)."""
        h.wait_until(lambda: z0 in leader.txn_zxids(), 10, what="the leader's log to hold its last zxid")
        victim = h.RawSession(*leader.address)
        victim.connect(10000)
        for m in self.members:
            if m is not leader:
                self.block(leader.sid, m.sid)
        victim.send_frame(h.Jute().int(1).int(h.OP["create"]).string(path).buffer(b"never")
                          .acls(h.OPEN_ACL).int(0).bytes())
        h.wait_until(lambda: max(leader.txn_zxids()) > z0, 5, what="the leader to log the proposal")
        return max(leader.txn_zxids()), victim

    def isolate(self, sid: int, links=("quorum", "election")) -> None:
        self.cut_pairs([(sid, m.sid) for m in self.members if m.sid != sid], links)

    def heal(self) -> None:
        """Every link open again, both ways."""
        self._atomically([(p, "_heal", ()) for p in self.links.values()])

    def heal_pairs(self, pairs, links=("quorum", "election")) -> None:
        """Open the links between each pair (a, b) again, both ways."""
        want = {frozenset(pr) for pr in pairs}
        self._atomically([(p, "_heal", ()) for (x, y, link), p in self.links.items()
                          if link in links and frozenset((x, y)) in want])

    # -- diagnostics -------------------------------------------------------------------
    def log_tails(self, n: int = 25) -> str:
        return "\n".join("=== s%d %s\n%s" % (m.sid, m.kind, m.log_tail(n)) for m in self.members)


# ----------------------------------------------------------------------------------------
# data files
# ----------------------------------------------------------------------------------------

TXN_LOG_MAGIC = 0x5A4B4C47  # "ZKLG"


def read_txn_logs(version_dir: Path) -> List[Tuple[int, int, int, int]]:
    """(zxid, type, client_id, cxid) of every intact record in the log.* files of a
    version-2 dir, oldest file first; a torn or zero tail ends a file."""
    out = []
    files = []
    for p in Path(version_dir).glob("log.*"):
        try:
            files.append((int(p.name.split(".", 1)[1], 16), p))
        except ValueError:
            continue
    for _, p in sorted(files):
        try:
            d = p.read_bytes()
        except OSError:
            continue
        if len(d) < 16 or struct.unpack_from(">i", d, 0)[0] != TXN_LOG_MAGIC:
            continue
        off = 16
        while off + 12 <= len(d):
            crc, n = struct.unpack_from(">qi", d, off)
            if n <= 0 or off + 12 + n + 1 > len(d):
                break
            txn = d[off + 12 : off + 12 + n]
            if zlib.adler32(txn) != crc & 0xFFFFFFFF or d[off + 12 + n] != 0x42:
                break
            client_id, cxid, zxid, _time, typ = struct.unpack_from(">qiqqi", txn, 0)
            out.append((zxid, typ, client_id, cxid))
            off += 12 + n + 1
    return out


def zxid_str(z: Optional[int]) -> str:
    return "None" if z is None else "0x%x" % z


# ----------------------------------------------------------------------------------------
# a client that fails over between members and records what it saw
# ----------------------------------------------------------------------------------------


class Op(dict):
    """One client operation in a history: client, session, kind (create/set/get/sync),
    path, value, start/end (monotonic s), status ok|fail|unknown, err, zxid (reply
    header), stat fields (czxid, mzxid, version) when the reply had a Stat."""

    __getattr__ = dict.get


class FailoverClient:
    """A blocking raw-protocol client over a list of members. It keeps its session across
    members (re-attaching with its last seen zxid, as real clients do) and records each
    operation as an `Op` with the reply header's zxid, which kazoo does not expose. An
    operation whose connection broke before the reply is `unknown` (it may or may not have
    happened); an error reply is `fail`. Not thread-safe: one thread per client."""

    def __init__(self, name: str, members: Sequence[Member], history: Optional[list] = None,
                 session_timeout_ms: int = 10000, io_timeout: float = 5.0, seed: Optional[int] = None,
                 retry_sleep: float = 0.05):
        self.name = name
        self.addrs = [m.address for m in members]
        self.history = history if history is not None else []
        self.session_timeout_ms = session_timeout_ms
        self.io_timeout = io_timeout
        self.retry_sleep = retry_sleep  # pause after a round of members refused us
        self.rng = random.Random(seed if seed is not None else name)
        self.next = self.rng.randrange(len(self.addrs))
        self.raw: Optional[h.RawSession] = None
        self.session_id = 0
        self.passwd = b"\x00" * 16
        self.last_zxid = 0
        self.sessions: List[int] = []  # every session id this client had (new one after expiry)
        self.connected_to: Optional[Tuple[str, int]] = None
        self.reconnects = 0
        self._lock = threading.Lock()

    # -- connection --------------------------------------------------------------------
    def _connect(self, deadline: float) -> None:
        while True:
            addr = self.addrs[self.next % len(self.addrs)]
            self.next += 1
            try:
                r = h.RawSession(addr[0], addr[1], timeout=self.io_timeout)
                r.last_zxid = self.last_zxid
                try:
                    r.connect(self.session_timeout_ms, self.session_id, self.passwd, self.last_zxid)
                except BaseException:
                    r.close()
                    raise
                if r.negotiated_timeout <= 0:
                    # the session expired: start a new one (the history shows the switch)
                    r.close()
                    self.session_id, self.passwd = 0, b"\x00" * 16
                    continue
                if r.session_id != self.session_id:
                    self.sessions.append(r.session_id)
                self.raw, self.session_id, self.passwd = r, r.session_id, r.passwd
                self.connected_to = addr
                return
            except (OSError, h.ConnectionClosed, TimeoutError, struct.error):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("%s: no member took the session before the deadline" % self.name)
            if self.next % len(self.addrs) == 0:
                time.sleep(self.retry_sleep)

    def _dead(self) -> bool:
        """The connection was closed by the server (EOF or reset waiting to be read)."""
        s = self.raw.sock
        try:
            readable, _, _ = select.select([s], [], [], 0)
            if not readable:
                return False
            return s.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop(self) -> None:
        if self.raw is not None:
            self.raw.close()
            self.raw = None
            self.connected_to = None
            self.reconnects += 1

    def close(self) -> None:
        """Close the session (best effort) and the connection."""
        if self.raw is not None:
            try:
                self.raw.close_session()
            except Exception:
                pass
            self.raw.close()
            self.raw = None

    # -- one request -------------------------------------------------------------------
    def _call(self, op: Op, opcode: int, body: bytes, connect_timeout: float):
        """Send; fill op's status/zxid/err; return the reply reader or None."""
        start_deadline = time.monotonic() + connect_timeout
        if self.raw is not None and self._dead():
            self._drop()  # the server closed it while we were idle: not this op's fault
        if self.raw is None:
            try:
                self._connect(start_deadline)
            except TimeoutError:
                op.update(status="fail", err="noserver", start=time.monotonic(), end=time.monotonic())
                return None
        op["session"] = self.session_id
        op["server"] = self.connected_to[1] if self.connected_to else None
        op["start"] = time.monotonic()
        try:
            _, zxid, err, r = self.raw.request(opcode, body)
        except (OSError, h.ConnectionClosed, TimeoutError, struct.error) as e:
            op.update(status="unknown", err=type(e).__name__, end=time.monotonic())
            self._drop()
            return None
        op["end"] = time.monotonic()
        op["zxid"] = zxid
        if zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        if err != 0:
            op.update(status="fail", err=err)
            return None
        op["status"] = "ok"
        return r

    def _record(self, op: Op) -> Op:
        with self._lock:
            self.history.append(op)
        return op

    @staticmethod
    def _stat(op: Op, st: Dict[str, int]) -> None:
        op.update(czxid=st["czxid"], mzxid=st["mzxid"], version=st["version"], ephemeralOwner=st["ephemeralOwner"])

    # -- operations --------------------------------------------------------------------
    def create(self, path: str, value: bytes = b"", ephemeral: bool = False, connect_timeout: float = 30.0) -> Op:
        """create2: the reply's Stat gives the txn's zxid (czxid)."""
        op = Op(client=self.name, kind="create", path=path, value=value)
        body = h.Jute().string(path).buffer(value).acls(h.OPEN_ACL).int(1 if ephemeral else 0).bytes()
        r = self._call(op, h.OP["create2"], body, connect_timeout)
        if r is not None:
            r.string()
            self._stat(op, r.stat())
        return self._record(op)

    def set(self, path: str, value: bytes, version: int = -1, connect_timeout: float = 30.0) -> Op:
        op = Op(client=self.name, kind="set", path=path, value=value)
        body = h.Jute().string(path).buffer(value).int(version).bytes()
        r = self._call(op, h.OP["setData"], body, connect_timeout)
        if r is not None:
            self._stat(op, r.stat())
        return self._record(op)

    def get(self, path: str, connect_timeout: float = 30.0, kind: str = "get") -> Op:
        op = Op(client=self.name, kind=kind, path=path)
        body = h.Jute().string(path).bool(False).bytes()
        r = self._call(op, h.OP["getData"], body, connect_timeout)
        if r is not None:
            op["value"] = r.buffer() or b""
            self._stat(op, r.stat())
        return self._record(op)

    def sync(self, path: str = "/", connect_timeout: float = 30.0) -> Op:
        op = Op(client=self.name, kind="sync", path=path)
        self._call(op, h.OP["sync"], h.Jute().string(path).bytes(), connect_timeout)
        return self._record(op)

    def create_each(self, paths: Sequence[str], value: bytes) -> List[str]:
        """Creates every path with `value`, each acknowledged; the paths."""
        for p in paths:
            assert self.create(p, value).status == "ok", p
        return list(paths)

    def sync_read_each(self, paths: Sequence[str]) -> None:
        """A linearizable read of every path: each must be there (an acknowledged create)."""
        for p in paths:
            o = self.sync_get(p)
            assert o.status == "ok" and o.value is not None, (p, o)

    def sync_get(self, path: str, connect_timeout: float = 30.0) -> Op:
        """sync then getData on the same connection: a linearizable read if both succeed.
        Recorded as one op (kind sync_get) from the sync's start to the get's end."""
        s = self.sync(path, connect_timeout)
        self.history.remove(s)
        if s.status != "ok":
            s["kind"] = "sync_get"
            return self._record(s)
        g = self.get(path, connect_timeout, kind="sync_get")
        g["start"] = s.start
        return g


def create_alternating(clients: Sequence[Tuple["FailoverClient", str]], rounds: int) -> List[str]:
    """Round i creates /<name><i> (data x<i>) through each (client, name) in turn; the paths."""
    paths = []
    for i in range(rounds):
        for c, name in clients:
            paths += c.create_each(["/%s%d" % (name, i)], b"x%d" % i)
    return paths


class OutputLines:
    """A child's output, line by line, read by a thread; wait for and count patterns."""

    def __init__(self, stream):
        self.lines: List[str] = []
        self.cv = threading.Condition()
        threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _run(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            with self.cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cv.notify_all()

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        with self.cv:
            return sum(1 for l in self.lines if rx.search(l))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for l in self.lines:
                    if rx.search(l):
                        return l
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r within %.0fs; got:\n%s" % (pattern, timeout, "\n".join(self.lines[-80:])))
                self.cv.wait(left)

    def text(self) -> str:
        with self.cv:
            return "\n".join(self.lines)


# ----------------------------------------------------------------------------------------
# trees
# ----------------------------------------------------------------------------------------


def dump_tree(member: Member, root: str = "/", skip=("/zookeeper",)) -> Dict[str, tuple]:
    """path -> (data, czxid, mzxid, version, cversion, ephemeralOwner, sorted children) of
    every znode under root, read from that member alone after a sync."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=member.hosts, timeout=10.0, connection_retry={"max_tries": 20, "delay": 0.1, "max_delay": 0.5})
    zk.start(timeout=30)
    try:
        zk.sync(root)
        out = {}

        def walk(p):
            if p in skip:
                return
            data, st = zk.get(p)
            kids = sorted(zk.get_children(p))
            out[p] = (data, st.czxid, st.mzxid, st.version, st.cversion, st.ephemeralOwner, tuple(kids))
            for k in kids:
                walk(("" if p == "/" else p) + "/" + k)

        walk(root)
        return out
    finally:
        zk.stop()
        zk.close()


def assert_same_trees(members: Sequence[Member], root: str = "/") -> Dict[str, tuple]:
    """Every member holds the same tree (data, zxids, versions, children, owners)."""
    dumps = {m.sid: dump_tree(m, root) for m in members}
    first = members[0].sid
    for sid, d in dumps.items():
        if d != dumps[first]:
            a, b = dumps[first], d
            diff = sorted(set(a) ^ set(b))[:10] + [p for p in a if p in b and a[p] != b[p]][:10]
            raise AssertionError("s%d and s%d hold different trees; first differences: %s" % (
                first, sid, [(p, a.get(p), b.get(p)) for p in diff]))
    return dumps[first]


def main() -> int:
    """Start an ensemble by hand and keep it up until Ctrl-C (debugging aid):
        .venv/bin/python tests/zkensemble.py --kind rzk -n 3
        .venv/bin/python tests/zkensemble.py --kind zookeeper,zookeeper,rzk --no-proxies
    """
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="rzk", help="zookeeper, rzk, or one per member, comma separated")
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--observers", default="", help="sids of observers, comma separated")
    ap.add_argument("--no-proxies", action="store_true", help="direct peer links")
    a = ap.parse_args()
    kinds = a.kind.split(",")
    kind = kinds[0] if len(kinds) == 1 else kinds
    obs = [int(x) for x in a.observers.split(",") if x]
    ens = Ensemble(kind, a.n, observers=obs, proxied=not a.no_proxies, name="manual")
    try:
        ens.start()
        print("connection string: %s" % ens.hosts)
        for m in ens.members:
            print("  s%d %-9s %-8s client %d  quorum %d  election %d  %s" % (
                m.sid, m.kind, m.mode(), m.client_port, m.quorum_port, m.election_port, m.workdir))
        print("Ctrl-C stops every server (work dirs are kept)")
        while True:
            time.sleep(1)
            ens.check_alive()
    except KeyboardInterrupt:
        pass
    finally:
        ens.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
