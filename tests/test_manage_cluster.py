"""A new TLE across the cluster (issue 18): two ``stellarops up`` stacks on loopback, peers of
each other, one PostgreSQL (tests/test_cluster_store.py's pair). A TLE change sent through one
host's gateway for a satellite whose actor runs on the other host is flown from that actor's next
tick (its height moves from ~500 km to ~1,700 km, read through either gateway) and the history,
in the one database, has both TLEs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from stack import UpStack
from test_cluster_store import beams, get_ok, pair, request, wait_for

from orbital import Elements, make_elements

HIGH_KM = (1400.0, 2000.0)  # 12 rev/day


def elements(mean_motion_rev_day: float) -> Elements:
    return make_elements(
        norad_id=90200, epoch_utc=datetime.now(UTC), inclination_deg=45.0, raan_deg=10.0, eccentricity=0.001,
        arg_perigee_deg=0.0, mean_anomaly_deg=0.0, mean_motion_rev_day=mean_motion_rev_day,
    )  # fmt: skip


def flying(via: UpStack, sat_id: str, bounds: tuple[float, float]) -> dict[str, Any] | None:
    sat = get_ok(via, f"/api/satellites/{sat_id}")
    alt = sat.get("alt_km")
    return sat if sat["status"] == "running" and alt is not None and bounds[0] < alt < bounds[1] else None


@pytest.mark.erlang
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_new_tle_reaches_an_actor_on_another_host(tmp_path: Path, db_conninfo: str, cookie: str) -> None:
    a, b = pair(tmp_path, db_conninfo, cookie, 0)
    started: list[UpStack] = []
    try:
        started.append(a.start(timeout_s=240))  # first: its store owns the database
        started.append(b.start(timeout_s=240))
        wait_for("each gateway sees both BEAM nodes", lambda: beams(a) == beams(b) == {a.beam, b.beam})
        low, high = elements(15.5), elements(12.0)
        for via, sat_id in ((a, "on-a"), (b, "on-b")):  # created through a host's gateway: placed on that host
            status, body = request(via, "POST", "/api/satellites", {"id": sat_id, "name": sat_id, "elements": low.to_tle()})
            assert status == 201, body
        on = {sat_id: wait_for(f"{sat_id} flies a LEO", lambda s=sat_id: flying(a, s, (300.0, 700.0))) for sat_id in ("on-a", "on-b")}
        assert (on["on-a"]["beam"], on["on-b"]["beam"]) == (a.beam, b.beam), on

        # Each changed through the other host's gateway.
        for via, sat_id in ((b, "on-a"), (a, "on-b")):
            status, body = request(via, "PUT", f"/api/satellites/{sat_id}/tle", {"tle": {"line1": high.line1, "line2": high.line2}})
            assert status == 200 and body["satellite"]["tle"]["line2"] == high.line2, body
        for sat_id in ("on-a", "on-b"):
            wait_for(f"{sat_id} flies the new TLE", lambda s=sat_id: flying(a, s, HIGH_KM) and flying(b, s, HIGH_KM), timeout_s=60)
            history = get_ok(a, f"/api/satellites/{sat_id}/tle-history")["items"]
            assert [h["line2"] for h in history] == [high.line2, low.line2], history
    finally:
        for stack in reversed(started):
            stack.stop()
