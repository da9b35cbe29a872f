//! The client's one error type: every `KeeperException.Code` a server can answer with, plus
//! the few failures that happen on the client's side (a bad connect string or path, a closed
//! client, a request that outlived its timeout).
//!
//! [`Error::code`] maps back to ZooKeeper's numeric code, so callers that speak ZooKeeper (the
//! CLI, logs) can print `KeeperErrorCode = NoNode` exactly as the Java client does.

use rzk_proto::ErrorCode;

/// A failed client operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // --- system errors (codes -1 .. -14): the operation may or may not have happened
    #[error("KeeperErrorCode = SystemError")]
    SystemError,
    #[error("KeeperErrorCode = RuntimeInconsistency")]
    RuntimeInconsistency,
    #[error("KeeperErrorCode = DataInconsistency")]
    DataInconsistency,
    /// The connection broke before the reply came. The request may have been applied.
    #[error("KeeperErrorCode = ConnectionLoss")]
    ConnectionLoss,
    #[error("KeeperErrorCode = MarshallingError")]
    MarshallingError,
    #[error("KeeperErrorCode = Unimplemented")]
    Unimplemented,
    #[error("KeeperErrorCode = OperationTimeout")]
    OperationTimeout,
    #[error("KeeperErrorCode = BadArguments")]
    BadArguments,
    #[error("KeeperErrorCode = UnknownSession")]
    UnknownSession,
    #[error("KeeperErrorCode = NewConfigNoQuorum")]
    NewConfigNoQuorum,
    #[error("KeeperErrorCode = ReconfigInProgress")]
    ReconfigInProgress,
    // --- API errors (codes -100 ..): the operation was refused
    #[error("KeeperErrorCode = APIError")]
    ApiError,
    #[error("KeeperErrorCode = NoNode")]
    NoNode,
    #[error("KeeperErrorCode = NoAuth")]
    NoAuth,
    #[error("KeeperErrorCode = BadVersion")]
    BadVersion,
    #[error("KeeperErrorCode = NoChildrenForEphemerals")]
    NoChildrenForEphemerals,
    #[error("KeeperErrorCode = NodeExists")]
    NodeExists,
    #[error("KeeperErrorCode = Directory not empty")]
    NotEmpty,
    /// The session is gone: its ephemerals are deleted and its watches will never fire.
    #[error("KeeperErrorCode = Session expired")]
    SessionExpired,
    #[error("KeeperErrorCode = InvalidCallback")]
    InvalidCallback,
    #[error("KeeperErrorCode = InvalidACL")]
    InvalidAcl,
    #[error("KeeperErrorCode = AuthFailed")]
    AuthFailed,
    #[error("KeeperErrorCode = Session moved")]
    SessionMoved,
    #[error("KeeperErrorCode = Not a read-only call")]
    NotReadOnly,
    #[error("KeeperErrorCode = Ephemeral node on local session")]
    EphemeralOnLocalSession,
    #[error("KeeperErrorCode = No such watcher")]
    NoWatcher,
    /// No reply within the request timeout (the request may still be applied).
    #[error("KeeperErrorCode = Request timeout")]
    RequestTimeout,
    #[error("KeeperErrorCode = Reconfig is disabled")]
    ReconfigDisabled,
    #[error("KeeperErrorCode = Session closed because client failed to authenticate")]
    SessionClosedRequireSaslAuth,
    #[error("KeeperErrorCode = Quota has exceeded")]
    QuotaExceeded,
    #[error("KeeperErrorCode = Throttled")]
    Throttled,
    /// A code this client does not know.
    #[error("KeeperErrorCode = Unknown error {0}")]
    Unknown(i32),

    // --- client-side errors (never sent by a server)
    /// The client was closed (by `close()` or because every handle was dropped).
    #[error("the client is closed")]
    Closed,
    #[error("invalid connect string {0:?}: {1}")]
    BadConnectString(String, &'static str),
    /// A path ZooKeeper would refuse (`PathUtils.validatePath`); nothing was sent.
    #[error("Invalid path string \"{path}\" caused by {reason}")]
    InvalidPath { path: String, reason: String },
    /// A persistent watch stream's consumer fell this many events behind; they were dropped,
    /// so re-read what the stream was tracking.
    #[error("watch stream lagged: {missed} events dropped")]
    Lagged { missed: u64 },
    /// One op of a multi failed; the multi was not applied. `index` is the op's position.
    #[error("multi op {index} failed: {source}")]
    Multi { index: usize, source: Box<Error> },
}

