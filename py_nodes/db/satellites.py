"""Satellites: the latest checkpoint of each satellite's state (what a restarted actor resumes from).

Checkpoints are optimistic: one is written only when its ``updated_at`` is newer than the stored
one, so a late or replayed checkpoint never overwrites a newer state; ``version`` counts the
checkpoints accepted. States are the model's ``SatState`` (bytes, ms), mapped here to SQL
(text, timestamptz, bytea[]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode

from .audit import append_audit
from .errors import ValidationError
from .pool import Connection, Database
from .values import check_actor, datetime_from_ms, ms_from_datetime, refused

__all__ = ["SatelliteRecord", "Satellites", "TleRecord", "checkpoint_rows", "delete_rows", "insert_satellite"]

_COLUMNS: Final = (
    "id, name, mode, energy_pct, memory_used_mb, memory_capacity_mb, tle_line1, tle_line2, applied, updated_at"
)
_SELECT: Final = f"SELECT {_COLUMNS}, version, created_at FROM satellites"
_INSERT: Final = f"INSERT INTO satellites ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_CHECKPOINT: Final = (
    _INSERT
    + " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, mode = EXCLUDED.mode,"
    " energy_pct = EXCLUDED.energy_pct, memory_used_mb = EXCLUDED.memory_used_mb,"
    " memory_capacity_mb = EXCLUDED.memory_capacity_mb, tle_line1 = EXCLUDED.tle_line1,"
    " tle_line2 = EXCLUDED.tle_line2, applied = EXCLUDED.applied, updated_at = EXCLUDED.updated_at,"
    " version = satellites.version + 1"
    " WHERE satellites.updated_at < EXCLUDED.updated_at AND satellites.deleted_at IS NULL"
    " RETURNING version"
)
# A new satellite, or one created again after its deletion (the ledger keeps its history).
_CREATE: Final = (
    _INSERT
    + " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, mode = EXCLUDED.mode,"
    " energy_pct = EXCLUDED.energy_pct, memory_used_mb = EXCLUDED.memory_used_mb,"
    " memory_capacity_mb = EXCLUDED.memory_capacity_mb, tle_line1 = EXCLUDED.tle_line1,"
    " tle_line2 = EXCLUDED.tle_line2, applied = EXCLUDED.applied, updated_at = EXCLUDED.updated_at,"
    " version = satellites.version + 1, deleted_at = NULL"
    " WHERE satellites.deleted_at IS NOT NULL"
    " RETURNING id"
)


# Many rows in one statement (3-7x faster than a pipelined executemany at 1,000 rows): one array
# per column (``_columns``), sent in binary (3-5x less CPU than text arrays); ``applied`` (bytea[]
# per row) travels as each row's array literal.
_ROWS: Final = (
    "SELECT id, name, mode, energy_pct, memory_used_mb, memory_capacity_mb, tle_line1, tle_line2,"
    " applied::bytea[], updated_at FROM unnest(%b::text[], %b::text[], %b::text[], %b::float8[], %b::float8[],"
    " %b::float8[], %b::text[], %b::text[], %b::text[], %b::timestamptz[]) WITH ORDINALITY"
    " AS t(id, name, mode, energy_pct, memory_used_mb, memory_capacity_mb, tle_line1, tle_line2, applied, updated_at, n)"
    " ORDER BY n"
)
# What a restarted satellite resumes from: its checkpoint, with energy, memory and mode from its
# newest telemetry row when that is newer (a satellite that only ticked is checkpointed seldom:
# its ticks reach the database as telemetry). Telemetry from before a deletion and re-creation
# is older than the new row's updated_at, so it never applies.
_RESUME: Final = (
    "SELECT s.id, s.name, COALESCE(t.mode, s.mode), COALESCE(t.energy_pct, s.energy_pct),"
    " COALESCE(t.memory_used_mb, s.memory_used_mb), s.memory_capacity_mb, s.tle_line1, s.tle_line2,"
    " s.applied, GREATEST(s.updated_at, t.time), s.version, s.created_at FROM satellites s"
    " LEFT JOIN LATERAL (SELECT time, energy_pct, memory_used_mb, mode FROM telemetry"
    " WHERE satellite_id = s.id AND time > s.updated_at ORDER BY time DESC LIMIT 1) t ON true"
    " WHERE s.deleted_at IS NULL ORDER BY s.id"
)
_CREATE_ROWS: Final = _CREATE.replace(_INSERT, f"INSERT INTO satellites ({_COLUMNS}) {_ROWS}")
_CHECKPOINT_ROWS: Final = _CHECKPOINT.replace(_INSERT, f"INSERT INTO satellites ({_COLUMNS}) {_ROWS}")


@dataclass(frozen=True, slots=True)
class SatelliteRecord:
    state: SatState
    version: int  # checkpoints accepted, 1 for the first
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TleRecord:
    """One TLE a satellite flew (kept by migration 0011's trigger): ``valid_to`` None while current."""

    line1: str
    line2: str
    valid_from: datetime
    valid_to: datetime | None


class Satellites:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, state: SatState, *, actor: str) -> SatelliteRecord:
        """Insert a new satellite; ValidationError on ``id`` when it exists."""
        async with self._db.transaction() as conn:
            return await insert_satellite(conn, state, actor=actor)

    async def create_many(self, states: Sequence[SatState], *, actor: str) -> list[ValidationError | None]:
        """``create`` for each state, in one transaction (one round trip): per item None
        (created) or the ValidationError ``create`` would raise for it (on ``id`` when it exists,
        or when the same id came earlier in ``states``), which writes nothing for that item. A
        row the schema refuses makes the lot go one by one, so it fails alone."""
        results: list[ValidationError | None] = [None] * len(states)
        batch: dict[str, tuple[int, tuple[Any, ...]]] = {}
        for i, state in enumerate(states):
            try:
                params = _params(state)
                check_actor(actor)
            except ValidationError as exc:
                results[i] = exc
                continue
            if params[0] in batch:
                results[i] = ValidationError("id", f"satellite {params[0]!r} already exists")
            else:
                batch[params[0]] = (i, params)
        if not batch:
            return results
        try:
            async with self._db.transaction() as conn:
                cur = await conn.execute(_CREATE_ROWS, _columns([p for _, p in batch.values()]))
                returned = {row[0] for row in await cur.fetchall()}
                created = [sat_id for sat_id in batch if sat_id in returned]
                for sat_id, (i, _) in batch.items():
                    if sat_id not in returned:
                        results[i] = ValidationError("id", f"satellite {sat_id!r} already exists")
                if created:
                    await conn.execute(
                        "INSERT INTO audit_log (actor, action, entity, entity_id, details)"
                        " SELECT %s, 'satellite.create', 'satellite', id, jsonb_build_object('name', name)"
                        " FROM unnest(%s::text[], %s::text[]) AS a(id, name)",
                        (actor, created, [batch[i][1][1] for i in created]),
                    )
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            return await self._create_one_by_one(states, actor)
        return results

    async def _create_one_by_one(self, states: Sequence[SatState], actor: str) -> list[ValidationError | None]:
        results: list[ValidationError | None] = []
        for state in states:
            try:
                await self.create(state, actor=actor)
                results.append(None)
            except ValidationError as exc:
                results.append(exc)
        return results

    async def checkpoint_many(self, states: list[SatState]) -> int:
        """``checkpoint`` for many states in one transaction; how many were newer (written).
        A state SQL cannot hold raises ValidationError and writes none of them."""
        async with self._db.transaction() as conn:
            return await checkpoint_rows(conn, states)

    async def delete(self, satellite_ids: list[str], *, actor: str) -> int:
        """Mark satellites deleted (their ledger and telemetry stay); how many were live."""
        async with self._db.transaction() as conn:
            return await delete_rows(conn, satellite_ids, actor=actor)

    async def checkpoint(self, state: SatState) -> int | None:
        """Store ``state`` if newer than the stored one (or new): the version now, None when stale."""
        params = _params(state)
        async with self._db.transaction() as conn:
            try:
                row = await (await conn.execute(_CHECKPOINT, params)).fetchone()
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise refused(exc) from None
        return None if row is None else int(row[0])

    async def get(self, satellite_id: str) -> SatelliteRecord | None:
        async with self._db.connection() as conn:
            return await _get(conn, satellite_id)

    async def list_all(self) -> list[SatelliteRecord]:
        """Every satellite, by id."""
        async with self._db.connection() as conn:
            rows = await (await conn.execute(_SELECT + " WHERE deleted_at IS NULL ORDER BY id")).fetchall()
        return [_record(row) for row in rows]

    async def resume_states(self) -> list[SatelliteRecord]:
        """Every satellite, by id, as a restart resumes it (``_RESUME``): ``version`` and
        ``created_at`` are the checkpoint's."""
        async with self._db.connection() as conn:
            rows = await (await conn.execute(_RESUME)).fetchall()
        return [_record(row) for row in rows]

    async def tle_history(self, satellite_id: str, *, limit: int = 100) -> list[TleRecord] | None:
        """The satellite's TLEs, newest first; None when no satellite ever had this id."""
        async with self._db.connection() as conn:
            known = await (await conn.execute("SELECT 1 FROM satellites WHERE id = %s", (satellite_id,))).fetchone()
            if known is None:
                return None
            cur = await conn.execute(
                "SELECT tle_line1, tle_line2, valid_from, valid_to FROM satellite_tle_history"
                " WHERE satellite_id = %s ORDER BY valid_from DESC, id DESC LIMIT %s",
                (satellite_id, limit),
            )
            return [TleRecord(*row) for row in await cur.fetchall()]

    async def audit_tle(self, satellite_id: str, old: tuple[str, str] | None, new: tuple[str, str], *, actor: str) -> None:
        """Who changed a satellite's TLE (the change itself reaches the table by the actor's checkpoint)."""
        async with self._db.transaction() as conn:
            details = {"from": list(old) if old else None, "to": list(new)}
            await append_audit(conn, actor, "satellite.tle", "satellite", satellite_id, details)

    async def count(self) -> int:
        async with self._db.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM satellites WHERE deleted_at IS NULL")).fetchone()
        return int(row[0]) if row else 0


