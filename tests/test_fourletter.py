"""Four letter words over a raw socket: the reply must have the shape Apache
ZooKeeper 3.8 gives (same lines / keys, values may differ). Each test runs
against both servers; the keys are taken from a live Apache ZooKeeper
(`zk_server`) where they are not fixed here.
"""

from __future__ import annotations

import re
import socket

import pytest
from kazoo.client import KazooClient

import zkharness as h

pytestmark = pytest.mark.timeout(120)

SRVR_KEYS = ["Zookeeper version", "Latency min/avg/max", "Received", "Sent", "Connections", "Outstanding",
             "Zxid", "Mode", "Node count"]
CONF_KEYS = ["clientPort", "secureClientPort", "dataDir", "dataDirSize", "dataLogDir", "dataLogSize", "tickTime",
             "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout", "clientPortListenBacklog", "serverId"]
ENVI_KEYS = ["zookeeper.version", "host.name", "java.version", "java.vendor", "java.home", "java.class.path",
             "java.library.path", "java.io.tmpdir", "java.compiler", "os.name", "os.arch", "os.version",
             "user.name", "user.home", "user.dir", "os.memory.free", "os.memory.max", "os.memory.total"]
CNXN_SHORT = r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+\)"
CNXN_LONG = (r" /127\.0\.0\.1:\d+\[1\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x[0-9a-f]+,lop=\w+,est=\d+,to=\d+,"
             r"lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\d+,llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+\)")
MNTR_SUMMARY = re.compile(r"^zk_(avg|min|max|cnt|sum|p50|p95|p99|p999)_")


def flw(server, cmd):
    return h.four_letter(server.port, cmd, timeout=10.0)


def kv_lines(text, sep):
    out = []
    for line in text.splitlines():
        if not line:
            continue
        k, _, v = line.partition(sep)
        out.append((k, v))
    return out


def test_ruok(server):
    assert flw(server, "ruok") == "imok"


def test_isro(server):
    assert flw(server, "isro") == "rw"


def _check_srvr_lines(lines, server):
    assert [k for k, _ in lines] == SRVR_KEYS, lines
    d = dict(lines)
    assert re.fullmatch(r" \d+/\d+(\.\d+)?/\d+", d["Latency min/avg/max"]), d
    for k in ("Received", "Sent", "Connections", "Outstanding", "Node count"):
        assert re.fullmatch(r" \d+", d[k]), (k, d[k])
    assert re.fullmatch(r" 0x[0-9a-f]+", d["Zxid"]), d
    assert d["Mode"] == " standalone"
    return d


def test_srvr(server):
    out = flw(server, "srvr")
    assert out.endswith("\n")
    _check_srvr_lines(kv_lines(out, ":"), server)


def test_srvr_fresh_server_values(new_server, server):
    """On a fresh server: zxid 0 and 'Node count: 5' (Apache counts the root
    twice: / and /zookeeper, /zookeeper/quota, /zookeeper/config + 1)."""
    s = new_server(server.kind)
    d = _check_srvr_lines(kv_lines(flw(s, "srvr"), ":"), s)
    assert d["Zxid"] == " 0x0"
    assert d["Node count"] == " 5"
    assert d["Outstanding"] == " 0"


def test_stat(server, kz):
    kz.ensure_path("/flw")
    out = flw(server, "stat")
    lines = out.split("\n")
    assert lines[0].startswith("Zookeeper version: "), out
    assert lines[1] == "Clients:", out
    i = 2
    while lines[i]:
        assert re.fullmatch(CNXN_SHORT, lines[i]), (lines[i], out)
        i += 1
    assert i >= 4, out  # kz's connection and this one
    _check_srvr_lines([("Zookeeper version", "")] + kv_lines("\n".join(lines[i + 1 :]), ":"), server)
    assert out.endswith("\n")


def test_conf(server):
    out = flw(server, "conf")
    kv = kv_lines(out, "=")
    assert [k for k, _ in kv] == CONF_KEYS, out
    d = dict(kv)
    assert d["clientPort"] == str(server.port)
    assert d["secureClientPort"] == "-1"
    assert d["tickTime"] == str(h.TICK_TIME)
    assert d["maxClientCnxns"] == "60"
    assert d["minSessionTimeout"] == str(h.MIN_SESSION_TIMEOUT)
    assert d["maxSessionTimeout"] == str(h.MAX_SESSION_TIMEOUT)
    assert d["clientPortListenBacklog"] == "-1"
    assert d["serverId"] == "0"
    for k in ("dataDirSize", "dataLogSize"):
        assert re.fullmatch(r"\d+", d[k]), (k, d[k])


