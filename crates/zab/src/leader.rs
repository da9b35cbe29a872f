//! LEADING: ZooKeeper's `Leader` and one `LearnerHandler` per connected learner, as plain
//! state.
//!
//! - **Discovery**: learners send FOLLOWERINFO / OBSERVERINFO with their accepted epoch. Once
//!   a quorum of voters (this server included) has connected, the new epoch is one above
//!   every accepted epoch seen; it is written to `acceptedEpoch` before any LEADERINFO goes
//!   out. Learners answer ACKEPOCH with their current epoch and last zxid; a learner whose
//!   history is more recent than the leader's is dropped. A quorum of ACKEPOCHs (this server
//!   included) ends discovery; `currentEpoch` is written.
//! - **Sync**: per learner, DIFF / TRUNC / SNAP chosen as `LearnerHandler.syncFollower` does
//!   from the in-memory committed window, the missing txns as PROPOSAL + COMMIT, then
//!   proposals still in flight, then NEWLEADER. A learner behind the window is first offered
//!   a DIFF from the txn log on disk (`db.getProposalsFromTxnLog`, with `txn_log_sync`):
//!   [`Action::ReadLog`] asks the host for the logged txns after its zxid, which come back
//!   in bounded batches ([`Node::log_read`]) and go out as they come, until they reach the
//!   window (then the window's txns, the proposals in flight and NEWLEADER follow); a
//!   refusal (the zxid is not logged, or the log is too large next to the snapshot: the
//!   host's `snapshotSizeFactor` policy) means SNAP. When a quorum of voters (this server, once its
//!   log and epoch are durable, included) has acked NEWLEADER, the leader is established: its
//!   whole initial history is committed, each acked learner gets UPTODATE, clients may be
//!   served.
//! - **Broadcast**: `propose` logs the txn and sends PROPOSAL to the voters being forwarded
//!   to; an ACK (cumulative: a learner logs in order) counts once the learner's write is
//!   durable; proposals commit strictly in zxid order once a quorum of voters acked: COMMIT to
//!   followers, INFORM to observers, delivery to the local state machine.
//! - **Liveness**: PING every half tick; every tick the leader checks that a quorum of voters
//!   has been heard from within `syncLimit` and steps down otherwise. A learner silent beyond
//!   its limit, or sitting on an un-acked proposal for longer than `syncLimit`, is dropped.
//!   Discovery and sync phases each must finish within `initLimit`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use rzk_proto::Zxid;

use crate::message::Message;
use crate::node::{AckSet, After, Node, Role};
use crate::types::{Action, Config, Entry, Epoch, ProposeError, ServerId, StorageOp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Collecting FOLLOWERINFOs for the new epoch.
    Discovery,
    /// Epoch chosen; collecting ACKEPOCHs.
    EpochAck,
    /// Discovery done; learners being synced; collecting NEWLEADER acks.
    Sync,
    /// Established.
    Broadcast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HState {
    /// FOLLOWERINFO received; LEADERINFO not sent yet (epoch not chosen or not durable).
    Connected,
    /// LEADERINFO sent; awaiting ACKEPOCH.
    LeaderInfoSent,
    /// ACKEPOCH received; awaiting the end of discovery to sync.
    EpochAcked,
    /// Synced and NEWLEADER sent; awaiting its ACK.
    NewLeaderSent,
    /// NEWLEADER acked; awaiting establishment for UPTODATE.
    NewLeaderAcked,
    /// Syncing from the txn log on disk: [`Action::ReadLog`] issued; its txns go out as
    /// the host reads them (see [`DiskSync`]).
    ReadingLog,
    /// UPTODATE sent: a full member.
    UpToDate,
}

struct Handler {
    observer: bool,
    state: HState,
    peer_last_zxid: Zxid,
    last_recv: u64,
    /// Proposals sent and not yet acked, with the tick they were sent (`syncLimitCheck`).
    unacked: VecDeque<(Zxid, u64)>,
    /// A DIFF from the txn log on disk, while `state` is `ReadingLog`.
    disk: DiskSync,
    /// The host could not sync this learner from its txn log: SNAP instead.
    disk_refused: bool,
}

/// Where a DIFF from the txn log on disk is.
#[derive(Debug, Clone, Copy, Default)]
struct DiskSync {
    /// The last txn sent (the learner's zxid before the first).
    sent: Zxid,
    /// DIFF sent: there is no going back to SNAP.
    started: bool,
    /// Reads asked again after the log ended short of the window.
    rereads: u32,
}

/// A read of the txn log the node asked for with [`Action::ReadLog`], as the host reports
/// it to [`Node::log_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRead {
    /// The next logged txns, in zxid order, the first right after the last one reported
    /// (after the zxid asked for, at first).
    Entries(Vec<Entry>),
    /// The log has nothing more.
    End,
    /// The host will not read it (the zxid is not in its log, the log is too large next to
    /// the snapshot, an I/O error).
    Unavailable,
}

