//! The four-letter words answered from the core's state, in Apache ZooKeeper 3.8's formats so
//! that existing tools parse them: ruok, srvr, stat, cons, mntr, wchs, wchc, wchp, dump, isro.
//! (conf, envi and dirs need the process and the disk; the shell answers those.)

use crate::core::server::{ConnStats, ServerStats};
use rzk_proto::{SessionId, Zxid};
use std::fmt::Write;
use std::net::SocketAddr;

/// The version rzk reports where ZooKeeper reports its own; tools parse the leading x.y.z.
pub const ZK_VERSION: &str = concat!("3.9.3-rzk-", env!("CARGO_PKG_VERSION"));
pub const BUILD_DATE: &str = "2026-11-21 00:00 UTC";

pub fn full_version() -> String {
    format!("{ZK_VERSION}, built on {BUILD_DATE}")
}

/// Every four-letter word rzk knows (whether or not the whitelist allows it).
pub const WORDS: &[&str] =
    &["ruok", "srvr", "stat", "conf", "cons", "envi", "mntr", "wchs", "wchc", "wchp", "dump", "dirs", "isro", "crst", "srst", "gtmk", "stmk"];

/// Facts about the process the shell gathers for `mntr`.
#[derive(Debug, Clone, Default)]
pub struct ProcessInfo {
    pub fd_count: u64,
    pub fd_limit: u64,
}

/// `envi`: ZooKeeper prints Java system properties; rzk prints the same keys with its own
/// values, `zookeeper.version` first (kazoo's `server_version()` parses it).
pub fn envi() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let home = std::env::var("HOME").unwrap_or_default();
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|v| v.trim().to_string()).unwrap_or_default();
    let mut out = String::from("Environment:\n");
    let rows = [
        ("zookeeper.version", full_version()),
        ("host.name", host),
        ("java.version", "rzk (no JVM)".to_string()),
        ("java.vendor", "rzk".to_string()),
        ("java.home", "<NA>".to_string()),
        ("java.class.path", "<NA>".to_string()),
        ("java.library.path", "<NA>".to_string()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".to_string()),
        ("os.name", "Linux".to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", os_version),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        ("os.memory.free", format!("{}MB", mem_mb("MemAvailable:"))),
        ("os.memory.max", format!("{}MB", mem_mb("MemTotal:"))),
        ("os.memory.total", format!("{}MB", process_rss_mb())),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// A /proc/meminfo field in MB (rzk has no JVM heap; the machine's memory stands in).
fn mem_mb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}

/// This process's resident memory in MB.
fn process_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}

#[derive(Debug, Clone)]
pub struct ConnSnapshot {
    pub conn: u64,
    pub peer: SocketAddr,
    pub session: Option<SessionId>,
    pub timeout_ms: i32,
    pub queued: usize,
    pub stats: ConnStats,
}

#[derive(Debug, Clone, Default)]
pub struct WatchSummary {
    /// Connection → watched paths.
    pub by_conn: Vec<(u64, Vec<String>)>,
    /// Path → watching connections.
    pub by_path: Vec<(String, Vec<u64>)>,
    pub total: usize,
}

#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    pub stats: ServerStats,
    pub conns: Vec<ConnSnapshot>,
    pub zxid: Zxid,
    pub node_count: usize,
    pub outstanding: usize,
    pub watch: WatchSummary,
    pub sessions: Vec<(SessionId, i32)>,
    pub ephemerals: Vec<(SessionId, Vec<String>)>,
    pub approximate_data_size: u64,
    pub now_wall_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub tick_ms: i64,
}

fn avg(total: i64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        total as f64 / count as f64
    }
}

/// Java's `Double.toString` for the values latency averages take.
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn conn_line(out: &mut String, c: &ConnSnapshot, brief: bool) {
    let _ = write!(out, " /{}:{}[1](queued={},recved={},sent={}", c.peer.ip(), c.peer.port(), c.queued, c.stats.received, c.stats.sent);
    if !brief {
        if let Some(s) = c.session.filter(|s| s.0 != 0) {
            let st = &c.stats;
            let _ = write!(out, ",sid=0x{:x},lop={},est={},to={}", s.0, if st.last_op.is_empty() { "NA" } else { st.last_op }, st.established_ms, c.timeout_ms);
            if st.last_cxid >= 0 {
                let _ = write!(out, ",lcxid=0x{:x}", st.last_cxid);
            }
            let _ = write!(
                out,
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                st.last_zxid,
                st.last_response_ms,
                st.last_latency_ms,
                st.min_latency_ms,
                java_double(avg(st.total_latency_ms, st.count)),
                st.max_latency_ms
            );
        }
    }
    out.push(')');
}

