//! Storage for an ensemble member (ZAB): what differs from a standalone server.
//!
//! - [`recover_ensemble`]: a standalone server replays its whole log into the tree; an
//!   ensemble member must not, because entries after its snapshot may never have been
//!   committed (ZAB decides that later, when the leader syncs it). It starts from the newest
//!   valid snapshot ONLY and hands the raw log entries after it to the ZAB core (plus up to
//!   `keep_committed` entries at or before the snapshot, its history for DIFF syncs).
//! - [`truncate_after`]: TRUNC — every logged entry above a zxid is removed.
//! - [`install_snapshot`]: SNAP — the leader's snapshot becomes this server's only state: it
//!   is written as `snapshot.<zxid>`, and the log and every other snapshot are deleted.
//!
//! These are blocking file operations; the ensemble log worker ([`crate::worker`]) runs them
//! in order with the appends, so "done" for one of them means everything queued before it is
//! durable too.

use crate::format::{self, Compression, SNAP_DBID, SNAP_MAGIC};
use crate::recovery::{follows, newest_valid_snapshot, RecoveryOptions};
use crate::snapshot::{self, SnapshotFile, UnpublishedSnapshot};
use crate::txnlog::{self, sync_dir, Tail};
use crate::{io_err, snapwire, StorageError};
use rzk_proto::Zxid;
use rzk_tree::DataTree;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// What [`recover_ensemble`] found.
pub struct EnsembleRecovered {
    /// Exactly the snapshot's tree (nothing from the log applied); its last processed zxid
    /// is `snapshot_zxid`. Ephemerals of sessions missing from `sessions` are NOT removed
    /// here: a fuzzy snapshot may hold nodes of sessions whose createSession is in the log
    /// after it, which ZAB delivers once it knows it is committed.
    pub tree: DataTree,
    /// The snapshot's session table (id, timeout).
    pub sessions: Vec<(i64, i32)>,
    /// The zxid in the snapshot's name (0 with no snapshot).
    pub snapshot_zxid: Zxid,
    pub snapshot: Option<PathBuf>,
    /// The snapshot's `ZxidDigest` (zxid, version, digest), if it has one.
    pub snapshot_digest: Option<(Zxid, i32, i64)>,
    /// Log entries in zxid order, as stored (TxnHeader, txn, optional TxnDigest: a
    /// PROPOSAL's data): first `committed` entries at or before `snapshot_zxid` (history
    /// ending exactly at it, without gaps), then every entry after it.
    pub log: Vec<(Zxid, Vec<u8>)>,
    /// How many entries at the front of `log` are at or before `snapshot_zxid`.
    pub committed: usize,
    /// The last zxid logged, or `snapshot_zxid` if the log ends before it.
    pub last_logged: Zxid,
    /// Newer snapshots that could not be used, and why.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    pub log_files: Vec<PathBuf>,
    /// Torn tails found: file, offset, reason (cut off if `repair`).
    pub torn: Vec<(PathBuf, u64, String)>,
}

/// A bounded window of the newest history entries (at or before the snapshot), kept
/// contiguous: an entry that does not follow the previous one starts the window afresh.
struct History {
    cap: usize,
    entries: VecDeque<(Zxid, Vec<u8>)>,
}

impl History {
    fn push(&mut self, zxid: Zxid, bytes: &[u8]) {
        if self.cap == 0 {
            return;
        }
        if let Some((last, _)) = self.entries.back() {
            if !follows(*last, zxid) {
                self.entries.clear();
            }
        }
        if self.entries.len() == self.cap {
            self.entries.pop_front();
        }
        self.entries.push_back((zxid, bytes.to_vec()));
    }
}

