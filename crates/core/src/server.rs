//! `ZooKeeperServer`: one server's state and its request pipeline, as a pure state machine.
//!
//! The member ([`crate::member`]) feeds [`Input`]s (a connection accepted, a frame read, a
//! connection closed, a tick, a txn committed) with the current time, and carries out the
//! [`Action`]s that come out (send bytes, close a connection, propose a txn). Nothing here
//! does I/O or reads a clock, so a simulator runs it exactly as production does.
//!
//! The path of a write: frame → decode → prep (validation, ACL, outstanding changes) → a txn
//! with the next zxid (this is the one zxid allocator; ZAB checks it) → `Action::Append` →
//! ZAB (standalone: a one-voter ZAB, committed once the log is fsynced) → `Input::Committed`
//! → apply to the tree (in zxid order) → watch events and the reply, in the order the
//! session sent its requests. A read is answered at once from the tree, unless
//! the connection still waits for one of its earlier writes: then it waits behind it, so a
//! client always sees its own writes and its replies in order.
//!
//! # In an ensemble ([`Role`])
//! The same pipeline; what differs is who preps and who decides:
//! - **Leader**: prep as above, for local clients and for learners' forwarded requests
//!   (`Input::Forwarded`); `Action::Append` is a proposal and `Input::Committed` applies it. Only the leader expires sessions (learners report activity with
//!   `Input::Touches`), decides REVALIDATE, answers learners' syncs once everything proposed
//!   before them is committed (`Action::SyncReply`) and runs the container/TTL manager.
//! - **Follower / Observer**: reads are answered from the local tree; writes, new sessions
//!   (ids carry this server's sid) and syncs go to the leader (`Action::Forward`) and are
//!   answered when the committed txn is applied (`Input::Committed`) or the leader's SYNC
//!   arrives (`Input::Synced`), in the connection's order; a reattaching session is checked
//!   with the leader (`Action::Revalidate` / `Input::Revalidated`).
//! - **NotServing** (between roles): clients are refused, committed txns still applied, and
//!   a leader's snapshot can replace the state ([`ZooKeeperServer::install`]).
//!
//! A role's own state lives in its variant of `RoleState` (a leader's session owners and
//! learners' syncs; a learner's forwarded syncs, revalidations and touches), so it can only be
//! reached in that role and goes when the role is left; [`ZooKeeperServer::role`] gives the
//! plain [`Role`].
//!
//! # Layout
//! This file holds the types, the inputs' dispatch ([`ZooKeeperServer::handle`]), the routing
//! of a request (read, write or forward) and the role changes. `impl ZooKeeperServer` goes on
//! by concern in:
//! - `connection`: connections, the handshake, session attach / reattach, REVALIDATE, auth.
//! - `sessions`: touches, session owners, expiry on the tick, the container manager.
//! - `pipeline`: prep hand-off, proposals in flight, commit and apply, `AppendFailed`
//!   roll-back, forwarding (learner) and forwarded requests and syncs (leader).
//! - `reads`: reads, the queue of reads behind a write, replies, watches and their delivery.
//! - `stats`: counters and the four-letter words' view.

use crate::auth::AuthConfig;
use crate::prep::Outstanding;
use crate::session::SessionTracker;
use rzk_proto::client::{self, ReplyHeader, RequestHeader, Response};
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::{ErrorCode, Id, OpCode, Reader, Record, SessionId, Zxid};
use rzk_tree::{DataTree, WatcherId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

mod connection;
mod pipeline;
mod reads;
mod sessions;
mod stats;

pub use stats::{ConnStats, ServerStats, StorageObservation};

/// One connection's SASL server: the mechanism is the login's (GSSAPI with a Kerberos
/// login, else DIGEST-MD5), as `ZooKeeperSaslServer` chooses it.
#[derive(Debug)]
enum SaslServer {
    DigestMd5(crate::sasl::DigestMd5Server),
    Gssapi(crate::gssapi::GssapiServer),
}

/// A connection, as the driver numbers them.
pub type ConnId = u64;

/// The validated settings the core needs (the shell derives them from zoo.cfg).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub server_id: u8,
    pub tick_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub extended_types_enabled: bool,
    pub reconfig_enabled: bool,
    /// `standaloneEnabled`: a reconfig must leave two voters (else one).
    pub standalone_enabled: bool,
    pub auth: AuthConfig,
    /// How often the container manager looks for empty containers and expired TTL nodes.
    pub container_check_interval_ms: i64,
    /// `znode.container.maxNeverUsedIntervalMs`: an empty container that never had a child is
    /// removed after this long (0: never).
    pub container_max_never_used_interval_ms: i64,
    /// `zookeeper.enforceQuota`: hard quota limits refuse creates and setData.
    pub enforce_quota: bool,
    /// `audit.enable`: `Some(the server's user)` (ZooKeeper's `ZKAuditProvider.getZKUser`, the
    /// user of ephemeral deletions) turns the audit log on: the core then emits
    /// `Action::Audit` for each audited operation (see [`crate::audit`]).
    pub audit_server_user: Option<String>,
    /// `localSessionsEnabled` (ensemble members only): a new session is local to the server
    /// that created it (no createSession txn, expired by that server alone).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`: a local session's first ephemeral create makes it
    /// global (a createSession txn first); off, that create fails with
    /// EphemeralOnLocalSession.
    pub local_sessions_upgrading_enabled: bool,
    /// ZooKeeper's RequestThrottler: requests in process (admitted, not yet answered) beyond
    /// which new requests wait, in arrival order (0: off).
    pub request_throttle_max_requests: usize,
    /// How often a stalled throttler counts a wait and looks again (it also looks whenever
    /// a request is answered).
    pub request_throttle_stall_time_ms: i64,
    /// A waiting request whose connection is gone is dropped (else passed on, to nobody).
    pub request_throttle_drop_stale: bool,
    /// A request that waited longer than this is answered ThrottledOp (0: never).
    pub throttled_op_wait_time_ms: i64,
    /// `connection_throttle_*`: the token bucket new connection requests draw on.
    pub connection_throttle: crate::throttle::ConnectionThrottleConfig,
    /// `largeRequestThreshold` (-1: off) and `largeRequestMaxBytes`.
    pub large_request_threshold: i64,
    pub large_request_max_bytes: i64,
    /// Seeds the core's random draws (BLUE's drops): an input, so a seed replays.
    pub seed: u64,
    /// `leaderServes` (`zookeeper.leaderServes`, default yes): with no, a leader serves no
    /// client (connections are refused as between roles; the AdminServer still answers).
    pub leader_serves: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            server_id: 0,
            tick_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 60000,
            extended_types_enabled: false,
            reconfig_enabled: false,
            standalone_enabled: true,
            auth: AuthConfig::default(),
            container_check_interval_ms: 60_000,
            container_max_never_used_interval_ms: 0,
            enforce_quota: false,
            audit_server_user: None,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            request_throttle_max_requests: 0,
            request_throttle_stall_time_ms: 100,
            request_throttle_drop_stale: true,
            throttled_op_wait_time_ms: 0,
            connection_throttle: Default::default(),
            large_request_threshold: -1,
            large_request_max_bytes: 100 * 1024 * 1024,
            seed: 0,
            leader_serves: true,
        }
    }
}

