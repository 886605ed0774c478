"""The audit log: who changed what, written in the same transaction as the change it records."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg.rows import class_row

from .pool import Connection, Database
from .values import check_actor, check_text, json_object

__all__ = ["AuditEntry", "AuditLog", "append_audit"]

_ACTION: Final = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_ENTITY: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str  # e.g. "command.submit", "ground_station.update"
    entity: str  # e.g. "command", "ground_station"
    entity_id: str | None
    details: dict[str, Any]


async def append_audit(
    conn: Connection,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry on ``conn``: call it inside the transaction that makes the change."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, entity, entity_id, details) VALUES (%s, %s, %s, %s, %s)",
        (
            check_actor(actor),
            check_text(action, "action", max_chars=64, pattern=_ACTION),
            check_text(entity, "entity", max_chars=64, pattern=_ENTITY),
            entity_id,
            json_object(details or {}, "details"),
        ),
    )


class AuditLog:
    """Reading the audit log, and appending entries that stand alone (logins, exports...)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(
        self, actor: str, action: str, entity: str, entity_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        async with self._db.transaction() as conn:
            await append_audit(conn, actor, action, entity, entity_id, details)

    async def entries(
        self, *, entity: str | None = None, entity_id: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first, optionally for one entity (and id)."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(AuditEntry))
            await cur.execute(
                "SELECT id, at, actor, action, entity, entity_id, details FROM audit_log"
                " WHERE (%(entity)s::text IS NULL OR entity = %(entity)s)"
                " AND (%(entity_id)s::text IS NULL OR entity_id = %(entity_id)s)"
                " ORDER BY id DESC LIMIT %(limit)s",
                {"entity": entity, "entity_id": entity_id, "limit": limit},
            )
            return await cur.fetchall()