/// Times a DIFF from the txn log reads the log again when it ended short of the window.
const LOG_REREADS_MAX: u32 = 3;

impl Handler {
    fn forwarding(&self) -> bool {
        matches!(self.state, HState::NewLeaderSent | HState::NewLeaderAcked | HState::UpToDate)
    }
}

/// What a leader knows of its learners (see [`Leader::learner_summary`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnerSummary {
    pub learners: usize,
    pub synced_followers: usize,
    pub synced_observers: usize,
}

pub(crate) struct Leader {
    phase: Phase,
    epoch: Option<Epoch>,
    max_accepted: Epoch,
    connecting: BTreeSet<ServerId>,
    electing: BTreeSet<ServerId>,
    newleader_acks: BTreeSet<ServerId>,
    /// The leader's own (currentEpoch, lastZxid) when it started leading (`StateSummary`).
    summary: (Epoch, Zxid),
    /// Set once the current epoch (and the log before it) are durable.
    epoch_durable: bool,
    learners: BTreeMap<ServerId, Handler>,
    outstanding: BTreeMap<Zxid, AckSet>,
    /// The reconfig proposal in flight, if any (ZooKeeper's Proposal with two
    /// `qvAcksetPairs`): its zxid, the new configuration and its text. It commits only
    /// with a quorum of the old configuration and one of the new.
    reconfig: Option<(Zxid, crate::types::Membership, Bytes)>,
    /// A reconfig made another server the designated leader: this one commits and
    /// proposes nothing more (ZooKeeper's `allowedToCommit = false`) and steps down once
    /// its followers, told by COMMITANDACTIVATE, have left (the quorum check of `tick`).
    pub(crate) stepping_down: Option<u64>,
    last_proposed: Zxid,
    phase_deadline: u64,
    next_half_tick: u64,
    tick_skip: bool,
}

impl Leader {
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    pub fn acked_epoch(&self) -> Option<Epoch> {
        match self.phase {
            Phase::Sync | Phase::Broadcast => self.epoch,
            _ => None,
        }
    }

    pub fn learner_ids(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.learners.keys().copied()
    }

    /// The synced (UPTODATE) followers, voters or not (`Leader.isQuorumSynced`'s view).
    pub fn synced_followers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.learners.iter().filter(|(_, h)| h.state == HState::UpToDate && !h.observer).map(|(s, _)| *s)
    }

    /// Whether a reconfig proposal awaits its quorums.
    pub fn reconfig_in_progress(&self) -> bool {
        self.reconfig.is_some()
    }

    /// Connected learners, and the synced (UPTODATE) followers and observers, for `mntr`.
    pub fn learner_summary(&self) -> LearnerSummary {
        let mut s = LearnerSummary { learners: self.learners.len(), ..Default::default() };
        for h in self.learners.values().filter(|h| h.state == HState::UpToDate) {
            if h.observer {
                s.synced_observers += 1;
            } else {
                s.synced_followers += 1;
            }
        }
        s
    }

    /// ZooKeeper's `zk_peer_state` phase name.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Broadcast => "broadcast",
            Phase::Sync => "synchronization",
            _ => "discovery",
        }
    }

    pub fn next_zxid(&self, cfg: &Config) -> Result<Zxid, ProposeError> {
        if self.phase != Phase::Broadcast || self.stepping_down.is_some() {
            return Err(ProposeError::NotLeader);
        }
        let epoch = self.epoch.expect("established leader has an epoch");
        if self.last_proposed.counter() == u32::MAX {
            return Err(ProposeError::ZxidExhausted(epoch));
        }
        if self.outstanding.len() >= cfg.outstanding_proposals_max {
            return Err(ProposeError::Busy);
        }
        Ok(self.last_proposed.next())
    }
}

impl Node {
    pub(crate) fn ldr(&mut self) -> &mut Leader {
        match &mut self.role {
            Role::Leading(l) => l,
            _ => unreachable!("not leading"),
        }
    }

    fn leader_ref(&self) -> &Leader {
        match &self.role {
            Role::Leading(l) => l,
            _ => unreachable!("not leading"),
        }
    }

