"""The operator's commands: `rzk status` against `zkServer.sh status`, the systemd unit, and
the server's log in files (`zookeeper.log.dir`) rolled by size.

`rzk status` and Apache ZooKeeper's `zkServer.sh status` are run side by side on the same
zoo.cfg, against a running rzk server, a running ZooKeeper server and a stopped one: the
same lines (the client port found, the server's Mode, or the error) and exit status.
"""

import shutil
import subprocess
import time

import pytest

import zkharness as h

ZK_SERVER_SH = "/usr/share/zookeeper/bin/zkServer.sh"


def run_status(tool, cfg):
    cmd = [str(h.rzk_binary()), "status", str(cfg)] if tool == "rzk" else [ZK_SERVER_SH, "status", str(cfg)]
    r = h.run_bounded(cmd, timeout=60)
    out = (r.stdout or b"").decode(errors="replace").splitlines()
    return r.returncode, out


@pytest.mark.parametrize("kind", ["rzk", "zookeeper"])
def test_status_answers_as_zkserver_sh(new_server, kind):
    if not h.zookeeper_available():
        pytest.skip("Apache ZooKeeper not installed")
    s = new_server(kind)
    running = {tool: run_status(tool, s.cfg_path) for tool in ("rzk", "zookeeper")}
    assert running["zookeeper"][0] == 0 and "Mode: standalone" in running["zookeeper"][1], running
    assert running["rzk"] == running["zookeeper"], running
    s.stop()
    stopped = {tool: run_status(tool, s.cfg_path) for tool in ("rzk", "zookeeper")}
    assert stopped["zookeeper"][0] == 1, stopped
    assert stopped["rzk"] == stopped["zookeeper"], stopped


def test_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = (h.REPO_ROOT / "packaging" / "rzk.service").read_text()
    # the unit names the installed binary; verify it against the one built here
    unit = unit.replace("/usr/local/bin/rzk", str(h.rzk_binary()))
    path = tmp_path / "rzk.service"
    path.write_text(unit)
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_log_files_roll_by_size(tmp_path):
    """-Dzookeeper.log.dir sends the server's log to ${zookeeper.log.dir}/${zookeeper.log.file},
    rolled at zookeeper.log.maxfilesize into .1 .. .maxbackupindex."""
    logs = tmp_path / "logs"
    cfg = tmp_path / "zoo.cfg"
    port = h.free_port()
    cfg.write_text("dataDir=%s\nclientPort=%d\n4lw.commands.whitelist=*\n" % (tmp_path / "data", port))
    cmd = [str(h.rzk_binary()), "server", "--config", str(cfg), "-Dzookeeper.log.dir=%s" % logs,
           "-Dzookeeper.log.file=rzk-server.log", "-Dzookeeper.log.maxfilesize=1KB", "-Dzookeeper.log.maxbackupindex=2"]
    env = dict(h.os.environ, RZK_LOG="debug")
    p = h.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        h.wait_until(lambda: h.four_letter(port, "ruok") == "imok" if (logs / "rzk-server.log").exists() else None,
                     30, 0.2, "the server up")
        for _ in range(60):  # each connection logs at debug level
            h.four_letter(port, "srvr")
        h.wait_until(lambda: (logs / "rzk-server.log.2").exists(), 30, 0.2, "two rolled files")
        time.sleep(0.5)
        names = sorted(f.name for f in logs.iterdir())
        assert names == ["rzk-server.log", "rzk-server.log.1", "rzk-server.log.2"], names
        assert all(f.stat().st_size < 64 * 1024 for f in logs.iterdir())
    finally:
        h.kill_process_group(p)
    err = p.stderr.read().decode(errors="replace")
    assert "INFO" not in err and "DEBUG" not in err, "the log went to stderr too:\n" + err[:2000]
