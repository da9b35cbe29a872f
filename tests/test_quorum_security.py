"""Security between servers: TLS (`sslQuorum`, `portUnification`, `ssl.quorum.*`) and SASL
DIGEST-MD5 (`quorum.auth.*`, the QuorumServer / QuorumLearner JAAS sections), real
processes on 127.0.0.1 (zkensemble.py, unproxied: the election proxies rewrite bytes that
TLS encrypts), every process stopped on exit. Certificates come from tlspki.py (the server
certificate names 127.0.0.1, so ZooKeeper's hostname verification passes).

* an rzk ensemble with sslQuorum elects and replicates; a member restarted without TLS is
  refused (it never joins) while the others serve, and joins once it speaks TLS again;
* a rolling move of a plaintext rzk ensemble to TLS, as ZooKeeper documents it
  (portUnification on, then sslQuorum on, then portUnification off), one member at a time,
  with a write after every restart, and every write on every member at the end;
* quorum SASL: an rzk ensemble requiring it; a member with a wrong password never joins;
* mixed ensembles of rzk and Apache ZooKeeper 3.8 members over TLS and over SASL: an rzk
  leader over a ZooKeeper follower, then (the leader killed) a ZooKeeper leader over an rzk
  follower, writes through every member read back on every member;
* the quorum settings rzk cannot honour (or that lack what they need) stop start-up naming
  the key.

RZK_ENSEMBLE=0 skips the file, as the other ensemble tests.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Dict

import pytest

import tlspki
import zkensemble as ze
import zkharness as h
from tlspki import PASSWORD

ZK, RZK = "zookeeper", "rzk"

pytestmark = [
    pytest.mark.skipif(os.environ.get("RZK_ENSEMBLE", "1") != "1", reason="RZK_ENSEMBLE=0"),
    pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not found at %s" % h.rzk_binary()),
    pytest.mark.skipif(not tlspki.have_tools(), reason="openssl and keytool (default-jre-headless) are needed"),
]

needs_zookeeper = pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed")

# ZooKeeper's TLS quorum ports (UnifiedServerSocket) tell TLS by netty's SslHandler, whose
# codec zookeeper.jar's manifest does not list: without it the election listener thread
# dies silently (a NoClassDefFoundError inside an executor) and the server never joins.
ZK_TLS_JARS = ["/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tlspki.Pki(tmp_path_factory.mktemp("qpki"))


def tls_stores(pki) -> Dict[str, str]:
    return {
        "ssl.quorum.keyStore.location": pki.p("server.p12"),
        "ssl.quorum.keyStore.password": PASSWORD,
        "ssl.quorum.trustStore.location": pki.p("trust.p12"),
        "ssl.quorum.trustStore.password": PASSWORD,
    }


def tls_cfg(pki) -> Dict[str, str]:
    return dict(tls_stores(pki), sslQuorum="true")


SASL_CFG = {
    "quorum.auth.enableSasl": "true",
    "quorum.auth.learnerRequireSasl": "true",
    "quorum.auth.serverRequireSasl": "true",
}


def jaas_file(d: Path, name: str, learner_password: str) -> str:
    p = d / name
    p.write_text(
        "QuorumServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_zkpeer=\"peersecret\";\n};\n"
        "QuorumLearner {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        "  username=\"zkpeer\"\n  password=\"%s\";\n};\n" % learner_password
    )
    return str(p)


# A kazoo session that retries forever (members come and go) and its quiet close.
from test_ensemble import close, kazoo  # noqa: E402


def write_on(m: ze.Member, path: str, value: bytes) -> None:
    c = kazoo(m.hosts)
    try:
        c.create(path, value, makepath=True)
    finally:
        close(c)


def read_everywhere(members, paths: Dict[str, bytes]) -> None:
    for m in members:
        c = kazoo(m.hosts)
        try:
            c.sync("/")
            for p, v in paths.items():
                got, _ = c.get(p)
                assert got == v, "%r: %s = %r, expected %r" % (m, p, got, v)
        finally:
            close(c)


def restart(ens: ze.Ensemble, m: ze.Member, cfg: Dict[str, str], drop=()) -> None:
    c = ens.member_cfg.setdefault(m.sid, {})
    c.update(cfg)
    for k in drop:
        c.pop(k, None)
    m.stop()
    m.start()


def not_joining(m: ze.Member, seconds: float) -> None:
    """m stays out of the ensemble for `seconds` (it never serves as leader or follower)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert m.mode() not in ("leader", "follower"), "%r joined: %s" % (m, m.log_tail())
        time.sleep(0.2)


