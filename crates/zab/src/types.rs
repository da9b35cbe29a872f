//! The vocabulary shared by election and ZAB: server ids, log entries, the validated
//! configuration, and the outputs ([`Action`], [`StorageOp`]) with their durability contract.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rzk_proto::quorum::ServerState;
use rzk_proto::Zxid;

use crate::message::{Message, SnapData};

/// A server's `myid` (ZooKeeper's `long sid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub i64);

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An epoch: the high 32 bits of a zxid (`acceptedEpoch` / `currentEpoch` files).
pub type Epoch = u32;

/// One transaction as ZAB carries it: its zxid and its serialized bytes (for rzk's server,
/// `TxnHeader` + `Txn` [+ `TxnDigest`], exactly a PROPOSAL's data). The core never looks
/// inside `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub zxid: Zxid,
    pub data: Bytes,
}

/// Participant (votes) or observer (follows without voting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerType {
    Participant,
    Observer,
}

/// The ensemble as this server sees it, and its timing, all in node ticks (the host calls
/// [`crate::Node::tick`] at a fixed rate; `Config::from_ms` converts ZooKeeper's settings).
#[derive(Debug, Clone)]
pub struct Config {
    pub my_id: ServerId,
    /// `server.N=...:participant` lines: they vote and count toward quorums.
    pub voters: BTreeSet<ServerId>,
    /// `server.N=...:observer` lines.
    pub observers: BTreeSet<ServerId>,
    /// ZooKeeper's `tickTime`, in node ticks (at least 2: the leader pings every half tick).
    pub tick_time_ticks: u32,
    /// `initLimit`, in ZooKeeper ticks: discovery and sync must finish within it.
    pub init_limit: u32,
    /// `syncLimit`, in ZooKeeper ticks: a learner silent for longer is dropped.
    pub sync_limit: u32,
    /// FastLeaderElection's `finalizeWait` (200 ms), in node ticks.
    pub finalize_wait_ticks: u32,
    /// `minNotificationInterval` / `maxNotificationInterval`, in node ticks.
    pub min_notification_ticks: u32,
    pub max_notification_ticks: u32,
    /// `ZKDatabase.commitLogCount` (500): committed txns kept in memory for DIFF syncs.
    pub committed_log_max: usize,
    /// A learner behind the in-memory window may be synced from the txn log on disk
    /// ([`Action::ReadLog`]; ZooKeeper's `zookeeper.snapshotSizeFactor` >= 0).
    pub txn_log_sync: bool,
    /// Proposals a leader may have awaiting a quorum before `propose` says `Busy`.
    pub outstanding_proposals_max: usize,
    /// The quorum configuration text sent in notifications and NEWLEADER
    /// (`QuorumVerifier.toString()` in ZooKeeper). Opaque to the core.
    pub config_data: Bytes,
    /// The version of that configuration (`version=` in its text, the zxid of the reconfig
    /// that made it; 0 for a static one). LearnerInfo carries it.
    pub config_version: i64,
    /// `group.N` / `weight.N`: ZooKeeper's QuorumHierarchical decides what a quorum is;
    /// `None`: a majority of the voters (QuorumMaj).
    pub hierarchy: Option<Hierarchy>,
    /// `reconfigEnabled`: without it a newer configuration (NEWLEADER's, a committed
    /// reconfig's) is not taken, as ZooKeeper's `processReconfig` skips it.
    pub reconfig_enabled: bool,
    /// `syncEnabled` (`zookeeper.observer.syncEnabled`, default true): an observer logs the
    /// txns it learns. Without it an observer writes no log (ZooKeeper's
    /// `ObserverZooKeeperServer` runs no `SyncRequestProcessor`): it keeps its epoch files and
    /// the snapshot of a SNAP only, and restarts from that snapshot. Participants always log.
    pub sync_enabled: bool,
    /// `observerMasterPort` on an observer: `Some(seed)` makes it sync from the voters in
    /// turn, in an order shuffled by `seed` (the host's randomness), each OBSERVING round
    /// taking the next, rather than from the leader (see [`crate::observer_master`]). The
    /// host connects to the chosen voter's observer master address. `None`: the leader.
    pub observer_master_seed: Option<u64>,
    /// `observerMasterPort` on a participant: once synced as a follower it serves observers
    /// that connect to it (ZooKeeper's `ObserverMaster`, see [`crate::observer_master`]).
    pub observer_master: bool,
    /// `zookeeper.observer.reconnectDelayMs` in ticks (0: none, ZooKeeper's default): an
    /// observer waits a random time below it before it connects to its leader, or, with
    /// learner masters, each time it has gone round their whole list
    /// (`Observer.waitForReconnectDelay`).
    pub observer_reconnect_delay_ticks: u64,
    /// `zookeeper.observer.election.DelayMs` in ticks (ZooKeeper's default 200 ms; 0: none):
    /// an observer that stops observing waits a random time below it before its election
    /// round starts (`Observer.waitForObserverElectionDelay`).
    pub observer_election_delay_ticks: u64,
    /// The host's randomness for those delays (the simulator's is seeded).
    pub random_seed: u64,
}

