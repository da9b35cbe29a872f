//! The thin shell around the pure core: sockets, the clock, signals and the log.
//!
//! One driver task owns the [`ZooKeeperServer`] core. Connection tasks (see [`conn`]) send it
//! [`Event`]s over one bounded channel; it feeds them to the core with the current time,
//! executes the actions that come out, and ticks the core's clock. Four-letter words are
//! answered here from a snapshot of the core, because some need the process and the disk.
//!
//! Durability ([`durable`]): the data directory is recovered before the driver starts;
//! appends go to the log worker, and a write is answered only once its txn is fsynced.

pub mod admin;
pub mod conn;
pub mod durable;
pub mod ensemble;
pub mod metrics;
pub mod peer;

use crate::core::fourlw::{self, ProcessInfo};
use crate::core::{Action, ConnId, CoreConfig, Input, ZooKeeperServer};
use rzk_config::ServerConfig;
use rzk_storage::worker::StorageEvent;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};

/// From a connection task to the driver.
#[derive(Debug)]
pub enum Event {
    Accepted { conn: ConnId, peer: SocketAddr, tx: mpsc::UnboundedSender<Outbound> },
    Frame { conn: ConnId, payload: Vec<u8> },
    FourLetterWord { conn: ConnId, word: String },
    Closed { conn: ConnId },
}

/// From the driver to a connection task.
#[derive(Debug)]
pub enum Outbound {
    Frame { bytes: Vec<u8>, reply: bool },
    Close(String),
}

/// Counts connections per client address and in total; released when dropped.
pub struct ConnPermit {
    counts: Arc<Mutex<ConnCounts>>,
    ip: IpAddr,
}

