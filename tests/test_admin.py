"""The AdminServer and the Prometheus endpoint, side by side with Apache ZooKeeper 3.8.

Both servers run with their AdminServer on (Debian's ZooKeeper needs servlet-api.jar on its
class path for it: tests/zkharness.py adds it) and take the same small workload through
kazoo; then every command both know is asked of both and compared: the same JSON keys, the
same JSON type per key, equal values where the workload fixes them (znode and ephemeral
counts, watches, paths, sessions), the same answers to unknown commands and bad parameters.

Prometheus: Debian's ZooKeeper 3.8 ships without the Prometheus provider's jars, so rzk's
/metrics is checked against the metric names and types of ZooKeeper's source
(ServerMetrics, ZooKeeperServer.registerMetrics and PrometheusMetricsProvider: counters are
counters, registered gauges are gauges, summaries are summaries), parsed with the Prometheus
Python client's text parser.
"""

from __future__ import annotations

import json
import shutil
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zkharness as h  # noqa: E402

pytestmark = pytest.mark.timeout(300)

PROMETHEUS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


def http_get(port: int, path: str, timeout: float = 10.0):
    """(status, content type, body text) of GET http://127.0.0.1:port/path."""
    try:
        r = urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout)
        return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def command(port: int, name: str):
    status, ctype, body = http_get(port, "/commands/" + name)
    assert status == 200, (name, status, body)
    assert ctype.startswith("application/json"), (name, ctype)
    return json.loads(body)


