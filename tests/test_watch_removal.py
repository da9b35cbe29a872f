"""checkWatches (17) / removeWatches (18) with ZooKeeper 3.9's watcher types.

WatcherType Children=1, Data=2, Any=3 are compared side by side with Apache ZooKeeper 3.8
(raw frames, the same bytes to both). Persistent=4 and PersistentRecursive=5 are ZooKeeper
3.9's: 3.8 fails the request (its WatcherType.fromInt throws: MarshallingError), so rzk is
checked against what 3.9's source does (DataTree.containsWatcher / removeWatch,
WatchManager.removeWatcher with a mode): Persistent is found in the data table and removed
from both tables, PersistentRecursive found and removed in the data table; a one-time watch
is not a persistent one; Any removes every mode; an unknown type is MarshallingError.
"""

from __future__ import annotations

import pytest

import zkharness as h
from zkharness import OP, Jute, RawSession

NO_WATCHER = -121
MARSHALLING = -5


def add_watch(c, path, mode):
    return c.request(OP["addWatch"], Jute().string(path).int(mode).bytes())[2]


def watches(c, op, path, wtype):
    return c.request(OP[op], Jute().string(path).int(wtype).bytes())[2]


def events_after(c, action):
    """Run `action`, then a round trip; the watch events that arrived meanwhile."""
    c.events.clear()
    action()
    c.exists("/")
    return list(c.events)


def test_standard_types_side_by_side(new_server):
    got = {}
    for kind in ("zookeeper", "rzk"):
        s = new_server(kind)
        with RawSession(*s.address) as c:
            c.connect()
            c.create("/w")
            r = [watches(c, "checkWatches", "/w", 2)]
            c.get_data("/w", watch=True)
            r.append(watches(c, "checkWatches", "/w", 2))
            r.append(watches(c, "checkWatches", "/w", 1))
            r.append(watches(c, "checkWatches", "/w", 3))
            r.append(watches(c, "removeWatches", "/w", 1))
            r.append(watches(c, "removeWatches", "/w", 2))
            r.append(watches(c, "removeWatches", "/w", 2))
            r.append(watches(c, "checkWatches", "/w", 6))
            got[kind] = r
    assert got["rzk"] == got["zookeeper"]
    assert got["zookeeper"][:2] == [NO_WATCHER, 0] and got["zookeeper"][-1] == MARSHALLING


def test_zookeeper_3_8_refuses_the_3_9_types(new_server):
    s = new_server("zookeeper")
    with RawSession(*s.address) as c:
        c.connect()
        c.create("/w")
        assert add_watch(c, "/w", 0) == 0
        for op in ("checkWatches", "removeWatches"):
            for t in (4, 5):
                try:
                    err = watches(c, op, "/w", t)
                except h.ConnectionClosed:
                    err = "closed"
                assert err in (MARSHALLING, "closed"), (op, t, err)
                if err == "closed":
                    c.close()
                    c = RawSession(*s.address).connect()


def test_rzk_serves_persistent_and_recursive_removal_as_zookeeper_3_9(new_server):
    s = new_server("rzk")
    with RawSession(*s.address) as c, RawSession(*s.address) as other:
        c.connect()
        other.connect()
        for p in ("/p", "/r", "/a", "/o"):
            c.create(p)
        # Persistent on /p: found as Persistent, not as PersistentRecursive or Data.
        assert add_watch(c, "/p", 0) == 0
        assert watches(c, "checkWatches", "/p", 4) == 0
        assert watches(c, "checkWatches", "/p", 5) == NO_WATCHER
        # (Data=2 keeps ZooKeeper 3.8's meaning, compared above: any watch on the path.)
        assert watches(c, "removeWatches", "/p", 5) == NO_WATCHER
        assert watches(other, "removeWatches", "/p", 4) == NO_WATCHER  # another session's watch
        assert events_after(c, lambda: c.create("/p/c1")) != []
        assert watches(c, "removeWatches", "/p", 4) == 0
        assert watches(c, "checkWatches", "/p", 4) == NO_WATCHER
        assert watches(c, "removeWatches", "/p", 4) == NO_WATCHER
        # Gone from both tables: neither a child nor a data change reaches it.
        assert events_after(c, lambda: (c.create("/p/c2"), c.request(OP["setData"], Jute().string("/p").buffer(b"x").int(-1).bytes()))) == []

        # PersistentRecursive on /r.
        assert add_watch(c, "/r", 1) == 0
        assert watches(c, "checkWatches", "/r", 5) == 0
        assert watches(c, "checkWatches", "/r", 4) == NO_WATCHER
        assert watches(c, "removeWatches", "/r", 4) == NO_WATCHER
        assert events_after(c, lambda: c.create("/r/x")) != []
        assert watches(c, "removeWatches", "/r", 5) == 0
        assert watches(c, "checkWatches", "/r", 5) == NO_WATCHER
        assert events_after(c, lambda: c.create("/r/y")) == []

        # Any removes a persistent watch too.
        assert add_watch(c, "/a", 0) == 0
        assert watches(c, "removeWatches", "/a", 3) == 0
        assert watches(c, "checkWatches", "/a", 4) == NO_WATCHER
        assert events_after(c, lambda: c.create("/a/x")) == []

        # A one-time data watch is not a persistent one.
        c.get_data("/o", watch=True)
        assert watches(c, "checkWatches", "/o", 4) == NO_WATCHER
        assert watches(c, "removeWatches", "/o", 4) == NO_WATCHER
        assert watches(c, "checkWatches", "/o", 2) == 0

        # Out of range: ZooKeeper's WatcherType.fromInt throws.
        assert watches(c, "checkWatches", "/o", 0) == MARSHALLING
        assert watches(c, "removeWatches", "/o", 6) == MARSHALLING
