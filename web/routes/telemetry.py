"""/api/satellites/{id}/telemetry (history from PostgreSQL), /position and /track (SGP4 on the
orbital node)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from py_nodes.db.telemetry_range import SERIES, TelemetryRange, telemetry_csv, telemetry_rows

from ..errors import Conflict, NotFound, ValidationFailed
from ..export import CSV_MEDIA, FORMAT_QUERY, stream_csv, wants_csv
from ..keys import CLUSTER, DATABASE
from ..logs import sat_id_var
from ..models import MODE, NUMBER_OR_NULL, TIME, TIME_QUERY, error_replies, iso, items_of
from ..respond import json_response
from ..schema import parse_datetime
from ..spec import GATE, RouteSpec, params
from ..sse import iso_ms
from .satellites import SAT_PATH

__all__ = ["ROUTES", "orbital_period_s", "time_param"]

MAX_BUCKETS: Final = 10_000
MAX_RAW: Final = 10_000
MAX_RANGE: Final = timedelta(days=366)
MAX_TRACK_POINTS: Final = 2000
TRACK_STEPS_PER_PERIOD: Final = 180  # the default step: a smooth line, a few hundred points
MIN_MEAN_MOTION: Final = 0.01  # rev/day (a 100-day period): slower is no orbit to draw
# Years 1900-2099 as written (TIME_QUERY's pattern); in UTC an offset can move them a day out.
EARLIEST: Final = datetime(1899, 12, 31, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 2, tzinfo=UTC)

_STATS: Final = {
    "type": "object",
    "properties": {name: NUMBER_OR_NULL for name in SERIES},
}
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
        "alt_km": {**NUMBER_OR_NULL, "description": "the last in the bucket (with lat_deg, lon_deg)"},
        "in_sunlight": {"type": "boolean"},
        "samples": {"type": "integer"},
        "min": {**_STATS, "description": "buckets only: each parameter's minimum over the bucket"},
        "avg": {**_STATS, "description": "buckets only: each parameter's mean"},
        "max": {**_STATS, "description": "buckets only: each parameter's maximum (peaks are kept)"},
    },
}
HISTORY: Final = items_of(
    SAMPLE, satellite_id={"type": "string"}, start=TIME, end=TIME, step_s={"type": ["integer", "null"]}
)
CSV_BODY: Final = {
    "type": "string",
    "description": "CSV with a header line. Raw: time, satellite_id, energy_pct, memory_used_mb, mode, lat_deg, "
    "lon_deg, alt_km, in_sunlight. Buckets: time, satellite_id, samples, <p>_min, <p>_avg, <p>_max for "
    "energy_pct, memory_used_mb, alt_km, then mode_last, lat_deg_last, lon_deg_last, alt_km_last, in_sunlight_last.",
}
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
TRACK_POINT: Final = {
    "type": "object",
    "required": ["time", "lat_deg", "lon_deg", "alt_km"],
    "properties": {
        "time": TIME,
        "lat_deg": {"type": "number"},
        "lon_deg": {"type": "number"},
        "alt_km": {"type": "number"},
        "in_sunlight": {"type": "boolean"},
    },
}
TRACK: Final = items_of(
    TRACK_POINT, satellite_id={"type": "string"}, period_s={"type": "number", "description": "from the TLE's mean motion"},
    **{"from": TIME, "to": TIME}, step_s={"type": "number"},
)  # fmt: skip
TRACK_QUERY: Final = {
    "from": {**TIME_QUERY, "description": "default: one orbital period before now (two before `to` when only `to` is given)"},
    "to": {**TIME_QUERY, "description": "default: one period after now (two after `from` when only `from` is given)"},
    "step_s": {"type": "number", "minimum": 1, "maximum": 3600, "description": "seconds between points; default: the period / 180, whole seconds"},
}  # fmt: skip
HISTORY_QUERY: Final = {
    "from": {**TIME_QUERY, "description": "default: an hour before `to`"},
    "to": {**TIME_QUERY, "description": "default: now"},
    "step": {"type": "integer", "minimum": 1, "maximum": 86_400, "description": "bucket in seconds; raw samples without it"},
    "max_points": {
        "type": "integer", "minimum": 1, "maximum": MAX_BUCKETS,
        "description": "instead of step: buckets of ceil((to - from) / max_points) seconds (at least 1 s)",
    },
    "limit": {
        "type": "integer", "minimum": 1, "maximum": MAX_RAW,
        "description": "rows at most; default 1000 (max_points with max_points; every row for CSV)",
    },
    **FORMAT_QUERY,
}  # fmt: skip


def time_param(query: dict[str, Any], name: str, default: datetime) -> datetime:
    value = parse_datetime(query[name], name) if name in query else default
    if not EARLIEST <= value < LATEST:
        raise ValidationFailed(name, "must be in the years 1900-2099")
    return value


def _range(query: dict[str, Any]) -> tuple[datetime, datetime, int | None, int | None]:
    """from, to, the bucket (seconds or None: raw) and max_points, checked."""
    end = time_param(query, "to", datetime.now(UTC))
    start = time_param(query, "from", end - timedelta(hours=1))
    if start >= end:
        raise ValidationFailed("from", "must be before to")
    if end - start > MAX_RANGE:
        raise ValidationFailed("to", f"more than {MAX_RANGE.days} days after from: ask for a shorter range, or export it in parts")
    step: int | None = query.get("step")
    max_points: int | None = query.get("max_points")
    if step is not None and max_points is not None:
        raise ValidationFailed("max_points", "give step or max_points, not both")
    if max_points is not None:
        step = max(1, math.ceil((end - start).total_seconds() / max_points))
    elif step is not None and (end - start).total_seconds() / step > MAX_BUCKETS:
        raise ValidationFailed("step", f"more than {MAX_BUCKETS} buckets: use a larger step or a shorter window")
    return start, end, step, max_points


async def telemetry(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    start, end, step, max_points = _range(p.query)
    gate = request.app[GATE]
    db = request.app[DATABASE]
    if wants_csv(request, p.query):
        wanted = TelemetryRange(sat_id, start, end, step, p.query.get("limit"))
        name = f"{sat_id}_telemetry_{_stamp(start)}_{_stamp(end)}{f'_{step}s' if step else ''}.csv"
        return await stream_csv(request, name, telemetry_csv(db, wanted), gate)
    wanted = TelemetryRange(sat_id, start, end, step, p.query.get("limit", max_points or 1000))
    rows = await gate.run(telemetry_rows(db, wanted))
    for row in rows:
        row["time"] = iso(row["time"])
    return json_response({"satellite_id": sat_id, "start": iso(start), "end": iso(end), "step_s": step, "items": rows})


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ")


def _no_orbit(sat_id: str, reason: str) -> Conflict:
    return Conflict(f"satellite {sat_id!r} has no usable orbit ({reason})", details={"reason": reason})


async def _propagate(request: web.Request, sat_id: str, times_ms: list[int]) -> dict[str, Any]:
    """The orbital node's result for one satellite; its refusals as 404 or 409."""
    item = await request.app[CLUSTER].propagate(sat_id, times_ms)
    error = item.get("error")
    if isinstance(error, list) and error:
        if error[0] == "unknown_satellite":
            raise NotFound(f"no satellite {sat_id!r}")
        raise _no_orbit(sat_id, str(error[0]))
    return item


