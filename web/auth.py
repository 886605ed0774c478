"""Bearer tokens and roles: ``viewer`` (read) < ``operator`` (commands, modes) < ``admin``.

``Authenticator.principal(secret)`` finds the token in the database (``py_nodes.db.ApiTokens``,
by SHA-256 hash) and caches the answer for ``cache_s`` seconds, so a busy client costs one query
per ``cache_s`` (a revoked token stops working within that time). Unknown secrets are cached
too (shorter, bounded) so that a client retrying a bad token does not load the database.
While the database is away (``DatabaseGate``), a token seen before keeps working from the cache
(even past ``cache_s``: it cannot have been revoked meanwhile, since revoking needs the
database); a token not in the cache gets 503 ``database_unavailable``, never 401 or 500.
``require(request, role)`` raises 401 without a valid token and 403 when its role is too weak;
``cached(request, role)`` answers without parsing for an ``Authorization`` header it accepted
within the cache time (the busy path: one dictionary lookup).
The token comes from ``Authorization: Bearer <token>``; for the event stream only (browsers'
EventSource cannot set headers) also from the ``access_token`` query parameter.

With ``anonymous_role="viewer"`` (opt-in, ``STELLAROPS_HTTP_ANONYMOUS_ROLE``) a request that sends
no token at all is the principal ``anonymous`` on viewer routes; a token that is sent must still be
valid (a typo is an error, not a silent downgrade), and stronger roles always need a token.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from py_nodes.db import ApiTokens, DatabaseUnavailable, Role, role_rank

from .dbgate import DatabaseGate
from .errors import DatabaseDown, Forbidden, Unauthorized

__all__ = ["Authenticator", "Principal", "bearer_secret"]

MAX_CACHED: Final = 10_000
_RANK: Final = {role: role_rank(role) for role in ("viewer", "operator", "admin")}
NEGATIVE_CACHE_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int | None  # None: anonymous
    name: str
    role: Role

    @property
    def anonymous(self) -> bool:
        return self.token_id is None

    @property
    def actor(self) -> str:
        """Who made a change, for the audit log."""
        return "anonymous" if self.token_id is None else f"token:{self.token_id}:{self.name}"[:128]


def bearer_secret(request: web.Request, *, allow_query: bool = False) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return secret.strip()
    if allow_query:
        return request.query.get("access_token") or None
    return None


class Authenticator:
    def __init__(
        self, tokens: ApiTokens, gate: DatabaseGate, *, cache_s: float = 10.0, anonymous_role: Role | None = None
    ) -> None:
        self._tokens = tokens
        self._gate = gate
        self._cache_s = cache_s
        self._anonymous = None if anonymous_role is None else Principal(None, "anonymous", anonymous_role)
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        # Authorization headers accepted (until, principal): the busy path skips parsing them.
        self._headers: dict[str, tuple[float, Principal]] = {}
        self._lookups: dict[str, asyncio.Future[Principal | None]] = {}  # in flight, by secret

    async def principal(self, secret: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(secret)
        if hit is not None and hit[0] > now:
            return hit[1]
        # One lookup per secret at a time: when an entry expires under load, the requests of that
        # moment wait for the same query (each starting its own grew the pool by a connection).
        lookup = self._lookups.get(secret)
        if lookup is None:
            lookup = self._lookups[secret] = asyncio.ensure_future(self._lookup(secret, hit))
            lookup.add_done_callback(functools.partial(self._looked_up, secret))
        return await asyncio.shield(lookup)

    async def _lookup(self, secret: str, hit: tuple[float, Principal | None] | None) -> Principal | None:
        try:
            token = await self._gate.run(self._tokens.lookup(secret))
        except (DatabaseUnavailable, DatabaseDown) as exc:
            if isinstance(exc, DatabaseUnavailable):
                self._gate.mark_down(str(exc))
            if hit is not None and hit[1] is not None:  # seen before: cannot have been revoked since
                return hit[1]
            raise self._gate.error() from None
        found = None if token is None else Principal(token.id, token.name, token.role)
        self._cache[secret] = (time.monotonic() + (self._cache_s if found else NEGATIVE_CACHE_S), found)
        self._cache.move_to_end(secret)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
        return found

    def _looked_up(self, secret: str, lookup: asyncio.Future[Principal | None]) -> None:
        if self._lookups.get(secret) is lookup:
            del self._lookups[secret]
        if not lookup.cancelled():
            lookup.exception()  # retrieved: every waiter may have gone (cancelled) meanwhile

    def forget(self) -> None:
        """Drop every cached answer (after a revocation); requests from now on look up afresh."""
        self._cache.clear()
        self._headers.clear()
        self._lookups.clear()

    def cached(self, request: web.Request, role: Role) -> Principal | None:
        """The principal of a request whose ``Authorization`` header ``require`` accepted less
        than ``cache_s`` ago, when its role suffices; None: ask ``require`` (which answers, or
        raises, as always)."""
        header = request.headers.get("Authorization")
        if header is None:
            return None
        hit = self._headers.get(header)
        if hit is None or hit[0] <= time.monotonic():
            return None
        principal = hit[1]
        return principal if _RANK[principal.role] >= _RANK[role] else None

    async def require(self, request: web.Request, role: Role, *, allow_query: bool = False) -> Principal:
        secret = bearer_secret(request, allow_query=allow_query)
        if secret is None:
            if self._anonymous is not None and _RANK[self._anonymous.role] >= _RANK[role]:
                return self._anonymous
            raise Unauthorized("this endpoint needs a token: send 'Authorization: Bearer <token>'")
        principal = await self.principal(secret)
        if principal is None:
            raise Unauthorized("unknown or revoked token")
        header = request.headers.get("Authorization")
        hit = self._cache.get(secret)
        if header is not None and hit is not None and hit[1] is principal:  # until the secret's entry expires
            if len(self._headers) >= MAX_CACHED:
                self._headers.clear()
            self._headers[header] = (hit[0], principal)
        if _RANK[principal.role] < _RANK[role]:
            raise Forbidden(
                f"this needs the {role} role; the token has {principal.role}",
                details={"required_role": role, "role": principal.role},
            )
        return principal
