"""The migration runner: versioned SQL files applied once each, in order.

Files are ``NNNN_name.sql`` in ``py_nodes/db/migrations``. Each runs in its own transaction
together with its row in ``schema_migrations`` (version, name, sha256 checksum), so a failing
file leaves the schema exactly as it was and is not recorded. A session advisory lock makes
concurrent starters take turns: the second finds everything applied. Editing an applied file is
an error (its checksum no longer matches); so is a database with versions this code lacks.
No CREATE INDEX CONCURRENTLY (it cannot run in a transaction).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final

import psycopg

from .errors import DatabaseUnavailable, MigrationError
from .pool import Connection, Database, is_unavailable

__all__ = ["Migration", "applied_versions", "load_migrations", "migrate"]

log = logging.getLogger(__name__)

LOCK_KEY: Final = 0x5354_454C_4C41_52  # "STELLAR": the advisory lock migrations run under
_FILE_NAME: Final = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_CREATE_TABLE: Final = b"""
CREATE TABLE IF NOT EXISTS schema_migrations (
    version      integer PRIMARY KEY,
    name         text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    duration_ms  double precision NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: bytes
    checksum: str  # sha256 of the file, hex

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def load_migrations(folder: Traversable | None = None) -> list[Migration]:
    """The migrations in ``folder`` (default: the package's), by version; malformed names are errors."""
    folder = folder or files("py_nodes.db") / "migrations"
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_lowercase_name.sql")
        version = int(match[1])
        if version in found:
            raise MigrationError(f"two migrations have version {version:04d}: {found[version].filename} and {entry.name}")
        sql = entry.read_bytes()
        found[version] = Migration(version, match[2], sql, hashlib.sha256(sql).hexdigest())
    return [found[v] for v in sorted(found)]


async def migrate(db: Database, folder: Traversable | None = None) -> list[Migration]:
    """Apply the migrations not applied yet; the ones applied by this call (empty: up to date)."""
    migrations = load_migrations(folder)
    done: list[Migration] = []
    async with db.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            await conn.execute(_CREATE_TABLE)
            applied = await _applied(conn)
            _check_history(migrations, applied)
            for migration in migrations:
                if migration.version not in applied:
                    await _apply(conn, migration)
                    done.append(migration)
        finally:
            with contextlib.suppress(psycopg.Error):  # a lost connection releases the lock anyway
                await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done


async def applied_versions(db: Database) -> dict[int, str]:
    """Version -> name of each applied migration (empty before the first run)."""
    async with db.connection() as conn:
        exists = await (await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")).fetchone()
        if not exists or not exists[0]:
            return {}
        return {v: name for v, (name, _) in (await _applied(conn)).items()}


async def _applied(conn: Connection) -> dict[int, tuple[str, str]]:
    cur = await conn.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    return {version: (name, checksum) for version, name, checksum in await cur.fetchall()}


def _check_history(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> None:
    known = {m.version: m for m in migrations}
    unknown = sorted(set(applied) - set(known))
    if unknown:
        names = ", ".join(f"{v:04d}_{applied[v][0]}" for v in unknown)
        raise MigrationError(f"the database has migrations this code does not know ({names}): is this code older than the database?")
    for version, (_, checksum) in applied.items():
        migration = known[version]
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {migration.filename} changed after it was applied (sha256 {checksum[:12]}… in the"
                f" database, {migration.checksum[:12]}… on disk): add a new migration instead of editing it"
            )


async def _apply(conn: Connection, migration: Migration) -> None:
    start = time.perf_counter()
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)  # no parameters: several statements are allowed
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, (time.perf_counter() - start) * 1e3),
            )
    except psycopg.Error as exc:
        if is_unavailable(exc):
            raise DatabaseUnavailable(f"lost the database while applying {migration.filename}: {exc}") from None
        where = f" (at character {exc.diag.statement_position})" if exc.diag.statement_position else ""
        raise MigrationError(
            f"migration {migration.filename} failed and was rolled back{where}: {str(exc).strip()}"
        ) from exc
    log.info("applied migration %s in %.0f ms", migration.filename, (time.perf_counter() - start) * 1e3)
