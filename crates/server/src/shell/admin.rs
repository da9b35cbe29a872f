//! The AdminServer: ZooKeeper's HTTP endpoint for its commands (`admin.enableServer`,
//! `admin.serverAddress`, `admin.serverPort`, `admin.commandURL`, `admin.idleTimeout`), on
//! hyper.
//!
//! This module owns the HTTP side and the bounds that protect the server from HTTP clients;
//! the answers are pure code (`rzk_core::admin`). A request's path is
//! `<commandURL>/<command>?<params>`; the HTTP task gathers what only the shell knows (the
//! process, the disk, the configuration: [`rzk_core::admin::HostInfo`], on a blocking thread
//! when it reads the disk), then sends the driver one [`AdminRequest`] over a bounded channel
//! and waits on a oneshot for a [`CoreView`] (a snapshot of the core), from which it builds
//! the [`CommandResponse`] on a blocking thread. The driver serves a request with one call,
//! [`answer`], between two other events: HTTP never blocks the driver, the driver never
//! waits for an HTTP client, and the JSON is not built on the driver.
//!
//! Bounds: at most [`HTTP_CONNECTIONS_MAX`] connections at once (more are closed at once);
//! a connection that moves no byte for `admin.idleTimeout` is closed (a client that sends
//! nothing or never reads its answer); request heads are capped at [`HTTP_HEAD_BYTES_MAX`];
//! request bodies are never read; at most [`ADMIN_QUEUE_MAX`] requests wait for the driver,
//! and one that cannot be queued or answered within [`DRIVER_WAIT`] gets 503; at most
//! [`LISTING_COMMANDS_MAX`] answers that grow with the server's state (`dump`, the watch
//! commands) are made at once. `dump`, `watches` and `watches_by_path` are streamed
//! ([`stream_listing`]): their JSON is never built whole, and a slow client holds at most
//! [`STREAM_CHUNKS_MAX`] chunks of [`STREAM_CHUNK_BYTES`] (the core's snapshot they are
//! written from is in proportion to the server's watches and ephemerals, as in ZooKeeper).
//!
//! ZooKeeper 3.9's `snapshot` command is the one that is not a view of the core: its caller
//! is authenticated and authorized by the core ([`AdminRequest::Authorize`]), then the
//! driver's storage takes a snapshot as it takes its own ([`AdminRequest::Snapshot`]) and
//! the file is streamed from disk ([`FileBody`]).
//!
//! TLS (`admin.forceHttps`, `admin.portUnification`, `admin.needClientAuth`, with the
//! `ssl.quorum.*` stores as ZooKeeper's `JettyAdminServer` takes them) is the client port's
//! TLS stack ([`super::tls`]) on the same connection handling ([`HttpTransport`]).
//!
//! The Prometheus endpoint ([`super::metrics`]) uses the same connection handling
//! ([`serve_http`]) and the same channel.

use crate::core::admin::{self as cmds, CommandResponse, HostInfo, Mutation, VotingMember};
use crate::core::fourlw::{ProcessInfo, ServerSnapshot};
use crate::core::ZooKeeperServer;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rzk_config::ServerConfig;
use rzk_proto::Id;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

/// Requests waiting for the driver, at most.
pub const ADMIN_QUEUE_MAX: usize = 16;
/// Concurrent HTTP connections per endpoint, at most.
pub const HTTP_CONNECTIONS_MAX: usize = 32;
/// The largest request head (request line and headers) read, bytes.
pub const HTTP_HEAD_BYTES_MAX: usize = 16 * 1024;
/// The HTTP listeners' accept backlog (bound with SO_REUSEADDR, as the client port, so a
/// restarted server can bind at once).
pub const HTTP_LISTEN_BACKLOG: u32 = 128;
/// `dump` and the watch commands (answers that grow with the server's state) running at once,
/// at most; more wait for a turn (within [`DRIVER_WAIT`], else 503).
pub const LISTING_COMMANDS_MAX: usize = 2;
/// How long a request may wait to be queued for, and answered by, the driver.
pub const DRIVER_WAIT: Duration = Duration::from_secs(10);