class Pair:
    """One ZooKeeper and one rzk, each with its AdminServer on a free port."""

    def __init__(self):
        self.admin = {}
        self.servers = {}
        self.clients = {}

    def start(self, kind: str, extra=None):
        port = h.free_port()
        cfg = {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": str(port)}
        cfg.update(extra or {})
        s = h.make_server(kind, extra_cfg=cfg)
        s.start()
        self.servers[kind] = s
        self.admin[kind] = port
        return s


def workload(hosts: str):
    """The same small workload on either server; returns the live client."""
    from kazoo.client import KazooClient

    kz = KazooClient(hosts=hosts, timeout=10)
    kz.start(timeout=20)
    kz.create("/a", b"x")
    kz.create("/a/b", b"yy")
    kz.create("/a/e", b"", ephemeral=True)
    kz.get("/a", watch=lambda e: None)
    kz.exists("/nope", watch=lambda e: None)
    kz.get_children("/a", watch=lambda e: None)
    kz.set("/a/b", b"zzz")
    return kz


@pytest.fixture(scope="module")
def pair():
    if not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    if not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed (apt-get install zookeeper)")
    if not os.path.isfile("/usr/share/java/servlet-api.jar"):
        pytest.skip("servlet-api.jar missing (apt-get install libservlet-api-java)")
    p = Pair()
    try:
        for kind in ("zookeeper", "rzk"):
            s = p.start(kind)
            p.clients[kind] = workload(s.hosts)
        yield p
    finally:
        for kz in p.clients.values():
            try:
                kz.stop()
                kz.close()
            except Exception:
                pass
        for s in p.servers.values():
            s.cleanup()


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    return "object"


def shape(v):
    """Keys and JSON types, recursively (list elements: the first one's shape)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return ["list", shape(v[0]) if v else None]
    return jtype(v)


def both(pair, name):
    return command(pair.admin["zookeeper"], name), command(pair.admin["rzk"], name)


# Commands whose whole shape (keys and types, recursively) must be ZooKeeper's. Map-valued
# fields keyed by session ids or times are compared separately.
SAME_SHAPE = [
    "configuration", "connection_stat_reset", "dirs", "get_trace_mask", "initial_configuration",
    "is_read_only", "last_snapshot", "leader", "observer_connection_stat_reset", "observers",
    "ruok", "server_stats", "stat_reset", "voting_view", "watch_summary", "zabstate",
]


def test_command_list_is_zookeepers(pair):
    zk = http_get(pair.admin["zookeeper"], "/commands")
    rz = http_get(pair.admin["rzk"], "/commands")
    assert zk[0] == rz[0] == 200
    links = lambda body: sorted(l for l in body.split("\n") if l.startswith("<a href"))  # noqa: E731
    assert links(rz[2]) == links(zk[2])


@pytest.mark.parametrize("name", SAME_SHAPE)
def test_same_fields_and_types(pair, name):
    zk, rz = both(pair, name)
    assert shape(rz) == shape(zk), (zk, rz)
    assert rz["command"] == zk["command"]


def test_aliases_answer_as_their_primary_name(pair):
    for alias, primary in [("conf", "configuration"), ("config", "configuration"), ("cons", "connections"),
                           ("crst", "connection_stat_reset"), ("envi", "environment"), ("env", "environment"),
                           ("gtmk", "get_trace_mask"), ("icfg", "initial_configuration"), ("isro", "is_read_only"),
                           ("lsnp", "last_snapshot"), ("lead", "leader"), ("mntr", "monitor"),
                           ("orst", "observer_connection_stat_reset"), ("obsr", "observers"), ("srvr", "server_stats"),
                           ("stat", "stats"), ("srst", "stat_reset"), ("sysp", "system_properties"), ("wchc", "watches"),
                           ("wchp", "watches_by_path"), ("wchs", "watch_summary")]:
        zk, rz = both(pair, alias)
        assert zk["command"] == rz["command"] == primary, alias


def test_values_the_workload_fixes(pair):
    zk, rz = both(pair, "monitor")
    for key in ["znode_count", "ephemerals_count", "watch_count", "global_sessions", "num_alive_connections",
                "outstanding_requests", "server_state", "local_sessions"]:
        assert rz[key] == zk[key], key
    zk, rz = both(pair, "server_stats")
    assert rz["node_count"] == zk["node_count"]
    assert rz["server_stats"]["server_state"] == zk["server_stats"]["server_state"]
    assert rz["server_stats"]["last_processed_zxid"] == zk["server_stats"]["last_processed_zxid"]
    zk, rz = both(pair, "watch_summary")
    assert rz == zk
    zk, rz = both(pair, "is_read_only")
    assert rz == zk
    zk, rz = both(pair, "configuration")
    for key in ["tick_time", "max_client_cnxns", "min_session_timeout", "server_id", "client_port_listen_backlog"]:
        assert rz[key] == zk[key], key


def test_monitor_has_zookeepers_keys_and_types(pair):
    zk, rz = both(pair, "monitor")
    # Per-namespace summary sets (read/write_per_namespace) are keyed by the top-level znodes
    # the workload touched; rzk does not keep them.
    zk_keys = {k for k in zk if not k.endswith("_per_namespace")}
    assert zk_keys - set(rz) == set(), "missing in rzk"
    assert set(rz) - zk_keys == set(), "extra in rzk"
    for k in zk_keys:
        assert jtype(rz[k]) == jtype(zk[k]), (k, zk[k], rz[k])


def session_lists(d):
    return sorted(sorted(v) for v in d.values())


def test_connections_dump_and_watches(pair):
    zk, rz = both(pair, "connections")
    assert set(rz) == set(zk)
    assert len(rz["connections"]) == len(zk["connections"]) == 1
    assert shape(rz["connections"][0]) == shape(zk["connections"][0])
    assert rz["secure_connections"] == zk["secure_connections"] == []

    zk, rz = both(pair, "stats")
    assert shape(rz) == shape(zk)

    zk, rz = both(pair, "dump")
    assert set(rz) == set(zk)
    assert session_lists(rz["session_id_to_ephemeral_paths"]) == session_lists(zk["session_id_to_ephemeral_paths"]) == [["/a/e"]]
    for d in (zk, rz):
        ids = [i for v in d["expiry_time_to_session_ids"].values() for i in v]
        assert len(ids) == 1 and isinstance(ids[0], int)
        assert [int(k) for k in d["session_id_to_ephemeral_paths"]] == ids

    zk, rz = both(pair, "watches")
    assert session_lists(rz["session_id_to_watched_paths"]) == session_lists(zk["session_id_to_watched_paths"])
    zk, rz = both(pair, "watches_by_path")
    zp, rp = zk["path_to_session_ids"], rz["path_to_session_ids"]
    assert sorted(rp) == sorted(zp)
    assert {p: len(v) for p, v in rp.items()} == {p: len(v) for p, v in zp.items()}
    assert all(isinstance(i, int) for v in rp.values() for i in v)

    zk, rz = both(pair, "hash")
    assert set(rz) == set(zk) and jtype(rz["digests"]) == "list"


def test_environment_and_system_properties(pair):
    zk, rz = both(pair, "environment")
    assert set(rz) == set(zk)
    assert all(jtype(v) == "str" for k, v in rz.items() if k not in ("command", "error"))
    zk, rz = both(pair, "system_properties")
    # ZooKeeper lists the JVM's properties; both list the zookeeper.* ones zoo.cfg set.
    # (zookeeper.jmx.log4j.disable is on the harness's java command line, not in zoo.cfg.)
    zk_props = {k: v for k, v in zk.items() if k.startswith("zookeeper.") and k != "zookeeper.jmx.log4j.disable"}
    for k, v in zk_props.items():
        assert k in rz, k
        if not k.endswith("Port"):  # each server has its own ports
            assert rz[k] == v, k
    assert all(jtype(v) == "str" for k, v in rz.items() if k not in ("command", "error"))


def test_errors_are_zookeepers(pair):
    # (3.9's snapshot and restore, which 3.8 does not have: test_snapshot_command_*,
    # test_restore_command_*.)
    for name in ["nosuch"]:
        zk, rz = both(pair, name)
        assert rz == zk, name
    for q in ["set_trace_mask", "set_trace_mask?traceMask=x", "stmk?traceMask=12x"]:
        zk, rz = both(pair, q)
        assert rz == zk, q
    # A valid mask: both set their ZooTrace mask (rzk's selects what it traces under
    # rzk::zootrace), and get_trace_mask reads it back; then ZooTrace's default again.
    for q in ["set_trace_mask?traceMask=5", "get_trace_mask", "stmk?traceMask=306", "gtmk"]:
        zk, rz = both(pair, q)
        assert rz == zk, q
    assert rz["tracemask"] == 306
    zk, rz = both(pair, "leader")
    assert rz == zk
    for path in ["/", "/nothing"]:
        assert http_get(pair.admin["rzk"], path)[0] == http_get(pair.admin["zookeeper"], path)[0] == 404


def test_resets(pair):
    # (A kazoo ping may arrive between the reset and the look: at most one or two packets.)
    for kind in ("zookeeper", "rzk"):
        command(pair.admin[kind], "stat_reset")
        after = command(pair.admin[kind], "server_stats")["server_stats"]
        assert after["packets_received"] <= 2, kind
        command(pair.admin[kind], "connection_stat_reset")
        cons = command(pair.admin[kind], "connections")["connections"]
        assert cons[0]["packets_received"] <= 2, kind


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_admin_server_off_means_nothing_listens(new_server, kind):
    port = h.free_port()
    s = new_server(kind, extra_cfg={"admin.enableServer": "false", "admin.serverAddress": "127.0.0.1", "admin.serverPort": str(port)})
    assert h.four_letter(s.port, "ruok").strip() == "imok"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# ---------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------

# From ZooKeeper 3.8's source: ZooKeeperServer.registerMetrics (gauges) and ServerMetrics
# (counters; summaries with their detail level).
ZK_GAUGES = [
    "avg_latency", "max_latency", "min_latency", "packets_received", "packets_sent", "num_alive_connections",
    "outstanding_requests", "uptime", "znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
    "global_sessions", "local_sessions", "open_file_descriptor_count", "max_file_descriptor_count",
    "connection_drop_probability", "last_client_response_size", "max_client_response_size",
    "min_client_response_size", "outstanding_tls_handshake", "auth_failed_count", "non_mtls_remote_conn_count",
    "non_mtls_local_conn_count",
]
ZK_COUNTERS = [
    "add_dead_watcher_stall_time", "bytes_received_count", "cnxn_closed_without_zk_server_running", "commit_count",
    "connection_drop_count", "connection_rejected", "connection_request_count", "connection_revalidate_count",
    "dead_watchers_cleared", "dead_watchers_queued", "diff_count", "digest_mismatches_count", "ensemble_auth_fail",
    "ensemble_auth_skip", "ensemble_auth_success", "insecure_admin_count", "large_requests_rejected",
    "learner_commit_received_count", "learner_proposal_received_count", "looking_count", "outstanding_changes_queued",
    "outstanding_changes_removed", "prep_processor_request_queued", "proposal_count",
    "quit_leading_due_to_disloyal_voter", "request_commit_queued", "request_throttle_wait_count", "response_bytes",
    "response_packet_cache_hits", "response_packet_cache_misses", "response_packet_get_children_cache_hits",
    "response_packet_get_children_cache_misses", "revalidate_count", "sessionless_connections_expired",
    "skip_learner_request_to_next_processor_count", "snap_count", "stale_replies", "stale_requests",
    "stale_requests_dropped", "stale_sessions_expired", "sync_processor_request_queued", "throttled_ops",
    "tls_handshake_exceeded", "unrecoverable_error_count", "unsuccessful_handshake", "watch_bytes",
]
ZK_SUMMARIES_ADVANCED = [
    "close_session_prep_time", "commit_propagation_latency", "dead_watchers_cleaner_latency", "jvm_pause_time_ms",
    "local_write_committed_time_ms", "om_commit_process_time_ms", "om_proposal_process_time_ms",
    "prep_processor_queue_time_ms", "propagation_latency", "proposal_ack_creation_latency", "proposal_latency",
    "quorum_ack_latency", "read_commitproc_time_ms", "read_final_proc_time_ms", "readlatency",
    "request_throttle_queue_time_ms", "server_write_committed_time_ms", "sync_processor_queue_and_flush_time_ms",
    "sync_processor_queue_flush_time_ms", "sync_processor_queue_time_ms", "updatelatency", "write_commitproc_time_ms",
    "write_final_proc_time_ms",
]
ZK_SUMMARIES_BASIC = [
    "commit_commit_proc_req_queued", "commit_process_time", "concurrent_request_processing_in_commit_processor",
    "connection_token_deficit", "dbinittime", "election_time", "follower_sync_time", "fsynctime",
    "inflight_diff_count", "inflight_snap_count", "leader_unavailable_time", "learner_request_processor_queue_size",
    "netty_queued_buffer_capacity", "node_changed_watch_count", "node_children_watch_count",
    "node_created_watch_count", "node_deleted_watch_count", "observer_sync_time", "pending_session_queue_size",
    "prep_process_time", "prep_processor_queue_size", "proposal_process_time", "read_commit_proc_issued",
    "read_commit_proc_req_queued", "reads_after_write_in_session_queue", "reads_issued_from_session_queue",
    "requests_in_session_queue", "session_queues_drained", "snapshottime", "socket_closing_time",
    "startup_snap_load_time", "startup_txns_load_time", "startup_txns_loaded", "sync_process_time",
    "sync_processor_batch_size", "sync_processor_queue_size", "time_waiting_empty_pool_in_commit_processor_read_ms",
    "unavailable_time", "write_batch_time_in_commit_processor", "write_commit_proc_issued",
    "write_commit_proc_req_queued",
]


# The summaries rzk observes (the request latencies and its storage's).
RZK_SUMMARIES = ["readlatency", "updatelatency", "fsynctime", "sync_processor_batch_size", "snapshottime"]


def zookeeper_has_prometheus_provider() -> bool:
    jars = subprocess.run(["sh", "-c", "ls /usr/share/java | grep -i -e prometheus -e simpleclient"],
                          capture_output=True, text=True).stdout
    return "zookeeper-prometheus" in jars


def test_prometheus_metrics_names_and_types(new_server):
    from prometheus_client.parser import text_string_to_metric_families

    if zookeeper_has_prometheus_provider():  # pragma: no cover - Debian 12 has none
        pytest.fail("ZooKeeper's Prometheus provider is installed: compare against it side by side")
    port = h.free_port()
    s = new_server("rzk", extra_cfg={
        "metricsProvider.className": PROMETHEUS_PROVIDER,
        "metricsProvider.httpHost": "127.0.0.1",
        "metricsProvider.httpPort": str(port),
    })
    kz = workload(s.hosts)
    try:
        status, ctype, text = http_get(port, "/metrics")
    finally:
        kz.stop()
        kz.close()
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {n: "gauge" for n in ZK_GAUGES}
    expected.update({n: "counter" for n in ZK_COUNTERS})
    # Summaries: those rzk measures, and no other (a metric with no observation is not exported).
    expected.update({n: "summary" for n in RZK_SUMMARIES})
    missing = sorted(n for n in expected if n not in families)
    assert missing == []
    unmeasured = sorted(n for n in ZK_SUMMARIES_ADVANCED + ZK_SUMMARIES_BASIC if n not in RZK_SUMMARIES and n in families)
    assert unmeasured == []
    assert set(RZK_SUMMARIES) <= set(ZK_SUMMARIES_ADVANCED + ZK_SUMMARIES_BASIC)  # ZooKeeper's names
    wrong = {n: families[n].type for n, t in expected.items() if families[n].type != t}
    assert wrong == {}
    sample = {x.name: x.value for f in families.values() for x in f.samples}
    assert sample["znode_count"] == 8  # ZooKeeper's 5 at start (its count includes one more than the 4 system paths), /a, /a/b, /a/e
    assert sample["ephemerals_count"] == 1
    quantiles = {x.labels.get("quantile") for x in families["readlatency"].samples if "quantile" in x.labels}
    assert quantiles == {"0.5", "0.9", "0.99"}
    quantiles = {x.labels.get("quantile") for x in families["fsynctime"].samples if "quantile" in x.labels}
    assert quantiles == {"0.5"}
    # rzk measures the request latencies: the workload's 4 writes and its reads.
    assert sample["updatelatency_count"] >= 4 and sample["readlatency_count"] >= 3
    assert all(x.value == x.value for x in families["updatelatency"].samples)  # no NaN once observed
    # rzk's storage: every group commit's fdatasync (ms) and its txns, the startup snapshot.
    assert sample["fsynctime_count"] >= 1 and sample["sync_processor_batch_size_count"] == sample["fsynctime_count"]
    assert sample["sync_processor_batch_size_sum"] >= 4  # the workload's writes, plus its session
    assert sample["snapshottime_count"] >= 1  # snapshot.0 of the empty dataDir
    for name in RZK_SUMMARIES:
        assert all(x.value == x.value for x in families[name].samples), name
    assert http_get(port, "/other")[0] == 404
    # exportJvmInfo (default true): the process_* part of the Java client's default exports.
    assert families["process_resident_memory_bytes"].type == "gauge"
    assert families["process_open_fds"].type == "gauge"
    assert families["process_cpu_seconds"].type == "counter"  # the parser drops _total
    assert sample["process_resident_memory_bytes"] > 0
    assert not any(n.startswith("jvm_") for n in families if n != "jvm_pause_time_ms")  # that one is ServerMetrics's


def test_storage_metrics_observe_group_commits_and_snapshots(new_server):
    """fsynctime, sync_processor_batch_size and snapshottime carry rzk's own measurements,
    in /metrics and in mntr (ZooKeeper's zk_*_fsynctime ... keys)."""
    from kazoo.client import KazooClient
    from prometheus_client.parser import text_string_to_metric_families

    port = h.free_port()
    s = new_server("rzk", extra_cfg={
        "metricsProvider.className": PROMETHEUS_PROVIDER,
        "metricsProvider.httpHost": "127.0.0.1",
        "metricsProvider.httpPort": str(port),
        "snapCount": "20",  # the log rolls, and a snapshot is taken, every 10-20 txns
    })
    kz = KazooClient(hosts=s.hosts, timeout=10)
    kz.start(timeout=20)
    try:
        for i in range(60):
            kz.create("/n%d" % i, b"x")
        # Pipelined writes: group commits of more than one txn may form.
        for r in [kz.set_async("/n%d" % i, b"y") for i in range(60)]:
            r.get(timeout=10)
        deadline = time.time() + 10
        while True:
            text = http_get(port, "/metrics")[2]
            sample = {x.name: x.value for f in text_string_to_metric_families(text) for x in f.samples}
            if sample["snapshottime_count"] >= 2 or time.time() > deadline:
                break
            time.sleep(0.1)
        mntr = dict(line.split("\t", 1) for line in h.four_letter(s.port, "mntr").splitlines() if "\t" in line)
    finally:
        kz.stop()
        kz.close()
    assert sample["snapshottime_count"] >= 2  # snapshot.0, then after a log roll
    assert sample["fsynctime_count"] >= 1
    assert sample["sync_processor_batch_size_count"] == sample["fsynctime_count"]
    assert sample["sync_processor_batch_size_sum"] >= 121  # 120 writes and a session
    assert sample["sync_processor_batch_size_count"] <= sample["sync_processor_batch_size_sum"]
    assert int(mntr["zk_cnt_fsynctime"]) >= sample["fsynctime_count"]
    assert int(mntr["zk_cnt_snapshottime"]) >= 2
    assert int(mntr["zk_max_sync_processor_batch_size"]) >= 1


def test_ensemble_leader_measures_ack_latency():
    """On an rzk leader: quorum_ack_latency (txn time to its quorum of ACKs) and the
    ack_latency summary set, one summary per learner keyed by its sid, as ZooKeeper's provider
    labels a summary set; a follower has neither observation, so exports no ack_latency."""
    from kazoo.client import KazooClient
    from prometheus_client.parser import text_string_to_metric_families
    from zkensemble import Ensemble

    if not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    ports = {i: h.free_port() for i in (1, 2, 3)}
    member_cfg = {i: {"metricsProvider.className": PROMETHEUS_PROVIDER, "metricsProvider.httpHost": "127.0.0.1",
                      "metricsProvider.httpPort": str(p)} for i, p in ports.items()}
    with Ensemble("rzk", 3, proxied=False, member_cfg=member_cfg, name="acklat") as ens:
        leader = ens.wait_for_leader()
        kz = KazooClient(hosts=leader.hosts, timeout=10)
        kz.start(timeout=20)
        try:
            for i in range(20):
                kz.create("/w%d" % i, b"x")
        finally:
            kz.stop()
            kz.close()
        ens.wait_converged()
        fams = {}
        for sid, port in ports.items():
            fams[sid] = {f.name: f for f in text_string_to_metric_families(http_get(port, "/metrics")[2])}
    lf = fams[leader.sid]
    sample = {(x.name, tuple(sorted(x.labels.items()))): x.value for f in lf.values() for x in f.samples}
    assert sample[("quorum_ack_latency_count", ())] >= 20
    # Only ACKs that come before the proposal commits are timed (as ZooKeeper's processAck):
    # a learner always behind the quorum may have none.
    keys = {x.labels["key"] for x in lf["ack_latency"].samples}
    assert keys and keys <= {str(sid) for sid in ports if sid != leader.sid}, keys
    for k in keys:
        assert sample[("ack_latency_count", (("key", k),))] >= 1
    for sid, f in fams.items():
        if sid != leader.sid:
            assert "ack_latency" not in f and f["quorum_ack_latency"].type == "summary"


def test_prometheus_without_jvm_info(new_server):
    from prometheus_client.parser import text_string_to_metric_families

    port = h.free_port()
    new_server("rzk", extra_cfg={"metricsProvider.className": PROMETHEUS_PROVIDER, "metricsProvider.httpHost": "127.0.0.1",
                                 "metricsProvider.httpPort": str(port), "metricsProvider.exportJvmInfo": "false"})
    names = {f.name for f in text_string_to_metric_families(http_get(port, "/metrics")[2])}
    assert "znode_count" in names and not any(n.startswith("process_") for n in names)


def start_fails(tmp_cfg: dict) -> str:
    """Runs rzk with zoo.cfg + tmp_cfg and returns its output; it must exit non-zero."""
    s = h.make_server("rzk", extra_cfg=tmp_cfg)
    s.port = h.free_port()
    s.write_config()
    try:
        p = subprocess.run(s.command(), capture_output=True, text=True, timeout=30, cwd=str(s.workdir))
    finally:
        s.cleanup()
    assert p.returncode != 0, p.stderr
    return p.stdout + p.stderr


def test_metrics_provider_settings_rzk_does_not_serve_stop_the_start():
    if not h.rzk_available():
        pytest.skip("rzk binary missing")
    out = start_fails({"metricsProvider.className": "com.example.MyMetrics"})
    assert "com.example.MyMetrics" in out
    out = start_fails({"metricsProvider.className": PROMETHEUS_PROVIDER, "metricsProvider.httpPort": str(h.free_port()),
                       "metricsProvider.httpsPort": "7443"})
    assert "metricsProvider.httpsPort" in out


# ---------------------------------------------------------------------------------------
# Bounds
# ---------------------------------------------------------------------------------------

def test_slow_http_clients_do_not_stall_the_server(new_server):
    from kazoo.client import KazooClient

    admin = h.free_port()
    s = new_server("rzk", extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                     "admin.serverPort": str(admin), "admin.idleTimeout": "1000"})
    hogs = []
    try:
        # Many connections that send nothing, and some that send half a request head.
        for i in range(200):
            try:
                c = socket.create_connection(("127.0.0.1", admin), timeout=2)
            except OSError:
                break
            if i % 4 == 0:
                c.sendall(b"GET /commands/mntr HTTP/1.1\r\nHost: x\r\n")
            hogs.append(c)
        t0 = time.monotonic()
        assert h.four_letter(s.port, "ruok", timeout=2).strip() == "imok"
        kz = KazooClient(hosts=s.hosts, timeout=5)
        kz.start(timeout=5)
        kz.create("/slow", b"x")
        assert kz.get("/slow")[0] == b"x"
        kz.stop()
        kz.close()
        assert time.monotonic() - t0 < 3.0
        # The idle ones are cut after admin.idleTimeout; the AdminServer answers again.
        def answers():
            try:
                return http_get(admin, "/commands/ruok", timeout=2)[0] == 200
            except OSError:
                return False

        h.wait_until(answers, timeout=10,
                     what="the AdminServer answering after the idle connections were closed")
        assert s.is_running()
    finally:
        for c in hogs:
            c.close()


def test_large_listings_stream_and_a_stalled_reader_is_cut_off(new_server):
    """`watches_by_path` of a server with ~6 MB of watches (more than the kernel's socket
    buffers hold, 4 MiB at most here) is streamed (chunked, never
    built whole): a client that stops reading holds the server to a few chunks, is cut off
    by admin.idleTimeout, and meanwhile the server and the AdminServer answer others."""
    from kazoo.client import KazooClient

    admin = h.free_port()
    s = new_server("rzk", extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                     "admin.serverPort": str(admin), "admin.idleTimeout": "1500"})
    kz = KazooClient(hosts=s.hosts, timeout=10)
    kz.start(timeout=20)
    stalled = None
    try:
        prefix = "/watched/" + "p" * 1000
        for r in [kz.exists_async("%s-%05d" % (prefix, i), watch=lambda e: None) for i in range(6000)]:
            r.get(timeout=20)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", admin))
        stalled.sendall(b"GET /commands/watches_by_path HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        # Others are served while it stalls: a client request, and the same listing in full.
        assert kz.get("/")[1] is not None
        r = urllib.request.urlopen("http://127.0.0.1:%d/commands/watches_by_path" % admin, timeout=10)
        assert r.headers.get("Transfer-Encoding") == "chunked" and r.headers.get("Content-Length") is None
        body = r.read()
        assert len(body) > 6_000_000, len(body)
        answer = json.loads(body)
        assert answer["command"] == "watches_by_path" and answer["error"] is None
        assert len(answer["path_to_session_ids"]) == 6000
        assert answer["path_to_session_ids"]["%s-%05d" % (prefix, 7)] == [kz.client_id[0]]
        # The stalled reader is cut off once idle, having been sent only part of the answer
        # (what the sockets' buffers and the few chunks queued held).
        time.sleep(3.0)
        stalled.settimeout(10)
        got = 0
        while True:
            chunk = stalled.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        assert got < len(body), (got, len(body))
        assert s.is_running()
    finally:
        if stalled is not None:
            stalled.close()
        kz.stop()
        kz.close()


# ---------------------------------------------------------------------------------------
# Ensembles: the quorum commands, by role
# ---------------------------------------------------------------------------------------

def ensemble_answers(kind: str):
    """{role: {command: answer}} of a 3-server ensemble of `kind` after one write."""
    from kazoo.client import KazooClient
    from zkensemble import Ensemble

    ports = {i: h.free_port() for i in (1, 2, 3)}
    member_cfg = {i: {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": str(p)}
                  for i, p in ports.items()}
    ens = Ensemble(kind, 3, proxied=False, member_cfg=member_cfg, name="admin")
    out = {}
    try:
        ens.start()
        leader = ens.wait_for_leader()
        kz = KazooClient(hosts=ens.hosts, timeout=10)
        kz.start(timeout=20)
        kz.create("/x", b"1")
        kz.stop()
        kz.close()
        ens.wait_converged()
        for sid, port in ports.items():
            role = "leader" if sid == leader.sid else "follower"
            answers = {c: command(port, c) for c in ["leader", "zabstate", "voting_view", "observers", "server_stats",
                                                      "monitor", "configuration", "watch_summary", "is_read_only"]}
            answers["sid"] = sid
            answers["leader_sid"] = leader.sid
            out.setdefault(role, answers)
    finally:
        ens.stop()
    return out


def test_ensemble_quorum_commands_are_zookeepers():
    if not (h.rzk_available() and h.zookeeper_available()):
        pytest.skip("needs rzk and Apache ZooKeeper")
    zk, rz = ensemble_answers("zookeeper"), ensemble_answers("rzk")
    for role in ("leader", "follower"):
        z, r = zk[role], rz[role]
        for c in ["leader", "zabstate", "observers", "server_stats", "configuration", "watch_summary", "is_read_only"]:
            assert shape(r[c]) == shape(z[c]), (role, c, z[c], r[c])
        for a in (z, r):
            assert a["leader"]["is_leader"] == (role == "leader")
            assert a["leader"]["leader_id"] == a["leader_sid"]
            assert a["leader"]["leader_ip"] == "127.0.0.1"
            assert a["zabstate"]["zabstate"] == "broadcast" and a["zabstate"]["voting"] is True
            assert a["zabstate"]["myid"] == a["sid"] and a["zabstate"]["is_leader"] == (role == "leader")
            assert a["zabstate"]["last_zxid"] == "0x%x" % a["server_stats"]["server_stats"]["last_processed_zxid"]
            assert a["server_stats"]["server_stats"]["server_state"] == role
        assert r["zabstate"]["zab_epoch"] == z["zabstate"]["zab_epoch"] == 1
        assert r["zabstate"]["zab_counter"] == z["zabstate"]["zab_counter"]
        # Every member in the view; only a server's own entry knows its client address.
        for a in (z, r):
            view = a["voting_view"]["current_config"]
            assert sorted(view) == ["1", "2", "3"]
            assert {k for k, v in view.items() if v["client_address"]} == {str(a["sid"])}
            assert shape(view[str(a["sid"])]) == shape(z["voting_view"]["current_config"][str(z["sid"])])
        # monitor: ZooKeeper's keys for the role, less its per-learner and per-namespace summary sets.
        zkeys = {k for k in z["monitor"] if not k.endswith(("_per_namespace", "_learner_handler_qp_size",
                                                           "_learner_handler_qp_time_ms"))}
        assert zkeys ^ set(r["monitor"]) == set(), role
        for k in zkeys:
            assert jtype(r["monitor"][k]) == jtype(z["monitor"][k]), (role, k)
        for k in ["znode_count", "server_state", "quorum_size", "peer_state"]:
            assert r["monitor"][k] == z["monitor"][k], (role, k)


def test_command_url_and_idle_timeout_settings(new_server):
    admin = h.free_port()
    s = new_server("rzk", extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                     "admin.serverPort": str(admin), "admin.commandURL": "/zk/admin",
                                     "admin.idleTimeout": "500"})
    status, _, body = http_get(admin, "/zk/admin/ruok")
    assert status == 200 and json.loads(body)["error"] is None
    assert "/zk/admin/monitor" in http_get(admin, "/zk/admin")[2]
    assert http_get(admin, "/commands/ruok")[0] == 404
    # A kept-alive connection idle for longer than admin.idleTimeout is closed by the server.
    c = socket.create_connection(("127.0.0.1", admin), timeout=5)
    c.sendall(b"GET /zk/admin/ruok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in c.recv(4096)
    time.sleep(1.5)
    assert c.recv(4096) == b""  # closed
    c.close()
    assert s.is_running()


def test_http_load_does_not_stall_client_requests(new_server):
    """Many HTTP clients asking the heaviest commands at once: client requests keep flowing
    (the driver answers HTTP between other events, one request at a time, from a bounded queue)."""
    import threading

    from kazoo.client import KazooClient

    admin = h.free_port()
    s = new_server("rzk", extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                     "admin.serverPort": str(admin)})
    kz = KazooClient(hosts=s.hosts, timeout=10)
    kz.start(timeout=10)
    for i in range(200):
        kz.create("/w%d" % i, b"x" * 100)
        kz.get("/w%d" % i, watch=lambda e: None)
    stop = threading.Event()
    answered = [0]

    def hammer():
        while not stop.is_set():
            for c in ("dump", "watches", "watches_by_path", "monitor", "stats"):
                try:
                    if http_get(admin, "/commands/" + c, timeout=5)[0] == 200:
                        answered[0] += 1
                except OSError:
                    pass

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(16)]
    for t in threads:
        t.start()
    try:
        worst = 0.0
        for i in range(100):
            t0 = time.monotonic()
            kz.set("/w%d" % i, b"y")
            worst = max(worst, time.monotonic() - t0)
        assert h.four_letter(s.port, "ruok", timeout=2).strip() == "imok"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        kz.stop()
        kz.close()
    print("HTTP answers: %d, slowest setData: %.3f s" % (answered[0], worst))
    assert answered[0] > 0
    assert worst < 2.0, worst


