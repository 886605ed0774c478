"""The API's JSON shapes as JSON Schemas (validation and the OpenAPI document use the same ones),
and the functions that present cluster and database values in those shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from py_nodes.satellite.modes import Mode

from .sse import iso_ms

__all__ = [
    "ERROR",
    "MODE",
    "NAME",
    "NUMBER_OR_NULL",
    "SATELLITE",
    "SAT_ID",
    "STATION_ID",
    "TIME",
    "TIME_QUERY",
    "TLE",
    "error_replies",
    "iso",
    "items_of",
    "present_sat",
]

Schema = dict[str, Any]

SAT_ID: Final[Schema] = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$", "description": "satellite id"}
STATION_ID: Final[Schema] = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$", "description": "ground station id"}
MODE: Final[Schema] = {"type": "string", "enum": [m.value for m in Mode]}
TIME: Final[Schema] = {"type": "string", "format": "date-time", "maxLength": 64, "description": "RFC 3339, UTC or with an offset"}
# A label stored in PostgreSQL (its text cannot hold NUL).
NAME: Final[Schema] = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\x00]*$"}
# A time given in a query: the year as written is 1900..2099 (the server takes exactly these).
TIME_QUERY: Final[Schema] = {**TIME, "pattern": "^(19|20)[0-9]{2}-", "description": "RFC 3339 with Z or an offset; years 1900-2099"}
NUMBER_OR_NULL: Final[Schema] = {"type": ["number", "null"]}

ERROR: Final[Schema] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}

TLE: Final[Schema] = {
    "type": "object",
    "required": ["line1", "line2"],
    "additionalProperties": False,
    "properties": {
        "line1": {"type": "string", "minLength": 69, "maxLength": 80, "pattern": "^1 "},
        "line2": {"type": "string", "minLength": 69, "maxLength": 80, "pattern": "^2 "},
    },
}

SATELLITE: Final[Schema] = {
    "type": "object",
    "required": ["id", "name", "mode", "energy_pct", "memory_used_mb", "memory_capacity_mb", "status"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "mode": MODE,
        "status": {"type": "string", "enum": ["placing", "running"]},
        "energy_pct": {"type": "number"},
        "memory_used_mb": {"type": "number"},
        "memory_capacity_mb": {"type": "number"},
        "tle": {"type": ["object", "null"], "properties": {"line1": {"type": "string"}, "line2": {"type": "string"}}},
        "lat_deg": NUMBER_OR_NULL,
        "lon_deg": NUMBER_OR_NULL,
        "alt_km": NUMBER_OR_NULL,
        "in_sunlight": {"type": ["boolean", "null"]},
        "node": {"type": ["string", "null"], "description": "the Python node running its actor"},
        "beam": {"type": ["string", "null"], "description": "the BEAM node owning its shadow"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

_SAT_KEYS: Final = (
    "id", "name", "mode", "status", "energy_pct", "memory_used_mb", "memory_capacity_mb", "tle",
    "lat_deg", "lon_deg", "alt_km", "in_sunlight", "node", "beam",
)  # fmt: skip


def present_sat(raw: dict[str, Any]) -> dict[str, Any]:
    """A satellite from the cluster (JSON-ready, ``updated_at`` in ms) in the API's shape."""
    sat = {key: raw.get(key) for key in _SAT_KEYS}
    updated = raw.get("updated_at")
    sat["updated_at"] = iso_ms(updated) if type(updated) is int else None
    return sat


def iso(value: datetime | None) -> str | None:
    """An aware datetime as RFC 3339 UTC with milliseconds."""
    if value is None:
        return None
    return iso_ms(int(value.timestamp() * 1000))


def items_of(item: Schema, **extra: Schema) -> Schema:
    """``{"items": [item...], ...extra}``."""
    return {
        "type": "object",
        "required": ["items", *extra],
        "properties": {"items": {"type": "array", "items": item}, **extra},
    }


def error_replies(*statuses: int) -> dict[int, tuple[str, Schema | None]]:
    descriptions = {
        400: "malformed request (not JSON, bad header)",
        401: "no token, or an unknown or revoked token",
        403: "the token's role is too weak",
        404: "not found",
        409: "conflict with the current state",
        413: "request body too large",
        415: "the body is not JSON",
        422: "a field is not valid: details.field names it",
        502: "the cluster answered something unexpected",
        503: "the cluster or the database is unavailable; try again",
    }
    return {status: (descriptions[status], ERROR) for status in statuses}
