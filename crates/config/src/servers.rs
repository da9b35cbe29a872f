//! The ensemble: `server.N` lines, `group.N` / `weight.N` hierarchy, as
//! ZooKeeper's `QuorumPeer.QuorumServer`, `QuorumMaj` and
//! `QuorumHierarchical` read them.

use std::fmt;

/// Role of a server in the ensemble (ZooKeeper's `LearnerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum PeerType {
    /// Votes in elections and in commits.
    #[default]
    Participant,
    /// Follows the leader but does not vote.
    Observer,
}

impl PeerType {
    /// The word ZooKeeper uses in `server.N` lines and in `peerType`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerType::Participant => "participant",
            PeerType::Observer => "observer",
        }
    }

    /// The ordinal ZooKeeper prints in the `conf` four-letter word
    /// (`peerType=0` for a participant, `1` for an observer).
    pub fn ordinal(self) -> u8 {
        match self {
            PeerType::Participant => 0,
            PeerType::Observer => 1,
        }
    }

    /// Parses `participant` or `observer`, case-insensitively as ZooKeeper does.
    pub fn parse(s: &str) -> Option<PeerType> {
        match s.to_ascii_lowercase().as_str() {
            "participant" => Some(PeerType::Participant),
            "observer" => Some(PeerType::Observer),
            _ => None,
        }
    }
}

impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One quorum address of a server: `host:quorumPort:electionPort`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuorumAddress {
    /// Host name or address as written (IPv6 without its brackets).
    pub host: String,
    /// Port followers use to talk to the leader (the first port).
    pub quorum_port: u16,
    /// Port for leader election (the second port).
    pub election_port: u16,
}

/// A `host:port` pair, the client address of a `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or address as written; `0.0.0.0` when only a port was given.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// A parsed `server.N=host:quorumPort:electionPort[:type][;[clientHost:]clientPort]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server id N (its `myid`).
    pub id: u64,
    /// Quorum addresses; more than one (separated by `|`) only with
    /// `multiAddress.enabled=true`. Never empty.
    pub addresses: Vec<QuorumAddress>,
    /// Participant (the default) or observer.
    pub peer_type: PeerType,
    /// The client address given after `;`, if any.
    pub client_address: Option<HostPort>,
}

impl ServerSpec {
    /// Host of the first quorum address.
    pub fn host(&self) -> &str {
        &self.addresses[0].host
    }

    /// Quorum port of the first quorum address.
    pub fn quorum_port(&self) -> u16 {
        self.addresses[0].quorum_port
    }

    /// Election port of the first quorum address.
    pub fn election_port(&self) -> u16 {
        self.addresses[0].election_port
    }

    /// Whether this server is an observer.
    pub fn is_observer(&self) -> bool {
        self.peer_type == PeerType::Observer
    }

    /// The value as ZooKeeper's `QuorumServer.toString()` prints it in the
    /// `conf` four-letter word and in dynamic config files, e.g.
    /// `127.0.0.1:2888:3888:participant;0.0.0.0:2181`.
    pub fn to_zk_string(&self) -> String {
        let mut addrs: Vec<&QuorumAddress> = self.addresses.iter().collect();
        addrs.sort_by(|a, b| a.host.cmp(&b.host));
        let mut s = addrs
            .iter()
            .map(|a| format!("{}:{}:{}", delimited_host(&a.host), a.quorum_port, a.election_port))
            .collect::<Vec<_>>()
            .join("|");
        s.push(':');
        s.push_str(self.peer_type.as_str());
        if let Some(c) = &self.client_address {
            s.push(';');
            s.push_str(&delimited_host(&c.host));
            s.push(':');
            s.push_str(&c.port.to_string());
        }
        s
    }
}