    pub(crate) fn become_leader(&mut self) {
        let limit = self.ticks(self.cfg.init_limit);
        let l = Leader {
            phase: Phase::Discovery,
            epoch: None,
            max_accepted: self.accepted_epoch,
            connecting: BTreeSet::from([self.cfg.my_id]),
            electing: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            summary: (self.current_epoch, self.last_logged()),
            epoch_durable: false,
            learners: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            reconfig: None,
            stepping_down: None,
            last_proposed: Zxid::ZERO,
            phase_deadline: self.now + limit,
            next_half_tick: self.now + self.half_tick(),
            tick_skip: true,
        };
        self.set_role(Role::Leading(Box::new(l)));
        self.leader_maybe_choose_epoch();
        // Learners that connected while this server was still electing (recent ones only).
        let early = std::mem::take(&mut self.early_learners);
        let horizon = self.now.saturating_sub(self.ticks(self.cfg.init_limit));
        for (from, (at, msg)) in early {
            if at >= horizon && matches!(self.role, Role::Leading(_)) {
                self.leader_step(from, msg);
            }
        }
    }

    /// `getEpochToPropose`: once a quorum has connected, one above every accepted epoch.
    fn leader_maybe_choose_epoch(&mut self) {
        let cfg_ok = self.cfg.is_quorum(&self.leader_ref().connecting);
        let l = self.ldr();
        if l.phase != Phase::Discovery || l.epoch.is_some() || !cfg_ok {
            return;
        }
        let epoch = l.max_accepted.checked_add(1).expect("epoch space exhausted");
        l.epoch = Some(epoch);
        self.accepted_epoch = epoch;
        self.persist(StorageOp::AcceptedEpoch(epoch));
        self.after_durable(After::LeaderEpochAccepted);
    }

    /// The new epoch is in `acceptedEpoch`: tell every connected learner, count ourselves.
    pub(crate) fn leader_epoch_accepted(&mut self) {
        let now = self.now;
        let limit = self.ticks(self.cfg.init_limit);
        let (epoch, waiting) = {
            let l = self.ldr();
            l.phase = Phase::EpochAck;
            l.phase_deadline = now + limit;
            let waiting: Vec<ServerId> = l.learners.iter().filter(|(_, h)| h.state == HState::Connected).map(|(s, _)| *s).collect();
            (l.epoch.expect("chosen"), waiting)
        };
        for s in waiting {
            self.ldr().learners.get_mut(&s).expect("learner").state = HState::LeaderInfoSent;
            self.send(s, Message::LeaderInfo { epoch });
        }
        let me = self.cfg.my_id;
        self.ldr().electing.insert(me);
        self.leader_maybe_finish_discovery();
    }

    /// `waitForEpochAck`: a quorum acked the epoch; write currentEpoch.
    fn leader_maybe_finish_discovery(&mut self) {
        let quorum = self.cfg.is_quorum(&self.leader_ref().electing);
        let me = self.cfg.my_id;
        let l = self.ldr();
        if l.phase != Phase::EpochAck || !quorum || !l.electing.contains(&me) {
            return;
        }
        l.phase = Phase::Sync;
        let epoch = l.epoch.expect("chosen");
        self.current_epoch = epoch;
        self.persist(StorageOp::CurrentEpoch(epoch));
        self.after_durable(After::LeaderEpochCurrent);
    }

    /// currentEpoch and the whole log before it are durable: sync learners, ack NEWLEADER.
    pub(crate) fn leader_epoch_current(&mut self) {
        let now = self.now;
        let limit = self.ticks(self.cfg.init_limit);
        let ready: Vec<ServerId> = {
            let l = self.ldr();
            l.epoch_durable = true;
            l.phase_deadline = now + limit;
            l.learners.iter().filter(|(_, h)| h.state == HState::EpochAcked).map(|(s, _)| *s).collect()
        };
        for s in ready {
            self.leader_sync_learner(s);
        }
        let me = self.cfg.my_id;
        self.ldr().newleader_acks.insert(me);
        self.leader_maybe_establish();
    }

