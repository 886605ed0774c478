"""/api/ground-stations (PostgreSQL: the one source of station data, seeded from
``py_nodes.ground_stations``; create, edit, delete) and /api/passes (computed by the orbital node
for the database's stations, passed inline so that both always agree). Taking a station down
and bringing it back is PATCH (``web.routes.tasks``); an edit or a removal that matters to plans
asks the scheduler for a re-plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from py_nodes.db import NotFound as DbNotFound
from py_nodes.db import Station, Stations, StationSpec
from py_nodes.db import ValidationError as DbValidationError
from py_nodes.db.stations import MAX_ANTENNAS, MAX_DOWN_AHEAD, MAX_DOWN_WINDOWS, DownWindow
from py_nodes.db.tasks import Tasks

from ..cluster import Cluster, ClusterRefusal
from ..errors import Conflict, NotFound, ValidationFailed
from ..keys import CLUSTER, DATABASE
from ..models import NAME, SAT_ID, STATION_ID, TIME, TIME_QUERY, error_replies, iso, items_of
from ..respond import json_response
from ..schema import parse_datetime
from ..spec import RouteSpec, params
from ..sse import iso_ms
from .telemetry import time_param

__all__ = ["ANTENNAS", "DOWN_WINDOWS", "DOWN_WINDOWS_OUT", "ROUTES", "down_windows", "station_json"]

MAX_WINDOW: Final = timedelta(days=7)

ANTENNAS: Final = {"type": "integer", "minimum": 1, "maximum": MAX_ANTENNAS, "description": "satellites served at once"}
DOWN_WINDOWS: Final = {
    "type": "array",
    "maxItems": MAX_DOWN_WINDOWS,
    "description": f"when the station is down (no pass planned on it); each `from` < `to`, `to` at most "
    f"{MAX_DOWN_AHEAD.days} days ahead, years 2000-2099 (else 422 on `unavailable[i].from`/`.to`)",
    "items": {
        "type": "object",
        "required": ["from", "to"],
        "additionalProperties": False,
        "properties": {"from": {**TIME, "pattern": "^(19|20)[0-9]{2}-"}, "to": {**TIME, "pattern": "^(19|20)[0-9]{2}-"}},
    },
}
DOWN_WINDOWS_OUT: Final = {
    "type": "array",
    "items": {"type": "object", "required": ["from", "to"], "properties": {"from": TIME, "to": TIME}},
}

STATION: Final = {
    "type": "object",
    "required": ["id", "name", "lat_deg", "lon_deg", "alt_m", "min_el_deg", "downlink_mbps", "active", "antennas", "unavailable"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "lat_deg": {"type": "number"},
        "lon_deg": {"type": "number"},
        "alt_m": {"type": "number"},
        "min_el_deg": {"type": "number", "description": "elevation mask"},
        "downlink_mbps": {"type": "number"},
        "active": {"type": "boolean"},
        "antennas": {"type": "integer"},
        "unavailable": DOWN_WINDOWS_OUT,
        "created_at": TIME,
        "updated_at": TIME,
    },
}
STATION_FIELDS: Final[dict[str, Any]] = {  # what PUT replaces (every field but the id)
    "name": NAME,
    "lat_deg": {"type": "number", "minimum": -90, "maximum": 90},
    "lon_deg": {"type": "number", "minimum": -180, "maximum": 180},
    "alt_m": {"type": "number", "minimum": -500, "maximum": 9000},
    "min_el_deg": {"type": "number", "minimum": 0, "exclusiveMaximum": 90},
    "downlink_mbps": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9},
    "active": {"type": "boolean"},
    "antennas": {**ANTENNAS, "default": 1},
    "unavailable": {**DOWN_WINDOWS, "default": []},
}
STATION_BODY: Final = {
    "type": "object",
    "required": ["id", "name", "lat_deg", "lon_deg"],
    "additionalProperties": False,
    "properties": {"id": STATION_ID, **STATION_FIELDS},
}
STATION_PATH: Final = {"station_id": STATION_ID}
STATION_PUT: Final = {
    **STATION_BODY,
    "required": ["name", "lat_deg", "lon_deg"],
    "properties": STATION_FIELDS,
    "description": "the station as it is to be: fields left out take their defaults (as on create)",
}
STATION_EDITED: Final = {
    "type": "object",
    "required": ["station", "changed"],
    "properties": {
        "station": STATION, "changed": {"type": "boolean"},
        "request_id": {"type": ["integer", "null"], "description": "the re-plan it asked for (none for a new name alone)"},
    },
}  # fmt: skip
PASS: Final = {
    "type": "object",
    "required": ["satellite_id", "station_id", "aos", "tca", "los", "max_el_deg"],
    "properties": {
        "satellite_id": {"type": "string"},
        "station_id": {"type": "string"},
        "aos": TIME,
        "tca": TIME,
        "los": TIME,
        "max_el_deg": {"type": "number"},
        "aos_cut": {"type": "boolean", "description": "the pass was already under way at `from`"},
        "los_cut": {"type": "boolean", "description": "the pass was still under way at `to`"},
    },
}
# maxItems: the longest request line must fit the HTTP server's 8190 bytes (ids are <= 64 chars).
PASSES_QUERY: Final = {
    "sat": {"type": "array", "items": SAT_ID, "minItems": 1, "maxItems": 50, "description": "ids, comma-separated; default: every satellite with a TLE"},
    "station": {"type": "array", "items": STATION_ID, "minItems": 1, "maxItems": 30, "description": "ids, comma-separated; default: every active station"},
    "from": {**TIME_QUERY, "description": "default: now"},
    "to": {**TIME_QUERY, "description": "default: 24 h after from; at most 7 days after it"},
    "min_el": {"type": "number", "minimum": 0, "maximum": 89.9, "description": "degrees; default: each station's mask"},
}  # fmt: skip


def station_json(s: Station) -> dict[str, Any]:
    return {
        "id": s.id, "name": s.name, "lat_deg": s.lat_deg, "lon_deg": s.lon_deg, "alt_m": s.alt_m,
        "min_el_deg": s.min_el_deg, "downlink_mbps": s.downlink_mbps, "active": s.active, "antennas": s.antennas,
        "unavailable": [{"from": iso(a), "to": iso(b)} for a, b in s.unavailable],
        "created_at": iso(s.created_at), "updated_at": iso(s.updated_at),
    }  # fmt: skip


def down_windows(items: list[dict[str, str]]) -> tuple[DownWindow, ...]:
    """A body's ``unavailable`` (checked against DOWN_WINDOWS) as UTC pairs; 422 names the field."""
    return tuple(
        (parse_datetime(w["from"], f"unavailable[{i}].from"), parse_datetime(w["to"], f"unavailable[{i}].to"))
        for i, w in enumerate(items)
    )


