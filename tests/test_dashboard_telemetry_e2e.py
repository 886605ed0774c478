"""Telemetry ranges and exports in real Chromium against the real stack (``stellarops up``): the
satellite page's charts change range (last 1 h, 6 h, 15 min: live, their bucket sizes; a custom
UTC range: not live; a reversed one refused in the page), the range's CSV is downloaded and
read (header, rows of that satellite, the server's file name), and the Commands view finds a
command by satellite and kind and downloads the filtered history as CSV. The scenario is
``web/dashboard/e2e/telemetry.mjs``; its screenshots and downloads go to test-output/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from stack import UpStack

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "web" / "dashboard"
OUT = ROOT / "test-output" / "dashboard-telemetry"
CHROMIUM = Path("/usr/bin/chromium")
START_S, SCENARIO_S, STOP_S = 90, 240, 60


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(START_S + SCENARIO_S + STOP_S + 30)
def test_charts_change_range_and_csv_downloads(tmp_path: Path) -> None:
    assert (DASHBOARD / "dist" / "index.html").is_file(), "the dashboard is not built: run scripts/setup.sh --tests"
    assert CHROMIUM.is_file() and shutil.which("node"), "Chromium and Node.js are needed (scripts/setup.sh --tests)"
    shutil.rmtree(OUT, ignore_errors=True)
    stack = UpStack(tmp_path / "home", f"stellar_telemetry_e2e{os.getpid()}", STELLAROPS_DEMO_SATELLITES="3").start(START_S)
    try:
        env = {**os.environ, "DASHBOARD_URL": stack.gateway_url(), "STELLAROPS_TOKEN": stack.admin_token(), "E2E_OUT": str(OUT), "CHROMIUM": str(CHROMIUM)}
        proc = subprocess.run(["node", "e2e/telemetry.mjs"], cwd=DASHBOARD, env=env, capture_output=True, text=True, timeout=SCENARIO_S, check=False)
    finally:
        assert stack.stop(STOP_S) == 0
    result = json.loads((OUT / "results.json").read_text())
    assert proc.returncode == 0 and result["ok"], proc.stdout + proc.stderr
    assert result["live_points"][1] > result["live_points"][0] and result["telemetry_rows"] >= 3 and result["command_rows"] >= 1
    for name in ("telemetry.png", "commands.png"):
        assert (OUT / name).stat().st_size > 10_000, name