fn server_stats(out: &mut String, s: &ServerSnapshot) {
    let st = &s.stats;
    let _ = writeln!(out, "Latency min/avg/max: {}/{}/{}", st.min_latency_ms, java_double(avg(st.total_latency_ms, st.count)), st.max_latency_ms);
    let _ = writeln!(out, "Received: {}", st.packets_received);
    let _ = writeln!(out, "Sent: {}", st.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.conns.len());
    let _ = writeln!(out, "Outstanding: {}", s.outstanding);
    let _ = writeln!(out, "Zxid: 0x{:x}", s.zxid.0);
    let _ = writeln!(out, "Mode: standalone");
    let _ = writeln!(out, "Node count: {}", s.node_count);
}

/// Renders a core-answered four-letter word. Unknown words give an empty answer.
pub fn render(word: &str, s: &ServerSnapshot, p: &ProcessInfo) -> String {
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
        "srvr" | "stat" => {
            let _ = writeln!(out, "Zookeeper version: {}", full_version());
            if word == "stat" {
                out.push_str("Clients:\n");
                for c in &s.conns {
                    conn_line(&mut out, c, true);
                    out.push('\n');
                }
                out.push('\n');
            }
            server_stats(&mut out, s);
        }
        "cons" => {
            for c in &s.conns {
                conn_line(&mut out, c, false);
                out.push('\n');
            }
            out.push('\n');
        }
        "wchs" => {
            let _ = writeln!(out, "{} connections watching {} paths", s.watch.by_conn.len(), s.watch.by_path.len());
            let _ = writeln!(out, "Total watches:{}", s.watch.total);
        }
        "wchc" => {
            for (conn, paths) in &s.watch.by_conn {
                let sid = s.conns.iter().find(|c| c.conn == *conn).and_then(|c| c.session).unwrap_or_default();
                let _ = writeln!(out, "0x{:x}", sid.0);
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            for (path, conns) in &s.watch.by_path {
                let _ = writeln!(out, "{path}");
                for conn in conns {
                    let sid = s.conns.iter().find(|c| c.conn == *conn).and_then(|c| c.session).unwrap_or_default();
                    let _ = writeln!(out, "\t0x{:x}", sid.0);
                }
            }
            out.push('\n');
        }
        "dump" => {
            out.push_str("SessionTracker dump:\n");
            let _ = writeln!(out, "Global Sessions({}):", s.sessions.len());
            for (id, timeout) in &s.sessions {
                let _ = writeln!(out, "0x{:x}\t{}ms", id.0, timeout);
            }
            out.push_str("ephemeral nodes dump:\n");
            let _ = writeln!(out, "Sessions with Ephemerals ({}):", s.ephemerals.len());
            for (id, paths) in &s.ephemerals {
                let _ = writeln!(out, "0x{:x}:", id.0);
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push_str("Connections dump:\n");
            let _ = writeln!(out, "Connections Sets (1)/({}):", s.conns.len());
            let _ = writeln!(out, "{} expire at {}:", s.conns.len(), s.now_wall_ms);
            for c in &s.conns {
                if let Some(id) = c.session {
                    let _ = writeln!(out, "\tip: {} sessionId: 0x{:x}", c.peer, id.0);
                }
            }
        }
        "mntr" => {
            let st = &s.stats;
            let uptime = (s.now_wall_ms - st.started_ms).max(0);
            let ephemerals: usize = s.ephemerals.iter().map(|(_, p)| p.len()).sum();
            let rows: Vec<(&str, String)> = vec![
                ("zk_version", full_version()),
                ("zk_server_state", "standalone".into()),
                ("zk_ephemerals_count", ephemerals.to_string()),
                ("zk_approximate_data_size", s.approximate_data_size.to_string()),
                ("zk_open_file_descriptor_count", p.fd_count.to_string()),
                ("zk_max_file_descriptor_count", p.fd_limit.to_string()),
                ("zk_znode_count", s.node_count.to_string()),
                ("zk_watch_count", s.watch.total.to_string()),
                ("zk_outstanding_requests", s.outstanding.to_string()),
                ("zk_packets_received", st.packets_received.to_string()),
                ("zk_packets_sent", st.packets_sent.to_string()),
                ("zk_num_alive_connections", s.conns.len().to_string()),
                ("zk_avg_latency", java_double(avg(st.total_latency_ms, st.count))),
                ("zk_max_latency", st.max_latency_ms.to_string()),
                ("zk_min_latency", st.min_latency_ms.to_string()),
                ("zk_uptime", uptime.to_string()),
                ("zk_global_sessions", s.sessions.len().to_string()),
                ("zk_local_sessions", "0".into()),
                ("zk_last_proposal_size", "-1".into()),
                ("zk_max_proposal_size", "-1".into()),
                ("zk_min_proposal_size", "-1".into()),
            ];
            for (k, v) in rows {
                let _ = writeln!(out, "{k}\t{v}");
            }
        }
        _ => {}
    }
    out
}
