//! FOLLOWING / OBSERVING: ZooKeeper's `Learner.registerWithLeader`, `syncWithLeader` and the
//! follower / observer packet loops.
//!
//! - **Discovery**: FOLLOWERINFO (or OBSERVERINFO) with the accepted epoch; on LEADERINFO a
//!   higher epoch is written to `acceptedEpoch` *before* ACKEPOCH (current epoch, last zxid)
//!   goes back; an equal one is answered with -1 (no ack); a lower one ends the attempt.
//! - **Sync**: DIFF, TRUNC (the log loses its tail) or SNAP (the state machine is replaced),
//!   then history as PROPOSAL + COMMIT; NEWLEADER writes `currentEpoch` and is acked once that
//!   and every txn received so far are durable. Nothing is delivered before UPTODATE: the
//!   COMMITs of the sync phase only become true commits once a quorum acked NEWLEADER, which
//!   UPTODATE announces.
//! - An observer with `syncEnabled=false` logs nothing (`Node::append` keeps the entry in
//!   the window only); its epoch files and a SNAP's snapshot are still written.
//! - **Broadcast**: PROPOSAL is logged and ACKed after the write is durable (followers only,
//!   and only after NEWLEADER, so a new-epoch txn is never acked by a server whose
//!   currentEpoch file is behind); COMMIT / INFORM deliver in zxid order; PING is echoed. A
//!   proposal out of zxid order, a packet that makes no sense in the phase, or a silent
//!   leader (initLimit during sync, syncLimit after) ends following: back to LOOKING.

use bytes::Bytes;
use rzk_proto::Zxid;

use crate::message::Message;
use crate::node::{After, Node, Role};
use crate::types::{Action, Entry, Epoch, LearnerType, ServerId, StorageOp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Discovery,
    /// LEADERINFO answered; awaiting DIFF / TRUNC / SNAP.
    AwaitSync,
    /// Sync packet received; history streaming; awaiting NEWLEADER.
    Syncing,
    /// NEWLEADER received (and acked once durable); awaiting UPTODATE.
    NewLeader,
    Broadcast,
}

/// Most COMMITANDACTIVATE designations kept for txns not yet delivered.
const ACTIVATIONS_MAX: usize = 16;

pub(crate) struct Learner {
    pub leader: ServerId,
    observer: bool,
    phase: Phase,
    new_epoch: Epoch,
    last_recv: u64,
    /// The highest zxid the leader said is committed.
    commit_hint: Zxid,
    /// The configuration NEWLEADER carried, taken at UPTODATE if newer than ours
    /// (`Learner.syncWithLeader`).
    new_leader_config: Option<Bytes>,
    /// A follower with `observerMasterPort`: the observers syncing from it.
    pub(crate) observers: std::collections::BTreeMap<ServerId, crate::observer_master::ObserverHandler>,
    /// COMMITANDACTIVATE's designated leader by zxid, until that txn is delivered: it goes
    /// on to the observers as INFORMANDACTIVATE (`ObserverMaster.informAndActivate`).
    pub(crate) activations: std::collections::BTreeMap<Zxid, ServerId>,
    /// An observer's reconnect delay: it connects (OBSERVERINFO) at this tick.
    connect_at: Option<u64>,
}

impl Learner {
    pub fn is_up_to_date(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    pub fn is_observer(&self) -> bool {
        self.observer
    }
}

impl Node {
    fn learner(&mut self) -> &mut Learner {
        match &mut self.role {
            Role::Learning(l) => l,
            _ => unreachable!("not learning"),
        }
    }

    /// Follows or observes `leader`, connecting at once or after `delay` ticks (an
    /// observer's reconnect delay).
    pub(crate) fn become_learner(&mut self, leader: ServerId, delay: u64) {
        let observer = self.cfg.learner_type() == LearnerType::Observer;
        self.early_learners.clear();
        let l = Learner {
            leader,
            observer,
            phase: Phase::Discovery,
            new_epoch: 0,
            last_recv: self.now,
            commit_hint: Zxid::ZERO,
            new_leader_config: None,
            observers: Default::default(),
            activations: Default::default(),
            connect_at: (delay > 0).then_some(self.now + delay),
        };
        self.set_role(Role::Learning(Box::new(l)));
        if delay == 0 {
            let accepted_epoch = self.accepted_epoch;
            self.send(leader, Message::LearnerInfo { accepted_epoch, observer });
        }
    }

