//! rzk's web console (ZooKeeper has none), served by the AdminServer under `/console/`.
//!
//! This module owns the console's HTTP side: its assets (hand-written HTML, CSS and JS in
//! `console/`, compiled into the binary), who may reach it (`rzk.console.enabled`,
//! loopback clients only unless `rzk.console.allowRemote`), and its JSON API. The API is
//! a real ZooKeeper client of this very server: each console login is one session of
//! `rzk-client` on the local client port, with the credentials the console user gave
//! (`addauth digest user:password`), so reads and edits get the ACL checks, the pipeline,
//! ZAB and the audit log of any client, and nothing here decides about the tree. The
//! sessions, watches and metrics views read the AdminServer's own commands; the ensemble
//! view asks each member's client port `srvr` (the one four-letter word every server
//! answers by default).
//!
//! Bounds: at most [`CONSOLE_SESSIONS_MAX`] console sessions (a login beyond it is refused,
//! 503), idle ones closed after [`CONSOLE_IDLE`]; request bodies at most
//! [`CONSOLE_BODY_BYTES_MAX`], read within [`CONSOLE_REQUEST_TIMEOUT`]; every ZooKeeper
//! request within [`CONSOLE_REQUEST_TIMEOUT`]; a page of children at most
//! [`CHILDREN_PAGE_MAX`] names (one sorted list cached per session, so paging a parent
//! with a million children reads it once); member probes within [`PROBE_TIMEOUT`], at most
//! [`PROBE_REPLY_BYTES_MAX`] read. A POST must carry `X-Rzk-Console: 1` (a header a page
//! of another origin cannot send without a CORS preflight this server never grants) and
//! the session cookie is `HttpOnly; SameSite=Strict`.

use super::admin::{plain, HttpConn, HttpResponse};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use rzk_client::{Acl, Client, CreateOptions, Stat};
use rzk_config::ServerConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Console sessions (logins) at once, at most.
pub const CONSOLE_SESSIONS_MAX: usize = 16;
/// A console session unused for this long is closed.
pub const CONSOLE_IDLE: Duration = Duration::from_secs(600);
/// The largest request body read (a znode's data, base64 or text, with its JSON).
pub const CONSOLE_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Reading a body, connecting, and each ZooKeeper request: at most this long.
pub const CONSOLE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Children names in one page, at most.
pub const CHILDREN_PAGE_MAX: usize = 1000;
/// A cached children list is read again after this long.
pub const CHILDREN_CACHE_TTL: Duration = Duration::from_secs(5);
/// Probing one member (`srvr` on its client port): at most this long.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The most of a probe's answer read.
pub const PROBE_REPLY_BYTES_MAX: usize = 4096;
/// The session cookie.
const COOKIE: &str = "rzk_console";

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE_CSS: &str = include_str!("console/style.css");

/// One member of the ensemble as the console shows it.
#[derive(Debug, Clone)]
struct Member {
    id: u64,
    /// `host:port` of its client port, when known.
    client: Option<String>,
    participant: bool,
    me: bool,
}

/// One console login: a session of this server, and the children list it last paged.
struct ConsoleSession {
    client: Client,
    user: Option<String>,
    last_used: Mutex<Instant>,
    children: tokio::sync::Mutex<Option<ChildrenCache>>,
}

struct ChildrenCache {
    path: String,
    read_at: Instant,
    names: Vec<String>,
    stat: Stat,
}

/// The console's state, shared by the AdminServer's HTTP tasks.
pub(crate) struct Console {
    allow_remote: bool,
    /// The local client port, as the console's sessions connect to it.
    connect: Option<String>,
    command_url: String,
    members: Vec<Member>,
    sessions: Mutex<HashMap<String, Arc<ConsoleSession>>>,
}

/// What an API call answers: JSON and its status.
type ApiResult = Result<Value, (StatusCode, Value)>;

fn api_error(status: StatusCode, msg: impl Into<String>) -> (StatusCode, Value) {
    (status, json!({ "error": msg.into() }))
}

