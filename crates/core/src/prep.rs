//! The prep step: ZooKeeper's `PrepRequestProcessor` as a pure function over the committed
//! tree plus the *outstanding changes* (writes prepped but not yet applied).
//!
//! Prep validates a write (session, path, ACL, version, parent), picks sequential names from
//! the parent's cversion, and turns the request into a [`Txn`]. Because a write is applied
//! only once it is durable (and, in an ensemble, committed by a quorum), the next write must
//! see the effects of those before it: that is what [`Outstanding`] records, per path, the
//! way `outstandingChanges` does in ZooKeeper. A record is dropped once the txn that made it
//! has been applied.

use crate::auth::{self, AuthConfig};
use crate::path::{self, validate_path};
use rzk_proto::client::{Create, Request};
use rzk_proto::txn::{CheckVersionTxn, CreateContainerTxn, CreateTtlTxn, CreateTxn, SetAclTxn, SetDataTxn, Txn};
use rzk_proto::{perms, Acl, CreateMode, ErrorCode, Id, OpCode, SessionId, StatPersisted, Zxid};
use rzk_tree::digest::DigestPrefix;
use rzk_tree::java::JavaHashSet;
use rzk_tree::quota::{self, StatsTrack};
use rzk_tree::{DataTree, EphemeralType, CONTAINER_EPHEMERAL_OWNER};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// What prep knows of a node: the committed node, overlaid by outstanding changes.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub stat: StatPersisted,
    pub child_count: i32,
    /// Shared with the tree's ACL cache: prep copies records often (a parent's per create).
    pub acl: Arc<[Acl]>,
    /// The node's path and data, hashed: its digest under any stat.
    pub prefix: DigestPrefix,
    /// The length of the node's data (what `checkQuota` takes as the last data's size).
    pub data_len: i64,
}

impl NodeRecord {
    /// The node's contribution to the tree digest in this state.
    pub fn digest(&self) -> i64 {
        self.prefix.digest(&self.stat)
    }
}

#[derive(Debug, Clone)]
struct ChangeRecord {
    /// The txn that made this record.
    zxid: Zxid,
    /// `None`: the node is deleted by an outstanding txn.
    node: Option<NodeRecord>,
    seq: u64,
}

/// One change in the order it was made (ZooKeeper's `outstandingChanges` list).
#[derive(Debug, Clone)]
struct Change {
    zxid: Zxid,
    path: String,
    seq: u64,
    /// The ephemeral owner of the node this change leaves at `path`; `None`: deleted.
    owner: Option<i64>,
    /// The record it replaced, so the changes of txns the log could not write can be taken
    /// back.
    prev: Option<ChangeRecord>,
}

/// The outstanding changes: the newest record per path, plus every change in the order it
/// was made.
#[derive(Debug, Default)]
pub struct Outstanding {
    /// foldhash: paths are the client's choice, so a seeded hash, but much cheaper than SipHash.
    by_path: HashMap<String, ChangeRecord, foldhash::fast::RandomState>,
    order: VecDeque<Change>,
    seq: u64,
    /// The last zxid applied to the tree.
    applied_through: Zxid,
    /// While prepping a multi: the records it replaced, to restore if a member fails.
    undo: Option<Vec<(String, Option<ChangeRecord>)>>,
    /// How the changes recorded since the last [`Outstanding::take_digest_delta`] move the
    /// tree digest (ZooKeeper's precalculated digests), and its value when a multi began.
    digest_delta: i64,
    multi_digest_delta: i64,
    /// How many of `order`'s changes leave a node owned by each session (ephemeral owner,
    /// not 0): a closeSession of a session with none needs no walk over every change, so
    /// thousands of sessions expiring in one tick cost linear time, not quadratic.
    owned: HashMap<i64, usize, foldhash::fast::RandomState>,
}

