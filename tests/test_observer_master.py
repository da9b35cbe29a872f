"""Observers syncing from a follower (`observerMasterPort`, ZooKeeper 3.6+), real processes
on loopback (zkensemble.py starts them; every process stopped by PID on exit).

Every member has `observerMasterPort` set to one port number, and its own loopback address
(127.0.0.<sid+1>, `member_hosts`), since each follower binds that number on its quorum
address and an observer tries every voter's quorum host at it, the leader's too (where
nothing listens: it then tries the next). See `rzk_zab::observer_master` for the protocol.

The cases: all-ZooKeeper (the reference), all-rzk, an rzk observer with three ZooKeeper
participants, and a ZooKeeper observer with three rzk participants (byte-for-byte wire
compatibility both ways). In each:

* the observer syncs from a follower, never the leader (`mntr`'s `zk_observer_master_id`);
  that follower's `mntr` counts it in `zk_synced_observers`, the leader's does not;
* the observer serves writes made through it (forwarded by its follower) and elsewhere
  (read after a sync);
* its follower killed (-9), it syncs from the other follower and keeps serving every write;
* itself killed and restarted, behind by a few writes, then by more than a follower keeps in
  memory, it syncs from that follower again (DIFF, SNAP) and its client's session comes back;
* the follower back, every member ends with the same tree and the history checks.

With `reconfigEnabled=true` too (`test_observer_masters_follow_reconfig`): the observer's
list of learner masters follows the voters of each new configuration (a follower removed,
then a new voter added), in the same four combinations.
"""

from __future__ import annotations

import os
from typing import Dict, List

import pytest

import zkharness as h
import zkensemble as ze
from test_ensemble import assert_history, close, final_state, kazoo

ZK, RZK = "zookeeper", "rzk"

pytestmark = pytest.mark.skipif(os.environ.get("RZK_ENSEMBLE", "1") != "1", reason="RZK_ENSEMBLE=0")


def mntr(m: ze.Member) -> Dict[str, str]:
    try:
        text = h.four_letter(m.client_port, "mntr")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def master_of(obs: ze.Member) -> int:
    v = mntr(obs).get("zk_observer_master_id")
    return int(v) if v not in (None, "") else -1


@pytest.mark.parametrize("kinds", [
    pytest.param([ZK, ZK, ZK, ZK], id="zookeeper"),
    pytest.param([RZK, RZK, RZK, RZK], id="rzk"),
    pytest.param([ZK, ZK, ZK, RZK], id="rzk-observer"),
    pytest.param([RZK, RZK, RZK, ZK], id="zookeeper-observer"),
])
def test_observer_syncs_from_a_follower_and_moves_on_when_it_dies(kinds):
    if ZK in kinds and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    if RZK in kinds and not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    port = ze._port_pool(1)[0]
    with ze.Ensemble(kinds, 4, observers=[4], proxied=False, member_hosts=True, name="obs-master",
                     extra_cfg={"observerMasterPort": port}) as ens:
        leader = ens.wait_for_leader(60)
        obs = ens.member(4)
        assert obs.wait_serving() == "observer"
        h.wait_until(lambda: master_of(obs) > 0, 30, 0.2, "the observer's learner master")
        first = master_of(obs)
        assert first != leader.sid and not ens.member(first).observer, (first, leader)
        h.wait_until(lambda: mntr(ens.member(first)).get("zk_synced_observers") == "1", 10, 0.2,
                     "s%d counting its observer" % first)
        assert mntr(leader).get("zk_synced_observers") == "0", mntr(leader)
        for m in ens.members:
            assert "observerMasterPort" not in h.four_letter(m.client_port, "conf"), m
        print("leader s%d; the observer syncs from s%d" % (leader.sid, first))

        hist: List = []
        via_obs = ze.FailoverClient("via-observer", [obs], hist)
        via_voters = ze.FailoverClient("via-voters", ens.voters(), hist)
        paths = ze.create_alternating(((via_obs, "o"), (via_voters, "v")), 5)
        via_obs.sync_read_each(paths)

        ens.member(first).kill9()
        other = [m.sid for m in ens.voters() if m.sid not in (first, leader.sid)][0]
        paths += via_voters.create_each(["/down%d" % i for i in range(3)], b"d")
        h.wait_until(lambda: master_of(obs) == other and obs.mode() == "observer", 60, 0.3,
                     "the observer syncing from s%d" % other)
        h.wait_until(lambda: mntr(ens.member(other)).get("zk_synced_observers") == "1", 10, 0.2,
                     "s%d counting its observer" % other)
        print("s%d killed; the observer syncs from s%d" % (first, other))
        via_obs.sync_read_each(paths)
        paths += via_obs.create_each(["/after%d" % i for i in range(3)], b"a")

        # The observer killed and restarted, behind by a few writes (DIFF from the window of
        # the follower it picks), then by more than a follower keeps in memory (500: SNAP,
        # or a DIFF from the log on disk); its client's session comes back through it (a
        # REVALIDATE relayed by the follower).
        for n, name in ((5, "few"), (520, "many")):
            obs.kill9()
            if n > 100:
                # pipelined through kazoo (not in the checked history; counted below)
                zk = kazoo(leader.hosts)
                try:
                    zk.create("/bulk", b"")
                    for r in [zk.create_async("/bulk/%d" % i, b"m") for i in range(n)]:
                        r.get(timeout=30)
                finally:
                    close(zk)
            else:
                paths += via_voters.create_each(["/%s%d" % (name, i) for i in range(n)], b"m")
            obs.start()
            assert obs.wait_serving() == "observer"
            h.wait_until(lambda: master_of(obs) == other, 60, 0.3,
                         "the observer syncing from s%d again" % other)
            via_obs.sync_read_each(paths[-10:] + paths[:3])
            assert via_obs.create("/obs-%s" % name, b"o").status == "ok"
            paths.append("/obs-%s" % name)
        zk = kazoo(obs.hosts)
        try:
            assert len(zk.get_children("/bulk")) == 520
        finally:
            close(zk)

        ens.member(first).start()
        assert ens.member(first).wait_serving() == "follower"
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        via_obs.close()
        via_voters.close()
        assert_history(hist, final_state(ens.leader(), paths))


