"""rzk's web console (served by the AdminServer under /console/) in a real headless browser:
Debian's chromium driven through chromedriver (tests/webdriver.py, the WebDriver protocol
over HTTP). What a browser shows is checked against a real client, kazoo: the console's
edits are seen by kazoo, kazoo's ACLs refuse the console as they refuse any client, the
ensemble and the live charts render, and the console refuses remote clients by default.

Screenshots of each view are kept as test artifacts in $RZK_TEST_ARTIFACTS (default
target/test-artifacts/console).
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zkharness as h  # noqa: E402
import webdriver  # noqa: E402

pytestmark = pytest.mark.timeout(120)

ARTIFACTS = Path(os.environ.get("RZK_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "target" / "test-artifacts" / "console"))


def http(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_rzk(extra=None):
    if not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    port = h.free_port()
    cfg = {"admin.enableServer": "true", "admin.serverAddress": "0.0.0.0", "admin.serverPort": str(port)}
    cfg.update(extra or {})
    s = h.make_server("rzk", extra_cfg=cfg).start()
    s.admin_port = port
    return s


def non_loopback_address():
    """An address of this machine that is not loopback, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.connect(("192.0.2.1", 9))  # no packet is sent
            ip = u.getsockname()[0]
            if not ip.startswith("127."):
                return ip
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            if not info[4][0].startswith("127."):
                return info[4][0]
    except OSError:
        pass
    return None


@pytest.fixture(scope="module")
def rzk():
    s = start_rzk()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def kz(rzk):
    from kazoo.client import KazooClient

    c = KazooClient(hosts=rzk.hosts, timeout=10)
    c.start(timeout=20)
    yield c
    c.stop()
    c.close()


@pytest.fixture(scope="module")
def browser():
    if webdriver.chromium_paths() is None:
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    b = webdriver.Browser()
    yield b
    b.quit()


def open_console(browser, rzk):
    browser.get("http://127.0.0.1:%d/console/" % rzk.admin_port)
    browser.wait("return document.body.dataset.ready === '1';", what="the console to load")


def expand(browser, path):
    """Clicks the tree toggle of `path` and waits for its children."""
    browser.click('#tree li[data-path="%s"] > .toggle' % path)
    browser.wait(
        "const li = document.querySelector(arguments[0]); return li && li.querySelector(':scope > ul').children.length > 0;",
        '#tree li[data-path="%s"]' % path,
        what="children of " + path,
    )


def select(browser, path):
    browser.click('#tree li[data-path="%s"] > .name' % path)
    browser.wait(
        "return document.querySelector('#node-path').textContent === arguments[0] && "
        "(document.querySelector('#node-stat').children.length > 0 || document.querySelector('#node-message').textContent !== '');",
        path,
        what="the node pane of " + path,
    )


def test_browse_page_and_edit_seen_by_kazoo(rzk, kz, browser):
    kz.create("/app/cfg", b"v1", makepath=True)
    kz.create("/app/many")
    tx = kz.transaction()
    for i in range(250):
        tx.create("/app/many/c%03d" % i)
    assert all(r is not None and not isinstance(r, Exception) for r in tx.commit())

    open_console(browser, rzk)
    expand(browser, "/app")
    select(browser, "/app/cfg")
    assert browser.js("return document.querySelector('#node-data').value;") == "v1"
    stat = browser.text("#node-stat")
    assert "version 0" in stat and "dataLength 2" in stat, stat
    assert "world anyone cdrwa" in browser.text("#node-acl"), browser.text("#node-acl")

    # Children come one page at a time (200), the rest on demand.
    expand(browser, "/app/many")
    assert len(browser.find_all('#tree li[data-path^="/app/many/"]')) == 200
    assert "50 more" in browser.text('#tree li[data-path="/app/many"] .more')
    browser.click('#tree li[data-path="/app/many"] .more')
    browser.wait("return document.querySelectorAll('#tree li[data-path^=\"/app/many/\"]').length === 250;", what="the second page")
    browser.screenshot(ARTIFACTS / "tree.png")

    # Edit through the browser; kazoo sees it.
    select(browser, "/app/cfg")
    browser.type("#node-data", "v2 from the console")
    browser.click("#node-save")
    browser.wait("return document.querySelector('#node-message').textContent.startsWith('saved');", what="the save")
    data, st = kz.get("/app/cfg")
    assert data == b"v2 from the console" and st.version == 1
    # A stale version is refused (BadVersion), as for any client.
    browser.type("#node-version", "0")
    browser.click("#node-save")
    browser.wait("return document.querySelector('#node-message').textContent.includes('BadVersion');", what="BadVersion")
    assert kz.get("/app/cfg")[1].version == 1
    browser.screenshot(ARTIFACTS / "edit.png")

    # Binary data is shown and edited as base64, never replaced by text.
    kz.create("/app/bin", b"\xff\x00\x01")
    browser.click("#node-reload")
    browser.js("document.querySelector('#tree li[data-path=\"/app\"] > .toggle').click();")  # collapse
    expand(browser, "/app")
    select(browser, "/app/bin")
    assert browser.js("return [document.querySelector('#node-base64').checked, document.querySelector('#node-data').value];") == [True, "/wAB"]
    browser.type("#node-data", "AAEC")
    browser.click("#node-save")
    browser.wait("return document.querySelector('#node-message').textContent.startsWith('saved');", what="the binary save")
    assert kz.get("/app/bin")[0] == b"\x00\x01\x02"


