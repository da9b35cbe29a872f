"""A TCP proxy that tests can cut and heal, one direction at a time.

Ensemble tests put one `Proxy` on every peer link: server i reaches server j's quorum
and election ports through proxies of its own (i's zoo.cfg names the proxy ports in
`server.j`), so the test decides which bytes flow between which servers.

A proxy forwards each accepted connection to its target. Per direction (UP = from the
side that connected to the target, DOWN = back) it can be

* open     bytes flow;
* stalled  bytes are neither read nor written: they wait in the proxy and the kernel
           buffers (a black hole that gives them back when reopened, as a network does
           when a partition heals before TCP gives up), and the sender eventually blocks;

and the whole proxy can be

* cut      every connection through it is reset (RST both ways) and new ones are
           accepted and reset at once, until `heal()`.

All proxies of a test share one `ProxyHub`: a single thread with a selector, so a
hundred proxies cost one thread. Every state change runs on that thread (`hub.call`),
so a test's `cut()` returns only when the cut is done. Loopback only; the hub thread
is a daemon and `close()` resets every connection.
"""

from __future__ import annotations

import errno
import queue
import selectors
import socket
import struct
import threading
from typing import Callable, Dict, List, Optional, Tuple

UP = "up"  # connector -> target
DOWN = "down"  # target -> connector

# Bytes a proxy holds per direction before it stops reading that direction's source.
_BUF_MAX = 256 * 1024


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), so the peer sees a reset, not an orderly EOF."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Pipe:
    """One proxied connection: `a` was accepted from the connector, `b` goes to the target."""

    def __init__(self, proxy: "Proxy", a: socket.socket, b: socket.socket):
        self.proxy = proxy
        self.a, self.b = a, b
        self.buf = {UP: bytearray(), DOWN: bytearray()}
        self.eof = {UP: False, DOWN: False}  # the source of that direction sent EOF
        self.shut = {UP: False, DOWN: False}  # EOF passed on to the destination
        self.closed = False
        # bytes of the connector's first message held until proxy.rewrite_first_up takes them
        self.head: Optional[bytearray] = bytearray() if proxy.rewrite_first_up else None

    def src(self, d: str) -> socket.socket:
        return self.a if d == UP else self.b

    def dst(self, d: str) -> socket.socket:
        return self.b if d == UP else self.a


class Proxy:
    """A listening port on 127.0.0.1 forwarding to `target`; see the module doc."""

    def __init__(self, hub: "ProxyHub", name: str, target: Tuple[str, int]):
        self.hub = hub
        self.name = name
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.port: int = self.listener.getsockname()[1]
        self.open = {UP: True, DOWN: True}
        self.is_cut = False
        self.pipes: List[_Pipe] = []
        self.accepted = 0  # connections ever forwarded (tests use it to see a link was used)
        # Optional: called with the first bytes the connector sent (growing) until it
        # returns the bytes to forward instead (None = not enough yet). For protocols
        # that announce an address the peer will connect back to.
        self.rewrite_first_up: Optional[Callable[[bytes], Optional[bytes]]] = None

    # -- test API (thread-safe: runs on the hub thread) ------------------------------
    def cut(self) -> None:
        """Reset every connection through the proxy and refuse new ones until heal()."""
        self.hub.call(self._cut)

    def heal(self) -> None:
        """Forward new connections again and reopen both directions."""
        self.hub.call(self._heal)

    def stall(self, direction: str) -> None:
        """Stop moving bytes in one direction (UP or DOWN); connections stay up."""
        assert direction in (UP, DOWN)
        self.hub.call(lambda: self._set_open(direction, False))

    def unstall(self, direction: str) -> None:
        assert direction in (UP, DOWN)
        self.hub.call(lambda: self._set_open(direction, True))

    def retarget(self, target: Tuple[str, int], reset_existing: bool = True) -> None:
        """New connections go to `target`; existing ones are reset unless told otherwise."""

        def f():
            self.target = target
            if reset_existing:
                for p in list(self.pipes):
                    self.hub._close_pipe(p, rst=True)

        self.hub.call(f)

    def connections(self) -> int:
        return self.hub.call(lambda: len(self.pipes))

    def __repr__(self):
        return "<Proxy %s :%d -> %s:%d%s>" % (
            self.name, self.port, self.target[0], self.target[1], " CUT" if self.is_cut else "")

    # -- hub thread ----------------------------------------------------------------------
    def _cut(self) -> None:
        self.is_cut = True
        for p in list(self.pipes):
            self.hub._close_pipe(p, rst=True)

    def _heal(self) -> None:
        self.is_cut = False
        self._set_open(UP, True)
        self._set_open(DOWN, True)

    def _set_open(self, d: str, v: bool) -> None:
        self.open[d] = v
        for p in self.pipes:
            self.hub._update(p)


