//! `DataTree`: the znodes, their ACL cache, the per-session ephemeral sets, the container
//! and TTL sets, the two watch tables, quota bookkeeping and the digest — and
//! `processTxn`, which applies a transaction to all of them.
//!
//! Storage: nodes live in a slab (in fixed chunks, [`crate::slab`]) addressed by a `u32`
//! id, 56 bytes each; each holds its full path and data in one allocation, with the rarely
//! set `ephemeralOwner`, `aversion`, `cversion` and `pzxid` behind them. The children sets, for the nodes that
//! have children, are in a map beside the slab. A node's children set is a [`JavaHashSet`]
//! of child ids hashed by the child's *name*, so iterating it gives the names in the order
//! ZooKeeper's
//! `HashSet<String>(8)` would; a path is found by walking those sets from the root, one
//! segment at a time (no separate path index). The root is stored as `/`;
//! ZooKeeper also keeps it under the alias `""`, which shows in [`DataTree::node_count`]
//! (one more than the real nodes), in the approximate data size and in the digest (the
//! root is hashed under `""`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use rzk_proto::client::{SetWatches2, WatcherEvent};
use rzk_proto::txn::{Txn, TxnHeader};
use rzk_proto::{Acl, ErrorCode, EventType, KeeperState, SessionId, Stat, StatPersisted, WatcherType, Zxid};

use crate::acl_cache::{AclCache, OPEN_UNSAFE_ACL_ID};
use crate::digest;
use crate::ephemeral::{EphemeralType, CONTAINER_EPHEMERAL_OWNER};
use crate::java::{string_hash_code, ConcurrentOrder, JavaHashSet};
use crate::quota::{self, PathTrie, StatsTrack};
use crate::slab::ChunkedVec;
use crate::watch::{Flavor, WatchManager, WatcherId, WatcherMode, WatchesSummary};

type NodeId = u32;
const ROOT: NodeId = 0;

/// The hash of a [`NodeId`] key (`DataTree::children`): a multiplication, as node ids are
/// small dense integers chosen by the tree, not by clients.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (n as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Where a child was when a snapshot walk listed it ([`DataTree::snapshot_node_hinted`]): a
/// hint only, checked against the path before use (the node may be gone, its slot reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHint(NodeId);

/// `Quotas.procZookeeper`.
pub const PROC_ZOOKEEPER: &str = "/zookeeper";
/// `DataTree.DIGEST_LOG_INTERVAL`: a digest is logged at every zxid that is a multiple of it.
pub const DIGEST_LOG_INTERVAL: i64 = 128;
/// `DataTree.DIGEST_LOG_LIMIT`: the digest log keeps this many.
pub const DIGEST_LOG_LIMIT: usize = 1024;
/// `ZooDefs.CONFIG_NODE`.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// Settings that change how the tree behaves (ZooKeeper system properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeOptions {
    /// `zookeeper.extendedTypesEnabled`: TTL owners are recognised only when true.
    pub extended_types_enabled: bool,
    /// `zookeeper.digest.enabled` (default true): when false every digest is 0.
    pub digest_enabled: bool,
    /// Which ZooKeeper release's quirks to reproduce.
    pub flavor: Flavor,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions { extended_types_enabled: false, digest_enabled: true, flavor: Flavor::V3_8 }
    }
}

/// What a watch is set by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// getData (and exists on an existing node): a one-time watch in the data table.
    Data,
    /// exists on a missing node: also a one-time watch in the data table.
    Exist,
    /// getChildren: a one-time watch in the child table.
    Child,
    /// addWatch PERSISTENT: both tables.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: both tables in 3.8, the data table only in 3.9.
    PersistentRecursive,
}

/// The result of applying one txn (ZooKeeper's `ProcessTxnResult`, per op).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    /// create / create2 / createContainer / createTTL: the created path and its stat.
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    SetData {
        stat: Stat,
    },
    SetAcl {
        stat: Stat,
    },
    Check,
    /// An ErrorTxn's code (Ok for members of a failed multi that precede the failing one),
    /// or the error ZooKeeper's processTxn reports when the txn cannot apply (NoNode,
    /// NodeExists, ...: conditions the prep step should have caught).
    Error(ErrorCode),
    /// One result per member, in order. A member list cut short means a member of a type
    /// that cannot appear in a multi stopped processing (ZooKeeper's IOException path).
    Multi(Vec<TxnResult>),
    SessionCreated,
    SessionClosed,
}

impl TxnResult {
    /// `ProcessTxnResult.err`: the error code, for a multi the first non-Ok member's.
    pub fn err(&self) -> ErrorCode {
        match self {
            TxnResult::Error(e) => *e,
            TxnResult::Multi(rs) => rs.iter().map(|r| r.err()).find(|e| *e != ErrorCode::Ok).unwrap_or(ErrorCode::Ok),
            _ => ErrorCode::Ok,
        }
    }
}

/// What [`DataTree::apply`] did: the result and the watch notifications, in the order
/// ZooKeeper sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub result: TxnResult,
    pub deliveries: Vec<(WatcherId, WatcherEvent)>,
    /// For each delivery, the ACL of the znode it is about (for NodeChildrenChanged, the
    /// parent's). ZooKeeper 3.9 sends a notification only to a connection whose auth has READ
    /// on it (`ServerCnxn.process(event, znodeAcl)`); 3.8 does not check.
    pub delivery_acls: Vec<Arc<[Acl]>>,
}

/// A read-only view of one znode.
#[derive(Debug, Clone)]
pub struct NodeRef<'a> {
    pub path: &'a str,
    /// The data; empty when it is null (see [`NodeRef::data_opt`]).
    pub data: &'a [u8],
    /// True when the node's data is a null buffer rather than an empty one.
    pub data_is_null: bool,
    /// The node's ACL list (shared with the ACL cache).
    pub acl: Arc<[Acl]>,
    /// The ACL cache id (`-1` = OPEN_ACL_UNSAFE without an entry).
    pub acl_id: i64,
    /// The persisted stat, as stored (cversion counts creates only; ephemeralOwner raw).
    pub stat: StatPersisted,
    pub num_children: i32,
    pub ephemeral_type: EphemeralType,
    extended_types_enabled: bool,
}

impl<'a> NodeRef<'a> {
    /// The data as ZooKeeper returns it: `None` for a null buffer.
    pub fn data_opt(&self) -> Option<&'a [u8]> {
        if self.data_is_null {
            None
        } else {
            Some(self.data)
        }
    }
    /// `DataNode.copyStat`: the Stat a client sees.
    pub fn client_stat(&self) -> Stat {
        make_stat(&self.stat, self.data.len(), self.num_children, self.extended_types_enabled)
    }
    pub fn cversion(&self) -> i32 {
        self.stat.cversion
    }
    pub fn ephemeral_owner(&self) -> i64 {
        self.stat.ephemeral_owner
    }
    /// The node's contribution to the tree digest (`DigestCalculator.calculateDigest`).
    pub fn digest(&self) -> i64 {
        digest::calculate_digest(self.path, self.data, &self.stat)
    }
}

fn make_stat(s: &StatPersisted, data_len: usize, num_children: i32, ext: bool) -> Stat {
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        // v3 semantics: creates + deletes, from the count of creates and the live children.
        cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
        aversion: s.aversion,
        ephemeral_owner: EphemeralType::client_ephemeral_owner(s.ephemeral_owner, ext),
        data_length: data_len as i32,
        num_children,
        pzxid: s.pzxid,
    }
}

/// A znode's full path and its data in one allocation: a LEB128 header holding
/// `path length << 2 | extras flag | null flag`, the path's bytes, then (when the flag says
/// so) the extras block, then the data's bytes. ZooKeeper keeps a null buffer apart from an
/// empty one (a client that created a node with null data reads null back); the flag says
/// which.
///
/// One allocation instead of two (path `Box<str>` and data `Box<[u8]>`) saves a 16-byte fat
/// pointer in every node and one allocator size-class rounding: a 27-byte path with 100
/// bytes of data took 32 + 112 bytes, and now takes 128 (see docs/BENCH.md, memory per
/// znode).
///
/// What a node rarely has is kept here too, after the path, rather than in every `Node`
/// (most znodes are persistent leaves that never had their ACL set): its `ephemeralOwner`
/// when not 0, its `aversion` and `cversion` when not 0, its `pzxid` when not its `czxid`
/// (as the difference: a node's pzxid moves only when its children change). A header bit
/// says whether a block of them follows the path: a mask byte, then each present one as a
/// zigzag varint. The path comes first because it is what the hot paths read most (every
/// path comparison of a lookup): reaching it decodes one varint, usually one byte. Setting
/// an extra rebuilds the allocation, as setData does. (The ACL id is not one of them: every
/// node created with an ACL list has a cache id, -1 is only for a null list.)
///
/// The path bytes are always the UTF-8 of the `&str` the node was made from (they are never
/// written otherwise), which is why the hot paths may compare and hash them as bytes.
#[derive(Clone, PartialEq, Eq)]
struct PathData(Box<[u8]>);

/// Header bits below the path length: data is null; an extras block follows the path.
const PD_NULL: u64 = 1;
const PD_EXTRAS: u64 = 2;
const PD_FLAG_BITS: u32 = 2;
/// Bits of the extras mask byte.
const EX_OWNER: u8 = 1;
const EX_AVERSION: u8 = 2;
const EX_CVERSION: u8 = 4;
const EX_PZXID: u8 = 8;
const EX_BITS: [u8; 4] = [EX_OWNER, EX_AVERSION, EX_CVERSION, EX_PZXID];

/// A node's rarely-set fields (see [`PathData`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extras {
    owner: i64,
    aversion: i32,
    cversion: i32,
    /// pzxid − czxid.
    pzxid_delta: i64,
}

impl Extras {
    const DEFAULT: Extras = Extras { owner: 0, aversion: 0, cversion: 0, pzxid_delta: 0 };

    fn fields(&self) -> [(u8, i64); 4] {
        [(EX_OWNER, self.owner), (EX_AVERSION, self.aversion as i64), (EX_CVERSION, self.cversion as i64), (EX_PZXID, self.pzxid_delta)]
    }
}

fn push_varint(v: &mut Vec<u8>, mut x: u64) {
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            v.push(b);
            return;
        }
        v.push(b | 0x80);
    }
}

