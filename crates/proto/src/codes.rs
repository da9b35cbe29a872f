//! ZooKeeper's numeric codes: op codes (`ZooDefs.OpCode`), error codes (`KeeperException.Code`),
//! watcher event types and keeper states, create modes, watcher types and add-watch modes,
//! and the special xids.

/// Special xids of the client protocol.
pub mod xid {
    /// A watch event pushed by the server.
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

macro_rules! int_enum {
    ($(#[$m:meta])* pub enum $name:ident { $( $(#[$vm:meta])* $v:ident = $n:expr ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vm])* $v ),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub fn code(self) -> i32 {
                match self { $( $name::$v => $n ),* }
            }
            pub fn from_code(c: i32) -> Option<$name> {
                match c { $( $n => Some($name::$v), )* _ => None }
            }
        }
    };
}

int_enum! {
    /// `ZooDefs.OpCode`.
    pub enum OpCode {
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        Error = -1,
    }
}

impl OpCode {
    /// A write: the op changes the tree or the session table, so it takes a zxid and goes
    /// through the quorum (prep → propose → commit → apply). ZooKeeper's `Request.isQuorum`
    /// for a global session (rzk has no local sessions), and the txn types `DataTree.apply`
    /// takes. `Error` is the txn a failed write becomes.
    pub fn is_write(self) -> bool {
        use OpCode::*;
        matches!(
            self,
            Create
                | Create2
                | CreateContainer
                | CreateTtl
                | Delete
                | DeleteContainer
                | SetData
                | SetAcl
                | Check
                | Multi
                | Reconfig
                | CreateSession
                | CloseSession
                | Error
        )
    }

    /// A write that a client sends as a request (and a learner forwards to its leader):
    /// [`is_write`](Self::is_write) less the ops only a server issues. `createSession` comes
    /// from the connect handshake, not a request; `deleteContainer` from the container
    /// manager (rzk does not take it from a client); `error` is a failed write's txn.
    pub fn is_client_write(self) -> bool {
        self.is_write() && !matches!(self, OpCode::CreateSession | OpCode::DeleteContainer | OpCode::Error)
    }

    /// ZooKeeper's name for the op, as `cons`/`dump` and logs print it.
    pub fn name(self) -> &'static str {
        use OpCode::*;
        match self {
            Notification => "notification",
            Create => "create",
            Delete => "delete",
            Exists => "exists",
            GetData => "getData",
            SetData => "setData",
            GetAcl => "getACL",
            SetAcl => "setACL",
            GetChildren => "getChildren",
            Sync => "sync",
            Ping => "ping",
            GetChildren2 => "getChildren2",
            Check => "check",
            Multi => "multi",
            Create2 => "create2",
            Reconfig => "reconfig",
            CheckWatches => "checkWatches",
            RemoveWatches => "removeWatches",
            CreateContainer => "createContainer",
            DeleteContainer => "deleteContainer",
            CreateTtl => "createTTL",
            MultiRead => "multiRead",
            Auth => "auth",
            SetWatches => "setWatches",
            Sasl => "sasl",
            GetEphemerals => "getEphemerals",
            GetAllChildrenNumber => "getAllChildrenNumber",
            SetWatches2 => "setWatches2",
            AddWatch => "addWatch",
            WhoAmI => "whoAmI",
            CreateSession => "createSession",
            CloseSession => "closeSession",
            Error => "error",
        }
    }
}

int_enum! {
    /// `KeeperException.Code`.
    pub enum ErrorCode {
        Ok = 0,
        SystemError = -1,
        RuntimeInconsistency = -2,
        DataInconsistency = -3,
        ConnectionLoss = -4,
        MarshallingError = -5,
        Unimplemented = -6,
        OperationTimeout = -7,
        BadArguments = -8,
        UnknownSession = -12,
        NewConfigNoQuorum = -13,
        ReconfigInProgress = -14,
        ApiError = -100,
        NoNode = -101,
        NoAuth = -102,
        BadVersion = -103,
        NoChildrenForEphemerals = -108,
        NodeExists = -110,
        NotEmpty = -111,
        SessionExpired = -112,
        InvalidCallback = -113,
        InvalidAcl = -114,
        AuthFailed = -115,
        SessionMoved = -118,
        NotReadOnly = -119,
        EphemeralOnLocalSession = -120,
        NoWatcher = -121,
        RequestTimeout = -122,
        ReconfigDisabled = -123,
        SessionClosedRequireSaslAuth = -124,
        QuotaExceeded = -125,
        Throttled = -127,
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

int_enum! {
    /// `Watcher.Event.EventType`.
    pub enum EventType {
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// `Watcher.Event.KeeperState`.
    pub enum KeeperState {
        Disconnected = 0,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Expired = -112,
        Closed = 7,
    }
}

int_enum! {
    /// `Watcher.WatcherType`, as checkWatches and removeWatches carry it.
    pub enum WatcherType {
        Children = 1,
        Data = 2,
        Any = 3,
        Persistent = 4,
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// `AddWatchMode`.
    pub enum AddWatchMode {
        Persistent = 0,
        PersistentRecursive = 1,
    }
}

int_enum! {
    /// `CreateMode`, the `flags` of a create request.
    pub enum CreateMode {
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
        Container = 4,
        PersistentWithTtl = 5,
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }
    pub fn is_sequential(self) -> bool {
        matches!(self, CreateMode::PersistentSequential | CreateMode::EphemeralSequential | CreateMode::PersistentSequentialWithTtl)
    }
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_code(op.code()), Some(*op));
        }
        for e in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(e.code()), Some(*e));
        }
        assert_eq!(OpCode::from_code(10), None);
        assert_eq!(ErrorCode::NoNode.code(), -101);
    }

    #[test]
    fn writes_are_zookeepers_quorum_ops() {
        use OpCode::*;
        let writes: Vec<OpCode> = OpCode::ALL.iter().copied().filter(|o| o.is_write()).collect();
        let expected = [
            Create,
            Delete,
            SetData,
            SetAcl,
            Check,
            Multi,
            Create2,
            Reconfig,
            CreateContainer,
            DeleteContainer,
            CreateTtl,
            CreateSession,
            CloseSession,
            Error,
        ];
        assert_eq!(writes, expected);
        let client: Vec<OpCode> = OpCode::ALL.iter().copied().filter(|o| o.is_client_write()).collect();
        assert_eq!(client, [Create, Delete, SetData, SetAcl, Check, Multi, Create2, Reconfig, CreateContainer, CreateTtl, CloseSession]);
        for read in [Exists, GetData, GetAcl, GetChildren, GetChildren2, Sync, Ping, MultiRead, SetWatches, AddWatch, WhoAmI] {
            assert!(!read.is_write(), "{}", read.name());
        }
    }
}
