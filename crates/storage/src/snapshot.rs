//! Snapshots: `snapshot.<zxid hex>[.gz|.snappy]` under `dataDir/version-2`.
//!
//! # Fuzzy snapshots without stopping writes
//!
//! The tree lives in the driver task and is never shared or copied. A snapshot is a
//! [`SnapshotWalk`]: a resumable depth-first walk in ZooKeeper's `serializeNode` order that
//! the driver advances a bounded number of bytes at a time between batches of requests, while
//! writes keep being applied. The bytes go to a writer thread ([`SnapshotFile`]) that
//! checksums, compresses and writes them. This is exactly ZooKeeper's *fuzzy* snapshot: the
//! file is named after the last zxid applied when the walk began (Z); each node is written as
//! it is when the walk reaches it (under ZooKeeper's per-node lock, here between batches); a
//! node's children are the set at that moment, and a child deleted before the walk reaches it
//! is skipped. Recovery loads the snapshot and replays the log from Z+1; every txn applies
//! idempotently over state that may already contain it (`DataTree::apply` reproduces
//! `processTxn` including the NODEEXISTS parent cversion/pzxid fix-up, absolute versions in
//! setData/setACL, `pzxid` only moving forward, sequential names coming from the txn's path),
//! so the result is the state at the end of the log. At the end the walk records the zxid
//! and tree digest of that moment (`ZxidDigest`); both ZooKeeper and rzk compare the digest
//! when replay reaches that zxid, which checks the fuzzy state converged.
//!
//! Why not copy-on-write: a persistent tree would cost memory on every znode all the time
//! (the target is a quarter of ZooKeeper's RSS), and a one-off copy doubles it during the
//! snapshot. The walk costs the names of the pending siblings on the current path (stored
//! as one string per level, with a 4-byte [`NodeHint`] each so that a node is found again
//! without a lookup by path when it is still where it was), nothing per znode.
//!
//! One case needs care: the ACL table is written first, from the cache as it is at the
//! start. A node given an ACL list that is new since then would reference an id the table
//! does not have (ZooKeeper 3.8 writes such dangling ids). The walk detects it and the
//! snapshot is abandoned and retried (the retry's table has the id); after repeated
//! failures the shell takes the snapshot in one step.

use crate::format::{self, Compression, FormatError, SnapshotChecksum, DIGEST_VERSION, SNAP_DBID, SNAP_MAGIC};
use crate::snapstream::{self, CheckedReader, Compressor};
use crate::txnlog::sync_dir;
use crate::{io_err, StorageError};
use rzk_proto::{Acl, StatPersisted, Writer, Zxid};
use rzk_tree::{DataTree, JavaHashMap, NodeHint, SnapshotError, TreeOptions};
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The pending children of one node on the walk's path: `names` joined by `/`.
struct Frame {
    prefix: String,
    names: String,
    pos: usize,
    /// Where each of `names` was in the tree when listed, in the same order.
    hints: Vec<NodeHint>,
    next: usize,
}

/// A node references an ACL id the snapshot's table does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {path} uses ACL id {acl}, created after the snapshot began")]
pub struct UnknownAcl {
    pub path: String,
    pub acl: i64,
}

/// A fuzzy snapshot in progress (see the module docs). Pure: it reads the tree it is given.
pub struct SnapshotWalk {
    zxid: Zxid,
    stack: Vec<Frame>,
    started: bool,
    done: bool,
    known_acls: HashSet<i64>,
    nodes: u64,
}

/// The sessions table in the order ZooKeeper writes it (`new HashMap<>(sessions)`).
fn java_session_order(sessions: &[(i64, i32)]) -> Vec<(i64, i32)> {
    let mut m: JavaHashMap<i64, i32> = JavaHashMap::new();
    for (id, t) in sessions {
        m.insert(*id, *t);
    }
    m.java_clone().iter().map(|(k, v)| (*k, *v)).collect()
}

