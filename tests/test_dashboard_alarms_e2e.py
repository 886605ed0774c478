"""The dashboard's alarms and limits in real Chromium against the real stack (``stellarops up``):
a limit refused in the editor (the field named), then one that a real satellite breaks; its alarm
appears (header badge, list and map marks), is acknowledged with a comment, shelved from the
page and back unacknowledged when the shelf expires, with its history. The scenario is
``web/dashboard/e2e/alarms.mjs``; its screenshots go to test-output/dashboard-alarms."""

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
OUT = ROOT / "test-output" / "dashboard-alarms"
CHROMIUM = Path("/usr/bin/chromium")
START_S, SCENARIO_S, STOP_S = 90, 300, 60


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(START_S + SCENARIO_S + STOP_S + 30)
def test_alarms_are_acknowledged_and_shelved_in_the_dashboard(tmp_path: Path) -> None:
    assert (DASHBOARD / "dist" / "index.html").is_file(), "the dashboard is not built: run scripts/setup.sh --tests"
    assert CHROMIUM.is_file() and shutil.which("node"), "Chromium and Node.js are needed (scripts/setup.sh --tests)"
    shutil.rmtree(OUT, ignore_errors=True)
    stack = UpStack(tmp_path / "home", f"stellar_alarms_e2e{os.getpid()}", STELLAROPS_DEMO_SATELLITES="2").start(START_S)
    try:
        env = {**os.environ, "DASHBOARD_URL": stack.gateway_url(), "STELLAROPS_TOKEN": stack.admin_token(), "E2E_OUT": str(OUT),
               "CHROMIUM": str(CHROMIUM)}  # fmt: skip
        proc = subprocess.run(["node", "e2e/alarms.mjs"], cwd=DASHBOARD, env=env, capture_output=True, text=True, timeout=SCENARIO_S, check=False)
    finally:
        assert stack.stop(STOP_S) == 0
    result = json.loads((OUT / "results.json").read_text())
    assert proc.returncode == 0 and result["ok"], proc.stdout + proc.stderr
    assert result["transitions"] == ["raised", "acknowledged", "shelved", "unshelved"]
    assert (OUT / "alarm-raised.png").stat().st_size > 10_000
