"""Raw-socket robustness: malformed or abusive input closes (at most) the
offending connection; the server keeps serving everybody else. Behaviour
asserted here is what Apache ZooKeeper 3.8 does (each test runs on both).
"""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss

import zkharness as h

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def kz(server):
    """A bystander session that must survive every test unharmed."""
    c = KazooClient(hosts=server.hosts, timeout=10.0)
    c.start(timeout=30)
    sid = c.client_id[0]
    yield c
    assert c.client_id[0] == sid, "the bystander's session changed"
    c.ensure_path("/robust")
    c.set("/robust", b"still-serving")
    assert c.get("/robust")[0] == b"still-serving"
    c.stop()
    c.close()
    assert h.four_letter(server.port, "ruok") == "imok"


def raw(server, timeout=5.0) -> h.RawSession:
    return h.RawSession(*server.address, timeout=timeout)


def closed_without_reply(r: h.RawSession, timeout=5.0) -> bool:
    try:
        r.recv_frame()
    except h.ConnectionClosed:
        return True
    except TimeoutError:
        return False
    return False


@pytest.mark.parametrize("payload", [
    pytest.param(b"\x7f\xff\xff\xff", id="huge-length"),
    pytest.param(b"\xff\xff\xff\xff", id="negative-length"),
    pytest.param(b"\x00\x00\x00\x00", id="zero-length"),
    pytest.param(b"\x00\x00\x00\x10" + b"\xff" * 16, id="garbage-connect"),
    pytest.param(b"\x00\x00\x00\x08" + b"\x00" * 8, id="short-connect"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
    pytest.param(b"\x00\x00\x04\x00" + bytes((i * 37 + 11) % 256 for i in range(1024)), id="binary-noise"),
])
def test_malformed_first_frame_closes_connection(server, kz, payload):
    with raw(server) as r:
        r.sock.sendall(payload)
        assert closed_without_reply(r)
    kz.exists("/")


def test_truncated_connect_then_client_gone(server, kz):
    """Half a ConnectRequest, then the client disappears: no reply, nothing
    breaks (Apache ZooKeeper waits for the rest until its sessionless
    connection timeout)."""
    with raw(server, timeout=1.0) as r:
        r.sock.sendall(b"\x00\x00\x00\x2c\x00\x00\x00\x00\x00")
        with pytest.raises(TimeoutError):
            r.recv_frame()
    kz.create("/trunc", b"x")
    kz.delete("/trunc")


def test_request_before_handshake_closes(server, kz):
    with raw(server) as r:
        r.send_frame(struct.pack(">ii", 1, 4) + h.Jute().string("/").bool(False).bytes())
        assert closed_without_reply(r)


def test_unknown_opcode_replies_unimplemented_then_closes(server, kz):
    with raw(server) as r:
        r.connect(10000)
        xid, zxid, err, _ = r.request(999, b"")
        assert (xid, err) == (1, -6)  # ZUNIMPLEMENTED
        assert r.wait_closed(5.0)
        # the session itself survives and can be resumed on a new connection
        with raw(server) as r2:
            r2.connect(10000, session_id=r.session_id, passwd=r.passwd)
            assert r2.session_id == r.session_id and r2.negotiated_timeout == 10000
            assert r2.close_session()[2] == 0


def test_truncated_request_body_is_marshalling_error(server, kz):
    with raw(server) as r:
        r.connect(10000)
        xid, zxid, err, _ = r.request(4, b"\x00\x00")  # getData with 2 of its bytes
        assert (xid, err) == (1, -5)  # ZMARSHALLINGERROR
        # the connection is still usable
        xid, zxid, err, _ = r.exists("/")
        assert (xid, err) == (2, 0)
        r.close_session()


def test_oversize_request_drops_connection_not_session(server, kz):
    """A frame longer than jute.maxbuffer (1048575) makes the server close the
    connection; the session stays valid."""
    with raw(server) as r:
        r.connect(10000)
        frame = struct.pack(">ii", 1, 1) + h.Jute().string("/big").buffer(b"x" * h.JUTE_MAXBUFFER).acls(h.OPEN_ACL).int(0).bytes()
        try:
            r.send_frame(frame)
            closed = closed_without_reply(r)
        except OSError:
            closed = True
        assert closed
        with raw(server) as r2:
            r2.connect(10000, session_id=r.session_id, passwd=r.passwd)
            assert r2.session_id == r.session_id
            assert r2.exists("/big")[2] == -101
            r2.close_session()


def test_frame_exactly_at_limit_is_accepted(server, kz):
    path = "/atlimit"
    overhead = 4 + 4 + (4 + len(path)) + 4 + (4 + 4 + 4 + 5 + 4 + 6) + 4
    data = b"y" * (h.JUTE_MAXBUFFER - overhead)
    with raw(server, timeout=15) as r:
        r.connect(10000)
        body = h.Jute().string(path).buffer(data).acls(h.OPEN_ACL).int(0).bytes()
        assert 8 + len(body) == h.JUTE_MAXBUFFER
        xid, zxid, err, rd = r.request(1, body)
        assert err == 0 and rd.string() == path
        r.close_session()
    got, st = kz.get(path)
    assert got == data and st.dataLength == len(data)
    kz.delete(path)


def test_kazoo_oversize_create_connection_loss_and_recovery(server):
    """What a real client sees: ConnectionLoss for the oversize request; the
    client reconnects to the same session."""
    c = KazooClient(hosts=server.hosts, timeout=10.0,
                    connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1, "max_delay": 0.2})
    c.start(timeout=30)
    try:
        sid = c.client_id[0]
        c.create("/kzbig-ok", b"z" * 1000)
        try:
            c.create_async("/kzbig", b"z" * (h.JUTE_MAXBUFFER + 10)).get(timeout=15)
            pytest.fail("oversize create succeeded")
        except ConnectionLoss:
            pass
        except Exception as e:  # noqa: BLE001
            # kazoo may still be retrying the write if the server closed the
            # socket mid-request; the session must nevertheless be intact
            assert type(e).__name__ in ("KazooTimeoutError", "ConnectionClosedError"), repr(e)
        deadline = time.monotonic() + 20
        while not c.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        if c.connected:
            assert c.client_id[0] == sid
    finally:
        c.stop()
        c.close()
    c2 = KazooClient(hosts=server.hosts, timeout=10.0)
    c2.start(timeout=30)
    try:
        assert c2.exists("/kzbig") is None
        assert c2.exists("/kzbig-ok") is not None
        c2.delete("/kzbig-ok")
    finally:
        c2.stop()
        c2.close()


