"""What the browser dashboard needs from the gateway: its built files, the ground track, alarm
clearing (live on the event stream), the session endpoint and the opt-in anonymous viewer."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from web_support import DEMO_TLE, Harness, expect_error, expect_invalid_field, gateway, read_sse

from py_nodes.db import Alarms, AuditLog, Satellites
from py_nodes.db.seed import demo_satellites
from web import GatewayConfig
from web.keys import HUB
from web.static import IMMUTABLE, NON_API_ROUTES

# -- helpers --------------------------------------------------------------------------------------


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture
async def gw(db_conninfo: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with gateway(db_conninfo, GatewayConfig(port=0, dashboard_dir=tmp_path / "no-dist")) as harness:
        harness.cluster.add("sat-1")
        harness.cluster.add("sat-2", mode="science", tle=DEMO_TLE)
        yield harness


# -- the dashboard's files ------------------------------------------------------------------------

FILES = {
    "index.html": ("text/html", b"<!doctype html><title>StellarOps</title><script type=module src=/assets/index-3f2a.js></script>"),
    "favicon.svg": ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    "manifest.json": ("application/json", b"{}"),
    "assets/index-3f2a.js": ("text/javascript", b"console.log('hi')"),
    "assets/index-9c1d.css": ("text/css", b"body{margin:0}"),
    "assets/inter-latin.woff2": ("font/woff2", b"wOF2\x00\x01"),
    "assets/logo-77aa.png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    "assets/icons-1b2c.svg": ("image/svg+xml", b"<svg/>"),
    "assets/data-5e6f.json": ("application/json", b"[]"),
}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    for name, (_, body) in FILES.items():
        (root / name).write_bytes(body)
    (tmp_path / "secret.txt").write_text("outside the dashboard")
    (root / ".env").write_text("SECRET=1")
    (root / "assets" / "link.js").symlink_to(tmp_path / "secret.txt")
    (root / "assets" / "folder.js").mkdir()
    return root


async def _raw_get(gw: Harness, target: str) -> tuple[int, bytes]:
    """A request line sent as is (a client library would normalise ``..`` away)."""
    host, port = gw.client.server.host, gw.client.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    status = int(response.split(b" ", 2)[1])
    return status, response.partition(b"\r\n\r\n")[2]


async def test_dashboard_files_with_types_and_cache_headers(db_conninfo: str, dist: Path) -> None:
    async with gateway(db_conninfo, GatewayConfig(port=0, dashboard_dir=dist)) as gw:
        response = await gw.client.get("/")  # no token: the files hold no data
        assert response.status == 200 and response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-cache" and response.charset == "utf-8"
        assert await response.read() == FILES["index.html"][1]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        for name, (kind, body) in FILES.items():
            response = await gw.client.get(f"/{name}")
            assert response.status == 200, name
            assert response.content_type == kind, (name, response.content_type)
            assert await response.read() == body
            expected = IMMUTABLE if name.startswith("assets/") else "no-cache"
            assert response.headers["Cache-Control"] == expected, name
        assert IMMUTABLE == "public, max-age=31536000, immutable"
        head = await gw.client.head("/")
        assert head.status == 200 and head.headers["Cache-Control"] == "no-cache"
        # The API is unchanged around them.
        assert (await gw.client.get("/healthz")).status == 200
        await expect_error(await gw.client.get("/api/satellites"), 401, "unauthorized")
        await expect_error(await gw.client.get("/nothing"), 404, "not_found")
        await expect_error(await gw.client.get("/assets/missing-0000.js"), 404, "not_found")


@pytest.mark.parametrize(
    "target",
    [
        "/assets/../../secret.txt", "/assets/..%2F..%2Fsecret.txt", "/assets/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/assets/..%5C..%5Csecret.txt", "/..%2Fsecret.txt", "/%2E%2E%2Fsecret.txt", "/assets/%2Fetc%2Fpasswd",
        "/assets/link.js", "/assets/folder.js", "/.env", "/assets/.%2E", "/assets/..", "/assets/",
        "/assets/index-3f2a.js%00.png", "/dist/index.html", "/assets/../index.html%2F..%2F..%2Fsecret.txt",
    ],
)  # fmt: skip
async def test_no_file_outside_the_dashboard_is_served(db_conninfo: str, dist: Path, target: str) -> None:
    async with gateway(db_conninfo, GatewayConfig(port=0, dashboard_dir=dist)) as gw:
        status, body = await _raw_get(gw, target)
        assert b"outside the dashboard" not in body and b"SECRET" not in body
        if status == 200:  # the client's ``..`` resolved inside the dashboard (to the index)
            assert body == FILES["index.html"][1], target
        else:
            assert status in (400, 404), (target, status)


async def test_dashboard_not_built(gw: Harness) -> None:
    error = await expect_error(await gw.client.get("/"), 503, "dashboard_not_built")
    assert "make run" in error["message"] and "npm ci && npm run build" in error["message"]
    assert "no-dist" not in error["message"]  # no server paths in a public answer
    await expect_error(await gw.client.get("/assets/index-3f2a.js"), 404, "not_found")
    await expect_error(await gw.client.get("/favicon.svg"), 404, "not_found")


async def test_the_dashboard_routes_are_not_api_operations(db_conninfo: str, dist: Path) -> None:
    async with gateway(db_conninfo, GatewayConfig(port=0, dashboard_dir=dist)) as gw:
        document = await (await gw.client.get("/api/openapi.json")).json()
        paths = set(document["paths"])
        assert not {path for _, path in NON_API_ROUTES} & paths
        assert {"/api/satellites/{sat_id}/track", "/api/alarms/{alarm_id}/clear", "/api/session"} <= paths


def test_config_dashboard_dir_and_anonymous_role_from_env(tmp_path: Path) -> None:
    from web.config import DEFAULT_DASHBOARD_DIR, REPO_ROOT

    config = GatewayConfig.from_env({})
    assert config.dashboard_dir == DEFAULT_DASHBOARD_DIR == REPO_ROOT / "web" / "dashboard" / "dist"
    assert (REPO_ROOT / "web" / "app.py").is_file() and config.anonymous_role is None
    assert GatewayConfig.from_env({"STELLAROPS_DASHBOARD_DIR": str(tmp_path)}).dashboard_dir == tmp_path
    assert GatewayConfig.from_env({"STELLAROPS_DASHBOARD_DIR": "build/ui"}).dashboard_dir == REPO_ROOT / "build" / "ui"
    assert GatewayConfig.from_env({"STELLAROPS_HTTP_ANONYMOUS_ROLE": "viewer"}).anonymous_role == "viewer"
    assert GatewayConfig.from_env({"STELLAROPS_HTTP_ANONYMOUS_ROLE": " Viewer "}).anonymous_role == "viewer"
    assert GatewayConfig.from_env({"STELLAROPS_HTTP_ANONYMOUS_ROLE": "none"}).anonymous_role is None
    for bad in ("operator", "admin", "yes", "1"):
        with pytest.raises(ValueError, match=r"STELLAROPS_HTTP_ANONYMOUS_ROLE=.* must be one of none, viewer"):
            GatewayConfig.from_env({"STELLAROPS_HTTP_ANONYMOUS_ROLE": bad})


# -- the ground track -----------------------------------------------------------------------------

PERIOD_S = 86_400 / 15.72125391  # DEMO_TLE's mean motion


async def test_track_defaults_follow_the_orbital_period(gw: Harness) -> None:
    before = datetime.now(UTC)
    response = await gw.client.get("/api/satellites/sat-2/track", headers=gw.auth("viewer"))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert set(body) == {"satellite_id", "period_s", "from", "to", "step_s", "items"}
    assert body["satellite_id"] == "sat-2" and body["period_s"] == pytest.approx(PERIOD_S)
    assert body["step_s"] == 31 == round(PERIOD_S / 180)
    start, end = _ms(body["from"]), _ms(body["to"])
    assert abs(start - (before.timestamp() - PERIOD_S) * 1000) < 5000
    assert end - start == pytest.approx(2 * PERIOD_S * 1000, abs=2)
    [(sat_id, times)] = gw.cluster.propagate_calls
    assert sat_id == "sat-2" and len(times) == int(2 * PERIOD_S // 31) + 1 == len(body["items"])
    assert times[0] == start and {b - a for a, b in itertools.pairwise(times)} == {31_000}
    first = body["items"][0]
    assert first == {"time": body["from"], "lat_deg": 1.5, "lon_deg": -2.5, "alt_km": 550.0, "in_sunlight": True}


async def test_track_window_and_step(gw: Harness) -> None:
    viewer = gw.auth("viewer")
    url = "/api/satellites/sat-2/track?from=2024-03-01T12:00:00Z&to=2024-03-01T13:00:00Z&step_s=60"
    body = await (await gw.client.get(url, headers=viewer)).json()
    assert (body["from"], body["to"], body["step_s"]) == ("2024-03-01T12:00:00.000Z", "2024-03-01T13:00:00.000Z", 60)
    assert len(body["items"]) == 61 and body["items"][-1]["time"] == "2024-03-01T13:00:00.000Z"
    url = "/api/satellites/sat-2/track?from=2024-03-01T12:00:00%2B01:00&to=2024-03-01T12:00:10%2B01:00&step_s=1.5"
    body = await (await gw.client.get(url, headers=viewer)).json()
    assert body["from"] == "2024-03-01T11:00:00.000Z" and body["step_s"] == 1.5 and len(body["items"]) == 7
    # Only one end given: the window is two periods from it.
    body = await (await gw.client.get("/api/satellites/sat-2/track?from=2024-03-01T12:00:00Z", headers=viewer)).json()
    assert _ms(body["to"]) - _ms(body["from"]) == pytest.approx(2 * PERIOD_S * 1000, abs=2)
    assert body["from"] == "2024-03-01T12:00:00.000Z"
    body = await (await gw.client.get("/api/satellites/sat-2/track?to=2024-03-01T12:00:00Z", headers=viewer)).json()
    assert _ms(body["to"]) - _ms(body["from"]) == pytest.approx(2 * PERIOD_S * 1000, abs=2)
    assert body["to"] == "2024-03-01T12:00:00.000Z"


async def test_track_leaves_out_points_where_sgp4_fails(gw: Harness) -> None:
    gw.cluster.decays_at_ms = _ms("2024-03-01T12:30:00Z")
    url = "/api/satellites/sat-2/track?from=2024-03-01T12:00:00Z&to=2024-03-01T13:00:00Z&step_s=60"
    body = await (await gw.client.get(url, headers=gw.auth("viewer"))).json()
    assert len(body["items"]) == 30 and body["items"][-1]["time"] == "2024-03-01T12:29:00.000Z"


async def test_track_refusals(gw: Harness) -> None:
    viewer = gw.auth("viewer")
    base = "/api/satellites/sat-2/track"
    error = await expect_error(await gw.client.get("/api/satellites/sat-1/track", headers=viewer), 409, "conflict")
    assert error["details"]["reason"] == "no_tle"
    await expect_error(await gw.client.get("/api/satellites/none/track", headers=viewer), 404, "not_found")
    await expect_invalid_field(await gw.client.get(f"{base}?step_s=0.5", headers=viewer), "step_s")
    await expect_invalid_field(await gw.client.get(f"{base}?step_s=3601", headers=viewer), "step_s")
    await expect_invalid_field(await gw.client.get(f"{base}?step_s=abc", headers=viewer), "step_s")
    await expect_invalid_field(await gw.client.get(f"{base}?from=2024-03-01T12:00:00Z&to=2024-03-01T12:00:00Z", headers=viewer), "to")
    await expect_invalid_field(await gw.client.get(f"{base}?from=2024-03-02T12:00:00Z&to=2024-03-01T12:00:00Z", headers=viewer), "to")
    await expect_invalid_field(await gw.client.get(f"{base}?from=2024-03-01T12:00:00", headers=viewer), "from")  # no zone
    await expect_invalid_field(await gw.client.get(f"{base}?to=2200-01-01T00:00:00Z", headers=viewer), "to")
    await expect_invalid_field(await gw.client.get(f"{base}?height=1", headers=viewer), "height")
    # At most 2,000 points: the field to change is named.
    day = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z"
    error = await expect_error(await gw.client.get(f"{base}?{day}&step_s=30", headers=viewer), 422, "validation_failed")
    assert error["details"]["field"] == "step_s" and "2881 points" in error["message"]
    await expect_invalid_field(await gw.client.get(f"{base}?{day}", headers=viewer), "to")  # the default step: 2788 points
    ok = await gw.client.get(f"{base}?from=2024-03-01T00:00:00Z&to=2024-03-01T00:33:19Z&step_s=1", headers=viewer)
    assert ok.status == 200 and len((await ok.json())["items"]) == 2000
    assert not [c for c in gw.cluster.propagate_calls if len(c[1]) > 2000]


# -- alarms: clearing, live -----------------------------------------------------------------------


async def _raise_alarms(gw: Harness) -> tuple[int, int]:
    for s in demo_satellites(int(datetime.now(UTC).timestamp() * 1000), 2):
        await Satellites(gw.db).create(s, actor="test")
    full, _ = await Alarms(gw.db).raise_alarm("demo-01", "memory_full", "warning", "memory full (1024 MB)")
    low, _ = await Alarms(gw.db).raise_alarm("demo-02", "low_energy", "critical", "energy below 10 %")
    return full.id, low.id


async def test_clear_an_alarm(gw: Harness) -> None:
    full, low = await _raise_alarms(gw)
    listed = await (await gw.client.get("/api/alarms", headers=gw.auth("viewer"))).json()
    assert {a["id"]: (a["cleared_at"], a["cleared_by"]) for a in listed["items"]} == {full: (None, None), low: (None, None)}
    response = await gw.client.post(f"/api/alarms/{full}/clear", headers=gw.auth("operator"))
    assert response.status == 200, await response.text()
    alarm = await response.json()
    operator_actor = alarm["cleared_by"]
    assert operator_actor.startswith("token:") and operator_actor.endswith(":test operator")
    assert alarm["id"] == full and alarm["satellite_id"] == "demo-01" and alarm["kind"] == "memory_full"
    assert alarm["cleared_at"].endswith("Z") and alarm["cleared_at"] >= alarm["raised_at"]
    listed = await (await gw.client.get("/api/alarms", headers=gw.auth("viewer"))).json()
    assert [a["id"] for a in listed["items"]] == [low]
    # Published once on the event bus, with what a client needs to update without a refetch.
    assert gw.cluster.published == [(
        "alarm", "demo-01",
        {"alarm_id": full, "kind": "memory_full", "severity": "warning", "cleared": True,
         "cleared_by": operator_actor, "message": "memory full (1024 MB)"},
    )]  # fmt: skip
    # Idempotent: the same answer, nothing published again.
    again = await gw.client.post(f"/api/alarms/{full}/clear", headers=gw.auth("admin"))
    assert again.status == 200 and await again.json() == alarm
    assert len(gw.cluster.published) == 1
    [entry] = await AuditLog(gw.db).entries(entity="alarm", entity_id=str(full))
    assert (entry.actor, entry.action) == (operator_actor, "alarm.clear")


async def test_clear_alarm_refusals(gw: Harness) -> None:
    full, _ = await _raise_alarms(gw)
    error = await expect_error(await gw.client.post("/api/alarms/999999/clear", headers=gw.auth("operator")), 404, "not_found")
    assert error["details"]["field"] == "alarm_id"
    for bad in ("abc", "0", "-1", "1.5", "99999999999999999999"):
        await expect_invalid_field(await gw.client.post(f"/api/alarms/{bad}/clear", headers=gw.auth("operator")), "alarm_id")
    await expect_error(await gw.client.post(f"/api/alarms/{full}/clear"), 401, "unauthorized")
    error = await expect_error(await gw.client.post(f"/api/alarms/{full}/clear", headers=gw.auth("viewer")), 403, "forbidden")
    assert error["details"] == {"required_role": "operator", "role": "viewer"}
    await expect_error(await gw.client.get(f"/api/alarms/{full}/clear", headers=gw.auth("operator")), 405, "method_not_allowed")
    assert len((await (await gw.client.get("/api/alarms", headers=gw.auth("viewer"))).json())["items"]) == 2


async def test_a_clear_stands_when_the_event_cannot_be_published(gw: Harness, caplog: pytest.LogCaptureFixture) -> None:
    full, _ = await _raise_alarms(gw)
    gw.cluster.publish_fails = True
    with caplog.at_level(logging.WARNING, logger="stellarops.web"):
        response = await gw.client.post(f"/api/alarms/{full}/clear", headers=gw.auth("operator"))
    assert response.status == 200 and (await response.json())["cleared_at"] is not None
    assert f"alarm {full} cleared but its event was not published" in caplog.text
    assert [a.id for a in await Alarms(gw.db).active()] != [full] and gw.cluster.published == []


async def test_every_event_stream_sees_a_clear(gw: Harness) -> None:
    full, _ = await _raise_alarms(gw)
    async with gw.client.get("/api/events?types=alarm", headers=gw.auth("viewer")) as stream:
        await read_sse(stream, 1)
        async with asyncio.timeout(5):
            while gw.app[HUB].clients != 1:
                await asyncio.sleep(0.01)
        assert (await gw.client.post(f"/api/alarms/{full}/clear", headers=gw.auth("operator"))).status == 200
        [frame] = [f for f in await read_sse(stream, 1) if "comment" not in f]
    assert frame["event"] == "alarm"
    event = json.loads(frame["data"])
    assert event["sat_id"] == "demo-01" and event["data"]["cleared"] is True and event["data"]["alarm_id"] == full


# -- session and the anonymous viewer -------------------------------------------------------------


async def test_session_tells_the_role_of_a_token(gw: Harness) -> None:
    for role in ("viewer", "operator", "admin"):
        response = await gw.client.get("/api/session", headers=gw.auth(role))
        assert response.status == 200
        assert await response.json() == {"role": role, "name": f"test {role}", "anonymous": False}
    await expect_error(await gw.client.get("/api/session"), 401, "unauthorized")
    await expect_error(await gw.client.get("/api/session", headers={"Authorization": "Bearer sto_nope"}), 401, "unauthorized")
    await expect_invalid_field(await gw.client.get("/api/session?x=1", headers=gw.auth("viewer")), "x")


async def test_anonymous_viewer_when_enabled(db_conninfo: str, tmp_path: Path) -> None:
    config = GatewayConfig(port=0, anonymous_role="viewer", dashboard_dir=tmp_path)
    async with gateway(db_conninfo, config) as gw:
        gw.cluster.add("sat-1")
        gw.cluster.add("sat-2", tle=DEMO_TLE)
        assert await (await gw.client.get("/api/session")).json() == {"role": "viewer", "name": "anonymous", "anonymous": True}
        for path in ("/api/satellites", "/api/satellites/sat-1", "/api/nodes", "/api/alarms", "/api/ground-stations",
                     "/api/satellites/sat-2/track", "/api/satellites/sat-1/commands"):  # fmt: skip
            response = await gw.client.get(path)
            assert response.status == 200, (path, await response.text())
        async with gw.client.get("/api/events") as stream:  # EventSource without access_token
            assert stream.status == 200 and (await read_sse(stream, 1))[0]["comment"] == "connected"
        # Stronger roles still need a token; a token sent must be valid (no silent downgrade).
        await expect_error(await gw.client.patch("/api/satellites/sat-1", json={"mode": "safe"}), 401, "unauthorized")
        await expect_error(await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "noop"}), 401, "unauthorized")
        await expect_error(await gw.client.post("/api/alarms/1/clear"), 401, "unauthorized")
        await expect_error(await gw.client.post("/api/satellites", json={"id": "x", "name": "X"}), 401, "unauthorized")
        bad = {"Authorization": "Bearer sto_nope"}
        await expect_error(await gw.client.get("/api/satellites", headers=bad), 401, "unauthorized")
        await expect_error(await gw.client.get("/api/events?access_token=sto_nope"), 401, "unauthorized")
        await expect_error(await gw.client.get("/api/session", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
        session = await (await gw.client.get("/api/session", headers=gw.auth("operator"))).json()
        assert session == {"role": "operator", "name": "test operator", "anonymous": False}
        patched = await gw.client.patch("/api/satellites/sat-1", json={"mode": "safe"}, headers=gw.auth("operator"))
        assert patched.status == 200


async def test_no_anonymous_access_by_default(gw: Harness) -> None:
    for path in ("/api/satellites", "/api/session", "/api/events", "/api/satellites/sat-2/track"):
        await expect_error(await gw.client.get(path), 401, "unauthorized")


def test_track_period_from_the_tle() -> None:
    from web.routes.telemetry import orbital_period_s

    assert orbital_period_s(DEMO_TLE[1]) == pytest.approx(PERIOD_S)
    geo = DEMO_TLE[1][:52] + " 1.00270000" + DEMO_TLE[1][63:]
    assert orbital_period_s(geo) == pytest.approx(86_400 / 1.0027)
    assert orbital_period_s(DEMO_TLE[1][:52] + " 0.00000000" + DEMO_TLE[1][63:]) is None
    assert orbital_period_s(DEMO_TLE[1][:52] + "  nonsense  " + DEMO_TLE[1][64:]) is None
    assert timedelta(seconds=PERIOD_S) > timedelta(minutes=90)
