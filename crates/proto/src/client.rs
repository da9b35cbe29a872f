//! The client protocol of `org.apache.zookeeper.proto`: the connect handshake, request and
//! reply headers, every request and response record, multi, and watch notifications.
//!
//! [`Request`] decodes a request body given its op code; [`Response`] encodes a reply body.
//! Both also go the other way, for clients, tools and golden-vector tests.

use crate::codes::OpCode;
use crate::data::{Acl, SessionId, Stat, Zxid};
use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::jute_record;

/// The first frame a client sends. New clients append a `readOnly` byte; old ones do not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: Zxid,
    pub timeout_ms: i32,
    pub session_id: SessionId,
    pub passwd: Vec<u8>,
    /// `None` for an old client that sent no readOnly byte.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    pub fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen.0);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id.0);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = r.read_i32()?;
        let last_zxid_seen = Zxid(r.read_i64()?);
        let timeout_ms = r.read_i32()?;
        let session_id = SessionId(r.read_i64()?);
        let passwd = r.read_buffer()?;
        let read_only = if r.is_empty() { None } else { Some(r.read_bool()?) };
        Ok(ConnectRequest { protocol_version, last_zxid_seen, timeout_ms, session_id, passwd, read_only })
    }
}

/// The server's answer to [`ConnectRequest`]; `read_only` is written only for new clients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: SessionId,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    pub fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id.0);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = r.read_i32()?;
        let timeout_ms = r.read_i32()?;
        let session_id = SessionId(r.read_i64()?);
        let passwd = r.read_buffer()?;
        let read_only = if r.is_empty() { None } else { Some(r.read_bool()?) };
        Ok(ConnectResponse { protocol_version, timeout_ms, session_id, passwd, read_only })
    }
}

jute_record! {
    pub struct RequestHeader {
        pub xid: i32,
        pub op: i32,
    }
}

jute_record! {
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: Zxid,
        pub err: i32,
    }
}

jute_record! {
    pub struct MultiHeader {
        pub op: i32,
        pub done: bool,
        pub err: i32,
    }
}

jute_record! {
    pub struct AuthPacket {
        pub auth_type: i32,
        pub scheme: String,
        pub auth: Vec<u8>,
    }
}

jute_record! {
    /// A watch notification, sent with xid -1.
    pub struct WatcherEvent {
        pub event_type: i32,
        pub state: i32,
        pub path: String,
    }
}

jute_record! {
    /// Covers both SetWatches (without the last two vectors) and SetWatches2.
    pub struct SetWatches2 {
        pub relative_zxid: Zxid,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
    }
}

jute_record! {
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}

jute_record! {
    pub struct DeleteRequest {
        pub path: String,
        pub version: i32,
    }
}

jute_record! {
    /// GetDataRequest, ExistsRequest, GetChildrenRequest and GetChildren2Request share this shape.
    pub struct PathWatchRequest {
        pub path: String,
        pub watch: bool,
    }
}

jute_record! {
    /// SyncRequest, GetACLRequest, GetAllChildrenNumberRequest, GetEphemeralsRequest,
    /// DeleteContainer and CreateResponse/SyncResponse share this shape.
    pub struct PathRequest {
        pub path: String,
    }
}

jute_record! {
    pub struct SetDataRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub version: i32,
    }
}

jute_record! {
    pub struct SetAclRequest {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

jute_record! {
    pub struct CheckVersionRequest {
        pub path: String,
        pub version: i32,
    }
}

jute_record! {
    /// CheckWatchesRequest and RemoveWatchesRequest.
    pub struct WatchesRequest {
        pub path: String,
        pub watcher_type: i32,
    }
}

jute_record! {
    pub struct AddWatchRequest {
        pub path: String,
        pub mode: i32,
    }
}

jute_record! {
    pub struct ReconfigRequest {
        /// null: not given (ZooKeeper tells it from "").
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        /// The configuration version the change applies to; -1: whatever is current.
        pub cur_config_id: i64,
    }
}

jute_record! {
    pub struct ClientInfo {
        pub auth_scheme: String,
        pub user: String,
    }
}

/// A create of any kind: create, create2, createContainer or createTTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// Which op carried it: Create, Create2, CreateContainer or CreateTtl.
    pub op: OpCode,
    pub path: String,
    /// `None` when the client sent a null buffer (ZooKeeper keeps null apart from empty).
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    /// Present for CreateTtl only.
    pub ttl: Option<i64>,
}

/// A decoded client request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(Create),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<Request>),
    MultiRead(Vec<Request>),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    Auth(AuthPacket),
    /// SetWatches (op 101) has no persistent vectors; they decode empty.
    SetWatches(SetWatches2),
    SetWatches2(SetWatches2),
    AddWatch(AddWatchRequest),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    WhoAmI,
    CloseSession,
    Sasl(Vec<u8>),
    Reconfig(ReconfigRequest),
    /// Op codes the server knows but a client may not send (deleteContainer, createSession...).
    Other(OpCode),
}