# ---------------------------------------------------------------------------------------
# TLS on the AdminServer (admin.forceHttps, admin.portUnification, admin.needClientAuth)
# ---------------------------------------------------------------------------------------
#
# As ZooKeeper's JettyAdminServer: TLS with the quorum stores (ssl.quorum.keyStore.*,
# ssl.quorum.trustStore.*), not the client port's. forceHttps and portUnification are in
# ZooKeeper 3.8 and compared side by side; needClientAuth is 3.9's (3.8 never asks for a
# client certificate), so rzk alone is checked against 3.9's documented behaviour.

@pytest.fixture(scope="module")
def admin_pki(tmp_path_factory):
    import tlspki

    if not (tlspki.have_tools() and shutil.which("curl")):
        pytest.skip("openssl, keytool and curl are needed")
    return tlspki.Pki(tmp_path_factory.mktemp("adminpki"))


def admin_tls_cfg(pki, port: int, **settings) -> dict:
    from tlspki import PASSWORD

    cfg = {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": str(port),
           "ssl.quorum.keyStore.location": pki.p("server.p12"), "ssl.quorum.keyStore.password": PASSWORD,
           "ssl.quorum.trustStore.location": pki.p("trust.jks"), "ssl.quorum.trustStore.password": PASSWORD}
    cfg.update(settings)
    return cfg


