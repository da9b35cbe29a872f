"""Test certificates for the TLS tests, made with openssl (and keytool for JKS) in a
temporary directory: a CA, a server certificate for 127.0.0.1 / localhost, client
certificates (one trusted, one for the x509 super user, one expired, one from a CA the
server does not trust), and the same material as PKCS12 and JKS stores.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PASSWORD = "testpass"
CLIENT_DN = "CN=client,OU=test,O=rzk"
ADMIN_DN = "CN=admin,OU=test,O=rzk"
OTHER_DN = "CN=other,OU=test,O=rzk"
TRICKY_SUBJECT = "/DC=org/DC=example/O=rzk, Inc./OU=test+UID=u1/CN=tricky #1/emailAddress=t@example.com"
# X500Principal.getName() of TRICKY_SUBJECT, as ZooKeeper's x509 provider reports it.
TRICKY_DN = "1.2.840.113549.1.9.1=#160d74406578616d706c652e636f6d,CN=tricky \\#1,OU=test+UID=u1,O=rzk\\, Inc.,DC=example,DC=org"


def have_tools() -> bool:
    return bool(shutil.which("openssl")) and bool(shutil.which("keytool"))


def _run(args, cwd):
    r = subprocess.run(args, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(map(str, args)), r.stdout.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def _subj(dn: str) -> str:
    # "CN=client,OU=test,O=rzk" (RFC 2253, last RDN first) -> "/O=rzk/OU=test/CN=client"
    return "/" + "/".join(reversed(dn.split(",")))


class Pki:
    def __init__(self, d: Path):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        (d / "newcerts").mkdir(exist_ok=True)
        (d / "index.txt").write_text("")
        (d / "serial").write_text("1000\n")
        (d / "ca.cnf").write_text(
            "[ca]\ndefault_ca=CA_default\n[CA_default]\ndir=%s\ndatabase=$dir/index.txt\n"
            "new_certs_dir=$dir/newcerts\nserial=$dir/serial\ndefault_md=sha256\npolicy=policy_any\n"
            "copy_extensions=copy\nunique_subject=no\npreserve=yes\nx509_extensions=v3\n[v3]\nbasicConstraints=CA:FALSE\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[policy_any]\ncommonName=supplied\n"
            "organizationName=optional\norganizationalUnitName=optional\n" % d
        )
        self.ca = self._ca("ca", "/O=rzk/CN=rzk test CA")
        self.other_ca = self._ca("otherca", "/O=elsewhere/CN=other CA")
        self.server = self.issue("server", "/O=rzk/CN=localhost", san="DNS:localhost,IP:127.0.0.1")
        self.client = self.issue("client", _subj(CLIENT_DN))
        self.admin = self.issue("admin", _subj(ADMIN_DN))
        self.other = self.issue("other", _subj(OTHER_DN))
        self.expired = self.issue("expired", "/O=rzk/OU=test/CN=expired", dates=("20200101000000Z", "20200102000000Z"))
        self.untrusted = self.issue("untrusted", "/O=rzk/OU=test/CN=untrusted", ca="otherca")
        # A subject that exercises RFC 2253 formatting: DC, a comma and a '#' to escape, a
        # multi-valued RDN and emailAddress (printed by OID with its DER value in hex).
        self.tricky = self.issue("tricky", TRICKY_SUBJECT)
        # PKCS12 and JKS forms of the server's key store and of the trust store.
        for name in ("server", "client", "tricky", "admin"):
            _run(["openssl", "pkcs12", "-export", "-in", "%s.pem" % name, "-inkey", "%s.key" % name,
                  "-certfile", "ca.pem", "-name", name, "-out", "%s.p12" % name, "-passout", "pass:" + PASSWORD], d)
            _run(["keytool", "-importkeystore", "-noprompt", "-srckeystore", "%s.p12" % name, "-srcstoretype", "PKCS12",
                  "-srcstorepass", PASSWORD, "-destkeystore", "%s.jks" % name, "-deststoretype", "JKS",
                  "-deststorepass", PASSWORD, "-destkeypass", PASSWORD], d)
        _run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "trust.jks",
              "-storetype", "JKS", "-storepass", PASSWORD], d)
        _run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "trust.p12",
              "-storetype", "PKCS12", "-storepass", PASSWORD], d)
        # ZooKeeper's PEM key store: the private key and the certificate chain in one file.
        (d / "server-store.pem").write_text((d / "server.key").read_text() + (d / "server.pem").read_text())
        # The same with the key encrypted (PKCS#8, PBES2), opened with ssl.keyStore.password.
        _run(["openssl", "pkcs8", "-topk8", "-in", "server.key", "-out", "server-enc.key", "-v2", "aes-256-cbc",
              "-passout", "pass:" + PASSWORD], d)
        (d / "server-enc-store.pem").write_text((d / "server-enc.key").read_text() + (d / "server.pem").read_text())

    def p(self, name: str) -> str:
        return str(self.dir / name)

    def _ca(self, name: str, subj: str) -> str:
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", "%s.key" % name, "-out", "%s.pem" % name, "-days", "30", "-subj", subj], self.dir)
        return self.p("%s.pem" % name)

    def issue(self, name: str, subj: str, san: str = "", ca: str = "ca", dates=None) -> str:
        d = self.dir
        _run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", "%s.key" % name, "-out", "%s.csr" % name, "-subj", subj]
             + (["-addext", "subjectAltName=" + san] if san else []) + (["-multivalue-rdn"] if "+" in subj else []), d)
        # (openssl 3 writes PKCS#8 keys, "BEGIN PRIVATE KEY", which every client and store reads.)
        start, end = dates or ("20240101000000Z", "20991231000000Z")
        _run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", "%s.pem" % ca, "-keyfile", "%s.key" % ca,
              "-in", "%s.csr" % name, "-out", "%s.pem" % name, "-startdate", start, "-enddate", end, "-notext", "-preserveDN"], d)
        return self.p("%s.pem" % name)