/// The HTTP side's errors: start-up only (a bad address, a port taken, a metrics setting).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{key}: cannot resolve {value:?}: {source}")]
    Resolve { key: &'static str, value: String, source: io::Error },
    #[error("{what}: cannot listen on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: io::Error },
    #[error("metricsProvider.className={0}: rzk serves ZooKeeper's default provider and org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider only")]
    UnknownMetricsProvider(String),
    #[error("metricsProvider.{key}={value}: {message}")]
    MetricsSetting { key: String, value: String, message: String },
    /// The admin server's TLS (`admin.forceHttps` / `admin.portUnification`) cannot be set up.
    #[error("admin server TLS: {0}")]
    Tls(#[from] super::tls::TlsError),
}

/// How an HTTP listener speaks: plain HTTP, TLS only (`admin.forceHttps`), or both on one
/// port (`admin.portUnification`: a first byte 0x16 starts a TLS handshake).
#[derive(Clone)]
pub(crate) enum HttpTransport {
    Plain,
    Tls(Arc<AdminTlsSide>),
    Unified(Arc<AdminTlsSide>),
}

/// The admin port's TLS: its context (the `ssl.quorum.*` stores) and the x509 provider's
/// check of a client certificate for the `x509` scheme (the client port's
/// `ssl.trustStore`, as 3.9's `X509AuthenticationProvider`; none configured: no
/// certificate authenticates).
pub(crate) struct AdminTlsSide {
    ctx: Arc<super::tls::TlsContext>,
    x509_verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
}

/// What the handler learns about a request's connection (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct HttpConn {
    /// The request came over TLS.
    pub secure: bool,
    /// The ids of the TLS client's verified certificate (`x509:<dn>`, and `super:<dn>` for
    /// `X509AuthenticationProvider.superUser`); empty without one.
    pub x509: Vec<Id>,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// `JettyAdminServer.DEFAULT_STS_MAX_AGE` (a day): Jetty's `SecureRequestCustomizer` sends
/// `Strict-Transport-Security` with it on every answer over TLS.
pub const STS_HEADER: &str = "max-age=86400; includeSubDomains";

/// The admin server's transport from its settings: the `ssl.quorum.*` stores, rustls's
/// protocols TLS 1.2 and 1.3 (Jetty's defaults on a current JDK), a client certificate
/// required with `admin.needClientAuth` and not asked for otherwise. The trust store is
/// loaded either way, as ZooKeeper loads it, so a bad one stops the start-up.
pub(crate) fn admin_transport(cfg: &ServerConfig) -> Result<HttpTransport, AdminError> {
    let a = &cfg.admin_tls;
    if !a.enabled() {
        return Ok(HttpTransport::Plain);
    }
    let t = rzk_config::ClientTls {
        key_store: a.key_store.clone(),
        trust_store: a.trust_store.clone(),
        client_auth: if a.need_client_auth { rzk_config::ClientAuth::Need } else { rzk_config::ClientAuth::None },
        enabled_protocols: vec!["TLSv1.3".into(), "TLSv1.2".into()],
        x509_super_user: cfg.client_tls.x509_super_user.clone(),
        ..rzk_config::ClientTls::default()
    };
    if let Some(ts) = &t.trust_store {
        super::tls::load_trust_store(ts)?;
    }
    let ctx = super::tls::TlsContext::new(&t)?;
    let x509_verifier = cfg.client_tls.trust_store.as_ref().map(super::tls::client_cert_verifier).transpose()?;
    let side = Arc::new(AdminTlsSide { ctx, x509_verifier });
    Ok(if a.force_https { HttpTransport::Tls(side) } else { HttpTransport::Unified(side) })
}

/// What an HTTP task asks the driver for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAsk {
    /// An AdminServer command (`/commands/<name>`).
    Command,
    /// The Prometheus endpoint's data (`/metrics`).
    Metrics,
}

/// One request for the driver: the state change a command asks for, and a view of the core.
#[derive(Debug)]
pub struct ViewRequest {
    pub ask: AdminAsk,
    /// The command's name as asked (any alias).
    pub command: String,
    /// Its query parameters (`set_trace_mask`'s `traceMask`).
    pub params: BTreeMap<String, String>,
    pub reply: oneshot::Sender<CoreView>,
}

/// What an HTTP task sends the driver.
#[derive(Debug)]
pub enum AdminRequest {
    /// A command's, or `/metrics`', view of the core.
    View(ViewRequest),
    /// ZooKeeper 3.9's check of the caller of `snapshot`: the `Authorization` header, the
    /// ids of the connection's client certificate, the peer's address.
    Authorize { header: Option<String>, x509: Vec<Id>, ip: String, reply: oneshot::Sender<AuthVerdict> },
    /// A snapshot for the `snapshot` command, answered when its file is written.
    Snapshot(super::durable::SnapshotWaiter),
    /// 3.9's `restore`: a snapshot's tree and sessions to install; answered once the
    /// snapshot of the installed tree is written (its zxid), or with why it was refused.
    Restore { tree: Box<rzk_tree::DataTree>, sessions: Vec<(rzk_proto::SessionId, i32)>, reply: super::durable::SnapshotWaiter },
}

/// The driver's answer to [`AdminRequest::Authorize`], as 3.9's `runCommand` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    Allowed,
    /// The server is not serving (200, "This ZooKeeper instance is not currently serving requests").
    NotServing,
    /// No `Authorization` header (401 "Auth info is missing for the command").
    Missing,
    /// 401 "Not authenticated".
    NotAuthenticated,
    /// 403 "Not authorized".
    NotAuthorized,
}

/// What the driver hands back: a snapshot of the core (brief unless the command lists
/// watches, sessions or ephemerals) and the connections refused so far. The HTTP task
/// builds the answer from it, off the driver.
#[derive(Debug)]
pub struct CoreView {
    pub snapshot: ServerSnapshot,
    pub connections_rejected: u64,
}

/// Answers one request from the core: the driver's only AdminServer code. It runs the
/// command's state change (`stat_reset`, `connection_stat_reset`) and takes the snapshot;
/// nothing here grows with the size of the answer but the snapshot itself.
pub(crate) fn answer(core: &mut ZooKeeperServer, rejected: u64, req: AdminRequest) {
    let req = match req {
        AdminRequest::View(v) => v,
        AdminRequest::Authorize { header, x509, ip, reply } => {
            let verdict = if core.role() == crate::core::Role::NotServing {
                AuthVerdict::NotServing
            } else if let Some(header) = header {
                match core.admin_authorize(&header, &x509, &ip, rzk_proto::perms::ALL, "/") {
                    Ok(()) => AuthVerdict::Allowed,
                    Err(rzk_proto::ErrorCode::NoAuth) => AuthVerdict::NotAuthorized,
                    Err(_) => AuthVerdict::NotAuthenticated,
                }
            } else {
                AuthVerdict::Missing
            };
            let _ = reply.send(verdict);
            return;
        }
        AdminRequest::Snapshot(reply) | AdminRequest::Restore { reply, .. } => {
            let _ = reply.send(Err("snapshots are taken by the driver's storage".into()));
            return;
        }
    };
    if req.ask == AdminAsk::Command {
        let serving = core.role() != crate::core::Role::NotServing;
        match cmds::mutation(&req.command, &req.params) {
            Mutation::ResetServerStats if serving => core.reset_stats(),
            Mutation::ResetConnectionStats if serving => core.reset_conn_stats(),
            // ZooTrace's mask is the process's: set whether or not the server serves.
            Mutation::SetTraceMask(mask) => core.set_trace_mask(mask),
            _ => {}
        }
    }
    let snapshot =
        if req.ask == AdminAsk::Command && cmds::needs_full_snapshot(&req.command) { core.snapshot() } else { core.snapshot_brief() };
    let _ = req.reply.send(CoreView { snapshot, connections_rejected: rejected });
}

