"""The outermost middleware: request id, errors as JSON, the duration histogram, the access log.

The request id is the client's ``X-Request-ID`` when it is a sane token, else a new one; it is
sent back in ``X-Request-ID`` and set (with the satellite id, once a route knows it) in the log
context, so application logs of the request carry both. Every exception becomes the JSON error
shape (``errors.response_for``).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from .errors import response_for
from .keys import ACCESS_LOG, METRICS
from .logs import request_id_var, sat_id_var

__all__ = ["REQUEST_ID", "middleware", "on_prepare"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SANE_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
REQUEST_ID: Final = web.RequestKey("request_id", str)
_PREFIX: Final = secrets.token_hex(4)
_COUNTER: Final = itertools.count(1)
CLIENT_GONE: Final = 499  # the client closed the connection first (nginx's code)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    given = request.headers.get("X-Request-ID")
    request_id = given if given is not None and _SANE_ID.fullmatch(given) else f"{_PREFIX}-{next(_COUNTER)}"
    request[REQUEST_ID] = request_id
    request_id_var.set(request_id)
    sat_id_var.set(None)
    status = CLIENT_GONE
    try:
        try:
            response = await handler(request)
        except Exception as exc:
            response = response_for(request, exc)
        status = response.status
        return response
    finally:
        seconds = time.perf_counter() - start
        route = _route(request)
        app = request.app
        app[METRICS].observe(request.method, route, status, seconds)
        app[ACCESS_LOG].record(
            (time.time(), request_id, request.method, request.path, route, status, seconds, request.remote, sat_id_var.get())
        )


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response gets, also streams prepared inside a handler."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id
