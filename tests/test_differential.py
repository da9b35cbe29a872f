"""The differential test: the same seeded operations through kazoo against Apache
ZooKeeper 3.8 and against rzk (each started fresh with an empty dataDir and the
same zoo.cfg); results, errors, Stats (times aside), reply zxids and the sequence
of watch events per session must be identical. See tests/difftest.py. Both servers run
with enforceQuota=true; the generator sets quotas as zkCli.sh does (nodes under
/zookeeper/quota), creates and sets under them until hard limits answer QuotaExceeded (alone
and in multis), and sends raw frames with non-UTF-8 paths and negative ACL counts.

Environment:
  DIFF_SEEDS    comma-separated seeds, or N for seeds 1..N   (default 5)
  DIFF_OPS      operations per seed                          (default 300)
  DIFF_AGAINST  rzk | zookeeper  (zookeeper = ZooKeeper-vs-ZooKeeper, to check
                the harness itself)                          (default rzk)
  DIFF_SELFCHECK_OPS  length of the ZooKeeper-vs-ZooKeeper self-check that
                always runs (0 disables it)                  (default 120)
For a longer run: .venv/bin/python tests/difftest.py --seeds 20 --ops 2000
Transcripts: tests/.work/differential/seed<N>-{A,B}-<kind>.jsonl
"""

import os

import pytest

import difftest
import zkharness as h

_seeds = os.environ.get("DIFF_SEEDS", "5")
SEEDS = [int(x) for x in _seeds.split(",") if x.strip()] if "," in _seeds else list(range(1, int(_seeds) + 1))
OPS = int(os.environ.get("DIFF_OPS", "300"))
AGAINST = os.environ.get("DIFF_AGAINST", "rzk")
SELFCHECK_OPS = int(os.environ.get("DIFF_SELFCHECK_OPS", "120"))


def _run(seed, ops, against, capsys):
    if not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper is not installed (apt-get install zookeeper)")
    if against == "rzk" and not h.rzk_available():
        pytest.skip("rzk binary not found at %s (cargo build, or set RZK_BIN)" % h.rzk_binary())
    try:
        summary = difftest.run_differential(seed, ops, against, log=lambda s: None)
    except difftest.Mismatch as e:
        pytest.fail(str(e)[:20000])
    finally:
        h.kill_all_started()
    with capsys.disabled():
        print("\ndifferential: seed=%d ops=%d against=%s compared OK (%.1fs)"
              % (seed, summary["ops"], against, summary["seconds"]))
    assert summary["ops"] == ops


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.timeout(180 + OPS)
def test_differential_against_apache_zookeeper(seed, capsys):
    _run(seed, OPS, AGAINST, capsys)


@pytest.mark.skipif(SELFCHECK_OPS <= 0, reason="DIFF_SELFCHECK_OPS=0")
@pytest.mark.timeout(180 + SELFCHECK_OPS)
def test_harness_is_deterministic_zookeeper_vs_zookeeper(capsys):
    """Two fresh Apache ZooKeepers must give identical transcripts; if this
    fails, the harness (not rzk) is non-deterministic."""
    _run(9001, SELFCHECK_OPS, "zookeeper", capsys)