fn varint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

/// (value, bytes read) of the varint at the start of `b`.
#[inline]
fn read_varint(b: &[u8]) -> (u64, usize) {
    if b[0] & 0x80 == 0 {
        return (b[0] as u64, 1);
    }
    let mut x = 0u64;
    let mut i = 0;
    loop {
        let c = b[i];
        x |= ((c & 0x7f) as u64) << (7 * i);
        i += 1;
        if c & 0x80 == 0 {
            return (x, i);
        }
    }
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(x: u64) -> i64 {
    (x >> 1) as i64 ^ -((x & 1) as i64)
}

/// Where a [`PathData`]'s parts are.
struct Layout {
    /// Where the path starts (just after the header varint).
    path_at: usize,
    path_len: usize,
    /// Where the data starts (after the path and the extras block, if any).
    data_at: usize,
    null: bool,
}

impl PathData {
    fn new(path: &str, data: Option<&[u8]>, ex: Extras) -> PathData {
        PathData::from_parts(path.as_bytes(), data, ex)
    }

    /// [`PathData::new`] from path bytes that are already a node's (valid UTF-8).
    fn from_parts(path: &[u8], data: Option<&[u8]>, ex: Extras) -> PathData {
        let d = data.unwrap_or(&[]);
        let fields = ex.fields();
        let mask = fields.iter().filter(|f| f.1 != 0).fold(0u8, |m, f| m | f.0);
        let h = (path.len() as u64) << PD_FLAG_BITS | if data.is_none() { PD_NULL } else { 0 } | if mask != 0 { PD_EXTRAS } else { 0 };
        let extras_len =
            if mask == 0 { 0 } else { 1 + fields.iter().filter(|f| mask & f.0 != 0).map(|f| varint_len(zigzag(f.1))).sum::<usize>() };
        // Exactly the final size: a larger buffer shrunk by `into_boxed_slice` may stay in its
        // bigger allocator size class (mimalloc reallocates in place when shrinking).
        let mut v = Vec::with_capacity(varint_len(h) + extras_len + path.len() + d.len());
        push_varint(&mut v, h);
        v.extend_from_slice(path);
        if mask != 0 {
            v.push(mask);
            for f in fields.iter().filter(|f| mask & f.0 != 0) {
                push_varint(&mut v, zigzag(f.1));
            }
        }
        v.extend_from_slice(d);
        debug_assert_eq!(v.len(), v.capacity());
        PathData(v.into_boxed_slice())
    }

    /// The same path with other data and extras (setData, a child's create or delete,
    /// setACL): the path is copied as bytes, not checked again.
    fn rebuilt(&self, data: Option<&[u8]>, ex: Extras) -> PathData {
        PathData::from_parts(self.path_bytes(), data, ex)
    }

    #[inline]
    fn layout(&self) -> Layout {
        let (h, path_at) = read_varint(&self.0);
        let path_len = (h >> PD_FLAG_BITS) as usize;
        let mut data_at = path_at + path_len;
        if h & PD_EXTRAS != 0 {
            let mask = self.0[data_at];
            data_at += 1;
            for bit in EX_BITS {
                if mask & bit != 0 {
                    data_at += read_varint(&self.0[data_at..]).1;
                }
            }
        }
        Layout { path_at, path_len, data_at, null: h & PD_NULL != 0 }
    }

    /// The owner, aversion, cversion and pzxid delta.
    fn extras(&self) -> Extras {
        let (h, path_at) = read_varint(&self.0);
        let mut ex = Extras::DEFAULT;
        if h & PD_EXTRAS == 0 {
            return ex;
        }
        let mut i = path_at + (h >> PD_FLAG_BITS) as usize;
        let mask = self.0[i];
        i += 1;
        for bit in EX_BITS {
            if mask & bit != 0 {
                let (z, n) = read_varint(&self.0[i..]);
                i += n;
                let x = unzigzag(z);
                match bit {
                    EX_OWNER => ex.owner = x,
                    EX_AVERSION => ex.aversion = x as i32,
                    EX_CVERSION => ex.cversion = x as i32,
                    _ => ex.pzxid_delta = x,
                }
            }
        }
        ex
    }

    /// The path's bytes: one varint decoded, whatever else the node holds.
    #[inline]
    fn path_bytes(&self) -> &[u8] {
        let (h, i) = read_varint(&self.0);
        &self.0[i..i + (h >> PD_FLAG_BITS) as usize]
    }

    fn path(&self) -> &str {
        std::str::from_utf8(self.path_bytes()).expect("a node's path is the UTF-8 it was created from")
    }

    /// The data; empty when it is null.
    fn data(&self) -> &[u8] {
        &self.0[self.layout().data_at..]
    }

    #[cfg(test)]
    fn is_null(&self) -> bool {
        read_varint(&self.0).0 & PD_NULL != 0
    }

    fn data_opt(&self) -> Option<&[u8]> {
        let l = self.layout();
        if l.null {
            None
        } else {
            Some(&self.0[l.data_at..])
        }
    }

    /// The path's bytes and the data (empty when null), from one decoding of the layout.
    fn path_and_data(&self) -> (&[u8], &[u8]) {
        let l = self.layout();
        (&self.0[l.path_at..l.path_at + l.path_len], &self.0[l.data_at..])
    }
}

impl std::fmt::Debug for PathData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathData").field("path", &self.path()).field("data", &self.data_opt()).finish()
    }
}

/// A node's `StatPersisted` without `ephemeralOwner`, `aversion`, `cversion` and `pzxid`
/// (in [`PathData`]), and its ACL id: 40 bytes (`StatPersisted` itself takes 64).
#[derive(Debug, Clone)]
struct NodeStat {
    czxid: Zxid,
    mzxid: Zxid,
    ctime: i64,
    mtime: i64,
    version: i32,
    /// The ACL cache id (`DataNode.acl`, a long in ZooKeeper; ids are counted from 0 here
    /// and checked to fit when a snapshot is loaded).
    acl: i32,
}

/// One znode: 56 bytes in the slab (its children set, when it has one, is in
/// `DataTree::children`), plus its [`PathData`] allocation.
#[derive(Debug, Clone)]
struct Node {
    pd: PathData,
    stat: NodeStat,
}

const _: () = assert!(std::mem::size_of::<Option<Node>>() == 56);

/// An ACL id as a node keeps it.
fn acl_slot(acl: i64) -> i32 {
    i32::try_from(acl).expect("ACL ids are counted from 0 by the ACL cache and checked when a snapshot loads")
}

impl Node {
    fn new(path: &str, data: Option<&[u8]>, acl: i64, stat: StatPersisted) -> Node {
        let s = NodeStat {
            czxid: stat.czxid,
            mzxid: stat.mzxid,
            ctime: stat.ctime,
            mtime: stat.mtime,
            version: stat.version,
            acl: acl_slot(acl),
        };
        let ex = Extras {
            owner: stat.ephemeral_owner,
            aversion: stat.aversion,
            cversion: stat.cversion,
            pzxid_delta: stat.pzxid.0.wrapping_sub(stat.czxid.0),
        };
        Node { pd: PathData::new(path, data, ex), stat: s }
    }
    fn cversion(&self) -> i32 {
        self.pd.extras().cversion
    }
    fn pzxid(&self) -> Zxid {
        Zxid(self.stat.czxid.0.wrapping_add(self.pd.extras().pzxid_delta))
    }
    /// Sets cversion and pzxid (a child created or deleted), keeping the rest.
    fn set_child_stat(&mut self, cversion: i32, pzxid: Zxid) {
        let ex = Extras { cversion, pzxid_delta: pzxid.0.wrapping_sub(self.stat.czxid.0), ..self.pd.extras() };
        self.pd = self.pd.rebuilt(self.pd.data_opt(), ex);
    }
    fn acl(&self) -> i64 {
        self.stat.acl as i64
    }
    fn owner(&self) -> i64 {
        self.pd.extras().owner
    }
    /// Sets the ACL id and aversion (setACL), keeping path, data and owner.
    fn set_acl(&mut self, acl: i64, aversion: i32) {
        self.stat.acl = acl_slot(acl);
        let ex = self.pd.extras();
        if ex.aversion != aversion {
            self.pd = self.pd.rebuilt(self.pd.data_opt(), Extras { aversion, ..ex });
        }
    }
    /// The persisted stat, as ZooKeeper's `DataNode.stat`.
    fn persisted(&self) -> StatPersisted {
        let s = &self.stat;
        let ex = self.pd.extras();
        StatPersisted {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: ex.cversion,
            aversion: ex.aversion,
            ephemeral_owner: ex.owner,
            pzxid: Zxid(s.czxid.0.wrapping_add(ex.pzxid_delta)),
        }
    }
    fn path(&self) -> &str {
        self.pd.path()
    }
    fn data(&self) -> &[u8] {
        self.pd.data()
    }
    fn data_opt(&self) -> Option<&[u8]> {
        self.pd.data_opt()
    }
    /// Replaces the data (`None` = null), keeping the path.
    fn set_data(&mut self, data: Option<&[u8]>) {
        self.pd = self.pd.rebuilt(data, self.pd.extras());
    }
    /// The last path segment. Only the name is checked as UTF-8 (getChildren lists many).
    fn name(&self) -> &str {
        let p = self.pd.path_bytes();
        let name = match p.iter().rposition(|&b| b == b'/') {
            Some(i) => &p[i + 1..],
            None => p,
        };
        std::str::from_utf8(name).expect("a node's path is the UTF-8 it was created from")
    }
}

/// `String.length()`: UTF-16 code units.
fn java_len(s: &str) -> i64 {
    if s.is_ascii() {
        s.len() as i64
    } else {
        s.encode_utf16().count() as i64
    }
}

/// `(parentName, childName)` as ZooKeeper splits a path at its last slash; the parent of a
/// top-level node is the root (`""` in ZooKeeper, `/` here).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// Notifications with the ACL of the znode each is about (3.9 checks READ on it before
/// delivering).
type Out = Vec<(WatcherId, WatcherEvent, Arc<[Acl]>)>;

/// A SyncConnected notification.
fn event(t: EventType, path: &str) -> WatcherEvent {
    WatcherEvent { event_type: t.code(), state: KeeperState::SyncConnected.code(), path: path.to_string() }
}