async def checkpoint_rows(conn: Connection, states: Sequence[SatState]) -> int:
    """``Satellites.checkpoint_many`` on the caller's transaction."""
    newest: dict[bytes, SatState] = {}  # one row per satellite in a statement: the newest state
    for state in states:
        known = newest.get(state.id)
        if known is None or known.updated_at < state.updated_at:
            newest[state.id] = state
    params = [_params(state) for state in newest.values()]
    if not params:
        return 0
    try:
        cur = await conn.execute(_CHECKPOINT_ROWS, _columns(params))
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise refused(exc) from None
    return max(cur.rowcount, 0)


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """``_params`` rows -> one list per column, for ``_ROWS`` (``applied`` as an array literal)."""
    columns = [list(col) for col in zip(*rows, strict=True)]
    for i in (3, 4, 5):  # binary arrays take one type: no int among the floats
        columns[i] = [float(x) for x in columns[i]]
    columns[8] = ["{" + ",".join(f'"\\\\x{a.hex()}"' for a in applied) + "}" for applied in columns[8]]
    return columns


async def delete_rows(conn: Connection, satellite_ids: Sequence[str], *, actor: str) -> int:
    """``Satellites.delete`` on the caller's transaction."""
    cur = await conn.execute(
        "UPDATE satellites SET deleted_at = now() WHERE id = ANY(%s) AND deleted_at IS NULL RETURNING id",
        (list(satellite_ids),),
    )
    deleted = [row[0] for row in await cur.fetchall()]
    for sat_id in deleted:
        await append_audit(conn, actor, "satellite.delete", "satellite", sat_id, {})
    return len(deleted)