impl SnapshotWalk {
    /// Starts a snapshot of `tree` with the session table `sessions` (id, timeout). Returns
    /// the walk and the first bytes of the stream: file header, sessions and ACL table.
    pub fn begin(tree: &DataTree, sessions: &[(i64, i32)]) -> (SnapshotWalk, Vec<u8>) {
        let mut w = Writer::with_capacity(4096);
        w.write_raw(&format::encode_file_header(SNAP_MAGIC, SNAP_DBID));
        format::encode_sessions(&java_session_order(sessions), &mut w);
        let acls = tree.acl_cache().snapshot_entries();
        format::encode_acl_table(acls.iter().map(|(id, l)| (*id, &l[..])), &mut w);
        let known_acls = acls.iter().map(|(id, _)| *id).collect();
        let walk = SnapshotWalk { zxid: tree.last_processed_zxid(), stack: Vec::new(), started: false, done: false, known_acls, nodes: 0 };
        (walk, w.into_inner())
    }

    /// The zxid the snapshot is named after.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn visit(&mut self, tree: &DataTree, path: String, hint: Option<NodeHint>, w: &mut Writer) -> Result<(), UnknownAcl> {
        let mut names = String::new();
        let mut hints = Vec::new();
        let Some((data, acl, stat)) = tree.snapshot_node_hinted(&path, hint, |n, h| {
            if !names.is_empty() {
                names.push('/');
            }
            names.push_str(n);
            hints.push(h);
        }) else {
            return Ok(()); // deleted since its parent was written
        };
        if acl != rzk_tree::OPEN_UNSAFE_ACL_ID && !self.known_acls.contains(&acl) {
            return Err(UnknownAcl { path, acl });
        }
        format::encode_node(&path, data, acl, &stat, w);
        self.nodes += 1;
        if !names.is_empty() {
            self.stack.push(Frame { prefix: path, names, pos: 0, hints, next: 0 });
        }
        Ok(())
    }

    /// Writes nodes until about `budget_bytes` have been produced or every node is written
    /// (then the terminator too). Returns the bytes; see [`SnapshotWalk::is_done`].
    pub fn step(&mut self, tree: &DataTree, budget_bytes: usize) -> Result<Vec<u8>, UnknownAcl> {
        let mut w = Writer::with_capacity(budget_bytes.min(1 << 20) + 1024);
        if !self.started {
            self.started = true;
            self.visit(tree, String::new(), None, &mut w)?;
        }
        while !self.done && w.len() < budget_bytes {
            let Some(top) = self.stack.last_mut() else {
                format::encode_nodes_end(&mut w);
                self.done = true;
                break;
            };
            if top.pos >= top.names.len() {
                self.stack.pop();
                continue;
            }
            let rest = &top.names[top.pos..];
            let end = rest.find('/').unwrap_or(rest.len());
            let path = format!("{}/{}", top.prefix, &rest[..end]);
            top.pos += end + 1;
            let hint = top.hints.get(top.next).copied();
            top.next += 1;
            self.visit(tree, path, hint, &mut w)?;
        }
        Ok(w.into_inner())
    }

    /// The zxid digest to write after the nodes: the tree's digest at the zxid it is at now
    /// (ZooKeeper writes the last `(zxid, digest)` it logged).
    pub fn zxid_digest(tree: &DataTree) -> Option<(Zxid, i64)> {
        if !tree.options().digest_enabled {
            return None;
        }
        Some((tree.last_processed_zxid(), tree.digest()))
    }
}

/// Serializes a whole tree in one go (for small trees, tests and the initial snapshot).
pub fn encode_whole(tree: &DataTree, sessions: &[(i64, i32)]) -> (Zxid, Vec<u8>) {
    let (mut walk, mut bytes) = SnapshotWalk::begin(tree, sessions);
    let body = walk.step(tree, usize::MAX).expect("no writes can interleave");
    bytes.extend_from_slice(&body);
    (walk.zxid(), bytes)
}