def curl(url: str, *args: str):
    """(curl's exit status, headers {lower-case name: value}, body) of one GET, bounded."""
    p = subprocess.run(["curl", "-sS", "-m", "10", "-D", "-", *args, url], capture_output=True, timeout=20)
    head, _, body = p.stdout.decode(errors="replace").partition("\r\n\r\n")
    headers = {}
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return p.returncode, headers, body


def start_admin_tls(new_server, kind: str, pki, **settings) -> int:
    port = h.free_port()
    if kind == "zookeeper" and not os.path.isfile("/usr/share/java/servlet-api.jar"):
        pytest.skip("servlet-api.jar missing (apt-get install libservlet-api-java)")
    new_server(kind, extra_cfg=admin_tls_cfg(pki, port, **settings))
    # The AdminServer may come up just after the client port.
    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            return False

    h.wait_until(listening, 30, 0.2, "the admin port")
    return port


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_admin_force_https(new_server, admin_pki, kind):
    port = start_admin_tls(new_server, kind, admin_pki, **{"admin.forceHttps": "true"})
    rc, headers, body = curl("https://127.0.0.1:%d/commands/stat" % port, "--cacert", admin_pki.p("ca.pem"))
    assert rc == 0, body
    assert json.loads(body)["command"] == "stats"
    assert headers["strict-transport-security"] == "max-age=86400; includeSubDomains", headers
    # No client certificate is asked for without needClientAuth: one offered is not needed.
    assert curl("https://127.0.0.1:%d/commands/ruok" % port, "--cacert", admin_pki.p("ca.pem"),
                "--cert", admin_pki.p("untrusted.pem"), "--key", admin_pki.p("untrusted.key"))[0] == 0
    # The server's certificate is checked by the client: another CA does not vouch for it.
    assert curl("https://127.0.0.1:%d/commands/ruok" % port, "--cacert", admin_pki.p("otherca.pem"))[0] != 0
    # Plain HTTP gets no answer.
    rc, headers, body = curl("http://127.0.0.1:%d/commands/ruok" % port)
    assert rc != 0 and '"command"' not in body, (rc, body)


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_admin_port_unification_takes_http_and_https(new_server, admin_pki, kind):
    port = start_admin_tls(new_server, kind, admin_pki, **{"admin.portUnification": "true"})
    rc, headers, body = curl("https://127.0.0.1:%d/commands/ruok" % port, "--cacert", admin_pki.p("ca.pem"))
    assert rc == 0 and json.loads(body)["command"] == "ruok", body
    assert headers["strict-transport-security"] == "max-age=86400; includeSubDomains"
    rc, headers, body = curl("http://127.0.0.1:%d/commands/ruok" % port)
    assert rc == 0 and json.loads(body)["command"] == "ruok", body
    assert "strict-transport-security" not in headers


