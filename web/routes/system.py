"""Nodes, alarms (list, clear), health, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from aiohttp import web

from py_nodes.db import AlarmRecord, Alarms, DbError
from py_nodes.db.history import active_alarm_counts, task_counts
from py_nodes.db.tasks import Tasks

from ..cluster import ClusterError
from ..errors import DatabaseDown, error_response
from ..keys import CLUSTER, DATABASE, METRICS
from ..metrics import CONTENT_TYPE, GatewayMetrics
from ..models import SAT_ID, TIME, error_replies, iso, items_of
from ..respond import json_response
from ..spec import GATE, RouteSpec, params

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
ALARM: Final = {
    "type": "object",
    "required": ["id", "satellite_id", "kind", "severity", "message", "raised_at"],
    "properties": {
        "id": {"type": "integer"},
        "satellite_id": {"type": "string"},
        "kind": {"type": "string"},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "message": {"type": "string"},
        "raised_at": TIME,
        "cleared_at": {**TIME, "type": ["string", "null"]},
        "cleared_by": {"type": ["string", "null"], "description": "who cleared it (audit actor)"},
    },
}
ALARM_PATH: Final = {"alarm_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "description": "alarm id"}}
STATUS: Final = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "cluster": {"type": "boolean"}, "database": {"type": "boolean"}},
}


async def nodes(request: web.Request) -> web.StreamResponse:
    return json_response({"items": await request.app[CLUSTER].nodes()})


def _alarm_json(a: AlarmRecord) -> dict[str, Any]:
    return {
        "id": a.id, "satellite_id": a.satellite_id, "kind": a.kind, "severity": a.severity, "message": a.message,
        "raised_at": iso(a.raised_at), "cleared_at": iso(a.cleared_at), "cleared_by": a.cleared_by,
    }  # fmt: skip


async def alarms(request: web.Request) -> web.StreamResponse:
    sat_id = params(request).query.get("sat")
    active = await Alarms(request.app[DATABASE]).active(sat_id)
    return json_response({"items": [_alarm_json(a) for a in active]})


async def clear_alarm(request: web.Request) -> web.StreamResponse:
    """Clear (acknowledge) an alarm; idempotent. A clear that happens now is also published on
    BEAM's event bus so that every dashboard drops the alarm without polling."""
    p = params(request)
    assert p.principal is not None
    alarm, now = await Alarms(request.app[DATABASE]).clear(p.path["alarm_id"], actor=p.principal.actor)
    if now:
        data = {
            "alarm_id": alarm.id, "kind": alarm.kind, "severity": alarm.severity, "cleared": True,
            "cleared_by": alarm.cleared_by, "message": alarm.message,
        }  # fmt: skip
        try:
            await request.app[CLUSTER].publish("alarm", alarm.satellite_id, data)
        except ClusterError as exc:  # the clear is in the database: it stands; clients see it on refetch
            log.warning("alarm %d cleared but its event was not published: %s", alarm.id, exc)
    return json_response(_alarm_json(alarm))


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
    except (DbError, DatabaseDown) as exc:  # no database: the last task and alarm figures stand
        log.warning("metrics: no task figures: %s", exc)
    gauges.set_database(gate.up)


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/nodes", nodes, "listNodes", "BEAM and Python nodes of the cluster", "cluster", "viewer",
        {200: ("nodes", items_of(NODE)), **error_replies(401, 403, 422, 503)},
    ),
    RouteSpec(
        "GET", "/api/alarms", alarms, "listAlarms", "Active alarms, most severe first", "cluster", "viewer",
        {200: ("alarms", items_of(ALARM)), **error_replies(401, 403, 422, 503)}, query={"sat": SAT_ID}, database="here",
        description="Alarms change as `alarm` events on GET /api/events: a satellite raising one (data: alarm, "
        "severity, message) or an operator clearing one (data: alarm_id, kind, severity, cleared: true, "
        "cleared_by, message). Clients refetch this list on either.",
    ),
    RouteSpec(
        "POST", "/api/alarms/{alarm_id}/clear", clear_alarm, "clearAlarm", "Clear (acknowledge) an alarm", "cluster",
        "operator", {200: ("the alarm, cleared (now or before)", ALARM), **error_replies(401, 403, 404, 422, 503)},
        path_params=ALARM_PATH, database="here",
        description="Idempotent: clearing a cleared alarm answers it unchanged (its cleared_at and cleared_by tell "
        "when and by whom). A clear made now is audited and sent to every event stream as an `alarm` event with "
        "data {alarm_id, kind, severity, cleared: true, cleared_by, message}; clients refetch GET /api/alarms.",
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
