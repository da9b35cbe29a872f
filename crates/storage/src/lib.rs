//! # rzk-storage: the data directory, in Apache ZooKeeper's own formats
//!
//! The only rzk code that writes files. An operator can point Apache ZooKeeper 3.8 at a
//! dataDir rzk wrote, and rzk at one ZooKeeper wrote.
//!
//! # Layout
//! - [`format`] (pure): file headers, log entries (Adler-32, length, record, `'B'`), snapshot
//!   records and seals, file names, the preallocation rule.
//! - [`snapstream`]: snapshot compression (none / gzip / snappy-java framing) and a checked
//!   streaming reader with bounded lengths.
//! - [`txnlog`]: `log.<zxid>` files: the writer (preallocation, positioned writes, taking a
//!   batch back out when the disk is full) and the scanner (torn tail vs corruption).
//! - [`snapshot`]: the fuzzy snapshot walk the driver advances in bounded steps, the snapshot
//!   file writer (temp file, fsync, rename, fsync dir) and the loader.
//! - [`recovery`]: newest valid snapshot + log replay → tree, sessions, last zxid.
//! - [`purge`]: `PurgeTxnLog`: keep N snapshots and the logs they need.
//! - [`worker`]: the storage threads: group commit (one fdatasync per batch) and snapshot
//!   writing; they talk to the driver over bounded channels.
//! - [`tools`]: `rzk log dump`, `rzk snapshot dump`, `rzk check`, `rzk purge`.
//! - [`epoch`]: an ensemble member's `acceptedEpoch` / `currentEpoch` files.
//! - [`ensemble`]: an ensemble member's recovery (snapshot only + raw log), TRUNC and
//!   installing a leader's snapshot; [`worker::spawn_log_worker`] runs them in order
//!   with the appends ([`worker::LogCommand`], `StorageEvent::Done { token }`).
//! - [`snapwire`]: the snapshot a leader sends after a SNAP packet.
//!
//! # For the quorum transport: reading a SNAP off the wire
//!
//! After a `SNAP` packet the leader writes the snapshot unframed on the same stream
//! ([`snapwire`] has the layout; it ends with the string `"BenWasHere"`). Keep the bytes
//! that follow the SNAP packet in one growing buffer and a
//! [`snapwire::SnapStreamScanner::new`]`(max_record_bytes)`; after each read call
//! `scanner.scan(&buf)`:
//! - `Ok(None)`: read more (bounding `buf.len()` yourself);
//! - `Ok(Some(n))`: the snapshot is `buf[..n]` (hand it on as `Message::Snap`'s bytes);
//!   `buf[n..]` is the start of the next quorum packet;
//! - `Err(StorageError::SnapStream { .. })`: malformed; close the connection.
//!
//! [`snapwire::snap_stream_len`]`(buf, max_record_bytes)` is the same, stateless (rescans
//! from the start). The host then builds its state with
//! [`snapwire::decode_snap_stream`]`(bytes, zxid, tree_options)` and persists it with
//! `LogCommand::InstallSnapshot`; a leader produces the bytes with
//! [`snapwire::encode_snap_stream`]`(tree, sessions)`.
//!
//! Or, never holding the whole stream (what `rzk server` does): after each `Ok(None)`, hand
//! the first `scanner.scanned()` bytes on and drop them from `buf`
//! (`scanner.consume(n)`), into [`snaprecv::receive_snap_stream`] running on a thread of its
//! own; it decodes the tree as the bytes arrive and writes the snapshot file at the same time,
//! and `LogCommand::InstallReceived` installs that file.
//!
//! Decoding never panics and never allocates more than a configured bound for any one
//! record; a corrupt file is an error naming the file and the offset.

pub mod ensemble;
pub mod epoch;
pub mod format;
pub mod purge;
pub mod recovery;
pub mod snaprecv;
pub mod snapshot;
pub mod snapstream;
pub mod snapwire;
pub mod tools;
pub mod txnlog;
pub mod worker;

use rzk_proto::Zxid;
use std::path::{Path, PathBuf};

pub use ensemble::{recover_ensemble, EnsembleRecovered};
pub use epoch::{read_epoch, write_epoch};
pub use format::Compression;
pub use recovery::{recover, Recovered, RecoveryOptions};
pub use snaprecv::{receive_snap_stream, ReceivedSnap};
pub use snapwire::{decode_snap_stream, encode_snap_stream, snap_stream_len, SnapStreamScanner, SnapWireWalk};

/// Why the storage layer could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("transaction log {path} is corrupt at offset {offset}: {reason}")]
    CorruptLog { path: PathBuf, offset: u64, reason: String },
    #[error("snapshot {path} is corrupt: {reason}")]
    CorruptSnapshot { path: PathBuf, reason: String },
    #[error(
        "transactions are missing: expected zxid {expected} next, but {file} continues with {found}; \
         committed data would be lost, refusing to start (restore the missing log files or remove the dataDir deliberately)"
    )]
    Gap { expected: Zxid, found: Zxid, file: PathBuf },
    #[error("no valid snapshot in {dir}: {reasons}; refusing to start without the data")]
    NoValidSnapshot { dir: PathBuf, reasons: String },
    #[error("the SNAP stream from the leader is malformed at byte {offset}: {reason}")]
    SnapStream { offset: usize, reason: String },
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io { path: path.to_path_buf(), source }
}

/// Deletes a snapshot or log file; one already gone counts as deleted (false), since the
/// purge thread (`autopurge`) deletes old files while a SNAP or TRUNC deletes them too.
pub(crate) fn remove_file(path: &Path) -> Result<bool, StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Files named `<prefix>.<hex zxid>[...]` in `dir`, sorted by zxid (oldest first).
pub(crate) fn list_files(dir: &Path, prefix: &str) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| io_err(dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(z) = format::zxid_from_name(name, prefix) {
            out.push((z, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Where the files go and how they are written (from zoo.cfg).
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `dataDir/version-2`: snapshots.
    pub snap_dir: PathBuf,
    /// `dataLogDir/version-2` (dataDir's when no dataLogDir): the txn log.
    pub log_dir: PathBuf,
    /// `snapCount`: a roll and a snapshot after snapCount/2 + random(snapCount/2) txns.
    pub snap_count: u64,
    /// `preAllocSize` in bytes.
    pub prealloc_bytes: u64,
    /// `forceSync`.
    pub force_sync: bool,
    pub compression: Compression,
    /// `autopurge.snapRetainCount`.
    pub snap_retain_count: usize,
    /// `autopurge.purgeInterval` in hours; 0 = never.
    pub purge_interval_hours: u64,
    /// The longest log entry or snapshot record accepted (jute.maxbuffer plus headroom).
    pub max_record_bytes: usize,
}

impl StorageConfig {
    /// The directories as ZooKeeper lays them out under dataDir and dataLogDir.
    pub fn dirs(data_dir: &Path, data_log_dir: Option<&Path>) -> (PathBuf, PathBuf) {
        let snap = data_dir.join(format::VERSION_DIR);
        let log = data_log_dir.unwrap_or(data_dir).join(format::VERSION_DIR);
        (snap, log)
    }

    /// Creates the directories if needed.
    pub fn ensure_dirs(&self) -> Result<(), StorageError> {
        for d in [&self.snap_dir, &self.log_dir] {
            std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
        }
        Ok(())
    }
}

/// jute.maxbuffer's default plus the 1 KiB ZooKeeper allows on top of it.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 0xfffff + 1024;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ensemble;
