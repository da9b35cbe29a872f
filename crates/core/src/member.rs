//! `Member`: one rzk server as one pure state machine — the request pipeline
//! ([`ZooKeeperServer`]) composed with ZooKeeper's election and atomic broadcast
//! ([`rzk_zab::Node`]). A standalone server is the same member with one voter (a ZAB node in
//! standalone mode: no election, no epoch files, a txn committed once the log holds it).
//!
//! The host (the tokio driver of `rzk server`, or the simulator) feeds [`MemberInput`]s with
//! the time and carries out the [`Output`]s, in order. Everything the two state machines say
//! to each other is decided here, where the simulator and the unit tests see it:
//! - a client write on the leader (or standalone): core prep → `Action::Append` → the node's
//!   `propose` with the core's zxid (the one allocator; the node checks it) → PROPOSALs and
//!   the log append (`Output::Storage`) → `StorageDone` → ACKs → `Deliver` → the core applies
//!   its own in-flight txn as prep built it (never decoded again) and answers;
//! - a client write on a learner: core → `Action::Forward` → [`PeerMsg::Request`] to the
//!   leader → its core preps it → ... → COMMIT → the learner's node delivers → the core
//!   decodes the leader's txn, applies it and answers its client;
//! - sessions: learners put the sessions their clients touched in their PING replies; the
//!   leader's core tracks and expires them; a client moving its session to a learner is
//!   checked with the leader ([`PeerMsg::Revalidate`] / [`PeerMsg::RevalidateReply`]);
//! - `sync` on a learner: REQUEST(sync) → the leader answers [`PeerMsg::Sync`] once every
//!   proposal before it is committed, after those COMMITs on the same connection;
//! - role changes: when the node leaves a role the core stops serving (every client
//!   connection closes, as ZooKeeper's server shuts down); `Serving` starts it again in the
//!   new role; a SNAP replaces the core's tree and sessions before it is made durable.
//! - a leader's SNAP is streamed, as ZooKeeper's `LearnerHandler` writes it: the node names
//!   the zxid (the tree's, at that point of the actions); the member starts a walk of the
//!   tree there ([`SnapCodec::begin`]) and the host asks for the next bounded step
//!   ([`Member::snap_step`]) whenever the learner's connection has room, between other
//!   inputs, while the tree goes on changing. Everything else for that learner (the txns
//!   after the zxid, NEWLEADER, later broadcast) is held in order until the stream ends and
//!   then follows it. The learner installs the fuzzy snapshot at the zxid and applies the
//!   txns after it on top (idempotently, as for a fuzzy snapshot of our own); its digest
//!   is compared again once a logged digest matches. A follower's SNAP to an observer of
//!   its own (`observerMasterPort`) is streamed the same way.
//! - a follower with `observerMasterPort` relays for the observers syncing from it
//!   (`ObserverRelay`): their REQUESTs (syncs included) and REVALIDATEs go to the leader
//!   as its own, the answers come back in order and go on to them; their PING replies'
//!   session touches ride on its own; the host opens its observer master port while the
//!   node serves as a synced follower ([`Output::ObserverMaster`]).
//!
//! Order: the node's actions of a step run before the core's, so a SYNC or a reply never
//! overtakes the COMMIT it depends on.

use crate::fourlw::QuorumInfo;
use crate::server::{Action as CoreAction, ConnId, CoreConfig, Input, Role, ZooKeeperServer};
use bytes::Bytes;
use rzk_proto::quorum::{self, packet_type as pt, ForwardedRequest, QuorumPacket, RevalidateReply, RevalidateRequest, ServerState};
use rzk_proto::txn::TxnRecord;
use rzk_proto::{OpCode, SessionId, Zxid};
use rzk_tree::{DataTree, TreeOptions};
use rzk_zab::{
    Action as ZabAction, Config as ZabConfig, LogRead, Message, MessageError, Node, ProposeError, Restored, ServerId, SnapData, StorageOp,
};
use std::net::SocketAddr;

/// A member's settings.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub core: CoreConfig,
    pub zab: ZabConfig,
    /// A ZooKeeper standalone server (one voter, no peers, no epoch files; zxids continue in
    /// the epoch of the last one logged).
    pub standalone: bool,
    /// The node ticks once per this many ms of `now_ms` (ZAB's timeouts are in node ticks).
    pub node_tick_ms: i64,
    /// The core ticks (session expiry, containers) once per this many ms.
    pub core_tick_ms: i64,
    /// How a leader's SNAP is read into a tree.
    pub tree_options: TreeOptions,
    /// Keep every committed txn this member applies for [`Member::take_deliveries`] (the
    /// simulator's checkers read them; a server leaves it off).
    pub trace_deliveries: bool,
    /// `readonlymode.enabled`: after this many ms of looking for a quorum the member serves
    /// read-only (ZooKeeper waits `max(2000, tickTime)`); `None`: never.
    pub read_only_after_ms: Option<i64>,
    /// Bytes of a SNAP stream serialized per [`Member::snap_step`] (the pause one step adds
    /// to the leader's other work).
    pub snap_step_bytes: usize,
    /// Bytes of messages a learner's SNAP stream may hold back behind it (the txns committed
    /// meanwhile, ...); beyond, the learner is dropped (it syncs again).
    pub snap_held_bytes_max: usize,
}

/// [`MemberConfig::snap_step_bytes`] of `rzk server` (as its own snapshot walk's steps).
pub const SNAP_STEP_BYTES: usize = 128 * 1024;
/// [`MemberConfig::snap_held_bytes_max`] of `rzk server`.
pub const SNAP_HELD_BYTES_MAX: usize = 32 << 20;
/// A learner's SNAP abandoned this many times in a row (ACL lists new since its walk began)
/// is written in one step the next time.
const SNAP_ABORTS_MAX: u32 = 3;

/// A change of this member's state machine, with its tree's digest right after (for
/// checkers; see [`MemberConfig::trace_deliveries`]), in the order they happened. The
/// digest is `None` while the tree is a fuzzy snapshot being replayed (it is nobody's
/// digest at that zxid until the replay converges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A committed txn, applied.
    Txn { zxid: Zxid, data: Bytes, digest: Option<i64> },
    /// The leader's SNAP replaced the tree.
    Snapshot { zxid: Zxid, digest: Option<i64> },
}

/// One step of a SNAP stream being written: the next bytes (about `budget` of them) of the
/// tree as it is now, and whether the stream is complete (its signature written). An error:
/// the stream cannot be completed (a node uses an ACL list newer than the table already
/// sent) and must be abandoned.
pub type SnapStep = Box<dyn FnMut(&DataTree, usize) -> Result<(Vec<u8>, bool), String> + Send>;
/// Starts the SNAP stream of a tree (at its last processed zxid) and its sessions
/// `(id, timeout_ms)`: the stream's first bytes and the step that writes the rest.
pub type SnapBegin = fn(&DataTree, &[(i64, i32)]) -> (Vec<u8>, SnapStep);
/// Reads a SNAP stream at a zxid back into a tree and its sessions.
pub type SnapDecode = fn(&[u8], Zxid, TreeOptions) -> Result<(DataTree, Vec<(i64, i32)>), String>;
/// Takes the tree and sessions out of a SNAP the host's transport decoded as it arrived
/// (`SnapData::Received`: the host's own type).
pub type SnapTake = fn(&(dyn std::any::Any + Send + Sync)) -> Result<(DataTree, Vec<(i64, i32)>), String>;

/// The snapshot stream a leader sends a learner in a SNAP (ZooKeeper's serialized database:
/// `rzk_storage::SnapWireWalk` / `decode_snap_stream` for `rzk server` and the simulator
/// alike).
#[derive(Clone, Copy)]
pub struct SnapCodec {
    pub begin: SnapBegin,
    pub decode: SnapDecode,
    pub take: SnapTake,
}