/// Waits for the next request, or forever when no HTTP endpoint is on.
pub(crate) async fn recv(rx: &mut Option<mpsc::Receiver<AdminRequest>>) -> Option<AdminRequest> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What the HTTP tasks need to know of the server's configuration, read once.
#[derive(Debug, Clone)]
pub(crate) struct HostSource {
    cfg: ServerConfig,
    my_id: Option<u64>,
    initial_configuration: String,
}

impl HostSource {
    fn new(cfg: &ServerConfig, my_id: Option<u64>) -> Self {
        let initial_configuration = cfg.config_file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
        HostSource { cfg: cfg.clone(), my_id, initial_configuration }
    }

    fn data_dirs(&self) -> (PathBuf, PathBuf) {
        let data = absolute(&self.cfg.data_dir.join("version-2"));
        let log = absolute(&self.cfg.data_log_dir().join("version-2"));
        (data, log)
    }

    /// The facts `command` needs; reads the disk only for the commands that show it.
    pub(crate) fn gather(&self, command: &str) -> HostInfo {
        let primary = cmds::lookup(command).map(|c| c.primary).unwrap_or("");
        let mut h = HostInfo {
            my_id: self.my_id,
            voting_view: voting_view(&self.cfg, self.my_id),
            process: ProcessInfo { fd_count: super::fd_count(), fd_limit: super::fd_limit(), connections_rejected: 0, asking_conn: None },
            ..Default::default()
        };
        let (data, log) = self.data_dirs();
        match primary {
            "configuration" => h.configuration = self.configuration(&data, &log),
            "environment" => h.environment = environment(),
            "system_properties" => h.system_properties = self.system_properties(),
            "initial_configuration" => h.initial_configuration = self.initial_configuration.clone(),
            "dirs" | "server_stats" | "stats" => {
                h.data_dir_size = super::dir_size(&data);
                h.log_dir_size = super::dir_size(&log);
            }
            "last_snapshot" => h.last_snapshot = last_snapshot(&data),
            _ => {}
        }
        h
    }

    /// ZooKeeperServerConf's fields, as `configuration` prints them.
    fn configuration(&self, data: &std::path::Path, log: &std::path::Path) -> Map<String, Value> {
        let c = &self.cfg;
        let mut m = Map::new();
        m.insert("client_port".into(), json!(c.client_port.unwrap_or(0)));
        m.insert("data_dir".into(), json!(data.display().to_string()));
        m.insert("data_log_dir".into(), json!(log.display().to_string()));
        m.insert("tick_time".into(), json!(c.tick_time));
        m.insert("max_client_cnxns".into(), json!(c.max_client_cnxns));
        m.insert("min_session_timeout".into(), json!(c.min_session_timeout_ms()));
        m.insert("max_session_timeout".into(), json!(c.max_session_timeout_ms()));
        m.insert("server_id".into(), json!(self.my_id.unwrap_or(0)));
        m.insert("client_port_listen_backlog".into(), json!(c.client_port_listen_backlog));
        m
    }

    /// rzk's "system properties": the `zookeeper.*` properties of zoo.cfg and the command
    /// line, and what `envi` says of the process (there is no JVM to list).
    fn system_properties(&self) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = environment().into_iter().collect();
        m.extend([
            ("file.separator".to_string(), "/".to_string()),
            ("path.separator".into(), ":".into()),
            ("line.separator".into(), "\n".into()),
        ]);
        for (k, v) in &self.cfg.system_properties {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

fn environment() -> Vec<(String, String)> {
    crate::core::fourlw::envi_rows(&super::env_info()).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn voting_view(cfg: &ServerConfig, my_id: Option<u64>) -> Vec<VotingMember> {
    cfg.servers
        .values()
        .map(|s| {
            let own = (my_id == Some(s.id)).then(|| {
                let host = cfg.client_port_address.clone().unwrap_or_else(|| "0.0.0.0".into());
                format!("{host}:{}", cfg.client_port.unwrap_or(0))
            });
            VotingMember {
                id: s.id,
                quorum: s.addresses.iter().map(|a| (a.host.clone(), a.quorum_port)).collect(),
                election: s.addresses.iter().map(|a| (a.host.clone(), a.election_port)).collect(),
                client_address: s.client_address.as_ref().map(|c| format!("{}:{}", c.host, c.port)).or(own).unwrap_or_default(),
                participant: s.peer_type == rzk_config::PeerType::Participant,
            }
        })
        .collect()
}

/// The newest `snapshot.<zxid>` file: its zxid and modification time (seconds).
fn last_snapshot(dir: &std::path::Path) -> Option<(i64, i64)> {
    let mut best: Option<(i64, i64)> = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix("snapshot.")) else {
            continue;
        };
        let hex = hex.split('.').next().unwrap_or(hex);
        let Ok(zxid) = i64::from_str_radix(hex, 16) else {
            continue;
        };
        if best.is_some_and(|(z, _)| z >= zxid) {
            continue;
        }
        let secs = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_secs() as i64);
        best = Some((zxid, secs));
    }
    best
}

