"""SASL GSSAPI (Kerberos) between clients and the server, side by side with Apache ZooKeeper
3.8: a throw-away MIT KDC (tests/krb5kdc.py), each server configured as ZooKeeper is (zoo.cfg
with authProvider.1=SASLAuthenticationProvider, a JAAS `Server` section with
Krb5LoginModule, principal zookeeper/localhost and its keytab), and the same steps against
both: kazoo's GSSAPI login (pure-sasl with the `kerberos` module, from a ticket cache), the
Java client (zkCli.sh with a JAAS `Client` section and a keytab), rzk cli, a raw connection
driving pure-sasl by hand (a malformed token, a ticket for another service), the `sasl` ACL
scheme, whoAmI, and kerberos.removeHostFromPrincipal / removeRealmFromPrincipal.
"""

from __future__ import annotations

import os

import pytest

import krb5kdc
import zkharness as h

KINDS = ["zookeeper", "rzk"]
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
AUTH_FAILED, NO_AUTH = -115, -101
REALM = krb5kdc.REALM

puresasl = pytest.importorskip("puresasl.client")
pytest.importorskip("kerberos")
if not krb5kdc.available():
    pytest.skip("MIT krb5 KDC tools not installed (krb5-kdc, krb5-admin-server, krb5-user)", allow_module_level=True)


class Realm:
    """The KDC, the server's keytab and the clients' keytabs and ticket caches."""

    def __init__(self, kdc: krb5kdc.Kdc):
        self.kdc = kdc
        self.server_keytab = kdc.principal("zookeeper/localhost")
        kdc.principal("zookeeper/otherhost")
        self.keytabs = {p: kdc.principal(p) for p in ["bob", "alice", "carol/client.example"]}
        self.ccaches = {p: kdc.kinit(p, kt) for p, kt in self.keytabs.items()}

    def server_jaas(self, path) -> str:
        path.write_text(
            "Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n"
            '  keyTab="%s"\n  storeKey=true\n  useTicketCache=false\n  principal="zookeeper/localhost@%s";\n};\n'
            % (self.server_keytab, REALM)
        )
        return str(path)

    def client_jaas(self, path, principal) -> str:
        path.write_text(
            "Client {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n"
            '  keyTab="%s"\n  storeKey=false\n  useTicketCache=false\n  principal="%s@%s";\n};\n'
            % (self.keytabs[principal], principal, REALM)
        )
        return str(path)

    def use(self, principal):
        """The ticket cache kazoo / pure-sasl (and rzk cli) log in from."""
        os.environ["KRB5CCNAME"] = "FILE:%s" % self.ccaches[principal]


@pytest.fixture(scope="module")
def realm():
    kdc = krb5kdc.Kdc(h.make_workdir("kdc"))
    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5CCNAME", "KRB5_KTNAME", "KRB5_CLIENT_KTNAME")}
    try:
        kdc.start()
        os.environ["KRB5_CONFIG"] = str(kdc.krb5_conf)
        for k in ("KRB5_KTNAME", "KRB5_CLIENT_KTNAME"):
            os.environ.pop(k, None)
        yield Realm(kdc)
    finally:
        kdc.cleanup()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class KrbZooKeeper(h.ZooKeeperServer):
    props: list = []

    def command(self):
        cmd = super().command()
        i = cmd.index("-cp")
        return cmd[:i] + self.props + cmd[i:]


class KrbRzk(h.RzkServer):
    """rzk takes the JAAS file as zkServer.sh passes it (SERVER_JVMFLAGS); its Kerberos
    library reads krb5.conf from KRB5_CONFIG (set by the realm fixture)."""

    props: list = []

    def env(self):
        e = super().env()
        e["SERVER_JVMFLAGS"] = "-Xmx512m " + " ".join(self.props)
        return e


