//! The storage threads. The driver never touches a file; it hands work to these over
//! bounded channels and hears back through one bounded event channel.
//!
//! **Log worker** (one thread, owns [`TxnLog`]): waits for appends, takes everything queued
//! (up to a byte bound), writes it with one positioned write, makes it durable with ONE
//! fdatasync, then reports `Persisted { zxid }` for the last txn of the batch. Appends that
//! arrive during the fdatasync form the next batch: group commit. It rolls the log after
//! snapCount/2 + random(snapCount/2) txns (as ZooKeeper's SyncRequestProcessor) and reports
//! `SnapshotDue`.
//!
//! Failures: a full disk fails the batch (`AppendFailed { zxid }`, the batch was taken back
//! out of the file) and every append already queued behind it — the core renumbers from
//! `zxid` and sends new appends starting at exactly `zxid`, so the worker drops appends until
//! it sees that zxid again. Any other write error and any failed fdatasync is `Fatal`: after
//! a failed fsync the page cache can no longer be trusted, so the server must stop.
//!
//! **Ensemble log worker** ([`spawn_ensemble_log_worker`]): the same thread for an ensemble
//! member, fed [`LogCommand`]s instead of bare appends: appends (group-committed as above),
//! TRUNC, installing a leader's snapshot and the epoch files, each with the caller's token.
//! Commands run strictly in queue order; `Done { token }` comes back, in order, once the
//! command and everything before it is durable, so a driver that numbers its ZAB storage
//! operations learns "everything up to seq is durable" directly. A member cannot skip a txn,
//! so every failure here (a full disk included) is `Fatal`.
//!
//! **Snapshot writer** (one thread per snapshot): receives the walk's chunks and writes
//! them to a temp file; at the end seals, fsyncs and renames ([`SnapshotFile`]).

use crate::format;
use crate::snapshot::SnapshotFile;
use crate::{ensemble, epoch};
use crate::txnlog::{AppendError, TxnLog};
use crate::{Compression, StorageConfig};
use rzk_proto::Zxid;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// One txn to log: its zxid and its serialized record (header, txn, optional digest).
#[derive(Debug, Clone)]
pub struct LogAppend {
    pub zxid: Zxid,
    pub entry: Vec<u8>,
}

/// What the storage threads tell the driver.
#[derive(Debug)]
pub enum StorageEvent {
    /// Every txn up to `zxid` is durable.
    Persisted { zxid: Zxid },
    /// The txns from `zxid` on were not written (disk full); nothing after them will be
    /// until appends start again at `zxid`.
    AppendFailed { zxid: Zxid, reason: String },
    /// The log rolled; a snapshot should be taken.
    SnapshotDue,
    /// A snapshot finished (or failed, or was abandoned).
    SnapshotWritten { zxid: Zxid, result: Result<PathBuf, String> },
    /// The log can no longer be trusted; the server must stop.
    Fatal(String),
    /// Ensemble log worker only: the command carrying `token` is durable, and so is every
    /// command sent before it (consecutive appends are made durable together and report
    /// only the last token of the group).
    Done { token: u64 },
}

/// Bound on one group-commit batch.
const BATCH_BYTES_MAX: usize = 8 << 20;
/// Capacity of the driver → log worker channel (messages, each a batch of appends).
pub const LOG_QUEUE_MESSAGES: usize = 256;

/// A tiny PRNG for the roll point (randomness comes in as a seed).
struct XorShift(u64);
impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        if n == 0 {
            0
        } else {
            x % n
        }
    }
}

/// When to roll the log: after snapCount/2 + random(snapCount/2) txns in the current file,
/// as ZooKeeper does, so the servers of an ensemble do not all snapshot at once.
struct RollPolicy {
    snap_count: u64,
    roll_after: u64,
    rng: XorShift,
}

impl RollPolicy {
    fn new(snap_count: u64, mut rng: XorShift) -> RollPolicy {
        let snap_count = snap_count.max(2);
        let roll_after = snap_count / 2 + rng.below(snap_count / 2);
        RollPolicy { snap_count, roll_after, rng }
    }

