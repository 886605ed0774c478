"""PostgreSQL for tests: one server per session, a fresh database per test.

With DATABASE_URL unset the session runs an embedded server (not durable: fsync off) in a
private temporary folder; with it set, that server is used (its role needs CREATEDB). A
migrated template database is built once; each test gets ``CREATE DATABASE ... TEMPLATE`` of
it (or of template0 for an empty one), dropped after the test, so tests are isolated. The
embedded server keeps its data on tmpfs (/dev/shm) when there is one: CREATE DATABASE writes
~300 files, which takes 7 ms there and 100-500 ms on this machine's disk.
The admin connection here is test plumbing; application code borrows from ``Database``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from py_nodes.db import Database, EmbeddedServer, migrate

_names = itertools.count(1)


class PgCluster:
    """The session's server: makes and drops databases."""

    def __init__(self, admin_conninfo: str, server: EmbeddedServer | None) -> None:
        self.admin_conninfo = admin_conninfo
        self.server = server
        self.template = f"stellarops_test_template_{os.getpid()}"
        self._admin: psycopg.Connection[tuple[object, ...]] | None = None

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.admin_conninfo, autocommit=True)
        return self._admin

    def conninfo(self, dbname: str) -> str:
        return make_conninfo(self.admin_conninfo, dbname=dbname)

    def create_database(self, template: str = "template0") -> str:
        name = f"stellarops_test_{os.getpid()}_{next(_names)}"
        admin = self.admin()
        # FILE_COPY (PostgreSQL 15+) copies a small template ~15x faster than the default WAL_LOG.
        strategy = sql.SQL(" STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else "")
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(sql.Identifier(name), sql.Identifier(template), strategy)
        admin.execute(query)
        return name

    def drop_database(self, name: str) -> None:
        self.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()


def fast_temp_dir() -> Path:
    """A new private folder on tmpfs if there is room there, else in the usual temporary folder."""
    shm = Path("/dev/shm")
    try:
        roomy = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * 2**30
    except OSError:
        roomy = False
    return Path(tempfile.mkdtemp(prefix="stellarops-test-pg-", dir=shm if roomy else None))


async def _migrate(conninfo: str) -> None:
    async with Database(conninfo, max_size=1) as db:
        await migrate(db)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    url = os.environ.get("DATABASE_URL", "").strip()
    folder: Path | None = None
    server: EmbeddedServer | None = None
    if url:
        cluster = PgCluster(url, None)
    else:
        folder = fast_temp_dir()
        server = EmbeddedServer(folder / "pg", durable=False)
        cluster = PgCluster(server.start(), server)
    try:
        cluster.drop_database(cluster.template)
        cluster.admin().execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(cluster.template)))
        asyncio.run(_migrate(cluster.conninfo(cluster.template)))
        yield cluster
    finally:
        try:
            cluster.drop_database(cluster.template)
            cluster.close()
        finally:
            if server is not None:
                server.stop()
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def db_conninfo(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database with every migration applied."""
    name = pg_cluster.create_database(pg_cluster.template)
    yield pg_cluster.conninfo(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def empty_db_conninfo(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database with nothing in it (not even schema_migrations)."""
    name = pg_cluster.create_database()
    yield pg_cluster.conninfo(name)
    pg_cluster.drop_database(name)


@pytest.fixture
async def db(db_conninfo: str) -> AsyncIterator[Database]:
    """A connected ``Database`` on a fresh migrated database."""
    async with Database(db_conninfo, max_size=4, timeout_s=5.0) as database:
        yield database
