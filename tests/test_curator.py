"""Apache Curator (Debian's libcurator-framework-java / -recipes-java 5.4) as a client, run
against Apache ZooKeeper 3.8 and against rzk side by side: tests/java/CuratorCheck.java is
compiled at test time and prints what it observes; both servers must give the same lines.

* the framework: creatingParentsIfNeeded, sequential / ephemeral / container modes, Stat,
  versioned setData (BadVersion), NodeExists / NoNode / NotEmpty, transactions (including
  a failing one, undone), watches, deletingChildrenIfNeeded;
* the recipes applications build on: InterProcessMutex, LeaderLatch, DistributedAtomicLong,
  SharedCount, CuratorCache (a persistent recursive watch) seeing another client's changes;
* the reconfig API on a 3-server ensemble (reconfigEnabled, skipACL): getConfig, reconfig
  leaving / joining with fromConfig, a stale fromConfig refused.

Each run is bounded; every server started is stopped (conftest's new_server, zkensemble).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

import zkharness as h
import zkensemble as ze
from test_reconfig import own_line  # noqa: E402

HERE = Path(__file__).resolve().parent
JARS = ["curator-client", "curator-framework", "curator-recipes", "guava", "zookeeper", "zookeeper-jute",
        "slf4j-api", "slf4j-nop"]

pytestmark = [
    pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed"),
    pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not found at %s" % h.rzk_binary()),
]


@pytest.fixture(scope="module")
def curator(tmp_path_factory) -> str:
    """The class path of the compiled CuratorCheck and its jars."""
    javac = shutil.which("javac")
    jars = ["/usr/share/java/%s.jar" % j for j in JARS]
    missing = [j for j in jars if not os.path.exists(j)]
    if not javac or missing:
        pytest.skip("javac or Curator not installed (apt-get install default-jdk-headless "
                    "libcurator-framework-java libcurator-recipes-java): %s" % (missing or "javac"))
    out = tmp_path_factory.mktemp("curator")
    cp = ":".join(jars)
    r = subprocess.run([javac, "-d", str(out), "-cp", cp, str(HERE / "java" / "CuratorCheck.java")],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return "%s:%s" % (out, cp)


def run(cp: str, *args: str) -> List[str]:
    r = h.run_bounded([h.ZK_JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp,
                       "CuratorCheck"] + list(args), timeout=120)
    lines = r.stdout.decode(errors="replace").splitlines()
    assert r.returncode == 0, (args, lines, r.stderr.decode(errors="replace")[-3000:])
    return lines


def test_framework_and_recipes_as_against_zookeeper(curator, new_server):
    got = {}
    for kind in ("zookeeper", "rzk"):
        s = new_server(kind)
        got[kind] = run(curator, s.hosts, "basics") + run(curator, s.hosts, "recipes")
    assert got["rzk"] == got["zookeeper"]
    # And what they agree on is what Curator promises.
    lines = got["rzk"]
    assert "set version 5 BADVERSION" in lines
    assert "failing transaction NODEEXISTS" in lines
    assert "lock: second while held false" in lines and "lock: second after release true" in lines
    assert "leader: second takes over true" in lines
    assert "atomic long 10" in lines
    assert "cache changed /rec/cache/x 2" in lines


def test_reconfig_api_as_against_zookeeper(curator):
    got = {}
    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    for kind in ("zookeeper", "rzk"):
        with ze.Ensemble(kind, 3, proxied=False, name="curator-reconfig", extra_cfg=cfg,
                         client_addresses=True) as ens:
            for m in ens.members:
                m.wait_serving()
            leader = ens.wait_for_leader()
            gone = [m for m in ens.members if m is not leader][-1]
            got[kind] = run(curator, ens.hosts, "reconfig", str(gone.sid), own_line(gone))
    assert got["rzk"] == got["zookeeper"]
    assert "stale fromConfig BADVERSION" in got["rzk"], got["rzk"]
