//! The driver's side of durability: recovery at start, the hand-off of appends to the log
//! worker (group commit), fuzzy snapshots advanced in bounded steps between batches, and
//! the hourly purge. All file I/O happens in `rzk-storage`'s threads; this module only moves
//! work and results between them and the core.
//!
//! The contract with the member: its storage ops (`Output::Storage { seq, .. }`) go to the
//! log worker in `seq` order; `MemberInput::StorageDone { seq }` is fed back only once the
//! worker's fdatasync covering `seq` returned, so nothing is acknowledged before it is on
//! disk. A standalone server's full disk comes back as `AppendFailed`. A `Fatal` event
//! (failed fsync, I/O error) stops the server.

use crate::core::ZooKeeperServer;
use rzk_config::{ServerConfig, SnapshotCompression};
use rzk_proto::{SessionId, Zxid};
use rzk_storage::snapshot::SnapshotWalk;
use rzk_storage::worker::{self, FullDisk, LogCommand, SnapChunk, StorageEvent};
use rzk_storage::{Compression, RecoveryOptions, StorageConfig};
use rzk_tree::TreeOptions;
use std::io;
use std::time::Instant;
use tokio::sync::mpsc;

/// Bytes of snapshot produced per driver step (bounds the pause a step adds to requests).
pub const SNAPSHOT_STEP_BYTES: usize = 128 * 1024;
/// Driver turns a snapshot step may be put off while client requests are waiting.
pub const SNAPSHOT_STEP_DEFER: u32 = 16;
/// A snapshot abandoned this many times in a row (new ACL lists met) is taken in one step.
const SNAPSHOT_ABORTS_MAX: u32 = 3;

/// The storage settings, from zoo.cfg.
pub fn storage_config(cfg: &ServerConfig) -> StorageConfig {
    let (snap_dir, log_dir) = StorageConfig::dirs(&cfg.data_dir, cfg.data_log_dir.as_deref());
    StorageConfig {
        snap_dir,
        log_dir,
        snap_count: cfg.snap_count as u64,
        prealloc_bytes: cfg.pre_alloc_size_kb.saturating_mul(1024),
        force_sync: cfg.force_sync,
        compression: match cfg.snapshot_compression_method {
            SnapshotCompression::Checked => Compression::Checked,
            SnapshotCompression::Gzip => Compression::Gzip,
            SnapshotCompression::Snappy => Compression::Snappy,
        },
        snap_retain_count: cfg.snap_retain_count as usize,
        purge_interval_hours: cfg.purge_interval as u64,
        max_record_bytes: max_record_bytes(cfg),
    }
}

/// The tree settings, from zoo.cfg (`zookeeper.digest.enabled`, `extendedTypesEnabled`).
/// The largest snapshot or log record read (`jute.maxbuffer`, at least ZooKeeper's default,
/// plus room for the record's header).
pub fn max_record_bytes(cfg: &ServerConfig) -> usize {
    (cfg.jute_maxbuffer as usize).max(0xfffff) + 1024
}

