"""The gateway's telemetry range and command history routes over a real database: downsampled
JSON (max_points, min/avg/max), CSV exports streamed (headers, chunked transfer, row counts, a
download cut by the database ends truncated, not short), command history filters, keyset pages
and export, and both exports in the OpenAPI document."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import psycopg
import pytest
from web_support import Harness, expect_invalid_field, gateway

from py_nodes.db import CommandLedger, Satellites, TelemetryRow, TelemetryWriter
from py_nodes.db.seed import demo_satellites
from web import build_document, export
from web.routes import ROUTES

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BASE = "/api/satellites/sat-1/telemetry"


@pytest.fixture
async def gw(db_conninfo: str) -> AsyncIterator[Harness]:
    async with gateway(db_conninfo) as harness:
        harness.cluster.add("sat-1")
        yield harness


async def fill(gw: Harness, seconds: int, sat: str = "sat-1") -> None:
    rows = [
        TelemetryRow(sat, T0 + timedelta(seconds=s), 50.0 + 40.0 * (s % 97 == 0), float(s % 100), "nominal", 1.0, 2.0, 550.0, True)
        for s in range(seconds)
    ]  # fmt: skip
    async with TelemetryWriter(gw.db, flush_interval_s=0.05, batch_rows=10_000, max_rows=200_000, staging="never") as writer:
        assert writer.offer(rows) == seconds
        await writer.flush()


def window(hours: float) -> str:
    return f"from={T0.isoformat().replace('+00:00', 'Z')}&to={(T0 + timedelta(hours=hours)).isoformat().replace('+00:00', 'Z')}"


async def test_max_points_downsamples_and_keeps_the_peaks(gw: Harness) -> None:
    await fill(gw, 3600)
    body = await (await gw.client.get(f"{BASE}?{window(1)}&max_points=100", headers=gw.auth("viewer"))).json()
    assert body["step_s"] == 36 and len(body["items"]) == 100
    assert sum(b["samples"] for b in body["items"]) == 3600
    peaks = [b for b in body["items"] if b["max"]["energy_pct"] == 90.0]
    assert len(peaks) == 38  # every bucket holding one of the 38 spikes (s % 97 == 0) shows it
    assert all(b["min"]["energy_pct"] == 50.0 and b["avg"]["energy_pct"] < 90.0 for b in peaks)
    viewer = gw.auth("viewer")
    await expect_invalid_field(await gw.client.get(f"{BASE}?{window(1)}&max_points=10&step=60", headers=viewer), "max_points")
    await expect_invalid_field(await gw.client.get(f"{BASE}?{window(24 * 367)}&max_points=10", headers=viewer), "to")
    await expect_invalid_field(await gw.client.get(f"{BASE}?{window(1)}&max_points=0", headers=viewer), "max_points")
    await expect_invalid_field(await gw.client.get(f"{BASE}?{window(1)}&format=xml", headers=viewer), "format")


async def test_csv_export_is_streamed_with_every_row(gw: Harness) -> None:
    await fill(gw, 20_000)
    async with gw.client.get(f"{BASE}?{window(6)}&format=csv", headers=gw.auth("viewer")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in response.headers
        assert response.headers["Content-Disposition"] == 'attachment; filename="sat-1_telemetry_20240301T120000Z_20240301T180000Z.csv"'
        pieces = [piece async for piece in response.content.iter_chunked(1 << 20)]
    text = b"".join(pieces).decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 20_000 and table[0]["time"] == "2024-03-01T12:00:00.000000Z"  # no limit: every row
    assert table[-1]["energy_pct"] == "50" and table[97]["energy_pct"] == "90"
    # Accept chooses too; format wins over it; JSON stays the default.
    accept_csv = {**gw.auth("viewer"), "Accept": "text/csv"}
    response = await gw.client.get(f"{BASE}?{window(1)}&step=600", headers=accept_csv)
    assert response.content_type == "text/csv" and len((await response.text()).splitlines()) == 1 + 6
    response = await gw.client.get(f"{BASE}?{window(1)}&format=json", headers=accept_csv)
    assert response.content_type == "application/json"
    prefers_json = {**gw.auth("viewer"), "Accept": "text/csv;q=0.5, application/json"}
    assert (await gw.client.get(f"{BASE}?{window(1)}", headers=prefers_json)).content_type == "application/json"
    assert (await gw.client.get(f"{BASE}?{window(1)}", headers={**gw.auth("viewer"), "Accept": "*/*"})).content_type == "application/json"


async def test_a_download_cut_by_the_database_ends_truncated(gw: Harness, db_conninfo: str) -> None:
    await fill(gw, 100_000)
    async with gw.client.get(f"{BASE}?{window(28)}&format=csv", headers=gw.auth("viewer")) as response:
        assert response.status == 200
        received = len(await response.content.readany())
        with psycopg.connect(db_conninfo, autocommit=True) as admin:  # end the export's backend
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT%%'")
        with pytest.raises(aiohttp.ClientPayloadError):
            async with asyncio.timeout(60):
                while chunk := await response.content.readany():
                    received += len(chunk)
    assert 0 < received < 100_000 * 60  # part of it, never the whole file


async def test_a_client_that_stops_reading_loses_the_export(gw: Harness, db_conninfo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "STALL_S", 1.0)  # the gateway's bound on a write that waits for the client
    await fill(gw, 200_000)  # ~19 MB of CSV: more than the sockets on the way can buffer

    def exporting() -> int:
        with psycopg.connect(db_conninfo, autocommit=True) as admin:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT%%' AND state = 'active'").fetchone()
            return int(row[0]) if row else 0

    async with gw.client.get(f"{BASE}?{window(56)}&format=csv", headers=gw.auth("viewer")) as response:
        assert response.status == 200
        assert exporting() == 1
        async with asyncio.timeout(60):  # the client reads nothing: the gateway gives up, the COPY ends
            while exporting():
                await asyncio.sleep(0.1)
        with pytest.raises(aiohttp.ClientPayloadError):  # and what it buffered ends without the last chunk
            async with asyncio.timeout(60):
                while await response.content.readany():
                    pass


async def test_openapi_documents_both_exports() -> None:
    paths = json.loads(json.dumps(build_document(ROUTES)))["paths"]
    for path in ("/api/satellites/{sat_id}/telemetry", "/api/satellites/{sat_id}/commands", "/api/commands"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv"}, path
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert {"format", "from", "to"} <= names
    assert "max_points" in {p["name"] for p in paths["/api/satellites/{sat_id}/telemetry"]["get"]["parameters"]}


# -- command history ------------------------------------------------------------------------------


async def commands(gw: Harness) -> list[str]:
    """Nine commands on two satellites by two people, of several kinds and outcomes; their ids
    newest first."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for state in demo_satellites(now_ms, 2):
        await Satellites(gw.db).create(state, actor="test")
    ledger, ids = CommandLedger(gw.db), []
    for n in range(9):
        kind, args = ("set_mode", {"mode": "safe"}) if n % 3 == 0 else (("noop", "downlink")[n % 2], {})
        command, _ = await ledger.submit(f"demo-0{1 + n % 2}", kind, args, actor=("alice", "bob")[n % 2 == 0])
        if n % 4 == 0:
            await ledger.mark_failed(command.id, "no contact")
        elif n % 4 == 1:
            await ledger.mark_done(command.id)
        ids.append(str(command.id))
    return ids[::-1]


