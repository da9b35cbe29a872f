//! How zkCli prints things: Stats (with Java's `Date.toString`), ACLs and permission
//! strings, lists, and the messages of its errors; and the same values as JSON.

use rzk_client::{perms, Acl, Error, Stat};
use serde_json::{json, Value};

/// `ZKUtil.getPermString`: c d r w a, in that order.
pub fn perm_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Parses zkCli's ACL syntax: `scheme:id:perms[,scheme:id:perms...]` (the id may hold `:`).
pub fn parse_acl(s: &str) -> Option<Vec<Acl>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let first = part.find(':')?;
        let last = part.rfind(':')?;
        if first == last {
            return None;
        }
        let scheme = &part[..first];
        let id = &part[first + 1..last];
        let mut p = 0;
        for c in part[last + 1..].chars() {
            p |= match c.to_ascii_lowercase() {
                'r' => perms::READ,
                'w' => perms::WRITE,
                'c' => perms::CREATE,
                'd' => perms::DELETE,
                'a' => perms::ADMIN,
                _ => return None,
            };
        }
        out.push(Acl::new(p, scheme, id));
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

pub use rzk_proto::time::java_date;

/// zkCli's stat block.
pub fn stat_lines(s: &Stat) -> Vec<String> {
    vec![
        format!("cZxid = 0x{:x}", s.czxid.0),
        format!("ctime = {}", java_date(s.ctime)),
        format!("mZxid = 0x{:x}", s.mzxid.0),
        format!("mtime = {}", java_date(s.mtime)),
        format!("pZxid = 0x{:x}", s.pzxid.0),
        format!("cversion = {}", s.cversion),
        format!("dataVersion = {}", s.version),
        format!("aclVersion = {}", s.aversion),
        format!("ephemeralOwner = 0x{:x}", s.ephemeral_owner),
        format!("dataLength = {}", s.data_length),
        format!("numChildren = {}", s.num_children),
    ]
}

pub fn stat_json(s: &Stat) -> Value {
    json!({
        "czxid": s.czxid.0, "mzxid": s.mzxid.0, "pzxid": s.pzxid.0,
        "ctime": s.ctime, "mtime": s.mtime,
        "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
        "ephemeralOwner": s.ephemeral_owner, "dataLength": s.data_length, "numChildren": s.num_children,
    })
}

pub fn acl_lines(acl: &[Acl]) -> Vec<String> {
    acl.iter().flat_map(|a| [format!("'{},'{}", a.id.scheme, a.id.id), format!(": {}", perm_string(a.perms))]).collect()
}

pub fn acl_json(acl: &[Acl]) -> Value {
    Value::Array(acl.iter().map(|a| json!({"scheme": a.id.scheme, "id": a.id.id, "perms": perm_string(a.perms)})).collect())
}

/// Java's `List.toString()`: `[a, b]`.
pub fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// The message zkCli prints for a failed operation on `path` (`CliWrapperException`).
pub fn error_message(e: &Error, path: &str) -> String {
    match e {
        Error::NoNode => format!("Node does not exist: {path}"),
        Error::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        Error::NodeExists => format!("Node already exists: {path}"),
        Error::NotEmpty => format!("Node not empty: {path}"),
        Error::NotReadOnly => format!("Not a read-only call: {path}"),
        Error::InvalidAcl => format!("Acl is not valid : {path}"),
        Error::NoAuth => format!("Insufficient permission : {path}"),
        Error::BadArguments => format!("Arguments are not valid : {path}"),
        Error::BadVersion => format!("version No is not valid : {path}"),
        Error::InvalidPath { reason, .. } => reason.split(" @").next().unwrap_or(reason).to_owned(),
        Error::NoWatcher => format!("KeeperErrorCode = No such watcher for {path}"),
        Error::Multi { source, .. } => error_message(source, path),
        Error::Closed | Error::BadConnectString(..) | Error::Lagged { .. } => e.to_string(),
        other if path.is_empty() => other.to_string(),
        other => format!("{other} for {path}"),
    }
}

/// The error's ZooKeeper name, for JSON output.
pub fn error_name(e: &Error) -> String {
    match e {
        Error::InvalidPath { .. } => "InvalidPath".into(),
        Error::Closed => "Closed".into(),
        Error::BadConnectString(..) => "BadConnectString".into(),
        Error::Multi { source, .. } => error_name(source),
        other => format!("{other:?}").split(['(', ' ', '{']).next().unwrap_or("Error").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_java_prints_them() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_248_405_000), "Sat Nov 21 08:06:45 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn acls() {
        assert_eq!(perm_string(perms::ALL), "cdrwa");
        assert_eq!(perm_string(perms::READ | perms::ADMIN), "ra");
        let a = parse_acl("world:anyone:r,digest:u:hash=:cdrwa").unwrap();
        assert_eq!(a[0], Acl::new(perms::READ, "world", "anyone"));
        assert_eq!(a[1], Acl::new(perms::ALL, "digest", "u:hash="));
        assert!(parse_acl("world:anyone").is_none());
        assert!(parse_acl("world:anyone:x").is_none());
        assert_eq!(acl_lines(&a[..1]), ["'world,'anyone", ": r"]);
    }

    #[test]
    fn error_messages_as_zkcli() {
        assert_eq!(error_message(&Error::NoNode, "/a"), "Node does not exist: /a");
        assert_eq!(error_message(&Error::BadVersion, "/a"), "version No is not valid : /a");
        assert_eq!(error_message(&Error::NoWatcher, "/a"), "KeeperErrorCode = No such watcher for /a");
        assert_eq!(error_message(&Error::ConnectionLoss, "/a"), "KeeperErrorCode = ConnectionLoss for /a");
        assert_eq!(error_name(&Error::NoNode), "NoNode");
        assert_eq!(error_name(&Error::Unknown(-9)), "Unknown");
    }
}
