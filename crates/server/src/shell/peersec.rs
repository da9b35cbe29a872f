//! Security of the links between servers, as ZooKeeper 3.8's `QuorumPeer` sets it up: TLS
//! (`sslQuorum`, `portUnification`, the `ssl.quorum.*` stores of `QuorumX509Util`) and SASL
//! DIGEST-MD5 (`QuorumAuth`: `SaslQuorumAuthLearner` / `SaslQuorumAuthServer`).
//!
//! This module owns what happens on a peer socket before the transport (`shell::peer`)
//! reads its first election header or quorum packet:
//! * [`PeerSecurity::accept`]: TLS only (`sslQuorum`), TLS or plaintext told apart by the
//!   first byte (`portUnification`: a TLS record starts with 0x16, an election header with
//!   0xff or 0x00, a quorum packet with 0x00), or plaintext; then the hostname check of the
//!   peer's certificate (`ssl.quorum.hostnameVerification`).
//! * [`PeerSecurity::connect`]: TLS with this server's certificate when `sslQuorum`, else
//!   plaintext (so that, during a rolling move to TLS, a server with `portUnification` but
//!   not yet `sslQuorum` still reaches servers without TLS).
//! * [`PeerSecurity::learner_auth`] / [`PeerSecurity::server_auth`]: the QuorumAuthPacket
//!   exchange (status IN_PROGRESS / SUCCESS / ERROR), on the election connection after the
//!   connecting server's header, and on a learner's quorum connection before its
//!   FOLLOWERINFO, exactly where ZooKeeper has it. A learner authenticates only with
//!   `quorum.auth.learnerRequireSasl`; a server with `quorum.auth.enableSasl` answers one
//!   that does, and with `quorum.auth.serverRequireSasl` refuses one that does not. As in
//!   ZooKeeper, a failed authentication on a server that does not require it lets the
//!   connection go on (the learner, told ERROR, closes it).
//!
//! The DIGEST-MD5 mechanisms are `rzk_core::sasl` (server) and `rzk_proto::sasl::client`,
//! for the service `zookeeper-quorum/zk-quorum-sasl-md5`. Nothing here decides anything
//! about ZAB.

use super::tls::{self, TlsContext, TlsError};
use crate::core::sasl::{DigestMd5Server, SaslUsers, Step, NONCE_RAW_BYTES, QUORUM};
use rzk_config::ServerConfig;
use rzk_proto::quorum::{quorum_auth_status as status, QuorumAuthPacket, QUORUM_AUTH_MAGIC};
use rzk_proto::sasl::client::{DigestMd5Client, SaslCredentials};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A peer connection, plaintext or TLS.
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIo for T {}

/// A peer socket, plaintext or TLS.
pub type PeerStream = Box<dyn PeerIo>;
/// The read side of a peer socket (with any bytes read ahead put back in front).
pub type PeerRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write side of a peer socket.
pub type PeerWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Splits a peer socket into its two sides.
pub fn split(stream: PeerStream) -> (PeerRead, PeerWrite) {
    let (r, w) = tokio::io::split(stream);
    (Box::new(r), Box::new(w))
}

/// `rd` with `prefix` read first.
pub fn unread(prefix: Vec<u8>, rd: PeerRead) -> PeerRead {
    if prefix.is_empty() {
        rd
    } else {
        Box::new(std::io::Cursor::new(prefix).chain(rd))
    }
}

/// The most QuorumAuthPackets a negotiation may take (`SaslQuorumAuthServer.MAX_RETRIES`).
const SASL_ROUNDS_MAX: u32 = 5;

/// What a server knows for SASL with the others.
#[derive(Clone)]
pub struct QuorumSaslAuth {
    /// `quorum.auth.learnerRequireSasl`: authenticate when connecting.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: refuse a server that does not authenticate.
    pub server_require: bool,
    /// The `QuorumLearner` login.
    pub learner: SaslCredentials,
    /// The `QuorumServer` users.
    pub users: SaslUsers,
}