/// ZooKeeper's `QuorumHierarchical`: every voter in one group, with a weight (1 unless
/// configured). A set is a quorum when, in more than half of the groups of non-zero
/// weight, its members weigh more than half of the group (integer halves, as ZooKeeper's
/// longs). A voter of weight 0 counts for nothing and is never elected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    group_of: BTreeMap<ServerId, u64>,
    weight: BTreeMap<ServerId, u64>,
    group_weight: BTreeMap<u64, u64>,
    /// Groups whose total weight is not 0.
    groups: usize,
}

impl Hierarchy {
    /// `groups`: group id to its members; `weights`: the configured weights (members
    /// without one weigh 1).
    pub fn new(groups: &BTreeMap<u64, Vec<ServerId>>, weights: &BTreeMap<ServerId, u64>) -> Hierarchy {
        let mut group_of = BTreeMap::new();
        let mut weight = BTreeMap::new();
        let mut group_weight: BTreeMap<u64, u64> = BTreeMap::new();
        for (gid, members) in groups {
            for s in members {
                group_of.insert(*s, *gid);
                let w = weights.get(s).copied().unwrap_or(1);
                weight.insert(*s, w);
                *group_weight.entry(*gid).or_default() += w;
            }
        }
        let groups = group_weight.values().filter(|w| **w != 0).count();
        Hierarchy { group_of, weight, group_weight, groups }
    }

    /// A member's weight (1 for one outside every group, as no such voter exists).
    pub fn weight(&self, s: ServerId) -> u64 {
        self.weight.get(&s).copied().unwrap_or(1)
    }

    /// `QuorumHierarchical.containsQuorum`.
    pub fn contains_quorum<'a>(&self, set: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let mut expansion: BTreeMap<u64, u64> = BTreeMap::new();
        let mut any = false;
        for s in set {
            any = true;
            if let Some(g) = self.group_of.get(s) {
                *expansion.entry(*g).or_default() += self.weight(*s);
            }
        }
        if !any {
            return false;
        }
        let majorities = expansion.iter().filter(|(g, w)| **w > self.group_weight[g] / 2).count();
        majorities > self.groups / 2
    }
}

/// Why a [`Config`] cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no voting members")]
    NoVoters,
    #[error("server {0} is both a voter and an observer")]
    VoterAndObserver(ServerId),
    #[error("my id {0} is neither a voter nor an observer")]
    NotAMember(ServerId),
    #[error("a standalone server is its one voter, with no observers")]
    NotStandalone,
    #[error("{0} must be at least {1}")]
    TooSmall(&'static str, u64),
}