/// ZooKeeper's znode tree.
#[derive(Debug, Clone)]
pub struct DataTree {
    opts: TreeOptions,
    slab: ChunkedVec<Option<Node>>,
    free: Vec<NodeId>,
    /// Each node's children set, for the nodes that have had a child: `null` until the first
    /// child is added, then never shrinks (as in ZooKeeper). Outside the slab: most znodes
    /// are leaves, and 8 bytes in every node cost more than a map of the parents.
    children: HashMap<NodeId, JavaHashSet<NodeId>, BuildHasherDefault<IdHasher>>,
    live: usize,
    acl_cache: AclCache,
    /// Per-session ephemeral sets (`HashSet<String>` each)...
    ephemerals: BTreeMap<i64, JavaHashSet<Box<str>>>,
    /// ...and the order of ZooKeeper's ConcurrentHashMap holding them.
    ephemeral_sessions: ConcurrentOrder<i64>,
    containers: ConcurrentOrder<Box<str>>,
    ttls: ConcurrentOrder<Box<str>>,
    data_watches: WatchManager,
    child_watches: WatchManager,
    p_trie: PathTrie,
    node_data_size: i64,
    digest: i64,
    last_processed_zxid: Zxid,
    /// `digestLog`: the tree digest after every applied txn whose zxid is a multiple of
    /// [`DIGEST_LOG_INTERVAL`], the newest [`DIGEST_LOG_LIMIT`] (the `hash` word prints it).
    digest_log: VecDeque<(Zxid, i64)>,
    /// While a loaded snapshot's digest waits for its txn to be replayed (ZooKeeper's
    /// `digestFromLoadedSnapshot`, a fuzzy snapshot), nothing is logged.
    digest_log_paused: bool,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree as ZooKeeper builds it: `/`, `/zookeeper`, `/zookeeper/quota` and
    /// `/zookeeper/config`, all with a zero stat; the first three use OPEN_ACL_UNSAFE (id -1),
    /// `/zookeeper/config` has READ_ACL_UNSAFE (ACL id 1) and aversion -1 (it is set with
    /// `setACL(..., -1)`).
    pub fn new() -> DataTree {
        Self::with_options(TreeOptions::default())
    }

    pub fn with_options(opts: TreeOptions) -> DataTree {
        let mut t = DataTree::empty(opts);
        let root = t.insert_node(Node::new("/", Some(&[]), OPEN_UNSAFE_ACL_ID, StatPersisted::default()));
        debug_assert_eq!(root, ROOT);
        t.digest_add(ROOT);
        for p in [PROC_ZOOKEEPER, quota::QUOTA_ZOOKEEPER, CONFIG_NODE] {
            let (parent, _) = split_path(p).expect("absolute");
            let pid = t.lookup(parent).expect("parent");
            let id = t.insert_node(Node::new(p, Some(&[]), OPEN_UNSAFE_ACL_ID, StatPersisted::default()));
            t.add_child(pid, id);
            t.digest_add(id);
        }
        // addConfigNode: setACL(CONFIG_NODE, READ_ACL_UNSAFE, -1).
        let _ = t.set_acl(CONFIG_NODE, &Acl::read_unsafe(), -1);
        t.node_data_size = t.compute_approximate_data_size();
        t
    }

    fn empty(opts: TreeOptions) -> DataTree {
        DataTree {
            opts,
            slab: ChunkedVec::default(),
            free: Vec::new(),
            children: HashMap::default(),
            live: 0,
            acl_cache: AclCache::new(),
            ephemerals: BTreeMap::new(),
            ephemeral_sessions: ConcurrentOrder::default(),
            containers: ConcurrentOrder::default(),
            ttls: ConcurrentOrder::default(),
            data_watches: WatchManager::new(opts.flavor),
            child_watches: WatchManager::new(opts.flavor),
            p_trie: PathTrie::default(),
            node_data_size: 0,
            digest: 0,
            last_processed_zxid: Zxid(0),
            digest_log: VecDeque::new(),
            digest_log_paused: false,
        }
    }

    pub fn options(&self) -> TreeOptions {
        self.opts
    }

    // ---- storage ----

    fn node(&self, id: NodeId) -> &Node {
        self.slab[id as usize].as_ref().expect("live node id")
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.slab[id as usize].as_mut().expect("live node id")
    }

    /// The node at `path` (`""` and `/` are the root), found by walking the children sets
    /// from the root: at each level the child whose name has the segment's Java hash and
    /// whose full path is the query's prefix up to that segment. So exactly the node whose
    /// path equals `path`, as a map keyed by full path would find it, without such a map's
    /// ~19 bytes per znode (see docs/BENCH.md, memory per znode).
    fn lookup(&self, path: &str) -> Option<NodeId> {
        let b = path.as_bytes();
        if b.is_empty() || b == b"/" {
            return self.slab.first().and_then(|r| r.as_ref()).map(|_| ROOT);
        }
        if b[0] != b'/' {
            return None;
        }
        let mut id = ROOT;
        let mut start = 1;
        loop {
            let end = b[start..].iter().position(|&c| c == b'/').map_or(b.len(), |i| start + i);
            let children = self.children.get(&id)?;
            let prefix = &b[..end];
            let slab = &self.slab;
            id = *children.find_by(string_hash_code(&path[start..end]), |&c| {
                slab[c as usize].as_ref().is_some_and(|n| n.pd.path_bytes() == prefix)
            })?;
            if end == b.len() {
                return Some(id);
            }
            start = end + 1;
        }
    }

    /// The child of `parent` at `path`, whose last segment is `name`: one probe of the
    /// parent's children, where [`DataTree::lookup`] would walk from the root again (a
    /// create's or delete's existence check right after finding the parent).
    fn child_of(&self, parent: NodeId, path: &str, name: &str) -> Option<NodeId> {
        debug_assert!(path.ends_with(name));
        let children = self.children.get(&parent)?;
        let b = path.as_bytes();
        let slab = &self.slab;
        children.find_by(string_hash_code(name), |&c| slab[c as usize].as_ref().is_some_and(|n| n.pd.path_bytes() == b)).copied()
    }

    /// Stores a node; it becomes reachable by [`DataTree::lookup`] once added to its parent's
    /// children (the root is reachable at once).
    fn insert_node(&mut self, node: Node) -> NodeId {
        let id = match self.free.pop() {
            Some(id) => {
                self.slab[id as usize] = Some(node);
                id
            }
            None => {
                self.slab.push(Some(node));
                (self.slab.len() - 1) as NodeId
            }
        };
        self.live += 1;
        id
    }

    /// Frees a node already removed from its parent's children.
    fn remove_node(&mut self, id: NodeId) -> Node {
        self.live -= 1;
        self.free.push(id);
        self.children.remove(&id);
        self.slab[id as usize].take().expect("live node id")
    }

    fn add_child(&mut self, parent: NodeId, child: NodeId) {
        let h = string_hash_code(self.node(child).name());
        debug_assert!(self.slab.get(parent as usize).is_some_and(|n| n.is_some()), "a child of a live node");
        self.children.entry(parent).or_insert_with(|| JavaHashSet::with_capacity(8)).insert_with_hash(h, child);
    }

    fn remove_child(&mut self, parent: NodeId, child: NodeId) -> bool {
        let h = string_hash_code(self.node(child).name());
        match self.children.get_mut(&parent) {
            Some(c) => c.remove_with_hash(h, &child),
            None => false,
        }
    }

    fn child_ids(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.children.get(&id).into_iter().flat_map(|c| c.iter().copied())
    }

    fn num_children(&self, id: NodeId) -> i32 {
        self.children.get(&id).map_or(0, |c| c.len() as i32)
    }

    // ---- digest ----

    fn node_digest(&self, id: NodeId) -> i64 {
        if !self.opts.digest_enabled {
            return 0;
        }
        let n = self.node(id);
        let (path, data) = n.pd.path_and_data();
        digest::DigestPrefix::from_bytes(path, data).digest(&n.persisted())
    }

    fn digest_add(&mut self, id: NodeId) {
        self.digest = self.digest.wrapping_add(self.node_digest(id));
    }

    fn digest_remove(&mut self, id: NodeId) {
        self.digest = self.digest.wrapping_sub(self.node_digest(id));
    }

    /// The tree digest (`getTreeDigest`), kept up to date by every change.
    pub fn digest(&self) -> i64 {
        self.digest
    }

    /// The digest version rzk computes (`DigestCalculator.getDigestVersion`).
    pub fn digest_version(&self) -> i32 {
        digest::DIGEST_VERSION
    }

    /// The digest recomputed from every node (for checks; [`DataTree::digest`] is the
    /// incrementally maintained value).
    pub fn compute_digest(&self) -> i64 {
        let mut d = 0i64;
        for (i, n) in self.slab.iter().enumerate() {
            if n.is_some() {
                d = d.wrapping_add(self.node_digest(i as NodeId));
            }
        }
        d
    }

    // ---- read accessors ----

