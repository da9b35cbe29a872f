//! The storage threads. The driver never touches a file; it hands work to these over
//! bounded channels and hears back through one bounded event channel.
//!
//! **Log worker** ([`spawn_log_worker`], one thread, owns [`TxnLog`]): runs [`LogCommand`]s
//! strictly in queue order — appends, TRUNC, installing a leader's snapshot, the epoch
//! files — each carrying the caller's token (the member's storage sequence number).
//! Appends are group-committed: it takes every append queued (up to a byte bound), writes
//! them with one positioned write and makes them durable with ONE fdatasync; appends that
//! arrive during the fdatasync form the next batch. `Done { token }` comes back, in order,
//! once the command and everything before it is durable, so the driver learns "everything
//! up to seq is durable" directly. It rolls the log after snapCount/2 + random(snapCount/2)
//! txns (as ZooKeeper's SyncRequestProcessor) and reports `SnapshotDue`.
//!
//! Failures ([`FullDisk`]): a standalone server survives a full disk — the batch is taken
//! back out of the file, `AppendFailed { zxid }` names its first txn, and appends are
//! dropped until one of exactly that zxid comes again (the member hands those zxids out
//! again). An ensemble member cannot skip a txn, so there a full disk is `Fatal` like every
//! other write error and any failed fdatasync: after a failed fsync the page cache can no
//! longer be trusted, so the server must stop.
//!
//! **Snapshot writer** (one thread per snapshot): receives the walk's chunks and writes
//! them to a temp file; at the end seals, fsyncs and renames ([`SnapshotFile`]).

use crate::format;
use crate::snapshot::SnapshotFile;
use crate::txnlog::{AppendError, TxnLog};
use crate::{ensemble, epoch};
use crate::{Compression, StorageConfig};
use rzk_proto::rng::Rng;
use rzk_proto::Zxid;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// One txn to log: its zxid and its serialized record (header, txn, optional digest).
#[derive(Debug, Clone)]
pub struct LogAppend {
    pub zxid: Zxid,
    pub entry: bytes::Bytes,
}

/// What the storage threads tell the driver.
#[derive(Debug)]
pub enum StorageEvent {
    /// The command carrying `token` is durable, and so is every command sent before it
    /// (consecutive appends are made durable together and report only the last token).
    /// `synced`: the group commit that made appends durable, when this command was one.
    Done { token: u64, synced: Option<Synced> },
    /// [`FullDisk::RefuseAppends`]: the txns from `zxid` on were not written (disk full);
    /// nothing after them will be until appends start again at `zxid`.
    AppendFailed { zxid: Zxid, reason: String },
    /// The log rolled; a snapshot should be taken.
    SnapshotDue,
    /// A snapshot finished (or failed, or was abandoned); `elapsed_ms` from the writer's
    /// start (the walk's first chunk) to the file sealed, fsynced and renamed.
    SnapshotWritten { zxid: Zxid, result: Result<PathBuf, String>, elapsed_ms: u64 },
    /// The log can no longer be trusted; the server must stop.
    Fatal(String),
}

/// One group commit of the log worker: ZooKeeper's `fsynctime` (the fdatasync alone, as its
/// `FileTxnLog.commit` times the channel's force) and `sync_processor_batch_size` (txns
/// made durable by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    pub fsync_us: u64,
    pub txns: u32,
}

/// What the log worker does when the disk is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullDisk {
    /// Standalone: refuse the batch (`AppendFailed`) and go on once space returns.
    RefuseAppends,
    /// Ensemble member: stop (`Fatal`); it cannot skip a txn the leader sent.
    Fatal,
}

/// Bound on one group-commit batch.
const BATCH_BYTES_MAX: usize = 8 << 20;
/// Capacity of the driver → log worker channel (messages, each a batch of appends).
pub const LOG_QUEUE_MESSAGES: usize = 256;

/// When to roll the log: after snapCount/2 + random(snapCount/2) txns in the current file,
/// as ZooKeeper does, so the servers of an ensemble do not all snapshot at once.
struct RollPolicy {
    snap_count: u64,
    roll_after: u64,
    rng: Rng,
}