/// The quorum part of a configuration text (`QuorumVerifier.toString()`: `server.N=...`,
/// `group.G=a:b`, `weight.N=w`, `version=<hex>` lines), as a reconfig txn, NEWLEADER or a
/// notification carries it: who votes, who observes, and the hierarchy if any. Addresses
/// are the host's business (its peer transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub voters: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
    pub hierarchy: Option<Hierarchy>,
    /// `version=` (hex); 0 when absent.
    pub version: i64,
}

/// Why a configuration text cannot be taken (a leader's bytes: never a crash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("line {0:?}: not a key=value line")]
    NotKeyValue(String),
    #[error("line {0:?}: bad number")]
    BadNumber(String),
    #[error("no voting members")]
    NoVoters,
    #[error("server {0} is in no group of a hierarchical configuration")]
    NoGroup(ServerId),
}

impl Membership {
    /// `QuorumVerifier.containsQuorum` for this configuration.
    pub fn is_quorum<'a>(&self, set: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let voters = set.into_iter().filter(|s| self.voters.contains(s));
        match &self.hierarchy {
            Some(h) => h.contains_quorum(voters),
            None => 2 * voters.count() > self.voters.len(),
        }
    }

    /// Parses `text` (unknown keys are ZooKeeper's business, not a quorum's: skipped).
    pub fn parse(text: &[u8]) -> Result<Membership, MembershipError> {
        let text = String::from_utf8_lossy(text);
        let mut m = Membership { voters: BTreeSet::new(), observers: BTreeSet::new(), hierarchy: None, version: 0 };
        let mut groups: BTreeMap<u64, Vec<ServerId>> = BTreeMap::new();
        let mut weights: BTreeMap<ServerId, u64> = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (k, v) = line.split_once('=').ok_or_else(|| MembershipError::NotKeyValue(line.to_string()))?;
            let (k, v) = (k.trim(), v.trim());
            let num = |x: &str| x.trim().parse::<i64>().map_err(|_| MembershipError::BadNumber(line.to_string()));
            if let Some(id) = k.strip_prefix("server.") {
                let id = ServerId(num(id)?);
                // `addr[|addr...][:role][;client]`: the role ends the address part.
                let addr = v.split(';').next().unwrap_or("").trim();
                if addr.ends_with(":observer") {
                    m.observers.insert(id);
                } else {
                    m.voters.insert(id);
                }
            } else if let Some(g) = k.strip_prefix("group.") {
                let g = num(g)? as u64;
                let members = v.split(':').map(|s| num(s).map(ServerId)).collect::<Result<Vec<_>, _>>()?;
                groups.entry(g).or_default().extend(members);
            } else if let Some(id) = k.strip_prefix("weight.") {
                let w = num(v)?;
                weights.insert(ServerId(num(id)?), w.max(0) as u64);
            } else if k == "version" {
                m.version = i64::from_str_radix(v, 16).map_err(|_| MembershipError::BadNumber(line.to_string()))?;
            }
        }
        if m.voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        if !groups.is_empty() {
            let grouped: BTreeSet<ServerId> = groups.values().flatten().copied().collect();
            if let Some(s) = m.voters.iter().find(|s| !grouped.contains(s)) {
                return Err(MembershipError::NoGroup(*s));
            }
            m.hierarchy = Some(Hierarchy::new(&groups, &weights));
        }
        Ok(m)
    }
}

