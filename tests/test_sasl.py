"""SASL DIGEST-MD5 between clients and the server, and authentication enforcement, side by
side with Apache ZooKeeper 3.8: each test runs the same steps against a ZooKeeper and an
rzk server configured alike (zoo.cfg with authProvider.1=SASLAuthenticationProvider, a JAAS
file given as the system property java.security.auth.login.config) and compares what the
clients see: error codes, states, whoAmI, ACL checks, closed connections.

Clients: kazoo's SASL login (pure-sasl), a raw connection driving pure-sasl's DIGEST-MD5 by
hand (for malformed tokens and the exact replies), and the Java client (zkCli.sh with a JAAS
`Client` section).
"""

from __future__ import annotations

import json
import os
import time
from collections import namedtuple

import pytest

import zkharness as h

KINDS = ["zookeeper", "rzk"]
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
USERS = {"bob": "bobsecret", "alice": "alicesecret", "admin": "adminsecret"}
NO_AUTH, AUTH_FAILED, INVALID_ACL, REQUIRE_SASL = -102, -115, -114, -124

puresasl = pytest.importorskip("puresasl.client")


def _available(kind: str) -> None:
    if kind == "rzk" and not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")


def server_jaas(path) -> str:
    users = "\n".join('    user_%s="%s"' % kv for kv in USERS.items())
    path.write_text("Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n%s;\n};\n" % users)
    return str(path)


def client_jaas(path, user: str, password: str) -> str:
    path.write_text(
        'Client {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n'
        '    username="%s"\n    password="%s";\n};\n' % (user, password)
    )
    return str(path)


def start(kind: str, jaas: str, **cfg) -> h.Server:
    _available(kind)
    return h.server_with_props(kind, ["-Djava.security.auth.login.config=%s" % jaas], **cfg).start()


@pytest.fixture(scope="module")
def jaas(tmp_path_factory):
    return server_jaas(tmp_path_factory.mktemp("jaas") / "server.jaas")


@pytest.fixture(scope="module")
def servers(jaas):
    """One ZooKeeper and one rzk: SASL with the sasl provider, `admin` a super user."""
    out = {}
    try:
        for kind in KINDS:
            out[kind] = start(kind, jaas, **{"authProvider.1": SASL_PROVIDER, "superUser": "admin"})
        yield out
    finally:
        for s in out.values():
            s.cleanup()


@pytest.fixture
def started():
    servers = []
    yield servers
    for s in servers:
        s.cleanup()


# ------------------------------------------------------------------ clients


class WhoAmI(namedtuple("WhoAmI", "unused")):
    """OpCode whoAmI (107) for kazoo, which has no call for it (a field, as kazoo skips
    the answer of a request that is falsy)."""

    type = 107

    def serialize(self):
        return bytearray()

    @classmethod
    def deserialize(cls, data, offset):
        r = h.JuteReader(bytes(data), offset)
        return [(r.string(), r.string()) for _ in range(r.int())]


def kazoo(server, user=None, password=None, timeout=8.0, start=True):
    from kazoo.client import KazooClient

    kw = {}
    if user is not None:
        kw["sasl_options"] = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    k = KazooClient(server.hosts, timeout=10, connection_retry={"max_tries": 1, "delay": 0.2}, **kw)
    if start:
        k.start(timeout=timeout)
    return k


def whoami(k):
    a = k.handler.async_result()
    k._call(WhoAmI(None), a)
    return a.get(timeout=10)


