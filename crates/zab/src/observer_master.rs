//! Observers syncing from a follower (`observerMasterPort`, ZooKeeper 3.6+): the protocol,
//! the observer's choice of a learner master ([`LearnerMasters`], used by the election's
//! `decide`) and the follower's side (`Node::om_step` and its helpers below: ZooKeeper's
//! `ObserverMaster` with its `LearnerHandler`s, as plain state inside FOLLOWING). The
//! member relays the observers' requests (`rzk_core::member::ObserverRelay`) and the shell
//! opens the port while the node serves as a synced follower.
//!
//! # The protocol (read from ZooKeeper 3.8's `Follower`, `ObserverMaster`, `Observer`,
//! `LearnerHandler`, `FollowerZooKeeperServer` and `QuorumPeer`)
//!
//! **Who listens.** Only a FOLLOWING server with `observerMasterPort > 0` runs an observer
//! master, and only once its own sync with the leader is over (after UPTODATE, in
//! `followLeader`); it stops (closing its observers' connections) when it stops following. It
//! binds the port on its own quorum address (every address with `quorumListenOnAllIPs`). The
//! leader never listens on it.
//!
//! **Where an observer connects.** With `observerMasterPort` set, an observer's list of
//! learner masters is every *voter* of the current configuration, the leader included, each
//! at the voter's quorum host and the *observer's own* `observerMasterPort` number (so every
//! member uses one port number; on one machine each member needs its own address). The list
//! is shuffled when the configuration is read (and again on a reconfig) and tried
//! round-robin: each OBSERVING round (after an election has named a leader) takes the next
//! entry, whoever the leader is. An entry that is the leader therefore fails to connect
//! (nothing listens there), the round ends, the observer looks for a leader again and the
//! next round takes the next entry. Without `observerMasterPort` the learner master is the
//! leader at its quorum port, as before. `mntr`'s `zk_observer_master_id` is the sid of the
//! entry in use (-1 between rounds).
//!
//! **The handshake** is the leader's, answered by the follower (`LearnerHandler` with the
//! follower's `ObserverMaster` as its `LearnerMaster`):
//! 1. observer → OBSERVERINFO (zxid = its accepted epoch << 32, data = LearnerInfo);
//! 2. follower → LEADERINFO (zxid = the follower's *current* epoch << 32, data = protocol
//!    version 0x10000); it does not wait for a quorum of epochs;
//! 3. observer → ACKEPOCH (its current epoch, last zxid), as with a leader;
//! 4. follower → DIFF / TRUNC / SNAP, chosen from its own committed state exactly as a leader
//!    chooses (its in-memory committed log, then the txn log on disk, else a snapshot),
//!    followed by the committed txns as PROPOSAL + COMMIT pairs;
//! 5. then the txns committed since the follower's own sync, from its retained queue of
//!    INFORM packets (`startForwarding`): if the queue's oldest entry is newer than the
//!    observer's position + 1 the observer is too far behind and is disconnected; otherwise
//!    the entries after its position are queued (as INFORM, before NEWLEADER);
//! 6. follower → NEWLEADER (zxid = current epoch << 32, data = the last seen configuration);
//!    observer → ACK (counter 0, ignored: no quorum is waited for);
//! 7. follower → UPTODATE; from here the observer is active and gets every INFORM.
//!
//! **Broadcast through the follower.** On each PROPOSAL from the leader the follower keeps an
//! INFORM packet (same zxid, same data); on the COMMIT of that zxid it moves it to the
//! retained queue (bounded by bytes: `zookeeper.observerMaster.sizeLimit`, 32 MiB, each
//! packet counted as 28 + its data's length; past 80 % five of the oldest go per added
//! packet, and the limit is a hard cap) and sends it to every active observer. A COMMIT with
//! no kept proposal (the follower's own sync phase) is skipped; a COMMIT for a zxid other
//! than the oldest kept proposal's is a fatal error. COMMITANDACTIVATE becomes
//! INFORMANDACTIVATE (the suggested leader id, then the txn). The follower PINGs each
//! observer every tickTime / 2; an observer's PING reply carries the sessions its clients
//! touched, which the follower touches in its own learner session tracker (so they reach the
//! leader in the follower's own PING replies). An observer's ACK with a non-zero counter is a
//! fatal error for that connection.
//!
//! **The observer's requests.** REQUEST packets are forwarded to the leader as the follower's
//! own forwarded requests (the reply comes back as the INFORM of the txn, which the observer
//! matches itself); a `sync` REQUEST is remembered in the follower's queue of pending syncs and
//! answered with SYNC to that observer when the leader's SYNC for it arrives. REVALIDATE is
//! forwarded to the leader and remembered in order; the leader's REVALIDATE answer goes back
//! to the observer whose revalidation is the oldest pending one if the session id matches
//! (and a valid session is touched), else the follower handles it as its own.
//!
//! **What it shows** (ZooKeeper 3.8, seen in `tests/test_observer_master.py`). `mntr`: a
//! follower with an observer master prints `zk_synced_observers` (its active observers, 0
//! when none), the leader its own count (0: the observers are not its learners); the
//! observer prints `zk_observer_master_id` (the follower's sid). The AdminServer's
//! `observers` lists a follower's observers. `conf` does not print `observerMasterPort`.
//! An observer that finds the port closed (its follower still syncing) retries within the
//! round (the learner's connect retries, bounded by initLimit), then moves on.
//!
//! # How rzk does it, and where it differs
//! - `zookeeper.observerMaster.sizeLimit` bounds ZooKeeper's retained queue, which covers
//!   the race between an observer's sync and the start of its forwarding (two threads); rzk
//!   has no such race and keeps no queue, so any limit holds and no observer falls out of it
//!   (the commits held for one observer during its sync are bounded by `HELD_MAX`).
//! - The follower syncs an observer from its window in memory only: DIFF (with the
//!   committed txns the observer lacks as PROPOSAL + COMMIT) when the window holds the
//!   observer's last zxid, TRUNC when the observer is ahead, else SNAP. ZooKeeper would also
//!   try a DIFF from its txn log on disk. Since the follower's node runs on one thread,
//!   the sync and the forwarding that follows it meet at one zxid: commits between an
//!   observer's NEWLEADER and its ACK are held (bounded) and sent after UPTODATE, so
//!   ZooKeeper's retained queue of committed INFORMs (and its "too far behind" case) is not
//!   needed.
//! - The follower drops a connection that sends OBSERVERINFO before its own sync is over
//!   (ZooKeeper's port is not open yet then; rzk's host opens it at the same moment, so this
//!   is only a race) and FOLLOWERINFO at any time.
//! - A multi-address voter: the host tries each of its addresses at the observer master
//!   port and keeps the first that connects (ZooKeeper takes one, the reachable one, when it
//!   builds the list; rzk checks no reachability anywhere).
//!
//! # With reconfig (`reconfigEnabled`)
//! As ZooKeeper's `setQuorumVerifier` calls `updateObserverMasterList`, every activated
//! configuration rebuilds the list from its voters, shuffled again (the seed mixed with the
//! version) and tried from the first. Every server with the setting keeps both sides and uses
//! the one of its current type (a reconfig converts it): the list as an observer, the
//! observer master as a participant that follows (`Node::om_enabled`). The connection in use
//! is not dropped for a new list: only a designated leader other than the vote's leader
//! (`processReconfig`'s `updateVote`), or a change of its own type, starts a new round. A
//! follower removed by a reconfig goes on following as a non-voter and goes on serving its
//! observers, as ZooKeeper's; INFORMANDACTIVATE reaches them through it like any INFORM.
//! - The AdminServer's `observers` lists no observer details (the count only).
//!
//! # What is here
//! - [`LearnerMasters`]: the observer's shuffled round-robin list of learner masters
//!   (`QuorumPeer.updateObserverMasterList` / `nextObserverMaster`), randomness as an input.
//! - The follower's side: an `ObserverHandler` per observer, `Node::om_*`.