impl Config {
    /// ZooKeeper's settings in milliseconds, for a host that ticks every `tick_ms`.
    pub fn from_ms(
        my_id: ServerId,
        voters: BTreeSet<ServerId>,
        observers: BTreeSet<ServerId>,
        tick_ms: u32,
        tick_time_ms: u32,
        init_limit: u32,
        sync_limit: u32,
    ) -> Config {
        let t = |ms: u32| (ms / tick_ms.max(1)).max(1);
        Config {
            my_id,
            voters,
            observers,
            tick_time_ticks: t(tick_time_ms).max(2),
            init_limit,
            sync_limit,
            finalize_wait_ticks: t(200),
            min_notification_ticks: t(200),
            max_notification_ticks: t(60_000),
            committed_log_max: 500,
            txn_log_sync: false,
            outstanding_proposals_max: 1000,
            config_data: Bytes::new(),
            config_version: 0,
            hierarchy: None,
            reconfig_enabled: false,
            sync_enabled: true,
            observer_master_seed: None,
            observer_master: false,
            observer_reconnect_delay_ticks: 0,
            observer_election_delay_ticks: 0,
            random_seed: 0,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        if let Some(s) = self.voters.intersection(&self.observers).next() {
            return Err(ConfigError::VoterAndObserver(*s));
        }
        if !self.voters.contains(&self.my_id) && !self.observers.contains(&self.my_id) && !self.reconfig_enabled {
            // With reconfig, a server a reconfig removed runs on as a non-voting participant
            // (its dynamic configuration does not name it).
            return Err(ConfigError::NotAMember(self.my_id));
        }
        for (name, v, min) in [
            ("tick_time_ticks", self.tick_time_ticks as u64, 2),
            ("init_limit", self.init_limit as u64, 1),
            ("sync_limit", self.sync_limit as u64, 1),
            ("finalize_wait_ticks", self.finalize_wait_ticks as u64, 1),
            ("min_notification_ticks", self.min_notification_ticks as u64, 1),
            ("max_notification_ticks", self.max_notification_ticks as u64, self.min_notification_ticks as u64),
            ("committed_log_max", self.committed_log_max as u64, 1),
            ("outstanding_proposals_max", self.outstanding_proposals_max as u64, 1),
        ] {
            if v < min {
                return Err(ConfigError::TooSmall(name, min));
            }
        }
        Ok(())
    }

    /// An observer if the configuration names it one; else a participant (a server outside
    /// the configuration is a participant without a vote, as ZooKeeper's
    /// `updateLearnerType` leaves it).
    pub fn learner_type(&self) -> LearnerType {
        if self.observers.contains(&self.my_id) {
            LearnerType::Observer
        } else {
            LearnerType::Participant
        }
    }

    pub fn is_voter(&self, s: ServerId) -> bool {
        self.voters.contains(&s)
    }

    /// `QuorumVerifier.containsQuorum`: more than half of the voters are in `set`
    /// (QuorumMaj), or the hierarchy's rule (QuorumHierarchical).
    pub fn is_quorum<'a>(&self, set: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let voters = set.into_iter().filter(|s| self.voters.contains(s));
        match &self.hierarchy {
            Some(h) => h.contains_quorum(voters),
            None => 2 * voters.count() > self.voters.len(),
        }
    }

    /// `QuorumVerifier.getWeight`: 1 for every voter under a majority rule.
    pub fn weight(&self, s: ServerId) -> u64 {
        self.hierarchy.as_ref().map_or(1, |h| h.weight(s))
    }

    /// Every other member, voters and observers.
    pub fn peers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().chain(self.observers.iter()).copied().filter(move |s| *s != self.my_id)
    }
}

/// A write the host must make durable. Storage operations are numbered by `seq` and must be
/// applied in that order; the host reports durability with [`crate::Node::persisted`]`(seq)`,
/// meaning every operation up to and including `seq` survives a crash. The core never sends
/// a message that depends on a write (an ACK, an ACKEPOCH, a NEWLEADER ACK, a LEADERINFO)
/// before that write is reported durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageOp {
    /// Append one txn to the log. Zxids only increase along the log.
    Append(Entry),
    /// Remove every log entry with a zxid above `after` (TRUNC).
    Truncate { after: Zxid },
    /// Write the `acceptedEpoch` file.
    AcceptedEpoch(Epoch),
    /// Write the `currentEpoch` file.
    CurrentEpoch(Epoch),
    /// The leader's snapshot at `zxid` (SNAP): the host has already replaced its state
    /// machine with it (see [`Action::Persist`]); durably store it and drop every log entry,
    /// so that after a crash the server restarts from this snapshot and an empty log.
    InstallSnapshot { zxid: Zxid, data: SnapData },
    /// Store the state machine as it is now (it has applied exactly the deliveries up to
    /// `zxid`) as a snapshot and drop every log entry, as for `InstallSnapshot`. Issued by an
    /// observer with `syncEnabled=false` (it delivered txns it never logged) before its first
    /// append in a role that logs, so that the log on disk never has a gap.
    Checkpoint { zxid: Zxid },
}