def test_admin_need_client_auth(new_server, admin_pki):
    # ZooKeeper 3.9's admin.needClientAuth (not in 3.8): a TLS client must present a
    # certificate the ssl.quorum trust store vouches for.
    port = start_admin_tls(new_server, "rzk", admin_pki, **{"admin.forceHttps": "true", "admin.needClientAuth": "true"})
    url = "https://127.0.0.1:%d/commands/ruok" % port
    ca = ("--cacert", admin_pki.p("ca.pem"))
    rc, _, body = curl(url, *ca, "--cert", admin_pki.p("client.pem"), "--key", admin_pki.p("client.key"))
    assert rc == 0 and json.loads(body)["command"] == "ruok", body
    assert curl(url, *ca)[0] != 0
    assert curl(url, *ca, "--cert", admin_pki.p("untrusted.pem"), "--key", admin_pki.p("untrusted.key"))[0] != 0
    assert curl(url, *ca, "--cert", admin_pki.p("expired.pem"), "--key", admin_pki.p("expired.key"))[0] != 0


def test_admin_port_unification_with_need_client_auth(new_server, admin_pki):
    # 3.9 (JettyAdminServer with UnifiedConnectionFactory): needClientAuth binds the TLS
    # connections only; plain HTTP on the unified port is served as before.
    port = start_admin_tls(new_server, "rzk", admin_pki,
                           **{"admin.portUnification": "true", "admin.needClientAuth": "true"})
    ca = ("--cacert", admin_pki.p("ca.pem"))
    assert curl("https://127.0.0.1:%d/commands/ruok" % port, *ca)[0] != 0
    rc, _, body = curl("https://127.0.0.1:%d/commands/ruok" % port, *ca,
                       "--cert", admin_pki.p("client.pem"), "--key", admin_pki.p("client.key"))
    assert rc == 0 and json.loads(body)["command"] == "ruok", body
    rc, _, body = curl("http://127.0.0.1:%d/commands/ruok" % port)
    assert rc == 0 and json.loads(body)["command"] == "ruok", body