async def test_command_history_filters(gw: Harness) -> None:
    newest_first = await commands(gw)
    viewer = gw.auth("viewer")

    async def ids(query: str, path: str = "/api/commands") -> list[str]:
        response = await gw.client.get(f"{path}?{query}", headers=viewer)
        assert response.status == 200, await response.text()
        return [c["id"] for c in (await response.json())["items"]]

    assert await ids("") == newest_first
    assert await ids("", "/api/satellites/demo-01/commands") == newest_first[0::2]  # n = 8, 6, 4, 2, 0
    assert len(await ids("kind=set_mode")) == 3 and len(await ids("kind=noop,downlink")) == 6
    assert await ids("status=failed") == [newest_first[8 - n] for n in (8, 4, 0)]
    assert await ids("submitted_by=alice&kind=downlink") == [newest_first[8 - n] for n in (7, 5, 1)]
    assert await ids("submitted_by=nobody") == []
    assert await ids("from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z") == []
    assert await ids("from=2000-01-01T00:00:00Z") == newest_first
    await expect_invalid_field(await gw.client.get("/api/commands?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z", headers=viewer), "from")
    await expect_invalid_field(await gw.client.get("/api/commands?kind=fly", headers=viewer), "kind[0]")
    await expect_invalid_field(await gw.client.get("/api/commands?status=lost", headers=viewer), "status[0]")
    # An empty filter is a mistake, not "any": refused instead of silently matching everything.
    await expect_invalid_field(await gw.client.get("/api/commands?kind=", headers=viewer), "kind")
    await expect_invalid_field(await gw.client.get("/api/commands?status=", headers=viewer), "status")
    await expect_invalid_field(await gw.client.get("/api/commands?cursor=abc", headers=viewer), "cursor")


async def test_command_history_pages_and_export(gw: Harness) -> None:
    newest_first = await commands(gw)
    viewer, seen, query = gw.auth("viewer"), [], "limit=4"
    while True:
        body = await (await gw.client.get(f"/api/commands?{query}", headers=viewer)).json()
        seen += [c["id"] for c in body["items"]]
        if body["next"] is None:
            break
        query = f"limit=4&cursor={body['next']}"
    assert seen == newest_first  # three pages, nothing repeated or skipped
    async with gw.client.get("/api/commands?status=done,failed&format=csv", headers=viewer) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.headers["Content-Disposition"].startswith('attachment; filename="commands_fleet_')
        table = list(csv.DictReader(io.StringIO(await response.text())))
    assert [line["id"] for line in table] == [newest_first[8 - n] for n in (8, 5, 4, 1, 0)]
    assert json.loads(table[0]["result"]) == {"reason": "no contact"} and table[0]["finished_at"].endswith("Z")
    response = await gw.client.get("/api/satellites/demo-02/commands", headers={**viewer, "Accept": "text/csv"})
    assert response.headers["Content-Disposition"].startswith('attachment; filename="commands_demo-02_')
    assert len(list(csv.DictReader(io.StringIO(await response.text())))) == 4