/// Recovery for an ensemble member (see the module docs). Snapshot choice, torn tails
/// (cut off when `opts.repair`), corruption and gaps after the snapshot are handled as
/// [`crate::recover`] does; history before the snapshot is best effort (an unreadable old
/// file only shortens it).
pub fn recover_ensemble(
    snap_dir: &Path,
    log_dir: &Path,
    opts: &RecoveryOptions,
    keep_committed: usize,
) -> Result<EnsembleRecovered, StorageError> {
    let (loaded, skipped) = newest_valid_snapshot(snap_dir, opts)?;
    let mut rec = match loaded {
        Some(s) => {
            tracing::info!(snapshot = %s.path.display(), zxid = %s.zxid, "loaded snapshot");
            EnsembleRecovered {
                tree: s.tree,
                sessions: s.sessions,
                snapshot_zxid: s.zxid,
                snapshot: Some(s.path),
                snapshot_digest: s.digest,
                log: Vec::new(),
                committed: 0,
                last_logged: s.zxid,
                skipped_snapshots: skipped,
                log_files: Vec::new(),
                torn: Vec::new(),
            }
        }
        None => EnsembleRecovered {
            tree: DataTree::with_options(opts.tree),
            sessions: Vec::new(),
            snapshot_zxid: Zxid(0),
            snapshot: None,
            snapshot_digest: None,
            log: Vec::new(),
            committed: 0,
            last_logged: Zxid(0),
            skipped_snapshots: skipped,
            log_files: Vec::new(),
            torn: Vec::new(),
        },
    };
    let snap_zxid = rec.snapshot_zxid;
    let all = txnlog::list_logs(log_dir)?;
    let start = all.iter().rposition(|(z, _)| *z <= snap_zxid).unwrap_or(0);
    let mut history = History { cap: keep_committed, entries: VecDeque::new() };
    let mut after: Vec<(Zxid, Vec<u8>)> = Vec::new();
    let mut last = snap_zxid;
    for (_, path) in &all[start..] {
        rec.log_files.push(path.clone());
        let scan = txnlog::scan_log_file_raw(path, opts.max_record_bytes, |_, r, body| {
            let zxid = r.header.zxid;
            if zxid <= snap_zxid {
                history.push(zxid, body);
                return Ok(());
            }
            if !follows(last, zxid) {
                return Err(StorageError::Gap { expected: last.next(), found: zxid, file: path.clone() });
            }
            after.push((zxid, body.to_vec()));
            last = zxid;
            Ok(())
        })?;
        if let Tail::Torn { offset, reason } = scan.tail {
            tracing::warn!(file = %path.display(), offset, reason = %reason, "torn tail in the transaction log (a write cut short by a crash)");
            if opts.repair {
                txnlog::truncate_log(path, offset)?;
                tracing::warn!(file = %path.display(), offset, "truncated the torn tail");
            }
            rec.torn.push((path.clone(), offset, reason));
        }
    }
    // Older files, newest first, while the history window has room.
    let mut older = start;
    while history.entries.len() < keep_committed && older > 0 && !history.entries.is_empty() {
        older -= 1;
        let path = &all[older].1;
        let mut part = History { cap: keep_committed - history.entries.len(), entries: VecDeque::new() };
        match txnlog::scan_log_file_raw(path, opts.max_record_bytes, |_, r, body| {
            part.push(r.header.zxid, body);
            Ok(())
        }) {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "an old log file is unreadable; the history kept for DIFF syncs ends after it");
                break;
            }
        }
        let joins = match (part.entries.back(), history.entries.front()) {
            (Some((a, _)), Some((b, _))) => follows(*a, *b),
            _ => false,
        };
        if !joins {
            break;
        }
        for e in part.entries.into_iter().rev() {
            history.entries.push_front(e);
        }
    }
    // The history must end exactly at the snapshot, or it does not describe the tree.
    if history.entries.back().is_some_and(|(z, _)| *z != snap_zxid) {
        tracing::warn!(
            snapshot = %snap_zxid,
            last = %history.entries.back().map(|(z, _)| *z).unwrap_or_default(),
            "the log does not reach the snapshot's zxid; no history kept for DIFF syncs"
        );
        history.entries.clear();
    }
    rec.committed = history.entries.len();
    rec.log = history.entries.into_iter().collect();
    rec.log.extend(after);
    rec.last_logged = last;
    Ok(rec)
}

