//! The client listeners: `clientPort` (plaintext, or plaintext and TLS with
//! `client.portUnification`) and `secureClientPort` (TLS only), bound at start-up
//! ([`ClientListeners::bind`]), and the accept loop both drivers start
//! ([`spawn_acceptor`]): it enforces maxClientCnxns / maxCnxns, then each connection's
//! task runs the TLS handshake if there is one and serves the connection with the same
//! code whatever the stream (`conn::run`).
//!
//! A failed handshake, a plaintext client on the TLS-only port or a client without the
//! certificate `ssl.clientAuth=need` asks for closes only that connection, with the reason
//! logged; the driver never hears of it.

use super::tls::{self, TlsContext};
use super::{conn, ConnCounts, ConnPermit, Event};
use rzk_config::ServerConfig;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// What a listener speaks.
#[derive(Clone)]
pub enum Mode {
    /// Plaintext only (`clientPort`).
    Plain,
    /// TLS only (`secureClientPort`).
    Tls(Arc<TlsContext>),
    /// `clientPort` with `client.portUnification=true`: TLS when the first byte is a TLS
    /// handshake record (0x16), plaintext otherwise.
    Unified(Arc<TlsContext>),
}

/// Why the client listeners could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// TLS settings or stores are unusable.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// An address is invalid.
    #[error("{0}")]
    Address(String),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// The bound client listeners of a server.
pub struct ClientListeners {
    /// Each listener with what it speaks.
    pub listeners: Vec<(TcpListener, Mode)>,
    /// The TLS settings in use, if any listener speaks TLS (for the cert reloader).
    pub tls: Option<Arc<TlsContext>>,
}

impl ClientListeners {
    /// A plaintext listener only (tests, and servers without TLS settings).
    pub fn plain(listener: TcpListener) -> Self {
        ClientListeners { listeners: vec![(listener, Mode::Plain)], tls: None }
    }

    /// Binds `plain` (the clientPort address, if any) and the secureClientPort from `cfg`,
    /// loading the TLS stores first so a bad store stops start-up.
    pub fn bind(cfg: &ServerConfig, plain: Option<SocketAddr>, backlog: u32) -> Result<Self, ListenError> {
        let t = &cfg.client_tls;
        let ctx = if cfg.secure_client_port.is_some() || t.port_unification { Some(TlsContext::new(t)?) } else { None };
        let mut listeners = Vec::new();
        if let Some(addr) = plain {
            let l = super::bind(addr, backlog).map_err(|source| ListenError::Bind { addr, source })?;
            let mode = match (&ctx, t.port_unification) {
                (Some(c), true) => Mode::Unified(c.clone()),
                _ => Mode::Plain,
            };
            listeners.push((l, mode));
        }
        if let Some(addr) = secure_client_addr(cfg)? {
            let l = super::bind(addr, backlog).map_err(|source| ListenError::Bind { addr, source })?;
            listeners.push((l, Mode::Tls(ctx.clone().expect("TLS context for secureClientPort"))));
        }
        if listeners.is_empty() {
            return Err(ListenError::Address("neither clientPort nor secureClientPort is set".into()));
        }
        if let Some(c) = &ctx {
            tracing::info!(settings = %tls::describe(c.settings()), "client TLS configured");
        }
        Ok(ClientListeners { listeners, tls: ctx })
    }

    /// The port the secure listener bound (for `conf`), if there is one.
    pub fn secure_port(&self) -> Option<u16> {
        self.listeners.iter().find(|(_, m)| matches!(m, Mode::Tls(_))).and_then(|(l, _)| l.local_addr().ok()).map(|a| a.port())
    }
}

impl From<TcpListener> for ClientListeners {
    fn from(l: TcpListener) -> Self {
        ClientListeners::plain(l)
    }
}

/// The secure client address from secureClientPortAddress and secureClientPort.
pub fn secure_client_addr(cfg: &ServerConfig) -> Result<Option<SocketAddr>, ListenError> {
    let Some(port) = cfg.secure_client_port else {
        return Ok(None);
    };
    let host = cfg.secure_client_port_address.clone().unwrap_or_else(|| "0.0.0.0".to_string());
    let ip: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            use std::net::ToSocketAddrs;
            (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| ListenError::Address(format!("secureClientPortAddress {host:?}: {e}")))?
                .next()
                .ok_or_else(|| ListenError::Address(format!("secureClientPortAddress {host:?} resolves to nothing")))?
                .ip()
        }
    };
    Ok(Some(SocketAddr::new(ip, port)))
}

