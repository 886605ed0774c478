"""/api/tasks and /api/plan: mission tasks, the current plan with reasons, re-plans, what-if;
and PATCH /api/ground-stations/{station_id} (take a station down or up: a re-plan follows).

Tasks are written to PostgreSQL (``py_nodes.db.tasks``); the scheduler node holding the lease
plans and executes them. Bad input is a 422 naming the field (an unknown satellite, station or
dependency too) and stores nothing. A what-if plans in this gateway, from the same live state,
and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from py_nodes import vocabulary
from py_nodes.db import NotFound as DbNotFound
from py_nodes.db import Stations
from py_nodes.db import ValidationError as DbValidationError
from py_nodes.db.tasks import PlanRun, Task, Tasks, TaskSpec
from py_nodes.tasking.problem import LiveSat, ProblemBuilder
from py_nodes.tasking.service import plan_once

from ..errors import Conflict, NotFound, ValidationFailed
from ..keys import CLUSTER, CONFIG, DATABASE
from ..models import MODE, SAT_ID, STATION_ID, TIME, error_replies, iso, items_of
from ..respond import json_response
from ..schema import parse_datetime
from ..spec import RouteSpec, params
from .stations import ANTENNAS, DOWN_WINDOWS, DOWN_WINDOWS_OUT, down_windows, station_json

__all__ = ["ROUTES"]

TIME_IN: Final = {**TIME, "pattern": "^(19|20)[0-9]{2}-"}
TASK_ID_PATH: Final = {"task_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "description": "task id"}}
STATION_PATH: Final = {"station_id": STATION_ID}
COMMON: Final = {
    "satellite_id": {**SAT_ID, "description": "left out: any satellite that can"},
    "priority": {"type": "integer", "minimum": 0, "maximum": 100, "default": 50},
    "earliest_start": {**TIME_IN, "description": "default: now"},
    "deadline": {**TIME_IN, "description": "after now and after earliest_start + duration_s; default: 24 h after the start"},
    "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400, "default": 60},
    "energy_pct": {"type": "number", "minimum": 0, "maximum": 100, "default": 0, "description": "battery the task uses"},
    "memory_mb": {"type": "number", "minimum": 0, "maximum": 1e12, "default": 0,
                  "description": "imaging: produced; downlink: freed (0: what depends_on produced)"},
    "depends_on": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "description": "a task that must end first"},
    "max_retries": {"type": "integer", "minimum": 0, "maximum": 100, "default": 3},
}  # fmt: skip
NO_ARGS: Final = {"type": "object", "additionalProperties": False, "properties": {}, "description": "none: {} or left out"}
ARGS_BY_KIND: Final[dict[str, Any]] = {
    "imaging": {
        "type": "object", "required": ["target_lat_deg", "target_lon_deg"], "additionalProperties": False,
        "properties": {
            "target_lat_deg": {"type": "number", "minimum": -90, "maximum": 90},
            "target_lon_deg": {"type": "number", "minimum": -180, "maximum": 180},
            "min_el_deg": {"type": "number", "minimum": 0, "exclusiveMaximum": 90, "default": 10},
            "sunlit": {"type": "boolean", "default": False, "description": "only while the satellite is sunlit"},
        },
    },
    "downlink": NO_ARGS,
    "maintenance": {"type": "object", "additionalProperties": False, "properties": {"mode": {**MODE, "default": "maintenance"}}},
    "command": {
        "oneOf": [
            {"type": "object", "required": ["command", "mode"], "additionalProperties": False,
             "properties": {"command": {"type": "string", "enum": ["set_mode"]}, "mode": MODE}},
            {"type": "object", "required": ["command"], "additionalProperties": False,
             "properties": {"command": {"type": "string", "enum": [k for k in vocabulary.COMMAND_KINDS if k not in ("set_mode", "set_tle")]}}},
        ],
        "discriminator": {"propertyName": "command"},
        "description": "the ledger command it sends: {command} (set_mode also takes mode)",
    },
}  # fmt: skip


def _variant(kind: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"kind": {"type": "string", "enum": [kind]}, **COMMON, "args": ARGS_BY_KIND[kind]}
    if kind == "downlink":
        properties["ground_station_id"] = {**STATION_ID, "description": "left out: any station"}
    required = ["kind", "args"] if kind in ("imaging", "command") else ["kind"]
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


TASK_BODY: Final = {
    "oneOf": [_variant(kind) for kind in vocabulary.TASK_KINDS],
    "discriminator": {"propertyName": "kind"},
    "description": "args per kind; ground_station_id for a downlink only",
}
PLACEMENT: Final = {
    "type": ["object", "null"],
    "properties": {
        "satellite_id": {"type": "string"}, "station_id": {"type": ["string", "null"]}, "start": TIME, "end": TIME,
        "attempt": {"type": "integer"}, "plan_run_id": {"type": "integer"},
    },
}  # fmt: skip
TASK: Final = {
    "type": "object",
    "required": ["id", "kind", "status", "priority", "attempts", "placement"],
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": list(vocabulary.TASK_KINDS)},
        "status": {"type": "string", "enum": list(vocabulary.TASK_STATES)},
        "satellite_id": {"type": ["string", "null"]},
        "ground_station_id": {"type": ["string", "null"]},
        "args": {"type": "object"},
        "priority": {"type": "integer"},
        "earliest_start": {"type": ["string", "null"], "format": "date-time"},
        "deadline": {"type": ["string", "null"], "format": "date-time"},
        "duration_s": {"type": "number"},
        "energy_pct": {"type": "number"},
        "memory_mb": {"type": "number"},
        "depends_on": {"type": ["integer", "null"]},
        "attempts": {"type": "integer"},
        "max_retries": {"type": "integer"},
        "reason": {"type": ["string", "null"], "enum": [*vocabulary.TASK_REASONS, None],
                   "description": "why it is not placed, or why it failed or was cancelled"},
        "reason_detail": {"type": "string"},
        "placement": PLACEMENT,
        "submitted_by": {"type": "string"},
        "created_at": TIME,
        "updated_at": TIME,
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "steps": {"type": "array", "items": {"type": "object"}, "description": "its ledger commands (GET /api/tasks/{id} only)"},
    },
}  # fmt: skip
RUN: Final = {
    "type": ["object", "null"],
    "properties": {
        "id": {"type": "integer"}, "at": TIME, "cause": {"type": "string", "enum": list(vocabulary.PLAN_CAUSES)},
        "detail": {"type": "string"}, "holder": {"type": "string"}, "solve_ms": {"type": "number"},
        "placed": {"type": "integer"}, "unplaced": {"type": "integer"}, "moved": {"type": "integer"},
        "value": {"type": "number"}, "horizon_start": TIME, "horizon_end": TIME,
    },
}  # fmt: skip
UNPLACED: Final = {
    "type": "object",
    "required": ["task_id", "reason", "detail"],
    "properties": {
        "task_id": {"type": "integer"},
        "reason": {"type": "string", "enum": list(vocabulary.TASK_REASONS)},
        "detail": {"type": "string"},
    },
}
PLAN: Final = {
    "type": "object",
    "required": ["run", "placements", "unplaced", "runs"],
    "properties": {
        "run": RUN,
        "placements": {"type": "array", "items": {"type": "object"}, "description": "placed tasks by start"},
        "unplaced": {"type": "array", "items": UNPLACED},
        "runs": {"type": "array", "items": RUN, "description": "the newest plan runs, newest first"},
        "changes": {
            "type": "array", "description": "what the newest run changed, and why",
            "items": {"type": "object", "properties": {
                "task_id": {"type": "integer"}, "change": {"type": "string", "enum": ["added", "moved", "removed"]},
                "detail": {"type": "string"},
            }},
        },
    },
}  # fmt: skip
REPLAN_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"detail": {"type": "string", "maxLength": 200, "pattern": "^[^\\x00]*$"}},
}
REPLANNED: Final = {"type": "object", "required": ["request_id"], "properties": {"request_id": {"type": "integer"}}}
WHAT_IF_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "add": {"type": "array", "items": TASK_BODY, "maxItems": 100, "description": "tasks to plan as if submitted"},
        "cancel": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 1000},
        "stations_down": {"type": "array", "items": STATION_ID, "maxItems": 100},
        "horizon_s": {"type": "number", "minimum": 600, "maximum": 604800, "description": "default: the scheduler's"},
    },
}
WHAT_IF: Final = {
    "type": "object",
    "required": ["placements", "unplaced", "value", "solve_ms"],
    "properties": {
        "placements": {"type": "array", "items": {"type": "object"}},
        "unplaced": {"type": "array", "items": {"type": "object"}},
        "value": {"type": "number"},
        "solve_ms": {"type": "number"},
    },
}
STATION_PATCH: Final = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "active": {"type": "boolean", "description": "false: taken down (its downlinks are re-planned)"},
        "antennas": ANTENNAS,
        "unavailable": {**DOWN_WINDOWS, "description": f"replaces the station's down windows; {DOWN_WINDOWS['description']}"},
    },
}  # fmt: skip
STATION_CHANGED: Final = {
    "type": "object",
    "required": ["id", "active", "antennas", "unavailable", "changed"],
    "properties": {
        "id": {"type": "string"}, "active": {"type": "boolean"}, "changed": {"type": "boolean"},
        "antennas": {"type": "integer"}, "unavailable": DOWN_WINDOWS_OUT,
        "request_id": {"type": ["integer", "null"], "description": "the re-plan it asked for"},
    },
}  # fmt: skip


def task_json(t: Task, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    placement = None if t.planned_start is None else {
        "satellite_id": t.planned_satellite_id, "station_id": t.planned_station_id, "start": iso(t.planned_start),
        "end": iso(t.planned_end), "attempt": t.planned_attempt, "plan_run_id": t.plan_run_id,
    }  # fmt: skip
    body = {
        "id": t.id, "kind": t.kind, "status": t.status, "satellite_id": t.satellite_id,
        "ground_station_id": t.ground_station_id, "args": t.args, "priority": t.priority,
        "earliest_start": iso(t.earliest_start), "deadline": iso(t.deadline), "duration_s": t.duration_s,
        "energy_pct": t.energy_pct, "memory_mb": t.memory_mb, "depends_on": t.depends_on, "attempts": t.attempts,
        "max_retries": t.max_retries, "reason": t.reason, "reason_detail": t.reason_detail, "placement": placement,
        "submitted_by": t.submitted_by, "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
        "started_at": iso(t.started_at), "finished_at": iso(t.finished_at),
    }  # fmt: skip
    if steps is not None:
        body["steps"] = [{k: iso(v) if isinstance(v, datetime) else v for k, v in s.items()} for s in steps]
    return body


def run_json(r: PlanRun | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "id": r.id, "at": iso(r.at), "cause": r.cause, "detail": r.detail, "holder": r.holder, "solve_ms": r.solve_ms,
        "placed": r.placed, "unplaced": r.unplaced, "moved": r.moved, "value": r.value,
        "horizon_start": iso(r.horizon_start), "horizon_end": iso(r.horizon_end),
    }  # fmt: skip


def spec_from_body(body: dict[str, Any], prefix: str = "") -> TaskSpec:
    """The body (already checked against TASK_BODY) as a TaskSpec; times parsed."""
    fields = dict(body)
    for name in ("earliest_start", "deadline"):
        if name in fields:
            fields[name] = parse_datetime(fields[name], prefix + name)
    return TaskSpec(**fields)


async def _create(tasks: Tasks, spec: TaskSpec, actor: str, prefix: str = "") -> Task:
    """Create, with an unknown satellite/station/dependency a 422 on its field (not a 404):
    it is a field of the body that is wrong."""
    try:
        return await tasks.create(spec, actor=actor)
    except DbNotFound as exc:
        raise ValidationFailed(prefix + exc.field, exc.problem) from None
    except DbValidationError as exc:
        raise ValidationFailed(prefix + exc.field, exc.problem) from None


async def create_task(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    task = await _create(Tasks(request.app[DATABASE]), spec_from_body(p.body), p.principal.actor)
    return json_response(task_json(task), status=201, headers={"Location": f"/api/tasks/{task.id}"})


async def list_tasks(request: web.Request) -> web.StreamResponse:
    q = params(request).query
    found = await Tasks(request.app[DATABASE]).list_tasks(status=q.get("status"), limit=q.get("limit", 200))
    return json_response({"items": [task_json(t) for t in found]})


async def get_task(request: web.Request) -> web.StreamResponse:
    task_id = params(request).path["task_id"]
    tasks = Tasks(request.app[DATABASE])
    task = await tasks.get(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}", details={"field": "task_id"})
    return json_response(task_json(task, await tasks.ledger_steps(task_id)))


async def cancel_task(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    try:
        task, changed = await Tasks(request.app[DATABASE]).cancel(p.path["task_id"], actor=p.principal.actor)
    except DbNotFound:
        raise NotFound(f"no task {p.path['task_id']}", details={"field": "task_id"}) from None
    if not changed:
        raise Conflict(f"task {task.id} is already {task.status}", details={"status": task.status})
    return json_response(task_json(task))


async def get_plan(request: web.Request) -> web.StreamResponse:
    tasks = Tasks(request.app[DATABASE])
    runs = await tasks.runs(limit=10)
    open_tasks = await tasks.open_tasks()
    placed = sorted((t for t in open_tasks if t.planned_start is not None), key=lambda t: (t.planned_start, t.id))
    body = {
        "run": run_json(runs[0] if runs else None),
        "placements": [
            {"task_id": t.id, "kind": t.kind, "status": t.status, **(task_json(t)["placement"] or {})} for t in placed
        ],
        "unplaced": [
            {"task_id": t.id, "reason": t.reason, "detail": t.reason_detail}
            for t in open_tasks
            if t.status == "pending" and t.reason is not None
        ],
        "runs": [run_json(r) for r in runs],
        "changes": await tasks.run_changes(runs[0].id) if runs else [],
    }
    return json_response(body)


async def replan(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    detail = (p.body or {}).get("detail", "") or f"asked by {p.principal.actor}"
    request_id = await Tasks(request.app[DATABASE]).request_replan("manual", detail, actor=p.principal.actor)
    return json_response({"request_id": request_id}, status=202)


async def what_if(request: web.Request) -> web.StreamResponse:
    p = params(request)
    body = p.body or {}
    db = request.app[DATABASE]
    tasks = Tasks(db)
    open_tasks = await tasks.open_tasks()
    cancel = set(body.get("cancel", []))
    known = {t.id for t in open_tasks}
    for i, task_id in enumerate(body.get("cancel", [])):
        if task_id not in known:
            raise ValidationFailed(f"cancel[{i}]", f"no open task {task_id}")
    now = datetime.now(UTC)
    stations = await Stations(db).list_all()
    by_station = {s.id: s for s in stations}
    for i, station_id in enumerate(body.get("stations_down", [])):
        if station_id not in by_station:
            raise ValidationFailed(f"stations_down[{i}]", f"no ground station {station_id!r}")
        by_station[station_id] = replace(by_station[station_id], active=False)
    sats = [_live(s) for s in await request.app[CLUSTER].sats()]
    sat_ids = {s.sat_id for s in sats}
    candidates = [t for t in open_tasks if t.id not in cancel]
    next_id = max([t.id for t in open_tasks] + [0]) + 10**12  # ids no stored task has
    for i, raw in enumerate(body.get("add", [])):
        prefix = f"add[{i}]."
        try:
            spec = spec_from_body(raw, prefix).checked(now)
        except DbValidationError as exc:
            raise ValidationFailed(prefix + exc.field, exc.problem) from None
        if spec.satellite_id is not None and spec.satellite_id not in sat_ids:
            raise ValidationFailed(prefix + "satellite_id", f"no satellite {spec.satellite_id!r}")
        if spec.ground_station_id is not None and spec.ground_station_id not in by_station:
            raise ValidationFailed(prefix + "ground_station_id", f"no ground station {spec.ground_station_id!r}")
        candidates.append(_hypothetical(next_id + i, spec, now))
    defaults = request.app[CONFIG].scheduler
    builder = ProblemBuilder(horizon_s=body.get("horizon_s", defaults.horizon_s), freeze_s=defaults.freeze_s, setup_gap_s=defaults.setup_gap_s)
    outcome = await plan_once(builder, candidates, sats, list(by_station.values()), budget_s=defaults.budget_s, cause="manual", now=now)
    plan = outcome.plan
    result = {
        "placements": [
            {"task_id": int(x.task_id), "hypothetical": int(x.task_id) >= next_id, "satellite_id": x.sat_id,
             "station_id": x.station_id, "start": iso(x.start_utc), "end": iso(x.end_utc)}
            for x in plan.placements
        ],
        "unplaced": [
            {"task_id": int(u.task_id), "hypothetical": int(u.task_id) >= next_id, "reason": u.reason, "detail": u.detail}
            for u in plan.unplaced
        ],
        "value": plan.value,
        "solve_ms": plan.solve_ms,
    }  # fmt: skip
    return json_response(result)


def _live(raw: dict[str, Any]) -> LiveSat:
    tle = raw.get("tle")
    pair = (tle["line1"], tle["line2"]) if isinstance(tle, dict) else None
    return LiveSat(
        str(raw["id"]), str(raw.get("mode")), float(raw.get("energy_pct") or 0.0), float(raw.get("memory_used_mb") or 0.0),
        float(raw.get("memory_capacity_mb") or 1.0), pair, raw.get("status") == "running",
    )  # fmt: skip


def _hypothetical(task_id: int, spec: TaskSpec, now: datetime) -> Task:
    return Task(
        id=task_id, kind=spec.kind, satellite_id=spec.satellite_id, ground_station_id=spec.ground_station_id,
        args=spec.args, priority=spec.priority, earliest_start=spec.earliest_start, deadline=spec.deadline,
        duration_s=spec.duration_s, energy_pct=spec.energy_pct, memory_mb=spec.memory_mb, depends_on=spec.depends_on,
        status="pending", attempts=0, max_retries=spec.max_retries, reason=None, reason_detail="", retry_after=None,
        result=None, submitted_by="what-if", created_at=now, updated_at=now, started_at=None, finished_at=None,
        planned_satellite_id=None, planned_station_id=None, planned_start=None, planned_end=None,
        planned_attempt=None, plan_run_id=None,
    )  # fmt: skip


async def patch_station(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    station_id = p.path["station_id"]
    changes = dict(p.body)
    if "unavailable" in changes:
        changes["unavailable"] = down_windows(changes["unavailable"])
    try:
        station, changed, request_id = await Tasks(request.app[DATABASE]).change_station(station_id, changes, actor=p.principal.actor)
    except DbNotFound:
        raise NotFound(f"no ground station {station_id!r}", details={"field": "station_id"}) from None
    out = station_json(station)
    return json_response({
        "id": station_id, "active": station.active, "antennas": station.antennas, "unavailable": out["unavailable"],
        "changed": changed, "request_id": request_id,
    })  # fmt: skip


ROUTES: Final = [
    RouteSpec(
        "POST", "/api/tasks", create_task, "createTask", "Submit a mission task", "tasks", "operator",
        {201: ("stored as pending; the scheduler plans it", TASK), **error_replies(400, 401, 403, 413, 415, 422, 503)},
        body=TASK_BODY, database="here",
        description="Between fields (422 naming the field, nothing stored): `deadline` after now and after "
        "`earliest_start` (default now); `earliest_start` at most 7 days ahead; `duration_s` fits between "
        "max(`earliest_start`, now) and `deadline`; `satellite_id`, `ground_station_id` and `depends_on` name a "
        "stored satellite, station and task (`depends_on` not failed or cancelled). Integers are JSON integers "
        "(`1`, not `1.0`). State changes arrive as `task` events.",
    ),
    RouteSpec(
        "GET", "/api/tasks", list_tasks, "listTasks", "Mission tasks, newest first", "tasks", "viewer",
        {200: ("tasks", items_of(TASK)), **error_replies(401, 403, 422, 503)},
        query={"status": {"type": "string", "enum": list(vocabulary.TASK_STATES)},
               "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200}},
        database="here",
    ),
    RouteSpec(
        "GET", "/api/tasks/{task_id}", get_task, "getTask", "A task, its placement and its ledger commands", "tasks",
        "viewer", {200: ("the task", TASK), **error_replies(401, 403, 404, 422, 503)}, path_params=TASK_ID_PATH,
        database="here",
    ),
    RouteSpec(
        "POST", "/api/tasks/{task_id}/cancel", cancel_task, "cancelTask", "Cancel a task", "tasks", "operator",
        {200: ("cancelled (a running one is stopped by the scheduler)", TASK), **error_replies(401, 403, 404, 409, 422, 503)},
        path_params=TASK_ID_PATH, database="here", description="409 when the task is already done, failed or cancelled.",
    ),
    RouteSpec(
        "GET", "/api/plan", get_plan, "getPlan", "The current plan: placements, unplaced tasks with reasons, runs",
        "tasks", "viewer", {200: ("the plan", PLAN), **error_replies(401, 403, 503)}, database="here",
    ),
    RouteSpec(
        "POST", "/api/plan/replan", replan, "replan", "Re-plan now", "tasks", "operator",
        {202: ("asked: the scheduler holding the lease re-plans at its next tick (a `plan` event; GET /api/plan)",
               REPLANNED), **error_replies(400, 401, 403, 413, 415, 422, 503)},
        body=REPLAN_BODY, database="here",
    ),
    RouteSpec(
        "POST", "/api/plan/what-if", what_if, "whatIf", "Plan with changes, without applying them", "tasks", "viewer",
        {200: ("the plan it would be", WHAT_IF), **error_replies(400, 401, 403, 413, 415, 422, 503)},
        body=WHAT_IF_BODY, database="here",
        description="Tasks in `add` are checked as by POST /api/tasks (422 on `add[i].field`); `cancel` names open "
        "tasks, `stations_down` stations (422 on `cancel[i]` / `stations_down[i]` otherwise). Integers are JSON "
        "integers (`1`, not `1.0`). Nothing is stored.",
    ),
    RouteSpec(
        "PATCH", "/api/ground-stations/{station_id}", patch_station, "setGroundStationActive",
        "Take a ground station down or bring it back, set its antennas or down windows", "ground stations", "operator",
        {200: ("the station's availability; a change asks for a re-plan", STATION_CHANGED),
         **error_replies(400, 401, 403, 404, 413, 415, 422, 503)},
        path_params=STATION_PATH, body=STATION_PATCH, database="here",
        description="A change asks for a re-plan: cause `station_down` when the station lost capacity (taken "
        "down, fewer antennas, new down time), else `station_up`. Bad values: 422 naming the field "
        "(`antennas`, `unavailable[i].from`/`.to`), nothing stored.",
    ),
]  # fmt: skip
