"""Differential testing of two ZooKeeper servers through kazoo.

A seeded generator produces operations; each one is executed, in lock-step,
against a reference Apache ZooKeeper and a candidate server (rzk, or a second
Apache ZooKeeper to check that the harness itself is deterministic). After
each operation every live session does a round trip, so that all watch events
caused by the operation have been received and recorded before the next one.
Every result (return value, error class, Stat minus ctime/mtime, reply-header
zxid) and every watch event per session goes into a transcript; the two
transcripts must be identical.

Run directly for long runs:
    .venv/bin/python tests/difftest.py --seed 7 --ops 2000 --against zookeeper
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import sys
import threading
import time
from collections import namedtuple
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zkharness as h  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo import exceptions as kex  # noqa: E402
from kazoo.protocol.serialization import Watch  # noqa: E402
from kazoo.security import ACL, Id, make_digest_acl  # noqa: E402

logging.getLogger("kazoo").setLevel(logging.CRITICAL)

OP_TIMEOUT = float(os.environ.get("DIFF_OP_TIMEOUT", "10"))
EXPIRY_TIMEOUT = 20.0
REAP_TIMEOUT = 8.0

# kazoo raises RuntimeError inside its reader thread (killing the
# connection) for error codes it does not know; give every code a class.
for _code in range(-130, 0):
    if _code not in kex.EXCEPTIONS:
        _cls = type("ZkError%d" % -_code, (kex.ZookeeperError,), {"code": _code})
        kex.EXCEPTIONS[_code] = _cls


# --------------------------------------------------------------------------
# raw requests pushed through kazoo's connection (kazoo normalises paths and
# lacks container/TTL/addWatch/removeWatches/getEphemerals/...)
# --------------------------------------------------------------------------


class RawRequest:
    def __init__(self, type_: int, body: bytes, decode=None, name: str = ""):
        self.type = type_
        self.body = body
        self._decode = decode
        self.name = name

    def serialize(self):
        return self.body

    def deserialize(self, buf, off):
        if self._decode is None:
            return True
        return self._decode(h.JuteReader(buf, off))

    def __repr__(self):
        return "RawRequest(%s/%d)" % (self.name, self.type)


def _dec_create2(r):
    return {"path": r.string(), "stat": r.stat()}


def _dec_stat(r):
    return {"stat": r.stat()}


def _dec_data(r):
    return {"data": r.buffer(), "stat": r.stat()}


def _dec_children(r):
    return {"children": r.strings()}


def _dec_children2(r):
    return {"children": r.strings(), "stat": r.stat()}


def _dec_acl(r):
    n = r.int()
    acls = None if n < 0 else [(r.int(), r.string(), r.string()) for _ in range(n)]
    return {"acl": acls, "stat": r.stat()}


def _dec_string(r):
    return {"path": r.string()}


def _dec_int(r):
    return {"value": r.int()}


def _dec_strings_sorted(r):
    v = r.strings()
    return {"list": None if v is None else sorted(v)}


def _dec_multiread(r):
    out = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            break
        if typ == 4:
            out.append({"data": r.buffer(), "stat": r.stat()})
        elif typ == 8:
            out.append({"children": sorted(r.strings() or [])})
        elif typ == -1:
            out.append({"err": r.int()})
        else:
            out.append({"type": typ, "rest": r.remaining().hex()})
            break
    return {"multiRead": out}


def acl_tuples(acl) -> List[tuple]:
    return [(a.perms, a.id.scheme, a.id.id) for a in acl]


def raw(op: str, path: Optional[str], **kw) -> RawRequest:
    J = h.Jute
    if op in ("create", "create2", "createContainer", "createTTL"):
        code = h.OP[op]
        j = J().string(path).buffer(kw.get("data", b"")).acls(kw.get("acl", h.OPEN_ACL)).int(kw.get("flags", 0))
        if op == "createTTL":
            j.long(kw["ttl"])
        dec = _dec_string if op == "create" else _dec_create2
        return RawRequest(code, j.bytes(), dec, op)
    if op == "delete":
        return RawRequest(2, J().string(path).int(kw.get("version", -1)).bytes(), None, op)
    if op == "exists":
        return RawRequest(3, J().string(path).bool(kw.get("watch", False)).bytes(), _dec_stat, op)
    if op == "getData":
        return RawRequest(4, J().string(path).bool(kw.get("watch", False)).bytes(), _dec_data, op)
    if op == "setData":
        return RawRequest(5, J().string(path).buffer(kw.get("data", b"")).int(kw.get("version", -1)).bytes(), _dec_stat, op)
    if op == "getACL":
        return RawRequest(6, J().string(path).bytes(), _dec_acl, op)
    if op == "setACL":
        return RawRequest(7, J().string(path).acls(kw.get("acl", h.OPEN_ACL)).int(kw.get("version", -1)).bytes(), _dec_stat, op)
    if op == "getChildren":
        return RawRequest(8, J().string(path).bool(kw.get("watch", False)).bytes(), _dec_children, op)
    if op == "getChildren2":
        return RawRequest(12, J().string(path).bool(kw.get("watch", False)).bytes(), _dec_children2, op)
    if op == "sync":
        return RawRequest(9, J().string(path).bytes(), _dec_string, op)
    if op == "addWatch":
        return RawRequest(106, J().string(path).int(kw["mode"]).bytes(), None, op)
    if op in ("removeWatches", "checkWatches"):
        return RawRequest(h.OP[op], J().string(path).int(kw["wtype"]).bytes(), None, op)
    if op == "getEphemerals":
        return RawRequest(103, J().string(path).bytes(), _dec_strings_sorted, op)
    if op == "getAllChildrenNumber":
        return RawRequest(104, J().string(path).bytes(), _dec_int, op)
    if op == "multiRead":
        j = J()
        for sub, p in kw["ops"]:
            j.int(h.OP[sub]).bool(False).int(-1).string(p)
            if sub in ("getData", "getChildren"):
                j.bool(False)
        j.int(-1).bool(True).int(-1)
        return RawRequest(22, j.bytes(), _dec_multiread, op)
    if op == "opcode":
        return RawRequest(kw["code"], kw.get("body", b""), lambda r: {"body": r.remaining().hex()},
                          "opcode%d" % kw["code"])
    raise ValueError(op)


# --------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------

STAT_KEYS = ["czxid", "mzxid", "version", "cversion", "aversion", "ephemeralOwner",
             "dataLength", "numChildren", "pzxid"]


def fmt_data(b) -> Any:
    if b is None:
        return None
    if len(b) <= 64:
        try:
            return "s:" + b.decode("ascii") if all(32 <= c < 127 for c in b) else "x:" + b.hex()
        except UnicodeDecodeError:
            return "x:" + b.hex()
    return "sha1:%s:len=%d" % (hashlib.sha1(b).hexdigest(), len(b))


class Target:
    """One server plus the sessions the schedule uses on it."""

    def __init__(self, kind: str, name: str):
        self.kind = kind
        self.name = name
        # enforceQuota: a quota's hard limits refuse creates and setData (quota ops below).
        self.server = h.make_server(kind, extra_cfg={"enforceQuota": "true"})
        self.sessions: Dict[str, "KSession"] = {}
        self.owners: Dict[int, str] = {}
        self.unknown_owner = 0

    def start(self):
        self.server.start()

    def stop(self):
        for s in list(self.sessions.values()):
            s.kill()
        self.server.cleanup()

    # -- normalisation --------------------------------------------------
    def owner(self, sid: int) -> Any:
        if sid == 0:
            return 0
        if sid in self.owners:
            return self.owners[sid]
        hi = (sid >> 56) & 0xFF
        if hi == 0xFF or sid == -0x8000000000000000:
            # TTL / container markers are stored in ephemeralOwner
            return "special:%x" % (sid & 0xFFFFFFFFFFFFFFFF)
        self.unknown_owner += 1
        self.owners[sid] = "unknown%d" % self.unknown_owner
        return self.owners[sid]

    def stat(self, st) -> Optional[Dict[str, Any]]:
        if st is None:
            return None
        if isinstance(st, dict):
            d = {k: st[k] for k in STAT_KEYS}
        else:
            d = {k: getattr(st, k if k != "ephemeralOwner" else "ephemeralOwner") for k in STAT_KEYS}
        d["ephemeralOwner"] = self.owner(d["ephemeralOwner"])
        return d

    def norm(self, v: Any) -> Any:
        """Make a kazoo/raw result JSON-able and server-independent."""
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, (bytes, bytearray)):
            return fmt_data(bytes(v))
        if isinstance(v, BaseException):
            return {"error": type(v).__name__}
        if hasattr(v, "czxid") and hasattr(v, "pzxid"):
            return self.stat(v)
        if isinstance(v, ACL):
            return [v.perms, v.id.scheme, v.id.id]
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if k == "stat":
                    out[k] = self.stat(x)
                elif k == "children" and isinstance(x, list):
                    out[k] = sorted(x)
                elif k == "data":
                    out[k] = fmt_data(x)
                else:
                    out[k] = self.norm(x)
            return out
        if isinstance(v, (list, tuple)):
            return [self.norm(x) for x in v]
        return repr(v)


class KSession:
    """A kazoo client whose received watch events are all recorded (at the
    wire level, before kazoo's own dispatch)."""

    def __init__(self, target: Target, label: str, auth=None):
        self.target = target
        self.label = label
        self.gen = 0
        self.auth = list(auth or [])
        self.client: Optional[KazooClient] = None
        self.events: List[list] = []
        self.states: List[str] = []

    def start(self) -> Dict[str, Any]:
        self.gen += 1
        c = KazooClient(
            hosts=self.target.server.hosts,
            timeout=30.0,
            connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1, "max_delay": 0.2},
            command_retry=None,
        )
        conn = c._connection
        orig = conn._read_watch_event

        def recorder(buffer, offset, _orig=orig):
            w, _ = Watch.deserialize(buffer, offset)
            self.events.append([w.type, w.state, w.path])
            return _orig(buffer, offset)

        conn._read_watch_event = recorder
        c.add_listener(lambda st: self.states.append(str(st)))
        c.start(timeout=30)
        self.client = c
        sid = c.client_id[0]
        self.target.owners[sid] = "%s.g%d" % (self.label, self.gen)
        for scheme, cred in self.auth:
            c.add_auth_async(scheme, cred).get(timeout=OP_TIMEOUT)
        return {"session": "%s.g%d" % (self.label, self.gen), "timeout": c._session_timeout,
                "zxid": c.last_zxid}

    def stop(self) -> Dict[str, Any]:
        c = self.client
        self.client = None
        z = c.last_zxid
        c.stop()
        c.close()
        return {"closed": "%s.g%d" % (self.label, self.gen), "prev_zxid": z}

    def kill(self):
        c, self.client = self.client, None
        if c is None:
            return

        def stop():
            try:
                c.stop()
                c.close()
            except Exception:
                pass

        th = threading.Thread(target=stop, daemon=True)
        th.start()
        th.join(5.0)

    def take_events(self) -> List[list]:
        ev, self.events = self.events, []
        return ev


