"""The app factory: routes, middlewares and the resources they share.

``create_app(cluster, db, config)`` builds the aiohttp application. Its cleanup contexts keep
the database connected (retrying in the background while PostgreSQL is away), watch it
(``DatabaseGate``: while it is away, requests that need it answer 503 at once) and run the
cluster's event stream into the SSE hub. At shutdown every event stream is ended first
(``on_shutdown``), so a stop never waits for clients that would stay connected forever.

One middleware, ``observe.Front`` (request id, CORS preflight when configured, every failure as
the JSON error shape, metrics, access log); each route's handler is its ``spec.Route`` (auth,
then validation from the route's spec; cluster and database refusals as HTTP errors), composed
once here rather than as a stack of middlewares (a coroutine layer each, per request). Events from the cluster go to the SSE hub
and to the satellites' read model (``mirror``). The built dashboard is served at ``/``
(``static``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Final

from aiohttp import web

from py_nodes.db import ApiTokens, Database, DatabaseUnavailable

from . import observe, openapi, static
from .accesslog import AccessLog
from .auth import Authenticator
from .cluster import Cluster, Event
from .config import GatewayConfig
from .cors import Cors
from .dbgate import DatabaseGate
from .keys import ACCESS_LOG, CLUSTER, CONFIG, DATABASE, HUB, METRICS, MIRROR
from .metrics import DistCollector, GatewayMetrics
from .mirror import SatMirror
from .routes import ROUTES
from .spec import AUTHENTICATOR, GATE, add_routes
from .sse import EventHub

__all__ = ["create_app"]

log = logging.getLogger("stellarops.web")

DB_RETRY_INITIAL_S: Final = 0.5
DB_RETRY_MAX_S: Final = 10.0


def create_app(
    cluster: Cluster,
    db: Database,
    config: GatewayConfig | None = None,
    *,
    manage_db: bool = True,
    dist_connections: Callable[[], Iterable[tuple[str, int, int]]] | None = None,
) -> web.Application:
    """The gateway app. With ``manage_db`` the app connects ``db`` and closes it at cleanup;
    ``dist_connections`` (peer, messages in, messages out) feeds the distribution metrics."""
    config = config or GatewayConfig()
    metrics = GatewayMetrics()
    if dist_connections is not None:
        metrics.add_collector(DistCollector(dist_connections))
    cors = Cors(config.cors_origins) if config.cors_origins else None
    access_log = AccessLog(config.access_log, private_dir=config.log_dir)
    front = observe.Front(metrics, access_log, cors)
    app = web.Application(middlewares=[front.middleware], client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[CLUSTER] = cluster
    app[DATABASE] = db
    app[METRICS] = metrics
    app[HUB] = EventHub(metrics, queue_size=config.sse_queue_events)
    app[MIRROR] = SatMirror(snapshot_max_s=config.sat_cache_s)
    app[ACCESS_LOG] = access_log
    gate = app[GATE] = DatabaseGate(db)
    app[AUTHENTICATOR] = Authenticator(
        ApiTokens(db), gate, cache_s=config.token_cache_s, anonymous_role=config.anonymous_role
    )
    add_routes(app, ROUTES)
    openapi.install(app)
    static.install(app)  # the dashboard's files: routes without a spec, not in the document
    if cors is not None:
        app.on_response_prepare.append(cors.on_prepare)
    if manage_db:
        app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_database_gate)
    app.on_shutdown.append(_end_streams)
    app.cleanup_ctx.append(_event_stream)
    app.cleanup_ctx.append(_access_log)
    return app


class _Receiver:
    """Where the cluster's events go: the read model first, then the SSE clients."""

    def __init__(self, hub: EventHub, mirror: SatMirror) -> None:
        self._hub = hub
        self._mirror = mirror

    def set_head(self, head_id: int) -> None:
        self._hub.set_head(head_id)

    def publish(self, event: Event) -> None:
        self._mirror.apply(event)
        self._hub.publish(event)

    def reset(self, reason: str, head_id: int) -> None:
        self._hub.reset(reason, head_id)


async def _connect(db: Database) -> None:
    delay_s = DB_RETRY_INITIAL_S
    while True:
        try:
            await db.connect()
            return
        except DatabaseUnavailable as exc:
            log.warning("gateway: %s; retrying in %.1f s", exc, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, DB_RETRY_MAX_S)


async def _database(app: web.Application) -> AsyncIterator[None]:
    db = app[DATABASE]
    task = asyncio.get_running_loop().create_task(_connect(db))
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 5.0)  # usually connected before serving
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await db.close()


async def _database_gate(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(app[GATE].watch())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _end_streams(app: web.Application) -> None:
    """Before the server waits for handlers to finish: end every event stream (clients resume
    with Last-Event-ID from another gateway, or this one when it is back)."""
    app[HUB].close_all()


async def _event_stream(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(app[CLUSTER].run_events(_Receiver(app[HUB], app[MIRROR])))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _access_log(app: web.Application) -> AsyncIterator[None]:
    access_log = app[ACCESS_LOG]
    task = asyncio.get_running_loop().create_task(access_log.run()) if access_log.enabled else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
