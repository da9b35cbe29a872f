//! The AdminServer's commands (`/commands/<name>`), answered as Apache ZooKeeper 3.8/3.9's
//! `Commands` answer them: the same names and aliases, the same JSON field names and JSON
//! types, the same `command` / `error` fields and HTTP statuses (200 even for an unknown
//! command, as ZooKeeper keeps it).
//!
//! This module owns the command table and the JSON built from the core's state: a
//! [`ServerSnapshot`] (the driver takes it with one call), plus what only the shell can know
//! about the process, the disk and the configuration ([`HostInfo`], gathered by the HTTP task
//! before it asks the driver, so the driver never walks a directory for an HTTP client).
//! It is pure: the HTTP server is `rzk_server::shell::admin`.
//!
//! The answers that grow with the server's state (`dump`, `watches`, `watches_by_path`) are
//! also written as they go ([`write_streamed`]): the same bytes as [`run`]'s JSON printed
//! pretty, without building the document, so the HTTP side can stream them.
//!
//! Not here: ZooKeeper 3.9's `snapshot` (authenticated, streams a snapshot file: the shell's
//! `admin.rs`) and `restore` (not served: rzk answers it as an unknown command, as
//! ZooKeeper 3.8 does).

use crate::fourlw::{self, ProcessInfo, ServerSnapshot};
use crate::server::Role;
use crate::summary::Summary;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One command: its primary name (the one `/commands` lists and `command` reports), every
/// name it answers to, and whether it needs a serving server (ZooKeeper's `serverRequired`).
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    pub primary: &'static str,
    pub names: &'static [&'static str],
    pub server_required: bool,
}

const fn cmd(primary: &'static str, names: &'static [&'static str], server_required: bool) -> CommandSpec {
    CommandSpec { primary, names, server_required }
}

/// Every command of ZooKeeper 3.8 (3.9 adds `snapshot` and `restore`, not served by rzk).
pub const COMMANDS: &[CommandSpec] = &[
    cmd("connection_stat_reset", &["connection_stat_reset", "crst"], true),
    cmd("configuration", &["configuration", "conf", "config"], true),
    cmd("connections", &["connections", "cons"], true),
    cmd("hash", &["hash"], true),
    cmd("dirs", &["dirs"], true),
    cmd("dump", &["dump"], true),
    cmd("environment", &["environment", "env", "envi"], false),
    cmd("get_trace_mask", &["get_trace_mask", "gtmk"], false),
    cmd("initial_configuration", &["initial_configuration", "icfg"], true),
    cmd("is_read_only", &["is_read_only", "isro"], true),
    cmd("last_snapshot", &["last_snapshot", "lsnp"], true),
    cmd("leader", &["leader", "lead"], true),
    cmd("monitor", &["monitor", "mntr"], false),
    cmd("observer_connection_stat_reset", &["observer_connection_stat_reset", "orst"], true),
    cmd("ruok", &["ruok"], true),
    cmd("set_trace_mask", &["set_trace_mask", "stmk"], false),
    cmd("server_stats", &["server_stats", "srvr"], true),
    cmd("stats", &["stats", "stat"], true),
    cmd("stat_reset", &["stat_reset", "srst"], true),
    cmd("observers", &["observers", "obsr"], true),
    cmd("system_properties", &["system_properties", "sysp"], false),
    cmd("voting_view", &["voting_view"], true),
    cmd("watches", &["watches", "wchc"], true),
    cmd("watches_by_path", &["watches_by_path", "wchp"], true),
    cmd("watch_summary", &["watch_summary", "wchs"], true),
    cmd("zabstate", &["zabstate"], false),
];

/// The command answering to `name` (a primary name or an alias).
pub fn lookup(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

/// The primary names, sorted, as `/commands` lists them.
pub fn primary_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COMMANDS.iter().map(|c| c.primary).collect();
    v.sort_unstable();
    v
}

/// Which commands change the core's state (the driver runs these on the core itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    None,
    ResetServerStats,
    ResetConnectionStats,
    /// `set_trace_mask` with a valid `traceMask` (ZooTrace's mask; no server needed).
    SetTraceMask(i64),
}

/// Whether a command lists watches, sessions or ephemerals one by one (it then needs
/// [`crate::ZooKeeperServer::snapshot`]; every other command is answered from
/// `snapshot_brief`, whose cost does not grow with them).
pub fn needs_full_snapshot(name: &str) -> bool {
    matches!(lookup(name).map(|c| c.primary), Some("dump" | "watches" | "watches_by_path" | "watch_summary"))
}

/// The state change a command asks of the core before it is answered.
pub fn mutation(name: &str, params: &BTreeMap<String, String>) -> Mutation {
    match lookup(name).map(|c| c.primary) {
        Some("stat_reset") => Mutation::ResetServerStats,
        Some("connection_stat_reset") => Mutation::ResetConnectionStats,
        Some("set_trace_mask") => match params.get("traceMask").and_then(|v| v.parse::<i64>().ok()) {
            Some(mask) => Mutation::SetTraceMask(mask),
            None => Mutation::None,
        },
        _ => Mutation::None,
    }
}

