//! The driver of one ensemble member: it owns the client-facing core
//! ([`ZooKeeperServer`]), the replication state machine ([`rzk_zab::Node`]), the storage
//! worker and the peer transport ([`peer::PeerNet`]), and moves inputs and actions between
//! them. Like the standalone driver it does all the I/O and reads the clocks; the two state
//! machines stay pure.
//!
//! How the pieces meet (ZooKeeper's names):
//! - a client write on the leader: core prep → `Action::Append` → `Node::propose` → the
//!   node's PROPOSALs, its own log append (`Persist`), ACKs → `Deliver` once a quorum has it
//!   → `Input::Committed` → the core applies it and answers;
//! - a client write on a learner: core → `Action::Forward` → REQUEST to the leader → the
//!   leader's core preps it (`Input::Forwarded`) → ... → COMMIT → the learner's node delivers
//!   → `Input::Committed` → the learner's core applies it and answers its client;
//! - sessions: the leader's core tracks and expires them; learners send the sessions their
//!   clients touched in their PING replies (`Input::Touches` on the leader) and ask the
//!   leader with REVALIDATE when a client moves its session to them;
//! - `sync` on a learner: REQUEST(sync) → the leader answers SYNC once everything it
//!   proposed before is committed → `Input::Synced`;
//! - storage: the node's numbered storage ops (`Persist { seq, op }`) go to the log worker in
//!   order (appends, TRUNC, a leader's snapshot) or are written here (the epoch files);
//!   `Node::persisted(seq)` is called once every op up to `seq` is durable.
//!
//! Role changes: when the node leaves a role the core stops serving (every client connection
//! is closed, as ZooKeeper's server shuts down); when the node says `Serving` the core starts
//! again in the new role. The tree survives role changes; a SNAP replaces it.

use super::{durable, peer, wall_ms, ConnCounts, Event, Outbound, ProcessInfoSource};
use crate::core::{Action as CoreAction, ConnId, Input, Role, ZooKeeperServer};
use bytes::Bytes;
use rzk_config::ServerConfig;
use rzk_proto::quorum::{self, packet_type as pt, QuorumPacket, ServerState};
use rzk_proto::txn::TxnRecord;
use rzk_proto::SessionId;
use rzk_storage::epoch;
use rzk_storage::worker::{LogAppend, LogCommand, StorageEvent};
use rzk_zab::{Action as ZabAction, Config as ZabConfig, Entry, Message, Node, Restored, ServerId, StorageOp};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How often the node ticks. ZooKeeper's timeouts (tickTime, initLimit, syncLimit, the
/// election's 200 ms finalize wait) are converted to this unit.
const NODE_TICK_MS: u32 = 10;
/// How often the core ticks (session expiry, containers).
const CORE_TICK_MS: u64 = 50;
/// Committed txns kept in memory for DIFF syncs (ZooKeeper's `commitLogCount`).
const COMMITTED_LOG_MAX: usize = 500;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The ensemble-side settings from zoo.cfg.
pub fn zab_config(cfg: &ServerConfig, my_id: u64) -> ZabConfig {
    let voters: BTreeSet<ServerId> = cfg.participants().map(|s| ServerId(s.id as i64)).collect();
    let observers: BTreeSet<ServerId> = cfg.observers().map(|s| ServerId(s.id as i64)).collect();
    let mut z = ZabConfig::from_ms(ServerId(my_id as i64), voters, observers, NODE_TICK_MS, cfg.tick_time, cfg.init_limit, cfg.sync_limit);
    z.committed_log_max = COMMITTED_LOG_MAX;
    z.config_data = Bytes::from(cfg.membership_string().into_bytes());
    z
}

/// The core's role for a node state.
fn role_of(state: ServerState) -> Role {
    match state {
        ServerState::Leading => Role::Leader,
        ServerState::Following => Role::Follower,
        ServerState::Observing => Role::Observer,
        ServerState::Looking => Role::NotServing,
    }
}

/// Everything the driver owns besides the sockets.
struct Member {
    my_id: ServerId,
    cfg: ServerConfig,
    core: ZooKeeperServer,
    node: Node,
    net: peer::PeerNet,
    storage: durable::Durable,
    /// `config_version` and the config text for LearnerInfo, notifications and NEWLEADER.
    config_version: i64,
    config_data: Bytes,
    /// The leader this server follows or is (None while LOOKING).
    leader: Option<ServerId>,
    state: ServerState,
    /// When this server became an established leader.
    leading_since: Option<Instant>,
    /// PROPOSAL data sizes: last, min, max (-1 before the first), for `srvr` / `mntr`.
    proposal_sizes: (i64, i64, i64),
    started: Instant,
    conns: HashMap<ConnId, mpsc::UnboundedSender<Outbound>>,
}

