"""Error codes an outside fuzzer found, side by side on rzk and Apache ZooKeeper 3.8: raw
frames (the same bytes to both servers) whose path is not valid UTF-8, and ACL lists with a
negative count.

ZooKeeper decodes a jute string with `new String(bytes, UTF_8)`, so malformed bytes become
U+FFFD: ops whose prep validates the path answer BadArguments (U+FFFD is not a valid path
character), reads find no node (NoNode). A vector count below -1 is an empty vector in jute
(and -1 a null one), so a create / setACL with one answers InvalidACL. Each op runs on its own
session, so a server that closes the connection shows as "closed".
"""

from __future__ import annotations

import struct

import pytest

import zkharness as h
from zkharness import OP, Jute, RawSession

KINDS = ["zookeeper", "rzk"]

BAD = b"/fz\xff\xfe"  # not UTF-8
BAD_CHILD = b"/fz/\xc3("  # a truncated two-byte sequence, under a node that exists
ACL = Jute().acls(h.OPEN_ACL).bytes()


def raw_string(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


def acl_count(n: int) -> bytes:
    return struct.pack(">i", n)


def multi(*ops) -> bytes:
    j = b""
    for op, body in ops:
        j += struct.pack(">i?i", op, False, -1) + body
    return j + struct.pack(">i?i", -1, True, -1)


def cases():
    s = raw_string
    return {
        "create": (OP["create"], s(BAD) + raw_string(b"x") + ACL + struct.pack(">i", 0)),
        "create_under_existing": (OP["create"], s(BAD_CHILD) + raw_string(b"x") + ACL + struct.pack(">i", 0)),
        "create2": (15, s(BAD) + raw_string(b"") + ACL + struct.pack(">i", 0)),
        "createContainer": (19, s(BAD) + raw_string(b"") + ACL + struct.pack(">i", 4)),
        "createTTL": (21, s(BAD) + raw_string(b"") + ACL + struct.pack(">iq", 5, 1000)),
        "delete": (OP["delete"], s(BAD) + struct.pack(">i", -1)),
        "exists": (OP["exists"], s(BAD) + b"\x00"),
        "exists_watch": (OP["exists"], s(BAD) + b"\x01"),
        "getData": (OP["getData"], s(BAD) + b"\x00"),
        "setData": (OP["setData"], s(BAD) + raw_string(b"x") + struct.pack(">i", -1)),
        "getACL": (6, s(BAD)),
        "setACL": (7, s(BAD) + ACL + struct.pack(">i", -1)),
        "getChildren": (8, s(BAD_CHILD) + b"\x00"),
        "getChildren2": (12, s(BAD) + b"\x00"),
        "sync": (9, s(BAD)),
        # sync echoes the path as the server decoded it: Java's U+FFFD placement (one for a
        # surrogate's three bytes, one for a truncated sequence) differs from Rust's lossy one.
        "sync_surrogate": (9, s(b"/\xed\xa0\x80/\xf0\x9f/\xe2\x82")),
        "sync_overlong": (9, s(b"/\xe0\x80\xaf/\xf4\x90\x80\x80/\xc0\xaf")),
        "getAllChildrenNumber": (104, s(BAD)),
        "getEphemerals": (103, s(BAD)),
        "addWatch": (106, s(BAD) + struct.pack(">i", 0)),
        "checkWatches": (17, s(BAD) + struct.pack(">i", 2)),
        "removeWatches": (18, s(BAD) + struct.pack(">i", 3)),
        "multi_create": (14, multi((1, s(BAD) + raw_string(b"") + ACL + struct.pack(">i", 0)))),
        "multi_check": (14, multi((13, s(BAD) + struct.pack(">i", -1)))),
        # ACL lists with a negative count: -1 is a null list, below -1 an empty one.
        "create_acl_-1": (OP["create"], s(b"/fz/acl") + raw_string(b"") + acl_count(-1) + struct.pack(">i", 0)),
        "create_acl_-5": (OP["create"], s(b"/fz/acl") + raw_string(b"") + acl_count(-5) + struct.pack(">i", 0)),
        "create2_acl_min": (15, s(b"/fz/acl") + raw_string(b"") + acl_count(-(2 ** 31)) + struct.pack(">i", 0)),
        "setACL_acl_-3": (7, s(b"/fz") + acl_count(-3) + struct.pack(">i", -1)),
        "multi_create_acl_-2": (14, multi((1, s(b"/fz/acl") + raw_string(b"") + acl_count(-2) + struct.pack(">i", 0)))),
    }


def run_case(s, op: int, body: bytes):
    with RawSession(*s.address) as c:
        c.connect()
        try:
            _, _, err, r = c.request(op, body)
        except (h.ConnectionClosed, TimeoutError) as e:
            return ("closed", type(e).__name__)
        rest = r.remaining() if err == 0 else b""
        if op == 9 and err == 0:
            return (err, h.JuteReader(rest).buffer())
        if op == 14 and err == 0:
            # A multi's results: (type, done, err) headers; an error result carries its code.
            out, rr = [], h.JuteReader(rest)
            while True:
                t, done, e = rr.int(), rr.bool(), rr.int()
                if done:
                    break
                out.append((t, rr.int()) if t == -1 else (t,))
            return (err, out)
        return (err,)


def test_bad_paths_and_negative_acl_counts_answer_as_zookeeper(new_server):
    got = {}
    for kind in KINDS:
        s = new_server(kind)
        with RawSession(*s.address) as c:
            c.connect()
            assert c.create("/fz")[2] == 0
        got[kind] = {name: run_case(s, op, body) for name, (op, body) in cases().items()}
    diff = {k: (got["rzk"][k], got["zookeeper"][k]) for k in got["zookeeper"] if got["rzk"][k] != got["zookeeper"][k]}
    assert diff == {}, "rzk vs zookeeper: %r" % diff
    # What ZooKeeper answers, spelled out (so a change on either side is seen here).
    z = got["zookeeper"]
    assert z["create"] == (-8,) and z["setData"] == (-8,) and z["getData"] == (-101,)
    assert z["create_acl_-1"] == (-114,) and z["create_acl_-5"] == (-114,) and z["setACL_acl_-3"] == (-114,)


@pytest.mark.parametrize("kind", KINDS)
def test_server_survives_the_cases(new_server, kind):
    s = new_server(kind)
    for op, body in cases().values():
        run_case(s, op, body)
    with RawSession(*s.address) as c:
        c.connect()
        assert c.exists("/")[2] == 0