/// What [`truncate_after`] did.
#[derive(Debug, Default)]
pub struct Truncated {
    /// Files deleted (every entry in them was above the zxid).
    pub deleted: Vec<PathBuf>,
    /// The file cut, and where.
    pub cut: Option<(PathBuf, u64)>,
}

/// TRUNC: removes every logged entry with a zxid above `after` (`FileTxnLog.truncate`). Files
/// whose entries are all above it are deleted, newest first; then the file holding the first
/// such entry is cut at its offset (torn tails and padding go with it) and fsynced. Every
/// step leaves a log that is a gap-free prefix, so a crash in the middle is harmless.
///
/// The log writer must not have a file open (the worker rolls first). A snapshot above
/// `after` means committed txns would be removed: that is refused (a protocol bug).
pub fn truncate_after(snap_dir: &Path, log_dir: &Path, after: Zxid, max_record_bytes: usize) -> Result<Truncated, StorageError> {
    if let Some((z, p)) = snapshot::list_snapshots(snap_dir)?.into_iter().rev().find(|(z, _)| *z > after) {
        return Err(StorageError::Invalid(format!(
            "TRUNC to {after} would remove committed transactions: snapshot {} is at {z}",
            p.display()
        )));
    }
    let logs = txnlog::list_logs(log_dir)?;
    let mut out = Truncated::default();
    for (z, p) in logs.iter().rev() {
        if *z <= after {
            break;
        }
        crate::remove_file(p)?;
        out.deleted.push(p.clone());
    }
    if !out.deleted.is_empty() {
        sync_dir(log_dir).map_err(|e| io_err(log_dir, e))?;
    }
    if let Some((_, path)) = logs.iter().rev().find(|(z, _)| *z <= after) {
        let mut first_above: Option<u64> = None;
        let scan = txnlog::scan_log_file(path, max_record_bytes, |pos, r| {
            if r.header.zxid > after && first_above.is_none() {
                first_above = Some(pos);
            }
            Ok(())
        })?;
        let cut = first_above.unwrap_or(scan.end);
        let len = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
        if scan.entries == 0 || (first_above.is_some() && cut <= format::FILE_HEADER_BYTES as u64) {
            crate::remove_file(path)?;
            sync_dir(log_dir).map_err(|e| io_err(log_dir, e))?;
            out.deleted.push(path.clone());
        } else if cut < len {
            txnlog::truncate_log(path, cut)?;
            out.cut = Some((path.clone(), cut));
        }
    }
    tracing::info!(after = %after, deleted = out.deleted.len(), cut = ?out.cut, "truncated the transaction log");
    Ok(out)
}

/// SNAP: makes the leader's snapshot (the SNAP stream, [`crate::snapwire`]) this server's
/// only state. In this order, so that a crash at any point leaves a consistent directory:
/// 1. the snapshot file is written under a temp name (header, body, seal, the zxid digest
///    if given, seal) and fsynced;
/// 2. every log file is deleted and the log directory fsynced (a crash now restarts from an
///    older snapshot of this server's own committed state with an empty log: behind, but
///    consistent);
/// 3. snapshots above `zxid` (there should be none) are deleted, the new one is renamed to
///    `snapshot.<zxid>` and the directory fsynced;
/// 4. every other snapshot is deleted (with no log they cannot lead to this state).
///
/// `digest` is the tree's digest at `zxid` (from the decoded tree; `None` if digests are
/// off). The log writer must not have a file open (the worker rolls first).
pub fn install_snapshot(
    snap_dir: &Path,
    log_dir: &Path,
    zxid: Zxid,
    stream: &[u8],
    digest: Option<i64>,
    compression: Compression,
    max_record_bytes: usize,
) -> Result<PathBuf, StorageError> {
    let body = snapwire::snap_stream_body(stream, max_record_bytes)?;
    let mut f = SnapshotFile::create(snap_dir, zxid, compression)?;
    let written = f.write(&format::encode_file_header(SNAP_MAGIC, SNAP_DBID)).and_then(|_| f.write(body));
    if let Err(e) = written {
        f.abort();
        return Err(e);
    }
    let ready = f.finish_unpublished(digest.map(|d| (zxid, d)))?;
    install_received_snapshot(snap_dir, log_dir, zxid, ready)
}

