"""The history checker (history.py) itself: it passes consistent histories and reports each
kind of violation it claims to detect. Pure Python, no servers (well under a second)."""

from __future__ import annotations

import history


def op(client, kind, path, value=None, start=0.0, end=1.0, status="ok", zxid=None, version=None,
       mzxid=None, czxid=None, session=1):
    o = dict(client=client, session=session, kind=kind, path=path, value=value, start=start, end=end,
             status=status)
    if status in ("ok", "fail"):
        o["zxid"] = zxid
    if status == "ok" and kind != "sync":
        o["mzxid"] = mzxid if mzxid is not None else zxid
        o["czxid"] = czxid if czxid is not None else (zxid if kind == "create" else 1)
        o["version"] = version if version is not None else 0
    return o


INIT = {"/r": (b"", 0, 1)}


def good_history():
    return [
        op("a", "set", "/r", b"a1", 0.0, 1.0, zxid=10, version=1, session=1),
        op("b", "set", "/r", b"b1", 0.5, 1.5, zxid=11, version=2, session=2),
        op("a", "get", "/r", b"b1", 1.6, 1.7, zxid=11, mzxid=11, version=2, session=1),
        op("b", "get", "/r", b"a1", 1.55, 1.6, zxid=10, mzxid=10, version=1, session=3),  # stale but consistent
        op("c", "create", "/c1", b"c1", 0.0, 0.2, zxid=9, session=4),
        op("c", "set", "/r", b"c2", 2.0, 2.1, status="unknown", session=4),
        op("a", "sync_get", "/r", b"c2", 3.0, 3.1, zxid=12, mzxid=12, version=3, session=1),
    ]


def test_consistent_history_passes():
    final = {"/r": (b"c2", 3, 12, 1), "/c1": (b"c1", 0, 9, 9)}
    assert history.check(good_history(), final, INIT) == []


def test_duplicate_zxid():
    h = good_history() + [op("d", "set", "/r", b"d1", 5, 6, zxid=11, version=4, session=5)]
    assert any("two acknowledged writes got zxid 0xb" in v for v in history.check(h, None, INIT))


def test_real_time_violation():
    h = [op("a", "set", "/r", b"a1", 0.0, 1.0, zxid=20, version=2),
         op("b", "set", "/r", b"b1", 2.0, 3.0, zxid=15, version=1, session=2)]
    v = history.check(h, None, INIT)
    assert any("real-time order broken" in x for x in v), v


def test_lost_write_in_the_version_order():
    h = [op("a", "set", "/r", b"a1", 0, 1, zxid=10, version=1),
         op("a", "set", "/r", b"a2", 2, 3, zxid=12, version=3)]
    v = history.check(h, None, INIT)
    assert any("an acknowledged write is missing" in x for x in v), v
    # ... unless a write of unknown outcome explains the gap
    h.append(op("b", "set", "/r", b"b?", 1, 2, status="unknown", session=2))
    assert history.check(h, None, INIT) == []


def test_stale_read_for_its_own_zxid():
    h = [op("a", "set", "/r", b"a1", 0, 1, zxid=10, version=1),
         op("b", "get", "/r", b"", 2, 3, zxid=10, mzxid=1, version=0, session=2)]
    v = history.check(h, None, INIT)
    assert any("stale for its own zxid" in x for x in v), v


def test_session_goes_back_in_time():
    h = [op("a", "set", "/r", b"a1", 0, 1, zxid=10, version=1, session=7),
         op("a", "get", "/r", b"", 2, 3, zxid=5, mzxid=1, version=0, session=7)]
    v = history.check(h, None, INIT)
    assert any("went back in time" in x for x in v), v


def test_read_of_a_value_nobody_wrote_or_of_a_failed_write():
    h = [op("a", "get", "/r", b"ghost", 0, 1, zxid=3, mzxid=3, version=1)]
    assert any("no write in the history wrote" in x for x in history.check(h, None, INIT))
    h = [op("a", "set", "/r", b"x", 0, 1, status="fail", zxid=4),
         op("b", "get", "/r", b"x", 2, 3, zxid=4, mzxid=4, version=1, session=2)]
    assert any("a write that failed" in x for x in history.check(h, None, INIT))


def test_sync_read_must_see_earlier_writes():
    h = [op("a", "set", "/r", b"a1", 0, 1, zxid=10, version=1),
         op("b", "sync_get", "/r", b"", 2, 3, zxid=9, mzxid=1, version=0, session=2)]
    v = history.check(h, None, INIT)
    assert any("missed" in x for x in v), v


def test_final_state_loses_acknowledged_writes():
    h = [op("a", "create", "/c", b"c", 0, 1, zxid=5),
         op("a", "set", "/r", b"a1", 1, 2, zxid=6, version=1)]
    v = history.check(h, {"/c": None, "/r": (b"", 0, 1, 1)}, INIT)
    assert any("acknowledged create lost" in x for x in v), v
    assert any("acknowledged set lost" in x for x in v), v
    v = history.check(h, {"/c": (b"c", 0, 5, 4), "/r": (b"a1", 1, 6, 1)}, INIT)
    assert any("final node has czxid" in x for x in v), v