/// One `server.N` line, for `voting_view` / `leader` / `zabstate`.
#[derive(Debug, Clone, Default)]
pub struct VotingMember {
    pub id: u64,
    /// `(host, quorumPort)` of each address.
    pub quorum: Vec<(String, u16)>,
    /// `(host, electionPort)` of each address.
    pub election: Vec<(String, u16)>,
    /// `host:clientPort`: from the line, or this server's own client address; else empty
    /// (as ZooKeeper knows no other member's client port without it).
    pub client_address: String,
    pub participant: bool,
}

/// What the shell knows of the process, the disk and the configuration.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    /// `configuration`: ZooKeeperServerConf's fields.
    pub configuration: Map<String, Value>,
    /// `environment`: `envi`'s rows.
    pub environment: Vec<(String, String)>,
    /// `system_properties`, sorted.
    pub system_properties: BTreeMap<String, String>,
    /// `initial_configuration`: the configuration file's text.
    pub initial_configuration: String,
    pub data_dir_size: u64,
    pub log_dir_size: u64,
    /// The newest snapshot: its zxid and its file's modification time, seconds.
    pub last_snapshot: Option<(i64, i64)>,
    /// An ensemble member's id and the ensemble's `server.N` lines (empty standalone).
    pub my_id: Option<u64>,
    pub voting_view: Vec<VotingMember>,
    pub process: ProcessInfo,
}

/// A command's answer: the HTTP status and the JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    pub status: u16,
    pub body: Value,
}

fn response(command: &str, error: Option<String>, fields: Map<String, Value>) -> CommandResponse {
    let mut body = fields;
    body.insert("command".into(), json!(command));
    body.insert("error".into(), error.map_or(Value::Null, Value::String));
    CommandResponse { status: 200, body: Value::Object(body) }
}

fn error_response(command: &str, error: impl Into<String>) -> CommandResponse {
    response(command, Some(error.into()), Map::new())
}