    /// Before a write: rolls a full log file and announces that a snapshot is due. `Err` is
    /// the fatal message (the fsync of the closed file failed).
    fn before_write(&mut self, log: &mut TxnLog, events: &mpsc::Sender<StorageEvent>) -> Result<(), String> {
        if log.txns_in_current() >= self.roll_after {
            log.roll().map_err(|e| format!("fsync of the transaction log failed while rolling it: {e}; stopping"))?;
            self.roll_after = self.snap_count / 2 + self.rng.below(self.snap_count / 2);
            let _ = events.blocking_send(StorageEvent::SnapshotDue);
        }
        Ok(())
    }
}

/// A batch's log records, one after another, into `buf` (cleared first).
fn encode_batch(batch: &[LogAppend], buf: &mut Vec<u8>) {
    buf.clear();
    for a in batch {
        format::encode_log_entry(&a.entry, buf);
    }
}

/// Reports a fatal storage error: logged, and sent to the driver, which stops the server.
fn fatal(events: &mpsc::Sender<StorageEvent>, msg: String) {
    tracing::error!("{msg}");
    let _ = events.blocking_send(StorageEvent::Fatal(msg));
}

/// Starts the log worker. `seed` randomises the roll points.
pub fn spawn_log_worker(
    cfg: &StorageConfig,
    events: mpsc::Sender<StorageEvent>,
    seed: u64,
) -> std::io::Result<(mpsc::Sender<Vec<LogAppend>>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Vec<LogAppend>>(LOG_QUEUE_MESSAGES);
    let log = TxnLog::new(&cfg.log_dir, cfg.prealloc_bytes, cfg.force_sync);
    let snap_count = cfg.snap_count;
    let h = std::thread::Builder::new()
        .name("rzk-log".into())
        .spawn(move || log_worker(log, rx, events, RollPolicy::new(snap_count, XorShift(seed | 1))))?;
    Ok((tx, h))
}