/// A server's sid in an ensemble (`rzk_zab::ServerId.0`, ZooKeeper's `myid`).
pub type PeerId = i64;

/// What this server does for clients, as ZooKeeper's `ServerStats.getServerState` names it.
///
/// - `Standalone`: the whole pipeline is local (the log's `Persisted` commits).
/// - `Leader`: prep is local and for learners' forwarded requests; appended txns are proposals
///   that commit through ZAB (`Committed`); sessions expire and containers are swept here only.
/// - `Follower` / `Observer`: reads are local; writes, new sessions and syncs are forwarded to
///   the leader and answered when their committed txn is applied; session activity is reported
///   to the leader ([`ZooKeeperServer::take_touches`]), which alone expires sessions.
/// - `NotServing`: between roles (election, synchronisation). No client is served; committed
///   txns are still applied.
/// - `ReadOnly`: ZooKeeper's ReadOnlyZooKeeperServer, while an ensemble member with
///   `readonlymode.enabled` has looked for a quorum a while: reads are served to clients
///   that connect with canBeReadOnly, on local sessions; every write is NotReadOnly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standalone,
    Leader,
    Follower,
    Observer,
    NotServing,
    ReadOnly,
}

impl Role {
    /// A follower or an observer: forwards writes, expires nothing.
    pub fn is_learner(self) -> bool {
        matches!(self, Role::Follower | Role::Observer)
    }

    /// The `Mode:` of `srvr`/`stat` and mntr's `zk_server_state`, as ZooKeeper prints them.
    pub fn name(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
            Role::NotServing => "not serving",
            Role::ReadOnly => "read-only",
        }
    }

    /// Whether this server runs the session expiry and the container/TTL manager.
    fn expires_sessions(self) -> bool {
        matches!(self, Role::Standalone | Role::Leader)
    }
}

/// A role and the state that only it has: what a leader keeps for its learners, what a
/// learner keeps for its leader. Leaving a role drops its state with it.
#[derive(Debug)]
enum RoleState {
    Standalone,
    Leader(LeaderState),
    Follower(LearnerState),
    Observer(LearnerState),
    NotServing,
    ReadOnly,
}

impl RoleState {
    fn new(role: Role) -> RoleState {
        match role {
            Role::Standalone => RoleState::Standalone,
            Role::Leader => RoleState::Leader(LeaderState::default()),
            Role::Follower => RoleState::Follower(LearnerState::default()),
            Role::Observer => RoleState::Observer(LearnerState::default()),
            Role::NotServing => RoleState::NotServing,
            Role::ReadOnly => RoleState::ReadOnly,
        }
    }

    fn kind(&self) -> Role {
        match self {
            RoleState::Standalone => Role::Standalone,
            RoleState::Leader(_) => Role::Leader,
            RoleState::Follower(_) => Role::Follower,
            RoleState::Observer(_) => Role::Observer,
            RoleState::NotServing => Role::NotServing,
            RoleState::ReadOnly => Role::ReadOnly,
        }
    }
}

/// What only a leader keeps.
#[derive(Debug, Default)]
struct LeaderState {
    /// The server each session's requests must come from (ZooKeeper's session owner; unset
    /// until the session's first checked request, create or revalidation).
    owners: HashMap<SessionId, PeerId>,
    /// Learners' syncs, each waiting until the txn that was the last appended when it came is
    /// committed (ZooKeeper's `Leader.pendingSyncs`), in arrival order.
    syncs: VecDeque<(Zxid, PeerId)>,
}

/// What only a follower or an observer keeps.
#[derive(Debug, Default)]
struct LearnerState {
    /// The connections' syncs forwarded to the leader, oldest first (conn, xid).
    syncs: VecDeque<(ConnId, i32)>,
    /// Reattaching connections waiting for the leader's REVALIDATE answer.
    revalidations: HashMap<SessionId, ConnId>,
    /// Sessions touched since the last `take_touches` (ZooKeeper's touch table).
    touches: BTreeMap<SessionId, i32>,
}