impl Request {
    pub fn op(&self) -> OpCode {
        use Request::*;
        match self {
            Create(c) => c.op,
            Delete(_) => OpCode::Delete,
            Exists(_) => OpCode::Exists,
            GetData(_) => OpCode::GetData,
            SetData(_) => OpCode::SetData,
            GetAcl(_) => OpCode::GetAcl,
            SetAcl(_) => OpCode::SetAcl,
            GetChildren(_) => OpCode::GetChildren,
            GetChildren2(_) => OpCode::GetChildren2,
            Sync(_) => OpCode::Sync,
            Ping => OpCode::Ping,
            Check(_) => OpCode::Check,
            Multi(_) => OpCode::Multi,
            MultiRead(_) => OpCode::MultiRead,
            CheckWatches(_) => OpCode::CheckWatches,
            RemoveWatches(_) => OpCode::RemoveWatches,
            Auth(_) => OpCode::Auth,
            SetWatches(_) => OpCode::SetWatches,
            SetWatches2(_) => OpCode::SetWatches2,
            AddWatch(_) => OpCode::AddWatch,
            GetEphemerals(_) => OpCode::GetEphemerals,
            GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            WhoAmI => OpCode::WhoAmI,
            CloseSession => OpCode::CloseSession,
            Sasl(_) => OpCode::Sasl,
            Reconfig(_) => OpCode::Reconfig,
            Other(op) => *op,
        }
    }

    /// The path the request names, if it names one.
    pub fn path(&self) -> Option<&str> {
        use Request::*;
        match self {
            Create(c) => Some(&c.path),
            Delete(r) => Some(&r.path),
            Exists(r) | GetData(r) | GetChildren(r) | GetChildren2(r) => Some(&r.path),
            SetData(r) => Some(&r.path),
            GetAcl(r) | Sync(r) | GetEphemerals(r) | GetAllChildrenNumber(r) => Some(&r.path),
            SetAcl(r) => Some(&r.path),
            Check(r) => Some(&r.path),
            CheckWatches(r) | RemoveWatches(r) => Some(&r.path),
            AddWatch(r) => Some(&r.path),
            _ => None,
        }
    }

    /// Decodes the body of a request whose header carried `op`.
    pub fn decode(op: i32, body: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(body);
        Self::read_body(op, &mut r)
    }