    fn leader_maybe_establish(&mut self) {
        // Leader.lead: a quorum of the configuration in force and of the last one seen
        // proposed (a reconfig txn in this leader's history, committed by establishing).
        let acks = &self.leader_ref().newleader_acks;
        let quorum = self.cfg.is_quorum(acks) && self.last_seen_config().is_none_or(|m| m.is_quorum(acks));
        let l = self.leader_ref();
        if l.phase != Phase::Sync || !quorum || !l.epoch_durable {
            return;
        }
        let epoch = l.epoch.expect("chosen");
        // The initial history is committed now.
        let last = self.last_logged();
        self.deliver_up_to(last);
        let l = self.ldr();
        l.phase = Phase::Broadcast;
        l.last_proposed = Zxid::new(epoch, 0).max(last);
        let acked: Vec<ServerId> = l.learners.iter().filter(|(_, h)| h.state == HState::NewLeaderAcked).map(|(s, _)| *s).collect();
        for s in acked {
            self.ldr().learners.get_mut(&s).expect("learner").state = HState::UpToDate;
            self.send(s, Message::UpToDate);
        }
        self.update_election_vote(epoch);
        if let Some(text) = self.newleader_config(epoch) {
            // Leader.lead after the NEWLEADER quorum: the versioned initial configuration is
            // the one in force now (its learners take it at UPTODATE).
            if self.activate(text, Some(self.cfg.my_id)).is_err() {
                unreachable!("this server's own configuration is readable");
            }
        }
        self.actions.push(Action::Serving { epoch });
    }

