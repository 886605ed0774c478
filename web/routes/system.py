"""Nodes, health, readiness and Prometheus metrics (alarms: routes/alarms.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from aiohttp import web

from py_nodes.db import Alarms, DbError
from py_nodes.db.history import active_alarm_counts, task_counts
from py_nodes.db.tasks import Tasks

from ..cluster import ClusterError
from ..errors import DatabaseDown, error_response
from ..keys import CLUSTER, DATABASE, METRICS
from ..metrics import CONTENT_TYPE, GatewayMetrics
from ..models import error_replies, items_of
from ..respond import json_response
from ..spec import GATE, RouteSpec

__all__ = ["ROUTES"]

log = logging.getLogger("stellarops.web")

BEAM_METRICS_TIMEOUT_S: Final = 2.0  # Prometheus' scrape timeout is 10 s by default

NODE: Final = {
    "type": "object",
    "required": ["name", "role", "status"],
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string", "description": "beam, sats, orbital, store, gateway..."},
        "status": {"type": "string", "description": "up, starting, or down (a BEAM peer discovered but not connected)"},
        "restarts": {"type": "integer"},
        "os_pid": {"type": ["integer", "null"]},
        "satellites": {"type": "integer"},
        "beam": {"type": "string", "description": "the BEAM node supervising a Python node"},
        "joins": {"type": "integer", "description": "a BEAM node: how often it joined the answering node's cluster"},
        "leaves": {"type": "integer", "description": "a BEAM node: how often it left (lost its connection)"},
    },
}
STATUS: Final = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "cluster": {"type": "boolean"}, "database": {"type": "boolean"}},
}


async def nodes(request: web.Request) -> web.StreamResponse:
    return json_response({"items": await request.app[CLUSTER].nodes()})


async def healthz(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """From what the gateway already knows (the cluster link, the database gate's probe): it
    answers at once, also while the database hangs."""
    cluster_ok = request.app[CLUSTER].joined
    gate = request.app[GATE]
    if cluster_ok and gate.up:
        return json_response({"status": "ready", "cluster": True, "database": True})
    details: dict[str, Any] = {"cluster": cluster_ok, "database": gate.up}
    reasons = [] if cluster_ok else ["cluster: the control node is not joined"]
    if not gate.up:
        details["database_reason"] = gate.reason
        reasons.append(gate.reason)
    return error_response(503, "not_ready", "not ready: " + "; ".join(reasons), details, {"Retry-After": "2"})


async def metrics(request: web.Request) -> web.StreamResponse:
    gauges = request.app[METRICS]
    if gauges.fleet_stale():
        await _refresh(request.app, gauges)
    return web.Response(body=gauges.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def _refresh(app: web.Application, gauges: GatewayMetrics) -> None:
    """Fleet, BEAM and database figures for /metrics, read side by side (a scrape waits for the
    slowest, not for the sum: a hung BEAM node costs one rpc timeout). What cannot be read now
    keeps its last value, but the BEAM node's own series are left out (stellar_beam_up 0)."""
    await asyncio.gather(
        _refresh_fleet(app, gauges), _refresh_store(app, gauges), _refresh_beam(app, gauges), _refresh_database(app, gauges)
    )


async def _refresh_fleet(app: web.Application, gauges: GatewayMetrics) -> None:
    try:
        gauges.set_fleet(await app[CLUSTER].sats())
    except ClusterError as exc:
        log.warning("metrics: no fleet figures: %s", exc)


async def _refresh_store(app: web.Application, gauges: GatewayMetrics) -> None:
    store_status = getattr(app[CLUSTER], "store_status", None)  # the real cluster only
    if store_status is not None:
        try:
            gauges.set_store(await store_status())
        except ClusterError as exc:
            log.warning("metrics: no telemetry figures: %s", exc)


async def _refresh_beam(app: web.Application, gauges: GatewayMetrics) -> None:
    beam_metrics = getattr(app[CLUSTER], "beam_metrics", None)  # the real cluster only
    if beam_metrics is not None:
        try:
            gauges.beam.set(await beam_metrics(BEAM_METRICS_TIMEOUT_S))
        except ClusterError as exc:
            log.warning("metrics: no BEAM figures: %s", exc)
            gauges.beam.set(None)


async def _refresh_database(app: web.Application, gauges: GatewayMetrics) -> None:
    gate = app[GATE]
    try:
        waiting, failed = await gate.run(task_counts(app[DATABASE]))
        gauges.set_tasks(waiting, failed)
        tasks = Tasks(app[DATABASE])
        by_cause, solve_ms = await gate.run(tasks.run_stats())
        gauges.set_plan(await gate.run(tasks.counts()), by_cause, solve_ms)
        gauges.set_alarms(await gate.run(active_alarm_counts(app[DATABASE])))
        gauges.set_alarm_states(await gate.run(Alarms(app[DATABASE]).counts()))
    except (DbError, DatabaseDown) as exc:  # no database: the last task and alarm figures stand
        log.warning("metrics: no task figures: %s", exc)
    gauges.set_database(gate.up)


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/nodes", nodes, "listNodes", "BEAM and Python nodes of the cluster", "cluster", "viewer",
        {200: ("nodes", items_of(NODE)), **error_replies(401, 403, 422, 503)},
    ),
    RouteSpec("GET", "/healthz", healthz, "healthz", "The process is up", "health", None, {200: ("up", STATUS)}),
    RouteSpec(
        "GET", "/readyz", readyz, "readyz", "Joined to the cluster and the database reachable", "health", None,
        {200: ("ready", STATUS), 503: ("not ready: details say what is missing", error_replies(503)[503][1])},
    ),
    RouteSpec(
        "GET", "/metrics", metrics, "metrics", "Prometheus metrics", "health", None,
        {200: ("text exposition format 0.0.4", {"type": "string"})}, media_type="text/plain",
    ),
]  # fmt: skip