    fn read_body(op: i32, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        let code = OpCode::from_code(op).ok_or(DecodeError::UnknownOpCode(op))?;
        use OpCode as O;
        // A request that starts with a path fails in ZooKeeper when that path is null (a
        // NullPointerException, answered as MarshallingError). Sync echoes it; setData, setACL
        // and check validate it first (BadArguments, as for the empty path it decodes to).
        let path_first = !matches!(
            code,
            O::SetData
                | O::SetAcl
                | O::Check
                | O::Ping
                | O::Multi
                | O::MultiRead
                | O::Auth
                | O::SetWatches
                | O::SetWatches2
                | O::WhoAmI
                | O::CloseSession
                | O::Sasl
                | O::Reconfig
                | O::Sync
                | O::Notification
                | O::CreateSession
                | O::Error
                | O::AddWatch
        );
        if path_first && r.rest().get(..4) == Some(&[0xff, 0xff, 0xff, 0xff][..]) {
            return Err(DecodeError::Invalid("null path"));
        }
        Ok(match code {
            O::Create | O::Create2 | O::CreateContainer => {
                let c = CreateRequest::read(r)?;
                Request::Create(Create { op: code, path: c.path, data: c.data, acl: c.acl, flags: c.flags, ttl: None })
            }
            O::CreateTtl => {
                let c = CreateTtlRequest::read(r)?;
                Request::Create(Create { op: code, path: c.path, data: c.data, acl: c.acl, flags: c.flags, ttl: Some(c.ttl) })
            }
            O::Delete => Request::Delete(DeleteRequest::read(r)?),
            O::Exists => Request::Exists(PathWatchRequest::read(r)?),
            O::GetData => Request::GetData(PathWatchRequest::read(r)?),
            O::SetData => Request::SetData(SetDataRequest::read(r)?),
            O::GetAcl => Request::GetAcl(PathRequest::read(r)?),
            O::SetAcl => Request::SetAcl(SetAclRequest::read(r)?),
            O::GetChildren => Request::GetChildren(PathWatchRequest::read(r)?),
            O::GetChildren2 => Request::GetChildren2(PathWatchRequest::read(r)?),
            O::Sync => Request::Sync(PathRequest::read(r)?),
            O::Ping => Request::Ping,
            O::Check => Request::Check(CheckVersionRequest::read(r)?),
            O::Multi | O::MultiRead => {
                let ops = read_multi_ops(r, code == O::MultiRead)?;
                if code == O::Multi {
                    Request::Multi(ops)
                } else {
                    Request::MultiRead(ops)
                }
            }
            O::CheckWatches => Request::CheckWatches(WatchesRequest::read(r)?),
            O::RemoveWatches => Request::RemoveWatches(WatchesRequest::read(r)?),
            O::Auth => Request::Auth(AuthPacket::read(r)?),
            O::SetWatches => {
                let relative_zxid = Zxid(r.read_i64()?);
                let data_watches = r.read_vec()?;
                let exist_watches = r.read_vec()?;
                let child_watches = r.read_vec()?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid,
                    data_watches,
                    exist_watches,
                    child_watches,
                    persistent_watches: vec![],
                    persistent_recursive_watches: vec![],
                })
            }
            O::SetWatches2 => Request::SetWatches2(SetWatches2::read(r)?),
            // ZooKeeper registers a null path's watch under a null key that no change ever
            // fires, and answers OK; it decodes here as the empty path, which no node has either.
            O::AddWatch if r.rest().get(..4) == Some(&[0xff, 0xff, 0xff, 0xff][..]) => {
                r.read_i32()?;
                Request::AddWatch(AddWatchRequest { path: String::new(), mode: r.read_i32()? })
            }
            O::AddWatch => Request::AddWatch(AddWatchRequest::read(r)?),
            O::GetEphemerals => Request::GetEphemerals(PathRequest::read(r)?),
            O::GetAllChildrenNumber => Request::GetAllChildrenNumber(PathRequest::read(r)?),
            O::WhoAmI => Request::WhoAmI,
            O::CloseSession => Request::CloseSession,
            O::Sasl => Request::Sasl(r.read_buffer()?),
            O::Reconfig => Request::Reconfig(ReconfigRequest::read(r)?),
            O::Notification | O::DeleteContainer | O::CreateSession | O::Error => Request::Other(code),
        })
    }

    /// Encodes the request body (without the RequestHeader).
    pub fn write(&self, w: &mut Writer) {
        use Request::*;
        match self {
            Create(c) => {
                w.write_string(&c.path);
                w.write_buffer_opt(c.data.as_deref());
                w.write_vec(&c.acl);
                w.write_i32(c.flags);
                if c.op == OpCode::CreateTtl {
                    w.write_i64(c.ttl.unwrap_or(0));
                }
            }
            Delete(r) => r.write(w),
            Exists(r) | GetData(r) | GetChildren(r) | GetChildren2(r) => r.write(w),
            SetData(r) => r.write(w),
            GetAcl(r) | Sync(r) | GetEphemerals(r) | GetAllChildrenNumber(r) => r.write(w),
            SetAcl(r) => r.write(w),
            Check(r) => r.write(w),
            Multi(ops) | MultiRead(ops) => {
                for op in ops {
                    MultiHeader { op: op.op().code(), done: false, err: -1 }.write(w);
                    op.write(w);
                }
                MultiHeader { op: -1, done: true, err: -1 }.write(w);
            }
            CheckWatches(r) | RemoveWatches(r) => r.write(w),
            Auth(a) => a.write(w),
            SetWatches(s) => {
                w.write_i64(s.relative_zxid.0);
                w.write_vec(&s.data_watches);
                w.write_vec(&s.exist_watches);
                w.write_vec(&s.child_watches);
            }
            SetWatches2(s) => s.write(w),
            AddWatch(a) => a.write(w),
            Sasl(t) => w.write_buffer(t),
            Reconfig(r) => r.write(w),
            Ping | WhoAmI | CloseSession | Other(_) => {}
        }
    }
}

