"""SASL GSSAPI (Kerberos) between servers, as ZooKeeper 3.8 configures it: a throw-away MIT KDC
(tests/krb5kdc.py), `quorum.auth.enableSasl` / `learnerRequireSasl` / `serverRequireSasl`, a
JAAS `QuorumServer` section whose Krb5LoginModule is the service principal zkquorum/localhost
(acceptor) and a `QuorumLearner` section whose Krb5LoginModule is learner/localhost
(initiator), `quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST` (`_HOST`: the server.N
host connected to, here localhost). An rzk ensemble elects and replicates; a learner whose
principal names a host that is not a server.N host is refused (SaslQuorumServerCallbackHandler's
authorization), one whose keytab lacks its key cannot log in; a mixed ensemble with Apache ZooKeeper members elects, replicates, fails over.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import krb5kdc
import test_quorum_security as qs
import zkensemble as ze
import zkharness as h

REALM = krb5kdc.REALM

pytestmark = [
    pytest.mark.skipif(os.environ.get("RZK_ENSEMBLE", "1") != "1", reason="RZK_ENSEMBLE=0"),
    pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not found at %s" % h.rzk_binary()),
    pytest.mark.skipif(not krb5kdc.available(), reason="MIT krb5 KDC tools not installed"),
]

CFG = dict(qs.SASL_CFG, **{"quorum.auth.kerberos.servicePrincipal": "zkquorum/_HOST"})


class Realm:
    def __init__(self, kdc: krb5kdc.Kdc):
        self.kdc = kdc
        self.keytabs = {p: kdc.principal(p) for p in ["zkquorum/localhost", "learner/localhost", "learner/otherhost"]}
        # the KDC answers (kinit retries until it does)
        kdc.kinit("learner/localhost", self.keytabs["learner/localhost"])

    def jaas(self, d: Path, name: str, learner: str, learner_keytab: str = "") -> str:
        module = "  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n" \
                 '  keyTab="%s"\n  storeKey=true\n  useTicketCache=false\n  principal="%s@%s";\n'
        p = d / name
        p.write_text("QuorumServer {\n%s};\nQuorumLearner {\n%s};\n" % (
            module % (self.keytabs["zkquorum/localhost"], "zkquorum/localhost", REALM),
            module % (self.keytabs[learner_keytab or learner], learner, REALM)))
        return str(p)

    def env(self):
        return {"KRB5_CONFIG": str(self.kdc.krb5_conf), "KRB5CCNAME": "FILE:%s" % (self.kdc.dir / "no-ccache")}


@pytest.fixture(scope="module")
def realm():
    kdc = krb5kdc.Kdc(h.make_workdir("qkdc"))
    try:
        kdc.start()
        yield Realm(kdc)
    finally:
        kdc.cleanup()


def test_rzk_ensemble_with_kerberos_between_servers(realm, tmp_path):
    good = realm.jaas(tmp_path, "good.conf", "learner/localhost")
    other = realm.jaas(tmp_path, "other.conf", "learner/otherhost")
    with ze.Ensemble("rzk", 3, proxied=False, name="qkrb", server_host="localhost", env=realm.env(),
                     extra_cfg=dict(CFG, **{"java.security.auth.login.config": good})) as ens:
        leader = ens.wait_for_leader()
        qs.write_on(ens[1], "/krb/a", b"1")
        qs.read_everywhere(ens.members, {"/krb/a": b"1"})
        log = leader.log_text()
        assert "Successfully completed the authentication using SASL" in log, leader.log_tail()
        assert "learner/localhost@%s" % REALM in log, leader.log_tail()
        assert "GSSAPI as learner/localhost@%s to zkquorum/_HOST@%s" % (REALM, REALM) in log, leader.log_tail()
        # A learner whose principal names a host that is no server's: refused by the others.
        f = [m for m in ens.members if m is not leader][0]
        qs.restart(ens, f, {"java.security.auth.login.config": other})
        qs.not_joining(f, 3.0)
        others = [m for m in ens.members if m is not f]
        assert any("otherhost is not authorized to connect" in m.log_text() for m in others), ens.log_tails()
        # A learner whose keytab does not hold its principal's key cannot log in at all.
        wrong_key = realm.jaas(tmp_path, "wrongkey.conf", "learner/localhost", learner_keytab="learner/otherhost")
        qs.restart(ens, f, {"java.security.auth.login.config": wrong_key})
        qs.not_joining(f, 3.0)
        assert "Kerberos login to zkquorum/localhost@%s" % REALM in f.log_text(), f.log_tail()
        qs.restart(ens, f, {"java.security.auth.login.config": good})
        ens.wait_for_leader()
        qs.read_everywhere(ens.members, {"/krb/a": b"1"})


@qs.needs_zookeeper
def test_mixed_ensemble_with_kerberos_between_servers(realm, tmp_path):
    good = realm.jaas(tmp_path, "jaas.conf", "learner/localhost")
    jvm = ze.ZK_ENSEMBLE_JVM + ["-Djava.security.auth.login.config=%s" % good,
                                "-Djava.security.krb5.conf=%s" % realm.kdc.krb5_conf]
    with ze.Ensemble([ze_kind for ze_kind in ("zookeeper", "rzk", "zookeeper")], 3, proxied=False, name="qmixkrb",
                     server_host="localhost", zk_jvm=jvm, env=realm.env(),
                     extra_cfg=dict(CFG, **{"java.security.auth.login.config": good})) as ens:
        qs.mixed_failover(ens)
        assert "Successfully completed the authentication using SASL" in ens[2].log_text(), ens[2].log_tail()
        zk = ens[1].log_text() + ens[3].log_text()
        assert "QuorumLearner will use GSSAPI as SASL mechanism" in zk, ens.log_tails()
        # ZooKeeper authorized a learner (rzk's or the other ZooKeeper's) by its principal.
        assert "Successfully authenticated learner: authenticationID=learner/localhost@%s" % REALM in zk, ens.log_tails()
