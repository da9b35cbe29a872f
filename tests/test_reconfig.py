"""Dynamic reconfiguration, side by side with Apache ZooKeeper 3.8 (real processes on
127.0.0.1, zkensemble.py; every process stopped on exit):

* `/zookeeper/config` of every member of a 3-server ensemble with reconfigEnabled holds the
  ensemble's configuration text (`QuorumVerifier.toString()`, with the version the first
  NEWLEADER gave it), read with kazoo, zkCli.sh's `config` / `config -c` / `config -s` and
  `rzk cli config`; then, under skipACL, shrink 3 -> 2 with `rzk cli reconfig -remove`, a
  stale `-v` refused, grow back with zkCli.sh `-add`, kazoo's stale from_config: the same on
  ZooKeeper and on rzk (whose leader carries the reconfigs out);
* without reconfigEnabled rzk refuses reconfig (ReconfigDisabled, as zkCli.sh prints it);
* a super user (superDigest) against either kind: NoAuth for anyone else, incremental remove
  and add with kazoo, BadVersion, the /zookeeper/config watch, a non-incremental member list,
  the same zoo.cfg.dynamic.<version> files on every member, every acknowledged write kept;
* removing the leader, on either kind; a removed follower that keeps running, finds the
  next leader after its own is stopped, and is added back with every write;
* standaloneEnabled=false: shrinking to one voter, writing, growing back to three (and the
  same shrink refused with standaloneEnabled=true), on either kind;
* mixed ensembles: rzk followers activating a ZooKeeper leader's reconfigs (and writing the
  same files), an rzk leader reconfiguring ZooKeeper followers; and, without
  reconfigEnabled on the rzk member and on a ZooKeeper one, both going on with the
  configuration they were started with (ZooKeeper's processReconfig skips it);
* growing an rzk ensemble 3 -> 5 and shrinking it back 5 -> 3 by restarts, as the README's
  *Growing and shrinking an ensemble* says, with kazoo writes in between: every
  acknowledged write on every member after each step, `config` showing the new membership.

RZK_ENSEMBLE=0 skips the file (as test_ensemble.py's rzk half).
"""

from __future__ import annotations

import os
import re
import threading
import time
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


class Writes:
    """Creates of new znodes under one parent, each through a fresh kazoo session, and the
    paths acknowledged; `missing_on` is what a member lacks of them after a sync."""

    def __init__(self, parent: str):
        self.parent = parent
        self.acked: List[str] = []

    def write(self, where, n: int) -> None:
        """`where`: a connection string, or members."""
        c = kazoo(where if isinstance(where, str) else ",".join(m.hosts for m in where))
        try:
            c.ensure_path(self.parent)
            for _ in range(n):
                p = "%s/w%04d" % (self.parent, len(self.acked))
                c.create(p, b"x")
                self.acked.append(p)
        finally:
            c.stop()
            c.close()

    def seen_on(self, m: ze.Member):
        """After a sync on `m`: the acknowledged paths it lacks, and its /zookeeper/config."""
        c = kazoo(m.hosts)
        try:
            c.sync(self.parent)
            have = set("%s/%s" % (self.parent, k) for k in c.get_children(self.parent))
            conf = c.get("/zookeeper/config")[0].decode()
        finally:
            c.stop()
            c.close()
        return [p for p in self.acked if p not in have], conf

    def missing_on(self, m: ze.Member) -> List[str]:
        return self.seen_on(m)[0]


def expected_config(member: ze.Member) -> str:
    """QuorumMaj.toString() for the static server lines of the member's zoo.cfg."""
    out = []
    for line in member.config_lines():
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


def rzk_cli(member: ze.Member, *args, ok: bool = True) -> List[str]:
    """stdout lines (ok) or stderr lines (a failing command)."""
    r = h.run_bounded([str(h.rzk_binary()), "cli", "-server", member.hosts] + list(args), timeout=30)
    assert (r.returncode == 0) == ok, (r.returncode, r.stdout.decode(), r.stderr.decode())
    return [l for l in (r.stdout if ok else r.stderr).decode().splitlines() if l.strip()]


def zkcli_all(member: ze.Member, *args) -> List[str]:
    """zkCli.sh's stdout and stderr lines, without its noise."""
    env = dict(os.environ)
    env["CLIENT_JVMFLAGS"] = "-Duser.timezone=UTC -Xss512k -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    r = h.run_bounded([h.ZK_CLI, "-server", member.hosts] + list(args), timeout=60, env=env)
    noise = ("Connecting to", "WATCHER::", "WatchedEvent state:SyncConnected type:None path:null", "log4j", "SLF4J")
    text = r.stdout.decode(errors="replace") + "\n" + r.stderr.decode(errors="replace")
    return [l for l in text.splitlines() if l.strip() and not l.startswith(noise)]


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
def test_config_znode_and_reconfig(kind):
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    # Reconfig allowed to anyone (skipACL), to drive it with both clis.
    extra = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 3, proxied=False, name="reconfig-config", extra_cfg=extra) as ens:
        ens.wait_for_leader()
        for m in ens.members:
            m.wait_serving()
        views = config_views(ens, {1} if h.zookeeper_available() else set())
        for m in ens.members:
            v = views[m.sid]
            text = expected_config(m)
            # With reconfigEnabled, the static lines move to a dynamic file and the first
            # leader gives the configuration a version (its first zxid).
            version = v["data"].splitlines()[-1][len("version="):]
            assert int(version, 16) > 0 and v["mzxid"] == int(version, 16), v
            text = text.replace("version=0", "version=" + version)
            assert v["data"] == text, (m, v["data"])
            assert v["version"] == -1
            assert v["rzk"] == text.splitlines()
            assert v["rzk_c"] == [text.splitlines()[-1][len("version="):] + " ,,"], v["rzk_c"]
            if "zkcli_s" in v:
                assert v["zkcli_s"] == v["rzk_s"], (v["zkcli_s"], v["rzk_s"])
                assert v["zkcli_c"] == v["rzk_c"]
        reconfig_side_by_side(ens)