/// Resolves `host` for a listener setting.
pub(crate) fn resolve(key: &'static str, host: &str, port: u16) -> Result<SocketAddr, AdminError> {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .map_err(|source| AdminError::Resolve { key, value: host.to_string(), source })?
        .next()
        .ok_or_else(|| AdminError::Resolve { key, value: host.to_string(), source: io::Error::other("no address") })
}

/// Starts the AdminServer and the Prometheus endpoint as configured. Returns the driver's end
/// of their channel, or `None` when neither is on. Binding happens here, so a taken port
/// stops the start-up with an error naming the setting.
pub async fn start(
    cfg: &ServerConfig,
    my_id: Option<u64>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<mpsc::Receiver<AdminRequest>>, AdminError> {
    let metrics = super::metrics::settings(cfg)?;
    if !cfg.admin_enable_server && metrics.is_none() {
        tracing::info!("AdminServer off (admin.enableServer=false)");
        return Ok(None);
    }
    let (tx, rx) = mpsc::channel(ADMIN_QUEUE_MAX);
    let idle = Duration::from_millis(u64::from(cfg.admin_idle_timeout.max(1)));
    let host = Arc::new(HostSource::new(cfg, my_id));
    if cfg.admin_enable_server {
        let addr = resolve("admin.serverAddress", &cfg.admin_server_address, cfg.admin_server_port)?;
        let transport = admin_transport(cfg)?;
        let listener =
            super::bind(addr, HTTP_LISTEN_BACKLOG).map_err(|source| AdminError::Bind { what: "admin.serverPort", addr, source })?;
        let url = cfg.admin_command_url.trim_end_matches('/').to_string();
        let url_for_console = url.clone();
        let scheme = match transport {
            HttpTransport::Plain => "http",
            HttpTransport::Tls(_) => "https (admin.forceHttps)",
            HttpTransport::Unified(_) => "http and https (admin.portUnification)",
        };
        tracing::info!(%addr, command_url = %url, scheme, need_client_auth = cfg.admin_tls.need_client_auth, "AdminServer listening");
        let state = Arc::new(AdminState {
            snapshot_enabled: cfg.admin_snapshot_enabled,
            // 3.9 builds the snapshot command's limiter with the setting in microseconds.
            snapshot_limiter: Mutex::new(RateLimiter::new(Duration::from_millis(cfg.admin_rate_limiter_interval / 1000))),
            restore_enabled: cfg.admin_restore_enabled,
            restore_limiter: Mutex::new(RateLimiter::new(Duration::from_millis(cfg.admin_rate_limiter_interval))),
            tree_options: super::durable::tree_options(cfg),
            max_record_bytes: super::durable::max_record_bytes(cfg),
            idle,
            tx: tx.clone(),
            host: host.clone(),
            command_url: url,
            listing: Arc::new(Semaphore::new(LISTING_COMMANDS_MAX)),
            console: super::console::Console::new(cfg, my_id, &url_for_console),
        });
        tokio::spawn(serve_http(listener, transport, idle, shutdown.clone(), move |req| {
            let state = state.clone();
            async move { state.handle(req).await }
        }));
    }
    if let Some(m) = metrics {
        super::metrics::start(m, tx, host, idle, shutdown).await?;
    }
    Ok(Some(rx))
}

struct AdminState {
    /// `admin.snapshot.enabled`.
    snapshot_enabled: bool,
    /// `admin.restore.enabled`.
    restore_enabled: bool,
    /// The `restore` command's rate limit (3.9: `admin.rateLimiterIntervalInMS` in ms).
    restore_limiter: Mutex<RateLimiter>,
    /// How a restored snapshot is loaded (the server's tree options, `jute.maxbuffer`).
    tree_options: rzk_tree::TreeOptions,
    max_record_bytes: usize,
    /// `admin.idleTimeout`: the longest wait for a chunk of a `restore` body.
    idle: Duration,
    /// The `snapshot` command's rate limit.
    snapshot_limiter: Mutex<RateLimiter>,
    tx: mpsc::Sender<AdminRequest>,
    host: Arc<HostSource>,
    command_url: String,
    /// Permits for the commands that list every watch, session or ephemeral.
    listing: Arc<Semaphore>,
    /// rzk's web console (`rzk.console.enabled`), under `/console`.
    console: Option<Arc<super::console::Console>>,
}

/// An answer: whole (most) or streamed from a file (`snapshot`).
pub(crate) type HttpResponse = Response<BoxBody<Bytes, io::Error>>;

pub(crate) fn plain(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_str(content_type).expect("content type"));
    r
}