def sasl_client(user, password):
    return puresasl.SASLClient(host="zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                               username=user, password=password)


def raw(server) -> h.RawSession:
    return h.RawSession("127.0.0.1", server.port, timeout=10.0).connect()


def sasl_step(s: h.RawSession, token: bytes):
    """One SASL packet: (err, zxid, token or None)."""
    _, zxid, err, r = s.request(h.OP["sasl"], h.Jute().buffer(token).bytes())
    return err, zxid, r.buffer()


def raw_login(s: h.RawSession, user, password):
    """DIGEST-MD5 over a raw connection as kazoo does it; the last (err, zxid, token)."""
    c = sasl_client(user, password)
    err, zxid, challenge = sasl_step(s, b"")
    assert err == 0, err
    return sasl_step(s, c.process(challenge))


def closed_after(s: h.RawSession) -> bool:
    """Whether the server closed the connection (a ping is not answered)."""
    try:
        s.ping()
        return False
    except (h.ConnectionClosed, TimeoutError, OSError):
        return True


def raw_whoami(s: h.RawSession):
    _, _, err, r = s.request(107)
    assert err == 0, err
    return [(r.string(), r.string()) for _ in range(r.int())]


def both(servers, fn):
    """Runs `fn(server)` against each kind; returns {kind: result}, asserting they are equal."""
    out = {kind: fn(servers[kind]) for kind in KINDS}
    assert out["rzk"] == out["zookeeper"], out
    return out["rzk"]


# ------------------------------------------------------------------ kazoo


def test_kazoo_digest_md5_login_and_whoami(servers):
    def run(server):
        k = kazoo(server, "bob", USERS["bob"])
        try:
            return sorted(whoami(k))
        finally:
            k.stop()

    assert both(servers, run) == [("ip", "127.0.0.1"), ("sasl", "bob")]


def test_kazoo_super_user_by_zookeeper_superUser(servers):
    def run(server):
        k = kazoo(server, "admin", USERS["admin"])
        try:
            return sorted(whoami(k))
        finally:
            k.stop()

    assert both(servers, run) == [("ip", "127.0.0.1"), ("sasl", "admin"), ("super", "")]


def test_kazoo_sasl_acls(servers):
    from kazoo.exceptions import InvalidACLError, NoAuthError
    from kazoo.security import make_acl

    def attempt(f):
        try:
            r = f()
            return ("ok", r)
        except (NoAuthError, InvalidACLError) as e:
            return (type(e).__name__, None)

    def run(server):
        bob = kazoo(server, "bob", USERS["bob"])
        alice = kazoo(server, "alice", USERS["alice"])
        admin = kazoo(server, "admin", USERS["admin"])
        anon = kazoo(server)
        out = {}
        try:
            path = "/sasl-acl"
            if bob.exists(path):
                bob.delete(path, recursive=True)
            bob.create(path, b"bob's", acl=[make_acl("sasl", "bob", all=True)])
            out["acl"] = [(a.perms, a.id.scheme, a.id.id) for a in bob.get_acls(path)[0]]
            out["bob"] = attempt(lambda: bob.get(path)[0])
            out["alice"] = attempt(lambda: alice.get(path)[0])
            out["anon"] = attempt(lambda: anon.get(path)[0])
            out["admin"] = attempt(lambda: admin.get(path)[0])
            out["alice-set"] = attempt(lambda: alice.set(path, b"x") and None)
            # "auth" expands to the session's sasl id.
            bob.create(path + "/auth", b"", acl=[make_acl("auth", "", all=True)])
            out["auth"] = [(a.id.scheme, a.id.id) for a in bob.get_acls(path + "/auth")[0]]
            # A sasl ACL id may name anyone, logged in or not.
            out["other"] = attempt(lambda: bob.create(path + "/carol", b"", acl=[make_acl("sasl", "carol", read=True)]))
            out["bad"] = attempt(lambda: bob.create(path + "/bad", b"", acl=[make_acl("sasl", "a@b@c", read=True)]))
            admin.delete(path, recursive=True)
        finally:
            for k in (bob, alice, admin, anon):
                k.stop()
        return out

    out = both(servers, run)
    assert out["bob"] == ("ok", b"bob's") and out["alice"][0] == "NoAuthError" and out["admin"] == ("ok", b"bob's")
    assert out["auth"] == [("sasl", "bob")]


def test_kazoo_wrong_password_and_unknown_user(servers):
    def run(server):
        out = {}
        for name, (user, pw) in {"wrong": ("bob", "nope"), "unknown": ("mallory", "x")}.items():
            k = kazoo(server, user, pw, start=False)
            try:
                # Whether start() returns before the refusal closes the client, or times out
                # waiting for it, is a race inside kazoo (its connection thread against the
                # caller, visible under load on either server): only what follows is compared.
                try:
                    k.start(timeout=8)
                except Exception as e:  # noqa: BLE001
                    assert type(e).__name__ == "KazooTimeoutError", e
                deadline = time.time() + 5
                while k.client_state != "AUTH_FAILED" and time.time() < deadline:
                    time.sleep(0.05)
                try:
                    k.exists("/")
                    op = "ok"
                except Exception as e:  # noqa: BLE001
                    op = type(e).__name__
                out[name] = (k.client_state, op)
            finally:
                k.stop()
                k.close()
        return out

    out = both(servers, run)
    # kazoo logs AUTH_FAILED, closes the client and says so to the next call.
    assert out["wrong"] == ("CLOSED", "ConnectionClosedError"), out


def test_a_failed_login_harms_no_other_connection(servers):
    def run(server):
        good = kazoo(server, "bob", USERS["bob"])
        try:
            s = raw(server)
            res = raw_login(s, "bob", "wrong")
            gone = closed_after(s)
            s.close()
            return res, gone, good.exists("/") is not None, sorted(whoami(good))
        finally:
            good.stop()

    (err, zxid, token), gone, alive, ids = both(servers, run)
    assert (err, zxid, token, gone, alive) == (AUTH_FAILED, 0, None, True, True)
    assert ids == [("ip", "127.0.0.1"), ("sasl", "bob")]


# ------------------------------------------------------------------ raw DIGEST-MD5


def test_raw_digest_md5_exchange(servers):
    """The challenge's shape, the rspauth, zxid 0, whoAmI after it."""

    def run(server):
        s = raw(server)
        try:
            c = sasl_client("bob", USERS["bob"])
            err, zxid, challenge = sasl_step(s, b"")
            from puresasl.mechanisms import DigestMD5Mechanism

            d = DigestMD5Mechanism.parse_challenge(challenge)
            shape = challenge.replace(d["nonce"], b"N" * len(d["nonce"]))
            err2, zxid2, rsp = sasl_step(s, c.process(challenge))
            c.process(rsp)  # checks rspauth; raises if the server did not prove the password
            return err, zxid, shape, err2, zxid2, rsp[:8], c.complete, raw_whoami(s)
        finally:
            s.close()

    out = both(servers, run)
    assert out[2] == b'realm="zk-sasl-md5",nonce="%s",charset=utf-8,algorithm=md5-sess' % (b"N" * 40)
    assert out[5] == b"rspauth=" and out[6] is True


@pytest.mark.parametrize(
    "case",
    ["wrong-password", "unknown-user", "garbage", "initial-response", "twice-after-success", "wrong-nonce", "wrong-uri"],
)
def test_raw_bad_tokens(servers, case):
    """Each bad token gets ZooKeeper's answer: AuthFailed, zxid 0, a null token, and the
    connection closed (a good login then a third token too). An initial response is ignored."""

    def run(server):
        s = raw(server)
        try:
            c = sasl_client("bob", USERS["bob"])
            if case == "initial-response":
                # Ignored (no "subsequent authentication"): the challenge comes, as for an empty token.
                err, zxid, token = sasl_step(s, b"username=\"bob\"")
                return (err, zxid, token[:7]), closed_after(s)
            err, _, challenge = sasl_step(s, b"")
            assert err == 0
            if case == "twice-after-success":
                assert sasl_step(s, c.process(challenge))[0] == 0
                return sasl_step(s, b""), closed_after(s)
            if case == "wrong-password":
                token = sasl_client("bob", "nope").process(challenge)
            elif case == "unknown-user":
                token = sasl_client("mallory", "x").process(challenge)
            elif case == "garbage":
                token = b"\x00\xffthis is not a digest response"
            elif case == "wrong-nonce":
                token = c.process(challenge.replace(b'nonce="', b'nonce="x'))
            else:
                c.host = "elsewhere"
                token = c.process(challenge)
            return sasl_step(s, token), closed_after(s)
        finally:
            s.close()

    want = ((0, 0, b'realm="'), False) if case == "initial-response" else ((AUTH_FAILED, 0, None), True)
    assert both(servers, run) == want


# ------------------------------------------------------------------ enforcement


@pytest.mark.parametrize("setting", ["sessionRequireClientSASLAuth", "enforce.auth"])
def test_sasl_required(started, jaas, setting, tmp_path):
    cfg = {"authProvider.1": SASL_PROVIDER}
    if setting == "sessionRequireClientSASLAuth":
        cfg["sessionRequireClientSASLAuth"] = "true"
    else:
        cfg.update({"enforce.auth.enabled": "true", "enforce.auth.schemes": "sasl"})
    servers = {}
    for kind in KINDS:
        servers[kind] = start(kind, jaas, **cfg)
        started.append(servers[kind])

    def run(server):
        out = {}
        # Unauthenticated: the first request (a read, a ping) is refused and the connection closed.
        for op in ("exists", "ping"):
            s = raw(server)
            if op == "exists":
                _, zxid, err, _ = s.exists("/")
            else:
                _, zxid, err, _ = s.ping()
            out[op] = (err, zxid, closed_after(s))
            s.close()
        # A digest login does not count; a SASL login does.
        s = raw(server)
        _, _, err, _ = s.request(h.OP["auth"], h.Jute().int(0).string("digest").buffer(b"u:p").bytes())
        out["digest-auth"] = err
        out["after-digest"] = s.exists("/")[2]
        s.close()
        s = raw(server)
        out["login"] = raw_login(s, "bob", USERS["bob"])[0]
        out["after-login"] = s.exists("/")[2]
        out["whoami"] = sorted(raw_whoami(s))
        s.close()
        # A failed login when SASL is required: SessionClosedRequireSaslAuth.
        s = raw(server)
        out["failed"] = raw_login(s, "bob", "nope"), closed_after(s)
        s.close()
        k = kazoo(server, "bob", USERS["bob"])
        out["kazoo"] = k.exists("/") is not None
        k.stop()
        # The Java client without a JAAS file, then with one.
        # (Whether zkCli prints the Disconnected event of the server's close before it exits
        # on the error is a race in the Java client, with either server.)
        out["java-anon"] = sorted(f for f in _cli_facts(zkcli(server, None, "ls", "/")) if "state:Disconnected" not in f)
        out["java-bob"] = sorted(_cli_facts(zkcli(server, client_jaas(tmp_path / "bob.jaas", "bob", USERS["bob"]), "whoami")))
        return out

    out = both(servers, run)
    assert out["exists"] == (REQUIRE_SASL, 0, True) and out["ping"] == (REQUIRE_SASL, 0, True)
    assert out["after-digest"] == REQUIRE_SASL and out["after-login"] == 0
    assert out["failed"] == ((REQUIRE_SASL, 0, None), True)
    assert "KeeperErrorCode = Session closed because client failed to authenticate for /" in out["java-anon"], out
    assert "sasl: bob" in out["java-bob"], out


def test_enforce_digest_scheme(started, jaas):
    servers = {}
    for kind in KINDS:
        servers[kind] = start(kind, jaas, **{"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"})
        started.append(servers[kind])

    def run(server):
        s = raw(server)
        first = s.exists("/")[2], closed_after(s)
        s.close()
        s = raw(server)
        _, _, err, _ = s.request(h.OP["auth"], h.Jute().int(0).string("digest").buffer(b"u:p").bytes())
        then = err, s.exists("/")[2]
        s.close()
        # A SASL login is not a digest one.
        s = raw(server)
        login = raw_login(s, "bob", USERS["bob"])[0]
        after = s.exists("/")[2]
        s.close()
        return first, then, login, after

    assert both(servers, run) == ((REQUIRE_SASL, True), (0, 0), 0, REQUIRE_SASL)


def test_sasl_without_the_provider(started, jaas):
    """A login without SASLAuthenticationProvider: the connection has its sasl id (whoAmI
    shows no user name), but sasl ACLs are invalid."""
    from kazoo.exceptions import InvalidACLError
    from kazoo.security import make_acl

    servers = {}
    for kind in KINDS:
        servers[kind] = start(kind, jaas)
        started.append(servers[kind])

    def run(server):
        k = kazoo(server, "bob", USERS["bob"])
        try:
            ids = sorted(whoami(k))
            try:
                k.create("/nosasl", b"", acl=[make_acl("sasl", "bob", all=True)])
                r = "created"
            except InvalidACLError:
                r = "InvalidACL"
            return ids, r
        finally:
            k.stop()

    assert both(servers, run) == ([("ip", "127.0.0.1"), ("sasl", "")], "InvalidACL")


# ------------------------------------------------------------------ the Java client


def zkcli(server, client_jaas_path, *args):
    if not os.path.exists(h.ZK_CLI):
        pytest.skip("zkCli.sh not installed")
    env = dict(os.environ)
    env["CLIENT_JVMFLAGS"] = "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    if client_jaas_path:
        env["CLIENT_JVMFLAGS"] += " -Djava.security.auth.login.config=%s" % client_jaas_path
    r = h.run_bounded([h.ZK_CLI, "-server", server.hosts] + list(args), timeout=60, env=env)
    return h._dec(r.stdout) + h._dec(r.stderr)


def _cli_facts(out: str):
    lines = [l.strip() for l in out.splitlines()]
    keep = []
    for l in lines:
        if "WatchedEvent" in l or l.startswith("Insufficient permission") or l.startswith("sasl") \
                or l.startswith("ip") or l.startswith("super") or l.startswith("Authentication is not valid") \
                or l.startswith("Auth") or "KeeperErrorCode" in l or l == "secret":
            keep.append(l)
    return keep


def test_java_client_login_whoami_and_denials(servers, tmp_path):
    from kazoo.security import make_acl

    bob_jaas = client_jaas(tmp_path / "bob.jaas", "bob", USERS["bob"])
    alice_jaas = client_jaas(tmp_path / "alice.jaas", "alice", USERS["alice"])
    wrong_jaas = client_jaas(tmp_path / "wrong.jaas", "bob", "nope")

    def run(server):
        k = kazoo(server, "bob", USERS["bob"])
        try:
            if k.exists("/sasl-cli"):
                k.delete("/sasl-cli")
            k.create("/sasl-cli", b"secret", acl=[make_acl("sasl", "bob", all=True)])
        finally:
            k.stop()
        # Sorted: the watcher's events and the command's output come from two threads.
        out = {
            "bob": sorted(_cli_facts(zkcli(server, bob_jaas, "whoami")) + _cli_facts(zkcli(server, bob_jaas, "get", "/sasl-cli"))),
            "alice": sorted(_cli_facts(zkcli(server, alice_jaas, "get", "/sasl-cli"))),
        }
        wrong = zkcli(server, wrong_jaas, "get", "/sasl-cli")
        out["wrong"] = sorted(l for l in _cli_facts(wrong) if "AuthFailed" in l or "KeeperErrorCode" in l)
        return out

    out = both(servers, run)
    assert out["bob"] == sorted([
        "WatchedEvent state:SyncConnected type:None path:null", "WatchedEvent state:SaslAuthenticated type:None path:null",
        "Auth scheme: User", "sasl: bob", "ip: 127.0.0.1",
        "WatchedEvent state:SyncConnected type:None path:null", "WatchedEvent state:SaslAuthenticated type:None path:null",
        "secret",
    ]), out
    assert "Insufficient permission : /sasl-cli" in out["alice"], out
    assert out["wrong"] == ["KeeperErrorCode = AuthFailed for /sasl-cli", "WatchedEvent state:AuthFailed type:None path:null"], out


# ------------------------------------------------------------------ start-up errors (rzk)


def rzk_start_error(tmp_path, lines, props=()):
    if not h.rzk_available():
        pytest.skip("rzk binary not found")
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("\n".join(["dataDir=%s" % (tmp_path / "data"), "clientPort=%d" % h.free_port()] + list(lines)) + "\n")
    r = h.run_bounded([str(h.rzk_binary()), "server", "--config", str(cfg)] + ["-D%s" % p for p in props], timeout=20)
    assert r.returncode != 0, h._dec(r.stdout) + h._dec(r.stderr)
    return h._dec(r.stderr)


def test_start_up_errors(tmp_path):
    krb = tmp_path / "krb.jaas"
    krb.write_text("Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n"
                   '  keyTab="/etc/zk.keytab"\n  principal="zookeeper/localhost@EXAMPLE.COM";\n};\n')
    out = rzk_start_error(tmp_path, [], ["java.security.auth.login.config=%s" % krb])
    assert "Krb5LoginModule" in out and "storeKey=true" in out, out
    out = rzk_start_error(tmp_path, [], ["java.security.auth.login.config=%s" % (tmp_path / "missing.jaas")])
    assert "java.security.auth.login.config" in out and "cannot read the JAAS file" in out, out
    bad = tmp_path / "bad.jaas"
    bad.write_text("Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_bob=\"x\"\n};\n")
    out = rzk_start_error(tmp_path, [], ["java.security.auth.login.config=%s" % bad])
    assert "line 4" in out, out
    out = rzk_start_error(tmp_path, ["sessionRequireClientSASLAuth=true"])
    assert "sessionRequireClientSASLAuth" in out and "sasl is not available" in out, out
    out = rzk_start_error(tmp_path, ["enforce.auth.enabled=true"])
    assert "enforce.auth.schemes must be configured" in out, out
    out = rzk_start_error(tmp_path, ["kerberos.principalToLocal=x"])
    assert "kerberos.principalToLocal" in out and "Kerberos" in out, out


# ------------------------------------------------------------------ rzk cli


def rzk_cli(server, *args, env=None):
    if not h.rzk_available():
        pytest.skip("rzk binary not found")
    r = h.run_bounded([str(h.rzk_binary()), "cli", "-server", server.hosts] + list(args), timeout=30,
                      env=dict(os.environ, **(env or {})))
    return r.returncode, h._dec(r.stdout), h._dec(r.stderr)


def test_rzk_cli_sasl_login(servers, tmp_path):
    """rzk cli logs in as zkCli.sh does (a JAAS Client section named by -D or CLIENT_JVMFLAGS,
    or --sasl-user/--sasl-password), against ZooKeeper and rzk alike."""
    bob_jaas = client_jaas(tmp_path / "bob.jaas", "bob", USERS["bob"])
    wrong_jaas = client_jaas(tmp_path / "wrong.jaas", "bob", "nope")

    def run(server):
        out = {}
        rc, stdout, _ = rzk_cli(server, "-Djava.security.auth.login.config=%s" % bob_jaas, "whoami")
        out["jaas-arg"] = rc, sorted(stdout.splitlines())
        rc, stdout, _ = rzk_cli(server, "whoami", env={"CLIENT_JVMFLAGS": "-Djava.security.auth.login.config=%s" % bob_jaas})
        out["jaas-env"] = rc, sorted(stdout.splitlines())
        rc, stdout, _ = rzk_cli(server, "--sasl-user", "admin", "--sasl-password", USERS["admin"], "whoami")
        out["flags"] = rc, sorted(stdout.splitlines())
        rc, stdout, stderr = rzk_cli(server, "-Djava.security.auth.login.config=%s" % wrong_jaas, "ls", "/")
        out["wrong"] = rc, stdout, "AuthFailed" in stderr
        return out

    out = both(servers, run)
    assert out["jaas-arg"] == (0, ["Auth scheme: User", "ip: 127.0.0.1", "sasl: bob"]), out
    assert out["jaas-env"] == out["jaas-arg"]
    assert out["flags"] == (0, ["Auth scheme: User", "ip: 127.0.0.1", "sasl: admin", "super: "]), out
    assert out["wrong"] == (1, "", True), out


def test_rzk_bench_sasl_login(servers):
    """`rzk bench --sasl-user/--sasl-password`: every session logs in before its requests; a
    root only `sasl:bob` may write under shows the login took, a wrong password fails the run.
    Against ZooKeeper and rzk alike (a benchmark: nothing about speed is asserted)."""
    from kazoo.security import ACL, Id, Permissions

    def run(server):
        k = kazoo(server, "bob", USERS["bob"])
        try:
            if not k.exists("/bench-sasl"):
                k.create("/bench-sasl", acl=[ACL(Permissions.ALL, Id("sasl", "bob"))])
        finally:
            k.stop()
        cmd = [str(h.rzk_binary()), "bench", "get", "--servers", server.hosts, "--clients", "2", "--inflight", "2",
               "--keys", "10", "--duration", "0.3", "--root", "/bench-sasl/b", "--json", "--quiet"]
        ok = h.run_bounded(cmd + ["--sasl-user", "bob", "--sasl-password", USERS["bob"]], timeout=60)
        res = json.loads(ok.stdout) if ok.returncode == 0 else {}
        bad = h.run_bounded(cmd + ["--sasl-user", "bob", "--sasl-password", "nope"], timeout=60)
        anonymous = h.run_bounded(cmd, timeout=60)
        return (ok.returncode, res.get("error_count"), res.get("ops", 0) > 0, bad.returncode != 0,
                "AuthFailed" in h._dec(bad.stderr), anonymous.returncode != 0, "NoAuth" in h._dec(anonymous.stderr))

    if not h.rzk_available():
        pytest.skip("rzk binary not found")
    assert both(servers, run) == (0, 0, True, True, True, True, True)


# ------------------------------------------------------------------ an ensemble


def test_sasl_on_an_ensemble(jaas):
    """A login on a follower; its sasl id goes with its writes to the leader (ACLs checked
    there) and is checked on another follower's reads."""
    import zkensemble as e
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_acl

    def run(kind):
        _available(kind)
        prop = "-Djava.security.auth.login.config=%s" % jaas
        kw = {"env": {"SERVER_JVMFLAGS": prop}} if kind == "rzk" else {"zk_jvm": e.ZK_ENSEMBLE_JVM + [prop]}
        with e.Ensemble(kind, n=3, proxied=False, name="sasl", extra_cfg={"authProvider.1": SASL_PROVIDER}, **kw) as ens:
            f1, f2 = ens.followers()[:2]
            bob = kazoo(f1, "bob", USERS["bob"])
            alice = kazoo(f2, "alice", USERS["alice"])
            bob2 = kazoo(f2, "bob", USERS["bob"])
            try:
                bob.create("/ens-sasl", b"x", acl=[make_acl("sasl", "bob", all=True)])
                out = {"whoami": sorted(whoami(bob)), "acl": [(a.id.scheme, a.id.id) for a in bob.get_acls("/ens-sasl")[0]]}
                bob2.sync("/ens-sasl")
                out["bob-on-f2"] = bob2.get("/ens-sasl")[0]
                try:
                    alice.get("/ens-sasl")
                    out["alice"] = "read"
                except NoAuthError:
                    out["alice"] = "NoAuth"
                try:
                    alice.set("/ens-sasl", b"y")
                    out["alice-set"] = "written"
                except NoAuthError:
                    out["alice-set"] = "NoAuth"
                return out
            finally:
                for k in (bob, alice, bob2):
                    k.stop()

    out = {kind: run(kind) for kind in KINDS}
    assert out["rzk"] == out["zookeeper"], out
    assert out["rzk"]["alice"] == "NoAuth" and out["rzk"]["alice-set"] == "NoAuth" and out["rzk"]["bob-on-f2"] == b"x"


def test_allow_sasl_failed_clients_and_let_any_sasl_user_do_x(started, jaas):
    from kazoo.security import make_acl

    servers = {}
    for kind in KINDS:
        servers[kind] = start(kind, jaas, **{"authProvider.1": SASL_PROVIDER, "allowSaslFailedClients": "true",
                                             "letAnySaslUserDoX": "everyone"})
        started.append(servers[kind])

    def run(server):
        s = raw(server)
        failed = raw_login(s, "bob", "nope"), closed_after(s), sorted(raw_whoami(s)), s.exists("/")[2]
        s.close()
        bob = kazoo(server, "bob", USERS["bob"])
        alice = kazoo(server, "alice", USERS["alice"])
        try:
            bob.create("/any-sasl", b"v", acl=[make_acl("sasl", "everyone", all=True)])
            return failed, alice.get("/any-sasl")[0]
        finally:
            bob.stop()
            alice.stop()

    failed, read = both(servers, run)
    assert failed == ((0, 0, None), False, [("ip", "127.0.0.1")], 0)
    assert read == b"v"


@pytest.mark.parametrize("provider", [True, False])
def test_audit_log_names_the_sasl_user(started, jaas, provider):
    """The audit log's user= for a SASL login: the name with SASLAuthenticationProvider, none
    without it (AuthUtil.getUsers asks the scheme's provider)."""
    import test_audit

    cfg = {"audit.enable": "true"}
    if provider:
        cfg["authProvider.1"] = SASL_PROVIDER

    def run(kind):
        s = start(kind, jaas, **cfg)
        started.append(s)
        k = kazoo(s, "bob", USERS["bob"])
        try:
            k.create("/audited", b"")
        finally:
            k.stop()
        s.stop()
        return [l for l in test_audit.normalized(test_audit.audit_lines(s)) if "znode=/audited" in l]

    out = {kind: run(kind) for kind in KINDS}
    assert out["rzk"] == out["zookeeper"], out
    user = "bob,127.0.0.1" if provider else "127.0.0.1"
    assert out["rzk"] == ["INFO audit.Slf4jAuditLogger: session=S0\tuser=%s\tip=127.0.0.1\toperation=create\tznode=/audited\t"
                          "znode_type=persistent\tresult=success" % user], out