/// What the driver tells the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// `auth`: ids the shell already authenticated the connection as (x509 over TLS); the
    /// core adds its `ip` id first, as ZooKeeper does.
    Accepted {
        conn: ConnId,
        peer: SocketAddr,
        auth: Vec<Id>,
    },
    /// One frame's payload (without its length prefix).
    Frame {
        conn: ConnId,
        payload: Vec<u8>,
    },
    Closed {
        conn: ConnId,
    },
    /// Time moved on; expire sessions, clean up containers.
    Tick,
    /// The log could not write the txns from `zxid` on (the disk is full) and will write
    /// nothing more until appends start again at `zxid`. Those txns are never applied: each
    /// writer gets `ConnectionLoss` (the write did not happen; clients retry it), a new
    /// session's connection is closed, an expiry is retried; zxids are handed out again from
    /// `zxid`, so the log stays gap-free and nothing later becomes visible out of order.
    AppendFailed {
        zxid: Zxid,
    },

    /// Start serving clients in `role` for `epoch` (ZAB's `Serving`). A leader hands out
    /// zxids from `Zxid::new(epoch, 0) + 1` and gives every known session a fresh timeout
    /// from now, as ZooKeeper's new leader session tracker does. Any earlier role is left
    /// first, as with `StopServing`.
    Serve {
        role: Role,
        epoch: u32,
    },
    /// Left the role (election): every client connection is closed; in-flight writes,
    /// outstanding changes, pending syncs and revalidations are forgotten. The tree and the
    /// session table stay (uncommitted session changes are undone). Role becomes `NotServing`,
    /// in which a ConnectRequest is refused.
    StopServing,
    /// A txn ZAB committed, in zxid order, in any role (standalone included: its one-voter
    /// ZAB commits a txn once the log has it). `record: None` is this server's own proposal,
    /// which must be the front of its proposals in flight: it is applied as prep built it
    /// (never encoded and decoded again here) and its origin gets the reply. `Some` is a txn
    /// that came from the leader (a learner's, or a new leader's initial history): applied as
    /// it comes, answering the local connection that forwarded it, if any.
    Committed {
        zxid: Zxid,
        record: Option<TxnRecord>,
    },
    /// Leader: a learner's REQUEST (a client write, a new session, a close, a sync).
    Forwarded {
        from: PeerId,
        session: SessionId,
        cxid: i32,
        op: i32,
        body: Vec<u8>,
        auth: Vec<Id>,
    },
    /// Leader: a learner's REVALIDATE of a session a client reattaches to it.
    Revalidate {
        from: PeerId,
        session: SessionId,
        timeout_ms: i32,
    },
    /// Learner: the leader's answer to our `Action::Revalidate`.
    Revalidated {
        session: SessionId,
        valid: bool,
    },
    /// Leader: the sessions a learner's PING reports active, with their timeouts.
    Touches {
        sessions: Vec<(SessionId, i32)>,
    },
    /// Learner: the leader's SYNC arrived; the oldest forwarded sync is answered. The driver
    /// feeds every `Committed` the leader sent before that SYNC first.
    Synced,
}

/// What the core asks the driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a whole frame (length prefix included). `reply` is true for the answer to a
    /// request (the connection's outstanding count goes down), false for watch events.
    Send { conn: ConnId, frame: Vec<u8>, reply: bool },
    /// Send what is queued, then close.
    Close { conn: ConnId, reason: String },
    /// Propose this txn through ZAB (standalone: a one-voter ZAB whose commit is the fsync of
    /// the log); `Input::Committed { zxid, record: None }` comes back once it is committed.
    Append(TxnRecord),

    /// Learner → leader: a REQUEST. A client write (the connection waits for the committed
    /// txn), a new session (op createSession, cxid 0, body = the timeout as a big-endian i32)
    /// or a sync (op sync, body = the request's body; answered by `Input::Synced`).
    Forward { session: SessionId, cxid: i32, op: i32, body: Vec<u8>, auth: Vec<Id> },
    /// Learner → leader: REVALIDATE a session a client reattaches to this server.
    Revalidate { session: SessionId, timeout_ms: i32 },
    /// Leader → learner `to`: the answer to its REVALIDATE.
    RevalidateReply { to: PeerId, session: SessionId, valid: bool },
    /// Leader → learner `to`: a SYNC packet (its forwarded sync is answered).
    SyncReply { to: PeerId },
    /// One line of the audit log (only with `CoreConfig::audit_server_user`); the host stamps
    /// the time and writes it.
    Audit(Box<crate::audit::AuditEvent>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Waiting for the ConnectRequest.
    Handshake,
    /// ConnectRequest seen; a new session's createSession txn is on its way.
    Connecting,
    /// Learner: a reattaching session waits for the leader's REVALIDATE answer.
    Revalidating,
    Connected,
    Closed,
}

/// A request waiting in a connection's queue.
#[derive(Debug)]
enum Pending {
    /// A write, appended, waiting to be applied.
    Write { zxid: Zxid },
    /// A read that came after a pending write.
    Read { header: RequestHeader, body: Vec<u8>, received_ms: i64 },
    /// A write the log could not take; answered with `err` in its turn.
    Failed { xid: i32, op: OpCode, err: ErrorCode, received_ms: i64 },
    /// Learner: a request forwarded to the leader (a write, or the createSession with xid 0),
    /// waiting for its committed txn.
    Forwarded { xid: i32, op: OpCode, received_ms: i64 },
    /// Learner: a sync forwarded to the leader; `done` once the leader's SYNC came.
    Sync { header: RequestHeader, body: Vec<u8>, received_ms: i64, done: bool },
    /// A local session's closeSession, behind earlier requests.
    LocalClose { xid: i32 },
}

#[derive(Debug)]
struct Conn {
    peer: SocketAddr,
    state: ConnState,
    session: Option<SessionId>,
    timeout_ms: i32,
    old_client: bool,
    auth: Vec<Id>,
    /// The SASL negotiation, from the connection's first SASL packet on.
    sasl: Option<SaslServer>,
    pending: VecDeque<Pending>,
    /// Learner: frames that came while the session was being revalidated, handled once it is.
    early: Vec<Vec<u8>>,
    stats: ConnStats,
    /// Requests admitted on this connection and not yet answered (the throttler's count).
    unanswered: usize,
    /// Request frames received and replies sent on this connection, and the large requests
    /// among those received (`(n-th request, bytes)`), which hold their bytes until answered.
    requests_received: u64,
    replies_sent: u64,
    large: VecDeque<(u64, usize)>,
}

/// Who is waiting for an appended txn.
#[derive(Debug)]
enum Origin {
    /// A client request; the reply goes to `conn` (if it is still there).
    Client { conn: ConnId, xid: i32, op: OpCode, received_ms: i64 },
    /// A new session's createSession; the ConnectResponse goes to `conn`.
    Connect { conn: ConnId },
    /// A session expired, or the container manager deleting; nobody to answer.
    Internal,
    /// A local session's upgrade to a global one (its createSession): nothing to answer, but
    /// the connection's next request waits behind it.
    Upgrade { conn: ConnId },
    /// Leader: a learner's forwarded request; the learner answers its client when it applies
    /// the committed txn.
    Remote { from: PeerId },
}

