"""setWatches on a fresh connection to a ZooKeeper on 127.0.0.1:21810 (raw protocol)."""
import socket, struct, sys
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_watches_probe import conn, recvn, ustr, call
def vec(xs): return struct.pack(">i", len(xs)) + b"".join(ustr(x) for x in xs)
a = conn()
ac = struct.pack(">i", 1) + struct.pack(">i", 31) + ustr("world") + ustr("anyone")
def create(p, xid): return call(a, xid, 1, ustr(p) + struct.pack(">i", 0) + ac + struct.pack(">i", 0))
create("/sw", 100); create("/sw/a", 101); create("/sw/b", 102)
c = conn()
# relative zxid 1: everything changed after it
body = struct.pack(">q", 1) + vec(["/sw/a", "/sw/gone", "/sw/b"]) + vec(["/sw/b", "/sw/nothere"]) + vec(["/sw", "/sw/gone2", "/sw/a"])
pkt = struct.pack(">ii", -8, 101) + body
c.sendall(struct.pack(">i", len(pkt)) + pkt)
c.settimeout(2)
out = []
try:
    while True:
        n = struct.unpack(">i", recvn(c, 4))[0]; r = recvn(c, n)
        xid, zxid, err = struct.unpack(">iqi", r[:16])
        if xid == -1:
            t, st, ln = struct.unpack(">iii", r[16:28]); out.append("%d:%s" % (t, r[28:28+ln].decode()))
        else:
            out.append("reply xid=%d err=%d" % (xid, err))
except Exception as e:
    pass
print(",".join(out))