def test_admin_tls_settings_rzk_cannot_honour_stop_the_start(admin_pki):
    if not h.rzk_available():
        pytest.skip("rzk binary missing")
    port = h.free_port()
    # TLS asked for without the quorum key store (the client port's is not the admin's).
    cfg = admin_tls_cfg(admin_pki, port, **{"admin.forceHttps": "true"})
    del cfg["ssl.quorum.keyStore.location"]
    cfg["ssl.keyStore.location"] = admin_pki.p("server.p12")
    assert "ssl.quorum.keyStore.location" in start_fails(cfg)
    # A wrong store password.
    out = start_fails(admin_tls_cfg(admin_pki, port, **{"admin.portUnification": "true",
                                                        "ssl.quorum.keyStore.password": "wrong"}))
    assert "ssl.quorum.keyStore.location" in out, out
    # The quorum stores without admin TLS are for TLS between servers (unused without
    # sslQuorum / portUnification, and said so); revocation checking there stops start-up.
    assert "ssl.quorum.ocsp" in start_fails(admin_tls_cfg(admin_pki, port, **{"ssl.quorum.ocsp": "true"}))


# ---------------------------------------------------------------------------------------
# ZooKeeper 3.9's snapshot command (not in 3.8: checked against 3.9's Commands.java)
# ---------------------------------------------------------------------------------------

