"""Alarms: raised by limits (``py_nodes.limits``, judged by the store node), by satellites and by
the scheduler; acknowledged, shelved and cleared by operators or by the values coming back.

The lifecycle is ``py_nodes.alarm_states`` (pure); this module stores what it decides. At most
one open (not cleared) alarm of a kind per satellite: raising it again returns or escalates the
open one, so a repeated event does not pile up rows. Every transition is a row of
``alarm_transitions`` (who, when, comment, value), written in the same transaction; an
operator's acknowledgement, shelving and clearing are audited too. Each change returns the
alarm and the transitions it made, which the caller publishes (``alarm`` events).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, get_args

import psycopg
from psycopg.rows import class_row

from py_nodes import alarm_states
from py_nodes.alarm_states import AlarmStateError, Status, Transition
from py_nodes.limits import Change

from .audit import append_audit
from .errors import NotFound, ValidationError
from .pool import Connection, Database
from .values import check_actor, check_text, refused

__all__ = ["MAX_SHELVE_S", "AlarmConflict", "AlarmRecord", "AlarmTransition", "Alarms", "Severity"]

Severity = Literal["info", "warning", "critical"]
_SEVERITIES: Final = frozenset(get_args(Severity))
_STATES: Final = frozenset(get_args(alarm_states.State))
_KIND: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_SHELVE_S: Final = 7 * 24 * 3600
SYSTEM: Final = "system"
_COLUMNS: Final = (
    "id, satellite_id, kind, severity, message, raised_at, cleared_at, cleared_by, state, active, latched, value,"
    " acknowledged_at, acknowledged_by, comment, shelved_until, shelved_by, updated_at"
)
_ORDER: Final = " ORDER BY (state = 'cleared'), array_position(ARRAY['critical', 'warning', 'info'], severity), raised_at, id"


class AlarmConflict(ValidationError):
    """The request makes no sense in the alarm's state (HTTP 409); nothing changed."""


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    id: int
    satellite_id: str
    kind: str  # e.g. "low_energy", "memory_full", "alt_km_low", "task_failed"
    severity: Severity
    message: str
    raised_at: datetime
    cleared_at: datetime | None
    cleared_by: str | None
    state: alarm_states.State
    active: bool  # the condition (value out of limits) still holds
    latched: bool
    value: float | None  # the value at the last raise, escalation or return
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    comment: str | None  # the operator's last comment (acknowledgement or shelving)
    shelved_until: datetime | None
    shelved_by: str | None
    updated_at: datetime

    @property
    def status(self) -> Status:
        return Status(self.state, self.active, self.severity, self.latched)


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    id: int
    alarm_id: int
    at: datetime
    transition: Transition
    state: alarm_states.State
    severity: Severity
    active: bool
    actor: str
    comment: str
    value: float | None


Changed = tuple[AlarmRecord, tuple[AlarmTransition, ...]]


