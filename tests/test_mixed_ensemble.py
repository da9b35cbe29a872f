"""Mixed ensembles: rzk and Apache ZooKeeper 3.8 members in one ensemble, real processes on
127.0.0.1 (zkensemble.py: every peer link through a proxy, every process stopped on exit).
The claim under test: an rzk server can replace an Apache ZooKeeper server in a running
ensemble, and the other way round.

* elections agree: 2 ZooKeeper + 1 rzk and 1 ZooKeeper + 2 rzk elect one leader (`srvr`
  Mode on every member), with an rzk leader over ZooKeeper followers and a ZooKeeper leader
  over rzk followers (the leader is killed with -9 to move leadership; the highest sid wins
  an election among equal histories, so an rzk member with the highest sid leads);
  kazoo writes through every member are read back (after a sync) on every member;
* rolling replacement: a 3-server ZooKeeper ensemble with data (snapshots and rolled logs)
  has one member at a time replaced by rzk on ZooKeeper's own dataDir, the leader last;
  after each step every acknowledged write is on every member and new writes work through
  the new member;
* catching up across kinds: a follower of the other kind than the leader comes back after a
  short absence (DIFF: its log gets the missed txns, no new snapshot) and after a long one
  (SNAP: a snapshot at the sync point, the missed txns never logged).

RZK_ENSEMBLE=0 skips the file (as test_ensemble.py's rzk half).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Dict, List, Sequence

import pytest

import zkharness as h
import zkensemble as ze
from peerproxy import ProxyHub

ZK, RZK = "zookeeper", "rzk"

pytestmark = [
    pytest.mark.skipif(os.environ.get("RZK_ENSEMBLE", "1") != "1", reason="RZK_ENSEMBLE=0"),
    pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed"),
    pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not found at %s" % h.rzk_binary()),
]


from test_ensemble import close, kazoo  # noqa: E402  (one kazoo session helper for the ensemble tests)


def kinds_str(ens: ze.Ensemble) -> str:
    return " ".join("s%d=%s" % (m.sid, m.kind) for m in ens.members)


def check_modes(ens: ze.Ensemble, members: Sequence[ze.Member] = None) -> ze.Member:
    """One leader among the running (or given) members, every other one a follower, as
    each member's own `srvr` says; returns the leader."""
    members = list(members) if members else ens.running()
    leader = ens.wait_for_leader(60, members=members)
    modes = ens.modes(members)
    assert sorted(modes.values()) == sorted(["leader"] + ["follower"] * (len(members) - 1)), (modes, kinds_str(ens))
    return leader


def write_through_each(ens: ze.Ensemble, tag: str, members: Sequence[ze.Member] = None) -> Dict[str, bytes]:
    """A kazoo client connected to one member only creates /mixed/<tag>-via-s<sid>; learners
    forward it to the leader. Returns path -> value of the acknowledged writes."""
    acked = {}
    for m in members or ens.running():
        zk = kazoo(m.hosts)
        try:
            zk.ensure_path("/mixed")
            p, v = "/mixed/%s-via-s%d" % (tag, m.sid), b"%s:%s" % (tag.encode(), m.kind.encode())
            zk.create(p, v)
            acked[p] = v
        finally:
            close(zk)
    return acked


def check_everywhere(ens: ze.Ensemble, acked: Dict[str, bytes], members: Sequence[ze.Member] = None) -> None:
    """Every acknowledged write, read from each member alone after a sync."""
    for m in members or ens.running():
        zk = kazoo(m.hosts)
        try:
            zk.sync("/")
            got = {}
            for p in acked:
                st = zk.exists(p)
                got[p] = zk.get(p)[0] if st else None
            missing = {p: (acked[p], got[p]) for p in acked if got[p] != acked[p]}
            assert not missing, "s%d (%s) lacks acknowledged writes (want, got): %s\n%s" % (
                m.sid, m.kind, dict(list(missing.items())[:10]), kinds_str(ens))
        finally:
            close(zk)


def assert_no_digest_mismatches(ens: ze.Ensemble) -> None:
    """Every running member applied every txn with the digest its leader logged for it
    (mntr `zk_digest_mismatches_count`; a ZooKeeper follower checks an rzk leader's
    TxnDigests against its own tree, and the other way round)."""
    for m in ens.running():
        rows = dict(l.split("\t", 1) for l in h.four_letter(m.client_port, "mntr", timeout=5.0).splitlines() if "\t" in l)
        assert rows.get("zk_digest_mismatches_count") == "0", "s%d (%s): %s digest mismatches" % (
            m.sid, m.kind, rows.get("zk_digest_mismatches_count"))


