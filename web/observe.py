"""The gateway's one middleware: request id, CORS preflight, errors as JSON, the duration
histogram, the access log. Authentication and validation are not here: each route's handler is
its spec's ``spec.Route``, composed once at startup, so a request passes one middleware layer
(profiled under load, every coroutine layer, lock and per-request lookup counted: issue 19).

The request id is the client's ``X-Request-ID`` when it is a sane token, else a new one; it is
sent back in ``X-Request-ID`` and set (with the satellite id, once a route knows it) in the log
context, so application logs of the request carry both. A handler that prepares a stream itself
(the event stream, CSV exports) does it with ``prepare_stream``, which adds the header first.
Every exception becomes the JSON error shape (``errors.response_for``).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from .accesslog import AccessLog
from .cors import Cors
from .errors import response_for
from .logs import request_id_var, sat_id_var
from .metrics import GatewayMetrics

__all__ = ["Front", "prepare_stream"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SANE_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PREFIX: Final = secrets.token_hex(4)
_COUNTER: Final = itertools.count(1)
CLIENT_GONE: Final = 499  # the client closed the connection first (nginx's code)
_ROUTES_MAX: Final = 4096  # route labels remembered (our routes: a few dozen)


async def prepare_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Prepare a response a handler streams itself, with the request id header."""
    request_id = request_id_var.get()
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id
    await response.prepare(request)


class Front:
    """The middleware (``Front(...).middleware``), with what it needs bound once."""

    def __init__(self, metrics: GatewayMetrics, access_log: AccessLog, cors: Cors | None = None) -> None:
        self._observe = metrics.observe
        self._record = access_log.record
        self._cors = cors
        self._labels: dict[Any, str] = {}  # route -> its label in metrics and logs

    def _label(self, request: web.Request) -> str:
        route = request.match_info.route
        label = self._labels.get(route)
        if label is None:
            resource = route.resource
            if resource is None:  # not found, method not allowed: a new route object each time
                return "unmatched"
            if len(self._labels) >= _ROUTES_MAX:
                self._labels.clear()
            label = self._labels[route] = resource.canonical
        return label

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        given = request.headers.get("X-Request-ID")
        request_id = given if given is not None and _SANE_ID.fullmatch(given) else f"{_PREFIX}-{next(_COUNTER)}"
        request_id_var.set(request_id)
        sat_id_var.set(None)
        status = CLIENT_GONE
        try:
            try:
                preflight = self._cors.preflight(request) if self._cors is not None else None
                response = preflight if preflight is not None else await handler(request)
            except Exception as exc:
                response = response_for(request, exc)
            status = response.status
            if not response.prepared:  # a stream prepared by its handler has it already
                response.headers["X-Request-ID"] = request_id
            return response
        finally:
            seconds = time.perf_counter() - start
            route = self._label(request)
            self._observe(request.method, route, status, seconds)
            self._record(
                (time.time(), request_id, request.method, request.path, route, status, seconds, request.remote, sat_id_var.get())
            )
