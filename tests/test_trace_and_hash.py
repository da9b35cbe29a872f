"""The `hash`, `gtmk` and `stmk` four-letter words, side by side on rzk and Apache ZooKeeper
3.8 (which has all three; 3.9's are the same code): the digest log (the tree digest at every
zxid that is a multiple of 128, zxid in hex), the text trace mask (ZooTrace's default 306)
and setting it with an 8-byte big-endian long after `stmk`, a mask that has not arrived with the
word (ZooKeeper reads it with one non-blocking read: no answer, the mask unchanged);
`4lw.commands.whitelist` refusing them. The digests themselves differ between the two servers
(a znode's ctime / mtime are in them), so the log's zxids are compared side by side.
"""

from __future__ import annotations

import socket
import struct
import time

import zkharness as h
from zkharness import RawSession

KINDS = ["zookeeper", "rzk"]


def send_word(port: int, payload_parts, timeout: float = 10.0) -> str:
    """Sends the parts (a short pause between them), then reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        for i, part in enumerate(payload_parts):
            if i:
                time.sleep(0.3)
            s.sendall(part)
        chunks = []
        s.settimeout(timeout)
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode()


def test_hash_gtmk_stmk_side_by_side(new_server):
    got = {}
    for kind in KINDS:
        s = new_server(kind)
        r = {"hash_empty": h.four_letter(s.port, "hash"), "gtmk": h.four_letter(s.port, "gtmk")}
        with RawSession(*s.address) as c:
            c.connect()  # zxid 1: createSession
            for i in range(140):
                assert c.create("/h%03d" % i, b"v%d" % i)[2] == 0
        log = [line.split(": ") for line in h.four_letter(s.port, "hash").splitlines()]
        assert all(int(d) != 0 for _, d in log)
        r["hash"] = [z for z, _ in log]
        r["stmk"] = send_word(s.port, [b"stmk" + struct.pack(">q", 0x1234)])
        r["gtmk_after"] = h.four_letter(s.port, "gtmk")
        r["stmk_split"] = send_word(s.port, [b"stmk", struct.pack(">q", -2)])
        r["gtmk_unchanged"] = h.four_letter(s.port, "gtmk")
        r["stmk_negative"] = send_word(s.port, [b"stmk" + struct.pack(">q", -2)])
        r["gtmk_negative"] = h.four_letter(s.port, "gtmk")
        r["stmk_default"] = send_word(s.port, [b"stmk" + struct.pack(">q", 306)])
        got[kind] = r
    assert got["rzk"] == got["zookeeper"]
    z = got["zookeeper"]
    assert z["hash_empty"] == "" and z["gtmk"] == "306"
    assert z["hash"] == ["80"]
    assert z["stmk"] == "4660" and z["gtmk_after"] == "4660"
    assert z["stmk_split"] == "" and z["gtmk_unchanged"] == "4660"
    assert z["stmk_negative"] == "-2" and z["gtmk_negative"] == "-2"


def test_whitelist_refuses_them(new_server):
    got = {}
    for kind in KINDS:
        s = new_server(kind, extra_cfg={"4lw.commands.whitelist": "srvr, ruok, gtmk"})
        got[kind] = {
            "hash": h.four_letter(s.port, "hash"),
            # (ruok: the harness waits for it.) Refused before its mask is read: answered without waiting for the 8 bytes.
            "stmk": send_word(s.port, [b"stmk"]),
            "gtmk": h.four_letter(s.port, "gtmk"),
        }
    assert got["rzk"] == got["zookeeper"]
    assert got["zookeeper"]["stmk"] == "stmk is not executed because it is not in the whitelist.\n"
    assert got["zookeeper"]["gtmk"] == "306"