/// A snapshot file being written: a temp file that becomes `snapshot.<zxid>` only when it
/// is complete and durable.
pub struct SnapshotFile {
    tmp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    out: Compressor<File>,
    sum: SnapshotChecksum,
    bytes: u64,
}

/// The temp name: not `snapshot.*`, so neither ZooKeeper nor rzk ever takes it for one.
pub fn tmp_name(zxid: Zxid, c: Compression) -> String {
    format!("tmp.{}", format::snapshot_file_name(zxid, c.suffix()))
}

impl SnapshotFile {
    pub fn create(dir: &Path, zxid: Zxid, c: Compression) -> Result<SnapshotFile, StorageError> {
        Self::create_at(dir, zxid, c, dir.join(tmp_name(zxid, c)))
    }

    /// As [`SnapshotFile::create`], under a temp name of its own (`tmp.<tag>.snapshot.<zxid>`:
    /// still one the next start removes), for a file that may be written while another at
    /// the same zxid is.
    pub fn create_temp(dir: &Path, zxid: Zxid, c: Compression, tag: &str) -> Result<SnapshotFile, StorageError> {
        let name = tmp_name(zxid, c);
        let (prefix, rest) = name.split_at(name.find('.').map_or(0, |i| i + 1));
        Self::create_at(dir, zxid, c, dir.join(format!("{prefix}{tag}.{rest}")))
    }

