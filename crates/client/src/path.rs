//! Connect strings, chroots and path checks: pure functions, no I/O.
//!
//! A connect string is ZooKeeper's `host1:2181,host2:2181/optional/chroot`. The chroot is
//! prepended to every path a request names and stripped from every path a reply or watch
//! event carries, so an application rooted at `/app` sees `/app/x` as `/x`.
//!
//! Paths are checked before they are sent, with the rules of ZooKeeper's
//! `PathUtils.validatePath`, so a bad path fails fast with the message the Java client gives.

use crate::error::{Error, Result};

/// The default client port.
pub const DEFAULT_PORT: u16 = 2181;

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `(host, port)` in the order written; the session task shuffles them.
    pub hosts: Vec<(String, u16)>,
    /// `None` for no chroot (or `/`).
    pub chroot: Option<String>,
}

impl ConnectString {
    /// Parses `host[:port][,host[:port]...][/chroot]`. IPv6 hosts are written `[::1]:2181`.
    pub fn parse(s: &str) -> Result<ConnectString> {
        let bad = |why: &'static str| Error::BadConnectString(s.to_owned(), why);
        let s_trim = s.trim();
        let (host_part, chroot) = match s_trim.find('/') {
            Some(i) => (&s_trim[..i], Some(&s_trim[i..])),
            None => (s_trim, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                validate_path(c, false).map_err(|_| bad("the chroot is not a valid path"))?;
                Some(c.to_owned())
            }
        };
        let mut hosts = Vec::new();
        for part in host_part.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (host, port) = if let Some(rest) = part.strip_prefix('[') {
                let end = rest.find(']').ok_or_else(|| bad("unterminated [ in an IPv6 address"))?;
                let host = &rest[..end];
                let after = &rest[end + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse::<u16>().map_err(|_| bad("the port is not a number in 1..65535"))?,
                    None if after.is_empty() => DEFAULT_PORT,
                    None => return Err(bad("junk after ]")),
                };
                (host.to_owned(), port)
            } else {
                match part.rsplit_once(':') {
                    Some((h, p)) => (h.to_owned(), p.parse::<u16>().map_err(|_| bad("the port is not a number in 1..65535"))?),
                    None => (part.to_owned(), DEFAULT_PORT),
                }
            };
            if host.is_empty() {
                return Err(bad("empty host name"));
            }
            if port == 0 {
                return Err(bad("the port is not a number in 1..65535"));
            }
            hosts.push((host, port));
        }
        if hosts.is_empty() {
            return Err(bad("no host given"));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

/// Checks a path as ZooKeeper's `PathUtils.validatePath` does (`rzk_proto::path`, the rules
/// the server applies too). A sequential create's path may end in `/` (the server appends the
/// counter).
pub fn validate_path(path: &str, sequential: bool) -> Result<()> {
    rzk_proto::path::validate_create_path(path, sequential).map_err(|e| Error::InvalidPath { path: e.path, reason: e.reason })
}

/// The server-side path for a client path under `chroot`.
pub fn prepend_chroot(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        None => path.to_owned(),
        Some(root) if path == "/" => root.to_owned(),
        Some(root) => format!("{root}{path}"),
    }
}

/// The client-side path for a server path under `chroot` (the path itself if it is not
/// under the chroot, which only happens for paths outside the application's tree).
pub fn strip_chroot(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        None => path.to_owned(),
        Some(root) => match path.strip_prefix(root) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => path.to_owned(),
        },
    }
}

/// The parent of a path (`/` for a top-level node and for `/` itself).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `parent/child`, without doubling the slash under `/`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings() {
        let c = ConnectString::parse("a:1,b,[::1]:3/app/x").unwrap();
        assert_eq!(c.hosts, vec![("a".into(), 1), ("b".into(), 2181), ("::1".into(), 3)]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(ConnectString::parse("h:2181/").unwrap().chroot, None);
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("h:x").is_err());
        assert!(ConnectString::parse("h:0").is_err());
        assert!(ConnectString::parse("h:1/a/").is_err());
        assert!(ConnectString::parse(":1").is_err());
    }

    #[test]
    fn paths_map_to_the_clients_error() {
        // The rules themselves are tested in rzk_proto::path.
        validate_path("/a/", true).unwrap();
        match validate_path("/a//b", false) {
            Err(Error::InvalidPath { path, reason }) => {
                assert_eq!((path.as_str(), reason.as_str()), ("/a//b", "empty node name specified @3"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            validate_path("a", false).unwrap_err().to_string(),
            "Invalid path string \"a\" caused by Path must start with / character"
        );
    }

    #[test]
    fn chroot_both_ways() {
        assert_eq!(prepend_chroot(Some("/app"), "/"), "/app");
        assert_eq!(prepend_chroot(Some("/app"), "/x"), "/app/x");
        assert_eq!(prepend_chroot(None, "/x"), "/x");
        assert_eq!(strip_chroot(Some("/app"), "/app"), "/");
        assert_eq!(strip_chroot(Some("/app"), "/app/x"), "/x");
        assert_eq!(strip_chroot(Some("/app"), "/apple"), "/apple");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
