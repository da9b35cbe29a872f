"""End-to-end tests with real ZooKeeper clients, run against Apache ZooKeeper
(known good) and rzk:

  * the Java client: zkCli.sh, one command per invocation and piped stdin
  * the C client: cli_mt (zookeeper-bin) in batch and interactive mode, and
    tests/c/zkclient.c compiled at test time against libzookeeper_mt
  * watches set by these clients and fired by another client (kazoo)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import zkharness as h

pytestmark = pytest.mark.timeout(240)

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def zkcli(server, *args, input=None, timeout=90.0):
    """Run zkCli.sh; return (rc, stdout+stderr without SLF4J noise)."""
    if not os.path.exists(h.ZK_CLI):
        pytest.skip("zkCli.sh not installed (apt-get install zookeeper)")
    env = dict(os.environ)
    env.setdefault("CLIENT_JVMFLAGS", "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1")
    r = h.run_bounded([h.ZK_CLI, "-server", server.hosts] + list(args), input=input, timeout=timeout, env=env)
    text = (r.stdout + r.stderr).decode("utf-8", "replace")
    text = "\n".join(l for l in text.splitlines() if not l.startswith("SLF4J:"))
    return r.returncode, text


class LineReader:
    """Collect a child's output lines in a thread; wait for patterns."""

    def __init__(self, stream):
        self.lines = []
        self.cv = threading.Condition()
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            with self.cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cv.notify_all()

    def wait_for(self, pattern, timeout=30.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for l in self.lines:
                    if rx.search(l):
                        return l
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r within %.0fs; got:\n%s"
                                         % (pattern, timeout, "\n".join(self.lines)))
                self.cv.wait(left)

    def text(self):
        with self.cv:
            return "\n".join(self.lines)


# --------------------------------------------------------------------------
# (a) zkCli.sh
# --------------------------------------------------------------------------

STAT_LINES = ["cZxid = 0x", "ctime = ", "mZxid = 0x", "mtime = ", "pZxid = 0x", "cversion = ", "dataVersion = ",
              "aclVersion = ", "ephemeralOwner = 0x", "dataLength = ", "numChildren = "]


def test_zkcli_one_command_per_invocation(server, kz):
    rc, out = zkcli(server, "create", "/cli", "hello")
    assert rc == 0 and "Created /cli" in out, out

    rc, out = zkcli(server, "get", "/cli")
    assert rc == 0 and "\nhello" in out, out

    rc, out = zkcli(server, "set", "/cli", "world")
    assert rc == 0, out

    rc, out = zkcli(server, "get", "-s", "/cli")
    assert rc == 0, out
    assert "\nworld\n" in out, out
    for l in STAT_LINES:
        assert l in out, (l, out)
    assert "dataVersion = 1" in out and "dataLength = 5" in out and "numChildren = 0" in out, out

    rc, out = zkcli(server, "stat", "/cli")
    assert rc == 0 and "dataVersion = 1" in out and "aclVersion = 0" in out, out
    st = kz.exists("/cli")
    assert "mZxid = %s" % hex(st.mzxid) in out and "cZxid = %s" % hex(st.czxid) in out, out

    rc, out = zkcli(server, "create", "/cli/child", "c")
    assert rc == 0 and "Created /cli/child" in out, out
    rc, out = zkcli(server, "create", "-s", "/cli/seq-", "s")
    assert rc == 0 and re.search(r"Created /cli/seq-\d{10}", out), out
    rc, out = zkcli(server, "create", "-e", "/cli/eph", "e")
    assert rc == 0 and "Created /cli/eph" in out, out
    # zkCli's command mode exits without closing its session: the node lives
    # on until the session expires
    assert kz.exists("/cli/eph").ephemeralOwner != 0
    kz.delete("/cli/eph")

    rc, out = zkcli(server, "ls", "/cli")
    assert rc == 0 and re.search(r"\[child, seq-\d{10}\]|\[seq-\d{10}, child\]", out), out
    rc, out = zkcli(server, "ls", "/")
    assert rc == 0 and "cli" in out and "zookeeper" in out, out

    rc, out = zkcli(server, "getAcl", "/cli")
    assert rc == 0 and "'world,'anyone\n: cdrwa" in out, out

    rc, out = zkcli(server, "setAcl", "/cli/child", "world:anyone:r")
    assert rc == 0, out
    rc, out = zkcli(server, "getAcl", "/cli/child")
    assert rc == 0 and "'world,'anyone\n: r" in out, out
    rc, out = zkcli(server, "set", "/cli/child", "nope")
    assert "Insufficient permission : /cli/child" in out, out
    assert kz.get("/cli/child")[0] == b"c"

    rc, out = zkcli(server, "delete", "/cli")
    assert "Node not empty: /cli" in out, out

    rc, out = zkcli(server, "delete", "/cli/child")
    assert rc == 0, out
    rc, out = zkcli(server, "deleteall", "/cli")
    assert rc == 0, out
    assert kz.exists("/cli") is None

    rc, out = zkcli(server, "get", "/cli")
    assert "Node does not exist: /cli" in out, out