    fn create_at(dir: &Path, zxid: Zxid, c: Compression, tmp: PathBuf) -> Result<SnapshotFile, StorageError> {
        let dest = dir.join(format::snapshot_file_name(zxid, c.suffix()));
        let f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        let out = Compressor::new(f, c).map_err(|e| io_err(&tmp, e))?;
        Ok(SnapshotFile { tmp, dest, dir: dir.to_path_buf(), out, sum: SnapshotChecksum::default(), bytes: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Uncompressed bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn write(&mut self, b: &[u8]) -> Result<(), StorageError> {
        self.sum.update(b);
        self.bytes += b.len() as u64;
        self.out.write_all(b).map_err(|e| io_err(&self.tmp, e))
    }

    /// Seals the stream, writes the zxid digest (and its seal), fsyncs, renames into place
    /// and fsyncs the directory. Returns the final path.
    pub fn finish(self, digest: Option<(Zxid, i64)>) -> Result<PathBuf, StorageError> {
        self.finish_unpublished(digest)?.publish()
    }

    /// Seals, writes the zxid digest and fsyncs the temp file, without giving it its name
    /// yet: the caller may do something first that must precede the snapshot's appearance
    /// (installing a leader's snapshot deletes the log in between).
    pub fn finish_unpublished(self, digest: Option<(Zxid, i64)>) -> Result<UnpublishedSnapshot, StorageError> {
        self.finish_temp(digest, true)
    }

    /// As [`SnapshotFile::finish_unpublished`] without the fsync: the file is complete but
    /// not yet durable; [`UnpublishedSnapshot::sync`] makes it so (a learner's received SNAP:
    /// its log worker fsyncs at install, in order with its other writes, so the transport
    /// goes on reading meanwhile).
    pub fn finish_unsynced(self, digest: Option<(Zxid, i64)>) -> Result<UnpublishedSnapshot, StorageError> {
        self.finish_temp(digest, false)
    }

    fn finish_temp(mut self, digest: Option<(Zxid, i64)>, sync: bool) -> Result<UnpublishedSnapshot, StorageError> {
        let seal = self.sum.seal();
        self.out.write_all(&seal).map_err(|e| io_err(&self.tmp, e))?;
        if let Some((zxid, d)) = digest {
            let mut w = Writer::new();
            format::encode_zxid_digest(zxid, DIGEST_VERSION, d, &mut w);
            let b = w.into_inner();
            self.sum.update(&b);
            self.out.write_all(&b).map_err(|e| io_err(&self.tmp, e))?;
            let seal = self.sum.seal();
            self.out.write_all(&seal).map_err(|e| io_err(&self.tmp, e))?;
        }
        let f = self.out.finish().map_err(|e| io_err(&self.tmp, e))?;
        if sync {
            f.sync_all().map_err(|e| io_err(&self.tmp, e))?;
        }
        drop(f);
        Ok(UnpublishedSnapshot { tmp: self.tmp, dest: self.dest, dir: self.dir, synced: sync })
    }

    /// Gives up: the temp file is removed.
    pub fn abort(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = std::fs::remove_file(tmp);
    }
}

/// A complete, durable snapshot still under its temp name (see
/// [`SnapshotFile::finish_unpublished`]). Dropping it leaves the temp file, which the next
/// start removes ([`crate::purge::remove_stale_temps`]).
pub struct UnpublishedSnapshot {
    tmp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    /// The temp file is fsynced.
    synced: bool,
}

impl UnpublishedSnapshot {
    /// The name it will have.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Makes the temp file durable, if it is not yet ([`SnapshotFile::finish_unsynced`]).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if !self.synced {
            let f = File::open(&self.tmp).map_err(|e| io_err(&self.tmp, e))?;
            f.sync_all().map_err(|e| io_err(&self.tmp, e))?;
            self.synced = true;
        }
        Ok(())
    }

    /// Renames it into place and fsyncs the directory. Returns the final path.
    pub fn publish(self) -> Result<PathBuf, StorageError> {
        assert!(self.synced, "a snapshot published before it is durable");
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| io_err(&self.dest, e))?;
        sync_dir(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        Ok(self.dest)
    }

    /// Gives up: the temp file is removed.
    pub fn abort(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Writes a whole snapshot of `tree` now (blocking).
pub fn write_snapshot(dir: &Path, tree: &DataTree, sessions: &[(i64, i32)], c: Compression) -> Result<PathBuf, StorageError> {
    let (zxid, bytes) = encode_whole(tree, sessions);
    let mut f = SnapshotFile::create(dir, zxid, c)?;
    if let Err(e) = f.write(&bytes) {
        f.abort();
        return Err(e);
    }
    f.finish(SnapshotWalk::zxid_digest(tree))
}

// ---- reading ----

/// The header part of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct SnapshotHead {
    pub dbid: i64,
    pub sessions: Vec<(i64, i32)>,
    pub acls: Vec<(i64, Vec<Acl>)>,
}

/// One node record.
pub type NodeRecord = (String, Option<Vec<u8>>, i64, StatPersisted);

/// What follows the nodes.
#[derive(Debug, Clone, Default)]
pub struct SnapshotTail {
    /// `ZxidDigest` (zxid, version, digest); `None` in snapshots from before 3.6.
    pub digest: Option<(Zxid, i32, i64)>,
}

fn corrupt(path: &Path, e: FormatError) -> StorageError {
    StorageError::CorruptSnapshot { path: path.to_path_buf(), reason: e.0 }
}

/// Decodes a snapshot stream (uncompressed bytes from `r`), calling `nodes` with an iterator
/// over the node records; checks both seals. Generic over `Read`, so tests run it on slices.
pub fn decode_snapshot<R: std::io::Read, T>(
    r: R,
    max_bytes: usize,
    nodes: impl FnOnce(&SnapshotHead, &mut dyn Iterator<Item = NodeRecord>) -> T,
) -> Result<(SnapshotHead, T, SnapshotTail), FormatError> {
    decode_snapshot_with(r, max_bytes, |head, it| nodes(head, it))
}

/// [`decode_snapshot`] with the node reader itself, which can also fill [`RawNodes`].
fn decode_snapshot_with<R: std::io::Read, T>(
    r: R,
    max_bytes: usize,
    nodes: impl FnOnce(&SnapshotHead, &mut NodeIter<'_, R>) -> T,
) -> Result<(SnapshotHead, T, SnapshotTail), FormatError> {
    let mut cr = CheckedReader::new(r, max_bytes);
    let magic = cr.read_i32()?;
    let version = cr.read_i32()?;
    let dbid = cr.read_i64()?;
    let mut hb = Vec::with_capacity(16);
    hb.extend_from_slice(&magic.to_be_bytes());
    hb.extend_from_slice(&version.to_be_bytes());
    hb.extend_from_slice(&dbid.to_be_bytes());
    format::decode_file_header(&hb, SNAP_MAGIC)?;
    let (head, out) = decode_body_with(&mut cr, dbid, nodes)?;
    cr.check_seal()?;
    let mut tail = SnapshotTail::default();
    if !cr.at_end()? {
        let zxid = cr.read_i64()?;
        let version = cr.read_i32()?;
        let digest = cr.read_i64()?;
        cr.check_seal()?;
        tail.digest = Some((Zxid(zxid), version, digest));
    }
    Ok((head, out, tail))
}

/// `SerializeUtils.deserializeSnapshot`: sessions, the ACL table and the node records up to
/// the `"/"` terminator (a snapshot file after its header, and a SNAP on the wire).
pub(crate) fn decode_body<R: std::io::Read, T>(
    cr: &mut CheckedReader<R>,
    dbid: i64,
    nodes: impl FnOnce(&SnapshotHead, &mut dyn Iterator<Item = NodeRecord>) -> T,
) -> Result<(SnapshotHead, T), FormatError> {
    decode_body_with(cr, dbid, |head, it| nodes(head, it))
}

fn decode_body_with<R: std::io::Read, T>(
    cr: &mut CheckedReader<R>,
    dbid: i64,
    nodes: impl FnOnce(&SnapshotHead, &mut NodeIter<'_, R>) -> T,
) -> Result<(SnapshotHead, T), FormatError> {
    let n = cr.read_i32()?;
    if n < 0 {
        return Err(FormatError(format!("negative session count {n}")));
    }
    let mut sessions = Vec::with_capacity((n as usize).min(1 << 16));
    for _ in 0..n {
        let id = cr.read_i64()?;
        let t = cr.read_i32()?;
        sessions.push((id, t));
    }
    let n = cr.read_i32()?;
    if n < 0 {
        return Err(FormatError(format!("negative ACL table size {n}")));
    }
    let mut acls = Vec::with_capacity((n as usize).min(1 << 16));
    for _ in 0..n {
        let id = cr.read_i64()?;
        acls.push((id, cr.read_acl_list()?));
    }
    let head = SnapshotHead { dbid, sessions, acls };
    let mut it = NodeIter { r: cr, err: None, done: false };
    let out = nodes(&head, &mut it);
    // Drain what the consumer left (it may stop at an error of its own).
    while it.next().is_some() {}
    if let Some(e) = it.err.take() {
        return Err(e);
    }
    Ok((head, out))
}

struct NodeIter<'a, R: std::io::Read> {
    r: &'a mut CheckedReader<R>,
    err: Option<FormatError>,
    done: bool,
}

/// Node records decoded into one buffer (no allocation per node), with each node's digest
/// computed as the records are read: what the reading thread of [`load_snapshot`] hands to
/// the building one, and gets back to fill again.
#[derive(Default)]
struct RawNodes {
    bytes: Vec<u8>,
    nodes: Vec<RawNode>,
}

struct RawNode {
    /// `bytes[path.0..path.1]`, valid UTF-8.
    path: (usize, usize),
    /// `bytes[data.0..data.1]`; `None` for a null buffer.
    data: Option<(usize, usize)>,
    acl: i64,
    stat: StatPersisted,
    /// `digest::calculate_digest` (0 with digests off).
    digest: i64,
}

impl RawNodes {
    fn clear(&mut self) {
        self.bytes.clear();
        self.nodes.clear();
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn get(&self, n: &RawNode) -> (&str, Option<&[u8]>) {
        let path = std::str::from_utf8(&self.bytes[n.path.0..n.path.1]).expect("checked when read");
        (path, n.data.map(|(a, b)| &self.bytes[a..b]))
    }
}

impl<R: std::io::Read> NodeIter<'_, R> {
    /// Reads the next record into `out`; false at the end (the terminator, or an error kept
    /// for [`decode_body`]'s caller, as [`Iterator::next`] does).
    fn read_into(&mut self, out: &mut RawNodes, digest_enabled: bool) -> bool {
        if self.done {
            return false;
        }
        let read = self.read_raw(out, digest_enabled).map(|more| more.then_some(()));
        self.settle(read).is_some()
    }

    /// A read's outcome: the record, or the end (the terminator, or an error kept for
    /// [`decode_body`]'s caller); either way nothing more is read after it.
    fn settle<T>(&mut self, read: Result<Option<T>, FormatError>) -> Option<T> {
        match read {
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.err = Some(e);
                self.done = true;
                None
            }
        }
    }

    fn read_raw(&mut self, out: &mut RawNodes, digest_enabled: bool) -> Result<bool, FormatError> {
        let at = out.bytes.len();
        let path = self.r.read_string_into(&mut out.bytes)?;
        if path == (at, at + 1) && out.bytes[at] == b'/' {
            out.bytes.truncate(at);
            return Ok(false);
        }
        let data = self.r.read_buffer_opt_into(&mut out.bytes)?;
        let acl = self.r.read_i64()?;
        let stat = self.r.read_stat()?;
        let digest = if digest_enabled {
            let p = &out.bytes[path.0..path.1];
            let p: &[u8] = if p.is_empty() { b"/" } else { p };
            let d = data.map_or(&[][..], |(a, b)| &out.bytes[a..b]);
            rzk_tree::digest::DigestPrefix::from_bytes(p, d).digest(&stat)
        } else {
            0
        };
        out.nodes.push(RawNode { path, data, acl, stat, digest });
        Ok(true)
    }

    fn read_one(&mut self) -> Result<Option<NodeRecord>, FormatError> {
        let path = self.r.read_string()?;
        if path == "/" {
            return Ok(None);
        }
        let data = self.r.read_buffer_opt()?;
        let acl = self.r.read_i64()?;
        let stat = self.r.read_stat()?;
        Ok(Some((path, data, acl, stat)))
    }
}

impl<R: std::io::Read> Iterator for NodeIter<'_, R> {
    type Item = NodeRecord;
    fn next(&mut self) -> Option<NodeRecord> {
        if self.done {
            return None;
        }
        let read = self.read_one();
        self.settle(read)
    }
}

/// A snapshot loaded into a tree.
pub struct LoadedSnapshot {
    pub path: PathBuf,
    /// The zxid in the file name (the last txn applied when it began).
    pub zxid: Zxid,
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    pub digest: Option<(Zxid, i32, i64)>,
}

/// Opens a snapshot file's uncompressed stream.
pub fn open_stream(path: &Path) -> Result<Box<dyn std::io::Read>, StorageError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let c = Compression::of_file_name(name);
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    snapstream::decompressor(f, c).map_err(|e| corrupt(path, FormatError(e.to_string())))
}

