"""Observers with `syncEnabled=false`, real processes on 127.0.0.1, side by side with
Apache ZooKeeper 3.8 (zkensemble.py starts them; every process stopped by PID on exit).

ZooKeeper's observer with `syncEnabled=false` runs no SyncRequestProcessor: it writes no
txn log and takes no periodic snapshot; its epoch files, the `snapshot.0` of an empty
dataDir and the snapshot of a SNAP sync are still written. Restarted, it loads that
snapshot and the leader syncs it again (DIFF, or SNAP). The test runs three participants
and such an observer as all-ZooKeeper, all-rzk, an rzk observer with ZooKeeper
participants and a ZooKeeper observer with rzk participants; and, all-ZooKeeper and
all-rzk, with `syncEnabled=true` overridden by the system property
`zookeeper.observer.syncEnabled=false` (zoo.cfg's `observer.syncEnabled`):

* kazoo writes through the observer (forwarded) and through the participants; the
  observer reads every one of them after a sync;
* its dataDir holds no `log.*` file, and the same kinds of files a ZooKeeper observer's
  holds (epoch files, snapshots only at start-up and SNAP syncs);
* killed (-9), it misses writes; restarted, it serves every write again and still logs
  nothing; restarted again after a few writes, it is synced by DIFF from the snapshot it
  loads and takes no new snapshot; every member ends with the same tree and the history
  checks;
* with reconfigEnabled, such an observer made a participant by `reconfig`, written to,
  killed and restarted: rzk's serves every write (it stored its state as a snapshot before
  logging); ZooKeeper 3.8's lacks the writes it learnt as an observer (its log has a gap:
  an expected failure, kept to show the difference).
"""

from __future__ import annotations

import os
import re
from typing import List

import pytest

import zkharness as h
import zkensemble as ze
from test_ensemble import assert_history, final_state

ZK, RZK = "zookeeper", "rzk"

NOSYNC = {"syncEnabled": "false"}
# an unknown zoo.cfg key is the system property zookeeper.<key>: this one wins over the key
NOSYNC_PROPERTY = {"syncEnabled": "true", "observer.syncEnabled": "false"}

CASES = [
    pytest.param([ZK, ZK, ZK, ZK], NOSYNC, id="zookeeper"),
    pytest.param([RZK, RZK, RZK, RZK], NOSYNC, id="rzk"),
    pytest.param([ZK, ZK, ZK, RZK], NOSYNC, id="rzk-observer"),
    pytest.param([RZK, RZK, RZK, ZK], NOSYNC, id="zookeeper-observer"),
    pytest.param([ZK, ZK, ZK, ZK], NOSYNC_PROPERTY, id="zookeeper-property"),
    pytest.param([RZK, RZK, RZK, RZK], NOSYNC_PROPERTY, id="rzk-property"),
]

pytestmark = pytest.mark.skipif(os.environ.get("RZK_ENSEMBLE", "1") != "1", reason="RZK_ENSEMBLE=0")


def _skip_unavailable(kinds: List[str]) -> None:
    if ZK in kinds and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    if RZK in kinds and not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())


def files(m: ze.Member) -> List[str]:
    if not m.version_dir.exists():
        return []
    return sorted(p.name for p in m.version_dir.iterdir())


def kinds_of_files(names: List[str]) -> set:
    return {re.sub(r"\..*", "", n) for n in names}