/// The security of the peer links; the default is plaintext without SASL.
#[derive(Clone, Default)]
pub struct PeerSecurity {
    /// The quorum's TLS stores (with `sslQuorum` or `portUnification`).
    pub tls: Option<Arc<TlsContext>>,
    /// `sslQuorum`: connect with TLS; accept TLS only unless `port_unification`.
    pub ssl_quorum: bool,
    /// `portUnification`: accept TLS and plaintext.
    pub port_unification: bool,
    /// `ssl.quorum.hostnameVerification`.
    pub hostname_verification: bool,
    /// `ssl.quorum.allowReverseDnsLookup`: a certificate that does not name its server's
    /// address may name a host name of it instead: the `server.N` host connected to, or, for
    /// an accepted connection, a `server.N` host that resolves to the peer's address (rzk's
    /// stand-in for ZooKeeper's reverse DNS lookup: a name the operator configured, checked
    /// forward).
    pub allow_reverse_dns_lookup: bool,
    /// The host names of the `server.N` lines.
    pub peer_hosts: Vec<String>,
    /// `ssl.quorum.handshakeDetectionTimeoutMillis`: how long a unified port waits for the
    /// first byte.
    pub detection_timeout: Duration,
    /// `quorum.auth.enableSasl` and what it needs.
    pub sasl: Option<Arc<QuorumSaslAuth>>,
}

impl std::fmt::Debug for PeerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSecurity")
            .field("tls", &self.tls.is_some())
            .field("ssl_quorum", &self.ssl_quorum)
            .field("port_unification", &self.port_unification)
            .field("sasl", &self.sasl.as_ref().map(|s| (s.learner_require, s.server_require)))
            .finish()
    }
}

impl PeerSecurity {
    /// From the configuration; loading the stores, so a bad one stops start-up.
    pub fn from_config(cfg: &ServerConfig) -> Result<PeerSecurity, TlsError> {
        let q = &cfg.quorum_tls;
        let tls = if q.enabled() { Some(TlsContext::for_peers(&q.tls)?) } else { None };
        let s = &cfg.quorum_sasl;
        let sasl = match (s.enabled, &s.learner_credentials, &s.server_users) {
            (true, Some((username, password)), Some(users)) => Some(Arc::new(QuorumSaslAuth {
                learner_require: s.learner_require,
                server_require: s.server_require,
                learner: SaslCredentials { username: username.clone(), password: password.clone() },
                users: SaslUsers { users: users.clone(), super_password: None },
            })),
            (true, _, _) => {
                return Err(TlsError::Setting {
                    key: "quorum.auth.enableSasl".into(),
                    message: "the QuorumServer / QuorumLearner JAAS sections were not loaded".into(),
                })
            }
            (false, _, _) => None,
        };
        Ok(PeerSecurity {
            tls,
            ssl_quorum: q.ssl_quorum,
            port_unification: q.port_unification,
            hostname_verification: q.tls.hostname_verification,
            allow_reverse_dns_lookup: q.allow_reverse_dns_lookup,
            peer_hosts: {
                let mut hosts: Vec<String> = cfg.servers.values().flat_map(|s| s.addresses.iter().map(|a| a.host.clone())).collect();
                hosts.sort();
                hosts.dedup();
                hosts
            },
            detection_timeout: Duration::from_millis(q.tls.handshake_detection_timeout_ms as u64),
            sasl,
        })
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        let tls = match (&self.tls, self.ssl_quorum, self.port_unification) {
            (None, _, _) => "plaintext".to_string(),
            (Some(t), ssl, unified) => format!(
                "{} ({})",
                match (ssl, unified) {
                    (true, false) => "TLS only",
                    (true, true) => "TLS, plaintext accepted (portUnification)",
                    _ => "plaintext out, TLS and plaintext accepted (portUnification)",
                },
                tls::describe(t.settings())
            ),
        };
        let sasl = match &self.sasl {
            None => "no SASL".to_string(),
            Some(s) => format!("SASL DIGEST-MD5 (learnerRequireSasl={}, serverRequireSasl={})", s.learner_require, s.server_require),
        };
        format!("{tls}; {sasl}")
    }