impl Member {
    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    fn core_input(&mut self, input: Input) {
        let (n, w) = (self.now_ms(), wall_ms());
        self.core.handle(n, w, input);
    }

    /// Runs both state machines' actions until neither has any left. Node actions go first
    /// (a whole batch), then the core's: a SYNC the core answers must leave after the COMMIT
    /// the node sent in the same step.
    fn pump(&mut self) -> io::Result<()> {
        loop {
            let zab = self.node.take_actions();
            let core = self.core.take_actions();
            if zab.is_empty() && core.is_empty() {
                return Ok(());
            }
            for a in zab {
                self.zab_action(a)?;
            }
            for a in core {
                self.core_action(a);
            }
        }
    }

    fn zab_action(&mut self, a: ZabAction) -> io::Result<()> {
        match a {
            ZabAction::Send { to, msg } => {
                match msg {
                    // A learner's PING reply carries the sessions its clients touched, and
                    // always a data buffer (a ZooKeeper leader reads it without a null check).
                    Message::Ping { zxid, .. } if self.state != ServerState::Leading && Some(to) == self.leader => {
                        let touches = self.core.take_touches();
                        let data = Some(quorum::encode_touches(&touches));
                        self.net.send_packet(to, QuorumPacket { ty: pt::PING, zxid, data, authinfo: None });
                    }
                    msg => self.send(to, &msg),
                }
            }
            ZabAction::Persist { seq, op } => self.persist(seq, op)?,
            ZabAction::Deliver(entry) => match TxnRecord::from_bytes(&entry.data) {
                Ok(record) => self.core_input(Input::Committed { record }),
                Err(e) => {
                    // A committed txn this server cannot read: it cannot go on consistently.
                    return Err(other(format!("committed txn {} cannot be decoded: {e}", entry.zxid)));
                }
            },
            ZabAction::SendSnapshot { to, zxid } => {
                let sessions = self.session_table();
                let bytes = rzk_storage::encode_snap_stream(self.core.tree(), &sessions);
                tracing::info!(learner = %to, zxid = %zxid, bytes = bytes.len(), "sending SNAP");
                self.send(to, &Message::Snap { zxid, snapshot: Bytes::from(bytes) });
            }
            ZabAction::Disconnect { peer } => self.net.disconnect(peer),
            ZabAction::StateChanged { state, leader, epoch } => {
                tracing::info!(state = ?state, leader = ?leader.map(|l| l.0), epoch, "role changed");
                self.state = state;
                self.leader = leader;
                if self.core.role() != Role::NotServing {
                    self.core_input(Input::StopServing);
                }
            }
            ZabAction::Serving { epoch } => {
                let role = role_of(self.state);
                self.leading_since = (role == Role::Leader).then(Instant::now);
                self.core_input(Input::Serve { role, epoch });
            }
        }
        Ok(())
    }

    /// Refreshes what `mntr` / `srvr` show of the ensemble.
    fn update_quorum_info(&mut self) {
        let mut q = crate::core::fourlw::QuorumInfo {
            zab_phase: self.node.phase_name(),
            quorum_size: self.node.config().voters.len(),
            ..Default::default()
        };
        if let Some(s) = self.node.learner_summary() {
            q.learners = s.learners;
            q.synced_followers = s.synced_followers;
            q.synced_observers = s.synced_observers;
            q.proposal_sizes = self.proposal_sizes;
            q.leader_uptime_ms = self.leading_since.map(|t| t.elapsed().as_millis() as i64).unwrap_or(0);
        }
        if self.state == ServerState::Observing {
            q.observer_master_id = self.leader.map(|l| l.0);
        }
        q.leader_id = self.leader.map(|l| l.0);
        self.core.set_quorum_info(q);
    }

    fn session_table(&self) -> Vec<(i64, i32)> {
        self.core.committed_sessions().iter().map(|(id, t)| (id.0, *t)).collect()
    }

    fn send(&self, to: ServerId, msg: &Message) {
        self.net.send(to, msg, self.my_id, self.config_version, &self.config_data);
    }