impl AdminState {
    async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let path = req.uri().path().to_string();
        if let Some(console) = &self.console {
            if path == "/console" || path.starts_with("/console/") {
                return console.handle(req).await;
            }
        }
        let Some(rest) = path.strip_prefix(self.command_url.as_str()) else {
            return plain(StatusCode::NOT_FOUND, "text/plain", "Not Found\n");
        };
        let name = rest.trim_start_matches('/').to_string();
        let name = name.as_str();
        // 3.9's one POST command: restore (its body is the snapshot).
        if name == "restore" || name == "rest" {
            if req.method() != Method::POST {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "Method Not Allowed\n");
            }
            return self.restore(name.to_string(), req).await;
        }
        if req.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "Method Not Allowed\n");
        }
        if name.is_empty() && (rest.is_empty() || rest == "/") {
            // The list of commands, one link each, as ZooKeeper's servlet prints it.
            let mut html = String::new();
            for n in cmds::primary_names() {
                html.push_str(&format!("<a href=\"{}/{n}\">{n}</a>\n<br/>\n", self.command_url));
            }
            return plain(StatusCode::OK, "text/html", html);
        }
        let params = parse_query(req.uri().query().unwrap_or(""));
        if name == "snapshot" || name == "snap" {
            let header = req.headers().get(hyper::header::AUTHORIZATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let conn = req.extensions().get::<HttpConn>().cloned();
            return self.snapshot(name, &params, header, conn).await;
        }
        self.command(name.to_string(), params).await
    }

    /// ZooKeeper 3.9's `snapshot` (`Commands.SnapshotCommand` behind `runCommand`'s auth):
    /// the caller authenticated by its `Authorization` header and holding ALL on `/`;
    /// `admin.snapshot.enabled`; the rate limit; then a snapshot taken by the driver's
    /// storage as any other (a fuzzy walk in bounded steps, so requests go on), its file
    /// streamed (`streaming=true`, the default) or only described, with the `last_zxid` and
    /// `snapshot_size` headers.
    async fn snapshot(
        &self,
        asked: &str,
        params: &BTreeMap<String, String>,
        header: Option<String>,
        conn: Option<HttpConn>,
    ) -> HttpResponse {
        if let Some(refused) = self.authorize(asked, header, conn).await {
            return refused;
        }
        if !self.snapshot_enabled {
            tracing::warn!("snapshot command refused: admin.snapshot.enabled=false");
            return command_error("snapshot", 503, None);
        }
        if !self.snapshot_limiter.lock().expect("rate limiter").allow() {
            tracing::warn!("snapshot command rate limited (admin.rateLimiterIntervalInMS)");
            return command_error("snapshot", 429, None);
        }
        // Boolean.parseBoolean of the parameter; true without it.
        let streaming = params.get("streaming").is_none_or(|v| v.eq_ignore_ascii_case("true"));
        let (reply, taken) = oneshot::channel();
        let (zxid, path) = match driver_round(&self.tx, AdminRequest::Snapshot(reply), taken, SNAPSHOT_WAIT).await {
            Ok(Ok(t)) => t,
            Ok(Err(why)) => {
                tracing::warn!(reason = %why, "snapshot command: no snapshot");
                return command_error("snapshot", 500, None);
            }
            Err(msg) => return unavailable(msg),
        };
        // Opened at once: a purge that removes the file later does not cut the stream.
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "snapshot command: cannot open the snapshot");
                return command_error("snapshot", 500, None);
            }
        };
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        tracing::info!(file = %path.display(), size, streaming, "snapshot command: snapshot taken");
        let mut r = if size == 0 {
            command_error("snapshot", 500, None)
        } else if streaming {
            let mut r = Response::new(FileBody { file, left: size, buf: Vec::new() }.boxed());
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/octet-stream"));
            r
        } else {
            command_error("snapshot", 200, None)
        };
        let h = r.headers_mut();
        h.insert("last_zxid", hyper::header::HeaderValue::from_str(&format!("0x{:x}", zxid.0)).expect("hex"));
        h.insert("snapshot_size", hyper::header::HeaderValue::from(size));
        r
    }

    /// 3.9's caller check for `snapshot` and `restore` (`runCommand`'s `AuthRequest(ALL, "/")`):
    /// the `Authorization` header or the client certificate's x509 ids; `None` when allowed,
    /// else the answer to give.
    async fn authorize(&self, asked: &str, header: Option<String>, conn: Option<HttpConn>) -> Option<HttpResponse> {
        let (x509, ip) = conn.map(|c| (c.x509, c.peer.ip().to_string())).unwrap_or_default();
        let (reply, verdict) = oneshot::channel();
        let verdict = match driver_round(&self.tx, AdminRequest::Authorize { header, x509, ip, reply }, verdict, DRIVER_WAIT).await {
            Ok(v) => v,
            Err(msg) => return Some(unavailable(msg)),
        };
        match verdict {
            AuthVerdict::Allowed => None,
            AuthVerdict::NotServing => Some(command_error(asked, 200, Some("This ZooKeeper instance is not currently serving requests"))),
            AuthVerdict::Missing => Some(command_error(asked, 401, Some("Auth info is missing for the command"))),
            AuthVerdict::NotAuthenticated => Some(command_error(asked, 401, Some("Not authenticated"))),
            AuthVerdict::NotAuthorized => Some(command_error(asked, 403, Some("Not authorized"))),
        }
    }

    /// ZooKeeper 3.9's `restore` (`Commands.RestoreCommand`): the caller as for `snapshot`;
    /// `admin.restore.enabled` (503); the rate limit of one per `admin.rateLimiterIntervalInMS`
    /// ms (429); then the request body, a snapshot stream as `snapshot` sends it, is decoded
    /// (its checksums verified) on a blocking thread as it arrives, and the driver installs
    /// the tree and sessions and writes a snapshot of them before answering
    /// `{"last_zxid": <the zxid the restored tree is served at>}`. A body that is not a
    /// snapshot, or a refusal (an ensemble member), is a 500 with the reason logged, as
    /// ZooKeeper answers an exception.
    async fn restore(&self, asked: String, req: Request<Incoming>) -> HttpResponse {
        let header = req.headers().get(hyper::header::AUTHORIZATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let conn = req.extensions().get::<HttpConn>().cloned();
        if let Some(refused) = self.authorize(&asked, header, conn).await {
            return refused;
        }
        if !self.restore_enabled {
            tracing::warn!("restore command refused: admin.restore.enabled=false");
            return command_error(&asked, 503, None);
        }
        if !self.restore_limiter.lock().expect("rate limiter").allow() {
            tracing::warn!("restore command rate limited (admin.rateLimiterIntervalInMS)");
            return command_error(&asked, 429, None);
        }
        let (tree, sessions) = match self.decode_restore_body(req.into_body()).await {
            Ok(t) => t,
            Err(why) => {
                tracing::warn!(reason = %why, "restore command: the request body is not a usable snapshot");
                return command_error(&asked, 500, None);
            }
        };
        let nodes = tree.node_count();
        let (reply, done) = oneshot::channel();
        let req = AdminRequest::Restore { tree: Box::new(tree), sessions, reply };
        match driver_round(&self.tx, req, done, SNAPSHOT_WAIT).await {
            Ok(Ok((zxid, path))) => {
                tracing::info!(zxid = %zxid, nodes, snapshot = %path.display(), "restore command: snapshot restored and written");
                json_response(&CommandResponse { status: 200, body: json!({ "command": asked, "error": null, "last_zxid": zxid.0 }) })
            }
            Ok(Err(why)) => {
                tracing::warn!(reason = %why, "restore command refused");
                command_error(&asked, 500, None)
            }
            Err(msg) => unavailable(msg),
        }
    }

    /// The body of a `restore`, decoded as it arrives: chunks go over a bounded channel to a
    /// blocking thread that reads them as one snapshot stream (a chunk waits at most
    /// `admin.idleTimeout`; a stalled sender ends the restore).
    async fn decode_restore_body(&self, mut body: Incoming) -> Result<(rzk_tree::DataTree, Vec<(rzk_proto::SessionId, i32)>), String> {
        let (tx, rx) = mpsc::channel::<Bytes>(RESTORE_CHUNKS_QUEUED);
        let (opts, max_record) = (self.tree_options, self.max_record_bytes);
        let decoder = tokio::task::spawn_blocking(move || {
            let reader = ChunkReader { rx, chunk: Bytes::new() };
            let (head, tree, _tail) = rzk_storage::snapshot::decode_snapshot(reader, max_record, |head, nodes| {
                rzk_tree::DataTree::from_snapshot(opts, head.acls.clone(), nodes)
            })
            .map_err(|e| e.to_string())?;
            let tree = tree.map_err(|e| e.to_string())?;
            let sessions = head.sessions.iter().map(|(id, t)| (rzk_proto::SessionId(*id), *t)).collect();
            Ok::<_, String>((tree, sessions))
        });
        let mut sent = 0u64;
        loop {
            let frame = match tokio::time::timeout(self.idle, body.frame()).await {
                Err(_) => return Err("the body stalled (admin.idleTimeout)".into()),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(format!("reading the body: {e}")),
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else { continue };
            sent += data.len() as u64;
            // The send waits while the decoder is behind (the channel is bounded); an error
            // means the decoder stopped early, and its error says why.
            if tx.send(data).await.is_err() {
                break;
            }
        }
        drop(tx);
        match decoder.await {
            Ok(r) => r.map_err(|e| format!("{e} (after {sent} bytes)")),
            Err(e) => Err(format!("the decoder failed: {e}")),
        }
    }

    async fn command(&self, name: String, params: BTreeMap<String, String>) -> HttpResponse {
        // Answers that grow with the server's state: a few at a time, so that many clients
        // asking for them cannot hold many copies of a big server's watches in memory.
        let permit = if cmds::needs_full_snapshot(&name) {
            match tokio::time::timeout(DRIVER_WAIT, self.listing.clone().acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                _ => return unavailable("the server is busy: too many listing commands run"),
            }
        } else {
            None
        };
        if cmds::streamed(&name) {
            return stream_listing(&self.tx, name, params, permit).await;
        }
        let source = self.host.clone();
        let gather_name = name.clone();
        let Ok(host) = tokio::task::spawn_blocking(move || source.gather(&gather_name)).await else {
            return unavailable("the server could not gather the command's facts");
        };
        match ask(&self.tx, AdminAsk::Command, name, params, host).await {
            Ok(r) => json_response(&r),
            Err(msg) => unavailable(msg),
        }
    }
}

/// The bytes of a streamed answer held at once: [`STREAM_CHUNK_BYTES`] being written and
/// [`STREAM_CHUNKS_MAX`] waiting for the socket.
pub const STREAM_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks of a streamed answer waiting for a slow client, at most.
pub const STREAM_CHUNKS_MAX: usize = 4;

/// `dump`, `watches`, `watches_by_path`: the core's view from the driver, then the JSON
/// written entry by entry on a blocking thread (`core::admin::write_streamed`) into a
/// bounded channel of chunks that the response body drains. A client that reads slowly
/// makes the writer wait (at most [`STREAM_CHUNKS_MAX`] chunks queued); one that stops
/// reading is cut off by `admin.idleTimeout`, and the writer stops at its next chunk. The
/// listing permit is held until the writer is done, so at most [`LISTING_COMMANDS_MAX`]
/// snapshots with every watch and session are alive at once.
async fn stream_listing(
    tx: &mpsc::Sender<AdminRequest>,
    name: String,
    params: BTreeMap<String, String>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> HttpResponse {
    let view = match ask_view(tx, AdminAsk::Command, name.clone(), params.clone()).await {
        Ok(v) => v,
        Err(msg) => return unavailable(msg),
    };
    let (chunks, rx) = mpsc::channel::<Bytes>(STREAM_CHUNKS_MAX);
    let (first, first_rx) = oneshot::channel::<bool>();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut w = ChunkWriter { buf: Vec::with_capacity(STREAM_CHUNK_BYTES), tx: chunks, started: Some(first) };
        let streamed = match cmds::write_streamed(&name, &view.snapshot, &mut w) {
            Ok(streamed) => streamed && std::io::Write::flush(&mut w).is_ok(),
            Err(e) => {
                tracing::debug!(command = %name, error = %e, "streamed answer cut off");
                true
            }
        };
        if let Some(started) = w.started.take() {
            let _ = started.send(streamed);
        }
        if !streamed {
            // Not streamed (the server does not serve): the small error answer, whole.
            let r = cmds::run(&name, &params, &view.snapshot, &HostInfo::default());
            let mut body = serde_json::to_string_pretty(&r.body).unwrap_or_else(|_| "{}".into());
            body.push('\n');
            let _ = w.tx.blocking_send(Bytes::from(body));
        }
    });
    let _ = first_rx.await;
    let mut r = Response::new(ChunkBody { rx }.boxed());
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

/// An `io::Write` that hands [`STREAM_CHUNK_BYTES`] at a time to a bounded channel, waiting
/// while it is full; a closed channel (the client left) is a broken pipe.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Bytes>,
    /// Told once the first chunk is ready (or the writer is done), so the HTTP task answers
    /// only then.
    started: Option<oneshot::Sender<bool>>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(STREAM_CHUNK_BYTES)));
        if let Some(started) = self.started.take() {
            let _ = started.send(true);
        }
        self.tx.blocking_send(chunk).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the HTTP client left"))
    }
}

