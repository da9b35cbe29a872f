"""Dynamic reconfiguration, as far as rzk implements it, side by side with Apache ZooKeeper 3.8
(real processes on 127.0.0.1, zkensemble.py; every process stopped on exit):

* `/zookeeper/config` of every member of a 3-server ensemble holds the ensemble's
  configuration text (`QuorumVerifier.toString()`: `server.N=...:participant` lines and
  `version=<hex>`), with ZooKeeper's Stat (dataVersion -1, mzxid = the config version), read
  with kazoo, zkCli.sh's `config` / `config -c` / `config -s` and `rzk cli config`: the same
  on ZooKeeper and on rzk;
* `reconfig` is refused as before on rzk (ReconfigDisabled without `reconfigEnabled`; with
  it, until rzk carries out reconfigs, UNIMPLEMENTED), and the configuration does not move.

RZK_ENSEMBLE=0 skips the file (as test_ensemble.py's rzk half).
"""

from __future__ import annotations

import os
import re
from typing import List

import pytest

import zkharness as h
import zkensemble as ze

pytestmark = [
    pytest.mark.skipif(os.environ.get("RZK_ENSEMBLE", "1") != "1", reason="RZK_ENSEMBLE=0"),
    pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not found at %s" % h.rzk_binary()),
]


def kazoo(hosts: str):
    from kazoo.client import KazooClient

    c = KazooClient(hosts=hosts, timeout=10.0)
    c.start(timeout=30)
    return c


def expected_config(member: ze.Member) -> str:
    """QuorumMaj.toString() for the static server lines of the member's zoo.cfg."""
    out = []
    for line in member.cfg_path.read_text().splitlines():
        m = re.match(r"server\.(\d+)=(.*)$", line)
        if m:
            out.append("server.%s=%s%s" % (m.group(1), m.group(2), "" if m.group(2).endswith(":observer") else ":participant"))
    return "\n".join(out + ["version=0"])


def zkcli(member: ze.Member, *args) -> List[str]:
    env = dict(os.environ)
    env["CLIENT_JVMFLAGS"] = "-Duser.timezone=UTC -Xss512k -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    r = h.run_bounded([h.ZK_CLI, "-server", member.hosts] + list(args), timeout=60, env=env)
    noise = ("Connecting to", "WATCHER::", "WatchedEvent state:SyncConnected type:None path:null", "log4j", "SLF4J")
    return [l for l in r.stdout.decode(errors="replace").splitlines() if l.strip() and not l.startswith(noise)]


def rzk_cli(member: ze.Member, *args) -> List[str]:
    r = h.run_bounded([str(h.rzk_binary()), "cli", "-server", member.hosts] + list(args), timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return [l for l in r.stdout.decode().splitlines() if l.strip()]


STAT_VOLATILE = ("mtime", "ctime")


def config_views(ens: ze.Ensemble, zkcli_sids):
    """Per member: kazoo's data and stat, and the cli outputs."""
    views = {}
    for m in ens.members:
        c = kazoo(m.hosts)
        try:
            data, stat = c.get("/zookeeper/config")
        finally:
            c.stop()
            c.close()
        v = {"data": data.decode(), "version": stat.version, "mzxid": stat.mzxid, "rzk": rzk_cli(m, "config")}
        v["rzk_c"] = rzk_cli(m, "config", "-c")
        v["rzk_s"] = [l for l in rzk_cli(m, "config", "-s") if not l.startswith(STAT_VOLATILE)]
        if m.sid in zkcli_sids:
            v["zkcli_s"] = [l for l in zkcli(m, "config", "-s") if not l.startswith(STAT_VOLATILE)]
            v["zkcli_c"] = zkcli(m, "config", "-c")
        views[m.sid] = v
    return views


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_config_znode_holds_the_ensemble(kind):
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    with ze.Ensemble(kind, 3, proxied=False, name="reconfig-config") as ens:
        ens.wait_for_leader()
        for m in ens.members:
            m.wait_serving()
        views = config_views(ens, {1} if h.zookeeper_available() else set())
        for m in ens.members:
            v = views[m.sid]
            text = expected_config(m)
            assert v["data"] == text, (m, v["data"])
            assert (v["version"], v["mzxid"]) == (-1, 0)
            assert v["rzk"] == text.splitlines()
            assert v["rzk_c"] == ["0 ,,"], v["rzk_c"]
            if "zkcli_s" in v:
                assert v["zkcli_s"] == v["rzk_s"], (v["zkcli_s"], v["rzk_s"])
                assert v["zkcli_c"] == v["rzk_c"]