/// A SNAP stream to one learner, being written.
struct SnapOut {
    zxid: Zxid,
    step: SnapStep,
    /// Messages to the learner since the stream began: they follow its end, in order.
    held: Vec<PeerMsg>,
    held_bytes: usize,
}

impl std::fmt::Debug for SnapCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapCodec")
    }
}

/// What the host recovered from its data directory.
#[derive(Debug)]
pub struct Recovered {
    /// The state machine: the newest snapshot (a member: not replayed; standalone: with the
    /// whole log replayed, every logged txn being committed).
    pub tree: DataTree,
    pub sessions: Vec<(SessionId, i32)>,
    /// Epoch files and the raw log after the snapshot, for the node (standalone: `applied` is
    /// the tree's last zxid and the log is empty).
    pub restored: Restored,
    /// The tree is a snapshot whose digest at its zxid is not known to be anyone's (a
    /// leader's SNAP, stored without a digest): no digest is compared until a logged one
    /// matches (see `ZooKeeperServer::set_digest_fuzzy`).
    pub fuzzy: bool,
}

/// Why a member cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("ensemble configuration: {0}")]
    Config(#[from] rzk_zab::ConfigError),
    #[error("tick intervals must be positive (node {node_ms} ms, core {core_ms} ms)")]
    Ticks { node_ms: i64, core_ms: i64 },
}

/// Everything servers say to each other: ZAB's messages, and the requests the learners'
/// cores send the leader's core on the same quorum connection (ZooKeeper's REQUEST,
/// REVALIDATE and SYNC packets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMsg {
    Zab(Message),
    /// Learner → leader: a client write, a new session, a close or a sync.
    Request(ForwardedRequest),
    /// Learner → leader: may this session, just reattached here, go on?
    Revalidate(RevalidateRequest),
    /// Leader → learner: the answer.
    RevalidateReply(RevalidateReply),
    /// Leader → learner: the oldest forwarded sync is answered.
    Sync,
    /// Learner → leader: the reply to the leader's PING, with the sessions this server's
    /// clients touched since the last one (always with a data buffer, even empty: a
    /// ZooKeeper leader reads it without a null check). The leader reads it as ZAB's PING.
    PingReply {
        zxid: Zxid,
        touches: Vec<(SessionId, i32)>,
    },
}

/// Why a quorum packet is not a [`PeerMsg`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerMsgError {
    #[error(transparent)]
    Zab(#[from] MessageError),
    #[error("malformed {0} packet: {1}")]
    Malformed(&'static str, String),
}

impl PeerMsg {
    /// Reads a quorum packet (with the SNAP stream that followed it, for SNAP). Returns the
    /// LearnerInfo's sid too. REVALIDATE is the same packet type both ways; its data tells
    /// them apart (`long, int` from a learner, `long, boolean` from the leader).
    pub fn from_packet(p: &QuorumPacket, snapshot: Option<SnapData>) -> Result<(PeerMsg, Option<i64>), PeerMsgError> {
        let bad = |what, e: rzk_proto::DecodeError| PeerMsgError::Malformed(what, e.to_string());
        Ok(match p.ty {
            pt::REQUEST => (PeerMsg::Request(ForwardedRequest::from_packet(p).map_err(|e| bad("REQUEST", e))?), None),
            pt::REVALIDATE if p.data().len() == 12 => {
                (PeerMsg::Revalidate(RevalidateRequest::from_packet(p).map_err(|e| bad("REVALIDATE", e))?), None)
            }
            pt::REVALIDATE => (PeerMsg::RevalidateReply(RevalidateReply::from_packet(p).map_err(|e| bad("REVALIDATE reply", e))?), None),
            pt::SYNC => (PeerMsg::Sync, None),
            _ => {
                let (m, sid) = Message::from_packet(p, snapshot)?;
                (PeerMsg::Zab(m), sid)
            }
        })
    }

    /// The packet for everything but ZAB's messages (which the transport frames itself, with
    /// the election's config data).
    pub fn to_packet(&self) -> Option<QuorumPacket> {
        match self {
            PeerMsg::Zab(_) => None,
            PeerMsg::Request(r) => Some(r.to_packet()),
            PeerMsg::Revalidate(r) => Some(r.to_packet()),
            PeerMsg::RevalidateReply(r) => Some(r.to_packet()),
            PeerMsg::Sync => Some(quorum::sync_packet()),
            PeerMsg::PingReply { zxid, touches } => {
                Some(QuorumPacket { ty: pt::PING, zxid: *zxid, data: Some(quorum::encode_touches(touches)), authinfo: None })
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            PeerMsg::Zab(m) => m.name(),
            PeerMsg::Request(_) => "REQUEST",
            PeerMsg::Revalidate(_) | PeerMsg::RevalidateReply(_) => "REVALIDATE",
            PeerMsg::Sync => "SYNC",
            PeerMsg::PingReply { .. } => "PING",
        }
    }
}

/// What the host tells a member.
#[derive(Debug, Clone)]
pub enum MemberInput {
    /// `auth`: ids the shell authenticated the connection as (x509 over TLS).
    Accepted {
        conn: ConnId,
        peer: SocketAddr,
        auth: Vec<rzk_proto::Id>,
    },
    /// One client frame, without its length prefix.
    Frame {
        conn: ConnId,
        payload: Vec<u8>,
    },
    Closed {
        conn: ConnId,
    },
    Peer {
        from: ServerId,
        msg: PeerMsg,
    },
    /// The quorum connection with `peer` broke.
    PeerDisconnected {
        peer: ServerId,
    },
    /// Time moved on (to the `now_ms` given with it).
    Tick,
    /// Every storage op up to `seq` is durable.
    StorageDone {
        seq: u64,
    },
    /// Standalone only: the log could not take the append of `zxid` (a full disk) and drops
    /// everything queued after it until an append of that zxid comes again.
    AppendFailed {
        zxid: Zxid,
    },
    /// What the host read of its txn log for learner `to` (see `Output::ReadLog`).
    LogRead {
        to: ServerId,
        read: LogRead,
    },
}

/// What a member asks its host to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A whole client frame (length prefix included); `reply` for a request's answer.
    Send {
        conn: ConnId,
        frame: Vec<u8>,
        reply: bool,
    },
    /// Send what is queued to the client, then close.
    Close {
        conn: ConnId,
        reason: String,
    },
    PeerSend {
        to: ServerId,
        msg: PeerMsg,
    },
    /// Close the quorum connection with `peer`.
    PeerDisconnect {
        peer: ServerId,
    },
    /// Leader: read the txn log for learner `to`'s DIFF, the txns after `after`, and hand
    /// them back in bounded batches (`MemberInput::LogRead`), each when `to`'s connection has
    /// room; `LogRead::Unavailable` when the host's policy (`zookeeper.snapshotSizeFactor`)
    /// or the log says no. Replaces any read for `to`.
    ReadLog {
        to: ServerId,
        after: Zxid,
    },
    /// Stop reading the txn log for `to`.
    StopReadLog {
        to: ServerId,
    },
    /// A piece of the SNAP stream to learner `to`, on the quorum connection right after what
    /// was sent to `to` before: with `start`, the SNAP packet (`zxid`) first; then `bytes`,
    /// unframed. `end`: the stream is complete (signature included). Nothing else goes to
    /// `to` between its start and its end.
    SnapStream {
        to: ServerId,
        zxid: Zxid,
        start: bool,
        bytes: Bytes,
        end: bool,
    },
    /// A storage op (`rzk_zab::StorageOp`'s contract): applied in `seq` order, reported with
    /// `StorageDone`. For `InstallSnapshot` the member has already replaced its tree; the host
    /// drops any local snapshot in progress and stores this one, whose tree digest is
    /// `snapshot_digest` (None: store it without one; a leader's SNAP is fuzzy).
    Storage {
        seq: u64,
        op: StorageOp,
        snapshot_digest: Option<i64>,
    },
    /// One audit log event (only with the audit log on); the host stamps and writes it.
    Audit(Box<crate::audit::AuditEvent>),
    /// The member runs with a new configuration (`QuorumVerifier.toString()` text, its
    /// version): the host's peer transport learns the members' addresses from it (and
    /// drops the others'), and the host writes `zoo.cfg.dynamic.<version hex>` and points
    /// `zoo.cfg` at it (ZooKeeper's `writeDynamicConfig` / `editStaticConfig`). Only with
    /// `reconfigEnabled`.
    ConfigActivated {
        data: Bytes,
        version: i64,
    },
    /// The last configuration seen proposed (a reconfig txn logged, or NEWLEADER's), newer
    /// than the one in force: the host writes it to `zoo.cfg.dynamic.next`
    /// (`setLastSeenQuorumVerifier`); `None` once none is newer (the host deletes that
    /// file, as `setQuorumVerifier` does). Only with `reconfigEnabled`.
    LastSeenConfig {
        data: Option<Bytes>,
    },
    /// The member cannot go on correctly: the host stops the server (after the outputs
    /// before this one), reporting `reason`. Today only when a committed reconfiguration
    /// cannot be read.
    Stop {
        reason: String,
    },
    /// A follower with `observerMasterPort` opens its observer master port once its own sync
    /// is over (`listen: true`) and closes it, dropping its observers' connections, when it
    /// stops following, as ZooKeeper's `ObserverMaster` (the leader never listens there).
    ObserverMaster {
        listen: bool,
    },
}

/// Why [`Member::restore`] did not restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestoreRefused {
    #[error("restore replaces one server's tree; an ensemble member's must stay its quorum's (restore a standalone server, or every member's dataDir while the ensemble is down)")]
    EnsembleMember,
    /// Transient: the caller may try again at once.
    #[error("a write is in flight")]
    WriteInFlight,
}