/// Answers `name` (any alias) with `params` (the query string) from the core's state `s`
/// (a brief snapshot will do unless [`needs_full_snapshot`]) and the shell's facts.
pub fn run(name: &str, params: &BTreeMap<String, String>, s: &ServerSnapshot, host: &HostInfo) -> CommandResponse {
    let Some(spec) = lookup(name) else {
        return error_response(name, format!("Unknown command: {name}"));
    };
    let c = spec.primary;
    if spec.server_required && s.role == Role::NotServing {
        return error_response(name, fourlw::ZK_NOT_SERVING);
    }
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    match c {
        "ruok" | "connection_stat_reset" | "stat_reset" | "observer_connection_stat_reset" => {}
        "configuration" => {
            for (k, v) in &host.configuration {
                put(k, v.clone());
            }
        }
        "connections" => {
            put("connections", Value::Array(connections(s, false)));
            put("secure_connections", json!([]));
        }
        "dirs" => {
            put("datadir_size", json!(host.data_dir_size));
            put("logdir_size", json!(host.log_dir_size));
        }
        "dump" => {
            let mut expiry = Map::new();
            if !s.role.is_learner() {
                for (at, ids) in &s.session_buckets {
                    expiry.insert(at.to_string(), ids.iter().map(|id| json!(id.0)).collect());
                }
            }
            put("expiry_time_to_session_ids", Value::Object(expiry));
            let mut eph = Map::new();
            for (id, paths) in &s.ephemerals {
                eph.insert(id.0.to_string(), json!(paths));
            }
            put("session_id_to_ephemeral_paths", Value::Object(eph));
        }
        "environment" => {
            for (k, v) in &host.environment {
                put(k, json!(v));
            }
        }
        "get_trace_mask" => put("tracemask", json!(s.trace_mask)),
        "set_trace_mask" => {
            let Some(v) = params.get("traceMask") else {
                return error_response(c, "setTraceMask requires long traceMask argument");
            };
            let Ok(mask) = v.parse::<i64>() else {
                return error_response(c, format!("setTraceMask requires long traceMask argument, got {v}"));
            };
            // The driver set it before this snapshot ([`mutation`]).
            put("tracemask", json!(mask));
        }
        "hash" => {
            // DataTree.getDigestLog: the digest at every 128th zxid applied.
            let digests: Vec<Value> =
                s.digest_log.iter().map(|(zxid, d)| json!({ "zxid": zxid.0, "digest": d, "digest_version": s.digest_version })).collect();
            put("digests", json!(digests));
        }
        "initial_configuration" => put("initial_configuration", json!(host.initial_configuration)),
        "is_read_only" => put("read_only", json!(s.role == Role::ReadOnly)),
        "last_snapshot" => {
            let (zxid, ts) = host.last_snapshot.unwrap_or((-1, -1));
            put("zxid", json!(format!("{zxid:x}")));
            put("timestamp", json!(ts));
        }
        "leader" => {
            if s.role == Role::Standalone {
                return error_response(c, "server is not initialized");
            }
            let leader = s.quorum.leader_id;
            put("is_leader", json!(s.role == Role::Leader));
            put("leader_id", json!(leader.unwrap_or(-1)));
            // ZooKeeper's `getLeaderAddress()`: the host of the leader's quorum address.
            let ip = leader
                .and_then(|l| host.voting_view.iter().find(|v| v.id as i64 == l))
                .and_then(|v| v.quorum.first().map(|(h, _)| h.clone()))
                .unwrap_or_default();
            put("leader_ip", json!(ip));
        }
        "monitor" => {
            for (k, v) in monitor(s, &host.process) {
                put(&k, v);
            }
        }
        "server_stats" | "stats" => {
            server_stats(&mut put, s, host);
            if c == "stats" {
                put("connections", Value::Array(connections(s, true)));
                put("secure_connections", json!([]));
            }
        }
        "observers" => {
            let synced = match s.role {
                Role::Leader => s.quorum.synced_observers,
                Role::Follower => s.quorum.follower_synced_observers.unwrap_or(0),
                _ => 0,
            };
            put("synced_observers", json!(synced));
            put("observers", json!([]));
        }
        "system_properties" => {
            for (k, v) in &host.system_properties {
                put(k, json!(v));
            }
        }
        "voting_view" => {
            let mut view = Map::new();
            if s.role != Role::Standalone {
                for v in host.voting_view.iter().filter(|v| v.participant) {
                    view.insert(
                        v.id.to_string(),
                        json!({
                            "server_addresses": joined(&v.quorum),
                            "election_addresses": joined(&v.election),
                            "client_address": v.client_address,
                            "learner_type": "participant",
                        }),
                    );
                }
            }
            put("current_config", Value::Object(view));
        }
        "watches" => {
            let mut by_session = Map::new();
            for (conn, paths) in &s.watch.by_conn {
                by_session.insert(session_of(s, *conn).to_string(), json!(paths));
            }
            put("session_id_to_watched_paths", Value::Object(by_session));
        }
        "watches_by_path" => {
            let mut by_path = Map::new();
            for (path, conns) in &s.watch.by_path {
                by_path.insert(path.clone(), conns.iter().map(|c| json!(session_of(s, *c))).collect());
            }
            put("path_to_session_ids", Value::Object(by_path));
        }
        "watch_summary" => {
            put("num_connections", json!(s.watch.by_conn.len()));
            put("num_paths", json!(s.watch.by_path.len()));
            put("num_total_watches", json!(s.watch.total));
        }
        "zabstate" => {
            let me = host.my_id.and_then(|id| host.voting_view.iter().find(|v| v.id == id));
            match (host.my_id, me) {
                (Some(id), Some(me)) if s.role != Role::Standalone => {
                    put("myid", json!(id));
                    put("is_leader", json!(s.role == Role::Leader));
                    put("quorum_address", multiple_addresses(&me.quorum));
                    put("election_address", multiple_addresses(&me.election));
                    put("client_address", json!(me.client_address));
                    put("voting", json!(me.participant));
                    put("last_zxid", json!(format!("0x{:x}", s.zxid.0)));
                    put("zab_epoch", json!(s.zxid.0 >> 32));
                    put("zab_counter", json!(s.zxid.0 & 0xffff_ffff));
                    let state = if matches!(s.role, Role::NotServing | Role::ReadOnly) { "election" } else { s.quorum.zab_phase };
                    put("zabstate", json!(state));
                }
                _ => {
                    put("voting", json!(false));
                    put("zabstate", json!(""));
                }
            }
        }
        other => unreachable!("command {other} has no answer"),
    }
    response(c, None, m)
}

/// Whether `name` (any alias) is one of the answers [`write_streamed`] writes as it goes.
pub fn streamed(name: &str) -> bool {
    matches!(lookup(name).map(|c| c.primary), Some("dump" | "watches" | "watches_by_path"))
}

/// Writes the answer to `name` (a [`streamed`] command) to `out` entry by entry: exactly
/// what [`run`] answers, printed as `serde_json::to_string_pretty` prints it, plus a
/// newline, without building the document (the memory it needs beyond the snapshot is one
/// map of connection → session). Returns `Ok(false)` and writes nothing when the command is
/// not streamed or the server does not serve (then [`run`] answers, with a small document).
pub fn write_streamed(name: &str, s: &ServerSnapshot, mut out: impl std::io::Write) -> std::io::Result<bool> {
    let Some(spec) = lookup(name).filter(|_| streamed(name)) else {
        return Ok(false);
    };
    if s.role == Role::NotServing {
        return Ok(false);
    }
    serde_json::to_writer_pretty(&mut out, &Streamed { primary: spec.primary, s })?;
    out.write_all(b"\n")?;
    Ok(true)
}

/// A [`streamed`] command's answer, serialized from the snapshot as it is written.
struct Streamed<'a> {
    primary: &'static str,
    s: &'a ServerSnapshot,
}

/// A JSON object of the pairs the closure yields, serialized lazily.
struct MapOf<F>(F);

impl<F, I, K, V> serde::Serialize for MapOf<F>
where
    F: Fn() -> I,
    I: Iterator<Item = (K, V)>,
    K: serde::Serialize,
    V: serde::Serialize,
{
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_map((self.0)())
    }
}

