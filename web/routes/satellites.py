"""/api/satellites: list, read, create (and spawn), change mode, change the TLE (kept in a
history), delete. Element sets come as TLE lines, pasted text (TLE or OMM) or an OMM object
(``web.elements``: a 422 names the field and the line and column)."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from py_nodes.db import Satellites

from ..cluster import ClusterRefusal
from ..elements import (
    MAX_TEXT_CHARS,
    OMM_REQUIRED,
    ParsedElements,
    from_omm,
    from_text,
    from_tle_pair,
)
from ..errors import NotFound, ValidationFailed, error_body
from ..keys import CLUSTER, DATABASE, MIRROR
from ..logs import sat_id_var
from ..models import (
    ERROR,
    MODE,
    NAME,
    SAT_ID,
    SATELLITE,
    TIME,
    TLE,
    error_replies,
    iso,
    items_of,
    present_sat,
)
from ..refusals import from_refusal
from ..respond import dumps, json_response
from ..spec import RouteSpec, params

__all__ = ["ROUTES", "SAT_PATH"]

SAT_PATH: Final = {"sat_id": SAT_ID}
MAX_PAGE: Final = 1000

ELEMENTS_TEXT: Final = {
    "type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS,
    "description": "pasted or uploaded: a TLE (two lines, or three with a name line first) or an OMM "
    "(CCSDS, JSON as CelesTrak's or KVN `KEY = value` lines)",
}  # fmt: skip
OMM: Final = {
    "type": "object",
    "description": "one OMM record with CelesTrak's JSON keys; needs " + ", ".join(OMM_REQUIRED) + " (SGP4 mean "
    "elements: degrees, rev/day, UTC epoch); converted to TLE lines at TLE precision",
    "required": list(OMM_REQUIRED),
    "properties": {k: {"type": ["string", "number"]} for k in OMM_REQUIRED},
}
ONE_OF_ELEMENTS: Final = ("tle", "elements", "omm")
ELEMENTS_RULES: Final = (
    "Give at most one of `tle`, `elements`, `omm` (else 422 on the second). A bad element set is a 422 on "
    "`tle.line1`/`tle.line2`/`elements` (details.line and details.column: e.g. a checksum, column 69) or "
    "`omm.KEY`/`omm`."
)
TLE_BODY: Final = {
    "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
    "description": "exactly one of tle, elements, omm",
    "properties": {"tle": TLE, "elements": ELEMENTS_TEXT, "omm": OMM},
}  # fmt: skip
TLE_CHANGED: Final = {
    "type": "object",
    "required": ["satellite", "command_id"],
    "properties": {"satellite": SATELLITE, "command_id": {"type": "string", "description": "the set_tle command (ledger)"}},
}
TLE_ENTRY: Final = {
    "type": "object",
    "required": ["line1", "line2", "valid_from", "valid_to"],
    "properties": {
        "line1": {"type": "string"}, "line2": {"type": "string"}, "valid_from": TIME,
        "valid_to": {**TIME, "type": ["string", "null"], "description": "null: the current one"},
    },
}  # fmt: skip
HISTORY_QUERY: Final = {"limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100}}
CREATE_BODY: Final = {
    "type": "object",
    "required": ["id", "name"],
    "additionalProperties": False,
    "properties": {
        "id": SAT_ID,
        "name": NAME,
        "tle": TLE,
        "elements": ELEMENTS_TEXT,
        "omm": OMM,
        "mode": MODE,
        "energy_pct": {"type": "number", "minimum": 0, "maximum": 100},
        "memory_capacity_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e12},
        "memory_used_mb": {
            "type": "number", "minimum": 0, "maximum": 1e12,
            "description": "at most memory_capacity_mb (default 1024): else 422 on this field",
        },
    },
}
IMPORT_MAX: Final = 2000  # satellites a request (one store transaction in BEAM)
IMPORT_BODY: Final = {
    "type": "object",
    "required": ["satellites"],
    "additionalProperties": False,
    "properties": {"satellites": {"type": "array", "minItems": 1, "maxItems": IMPORT_MAX, "items": CREATE_BODY}},
}
IMPORTED: Final = {
    "type": "object",
    "required": ["created", "items"],
    "properties": {
        "created": {"type": "integer", "description": "how many were created"},
        "items": {
            "type": "array",
            "description": "one per satellite of the request, in its order",
            "items": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {
                    "id": SAT_ID,
                    "status": {"type": "integer", "description": "201 created, else the status POST /api/satellites would answer"},
                    "error": ERROR["properties"]["error"],
                },
            },
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
    filters: dict[str, str] = {key: query[key] for key in ("mode", "node", "status") if key in query}
    limit, offset = query.get("limit", 100), query.get("offset", 0)
    # Filtered and paged on the control node: only the page crosses to the gateway.
    total, sats = await request.app[CLUSTER].sats_page(filters, offset, limit)
    mirror = request.app[MIRROR]
    for sat in sats:
        mirror.put(sat)
    page = [present_sat(s) for s in sats]
    return json_response({"items": page, "total": total, "limit": limit, "offset": offset})


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


def elements_of(body: dict[str, Any]) -> ParsedElements | None:
    """The element set of a body with at most one of ``tle``, ``elements``, ``omm``."""
    given = [key for key in ONE_OF_ELEMENTS if key in body]
    if len(given) > 1:
        raise ValidationFailed(given[1], f"give only one of {', '.join(ONE_OF_ELEMENTS)} (got {' and '.join(given)})")
    if not given:
        return None
    key = given[0]
    if key == "tle":
        return from_tle_pair(body["tle"]["line1"], body["tle"]["line2"])
    if key == "elements":
        return from_text(body["elements"])
    return from_omm(body["omm"])


def creation_spec(body: dict[str, Any]) -> dict[str, Any]:
    """A checked creation body with its element set (any of the three forms) as TLE lines."""
    spec = dict(body)
    parsed = elements_of(spec)
    for key in ONE_OF_ELEMENTS:
        spec.pop(key, None)
    if parsed is not None:
        spec["tle"] = {"line1": parsed.line1, "line2": parsed.line2}
    return spec


async def create_satellite(request: web.Request) -> web.StreamResponse:
    spec = creation_spec(params(request).body)
    sat_id_var.set(spec["id"])
    cluster = request.app[CLUSTER]
    created = await cluster.create(spec)
    raw = await cluster.sat(created)
    request.app[MIRROR].put(raw)
    return json_response(present_sat(raw), status=201, headers={"Location": f"/api/satellites/{created}"})


async def import_satellites(request: web.Request) -> web.StreamResponse:
    bodies: list[dict[str, Any]] = params(request).body["satellites"]
    specs = []
    for index, body in enumerate(bodies):
        try:
            specs.append(creation_spec(body))
        except ValidationFailed as exc:  # a bad element set refuses the whole import, unwritten
            problem = exc.message.removeprefix(f"{exc.field}: ")
            raise ValidationFailed(f"satellites[{index}].{exc.field}", problem, details=exc.details | {"field": f"satellites[{index}].{exc.field}"}) from None
    refusals = await request.app[CLUSTER].create_many(specs)
    items: list[dict[str, Any]] = []
    for spec, reason in zip(specs, refusals, strict=True):
        if reason is None:
            items.append({"id": spec["id"], "status": 201})
        else:
            error = from_refusal(reason, spec["id"])
            items.append({"id": spec["id"], "status": error.status, **error_body(error.code, error.message, error.details)})
    return json_response({"created": sum(1 for r in refusals if r is None), "items": items})


async def delete_satellite(request: web.Request) -> web.StreamResponse:
    sat_id = params(request).path["sat_id"]
    sat_id_var.set(sat_id)
    request.app[MIRROR].drop(sat_id)
    await request.app[CLUSTER].stop(sat_id)
    return web.Response(status=204)


async def put_tle(request: web.Request) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    parsed = elements_of(p.body)
    assert parsed is not None  # the schema asks for exactly one
    cluster = request.app[CLUSTER]
    before = (await cluster.sat(sat_id)).get("tle")
    command_id = await cluster.set_tle(sat_id, parsed.line1, parsed.line2)
    # The actor has them (done); this BEAM node's catalog may learn it a moment later when the
    # actor runs on another host.
    raw = {**await cluster.sat(sat_id), "tle": {"line1": parsed.line1, "line2": parsed.line2}}
    request.app[MIRROR].put(raw)
    old = (before["line1"], before["line2"]) if isinstance(before, dict) else None
    await Satellites(request.app[DATABASE]).audit_tle(sat_id, old, (parsed.line1, parsed.line2), actor=p.principal.actor)
    return json_response({"satellite": present_sat(raw), "command_id": command_id})


async def tle_history(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    found = await Satellites(request.app[DATABASE]).tle_history(sat_id, limit=p.query.get("limit", 100))
    if found is None:
        raise NotFound(f"no satellite {sat_id!r}")
    items = [{"line1": t.line1, "line2": t.line2, "valid_from": iso(t.valid_from), "valid_to": iso(t.valid_to)} for t in found]
    return json_response({"items": items})


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
        "operator", {201: ("created (status placing until its actor runs)", SATELLITE), **error_replies(400, 401, 403, 409, 413, 415, 422, 503)},
        body=CREATE_BODY, database="store",
        description="Only id and name are required; defaults: mode nominal, energy_pct 100, memory_capacity_mb 1024, "
        "memory_used_mb 0, no TLE (no orbit). With elements (`tle`, `elements` or `omm`) the satellite flies "
        "them (SGP4). " + ELEMENTS_RULES,
    ),
    RouteSpec(
        "POST", "/api/satellites/import", import_satellites, "importSatellites",
        f"Create up to {IMPORT_MAX:,} satellites in one request (a catalog import)", "satellites", "operator",
        {200: ("one result per satellite", IMPORTED), **error_replies(400, 401, 403, 413, 415, 422, 503)},
        body=IMPORT_BODY, database="store",
        description="Each item is a POST /api/satellites body. A malformed item (schema or element set) refuses the "
        "whole request with a 422 naming it (`satellites[3].tle.line1`) and creates nothing. Otherwise each satellite "
        "is created or refused on its own: its item says 201, or the status and error POST /api/satellites would "
        "give (409 for an id that exists or came earlier in the request, 503 when the database did not take it: send "
        "those again). BEAM writes them in one store transaction, several times faster than one request each. "
        "The body size limit is STELLAROPS_HTTP_MAX_BODY (64 KiB by default: some 200-500 satellites).",
    ),
    RouteSpec(
        "GET", "/api/satellites/{sat_id}", get_satellite, "getSatellite", "One satellite", "satellites",
        "viewer", {200: ("the satellite", SATELLITE), **error_replies(401, 403, 404, 422, 503)}, path_params=SAT_PATH,
    ),
    RouteSpec(
        "DELETE", "/api/satellites/{sat_id}", delete_satellite, "deleteSatellite", "Stop a satellite and remove it", "satellites",
        "operator", {204: ("deleted", None), **error_replies(401, 403, 404, 422, 503)}, path_params=SAT_PATH,
    ),
    RouteSpec(
        "PATCH", "/api/satellites/{sat_id}", patch_satellite, "patchSatellite", "Change a satellite's mode (waits for the outcome)",
        "satellites", "operator",
        {200: ("the satellite after the change", SATELLITE), **error_replies(400, 401, 403, 404, 409, 413, 415, 422, 503)},
        path_params=SAT_PATH, body=PATCH_BODY, database="store",  # BEAM persists a mode change
        description="409 with details.reason invalid_transition when the mode table forbids the change.",
    ),
    RouteSpec(
        "PUT", "/api/satellites/{sat_id}/tle", put_tle, "setSatelliteTle", "Give a satellite new orbital elements (waits for the actor)",
        "satellites", "operator",
        {200: ("the satellite flying the new elements", TLE_CHANGED), **error_replies(400, 401, 403, 404, 413, 415, 422, 503)},
        path_params=SAT_PATH, body=TLE_BODY, database="store",
        description="A `set_tle` command: in the ledger before it is applied, applied once; the actor flies the new "
        "elements from its next tick (on whichever node runs it) and the checkpoint that follows stores them (a "
        "restart keeps them). The old TLE stays in GET .../tle-history; the change is audited. " + ELEMENTS_RULES,
    ),
    RouteSpec(
        "GET", "/api/satellites/{sat_id}/tle-history", tle_history, "getSatelliteTleHistory", "Every TLE a satellite flew, newest first",
        "satellites", "viewer", {200: ("the TLEs, the current one with valid_to null", items_of(TLE_ENTRY)),
                                 **error_replies(401, 403, 404, 422, 503)},
        path_params=SAT_PATH, query=HISTORY_QUERY, database="here",
    ),
]  # fmt: skip