/// Ops allowed inside a multi: create (all kinds), delete, setData, check.
/// Ops allowed inside a multiRead: getChildren, getData.
fn read_multi_ops(r: &mut Reader<'_>, read_only: bool) -> Result<Vec<Request>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let allowed: &[OpCode] = if read_only {
            &[OpCode::GetChildren, OpCode::GetData]
        } else {
            &[OpCode::Create, OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl, OpCode::Delete, OpCode::SetData, OpCode::Check]
        };
        match OpCode::from_code(h.op) {
            Some(op) if allowed.contains(&op) => ops.push(Request::read_body(h.op, r)?),
            _ => return Err(DecodeError::Invalid("op not allowed in multi")),
        }
    }
}

/// One member's result in a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create { path: String },
    Create2 { path: String, stat: Stat },
    Delete,
    SetData { stat: Stat },
    Check,
    GetChildren { children: Vec<String> },
    GetData { data: Option<Vec<u8>>, stat: Stat },
    Error { err: i32 },
}

impl OpResult {
    fn op_code(&self) -> OpCode {
        match self {
            OpResult::Create { .. } => OpCode::Create,
            OpResult::Create2 { .. } => OpCode::Create2,
            OpResult::Delete => OpCode::Delete,
            OpResult::SetData { .. } => OpCode::SetData,
            OpResult::Check => OpCode::Check,
            OpResult::GetChildren { .. } => OpCode::GetChildren,
            OpResult::GetData { .. } => OpCode::GetData,
            OpResult::Error { .. } => OpCode::Error,
        }
    }
}

/// A decoded or to-be-encoded reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, check, ping, auth, setWatches, removeWatches, checkWatches,
    /// closeSession, and every error reply.
    Empty,
    /// ErrorResponse: the body of a successful addWatch reply (always 0), which the Java
    /// client reads and fails without.
    ErrorResponse(i32),
    /// CreateResponse and SyncResponse.
    Path(String),
    Create2 {
        path: String,
        stat: Stat,
    },
    /// ExistsResponse, SetDataResponse, SetACLResponse.
    Stat(Stat),
    GetData {
        data: Option<Vec<u8>>,
        stat: Stat,
    },
    GetAcl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    Children(Vec<String>),
    Children2 {
        children: Vec<String>,
        stat: Stat,
    },
    Multi(Vec<OpResult>),
    /// GetEphemeralsResponse.
    Paths(Vec<String>),
    AllChildrenNumber(i32),
    WhoAmI(Vec<ClientInfo>),
    /// SetSASLResponse.
    Sasl(Vec<u8>),
    /// Bytes written as they are (e.g. a SyncResponse echoing the request's path field).
    Raw(Vec<u8>),
}

/// Encoded size of a Stat.
const STAT_LEN: usize = 68;

impl Response {
    /// About the encoded size (at least it for the common replies), so a reply's buffer is
    /// allocated once rather than grown (growing cost three reallocations per reply).
    pub fn size_hint(&self) -> usize {
        let strings = |v: &[String]| 4 + v.iter().map(|c| 4 + c.len()).sum::<usize>();
        match self {
            Response::Empty | Response::ErrorResponse(_) | Response::AllChildrenNumber(_) => 4,
            Response::Path(p) => 4 + p.len(),
            Response::Create2 { path, .. } => 4 + path.len() + STAT_LEN,
            Response::Stat(_) => STAT_LEN,
            Response::GetData { data, .. } => 4 + data.as_ref().map_or(0, |d| d.len()) + STAT_LEN,
            Response::Children(c) | Response::Paths(c) => strings(c),
            Response::Children2 { children, .. } => strings(children) + STAT_LEN,
            Response::Sasl(b) | Response::Raw(b) => 4 + b.len(),
            Response::GetAcl { .. } | Response::Multi(_) | Response::WhoAmI(_) => 256,
        }
    }