# --------------------------------------------------------------------------
# the operation generator
# --------------------------------------------------------------------------

NAMES = ["a", "b", "c", "d"]
SESSIONS = ["s0", "s1", "s2"]
AUTH_U1 = ("digest", "user1:pw1")
AUTH_U2 = ("digest", "user2:pw2")

ACLS = {
    "open": [ACL(31, Id("world", "anyone"))],
    "read_only": [ACL(1, Id("world", "anyone"))],
    "creator_all": [ACL(31, Id("auth", ""))],
    "digest_u1": [make_digest_acl("user1", "pw1", all=True)],
    "digest_u1_world_read": [make_digest_acl("user1", "pw1", all=True), ACL(1, Id("world", "anyone"))],
    "world_create_delete": [ACL(12, Id("world", "anyone"))],
    "digest_u2_admin_world_rw": [make_digest_acl("user2", "pw2", admin=True), ACL(3, Id("world", "anyone"))],
    "ip_local": [ACL(31, Id("ip", "127.0.0.1"))],
    "ip_subnet": [ACL(31, Id("ip", "127.0.0.0/8"))],
    "empty": [],
    "bad_scheme": [ACL(31, Id("nosuchscheme", "x"))],
    "bad_digest_id": [ACL(31, Id("digest", "nocolon"))],
    "perms0": [ACL(0, Id("world", "anyone"))],
}
ACL_WEIGHTS = {"open": 60, "read_only": 4, "creator_all": 4, "digest_u1": 4, "digest_u1_world_read": 4,
               "world_create_delete": 3, "digest_u2_admin_world_rw": 2, "ip_local": 2, "ip_subnet": 1,
               "empty": 1, "bad_scheme": 1, "bad_digest_id": 1, "perms0": 1}

BAD_PATHS = [
    "", None, "a", "a/b", "/a/", "//", "//a", "/a//b", "/.", "/..", "/a/.", "/a/..", "/a/../b",
    "/./a", "/a\x00b", "/\x00", "/a\x01", "/a\x1f", "/a\x7f", "/a\u0085", "/\ue000", "/\ufff5",
    "/zookeeper/../a", " /a", "/a ", "/\u00fc", "/" + "x" * 1000, "/a/b/", "\\a",
]

RESERVED_OPS = [
    ("create", "/zookeeper/x"), ("create", "/zookeeper/quota/x"), ("create", "/zookeeper/config/x"),
    ("create", "/zookeeper"), ("setData", "/zookeeper"), ("setData", "/zookeeper/config"),
    ("setData", "/zookeeper/quota"), ("delete", "/zookeeper/quota"), ("delete", "/zookeeper/config"),
    ("delete", "/zookeeper"), ("getData", "/zookeeper/config"), ("getData", "/zookeeper"),
    ("getData", "/zookeeper/quota"), ("getChildren2", "/zookeeper"), ("getACL", "/zookeeper/config"),
    ("getACL", "/zookeeper"), ("setACL", "/zookeeper/config"), ("exists", "/zookeeper/config"),
    ("getAllChildrenNumber", "/zookeeper"), ("getAllChildrenNumber", "/"),
]

OP_WEIGHTS = [
    ("create", 22), ("create_special", 7), ("delete", 9), ("set", 10), ("get", 7), ("exists", 7),
    ("children", 7), ("multi", 6), ("multi_read", 1.5), ("set_acls", 3), ("get_acls", 3), ("add_auth", 1),
    ("add_watch", 3), ("remove_watches", 2), ("sync", 2), ("ephemerals", 2), ("bad_path", 4),
    ("reserved", 2), ("unknown_opcode", 0.3), ("close_session", 1.5), ("expire_session", 0.8),
    ("oversize", 0.6), ("ttl_expire", 0.6), ("container_cycle", 0.8), ("set_watches", 1),
    ("snapshot", 0.5), ("quota", 3), ("bad_bytes", 1),
]

# Quota limits as zkCli.sh's setquota writes them (StatsTrack text): soft ones only warn, hard
# ones refuse with QuotaExceeded under enforceQuota; some malformed-but-parsable ones too.
QUOTA_LIMITS = [
    "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2",
    "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=4",
    "count=-1,bytes=-1=;byteHardLimit=12;countHardLimit=-1",
    "count=-1,bytes=-1=;byteHardLimit=40;countHardLimit=3",
    "count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
    "count=3,bytes=5",
    "count=-1,bytes=-1",
    "count=1,bytes=-1=;byteHardLimit=-1;countHardLimit=6",
]

