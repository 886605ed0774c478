"""The gateway in the real stack (``stellarops up``: BEAM, sats, orbital, store and gateway nodes,
embedded PostgreSQL): create a satellite over HTTP, watch it over SSE, change its mode and see
the event; reconnect with Last-Event-ID and get what was missed; the auth matrix."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from stack import CLI, UpStack
from web_support import DEMO_TLE, read_sse

pytestmark = [pytest.mark.erlang, pytest.mark.slow]

SAT = "web-1"


def _token(stack: UpStack, role: str) -> str:
    run = subprocess.run([*CLI, "token", "create", "--role", role], env=stack.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


async def _wait_for(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def _state_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while len(found) < count:
            for frame in await read_sse(response, 1, timeout=15):
                if frame.get("event") == "state":
                    found.append({"id": int(frame["id"]), **json.loads(frame["data"])})
    return found


def test_gateway_end_to_end(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>StellarOps</title>")
    (dist / "assets" / "index-1a2b.js").write_text("export {}")
    stack = UpStack(tmp_path / "home", "stellar_webtest", STELLAROPS_DEMO_SATELLITES="2", STELLAROPS_DASHBOARD_DIR=str(dist))
    stack.start()
    try:
        url, admin = stack.gateway_url(), stack.admin_token()
        assert admin in stack.banner  # first run: shown once
        assert f"  dashboard:    {url}/\n" in stack.banner and f"  sign in:      {url}/#token={admin}\n" in stack.banner
        operator, viewer = _token(stack, "operator"), _token(stack, "viewer")
        asyncio.run(_scenario(url, {"admin": admin, "operator": operator, "viewer": viewer}))
    finally:
        rc = stack.stop()
    assert rc == 0
    stack.start()  # a second run does not show the admin token again
    try:
        assert stack.admin_token() not in stack.banner and "admin token:  in " in stack.banner
        assert "  dashboard:    http://" in stack.banner and "sign in:" not in stack.banner
    finally:
        assert stack.stop() == 0


async def _scenario(url: str, tokens: dict[str, str]) -> None:
    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    async with aiohttp.ClientSession(url) as http:

        async def ready() -> bool:
            async with http.get("/readyz") as r:
                return r.status == 200

        assert await _wait_for(ready), "the gateway did not become ready"

        # The auth matrix against the real token store.
        assert (await http.get("/api/satellites")).status == 401
        assert (await http.get("/api/satellites", headers={"Authorization": "Bearer sto_wrong"})).status == 401
        assert (await http.get("/api/events")).status == 401
        assert (await http.post("/api/satellites", json={"id": SAT, "name": "W"}, headers=auth("viewer"))).status == 403
        assert (await http.patch("/api/satellites/demo-01", json={"mode": "safe"}, headers=auth("viewer"))).status == 403
        assert (await http.post("/api/satellites/demo-01/commands", json={"kind": "noop"}, headers=auth("viewer"))).status == 403
        listing = await (await http.get("/api/satellites", headers=auth("viewer"))).json()
        assert [s["id"] for s in listing["items"]] == ["demo-01", "demo-02"]

        # Watch the new satellite's state changes while creating it and changing its mode.
        async with http.get(f"/api/events?sat={SAT}&types=state", headers=auth("viewer")) as stream:
            assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
            await read_sse(stream, 1)
            spec = {"id": SAT, "name": "Web One", "tle": {"line1": DEMO_TLE[0], "line2": DEMO_TLE[1]}}
            created = await http.post("/api/satellites", json=spec, headers=auth("admin"))
            assert created.status == 201, await created.text()
            again = await http.post("/api/satellites", json=spec, headers=auth("admin"))
            assert again.status == 409

            async def running() -> bool:
                async with http.get(f"/api/satellites/{SAT}", headers=auth("viewer")) as r:
                    return r.status == 200 and (await r.json())["status"] == "running"

            assert await _wait_for(running)
            changed = await http.patch(f"/api/satellites/{SAT}", json={"mode": "science"}, headers=auth("operator"))
            assert changed.status == 200 and (await changed.json())["mode"] == "science"
            [event] = await _state_events(stream, 1)
            assert event["sat_id"] == SAT and event["data"]["from"] == "nominal" and event["data"]["to"] == "science"
            seen = event["id"]
            refused = await http.patch(f"/api/satellites/{SAT}", json={"mode": "maintenance"}, headers=auth("operator"))
            assert refused.status == 409 and (await refused.json())["error"]["details"]["reason"] == "invalid_transition"

        # While nobody listens: a mode change and a command (202, in the ledger first).
        assert (await http.patch(f"/api/satellites/{SAT}", json={"mode": "nominal"}, headers=auth("operator"))).status == 200
        headers = {**auth("operator"), "Idempotency-Key": "web-pass-1"}
        body = {"kind": "set_mode", "args": {"mode": "downlink"}}
        first = await http.post(f"/api/satellites/{SAT}/commands", json=body, headers=headers)
        assert first.status == 202
        command_id = (await first.json())["id"]
        second = await (await http.post(f"/api/satellites/{SAT}/commands", json=body, headers=headers)).json()
        assert second["id"] == command_id

        # Reconnect with Last-Event-ID: the missed events, in order, then live ones.
        resume = {**auth("viewer"), "Last-Event-ID": str(seen)}
        async with http.get(f"/api/events?sat={SAT}&types=state", headers=resume) as stream:
            missed = await _state_events(stream, 2)
            assert [e["data"]["to"] for e in missed] == ["nominal", "downlink"]
            assert seen < missed[0]["id"] < missed[1]["id"]
        async with http.get("/api/events", headers={**auth("viewer"), "Last-Event-ID": "999999999"}) as stream:
            frames = await read_sse(stream, 2)
            assert frames[1]["event"] == "reset"

        # History from PostgreSQL: the command's outcome, telemetry.
        async def command_done() -> bool:
            async with http.get(f"/api/satellites/{SAT}/commands", headers=auth("viewer")) as r:
                items = (await r.json())["items"]
                return any(c["id"] == command_id and c["status"] == "done" for c in items)

        assert await _wait_for(command_done)
        # The ledger names who submitted it (the operator's token), and the history filters by it.
        async with http.get(f"/api/satellites/{SAT}/commands", headers=auth("viewer")) as r:
            [submitted] = [c for c in (await r.json())["items"] if c["id"] == command_id]
        assert submitted["submitted_by"].startswith("token:"), submitted
        by_filter = {"submitted_by": submitted["submitted_by"]}
        async with http.get("/api/commands", params=by_filter, headers=auth("viewer")) as r:
            assert r.status == 200 and command_id in {c["id"] for c in (await r.json())["items"]}
        async with http.get("/api/commands", params={"submitted_by": "token:0:nobody"}, headers=auth("viewer")) as r:
            assert r.status == 200 and (await r.json())["items"] == []

        async def telemetry() -> list[Any]:
            async with http.get(f"/api/satellites/{SAT}/telemetry?step=60", headers=auth("viewer")) as r:
                return list((await r.json())["items"])

        rows = await _wait_for(telemetry)
        assert rows and rows[-1]["samples"] >= 1
        position = await (await http.get(f"/api/satellites/{SAT}/position", headers=auth("viewer"))).json()
        assert -90 <= position["lat_deg"] <= 90 and position["sgp4_error"] == 0
        stations = await (await http.get("/api/ground-stations", headers=auth("viewer"))).json()
        assert len(stations["items"]) == 7
        await _passes(http, auth, {s["id"]: s for s in stations["items"]})
        nodes = await (await http.get("/api/nodes", headers=auth("viewer"))).json()
        assert "gateway" in {n["role"] for n in nodes["items"]}
        metrics = await (await http.get("/metrics")).text()
        assert "stellar_satellites_active 3.0" in metrics and "stellar_dist_messages_received_total{peer=" in metrics

        deleted = await http.delete(f"/api/satellites/{SAT}", headers=auth("admin"))
        assert deleted.status == 204
        assert (await http.get(f"/api/satellites/{SAT}", headers=auth("viewer"))).status == 404
        await _dashboard(http, auth)
        await _import(http, auth)


async def _import(http: aiohttp.ClientSession, auth: Any) -> None:
    """A catalog import through BEAM's stellar:create_many/1 and the store's one transaction:
    each item answered on its own, the new ones running, a known id refused."""
    sats = [{"id": f"imp-{i:02d}", "name": f"Imported {i}"} for i in range(40)] + [{"id": "demo-01", "name": "Known"}]
    async with http.post("/api/satellites/import", json={"satellites": sats}, headers=auth("operator")) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["created"] == 40 and [i["status"] for i in body["items"]] == [201] * 40 + [409]

    async def all_running() -> bool:
        async with http.get("/api/satellites?status=running&limit=1000", headers=auth("viewer")) as r:
            running = {s["id"] for s in (await r.json())["items"]}
        return {s["id"] for s in sats} <= running

    assert await _wait_for(all_running)
    imported = await (await http.get("/api/satellites/imp-07", headers=auth("viewer"))).json()
    assert imported["name"] == "Imported 7" and imported["mode"] == "nominal"


async def _passes(http: aiohttp.ClientSession, auth: Any, stations: dict[str, dict[str, Any]]) -> None:
    """The demo constellation (LEO, 53 degrees) over the seeded stations for a day: real SGP4 on
    the orbital node. Passes must exist and each must make sense."""
    start = datetime.now(UTC).replace(microsecond=0)
    end = start + timedelta(days=1)
    window = f"from={start.isoformat().replace('+00:00', 'Z')}&to={end.isoformat().replace('+00:00', 'Z')}"
    async with http.get(f"/api/passes?sat=demo-01,demo-02&{window}", headers=auth("viewer")) as r:
        assert r.status == 200, await r.text()
        items = (await r.json())["items"]
    assert len(items) >= 4, items  # several passes a day over 7 stations
    assert {p["satellite_id"] for p in items} == {"demo-01", "demo-02"}
    for p in items:
        aos, tca, los = (datetime.fromisoformat(p[k].replace("Z", "+00:00")) for k in ("aos", "tca", "los"))
        assert p["station_id"] in stations, p
        assert start <= aos <= tca <= los <= end, p
        assert p["aos_cut"] or aos < tca, p  # only a pass already under way at `from` starts at its peak
        assert p["los_cut"] or tca < los, p
        assert timedelta(0) < los - aos < timedelta(minutes=30), p  # a LEO pass lasts minutes
        assert stations[p["station_id"]]["min_el_deg"] - 0.5 <= p["max_el_deg"] <= 90, p
    aos_times = [p["aos"] for p in items]
    assert aos_times == sorted(aos_times)  # sorted by AOS, as documented
    async with http.get("/api/passes?sat=demo-01&station=nowhere", headers=auth("viewer")) as r:
        assert r.status == 404 and (await r.json())["error"]["details"]["field"] == "station"


async def _dashboard(http: aiohttp.ClientSession, auth: Any) -> None:
    """What the dashboard uses: its files (from STELLAROPS_DASHBOARD_DIR, passed down by BEAM),
    the session, a real SGP4 ground track, and an alarm raised by a satellite, then cleared over
    HTTP and seen clearing on the event stream (stellar_events:publish/3 over rpc)."""
    async with http.get("/") as page:
        assert page.status == 200 and page.headers["Cache-Control"] == "no-cache" and "StellarOps" in await page.text()
    async with http.get("/assets/index-1a2b.js") as script:
        assert script.status == 200 and script.content_type == "text/javascript" and "immutable" in script.headers["Cache-Control"]
    session = await (await http.get("/api/session", headers=auth("operator"))).json()
    assert session["role"] == "operator" and session["anonymous"] is False
    track = await (await http.get("/api/satellites/demo-01/track", headers=auth("viewer"))).json()
    assert 5000 < track["period_s"] < 6000 and 300 < len(track["items"]) <= 400
    assert all(-60 < p["lat_deg"] < 60 and 400 < p["alt_km"] < 700 and type(p["in_sunlight"]) is bool for p in track["items"])

    full = "web-full"
    async with http.get(f"/api/events?sat={full}&types=alarm", headers=auth("viewer")) as stream:
        await read_sse(stream, 1)
        spec = {"id": full, "name": "Full", "mode": "science", "memory_capacity_mb": 10, "memory_used_mb": 9.9}
        assert (await http.post("/api/satellites", json=spec, headers=auth("admin"))).status == 201

        async def raised() -> list[Any]:
            async with http.get(f"/api/alarms?sat={full}", headers=auth("viewer")) as r:
                return list((await r.json())["items"])

        [alarm] = await _wait_for(raised)
        assert alarm["kind"] == "memory_full" and alarm["cleared_at"] is None
        cleared = await http.post(f"/api/alarms/{alarm['id']}/clear", headers=auth("operator"))
        assert cleared.status == 200 and (await cleared.json())["cleared_by"].endswith(":operator token")
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(15):
            while not any(e["data"].get("cleared") for e in events):
                events += [json.loads(f["data"]) for f in await read_sse(stream, 1, timeout=15) if f.get("event") == "alarm"]
    assert events[0]["data"]["alarm"] == "memory_full"  # raised by the satellite
    assert events[-1]["data"] == {
        "alarm_id": alarm["id"], "kind": "memory_full", "severity": "warning", "cleared": True,
        "cleared_by": (await cleared.json())["cleared_by"], "message": alarm["message"],
    }  # fmt: skip
    assert await raised() == []
    assert (await http.delete(f"/api/satellites/{full}", headers=auth("admin"))).status == 204
