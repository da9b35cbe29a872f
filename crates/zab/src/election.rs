//! Fast leader election (ZooKeeper's `FastLeaderElection.lookForLeader` and its `Messenger`),
//! as a state machine on ticks instead of a thread polling a queue.
//!
//! A LOOKING server proposes itself (its current epoch, last zxid, sid), adopts any better
//! proposal it hears (ordered by peer epoch, then zxid, then sid; only voters can be
//! proposed), and re-broadcasts whenever its proposal changes. When a quorum of voters in its
//! election round propose the same, it waits `finalizeWait` for a better proposal and then
//! decides: LEADING if the winner is itself, else FOLLOWING (or OBSERVING). Notifications from
//! servers already LEADING / FOLLOWING let a late server join an established ensemble once a
//! quorum agrees on the leader and the leader itself says it is LEADING. When nothing arrives
//! for the notification timeout, the server re-sends and doubles the timeout (up to the max).
//! Servers not LOOKING answer LOOKING servers with the vote they stand by.

use std::collections::BTreeMap;

use bytes::Bytes;

use rzk_proto::quorum::ServerState;

use crate::message::{Message, Vote};
use crate::node::{Node, Role};
use crate::types::{Config, LearnerType, Membership, ServerId};

pub(crate) struct Election {
    /// The election round (`logicalclock`).
    pub logicalclock: i64,
    /// (leader, zxid, peer epoch) this server currently proposes.
    pub proposed: (i64, i64, i64),
    recvset: BTreeMap<ServerId, Vote>,
    outofelection: BTreeMap<ServerId, Vote>,
    not_timeout: u64,
    next_resend: u64,
    finalize_at: Option<u64>,
    /// The vote this server stands by when not LOOKING (the last election's outcome).
    pub current_vote: Vote,
    /// An observer's election delay: LOOKING, its round starts at this tick.
    pub start_at: Option<u64>,
}

impl Election {
    pub fn new(cfg: &Config) -> Election {
        Election {
            logicalclock: 0,
            proposed: (i64::MIN, i64::MIN, i64::MIN),
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            not_timeout: cfg.min_notification_ticks as u64,
            next_resend: 0,
            finalize_at: None,
            current_vote: Vote { state: ServerState::Looking, leader: cfg.my_id.0, zxid: 0, election_epoch: 0, peer_epoch: 0 },
            start_at: None,
        }
    }
}

/// `Vote.equals`: LOOKING votes match on everything; votes of servers out of election match
/// on leader and peer epoch only (ZOOKEEPER-1805).
fn same_vote(a: &Vote, b: &Vote) -> bool {
    if a.state == ServerState::Looking || b.state == ServerState::Looking {
        a.leader == b.leader && a.zxid == b.zxid && a.election_epoch == b.election_epoch && a.peer_epoch == b.peer_epoch
    } else {
        a.leader == b.leader && a.peer_epoch == b.peer_epoch
    }
}

impl Node {
    /// `getInitId` and friends: a voter proposes itself; an observer, or a participant the
    /// configuration does not name (removed by a reconfig), proposes nobody.
    fn init_vote(&self) -> (i64, i64, i64) {
        match self.cfg.learner_type() {
            LearnerType::Participant if self.cfg.is_voter(self.cfg.my_id) => {
                (self.cfg.my_id.0, self.last_logged().0, self.current_epoch as i64)
            }
            _ => (i64::MIN, i64::MIN, i64::MIN),
        }
    }

    fn election_voter(&self, s: ServerId) -> bool {
        self.cfg.is_voter(s) || self.last_seen_config().is_some_and(|m| m.voters.contains(&s))
    }

    /// `totalOrderPredicate`: is (new) a better proposal than (cur)?
    fn total_order(&self, new: (i64, i64, i64), cur: (i64, i64, i64)) -> bool {
        // FastLeaderElection.totalOrderPredicate: a voter of weight 0 is never proposed.
        if !self.election_voter(ServerId(new.0)) || self.cfg.weight(ServerId(new.0)) == 0 {
            return false;
        }
        let (nid, nz, ne) = new;
        let (cid, cz, ce) = cur;
        ne > ce || (ne == ce && (nz > cz || (nz == cz && nid > cid)))
    }

    /// Starts a new election round (`lookForLeader`'s preamble).
    pub(crate) fn start_looking(&mut self) {
        self.stats.elections += 1;
        self.set_role(Role::Looking);
        let init = self.init_vote();
        let e = &mut self.election;
        e.start_at = None;
        e.logicalclock += 1;
        e.proposed = init;
        e.recvset.clear();
        e.outofelection.clear();
        e.not_timeout = self.cfg.min_notification_ticks as u64;
        e.next_resend = self.now + e.not_timeout;
        e.finalize_at = None;
        self.send_notifications();
    }