/// One server. See the module docs.
pub struct Member {
    cfg: MemberConfig,
    core: ZooKeeperServer,
    node: Node,
    codec: SnapCodec,
    out: Vec<Output>,
    /// Bytes of client frames in `out`.
    out_bytes: usize,
    /// `pump`'s lists of the node's and the core's actions, kept for their capacity.
    zab_scratch: Vec<ZabAction>,
    core_scratch: Vec<CoreAction>,
    /// The node's role and leader, as its last `StateChanged` said.
    state: ServerState,
    leader: Option<ServerId>,
    now_ms: i64,
    wall_ms: i64,
    next_node_tick_ms: i64,
    next_core_tick_ms: i64,
    /// When this server became an established leader (for mntr's leader uptime).
    leading_since_ms: Option<i64>,
    /// Since when the node looks for a leader (for read-only mode).
    looking_since_ms: Option<i64>,
    /// PROPOSAL data sizes: last, min, max (-1 before the first), for `srvr` / `mntr`.
    proposal_sizes: (i64, i64, i64),
    /// With `trace_deliveries`: what was applied since the last `take_deliveries`.
    deliveries: Vec<Applied>,
    /// Why this member must stop: `Output::Stop` goes out once the current step's outputs
    /// have (so the client of a reconfig gets its answer first).
    stopping: Option<String>,
    /// A COMMITANDACTIVATE / INFORMANDACTIVATE whose txn is not applied yet (zxid,
    /// designated leader): its configuration is activated when the txn is.
    activate_at: Option<(Zxid, ServerId)>,
    /// Leader: SNAP streams being written, per learner.
    snaps: std::collections::BTreeMap<ServerId, SnapOut>,
    /// SNAP streams abandoned in a row (see `SNAP_ABORTS_MAX`).
    snap_aborts: u32,
    /// A follower with an observer master (`observerMasterPort`): what it relays for its
    /// observers (see [`ObserverRelay`]).
    relay: ObserverRelay,
    /// Whether the host was last told to listen on the observer master port.
    observer_master_listening: bool,
}

/// Most syncs, revalidations and touched sessions a follower keeps for its observers; a
/// request beyond is not relayed (the observer's client times out).
const RELAY_MAX: usize = 10_000;

/// A follower's relay for the observers syncing from it (ZooKeeper's `ObserverMaster`):
/// their REQUESTs and REVALIDATEs go to the leader as the follower's own; the leader's
/// answers come back in order, and those meant for an observer are routed to it.
#[derive(Debug, Default)]
struct ObserverRelay {
    /// Every sync forwarded to the leader in order: `None` this server's own, else the
    /// observer's (the leader answers them in order).
    syncs: std::collections::VecDeque<Option<ServerId>>,
    /// Observers' revalidations forwarded, in order: (observer, session).
    revalidations: std::collections::VecDeque<(ServerId, SessionId)>,
    /// Sessions the observers' clients touched, for this server's next PING reply.
    touches: std::collections::BTreeMap<SessionId, i32>,
}

/// Ticks of lag a member catches up in one `Tick` (a host stalled longer loses the rest).
const CATCH_UP_TICKS_MAX: i64 = 1000;

/// The configuration text of a reconfig txn (`data` a logged TxnRecord), `None` for any
/// other txn: the header's type (bytes 28..32) is looked at before anything is decoded.
fn reconfig_text(data: &[u8]) -> Option<Vec<u8>> {
    let op = data.get(28..32)?;
    if i32::from_be_bytes(op.try_into().ok()?) != rzk_proto::OpCode::Reconfig.code() {
        return None;
    }
    match TxnRecord::from_bytes(data).ok()?.txn {
        rzk_proto::txn::Txn::Reconfig(t) => Some(t.data.unwrap_or_default()),
        _ => None,
    }
}

impl Member {
    pub fn new(cfg: MemberConfig, rec: Recovered, codec: SnapCodec, now_ms: i64, wall_ms: i64) -> Result<Member, MemberError> {
        if cfg.node_tick_ms <= 0 || cfg.core_tick_ms <= 0 {
            return Err(MemberError::Ticks { node_ms: cfg.node_tick_ms, core_ms: cfg.core_tick_ms });
        }
        let standalone = cfg.standalone;
        let mut core = ZooKeeperServer::recovered(cfg.core.clone(), rec.tree, &rec.sessions, now_ms, wall_ms);
        if rec.fuzzy {
            core.set_digest_fuzzy();
        }
        let node = if cfg.standalone {
            Node::standalone(cfg.zab.clone(), rec.restored)?
        } else {
            core.handle(now_ms, wall_ms, Input::StopServing);
            core.init_config(&cfg.zab.config_data, cfg.zab.config_version, wall_ms);
            // The reconfig txns of the log: the last configuration seen proposed.
            let seen: Vec<Vec<u8>> = rec.restored.log.iter().filter_map(|e| reconfig_text(&e.data)).collect();
            let mut node = Node::new(cfg.zab.clone(), rec.restored)?;
            for text in seen {
                // An unreadable one is refused when it is committed (activate_reconfig).
                let _ = node.saw_config(&text, false);
            }
            node
        };
        let mut m = Member {
            next_node_tick_ms: now_ms + cfg.node_tick_ms,
            next_core_tick_ms: now_ms + cfg.core_tick_ms,
            cfg,
            core,
            node,
            codec,
            out: Vec::new(),
            out_bytes: 0,
            zab_scratch: Vec::new(),
            core_scratch: Vec::new(),
            state: ServerState::Looking,
            leader: None,
            now_ms,
            wall_ms,
            leading_since_ms: None,
            looking_since_ms: (!standalone).then_some(now_ms),
            proposal_sizes: (-1, -1, -1),
            deliveries: Vec::new(),
            stopping: None,
            activate_at: None,
            snaps: Default::default(),
            snap_aborts: 0,
            relay: ObserverRelay::default(),
            observer_master_listening: false,
        };
        m.pump();
        Ok(m)
    }

