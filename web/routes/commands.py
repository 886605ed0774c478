"""/api/satellites/{id}/commands: submit (202 once it is in the ledger) and history; /api/commands:
the fleet's history (filters, keyset pages, CSV export)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from py_nodes.db import Command
from py_nodes.db.command_history import (
    CSV_COLUMNS,
    CommandFilter,
    Cursor,
    command_csv,
    command_page,
)
from py_nodes.vocabulary import COMMAND_KINDS

from ..elements import from_tle_pair
from ..errors import ValidationFailed
from ..export import CSV_MEDIA, FORMAT_QUERY, stream_csv, wants_csv
from ..keys import CLUSTER, DATABASE
from ..logs import sat_id_var
from ..models import MODE, TIME, TIME_QUERY, TLE, error_replies, iso, items_of
from ..respond import json_response
from ..schema import parse_datetime
from ..spec import GATE, RouteSpec, params
from .satellites import SAT_PATH

__all__ = ["ROUTES"]

KINDS: Final = list(COMMAND_KINDS)
STATUSES: Final = ["queued", "sent", "done", "failed", "expired"]
CURSOR_PATTERN: Final = "^-?[0-9]{1,16}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_KEY: Final = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII, as HTTP header values are
NO_ARGS_KINDS: Final = [k for k in KINDS if k not in ("set_mode", "set_tle")]
BODY: Final = {
    "oneOf": [
        {
            "type": "object",
            "required": ["kind", "args"],
            "additionalProperties": False,
            "properties": {
                "kind": {"type": "string", "enum": ["set_mode"]},
                "args": {"type": "object", "required": ["mode"], "additionalProperties": False, "properties": {"mode": MODE}},
            },
        },
        {
            "type": "object",
            "required": ["kind", "args"],
            "additionalProperties": False,
            "properties": {
                "kind": {"type": "string", "enum": ["set_tle"]},
                "args": {**TLE, "description": "new two-line elements (PUT /api/satellites/{sat_id}/tle also takes OMM)"},
            },
        },
        {
            "type": "object",
            "required": ["kind"],
            "additionalProperties": False,
            "properties": {
                "kind": {"type": "string", "enum": NO_ARGS_KINDS},
                "args": {"type": "object", "additionalProperties": False, "properties": {}, "description": "none: {} or left out"},
            },
        },
    ],
    "discriminator": {"propertyName": "kind"},
    "description": "set_mode needs args {\"mode\": M}, set_tle {\"line1\", \"line2\"} (a bad TLE: 422 on args.line1/args.line2 with details.line and details.column); the other kinds take no arguments",
}
ACCEPTED: Final = {
    "type": "object",
    "required": ["id", "satellite_id", "kind", "status"],
    "properties": {
        "id": {"type": "string", "description": "the command id (in the ledger)"},
        "satellite_id": {"type": "string"},
        "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted"]},
    },
}
COMMAND: Final = {
    "type": "object",
    "required": ["id", "satellite_id", "kind", "args", "status", "attempts", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "satellite_id": {"type": "string"},
        "kind": {"type": "string"},
        "args": {"type": "object"},
        "idempotency_key": {"type": "string"},
        "status": {"type": "string", "enum": STATUSES},
        "attempts": {"type": "integer"},
        "result": {},
        "submitted_by": {"type": "string"},
        "created_at": TIME,
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
PAGE: Final = items_of(COMMAND, next={"type": ["string", "null"], "description": "the next page's cursor; null: no more"})
IDEMPOTENCY_HEADER: Final = {
    "Idempotency-Key": {
        "type": "string",
        "pattern": "^[\\x21-\\x7e]{1,128}$",
        "description": "the same key again (for this satellite) returns the first command's id and creates nothing",
    }
}


def _command_json(c: Command) -> dict[str, Any]:
    return {
        "id": str(c.id), "satellite_id": c.satellite_id, "kind": c.kind, "args": c.args,
        "idempotency_key": c.idempotency_key, "status": c.status, "attempts": c.attempts, "result": c.result,
        "submitted_by": c.submitted_by, "created_at": iso(c.created_at), "sent_at": iso(c.sent_at),
        "finished_at": iso(c.finished_at),
    }  # fmt: skip


async def submit_command(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    kind: str = p.body["kind"]
    args: dict[str, Any] = p.body.get("args", {})  # the body's schema checked them per kind
    if kind == "set_tle":  # the checks JSON Schema cannot state: 422 naming the line and column
        from_tle_pair(args["line1"], args["line2"], "args")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise ValidationFailed("Idempotency-Key", "expected 1..128 visible ASCII characters")
    by = None if p.principal is None else p.principal.actor
    command_id = await request.app[CLUSTER].command(sat_id, kind, args, key, by)
    body = {"id": command_id, "satellite_id": sat_id, "kind": kind, "status": "accepted"}
    return json_response(body, status=202, headers={"Location": f"/api/satellites/{sat_id}/commands"})


HISTORY_QUERY: Final = {
    "kind": {"type": "array", "items": {"type": "string", "enum": KINDS}, "minItems": 1, "maxItems": len(KINDS), "description": "any of these kinds (comma-separated)"},
    "status": {"type": "array", "items": {"type": "string", "enum": STATUSES}, "minItems": 1, "maxItems": len(STATUSES), "description": "any of these statuses (comma-separated)"},
    "submitted_by": {"type": "string", "minLength": 1, "maxLength": 128, "description": "who submitted them (the token's name)"},
    "from": {**TIME_QUERY, "description": "submitted at or after"},
    "to": {**TIME_QUERY, "description": "submitted before"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100, "description": "a page's commands at most (JSON)"},
    "cursor": {"type": "string", "pattern": CURSOR_PATTERN, "description": "`next` of the previous page: the commands older than it"},
    **FORMAT_QUERY,
}  # fmt: skip
HISTORY_DESCRIPTION: Final = (
    "Filters combine (and); `from` < `to` (else 422 on `from`). A page ends with `next`, the cursor of the "
    "following (older) page, or null. With `format=csv` (or `Accept: text/csv`) every matching command comes as a "
    "CSV attachment, streamed, newest first (`limit` and `cursor` do not apply)."
)
CSV_BODY: Final = {"type": "string", "description": f"CSV with a header line: {', '.join(CSV_COLUMNS)}"}


def _filter(query: dict[str, Any], sat_id: str | None) -> CommandFilter:
    since, until = query.get("from"), query.get("to")
    start = parse_datetime(since, "from") if since is not None else None
    end = parse_datetime(until, "to") if until is not None else None
    if start is not None and end is not None and start >= end:
        raise ValidationFailed("from", "must be before to")
    return CommandFilter(sat_id, query.get("kind", ()), query.get("status", ()), query.get("submitted_by"), start, end)


async def _history(request: web.Request, sat_id: str | None) -> web.StreamResponse:
    p = params(request)
    which = _filter(p.query, sat_id)
    db, gate = request.app[DATABASE], request.app[GATE]
    if wants_csv(request, p.query):
        name = f"commands_{sat_id or 'fleet'}_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.csv"
        return await stream_csv(request, name, command_csv(db, which), gate)
    after = Cursor.decode(p.query["cursor"]) if "cursor" in p.query else None
    page, following = await gate.run(command_page(db, which, limit=p.query.get("limit", 100), after=after))
    return json_response({"items": [_command_json(c) for c in page], "next": following and following.encode()})


async def list_commands(request: web.Request) -> web.StreamResponse:
    sat_id = params(request).path["sat_id"]
    sat_id_var.set(sat_id)
    return await _history(request, sat_id)


async def list_fleet_commands(request: web.Request) -> web.StreamResponse:
    return await _history(request, None)


ROUTES: Final = [
    RouteSpec(
        "POST", "/api/satellites/{sat_id}/commands", submit_command, "submitCommand",
        "Send a command: 202 with its id once it is in the ledger", "commands", "operator",
        {202: ("accepted: in the ledger, executed at least once, applied exactly once", ACCEPTED),
         **error_replies(400, 401, 403, 404, 413, 415, 422, 503)},
        path_params=SAT_PATH, body=BODY, headers=IDEMPOTENCY_HEADER, database="store",
        description="The outcome arrives as a `command` event (GET /api/events) and in the command history.",
    ),
    RouteSpec(
        "GET", "/api/satellites/{sat_id}/commands", list_commands, "listCommands",
        "A satellite's command history, newest first, filtered, a page at a time or as CSV",
        "commands", "viewer", {200: ("commands", PAGE), **error_replies(401, 403, 422, 503)},
        path_params=SAT_PATH, query=HISTORY_QUERY, alt_media={CSV_MEDIA: CSV_BODY}, description=HISTORY_DESCRIPTION,
    ),
    RouteSpec(
        "GET", "/api/commands", list_fleet_commands, "listFleetCommands",
        "Every satellite's command history, newest first, filtered, a page at a time or as CSV",
        "commands", "viewer", {200: ("commands", PAGE), **error_replies(401, 403, 422, 503)},
        query=HISTORY_QUERY, alt_media={CSV_MEDIA: CSV_BODY}, description=HISTORY_DESCRIPTION,
    ),
]  # fmt: skip