def test_acl_refusal_then_digest_login(rzk, kz, browser):
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl

    alice = KazooClient(hosts=rzk.hosts, timeout=10, auth_data=[("digest", "alice:secret")])
    alice.start(timeout=20)
    try:
        alice.create("/secret", b"only alice", acl=[make_digest_acl("alice", "secret", all=True)])
    finally:
        alice.stop()
        alice.close()

    open_console(browser, rzk)
    select(browser, "/secret")
    msg = browser.text("#node-message")
    assert "NoAuth" in msg, msg
    browser.screenshot(ARTIFACTS / "acl-refused.png")
    # An anonymous edit is refused too.
    browser.type("#node-data", "mallory")
    browser.type("#node-version", "-1")
    browser.click("#node-save")
    browser.wait("return document.querySelector('#node-message').textContent.includes('NoAuth');", what="NoAuth on save")
    assert kz.exists("/secret").version == 0

    # Logged in as alice (digest), the console reads it.
    browser.type("#login-user", "alice")
    browser.type("#login-password", "secret")
    browser.click("#login-button")
    browser.wait("return document.querySelector('#whoami').dataset.user === 'alice';", what="the login")
    browser.wait("return document.body.dataset.ready === '1' && document.querySelector('#tree li[data-path=\"/secret\"]');")
    select(browser, "/secret")
    assert browser.js("return document.querySelector('#node-data').value;") == "only alice"
    assert "digest alice:" in browser.text("#node-acl")
    browser.click("#logout-button")
    browser.wait("return document.querySelector('#whoami').dataset.user === '';", what="back to anonymous")


def test_sessions_ensemble_and_charts(rzk, kz, browser):
    kz.create("/eph", b"", ephemeral=True)
    kz.ensure_path("/app/cfg")
    kz.get("/app/cfg", watch=lambda e: None)
    open_console(browser, rzk)
    session = "0x%x" % kz.client_id[0]

    browser.click('#tabs button[data-tab="sessions"]')
    browser.wait("const r = document.querySelector(arguments[0]); return r && r.textContent.includes('/eph');",
                 '#sessions-table tr[data-session="%s"]' % session, what="kazoo's session and its ephemeral")
    browser.screenshot(ARTIFACTS / "sessions.png")

    browser.click('#tabs button[data-tab="watches"]')
    browser.wait("const r = document.querySelector('#watches-table tr[data-path=\"/app/cfg\"]'); return r && r.textContent.includes(arguments[0]);",
                 session, what="kazoo's watch")

    browser.click('#tabs button[data-tab="ensemble"]')
    browser.wait("const r = document.querySelector('#ensemble-table tr[data-member-id]'); return r && r.dataset.mode === 'standalone';",
                 what="the ensemble row")
    assert "yes" in browser.text("#ensemble-table tbody")
    browser.screenshot(ARTIFACTS / "ensemble.png")

    # Load while the charts sample: throughput shows it.
    browser.click('#tabs button[data-tab="metrics"]')
    for i in range(100):
        kz.set("/app/cfg", b"load %d" % i)
    browser.wait("return ['throughput', 'latency', 'fsync'].every(n => +document.getElementById('chart-' + n).dataset.samples >= 2);",
                 what="three charts with samples")
    for i in range(100):
        kz.set("/app/cfg", b"load %d" % i)
    browser.wait("return Math.max(...[...Array(1)].map(() => +document.getElementById('chart-throughput').dataset.last)) > 0;",
                 what="throughput above zero")
    drawn = browser.js("const c = document.getElementById('chart-throughput'); "
                       "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; "
                       "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 150 && d[i] < 100) n++; return n;")
    assert drawn > 50, drawn  # the blue line is on the canvas
    # Only the chosen view is on screen.
    assert browser.js("return document.getElementById('chart-fsync').getBoundingClientRect().height > 0 && "
                      "document.getElementById('tree').getBoundingClientRect().height === 0;")
    browser.screenshot(ARTIFACTS / "metrics.png")


