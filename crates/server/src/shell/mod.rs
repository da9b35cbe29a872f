//! The thin shell around the pure member: sockets, the clock, signals and the files.
//!
//! One driver task ([`driver`]) owns the [`crate::core::member::Member`] of a server,
//! standalone or ensemble member alike. Connection tasks (see [`conn`]) send it [`Event`]s
//! over one bounded channel; the peer transport ([`peer`]) and the storage threads
//! ([`durable`], `rzk-storage`) send it theirs; it feeds them to the member with the current
//! time and carries out what comes out. Four-letter words are answered here from the core,
//! because some need the process and the disk.

pub mod admin;
pub mod audit;
pub mod conn;
pub mod console;
pub mod driver;
pub mod durable;
pub mod dynconfig;
pub mod kerberos;
pub mod listen;
pub mod metrics;
pub mod peer;
pub mod peersec;
pub mod rolling;
pub mod tls;

pub(crate) use listen::spawn_acceptor;

pub use driver::{open_audit, run, run_with_audit};

use crate::core::fourlw::{self, ProcessInfo};
use crate::core::{ConnId, CoreConfig, ZooKeeperServer};
use conn::ConnTx;
use rzk_config::ServerConfig;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};

/// From a connection task to the driver.
#[derive(Debug)]
pub enum Event {
    /// `auth`: ids the connection authenticated as before its first frame (x509 over TLS).
    Accepted {
        conn: ConnId,
        peer: SocketAddr,
        auth: Vec<rzk_proto::Id>,
        tx: ConnTx,
    },
    Frame {
        conn: ConnId,
        payload: Vec<u8>,
    },
    FourLetterWord {
        conn: ConnId,
        word: String,
        /// `stmk`'s trace mask, read after the word.
        arg: Option<i64>,
    },
    Closed {
        conn: ConnId,
    },
}

/// From the driver to a connection task.
#[derive(Debug)]
pub enum Outbound {
    Frame { bytes: Vec<u8>, reply: bool },
    Close(String),
}

/// Counts connections per client address and in total; released when dropped.
pub struct ConnPermit {
    pub(crate) counts: Arc<Mutex<ConnCounts>>,
    pub(crate) ip: IpAddr,
}

