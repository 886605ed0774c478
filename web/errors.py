"""HTTP errors as exception classes, and the one JSON shape every error response has.

    {"error": {"code": "validation_failed", "message": "...", "details": {"field": "mode"}}}

Errors::

    ApiError                     status and code of the response; ``details`` is a JSON object
     ├── BadRequest              400 bad_request (malformed JSON, bad header)
     ├── Unauthorized            401 unauthorized (no token, unknown or revoked token)
     ├── Forbidden               403 forbidden (the token's role is too weak)
     ├── NotFound                404 not_found
     ├── MethodNotAllowed        405 method_not_allowed
     ├── Conflict                409 conflict (already exists, invalid mode transition)
     ├── PayloadTooLarge         413 payload_too_large
     ├── UnsupportedMediaType    415 unsupported_media_type
     ├── ValidationFailed        422 validation_failed; ``details.field`` names the field
     ├── BadGateway              502 cluster_error (the cluster answered something unexpected)
     └── ServiceUnavailable      503 unavailable (cluster or orbital node away)
          ├── DatabaseDown       503 database_unavailable, with Retry-After (PostgreSQL away)
          └── NoQuorum           503 no_quorum, with Retry-After (this node is cut off from most
                                 of the cluster: it accepts no command)

``response_for`` turns these, aiohttp's own HTTP exceptions and (as a last resort, logged as a
bug) anything else into that shape.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from aiohttp import web

__all__ = [
    "ApiError",
    "BadGateway",
    "BadRequest",
    "Conflict",
    "DatabaseDown",
    "Forbidden",
    "MethodNotAllowed",
    "NoQuorum",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "error_body",
    "error_response",
    "response_for",
]

log = logging.getLogger("stellarops.web")

class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details, headers={"WWW-Authenticate": 'Bearer realm="stellarops"'})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"

    def __init__(self, field: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {message}", details={"field": field, **(details or {})})
        self.field = field


class BadGateway(ApiError):
    status, code = 502, "cluster_error"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


class DatabaseDown(ServiceUnavailable):
    """The database is away: nothing was read or accepted; try again after ``Retry-After``."""

    code = "database_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 2) -> None:
        super().__init__(message, details={"reason": "database_unavailable"}, headers={"Retry-After": str(retry_after_s)})


class NoQuorum(ServiceUnavailable):
    """This node is on the minority side of a partition: nothing was accepted; try again later
    or through a gateway on the majority side."""

    code = "no_quorum"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message, details={"reason": "no_quorum"}, headers={"Retry-After": str(retry_after_s)})


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps(error_body(code, message, details), separators=(",", ":"), default=str)
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


# aiohttp's own exceptions (routing, body size) -> our codes.
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def response_for(request: web.Request, exc: Exception) -> web.Response:
    """The JSON error response for an exception a handler raised (a bug: 500, logged)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        if exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 404:
            message = f"no such resource: {request.path}"
        else:
            message = exc.reason
        return error_response(exc.status, _HTTP_CODES.get(exc.status, "http_error"), message, None, headers)
    log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal", "internal error (logged with the request id)")
