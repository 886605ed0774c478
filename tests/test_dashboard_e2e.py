"""The dashboard in real Chromium against the real stack (``stellarops up``).

The scenarios live in ``web/dashboard/e2e/run.mjs`` (playwright-core driving /usr/bin/chromium):
sign-in, the map with every satellite, a mode change over HTTP seen live in the list, a
command sent from the detail page reaching ``done``, a killed Python node shown down and back up,
the passes timeline, an alarm raised live and cleared from the page, the gateway killed and
restarted under the page (reconnecting, then live, resumed with Last-Event-ID, no reset), the gateway
stopped (SIGSTOP) for over 20 s (stale, then live). Screenshots of every view go to ``test-output/dashboard/``.

Every wait in the scenarios has a long bound (a loaded machine is slow, not broken); speed is
measured by bench/dashboard_bench.py. The test has its own timeout: start, scenarios, stop.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from stack import UpStack

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "web" / "dashboard"
OUT = ROOT / "test-output" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ("signin", "map", "satellites", "satellite-detail", "cluster-node-down", "cluster", "passes", "alarms")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


START_S, SCENARIOS_S, STOP_S = 90, 600, 60


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(START_S + SCENARIOS_S + STOP_S + 30)
def test_dashboard_end_to_end_in_chromium(tmp_path: Path) -> None:
    assert (DASHBOARD / "dist" / "index.html").is_file(), "the dashboard is not built: run scripts/setup.sh --tests"
    assert CHROMIUM.is_file(), "Chromium is missing: scripts/setup.sh --tests installs it (apt package chromium)"
    assert shutil.which("node"), "Node.js is missing"
    shutil.rmtree(OUT, ignore_errors=True)
    # A fixed port: the gateway restarted by a scenario must come back where the page is.
    port = str(free_port())
    stack = UpStack(tmp_path / "home", "stellar_e2e", STELLAROPS_DEMO_SATELLITES="8", STELLAROPS_HTTP_PORT=port).start(START_S)
    try:
        env = {
            **os.environ,
            "DASHBOARD_URL": stack.gateway_url(),
            "STELLAROPS_TOKEN": stack.admin_token(),
            "E2E_OUT": str(OUT),
            "CHROMIUM": str(CHROMIUM),
        }
        proc = subprocess.run(
            ["node", "e2e/run.mjs"], cwd=DASHBOARD, env=env, capture_output=True, text=True, timeout=SCENARIOS_S, check=False
        )
    finally:
        assert stack.stop(STOP_S) == 0
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    results = json.loads((OUT / "results.json").read_text())
    assert [r["ok"] for r in results] == [True] * 10, report
    by_name = {r["name"].split(":")[0]: r for r in results}
    assert "down" in by_name["cluster"]["statuses"] and by_name["cluster"]["statuses"][-1] == "up"
    assert by_name["passes"]["passes"] > 0
    connection = next(r for r in results if r["name"].startswith("connection: a restarted gateway"))
    assert connection["states"][0] == "live" and "reconnecting" in connection["states"] and connection["states"][-1] == "live"
    stale = next(r for r in results if r["name"].startswith("connection: a gateway that sends nothing"))
    assert stale["stale_after_ms"] >= 18_000
    for name in SCREENSHOTS:
        shot = OUT / f"{name}.png"
        assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot {shot}"
