"""A follower far behind catches up while the ensemble goes on writing (rzk ensembles of 3,
real processes on 127.0.0.1, kazoo clients).

* SNAP, streamed: a follower away for more than the leader's in-memory window (and whose
  missed txns weigh more than a third of the snapshot) gets a SNAP, which the leader writes
  in bounded steps between its other work while a writer keeps writing; the follower
  decodes it as it arrives (its log says so), installs the fuzzy snapshot, applies the txns after its zxid on top, and ends with the
  leader's tree: every acknowledged write is there, the `hash` digests agree at equal zxids,
  and the leader's `mntr` counts the sync in `zk_snap_count`.
* DIFF from the txn log on disk: a follower 2000 txns behind (the leader keeps 500 in
  memory) gets a DIFF read from the leader's log with `snapshotSizeFactor=0` (no size limit,
  as in ZooKeeper): the missed txns are in its own log, it took no snapshot, `zk_diff_count`
  moves and `zk_snap_count` does not; with a negative factor it gets a SNAP instead. Every
  acknowledged write of a writer running meanwhile is on it.

Each test bounds its time and stops every process it started (zkensemble.Ensemble).
"""

from __future__ import annotations

import threading
import time

import pytest

import zkharness as h
import zkensemble as ze

pytestmark = pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not found")


from test_ensemble import close, kazoo  # noqa: E402  (one kazoo session helper for the ensemble tests)