    pub(crate) fn learner_step(&mut self, from: ServerId, msg: Message) {
        let now = self.now;
        let l = self.learner();
        if from != l.leader {
            return;
        }
        l.last_recv = now;
        let phase = l.phase;
        let leader = l.leader;
        let observer = l.observer;
        match (phase, msg) {
            (Phase::Discovery, Message::LeaderInfo { epoch }) => {
                let last_zxid = self.last_logged();
                self.learner().new_epoch = epoch;
                self.learner().phase = Phase::AwaitSync;
                if epoch > self.accepted_epoch {
                    let ce = self.current_epoch;
                    self.accepted_epoch = epoch;
                    self.persist(StorageOp::AcceptedEpoch(epoch));
                    self.after_durable(After::Send(leader, Message::AckEpoch { current_epoch: Some(ce), last_zxid }));
                } else if epoch == self.accepted_epoch {
                    self.send(leader, Message::AckEpoch { current_epoch: None, last_zxid });
                } else {
                    self.protocol_error("leader's epoch is below our accepted epoch");
                }
            }
            (Phase::AwaitSync, Message::Diff { zxid }) => {
                // Our log up to the leader's last matches its history (which becomes committed).
                let l = self.learner();
                l.phase = Phase::Syncing;
                l.commit_hint = l.commit_hint.max(zxid);
            }
            (Phase::AwaitSync, Message::Trunc { zxid }) => {
                if zxid < self.applied {
                    // Committed txns are never truncated; a leader asking for it is broken.
                    self.protocol_error("TRUNC below the applied zxid");
                    return;
                }
                self.truncate_window(zxid);
                self.persist(StorageOp::Truncate { after: zxid });
                let l = self.learner();
                l.phase = Phase::Syncing;
                l.commit_hint = l.commit_hint.max(zxid);
            }
            (Phase::AwaitSync, Message::Snap { zxid, snapshot }) => {
                self.log.clear();
                self.applied = zxid;
                // The snapshot on disk is the state: nothing delivered is missing from it.
                self.unlogged = false;
                self.persist(StorageOp::InstallSnapshot { zxid, data: snapshot });
                let l = self.learner();
                l.phase = Phase::Syncing;
                l.commit_hint = l.commit_hint.max(zxid);
            }
            (Phase::Syncing | Phase::NewLeader | Phase::Broadcast, Message::Proposal(e)) if !observer || phase != Phase::Broadcast => {
                self.learner_log(e, phase != Phase::Syncing && !observer);
            }
            (Phase::Syncing | Phase::NewLeader | Phase::Broadcast, Message::Inform(e)) if observer => {
                let z = e.zxid;
                if z > self.last_logged() {
                    self.learner_log(e, false);
                }
                self.learner_commit(z);
            }
            (Phase::Syncing | Phase::NewLeader | Phase::Broadcast, Message::Commit { zxid }) => {
                self.learner_commit(zxid);
            }
            (Phase::Syncing | Phase::NewLeader | Phase::Broadcast, Message::CommitAndActivate { zxid, leader: designated })
                if !observer =>
            {
                // Bounded: one reconfig is in flight at a time; kept until delivered.
                let l = self.learner();
                if l.activations.len() < ACTIVATIONS_MAX {
                    l.activations.insert(zxid, designated);
                }
                self.learner_commit(zxid);
                let applied = self.applied;
                self.learner().activations.retain(|z, _| *z > applied);
                self.actions.push(Action::ReconfigCommitted { zxid, leader: designated });
            }
            (Phase::Syncing | Phase::NewLeader | Phase::Broadcast, Message::InformAndActivate { entry, leader: designated })
                if observer =>
            {
                let z = entry.zxid;
                if z > self.last_logged() {
                    self.learner_log(entry, false);
                }
                self.learner_commit(z);
                self.actions.push(Action::ReconfigCommitted { zxid: z, leader: designated });
            }
            (Phase::Syncing, Message::NewLeader { zxid, config }) => {
                let epoch = self.learner().new_epoch;
                if zxid != Zxid::new(epoch, 0) {
                    self.protocol_error("NEWLEADER of another epoch");
                    return;
                }
                self.learner().phase = Phase::NewLeader;
                // Learner.syncWithLeader: NEWLEADER's configuration is the last seen one
                // (setLastSeenQuorumVerifier) from now on, activated at UPTODATE. An
                // unreadable one is refused at UPTODATE.
                if config.len() > 1 {
                    let _ = self.saw_config(&config, true);
                }
                self.learner().new_leader_config = (config.len() > 1).then_some(config);
                self.current_epoch = epoch;
                self.persist(StorageOp::CurrentEpoch(epoch));
                self.after_durable(After::Send(leader, Message::Ack { zxid }));
                let last = self.last_logged();
                if !observer && last.epoch() == epoch {
                    // In-flight proposals of this epoch streamed during sync: ack them now
                    // that the epoch is on disk (the ACK is cumulative).
                    self.after_durable(After::Send(leader, Message::Ack { zxid: last }));
                }
            }
            (Phase::NewLeader, Message::UpToDate) => {
                let epoch = self.learner().new_epoch;
                self.learner().phase = Phase::Broadcast;
                let hint = self.learner().commit_hint;
                self.deliver_up_to(hint);
                self.send(leader, Message::Ack { zxid: Zxid::new(epoch, 0) });
                self.update_election_vote(epoch);
                if let Some(config) = self.learner().new_leader_config.take() {
                    // A leader's configuration it cannot parse is a broken leader.
                    let incarnation = self.incarnation;
                    if self.activate(config, None).is_err() {
                        self.protocol_error("NEWLEADER with an unreadable configuration");
                        return;
                    }
                    if self.incarnation != incarnation {
                        // The new configuration has us look for another leader.
                        return;
                    }
                }
                if self.cfg.reconfig_enabled && !self.cfg.voters.contains(&leader) {
                    // A leader outside the configuration (one a reconfig removed, stepping
                    // down) is followed by nobody.
                    self.go_looking();
                    return;
                }
                self.actions.push(Action::Serving { epoch });
            }
            (Phase::Broadcast | Phase::NewLeader | Phase::Syncing, Message::Ping { zxid, .. }) => {
                self.send(leader, Message::Ping { zxid, data: Bytes::new() });
            }
            (_, _) => self.protocol_error("unexpected packet from the leader"),
        }
    }