    fn proposal_vote(&self) -> Vote {
        let (leader, zxid, peer_epoch) = self.election.proposed;
        Vote { state: ServerState::Looking, leader, zxid, election_epoch: self.election.logicalclock, peer_epoch }
    }

    /// To every voter, ourselves included (through the loopback).
    fn send_notifications(&mut self) {
        let v = self.proposal_vote();
        let mut voters: std::collections::BTreeSet<ServerId> = self.cfg.voters.clone();
        if let Some(m) = self.last_seen_config() {
            voters.extend(m.voters.iter().copied());
        }
        for s in voters {
            if s == self.cfg.my_id {
                self.loopback.push_back(v);
            } else {
                self.send_vote(s, v);
            }
        }
    }

    /// A notification, preceded with reconfig enabled by the configuration it carries.
    fn send_vote(&mut self, to: ServerId, v: Vote) {
        if self.cfg.reconfig_enabled {
            let c = self.cfg.config_data.clone();
            self.send(to, Message::ElectionConfig(c));
        }
        self.send(to, Message::Notification(v));
    }

    /// A notification's configuration (FastLeaderElection): a LOOKING server takes a newer
    /// one (committed: only activated configurations are sent) and starts the round again.
    pub(crate) fn election_config(&mut self, text: Bytes) {
        if matches!(self.role, Role::Looking) {
            // Unreadable bytes from a peer are ignored, as a malformed notification is.
            let _ = self.activate(text, None);
        }
    }

    /// The vote a non-LOOKING server answers with.
    fn standing_vote(&self, election_epoch: i64) -> Vote {
        let c = self.election.current_vote;
        Vote { state: self.state(), leader: c.leader, zxid: c.zxid, election_epoch, peer_epoch: c.peer_epoch }
    }

    /// The Messenger's receive path: answer where FastLeaderElection answers, then hand the
    /// notification to the election if LOOKING.
    pub(crate) fn election_receive(&mut self, from: ServerId, v: Vote) {
        if !self.election_voter(from) {
            // From an observer, or a server outside the configuration (one a reconfig
            // removed, or a joining one): answer at once with what we stand by, as
            // FastLeaderElection answers a sender that is not a valid voter.
            let lc = self.election.logicalclock;
            let mut ans = self.standing_vote(lc);
            if self.state() == ServerState::Looking {
                ans.state = ServerState::Looking;
            }
            self.send_vote(from, ans);
            return;
        }
        if matches!(self.role, Role::Looking) {
            if self.election.start_at.is_some() {
                // An observer's election delay: its round has not started (ZooKeeper queues
                // the notification; the round's own notifications bring the answers again).
                return;
            }
            if v.state == ServerState::Looking && v.election_epoch < self.election.logicalclock {
                let p = self.proposal_vote();
                self.send_vote(from, p);
            }
            self.election_receive_inner(from, v);
        } else if v.state == ServerState::Looking {
            let ee = self.election.current_vote.election_epoch;
            let ans = self.standing_vote(ee);
            self.send_vote(from, ans);
        }
    }

    /// `lookForLeader`'s loop body for one notification.
    pub(crate) fn election_receive_inner(&mut self, from: ServerId, n: Vote) {
        if !matches!(self.role, Role::Looking) {
            return;
        }
        // Any notification resets the silence timer (the poll returned).
        self.election.next_resend = self.now + self.election.not_timeout;
        if !(self.election_voter(from) && self.election_voter(ServerId(n.leader))) {
            return;
        }
        let nv = (n.leader, n.zxid, n.peer_epoch);
        if self.election.finalize_at.is_some() {
            // Finalizing: only a better proposal matters; others are dropped, as in ZooKeeper.
            if !self.total_order(nv, self.election.proposed) {
                return;
            }
            self.election.finalize_at = None;
        }
        match n.state {
            ServerState::Looking => {
                let lc = self.election.logicalclock;
                if n.election_epoch > lc {
                    self.election.logicalclock = n.election_epoch;
                    self.election.recvset.clear();
                    let init = self.init_vote();
                    self.election.proposed = if self.total_order(nv, init) { nv } else { init };
                    self.send_notifications();
                } else if n.election_epoch < lc {
                    return;
                } else if self.total_order(nv, self.election.proposed) {
                    self.election.proposed = nv;
                    self.send_notifications();
                }
                self.election.recvset.insert(from, Vote { state: ServerState::Looking, ..n });
                let p = self.proposal_vote();
                if self.has_quorum_for(&self.election.recvset, &p) {
                    self.election.finalize_at = Some(self.now + self.cfg.finalize_wait_ticks as u64);
                }
            }
            ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => {
                if n.election_epoch == self.election.logicalclock {
                    self.election.recvset.insert(from, n);
                    if self.has_leader_quorum_for(&self.election.recvset, &n)
                        && self.check_leader(&self.election.recvset, n.leader, n.election_epoch)
                    {
                        self.decide(n.leader, n.zxid, n.election_epoch, n.peer_epoch);
                        return;
                    }
                }
                self.election.outofelection.insert(from, n);
                if self.has_leader_quorum_for(&self.election.outofelection, &n)
                    && self.check_leader(&self.election.outofelection, n.leader, n.election_epoch)
                {
                    self.election.logicalclock = n.election_epoch;
                    self.decide(n.leader, n.zxid, n.election_epoch, n.peer_epoch);
                }
            }
        }
    }

