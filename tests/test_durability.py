"""Durability: rzk's data directory is Apache ZooKeeper's, and nothing acknowledged is lost.

* interchange: a tree written by rzk (every node type, ACLs, sessions with ephemerals, a
  closed session, multi, with frequent log rolls and fuzzy snapshots) is read back by
  Apache ZooKeeper 3.8 from the same dataDir -- same znodes, data, ACLs and Stats -- and
  ZooKeeper's own TxnLogToolkit / SnapshotFormatter read rzk's files; and the reverse.
* sessions survive a restart with their timeouts and expire when their clients stay away.
* crash: writers go as fast as they can while rzk is SIGKILLed at random moments; after
  each restart every acknowledged write is there and no refused one is.
  DURABILITY_KILLS (default 6) and DURABILITY_ROUND_S (default 1.5) make it longer.
* a corrupt record in the middle of the log stops rzk with a clear message.
* full disk (a small tmpfs; needs root, skipped otherwise): writes fail with
  ConnectionLoss while reads and sessions go on; writes resume when space returns;
  nothing acknowledged is lost and nothing refused appears.
"""

from __future__ import annotations

import os
import shutil
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoNodeError, KazooException
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE

import zkharness as h

pytestmark = pytest.mark.skipif(not h.rzk_available(), reason="rzk binary not built")

ZK_CP = ":".join(h.ZK_JARS + ["/usr/share/java/snappy-java.jar"])


def server(kind: str, workdir: Path, **cfg) -> h.Server:
    s = h.make_server(kind, workdir=workdir, extra_cfg={k: str(v) for k, v in cfg.items()})
    s.keep_data = True
    return s


def kazoo(s: h.Server, auth=True, timeout=30.0) -> KazooClient:
    zk = KazooClient(hosts=s.hosts, timeout=timeout, connection_retry={"max_tries": 3, "delay": 0.1},
                     auth_data=[("digest", "user1:pw1")] if auth else None)
    zk.start(timeout=20)
    return zk


def close(zk: KazooClient) -> None:
    try:
        zk.stop()
        zk.close()
    except Exception:
        pass


def dump_tree(zk: KazooClient) -> dict:
    out = {}

    def walk(p):
        data, st = zk.get(p)
        acl, _ = zk.get_acls(p)
        kids = zk.get_children(p)
        out[p] = (data, tuple(st), sorted((a.perms, a.id.scheme, a.id.id) for a in acl), sorted(kids))
        for k in kids:
            walk(("" if p == "/" else p) + "/" + k)

    walk("/")
    return out


def workload(s: h.Server) -> int:
    """Writes one of everything; returns the live raw session's id (it owns ephemerals)."""
    zk = kazoo(s)
    digest = make_digest_acl("user1", "pw1", all=True)
    zk.create("/app", b"root")
    for i in range(40):
        zk.create("/app/n%d" % i, os.urandom(i % 13))
    for i in range(0, 40, 3):
        zk.delete("/app/n%d" % i)
    for i in range(12):
        zk.create("/app/seq-", b"s", sequence=True)
    zk.create("/secret", b"hidden", acl=[digest])
    zk.create("/readonly", b"ro", acl=READ_ACL_UNSAFE)
    zk.create("/empty", b"")
    zk.create("/acl", b"a")
    zk.set_acls("/acl", [digest] + list(OPEN_ACL_UNSAFE))
    for i in range(5):
        zk.set("/app/n1", b"v%d" % i)
    t = zk.transaction()
    t.create("/app/m1", b"m")
    t.set_data("/app/n2", b"mm")
    t.delete("/app/n4")
    t.commit()
    # A session that closes: its ephemerals go with a closeSession txn listing them.
    gone = kazoo(s)
    for i in range(3):
        gone.create("/app/gone-%d" % i, b"g", ephemeral=True)
    close(gone)
    # Containers and TTL nodes (raw protocol; kazoo has no API for them).
    raw = h.RawSession("127.0.0.1", s.port).connect(timeout_ms=30000)
    raw.create("/cont", b"c", flags=4, opcode=19)
    raw.create("/cont/child", b"", flags=0)
    raw.create("/ttl", b"t", flags=5, opcode=21, ttl=3_600_000)
    raw.create("/ttlseq-", b"t", flags=6, opcode=21, ttl=3_600_000)
    # A live session with ephemerals, left open when the server stops.
    for i in range(4):
        _, _, err, _ = raw.create("/app/eph-%d" % i, b"e", flags=1)
        assert err == 0
    raw.create("/app/ephseq-", b"e", flags=3)
    # Enough traffic to roll the log and take fuzzy snapshots (snapCount is small).
    for i in range(120):
        zk.set("/app/n5", b"x%d" % i)
        if i % 10 == 0:
            zk.create("/app/more-%d" % i, b"m" * i)
    session = raw.session_id
    raw.close()  # the socket only; the session lives on
    close(zk)
    return session