#[derive(Debug)]
struct InFlight {
    record: TxnRecord,
    origin: Origin,
    /// The predicted tree digest once this txn is applied (also for txns that log none).
    digest_after: Option<i64>,
}

/// One server's state. See the module docs.
pub struct ZooKeeperServer {
    cfg: CoreConfig,
    /// An established leader's view for reconfig prep (the member refreshes it every tick).
    reconfig_view: Option<crate::prep::ReconfigView>,
    tree: DataTree,
    sessions: SessionTracker,
    /// Local sessions (`localSessionsEnabled`): this server's alone, never in a txn, expired
    /// here; their ids come from `sessions`' counter. Emptied when the role is left.
    local: SessionTracker,
    /// Boxed: a `Conn` is hundreds of bytes, which every insert and remove shifted within
    /// the B-tree's nodes (~600 instructions of memcpy per churned session).
    conns: BTreeMap<ConnId, Box<Conn>>,
    session_conn: HashMap<SessionId, ConnId>,
    outstanding: Outstanding,
    /// Appended, not yet applied, in zxid order.
    in_flight: VecDeque<InFlight>,
    /// The last zxid handed out by prep.
    last_zxid: Zxid,
    /// The tree digest once every appended txn is applied (ZooKeeper 3.6+ logs it with each
    /// txn as its TxnDigest); `None` when digests are off.
    predicted_digest: Option<i64>,
    /// Txns whose digest after apply differed from the one logged (a bug if ever non-zero).
    digest_mismatches: u64,
    /// The tree is a fuzzy snapshot (a leader's SNAP, walked while its leader went on
    /// committing) that the txns after its zxid are being applied on: its digest matches
    /// no one's until the replay passes the last change the walk saw, a zxid nobody sent
    /// us. Until a logged digest matches the tree's, none is compared (ZooKeeper's
    /// `digestFromLoadedSnapshot`), and the digest log waits.
    digest_fuzzy: bool,
    now_ms: i64,
    wall_ms: i64,
    next_container_check_ms: i64,
    stats: ServerStats,
    out: Vec<Action>,
    /// What the driver knows of the ensemble, for mntr / srvr.
    quorum_info: crate::fourlw::QuorumInfo,
    /// The role, with the state only that role has (as `rzk_zab::Node` holds its roles).
    role: RoleState,
    /// ZooKeeper's text trace mask (`ZooTrace`, the `gtmk` / `stmk` words): which request
    /// categories are traced (at TRACE level, target `rzk::zootrace`).
    trace_mask: i64,
    /// Requests admitted and not yet answered, on every connection (ZooKeeper's inProcess).
    in_process: usize,
    /// Requests waiting for the throttler, oldest first: (connection, frame, since when).
    throttled: VecDeque<(ConnId, Vec<u8>, i64)>,
    /// When a stalled throttler next counts a wait, and whether the oldest waiting request
    /// has been counted as waiting (ZooKeeper counts each time its throttler goes to sleep:
    /// at least once for each request that found too many in process).
    next_throttle_wait_ms: i64,
    throttle_head_counted: bool,
    /// Connection throttling (BlueThrottle) and the large requests' byte budget.
    conn_throttle: crate::throttle::BlueThrottle,
    large: crate::throttle::LargeRequests,
    /// With the audit log on: what each audited write said, by (session, cxid), from its
    /// arrival until its txn is applied, also when its connection is gone by then (ZooKeeper
    /// audits it all the same). Only writes in the pipeline are here: an entry goes at its
    /// commit, with the writes the log refused, with its session's close, and at a role change.
    audit_pending: BTreeMap<(SessionId, i32), crate::audit::AuditRequest>,
    /// SASL challenges sent so far: with the login's secret, each one's nonce.
    sasl_nonces: u64,
}

/// `ZooTrace`'s trace categories rzk traces, and its default mask (requests, server packets,
/// sessions, warnings).
pub mod zootrace {
    pub const CLIENT_REQUEST_TRACE_MASK: i64 = 1 << 1;
    pub const CLIENT_PING_TRACE_MASK: i64 = 1 << 3;
    pub const SERVER_PACKET_TRACE_MASK: i64 = 1 << 4;
    pub const SESSION_TRACE_MASK: i64 = 1 << 5;
    pub const WARNING_TRACE_MASK: i64 = 1 << 8;
    pub const DEFAULT_MASK: i64 = CLIENT_REQUEST_TRACE_MASK | SERVER_PACKET_TRACE_MASK | SESSION_TRACE_MASK | WARNING_TRACE_MASK;
}

/// Frames a connection may send before its session is revalidated (clients send none).
const MAX_EARLY_FRAMES: usize = 1024;

fn frame_of(header: &ReplyHeader, body: &Response) -> Vec<u8> {
    client::reply_frame(header, body)
}

impl ZooKeeperServer {
    /// A server over `tree` (empty, or loaded from disk) whose last zxid is the tree's.
    pub fn new(cfg: CoreConfig, tree: DataTree, now_ms: i64, wall_ms: i64) -> Self {
        let sessions = SessionTracker::new(cfg.server_id, cfg.tick_ms, now_ms, wall_ms);
        let conn_throttle = crate::throttle::BlueThrottle::new(cfg.connection_throttle.clone(), now_ms, cfg.seed);
        let large = crate::throttle::LargeRequests::new(cfg.large_request_threshold, cfg.large_request_max_bytes);
        let local = SessionTracker::new(cfg.server_id, cfg.tick_ms, now_ms, wall_ms);
        let last_zxid = tree.last_processed_zxid();
        let predicted_digest = tree.options().digest_enabled.then(|| tree.digest());
        ZooKeeperServer {
            reconfig_view: None,
            predicted_digest,
            digest_mismatches: 0,
            digest_fuzzy: false,
            next_container_check_ms: now_ms + cfg.container_check_interval_ms,
            cfg,
            tree,
            sessions,
            local,
            conns: BTreeMap::new(),
            session_conn: HashMap::new(),
            outstanding: Outstanding::default(),
            in_flight: VecDeque::new(),
            last_zxid,
            now_ms,
            wall_ms,
            stats: ServerStats { started_ms: wall_ms, ..Default::default() },
            out: Vec::new(),
            quorum_info: Default::default(),
            audit_pending: BTreeMap::new(),
            role: RoleState::Standalone,
            trace_mask: zootrace::DEFAULT_MASK,
            in_process: 0,
            throttled: VecDeque::new(),
            next_throttle_wait_ms: 0,
            throttle_head_counted: false,
            conn_throttle,
            large,
            sasl_nonces: 0,
        }
    }