class Alarms:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- raised by the system ---------------------------------------------------------------

    async def raise_alarm(
        self, satellite_id: str, kind: str, severity: Severity, message: str = ""
    ) -> tuple[AlarmRecord, bool]:
        """An event alarm (a satellite's, the scheduler's): ``(alarm, True)`` when raised or
        escalated now, ``(the open one, False)`` when it was already raised at that severity."""
        check_text(kind, "kind", max_chars=64, pattern=_KIND)
        if severity not in _SEVERITIES:
            raise ValidationError("severity", f"{severity!r:.40} is not one of {', '.join(sorted(_SEVERITIES))}")
        if not isinstance(message, str) or len(message) > 1000:
            raise ValidationError("message", "expected a string of at most 1000 characters")
        alarm, made = await self._condition(satellite_id, kind, severity, message, None, latched=False)
        return alarm, bool(made)

    async def apply(self, change: Change) -> Changed | None:
        """What a limit judged (``raised``, ``escalated``, ``returned``); None when there is no
        open alarm to return (cleared by an operator meanwhile, or never stored)."""
        if change.transition == "returned":
            async with self._db.transaction() as conn:
                alarm = await _open(conn, change.satellite_id, change.kind)
                if alarm is None:
                    return None
                return await _move(conn, alarm, alarm_states.returned(alarm.status), SYSTEM, "", change.value)
        return await self._condition(
            change.satellite_id, change.kind, change.severity, change.message, change.value, latched=change.latched
        )

    async def _condition(
        self, satellite_id: str, kind: str, severity: str, message: str, value: float | None, *, latched: bool
    ) -> Changed:
        for _ in range(3):  # the open alarm may be cleared between our insert and select
            async with self._db.transaction() as conn:
                result = await _raise_once(conn, satellite_id, kind, severity, message, value, latched)
            if result is not None:
                return result
        raise ValidationError("kind", f"alarm {kind!r} of {satellite_id!r} is being raised and cleared concurrently")

    async def expire_shelves(self) -> list[Changed]:
        """Unshelve every alarm whose shelf has expired (it returns if still active)."""
        done = []
        async with self._db.transaction() as conn:
            cur = conn.cursor(row_factory=class_row(AlarmRecord))
            await cur.execute(
                f"SELECT {_COLUMNS} FROM alarms WHERE state = 'shelved' AND shelved_until <= now() ORDER BY id FOR UPDATE SKIP LOCKED"
            )
            for alarm in await cur.fetchall():
                done.append(await _move(conn, alarm, alarm_states.unshelved(alarm.status), SYSTEM, "shelf expired", None))
        return done

    # -- an operator's actions --------------------------------------------------------------

    async def acknowledge(self, alarm_id: int, *, actor: str, comment: str = "") -> Changed:
        return await self._operator(alarm_id, "acknowledge", actor, comment)

    async def shelve(self, alarm_id: int, *, actor: str, duration_s: float, comment: str = "") -> Changed:
        if isinstance(duration_s, bool) or not isinstance(duration_s, int | float) or not 1 <= duration_s <= MAX_SHELVE_S:
            raise ValidationError("duration_s", f"must be a number of seconds in 1..{MAX_SHELVE_S}, got {duration_s!r:.40}")
        return await self._operator(alarm_id, "shelve", actor, comment, timedelta(seconds=duration_s))

    async def unshelve(self, alarm_id: int, *, actor: str, comment: str = "") -> Changed:
        return await self._operator(alarm_id, "unshelve", actor, comment)

    async def clear(self, alarm_id: int, *, actor: str) -> tuple[AlarmRecord, bool]:
        """``(alarm, True)`` when cleared now, ``(alarm, False)`` when it was already cleared."""
        alarm, made = await self._operator(alarm_id, "clear", actor, "")
        return alarm, bool(made)

    async def _operator(
        self, alarm_id: int, action: str, actor: str, comment: str, shelf: timedelta | None = None
    ) -> Changed:
        check_actor(actor)
        if not isinstance(comment, str) or len(comment) > 1000 or "\x00" in comment:
            raise ValidationError("comment", "expected a string of at most 1000 characters (no NUL)")
        decide = {
            "acknowledge": alarm_states.acknowledged, "shelve": alarm_states.shelved,
            "unshelve": alarm_states.unshelved, "clear": alarm_states.cleared,
        }[action]  # fmt: skip
        async with self._db.transaction() as conn:
            alarm = await _get(conn, alarm_id, lock=True)
            if alarm is None:
                raise NotFound("alarm_id", f"no alarm {alarm_id}")
            try:
                decided = decide(alarm.status)
            except AlarmStateError as exc:
                raise AlarmConflict("state", f"alarm {alarm_id} is {alarm.state}: {exc}") from None
            result = await _move(conn, alarm, decided, actor, comment, None, shelf=shelf)
            if result[1]:
                details: dict[str, Any] = {"satellite_id": alarm.satellite_id, "kind": alarm.kind, "comment": comment}
                if shelf is not None:
                    details["duration_s"] = shelf.total_seconds()
                await append_audit(conn, actor, f"alarm.{action}", "alarm", str(alarm_id), details)
        return result

    # -- reading ----------------------------------------------------------------------------

    async def active(self, satellite_id: str | None = None) -> list[AlarmRecord]:
        """Open (not cleared) alarms, most severe first then oldest first."""
        return await self.find(satellite_id=satellite_id)

    async def find(
        self,
        *,
        satellite_id: str | None = None,
        states: Sequence[str] = (),
        severities: Sequence[str] = (),
        limit: int = 500,
    ) -> list[AlarmRecord]:
        """Alarms by satellite, states (none given: every open one) and severities; open ones
        first, most severe first, then oldest first."""
        bad = [s for s in states if s not in _STATES]
        if bad:
            raise ValidationError("state", f"{bad[0]!r:.40} is not one of {', '.join(get_args(alarm_states.State))}")
        wanted = list(states) or [s for s in _STATES if s != "cleared"]
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(AlarmRecord))
            await cur.execute(
                f"SELECT {_COLUMNS} FROM alarms WHERE state = ANY(%(states)s)"
                " AND (%(sat)s::text IS NULL OR satellite_id = %(sat)s)"
                " AND (cardinality(%(sev)s::text[]) = 0 OR severity = ANY(%(sev)s))" + _ORDER + " LIMIT %(limit)s",
                {"states": wanted, "sat": satellite_id, "sev": list(severities), "limit": limit},
            )
            return await cur.fetchall()

    async def get(self, alarm_id: int) -> AlarmRecord:
        async with self._db.connection() as conn:
            alarm = await _get(conn, alarm_id)
        if alarm is None:
            raise NotFound("alarm_id", f"no alarm {alarm_id}")
        return alarm

    async def history(self, alarm_id: int) -> list[AlarmTransition]:
        """Every transition of an alarm, oldest first (NotFound when there is no such alarm)."""
        async with self._db.connection() as conn:
            if await _get(conn, alarm_id) is None:
                raise NotFound("alarm_id", f"no alarm {alarm_id}")
            cur = conn.cursor(row_factory=class_row(AlarmTransition))
            await cur.execute(
                "SELECT id, alarm_id, at, transition, state, severity, active, actor, comment, value"
                " FROM alarm_transitions WHERE alarm_id = %s ORDER BY id",
                (alarm_id,),
            )
            return await cur.fetchall()

    async def raised_conditions(self) -> dict[tuple[str, str], str]:
        """``(satellite id, kind) -> severity`` of the open alarms whose condition holds (where
        the store node's limit watches start)."""
        async with self._db.connection() as conn:
            cur = await conn.execute("SELECT satellite_id, kind, severity FROM alarms WHERE state <> 'cleared' AND active")
            return {(sat, kind): severity for sat, kind, severity in await cur.fetchall()}

    async def counts(self) -> dict[tuple[str, str], int]:
        """Open alarms by ``(severity, state)``, for /metrics (pairs with none are absent)."""
        async with self._db.connection() as conn:
            cur = await conn.execute("SELECT severity, state, count(*) FROM alarms WHERE state <> 'cleared' GROUP BY severity, state")
            return {(severity, state): int(n) for severity, state, n in await cur.fetchall()}


