//! The snapshot a leader sends a learner after the `SNAP` packet (ZooKeeper 3.8's
//! `LearnerHandler.syncFollower` / `Learner.syncWithLeader`).
//!
//! On the quorum connection, right after the SNAP `QuorumPacket`, the leader writes with the
//! same jute archive (`ZKDatabase.serializeSnapshot`, i.e. `SerializeUtils.serializeSnapshot`):
//!
//! ```text
//! int count, then (long sessionId, int timeout) per session   (Java HashMap order)
//! int count, then (long id, vector<ACL>) per ACL list         (ReferenceCountedACLCache)
//! (ustring path, buffer data, long acl, StatPersisted) per node, root as "", then "/"
//! ustring "BenWasHere"                                        (the signature)
//! ```
//!
//! That is a snapshot file's body without the file header, without the Adler-32 seals and
//! without the ZxidDigest; nothing frames or checksums it, so the reader must parse it to know
//! where it ends. The learner takes the SNAP packet's zxid as the tree's last processed zxid.
//!
//! - [`encode_snap_stream`]: the bytes a leader writes (signature included), in one go.
//! - [`SnapWireWalk`]: the same bytes in bounded steps while the tree goes on changing: a
//!   fuzzy snapshot (the [`SnapshotWalk`] of our own snapshot files, without the file header,
//!   with the signature at its end), as ZooKeeper's `LearnerHandler` serializes it while its
//!   leader keeps committing. The learner replays the txns after the SNAP's zxid on top.
//! - [`SnapStreamScanner`] / [`snap_stream_len`]: where a stream ends, fed a growing buffer,
//!   without allocating; every length is checked against a bound first.
//! - [`decode_snap_stream`]: the bytes into a tree and a session table.
//! - [`snap_stream_body`]: the part a snapshot file holds (installing a leader's snapshot).

use crate::format::FILE_HEADER_BYTES;
use crate::snapshot::{self, SnapshotWalk, UnknownAcl};
use crate::snapstream::{CheckedReader, STAT_PERSISTED_BYTES};
use crate::StorageError;
use rzk_proto::{Writer, Zxid};
use rzk_tree::{DataTree, TreeOptions};

/// The string the leader writes after the snapshot (`"BenWasHere"`).
pub const SIGNATURE: &str = "BenWasHere";
/// The signature as it is on the wire: its length, then its bytes.
const SIGNATURE_BYTES: usize = 4 + SIGNATURE.len();

/// What a leader writes after a SNAP packet for `tree` and its session table.
pub fn encode_snap_stream(tree: &DataTree, sessions: &[(i64, i32)]) -> Vec<u8> {
    let (mut walk, mut b) = SnapWireWalk::begin(tree, sessions);
    let rest = walk.step(tree, usize::MAX).expect("no writes can interleave");
    debug_assert!(walk.is_done());
    b.extend_from_slice(&rest);
    b
}

/// A SNAP stream serialized in bounded steps (see the module docs). Pure: it reads the tree
/// it is given at each step, which may have changed since the last one.
pub struct SnapWireWalk {
    walk: SnapshotWalk,
    done: bool,
}

impl SnapWireWalk {
    /// Starts the stream of `tree` at its last processed zxid (the SNAP packet's): returns
    /// the walk and the stream's first bytes (the session table and the ACL table).
    pub fn begin(tree: &DataTree, sessions: &[(i64, i32)]) -> (SnapWireWalk, Vec<u8>) {
        let (walk, mut head) = SnapshotWalk::begin(tree, sessions);
        head.drain(..FILE_HEADER_BYTES);
        (SnapWireWalk { walk, done: false }, head)
    }

    /// The zxid the stream was started at.
    pub fn zxid(&self) -> Zxid {
        self.walk.zxid()
    }

    /// The next bytes: nodes until about `budget_bytes` are produced; the last step ends
    /// with the `"/"` terminator and the signature ([`SnapWireWalk::is_done`] then). An
    /// error: a node uses an ACL list created after `begin` (its id is not in the table
    /// already sent); the stream cannot be completed and must be abandoned.
    pub fn step(&mut self, tree: &DataTree, budget_bytes: usize) -> Result<Vec<u8>, UnknownAcl> {
        assert!(!self.done, "a SNAP stream stepped after its end");
        let mut b = self.walk.step(tree, budget_bytes)?;
        if self.walk.is_done() {
            let mut w = Writer::with_capacity(SIGNATURE_BYTES);
            w.write_string(SIGNATURE);
            b.extend_from_slice(&w.into_inner());
            self.done = true;
        }
        Ok(b)
    }