# Raw requests a fuzzer sent: paths that are not UTF-8 (ZooKeeper decodes them with U+FFFD)
# and ACL lists with a negative count (-1 null, below -1 empty: InvalidACL).
BAD_PATH_BYTES = [b"/\xff", b"/a\xc3(", b"/\xed\xa0\x80", b"/ok/\xfe\xff", b"\xff/a", b"/\xf0\x28\x8c\xbc"]
BAD_BYTES_OPS = ["create", "create2", "delete", "exists", "getData", "setData", "getACL", "setACL", "getChildren2",
                 "sync", "getAllChildrenNumber", "getEphemerals", "addWatch", "checkWatches", "multi_create",
                 "acl_create", "acl_create2", "acl_setACL", "acl_multi"]


class Model:
    """Approximate view of the tree (from the reference's results), used
    only to pick interesting targets."""

    def __init__(self):
        self.nodes: Dict[str, Dict[str, Any]] = {}
        self.containers: set = set()
        self.counter = 0
        # paths given a quota (limit node created) by the quota op
        self.quotas: set = set()

    def add(self, path: str, owner=None, container=False):
        self.nodes[path] = {"owner": owner}
        if container:
            self.containers.add(path)

    def remove(self, path: str):
        for p in list(self.nodes):
            if p == path or p.startswith(path.rstrip("/") + "/"):
                self.nodes.pop(p, None)
                self.containers.discard(p)

    def drop_owner(self, owner: str):
        for p, n in list(self.nodes.items()):
            if n["owner"] == owner:
                self.remove(p)

    def rebuild(self, snapshot: Dict[str, Any]):
        self.nodes = {}
        for p, n in snapshot.items():
            if p.startswith("/zookeeper") or p == "/":
                continue
            st = n.get("stat") or {}
            owner = st.get("ephemeralOwner")
            self.nodes[p] = {"owner": owner if isinstance(owner, str) and not owner.startswith("special") else None}
        self.containers = {p for p in self.containers if p in self.nodes}


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.model = Model()
        self.n = 0

    def choice_w(self, pairs):
        total = sum(w for _, w in pairs)
        x = self.rng.uniform(0, total)
        for k, w in pairs:
            x -= w
            if x <= 0:
                return k
        return pairs[-1][0]

    def rand_path(self, depth=None) -> str:
        r = self.rng
        if depth is None:
            depth = r.choice([1, 1, 2, 2, 2, 3])
        return "/" + "/".join(r.choice(NAMES) for _ in range(depth))

    def pick_path(self, existing_bias=0.65) -> str:
        r = self.rng
        known = sorted(self.model.nodes)
        if known and r.random() < existing_bias:
            return r.choice(known)
        if r.random() < 0.03:
            return "/"
        return self.rand_path()

    def pick_parent_for_create(self) -> str:
        r = self.rng
        conts = sorted(p for p in self.model.containers if p in self.model.nodes)
        if conts and r.random() < 0.25:
            return r.choice(conts) + "/" + r.choice(NAMES)
        known = sorted(p for p, n in self.model.nodes.items() if n["owner"] is None)
        if known and r.random() < 0.55:
            parent = r.choice(known)
            if parent.count("/") < 4:
                return parent + "/" + r.choice(NAMES)
        return self.rand_path()

    def data(self):
        r = self.rng
        k = r.random()
        if k < 0.15:
            return b""
        if k < 0.2:
            return None
        if k < 0.75:
            return r.choice([b"x", b"hello", b"data", b"\x00\x01\x02", "\u00fc\u00df".encode()])
        return bytes(r.getrandbits(8) for _ in range(r.randint(1, 200)))

    def version(self):
        r = self.rng
        return -1 if r.random() < 0.5 else r.randint(0, 3)

    def session(self):
        return self.rng.choice(SESSIONS)

    def acl_name(self):
        return self.choice_w(list(ACL_WEIGHTS.items()))

    def next_op(self) -> Dict[str, Any]:
        r = self.rng
        self.n += 1
        kind = self.choice_w(OP_WEIGHTS)
        s = self.session()
        if kind == "create":
            mode = r.choice(["persistent", "persistent", "ephemeral", "sequential", "ephemeral_sequential"])
            path = self.pick_parent_for_create()
            if mode in ("sequential", "ephemeral_sequential"):
                path = path + r.choice(["-", "/", "q"]) if r.random() < 0.9 else path
            return {"op": "create", "s": s, "path": path, "mode": mode, "data": self.data(),
                    "acl": self.acl_name(), "makepath": r.random() < 0.15, "include_data": r.random() < 0.3}
        if kind == "create_special":
            path = self.pick_parent_for_create()
            sub = r.choice(["container", "container", "ttl", "ttl", "ttl_seq", "ttl_bad", "bad_flags", "container_via_create"])
            op = {"op": "create_special", "s": s, "sub": sub, "path": path, "data": self.data() or b""}
            if sub in ("ttl", "ttl_seq"):
                op["ttl"] = r.choice([3600000, 7200000, 0xFFFFFFFFFF])
            elif sub == "ttl_bad":
                # invalid TTLs with TTL modes, valid TTLs with other modes.
                # (Apache ZooKeeper 3.8.0 crashes -- exits -- on createTTL
                # with a non-TTL mode AND an invalid ttl: never send that.)
                if r.random() < 0.5:
                    op["flags"] = r.choice([5, 6])
                    op["ttl"] = r.choice([0, -5, 0x10000000000])
                else:
                    op["flags"] = r.choice([0, 1, 2, 3, 4, 7])
                    op["ttl"] = 3600000
                if op["flags"] not in (5, 6) and op["ttl"] < 0:
                    # Apache ZooKeeper 3.8.0 passes validation here, then fails outside its
                    # error handling and drops every client connection. rzk answers
                    # BadArguments; the comparison leaves this one input out.
                    op["ttl"] = 0
            elif sub == "bad_flags":
                op["flags"] = r.choice([4, 5, 6, 7, 8, -1, 100])
            return op
        if kind == "delete":
            in_cont = sorted(p for p in self.model.nodes if p.rsplit("/", 1)[0] in self.model.containers)
            path = r.choice(in_cont) if in_cont and r.random() < 0.3 else self.pick_path(0.8)
            return {"op": "delete", "s": s, "path": path, "version": self.version()}
        if kind == "set":
            return {"op": "set", "s": s, "path": self.pick_path(0.8), "data": self.data(), "version": self.version()}
        if kind == "get":
            return {"op": "get", "s": s, "path": self.pick_path(), "watch": r.random() < 0.5}
        if kind == "exists":
            return {"op": "exists", "s": s, "path": self.pick_path(0.5), "watch": r.random() < 0.5}
        if kind == "children":
            return {"op": "children", "s": s, "path": self.pick_path(), "watch": r.random() < 0.5,
                    "include_data": r.random() < 0.5}
        if kind == "multi":
            subs = []
            for _ in range(r.randint(1, 4)):
                t = r.choice(["create", "create", "delete", "set", "check"])
                if t == "create":
                    subs.append({"t": "create", "path": self.pick_parent_for_create(), "data": self.data() or b"",
                                 "ephemeral": r.random() < 0.3, "sequence": r.random() < 0.2})
                elif t == "delete":
                    subs.append({"t": "delete", "path": self.pick_path(0.8), "version": self.version()})
                elif t == "set":
                    subs.append({"t": "set", "path": self.pick_path(0.8), "data": self.data() or b"",
                                 "version": self.version()})
                else:
                    subs.append({"t": "check", "path": self.pick_path(0.8), "version": self.version()})
            return {"op": "multi", "s": s, "subs": subs}
        if kind == "multi_read":
            ops = [(r.choice(["getData", "getChildren"]), self.pick_path()) for _ in range(r.randint(1, 4))]
            return {"op": "multi_read", "s": s, "ops": ops}
        if kind == "set_acls":
            path = self.pick_path(0.9)
            if path == "/":
                path = self.rand_path()
            return {"op": "set_acls", "s": s, "path": path, "acl": self.acl_name(), "version": self.version()}
        if kind == "get_acls":
            return {"op": "get_acls", "s": s, "path": self.pick_path()}
        if kind == "add_auth":
            return {"op": "add_auth", "s": r.choice(["s1", "s2"]), "auth": r.choice([AUTH_U1, AUTH_U2])}
        if kind == "add_watch":
            # Only PERSISTENT: Apache ZooKeeper 3.8.0's WatcherModeManager loses count of
            # recursive watches (they then stop firing for descendants), a bug fixed in later
            # releases that rzk does not reproduce. Recursive watches are tested on their own
            # in test_e2e_watches.py.
            return {"op": "add_watch", "s": s, "path": self.pick_path(0.5), "mode": 0}
        if kind == "remove_watches":
            # Types 4 and 5 (Persistent, PersistentRecursive) are ZooKeeper 3.9's: the 3.8
            # reference refuses them and rzk serves them as 3.9 (test_watch_removal.py); 0 and
            # 6 are out of range for both (MarshallingError).
            return {"op": "remove_watches", "s": s, "path": self.pick_path(0.5),
                    "wtype": r.choice([1, 2, 3, 1, 2, 3, 0, 6]), "check": r.random() < 0.3}
        if kind == "sync":
            return {"op": "sync", "s": s, "path": self.pick_path()}
        if kind == "ephemerals":
            if r.random() < 0.5:
                return {"op": "get_ephemerals", "s": s, "path": r.choice(["/", "", "/a", "/b/", self.pick_path()])}
            return {"op": "all_children_number", "s": s, "path": self.pick_path()}
        if kind == "bad_path":
            return {"op": "bad_path", "s": s, "path": r.choice(BAD_PATHS),
                    "sub": r.choice(["create", "create", "create2", "delete", "setData", "getData", "exists",
                                     "getChildren2", "getACL", "setACL", "sync", "addWatch", "createContainer"])}
        if kind == "reserved":
            sub, path = r.choice(RESERVED_OPS)
            return {"op": "reserved", "s": s, "sub": sub, "path": path}
        if kind == "unknown_opcode":
            return {"op": "unknown_opcode", "s": s, "code": r.choice([107, 999, 50])}
        if kind == "close_session":
            return {"op": "close_session", "s": s}
        if kind == "expire_session":
            self.model.counter += 1
            parents = sorted(p for p, n in self.model.nodes.items() if n["owner"] is None)
            extra = [r.choice(parents) + "/" + r.choice(NAMES) for _ in range(r.randint(0, 2))] if parents else []
            return {"op": "expire_session", "marker": "/exp%d" % self.model.counter, "extra": extra,
                    "watch": self.pick_path() if r.random() < 0.5 else None,
                    "seq": r.random() < 0.3}
        if kind == "oversize":
            self.model.counter += 1
            return {"op": "oversize", "path": "/big%d" % self.model.counter,
                    "sub": r.choice(["create_at_limit", "create_over_limit", "set_at_limit", "set_over_limit",
                                     "huge_length"])}
        if kind == "ttl_expire":
            self.model.counter += 1
            return {"op": "ttl_expire", "s": s, "path": "/ttl%d" % self.model.counter, "ttl": r.choice([1, 50])}
        if kind == "container_cycle":
            self.model.counter += 1
            return {"op": "container_cycle", "s": s, "path": "/c%d" % self.model.counter,
                    "nested": r.random() < 0.5, "ephemeral_child": r.random() < 0.3,
                    "watcher": r.choice(SESSIONS), "child_watch": r.random() < 0.5}
        if kind == "set_watches":
            pick = lambda: [self.pick_path(0.7) for _ in range(r.randint(0, 3))]  # noqa: E731
            op = {"op": "set_watches", "rel": r.choice([0, r.randint(0, 3 * self.n)]), "v2": r.random() < 0.5,
                  "data": pick(), "exist": pick(), "child": pick()}
            if op["v2"]:
                op["persistent"] = pick()
                op["recursive"] = pick()
            return op
        if kind == "snapshot":
            return {"op": "snapshot"}
        if kind == "quota":
            quotas = sorted(self.model.quotas)
            sub = r.choice(["set", "set", "hit", "hit", "hit", "update", "delete"]) if quotas else "set"
            if sub == "set":
                known = sorted(p for p, n in self.model.nodes.items() if n["owner"] is None)
                path = r.choice(known) if known and r.random() < 0.85 else self.rand_path()
                return {"op": "quota", "s": s, "sub": "set", "path": path, "limits": r.choice(QUOTA_LIMITS)}
            path = r.choice(quotas)
            if sub == "hit":
                return {"op": "quota", "s": s, "sub": "hit", "path": path, "n": r.randint(2, 5),
                        "data": r.choice([b"", b"abc", b"0123456789", b"x" * 30]), "set": r.random() < 0.4,
                        "multi": r.random() < 0.3}
            if sub == "update":
                return {"op": "quota", "s": s, "sub": "update", "path": path, "limits": r.choice(QUOTA_LIMITS)}
            return {"op": "quota", "s": s, "sub": "delete", "path": path}
        if kind == "bad_bytes":
            return {"op": "bad_bytes", "s": s, "path": r.choice(BAD_PATH_BYTES), "sub": r.choice(BAD_BYTES_OPS),
                    "count": r.choice([-1, -2, -7, -(2 ** 31)])}
        raise AssertionError(kind)