    /// ZOOKEEPER-1783, with reconfigEnabled: an initial configuration (version 0) gets the
    /// version of the first NEWLEADER that establishes it; NEWLEADER carries that text.
    /// `None`: the configuration in force goes out as it is.
    fn newleader_config(&self, epoch: Epoch) -> Option<Bytes> {
        if !self.cfg.reconfig_enabled || self.cfg.config_version != 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&self.cfg.config_data);
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("version=")).collect();
        let version = format!("version={:x}", Zxid::new(epoch, 0).0);
        lines.push(&version);
        Some(Bytes::from(lines.join("\n")))
    }

    pub(crate) fn leader_step(&mut self, from: ServerId, msg: Message) {
        let now = self.now;
        if let Message::LearnerInfo { accepted_epoch, observer } = msg {
            // A new connection from `from`; any older one is replaced.
            // A server outside the configuration may follow (a joining server, or one a
            // reconfig removed): its acks count only in a configuration that names it.
            let is_observer = self.cfg.observers.contains(&from);
            let is_voter = self.cfg.is_voter(from);
            if observer != is_observer || self.leader_ref().stepping_down.is_some() {
                return;
            }
            if let Some(epoch) = self.leader_ref().epoch {
                if self.leader_ref().phase == Phase::Broadcast && is_voter && accepted_epoch > epoch {
                    // A voter promised a newer epoch to another leader attempt and can never
                    // follow this one (ZooKeeper leaves it out until the next election). Step
                    // down so that the next epoch is above its promise and everyone can join.
                    self.stats.quorum_lost += 1;
                    self.go_looking();
                    return;
                }
            }
            let l = self.ldr();
            l.learners.insert(
                from,
                Handler {
                    observer,
                    state: HState::Connected,
                    peer_last_zxid: Zxid::ZERO,
                    last_recv: now,
                    unacked: VecDeque::new(),
                    disk: DiskSync::default(),
                    disk_refused: false,
                },
            );
            l.newleader_acks.remove(&from);
            if l.phase == Phase::Discovery {
                l.max_accepted = l.max_accepted.max(accepted_epoch);
                if !observer {
                    l.connecting.insert(from);
                }
                self.leader_maybe_choose_epoch();
            } else {
                let epoch = l.epoch.expect("past discovery");
                if l.phase == Phase::EpochAck || l.phase == Phase::Sync || l.phase == Phase::Broadcast {
                    l.learners.get_mut(&from).expect("inserted").state = HState::LeaderInfoSent;
                    self.send(from, Message::LeaderInfo { epoch });
                }
            }
            return;
        }
        let Some(h) = self.ldr().learners.get_mut(&from) else { return };
        h.last_recv = now;
        match msg {
            Message::AckEpoch { current_epoch, last_zxid } => {
                if h.state != HState::LeaderInfoSent {
                    return;
                }
                h.state = HState::EpochAcked;
                h.peer_last_zxid = last_zxid;
                let observer = h.observer;
                let l = self.ldr();
                if l.phase == Phase::EpochAck {
                    if let Some(ce) = current_epoch {
                        let (my_ce, my_z) = l.summary;
                        if ce > my_ce || (ce == my_ce && last_zxid > my_z) {
                            // "Follower is ahead of the leader": this learner cannot follow us.
                            self.leader_drop_learner(from, true);
                            return;
                        }
                        if !observer {
                            l.electing.insert(from);
                        }
                    }
                    self.leader_maybe_finish_discovery();
                } else if l.epoch_durable {
                    self.leader_sync_learner(from);
                }
            }
            Message::Ack { zxid } => self.leader_ack(from, zxid),
            Message::Ping { .. } => {
                // Session touches from the learner: tracked by the host's session layer later.
            }
            _ => {
                // Anything else from a learner is a protocol error on that connection.
                self.leader_drop_learner(from, true);
            }
        }
    }

    /// An ACK: NEWLEADER's, the post-UPTODATE one (ignored), or proposals up to `zxid`.
    pub(crate) fn leader_ack(&mut self, from: ServerId, zxid: Zxid) {
        let me = self.cfg.my_id;
        let l = self.ldr();
        let Some(epoch) = l.epoch else { return };
        if from != me {
            let Some(h) = l.learners.get_mut(&from) else { return };
            if zxid == Zxid::new(epoch, 0) {
                if h.state == HState::NewLeaderSent {
                    if l.phase == Phase::Broadcast {
                        h.state = HState::UpToDate;
                        self.send(from, Message::UpToDate);
                    } else {
                        h.state = HState::NewLeaderAcked;
                        // Every follower's: the configuration in force and the last one
                        // seen each count their own voters.
                        if !h.observer {
                            l.newleader_acks.insert(from);
                        }
                        self.leader_maybe_establish();
                    }
                }
                return;
            }
            if zxid.counter() == 0 || !h.forwarding() {
                return;
            }
            while h.unacked.front().is_some_and(|(z, _)| *z <= zxid) {
                h.unacked.pop_front();
            }
        }
        if l.learners.get(&from).is_some_and(|h| h.observer) {
            return;
        }
        // Every follower's ack is kept: a configuration counts only its own voters.
        for (_, acks) in l.outstanding.range_mut(..=zxid) {
            acks.insert(from);
        }
        self.leader_try_commit();
    }

    /// Commits, in zxid order, every leading proposal a quorum of voters has.
    fn leader_try_commit(&mut self) {
        loop {
            let l = self.leader_ref();
            if l.stepping_down.is_some() {
                return;
            }
            let Some((&zxid, acks)) = l.outstanding.iter().next() else { return };
            if !self.cfg.is_quorum(acks) {
                return;
            }
            let reconfig = l.reconfig.as_ref().filter(|(z, _, _)| *z == zxid);
            if let Some((_, m, _)) = reconfig {
                if !m.is_quorum(acks) {
                    return;
                }
            }
            // Leader.getDesignatedLeader: this server if it stays a voter, else a new voter
            // that acked the reconfig and the most proposals after it.
            let designated = reconfig.map(|(_, m, _)| self.designated_leader(zxid, m));
            self.ldr().outstanding.remove(&zxid);
            let entry = self.entries_after(self.applied).next().cloned().expect("outstanding proposal is in the log");
            assert_eq!(entry.zxid, zxid, "commit out of order");
            let targets: Vec<(ServerId, bool)> =
                self.leader_ref().learners.iter().filter(|(_, h)| h.forwarding()).map(|(s, h)| (*s, h.observer)).collect();
            for (s, observer) in targets {
                match (observer, designated) {
                    (true, None) => self.send(s, Message::Inform(entry.clone())),
                    (false, None) => self.send(s, Message::Commit { zxid }),
                    (true, Some(d)) => self.send(s, Message::InformAndActivate { entry: entry.clone(), leader: d }),
                    (false, Some(d)) => self.send(s, Message::CommitAndActivate { zxid, leader: d }),
                }
            }
            self.deliver_up_to(zxid);
            if let Some(d) = designated {
                let (_, _, text) = self.ldr().reconfig.take().expect("the reconfig being committed");
                // QuorumPeer.processReconfig on the leader: a leader that is not the designated
                // one stops committing and steps down once its followers (told the designated
                // leader) have left.
                if self.activate(text, Some(d)).is_err() {
                    unreachable!("the reconfig's configuration was parsed when proposed");
                }
            }
        }
    }

    /// A reconfig txn (`propose` with the new configuration `text`, already checked by prep):
    /// it commits once a quorum of the current configuration and one of `text`'s acked it;
    /// then COMMITANDACTIVATE / INFORMANDACTIVATE go out and the configuration is activated.
    pub(crate) fn leader_propose_reconfig(&mut self, zxid: Zxid, data: Bytes, text: Bytes) -> Result<(), ProposeError> {
        let m = crate::types::Membership::parse(&text).map_err(|e| ProposeError::BadConfig(e.to_string()))?;
        if let Role::Leading(l) = &self.role {
            if l.reconfig.is_some() {
                return Err(ProposeError::ReconfigInProgress);
            }
        }
        self.leader_propose(zxid, data)?;
        self.ldr().reconfig = Some((zxid, m, text));
        Ok(())
    }

    pub(crate) fn leader_propose(&mut self, zxid: Zxid, data: Bytes) -> Result<(), ProposeError> {
        let next = match &self.role {
            Role::Leading(l) => l.next_zxid(&self.cfg),
            _ => Err(ProposeError::NotLeader),
        };
        let next = match next {
            Ok(n) => n,
            Err(ProposeError::ZxidExhausted(e)) => {
                // ZooKeeper's XidRolloverException: a new election, which brings a new epoch.
                self.go_looking();
                return Err(ProposeError::ZxidExhausted(e));
            }
            Err(e) => return Err(e),
        };
        if zxid != next {
            return Err(ProposeError::WrongZxid { expected: next, got: zxid });
        }
        let entry = Entry { zxid, data };
        let now = self.now;
        let l = self.ldr();
        l.last_proposed = zxid;
        l.outstanding.insert(zxid, AckSet::new());
        let targets: Vec<ServerId> = l
            .learners
            .iter_mut()
            .filter(|(_, h)| h.forwarding() && !h.observer)
            .map(|(s, h)| {
                h.unacked.push_back((zxid, now));
                *s
            })
            .collect();
        for s in targets {
            self.send(s, Message::Proposal(entry.clone()));
        }
        self.append(entry);
        self.after_durable(After::SelfAck(zxid));
        Ok(())
    }

    /// `Leader.getDesignatedLeader` for the reconfig at `zxid` with new configuration `m`.
    fn designated_leader(&self, zxid: Zxid, m: &crate::types::Membership) -> ServerId {
        let me = self.cfg.my_id;
        if m.voters.contains(&me) {
            return me;
        }
        let l = self.leader_ref();
        let mut candidates: BTreeSet<ServerId> =
            l.outstanding.get(&zxid).map(|a| a.iter().copied().filter(|s| m.voters.contains(s) && *s != me).collect()).unwrap_or_default();
        let mut best = *candidates.iter().next().expect("a new quorum acked the reconfig");
        for (_, acks) in l.outstanding.range(zxid.next()..) {
            candidates.retain(|s| acks.contains(s));
            match candidates.iter().next() {
                None => return best,
                Some(c) => best = *c,
            }
            if candidates.len() == 1 {
                return best;
            }
        }
        best
    }

    /// `syncFollower` + `startForwarding` + NEWLEADER for one learner whose ACKEPOCH is in.
    fn leader_sync_learner(&mut self, sid: ServerId) {
        let (f, established) = {
            let l = self.leader_ref();
            (l.learners[&sid].peer_last_zxid, l.phase == Phase::Broadcast)
        };
        // The history a learner is synced to: before establishment the whole log (it all
        // becomes committed with NEWLEADER), after it what is committed.
        let sync_point = if established { self.applied } else { self.last_logged() };
        let window: Vec<&Entry> = self.log.iter().take_while(|e| e.zxid <= sync_point).collect();
        let (min, max) = match (window.first(), window.last()) {
            (Some(a), Some(b)) => (a.zxid, b.zxid),
            _ => (sync_point, sync_point),
        };
        let new_epoch_zxid = f.counter() == 0;
        let mut plan: Vec<Message> = Vec::new();
        let mut queued = f;
        let mut snap = true;
        if f == sync_point {
            plan.push(Message::Diff { zxid: f });
            snap = false;
        } else if f > max && !new_epoch_zxid {
            plan.push(Message::Trunc { zxid: max });
            queued = max;
            snap = false;
        } else if min <= f && f <= max {
            // queueCommittedProposals
            let mut need_op = true;
            let mut prev: Option<Zxid> = None;
            let mut cross_epoch = false;
            for e in &window {
                if e.zxid < f {
                    prev = Some(e.zxid);
                    continue;
                }
                if need_op {
                    if e.zxid == f {
                        plan.push(Message::Diff { zxid: max });
                        need_op = false;
                        continue;
                    }
                    if new_epoch_zxid {
                        plan.push(Message::Diff { zxid: max });
                        need_op = false;
                    } else if e.zxid > f {
                        if e.zxid.epoch() != f.epoch() {
                            cross_epoch = true;
                            break;
                        }
                        plan.push(Message::Trunc { zxid: prev.expect("an entry below f exists since f >= min") });
                        need_op = false;
                    }
                }
                if e.zxid <= queued {
                    continue;
                }
                plan.push(Message::Proposal((*e).clone()));
                plan.push(Message::Commit { zxid: e.zxid });
                queued = e.zxid;
            }
            if need_op && new_epoch_zxid && !cross_epoch {
                plan.push(Message::Diff { zxid: max });
                need_op = false;
            }
            if cross_epoch || need_op {
                plan.clear();
                queued = f;
            } else {
                snap = false;
            }
        }
        let behind_window = window.first().is_some_and(|first| f < first.zxid) && f.counter() != 0;
        if snap && behind_window && self.cfg.txn_log_sync && !self.leader_ref().learners[&sid].disk_refused {
            // `db.getProposalsFromTxnLog`: ask the host for the logged txns after `f`.
            let h = self.ldr().learners.get_mut(&sid).expect("learner");
            h.state = HState::ReadingLog;
            h.disk = DiskSync { sent: f, started: false, rereads: 0 };
            self.actions.push(Action::ReadLog { to: sid, after: f });
            return;
        }
        if snap {
            plan.clear();
            queued = self.applied;
            self.stats.snap_syncs += 1;
            self.actions.push(Action::SendSnapshot { to: sid, zxid: self.applied });
        } else if matches!(plan.first(), Some(Message::Trunc { .. })) {
            self.stats.trunc_syncs += 1;
        } else {
            self.stats.diff_syncs += 1;
        }
        self.leader_start_forwarding(sid, queued, plan);
    }

    /// `startForwarding` + NEWLEADER: after `plan` (the sync so far, up to `queued`), the
    /// rest of the history (committed), then the proposals in flight, then NEWLEADER.
    fn leader_start_forwarding(&mut self, sid: ServerId, queued: Zxid, mut plan: Vec<Message>) {
        let (observer, established, epoch) = {
            let l = self.leader_ref();
            (l.learners[&sid].observer, l.phase == Phase::Broadcast, l.epoch.expect("chosen"))
        };
        let sync_point = if established { self.applied } else { self.last_logged() };
        let now = self.now;
        let mut unacked = VecDeque::new();
        for e in self.entries_after(queued) {
            if e.zxid <= sync_point {
                plan.push(Message::Proposal(e.clone()));
                plan.push(Message::Commit { zxid: e.zxid });
            } else if !observer {
                plan.push(Message::Proposal(e.clone()));
                unacked.push_back((e.zxid, now));
            }
        }
        let config = self.newleader_config(epoch).unwrap_or_else(|| self.cfg.config_data.clone());
        plan.push(Message::NewLeader { zxid: Zxid::new(epoch, 0), config });
        let h = self.ldr().learners.get_mut(&sid).expect("learner");
        h.state = HState::NewLeaderSent;
        h.unacked = unacked;
        for m in plan {
            self.send(sid, m);
        }
    }

    /// What the host read of the txn log for `sid`'s DIFF (see [`LogRead`]).
    pub(crate) fn leader_log_read(&mut self, sid: ServerId, read: LogRead) {
        let Role::Leading(l) = &self.role else { return };
        let Some(h) = l.learners.get(&sid) else { return };
        if h.state != HState::ReadingLog {
            return; // a read for an older sync of this learner
        }
        let disk = h.disk;
        let established = l.phase == Phase::Broadcast;
        let sync_point = if established { self.applied } else { self.last_logged() };
        // The window's first committed txn: the disk's txns must reach it.
        let window_min = self.log.front().map(|e| e.zxid).filter(|z| *z <= sync_point);
        match read {
            LogRead::Unavailable | LogRead::End if !disk.started => {
                // Nothing sent yet: SNAP, as `syncFollower` falls back to.
                let h = self.ldr().learners.get_mut(&sid).expect("learner");
                h.disk_refused = true;
                h.state = HState::EpochAcked;
                self.actions.push(Action::StopReadLog { to: sid });
                self.leader_sync_learner(sid);
            }
            LogRead::Unavailable => {
                self.actions.push(Action::StopReadLog { to: sid });
                self.leader_drop_learner(sid, true);
            }
            LogRead::End => {
                // The log ended short of the window (txns committed while it was read
                // left the window): read on from the last one sent, a few times.
                let h = self.ldr().learners.get_mut(&sid).expect("learner");
                if h.disk.rereads >= LOG_REREADS_MAX {
                    self.actions.push(Action::StopReadLog { to: sid });
                    self.leader_drop_learner(sid, true);
                    return;
                }
                h.disk.rereads += 1;
                let after = h.disk.sent;
                self.actions.push(Action::ReadLog { to: sid, after });
            }
            LogRead::Entries(entries) => {
                let Some(window_min) = window_min else {
                    // No committed window to join (cannot happen with a non-empty window
                    // at the start; the window only moves forward): start over.
                    self.actions.push(Action::StopReadLog { to: sid });
                    self.leader_drop_learner(sid, true);
                    return;
                };
                let mut plan = Vec::new();
                let mut sent = disk.sent;
                if !disk.started {
                    // queueCommittedProposals: DIFF up to the window's last committed txn.
                    plan.push(Message::Diff { zxid: sync_point });
                    self.stats.diff_syncs += 1;
                    self.stats.diff_from_log_syncs += 1;
                }
                let mut joined = false;
                for e in entries {
                    assert!(e.zxid > sent, "the host's log read went backwards: {} after {}", e.zxid, sent);
                    if e.zxid >= window_min {
                        // The log reached the window: it holds the rest. Both are the one
                        // log, without gaps: the window's first txn is the next one.
                        if e.zxid != window_min {
                            self.actions.push(Action::StopReadLog { to: sid });
                            self.leader_drop_learner(sid, true);
                            return;
                        }
                        joined = true;
                        break;
                    }
                    sent = e.zxid;
                    plan.push(Message::Proposal(e));
                    plan.push(Message::Commit { zxid: sent });
                }
                let h = self.ldr().learners.get_mut(&sid).expect("learner");
                h.disk.started = true;
                h.disk.sent = sent;
                if joined {
                    h.state = HState::EpochAcked;
                    self.actions.push(Action::StopReadLog { to: sid });
                    self.leader_start_forwarding(sid, sent, plan);
                } else {
                    for m in plan {
                        self.send(sid, m);
                    }
                }
            }
        }
    }

    /// Forgets a learner (its connection is closed).
    pub(crate) fn leader_drop_learner(&mut self, sid: ServerId, close: bool) {
        let Role::Leading(l) = &mut self.role else { return };
        if let Some(h) = l.learners.get(&sid) {
            if h.state == HState::ReadingLog {
                self.actions.push(Action::StopReadLog { to: sid });
            }
        }
        let Role::Leading(l) = &mut self.role else { return };
        if l.learners.remove(&sid).is_some() {
            self.stats.learners_dropped += 1;
            l.newleader_acks.remove(&sid);
            if close {
                self.actions.push(Action::Disconnect { peer: sid });
            }
        }
    }

    pub(crate) fn leader_tick(&mut self) {
        let now = self.now;
        let (phase, deadline) = {
            let l = self.leader_ref();
            (l.phase, l.phase_deadline)
        };
        if phase != Phase::Broadcast && now > deadline {
            // Timeout while waiting for epoch / epoch acks / NEWLEADER acks from a quorum.
            self.stats.quorum_lost += 1;
            self.go_looking();
            return;
        }
        if self.leader_ref().stepping_down.is_some_and(|since| now > since + self.ticks(self.cfg.sync_limit)) {
            // Not the designated leader: its followers have had syncLimit to leave.
            self.go_looking();
            return;
        }
        // Learners silent for too long, or sitting on an old proposal, are dropped.
        let init = self.ticks(self.cfg.init_limit);
        let sync = self.ticks(self.cfg.sync_limit);
        let dead: Vec<ServerId> = self
            .leader_ref()
            .learners
            .iter()
            .filter(|(_, h)| {
                let limit = if matches!(h.state, HState::NewLeaderAcked | HState::UpToDate) { sync } else { init };
                now > h.last_recv + limit || h.unacked.front().is_some_and(|(_, t)| now > t + sync)
            })
            .map(|(s, _)| *s)
            .collect();
        for s in dead {
            self.leader_drop_learner(s, true);
        }
        if now < self.leader_ref().next_half_tick {
            return;
        }
        let half = self.half_tick();
        let me = self.cfg.my_id;
        let l = self.ldr();
        l.next_half_tick = now + half;
        if !l.tick_skip && l.phase == Phase::Broadcast {
            let mut synced: BTreeSet<ServerId> = l.learners.keys().copied().collect();
            synced.insert(me);
            // Leader.lead's syncedAckSet: the configuration in force and the last one seen
            // proposed.
            if !self.cfg.is_quorum(&synced) || self.last_seen_config().is_some_and(|m| !m.is_quorum(&synced)) {
                self.stats.quorum_lost += 1;
                self.go_looking();
                return;
            }
        }
        let l = self.ldr();
        l.tick_skip = !l.tick_skip;
        let last = l.last_proposed;
        let pingable: Vec<ServerId> = l.learners.iter().filter(|(_, h)| h.forwarding()).map(|(s, _)| *s).collect();
        for s in pingable {
            self.send(s, Message::Ping { zxid: last, data: Bytes::new() });
        }
    }
}