def snapshot_get(port: int, query: str = "", auth=None, scheme: str = "http", *curl_args: str):
    """(status, headers, body bytes) of GET <commandURL>/snapshot[query]."""
    args = ["curl", "-sS", "-m", "30", "-D", "-", "-o", "-"] + list(curl_args)
    if auth is not None:
        args += ["-H", "Authorization: " + auth]
    p = subprocess.run(args + ["%s://127.0.0.1:%d/commands/snapshot%s" % (scheme, port, query)], capture_output=True, timeout=60)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    assert p.returncode == 0, p.stderr
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def format_snapshot(path):
    """ZooKeeper's SnapshotFormatter on `path` (bounded)."""
    return subprocess.run([h.ZK_JAVA, "-Dlog4j.configuration=file:/dev/null", "-cp", ":".join(h.ZK_JARS),
                           "org.apache.zookeeper.server.SnapshotFormatter", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_snapshot_command_authenticates_and_streams_a_snapshot_that_loads(new_server, tmp_path):
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl

    port = h.free_port()
    # 3 s between snapshots (3.9 reads the setting as microseconds for this command).
    s = new_server("rzk", extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                     "admin.serverPort": str(port), "admin.rateLimiterIntervalInMS": "3000000"})
    kz = KazooClient(hosts=s.hosts, timeout=10)
    kz.start(timeout=20)
    try:
        kz.create("/app", b"payload")
        kz.create("/app/child", b"x" * 1000)
        # 3.9 asks checkACL for ALL on /, which (as for any perm mask) passes when one ACL
        # entry of the caller's grants any of its bits: reader (READ only) passes too.
        kz.set_acls("/", [make_digest_acl("admin", "secret", all=True), make_digest_acl("reader", "pw", read=True)])
        refusals = [
            (None, 401, "Auth info is missing for the command"),
            ("digest", 401, "Not authenticated"),
            ("bogus user:pw", 401, "Not authenticated"),
            ("digest a b c", 401, "Not authenticated"),
            ("x509", 401, "Not authenticated"),  # plain HTTP: no client certificate
            ("digest other:pw", 403, "Not authorized"),
            ("digest admin:wrong", 403, "Not authorized"),
        ]
        assert snapshot_get(port, "?streaming=false", "digest reader:pw")[0] == 200
        time.sleep(3.5)
        for auth, status, error in refusals:
            st, _, body = snapshot_get(port, auth=auth)
            assert st == status, (auth, st)
            assert json.loads(body) == {"command": "snapshot", "error": error}, auth
        st, headers, body = snapshot_get(port, auth="digest admin:secret")
        assert st == 200 and headers["content-type"] == "application/octet-stream", (st, headers)
        assert int(headers["snapshot_size"]) == len(body) > 0
        zxid = int(headers["last_zxid"], 16)
        assert headers["last_zxid"] == "0x%x" % zxid and zxid >= 3
        # The rate limit: one per interval, refused after authentication (429, no error text).
        st, _, limited = snapshot_get(port, auth="digest admin:secret")
        assert (st, json.loads(limited)) == (429, {"command": "snapshot", "error": None})
    finally:
        kz.stop()
        kz.close()
    # ZooKeeper's SnapshotFormatter reads the stream as a snapshot file...
    snap = tmp_path / ("snapshot.%x" % zxid)
    snap.write_bytes(body)
    if h.zookeeper_available():
        p = format_snapshot(snap)
        assert p.returncode == 0 and "/app/child" in p.stdout and "Exception" not in p.stdout + p.stderr, p.stdout + p.stderr
    # ...and rzk starts from it as its dataDir's only file.
    r = h.make_server("rzk")
    (r.datadir / "version-2").mkdir(parents=True)
    shutil.copy(snap, r.datadir / "version-2" / snap.name)
    r.keep_data = True
    r.start()
    try:
        kz = KazooClient(hosts=r.hosts, timeout=10)
        kz.start(timeout=20)
        kz.add_auth("digest", "admin:secret")
        assert kz.get("/app")[0] == b"payload" and kz.get("/app/child")[0] == b"x" * 1000
        kz.stop()
        kz.close()
    finally:
        r.cleanup()


def test_snapshot_command_disabled_not_streaming_and_x509(new_server, admin_pki):
    cert = ("--cacert", admin_pki.p("ca.pem"), "--cert", admin_pki.p("client.pem"), "--key", admin_pki.p("client.key"))
    tls = {"admin.forceHttps": "true", "admin.needClientAuth": "true", "admin.rateLimiterIntervalInMS": "0"}
    # As 3.9's X509AuthenticationProvider, the x509 scheme also needs the client port's trust
    # store (ssl.trustStore) to vouch for the certificate: without one, nobody is x509.
    port = start_admin_tls(new_server, "rzk", admin_pki, **tls)
    st, _, body = snapshot_get(port, "", "x509", "https", *cert)
    assert (st, json.loads(body)) == (401, {"command": "snapshot", "error": "Not authenticated"})
    port = start_admin_tls(new_server, "rzk", admin_pki, **tls, **{"ssl.trustStore.location": admin_pki.p("ca.pem")})
    # The x509 scheme: the connection's client certificate (root ACL world:anyone).
    st, headers, body = snapshot_get(port, "?streaming=false", "x509", "https", *cert)
    assert (st, json.loads(body)) == (200, {"command": "snapshot", "error": None}), body
    assert int(headers["snapshot_size"]) > 0 and headers["last_zxid"].startswith("0x")
    assert headers["strict-transport-security"]
    st, headers, body = snapshot_get(port, "?streaming=TRUE", "x509", "https", *cert)
    assert st == 200 and len(body) == int(headers["snapshot_size"])
    # admin.snapshot.enabled=false: 503 after authentication.
    port = h.free_port()
    new_server("rzk", extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                 "admin.serverPort": str(port), "admin.snapshot.enabled": "false"})
    st, _, body = snapshot_get(port, auth="digest any:one")
    assert (st, json.loads(body)) == (503, {"command": "snapshot", "error": None})
    st, _, body = snapshot_get(port)
    assert st == 401


