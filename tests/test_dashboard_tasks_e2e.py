"""The dashboard's Tasks view in real Chromium against the real stack (``stellarops up``): a
task refused in the page (no target) and by the server (unknown satellite: the field marked),
then submitted from the form, drawn on the timeline once planned, and cancelled from the list.
The scenario is ``web/dashboard/e2e/tasks.mjs``; its screenshot goes to test-output/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from stack import UpStack

from orbital import ground_track, parse_tle
from py_nodes.demo import demo_constellation

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "web" / "dashboard"
OUT = ROOT / "test-output" / "dashboard-tasks"
CHROMIUM = Path("/usr/bin/chromium")
START_S, SCENARIO_S, STOP_S = 90, 240, 60


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(START_S + SCENARIO_S + STOP_S + 30)
def test_the_tasks_view_submits_shows_and_cancels_a_task(tmp_path: Path) -> None:
    assert (DASHBOARD / "dist" / "index.html").is_file(), "the dashboard is not built: run scripts/setup.sh --tests"
    assert CHROMIUM.is_file() and shutil.which("node"), "Chromium and Node.js are needed (scripts/setup.sh --tests)"
    shutil.rmtree(OUT, ignore_errors=True)
    demo = demo_constellation(4)[0]
    track = ground_track(parse_tle(f"{demo.tle_line1}\n{demo.tle_line2}")[0], [datetime.now(UTC) + timedelta(minutes=10)])
    stack = UpStack(tmp_path / "home", f"stellar_tasks_e2e{os.getpid()}", STELLAROPS_DEMO_SATELLITES="4").start(START_S)
    try:
        env = {
            **os.environ, "DASHBOARD_URL": stack.gateway_url(), "STELLAROPS_TOKEN": stack.admin_token(), "E2E_OUT": str(OUT),
            "CHROMIUM": str(CHROMIUM), "TARGET_LAT": f"{float(track.lat_deg[0][0]):.4f}", "TARGET_LON": f"{float(track.lon_deg[0][0]):.4f}",
        }  # fmt: skip
        proc = subprocess.run(["node", "e2e/tasks.mjs"], cwd=DASHBOARD, env=env, capture_output=True, text=True, timeout=SCENARIO_S, check=False)
    finally:
        assert stack.stop(STOP_S) == 0
    result = json.loads((OUT / "results.json").read_text())
    assert proc.returncode == 0 and result["ok"], proc.stdout + proc.stderr
    assert result["bar_status"] in ("scheduled", "running", "done"), result
    assert (OUT / "tasks.png").stat().st_size > 10_000