def test_rzk_ensemble_over_tls_refuses_a_plaintext_member(pki):
    with ze.Ensemble(RZK, 3, proxied=False, extra_cfg=tls_cfg(pki), name="qtls") as ens:
        leader = ens.wait_for_leader()
        write_on(ens[1], "/tls/a", b"1")
        read_everywhere(ens.members, {"/tls/a": b"1"})
        # A member that speaks plaintext is refused by the others and never joins.
        f = [m for m in ens.members if m is not leader][0]
        restart(ens, f, {"sslQuorum": "false"})
        not_joining(f, 3.0)
        others = [m for m in ens.members if m is not f]
        ens.wait_for_leader(members=others)
        assert any("TLS handshake failed" in m.log_text() for m in others), ens.log_tails()
        write_on(others[0], "/tls/b", b"2")
        # Back with TLS, it catches up.
        restart(ens, f, tls_cfg(pki))
        ens.wait_for_leader()
        read_everywhere(ens.members, {"/tls/a": b"1", "/tls/b": b"2"})


def test_rolling_move_to_tls_with_port_unification(pki):
    """With Apache ZooKeeper installed, member 2 is a ZooKeeper server: its unified ports
    take rzk's plaintext and TLS, and rzk's take its."""
    stores = tls_stores(pki)
    kinds = [RZK, ZK, RZK] if h.zookeeper_available() else [RZK] * 3
    with ze.Ensemble(kinds, 3, proxied=False, name="qroll", zk_extra_jars=ZK_TLS_JARS) as ens:
        ens.wait_for_leader()
        written: Dict[str, bytes] = {}
        n = 0
        for step, cfg, drop in [
            ("unify", dict(stores, portUnification="true"), ()),
            ("tls", dict(stores, portUnification="true", sslQuorum="true"), ()),
            ("tls-only", dict(stores, sslQuorum="true"), ("portUnification",)),
        ]:
            # followers first, the leader last, as an operator would
            leader = ens.wait_for_leader()
            order = [m for m in ens.members if m is not leader] + [leader]
            for m in order:
                restart(ens, m, cfg, drop)
                ens.wait_for_leader()
                n += 1
                path = "/roll/%s-s%d" % (step, m.sid)
                write_on(m, path, b"%d" % n)
                written[path] = b"%d" % n
        ens.wait_converged()
        read_everywhere(ens.members, written)
        # At the end no port takes plaintext: every rzk member logs TLS only.
        for m in ens.members:
            if m.kind == RZK:
                assert "TLS only" in m.log_text().split("=== start")[-1], m.log_tail()


def test_rzk_quorum_sasl_right_and_wrong_password(tmp_path):
    good = jaas_file(tmp_path, "good.conf", "peersecret")
    bad = jaas_file(tmp_path, "bad.conf", "wrong")
    with ze.Ensemble(RZK, 3, proxied=False, name="qsasl",
                     extra_cfg=dict(SASL_CFG, **{"java.security.auth.login.config": good})) as ens:
        leader = ens.wait_for_leader()
        write_on(ens[2], "/sasl/a", b"1")
        read_everywhere(ens.members, {"/sasl/a": b"1"})
        assert "Successfully completed the authentication using SASL" in leader.log_text()
        f = [m for m in ens.members if m is not leader][0]
        restart(ens, f, {"java.security.auth.login.config": bad})
        not_joining(f, 3.0)
        others = [m for m in ens.members if m is not f]
        assert any("Mismatched response" in m.log_text() for m in others), ens.log_tails()
        restart(ens, f, {"java.security.auth.login.config": good})
        ens.wait_for_leader()
        read_everywhere(ens.members, {"/sasl/a": b"1"})