impl io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= STREAM_CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A response body fed by a bounded channel of chunks.
struct ChunkBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChunkBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|c| c.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// Asks the driver for a view of the core (within [`DRIVER_WAIT`] to be queued and again to
/// be answered).
async fn ask_view(
    tx: &mpsc::Sender<AdminRequest>,
    ask: AdminAsk,
    command: String,
    params: BTreeMap<String, String>,
) -> Result<CoreView, &'static str> {
    let (reply, answer) = oneshot::channel();
    let req = AdminRequest::View(ViewRequest { ask, command, params, reply });
    match tx.send_timeout(req, DRIVER_WAIT).await {
        Ok(()) => {}
        Err(mpsc::error::SendTimeoutError::Timeout(_)) => return Err("the server is busy: too many AdminServer requests wait"),
        Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err("the server is shutting down"),
    }
    match tokio::time::timeout(DRIVER_WAIT, answer).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err("the server is shutting down"),
        Err(_) => Err("the server did not answer in time"),
    }
}

/// Asks the driver for its part (within [`DRIVER_WAIT`] to be queued and again to be
/// answered), then builds the answer from the core's view and `host` on a blocking thread.
pub(crate) async fn ask(
    tx: &mpsc::Sender<AdminRequest>,
    ask: AdminAsk,
    command: String,
    params: BTreeMap<String, String>,
    mut host: HostInfo,
) -> Result<CommandResponse, &'static str> {
    let view = ask_view(tx, ask, command.clone(), params.clone()).await?;
    host.process.connections_rejected = view.connections_rejected;
    let build = move || match ask {
        AdminAsk::Command => cmds::run(&command, &params, &view.snapshot, &host),
        AdminAsk::Metrics => cmds::metrics(&view.snapshot, &host),
    };
    tokio::task::spawn_blocking(build).await.map_err(|_| "the answer could not be built")
}