    /// The whole stream is out (signature included).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

fn malformed(offset: usize, reason: impl Into<String>) -> StorageError {
    StorageError::SnapStream { offset, reason: reason.into() }
}

/// Where the parse is: what comes next at `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    SessionCount,
    Sessions { left: u64 },
    AclCount,
    AclList { lists_left: u64 },
    AclEntries { lists_left: u64, entries_left: u64 },
    Nodes,
    Signature,
    Done,
}

/// Finds the end of a SNAP stream in a buffer that grows as bytes arrive (see the module
/// docs). Remembers how far it got, so feeding it the whole buffer after each read costs
/// time proportional to the new bytes (plus, at worst, re-reading one record's header).
#[derive(Debug, Clone)]
pub struct SnapStreamScanner {
    pos: usize,
    stage: Stage,
    max_record_bytes: usize,
}

/// Reads a big-endian i32 at `p`, if the bytes are there.
fn i32_at(buf: &[u8], p: usize) -> Option<i32> {
    let b = buf.get(p..p + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl SnapStreamScanner {
    /// `max_record_bytes` bounds any one string or buffer (jute.maxbuffer plus headroom, as
    /// for the log); a longer one is an error before anything is read.
    pub fn new(max_record_bytes: usize) -> SnapStreamScanner {
        SnapStreamScanner { pos: 0, stage: Stage::SessionCount, max_record_bytes }
    }

    /// Bytes known to belong to the stream so far (whole records, and the partial session
    /// table), from the start of the buffer as the scanner sees it.
    pub fn scanned(&self) -> usize {
        self.pos
    }

    /// The caller removed the first `n` of the bytes already scanned from its buffer: later
    /// calls get the buffer without them (a reader that hands the stream on as it arrives,
    /// keeping only about one record).
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.pos, "consumed {n} bytes of {} scanned", self.pos);
        self.pos -= n;
    }

    /// The length of a string or buffer field at `p` (`None` = null), checked, if its
    /// 4 bytes are there: `Ok(None)` = need more bytes.
    fn field_len(&self, buf: &[u8], p: usize, what: &str, nullable: bool) -> Result<Option<Option<usize>>, StorageError> {
        let Some(n) = i32_at(buf, p) else { return Ok(None) };
        match n {
            -1 if nullable => Ok(Some(None)),
            n if n < 0 => Err(malformed(p, format!("{what} length {n}"))),
            n if n as usize > self.max_record_bytes => {
                Err(malformed(p, format!("{what} length {n} exceeds the limit of {} bytes", self.max_record_bytes)))
            }
            n => Ok(Some(Some(n as usize))),
        }
    }

    /// A count field at `p`.
    fn count(buf: &[u8], p: usize, what: &str) -> Result<Option<u64>, StorageError> {
        match i32_at(buf, p) {
            None => Ok(None),
            Some(n) if n < 0 => Err(malformed(p, format!("negative {what} count {n}"))),
            Some(n) => Ok(Some(n as u64)),
        }
    }

    /// Scans `buf` (the stream from its first byte; the same bytes as the previous call
    /// plus any new ones). `Ok(Some(n))`: the stream is complete and is `buf[..n]` (bytes
    /// after it belong to the next packets). `Ok(None)`: more bytes are needed. An error:
    /// the stream is malformed (the connection should be closed).
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, StorageError> {
        loop {
            let p = self.pos;
            match self.stage {
                Stage::Done => return Ok(Some(p)),
                Stage::SessionCount => {
                    let Some(n) = Self::count(buf, p, "session")? else { return Ok(None) };
                    self.pos += 4;
                    self.stage = Stage::Sessions { left: n };
                }
                Stage::Sessions { left } => {
                    if left == 0 {
                        self.stage = Stage::AclCount;
                        continue;
                    }
                    let have = (buf.len().saturating_sub(p) / 12) as u64;
                    if have == 0 {
                        return Ok(None);
                    }
                    let take = have.min(left);
                    self.pos += take as usize * 12;
                    self.stage = Stage::Sessions { left: left - take };
                }
                Stage::AclCount => {
                    let Some(n) = Self::count(buf, p, "ACL list")? else { return Ok(None) };
                    self.pos += 4;
                    self.stage = Stage::AclList { lists_left: n };
                }
                Stage::AclList { lists_left } => {
                    if lists_left == 0 {
                        self.stage = Stage::Nodes;
                        continue;
                    }
                    // long id, then the vector's count (-1 = null, as jute reads it).
                    let Some(n) = i32_at(buf, p + 8) else { return Ok(None) };
                    if n < -1 {
                        return Err(malformed(p + 8, format!("negative ACL count {n}")));
                    }
                    self.pos += 12;
                    self.stage = Stage::AclEntries { lists_left: lists_left - 1, entries_left: n.max(0) as u64 };
                }
                Stage::AclEntries { lists_left, entries_left } => {
                    if entries_left == 0 {
                        self.stage = Stage::AclList { lists_left };
                        continue;
                    }
                    // int perms, ustring scheme, ustring id.
                    let Some(Some(scheme)) = self.field_len(buf, p + 4, "ACL scheme", false)? else { return Ok(None) };
                    let q = p + 8 + scheme;
                    let Some(Some(id)) = self.field_len(buf, q, "ACL id", false)? else { return Ok(None) };
                    if buf.len() < q + 4 + id {
                        return Ok(None);
                    }
                    self.pos = q + 4 + id;
                    self.stage = Stage::AclEntries { lists_left, entries_left: entries_left - 1 };
                }
                Stage::Nodes => {
                    let Some(path) = self.field_len(buf, p, "path", false)? else { return Ok(None) };
                    let path = path.expect("not nullable");
                    let q = p + 4 + path;
                    if buf.len() < q {
                        return Ok(None);
                    }
                    if &buf[p + 4..q] == b"/" {
                        self.pos = q;
                        self.stage = Stage::Signature;
                        continue;
                    }
                    // buffer data (null allowed), long acl, StatPersisted.
                    let Some(data) = self.field_len(buf, q, "node data", true)? else { return Ok(None) };
                    let end = q + 4 + data.unwrap_or(0) + 8 + STAT_PERSISTED_BYTES;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    self.pos = end;
                }
                Stage::Signature => {
                    let Some(Some(n)) = self.field_len(buf, p, "signature", false)? else { return Ok(None) };
                    if n != SIGNATURE.len() {
                        return Err(malformed(p, format!("the signature is {n} bytes long, expected {SIGNATURE:?}")));
                    }
                    let Some(sig) = buf.get(p + 4..p + 4 + n) else { return Ok(None) };
                    if sig != SIGNATURE.as_bytes() {
                        return Err(malformed(
                            p,
                            format!("missing signature: got {:?}, expected {SIGNATURE:?}", String::from_utf8_lossy(sig)),
                        ));
                    }
                    self.pos = p + 4 + n;
                    self.stage = Stage::Done;
                }
            }
        }
    }
}