    /// `gtmk`: the text trace mask.
    pub fn trace_mask(&self) -> i64 {
        self.trace_mask
    }

    /// `stmk`: sets the text trace mask (ZooKeeper logs "Set text trace mask to 0x..").
    pub fn set_trace_mask(&mut self, mask: i64) {
        tracing::info!("Set text trace mask to 0x{:x}", mask);
        self.trace_mask = mask;
    }

    /// The driver's view of the ensemble, shown by `mntr` and `srvr`.
    pub fn set_quorum_info(&mut self, q: crate::fourlw::QuorumInfo) {
        self.quorum_info = q;
    }

    /// Whether clients are served now: not between roles, and not on a leader with
    /// `leaderServes=no`.
    pub fn serves_clients(&self) -> bool {
        match self.role() {
            Role::NotServing => false,
            Role::Leader => self.cfg.leader_serves,
            _ => true,
        }
    }

    /// ZooKeeper 3.9's AdminServer authentication and authorization for its `snapshot`
    /// and `restore` commands (`Commands.handleAuthentication` / `handleAuthorization`):
    /// the `Authorization` header's `<scheme> [auth]` authenticates with that provider
    /// (`digest user:password`; `x509` with the connection's verified client certificate,
    /// `x509` being its ids; `ip` with the peer address `ip`), then the ids need `perm` on
    /// `path`'s ACL. `Err(AuthFailed)`: not authenticated; `Err(NoAuth)`: not authorized.
    pub fn admin_authorize(&self, header: &str, x509: &[Id], ip: &str, perm: i32, path: &str) -> Result<(), ErrorCode> {
        let parts: Vec<&str> = header.split(' ').collect();
        if parts.is_empty() || parts.len() > 2 {
            return Err(ErrorCode::AuthFailed);
        }
        let ids: Vec<Id> = match (parts[0], parts.get(1)) {
            ("digest", Some(auth)) => crate::auth::authenticate(&self.cfg.auth, "digest", auth.as_bytes(), &[])?,
            ("x509", _) => x509.to_vec(),
            ("ip", _) if !ip.is_empty() => vec![Id::new("ip", ip)],
            _ => return Err(ErrorCode::AuthFailed),
        };
        if ids.is_empty() {
            return Err(ErrorCode::AuthFailed);
        }
        let (acl, _) = self.tree.get_acl(path).ok_or(ErrorCode::NoNode)?;
        crate::auth::check_acl(&self.cfg.auth, &acl, perm, &ids).map_err(|_| ErrorCode::NoAuth)
    }

    /// What this server does for clients now (the role's kind, without its state).
    pub fn role(&self) -> Role {
        self.role.kind()
    }

