//! [`Node`]: one server's election and ZAB state, driven by its host.
//!
//! Inputs: [`Node::step`] (a message from a peer), [`Node::tick`] (time), [`Node::propose`]
//! (a leader's txn), [`Node::persisted`] (a storage completion), [`Node::disconnected`]
//! (a quorum connection broke). Output: [`Node::take_actions`], an ordered list of
//! [`Action`]s to carry out. The node keeps, in memory, a window of its log: every entry it
//! has not yet delivered as committed, and up to `committed_log_max` committed ones (for DIFF
//! syncs, ZooKeeper's `committedLog`).
//!
//! Roles live in sibling modules: [`crate::election`] (LOOKING), [`crate::leader`] (LEADING:
//! discovery, sync, broadcast), [`crate::learner`] (FOLLOWING / OBSERVING).

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;
use rzk_proto::quorum::ServerState;
use rzk_proto::Zxid;

use crate::election::Election;
use crate::leader::Leader;
use crate::learner::Learner;
use crate::message::Message;
use crate::types::{Action, Config, ConfigError, Entry, Epoch, LearnerType, ProposeError, ServerId, StorageOp};

/// What the host restores from its data directory before starting a node.
///
/// Contract: the log entries at or below `applied` must be the history the snapshot contains
/// (a host must therefore never let a snapshot of its own become durable ahead of an earlier
/// `Truncate` or `InstallSnapshot` that is still in flight), and every entry after `applied`
/// must be there, in order.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// The `acceptedEpoch` file (0 if absent).
    pub accepted_epoch: Epoch,
    /// The `currentEpoch` file (0 if absent).
    pub current_epoch: Epoch,
    /// The zxid the host's state machine is at after loading its snapshot (0 if none).
    pub applied: Zxid,
    /// Log entries in zxid order: every entry after `applied` (not yet known to be
    /// committed; the node delivers them once it learns they are), optionally preceded by
    /// committed ones at or before `applied` (kept for DIFF syncs).
    pub log: Vec<Entry>,
}

/// Something the node does once a storage sequence number is durable.
#[derive(Debug, Clone)]
pub(crate) enum After {
    /// A message that must not leave before the write (ACK, ACKEPOCH, NEWLEADER's ACK).
    Send(ServerId, Message),
    /// Leader: its acceptedEpoch is on disk; LEADERINFO may go out.
    LeaderEpochAccepted,
    /// Leader: its currentEpoch (and with it the whole log) is on disk; sync may start.
    LeaderEpochCurrent,
    /// Leader: its own copy of a proposal is on disk; it counts as its ACK.
    SelfAck(Zxid),
}

pub(crate) enum Role {
    Looking,
    Leading(Box<Leader>),
    Learning(Box<Learner>),
    /// A standalone server ([`crate::standalone`]): its own leader, for good.
    Standalone(crate::standalone::Standalone),
}

/// One server of the ensemble. See the module docs.
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) now: u64,
    pub(crate) accepted_epoch: Epoch,
    pub(crate) current_epoch: Epoch,
    /// The log window (see module docs); zxids strictly increase.
    pub(crate) log: VecDeque<Entry>,
    /// The last zxid delivered to the state machine (all of it committed).
    pub(crate) applied: Zxid,
    pub(crate) role: Role,
    pub(crate) election: Election,
    /// Bumped at every role change; deferred work of an older incarnation is dropped.
    pub(crate) incarnation: u64,
    next_seq: u64,
    durable_seq: u64,
    deferred: VecDeque<(u64, u64, After)>,
    pub(crate) actions: Vec<Action>,
    /// Election notifications to ourselves (FastLeaderElection's loopback).
    pub(crate) loopback: VecDeque<crate::message::Vote>,
    /// FOLLOWERINFO / OBSERVERINFO that arrived while LOOKING (a learner that finished the
    /// election first), with the tick it came: answered if this server becomes leader, as
    /// the connection backlog of a ZooKeeper leader's quorum port holds it. Otherwise the
    /// learner would wait a whole tick before trying again.
    pub(crate) early_learners: std::collections::BTreeMap<ServerId, (u64, Message)>,
    /// ZooKeeper's lastSeenQuorumVerifier: the newest configuration seen proposed (a
    /// reconfig txn in the log, [`Node::saw_config`]) and not yet activated. A leader is
    /// established only with a quorum of it too (`Leader.lead`'s newLeaderProposal).
    pub(crate) last_seen: Option<crate::types::Membership>,
    pub(crate) stats: Stats,
    /// An observer with `syncEnabled=false` delivered txns it did not log since the last
    /// snapshot on disk: before anything is logged again the state is checkpointed.
    pub(crate) unlogged: bool,
    /// An observer with `observerMasterPort`: the voters it syncs from, in turn.
    /// The state of the node's random draws (the observer's delays), from `cfg.random_seed`.
    pub(crate) rng_state: u64,
    pub(crate) learner_masters: Option<crate::observer_master::LearnerMasters>,
}