    pub fn write(&self, w: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::ErrorResponse(e) => w.write_i32(*e),
            Response::Path(p) => w.write_string(p),
            Response::Create2 { path, stat } => {
                w.write_string(path);
                stat.write(w);
            }
            Response::Stat(s) => s.write(w),
            Response::GetData { data, stat } => {
                w.write_buffer_opt(data.as_deref());
                stat.write(w);
            }
            Response::GetAcl { acl, stat } => {
                w.write_vec(acl);
                stat.write(w);
            }
            Response::Children(c) | Response::Paths(c) => w.write_vec(c),
            Response::Children2 { children, stat } => {
                w.write_vec(children);
                stat.write(w);
            }
            Response::Multi(results) => {
                for res in results {
                    let err = if let OpResult::Error { err } = res { *err } else { 0 };
                    MultiHeader { op: res.op_code().code(), done: false, err }.write(w);
                    match res {
                        OpResult::Create { path } => w.write_string(path),
                        OpResult::Create2 { path, stat } => {
                            w.write_string(path);
                            stat.write(w);
                        }
                        OpResult::Delete | OpResult::Check => {}
                        OpResult::SetData { stat } => stat.write(w),
                        OpResult::GetChildren { children } => w.write_vec(children),
                        OpResult::GetData { data, stat } => {
                            w.write_buffer_opt(data.as_deref());
                            stat.write(w);
                        }
                        OpResult::Error { err } => w.write_i32(*err),
                    }
                }
                MultiHeader { op: -1, done: true, err: -1 }.write(w);
            }
            Response::AllChildrenNumber(n) => w.write_i32(*n),
            Response::WhoAmI(v) => w.write_vec(v),
            Response::Sasl(t) => w.write_buffer(t),
            Response::Raw(b) => w.write_raw(b),
        }
    }

    /// Decodes a successful reply body to a request of kind `op` (clients and tests).
    pub fn decode(op: OpCode, body: &[u8]) -> Result<Response, DecodeError> {
        let r = &mut Reader::new(body);
        use OpCode as O;
        Ok(match op {
            O::Create | O::Sync => Response::Path(r.read_string()?),
            O::Create2 | O::CreateContainer | O::CreateTtl => Response::Create2 { path: r.read_string()?, stat: Stat::read(r)? },
            O::Exists | O::SetData | O::SetAcl => Response::Stat(Stat::read(r)?),
            // A reconfig is answered with the new configuration as a GetDataResponse.
            O::GetData | O::Reconfig => Response::GetData { data: r.read_buffer_opt()?, stat: Stat::read(r)? },
            O::GetAcl => Response::GetAcl { acl: r.read_vec()?, stat: Stat::read(r)? },
            O::GetChildren => Response::Children(r.read_vec()?),
            O::GetChildren2 => Response::Children2 { children: r.read_vec()?, stat: Stat::read(r)? },
            O::Multi | O::MultiRead => {
                let mut results = Vec::new();
                loop {
                    let h = MultiHeader::read(r)?;
                    if h.done {
                        break;
                    }
                    results.push(match OpCode::from_code(h.op) {
                        Some(O::Create) => OpResult::Create { path: r.read_string()? },
                        // ZooKeeper heads a createTTL / createContainer result with its own op code and
                        // a Create2Response body.
                        Some(O::Create2 | O::CreateContainer | O::CreateTtl) => {
                            OpResult::Create2 { path: r.read_string()?, stat: Stat::read(r)? }
                        }
                        Some(O::Delete) => OpResult::Delete,
                        Some(O::SetData) => OpResult::SetData { stat: Stat::read(r)? },
                        Some(O::Check) => OpResult::Check,
                        Some(O::GetChildren) => OpResult::GetChildren { children: r.read_vec()? },
                        Some(O::GetData) => OpResult::GetData { data: r.read_buffer_opt()?, stat: Stat::read(r)? },
                        Some(O::Error) => OpResult::Error { err: r.read_i32()? },
                        _ => return Err(DecodeError::UnknownOpCode(h.op)),
                    });
                }
                Response::Multi(results)
            }
            O::GetEphemerals => Response::Paths(r.read_vec()?),
            O::GetAllChildrenNumber => Response::AllChildrenNumber(r.read_i32()?),
            O::WhoAmI => Response::WhoAmI(r.read_vec()?),
            O::Sasl => Response::Sasl(r.read_buffer()?),
            O::AddWatch => Response::ErrorResponse(r.read_i32()?),
            _ => Response::Empty,
        })
    }
}