def test_rzk_refuses_reconfig_without_reconfig_enabled():
    with ze.Ensemble("rzk", 3, proxied=False, name="reconfig-disabled") as ens:
        ens.wait_for_leader()
        for m in ens.members:
            m.wait_serving()
        # Without reconfigEnabled the configuration keeps version 0.
        assert rzk_cli(ens.member(1), "config")[-1] == "version=0"
        reconfig_refused_on_rzk(ens)


def server_lines(text: str) -> List[str]:
    return [l for l in text.splitlines() if l.startswith("server.")]


def reconfig_side_by_side(ens: ze.Ensemble) -> None:
    # Through the leader, removing a follower (removing the leader moves leadership and
    # drops its clients: not this test's business).
    m1 = ens.wait_for_leader()
    victim = [m for m in ens.members if m is not m1][0].sid
    before = expected_config(m1)
    line3 = [l for l in before.splitlines() if l.startswith("server.%d=" % victim)][0]
    # Shrink with rzk cli: the committed configuration, then the stat of /zookeeper/config.
    out = rzk_cli(m1, "reconfig", "-s", "-remove", str(victim))
    assert out[0] == "Committed new configuration:"
    assert server_lines("\n".join(out)) == [l for l in server_lines(before) if l != line3]
    version = [l for l in out if l.startswith("version=")][0][len("version="):]
    stat = dict(l.split(" = ", 1) for l in out if " = " in l)
    assert int(stat["mZxid"], 16) == int(version, 16), (stat, version)
    assert stat["dataVersion"] == "-1"
    # A stale -v: refused as zkCli reports it, by both.
    assert rzk_cli(m1, "reconfig", "-v", "0", "-add", line3, ok=False) == ["version No is not valid : "]
    assert zkcli_all(m1, "reconfig", "-v", "0", "-add", line3) == ["version No is not valid : "]
    # Grow back with zkCli.sh; rzk cli config shows what zkCli committed.
    # (A joining server must name its client port.)
    joining = "%s;127.0.0.1:%d" % (line3, ens.member(victim).client_port)
    zk_out = zkcli_all(m1, "reconfig", "-v", version, "-add", joining)
    assert zk_out[0] == "Committed new configuration:", zk_out
    assert sorted(server_lines("\n".join(zk_out))) == sorted([l for l in server_lines(before) if l != line3] + [joining])
    assert server_lines("\n".join(rzk_cli(m1, "config"))) == server_lines("\n".join(zk_out))
    # A usage error, as zkCli.
    assert rzk_cli(m1, "reconfig", "-s", ok=False)[0].startswith("reconfig [-s] [-v version]")
    # kazoo's reconfig (a stale from_config: BadVersion) against the same server.
    from kazoo.exceptions import BadVersionError
    c = kazoo(m1.hosts)
    try:
        with pytest.raises(BadVersionError):
            c.reconfig(joining=None, leaving=str(victim), new_members=None, from_config=1)
    finally:
        c.stop()
        c.close()


def reconfig_refused_on_rzk(ens: ze.Ensemble) -> None:
    m1 = ens.member(1)
    before = rzk_cli(m1, "config")
    assert rzk_cli(m1, "reconfig", "-remove", "3", ok=False) == ["KeeperErrorCode = Reconfig is disabled"]
    if h.zookeeper_available():
        assert "KeeperErrorCode = Reconfig is disabled" in zkcli_all(m1, "reconfig", "-remove", "3")
    assert rzk_cli(m1, "config") == before
    from kazoo.exceptions import ReconfigDisabledError
    c = kazoo(m1.hosts)
    try:
        with pytest.raises(ReconfigDisabledError):
            c.reconfig(joining=None, leaving="3", new_members=None)
    finally:
        c.stop()
        c.close()


@pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed")
def test_a_member_without_reconfig_enabled_goes_on_when_a_zookeeper_leader_reconfigures():
    """A mixed 4-server ensemble: ZooKeeper sids 3 and 4 with reconfigEnabled (one of them
    leads), and without it rzk's sid 1 and ZooKeeper's sid 2, side by side. The leader removes
    the other:
    both members without reconfigEnabled go on (ZooKeeper's processReconfig skips the new
    configuration; rzk does the same), /zookeeper/config holds the new text on both, they
    write the same configuration files (none for it), and later writes reach everyone."""
    zk_cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(["rzk", "zookeeper", "zookeeper", "zookeeper"], 4, proxied=False, name="reconfig-mixed-off",
                     member_cfg={3: zk_cfg, 4: zk_cfg}) as ens:
        for m in ens.members:
            m.wait_serving()
        # Equal histories: the highest sid of the first quorum leads, ZooKeeper's 4 or (if 4
        # came up last) its 3; the leader removes the other of the two.
        leader = ens.wait_for_leader()
        assert leader.sid in (3, 4), leader
        rzk, zk2, removed = ens.member(1), ens.member(2), ens.member(7 - leader.sid)
        w = Writes("/off")
        w.write(ens.members, 3)
        c = kazoo(leader.hosts)
        try:
            data, _ = c.reconfig(joining=None, leaving=str(removed.sid), new_members=None)
            new = data.decode()
            assert "server.%d=" % removed.sid not in new, new
        finally:
            c.stop()
            c.close()
        w.write([leader, rzk, zk2], 3)
        ens.wait_converged(members=[leader, rzk, zk2])
        files = {}
        for m in (rzk, zk2):
            assert m.is_running() and m.mode() == "follower", (m, m.mode())
            missing, conf = w.seen_on(m)
            assert not missing, m
            assert server_lines(conf) == server_lines(new), (m, conf)
            files[m.sid] = sorted(p.name for p in m.workdir.glob("zoo.cfg*") if not p.name.endswith(".tmp"))
        assert files[1] == files[2], files
        assert "server.%d=" % removed.sid not in dynamic_files(leader)[new.splitlines()[-1][len("version="):]]
        assert removed.is_running()


def test_rzk_grows_3_to_5_and_shrinks_back_by_restarts():
    """README, *Growing and shrinking an ensemble*: grow by stopping the synced ensemble and
    starting the old members first with the new lines, then the new ones; shrink by stopping
    the leaving servers first (the rest are still a quorum of the old lines, so every later
    commit is on all of them), then restarting the rest with the new lines. Every
    acknowledged write is on every member at each step."""

    with ze.Ensemble("rzk", 5, proxied=False, name="reconfig-restarts", start_only=[1, 2, 3]) as ens:
        w = Writes("/grow")

        def write(n: int) -> None:
            w.write(ens.running(), n)

        def check(members) -> None:
            for m in members:
                missing = w.missing_on(m)
                assert not missing, (m, missing[:5], len(missing))

        def restart(members, servers) -> None:
            for m in members:
                m.stop()
            for m in members:
                m.servers = servers
                m.start()
            ens.wait_for_leader(members=members)

        old = [ens.member(s) for s in (1, 2, 3)]
        new = [ens.member(s) for s in (4, 5)]
        write(30)
        # Grow: the synced ensemble stops; the old members come back first.
        ens.wait_converged(members=old)
        restart(old, [1, 2, 3, 4, 5])
        for m in new:
            m.servers = [1, 2, 3, 4, 5]
            m.start()
        ens.wait_for_leader()
        assert len(ens.running()) == 5 and ens.member(5).mode() in ("follower", "leader")
        write(30)
        check(ens.members)
        # Shrink: the leaving servers stop first; the ensemble goes on with 3 of 5.
        for m in new:
            m.stop()
        ens.wait_for_leader(members=old)
        write(30)
        ens.wait_converged(members=old)
        restart(old, [1, 2, 3])
        write(10)
        check(old)
        assert "server.4" not in "\n".join(rzk_cli(ens.member(1), "config"))


def dynamic_files(m: ze.Member) -> dict:
    """zoo.cfg.dynamic.<version> files of a member (and .next): version -> text. A file
    deleted while it is read (.next, on commit) is left out."""
    out = {}
    for p in m.workdir.glob("zoo.cfg.dynamic.*"):
        if not p.name.endswith(".tmp"):
            try:
                out[p.name[len("zoo.cfg.dynamic."):]] = p.read_text()
            except FileNotFoundError:
                pass
    return out


def static_keys(m: ze.Member) -> dict:
    out = {}
    for l in m.cfg_path.read_text().splitlines():
        if "=" in l and not l.startswith("#"):
            k, v = l.split("=", 1)
            out[k.strip()] = v.strip()
    return out


@pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed")
def test_rzk_follower_activates_a_zookeeper_leaders_reconfig():
    """A mixed ensemble, every member with reconfigEnabled (rzk sid 1, ZooKeeper 2 and 3):
    the ZooKeeper leader's first NEWLEADER gives the configuration its version and each
    member writes zoo.cfg.dynamic.<version> and points zoo.cfg at it; then the leader
    removes the other ZooKeeper follower and adds it back (kazoo through the rzk follower,
    zkCli.sh through the leader): the rzk follower activates each configuration (it goes on
    following; with a quorum of {1, 3} only, writes commit through it), writes the same
    files as the ZooKeeper members (the rewritten zoo.cfg with its keys in the same order),
    and has every acknowledged write."""

    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(["rzk", "zookeeper", "zookeeper"], 3, proxied=False, name="reconfig-activate",
                     extra_cfg=cfg, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader()
        assert leader.kind == "zookeeper", leader
        rzk = ens.member(1)
        other = [m for m in ens.members if m.kind == "zookeeper" and m is not leader][0]
        w = Writes("/ra")
        write = w.write

        def same_files(members) -> str:
            """Every member's newest dynamic file, all equal; its version."""
            newest = {}
            orders = {}
            for m in members:
                # The rewritten zoo.cfg's keys, in ZooKeeper's order (its Properties').
                orders[m.sid] = [l.split("=", 1)[0] for l in m.cfg_path.read_text().splitlines()]
                files = dynamic_files(m)
                assert files, (m, list(m.workdir.iterdir()))
                v = max(files, key=lambda x: int(x, 16))
                newest[m.sid] = (v, files[v])
                keys = static_keys(m)
                assert keys["dynamicConfigFile"].endswith("zoo.cfg.dynamic." + v), (m, keys)
                assert not any(k.startswith("server.") for k in keys), (m, keys)
                assert (m.workdir / "zoo.cfg.bak").exists(), m
            assert len(set(newest.values())) == 1, newest
            assert len(set(tuple(o) for o in orders.values())) == 1, orders
            return list(newest.values())[0][0]

        # The first leader's version, in every member's files and /zookeeper/config.
        h.wait_until(lambda: all(dynamic_files(m) for m in ens.members), 30, 0.2, "dynamic files on every member")
        v0 = same_files(ens.members)
        assert int(v0, 16) == int(rzk_cli(rzk, "config")[-1][len("version="):], 16), v0
        write(rzk.hosts, 10)

        # kazoo through the rzk follower: remove the other ZooKeeper follower.
        c = kazoo(rzk.hosts)
        try:
            data, stat = c.reconfig(joining=None, leaving=str(other.sid), new_members=None)
        finally:
            c.stop()
            c.close()
        text = data.decode()
        assert "server.%d=" % other.sid not in text, text
        v1 = text.splitlines()[-1][len("version="):]
        assert stat.mzxid == int(v1, 16)
        h.wait_until(lambda: v1 in dynamic_files(rzk), 30, 0.2, "the rzk follower's new dynamic file")
        assert rzk.is_running() and rzk.mode() == "follower", rzk.log_tail()
        # /zookeeper/config on the rzk member and its file agree with the leader's.
        assert rzk_cli(rzk, "config") == text.splitlines()
        assert same_files([rzk, leader]) == v1
        assert "server.%d=" % other.sid not in dynamic_files(rzk)[v1]
        # The quorum is {1, 3} now: the rzk follower's acks commit writes.
        write(rzk.hosts, 10)

        # zkCli.sh through the leader: add it back.
        line = [l for l in dynamic_files(other)[v0].splitlines() if l.startswith("server.%d=" % other.sid)][0]
        out = zkcli_all(leader, "reconfig", "-add", line)
        assert out[0] == "Committed new configuration:", out
        v2 = [l for l in out if l.startswith("version=")][0][len("version="):]
        h.wait_until(lambda: v2 in dynamic_files(rzk), 30, 0.2, "the rzk follower's newest dynamic file")
        other.wait_serving()
        write(",".join(m.hosts for m in ens.members), 10)
        ens.wait_converged()
        assert same_files(ens.members) == v2
        assert sorted(server_lines(dynamic_files(rzk)[v2])) == sorted(server_lines(dynamic_files(rzk)[v0]))
        for m in ens.members:
            assert not w.missing_on(m), m
        assert rzk.is_running(), rzk.log_tail()


def super_digest(user: str, password: str) -> str:
    import base64
    import hashlib

    return "%s:%s" % (user, base64.b64encode(hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()).decode())


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_leader_carries_out_reconfig(kind):
    """The same scenario against a ZooKeeper 3.8 ensemble and an rzk one (reconfigEnabled,
    a super user by superDigest, client addresses in the server lines): a client that is
    not the super user is refused (NoAuth); the super user removes a follower with kazoo
    (incremental), a stale fromConfig is refused (BadVersion), adds it back with zkCli.sh,
    then sets the whole membership (non-incremental, kazoo's new_members); the
    /zookeeper/config watch fires; every member writes the same zoo.cfg.dynamic.<version>
    files; kazoo writes between the steps are on every member at the end."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    from kazoo.client import KazooClient
    from kazoo.exceptions import BadVersionError, NoAuthError

    cfg = {"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": super_digest("super", "pw")}
    with ze.Ensemble(kind, 3, proxied=False, name="reconfig-leader", extra_cfg=cfg, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader()
        follower = [m for m in ens.members if m is not leader][0]
        w = Writes("/rl")

        def write(n: int) -> None:
            w.write(ens.members, n)

        def version_of(text: str) -> str:
            return text.splitlines()[-1][len("version="):]

        write(5)
        anon = kazoo(leader.hosts)
        try:
            with pytest.raises(NoAuthError):
                anon.reconfig(joining=None, leaving=str(follower.sid), new_members=None)
        finally:
            anon.stop()
            anon.close()

        c = KazooClient(hosts=leader.hosts, timeout=10.0, auth_data=[("digest", "super:pw")])
        c.start(timeout=30)
        events = []
        try:
            data0, _ = c.get("/zookeeper/config", watch=lambda e: events.append(e))
            full = data0.decode()
            v0 = version_of(full)
            line = [l for l in full.splitlines() if l.startswith("server.%d=" % follower.sid)][0]
            # Incremental: remove the follower.
            data1, stat1 = c.reconfig(joining=None, leaving=str(follower.sid), new_members=None)
            text1 = data1.decode()
            v1 = version_of(text1)
            assert "server.%d=" % follower.sid not in text1 and int(v1, 16) == stat1.mzxid
            h.wait_until(lambda: events, 10, 0.05, "the /zookeeper/config watch")
            # A stale fromConfig.
            with pytest.raises(BadVersionError):
                c.reconfig(joining=line, leaving=None, new_members=None, from_config=int(v0, 16))
        finally:
            c.stop()
            c.close()
        write(5)
        # Add it back (kazoo, as the super user; zkCli.sh runs one command per process, so
        # test_config_znode_and_reconfig drives it under skipACL).
        c = KazooClient(hosts=leader.hosts, timeout=10.0, auth_data=[("digest", "super:pw")])
        c.start(timeout=30)
        try:
            data2, _ = c.reconfig(joining=line, leaving=None, new_members=None, from_config=int(v1, 16))
            text2 = data2.decode()
            assert sorted(server_lines(text2)) == sorted(server_lines(full)), text2
            # Non-incremental: the same members, a new version.
            data3, _ = c.reconfig(joining=None, leaving=None, new_members=",".join(server_lines(full)))
            text3 = data3.decode()
            assert sorted(server_lines(text3)) == sorted(server_lines(full)) and version_of(text3) != version_of(text2)
        finally:
            c.stop()
            c.close()
        v3 = version_of(text3)
        for m in ens.members:
            h.wait_until(lambda: v3 in dynamic_files(m), 30, 0.2, "%r's dynamic file %s" % (m, v3))
            # zoo.cfg.dynamic.next (the configuration seen proposed) is gone once committed.
            h.wait_until(lambda: "next" not in dynamic_files(m), 10, 0.1, "%r's zoo.cfg.dynamic.next deleted" % m)
        newest = {m.sid: dynamic_files(m)[v3] for m in ens.members}
        assert len(set(newest.values())) == 1, newest
        assert v1 in dynamic_files(leader)
        write(5)
        ens.wait_converged()
        for m in ens.members:
            missing, conf = w.seen_on(m)
            assert version_of(conf) == v3, m
            assert not missing, m


@pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed")
def test_rzk_leader_reconfigures_zookeeper_followers():
    """A mixed ensemble led by rzk (sid 3; ZooKeeper sids 1 and 2, every member with
    reconfigEnabled and skipACL): the ZooKeeper followers take the rzk leader's versioned
    initial configuration from NEWLEADER, then the rzk leader removes ZooKeeper server 1
    (kazoo) and adds it back (zkCli.sh): ZooKeeper activates each COMMITANDACTIVATE, and
    every member has the same dynamic files and every acknowledged write."""

    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(["zookeeper", "zookeeper", "rzk"], 3, proxied=False, name="reconfig-rzk-leads",
                     extra_cfg=cfg, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader()
        assert leader.kind == "rzk", leader
        w = Writes("/mx")
        write = w.write

        h.wait_until(lambda: all(dynamic_files(m) for m in ens.members), 30, 0.2, "dynamic files on every member")
        v0 = max(dynamic_files(leader), key=lambda x: int(x, 16))
        assert int(v0, 16) >> 32 >= 1
        for m in ens.members:
            assert dynamic_files(m)[v0] == dynamic_files(leader)[v0], m
        write(ens.members, 5)
        c = kazoo(leader.hosts)
        try:
            data, _ = c.reconfig(joining=None, leaving="1", new_members=None)
        finally:
            c.stop()
            c.close()
        v1 = data.decode().splitlines()[-1][len("version="):]
        for m in (ens.member(2), leader):
            h.wait_until(lambda: v1 in dynamic_files(m), 30, 0.2, "%r's dynamic file %s" % (m, v1))
        assert dynamic_files(ens.member(2))[v1] == dynamic_files(leader)[v1]
        assert "server.1=" not in dynamic_files(leader)[v1]
        # {2, 3} is the quorum now: the ZooKeeper follower's acks commit.
        write([ens.member(2), leader], 5)
        line = [l for l in dynamic_files(leader)[v0].splitlines() if l.startswith("server.1=")][0]
        out = zkcli_all(leader, "reconfig", "-add", line)
        assert out[0] == "Committed new configuration:", out
        v2 = [l for l in out if l.startswith("version=")][0][len("version="):]
        for m in ens.members:
            h.wait_until(lambda: v2 in dynamic_files(m), 30, 0.2, "%r's dynamic file %s" % (m, v2))
            assert dynamic_files(m)[v2] == dynamic_files(leader)[v2], m
        write(ens.members, 5)
        ens.wait_converged()
        for m in ens.members:
            assert not w.missing_on(m), m
        assert leader.mode() == "leader"


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_remove_the_leader(kind):
    """Removing the leader (kazoo through it): the configuration without it commits, the
    other two elect a leader among themselves, and writes go on; the removed server keeps
    running. Side by side with ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")

    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 3, proxied=False, name="reconfig-remove-leader", extra_cfg=cfg, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        old = ens.wait_for_leader()
        rest = [m for m in ens.members if m is not old]
        w = Writes("/rm")
        write = w.write

        write(ens.members, 5)
        c = kazoo(old.hosts)
        try:
            try:
                data, _ = c.reconfig(joining=None, leaving=str(old.sid), new_members=None)
                assert "server.%d=" % old.sid not in data.decode()
            except Exception as e:  # the leader's clients may be cut off with its role
                from kazoo.exceptions import ConnectionLoss

                assert isinstance(e, ConnectionLoss), e
        finally:
            c.stop()
            c.close()
        new = ens.wait_for_leader(members=rest)
        assert new is not old
        for m in rest:
            h.wait_until(lambda: any("server.%d=" % old.sid not in t for t in dynamic_files(m).values()), 30, 0.2,
                         "%r's configuration without the old leader" % m)
        write(rest, 5)
        ens.wait_converged(members=rest)
        for m in rest:
            missing, conf = w.seen_on(m)
            assert "server.%d=" % old.sid not in conf, (m, conf)
            assert not missing, m
        assert old.is_running()


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_a_new_server_joins_by_reconfig(kind):
    """ZooKeeper's way to add a server that was never in the ensemble: start it with the
    current members and itself, it finds the leader by election (the members take its
    election connection and answer with their vote) and follows without a vote; then
    `reconfig -add` names it (zkCli.sh), it votes, and it has every acknowledged write.
    Side by side with ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 4, proxied=False, name="reconfig-join", extra_cfg=cfg, client_addresses=True,
                     start_only=[1, 2, 3]) as ens:
        old = [ens.member(s) for s in (1, 2, 3)]
        new = ens.member(4)
        for m in old:
            m.wait_serving()
        leader = ens.wait_for_leader(members=old)
        w = Writes("/join")
        write = w.write

        write(old, 20)
        new.servers = [1, 2, 3, 4]
        new.start()
        # Not a voter yet: it follows the leader it found by election.
        assert new.wait_serving() == "follower", new.log_tail()
        line = own_line(new)
        out = zkcli_all(leader, "reconfig", "-add", line)
        assert out[0] == "Committed new configuration:", out
        assert any(l.startswith("server.4=") for l in out), out
        write(old + [new], 20)
        ens.wait_converged(members=old + [new])
        for m in old + [new]:
            missing, conf = w.seen_on(m)
            assert "server.4=" in conf, (m, conf)
            assert not missing, m
        # Every member runs with the configuration naming server 4, in its dynamic file.
        for m in old + [new]:
            h.wait_until(lambda: any("server.4=" in t for t in dynamic_files(m).values()), 30, 0.2,
                         "%r's dynamic file with server 4" % m)


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_grow_3_to_5_and_shrink_back_by_reconfig_under_load(kind):
    """Writers and readers keep going (test_ensemble's Load: failover clients over every
    member, one history) while two new servers join the 3-server ensemble and become voters
    by one reconfig, and are removed by another: the history is linearizable and every
    acknowledged write is in the final tree of the remaining members. Side by side with
    ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    from test_ensemble import Load, assert_history, final_state, load_setup

    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 5, proxied=False, name="reconfig-grow-load", extra_cfg=cfg, client_addresses=True,
                     start_only=[1, 2, 3]) as ens:
        old = [ens.member(s) for s in (1, 2, 3)]
        new = [ens.member(s) for s in (4, 5)]
        for m in old:
            m.wait_serving()
        leader = ens.wait_for_leader(members=old)
        zk = kazoo(leader.hosts)
        initial = load_setup(zk)
        with Load(ens) as load:
            time.sleep(1)
            for m in new:
                m.servers = [1, 2, 3, 4, 5]
                m.start()
            for m in new:
                assert m.wait_serving() == "follower", m.log_tail()
            lines = [own_line(m) for m in new]
            grown, _ = zk.reconfig(joining=",".join(lines), leaving=None, new_members=None)
            assert all("server.%d=" % m.sid in grown.decode() for m in new), grown
            time.sleep(2)
            shrunk, _ = zk.reconfig(joining=None, leaving="4,5", new_members=None)
            assert not any("server.%d=" % m.sid in shrunk.decode() for m in new), shrunk
            time.sleep(2)
        zk.stop()
        zk.close()
        ens.wait_converged(members=old)
        writes = [o for o in load.hist if o["kind"] in ("create", "set") and o["status"] == "ok"]
        assert len(writes) > 50, len(writes)
        for m in old:
            assert_history(load.hist, final_state(m, load.paths()), initial)