/// SNAP, for a stream the transport already decoded and wrote as a file
/// ([`crate::snaprecv`]): `ready` is step 1 of [`install_snapshot`] done but for the fsync
/// (done here first, if not yet); steps 2-4 as there.
pub fn install_received_snapshot(
    snap_dir: &Path,
    log_dir: &Path,
    zxid: Zxid,
    mut ready: UnpublishedSnapshot,
) -> Result<PathBuf, StorageError> {
    assert_eq!(
        ready.path().file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').nth(1)).and_then(|z| i64::from_str_radix(z, 16).ok()),
        Some(zxid.0),
        "a received snapshot installed at another zxid"
    );
    // Step 1 ends with the file durable (the receiver leaves the fsync to this point).
    if let Err(e) = ready.sync() {
        ready.abort();
        return Err(e);
    }
    let removed = (|| {
        let logs = txnlog::list_logs(log_dir)?;
        for (_, p) in logs.iter().rev() {
            crate::remove_file(p)?;
        }
        if !logs.is_empty() {
            sync_dir(log_dir).map_err(|e| io_err(log_dir, e))?;
        }
        for (z, p) in snapshot::list_snapshots(snap_dir)? {
            if z > zxid {
                tracing::warn!(file = %p.display(), "deleting a snapshot above the leader's");
                crate::remove_file(&p)?;
            }
        }
        Ok::<usize, StorageError>(logs.len())
    })();
    let logs = match removed {
        Ok(n) => n,
        Err(e) => {
            ready.abort();
            return Err(e);
        }
    };
    let dest = ready.publish()?;
    let mut others = 0;
    for (_, p) in snapshot::list_snapshots(snap_dir)? {
        if p != dest {
            crate::remove_file(&p)?;
            others += 1;
        }
    }
    if others > 0 {
        sync_dir(snap_dir).map_err(|e| io_err(snap_dir, e))?;
    }
    tracing::info!(file = %dest.display(), zxid = %zxid, log_files_deleted = logs, snapshots_deleted = others, "installed the leader's snapshot");
    Ok(dest)
}

/// Why [`read_log_after`] did not read (the leader sends a SNAP instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogReadRefused {
    /// `zookeeper.snapshotSizeFactor` is negative: no syncing from the log.
    Disabled,
    /// The zxid asked for is not in the log (older than its oldest file, or not logged).
    NotLogged(Zxid),
    /// The log files to read weigh more than the snapshot times the factor.
    TooLarge { log_bytes: u64, limit_bytes: u64 },
}

impl std::fmt::Display for LogReadRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogReadRefused::Disabled => write!(f, "syncing from the txn log is disabled (snapshotSizeFactor < 0)"),
            LogReadRefused::NotLogged(z) => write!(f, "{z} is not in the txn log"),
            LogReadRefused::TooLarge { log_bytes, limit_bytes } => {
                write!(
                    f,
                    "the txn log to read ({log_bytes} bytes) exceeds the snapshot's size times snapshotSizeFactor ({limit_bytes} bytes)"
                )
            }
        }
    }
}

/// Batches of [`read_log_after`] stay below this many bytes of txns (or 4096 txns).
pub const LOG_READ_BATCH_BYTES: usize = 1 << 20;

