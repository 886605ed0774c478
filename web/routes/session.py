"""GET /api/session: who the request's token (or the anonymous viewer) is.

The dashboard calls it to check a pasted token and to learn its role, so that it shows only the
actions the role may take (the routes still enforce them)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ..models import error_replies
from ..respond import json_response
from ..spec import RouteSpec, params

__all__ = ["ROUTES"]

SESSION: Final = {
    "type": "object",
    "required": ["role", "name", "anonymous"],
    "properties": {
        "role": {"type": "string", "enum": ["viewer", "operator", "admin"]},
        "name": {"type": "string", "description": "the token's label, or `anonymous`"},
        "anonymous": {"type": "boolean", "description": "no token was sent (the gateway allows anonymous viewers)"},
    },
}


async def session(request: web.Request) -> web.StreamResponse:
    principal = params(request).principal
    assert principal is not None
    return json_response({"role": principal.role, "name": principal.name, "anonymous": principal.anonymous})


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/session", session, "getSession", "The role and name of the request's token", "session", "viewer",
        {200: ("who is asking", SESSION), **error_replies(401, 422)},
        description="401 for an unknown or revoked token. Without any token: 401, unless the gateway allows "
        "anonymous viewers (STELLAROPS_HTTP_ANONYMOUS_ROLE=viewer), then the anonymous viewer.",
    ),
]  # fmt: skip