def test_auth_with_unknown_scheme_fails_and_closes(server, kz):
    with raw(server) as r:
        r.connect(10000)
        xid, zxid, err, _ = r.request(100, h.Jute().int(0).string("nosuchscheme").buffer(b"x").bytes(), xid=-4)
        assert (xid, err) == (-4, -115)  # ZAUTHFAILED
        assert r.wait_closed(5.0)


def test_connect_with_unknown_session_is_expired(server, kz):
    with raw(server) as r:
        r.connect(10000, session_id=0x123456789, passwd=b"p" * 16)
        assert r.negotiated_timeout == 0 and r.session_id == 0
        assert r.wait_closed(5.0)


def test_connect_with_wrong_password_is_expired(server, kz):
    """Apache ZooKeeper closes the session's current connection before it
    checks the password, then refuses the newcomer; the session survives."""
    with raw(server) as r:
        r.connect(10000)
        with raw(server) as r2:
            r2.connect(10000, session_id=r.session_id, passwd=b"\x01" * 16)
            assert r2.negotiated_timeout == 0 and r2.session_id == 0
            assert r2.wait_closed(5.0)
        assert r.wait_closed(5.0)
        with raw(server) as r3:
            r3.connect(10000, session_id=r.session_id, passwd=r.passwd)
            assert r3.session_id == r.session_id and r3.negotiated_timeout == 10000
            assert r3.close_session()[2] == 0


def test_connect_timeout_is_clamped(server, kz):
    for asked, expect in ((0, h.MIN_SESSION_TIMEOUT), (10, h.MIN_SESSION_TIMEOUT), (5000, 5000),
                          (10 ** 9, h.MAX_SESSION_TIMEOUT)):
        with raw(server) as r:
            r.connect(asked)
            assert r.negotiated_timeout == expect, asked
            r.close_session()


def test_connect_without_readonly_flag(server, kz):
    """Old clients send no readOnly byte: the reply then has none either
    (36 bytes: protocolVersion, timeout, sessionId, passwd)."""
    with raw(server) as r:
        r.send_frame(h.Jute().int(0).long(0).int(5000).long(0).buffer(b"\0" * 16).bytes())
        reply = r.recv_frame()
        assert len(reply) == 36
        rd = h.JuteReader(reply)
        assert rd.int() == 0 and rd.int() == 5000
        r.session_id = rd.long()
        r.passwd = rd.buffer()
        assert r.close_session()[2] == 0
    with raw(server) as r:
        r.connect(5000)
        assert r.protocol_version == 0
        r.close_session()


def test_many_short_connections(server, kz):
    """Bounded burst: 50 connections, half of them abandoned mid-handshake.
    (Kept below maxClientCnxns=60 even if closed connections are released
    lazily.)"""
    socks = []
    try:
        for i in range(50):
            s = socket.create_connection(server.address, timeout=5)
            if i % 2:
                s.sendall(b"\x00\x00\x00\x2c\x00")
            socks.append(s)
            if len(socks) >= 10:
                for x in socks:
                    x.close()
                socks = []
    finally:
        for x in socks:
            x.close()
    with raw(server) as r:
        r.connect(5000)
        assert r.exists("/")[2] == 0
        r.close_session()


def test_ping_and_negative_xid(server, kz):
    with raw(server) as r:
        r.connect(10000)
        xid, zxid, err, _ = r.ping()
        assert (xid, err) == (-2, 0)
        xid, zxid, err, _ = r.request(4, h.Jute().string("/").bool(False).bytes(), xid=-7)
        assert (xid, err) == (-7, 0)
        r.close_session()


