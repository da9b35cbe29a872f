"""Read-only mode and local sessions, rzk and Apache ZooKeeper 3.8 side by side.

Each test runs the same kazoo steps against a 3-member ensemble of each kind and compares
what the client saw (values, exception classes, connection states, four-letter words).

- Read-only mode (`readonlymode.enabled`, a JVM system property for ZooKeeper; `-D` for
  rzk): a member cut off from its quorum serves reads to canBeReadOnly clients on local
  sessions, refuses writes with NotReadOnly and clients that are not read-only, answers
  `isro` with `ro`, and serves read-write again when the quorum is back.
  ZooKeeper 3.8.1+ and 3.9 (whose behaviour rzk follows) create no global session in
  read-only mode, so these ensembles run with `localSessionsEnabled=true`, where 3.8.0
  (Debian's) and 3.9 agree.
- Local sessions (`localSessionsEnabled`): a session is the connected member's own (no
  createSession txn, not on the leader), an ephemeral create upgrades it to a global one
  (`localSessionsUpgradingEnabled`) or fails with EphemeralOnLocalSession, and a local
  session taken to another member is expired there.
"""

import socket
import struct
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError
from kazoo.protocol.states import KazooState, KeeperState

import zkensemble as ze
import zkharness as h

KINDS = ["rzk", "zookeeper"]
RO_FLAG = "-Dreadonlymode.enabled=true"


def ensemble(kind, name, extra_cfg, read_only=False):
    kw = {}
    if read_only:
        kw["zk_jvm"] = ze.ZK_ENSEMBLE_JVM + [RO_FLAG]
        kw["env"] = {"SERVER_JVMFLAGS": RO_FLAG}
    return ze.Ensemble(kind, 3, name=name, extra_cfg=extra_cfg, **kw)


def client(hosts, **kw):
    kz = KazooClient(hosts=hosts, timeout=6.0, connection_retry={"max_tries": -1, "delay": 0.2, "max_delay": 1.0}, **kw)
    return kz


def stop(kz):
    try:
        kz.stop()
        kz.close()
    except Exception:
        pass


def outcome(fn):
    """The value, or the class name of the exception."""
    try:
        return ("ok", fn())
    except KazooException as e:
        return ("error", type(e).__name__)


