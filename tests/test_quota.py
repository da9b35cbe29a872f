"""Quotas, side by side on rzk and Apache ZooKeeper 3.8: the same kazoo calls against both.

- With `enforceQuota=true` (zoo.cfg; ZooKeeper reads it as the system property
  `zookeeper.enforceQuota`), a hard count or byte limit (`countHardLimit` / `byteHardLimit` in
  the `zookeeper_limits` node, as zkCli.sh's `setquota -N` / `-B` writes them) refuses a create
  or a setData with QuotaExceeded (-125), alone and inside a multi (the multi's error reply
  carries each member's result); a soft limit (`-n` / `-b`) only warns.
- Without it nothing is refused, and usage is still counted in `zookeeper_stats`.
- `rzk cli setquota` / `listquota` / `delquota` print what zkCli.sh prints (test_cli_quota_*).
"""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import QuotaExceededError, RolledBackError

import zkharness as h

KINDS = ["zookeeper", "rzk"]


def client(s) -> KazooClient:
    c = KazooClient(hosts=s.hosts, timeout=10.0)
    c.start(timeout=30)
    return c


def set_quota(zk: KazooClient, path: str, limits: str) -> None:
    """What zkCli.sh's setquota does for a path without a quota: the quota path's nodes, the
    limit node (StatsTrack text), then a stats node the server fills with the usage."""
    zk.ensure_path("/zookeeper/quota" + path)
    zk.create("/zookeeper/quota%s/zookeeper_limits" % path, limits.encode())
    zk.create("/zookeeper/quota%s/zookeeper_stats" % path, b"count=0,bytes=0")


def outcome(fn):
    try:
        fn()
        return "ok"
    except QuotaExceededError:
        return "QuotaExceeded"
    except Exception as e:  # noqa: BLE001 - the class name is what the two servers must agree on
        return type(e).__name__


