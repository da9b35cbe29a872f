//! The four-letter words answered from the core's state, in Apache ZooKeeper 3.8's formats so
//! that existing tools parse them: ruok, srvr, stat, cons, mntr, wchs, wchc, wchp, dump, isro.
//! (conf, envi and dirs need the process and the disk; the shell answers those.)

use crate::server::{ConnStats, Role, ServerStats};
use rzk_proto::{SessionId, Zxid};
use std::borrow::Cow;
use std::fmt::Write;
use std::net::SocketAddr;

/// The version rzk reports where ZooKeeper reports its own; tools parse the leading x.y.z.
pub const ZK_VERSION: &str = concat!("3.9.3-rzk-", env!("CARGO_PKG_VERSION"));
pub const BUILD_DATE: &str = "2026-11-21 00:00 UTC";

pub fn full_version() -> String {
    format!("{ZK_VERSION}, built on {BUILD_DATE}")
}

/// Every four-letter word rzk knows (whether or not the whitelist allows it).
pub const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "conf", "cons", "envi", "mntr", "wchs", "wchc", "wchp", "dump", "dirs", "isro", "crst", "srst", "gtmk", "stmk",
    "hash",
];

/// Facts about the process the shell gathers for `mntr`.
#[derive(Debug, Clone, Default)]
pub struct ProcessInfo {
    pub fd_count: u64,
    pub fd_limit: u64,
    /// Connections refused by maxClientCnxns / maxCnxns (`zk_connection_rejected`).
    pub connections_rejected: u64,
    /// The connection that asked for this word; ZooKeeper lists it as `[0](queued=0,recved=1,sent=0)`.
    pub asking_conn: Option<u64>,
}