    /// Handles one input at monotonic time `now_ms` and wall-clock time `wall_ms`.
    pub fn handle(&mut self, now_ms: i64, wall_ms: i64, input: MemberInput) {
        self.now_ms = now_ms;
        self.wall_ms = wall_ms;
        match input {
            MemberInput::Accepted { conn, peer, auth } => self.core_input(Input::Accepted { conn, peer, auth }),
            MemberInput::Frame { conn, payload } => self.core_input(Input::Frame { conn, payload }),
            MemberInput::Closed { conn } => self.core_input(Input::Closed { conn }),
            MemberInput::Peer { from, msg } => self.peer_message(from, msg),
            MemberInput::PeerDisconnected { peer } => {
                self.snaps.remove(&peer);
                self.node.disconnected(peer)
            }
            MemberInput::Tick => self.tick(),
            MemberInput::StorageDone { seq } => self.node.persisted(seq),
            MemberInput::LogRead { to, read } => self.node.log_read(to, read),
            MemberInput::AppendFailed { zxid } => {
                assert!(self.cfg.standalone, "an ensemble member cannot skip a txn; the host must stop instead");
                self.node.append_failed(zxid);
                self.core_input(Input::AppendFailed { zxid });
            }
        }
        self.pump();
    }

    /// The outputs produced so far, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        self.out_bytes = 0;
        std::mem::take(&mut self.out)
    }

    /// Moves the outputs produced so far, in order, to the end of `buf`; the member keeps its
    /// buffer's capacity, so a host that drains after every input allocates nothing for it.
    pub fn drain_outputs_into(&mut self, buf: &mut Vec<Output>) {
        self.out_bytes = 0;
        buf.append(&mut self.out);
    }

    /// Bytes of client frames among the outputs not yet taken (a host that batches inputs
    /// drains early when they grow large).
    pub fn pending_send_bytes(&self) -> usize {
        self.out_bytes
    }

    pub fn core(&self) -> &ZooKeeperServer {
        &self.core
    }

    /// The state machine's changes since the last call (empty unless `trace_deliveries`).
    pub fn take_deliveries(&mut self) -> Vec<Applied> {
        std::mem::take(&mut self.deliveries)
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn is_standalone(&self) -> bool {
        self.cfg.standalone
    }

    /// A measurement of the host's storage, for the statistics (`fsynctime`, ...).
    pub fn observe_storage(&mut self, o: crate::server::StorageObservation) {
        self.core.observe_storage(o);
    }

    /// The core, with what it shows of the ensemble brought up to date, for the four-letter
    /// words (`crst` and `srst` reset its counters).
    pub fn core_for_stats(&mut self) -> &mut ZooKeeperServer {
        if !self.cfg.standalone {
            let q = self.quorum_info();
            self.core.set_quorum_info(q);
        }
        &mut self.core
    }

    /// Whether `from` is an observer this server relays for: it follows with an observer
    /// master and has synced `from` (ZooKeeper's LearnerHandler reads requests only then).
    fn relays(&self, from: ServerId) -> bool {
        self.state == ServerState::Following && self.leader != Some(from) && self.node.serves_observer(from)
    }

    fn relay_touches(&mut self, sessions: Vec<(SessionId, i32)>) {
        for (id, timeout) in sessions {
            if self.relay.touches.len() < RELAY_MAX || self.relay.touches.contains_key(&id) {
                self.relay.touches.insert(id, timeout);
            }
        }
    }

    fn quorum_info(&self) -> QuorumInfo {
        let st = self.node.stats();
        let mut q = QuorumInfo {
            zab_phase: self.node.phase_name(),
            quorum_size: self.node.config().voters.len(),
            diff_count: st.diff_syncs + st.trunc_syncs,
            snap_count: st.snap_syncs,
            ..Default::default()
        };
        if let Some(s) = self.node.learner_summary() {
            q.learners = s.learners;
            q.synced_followers = s.synced_followers;
            q.synced_observers = s.synced_observers;
            q.proposal_sizes = self.proposal_sizes;
            q.leader_uptime_ms = self.leading_since_ms.map(|t| self.now_ms - t).unwrap_or(0);
        }
        if self.state == ServerState::Observing {
            q.observer_master_id = self.leader.map(|l| l.0);
        }
        q.follower_synced_observers = self.node.synced_observers();
        q.leader_id = self.leader.map(|l| l.0);
        q
    }

    fn core_input(&mut self, input: Input) {
        self.core.handle(self.now_ms, self.wall_ms, input);
    }

    /// The core's reconfig view, from the node (an established leader's synced servers and
    /// whether a reconfig is in flight): refreshed every tick and after each reconfig
    /// proposal or activation, only with reconfigEnabled.
    fn refresh_reconfig_view(&mut self) {
        if self.node.config().reconfig_enabled {
            let view = self
                .node
                .reconfig_view()
                .map(|(synced, in_progress)| crate::prep::ReconfigView { synced: synced.into_iter().map(|s| s.0).collect(), in_progress });
            self.core.set_reconfig_view(view);
        }
    }

    fn tick(&mut self) {
        self.refresh_reconfig_view();
        let mut n = 0;
        while self.now_ms >= self.next_node_tick_ms {
            self.node.tick();
            self.next_node_tick_ms += self.cfg.node_tick_ms;
            n += 1;
            if n >= CATCH_UP_TICKS_MAX {
                self.next_node_tick_ms = self.now_ms + self.cfg.node_tick_ms;
                break;
            }
            // The node's actions between its ticks, as if each tick had come on time.
            self.pump();
        }
        if self.now_ms >= self.next_core_tick_ms {
            self.next_core_tick_ms = self.now_ms + self.cfg.core_tick_ms;
            self.core_input(Input::Tick);
        }
        // ZooKeeper's QuorumPeer starts its ReadOnlyZooKeeperServer once it has looked for a
        // leader this long; it goes when the node leaves LOOKING (StateChanged).
        if let (Some(after), Some(since)) = (self.cfg.read_only_after_ms, self.looking_since_ms) {
            if self.state == ServerState::Looking && self.core.role() == Role::NotServing && self.now_ms - since >= after {
                tracing::info!(looking_ms = self.now_ms - since, "no quorum: serving read-only clients");
                let epoch = self.node.current_epoch();
                self.core_input(Input::Serve { role: Role::ReadOnly, epoch });
            }
        }
    }

    fn peer_message(&mut self, from: ServerId, msg: PeerMsg) {
        let leading = self.state == ServerState::Leading && self.core.role() == Role::Leader;
        let from_leader = self.leader == Some(from) && self.state != ServerState::Leading;
        match msg {
            PeerMsg::Zab(msg) => {
                if let Message::LearnerInfo { .. } = msg {
                    // A new connection from `from` replaces the old one, and any SNAP on it.
                    self.snaps.remove(&from);
                }
                // A learner's PING reply carries the sessions its clients touched.
                if let (true, Message::Ping { data, .. }) = (self.state == ServerState::Leading, &msg) {
                    if !data.is_empty() {
                        match quorum::decode_touches(data) {
                            Ok(sessions) => self.core_input(Input::Touches { sessions }),
                            Err(e) => tracing::warn!(learner = %from, error = %e, "malformed PING session data"),
                        }
                    }
                }
                if let (true, Message::Ack { zxid }) = (leading, &msg) {
                    self.core.observe_ack(from.0, *zxid, self.wall_ms);
                }
                // An observer's PING reply to its follower: its touches go on to the leader.
                if let (true, Message::Ping { data, .. }) = (self.relays(from), &msg) {
                    if !data.is_empty() {
                        match quorum::decode_touches(data) {
                            Ok(sessions) => self.relay_touches(sessions),
                            Err(e) => tracing::warn!(observer = %from, error = %e, "malformed PING session data"),
                        }
                    }
                }
                self.node.step(from, msg);
            }
            PeerMsg::Request(r) if self.relays(from) => {
                if let Some(leader) = self.leader {
                    if r.op == OpCode::Sync as i32 {
                        if self.relay.syncs.len() >= RELAY_MAX {
                            return;
                        }
                        self.relay.syncs.push_back(Some(from));
                    }
                    self.peer_send(leader, PeerMsg::Request(r));
                }
            }
            PeerMsg::Revalidate(r) if self.relays(from) => {
                if let (Some(leader), true) = (self.leader, self.relay.revalidations.len() < RELAY_MAX) {
                    self.relay.revalidations.push_back((from, r.session_id));
                    self.peer_send(leader, PeerMsg::Revalidate(r));
                }
            }
            PeerMsg::RevalidateReply(r) if from_leader && self.relay.revalidations.front().is_some_and(|(_, s)| *s == r.session_id) => {
                let (observer, _) = self.relay.revalidations.pop_front().expect("front checked");
                self.peer_send(observer, PeerMsg::RevalidateReply(r));
            }
            PeerMsg::Sync if from_leader && matches!(self.relay.syncs.front(), Some(Some(_))) => {
                let Some(Some(observer)) = self.relay.syncs.pop_front() else { unreachable!("front checked") };
                self.peer_send(observer, PeerMsg::Sync);
            }
            PeerMsg::Request(r) if leading => self.core_input(Input::Forwarded {
                from: from.0,
                session: r.session_id,
                cxid: r.cxid,
                op: r.op,
                body: r.body,
                auth: r.auth,
            }),
            PeerMsg::Revalidate(r) if leading => {
                self.core_input(Input::Revalidate { from: from.0, session: r.session_id, timeout_ms: r.timeout_ms })
            }
            PeerMsg::RevalidateReply(r) if from_leader => self.core_input(Input::Revalidated { session: r.session_id, valid: r.valid }),
            PeerMsg::Sync if from_leader => {
                self.relay.syncs.pop_front();
                self.core_input(Input::Synced)
            }
            // The wire carries it as ZAB's PING (above); a host that passes messages as they
            // are (the simulator) hands over the reply itself.
            PeerMsg::PingReply { zxid, touches } => {
                if self.state == ServerState::Leading {
                    self.core_input(Input::Touches { sessions: touches });
                } else if self.relays(from) {
                    self.relay_touches(touches);
                }
                self.node.step(from, Message::Ping { zxid, data: Bytes::new() });
            }
            other => tracing::debug!(peer = %from, msg = other.name(), state = ?self.state, "peer message ignored in this role"),
        }
    }

    /// Runs both state machines' actions until neither has any left: a whole batch of the
    /// node's first, then the core's.
    fn pump(&mut self) {
        // The two scratch lists keep their capacity from input to input (a nested pump, if
        // an action ever led to one, would start with empty lists of its own).
        let mut zab = std::mem::take(&mut self.zab_scratch);
        let mut core = std::mem::take(&mut self.core_scratch);
        loop {
            self.node.drain_actions_into(&mut zab);
            self.core.drain_actions_into(&mut core);
            if zab.is_empty() && core.is_empty() {
                break;
            }
            for a in zab.drain(..) {
                self.zab_action(a);
            }
            for a in core.drain(..) {
                self.core_action(a);
            }
        }
        self.zab_scratch = zab;
        self.core_scratch = core;
        let listen = self.node.synced_observers().is_some();
        if listen != self.observer_master_listening {
            self.observer_master_listening = listen;
            self.out.push(Output::ObserverMaster { listen });
        }
        if let Some(reason) = self.stopping.take() {
            self.out.push(Output::Stop { reason });
        }
    }

    fn zab_action(&mut self, a: ZabAction) {
        match a {
            ZabAction::Send { to, msg } => {
                let msg = match msg {
                    // A learner's PING reply carries the sessions its clients touched.
                    Message::Ping { zxid, .. } if self.state != ServerState::Leading && Some(to) == self.leader => {
                        let mut touches = self.core.take_touches();
                        touches.extend(std::mem::take(&mut self.relay.touches));
                        PeerMsg::PingReply { zxid, touches }
                    }
                    msg => PeerMsg::Zab(msg),
                };
                self.peer_send(to, msg);
            }
            ZabAction::Persist { seq, op: StorageOp::Checkpoint { zxid } } => {
                // An observer with syncEnabled=false about to log again: its state as a
                // snapshot, in the SNAP stream's bytes, stored as a leader's SNAP is.
                let data = self.serialize_state(zxid);
                self.out.push(Output::Storage { seq, op: StorageOp::InstallSnapshot { zxid, data: data.into() }, snapshot_digest: None });
            }
            ZabAction::Persist { seq, op } => {
                if let StorageOp::InstallSnapshot { zxid, data } = &op {
                    self.install_snapshot(*zxid, data);
                }
                if let StorageOp::Append(e) = &op {
                    // A reconfig proposal (ours or the leader's): ZooKeeper's
                    // setLastSeenQuorumVerifier. An unreadable one is refused when committed.
                    if let Some(text) = reconfig_text(&e.data) {
                        let _ = self.node.saw_config(&text, true);
                    }
                }
                self.out.push(Output::Storage { seq, op, snapshot_digest: None });
            }
            ZabAction::Deliver(entry) => {
                if self.core.proposed_front() == Some(entry.zxid) {
                    self.core_input(Input::Committed { zxid: entry.zxid, record: None });
                } else {
                    // A txn this server did not prep: the leader's, off the wire or the log.
                    let record = TxnRecord::from_bytes(&entry.data).unwrap_or_else(|e| {
                        panic!("committed txn {} cannot be decoded ({e}); this server cannot go on consistently", entry.zxid)
                    });
                    let reconfig = match &record.txn {
                        rzk_proto::txn::Txn::Reconfig(t) => Some(t.data.clone().unwrap_or_default()),
                        _ => None,
                    };
                    self.core_input(Input::Committed { zxid: entry.zxid, record: Some(record) });
                    if let Some(text) = reconfig {
                        if self.node.config().reconfig_enabled {
                            // Committed: in force from now on, whether COMMITANDACTIVATE
                            // told us (its designated leader, if it came first) or the txn
                            // came committed in a sync or a new leader's initial history.
                            let designated = self.activate_at.take().filter(|(z, _)| *z == entry.zxid).map(|(_, d)| d);
                            self.activate_reconfig(entry.zxid, Bytes::from(text), designated);
                        } else {
                            self.reconfig_committed(entry.zxid, &text);
                        }
                    }
                }
                if self.cfg.trace_deliveries {
                    let digest = self.core.digest_converged().then(|| self.core.tree().digest());
                    self.deliveries.push(Applied::Txn { zxid: entry.zxid, data: entry.data, digest });
                }
            }
            ZabAction::SendSnapshot { to, zxid } => {
                assert_eq!(self.core.tree().last_processed_zxid(), zxid, "a SNAP must be the state at the zxid ZAB names");
                assert!(!self.snaps.contains_key(&to), "a second SNAP to {to} on one connection");
                let sessions: Vec<(i64, i32)> = self.core.committed_sessions().iter().map(|(id, t)| (id.0, *t)).collect();
                let (head, step) = (self.codec.begin)(self.core.tree(), &sessions);
                tracing::info!(learner = %to, zxid = %zxid, nodes = self.core.tree().node_count(), "sending SNAP (streamed)");
                self.out.push(Output::SnapStream { to, zxid, start: true, bytes: Bytes::from(head), end: false });
                self.snaps.insert(to, SnapOut { zxid, step, held: Vec::new(), held_bytes: 0 });
                if self.snap_aborts >= SNAP_ABORTS_MAX {
                    // New ACL lists keep appearing mid-walk: this one goes in a single step.
                    tracing::warn!(learner = %to, aborts = self.snap_aborts, "SNAP written in one step after abandoned attempts");
                    self.snap_step_inner(to, usize::MAX);
                }
            }
            ZabAction::Disconnect { peer } => {
                self.snaps.remove(&peer);
                self.out.push(Output::StopReadLog { to: peer });
                self.out.push(Output::PeerDisconnect { peer })
            }
            ZabAction::ReadLog { to, after } => {
                tracing::info!(learner = %to, after = %after, "learner behind the committed window: reading the txn log for a DIFF");
                self.out.push(Output::ReadLog { to, after })
            }
            ZabAction::StopReadLog { to } => self.out.push(Output::StopReadLog { to }),
            ZabAction::StateChanged { state, leader, epoch } => {
                tracing::info!(state = ?state, leader = ?leader.map(|l| l.0), epoch, "role changed");
                if state != ServerState::Leading {
                    // SNAP streams are a leader's (its learners' connections are closed).
                    self.snaps.clear();
                }
                let still_looking = state == ServerState::Looking && self.state == ServerState::Looking;
                // The relay's answers would come from a leader no longer ours.
                self.relay = ObserverRelay::default();
                self.state = state;
                self.leader = leader;
                self.leading_since_ms = None;
                if state != ServerState::Looking {
                    self.looking_since_ms = None;
                } else if self.looking_since_ms.is_none() {
                    self.looking_since_ms = Some(self.now_ms);
                }
                // Another election round: a read-only server goes on serving.
                let keep = still_looking && self.core.role() == Role::ReadOnly;
                if self.core.role() != Role::NotServing && !self.cfg.standalone && !keep {
                    self.core_input(Input::StopServing);
                }
            }
            ZabAction::ReconfigCommitted { zxid, leader } => {
                tracing::info!(zxid = %zxid, designated_leader = %leader, "the leader activated a reconfiguration");
                if self.node.config().reconfig_enabled && self.node.config().config_version < zxid.0 {
                    // Its txn is not applied yet (a sync-phase commit, applied at UPTODATE):
                    // activated then, with this designated leader.
                    self.activate_at = Some((zxid, leader));
                }
                // Without reconfigEnabled the txn's delivery decided (a changed membership
                // stops this server).
            }
            ZabAction::LastSeenConfig { data } => self.out.push(Output::LastSeenConfig { data }),
            ZabAction::ConfigActivated { data, version } => {
                tracing::info!(
                    version = format_args!("{version:x}"),
                    "running with a new configuration:\n{}",
                    String::from_utf8_lossy(&data)
                );
                self.out.push(Output::ConfigActivated { data, version });
                // A leader's reconfig is no longer in flight once activated.
                self.refresh_reconfig_view();
            }
            ZabAction::Serving { epoch } => {
                let role = if self.cfg.standalone { Role::Standalone } else { role_of(self.state) };
                if role == Role::Leader {
                    self.leading_since_ms = Some(self.now_ms);
                }
                if role != Role::Standalone {
                    // Learner.syncWithLeader / QuorumPeer: the configuration this member
                    // runs with, whatever the leader's snapshot held.
                    let zab = self.node.config();
                    let (data, version) = (zab.config_data.clone(), zab.config_version);
                    self.core.init_config(&data, version, self.wall_ms);
                    self.core_input(Input::Serve { role, epoch });
                }
            }
        }
    }

    /// The reconfig txn at `zxid` is applied (committed): the node runs with its
    /// configuration from now on (`QuorumPeer.processReconfig`; a no-op where the node
    /// already activated it, as the leader that committed it), and `/zookeeper/config`
    /// already holds it (the txn wrote it).
    fn activate_reconfig(&mut self, zxid: Zxid, text: Bytes, designated: Option<ServerId>) {
        if let Err(e) = self.node.activate(text, designated) {
            // Committed by a quorum, unreadable here: going on would use the wrong quorums.
            self.stopping.get_or_insert(format!("the reconfiguration committed at {zxid} cannot be read: {e}"));
        }
    }

    /// A reconfiguration (a ZooKeeper leader's) was applied on a member without
    /// `reconfigEnabled`: as ZooKeeper's `QuorumPeer.processReconfig`, which skips it when the
    /// feature is off, the member goes on with the configuration it runs with (its quorums,
    /// its files); `/zookeeper/config` holds the new text (the txn wrote it). Logged.
    fn reconfig_committed(&mut self, zxid: Zxid, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        let ours = String::from_utf8_lossy(&self.node.config().config_data).into_owned();
        if membership_lines(&text) == membership_lines(&ours) {
            tracing::info!(zxid = %zxid, "a committed reconfiguration to the membership this server runs with");
            return;
        }
        tracing::warn!(
            zxid = %zxid,
            "the leader committed a reconfiguration that changes the ensemble; without reconfigEnabled this server \
             goes on with the configuration it was started with, as ZooKeeper's does (restart it with the new \
             membership to use it):\n{text}"
        );
    }

    /// ZooKeeper 3.9's `restore` admin command on a standalone server: `tree` and `sessions`
    /// (a snapshot's) replace the core's, as of the last zxid handed out, so the log goes on
    /// gap-free and a snapshot of the new tree taken next (named after that zxid) is what a
    /// restart recovers, with every later txn replayed on it. Every client connection is
    /// closed (their sessions are the snapshot's now); clients reconnect. Refused on an
    /// ensemble member (its tree would leave its quorum's history) and while a write is in
    /// flight ([`Member::can_restore`] says when it may be tried again); a refusal hands the
    /// tree back.
    pub fn restore(
        &mut self,
        now_ms: i64,
        wall_ms: i64,
        mut tree: DataTree,
        sessions: &[(SessionId, i32)],
    ) -> Result<Zxid, (RestoreRefused, Box<DataTree>)> {
        self.now_ms = self.now_ms.max(now_ms);
        self.wall_ms = wall_ms;
        if !self.cfg.standalone {
            return Err((RestoreRefused::EnsembleMember, Box::new(tree)));
        }
        if !self.can_restore() {
            return Err((RestoreRefused::WriteInFlight, Box::new(tree)));
        }
        let zxid = self.core.last_zxid();
        assert_eq!(self.core.tree().last_processed_zxid(), zxid, "nothing in flight: the tree holds every zxid handed out");
        tree.set_last_processed_zxid(zxid);
        tracing::info!(zxid = %zxid, nodes = tree.node_count(), sessions = sessions.len(), "restoring a snapshot (admin restore command)");
        self.core.install(tree, sessions);
        self.core_input(Input::Serve { role: Role::Standalone, epoch: zxid.epoch() });
        self.pump();
        Ok(zxid)
    }

    /// `zoo.cfg.dynamic.next` found at start-up (QuorumPeerConfig reads it as the last
    /// configuration seen proposed): taken if newer than the one in force, and not written
    /// back (`setLastSeenQuorumVerifier(qv, false)`).
    pub fn saw_config(&mut self, text: &[u8]) -> Result<(), rzk_zab::MembershipError> {
        let r = self.node.saw_config(text, false);
        self.pump();
        r
    }

    /// Whether a restore would be taken now: no write of this server's is in flight.
    pub fn can_restore(&self) -> bool {
        self.core.proposed_front().is_none()
    }

    /// The learners a SNAP stream is being written to (the host calls [`Member::snap_step`]
    /// for each when its connection has room).
    pub fn snap_streams(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.snaps.keys().copied()
    }

    pub fn has_snap_streams(&self) -> bool {
        !self.snaps.is_empty()
    }

    /// Writes the next step of the SNAP stream to `to` (about `snap_step_bytes` of the tree as
    /// it is now) as an `Output::SnapStream`; at its end, what was held for `to` follows.
    pub fn snap_step(&mut self, now_ms: i64, wall_ms: i64, to: ServerId) {
        self.now_ms = self.now_ms.max(now_ms);
        self.wall_ms = wall_ms;
        self.snap_step_inner(to, self.cfg.snap_step_bytes.max(1));
        self.pump();
    }

    /// The tree and sessions as they are, at `zxid`, in one SNAP stream (for a checkpoint).
    fn serialize_state(&self, zxid: Zxid) -> Bytes {
        assert_eq!(self.core.tree().last_processed_zxid(), zxid, "a checkpoint must be the state at the zxid ZAB names");
        let sessions: Vec<(i64, i32)> = self.core.committed_sessions().iter().map(|(id, t)| (id.0, *t)).collect();
        let (mut data, mut step) = (self.codec.begin)(self.core.tree(), &sessions);
        loop {
            // One walk over a tree nothing changes meanwhile: no ACL list can appear mid-way.
            let (b, end) = step(self.core.tree(), usize::MAX).unwrap_or_else(|e| panic!("checkpoint of an unchanging tree failed: {e}"));
            data.extend_from_slice(&b);
            if end {
                return Bytes::from(data);
            }
        }
    }

    fn snap_step_inner(&mut self, to: ServerId, budget: usize) {
        let Some(s) = self.snaps.get_mut(&to) else { return };
        let zxid = s.zxid;
        match (s.step)(self.core.tree(), budget) {
            Ok((bytes, end)) => {
                self.out.push(Output::SnapStream { to, zxid, start: false, bytes: Bytes::from(bytes), end });
                if end {
                    let s = self.snaps.remove(&to).expect("streaming");
                    tracing::info!(learner = %to, zxid = %zxid, held = s.held.len(), "SNAP sent");
                    self.snap_aborts = 0;
                    for msg in s.held {
                        self.out.push(Output::PeerSend { to, msg });
                    }
                }
            }
            Err(e) => {
                self.snap_aborts += 1;
                tracing::info!(learner = %to, zxid = %zxid, reason = %e, "SNAP abandoned; the learner syncs again");
                self.drop_snap_learner(to);
            }
        }
    }

    /// Ends a learner's SNAP stream by dropping the learner: its connection closes and it
    /// comes back for a new sync.
    fn drop_snap_learner(&mut self, to: ServerId) {
        self.snaps.remove(&to);
        self.out.push(Output::PeerDisconnect { peer: to });
        self.node.disconnected(to);
    }

    /// A message to a peer, after the SNAP stream being written to it, if any.
    fn peer_send(&mut self, to: ServerId, msg: PeerMsg) {
        let Some(s) = self.snaps.get_mut(&to) else {
            self.out.push(Output::PeerSend { to, msg });
            return;
        };
        s.held_bytes += held_size(&msg);
        s.held.push(msg);
        if s.held_bytes > self.cfg.snap_held_bytes_max {
            tracing::warn!(learner = %to, bytes = s.held_bytes, "too much waits behind a learner's SNAP; dropping the learner");
            self.drop_snap_learner(to);
        }
    }

    /// A leader's SNAP replaces the state machine at once, as the node requires. The tree is
    /// fuzzy (the leader went on committing while it wrote it; the txns after `zxid` that
    /// follow are applied on top): its digest is nobody's at `zxid`, so none is stored with
    /// it and none is compared until the replay converges.
    fn install_snapshot(&mut self, zxid: Zxid, data: &SnapData) {
        // A stream is decoded here (the simulator's, and a transport that buffers it; a
        // malformed one is refused by the transport's scanner or is the leader's bug); a
        // received one was decoded by the transport as it arrived.
        let decoded = match data {
            SnapData::Stream(b) => (self.codec.decode)(b, zxid, self.cfg.tree_options),
            SnapData::Received(r) => (self.codec.take)(r.as_ref()),
        };
        let (tree, sessions) = decoded.unwrap_or_else(|e| panic!("the leader's SNAP at {zxid} is unreadable: {e}"));
        assert_eq!(tree.last_processed_zxid(), zxid, "a SNAP's tree is at the SNAP's zxid");
        let sessions: Vec<(SessionId, i32)> = sessions.into_iter().map(|(id, t)| (SessionId(id), t)).collect();
        tracing::info!(zxid = %zxid, nodes = tree.node_count(), sessions = sessions.len(), "installing the leader's snapshot");
        // The leader's configuration, as its snapshot holds it: a (ZooKeeper) leader whose
        // ensemble changed while this server was away. With reconfigEnabled the leader's
        // NEWLEADER carries it and the node takes it at UPTODATE.
        let theirs = (!self.node.config().reconfig_enabled)
            .then(|| tree.get(rzk_tree::CONFIG_NODE).map(|n| String::from_utf8_lossy(n.data).into_owned()))
            .flatten();
        if let Some(theirs) = theirs {
            let ours = String::from_utf8_lossy(&self.node.config().config_data).into_owned();
            if !theirs.is_empty() && !ours.is_empty() && member_roles(&theirs) != member_roles(&ours) {
                // As ZooKeeper without reconfigEnabled: the configuration it was started with.
                tracing::warn!(
                    zxid = %zxid,
                    "the leader's snapshot holds an ensemble other than this server's; without reconfigEnabled it goes \
                     on with the configuration it was started with, as ZooKeeper's does:\n{theirs}"
                );
            }
        }
        self.core.install(tree, &sessions);
        self.core.set_digest_fuzzy();
        if self.cfg.trace_deliveries {
            self.deliveries.push(Applied::Snapshot { zxid, digest: None });
        }
    }

    fn core_action(&mut self, a: CoreAction) {
        match a {
            CoreAction::Send { conn, frame, reply } => {
                self.out_bytes += frame.len();
                self.out.push(Output::Send { conn, frame, reply })
            }
            CoreAction::Close { conn, reason } => self.out.push(Output::Close { conn, reason }),
            CoreAction::Append(record) => self.propose(record),
            CoreAction::Forward { session, cxid, op, body, auth } => {
                if let Some(leader) = self.leader {
                    if op == OpCode::Sync as i32 && self.node.om_enabled() {
                        // In order with the observers' syncs this server relays.
                        self.relay.syncs.push_back(None);
                    }
                    self.peer_send(leader, PeerMsg::Request(ForwardedRequest { session_id: session, cxid, op, body, auth }));
                }
            }
            CoreAction::Revalidate { session, timeout_ms } => {
                if let Some(leader) = self.leader {
                    self.peer_send(leader, PeerMsg::Revalidate(RevalidateRequest { session_id: session, timeout_ms }));
                }
            }
            CoreAction::RevalidateReply { to, session, valid } => {
                self.peer_send(ServerId(to), PeerMsg::RevalidateReply(RevalidateReply { session_id: session, valid }))
            }
            CoreAction::SyncReply { to } => self.peer_send(ServerId(to), PeerMsg::Sync),
            CoreAction::Audit(e) => self.out.push(Output::Audit(e)),
        }
    }

    /// The core's txn goes to ZAB with the zxid prep gave it, encoded once: these bytes are
    /// the PROPOSAL's data and the log record.
    fn propose(&mut self, record: TxnRecord) {
        let zxid = record.header.zxid;
        let data = Bytes::from(record.to_bytes());
        let n = data.len() as i64;
        let (_, min, max) = self.proposal_sizes;
        self.proposal_sizes = (n, if min < 0 { n } else { min.min(n) }, max.max(n));
        let proposed = match &record.txn {
            rzk_proto::txn::Txn::Reconfig(t) => {
                let text = Bytes::from(t.data.clone().unwrap_or_default());
                let r = self.node.propose_reconfig(zxid, data, text);
                self.refresh_reconfig_view();
                r
            }
            _ => self.node.propose(zxid, data),
        };
        match proposed {
            Ok(()) => {}
            Err(e @ ProposeError::WrongZxid { .. }) => panic!("the core and ZAB disagree on the next zxid: {e}"),
            Err(e) => {
                // Not leading any more, or too many proposals await a quorum: the write did
                // not happen (ConnectionLoss; clients retry).
                tracing::warn!(zxid = %zxid, reason = %e, "write not proposed");
                self.core_input(Input::AppendFailed { zxid });
            }
        }
    }
}

