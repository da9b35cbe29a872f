"""The differential test: the same seeded operations through kazoo against Apache
ZooKeeper 3.8 and against rzk; results, errors, Stats (times aside), reply zxids and the
sequence of watch events must be identical.

DIFF_SEEDS (default 6) seeds of DIFF_OPS (default 250) operations each; set them higher for
a longer run, or run tests/difftest.py directly.
"""

import os

import pytest

import difftest
import zkharness as h

SEEDS = int(os.environ.get("DIFF_SEEDS", "6"))
OPS = int(os.environ.get("DIFF_OPS", "250"))


@pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not built (cargo build)")
@pytest.mark.parametrize("seed", list(range(1, SEEDS + 1)))
@pytest.mark.timeout(300)
def test_differential_against_apache_zookeeper(seed):
    try:
        difftest.run_differential(seed, OPS, "rzk")
    except difftest.Mismatch as e:
        pytest.fail(str(e)[:20000])
    finally:
        h.kill_all_started()