pub fn tree_options(cfg: &ServerConfig) -> TreeOptions {
    TreeOptions { extended_types_enabled: cfg.extended_types_enabled, digest_enabled: cfg.digest_enabled, ..Default::default() }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// What a standalone server recovers: its whole state (every logged txn replayed: each is
/// committed).
pub struct Started {
    pub tree: rzk_tree::DataTree,
    pub sessions: Vec<(SessionId, i32)>,
    /// True when the log was replayed: a snapshot should be taken soon.
    pub snapshot_now: bool,
    /// The time to write `snapshot.0` of an empty dataDir (`snapshottime`), when written.
    pub initial_snapshot_ms: Option<u64>,
}

/// Loads a standalone server's data directory (blocking; run it off the async threads).
pub fn recover(cfg: &ServerConfig, sc: &StorageConfig) -> io::Result<Started> {
    let started = Instant::now();
    sc.ensure_dirs().map_err(other)?;
    let stale = rzk_storage::purge::remove_stale_temps(&sc.snap_dir).map_err(other)?;
    for p in stale {
        tracing::info!(file = %p.display(), "removed an unfinished snapshot");
    }
    let opts = RecoveryOptions { tree: tree_options(cfg), max_record_bytes: sc.max_record_bytes, repair: true };
    let rec = rzk_storage::recover(&sc.snap_dir, &sc.log_dir, &opts).map_err(other)?;
    for (p, why) in &rec.skipped_snapshots {
        tracing::warn!(file = %p.display(), reason = %why, "skipped a snapshot");
    }
    if !rec.digest_mismatches.is_empty() {
        tracing::error!(zxids = ?rec.digest_mismatches, "digest mismatches during recovery");
    }
    tracing::info!(
        snapshot = ?rec.snapshot.as_ref().map(|(_, p)| p.display().to_string()),
        replayed = rec.replayed,
        last_zxid = %rec.last_zxid,
        znodes = rec.tree.node_count() - 1,
        sessions = rec.sessions.len(),
        ms = started.elapsed().as_millis() as u64,
        "recovered the data directory"
    );
    let mut initial_snapshot_ms = None;
    if rec.snapshot.is_none() {
        // ZooKeeper refuses logs without a snapshot: write one before any log.
        let sessions: Vec<(i64, i32)> = rec.sessions.iter().map(|(k, v)| (*k, *v)).collect();
        let t = Instant::now();
        let p = rzk_storage::snapshot::write_snapshot(&sc.snap_dir, &rec.tree, &sessions, sc.compression).map_err(other)?;
        initial_snapshot_ms = Some(t.elapsed().as_millis() as u64);
        tracing::info!(file = %p.display(), "wrote the initial snapshot");
    }
    let sessions: Vec<(SessionId, i32)> = rec.sessions.iter().map(|(k, v)| (SessionId(*k), *v)).collect();
    Ok(Started { tree: rec.tree, sessions, snapshot_now: rec.replayed > 0, initial_snapshot_ms })
}

/// What an ensemble member recovers: the snapshot's state, the log after it (and some
/// history before it, for DIFF) and the epoch files.
pub struct MemberRecovered {
    pub tree: rzk_tree::DataTree,
    pub sessions: Vec<(i64, i32)>,
    pub snapshot_zxid: Zxid,
    pub log: Vec<(Zxid, Vec<u8>)>,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// The time to write `snapshot.0` of an empty dataDir (`snapshottime`), when written.
    pub initial_snapshot_ms: Option<u64>,
    /// The snapshot's digest at its zxid is unknown (none stored: a leader's SNAP, or a
    /// ZooKeeper before 3.6; or one taken at a later zxid: a fuzzy snapshot of our own):
    /// digests are compared once the replay converges (see `Recovered::fuzzy`).
    pub fuzzy: bool,
}

/// Loads an ensemble member's data directory (blocking): the newest good snapshot ONLY (the
/// log after it is not applied: ZAB delivers those txns once it knows they are committed),
/// the raw log, and acceptedEpoch / currentEpoch (missing files: the epoch of the last zxid,
/// as ZooKeeper does). An empty dataDir gets `snapshot.0` first, as for a standalone server.
pub fn recover_member(sc: &StorageConfig, tree: TreeOptions, keep_committed: usize) -> io::Result<MemberRecovered> {
    sc.ensure_dirs().map_err(other)?;
    for p in rzk_storage::purge::remove_stale_temps(&sc.snap_dir).map_err(other)? {
        tracing::info!(file = %p.display(), "removed an unfinished snapshot");
    }
    let opts = RecoveryOptions { tree, max_record_bytes: sc.max_record_bytes, repair: true };
    let rec = rzk_storage::recover_ensemble(&sc.snap_dir, &sc.log_dir, &opts, keep_committed).map_err(other)?;
    for (file, offset, reason) in &rec.torn {
        tracing::warn!(file = %file.display(), offset, reason = %reason, "cut a torn log tail");
    }
    let mut initial_snapshot_ms = None;
    if rec.snapshot.is_none() && rec.log.is_empty() {
        let t = Instant::now();
        let p = rzk_storage::snapshot::write_snapshot(&sc.snap_dir, &rec.tree, &rec.sessions, sc.compression).map_err(other)?;
        initial_snapshot_ms = Some(t.elapsed().as_millis() as u64);
        tracing::info!(file = %p.display(), "wrote the initial snapshot");
    }
    let epochs = rzk_storage::epoch::load_epochs(&sc.snap_dir, rec.last_logged).map_err(other)?;
    let fuzzy = rec.snapshot.is_some() && rec.snapshot_digest.is_none_or(|(z, _, _)| z != rec.snapshot_zxid);
    Ok(MemberRecovered {
        fuzzy,
        tree: rec.tree,
        sessions: rec.sessions,
        snapshot_zxid: rec.snapshot_zxid,
        log: rec.log,
        accepted_epoch: epochs.accepted,
        current_epoch: epochs.current,
        initial_snapshot_ms,
    })
}

/// A snapshot being walked.
struct InProgress {
    walk: SnapshotWalk,
    tx: mpsc::Sender<SnapChunk>,
    /// Every node is written; the next send is `End`.
    nodes_done: bool,
}

/// The driver's storage state.
/// Where a `snapshot` command waits: the snapshot's zxid and file, or why there is none.
pub type SnapshotWaiter = tokio::sync::oneshot::Sender<Result<(Zxid, std::path::PathBuf), String>>;

/// `snapshot` commands waiting at once, at most (3.9's rate limit lets few through anyway).
pub const SNAPSHOT_WAITERS_MAX: usize = 16;

pub struct Durable {
    cfg: StorageConfig,
    log_thread: Option<std::thread::JoinHandle<()>>,
    events_tx: mpsc::Sender<StorageEvent>,
    pub events: mpsc::Receiver<StorageEvent>,
    snapshot: Option<InProgress>,
    snapshot_aborts: u32,
    /// AdminServer `snapshot` commands waiting for the snapshot being written (it started
    /// after they asked), and those waiting for the next one (they asked while an older
    /// walk was under way, which may miss their writes).
    snapshot_waiters: Vec<SnapshotWaiter>,
    snapshot_waiters_next: Vec<SnapshotWaiter>,
    /// The log worker's ordered command queue (appends, TRUNC, SNAP installs, epoch files),
    /// and commands not yet handed to it (its queue was full).
    cmd_tx: Option<mpsc::Sender<LogCommand>>,
    pub pending_cmds: std::collections::VecDeque<LogCommand>,
}

impl Durable {
    /// Starts the log worker, which runs every storage op of the member in order and reports
    /// each with `StorageEvent::Done { token }` (the op's seq).
    pub fn start(cfg: StorageConfig, full_disk: FullDisk) -> io::Result<Durable> {
        if !cfg.force_sync {
            tracing::warn!("forceSync=no: the transaction log is never fsynced; acknowledged writes can be lost in a crash (unsafe)");
        }
        let (events_tx, events) = mpsc::channel(1024);
        // Randomises where the log rolls (as ZooKeeper's snapCount/2 + random(snapCount/2)).
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x5eed);
            h.finish()
        };
        let (tx, h) = worker::spawn_log_worker(&cfg, events_tx.clone(), seed, full_disk)?;
        Ok(Durable {
            cfg,
            log_thread: Some(h),
            events_tx,
            events,
            snapshot: None,
            snapshot_aborts: 0,
            snapshot_waiters: Vec::new(),
            snapshot_waiters_next: Vec::new(),
            cmd_tx: Some(tx),
            pending_cmds: Default::default(),
        })
    }

    /// Queues a storage command; consecutive appends travel as one batch.
    pub fn command(&mut self, cmd: LogCommand) {
        if let LogCommand::Append { entries, token } = cmd {
            if let Some(LogCommand::Append { entries: last, token: t }) = self.pending_cmds.back_mut() {
                if last.len() < 4096 {
                    last.extend(entries);
                    *t = token;
                    return;
                }
            }
            self.pending_cmds.push_back(LogCommand::Append { entries, token });
        } else {
            self.pending_cmds.push_back(cmd);
        }
    }

    /// A sender to wait on while commands are queued.
    pub fn command_sender(&self) -> Option<mpsc::Sender<LogCommand>> {
        if self.pending_cmds.is_empty() {
            None
        } else {
            self.cmd_tx.clone()
        }
    }

    /// Hands the oldest queued command over with a permit from [`Durable::command_sender`],
    /// then as many more as fit without waiting.
    pub fn send_command(&mut self, permit: mpsc::OwnedPermit<LogCommand>) {
        if let Some(c) = self.pending_cmds.pop_front() {
            permit.send(c);
        }
        self.flush();
    }

    /// Hands queued commands to the log worker while its queue has room.
    pub fn flush(&mut self) {
        let Some(tx) = &self.cmd_tx else { return };
        while let Some(c) = self.pending_cmds.pop_front() {
            match tx.try_send(c) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(c)) | Err(mpsc::error::TrySendError::Closed(c)) => {
                    self.pending_cmds.push_front(c);
                    return;
                }
            }
        }
    }

    /// Abandons a snapshot of our own that is being written (its tree is being replaced).
    pub fn abort_snapshot(&mut self) {
        if self.snapshot.take().is_some() {
            tracing::info!("abandoned the snapshot in progress: the leader's SNAP replaces the tree");
        }
        self.fail_snapshot_waiters("the snapshot was abandoned: the leader's SNAP replaced the tree");
    }

    /// A snapshot for the AdminServer's `snapshot` command: one that starts now (or the
    /// next one, if a walk is already under way), answered on `reply` when its file is
    /// written and fsynced. At most [`SNAPSHOT_WAITERS_MAX`] wait; more are refused.
    pub fn snapshot_for_admin(&mut self, core: &ZooKeeperServer, reply: SnapshotWaiter) {
        if self.snapshot_waiters.len() + self.snapshot_waiters_next.len() >= SNAPSHOT_WAITERS_MAX {
            let _ = reply.send(Err("too many snapshot commands wait".into()));
            return;
        }
        if self.snapshot.is_some() {
            self.snapshot_waiters_next.push(reply);
            return;
        }
        self.snapshot_waiters.push(reply);
        self.start_snapshot(core);
        if self.snapshot.is_none() {
            self.fail_snapshot_waiters("the snapshot writer could not start");
        }
    }

    fn fail_snapshot_waiters(&mut self, why: &str) {
        for w in self.snapshot_waiters.drain(..).chain(self.snapshot_waiters_next.drain(..)) {
            let _ = w.send(Err(why.to_string()));
        }
    }

    pub fn config(&self) -> &StorageConfig {
        &self.cfg
    }

    pub fn snapshot_running(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Starts a fuzzy snapshot of the core's tree and session table (unless one is running).
    pub fn start_snapshot(&mut self, core: &ZooKeeperServer) {
        if self.snapshot.is_some() {
            tracing::info!("a snapshot is still being written; skipping this one (as ZooKeeper: too busy to snap)");
            return;
        }
        let sessions: Vec<(i64, i32)> = core.committed_sessions().iter().map(|(id, t)| (id.0, *t)).collect();
        let (mut walk, head) = SnapshotWalk::begin(core.tree(), &sessions);
        let zxid = walk.zxid();
        let tx = match worker::spawn_snapshot_writer(&self.cfg.snap_dir, zxid, self.cfg.compression, head, self.events_tx.clone()) {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the snapshot writer");
                return;
            }
        };
        tracing::info!(zxid = %zxid, "taking a snapshot (fuzzy, while writes go on)");
        if self.snapshot_aborts >= SNAPSHOT_ABORTS_MAX {
            // New ACL lists keep appearing mid-walk: take this one in a single step.
            tracing::warn!("snapshot taken in one step after {} abandoned attempts", self.snapshot_aborts);
            let body = walk.step(core.tree(), usize::MAX).expect("nothing interleaves a single step");
            let _ = tx.try_send(SnapChunk::Data(body));
            let _ = tx.try_send(SnapChunk::End(SnapshotWalk::zxid_digest(core.tree())));
            self.snapshot_aborts = 0;
            self.snapshot = Some(InProgress { walk, tx, nodes_done: true });
            return;
        }
        self.snapshot = Some(InProgress { walk, tx, nodes_done: false });
    }

    /// A sender to wait on while a snapshot still has chunks to send.
    pub fn snapshot_sender(&self) -> Option<mpsc::Sender<SnapChunk>> {
        match &self.snapshot {
            Some(s) if !s.walk.is_done() || !s.nodes_done => Some(s.tx.clone()),
            _ => None,
        }
    }

    /// One bounded step of the snapshot walk, sent with `permit`.
    pub fn snapshot_step(&mut self, core: &ZooKeeperServer, permit: mpsc::OwnedPermit<SnapChunk>) {
        let Some(s) = self.snapshot.as_mut() else { return };
        if s.walk.is_done() {
            s.nodes_done = true;
            permit.send(SnapChunk::End(SnapshotWalk::zxid_digest(core.tree())));
            return;
        }
        match s.walk.step(core.tree(), SNAPSHOT_STEP_BYTES) {
            Ok(b) => {
                permit.send(SnapChunk::Data(b));
            }
            Err(e) => {
                tracing::info!(reason = %e, "snapshot abandoned; retrying");
                self.snapshot = None; // dropping the sender abandons the temp file
                self.snapshot_aborts += 1;
                drop(permit);
                self.start_snapshot(core);
                if self.snapshot.is_none() {
                    self.fail_snapshot_waiters("the snapshot writer could not start");
                }
            }
        }
    }

    /// A snapshot writer finished (or failed, or was abandoned by us). The `snapshot`
    /// commands waiting for it get its file; those waiting for the next start it.
    pub fn snapshot_written(&mut self, core: &ZooKeeperServer, zxid: Zxid, result: &Result<std::path::PathBuf, String>) {
        if matches!(result, Err(e) if e == "abandoned") {
            return; // an attempt we dropped; a retry may be running under the same zxid
        }
        if self.snapshot.as_ref().is_some_and(|s| s.walk.zxid() == zxid) {
            self.snapshot = None;
            if result.is_ok() {
                self.snapshot_aborts = 0;
            }
            for w in self.snapshot_waiters.drain(..) {
                let _ = w.send(result.clone().map(|path| (zxid, path)));
            }
            if !self.snapshot_waiters_next.is_empty() {
                self.snapshot_waiters = std::mem::take(&mut self.snapshot_waiters_next);
                self.start_snapshot(core);
                if self.snapshot.is_none() {
                    self.fail_snapshot_waiters("the snapshot writer could not start");
                }
            }
        }
    }

    /// The snapshot writer went away mid-walk (it failed; its event says why).
    pub fn snapshot_lost(&mut self) {
        self.snapshot = None;
        self.fail_snapshot_waiters("the snapshot writer failed (see the server's log)");
    }

    /// Stops the log worker after it has written what it was given.
    pub async fn shutdown(mut self) {
        self.snapshot = None;
        if let Some(tx) = self.cmd_tx.take() {
            while let Some(c) = self.pending_cmds.pop_front() {
                if tx.send(c).await.is_err() {
                    break;
                }
            }
        }
        if let Some(h) = self.log_thread.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

/// Runs one purge (blocking).
pub fn purge(cfg: &StorageConfig) {
    match rzk_storage::purge::purge(&cfg.snap_dir, &cfg.log_dir, cfg.snap_retain_count.max(rzk_storage::purge::MIN_RETAIN)) {
        Ok(r) if !r.removed.is_empty() => tracing::info!(removed = r.removed.len(), "purged old snapshots and logs"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purge failed"),
    }
}

/// For the data tools: the storage settings from `--config zoo.cfg`, or a directory given
/// directly (a dataDir holding `version-2`, or the `version-2` directory itself; the snapshot
/// directory may be given separately, as `PurgeTxnLog` takes it).
pub fn tool_config(
    config: Option<&std::path::Path>,
    dir: Option<&std::path::Path>,
    snap_dir: Option<&std::path::Path>,
) -> Result<(StorageConfig, TreeOptions), String> {
    let cfg = match (config, dir) {
        (Some(c), _) => rzk_config::load(c).map_err(|e| format!("invalid configuration: {e}"))?,
        (None, Some(d)) => {
            let mut c = ServerConfig::default_standalone();
            // Both layouts: dataDir or dataDir/version-2.
            let base = if d.file_name().is_some_and(|n| n == rzk_storage::format::VERSION_DIR) {
                d.parent().unwrap_or(d).to_path_buf()
            } else {
                d.to_path_buf()
            };
            c.data_dir = snap_dir.map(|s| s.to_path_buf()).unwrap_or_else(|| base.clone());
            c.data_log_dir = Some(base);
            c.extended_types_enabled = true;
            c
        }
        (None, None) => return Err("give --config zoo.cfg or a data directory".into()),
    };
    Ok((storage_config(&cfg), tree_options(&cfg)))
}

/// Reads of the txn log for learners' DIFFs (a leader's `Output::ReadLog`): one thread per
/// read runs `rzk_storage::ensemble::read_log_after` (ZooKeeper's `getProposalsFromTxnLog`
/// with `zookeeper.snapshotSizeFactor`) and hands its batches over a channel of one batch
/// (the thread waits while the driver has not taken it: bounded memory); the driver takes a
/// batch for a learner only when its quorum connection has room, and drops the read (the
/// thread then stops) when the member says stop.
pub struct LogReads {
    reads: std::collections::BTreeMap<rzk_zab::ServerId, (u64, std::sync::mpsc::Receiver<rzk_zab::LogRead>)>,
    next_id: u64,
    /// Poked by a reader thread when it has handed over a batch.
    pub ready: std::sync::Arc<tokio::sync::Notify>,
}

impl Default for LogReads {
    fn default() -> Self {
        LogReads { reads: Default::default(), next_id: 0, ready: std::sync::Arc::new(tokio::sync::Notify::new()) }
    }
}

impl LogReads {
    /// Starts reading the txns after `after` for `to` (replacing any read for `to`).
    pub fn start(&mut self, cfg: &StorageConfig, size_factor: f64, to: rzk_zab::ServerId, after: Zxid) {
        use rzk_zab::{Entry, LogRead};
        let (tx, rx) = std::sync::mpsc::sync_channel::<LogRead>(1);
        let (snap_dir, log_dir, max_record) = (cfg.snap_dir.clone(), cfg.log_dir.clone(), cfg.max_record_bytes);
        let ready = self.ready.clone();
        self.next_id += 1;
        let spawned = std::thread::Builder::new().name(format!("rzk-logread-{to}")).spawn(move || {
            let send = |r: LogRead| {
                let ok = tx.send(r).is_ok();
                ready.notify_one();
                ok
            };
            let r = rzk_storage::ensemble::read_log_after(&snap_dir, &log_dir, after, size_factor, max_record, |batch| {
                let entries = batch.into_iter().map(|(zxid, data)| Entry { zxid, data: bytes::Bytes::from(data) }).collect();
                send(LogRead::Entries(entries))
            });
            match r {
                Ok(Ok(())) => {
                    send(LogRead::End);
                }
                Ok(Err(why)) => {
                    tracing::info!(learner = %to, after = %after, reason = %why, "no DIFF from the txn log: SNAP");
                    send(LogRead::Unavailable);
                }
                Err(e) => {
                    tracing::warn!(learner = %to, after = %after, error = %e, "reading the txn log for a DIFF failed");
                    send(LogRead::Unavailable);
                }
            }
        });
        match spawned {
            Ok(_) => {
                self.reads.insert(to, (self.next_id, rx));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a txn log reader");
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let _ = tx.send(LogRead::Unavailable);
                self.reads.insert(to, (self.next_id, rx));
            }
        }
    }

    /// Drops the read for `to` (its thread stops at its next batch).
    pub fn stop(&mut self, to: rzk_zab::ServerId) {
        self.reads.remove(&to);
    }

    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    pub fn learners(&self) -> Vec<rzk_zab::ServerId> {
        self.reads.keys().copied().collect()
    }

    /// The next batch for `to`, if its reader has one ready; a read that ended is dropped.
    pub fn take(&mut self, to: rzk_zab::ServerId) -> Option<rzk_zab::LogRead> {
        use std::sync::mpsc::TryRecvError;
        let (_, rx) = self.reads.get(&to)?;
        match rx.try_recv() {
            Ok(r) => {
                if !matches!(r, rzk_zab::LogRead::Entries(_)) {
                    self.reads.remove(&to);
                }
                Some(r)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.reads.remove(&to);
                Some(rzk_zab::LogRead::Unavailable)
            }
        }
    }
}
