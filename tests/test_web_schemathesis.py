"""Schemathesis against the gateway's own OpenAPI document: generated requests (valid and
invalid) to every operation never get a 500, every answer matches the document (status codes,
content types, response schemas), what the schema allows is accepted and what it refuses is
refused (see ``web_support.fuzz_operation``). The app runs over a fake cluster and a real database,
in a thread of its own; the event stream is left out (it never ends; tests/test_web_sse.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from db_fixtures import PgCluster
from web_support import DEMO_TLE, FakeCluster, fuzz_operation

from py_nodes.db import ApiTokens, Database
from web import GatewayConfig, build_document, create_app
from web.routes import ROUTES

pytestmark = pytest.mark.property


class LiveGateway:
    """The app on a free port, served by an event loop in a thread."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.token = ""

    def start(self) -> LiveGateway:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        cluster = FakeCluster()
        cluster.add("sat-1")
        cluster.add("sat-2", tle=DEMO_TLE)
        db = Database(self.conninfo, max_size=4)
        self.runner = web.AppRunner(create_app(cluster, db, GatewayConfig(port=0)), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        _, self.token = await ApiTokens(db).create("admin", "schemathesis", actor="test")

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def live_gateway(pg_cluster: PgCluster) -> Iterator[LiveGateway]:
    name = pg_cluster.create_database(pg_cluster.template)
    gateway = LiveGateway(pg_cluster.conninfo(name)).start()
    try:
        yield gateway
    finally:
        gateway.stop()
        pg_cluster.drop_database(name)


DOCUMENT = json.loads(json.dumps(build_document(ROUTES)))
OPERATIONS = [
    (path, method.upper())
    for path, operations in DOCUMENT["paths"].items()
    for method in operations
    if path != "/api/events"  # a stream never ends; its errors are in tests/test_web_sse.py
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_request_gets_a_server_error(path: str, method: str, live_gateway: LiveGateway) -> None:
    fuzz_operation(DOCUMENT, path, method, live_gateway.url, live_gateway.token, examples=60)