# ----------------------------------------------------------------------------------------
# elections and writes through every member
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kinds", [[ZK, ZK, RZK], [RZK, RZK, ZK]], ids=["zk-zk-rzk", "rzk-rzk-zk"])
def test_mixed_ensemble_elects_one_leader_and_replicates(kinds):
    """Leadership is moved with kill -9 until both an rzk and a ZooKeeper member have led
    with a member of the other kind following; after every election writes through every
    member are read back on every member."""
    with ze.Ensemble(kinds, 3, name="mixed-elect") as ens:
        acked = {}
        led = []  # (leader kind, follower kinds) of every leadership seen
        leader = check_modes(ens)
        for step in range(4):
            led.append((leader.kind, sorted(m.kind for m in ens.followers())))
            acked.update(write_through_each(ens, "e%d" % step))
            check_everywhere(ens, acked)
            if {k for k, _ in led} == {ZK, RZK} and step >= 1:
                break
            # move leadership: the old leader goes; the survivors elect; it comes back
            old = leader
            old.kill9()
            rest = [m for m in ens.members if m is not old]
            leader = check_modes(ens, rest)
            assert leader is not old
            acked.update(write_through_each(ens, "k%d" % step, rest))
            check_everywhere(ens, acked, rest)
            old.start()
            old.wait_serving()
            leader = check_modes(ens)
        kinds_led = {k for k, _ in led}
        assert kinds_led == {ZK, RZK}, "leaders seen: %s" % led
        # every leader of one kind had a follower of the other kind
        for k, fs in led:
            assert any(f != k for f in fs), led
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        assert_no_digest_mismatches(ens)


# ----------------------------------------------------------------------------------------
# rolling replacement of ZooKeeper by rzk on ZooKeeper's data
# ----------------------------------------------------------------------------------------


def test_rolling_replacement_of_zookeeper_by_rzk():
    # snapCount low: ZooKeeper's dataDirs hold several snapshots and rolled logs, which rzk
    # must take over as they are
    with ze.Ensemble(ZK, 3, name="mixed-rolling", extra_cfg={"snapCount": 40}) as ens:
        leader = check_modes(ens)
        zk = kazoo(ens.hosts)
        acked = {}
        try:
            zk.ensure_path("/mixed")
            for i in range(120):
                p, v = "/mixed/zk-%03d" % i, b"zk-%d" % i
                zk.create(p, v)
                acked[p] = v
            zk.set("/mixed/zk-000", b"changed")
            acked["/mixed/zk-000"] = b"changed"
        finally:
            close(zk)
        acked.update(write_through_each(ens, "zk"))
        check_everywhere(ens, acked)
        # a client session that lives through every replacement (ZooKeeper's session
        # table, carried by its files, and the leaders' session tracking, across kinds),
        # and a writer failing over between members the whole time
        holder = kazoo(ens.hosts, timeout=10.0)
        holder.create("/mixed/held", b"h", ephemeral=True)
        owner = holder.client_id[0]
        hist: List[ze.Op] = []
        writer = ze.FailoverClient("writer", ens.members, hist)
        stop = threading.Event()

        def write():
            n = 0
            while not stop.is_set():
                n += 1
                writer.create("/mixed/load-%06d" % n, b"l%d" % n, connect_timeout=60)
                time.sleep(0.02)

        t = threading.Thread(target=write, daemon=True)
        t.start()
        try:
            # followers first, the leader last; SIGTERM for the first, kill -9 for the others
            order = ens.followers() + [leader]
            for n, m in enumerate(order):
                assert m.kind == ZK
                zxids = (m.txn_zxids(), m.snapshot_zxids())
                if n == 0:
                    m.stop()
                else:
                    m.kill9()
                m.kind = RZK  # same workdir, dataDir, myid, ports: only the program changes
                m.start()
                m.wait_serving()
                check_modes(ens)
                assert zxids[0] or zxids[1], "s%d had no ZooKeeper data to take over" % m.sid
                check_everywhere(ens, acked)
                acked.update(write_through_each(ens, "r%d" % n))
                check_everywhere(ens, acked)
                holder.sync("/")
                st = holder.exists("/mixed/held")
                assert st is not None and st.ephemeralOwner == owner, "the held session's ephemeral went"
            assert [m.kind for m in ens.members] == [RZK] * 3
            # and back: ZooKeeper takes over the dataDir rzk wrote (its epoch files, logs and
            # snapshots) from the current leader
            back = ens.leader()
            back.kill9()
            back.kind = ZK
            back.start()
            back.wait_serving()
            check_modes(ens)
            check_everywhere(ens, acked)
            acked.update(write_through_each(ens, "back"))
            check_everywhere(ens, acked)
            holder.sync("/")
            assert holder.exists("/mixed/held").ephemeralOwner == owner
        finally:
            stop.set()
            t.join(90)
            writer.close()
        ok = [o for o in hist if o["kind"] == "create" and o["status"] == "ok"]
        assert len(ok) >= 20, "the writer got only %d writes through" % len(ok)
        acked.update({o["path"]: o["value"] for o in ok})
        check_everywhere(ens, acked)
        close(holder)
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        assert_no_digest_mismatches(ens)


