"""The command ledger read as history: per satellite or fleet-wide, filtered by kind, status,
who submitted it and when, newest first, a page at a time or streamed as CSV.

Pages are keyset pages: a page ends with a ``Cursor`` (the last row's ``created_at`` and id),
and the next page starts strictly after it, so commands submitted meanwhile neither shift nor
repeat rows (as an offset would). Migration 0010 gives the fleet-wide order its index.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from psycopg.rows import class_row

from .commands import _COLUMNS, Command
from .errors import ValidationError
from .pool import Database
from .telemetry_range import CSV_CHUNK_BYTES, copy_out

__all__ = ["CSV_COLUMNS", "CommandFilter", "Cursor", "command_csv", "command_page"]

CSV_COLUMNS: Final = (
    "id", "satellite_id", "kind", "args", "status", "attempts", "result", "submitted_by", "idempotency_key",
    "created_at", "sent_at", "finished_at",
)  # fmt: skip
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ISO: Final = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the next page holds the commands older than this one."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.id}"

    @classmethod
    def decode(cls, text: str, field: str = "cursor") -> Cursor:
        micros, _, ident = text.partition(".")
        try:
            at = _EPOCH + timedelta(microseconds=int(micros))
            return cls(at, uuid.UUID(ident))
        except (ValueError, OverflowError, OSError):
            raise ValidationError(field, f"{text[:60]!r} is not a cursor from a previous page") from None


@dataclass(frozen=True, slots=True)
class CommandFilter:
    """Which commands: each given field narrows (``kinds``/``statuses``: any of them); the time
    range is on ``created_at``, [since, until)."""

    satellite_id: str | None = None
    kinds: Sequence[str] = ()
    statuses: Sequence[str] = ()
    submitted_by: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, after: Cursor | None) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = []
        args: dict[str, Any] = {}
        if self.satellite_id is not None:
            clauses.append("satellite_id = %(sat)s")
            args["sat"] = self.satellite_id
        if self.kinds:
            clauses.append("kind = ANY(%(kinds)s)")
            args["kinds"] = list(self.kinds)
        if self.statuses:
            clauses.append("status = ANY(%(statuses)s)")
            args["statuses"] = list(self.statuses)
        if self.submitted_by is not None:
            clauses.append("submitted_by = %(who)s")
            args["who"] = self.submitted_by
        if self.since is not None:
            clauses.append("created_at >= %(since)s")
            args["since"] = self.since
        if self.until is not None:
            clauses.append("created_at < %(until)s")
            args["until"] = self.until
        if after is not None:
            clauses.append("(created_at, id) < (%(after_at)s, %(after_id)s)")
            args.update(after_at=after.created_at, after_id=after.id)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


async def command_page(
    db: Database, which: CommandFilter, *, limit: int, after: Cursor | None = None
) -> tuple[list[Command], Cursor | None]:
    """Up to ``limit`` commands newest first, and the cursor of the next page (None: no more)."""
    where, args = which.where(after)
    query = f"SELECT {_COLUMNS} FROM commands{where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=class_row(Command))
        await cur.execute(query, {**args, "limit": limit + 1})  # one more: is there a next page?
        rows = await cur.fetchall()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Cursor(last.created_at, last.id)


async def command_csv(db: Database, which: CommandFilter, *, chunk_bytes: int = CSV_CHUNK_BYTES) -> AsyncIterator[bytes]:
    """Every matching command as CSV (a header line, then newest first), in chunks; ``args`` and
    ``result`` as JSON text, times as RFC 3339 UTC."""
    where, args = which.where(None)
    times = {c: f"to_char({c} AT TIME ZONE 'UTC', {_ISO})" for c in ("created_at", "sent_at", "finished_at")}
    columns = ", ".join(f"{times[c]} AS {c}" if c in times else c for c in CSV_COLUMNS)
    statement = (
        f"COPY (SELECT {columns} FROM commands{where} ORDER BY commands.created_at DESC, id DESC)"
        " TO STDOUT (FORMAT CSV, HEADER)"
    )
    async for chunk in copy_out(db, statement, args, chunk_bytes):
        yield chunk
