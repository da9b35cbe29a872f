//! The one driver of a server, standalone or ensemble member alike: it owns the pure
//! [`Member`] and does its I/O. Inputs come from the client connections (one bounded inbox),
//! the peer transport ([`peer::PeerNet`], members only), the storage threads and a ticker;
//! the member's [`Output`]s go to the connections' bounded outbound queues, the peers and the
//! one ordered log worker. The driver decides nothing about the protocol: which state
//! machine acts first, what a packet means, which zxid a txn gets — all of that is in
//! `rzk_core::member`, where the simulator runs it.
//!
//! Storage: every `Output::Storage { seq, op }` becomes one [`LogCommand`] with `seq` as its
//! token, in order; the worker reports `Done { token }` once that command and all before it
//! are durable (group commit), which is `MemberInput::StorageDone`. A standalone server's
//! worker refuses appends on a full disk (`AppendFailed`, answered with ConnectionLoss); a
//! member's treats it as fatal, as every other storage error.
//!
//! Snapshots of our own tree are walked here in bounded steps between batches of requests
//! (see [`durable`]); a leader's SNAP is installed by the member and only stored here. A
//! SNAP a leader sends is the member's too: once per driver turn, each stream whose quorum
//! connection has fewer than [`SNAP_QUEUE_BYTES`] waiting gets its next step
//! ([`Member::snap_step`], ~128 KiB of serialization), and the loop wakes when a
//! connection's writer drained its queue: the socket paces the stream, and the leader's
//! other work goes on between its steps.

use super::conn::{ConnTx, SendError};
use super::{durable, peer, wall_ms, ConnCounts, Event, Outbound, ProcessInfoSource};
use crate::core::member::{Member, MemberConfig, MemberInput, Output, PeerMsg, Recovered, SnapCodec};
use crate::core::server::StorageObservation;
use crate::core::ConnId;
use bytes::Bytes;
use rzk_config::ServerConfig;
use rzk_storage::epoch;
use rzk_storage::worker::{FullDisk, LogAppend, LogCommand, StorageEvent};
use rzk_tree::TreeOptions;
use rzk_zab::{Config as ZabConfig, Entry, Restored, ServerId, SnapData, StorageOp};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How often the member is ticked; its node counts ZooKeeper's timeouts (tickTime,
/// initLimit, syncLimit, the election's 200 ms finalize wait) in these.
const NODE_TICK_MS: u32 = 10;
/// How often the core's clock moves (session expiry, containers).
const CORE_TICK_MS: i64 = 50;
/// Committed txns kept in memory for DIFF syncs (ZooKeeper's `commitLogCount`).
const COMMITTED_LOG_MAX: usize = 500;
/// How long a member's `Output::Stop` leaves the connections to send their last replies.
const STOP_FLUSH: Duration = Duration::from_millis(200);
/// Storage commands queued for the log worker beyond which client requests wait.
const PENDING_COMMANDS_MAX: usize = 64;
/// Bytes a learner's quorum connection may have waiting before its SNAP stream's next step.
pub const SNAP_QUEUE_BYTES: usize = 1 << 20;
/// Reply bytes a batch of client requests may hold back before they go to their connections'
/// queues (below it they go at the end of the batch: one wake-up per connection).
const SEND_BATCH_BYTES: usize = 256 * 1024;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The ensemble-side settings from zoo.cfg (a standalone server: itself as the one voter).
pub fn zab_config(cfg: &ServerConfig, my_id: Option<u64>) -> ZabConfig {
    let Some(my_id) = my_id else {
        let me = ServerId(1);
        return ZabConfig::from_ms(me, BTreeSet::from([me]), BTreeSet::new(), NODE_TICK_MS, cfg.tick_time, cfg.init_limit, cfg.sync_limit);
    };
    let voters: BTreeSet<ServerId> = cfg.participants().map(|s| ServerId(s.id as i64)).collect();
    let observers: BTreeSet<ServerId> = cfg.observers().map(|s| ServerId(s.id as i64)).collect();
    let mut z = ZabConfig::from_ms(ServerId(my_id as i64), voters, observers, NODE_TICK_MS, cfg.tick_time, cfg.init_limit, cfg.sync_limit);
    z.committed_log_max = COMMITTED_LOG_MAX;
    // `ZKDatabase.isTxnLogSyncEnabled`: snapshotSizeFactor >= 0 (NaN is not).
    z.txn_log_sync = cfg.snapshot_size_factor.0 >= 0.0;
    z.config_data = Bytes::from(cfg.membership_string().into_bytes());
    z.config_version = cfg.config_version as i64;
    z.reconfig_enabled = cfg.reconfig_enabled;
    z.sync_enabled = cfg.sync_enabled;
    // The observer's random delays (Observer's reconnect and election delays), in node
    // ticks rounded up, drawn from a random seed.
    let ticks = |ms: i64| (ms.max(0) as u64).div_ceil(NODE_TICK_MS as u64);
    z.observer_reconnect_delay_ticks = ticks(cfg.observer_reconnect_delay_ms);
    z.observer_election_delay_ticks = ticks(cfg.observer_election_delay_ms);
    {
        use std::hash::{BuildHasher, Hasher};
        z.random_seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
    }
    if cfg.observer_master_port.is_some() {
        // Both sides, whatever this server's type at start-up (a reconfig may convert it, as
        // ZooKeeper builds its list on every peer and starts an ObserverMaster in every
        // Follower): as an observer it syncs from the voters' observer masters, in an order
        // shuffled by a random seed (`updateObserverMasterList`); as a follower it serves
        // observers (ZooKeeper's ObserverMaster).
        use std::hash::{BuildHasher, Hasher};
        z.observer_master_seed = Some(std::collections::hash_map::RandomState::new().build_hasher().finish());
        z.observer_master = true;
    }
    if !cfg.groups.is_empty() {
        // group.N / weight.N: ZooKeeper's QuorumHierarchical (the config checked that every
        // participant is in exactly one group).
        let groups = cfg.groups.iter().map(|(g, m)| (*g, m.iter().map(|s| ServerId(*s as i64)).collect())).collect();
        let weights = cfg.weights.iter().map(|(s, w)| (ServerId(*s as i64), *w)).collect();
        z.hierarchy = Some(rzk_zab::Hierarchy::new(&groups, &weights));
    }
    z
}