# ----------------------------------------------------------------------------------------
# a follower of the other kind catches up: DIFF, then SNAP
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kinds,leader_kind", [([RZK, ZK, ZK], ZK), ([ZK, RZK, RZK], RZK)],
                         ids=["rzk-follows-zk", "zk-follows-rzk"])
def test_follower_of_the_other_kind_catches_up_by_diff_and_snap(kinds, leader_kind):
    # s1 (the lowest sid, alone of its kind) cannot win an election among equal histories.
    # snapCount low: the leader snapshots and rolls its log as it goes, so after many large
    # writes its log is far larger than its snapshot and SNAP is what a ZooKeeper leader
    # must choose (with one big log and a tiny snapshot.0 it sends a DIFF from its txn log).
    with ze.Ensemble(kinds, 3, name="mixed-catchup", extra_cfg={"snapCount": 100}) as ens:
        leader = check_modes(ens)
        assert leader.kind == leader_kind, kinds_str(ens)
        f = ens[1]
        assert f.mode() == "follower"
        zk = kazoo(leader.hosts)
        try:
            zk.create("/diff", b"")
            for i in range(20):
                zk.create("/diff/before-%d" % i, b"x")
            last = ens.wait_converged()
            h.wait_until(lambda: last in f.txn_zxids(), 10, what="the follower's log to hold its last zxid")

            # DIFF: a few missed txns
            f.kill9()
            missed = [zk.create("/diff/missed-%d" % i, b"y" * 100, include_data=True)[1].czxid for i in range(50)]
            f.start()
            f.wait_serving()
            check_modes(ens)
            ens.wait_converged()
            h.wait_until(lambda: set(missed) <= set(f.txn_zxids()), 20,
                         what="the follower's log to hold every txn it missed (DIFF)")
            # (no check for "no new snapshot": with snapCount 100 the follower may roll its
            # own snapshot while logging the DIFF; a SNAP never puts the missed txns in its log)
            if f.kind == ZK:
                assert "Getting a diff from the leader" in f.log_text()
            ze.assert_same_trees(ens.members)

            # SNAP: more txns than a leader keeps for DIFF (500), a log far larger than
            # the snapshot
            f.kill9()
            for k in range(4):
                zk.create("/snap/k%d" % k, b"", makepath=True)
            value = b"v" * 2048
            missed = []
            for batch in range(15):
                results = [zk.set_async("/snap/k%d" % (i % 4), value + b"%d" % batch) for i in range(100)]
                missed += [r.get(timeout=60).mzxid for r in results]
            last = max(missed)
            f.start()
            f.wait_serving()
            check_modes(ens)
            ens.wait_converged()
            h.wait_until(lambda: any(z >= last for z in f.snapshot_zxids()), 20,
                         what="a snapshot at the sync point (SNAP) on the follower")
            logged = set(f.txn_zxids())
            assert not logged & set(missed), "the follower logged %d missed txns: a DIFF, not a SNAP" % len(logged & set(missed))
            if f.kind == ZK:
                assert "Getting a snapshot from leader" in f.log_text()
            # and it serves writes afterwards, through itself
            acked = write_through_each(ens, "after-snap")
            check_everywhere(ens, acked)
        finally:
            close(zk)
        ze.assert_same_trees(ens.members)
        assert_no_digest_mismatches(ens)