/// A ZooKeeper error as the console shows it: its name (KeeperException.Code) and code.
fn zk_error(e: rzk_client::Error) -> (StatusCode, Value) {
    use rzk_client::Error as E;
    let status = match e {
        E::NoAuth | E::AuthFailed => StatusCode::FORBIDDEN,
        E::NoNode => StatusCode::NOT_FOUND,
        E::BadVersion | E::NodeExists | E::NotEmpty => StatusCode::CONFLICT,
        E::InvalidPath { .. } | E::BadArguments | E::InvalidAcl | E::NoChildrenForEphemerals => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, json!({ "error": e.to_string(), "code": e.code(), "sessionLost": e.is_session_lost() }))
}

fn zxid_hex(z: rzk_client::Zxid) -> String {
    format!("0x{:x}", z.0)
}

fn stat_json(s: &Stat) -> Value {
    json!({
        "czxid": zxid_hex(s.czxid), "mzxid": zxid_hex(s.mzxid), "pzxid": zxid_hex(s.pzxid),
        "ctime": s.ctime, "mtime": s.mtime, "version": s.version, "cversion": s.cversion,
        "aversion": s.aversion, "ephemeralOwner": format!("0x{:x}", s.ephemeral_owner),
        "dataLength": s.data_length, "numChildren": s.num_children,
    })
}