def test_sasl_and_reconfig_on_a_standalone_server(server):
    """Without SASL configured a standalone server answers sasl with OK, zxid 0 and a
    null token; reconfig is refused (ReconfigDisabled) and the session carries on."""
    with raw(server) as r:
        r.connect(10000)
        xid, zxid, err, rd = r.request(102, h.Jute().buffer(b"token").bytes())
        assert (zxid, err) == (0, 0)
        assert rd.buffer() is None
        xid, zxid, err, rd = r.request(16, h.Jute().string("").string("").string("").long(-1).bytes())
        assert err == -123
        assert r.exists("/")[2] == 0
        assert r.close_session()[2] == 0


def test_multi_with_a_create2_member(server):
    """ZooKeeper 3.8 applies a create2 inside a multi as a plain create and answers it with
    a CreateResult (op 1, path only)."""
    with raw(server) as r:
        r.connect(10000)
        j = (h.Jute().int(15).bool(False).int(-1).string("/mc2").buffer(b"x").acls(h.OPEN_ACL).int(0)
             .int(-1).bool(True).int(-1))
        xid, zxid, err, rd = r.request(14, j.bytes())
        assert err == 0
        assert (rd.int(), rd.bool(), rd.int(), rd.string()) == (1, False, 0, "/mc2")
        assert (rd.int(), rd.bool(), rd.int()) == (-1, True, -1)
        assert r.exists("/mc2")[2] == 0
        r.close_session()


def rss_mb(pid: int) -> float:
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_an_expired_client_that_does_not_read_is_disconnected(rzk_server):
    """A session that expires while its client reads nothing (its replies stuck in the
    socket) is closed and its socket released within a bounded grace, not held until the
    client goes away. (rzk's own bound: runs against rzk only.)"""
    s = rzk_server
    kz = KazooClient(hosts=s.hosts, timeout=10.0)
    kz.start(timeout=30)
    try:
        kz.create("/big-stuck", b"y" * 900_000)
    finally:
        kz.stop()
        kz.close()
    sock = socket.create_connection(s.address, timeout=10)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn = h.Jute().int(0).long(0).int(4000).long(0).buffer(b"\0" * 16).bool(False).bytes()
        sock.sendall(struct.pack(">i", len(conn)) + conn)
        n = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        session = struct.unpack(">iiq", sock.recv(n, socket.MSG_WAITALL)[:16])[2]
        assert "sid=0x%x" % session in h.four_letter(s.port, "cons")
        # ~18 MB of replies: far under the outbound bound, far over the socket buffers.
        for i in range(20):
            req = h.Jute().int(1 + i).int(4).string("/big-stuck").bool(False).bytes()
            sock.sendall(struct.pack(">i", len(req)) + req)
        # no pings: the 4 s session expires; its connection must go within the grace (5 s)
        h.wait_until(lambda: "did not take its last frames in time" in s.log_tail(200), 40,
                     what="the stuck connection closed")
        assert "sid=0x%x" % session not in h.four_letter(s.port, "cons")
        assert h.four_letter(s.port, "ruok") == "imok"
    finally:
        sock.close()


def test_a_client_that_does_not_read_is_cut_off(rzk_server):
    """rzk bounds what it queues for one client: a client that pipelines reads of a large
    znode and never reads the replies is disconnected with a logged reason, the server's
    memory stays bounded, and everybody else is served. (ZooKeeper queues without limit;
    this is rzk's own bound, so it runs against rzk only.)"""
    s = rzk_server
    kz = KazooClient(hosts=s.hosts, timeout=10.0)
    kz.start(timeout=30)
    try:
        big = b"x" * 900_000
        kz.create("/big-unread", big)
        rss_before = rss_mb(s.proc.pid)
        sock = socket.create_connection(s.address, timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # ConnectRequest, then read only its answer.
        conn = h.Jute().int(0).long(0).int(10000).long(0).buffer(b"\0" * 16).bool(False).bytes()
        sock.sendall(struct.pack(">i", len(conn)) + conn)
        n = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        sock.recv(n, socket.MSG_WAITALL)
        # 400 pipelined getData (under the 1000 unanswered requests at which rzk stops
        # reading a connection), replies never read: ~360 MB if they were all queued.
        for i in range(400):
            req = h.Jute().int(1000 + i).int(4).string("/big-unread").bool(False).bytes()
            sock.sendall(struct.pack(">i", len(req)) + req)
        h.wait_until(lambda: "does not read what it is sent" in s.log_tail(200), 60, what="the unread connection cut off")
        log = s.log_tail(200)
        assert "does not read what it is sent" in log, "no disconnect after %d unread replies:\n%s" % (sent, log)
        assert rss_mb(s.proc.pid) < rss_before + 400, "rzk's memory grew with the unread replies"
        sock.close()
        # Everybody else is served.
        assert kz.get("/big-unread")[0] == big
        assert h.four_letter(s.port, "ruok") == "imok"
    finally:
        kz.stop()
        kz.close()
