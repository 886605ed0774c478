"""/api/satellites: list, read, create (and spawn), change mode, delete."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ..cluster import ClusterRefusal
from ..keys import CLUSTER, MIRROR
from ..logs import sat_id_var
from ..models import MODE, NAME, SAT_ID, SATELLITE, TLE, error_replies, present_sat
from ..respond import dumps, json_response
from ..spec import RouteSpec, params

__all__ = ["ROUTES", "SAT_PATH"]

SAT_PATH: Final = {"sat_id": SAT_ID}
MAX_PAGE: Final = 1000

CREATE_BODY: Final = {
    "type": "object",
    "required": ["id", "name"],
    "additionalProperties": False,
    "properties": {
        "id": SAT_ID,
        "name": NAME,
        "tle": TLE,
        "mode": MODE,
        "energy_pct": {"type": "number", "minimum": 0, "maximum": 100},
        "memory_capacity_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e12},
        "memory_used_mb": {
            "type": "number", "minimum": 0, "maximum": 1e12,
            "description": "at most memory_capacity_mb (default 1024): else 422 on this field",
        },
    },
}
PATCH_BODY: Final = {"type": "object", "required": ["mode"], "additionalProperties": False, "properties": {"mode": MODE}}
LIST_QUERY: Final = {
    "mode": MODE,
    "node": {"type": "string", "maxLength": 255},
    "status": {"type": "string", "enum": ["placing", "running"]},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
    "offset": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "default": 0},
}
PAGE: Final = {
    "type": "object",
    "required": ["items", "total", "limit", "offset"],
    "properties": {
        "items": {"type": "array", "items": SATELLITE},
        "total": {"type": "integer", "description": "satellites matching the filters"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
    },
}


async def list_satellites(request: web.Request) -> web.StreamResponse:
    query = params(request).query
    sats = await request.app[CLUSTER].sats()
    mirror = request.app[MIRROR]
    for sat in sats:
        mirror.put(sat)
    chosen = [
        s for s in sats
        if ("mode" not in query or s.get("mode") == query["mode"])
        and ("node" not in query or s.get("node") == query["node"])
        and ("status" not in query or s.get("status") == query["status"])
    ]  # fmt: skip
    limit, offset = query.get("limit", 100), query.get("offset", 0)
    page = [present_sat(s) for s in chosen[offset : offset + limit]]
    return json_response({"items": page, "total": len(chosen), "limit": limit, "offset": offset})


async def get_satellite(request: web.Request) -> web.StreamResponse:
    sat_id = params(request).path["sat_id"]
    sat_id_var.set(sat_id)
    mirror = request.app[MIRROR]
    body = mirror.body(sat_id)
    if body is None:
        try:
            raw = await request.app[CLUSTER].sat(sat_id)
        except ClusterRefusal:
            mirror.drop(sat_id)
            raise
        mirror.put(raw)
        body = dumps(present_sat(raw)).encode()
    return web.Response(body=body, content_type="application/json")


async def create_satellite(request: web.Request) -> web.StreamResponse:
    spec: dict[str, Any] = params(request).body
    sat_id_var.set(spec["id"])
    cluster = request.app[CLUSTER]
    created = await cluster.create(spec)
    raw = await cluster.sat(created)
    request.app[MIRROR].put(raw)
    return json_response(present_sat(raw), status=201, headers={"Location": f"/api/satellites/{created}"})


async def delete_satellite(request: web.Request) -> web.StreamResponse:
    sat_id = params(request).path["sat_id"]
    sat_id_var.set(sat_id)
    request.app[MIRROR].drop(sat_id)
    await request.app[CLUSTER].stop(sat_id)
    return web.Response(status=204)


async def patch_satellite(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    cluster = request.app[CLUSTER]
    await cluster.set_mode(sat_id, p.body["mode"])
    raw = await cluster.sat(sat_id)
    request.app[MIRROR].put(raw)
    return json_response(present_sat(raw))


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/satellites", list_satellites, "listSatellites", "Satellites, by id, filtered and paged", "satellites",
        "viewer", {200: ("a page of satellites", PAGE), **error_replies(401, 403, 422, 503)}, query=LIST_QUERY,
    ),
    RouteSpec(
        "POST", "/api/satellites", create_satellite, "createSatellite", "Create a satellite and start its actor", "satellites",
        "admin", {201: ("created (status placing until its actor runs)", SATELLITE), **error_replies(400, 401, 403, 409, 413, 415, 422, 503)},
        body=CREATE_BODY, database="store",
        description="Only id and name are required; defaults: mode nominal, energy_pct 100, memory_capacity_mb 1024, "
        "memory_used_mb 0, no TLE (no orbit). With a TLE the satellite flies it (SGP4).",
    ),
    RouteSpec(
        "GET", "/api/satellites/{sat_id}", get_satellite, "getSatellite", "One satellite", "satellites",
        "viewer", {200: ("the satellite", SATELLITE), **error_replies(401, 403, 404, 422, 503)}, path_params=SAT_PATH,
    ),
    RouteSpec(
        "DELETE", "/api/satellites/{sat_id}", delete_satellite, "deleteSatellite", "Stop a satellite and remove it", "satellites",
        "admin", {204: ("deleted", None), **error_replies(401, 403, 404, 422, 503)}, path_params=SAT_PATH,
    ),
    RouteSpec(
        "PATCH", "/api/satellites/{sat_id}", patch_satellite, "patchSatellite", "Change a satellite's mode (waits for the outcome)",
        "satellites", "operator",
        {200: ("the satellite after the change", SATELLITE), **error_replies(400, 401, 403, 404, 409, 413, 415, 422, 503)},
        path_params=SAT_PATH, body=PATCH_BODY, database="store",  # BEAM persists a mode change
        description="409 with details.reason invalid_transition when the mode table forbids the change.",
    ),
]  # fmt: skip
