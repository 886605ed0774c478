"""What the cluster and the database refuse, as HTTP errors (``spec.guard`` translates them).

BEAM's ``{error, Reason}`` terms (see the README's shell API and the orbital node's refusals)
arrive as ``ClusterRefusal`` with the reason in JSON form; each known reason gets its status and
the field it is about. An unknown reason is a 502: the gateway and the control node disagree.
"""

from __future__ import annotations

import logging
from typing import Any

from py_nodes.db import DatabaseUnavailable, DbError
from py_nodes.db import NotFound as DbNotFound
from py_nodes.db import ValidationError as DbValidationError
from py_nodes.jsonterms import JsonValue

from .cluster import ClusterError, ClusterRefusal, ClusterUnavailable
from .errors import (
    ApiError,
    BadGateway,
    Conflict,
    NoQuorum,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)

__all__ = ["from_db", "from_refusal", "translate"]

log = logging.getLogger("stellarops.web")

_UNAVAILABLE = {
    "store_unavailable": "the database is unavailable: nothing was accepted; try again",
    "no_orbital_node": "no orbital node is up to compute this; try again",
    "not_running": "the control plane is not running",
    "timeout": "the satellite did not answer in time",
}


def from_refusal(reason: JsonValue, subject: str | None = None) -> ApiError:
    """The HTTP error for BEAM's ``{error, Reason}`` (``subject``: the satellite id, if any)."""
    if isinstance(reason, str):
        if reason == "not_found":
            return NotFound(f"no satellite {subject!r}" if subject else "not found")
        if reason == "already_exists":
            return Conflict(f"satellite {subject!r} already exists" if subject else "already exists", details={"field": "id"})
        if reason == "no_quorum":
            return NoQuorum("this node is cut off from most of the cluster: nothing was accepted; "
                            "try again, or through another host's gateway")
        if reason in _UNAVAILABLE:
            return ServiceUnavailable(_UNAVAILABLE[reason], details={"reason": reason})
        if reason == "bad_window":
            return ValidationFailed("to", "must be after from")
        return BadGateway(f"the cluster refused: {reason}", details={"reason": reason})
    if isinstance(reason, list) and reason and isinstance(reason[0], str):
        tag, args = reason[0], reason[1:]
        first = args[0] if args else None
        if tag in ("bad_field", "missing_field", "bad_request") and isinstance(first, str):
            return ValidationFailed(first, "is missing" if tag == "missing_field" else "is not valid")
        if tag == "unknown_fields" and isinstance(first, list) and first:
            return ValidationFailed(str(first[0]), "unknown field")
        if tag == "bad_tle":
            if isinstance(first, list) and len(first) == 2:
                return ValidationFailed(f"tle.{first[0]}", f"bad two-line element ({first[1]})")
            return ValidationFailed("tle", f"bad two-line elements ({first})")
        if tag == "bad_mode":
            return ValidationFailed("mode", "is not a mode")
        if tag == "invalid_transition" and len(args) == 2:
            return Conflict(
                f"a satellite in mode {args[0]} cannot go to {args[1]}",
                details={"reason": "invalid_transition", "from": args[0], "to": args[1]},
            )
        if tag == "unknown_command":
            return ValidationFailed("kind", "unknown command kind")
        if tag == "bad_args":
            return ValidationFailed("args", "bad arguments for this command kind")
        if tag == "actor_down":
            return ServiceUnavailable("the satellite's actor is restarting; try again", details={"reason": "actor_down"})
        if tag == "too_large" and isinstance(first, str):
            return ValidationFailed(first, f"too large (at most {args[1] if len(args) > 1 else '?'})")
        if tag == "window_too_long":
            return ValidationFailed("to", f"the window is longer than {first} ms")
        if tag in ("unknown_station", "bad_station"):
            return ValidationFailed("station", f"{tag.replace('_', ' ')}")
        if tag == "unknown_satellite" and args:  # a satellite named in a query: like a path's, 404
            return NotFound(f"no satellite {first!r}", details={"field": "sat", "reason": tag})
        if tag in ("no_tle", "bad_tle") and args:  # it exists but has no usable orbit (as /track says)
            return Conflict(f"satellite {first!r} has no usable orbit ({tag})", details={"field": "sat", "reason": tag})
        if tag == "beam_unavailable":
            return ServiceUnavailable("the orbital node cannot reach the control node", details={"reason": tag})
    return BadGateway("the cluster refused with an unexpected reason", details={"reason": _short(reason)})


def from_db(exc: DbError) -> ApiError:
    if isinstance(exc, DatabaseUnavailable):
        return ServiceUnavailable("the database is unavailable; try again", details={"reason": "database_unavailable"})
    if isinstance(exc, DbNotFound):
        return NotFound(str(exc), details={"field": exc.field})
    if isinstance(exc, DbValidationError):
        return ValidationFailed(exc.field, exc.problem)
    log.error("database error: %s", exc)
    return ServiceUnavailable("the database failed", details={"reason": "database_error"})


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 200 else text[:200]


def translate(exc: ClusterError | DbError, sat_id: str | None) -> ApiError:
    """The HTTP error for a cluster or database failure (``sat_id``: the request's satellite)."""
    if isinstance(exc, ClusterRefusal):
        return from_refusal(exc.reason, sat_id)
    if isinstance(exc, ClusterUnavailable):
        return ServiceUnavailable(str(exc), details={"reason": "cluster_unavailable"})
    if isinstance(exc, ClusterError):
        return BadGateway(str(exc))
    return from_db(exc)
