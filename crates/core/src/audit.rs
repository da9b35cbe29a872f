//! The audit log's decisions, as ZooKeeper 3.8's `AuditHelper`, `AuditEvent` and
//! `ZKAuditProvider` make them: which committed writes are audited, with which fields, and the
//! message ZooKeeper's audit logger prints. Pure: the core hands each event out as
//! `Action::Audit`; the shell (`rzk_server::shell::audit`) stamps and writes the lines.
//!
//! Audited, on the server the client is connected to, once the write's txn is applied:
//! create (create, create2, createContainer, createTTL: `znode_type` is the create mode in
//! lower case), delete, setData, setAcl (`acl` is ZooKeeper's `ZKUtil.aclToString`), reconfig,
//! and each create / delete / setData member of a successful multi (a failed multi is one
//! `multiOperation` failure line); a request whose txn is an error is a `failure` with the
//! path it asked for. Every server also audits the ephemerals a closeSession deletes
//! (`ephemeralZNodeDeletionOnSessionCloseOrExpire`, as the server's user, with no ip), and the
//! shell audits `serverStart` / `serverStop`. `user` is the request's authenticated ids as
//! user names (ip → the address, digest → the name before `:`, x509 → the DN; `super` has no
//! user name), comma-separated, or absent when there is none.

use rzk_proto::client::Request;
use rzk_proto::txn::Txn;
use rzk_proto::{perms, Acl, CreateMode, Id, OpCode, SessionId};
use rzk_tree::TxnResult;

/// `AuditConstants`.
pub const OP_START: &str = "serverStart";
pub const OP_STOP: &str = "serverStop";
pub const OP_CREATE: &str = "create";
pub const OP_DELETE: &str = "delete";
pub const OP_SETDATA: &str = "setData";
pub const OP_SETACL: &str = "setAcl";
pub const OP_MULTI_OP: &str = "multiOperation";
pub const OP_RECONFIG: &str = "reconfig";
pub const OP_DEL_EZNODE_EXP: &str = "ephemeralZNodeDeletionOnSessionCloseOrExpire";

/// `AuditEvent.Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    Success,
    Failure,
    Invoked,
}

impl AuditResult {
    pub fn name(self) -> &'static str {
        match self {
            AuditResult::Success => "success",
            AuditResult::Failure => "failure",
            AuditResult::Invoked => "invoked",
        }
    }
}

/// One audit event: `AuditEvent`'s fields, each left out of the line when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub session: Option<String>,
    pub user: Option<String>,
    pub ip: Option<String>,
    pub operation: &'static str,
    pub znode: Option<String>,
    pub znode_type: Option<&'static str>,
    pub acl: Option<String>,
    pub result: AuditResult,
}

impl AuditEvent {
    /// The message ZooKeeper's `AuditEvent.toString` gives: `key=value` pairs joined by tabs
    /// in the order session, user, ip, operation, znode, znode_type, acl, then `result`.
    pub fn message(&self) -> String {
        let fields = [
            ("session", self.session.as_deref()),
            ("user", self.user.as_deref()),
            ("ip", self.ip.as_deref()),
            ("operation", Some(self.operation)),
            ("znode", self.znode.as_deref()),
            ("znode_type", self.znode_type),
            ("acl", self.acl.as_deref()),
        ];
        let mut out = String::new();
        for (k, v) in fields.iter().filter_map(|(k, v)| v.map(|v| (k, v))) {
            out.push_str(k);
            out.push('=');
            out.push_str(v);
            out.push('\t');
        }
        out.push_str("result=");
        out.push_str(self.result.name());
        out
    }

    /// `serverStart` / `serverStop` (`ZKAuditProvider.addZKStartStopAuditLog`): the server's
    /// user and the operation only.
    pub fn server(user: &str, operation: &'static str, result: AuditResult) -> AuditEvent {
        AuditEvent { session: None, user: Some(user.to_string()), ip: None, operation, znode: None, znode_type: None, acl: None, result }
    }
}