def scenario(zk: KazooClient) -> dict:
    """Four children under a count hard limit of 2, a byte hard limit hit by create and by
    setData, soft limits, and a multi whose second member hits the limit."""
    out = {}
    zk.create("/qc")
    set_quota(zk, "/qc", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2")
    out["children"] = [outcome(lambda i=i: zk.create("/qc/c%d" % i)) for i in range(4)]
    out["qc_stats"] = zk.get("/zookeeper/quota/qc/zookeeper_stats")[0].decode()
    out["qc_children"] = sorted(zk.get_children("/qc"))

    zk.create("/qb", b"12345")
    set_quota(zk, "/qb", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=-1")
    out["bytes"] = [
        outcome(lambda: zk.create("/qb/a", b"1234")),  # 9 bytes
        outcome(lambda: zk.create("/qb/b", b"12")),  # 11 > 10
        outcome(lambda: zk.create("/qb/c")),  # no bytes: fits
        outcome(lambda: zk.set("/qb/a", b"12345")),  # 10
        outcome(lambda: zk.set("/qb/a", b"123456")),  # 11
        outcome(lambda: zk.set("/qb", b"")),  # shrinking always fits
    ]
    out["qb_stats"] = zk.get("/zookeeper/quota/qb/zookeeper_stats")[0].decode()

    # Soft limits warn in the server's log and let the write through.
    zk.create("/qs")
    set_quota(zk, "/qs", "count=1,bytes=1")
    out["soft"] = [outcome(lambda: zk.create("/qs/a", b"xyz")), outcome(lambda: zk.set("/qs/a", b"longer"))]

    # A multi: the member that would pass the limit fails with QuotaExceeded, the one before
    # it is rolled back (0 in the reply), the one after it gets RuntimeInconsistency.
    zk.create("/qm")
    set_quota(zk, "/qm", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2")
    zk.create("/qm/one")
    t = zk.transaction()
    t.create("/qm_free")
    t.create("/qm/two")
    t.create("/qm_after")
    results = t.commit()
    out["multi"] = [type(r).__name__ if isinstance(r, Exception) else "ok:" + str(r) for r in results]
    out["multi_rolled_back"] = zk.exists("/qm_free") is None
    # As ZooKeeper, each member is checked against the committed usage: two creates in one
    # multi both fit when one more node does.
    zk.create("/qn")
    set_quota(zk, "/qn", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2")
    t = zk.transaction()
    t.create("/qn/a")
    t.create("/qn/b")
    out["multi_same_snapshot"] = [type(r).__name__ if isinstance(r, Exception) else "ok" for r in t.commit()]
    out["qn_stats"] = zk.get("/zookeeper/quota/qn/zookeeper_stats")[0].decode()
    return out


@pytest.mark.parametrize("enforce", [True, False], ids=["enforceQuota", "no-enforce"])
def test_hard_quota_side_by_side(new_server, enforce):
    got = {}
    for kind in KINDS:
        s = new_server(kind, extra_cfg={"enforceQuota": "true"} if enforce else {})
        zk = client(s)
        try:
            got[kind] = scenario(zk)
        finally:
            zk.stop()
            zk.close()
    assert got["rzk"] == got["zookeeper"]
    z = got["zookeeper"]
    if enforce:
        assert z["children"] == ["ok", "QuotaExceeded", "QuotaExceeded", "QuotaExceeded"]
        assert z["multi"][1] == "QuotaExceededError"
        assert z["multi"][0] == "RolledBackError" and RolledBackError
    else:
        assert z["children"] == ["ok"] * 4


def test_quota_exceeded_counted_in_mntr(new_server):
    """ZooKeeper 3.8's `quota_exceeded_error_per_namespace` counter set and the
    `quota_*_per_namespace` gauge sets in `mntr` (its default metrics provider prints a set's
    member as `zk_<namespace>_<name>`)."""
    got = {}
    for kind in KINDS:
        s = new_server(kind, extra_cfg={"enforceQuota": "true"})
        zk = client(s)
        try:
            zk.create("/ns1/q", makepath=True)
            set_quota(zk, "/ns1/q", "count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=2")
            zk.create("/ns1/q/a", b"abc")
            outcome(lambda: zk.create("/ns1/q/b"))
            outcome(lambda: zk.create("/ns1/q/c"))
            zk.create("/x/y", makepath=True)
            set_quota(zk, "/x", "count=5,bytes=7")
            zk.create("/x/y/z", b"12345678")  # soft: counted, not refused
        finally:
            zk.stop()
            zk.close()
        lines = h.four_letter(s.port, "mntr").splitlines()
        got[kind] = [l for l in lines if "quota" in l]
    assert got["rzk"] == got["zookeeper"], got


def test_quota_sets_on_the_prometheus_endpoint(new_server):
    """rzk only: Debian's ZooKeeper 3.8 has no Prometheus provider to compare with. As
    ZooKeeper's PrometheusMetricsProvider exports a gauge set / counter set: one family per
    set, one sample per namespace labelled `key`."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    port = h.free_port()
    s = new_server("rzk", extra_cfg={
        "enforceQuota": "true",
        "metricsProvider.className": "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        "metricsProvider.httpHost": "127.0.0.1",
        "metricsProvider.httpPort": str(port),
    })
    zk = client(s)
    try:
        zk.create("/ns1/q", makepath=True)
        set_quota(zk, "/ns1/q", "count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=2")
        zk.create("/ns1/q/a", b"abc")
        assert outcome(lambda: zk.create("/ns1/q/b")) == "QuotaExceeded"
    finally:
        zk.stop()
        zk.close()
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    want = {
        "quota_count_limit_per_namespace": ("gauge", 2),
        "quota_bytes_limit_per_namespace": ("gauge", 100),
        "quota_count_usage_per_namespace": ("gauge", 2),
        "quota_bytes_usage_per_namespace": ("gauge", 3),
        "quota_exceeded_error_per_namespace": ("counter", 1),
    }
    for name, (kind, value) in want.items():
        f = fams[name]
        assert f.type == kind, name
        assert [(x.labels, x.value) for x in f.samples if not x.name.endswith("_created")] == [({"key": "ns1"}, value)], name
    assert not any(n.startswith("ns1_") for n in fams)


QUOTA_CLI_SEQUENCE = [
    ["setquota", "-n", "5", "/q"],
    ["setquota", "-N", "2", "/q"],
    ["listquota", "/q"],
    ["setquota", "-n", "5", "/missing"],
    ["setquota", "-n", "0", "/q"],
    ["setquota", "-b", "-1", "/q"],
    ["setquota", "-n", "x", "/q"],
    ["setquota", "/q"],
    ["setquota", "-n", "5"],
    ["setquota", "-n", "5", "/q/a"],
    ["setquota", "-n", "5", "/"],
    ["setquota", "-B", "1", "/r/x/y"],
    ["setquota", "-n", "5", "/r"],
    ["setquota", "-n", "5", "/zookeeper/quota/x"],
    ["setquota", "-n", "5", "-N", "3", "/q"],
    ["setquota", "-b", "1", "/s"],
    ["setquota", "-B", "4", "/s"],
    ["listquota", "/s"],
    ["delquota", "-n", "/q"],
    ["listquota", "/q"],
    ["delquota", "/q"],
    ["listquota", "/q"],
    ["ls", "-R", "/zookeeper/quota"],
    ["delquota", "/nope"],
    ["listquota", "/nope"],
    ["delquota", "-n", "-N", "/s"],
    ["delquota"],
    ["listquota"],
    ["setquota", "-x", "3", "/q"],
    ["setquota", "-n", "5", "bad"],
    ["listquota", "bad"],
    ["delquota", "-B", "/s"],
    ["listquota", "/s"],
    ["delquota", "/s"],
    ["delquota", "/r/x/y"],
    ["ls", "-R", "/zookeeper"],
]


def test_cli_quota_commands_print_what_zkcli_prints(new_server):
    """`rzk cli` (against rzk and against ZooKeeper) and zkCli.sh (against ZooKeeper) run the
    same quota commands from the same start: the same stdout, stderr and exit status."""
    from test_cli import rzk_cli, zkcli, lines

    def setup(s):
        zk = client(s)
        zk.create("/q/a/b", b"abc", makepath=True)
        zk.create("/r/x/y", makepath=True)
        zk.create("/s", b"0123456789")
        zk.stop()
        zk.close()

    runs = {}
    for name, kind in (("zkcli", "zookeeper"), ("rzk-cli@zookeeper", "zookeeper"), ("rzk-cli@rzk", "rzk")):
        s = new_server(kind)
        setup(s)
        out = []
        for cmd in QUOTA_CLI_SEQUENCE:
            if name == "zkcli":
                rc, o, e = zkcli(s, *cmd)
            else:
                rc, o, e = rzk_cli(s, *cmd)
                o, e = lines(o), lines(e)
            out.append((cmd, rc, o, e))
        runs[name] = out
    for name in ("rzk-cli@zookeeper", "rzk-cli@rzk"):
        diff = [(z[0], z[1:], r[1:]) for z, r in zip(runs["zkcli"], runs[name]) if z != r]
        assert diff == [], "%s vs zkCli.sh (cmd, zkcli, rzk): %r" % (name, diff)


@pytest.mark.timeout(600)
def test_hard_quota_through_a_follower_of_a_3_server_ensemble():
    """The same scenario through a follower of a 3-server ensemble (rzk, then ZooKeeper 3.8):
    the leader preps the forwarded writes and refuses those past a hard limit."""
    import zkensemble as ze

    got = {}
    for kind in KINDS:
        if kind == "rzk" and not h.rzk_available():
            pytest.skip("rzk binary not built")
        with ze.Ensemble(kind, 3, name="quota", proxied=False, extra_cfg={"enforceQuota": "true"}) as ens:
            ens.wait_for_leader()
            follower = ens.followers()[0]
            zk = KazooClient(hosts=follower.hosts, timeout=10.0)
            zk.start(timeout=30)
            try:
                got[kind] = scenario(zk)
            finally:
                zk.stop()
                zk.close()
    assert got["rzk"] == got["zookeeper"]
    assert got["zookeeper"]["children"] == ["ok", "QuotaExceeded", "QuotaExceeded", "QuotaExceeded"]