impl Outstanding {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Records the newest view of `path`; `old_digest` is the node's digest before it.
    fn add(&mut self, zxid: Zxid, path: &str, old_digest: i64, node: Option<NodeRecord>) {
        let new_digest = node.as_ref().map_or(0, NodeRecord::digest);
        let owner = node.as_ref().map(|n| n.stat.ephemeral_owner);
        self.digest_delta = self.digest_delta.wrapping_add(new_digest.wrapping_sub(old_digest));
        self.seq += 1;
        let rec = ChangeRecord { zxid, node, seq: self.seq };
        let prev = self.by_path.insert(path.to_owned(), rec);
        if let Some(undo) = self.undo.as_mut() {
            undo.push((path.to_owned(), prev.clone()));
        }
        if let Some(o) = owner.filter(|&o| o != 0) {
            *self.owned.entry(o).or_default() += 1;
        }
        self.order.push_back(Change { zxid, path: path.to_owned(), seq: self.seq, owner, prev });
    }

    /// Counts out a change taken off `order`.
    fn unown(&mut self, owner: Option<i64>) {
        if let Some(o) = owner.filter(|&o| o != 0) {
            let n = self.owned.get_mut(&o).expect("an owned change is counted");
            *n -= 1;
            if *n == 0 {
                self.owned.remove(&o);
            }
        }
    }

    /// A closing session's ephemerals: `set` (the tree's) as the outstanding changes leave it.
    fn session_ephemerals(&self, mut set: JavaHashSet<Box<str>>, session: i64) -> JavaHashSet<Box<str>> {
        if self.owned.contains_key(&session) {
            return self.walk_ephemerals(set, session);
        }
        // No outstanding change leaves a node of this session, so the walk would only
        // remove: the ephemerals whose newest outstanding view is a deletion (or another
        // owner's node, made after a deletion). Removals leave the others' order alone, so
        // the result is the walk's.
        let gone: Vec<Box<str>> = set.iter().filter(|p| self.newest_owner(p).is_some_and(|o| o != Some(session))).cloned().collect();
        for p in gone {
            set.remove_with_hash(rzk_tree::java::string_hash_code(&p), &p);
        }
        set
    }

    /// ZooKeeper's walk over every outstanding change, oldest first: deletions leave the
    /// set, the session's own nodes join it (in this order, which the set's iteration order,
    /// and so the txn's path order, depends on).
    fn walk_ephemerals(&self, mut set: JavaHashSet<Box<str>>, session: i64) -> JavaHashSet<Box<str>> {
        for (p, owner) in self.changes() {
            let h = rzk_tree::java::string_hash_code(p);
            match owner {
                None => {
                    set.remove_with_hash(h, p);
                }
                Some(o) if o == session => {
                    set.insert_with_hash(h, p.into());
                }
                Some(_) => {}
            }
        }
        set
    }

    /// The newest outstanding view of `path`: `None` if no change is outstanding there,
    /// `Some(None)` if it is deleted, else the ephemeral owner of the node left there.
    fn newest_owner(&self, path: &str) -> Option<Option<i64>> {
        self.by_path.get(path).map(|r| r.node.as_ref().map(|n| n.stat.ephemeral_owner))
    }

    /// Drops the records of every txn up to `zxid`, which has now been applied to the tree.
    pub fn applied(&mut self, zxid: Zxid) {
        self.applied_through = self.applied_through.max(zxid);
        while self.order.front().is_some_and(|c| c.zxid <= zxid) {
            let Change { path, seq, owner, .. } = self.order.pop_front().expect("front");
            self.unown(owner);
            if self.by_path.get(&path).is_some_and(|r| r.seq == seq) {
                self.by_path.remove(&path);
            }
        }
    }

    /// Takes back the records of every txn from `zxid` on (the log could not write them):
    /// each path gets the record it had before, unless that one's txn has been applied since
    /// (then the tree is the truth).
    pub fn rollback_from(&mut self, zxid: Zxid) {
        while self.order.back().is_some_and(|c| c.zxid >= zxid) {
            let Change { path, seq, prev, owner, .. } = self.order.pop_back().expect("back");
            self.unown(owner);
            if self.by_path.get(&path).is_some_and(|r| r.seq == seq) {
                match prev.filter(|p| p.zxid > self.applied_through) {
                    Some(p) => {
                        self.by_path.insert(path, p);
                    }
                    None => {
                        self.by_path.remove(&path);
                    }
                }
            }
        }
    }

