"""The gateway's routes, validation and errors, over a fake cluster and a real database."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from web_support import DEMO_TLE, Harness, expect_error, expect_invalid_field, gateway

from py_nodes.db import (
    Alarms,
    CommandLedger,
    Satellites,
    Stations,
    StationSpec,
    TelemetryRow,
    TelemetryWriter,
)
from py_nodes.db.seed import demo_satellites
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode
from web import GatewayConfig
from web.keys import ACCESS_LOG, MIRROR
from web.logs import JsonFormatter, request_id_var, sat_id_var
from web.spec import AUTHENTICATOR
from web.static import NON_API_ROUTES


@pytest.fixture
async def gw(db_conninfo: str) -> AsyncIterator[Harness]:
    async with gateway(db_conninfo) as harness:
        harness.cluster.add("sat-1")
        harness.cluster.add("sat-2", mode="science", tle=DEMO_TLE, node="sats2@127.0.0.1")
        yield harness


# -- health, errors, headers ----------------------------------------------------------------------


async def test_health_and_readiness(gw: Harness) -> None:
    response = await gw.client.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "ok"}
    response = await gw.client.get("/readyz")
    assert response.status == 200 and (await response.json())["status"] == "ready"
    gw.cluster.joined_flag = False
    error = await expect_error(await gw.client.get("/readyz"), 503, "not_ready")
    assert error["details"] == {"cluster": False, "database": True}


async def test_unknown_path_and_method_are_json_errors(gw: Harness) -> None:
    await expect_error(await gw.client.get("/api/nothing", headers=gw.auth("admin")), 404, "not_found")
    response = await gw.client.put("/api/satellites", headers=gw.auth("admin"))
    await expect_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


async def test_request_id_is_echoed_or_made(gw: Harness) -> None:
    response = await gw.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    response = await gw.client.get("/healthz", headers={"X-Request-ID": "bad id"})
    made = response.headers["X-Request-ID"]
    assert made != "bad id" and re.fullmatch(r"[0-9a-f]{8}-[0-9]+", made)


# -- auth -----------------------------------------------------------------------------------------

AUTH_MATRIX = [
    ("GET", "/api/satellites", None, "viewer"),
    ("GET", "/api/satellites/sat-1", None, "viewer"),
    ("POST", "/api/satellites", {"id": "new-1", "name": "New"}, "operator"),
    ("PATCH", "/api/satellites/sat-1", {"mode": "standby"}, "operator"),
    ("PUT", "/api/satellites/sat-2/tle", {"tle": {"line1": DEMO_TLE[0], "line2": DEMO_TLE[1]}}, "operator"),
    ("GET", "/api/satellites/sat-2/tle-history", None, "viewer"),
    ("DELETE", "/api/satellites/sat-1", None, "operator"),
    ("POST", "/api/satellites/sat-1/commands", {"kind": "noop"}, "operator"),
    ("GET", "/api/satellites/sat-1/commands", None, "viewer"),
    ("GET", "/api/satellites/sat-1/telemetry", None, "viewer"),
    ("GET", "/api/ground-stations", None, "viewer"),
    ("POST", "/api/ground-stations", {"id": "st-x", "name": "X", "lat_deg": 1, "lon_deg": 2}, "operator"),
    ("PUT", "/api/ground-stations/st-y", {"name": "Y", "lat_deg": 1, "lon_deg": 2}, "operator"),
    ("DELETE", "/api/ground-stations/st-z", None, "operator"),
    ("GET", "/api/nodes", None, "viewer"),
    ("GET", "/api/alarms", None, "viewer"),
    ("GET", "/api/satellites/sat-2/track", None, "viewer"),
    ("GET", "/api/session", None, "viewer"),
]
RANK = {"viewer": 0, "operator": 1, "admin": 2}


@pytest.mark.parametrize(("method", "path", "body", "needs"), AUTH_MATRIX, ids=[f"{m} {p}" for m, p, _, _ in AUTH_MATRIX])
async def test_auth_matrix(gw: Harness, method: str, path: str, body: Any, needs: str) -> None:
    kwargs = {} if body is None else {"json": body}
    if path.startswith("/api/ground-stations/"):  # something to edit or delete
        await Stations(gw.db).create(StationSpec(id=path.rsplit("/", 1)[1], name="S", lat_deg=0.0, lon_deg=0.0), actor="test")
    if path.endswith("/tle-history"):  # the history is the database's
        await Satellites(gw.db).create(SatState(b"sat-2", b"Sat", Mode.NOMINAL, 90.0, 0.0, 1024.0, None, (), 1), actor="test")
    response = await gw.client.request(method, path, **kwargs)
    await expect_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    await expect_error(await gw.client.request(method, path, headers={"Authorization": "Bearer sto_nope"}, **kwargs), 401, "unauthorized")
    await expect_error(await gw.client.request(method, path, headers={"Authorization": "Basic abc"}, **kwargs), 401, "unauthorized")
    for role, rank in RANK.items():
        response = await gw.client.request(method, path, headers=gw.auth(role), **kwargs)
        if rank < RANK[needs]:
            error = await expect_error(response, 403, "forbidden")
            assert error["details"] == {"required_role": needs, "role": role}
        else:
            assert response.status < 300, (role, response.status, await response.text())
            break  # the weakest role allowed did it (a second create would conflict)


async def test_a_token_is_looked_up_once_by_concurrent_requests(gw: Harness) -> None:
    """When a token's cache entry is gone, the requests of that moment share one database lookup
    (each running its own grew the pool under load); the cached header still gets 403 on a route
    its role may not use."""
    auth = gw.app[AUTHENTICATOR]
    tokens = auth._tokens
    lookups = 0
    real_lookup = tokens.lookup

    async def counted(secret: str) -> Any:
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.2)  # the others arrive while this one is in flight
        return await real_lookup(secret)

    tokens.lookup = counted  # type: ignore[method-assign]
    auth.forget()
    responses = await asyncio.gather(*(gw.client.get("/api/satellites/sat-1", headers=gw.auth("viewer")) for _ in range(20)))
    assert [r.status for r in responses] == [200] * 20
    assert lookups == 1
    await expect_error(await gw.client.delete("/api/satellites/sat-1", headers=gw.auth("viewer")), 403, "forbidden")
    assert lookups == 1


# -- satellites -----------------------------------------------------------------------------------


async def test_list_filter_and_page(gw: Harness) -> None:
    body = await (await gw.client.get("/api/satellites", headers=gw.auth("viewer"))).json()
    assert body["total"] == 2 and [s["id"] for s in body["items"]] == ["sat-1", "sat-2"]
    sat2 = body["items"][1]
    assert sat2["tle"] == {"line1": DEMO_TLE[0], "line2": DEMO_TLE[1]} and sat2["updated_at"].endswith("Z")
    body = await (await gw.client.get("/api/satellites?mode=science", headers=gw.auth("viewer"))).json()
    assert [s["id"] for s in body["items"]] == ["sat-2"]
    body = await (await gw.client.get("/api/satellites?node=sats1@127.0.0.1&limit=1&offset=0", headers=gw.auth("viewer"))).json()
    assert [s["id"] for s in body["items"]] == ["sat-1"] and body["limit"] == 1
    body = await (await gw.client.get("/api/satellites?limit=1&offset=1", headers=gw.auth("viewer"))).json()
    assert [s["id"] for s in body["items"]] == ["sat-2"] and body["total"] == 2
    await expect_invalid_field(await gw.client.get("/api/satellites?limit=0", headers=gw.auth("viewer")), "limit")
    await expect_invalid_field(await gw.client.get("/api/satellites?limit=abc", headers=gw.auth("viewer")), "limit")
    await expect_invalid_field(await gw.client.get("/api/satellites?mode=flying", headers=gw.auth("viewer")), "mode")
    await expect_invalid_field(await gw.client.get("/api/satellites?colour=red", headers=gw.auth("viewer")), "colour")
    await expect_invalid_field(await gw.client.get("/api/satellites?limit=1&limit=2", headers=gw.auth("viewer")), "limit")


async def test_get_one(gw: Harness) -> None:
    response = await gw.client.get("/api/satellites/sat-1", headers=gw.auth("viewer"))
    assert response.status == 200 and (await response.json())["mode"] == "nominal"
    await expect_error(await gw.client.get("/api/satellites/nope", headers=gw.auth("viewer")), 404, "not_found")
    await expect_invalid_field(await gw.client.get("/api/satellites/bad%20id", headers=gw.auth("viewer")), "sat_id")
    await expect_invalid_field(await gw.client.get("/api/satellites/" + "x" * 65, headers=gw.auth("viewer")), "sat_id")


async def test_create(gw: Harness) -> None:
    spec = {"id": "new-1", "name": "New One", "tle": {"line1": DEMO_TLE[0], "line2": DEMO_TLE[1]}, "mode": "standby"}
    response = await gw.client.post("/api/satellites", json=spec, headers=gw.auth("admin"))
    assert response.status == 201 and response.headers["Location"] == "/api/satellites/new-1"
    body = await response.json()
    assert body["id"] == "new-1" and body["mode"] == "standby" and body["status"] == "placing"
    await expect_error(await gw.client.post("/api/satellites", json=spec, headers=gw.auth("admin")), 409, "conflict")
    admin = gw.auth("admin")
    for bad, field in [
        ({"id": "x"}, "name"),
        ({"name": "x"}, "id"),
        ({"id": "a b", "name": "x"}, "id"),
        ({"id": "x", "name": ""}, "name"),
        ({"id": "x", "name": "x", "colour": "red"}, "colour"),
        ({"id": "x", "name": "x", "mode": "flying"}, "mode"),
        ({"id": "x", "name": "x", "energy_pct": 101}, "energy_pct"),
        ({"id": "x", "name": "x", "energy_pct": True}, "energy_pct"),
        ({"id": "x", "name": "x", "memory_capacity_mb": 0}, "memory_capacity_mb"),
        ({"id": "x", "name": "x", "tle": {"line1": "1 2", "line2": DEMO_TLE[1]}}, "tle.line1"),
        ({"id": "x", "name": "x", "tle": {"line1": DEMO_TLE[0]}}, "tle.line2"),
        ({"id": "x", "name": "x", "memory_used_mb": 2000}, "memory_used_mb"),  # refused by the cluster
        ([1, 2], "body"),
    ]:
        await expect_invalid_field(await gw.client.post("/api/satellites", json=bad, headers=admin), field)
    await expect_error(await gw.client.post("/api/satellites", data="{", headers={**admin, "Content-Type": "application/json"}), 400, "bad_request")
    await expect_error(await gw.client.post("/api/satellites", data='{"id": NaN}', headers={**admin, "Content-Type": "application/json"}), 400, "bad_request")
    await expect_error(await gw.client.post("/api/satellites", data='{"id":"a","id":"b","name":"n"}', headers={**admin, "Content-Type": "application/json"}), 400, "bad_request")
    await expect_error(await gw.client.post("/api/satellites", data=b"\xff\xfe", headers={**admin, "Content-Type": "application/json"}), 400, "bad_request")
    await expect_error(await gw.client.post("/api/satellites", data="id=x", headers=admin), 415, "unsupported_media_type")
    big = json.dumps({"id": "x", "name": "n" * 100_000})
    await expect_error(await gw.client.post("/api/satellites", data=big, headers={**admin, "Content-Type": "application/json"}), 413, "payload_too_large")
    nested = "[" * 100_000 + "]" * 100_000
    response = await gw.client.post("/api/satellites", data=nested[:60_000], headers={**admin, "Content-Type": "application/json"})
    assert response.status == 400


async def test_import(gw: Harness) -> None:
    operator = gw.auth("operator")
    tle = {"line1": DEMO_TLE[0], "line2": DEMO_TLE[1]}
    sats = [{"id": "imp-1", "name": "One", "tle": tle}, {"id": "sat-1", "name": "Known"}, {"id": "imp-2", "name": "Two", "mode": "safe"},
            {"id": "imp-1", "name": "Again"}, {"id": "imp-3", "name": "Full", "memory_used_mb": 2000}]  # fmt: skip
    response = await gw.client.post("/api/satellites/import", json={"satellites": sats}, headers=operator)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["created"] == 2
    assert [(i["id"], i["status"]) for i in body["items"]] == [("imp-1", 201), ("sat-1", 409), ("imp-2", 201), ("imp-1", 409), ("imp-3", 422)]
    assert body["items"][1]["error"]["code"] == "conflict" and "error" not in body["items"][0]
    assert body["items"][4]["error"]["details"]["field"] == "memory_used_mb"
    created = await (await gw.client.get("/api/satellites/imp-1", headers=gw.auth("viewer"))).json()
    assert created["name"] == "One" and created["tle"] == tle
    assert (await (await gw.client.get("/api/satellites/imp-2", headers=gw.auth("viewer"))).json())["mode"] == "safe"
    # A malformed item refuses the whole request, naming it; nothing is created.
    bad_tle = {"line1": DEMO_TLE[0], "line2": DEMO_TLE[1][:-1] + "0"}
    for bad, field in [
        ({"satellites": [{"id": "new-a", "name": "A"}, {"id": "new-b"}]}, "satellites[1].name"),
        ({"satellites": [{"id": "new-a", "name": "A"}, {"id": "new-b", "name": "B", "tle": bad_tle}]}, "satellites[1].tle.line2"),
        ({"satellites": [{"id": "new-a", "name": "A", "elements": "not a TLE"}]}, "satellites[0].elements"),
        ({"satellites": []}, "satellites"),
        ({"satellites": [{"id": f"n{i}", "name": "n"} for i in range(2001)]}, "satellites"),
        ({"sats": []}, "satellites"),
    ]:
        await expect_invalid_field(await gw.client.post("/api/satellites/import", json=bad, headers=operator), field)
    assert (await gw.client.get("/api/satellites/new-a", headers=gw.auth("viewer"))).status == 404
    await expect_error(await gw.client.post("/api/satellites/import", json={"satellites": sats}, headers=gw.auth("viewer")), 403, "forbidden")


async def test_patch_mode(gw: Harness) -> None:
    response = await gw.client.patch("/api/satellites/sat-1", json={"mode": "science"}, headers=gw.auth("operator"))
    assert response.status == 200 and (await response.json())["mode"] == "science"
    error = await expect_error(await gw.client.patch("/api/satellites/sat-1", json={"mode": "maintenance"}, headers=gw.auth("operator")), 409, "conflict")
    assert error["details"] == {"reason": "invalid_transition", "from": "science", "to": "maintenance"}
    await expect_invalid_field(await gw.client.patch("/api/satellites/sat-1", json={}, headers=gw.auth("operator")), "mode")
    await expect_invalid_field(await gw.client.patch("/api/satellites/sat-1", json={"mode": "x"}, headers=gw.auth("operator")), "mode")
    await expect_error(await gw.client.patch("/api/satellites/none", json={"mode": "safe"}, headers=gw.auth("operator")), 404, "not_found")


async def test_delete(gw: Harness) -> None:
    response = await gw.client.delete("/api/satellites/sat-1", headers=gw.auth("admin"))
    assert response.status == 204 and await response.read() == b""
    await expect_error(await gw.client.delete("/api/satellites/sat-1", headers=gw.auth("admin")), 404, "not_found")


async def test_cluster_unavailable_is_503(gw: Harness) -> None:
    gw.cluster.down = True
    error = await expect_error(await gw.client.get("/api/satellites", headers=gw.auth("viewer")), 503, "unavailable")
    assert error["details"]["reason"] == "cluster_unavailable"


# -- commands -------------------------------------------------------------------------------------


async def test_commands(gw: Harness) -> None:
    op = gw.auth("operator")
    response = await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "set_mode", "args": {"mode": "safe"}}, headers=op)
    assert response.status == 202
    first = await response.json()
    assert first["status"] == "accepted" and first["kind"] == "set_mode" and len(first["id"]) == 36
    keyed = {**op, "Idempotency-Key": "pass-42"}
    a = await (await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "downlink"}, headers=keyed)).json()
    b = await (await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "downlink"}, headers=keyed)).json()
    assert a["id"] == b["id"] != first["id"]
    assert gw.cluster.commands == [("sat-1", "set_mode", {"mode": "safe"}), ("sat-1", "downlink", {})]
    await expect_invalid_field(await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "set_mode"}, headers=op), "args")
    await expect_invalid_field(await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "noop", "args": {"mode": "safe"}}, headers=op), "args.mode")
    await expect_invalid_field(await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "fly"}, headers=op), "kind")
    await expect_invalid_field(await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "noop"}, headers={**op, "Idempotency-Key": "a b"}), "Idempotency-Key")
    await expect_invalid_field(await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "noop"}, headers={**op, "Idempotency-Key": "k" * 129}), "Idempotency-Key")
    await expect_error(await gw.client.post("/api/satellites/none/commands", json={"kind": "noop"}, headers=op), 404, "not_found")


async def test_command_history_from_the_ledger(gw: Harness) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    state = demo_satellites(now_ms, 1)[0]
    await Satellites(gw.db).create(state, actor="test")
    ledger = CommandLedger(gw.db)
    first, _ = await ledger.submit("demo-01", "noop", {}, "k1", actor="test")
    second, _ = await ledger.submit("demo-01", "set_mode", {"mode": "safe"}, actor="test")
    await ledger.mark_done(first.id)
    body = await (await gw.client.get("/api/satellites/demo-01/commands", headers=gw.auth("viewer"))).json()
    assert [c["id"] for c in body["items"]] == [str(second.id), str(first.id)]
    assert body["items"][1]["status"] == "done" and body["items"][1]["finished_at"].endswith("Z")
    assert body["items"][0]["args"] == {"mode": "safe"}
    body = await (await gw.client.get("/api/satellites/demo-01/commands?limit=1", headers=gw.auth("viewer"))).json()
    assert len(body["items"]) == 1
    assert (await (await gw.client.get("/api/satellites/other/commands", headers=gw.auth("viewer"))).json()) == {"items": [], "next": None}


# -- telemetry and position -----------------------------------------------------------------------


async def test_telemetry_history_raw_and_downsampled(gw: Harness) -> None:
    start = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    rows = [
        TelemetryRow("sat-1", start + timedelta(seconds=s), 40.0 + s % 60, 1.0, "science" if s >= 90 else "nominal",
                     10.0, float(s % 360) - 180, 550.0, s % 2 == 0)
        for s in range(180)
    ]  # fmt: skip
    async with TelemetryWriter(gw.db, flush_interval_s=0.05) as writer:
        writer.offer(rows)
    viewer = gw.auth("viewer")
    base = "/api/satellites/sat-1/telemetry?from=2024-03-01T12:00:00Z&to=2024-03-01T12:03:00Z"
    body = await (await gw.client.get(base, headers=viewer)).json()
    assert len(body["items"]) == 180 and body["step_s"] is None
    assert body["items"][0]["time"] == "2024-03-01T12:00:00.000Z" and body["items"][0]["samples"] == 1
    body = await (await gw.client.get(base + "&step=60", headers=viewer)).json()
    assert [i["time"] for i in body["items"]] == ["2024-03-01T12:00:00.000Z", "2024-03-01T12:01:00.000Z", "2024-03-01T12:02:00.000Z"]
    assert [i["samples"] for i in body["items"]] == [60, 60, 60]
    assert body["items"][0]["energy_pct"] == pytest.approx(40 + 29.5)
    assert [i["mode"] for i in body["items"]] == ["nominal", "science", "science"]  # the last of each bucket
    assert body["items"][2]["lon_deg"] == 179 - 180
    body = await (await gw.client.get(base.replace("12:00:00Z", "13:00:00%2B01:00", 1) + "&limit=5", headers=viewer)).json()
    assert len(body["items"]) == 5  # 13:00+01:00 is 12:00Z
    await expect_invalid_field(await gw.client.get(base + "&step=0", headers=viewer), "step")
    await expect_invalid_field(await gw.client.get("/api/satellites/sat-1/telemetry?from=2024-01-01T00:00:00Z&to=2024-03-01T00:00:00Z&step=1", headers=viewer), "step")
    await expect_invalid_field(await gw.client.get("/api/satellites/sat-1/telemetry?from=2024-03-01T12:00:00", headers=viewer), "from")
    await expect_invalid_field(await gw.client.get("/api/satellites/sat-1/telemetry?from=yesterday", headers=viewer), "from")
    await expect_invalid_field(await gw.client.get("/api/satellites/sat-1/telemetry?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z", headers=viewer), "from")
    await expect_invalid_field(await gw.client.get("/api/satellites/sat-1/telemetry?to=2200-01-01T00:00:00Z", headers=viewer), "to")


async def test_position(gw: Harness) -> None:
    viewer = gw.auth("viewer")
    body = await (await gw.client.get("/api/satellites/sat-2/position?at=2024-03-01T12:00:00Z", headers=viewer)).json()
    assert body["at"] == "2024-03-01T12:00:00.000Z" and body["lat_deg"] == 1.5 and body["sgp4_error"] == 0
    assert body["r_teme_km"] == [1.0, 2.0, 3.0] and body["norad_id"] == 25544
    error = await expect_error(await gw.client.get("/api/satellites/sat-1/position", headers=viewer), 409, "conflict")
    assert error["details"]["reason"] == "no_tle"
    await expect_error(await gw.client.get("/api/satellites/none/position", headers=viewer), 404, "not_found")
    await expect_invalid_field(await gw.client.get("/api/satellites/sat-2/position?at=1800-01-01T00:00:00Z", headers=viewer), "at")


# -- stations, passes, nodes, alarms --------------------------------------------------------------


async def test_ground_stations(gw: Harness) -> None:
    admin = gw.auth("admin")
    spec = {"id": "turin", "name": "Turin", "lat_deg": 45.07, "lon_deg": 7.69, "alt_m": 240, "min_el_deg": 10}
    response = await gw.client.post("/api/ground-stations", json=spec, headers=admin)
    assert response.status == 201
    body = await response.json()
    assert body["id"] == "turin" and body["min_el_deg"] == 10 and body["active"] is True
    await expect_error(await gw.client.post("/api/ground-stations", json=spec, headers=admin), 409, "conflict")
    await expect_invalid_field(await gw.client.post("/api/ground-stations", json={**spec, "id": "x2", "lat_deg": 91}, headers=admin), "lat_deg")
    await expect_invalid_field(await gw.client.post("/api/ground-stations", json={**spec, "id": "Upper"}, headers=admin), "id")
    await expect_invalid_field(await gw.client.post("/api/ground-stations", json={**spec, "id": "x3", "min_el_deg": 90}, headers=admin), "min_el_deg")
    body = await (await gw.client.get("/api/ground-stations", headers=gw.auth("viewer"))).json()
    assert [s["id"] for s in body["items"]] == ["turin"]


async def test_passes(gw: Harness) -> None:
    admin, viewer = gw.auth("admin"), gw.auth("viewer")
    for sid, lat in (("north", 60.0), ("south", -30.0)):
        assert (await gw.client.post("/api/ground-stations", json={"id": sid, "name": sid, "lat_deg": lat, "lon_deg": 0}, headers=admin)).status == 201
    aos = int(datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp() * 1000)
    gw.cluster.passes_result = [{"sat": "sat-2", "station": "north", "aos": aos, "tca": aos + 300_000, "los": aos + 600_000,
                                 "max_el_deg": 42.0, "aos_cut": False, "los_cut": False}]  # fmt: skip
    url = "/api/passes?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z"
    body = await (await gw.client.get(url, headers=viewer)).json()
    assert body["items"] == [{"satellite_id": "sat-2", "station_id": "north", "aos": "2024-03-01T12:00:00.000Z",
                              "tca": "2024-03-01T12:05:00.000Z", "los": "2024-03-01T12:10:00.000Z", "max_el_deg": 42.0,
                              "aos_cut": False, "los_cut": False}]  # fmt: skip
    sats, stations, from_ms, to_ms, min_el = gw.cluster.passes_calls[-1]
    assert sats == ["sat-2"]  # the satellites with a TLE
    assert [s["id"] for s in stations] == ["north", "south"] and stations[0]["lat_deg"] == 60.0
    assert to_ms - from_ms == 86_400_000 and min_el is None
    await gw.client.get(url + "&sat=sat-1,sat-2&station=south&min_el=15", headers=viewer)
    sats, stations, _, _, min_el = gw.cluster.passes_calls[-1]
    assert sats == ["sat-1", "sat-2"] and [s["id"] for s in stations] == ["south"] and min_el == 15
    missing = await expect_error(await gw.client.get(url + "&station=nowhere", headers=viewer), 404, "not_found")
    assert missing["details"]["field"] == "station"
    await expect_invalid_field(await gw.client.get(url + "&sat=a%20b", headers=viewer), "sat[0]")
    await expect_invalid_field(await gw.client.get("/api/passes?from=2024-03-01T00:00:00Z&to=2024-03-09T00:00:00Z", headers=viewer), "to")
    await expect_invalid_field(await gw.client.get(url + "&min_el=-1", headers=viewer), "min_el")


async def test_nodes_and_alarms(gw: Harness) -> None:
    body = await (await gw.client.get("/api/nodes", headers=gw.auth("viewer"))).json()
    assert [n["role"] for n in body["items"]] == ["beam", "sats"]
    state = demo_satellites(int(datetime.now(UTC).timestamp() * 1000), 2)
    for s in state:
        await Satellites(gw.db).create(s, actor="test")
    await Alarms(gw.db).raise_alarm("demo-01", "memory_full", "warning", "full")
    await Alarms(gw.db).raise_alarm("demo-02", "low_energy", "critical", "low")
    body = await (await gw.client.get("/api/alarms", headers=gw.auth("viewer"))).json()
    assert [(a["satellite_id"], a["severity"]) for a in body["items"]] == [("demo-02", "critical"), ("demo-01", "warning")]
    body = await (await gw.client.get("/api/alarms?sat=demo-01", headers=gw.auth("viewer"))).json()
    assert [a["kind"] for a in body["items"]] == ["memory_full"]


# -- metrics, CORS, OpenAPI -----------------------------------------------------------------------


async def test_metrics(gw: Harness) -> None:
    await gw.client.get("/api/satellites/sat-1", headers=gw.auth("viewer"))
    response = await gw.client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    for line in (
        "stellar_satellites_active 2.0",
        "stellar_satellites 2.0",
        "stellar_energy_avg 90.0",
        "stellar_tasks_pending 0.0",
        "stellar_tasks_failed_total 0.0",
        'stellar_http_request_duration_seconds_count{method="GET",route="/api/satellites/{sat_id}"} 1.0',
        'stellar_http_requests_total{method="GET",route="/api/satellites/{sat_id}",status="200"} 1.0',
        "stellar_sse_clients 0.0",
        "stellar_sse_clients_dropped_total 0.0",
    ):
        assert line in text, line


async def test_cors_is_off_by_default(gw: Harness) -> None:
    response = await gw.client.get("/healthz", headers={"Origin": "https://example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers
    response = await gw.client.options("/api/satellites", headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"})
    assert response.status == 405 and "Access-Control-Allow-Origin" not in response.headers


async def test_cors_when_configured(db_conninfo: str) -> None:
    async with gateway(db_conninfo, GatewayConfig(port=0, cors_origins=("https://ops.example",))) as gw:
        preflight = {"Origin": "https://ops.example", "Access-Control-Request-Method": "POST"}
        response = await gw.client.options("/api/satellites", headers=preflight)
        assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "https://ops.example"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        response = await gw.client.get("/healthz", headers={"Origin": "https://ops.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://ops.example"
        response = await gw.client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_openapi_documents_every_route_and_only_them(gw: Harness) -> None:
    response = await gw.client.get("/api/openapi.json")
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    served = set()
    for route in gw.app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds HEAD for every GET
        info = route.resource.get_info() if route.resource is not None else {}
        served.add((route.method, info.get("path") or info.get("formatter")))
    # The dashboard's files (web.static) are served but are not API operations: named, not guessed.
    assert served >= NON_API_ROUTES
    assert documented == served - NON_API_ROUTES
    for path, ops in document["paths"].items():
        for op in ops.values():
            names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert names == set(path.replace("}", "{").split("{")[1::2]), path
            assert all(code.isdigit() for code in op["responses"])
    docs = await gw.client.get("/api/docs")
    assert docs.status == 200 and docs.content_type == "text/html"
    page = await docs.text()
    assert all(path in page for path in document["paths"])


# -- logs and configuration -----------------------------------------------------------------------


async def test_access_log_lines_carry_request_and_satellite_ids(db_conninfo: str, tmp_path: Path) -> None:
    path = tmp_path / "log" / "access.jsonl"
    async with gateway(db_conninfo, GatewayConfig(port=0, access_log=str(path))) as gw:
        gw.cluster.add("sat-1")
        headers = {**gw.auth("viewer"), "X-Request-ID": "req-7"}
        await gw.client.get("/api/satellites/sat-1", headers=headers)
        await gw.client.get("/api/satellites/sat-1?x=1", headers={**headers, "X-Request-ID": "req-8"})
        await gw.client.get('/api/nothing"\\', headers=gw.auth("viewer"))
        gw.app[ACCESS_LOG].flush()
        lines = [json.loads(line) for line in path.read_text().splitlines()]
    first = next(entry for entry in lines if entry["request_id"] == "req-7")
    assert first["sat_id"] == "sat-1" and first["status"] == 200 and first["route"] == "/api/satellites/{sat_id}"
    assert first["path"] == "/api/satellites/sat-1" and first["ts"].endswith("Z") and first["duration_ms"] >= 0
    refused = next(entry for entry in lines if entry["request_id"] == "req-8")
    assert refused["status"] == 422 and refused["sat_id"] == "sat-1" and "x=1" not in json.dumps(refused)
    assert any(entry["path"] == '/api/nothing"\\' and entry["status"] == 404 for entry in lines)


def test_application_logs_are_json_with_the_request_context() -> None:
    record = logging.LogRecord("stellarops.web", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    request_id_var.set("r-1")
    sat_id_var.set("sat-9")
    try:
        entry = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.set(None)
        sat_id_var.set(None)
    assert entry["msg"] == "hello world" and entry["level"] == "warning"
    assert entry["request_id"] == "r-1" and entry["sat_id"] == "sat-9"


def test_config_from_env(tmp_path: Path) -> None:
    config = GatewayConfig.from_env({})
    assert (config.host, config.port, config.cors_origins, config.access_log) == ("127.0.0.1", 8080, (), "-")
    config = GatewayConfig.from_env({
        "STELLAROPS_HTTP_HOST": "0.0.0.0", "STELLAROPS_HTTP_PORT": "0", "STELLAROPS_CORS_ORIGINS": "https://a, https://b",
        "STELLAROPS_HOME": str(tmp_path), "STELLAROPS_SAT_CACHE_S": "0",
    })  # fmt: skip
    assert (config.host, config.port, config.cors_origins) == ("0.0.0.0", 0, ("https://a", "https://b"))
    assert config.access_log == str(tmp_path / "log" / "gateway-access.jsonl") and config.sat_cache_s == 0
    assert GatewayConfig.from_env({"STELLAROPS_ACCESS_LOG": "off"}).access_log is None
    for env, name in [({"STELLAROPS_HTTP_PORT": "http"}, "STELLAROPS_HTTP_PORT"), ({"STELLAROPS_HTTP_PORT": "70000"}, "STELLAROPS_HTTP_PORT"),
                      ({"STELLAROPS_SSE_QUEUE": "0"}, "STELLAROPS_SSE_QUEUE")]:  # fmt: skip
        with pytest.raises(ValueError, match=name):
            GatewayConfig.from_env(env)


async def test_the_read_model_serves_fresh_satellites_and_asks_beam_otherwise(gw: Harness) -> None:
    viewer = gw.auth("viewer")
    assert (await (await gw.client.get("/api/satellites/sat-1", headers=viewer)).json())["energy_pct"] == 90.0
    gw.cluster.sats_by_id["sat-1"]["energy_pct"] = 10.0  # changed behind the mirror's back, no event
    assert (await (await gw.client.get("/api/satellites/sat-1", headers=viewer)).json())["energy_pct"] == 90.0
    gw.cluster.emit("telemetry", "sat-1", {"energy_pct": 42.0, "mode": "nominal"})
    await asyncio.sleep(0.05)
    assert (await (await gw.client.get("/api/satellites/sat-1", headers=viewer)).json())["energy_pct"] == 42.0
    del gw.cluster.sats_by_id["sat-1"]  # deleted elsewhere: no more events, the entry goes stale
    gw.app[MIRROR].event_fresh_s = 0.0
    assert (await gw.client.get("/api/satellites/sat-1", headers=viewer)).status == 404