/// Results of client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error for a nonzero ZooKeeper error code.
    pub fn from_code(code: i32) -> Error {
        use ErrorCode as C;
        match ErrorCode::from_code(code) {
            Some(C::SystemError) => Error::SystemError,
            Some(C::RuntimeInconsistency) => Error::RuntimeInconsistency,
            Some(C::DataInconsistency) => Error::DataInconsistency,
            Some(C::ConnectionLoss) => Error::ConnectionLoss,
            Some(C::MarshallingError) => Error::MarshallingError,
            Some(C::Unimplemented) => Error::Unimplemented,
            Some(C::OperationTimeout) => Error::OperationTimeout,
            Some(C::BadArguments) => Error::BadArguments,
            Some(C::UnknownSession) => Error::UnknownSession,
            Some(C::NewConfigNoQuorum) => Error::NewConfigNoQuorum,
            Some(C::ReconfigInProgress) => Error::ReconfigInProgress,
            Some(C::ApiError) => Error::ApiError,
            Some(C::NoNode) => Error::NoNode,
            Some(C::NoAuth) => Error::NoAuth,
            Some(C::BadVersion) => Error::BadVersion,
            Some(C::NoChildrenForEphemerals) => Error::NoChildrenForEphemerals,
            Some(C::NodeExists) => Error::NodeExists,
            Some(C::NotEmpty) => Error::NotEmpty,
            Some(C::SessionExpired) => Error::SessionExpired,
            Some(C::InvalidCallback) => Error::InvalidCallback,
            Some(C::InvalidAcl) => Error::InvalidAcl,
            Some(C::AuthFailed) => Error::AuthFailed,
            Some(C::SessionMoved) => Error::SessionMoved,
            Some(C::NotReadOnly) => Error::NotReadOnly,
            Some(C::EphemeralOnLocalSession) => Error::EphemeralOnLocalSession,
            Some(C::NoWatcher) => Error::NoWatcher,
            Some(C::RequestTimeout) => Error::RequestTimeout,
            Some(C::ReconfigDisabled) => Error::ReconfigDisabled,
            Some(C::SessionClosedRequireSaslAuth) => Error::SessionClosedRequireSaslAuth,
            Some(C::QuotaExceeded) => Error::QuotaExceeded,
            Some(C::Throttled) => Error::Throttled,
            Some(C::Ok) | None => Error::Unknown(code),
        }
    }

    /// ZooKeeper's code for this error. Client-side errors map to the nearest code: a closed
    /// client to ConnectionLoss, a bad path or connect string to BadArguments.
    pub fn code(&self) -> i32 {
        use ErrorCode as C;
        let c = match self {
            Error::SystemError => C::SystemError,
            Error::RuntimeInconsistency => C::RuntimeInconsistency,
            Error::DataInconsistency => C::DataInconsistency,
            Error::ConnectionLoss | Error::Closed => C::ConnectionLoss,
            Error::MarshallingError => C::MarshallingError,
            Error::Unimplemented => C::Unimplemented,
            Error::OperationTimeout => C::OperationTimeout,
            Error::BadArguments | Error::BadConnectString(..) | Error::InvalidPath { .. } => C::BadArguments,
            Error::UnknownSession => C::UnknownSession,
            Error::NewConfigNoQuorum => C::NewConfigNoQuorum,
            Error::ReconfigInProgress => C::ReconfigInProgress,
            Error::ApiError => C::ApiError,
            Error::NoNode => C::NoNode,
            Error::NoAuth => C::NoAuth,
            Error::BadVersion => C::BadVersion,
            Error::NoChildrenForEphemerals => C::NoChildrenForEphemerals,
            Error::NodeExists => C::NodeExists,
            Error::NotEmpty => C::NotEmpty,
            Error::SessionExpired => C::SessionExpired,
            Error::InvalidCallback => C::InvalidCallback,
            Error::InvalidAcl => C::InvalidAcl,
            Error::AuthFailed => C::AuthFailed,
            Error::SessionMoved => C::SessionMoved,
            Error::NotReadOnly => C::NotReadOnly,
            Error::EphemeralOnLocalSession => C::EphemeralOnLocalSession,
            Error::NoWatcher => C::NoWatcher,
            Error::RequestTimeout => C::RequestTimeout,
            Error::ReconfigDisabled => C::ReconfigDisabled,
            Error::SessionClosedRequireSaslAuth => C::SessionClosedRequireSaslAuth,
            Error::QuotaExceeded => C::QuotaExceeded,
            Error::Throttled => C::Throttled,
            Error::Unknown(c) => return *c,
            Error::Lagged { .. } => C::SystemError,
            Error::Multi { source, .. } => return source.code(),
        };
        c.code()
    }

    /// True for errors after which the outcome of a write is unknown and the session may
    /// still be alive: retrying (idempotently) is the right reaction.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectionLoss | Error::OperationTimeout | Error::RequestTimeout | Error::Throttled)
    }

    /// True when the session is certainly gone (ephemerals deleted, watches dead).
    pub fn is_session_lost(&self) -> bool {
        matches!(self, Error::SessionExpired | Error::AuthFailed | Error::Closed | Error::SessionClosedRequireSaslAuth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_code_round_trips() {
        for c in ErrorCode::ALL {
            if *c == ErrorCode::Ok {
                continue;
            }
            assert_eq!(Error::from_code(c.code()).code(), c.code(), "{c:?}");
        }
        assert_eq!(Error::from_code(-999), Error::Unknown(-999));
        assert_eq!(Error::NoNode.to_string(), "KeeperErrorCode = NoNode");
        assert_eq!(Error::NotEmpty.to_string(), "KeeperErrorCode = Directory not empty");
    }
}