/// Encodes a complete reply frame: length, ReplyHeader, body.
pub fn reply_frame(header: &ReplyHeader, body: &Response) -> Vec<u8> {
    // Length, then the ReplyHeader's xid, zxid and err.
    let mut w = Writer::for_frame_with_capacity(4 + 16 + body.size_hint());
    header.write(&mut w);
    body.write(&mut w);
    w.finish_frame()
}

/// Encodes a complete request frame: length, RequestHeader, body (clients and tests).
pub fn request_frame(xid: i32, req: &Request) -> Vec<u8> {
    let mut w = Writer::for_frame();
    RequestHeader { xid, op: req.op().code() }.write(&mut w);
    req.write(&mut w);
    w.finish_frame()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(req: Request) {
        let mut w = Writer::new();
        req.write(&mut w);
        let back = Request::decode(req.op().code(), w.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn reply_size_hint_covers_the_common_replies() {
        let stat = Stat::default();
        let replies = [
            Response::Empty,
            Response::Path("/a/b".into()),
            Response::Create2 { path: "/a".into(), stat: stat.clone() },
            Response::Stat(stat.clone()),
            Response::GetData { data: Some(vec![7; 300]), stat: stat.clone() },
            Response::GetData { data: None, stat: stat.clone() },
            Response::Children(vec!["x".into(), "yz".into()]),
            Response::Children2 { children: vec!["x".into()], stat },
            Response::AllChildrenNumber(3),
        ];
        for r in replies {
            let mut w = Writer::new();
            r.write(&mut w);
            assert!(r.size_hint() >= w.len(), "{r:?}: hint {} < {}", r.size_hint(), w.len());
        }
    }

    #[test]
    fn requests_round_trip() {
        round_trip(Request::Create(Create {
            op: OpCode::CreateTtl,
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 5,
            ttl: Some(1000),
        }));
        round_trip(Request::Multi(vec![
            Request::Check(CheckVersionRequest { path: "/a".into(), version: 1 }),
            Request::Delete(DeleteRequest { path: "/a".into(), version: -1 }),
        ]));
        round_trip(Request::SetWatches2(SetWatches2 {
            relative_zxid: Zxid(9),
            data_watches: vec!["/a".into()],
            persistent_recursive_watches: vec!["/".into()],
            ..Default::default()
        }));
    }

    #[test]
    fn multi_rejects_reads_inside_writes() {
        let mut w = Writer::new();
        MultiHeader { op: OpCode::GetData.code(), done: false, err: -1 }.write(&mut w);
        PathWatchRequest { path: "/a".into(), watch: false }.write(&mut w);
        MultiHeader { op: -1, done: true, err: -1 }.write(&mut w);
        assert!(Request::decode(OpCode::Multi.code(), w.as_slice()).is_err());
        assert!(Request::decode(OpCode::MultiRead.code(), w.as_slice()).is_ok());
    }

    #[test]
    fn connect_request_old_and_new() {
        let mut c = ConnectRequest { timeout_ms: 30000, passwd: vec![0; 16], ..Default::default() };
        let mut w = Writer::new();
        c.write(&mut w);
        assert_eq!(w.len(), 44);
        assert_eq!(ConnectRequest::read(&mut Reader::new(w.as_slice())).unwrap().read_only, None);
        c.read_only = Some(false);
        let mut w = Writer::new();
        c.write(&mut w);
        assert_eq!(w.len(), 45);
        assert_eq!(ConnectRequest::read(&mut Reader::new(w.as_slice())).unwrap(), c);
    }

    #[test]
    fn multi_response_round_trip() {
        let r = Response::Multi(vec![
            OpResult::Create { path: "/a".into() },
            OpResult::Error { err: -101 },
            OpResult::SetData { stat: Stat::default() },
        ]);
        let mut w = Writer::new();
        r.write(&mut w);
        assert_eq!(Response::decode(OpCode::Multi, w.as_slice()).unwrap(), r);
    }
}