use bytes::Bytes;
use rzk_proto::Zxid;

use crate::message::Message;
use crate::node::{Node, Role};
use crate::types::{Action, Entry, ServerId};

/// Where an observer of this follower is (a `LearnerHandler` of ZooKeeper's `ObserverMaster`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObserverPhase {
    /// OBSERVERINFO answered with LEADERINFO; awaiting ACKEPOCH.
    LeaderInfoSent,
    /// Synced and NEWLEADER sent; awaiting its ACK (commits meanwhile are held).
    NewLeaderSent,
    /// UPTODATE sent: every commit goes to it as INFORM.
    Active,
}

/// One observer syncing from this follower.
#[derive(Debug, Clone)]
pub(crate) struct ObserverHandler {
    phase: ObserverPhase,
    last_recv: u64,
    /// Commits between its NEWLEADER and its ACK (INFORM / INFORMANDACTIVATE), sent after
    /// UPTODATE.
    held: Vec<Message>,
}

/// Most commits held for one observer between its NEWLEADER and its ACK; beyond, it is
/// dropped (it connects again).
const HELD_MAX: usize = 10_000;

impl Node {
    fn om_handlers(&mut self) -> Option<&mut std::collections::BTreeMap<ServerId, ObserverHandler>> {
        match &mut self.role {
            Role::Learning(l) => Some(&mut l.observers),
            _ => None,
        }
    }