/// ZooKeeper's permission letters (`cdrwa`, as zkCli.sh's getAcl prints them).
fn perms_string(p: i32) -> String {
    use rzk_client::perms;
    [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

fn acl_json(a: &Acl) -> Value {
    json!({ "scheme": a.id.scheme, "id": a.id.id, "perms": perms_string(a.perms) })
}

/// Whether a peer is this machine (an IPv4-mapped loopback address too).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Whether a request's `Host` header names this machine by `localhost` or an IP address
/// (an HTTP/1.0 request without one too).
fn host_is_local(host: Option<&str>) -> bool {
    let Some(host) = host else { return true };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get_all(hyper::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// Parses `srvr`'s answer: its `Mode:` and `Zxid:` lines.
fn parse_srvr(text: &str) -> (Option<String>, Option<i64>) {
    let mut mode = None;
    let mut zxid = None;
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("Mode: ") {
            mode = Some(m.trim().to_string());
        } else if let Some(z) = line.strip_prefix("Zxid: ") {
            zxid = i64::from_str_radix(z.trim().trim_start_matches("0x"), 16).ok();
        }
    }
    if mode.is_none() && text.contains("not currently serving") {
        mode = Some("not serving".into());
    }
    (mode, zxid)
}

/// Asks `addr` for `srvr` within [`PROBE_TIMEOUT`], reading at most [`PROBE_REPLY_BYTES_MAX`].
async fn probe(addr: &str) -> Result<String, String> {
    let run = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"srvr").await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        (&mut s).take(PROBE_REPLY_BYTES_MAX as u64).read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(PROBE_TIMEOUT, run).await.unwrap_or_else(|_| Err("no answer in time".into()))
}

impl Console {
    /// The console of a server configured by `cfg`, or `None` when `rzk.console.enabled=false`.
    pub(crate) fn new(cfg: &ServerConfig, my_id: Option<u64>, command_url: &str) -> Option<Arc<Console>> {
        if !cfg.console.enabled {
            return None;
        }
        let listen = cfg.client_listen_address(my_id).ok().flatten();
        let connect = listen.map(|hp| {
            let host = match hp.host.as_str() {
                "0.0.0.0" | "" => "127.0.0.1".to_string(),
                "::" | "[::]" => "[::1]".to_string(),
                h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
                h => h.to_string(),
            };
            format!("{host}:{}", hp.port)
        });
        let members = if cfg.servers.is_empty() {
            vec![Member { id: my_id.unwrap_or(0), client: connect.clone(), participant: true, me: true }]
        } else {
            cfg.servers
                .values()
                .map(|s| {
                    let me = my_id == Some(s.id);
                    let client = if me { connect.clone() } else { s.client_address.as_ref().map(|c| format!("{}:{}", c.host, c.port)) };
                    Member { id: s.id, client, participant: s.peer_type == rzk_config::PeerType::Participant, me }
                })
                .collect()
        };
        tracing::info!(allow_remote = cfg.console.allow_remote, client_port = ?connect, "web console on the AdminServer at /console/");
        Some(Arc::new(Console {
            allow_remote: cfg.console.allow_remote,
            connect,
            command_url: command_url.to_string(),
            members,
            sessions: Mutex::new(HashMap::new()),
        }))
    }

    /// Serves one request under `/console`.
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let peer = req.extensions().get::<HttpConn>().map(|c| c.peer.ip());
        if !self.allow_remote && !peer.is_some_and(is_loopback) {
            return plain(
                StatusCode::FORBIDDEN,
                "text/plain",
                "The rzk console is served to loopback clients only (set rzk.console.allowRemote=true to expose it).\n",
            );
        }
        if !self.allow_remote && !host_is_local(req.headers().get(hyper::header::HOST).map(|h| h.to_str().unwrap_or("?"))) {
            // A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) would
            // otherwise be this console's origin in the browser.
            return plain(StatusCode::FORBIDDEN, "text/plain", "The rzk console answers requests for localhost or an IP address only.\n");
        }
        let path = req.uri().path().to_string();
        let asset = |ct: &str, body: &'static str| {
            let mut r = plain(StatusCode::OK, ct, Bytes::from_static(body.as_bytes()));
            r.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-cache"));
            r
        };
        match (req.method(), path.as_str()) {
            (&Method::GET, "/console") => {
                let mut r = plain(StatusCode::MOVED_PERMANENTLY, "text/plain", "");
                r.headers_mut().insert(hyper::header::LOCATION, hyper::header::HeaderValue::from_static("/console/"));
                return r;
            }
            (&Method::GET, "/console/" | "/console/index.html") => return asset("text/html; charset=utf-8", INDEX_HTML),
            (&Method::GET, "/console/app.js") => return asset("text/javascript; charset=utf-8", APP_JS),
            (&Method::GET, "/console/style.css") => return asset("text/css; charset=utf-8", STYLE_CSS),
            _ => {}
        }
        let Some(api) = path.strip_prefix("/console/api/") else {
            return plain(StatusCode::NOT_FOUND, "text/plain", "Not Found\n");
        };
        let api = api.to_string();
        let post = req.method() == Method::POST;
        if post && req.headers().get("x-rzk-console").is_none_or(|v| v.as_bytes() != b"1") {
            return json_reply(Err(api_error(StatusCode::FORBIDDEN, "console requests must carry X-Rzk-Console: 1")));
        }
        if !post && req.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "Method Not Allowed\n");
        }
        let token = cookie(&req, COOKIE);
        let query = super::admin::parse_query(req.uri().query().unwrap_or(""));
        let body = if post {
            match read_body(req).await {
                Ok(v) => v,
                Err(e) => return json_reply(Err(e)),
            }
        } else {
            Value::Null
        };
        self.reap();
        match api.as_str() {
            "login" if post => return self.login(token, &body).await,
            "logout" if post => {
                if let Some(t) = token {
                    self.close(&t).await;
                }
                return json_reply(Ok(json!({ "ok": true })));
            }
            "ensemble" => return json_reply(Ok(self.ensemble().await)),
            _ => {}
        }
        let Some(session) = token.as_deref().and_then(|t| self.session(t)) else {
            return json_reply(Err(api_error(StatusCode::UNAUTHORIZED, "not logged in")));
        };
        let arg = |k: &str| query.get(k).cloned().or_else(|| body.get(k).and_then(Value::as_str).map(str::to_string));
        let path_arg = arg("path").unwrap_or_else(|| "/".into());
        let result = match (api.as_str(), post) {
            ("info", false) => Ok(json!({
                "user": session.user, "commandUrl": self.command_url,
                "session": format!("0x{:x}", session.client.session_info().id.0),
            })),
            ("children", false) => {
                let offset = query.get("offset").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
                let limit = query.get("limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(100).clamp(1, CHILDREN_PAGE_MAX);
                children(&session, &path_arg, offset, limit).await
            }
            ("node", false) => node(&session.client, &path_arg).await,
            ("set", true) => {
                let version = body.get("version").and_then(Value::as_i64).unwrap_or(-1) as i32;
                match data_arg(&body) {
                    Ok(data) => {
                        session.client.set_data(&path_arg, &data, version).await.map(|s| json!({ "stat": stat_json(&s) })).map_err(zk_error)
                    }
                    Err(e) => Err(e),
                }
            }
            ("create", true) => match data_arg(&body) {
                Ok(data) => session
                    .client
                    .create(&path_arg, &data, &CreateOptions::persistent())
                    .await
                    .map(|p| json!({ "path": p }))
                    .map_err(zk_error),
                Err(e) => Err(e),
            },
            ("delete", true) => {
                let version = body.get("version").and_then(Value::as_i64).unwrap_or(-1) as i32;
                session.client.delete(&path_arg, version).await.map(|()| json!({ "ok": true })).map_err(zk_error)
            }
            _ => Err(api_error(StatusCode::NOT_FOUND, format!("no console API {api}"))),
        };
        if let Err((_, v)) = &result {
            if v.get("sessionLost") == Some(&Value::Bool(true)) {
                // The login's ZooKeeper session is gone: so is the login (the page logs in again).
                if let Some(t) = token.as_deref() {
                    self.close(t).await;
                }
                return json_reply(Err(api_error(StatusCode::UNAUTHORIZED, "the console's ZooKeeper session ended; log in again")));
            }
        }
        json_reply(result)
    }

    fn session(&self, token: &str) -> Option<Arc<ConsoleSession>> {
        let s = self.sessions.lock().expect("console sessions").get(token).cloned()?;
        *s.last_used.lock().expect("console session") = Instant::now();
        Some(s)
    }

    /// Closes the sessions idle for longer than [`CONSOLE_IDLE`] (their clients close in the
    /// background).
    fn reap(&self) {
        let mut gone = Vec::new();
        self.sessions.lock().expect("console sessions").retain(|_, s| {
            let keep = s.last_used.lock().expect("console session").elapsed() < CONSOLE_IDLE;
            if !keep {
                gone.push(s.clone());
            }
            keep
        });
        for s in gone {
            tokio::spawn(async move { s.client.close().await });
        }
    }

    async fn close(&self, token: &str) {
        let s = self.sessions.lock().expect("console sessions").remove(token);
        if let Some(s) = s {
            s.client.close().await;
        }
    }

    /// A new console session: a client of the local client port, logged in with digest
    /// credentials when given (`{"user": ..., "password": ...}`), anonymous otherwise.
    async fn login(&self, old: Option<String>, body: &Value) -> HttpResponse {
        if let Some(t) = old {
            self.close(&t).await;
        }
        let Some(connect) = &self.connect else {
            return json_reply(Err(api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the console needs a plain clientPort to connect to (this server has none)",
            )));
        };
        if self.sessions.lock().expect("console sessions").len() >= CONSOLE_SESSIONS_MAX {
            return json_reply(Err(api_error(StatusCode::SERVICE_UNAVAILABLE, "too many console sessions; try again later")));
        }
        let user = body.get("user").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string);
        let password = body.get("password").and_then(Value::as_str).unwrap_or("");
        if user.as_deref().is_some_and(|u| u.contains(':')) {
            return json_reply(Err(api_error(StatusCode::BAD_REQUEST, "a digest user name cannot contain ':'")));
        }
        let mut cfg = rzk_client::Config {
            connect_timeout: CONSOLE_REQUEST_TIMEOUT,
            request_timeout: Some(CONSOLE_REQUEST_TIMEOUT),
            queue_requests_max: 64,
            in_flight_requests_max: 64,
            ..rzk_client::Config::default()
        };
        if let Some(u) = &user {
            cfg.auth.push(("digest".into(), format!("{u}:{password}").into_bytes()));
        }
        let client = match Client::connect_with(connect, cfg).await {
            Ok(c) => c,
            Err(e) => return json_reply(Err(api_error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot connect to {connect}: {e}")))),
        };
        let token: String = (0..16).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let session = Arc::new(ConsoleSession {
            client,
            user: user.clone(),
            last_used: Mutex::new(Instant::now()),
            children: tokio::sync::Mutex::new(None),
        });
        let admitted = {
            let mut sessions = self.sessions.lock().expect("console sessions");
            let room = sessions.len() < CONSOLE_SESSIONS_MAX;
            if room {
                sessions.insert(token.clone(), session.clone());
            }
            room
        };
        if !admitted {
            session.client.close().await;
            return json_reply(Err(api_error(StatusCode::SERVICE_UNAVAILABLE, "too many console sessions; try again later")));
        }
        tracing::info!(user = ?user, session = format!("0x{:x}", session.client.session_info().id.0), "console login");
        let mut r = json_reply(Ok(json!({ "user": user, "session": format!("0x{:x}", session.client.session_info().id.0) })));
        let c = format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict");
        r.headers_mut().insert(hyper::header::SET_COOKIE, hyper::header::HeaderValue::from_str(&c).expect("cookie"));
        r
    }

    /// Every member: its role and zxid from `srvr` on its client port, whether it answered,
    /// and its lag behind the leader in transactions (same epoch only).
    async fn ensemble(&self) -> Value {
        // All at once, each within PROBE_TIMEOUT; members are few (`server.N` lines).
        let mut probes = tokio::task::JoinSet::new();
        for (i, m) in self.members.iter().cloned().enumerate() {
            probes.spawn(async move {
                let answer = match &m.client {
                    Some(addr) => Some(probe(addr).await),
                    None => None,
                };
                (i, m, answer)
            });
        }
        let mut answers = Vec::with_capacity(self.members.len());
        while let Some(r) = probes.join_next().await {
            if let Ok(a) = r {
                answers.push(a);
            }
        }
        answers.sort_by_key(|(i, _, _)| *i);
        let answers: Vec<(Member, Option<Result<String, String>>)> = answers.into_iter().map(|(_, m, a)| (m, a)).collect();
        let leader_zxid = answers.iter().find_map(|(_, a)| match a {
            Some(Ok(text)) => match parse_srvr(text) {
                (Some(mode), Some(z)) if mode == "leader" || mode == "standalone" => Some(z),
                _ => None,
            },
            _ => None,
        });
        let rows: Vec<Value> = answers
            .into_iter()
            .map(|(m, a)| {
                let (reachable, mode, zxid, error) = match a {
                    None => (Value::Null, None, None, Some("client address unknown (no ;clientPort on its server.N line)".to_string())),
                    Some(Ok(text)) => {
                        let (mode, zxid) = parse_srvr(&text);
                        (json!(true), mode, zxid, None)
                    }
                    Some(Err(e)) => (json!(false), None, None, Some(e)),
                };
                let lag = match (leader_zxid, zxid) {
                    (Some(l), Some(z)) if l >> 32 == z >> 32 => json!((l - z).max(0)),
                    _ => Value::Null,
                };
                json!({
                    "id": m.id, "me": m.me, "participant": m.participant, "client": m.client,
                    "reachable": reachable, "mode": mode, "zxid": zxid.map(|z| format!("0x{z:x}")),
                    "lag": lag, "error": error,
                })
            })
            .collect();
        json!({ "members": rows })
    }
}