    fn leader_mut(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leader(l) => Some(l),
            _ => None,
        }
    }

    fn learner_mut(&mut self) -> Option<&mut LearnerState> {
        match &mut self.role {
            RoleState::Follower(l) | RoleState::Observer(l) => Some(l),
            _ => None,
        }
    }

    /// Replaces the tree and the session table with a leader's snapshot (SNAP), while not
    /// serving. Nothing in flight survives; the next zxid follows the snapshot's.
    pub fn install(&mut self, tree: DataTree, sessions: &[(SessionId, i32)]) {
        if self.role() != Role::NotServing {
            tracing::warn!(role = self.role().name(), "snapshot installed while serving; leaving the role first");
            self.stop_serving();
        }
        self.tree = tree;
        self.digest_fuzzy = false;
        self.sessions.clear();
        for (id, timeout) in sessions {
            self.sessions.add(*id, *timeout, self.now_ms);
        }
        self.reset_pipeline();
    }

    /// `initConfigInZKDatabase`: `/zookeeper/config` takes the ensemble's configuration text
    /// (see [`DataTree::set_config_node`]); its data watches fire. An ensemble member calls it
    /// at start-up and whenever it starts serving (after a sync, which may have brought a
    /// leader's snapshot), as ZooKeeper's QuorumPeer and Learner do; a standalone server
    /// leaves the znode empty, as ZooKeeper's does.
    pub fn init_config(&mut self, data: &[u8], config_version: i64, wall_ms: i64) {
        let events = self.tree.set_config_node(data, config_version, wall_ms);
        self.deliver(events);
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The oldest of this server's proposals not yet committed.
    pub fn proposed_front(&self) -> Option<Zxid> {
        self.in_flight.front().map(|f| f.record.header.zxid)
    }

    /// Applied txns whose tree digest differed from the TxnDigest logged for them.
    pub fn digest_mismatches(&self) -> u64 {
        self.digest_mismatches
    }

    /// The tree is fuzzy (see `digest_fuzzy`): digests are compared again, and the digest
    /// log goes on, once a txn's logged digest equals the tree's after it is applied.
    pub fn set_digest_fuzzy(&mut self) {
        self.digest_fuzzy = true;
        self.tree.set_digest_log_paused(true);
    }

    /// False while the tree is a fuzzy snapshot not yet known to have converged.
    pub fn digest_converged(&self) -> bool {
        !self.digest_fuzzy
    }

    /// A server over a recovered tree and session table (as ZooKeeper's `loadData`): the
    /// last zxid (and so the epoch) is the tree's; every session gets its full timeout to
    /// come back before it expires through a closeSession txn, ephemerals and all.
    /// An established leader's view for reconfig prep, from its ZAB node (None: not one).
    pub fn set_reconfig_view(&mut self, view: Option<crate::prep::ReconfigView>) {
        self.reconfig_view = view;
    }

    pub fn recovered(cfg: CoreConfig, tree: DataTree, sessions: &[(SessionId, i32)], now_ms: i64, wall_ms: i64) -> Self {
        let mut s = Self::new(cfg, tree, now_ms, wall_ms);
        for (id, timeout) in sessions {
            s.restore_session(*id, *timeout);
        }
        s
    }

    /// Handles one input at monotonic time `now_ms` and wall-clock time `wall_ms`.
    pub fn handle(&mut self, now_ms: i64, wall_ms: i64, input: Input) {
        self.now_ms = now_ms;
        self.wall_ms = wall_ms;
        match input {
            Input::Accepted { conn, peer, auth: shell_auth } => {
                let mut auth = vec![Id::new("ip", &ip_text(peer.ip()))];
                auth.extend(shell_auth);
                self.conns.insert(
                    conn,
                    Box::new(Conn {
                        peer,
                        state: ConnState::Handshake,
                        session: None,
                        timeout_ms: 0,
                        old_client: false,
                        auth,
                        sasl: None,
                        pending: VecDeque::new(),
                        early: Vec::new(),
                        stats: ConnStats { established_ms: wall_ms, ..Default::default() },
                        unanswered: 0,
                        requests_received: 0,
                        replies_sent: 0,
                        large: VecDeque::new(),
                    }),
                );
            }
            Input::Frame { conn, payload } => self.on_frame(conn, payload),
            Input::Closed { conn } => self.on_closed(conn),
            Input::Tick => self.on_tick(),
            Input::AppendFailed { zxid } => self.on_append_failed(zxid),
            Input::Serve { role, epoch } => self.serve(role, epoch),
            Input::StopServing => self.stop_serving(),
            Input::Committed { zxid, record: None } => self.on_proposal_committed(zxid),
            Input::Committed { zxid, record: Some(record) } => {
                assert_eq!(record.header.zxid, zxid, "a committed txn's header names another zxid");
                self.on_committed(record)
            }
            Input::Forwarded { from, session, cxid, op, body, auth } => self.on_forwarded(from, session, cxid, op, body, auth),
            Input::Revalidate { from, session, timeout_ms } => self.on_revalidate(from, session, timeout_ms),
            Input::Revalidated { session, valid } => self.on_revalidated(session, valid),
            Input::Touches { sessions } => self.on_touches(sessions),
            Input::Synced => self.on_synced(),
        }
        if !self.throttled.is_empty() {
            self.release_throttled();
        }
    }

    /// The throttler's count agrees with the connections' (for the simulator's checkers):
    /// the requests in process are exactly those admitted on live connections and not yet
    /// answered.
    pub fn check_in_process(&self) -> Result<(), String> {
        let sum: usize = self.conns.values().map(|c| c.unanswered).sum();
        if sum != self.in_process {
            return Err(format!("{} requests in process, but the connections have {sum} unanswered", self.in_process));
        }
        Ok(())
    }

    /// A request frame of an established connection: admitted now, or (throttling on, too
    /// many requests in process or others already waiting) queued behind the others.
    fn submit(&mut self, conn: ConnId, payload: Vec<u8>) {
        let max = self.cfg.request_throttle_max_requests;
        if max == 0 || (self.throttled.is_empty() && self.in_process < max) {
            return self.admit(conn, payload);
        }
        self.throttled.push_back((conn, payload, self.now_ms));
    }

    fn admit(&mut self, conn: ConnId, payload: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.unanswered += 1;
            self.in_process += 1;
        }
        self.on_request(conn, payload);
    }

    /// ZooKeeper's RequestThrottler loop, run after every input: the oldest waiting request
    /// goes on once fewer than the maximum are in process; one whose connection is gone is
    /// dropped (`drop_stale`); one that waited longer than `throttled_op_wait_time` is
    /// answered ThrottledOp in its turn (pings, closes, new sessions, SetWatches, auth and
    /// SASL never are).
    fn release_throttled(&mut self) {
        let max = self.cfg.request_throttle_max_requests.max(1);
        while let Some((conn, _, _)) = self.throttled.front() {
            let stale = !self.conns.get(conn).is_some_and(|c| c.state != ConnState::Closed);
            if stale {
                self.throttled.pop_front();
                self.throttle_head_counted = false;
                if self.cfg.request_throttle_drop_stale {
                    self.stats.stale_requests_dropped += 1;
                } else {
                    self.stats.stale_requests += 1;
                }
                continue;
            }
            if self.in_process >= max {
                if !self.throttle_head_counted || self.now_ms >= self.next_throttle_wait_ms {
                    self.stats.request_throttle_wait_count += 1;
                    self.throttle_head_counted = true;
                    self.next_throttle_wait_ms = self.now_ms + self.cfg.request_throttle_stall_time_ms;
                }
                return;
            }
            let (conn, payload, since) = self.throttled.pop_front().expect("front");
            self.throttle_head_counted = false;
            let wait = self.cfg.throttled_op_wait_time_ms;
            let header = RequestHeader::read(&mut Reader::new(&payload)).ok();
            let throttlable = header
                .as_ref()
                // ZooKeeper's isThrottlable, and (rzk) never the session's own set-up: a
                // refused SetWatches would leave the client believing its watches set.
                .is_some_and(|h| {
                    !matches!(
                        OpCode::from_code(h.op),
                        Some(
                            OpCode::Ping
                                | OpCode::CloseSession
                                | OpCode::CreateSession
                                | OpCode::SetWatches
                                | OpCode::SetWatches2
                                | OpCode::Auth
                                | OpCode::Sasl
                        )
                    )
                });
            match header {
                Some(h) if throttlable && wait > 0 && self.now_ms - since > wait => {
                    self.stats.throttled_ops += 1;
                    let c = self.conns.get_mut(&conn).expect("live");
                    c.unanswered += 1;
                    self.in_process += 1;
                    let op = OpCode::from_code(h.op).unwrap_or(OpCode::Error);
                    self.fail_in_turn(conn, h.xid, op, ErrorCode::Throttled, since);
                }
                _ => self.admit(conn, payload),
            }
        }
    }

    /// The actions produced so far, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    /// Moves the actions produced so far to the end of `buf`, keeping this buffer's capacity.
    pub fn drain_actions_into(&mut self, buf: &mut Vec<Action>) {
        buf.append(&mut self.out);
    }

    fn next_zxid(&mut self) -> Zxid {
        self.last_zxid = self.last_zxid.next();
        self.last_zxid
    }

    fn send(&mut self, conn: ConnId, frame: Vec<u8>, reply: bool) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if reply && c.unanswered > 0 {
                c.unanswered -= 1;
                self.in_process -= 1;
            }
            if reply {
                c.replies_sent += 1;
                while c.large.front().is_some_and(|(n, _)| *n < c.replies_sent) {
                    let (_, bytes) = c.large.pop_front().expect("front");
                    self.large.current -= bytes as i64;
                }
            }
            c.stats.sent += 1;
            self.stats.packets_sent += 1;
            if reply {
                self.stats.response_bytes += frame.len() as u64;
                self.stats.last_response_size = frame.len() as u64;
                let size = frame.len() as u64;
                self.stats.response_size_min_max = Some(match self.stats.response_size_min_max {
                    Some((min, max)) => (min.min(size), max.max(size)),
                    None => (size, size),
                });
            }
            self.out.push(Action::Send { conn, frame, reply });
        }
    }

    fn close(&mut self, conn: ConnId, reason: String) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.state != ConnState::Closed {
                c.state = ConnState::Closed;
                self.out.push(Action::Close { conn, reason });
            }
        }
        self.detach(conn);
    }

    /// Forgets a connection: its watches go, its session stays (until it expires).
    fn detach(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.in_process -= c.unanswered;
            self.large.current -= c.large.iter().map(|(_, b)| *b as i64).sum::<i64>();
            if let Some(s) = c.session {
                if self.session_conn.get(&s) == Some(&conn) {
                    self.session_conn.remove(&s);
                }
                if let Some(l) = self.learner_mut() {
                    if l.revalidations.get(&s) == Some(&conn) {
                        l.revalidations.remove(&s);
                    }
                }
            }
            self.tree.remove_watcher(WatcherId(conn));
        }
    }

    fn on_closed(&mut self, conn: ConnId) {
        self.detach(conn);
    }

    fn on_request(&mut self, conn: ConnId, payload: Vec<u8>) {
        let mut r = Reader::new(&payload);
        let header = match RequestHeader::read(&mut r) {
            Ok(h) => h,
            Err(e) => return self.close(conn, format!("malformed request header: {e}")),
        };
        let body = r.rest().to_vec();
        let received_ms = self.now_ms;
        let c = self.conns.get_mut(&conn).expect("conn");
        c.stats.last_cxid = header.xid;
        let session = c.session.expect("connected conns have a session");
        let timeout = c.timeout_ms;
        // Local sessions exist only with localSessionsEnabled: no lookup on the hot path
        // otherwise.
        let local = self.cfg.local_sessions_enabled && self.local.get(session).is_some();
        if local {
            // A local session is this server's alone: touched here, never reported.
            if !self.local.touch(session, self.now_ms) && header.op != OpCode::CloseSession.code() {
                let h = ReplyHeader { xid: header.xid, zxid: self.tree.last_processed_zxid(), err: ErrorCode::SessionExpired.code() };
                self.send(conn, frame_of(&h, &Response::Empty), true);
                return;
            }
        } else if let Some(l) = self.learner_mut() {
            // ZooKeeper's LearnerSessionTracker: every touch succeeds here and is reported to
            // the leader, which alone decides whether the session is alive.
            l.touches.insert(session, timeout);
            // The local copy moves too (for `dump`'s connection expiry); it never expires here.
            self.sessions.touch(session, self.now_ms);
        } else if !self.sessions.touch(session, self.now_ms) && header.op != OpCode::CloseSession.code() {
            // The session is closing or gone: ZooKeeper answers SessionExpired.
            let h = ReplyHeader { xid: header.xid, zxid: self.tree.last_processed_zxid(), err: ErrorCode::SessionExpired.code() };
            self.send(conn, frame_of(&h, &Response::Empty), true);
            return;
        }
        let op = OpCode::from_code(header.op);
        // ZooTrace.logRequest: pings and other requests, each under its own category.
        let category = if op == Some(OpCode::Ping) { zootrace::CLIENT_PING_TRACE_MASK } else { zootrace::CLIENT_REQUEST_TRACE_MASK };
        if self.trace_mask & category != 0 {
            tracing::trace!(target: "rzk::zootrace", session = %session, xid = header.xid, op = header.op, "request");
        }
        // Auth and SASL are answered at once, outside the pipeline, as ZooKeeper does.
        match op {
            Some(OpCode::Auth) => return self.on_auth(conn, header, &body),
            Some(OpCode::Sasl) => return self.on_sasl(conn, header, &body),
            _ => {}
        }
        if !self.cfg.auth.is_authenticated_enough(&self.conns[&conn].auth) {
            return self.refuse_unauthenticated(conn, header.xid);
        }
        if local && op == Some(OpCode::CloseSession) {
            let c = self.conns.get_mut(&conn).expect("conn");
            if c.pending.is_empty() {
                return self.close_local_session(conn, session, header.xid);
            }
            c.pending.push_back(Pending::LocalClose { xid: header.xid });
            return;
        }
        if let Some(op) = op.filter(|op| self.role() == Role::ReadOnly && not_read_only(*op)) {
            // ReadOnlyRequestProcessor: writes (a multi, a sync, a check and a global
            // session's close too) are refused with NotReadOnly.
            return self.fail_in_turn(conn, header.xid, op, ErrorCode::NotReadOnly, received_ms);
        }
        if let Some(op) = op.filter(|op| local && creates_ephemeral(*op, &body)) {
            // ZooKeeper's checkUpgradeSession: an ephemeral needs a global session.
            if !self.cfg.local_sessions_upgrading_enabled {
                return self.fail_in_turn(conn, header.xid, op, ErrorCode::EphemeralOnLocalSession, received_ms);
            }
            self.upgrade_session(conn, session, timeout, received_ms);
        }
        let is_write = op.is_some_and(OpCode::is_client_write);
        if is_write {
            self.note_audit(conn, session, header.xid, header.op, &body);
        }
        if self.role().is_learner() && (is_write || op == Some(OpCode::Sync)) {
            self.forward(conn, session, header, body, received_ms);
        } else if is_write {
            self.on_write(conn, session, header, &body, received_ms);
        } else {
            if !self.check_owner(session, self.my_peer()) {
                // ZooKeeper's leader checks every request's session owner in prep; a session
                // that moved to a learner tears this connection down (ZOOKEEPER-710).
                return self.close(conn, format!("session {session} moved to another server"));
            }
            let c = self.conns.get_mut(&conn).expect("conn");
            if c.pending.is_empty() {
                self.on_read(conn, header, &body, received_ms);
            } else {
                c.pending.push_back(Pending::Read { header, body, received_ms });
            }
        }
    }

    fn my_peer(&self) -> PeerId {
        self.cfg.server_id as PeerId
    }

    fn serve(&mut self, role: Role, epoch: u32) {
        // Whatever was served before goes, as ZooKeeper shuts its server down between roles.
        // (Connections accepted while not serving stay: their ConnectRequest is judged when
        // it comes, as ZooKeeper's is.)
        if self.role() != Role::NotServing {
            self.stop_serving();
        }
        if role == Role::NotServing {
            return;
        }
        self.role = RoleState::new(role);
        if role == Role::Leader {
            let base = Zxid::new(epoch, 0);
            if self.tree.last_processed_zxid() >= base {
                tracing::error!(tree = %self.tree.last_processed_zxid(), epoch, "leading an epoch the tree already holds txns of");
            }
            self.last_zxid = base;
            // ZooKeeper's new leader builds its session tracker from the committed session
            // table: every session gets a full timeout from now, and no owner yet.
            let ids: Vec<SessionId> = self.sessions.sessions().iter().map(|s| s.id).collect();
            for id in ids {
                self.sessions.reopen(id, self.now_ms);
            }
            self.next_container_check_ms = self.now_ms + self.cfg.container_check_interval_ms;
        }
        tracing::info!(role = role.name(), epoch, zxid = %self.tree.last_processed_zxid(), "serving clients");
    }

    fn stop_serving(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn, "the server is not serving (it left its role for a leader election)".into());
        }
        // Session changes that never committed are undone: the next role's tracker starts
        // from the committed session table, as ZooKeeper's does.
        for f in std::mem::take(&mut self.in_flight) {
            match f.record.txn {
                Txn::CreateSession { .. } => self.sessions.remove(f.record.header.client_id),
                Txn::CloseSession { .. } => self.sessions.reopen(f.record.header.client_id, self.now_ms),
                _ => {}
            }
        }
        self.reset_pipeline();
        self.audit_pending.clear();
        // Local sessions live only as long as the server that made them.
        self.local.clear();
        if !matches!(self.role(), Role::NotServing | Role::Standalone) {
            tracing::info!(role = self.role().name(), "stopped serving clients");
        }
        // The role's own state (owners, syncs, revalidations, touches) goes with it.
        self.role = RoleState::NotServing;
    }

    /// Forgets every write in flight: prep starts again from the tree.
    fn reset_pipeline(&mut self) {
        self.in_flight.clear();
        self.outstanding = Outstanding::default();
        self.last_zxid = self.tree.last_processed_zxid();
        self.predicted_digest = self.tree.options().digest_enabled.then(|| self.tree.digest());
    }
}