fn log_worker(mut log: TxnLog, mut rx: mpsc::Receiver<Vec<LogAppend>>, events: mpsc::Sender<StorageEvent>, mut rolls: RollPolicy) {
    let mut failed_from: Option<Zxid> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    while let Some(first) = rx.blocking_recv() {
        let mut batch = first;
        let mut bytes: usize = batch.iter().map(|a| a.entry.len() + 13).sum();
        while bytes < BATCH_BYTES_MAX {
            match rx.try_recv() {
                Ok(more) => {
                    bytes += more.iter().map(|a| a.entry.len() + 13).sum::<usize>();
                    batch.extend(more);
                }
                Err(_) => break,
            }
        }
        // After a failure, drop what the core already failed until it starts again.
        if let Some(from) = failed_from {
            match batch.iter().position(|a| a.zxid == from) {
                Some(i) => {
                    batch.drain(..i);
                    failed_from = None;
                }
                None => continue,
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Err(msg) = rolls.before_write(&mut log, &events) {
            return fatal(&events, msg);
        }
        encode_batch(&batch, &mut buf);
        let first_zxid = batch[0].zxid;
        let last_zxid = batch[batch.len() - 1].zxid;
        match log.write(first_zxid, &buf, batch.len() as u64) {
            Ok(()) => {}
            Err(AppendError::NoSpace(e)) => {
                tracing::error!(from = %first_zxid, to = %last_zxid, error = %e, "disk full: {} txns refused; writes fail until space returns", batch.len());
                failed_from = Some(first_zxid);
                let _ = events.blocking_send(StorageEvent::AppendFailed { zxid: first_zxid, reason: e.to_string() });
                continue;
            }
            Err(e) => return fatal(&events, format!("{e}; stopping")),
        }
        if let Err(e) = log.sync() {
            let file = log.current_file().map(|p| p.display().to_string()).unwrap_or_default();
            return fatal(&events, format!("fdatasync of the transaction log {file} failed: {e}; stopping (the log is recovered on restart)"));
        }
        if events.blocking_send(StorageEvent::Persisted { zxid: last_zxid }).is_err() {
            break;
        }
    }
    if let Err(e) = log.roll() {
        tracing::error!(error = %e, "fsync of the transaction log failed at shutdown");
    }
}

/// One ordered command for the ensemble log worker. `token` is the caller's (typically the
/// ZAB storage sequence number); it comes back in `StorageEvent::Done`.
#[derive(Debug, Clone)]
pub enum LogCommand {
    /// Append txns (zxids increasing, above everything logged). An empty `entries` is a
    /// barrier: done once everything before it is durable.
    Append { entries: Vec<LogAppend>, token: u64 },
    /// TRUNC: remove every logged entry above `after` ([`ensemble::truncate_after`]); later
    /// appends continue after it (in a new file).
    Truncate { after: Zxid, token: u64 },
    /// SNAP: make the leader's snapshot (the SNAP stream bytes, signature included) durable
    /// as `snapshot.<zxid>` and delete the log and every other snapshot
    /// ([`ensemble::install_snapshot`]). `digest` is the decoded tree's digest (None if
    /// digests are off). The driver must abandon any snapshot of its own still being
    /// written before sending this.
    InstallSnapshot { zxid: Zxid, stream: bytes::Bytes, digest: Option<i64>, token: u64 },
    /// Write `acceptedEpoch` or `currentEpoch` ([`epoch::ACCEPTED_EPOCH`],
    /// [`epoch::CURRENT_EPOCH`]) atomically and durably.
    Epoch { name: &'static str, epoch: u32, token: u64 },
}

/// Starts the ensemble log worker (see the module docs). `seed` randomises the roll points.
pub fn spawn_ensemble_log_worker(
    cfg: &StorageConfig,
    events: mpsc::Sender<StorageEvent>,
    seed: u64,
) -> std::io::Result<(mpsc::Sender<LogCommand>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<LogCommand>(LOG_QUEUE_MESSAGES);
    let log = TxnLog::new(&cfg.log_dir, cfg.prealloc_bytes, cfg.force_sync);
    let cfg = cfg.clone();
    let h = std::thread::Builder::new()
        .name("rzk-log".into())
        .spawn(move || {
            let rolls = RollPolicy::new(cfg.snap_count, XorShift(seed | 1));
            ensemble_log_worker(log, rx, events, &cfg, rolls)
        })?;
    Ok((tx, h))
}

fn ensemble_log_worker(
    mut log: TxnLog,
    mut rx: mpsc::Receiver<LogCommand>,
    events: mpsc::Sender<StorageEvent>,
    cfg: &StorageConfig,
    mut rolls: RollPolicy,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    // The last zxid logged (once known), to refuse appends out of order.
    let mut last: Option<Zxid> = None;
    let mut lookahead: Option<LogCommand> = None;
    loop {
        let cmd = match lookahead.take() {
            Some(c) => c,
            None => match rx.blocking_recv() {
                Some(c) => c,
                None => break,
            },
        };
        let token = match cmd {
            LogCommand::Append { entries, token } => {
                let mut batch = entries;
                let mut token = token;
                let mut bytes: usize = batch.iter().map(|a| a.entry.len() + 13).sum();
                while bytes < BATCH_BYTES_MAX {
                    match rx.try_recv() {
                        Ok(LogCommand::Append { entries, token: t }) => {
                            bytes += entries.iter().map(|a| a.entry.len() + 13).sum::<usize>();
                            batch.extend(entries);
                            token = t;
                        }
                        Ok(other) => {
                            lookahead = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if !batch.is_empty() {
                    let mut prev = last;
                    for a in &batch {
                        if prev.is_some_and(|p| a.zxid <= p) {
                            return fatal(&events, format!("append of zxid {} after {} is out of order; stopping", a.zxid, prev.unwrap_or_default()));
                        }
                        prev = Some(a.zxid);
                    }
                    if let Err(msg) = rolls.before_write(&mut log, &events) {
                        return fatal(&events, msg);
                    }
                    encode_batch(&batch, &mut buf);
                    let first_zxid = batch[0].zxid;
                    if let Err(e) = log.write(first_zxid, &buf, batch.len() as u64) {
                        return fatal(&events, format!("{e}; an ensemble member cannot skip a transaction, stopping"));
                    }
                    if let Err(e) = log.sync() {
                        let file = log.current_file().map(|p| p.display().to_string()).unwrap_or_default();
                        return fatal(&events, format!("fdatasync of the transaction log {file} failed: {e}; stopping (the log is recovered on restart)"));
                    }
                    last = prev;
                }
                token
            }
            LogCommand::Truncate { after, token } => {
                let r = log
                    .roll()
                    .map_err(|e| format!("fsync of the transaction log failed while closing it: {e}"))
                    .and_then(|_| ensemble::truncate_after(&cfg.snap_dir, &cfg.log_dir, after, cfg.max_record_bytes).map_err(|e| e.to_string()));
                if let Err(e) = r {
                    return fatal(&events, format!("TRUNC to {after} failed: {e}; stopping"));
                }
                last = Some(match last {
                    Some(l) if l < after => l,
                    _ => after,
                });
                token
            }
            LogCommand::InstallSnapshot { zxid, stream, digest, token } => {
                let r = log
                    .roll()
                    .map_err(|e| format!("fsync of the transaction log failed while closing it: {e}"))
                    .and_then(|_| {
                        ensemble::install_snapshot(&cfg.snap_dir, &cfg.log_dir, zxid, &stream, digest, cfg.compression, cfg.max_record_bytes)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = r {
                    return fatal(&events, format!("installing the leader's snapshot at {zxid} failed: {e}; stopping"));
                }
                last = Some(zxid);
                token
            }
            LogCommand::Epoch { name, epoch, token } => {
                if let Err(e) = epoch::write_epoch(&cfg.snap_dir, name, epoch) {
                    return fatal(&events, format!("writing {name} = {epoch} failed: {e}; stopping"));
                }
                token
            }
        };
        if events.blocking_send(StorageEvent::Done { token }).is_err() {
            break;
        }
    }
    if let Err(e) = log.roll() {
        tracing::error!(error = %e, "fsync of the transaction log failed at shutdown");
    }
}

/// A chunk for the snapshot writer.
#[derive(Debug)]
pub enum SnapChunk {
    Data(Vec<u8>),
    /// The last chunk was sent; seal with this zxid digest.
    End(Option<(Zxid, i64)>),
}

/// Capacity of the driver → snapshot writer channel.
pub const SNAP_QUEUE_CHUNKS: usize = 4;

/// Starts a snapshot writer for a snapshot named after `zxid`, whose stream begins with
/// `head`. Dropping the sender without `End` abandons the snapshot (the temp file goes).
pub fn spawn_snapshot_writer(
    dir: &Path,
    zxid: Zxid,
    compression: Compression,
    head: Vec<u8>,
    events: mpsc::Sender<StorageEvent>,
) -> std::io::Result<mpsc::Sender<SnapChunk>> {
    let (tx, mut rx) = mpsc::channel::<SnapChunk>(SNAP_QUEUE_CHUNKS);
    let dir = dir.to_path_buf();
    std::thread::Builder::new().name("rzk-snapshot".into()).spawn(move || {
        let started = std::time::Instant::now();
        let result = (|| {
            let mut f = SnapshotFile::create(&dir, zxid, compression).map_err(|e| e.to_string())?;
            if let Err(e) = f.write(&head) {
                f.abort();
                return Err(e.to_string());
            }
            loop {
                match rx.blocking_recv() {
                    Some(SnapChunk::Data(b)) => {
                        if let Err(e) = f.write(&b) {
                            f.abort();
                            return Err(e.to_string());
                        }
                    }
                    Some(SnapChunk::End(d)) => {
                        let bytes = f.bytes();
                        let p = f.finish(d).map_err(|e| e.to_string())?;
                        tracing::info!(file = %p.display(), bytes, ms = started.elapsed().as_millis() as u64, "snapshot written");
                        return Ok(p);
                    }
                    None => {
                        f.abort();
                        return Err("abandoned".to_string());
                    }
                }
            }
        })();
        if let Err(e) = &result {
            if e != "abandoned" {
                tracing::error!(zxid = %zxid, error = %e, "snapshot failed");
            }
        }
        let _ = events.blocking_send(StorageEvent::SnapshotWritten { zxid, result });
    })?;
    Ok(tx)
}