# --------------------------------------------------------------------------
# executing operations
# --------------------------------------------------------------------------


def _wait(async_result):
    return async_result.get(timeout=OP_TIMEOUT)


def _retry_loss(make_call, timeout=OP_TIMEOUT):
    """For the harness's own bookkeeping reads: retry through a reconnect."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _wait(make_call())
        except kex.ConnectionLoss:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Executor:
    def __init__(self, target: Target):
        self.t = target
        self.raw_count = 0
        self.containers: Dict[str, int] = {}

    # -- session set-up ---------------------------------------------------
    def open_sessions(self) -> Dict[str, Any]:
        out = {}
        for label in SESSIONS:
            ks = KSession(self.t, label, auth=[AUTH_U1] if label == "s0" else [])
            self.t.sessions[label] = ks
            out[label] = ks.start()
        return out

    def client(self, label) -> KazooClient:
        return self.t.sessions[label].client

    def call(self, label, req: RawRequest):
        c = self.client(label)
        ar = c.handler.async_result()
        c._call(req, ar)
        return _wait(ar)

    def guarded(self, fn) -> Any:
        try:
            return {"ok": self.t.norm(fn())}
        except kex.KazooException as e:
            return {"error": type(e).__name__}
        except Exception as e:  # noqa: BLE001 - record, don't crash the schedule
            return {"error": "py:" + type(e).__name__}

    # -- one operation ------------------------------------------------------
    def run(self, op: Dict[str, Any]) -> Dict[str, Any]:
        if not self.t.server.is_running():
            raise Mismatch("%s (%s) is not running before op %s\n--- log tail ---\n%s"
                           % (self.t.name, self.t.kind, _j(op), self.t.server.log_tail()))
        fn = getattr(self, "op_" + op["op"])
        res = fn(op)
        rec = {"result": res}
        label = op.get("s")
        if label and self.t.sessions.get(label) and self.t.sessions[label].client is not None:
            rec["zxid"] = self.client(label).last_zxid
        self.settle()  # also waits for kazoo to reconnect if the op made the server drop it
        rec["reaped"] = self.reap_containers()
        if rec["reaped"]:
            self.settle()
        events = {}
        for lbl in SESSIONS:
            ev = self.t.sessions[lbl].take_events()
            if op["op"] in ("close_session", "expire_session"):
                ev = sorted(ev)  # ephemerals of a closed session are deleted in hash-set order
            if ev:
                events[lbl] = ev
        rec["events"] = events
        states = {}
        for lbl in SESSIONS:
            st = self.t.sessions[lbl].states
            if st:
                states[lbl] = list(st)
                del st[:]
        if states:
            rec["states"] = states
        return rec

    def settle(self):
        """A round trip from every session: watch events caused by the
        previous operation were sent before these replies."""
        for lbl in SESSIONS:
            ks = self.t.sessions[lbl]
            if ks.client is None:
                continue
            deadline = time.monotonic() + OP_TIMEOUT
            while True:
                # an operation may have made the server drop the connection
                # (e.g. an unknown opcode): wait until kazoo has reconnected
                try:
                    _wait(ks.client.exists_async("/"))
                    if ks.client.connected:
                        break
                except kex.ConnectionLoss:
                    pass
                except Exception:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)

    def reap_containers(self) -> List[Any]:
        """Wait until no container is eligible for deletion (empty, and had
        children): the server's container manager removes those within its
        check interval. Done between operations so the zxids it consumes
        are deterministic. Containers are the nodes created with opcode
        createContainer (19); they are recognised by path + czxid (stats
        of containers and TTL nodes show ephemeralOwner 0).

        Returns the containers that are gone since the last call (deleted by
        the operation or by the container manager: which of the two happened
        first is timing, the end state is not) and those that stay eligible
        but were not deleted in time."""
        gone, stuck = [], []
        c = self.client("s0")
        known = self.containers
        for _ in range(20):
            progress = False
            for p in sorted(known):
                try:
                    st = _retry_loss(lambda: c.exists_async(p))
                except Exception as e:
                    stuck.append([p, "error:" + type(e).__name__])
                    continue
                if st is None or st.czxid != known[p]:
                    known.pop(p, None)
                    gone.append(p)
                    progress = True
                    continue
                if st.numChildren == 0 and st.cversion > 0 and p not in stuck:
                    deadline = time.monotonic() + REAP_TIMEOUT
                    while time.monotonic() < deadline:
                        st = _retry_loss(lambda: c.exists_async(p))
                        if st is None or st.czxid != known[p]:
                            break
                        time.sleep(0.02)
                    else:
                        stuck.append(p)
                        continue
                    known.pop(p, None)
                    gone.append(p)
                    progress = True
            if not progress:
                break
        out = [[p, "gone"] for p in sorted(gone)]
        out += [[p, "NOT deleted within %.0fs though empty with cversion>0" % REAP_TIMEOUT] if isinstance(p, str) else p
                for p in stuck]
        return out

    def note_container(self, res):
        """res: normalised Create2Response of a successful createContainer."""
        self.containers[res["path"]] = res["stat"]["czxid"]

    # -- kazoo API operations ----------------------------------------------
    def op_create(self, op):
        c = self.client(op["s"])
        acl = ACLS[op["acl"]]
        eph = op["mode"] in ("ephemeral", "ephemeral_sequential")
        seq = op["mode"] in ("sequential", "ephemeral_sequential")
        if not acl:
            # kazoo replaces an empty ACL list by its default; send it raw
            flags = (1 if eph else 0) | (2 if seq else 0)
            return self.guarded(lambda: self.call(op["s"], raw("create2" if op["include_data"] else "create",
                                                                 op["path"], data=op["data"], acl=[], flags=flags)))
        return self.guarded(lambda: _wait(c.create_async(
            op["path"], op["data"], acl=acl, ephemeral=eph, sequence=seq, makepath=op["makepath"],
            include_data=op["include_data"])))

    def op_create_special(self, op):
        sub = op["sub"]
        acl = h.OPEN_ACL
        if sub in ("container", "container_via_create"):
            if sub == "container":
                req = raw("createContainer", op["path"], data=op["data"], acl=acl, flags=4)
            else:
                req = raw("create2", op["path"], data=op["data"], acl=acl, flags=4)
            res = self.guarded(lambda: self.call(op["s"], req))
            if "ok" in res and sub == "container":
                self.note_container(res["ok"])
            return res
        if sub in ("ttl", "ttl_seq"):
            req = raw("createTTL", op["path"], data=op["data"], acl=acl, flags=5 if sub == "ttl" else 6, ttl=op["ttl"])
        elif sub == "ttl_bad":
            req = raw("createTTL", op["path"], data=op["data"], acl=acl, flags=op["flags"], ttl=op["ttl"])
        else:
            req = raw("create2", op["path"], data=op["data"], acl=acl, flags=op["flags"])
        return self.guarded(lambda: self.call(op["s"], req))

    def op_delete(self, op):
        c = self.client(op["s"])
        return self.guarded(lambda: _wait(c.delete_async(op["path"], version=op["version"])))

    def op_set(self, op):
        c = self.client(op["s"])
        return self.guarded(lambda: _wait(c.set_async(op["path"], op["data"], version=op["version"])))

    @staticmethod
    def _noop_watch(event):
        pass

    def op_get(self, op):
        c = self.client(op["s"])
        w = self._noop_watch if op["watch"] else None
        return self.guarded(lambda: _wait(c.get_async(op["path"], watch=w)))

    def op_exists(self, op):
        c = self.client(op["s"])
        w = self._noop_watch if op["watch"] else None
        return self.guarded(lambda: _wait(c.exists_async(op["path"], watch=w)))

    def op_children(self, op):
        c = self.client(op["s"])
        w = self._noop_watch if op["watch"] else None

        def f():
            r = _wait(c.get_children_async(op["path"], watch=w, include_data=op["include_data"]))
            if op["include_data"]:
                return {"children": sorted(r[0]), "stat": r[1]}
            return {"children": sorted(r)}

        return self.guarded(f)

    def op_multi(self, op):
        c = self.client(op["s"])

        def f():
            t = c.transaction()
            for sub in op["subs"]:
                if sub["t"] == "create":
                    t.create(sub["path"], sub["data"], ephemeral=sub["ephemeral"], sequence=sub["sequence"])
                elif sub["t"] == "delete":
                    t.delete(sub["path"], version=sub["version"])
                elif sub["t"] == "set":
                    t.set_data(sub["path"], sub["data"], version=sub["version"])
                else:
                    t.check(sub["path"], sub["version"])
            return _wait(t.commit_async())

        return self.guarded(f)

    def op_multi_read(self, op):
        return self.guarded(lambda: self.call(op["s"], raw("multiRead", None, ops=op["ops"])))

    def op_set_acls(self, op):
        c = self.client(op["s"])
        acl = ACLS[op["acl"]]
        if not acl:
            return self.guarded(lambda: self.call(op["s"], raw("setACL", op["path"], acl=[], version=op["version"])))
        return self.guarded(lambda: _wait(c.set_acls_async(op["path"], acl, version=op["version"])))

    def op_get_acls(self, op):
        c = self.client(op["s"])

        def f():
            acl, st = _wait(c.get_acls_async(op["path"]))
            return {"acl": [self.t.norm(a) for a in acl], "stat": st}

        return self.guarded(f)

    def op_add_auth(self, op):
        ks = self.t.sessions[op["s"]]
        scheme, cred = op["auth"]
        if tuple(op["auth"]) not in ks.auth:
            ks.auth.append(tuple(op["auth"]))
        return self.guarded(lambda: _wait(ks.client.add_auth_async(scheme, cred)))

    def op_add_watch(self, op):
        return self.guarded(lambda: self.call(op["s"], raw("addWatch", op["path"], mode=op["mode"])))

    def op_remove_watches(self, op):
        name = "checkWatches" if op["check"] else "removeWatches"
        return self.guarded(lambda: self.call(op["s"], raw(name, op["path"], wtype=op["wtype"])))

    def op_sync(self, op):
        c = self.client(op["s"])
        return self.guarded(lambda: _wait(c.sync_async(op["path"])))

    def op_get_ephemerals(self, op):
        return self.guarded(lambda: self.call(op["s"], raw("getEphemerals", op["path"])))

    def op_all_children_number(self, op):
        return self.guarded(lambda: self.call(op["s"], raw("getAllChildrenNumber", op["path"])))

    def op_bad_path(self, op):
        sub, p = op["sub"], op["path"]
        if sub == "create":
            req = raw("create", p, data=b"v")
        elif sub == "create2":
            req = raw("create2", p, data=b"v", flags=2)
        elif sub == "createContainer":
            req = raw("createContainer", p, data=b"v", flags=4)
        elif sub == "setACL":
            req = raw("setACL", p, acl=h.OPEN_ACL)
        elif sub == "addWatch":
            req = raw("addWatch", p, mode=0)
        elif sub == "setData":
            req = raw("setData", p, data=b"v")
        else:
            req = raw(sub, p)
        res = self.guarded(lambda: self.call(op["s"], req))
        if sub == "createContainer" and "ok" in res:
            self.note_container(res["ok"])
        return res

    def op_reserved(self, op):
        sub, p = op["sub"], op["path"]
        if sub == "create":
            req = raw("create", p, data=b"v")
        elif sub == "setData":
            req = raw("setData", p, data=b"v")
        elif sub == "setACL":
            req = raw("setACL", p, acl=[(1, "world", "anyone")])
        else:
            req = raw(sub, p)
        return self.guarded(lambda: self.call(op["s"], req))

    def op_unknown_opcode(self, op):
        return self.guarded(lambda: self.call(op["s"], raw("opcode", None, code=op["code"],
                                                         body=h.Jute().string("/").bytes())))

    # -- quotas ------------------------------------------------------------
    def op_quota(self, op):
        """setquota done as zkCli.sh does it (the quota path's nodes, the limit node, then a
        stats node the server fills in), creates and setData under a quota (some hit its hard
        limits: QuotaExceeded), a limit changed, a quota deleted."""
        sub, path, lab = op["sub"], op["path"], op["s"]
        qpath = "/zookeeper/quota" + path
        call = lambda req: self.guarded(lambda: self.call(lab, req))  # noqa: E731
        if sub == "set":
            # zkCli's setquota needs the node: make it (and its parents) if missing.
            steps = []
            cur = ""
            for part in path.split("/")[1:]:
                cur += "/" + part
                steps.append(call(raw("create", cur, data=b"")))
            cur = "/zookeeper/quota"
            for part in path.split("/")[1:]:
                cur += "/" + part
                steps.append(call(raw("create", cur, data=b"")))
            steps.append(call(raw("create", qpath + "/zookeeper_limits", data=op["limits"].encode())))
            steps.append(call(raw("create", qpath + "/zookeeper_stats", data=b"count=0,bytes=0")))
            steps.append(call(raw("getData", qpath + "/zookeeper_stats")))
            return {"steps": steps}
        if sub == "hit":
            out = []
            base = path.rstrip("/") + "/q"
            self.raw_count += 1
            if op["multi"]:
                subs = [{"t": "create", "path": "%s%d_%d" % (base, self.raw_count, i), "data": op["data"],
                         "ephemeral": False, "sequence": False} for i in range(op["n"])]
                out.append(self.op_multi({"s": lab, "subs": subs}))
            else:
                for i in range(op["n"]):
                    out.append(call(raw("create", "%s%d_%d" % (base, self.raw_count, i), data=op["data"])))
            if op["set"]:
                out.append(call(raw("setData", path, data=op["data"] * 3)))
            out.append(call(raw("getData", qpath + "/zookeeper_stats")))
            return {"steps": out}
        if sub == "update":
            return {"steps": [call(raw("setData", qpath + "/zookeeper_limits", data=op["limits"].encode()))]}
        return {"steps": [call(raw("delete", qpath + "/zookeeper_stats")), call(raw("delete", qpath + "/zookeeper_limits"))]}

    # -- what a fuzzer sent ------------------------------------------------
    def op_bad_bytes(self, op):
        """Raw frames with a path that is not UTF-8, or an ACL list with a negative count."""
        J = h.Jute
        sub, pb, lab = op["sub"], op["path"], op["s"]
        path = J().buffer(pb).bytes()  # a jute string is a buffer
        acl = J().acls(h.OPEN_ACL).bytes()
        neg = J().int(op["count"]).bytes()
        body = {
            "create": (1, path + J().buffer(b"v").bytes() + acl + J().int(0).bytes(), _dec_string),
            "create2": (15, path + J().buffer(b"v").bytes() + acl + J().int(0).bytes(), _dec_create2),
            "delete": (2, path + J().int(-1).bytes(), None),
            "exists": (3, path + J().bool(True).bytes(), _dec_stat),
            "getData": (4, path + J().bool(False).bytes(), _dec_data),
            "setData": (5, path + J().buffer(b"v").int(-1).bytes(), _dec_stat),
            "getACL": (6, path, _dec_acl),
            "setACL": (7, path + acl + J().int(-1).bytes(), _dec_stat),
            "getChildren2": (12, path + J().bool(False).bytes(), _dec_children2),
            "sync": (9, path, _dec_string),
            "getAllChildrenNumber": (104, path, _dec_int),
            "getEphemerals": (103, path, _dec_strings_sorted),
            "addWatch": (106, path + J().int(0).bytes(), None),
            "checkWatches": (17, path + J().int(3).bytes(), None),
            "multi_create": (14, J().int(1).bool(False).int(-1).bytes() + path + J().buffer(b"").bytes() + acl
                             + J().int(0).int(-1).bool(True).int(-1).bytes(), lambda r: {"multi": r.remaining().hex()}),
            "acl_create": (1, J().string("/negacl").buffer(b"v").bytes() + neg + J().int(0).bytes(), _dec_string),
            "acl_create2": (15, J().string("/negacl").buffer(b"v").bytes() + neg + J().int(0).bytes(), _dec_create2),
            "acl_setACL": (7, J().string("/").bytes() + neg + J().int(-1).bytes(), _dec_stat),
            "acl_multi": (14, J().int(1).bool(False).int(-1).string("/negacl").buffer(b"").bytes() + neg
                          + J().int(0).int(-1).bool(True).int(-1).bytes(), lambda r: {"multi": r.remaining().hex()}),
        }[sub]
        return self.guarded(lambda: self.call(lab, RawRequest(body[0], body[1], body[2], "bad_bytes:" + sub)))

    def op_close_session(self, op):
        ks = self.t.sessions[op["s"]]
        closed = ks.stop()
        events_of_closed = ks.take_events()
        started = ks.start()
        return {"closed": closed, "started": started, "late_events": events_of_closed}

    # -- raw-socket sessions ----------------------------------------------
    def _raw_session(self, timeout_ms):
        self.raw_count += 1
        rs = h.RawSession(*self.t.server.address, timeout=OP_TIMEOUT).connect(timeout_ms)
        label = "raw%d" % self.raw_count
        self.t.owners[rs.session_id] = label
        return rs, label

    def _raw_result(self, res):
        xid, zxid, err, r = res
        return {"zxid": zxid, "err": err}

    def op_expire_session(self, op):
        """A raw session creates ephemerals, maybe sets a watch, then goes
        silent. Wait (polling with exists) until the marker ephemeral is
        gone: the session has expired and its close txn was applied."""
        rs, label = self._raw_session(2 * h.MIN_SESSION_TIMEOUT)
        out = {"label": label, "timeout": rs.negotiated_timeout, "creates": []}
        try:
            flags = 3 if op["seq"] else 1
            x, zxid, err, r = rs.create(op["marker"], b"m", flags=flags)
            marker = r.string() if err == 0 else None
            out["creates"].append({"path": marker, "zxid": zxid, "err": err})
            for p in op["extra"]:
                x, zxid, err, r = rs.create(p, b"e", flags=1)
                out["creates"].append({"path": r.string() if err == 0 else p, "zxid": zxid, "err": err})
            if op["watch"]:
                x, zxid, err, r = rs.exists(op["watch"], watch=True)
                out["watch"] = {"zxid": zxid, "err": err}
        except (h.ConnectionClosed, OSError, TimeoutError) as e:
            out["raw_error"] = type(e).__name__
            marker = None
        if not marker:
            # nothing to observe the expiry with: close explicitly so that no
            # asynchronous expiry happens during later operations
            try:
                x, zxid, err, r = rs.close_session()
                out["closed_explicitly"] = {"zxid": zxid, "err": err}
            except (h.ConnectionClosed, OSError, TimeoutError) as e:
                out["close_error"] = type(e).__name__
        c = self.client("s0")
        t0 = time.monotonic()
        if marker:
            gone = False
            while time.monotonic() - t0 < EXPIRY_TIMEOUT:
                if _retry_loss(lambda: c.exists_async(marker)) is None:
                    gone = True
                    break
                time.sleep(0.05)
            out["expired"] = gone
            out["socket_closed_by_server"] = rs.wait_closed(5.0) if gone else None
        rs.close()
        self.t.owners.pop(rs.session_id, None)
        return out

    def op_oversize(self, op):
        """Requests around jute.maxbuffer (1048575): a frame whose length
        field exceeds it makes the server drop the connection (the session
        survives); exactly at the limit is accepted."""
        rs, label = self._raw_session(10000)
        out = {"label": label}
        path = op["path"]
        sub = op["sub"]
        acl_len = 4 + sum(4 + 4 + len(s) + 4 + len(i) for _, s, i in h.OPEN_ACL)
        try:
            if sub.startswith("set"):
                x, zxid, err, r = rs.create(path, b"small")
                out["create_small"] = {"zxid": zxid, "err": err}
                # frame = xid + type + path + data + version
                n = h.JUTE_MAXBUFFER - (4 + 4 + 4 + len(path.encode()) + 4 + 4)
                if sub == "set_over_limit":
                    n += 1
                body = h.Jute().string(path).buffer(b"z" * n).int(-1).bytes()
                res = rs.request(5, body)
                out["set"] = {"zxid": res[1], "err": res[2], "stat": self.t.stat(res[3].stat()) if res[2] == 0 else None,
                              "datalen": n}
            elif sub.startswith("create"):
                n = h.JUTE_MAXBUFFER - (4 + 4 + 4 + len(path.encode()) + 4 + acl_len + 4)
                if sub == "create_over_limit":
                    n += 1
                res = rs.create(path, b"y" * n)
                out["create"] = {"zxid": res[1], "err": res[2], "datalen": n}
            else:
                # a length prefix far beyond the limit, no body
                rs.sock.sendall(b"\x7f\xff\xff\xf0")
                out["huge"] = {"closed": rs.wait_closed(5.0)}
                raise h.ConnectionClosed("closed after huge length")
        except (h.ConnectionClosed, OSError):
            # EOF, reset or EPIPE depending on timing: all mean "dropped"
            out["dropped"] = True
        rs.close()
        # Re-attach to the same session (it must still be alive), read the
        # node back, then close the session explicitly.
        rs2 = h.RawSession(*self.t.server.address, timeout=OP_TIMEOUT)
        try:
            rs2.connect(10000, session_id=rs.session_id, passwd=rs.passwd)
            out["reattach_timeout"] = rs2.negotiated_timeout
            out["reattach_same_session"] = rs2.session_id == rs.session_id
            x, zxid, err, r = rs2.get_data(path)
            if err == 0:
                d = r.buffer()
                out["readback"] = {"zxid": zxid, "datalen": None if d is None else len(d),
                                   "sha1": hashlib.sha1(d or b"").hexdigest(), "stat": self.t.stat(r.stat())}
            else:
                out["readback"] = {"zxid": zxid, "err": err}
            x, zxid, err, r = rs2.close_session()
            out["close"] = {"zxid": zxid, "err": err}
        except (h.ConnectionClosed, OSError, TimeoutError) as e:
            out["reattach_error"] = type(e).__name__
        rs2.close()
        self.t.owners.pop(rs.session_id, None)
        return out

    def op_set_watches(self, op):
        """What a reconnecting client sends: SetWatches (101) or SetWatches2
        (105) with a relative zxid; the server fires events for watched nodes
        that changed after it, then registers the rest."""
        rs, label = self._raw_session(10000)
        out = {"label": label}
        try:
            j = h.Jute().long(op["rel"]).strings(op["data"]).strings(op["exist"]).strings(op["child"])
            if op["v2"]:
                j.strings(op["persistent"]).strings(op["recursive"])
            xid, zxid, err, r = rs.request(105 if op["v2"] else 101, j.bytes(), xid=-8)
            out["reply"] = {"xid": xid, "zxid": zxid, "err": err, "body": r.remaining().hex()}
            out["events_before_reply"] = [list(e) for e in rs.events]
            x, zxid, err, r = rs.close_session()
            out["close"] = {"zxid": zxid, "err": err}
            out["events"] = [list(e) for e in rs.events]
        except (h.ConnectionClosed, OSError, TimeoutError) as e:
            out["raw_error"] = type(e).__name__
        rs.close()
        self.t.owners.pop(rs.session_id, None)
        return out

    def op_ttl_expire(self, op):
        """A TTL node with a tiny TTL: wait until the container manager
        removes it (between operations, so its zxid is deterministic)."""
        res = self.guarded(lambda: self.call(op["s"], raw("createTTL", op["path"], data=b"t", flags=5, ttl=op["ttl"])))
        out = {"create": res}
        if "ok" in res:
            c = self.client("s0")
            t0 = time.monotonic()
            gone = False
            while time.monotonic() - t0 < REAP_TIMEOUT:
                if _retry_loss(lambda: c.exists_async(op["path"])) is None:
                    gone = True
                    break
                time.sleep(0.02)
            out["reaped"] = gone
        return out

    def op_container_cycle(self, op):
        """container -> (container ->) child, watched by another session;
        deleting the child makes the container(s) eligible for deletion by
        the container manager (reap_containers waits for that)."""
        s, p = op["s"], op["path"]
        out = {}
        out["container"] = self.guarded(lambda: self.call(s, raw("createContainer", p, data=b"c", flags=4)))
        if "ok" in out["container"]:
            self.note_container(out["container"]["ok"])
        parent = p
        if op["nested"]:
            parent = p + "/n"
            out["nested"] = self.guarded(lambda: self.call(s, raw("createContainer", parent, flags=4)))
            if "ok" in out["nested"]:
                self.note_container(out["nested"]["ok"])
        c = self.client(s)
        w = self.client(op["watcher"])
        out["watch"] = self.guarded(lambda: _wait(w.exists_async(p, watch=Executor._noop_watch)))
        if op["child_watch"]:
            out["child_watch"] = self.guarded(lambda: _wait(w.get_children_async(parent, watch=Executor._noop_watch)))
        child = parent + "/x"
        out["child"] = self.guarded(lambda: _wait(c.create_async(child, b"x", ephemeral=op["ephemeral_child"])))
        out["delete"] = self.guarded(lambda: _wait(c.delete_async(child)))
        return out

    def op_snapshot(self, op):
        return {"tree": self.snapshot()}

    def snapshot(self) -> Dict[str, Any]:
        """Whole tree as seen by s0 (digest user1): data, stat, acl, children."""
        c = self.client("s0")
        out: Dict[str, Any] = {}
        stack = ["/"]
        while stack:
            p = stack.pop()
            node: Dict[str, Any] = {}
            try:
                data, st = _wait(c.get_async(p))
                node["data"] = fmt_data(data)
                node["stat"] = self.t.stat(st)
            except kex.KazooException as e:
                node["get"] = type(e).__name__
            try:
                acl, _ = _wait(c.get_acls_async(p))
                node["acl"] = [self.t.norm(a) for a in acl]
            except kex.KazooException as e:
                node["acl"] = type(e).__name__
            try:
                kids = sorted(_wait(c.get_children_async(p)))
                node["children"] = kids
                for k in reversed(kids):
                    stack.append(("/" if p == "/" else p + "/") + k)
            except kex.KazooException as e:
                node["children"] = type(e).__name__
            out[p] = node
        return out


# --------------------------------------------------------------------------
# the lock-step runner
# --------------------------------------------------------------------------


class Mismatch(AssertionError):
    pass


def _j(x) -> str:
    return json.dumps(x, sort_keys=True, default=lambda o: fmt_data(o) if isinstance(o, bytes) else repr(o))


def update_model(model: Model, op: Dict[str, Any], rec: Dict[str, Any]):
    res = rec.get("result")
    kind = op["op"]
    ok = isinstance(res, dict) and "ok" in res
    if kind == "create" and ok:
        v = res["ok"]
        path = v[0] if isinstance(v, list) else v
        if isinstance(path, str):
            owner = op["s"] if op["mode"].startswith("ephemeral") else None
            model.add(path, owner)
            if op["makepath"]:
                parts = path.split("/")
                for i in range(2, len(parts)):
                    pp = "/".join(parts[:i])
                    model.nodes.setdefault(pp, {"owner": None})
    elif kind == "create_special" and ok and isinstance(res["ok"], dict) and res["ok"].get("path"):
        model.add(res["ok"]["path"], None, container=op["sub"] == "container")
    elif kind == "delete" and ok:
        model.remove(op["path"])
    elif kind == "container_cycle" and isinstance(res, dict):
        if "ok" in res.get("container", {}):
            model.add(op["path"], None, container=True)
            if op["nested"] and "ok" in res.get("nested", {}):
                model.add(op["path"] + "/n", None, container=True)
    elif kind == "multi" and ok and isinstance(res["ok"], list) and not any(
            isinstance(x, dict) and "error" in x for x in res["ok"]):
        for sub, r in zip(op["subs"], res["ok"]):
            if sub["t"] == "create" and isinstance(r, str):
                model.add(r, op["s"] if sub["ephemeral"] else None)
            elif sub["t"] == "delete":
                model.remove(sub["path"])
    elif kind == "close_session":
        model.drop_owner(op["s"])
    for p, how in rec.get("reaped", []):
        if how == "gone":
            model.remove(p)
    if kind == "quota" and isinstance(res, dict):
        steps = res.get("steps", [])
        if op["sub"] == "set" and len(steps) >= 3 and "ok" in steps[-3]:
            model.quotas.add(op["path"])
            cur = ""
            for part in op["path"].split("/")[1:]:
                cur += "/" + part
                model.nodes.setdefault(cur, {"owner": None})
        elif op["sub"] == "delete" and steps and "ok" in steps[-1]:
            model.quotas.discard(op["path"])
        elif op["sub"] == "hit":
            base = op["path"].rstrip("/") + "/q"
            for st in steps:
                v = st.get("ok") if isinstance(st, dict) else None
                if isinstance(v, str) and v.startswith(base):
                    model.add(v)
    if kind == "snapshot":
        model.rebuild(res["tree"])
    if kind == "oversize" and ("readback" in res and "err" not in res["readback"]):
        model.add(op["path"])


def run_differential(seed: int, nops: int, against: str = "rzk", out_dir: Optional[Path] = None,
                     snapshot_every: int = 50, log=print) -> Dict[str, Any]:
    """Run the schedule for `seed` on a reference Apache ZooKeeper ("A") and
    on `against` ("B"). Raises Mismatch at the first difference."""
    gen = Generator(seed)
    A = Target("zookeeper", "A")
    B = Target(against, "B")
    transcripts: Dict[str, List[Any]] = {"A": [], "B": []}
    out_dir = Path(out_dir) if out_dir else h.WORK_ROOT / "differential"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {k: out_dir / ("seed%d-%s-%s.jsonl" % (seed, k, t.kind)) for k, t in (("A", A), ("B", B))}
    t0 = time.monotonic()
    compared = 0

    def emit(key, entry):
        transcripts[key].append(entry)

    def compare(i, op, ra, rb):
        if _j(ra) != _j(rb):
            ctx = transcripts["A"][-6:-1]
            raise Mismatch(
                "differential mismatch at op #%d (seed=%d)\nop: %s\nA (zookeeper): %s\nB (%s): %s\n"
                "previous ops:\n%s\ntranscripts: %s %s"
                % (i, seed, _j(op), _j(ra), against, _j(rb),
                   "\n".join(_j(e) for e in ctx), files["A"], files["B"])
            )

    try:
        A.start()
        B.start()
        ea, eb = Executor(A), Executor(B)
        sa = ea.open_sessions()
        sb = eb.open_sessions()
        emit("A", {"i": 0, "op": "open_sessions", "rec": sa})
        emit("B", {"i": 0, "op": "open_sessions", "rec": sb})
        compare(0, {"op": "open_sessions"}, sa, sb)
        for i in range(1, nops + 1):
            op = gen.next_op()
            if op["op"] != "snapshot" and snapshot_every and i % snapshot_every == 0:
                op = {"op": "snapshot"}
            ra = ea.run(op)
            rb = eb.run(op)
            for t in (A, B):
                if not t.server.is_running():
                    raise Mismatch("%s (%s) died during op #%d %s\n--- log tail ---\n%s"
                                   % (t.name, t.kind, i, _j(op), t.server.log_tail()))
            opj = json.loads(_j(op))
            emit("A", {"i": i, "op": opj, "rec": ra})
            emit("B", {"i": i, "op": opj, "rec": rb})
            compare(i, op, ra, rb)
            compared += 1
            update_model(gen.model, op, ra)
        # final state of the whole tree
        fa = {"tree": ea.snapshot()}
        fb = {"tree": eb.snapshot()}
        emit("A", {"i": nops + 1, "op": "final_snapshot", "rec": fa})
        emit("B", {"i": nops + 1, "op": "final_snapshot", "rec": fb})
        compare(nops + 1, {"op": "final_snapshot"}, fa, fb)
    finally:
        for k in ("A", "B"):
            with open(files[k], "w") as f:
                for e in transcripts[k]:
                    f.write(_j(e) + "\n")
        for t in (A, B):
            try:
                t.stop()
            except Exception:
                pass
    dt = time.monotonic() - t0
    assert _j(transcripts["A"]) == _j(transcripts["B"])
    summary = {"seed": seed, "ops": compared, "against": against, "seconds": round(dt, 1),
               "transcript": str(files["A"])}
    log("differential: seed=%d ops=%d against=%s compared OK (%.1fs)" % (seed, compared, against, dt))
    return summary


def main(argv=None):
    import faulthandler
    import signal as _signal
    faulthandler.register(_signal.SIGUSR1, all_threads=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, action="append", help="seed (repeatable)")
    ap.add_argument("--seeds", type=int, default=None, help="run seeds 1..N")
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--against", default=os.environ.get("DIFF_AGAINST", "rzk"), choices=["rzk", "zookeeper"])
    a = ap.parse_args(argv)
    seeds = a.seed or list(range(1, (a.seeds or 1) + 1))
    rc = 0
    for s in seeds:
        try:
            run_differential(s, a.ops, a.against)
        except Mismatch as e:
            print(e)
            rc = 1
    h.kill_all_started()
    return rc


if __name__ == "__main__":
    sys.exit(main())