def test_zkcli_piped_session(server, kz):
    script = b"\n".join([
        b"create /pipe v1",
        b"create /pipe/a x",
        b"get /pipe",
        b"set /pipe v2",
        b"get -s /pipe",
        b"ls -s /pipe",
        b"setAcl /pipe/a digest:u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:cdrwa",
        b"get /pipe/a",
        b"addauth digest u:p",
        b"getAcl /pipe/a",
        b"get /pipe/a",
        b"delete /pipe/a",
        b"create -c /pipe/container",
        b"create -t 3600000 /pipe/ttl t",
        b"stat /pipe/ttl",
        b"sync /pipe",
        b"ls /pipe",
        b"quit",
        b"",
    ])
    rc, out = zkcli(server, input=script)
    assert "v1" in out and "v2" in out, out
    assert "dataVersion = 1" in out, out
    assert "'digest,'u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=\n: cdrwa" in out, out
    assert out.count("Insufficient permission : /pipe/a") == 1, out
    assert "Created /pipe/container" in out and "Created /pipe/ttl" in out, out
    assert "Sync is OK" in out, out
    assert "[container, ttl]" in out, out
    assert kz.exists("/pipe/a") is None
    # containers and TTL nodes report ephemeralOwner 0
    assert kz.exists("/pipe/container").ephemeralOwner == 0
    assert kz.exists("/pipe/ttl").ephemeralOwner == 0
    kz.delete("/pipe", recursive=True)


def test_zkcli_get_watch_fires(server, kz):
    """(c) zkCli `get -w` watch, triggered by another client."""
    kz.create("/zw", b"before")
    env = dict(os.environ)
    env.setdefault("CLIENT_JVMFLAGS", "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1")
    p = h.spawn([h.ZK_CLI, "-server", server.hosts], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=env)
    try:
        r = LineReader(p.stdout)
        r.wait_for(r"SyncConnected type:None", 60)
        p.stdin.write(b"get -w /zw\n")
        p.stdin.flush()
        r.wait_for(r"^before$", 30)
        kz.set("/zw", b"after")
        r.wait_for(r"WatchedEvent state:SyncConnected type:NodeDataChanged path:/zw", 30)
        p.stdin.write(b"ls -w /zw\n")
        p.stdin.flush()
        time.sleep(0.5)
        kz.create("/zw/kid")
        r.wait_for(r"WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/zw", 30)
        p.stdin.write(b"stat -w /zw/kid\n")
        p.stdin.flush()
        time.sleep(0.5)
        kz.delete("/zw/kid")
        r.wait_for(r"WatchedEvent state:SyncConnected type:NodeDeleted path:/zw/kid", 30)
        p.stdin.write(b"quit\n")
        p.stdin.flush()
        p.wait(30)
    finally:
        h.kill_process_group(p)
    kz.delete("/zw", recursive=True)


# --------------------------------------------------------------------------
# (b) the C client
# --------------------------------------------------------------------------


