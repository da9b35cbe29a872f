"""Request throttling (ZooKeeper's RequestThrottler), rzk and Apache ZooKeeper 3.8 side by side.

zoo.cfg keys ZooKeeper does not know become `zookeeper.<key>` system properties on both
servers, so the same file configures both:
- `request_throttle_max_requests`: requests in process beyond which new ones wait;
- `throttled_op_wait_time`: a request that waited longer is answered ThrottledOp (-127)
  and not carried out.
A kazoo client pipelines creates; what it sees (which succeeded, which were throttled, the
tree afterwards) and the mntr counters are compared. Timing differs between the servers, so
the comparison is of kinds of outcome, not of counts.
"""

import socket
import struct

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ThrottledOpError

import zkharness as h

KINDS = ["rzk", "zookeeper"]


def mntr(port):
    rows = {}
    for line in h.four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        rows[k] = v
    return rows


def burst(new_server, kind, cfg, n=400):
    s = new_server(kind, extra_cfg=dict(cfg, **{"4lw.commands.whitelist": "*"}))
    kz = KazooClient(hosts=s.hosts, timeout=15.0)
    kz.start(timeout=30)
    try:
        kz.create("/burst")
        asyncs = [kz.create_async("/burst/n-%04d" % i, b"x" * 200) for i in range(n)]
        ok, throttled, other = [], 0, []
        for i, a in enumerate(asyncs):
            try:
                a.get(timeout=60)
                ok.append("n-%04d" % i)
            except ThrottledOpError:
                throttled += 1
            except Exception as e:  # noqa: BLE001 - reported below
                other.append(type(e).__name__)
        children = sorted(kz.get_children("/burst"))
        # the session is still good after throttled ops
        kz.create("/after", b"y")
        return {
            "ok": len(ok),
            "throttled": throttled,
            "other": other,
            "tree_matches_acks": children == ok,
            "mntr": {k: int(mntr(s.port)[k]) for k in ("zk_throttled_ops", "zk_request_throttle_wait_count")},
        }
    finally:
        kz.stop()
        kz.close()


def test_requests_wait_when_too_many_are_in_process(new_server):
    """max 2 in process, no ThrottledOp: every create succeeds, after waiting."""
    got = {kind: burst(new_server, kind, {"request_throttle_max_requests": "2"}) for kind in KINDS}
    for kind, g in got.items():
        assert g["ok"] == 400 and g["throttled"] == 0 and not g["other"], (kind, g)
        assert g["tree_matches_acks"], (kind, g)
        assert g["mntr"]["zk_request_throttle_wait_count"] > 0, (kind, g)
        assert g["mntr"]["zk_throttled_ops"] == 0, (kind, g)


def test_requests_that_waited_too_long_are_throttled_ops(new_server):
    """max 1 in process, ThrottledOp after 1 ms of waiting: some creates are answered
    ThrottledOp and are not carried out; the others are; the session goes on."""
    cfg = {"request_throttle_max_requests": "1", "throttled_op_wait_time": "1"}
    got = {kind: burst(new_server, kind, cfg) for kind in KINDS}
    for kind, g in got.items():
        assert g["ok"] > 0 and g["throttled"] > 0 and not g["other"], (kind, g)
        assert g["ok"] + g["throttled"] == 400, (kind, g)
        assert g["tree_matches_acks"], (kind, g)
        assert g["mntr"]["zk_throttled_ops"] == g["throttled"], (kind, g)


def connect_raw(port):
    """A ConnectRequest on a new socket: the negotiated timeout, or None if the server
    closed the connection instead of answering."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        req = h.Jute().int(0).long(0).int(10000).long(0).buffer(b"\0" * 16).bool(False).bytes()
        sock.sendall(struct.pack(">i", len(req)) + req)
        head = sock.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return None
        body = sock.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL)
        return struct.unpack(">ii", body[:8])[1]
    except (ConnectionResetError, socket.timeout):
        return None
    finally:
        sock.close()


def test_connection_throttle_refuses_connections_beyond_its_tokens(new_server):
    """A bucket of 3 tokens refilled once a minute: three connection requests are served,
    the next ones closed unanswered, and counted in zk_connection_rejected."""
    got = {}
    for kind in KINDS:
        s = new_server(kind, extra_cfg={"connection_throttle_tokens": "3", "connection_throttle_fill_time": "60000",
                                        "4lw.commands.whitelist": "*"})
        answers = [connect_raw(s.port) for _ in range(6)]
        got[kind] = {"served": [a is not None for a in answers],
                     "rejected": int(mntr(s.port)["zk_connection_rejected"])}
    assert got["zookeeper"]["served"] == [True] * 3 + [False] * 3, got
    assert got["rzk"] == got["zookeeper"], got


def large_burst(new_server, kind):
    s = new_server(kind, extra_cfg={"largeRequestThreshold": "1000", "largeRequestMaxBytes": "3000",
                                    "4lw.commands.whitelist": "*"})
    kz = KazooClient(hosts=s.hosts, timeout=15.0)
    kz.start(timeout=30)
    try:
        kz.create("/big-0", b"x" * 2000)  # one large request alone fits
        asyncs = [kz.create_async("/big-%d" % i, b"x" * 2000) for i in range(1, 30)]
        outcomes = []
        for a in asyncs:
            try:
                a.get(timeout=60)
                outcomes.append("ok")
            except Exception as e:  # noqa: BLE001 - the kinds are compared
                outcomes.append(type(e).__name__)
        kz.create("/small", b"s")  # the session goes on over a new connection
        return {"first_alone_ok": kz.exists("/big-0") is not None, "kinds": sorted(set(outcomes)),
                "some_refused": "ok" in outcomes and any(o != "ok" for o in outcomes),
                "rejected": int(mntr(s.port)["zk_large_requests_rejected"]) > 0}
    finally:
        kz.stop()
        kz.close()


def test_large_requests_share_a_byte_budget(new_server):
    """Requests over largeRequestThreshold may hold largeRequestMaxBytes together: one
    fits, a pipelined burst of them gets its connection closed (ConnectionLoss for what was
    in flight), counted in zk_large_requests_rejected; the session carries on."""
    got = {kind: large_burst(new_server, kind) for kind in KINDS}
    assert got["zookeeper"]["first_alone_ok"] and got["zookeeper"]["rejected"], got
    assert got["rzk"] == got["zookeeper"], got