def test_ensemble_view_follows_a_leader_change(browser):
    """A 3-server rzk ensemble: the console of a follower shows the leader, the followers
    and their lag; after kill -9 of the leader, the old leader unreachable and a new one."""
    if not h.rzk_available():
        pytest.skip("rzk binary not found at %s" % h.rzk_binary())
    from zkensemble import Ensemble

    admin = {i: h.free_port() for i in (1, 2, 3)}
    member_cfg = {i: {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": str(p)}
                  for i, p in admin.items()}
    ens = Ensemble("rzk", 3, proxied=False, member_cfg=member_cfg, name="console", client_addresses=True)
    try:
        ens.start()
        leader = ens.wait_for_leader()
        viewer = next(m for m in ens.members if m.sid != leader.sid)
        browser.get("http://127.0.0.1:%d/console/" % admin[viewer.sid])
        browser.wait("return document.body.dataset.ready === '1';", what="the console to load")
        browser.click('#tabs button[data-tab="ensemble"]')
        modes = ("return [...document.querySelectorAll('#ensemble-table tr[data-member-id]')]"
                 ".map(r => r.dataset.memberId + ':' + r.dataset.mode).join(' ');")
        want = " ".join("%d:%s" % (m.sid, "leader" if m.sid == leader.sid else "follower") for m in ens.members)
        browser.wait(modes[:-1] + " === arguments[0];", want, timeout=20, what="the ensemble: " + want)
        assert "(this server)" in browser.text('#ensemble-table tr[data-member-id="%d"]' % viewer.sid)
        browser.screenshot(ARTIFACTS / "ensemble-before.png")

        leader.kill9()
        browser.wait("const r = document.querySelector(arguments[0]); return r && r.classList.contains('down');",
                     '#ensemble-table tr[data-member-id="%d"]' % leader.sid, timeout=30, what="the old leader unreachable")
        browser.wait("return [...document.querySelectorAll('#ensemble-table tr[data-mode=\"leader\"]')]"
                     ".some(r => r.dataset.memberId !== arguments[0]);", str(leader.sid), timeout=30, what="a new leader")
        browser.screenshot(ARTIFACTS / "ensemble-after.png")
    finally:
        ens.stop()


def test_remote_clients_refused_by_default(rzk):
    import http.client as httpclient

    ip = non_loopback_address()
    assert http("http://127.0.0.1:%d/console/" % rzk.admin_port)[0] == 200
    # A page of another site that resolves to 127.0.0.1 (DNS rebinding) is refused too.
    c = httpclient.HTTPConnection("127.0.0.1", rzk.admin_port, timeout=10)
    c.request("GET", "/console/api/info", headers={"Host": "evil.example:%d" % rzk.admin_port})
    r = c.getresponse()
    assert r.status == 403, r.status
    c.close()
    if ip is None:
        pytest.skip("this machine has no non-loopback address to test from")
    status, body = http("http://%s:%d/console/" % (ip, rzk.admin_port))
    assert status == 403 and "rzk.console.allowRemote" in body, (status, body)
    status, _ = http("http://%s:%d/console/api/info" % (ip, rzk.admin_port))
    assert status == 403
    # The AdminServer's commands themselves are served to anyone, as ZooKeeper's.
    assert http("http://%s:%d/commands/ruok" % (ip, rzk.admin_port))[0] == 200


def test_console_settings():
    ip = non_loopback_address()
    s = start_rzk({"rzk.console.allowRemote": "true"})
    try:
        if ip is not None:
            assert http("http://%s:%d/console/" % (ip, s.admin_port))[0] == 200
        conf = h.four_letter(s.port, "conf")
        assert "rzk.console.enabled=true\nrzk.console.allowRemote=true\n" in conf, conf
    finally:
        s.cleanup()
    s = start_rzk({"rzk.console.enabled": "false"})
    try:
        assert http("http://127.0.0.1:%d/console/" % s.admin_port)[0] == 404
        assert http("http://127.0.0.1:%d/commands/ruok" % s.admin_port)[0] == 200
    finally:
        s.cleanup()