/// Node records handed from the reading thread to the building one at a time.
const LOAD_BATCH_NODES: usize = 2048;
/// Batches in flight between them (a bound on the memory the hand-off holds).
const LOAD_BATCHES_MAX: usize = 8;
/// File bytes per node assumed for the slab's first allocation (a typical node takes more;
/// room reserved and not written costs no resident memory).
const LOAD_BYTES_PER_NODE_MIN: u64 = 128;

/// Loads a snapshot file into a tree, verifying its checksums.
///
/// Two threads share the work: one reads the file, keeps its checksum, decodes the node
/// records and computes each node's digest; this one builds the tree from them
/// ([`rzk_tree::SnapshotLoader`]), [`LOAD_BATCH_NODES`] at a time over a channel of
/// [`LOAD_BATCHES_MAX`] batches, which go back to the reader to be filled again (so the
/// reader allocates nothing per node). The result and its errors are those of decoding and
/// building in one pass: a format error (a bad checksum among them) is reported before a
/// tree error.
pub fn load_snapshot(path: &Path, opts: TreeOptions, max_bytes: usize) -> Result<LoadedSnapshot, StorageError> {
    use std::sync::mpsc::sync_channel;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let zxid = format::zxid_from_name(name, "snapshot").ok_or_else(|| corrupt(path, FormatError("file name has no zxid".into())))?;
    let (head_tx, head_rx) = sync_channel::<Vec<(i64, Vec<Acl>)>>(1);
    let (batch_tx, batch_rx) = sync_channel::<RawNodes>(LOAD_BATCHES_MAX);
    let (spare_tx, spare_rx) = sync_channel::<RawNodes>(LOAD_BATCHES_MAX + 2);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("rzk-snapshot-load".into())
            .spawn_scoped(scope, move || -> Result<(SnapshotHead, SnapshotTail), StorageError> {
                let stream = open_stream(path)?;
                let (head, (), tail) = decode_snapshot_with(stream, max_bytes, |head, nodes| {
                    if head_tx.send(head.acls.clone()).is_err() {
                        return;
                    }
                    loop {
                        let mut batch = spare_rx.try_recv().unwrap_or_default();
                        batch.clear();
                        while batch.len() < LOAD_BATCH_NODES && nodes.read_into(&mut batch, opts.digest_enabled) {}
                        if batch.nodes.is_empty() || batch_tx.send(batch).is_err() {
                            return; // the end, or the builder stopped (its error is reported)
                        }
                    }
                })
                .map_err(|e| corrupt(path, e))?;
                Ok((head, tail))
            })
            .map_err(|e| io_err(path, e))?;
        let tree = head_rx.recv().ok().map(|acls| {
            let mut loader = rzk_tree::SnapshotLoader::new(opts, acls);
            if let Ok(m) = std::fs::metadata(path) {
                loader.reserve((m.len() / LOAD_BYTES_PER_NODE_MIN) as usize);
            }
            for batch in batch_rx.iter() {
                for n in &batch.nodes {
                    let (p, data) = batch.get(n);
                    loader.add(p, data, n.acl, n.stat.clone(), Some(n.digest))?;
                }
                let _ = spare_tx.try_send(batch);
            }
            loader.finish()
        });
        drop(batch_rx);
        let (head, tail) = reader.join().expect("the snapshot reading thread does not panic")?;
        let tree = tree.expect("a reader that decoded the head sent it");
        let mut tree = tree.map_err(|e: SnapshotError| corrupt(path, FormatError(e.to_string())))?;
        tree.set_last_processed_zxid(zxid);
        Ok(LoadedSnapshot { path: path.to_path_buf(), zxid, tree, sessions: head.sessions, digest: tail.digest })
    })
}

