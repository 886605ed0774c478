"""/api/satellites/{id}/commands: submit (202 once it is in the ledger) and history."""

from __future__ import annotations

import re
from typing import Any, Final

from aiohttp import web

from py_nodes.db import Command, CommandLedger
from py_nodes.vocabulary import COMMAND_KINDS

from ..errors import ValidationFailed
from ..keys import CLUSTER, DATABASE
from ..logs import sat_id_var
from ..models import MODE, TIME, error_replies, iso, items_of
from ..respond import json_response
from ..spec import RouteSpec, params
from .satellites import SAT_PATH

__all__ = ["ROUTES"]

KINDS: Final = list(COMMAND_KINDS)
_KEY: Final = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII, as HTTP header values are
NO_ARGS_KINDS: Final = [k for k in KINDS if k != "set_mode"]
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
            "required": ["kind"],
            "additionalProperties": False,
            "properties": {
                "kind": {"type": "string", "enum": NO_ARGS_KINDS},
                "args": {"type": "object", "additionalProperties": False, "properties": {}, "description": "none: {} or left out"},
            },
        },
    ],
    "discriminator": {"propertyName": "kind"},
    "description": "set_mode needs args {\"mode\": M}; the other kinds take no arguments",
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
        "status": {"type": "string", "enum": ["queued", "sent", "done", "failed", "expired"]},
        "attempts": {"type": "integer"},
        "result": {},
        "submitted_by": {"type": "string"},
        "created_at": TIME,
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
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
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise ValidationFailed("Idempotency-Key", "expected 1..128 visible ASCII characters")
    command_id = await request.app[CLUSTER].command(sat_id, kind, args, key)
    body = {"id": command_id, "satellite_id": sat_id, "kind": kind, "status": "accepted"}
    return json_response(body, status=202, headers={"Location": f"/api/satellites/{sat_id}/commands"})


async def list_commands(request: web.Request) -> web.StreamResponse:
    p = params(request)
    sat_id = p.path["sat_id"]
    sat_id_var.set(sat_id)
    history = await CommandLedger(request.app[DATABASE]).history(sat_id, limit=p.query.get("limit", 100))
    return json_response({"items": [_command_json(c) for c in history]})


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
        "GET", "/api/satellites/{sat_id}/commands", list_commands, "listCommands", "A satellite's commands, newest first",
        "commands", "viewer", {200: ("commands", items_of(COMMAND)), **error_replies(401, 403, 422, 503)},
        path_params=SAT_PATH, query={"limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        database="here",
    ),
]  # fmt: skip
