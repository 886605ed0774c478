"""The gateway while PostgreSQL is away: a real server of the test's own, killed with SIGKILL or
frozen with SIGSTOP. Routes that need the database answer 503 ``database_unavailable`` with
``Retry-After`` at once; routes that don't (live state, the event stream, tokens already seen)
keep working; an unknown token is a 503, never a 401 or a 500; ``/readyz`` says why; once the
server is back everything answers again. The cluster is the fake (its routes need no database);
tests/test_web_stack_faults.py does the same against real BEAM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from drills import process_tree
from web_support import DEMO_TLE, FakeCluster, expect_error, read_sse

from py_nodes.db import ApiTokens, Database, EmbeddedServer, migrate
from py_nodes.db.server import postmaster_alive
from web import GatewayConfig, create_app
from web.spec import GATE

pytestmark = pytest.mark.slow

BOUND_S = 30.0  # every wait for a state change; a 503 itself is timed and printed


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path / "pg", durable=False)
    srv.start()
    try:
        yield srv
    finally:
        for pid in _server_pids(srv):  # never leave it frozen
            with contextlib.suppress(ProcessLookupError):  # a backend may end between list and kill
                os.kill(pid, signal.SIGCONT)
        srv.stop()


def _server_pids(server: EmbeddedServer) -> list[int]:
    """The postmaster and its children (backends, checkpointer...)."""
    main = server.postmaster_pid()
    if main is None or not postmaster_alive(main):
        return []
    return process_tree(main)


def _kill(server: EmbeddedServer) -> None:
    pid = server.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + BOUND_S
    while postmaster_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)


class Gw:
    def __init__(self, client: TestClient[Any, Any], cluster: FakeCluster, tokens: dict[str, str]) -> None:
        self.client, self.cluster, self.tokens = client, cluster, tokens

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def timed(self, method: str, path: str, role: str | None = "viewer", **kw: Any) -> tuple[ClientResponse, float]:
        start = time.perf_counter()
        headers = self.auth(role) if role else {}
        response = await self.client.request(method, path, headers=headers, **kw)
        await response.read()
        return response, time.perf_counter() - start

    async def until(self, path: str, status: int) -> None:
        deadline = time.monotonic() + BOUND_S
        while (await self.client.get(path)).status != status:
            assert time.monotonic() < deadline, f"{path} never answered {status}"
            await asyncio.sleep(0.1)


@pytest.fixture
async def gw(server: EmbeddedServer) -> AsyncIterator[Gw]:
    async with Database(server.conninfo, max_size=1) as db:
        await migrate(db)
        tokens = {role: (await ApiTokens(db).create(role, f"t {role}", actor="test"))[1] for role in ("viewer", "operator")}
        tokens["unseen"] = (await ApiTokens(db).create("viewer", "never used before the outage", actor="test"))[1]
    cluster = FakeCluster()
    cluster.add("sat-1")
    cluster.add("sat-2", tle=DEMO_TLE)
    db = Database(server.conninfo, max_size=8, timeout_s=3.0, name="gateway")  # as web.role makes it
    app = create_app(cluster, db, GatewayConfig(port=0, token_cache_s=0.5))
    async with TestServer(app) as srv, TestClient(srv) as client:
        yield Gw(client, cluster, tokens)


async def _outage_answers(gw: Gw) -> list[tuple[str, float]]:
    """Every kind of route while the database is away; the time each 503 took."""
    timings: list[tuple[str, float]] = []
    for method, path, role, kw in [
        ("GET", "/api/ground-stations", "viewer", {}),
        ("GET", "/api/alarms", "viewer", {}),
        ("GET", "/api/satellites/sat-1/telemetry", "viewer", {}),
        ("GET", "/api/satellites/sat-1/commands", "viewer", {}),
        ("GET", "/api/passes?sat=sat-2", "viewer", {}),
        ("POST", "/api/satellites/sat-1/commands", "operator", {"json": {"kind": "noop"}}),
        ("PATCH", "/api/satellites/sat-1", "operator", {"json": {"mode": "safe"}}),
        ("GET", "/api/satellites", "unseen", {}),  # a token never seen: cannot be checked now
    ]:
        response, seconds = await gw.timed(method, path, role, **kw)
        error = await expect_error(response, 503, "database_unavailable")
        assert response.headers["Retry-After"].isdigit() and error["details"]["reason"] == "database_unavailable"
        timings.append((f"{method} {path}", seconds))
    assert gw.cluster.commands == []  # refused before BEAM was asked: nothing accepted

    # What needs no database keeps working, for tokens seen before.
    listing, _ = await gw.timed("GET", "/api/satellites")
    assert listing.status == 200 and [s["id"] for s in (await listing.json())["items"]] == ["sat-1", "sat-2"]
    one, _ = await gw.timed("GET", "/api/satellites/sat-1")
    assert one.status == 200
    position, _ = await gw.timed("GET", "/api/satellites/sat-2/position")
    assert position.status == 200
    assert (await gw.client.get("/metrics")).status == 200
    assert (await gw.client.get("/healthz")).status == 200
    async with gw.client.get("/api/events?types=state", headers=gw.auth("viewer")) as stream:
        assert stream.status == 200
        await read_sse(stream, 1)  # connected
        gw.cluster.emit("state", "sat-1", {"from": "nominal", "to": "safe", "reason": "test"})
        [frame] = await read_sse(stream, 1, timeout=BOUND_S)
        assert frame["event"] == "state"
    ready = await gw.client.get("/readyz")
    error = await expect_error(ready, 503, "not_ready")
    assert error["details"]["database"] is False and error["details"]["cluster"] is True
    assert error["details"]["database_reason"] and "database" in error["message"]
    return timings


async def _used_before(gw: Gw) -> None:
    for role in ("viewer", "operator"):
        assert (await gw.client.get("/api/satellites", headers=gw.auth(role))).status == 200
    assert (await gw.client.get("/readyz")).status == 200
    await asyncio.sleep(0.6)  # past token_cache_s: the cached answers are stale, as in a long outage


async def _back(gw: Gw) -> None:
    await gw.until("/readyz", 200)
    stations = await gw.client.get("/api/ground-stations", headers=gw.auth("unseen"))
    assert stations.status == 200, await stations.text()
    accepted = await gw.client.post("/api/satellites/sat-1/commands", json={"kind": "noop"}, headers=gw.auth("operator"))
    assert accepted.status == 202


async def test_postgres_killed(gw: Gw, server: EmbeddedServer) -> None:
    await _used_before(gw)
    _kill(server)
    first, first_s = await gw.timed("GET", "/api/alarms")  # before anything noticed the outage
    await expect_error(first, 503, "database_unavailable")
    print(f"first request after kill -9: 503 after {first_s * 1000:.0f} ms")
    await gw.until("/readyz", 503)
    timings = await _outage_answers(gw)
    print("503 after kill -9:", ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in timings))
    assert max(s for _, s in timings) < 5.0  # generous (a loaded machine); the figure is printed
    server.revive()
    await _back(gw)


async def test_postgres_frozen_cuts_waiting_requests(gw: Gw, server: EmbeddedServer) -> None:
    """A server that stops answering (SIGSTOP) makes queries hang with no error at all: the
    gate's probe times out, and requests waiting on the database are cut with a 503."""
    await _used_before(gw)
    pids = _server_pids(server)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        start = time.perf_counter()
        hung = await gw.client.get("/api/alarms", headers=gw.auth("viewer"))
        waited_s = time.perf_counter() - start
        await expect_error(hung, 503, "database_unavailable")
        print(f"a request waiting on a frozen database was cut after {waited_s * 1000:.0f} ms")
        assert waited_s < BOUND_S
        timings = await _outage_answers(gw)
        print("503 while frozen:", ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in timings))
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    await _back(gw)


async def test_the_gate_reports_the_reason(gw: Gw, server: EmbeddedServer) -> None:
    assert gw.client.app is not None
    gate = gw.client.app[GATE]
    assert gate.up
    _kill(server)
    await gw.until("/readyz", 503)
    assert not gate.up and gate.reason.startswith("the database is unavailable: ") and gate.outages == 1
    server.revive()
    await gw.until("/readyz", 200)
    assert gate.up and gate.reason == ""
