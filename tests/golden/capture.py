#!/usr/bin/env python3
"""Capture golden ZooKeeper wire frames from real clients talking to a real
Apache ZooKeeper 3.8, through a small recording TCP proxy.

    .venv/bin/python tests/golden/capture.py            # rewrites tests/golden/*.json

Writes:
  kazoo_session.json   kazoo (Python) session covering every request type
  zkcli_session.json   zkCli.sh (the Java client) session
  cli_mt_session.json  cli_mt (the C client) session

Each file lists connections; each connection lists frames in the order the
proxy saw them:
  {"seq": n, "dir": "c2s"|"s2c", "len": <payload length>,
   "hex": "<payload, without the 4-byte length prefix>",
   "kind": "ConnectRequest"|"ConnectResponse"|"request"|"reply"|"notification"|...,
   "opcode": <request type>, "op": "<name>", "xid": ..., "zxid": ..., "err": ...}
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import zkharness as h  # noqa: E402


class RecordingProxy:
    """Accepts on 127.0.0.1:<free port>, forwards to the upstream server and
    records every length-prefixed frame in both directions."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.seq = 0
        self.connections = []
        self.threads = []
        self.stopped = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(self.upstream)
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = {"id": len(self.connections), "frames": [], "pending": {}, "connected": {"c2s": False, "s2c": False}}
            with self.lock:
                self.connections.append(conn)
            for src, dst, d in ((c, u, "c2s"), (u, c, "s2c")):
                t = threading.Thread(target=self._pump, args=(conn, src, dst, d), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, conn, src, dst, direction):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                # record complete frames before forwarding, so a frame is
                # recorded even if the receiver has already gone away
                while len(buf) >= 4:
                    (n,) = struct.unpack(">i", buf[:4])
                    if n < 0 or len(buf) < 4 + n:
                        break
                    self._record(conn, direction, buf[4 : 4 + n])
                    buf = buf[4 + n :]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _record(self, conn, direction, payload):
        with self.lock:
            frame = {"seq": self.seq, "dir": direction, "len": len(payload), "hex": payload.hex()}
            self.seq += 1
            frame.update(describe(conn, direction, payload))
            conn["frames"].append(frame)

    def close(self):
        self.stopped = True
        self.lsock.close()

    def dump(self):
        with self.lock:
            return [{"id": c["id"], "frames": list(c["frames"])} for c in self.connections]


SPECIAL_XIDS = {-1: "notification", -2: "ping", -4: "auth", -8: "setWatches"}
EVENT_TYPES = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}


def describe(conn, direction, p):
    if not conn["connected"][direction]:
        conn["connected"][direction] = True
        return {"kind": "ConnectRequest" if direction == "c2s" else "ConnectResponse"}
    if direction == "c2s":
        xid, opcode = struct.unpack(">ii", p[:8])
        conn["pending"][xid] = opcode
        return {"kind": "request", "xid": xid, "opcode": opcode, "op": h.OPNAME.get(opcode, "unknown")}
    xid, zxid, err = struct.unpack(">iqi", p[:16])
    d = {"xid": xid, "zxid": zxid, "err": err}
    if xid == -1:
        r = h.JuteReader(p, 16)
        t, state, path = r.int(), r.int(), r.string()
        d.update({"kind": "notification", "event": EVENT_TYPES.get(t, t), "state": state, "path": path})
    else:
        opcode = conn["pending"].pop(xid, None)
        d.update({"kind": "reply", "opcode": opcode, "op": h.OPNAME.get(opcode, "unknown")})
    return d


# --------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------


