"""pytest fixtures: Apache ZooKeeper and rzk servers on free loopback ports.

    zk_server      a fresh Apache ZooKeeper (module scope)
    rzk_server     a fresh rzk (module scope; skipped if the binary is missing)
    server         parametrised over both: tests using it run against each
    new_server     factory: new_server("zookeeper"|"rzk") -> started Server,
                   stopped at the end of the test

rzk's binary is $RZK_BIN, default target/debug/rzk. Tests needing it are
skipped (with the reason) only when that file does not exist.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zkharness as h  # noqa: E402

KINDS = ["zookeeper", "rzk"]


def _skip_if_unavailable(kind: str) -> None:
    if kind == "rzk" and not h.rzk_available():
        pytest.skip("rzk binary not found at %s (build it with `cargo build`, or set RZK_BIN)" % h.rzk_binary())
    if kind == "zookeeper" and not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed (apt-get install zookeeper)")


def _start(kind: str) -> h.Server:
    _skip_if_unavailable(kind)
    return h.make_server(kind).start()


@pytest.fixture(scope="module")
def zk_server():
    s = _start("zookeeper")
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def rzk_server():
    s = _start("rzk")
    yield s
    s.cleanup()


@pytest.fixture(scope="module", params=KINDS)
def server(request):
    """A running server of each kind in turn (module scope)."""
    s = _start(request.param)
    yield s
    s.cleanup()


@pytest.fixture
def new_server():
    started = []

    def factory(kind: str, **kw) -> h.Server:
        _skip_if_unavailable(kind)
        s = h.make_server(kind, **kw)
        started.append(s)
        return s.start()

    yield factory
    for s in started:
        s.cleanup()


@pytest.fixture
def kz(server):
    """A kazoo session on the test's server (test_robustness.py has its own, stricter one)."""
    from kazoo.client import KazooClient

    c = KazooClient(hosts=server.hosts, timeout=10.0)
    c.start(timeout=30)
    yield c
    c.stop()
    c.close()


@pytest.fixture(autouse=True)
def _server_alive_after_test(request):
    """Fail a test that crashed the server it used."""
    yield
    for name in ("server", "zk_server", "rzk_server"):
        if name in request.fixturenames:
            s = request.getfixturevalue(name)
            if s.proc is not None and not s.is_running():
                pytest.fail("%s died during the test\n%s" % (s.kind, s.log_tail()))


def pytest_sessionfinish(session, exitstatus):
    h.kill_all_started()


# Known gaps of rzk (issue 2 is still open; see the issue note). These tests run and are
# reported as xfail for rzk only, so each gap stays visible until it is fixed.
KNOWN_RZK_GAPS = {
    "tests/test_robustness.py::test_many_short_connections[rzk]": "flaky: a closed connection releases its maxClientCnxns slot asynchronously",
}


def pytest_collection_modifyitems(config, items):
    import pytest as _pytest

    for item in items:
        reason = next((r for k, r in KNOWN_RZK_GAPS.items() if item.nodeid.endswith(k.split("/", 1)[1])), None)
        if reason:
            item.add_marker(_pytest.mark.xfail(reason=reason, strict=False))