/// A JSON array of what the closure yields, serialized lazily.
struct SeqOf<F>(F);

impl<F, I> serde::Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: serde::Serialize,
{
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq((self.0)())
    }
}

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let s = self.s;
        let session: std::collections::HashMap<u64, i64> = s.conns.iter().map(|c| (c.conn, c.session.unwrap_or_default().0)).collect();
        let session_of = |conn: &u64| session.get(conn).copied().unwrap_or_default();
        let mut m = ser.serialize_map(None)?;
        match self.primary {
            "dump" => {
                let buckets: &[(i64, Vec<rzk_proto::SessionId>)] = if s.role.is_learner() { &[] } else { &s.session_buckets };
                m.serialize_entry(
                    "expiry_time_to_session_ids",
                    &MapOf(|| buckets.iter().map(|(at, ids)| (at, SeqOf(|| ids.iter().map(|id| id.0))))),
                )?;
                m.serialize_entry("session_id_to_ephemeral_paths", &MapOf(|| s.ephemerals.iter().map(|(id, paths)| (id.0, paths))))?;
            }
            "watches" => {
                // As a JSON map built by inserting each connection's entry: one entry per
                // session, where its first connection came, with its last connection's paths.
                let mut first = std::collections::HashMap::new();
                let mut last = std::collections::HashMap::new();
                for (i, (conn, _)) in s.watch.by_conn.iter().enumerate() {
                    first.entry(session_of(conn)).or_insert(i);
                    last.insert(session_of(conn), i);
                }
                m.serialize_entry(
                    "session_id_to_watched_paths",
                    &MapOf(|| {
                        s.watch.by_conn.iter().enumerate().filter(|(i, (conn, _))| first[&session_of(conn)] == *i).map(|(_, (conn, _))| {
                            let id = session_of(conn);
                            (id, &s.watch.by_conn[last[&id]].1)
                        })
                    }),
                )?;
            }
            "watches_by_path" => {
                m.serialize_entry(
                    "path_to_session_ids",
                    &MapOf(|| s.watch.by_path.iter().map(|(path, conns)| (path, SeqOf(|| conns.iter().map(session_of))))),
                )?;
            }
            other => unreachable!("command {other} is not streamed"),
        }
        m.serialize_entry("command", self.primary)?;
        m.serialize_entry("error", &Value::Null)?;
        m.end()
    }
}

fn joined(addrs: &[(String, u16)]) -> Vec<String> {
    addrs.iter().map(|(h, p)| format!("{h}:{p}")).collect()
}

/// A member's addresses as ZooKeeper's `MultipleAddresses` bean prints them (rzk does not
/// probe reachability: every address counts as reachable).
fn multiple_addresses(addrs: &[(String, u16)]) -> Value {
    let all = joined(addrs);
    let one = all.first().cloned().unwrap_or_default();
    json!({
        "empty": addrs.is_empty(),
        "all_addresses": all,
        "all_reachable_addresses": all,
        "one": one,
        "reachable_address": one,
        "wildcard_addresses": addrs.iter().map(|(_, p)| format!("0.0.0.0:{p}")).collect::<Vec<_>>(),
        "all_ports": addrs.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
        "all_host_strings": addrs.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>(),
        "all_reachable_addresses_or_all": all,
        "reachable_or_one": one,
    })
}

fn session_of(s: &ServerSnapshot, conn: u64) -> i64 {
    s.conns.iter().find(|c| c.conn == conn).and_then(|c| c.session).unwrap_or_default().0
}

/// ZooKeeper's `getConnectionInfo(brief)`.
fn connections(s: &ServerSnapshot, brief: bool) -> Vec<Value> {
    s.conns
        .iter()
        .map(|c| {
            let st = &c.stats;
            let mut m = Map::new();
            m.insert("remote_socket_address".into(), json!(format!("{}:{}", c.peer.ip(), c.peer.port())));
            m.insert("interest_ops".into(), json!(1));
            m.insert("outstanding_requests".into(), json!(c.queued));
            m.insert("packets_received".into(), json!(st.received));
            m.insert("packets_sent".into(), json!(st.sent));
            if let (false, Some(sid)) = (brief, c.session.filter(|s| s.0 != 0)) {
                m.insert("session_id".into(), json!(sid.0));
                m.insert("last_operation".into(), json!(fourlw::last_op_code(st.last_op)));
                m.insert("established".into(), json!(st.established_ms));
                m.insert("session_timeout".into(), json!(c.timeout_ms));
                m.insert("last_cxid".into(), json!(st.last_cxid));
                m.insert("last_zxid".into(), json!(st.last_zxid));
                m.insert("last_response_time".into(), json!(st.last_response_ms));
                m.insert("last_latency".into(), json!(st.last_latency_ms));
                m.insert("min_latency".into(), json!(st.min_latency_ms));
                m.insert("avg_latency".into(), json!(if st.count == 0 { 0 } else { st.total_latency_ms / st.count as i64 }));
                m.insert("max_latency".into(), json!(st.max_latency_ms));
            }
            Value::Object(m)
        })
        .collect()
}

