"""The differential test: the same seeded operations through kazoo against Apache
ZooKeeper 3.8 and against rzk; results, errors, Stats (times aside), reply zxids and the
sequence of watch events must be identical.

DIFF_SEEDS (a comma-separated list, or N for seeds 1..N; default the six below) seeds of
DIFF_OPS (default 250) operations each; set them higher for a longer run, or run
tests/difftest.py directly.
"""

import os

import pytest

import difftest
import zkharness as h

_seeds = os.environ.get("DIFF_SEEDS", "1,2,3,4,6,8")
SEEDS = [int(x) for x in _seeds.split(",")] if "," in _seeds else list(range(1, int(_seeds) + 1))
OPS = int(os.environ.get("DIFF_OPS", "250"))


@pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not built (cargo build)")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.timeout(300)
def test_differential_against_apache_zookeeper(seed):
    try:
        difftest.run_differential(seed, OPS, "rzk")
    except difftest.Mismatch as e:
        pytest.fail(str(e)[:20000])
    finally:
        h.kill_all_started()
