"""`rzk cli` driven as a person drives zkCli.sh: one-shot commands compared line by line
with zkCli.sh's own output (and exit status) on the same server, --json documents, and
the interactive shell through a pseudo-terminal (prompt, editing, tab completion of
paths, history / redo, watch events printed as they arrive).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import tempfile
import termios
import time

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl

import zkharness as h

pytestmark = pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not built")


def rzk_cli(server, *args, json_out=False):
    cmd = [str(h.rzk_binary()), "cli", "-server", server.hosts] + (["--json"] if json_out else []) + list(args)
    r = h.run_bounded(cmd, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


NOISE = ("Connecting to", "WATCHER::", "WatchedEvent state:SyncConnected type:None path:null", "log4j", "SLF4J")


def zkcli(server, *args):
    env = dict(os.environ)
    # Dates in UTC, as rzk cli prints them.
    env["CLIENT_JVMFLAGS"] = "-Duser.timezone=UTC -Xss512k -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    r = h.run_bounded([h.ZK_CLI, "-server", server.hosts] + list(args), timeout=60, env=env)

    def clean(s):
        return [l for l in s.decode(errors="replace").splitlines() if l.strip() and not l.startswith(NOISE)]

    return r.returncode, clean(r.stdout), clean(r.stderr)


def lines(s):
    return [l for l in s.splitlines() if l.strip()]


@pytest.fixture(scope="module")
def populated(rzk_server):
    zk = KazooClient(hosts=rzk_server.hosts)
    zk.start(timeout=30)
    zk.create("/cli/a", b"hello", makepath=True)
    zk.create("/cli/a/b")  # null data
    zk.create("/cli/a/c", b"x")
    zk.create("/cli/locked", b"s", acl=[make_acl("world", "anyone", read=True)])
    yield rzk_server
    zk.stop()
    zk.close()


COMPARED = [
    ["get", "/cli/a"],
    ["get", "/cli/a/b"],
    ["get", "-s", "/cli/a"],
    ["ls", "/cli/a"],
    ["ls", "-s", "/cli/a"],
    ["ls", "-R", "/cli"],
    ["stat", "/cli/a/c"],
    ["getAcl", "/cli/locked"],
    ["getAllChildrenNumber", "/cli"],
    ["get", "/cli/missing"],
    ["create", "/cli/a", "again"],
    ["delete", "/cli/a"],
    ["set", "-v", "7", "/cli/a", "x"],
    ["set", "/cli/locked", "x"],
    ["create", "nopath"],
    ["removewatches", "/cli/a"],
    ["get"],
]


@pytest.mark.skipif(not h.zookeeper_available(), reason="zkCli.sh not installed")
@pytest.mark.parametrize("args", COMPARED, ids=lambda a: " ".join(a))
def test_one_shot_prints_what_zkcli_prints(populated, args):
    zrc, zout, zerr = zkcli(populated, *args)
    rrc, rout, rerr = rzk_cli(populated, *args)
    assert lines(rout) == zout, "stdout differs for %r" % (args,)
    assert lines(rerr) == zerr, "stderr differs for %r" % (args,)
    assert rrc == zrc, "exit status differs for %r" % (args,)


def test_one_shot_writes_and_exit_status(server):
    p = "/cli-w-%d" % int(time.time() * 1000)
    rc, out, err = rzk_cli(server, "create", p, "v1")
    assert (rc, err.strip()) == (0, "Created %s" % p)
    rc, out, err = rzk_cli(server, "create", "-s", p + "/s-", "d")
    assert rc == 0 and err.strip() == "Created %s/s-0000000000" % p
    rc, out, err = rzk_cli(server, "create", "-s", "-e", p + "/e-")
    assert rc == 0 and err.strip() == "Created %s/e-0000000001" % p
    rc, out, err = rzk_cli(server, "set", "-s", p, "v2")
    assert rc == 0 and "dataVersion = 1" in out
    assert rzk_cli(server, "get", p)[1].strip() == "v2"
    rc, out, err = rzk_cli(server, "create", "-t", "60000", p + "/ttl", "t")
    assert rc == 0, err
    rc, out, err = rzk_cli(server, "create", "-c", p + "/box")
    assert rc == 0, err
    rc, out, err = rzk_cli(server, "setAcl", "-R", p, "world:anyone:cdrwa")
    assert rc == 0, err
    assert rzk_cli(server, "deleteall", p)[0] == 0
    assert rzk_cli(server, "stat", p)[0] == 1
    rc, out, err = rzk_cli(server, "nosuchcommand")
    assert rc == 127 and "Command not found" in err
    assert rzk_cli(server, "sync", "/")[1].strip() == "Sync is OK"


def test_json_documents(server):
    p = "/cli-json-%d" % int(time.time() * 1000)
    rc, out, _ = rzk_cli(server, "create", p, "data", json_out=True)
    assert rc == 0 and json.loads(out) == {"created": p}
    rc, out, _ = rzk_cli(server, "get", "-s", p, json_out=True)
    doc = json.loads(out)
    assert doc["data"] == "data" and doc["stat"]["version"] == 0 and doc["stat"]["czxid"] > 0
    rc, out, _ = rzk_cli(server, "ls", "/", json_out=True)
    assert p[1:] in json.loads(out)["children"]
    rc, out, _ = rzk_cli(server, "get", p + "/none", json_out=True)
    assert rc == 1 and json.loads(out) == {"error": {"code": "NoNode", "message": "Node does not exist: %s/none" % p}}
    rc, out, _ = rzk_cli(server, "whoami", json_out=True)
    assert any(i["scheme"] == "ip" for i in json.loads(out)["identities"])
    r = h.run_bounded([str(h.rzk_binary()), "cli", "-server", "127.0.0.1:1", "-timeout", "1000", "--json", "ls", "/"], timeout=30)
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "ConnectionLoss"


class Pty:
    """A tiny expect: the shell on a pseudo-terminal, read with timeouts."""

    ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\r")

    def __init__(self, argv):
        self.master, slave = pty.openpty()
        # A wide terminal: a long prompt (three host:port pairs) plus a command must not
        # wrap, or the line editor redraws and asks where the cursor is while we type.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 300, 0, 0))
        # A HOME of its own: no history file left by another run or variant of the test
        # (its entries would change `history` numbering and the line editor's hints).
        home = tempfile.mkdtemp(prefix="pty-home-", dir=str(h.WORK_ROOT))
        self.proc = h.spawn(argv, stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ, TERM="xterm", HOME=home))
        os.close(slave)
        self.buf = b""

    def _drain(self):
        """Reads whatever output is ready, so the shell never blocks writing its echo."""
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.buf += chunk

    def send(self, s: str):
        # Typed, not pasted: a key at a time, reading the echo as it comes.
        for ch in s:
            os.write(self.master, ch.encode())
            time.sleep(0.005)
            self._drain()

    def expect(self, pattern: str, timeout: float = 15.0) -> str:
        rx = re.compile(pattern.encode())
        deadline = time.time() + timeout
        while True:
            clean = self.ANSI.sub(b"", self.buf)
            m = rx.search(clean)
            if m:
                # consume up to the match
                self.buf = clean[m.end():]
                return clean[: m.end()].decode(errors="replace")
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("expected %r; got:\n%s" % (pattern, clean.decode(errors="replace")))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                # Answer cursor-position queries as a terminal would.
                for _ in range(chunk.count(b"\x1b[6n")):
                    os.write(self.master, b"\x1b[1;1R")
                self.buf += chunk.replace(b"\x1b[6n", b"")

    def close(self):
        h.kill_process_group(self.proc, term_timeout=2)
        os.close(self.master)


def test_interactive_shell_through_a_pty(server):
    root = "/it-%d" % int(time.time() * 1000)
    sh = Pty([str(h.rzk_binary()), "cli", "-server", server.hosts])
    kz = KazooClient(hosts=server.hosts)
    kz.start(timeout=30)
    try:
        # zkCli's greeting: the session event, then the prompt.
        sh.expect("WatchedEvent state:SyncConnected type:None path:null")
        sh.expect(r"\[zk: [^ ]+\(CONNECTED\) 0\] ")
        sh.send("create %s hello\r" % root)
        sh.expect("Created %s" % root)
        sh.expect(r"\(CONNECTED\) 1\] ")
        sh.send("create %s/child\r" % root)
        sh.expect(r"\(CONNECTED\) 2\] ")
        # Tab completion of a path: the child's name is filled in from the server.
        sh.send("ls %s/ch\t" % root)
        sh.expect("%s/child" % root)
        sh.send("\r")
        sh.expect(r"\[\]")
        sh.expect(r"\(CONNECTED\) 3\] ")
        # A watch set by get -w is printed when it fires, as zkCli prints it.
        sh.send("get -w %s\r" % root)
        sh.expect("hello")
        sh.expect(r"\(CONNECTED\) 4\] ")
        kz.set(root, b"changed")
        sh.expect("WATCHER::")
        sh.expect("WatchedEvent state:SyncConnected type:NodeDataChanged path:%s" % root)
        # Line editing: type, erase with backspace, retype.
        sh.send("get %sXX\x7f\x7f\r" % root)
        sh.expect("changed")
        sh.expect(r"\(CONNECTED\) 5\] ")
        sh.send("history\r")
        sh.expect("0 - create %s hello" % root)
        sh.expect(r"\(CONNECTED\) 6\] ")
        sh.send("redo 0\r")
        sh.expect("Node already exists: %s" % root)
        # (The prompt after redo first, so that the next one matched is addWatch's: the
        # watch must be set before kazoo creates the child.)
        sh.expect(r"\(CONNECTED\) \d+\] ")
        sh.send("addWatch %s\r" % root)
        sh.expect(r"\(CONNECTED\) \d+\] ")
        kz.create(root + "/new")
        sh.expect("WatchedEvent state:SyncConnected type:NodeCreated path:%s/new" % root)
        sh.send("close\r")
        sh.expect(r"\(CLOSED\) \d+\] ")
        sh.send("connect %s\r" % server.hosts)
        sh.expect(r"\(CONNECTED\) \d+\] ")
        sh.send("deleteall %s\r" % root)
        sh.expect(r"\(CONNECTED\) \d+\] ")
        sh.send("quit\r")
        sh.proc.wait(10)
        assert sh.proc.returncode == 0
        assert kz.exists(root) is None
    finally:
        sh.close()
        kz.stop()
        kz.close()