def test_envi(server):
    out = flw(server, "envi")
    lines = out.splitlines()
    assert lines[0] == "Environment:", out
    keys = [l.partition("=")[0] for l in lines[1:]]
    assert keys == ENVI_KEYS, out


def test_mntr(server, zk_server, kz):
    kz.ensure_path("/mntr")
    kz.create("/mntr/e", ephemeral=True)
    out = flw(server, "mntr")
    ref = flw(zk_server, "mntr")
    for line in out.splitlines():
        assert re.fullmatch(r"zk_\w+\t.+", line), line
    keys = [l.split("\t")[0] for l in out.splitlines()]
    ref_keys = [l.split("\t")[0] for l in ref.splitlines()]
    # every non-summary key Apache ZooKeeper reports must be there; the
    # avg/min/max/cnt/sum/pNN summary families are not required
    missing = [k for k in ref_keys if not MNTR_SUMMARY.match(k) and k not in keys]
    assert not missing, "mntr keys missing: %s" % missing
    d = dict(l.split("\t", 1) for l in out.splitlines())
    assert d["zk_server_state"] == "standalone"
    assert keys[:2] == ["zk_version", "zk_server_state"]
    assert int(d["zk_ephemerals_count"]) >= 1
    assert int(d["zk_znode_count"]) >= 7
    assert int(d["zk_num_alive_connections"]) >= 2
    assert int(d["zk_global_sessions"]) >= 1


def test_cons(server, kz):
    kz.exists("/")
    out = flw(server, "cons")
    assert out.endswith("\n\n"), repr(out)
    lines = out.splitlines()[:-1] if out.splitlines()[-1] == "" else out.splitlines()
    lines = [l for l in lines if l]
    sid = "sid=0x%x," % kz.client_id[0]
    assert any(sid in l for l in lines), (sid, out)
    for l in lines:
        assert re.fullmatch(CNXN_SHORT, l) or re.fullmatch(CNXN_LONG, l), l


def test_wchs_wchc_wchp(server, new_server):
    s = new_server(server.kind)  # fresh: no other watchers
    assert flw(s, "wchs") == "0 connections watching 0 paths\nTotal watches:0\n"
    a = KazooClient(hosts=s.hosts, timeout=10.0)
    b = KazooClient(hosts=s.hosts, timeout=10.0)
    a.start(timeout=30)
    b.start(timeout=30)
    try:
        a.create("/w1", b"x")
        a.create("/w2")
        a.exists("/w1", watch=lambda e: None)
        a.get("/w2", watch=lambda e: None)
        a.get_children("/w2", watch=lambda e: None)  # child watches are not counted by wchs/wchc/wchp
        b.exists("/w1", watch=lambda e: None)
        assert flw(s, "wchs") == "2 connections watching 2 paths\nTotal watches:3\n"
        sa, sb = "0x%x" % a.client_id[0], "0x%x" % b.client_id[0]
        wchc = flw(s, "wchc")
        assert wchc.endswith("\n\n"), repr(wchc)
        blocks = {}
        cur = None
        for line in wchc.splitlines():
            if not line:
                continue
            if line.startswith("\t"):
                blocks[cur].add(line[1:])
            else:
                cur = line
                blocks[cur] = set()
        assert blocks == {sa: {"/w1", "/w2"}, sb: {"/w1"}}, wchc
        wchp = flw(s, "wchp")
        blocks = {}
        for line in wchp.splitlines():
            if not line:
                continue
            if line.startswith("\t"):
                blocks[cur].add(line[1:])
            else:
                cur = line
                blocks[cur] = set()
        assert blocks == {"/w1": {sa, sb}, "/w2": {sa}}, wchp
    finally:
        a.stop()
        b.stop()
        a.close()
        b.close()


def test_dump(server, kz):
    kz.ensure_path("/dump")
    kz.create("/dump/e", ephemeral=True)
    out = flw(server, "dump")
    assert out.startswith("SessionTracker dump:\nSession Sets ("), out
    assert "ephemeral nodes dump:\nSessions with Ephemerals (" in out, out
    assert "0x%x:\n" % kz.client_id[0] in out and "\t/dump/e\n" in out, out
    assert "Connections dump:\nConnections Sets (" in out, out


def test_dirs(server):
    out = flw(server, "dirs")
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", out), repr(out)


def test_four_letter_word_closes_connection(server):
    """The server writes the reply and closes; it does not wait for more."""
    with socket.create_connection(server.address, timeout=10) as s:
        s.sendall(b"ruok")
        data = b""
        while True:
            b = s.recv(100)
            if not b:
                break
            data += b
    assert data == b"imok"