    /// Every ZAB storage op goes to the ensemble log worker in order, with its seq as the
    /// token; `StorageEvent::Done { token }` comes back in the same order.
    fn persist(&mut self, seq: u64, op: StorageOp) -> io::Result<()> {
        let cmd = match op {
            StorageOp::Append(e) => LogCommand::Append { entries: vec![LogAppend { zxid: e.zxid, entry: e.data.to_vec() }], token: seq },
            StorageOp::AcceptedEpoch(epoch) => LogCommand::Epoch { name: epoch::ACCEPTED_EPOCH, epoch, token: seq },
            StorageOp::CurrentEpoch(epoch) => LogCommand::Epoch { name: epoch::CURRENT_EPOCH, epoch, token: seq },
            StorageOp::Truncate { after } => LogCommand::Truncate { after, token: seq },
            StorageOp::InstallSnapshot { zxid, data } => {
                // Replace the state machine at once, as the node requires.
                let opts = durable::tree_options(&self.cfg);
                let (tree, sessions) = rzk_storage::decode_snap_stream(&data, zxid, opts)
                    .map_err(|e| other(format!("the leader's SNAP at {zxid} is unreadable: {e}")))?;
                let sessions: Vec<(SessionId, i32)> = sessions.into_iter().map(|(id, t)| (SessionId(id), t)).collect();
                let digest = tree.options().digest_enabled.then(|| tree.digest());
                tracing::info!(zxid = %zxid, nodes = tree.node_count(), sessions = sessions.len(), "installing the leader's snapshot");
                self.storage.abort_snapshot();
                self.core.install(tree, &sessions);
                LogCommand::InstallSnapshot { zxid, stream: data, digest, token: seq }
            }
        };
        self.storage.command(cmd);
        Ok(())
    }

