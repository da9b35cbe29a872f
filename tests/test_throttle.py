"""Request throttling (ZooKeeper's RequestThrottler), rzk and Apache ZooKeeper 3.8 side by side.

zoo.cfg keys ZooKeeper does not know become `zookeeper.<key>` system properties on both
servers, so the same file configures both:
- `request_throttle_max_requests`: requests in process beyond which new ones wait;
- `throttled_op_wait_time`: a request that waited longer is answered ThrottledOp (-127)
  and not carried out.
A kazoo client pipelines creates; what it sees (which succeeded, which were throttled, the
tree afterwards) and the mntr counters are compared. Timing differs between the servers, so
the comparison is of kinds of outcome, not of counts.
"""

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ThrottledOpError

import zkharness as h

KINDS = ["rzk", "zookeeper"]


def mntr(port):
    rows = {}
    for line in h.four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        rows[k] = v
    return rows


def burst(new_server, kind, cfg, n=400):
    s = new_server(kind, extra_cfg=dict(cfg, **{"4lw.commands.whitelist": "*"}))
    kz = KazooClient(hosts=s.hosts, timeout=15.0)
    kz.start(timeout=30)
    try:
        kz.create("/burst")
        asyncs = [kz.create_async("/burst/n-%04d" % i, b"x" * 200) for i in range(n)]
        ok, throttled, other = [], 0, []
        for i, a in enumerate(asyncs):
            try:
                a.get(timeout=60)
                ok.append("n-%04d" % i)
            except ThrottledOpError:
                throttled += 1
            except Exception as e:  # noqa: BLE001 - reported below
                other.append(type(e).__name__)
        children = sorted(kz.get_children("/burst"))
        # the session is still good after throttled ops
        kz.create("/after", b"y")
        return {
            "ok": len(ok),
            "throttled": throttled,
            "other": other,
            "tree_matches_acks": children == ok,
            "mntr": {k: int(mntr(s.port)[k]) for k in ("zk_throttled_ops", "zk_request_throttle_wait_count")},
        }
    finally:
        kz.stop()
        kz.close()


def test_requests_wait_when_too_many_are_in_process(new_server):
    """max 2 in process, no ThrottledOp: every create succeeds, after waiting."""
    got = {kind: burst(new_server, kind, {"request_throttle_max_requests": "2"}) for kind in KINDS}
    for kind, g in got.items():
        assert g["ok"] == 400 and g["throttled"] == 0 and not g["other"], (kind, g)
        assert g["tree_matches_acks"], (kind, g)
        assert g["mntr"]["zk_request_throttle_wait_count"] > 0, (kind, g)
        assert g["mntr"]["zk_throttled_ops"] == 0, (kind, g)


def test_requests_that_waited_too_long_are_throttled_ops(new_server):
    """max 1 in process, ThrottledOp after 1 ms of waiting: some creates are answered
    ThrottledOp and are not carried out; the others are; the session goes on."""
    cfg = {"request_throttle_max_requests": "1", "throttled_op_wait_time": "1"}
    got = {kind: burst(new_server, kind, cfg) for kind in KINDS}
    for kind, g in got.items():
        assert g["ok"] > 0 and g["throttled"] > 0 and not g["other"], (kind, g)
        assert g["ok"] + g["throttled"] == 400, (kind, g)
        assert g["tree_matches_acks"], (kind, g)
        assert g["mntr"]["zk_throttled_ops"] == g["throttled"], (kind, g)


@pytest.mark.parametrize("line", ["largeRequestThreshold=1048576", "connection_throttle_tokens=10"])
def test_throttles_rzk_lacks_stop_start_up(tmp_path, line):
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=%s\nclientPort=0\n%s\n" % (tmp_path / "data", line))
    r = h.run_bounded([str(h.rzk_binary()), "server", "--config", str(cfg)], timeout=30)
    assert r.returncode != 0
    out = (r.stdout or b"") + (r.stderr or b"")
    assert line.split("=")[0] in out.decode(errors="replace")