def own_line(m: ze.Member) -> str:
    """m's own server.N line, as its zoo.cfg has it."""
    return [l for l in m.config_lines() if l.startswith("server.%d=" % m.sid)][0]


def member_line(m: ze.Member, role: str) -> str:
    """m's own server.N line, with `role` (participant or observer)."""
    addr, _, client = own_line(m).partition(";")
    addr = re.sub(r":(participant|observer)$", "", addr)
    return "%s:%s;%s" % (addr, role, client)


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_an_observer_becomes_a_participant_and_back(kind):
    """An observer converted to a voter by `reconfig -add` with its line as a participant,
    and back (kazoo): the configuration says so on every member, the converted server
    follows (then observes again), and writes go on. Side by side with ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 4, observers=[4], proxied=False, name="reconfig-observer", extra_cfg=cfg,
                     client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader(members=ens.members[:3])
        obs = ens.member(4)
        assert obs.mode() == "observer"
        zk = kazoo(leader.hosts)
        try:
            conf, _ = zk.reconfig(joining=member_line(obs, "participant"), leaving=None, new_members=None)
            assert re.search(r"^server\.4=.*:participant;", conf.decode(), re.M), conf
            h.wait_until(lambda: obs.mode() == "follower", 30, 0.2, "server 4 following")
            zk.create("/conv", b"1")
            conf, _ = zk.reconfig(joining=member_line(obs, "observer"), leaving=None, new_members=None)
            assert re.search(r"^server\.4=.*:observer;", conf.decode(), re.M), conf
            h.wait_until(lambda: obs.mode() == "observer", 30, 0.2, "server 4 observing again")
            zk.set("/conv", b"2")
        finally:
            zk.stop()
            zk.close()
        ens.wait_converged()
        for m in ens.members:
            c = kazoo(m.hosts)
            try:
                c.sync("/conv")
                assert c.get("/conv")[0] == b"2", m
                assert re.search(r"^server\.4=.*:observer;", c.get("/zookeeper/config")[0].decode(), re.M), m
            finally:
                c.stop()
                c.close()


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_a_member_that_missed_a_reconfig_learns_it_on_restart(kind):
    """A follower is down while the others remove the observer; restarted, it learns the
    new configuration from its leader (NEWLEADER carries it): its /zookeeper/config and its
    newest dynamic file have no server.4. Side by side with ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 4, observers=[4], proxied=False, name="reconfig-missed", extra_cfg=cfg,
                     client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader(members=ens.members[:3])
        away = [m for m in ens.members[:3] if m is not leader][0]
        away.stop()
        zk = kazoo(leader.hosts)
        try:
            conf, _ = zk.reconfig(joining=None, leaving="4", new_members=None)
            assert "server.4=" not in conf.decode(), conf
            zk.create("/missed", b"x")
        finally:
            zk.stop()
            zk.close()
        version = conf.decode().splitlines()[-1][len("version="):]
        away.start()
        away.wait_serving()
        h.wait_until(lambda: version in dynamic_files(away), 30, 0.2, "the restarted member's dynamic file %s" % version)
        assert "server.4=" not in dynamic_files(away)[version]
        c = kazoo(away.hosts)
        try:
            c.sync("/missed")
            assert c.exists("/missed")
            assert "server.4=" not in c.get("/zookeeper/config")[0].decode()
        finally:
            c.stop()
            c.close()