/// Where the SNAP stream at the start of `buf` ends: `Ok(Some(n))` once all of it is in
/// `buf` (it is `buf[..n]`), `Ok(None)` if more bytes are needed. Stateless: it scans from
/// the start each time; a reader feeding a large stream in pieces should keep a
/// [`SnapStreamScanner`] instead. It never allocates; `max_record_bytes` bounds any one
/// string or buffer. The total size is the caller's to bound (compare `buf.len()`).
pub fn snap_stream_len(buf: &[u8], max_record_bytes: usize) -> Result<Option<usize>, StorageError> {
    SnapStreamScanner::new(max_record_bytes).scan(buf)
}

/// Decodes a whole SNAP stream (signature included, nothing after it) into the tree and
/// the session table (id, timeout) it carries. The tree's last processed zxid is set to
/// `zxid`, the SNAP packet's (as `Learner.syncWithLeader` does).
pub fn decode_snap_stream(bytes: &[u8], zxid: Zxid, opts: TreeOptions) -> Result<(DataTree, Vec<(i64, i32)>), StorageError> {
    let fe = |e: crate::format::FormatError| malformed(0, e.0);
    // Lengths are bounded by the input itself: nothing larger than it is ever allocated.
    let mut cr = CheckedReader::new(bytes, bytes.len());
    let (head, tree) =
        snapshot::decode_body(&mut cr, -1, |head, nodes| DataTree::from_snapshot(opts, head.acls.clone(), nodes)).map_err(fe)?;
    let mut tree = tree.map_err(|e| malformed(cr.offset as usize, e.to_string()))?;
    let at = cr.offset as usize;
    let sig = cr.read_string().map_err(fe)?;
    if sig != SIGNATURE {
        return Err(malformed(at, format!("missing signature: got {sig:?}, expected {SIGNATURE:?}")));
    }
    if !cr.at_end().map_err(fe)? {
        return Err(malformed(cr.offset as usize, "bytes after the signature"));
    }
    tree.set_last_processed_zxid(zxid);
    Ok((tree, head.sessions))
}

/// The part of a SNAP stream a snapshot file holds after its header: the stream without the
/// signature. Checks the stream's structure first (it must be exactly one whole stream).
pub fn snap_stream_body(stream: &[u8], max_record_bytes: usize) -> Result<&[u8], StorageError> {
    match snap_stream_len(stream, max_record_bytes)? {
        Some(n) if n == stream.len() => Ok(&stream[..n - SIGNATURE_BYTES]),
        Some(n) => Err(malformed(n, format!("{} bytes after the end of the snapshot", stream.len() - n))),
        None => Err(malformed(stream.len(), "the snapshot is cut short")),
    }
}
