//! The checkers: what must hold after every step of a simulation, and the client history.
//!
//! - **one leader per epoch**: a server whose epoch a quorum acknowledged owns that epoch;
//!   no other server may ever own it.
//! - **committed history**: every delivery of every server, in order, must continue the one
//!   global committed sequence (same zxid, same bytes, nothing skipped or reordered); a
//!   server's deliveries are thus always a prefix of it.
//! - **logs**: every log entry (durable or in memory) whose zxid is committed holds the
//!   committed bytes; an established leader holds every committed txn.
//! - **digests**: equal zxid ⇒ equal `DataTree` digest, for every server, after every apply
//!   and snapshot install.
//! - **clients**: every acknowledged write is committed; writes are linearizable (if one
//!   ended before another started, its zxid is lower); each session's replies never go back
//!   in zxid and come in xid order; a read after `sync` sees every write acknowledged before
//!   the sync.
//! - **watches**: a watch event reaches its client before any reply that shows the change
//!   (a reply whose zxid is at or past the txn that fired it).
//! - **sessions**: a session is never expired while its client is being answered; after a
//!   session's close (or expiry) none of its ephemerals is left, and every acknowledged
//!   ephemeral of a live session is there.
//! - **final trees**: every acknowledged write is in the final tree of every server.
//! - **leaders and configurations**: the servers that ACKed a leader's NEWLEADER (with the
//!   configuration each had then) are recorded per (epoch, leader). Two different leaders
//!   of one epoch are never both established; a leader is established only with a quorum
//!   of the configuration in force (the last one committed) among those acceptors, as
//!   ZooKeeper's reconfig safety needs (a new leader holds quorums of its configuration and
//!   of the last one it saw proposed); and no leader commits a txn of its epoch after a
//!   leader of a later epoch was established without it (their lifetimes may overlap while
//!   acks are in flight, their commits may not diverge).
//! - **commit quorums**: every txn an established leader commits in broadcast has ACKs
//!   (cumulative, as the leader counts them) from a quorum of the configuration in force
//!   (the last committed before it) and, for a reconfig txn, of the configuration it
//!   proposes.
//! - **activations**: every configuration a member activates is committed (or is the
//!   initial one, which a leader re-versions with its epoch's zxid).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::{EventType, Zxid};
use rzk_tree::DataTree;

/// What a one-time or persistent watch covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// getData / exists: the node itself.
    Data,
    /// getChildren: the node's children (and its deletion).
    Child,
    /// addWatch PERSISTENT_RECURSIVE: the node and everything under it, every time.
    PersistentRecursive,
}

/// A change a committed txn made to a node (a watch event's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Deleted,
    DataChanged,
    ChildrenChanged,
}

impl Change {
    pub fn from_event_type(t: i32) -> Option<Change> {
        Some(match EventType::from_code(t)? {
            EventType::NodeCreated => Change::Created,
            EventType::NodeDeleted => Change::Deleted,
            EventType::NodeDataChanged => Change::DataChanged,
            EventType::NodeChildrenChanged => Change::ChildrenChanged,
            _ => return None,
        })
    }
}

