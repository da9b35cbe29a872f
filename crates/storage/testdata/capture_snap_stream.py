# Captures what a real Apache ZooKeeper 3.8 leader sends a learner after a SNAP packet:
# servers 1 and 2 form a quorum (forceSnapshotSync), kazoo writes some data, server 3 joins
# through a proxy that records the leader -> learner bytes. Run with /tmp/kvenv/bin/python.
# Writes /tmp/zstore-cap/leader_to_learner.bin; zk380_snap_stream.bin is what follows the
# SNAP packet (LEADERINFO is 24 bytes and SNAP 20, so from byte 44 on).
import os, socket, subprocess, sys, threading, time, struct, shutil, signal
W = "/tmp/zstore-cap/run"
shutil.rmtree(W, ignore_errors=True); os.makedirs(W)
CP = ":".join(["/usr/share/java/zookeeper.jar","/usr/share/java/zookeeper-jute.jar","/usr/share/java/slf4j-api.jar","/usr/share/java/slf4j-log4j12.jar","/usr/share/java/log4j-1.2.jar"])
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
q = {i: free() for i in (1,2,3)}; e = {i: free() for i in (1,2,3)}; c = {i: free() for i in (1,2,3)}
proxy = {i: free() for i in (1,2)}
procs = []
def cfg(i, via_proxy):
    d = f"{W}/s{i}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/myid","w").write(str(i))
    lines = ["tickTime=500","initLimit=20","syncLimit=10",f"dataDir={d}",f"clientPort={c[i]}","clientPortAddress=127.0.0.1",
             "admin.enableServer=false","4lw.commands.whitelist=*","standaloneEnabled=false"]
    for j in (1,2,3):
        qp = proxy[j] if (via_proxy and j in proxy) else q[j]
        lines.append(f"server.{j}=127.0.0.1:{qp}:{e[j]}")
    open(f"{d}/zoo.cfg","w").write("\n".join(lines)+"\n")
    return f"{d}/zoo.cfg"
def start(i, via_proxy=False):
    f = cfg(i, via_proxy)
    p = subprocess.Popen(["java","-Xmx128m","-XX:+UseSerialGC","-Dzookeeper.forceSnapshotSync=true","-cp",CP,
                          "org.apache.zookeeper.server.quorum.QuorumPeerMain",f],
                         stdout=open(f"{W}/s{i}.out","w"), stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p); return p
def fourlw(i, cmd):
    try:
        s = socket.create_connection(("127.0.0.1", c[i]), timeout=2); s.sendall(cmd.encode())
        out = b""
        while True:
            b = s.recv(4096)
            if not b: break
            out += b
        return out.decode()
    except Exception as ex:
        return ""
def mode(i):
    for l in fourlw(i, "srvr").splitlines():
        if l.startswith("Mode:"): return l.split()[1]
    return None
captured = {1: bytearray(), 2: bytearray()}
def serve_proxy(j):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ls.bind(("127.0.0.1", proxy[j])); ls.listen(4)
    while True:
        a, _ = ls.accept()
        b = socket.create_connection(("127.0.0.1", q[j]))
        def pump(src, dst, log):
            while True:
                try: d = src.recv(65536)
                except Exception: d = b""
                if not d:
                    try: dst.shutdown(socket.SHUT_WR)
                    except Exception: pass
                    return
                if log is not None: log.extend(d)
                dst.sendall(d)
        threading.Thread(target=pump, args=(a, b, None), daemon=True).start()
        threading.Thread(target=pump, args=(b, a, captured[j]), daemon=True).start()
try:
    for j in proxy: threading.Thread(target=serve_proxy, args=(j,), daemon=True).start()
    start(1); start(2)
    t0 = time.time()
    while time.time() - t0 < 60 and not ({mode(1), mode(2)} >= {"leader"}): time.sleep(0.5)
    print("modes", mode(1), mode(2))
    leader = 1 if mode(1) == "leader" else 2
    # Data via kazoo.
    sys.path.insert(0, "/tmp/kvenv/lib")
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl
    clients = []
    for k in range(4):
        kz = KazooClient(hosts=f"127.0.0.1:{c[1]}", timeout=10 + k); kz.start(); clients.append(kz)
    kz = clients[0]
    kz.create("/app", b"root data")
    for k in range(30):
        kz.create(f"/app/n{k}", (b"x" * k) or None if k % 7 else b"")
    kz.create("/app/seq-", b"s", sequence=True); kz.create("/app/seq-", b"s", sequence=True)
    kz.create("/secret", b"pw", acl=[make_digest_acl("u", "p", all=True)])
    kz.set("/app/n3", b"changed"); kz.delete("/app/n4")
    for k, cl in enumerate(clients[1:]):
        cl.create(f"/eph{k}", b"e", ephemeral=True)
    kz.create("/cont", b"", makepath=True)
    time.sleep(1)
    start(3, via_proxy=True)
    t0 = time.time()
    while time.time() - t0 < 60 and mode(3) != "follower": time.sleep(0.5)
    print("mode 3", mode(3), "leader", leader, "captured", len(captured[leader]))
    time.sleep(1)
    open("/tmp/zstore-cap/leader_to_learner.bin", "wb").write(bytes(captured[leader]))
    open("/tmp/zstore-cap/dump.txt", "w").write(fourlw(leader, "dump") + fourlw(leader, "srvr"))
    for cl in clients: cl.stop(); cl.close()
finally:
    for p in procs:
        try: os.killpg(p.pid, signal.SIGKILL)
        except Exception: pass
        p.wait()