async def insert_satellite(conn: Connection, state: SatState, *, actor: str) -> SatelliteRecord:
    """``Satellites.create`` on the caller's transaction (for seeding in one transaction)."""
    params = _params(state)
    try:
        cur = await conn.execute(_CREATE, params)
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise refused(exc) from None
    if await cur.fetchone() is None:
        raise ValidationError("id", f"satellite {params[0]!r} already exists")
    record = await _get(conn, params[0])
    assert record is not None
    await append_audit(conn, actor, "satellite.create", "satellite", params[0], {"name": params[1]})
    return record


async def _get(conn: Connection, satellite_id: str) -> SatelliteRecord | None:
    row = await (await conn.execute(_SELECT + " WHERE id = %s", (satellite_id,))).fetchone()
    return None if row is None else _record(row)


def _params(state: SatState) -> tuple[Any, ...]:
    """SatState -> the column values of _COLUMNS; ValidationError names a field SQL cannot hold."""

    def text(value: bytes, field: str) -> str:
        try:
            return value.decode()
        except (UnicodeDecodeError, AttributeError):
            raise ValidationError(field, f"expected UTF-8 bytes, got {value!r:.60}") from None

    tle1, tle2 = (text(state.tle[0], "tle"), text(state.tle[1], "tle")) if state.tle else (None, None)
    return (
        text(state.id, "id"),
        text(state.name, "name"),
        _mode(state.mode),
        state.energy_pct,
        state.memory_used_mb,
        state.memory_capacity_mb,
        tle1,
        tle2,
        list(state.applied),
        datetime_from_ms(state.updated_at),
    )


def _mode(value: str) -> str:
    try:
        return Mode(value).value
    except ValueError:
        raise ValidationError("mode", f"{value!r} is not one of {', '.join(Mode)}") from None


def _record(row: tuple[Any, ...]) -> SatelliteRecord:
    sat_id, name, mode, energy, used, capacity, tle1, tle2, applied, updated_at, version, created_at = row
    tle = (tle1.encode(), tle2.encode()) if tle1 is not None else None
    state = SatState(
        sat_id.encode(), name.encode(), Mode(mode), energy, used, capacity, tle,
        tuple(bytes(a) for a in applied), ms_from_datetime(updated_at),
    )  # fmt: skip
    return SatelliteRecord(state, int(version), created_at)