# ----------------------------------------------------------------------------------------
# sessions and requests across kinds
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kinds,leader_kind", [([ZK, RZK, RZK], RZK), ([RZK, ZK, ZK], ZK)],
                         ids=["rzk-leads", "zk-leads"])
def test_sessions_and_requests_across_kinds(kinds, leader_kind):
    """What a follower forwards and what the leader decides for it, across kinds: sessions
    kept alive by a follower's PING replies, moved between members of both kinds, expired
    by the leader; ephemerals; digest auth carried in REQUEST authinfo; multi; sync; a
    large value."""
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_digest_acl

    with ze.Ensemble(kinds, 3, name="mixed-sessions") as ens:
        leader = check_modes(ens)
        assert leader.kind == leader_kind, kinds_str(ens)
        other = [m for m in ens.followers() if m.kind != leader.kind]
        same = [m for m in ens.followers() if m.kind == leader.kind]
        assert other and same, kinds_str(ens)
        f_other, f_same = other[0], same[0]
        watcher = kazoo(f_same.hosts)
        try:
            watcher.ensure_path("/s")
            # a session on the follower of the other kind, short timeout, otherwise idle:
            # only the follower's PING replies keep it alive on the leader. Its connection
            # passes a proxy, which is re-pointed to move the session between members.
            hub = ProxyHub()
            link = hub.add("client", f_other.address)
            c = kazoo("127.0.0.1:%d" % link.port, timeout=3.0)
            states = []
            c.add_listener(lambda st: states.append(st))
            try:
                c.create("/s/eph", b"mine", ephemeral=True)
                owner = watcher.exists("/s/eph").ephemeralOwner
                assert owner == c.client_id[0]
                time.sleep(7)
                watcher.sync("/s")
                st = watcher.exists("/s/eph")
                assert st is not None and st.ephemeralOwner == owner, "the session expired while its client was connected"
                # the session moves to the leader and to the other follower, keeping its
                # ephemeral (on a learner: REVALIDATE to the leader)
                for target in (leader, f_same, f_other):
                    link.retarget(target.address)  # resets the connection; kazoo reconnects
                    h.wait_until(lambda: link.connections() == 1 and c.connected, 30, what="the session on s%d" % target.sid)
                    c.sync("/s")
                    assert c.client_id[0] == owner
                    assert c.exists("/s/eph").ephemeralOwner == owner
                    c.set("/s/eph", b"via-s%d" % target.sid)
                    watcher.sync("/s")
                    assert watcher.get("/s/eph")[0] == b"via-s%d" % target.sid
                assert "LOST" not in [str(x) for x in states], states
            finally:
                close(c)  # closeSession: the ephemeral goes at once
                hub.close()
            for m in ens.members:
                zk = kazoo(m.hosts)
                try:
                    zk.sync("/s")
                    assert zk.exists("/s/eph") is None, "s%d (%s) still has the closed session's ephemeral" % (m.sid, m.kind)
                finally:
                    close(zk)

            # expiry: a raw client creates an ephemeral through the other-kind follower and
            # goes silent; the leader expires it and every member drops the node
            raw = h.RawSession("127.0.0.1", f_other.client_port, timeout=5)
            try:
                raw.connect(2000)
                body = h.Jute().string("/s/expiring").buffer(b"x").acls(h.OPEN_ACL).int(1).bytes()
                _, _, err, _ = raw.request(h.OP["create"], body)
                assert err == 0
                watcher.sync("/s")  # the watcher reads another member: catch it up first
                assert watcher.exists("/s/expiring") is not None
                raw.sock.close()  # no closeSession
            finally:
                raw.close()
            h.wait_until(lambda: watcher.exists("/s/expiring") is None, 20, what="the silent session to expire")
            for m in ens.members:
                zk = kazoo(m.hosts)
                try:
                    zk.sync("/s")
                    assert zk.exists("/s/expiring") is None, "s%d (%s)" % (m.sid, m.kind)
                finally:
                    close(zk)

            # digest auth travels with the forwarded request (REQUEST authinfo)
            acl = [make_digest_acl("alice", "secret", all=True)]
            a = kazoo(f_other.hosts, auth_data=[("digest", "alice:secret")])
            try:
                a.create("/s/private", b"alice's", acl=acl)
                a.create("/s/creator", b"c", acl=[make_digest_acl("alice", "secret", all=True)])
                a.set("/s/private", b"alice's 2")
            finally:
                close(a)
            for m in ens.members:
                zk = kazoo(m.hosts, auth_data=[("digest", "alice:secret")])
                anon = kazoo(m.hosts)
                try:
                    zk.sync("/s")
                    assert zk.get("/s/private")[0] == b"alice's 2"
                    with pytest.raises(NoAuthError):
                        anon.get("/s/private")
                finally:
                    close(zk)
                    close(anon)
            a = kazoo(f_same.hosts, auth_data=[("digest", "alice:secret")])
            try:
                a.delete("/s/private")  # (assert_same_trees reads without auth)
                a.delete("/s/creator")
            finally:
                close(a)

            # multi through the other-kind follower, one that fails as a whole
            m_c = kazoo(f_other.hosts)
            try:
                t = m_c.transaction()
                t.create("/s/multi", b"m")
                t.create("/s/multi/a", b"a")
                t.set_data("/s/multi", b"m2")
                assert all(not isinstance(r, Exception) for r in t.commit())
                t = m_c.transaction()
                t.create("/s/multi/b", b"b")
                t.delete("/s/does-not-exist")
                res = t.commit()
                assert any(isinstance(r, Exception) for r in res), res
                # a value near the 1 MB limit
                big = bytes(range(256)) * 4000
                m_c.create("/s/big", big)
            finally:
                close(m_c)
            for m in ens.members:
                zk = kazoo(m.hosts)
                try:
                    zk.sync("/s")
                    assert zk.get("/s/multi")[0] == b"m2"
                    assert sorted(zk.get_children("/s/multi")) == ["a"]
                    assert zk.get("/s/big")[0] == big
                finally:
                    close(zk)
        finally:
            close(watcher)
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        assert_no_digest_mismatches(ens)


