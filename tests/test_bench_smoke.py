"""Smoke run of `rzk bench`: every workload for a fraction of a second against rzk and
against Apache ZooKeeper 3.8, checking that the JSON report is sane (operations happened,
no errors, percentiles in order, CPU accounted). A benchmark is not a test: no
performance is asserted here; `bench/compare.sh` measures.
"""

from __future__ import annotations

import json
import subprocess

import pytest

import zkharness as h

# Small settings: a few sessions, small trees, short runs.
COMMON = ["--clients", "4", "--inflight", "4", "--value-size", "32", "--json", "--quiet"]
WORKLOADS = {
    "get": ["--duration", "0.3", "--keys", "50"],
    "set": ["--duration", "0.3", "--keys", "50"],
    "mixed": ["--duration", "0.3", "--keys", "50", "--read-ratio", "0.5"],
    "exists": ["--duration", "0.3", "--keys", "50"],
    "children": ["--duration", "0.3", "--parents", "2", "--width", "40"],
    "create": ["--ops", "300"],
    "multi": ["--ops", "50", "--multi-size", "3"],
    "watch": ["--ops", "20"],
    "churn": ["--ops", "40"],
    # Session timeouts are clamped to minSessionTimeout (1 s in the harness's zoo.cfg).
    "expiry": ["--ephemerals", "3", "--expiry-timeout", "1000"],
    "load": ["--nodes", "1500", "--fanout", "100"],
    # The scale workloads, tiny: 4 idle sessions pinging every 500 ms for 1 s, 2 of them
    # vanishing; 4 sessions watching 20 znodes each, 2 rounds of fan-out.
    "sessions": ["--duration", "1", "--session-timeout", "1500", "--expire", "2", "--expiry-timeout", "1000"],
    "watches": ["--keys", "20", "--ops", "2"],
}
# Workloads that report the server's memory (with --server-pid) and its mntr counters.
PROBED = {"load": "znode", "sessions": "session", "watches": "watch"}


@pytest.fixture(autouse=True)
def _needs_rzk_binary():
    if not h.rzk_available():
        pytest.skip("rzk binary not found at %s (cargo build, or set RZK_BIN)" % h.rzk_binary())


def run_bench(server: h.Server, workload: str, extra=()) -> dict:
    cmd = [str(h.rzk_binary()), "bench", workload, "--servers", server.hosts] + COMMON + WORKLOADS[workload] + list(extra)
    if workload in PROBED:
        cmd += ["--server-pid", str(server.proc.pid)]
    r = h.run_bounded(cmd, timeout=60)
    assert r.returncode == 0, "rzk bench %s failed (%d):\n%s" % (workload, r.returncode, r.stderr.decode(errors="replace"))
    return json.loads(r.stdout)


def check_histogram(hist: dict, what: str) -> None:
    assert hist["count"] > 0, what
    assert 0 < hist["min"] <= hist["p50"] <= hist["p90"] <= hist["p99"] <= hist["p999"] <= hist["max"], (what, hist)
    values = [v for _, v in hist["percentiles"]]
    assert values == sorted(values), (what, hist["percentiles"])
    assert hist["percentiles"][-1] == [100.0, hist["max"]], what


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_bench_workload_report_is_sane(server, workload):
    res = run_bench(server, workload)
    assert res["workload"] == workload
    assert res["ops"] > 0 and res["ops_per_sec"] > 0, res
    assert res["error_count"] == 0, res["errors"]
    check_histogram(res["latency_us"], workload)
    cpu = res["client_cpu"]
    assert cpu["wall_s"] > 0 and cpu["user_s"] >= 0 and cpu["sys_s"] >= 0 and cpu["percent"] >= 0
    if workload in ("create", "churn", "watch"):
        assert res["ops"] == int(WORKLOADS[workload][1]), res["ops"]
    if workload == "mixed":
        assert set(res["by_op"]) == {"get", "set"}
        assert sum(v["count"] for v in res["by_op"].values()) == res["ops"]
    if workload == "watch":
        # every round notifies every watching session
        assert res["extra_latency_us"]["notification"]["count"] == res["ops"] * 4
    if workload == "expiry":
        # the ephemerals cannot go before the sessions expire
        assert res["latency_us"]["min"] >= res["extra"]["negotiated_timeout_ms"] * 1000
    if workload in PROBED:
        ex = res["extra"]
        assert ex["server_rss_bytes"] > 0 and ex["server_peak_rss_bytes"] >= ex["server_rss_bytes"], ex
        assert "server_bytes_per_%s" % PROBED[workload] in ex, ex
        assert ex["mntr"]["zk_znode_count"] > 0, ex["mntr"]
    if workload == "sessions":
        ex = res["extra"]
        assert ex["sessions"] == 4 and ex["pings_per_sec"] > 0, ex
        assert ex["mntr"]["zk_ephemerals_count"] >= 2, ex["mntr"]
        assert ex["expiry"]["expired_sessions"] == 2 and ex["expiry"]["all_gone_ms"] > 0, ex["expiry"]
    if workload == "watches":
        ex = res["extra"]
        assert ex["watches"] == 80 and ex["mntr"]["zk_watch_count"] >= 80, ex
        assert res["ops"] == 2 and res["extra_latency_us"]["notification"]["count"] == 8, res
    if workload == "load":
        assert res["extra"]["nodes_created"] == 1500
        assert res["extra"]["last_path"] == "/bench/load/d000014/n000099"
        s = h.RawSession("127.0.0.1", server.port).connect()
        try:
            _, _, err, _ = s.get_data(res["extra"]["last_path"])
            assert err == 0
        finally:
            s.close()


def test_bench_sessions_detached(server):
    # 6 sessions without connections, their timeouts ending together 12 s after the first
    # opened (about the least the bench takes): memory per detached session, then their
    # expiry together at the deadline (within a tick or two on an idle machine: the few ms
    # between one's asked timeout and its create may straddle a bucket boundary; the bound
    # allows for load).
    res = run_bench(server, "sessions", ["--detached", "6", "--detached-timeout", "12000"])
    ex = res["extra"]
    d = ex["detached"]
    assert d["sessions"] == 6 and "server_bytes_per_session" in d and d["left_at_deadline"] <= 6, d
    assert -5 <= d["first_gone_after_deadline_ms"] <= d["all_gone_after_deadline_ms"] < 10000, d
    assert d["probe_count"] > 0 and d["probe_max_us"] >= d["probe_p50_us"] > 0, d
    assert "server_bytes_per_session_all" in ex, ex
    # The vanished connected sessions went at ZooKeeper's time: timeout after their last packet.
    e = ex["expiry"]
    assert e["first_gone_after_earliest_last_packet_ms"] >= 1000 - 50, e


def test_bench_rejects_bad_options(rzk_server):
    r = h.run_bounded([str(h.rzk_binary()), "bench", "get", "--servers", rzk_server.hosts, "--clients", "0"], timeout=30)
    assert r.returncode == 2 and b"--clients must be at least 1" in r.stderr


def test_bench_reports_an_unreachable_server():
    port = h.free_port()
    r = h.run_bounded([str(h.rzk_binary()), "bench", "get", "--servers", "127.0.0.1:%d" % port, "--io-timeout", "2"], timeout=30)
    assert r.returncode == 1 and b"connect failed" in r.stderr, r.stderr