/// rzk-storage's SNAP stream, the one both `rzk server` and the simulator use: written in
/// steps by its fuzzy walk (`SnapWireWalk`).
pub fn snap_codec() -> SnapCodec {
    SnapCodec {
        begin: |tree, sessions| {
            let (mut walk, head) = rzk_storage::SnapWireWalk::begin(tree, sessions);
            let step: crate::core::member::SnapStep = Box::new(move |tree, budget| {
                let b = walk.step(tree, budget).map_err(|e| e.to_string())?;
                Ok((b, walk.is_done()))
            });
            (head, step)
        },
        decode: |data, zxid, opts| rzk_storage::decode_snap_stream(data, zxid, opts).map_err(|e| e.to_string()),
        take: |received| {
            let r = received.downcast_ref::<rzk_storage::ReceivedSnap>().ok_or("not a received SNAP")?;
            r.take_state().ok_or_else(|| format!("the SNAP at {} was installed twice", r.zxid()))
        },
    }
}

/// Everything the driver owns besides the sockets' tasks.
struct Driver {
    my_id: Option<ServerId>,
    member: Member,
    net: Option<peer::PeerNet>,
    storage: durable::Durable,
    config_version: i64,
    config_data: Bytes,
    started: Instant,
    conns: HashMap<ConnId, ConnTx, rustc_hash::FxBuildHasher>,
    /// `audit.enable`: the audit log's writer.
    audit: Option<super::audit::AuditLog>,
    /// The member's `Output::Stop`: the server must stop with this error.
    stop: Option<String>,
    /// `execute`'s list of the member's outputs, kept for its capacity.
    out_buf: Vec<Output>,
    /// An admin `restore` waiting for the writes in flight to commit.
    pending_restore: Option<PendingRestore>,
    /// `reconfigEnabled` on a member: the static configuration file, rewritten with a
    /// dynamic one whenever a new configuration is activated.
    config_file: Option<std::path::PathBuf>,
    /// Reads of the txn log for learners' DIFFs.
    log_reads: durable::LogReads,
    /// `zookeeper.snapshotSizeFactor`.
    snapshot_size_factor: f64,
}

struct PendingRestore {
    tree: Box<rzk_tree::DataTree>,
    sessions: Vec<(rzk_proto::SessionId, i32)>,
    reply: durable::SnapshotWaiter,
    deadline: Instant,
}

/// How long an admin `restore` waits for the writes in flight to commit.
const RESTORE_WAIT: Duration = Duration::from_secs(10);

impl Driver {
    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    fn input(&mut self, input: MemberInput) {
        let (n, w) = (self.now_ms(), wall_ms());
        self.member.handle(n, w, input);
    }

    /// An input at a time the caller read (one reading of the clocks for a batch of inputs).
    fn input_at(&mut self, (now, wall): (i64, i64), input: MemberInput) {
        self.member.handle(now, wall, input);
    }