def start(kind: str, realm: Realm, jaas: str, **cfg) -> h.Server:
    if kind == "rzk" and not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    cls = KrbZooKeeper if kind == "zookeeper" else KrbRzk
    s = cls(extra_cfg={k: str(v) for k, v in cfg.items()})
    s.props = ["-Djava.security.auth.login.config=%s" % jaas, "-Djava.security.krb5.conf=%s" % realm.kdc.krb5_conf]
    return s.start()


@pytest.fixture(scope="module")
def servers(realm, tmp_path_factory):
    jaas = realm.server_jaas(tmp_path_factory.mktemp("krbjaas") / "server.jaas")
    out = {}
    try:
        for kind in KINDS:
            out[kind] = start(kind, realm, jaas, **{"authProvider.1": SASL_PROVIDER, "superUser": "alice@" + REALM})
        yield out
    finally:
        for s in out.values():
            s.cleanup()


def both(servers, fn):
    out = {kind: fn(servers[kind]) for kind in KINDS}
    assert out["rzk"] == out["zookeeper"], out
    return out["rzk"]


def hosts(server) -> str:
    # The service principal is zookeeper/<host>: the clients must name the host.
    return "localhost:%d" % server.port


# ------------------------------------------------------------------ kazoo


def kazoo(server, start=True):
    from kazoo.client import KazooClient

    k = KazooClient(hosts(server), timeout=10, connection_retry={"max_tries": 1, "delay": 0.2},
                    sasl_options={"mechanism": "GSSAPI"})
    if start:
        k.start(timeout=10)
    return k


def whoami(k):
    from test_sasl import WhoAmI

    a = k.handler.async_result()
    k._call(WhoAmI(None), a)
    return sorted(a.get(timeout=10))


def test_kazoo_gssapi_login_whoami_and_acls(servers, realm):
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_acl

    def run(server):
        out = {}
        realm.use("bob")
        k = kazoo(server)
        try:
            out["bob"] = whoami(k)
            if k.exists("/krb"):
                k.delete("/krb")
            k.create("/krb", b"secret", acl=[make_acl("sasl", "bob@" + REALM, all=True)])
            out["bob-reads"] = k.get("/krb")[0]
        finally:
            k.stop()
        realm.use("carol/client.example")
        k = kazoo(server)
        try:
            out["carol"] = whoami(k)
            try:
                k.get("/krb")
                out["carol-reads"] = "read"
            except NoAuthError:
                out["carol-reads"] = "NoAuth"
        finally:
            k.stop()
        # zookeeper.superUser names a Kerberos principal: alice is super.
        realm.use("alice")
        k = kazoo(server)
        try:
            out["alice"] = whoami(k)
            out["alice-reads"] = k.get("/krb")[0]
        finally:
            k.stop()
        return out

    out = both(servers, run)
    assert out["bob"] == [("ip", "127.0.0.1"), ("sasl", "bob@" + REALM)], out
    assert out["bob-reads"] == b"secret"
    assert out["carol"] == [("ip", "127.0.0.1"), ("sasl", "carol/client.example@" + REALM)], out
    assert out["carol-reads"] == "NoAuth"
    assert out["alice"] == [("ip", "127.0.0.1"), ("sasl", "alice@" + REALM), ("super", "")], out
    assert out["alice-reads"] == b"secret"


# ------------------------------------------------------------------ raw connections


def sasl_step(s: h.RawSession, token: bytes):
    _, zxid, err, r = s.request(h.OP["sasl"], h.Jute().buffer(token).bytes())
    return err, zxid, r.buffer()


def closed_after(s: h.RawSession) -> bool:
    try:
        s.ping()
        return False
    except (h.ConnectionClosed, TimeoutError, OSError):
        return True


def raw(server) -> h.RawSession:
    return h.RawSession("127.0.0.1", server.port, timeout=10.0).connect()