    /// The change in tree digest the txn prepped since the last call will make.
    pub fn take_digest_delta(&mut self) -> i64 {
        std::mem::take(&mut self.digest_delta)
    }

    /// Every outstanding change, oldest first: its path and the ephemeral owner of the node
    /// it leaves there (`None`: deleted).
    fn changes(&self) -> impl Iterator<Item = (&str, Option<i64>)> + '_ {
        self.order.iter().map(|c| (c.path.as_str(), c.owner))
    }

    fn begin_multi(&mut self) {
        self.undo = Some(Vec::new());
        self.multi_digest_delta = self.digest_delta;
    }

    fn end_multi(&mut self, rollback: bool) {
        let undo = self.undo.take().unwrap_or_default();
        if rollback {
            self.digest_delta = self.multi_digest_delta;
            for (path, prev) in undo.into_iter().rev() {
                if let Some(c) = self.order.pop_back() {
                    self.unown(c.owner);
                }
                match prev {
                    Some(p) => {
                        self.by_path.insert(path, p);
                    }
                    None => {
                        self.by_path.remove(&path);
                    }
                }
            }
        }
    }
}

/// What quota enforcement keeps: ZooKeeper's `quota_exceeded_error_per_namespace` counter
/// set (refusals by the top-level namespace of the path) and its rate-limited log of limits
/// passed.
#[derive(Debug, Clone, Default)]
pub struct QuotaRecord {
    pub exceeded_per_namespace: BTreeMap<String, u64>,
    log: RateLogger,
}

/// ZooKeeper's `RateLogger` (100 ms): a message is logged when it first comes; repeats within
/// the interval are counted and logged once, as `[N times] Message: ...`, when the interval is
/// over or another message comes.
#[derive(Debug, Clone, Default)]
struct RateLogger {
    msg: Option<String>,
    at_ms: i64,
    count: u64,
}

impl RateLogger {
    const INTERVAL_MS: i64 = 100;

    fn flush(&mut self) {
        if let (Some(m), true) = (&self.msg, self.count > 0) {
            let times = if self.count > 1 { format!("[{} times] ", self.count) } else { String::new() };
            tracing::warn!("{times}Message: {m}");
        }
        self.msg = None;
        self.count = 0;
    }

    fn log(&mut self, now_ms: i64, msg: String) {
        if self.msg.as_deref() == Some(msg.as_str()) {
            self.count += 1;
            if now_ms - self.at_ms >= Self::INTERVAL_MS {
                self.flush();
                self.msg = Some(msg);
                self.at_ms = now_ms;
            }
        } else {
            self.flush();
            tracing::warn!("Message:{msg} Value:null");
            self.msg = Some(msg);
            self.at_ms = now_ms;
        }
    }
}

/// What an established leader's ZAB node says for a reconfig's prep (see
/// `rzk_zab::Node::reconfig_view`): the servers synced with it (itself included), and
/// whether a reconfig proposal is in flight. Only an established leader has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconfigView {
    pub synced: std::collections::BTreeSet<i64>,
    pub in_progress: bool,
}

/// Everything prep reads besides the request: the tree, the changes not yet applied, the
/// caller's identity and the settings that change validation.
pub struct PrepContext<'a> {
    pub tree: &'a DataTree,
    pub outstanding: &'a mut Outstanding,
    pub auth_cfg: &'a AuthConfig,
    pub auth_ids: &'a [Id],
    pub session: SessionId,
    pub extended_types_enabled: bool,
    pub reconfig_enabled: bool,
    /// `standaloneEnabled`: the fewest voters a reconfig may leave is 2 (else 1).
    pub standalone_enabled: bool,
    /// An established leader's view for reconfig (None elsewhere: a standalone server).
    pub reconfig_view: Option<&'a ReconfigView>,
    /// `zookeeper.enforceQuota`: hard quota limits refuse creates and setData.
    pub enforce_quota: bool,
    /// The time of the write (the quota log's rate limit counts it).
    pub now_ms: i64,
    /// Hard-limit refusals by namespace, and the rate-limited quota log.
    pub quota: &'a mut QuotaRecord,
}