async def list_stations(request: web.Request) -> web.StreamResponse:
    stations = await Stations(request.app[DATABASE]).list_all()
    return json_response({"items": [station_json(s) for s in stations]})


async def create_station(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    body = dict(p.body)
    if "unavailable" in body:
        body["unavailable"] = down_windows(body["unavailable"])
    spec = StationSpec(**body)
    try:
        station = await Stations(request.app[DATABASE]).create(spec, actor=p.principal.actor)
    except DbValidationError as exc:
        if exc.field == "id" and "already exists" in exc.problem:
            raise Conflict(f"ground station {spec.id!r} already exists", details={"field": "id"}) from None
        raise
    return json_response(station_json(station), status=201, headers={"Location": "/api/ground-stations"})


async def put_station(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    station_id = p.path["station_id"]
    body = dict(p.body)
    body["unavailable"] = down_windows(body.get("unavailable", []))
    defaults = StationSpec(id=station_id, name="-", lat_deg=0.0, lon_deg=0.0)
    changes = {k: body.get(k, getattr(defaults, k)) for k in STATION_FIELDS}
    try:
        station, changed, request_id = await Tasks(request.app[DATABASE]).change_station(
            station_id, changes, actor=p.principal.actor, any_field=True
        )
    except DbNotFound:
        raise NotFound(f"no ground station {station_id!r}", details={"field": "station_id"}) from None
    return json_response({"station": station_json(station), "changed": changed, "request_id": request_id})


async def delete_station(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    station_id = p.path["station_id"]
    if not await Stations(request.app[DATABASE]).delete(station_id, actor=p.principal.actor):
        raise NotFound(f"no ground station {station_id!r}", details={"field": "station_id"})
    return web.Response(status=204)


async def list_passes(request: web.Request) -> web.StreamResponse:
    query = params(request).query
    start = time_param(query, "from", datetime.now(UTC))
    end = time_param(query, "to", start + timedelta(days=1))
    if start >= end:
        raise ValidationFailed("to", "must be after from")
    if end - start > MAX_WINDOW:
        raise ValidationFailed("to", "the window is longer than 7 days")
    stations = await Stations(request.app[DATABASE]).list_all(active_only="station" not in query)
    if "station" in query:
        by_id = {s.id: s for s in stations}
        missing = [s for s in query["station"] if s not in by_id]
        if missing:
            raise NotFound(f"no ground station {missing[0]!r}", details={"field": "station"})
        stations = [by_id[s] for s in dict.fromkeys(query["station"])]
    cluster = request.app[CLUSTER]
    sat_ids: list[str] = list(dict.fromkeys(query["sat"])) if "sat" in query else [
        s["id"] for s in await cluster.sats() if s.get("tle")
    ]  # fmt: skip
    if not sat_ids or not stations:
        if "sat" in query:  # a named satellite that does not exist is 404 even with no station to pass over
            await _require_sats(cluster, sat_ids)
        return json_response({"items": []})
    inline = [
        {"id": s.id, "name": s.name, "lat_deg": s.lat_deg, "lon_deg": s.lon_deg, "alt_m": s.alt_m, "min_el_deg": s.min_el_deg}
        for s in stations
    ]
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    found = await cluster.passes(sat_ids, inline, start_ms, end_ms, query.get("min_el"))
    items = [
        {
            "satellite_id": p["sat"], "station_id": p["station"], "aos": iso_ms(p["aos"]), "tca": iso_ms(p["tca"]),
            "los": iso_ms(p["los"]), "max_el_deg": p["max_el_deg"], "aos_cut": p.get("aos_cut"), "los_cut": p.get("los_cut"),
        }
        for p in found
    ]
    return json_response({"items": items})


async def _require_sats(cluster: Cluster, sat_ids: list[str]) -> None:
    for sat_id in sat_ids:
        try:
            await cluster.sat(sat_id)
        except ClusterRefusal as refusal:
            if refusal.reason == "not_found":
                raise NotFound(f"no satellite {sat_id!r}", details={"field": "sat"}) from None
            raise


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/ground-stations", list_stations, "listGroundStations", "Ground stations", "ground stations", "viewer",
        {200: ("every station, by id", items_of(STATION)), **error_replies(401, 403, 422, 503)}, database="here",
    ),
    RouteSpec(
        "POST", "/api/ground-stations", create_station, "createGroundStation", "Add a ground station", "ground stations", "operator",
        {201: ("created", STATION), **error_replies(400, 401, 403, 409, 413, 415, 422, 503)}, body=STATION_BODY,
        database="here",
    ),
    RouteSpec(
        "PUT", "/api/ground-stations/{station_id}", put_station, "putGroundStation", "Edit a ground station", "ground stations",
        "operator", {200: ("the station as stored", STATION_EDITED), **error_replies(400, 401, 403, 404, 413, 415, 422, 503)},
        path_params=STATION_PATH, body=STATION_PUT, database="here",
        description="Replaces every field but the id (left out: the defaults). A change of location, height, mask, "
        "downlink rate, antennas, availability or down windows asks for a re-plan (`station_down` when it lost capacity "
        "or moved, else `station_up`); passes and the scheduler use the stored station from then on. Bad values: 422 "
        "naming the field (`unavailable[i].from`/`.to`), nothing stored.",
    ),
    RouteSpec(
        "DELETE", "/api/ground-stations/{station_id}", delete_station, "deleteGroundStation", "Remove a ground station",
        "ground stations", "operator", {204: ("deleted", None), **error_replies(401, 403, 404, 422, 503)},
        path_params=STATION_PATH, database="here",
        description="Tasks that asked for it keep no station; downlinks planned on it are re-planned (the scheduler "
        "sees the active stations change).",
    ),
    RouteSpec(
        "GET", "/api/passes", list_passes, "listPasses", "Passes of satellites over ground stations", "ground stations", "viewer",
        {200: ("passes sorted by AOS", items_of(PASS)), **error_replies(401, 403, 404, 409, 422, 503)},
        query=PASSES_QUERY, database="here",
        description="Computed by the orbital node (SGP4) for the stations in the database. 404 (details.field "
        "`sat` or `station`) when a named satellite or station does not exist; 409 when a named satellite has no "
        "usable TLE. Between parameters: `from` < `to` and `to` - `from` <= 7 days (else 422 on `to`).",
    ),
]  # fmt: skip
