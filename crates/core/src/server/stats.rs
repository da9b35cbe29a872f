//! Counters and the read-only view for the four-letter words and the admin API: per
//! connection and server-wide latency and packet counts, and [`ZooKeeperServer::snapshot`].

use super::{ConnState, Pending, RoleState, ZooKeeperServer};
use crate::fourlw::{ConnSnapshot, ServerSnapshot, WatchSummary};

#[derive(Debug, Default, Clone)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub established_ms: i64,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_op: &'static str,
    pub last_response_ms: i64,
    pub last_latency_ms: i64,
    pub min_latency_ms: i64,
    pub max_latency_ms: i64,
    pub total_latency_ms: i64,
    pub count: u64,
}

impl ConnStats {
    pub(super) fn record(&mut self, latency: i64) {
        self.last_latency_ms = latency;
        if self.count == 0 || latency < self.min_latency_ms {
            self.min_latency_ms = latency;
        }
        self.max_latency_ms = self.max_latency_ms.max(latency);
        self.total_latency_ms += latency;
        self.count += 1;
    }
}

/// Server-wide counters for srvr / stat / mntr.
#[derive(Debug, Default, Clone)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub min_latency_ms: i64,
    pub max_latency_ms: i64,
    pub total_latency_ms: i64,
    pub count: u64,
    pub started_ms: i64,
    /// Bytes of request frames received, length prefixes included (`zk_bytes_received_count`).
    pub bytes_received: u64,
    /// Bytes of reply frames sent (`zk_response_bytes`) and the size of the last one.
    pub response_bytes: u64,
    pub last_response_size: u64,
    pub auth_failed: u64,
    /// ConnectRequests seen, and those that could not be decoded.
    pub connection_requests: u64,
    pub unsuccessful_handshakes: u64,
    /// Sessions the tracker expired.
    pub sessions_expired: u64,
    /// Transactions handed to the log (ZooKeeper's prep and sync processor queues).
    pub txns_appended: u64,
    /// Smallest and largest reply frame since the last reset (`zk_min/max_client_response_size`;
    /// ZooKeeper's BufferStats), none before the first reply.
    pub response_size_min_max: Option<(u64, u64)>,
    /// `quota_exceeded_error_per_namespace`: creates and setData refused by a hard quota, by
    /// the top-level namespace of their path (ZooKeeper's CounterSet).
    pub quota: crate::prep::QuotaRecord,
    /// Latency of requests without a txn and of those with one (`readlatency`,
    /// `updatelatency`: ZooKeeper sorts them by the request's txn header).
    pub read_latency: crate::summary::Summary,
    pub update_latency: crate::summary::Summary,
    /// The request throttler's counters (ZooKeeper's ServerMetrics names, mntr `zk_` keys):
    /// stalls while requests waited, requests answered ThrottledOp, waiting requests whose
    /// connection was gone (dropped, or passed on with `drop_stale` off).
    pub request_throttle_wait_count: u64,
    pub throttled_ops: u64,
    pub stale_requests: u64,
    pub stale_requests_dropped: u64,
    /// Frames over `largeRequestThreshold` refused for want of `largeRequestMaxBytes`
    /// (`large_requests_rejected`), and connection requests the connection throttle refused
    /// (counted in `connection_rejected` with the shell's `maxClientCnxns` refusals).
    pub large_requests_rejected: u64,
    pub connections_throttled: u64,
    /// What the host's storage measured and handed in ([`ZooKeeperServer::observe_storage`]):
    /// `fsynctime` (ms of each group commit's fdatasync), `sync_processor_batch_size` (txns
    /// made durable by it) and `snapshottime` (ms to write each snapshot).
    pub fsync_time: crate::summary::Summary,
    pub sync_batch_size: crate::summary::Summary,
    pub snapshot_time: crate::summary::Summary,
    /// Leader: ms from a proposal's txn header time (wall clock at prep) to its quorum of
    /// ACKs (`quorum_ack_latency`), and to each learner's ACK, by sid (`ack_latency`, a
    /// summary set keyed by the sid; ZooKeeper samples one zxid in
    /// `zookeeper.leader.ackLoggingFrequency`, rzk keeps every ACK). Negative spans (the
    /// wall clock stepped back) are not recorded, as ZooKeeper skips them.
    pub quorum_ack_latency: crate::summary::Summary,
    pub ack_latency: std::collections::BTreeMap<i64, crate::summary::Summary>,
}

/// A storage measurement the host hands the core for its statistics (the core reads no
/// clock; the log worker and the snapshot writer do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageObservation {
    /// One group commit: its fdatasync's time and the txns it made durable.
    GroupCommit { fsync_ms: i64, txns: i64 },
    /// One snapshot written, from its first chunk to the file renamed.
    Snapshot { ms: i64 },
}

impl ServerStats {
    pub(super) fn record(&mut self, latency: i64) {
        if self.count == 0 || latency < self.min_latency_ms {
            self.min_latency_ms = latency;
        }
        self.max_latency_ms = self.max_latency_ms.max(latency);
        self.total_latency_ms += latency;
        self.count += 1;
    }
}

impl ZooKeeperServer {
    /// A read-only view for the four-letter words and the admin API.
    pub fn snapshot(&self) -> ServerSnapshot {
        self.snapshot_of(true)
    }