/// `envi`: ZooKeeper prints Java system properties; rzk prints the same keys with its own
/// values, `zookeeper.version` first (kazoo's `server_version()` parses it). The shell reads
/// the process and the machine ([`EnvInfo`]); this only formats.
pub fn envi(e: &EnvInfo) -> String {
    let mut out = String::from("Environment:\n");
    for (k, v) in envi_rows(e) {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// `envi`'s rows; the AdminServer's `environment` prints the same.
pub fn envi_rows(e: &EnvInfo) -> Vec<(&'static str, String)> {
    vec![
        ("zookeeper.version", full_version()),
        ("host.name", e.host.clone()),
        ("java.version", "rzk (no JVM)".to_string()),
        ("java.vendor", "rzk".to_string()),
        ("java.home", "<NA>".to_string()),
        ("java.class.path", "<NA>".to_string()),
        ("java.library.path", "<NA>".to_string()),
        ("java.io.tmpdir", e.tmp_dir.clone()),
        ("java.compiler", "<NA>".to_string()),
        ("os.name", "Linux".to_string()),
        ("os.arch", e.arch.to_string()),
        ("os.version", e.os_version.clone()),
        ("user.name", e.user.clone()),
        ("user.home", e.home.clone()),
        ("user.dir", e.cwd.clone()),
        ("os.memory.free", format!("{}MB", e.memory_free_mb)),
        ("os.memory.max", format!("{}MB", e.memory_total_mb)),
        ("os.memory.total", format!("{}MB", e.process_rss_mb)),
    ]
}

/// What `envi` shows of the process and the machine, gathered by the shell.
#[derive(Debug, Clone, Default)]
pub struct EnvInfo {
    pub host: String,
    pub cwd: String,
    pub user: String,
    pub home: String,
    pub os_version: String,
    pub tmp_dir: String,
    pub arch: &'static str,
    /// The machine's available and total memory (rzk has no JVM heap; they stand in).
    pub memory_free_mb: u64,
    pub memory_total_mb: u64,
    pub process_rss_mb: u64,
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

/// What an ensemble member's driver knows for `srvr`/`stat`/`mntr` (ZAB's side of things);
/// all zero / -1 / none unless the driver fills it in.
#[derive(Debug, Clone)]
pub struct QuorumInfo {
    /// `zk_peer_state`'s ZAB phase (ZooKeeper: discovery / synchronization / broadcast).
    pub zab_phase: &'static str,
    /// Voting members (`zk_quorum_size`).
    pub quorum_size: usize,
    /// Leader: connected learners, and those synced (followers, non-voting, observers).
    pub learners: usize,
    pub synced_followers: usize,
    pub synced_non_voting_followers: usize,
    pub synced_observers: usize,
    /// A follower with an observer master: its synced observers (ZooKeeper prints
    /// `zk_synced_observers` on such a follower only).
    pub follower_synced_observers: Option<usize>,
    /// Leader: how long it has led, ms.
    pub leader_uptime_ms: i64,
    /// Leader: PROPOSAL data sizes, last/min/max (-1 before the first).
    pub proposal_sizes: (i64, i64, i64),
    /// Observer: the server it observes.
    pub observer_master_id: Option<i64>,
    /// The leader this member follows or observes (itself when leading); none while looking.
    pub leader_id: Option<i64>,
    /// Syncs this member ran as leader: DIFF (TRUNC included) and SNAP (ZooKeeper's
    /// `diff_count` and `snap_count`).
    pub diff_count: u64,
    pub snap_count: u64,
}

impl Default for QuorumInfo {
    fn default() -> Self {
        QuorumInfo {
            zab_phase: "broadcast",
            quorum_size: 0,
            learners: 0,
            synced_followers: 0,
            synced_non_voting_followers: 0,
            synced_observers: 0,
            follower_synced_observers: None,
            leader_uptime_ms: 0,
            proposal_sizes: (-1, -1, -1),
            diff_count: 0,
            snap_count: 0,
            observer_master_id: None,
            leader_id: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    /// Standalone, leader, follower, observer, or between roles (most words then answer
    /// ZooKeeper's "not currently serving").
    pub role: Role,
    /// False between roles and on a leader with `leaderServes=no`: the words then answer
    /// as ZooKeeper's do with no server on the client port.
    pub serves_clients: bool,
    /// Ensemble members: what the driver adds (left default by the core).
    pub quorum: QuorumInfo,
    /// Leader: learners' syncs waiting for their txns to commit (`zk_pending_syncs`).
    pub pending_syncs: usize,
    /// Applied txns whose logged digest differs from the tree's (`zk_digest_mismatches_count`).
    pub digest_mismatches: u64,
    pub stats: ServerStats,
    pub conns: Vec<ConnSnapshot>,
    pub zxid: Zxid,
    pub node_count: usize,
    pub outstanding: usize,
    pub watch: WatchSummary,
    pub sessions: Vec<(SessionId, i32)>,
    /// The session tracker's expiry buckets: wall-clock expiry time (ms) → sessions.
    pub session_buckets: Vec<(i64, Vec<SessionId>)>,
    /// Each live session's expiry, wall-clock ms.
    pub session_expiry_wall_ms: std::collections::HashMap<SessionId, i64>,
    pub ephemerals: Vec<(SessionId, Vec<String>)>,
    pub approximate_data_size: u64,
    pub now_wall_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub tick_ms: i64,
    /// Data plus child watches (`zk_watch_count`; `wchs` counts the data table only).
    pub watch_count: usize,
    /// Ephemeral znodes and live sessions (`zk_ephemerals_count`, `zk_global_sessions`),
    /// set even in a brief snapshot, whose lists are empty.
    pub ephemerals_count: usize,
    pub session_count: usize,
    /// Local sessions (`localSessionsEnabled`), not in `session_count`.
    pub local_session_count: usize,
    /// The tree digest at `zxid` and its version (the AdminServer's `hash`).
    pub digest: i64,
    pub digest_version: i32,
    /// `DataTree.getDigestLog` (the `hash` word): (zxid, digest), oldest first.
    pub digest_log: Vec<(Zxid, i64)>,
    /// The text trace mask (`gtmk`).
    pub trace_mask: i64,
    /// ZooKeeper's quota gauge sets (`rzk_tree::quota::QUOTA_GAUGE_SETS`), by namespace.
    pub quota_gauges: [rzk_tree::quota::NamespaceValues; 4],
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

/// `AvgMinMaxCounter.getAvg`: the mean rounded to four decimals, printed as a Java double.
fn java_avg(total: i64, count: u64) -> String {
    java_double((avg(total, count) * 10000.0).round() / 10000.0)
}

/// The four-letter code ZooKeeper's FinalRequestProcessor records as a connection's last
/// operation (`lop=` in `cons`), from rzk's op name.
pub fn last_op_code(op_name: &str) -> &'static str {
    match op_name {
        "create" | "create2" | "createContainer" | "createTTL" => "CREA",
        "delete" | "deleteContainer" => "DELE",
        "exists" => "EXIS",
        "getData" => "GETD",
        "setData" => "SETD",
        "getACL" => "GETA",
        "setACL" => "SETA",
        "getChildren" | "getChildren2" | "getAllChildrenNumber" => "GETC",
        "sync" => "SYNC",
        "ping" => "PING",
        "check" => "CHEC",
        "multi" => "MULT",
        "multiRead" => "MLTR",
        "reconfig" => "RECO",
        "checkWatches" => "CHKW",
        "removeWatches" => "REMW",
        "setWatches" => "SETW",
        "setWatches2" => "STW2",
        "addWatch" => "ADDW",
        "whoAmI" => "HOMI",
        "getEphemerals" => "GETE",
        "createSession" => "SESS",
        "closeSession" => "CLOS",
        _ => "NA",
    }
}

pub use rzk_proto::time::java_date;

fn conn_line(out: &mut String, c: &ConnSnapshot, brief: bool, asking: Option<u64>) {
    if asking == Some(c.conn) {
        // The connection asking is mid-command: not reading, one packet (the word) received.
        let _ = write!(out, " /{}:{}[0](queued=0,recved=1,sent=0)", c.peer.ip(), c.peer.port());
        return;
    }
    let _ = write!(out, " /{}:{}[1](queued={},recved={},sent={}", c.peer.ip(), c.peer.port(), c.queued, c.stats.received, c.stats.sent);
    if !brief {
        if let Some(s) = c.session.filter(|s| s.0 != 0) {
            let st = &c.stats;
            let _ = write!(out, ",sid=0x{:x},lop={},est={},to={}", s.0, last_op_code(st.last_op), st.established_ms, c.timeout_ms);
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
                if st.count == 0 { 0 } else { st.total_latency_ms / st.count as i64 },
                st.max_latency_ms
            );
        }
    }
    out.push(')');
}

fn server_stats(out: &mut String, s: &ServerSnapshot) {
    let st = &s.stats;
    let _ = writeln!(out, "Latency min/avg/max: {}/{}/{}", st.min_latency_ms, java_avg(st.total_latency_ms, st.count), st.max_latency_ms);
    let _ = writeln!(out, "Received: {}", st.packets_received);
    let _ = writeln!(out, "Sent: {}", st.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.conns.len());
    let _ = writeln!(out, "Outstanding: {}", s.outstanding);
    let _ = writeln!(out, "Zxid: 0x{:x}", s.zxid.0);
    let _ = writeln!(out, "Mode: {}", s.role.name());
    let _ = writeln!(out, "Node count: {}", s.node_count);
    if s.role == Role::Leader {
        let (last, min, max) = s.quorum.proposal_sizes;
        let _ = writeln!(out, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
}

/// mntr in an ensemble: ZooKeeper 3.8's quorum keys at their places among the standalone
/// ones (the proposal sizes move up on a leader and are gone on a learner).
fn quorum_mntr_rows(mut rows: Vec<(&'static str, String)>, s: &ServerSnapshot) -> Vec<(&'static str, String)> {
    if s.role == Role::Standalone {
        return rows;
    }
    let q = &s.quorum;
    let leader = s.role == Role::Leader;
    rows.retain(|(k, _)| !k.ends_with("_proposal_size"));
    let peer_state = match s.role {
        Role::Leader => "leading",
        Role::Follower => "following",
        Role::Observer => "observing",
        _ => "looking",
    };
    let mut extra: Vec<(&'static str, &'static str, String)> =
        vec![("zk_server_state", "zk_peer_state", format!("{peer_state} - {}", q.zab_phase))];
    if let (Role::Observer, Some(id)) = (s.role, q.observer_master_id) {
        extra.push(("zk_peer_state", "zk_observer_master_id", id.to_string()));
    }
    if let (Role::Follower, Some(n)) = (s.role, q.follower_synced_observers) {
        extra.push(("zk_watch_count", "zk_synced_observers", n.to_string()));
    }
    if leader {
        let (last, min, max) = q.proposal_sizes;
        extra.extend([
            ("zk_avg_latency", "zk_min_proposal_size", min.to_string()),
            ("zk_packets_received", "zk_max_proposal_size", max.to_string()),
            ("zk_max_proposal_size", "zk_synced_followers", q.synced_followers.to_string()),
            ("zk_watch_count", "zk_synced_non_voting_followers", q.synced_non_voting_followers.to_string()),
            ("zk_synced_non_voting_followers", "zk_synced_observers", q.synced_observers.to_string()),
            ("zk_max_file_descriptor_count", "zk_last_proposal_size", last.to_string()),
            ("zk_last_proposal_size", "zk_pending_syncs", s.pending_syncs.to_string()),
            ("zk_pending_syncs", "zk_leader_uptime", q.leader_uptime_ms.to_string()),
            ("zk_outstanding_tls_handshake", "zk_learners", q.learners.to_string()),
        ]);
    }
    extra.push(("zk_non_mtls_local_conn_count", "zk_quorum_size", q.quorum_size.to_string()));
    for (after, key, value) in extra {
        let at = rows.iter().position(|(k, _)| *k == after).map_or(rows.len(), |i| i + 1);
        rows.insert(at, (key, value));
    }
    rows
}

/// What ZooKeeper answers most words with while it is between roles (`!isZKServerRunning()`).
pub const ZK_NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Renders a core-answered four-letter word. Unknown words give an empty answer.
pub fn render(word: &str, s: &ServerSnapshot, p: &ProcessInfo) -> String {
    let mut out = String::new();
    if s.role == Role::NotServing || !s.serves_clients {
        match word {
            "ruok" => out.push_str("imok"),
            "isro" => out.push_str("null"),
            "srvr" | "stat" | "cons" | "wchs" | "wchc" | "wchp" | "dump" | "mntr" => {
                let _ = writeln!(out, "{ZK_NOT_SERVING}");
            }
            // DigestCommand prints the line without a newline; gtmk needs no server.
            "hash" => out.push_str(ZK_NOT_SERVING),
            "gtmk" => {
                let _ = write!(out, "{}", s.trace_mask);
            }
            _ => {}
        }
        return out;
    }
    match word {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str(if s.role == Role::ReadOnly { "ro" } else { "rw" }),
        "srvr" | "stat" => {
            let _ = writeln!(out, "Zookeeper version: {}", full_version());
            if word == "stat" {
                out.push_str("Clients:\n");
                for c in &s.conns {
                    conn_line(&mut out, c, true, p.asking_conn);
                    out.push('\n');
                }
                out.push('\n');
            }
            server_stats(&mut out, s);
        }
        "cons" => {
            for c in &s.conns {
                conn_line(&mut out, c, false, p.asking_conn);
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
            if s.role.is_learner() {
                // LearnerSessionTracker: the global sessions this learner knows, no expiry.
                let _ = writeln!(out, "Global Sessions({}):", s.sessions.len());
                for (id, timeout) in &s.sessions {
                    let _ = writeln!(out, "0x{:x}\t{}ms", id.0, timeout);
                }
            } else {
                let _ = writeln!(out, "Session Sets ({})/({}):", s.session_buckets.len(), s.sessions.len());
                for (at, ids) in &s.session_buckets {
                    let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(*at));
                    for id in ids {
                        let _ = writeln!(out, "\t0x{:x}", id.0);
                    }
                }
            }
            out.push_str("ephemeral nodes dump:\n");
            let _ = writeln!(out, "Sessions with Ephemerals ({}):", s.ephemerals.len());
            for (id, paths) in &s.ephemerals {
                let _ = writeln!(out, "0x{:x}:", id.0);
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            // ZooKeeper's connection expiry queue: a connection with a session expires with
            // it; one without expires sessionlessCnxnTimeout (10 s) after it was last heard.
            let tick = s.tick_ms.max(1);
            let mut sets: std::collections::BTreeMap<i64, Vec<&ConnSnapshot>> = std::collections::BTreeMap::new();
            for c in &s.conns {
                let at = c
                    .session
                    .and_then(|id| s.session_expiry_wall_ms.get(&id).copied())
                    .unwrap_or_else(|| (s.now_wall_ms + 10_000 + tick - 1) / tick * tick);
                sets.entry(at).or_default().push(c);
            }
            out.push_str("Connections dump:\n");
            let _ = writeln!(out, "Connections Sets ({})/({}):", sets.len(), s.conns.len());
            for (at, conns) in &sets {
                let _ = writeln!(out, "{} expire at {}:", conns.len(), java_date(*at));
                for c in conns {
                    let _ = writeln!(out, "\tip: /{}:{} sessionId: 0x{:x}", c.peer.ip(), c.peer.port(), c.session.unwrap_or_default().0);
                }
            }
        }
        "hash" => {
            // DigestCommand: one line per logged digest, the zxid in hex.
            for (zxid, digest) in &s.digest_log {
                let _ = writeln!(out, "{:x}: {digest}", zxid.0);
            }
        }
        "gtmk" => {
            let _ = write!(out, "{}", s.trace_mask);
        }
        "mntr" => {
            for (k, v) in mntr_rows(s, p) {
                let _ = writeln!(out, "{k}\t{v}");
            }
            // The summaries rzk measures, under ZooKeeper's keys (zk_avg_fsynctime, ...).
            for (k, v) in crate::admin::summary_rows(s, true) {
                let _ = writeln!(out, "zk_{k}\t{v}");
            }
        }
        _ => {}
    }
    out
}

/// `mntr`'s rows (`zk_` keys, values as printed), in ZooKeeper 3.8's order; the AdminServer's
/// `monitor` is built from the same rows.
pub fn mntr_rows(s: &ServerSnapshot, p: &ProcessInfo) -> Vec<(Cow<'static, str>, String)> {
    let st = &s.stats;
    let uptime = (s.now_wall_ms - st.started_ms).max(0);
    let ephemerals = s.ephemerals_count;
    // ZooKeeper 3.8's keys in its order. Counters for machinery rzk does not have
    // (TLS, throttling, JVM, learners in standalone mode) are truthfully zero.
    let z = || "0".to_string();
    let rows: Vec<(&str, String)> = vec![
        ("zk_version", full_version()),
        ("zk_server_state", s.role.name().into()),
        ("zk_ephemerals_count", ephemerals.to_string()),
        ("zk_num_alive_connections", s.conns.len().to_string()),
        ("zk_avg_latency", java_avg(st.total_latency_ms, st.count)),
        ("zk_outstanding_requests", s.outstanding.to_string()),
        ("zk_znode_count", s.node_count.to_string()),
        ("zk_global_sessions", s.session_count.to_string()),
        ("zk_non_mtls_remote_conn_count", z()),
        ("zk_last_client_response_size", st.last_response_size.to_string()),
        ("zk_packets_sent", st.packets_sent.to_string()),
        ("zk_packets_received", st.packets_received.to_string()),
        ("zk_connection_drop_probability", "0.0".into()),
        ("zk_watch_count", s.watch_count.to_string()),
        ("zk_auth_failed_count", st.auth_failed.to_string()),
        ("zk_approximate_data_size", s.approximate_data_size.to_string()),
        ("zk_open_file_descriptor_count", p.fd_count.to_string()),
        ("zk_max_file_descriptor_count", p.fd_limit.to_string()),
        ("zk_local_sessions", s.local_session_count.to_string()),
        ("zk_uptime", uptime.to_string()),
        ("zk_outstanding_tls_handshake", z()),
        ("zk_non_mtls_local_conn_count", z()),
        ("zk_proposal_count", z()),
        ("zk_watch_bytes", z()),
        ("zk_outstanding_changes_removed", st.txns_appended.saturating_sub(s.outstanding as u64).to_string()),
        ("zk_throttled_ops", st.throttled_ops.to_string()),
        ("zk_stale_requests_dropped", st.stale_requests_dropped.to_string()),
        ("zk_large_requests_rejected", st.large_requests_rejected.to_string()),
        ("zk_insecure_admin_count", z()),
        ("zk_connection_rejected", (p.connections_rejected + st.connections_throttled).to_string()),
        ("zk_cnxn_closed_without_zk_server_running", z()),
        ("zk_sessionless_connections_expired", z()),
        ("zk_looking_count", z()),
        ("zk_dead_watchers_queued", z()),
        ("zk_stale_requests", st.stale_requests.to_string()),
        ("zk_connection_drop_count", z()),
        ("zk_learner_proposal_received_count", z()),
        ("zk_digest_mismatches_count", s.digest_mismatches.to_string()),
        ("zk_dead_watchers_cleared", z()),
        ("zk_response_packet_cache_hits", z()),
        ("zk_bytes_received_count", st.bytes_received.to_string()),
        ("zk_add_dead_watcher_stall_time", z()),
        ("zk_request_throttle_wait_count", st.request_throttle_wait_count.to_string()),
        ("zk_requests_not_forwarded_to_commit_processor", z()),
        ("zk_response_packet_cache_misses", z()),
        ("zk_ensemble_auth_success", z()),
        ("zk_prep_processor_request_queued", st.txns_appended.to_string()),
        ("zk_learner_commit_received_count", z()),
        ("zk_stale_replies", z()),
        ("zk_connection_request_count", st.connection_requests.to_string()),
        ("zk_response_bytes", st.response_bytes.to_string()),
        ("zk_ensemble_auth_fail", z()),
        ("zk_diff_count", s.quorum.diff_count.to_string()),
        ("zk_response_packet_get_children_cache_misses", z()),
        ("zk_connection_revalidate_count", z()),
        ("zk_quit_leading_due_to_disloyal_voter", z()),
        ("zk_snap_count", s.quorum.snap_count.to_string()),
        ("zk_unrecoverable_error_count", z()),
        ("zk_unsuccessful_handshake", st.unsuccessful_handshakes.to_string()),
        ("zk_commit_count", z()),
        ("zk_stale_sessions_expired", st.sessions_expired.to_string()),
        ("zk_response_packet_get_children_cache_hits", z()),
        ("zk_sync_processor_request_queued", st.txns_appended.to_string()),
        ("zk_outstanding_changes_queued", st.txns_appended.to_string()),
        ("zk_request_commit_queued", z()),
        ("zk_ensemble_auth_skip", z()),
        ("zk_skip_learner_request_to_next_processor_count", z()),
        ("zk_tls_handshake_exceeded", z()),
        ("zk_revalidate_count", z()),
        ("zk_min_latency", st.min_latency_ms.to_string()),
        ("zk_max_latency", st.max_latency_ms.to_string()),
        ("zk_cnt_latency", st.count.to_string()),
        ("zk_sum_latency", st.total_latency_ms.to_string()),
        ("zk_last_proposal_size", "-1".into()),
        ("zk_max_proposal_size", "-1".into()),
        ("zk_min_proposal_size", "-1".into()),
    ];
    let mut rows: Vec<(Cow<'static, str>, String)> = quorum_mntr_rows(rows, s).into_iter().map(|(k, v)| (Cow::Borrowed(k), v)).collect();
    // The quota gauge sets after the last gauge (before the first counter), then the
    // quota_exceeded_error_per_namespace counter set after the last counter, each member as
    // ZooKeeper's default metrics provider names it: `<namespace>_<set name>`.
    let mut gauge_sets = Vec::new();
    for (name, members) in rzk_tree::quota::QUOTA_GAUGE_SETS.iter().zip(&s.quota_gauges) {
        for (ns, v) in members {
            gauge_sets.push((Cow::Owned(format!("zk_{ns}_{name}")), v.to_string()));
        }
    }
    let at = rows.iter().position(|(k, _)| k == "zk_proposal_count").unwrap_or(rows.len());
    rows.splice(at..at, gauge_sets);
    let mut exceeded: rzk_tree::ConcurrentOrder<String> = Default::default();
    let exceeded_per_namespace = &s.stats.quota.exceeded_per_namespace;
    for ns in exceeded_per_namespace.keys() {
        exceeded.insert(ns.clone());
    }
    let counter_set: Vec<(Cow<'static, str>, String)> = exceeded
        .ordered()
        .into_iter()
        .map(|ns| (Cow::Owned(format!("zk_{ns}_quota_exceeded_error_per_namespace")), exceeded_per_namespace[ns].to_string()))
        .collect();
    let at = rows.iter().position(|(k, _)| k == "zk_revalidate_count").map_or(rows.len(), |i| i + 1);
    rows.splice(at..at, counter_set);
    rows
}
