"""The audit log (`audit.enable`), side by side with Apache ZooKeeper 3.8.

The same workload (creates of each type, setData, delete, setACL, multi, failing ops, a
digest-authenticated user, ephemerals deleted by a session's close, the server's start and
stop) runs on both; their `zookeeper_audit.log` files must match line for line once
timestamps are cut and session ids are numbered by first appearance. ZooKeeper writes its
audit log through log4j (the harness configures the appender of ZooKeeper's shipped
configuration); rzk writes the same lines itself.
"""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import zkharness as h  # noqa: E402

DIGEST_ACL_BOB = None  # built lazily (kazoo import)


def audit_lines(server: h.Server):
    path = server.workdir / "zookeeper_audit.log"
    if not path.exists():
        return []
    return path.read_text().splitlines()


def normalized(lines):
    """Timestamps cut; session ids numbered in order of first appearance."""
    sessions = {}
    out = []
    for line in lines:
        m = re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (.*)$", line)
        assert m, "not a log4j ISO8601 line: %r" % line
        rest = m.group(1)

        def sub(mm):
            return "session=S%d" % sessions.setdefault(mm.group(1), len(sessions))

        out.append(re.sub(r"session=(0x[0-9a-f]+)", sub, rest))
    return out


def workload(server: h.Server):
    """The same operations on either server, one at a time."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoAuthError, NodeExistsError, NoNodeError
    from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

    c = KazooClient(hosts=server.hosts, timeout=10.0)
    c.start(timeout=30)
    try:
        c.create("/a", b"1")
        c.create("/a/eph", b"", ephemeral=True)
        seq = c.create("/a/seq-", b"", sequence=True)
        c.create("/a/eseq-", b"", ephemeral=True, sequence=True)
        c.set("/a", b"2")
        c.delete(seq)
        c.set_acls("/a", OPEN_ACL_UNSAFE + [make_digest_acl("bob", "secret", read=True)])
        with pytest.raises(NodeExistsError):
            c.create("/a", b"")
        with pytest.raises(NoNodeError):
            c.delete("/missing")
        with pytest.raises(NoNodeError):
            c.set("/missing", b"")
        t = c.transaction()
        t.create("/m", b"")
        t.create("/m/s-", b"", sequence=True)
        t.set_data("/a", b"3")
        t.check("/a", 2)
        t.delete("/m/s-0000000000")
        assert not any(isinstance(r, Exception) for r in t.commit())
        t = c.transaction()
        t.create("/m2", b"")
        t.create("/a", b"")  # exists: the whole multi fails
        assert any(isinstance(r, Exception) for r in t.commit())
        # A container, through the raw client (kazoo has no container create).
        raw = h.RawSession("127.0.0.1", server.port).connect()
        try:
            assert raw.create("/box", b"", flags=4, opcode=h.OP["createContainer"])[2] == 0
        finally:
            raw.close_session()
            raw.close()

        bob = KazooClient(hosts=server.hosts, timeout=10.0, auth_data=[("digest", "bob:secret")])
        bob.start(timeout=30)
        try:
            bob.create("/b", b"", acl=[make_digest_acl("bob", "secret", all=True)])
            bob.set("/b", b"x")
        finally:
            bob.stop()
            bob.close()
        with pytest.raises(NoAuthError):
            c.set("/b", b"y")
        # reconfig on a server without reconfigEnabled: refused, audited as a failure.
        with pytest.raises(Exception):
            c.reconfig(joining=None, leaving="2", new_members=None)
    finally:
        c.stop()
        c.close()


def run_side_by_side(new_server, kind):
    s = new_server(kind, extra_cfg={"audit.enable": "true"})
    workload(s)
    s.stop()
    return audit_lines(s)


def test_audit_log_matches_zookeepers(new_server):
    zk = normalized(run_side_by_side(new_server, "zookeeper"))
    rz = normalized(run_side_by_side(new_server, "rzk"))
    assert zk, "ZooKeeper wrote no audit log"
    assert rz == zk
    user = zk[0].split("user=")[1].split("\t")[0]
    # A few lines spelled out, so that a change on both sides is noticed too.
    assert zk[0] == "INFO audit.Slf4jAuditLogger: user=%s\toperation=serverStart\tresult=success" % user
    assert (
        "INFO audit.Slf4jAuditLogger: session=S0\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a\t"
        "znode_type=persistent\tresult=success" in zk
    )
    assert (
        "ERROR audit.Slf4jAuditLogger: session=S0\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a\t"
        "znode_type=persistent\tresult=failure" in zk
    )
    assert "ERROR audit.Slf4jAuditLogger: session=S0\tuser=127.0.0.1\tip=127.0.0.1\toperation=multiOperation\tresult=failure" in zk
    assert any("user=bob,127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/b" in line for line in zk)
    assert any("acl=world:anyone:cdrwadigest:bob:" in line for line in zk)
    assert any("operation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/a/eph\tresult=success" in line for line in zk)
    assert "ERROR audit.Slf4jAuditLogger: session=S0\tuser=127.0.0.1\tip=127.0.0.1\toperation=reconfig\tresult=failure" in zk
    assert zk[-1] == "INFO audit.Slf4jAuditLogger: user=%s\toperation=serverStop\tresult=invoked" % user


def test_rzk_audits_ttl_creates_as_later_3_8_releases_do(new_server):
    # ZooKeeper 3.8.0 (Debian's) does not audit createTTL; 3.8.1 and later do, as rzk does.
    s = new_server("rzk", extra_cfg={"audit.enable": "true"})
    raw = h.RawSession("127.0.0.1", s.port).connect()
    try:
        assert raw.create("/ttl", b"", flags=5, opcode=h.OP["createTTL"], ttl=60000)[2] == 0
    finally:
        raw.close()
    deadline = time.time() + 10
    while time.time() < deadline and not any("znode=/ttl" in line for line in audit_lines(s)):
        time.sleep(0.05)
    lines = normalized(audit_lines(s))
    assert "INFO audit.Slf4jAuditLogger: session=S0\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/ttl\t" \
           "znode_type=persistent_with_ttl\tresult=success" in lines


def test_no_audit_log_unless_enabled(new_server):
    s = new_server("rzk")
    from kazoo.client import KazooClient

    c = KazooClient(hosts=s.hosts, timeout=10.0)
    c.start(timeout=30)
    c.create("/x", b"")
    c.stop()
    c.close()
    s.stop()
    assert not (s.workdir / "zookeeper_audit.log").exists()


def test_audit_log_location_settings(new_server, tmp_path):
    # zookeeper.log.dir (as zkServer.sh passes it) and zookeeper.auditlog.file, as
    # ZooKeeper's logging configuration names the audit file.
    logdir = tmp_path / "logs"
    os.environ["SERVER_JVMFLAGS"] = "-Dzookeeper.log.dir=%s -Dzookeeper.auditlog.file=audit.log" % logdir
    try:
        s = new_server("rzk", extra_cfg={"audit.enable": "true"})
    finally:
        del os.environ["SERVER_JVMFLAGS"]
    s.stop()
    text = (logdir / "audit.log").read_text()
    assert "operation=serverStart\tresult=success" in text and "operation=serverStop\tresult=invoked" in text


def test_bad_audit_settings_stop_the_start(tmp_path):
    for line, needle in [("audit.enable=yes", "audit.enable"), ("audit.impl.class=com.example.Audit", "com.example.Audit")]:
        cfg = tmp_path / "zoo.cfg"
        cfg.write_text("dataDir=%s\nclientPort=%d\n%s\n" % (tmp_path / "data", h.free_port(), line))
        r = h.run_bounded([str(h.rzk_binary()), "server", "--config", str(cfg)], timeout=30)
        out = h._dec(r.stdout) + h._dec(r.stderr)
        assert r.returncode != 0 and needle in out, (r.returncode, out)


def ensemble_audit(kind):
    """A client on one follower writes; returns the normalized audit lines of that follower,
    the leader and the other follower."""
    import zkensemble as ze
    from kazoo.client import KazooClient
    from kazoo.exceptions import NodeExistsError

    with ze.Ensemble(kind, 3, name="audit", extra_cfg={"audit.enable": "true"}) as ens:
        leader = ens.wait_for_leader(60)
        f, other = ens.followers()[:2]
        c = KazooClient(hosts=f.hosts, timeout=10.0)
        c.start(timeout=30)
        try:
            c.create("/x", b"")
            c.create("/x/e", b"", ephemeral=True)
            c.set("/x", b"1")
            with pytest.raises(NodeExistsError):
                c.create("/x", b"")
        finally:
            c.stop()
            c.close()
        files = [m.workdir / "zookeeper_audit.log" for m in (f, leader, other)]

        def deleted_everywhere():
            return all(p.exists() and "znode=/x/e\tresult=success" in p.read_text() for p in files)

        h.wait_until(deleted_everywhere, 20, 0.1, "the ephemeral's deletion audited on every member")
        ens.stop()
        return [normalized(p.read_text().splitlines()) for p in files]


def test_ensemble_audit_log_matches_zookeepers():
    """The server a client is connected to audits its writes (a follower, here); every member
    audits the ephemerals a session's close deletes."""
    if not (h.rzk_available() and h.zookeeper_available()):
        pytest.skip("needs rzk and Apache ZooKeeper")
    zk = ensemble_audit("zookeeper")
    rz = ensemble_audit("rzk")
    assert rz == zk
    follower, leader, other = zk
    assert any("operation=create\tznode=/x\tznode_type=persistent\tresult=success" in line for line in follower)
    assert not any("operation=create" in line for line in leader + other)
    assert any("ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/x/e" in line for line in leader)