    /// An accepted peer socket, secured as configured. The error is the reason to log.
    pub async fn accept(&self, stream: TcpStream, from: SocketAddr) -> Result<PeerStream, String> {
        let Some(ctx) = &self.tls else { return Ok(Box::new(stream)) };
        if self.port_unification {
            let mut first = [0u8; 1];
            let is_tls = match tokio::time::timeout(self.detection_timeout, stream.peek(&mut first)).await {
                Ok(Ok(0)) => return Err("closed before its first byte".into()),
                Ok(Ok(_)) => first[0] == 0x16,
                Ok(Err(e)) => return Err(e.to_string()),
                // ZooKeeper's UnifiedServerSocket takes a silent peer for plaintext.
                Err(_) => false,
            };
            if !is_tls {
                return Ok(Box::new(stream));
            }
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(ctx.config());
        let tls = match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Err(_) => return Err("TLS handshake not finished in time".into()),
            Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
            Ok(Ok(t)) => t,
        };
        if self.hostname_verification {
            if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                if tls::check_peer_name(cert, from.ip(), &[]).is_err() {
                    let names = if self.allow_reverse_dns_lookup { self.hosts_of(from.ip()).await } else { Vec::new() };
                    tls::check_peer_name(cert, from.ip(), &names)?;
                }
            }
        }
        Ok(Box::new(tls))
    }

    /// A connected socket to another server (`host` as in its `server.N` line), secured as
    /// configured.
    pub async fn connect(&self, stream: TcpStream, host: &str) -> Result<PeerStream, String> {
        let (true, Some(ctx)) = (self.ssl_quorum, &self.tls) else { return Ok(Box::new(stream)) };
        let addr = stream.peer_addr().map_err(|e| e.to_string())?.ip();
        let config = ctx.client_config().ok_or("no TLS client configuration")?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = rustls_pki_types::ServerName::IpAddress(addr.into());
        let tls = match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, connector.connect(name, stream)).await {
            Err(_) => return Err("TLS handshake not finished in time".into()),
            Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
            Ok(Ok(t)) => t,
        };
        if self.hostname_verification {
            let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).ok_or("the server sent no certificate")?;
            let names = if self.allow_reverse_dns_lookup { vec![host.to_string()] } else { Vec::new() };
            tls::check_peer_name(cert, addr, &names)?;
        }
        Ok(Box::new(tls))
    }

    /// The `server.N` host names that resolve to `addr` (each lookup bounded).
    async fn hosts_of(&self, addr: std::net::IpAddr) -> Vec<String> {
        let mut out = Vec::new();
        for host in &self.peer_hosts {
            if let Ok(Ok(mut addrs)) = tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host((host.as_str(), 0))).await {
                if addrs.any(|a| a.ip() == addr) {
                    out.push(host.clone());
                }
            }
        }
        out
    }

    /// `SaslQuorumAuthLearner.authenticate`: with `learnerRequireSasl`, logs in to the
    /// server at the other end; otherwise nothing.
    pub async fn learner_auth<S: AsyncRead + AsyncWrite + Unpin>(&self, s: &mut S, timeout: Duration) -> Result<(), String> {
        let Some(auth) = self.sasl.as_ref().filter(|a| a.learner_require) else { return Ok(()) };
        match tokio::time::timeout(timeout, learner_exchange(s, auth)).await {
            Ok(r) => r,
            Err(_) => Err("SASL authentication not finished in time".into()),
        }
    }

    /// `SaslQuorumAuthServer.authenticate`: with `enableSasl`, answers a learner that
    /// authenticates (and with `serverRequireSasl` refuses one that does not). Returns the
    /// bytes read ahead that were not an authentication packet, to be read again.
    pub async fn server_auth<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &self,
        rd: &mut R,
        wr: &mut W,
        from: SocketAddr,
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let Some(auth) = &self.sasl else { return Ok(Vec::new()) };
        // QuorumAuth.nextPacketIsAuth: the first long is the magic number. ZooKeeper waits
        // for it without a bound when authentication is optional.
        let mut head = [0u8; 8];
        let read = rd.read_exact(&mut head);
        let r = if auth.server_require { tokio::time::timeout(timeout, read).await.map_err(|_| ()) } else { Ok(read.await) };
        match r {
            Err(()) => return Err("Learner not trying to authenticate and authentication is required (nothing in time)".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(_)) => {}
        }
        if i64::from_be_bytes(head) != QUORUM_AUTH_MAGIC {
            if auth.server_require {
                return Err("Learner not trying to authenticate and authentication is required".into());
            }
            return Ok(head.to_vec());
        }
        let r = tokio::time::timeout(timeout, server_exchange(rd, wr, auth, head))
            .await
            .unwrap_or(Err(Failure::Io("not finished in time".into())));
        match r {
            Ok(user) => {
                tracing::info!(%from, user, "Successfully completed the authentication using SASL (quorum learner)");
                Ok(Vec::new())
            }
            Err(Failure::Io(e)) => Err(format!("SASL authentication: {e}")),
            Err(Failure::Refused(e)) if auth.server_require => Err(format!("Failed to authenticate using SASL: {e}")),
            Err(Failure::Refused(e)) => {
                tracing::warn!(%from, "Failed to authenticate using SASL: {e}; maintaining the learner connection as quorum.auth.serverRequireSasl=false");
                Ok(Vec::new())
            }
        }
    }
}