/// The client accept loops, one per listener: enforce maxClientCnxns / maxCnxns and start
/// one task per connection. Shared by the standalone and the ensemble driver; aborting the
/// returned handle stops every loop and the store reloader (`client.certReload`).
pub(crate) fn spawn_acceptor(
    listeners: ClientListeners,
    accept_inbox: mpsc::Sender<Event>,
    accept_counts: Arc<Mutex<ConnCounts>>,
    limits: conn::ConnLimits,
    max_per_ip: u32,
    max_total: u32,
    accept_shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let next_conn = Arc::new(AtomicU64::new(1));
    tokio::spawn(async move {
        let mut loops = tokio::task::JoinSet::new();
        if let Some(c) = listeners.tls.clone() {
            loops.spawn(tls::reload_on_change(c, accept_shutdown.clone()));
        }
        for (listener, mode) in listeners.listeners {
            let (inbox, counts, next_conn, mut shutdown) =
                (accept_inbox.clone(), accept_counts.clone(), next_conn.clone(), accept_shutdown.clone());
            loops.spawn(async move {
                loop {
                    let Some((stream, peer)) = super::accept_until_shutdown(&listener, &mut shutdown, "client").await else { break };
                    let Some(permit) = admit(&counts, peer, max_per_ip, max_total) else {
                        drop(stream);
                        continue;
                    };
                    let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                    // Boxed: the spawn then moves a pointer, not the future (a
                    // few hundred bytes, copied three times per connection).
                    tokio::spawn(Box::pin(serve(stream, mode.clone(), conn, peer, inbox.clone(), limits, permit)));
                }
            });
        }
        while loops.join_next().await.is_some() {}
    })
}

/// maxClientCnxns / maxCnxns: a permit for the connection, or `None` (counted, logged).
fn admit(counts: &Arc<Mutex<ConnCounts>>, peer: SocketAddr, max_per_ip: u32, max_total: u32) -> Option<ConnPermit> {
    let mut c = counts.lock().expect("conn counts");
    let n = c.per_ip.get(&peer.ip()).copied().unwrap_or(0);
    if max_per_ip > 0 && n >= max_per_ip {
        tracing::warn!(%peer, max = max_per_ip, "Too many connections from {} - max is {}", peer.ip(), max_per_ip);
        c.rejected += 1;
        None
    } else if max_total > 0 && c.total >= max_total {
        tracing::warn!(%peer, max = max_total, "Too many connections - max is {}", max_total);
        c.rejected += 1;
        None
    } else {
        *c.per_ip.entry(peer.ip()).or_default() += 1;
        c.total += 1;
        Some(ConnPermit { counts: counts.clone(), ip: peer.ip() })
    }
}

/// One connection: the TLS handshake (or, on a unified port, the detection of one), then
/// the connection itself. The handshake's and each kind of connection's futures are boxed:
/// unboxed, this task's future is the size of the largest of them (kilobytes), copied
/// several times by every spawn (memcpy was 16 % of session churn's instructions).
async fn serve(
    stream: TcpStream,
    mode: Mode,
    conn: u64,
    peer: SocketAddr,
    inbox: mpsc::Sender<Event>,
    limits: conn::ConnLimits,
    permit: ConnPermit,
) {
    let _ = stream.set_nodelay(true);
    let ctx = match mode {
        Mode::Plain => return Box::pin(conn::run(stream, conn, peer, Vec::new(), inbox, limits, permit)).await,
        Mode::Tls(ctx) => ctx,
        Mode::Unified(ctx) => {
            let wait = Duration::from_millis(ctx.settings().handshake_detection_timeout_ms as u64);
            let mut first = [0u8; 1];
            match tokio::time::timeout(wait, stream.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => ctx,
                Ok(Ok(1)) => return Box::pin(conn::run(stream, conn, peer, Vec::new(), inbox, limits, permit)).await,
                Ok(Ok(_)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(conn, %peer, error = %e, "connection closed before its first byte");
                    return;
                }
                Err(_) => {
                    tracing::warn!(conn, %peer, timeout_ms = wait.as_millis() as u64, "no first byte within ssl.handshakeDetectionTimeoutMillis; connection closed");
                    return;
                }
            }
        }
    };
    match Box::pin(tls::accept(&ctx, stream)).await {
        Ok((tls_stream, auth)) => Box::pin(conn::run(tls_stream, conn, peer, auth, inbox, limits, permit)).await,
        Err(reason) => tracing::warn!(conn, %peer, reason = %reason, "TLS connection refused"),
    }
}

/// The first byte of a TLS ClientHello (a handshake record).
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;