    /// The same view without the per-watch, per-session and per-ephemeral lists (their
    /// counts stay): what `mntr`, `srvr` and `/metrics` need, in time independent of the
    /// number of watches, sessions and ephemerals.
    pub fn snapshot_brief(&self) -> ServerSnapshot {
        self.snapshot_of(false)
    }

    fn snapshot_of(&self, full: bool) -> ServerSnapshot {
        let conns = self
            .conns
            .iter()
            .filter(|(_, c)| c.state != ConnState::Closed)
            .map(|(id, c)| ConnSnapshot {
                conn: *id,
                peer: c.peer,
                session: c.session,
                timeout_ms: c.timeout_ms,
                queued: c.pending.len(),
                stats: c.stats.clone(),
            })
            .collect();
        ServerSnapshot {
            role: self.role(),
            serves_clients: self.serves_clients(),
            quorum: self.quorum_info.clone(),
            pending_syncs: match &self.role {
                RoleState::Leader(l) => l.syncs.len(),
                _ => 0,
            },
            digest_mismatches: self.digest_mismatches,
            stats: self.stats.clone(),
            conns,
            zxid: self.tree.last_processed_zxid(),
            node_count: self.tree.node_count(),
            // In flight here, plus (on a learner) what waits for the leader.
            outstanding: self.in_flight.len()
                + self
                    .conns
                    .values()
                    .map(|c| {
                        c.pending.iter().filter(|p| matches!(p, Pending::Forwarded { .. } | Pending::Sync { done: false, .. })).count()
                    })
                    .sum::<usize>(),
            watch: if full {
                WatchSummary {
                    by_conn: self.tree.watches_by_watcher().into_iter().map(|(w, p)| (w.0, p)).collect(),
                    by_path: self.tree.watches_by_path().into_iter().map(|(p, ws)| (p, ws.into_iter().map(|w| w.0).collect())).collect(),
                    total: self.tree.watch_summary().total,
                }
            } else {
                WatchSummary { total: self.tree.watch_summary().total, ..Default::default() }
            },
            sessions: if full { self.sessions.sessions().iter().map(|s| (s.id, s.timeout_ms)).collect() } else { Vec::new() },
            session_buckets: if full {
                self.sessions.buckets().iter().map(|(at, ids)| (self.wall_ms + (at - self.now_ms), ids.iter().copied().collect())).collect()
            } else {
                Vec::new()
            },
            session_expiry_wall_ms: if full {
                self.sessions.sessions().iter().map(|s| (s.id, self.wall_ms + (s.expires_at_ms - self.now_ms))).collect()
            } else {
                Default::default()
            },
            ephemerals: if full {
                self.tree.sessions_with_ephemerals().into_iter().map(|s| (s, self.tree.get_ephemerals(s))).collect()
            } else {
                Vec::new()
            },
            ephemerals_count: self.tree.ephemerals_count(),
            session_count: self.sessions.len(),
            local_session_count: self.local.len(),
            approximate_data_size: self.tree.approximate_data_size().max(0) as u64,
            now_wall_ms: self.wall_ms,
            min_session_timeout_ms: self.cfg.min_session_timeout_ms,
            max_session_timeout_ms: self.cfg.max_session_timeout_ms,
            tick_ms: self.cfg.tick_ms,
            watch_count: self.tree.watch_count(),
            digest: self.tree.digest(),
            digest_version: self.tree.digest_version(),
            quota_gauges: rzk_tree::quota::namespace_metrics(&self.tree),
            digest_log: self.tree.digest_log().collect(),
            trace_mask: self.trace_mask,
        }
    }

    /// Resets the server's counters (`srst`).
    /// Records a measurement of the host's storage (see [`StorageObservation`]).
    pub fn observe_storage(&mut self, o: StorageObservation) {
        match o {
            StorageObservation::GroupCommit { fsync_ms, txns } => {
                self.stats.fsync_time.observe(fsync_ms);
                self.stats.sync_batch_size.observe(txns);
            }
            StorageObservation::Snapshot { ms } => self.stats.snapshot_time.observe(ms),
        }
    }

    /// Leader: learner `peer` acknowledged `zxid` (a proposal of this server's in flight).
    pub fn observe_ack(&mut self, peer: i64, zxid: rzk_proto::Zxid, wall_ms: i64) {
        if self.role() != crate::server::Role::Leader {
            return;
        }
        let i = self.in_flight.partition_point(|f| f.record.header.zxid < zxid);
        let Some(f) = self.in_flight.get(i).filter(|f| f.record.header.zxid == zxid) else { return };
        let latency = wall_ms - f.record.header.time;
        // One summary per voter or observer of the ensemble: bounded by its size.
        if latency >= 0 {
            self.stats.ack_latency.entry(peer).or_default().observe(latency);
        }
    }

    pub fn reset_stats(&mut self) {
        let started = self.stats.started_ms;
        self.stats = ServerStats { started_ms: started, ..Default::default() };
    }

    /// Resets every connection's counters (`crst`).
    pub fn reset_conn_stats(&mut self) {
        for c in self.conns.values_mut() {
            let est = c.stats.established_ms;
            c.stats = ConnStats { established_ms: est, ..Default::default() };
        }
    }
}