#[derive(Default)]
pub(crate) struct ConnCounts {
    /// foldhash: seeded (an IPv6 client may choose its addresses) and far cheaper than
    /// SipHash, which cost ~550 instructions per accepted connection here.
    pub(crate) per_ip: HashMap<IpAddr, u32, foldhash::fast::RandomState>,
    pub(crate) total: u32,
    /// Connections refused for maxClientCnxns / maxCnxns, for `zk_connection_rejected`.
    pub(crate) rejected: u64,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("conn counts");
        c.total -= 1;
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The core's settings, from zoo.cfg.
pub fn core_config(cfg: &ServerConfig) -> CoreConfig {
    let tick = cfg.tick_time as i64;
    CoreConfig {
        // Standalone ZooKeeper seeds session ids with server id 1 (createSessionTrackerServerId).
        server_id: 1,
        tick_ms: tick,
        min_session_timeout_ms: cfg.min_session_timeout.map(|v| v as i32).unwrap_or((tick * 2) as i32),
        max_session_timeout_ms: cfg.max_session_timeout.map(|v| v as i32).unwrap_or((tick * 20) as i32),
        extended_types_enabled: cfg.extended_types_enabled,
        reconfig_enabled: cfg.reconfig_enabled,
        standalone_enabled: cfg.standalone_enabled,
        auth: auth_config(cfg),
        container_check_interval_ms: cfg.container_check_interval_ms as i64,
        container_max_never_used_interval_ms: cfg.container_max_never_used_interval_ms as i64,
        enforce_quota: cfg.enforce_quota,
        // Set by the driver once the audit log is open (`audit.enable`).
        audit_server_user: None,
        local_sessions_enabled: cfg.local_sessions_enabled,
        local_sessions_upgrading_enabled: cfg.local_sessions_upgrading_enabled,
        request_throttle_max_requests: cfg.request_throttle_max_requests as usize,
        request_throttle_stall_time_ms: cfg.request_throttle_stall_time_ms as i64,
        request_throttle_drop_stale: cfg.request_throttle_drop_stale,
        throttled_op_wait_time_ms: cfg.throttled_op_wait_time_ms as i64,
        connection_throttle: connection_throttle(&cfg.connection_throttle),
        large_request_threshold: cfg.large_request_threshold as i64,
        large_request_max_bytes: cfg.large_request_max_bytes as i64,
        leader_serves: cfg.leader_serves,
        // The one random input of the core (BLUE's drops): not a secret, only varied.
        seed: wall_ms() as u64 ^ ((std::process::id() as u64) << 32),
    }
}

/// BlueThrottle's settings as ZooKeeper applies them: with weights on, the bucket and its
/// fill count are in units of the global session's weight.
fn connection_throttle(t: &rzk_config::ConnectionThrottle) -> crate::core::throttle::ConnectionThrottleConfig {
    let scale = if t.weight_enabled { t.global_weight as i64 } else { 1 };
    crate::core::throttle::ConnectionThrottleConfig {
        max_tokens: t.tokens as i64 * scale,
        fill_time_ms: t.fill_time_ms as i64,
        fill_count: t.fill_count as i64 * scale,
        freeze_time_ms: t.freeze_time_ms as i64,
        drop_increase: t.drop_increase,
        drop_decrease: t.drop_decrease,
        decrease_ratio: t.decrease_ratio,
        weights: t.weight_enabled.then_some((t.global_weight as i64, t.local_weight as i64, t.renew_weight as i64)),
    }
}

/// Who is who: the digest super user, ACL checks, SASL (the JAAS users were read by
/// `rzk_config::load_with`; the nonce secret is drawn here), `enforce.auth`.
fn auth_config(cfg: &ServerConfig) -> crate::core::auth::AuthConfig {
    use crate::core::auth::{AuthConfig, SaslLogin};
    let s = &cfg.sasl;
    let sasl_login = s.credentials.as_ref().map(|users| SaslLogin {
        users: crate::core::sasl::SaslUsers { users: users.clone(), super_password: s.super_password.clone() },
        nonce_secret: rand::random(),
        // The Kerberos acceptor is acquired by the driver at start-up (`kerberos::login`).
        gssapi: None,
    });
    AuthConfig {
        super_digest: cfg.super_digest.clone(),
        skip_acl: cfg.skip_acl,
        sasl_provider: s.provider,
        sasl_super_users: s.super_users.clone(),
        let_any_sasl_user_do_x: s.let_any_sasl_user_do_x.clone(),
        sasl_login,
        allow_sasl_failed_clients: s.allow_failed_clients,
        enforce_auth_schemes: cfg.enforce_auth.enabled.then(|| cfg.enforce_auth.schemes.clone()),
    }
}

pub(crate) fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Binds the client port with SO_REUSEADDR, so a restarted server can bind at once.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The client address to listen on, from clientPortAddress and clientPort.
pub fn client_addr(cfg: &ServerConfig) -> Result<SocketAddr, String> {
    let port = cfg.client_port.unwrap_or(2181);
    let host = cfg.client_port_address.clone().unwrap_or_else(|| "0.0.0.0".to_string());
    let ip: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            use std::net::ToSocketAddrs;
            (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("clientPortAddress {host:?}: {e}"))?
                .next()
                .ok_or_else(|| format!("clientPortAddress {host:?} resolves to nothing"))?
                .ip()
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// The next connection on `listener`, or `None` once `shutdown` changes. A failed accept
/// (out of file descriptors, say) is logged with `what` the listener serves and tried again
/// after a short pause.
pub(crate) async fn accept_until_shutdown(
    listener: &TcpListener,
    shutdown: &mut watch::Receiver<bool>,
    what: &'static str,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => return Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => return None,
        }
    }
}