/// ZooKeeper's `ZKDatabase.getProposalsFromTxnLog` for a learner's DIFF: the logged txns
/// after `after` (which must itself be in the log), read file by file in bounded batches
/// handed to `emit` (which returns false to stop: the reader is gone). Refused, as
/// ZooKeeper refuses, when `size_factor` is negative, when `after` is not logged, and when
/// the log files from the one holding `after` on weigh more than the newest snapshot file
/// times `size_factor` (`calculateTxnLogSizeLimit`; a limit of 0 — no snapshot, or a factor
/// of 0 — means no limit, as in ZooKeeper). Blocking file I/O: run it on its own thread.
/// Returns `Ok(Ok(()))` once every txn is emitted (or `emit` said stop), a refusal before
/// any txn, or a storage error (the log is unreadable mid-way). The newest file may be
/// appended to meanwhile: the read ends where its txns look incomplete.
pub fn read_log_after(
    snap_dir: &Path,
    log_dir: &Path,
    after: Zxid,
    size_factor: f64,
    max_record_bytes: usize,
    mut emit: impl FnMut(Vec<(Zxid, Vec<u8>)>) -> bool,
) -> Result<Result<(), LogReadRefused>, StorageError> {
    // NaN is not >= 0 either (`isTxnLogSyncEnabled`).
    if size_factor.is_nan() || size_factor < 0.0 {
        return Ok(Err(LogReadRefused::Disabled));
    }
    let files = txnlog::logs_from(&txnlog::list_logs(log_dir)?, after);
    if files.first().is_none_or(|(z, _)| *z > after) {
        return Ok(Err(LogReadRefused::NotLogged(after)));
    }
    let snap_bytes = match snapshot::list_snapshots(snap_dir)?.last() {
        Some((_, p)) => std::fs::metadata(p).map_err(|e| io_err(p, e))?.len(),
        None => 0,
    };
    let limit_bytes = (snap_bytes as f64 * size_factor) as u64;
    if limit_bytes > 0 {
        let mut log_bytes = 0u64;
        for (_, p) in &files {
            log_bytes += std::fs::metadata(p).map_err(|e| io_err(p, e))?.len();
        }
        if log_bytes > limit_bytes {
            return Ok(Err(LogReadRefused::TooLarge { log_bytes, limit_bytes }));
        }
    }
    #[derive(PartialEq)]
    enum At {
        Seeking,
        Found,
        Stopped,
    }
    let mut at = At::Seeking;
    let mut batch: Vec<(Zxid, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut last = after;
    for (i, (_, path)) in files.iter().enumerate() {
        let newest = i + 1 == files.len();
        let scan = txnlog::scan_log_file_raw(path, max_record_bytes, |_, r, body| {
            let zxid = r.header.zxid;
            if at == At::Seeking {
                if zxid < after {
                    return Ok(());
                }
                if zxid > after {
                    return Err(StorageError::Invalid(format!("{after} is not logged")));
                }
                at = At::Found;
                return Ok(());
            }
            if at == At::Stopped || zxid <= last {
                return Ok(());
            }
            if !follows(last, zxid) {
                return Err(StorageError::Gap { expected: last.next(), found: zxid, file: path.clone() });
            }
            last = zxid;
            batch_bytes += body.len();
            batch.push((zxid, body.to_vec()));
            if batch_bytes >= LOG_READ_BATCH_BYTES || batch.len() >= 4096 {
                batch_bytes = 0;
                if !emit(std::mem::take(&mut batch)) {
                    at = At::Stopped;
                }
            }
            Ok(())
        });
        match scan {
            Ok(s) => {
                if at == At::Stopped || matches!(s.tail, Tail::Torn { .. }) {
                    break;
                }
            }
            Err(StorageError::Invalid(_)) if at == At::Seeking => return Ok(Err(LogReadRefused::NotLogged(after))),
            // The newest file is being written while we read it: what looks like a tear or
            // zeros before data is its end as of now (the caller reads on from there).
            Err(StorageError::CorruptLog { .. }) if newest && at != At::Seeking => break,
            Err(e) => return Err(e),
        }
    }
    if at == At::Seeking {
        return Ok(Err(LogReadRefused::NotLogged(after)));
    }
    if at == At::Found && !batch.is_empty() {
        emit(batch);
    }
    Ok(Ok(()))
}