/// An IPv6 literal in brackets, anything else as is.
pub(crate) fn delimited_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `String.split` for a one-character separator: trailing empty strings are
/// removed (but `""` splits into `[""]`).
pub(crate) fn java_split(s: &str, sep: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// `ConfigUtils.getHostAndPort`: `host:port:...`, or `[v6]:port:...`.
fn host_and_ports(s: &str) -> Result<Vec<String>, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(i) = rest.find(']') else {
            return Err(format!("\"{s}\" starts with '[' but has no matching ']'"));
        };
        let host = &rest[..i];
        let after = &rest[i + 1..];
        let mut out = vec![host.to_string()];
        if after.is_empty() {
            return Ok(out);
        }
        let Some(after) = after.strip_prefix(':') else {
            return Err(format!("\"{s}\" has no ':' after ']'"));
        };
        out.extend(java_split(after, ':').into_iter().map(str::to_string));
        Ok(out)
    } else {
        Ok(java_split(s, ':').into_iter().map(str::to_string).collect())
    }
}

fn parse_port(what: &str, s: &str, whole: &str) -> Result<u16, String> {
    match s.parse::<i64>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(format!("{what}: expected a port number (1-65535), got \"{s}\" in \"{whole}\"")),
    }
}

const WRONG_FORMAT: &str = "expected host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]";

/// Parses the value of `server.<sid>`.
pub(crate) fn parse_server(sid: u64, value: &str, multi_address_enabled: bool) -> Result<ServerSpec, String> {
    let bad = || format!("{WRONG_FORMAT}, got \"{value}\"");
    let server_client = java_split(value, ';');
    if server_client.is_empty() || server_client.len() > 2 {
        return Err(bad());
    }
    let client_address = if server_client.len() == 2 {
        let parts = host_and_ports(server_client[1])?;
        let (host, port) = match parts.as_slice() {
            [port] => ("0.0.0.0".to_string(), port),
            [host, port] => (host.clone(), port),
            _ => return Err(bad()),
        };
        if host.is_empty() {
            return Err(format!("client address: missing host in \"{value}\""));
        }
        Some(HostPort { host, port: parse_port("client port", port, value)? })
    } else {
        None
    };

    let server_addresses: Vec<&str> = server_client[0].split('|').collect();
    if server_addresses.len() > 1 && !multi_address_enabled {
        return Err(format!(
            "multiple addresses were given but the multiple address feature is disabled \
             (set multiAddress.enabled=true), got \"{value}\""
        ));
    }
    let mut addresses = Vec::new();
    let mut peer_type: Option<PeerType> = None;
    for address in server_addresses {
        let parts = host_and_ports(address)?;
        if parts.len() < 3 || parts.len() > 4 {
            return Err(bad());
        }
        let host = parts[0].clone();
        if host.is_empty() {
            return Err(format!("missing host in \"{value}\""));
        }
        let quorum_port = parse_port("quorum port", &parts[1], value)?;
        let election_port = parse_port("election port", &parts[2], value)?;
        if quorum_port == election_port {
            return Err(format!("quorum port and election port must be different, both are {quorum_port} in \"{value}\""));
        }
        if let Some(t) = parts.get(3) {
            let t = PeerType::parse(t)
                .ok_or_else(|| format!("unrecognised peer type \"{t}\" (expected participant or observer) in \"{value}\""))?;
            if let Some(prev) = peer_type {
                if prev != t {
                    return Err(format!("multiple addresses should have the same role: {prev} vs {t} in \"{value}\""));
                }
            }
            peer_type = Some(t);
        }
        addresses.push(QuorumAddress { host, quorum_port, election_port });
    }
    Ok(ServerSpec { id: sid, addresses, peer_type: peer_type.unwrap_or_default(), client_address })
}

/// One `server.N=value` line as a client tool reads it (zkCli's `reconfig -file`,
/// `QuorumPeerConfig.parseDynamicConfig`): multi-address values allowed.
pub fn parse_server_line(key: &str, value: &str) -> Result<ServerSpec, String> {
    parse_server(parse_id(key)?, value, true)
}

