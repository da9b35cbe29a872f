//! The values the client API takes and returns: create options, multi ops and their results,
//! watch events, session states and the client's configuration.

use crate::error::Error;
use rzk_proto::{Acl, CreateMode, EventType, KeeperState, SessionId, Stat};
use std::time::Duration;

/// How to create a znode: its mode, ACL and (for TTL modes) time to live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    pub mode: CreateMode,
    pub acl: Vec<Acl>,
    /// Required for, and only allowed with, the TTL modes.
    pub ttl: Option<Duration>,
}

impl CreateOptions {
    /// A mode with the open ACL (`world:anyone`, all permissions).
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions { mode, acl: Acl::open_unsafe(), ttl: None }
    }
    pub fn persistent() -> Self {
        Self::new(CreateMode::Persistent)
    }
    pub fn ephemeral() -> Self {
        Self::new(CreateMode::Ephemeral)
    }
    pub fn persistent_sequential() -> Self {
        Self::new(CreateMode::PersistentSequential)
    }
    pub fn ephemeral_sequential() -> Self {
        Self::new(CreateMode::EphemeralSequential)
    }
    pub fn container() -> Self {
        Self::new(CreateMode::Container)
    }
    /// A persistent node (sequential if `sequential`) deleted by the server once it has had no
    /// children and no changes for `ttl`.
    pub fn with_ttl(ttl: Duration, sequential: bool) -> Self {
        let mode = if sequential { CreateMode::PersistentSequentialWithTtl } else { CreateMode::PersistentWithTtl };
        CreateOptions { mode, acl: Acl::open_unsafe(), ttl: Some(ttl) }
    }
    pub fn acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = acl;
        self
    }
}

/// One op of a [`multi`](crate::Client::multi) transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        options: CreateOptions,
    },
    /// `version` -1 matches any version.
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

impl Op {
    pub fn create(path: impl Into<String>, data: impl Into<Vec<u8>>, options: CreateOptions) -> Op {
        Op::Create { path: path.into(), data: data.into(), options }
    }
    pub fn delete(path: impl Into<String>, version: i32) -> Op {
        Op::Delete { path: path.into(), version }
    }
    pub fn set_data(path: impl Into<String>, data: impl Into<Vec<u8>>, version: i32) -> Op {
        Op::SetData { path: path.into(), data: data.into(), version }
    }
    pub fn check(path: impl Into<String>, version: i32) -> Op {
        Op::Check { path: path.into(), version }
    }
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. } | Op::Delete { path, .. } | Op::SetData { path, .. } | Op::Check { path, .. } => path,
        }
    }
}

/// The result of one op of a successful multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// `stat` is there for container and TTL creates (ZooKeeper answers plain creates in a
    /// multi with the path only).
    Create {
        path: String,
        stat: Option<Stat>,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
}

/// One read of a [`multi_read`](crate::Client::multi_read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetData(String),
    GetChildren(String),
}

/// The result of one read of a multiRead; each read succeeds or fails on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    Data { data: Vec<u8>, stat: Stat },
    Children(Vec<String>),
    Error(Error),
}

/// A watch notification (`org.apache.zookeeper.WatchedEvent`), with the path seen through
/// the chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    pub state: KeeperState,
    pub path: String,
}

impl std::fmt::Display for WatchedEvent {
    /// As the Java client prints it: `WatchedEvent state:SyncConnected type:NodeDeleted path:/a`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WatchedEvent state:{:?} type:{:?} path:{}", self.state, self.event_type, self.path)
    }
}

/// Where the session stands. Also delivered as events on
/// [`Client::session_events`](crate::Client::session_events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Looking for a server; no session yet.
    Connecting,
    /// Connected to a server that serves reads and writes.
    Connected,
    /// Connected to a read-only server (a minority partition): reads only.
    ConnectedReadOnly,
    /// The connection broke; the session lives on while the client reconnects, for at most
    /// the session timeout. Locks and leadership held are in doubt.
    Disconnected,
    /// The session is gone (the server said so, or the client was cut off for longer than the
    /// session timeout). Ephemerals are deleted, watches will not fire. Terminal.
    Expired,
    /// The server refused the credentials given to `add_auth`, or the SASL login. Terminal.
    AuthFailed,
    /// Closed by the application. Terminal.
    Closed,
}

impl SessionState {
    pub fn is_connected(self) -> bool {
        matches!(self, SessionState::Connected | SessionState::ConnectedReadOnly)
    }
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Expired | SessionState::AuthFailed | SessionState::Closed)
    }
    /// ZooKeeper's `KeeperState` for this state, as watchers see it.
    pub fn keeper_state(self) -> KeeperState {
        match self {
            SessionState::Connecting | SessionState::Disconnected => KeeperState::Disconnected,
            SessionState::Connected => KeeperState::SyncConnected,
            SessionState::ConnectedReadOnly => KeeperState::ConnectedReadOnly,
            SessionState::Expired => KeeperState::Expired,
            SessionState::AuthFailed => KeeperState::AuthFailed,
            SessionState::Closed => KeeperState::Closed,
        }
    }
    /// The error a request gets once the session is in this terminal state.
    pub(crate) fn terminal_error(self) -> Error {
        match self {
            SessionState::Expired => Error::SessionExpired,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        }
    }
}

/// A session's identity: enough to re-attach to it from another connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInfo {
    pub id: SessionId,
    pub password: Vec<u8>,
    /// The timeout the server granted (zero before the first connection).
    pub timeout: Duration,
}

/// Client settings. `Config::default()` matches the Java client's defaults where it has them.
#[derive(Debug, Clone)]
pub struct Config {
    /// The session timeout asked for; the server clamps it to its min/max.
    pub session_timeout: Duration,
    /// How long [`Client::connect`](crate::Client::connect) waits for the first session.
    pub connect_timeout: Duration,
    /// Default per-request timeout (`None`: wait until the reply, or until the session ends).
    pub request_timeout: Option<Duration>,
    /// Accept read-only servers (`canBeReadOnly`).
    pub read_only: bool,
    /// Re-attach to this session instead of creating one.
    pub session: Option<SessionInfo>,
    /// Credentials (`scheme`, `auth`) sent on every connection, before any request.
    pub auth: Vec<(String, Vec<u8>)>,
    /// Requests waiting to be sent (the bound of the request channel).
    pub queue_requests_max: usize,
    /// Requests sent and not yet answered.
    pub in_flight_requests_max: usize,
    /// The largest reply frame accepted; a larger one drops the connection.
    pub frame_bytes_max: usize,
    /// The first reconnection backoff; it doubles after each round over all servers.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Buffer of each persistent watch stream; a consumer this far behind gets `Error::Lagged`.
    pub watch_stream_events_max: usize,
    /// Connect over TLS with this configuration (see [`crate::TlsSettings`]); the server's
    /// certificate is checked against the host name or address connected to.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Log in with SASL DIGEST-MD5 on every connection, before anything else. A server that
    /// refuses the login ends the session in [`SessionState::AuthFailed`].
    pub sasl: Option<crate::sasl::SaslCredentials>,
    /// Log in with SASL GSSAPI (Kerberos) on every connection instead (wins over `sasl`).
    /// Needs the `kerberos` cargo feature; without it the session ends in AuthFailed.
    pub kerberos: Option<crate::kerberos::KerberosLogin>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            request_timeout: None,
            read_only: false,
            session: None,
            auth: Vec::new(),
            queue_requests_max: 1024,
            in_flight_requests_max: 1000,
            frame_bytes_max: 16 << 20,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            watch_stream_events_max: 1024,
            tls: None,
            sasl: None,
            kerberos: None,
        }
    }
}