/// `ServerCnxn.getSessionIdHex`: `0x` and Java's `Long.toHexString`.
pub fn session_hex(session: SessionId) -> String {
    format!("0x{:x}", session.0 as u64)
}

/// Java's `String.hashCode` (over UTF-16 code units).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The ids in the order ZooKeeper's `ServerCnxn.authInfo` iterates them: it is a
/// `ConcurrentHashMap` key set, so by bucket (`Id.hashCode`, spread, masked by a table of 16
/// that doubles when three quarters full), and in insertion order within a bucket.
fn java_auth_info_order(ids: &[Id]) -> Vec<&Id> {
    let mut unique: Vec<&Id> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let mut table = 16usize;
    while unique.len() >= table - (table >> 2) {
        table *= 2;
    }
    let bucket = |id: &Id| {
        let h =
            37i32.wrapping_mul(37i32.wrapping_mul(17).wrapping_add(java_string_hash(&id.scheme))).wrapping_add(java_string_hash(&id.id));
        let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
        spread as usize & (table - 1)
    };
    unique.sort_by_key(|id| bucket(id));
    unique
}

/// `AuthUtil.getUsers`: each id's user name (`AuthenticationProvider.getUserName`), blank
/// ones dropped, joined by commas, in the order ZooKeeper keeps a connection's ids; `None`
/// when none is left.
pub fn users(ids: &[Id]) -> Option<String> {
    let names: Vec<&str> = java_auth_info_order(ids)
        .into_iter()
        .filter_map(|id| match id.scheme.as_str() {
            "digest" => Some(id.id.split(':').next().unwrap_or("")),
            // A sasl id is here only when its provider is configured (the caller's filter).
            "ip" | "x509" | "sasl" => Some(id.id.as_str()),
            // `super` (and any scheme without a provider) has no user name.
            _ => None,
        })
        .filter(|n| !n.trim().is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// `ZKUtil.aclToString`: `scheme:id:perms` for each ACL, with nothing between them.
pub fn acl_to_string(acl: &[Acl]) -> String {
    let mut s = String::new();
    for a in acl {
        s.push_str(&a.id.scheme);
        s.push(':');
        s.push_str(&a.id.id);
        s.push(':');
        for (bit, c) in [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')] {
            if a.perms & bit != 0 {
                s.push(c);
            }
        }
    }
    s
}

/// `CreateMode.toString().toLowerCase()`; `None` for flags no create mode has (ZooKeeper's
/// `fromFlag` throws, and the request is not audited).
pub fn create_mode_name(flags: i32) -> Option<&'static str> {
    Some(match CreateMode::from_code(flags)? {
        CreateMode::Persistent => "persistent",
        CreateMode::Ephemeral => "ephemeral",
        CreateMode::PersistentSequential => "persistent_sequential",
        CreateMode::EphemeralSequential => "ephemeral_sequential",
        CreateMode::Container => "container",
        CreateMode::PersistentWithTtl => "persistent_with_ttl",
        CreateMode::PersistentSequentialWithTtl => "persistent_sequential_with_ttl",
    })
}

/// What an audited request said, kept from its arrival to its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRequest {
    session: String,
    user: Option<String>,
    ip: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Create {
        path: String,
        mode: &'static str,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
    },
    SetAcl {
        path: String,
        acl: String,
    },
    /// The create mode of each create / create2 / createContainer member, by the path it asked
    /// for (`AuditHelper.getCreateModes`: a sequential or TTL member is not found there).
    Multi {
        create_modes: Vec<(String, &'static str)>,
    },
    Reconfig,
}

/// The audit record of a write request as it arrives, or `None` when the request is not
/// audited (reads, sync, closeSession, ...) or cannot be read (ZooKeeper's `AuditHelper`
/// fails to read it too and logs nothing). `ids` are the connection's authenticated ids when
/// the request came; `ip` its client's address.
pub fn request(session: SessionId, op: i32, body: &[u8], ids: &[Id], ip: &str) -> Option<AuditRequest> {
    let code = OpCode::from_code(op)?;
    let audited = matches!(
        code,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Multi
            | OpCode::Reconfig
    );
    if !audited {
        return None;
    }
    let kind = match Request::decode(op, body).ok()? {
        Request::Create(c) => Kind::Create { mode: create_mode_name(c.flags)?, path: c.path },
        Request::Delete(d) => Kind::Delete { path: d.path },
        Request::SetData(s) => Kind::SetData { path: s.path },
        Request::SetAcl(s) => Kind::SetAcl { acl: acl_to_string(&s.acl), path: s.path },
        Request::Multi(ops) => {
            let mut create_modes = Vec::new();
            for op in ops {
                if let Request::Create(c) = op {
                    if matches!(c.op, OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) {
                        create_modes.push((c.path, create_mode_name(c.flags)?));
                    }
                }
            }
            Kind::Multi { create_modes }
        }
        Request::Reconfig(_) => Kind::Reconfig,
        _ => return None,
    };
    Some(AuditRequest { session: session_hex(session), user: users(ids), ip: ip.to_string(), kind })
}

/// The path a txn acted on (ZooKeeper's `ProcessTxnResult.path`).
fn txn_path(txn: &Txn) -> Option<&str> {
    Some(match txn {
        Txn::Create { txn, .. } => &txn.path,
        Txn::CreateTtl(t) => &t.path,
        Txn::CreateContainer(t) => &t.path,
        Txn::Delete { path } | Txn::DeleteContainer { path } => path,
        Txn::SetData(t) => &t.path,
        Txn::SetAcl(t) => &t.path,
        Txn::Check(t) => &t.path,
        _ => return None,
    })
}

/// The events of an audited request once its txn is applied (`AuditHelper.addAuditLog`):
/// `txn` as logged (an error txn: the request failed in prep) and what applying it gave.
pub fn committed(req: &AuditRequest, txn: &Txn, result: &TxnResult) -> Vec<AuditEvent> {
    let failed_txn = matches!(txn, Txn::Error { .. });
    let event = |operation, znode: Option<&str>, znode_type, acl: Option<&str>, result| AuditEvent {
        session: Some(req.session.clone()),
        user: req.user.clone(),
        ip: Some(req.ip.clone()),
        operation,
        znode: znode.map(str::to_string),
        znode_type,
        acl: acl.map(str::to_string),
        result,
    };
    let outcome = if failed_txn || matches!(result, TxnResult::Error(_)) { AuditResult::Failure } else { AuditResult::Success };
    // The path: the request's when the txn is an error, else the txn's.
    let path = |asked: &str| if failed_txn { Some(asked.to_string()) } else { txn_path(txn).map(str::to_string) };
    match &req.kind {
        Kind::Create { path: p, mode } => vec![event(OP_CREATE, path(p).as_deref(), Some(*mode), None, outcome)],
        Kind::Delete { path: p } => vec![event(OP_DELETE, path(p).as_deref(), None, None, outcome)],
        Kind::SetData { path: p } => vec![event(OP_SETDATA, path(p).as_deref(), None, None, outcome)],
        Kind::SetAcl { path: p, acl } => vec![event(OP_SETACL, path(p).as_deref(), None, Some(acl), outcome)],
        Kind::Reconfig => vec![event(OP_RECONFIG, if failed_txn { None } else { txn_path(txn) }, None, None, outcome)],
        Kind::Multi { create_modes } => {
            let (Txn::Multi(members), TxnResult::Multi(results)) = (txn, result) else {
                // The whole multi failed before it became a multi txn.
                return vec![event(OP_MULTI_OP, None, None, None, AuditResult::Failure)];
            };
            let failed = members.iter().any(|t| matches!(t, Txn::Error { .. })) || results.iter().any(|r| matches!(r, TxnResult::Error(_)));
            if failed {
                return vec![event(OP_MULTI_OP, None, None, None, AuditResult::Failure)];
            }
            let mut out = Vec::new();
            for t in members {
                let p = txn_path(t);
                match t {
                    Txn::Create { .. } | Txn::CreateTtl(_) | Txn::CreateContainer(_) => {
                        let mode = create_modes.iter().find(|(asked, _)| Some(asked.as_str()) == p).map(|(_, m)| *m);
                        out.push(event(OP_CREATE, p, mode, None, AuditResult::Success));
                    }
                    Txn::Delete { .. } | Txn::DeleteContainer { .. } => out.push(event(OP_DELETE, p, None, None, AuditResult::Success)),
                    Txn::SetData(_) => out.push(event(OP_SETDATA, p, None, None, AuditResult::Success)),
                    _ => {}
                }
            }
            out
        }
    }
}

/// The ephemerals a closeSession deletes (`DataTree.deleteNodes`), on every server: each
/// path of the txn with whether it existed (deleted: success; missing: failure), as the
/// server's user, without ip.
pub fn ephemerals_deleted(session: SessionId, server_user: &str, paths: &[(String, bool)]) -> Vec<AuditEvent> {
    paths
        .iter()
        .map(|(path, existed)| AuditEvent {
            session: Some(session_hex(session)),
            user: Some(server_user.to_string()),
            ip: None,
            operation: OP_DEL_EZNODE_EXP,
            znode: Some(path.clone()),
            znode_type: None,
            acl: None,
            result: if *existed { AuditResult::Success } else { AuditResult::Failure },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::client::{Create, SetAclRequest};
    use rzk_proto::txn::{CreateTxn, SetDataTxn};
    use rzk_proto::{ErrorCode, Stat, Writer};

    fn body(r: &Request) -> Vec<u8> {
        let mut w = Writer::new();
        r.write(&mut w);
        w.into_inner()
    }

    fn ids() -> Vec<Id> {
        vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="), Id::new("super", "")]
    }

    fn create(path: &str, flags: i32) -> Create {
        Create { op: OpCode::Create, path: path.into(), data: Some(vec![]), acl: vec![], flags, ttl: None }
    }

    #[test]
    fn message_is_zookeepers() {
        let e = AuditEvent {
            session: Some("0x1".into()),
            user: Some("127.0.0.1".into()),
            ip: Some("127.0.0.1".into()),
            operation: OP_CREATE,
            znode: Some("/a".into()),
            znode_type: Some("persistent"),
            acl: None,
            result: AuditResult::Success,
        };
        assert_eq!(
            e.message(),
            "session=0x1\tuser=127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a\tznode_type=persistent\tresult=success"
        );
        assert_eq!(AuditEvent::server("zk", OP_STOP, AuditResult::Invoked).message(), "user=zk\toperation=serverStop\tresult=invoked");
    }

    #[test]
    fn users_acls_sessions() {
        // As ZooKeeper 3.8 printed them for bob:secret (its ids are a hash set): bucket 3, then
        // the ip in bucket 12.
        assert_eq!(users(&ids()).as_deref(), Some("bob,127.0.0.1"));
        assert_eq!(users(&[Id::new("super", "")]), None);
        assert_eq!(users(&[Id::new("sasl", "bob"), Id::new("super", "")]).as_deref(), Some("bob"));
        assert_eq!(session_hex(SessionId(0x100000a3b2c0000)), "0x100000a3b2c0000");
        assert_eq!(session_hex(SessionId(-1)), "0xffffffffffffffff");
        let acl = vec![
            Acl { perms: perms::ALL, id: Id::new("world", "anyone") },
            Acl { perms: perms::READ | perms::ADMIN, id: Id::new("digest", "bob:x=") },
        ];
        assert_eq!(acl_to_string(&acl), "world:anyone:cdrwadigest:bob:x=:ra");
        assert_eq!(create_mode_name(3), Some("ephemeral_sequential"));
        assert_eq!(create_mode_name(9), None);
    }

    #[test]
    fn a_create_and_its_failure() {
        let r = request(SessionId(1), OpCode::Create.code(), &body(&Request::Create(create("/a", 2))), &ids(), "127.0.0.1").unwrap();
        let txn = Txn::Create {
            txn: CreateTxn { path: "/a0000000001".into(), data: Some(vec![]), acl: vec![], ephemeral: false, parent_cversion: 1 },
            create2: false,
        };
        let ok = committed(&r, &txn, &TxnResult::Created { path: "/a0000000001".into(), stat: Stat::default() });
        assert_eq!(
            ok[0].message(),
            "session=0x1\tuser=bob,127.0.0.1\tip=127.0.0.1\toperation=create\tznode=/a0000000001\tznode_type=persistent_sequential\tresult=success"
        );
        let err = Txn::Error { err: ErrorCode::NodeExists.code() };
        let failed = committed(&r, &err, &TxnResult::Error(ErrorCode::NodeExists));
        assert_eq!(failed[0].znode.as_deref(), Some("/a"));
        assert_eq!(failed[0].result, AuditResult::Failure);
        // Reads and invalid flags are not audited.
        assert!(request(SessionId(1), OpCode::GetData.code(), &[], &ids(), "127.0.0.1").is_none());
        assert!(request(SessionId(1), OpCode::Create.code(), &body(&Request::Create(create("/a", 9))), &ids(), "127.0.0.1").is_none());
    }

    #[test]
    fn set_acl_carries_the_acl() {
        let req = SetAclRequest { path: "/a".into(), acl: vec![Acl { perms: perms::READ, id: Id::new("world", "anyone") }], version: -1 };
        let r = request(SessionId(2), OpCode::SetAcl.code(), &body(&Request::SetAcl(req)), &[], "::1").unwrap();
        let e = &committed(&r, &Txn::Error { err: ErrorCode::NoAuth.code() }, &TxnResult::Error(ErrorCode::NoAuth))[0];
        assert_eq!(e.message(), "session=0x2\tip=::1\toperation=setAcl\tznode=/a\tacl=world:anyone:r\tresult=failure");
    }

    #[test]
    fn multi_members_and_failure() {
        let ops = Request::Multi(vec![Request::Create(create("/m", 0)), Request::Create(create("/s", 2))]);
        let r = request(SessionId(3), OpCode::Multi.code(), &body(&ops), &[], "127.0.0.1").unwrap();
        let c = |p: &str| Txn::Create {
            txn: CreateTxn { path: p.into(), data: Some(vec![]), acl: vec![], ephemeral: false, parent_cversion: 1 },
            create2: false,
        };
        let set = Txn::SetData(SetDataTxn { path: "/m".into(), data: Some(vec![]), version: 1 });
        let txn = Txn::Multi(vec![c("/m"), c("/s0000000001"), set]);
        let res = TxnResult::Multi(vec![TxnResult::Deleted, TxnResult::Deleted, TxnResult::Deleted]);
        let lines: Vec<String> = committed(&r, &txn, &res).iter().map(AuditEvent::message).collect();
        assert_eq!(
            lines,
            [
                "session=0x3\tip=127.0.0.1\toperation=create\tznode=/m\tznode_type=persistent\tresult=success",
                "session=0x3\tip=127.0.0.1\toperation=create\tznode=/s0000000001\tresult=success",
                "session=0x3\tip=127.0.0.1\toperation=setData\tznode=/m\tresult=success",
            ]
        );
        let failed = Txn::Multi(vec![Txn::Error { err: 0 }, Txn::Error { err: ErrorCode::NoNode.code() }]);
        let res = TxnResult::Multi(vec![TxnResult::Error(ErrorCode::Ok), TxnResult::Error(ErrorCode::NoNode)]);
        let lines: Vec<String> = committed(&r, &failed, &res).iter().map(AuditEvent::message).collect();
        assert_eq!(lines, ["session=0x3\tip=127.0.0.1\toperation=multiOperation\tresult=failure"]);
    }

    #[test]
    fn ephemerals_of_a_closed_session() {
        let e = ephemerals_deleted(SessionId(5), "zookeeper", &[("/e".into(), true), ("/gone".into(), false)]);
        assert_eq!(
            e[0].message(),
            "session=0x5\tuser=zookeeper\toperation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/e\tresult=success"
        );
        assert_eq!(e[1].result, AuditResult::Failure);
    }
}
