//! A learner's side of a SNAP in bounded memory: the stream ([`crate::snapwire`]) is
//! decoded into a tree while it arrives, and its bytes go at the same time into a snapshot
//! file that stays under a temp name until the node installs it (`InstallSnapshot`).
//!
//! The learner never holds the whole serialized database: the transport hands over chunks
//! (a bounded channel; it stops reading the socket while the channel is full), this thread
//! reads jute values from them and inserts each node into the tree as it is read, and
//! writes each chunk through the snapshot file's compressor. What stays in memory is the
//! tree and about one chunk. The file is the stream without its signature after a
//! snapshot file header, sealed here, off the driver; installing it fsyncs it, deletes the
//! log and renames it ([`crate::ensemble::install_received_snapshot`], in the log worker, in
//! order with the learner's other writes), so the transport reads on meanwhile.
//!
//! A stream cut short (the connection broke) or malformed (an undecodable record, a node
//! whose parent is missing, no signature, bytes after it) is an error: the temp file is
//! removed and the transport closes the connection, so the learner syncs again. Nothing
//! here panics on bad input.

use crate::format::{self, Compression, SNAP_DBID, SNAP_MAGIC};
use crate::snapshot::{self, SnapshotFile, UnpublishedSnapshot};
use crate::snapstream::CheckedReader;
use crate::snapwire::SIGNATURE;
use crate::StorageError;
use bytes::Bytes;
use rzk_proto::Zxid;
use rzk_tree::{DataTree, TreeOptions};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The signature as it is on the wire: its length, then its bytes.
const SIGNATURE_BYTES: usize = 4 + SIGNATURE.len();

/// The tree and session table a received SNAP holds.
pub type SnapState = (DataTree, Vec<(i64, i32)>);

/// A SNAP received and decoded, its snapshot file written but not published. Shared
/// between the state machine (which takes the tree) and the storage worker (which takes
/// the file); a file nobody took is removed when this is dropped.
pub struct ReceivedSnap {
    zxid: Zxid,
    stream_bytes: u64,
    state: Mutex<Option<SnapState>>,
    file: Mutex<Option<UnpublishedSnapshot>>,
}

impl ReceivedSnap {
    /// The SNAP packet's zxid: the tree's last processed zxid.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    /// How long the stream was on the wire (signature included).
    pub fn stream_bytes(&self) -> u64 {
        self.stream_bytes
    }

    /// The tree and sessions, once: `None` if already taken.
    pub fn take_state(&self) -> Option<SnapState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The snapshot file (complete under its temp name, not yet fsynced), once: `None` if already taken.
    pub fn take_file(&self) -> Option<UnpublishedSnapshot> {
        self.file.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Drop for ReceivedSnap {
    fn drop(&mut self) {
        if let Some(f) = self.file.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            f.abort();
        }
    }
}

impl std::fmt::Debug for ReceivedSnap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceivedSnap({}, {} bytes)", self.zxid, self.stream_bytes)
    }
}

/// Each received SNAP gets a temp file of its own (two SNAPs at one zxid, the first never
/// installed, must not share one).
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// Reads the chunks of a SNAP stream and writes all but its last bytes (the signature,
/// which a snapshot file does not hold) to the file.
struct Tee<I> {
    chunks: I,
    cur: Bytes,
    file: Option<SnapshotFile>,
    /// The stream's last bytes so far, not yet written (they may be the signature).
    hold: Vec<u8>,
    total: u64,
    err: Option<StorageError>,
}

impl<I: Iterator<Item = Bytes>> Tee<I> {
    fn spool(&mut self, c: &[u8]) -> Result<(), StorageError> {
        self.total += c.len() as u64;
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        if c.len() >= SIGNATURE_BYTES {
            file.write(&self.hold)?;
            file.write(&c[..c.len() - SIGNATURE_BYTES])?;
            self.hold.clear();
            self.hold.extend_from_slice(&c[c.len() - SIGNATURE_BYTES..]);
        } else {
            self.hold.extend_from_slice(c);
            if self.hold.len() > SIGNATURE_BYTES {
                let n = self.hold.len() - SIGNATURE_BYTES;
                file.write(&self.hold[..n])?;
                self.hold.drain(..n);
            }
        }
        Ok(())
    }
}

impl<I: Iterator<Item = Bytes>> Read for Tee<I> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            let Some(c) = self.chunks.next() else { return Ok(0) };
            if let Err(e) = self.spool(&c) {
                let msg = e.to_string();
                self.err = Some(e);
                return Err(io::Error::other(msg));
            }
            self.cur = c;
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// Decodes a SNAP stream at `zxid` from `chunks` (in order; their end is the stream's
/// end) into a tree and its sessions, and with `snap_dir` writes it as the snapshot file
/// `snapshot.<zxid>` (sealed, no digest: a SNAP's tree is fuzzy) under a temp name there,
/// not yet fsynced (without, nothing is written: the simulator, which stores the stream
/// itself).
/// `max_record_bytes` bounds any one string or buffer. Blocking: run it on a thread of its
/// own, fed as the stream arrives.
pub fn receive_snap_stream<I: IntoIterator<Item = Bytes>>(
    chunks: I,
    zxid: Zxid,
    snap_dir: Option<&Path>,
    compression: Compression,
    max_record_bytes: usize,
    opts: TreeOptions,
) -> Result<ReceivedSnap, StorageError> {
    let file = match snap_dir {
        None => None,
        Some(dir) => {
            let n = RECEIVED.fetch_add(1, Ordering::Relaxed);
            let mut f = SnapshotFile::create_temp(dir, zxid, compression, &format!("snap{n}"))?;
            if let Err(e) = f.write(&format::encode_file_header(SNAP_MAGIC, SNAP_DBID)) {
                f.abort();
                return Err(e);
            }
            Some(f)
        }
    };
    let tee = Tee { chunks: chunks.into_iter(), cur: Bytes::new(), file, hold: Vec::new(), total: 0, err: None };
    let mut cr = CheckedReader::new(tee, max_record_bytes);
    let malformed = |offset: u64, reason: String| StorageError::SnapStream { offset: offset as usize, reason };
    let decoded = (|| {
        let (head, tree) = snapshot::decode_body(&mut cr, -1, |head, nodes| DataTree::from_snapshot(opts, head.acls.clone(), nodes))
            .map_err(|e| malformed(cr.offset, e.0))?;
        let tree = tree.map_err(|e| malformed(cr.offset, e.to_string()))?;
        let at = cr.offset;
        let sig = cr.read_string().map_err(|e| malformed(at, e.0))?;
        if sig != SIGNATURE {
            return Err(malformed(at, format!("missing signature: got {sig:?}, expected {SIGNATURE:?}")));
        }
        if !cr.at_end().map_err(|e| malformed(cr.offset, e.0))? {
            return Err(malformed(cr.offset, "bytes after the signature".into()));
        }
        Ok((tree, head.sessions))
    })();
    let tee = cr.into_inner();
    let (mut tree, sessions) = match (decoded, tee.err) {
        (_, Some(e)) | (Err(e), None) => {
            if let Some(f) = tee.file {
                f.abort();
            }
            return Err(e);
        }
        (Ok(d), None) => d,
    };
    let file = match tee.file {
        None => None,
        Some(f) => {
            assert_eq!(tee.hold.len(), SIGNATURE_BYTES, "the signature is held back from the file");
            Some(f.finish_unsynced(None)?)
        }
    };
    tree.set_last_processed_zxid(zxid);
    Ok(ReceivedSnap { zxid, stream_bytes: tee.total, state: Mutex::new(Some((tree, sessions))), file: Mutex::new(file) })
}
