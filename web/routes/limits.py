"""Limits: list them, set or remove the fleet's or one satellite's limit on a parameter.

The store node reloads the table every second and judges the next telemetry samples by it
(py_nodes/roles/alarming.py); it is in PostgreSQL, so a restart keeps it. Edits are audited.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from py_nodes.db.limits import LimitRecord, Limits
from py_nodes.limits import MAX_PERSISTENCE, Limit
from py_nodes.vocabulary import LIMIT_PARAMETERS

from ..keys import DATABASE
from ..models import NUMBER_OR_NULL, SAT_ID, TIME, error_replies, iso, items_of
from ..respond import json_response
from ..spec import RouteSpec, params

__all__ = ["ROUTES"]

_BOUNDS: Final = ("warning_low", "warning_high", "critical_low", "critical_high")
PARAMETER: Final = {"type": "string", "enum": list(LIMIT_PARAMETERS), "description": "what the limit watches"}
LIMIT: Final = {
    "type": "object",
    "required": ["parameter", "satellite_id", *_BOUNDS, "hysteresis", "persistence", "latched", "updated_at", "updated_by"],
    "properties": {
        "parameter": PARAMETER,
        "satellite_id": {"type": ["string", "null"], "description": "null: fleet-wide"},
        **{name: NUMBER_OR_NULL for name in _BOUNDS},
        "hysteresis": {"type": "number"},
        "persistence": {"type": "integer"},
        "latched": {"type": "boolean"},
        "updated_at": TIME,
        "updated_by": {"type": "string"},
    },
}
LIMIT_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{name: {**NUMBER_OR_NULL, "description": "null or left out: no bound"} for name in _BOUNDS},
        "hysteresis": {"type": "number", "minimum": 0, "description": "in the parameter's unit (default 0)"},
        "persistence": {"type": "integer", "minimum": 1, "maximum": MAX_PERSISTENCE,
                        "description": "samples in a row out of limits before raising (default 1)"},
        "latched": {"type": "boolean", "description": "a returned alarm waits for its acknowledgement (default false)"},
    },
}  # fmt: skip
FLEET_PATH: Final = {"parameter": PARAMETER}
SAT_PATH: Final = {"sat_id": SAT_ID, "parameter": PARAMETER}


def limit_json(r: LimitRecord) -> dict[str, Any]:
    return {
        "parameter": r.parameter, "satellite_id": r.satellite_id, "warning_low": r.warning_low,
        "warning_high": r.warning_high, "critical_low": r.critical_low, "critical_high": r.critical_high,
        "hysteresis": r.hysteresis, "persistence": r.persistence, "latched": r.latched,
        "updated_at": iso(r.updated_at), "updated_by": r.updated_by,
    }  # fmt: skip


async def list_limits(request: web.Request) -> web.StreamResponse:
    sat_id = params(request).query.get("sat")
    records = await Limits(request.app[DATABASE]).all()
    if sat_id is not None:  # those that apply to it: its own, else the fleet's
        own = {r.parameter for r in records if r.satellite_id == sat_id}
        records = [r for r in records if r.satellite_id == sat_id or (r.satellite_id is None and r.parameter not in own)]
    return json_response({"items": [limit_json(r) for r in records]})


async def put_limit(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    body = p.body
    limit = Limit(
        p.path["parameter"], body.get("warning_low"), body.get("warning_high"), body.get("critical_low"),
        body.get("critical_high"), body.get("hysteresis", 0.0), body.get("persistence", 1), body.get("latched", False),
    )  # fmt: skip
    record, created = await Limits(request.app[DATABASE]).put(limit, satellite_id=p.path.get("sat_id"), actor=p.principal.actor)
    return json_response(limit_json(record), status=201 if created else 200)


async def delete_limit(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    await Limits(request.app[DATABASE]).delete(p.path["parameter"], satellite_id=p.path.get("sat_id"), actor=p.principal.actor)
    return web.Response(status=204)


_PUT_DOC: Final = (
    "A value is within a range when low <= value < high (a null bound is open); the critical range must hold the "
    "warning one. Alarms: PARAMETER_low / PARAMETER_high (low_energy and memory_full for the seeded energy_pct and "
    "memory_used_pct limits). Judged on the next telemetry samples (the store node reloads limits every second). "
    "Bad values (no bound at all, low >= high, critical inside warning, hysteresis not smaller than a range, persistence < 1): 422 "
    "naming the field, nothing changed. Audited (limit.update, old and new). 201 when created, 200 when replaced."
)
_PUT_REPLIES: Final = {
    200: ("replaced", LIMIT), 201: ("created", LIMIT), **error_replies(400, 401, 403, 404, 413, 415, 422, 503),
}  # fmt: skip

ROUTES: Final = [
    RouteSpec(
        "GET", "/api/limits", list_limits, "listLimits", "Limits: fleet-wide and per satellite", "limits", "viewer",
        {200: ("by parameter, the fleet's first", items_of(LIMIT)), **error_replies(401, 403, 422, 503)},
        query={"sat": {**SAT_ID, "description": "only those in force for this satellite"}}, database="here",
    ),
    RouteSpec(
        "PUT", "/api/limits/{parameter}", put_limit, "putFleetLimit", "Set the fleet's limit on a parameter", "limits",
        "operator", _PUT_REPLIES, path_params=FLEET_PATH, body=LIMIT_BODY, database="here", description=_PUT_DOC,
    ),
    RouteSpec(
        "DELETE", "/api/limits/{parameter}", delete_limit, "deleteFleetLimit", "Remove the fleet's limit on a parameter",
        "limits", "operator", {204: ("removed", None), **error_replies(401, 403, 404, 422, 503)},
        path_params=FLEET_PATH, database="here",
        description="Open alarms it raised return (clear) on the next samples unless a satellite's own limit holds.",
    ),
    RouteSpec(
        "PUT", "/api/satellites/{sat_id}/limits/{parameter}", put_limit, "putSatelliteLimit",
        "Set one satellite's limit on a parameter (overrides the fleet's)", "limits", "operator", _PUT_REPLIES,
        path_params=SAT_PATH, body=LIMIT_BODY, database="here", description=_PUT_DOC + " 404: no such satellite.",
    ),
    RouteSpec(
        "DELETE", "/api/satellites/{sat_id}/limits/{parameter}", delete_limit, "deleteSatelliteLimit",
        "Remove one satellite's limit on a parameter (the fleet's applies again)", "limits", "operator",
        {204: ("removed", None), **error_replies(401, 403, 404, 422, 503)}, path_params=SAT_PATH, database="here",
    ),
]  # fmt: skip