def cli_mt(server, cmd, timeout=30.0):
    if not os.path.exists(h.CLI_MT):
        pytest.skip("cli_mt not installed (apt-get install zookeeper-bin)")
    r = h.run_bounded([h.CLI_MT, server.hosts, "cmd:" + cmd], timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def test_cli_mt_batch_commands(server, kz):
    rc, out = cli_mt(server, "create /cmt")
    assert "[/cmt]: rc = 0" in out and "name = /cmt" in out, out
    rc, out = cli_mt(server, "create2 /cmt2")
    assert "[/cmt2]: rc = 0" in out and "czxid=" in out, out
    rc, out = cli_mt(server, "get /cmt")
    assert "/cmt: rc = 0" in out and "value_len = 3" in out and "\nnew" in out, out
    rc, out = cli_mt(server, "set /cmt hello")
    assert "/cmt: rc = 0 Stat:" in out and "version=1" in out, out
    rc, out = cli_mt(server, "get /cmt")
    assert "value_len = 5" in out and "hello" in out, out
    rc, out = cli_mt(server, "ls /")
    assert "/: rc = 0" in out and "\tcmt\n" in out and "\tzookeeper\n" in out, out
    rc, out = cli_mt(server, "ls2 /")
    assert "/: rc = 0" in out and "\tcmt2\n" in out, out
    rc, out = cli_mt(server, "create +e /cmt/eph")
    assert "[/cmt/eph]: rc = 0" in out, out
    rc, out = cli_mt(server, "create +s /cmt/seq")
    assert re.search(r"name = /cmt/seq\d{10}", out), out
    rc, out = cli_mt(server, "create +c /cmtc")
    assert "[/cmtc]: rc = 0" in out, out
    rc, out = cli_mt(server, "create +t=60000 /cmtt")
    assert "[/cmtt]: rc = 0" in out, out
    rc, out = cli_mt(server, "sync /cmt")
    assert "[/cmt]: rc = 0" in out, out
    rc, out = cli_mt(server, "delete /cmt")
    assert "/cmt: rc = -111" in out, out  # not empty
    kz.delete("/cmt", recursive=True)
    rc, out = cli_mt(server, "get /cmt")
    assert "/cmt: rc = -101" in out, out
    for p in ("/cmt2", "/cmtc", "/cmtt"):
        kz.delete(p)


def test_cli_mt_wexists_watch(server, kz):
    if not os.path.exists(h.CLI_MT):
        pytest.skip("cli_mt not installed (apt-get install zookeeper-bin)")
    p = h.spawn([h.CLI_MT, server.hosts], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        r = LineReader(p.stdout)
        r.wait_for(r"Got a new session id", 30)
        p.stdin.write(b"wexists /cw\n")
        p.stdin.flush()
        r.wait_for(r"Error -101 for /cw", 30)  # sync zoo_wexists on a missing node
        kz.create("/cw", b"x")
        r.wait_for(r"Watcher CREATED_EVENT state = CONNECTED_STATE for path /cw", 30)
        p.stdin.write(b"quit\n")
        p.stdin.flush()
        p.wait(20)
    finally:
        h.kill_process_group(p)
    kz.delete("/cw")


@pytest.fixture(scope="session")
def zkclient_bin(tmp_path_factory):
    src = HERE / "c" / "zkclient.c"
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        pytest.skip("no C compiler")
    if not os.path.exists("/usr/include/zookeeper/zookeeper.h"):
        pytest.skip("libzookeeper-mt-dev not installed")
    out = tmp_path_factory.mktemp("cbin") / "zkclient"
    r = subprocess.run([gcc, "-O0", "-Wall", "-o", str(out), str(src), "-lzookeeper_mt"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return str(out)


def zkclient(binary, server, *cmds, timeout=60.0):
    """Run zkclient with commands (each a list); return stdout lines."""
    argv = [binary, server.hosts]
    for i, c in enumerate(cmds):
        if i:
            argv.append("--")
        argv.extend(c)
    r = h.run_bounded(argv, timeout=timeout)
    lines = r.stdout.decode("utf-8", "replace").splitlines()
    assert r.returncode == 0, (r.returncode, lines, r.stderr.decode()[-2000:])
    return lines


def _kv(line):
    return dict(re.findall(r"(\w+)=(\S*)", line))


def test_c_client_program(server, zkclient_bin, kz):
    lines = zkclient(
        zkclient_bin, server,
        ["create", "/cprog", "v1"],
        ["create2", "/cprog/s-", "d", "2"],
        ["create", "/cprog/eph", "e", "1"],
        ["get", "/cprog"],
        ["set", "/cprog", "v2"],
        ["set", "/cprog", "v3", "0"],
        ["get", "/cprog"],
        ["ls", "/cprog"],
        ["stat", "/cprog/eph"],
        ["getacl", "/cprog"],
        ["setacl", "/cprog/s-0000000000", "read"],
        ["getacl", "/cprog/s-0000000000"],
        ["set", "/cprog/s-0000000000", "v4"],
        ["create", "/cprog", "dup"],
        ["delete", "/cprog"],
        ["delete", "/cprog/s-0000000000"],
        ["delete", "/cprog/eph", "5"],
        ["delete", "/cprog/eph"],
        ["delete", "/cprog"],
        ["get", "/cprog"],
        ["create", "nopath", "x"],
    )
    assert lines[0].startswith("connected session=0x"), lines
    session = int(_kv(lines[0])["session"], 16)
    res = lines[1:-1]
    assert lines[-1] == "closed rc=0", lines
    expect = [
        r"^create /cprog rc=0 created=/cprog$",
        r"^create2 /cprog/s- rc=0 created=/cprog/s-0000000000 czxid=\d+ .*version=0 .*dataLength=1 numChildren=0$",
        r"^create /cprog/eph rc=0 created=/cprog/eph$",
        r"^get /cprog rc=0 data=v1 .*version=0 cversion=2 aversion=0 .*dataLength=2 numChildren=2$",
        r"^set /cprog rc=0 .*version=1 ",
        r"^set /cprog rc=-103$",  # ZBADVERSION
        r"^get /cprog rc=0 data=v2 ",
        r"^ls /cprog rc=0 children=eph,s-0000000000$",
        r"^stat /cprog/eph rc=0 .*ephemeralOwner=0x%x " % session,
        r"^getacl /cprog rc=0 acl=world:anyone:31 aversion=0$",
        r"^setacl /cprog/s-0000000000 rc=0$",
        r"^getacl /cprog/s-0000000000 rc=0 acl=world:anyone:1 aversion=1$",
        r"^set /cprog/s-0000000000 rc=-102$",  # ZNOAUTH
        r"^create /cprog rc=-110 created=$",  # ZNODEEXISTS
        r"^delete /cprog rc=-111$",  # ZNOTEMPTY
        r"^delete /cprog/s-0000000000 rc=0$",
        r"^delete /cprog/eph rc=-103$",
        r"^delete /cprog/eph rc=0$",
        r"^delete /cprog rc=0$",
        r"^get /cprog rc=-101 data=$",  # ZNONODE
        r"^create nopath rc=-8 created=$",  # ZBADARGUMENTS (client-side path check)
    ]
    assert len(res) == len(expect), res
    for line, rx in zip(res, expect):
        assert re.search(rx, line), (rx, line, res)
    # zxids seen by the C client agree with kazoo's view
    assert kz.exists("/cprog") is None


@pytest.mark.parametrize("cmd,setup,trigger,etype", [
    ("watch", None, lambda kz: kz.create("/cwatch", b"1"), 1),           # ZOO_CREATED_EVENT
    ("watch", b"0", lambda kz: kz.delete("/cwatch"), 2),                 # ZOO_DELETED_EVENT
    ("wget", b"0", lambda kz: kz.set("/cwatch", b"2"), 3),               # ZOO_CHANGED_EVENT
    ("wls", b"0", lambda kz: kz.create("/cwatch/kid", b""), 4),          # ZOO_CHILD_EVENT
])
def test_c_client_watch(server, zkclient_bin, kz, cmd, setup, trigger, etype):
    if kz.exists("/cwatch"):
        kz.delete("/cwatch", recursive=True)
    if setup is not None:
        kz.create("/cwatch", setup)
    p = h.spawn([zkclient_bin, server.hosts, cmd, "/cwatch"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        r = LineReader(p.stdout)
        r.wait_for(r"^WATCHING /cwatch$", 30)
        trigger(kz)
        line = r.wait_for(r"^EVENT ", 30)
        assert line == "EVENT type=%d state=3 path=/cwatch" % etype, r.text()
        p.wait(30)
        r.wait_for(r"^closed rc=0$", 10)
    finally:
        h.kill_process_group(p)
    if kz.exists("/cwatch"):
        kz.delete("/cwatch", recursive=True)