    /// Carries out the member's outputs.
    fn execute(&mut self) {
        let mut outs = std::mem::take(&mut self.out_buf);
        self.member.drain_outputs_into(&mut outs);
        for o in outs.drain(..) {
            match o {
                Output::Send { conn, frame, reply } => self.send_client(conn, Outbound::Frame { bytes: frame, reply }),
                Output::Close { conn, reason } => {
                    tracing::debug!(conn, reason = %reason, "closing connection");
                    if let Some(tx) = self.conns.remove(&conn) {
                        tx.close(reason);
                    }
                }
                Output::PeerSend { to, msg } => {
                    let Some(net) = &self.net else { panic!("a standalone server sent {} to server {to}", msg.name()) };
                    let me = self.my_id.expect("members have an id");
                    match msg {
                        PeerMsg::Zab(m) => net.send(to, &m, me, self.config_version, &self.config_data),
                        other => net.send_packet(to, other.to_packet().expect("non-ZAB messages are packets")),
                    }
                }
                Output::SnapStream { to, zxid, start, bytes, end: _ } => {
                    if let Some(net) = &self.net {
                        net.send_snap(to, zxid, start, bytes);
                    }
                }
                Output::ReadLog { to, after } => {
                    let cfg = self.storage.config().clone();
                    self.log_reads.start(&cfg, self.snapshot_size_factor, to, after);
                }
                Output::StopReadLog { to } => self.log_reads.stop(to),
                Output::PeerDisconnect { peer } => {
                    if let Some(net) = &self.net {
                        net.disconnect(peer)
                    }
                }
                Output::Storage { seq, op, snapshot_digest } => self.storage_op(seq, op, snapshot_digest),
                Output::Audit(e) => {
                    if let Some(a) = &mut self.audit {
                        a.record(wall_ms(), *e);
                    }
                }
                Output::ConfigActivated { data, version } => self.config_activated(&data, version),
                Output::LastSeenConfig { data } => {
                    if let Some(file) = &self.config_file {
                        let text = data.as_ref().map(|d| String::from_utf8_lossy(d).into_owned());
                        match super::dynconfig::write_next(file, text.as_deref()) {
                            Ok(p) if text.is_some() => tracing::info!(file = %p.display(), "wrote the configuration seen proposed"),
                            Ok(_) => {}
                            // As ZooKeeper: logged; the configuration seen is kept in memory.
                            Err(e) => tracing::error!(error = %e, "cannot write or delete the next dynamic configuration file"),
                        }
                    }
                }
                Output::ObserverMaster { listen } => {
                    if let Some(net) = &mut self.net {
                        net.observer_master(listen);
                    }
                }
                Output::Stop { reason } => {
                    // The member's last output: the driver loop ends with this error.
                    self.stop.get_or_insert(reason);
                }
            }
        }
        self.out_buf = outs;
    }

    /// The member runs with a new configuration: the peer transport's address book, what
    /// LearnerInfo and notifications carry, and (reconfigEnabled) the configuration files.
    fn config_activated(&mut self, data: &Bytes, version: i64) {
        self.config_data = data.clone();
        self.config_version = version;
        let text = String::from_utf8_lossy(data);
        match rzk_config::membership_of(&text) {
            Ok(m) => {
                if let Some(net) = &self.net {
                    net.set_peers(peer::PeerAddrs::from_config(&m));
                }
            }
            // The member took it (the node parsed it): only an address this shell cannot
            // read; the peers stay where they were.
            Err(e) => tracing::warn!(error = %e, "the activated configuration's addresses cannot be read; peers unchanged"),
        }
        if let (Some(file), Some(me)) = (&self.config_file, self.my_id) {
            match super::dynconfig::write_activated(file, &text, version, me.0 as u64) {
                Ok(p) => tracing::info!(file = %p.display(), "wrote the dynamic configuration file"),
                // ZooKeeper logs it and goes on: the configuration is in force, a restart
                // would read the old files.
                Err(e) => tracing::error!(error = %e, file = %file.display(), "cannot write the dynamic configuration file"),
            }
        }
    }

    /// The admin `restore` waiting for the writes in flight to commit: taken once none is
    /// (the driver's turn ends with the member's writes handed to storage, so they commit);
    /// refused after RESTORE_WAIT.
    fn try_restore(&mut self) {
        let Some(p) = self.pending_restore.take() else { return };
        if !self.member.can_restore() && Instant::now() < p.deadline {
            self.pending_restore = Some(p);
            return;
        }
        let (now, wall) = (self.now_ms(), wall_ms());
        match self.member.restore(now, wall, *p.tree, &p.sessions) {
            // The installed tree is made durable before the caller hears of it.
            Ok(_) => self.storage.snapshot_for_admin(self.member.core(), p.reply),
            Err((why, _tree)) => {
                let _ = p.reply.send(Err(why.to_string()));
            }
        }
    }

    /// A frame to a client; a client whose queue is full is cut off (it is not reading).
    fn send_client(&mut self, conn: ConnId, out: Outbound) {
        let Some(tx) = self.conns.get(&conn) else { return };
        match tx.send(out) {
            Ok(()) | Err(SendError::Closed) => {}
            Err(SendError::Full) => {
                // Its task logs the reason and reports Closed; the member hears of it then.
                tx.kill();
            }
        }
    }