impl RollPolicy {
    fn new(snap_count: u64, mut rng: Rng) -> RollPolicy {
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

/// One ordered command for the log worker. `token` is the caller's (typically the
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
    /// SNAP, for a stream the transport decoded and wrote as it arrived
    /// ([`crate::snaprecv`]): its file is complete under a temp name; fsync and publish it and
    /// delete the log and every other snapshot ([`ensemble::install_received_snapshot`]).
    InstallReceived { snap: std::sync::Arc<crate::ReceivedSnap>, token: u64 },
    /// Write `acceptedEpoch` or `currentEpoch` ([`epoch::ACCEPTED_EPOCH`],
    /// [`epoch::CURRENT_EPOCH`]) atomically and durably.
    Epoch { name: &'static str, epoch: u32, token: u64 },
}

/// Starts the log worker (see the module docs). `seed` randomises the roll points.
pub fn spawn_log_worker(
    cfg: &StorageConfig,
    events: mpsc::Sender<StorageEvent>,
    seed: u64,
    full_disk: FullDisk,
) -> std::io::Result<(mpsc::Sender<LogCommand>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<LogCommand>(LOG_QUEUE_MESSAGES);
    let log = TxnLog::new(&cfg.log_dir, cfg.prealloc_bytes, cfg.force_sync);
    let cfg = cfg.clone();
    let h = std::thread::Builder::new().name("rzk-log".into()).spawn(move || {
        let rolls = RollPolicy::new(cfg.snap_count, Rng::new(seed));
        log_worker(log, rx, events, &cfg, rolls, full_disk)
    })?;
    Ok((tx, h))
}

fn log_worker(
    mut log: TxnLog,
    mut rx: mpsc::Receiver<LogCommand>,
    events: mpsc::Sender<StorageEvent>,
    cfg: &StorageConfig,
    mut rolls: RollPolicy,
    full_disk: FullDisk,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    // The last zxid logged (once known), to refuse appends out of order.
    let mut last: Option<Zxid> = None;
    // After a refused batch: appends are dropped until this zxid comes again.
    let mut failed_from: Option<Zxid> = None;
    let mut lookahead: Option<LogCommand> = None;
    loop {
        let cmd = match lookahead.take() {
            Some(c) => c,
            None => match rx.blocking_recv() {
                Some(c) => c,
                None => break,
            },
        };
        let mut synced = None;
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
                if let Some(from) = failed_from {
                    match batch.iter().position(|a| a.zxid == from) {
                        Some(i) => {
                            batch.drain(..i);
                            failed_from = None;
                        }
                        None => batch.clear(),
                    }
                }
                if !batch.is_empty() {
                    let mut prev = last;
                    for a in &batch {
                        if prev.is_some_and(|p| a.zxid <= p) {
                            return fatal(
                                &events,
                                format!("append of zxid {} after {} is out of order; stopping", a.zxid, prev.unwrap_or_default()),
                            );
                        }
                        prev = Some(a.zxid);
                    }
                    if let Err(msg) = rolls.before_write(&mut log, &events) {
                        return fatal(&events, msg);
                    }
                    encode_batch(&batch, &mut buf);
                    let first_zxid = batch[0].zxid;
                    match log.write(first_zxid, &buf, batch.len() as u64) {
                        Ok(()) => {}
                        Err(AppendError::NoSpace(e)) if full_disk == FullDisk::RefuseAppends => {
                            let last_zxid = batch[batch.len() - 1].zxid;
                            tracing::error!(from = %first_zxid, to = %last_zxid, error = %e, "disk full: {} txns refused; writes fail until space returns", batch.len());
                            failed_from = Some(first_zxid);
                            if events.blocking_send(StorageEvent::AppendFailed { zxid: first_zxid, reason: e.to_string() }).is_err() {
                                break;
                            }
                            continue;
                        }
                        Err(e) => return fatal(&events, format!("{e}; an ensemble member cannot skip a transaction, stopping")),
                    }
                    let sync_started = std::time::Instant::now();
                    if let Err(e) = log.sync() {
                        let file = log.current_file().map(|p| p.display().to_string()).unwrap_or_default();
                        return fatal(
                            &events,
                            format!("fdatasync of the transaction log {file} failed: {e}; stopping (the log is recovered on restart)"),
                        );
                    }
                    synced = Some(Synced {
                        fsync_us: sync_started.elapsed().as_micros() as u64,
                        txns: u32::try_from(batch.len()).unwrap_or(u32::MAX),
                    });
                    last = prev;
                }
                token
            }
            LogCommand::Truncate { after, token } => {
                let r = log.roll().map_err(|e| format!("fsync of the transaction log failed while closing it: {e}")).and_then(|_| {
                    ensemble::truncate_after(&cfg.snap_dir, &cfg.log_dir, after, cfg.max_record_bytes).map_err(|e| e.to_string())
                });
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
                let r = log.roll().map_err(|e| format!("fsync of the transaction log failed while closing it: {e}")).and_then(|_| {
                    ensemble::install_snapshot(&cfg.snap_dir, &cfg.log_dir, zxid, &stream, digest, cfg.compression, cfg.max_record_bytes)
                        .map_err(|e| e.to_string())
                });
                if let Err(e) = r {
                    return fatal(&events, format!("installing the leader's snapshot at {zxid} failed: {e}; stopping"));
                }
                last = Some(zxid);
                token
            }
            LogCommand::InstallReceived { snap, token } => {
                let zxid = snap.zxid();
                let r = match snap.take_file() {
                    None => Err(format!("the received snapshot at {zxid} was installed twice")),
                    Some(file) => match log.roll() {
                        Err(e) => {
                            file.abort();
                            Err(format!("fsync of the transaction log failed while closing it: {e}"))
                        }
                        Ok(_) => ensemble::install_received_snapshot(&cfg.snap_dir, &cfg.log_dir, zxid, file).map_err(|e| e.to_string()),
                    },
                };
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
        if events.blocking_send(StorageEvent::Done { token, synced }).is_err() {
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
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let _ = events.blocking_send(StorageEvent::SnapshotWritten { zxid, result, elapsed_ms });
    })?;
    Ok(tx)
}