/// What the host must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message to a peer (quorum port, or election port for notifications). Sends may
    /// be lost; the protocol recovers by timeouts and re-election.
    Send { to: ServerId, msg: Message },
    /// Start a storage operation (see [`StorageOp`] for the contract). For `InstallSnapshot`
    /// the host replaces its state machine at once, before handling the next action.
    Persist { seq: u64, op: StorageOp },
    /// Apply a committed txn to the state machine. Deliveries come strictly in zxid order and
    /// only for committed txns, whatever the role.
    Deliver(Entry),
    /// Leader only: send `to` a SNAP of the state machine as it is at this point of the
    /// action sequence (it has applied exactly the deliveries up to `zxid`), i.e.
    /// `Message::Snap { zxid, snapshot }`, before any later `Send` to the same peer.
    SendSnapshot { to: ServerId, zxid: Zxid },
    /// Leader: start reading the txn log for learner `to`'s DIFF: the logged txns after
    /// `after` (which must itself be logged), in bounded batches, each reported to
    /// [`crate::Node::log_read`] when `to`'s connection has room for it (the host may refuse:
    /// `LogRead::Unavailable`, and then the learner gets a SNAP). Replaces any read for `to`.
    ReadLog { to: ServerId, after: Zxid },
    /// Leader: stop reading the txn log for `to` (done, or the learner is gone).
    StopReadLog { to: ServerId },
    /// Close the quorum connection to a peer (a dropped learner, or the old leader).
    Disconnect { peer: ServerId },
    /// The server's role changed. While not `serving`, it must not answer clients.
    StateChanged { state: ServerState, leader: Option<ServerId>, epoch: Epoch },
    /// The server may serve clients: a leader whose NEWLEADER a quorum acked, or a learner
    /// that got UPTODATE. Ends at the next `StateChanged`.
    Serving { epoch: Epoch },
    /// Learner: the leader committed a reconfiguration at `zxid` (COMMITANDACTIVATE /
    /// INFORMANDACTIVATE, from a ZooKeeper leader: rzk leaders carry none out) and names
    /// `leader` as the designated leader. The txn up to `zxid` is delivered before this
    /// action. Every member must now run with the configuration that txn wrote: the host
    /// hands its text to [`crate::Node::activate`] (the node cannot read txns).
    ReconfigCommitted { zxid: Zxid, leader: ServerId },
    /// The node runs with a new configuration (`Config::config_data`, version
    /// `config_version`): a committed reconfig, or a newer one a leader's NEWLEADER carried.
    /// The host connects to the members it names (and drops the others) and, with
    /// `reconfigEnabled`, writes it to its dynamic config file.
    ConfigActivated { data: Bytes, version: i64 },
    /// The last configuration seen proposed changed (ZooKeeper's
    /// `setLastSeenQuorumVerifier` / `setQuorumVerifier`): `Some(text)`, a newer one than
    /// the one in force, the host writes to `zoo.cfg.dynamic.next`; `None`, none is newer
    /// any more (it was activated), the host deletes that file.
    LastSeenConfig { data: Option<Bytes> },
}

/// Why `propose` refused a txn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not an established leader")]
    NotLeader,
    #[error("too many proposals await a quorum")]
    Busy,
    #[error("the zxid counter of epoch {0} is exhausted; a new election starts")]
    ZxidExhausted(Epoch),
    #[error("zxid {got} is not the next one ({expected})")]
    WrongZxid { expected: Zxid, got: Zxid },
    #[error("a reconfiguration is in progress")]
    ReconfigInProgress,
    #[error("the new configuration cannot be read: {0}")]
    BadConfig(String),
}