def kazoo_session(proxy):
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl

    sys.path.insert(0, str(HERE.parent))
    from difftest import raw  # raw requests through kazoo's connection

    def call(c, req):
        ar = c.handler.async_result()
        c._call(req, ar)
        return ar.get(timeout=10)

    other = KazooClient(hosts=proxy.hosts, timeout=10.0)
    other.start(timeout=30)
    c = KazooClient(hosts=proxy.hosts, timeout=4.0)  # short timeout: pings come quickly
    c.start(timeout=30)
    c.add_auth("digest", "user1:pw1")
    c.create("/g", b"golden")                                           # create
    c.create("/g/eph", b"e", ephemeral=True)                            # create ephemeral
    c.create("/g/seq-", b"s", sequence=True)                            # create sequential
    c.create("/g/eseq-", b"es", ephemeral=True, sequence=True)          # ephemeral sequential
    c.create("/g/c2", b"c2", include_data=True)                         # create2
    call(c, raw("createContainer", "/g/container", data=b"box", flags=4))  # createContainer
    call(c, raw("createTTL", "/g/ttl", data=b"t", flags=5, ttl=3600000))   # createTTL
    c.create("/g/acl", b"a", acl=[make_digest_acl("user1", "pw1", all=True)])
    c.get("/g")                                                         # getData
    c.set("/g", b"golden2")                                             # setData
    c.set("/g", b"golden3", version=1)                                  # setData with version
    c.exists("/g")                                                      # exists
    c.exists("/g/missing")                                              # exists -> NoNode
    try:
        c.get("/g/missing")                                             # getData -> NoNode error
    except Exception:
        pass
    c.get_children("/g")                                                # getChildren2 (kazoo: GetChildren)
    c.get_children("/g", include_data=True)                             # getChildren2
    c.get_acls("/g/acl")                                                # getACL
    c.set_acls("/g/c2", [make_digest_acl("user1", "pw1", read=True, write=True)])  # setACL
    t = c.transaction()                                                 # multi (success)
    t.create("/g/m1", b"m")
    t.set_data("/g/m1", b"m2")
    t.check("/g", 2)
    t.delete("/g/m1")
    t.commit()
    t = c.transaction()                                                 # multi (failing member)
    t.create("/g/m2", b"m")
    t.delete("/g/nonexistent")
    t.commit()
    call(c, raw("multiRead", None, ops=[("getData", "/g"), ("getChildren", "/g"), ("getData", "/nope")]))
    c.sync("/g")                                                        # sync
    call(c, raw("addWatch", "/g", mode=1))                              # addWatch persistent recursive
    call(c, raw("addWatch", "/g/c2", mode=0))                           # addWatch persistent
    c.get("/g/eph", watch=lambda e: None)                               # one-time data watch
    c.get_children("/g", watch=lambda e: None)                          # one-time child watch
    other.set("/g/eph", b"changed")                                     # -> notifications
    other.create("/g/from-other", b"o")
    other.set("/g/ttl", b"t2")                                          # persistent recursive watch fires
    time.sleep(0.3)
    call(c, raw("removeWatches", "/g/c2", wtype=3))                     # removeWatches (Any)
    call(c, raw("getEphemerals", "/g"))                                 # getEphemerals
    call(c, raw("getAllChildrenNumber", "/g"))                          # getAllChildrenNumber
    call(c, raw("opcode", None, code=107, body=b""))                    # whoAmI
    c.delete("/g/from-other")                                           # delete
    c.delete("/g/seq-0000000001", version=0)                            # delete with version
    time.sleep(2.5)                                                     # idle -> ping(s)
    c.stop()                                                            # closeSession
    c.close()
    other.stop()
    other.close()


def zkcli_session(proxy):
    script = b"\n".join([
        b"create /cli hello", b"get -s /cli", b"set /cli world", b"ls -s /", b"stat /cli",
        b"getAcl /cli", b"setAcl /cli world:anyone:cdrwa", b"create -e /cli/e x", b"get -w /cli",
        b"delete /cli/e", b"delete /cli", b"quit", b""])
    env = dict(os.environ)
    env.setdefault("CLIENT_JVMFLAGS", "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1")
    h.run_bounded([h.ZK_CLI, "-server", proxy.hosts], input=script, timeout=90, env=env)


def cli_mt_session(proxy):
    p = h.spawn([h.CLI_MT, proxy.hosts], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
    try:
        for line in [b"create /cmt", b"get /cmt", b"set /cmt v", b"ls /", b"ls2 /", b"exists /cmt",
                     b"sync /cmt", b"delete /cmt", b"quit"]:
            time.sleep(0.4)
            p.stdin.write(line + b"\n")
            p.stdin.flush()
        p.wait(20)
    finally:
        h.kill_process_group(p)


SESSIONS = {
    "kazoo_session.json": (kazoo_session, "kazoo (Python)"),
    "zkcli_session.json": (zkcli_session, "zkCli.sh (Java client 3.8.0, Debian)"),
    "cli_mt_session.json": (cli_mt_session, "cli_mt (C client 3.8.0, Debian zookeeper-bin)"),
}


def main():
    out_dir = HERE
    for name, (fn, client) in SESSIONS.items():
        server = h.ZooKeeperServer().start()
        proxy = RecordingProxy(server.address)
        try:
            fn(proxy)
            time.sleep(0.5)
        finally:
            proxy.close()
            server.cleanup()
        conns = [c for c in proxy.dump() if c["frames"]]
        doc = {
            "description": "ZooKeeper wire frames between a real client and Apache ZooKeeper 3.8.0, "
                           "recorded by tests/golden/capture.py's proxy. 'hex' is the frame payload "
                           "without its 4-byte big-endian length prefix ('len').",
            "server": "Apache ZooKeeper 3.8.0 (Debian package), standalone, extendedTypesEnabled=true",
            "client": client,
            "connections": conns,
        }
        (out_dir / name).write_text(json.dumps(doc, indent=1) + "\n")
        n = sum(len(c["frames"]) for c in conns)
        ops = sorted({f.get("op") for c in conns for f in c["frames"] if f.get("op")})
        print("%s: %d connections, %d frames, ops: %s" % (name, len(conns), n, ", ".join(ops)))
    h.kill_all_started()


if __name__ == "__main__":
    main()
