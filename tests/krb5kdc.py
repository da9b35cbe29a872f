"""A throw-away Kerberos realm for the tests: MIT krb5's KDC (Debian's krb5-kdc and
krb5-admin-server) in a temporary directory with its own krb5.conf (KRB5_CONFIG) and
kdc.conf (KRB5_KDC_PROFILE), on a free loopback port; principals and keytabs made with
kadmin.local; `kinit` for ticket caches. Everything it starts it stops.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, Optional

import zkharness as h

REALM = "RZK.TEST"
TOOLS = ["/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local", "/usr/bin/kinit"]


def available() -> bool:
    return all(os.access(t, os.X_OK) for t in TOOLS)


class Kdc:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = h.free_port()
        self.krb5_conf = workdir / "krb5.conf"
        self.kdc_conf = workdir / "kdc.conf"
        self.proc: Optional[subprocess.Popen] = None

    def env(self, ccache: Optional[Path] = None) -> Dict[str, str]:
        e = dict(os.environ)
        e["KRB5_CONFIG"] = str(self.krb5_conf)
        e["KRB5_KDC_PROFILE"] = str(self.kdc_conf)
        e["KRB5CCNAME"] = "FILE:%s" % (ccache or (self.dir / "no-ccache"))
        e.pop("KRB5_KTNAME", None)
        e.pop("KRB5_CLIENT_KTNAME", None)
        return e

    def start(self) -> "Kdc":
        d = self.dir
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            "  default_realm = %(r)s\n"
            "  dns_lookup_realm = false\n"
            "  dns_lookup_kdc = false\n"
            "  rdns = false\n"
            "  dns_canonicalize_hostname = false\n"
            "  udp_preference_limit = 1\n"
            "  ticket_lifetime = 1h\n"
            "[realms]\n"
            "  %(r)s = {\n    kdc = 127.0.0.1:%(p)d\n  }\n"
            "[domain_realm]\n"
            "  localhost = %(r)s\n" % {"r": REALM, "p": self.port}
        )
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            "  kdc_ports = %(p)d\n"
            "  kdc_tcp_ports = %(p)d\n"
            "[realms]\n"
            "  %(r)s = {\n"
            "    database_name = %(d)s/principal\n"
            "    key_stash_file = %(d)s/stash\n"
            "    acl_file = %(d)s/kadm5.acl\n"
            "    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            "    max_life = 1h\n"
            "  }\n"
            "[logging]\n"
            "  kdc = FILE:%(d)s/kdc.log\n" % {"r": REALM, "p": self.port, "d": d}
        )
        (d / "kadm5.acl").write_text("")
        h.run_bounded(["/usr/sbin/kdb5_util", "create", "-s", "-r", REALM, "-P", "master-pw"],
                      env=self.env(), timeout=60).check_returncode()
        self.proc = h.spawn(["/usr/sbin/krb5kdc", "-n", "-r", REALM], env=self.env(),
                            stdout=open(d / "krb5kdc.out", "wb"), stderr=subprocess.STDOUT)
        return self

    def kadmin(self, query: str) -> str:
        r = h.run_bounded(["/usr/sbin/kadmin.local", "-r", REALM, "-q", query], env=self.env(), timeout=30)
        out = h._dec(r.stdout) + h._dec(r.stderr)
        assert r.returncode == 0, out
        return out

    def principal(self, name: str) -> Path:
        """A principal with a random key, and a keytab holding it."""
        kt = self.dir / ("%s.keytab" % name.replace("/", "_"))
        self.kadmin("addprinc -randkey %s" % name)
        self.kadmin("ktadd -k %s %s" % (kt, name))
        return kt

    def kinit(self, name: str, keytab: Path) -> Path:
        """A ticket cache of `name`'s (kinit from its keytab), waiting for the KDC to answer."""
        cc = self.dir / ("cc_%s" % name.replace("/", "_"))
        deadline = time.monotonic() + 20
        while True:
            r = h.run_bounded(["/usr/bin/kinit", "-k", "-t", str(keytab), name], env=self.env(cc), timeout=15)
            if r.returncode == 0:
                return cc
            if time.monotonic() > deadline:
                raise RuntimeError("kinit %s: %s %s" % (name, h._dec(r.stdout), h._dec(r.stderr)))
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            h.kill_process_group(self.proc)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
