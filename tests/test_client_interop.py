"""rzk-client's recipes interoperate with kazoo's: a kazoo Lock and the rzk lock example
contend for one lock, a kazoo Election and the rzk election example for one leadership,
on the same path, against Apache ZooKeeper and rzk. Mutual exclusion is checked twice:
each holder writes its name to an owner node and reads it back before releasing, and
the holding intervals (wall clock, measured inside the real holds) must not overlap.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import zkharness as h

EXAMPLES = h.REPO_ROOT / "target" / "debug" / "examples"


def example(name: str) -> Path:
    """The rzk-client example binary (built with cargo if `cargo test` has not built it)."""
    p = EXAMPLES / name
    if not p.is_file():
        r = h.run_bounded(["cargo", "build", "-q", "-p", "rzk-client", "--example", name], timeout=600, cwd=str(h.REPO_ROOT))
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    return p


def now_ms() -> int:
    return int(time.time() * 1000)


def overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def check_exclusive(intervals):
    for i, a in enumerate(intervals):
        for b in intervals[i + 1:]:
            if a[2] != b[2]:
                assert not overlaps(a, b), "two holders at once: %r %r" % (a, b)


def parse_rzk(out: str, start_word: str, end_word: str):
    """(start_ms, end_ms, 'rzk') from the example's ACQUIRED/RELEASED (or LEADING/RESIGNED) lines."""
    starts, spans = {}, []
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        at = [int(p[3:]) for p in parts if p.startswith("at=")]
        if parts[0] == start_word:
            starts["cur"] = at[0]
        elif parts[0] == end_word and "cur" in starts:
            spans.append((starts.pop("cur"), at[0], "rzk"))
    return spans


@pytest.fixture
def kazoo(server):
    zk = KazooClient(hosts=server.hosts, timeout=10)
    zk.start(timeout=30)
    yield zk
    zk.stop()
    zk.close()


def test_lock_kazoo_and_rzk_exclude_each_other(server, kazoo):
    path = "/interop-lock-%d" % now_ms()
    owner = path + "-owner"
    kazoo.ensure_path(owner)
    rounds, hold_ms = 5, 150
    proc = h.spawn(
        [str(example("lock")), "--server", server.hosts, "--path", path, "--id", "rzk", "--hold-ms", str(hold_ms), "--rounds", str(rounds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    spans, violations, saw_rzk_contender = [], [], []

    def kazoo_side():
        lock = kazoo.Lock(path, "kazoo")
        for _ in range(rounds):
            with lock:
                t0 = now_ms()
                kazoo.set(owner, b"kazoo")
                contenders = lock.contenders()
                if "rzk" in contenders:
                    saw_rzk_contender.append(contenders)
                time.sleep(hold_ms / 1000)
                data, _ = kazoo.get(owner)
                if data != b"kazoo":
                    violations.append(data)
                spans.append((t0, now_ms(), "kazoo"))
            time.sleep(0.02)

    t = threading.Thread(target=kazoo_side)
    t.start()
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        h.kill_process_group(proc, term_timeout=1)
    t.join(60)
    out = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "VIOLATION" not in out, out
    assert not violations, violations
    rzk_spans = parse_rzk(out, "ACQUIRED", "RELEASED")
    assert len(rzk_spans) == rounds and len(spans) == rounds, (out, spans)
    check_exclusive(spans + rzk_spans)
    # Fencing tokens from the rzk side only grow.
    tokens = [int(p[6:]) for line in out.splitlines() for p in line.split() if p.startswith("token=")]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    # Our node is a contender kazoo recognises (same naming, same ordering).
    assert saw_rzk_contender or rounds == 0
    assert kazoo.get_children(path) == []


def test_election_kazoo_and_rzk_take_turns(server, kazoo):
    path = "/interop-election-%d" % now_ms()
    rounds, hold_ms = 3, 300
    proc = h.spawn(
        [str(example("election")), "--server", server.hosts, "--path", path, "--id", "rzk", "--hold-ms", str(hold_ms), "--rounds", str(rounds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    spans, seen_leaders = [], []

    def lead():
        t0 = now_ms()
        time.sleep(hold_ms / 1000)
        spans.append((t0, now_ms(), "kazoo"))

    def kazoo_side():
        election = kazoo.Election(path, "kazoo")
        for _ in range(rounds):
            election.run(lead)
            time.sleep(0.02)

    def observer():
        # A third party reading the election: kazoo's contenders() lists rzk too.
        election = kazoo.Election(path)
        deadline = time.time() + 20
        while time.time() < deadline and len(spans) < rounds:
            try:
                c = election.contenders()
            except Exception:
                c = []
            if c:
                seen_leaders.append(c[0])
            time.sleep(0.05)

    threads = [threading.Thread(target=kazoo_side), threading.Thread(target=observer)]
    for t in threads:
        t.start()
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        h.kill_process_group(proc, term_timeout=1)
    for t in threads:
        t.join(60)
    out = out.decode()
    assert proc.returncode == 0, err.decode()
    rzk_spans = parse_rzk(out, "LEADING", "RESIGNED")
    assert len(rzk_spans) == rounds and len(spans) == rounds, (out, spans)
    check_exclusive(spans + rzk_spans)
    assert "rzk" in seen_leaders and "kazoo" in seen_leaders, seen_leaders