def mixed_failover(ens: ze.Ensemble) -> None:
    """kinds [rzk, zookeeper, rzk] or [zookeeper, rzk, zookeeper]: the highest sid leads
    over a follower of the other kind; killed, the middle one (the other kind) leads."""
    leader = ens.wait_for_leader()
    for m in ens.members:
        write_on(m, "/mixed/s%d" % m.sid, m.kind.encode())
    paths = {"/mixed/s%d" % m.sid: m.kind.encode() for m in ens.members}
    read_everywhere(ens.members, paths)
    leader.kill9()
    rest = [m for m in ens.members if m is not leader]
    new = ens.wait_for_leader(members=rest)
    assert new.kind != leader.kind or len({m.kind for m in rest}) == 1, (leader, new)
    write_on(rest[0], "/mixed/after", b"x")
    paths["/mixed/after"] = b"x"
    read_everywhere(rest, paths)




@needs_zookeeper
def test_mixed_ensemble_over_tls(pki):
    with ze.Ensemble([RZK, ZK, RZK], 3, proxied=False, extra_cfg=tls_cfg(pki), name="qmixtls", zk_extra_jars=ZK_TLS_JARS) as ens:
        mixed_failover(ens)
        logs = {m.sid: m.log_text() for m in ens.members}
        assert "SSL handshake complete" in logs[2] or "TLS" in logs[2], logs[2][-3000:]


@needs_zookeeper
def test_mixed_ensemble_over_sasl(tmp_path):
    good = jaas_file(tmp_path, "jaas.conf", "peersecret")
    jvm = ze.ZK_ENSEMBLE_JVM + ["-Djava.security.auth.login.config=%s" % good]
    with ze.Ensemble([ZK, RZK, ZK], 3, proxied=False, name="qmixsasl", zk_jvm=jvm,
                     extra_cfg=SASL_CFG, env={"SERVER_JVMFLAGS": "-Djava.security.auth.login.config=%s" % good}) as ens:
        mixed_failover(ens)
        assert "Successfully completed the authentication using SASL" in ens[2].log_text()


def rzk_start_error(tmp_path: Path, lines) -> str:
    """rzk's output when it refuses to start as member 1 of a 3-server ensemble."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "myid").write_text("1\n")
    ports = [h.free_port() for _ in range(7)]
    servers = ["server.%d=127.0.0.1:%d:%d" % (i + 1, ports[2 * i + 1], ports[2 * i + 2]) for i in range(3)]
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("\n".join(["tickTime=500", "initLimit=10", "syncLimit=5", "dataDir=%s" % data, "clientPort=%d" % ports[0],
                              "clientPortAddress=127.0.0.1", "admin.enableServer=false"] + servers + list(lines)) + "\n")
    r = subprocess.run([str(h.rzk_binary()), "server", "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=20)
    out = r.stdout.decode(errors="replace")
    assert r.returncode != 0, out
    return out


def test_quorum_settings_rzk_cannot_honour_stop_the_start(tmp_path, pki):
    stores = ["%s=%s" % kv for kv in tls_stores(pki).items()]
    krb = tmp_path / "krb.conf"
    krb.write_text("QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_a=\"b\"; };\n"
                   "QuorumLearner { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };\n")
    for lines, key in [
        (["sslQuorum=true"], "ssl.quorum.keyStore.location"),
        (["portUnification=true", "ssl.quorum.keyStore.location=%s" % pki.p("server.p12")], "ssl.quorum.trustStore.location"),
        (["sslQuorum=true"] + stores + ["ssl.quorum.keyStore.password=wrong"], "ssl.quorum.keyStore.location"),
        (["sslQuorum=true"] + stores + ["ssl.quorum.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "ssl.quorum.ciphersuites"),
        (["sslQuorum=true"] + stores + ["ssl.quorum.crl=true"], "ssl.quorum.crl"),
        (["quorum.auth.learnerRequireSasl=true"], "quorum.auth.learnerRequireSasl"),
        (["quorum.auth.enableSasl=true"], "quorum.auth.enableSasl"),
        (["quorum.auth.enableSasl=true", "java.security.auth.login.config=%s" % krb], "principal is required"),
        (["quorum.auth.kerberos.servicePrincipal=zkquorum/localhost@REALM"], "quorum.auth.kerberos.servicePrincipal"),
    ]:
        out = rzk_start_error(tmp_path, lines)
        assert key in out, (lines, out)