/// One request to the driver and its answer, each within `wait`.
async fn driver_round<T>(
    tx: &mpsc::Sender<AdminRequest>,
    req: AdminRequest,
    answer: oneshot::Receiver<T>,
    wait: Duration,
) -> Result<T, &'static str> {
    match tx.send_timeout(req, DRIVER_WAIT).await {
        Ok(()) => {}
        Err(mpsc::error::SendTimeoutError::Timeout(_)) => return Err("the server is busy: too many AdminServer requests wait"),
        Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err("the server is shutting down"),
    }
    match tokio::time::timeout(wait, answer).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err("the server is shutting down"),
        Err(_) => Err("the server did not answer in time"),
    }
}

/// A command's answer that is only its name and error, with `status` (ZooKeeper's
/// `CommandResponse(cmdName, error, statusCode)`).
fn command_error(command: &str, status: u16, error: Option<&str>) -> HttpResponse {
    json_response(&CommandResponse { status, body: json!({ "command": command, "error": error }) })
}

/// Chunks of a `restore` body queued for its decoder, at most.
const RESTORE_CHUNKS_QUEUED: usize = 16;

/// A `restore` body as a `Read`: the chunks the HTTP task passes over a bounded channel.
struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.chunk = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

/// How long a `snapshot` command waits for its snapshot to be written.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(300);

/// ZooKeeper's `RateLimiter` with a rate of 1: one permit, given back once `interval` has
/// passed since the last refill.
struct RateLimiter {
    interval: Duration,
    last_reset: Instant,
    remained: u32,
}

impl RateLimiter {
    fn new(interval: Duration) -> Self {
        RateLimiter { interval, last_reset: Instant::now(), remained: 1 }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        if now > self.last_reset + self.interval {
            self.remained = 1;
            self.last_reset = now;
        }
        if self.remained == 0 {
            return false;
        }
        self.remained -= 1;
        true
    }
}

/// A snapshot file streamed in chunks of at most [`FILE_CHUNK_BYTES`].
struct FileBody {
    file: tokio::fs::File,
    left: u64,
    buf: Vec<u8>,
}

const FILE_CHUNK_BYTES: usize = 64 * 1024;

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        let FileBody { file, left, buf } = self.get_mut();
        if *left == 0 {
            return Poll::Ready(None);
        }
        let n = (*left).min(FILE_CHUNK_BYTES as u64) as usize;
        buf.resize(n, 0);
        let mut rb = ReadBuf::new(&mut buf[..n]);
        match Pin::new(file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the snapshot file shrank"))))
            }
            Poll::Ready(Ok(())) => {
                *left -= rb.filled().len() as u64;
                Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(rb.filled())))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

fn unavailable(msg: &str) -> HttpResponse {
    plain(StatusCode::SERVICE_UNAVAILABLE, "application/json", json!({ "error": msg }).to_string())
}

