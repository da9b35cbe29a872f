//! Security of the links between servers, as ZooKeeper 3.8's `QuorumPeer` sets it up: TLS
//! (`sslQuorum`, `portUnification`, the `ssl.quorum.*` stores of `QuorumX509Util`) and SASL
//! DIGEST-MD5 or GSSAPI (`QuorumAuth`: `SaslQuorumAuthLearner` / `SaslQuorumAuthServer`).
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
//! for the service `zookeeper-quorum/zk-quorum-sasl-md5`; the GSSAPI ones (when a JAAS
//! section's login is a `Krb5LoginModule`, as `SecurityUtils.createSaslClient/Server` choose)
//! are `rzk_core::gssapi` over `shell::kerberos`'s acceptor and `shell::kerberos`'s
//! initiator, whose service principal is `quorum.auth.kerberos.servicePrincipal` with `_HOST`
//! replaced by the host connected to. A GSSAPI learner is authorized as
//! `SaslQuorumServerCallbackHandler` does it: its authorization id must be its principal and,
//! for a `name/host@REALM` principal, `host` must be the host of a `server.N` line. Nothing
//! here decides anything about ZAB.

use super::kerberos::{QuorumGssapiClient, QuorumInitiator};
use super::tls::{self, TlsContext, TlsError};
use crate::core::gssapi::{GssAcceptor, GssapiServer, KerberosNaming};
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
    pub learner: LearnerLogin,
    /// The `QuorumServer` login.
    pub server: ServerLogin,
    /// `SaslQuorumServerCallbackHandler`'s authorized hosts: the host of each `server.N` line.
    pub authorized_hosts: Vec<String>,
}

/// How this server logs in to another.
#[derive(Debug, Clone)]
pub enum LearnerLogin {
    /// `username` / `password` (DIGEST-MD5).
    DigestMd5(SaslCredentials),
    /// A Kerberos principal (GSSAPI).
    Kerberos(Arc<QuorumInitiator>),
}