def test_refused_tokens(servers, realm):
    """A malformed token, and a valid ticket for another service (zookeeper/otherhost, whose
    key the server does not have): AuthFailed with a null token, and that connection closed."""

    def run(server):
        out = {}
        s = raw(server)
        try:
            out["garbage"] = sasl_step(s, b"\x60\x03garbage-not-a-gss-token"), closed_after(s)
        finally:
            s.close()
        realm.use("bob")
        c = puresasl.SASLClient(host="otherhost", service="zookeeper", mechanism="GSSAPI")
        s = raw(server)
        try:
            out["other-service"] = sasl_step(s, c.process()), closed_after(s)
        finally:
            s.close()
        # A replayed first token (the same authenticator on a second connection) is refused.
        c = puresasl.SASLClient(host="localhost", service="zookeeper", mechanism="GSSAPI")
        first = c.process()
        replies = []
        for _ in range(2):
            s = raw(server)
            try:
                err, zxid, answer = sasl_step(s, first)
                replies.append((err, answer is None, closed_after(s)))
            finally:
                s.close()
        out["replay"] = replies
        # The whole exchange by hand: the server's last answer is OK with a null token.
        c = puresasl.SASLClient(host="localhost", service="zookeeper", mechanism="GSSAPI")
        s = raw(server)
        try:
            token, steps = c.process(), []
            while True:
                err, zxid, answer = sasl_step(s, token)
                steps.append((err, zxid, answer is None))
                if c.complete or err != 0:
                    break
                token = c.process(answer)
            out["exchange"] = steps
        finally:
            s.close()
        return out

    out = both(servers, run)
    assert out["garbage"] == ((AUTH_FAILED, 0, None), True), out
    assert out["other-service"] == ((AUTH_FAILED, 0, None), True), out
    assert out["replay"] == [(0, False, False), (AUTH_FAILED, True, True)], out
    assert out["exchange"] == [(0, 0, False), (0, 0, False), (0, 0, True)], out


# ------------------------------------------------------------------ the Java client and rzk cli


def zkcli(server, realm, jaas, *args):
    if not os.path.exists(h.ZK_CLI):
        pytest.skip("zkCli.sh not installed")
    env = dict(os.environ)
    env["CLIENT_JVMFLAGS"] = ("-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.security.auth.login.config=%s "
                              "-Djava.security.krb5.conf=%s" % (jaas, realm.kdc.krb5_conf))
    r = h.run_bounded([h.ZK_CLI, "-server", hosts(server)] + list(args), timeout=60, env=env)
    return h._dec(r.stdout) + h._dec(r.stderr)


def _facts(out: str):
    keep = []
    for l in (l.strip() for l in out.splitlines()):
        if l.startswith(("sasl", "ip", "super", "Insufficient permission", "KeeperErrorCode")) or l == "secret" \
                or "state:SaslAuthenticated" in l or "state:AuthFailed" in l:
            keep.append(l)
    return sorted(keep)


def test_java_client_kerberos_login(servers, realm, tmp_path):
    from kazoo.security import make_acl

    bob = realm.client_jaas(tmp_path / "bob.jaas", "bob")
    carol = realm.client_jaas(tmp_path / "carol.jaas", "carol/client.example")

    def run(server):
        realm.use("bob")
        k = kazoo(server)
        try:
            if k.exists("/krb-cli"):
                k.delete("/krb-cli")
            k.create("/krb-cli", b"secret", acl=[make_acl("sasl", "bob@" + REALM, all=True)])
        finally:
            k.stop()
        return {
            "bob": _facts(zkcli(server, realm, bob, "get", "/krb-cli")),
            "carol": _facts(zkcli(server, realm, carol, "get", "/krb-cli")),
        }

    out = both(servers, run)
    assert out["bob"] == ["WatchedEvent state:SaslAuthenticated type:None path:null", "secret"], out
    assert "Insufficient permission : /krb-cli" in out["carol"], out


# ------------------------------------------------------------------ naming