#[derive(Default)]
pub(crate) struct ConnCounts {
    per_ip: HashMap<IpAddr, u32>,
    total: u32,
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
    let prop = |k: &str| cfg.system_properties.get(k).cloned();
    let container_check = prop("znode.container.checkIntervalMs")
        .or_else(|| prop("zookeeper.znode.container.checkIntervalMs"))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(60_000);
    let never_used = prop("znode.container.maxNeverUsedIntervalMs")
        .or_else(|| prop("zookeeper.znode.container.maxNeverUsedIntervalMs"))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0);
    CoreConfig {
        // Standalone ZooKeeper seeds session ids with server id 1 (createSessionTrackerServerId).
        server_id: 1,
        tick_ms: tick,
        min_session_timeout_ms: cfg.min_session_timeout.map(|v| v as i32).unwrap_or((tick * 2) as i32),
        max_session_timeout_ms: cfg.max_session_timeout.map(|v| v as i32).unwrap_or((tick * 20) as i32),
        extended_types_enabled: cfg.extended_types_enabled,
        reconfig_enabled: cfg.reconfig_enabled,
        auth: crate::core::auth::AuthConfig { super_digest: cfg.super_digest.clone(), skip_acl: cfg.skip_acl },
        container_check_interval_ms: container_check,
        container_max_never_used_interval_ms: never_used,
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

/// Runs a standalone server until `shutdown` turns true. Returns once every task is done.
pub async fn run(cfg: ServerConfig, listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    let started = Instant::now();
    let now_ms = move || started.elapsed().as_millis() as i64;
    let tick = Duration::from_millis(50);
    let storage_cfg = durable::storage_config(&cfg);
    let (n0, w0) = (now_ms(), wall_ms());
    let recover_cfg = cfg.clone();
    let recover_storage = storage_cfg.clone();
    let started_core = tokio::task::spawn_blocking(move || durable::recover(&recover_cfg, &recover_storage, n0, w0))
        .await
        .map_err(std::io::Error::other)??;
    let mut core = started_core.core;
    let mut storage = durable::Durable::start(storage_cfg)?;
    if started_core.snapshot_now {
        storage.start_snapshot(&core);
    }
    let purge_every = Duration::from_secs(3600 * storage.config().purge_interval_hours.max(1));
    let purge_enabled = storage.config().purge_interval_hours > 0;
    let mut purge_timer = tokio::time::interval(purge_every);
    let inbox_capacity = (cfg.global_outstanding_limit as usize).max(64);
    let (inbox_tx, mut inbox) = mpsc::channel::<Event>(inbox_capacity);
    let counts = Arc::new(Mutex::new(ConnCounts::default()));
    let frame_bytes_max = cfg.jute_maxbuffer as usize;
    let max_per_ip = cfg.max_client_cnxns;
    let max_total = cfg.max_cnxns;

    let mut admin_rx = admin::start(&cfg, None, shutdown.clone()).await.map_err(std::io::Error::other)?;
    let acceptor = spawn_acceptor(listener, inbox_tx.clone(), counts.clone(), conn::ConnLimits { frame_bytes_max, outstanding_max: 1000 }, max_per_ip, max_total, shutdown.clone());
    drop(inbox_tx);

    // The driver loop: the only owner of the core.
    let mut conns: HashMap<ConnId, mpsc::UnboundedSender<Outbound>> = HashMap::new();
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let process = ProcessInfoSource { cfg: cfg.clone(), my_id: None };
    let mut fatal: Option<String> = None;
    let mut snapshot_deferred: u32 = 0;
    loop {
        let log_sender = storage.log_sender();
        // A snapshot step (up to SNAPSHOT_STEP_BYTES of serialization on this task) is taken
        // when no client request is waiting, or after SNAPSHOT_STEP_DEFER turns without one,
        // so requests do not queue behind it and a snapshot still finishes under saturation.
        let snap_sender = if inbox.is_empty() || snapshot_deferred >= durable::SNAPSHOT_STEP_DEFER {
            storage.snapshot_sender()
        } else {
            None
        };
        if storage.snapshot_sender().is_some() {
            snapshot_deferred += 1;
        }
        let accepting = storage.pending.len() < durable::PENDING_APPENDS_MAX;
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = ticker.tick() => {
                core.handle(now_ms(), wall_ms(), Input::Tick);
            }
            ev = storage.events.recv() => {
                let Some(ev) = ev else { break };
                let (n, w) = (now_ms(), wall_ms());
                match ev {
                    StorageEvent::Persisted { zxid } => core.handle(n, w, Input::Persisted { zxid }),
                    StorageEvent::AppendFailed { zxid, reason } => {
                        tracing::error!(from = %zxid, reason = %reason, "the transaction log refused writes; answering them with ConnectionLoss");
                        core.handle(n, w, Input::AppendFailed { zxid });
                    }
                    StorageEvent::SnapshotDue => storage.start_snapshot(&core),
                    StorageEvent::SnapshotWritten { zxid, result } => storage.snapshot_written(zxid, &result),
                    StorageEvent::Fatal(msg) => {
                        fatal = Some(msg);
                        break;
                    }
                    StorageEvent::Done { .. } => {} // the ensemble log worker's; not used standalone
                }
            }
            permit = reserve(log_sender) => {
                match permit {
                    Ok(p) => storage.send_pending(p),
                    Err(_) => {
                        fatal = Some("the transaction log worker stopped".into());
                        break;
                    }
                }
            }
            permit = reserve(snap_sender) => {
                snapshot_deferred = 0;
                match permit {
                    Ok(p) => storage.snapshot_step(&core, p),
                    Err(_) => storage.snapshot_lost(),
                }
            }
            _ = purge_timer.tick(), if purge_enabled => {
                let c = storage.config().clone();
                tokio::task::spawn_blocking(move || durable::purge(&c));
            }
            Some(req) = admin::recv(&mut admin_rx) => admin::answer(&mut core, admin::rejected(&counts), req),
            ev = inbox.recv(), if accepting => {
                let Some(ev) = ev else { break };
                let (n, w) = (now_ms(), wall_ms());
                client_events(&mut core, &mut conns, &process, &counts, n, w, ev, &mut inbox);
            }
        }
        execute(&mut core, &mut conns, &mut storage);
        storage.flush();
    }
    if let Some(msg) = fatal {
        // Nothing more may be acknowledged: stop at once; recovery on restart sorts it out.
        tracing::error!("{msg}");
        acceptor.abort();
        return Err(std::io::Error::other(msg));
    }
    tracing::info!("shutting down");
    for (_, tx) in conns.drain() {
        let _ = tx.send(Outbound::Close("server shutting down".into()));
    }
    acceptor.abort();
    storage.shutdown().await;
    Ok(())
}