def orbital_period_s(line2: str) -> float | None:
    """The period from a TLE's mean motion (line 2, columns 53-63, rev/day); None if unusable."""
    try:
        mean_motion = float(line2[52:63])
    except ValueError:
        return None
    if not (math.isfinite(mean_motion) and mean_motion >= MIN_MEAN_MOTION):
        return None
    return 86_400.0 / mean_motion


async def position(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    at = time_param(p.query, "at", datetime.now(UTC))
    item = await _propagate(request, sat_id, [int(at.timestamp() * 1000)])
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


async def track(request: web.Request) -> web.StreamResponse:
    """The ground track around now (or a given window): what a map draws under the satellite.
    The default window and step follow the satellite's own period, so one request draws one
    orbit either side of it, whatever its altitude."""
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    tle = (await request.app[CLUSTER].sat(sat_id)).get("tle")  # unknown: 404
    if not isinstance(tle, dict) or not isinstance(tle.get("line2"), str):
        raise _no_orbit(sat_id, "no_tle")
    period = orbital_period_s(tle["line2"])
    if period is None:
        raise _no_orbit(sat_id, "bad_mean_motion")
    window, query, now = timedelta(seconds=period), p.query, datetime.now(UTC)
    if "to" in query and "from" not in query:
        end = time_param(query, "to", now)
        start = time_param({}, "from", end - 2 * window)
    else:
        start = time_param(query, "from", now - window)
        end = time_param(query, "to", start + 2 * window)
    if start >= end:
        raise ValidationFailed("to", "must be after from")
    step_s: float = query.get("step_s", max(1, round(period / TRACK_STEPS_PER_PERIOD)))
    step_ms = round(step_s * 1000)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    count = (end_ms - start_ms) // step_ms + 1
    if count > MAX_TRACK_POINTS:
        raise ValidationFailed(
            "step_s" if "step_s" in query else "to",
            f"{count} points, more than {MAX_TRACK_POINTS}: use a larger step_s or a shorter window",
        )
    times_ms = [start_ms + k * step_ms for k in range(count)]
    item = await _propagate(request, sat_id, times_ms)
    items: list[dict[str, Any]] = []
    for t, point in zip(times_ms, item.get("positions") or [], strict=False):
        if point.get("error", 0) != 0 or point.get("lat_deg") is None:
            continue  # SGP4 failed there (a decayed orbit): no point to draw
        row = {"time": iso_ms(point.get("t", t)), "lat_deg": point["lat_deg"], "lon_deg": point["lon_deg"], "alt_km": point["alt_km"]}
        if isinstance(point.get("in_sunlight"), bool):
            row["in_sunlight"] = point["in_sunlight"]
        items.append(row)
    body = {
        "satellite_id": sat_id, "period_s": period, "from": iso(start), "to": iso(end),
        "step_s": int(step_s) if float(step_s).is_integer() else step_s, "items": items,
    }  # fmt: skip
    return json_response(body)


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/satellites/{sat_id}/telemetry", telemetry, "getTelemetry",
        "Telemetry history, raw or downsampled (min/avg/max per bucket), as JSON or a streamed CSV export",
        "telemetry", "viewer",
        {200: ("samples, oldest first", HISTORY), **error_replies(401, 403, 422, 503)},
        path_params=SAT_PATH, query=HISTORY_QUERY, alt_media={CSV_MEDIA: CSV_BODY},
        description=f"Between parameters: `from` < `to` (else 422 on `from`), at most {MAX_RANGE.days} days apart "
        f"(else 422 on `to`), at most {MAX_BUCKETS} buckets per request ((to - from) / step, else 422 on `step`), "
        "and `step` or `max_points`, not both (else 422 on `max_points`). Buckets start at `from`. "
        "With `format=csv` (or `Accept: text/csv`) the rows come as a CSV attachment, streamed as the "
        "database reads them; a download cut short ends without the chunked encoding's last chunk.",
    ),
    RouteSpec(
        "GET", "/api/satellites/{sat_id}/position", position, "getPosition", "Position at a time (SGP4 on the orbital node)",
        "telemetry", "viewer", {200: ("the position", POSITION), **error_replies(401, 403, 404, 409, 422, 503)},
        path_params=SAT_PATH, query={"at": {**TIME_QUERY, "description": "default: now"}},
        description="409 when the satellite has no TLE.",
    ),
    RouteSpec(
        "GET", "/api/satellites/{sat_id}/track", track, "getGroundTrack",
        "Ground track: sub-satellite points over a window (SGP4 on the orbital node)", "telemetry", "viewer",
        {200: ("points, oldest first", TRACK), **error_replies(401, 403, 404, 409, 422, 503)},
        path_params=SAT_PATH, query=TRACK_QUERY,
        description=f"Between parameters: `from` < `to` (else 422 on `to`) and at most {MAX_TRACK_POINTS} points per "
        "request ((to - from) / step_s + 1, else 422 on `step_s`, or on `to` without it). The default window is "
        "one orbital period either side of now. Points where SGP4 fails (a decayed orbit) are left out. "
        "409 when the satellite has no TLE.",
    ),
]  # fmt: skip