    /// `observerMasterPort` and a participant now (a reconfig may convert it): as a
    /// FOLLOWING node it serves observers (ZooKeeper's Follower starts an ObserverMaster).
    pub fn om_enabled(&self) -> bool {
        self.cfg.observer_master && self.cfg.learner_type() == crate::types::LearnerType::Participant
    }

    pub(crate) fn om_has_observers(&self) -> bool {
        matches!(&self.role, Role::Learning(l) if !l.observers.is_empty())
    }

    /// A packet from a server other than the leader, on a follower with an observer master.
    pub(crate) fn om_step(&mut self, from: ServerId, msg: Message) {
        let now = self.now;
        let synced = matches!(&self.role, Role::Learning(l) if l.is_up_to_date());
        if let Message::LearnerInfo { observer, .. } = msg {
            // Only observers, and only once this follower's own sync is over (ZooKeeper's
            // ObserverMaster starts then); a new connection replaces an older one.
            if !observer || !synced {
                self.om_drop(from, true);
                return;
            }
            let handlers = self.om_handlers().expect("learning");
            handlers.insert(from, ObserverHandler { phase: ObserverPhase::LeaderInfoSent, last_recv: now, held: Vec::new() });
            let epoch = self.current_epoch;
            self.send(from, Message::LeaderInfo { epoch });
            return;
        }
        let Some(h) = self.om_handlers().and_then(|hs| hs.get_mut(&from)) else {
            return;
        };
        h.last_recv = now;
        match (h.phase, msg) {
            (ObserverPhase::LeaderInfoSent, Message::AckEpoch { last_zxid, .. }) => self.om_sync(from, last_zxid),
            (ObserverPhase::NewLeaderSent, Message::Ack { zxid }) if zxid.counter() == 0 => {
                h.phase = ObserverPhase::Active;
                let held = std::mem::take(&mut h.held);
                self.send(from, Message::UpToDate);
                for m in held {
                    self.send(from, m);
                }
            }
            // The ACK after UPTODATE, and PING replies (their session touches are the
            // member's business).
            (ObserverPhase::Active, Message::Ack { zxid }) if zxid.counter() == 0 => {}
            (ObserverPhase::NewLeaderSent | ObserverPhase::Active, Message::Ping { .. }) => {}
            // Anything else (an observer's ACK of a txn included) ends that observer.
            _ => self.om_drop(from, true),
        }
    }

    /// `LearnerHandler.syncFollower` from this follower's committed state: DIFF (with the
    /// committed txns it lacks from the window as PROPOSAL + COMMIT), TRUNC if it is ahead,
    /// else SNAP; then NEWLEADER.
    fn om_sync(&mut self, to: ServerId, last_zxid: Zxid) {
        self.stats.observer_syncs += 1;
        let applied = self.applied;
        if last_zxid == applied {
            self.send(to, Message::Diff { zxid: applied });
        } else if last_zxid > applied {
            self.send(to, Message::Trunc { zxid: applied });
        } else if self.log.iter().any(|e| e.zxid == last_zxid && e.zxid <= applied) {
            self.send(to, Message::Diff { zxid: applied });
            let missing: Vec<Entry> = self.entries_after(last_zxid).take_while(|e| e.zxid <= applied).cloned().collect();
            for e in missing {
                let zxid = e.zxid;
                self.send(to, Message::Proposal(e));
                self.send(to, Message::Commit { zxid });
            }
        } else {
            self.actions.push(Action::SendSnapshot { to, zxid: applied });
        }
        let zxid = Zxid::new(self.current_epoch, 0);
        let config = self.cfg.config_data.clone();
        self.send(to, Message::NewLeader { zxid, config });
        if let Some(h) = self.om_handlers().and_then(|hs| hs.get_mut(&to)) {
            h.phase = ObserverPhase::NewLeaderSent;
        }
    }

    /// A txn this follower committed: INFORM to its observers, INFORMANDACTIVATE (with the
    /// designated leader) for one the leader committed with COMMITANDACTIVATE.
    pub(crate) fn om_delivered(&mut self, e: Entry) {
        let designated = match &mut self.role {
            Role::Learning(l) => l.activations.remove(&e.zxid),
            _ => None,
        };
        let msg = match designated {
            Some(leader) => Message::InformAndActivate { entry: e, leader },
            None => Message::Inform(e),
        };
        let mut send = Vec::new();
        let mut drop = Vec::new();
        if let Some(hs) = self.om_handlers() {
            for (sid, h) in hs.iter_mut() {
                match h.phase {
                    ObserverPhase::Active => send.push(*sid),
                    ObserverPhase::NewLeaderSent if h.held.len() < HELD_MAX => h.held.push(msg.clone()),
                    ObserverPhase::NewLeaderSent => drop.push(*sid),
                    // Its sync, still to come, starts from what is committed then.
                    ObserverPhase::LeaderInfoSent => {}
                }
            }
        }
        for sid in send {
            self.send(sid, msg.clone());
        }
        for sid in drop {
            self.om_drop(sid, true);
        }
    }

