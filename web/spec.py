"""Routes as data: each ``RouteSpec`` is both an aiohttp route and an OpenAPI operation.

A spec names its handler, the role it needs (None: public), its path and query parameters and
body as JSON Schemas, and its responses. ``add_routes`` registers specs on an app, each with
a ``Route`` as its aiohttp handler, which authenticates (401/403) and validates (422) every
request against the spec before the spec's handler runs, leaves the checked values in
``params(request)``, and turns the cluster's and the database's refusals into HTTP errors
(``refusals``).
A spec also says whether its route needs the database: ``"here"`` (the gateway queries it: the
request is refused at once while it is away, and cut if it goes away meanwhile) or ``"store"``
(BEAM's store node writes it: refused at once while it is away, never cut, since BEAM may be
committing; its ``store_unavailable`` is a ``database_unavailable`` too).
The OpenAPI document (``web.openapi``) is built from the same specs, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aiohttp import web

from py_nodes.db import DatabaseUnavailable, DbError, Role

from .auth import Authenticator, Principal
from .cluster import ClusterError, ClusterRefusal, ClusterUnavailable
from .dbgate import DatabaseGate
from .logs import sat_id_var
from .refusals import translate
from .schema import Schema, parse_param, parse_query, read_json

__all__ = ["AUTHENTICATOR", "GATE", "SPECS", "Params", "Reply", "Route", "RouteSpec", "add_routes", "params"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# status -> (description, JSON schema of the body or None for no body)
Reply = Mapping[int, tuple[str, Schema | None]]

SPECS: Final = web.AppKey("specs", dict)
AUTHENTICATOR: Final = web.AppKey("authenticator", Authenticator)
GATE: Final = web.AppKey("database_gate", DatabaseGate)
NeedsDb = Literal["here", "store"] | None


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str  # aiohttp form: /api/satellites/{sat_id}
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    role: Role | None  # None: public
    responses: Reply
    path_params: Mapping[str, Schema] = field(default_factory=dict)
    query: Mapping[str, Schema] = field(default_factory=dict)
    required_query: frozenset[str] = frozenset()
    body: Schema | None = None
    description: str = ""
    media_type: str = "application/json"  # of the success responses
    alt_media: Mapping[str, Schema] = field(default_factory=dict)  # other media of the success responses (CSV)
    query_token: bool = False  # also accept ?access_token= (the event stream)
    headers: Mapping[str, Schema] = field(default_factory=dict)  # request headers documented
    database: NeedsDb = None  # see the module's docstring


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times more, per request
class Params:
    path: dict[str, Any]
    query: dict[str, Any]
    body: Any
    principal: Principal | None


_PARAMS: Final = web.RequestKey("params", Params)


def params(request: web.Request) -> Params:
    """The checked parameters of a request whose route has a spec."""
    return request[_PARAMS]


_ACCESS_TOKEN: Final[Schema] = {"type": "string", "maxLength": 256}
_PATH_CACHE_MAX: Final = 4096  # checked path values kept per parameter (satellite ids: the fleet)


class Route:
    """A spec's aiohttp handler (``run``): authenticates (401/403), validates (422), leaves the
    checked values in ``params(request)``, runs the spec's handler and turns the cluster's and the
    database's refusals into HTTP errors. What a request needs of the spec (path schemas, the
    query schema with ``access_token``, the authenticator and the gate) is worked out once, when
    the route is added; a path parameter's checked values are remembered (checking is a pure
    function of the text)."""

    __slots__ = ("auth", "gate", "path_params", "query", "required", "spec")

    def __init__(self, spec: RouteSpec, auth: Authenticator, gate: DatabaseGate) -> None:
        self.spec = spec
        self.auth = auth
        self.gate = gate
        self.path_params = [(name, schema, dict[str, Any]()) for name, schema in spec.path_params.items()]
        query = dict(spec.query)
        if spec.query_token:
            query["access_token"] = _ACCESS_TOKEN
        self.query = query
        self.required = spec.required_query

    def path(self, match_info: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, schema, checked in self.path_params:
            text = match_info[name]
            try:
                values[name] = checked[text]
            except KeyError:
                value = parse_param(text, schema, name)  # raises for a bad value: never cached
                if len(checked) >= _PATH_CACHE_MAX:
                    checked.clear()
                checked[text] = values[name] = value
        return values

    async def run(self, request: web.Request) -> web.StreamResponse:
        spec = self.spec
        principal = None
        if spec.role is not None:
            # A header accepted within the token cache's time: no parsing, no coroutine.
            principal = self.auth.cached(request, spec.role)
            if principal is None:
                principal = await self.auth.require(request, spec.role, allow_query=spec.query_token)
        path = self.path(request.match_info) if self.path_params else {}
        if "sat_id" in path:
            sat_id_var.set(path["sat_id"])  # for the logs of this request
        # No query string and nothing required: nothing to parse (the common GET).
        query = parse_query(request.query, self.query, self.required) if request.query_string or self.required else {}
        body = await read_json(request, spec.body) if spec.body is not None else None
        request[_PARAMS] = Params(path, query, body, principal)
        gate = self.gate
        handler = spec.handler
        try:
            if spec.database == "here":
                return await gate.run(handler(request))
            if spec.database == "store":
                gate.check()
            return await handler(request)
        except DatabaseUnavailable as exc:
            gate.mark_down(str(exc))
            raise gate.error() from None
        except ClusterRefusal as exc:
            if exc.reason == "store_unavailable":
                raise gate.error() from None
            raise translate(exc, path.get("sat_id")) from None
        except ClusterUnavailable as exc:
            if spec.database == "store" and not gate.up:  # timed out because the database went away
                raise gate.error() from None
            raise translate(exc, path.get("sat_id")) from None
        except (ClusterError, DbError) as exc:
            raise translate(exc, path.get("sat_id")) from None


def add_routes(app: web.Application, specs: list[RouteSpec]) -> None:
    """Register ``specs`` on ``app`` (its ``AUTHENTICATOR`` and ``GATE`` set first): each route's
    handler is its ``Route``."""
    table: dict[Any, RouteSpec] = app.setdefault(SPECS, {})
    auth, gate = app[AUTHENTICATOR], app[GATE]
    for spec in specs:
        route = app.router.add_route(spec.method, spec.path, Route(spec, auth, gate).run, name=spec.operation_id)
        table[route] = spec
