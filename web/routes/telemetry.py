"""/api/satellites/{id}/telemetry (history from PostgreSQL) and /position (SGP4, orbital node)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from ..errors import Conflict, NotFound, ValidationFailed
from ..history import telemetry_history
from ..keys import CLUSTER, DATABASE
from ..logs import sat_id_var
from ..models import MODE, NUMBER_OR_NULL, TIME, error_replies, iso, items_of
from ..respond import json_response
from ..schema import parse_datetime
from ..spec import RouteSpec, params
from .satellites import SAT_PATH

__all__ = ["ROUTES", "time_param"]

MAX_BUCKETS: Final = 10_000
MAX_RAW: Final = 10_000
EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)

SAMPLE: Final = {
    "type": "object",
    "required": ["time", "energy_pct", "memory_used_mb", "mode", "in_sunlight", "samples"],
    "properties": {
        "time": {**TIME, "description": "the sample's time, or the start of its bucket"},
        "energy_pct": {"type": "number", "description": "mean over the bucket"},
        "memory_used_mb": {"type": "number", "description": "mean over the bucket"},
        "mode": {**MODE, "description": "the last in the bucket"},
        "lat_deg": NUMBER_OR_NULL,
        "lon_deg": NUMBER_OR_NULL,
        "alt_km": NUMBER_OR_NULL,
        "in_sunlight": {"type": "boolean"},
        "samples": {"type": "integer"},
    },
}
HISTORY: Final = items_of(
    SAMPLE, satellite_id={"type": "string"}, start=TIME, end=TIME, step_s={"type": ["integer", "null"]}
)
POSITION: Final = {
    "type": "object",
    "required": ["satellite_id", "at", "sgp4_error"],
    "properties": {
        "satellite_id": {"type": "string"},
        "norad_id": {"type": ["integer", "null"]},
        "at": TIME,
        "lat_deg": NUMBER_OR_NULL,
        "lon_deg": NUMBER_OR_NULL,
        "alt_km": NUMBER_OR_NULL,
        "r_teme_km": {"type": ["array", "null"], "items": {"type": "number"}},
        "v_teme_km_s": {"type": ["array", "null"], "items": {"type": "number"}},
        "in_sunlight": {"type": ["boolean", "null"]},
        "sgp4_error": {"type": "integer", "description": "SGP4's error code; the numbers are null when not 0"},
    },
}
HISTORY_QUERY: Final = {
    "from": {**TIME, "description": "default: an hour before `to`"},
    "to": {**TIME, "description": "default: now"},
    "step": {"type": "integer", "minimum": 1, "maximum": 86_400, "description": "bucket in seconds; raw samples without it"},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RAW, "default": 1000, "description": "rows at most"},
}


def time_param(query: dict[str, Any], name: str, default: datetime) -> datetime:
    value = parse_datetime(query[name], name) if name in query else default
    if not EARLIEST <= value < LATEST:
        raise ValidationFailed(name, "must be between 1900 and 2100")
    return value


async def telemetry(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    end = time_param(p.query, "to", datetime.now(UTC))
    start = time_param(p.query, "from", end - timedelta(hours=1))
    if start >= end:
        raise ValidationFailed("from", "must be before to")
    step: int | None = p.query.get("step")
    if step is not None and (end - start).total_seconds() / step > MAX_BUCKETS:
        raise ValidationFailed("step", f"more than {MAX_BUCKETS} buckets: use a larger step or a shorter window")
    rows = await telemetry_history(request.app[DATABASE], sat_id, start, end, step, p.query.get("limit", 1000))
    for row in rows:
        row["time"] = iso(row["time"])
    return json_response({"satellite_id": sat_id, "start": iso(start), "end": iso(end), "step_s": step, "items": rows})


async def position(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    at = time_param(p.query, "at", datetime.now(UTC))
    item = await request.app[CLUSTER].propagate(sat_id, [int(at.timestamp() * 1000)])
    error = item.get("error")
    if isinstance(error, list) and error:
        if error[0] == "unknown_satellite":
            raise NotFound(f"no satellite {sat_id!r}")
        raise Conflict(f"satellite {sat_id!r} has no usable orbit ({error[0]})", details={"reason": error[0]})
    positions = item.get("positions") or [{}]
    point: dict[str, Any] = positions[0]
    body = {
        "satellite_id": sat_id,
        "norad_id": item.get("norad_id"),
        "at": iso(at),
        **{k: point.get(k) for k in ("lat_deg", "lon_deg", "alt_km", "r_teme_km", "v_teme_km_s", "in_sunlight")},
        "sgp4_error": point.get("error", 0) if isinstance(point.get("error", 0), int) else -1,
    }
    return json_response(body)


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/satellites/{sat_id}/telemetry", telemetry, "getTelemetry",
        "Telemetry history, raw or downsampled by step", "telemetry", "viewer",
        {200: ("samples, oldest first", HISTORY), **error_replies(401, 403, 422, 503)},
        path_params=SAT_PATH, query=HISTORY_QUERY,
        description=f"At most {MAX_BUCKETS} buckets per request ((to - from) / step).",
    ),
    RouteSpec(
        "GET", "/api/satellites/{sat_id}/position", position, "getPosition", "Position at a time (SGP4 on the orbital node)",
        "telemetry", "viewer", {200: ("the position", POSITION), **error_replies(401, 403, 404, 409, 422, 503)},
        path_params=SAT_PATH, query={"at": {**TIME, "description": "default: now"}},
        description="409 when the satellite has no TLE.",
    ),
]  # fmt: skip
