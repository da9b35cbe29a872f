"""Test harness: start Apache ZooKeeper or rzk from a generated zoo.cfg, talk
to them over raw sockets (jute framing), four-letter words.

Everything binds to 127.0.0.1 on a free port; every process is started in its
own process group and killed (SIGTERM, then SIGKILL) on stop, at interpreter
exit, and on SIGTERM/SIGINT of the test runner.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
# server work dirs (zoo.cfg, data, logs) and transcripts; gitignored
WORK_ROOT = Path(os.environ.get("RZK_TEST_WORKDIR") or (REPO_ROOT / "tests" / ".work"))

# --------------------------------------------------------------------------
# Apache ZooKeeper (Debian packages) locations
# --------------------------------------------------------------------------

ZK_JAVA = os.environ.get("ZK_JAVA", shutil.which("java") or "/usr/bin/java")
# zookeeper.jar carries a Class-Path manifest pulling in netty, jute,
# slf4j-api, ...; Debian ships no slf4j binding with it, so add log4j 1.2.
ZK_JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    # The AdminServer (Jetty, from zookeeper.jar's Class-Path manifest) needs the
    # servlet API, which the manifest does not list (Debian: libservlet-api-java).
    "/usr/share/java/servlet-api.jar",
]
ZK_CLI = os.environ.get("ZK_CLI", "/usr/share/zookeeper/bin/zkCli.sh")
CLI_MT = os.environ.get("ZK_CLI_MT", "/usr/lib/zookeeper/bin/cli_mt")
JVM_FLAGS = [
    "-Xms32m",
    "-Xmx384m",
    "-Xss512k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
]

# Server settings shared by both implementations (written to zoo.cfg).
TICK_TIME = 500
MIN_SESSION_TIMEOUT = 1000
MAX_SESSION_TIMEOUT = 60000
CONTAINER_CHECK_INTERVAL_MS = 1000
JUTE_MAXBUFFER = 0xFFFFF  # 1048575, the ZooKeeper default


def rzk_binary() -> Path:
    p = os.environ.get("RZK_BIN")
    if p:
        return Path(p)
    return REPO_ROOT / "target" / "debug" / "rzk"


def rzk_available() -> bool:
    b = rzk_binary()
    return b.is_file() and os.access(b, os.X_OK)


def zookeeper_available() -> bool:
    return os.path.isfile("/usr/share/java/zookeeper.jar") and bool(ZK_JAVA)


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def make_workdir(prefix: str) -> Path:
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix + "-", dir=str(WORK_ROOT)))


# --------------------------------------------------------------------------
# process bookkeeping
# --------------------------------------------------------------------------

_LIVE: Dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def _register(p: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE[p.pid] = p


def _unregister(p: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(p.pid, None)


def kill_process_group(p: subprocess.Popen, term_timeout: float = 5.0) -> None:
    """SIGTERM the process group of p (p was started with its own session),
    wait, then SIGKILL. Only ever signals the group led by p.pid."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(term_timeout)
        except subprocess.TimeoutExpired:
            pass
    # kill whatever is left in the group (also children of an exited leader)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass
    _unregister(p)


def spawn(cmd: List[str], **kw) -> subprocess.Popen:
    """Popen in a new session (= new process group) and remember it."""
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(cmd, **kw)
    _register(p)
    return p


def kill_all_started() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for p in procs:
        kill_process_group(p, term_timeout=2.0)


atexit.register(kill_all_started)


def _install_signal_cleanup() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        prev = signal.getsignal(sig)

        def handler(signum, frame, _prev=prev):
            kill_all_started()
            if callable(_prev):
                _prev(signum, frame)
            else:
                sys.exit(128 + signum)

        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):
            pass


_install_signal_cleanup()