# ----------------------------------------------------------------------------------------
# an observer of the other kind
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kinds", [[ZK, ZK, RZK], [RZK, RZK, ZK]], ids=["rzk-observes-zk", "zk-observes-rzk"])
def test_observer_of_the_other_kind(kinds):
    """Two voters of one kind and an observer (s3) of the other: OBSERVERINFO, INFORM, the
    observer's forwarded writes and syncs; it catches up after a restart and never votes."""
    with ze.Ensemble(kinds, 3, observers=[3], name="mixed-observer") as ens:
        obs = ens.member(3)
        leader = ens.wait_for_leader()
        assert obs.mode() == "observer" and leader.kind != obs.kind, ens.modes()
        acked = write_through_each(ens, "o0")
        check_everywhere(ens, acked)
        obs.kill9()
        acked.update(write_through_each(ens, "o1", ens.voters()))
        obs.start()
        assert obs.wait_serving() == "observer"
        ens.wait_converged()
        acked.update(write_through_each(ens, "o2"))
        check_everywhere(ens, acked)
        # one voter plus the observer make no quorum
        follower = [m for m in ens.voters() if m is not leader][0]
        follower.kill9()
        h.wait_until(lambda: "leader" not in ens.modes().values(), 20, what="the lone voter to stop leading")
        time.sleep(1.5)
        assert "leader" not in ens.modes().values(), ens.modes()
        follower.start()
        ens.wait_for_leader(60)
        assert obs.mode() == "observer"
        acked.update(write_through_each(ens, "o3"))
        check_everywhere(ens, acked)
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        assert_no_digest_mismatches(ens)


# ----------------------------------------------------------------------------------------
# TRUNC across kinds
# ----------------------------------------------------------------------------------------


def lead_with(ens: ze.Ensemble, kind: str) -> ze.Member:
    """Move leadership (kill -9 the leader, restart it as a follower) until a member of
    `kind` leads; bounded."""
    leader = check_modes(ens)
    for _ in range(3):
        if leader.kind == kind:
            return leader
        leader.kill9()
        ens.wait_for_leader(60, members=[m for m in ens.members if m is not leader])
        leader.start()
        leader.wait_serving()
        leader = check_modes(ens)
    assert leader.kind == kind, kinds_str(ens)
    return leader


@pytest.mark.parametrize("kinds,old_kind", [([ZK, ZK, RZK], RZK), ([RZK, RZK, ZK], ZK)],
                         ids=["zk-truncs-rzk", "rzk-truncs-zk"])