def test_failed_start_is_audited(tmp_path):
    # The client port is taken: the start-up fails after the audit log opened, and says so
    # in it (ZooKeeper's addServerStartFailureAuditLog).
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        cfg = tmp_path / "zoo.cfg"
        cfg.write_text("dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\naudit.enable=true\n"
                       % (tmp_path / "data", taken.getsockname()[1]))
        r = h.run_bounded([str(h.rzk_binary()), "server", "--config", str(cfg)], timeout=30, cwd=str(tmp_path))
    finally:
        taken.close()
    assert r.returncode != 0, h._dec(r.stderr)
    lines = normalized((tmp_path / "zookeeper_audit.log").read_text().splitlines())
    assert len(lines) == 1 and lines[0].startswith("ERROR audit.Slf4jAuditLogger: user=")
    assert lines[0].endswith("\toperation=serverStart\tresult=failure"), lines


def test_unwritable_audit_log_stops_the_start(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=%s\nclientPort=%d\nadmin.enableServer=false\naudit.enable=true\n" % (tmp_path / "data", h.free_port()))
    env = dict(os.environ, SERVER_JVMFLAGS="-Dzookeeper.log.dir=%s" % (blocker / "logs"))
    r = h.run_bounded([str(h.rzk_binary()), "server", "--config", str(cfg)], timeout=30, env=env)
    out = h._dec(r.stdout) + h._dec(r.stderr)
    assert r.returncode != 0 and "audit log" in out and "not-a-dir" in out, out