    fn core_action(&mut self, a: CoreAction) {
        match a {
            CoreAction::Send { conn, frame, reply } => {
                if let Some(tx) = self.conns.get(&conn) {
                    let _ = tx.send(Outbound::Frame { bytes: frame, reply });
                }
            }
            CoreAction::Close { conn, reason } => {
                tracing::debug!(conn, reason = %reason, "closing connection");
                if let Some(tx) = self.conns.remove(&conn) {
                    let _ = tx.send(Outbound::Close(reason));
                }
            }
            CoreAction::Append(record) => {
                let zxid = record.header.zxid;
                let data = Bytes::from(record.to_bytes());
                let n = data.len() as i64;
                let (_, min, max) = self.proposal_sizes;
                self.proposal_sizes = (n, if min < 0 { n } else { min.min(n) }, max.max(n));
                let accepted = match self.node.next_zxid() {
                    Ok(z) if z == zxid => self.node.propose(zxid, data).map_err(|e| e.to_string()),
                    Ok(z) => Err(format!("the core prepped {zxid} but ZAB's next zxid is {z}")),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(why) = accepted {
                    tracing::warn!(zxid = %zxid, reason = %why, "write not proposed");
                    self.core_input(Input::AppendFailed { zxid });
                }
            }
            CoreAction::Forward { session, cxid, op, body, auth } => {
                if let Some(leader) = self.leader {
                    let p = quorum::ForwardedRequest { session_id: session, cxid, op, body, auth }.to_packet();
                    self.net.send_packet(leader, p);
                }
            }
            CoreAction::Revalidate { session, timeout_ms } => {
                if let Some(leader) = self.leader {
                    self.net.send_packet(leader, quorum::RevalidateRequest { session_id: session, timeout_ms }.to_packet());
                }
            }
            CoreAction::RevalidateReply { to, session, valid } => {
                self.net.send_packet(ServerId(to), quorum::RevalidateReply { session_id: session, valid }.to_packet());
            }
            CoreAction::SyncReply { to } => {
                self.net.send_packet(ServerId(to), quorum::sync_packet());
            }
        }
    }

    fn net_event(&mut self, ev: peer::NetEvent) {
        match ev {
            peer::NetEvent::Message { from, msg } => {
                if let (ServerState::Leading, Message::Ping { data, .. }) = (self.state, &msg) {
                    if !data.is_empty() {
                        match quorum::decode_touches(data) {
                            Ok(sessions) => {
                                self.core_input(Input::Touches { sessions });
                            }
                            Err(e) => tracing::warn!(learner = %from, error = %e, "malformed PING session data"),
                        }
                    }
                }
                self.node.step(from, msg);
            }
            peer::NetEvent::Packet { from, packet } => self.packet(from, packet),
            peer::NetEvent::Disconnected { peer } => self.node.disconnected(peer),
        }
    }

    /// The quorum packets the node leaves to its host: REQUEST, REVALIDATE, SYNC.
    fn packet(&mut self, from: ServerId, p: QuorumPacket) {
        let leading = self.state == ServerState::Leading && self.core.role() == Role::Leader;
        let from_leader = self.leader == Some(from) && self.state != ServerState::Leading;
        match p.ty {
            pt::REQUEST if leading => match quorum::ForwardedRequest::from_packet(&p) {
                Ok(r) => self.core_input(Input::Forwarded { from: from.0, session: r.session_id, cxid: r.cxid, op: r.op, body: r.body, auth: r.auth }),
                Err(e) => tracing::warn!(learner = %from, error = %e, "malformed REQUEST"),
            },
            pt::REVALIDATE if leading => match quorum::RevalidateRequest::from_packet(&p) {
                Ok(r) => self.core_input(Input::Revalidate { from: from.0, session: r.session_id, timeout_ms: r.timeout_ms }),
                Err(e) => tracing::warn!(learner = %from, error = %e, "malformed REVALIDATE"),
            },
            pt::REVALIDATE if from_leader => match quorum::RevalidateReply::from_packet(&p) {
                Ok(r) => self.core_input(Input::Revalidated { session: r.session_id, valid: r.valid }),
                Err(e) => tracing::warn!(leader = %from, error = %e, "malformed REVALIDATE reply"),
            },
            pt::SYNC if from_leader => self.core_input(Input::Synced),
            ty => tracing::debug!(peer = %from, ty, "quorum packet ignored in this role"),
        }
    }

    fn storage_event(&mut self, ev: StorageEvent) -> Result<(), String> {
        match ev {
            StorageEvent::Done { token } => self.node.persisted(token),
            StorageEvent::Persisted { .. } => {} // the standalone worker's
            StorageEvent::AppendFailed { zxid, reason } => {
                // A learner cannot skip a txn the leader sent it: stop, recovery sorts it out.
                return Err(format!("the transaction log refused {zxid} ({reason}); an ensemble member cannot go on without it"));
            }
            StorageEvent::SnapshotDue => self.storage.start_snapshot(&self.core),
            StorageEvent::SnapshotWritten { zxid, result } => self.storage.snapshot_written(zxid, &result),
            StorageEvent::Fatal(msg) => return Err(msg),
        }
        Ok(())
    }
}

/// Runs an ensemble member until `shutdown` turns true.
pub async fn run(cfg: ServerConfig, my_id: u64, listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> io::Result<()> {
    let started = Instant::now();
    let storage_cfg = durable::storage_config(&cfg);
    let mut core_cfg = super::core_config(&cfg);
    core_cfg.server_id = my_id as u8;
    let zab_cfg = zab_config(&cfg, my_id);

    // Recovery: the newest snapshot is the state machine; the log after it is handed to the
    // node, which delivers each entry once it knows it is committed.
    let rec = {
        let (sc, opts) = (storage_cfg.clone(), durable::tree_options(&cfg));
        tokio::task::spawn_blocking(move || durable::recover_member(&sc, opts, COMMITTED_LOG_MAX)).await.map_err(other)??
    };
    let sessions: Vec<(SessionId, i32)> = rec.sessions.iter().map(|(k, v)| (SessionId(*k), *v)).collect();
    let (n0, w0) = (started.elapsed().as_millis() as i64, wall_ms());
    let mut core = ZooKeeperServer::recovered(core_cfg, rec.tree, &sessions, n0, w0);
    core.handle(n0, w0, Input::StopServing);
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
    let node = Node::new(zab_cfg.clone(), restored).map_err(other)?;

    let (net_tx, mut net_rx) = mpsc::channel::<peer::NetEvent>(4096);
    let mut limits = peer::NetLimits::from_config(&cfg);
    let max_record = storage_cfg.max_record_bytes;
    limits.snap_scanner = Arc::new(move || Box::new(SnapScanner(rzk_storage::SnapStreamScanner::new(max_record))));
    let net = peer::PeerNet::start(ServerId(my_id as i64), peer::PeerAddrs::from_config(&cfg), limits, net_tx).await?;
    let storage = durable::Durable::start_member(storage_cfg)?;

    let inbox_capacity = (cfg.global_outstanding_limit as usize).max(64);
    let (inbox_tx, mut inbox) = mpsc::channel::<Event>(inbox_capacity);
    let counts = Arc::new(Mutex::new(ConnCounts::default()));
    let limits = super::conn::ConnLimits { frame_bytes_max: cfg.jute_maxbuffer as usize, outstanding_max: 1000 };
    let mut admin_rx = super::admin::start(&cfg, Some(my_id), shutdown.clone()).await.map_err(other)?;
    let acceptor = super::spawn_acceptor(listener, inbox_tx.clone(), counts.clone(), limits, cfg.max_client_cnxns, cfg.max_cnxns, shutdown.clone());
    drop(inbox_tx);

    let process = ProcessInfoSource { cfg: cfg.clone(), my_id: Some(my_id) };
    let config_version = cfg.config_version as i64;
    let mut m = Member {
        my_id: ServerId(my_id as i64),
        cfg,
        core,
        node,
        net,
        storage,
        config_version,
        config_data: zab_cfg.config_data.clone(),
        leader: None,
        state: ServerState::Looking,
        leading_since: None,
        proposal_sizes: (-1, -1, -1),
        started,
        conns: HashMap::new(),
    };
    let purge_enabled = m.storage.config().purge_interval_hours > 0;
    let mut purge_timer = tokio::time::interval(Duration::from_secs(3600 * m.storage.config().purge_interval_hours.max(1)));
    let mut node_ticker = tokio::time::interval(Duration::from_millis(NODE_TICK_MS as u64));
    node_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut core_ticker = tokio::time::interval(Duration::from_millis(CORE_TICK_MS));
    core_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut fatal: Option<String> = None;
    if let Err(e) = m.pump() {
        fatal = Some(e.to_string());
    }
    let mut snapshot_deferred: u32 = 0;
    while fatal.is_none() {
        let cmd_sender = m.storage.command_sender();
        // As in the standalone driver: snapshot steps yield to waiting client requests.
        let snap_sender = if inbox.is_empty() || snapshot_deferred >= durable::SNAPSHOT_STEP_DEFER {
            m.storage.snapshot_sender()
        } else {
            None
        };
        if m.storage.snapshot_sender().is_some() {
            snapshot_deferred += 1;
        }
        let accepting = m.storage.pending_cmds.len() < 64;
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = node_ticker.tick() => m.node.tick(),
            _ = core_ticker.tick() => m.core_input(Input::Tick),
            ev = net_rx.recv() => {
                let Some(ev) = ev else { break };
                m.net_event(ev);
                // Take what else is queued, up to a bound.
                for _ in 0..255 {
                    match net_rx.try_recv() {
                        Ok(ev) => m.net_event(ev),
                        Err(_) => break,
                    }
                }
            }
            ev = m.storage.events.recv() => {
                let Some(ev) = ev else { break };
                if let Err(msg) = m.storage_event(ev) {
                    fatal = Some(msg);
                }
            }
            permit = super::reserve(cmd_sender) => match permit {
                Ok(p) => m.storage.send_command(p),
                Err(_) => fatal = Some("the transaction log worker stopped".into()),
            },
            permit = super::reserve(snap_sender) => match permit {
                Ok(p) => {
                    snapshot_deferred = 0;
                    m.storage.snapshot_step(&m.core, p)
                }
                Err(_) => m.storage.snapshot_lost(),
            },
            _ = purge_timer.tick(), if purge_enabled => {
                let c = m.storage.config().clone();
                tokio::task::spawn_blocking(move || durable::purge(&c));
            }
            Some(req) = super::admin::recv(&mut admin_rx) => {
                m.update_quorum_info();
                super::admin::answer(&mut m.core, super::admin::rejected(&counts), req);
            }
            ev = inbox.recv(), if accepting => {
                let Some(ev) = ev else { break };
                m.update_quorum_info();
                let (n, w) = (m.now_ms(), wall_ms());
                super::client_events(&mut m.core, &mut m.conns, &process, &counts, n, w, ev, &mut inbox);
            }
        }
        if let Err(e) = m.pump() {
            fatal = Some(e.to_string());
        }
        m.storage.flush();
    }
    acceptor.abort();
    if let Some(msg) = fatal {
        tracing::error!("{msg}");
        return Err(other(msg));
    }
    tracing::info!(myid = m.my_id.0, "shutting down");
    for (_, tx) in m.conns.drain() {
        let _ = tx.send(Outbound::Close("server shutting down".into()));
    }
    m.net.shutdown().await;
    m.storage.shutdown().await;
    Ok(())
}

/// rzk-storage's SNAP stream scanner, for the transport.
struct SnapScanner(rzk_storage::SnapStreamScanner);

impl peer::SnapStreamScanner for SnapScanner {
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        self.0.scan(buf).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_node_states() {
        assert_eq!(role_of(ServerState::Leading), Role::Leader);
        assert_eq!(role_of(ServerState::Following), Role::Follower);
        assert_eq!(role_of(ServerState::Observing), Role::Observer);
        assert_eq!(role_of(ServerState::Looking), Role::NotServing);
    }
}