def mntr(m: ze.Member) -> dict:
    out = {}
    for line in h.four_letter(m.client_port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def sync_counts(ens) -> tuple:
    """DIFF and SNAP syncs run by the running members, as leaders (mntr)."""
    d = s = 0
    for m in ens.members:
        if m.is_running():
            v = mntr(m)
            d += int(v.get("zk_diff_count", "0"))
            s += int(v.get("zk_snap_count", "0"))
    return d, s


def digests(m: ze.Member) -> dict:
    """The `hash` word: zxid -> tree digest, every 128 zxids."""
    out = {}
    for line in h.four_letter(m.client_port, "hash").splitlines():
        z, _, d = line.partition(": ")
        if d:
            out[int(z, 16)] = int(d)
    return out


class Writer(threading.Thread):
    """Creates /w/n-<i> one at a time (each waits for its answer) until stopped; keeps the
    paths acknowledged."""

    def __init__(self, hosts: str):
        super().__init__(daemon=True)
        self.zk = kazoo(hosts)
        self.stop_at_count = None
        self.stopped = threading.Event()
        self.acked = []
        self.errors = 0

    def run(self):
        i = 0
        try:
            while not self.stopped.is_set():
                if self.stop_at_count is not None and len(self.acked) >= self.stop_at_count:
                    break
                p = "/w/n-%d" % i
                i += 1
                try:
                    self.zk.create(p, b"w" * 64)
                    self.acked.append(p)
                except Exception:
                    self.errors += 1  # unknown outcome (a retry may find it): not counted
                    time.sleep(0.01)
        finally:
            close(self.zk)


def test_snap_is_streamed_while_a_writer_writes():
    with ze.Ensemble("rzk", 3, name="snapstream", proxied=False) as ens:
        leader = ens.wait_for_leader()
        f = ens.followers()[0]
        zk = kazoo(leader.hosts)
        zk.create("/bulk", b"")
        zk.create("/w", b"")
        ens.wait_converged()
        f.kill9()
        # 12000 znodes of 300 bytes while it is away: a SNAP of about 4 MiB, written in
        # some 30 steps of 128 KiB.
        n = 12000
        for start in range(0, n, 500):
            rs = [zk.create_async("/bulk/b-%05d" % i, b"b" * 300) for i in range(start, start + 500)]
            for r in rs:
                r.get(timeout=60)
        snaps_before = int(mntr(leader).get("zk_snap_count", "0"))
        w = Writer(leader.hosts)
        w.start()
        h.wait_until(lambda: len(w.acked) >= 50, 30, what="the writer to get going")
        f.start()
        f.wait_serving()
        # Writes go on after the follower serves: enough for the digest log (every 128 zxids)
        # to have entries from after its replay converged.
        w.stop_at_count = len(w.acked) + 400
        w.join(timeout=120)
        assert not w.is_alive(), "the writer did not finish"
        close(zk)
        ens.wait_converged()

        assert int(mntr(leader)["zk_snap_count"]) > snaps_before, "the follower was not sent a SNAP"
        assert "sending SNAP (streamed)" in leader.log_text()
        # The follower decoded it as it arrived, never holding the whole stream.
        assert "received the leader's SNAP: decoded as it arrived" in f.log_text()
        fz = kazoo(f.hosts)
        try:
            fz.sync("/")
            assert len(fz.get_children("/bulk")) == n
            on_f = set("/w/" + c for c in fz.get_children("/w"))
        finally:
            close(fz)
        missing = [p for p in w.acked if p not in on_f]
        assert not missing, "acknowledged writes missing on the follower: %s" % missing[:10]
        ld, fd = digests(leader), digests(f)
        common = sorted(set(ld) & set(fd))
        assert common, "no zxid with a digest on both (leader %s, follower %s)" % (sorted(ld)[-3:], sorted(fd)[-3:])
        bad = [(hex(z), ld[z], fd[z]) for z in common if ld[z] != fd[z]]
        assert not bad, "tree digests differ at equal zxids: %s" % bad[:5]
        ens.check_alive()


@pytest.mark.parametrize("factor,mode", [("0", "diff"), ("-1", "snap")])
def test_follower_behind_the_window_gets_a_diff_from_the_log(factor, mode):
    """2000 txns missed (the leader keeps 500 in memory): with zookeeper.snapshotSizeFactor=0
    (no size limit, as in ZooKeeper) the leader reads them from its txn log and sends a
    DIFF; with a negative factor it never reads the log: SNAP."""
    cfg = {"snapshotSizeFactor": factor, "preAllocSize": "1024"}
    with ze.Ensemble("rzk", 3, name="logdiff", proxied=False, extra_cfg=cfg) as ens:
        leader = ens.wait_for_leader()
        f = ens.followers()[0]
        zk = kazoo(leader.hosts)
        zk.create("/d", b"")
        zk.create("/w", b"")
        ens.wait_converged()
        h.wait_until(lambda: ens.wait_converged() in f.txn_zxids(), 10, what="the follower's log to hold its last zxid")
        f_last = max(f.txn_zxids())
        f.kill9()
        missed = []
        for start in range(0, 2000, 500):
            rs = [zk.create_async("/d/m-%04d" % i, b"m" * 100) for i in range(start, start + 500)]
            missed += [r.get(timeout=60) for r in rs]
        close(zk)
        before = sync_counts(ens)
        w = Writer(leader.hosts)
        w.start()
        f.start()
        f.wait_serving()
        w.stop_at_count = len(w.acked) + 200
        w.join(timeout=120)
        assert not w.is_alive(), "the writer did not finish"
        ens.wait_converged()
        # (A follower coming back may start a new election: count every member's syncs.)
        after = sync_counts(ens)
        diffs, snaps = after[0] - before[0], after[1] - before[1]
        if mode == "diff":
            assert diffs >= 1 and snaps == 0, (diffs, snaps)
        else:
            assert snaps >= 1, (diffs, snaps)
        new_snaps = [z for z in f.snapshot_zxids() if z > f_last]
        if mode == "diff":
            assert any("reading the txn log for a DIFF learner=%d" % f.sid in m.log_text() for m in ens.members)
            assert new_snaps == [], "a snapshot: the follower was sent a SNAP, not a DIFF"
            zxids = set(f.txn_zxids())
            missed_zxids = [z for z in range(f_last + 1, f_last + 2001)]
            assert set(missed_zxids) <= zxids, "the follower's log lacks txns it missed"
        else:
            assert new_snaps, "no snapshot on the follower: it was not sent a SNAP"
        fz = kazoo(f.hosts)
        try:
            fz.sync("/")
            assert sorted(fz.get_children("/d")) == sorted(p.rsplit("/", 1)[1] for p in missed)
            on_f = set("/w/" + c for c in fz.get_children("/w"))
        finally:
            close(fz)
        assert not [p for p in w.acked if p not in on_f], "acknowledged writes missing on the follower"
        ens.check_alive()