/// A page of `path`'s children, sorted, with the total; the list is read once and kept
/// per session for [`CHILDREN_CACHE_TTL`] for the pages after the first (the first page
/// always reads it again).
async fn children(session: &ConsoleSession, path: &str, offset: usize, limit: usize) -> ApiResult {
    let mut cache = session.children.lock().await;
    let fresh = cache.as_ref().is_some_and(|c| c.path == path && c.read_at.elapsed() < CHILDREN_CACHE_TTL && offset > 0);
    if !fresh {
        let (mut names, stat) = session.client.get_children2(path).await.map_err(zk_error)?;
        names.sort_unstable();
        *cache = Some(ChildrenCache { path: path.to_string(), read_at: Instant::now(), names, stat });
    }
    let c = cache.as_ref().expect("children cached");
    let page: Vec<&String> = c.names.iter().skip(offset).take(limit).collect();
    Ok(json!({ "path": path, "total": c.names.len(), "offset": offset, "children": page, "stat": stat_json(&c.stat) }))
}

/// A znode: its data (text when it is UTF-8, and base64), Stat and ACL.
async fn node(client: &Client, path: &str) -> ApiResult {
    let (data, stat) = client.get_data(path).await.map_err(zk_error)?;
    let acl = match client.get_acl(path).await {
        Ok((acl, _)) => json!(acl.iter().map(acl_json).collect::<Vec<_>>()),
        Err(e) => json!({ "error": e.to_string() }),
    };
    let text = std::str::from_utf8(&data).ok();
    Ok(json!({
        "path": path,
        "data": text,
        "dataBase64": base64::engine::general_purpose::STANDARD.encode(&data),
        "stat": stat_json(&stat),
        "acl": acl,
    }))
}