def stop(s: h.Server) -> None:
    s.stop()


def run_java(cls: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [h.ZK_JAVA, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dlog4j.configuration=file:/dev/null", "-cp", ZK_CP, cls, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def files(s: h.Server, prefix: str):
    return sorted(p for p in (s.datadir / "version-2").iterdir() if p.name.startswith(prefix + "."))


def zk_log_problems(s: h.Server) -> list:
    log = s.workdir / "zookeeper.log"
    if not log.exists():
        return []
    bad = []
    for line in log.read_text(errors="replace").splitlines():
        low = line.lower()
        if "error closing a command socket" in low:
            continue  # ZooKeeper's own race closing a four-letter-word socket (readiness probes)
        if "mismatch" in low or " error " in low or "crc" in low or "corrupt" in low:
            bad.append(line)
    return bad


@pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed")
def test_zookeeper_reads_what_rzk_wrote(tmp_path):
    wd = h.make_workdir("durable-rzk2zk")
    r = server("rzk", wd, snapCount=40).start()
    try:
        workload(r)
        zk = kazoo(r)
        before = dump_tree(zk)
        close(zk)
    finally:
        stop(r)
    logs, snaps = files(r, "log"), files(r, "snapshot")
    assert len(logs) >= 3 and len(snaps) >= 2, (logs, snaps)
    # ZooKeeper's own tools read rzk's files without complaint.
    for f in logs:
        p = run_java("org.apache.zookeeper.server.persistence.TxnLogToolkit", str(f))
        assert p.returncode == 0 and "EOF reached after" in p.stdout, p.stdout + p.stderr
        assert "CRC" not in p.stdout + p.stderr and "Exception" not in p.stdout + p.stderr, p.stdout + p.stderr
    for f in snaps:
        p = run_java("org.apache.zookeeper.server.SnapshotFormatter", str(f))
        assert p.returncode == 0 and "Last zxid" in p.stdout, p.stdout + p.stderr
        assert "Exception" not in p.stdout + p.stderr, p.stdout + p.stderr
    # A copy with only snapshot.0: ZooKeeper replays every txn rzk logged and compares
    # each one's TxnDigest with its own tree (a mismatch is logged as an error).
    wd0 = h.make_workdir("durable-rzk2zk-replay")
    shutil.copytree(r.datadir, wd0 / "data")
    for f in (wd0 / "data" / "version-2").iterdir():
        if f.name.startswith("snapshot.") and f.name != "snapshot.0":
            f.unlink()
    for d in (wd, wd0):
        z = server("zookeeper", d).start()
        try:
            zk = kazoo(z)
            after = dump_tree(zk)
            close(zk)
        finally:
            stop(z)
        assert set(after) == set(before)
        for p in before:
            assert after[p] == before[p], p
        assert zk_log_problems(z) == []
        log = (d / "zookeeper.log").read_text(errors="replace")
        assert "Snapshot loaded" in log
    shutil.rmtree(wd, ignore_errors=True)
    shutil.rmtree(wd0, ignore_errors=True)


@pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed")
def test_rzk_reads_what_zookeeper_wrote():
    wd = h.make_workdir("durable-zk2rzk")
    z = server("zookeeper", wd, snapCount=40).start()
    try:
        workload(z)
        zk = kazoo(z)
        before = dump_tree(zk)
        close(zk)
    finally:
        stop(z)
    chk = subprocess.run([str(h.rzk_binary()), "check", str(z.datadir)], capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0 and "dataDir OK" in chk.stdout, chk.stdout + chk.stderr
    assert "digests checked" in chk.stdout
    r = server("rzk", wd).start()
    try:
        zk = kazoo(r)
        after = dump_tree(zk)
        # And round trip: rzk adds to ZooKeeper's data, ZooKeeper reads it all.
        zk.create("/from-rzk", b"hi")
        before2 = dump_tree(zk)
        close(zk)
    finally:
        stop(r)
    assert set(after) == set(before)
    for p in before:
        assert after[p] == before[p], p
    z2 = server("zookeeper", wd).start()
    try:
        zk = kazoo(z2)
        after2 = dump_tree(zk)
        close(zk)
    finally:
        stop(z2)
    for p in before2:
        assert after2[p] == before2[p], p
    assert zk_log_problems(z2) == []
    shutil.rmtree(wd, ignore_errors=True)


@pytest.mark.skipif(not h.zookeeper_available(), reason="Apache ZooKeeper not installed")
def test_compressed_snapshots_interchange():
    # rzk writes gz and snappy snapshots ZooKeeper's SnapshotFormatter reads...
    for method in ("gz", "snappy"):
        wd = h.make_workdir("durable-" + method)
        r = server("rzk", wd, snapCount=10, **{"snapshot.compression.method": method}).start()
        try:
            zk = kazoo(r, auth=False)
            for i in range(30):
                zk.create("/n%d" % i, b"x" * i)
            close(zk)
        finally:
            stop(r)
        snaps = [f for f in files(r, "snapshot") if f.name.endswith("." + method)]
        assert len(snaps) >= 2
        for f in snaps:
            p = run_java("org.apache.zookeeper.server.SnapshotFormatter", str(f))
            assert p.returncode == 0 and "Last zxid" in p.stdout and "Exception" not in p.stderr, p.stdout + p.stderr
        shutil.rmtree(wd, ignore_errors=True)
    # ...and reads the gz snapshots ZooKeeper writes.
    wd = h.make_workdir("durable-zkgz")
    z = server("zookeeper", wd, snapCount=10, **{"snapshot.compression.method": "gz"}).start()
    try:
        zk = kazoo(z, auth=False)
        for i in range(30):
            zk.create("/n%d" % i, b"x" * i)
        close(zk)
    finally:
        stop(z)
    assert any(f.name.endswith(".gz") for f in files(z, "snapshot"))
    chk = subprocess.run([str(h.rzk_binary()), "check", str(z.datadir)], capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0 and ".gz" in chk.stdout, chk.stdout + chk.stderr
    shutil.rmtree(wd, ignore_errors=True)


def test_sessions_survive_restart_and_then_expire():
    wd = h.make_workdir("durable-sessions")
    r = server("rzk", wd).start()
    try:
        keep = h.RawSession("127.0.0.1", r.port).connect(timeout_ms=20000)
        keep.create("/kept", b"k", flags=1)
        lapse = h.RawSession("127.0.0.1", r.port).connect(timeout_ms=2000)
        lapse.create("/lapsed", b"l", flags=1)
        ids = (keep.session_id, keep.passwd)
        keep.close()
        lapse.close()
        os.killpg(r.proc.pid, signal.SIGKILL)
        r.proc.wait(10)
        r.stop()
        r.start()
        zk = kazoo(r)
        assert zk.exists("/kept") and zk.exists("/lapsed"), "ephemerals come back with their sessions"
        # The client of `keep` returns in time and keeps its session; `lapse` never does.
        back = h.RawSession("127.0.0.1", r.port).connect(timeout_ms=20000, session_id=ids[0], passwd=ids[1])
        assert back.session_id == ids[0]
        h.wait_until(lambda: zk.exists("/lapsed") is None, timeout=15, what="the lapsed session to expire")
        back.ping()
        assert zk.exists("/kept").ephemeralOwner == ids[0]
        back.close()
        close(zk)
    finally:
        r.cleanup()
        shutil.rmtree(wd, ignore_errors=True)


class Writers:
    """Threads writing as fast as they can (async, a window each); records outcomes."""

    def __init__(self, hosts: str, n: int, tag: str):
        self.acked, self.refused, self.lock = [], [], threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(hosts, "%s-%d" % (tag, i)), daemon=True) for i in range(n)]
        self.clients = []

    def run(self, hosts: str, name: str) -> None:
        zk = KazooClient(hosts=hosts, timeout=10, connection_retry={"max_tries": 0})
        try:
            zk.start(timeout=10)
        except Exception:
            return
        self.clients.append(zk)
        window = threading.Semaphore(64)
        seq = 0
        while not self.stop.is_set():
            if not window.acquire(timeout=0.5):
                continue
            seq += 1
            if seq % 50 == 0:
                path = "/nope-%s/%d" % (name, seq)  # refused: no parent
            else:
                path = "/crash/%s-%d" % (name, seq)

            def done(a, path=path):
                window.release()
                try:
                    a.get()
                    with self.lock:
                        self.acked.append(path)
                except NoNodeError:
                    with self.lock:
                        self.refused.append(path)
                except Exception:
                    pass  # connection lost: outcome unknown

            try:
                zk.create_async(path, b"d").rawlink(done)
            except Exception:
                window.release()
                time.sleep(0.05)

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)
        for zk in self.clients:
            threading.Thread(target=close, args=(zk,), daemon=True).start()


def test_sigkill_loses_no_acknowledged_write():
    kills = int(os.environ.get("DURABILITY_KILLS", "6"))
    round_s = float(os.environ.get("DURABILITY_ROUND_S", "1.5"))
    wd = h.make_workdir("durable-crash")
    r = server("rzk", wd, snapCount=300).start()
    rng = random.Random(int(os.environ.get("DURABILITY_SEED", "1")))
    acked, refused = set(), set()
    try:
        zk = kazoo(r, auth=False)
        zk.create("/crash")
        close(zk)
        for k in range(kills):
            w = Writers(r.hosts, 4, "k%d" % k)
            w.start()
            time.sleep(rng.uniform(0.3, round_s))
            os.killpg(r.proc.pid, signal.SIGKILL)
            r.proc.wait(10)
            w.finish()
            acked.update(w.acked)
            refused.update(w.refused)
            r.stop()
            r.start()
            zk = kazoo(r, auth=False)
            present = set("/crash/" + c for c in zk.get_children("/crash"))
            missing = [p for p in acked if p.startswith("/crash/") and p not in present]
            assert not missing, "acknowledged writes lost after kill %d: %s" % (k + 1, missing[:10])
            for p in refused:
                assert zk.exists(p) is None, p
            close(zk)
        chk = subprocess.run([str(h.rzk_binary()), "check", str(r.datadir)], capture_output=True, text=True, timeout=120)
        print("\ncrash test: %d SIGKILLs, %d acknowledged writes checked, %d refused writes checked absent"
              % (kills, len(acked), len(refused)))
        assert len(acked) > kills * 50, "the writers did write"
        assert chk.returncode == 0, chk.stdout + chk.stderr
    finally:
        r.cleanup()
        shutil.rmtree(wd, ignore_errors=True)


def test_corrupt_record_in_the_middle_refuses_to_start():
    wd = h.make_workdir("durable-corrupt")
    r = server("rzk", wd).start()
    try:
        zk = kazoo(r, auth=False)
        for i in range(30):
            zk.create("/c%d" % i, b"x" * 50)
        close(zk)
    finally:
        r.stop()
    log = files(r, "log")[-1]
    b = bytearray(log.read_bytes())
    b[16 + 12 + 30] ^= 0xFF  # inside the first entry
    log.write_bytes(bytes(b))
    p = subprocess.run([str(h.rzk_binary()), "server", "--config", str(r.cfg_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "corrupt at offset 16" in p.stderr and "not a torn tail" in p.stderr, p.stderr[-2000:]
    chk = subprocess.run([str(h.rzk_binary()), "check", str(r.datadir)], capture_output=True, text=True, timeout=60)
    assert chk.returncode == 1 and "BAD" in chk.stdout
    shutil.rmtree(wd, ignore_errors=True)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(path)], capture_output=True).returncode == 0


def test_full_disk_refuses_writes_keeps_reads_and_recovers():
    wd = h.make_workdir("durable-full")
    mnt = wd / "data"
    if not _mount_tmpfs(mnt, "6m"):
        pytest.skip("needs root to mount a small tmpfs")
    filler = wd / "data" / "filler"
    try:
        r = server("rzk", wd, preAllocSize=64, snapCount=100000).start()
        try:
            zk = kazoo(r, auth=False)
            zk.create("/full", b"")
            acked, refused = [], []
            # Fill the disk, leaving a little room.
            free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, free - 200 * 1024))
            i = 0
            while len(refused) < 20 and i < 20000:
                i += 1
                p = "/full/n%d" % i
                try:
                    zk.create(p, b"y" * 2000)
                    acked.append(p)
                except ConnectionLoss:
                    refused.append(p)
            assert refused, "the disk never filled"
            # Reads and sessions go on.
            assert zk.exists("/full") is not None
            assert len(zk.get_children("/full")) == len(acked)
            time.sleep(2.5)  # longer than the minimum session timeout: pings keep the session
            assert zk.connected and zk.exists("/full") is not None
            for p in refused:
                assert zk.exists(p) is None, p
            # Space returns: writes resume.
            filler.unlink()
            zk.create("/full/after", b"z")
            acked.append("/full/after")
            close(zk)
        finally:
            r.stop()
        r.start()
        zk = kazoo(r, auth=False)
        present = set("/full/" + c for c in zk.get_children("/full"))
        assert set(acked) <= present, sorted(set(acked) - present)[:5]
        assert not (set(refused) & present)
        close(zk)
        r.stop()
        print("\nfull disk: %d writes acknowledged, %d refused with ConnectionLoss, all as expected" % (len(acked), len(refused)))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(wd, ignore_errors=True)