def mntr(m):
    rows = {}
    for line in h.four_letter(m.client_port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        rows[k] = v
    return rows


def reconnect(m, session, passwd):
    """A ConnectRequest for an existing session, sent to member m as a client moving to it
    would: (negotiated timeout > 0, the session id answered)."""
    with socket.create_connection(("127.0.0.1", m.client_port), timeout=10) as sock:
        req = h.Jute().int(0).long(0).int(6000).long(session).buffer(passwd).bool(False).bytes()
        sock.sendall(struct.pack(">i", len(req)) + req)
        head = sock.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return "closed"
        n = struct.unpack(">i", head)[0]
        body = sock.recv(n, socket.MSG_WAITALL)
        _, timeout, sid = struct.unpack(">iiq", body[:16])
        return (timeout > 0, sid == session)


def leave_one_read_only(ens, leader, data):
    """Writes /ro/data, then kills every member but one follower and waits until that one
    serves read-only; returns it."""
    kz = client(ens.hosts)
    kz.start(timeout=30)
    try:
        kz.ensure_path("/ro")
        kz.create("/ro/data", data)
    finally:
        stop(kz)
    alone = next(m for m in ens.members if m is not leader)
    for m in ens.members:
        if m is not alone:
            m.kill9()
    h.wait_until(lambda: h.four_letter(alone.client_port, "isro") == "ro", 30, 0.2, "s%d read-only" % alone.sid)
    return alone


def read_only_scenario(kind):
    seen = {}
    with ensemble(kind, "ro", {"localSessionsEnabled": "true"}, read_only=True) as ens:
        leader = ens.wait_for_leader()
        seen["isro_with_quorum"] = h.four_letter(leader.client_port, "isro")
        alone = leave_one_read_only(ens, leader, b"before the partition")
        seen["isro_alone"] = h.four_letter(alone.client_port, "isro")
        seen["mode_alone"] = alone.mode()
        seen["state_alone"] = mntr(alone).get("zk_server_state")
        states = []
        ro = client(alone.hosts, read_only=True)
        ro.add_listener(lambda s: states.append(s))
        ro.start(timeout=30)
        try:
            seen["client_state"] = str(ro.client_state)
            seen["read"] = outcome(lambda: ro.get("/ro/data")[0])
            seen["children"] = outcome(lambda: sorted(ro.get_children("/ro")))
            seen["exists_missing"] = outcome(lambda: ro.exists("/ro/none"))
            seen["create"] = outcome(lambda: ro.create("/ro/new", b"x"))
            seen["set"] = outcome(lambda: ro.set("/ro/data", b"y"))
            seen["delete"] = outcome(lambda: ro.delete("/ro/data"))
            seen["sync"] = outcome(lambda: ro.sync("/ro"))

            def multi():
                t = ro.transaction()
                t.create("/ro/multi", b"z")
                return t.commit()

            seen["multi"] = outcome(multi)
            seen["local_sessions_alone"] = mntr(alone).get("zk_local_sessions")
            # a client that is not read-only gets no session from a read-only member
            rw = client(alone.hosts, read_only=False)
            try:
                rw.start(timeout=4)
                seen["rw_client_connects"] = True
            except Exception as e:
                seen["rw_client_connects"] = type(e).__name__
            finally:
                stop(rw)
            # the quorum comes back: the member serves read-write; the read-only client
            # finds it (kazoo looks for a read-write server) and can write
            for m in ens.members:
                if m is not alone:
                    m.start()
            ens.wait_for_leader(90)
            h.wait_until(lambda: ro.client_state == KeeperState.CONNECTED, 90, 0.2, "the read-only client back read-write")
            seen["isro_after"] = h.four_letter(alone.client_port, "isro")

            def write_after():
                try:
                    ro.create("/ro/after", b"w")
                except NodeExistsError:
                    pass
                except KazooException:
                    return None
                return ro.get("/ro/after")[0]

            seen["write_after"] = h.wait_until(write_after, 30, 0.5, "a write after the quorum returned")
        finally:
            stop(ro)
        seen["lost_session"] = KazooState.LOST in states
    return seen


def test_read_only_member_when_quorum_is_lost():
    got = {kind: read_only_scenario(kind) for kind in KINDS}
    rz, zk = got["rzk"], got["zookeeper"]
    assert zk["isro_alone"] == "ro", zk
    assert zk["read"] == ("ok", b"before the partition"), zk
    assert zk["create"] == ("error", "NotReadOnlyCallError"), zk
    assert rz == zk, "rzk: %s\nZooKeeper: %s" % (rz, zk)


def local_sessions_scenario(kind, upgrading):
    seen = {}
    cfg = {"localSessionsEnabled": "true", "localSessionsUpgradingEnabled": "true" if upgrading else "false"}
    with ensemble(kind, "local", cfg) as ens:
        leader = ens.wait_for_leader()
        follower = next(m for m in ens.members if m is not leader)
        other = next(m for m in ens.members if m is not leader and m is not follower)
        base_global = int(mntr(leader)["zk_global_sessions"])
        kz = client(follower.hosts)
        kz.start(timeout=30)
        try:
            seen["follower_local"] = mntr(follower).get("zk_local_sessions")
            seen["leader_global_delta"] = int(mntr(leader)["zk_global_sessions"]) - base_global
            seen["persistent"] = outcome(lambda: kz.create("/local-%s" % upgrading, b"p"))
            seen["read_back"] = outcome(lambda: kz.get("/local-%s" % upgrading)[0])
            seen["ephemeral"] = outcome(lambda: kz.create("/eph-%s" % upgrading, b"e", ephemeral=True))
            if seen["ephemeral"][0] == "ok":
                stat = kz.exists("/eph-%s" % upgrading)
                seen["owner_is_session"] = stat.ephemeralOwner == kz.client_id[0]
            time.sleep(0.5)
            seen["follower_local_after"] = mntr(follower).get("zk_local_sessions")
            seen["leader_global_delta_after"] = int(mntr(leader)["zk_global_sessions"]) - base_global
            session, passwd = kz.client_id
        finally:
            stop(kz)
        # a local session of the follower, taken to the other member (never upgraded): the
        # other member has never heard of it
        kz = client(follower.hosts)
        kz.start(timeout=30)
        try:
            session, passwd = kz.client_id
            seen["moved"] = reconnect(other, session, passwd)
            seen["back_home"] = reconnect(follower, session, passwd)
        finally:
            stop(kz)
    return seen


@pytest.mark.parametrize("upgrading", [True, False], ids=["upgrading", "no-upgrading"])
def test_local_sessions(upgrading):
    got = {kind: local_sessions_scenario(kind, upgrading) for kind in KINDS}
    rz, zk = got["rzk"], got["zookeeper"]
    assert zk["follower_local"] == "1", zk
    assert zk["leader_global_delta"] == 0, zk
    assert rz == zk, "rzk: %s\nZooKeeper: %s" % (rz, zk)


def test_clients_leave_a_read_only_server_for_a_read_write_one():
    """rzk cli -r and zkCli.sh -r (the Java client), connected to a read-only rzk member,
    read there, are refused writes, and once the quorum is back find a read-write server
    on their own (the Java client's pingRwServer) and write."""
    from test_cli import Pty

    with ensemble("rzk", "ro-cli", {"localSessionsEnabled": "true"}, read_only=True) as ens:
        alone = leave_one_read_only(ens, ens.wait_for_leader(), b"before")
        hosts = ",".join([alone.hosts] + [m.hosts for m in ens.members if m is not alone])
        shells = {
            "rzk cli": Pty([str(h.rzk_binary()), "cli", "-r", "-server", hosts]),
            "zkCli.sh": Pty([h.ZK_CLI, "-r", "-server", hosts]),
        }
        said = {}
        try:
            for name, sh in shells.items():
                me = name.split()[0]
                sh.expect("WatchedEvent state:ConnectedReadOnly type:None path:null", timeout=60)
                if name == "rzk cli":
                    sh.expect(r"\(CONNECTEDREADONLY\) \d+\] ")  # the line editor is ready
                else:
                    time.sleep(1)  # zkCli.sh without JLine prints no prompt
                sh.send("get /ro/data\r")
                sh.expect("before")
                sh.send("create /ro/x-%s\r" % me)
                while True:  # the answer's line (not the echo of the command)
                    line = sh.expect(r"[^\n]*/ro/x-%s[^\n]*\n" % me).splitlines()[-1]
                    # the echo may come split by the line editor ("creat" / "e /ro/x-...")
                    if "create " not in line and not ("create /ro/x-%s" % me).endswith(line.strip()):
                        break
                said[name] = line.replace("/ro/x-%s" % me, "/ro/x").strip()
            assert said["rzk cli"] == said["zkCli.sh"], said
            for m in ens.members:
                if m is not alone:
                    m.start()
            ens.wait_for_leader(90)
            for name, sh in shells.items():
                me = name.split()[0]
                # the client finds the read-write server on its own
                sh.expect("WatchedEvent state:SyncConnected type:None path:null", timeout=90)
                time.sleep(1)
                sh.send("create /ro/after-%s v\r" % me)
                sh.expect("Created /ro/after-%s" % me, timeout=30)
        finally:
            for sh in shells.values():
                sh.close()
