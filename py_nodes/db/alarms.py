"""Alarms: raised by satellites (low energy, memory full...), cleared by an operator or by the system.

At most one alarm of a kind is active per satellite: raising it again returns the active one,
so a repeated event does not pile up rows. Clearing is audited (who acknowledged what).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

import psycopg
from psycopg.rows import class_row

from .audit import append_audit
from .errors import NotFound, ValidationError
from .pool import Connection, Database
from .values import check_actor, check_text, refused

__all__ = ["AlarmRecord", "Alarms", "Severity"]

Severity = Literal["info", "warning", "critical"]
_SEVERITIES: Final = frozenset(get_args(Severity))
_KIND: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_COLUMNS: Final = "id, satellite_id, kind, severity, message, raised_at, cleared_at, cleared_by"


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    id: int
    satellite_id: str
    kind: str  # e.g. "low_energy", "memory_full"
    severity: Severity
    message: str
    raised_at: datetime
    cleared_at: datetime | None
    cleared_by: str | None

    @property
    def active(self) -> bool:
        return self.cleared_at is None


class Alarms:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def raise_alarm(
        self, satellite_id: str, kind: str, severity: Severity, message: str = ""
    ) -> tuple[AlarmRecord, bool]:
        """``(alarm, True)`` when raised now, ``(the active one, False)`` when already active."""
        check_text(kind, "kind", max_chars=64, pattern=_KIND)
        if severity not in _SEVERITIES:
            raise ValidationError("severity", f"{severity!r:.40} is not one of {', '.join(sorted(_SEVERITIES))}")
        if not isinstance(message, str) or len(message) > 1000:
            raise ValidationError("message", "expected a string of at most 1000 characters")
        for _ in range(3):  # the active alarm may be cleared between our insert and select
            async with self._db.transaction() as conn:
                result = await _raise_once(conn, satellite_id, kind, severity, message)
            if result is not None:
                return result
        raise ValidationError("kind", f"alarm {kind!r} of {satellite_id!r} is being raised and cleared concurrently")

    async def clear(self, alarm_id: int, *, actor: str) -> tuple[AlarmRecord, bool]:
        """``(alarm, True)`` when cleared now, ``(alarm, False)`` when it was already cleared."""
        check_actor(actor)
        async with self._db.transaction() as conn:
            cur = conn.cursor(row_factory=class_row(AlarmRecord))
            await cur.execute(
                "UPDATE alarms SET cleared_at = greatest(now(), raised_at), cleared_by = %s"
                f" WHERE id = %s AND cleared_at IS NULL RETURNING {_COLUMNS}",
                (actor, alarm_id),
            )
            cleared = await cur.fetchone()
            if cleared is None:
                existing = await _get(conn, alarm_id)
                if existing is None:
                    raise NotFound("alarm_id", f"no alarm {alarm_id}")
                return existing, False
            details = {"satellite_id": cleared.satellite_id, "kind": cleared.kind}
            await append_audit(conn, actor, "alarm.clear", "alarm", str(alarm_id), details)
        return cleared, True

    async def active(self, satellite_id: str | None = None) -> list[AlarmRecord]:
        """Active alarms, most severe first then oldest first."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(AlarmRecord))
            await cur.execute(
                f"SELECT {_COLUMNS} FROM alarms WHERE cleared_at IS NULL"
                " AND (%(sat)s::text IS NULL OR satellite_id = %(sat)s)"
                " ORDER BY array_position(ARRAY['critical', 'warning', 'info'], severity), raised_at, id",
                {"sat": satellite_id},
            )
            return await cur.fetchall()


async def _raise_once(
    conn: Connection, satellite_id: str, kind: str, severity: Severity, message: str
) -> tuple[AlarmRecord, bool] | None:
    cur = conn.cursor(row_factory=class_row(AlarmRecord))
    try:
        await cur.execute(
            "INSERT INTO alarms (satellite_id, kind, severity, message) VALUES (%s, %s, %s, %s)"
            f" ON CONFLICT (satellite_id, kind) WHERE cleared_at IS NULL DO NOTHING RETURNING {_COLUMNS}",
            (satellite_id, kind, severity, message),
        )
    except psycopg.errors.ForeignKeyViolation:
        raise NotFound("satellite_id", f"no satellite {satellite_id!r}") from None
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise refused(exc) from None
    raised = await cur.fetchone()
    if raised is not None:
        return raised, True
    await cur.execute(
        f"SELECT {_COLUMNS} FROM alarms WHERE satellite_id = %s AND kind = %s AND cleared_at IS NULL",
        (satellite_id, kind),
    )
    active = await cur.fetchone()
    return None if active is None else (active, False)


async def _get(conn: Connection, alarm_id: int) -> AlarmRecord | None:
    cur = conn.cursor(row_factory=class_row(AlarmRecord))
    await cur.execute(f"SELECT {_COLUMNS} FROM alarms WHERE id = %s", (alarm_id,))
    return await cur.fetchone()