    fn view(&self, id: NodeId) -> NodeRef<'_> {
        self.view_as(id, self.node(id).path())
    }

    /// The view of node `id`, whose path is `path` (given by a caller that has it already,
    /// so the node's own bytes need not be checked as UTF-8 again).
    fn view_as<'a>(&'a self, id: NodeId, path: &'a str) -> NodeRef<'a> {
        let n = self.node(id);
        let stat = n.persisted();
        let l = n.pd.layout();
        NodeRef {
            path,
            data: &n.pd.0[l.data_at..],
            data_is_null: l.null,
            acl: self.acl_of(n.acl()),
            acl_id: n.acl(),
            num_children: self.num_children(id),
            ephemeral_type: EphemeralType::of(stat.ephemeral_owner, self.opts.extended_types_enabled),
            stat,
            extended_types_enabled: self.opts.extended_types_enabled,
        }
    }

    fn acl_of(&self, acl_id: i64) -> Arc<[Acl]> {
        // ZooKeeper throws for an id missing from the cache; that cannot happen through
        // apply (usage is counted per node), only with a corrupt snapshot.
        self.acl_cache.convert_long(acl_id).cloned().unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// The node at `path` (`""` is the root, as in ZooKeeper).
    /// The view's `path` is `path` itself for every node but the root (a lookup finds a node
    /// only when its path is byte for byte the one asked for).
    pub fn get<'a>(&'a self, path: &'a str) -> Option<NodeRef<'a>> {
        self.lookup(path).map(|id| if id == ROOT { self.view(id) } else { self.view_as(id, path) })
    }

    /// [`DataTree::get`] with a view that borrows only the tree (its path is the node's own).
    pub fn node_ref(&self, path: &str) -> Option<NodeRef<'_>> {
        self.lookup(path).map(|id| self.view(id))
    }

    pub fn contains(&self, path: &str) -> bool {
        self.lookup(path).is_some()
    }

    /// The full client Stat of `path`.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.lookup(path).map(|id| self.client_stat(id))
    }

    fn client_stat(&self, id: NodeId) -> Stat {
        let n = self.node(id);
        make_stat(&n.persisted(), n.data().len(), self.num_children(id), self.opts.extended_types_enabled)
    }

    /// The children's names in the order ZooKeeper's getChildren returns them.
    pub fn get_children(&self, path: &str) -> Option<Vec<String>> {
        let id = self.lookup(path)?;
        Some(self.child_ids(id).map(|c| self.node(c).name().to_string()).collect())
    }

    /// The ACL list of `path` and its Stat (`getACL`).
    pub fn get_acl(&self, path: &str) -> Option<(Vec<Acl>, Stat)> {
        let id = self.lookup(path)?;
        Some((self.acl_of(self.node(id).acl()).to_vec(), self.client_stat(id)))
    }

    /// `DataTree.getData`: data and Stat; with a watcher, a data watch is left (only when the
    /// node exists).
    pub fn get_data(&mut self, path: &str, watcher: Option<WatcherId>) -> Result<(Stat, &[u8]), ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        if let Some(w) = watcher {
            self.data_watches.add_watch(path, w, WatcherMode::Standard);
        }
        let stat = self.client_stat(id);
        Ok((stat, self.node(id).data()))
    }

    /// `DataTree.statNode` (exists): with a watcher, a data watch is left whether or not the
    /// node exists.
    pub fn stat_node(&mut self, path: &str, watcher: Option<WatcherId>) -> Result<Stat, ErrorCode> {
        if let Some(w) = watcher {
            self.data_watches.add_watch(path, w, WatcherMode::Standard);
        }
        self.stat(path).ok_or(ErrorCode::NoNode)
    }

    /// `DataTree.getChildren` with its Stat; with a watcher, a child watch is left (only when
    /// the node exists).
    pub fn get_children_watch(&mut self, path: &str, watcher: Option<WatcherId>) -> Result<(Vec<String>, Stat), ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let stat = self.client_stat(id);
        let children = self.child_ids(id).map(|c| self.node(c).name().to_string()).collect();
        if let Some(w) = watcher {
            self.child_watches.add_watch(path, w, WatcherMode::Standard);
        }
        Ok((children, stat))
    }

    /// `getAllChildrenNumber`: the number of descendants of `path` (for `/`, every node but
    /// the root). None when `path` does not exist.
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        let id = self.lookup(path)?;
        let mut n = 0i32;
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            for c in self.child_ids(x) {
                n += 1;
                stack.push(c);
            }
        }
        Some(n)
    }

    /// `getEphemerals(session)`: the session's ephemeral paths, in the order of ZooKeeper's
    /// cloned `HashSet` (what getEphemerals and the closeSession txn list).
    pub fn get_ephemerals(&self, session: SessionId) -> Vec<String> {
        match self.ephemerals.get(&session.0) {
            Some(s) => s.java_clone().iter().map(|p| p.to_string()).collect(),
            None => Vec::new(),
        }
    }

    /// The clone `getEphemerals(session)` returns, for the prep step to adjust with pending
    /// changes before listing it in a closeSession txn.
    pub fn ephemerals_set(&self, session: SessionId) -> JavaHashSet<Box<str>> {
        self.ephemerals.get(&session.0).map(|s| s.java_clone()).unwrap_or_default()
    }

    /// Sessions that have (or had, until their close) ephemeral nodes (`getSessions`), in the
    /// order of ZooKeeper's ConcurrentHashMap (see [`ConcurrentOrder`]). ZooKeeper keeps a
    /// session's entry after its last ephemeral is deleted, until the session closes.
    pub fn sessions_with_ephemerals(&self) -> Vec<SessionId> {
        self.ephemeral_sessions.ordered().into_iter().map(|&s| SessionId(s)).collect()
    }

    /// Every session's ephemerals as `dump` lists them: sessions in ConcurrentHashMap order,
    /// each session's paths in its set's order.
    pub fn ephemerals_by_session(&self) -> Vec<(SessionId, Vec<String>)> {
        self.ephemeral_sessions
            .ordered()
            .into_iter()
            .map(|&s| {
                let paths = self.ephemerals.get(&s).map(|set| set.iter().map(|p| p.to_string()).collect()).unwrap_or_default();
                (SessionId(s), paths)
            })
            .collect()
    }

    /// `getEphemeralsCount`.
    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Container paths, in the order of `getContainers()`: `new HashSet<>(containers)` of a
    /// ConcurrentHashMap key set (see [`ConcurrentOrder`]).
    pub fn containers(&self) -> Vec<String> {
        let set = JavaHashSet::from_collection(self.containers.ordered().into_iter().map(|p| &**p));
        set.iter().map(|p| p.to_string()).collect()
    }

    /// TTL node paths with their TTL in ms, in the order of `new HashSet<>(ttls)` (see
    /// [`DataTree::containers`]).
    pub fn ttls(&self) -> Vec<(String, i64)> {
        let set = JavaHashSet::from_collection(self.ttls.ordered().into_iter().map(|p| &**p));
        set.iter()
            .map(|p| {
                let owner = self.get(p).map_or(0, |n| n.stat.ephemeral_owner);
                (p.to_string(), EphemeralType::ttl_value(owner))
            })
            .collect()
    }

    /// `ContainerManager.getCandidates` at wall time `now_ms`: empty containers that had a
    /// child (cversion > 0) or, with `max_never_used_interval_ms` ≠ 0, have been unused longer
    /// than that; and empty TTL nodes unchanged for longer than their TTL. In the order of
    /// ZooKeeper's result `HashSet`, i.e. the order the deleteContainer requests are issued.
    pub fn container_candidates(&self, now_ms: i64, max_never_used_interval_ms: i64) -> Vec<String> {
        let mut candidates: JavaHashSet<&str> = JavaHashSet::new();
        for p in self.containers() {
            if let Some(id) = self.lookup(&p) {
                let n = self.node(id);
                if self.num_children(id) == 0 {
                    let elapsed = now_ms - n.stat.mtime;
                    if n.cversion() > 0 || (max_never_used_interval_ms != 0 && elapsed > max_never_used_interval_ms) {
                        candidates.insert(n.path());
                    }
                }
            }
        }
        for (p, _) in self.ttls() {
            if let Some(id) = self.lookup(&p) {
                let n = self.node(id);
                if self.num_children(id) == 0 && EphemeralType::of(n.owner(), self.opts.extended_types_enabled) == EphemeralType::Ttl {
                    let ttl = EphemeralType::ttl_value(n.owner());
                    if ttl != 0 && now_ms - n.stat.mtime > ttl {
                        candidates.insert(n.path());
                    }
                }
            }
        }
        candidates.iter().map(|p| p.to_string()).collect()
    }

    /// `getNodeCount`: ZooKeeper's node map size, which counts the root twice (`""`, `/`).
    pub fn node_count(&self) -> usize {
        self.live + 1
    }

    /// `cachedApproximateDataSize` (mntr's `zk_approximate_data_size`): path lengths plus
    /// data lengths, maintained incrementally exactly as ZooKeeper does.
    pub fn approximate_data_size(&self) -> i64 {
        self.node_data_size
    }

    /// `approximateDataSize()`: recomputed over ZooKeeper's node map (root under `""` and
    /// `/`).
    pub fn compute_approximate_data_size(&self) -> i64 {
        let mut s = 0i64;
        for n in self.slab.iter().flatten() {
            s += java_len(n.path()) + n.data().len() as i64;
        }
        if let Some(r) = self.slab.first().and_then(|n| n.as_ref()) {
            s += r.data().len() as i64; // the "" alias
        }
        s
    }

    /// The highest zxid applied (`lastProcessedZxid`).
    pub fn last_processed_zxid(&self) -> Zxid {
        self.last_processed_zxid
    }

    pub fn set_last_processed_zxid(&mut self, zxid: Zxid) {
        self.last_processed_zxid = zxid;
    }

    /// `ZKDatabase.initConfigInZKDatabase`: `/zookeeper/config` holds the ensemble's
    /// configuration text (`QuorumVerifier.toString()`), set as ZooKeeper sets it outside any
    /// txn: `setData(CONFIG_NODE, data, version -1, zxid = the config's version, now)`. So the
    /// znode's dataVersion is -1 and its mzxid the config version. Returns the NodeDataChanged
    /// notifications (with the znode's ACL) of its data watches. The digest does not move
    /// (nothing under `/zookeeper/` counts).
    pub fn set_config_node(&mut self, data: &[u8], config_version: i64, time: i64) -> Vec<(WatcherId, WatcherEvent)> {
        let mut out = Vec::new();
        self.set_data_inner(CONFIG_NODE, Some(data), -1, Zxid(config_version), time, &mut out)
            .expect("/zookeeper/config is created with every tree");
        out.into_iter().map(|(w, e, _)| (w, e)).collect()
    }

    /// The ACL cache (`getReferenceCountedAclCache`).
    pub fn acl_cache(&self) -> &AclCache {
        &self.acl_cache
    }

    /// `aclCacheSize`.
    pub fn acl_cache_size(&self) -> usize {
        self.acl_cache.len()
    }

    /// `getMaxPrefixWithQuota`: the quota path covering `path`, if any.
    pub fn max_prefix_with_quota(&self, path: &str) -> Option<String> {
        if self.p_trie.is_empty() {
            return None;
        }
        let p = self.p_trie.find_max_prefix(path);
        if p == "/" || p.is_empty() {
            None
        } else {
            Some(p)
        }
    }

    // ---- apply ----

    /// `processTxn`: applies one txn (a multi as a whole) and returns its result and the watch
    /// notifications it caused. Conditions the prep step should have excluded (NoNode,
    /// NodeExists, ...) come back as [`TxnResult::Error`] with ZooKeeper's code, with the same
    /// partial effects ZooKeeper has (a delete of a missing child still bumps the parent's
    /// pzxid; a create of an existing node still counts an ACL reference). Every txn type of
    /// a write ([`rzk_proto::OpCode::is_write`]) is applied here.
    /// `getDigestLog`: (zxid, tree digest) at every [`DIGEST_LOG_INTERVAL`]th zxid applied
    /// since this tree was built, oldest first.
    pub fn digest_log(&self) -> impl Iterator<Item = (Zxid, i64)> + '_ {
        self.digest_log.iter().copied()
    }

    /// Recovery: a loaded snapshot's digest is waiting for its zxid (no digest is logged
    /// meanwhile, as ZooKeeper's fuzzy state), or no longer is.
    pub fn set_digest_log_paused(&mut self, paused: bool) {
        self.digest_log_paused = paused;
    }

    pub fn apply(&mut self, hdr: &TxnHeader, txn: &Txn) -> ApplyOutcome {
        let mut out = Vec::new();
        let result = self.process(hdr, txn, &mut out);
        if hdr.zxid > self.last_processed_zxid {
            self.last_processed_zxid = hdr.zxid;
        }
        // logZxidDigest
        if !self.digest_log_paused && hdr.zxid.0 % DIGEST_LOG_INTERVAL == 0 {
            // With digests off ZooKeeper's tree digest stays 0, and 0 is logged.
            let digest = if self.opts.digest_enabled { self.digest() } else { 0 };
            self.digest_log.push_back((hdr.zxid, digest));
            if self.digest_log.len() > DIGEST_LOG_LIMIT {
                self.digest_log.pop_front();
            }
        }
        let mut deliveries = Vec::with_capacity(out.len());
        let mut delivery_acls = Vec::with_capacity(out.len());
        for (w, e, a) in out {
            deliveries.push((w, e));
            delivery_acls.push(a);
        }
        ApplyOutcome { result, deliveries, delivery_acls }
    }

    fn process(&mut self, hdr: &TxnHeader, txn: &Txn, out: &mut Out) -> TxnResult {
        let zxid = hdr.zxid;
        let time = hdr.time;
        let r = match txn {
            Txn::Create { txn: c, .. } => {
                let owner = if c.ephemeral { hdr.client_id.0 } else { 0 };
                self.create_node(&c.path, c.data.as_deref(), &c.acl, owner, c.parent_cversion, zxid, time, out)
                    .map(|stat| TxnResult::Created { path: c.path.clone(), stat })
            }
            Txn::CreateTtl(c) => match EphemeralType::ttl_to_owner(c.ttl) {
                // ZooKeeper throws IllegalArgumentException out of processTxn here.
                None => Err(ErrorCode::BadArguments),
                Some(owner) => self
                    .create_node(&c.path, c.data.as_deref(), &c.acl, owner, c.parent_cversion, zxid, time, out)
                    .map(|stat| TxnResult::Created { path: c.path.clone(), stat }),
            },
            Txn::CreateContainer(c) => self
                .create_node(&c.path, c.data.as_deref(), &c.acl, CONTAINER_EPHEMERAL_OWNER, c.parent_cversion, zxid, time, out)
                .map(|stat| TxnResult::Created { path: c.path.clone(), stat }),
            Txn::Delete { path } | Txn::DeleteContainer { path } => self.delete_node(path, zxid, out).map(|_| TxnResult::Deleted),
            // DataTree.processTxn: `case OpCode.reconfig: case OpCode.setData:`.
            Txn::SetData(s) | Txn::Reconfig(s) => {
                self.set_data_inner(&s.path, s.data.as_deref(), s.version, zxid, time, out).map(|stat| TxnResult::SetData { stat })
            }
            Txn::SetAcl(s) => self.set_acl(&s.path, &s.acl, s.version).map(|stat| TxnResult::SetAcl { stat }),
            Txn::CloseSession { paths_to_delete } => {
                self.kill_session(hdr.client_id.0, zxid, paths_to_delete, out);
                Ok(TxnResult::SessionClosed)
            }
            Txn::CreateSession { .. } => Ok(TxnResult::SessionCreated),
            Txn::Error { err } => Ok(TxnResult::Error(ErrorCode::from_code(*err).unwrap_or(ErrorCode::SystemError))),
            Txn::Check(_) => Ok(TxnResult::Check),
            Txn::Multi(members) => Ok(self.process_multi(hdr, members, out)),
        };
        match r {
            Ok(r) => r,
            Err(e) => {
                // A create (op 1 only) replayed onto an existing node still moves the parent's
                // cversion/pzxid forward (fuzzy snapshot replay).
                if let (ErrorCode::NodeExists, Txn::Create { txn: c, create2: false }) = (e, txn) {
                    if let Some((parent, _)) = split_path(&c.path) {
                        if let Err(e2) = self.set_cversion_pzxid(parent, c.parent_cversion, zxid) {
                            return TxnResult::Error(e2);
                        }
                    }
                }
                TxnResult::Error(e)
            }
        }
    }

    fn process_multi(&mut self, hdr: &TxnHeader, members: &[Txn], out: &mut Out) -> TxnResult {
        let failed = members.iter().any(|m| matches!(m, Txn::Error { .. }));
        let mut post_failed = false;
        let mut results = Vec::with_capacity(members.len());
        for m in members {
            let valid = match m {
                Txn::Create { create2, .. } => !*create2 || self.opts.flavor == Flavor::V3_9,
                Txn::CreateTtl(_)
                | Txn::CreateContainer(_)
                | Txn::Delete { .. }
                | Txn::DeleteContainer { .. }
                | Txn::SetData(_)
                | Txn::Check(_)
                | Txn::Error { .. } => true,
                _ => false,
            };
            if !valid {
                // ZooKeeper: IOException("Invalid type of op"), the rest is not applied.
                break;
            }
            if matches!(m, Txn::Error { .. }) {
                post_failed = true;
            }
            let sub_hdr = TxnHeader { op: m.op().code(), ..hdr.clone() };
            let r = if failed && !matches!(m, Txn::Error { .. }) {
                let ec = if post_failed { ErrorCode::RuntimeInconsistency } else { ErrorCode::Ok };
                self.process(&sub_hdr, &Txn::Error { err: ec.code() }, out)
            } else {
                self.process(&sub_hdr, m, out)
            };
            results.push(r);
        }
        TxnResult::Multi(results)
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: Zxid,
        time: i64,
        out: &mut Out,
    ) -> Result<Stat, ErrorCode> {
        let (parent_name, child_name) = split_path(path).ok_or(ErrorCode::BadArguments)?;
        let pid = self.lookup(parent_name).ok_or(ErrorCode::NoNode)?;
        // The ACL reference is taken before the existence check, as in ZooKeeper.
        let acl_id = self.acl_cache.convert_acls(acl);
        if path == "/" || child_name.is_empty() {
            return Err(ErrorCode::NodeExists);
        }
        if let Some(existing) = self.child_of(pid, path, child_name) {
            if self.opts.flavor == Flavor::V3_9 {
                let n = self.node_mut(existing);
                let aversion = n.pd.extras().aversion;
                n.set_acl(acl_id, aversion);
            }
            return Err(ErrorCode::NodeExists);
        }
        self.digest_remove(pid);
        {
            let p = self.node_mut(pid);
            let cv = p.cversion();
            let new_cv = if parent_cversion == -1 { cv.wrapping_add(1) } else { parent_cversion };
            if new_cv > cv {
                p.set_child_stat(new_cv, zxid);
            }
        }
        let stat = StatPersisted::for_new_node(zxid, time, ephemeral_owner);
        let data_len = data.map_or(0, |d| d.len()) as i64;
        let id = self.insert_node(Node::new(path, data, acl_id, stat));
        self.add_child(pid, id);
        self.digest_add(pid);
        self.node_data_size += java_len(path) + data_len;
        self.digest_add(id);
        self.track_owner(path, ephemeral_owner);
        let out_stat = self.client_stat(id);
        // Quota bookkeeping.
        if let Some(trimmed) = parent_name.strip_prefix(quota::QUOTA_ZOOKEEPER) {
            if child_name == quota::LIMIT_NODE && !trimmed.is_empty() {
                self.p_trie.add_path(trimmed);
            }
            if child_name == quota::STAT_NODE {
                self.update_quota_for_path(trimmed);
            }
        }
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, data_len, 1);
        }
        let mut ws = Vec::new();
        self.data_watches.trigger(path, EventType::NodeCreated, None, &mut ws);
        if !ws.is_empty() {
            let acl = self.acl_of(acl_id);
            out.extend(ws.drain(..).map(|w| (w, event(EventType::NodeCreated, path), acl.clone())));
        }
        self.child_watches.trigger(parent_name, EventType::NodeChildrenChanged, None, &mut ws);
        if !ws.is_empty() {
            let acl = self.acl_of(self.node(pid).acl());
            out.extend(ws.drain(..).map(|w| (w, event(EventType::NodeChildrenChanged, parent_name), acl.clone())));
        }
        Ok(out_stat)
    }

    fn delete_node(&mut self, path: &str, zxid: Zxid, out: &mut Out) -> Result<(), ErrorCode> {
        let (parent_name, child_name) = split_path(path).ok_or(ErrorCode::BadArguments)?;
        if path == "/" || child_name.is_empty() {
            // ZooKeeper's prep rejects this; applying it would corrupt the tree.
            return Err(ErrorCode::BadArguments);
        }
        let pid = self.lookup(parent_name).ok_or(ErrorCode::NoNode)?;
        let id = self.child_of(pid, path, child_name);
        if let Some(id) = id {
            if self.num_children(id) > 0 {
                // ZooKeeper's prep rejects this (NotEmpty); applying it would orphan nodes.
                return Err(ErrorCode::NotEmpty);
            }
        }
        // The parent changes (and its pzxid moves forward) even when the child is missing.
        self.digest_remove(pid);
        if let Some(id) = id {
            self.remove_child(pid, id);
        }
        {
            let p = self.node_mut(pid);
            if zxid > p.pzxid() {
                let cv = p.cversion();
                p.set_child_stat(cv, zxid);
            }
        }
        self.digest_add(pid);
        let id = id.ok_or(ErrorCode::NoNode)?;
        self.digest_remove(id);
        let node_acl = self.acl_of(self.node(id).acl());
        let node = self.remove_node(id);
        self.acl_cache.remove_usage(node.acl());
        self.node_data_size -= java_len(path) + node.data().len() as i64;
        let owner = node.owner();
        match EphemeralType::of(owner, self.opts.extended_types_enabled) {
            EphemeralType::Container => {
                self.containers.remove(path);
            }
            EphemeralType::Ttl => {
                self.ttls.remove(path);
            }
            _ if owner != 0 => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                }
            }
            _ => {}
        }
        if parent_name.starts_with(PROC_ZOOKEEPER) && child_name == quota::LIMIT_NODE {
            // Quotas.trimQuotaPath: drop the first len("/zookeeper/quota") characters.
            if let Some(trimmed) = parent_name.get(quota::QUOTA_ZOOKEEPER.len()..).filter(|t| !t.is_empty()) {
                self.p_trie.delete_path(trimmed);
            }
        }
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, -(node.data().len() as i64), -1);
        }
        let mut ws = Vec::new();
        let processed = self.data_watches.trigger(path, EventType::NodeDeleted, None, &mut ws);
        out.extend(ws.drain(..).map(|w| (w, event(EventType::NodeDeleted, path), node_acl.clone())));
        self.child_watches.trigger(path, EventType::NodeDeleted, Some(&processed), &mut ws);
        out.extend(ws.drain(..).map(|w| (w, event(EventType::NodeDeleted, path), node_acl.clone())));
        self.child_watches.trigger(parent_name, EventType::NodeChildrenChanged, None, &mut ws);
        if !ws.is_empty() {
            let acl = self.acl_of(self.node(pid).acl());
            out.extend(ws.drain(..).map(|w| (w, event(EventType::NodeChildrenChanged, parent_name), acl.clone())));
        }
        Ok(())
    }

    fn set_data_inner(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: Zxid,
        time: i64,
        out: &mut Out,
    ) -> Result<Stat, ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        self.digest_remove(id);
        let last_len = {
            let n = self.node_mut(id);
            let last = n.data().len() as i64;
            n.set_data(data);
            n.stat.mtime = time;
            n.stat.mzxid = zxid;
            n.stat.version = version;
            last
        };
        let stat = self.client_stat(id);
        self.digest_add(id);
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, data.map_or(0, |d| d.len()) as i64 - last_len, 0);
        }
        self.node_data_size += data.map_or(0, |d| d.len()) as i64 - last_len;
        let mut ws = Vec::new();
        self.data_watches.trigger(path, EventType::NodeDataChanged, None, &mut ws);
        if !ws.is_empty() {
            let acl = self.acl_of(self.node(id).acl());
            out.extend(ws.drain(..).map(|w| (w, event(EventType::NodeDataChanged, path), acl.clone())));
        }
        Ok(stat)
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let old = self.node(id).acl();
        self.acl_cache.remove_usage(old);
        self.digest_remove(id);
        let new_id = self.acl_cache.convert_acls(acl);
        {
            let n = self.node_mut(id);
            n.set_acl(new_id, version);
        }
        let stat = self.client_stat(id);
        self.digest_add(id);
        Ok(stat)
    }

    /// `setCversionPzxid`: raises the node's cversion (−1 = current + 1) and sets its pzxid,
    /// only if the new cversion is larger.
    pub fn set_cversion_pzxid(&mut self, path: &str, new_cversion: i32, zxid: Zxid) -> Result<(), ErrorCode> {
        let path = if path.len() > 1 && path.ends_with('/') { &path[..path.len() - 1] } else { path };
        let id = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        let cur = self.node(id).cversion();
        let new_cversion = if new_cversion == -1 { cur.wrapping_add(1) } else { new_cversion };
        if new_cversion > cur {
            self.digest_remove(id);
            let n = self.node_mut(id);
            n.set_child_stat(new_cversion, zxid);
            self.digest_add(id);
        }
        Ok(())
    }

    /// `killSession`: deletes the paths the txn lists, in order, then whatever else the
    /// session still owns in its set's iteration order. Missing nodes are skipped.
    fn kill_session(&mut self, session: i64, zxid: Zxid, paths_in_txn: &[String], out: &mut Out) {
        let local = self.ephemerals.remove(&session);
        self.ephemeral_sessions.remove(&session);
        for p in paths_in_txn {
            let _ = self.delete_node(p, zxid, out);
        }
        let Some(mut local) = local else { return };
        for p in paths_in_txn {
            local.remove(p.as_str());
        }
        let rest: Vec<Box<str>> = local.iter().cloned().collect();
        for p in rest {
            let _ = self.delete_node(&p, zxid, out);
        }
    }

    fn update_quota_stat(&mut self, last_prefix: &str, bytes_diff: i64, count_diff: i64) {
        let sp = quota::stat_path(last_prefix);
        let Some(id) = self.lookup(&sp) else { return };
        let mut st = StatsTrack::parse(self.node(id).data());
        st.set_count(st.count() + count_diff);
        st.set_bytes(st.bytes() + bytes_diff);
        // Under /zookeeper/: no digest, and ZooKeeper does not adjust the cached data size.
        self.node_mut(id).set_data(Some(st.to_text().as_bytes()));
    }

    fn update_quota_for_path(&mut self, path: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        if let Some(id) = self.lookup(path) {
            let mut stack = vec![id];
            while let Some(x) = stack.pop() {
                count += 1;
                bytes += self.node(x).data().len() as i64;
                stack.extend(self.child_ids(x));
            }
        }
        let mut st = StatsTrack::default();
        st.set_bytes(bytes);
        st.set_count(count);
        let sp = quota::stat_path(path);
        if let Some(id) = self.lookup(&sp) {
            self.digest_remove(id);
            self.node_mut(id).set_data(Some(st.to_text().as_bytes()));
            self.digest_add(id);
        }
    }

    // ---- watches ----

    /// Leaves a watch (getData/exists/getChildren with watch=true, or addWatch).
    pub fn add_watch(&mut self, path: &str, kind: WatchKind, watcher: WatcherId) {
        match kind {
            WatchKind::Data | WatchKind::Exist => {
                self.data_watches.add_watch(path, watcher, WatcherMode::Standard);
            }
            WatchKind::Child => {
                self.child_watches.add_watch(path, watcher, WatcherMode::Standard);
            }
            WatchKind::Persistent => {
                self.data_watches.add_watch(path, watcher, WatcherMode::Persistent);
                self.child_watches.add_watch(path, watcher, WatcherMode::Persistent);
            }
            WatchKind::PersistentRecursive => {
                self.data_watches.add_watch(path, watcher, WatcherMode::PersistentRecursive);
                if self.opts.flavor == Flavor::V3_8 {
                    self.child_watches.add_watch(path, watcher, WatcherMode::PersistentRecursive);
                }
            }
        }
    }

    /// `containsWatcher(path, type, watcher)` (checkWatches). 3.8 has only Children, Data and
    /// Any, and there a table "contains" the watcher when the path has any watcher; 3.9's
    /// Persistent and PersistentRecursive are served on either flavor as 3.9 does (the data
    /// table's entry of this watcher has that mode).
    pub fn contains_watch(&self, path: &str, ty: WatcherType, watcher: WatcherId) -> bool {
        let (d, c) = (&self.data_watches, &self.child_watches);
        match self.opts.flavor {
            Flavor::V3_8 => match ty {
                WatcherType::Children => c.contains_watcher(path, watcher, None),
                WatcherType::Data => d.contains_watcher(path, watcher, None),
                WatcherType::Any => c.contains_watcher(path, watcher, None) || d.contains_watcher(path, watcher, None),
                // 3.9's types on 3.8's tables: the data table's entry has that mode.
                WatcherType::Persistent => d.contains_watch_mode(path, watcher, WatcherMode::Persistent),
                WatcherType::PersistentRecursive => d.contains_watch_mode(path, watcher, WatcherMode::PersistentRecursive),
            },
            Flavor::V3_9 => match ty {
                WatcherType::Children => c.contains_watcher(path, watcher, Some(WatcherMode::Standard)),
                WatcherType::Data => d.contains_watcher(path, watcher, Some(WatcherMode::Standard)),
                WatcherType::Persistent => d.contains_watcher(path, watcher, Some(WatcherMode::Persistent)),
                WatcherType::PersistentRecursive => d.contains_watcher(path, watcher, Some(WatcherMode::PersistentRecursive)),
                WatcherType::Any => c.contains_watcher(path, watcher, None) || d.contains_watcher(path, watcher, None),
            },
        }
    }

    /// `removeWatch(path, type, watcher)` (removeWatches); true when something was removed.
    /// In 3.8 Data/Children remove the (path, watcher) entry of that table whatever its mode;
    /// Persistent/PersistentRecursive are ZooKeeper 3.9's, served on either flavor.
    pub fn remove_watches(&mut self, path: &str, ty: WatcherType, watcher: WatcherId) -> bool {
        let flavor = self.opts.flavor;
        let (d, c) = (&mut self.data_watches, &mut self.child_watches);
        match (flavor, ty) {
            (Flavor::V3_8, WatcherType::Children) => c.remove_watch(path, watcher, None),
            (Flavor::V3_8, WatcherType::Data) => d.remove_watch(path, watcher, None),
            (Flavor::V3_8, WatcherType::Any) => {
                let a = c.remove_watch(path, watcher, None);
                let b = d.remove_watch(path, watcher, None);
                a || b
            }
            // 3.9's types on 3.8's tables (one mode per entry): the entries of that mode go
            // from both tables. (3.9 removes a recursive watch from its data table only, where
            // alone 3.9 keeps it; 3.8's addWatch puts it in the child table too, so it goes
            // from there as well and nothing of it is left, as in 3.9.)
            (Flavor::V3_8, WatcherType::Persistent | WatcherType::PersistentRecursive) => {
                let mode = if ty == WatcherType::Persistent { WatcherMode::Persistent } else { WatcherMode::PersistentRecursive };
                let a = c.remove_watch_mode(path, watcher, mode);
                let b = d.remove_watch_mode(path, watcher, mode);
                a || b
            }
            (Flavor::V3_9, WatcherType::Children) => c.remove_watch(path, watcher, Some(WatcherMode::Standard)),
            (Flavor::V3_9, WatcherType::Data) => d.remove_watch(path, watcher, Some(WatcherMode::Standard)),
            (Flavor::V3_9, WatcherType::Persistent) => {
                let a = c.remove_watch(path, watcher, Some(WatcherMode::Persistent));
                let b = d.remove_watch(path, watcher, Some(WatcherMode::Persistent));
                a || b
            }
            (Flavor::V3_9, WatcherType::PersistentRecursive) => d.remove_watch(path, watcher, Some(WatcherMode::PersistentRecursive)),
            (Flavor::V3_9, WatcherType::Any) => {
                let a = c.remove_watch(path, watcher, None);
                let b = d.remove_watch(path, watcher, None);
                a || b
            }
        }
    }

    /// `removeCnxn`: drops every watch of a closed connection.
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        self.data_watches.remove_watcher(watcher);
        self.child_watches.remove_watcher(watcher);
    }

    /// `setWatches` / `setWatches2` after a reconnect: for each data watch, NodeDeleted if the
    /// node is gone, NodeDataChanged if its mzxid is past `relative_zxid`, else the watch is
    /// set; for each exist watch, NodeCreated if the node exists, else set; for each child
    /// watch, NodeDeleted if gone, NodeChildrenChanged if its pzxid is past `relative_zxid`,
    /// else set; persistent and persistent-recursive watches are simply set. Returns the
    /// immediate notifications in that order.
    pub fn set_watches(&mut self, relative_zxid: Zxid, w: &SetWatches2, watcher: WatcherId) -> Vec<(WatcherId, WatcherEvent)> {
        let mut out = Vec::new();
        for p in &w.data_watches {
            match self.lookup(p) {
                None => out.push((watcher, event(EventType::NodeDeleted, p))),
                Some(id) if self.node(id).stat.mzxid > relative_zxid => out.push((watcher, event(EventType::NodeDataChanged, p))),
                Some(_) => {
                    self.data_watches.add_watch(p, watcher, WatcherMode::Standard);
                }
            }
        }
        for p in &w.exist_watches {
            if self.lookup(p).is_some() {
                out.push((watcher, event(EventType::NodeCreated, p)));
            } else {
                self.data_watches.add_watch(p, watcher, WatcherMode::Standard);
            }
        }
        for p in &w.child_watches {
            match self.lookup(p) {
                None => out.push((watcher, event(EventType::NodeDeleted, p))),
                Some(id) if self.node(id).pzxid() > relative_zxid => out.push((watcher, event(EventType::NodeChildrenChanged, p))),
                Some(_) => {
                    self.child_watches.add_watch(p, watcher, WatcherMode::Standard);
                }
            }
        }
        for p in &w.persistent_watches {
            self.child_watches.add_watch(p, watcher, WatcherMode::Persistent);
            self.data_watches.add_watch(p, watcher, WatcherMode::Persistent);
        }
        for p in &w.persistent_recursive_watches {
            if self.opts.flavor == Flavor::V3_8 {
                self.child_watches.add_watch(p, watcher, WatcherMode::PersistentRecursive);
            }
            self.data_watches.add_watch(p, watcher, WatcherMode::PersistentRecursive);
        }
        out
    }

    /// `getWatchCount` (mntr's `zk_watch_count`): data + child watch table sizes.
    pub fn watch_count(&self) -> usize {
        self.data_watches.size() + self.child_watches.size()
    }

    /// `wchs`: the summary of the *data* watch table, as ZooKeeper prints it.
    pub fn watch_summary(&self) -> WatchesSummary {
        self.data_watches.summary()
    }

    /// `wchc`: data-table watches per watcher (watchers by id, paths in Java order).
    pub fn watches_by_watcher(&self) -> Vec<(WatcherId, Vec<String>)> {
        self.data_watches.by_watcher()
    }

    /// `wchp`: data-table watchers per path (paths in Java order).
    pub fn watches_by_path(&self) -> Vec<(String, Vec<WatcherId>)> {
        self.data_watches.by_path()
    }

    pub fn data_watches(&self) -> &WatchManager {
        &self.data_watches
    }

    pub fn child_watches(&self) -> &WatchManager {
        &self.child_watches
    }

    // ---- snapshots ----

    /// Visits every node in the order ZooKeeper's `serializeNode` writes a snapshot: depth
    /// first from the root (whose path is written as `""`), children in set order.
    /// The data is `None` for a null buffer (written as length -1).
    pub fn for_each_node_in_snapshot_order(&self, mut f: impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted)) {
        let mut stack: Vec<NodeId> = vec![ROOT];
        while let Some(id) = stack.pop() {
            let n = self.node(id);
            let path: &str = if id == ROOT { "" } else { n.path() };
            f(path, n.data_opt(), n.acl(), &n.persisted());
            let kids: Vec<NodeId> = self.child_ids(id).collect();
            stack.extend(kids.into_iter().rev());
        }
    }

    /// One step of a resumable snapshot walk (ZooKeeper's `serializeNode` for one node): the
    /// node at `path` (`""` or `/` is the root) as a snapshot writes it — data (`None` = null),
    /// ACL id, persisted stat — after `child` has been called with each child's name in set
    /// order. `None` if the node is gone (deleted since its parent was visited).
    pub fn snapshot_node(&self, path: &str, mut child: impl FnMut(&str)) -> Option<(Option<&[u8]>, i64, StatPersisted)> {
        self.snapshot_node_hinted(path, None, |name, _| child(name))
    }

    /// [`DataTree::snapshot_node`] for a walk that keeps the [`NodeHint`] each child came
    /// with: the node is found through `hint` when the node there still has exactly `path`
    /// (paths are unique among live nodes, so it is the node a lookup would find), else by
    /// path. A walk over a large tree spends most of its time in those lookups otherwise
    /// (one hash probe per path segment, each a cache miss).
    pub fn snapshot_node_hinted(
        &self,
        path: &str,
        hint: Option<NodeHint>,
        mut child: impl FnMut(&str, NodeHint),
    ) -> Option<(Option<&[u8]>, i64, StatPersisted)> {
        let hinted = hint
            .map(|h| h.0)
            .filter(|&id| self.slab.get(id as usize).and_then(|r| r.as_ref()).is_some_and(|n| n.pd.path_bytes() == path.as_bytes()));
        let id = match hinted {
            Some(id) => id,
            None => self.lookup(path)?,
        };
        for c in self.child_ids(id) {
            child(self.node(c).name(), NodeHint(c));
        }
        let n = self.node(id);
        Some((n.data_opt(), n.acl(), n.persisted()))
    }

    /// A new node's owner in the side tables: a container's or TTL node's path, or an
    /// ephemeral's session (`ephemeral_owner` 0: a plain persistent node, nothing to track).
    fn track_owner(&mut self, path: &str, ephemeral_owner: i64) {
        match EphemeralType::of(ephemeral_owner, self.opts.extended_types_enabled) {
            EphemeralType::Container => {
                self.containers.insert(path.into());
            }
            EphemeralType::Ttl => {
                self.ttls.insert(path.into());
            }
            _ if ephemeral_owner != 0 => {
                self.ephemeral_sessions.insert(ephemeral_owner);
                self.ephemerals.entry(ephemeral_owner).or_default().insert(path.into());
            }
            _ => {}
        }
    }

    /// `DataTree.deserialize`: a tree from a snapshot's ACL table (file order) and nodes (file
    /// order, root as `""` or `/`, every parent before its children). Rebuilds children sets,
    /// ephemerals, containers, TTLs, digest, data size and quota stats, then drops unused ACL
    /// entries. The last processed zxid is left at 0. Node data `None` is a null buffer.
    /// (One node at a time: [`SnapshotLoader`].)
    pub fn from_snapshot<I>(opts: TreeOptions, acls: Vec<(i64, Vec<Acl>)>, nodes: I) -> Result<DataTree, SnapshotError>
    where
        I: IntoIterator<Item = (String, Option<Vec<u8>>, i64, StatPersisted)>,
    {
        let mut l = SnapshotLoader::new(opts, acls);
        for (path, data, acl, stat) in nodes {
            l.add(&path, data.as_deref(), acl, stat, None)?;
        }
        l.finish()
    }

    /// `setupQuota`: registers every `zookeeper_limits` leaf under `/zookeeper/quota` and
    /// recomputes its stats node.
    fn setup_quota(&mut self) {
        let Some(qid) = self.lookup(quota::QUOTA_ZOOKEEPER) else { return };
        let mut stack = vec![qid];
        let mut found = Vec::new();
        while let Some(id) = stack.pop() {
            let n = self.node(id);
            if self.num_children(id) == 0 {
                let end = format!("/{}", quota::LIMIT_NODE);
                let p = n.path();
                if p.ends_with(&end) {
                    if let Some(i) = p.find(&end) {
                        found.push(p[quota::QUOTA_ZOOKEEPER.len()..i].to_string());
                    }
                }
                continue;
            }
            stack.extend(self.child_ids(id));
        }
        for real in found {
            self.update_quota_for_path(&real);
            if !real.is_empty() {
                self.p_trie.add_path(&real);
            }
        }
    }

    /// Checks the tree's internal invariants (for tests): every node's parent exists and lists
    /// it, numChildren matches, ephemerals/containers/TTL sets match the owners, the digest
    /// and approximate data size agree with a recomputation.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut count = 0usize;
        for (i, n) in self.slab.iter().enumerate() {
            let Some(n) = n else { continue };
            count += 1;
            let id = i as NodeId;
            if self.lookup(n.path()) != Some(id) {
                return Err(format!("index does not find {}", n.path()));
            }
            if let Some(c) = self.children.get(&id) {
                for cid in c.iter() {
                    let cn = self.node(*cid);
                    match split_path(cn.path()) {
                        Some((p, _)) if p == n.path() => {}
                        _ => return Err(format!("{} listed under {}", cn.path(), n.path())),
                    }
                }
            }
            if id != ROOT {
                let (parent, _) = split_path(n.path()).ok_or("relative path")?;
                let pid = self.lookup(parent).ok_or_else(|| format!("{} has no parent", n.path()))?;
                let listed = self.children.get(&pid).is_some_and(|c| c.contains_with_hash(string_hash_code(n.name()), &id));
                if !listed {
                    return Err(format!("{} not in its parent's children", n.path()));
                }
                if n.stat.czxid > n.stat.mzxid {
                    return Err(format!("{}: czxid > mzxid", n.path()));
                }
            }
            if self.acl_cache.convert_long(n.acl()).is_none() {
                return Err(format!("{}: unknown ACL id {}", n.path(), n.acl()));
            }
            let owner = n.owner();
            let ok = match EphemeralType::of(owner, self.opts.extended_types_enabled) {
                EphemeralType::Container => self.containers.contains(n.path()),
                EphemeralType::Ttl => self.ttls.contains(n.path()),
                EphemeralType::Normal => self.ephemerals.get(&owner).is_some_and(|s| s.contains(n.path())),
                EphemeralType::Void => true,
            };
            if !ok {
                return Err(format!("{}: owner {owner:#x} not indexed", n.path()));
            }
        }
        if count != self.live {
            return Err("live count mismatch".into());
        }
        let eph: usize = self.ephemerals_count();
        let eph_nodes = self
            .slab
            .iter()
            .flatten()
            .filter(|n| EphemeralType::of(n.owner(), self.opts.extended_types_enabled) == EphemeralType::Normal)
            .count();
        if eph != eph_nodes {
            return Err(format!("ephemerals count {eph} vs {eph_nodes} nodes"));
        }
        if self.digest != self.compute_digest() {
            return Err("digest differs from recomputation".into());
        }
        Ok(())
    }

    /// Approximate heap bytes held by the tree's node storage (for memory checks).
    pub fn approximate_heap_bytes(&self) -> usize {
        let mut b = self.slab.capacity() * std::mem::size_of::<Option<Node>>();
        for n in self.slab.iter().flatten() {
            b += n.pd.0.len();
        }
        b += self.children.capacity() * (std::mem::size_of::<(NodeId, JavaHashSet<NodeId>)>() + 1);
        for c in self.children.values() {
            b += c.heap_bytes();
        }
        b
    }
}

