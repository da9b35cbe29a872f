"""A history checker for real multi-process runs: ZooKeeper's guarantees, checked from what
clients saw.

Input: the operations of every client (`zkensemble.Op` dicts: client, session, kind, path,
value, start, end, status ok|fail|unknown, zxid = the reply header's zxid, and for replies
with a Stat: czxid, mzxid, version), and optionally the final tree (after every fault
healed and every member converged). Values written must be unique per path (the
workloads write "client-n").

What a ZooKeeper ensemble promises, and how it is checked here:

* Writes are linearizable. Every write gets a zxid; the zxid order is the total order.
  - acknowledged writes have distinct zxids;
  - real time: a write acknowledged before another started has the smaller zxid;
  - each write's reply matches the sequential register in zxid order: the versions of
    a path's acknowledged setData grow with their zxids, and a jump of k needs k-1
    writes whose outcome is unknown (the client lost the connection) on that path.
* No acknowledged write is lost: every acknowledged create is in the final tree with its
  czxid; a path's final version and mzxid are at least its last acknowledged set's, and
  if the final mzxid is an acknowledged set's zxid, the final value is that set's value.
  A write that failed with an error reply never shows up in any read or the final tree.
* Reads are sequentially consistent, per session (ZooKeeper's "single system image"):
  - the reply zxids a session sees never go back, across reconnects to other servers;
  - a read reflects the server's state at its reply zxid Z: it returns the value of the
    write with the read's mzxid (which is <= Z), and no acknowledged write to that path
    has a zxid in (mzxid, Z];
  - a `sync` then read on the same connection (kind sync_get) is linearizable: it sees
    every write acknowledged before the sync began.

`check()` returns a list of violations (empty = the history is consistent); each says
which operations are involved. It is O(n log n) plus the per-path work.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Tuple

WRITE_KINDS = ("create", "set")
READ_KINDS = ("get", "sync_get")


def _z(o) -> int:
    """The zxid a successful write was given (from its Stat)."""
    return o["czxid"] if o["kind"] == "create" else o["mzxid"]


def _fmt(o) -> str:
    z = o.get("zxid")
    return "%s#%s %s %s %r %s zxid=%s [%.3f,%.3f]" % (
        o.get("client"), o.get("session") and hex(o["session"]), o.get("kind"), o.get("path"),
        o.get("value"), o.get("status"), hex(z) if isinstance(z, int) else z,
        o.get("start") or 0.0, o.get("end") or 0.0)


def check(history: Iterable[dict], final: Optional[Dict[str, Optional[tuple]]] = None,
          initial: Optional[Dict[str, Tuple[bytes, int, int]]] = None, limit: int = 20) -> List[str]:
    """Violations of ZooKeeper's guarantees in `history` (see the module doc).

    final:   path -> (value, version, mzxid, czxid), or None if the path does not exist;
             paths not in it are not checked against the end state.
    initial: path -> (value, version, mzxid) for paths that existed before the history.
    """
    ops = [o for o in history if o.get("start") is not None]
    initial = initial or {}
    bad: List[str] = []

    def fail(msg: str) -> None:
        if len(bad) < limit:
            bad.append(msg)

    writes_ok = [o for o in ops if o["kind"] in WRITE_KINDS and o["status"] == "ok"]

    # -- writes: distinct zxids ------------------------------------------------------------
    by_zxid: Dict[int, dict] = {}
    for w in writes_ok:
        z = _z(w)
        if z in by_zxid:
            fail("two acknowledged writes got zxid 0x%x: %s / %s" % (z, _fmt(by_zxid[z]), _fmt(w)))
        by_zxid[z] = w

    # -- writes: real-time order agrees with zxid order ------------------------------------
    by_end = sorted(writes_ok, key=lambda o: o["end"])
    ends = [o["end"] for o in by_end]
    prefix_max: List[Tuple[int, dict]] = []  # max zxid among by_end[:i+1]
    best: Optional[Tuple[int, dict]] = None
    for o in by_end:
        if best is None or _z(o) > best[0]:
            best = (_z(o), o)
        prefix_max.append(best)
    for b in writes_ok:
        i = bisect.bisect_left(ends, b["start"])  # writes that ended strictly before b started
        if i > 0:
            zmax, a = prefix_max[i - 1]
            if zmax > _z(b):
                fail("real-time order broken: %s was acknowledged before %s started, yet has the larger zxid"
                     % (_fmt(a), _fmt(b)))

    # -- per path: the register's versions ---------------------------------------------
    per_path: Dict[str, List[dict]] = defaultdict(list)
    unknown_sets: Dict[str, int] = defaultdict(int)
    for o in ops:
        if o["kind"] == "set":
            if o["status"] == "ok":
                per_path[o["path"]].append(o)
            elif o["status"] == "unknown":
                unknown_sets[o["path"]] += 1
    for path, ws in per_path.items():
        ws.sort(key=_z)
        prev_v = initial.get(path, (None, None, None))[1]
        for a, b in zip([None] + ws, ws):
            va = a["version"] if a is not None else prev_v
            if va is None:
                continue
            if b["version"] <= va:
                fail("versions of %s do not grow with zxids: %s after %s" % (
                    path, _fmt(b) + " v%d" % b["version"], (_fmt(a) + " v%d" % va) if a else "v%d" % va))
            elif b["version"] - va - 1 > unknown_sets[path]:
                fail("%s went from version %d to %d (%s) with only %d writes of unknown outcome on it: "
                     "an acknowledged write is missing from the order" % (
                         path, va, b["version"], _fmt(b), unknown_sets[path]))

    # -- values: which write wrote what --------------------------------------------------
    writer: Dict[Tuple[str, bytes], dict] = {}
    for o in ops:
        if o["kind"] in WRITE_KINDS and o.get("value") is not None:
            writer[(o["path"], o["value"])] = o
    ok_zxids_by_path: Dict[str, List[int]] = defaultdict(list)
    for w in writes_ok:
        ok_zxids_by_path[w["path"]].append(_z(w))
    for zs in ok_zxids_by_path.values():
        zs.sort()
    learned: Dict[Tuple[str, bytes], int] = {}  # unknown writes' zxids, as reads reveal them

    def explain_value(o, value, mzxid, what) -> None:
        path = o["path"]
        w = writer.get((path, value))
        if w is None:
            iv = initial.get(path)
            if iv is None or iv[0] != value or iv[2] != mzxid:
                fail("%s returned %r (mzxid 0x%x), which no write in the history wrote" % (what, value, mzxid))
            return
        if w["status"] == "fail":
            fail("%s returned %r, written by a write that failed: %s" % (what, value, _fmt(w)))
        elif w["status"] == "ok":
            if _z(w) != mzxid:
                fail("%s returned %r with mzxid 0x%x, but its write got zxid 0x%x: %s" % (
                    what, value, mzxid, _z(w), _fmt(w)))
        else:
            seen = learned.setdefault((path, value), mzxid)
            if seen != mzxid:
                fail("%s returned %r with mzxid 0x%x; elsewhere it had mzxid 0x%x" % (what, value, mzxid, seen))

    # -- reads ---------------------------------------------------------------------------
    for r in ops:
        if r["kind"] not in READ_KINDS or r["status"] != "ok":
            continue
        path, Z, m = r["path"], r["zxid"], r["mzxid"]
        what = _fmt(r)
        if m > Z:
            fail("%s: mzxid 0x%x is above the reply zxid" % (what, m))
        explain_value(r, r.get("value"), m, what)
        zs = ok_zxids_by_path.get(path, [])
        i = bisect.bisect_right(zs, m)
        if i < len(zs) and zs[i] <= Z:
            fail("%s is stale for its own zxid: the acknowledged write 0x%x (%s) lies between its mzxid 0x%x and 0x%x"
                 % (what, zs[i], _fmt(by_zxid[zs[i]]), m, Z))
        if r["kind"] == "sync_get":
            for w in writes_ok:
                if w["path"] == path and w["end"] < r["start"] and _z(w) > m:
                    fail("%s (sync then read) missed %s, acknowledged before the sync began" % (what, _fmt(w)))
                    break

    # -- sessions: reply zxids never go back --------------------------------------------
    per_session: Dict[Tuple[str, int], List[dict]] = defaultdict(list)
    for o in ops:
        if o.get("session") and o.get("status") in ("ok", "fail") and isinstance(o.get("zxid"), int) and o["zxid"] > 0:
            per_session[(o["client"], o["session"])].append(o)
    for key, os_ in per_session.items():
        os_.sort(key=lambda o: o["start"])
        hi: Optional[dict] = None
        for o in os_:
            if hi is not None and o["zxid"] < hi["zxid"]:
                fail("session %s went back in time: %s after %s" % (hex(key[1]), _fmt(o), _fmt(hi)))
            if hi is None or o["zxid"] > hi["zxid"]:
                hi = o

    # -- the end state -----------------------------------------------------------------
    if final is not None:
        for w in writes_ok:
            path = w["path"]
            if path not in final:
                continue
            f = final[path]
            if w["kind"] == "create":
                if f is None:
                    fail("acknowledged create lost: %s is not in the final tree" % _fmt(w))
                elif f[3] != w["czxid"]:
                    fail("acknowledged create %s: the final node has czxid 0x%x" % (_fmt(w), f[3]))
        for path, ws in per_path.items():
            if path not in final:
                continue
            f = final[path]
            last = ws[-1]
            if f is None:
                fail("%s is gone from the final tree; last acknowledged set %s" % (path, _fmt(last)))
                continue
            value, version, mzxid = f[0], f[1], f[2]
            if mzxid < _z(last) or version < last["version"]:
                fail("acknowledged set lost: final %s is v%d mzxid 0x%x, but %s was acknowledged as v%d" % (
                    path, version, mzxid, _fmt(last), last["version"]))
            if mzxid in by_zxid and by_zxid[mzxid]["path"] == path and by_zxid[mzxid]["value"] != value:
                fail("final %s holds %r, but its mzxid 0x%x belongs to %s" % (path, value, mzxid, _fmt(by_zxid[mzxid])))
            if mzxid not in by_zxid:
                explain_value({"path": path}, value, mzxid, "the final tree at %s" % path)
        for o in ops:
            if o["kind"] == "create" and o["status"] == "fail":
                f = final.get(o["path"], "absent")
                if f not in ("absent", None) and writer.get((o["path"], f[0])) is o:
                    fail("a create that failed is in the final tree: %s" % _fmt(o))
    return bad


def summary(history: Iterable[dict]) -> str:
    """One line: counts per kind and status."""
    c: Dict[str, int] = defaultdict(int)
    for o in history:
        c["%s.%s" % (o.get("kind"), o.get("status"))] += 1
    return " ".join("%s=%d" % kv for kv in sorted(c.items()))
