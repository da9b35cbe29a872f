"""Replays the golden captures (tests/golden/*.json, frames recorded between real clients and
Apache ZooKeeper 3.8.0) against a fresh server, and checks that every frame the server sends
matches the one ZooKeeper sent: same order on each connection, same xid, zxid and error, the
same body byte for byte except for what must differ (session ids and passwords, ctime/mtime,
ephemeralOwner). Run against both servers, so the ZooKeeper run checks the replay itself.

This is what catches a reply body a client library reads but kazoo does not (the Java
client fails on a missing ErrorResponse after addWatch, for example).
"""

import json
import socket
import struct
from pathlib import Path

import pytest

import zkharness as h

GOLDEN = Path(__file__).resolve().parent / "golden"
CAPTURES = ["kazoo_session.json", "zkcli_session.json", "cli_mt_session.json"]

STAT_LEN = 68  # czxid mzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren pzxid
# Replies whose body ends with a Stat.
ENDS_WITH_STAT = {"exists", "setData", "setACL", "getData", "getACL", "getChildren2", "create2",
                  "createContainer", "createTTL"}


def mask_stat(body: bytearray, off: int) -> None:
    """Zeroes ctime, mtime and ephemeralOwner of the Stat at `off`."""
    body[off + 16:off + 32] = bytes(16)
    body[off + 44:off + 52] = bytes(8)


def normalise(frame: dict, payload: bytes) -> bytes:
    b = bytearray(payload)
    kind = frame["kind"]
    if kind == "ConnectResponse":
        # protocolVersion, timeout | sessionId | passwd (len + 16 bytes) | readOnly?
        b[8:16] = bytes(8)
        b[20:36] = bytes(16)
    elif kind == "reply" and frame.get("err") == 0 and frame.get("op") in ENDS_WITH_STAT and len(b) >= 16 + STAT_LEN:
        mask_stat(b, len(b) - STAT_LEN)
    elif kind == "reply" and frame.get("op") in ("multi", "multiRead"):
        mask_multi(b)
    return bytes(b)


def mask_multi(b: bytearray) -> None:
    """Masks the Stats inside a multi / multiRead reply (MultiHeader, then each op's result)."""
    def i32(o):
        return struct.unpack_from(">i", b, o)[0]

    def skip_len_prefixed(o):
        n = i32(o)
        return o + 4 + max(n, 0)

    o = 16
    while o + 9 <= len(b):
        op, done = i32(o), b[o + 4]
        o += 9
        if done:
            return
        if op == 1:  # create: path
            o = skip_len_prefixed(o)
        elif op in (15, 19, 21):  # create2 / container / TTL: path, stat
            o = skip_len_prefixed(o)
            mask_stat(b, o)
            o += STAT_LEN
        elif op == 5:  # setData: stat
            mask_stat(b, o)
            o += STAT_LEN
        elif op == 4:  # getData: data, stat
            o = skip_len_prefixed(o)
            mask_stat(b, o)
            o += STAT_LEN
        elif op == 8:  # getChildren: vector<ustring>
            n = i32(o)
            o += 4
            for _ in range(max(n, 0)):
                o = skip_len_prefixed(o)
        elif op == -1:  # error: err
            o += 4


class Conn:
    def __init__(self, port: int):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, payload: bytes) -> None:
        self.s.sendall(struct.pack(">i", len(payload)) + payload)

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("server closed the connection")
            out += chunk
        return out

    def recv(self) -> bytes:
        (n,) = struct.unpack(">i", self._exact(4))
        return self._exact(n)

    def close(self) -> None:
        self.s.close()


def replay(capture: str, port: int) -> int:
    doc = json.loads((GOLDEN / capture).read_text())
    frames = []
    for c in doc["connections"]:
        for f in c["frames"]:
            frames.append((f["seq"], c["id"], f))
    frames.sort(key=lambda t: t[0])
    conns = {}
    checked = 0
    try:
        for seq, cid, f in frames:
            payload = bytes.fromhex(f["hex"])
            if cid not in conns:
                conns[cid] = Conn(port)
            if f["dir"] == "c2s":
                conns[cid].send(payload)
                continue
            got = conns[cid].recv()
            # Pings are answered whenever they come; skip one the capture has not got here.
            while got[:4] == b"\xff\xff\xff\xfe" and payload[:4] != b"\xff\xff\xff\xfe":
                got = conns[cid].recv()
            where = "%s seq %d (%s %s)" % (capture, seq, f["kind"], f.get("op", f.get("event", "")))
            assert len(got) == len(payload), "%s: length %d, ZooKeeper sent %d\n got %s\nwant %s" % (
                where, len(got), len(payload), got.hex(), payload.hex())
            assert normalise(f, got) == normalise(f, payload), "%s:\n got %s\nwant %s" % (
                where, normalise(f, got).hex(), normalise(f, payload).hex())
            checked += 1
    finally:
        for c in conns.values():
            c.close()
    return checked


@pytest.mark.parametrize("capture", CAPTURES)
@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_golden_replay(kind, capture, new_server):
    s = new_server(kind)
    n = replay(capture, s.port)
    print("golden replay: %s against %s: %d server frames identical" % (capture, kind, n))
    assert n > 5
