"""Slow SSE clients against the real gateway app over real TCP: 20 sockets with a small receive
buffer that never read are dropped within a bound (not after minutes of kernel buffering),
counted in ``stellar_sse_clients_dropped_total``, while a client that reads gets every event;
a dropped client resumes with ``Last-Event-ID`` and gets what it missed. The events come from
the fake cluster's bus at a steady rate (what is under test is the gateway's fan-out)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections.abc import AsyncIterator

import pytest
from web_support import FakeCluster, Harness, gateway, read_sse

from web import GatewayConfig
from web.keys import HUB

pytestmark = pytest.mark.slow

STUCK = 20
RATE_HZ = 20.0
PAYLOAD = {"blob": "x" * 2000}  # ~2 KB per event: 40 KB/s to each client
DROP_BOUND_S = 60.0  # before the fix they stayed for minutes (the queue of 2000 fills at 20/s)


@pytest.fixture
async def gw(db_conninfo: str) -> AsyncIterator[Harness]:
    config = GatewayConfig(port=0, sse_write_timeout_s=2.0)  # the other SSE settings as shipped
    async with gateway(db_conninfo, config, FakeCluster(buffer=10_000)) as harness:
        harness.cluster.add("sat-1")
        yield harness


def _stuck_socket(host: str, port: int, token: str) -> socket.socket:
    """A client that asks for the stream and then never reads (a tiny receive window)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the window
    sock.connect((host, port))
    request = f"GET /api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def _dropped(text: str) -> float:
    match = re.search(r"^stellar_sse_clients_dropped_total ([0-9.]+)$", text, re.M)
    assert match, text
    return float(match[1])


def _drain(sock: socket.socket, bound_s: float) -> bytes:
    """Everything the server sent until it closed the connection (EOF or reset)."""
    sock.settimeout(bound_s)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_clients_that_never_read_are_dropped_and_counted(gw: Harness) -> None:
    assert gw.client.server.host is not None and gw.client.server.port is not None
    host, port = gw.client.server.host, gw.client.server.port
    stuck = [_stuck_socket(host, port, gw.tokens["viewer"]) for _ in range(STUCK)]
    hub = gw.app[HUB]
    try:
        async with gw.client.get("/api/events", headers=gw.auth("viewer")) as reader:
            await read_sse(reader, 1)
            async with asyncio.timeout(30):
                while hub.clients < STUCK + 1:
                    await asyncio.sleep(0.05)
            received: list[int] = []

            async def read_all() -> None:
                while True:
                    for frame in await read_sse(reader, 1, timeout=60):
                        if frame.get("event") == "telemetry":
                            received.append(int(frame["id"]))

            reading = asyncio.create_task(read_all())
            start = time.monotonic()
            sent = 0
            while True:
                gw.cluster.emit("telemetry", "sat-1", PAYLOAD)
                sent += 1
                await asyncio.sleep(1 / RATE_HZ)
                if sent % 10 == 0:
                    metrics = await (await gw.client.get("/metrics")).text()
                    if _dropped(metrics) >= STUCK:
                        break
                assert time.monotonic() - start < DROP_BOUND_S, f"{_dropped(metrics)} of {STUCK} dropped"
            dropped_after_s = time.monotonic() - start
            print(f"{STUCK} clients that never read dropped {dropped_after_s:.1f} s after events started ({sent} events)")
            async with asyncio.timeout(30):
                while len(received) < sent:
                    await asyncio.sleep(0.05)
            reading.cancel()
            assert received == list(range(received[0], received[0] + sent))  # the reader lost nothing
            assert hub.clients == 1
            metrics = await (await gw.client.get("/metrics")).text()
            assert _dropped(metrics) == STUCK and "stellar_sse_clients 1.0" in metrics
    finally:
        data = [await asyncio.to_thread(_drain, s, 30.0) for s in stuck]
        for s in stuck:
            s.close()

    # Each was closed by the server (EOF/reset, not our timeout); each resumes from what it got.
    last_ids = [int(ids[-1]) for ids in (re.findall(rb"^id: (\d+)$", d, re.M) for d in data) if ids]
    assert last_ids, "no stuck client got any event before it was dropped"
    last = min(last_ids)
    async with gw.client.get("/api/events", headers={**gw.auth("viewer"), "Last-Event-ID": str(last)}) as resumed:
        frames = [f for f in await read_sse(resumed, 4, timeout=30) if f.get("event") == "telemetry"]
        assert [int(f["id"]) for f in frames] == [last + 1, last + 2, last + 3]
        assert json.loads(frames[0]["data"])["data"] == PAYLOAD