async def _raise_once(
    conn: Connection, satellite_id: str, kind: str, severity: str, message: str, value: float | None, latched: bool
) -> Changed | None:
    cur = conn.cursor(row_factory=class_row(AlarmRecord))
    try:
        await cur.execute(
            "INSERT INTO alarms (satellite_id, kind, severity, message, value, latched) VALUES (%s, %s, %s, %s, %s, %s)"
            f" ON CONFLICT (satellite_id, kind) WHERE cleared_at IS NULL DO NOTHING RETURNING {_COLUMNS}",
            (satellite_id, kind, severity, message, value, latched),
        )
    except psycopg.errors.ForeignKeyViolation:
        raise NotFound("satellite_id", f"no satellite {satellite_id!r}") from None
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise refused(exc) from None
    created = await cur.fetchone()
    if created is not None:
        transition = await _record(conn, created, "raised", SYSTEM, message, value)
        return created, (transition,)
    alarm = await _open(conn, satellite_id, kind, lock=True)
    if alarm is None:
        return None
    decided = alarm_states.raised(alarm.status, severity, latched)
    return await _move(conn, alarm, decided, SYSTEM, message, value, message=message)


async def _move(
    conn: Connection,
    alarm: AlarmRecord,
    decided: alarm_states.Result,
    actor: str,
    comment: str,
    value: float | None,
    *,
    shelf: timedelta | None = None,
    message: str | None = None,
) -> Changed:
    """Store the status ``decided`` for ``alarm`` and one history row per transition."""
    status, transitions = decided
    if not transitions:
        return alarm, ()
    by_operator = actor != SYSTEM
    acknowledged = "acknowledged" in transitions
    cur = conn.cursor(row_factory=class_row(AlarmRecord))
    await cur.execute(
        "UPDATE alarms SET state = %(state)s, active = %(active)s, severity = %(severity)s, latched = %(latched)s,"
        " value = coalesce(%(value)s::float8, value), message = coalesce(%(message)s::text, message), updated_at = now(),"
        " cleared_at = CASE WHEN %(state)s = 'cleared' THEN greatest(now(), raised_at) END,"
        " cleared_by = CASE WHEN %(state)s = 'cleared' THEN %(actor)s END,"
        " acknowledged_at = CASE WHEN %(ack)s THEN now() WHEN %(state)s = 'unacknowledged' THEN NULL ELSE acknowledged_at END,"
        " acknowledged_by = CASE WHEN %(ack)s THEN %(actor)s WHEN %(state)s = 'unacknowledged' THEN NULL ELSE acknowledged_by END,"
        " comment = CASE WHEN %(by_operator)s AND %(comment)s::text <> '' THEN %(comment)s ELSE comment END,"
        " shelved_until = CASE WHEN %(state)s = 'shelved' THEN coalesce(now() + %(shelf)s::interval, shelved_until) END,"
        " shelved_by = CASE WHEN %(state)s = 'shelved' THEN coalesce(%(shelver)s::text, shelved_by) END"
        f" WHERE id = %(id)s RETURNING {_COLUMNS}",
        {
            "state": status.state, "active": status.active, "severity": status.severity, "latched": status.latched,
            "value": value, "message": message, "actor": actor, "ack": acknowledged, "by_operator": by_operator,
            "comment": comment, "shelf": shelf, "shelver": actor if shelf is not None else None, "id": alarm.id,
        },
    )  # fmt: skip
    updated = await cur.fetchone()
    assert updated is not None
    rows = []
    for transition in transitions:
        rows.append(await _record(conn, updated, transition, actor, comment, value))
    return updated, tuple(rows)