def test_remove_host_and_realm_from_principal(realm, tmp_path):
    """kerberos.removeHostFromPrincipal and removeRealmFromPrincipal (in zoo.cfg, as ZooKeeper
    reads them): carol/client.example@REALM is `carol`; bob@REALM `bob`."""
    jaas = realm.server_jaas(tmp_path / "server.jaas")

    def run(kind):
        s = start(kind, realm, jaas, **{"authProvider.1": SASL_PROVIDER, "kerberos.removeHostFromPrincipal": "true",
                                        "kerberos.removeRealmFromPrincipal": "true"})
        try:
            out = {}
            for p in ["bob", "carol/client.example"]:
                realm.use(p)
                k = kazoo(s)
                try:
                    out[p] = whoami(k)
                finally:
                    k.stop()
            return out
        finally:
            s.cleanup()

    out = {kind: run(kind) for kind in KINDS}
    assert out["rzk"] == out["zookeeper"], out
    assert out["rzk"] == {"bob": [("ip", "127.0.0.1"), ("sasl", "bob")],
                          "carol/client.example": [("ip", "127.0.0.1"), ("sasl", "carol")]}, out


# ------------------------------------------------------------------ enforcement


def test_sasl_required_with_kerberos(realm, tmp_path):
    """sessionRequireClientSASLAuth=true: an anonymous client's first request gets
    SessionClosedRequireSaslAuth (-124) and its connection is closed; a Kerberos login passes,
    a refused token gets SessionClosedRequireSaslAuth too."""
    jaas = realm.server_jaas(tmp_path / "server.jaas")

    def run(kind):
        s = start(kind, realm, jaas, **{"authProvider.1": SASL_PROVIDER, "sessionRequireClientSASLAuth": "true"})
        try:
            out = {}
            r = raw(s)
            try:
                _, zxid, err, _ = r.exists("/")
                out["anonymous"] = err, zxid, closed_after(r)
            finally:
                r.close()
            r = raw(s)
            try:
                out["refused"] = sasl_step(r, b"\x60\x03garbage"), closed_after(r)
            finally:
                r.close()
            realm.use("bob")
            k = kazoo(s)
            try:
                out["kerberos"] = k.exists("/") is not None, whoami(k)
            finally:
                k.stop()
            return out
        finally:
            s.cleanup()

    out = {kind: run(kind) for kind in KINDS}
    assert out["rzk"] == out["zookeeper"], out
    assert out["rzk"] == {"anonymous": (-124, 0, True), "refused": ((-124, 0, None), True),
                          "kerberos": (True, [("ip", "127.0.0.1"), ("sasl", "bob@" + REALM)])}, out


# ------------------------------------------------------------------ start-up errors (rzk)


def rzk_start_error(tmp_path, realm, jaas_text, props=(), env=None):
    if not h.rzk_available():
        pytest.skip("rzk binary not found")
    jaas = tmp_path / "s.jaas"
    jaas.write_text(jaas_text)
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=%s\nclientPort=%d\nadmin.enableServer=false\n" % (tmp_path / "data", h.free_port()))
    cmd = [str(h.rzk_binary()), "server", "--config", str(cfg), "-Djava.security.auth.login.config=%s" % jaas]
    r = h.run_bounded(cmd + ["-D%s" % p for p in props], timeout=20, env=dict(os.environ, **(env or {})))
    assert r.returncode != 0, h._dec(r.stdout) + h._dec(r.stderr)
    return h._dec(r.stderr)


def test_start_up_errors(realm, tmp_path):
    krb = ("Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  storeKey=true\n"
           '  keyTab="%s"\n  principal="%s";\n};\n')
    # A keytab without the principal's key, and a missing keytab: the login fails at start-up.
    out = rzk_start_error(tmp_path, realm, krb % (realm.keytabs["bob"], "zookeeper/localhost@" + REALM))
    assert "zookeeper/localhost@" + REALM in out and "Kerberos" in out, out
    out = rzk_start_error(tmp_path, realm, krb % (tmp_path / "missing.keytab", "zookeeper/localhost@" + REALM))
    assert "missing.keytab" in out, out
    # A principal without a host, and a krb5.conf property the library would not read.
    out = rzk_start_error(tmp_path, realm, krb % (realm.server_keytab, "zookeeper@" + REALM))
    assert "service/host@REALM" in out, out
    out = rzk_start_error(tmp_path, realm, krb % (realm.server_keytab, "zookeeper/localhost@" + REALM),
                          props=["java.security.krb5.conf=/etc/other-krb5.conf"])
    assert "java.security.krb5.conf" in out and "KRB5_CONFIG" in out, out
    out = rzk_start_error(tmp_path, realm, krb % (realm.server_keytab, "zookeeper/localhost@" + REALM),
                          props=["zookeeper.security.auth_to_local=RULE:[1:$1]"])
    assert "auth_to_local" in out, out