/// The data of a write: `data` (text) or `dataBase64`.
fn data_arg(body: &Value) -> Result<Vec<u8>, (StatusCode, Value)> {
    if let Some(b) = body.get("dataBase64").and_then(Value::as_str) {
        return base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| api_error(StatusCode::BAD_REQUEST, format!("dataBase64 is not base64: {e}")));
    }
    Ok(body.get("data").and_then(Value::as_str).unwrap_or("").as_bytes().to_vec())
}

/// A JSON body of at most [`CONSOLE_BODY_BYTES_MAX`], within [`CONSOLE_REQUEST_TIMEOUT`].
async fn read_body(req: Request<Incoming>) -> Result<Value, (StatusCode, Value)> {
    let limited = http_body_util::Limited::new(req.into_body(), CONSOLE_BODY_BYTES_MAX);
    let bytes = match tokio::time::timeout(CONSOLE_REQUEST_TIMEOUT, limited.collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) => {
            return Err(api_error(StatusCode::PAYLOAD_TOO_LARGE, format!("request bodies are at most {CONSOLE_BODY_BYTES_MAX} bytes")))
        }
        Err(_) => return Err(api_error(StatusCode::REQUEST_TIMEOUT, "the request body did not come in time")),
    };
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| api_error(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))
}

fn json_reply(r: ApiResult) -> HttpResponse {
    let (status, v) = match r {
        Ok(v) => (StatusCode::OK, v),
        Err((s, v)) => (s, v),
    };
    let mut resp = plain(status, "application/json", v.to_string());
    resp.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_peers() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("127.3.2.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn host_names_of_a_loopback_console() {
        for ok in [None, Some("127.0.0.1:8080"), Some("localhost:8080"), Some("LOCALHOST"), Some("[::1]:8080"), Some("10.1.2.3")] {
            assert!(host_is_local(ok), "{ok:?}");
        }
        for bad in [Some("evil.example:8080"), Some("evil.example"), Some("?"), Some("[evil]:80"), Some("127.0.0.1.evil.example")] {
            assert!(!host_is_local(bad), "{bad:?}");
        }
    }

    #[test]
    fn srvr_answers() {
        let t = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nZxid: 0x100000003\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_srvr(t), (Some("follower".into()), Some(0x1_0000_0003)));
        assert_eq!(parse_srvr("This ZooKeeper instance is not currently serving requests\n").0.as_deref(), Some("not serving"));
        assert_eq!(parse_srvr(""), (None, None));
    }

    #[test]
    fn permission_letters() {
        assert_eq!(perms_string(rzk_client::perms::ALL), "cdrwa");
        assert_eq!(perms_string(rzk_client::perms::READ | rzk_client::perms::ADMIN), "ra");
    }
}