/// Parses the number after the first dot of `server.N`, `group.N`, `weight.N`
/// (`Long.parseLong`, which takes a leading `+`); ids are non-negative.
pub(crate) fn parse_id(key: &str) -> Result<u64, String> {
    let s = key.split_once('.').map(|(_, s)| s).unwrap_or("");
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = digits.parse::<u64>() {
            if v <= i64::MAX as u64 {
                return Ok(v);
            }
        }
    }
    Err(format!("expected a non-negative integer id after the dot, got \"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let s = parse_server(1, "zk1.example.com:2888:3888", false).unwrap();
        assert_eq!(s.id, 1);
        assert_eq!(s.host(), "zk1.example.com");
        assert_eq!(s.quorum_port(), 2888);
        assert_eq!(s.election_port(), 3888);
        assert_eq!(s.peer_type, PeerType::Participant);
        assert_eq!(s.client_address, None);
        assert_eq!(s.to_zk_string(), "zk1.example.com:2888:3888:participant");
    }

    #[test]
    fn with_type_and_client() {
        let s = parse_server(2, "10.0.0.2:2888:3888:OBSERVER;2181", false).unwrap();
        assert_eq!(s.peer_type, PeerType::Observer);
        assert_eq!(s.client_address, Some(HostPort { host: "0.0.0.0".into(), port: 2181 }));
        assert_eq!(s.to_zk_string(), "10.0.0.2:2888:3888:observer;0.0.0.0:2181");
        let s = parse_server(3, "h:1:2:participant;127.0.0.1:2182", false).unwrap();
        assert_eq!(s.client_address, Some(HostPort { host: "127.0.0.1".into(), port: 2182 }));
        // Client part without a type.
        let s = parse_server(3, "h:1:2;2182", false).unwrap();
        assert_eq!(s.peer_type, PeerType::Participant);
        assert_eq!(s.client_address.unwrap().port, 2182);
    }

    #[test]
    fn ipv6() {
        let s = parse_server(1, "[2001:db8::1]:2888:3888;[::1]:2181", false).unwrap();
        assert_eq!(s.host(), "2001:db8::1");
        assert_eq!(s.client_address.as_ref().unwrap().host, "::1");
        assert_eq!(s.to_zk_string(), "[2001:db8::1]:2888:3888:participant;[::1]:2181");
        assert!(parse_server(1, "[2001:db8::1:2888:3888", false).is_err());
    }

    #[test]
    fn multi_address() {
        let v = "h1:2888:3888|h2:2889:3889";
        assert!(parse_server(1, v, false).unwrap_err().contains("multiAddress.enabled"));
        let s = parse_server(1, v, true).unwrap();
        assert_eq!(s.addresses.len(), 2);
        assert_eq!(s.addresses[1].quorum_port, 2889);
        assert!(parse_server(1, "h1:1:2:observer|h2:1:2:participant", true).is_err());
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "host",
            "host:2888",
            "host:2888:3888:participant:extra",
            "host:2888:3888;a:1:2",
            "host:2888:3888;2181;2182",
            "host:abc:3888",
            "host:2888:-1",
            "host:2888:65536",
            "host:0:3888",
            "host:2888:2888",
            "host:2888:3888:leader",
            ":2888:3888",
            "host:2888:3888;x",
            "host:2888:3888;:2181",
        ] {
            assert!(parse_server(1, bad, false).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn java_split_semantics() {
        assert_eq!(java_split("a;b;", ';'), vec!["a", "b"]);
        assert_eq!(java_split("", ';'), vec![""]);
        assert_eq!(java_split(";", ';'), Vec::<&str>::new());
        assert_eq!(java_split("a::b", ':'), vec!["a", "", "b"]);
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id("server.1"), Ok(1));
        assert_eq!(parse_id("server.+7"), Ok(7));
        assert_eq!(parse_id("server.007"), Ok(7));
        assert!(parse_id("server.").is_err());
        assert!(parse_id("server.-1").is_err());
        assert!(parse_id("server.1.2").is_err());
        assert!(parse_id("server.x").is_err());
    }
}