/// The ops a read-only server refuses with NotReadOnly (ReadOnlyRequestProcessor's list; a
/// local session's close is handled before).
fn not_read_only(op: OpCode) -> bool {
    op.is_client_write() || matches!(op, OpCode::Sync | OpCode::Check)
}

/// Whether a request creates an ephemeral node (a create / create2 of an ephemeral mode, or
/// a multi with one): what makes a local session upgrade. An unreadable body is not; prep
/// answers it.
fn creates_ephemeral(op: OpCode, body: &[u8]) -> bool {
    use rzk_proto::client::Request;
    let ephemeral = |flags: i32| rzk_proto::CreateMode::from_code(flags).is_some_and(|m| m.is_ephemeral());
    match op {
        OpCode::Create | OpCode::Create2 => match Request::decode(op.code(), body) {
            Ok(Request::Create(r)) => ephemeral(r.flags),
            _ => false,
        },
        OpCode::Multi => match Request::decode(op.code(), body) {
            Ok(Request::Multi(ops)) => ops.iter().any(|o| matches!(o, Request::Create(r) if ephemeral(r.flags))),
            _ => false,
        },
        _ => false,
    }
}

/// An address as the `ip` scheme's id has it: dotted decimal for IPv4, written without the
/// formatting machinery (every connection gets one, and `Display` for `Ipv4Addr` cost more
/// than a thousand instructions of each short session's work).
pub(crate) fn ip_text(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push((b'0' + o / 100) as char);
                }
                if o >= 10 {
                    s.push((b'0' + o / 10 % 10) as char);
                }
                s.push((b'0' + o % 10) as char);
            }
            s
        }
        std::net::IpAddr::V6(_) => ip.to_string(),
    }
}

#[cfg(test)]
#[path = "ensemble_tests.rs"]
mod ensemble_tests;

#[cfg(test)]
mod ip_text_tests {
    #[test]
    fn ip_text_is_display_for_every_octet() {
        for o in 0..=255u8 {
            for ip in [[o, 0, 10, 255], [127, o, 1, 9], [1, 22, o, 100], [200, 3, 45, o]] {
                let ip = std::net::IpAddr::from(ip);
                assert_eq!(super::ip_text(ip), ip.to_string());
            }
        }
        let v6: std::net::IpAddr = "::1".parse().unwrap();
        assert_eq!(super::ip_text(v6), "::1");
    }
}
