"""The main job, ``stellarops up``, and ``stellarops status``, as an operator runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "py_nodes"]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is not running


def test_up_runs_the_demo_constellation_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STELLAROPS_COOKIE"}
    env.update(STELLAROPS_HOME=str(tmp_path / "home"), STELLAR_NODE_NAME="stellar_uptest@127.0.0.1")
    up = subprocess.Popen([*CLI, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert up.stdout is not None
        banner = ""
        deadline = time.monotonic() + 60
        while "Stop with Ctrl-C" not in banner and time.monotonic() < deadline:
            line = up.stdout.readline()
            assert line, f"stellarops up ended early: {banner}"
            banner += line
        assert "24 satellites created" in banner and "stellar_uptest@127.0.0.1" in banner
        cookie_file = tmp_path / "home" / "cookie"
        assert oct(cookie_file.stat().st_mode & 0o777) == "0o600"
        assert cookie_file.read_text() not in banner
        status = subprocess.run([*CLI, "status"], env=env, capture_output=True, text=True, timeout=30, check=True)
        report = json.loads(status.stdout)
        assert report["satellites"]["total"] == 24
        assert report["satellites"]["by_mode"] == {"nominal": 24}
        # Python nodes named after the BEAM node: this test can run beside `make run`.
        assert sorted(report["satellites"]["by_node"]) == ["stellar_uptest_sats1@127.0.0.1", "stellar_uptest_sats2@127.0.0.1"]
        roles = sorted((n["role"], n["status"]) for n in report["nodes"])
        assert roles == [("beam", "up"), ("sats", "up"), ("sats", "up")]
        py_pids = [n["os_pid"] for n in report["nodes"] if n["role"] == "sats"]
    finally:
        up.send_signal(signal.SIGTERM)
        rc = up.wait(60)
    assert rc == 0
    assert not any(_alive(pid) for pid in py_pids)  # no orphans
    after = subprocess.run([*CLI, "status"], env=env, capture_output=True, text=True, timeout=30)
    assert after.returncode == 1 and "is not running" in after.stderr