def run_bounded(cmd, *, input=None, timeout=60.0, env=None, cwd=None) -> subprocess.CompletedProcess:
    """subprocess.run, but in its own process group that is killed on
    timeout (zkCli.sh forks java; a plain run() would leave it behind)."""
    p = spawn(
        cmd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process_group(p, term_timeout=1.0)
        out, err = p.communicate()
        raise AssertionError(
            "command timed out after %.0fs: %r\nstdout:\n%s\nstderr:\n%s"
            % (timeout, cmd, _dec(out), _dec(err))
        )
    finally:
        kill_process_group(p, term_timeout=1.0)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def _dec(b) -> str:
    if b is None:
        return ""
    if isinstance(b, bytes):
        return b.decode("utf-8", "replace")
    return b


# --------------------------------------------------------------------------
# four letter words
# --------------------------------------------------------------------------


def four_letter(port: int, cmd: str, timeout: float = 5.0, host: str = "127.0.0.1") -> str:
    """Send a four letter word, read until the server closes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd.encode("ascii"))
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                raise TimeoutError("4lw %r: no EOF within %.1fs (got %r)" % (cmd, timeout, b"".join(chunks)))
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


# --------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------


class ServerStartError(RuntimeError):
    pass


class Server:
    """One standalone server (Apache ZooKeeper or rzk) with its own dataDir."""

    kind = "base"
    ready_timeout = 60.0

    def __init__(self, workdir: Optional[Path] = None, extra_cfg: Optional[Dict[str, str]] = None):
        self.workdir = Path(workdir) if workdir else make_workdir(self.kind)
        self.datadir = self.workdir / "data"
        self.cfg_path = self.workdir / "zoo.cfg"
        self.log_path = self.workdir / "server.log"
        self.extra_cfg = dict(extra_cfg or {})
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self._logf = None

    # -- configuration --------------------------------------------------
    def config_lines(self) -> List[str]:
        cfg = {
            "tickTime": str(TICK_TIME),
            "initLimit": "10",
            "syncLimit": "5",
            "dataDir": str(self.datadir),
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "extendedTypesEnabled": "true",
            "minSessionTimeout": str(MIN_SESSION_TIMEOUT),
            "maxSessionTimeout": str(MAX_SESSION_TIMEOUT),
            # Not a zoo.cfg key for Apache ZooKeeper (it reads the
            # znode.container.checkIntervalMs system property, which we also
            # pass); rzk is expected to honour it from zoo.cfg.
            "znode.container.checkIntervalMs": str(CONTAINER_CHECK_INTERVAL_MS),
        }
        cfg.update(self.extra_cfg)
        return ["%s=%s" % kv for kv in cfg.items()]

    def write_config(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.cfg_path.write_text("\n".join(self.config_lines()) + "\n")

    # -- lifecycle ---------------------------------------------------------
    def command(self) -> List[str]:
        raise NotImplementedError

    def env(self) -> Dict[str, str]:
        return dict(os.environ)

    @property
    def hosts(self) -> str:
        return "127.0.0.1:%d" % self.port

    @property
    def address(self) -> Tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self, attempts: int = 3) -> "Server":
        last = None
        for _ in range(attempts):
            self.port = free_port()
            if self.datadir.exists() and not self.keep_data:
                shutil.rmtree(self.datadir)
            self.write_config()
            self._logf = open(self.log_path, "ab")
            self._logf.write(("=== starting %s on port %d: %s\n" % (self.kind, self.port, " ".join(self.command()))).encode())
            self._logf.flush()
            self.proc = spawn(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._logf,
                stderr=subprocess.STDOUT,
                cwd=str(self.workdir),
                env=self.env(),
            )
            try:
                self._wait_ready()
                return self
            except ServerStartError as e:
                last = e
                self.stop()
                if "Address already in use" not in self.log_tail(200):
                    break
        raise last  # type: ignore[misc]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        first_accept = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    "%s exited with %s during start-up\n--- log tail ---\n%s"
                    % (self.kind, self.proc.returncode, self.log_tail())
                )
            try:
                if self.ready_check():
                    return
                if first_accept is None:
                    first_accept = time.monotonic()
            except (OSError, TimeoutError):
                pass
            if first_accept is not None and self.accept_without_ruok_after is not None:
                if time.monotonic() - first_accept > self.accept_without_ruok_after:
                    return
            time.sleep(0.1)
        raise ServerStartError(
            "%s not ready on port %s within %.0fs\n--- log tail ---\n%s"
            % (self.kind, self.port, self.ready_timeout, self.log_tail())
        )

    accept_without_ruok_after: Optional[float] = None
    # Restart on the data a previous run left (durability tests); a fresh start wipes it.
    keep_data = False

    def ready_check(self) -> bool:
        return four_letter(self.port, "ruok", timeout=2.0).strip() == "imok"

    def stop(self) -> None:
        if self.proc is not None:
            kill_process_group(self.proc)
            self.proc = None
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def cleanup(self) -> None:
        """Stop and remove the data dir (logs are kept unless KEEP_WORK=0)."""
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def __repr__(self):
        return "<%s port=%s workdir=%s>" % (self.kind, self.port, self.workdir)


class ZooKeeperServer(Server):
    """Apache ZooKeeper 3.8 standalone (ZooKeeperServerMain), run with java."""

    kind = "zookeeper"
    ready_timeout = 90.0

    def write_config(self) -> None:
        super().write_config()
        conf = self.workdir / "conf"
        conf.mkdir(exist_ok=True)
        (conf / "log4j.properties").write_text(
            "log4j.rootLogger=INFO, FILE\n"
            "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
            "log4j.appender.FILE.File=%s\n"
            "log4j.appender.FILE.Append=true\n"
            "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.FILE.layout.ConversionPattern=%%d{ISO8601} %%-5p [%%t:%%C{1}@%%L] - %%m%%n\n"
            # The audit appender of ZooKeeper's shipped logging configuration (written only
            # with audit.enable), in the working directory as rzk's default puts its own.
            "log4j.logger.org.apache.zookeeper.audit.Slf4jAuditLogger=INFO, RFAAUDIT\n"
            "log4j.additivity.org.apache.zookeeper.audit.Slf4jAuditLogger=false\n"
            "log4j.appender.RFAAUDIT=org.apache.log4j.RollingFileAppender\n"
            "log4j.appender.RFAAUDIT.File=%s\n"
            "log4j.appender.RFAAUDIT.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.RFAAUDIT.layout.ConversionPattern=%%d{ISO8601} %%p %%c{2}: %%m%%n\n"
            "log4j.appender.RFAAUDIT.MaxFileSize=10MB\n"
            "log4j.appender.RFAAUDIT.MaxBackupIndex=10\n"
            % (self.workdir / "zookeeper.log", self.workdir / "zookeeper_audit.log")
        )

    def command(self) -> List[str]:
        cp = ":".join([str(self.workdir / "conf")] + ZK_JARS)
        return (
            [ZK_JAVA]
            + JVM_FLAGS
            + [
                "-Dlog4j.configuration=file:%s" % (self.workdir / "conf" / "log4j.properties"),
                "-Dzookeeper.admin.enableServer=%s" % self.extra_cfg.get("admin.enableServer", "false"),
                "-Dzookeeper.extendedTypesEnabled=true",
                "-Dzookeeper.4lw.commands.whitelist=*",
                "-Dznode.container.checkIntervalMs=%d" % CONTAINER_CHECK_INTERVAL_MS,
                "-Dzookeeper.jmx.log4j.disable=true",
                "-cp",
                cp,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                str(self.cfg_path),
            ]
        )

    def ready_check(self) -> bool:
        # ruok answers imok even before the server is serving requests;
        # srvr says "not currently serving requests" until it is.
        if four_letter(self.port, "ruok", timeout=2.0).strip() != "imok":
            return False
        return four_letter(self.port, "srvr", timeout=2.0).startswith("Zookeeper version")

    def log_tail(self, n: int = 60) -> str:
        out = super().log_tail(n)
        zl = self.workdir / "zookeeper.log"
        if zl.exists():
            lines = zl.read_text(errors="replace").splitlines()
            out += "\n--- zookeeper.log ---\n" + "\n".join(lines[-n:])
        return out


class RzkServer(Server):
    """rzk, started as `rzk server --config zoo.cfg`."""

    kind = "rzk"
    ready_timeout = 30.0
    # rzk may not implement ruok yet: accept a listening port after a while.
    accept_without_ruok_after = 3.0

    def command(self) -> List[str]:
        return [str(rzk_binary()), "server", "--config", str(self.cfg_path)]

    def env(self) -> Dict[str, str]:
        e = dict(os.environ)
        e.setdefault("RUST_BACKTRACE", "1")
        return e


SERVER_KINDS = {"zookeeper": ZooKeeperServer, "rzk": RzkServer}


class PropsZooKeeper(ZooKeeperServer):
    """ZooKeeper with JVM system properties (`-D...`) before its class path, as zkServer.sh
    passes SERVER_JVMFLAGS."""

    props: list = []

    def command(self):
        cmd = super().command()
        i = cmd.index("-cp")
        return cmd[:i] + self.props + cmd[i:]


class PropsRzk(RzkServer):
    """rzk takes the same properties as zkServer.sh passes them: in SERVER_JVMFLAGS."""

    props: list = []

    def env(self):
        e = super().env()
        e["SERVER_JVMFLAGS"] = "-Xmx512m " + " ".join(self.props)
        return e


def server_with_props(kind: str, props, **cfg) -> "Server":
    """A server (not started) of `kind` given JVM system properties `props` and zoo.cfg keys."""
    cls = PropsZooKeeper if kind == "zookeeper" else PropsRzk
    s = cls(extra_cfg={k: str(v) for k, v in cfg.items()})
    s.props = list(props)
    return s


def make_server(kind: str, **kw) -> Server:
    return SERVER_KINDS[kind](**kw)


# --------------------------------------------------------------------------
# jute encoding (just what the tests need)
# --------------------------------------------------------------------------


class Jute:
    """Tiny jute writer."""

    def __init__(self):
        self.b = bytearray()

    def int(self, v: int) -> "Jute":
        self.b += struct.pack(">i", v)
        return self

    def long(self, v: int) -> "Jute":
        self.b += struct.pack(">q", v)
        return self

    def bool(self, v: bool) -> "Jute":
        self.b += b"\x01" if v else b"\x00"
        return self

    def buffer(self, v: Optional[bytes]) -> "Jute":
        if v is None:
            return self.int(-1)
        self.int(len(v))
        self.b += v
        return self

    def string(self, v: Optional[str]) -> "Jute":
        if v is None:
            return self.int(-1)
        return self.buffer(v.encode("utf-8"))

    def acls(self, acls) -> "Jute":
        if acls is None:
            return self.int(-1)
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).string(scheme).string(ident)
        return self

    def strings(self, v) -> "Jute":
        if v is None:
            return self.int(-1)
        self.int(len(v))
        for s in v:
            self.string(s)
        return self

    def bytes(self) -> bytes:
        return bytes(self.b)


class JuteReader:
    def __init__(self, data: bytes, off: int = 0):
        self.d = data
        self.o = off

    def int(self) -> int:
        v = struct.unpack_from(">i", self.d, self.o)[0]
        self.o += 4
        return v

    def long(self) -> int:
        v = struct.unpack_from(">q", self.d, self.o)[0]
        self.o += 8
        return v

    def bool(self) -> bool:
        v = self.d[self.o] != 0
        self.o += 1
        return v

    def buffer(self) -> Optional[bytes]:
        n = self.int()
        if n < 0:
            return None
        v = self.d[self.o : self.o + n]
        self.o += n
        return bytes(v)

    def string(self) -> Optional[str]:
        b = self.buffer()
        return None if b is None else b.decode("utf-8", "replace")

    def strings(self):
        n = self.int()
        if n < 0:
            return None
        return [self.string() for _ in range(n)]

    def stat(self) -> Dict[str, int]:
        f = struct.unpack_from(">qqqqiiiqiiq", self.d, self.o)
        self.o += 68
        keys = ["czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                "ephemeralOwner", "dataLength", "numChildren", "pzxid"]
        return dict(zip(keys, f))

    def remaining(self) -> bytes:
        return bytes(self.d[self.o :])


OPEN_ACL = [(31, "world", "anyone")]

# opcodes
OP = {
    "notification": 0, "create": 1, "delete": 2, "exists": 3, "getData": 4,
    "setData": 5, "getACL": 6, "setACL": 7, "getChildren": 8, "sync": 9,
    "ping": 11, "getChildren2": 12, "check": 13, "multi": 14, "create2": 15,
    "reconfig": 16, "checkWatches": 17, "removeWatches": 18,
    "createContainer": 19, "deleteContainer": 20, "createTTL": 21,
    "multiRead": 22, "auth": 100, "setWatches": 101, "sasl": 102,
    "getEphemerals": 103, "getAllChildrenNumber": 104, "setWatches2": 105,
    "addWatch": 106, "whoAmI": 107, "createSession": -10, "closeSession": -11,
    "error": -1,
}
OPNAME = {v: k for k, v in OP.items()}


class ConnectionClosed(Exception):
    """The server closed the connection (EOF / reset) before replying."""


class RawSession:
    """A minimal blocking ZooKeeper client over one TCP connection.

    It never pings on its own: a RawSession that is left alone expires after
    its negotiated timeout, which is how the tests expire sessions on purpose.
    """

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.io_timeout = timeout
        self.xid = 0
        self.events: List[Tuple[int, int, str]] = []
        self.session_id = 0
        self.passwd = b"\x00" * 16
        self.negotiated_timeout = 0
        self.protocol_version = 0
        self.last_zxid = 0
        self._rbuf = b""

    # -- framing -----------------------------------------------------------
    def send_frame(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _recv_exact(self, n: int) -> bytes:
        while len(self._rbuf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self._rbuf)))
            except ConnectionResetError:
                raise ConnectionClosed("connection reset by server")
            except socket.timeout:
                raise TimeoutError("no reply within %.1fs" % self.io_timeout)
            if not chunk:
                raise ConnectionClosed("EOF from server")
            self._rbuf += chunk
        out, self._rbuf = self._rbuf[:n], self._rbuf[n:]
        return out

    def recv_frame(self) -> bytes:
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    # -- session -----------------------------------------------------------
    def connect(self, timeout_ms: int = 10000, session_id: int = 0, passwd: Optional[bytes] = None,
                last_zxid: int = 0, read_only: bool = False) -> "RawSession":
        body = (
            Jute().int(0).long(last_zxid).int(timeout_ms).long(session_id)
            .buffer(passwd if passwd is not None else b"\x00" * 16).bool(read_only).bytes()
        )
        self.send_frame(body)
        r = JuteReader(self.recv_frame())
        self.protocol_version = r.int()
        self.negotiated_timeout = r.int()
        self.session_id = r.long()
        self.passwd = r.buffer() or b""
        return self

    def request(self, opcode: int, body: bytes = b"", xid: Optional[int] = None):
        """Send one request; return (xid, zxid, err, body_reader). Watch
        events that arrive first are stored in self.events."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(struct.pack(">ii", xid, opcode) + body)
        while True:
            r = JuteReader(self.recv_frame())
            rxid, zxid, err = r.int(), r.long(), r.int()
            if rxid == -1:
                self.events.append((r.int(), r.int(), r.string()))
                continue
            if rxid == -2 and xid != -2:
                continue
            if zxid > 0:
                self.last_zxid = zxid
            return rxid, zxid, err, r

    def create(self, path: str, data: bytes = b"", acl=OPEN_ACL, flags: int = 0, opcode: int = 1, ttl: Optional[int] = None):
        j = Jute().string(path).buffer(data).acls(acl).int(flags)
        if ttl is not None:
            j.long(ttl)
        return self.request(opcode, j.bytes())

    def exists(self, path: str, watch: bool = False):
        return self.request(OP["exists"], Jute().string(path).bool(watch).bytes())

    def get_data(self, path: str, watch: bool = False):
        return self.request(OP["getData"], Jute().string(path).bool(watch).bytes())

    def ping(self):
        return self.request(OP["ping"], b"", xid=-2)

    def close_session(self):
        return self.request(OP["closeSession"], b"")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def wait_closed(self, timeout: float) -> bool:
        """True if the server closes the connection within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return True
            if not b:
                return True
            self._rbuf += b
        return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)