/// Feeds `first` and whatever else the connection tasks have queued (up to a bound) to the
/// core: accepted connections, request frames, four-letter words (answered here from a
/// snapshot of the core, then the connection closes), closed connections. Both drivers use it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn client_events(
    core: &mut ZooKeeperServer,
    conns: &mut HashMap<ConnId, mpsc::UnboundedSender<Outbound>>,
    process: &ProcessInfoSource,
    counts: &Mutex<ConnCounts>,
    n: i64,
    w: i64,
    first: Event,
    inbox: &mut mpsc::Receiver<Event>,
) {
    let mut next = Some(first);
    let mut taken = 0;
    while let Some(ev) = next.take() {
        match ev {
            Event::Accepted { conn, peer, tx } => {
                conns.insert(conn, tx);
                core.handle(n, w, Input::Accepted { conn, peer });
            }
            Event::Frame { conn, payload } => core.handle(n, w, Input::Frame { conn, payload }),
            Event::FourLetterWord { conn, word } => {
                let rejected = counts.lock().expect("conn counts").rejected;
                let text = four_letter_word(core, process, &word, conn, rejected);
                if let Some(tx) = conns.remove(&conn) {
                    let _ = tx.send(Outbound::Frame { bytes: text.into_bytes(), reply: false });
                    let _ = tx.send(Outbound::Close(format!("four letter word {word}")));
                }
                core.handle(n, w, Input::Closed { conn });
            }
            Event::Closed { conn } => {
                conns.remove(&conn);
                core.handle(n, w, Input::Closed { conn });
            }
        }
        taken += 1;
        if taken < 256 {
            next = inbox.try_recv().ok();
        }
    }
}

/// The client accept loop: enforces maxClientCnxns / maxCnxns and starts one task per
/// connection. Shared by the standalone and the ensemble driver.
pub(crate) fn spawn_acceptor(
    listener: TcpListener,
    accept_inbox: mpsc::Sender<Event>,
    accept_counts: Arc<Mutex<ConnCounts>>,
    limits: conn::ConnLimits,
    max_per_ip: u32,
    max_total: u32,
    mut accept_shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next_conn: ConnId = 1;
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = accept_shutdown.changed() => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let permit = {
                let mut c = accept_counts.lock().expect("conn counts");
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
                    Some(ConnPermit { counts: accept_counts.clone(), ip: peer.ip() })
                }
            };
            let Some(permit) = permit else {
                drop(stream);
                continue;
            };
            let conn = next_conn;
            next_conn += 1;
            tokio::spawn(conn::run(stream, conn, peer, accept_inbox.clone(), limits, permit));
        }
    })
}

/// Waits for room in a bounded channel, or forever when there is nothing to send.
pub(crate) async fn reserve<T>(tx: Option<mpsc::Sender<T>>) -> Result<mpsc::OwnedPermit<T>, mpsc::error::SendError<()>> {
    match tx {
        Some(tx) => tx.reserve_owned().await,
        None => std::future::pending().await,
    }
}

/// Runs the core's actions: frames to connections, appends to the log worker's queue.
fn execute(core: &mut ZooKeeperServer, conns: &mut HashMap<ConnId, mpsc::UnboundedSender<Outbound>>, storage: &mut durable::Durable) {
    loop {
        let actions = core.take_actions();
        if actions.is_empty() {
            return;
        }
        for a in actions {
            match a {
                Action::Send { conn, frame, reply } => {
                    if let Some(tx) = conns.get(&conn) {
                        let _ = tx.send(Outbound::Frame { bytes: frame, reply });
                    }
                }
                Action::Close { conn, reason } => {
                    tracing::debug!(conn, reason = %reason, "closing connection");
                    if let Some(tx) = conns.remove(&conn) {
                        let _ = tx.send(Outbound::Close(reason));
                    }
                }
                Action::Append(record) => storage.append(record.header.zxid, record.to_bytes()),
                // A standalone core never leaves Role::Standalone, so it has no peers to talk to.
                a @ (Action::Forward { .. } | Action::Revalidate { .. } | Action::RevalidateReply { .. } | Action::SyncReply { .. }) => {
                    tracing::error!(action = ?a, "ensemble action from a standalone server; ignored")
                }
            }
        }
    }
}

pub(crate) struct ProcessInfoSource {
    pub(crate) cfg: ServerConfig,
    /// An ensemble member's id (`conf` then prints the quorum part).
    pub(crate) my_id: Option<u64>,
}

/// Answers a four-letter word, honouring `4lw.commands.whitelist`.
pub(crate) fn four_letter_word(core: &mut ZooKeeperServer, p: &ProcessInfoSource, word: &str, conn: ConnId, rejected: u64) -> String {
    if !p.cfg.four_letter_word_whitelist.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    if core.role() == crate::core::Role::NotServing && matches!(word, "crst" | "srst" | "conf" | "dirs") {
        // Between roles ZooKeeper answers these (and the core's words) with this line.
        return format!("{}\n", fourlw::ZK_NOT_SERVING);
    }
    match word {
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
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