    /// One storage op of the member, in order, to the log worker.
    fn storage_op(&mut self, seq: u64, op: StorageOp, snapshot_digest: Option<i64>) {
        let cmd = match op {
            StorageOp::Append(e) => LogCommand::Append { entries: vec![LogAppend { zxid: e.zxid, entry: e.data }], token: seq },
            StorageOp::AcceptedEpoch(epoch) => LogCommand::Epoch { name: epoch::ACCEPTED_EPOCH, epoch, token: seq },
            StorageOp::CurrentEpoch(epoch) => LogCommand::Epoch { name: epoch::CURRENT_EPOCH, epoch, token: seq },
            StorageOp::Truncate { after } => LogCommand::Truncate { after, token: seq },
            StorageOp::InstallSnapshot { zxid, data } => {
                // The member has already replaced its tree: our own snapshot walk is void.
                self.storage.abort_snapshot();
                match data {
                    SnapData::Stream(stream) => LogCommand::InstallSnapshot { zxid, stream, digest: snapshot_digest, token: seq },
                    SnapData::Received(r) => {
                        let snap =
                            r.downcast::<rzk_storage::ReceivedSnap>().unwrap_or_else(|_| panic!("a SNAP at {zxid} of a foreign type"));
                        assert_eq!(snap.zxid(), zxid, "a received SNAP installed at another zxid");
                        LogCommand::InstallReceived { snap, token: seq }
                    }
                }
            }
            StorageOp::Checkpoint { .. } => unreachable!("the member stores a checkpoint as InstallSnapshot"),
        };
        self.storage.command(cmd);
    }

    /// One step of each SNAP stream whose learner's connection has room.
    fn snap_steps(&mut self) {
        let Some(net) = &self.net else { return };
        if !self.member.has_snap_streams() {
            return;
        }
        let ready: Vec<ServerId> = self.member.snap_streams().filter(|to| net.snap_room(*to, SNAP_QUEUE_BYTES)).collect();
        for to in ready {
            let (n, w) = (self.now_ms(), wall_ms());
            self.member.snap_step(n, w, to);
            self.execute();
        }
    }

    /// One batch of each txn log read whose learner's connection has room.
    fn log_read_steps(&mut self) {
        let Some(net) = &self.net else { return };
        if self.log_reads.is_empty() {
            return;
        }
        let ready: Vec<ServerId> = self.log_reads.learners().into_iter().filter(|to| net.snap_room(*to, SNAP_QUEUE_BYTES)).collect();
        for to in ready {
            if let Some(read) = self.log_reads.take(to) {
                self.input(MemberInput::LogRead { to, read });
                self.execute();
            }
        }
    }

    fn net_event(&mut self, ev: peer::NetEvent) {
        match ev {
            peer::NetEvent::Message { from, msg } => self.input(MemberInput::Peer { from, msg: PeerMsg::Zab(msg) }),
            peer::NetEvent::Member { from, msg } => self.input(MemberInput::Peer { from, msg }),
            peer::NetEvent::Disconnected { peer } => self.input(MemberInput::PeerDisconnected { peer }),
        }
    }

    fn storage_event(&mut self, ev: StorageEvent) -> Result<(), String> {
        match ev {
            StorageEvent::Done { token, synced } => {
                if let Some(s) = synced {
                    let o = StorageObservation::GroupCommit { fsync_ms: (s.fsync_us / 1000) as i64, txns: i64::from(s.txns) };
                    self.member.observe_storage(o);
                }
                self.input(MemberInput::StorageDone { seq: token })
            }
            StorageEvent::AppendFailed { zxid, reason } => {
                if !self.member.is_standalone() {
                    // A member cannot skip a txn the leader sent it: stop; recovery sorts it out.
                    return Err(format!("the transaction log refused {zxid} ({reason}); an ensemble member cannot go on without it"));
                }
                tracing::error!(from = %zxid, reason = %reason, "the transaction log refused writes; answering them with ConnectionLoss");
                self.input(MemberInput::AppendFailed { zxid });
            }
            StorageEvent::SnapshotDue => self.storage.start_snapshot(self.member.core()),
            StorageEvent::SnapshotWritten { zxid, result, elapsed_ms } => {
                if result.is_ok() {
                    self.member.observe_storage(StorageObservation::Snapshot { ms: elapsed_ms as i64 });
                }
                self.storage.snapshot_written(self.member.core(), zxid, &result)
            }
            StorageEvent::Fatal(msg) => return Err(msg),
        }
        Ok(())
    }
}

