"""Server-sent events: filtering, resume with Last-Event-ID, reset, heartbeats, slow clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from web_support import FakeCluster, Harness, gateway, read_sse

from web import GatewayConfig
from web.cluster import Event
from web.metrics import GatewayMetrics
from web.sse import EventFilter, EventHub, encode_event


@pytest.fixture
async def gw(db_conninfo: str) -> AsyncIterator[Harness]:
    async with gateway(db_conninfo, GatewayConfig(port=0, sse_heartbeat_s=0.3)) as harness:
        harness.cluster.add("sat-1")
        harness.cluster.add("sat-2")
        yield harness


async def _until_clients(gw: Harness, count: int) -> None:
    from web.keys import HUB

    async with asyncio.timeout(5):
        while gw.app[HUB].clients != count:
            await asyncio.sleep(0.01)


async def test_stream_headers_filter_and_order(gw: Harness) -> None:
    async with gw.client.get("/api/events?sat=sat-1&types=state,alarm", headers=gw.auth("viewer")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Accel-Buffering"] == "no"
        [hello] = await read_sse(response, 1)
        assert hello == {"retry": "2000", "comment": "connected"}
        await _until_clients(gw, 1)
        gw.cluster.emit("telemetry", "sat-1", {"energy_pct": 50.0})  # type filtered out
        gw.cluster.emit("state", "sat-2", {"from": "nominal", "to": "safe"})  # satellite filtered out
        wanted = gw.cluster.emit("state", "sat-1", {"from": "nominal", "to": "science", "reason": "command"})
        alarm = gw.cluster.emit("alarm", "sat-1", {"alarm": "low_energy", "severity": "critical"})
        frames = [f for f in await read_sse(response, 2) if "comment" not in f]
        assert [f["id"] for f in frames] == [str(wanted.id), str(alarm.id)]
        assert frames[0]["event"] == "state"
        data = json.loads(frames[0]["data"])
        assert data["sat_id"] == "sat-1" and data["type"] == "state" and data["data"]["to"] == "science"
        assert data["at"].endswith("Z") and data["id"] == wanted.id


async def test_heartbeat_comments(gw: Harness) -> None:
    async with gw.client.get("/api/events", headers=gw.auth("viewer")) as response:
        frames = await read_sse(response, 3, timeout=3)
        assert [f.get("comment") for f in frames[1:]] == ["ping", "ping"]


async def test_sse_auth_and_validation(gw: Harness) -> None:
    response = await gw.client.get("/api/events")
    assert response.status == 401 and (await response.json())["error"]["code"] == "unauthorized"
    response = await gw.client.get("/api/events", headers={"Authorization": "Bearer sto_nope"})
    assert response.status == 401
    response = await gw.client.get("/api/events?types=weather", headers=gw.auth("viewer"))
    assert response.status == 422 and (await response.json())["error"]["details"]["field"] == "types[0]"
    response = await gw.client.get("/api/events", headers={**gw.auth("viewer"), "Last-Event-ID": "x1"})
    assert response.status == 422 and (await response.json())["error"]["details"]["field"] == "Last-Event-ID"
    async with gw.client.get(f"/api/events?access_token={gw.tokens['viewer']}") as response:
        assert response.status == 200  # EventSource cannot send headers


async def test_resume_with_last_event_id(gw: Harness) -> None:
    first = gw.cluster.emit("state", "sat-1", {"to": "safe"})
    missed = [gw.cluster.emit("state", "sat-1", {"to": m}) for m in ("standby", "nominal")]
    gw.cluster.emit("telemetry", "sat-2", {"energy_pct": 1.0})
    await asyncio.sleep(0.05)  # the hub has seen them (its head moves on)
    headers = {**gw.auth("viewer"), "Last-Event-ID": str(first.id)}
    async with gw.client.get("/api/events?sat=sat-1", headers=headers) as response:
        frames = await read_sse(response, 3)
        assert [f["id"] for f in frames[1:]] == [str(e.id) for e in missed]
        await _until_clients(gw, 1)
        live = gw.cluster.emit("state", "sat-1", {"to": "science"})
        [frame] = [f for f in await read_sse(response, 1) if "comment" not in f]
        assert frame["id"] == str(live.id)  # and nothing twice


async def test_reset_when_too_old_or_unknown(db_conninfo: str) -> None:
    async with gateway(db_conninfo, cluster=FakeCluster(buffer=3)) as gw:
        gw.cluster.add("sat-1")
        events = [gw.cluster.emit("telemetry", "sat-1", {"n": n}) for n in range(6)]
        await asyncio.sleep(0.05)
        async with gw.client.get("/api/events", headers={**gw.auth("viewer"), "Last-Event-ID": str(events[0].id)}) as response:
            frames = await read_sse(response, 2)
            assert frames[1]["event"] == "reset" and frames[1]["id"] == str(events[-1].id)
            assert json.loads(frames[1]["data"])["reason"] == "too_old"
        async with gw.client.get("/api/events", headers={**gw.auth("viewer"), "Last-Event-ID": "99999"}) as response:
            frames = await read_sse(response, 2)
            assert frames[1]["event"] == "reset" and json.loads(frames[1]["data"])["reason"] == "unknown_id"
        metrics = await (await gw.client.get("/metrics")).text()
        assert "stellar_sse_resets_total 2.0" in metrics


def _event(n: int, sat: str = "s") -> Event:
    return Event(n, "telemetry", sat, {"n": n}, 1_700_000_000_000)


async def test_hub_encodes_once_and_drops_a_slow_client() -> None:
    metrics = GatewayMetrics()
    hub = EventHub(metrics, queue_size=3)
    slow = hub.connect(EventFilter(), None)
    fast = hub.connect(EventFilter(), None)
    other = hub.connect(EventFilter(sat_ids=frozenset({"x"})), None)
    for n in range(1, 4):
        hub.publish(_event(n))
        assert await fast.next_chunk() == encode_event(_event(n))
    assert slow.queue.qsize() == 3 and other.queue.qsize() == 0
    hub.publish(_event(4))  # the slow client's queue is full: dropped, the others unaffected
    assert slow.dropped and hub.clients == 2
    assert await slow.next_chunk() is None
    assert await fast.next_chunk() == encode_event(_event(4))
    assert metrics.sse_dropped._value.get() == 1  # type: ignore[attr-defined]


async def test_a_client_that_stops_reading_is_dropped_not_buffered(db_conninfo: str) -> None:
    config = GatewayConfig(port=0, sse_queue_events=50)
    async with gateway(db_conninfo, config) as gw:
        gw.cluster.add("sat-1")
        async with gw.client.get("/api/events", headers=gw.auth("viewer")) as stuck, gw.client.get(
            "/api/events", headers=gw.auth("viewer")
        ) as reader:
            await read_sse(stuck, 1)
            await read_sse(reader, 1)
            await _until_clients(gw, 2)
            big = {"blob": "x" * 20_000}
            received = 0
            for _ in range(400):  # ~8 MB: far beyond socket buffers; the reader keeps up, the other never reads
                gw.cluster.emit("telemetry", "sat-1", big)
                await asyncio.sleep(0)
                received += len([f for f in await read_sse(reader, 1) if "comment" not in f])
            assert received == 400
            metrics = await (await gw.client.get("/metrics")).text()
            assert "stellar_sse_clients_dropped_total 1.0" in metrics
            assert "stellar_sse_clients 1.0" in metrics