/// `AvgMinMaxCounter.getAvg`: the mean rounded to four decimals.
fn avg4(total: i64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        ((total as f64 / count as f64) * 10000.0).round() / 10000.0
    }
}

fn client_response(s: &ServerSnapshot) -> Value {
    let (min, max) = s.stats.response_size_min_max.map_or((-1, -1), |(a, b)| (a as i64, b as i64));
    let last = if s.stats.response_size_min_max.is_some() { s.stats.last_response_size as i64 } else { -1 };
    json!({ "last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max })
}

fn server_stats(put: &mut impl FnMut(&str, Value), s: &ServerSnapshot, host: &HostInfo) {
    let st = &s.stats;
    put("version", json!(fourlw::full_version()));
    put("read_only", json!(s.role == Role::ReadOnly));
    put(
        "server_stats",
        json!({
            "packets_sent": st.packets_sent,
            "packets_received": st.packets_received,
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": client_response(s),
            "data_dir_size": host.data_dir_size,
            "log_dir_size": host.log_dir_size,
            "provider_null": false,
            "server_state": s.role.name(),
            "last_processed_zxid": s.zxid.0,
            "outstanding_requests": s.outstanding,
            "avg_latency": avg4(st.total_latency_ms, st.count),
            "max_latency": st.max_latency_ms,
            "min_latency": st.min_latency_ms,
            "num_alive_client_connections": s.conns.len(),
            "uptime": (s.now_wall_ms - st.started_ms).max(0),
            "auth_failed_count": st.auth_failed,
            "non_mtlsremote_conn_count": 0,
            "non_mtlslocal_conn_count": 0,
        }),
    );
    put("client_response", client_response(s));
    if s.role == Role::Leader {
        let (last, min, max) = s.quorum.proposal_sizes;
        put("proposal_stats", json!({ "last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max }));
    }
    put("node_count", json!(s.node_count));
}

/// How a metric of ZooKeeper's `ServerMetrics` is kept, which decides its Prometheus type and
/// how `monitor` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    /// `DetailLevel.BASIC`: avg/min/max/cnt/sum (Prometheus: quantile 0.5).
    Summary,
    /// `DetailLevel.ADVANCED`: also p50/p95/p99/p999 (Prometheus: quantiles 0.5, 0.9, 0.99).
    SummaryAdvanced,
}

/// ZooKeeper 3.8's counters (`ServerMetrics`), as `monitor` and Prometheus name them.
pub const COUNTERS: &[&str] = &[
    "add_dead_watcher_stall_time",
    "bytes_received_count",
    "cnxn_closed_without_zk_server_running",
    "commit_count",
    "connection_drop_count",
    "connection_rejected",
    "connection_request_count",
    "connection_revalidate_count",
    "dead_watchers_cleared",
    "dead_watchers_queued",
    "diff_count",
    "digest_mismatches_count",
    "ensemble_auth_fail",
    "ensemble_auth_skip",
    "ensemble_auth_success",
    "insecure_admin_count",
    "large_requests_rejected",
    "learner_commit_received_count",
    "learner_proposal_received_count",
    "looking_count",
    "outstanding_changes_queued",
    "outstanding_changes_removed",
    "prep_processor_request_queued",
    "proposal_count",
    "quit_leading_due_to_disloyal_voter",
    "request_commit_queued",
    "request_throttle_wait_count",
    "response_bytes",
    "response_packet_cache_hits",
    "response_packet_cache_misses",
    "response_packet_get_children_cache_hits",
    "response_packet_get_children_cache_misses",
    "revalidate_count",
    "sessionless_connections_expired",
    "skip_learner_request_to_next_processor_count",
    "snap_count",
    "stale_replies",
    "stale_requests",
    "stale_requests_dropped",
    "stale_sessions_expired",
    "sync_processor_request_queued",
    "throttled_ops",
    "tls_handshake_exceeded",
    "unrecoverable_error_count",
    "unsuccessful_handshake",
    "watch_bytes",
];

/// ZooKeeper 3.8's summaries (`ServerMetrics`), with their detail level. rzk measures
/// `readlatency`, `updatelatency`, `fsynctime`, `sync_processor_batch_size`, `snapshottime`
/// and `quorum_ack_latency` (see `observed`); the others have no observation (count 0 in `monitor`,
/// absent from `/metrics`).
pub const SUMMARIES: &[(&str, MetricKind)] = {
    use MetricKind::{Summary as B, SummaryAdvanced as A};
    &[
        ("socket_closing_time", B),
        ("proposal_process_time", B),
        ("leader_unavailable_time", B),
        ("node_created_watch_count", B),
        ("session_queues_drained", B),
        ("write_commit_proc_req_queued", B),
        ("connection_token_deficit", B),
        ("read_commit_proc_req_queued", B),
        ("node_deleted_watch_count", B),
        ("startup_txns_load_time", B),
        ("sync_processor_queue_size", B),
        ("follower_sync_time", B),
        ("prep_processor_queue_size", B),
        ("fsynctime", B),
        ("inflight_snap_count", B),
        ("reads_issued_from_session_queue", B),
        ("learner_request_processor_queue_size", B),
        ("snapshottime", B),
        ("unavailable_time", B),
        ("startup_txns_loaded", B),
        ("reads_after_write_in_session_queue", B),
        ("requests_in_session_queue", B),
        ("write_commit_proc_issued", B),
        ("prep_process_time", B),
        ("pending_session_queue_size", B),
        ("time_waiting_empty_pool_in_commit_processor_read_ms", B),
        ("commit_process_time", B),
        ("dbinittime", B),
        ("inflight_diff_count", B),
        ("netty_queued_buffer_capacity", B),
        ("election_time", B),
        ("commit_commit_proc_req_queued", B),
        ("sync_processor_batch_size", B),
        ("node_children_watch_count", B),
        ("write_batch_time_in_commit_processor", B),
        ("read_commit_proc_issued", B),
        ("concurrent_request_processing_in_commit_processor", B),
        ("observer_sync_time", B),
        ("node_changed_watch_count", B),
        ("sync_process_time", B),
        ("startup_snap_load_time", B),
        ("prep_processor_queue_time_ms", A),
        ("jvm_pause_time_ms", A),
        ("close_session_prep_time", A),
        ("read_commitproc_time_ms", A),
        ("updatelatency", A),
        ("local_write_committed_time_ms", A),
        ("request_throttle_queue_time_ms", A),
        ("readlatency", A),
        ("quorum_ack_latency", A),
        ("om_commit_process_time_ms", A),
        ("read_final_proc_time_ms", A),
        ("commit_propagation_latency", A),
        ("dead_watchers_cleaner_latency", A),
        ("write_final_proc_time_ms", A),
        ("proposal_ack_creation_latency", A),
        ("proposal_latency", A),
        ("om_proposal_process_time_ms", A),
        ("sync_processor_queue_and_flush_time_ms", A),
        ("propagation_latency", A),
        ("server_write_committed_time_ms", A),
        ("sync_processor_queue_time_ms", A),
        ("sync_processor_queue_flush_time_ms", A),
        ("write_commitproc_time_ms", A),
    ]
};

/// The kind of a `monitor` key, for Prometheus; `None` for the non-numeric ones.
pub fn metric_kind(key: &str) -> MetricKind {
    if COUNTERS.contains(&key) {
        MetricKind::Counter
    } else {
        MetricKind::Gauge
    }
}

/// `mntr` typed as ZooKeeper's AdminServer prints it: its rows without the `zk_` prefix
/// (numbers as JSON numbers), the response-size gauges, then every summary.
pub fn monitor(s: &ServerSnapshot, p: &ProcessInfo) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (k, v) in fourlw::mntr_rows(s, p) {
        let key = k.strip_prefix("zk_").unwrap_or(&k);
        // The 4lw's latency count/sum and a standalone server's proposal sizes are not
        // among the AdminServer's keys.
        if matches!(key, "cnt_latency" | "sum_latency") || (s.role != Role::Leader && key.ends_with("_proposal_size")) {
            continue;
        }
        let value = if let Ok(n) = v.parse::<i64>() {
            json!(n)
        } else if let (true, Ok(f)) = (v.contains('.'), v.parse::<f64>()) {
            json!(f)
        } else {
            json!(v)
        };
        out.push((key.to_string(), value));
        if key == "packets_received" {
            let (min, max) = s.stats.response_size_min_max.map_or((-1, -1), |(a, b)| (a as i64, b as i64));
            out.push(("max_client_response_size".into(), json!(max)));
            out.push(("min_client_response_size".into(), json!(min)));
        }
    }
    out.extend(summary_rows(s, false));
    out
}

/// Each summary's `avg_`, `min_`, `max_`, `cnt_`, `sum_` (and an advanced one's `p50_` ...
/// `p999_`) values, as ZooKeeper's `monitor` and `mntr` list them: every summary of
/// ZooKeeper's (zero when rzk has no observation), or `measured_only`.
pub fn summary_rows(s: &ServerSnapshot, measured_only: bool) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, kind) in SUMMARIES {
        let empty = Summary::default();
        let sm = match observed(s, name) {
            Some(sm) => sm,
            None if measured_only => continue,
            None => &empty,
        };
        out.push((format!("avg_{name}"), json!(sm.avg())));
        out.push((format!("min_{name}"), json!(sm.min)));
        out.push((format!("max_{name}"), json!(sm.max)));
        out.push((format!("cnt_{name}"), json!(sm.count)));
        out.push((format!("sum_{name}"), json!(sm.sum)));
        if *kind == MetricKind::SummaryAdvanced {
            for (pre, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
                out.push((format!("{pre}_{name}"), json!(sm.quantile(q).unwrap_or(0))));
            }
        }
    }
    out
}

/// The summaries rzk measures; the others of [`SUMMARIES`] have no observation (`mntr` and
/// `monitor` keep ZooKeeper's keys for them, at zero; `/metrics` leaves them out).
fn observed<'s>(s: &'s ServerSnapshot, name: &str) -> Option<&'s Summary> {
    match name {
        "readlatency" => Some(&s.stats.read_latency),
        "updatelatency" => Some(&s.stats.update_latency),
        "fsynctime" => Some(&s.stats.fsync_time),
        "sync_processor_batch_size" => Some(&s.stats.sync_batch_size),
        "snapshottime" => Some(&s.stats.snapshot_time),
        // Only an ensemble has a quorum to wait for (its leader measures it).
        "quorum_ack_latency" if s.role != Role::Standalone => Some(&s.stats.quorum_ack_latency),
        _ => None,
    }
}