    /// `getVoteTracker(votes, vote).hasAllQuorums()`.
    fn has_quorum_for(&self, votes: &BTreeMap<ServerId, Vote>, v: &Vote) -> bool {
        self.quorum_in(votes, v, self.last_seen_config())
    }

    /// The votes for `v` hold a quorum of the configuration in force and of `seen`, if any.
    fn quorum_in(&self, votes: &BTreeMap<ServerId, Vote>, v: &Vote, seen: Option<&Membership>) -> bool {
        let same = || votes.iter().filter(|(_, x)| same_vote(x, v)).map(|(s, _)| s);
        self.cfg.is_quorum(same()) && seen.is_none_or(|m| m.is_quorum(same()))
    }

    /// `has_quorum_for` for a leader already chosen (votes of FOLLOWING / LEADING servers).
    /// The last configuration seen proposed counts only while it may have been committed: a
    /// leader of a later epoch whose history ends before that proposal was elected by a quorum
    /// of the configuration in force, and so holds every txn committed before its epoch; the
    /// proposal is not among them, and will be truncated when this server syncs. Beyond
    /// ZooKeeper, whose FastLeaderElection keeps requiring the new quorum there: a member that
    /// logged a reconfig the ensemble then lost would otherwise stay LOOKING for good (a
    /// simulator liveness failure, seed 2102).
    fn has_leader_quorum_for(&self, votes: &BTreeMap<ServerId, Vote>, v: &Vote) -> bool {
        let lost = |m: &&Membership| v.peer_epoch > rzk_proto::Zxid(m.version).epoch() as i64 && v.zxid < m.version;
        self.quorum_in(votes, v, self.last_seen_config().filter(|m| !lost(m)))
    }

    /// `checkLeader`: a leader other than us must have told us it is LEADING; if it is us,
    /// the vote must be from our round.
    fn check_leader(&self, votes: &BTreeMap<ServerId, Vote>, leader: i64, election_epoch: i64) -> bool {
        if leader != self.cfg.my_id.0 {
            matches!(votes.get(&ServerId(leader)), Some(v) if v.state == ServerState::Leading)
        } else {
            self.election.logicalclock == election_epoch
        }
    }

    pub(crate) fn election_tick(&mut self) {
        if let Some(at) = self.election.start_at {
            if self.now >= at {
                self.start_looking();
            }
            return;
        }
        if let Some(at) = self.election.finalize_at {
            if self.now >= at {
                let (l, z, pe) = self.election.proposed;
                let lc = self.election.logicalclock;
                self.decide(l, z, lc, pe);
                return;
            }
        }
        if self.now >= self.election.next_resend {
            self.send_notifications();
            let e = &mut self.election;
            e.not_timeout = (e.not_timeout * 2).min(self.cfg.max_notification_ticks as u64);
            e.next_resend = self.now + e.not_timeout;
        }
    }

    /// The election is over: lead, follow or observe `leader`.
    fn decide(&mut self, leader: i64, zxid: i64, election_epoch: i64, peer_epoch: i64) {
        let state = if leader == self.cfg.my_id.0 {
            ServerState::Leading
        } else if self.cfg.learner_type() == LearnerType::Observer {
            ServerState::Observing
        } else {
            ServerState::Following
        };
        self.election.finalize_at = None;
        self.election.recvset.clear();
        self.election.outofelection.clear();
        self.election.current_vote = Vote { state, leader, zxid, election_epoch, peer_epoch };
        let reconnect_delay = self.cfg.observer_reconnect_delay_ticks;
        if state == ServerState::Leading {
            self.become_leader();
        } else if let Some((master, wrapped)) =
            self.learner_masters.as_mut().filter(|_| state == ServerState::Observing).and_then(|m| m.next_master_wrapped())
        {
            // observerMasterPort: this round's learner master, whoever leads (the leader's
            // own entry fails to connect: nothing listens there; the next round moves on).
            // The reconnect delay only once the whole list has been tried.
            let delay = if wrapped { self.random_ticks_below(reconnect_delay) } else { 0 };
            self.become_learner(master, delay);
        } else {
            // An observer waits its reconnect delay before each connection to the leader.
            let delay = if state == ServerState::Observing { self.random_ticks_below(reconnect_delay) } else { 0 };
            self.become_learner(ServerId(leader), delay);
        }
    }

    /// `updateElectionVote`: once the new epoch is established, stand by it.
    pub(crate) fn update_election_vote(&mut self, epoch: u32) {
        self.election.current_vote.peer_epoch = epoch as i64;
    }
}