/// How this server checks another's login.
#[derive(Debug, Clone)]
pub enum ServerLogin {
    /// `user_NAME` entries (DIGEST-MD5).
    DigestMd5(SaslUsers),
    /// The service principal's keys (GSSAPI).
    Kerberos(Arc<dyn GssAcceptor>),
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
        let setting = |key: &str, message: String| TlsError::Setting { key: key.into(), message };
        let sasl = if !s.enabled {
            None
        } else {
            let learner = match (&s.learner_credentials, &s.learner_kerberos) {
                (Some((username, password)), _) => {
                    LearnerLogin::DigestMd5(SaslCredentials { username: username.clone(), password: password.clone() })
                }
                (None, Some(k)) => LearnerLogin::Kerberos(Arc::new(
                    QuorumInitiator::new(cfg, k).map_err(|e| setting("quorum.auth.learner.saslLoginContext", e))?,
                )),
                (None, None) => return Err(setting("quorum.auth.enableSasl", "the QuorumLearner JAAS section was not loaded".into())),
            };
            let server = match (&s.server_kerberos, &s.server_users) {
                (Some(k), _) => ServerLogin::Kerberos(
                    super::kerberos::quorum_acceptor(cfg, k).map_err(|e| setting("quorum.auth.server.saslLoginContext", e))?,
                ),
                (None, Some(users)) => ServerLogin::DigestMd5(SaslUsers { users: users.clone(), super_password: None }),
                (None, None) => return Err(setting("quorum.auth.enableSasl", "the QuorumServer JAAS section was not loaded".into())),
            };
            let mut authorized_hosts: Vec<String> =
                cfg.servers.values().filter_map(|s| s.addresses.first().map(|a| a.host.clone())).collect();
            authorized_hosts.sort();
            authorized_hosts.dedup();
            Some(Arc::new(QuorumSaslAuth {
                learner_require: s.learner_require,
                server_require: s.server_require,
                learner,
                server,
                authorized_hosts,
            }))
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
            Some(s) => {
                let learner = match &s.learner {
                    LearnerLogin::DigestMd5(c) => format!("DIGEST-MD5 as {}", c.username),
                    LearnerLogin::Kerberos(k) => {
                        format!("GSSAPI as {} to {}@{}", k.login.principal, k.service_principal, k.realm)
                    }
                };
                let server = match &s.server {
                    ServerLogin::DigestMd5(_) => "DIGEST-MD5".to_string(),
                    ServerLogin::Kerberos(a) => format!("GSSAPI ({a:?}; learner hosts {:?})", s.authorized_hosts),
                };
                format!(
                    "SASL: learner {learner}, server {server} (learnerRequireSasl={}, serverRequireSasl={})",
                    s.learner_require, s.server_require
                )
            }
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
    /// server at the other end (`host`, as in its `server.N` line); otherwise nothing.
    pub async fn learner_auth<S: AsyncRead + AsyncWrite + Unpin>(&self, s: &mut S, host: &str, timeout: Duration) -> Result<(), String> {
        let Some(auth) = self.sasl.as_ref().filter(|a| a.learner_require) else { return Ok(()) };
        match tokio::time::timeout(timeout, learner_exchange(s, auth, host)).await {
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

/// A learner's mechanism under way.
enum LearnerMech {
    DigestMd5(DigestMd5Client),
    Gssapi(QuorumGssapiClient),
}

impl LearnerMech {
    fn evaluate_challenge(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self {
            LearnerMech::DigestMd5(m) => m.evaluate_challenge(challenge).map_err(|e| e.to_string()),
            LearnerMech::Gssapi(m) => m.evaluate_challenge(challenge),
        }
    }

    fn is_complete(&self) -> bool {
        match self {
            LearnerMech::DigestMd5(m) => m.is_complete(),
            LearnerMech::Gssapi(m) => m.is_complete(),
        }
    }
}

async fn learner_exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, auth: &QuorumSaslAuth, host: &str) -> Result<(), String> {
    let (mut mech, first) = match &auth.learner {
        LearnerLogin::DigestMd5(creds) => {
            let cnonce: String = {
                use rand::Rng;
                let mut rng = rand::thread_rng();
                (0..20).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect()
            };
            let m = DigestMd5Client::for_service(QUORUM, creds.clone(), cnonce);
            let first = m.initial_token();
            (LearnerMech::DigestMd5(m), first)
        }
        LearnerLogin::Kerberos(k) => {
            let (m, first) = k.start(host).await.map_err(|e| format!("Kerberos login to {}: {e}", k.target(host)))?;
            (LearnerMech::Gssapi(m), first)
        }
    };
    let io = |e: io::Error| e.to_string();
    send(s, status::IN_PROGRESS, Some(first)).await.map_err(io)?;
    for _ in 0..SASL_ROUNDS_MAX {
        let p = receive(s, None).await?;
        match p.status {
            status::IN_PROGRESS => {
                let next = mech.evaluate_challenge(p.token.as_deref().unwrap_or_default())?;
                send(s, status::IN_PROGRESS, next).await.map_err(io)?;
            }
            status::SUCCESS => {
                if !mech.is_complete() {
                    if let Some(_extra) = mech.evaluate_challenge(p.token.as_deref().unwrap_or_default())? {
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
    let token = receive(rd, Some(magic)).await.map_err(Failure::Io)?.token.unwrap_or_default();
    match &auth.server {
        ServerLogin::DigestMd5(users) => server_digest_md5(rd, wr, users, token).await,
        ServerLogin::Kerberos(acceptor) => server_gssapi(rd, wr, acceptor.as_ref(), &auth.authorized_hosts, token).await,
    }
}

async fn server_digest_md5<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: &mut R,
    wr: &mut W,
    users: &SaslUsers,
    mut token: Vec<u8>,
) -> Result<String, Failure> {
    let mut mech = DigestMd5Server::for_service(QUORUM);
    let nonce = || {
        let mut n = [0u8; NONCE_RAW_BYTES];
        rand::Rng::fill(&mut rand::thread_rng(), &mut n[..]);
        n
    };
    for _ in 0..SASL_ROUNDS_MAX {
        match mech.evaluate_response(&token, users, nonce) {
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

/// `SaslQuorumServerCallbackHandler.handleAuthorizeCallback`: the learner's authorization id
/// must be its principal, and a `name/host@REALM` principal's host one of `hosts`.
fn authorize_learner(principal: &str, authzid: &str, hosts: &[String]) -> Result<(), String> {
    if principal != authzid {
        return Err(format!("SASL authorization failed: {principal} asked to act as {authzid}"));
    }
    let parts: Vec<&str> = authzid.split(['/', '@']).collect();
    if parts.len() == 3 && !hosts.iter().any(|h| h == parts[1]) {
        return Err(format!("SASL authorization completed, {} is not authorized to connect (not the host of a server.N line)", parts[1]));
    }
    Ok(())
}

async fn server_gssapi<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: &mut R,
    wr: &mut W,
    acceptor: &dyn GssAcceptor,
    hosts: &[String],
    mut token: Vec<u8>,
) -> Result<String, Failure> {
    let mut mech = GssapiServer::new(acceptor.new_context());
    let naming = KerberosNaming { default_realm: acceptor.default_realm(), ..KerberosNaming::default() };
    for _ in 0..SASL_ROUNDS_MAX {
        match mech.evaluate_response(&token, &naming) {
            Ok(Step::Challenge(c)) => {
                send(wr, status::IN_PROGRESS, Some(c)).await.map_err(|e| Failure::Io(e.to_string()))?;
                token = receive(rd, None).await.map_err(Failure::Io)?.token.unwrap_or_default();
            }
            Ok(Step::Complete { authentication_id, .. }) => {
                let authzid = mech.requested_authorization_id().unwrap_or(&authentication_id).to_string();
                if let Err(e) = authorize_learner(&authentication_id, &authzid, hosts) {
                    return refuse(wr, e).await;
                }
                // GssKrb5Server's last step has no token: ZooKeeper sends a null one.
                send(wr, status::SUCCESS, None).await.map_err(|e| Failure::Io(e.to_string()))?;
                return Ok(authzid);
            }
            Err(e) => return refuse(wr, e.0).await,
        }
    }
    refuse(wr, format!("retries={SASL_ROUNDS_MAX} exceeded")).await
}

/// Tells the learner ERROR; the refusal to log.
async fn refuse<W: AsyncWrite + Unpin>(wr: &mut W, reason: String) -> Result<String, Failure> {
    let _ = send(wr, status::ERROR, Some(Vec::new())).await;
    Err(Failure::Refused(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(password: &str, server_require: bool) -> PeerSecurity {
        PeerSecurity {
            sasl: Some(Arc::new(QuorumSaslAuth {
                learner_require: true,
                server_require,
                learner: LearnerLogin::DigestMd5(SaslCredentials { username: "zk".into(), password: password.into() }),
                server: ServerLogin::DigestMd5(SaslUsers { users: [("zk".to_string(), "pw".to_string())].into(), super_password: None }),
                authorized_hosts: vec![],
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
                let r = learner.learner_auth(&mut a, "localhost", t).await;
                // What a learner sends next.
                let _ = a.write_all(b"NEXTBYTES").await;
                drop(a);
                r
            },
            server.server_auth(&mut br, &mut bw, from, t)
        )
    }

    #[test]
    fn learner_authorization_as_sasl_quorum_server_callback_handler() {
        let hosts = vec!["localhost".to_string(), "zk2.example".to_string()];
        assert_eq!(authorize_learner("learner/localhost@R", "learner/localhost@R", &hosts), Ok(()));
        assert_eq!(authorize_learner("learner/zk2.example@R", "learner/zk2.example@R", &hosts), Ok(()));
        // Not name/host@REALM: no host to check.
        assert_eq!(authorize_learner("learner@R", "learner@R", &hosts), Ok(()));
        assert!(authorize_learner("learner/other@R", "learner/other@R", &hosts).unwrap_err().contains("other is not authorized"));
        assert!(authorize_learner("learner/localhost@R", "admin/localhost@R", &hosts).unwrap_err().contains("asked to act as"));
    }

    /// A fake GSS-API: the context takes "t1" and answers "aprep" (established); the
    /// initiator is `principal`; wrap prefixes "W".
    #[derive(Debug)]
    struct FakeGss(&'static str);

    impl GssAcceptor for FakeGss {
        fn new_context(&self) -> Box<dyn crate::core::gssapi::GssContext> {
            Box::new(FakeCtx(self.0))
        }
        fn default_realm(&self) -> Option<String> {
            Some("R".into())
        }
    }

    #[derive(Debug)]
    struct FakeCtx(&'static str);

    impl crate::core::gssapi::GssContext for FakeCtx {
        fn accept(&mut self, token: &[u8]) -> Result<(Option<Vec<u8>>, bool), String> {
            if token == b"t1" {
                Ok((Some(b"aprep".to_vec()), true))
            } else {
                Err("defective token".into())
            }
        }
        fn source_name(&self) -> Result<String, String> {
            Ok(self.0.into())
        }
        fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, String> {
            Ok([b"W".as_slice(), m].concat())
        }
        fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, String> {
            t.strip_prefix(b"W").map(<[u8]>::to_vec).ok_or_else(|| "bad wrap".into())
        }
    }

    /// A GSSAPI learner by hand against a server with the fake acceptor: the server's result
    /// and the status of its last packet.
    async fn gssapi_server(principal: &'static str, first: &[u8], authzid: &str) -> (Result<Vec<u8>, String>, i32) {
        let server = PeerSecurity {
            sasl: Some(Arc::new(QuorumSaslAuth {
                learner_require: true,
                server_require: true,
                learner: LearnerLogin::DigestMd5(SaslCredentials { username: "x".into(), password: "y".into() }),
                server: ServerLogin::Kerberos(Arc::new(FakeGss(principal))),
                authorized_hosts: vec!["localhost".into()],
            })),
            ..PeerSecurity::default()
        };
        let (mut a, b) = tokio::io::duplex(4096);
        let (mut br, mut bw) = tokio::io::split(b);
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let learner = async {
            send(&mut a, status::IN_PROGRESS, Some(first.to_vec())).await.unwrap();
            let p = receive(&mut a, None).await.unwrap();
            if p.status != status::IN_PROGRESS {
                return p.status;
            }
            assert_eq!(p.token.as_deref(), Some(b"aprep".as_slice()));
            send(&mut a, status::IN_PROGRESS, Some(vec![])).await.unwrap();
            let p = receive(&mut a, None).await.unwrap();
            assert_eq!(p.token.as_deref(), Some(b"W\x01\x01\x00\x00".as_slice()));
            send(&mut a, status::IN_PROGRESS, Some([b"W\x01\x00\x00\x00".as_slice(), authzid.as_bytes()].concat())).await.unwrap();
            receive(&mut a, None).await.unwrap().status
        };
        tokio::join!(server.server_auth(&mut br, &mut bw, from, Duration::from_secs(5)), learner)
    }

    #[tokio::test]
    async fn gssapi_learner_checked_as_zookeeper_does() {
        let (r, st) = gssapi_server("learner/localhost@R", b"t1", "learner/localhost@R").await;
        assert_eq!((r, st), (Ok(vec![]), status::SUCCESS));
        let (r, st) = gssapi_server("learner/elsewhere@R", b"t1", "learner/elsewhere@R").await;
        assert!(r.unwrap_err().contains("elsewhere is not authorized to connect"));
        assert_eq!(st, status::ERROR);
        let (r, st) = gssapi_server("learner/localhost@R", b"t1", "zkquorum/localhost@R").await;
        assert!(r.unwrap_err().contains("asked to act as"));
        assert_eq!(st, status::ERROR);
        let (r, st) = gssapi_server("learner/localhost@R", b"garbage", "").await;
        assert!(r.unwrap_err().contains("defective token"));
        assert_eq!(st, status::ERROR);
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
