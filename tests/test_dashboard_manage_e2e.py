"""Managing the constellation from the dashboard in real Chromium against the real stack
(``stellarops up``): a satellite created from a pasted TLE (a bad checksum refused first, naming
line and column) and seen on the map, the mode dropdown showing the current mode, "no orbit" for
a satellite without a TLE, new elements uploaded as a file (the old ones kept), a catalog of three
imported (and imported again: they exist), a ground station edited, taken down and brought back, the satellite
deleted after a confirmation. The scenario is ``web/dashboard/e2e/manage.mjs``; screenshots go to
test-output/dashboard-manage/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from stack import UpStack

from orbital import Elements, make_elements

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "web" / "dashboard"
OUT = ROOT / "test-output" / "dashboard-manage"
CHROMIUM = Path("/usr/bin/chromium")
START_S, SCENARIO_S, STOP_S = 90, 300, 60
DEMO = 4


def orbit(mean_motion_rev_day: float) -> Elements:
    """One satellite's elements, fresh (epoch now)."""
    return make_elements(
        norad_id=90100, epoch_utc=datetime.now(UTC), inclination_deg=60.0, raan_deg=120.0, eccentricity=0.001,
        arg_perigee_deg=0.0, mean_anomaly_deg=0.0, mean_motion_rev_day=mean_motion_rev_day,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(START_S + SCENARIO_S + STOP_S + 30)
def test_create_a_satellite_and_edit_a_station_from_the_dashboard(tmp_path: Path) -> None:
    assert (DASHBOARD / "dist" / "index.html").is_file(), "the dashboard is not built: run scripts/setup.sh --tests"
    assert CHROMIUM.is_file() and shutil.which("node"), "Chromium and Node.js are needed (scripts/setup.sh --tests)"
    shutil.rmtree(OUT, ignore_errors=True)
    fresh, update = orbit(15.2), orbit(14.0)
    stack = UpStack(tmp_path / "home", f"stellar_manage_e2e{os.getpid()}", STELLAROPS_DEMO_SATELLITES=str(DEMO)).start(START_S)
    try:
        env = {
            **os.environ, "DASHBOARD_URL": stack.gateway_url(), "STELLAROPS_TOKEN": stack.admin_token(), "E2E_OUT": str(OUT),
            "CHROMIUM": str(CHROMIUM), "E2E_TLE": f"{fresh.line1}\n{fresh.line2}", "DEMO_COUNT": str(DEMO),
            "E2E_TLE2": f"{update.line1}\n{update.line2}",
        }  # fmt: skip
        proc = subprocess.run(["node", "e2e/manage.mjs"], cwd=DASHBOARD, env=env, capture_output=True, text=True, timeout=SCENARIO_S, check=False)
    finally:
        assert stack.stop(STOP_S) == 0
    result = json.loads((OUT / "results.json").read_text())
    assert proc.returncode == 0 and result["ok"], proc.stdout + proc.stderr
    assert "line 3, column 69: checksum" in result["refused"]
    assert result["drawn"] == DEMO + 1  # the new satellite is on the map
    assert [h["line2"] for h in result["history"]["items"]] == [update.line2, fresh.line2]  # uploaded, flown, kept
    assert result["svalbard"]["min_el_deg"] == 12.5 and result["svalbard"]["active"] is True
    assert "the scheduler re-plans" in result["station_message"]
    assert result["deleted_status"] == 404
    imported = result["imported"]  # from the catalog import, with its own TLE
    assert imported["name"] == "E2E CAT 2" and imported["tle"]["line1"].startswith("1 90202")
    for name in ("new-satellite-on-map", "satellite-orbit", "stations", "catalog-import"):
        assert (OUT / f"{name}.png").stat().st_size > 10_000, name