/// Why a snapshot could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    MissingRoot,
    /// A node came before its parent.
    MissingParent(String),
    DuplicatePath(String),
    /// A node's ACL id is beyond what a node keeps (ZooKeeper counts them from 0: such an
    /// id means a corrupt file).
    AclIdOutOfRange(String, i64),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::MissingRoot => write!(f, "snapshot has no root node"),
            SnapshotError::MissingParent(p) => write!(f, "invalid DataTree: no parent for {p}"),
            SnapshotError::DuplicatePath(p) => write!(f, "invalid DataTree: {p} appears twice"),
            SnapshotError::AclIdOutOfRange(p, id) => write!(f, "invalid DataTree: {p} has ACL id {id}, beyond 2^31"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// [`DataTree::from_snapshot`] one node at a time, for a loader that decodes the records
/// elsewhere (the snapshot file's reading thread) and hands over borrowed ones.
pub struct SnapshotLoader {
    t: DataTree,
    saw_root: bool,
    /// The snapshot lists nodes depth first, so a node's parent is most often the previous
    /// node's: it is looked up from the root only when it changes.
    parent_cache: Option<(String, NodeId)>,
}

impl SnapshotLoader {
    pub fn new(opts: TreeOptions, acls: Vec<(i64, Vec<Acl>)>) -> SnapshotLoader {
        // A fresh tree first: its config node takes ACL id 1, which keeps aclIndex ≥ 1.
        let fresh = DataTree::with_options(opts);
        let mut t = DataTree::empty(opts);
        t.acl_cache = fresh.acl_cache;
        t.acl_cache.load(acls);
        SnapshotLoader { t, saw_root: false, parent_cache: None }
    }

    /// About how many nodes are coming (a hint from the file's size): the slab's first chunk
    /// is allocated for them at once.
    pub fn reserve(&mut self, nodes: usize) {
        self.t.slab.reserve_first(nodes);
    }

    /// Adds the next node of the file. `digest`, when given, is the node's digest as
    /// [`digest::calculate_digest`] computes it under this tree's options (0 when digests
    /// are off), computed by the caller; otherwise it is computed here.
    pub fn add(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: i64,
        stat: StatPersisted,
        digest: Option<i64>,
    ) -> Result<(), SnapshotError> {
        let t = &mut self.t;
        let path = if path.is_empty() { "/" } else { path };
        if i32::try_from(acl).is_err() {
            return Err(SnapshotError::AclIdOutOfRange(path.to_string(), acl));
        }
        if path == "/" {
            if self.saw_root {
                return Err(SnapshotError::DuplicatePath(path.to_string()));
            }
            self.saw_root = true;
            let id = t.insert_node(Node::new(path, data, acl, stat));
            debug_assert_eq!(id, ROOT);
            t.acl_cache.add_usage(acl);
            Self::add_digest(t, id, digest);
            return Ok(());
        }
        if !self.saw_root {
            return Err(SnapshotError::MissingParent(path.to_string()));
        }
        let (parent, name) = split_path(path).ok_or_else(|| SnapshotError::MissingParent(path.to_string()))?;
        let pid = match &self.parent_cache {
            Some((p, id)) if p == parent => *id,
            _ => {
                let id = t.lookup(parent).ok_or_else(|| SnapshotError::MissingParent(path.to_string()))?;
                self.parent_cache = Some((parent.to_string(), id));
                id
            }
        };
        // `lookup(path)`, given its parent: the child with the name's hash and the path.
        let h = string_hash_code(name);
        let slab = &t.slab;
        let same = |c: &NodeId| slab[*c as usize].as_ref().is_some_and(|n| n.pd.path_bytes() == path.as_bytes());
        if t.children.get(&pid).is_some_and(|c| c.find_by(h, same).is_some()) {
            return Err(SnapshotError::DuplicatePath(path.to_string()));
        }
        let owner = stat.ephemeral_owner;
        let id = t.insert_node(Node::new(path, data, acl, stat));
        t.acl_cache.add_usage(acl);
        t.children.entry(pid).or_insert_with(|| JavaHashSet::with_capacity(8)).insert_with_hash(h, id);
        Self::add_digest(t, id, digest);
        t.track_owner(path, owner);
        Ok(())
    }

    fn add_digest(t: &mut DataTree, id: NodeId, digest: Option<i64>) {
        match digest {
            Some(d) => {
                debug_assert_eq!(d, t.node_digest(id), "a precomputed node digest");
                t.digest = t.digest.wrapping_add(d);
            }
            None => t.digest_add(id),
        }
    }

    /// The tree, once every node is added.
    pub fn finish(self) -> Result<DataTree, SnapshotError> {
        let mut t = self.t;
        if !self.saw_root {
            return Err(SnapshotError::MissingRoot);
        }
        t.node_data_size = t.compute_approximate_data_size();
        t.setup_quota();
        t.acl_cache.purge_unused();
        Ok(t)
    }
}

#[cfg(test)]
mod storage_tests {
    use super::*;
    use rzk_proto::OpCode;

    #[test]
    fn path_data_round_trips() {
        let long = format!("/{}", "x".repeat(20_000));
        for path in ["/", "/a", "/zookeeper/quota", "/é/ü", long.as_str()] {
            for data in [None, Some(&b""[..]), Some(&b"v"[..]), Some(&[7u8; 300][..])] {
                for owner in [0, 1, -1, 0x1234_5678_9abc_def0, i64::MIN, i64::MAX] {
                    for (aversion, pzxid_delta) in [(0, 0), (7, 1 << 40), (-1, -5), (i32::MAX, i64::MAX), (i32::MIN, i64::MIN)] {
                        let ex = Extras { owner, aversion, cversion: aversion.wrapping_mul(3), pzxid_delta };
                        let pd = PathData::new(path, data, ex);
                        assert_eq!(pd.path(), path);
                        assert_eq!(pd.data_opt(), data);
                        assert_eq!(pd.data(), data.unwrap_or(&[]));
                        assert_eq!(pd.is_null(), data.is_none());
                        assert_eq!(pd.extras(), ex);
                        assert_eq!(pd.path_and_data(), (path.as_bytes(), data.unwrap_or(&[])));
                        let other = pd.rebuilt(Some(b"w"), Extras { owner: 3, ..ex });
                        assert_eq!(other, PathData::new(path, Some(b"w"), Extras { owner: 3, ..ex }));
                    }
                }
            }
        }
        // One header byte for paths under 32 bytes: 27-byte path + 100-byte value = 128; an
        // owner adds a mask byte and its varint.
        let p = "/bench/load/d000999/n000999";
        assert_eq!(PathData::new(p, Some(&[0; 100]), Extras::DEFAULT).0.len(), 128);
        assert_eq!(PathData::new(p, Some(&[0; 100]), Extras { owner: 5, ..Extras::DEFAULT }).0.len(), 130);
    }

    #[test]
    fn lookup_finds_exactly_the_node_with_that_path() {
        let mut t = DataTree::new();
        for (i, p) in ["/a", "/a/b", "/a/b/c", "/ab", "/é"].iter().enumerate() {
            let c = Txn::Create {
                txn: rzk_proto::txn::CreateTxn {
                    path: (*p).into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    ephemeral: false,
                    parent_cversion: -1,
                },
                create2: false,
            };
            let h = TxnHeader { client_id: SessionId(1), cxid: 1, zxid: Zxid(i as i64 + 1), time: 1, op: OpCode::Create.code() };
            t.apply(&h, &c);
        }
        for p in ["", "/", "/a", "/a/b", "/a/b/c", "/ab", "/é", "/zookeeper/quota", "/zookeeper/config"] {
            let id = t.lookup(p).unwrap_or_else(|| panic!("{p} not found"));
            let want = if p.is_empty() { "/" } else { p };
            assert_eq!(t.node(id).path(), want);
        }
        for p in ["a", "//", "/a/", "/a//b", "/a/b/", "/b", "/a/b/c/d", "/a/bc", "/zookeeper/", "/A"] {
            assert_eq!(t.lookup(p), None, "{p}");
        }
        assert_eq!(t.get("/a").unwrap().data_opt(), None);
        t.check_invariants().unwrap();
    }

    #[test]
    fn node_size() {
        // Path+data pointer 16, StatPersisted without ephemeralOwner, aversion, cversion and
        // pzxid 36, ACL id 4 (see bench/FINDINGS.md, memory per znode).
        assert_eq!(std::mem::size_of::<Option<Node>>(), 56);
    }
}
