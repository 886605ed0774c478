"""Checks and conversions for values on their way into SQL, and SQL's refusals turned into fields.

The repositories check what callers are likely to get wrong with messages naming the field; the
schema's CHECKs and keys remain the backstop, and ``refused()`` names the field they protect.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from orbital.timescale import ms_from_utc, utc_from_ms

from .errors import NotFound, ValidationError

__all__ = [
    "check_actor",
    "check_number",
    "check_text",
    "datetime_from_ms",
    "json_object",
    "json_value",
    "ms_from_datetime",
    "refused",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
# PostgreSQL names a column's constraint TABLE_COLUMN_check (or _fkey, _key, _not_null).
_COLUMN_CONSTRAINT: Final = re.compile(r"(?P<column>[a-z0-9_]+?)_(?:check|fkey|key|not_null)")
# Named table constraints -> the field the caller should fix.
_CONSTRAINT_FIELDS: Final[Mapping[str, str]] = {
    "satellites_memory_within_capacity": "memory_used_mb",
    "satellites_tle_pair": "tle",
    "telemetry_position_complete": "position",
    "commands_idempotency_key_unique": "idempotency_key",
    "tasks_window_complete": "window",
    "tasks_window_ordered": "window",
    "tasks_attempts_within_retries": "attempts",
    "alarms_cleared_after_raised": "cleared_at",
}
_TABLES: Final = ("satellites", "telemetry", "commands", "ground_stations", "tasks", "alarms", "audit_log")


def datetime_from_ms(ms: int, field: str = "updated_at") -> datetime:
    """ms since the Unix epoch (the protocol's times) -> an aware UTC datetime, exactly."""
    if type(ms) is not int:
        raise ValidationError(field, f"expected an integer of ms since the epoch, got {type(ms).__name__}")
    try:
        return utc_from_ms(ms)
    except OverflowError:
        raise ValidationError(field, f"{ms} ms since the epoch is out of range") from None


def ms_from_datetime(value: datetime) -> int:
    """An aware datetime -> whole ms since the Unix epoch (exact for ms-precision values)."""
    return ms_from_utc(value)


def check_text(value: object, field: str, *, max_chars: int, pattern: re.Pattern[str] | None = None) -> str:
    """A non-empty str of at most ``max_chars`` characters, matching ``pattern`` if given."""
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a string, got {type(value).__name__}")
    if not 1 <= len(value) <= max_chars:
        raise ValidationError(field, f"expected 1..{max_chars} characters, got {len(value)}")
    if "\x00" in value:
        raise ValidationError(field, "contains a NUL character")
    if pattern is not None and not pattern.fullmatch(value):
        raise ValidationError(field, f"{value!r} does not match {pattern.pattern}")
    return value


def check_number(
    value: object, field: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    """A finite int or float in [low, high] (ends excluded with ``low_open``/``high_open``), as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"expected a number, got {type(value).__name__}")
    number = float(value)
    inside = (low < number if low_open else low <= number) and (number < high if high_open else number <= high)
    if not (math.isfinite(number) and inside):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValidationError(field, f"{value} is outside {interval}")
    return number


def check_actor(actor: object) -> str:
    """Who is making a change (a user, a token name, ``system``): recorded in the audit log."""
    return check_text(actor, "actor", max_chars=128)


def json_value(value: Any, field: str) -> Jsonb:
    """``value`` as jsonb, or ValidationError when it is not plain JSON (NaN included)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field, f"not JSON-serialisable: {exc}") from None
    return Jsonb(value)


def json_object(value: Any, field: str) -> Jsonb:
    """Like ``json_value`` but only a JSON object (a dict with str keys)."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(field, f"expected a JSON object (a dict with string keys), got {type(value).__name__}")
    return json_value(dict(value), field)


def refused(exc: psycopg.Error) -> ValidationError:
    """The ValidationError for an integrity or data error the database raised on bad input."""
    diag = exc.diag
    constraint = diag.constraint_name or ""
    field = diag.column_name or _CONSTRAINT_FIELDS.get(constraint) or _field_of(constraint) or "value"
    detail = (diag.message_primary or str(exc)).strip()
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        return NotFound(field, f"refers to something that does not exist ({detail})")
    return ValidationError(field, detail)


def _field_of(constraint: str) -> str | None:
    for table in _TABLES:
        prefix = table + "_"
        if constraint.startswith(prefix):
            match = _COLUMN_CONSTRAINT.fullmatch(constraint.removeprefix(prefix))
            return match["column"] if match else None
    return None