/// Counters for tests, metrics and the simulator's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub elections: u64,
    /// Syncs this server ran as leader, by kind.
    pub diff_syncs: u64,
    pub trunc_syncs: u64,
    pub snap_syncs: u64,
    /// Of the DIFF syncs, those from the txn log on disk.
    pub diff_from_log_syncs: u64,
    pub learners_dropped: u64,
    pub quorum_lost: u64,
    pub protocol_errors: u64,
    /// Checkpoints of a state delivered without logging (an observer with
    /// `syncEnabled=false` that went on to log: see `StorageOp::Checkpoint`).
    pub checkpoints: u64,
    /// Observers this server synced as a follower's observer master (`observerMasterPort`).
    pub observer_syncs: u64,
}

impl Node {
    /// A node that starts LOOKING (its first notifications are in `take_actions`).
    pub fn new(cfg: Config, restored: Restored) -> Result<Node, ConfigError> {
        let mut n = Node::restore(cfg, restored, Role::Looking)?;
        n.trim_log();
        n.start_looking();
        Ok(n)
    }

    /// A standalone server (see [`crate::standalone`]): one voter, itself; serving at once
    /// (no actions at start). `restored` has no epochs; its log is normally empty (a
    /// standalone host replays its whole log into the state machine, every txn being
    /// committed), and its `applied` is where zxids continue.
    pub fn standalone(mut cfg: Config, restored: Restored) -> Result<Node, ConfigError> {
        if cfg.voters.len() != 1 || !cfg.observers.is_empty() || !cfg.voters.contains(&cfg.my_id) {
            return Err(ConfigError::NotStandalone);
        }
        // Nothing is synced from this log: keep no committed history in memory.
        cfg.committed_log_max = 1;
        Node::restore(cfg, restored, Role::Standalone(Default::default()))
    }