/// Recovers the data directory (blocking) into what the member starts from: a standalone
/// server replays its whole log (every logged txn is committed); a member loads its newest
/// snapshot only and hands the log after it to ZAB, which delivers each txn once it knows it
/// is committed. Returns whether a snapshot should be taken at once (a replayed log).
/// The recovered state, whether a snapshot is due at once, and the time spent writing an
/// empty dataDir's `snapshot.0` (for `snapshottime`).
fn recover(cfg: &ServerConfig, my_id: Option<u64>) -> io::Result<(Recovered, bool, Option<u64>)> {
    let sc = durable::storage_config(cfg);
    let opts = durable::tree_options(cfg);
    if my_id.is_none() {
        let r = durable::recover(cfg, &sc)?;
        let applied = r.tree.last_processed_zxid();
        let restored = Restored { accepted_epoch: 0, current_epoch: 0, applied, log: Vec::new() };
        return Ok((Recovered { tree: r.tree, sessions: r.sessions, restored, fuzzy: false }, r.snapshot_now, r.initial_snapshot_ms));
    }
    let rec = durable::recover_member(&sc, opts, COMMITTED_LOG_MAX)?;
    let restored = Restored {
        accepted_epoch: rec.accepted_epoch,
        current_epoch: rec.current_epoch,
        applied: rec.snapshot_zxid,
        log: rec.log.into_iter().map(|(zxid, data)| Entry { zxid, data: Bytes::from(data) }).collect(),
    };
    tracing::info!(
        myid = my_id,
        applied = %restored.applied,
        logged = restored.log.len(),
        accepted_epoch = restored.accepted_epoch,
        current_epoch = restored.current_epoch,
        "ensemble member recovered"
    );
    let sessions = rec.sessions.iter().map(|(id, t)| (rzk_proto::SessionId(*id), *t)).collect();
    Ok((Recovered { tree: rec.tree, sessions, restored, fuzzy: rec.fuzzy }, false, rec.initial_snapshot_ms))
}

/// The audit log of `audit.enable`, opened (`None` when off). Open it before anything of
/// the start-up can fail: a start-up that fails while it is open is audited as one.
pub fn open_audit(cfg: &ServerConfig) -> io::Result<Option<super::audit::AuditLog>> {
    if !cfg.audit_enable {
        return Ok(None);
    }
    super::audit::AuditLog::open(&cfg.audit_log_file, super::audit::server_user())
        .map(Some)
        .map_err(|e| io::Error::new(e.kind(), format!("audit log {}: {e}", cfg.audit_log_file.display())))
}

/// Runs a server (standalone when `my_id` is None) until `shutdown` turns true.
pub async fn run(
    cfg: ServerConfig,
    my_id: Option<u64>,
    listener: impl Into<super::listen::ClientListeners>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let audit = open_audit(&cfg)?;
    run_with_audit(cfg, my_id, listener, shutdown, audit).await
}