def reconfig_retrying(c, timeout: float = 30.0, **kw):
    """kazoo's reconfig, again while the new configuration has no synced quorum yet (removed
    servers still finding the leader)."""
    from kazoo.exceptions import NewConfigNoQuorumError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return c.reconfig(**kw)
        except NewConfigNoQuorumError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.mark.parametrize("standalone", ["false", "true"])
@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_shrink_to_one_voter_with_standalone_enabled_false(kind, standalone):
    """standaloneEnabled=false: a reconfig may leave a single voter, which goes on as a
    one-server quorum (writes commit), and later grows back to three by reconfig, the removed
    servers (still running, following without a vote) having every acknowledged write.
    standaloneEnabled=true (the default): the same reconfig is refused with BadArguments
    ("... must include at least 2 followers"). Side by side with ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    from kazoo.exceptions import BadArgumentsError

    cfg = {"reconfigEnabled": "true", "skipACL": "yes", "standaloneEnabled": standalone}
    with ze.Ensemble(kind, 3, proxied=False, name="reconfig-one-voter", extra_cfg=cfg, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader()
        others = [m for m in ens.members if m is not leader]
        lines = [own_line(m) for m in others]
        w = Writes("/one")
        w.write(ens.members, 5)
        c = kazoo(leader.hosts)
        try:
            leaving = ",".join(str(m.sid) for m in others)
            if standalone == "true":
                with pytest.raises(BadArgumentsError):
                    c.reconfig(joining=None, leaving=leaving, new_members=None)
                return
            data, _ = c.reconfig(joining=None, leaving=leaving, new_members=None)
            one = server_lines(data.decode())
            assert len(one) == 1 and one[0].startswith("server.%d=" % leader.sid), data
        finally:
            c.stop()
            c.close()
        w.write([leader], 5)
        assert leader.mode() == "leader", leader.srvr()
        c = kazoo(leader.hosts)
        try:
            data, _ = reconfig_retrying(c, joining=",".join(lines), leaving=None, new_members=None)
            assert len(server_lines(data.decode())) == 3, data
        finally:
            c.stop()
            c.close()
        w.write(ens.members, 5)
        ens.wait_converged()
        for m in ens.members:
            missing, conf = w.seen_on(m)
            assert len(server_lines(conf)) == 3, (m, conf)
            assert not missing, m


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_zoo_cfg_dynamic_next_at_restart(kind):
    """`zoo.cfg.dynamic.next` (a configuration seen proposed, not committed: sorted lines with
    its version) found at start-up is read as the last configuration seen and deleted: the
    member starts and follows; the next committed reconfig is activated everywhere and no
    member keeps a `.next` file after a commit. Side by side with ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 3, proxied=False, name="reconfig-next", extra_cfg=cfg, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader()
        f = [m for m in ens.members if m is not leader][0]
        c = kazoo(leader.hosts)
        try:
            data, _ = c.reconfig(joining=None, leaving=None, new_members=",".join(own_line(m) for m in ens.members))
        finally:
            c.stop()
            c.close()
        v1 = data.decode().splitlines()[-1][len("version="):]
        for m in ens.members:
            h.wait_until(lambda: v1 in dynamic_files(m) and "next" not in dynamic_files(m), 30, 0.2,
                         "%r's dynamic file %s, no .next" % (m, v1))
        f.stop()
        seen = "%x" % (int(v1, 16) + 1)
        (f.workdir / "zoo.cfg.dynamic.next").write_text("\n".join(sorted(server_lines(data.decode())) + ["version=" + seen]))
        w = Writes("/next")
        w.write([leader], 3)
        f.start()
        f.wait_serving()
        # Read at start-up, then deleted (QuorumPeerMain's setQuorumVerifier); kept in memory.
        assert "next" not in dynamic_files(f), dynamic_files(f)
        c = kazoo(leader.hosts)
        try:
            data2, _ = c.reconfig(joining=None, leaving=None, new_members=",".join(own_line(m) for m in ens.members))
        finally:
            c.stop()
            c.close()
        v2 = data2.decode().splitlines()[-1][len("version="):]
        assert int(v2, 16) > int(seen, 16)
        for m in ens.members:
            h.wait_until(lambda: v2 in dynamic_files(m) and "next" not in dynamic_files(m), 30, 0.2,
                         "%r's dynamic file %s, no .next" % (m, v2))
        w.write(ens.members, 3)
        ens.wait_converged()
        for m in ens.members:
            assert not w.missing_on(m), m


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_zoo_cfg_dynamic_next_deleted_without_reconfig(kind):
    """Without `reconfigEnabled` (the ensemble in the static file), a `zoo.cfg.dynamic.next`
    found at start-up is not read but still deleted: QuorumPeerMain's setQuorumVerifier deletes
    it at the start of every ensemble member started from a file. Side by side with ZooKeeper
    3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    with ze.Ensemble(kind, 3, proxied=False, name="next-noreconfig") as ens:
        for m in ens.members:
            m.wait_serving()
        f = ens.members[0]
        f.stop()
        nxt = f.workdir / "zoo.cfg.dynamic.next"
        nxt.write_text("server.1=127.0.0.1:1:2:participant\nversion=100000001\n")
        f.start()
        f.wait_serving()
        assert not nxt.exists(), "zoo.cfg.dynamic.next kept at start-up"


@pytest.mark.parametrize("kind", ["zookeeper", "rzk"])
def test_a_removed_server_rejoins(kind):
    """A 4-server ensemble: a follower removed by reconfig keeps running (a non-voting
    participant following the leader); the leader is then stopped, the three voters left
    elect another, and the removed server finds the new leader by election (the voters
    answer its notifications) and follows it; added back by reconfig, it votes again and
    serves every acknowledged write, those made while it was out included. Side by side
    with ZooKeeper 3.8."""
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    cfg = {"reconfigEnabled": "true", "skipACL": "yes"}
    with ze.Ensemble(kind, 4, proxied=False, name="reconfig-rejoin", extra_cfg=cfg, client_addresses=True) as ens:
        for m in ens.members:
            m.wait_serving()
        leader = ens.wait_for_leader()
        out = [m for m in ens.members if m is not leader][0]
        line = own_line(out)
        w = Writes("/rejoin")
        w.write(ens.members, 3)
        c = kazoo(leader.hosts)
        try:
            data, _ = c.reconfig(joining=None, leaving=str(out.sid), new_members=None)
            assert "server.%d=" % out.sid not in data.decode(), data
        finally:
            c.stop()
            c.close()
        voters = [m for m in ens.members if m is not out]
        w.write(voters, 3)
        leader.stop()
        rest = [m for m in voters if m is not leader]
        new = ens.wait_for_leader(members=rest)
        w.write(rest, 3)
        # The removed server follows the new leader without a vote.
        h.wait_until(lambda: out.mode() == "follower" and not w.missing_on(out), 60, 0.3,
                     "the removed server following the new leader")
        c = kazoo(new.hosts)
        try:
            data, _ = reconfig_retrying(c, joining=line, leaving=None, new_members=None)
            assert "server.%d=" % out.sid in data.decode(), data
        finally:
            c.stop()
            c.close()
        w.write(rest + [out], 3)
        ens.wait_converged(members=rest + [out])
        for m in rest + [out]:
            missing, conf = w.seen_on(m)
            assert "server.%d=" % out.sid in conf, (m, conf)
            assert not missing, m