    /// A node in `role` from what its host restored, before any action.
    fn restore(cfg: Config, restored: Restored, role: Role) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let log: VecDeque<Entry> = restored.log.into();
        // Zxids must strictly increase; anything else is a corrupt restore (a host bug).
        for (a, b) in log.iter().zip(log.iter().skip(1)) {
            assert!(a.zxid < b.zxid, "restored log out of order: {} then {}", a.zxid, b.zxid);
        }
        // Built on every server with the setting (used while it is an observer), as
        // ZooKeeper's `updateObserverMasterList`; rebuilt on each activated configuration.
        let learner_masters =
            cfg.observer_master_seed.map(|seed| crate::observer_master::LearnerMasters::new(cfg.voters.iter().copied(), seed));
        Ok(Node {
            rng_state: cfg.random_seed,
            learner_masters,
            election: Election::new(&cfg),
            cfg,
            now: 0,
            accepted_epoch: restored.accepted_epoch.max(restored.current_epoch),
            current_epoch: restored.current_epoch,
            log,
            applied: restored.applied,
            role,
            incarnation: 0,
            next_seq: 1,
            durable_seq: 0,
            deferred: VecDeque::new(),
            actions: Vec::new(),
            loopback: VecDeque::new(),
            early_learners: Default::default(),
            last_seen: None,
            stats: Stats::default(),
            unlogged: false,
        })
    }

    pub fn is_standalone(&self) -> bool {
        matches!(self.role, Role::Standalone(_))
    }

    // ---- inputs ----

    /// A message from `from`.
    pub fn step(&mut self, from: ServerId, msg: Message) {
        if from == self.cfg.my_id || self.is_standalone() {
            return;
        }
        let om = self.om_enabled();
        match msg {
            Message::Notification(v) => self.election_receive(from, v),
            Message::ElectionConfig(text) => self.election_config(text),
            msg => match &mut self.role {
                Role::Leading(_) => self.leader_step(from, msg),
                Role::Learning(l) if l.leader != from && om => self.om_step(from, msg),
                Role::Learning(_) => self.learner_step(from, msg),
                Role::Looking => {
                    if matches!(msg, Message::LearnerInfo { .. }) {
                        self.early_learners.insert(from, (self.now, msg));
                    }
                }
                Role::Standalone(_) => unreachable!("returned above"),
            },
        }
        self.drain_loopback();
    }

    /// One unit of time.
    pub fn tick(&mut self) {
        self.now += 1;
        match &self.role {
            Role::Looking => self.election_tick(),
            Role::Leading(_) => self.leader_tick(),
            Role::Learning(_) => self.learner_tick(),
            Role::Standalone(_) => {}
        }
        self.drain_loopback();
    }

    /// The zxid the next proposal must carry, if this node is an established leader that can
    /// take one. The host's prep step builds the txn header with it.
    pub fn next_zxid(&self) -> Result<Zxid, ProposeError> {
        match &self.role {
            Role::Leading(l) => l.next_zxid(&self.cfg),
            Role::Standalone(_) => Ok(self.standalone_next_zxid()),
            _ => Err(ProposeError::NotLeader),
        }
    }

    /// Proposes a txn at `zxid` (which must be [`Node::next_zxid`]). The txn is logged and
    /// sent to the followers; it is delivered once a quorum of voters has it durable.
    pub fn propose(&mut self, zxid: Zxid, data: Bytes) -> Result<(), ProposeError> {
        if self.is_standalone() {
            return self.standalone_propose(zxid, data);
        }
        let r = self.leader_propose(zxid, data);
        self.drain_loopback();
        r
    }

    /// [`Node::propose`] for a reconfig txn whose new configuration is `text` (a
    /// `QuorumVerifier.toString()` with `version=<zxid>`): see `Leader`'s reconfig rule.
    pub fn propose_reconfig(&mut self, zxid: Zxid, data: Bytes, text: Bytes) -> Result<(), ProposeError> {
        if self.is_standalone() {
            return Err(ProposeError::NotLeader);
        }
        let r = self.leader_propose_reconfig(zxid, data, text);
        self.drain_loopback();
        r
    }

    /// An established leader's view for a reconfig's prep: this server and its synced
    /// followers (voters or not), and whether a reconfig is in flight. `None` otherwise.
    pub fn reconfig_view(&self) -> Option<(BTreeSet<ServerId>, bool)> {
        match &self.role {
            Role::Leading(l) if l.is_established() => {
                let mut synced: BTreeSet<ServerId> = l.synced_followers().collect();
                synced.insert(self.cfg.my_id);
                Some((synced, l.reconfig_in_progress()))
            }
            _ => None,
        }
    }

    /// Every storage operation up to `seq` is durable.
    pub fn persisted(&mut self, seq: u64) {
        if seq <= self.durable_seq {
            return;
        }
        assert!(seq < self.next_seq, "persisted({seq}) but only {} storage ops were issued", self.next_seq - 1);
        self.durable_seq = seq;
        self.release();
        self.standalone_release(seq);
        self.drain_loopback();
    }

    /// What the host read of its txn log for learner `to` (see [`Action::ReadLog`]).
    pub fn log_read(&mut self, to: ServerId, read: crate::LogRead) {
        if let Role::Leading(_) = self.role {
            self.leader_log_read(to, read);
        }
        self.drain_loopback();
    }

    /// The quorum connection to `peer` broke (the transport saw an error or closed it).
    pub fn disconnected(&mut self, peer: ServerId) {
        self.early_learners.remove(&peer);
        match &self.role {
            Role::Leading(_) => self.leader_drop_learner(peer, false),
            Role::Learning(l) if l.leader == peer => self.protocol_error("connection to the leader lost"),
            Role::Learning(_) => self.om_drop(peer, false),
            _ => {}
        }
        self.drain_loopback();
    }

    /// The actions produced since the last call, in the order they must be carried out.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Moves the actions produced so far to the end of `buf`, keeping this buffer's capacity.
    pub fn drain_actions_into(&mut self, buf: &mut Vec<Action>) {
        buf.append(&mut self.actions);
    }

    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    // ---- introspection ----

    pub fn id(&self) -> ServerId {
        self.cfg.my_id
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn state(&self) -> ServerState {
        match &self.role {
            Role::Looking => ServerState::Looking,
            Role::Leading(_) => ServerState::Leading,
            Role::Learning(_) if self.cfg.learner_type() == LearnerType::Observer => ServerState::Observing,
            Role::Learning(_) => ServerState::Following,
            Role::Standalone(_) => ServerState::Leading,
        }
    }
    /// The leader this node follows or is, when not LOOKING.
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Looking => None,
            Role::Leading(_) | Role::Standalone(_) => Some(self.cfg.my_id),
            Role::Learning(l) => Some(l.leader),
        }
    }
    /// An established leader, or a learner after UPTODATE: may serve clients.
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Looking => false,
            Role::Leading(l) => l.is_established(),
            Role::Learning(l) => l.is_up_to_date(),
            Role::Standalone(_) => true,
        }
    }
    /// A leader whose epoch a quorum acknowledged (ACKEPOCH): the epoch is its alone.
    pub fn leading_epoch(&self) -> Option<Epoch> {
        match &self.role {
            Role::Leading(l) => l.acked_epoch(),
            _ => None,
        }
    }
    /// A leader's learners (None unless LEADING).
    pub fn learner_summary(&self) -> Option<crate::leader::LearnerSummary> {
        match &self.role {
            Role::Leading(l) => Some(l.learner_summary()),
            _ => None,
        }
    }
    /// ZooKeeper's ZAB phase name for `zk_peer_state` (discovery / synchronization / broadcast).
    pub fn phase_name(&self) -> &'static str {
        match &self.role {
            Role::Looking => "election",
            Role::Leading(l) => l.phase_name(),
            Role::Learning(l) if l.is_up_to_date() => "broadcast",
            Role::Learning(_) => "synchronization",
            Role::Standalone(_) => "broadcast",
        }
    }
    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted_epoch
    }
    pub fn current_epoch(&self) -> Epoch {
        self.current_epoch
    }
    /// The last zxid in the log (or of the state machine, if newer).
    pub fn last_logged(&self) -> Zxid {
        self.log.back().map(|e| e.zxid).unwrap_or(Zxid::ZERO).max(self.applied)
    }
    /// The last zxid delivered to the state machine.
    pub fn applied(&self) -> Zxid {
        self.applied
    }
    pub fn election_epoch(&self) -> i64 {
        self.election.logicalclock
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The in-memory log window.
    pub fn log_window(&self) -> impl Iterator<Item = &Entry> {
        self.log.iter()
    }

    // ---- helpers for the role modules ----

    pub(crate) fn send(&mut self, to: ServerId, msg: Message) {
        self.actions.push(Action::Send { to, msg });
    }

    /// Issues a storage op and returns its sequence number.
    pub(crate) fn persist(&mut self, op: StorageOp) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.actions.push(Action::Persist { seq, op });
        seq
    }

    /// Runs `after` once everything issued so far is durable (at once if it already is).
    pub(crate) fn after_durable(&mut self, after: After) {
        let seq = self.next_seq - 1;
        self.deferred.push_back((seq, self.incarnation, after));
        if seq <= self.durable_seq {
            self.release();
        }
    }

    /// Runs the deferred work whose writes are durable, in order.
    fn release(&mut self) {
        while let Some((s, _, _)) = self.deferred.front() {
            if *s > self.durable_seq {
                break;
            }
            let (_, inc, after) = self.deferred.pop_front().expect("front");
            if inc != self.incarnation {
                continue;
            }
            match after {
                After::Send(to, msg) => self.send(to, msg),
                After::LeaderEpochAccepted => self.leader_epoch_accepted(),
                After::LeaderEpochCurrent => self.leader_epoch_current(),
                After::SelfAck(z) => self.leader_ack(self.cfg.my_id, z),
            }
        }
    }

    /// Appends an entry to the log window and issues its write; returns the write's seq.
    /// An observer with `syncEnabled=false` keeps the entry in the window only (no write; the
    /// seq returned is the last one issued).
    pub(crate) fn append(&mut self, e: Entry) -> u64 {
        assert!(e.zxid > self.last_logged(), "append {} after {}", e.zxid, self.last_logged());
        if self.keeps_no_log() {
            self.log.push_back(e);
            self.unlogged = true;
            return self.next_seq - 1;
        }
        self.checkpoint_if_unlogged();
        self.log.push_back(e.clone());
        self.persist(StorageOp::Append(e))
    }

    /// A node that delivered txns it did not log (an observer with `syncEnabled=false`), in a
    /// role that logs: the log on disk stops short of what it delivered. The state machine is
    /// stored as a snapshot at `applied`, then the window's undelivered entries are logged.
    pub(crate) fn checkpoint_if_unlogged(&mut self) {
        if !self.unlogged || self.keeps_no_log() {
            return;
        }
        self.unlogged = false;
        self.stats.checkpoints += 1;
        self.persist(StorageOp::Checkpoint { zxid: self.applied });
        let pending: Vec<Entry> = self.entries_after(self.applied).cloned().collect();
        for p in pending {
            self.persist(StorageOp::Append(p));
        }
    }

    /// An observer with `syncEnabled=false`, learning: it writes no txn log.
    pub(crate) fn keeps_no_log(&self) -> bool {
        !self.cfg.sync_enabled && matches!(&self.role, Role::Learning(_)) && self.cfg.learner_type() == LearnerType::Observer
    }

    /// Delivers logged entries up to `upto` (inclusive) to the state machine, in order.
    pub(crate) fn deliver_up_to(&mut self, upto: Zxid) {
        let start = self.log.partition_point(|e| e.zxid <= self.applied);
        let mut last = self.applied;
        let first_new = self.actions.len();
        for e in self.log.iter().skip(start) {
            if e.zxid > upto {
                break;
            }
            debug_assert!(e.zxid > last);
            last = e.zxid;
            self.actions.push(Action::Deliver(e.clone()));
        }
        self.applied = last;
        if self.om_has_observers() {
            // What a follower commits goes on to its observers as INFORM.
            let delivered: Vec<Entry> =
                self.actions[first_new..].iter().filter_map(|a| if let Action::Deliver(e) = a { Some(e.clone()) } else { None }).collect();
            for e in delivered {
                self.om_delivered(e);
            }
        }
        self.trim_log();
    }

    /// Keeps at most `committed_log_max` delivered entries in memory.
    pub(crate) fn trim_log(&mut self) {
        let committed = self.log.partition_point(|e| e.zxid <= self.applied);
        let excess = committed.saturating_sub(self.cfg.committed_log_max);
        self.log.drain(..excess);
    }

    /// Changes role bookkeeping: new incarnation, StateChanged action.
    pub(crate) fn set_role(&mut self, role: Role) {
        self.incarnation += 1;
        self.role = role;
        if matches!(self.role, Role::Leading(_) | Role::Learning(_)) {
            // Before a leader reads its log for a DIFF, or a follower logs.
            self.checkpoint_if_unlogged();
        }
        let state = self.state();
        let leader = self.leader();
        self.actions.push(Action::StateChanged { state, leader, epoch: self.current_epoch });
    }

    /// Something went wrong with the leader or a learner's protocol: back to LOOKING.
    pub(crate) fn protocol_error(&mut self, _why: &'static str) {
        self.stats.protocol_errors += 1;
        self.go_looking();
    }

    /// Runs with the configuration `text` (a `QuorumVerifier.toString()`), as ZooKeeper's
    /// `QuorumPeer.processReconfig`: only a newer version than the one in force is taken;
    /// voters, observers, hierarchy, `config_data` and `config_version` are replaced and
    /// `Action::ConfigActivated` tells the host. A learner whose role changed (voter,
    /// observer, or no longer a member) or whose leader is no longer the one to follow (the
    /// `designated` leader of COMMITANDACTIVATE; without one, a leader no longer a voter)
    /// goes back to LOOKING; a leader that is not the designated one stops committing and
    /// steps down once its followers have left, or after syncLimit (`Leader::stepping_down`);
    /// it takes no new learners meanwhile. A server
    /// outside the new configuration keeps following as a non-voting follower, as
    /// ZooKeeper's does; once LOOKING it votes for nobody and is never elected. Without `reconfig_enabled` nothing is taken, as
    /// ZooKeeper skips it. Returns whether the configuration was taken.
    pub fn activate(&mut self, text: Bytes, designated: Option<ServerId>) -> Result<bool, crate::types::MembershipError> {
        if !self.cfg.reconfig_enabled {
            return Ok(false);
        }
        let m = crate::types::Membership::parse(&text)?;
        if m.version <= self.cfg.config_version {
            return Ok(false);
        }
        let me = self.cfg.my_id;
        // QuorumPeer.updateLearnerType: observer or participant as the new configuration
        // names it; a server it does not name is a (non-voting) participant.
        let observer_before = self.cfg.observers.contains(&me);
        let observer_after = m.observers.contains(&me);
        self.cfg.voters = m.voters;
        self.cfg.observers = m.observers;
        self.cfg.hierarchy = m.hierarchy;
        self.cfg.config_version = m.version;
        self.cfg.config_data = text.clone();
        if self.last_seen.as_ref().is_some_and(|l| l.version <= m.version) {
            self.last_seen = None;
        }
        if let (Some(seed), Some(_)) = (self.cfg.observer_master_seed, &self.learner_masters) {
            // `updateObserverMasterList` on every new configuration: the new voters, shuffled
            // again (the seed mixed with the version: randomness stays an input), tried from
            // the first. A connection to a learner master stays up (a removed follower keeps
            // following as a non-voter, and serving its observers); the next round uses the
            // new list.
            let seed = seed ^ (m.version as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            self.learner_masters = Some(crate::observer_master::LearnerMasters::new(self.cfg.voters.iter().copied(), seed));
        }
        self.actions.push(Action::ConfigActivated { data: text, version: m.version });
        if self.last_seen.is_none() {
            // setQuorumVerifier: the last seen is the one in force now (no `.next` file).
            self.actions.push(Action::LastSeenConfig { data: None });
        }
        // processReconfig compares with the current vote's leader (`updateVote`): for an
        // observer syncing from a follower's observer master, the leader, not that follower.
        let leader = match &self.role {
            Role::Learning(_) => Some(ServerId(self.election.current_vote.leader)),
            _ => self.leader(),
        };
        let leader_change = match designated {
            Some(d) => leader.is_some_and(|l| l != d),
            None => leader.is_some_and(|l| !self.cfg.voters.contains(&l)),
        };
        let stays_leader = match designated {
            Some(d) => d == me,
            None => self.cfg.voters.contains(&me),
        };
        match &self.role {
            Role::Learning(_) if observer_before != observer_after || leader_change => self.go_looking(),
            Role::Leading(l) if !stays_leader => {
                if l.is_established() {
                    let now = self.now;
                    self.ldr().stepping_down = Some(now);
                } else {
                    self.go_looking();
                }
            }
            Role::Looking => self.start_looking(),
            _ => {}
        }
        Ok(true)
    }

    /// A reconfig txn with configuration `text` was logged (proposed, or found in the log at
    /// start-up): as ZooKeeper's `setLastSeenQuorumVerifier`, it is the last configuration
    /// seen if newer than the one in force and than the last seen. Without
    /// `reconfig_enabled` nothing is kept (nothing is activated either). `to_disk`
    /// (`writeToDisk`): the host hears of it (`Action::LastSeenConfig`, the `.next` file).
    pub fn saw_config(&mut self, text: &[u8], to_disk: bool) -> Result<(), crate::types::MembershipError> {
        if !self.cfg.reconfig_enabled {
            return Ok(());
        }
        let m = crate::types::Membership::parse(text)?;
        let newest = self.last_seen.as_ref().map_or(self.cfg.config_version, |l| l.version.max(self.cfg.config_version));
        if m.version > newest {
            self.last_seen = Some(m);
            if to_disk {
                self.actions.push(Action::LastSeenConfig { data: Some(Bytes::copy_from_slice(text)) });
            }
        }
        Ok(())
    }

    /// The last configuration seen proposed, if newer than the one in force.
    pub fn last_seen_config(&self) -> Option<&crate::types::Membership> {
        self.last_seen.as_ref().filter(|m| m.version > self.cfg.config_version)
    }

    /// A random number of ticks below `bound` (ZooKeeper's `ThreadLocalRandom.nextLong`);
    /// 0 when `bound` is 0.
    pub(crate) fn random_ticks_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        crate::observer_master::splitmix64(&mut self.rng_state) % bound
    }

    /// Leaves LEADING / FOLLOWING / OBSERVING for a new election.
    pub(crate) fn go_looking(&mut self) {
        match &self.role {
            Role::Leading(l) => {
                let peers: Vec<ServerId> = l.learner_ids().collect();
                for p in peers {
                    self.actions.push(Action::Disconnect { peer: p });
                }
            }
            Role::Learning(l) => {
                let p = l.leader;
                let observing = l.is_observer();
                let observers: Vec<ServerId> = l.observers.keys().copied().collect();
                self.actions.push(Action::Disconnect { peer: p });
                // An observer master stops with the following (`ObserverMaster.stop`).
                for o in observers {
                    self.actions.push(Action::Disconnect { peer: o });
                }
                // An observer waits before its election (`waitForObserverElectionDelay`),
                // LOOKING meanwhile.
                let delay = if observing { self.random_ticks_below(self.cfg.observer_election_delay_ticks) } else { 0 };
                if delay > 0 {
                    self.set_role(Role::Looking);
                    self.election.start_at = Some(self.now + delay);
                    return;
                }
            }
            Role::Looking => {}
            Role::Standalone(_) => unreachable!("a standalone server never leaves its role"),
        }
        self.start_looking();
    }

    fn drain_loopback(&mut self) {
        // Bounded: a self-notification can cause at most one more round of sends.
        let mut budget = 64;
        while let Some(v) = self.loopback.pop_front() {
            budget -= 1;
            if budget == 0 {
                self.loopback.clear();
                break;
            }
            let me = self.cfg.my_id;
            self.election_receive_inner(me, v);
        }
    }

    /// Entries of the window after `after`, in order (for syncs).
    pub(crate) fn entries_after(&self, after: Zxid) -> impl Iterator<Item = &Entry> {
        let start = self.log.partition_point(|e| e.zxid <= after);
        self.log.iter().skip(start)
    }

    /// Drops window entries above `after` (TRUNC).
    pub(crate) fn truncate_window(&mut self, after: Zxid) {
        let keep = self.log.partition_point(|e| e.zxid <= after);
        self.log.truncate(keep);
        // A proposed configuration whose txn is truncated away was never committed.
        if self.last_seen.as_ref().is_some_and(|l| l.version > after.0) {
            self.last_seen = None;
        }
    }

    pub(crate) fn half_tick(&self) -> u64 {
        (self.cfg.tick_time_ticks as u64 / 2).max(1)
    }

    pub(crate) fn ticks(&self, zk_ticks: u32) -> u64 {
        zk_ticks as u64 * self.cfg.tick_time_ticks as u64
    }
}

/// Voter acks of one proposal.
pub(crate) type AckSet = std::collections::BTreeSet<ServerId>;