/// About how many bytes a held message takes (its packet's size).
fn held_size(msg: &PeerMsg) -> usize {
    32 + match msg {
        PeerMsg::Zab(Message::Proposal(e) | Message::Inform(e)) => e.data.len(),
        PeerMsg::Request(r) => r.body.len(),
        _ => 0,
    }
}

/// The membership in a configuration text (`QuorumVerifier.toString()`): its `server.`,
/// `group.` and `weight.` lines, as a set (the version and the order do not count).
fn membership_lines(text: &str) -> std::collections::BTreeSet<&str> {
    text.lines().map(str::trim).filter(|l| l.starts_with("server.") || l.starts_with("group.") || l.starts_with("weight.")).collect()
}

/// The members of a configuration text and whether each votes (`server.N=...[:observer]`),
/// whatever their addresses (each server may name its peers by other addresses).
fn member_roles(text: &str) -> std::collections::BTreeMap<&str, bool> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("server."))
        .filter_map(|l| l.split_once('='))
        .map(|(id, spec)| (id.trim(), !spec.split(';').next().unwrap_or("").trim().ends_with(":observer")))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_the_server_group_and_weight_lines() {
        let a = "server.1=h:1:2:participant\nserver.2=h:3:4:observer\nversion=0";
        let b = "server.2=h:3:4:observer\nserver.1=h:1:2:participant\nversion=100000003";
        assert_eq!(membership_lines(a), membership_lines(b));
        assert_ne!(membership_lines(a), membership_lines("server.1=h:1:2:participant\nversion=100000003"));
        assert_ne!(membership_lines(a), membership_lines("server.1=h:1:2:participant\nserver.2=h:3:4:participant\nversion=0"));
        // Roles only: the addresses may differ from server to server.
        let c = "server.1=g:5:6:participant;0.0.0.0:2181\nserver.2=g:7:8:observer;2182\nversion=1";
        assert_eq!(member_roles(a), member_roles(c));
        assert_eq!(member_roles(a).into_iter().collect::<Vec<_>>(), vec![("1", true), ("2", false)]);
        assert_ne!(member_roles(a), member_roles("server.1=h:1:2\nserver.2=h:3:4\n"));
        assert_ne!(member_roles(a), member_roles("server.1=h:1:2\n"));
    }

    #[test]
    fn roles_follow_node_states() {
        assert_eq!(role_of(ServerState::Leading), Role::Leader);
        assert_eq!(role_of(ServerState::Following), Role::Follower);
        assert_eq!(role_of(ServerState::Observing), Role::Observer);
        assert_eq!(role_of(ServerState::Looking), Role::NotServing);
    }

    fn standalone() -> Member {
        let me = ServerId(1);
        let zab = ZabConfig::from_ms(me, [me].into(), Default::default(), 10, 2000, 10, 5);
        let core =
            CoreConfig { server_id: 1, tick_ms: 2000, min_session_timeout_ms: 4000, max_session_timeout_ms: 40000, ..Default::default() };
        let cfg = MemberConfig {
            core,
            zab,
            standalone: true,
            node_tick_ms: 10,
            core_tick_ms: 50,
            tree_options: TreeOptions::default(),
            trace_deliveries: true,
            read_only_after_ms: None,
            snap_step_bytes: SNAP_STEP_BYTES,
            snap_held_bytes_max: SNAP_HELD_BYTES_MAX,
        };
        let rec = Recovered {
            tree: DataTree::with_options(TreeOptions::default()),
            sessions: Vec::new(),
            restored: Restored::default(),
            fuzzy: false,
        };
        let codec = SnapCodec {
            begin: |_, _| (Vec::new(), Box::new(|_, _| Err("no SNAP from a standalone server".into()))),
            decode: |_, _, _| Err("no SNAP for a standalone server".into()),
            take: |_| Err("no SNAP for a standalone server".into()),
        };
        Member::new(cfg, rec, codec, 0, 0).expect("standalone member")
    }

    fn storage(outs: &[Output]) -> Vec<(u64, Zxid)> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Storage { seq, op: StorageOp::Append(e), .. } => Some((*seq, e.zxid)),
                _ => None,
            })
            .collect()
    }

    /// Frames sent to clients.
    fn replies(outs: &[Output]) -> usize {
        outs.iter().filter(|o| matches!(o, Output::Send { .. })).count()
    }

    /// A standalone member: a write is answered only once its append is durable, and a
    /// refused append (a full disk) is answered ConnectionLoss and its zxid handed out again.
    #[test]
    fn standalone_answers_a_write_once_its_append_is_durable() {
        use rzk_proto::client::{ConnectRequest, Create, Request, RequestHeader};
        use rzk_proto::{Acl, OpCode, Record, Writer};
        let mut m = standalone();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        m.handle(0, 0, MemberInput::Accepted { conn: 1, peer, auth: Vec::new() });
        let mut w = Writer::new();
        ConnectRequest { timeout_ms: 10_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() }.write(&mut w);
        m.handle(0, 0, MemberInput::Frame { conn: 1, payload: w.into_inner() });
        let outs = m.take_outputs();
        let appends = storage(&outs);
        assert_eq!(appends.len(), 1, "createSession is logged: {outs:?}");
        assert_eq!(replies(&outs), 0, "no answer before the log has it");
        m.handle(0, 0, MemberInput::StorageDone { seq: appends[0].0 });
        assert_eq!(replies(&m.take_outputs()), 1, "the ConnectResponse");
        let create = |xid: i32, path: &str| {
            let req = Request::Create(Create {
                op: OpCode::Create,
                path: path.into(),
                data: Some(vec![1]),
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl: None,
            });
            let mut w = Writer::new();
            RequestHeader { xid, op: OpCode::Create.code() }.write(&mut w);
            req.write(&mut w);
            MemberInput::Frame { conn: 1, payload: w.into_inner() }
        };
        m.handle(0, 0, create(1, "/a"));
        m.handle(0, 0, create(2, "/b"));
        let outs = m.take_outputs();
        let appends = storage(&outs);
        assert_eq!(appends.len(), 2);
        assert_eq!(replies(&outs), 0);
        // The disk refuses /b's append: /a is answered once durable, /b gets ConnectionLoss.
        m.handle(0, 0, MemberInput::StorageDone { seq: appends[0].0 });
        m.handle(0, 0, MemberInput::AppendFailed { zxid: appends[1].1 });
        let outs = m.take_outputs();
        assert_eq!(replies(&outs), 2, "{outs:?}");
        assert!(m.core().tree().get("/a").is_some() && m.core().tree().get("/b").is_none());
        // The zxid /b had is handed out again.
        m.handle(0, 0, create(3, "/c"));
        let again = storage(&m.take_outputs());
        assert_eq!(again.iter().map(|a| a.1).collect::<Vec<_>>(), vec![appends[1].1]);
        m.handle(0, 0, MemberInput::StorageDone { seq: again[0].0 });
        assert!(m.core().tree().get("/c").is_some());
        let applied: Vec<Zxid> = m
            .take_deliveries()
            .iter()
            .map(|a| match a {
                Applied::Txn { zxid, .. } | Applied::Snapshot { zxid, .. } => *zxid,
            })
            .collect();
        // createSession, /a, and /c at the zxid /b was refused.
        assert_eq!(applied.len(), 3);
        assert_eq!(&applied[1..], &[appends[0].1, again[0].1]);
    }

    #[test]
    fn revalidate_packets_are_told_apart_by_their_data() {
        let req = RevalidateRequest { session_id: SessionId(7), timeout_ms: 5000 };
        let (m, _) = PeerMsg::from_packet(&req.to_packet(), None).unwrap();
        assert_eq!(m, PeerMsg::Revalidate(req));
        let rep = RevalidateReply { session_id: SessionId(7), valid: true };
        let (m, _) = PeerMsg::from_packet(&rep.to_packet(), None).unwrap();
        assert_eq!(m, PeerMsg::RevalidateReply(rep));
        let (m, _) = PeerMsg::from_packet(&quorum::sync_packet(), None).unwrap();
        assert_eq!(m, PeerMsg::Sync);
        let fwd = ForwardedRequest { session_id: SessionId(9), cxid: 3, op: 1, body: vec![1, 2], auth: vec![] };
        let (m, _) = PeerMsg::from_packet(&fwd.to_packet(), None).unwrap();
        assert_eq!(m, PeerMsg::Request(fwd));
    }
}