/// `SnapStream.isValidSnapshot`: the cheap check ZooKeeper uses to pick and retain
/// snapshots (a plain file ends with the seal's `"/"`; a compressed one starts with its
/// format's magic).
pub fn looks_valid(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if format::zxid_from_name(name, "snapshot").is_none() {
        return false;
    }
    let Ok(mut f) = File::open(path) else { return false };
    match Compression::of_file_name(name) {
        Compression::Checked => {
            let Ok(len) = f.metadata().map(|m| m.len()) else { return false };
            if len < 10 || f.seek(SeekFrom::Start(len - 5)).is_err() {
                return false;
            }
            let mut b = [0u8; 5];
            f.read_exact(&mut b).is_ok() && b == [0, 0, 0, 1, b'/']
        }
        Compression::Gzip => {
            let mut b = [0u8; 2];
            f.read_exact(&mut b).is_ok() && b == [0x1f, 0x8b]
        }
        Compression::Snappy => {
            let mut b = [0u8; 8];
            f.read_exact(&mut b).is_ok() && b[0] == 0x82 && &b[1..7] == b"SNAPPY"
        }
    }
}

/// The snapshot files in `dir`, sorted by zxid (oldest first).
pub fn list_snapshots(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    crate::list_files(dir, "snapshot")
}