/// The quantiles ZooKeeper's Prometheus provider exports for a summary of this kind.
pub fn prometheus_quantiles(kind: MetricKind) -> &'static [f64] {
    if kind == MetricKind::SummaryAdvanced {
        &[0.5, 0.9, 0.99]
    } else {
        &[0.5]
    }
}

/// What `/metrics` shows: `monitor` (its numbers become counters and gauges) and every
/// summary rzk measures as Prometheus sees one: `{name: {"count", "sum", "quantiles": [[q, v|null]]}}`.
pub fn metrics(s: &ServerSnapshot, host: &HostInfo) -> CommandResponse {
    let mut m = Map::new();
    for (k, v) in monitor(s, &host.process) {
        m.insert(k, v);
    }
    let mut sums = Map::new();
    for (name, kind) in SUMMARIES {
        // A summary rzk cannot measure is not exported.
        let Some(sm) = observed(s, name) else { continue };
        let q: Vec<Value> = prometheus_quantiles(*kind).iter().map(|q| json!([q, sm.quantile(*q)])).collect();
        sums.insert(name.to_string(), json!({ "count": sm.count, "sum": sm.sum, "quantiles": q }));
    }
    // Summary sets, keyed (ZooKeeper's `SummarySet`): per-learner ACK latency, on a leader
    // once a learner has acknowledged a proposal in flight.
    let mut sets = Map::new();
    if !s.stats.ack_latency.is_empty() {
        let q = prometheus_quantiles(MetricKind::SummaryAdvanced);
        let by_peer: Map<String, Value> = s
            .stats
            .ack_latency
            .iter()
            .map(|(sid, sm)| {
                let qs: Vec<Value> = q.iter().map(|q| json!([q, sm.quantile(*q)])).collect();
                (sid.to_string(), json!({ "count": sm.count, "sum": sm.sum, "quantiles": qs }))
            })
            .collect();
        sets.insert("ack_latency".into(), Value::Object(by_peer));
    }
    CommandResponse { status: 200, body: json!({ "monitor": m, "summaries": sums, "summary_sets": sets }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fourlw::{QuorumInfo, WatchSummary};
    use crate::server::ServerStats;
    use rzk_proto::Zxid;

    fn snapshot(role: Role) -> ServerSnapshot {
        ServerSnapshot {
            serves_clients: role != Role::NotServing,
            role,
            quorum: QuorumInfo::default(),
            pending_syncs: 0,
            digest_mismatches: 0,
            stats: ServerStats::default(),
            conns: Vec::new(),
            zxid: Zxid(0x1_0000_0002),
            node_count: 5,
            outstanding: 0,
            watch: WatchSummary::default(),
            sessions: Vec::new(),
            session_buckets: Vec::new(),
            session_expiry_wall_ms: Default::default(),
            ephemerals: Vec::new(),
            approximate_data_size: 0,
            now_wall_ms: 0,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            tick_ms: 2000,
            watch_count: 0,
            ephemerals_count: 0,
            session_count: 0,
            local_session_count: 0,
            digest: 7,
            digest_version: 2,
            quota_gauges: Default::default(),
            digest_log: Vec::new(),
            trace_mask: 0,
        }
    }

    #[test]
    fn every_alias_reports_its_primary_name() {
        let s = snapshot(Role::Standalone);
        for c in COMMANDS {
            for n in c.names {
                let r = run(n, &BTreeMap::new(), &s, &HostInfo::default());
                assert_eq!(r.body["command"], json!(c.primary), "{n}");
                assert_eq!(r.status, 200);
            }
        }
    }

    #[test]
    fn streamed_answers_are_run_printed_pretty() {
        use rzk_proto::SessionId;
        let mut s = snapshot(Role::Standalone);
        let peer: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let conn = |conn: u64, session: Option<i64>| crate::fourlw::ConnSnapshot {
            conn,
            peer,
            session: session.map(SessionId),
            timeout_ms: 30000,
            queued: 0,
            stats: Default::default(),
        };
        s.conns = vec![conn(1, Some(0x1000_0000_0000_0001)), conn(2, Some(7)), conn(3, None), conn(4, Some(7)), conn(5, None)];
        s.watch.by_conn = vec![
            (2, vec!["/b".into(), "/a\"q".into()]),
            (1, vec!["/a".into()]),
            (3, vec![]),
            (4, vec!["/c".into()]),
            (5, vec!["/e".into()]),
        ];
        s.watch.by_path = vec![("/a".into(), vec![1, 2, 9]), ("/b".into(), vec![2]), ("/ü".into(), vec![])];
        s.session_buckets = vec![(1000, vec![SessionId(7), SessionId(-3)]), (5, vec![])];
        s.ephemerals = vec![(SessionId(7), vec!["/e1".into(), "/e2".into()]), (SessionId(-1), vec![])];
        for role in [Role::Standalone, Role::Follower] {
            s.role = role;
            for name in ["dump", "watches", "watches_by_path", "wchc", "wchp"] {
                let mut out = Vec::new();
                assert!(write_streamed(name, &s, &mut out).unwrap(), "{name}");
                let want = serde_json::to_string_pretty(&run(name, &BTreeMap::new(), &s, &HostInfo::default()).body).unwrap() + "\n";
                assert_eq!(String::from_utf8(out).unwrap(), want, "{name} {role:?}");
            }
        }
        let mut out = Vec::new();
        assert!(!write_streamed("dump", &snapshot(Role::NotServing), &mut out).unwrap());
        assert!(!write_streamed("mntr", &s, &mut out).unwrap());
        assert!(out.is_empty());
    }

    #[test]
    fn unknown_and_not_serving_are_errors_with_status_200() {
        let s = snapshot(Role::Standalone);
        let r = run("snapshot", &BTreeMap::new(), &s, &HostInfo::default());
        assert_eq!(r.body, json!({"command": "snapshot", "error": "Unknown command: snapshot"}));
        let r = run("dump", &BTreeMap::new(), &snapshot(Role::NotServing), &HostInfo::default());
        assert_eq!(r.body["error"], json!(fourlw::ZK_NOT_SERVING));
        // mntr needs no serving server.
        let r = run("mntr", &BTreeMap::new(), &snapshot(Role::NotServing), &HostInfo::default());
        assert_eq!(r.body["error"], Value::Null);
    }

    #[test]
    fn set_trace_mask_validates_as_zookeeper() {
        let s = snapshot(Role::Standalone);
        let r = run("stmk", &BTreeMap::new(), &s, &HostInfo::default());
        assert_eq!(r.body["error"], json!("setTraceMask requires long traceMask argument"));
        let p = BTreeMap::from([("traceMask".to_string(), "x".to_string())]);
        assert_eq!(run("stmk", &p, &s, &HostInfo::default()).body["error"], json!("setTraceMask requires long traceMask argument, got x"));
        let p = BTreeMap::from([("traceMask".to_string(), "5".to_string())]);
        let r = run("stmk", &p, &s, &HostInfo::default());
        assert_eq!((r.body["error"].clone(), r.body["tracemask"].clone()), (Value::Null, json!(5)));
        assert_eq!(mutation("set_trace_mask", &p), Mutation::SetTraceMask(5));
        let p = BTreeMap::from([("traceMask".to_string(), "x".to_string())]);
        assert_eq!(mutation("stmk", &p), Mutation::None);
    }

    #[test]
    fn monitor_types_follow_zookeeper() {
        let m: BTreeMap<String, Value> = monitor(&snapshot(Role::Standalone), &ProcessInfo::default()).into_iter().collect();
        assert!(m["avg_latency"].is_f64());
        assert!(m["znode_count"].is_i64());
        assert!(m["server_state"].is_string());
        assert!(m["p999_readlatency"].is_i64());
        assert!(!m.contains_key("cnt_latency"));
        assert_eq!(metric_kind("stale_requests"), MetricKind::Counter);
        assert_eq!(metric_kind("znode_count"), MetricKind::Gauge);
    }

    #[test]
    fn storage_summaries_are_observed_and_unmeasured_ones_not_exported() {
        let mut s = snapshot(Role::Standalone);
        s.stats.fsync_time.observe(3);
        s.stats.fsync_time.observe(5);
        s.stats.sync_batch_size.observe(40);
        s.stats.snapshot_time.observe(12);
        let m: BTreeMap<String, Value> = monitor(&s, &ProcessInfo::default()).into_iter().collect();
        assert_eq!((m["cnt_fsynctime"].clone(), m["max_fsynctime"].clone(), m["avg_fsynctime"].clone()), (json!(2), json!(5), json!(4.0)));
        assert_eq!(m["sum_sync_processor_batch_size"], json!(40));
        assert_eq!(m["cnt_snapshottime"], json!(1));
        // mntr keeps ZooKeeper's key of a summary rzk does not measure, at zero.
        assert_eq!(m["cnt_jvm_pause_time_ms"], json!(0));
        let r = metrics(&s, &HostInfo::default());
        let sums = r.body["summaries"].as_object().unwrap();
        let mut names: Vec<&str> = sums.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["fsynctime", "readlatency", "snapshottime", "sync_processor_batch_size", "updatelatency"]);
        assert_eq!(sums["fsynctime"]["count"], json!(2));
        assert_eq!(sums["fsynctime"]["quantiles"], json!([[0.5, 3]]));
    }

    #[test]
    fn zabstate_of_a_standalone_server() {
        let r = run("zabstate", &BTreeMap::new(), &snapshot(Role::Standalone), &HostInfo::default());
        assert_eq!(r.body, json!({"voting": false, "zabstate": "", "command": "zabstate", "error": null}));
    }
}