class ProxyHub:
    """The thread and selector behind every Proxy of a test. Use as a context manager or
    call close()."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.proxies: List[Proxy] = []
        self._calls: "queue.Queue[Tuple[Callable, queue.Queue]]" = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="proxyhub", daemon=True)
        self._thread.start()

    # -- API ---------------------------------------------------------------------------
    def add(self, name: str, target: Tuple[str, int],
            rewrite_first_up: Optional[Callable[[bytes], Optional[bytes]]] = None) -> Proxy:
        def f():
            p = Proxy(self, name, target)
            p.rewrite_first_up = rewrite_first_up
            self.sel.register(p.listener, selectors.EVENT_READ, ("listen", p))
            self.proxies.append(p)
            return p

        return self.call(f)

    def call(self, fn: Callable, timeout: float = 10.0):
        """Run fn on the hub thread and return its result (or raise its exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        if self._stop:
            raise RuntimeError("proxy hub is closed")
        done: "queue.Queue" = queue.Queue(1)
        self._calls.put((fn, done))
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        ok, v = done.get(timeout=timeout)
        if not ok:
            raise v
        return v

    def close(self) -> None:
        if self._stop:
            return

        def f():
            for p in self.proxies:
                for pipe in list(p.pipes):
                    self._close_pipe(pipe, rst=True)
                try:
                    self.sel.unregister(p.listener)
                except (KeyError, ValueError):
                    pass
                p.listener.close()
            self._stop = True

        try:
            self.call(f)
        except Exception:
            self._stop = True
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- loop --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop:
            for key, mask in self.sel.select(timeout=0.5):
                kind, obj = key.data
                try:
                    if kind == "wake":
                        self._drain_calls()
                    elif kind == "listen":
                        self._accept(obj)
                    else:
                        self._io(obj, key.fileobj, mask)
                except Exception as e:  # never let one connection kill the hub
                    if kind == "pipe":
                        self._close_pipe(obj, rst=True)
                    else:
                        print("proxyhub: %s: %r" % (kind, e))
            self._drain_calls()
        self.sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drain_calls(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                fn, done = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((True, fn()))
            except Exception as e:
                done.put((False, e))

    def _accept(self, p: Proxy) -> None:
        while True:
            try:
                a, _ = p.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if p.is_cut:
                _reset(a)
                continue
            try:
                b = socket.create_connection(p.target, timeout=2.0)
            except OSError:
                _reset(a)  # target down: the connector sees what it would without us
                continue
            for s in (a, b):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipe = _Pipe(p, a, b)
            p.pipes.append(pipe)
            p.accepted += 1
            self.sel.register(a, 0 or selectors.EVENT_READ, ("pipe", pipe))
            self.sel.register(b, selectors.EVENT_READ, ("pipe", pipe))
            self._update(pipe)

    def _update(self, pipe: _Pipe) -> None:
        """Recompute what the selector waits for on both sockets of a pipe."""
        if pipe.closed:
            return
        want = {pipe.a: 0, pipe.b: 0}
        for d in (UP, DOWN):
            if not pipe.proxy.open[d]:
                continue
            if not pipe.eof[d] and len(pipe.buf[d]) < _BUF_MAX:
                want[pipe.src(d)] |= selectors.EVENT_READ
            if pipe.buf[d]:
                want[pipe.dst(d)] |= selectors.EVENT_WRITE
        for s, ev in want.items():
            # selectors cannot register 0 events; READ on a socket whose direction is
            # stalled would spin, so park it with modify only when there is something.
            try:
                if ev:
                    self.sel.modify(s, ev, ("pipe", pipe))
                else:
                    self.sel.unregister(s)
            except KeyError:
                if ev:
                    self.sel.register(s, ev, ("pipe", pipe))
            except ValueError:
                pass

    def _io(self, pipe: _Pipe, sock: socket.socket, mask: int) -> None:
        if pipe.closed:
            return
        for d in (UP, DOWN):
            if not pipe.proxy.open[d]:
                continue
            if mask & selectors.EVENT_READ and sock is pipe.src(d) and not pipe.eof[d]:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    self._close_pipe(pipe, rst=True)
                    return
                if data == b"":
                    pipe.eof[d] = True
                    if d == UP and pipe.head is not None:  # EOF before a whole first message
                        pipe.buf[d] += pipe.head
                        pipe.head = None
                elif data and d == UP and pipe.head is not None:
                    pipe.head += data
                    out = pipe.proxy.rewrite_first_up(bytes(pipe.head))
                    if out is not None:
                        pipe.buf[d] += out
                        pipe.head = None
                elif data:
                    pipe.buf[d] += data
            if mask & selectors.EVENT_WRITE and sock is pipe.dst(d) and pipe.buf[d]:
                try:
                    n = sock.send(pipe.buf[d])
                    del pipe.buf[d][:n]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self._close_pipe(pipe, rst=True)
                    return
        # pass EOFs on once their direction is drained
        for d in (UP, DOWN):
            if pipe.eof[d] and not pipe.buf[d] and not pipe.shut[d] and pipe.proxy.open[d]:
                try:
                    pipe.dst(d).shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                pipe.shut[d] = True
        if pipe.shut[UP] and pipe.shut[DOWN]:
            self._close_pipe(pipe, rst=False)
            return
        self._update(pipe)

    def _close_pipe(self, pipe: _Pipe, rst: bool) -> None:
        if pipe.closed:
            return
        pipe.closed = True
        for s in (pipe.a, pipe.b):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            if rst:
                _reset(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass
        try:
            pipe.proxy.pipes.remove(pipe)
        except ValueError:
            pass


# QuorumCnxManager's first message on an election connection: long protocol version
# (-65536 = v1, -65535 = v2), long sid, int length, "host:port" (v2: several, joined by
# "|"). A server that wins the connection challenge connects back to that address, which
# would bypass the proxies; so election proxies rewrite it to the proxy of the way back.
ELECTION_PROTOCOL_VERSIONS = (-65536, -65535)


def election_address_rewriter(new_addr: str) -> Callable[[bytes], Optional[bytes]]:
    def rewrite(head: bytes) -> Optional[bytes]:
        if len(head) < 8:
            return None
        (version,) = struct.unpack_from(">q", head, 0)
        if version not in ELECTION_PROTOCOL_VERSIONS:
            return head  # the old protocol (sid only): nothing to rewrite
        if len(head) < 20:
            return None
        (n,) = struct.unpack_from(">i", head, 16)
        if n < 0 or n > 4096:
            return head  # not what we expected: pass it on untouched
        if len(head) < 20 + n:
            return None
        addr = new_addr.encode()
        return head[:16] + struct.pack(">i", len(addr)) + addr + head[20 + n:]

    return rewrite


def self_test() -> None:
    """A quick check of cut/stall/heal against an echo server (python tests/peerproxy.py)."""
    import time

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def echo():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return

            def serve(c=c):
                try:
                    while True:
                        d = c.recv(65536)
                        if not d:
                            break
                        c.sendall(d)
                except OSError:
                    pass
                c.close()

            threading.Thread(target=serve, daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()
    with ProxyHub() as hub:
        p = hub.add("echo", srv.getsockname())
        c = socket.create_connection(("127.0.0.1", p.port), timeout=2)
        c.sendall(b"hello")
        assert c.recv(100) == b"hello"
        p.stall(DOWN)
        c.sendall(b"again")
        c.settimeout(0.3)
        try:
            c.recv(100)
            raise AssertionError("stalled direction delivered bytes")
        except socket.timeout:
            pass
        p.unstall(DOWN)
        c.settimeout(2)
        assert c.recv(100) == b"again"
        p.cut()
        try:
            assert c.recv(100) == b""
        except ConnectionResetError:
            pass
        try:
            c2 = socket.create_connection(("127.0.0.1", p.port), timeout=2)
            assert c2.recv(100) == b""
        except ConnectionResetError:
            pass
        p.heal()
        c3 = socket.create_connection(("127.0.0.1", p.port), timeout=2)
        c3.sendall(b"x" * 1_000_000)
        got = 0
        while got < 1_000_000:
            got += len(c3.recv(1 << 20))
        assert got == 1_000_000
        c3.close()
        time.sleep(0.1)
        assert p.connections() == 0, p.connections()
        # the election header is rewritten, whatever way it arrives in pieces
        r = hub.add("election", srv.getsockname(), election_address_rewriter("127.0.0.1:7"))
        c4 = socket.create_connection(("127.0.0.1", r.port), timeout=2)
        old_addr = b"127.0.0.1:38888"
        head = struct.pack(">qqi", -65535, 3, len(old_addr)) + old_addr + b"rest"
        for i in range(0, len(head), 5):
            c4.sendall(head[i:i + 5])
            time.sleep(0.01)
        want = struct.pack(">qqi", -65535, 3, 11) + b"127.0.0.1:7" + b"rest"
        got = b""
        while len(got) < len(want):
            got += c4.recv(100)
        assert got == want, got
        c4.close()
    srv.close()
    print("peerproxy self-test ok")


if __name__ == "__main__":
    self_test()