/// [`run`] with the audit log already open ([`open_audit`]): `rzk server` opens it before
/// it binds the client port.
pub async fn run_with_audit(
    cfg: ServerConfig,
    my_id: Option<u64>,
    listener: impl Into<super::listen::ClientListeners>,
    mut shutdown: watch::Receiver<bool>,
    audit: Option<super::audit::AuditLog>,
) -> io::Result<()> {
    let listener = listener.into();
    let started = Instant::now();
    let storage_cfg = durable::storage_config(&cfg);
    let mut core_cfg = super::core_config(&cfg);
    if let Some(id) = my_id {
        core_cfg.server_id = id as u8;
    }
    core_cfg.audit_server_user = audit.as_ref().map(|a| a.user().to_string());
    if let Some(g) = super::kerberos::login(&cfg).map_err(other)? {
        if let Some(l) = core_cfg.auth.sasl_login.as_mut() {
            l.gssapi = Some(g);
        }
    }
    let zab = zab_config(&cfg, my_id);
    if my_id.is_some() && cfg.reconfig_enabled && cfg.dynamic_config_file.is_none() {
        // QuorumPeerConfig.backupOldConfig: the ensemble is still in the static file.
        if let Some(f) = &cfg.config_path {
            super::dynconfig::backup_static(f)?;
        }
    }
    let (recovered, snapshot_now, initial_snapshot_ms) = {
        let c = cfg.clone();
        tokio::task::spawn_blocking(move || recover(&c, my_id)).await.map_err(other)??
    };
    let member_cfg = MemberConfig {
        core: core_cfg,
        zab: zab.clone(),
        standalone: my_id.is_none(),
        node_tick_ms: NODE_TICK_MS as i64,
        core_tick_ms: CORE_TICK_MS,
        tree_options: durable::tree_options(&cfg),
        trace_deliveries: false,
        // ZooKeeper starts its read-only server after max(2000, tickTime) ms of LOOKING.
        read_only_after_ms: (cfg.readonly_mode_enabled && my_id.is_some()).then(|| (cfg.tick_time as i64).max(2000)),
        snap_step_bytes: crate::core::member::SNAP_STEP_BYTES,
        snap_held_bytes_max: crate::core::member::SNAP_HELD_BYTES_MAX,
    };
    if my_id.is_none() && (cfg.local_sessions_enabled || cfg.readonly_mode_enabled) {
        // As in ZooKeeper, whose standalone server has neither.
        tracing::info!(
            local_sessions = cfg.local_sessions_enabled,
            read_only_mode = cfg.readonly_mode_enabled,
            "localSessionsEnabled and readonlymode.enabled apply to ensemble members only; a standalone server has global sessions and is never read-only"
        );
    }
    let mut member = Member::new(member_cfg, recovered, snap_codec(), started.elapsed().as_millis() as i64, wall_ms()).map_err(other)?;
    if let (Some(f), true) = (&cfg.config_path, my_id.is_some()) {
        // QuorumPeerConfig.parse: `zoo.cfg.dynamic.next` is the last configuration seen
        // proposed (a reconfig this server logged and has not seen committed), read only with
        // `dynamicConfigFile` and kept in memory only with `reconfigEnabled`
        // (setLastSeenQuorumVerifier). The file goes in every case: QuorumPeerMain's
        // setQuorumVerifier deletes it at start-up of any ensemble member started from a file.
        if cfg.reconfig_enabled && cfg.dynamic_config_file.is_some() {
            if let Some(text) = super::dynconfig::read_next(f)? {
                member
                    .saw_config(text.as_bytes())
                    .map_err(|e| other(format!("{}: not a configuration: {e}", super::dynconfig::next_path(f).display())))?;
            }
        }
        super::dynconfig::write_next(f, None)?;
    }
    if let Some(ms) = initial_snapshot_ms {
        member.observe_storage(StorageObservation::Snapshot { ms: ms as i64 });
    }

    if my_id.is_none() && (cfg.quorum_tls.enabled() || cfg.quorum_sasl.enabled) {
        tracing::warn!("sslQuorum / portUnification / quorum.auth.* apply to ensemble members only; this standalone server has no quorum or election port (ZooKeeper's standalone server does not read them either)");
    }
    let (net_tx, mut net_rx) = mpsc::channel::<peer::NetEvent>(4096);
    let net = match my_id {
        None => None,
        Some(id) => {
            let mut limits = peer::NetLimits::from_config(&cfg);
            // observerMasterPort: an observer connects there (its OBSERVERINFO), a follower
            // listens there (when its node says so); a reconfig may make it either.
            limits.learner_master_port = cfg.observer_master_port;
            limits.observer_master_port = cfg.observer_master_port;
            limits.security = super::peersec::PeerSecurity::from_config(&cfg).map_err(other)?;
            tracing::info!(security = %limits.security.describe(), "links between servers");
            if let Some(ctx) = limits.security.tls.clone() {
                // sslQuorumReloadCertFiles: new peer connections take the changed stores.
                tokio::spawn(super::tls::reload_on_change(ctx, shutdown.clone()));
            }
            let max_record = storage_cfg.max_record_bytes;
            limits.snap_scanner =
                snap_receiver(max_record, storage_cfg.snap_dir.clone(), storage_cfg.compression, durable::tree_options(&cfg));
            Some(peer::PeerNet::start(ServerId(id as i64), peer::PeerAddrs::from_config(&cfg), limits, net_tx).await?)
        }
    };
    let full_disk = if my_id.is_none() { FullDisk::RefuseAppends } else { FullDisk::Fatal };
    let storage = durable::Durable::start(storage_cfg, full_disk)?;

    let inbox_capacity = (cfg.global_outstanding_limit as usize).max(64);
    let (inbox_tx, mut inbox) = mpsc::channel::<Event>(inbox_capacity);
    let counts = Arc::new(Mutex::new(ConnCounts::default()));
    let mut admin_rx = super::admin::start(&cfg, my_id, shutdown.clone()).await.map_err(io::Error::other)?;
    let limits = super::conn::ConnLimits {
        frame_bytes_max: cfg.jute_maxbuffer as usize,
        outstanding_max: 1000,
        stmk_allowed: cfg.four_letter_word_whitelist.allows("stmk"),
    };
    let acceptor =
        super::spawn_acceptor(listener, inbox_tx.clone(), counts.clone(), limits, cfg.max_client_cnxns, cfg.max_cnxns, shutdown.clone());
    drop(inbox_tx);

    let process = ProcessInfoSource { cfg: cfg.clone(), my_id };
    let mut d = Driver {
        my_id: my_id.map(|id| ServerId(id as i64)),
        config_version: cfg.config_version as i64,
        config_data: zab.config_data.clone(),
        member,
        net,
        storage,
        started,
        conns: HashMap::default(),
        audit,
        stop: None,
        out_buf: Vec::new(),
        pending_restore: None,
        config_file: (cfg.reconfig_enabled && my_id.is_some()).then(|| cfg.config_path.clone()).flatten(),
        log_reads: durable::LogReads::default(),
        snapshot_size_factor: cfg.snapshot_size_factor.0,
    };
    if let Some(a) = &mut d.audit {
        a.server_started(wall_ms());
    }
    if snapshot_now {
        d.storage.start_snapshot(d.member.core());
    }
    let purge_enabled = d.storage.config().purge_interval_hours > 0;
    let mut purge_timer = tokio::time::interval(Duration::from_secs(3600 * d.storage.config().purge_interval_hours.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_millis(NODE_TICK_MS as u64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut fatal: Option<String> = None;
    let drained = d.net.as_ref().map(|n| n.drained());
    let log_ready = d.log_reads.ready.clone();
    d.execute();
    let mut snapshot_deferred: u32 = 0;
    while fatal.is_none() {
        let cmd_sender = d.storage.command_sender();
        // A snapshot step (up to SNAPSHOT_STEP_BYTES of serialization on this task) is taken
        // when no client request is waiting, or after SNAPSHOT_STEP_DEFER turns without one,
        // so requests do not queue behind it and a snapshot still finishes under saturation.
        let snap_sender =
            if inbox.is_empty() || snapshot_deferred >= durable::SNAPSHOT_STEP_DEFER { d.storage.snapshot_sender() } else { None };
        if d.storage.snapshot_sender().is_some() {
            snapshot_deferred += 1;
        }
        let accepting = d.storage.pending_cmds.len() < PENDING_COMMANDS_MAX;
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = ticker.tick() => d.input(MemberInput::Tick),
            // A writer emptied its queue: a SNAP stream may take its next step (below).
            _ = async { drained.as_ref().expect("members have a transport").notified().await },
                if drained.is_some() && (d.member.has_snap_streams() || !d.log_reads.is_empty()) => {}
            // A txn log reader handed over a batch for a learner's DIFF (below).
            _ = log_ready.notified(), if !d.log_reads.is_empty() => {}
            ev = net_rx.recv(), if d.net.is_some() => {
                let Some(ev) = ev else { break };
                d.net_event(ev);
                // Take what else is queued, up to a bound.
                for _ in 0..255 {
                    match net_rx.try_recv() {
                        Ok(ev) => d.net_event(ev),
                        Err(_) => break,
                    }
                }
            }
            ev = d.storage.events.recv() => {
                let Some(ev) = ev else { break };
                if let Err(msg) = d.storage_event(ev) {
                    fatal = Some(msg);
                }
            }
            permit = super::reserve(cmd_sender) => match permit {
                Ok(p) => d.storage.send_command(p),
                Err(_) => fatal = Some("the transaction log worker stopped".into()),
            },
            permit = super::reserve(snap_sender) => match permit {
                Ok(p) => {
                    snapshot_deferred = 0;
                    d.storage.snapshot_step(d.member.core(), p)
                }
                Err(_) => d.storage.snapshot_lost(),
            },
            _ = purge_timer.tick(), if purge_enabled => {
                let c = d.storage.config().clone();
                tokio::task::spawn_blocking(move || durable::purge(&c));
            }
            Some(req) = super::admin::recv(&mut admin_rx) => {
                match req {
                    super::admin::AdminRequest::Snapshot(reply) => d.storage.snapshot_for_admin(d.member.core(), reply),
                    super::admin::AdminRequest::Restore { tree, sessions, reply } => {
                        if let Some(p) = d.pending_restore.take() {
                            let _ = p.reply.send(Err("another restore came".into()));
                        }
                        let deadline = Instant::now() + RESTORE_WAIT;
                        d.pending_restore = Some(PendingRestore { tree, sessions, reply, deadline });
                    }
                    req => super::admin::answer(d.member.core_for_stats(), super::admin::rejected(&counts), req),
                }
            }
            ev = inbox.recv(), if accepting => {
                let Some(ev) = ev else { break };
                client_events(&mut d, &process, &counts, ev, &mut inbox);
            }
        }
        d.try_restore();
        d.execute();
        d.snap_steps();
        d.log_read_steps();
        if let Some(reason) = d.stop.take() {
            // The member cannot go on (not a storage fault): what it answered so far goes out
            // (each connection sends what is queued, then closes; best effort, bounded), and
            // the server stops with the member's reason.
            for (_, tx) in d.conns.drain() {
                tx.close("server stopping".into());
            }
            tokio::time::sleep(STOP_FLUSH).await;
            fatal = Some(reason);
            break;
        }
        d.storage.flush();
        if let Some(a) = &mut d.audit {
            a.send();
        }
    }
    acceptor.abort();
    if let Some(a) = d.audit.take() {
        a.stop(wall_ms());
    }
    if let Some(msg) = fatal {
        // Nothing more may be acknowledged: stop at once; recovery on restart sorts it out.
        tracing::error!("{msg}");
        return Err(other(msg));
    }
    tracing::info!("shutting down");
    for (_, tx) in d.conns.drain() {
        tx.close("server shutting down".into());
    }
    if let Some(net) = d.net.take() {
        net.shutdown().await;
    }
    d.storage.shutdown().await;
    Ok(())
}

/// Feeds `first` and whatever else the connection tasks have queued (up to a bound) to the
/// member: accepted connections, request frames, four-letter words (answered here from a
/// snapshot of the core, then the connection closes), closed connections.
fn client_events(d: &mut Driver, process: &ProcessInfoSource, counts: &Mutex<ConnCounts>, first: Event, inbox: &mut mpsc::Receiver<Event>) {
    let mut next = Some(first);
    let mut taken = 0;
    // The batch is handled in well under a millisecond: one reading of the clocks serves it.
    let at = (d.now_ms(), wall_ms());
    while let Some(ev) = next.take() {
        match ev {
            Event::Accepted { conn, peer, auth, tx } => {
                d.conns.insert(conn, tx);
                d.input_at(at, MemberInput::Accepted { conn, peer, auth });
            }
            Event::Frame { conn, payload } => {
                d.input_at(at, MemberInput::Frame { conn, payload });
                // Replies go to their queues at the end of the batch (one wake-up of each
                // connection for all of its replies), or at once when they add up to more
                // than SEND_BATCH_BYTES: a burst of large replies is never held here.
                if d.member.pending_send_bytes() > SEND_BATCH_BYTES {
                    d.execute();
                }
            }
            Event::FourLetterWord { conn, word, arg } => {
                let rejected = counts.lock().expect("conn counts").rejected;
                let text = super::four_letter_word(d.member.core_for_stats(), process, &word, arg, conn, rejected);
                if let Some(tx) = d.conns.remove(&conn) {
                    let _ = tx.send(Outbound::Frame { bytes: text.into_bytes(), reply: false });
                    tx.close(format!("four letter word {word}"));
                }
                d.input_at(at, MemberInput::Closed { conn });
            }
            Event::Closed { conn } => {
                d.conns.remove(&conn);
                d.input_at(at, MemberInput::Closed { conn });
            }
        }
        taken += 1;
        if taken < 256 {
            next = inbox.try_recv().ok();
        }
    }
}

/// rzk-storage's SNAP stream scanner, for the transport.
struct SnapScanner(rzk_storage::SnapStreamScanner);

impl peer::SnapStreamScanner for SnapScanner {
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        self.0.scan(buf).map_err(|e| e.to_string())
    }
    fn scanned(&self) -> usize {
        self.0.scanned()
    }
    fn dropped(&mut self, n: usize) {
        self.0.consume(n)
    }
}

/// SNAP streams chunks waiting for the receiving thread (of `SNAP_SINK_CHUNK_BYTES` each).
const SNAP_RECEIVE_CHUNKS_MAX: usize = 8;

/// The transport's SNAP scanners: each stream is handed on as it arrives to a thread of its
/// own that decodes it into a tree and writes it as an unpublished snapshot file
/// (`rzk_storage::receive_snap_stream`), so the learner never holds the whole stream.
fn snap_receiver(
    max_record: usize,
    snap_dir: PathBuf,
    compression: rzk_storage::Compression,
    opts: TreeOptions,
) -> peer::SnapScannerFactory {
    Arc::new(move |zxid| {
        let scanner: Box<dyn peer::SnapStreamScanner> = Box::new(SnapScanner(rzk_storage::SnapStreamScanner::new(max_record)));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(SNAP_RECEIVE_CHUNKS_MAX);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let dir = snap_dir.clone();
        let spawned = std::thread::Builder::new().name("snap-receive".into()).spawn(move || {
            let started = Instant::now();
            let chunks = std::iter::from_fn(move || rx.blocking_recv());
            let r = rzk_storage::receive_snap_stream(chunks, zxid, Some(&dir), compression, max_record, opts);
            match &r {
                Ok(snap) => tracing::info!(
                    zxid = %zxid,
                    bytes = snap.stream_bytes(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "received the leader's SNAP: decoded as it arrived and written under a temp name"
                ),
                Err(e) => tracing::warn!(zxid = %zxid, error = %e, "the leader's SNAP stream is unusable"),
            }
            let _ = done_tx.send(r.map(|snap| SnapData::Received(Arc::new(snap))).map_err(|e| e.to_string()));
        });
        match spawned {
            Ok(_) => (scanner, Some(peer::SnapSink { chunks: tx, done })),
            Err(e) => {
                // No thread: the stream is buffered whole and decoded by the member.
                tracing::warn!(error = %e, "cannot start a thread to receive a SNAP; buffering it");
                (scanner, None)
            }
        }
    })
}