def test_snapshot_command_on_ensemble_members():
    """Leader and follower each stream a snapshot of their own tree that ZooKeeper's
    SnapshotFormatter reads, with the write a client saw."""
    if not h.rzk_available():
        pytest.skip("rzk binary missing")
    from kazoo.client import KazooClient
    from zkensemble import Ensemble

    ports = {i: h.free_port() for i in (1, 2, 3)}
    member_cfg = {i: {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": str(p)}
                  for i, p in ports.items()}
    ens = Ensemble("rzk", 3, proxied=False, member_cfg=member_cfg, name="adminsnap")
    try:
        ens.start()
        leader = ens.wait_for_leader()
        kz = KazooClient(hosts=ens.hosts, timeout=10)
        kz.start(timeout=20)
        kz.create("/ens", b"value")
        kz.stop()
        kz.close()
        ens.wait_converged()
        follower = next(sid for sid in ports if sid != leader.sid)
        for sid in (leader.sid, follower):
            st, headers, body = snapshot_get(ports[sid], auth="digest any:one")
            assert st == 200 and len(body) == int(headers["snapshot_size"]) > 0, (sid, st, headers)
            snap = h.make_workdir("adminsnap-%d" % sid) / ("snapshot.%s" % headers["last_zxid"][2:])
            snap.write_bytes(body)
            if h.zookeeper_available():
                p = format_snapshot(snap)
                assert p.returncode == 0 and "/ens" in p.stdout, p.stdout + p.stderr
        # restore would take one member's tree out of its quorum's history: refused (500,
        # the reason logged), the member goes on with the ensemble's tree.
        assert restore_post(ports[follower], body, "digest any:one") == (500, {"command": "restore", "error": None})
        kz = KazooClient(hosts=ens.hosts, timeout=10)
        kz.start(timeout=20)
        assert kz.get("/ens")[0] == b"value"
        kz.stop()
        kz.close()
    finally:
        ens.stop()


def restore_post(port: int, body: bytes, auth=None, method: str = "POST", name: str = "restore"):
    """(status, JSON answer or None) of <method> <commandURL>/restore with `body`."""
    args = ["curl", "-sS", "-m", "60", "-X", method, "-o", "-", "-w", "\n%{http_code}", "--data-binary", "@-",
            "-H", "Content-Type: application/octet-stream"]
    if auth is not None:
        args += ["-H", "Authorization: " + auth]
    p = subprocess.run(args + ["http://127.0.0.1:%d/commands/%s" % (port, name)], input=body, capture_output=True, timeout=90)
    assert p.returncode == 0, p.stderr
    out, _, status = p.stdout.rpartition(b"\n")
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    return int(status), answer


def test_restore_command_replaces_the_tree_durably(new_server):
    """3.9's restore: a snapshot taken by `snapshot` on one server, POSTed to another, replaces
    its tree and sessions (clients reconnect to the restored state), survives a restart and
    takes new writes on top; auth, the feature flag, the rate limit and bad bodies as 3.9."""
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl

    acl = [make_digest_acl("admin", "secret", all=True)]
    src_port, dst_port = h.free_port(), h.free_port()
    admin = {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.rateLimiterIntervalInMS": "0"}
    src = new_server("rzk", extra_cfg=dict(admin, **{"admin.serverPort": str(src_port)}))
    dst = new_server("rzk", extra_cfg=dict(admin, **{"admin.serverPort": str(dst_port), "admin.rateLimiterIntervalInMS": "2000"}))
    a = KazooClient(hosts=src.hosts, timeout=10)
    a.start(timeout=20)
    a.create("/restored", b"from-the-snapshot")
    a.create("/restored/child", b"c")
    a.set_acls("/", acl)
    st, _, snap = snapshot_get(src_port, auth="digest admin:secret")
    assert st == 200 and len(snap) > 0
    a.stop()
    a.close()

    b = KazooClient(hosts=dst.hosts, timeout=10)
    b.start(timeout=20)
    b.create("/only-before", b"x")
    b.set_acls("/", acl)
    # Refusals before anything is read: auth (as for snapshot), the method.
    assert restore_post(dst_port, snap) == (401, {"command": "restore", "error": "Auth info is missing for the command"})
    assert restore_post(dst_port, snap, "digest admin:wrong") == (403, {"command": "restore", "error": "Not authorized"})
    assert restore_post(dst_port, b"", "digest admin:secret", method="GET")[0] == 405
    # A body that is not a snapshot: 500, nothing changed.
    assert restore_post(dst_port, b"not a snapshot" * 10, "digest admin:secret") == (500, {"command": "restore", "error": None})
    assert b.exists("/only-before")
    time.sleep(2.2)
    st, answer = restore_post(dst_port, snap, "digest admin:secret", name="rest")
    assert st == 200 and answer["command"] == "rest" and answer["error"] is None and answer["last_zxid"] > 0, answer
    # The rate limit (admin.rateLimiterIntervalInMS, in ms for restore): 429.
    assert restore_post(dst_port, snap, "digest admin:secret") == (429, {"command": "restore", "error": None})
    b.stop()
    b.close()

    def check(expect_new: bool):
        c = KazooClient(hosts=dst.hosts, timeout=10)
        c.start(timeout=20)
        try:
            c.add_auth("digest", "admin:secret")
            assert c.get("/restored")[0] == b"from-the-snapshot"
            assert c.get_children("/restored") == ["child"]
            assert not c.exists("/only-before")
            if expect_new:
                assert c.get("/after")[0] == b"new"
            else:
                c.create("/after", b"new")
        finally:
            c.stop()
            c.close()

    check(expect_new=False)
    # Durable: a restart recovers the restored tree and the write made on top of it.
    dst.stop()
    dst.keep_data = True
    dst.start()
    check(expect_new=True)


def test_restore_command_disabled(new_server):
    port = h.free_port()
    s = new_server("rzk", extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                     "admin.serverPort": str(port), "admin.restore.enabled": "false"})
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl
    kz = KazooClient(hosts=s.hosts, timeout=10)
    kz.start(timeout=20)
    kz.set_acls("/", [make_digest_acl("admin", "secret", all=True)])
    kz.stop()
    kz.close()
    assert restore_post(port, b"x", "digest admin:secret") == (503, {"command": "restore", "error": None})