    /// Logs a txn from the leader, checking it continues the log; `ack` sends its ACK once
    /// durable.
    fn learner_log(&mut self, e: Entry, ack: bool) {
        let last = self.last_logged();
        if e.zxid <= last {
            // A duplicate of something we have.
            return;
        }
        let continues = e.zxid == last.next() || (e.zxid.counter() == 1 && e.zxid.epoch() > last.epoch());
        let epoch = self.learner().new_epoch;
        if !continues || e.zxid.epoch() > epoch {
            self.protocol_error("proposal out of order");
            return;
        }
        let leader = self.learner().leader;
        let z = e.zxid;
        self.append(e);
        if ack {
            self.after_durable(After::Send(leader, Message::Ack { zxid: z }));
        }
        if self.learner().phase == Phase::Broadcast {
            let hint = self.learner().commit_hint;
            self.deliver_up_to(hint);
        }
    }

    fn learner_commit(&mut self, zxid: Zxid) {
        let l = self.learner();
        l.commit_hint = l.commit_hint.max(zxid);
        if l.phase == Phase::Broadcast {
            let hint = l.commit_hint;
            self.deliver_up_to(hint);
        }
    }

    pub(crate) fn learner_tick(&mut self) {
        self.learner_tick_inner();
        if matches!(self.role, Role::Learning(_)) {
            self.om_tick();
        }
    }

    fn learner_tick_inner(&mut self) {
        let now = self.now;
        if let Some(at) = self.learner().connect_at {
            if now >= at {
                let l = self.learner();
                l.connect_at = None;
                l.last_recv = now;
                let (leader, observer) = (l.leader, l.observer);
                let accepted_epoch = self.accepted_epoch;
                self.send(leader, Message::LearnerInfo { accepted_epoch, observer });
            }
            return;
        }
        let (phase, last) = {
            let l = self.learner();
            (l.phase, l.last_recv)
        };
        let limit = if phase == Phase::Broadcast { self.ticks(self.cfg.sync_limit) } else { self.ticks(self.cfg.init_limit) };
        if now > last + limit {
            self.protocol_error("leader silent");
            return;
        }
        if phase == Phase::Discovery && (now - last).is_multiple_of(self.cfg.tick_time_ticks as u64) {
            // Not connected yet (the leader may still be finishing its election): connect
            // again, as `Learner.connectToLeader` retries.
            let (leader, observer) = {
                let l = self.learner();
                (l.leader, l.observer)
            };
            let accepted_epoch = self.accepted_epoch;
            self.send(leader, Message::LearnerInfo { accepted_epoch, observer });
        }
    }
}