/// `path` is `root` or below it.
pub fn under(path: &str, root: &str) -> bool {
    path == root || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/')) || root == "/"
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Does a change at `path` fire a watch of `kind` on `wpath`?
pub fn fires(kind: WatchKind, wpath: &str, path: &str, change: Change) -> bool {
    match kind {
        WatchKind::Data => path == wpath && change != Change::ChildrenChanged,
        WatchKind::Child => {
            (path == wpath && change == Change::Deleted)
                || (parent(path) == wpath && path != wpath && matches!(change, Change::Created | Change::Deleted))
        }
        WatchKind::PersistentRecursive => under(path, wpath) && change != Change::ChildrenChanged,
    }
}

/// Ticks after the sending of a client's last answered request (or its handshake's answer)
/// within which its session must not expire.
pub const SESSION_ALIVE_TICKS: u64 = 40;

fn txn_changes(t: &Txn, out: &mut Vec<(String, Change)>) {
    match t {
        Txn::Create { txn, .. } => out.push((txn.path.clone(), Change::Created)),
        Txn::CreateTtl(c) => out.push((c.path.clone(), Change::Created)),
        Txn::CreateContainer(c) => out.push((c.path.clone(), Change::Created)),
        Txn::Delete { path } | Txn::DeleteContainer { path } => out.push((path.clone(), Change::Deleted)),
        Txn::SetData(s) => out.push((s.path.clone(), Change::DataChanged)),
        Txn::CloseSession { paths_to_delete } => out.extend(paths_to_delete.iter().map(|p| (p.clone(), Change::Deleted))),
        Txn::Multi(ts) => {
            for t in ts {
                txn_changes(t, out);
            }
        }
        _ => {}
    }
}

/// One client write as the history checker sees it.
#[derive(Debug, Clone)]
pub struct WriteRec {
    pub session: i64,
    pub cxid: i32,
    pub start: u64,
    /// When the client got its reply; `None` if it never did (timed out or lost).
    pub end: Option<u64>,
    /// A closeSession (a local session's close is answered with no txn).
    pub close: bool,
}

#[derive(Debug, Default)]
pub struct Checker {
    /// epoch → the server that owns it.
    pub epoch_owner: BTreeMap<u32, i64>,
    /// The committed sequence: zxid → hash of the txn bytes.
    pub committed: BTreeMap<Zxid, u64>,
    /// zxid → tree digest after applying it.
    pub digests: HashMap<Zxid, i64>,
    /// (session, cxid) → the first zxid that carried it.
    pub txn_of_op: HashMap<(i64, i32), Zxid>,
    pub writes: Vec<WriteRec>,
    /// Audit log successes: (server index, session, operation, znode).
    pub audited: std::collections::HashSet<(usize, String, &'static str, String)>,
    /// Acknowledged writes checked against the audit log of the server that answered them.
    pub audit_checks: u64,
    /// session → last zxid it observed (reads and own acked writes).
    pub session_zxid: HashMap<i64, Zxid>,
    pub reads: u64,
    pub digest_checks: u64,
    pub log_checks: u64,
    /// Changes to nodes by committed txns (the watch checker's history).
    pub changes: BTreeMap<Zxid, Vec<(String, Change)>>,
    /// Persistent nodes whose create was acknowledged, and those a delete may have removed.
    pub acked_nodes: BTreeSet<String>,
    pub maybe_deleted: BTreeSet<String>,
    /// Highest acknowledged setData zxid per path.
    pub acked_sets: BTreeMap<String, Zxid>,
    /// Acknowledged ephemeral creates: (session, path).
    pub acked_ephemerals: Vec<(i64, String)>,
    /// Sessions closed or expired in the committed history, with the zxid.
    pub closed_sessions: BTreeMap<i64, Zxid>,
    /// Sessions created (createSession, also a local session's upgrade) in the committed
    /// history, with the zxid.
    pub created_sessions: BTreeMap<i64, Zxid>,
    /// Local sessions are on: a session that was never global may expire with no txn.
    pub local_sessions: bool,
    /// Sessions a server told their client had expired.
    pub reported_expired: BTreeSet<i64>,
    /// session -> tick of the last answer its client got.
    pub session_last_heard: HashMap<i64, u64>,
    pub max_acked: Zxid,
    pub watch_checks: u64,
    pub watch_events: u64,
    /// Sessions a read-only member established, and writes it refused with NotReadOnly.
    pub read_only_sessions: u64,
    pub not_read_only: u64,
    /// Requests answered ThrottledOp.
    pub throttled: u64,
    /// Reconfig requests committed and refused.
    pub reconfigs_committed: u64,
    pub reconfigs_refused: u64,
    pub expiries: u64,
    pub replies: u64,
    /// Configurations committed: version → membership and the tick it was first
    /// committed (the initial configuration is version 0, tick 0).
    pub configs: BTreeMap<i64, (rzk_zab::Membership, u64)>,
    /// (epoch, leader) → the servers that ACKed its NEWLEADER, each with the version and
    /// voters of the configuration it had when it did.
    pub acceptances: BTreeMap<(u32, i64), Acceptors>,
    /// epoch → (leader, the last zxid of its initial history, tick) once established.
    pub established: BTreeMap<u32, (i64, Zxid, u64)>,
    /// Establishments checked against the configuration in force.
    pub leader_config_checks: u64,
    /// (epoch, leader, follower) → the highest zxid of that leader's epoch the follower
    /// acknowledged having logged (an ACK of a proposal, or its NEWLEADER ACK with its log's
    /// last zxid then): ACKs are cumulative, a log being in zxid order.
    pub acked_upto: BTreeMap<(u32, i64, i64), Zxid>,
    /// Broadcast commits checked against their ACKs.
    pub commit_quorum_checks: u64,
    /// Configuration activations checked against the committed ones.
    pub activation_checks: u64,
}

/// A leader's acceptors: server → (configuration version, its voters) when it ACKed
/// NEWLEADER.
pub type Acceptors = BTreeMap<i64, (i64, BTreeSet<i64>)>;

pub fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= *x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Checker {
    pub fn leader_owns_epoch(&mut self, epoch: u32, sid: i64) -> Result<(), String> {
        match self.epoch_owner.get(&epoch) {
            Some(&o) if o != sid => Err(format!("two leaders for epoch {epoch}: servers {o} and {sid}")),
            _ => {
                self.epoch_owner.insert(epoch, sid);
                Ok(())
            }
        }
    }

    /// Server `acceptor` ACKed the NEWLEADER of `leader` for `epoch` with configuration
    /// `version` (voters `voters`) in force.
    pub fn newleader_acked(&mut self, epoch: u32, leader: i64, acceptor: i64, version: i64, voters: BTreeSet<i64>) {
        self.acceptances.entry((epoch, leader)).or_default().entry(acceptor).or_insert((version, voters));
    }

    /// `leader` became established for `epoch` with its initial history up to `upto`: it
    /// must be the epoch's only one, and its acceptors (NEWLEADER ACKs and itself) must hold
    /// a quorum of the configuration in force.
    pub fn leader_established(&mut self, epoch: u32, leader: i64, upto: Zxid, now: u64) -> Result<(), String> {
        match self.established.get(&epoch) {
            Some(&(other, _, t)) if other != leader => {
                return Err(format!("two leaders established for epoch {epoch}: server {other} (tick {t}) and server {leader}"))
            }
            Some(_) => return Ok(()),
            None => {}
        }
        self.established.insert(epoch, (leader, upto, now));
        self.leader_config_checks += 1;
        let acc = self.acceptances.get(&(epoch, leader)).cloned().unwrap_or_default();
        let mut ids: BTreeSet<rzk_zab::ServerId> = acc.keys().map(|s| rzk_zab::ServerId(*s)).collect();
        ids.insert(rzk_zab::ServerId(leader));
        if let Some((&version, (m, at))) = self.configs.iter().next_back() {
            if !m.is_quorum(&ids) {
                let who: Vec<String> = acc.iter().map(|(s, (v, _))| format!("{s}(config {v:#x})")).collect();
                let voters: Vec<String> = m.voters.iter().map(|s| s.to_string()).collect();
                return Err(format!(
                    "leader {leader} of epoch {epoch} established with NEWLEADER acks from [{}] and itself: no quorum of the \
                     configuration in force (version {version:#x}, voters {}, committed at tick {at})",
                    who.join(" "),
                    voters.join(",")
                ));
            }
        }
        Ok(())
    }

    /// `follower` told `leader` (of `epoch`) it has logged everything up to `zxid`.
    pub fn acked(&mut self, epoch: u32, leader: i64, follower: i64, zxid: Zxid) {
        let e = self.acked_upto.entry((epoch, leader, follower)).or_insert(zxid);
        *e = (*e).max(zxid);
    }

    /// The established leader of `zxid`'s epoch delivers it (a broadcast commit): the
    /// servers that ACKed it, with the leader, must hold a quorum of the configuration in
    /// force (the last committed before it) and, for a reconfig txn, of the configuration it
    /// proposes (`reconfig`), as ZooKeeper's Leader needs a quorum of each configuration a
    /// proposal carries.
    pub fn leader_committed(&mut self, leader: i64, zxid: Zxid, reconfig: Option<&rzk_zab::Membership>) -> Result<(), String> {
        self.commit_quorum_checks += 1;
        let epoch = zxid.epoch();
        let mut ids: BTreeSet<rzk_zab::ServerId> = self
            .acked_upto
            .range((epoch, leader, i64::MIN)..=(epoch, leader, i64::MAX))
            .filter(|(_, &upto)| upto >= zxid)
            .map(|(&(_, _, f), _)| rzk_zab::ServerId(f))
            .collect();
        ids.insert(rzk_zab::ServerId(leader));
        let in_force = self.configs.range(..zxid.0).next_back().map(|(v, (m, _))| (*v, m));
        for (what, version, m) in in_force.map(|(v, m)| ("in force", v, m)).into_iter().chain(reconfig.map(|m| ("proposed", m.version, m)))
        {
            if !m.is_quorum(&ids) {
                let acks: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
                let voters: Vec<String> = m.voters.iter().map(|s| s.to_string()).collect();
                return Err(format!(
                    "leader {leader} committed {zxid} with ACKs from [{}] (itself included): no quorum of the configuration {what} \
                     (version {version:#x}, voters {})",
                    acks.join(","),
                    voters.join(",")
                ));
            }
        }
        Ok(())
    }

    /// `server` activated the configuration `version` at tick `now`: it must be committed
    /// (a member runs a configuration only once its reconfig txn is, or the initial one).
    pub fn config_activated(&mut self, server: i64, m: &rzk_zab::Membership, now: u64) -> Result<(), String> {
        self.activation_checks += 1;
        let version = m.version;
        if self.configs.contains_key(&version) {
            return Ok(());
        }
        // A leader gives the initial configuration (version 0) the zxid of its epoch's start
        // (ZooKeeper's Leader.lead): the same members, never proposed as a txn.
        let initial = self.configs.get(&0).map(|(c, _)| c);
        if Zxid(version).counter() == 0
            && initial.is_some_and(|c| c.voters == m.voters && c.observers == m.observers && c.hierarchy == m.hierarchy)
        {
            return Ok(());
        }
        Err(format!("server {server} activated configuration {version:#x} at tick {now}, which is not committed"))
    }

    /// A server that had applied up to `prev` delivers `zxid` with bytes hashing to `h`.
    pub fn delivered(&mut self, server: i64, prev: Zxid, zxid: Zxid, h: u64) -> Result<(), String> {
        if zxid <= prev {
            return Err(format!("server {server} delivered {zxid} after {prev}"));
        }
        let next = self.committed.range((std::ops::Bound::Excluded(prev), std::ops::Bound::Unbounded)).next().map(|(z, h)| (*z, *h));
        match next {
            Some((nz, nh)) => {
                if nz != zxid {
                    return Err(format!("server {server} delivered {zxid} after {prev}, but the committed history continues with {nz}"));
                }
                if nh != h {
                    return Err(format!("server {server} delivered different bytes for committed {zxid}"));
                }
            }
            None => {
                // The history grows. A server can only extend it from its end.
                if let Some((&last, _)) = self.committed.iter().next_back() {
                    if prev < last {
                        return Err(format!("server {server} at {prev} delivered {zxid} beyond the history's end {last}"));
                    }
                }
                self.committed.insert(zxid, h);
            }
        }
        Ok(())
    }

    pub fn digest(&mut self, server: i64, zxid: Zxid, digest: i64) -> Result<(), String> {
        self.digest_checks += 1;
        match self.digests.get(&zxid) {
            Some(&d) if d != digest => Err(format!("server {server} has tree digest {digest:#x} at {zxid}, another server had {d:#x}")),
            Some(_) => Ok(()),
            None => {
                self.digests.insert(zxid, digest);
                Ok(())
            }
        }
    }

    /// A log entry seen on a server (durable or in memory).
    pub fn log_entry(&mut self, server: i64, zxid: Zxid, h: u64) -> Result<(), String> {
        self.log_checks += 1;
        match self.committed.get(&zxid) {
            Some(&c) if c != h => Err(format!("server {server}'s log holds different bytes at committed {zxid}")),
            _ => Ok(()),
        }
    }

    /// A txn joined the committed history (first delivery anywhere) at tick `now`.
    pub fn committed_txn(&mut self, zxid: Zxid, rec: &TxnRecord, now: u64) -> Result<(), String> {
        let session = rec.header.client_id.0;
        self.txn_of_op.entry((session, rec.header.cxid)).or_insert(zxid);
        let mut ch = Vec::new();
        txn_changes(&rec.txn, &mut ch);
        if !ch.is_empty() {
            self.changes.insert(zxid, ch);
        }
        // A txn of an epoch whose leader has been superseded must be in the initial history
        // of every later leader established so far.
        for (&e, &(l, upto, t)) in self.established.range(zxid.epoch() + 1..) {
            if zxid > upto {
                return Err(format!(
                    "{zxid} committed (tick {now}) after leader {l} of the later epoch {e} was established (tick {t}) with a history ending at {upto}"
                ));
            }
        }
        if let Txn::Reconfig(s) = &rec.txn {
            let mut m =
                rzk_zab::Membership::parse(s.data.as_deref().unwrap_or_default()).map_err(|e| format!("committed reconfig {zxid}: {e}"))?;
            if m.version == 0 {
                m.version = zxid.0;
            }
            self.configs.entry(m.version).or_insert((m, now));
        }
        if let Txn::CreateSession { .. } = rec.txn {
            self.created_sessions.entry(session).or_insert(zxid);
        }
        if let Txn::CloseSession { .. } = rec.txn {
            self.closed_sessions.entry(session).or_insert(zxid);
            if rec.header.cxid == 0 {
                self.expiries += 1;
                if let Some(&t) = self.session_last_heard.get(&session) {
                    if now < t + SESSION_ALIVE_TICKS {
                        return Err(format!(
                            "session {session:#x} expired at {zxid} (tick {now}) though its client was answered at tick {t}: a lost session touch?"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn session_heard(&mut self, session: i64, at: u64) {
        let t = self.session_last_heard.entry(session).or_insert(at);
        *t = (*t).max(at);
        self.replies += 1;
    }

    /// A server told the client its session expired: checked against the history at the end.
    pub fn session_reported_expired(&mut self, session: i64) {
        self.reported_expired.insert(session);
    }

    pub fn write_acked(&mut self, widx: usize, now: u64, zxid: Zxid, session: i64) -> Result<(), String> {
        self.writes[widx].end = Some(now);
        self.max_acked = self.max_acked.max(zxid);
        self.session_saw(session, zxid, "got its write acknowledged")
    }

    /// A server's audit log event: its successes are kept for [`Self::expect_audited`].
    pub fn audit_seen(&mut self, server: usize, e: &rzk_core::audit::AuditEvent) {
        if let (rzk_core::audit::AuditResult::Success, Some(session), Some(znode)) = (e.result, &e.session, &e.znode) {
            self.audited.insert((server, session.clone(), e.operation, znode.clone()));
        }
    }

    /// A write acknowledged by `server` must be in that server's audit log, as a success of
    /// its session on its path (the event comes out in the same step as the reply).
    pub fn expect_audited(&mut self, server: usize, session: i64, operation: &'static str, path: &str) -> Result<(), String> {
        self.audit_checks += 1;
        let key = (server, rzk_core::audit::session_hex(rzk_proto::SessionId(session)), operation, path.to_string());
        if self.audited.contains(&key) {
            Ok(())
        } else {
            Err(format!("server s{} acknowledged {operation} {path} of session {:#x} but did not audit it", server + 1, session))
        }
    }

    pub fn max_acked_zxid(&self) -> Zxid {
        self.max_acked
    }

    pub fn node_acked(&mut self, path: &str) {
        self.acked_nodes.insert(path.to_string());
    }

    pub fn maybe_deleted(&mut self, path: &str) {
        self.maybe_deleted.insert(path.to_string());
    }

    pub fn set_acked(&mut self, path: &str, zxid: Zxid) {
        let e = self.acked_sets.entry(path.to_string()).or_insert(zxid);
        *e = (*e).max(zxid);
    }

    pub fn ephemeral_acked(&mut self, session: i64, path: &str) {
        self.acked_ephemerals.push((session, path.to_string()));
    }

    /// A reply at `zxid` reached a client that still holds watch `w`: no change `w` covers
    /// may lie in (set_at, zxid] unannounced.
    pub fn watch_announced(&mut self, session: i64, w: &crate::client::Watch, zxid: Zxid) -> Result<(), String> {
        self.watch_checks += 1;
        let after = (std::ops::Bound::Excluded(w.set_at), std::ops::Bound::Included(zxid));
        let mut due = 0u64;
        for (z, changes) in self.changes.range(after) {
            for (p, c) in changes {
                if fires(w.kind, &w.path, p, *c) {
                    due += 1;
                    if w.kind != WatchKind::PersistentRecursive || due > w.events {
                        return Err(format!(
                            "session {session:#x}: a reply at {zxid} came before the {:?} watch on {} (set at {}) announced {c:?} {p} at {z}",
                            w.kind, w.path, w.set_at
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// After convergence: every acknowledged write is in `tree`; ephemerals belong to live
    /// sessions only, and every acknowledged ephemeral of a live session is there.
    pub fn check_final_tree(&self, server: i64, tree: &DataTree) -> Result<(), String> {
        for p in self.acked_nodes.difference(&self.maybe_deleted) {
            if tree.get(p).is_none() {
                return Err(format!("server {server}: acknowledged create of {p} is not in the final tree"));
            }
        }
        for (p, z) in &self.acked_sets {
            match tree.get(p) {
                Some(n) if n.client_stat().mzxid >= *z => {}
                Some(n) => {
                    return Err(format!("server {server}: {p} has mzxid {} but a setData at {z} was acknowledged", n.client_stat().mzxid))
                }
                None => return Err(format!("server {server}: {p} (set at {z}) is not in the final tree")),
            }
        }
        for (session, p) in &self.acked_ephemerals {
            let owner = tree.get(p).map(|n| n.client_stat().ephemeral_owner);
            match (self.closed_sessions.get(session), owner) {
                (None, Some(o)) if o == *session => {}
                (None, other) => {
                    return Err(format!(
                        "server {server}: live session {session:#x}'s acknowledged ephemeral {p} is {other:?} in the final tree"
                    ))
                }
                (Some(z), Some(_)) => {
                    return Err(format!("server {server}: session {session:#x} closed at {z} but its ephemeral {p} is still there"))
                }
                (Some(_), None) => {}
            }
        }
        let mut stray = None;
        let mut unborn = None;
        tree.for_each_node_in_snapshot_order(|path, _, _, stat| {
            let owner = stat.ephemeral_owner;
            if owner != 0 && self.closed_sessions.contains_key(&owner) && stray.is_none() {
                stray = Some((path.to_string(), owner));
            }
            // An ephemeral's session is global before it: its createSession (or a local
            // session's upgrade) is committed first.
            let created = self.created_sessions.get(&owner).is_some_and(|z| *z < stat.czxid);
            let session_owned = rzk_tree::EphemeralType::of(owner, true) == rzk_tree::EphemeralType::Normal;
            if session_owned && !created && unborn.is_none() {
                unborn = Some((path.to_string(), owner, stat.czxid));
            }
        });
        if let Some((p, o)) = stray {
            return Err(format!("server {server}: ephemeral {p} of closed session {o:#x} is in the final tree"));
        }
        if let Some((p, o, z)) = unborn {
            return Err(format!("server {server}: ephemeral {p} (created at {z}) of session {o:#x}, which was not global before it"));
        }
        for s in &self.reported_expired {
            // A local session that never became global expires on its server alone.
            let local_only = self.local_sessions && !self.created_sessions.contains_key(s);
            if !self.closed_sessions.contains_key(s) && !local_only {
                return Err(format!("session {s:#x} was reported expired to its client but never closed in the committed history"));
            }
        }
        Ok(())
    }

    pub fn last_committed(&self) -> Zxid {
        self.committed.keys().next_back().copied().unwrap_or(Zxid::ZERO)
    }

    /// A session observed `zxid` (a read, or its own acknowledged write).
    pub fn session_saw(&mut self, session: i64, zxid: Zxid, what: &str) -> Result<(), String> {
        let e = self.session_zxid.entry(session).or_insert(Zxid::ZERO);
        if zxid < *e {
            return Err(format!("session {session} {what} at {zxid} after having seen {}", *e));
        }
        *e = zxid;
        Ok(())
    }

    /// Linearizable writes over the whole history; every acked write committed.
    pub fn check_history(&self) -> Result<(usize, usize), String> {
        let mut done: Vec<(u64, u64, Zxid)> = Vec::new(); // (start, end, zxid)
        let mut open: Vec<(u64, Zxid)> = Vec::new();
        for w in &self.writes {
            let z = self.txn_of_op.get(&(w.session, w.cxid)).copied();
            if z.is_none() && w.close && self.local_sessions && !self.created_sessions.contains_key(&w.session) {
                // A local session's close: its server alone forgets it.
                continue;
            }
            match (w.end, z) {
                (Some(_), None) => return Err(format!("acknowledged write {}/{} is not in the committed history", w.session, w.cxid)),
                (Some(end), Some(z)) => {
                    if !self.committed.contains_key(&z) {
                        return Err(format!("acknowledged write {}/{} at {z} is not committed", w.session, w.cxid));
                    }
                    done.push((w.start, end, z))
                }
                (None, Some(z)) => open.push((w.start, z)),
                (None, None) => {}
            }
        }
        // For each write w2 (acked or not), every acked w1 that ended before w2 started
        // must have a lower zxid: sweep acked writes by end time with a running max zxid.
        let mut by_end = done.clone();
        by_end.sort_by_key(|d| d.1);
        let mut prefix_max: Vec<(u64, Zxid)> = Vec::with_capacity(by_end.len());
        let mut m = Zxid(i64::MIN);
        for (_, end, z) in &by_end {
            m = m.max(*z);
            prefix_max.push((*end, m));
        }
        let all: Vec<(u64, Zxid)> = done.iter().map(|d| (d.0, d.2)).chain(open.iter().copied()).collect();
        for (start, z) in &all {
            let i = prefix_max.partition_point(|(end, _)| end < start);
            if i > 0 {
                let (_, mz) = prefix_max[i - 1];
                if mz >= *z {
                    return Err(format!(
                        "writes not linearizable: a write ended before one started at tick {start} with zxid {z}, yet has zxid {mz}"
                    ));
                }
            }
        }
        Ok((done.len(), open.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_rejects_reordered_writes() {
        let mut c = Checker::default();
        c.committed.insert(Zxid(1), 0);
        c.committed.insert(Zxid(2), 0);
        c.writes.push(WriteRec { session: 1, cxid: 1, start: 0, end: Some(5), close: false });
        c.writes.push(WriteRec { session: 2, cxid: 1, start: 6, end: Some(9), close: false });
        c.txn_of_op.insert((1, 1), Zxid(2));
        c.txn_of_op.insert((2, 1), Zxid(1));
        assert!(c.check_history().is_err());
        c.txn_of_op.insert((1, 1), Zxid(1));
        c.txn_of_op.insert((2, 1), Zxid(2));
        assert_eq!(c.check_history(), Ok((2, 0)));
    }

    #[test]
    fn delivery_must_continue_the_history() {
        let mut c = Checker::default();
        c.delivered(1, Zxid(0), Zxid(1), 11).unwrap();
        c.delivered(1, Zxid(1), Zxid(2), 22).unwrap();
        assert!(c.delivered(2, Zxid(0), Zxid(2), 22).is_err(), "skipped 1");
        assert!(c.delivered(2, Zxid(0), Zxid(1), 99).is_err(), "different bytes");
        c.delivered(2, Zxid(0), Zxid(1), 11).unwrap();
        assert!(c.delivered(3, Zxid(0), Zxid(5), 1).is_err(), "beyond the end from behind");
    }
}