async def _record(
    conn: Connection, alarm: AlarmRecord, transition: str, actor: str, comment: str, value: float | None
) -> AlarmTransition:
    cur = conn.cursor(row_factory=class_row(AlarmTransition))
    await cur.execute(
        "INSERT INTO alarm_transitions (alarm_id, transition, state, severity, active, actor, comment, value)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id, alarm_id, at, transition, state, severity, active, actor, comment, value",
        (alarm.id, transition, alarm.state, alarm.severity, alarm.active, actor, comment[:1000], value),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def _open(conn: Connection, satellite_id: str, kind: str, *, lock: bool = False) -> AlarmRecord | None:
    cur = conn.cursor(row_factory=class_row(AlarmRecord))
    await cur.execute(
        f"SELECT {_COLUMNS} FROM alarms WHERE satellite_id = %s AND kind = %s AND cleared_at IS NULL"
        + (" FOR UPDATE" if lock else ""),
        (satellite_id, kind),
    )
    return await cur.fetchone()


async def _get(conn: Connection, alarm_id: int, *, lock: bool = False) -> AlarmRecord | None:
    cur = conn.cursor(row_factory=class_row(AlarmRecord))
    await cur.execute(f"SELECT {_COLUMNS} FROM alarms WHERE id = %s" + (" FOR UPDATE" if lock else ""), (alarm_id,))
    return await cur.fetchone()
