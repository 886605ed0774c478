"""Limits: what each parameter may read, fleet-wide or for one satellite (migration 0009).

A satellite's own limit on a parameter overrides the fleet's. Every change is audited in the
same transaction (action ``limit.update`` / ``limit.delete``, entity ``limit``, entity id
``fleet/PARAMETER`` or ``SAT_ID/PARAMETER``, details ``{old, new}``). The store node reads the
whole table (``all``) and judges each telemetry sample by it (``py_nodes.limits``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import class_row

from py_nodes.limits import Limit, LimitError

from .audit import append_audit
from .errors import NotFound, ValidationError
from .pool import Connection, Database
from .values import check_actor, refused

__all__ = ["LimitRecord", "Limits"]

_COLUMNS: Final = (
    "id, parameter, satellite_id, warning_low, warning_high, critical_low, critical_high,"
    " hysteresis, persistence, latched, updated_at, updated_by"
)


@dataclass(frozen=True, slots=True)
class LimitRecord:
    id: int
    parameter: str
    satellite_id: str | None  # None: fleet-wide
    warning_low: float | None
    warning_high: float | None
    critical_low: float | None
    critical_high: float | None
    hysteresis: float
    persistence: int
    latched: bool
    updated_at: datetime
    updated_by: str

    @property
    def limit(self) -> Limit:
        return Limit(
            self.parameter, self.warning_low, self.warning_high, self.critical_low, self.critical_high,
            self.hysteresis, self.persistence, self.latched,
        )  # fmt: skip

    def definition(self) -> dict[str, Any]:
        """What an operator set (for the audit log's old and new)."""
        return {k: v for k, v in asdict(self.limit).items() if k != "parameter"}


def _entity_id(sat_id: str | None, parameter: str) -> str:
    return f"{sat_id or 'fleet'}/{parameter}"


class Limits:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[LimitRecord]:
        """Every limit: by parameter, the fleet's first, then by satellite."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(LimitRecord))
            await cur.execute(f"SELECT {_COLUMNS} FROM limits ORDER BY parameter, satellite_id NULLS FIRST")
            return await cur.fetchall()

    async def put(self, limit: Limit, *, satellite_id: str | None, actor: str) -> tuple[LimitRecord, bool]:
        """Set the limit of ``limit.parameter`` for the fleet (``satellite_id`` None) or one
        satellite: ``(record, True)`` when created, ``(record, False)`` when replaced."""
        check_actor(actor)
        try:
            limit.check()
        except LimitError as exc:
            raise ValidationError(exc.field, exc.problem) from None
        async with self._db.transaction() as conn:
            old = await _get(conn, limit.parameter, satellite_id, lock=True)
            cur = conn.cursor(row_factory=class_row(LimitRecord))
            values = (
                limit.warning_low, limit.warning_high, limit.critical_low, limit.critical_high,
                float(limit.hysteresis), limit.persistence, limit.latched, actor,
            )  # fmt: skip
            try:
                if old is None:
                    await cur.execute(
                        "INSERT INTO limits (parameter, satellite_id, warning_low, warning_high, critical_low,"
                        " critical_high, hysteresis, persistence, latched, updated_by)"
                        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                        (limit.parameter, satellite_id, *values),
                    )
                else:
                    await cur.execute(
                        "UPDATE limits SET warning_low = %s, warning_high = %s, critical_low = %s, critical_high = %s,"
                        " hysteresis = %s, persistence = %s, latched = %s, updated_by = %s, updated_at = now()"
                        f" WHERE id = %s RETURNING {_COLUMNS}",
                        (*values, old.id),
                    )
            except psycopg.errors.ForeignKeyViolation:
                raise NotFound("sat_id", f"no satellite {satellite_id!r}") from None
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise refused(exc) from None
            record = await cur.fetchone()
            assert record is not None
            details = {"old": None if old is None else old.definition(), "new": record.definition()}
            await append_audit(conn, actor, "limit.update", "limit", _entity_id(satellite_id, limit.parameter), details)
        return record, old is None

    async def capacities(self, satellite_ids: list[str] | None = None) -> dict[str, float]:
        """Memory capacity (MB) of these satellites (None: of every one), for
        ``memory_used_pct`` (unknown ids absent)."""
        async with self._db.connection() as conn:
            if satellite_ids is None:
                cur = await conn.execute("SELECT id, memory_capacity_mb FROM satellites")
            else:
                cur = await conn.execute("SELECT id, memory_capacity_mb FROM satellites WHERE id = ANY(%s)", (satellite_ids,))
            return {sat_id: float(capacity) for sat_id, capacity in await cur.fetchall()}

    async def delete(self, parameter: str, *, satellite_id: str | None, actor: str) -> LimitRecord:
        """Remove a limit (NotFound when there is none); the removed one is returned."""
        check_actor(actor)
        async with self._db.transaction() as conn:
            old = await _get(conn, parameter, satellite_id, lock=True)
            if old is None:
                where = "the fleet" if satellite_id is None else f"satellite {satellite_id!r}"
                raise NotFound("parameter", f"no limit on {parameter!r} for {where}")
            await conn.execute("DELETE FROM limits WHERE id = %s", (old.id,))
            details = {"old": old.definition(), "new": None}
            await append_audit(conn, actor, "limit.delete", "limit", _entity_id(satellite_id, parameter), details)
        return old


async def _get(conn: Connection, parameter: str, satellite_id: str | None, *, lock: bool = False) -> LimitRecord | None:
    cur = conn.cursor(row_factory=class_row(LimitRecord))
    await cur.execute(
        f"SELECT {_COLUMNS} FROM limits WHERE parameter = %s AND satellite_id IS NOT DISTINCT FROM %s"
        + (" FOR UPDATE" if lock else ""),
        (parameter, satellite_id),
    )
    return await cur.fetchone()