/// Waits for room in a bounded channel, or forever when there is nothing to send.
pub(crate) async fn reserve<T>(tx: Option<mpsc::Sender<T>>) -> Result<mpsc::OwnedPermit<T>, mpsc::error::SendError<()>> {
    match tx {
        Some(tx) => tx.reserve_owned().await,
        None => std::future::pending().await,
    }
}

pub(crate) struct ProcessInfoSource {
    pub(crate) cfg: ServerConfig,
    /// An ensemble member's id (`conf` then prints the quorum part).
    pub(crate) my_id: Option<u64>,
}

/// Answers a four-letter word, honouring `4lw.commands.whitelist`.
pub(crate) fn four_letter_word(
    core: &mut ZooKeeperServer,
    p: &ProcessInfoSource,
    word: &str,
    arg: Option<i64>,
    conn: ConnId,
    rejected: u64,
) -> String {
    if !p.cfg.four_letter_word_whitelist.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    if core.role() == crate::core::Role::NotServing && matches!(word, "crst" | "srst" | "conf" | "dirs") {
        // Between roles ZooKeeper answers these (and the core's words) with this line.
        return format!("{}\n", fourlw::ZK_NOT_SERVING);
    }
    match word {
        // SetTraceMaskCommand: sets ZooTrace's mask and prints it (no newline), serving or not.
        "stmk" => match arg {
            Some(mask) => {
                core.set_trace_mask(mask);
                mask.to_string()
            }
            None => String::new(),
        },
        "crst" => {
            core.reset_conn_stats();
            "Connection stats reset.\n".to_string()
        }
        "srst" => {
            core.reset_stats();
            "Server stats reset.\n".to_string()
        }
        "conf" => p.cfg.to_conf_4lw(&conf_runtime(&p.cfg, p.my_id)),
        "envi" => fourlw::envi(&env_info()),
        "dirs" => {
            let rt = conf_runtime(&p.cfg, p.my_id);
            format!("datadir_size: {}\nlogdir_size: {}\n", rt.data_dir_size, rt.data_log_size)
        }
        _ => fourlw::render(
            word,
            &core.snapshot(),
            &ProcessInfo { fd_count: fd_count(), fd_limit: fd_limit(), connections_rejected: rejected, asking_conn: Some(conn) },
        ),
    }
}

/// The process and machine facts `envi` prints.
pub(crate) fn env_info() -> fourlw::EnvInfo {
    let read = |p: &str| std::fs::read_to_string(p).map(|v| v.trim().to_string());
    fourlw::EnvInfo {
        host: read("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into()),
        cwd: std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        user: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        home: std::env::var("HOME").unwrap_or_default(),
        os_version: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
        tmp_dir: std::env::temp_dir().display().to_string(),
        arch: std::env::consts::ARCH,
        memory_free_mb: proc_kb("/proc/meminfo", "MemAvailable:") / 1024,
        memory_total_mb: proc_kb("/proc/meminfo", "MemTotal:") / 1024,
        process_rss_mb: proc_kb("/proc/self/status", "VmRSS:") / 1024,
    }
}

/// A `key: N kB` field of a /proc file (0 when missing).
fn proc_kb(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .unwrap_or(0)
}

pub(crate) fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn conf_runtime(cfg: &ServerConfig, my_id: Option<u64>) -> rzk_config::ConfRuntime {
    let data = cfg.data_dir.join("version-2");
    let log = cfg.data_log_dir.clone().unwrap_or_else(|| cfg.data_dir.clone()).join("version-2");
    rzk_config::ConfRuntime {
        data_dir_size: dir_size(&data),
        data_log_size: dir_size(&log),
        cwd: std::env::current_dir().ok(),
        client_port: cfg.client_port,
        secure_client_port: cfg.secure_client_port,
        my_id,
    }
}

/// Open file descriptors of this process (`zk_open_file_descriptor_count`).
pub fn fd_count() -> u64 {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0)
}

/// The soft limit on open files (`zk_max_file_descriptor_count`).
pub fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
