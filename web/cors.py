"""CORS, off unless origins are configured (``STELLAROPS_CORS_ORIGINS``; ``*`` allows any).

With origins set, a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed
origin is answered 204 (``preflight``, which the gateway's middleware asks first), and every
response to an allowed origin carries ``Access-Control-Allow-Origin`` (set when the response is
prepared, so streams get it too).
Credentials (cookies) are never allowed: the API uses bearer tokens.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

__all__ = ["Cors"]

ALLOW_METHODS: Final = "GET, POST, PATCH, DELETE"
ALLOW_HEADERS: Final = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-ID"
EXPOSE_HEADERS: Final = "Location, X-Request-ID"


class Cors:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self.origins = frozenset(origins)
        self.any = "*" in self.origins

    def allowed(self, origin: str | None) -> bool:
        return origin is not None and (self.any or origin in self.origins)

    def preflight(self, request: web.Request) -> web.Response | None:
        """The answer to a preflight from an allowed origin (the middleware returns it instead of
        calling the handler); None for any other request."""
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        if not self.allowed(request.headers.get("Origin")):
            return None
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if self.allowed(origin):
            assert origin is not None
            response.headers["Access-Control-Allow-Origin"] = "*" if self.any else origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            if not self.any:
                response.headers["Vary"] = "Origin"