@pytest.mark.parametrize("kinds,cfg", CASES)
def test_observer_without_sync_keeps_no_log_and_syncs_again(kinds, cfg):
    _skip_unavailable(kinds)
    with ze.Ensemble(kinds, 4, observers=[4], name="obs-nosync", member_cfg={4: cfg}) as ens:
        obs = ens.member(4)
        ens.wait_for_leader(60)
        assert obs.wait_serving() == "observer"
        # the snapshots of its start (ZooKeeper's snapshot.0) and sync (a SNAP's): no others
        # come while it serves
        synced = obs.snapshot_zxids()
        hist = []
        via_obs = ze.FailoverClient("via-observer", [obs], hist)
        via_voters = ze.FailoverClient("via-voters", ens.voters(), hist)
        paths = ze.create_alternating(((via_obs, "o"), (via_voters, "v")), 6)
        via_obs.sync_read_each(paths)
        before = files(obs)
        print("observer s4 (%s) dataDir: %s" % (obs.kind, before))
        assert not [n for n in before if n.startswith("log.")], before
        assert obs.txn_zxids() == []
        assert {"acceptedEpoch", "currentEpoch"} <= set(before), before
        assert obs.snapshot_zxids() == synced, (synced, before)

        obs.kill9()
        paths += via_voters.create_each(["/down%d" % i for i in range(5)], b"d")
        obs.start()
        assert obs.wait_serving() == "observer"
        via_obs.sync_read_each(paths)
        paths += via_obs.create_each(["/after"], b"a")
        after = files(obs)
        print("observer s4 (%s) dataDir after its restart: %s" % (obs.kind, after))
        assert not [n for n in after if n.startswith("log.")], after
        assert kinds_of_files(after) <= {"acceptedEpoch", "currentEpoch", "snapshot"}, after

        # again, missing a few writes only: the leader's DIFF from the snapshot it loads
        # brings it up to date, with no new snapshot (ZooKeeper takes one after a SNAP only)
        snaps = obs.snapshot_zxids()
        obs.kill9()
        paths += via_voters.create_each(["/down-again%d" % i for i in range(3)], b"d")
        obs.start()
        assert obs.wait_serving() == "observer"
        via_obs.sync_read_each(paths)
        again = files(obs)
        print("observer s4 (%s) dataDir after a DIFF: %s" % (obs.kind, again))
        assert obs.snapshot_zxids() == snaps, (snaps, again)
        assert not [n for n in again if n.startswith("log.")], again
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        via_obs.close()
        via_voters.close()
        assert_history(hist, final_state(ens.leader(), paths))


@pytest.mark.parametrize("kind", [
    # ZooKeeper 3.8 logs on from where the observer is: its dataDir holds snapshot.0 and a
    # log starting after the txns it never logged, and restarted it lacks them (NoNode).
    pytest.param(ZK, marks=pytest.mark.xfail(reason="ZooKeeper 3.8: the converted observer's log has a gap", strict=False)),
    RZK,
])
def test_an_observer_without_sync_made_a_participant_keeps_what_it_served(kind):
    """reconfigEnabled: the observer (syncEnabled=false, so it logged nothing of the first
    writes) becomes a participant by `reconfig`; more writes; killed (-9) and restarted, it
    serves every write. rzk stores its state as a snapshot before it logs as a participant,
    so its log continues a snapshot. (ZooKeeper 3.8 does not: its restarted member misses
    the first writes; that half is expected to fail.)"""
    _skip_unavailable([kind])
    from test_reconfig import kazoo, member_line

    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 4, observers=[4], proxied=False, name="obs-nosync-convert", extra_cfg=cfg,
                     member_cfg={4: NOSYNC}, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader(members=ens.members[:3])
        obs = ens.member(4)
        assert obs.mode() == "observer"
        hist = []
        via_obs = ze.FailoverClient("via-observer", [obs], hist)
        paths = via_obs.create_each(["/before%d" % i for i in range(5)], b"b")
        assert obs.txn_zxids() == []
        zk = kazoo(leader.hosts)
        try:
            conf, _ = zk.reconfig(joining=member_line(obs, "participant"), leaving=None, new_members=None)
            assert re.search(r"^server\.4=.*:participant;", conf.decode(), re.M), conf
        finally:
            zk.stop()
            zk.close()
        h.wait_until(lambda: obs.mode() == "follower", 30, 0.2, "server 4 following")
        paths += via_obs.create_each(["/after%d" % i for i in range(5)], b"a")
        print("s4 (%s) dataDir as a participant: %s" % (kind, files(obs)))
        obs.kill9()
        obs.start()
        assert obs.wait_serving() == "follower"
        via_obs.sync_read_each(paths)
        ens.wait_converged()
        ze.assert_same_trees(ens.members)
        via_obs.close()
        assert_history(hist, final_state(leader, paths))