def test_old_leader_of_the_other_kind_is_truncated(kinds, old_kind):
    """A leader logs a proposal no follower receives (its bytes held in the proxies), is
    cut off; the other two elect a leader of the other kind; healed before anything new
    commits, the old leader's log is ahead: TRUNC, and the proposal is gone from its log
    and from every tree."""
    with ze.Ensemble(kinds, 3, name="mixed-trunc") as ens:
        old = lead_with(ens, old_kind)
        f1, f2 = ens.followers()
        zk = kazoo(old.hosts)
        zk.ensure_path("/trunc")
        for i in range(5):
            zk.create("/trunc/before-%d" % i)
        close(zk)
        z0 = ens.wait_converged()
        proposal, victim = ens.log_unreplicated_proposal(old, z0)
        ens.isolate(old.sid)
        for f in (f1, f2):
            ens.unblock(old.sid, f.sid)
        new = ens.wait_for_leader(60, members=[f1, f2])
        victim.close()
        assert new.kind != old.kind, kinds_str(ens)
        assert proposal in old.txn_zxids()
        ens.heal()
        ens.wait_for_leader(60)
        assert old.mode() == "follower" and ens.leader() is new
        zk = kazoo(ens.hosts)
        after = [zk.create("/trunc/healed-%d" % i, include_data=True)[1].czxid for i in range(3)]
        close(zk)
        assert min(after) >> 32 > proposal >> 32
        ens.wait_converged()
        h.wait_until(lambda: proposal not in old.txn_zxids(), 20,
                     what="the proposal to leave the old leader's log (TRUNC)")
        if old.kind == ZK:
            assert "Truncating log to get in sync with the leader" in old.log_text()
        tree = ze.assert_same_trees(ens.members, "/trunc")
        assert "/trunc/victim" not in tree
        # and it stays dropped when the old leader restarts from its own files
        old.kill9()
        old.start()
        old.wait_serving()
        ens.wait_converged()
        tree = ze.assert_same_trees(ens.members, "/trunc")
        assert "/trunc/victim" not in tree and all("/trunc/healed-%d" % i in tree for i in range(3))
        assert_no_digest_mismatches(ens)


# ----------------------------------------------------------------------------------------
# containers and TTL nodes: created through a follower, removed by the leader
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kinds,leader_kind", [([ZK, RZK, RZK], RZK), ([RZK, ZK, ZK], ZK)],
                         ids=["rzk-leads", "zk-leads"])
def test_containers_and_ttl_nodes_across_kinds(kinds, leader_kind, monkeypatch):
    """createContainer and createTTL forwarded by a follower of the other kind; the leader's
    container manager deletes the emptied container and the expired TTL node (deleteContainer
    / delete txns) and every member applies that."""
    monkeypatch.setattr(ze, "ZK_ENSEMBLE_JVM", ze.ZK_ENSEMBLE_JVM + [
        "-Dzookeeper.extendedTypesEnabled=true", "-Dznode.container.checkIntervalMs=%d" % h.CONTAINER_CHECK_INTERVAL_MS])
    cfg = {"extendedTypesEnabled": "true", "znode.container.checkIntervalMs": h.CONTAINER_CHECK_INTERVAL_MS}
    with ze.Ensemble(kinds, 3, name="mixed-containers", extra_cfg=cfg) as ens:
        leader = check_modes(ens)
        assert leader.kind == leader_kind, kinds_str(ens)
        f = [m for m in ens.followers() if m.kind != leader.kind][0]
        raw = h.RawSession(*f.address)
        try:
            raw.connect(10000)
            assert raw.create("/box", b"c", flags=4, opcode=h.OP["createContainer"])[2] == 0
            assert raw.create("/box/item", b"i")[2] == 0
            assert raw.create("/ttl", b"t", flags=5, opcode=h.OP["createTTL"], ttl=500)[2] == 0
            assert raw.create("/kept", b"k")[2] == 0
            assert raw.request(h.OP["delete"], h.Jute().string("/box/item").int(-1).bytes())[2] == 0
        finally:
            raw.close_session()
            raw.close()
        for m in ens.members:
            zk = kazoo(m.hosts)
            try:
                h.wait_until(lambda: (zk.sync("/"), zk.exists("/box") is None and zk.exists("/ttl") is None)[1], 20,
                             what="s%d (%s) to lose the empty container and the expired TTL node" % (m.sid, m.kind))
                assert zk.get("/kept")[0] == b"k"
            finally:
                close(zk)
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        assert_no_digest_mismatches(ens)