/// Why a server-side negotiation ended without success.
enum Failure {
    /// The socket failed: nothing more can be said to the learner.
    Io(String),
    /// The learner's credentials were refused (it has been told ERROR).
    Refused(String),
}

async fn send<W: AsyncWrite + Unpin>(wr: &mut W, st: i32, token: Option<Vec<u8>>) -> io::Result<()> {
    wr.write_all(&QuorumAuthPacket::new(st, token).encode()).await?;
    wr.flush().await
}

/// Reads one QuorumAuthPacket whose first 8 bytes (the magic) are `magic`, if given.
async fn receive<R: AsyncRead + Unpin>(rd: &mut R, magic: Option<[u8; 8]>) -> Result<QuorumAuthPacket, String> {
    let mut head = [0u8; 16];
    match magic {
        Some(m) => {
            head[..8].copy_from_slice(&m);
            rd.read_exact(&mut head[8..]).await.map_err(|e| e.to_string())?;
        }
        None => {
            rd.read_exact(&mut head).await.map_err(|e| e.to_string())?;
        }
    }
    let len = QuorumAuthPacket::token_len(&head).map_err(|e| e.to_string())?;
    let mut b = head.to_vec();
    if let Some(n) = len {
        let mut t = vec![0u8; n];
        rd.read_exact(&mut t).await.map_err(|e| e.to_string())?;
        b.extend(t);
    }
    let p = QuorumAuthPacket::decode(&b).map_err(|e| e.to_string())?;
    if p.magic != QUORUM_AUTH_MAGIC {
        return Err("not a QuorumAuthPacket (wrong magic number)".into());
    }
    Ok(p)
}

async fn learner_exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, auth: &QuorumSaslAuth) -> Result<(), String> {
    let cnonce: String = {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..20).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect()
    };
    let mut mech = DigestMd5Client::for_service(QUORUM, auth.learner.clone(), cnonce);
    let io = |e: io::Error| e.to_string();
    send(s, status::IN_PROGRESS, Some(mech.initial_token())).await.map_err(io)?;
    for _ in 0..SASL_ROUNDS_MAX {
        let p = receive(s, None).await?;
        match p.status {
            status::IN_PROGRESS => {
                let next = mech.evaluate_challenge(p.token.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
                send(s, status::IN_PROGRESS, next).await.map_err(io)?;
            }
            status::SUCCESS => {
                if !mech.is_complete() {
                    if let Some(_extra) = mech.evaluate_challenge(p.token.as_deref().unwrap_or_default()).map_err(|e| e.to_string())? {
                        return Err("Protocol error: attempting to send response after completion".into());
                    }
                }
                return Ok(());
            }
            other => return Err(format!("Authentication failed against the server (status {other})")),
        }
    }
    Err("SASL authentication took too many rounds".into())
}