fn json_response(r: &CommandResponse) -> HttpResponse {
    let mut body = serde_json::to_string_pretty(&r.body).unwrap_or_else(|_| "{}".into());
    body.push('\n');
    plain(StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK), "application/json", body)
}

/// `a=b&c=d`, percent- and plus-decoded; the last of a repeated key wins.
pub(crate) fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves HTTP/1.1 on `listener` with `handler` until `shutdown`, within the module's bounds:
/// [`HTTP_CONNECTIONS_MAX`] connections, `idle` without a byte moved closes one,
/// [`HTTP_HEAD_BYTES_MAX`] of request head. Over TLS (`transport`) the handshake is bounded
/// by [`super::tls::HANDSHAKE_TIMEOUT`] and each answer carries the
/// `Strict-Transport-Security` header Jetty adds.
pub(crate) async fn serve_http<F, Fut>(
    listener: TcpListener,
    transport: HttpTransport,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX));
    loop {
        let Some((stream, peer)) = super::accept_until_shutdown(&listener, &mut shutdown, "HTTP").await else { return };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max = HTTP_CONNECTIONS_MAX, "too many HTTP connections; closing this one");
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        let conn_shutdown = shutdown.clone();
        let transport = transport.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let side = match transport {
                HttpTransport::Plain => {
                    return serve_conn(stream, HttpConn { secure: false, x509: Vec::new(), peer }, idle, conn_shutdown, handler).await
                }
                HttpTransport::Tls(side) => side,
                HttpTransport::Unified(side) => {
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(idle, stream.peek(&mut first)).await {
                        Ok(Ok(1)) if first[0] == super::listen::TLS_HANDSHAKE_RECORD => side,
                        Ok(Ok(1)) => {
                            let conn = HttpConn { secure: false, x509: Vec::new(), peer };
                            return serve_conn(stream, conn, idle, conn_shutdown, handler).await;
                        }
                        _ => return,
                    }
                }
            };
            match super::tls::accept(&side.ctx, stream).await {
                // The certificate's ids authenticate the `x509` scheme of `snapshot` when the
                // x509 provider's trust store vouches for its chain too.
                Ok((tls, mut x509)) => {
                    let trusted = match (&side.x509_verifier, tls.get_ref().1.peer_certificates()) {
                        (Some(v), Some([leaf, rest @ ..])) => v.verify_client_cert(leaf, rest, rustls_pki_types::UnixTime::now()).is_ok(),
                        _ => false,
                    };
                    if !trusted {
                        x509.clear();
                    }
                    serve_conn(tls, HttpConn { secure: true, x509, peer }, idle, conn_shutdown, handler).await
                }
                Err(reason) => tracing::debug!(%peer, reason = %reason, "HTTPS connection refused"),
            }
        });
    }
}

/// Serves one connection's requests until it ends, idles out or the server stops.
async fn serve_conn<S, F, Fut>(stream: S, info: HttpConn, idle: Duration, mut shutdown: watch::Receiver<bool>, handler: F)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let last_io = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let io = TokioIo::new(IdleIo { inner: stream, started, last_io_ms: last_io.clone() });
    let peer = info.peer;
    // A request being answered is not idleness (a `snapshot` may take a while to write): the
    // idle clock restarts when its answer is ready.
    let handling = Arc::new(AtomicU64::new(0));
    let (handling_svc, last_io_svc) = (handling.clone(), last_io.clone());
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let h = handler.clone();
        let secure = info.secure;
        req.extensions_mut().insert(info.clone());
        let (handling, last_io) = (handling_svc.clone(), last_io_svc.clone());
        async move {
            handling.fetch_add(1, Ordering::Relaxed);
            let mut r = h(req).await;
            last_io.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            handling.fetch_sub(1, Ordering::Relaxed);
            if secure {
                r.headers_mut().insert(hyper::header::STRICT_TRANSPORT_SECURITY, hyper::header::HeaderValue::from_static(STS_HEADER));
            }
            Ok::<_, std::convert::Infallible>(r)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .max_buf_size(HTTP_HEAD_BYTES_MAX)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let idle_ms = idle.as_millis() as u64;
    let mut check = tokio::time::interval(Duration::from_millis((idle_ms / 4).clamp(10, 1000)));
    loop {
        tokio::select! {
            r = &mut conn => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = check.tick() => {
                let now_ms = started.elapsed().as_millis() as u64;
                if handling.load(Ordering::Relaxed) == 0 && now_ms.saturating_sub(last_io.load(Ordering::Relaxed)) > idle_ms {
                    tracing::debug!(%peer, "HTTP connection idle; closing");
                    return;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// A socket that records when it last moved a byte, for the idle timeout.
struct IdleIo<S> {
    inner: S,
    started: Instant,
    last_io_ms: Arc<AtomicU64>,
}

impl<S> IdleIo<S> {
    fn touch(&self) {
        self.last_io_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection counters the driver reads for `connection_rejected`.
pub(crate) fn rejected(counts: &Mutex<super::ConnCounts>) -> u64 {
    counts.lock().expect("conn counts").rejected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let q = parse_query("traceMask=5&a=b%20c&plus=x+y&bad=%zz&end=%4");
        assert_eq!(q["traceMask"], "5");
        assert_eq!(q["a"], "b c");
        assert_eq!(q["plus"], "x y");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(q["end"], "%4");
    }

    #[test]
    fn last_snapshot_is_the_newest_file() {
        let dir = std::env::temp_dir().join(format!("rzk-admin-lsnp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["snapshot.0", "snapshot.1a.gz", "log.1", "snapshot.zz"] {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
        assert_eq!(last_snapshot(&dir).map(|(z, _)| z), Some(0x1a));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
