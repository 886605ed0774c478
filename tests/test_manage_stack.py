"""Managing the constellation in the real stack (``stellarops up``: BEAM, sats, orbital, store,
scheduler and gateway nodes, embedded PostgreSQL), as an operator over HTTP (issue 18):

- a satellite created from a pasted TLE and one from an OMM fly (a position from their first
  ticks); a bad checksum is a 422 naming line and column, and nothing is created;
- a new TLE (PUT .../tle: a set_tle command through the ledger) is flown from the actor's next
  tick: its height moves from ~400 km to ~1,700 km; the old TLE is in the history;
- a ground station edited (PUT) changes the passes at once and the scheduler re-plans
  (station_down); taken down (PATCH) it leaves the default passes; deleted, it is gone; the
  shell's station ids (the orbital node's registry) are the database's, created and deleted;
- after a full restart the satellite still flies its new TLE, with its history;
- a deleted satellite is gone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from stack import CLI, UpStack

from orbital import Elements, make_elements, tle_checksum
from py_nodes.erldist import Atom

pytestmark = [pytest.mark.slow, pytest.mark.erlang]

LEO_KM = (300.0, 600.0)  # 15.5 rev/day
HIGH_KM = (1400.0, 2000.0)  # 12 rev/day


def elements(mean_motion_rev_day: float, norad_id: int = 90001) -> Elements:
    """Fresh elements (epoch now, no drag: SGP4 keeps them flying for the whole test)."""
    return make_elements(
        norad_id=norad_id, epoch_utc=datetime.now(UTC), inclination_deg=51.6, raan_deg=40.0, eccentricity=0.001,
        arg_perigee_deg=90.0, mean_anomaly_deg=10.0, mean_motion_rev_day=mean_motion_rev_day, name="MANAGED",
    )  # fmt: skip


def _token(stack: UpStack, role: str) -> str:
    run = subprocess.run([*CLI, "token", "create", "--role", role], env=stack.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


async def until(what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s (last: {last!r})")


class Api:
    def __init__(self, session: aiohttp.ClientSession, token: str) -> None:
        self.session, self.headers = session, {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, path, json=body, headers=self.headers) as resp:
            return resp.status, (await resp.json() if resp.content_type == "application/json" else None)

    async def sat(self, sat_id: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"/api/satellites/{sat_id}")
        return body if status == 200 else {}

    async def alt_within(self, sat_id: str, bounds: tuple[float, float]) -> dict[str, Any] | None:
        sat = await self.sat(sat_id)
        alt = sat.get("alt_km")
        return sat if sat.get("status") == "running" and alt is not None and bounds[0] < alt < bounds[1] else None


@pytest.mark.timeout(420)
def test_manage_satellites_and_stations(tmp_path: Path) -> None:
    env = {"STELLAROPS_DEMO_SATELLITES": "0", "STELLAROPS_SCHEDULER_FREEZE_S": "5", "STELLAROPS_SCHEDULER_BUDGET_S": "1"}
    stack = UpStack(tmp_path / "home", f"stellar_manage{os.getpid()}", **env).start()
    try:
        operator = _token(stack, "operator")
        first = elements(15.5)
        second = elements(12.0)
        asyncio.run(_before_restart(stack, operator, first, second))
    finally:
        assert stack.stop() == 0
    stack.start()
    try:
        asyncio.run(_after_restart(stack.gateway_url(), operator, first, second))
    finally:
        assert stack.stop() == 0


async def _before_restart(stack: UpStack, token: str, first: Elements, second: Elements) -> None:
    async with (
        aiohttp.ClientSession(stack.gateway_url(), timeout=aiohttp.ClientTimeout(total=60)) as session,
        stack.ctl("manage_ctl") as ctl,
    ):
        api = Api(session, token)

        async def visible(station_id: str) -> Any:
            """The shell's view of a station id (the orbital node's registry)."""
            return await stack.rpc(ctl, "stellar", "visible", [station_id.encode(), int(time.time() * 1000)])

        await until("the gateway is ready", lambda: _ready(session))

        # A bad checksum: 422 naming the line and column, nothing created.
        broken = first.line2[:68] + str((tle_checksum(first.line2) + 1) % 10)
        status, body = await api.call("POST", "/api/satellites", {"id": "m-1", "name": "M", "elements": f"MANAGED\n{first.line1}\n{broken}"})
        assert status == 422 and body["error"]["details"] == {"field": "elements", "line": 3, "column": 69}, body
        assert "line 3, column 69: checksum" in body["error"]["message"]
        assert await visible("mg-eq") == (Atom("error"), (Atom("unknown_station"), b"mg-eq"))
        assert (await api.call("GET", "/api/satellites/m-1"))[0] == 404

        # Created from a pasted TLE and from an OMM: both fly.
        status, body = await api.call("POST", "/api/satellites", {"id": "m-1", "name": "M", "elements": first.to_tle()})
        assert status == 201, body
        omm = {
            "OBJECT_NAME": "FROM OMM", "OBJECT_ID": "2026-001A", "EPOCH": first.epoch_utc.strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "MEAN_MOTION": 15.5, "ECCENTRICITY": 0.001, "INCLINATION": 97.5, "RA_OF_ASC_NODE": 10.0, "ARG_OF_PERICENTER": 0.0,
            "MEAN_ANOMALY": 0.0, "NORAD_CAT_ID": 90002, "BSTAR": 0.0,
        }  # fmt: skip
        status, body = await api.call("POST", "/api/satellites", {"id": "m-2", "name": "O", "omm": omm, "memory_capacity_mb": 512})
        assert status == 201 and body["memory_capacity_mb"] == 512, body
        await until("m-1 flies a LEO", lambda: api.alt_within("m-1", LEO_KM))
        await until("m-2 flies a LEO", lambda: api.alt_within("m-2", LEO_KM))

        # A new TLE: from the next tick the satellite is ~1,300 km higher; the old one is history.
        status, body = await api.call("PUT", "/api/satellites/m-1/tle", {"tle": {"line1": second.line1, "line2": second.line2}})
        assert status == 200 and body["satellite"]["tle"] == {"line1": second.line1, "line2": second.line2}, body
        sat = await until("m-1 flies the new TLE", lambda: api.alt_within("m-1", HIGH_KM), timeout_s=30)
        assert sat["mode"] == "nominal"  # kept
        status, history = await api.call("GET", "/api/satellites/m-1/tle-history")
        assert status == 200 and [h["line2"] for h in history["items"]] == [second.line2, first.line2], history
        assert history["items"][0]["valid_to"] is None and history["items"][1]["valid_to"] is not None
        status, body = await api.call("PUT", "/api/satellites/m-1/tle", {"tle": {"line1": second.line1, "line2": broken}})
        assert status == 422 and body["error"]["details"]["field"] == "tle.line2"
        status, body = await api.call("POST", "/api/satellites/m-2/commands", {"kind": "set_tle", "args": {"line1": second.line1, "line2": broken}})
        assert status == 422 and body["error"]["details"]["field"] == "args.line2", body
        refused = await stack.rpc(ctl, "stellar", "set_tle", [b"m-2", (second.line1.encode(), broken.encode())])
        assert refused == (Atom("error"), (Atom("bad_tle"), (Atom("line2"), Atom("checksum"))))  # the shell API checks too

        # A station: edits change the passes at once and make the scheduler re-plan.
        station = {"id": "mg-eq", "name": "Equator", "lat_deg": 0.0, "lon_deg": 0.0, "min_el_deg": 5}
        assert (await api.call("POST", "/api/ground-stations", station))[0] == 201
        await until("the shell knows the new station", lambda: _is_ok(visible("mg-eq")))  # one source: the database
        start = datetime.now(UTC).replace(microsecond=0)
        window = f"from={start.isoformat().replace('+00:00', 'Z')}&to={(start + timedelta(days=1)).isoformat().replace('+00:00', 'Z')}"
        status, low = await api.call("GET", f"/api/passes?sat=m-1&station=mg-eq&{window}")
        assert status == 200 and low["items"], low
        edit = {k: v for k, v in station.items() if k != "id"}
        status, body = await api.call("PUT", "/api/ground-stations/mg-eq", {**edit, "min_el_deg": 60})
        assert status == 200 and body["station"]["min_el_deg"] == 60 and body["request_id"] is not None, body
        status, high = await api.call("GET", f"/api/passes?sat=m-1&station=mg-eq&{window}")
        assert status == 200 and len(high["items"]) < len(low["items"]) and all(p["max_el_deg"] >= 60 for p in high["items"]), high

        async def replanned() -> bool:
            _, plan = await api.call("GET", "/api/plan")
            return any(r["cause"] == "station_down" and "mg-eq" in r["detail"] for r in plan.get("runs", []))

        await until("the scheduler re-plans for the edited station", replanned)
        status, body = await api.call("PATCH", "/api/ground-stations/mg-eq", {"active": False})
        assert status == 200 and body["active"] is False
        status, every = await api.call("GET", f"/api/passes?sat=m-1&{window}")
        assert status == 200 and all(p["station_id"] != "mg-eq" for p in every["items"])
        assert (await api.call("PATCH", "/api/ground-stations/mg-eq", {"active": True}))[1]["active"] is True
        assert (await api.call("DELETE", "/api/ground-stations/mg-eq"))[0] == 204
        status, body = await api.call("GET", f"/api/passes?sat=m-1&station=mg-eq&{window}")
        assert status == 404 and body["error"]["details"]["field"] == "station", body
        await until("the shell forgets the deleted station", lambda: _is_unknown(visible("mg-eq")))

        # A deleted satellite is gone.
        assert (await api.call("DELETE", "/api/satellites/m-2"))[0] == 204
        assert (await api.call("GET", "/api/satellites/m-2"))[0] == 404


async def _after_restart(url: str, token: str, first: Elements, second: Elements) -> None:
    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=60)) as session:
        api = Api(session, token)
        await until("the gateway is ready", lambda: _ready(session))
        sat = await until("m-1 flies its new TLE after the restart", lambda: api.alt_within("m-1", HIGH_KM))
        assert sat["tle"] == {"line1": second.line1, "line2": second.line2}
        status, history = await api.call("GET", "/api/satellites/m-1/tle-history")
        assert status == 200 and [h["line2"] for h in history["items"]] == [second.line2, first.line2]
        assert (await api.call("GET", "/api/satellites/m-2"))[0] == 404


async def _is_ok(answer: Awaitable[Any]) -> bool:
    value = await answer
    return isinstance(value, tuple) and value[0] == Atom("ok")


async def _is_unknown(answer: Awaitable[Any]) -> bool:
    value = await answer
    return isinstance(value, tuple) and value[0] == Atom("error") and value[1][0] == Atom("unknown_station")


async def _ready(session: aiohttp.ClientSession) -> bool:
    async with session.get("/readyz") as response:
        return response.status == 200