def rzk_cli(server, *args, env=None, host="localhost"):
    if not h.rzk_available():
        pytest.skip("rzk binary not found")
    r = h.run_bounded([str(h.rzk_binary()), "cli", "-server", "%s:%d" % (host, server.port)] + list(args), timeout=30,
                      env=dict(os.environ, **(env or {})))
    return r.returncode, sorted(h._dec(r.stdout).splitlines()), h._dec(r.stderr)


def test_rzk_cli_kerberos_login(servers, realm, tmp_path):
    """rzk cli logs in with Kerberos as zkCli.sh does (a JAAS Client section with a keytab,
    -Djava.security.krb5.conf in CLIENT_JVMFLAGS), or from the ticket cache (--kerberos), or
    with --kerberos-principal / --kerberos-keytab; a service principal the KDC does not know
    (zookeeper.sasl.client.username) ends in AuthFailed."""
    carol = realm.client_jaas(tmp_path / "carol.jaas", "carol/client.example")
    flags = "-Djava.security.auth.login.config=%s -Djava.security.krb5.conf=%s" % (carol, realm.kdc.krb5_conf)

    def run(server):
        out = {}
        rc, stdout, err = rzk_cli(server, "whoami", env={"CLIENT_JVMFLAGS": flags, "KRB5_CONFIG": "/nonexistent"})
        out["jaas"] = rc, stdout
        realm.use("bob")
        rc, stdout, err = rzk_cli(server, "--kerberos", "whoami")
        out["ticket-cache"] = rc, stdout
        rc, stdout, err = rzk_cli(server, "--kerberos-principal", "alice@" + REALM, "--kerberos-keytab",
                                  str(realm.keytabs["alice"]), "whoami", env={"KRB5CCNAME": "FILE:/nonexistent"})
        out["keytab"] = rc, stdout
        rc, stdout, err = rzk_cli(server, "--kerberos", "-Dzookeeper.sasl.client.username=nosuch", "ls", "/")
        out["unknown-service"] = rc, stdout, "AuthFailed" in err
        # zookeeper.sasl.client.canonicalize.hostname (default true): 127.0.0.1's canonical
        # name is localhost, so the service is zookeeper/localhost; kept as given, the KDC
        # knows no zookeeper/127.0.0.1.
        rc, stdout, err = rzk_cli(server, "--kerberos", "whoami", host="127.0.0.1")
        out["canonical"] = rc, stdout
        rc, stdout, err = rzk_cli(server, "--kerberos", "-Dzookeeper.sasl.client.canonicalize.hostname=false", "ls", "/",
                                  host="127.0.0.1")
        out["as-given"] = rc, stdout, "AuthFailed" in err
        return out

    out = both(servers, run)
    assert out["jaas"] == (0, ["Auth scheme: User", "ip: 127.0.0.1", "sasl: carol/client.example@" + REALM]), out
    assert out["ticket-cache"] == (0, ["Auth scheme: User", "ip: 127.0.0.1", "sasl: bob@" + REALM]), out
    assert out["keytab"] == (0, ["Auth scheme: User", "ip: 127.0.0.1", "sasl: alice@" + REALM, "super: "]), out
    assert out["unknown-service"] == (1, [], True), out
    assert out["canonical"] == out["ticket-cache"], out
    assert out["as-given"] == (1, [], True), out