/// The server's side after the magic number: returns the authenticated user.
async fn server_exchange<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: &mut R,
    wr: &mut W,
    auth: &QuorumSaslAuth,
    magic: [u8; 8],
) -> Result<String, Failure> {
    let mut token = receive(rd, Some(magic)).await.map_err(Failure::Io)?.token.unwrap_or_default();
    let mut mech = DigestMd5Server::for_service(QUORUM);
    let nonce = || {
        let mut n = [0u8; NONCE_RAW_BYTES];
        rand::Rng::fill(&mut rand::thread_rng(), &mut n[..]);
        n
    };
    for _ in 0..SASL_ROUNDS_MAX {
        match mech.evaluate_response(&token, &auth.users, nonce) {
            Ok(Step::Challenge(c)) => {
                send(wr, status::IN_PROGRESS, Some(c)).await.map_err(|e| Failure::Io(e.to_string()))?;
                token = receive(rd, None).await.map_err(Failure::Io)?.token.unwrap_or_default();
            }
            Ok(Step::Complete { token, authorization_id, .. }) => {
                send(wr, status::SUCCESS, Some(token)).await.map_err(|e| Failure::Io(e.to_string()))?;
                return Ok(authorization_id);
            }
            Err(e) => {
                let _ = send(wr, status::ERROR, Some(Vec::new())).await;
                return Err(Failure::Refused(e.0));
            }
        }
    }
    let _ = send(wr, status::ERROR, Some(Vec::new())).await;
    Err(Failure::Refused(format!("retries={SASL_ROUNDS_MAX} exceeded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(password: &str, server_require: bool) -> PeerSecurity {
        PeerSecurity {
            sasl: Some(Arc::new(QuorumSaslAuth {
                learner_require: true,
                server_require,
                learner: SaslCredentials { username: "zk".into(), password: password.into() },
                users: SaslUsers { users: [("zk".to_string(), "pw".to_string())].into(), super_password: None },
            })),
            ..PeerSecurity::default()
        }
    }

    async fn run(learner: PeerSecurity, server: PeerSecurity) -> (Result<(), String>, Result<Vec<u8>, String>) {
        let (mut a, b) = tokio::io::duplex(4096);
        let (mut br, mut bw) = tokio::io::split(b);
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let t = Duration::from_secs(5);
        tokio::join!(
            async {
                let r = learner.learner_auth(&mut a, t).await;
                // What a learner sends next.
                let _ = a.write_all(b"NEXTBYTES").await;
                drop(a);
                r
            },
            server.server_auth(&mut br, &mut bw, from, t)
        )
    }

    #[tokio::test]
    async fn digest_md5_between_servers() {
        let (l, s) = run(auth("pw", true), auth("pw", true)).await;
        assert_eq!(l, Ok(()));
        assert_eq!(s, Ok(vec![]));
        let (l, s) = run(auth("wrong", true), auth("pw", true)).await;
        assert!(l.unwrap_err().contains("Authentication failed"));
        assert!(s.unwrap_err().contains("Mismatched response"));
        // Not required by the server: the failure is logged and the connection kept.
        let (l, s) = run(auth("wrong", true), auth("pw", false)).await;
        assert!(l.is_err());
        assert_eq!(s, Ok(vec![]));
        // A learner that does not authenticate.
        let (l, s) = run(PeerSecurity::default(), auth("pw", true)).await;
        assert_eq!(l, Ok(()));
        assert!(s.unwrap_err().contains("not trying to authenticate"));
        let (_, s) = run(PeerSecurity::default(), auth("pw", false)).await;
        assert_eq!(s, Ok(b"NEXTBYTE".to_vec()));
    }
}
