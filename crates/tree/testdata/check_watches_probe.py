"""checkWatches/removeWatches against a ZooKeeper on 127.0.0.1:21810 (raw protocol)."""
import socket, struct
def conn():
    s = socket.create_connection(("127.0.0.1", 21810))
    body = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0"*16 + b"\0"
    s.sendall(struct.pack(">i", len(body)) + body)
    n = struct.unpack(">i", recvn(s, 4))[0]; recvn(s, n)
    return s
def recvn(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d: raise EOFError
        b += d
    return b
def ustr(x): x = x.encode(); return struct.pack(">i", len(x)) + x
def call(s, xid, op, body):
    pkt = struct.pack(">ii", xid, op) + body
    s.sendall(struct.pack(">i", len(pkt)) + pkt)
    while True:
        n = struct.unpack(">i", recvn(s, 4))[0]; r = recvn(s, n)
        rxid, zxid, err = struct.unpack(">iqi", r[:16])
        if rxid == xid: return err
if __name__ == "__main__":
    a = conn(); b = conn()
    print("create", call(a, 1, 1, ustr("/cw") + struct.pack(">i", 0) + struct.pack(">i", 1) + struct.pack(">i", 31) + ustr("world") + ustr("anyone") + struct.pack(">i", 0)))
    print("a getData watch", call(a, 2, 4, ustr("/cw") + b"\1"))
    for t, name in [(2, "Data"), (1, "Children"), (3, "Any")]:
        print("b checkWatches", name, call(b, 10 + t, 17, ustr("/cw") + struct.pack(">i", t)))
        print("b removeWatches", name, call(b, 20 + t, 18, ustr("/cw") + struct.pack(">i", t)))
    print("a checkWatches Data", call(a, 31, 17, ustr("/cw") + struct.pack(">i", 2)))
    print("b checkWatches Persistent(4)", call(b, 32, 17, ustr("/cw") + struct.pack(">i", 4)))