@pytest.mark.parametrize("kinds", [
    pytest.param([ZK, ZK, ZK, ZK, ZK], id="zookeeper"),
    pytest.param([RZK, RZK, RZK, RZK, RZK], id="rzk"),
    pytest.param([ZK, ZK, ZK, RZK, ZK], id="rzk-observer"),
    pytest.param([RZK, RZK, RZK, ZK, RZK], id="zookeeper-observer"),
])
def test_observer_masters_follow_reconfig(kinds):
    """`observerMasterPort` with `reconfigEnabled=true` (ZooKeeper 3.8 rebuilds the observer's
    list of learner masters from the voters of every new configuration,
    `updateObserverMasterList`): voters s1-s3, observer s4 syncing from a follower F.
    `reconfig` removes F (a removed server keeps following as a non-voter, so the observer
    may stay on it) and the observer keeps serving reads that include later writes; F
    stopped, the observer moves to the one follower left. s5, never in the observer's
    start-up configuration, joins and `reconfig` adds it as a voter; the follower left
    stopped, the observer syncs from s5 (its rebuilt list) and still serves every write."""
    if ZK in kinds and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    if RZK in kinds and not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    from test_reconfig import dynamic_files, own_line

    def activated(m, conf: bytes) -> bool:
        version = conf.decode().splitlines()[-1][len("version="):]
        return version in dynamic_files(m)

    port = ze._port_pool(1)[0]
    cfg = {"observerMasterPort": port, "reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kinds, 5, observers=[4], proxied=False, member_hosts=True, name="obs-master-reconfig",
                     extra_cfg=cfg, client_addresses=True, start_only=[1, 2, 3, 4]) as ens:
        leader = ens.wait_for_leader(60, members=[ens.member(s) for s in (1, 2, 3)])
        obs = ens.member(4)
        assert obs.wait_serving() == "observer"
        h.wait_until(lambda: master_of(obs) > 0 and master_of(obs) != leader.sid, 30, 0.2,
                     "the observer's learner master")
        first = master_of(obs)
        other = [s for s in (1, 2, 3) if s not in (first, leader.sid)][0]
        print("leader s%d; the observer syncs from s%d" % (leader.sid, first))

        hist: List = []
        via_obs = ze.FailoverClient("via-observer", [obs], hist)
        via_leader = ze.FailoverClient("via-leader", [leader], hist)
        paths = ze.create_alternating(((via_obs, "o"), (via_leader, "v")), 3)
        via_obs.sync_read_each(paths)

        zk = kazoo(leader.hosts)
        try:
            conf, _ = zk.reconfig(joining=None, leaving=str(first), new_members=None)
            assert "server.%d=" % first not in conf.decode(), conf
            # INFORMANDACTIVATE through its follower: the observer runs the new configuration.
            h.wait_until(lambda: activated(obs, conf), 30, 0.2, "the observer's dynamic file without s%d" % first)
            paths += via_leader.create_each(["/removed%d" % i for i in range(3)], b"r")
            via_obs.sync_read_each(paths)
            paths += via_obs.create_each(["/obs-removed%d" % i for i in range(2)], b"o")

            ens.member(first).stop()
            paths += via_leader.create_each(["/stopped%d" % i for i in range(3)], b"s")
            h.wait_until(lambda: master_of(obs) == other and obs.mode() == "observer", 60, 0.3,
                         "the observer syncing from s%d" % other)
            print("s%d removed and stopped; the observer syncs from s%d" % (first, other))
            via_obs.sync_read_each(paths)

            new = ens.member(5)
            new.servers = sorted([leader.sid, other, 4, 5])
            new.start()
            assert new.wait_serving() == "follower", new.log_tail()
            conf, _ = zk.reconfig(joining=own_line(new), leaving=None, new_members=None)
            assert "server.5=" in conf.decode(), conf
            h.wait_until(lambda: activated(obs, conf), 30, 0.2, "the observer's dynamic file with s5")
            assert master_of(obs) == other, "still syncing from s%d" % other
            paths += via_leader.create_each(["/added%d" % i for i in range(3)], b"a")
            via_obs.sync_read_each(paths)

            ens.member(other).stop()
            paths += via_leader.create_each(["/other-stopped%d" % i for i in range(3)], b"s")
            h.wait_until(lambda: master_of(obs) == 5 and obs.mode() == "observer", 60, 0.3,
                         "the observer syncing from s5")
            print("s%d stopped; the observer syncs from s5" % other)
            via_obs.sync_read_each(paths)
            paths += via_obs.create_each(["/obs-last%d" % i for i in range(2)], b"o")
            via_obs.sync_read_each(paths)
        finally:
            close(zk)
        live = [leader, obs, ens.member(5)]
        ens.wait_converged(members=live)
        ze.assert_same_trees(live)
        via_obs.close()
        via_leader.close()
        assert_history(hist, final_state(leader, paths))