    /// PINGs every half tick to the synced observers; a silent one is dropped (initLimit
    /// while syncing, syncLimit after).
    pub(crate) fn om_tick(&mut self) {
        let now = self.now;
        let ping = now.is_multiple_of(self.half_tick());
        let init = self.ticks(self.cfg.init_limit);
        let sync = self.ticks(self.cfg.sync_limit);
        let zxid = self.last_logged();
        let mut pings = Vec::new();
        let mut silent = Vec::new();
        if let Some(hs) = self.om_handlers() {
            for (sid, h) in hs.iter() {
                let limit = if h.phase == ObserverPhase::Active { sync } else { init };
                if now > h.last_recv + limit {
                    silent.push(*sid);
                } else if ping && h.phase == ObserverPhase::Active {
                    pings.push(*sid);
                }
            }
        }
        for sid in pings {
            self.send(sid, Message::Ping { zxid, data: Bytes::new() });
        }
        for sid in silent {
            self.om_drop(sid, true);
        }
    }

    /// Forgets an observer; `close`: its connection too.
    pub(crate) fn om_drop(&mut self, sid: ServerId, close: bool) {
        if let Some(hs) = self.om_handlers() {
            hs.remove(&sid);
        }
        if close {
            self.actions.push(Action::Disconnect { peer: sid });
        }
    }

    /// Whether `sid` is an observer this follower has synced (its requests are relayed).
    pub fn serves_observer(&self, sid: ServerId) -> bool {
        matches!(&self.role, Role::Learning(l) if l.observers.get(&sid).is_some_and(|h| h.phase == ObserverPhase::Active))
    }

    /// The observers synced from this follower (`zk_synced_observers`).
    pub fn synced_observers(&self) -> Option<usize> {
        if !self.om_enabled() {
            return None;
        }
        match &self.role {
            Role::Learning(l) if l.is_up_to_date() => Some(l.observers.values().filter(|h| h.phase == ObserverPhase::Active).count()),
            _ => None,
        }
    }
}

/// An observer's learner masters: the voters in a shuffled order, taken round-robin.
#[derive(Debug, Clone)]
pub struct LearnerMasters {
    order: Vec<ServerId>,
    next: usize,
}

impl LearnerMasters {
    /// The voters, shuffled by `seed` (the host's randomness; the simulator's is seeded).
    pub fn new(voters: impl IntoIterator<Item = ServerId>, seed: u64) -> LearnerMasters {
        let mut order: Vec<ServerId> = voters.into_iter().collect();
        order.sort();
        order.dedup();
        let mut state = seed;
        for i in (1..order.len()).rev() {
            let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        LearnerMasters { order, next: 0 }
    }

    /// The entry for the next OBSERVING round; `None` without voters.
    pub fn next_master(&mut self) -> Option<ServerId> {
        self.next_master_wrapped().map(|(sid, _)| sid)
    }

    /// [`LearnerMasters::next_master`], and whether the list had been gone round (where
    /// ZooKeeper's observer waits its reconnect delay).
    pub fn next_master_wrapped(&mut self) -> Option<(ServerId, bool)> {
        if self.order.is_empty() {
            return None;
        }
        let wrapped = self.next >= self.order.len();
        if wrapped {
            self.next = 0;
        }
        let sid = self.order[self.next];
        self.next += 1;
        Some((sid, wrapped))
    }

    /// The list in the order it is tried.
    pub fn order(&self) -> &[ServerId] {
        &self.order
    }
}

pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learner_masters_cover_every_voter_round_robin() {
        let voters = [ServerId(3), ServerId(1), ServerId(2)];
        let mut m = LearnerMasters::new(voters, 42);
        let first: Vec<_> = (0..3).map(|_| m.next_master().unwrap()).collect();
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, vec![ServerId(1), ServerId(2), ServerId(3)]);
        let again: Vec<_> = (0..3).map(|_| m.next_master().unwrap()).collect();
        assert_eq!(first, again);
        assert_eq!(LearnerMasters::new(voters, 42).order(), LearnerMasters::new(voters, 42).order());
        assert!(LearnerMasters::new([], 1).next_master().is_none());
        let orders: std::collections::BTreeSet<Vec<ServerId>> = (0..64).map(|s| LearnerMasters::new(voters, s).order().to_vec()).collect();
        assert!(orders.len() > 1, "the seed shuffles");
    }
}