impl PrepContext<'_> {
    /// `getRecordForPath`: the newest view of a node, or NoNode.
    fn record(&self, path: &str) -> Result<NodeRecord, ErrorCode> {
        let path = path::normalize_root(path);
        if let Some(rec) = self.outstanding.by_path.get(path) {
            return rec.node.clone().ok_or(ErrorCode::NoNode);
        }
        let n = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        let prefix = DigestPrefix::new(path, n.data);
        let data_len = n.data.len() as i64;
        Ok(NodeRecord { stat: n.stat.clone(), child_count: n.num_children, acl: n.acl.clone(), prefix, data_len })
    }

    /// `ZooKeeperServer.checkQuota` (3.7+): with `enforceQuota`, a create (`count_diff` 1) or
    /// setData (0) under a quota path that would take its usage past a hard limit is
    /// QuotaExceeded; past a soft limit (`count` / `bytes` of the limit node, when no hard
    /// limit of that kind is set) it is only logged. As ZooKeeper, the limit and the usage are
    /// read from the committed tree, not from the outstanding changes.
    fn check_quota(&mut self, path: &str, bytes_diff: i64, count_diff: i64) -> Result<(), ErrorCode> {
        if !self.enforce_quota {
            return Ok(());
        }
        let Some(prefix) = self.tree.max_prefix_with_quota(path) else {
            return Ok(());
        };
        let Some(limit) = self.tree.get(&quota::limit_path(&prefix)).map(|n| StatsTrack::parse(n.data)) else {
            tracing::error!(path = %quota::limit_path(&prefix), "missing limit node for quota");
            return Ok(());
        };
        let check_count = count_diff != 0 && (limit.count() > -1 || limit.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limit.bytes() > -1 || limit.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(usage) = self.tree.get(&quota::stat_path(&prefix)).map(|n| StatsTrack::parse(n.data)) else {
            tracing::error!(path = %quota::stat_path(&prefix), "missing node for stat");
            return Ok(());
        };
        let checks = [
            (check_count, "count", "Count", usage.count() + count_diff, limit.count_hard_limit(), limit.count()),
            (check_bytes, "bytes", "Byte", usage.bytes() + bytes_diff, limit.byte_hard_limit(), limit.bytes()),
        ];
        for (check, what, kind, new, hard, soft) in checks {
            if !check {
                continue;
            }
            let is_hard = hard > -1;
            let max = if is_hard { hard } else { soft };
            if new > max {
                let level = if is_hard { "hard" } else { "soft" };
                self.quota.log.log(self.now_ms, format!("Quota exceeded: {prefix} [current {what}={new}, {level}{kind}Limit={max}]"));
                if is_hard {
                    // PathUtils.getTopNamespace: the first component of the path.
                    if let Some(ns) = path.split('/').nth(1) {
                        *self.quota.exceeded_per_namespace.entry(ns.to_string()).or_default() += 1;
                    }
                    return Err(ErrorCode::QuotaExceeded);
                }
            }
        }
        Ok(())
    }

    fn check_acl(&self, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        auth::check_acl(self.auth_cfg, acl, perm, self.auth_ids)
    }

    /// Prepares one write at `zxid` / `time`. On success the outstanding changes carry its
    /// effects; on error nothing is recorded and the caller logs an ErrorTxn instead.
    pub fn prep(&mut self, req: &Request, zxid: Zxid, time: i64) -> Result<Txn, ErrorCode> {
        match req {
            Request::Create(c) => self.create(c, zxid, time),
            Request::Delete(d) => self.delete(&d.path, d.version, zxid, false),
            Request::SetData(s) => {
                valid(&s.path)?;
                let mut rec = self.record(&s.path)?;
                self.check_acl(&rec.acl, perms::WRITE)?;
                let new_len = data_len(&s.data);
                self.check_quota(&s.path, new_len - rec.data_len, 0)?;
                let version = check_and_inc_version(rec.stat.version, s.version)?;
                let old = rec.digest();
                rec.data_len = new_len;
                rec.stat.version = version;
                rec.stat.mtime = time;
                rec.stat.mzxid = zxid;
                rec.prefix = DigestPrefix::new(path::normalize_root(&s.path), s.data.as_deref().unwrap_or(&[]));
                self.outstanding.add(zxid, &s.path, old, Some(rec));
                Ok(Txn::SetData(SetDataTxn { path: s.path.clone(), data: s.data.clone(), version }))
            }
            Request::SetAcl(s) => {
                valid(&s.path)?;
                let acl = auth::fixup_acl(self.auth_cfg, &s.acl, self.auth_ids)?;
                let mut rec = self.record(&s.path)?;
                self.check_acl(&rec.acl, perms::ADMIN)?;
                let version = check_and_inc_version(rec.stat.aversion, s.version)?;
                let old = rec.digest();
                rec.stat.aversion = version;
                rec.acl = Arc::from(acl.as_slice());
                self.outstanding.add(zxid, &s.path, old, Some(rec));
                Ok(Txn::SetAcl(SetAclTxn { path: s.path.clone(), acl, version }))
            }
            Request::Check(c) => {
                valid(&c.path)?;
                let rec = self.record(&c.path)?;
                self.check_acl(&rec.acl, perms::READ)?;
                let version = check_and_inc_version(rec.stat.version, c.version)?;
                Ok(Txn::Check(CheckVersionTxn { path: c.path.clone(), version }))
            }
            Request::Multi(ops) => Ok(self.multi(ops, zxid, time)),
            Request::Reconfig(r) => self.reconfig(r, zxid, time),
            _ => Err(ErrorCode::BadArguments),
        }
    }

    /// PrepRequestProcessor's reconfig (3.8): reconfigEnabled; WRITE on `/zookeeper/config`
    /// (its ACL is read-only for all: a super user, or skipACL); no reconfig in flight
    /// (ReconfigInProgress); `curConfigId` -1 or the version in force (BadVersion); the new
    /// configuration built from it (BadArguments); a quorum of it synced with this leader
    /// (NewConfigNoQuorum). The txn is ZooKeeper's: a SetDataTxn of `/zookeeper/config` with
    /// the new `QuorumVerifier.toString()`, whose version is this txn's zxid.
    fn reconfig(&mut self, r: &rzk_proto::client::ReconfigRequest, zxid: Zxid, time: i64) -> Result<Txn, ErrorCode> {
        if !self.reconfig_enabled {
            return Err(ErrorCode::ReconfigDisabled);
        }
        // A standalone server has no quorum to reconfigure.
        let view = self.reconfig_view.ok_or(ErrorCode::Unimplemented)?;
        let mut rec = self.record(rzk_tree::CONFIG_NODE)?;
        self.check_acl(&rec.acl, perms::WRITE)?;
        if view.in_progress {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let n = self.tree.get(rzk_tree::CONFIG_NODE).ok_or(ErrorCode::NoNode)?;
        let current = String::from_utf8_lossy(n.data).into_owned();
        let version = current
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("version="))
            .and_then(|v| i64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        if r.cur_config_id != -1 && r.cur_config_id != version {
            return Err(ErrorCode::BadVersion);
        }
        let text = rzk_config::reconfigured(
            &current,
            r.joining_servers.as_deref(),
            r.leaving_servers.as_deref(),
            r.new_members.as_deref(),
            zxid.0 as u64,
            self.standalone_enabled,
        )
        .map_err(|e| {
            tracing::info!(error = %e, "reconfig refused");
            ErrorCode::BadArguments
        })?;
        let m = rzk_zab::Membership::parse(text.as_bytes()).map_err(|_| ErrorCode::BadArguments)?;
        let synced: Vec<rzk_zab::ServerId> = view.synced.iter().map(|s| rzk_zab::ServerId(*s)).collect();
        if !m.is_quorum(&synced) {
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let old = rec.digest();
        rec.data_len = text.len() as i64;
        rec.stat.version = -1;
        rec.stat.mtime = time;
        rec.stat.mzxid = zxid;
        rec.prefix = DigestPrefix::new(rzk_tree::CONFIG_NODE, text.as_bytes());
        self.outstanding.add(zxid, rzk_tree::CONFIG_NODE, old, Some(rec));
        Ok(Txn::Reconfig(SetDataTxn { path: rzk_tree::CONFIG_NODE.to_string(), data: Some(text.into_bytes()), version: -1 }))
    }

    /// `deleteContainer`, from the container manager: only empty containers and TTL nodes.
    pub fn prep_delete_container(&mut self, path: &str, zxid: Zxid) -> Result<Txn, ErrorCode> {
        self.delete(path, -1, zxid, true)
    }

    fn create(&mut self, c: &Create, zxid: Zxid, time: i64) -> Result<Txn, ErrorCode> {
        let mode = CreateMode::from_code(c.flags).ok_or(ErrorCode::BadArguments)?;
        // validateCreateRequest
        if mode.is_ttl() && !self.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        // EphemeralType.validateTTL: a TTL mode needs 0 < ttl <= max, any other mode no ttl.
        let ttl = c.ttl.unwrap_or(-1);
        let ttl_ok = if mode.is_ttl() { EphemeralType::ttl_to_owner(ttl).is_some() } else { ttl < 0 };
        if !ttl_ok {
            return Err(ErrorCode::BadArguments);
        }
        // validatePathForCreate
        let last_slash = c.path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if c.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = &c.path[..last_slash];
        let acl = auth::fixup_acl(self.auth_cfg, &c.acl, self.auth_ids)?;
        let mut parent = self.record(parent_path)?;
        self.check_acl(&parent.acl, perms::CREATE)?;
        let parent_cversion = parent.stat.cversion;
        let path = if mode.is_sequential() { format!("{}{:010}", c.path, parent_cversion) } else { c.path.clone() };
        valid(&path)?;
        if self.record(&path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        if EphemeralType::of(parent.stat.ephemeral_owner, self.extended_types_enabled) == EphemeralType::Normal {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent.stat.cversion + 1;
        self.check_quota(&path, data_len(&c.data), 1)?;
        let owner = if mode.is_container() {
            CONTAINER_EPHEMERAL_OWNER
        } else if mode.is_ttl() {
            EphemeralType::ttl_to_owner(ttl).expect("ttl validated above")
        } else if mode.is_ephemeral() {
            self.session.0
        } else {
            0
        };
        // As in ZooKeeper, the op code picks the txn record; the mode picks the owner.
        let txn = match c.op {
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn {
                path: path.clone(),
                data: c.data.clone(),
                acl: acl.clone(),
                parent_cversion: new_cversion,
            }),
            OpCode::CreateTtl => Txn::CreateTtl(CreateTtlTxn {
                path: path.clone(),
                data: c.data.clone(),
                acl: acl.clone(),
                parent_cversion: new_cversion,
                ttl,
            }),
            _ => Txn::Create {
                txn: CreateTxn {
                    path: path.clone(),
                    data: c.data.clone(),
                    acl: acl.clone(),
                    ephemeral: mode.is_ephemeral(),
                    parent_cversion: new_cversion,
                },
                create2: c.op != OpCode::Create,
            },
        };
        let old = parent.digest();
        parent.child_count += 1;
        parent.stat.cversion = new_cversion;
        parent.stat.pzxid = zxid;
        self.outstanding.add(zxid, path::normalize_root(parent_path), old, Some(parent));
        let stat = StatPersisted::for_new_node(zxid, time, owner);
        let prefix = DigestPrefix::new(&path, c.data.as_deref().unwrap_or(&[]));
        let data_len = data_len(&c.data);
        self.outstanding.add(zxid, &path, 0, Some(NodeRecord { stat, child_count: 0, acl: Arc::from(acl), prefix, data_len }));
        Ok(txn)
    }

    fn delete(&mut self, path: &str, version: i32, zxid: Zxid, container: bool) -> Result<Txn, ErrorCode> {
        // getParentPathAndValidate
        let last_slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') || path::is_special_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = &path[..last_slash];
        let mut parent = self.record(parent_path)?;
        let node = if container {
            let node = self.record(path)?;
            if node.child_count > 0 {
                return Err(ErrorCode::NotEmpty);
            }
            let kind = EphemeralType::of(node.stat.ephemeral_owner, self.extended_types_enabled);
            if !matches!(kind, EphemeralType::Container | EphemeralType::Ttl) {
                return Err(ErrorCode::BadVersion);
            }
            node
        } else {
            self.check_acl(&parent.acl, perms::DELETE)?;
            let node = self.record(path)?;
            check_and_inc_version(node.stat.version, version)?;
            if node.child_count > 0 {
                return Err(ErrorCode::NotEmpty);
            }
            node
        };
        let old = parent.digest();
        parent.child_count -= 1;
        parent.stat.pzxid = zxid;
        self.outstanding.add(zxid, path::normalize_root(parent_path), old, Some(parent));
        self.outstanding.add(zxid, path, node.digest(), None);
        Ok(if container { Txn::DeleteContainer { path: path.to_owned() } } else { Txn::Delete { path: path.to_owned() } })
    }

    /// `closeSession` (PrepRequestProcessor): the session's ephemerals as the tree has them,
    /// then every outstanding change in order: a delete takes its path out, a node the session
    /// owns puts it in. The result is in `HashSet` order; each is recorded as deleted (its
    /// parent's pzxid moves to `zxid`), as ZooKeeper does.
    ///
    /// Every change counts, not only the newest per path: an ephemeral deleted and then
    /// created again by another session (or as a persistent node) is the newest record's
    /// owner's, and listing it would have the tree delete a node that is not the session's
    /// (or refuse to, if it has children), so the logged digest would be wrong too.
    pub fn close_session(&mut self, zxid: Zxid) -> Txn {
        let session = self.session;
        let set = self.outstanding.session_ephemerals(self.tree.ephemerals_set(session), session.0);
        let paths: Vec<String> = set.iter().map(|p| p.to_string()).collect();
        for p in &paths {
            let Some(last_slash) = p.rfind('/') else { continue };
            let parent_path = path::normalize_root(&p[..last_slash]);
            if let Ok(node) = self.record(p) {
                self.outstanding.add(zxid, p, node.digest(), None);
                if let Ok(mut parent) = self.record(parent_path) {
                    let old = parent.digest();
                    parent.child_count -= 1;
                    if zxid > parent.stat.pzxid {
                        parent.stat.pzxid = zxid;
                    }
                    self.outstanding.add(zxid, parent_path, old, Some(parent));
                }
            }
        }
        Txn::CloseSession { paths_to_delete: paths }
    }

    /// A multi: every member at the same zxid; on the first failure the members already
    /// prepped keep their txns (the tree turns them into OK errors), the failing one is an
    /// ErrorTxn with its code, the rest RuntimeInconsistency, and every outstanding change
    /// the multi made is rolled back.
    fn multi(&mut self, ops: &[Request], zxid: Zxid, time: i64) -> Txn {
        self.outstanding.begin_multi();
        let mut failed = false;
        let mut txns = Vec::with_capacity(ops.len());
        for op in ops {
            if failed {
                txns.push(Txn::Error { err: ErrorCode::RuntimeInconsistency.code() });
                continue;
            }
            match self.prep(op, zxid, time) {
                // ZooKeeper 3.8 logs a create2 member as a plain create (and answers it with
                // a CreateResult, no Stat); its DataTree has no create2 case inside a multi.
                Ok(Txn::Create { txn, create2: true }) if matches!(op, Request::Create(c) if c.op == OpCode::Create2) => {
                    txns.push(Txn::Create { txn, create2: false })
                }
                Ok(t) => txns.push(t),
                Err(e) => {
                    failed = true;
                    txns.push(Txn::Error { err: e.code() });
                }
            }
        }
        self.outstanding.end_multi(failed);
        Txn::Multi(txns)
    }
}

fn data_len(data: &Option<Vec<u8>>) -> i64 {
    data.as_ref().map_or(0, |d| d.len() as i64)
}

fn valid(path: &str) -> Result<(), ErrorCode> {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)
}

/// `checkAndIncVersion`: -1 matches any version.
fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(owner: i64) -> Option<NodeRecord> {
        let stat = StatPersisted { ephemeral_owner: owner, ..Default::default() };
        Some(NodeRecord { stat, child_count: 0, acl: Arc::from(Vec::new()), prefix: DigestPrefix::new("/x", b""), data_len: 0 })
    }

    fn set_of(paths: &[String]) -> JavaHashSet<Box<str>> {
        let mut s = JavaHashSet::new();
        for p in paths {
            s.insert_with_hash(rzk_tree::java::string_hash_code(p), p.as_str().into());
        }
        s
    }

    fn listed(s: &JavaHashSet<Box<str>>) -> Vec<String> {
        s.iter().map(|p| p.to_string()).collect()
    }

    /// A closing session without outstanding nodes of its own skips the walk over every
    /// change and gets the walk's result, in the same order; with one, it walks.
    #[test]
    fn session_ephemerals_match_zookeepers_walk() {
        const ME: i64 = 5;
        const OTHER: i64 = 7;
        let mine: Vec<String> = (0..200).map(|i| format!("/e/n{i}")).collect();
        let mut o = Outstanding::default();
        let mut zxid = 1;
        let mut next = || {
            zxid += 1;
            Zxid(zxid)
        };
        for (i, p) in mine.iter().enumerate() {
            match i % 5 {
                0 => o.add(next(), p, 0, None),
                1 => {
                    o.add(next(), p, 0, None);
                    o.add(next(), p, 0, node(OTHER));
                }
                2 => o.add(next(), p, 0, node(ME)), // a setData on it
                _ => {}
            }
        }
        // Other sessions' and persistent nodes elsewhere.
        for i in 0..100 {
            o.add(next(), &format!("/p/n{i}"), 0, node(if i % 2 == 0 { 0 } else { OTHER }));
        }
        // The setData records count as this session's: the walk is taken.
        assert!(o.owned.contains_key(&ME));
        let walked = listed(&o.walk_ephemerals(set_of(&mine), ME));
        assert_eq!(listed(&o.session_ephemerals(set_of(&mine), ME)), walked);
        // Without them (applied), the fast path gives the walk's answer.
        let mut o2 = Outstanding::default();
        for c in o.order.iter().filter(|c| c.owner != Some(ME)) {
            o2.add(c.zxid, &c.path, 0, c.owner.and_then(node));
        }
        assert!(!o2.owned.contains_key(&ME));
        let fast = listed(&o2.session_ephemerals(set_of(&mine), ME));
        assert_eq!(fast, listed(&o2.walk_ephemerals(set_of(&mine), ME)));
        assert_eq!(fast.len(), 200 - 80);
        // The counts follow the changes out.
        o2.applied(Zxid(i64::MAX));
        assert!(o2.owned.is_empty() && o2.order.is_empty());
        o.rollback_from(Zxid(0));
        assert!(o.owned.is_empty());
    }

    #[test]
    fn rate_logger_counts_repeats_within_its_interval() {
        let mut r = RateLogger::default();
        r.log(0, "a".into());
        assert_eq!((r.msg.as_deref(), r.count), (Some("a"), 0));
        r.log(50, "a".into());
        r.log(99, "a".into());
        assert_eq!(r.count, 2);
        // The interval is over: the repeats are flushed, the message starts again.
        r.log(100, "a".into());
        assert_eq!((r.count, r.at_ms), (0, 100));
        r.log(120, "b".into());
        assert_eq!((r.msg.as_deref(), r.count, r.at_ms), (Some("b"), 0, 120));
    }
}
