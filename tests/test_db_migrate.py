"""Migrations: from empty, re-run, failure rolls back, edited files, concurrency; the schema's rules;
``stellarops migrate`` against DATABASE_URL and against the embedded server from a clean home."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from py_nodes import cli
from py_nodes.db import Database, MigrationError, applied_versions, load_migrations, migrate

MIGRATIONS = Path(__file__).resolve().parent.parent / "py_nodes" / "db" / "migrations"
TABLES = {"satellites", "telemetry", "commands", "ground_stations", "tasks", "alarms", "audit_log", "api_tokens", "cluster_owner", "schema_migrations",
          "plan_runs", "task_placements", "plan_requests",
          "limits", "alarm_transitions",  # 0009
          "satellite_tle_history"}  # 0011

# The migrations this version ships, {version: name}.
SHIPPED = {m.version: m.name for m in load_migrations()}


async def _schema(db: Database) -> list[tuple[Any, ...]]:
    """Every table, column and constraint in the public schema: what a failed migration must not change."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        columns = await cur.fetchall()
        cur = await conn.execute("SELECT conname FROM pg_constraint JOIN pg_namespace n ON n.oid = connamespace"
                                 " WHERE nspname = 'public' ORDER BY 1")  # fmt: skip
        return columns + await cur.fetchall()


def _copy_migrations(dest: Path) -> Path:
    dest.mkdir()
    (dest / "0001_init.sql").write_bytes((MIGRATIONS / "0001_init.sql").read_bytes())
    return dest


async def test_from_empty_applies_everything_and_records_checksums(empty_db_conninfo: str) -> None:
    async with Database(empty_db_conninfo) as db:
        applied = await migrate(db)
        assert [m.filename for m in applied] == [m.filename for m in load_migrations()]
        async with db.connection() as conn:
            rows = await (await conn.execute("SELECT version, name, checksum FROM schema_migrations")).fetchall()
            tables = {r[0] for r in await (await conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).fetchall()}  # fmt: skip
        digest = hashlib.sha256((MIGRATIONS / "0001_init.sql").read_bytes()).hexdigest()
        assert (1, "init", digest) in rows
        assert tables == TABLES


async def test_rerun_is_a_no_op(empty_db_conninfo: str) -> None:
    async with Database(empty_db_conninfo) as db:
        await migrate(db)
        before = await _schema(db)
        assert await migrate(db) == []
        assert await _schema(db) == before
        assert await applied_versions(db) == SHIPPED


async def test_concurrent_starters_apply_each_migration_once(empty_db_conninfo: str) -> None:
    async with Database(empty_db_conninfo) as a, Database(empty_db_conninfo) as b:
        results = await asyncio.gather(migrate(a), migrate(b))
        assert sorted(len(r) for r in results) == [0, len(SHIPPED)]
        async with a.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM schema_migrations")).fetchone()
        assert row == (len(SHIPPED),)


async def test_failed_migration_leaves_the_schema_as_it_was(empty_db_conninfo: str, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path / "migrations")
    (folder / "0002_good.sql").write_text("CREATE TABLE extra_good (id integer PRIMARY KEY);\n")
    async with Database(empty_db_conninfo) as db:
        await migrate(db, folder)
        before = await _schema(db)
        (folder / "0003_bad.sql").write_text(
            "CREATE TABLE extra_bad (id integer);\nALTER TABLE satellites ADD COLUMN junk integer;\nSELECT 1 / 0;\n"
        )
        with pytest.raises(MigrationError, match=r"0003_bad\.sql failed and was rolled back.*division by zero"):
            await migrate(db, folder)
        assert await _schema(db) == before  # neither extra_bad nor satellites.junk
        assert await applied_versions(db) == {1: "init", 2: "good"}
        # Fixed, it applies (and only it).
        (folder / "0003_bad.sql").write_text("CREATE TABLE extra_bad (id integer);\n")
        assert [m.version for m in await migrate(db, folder)] == [3]


async def test_a_syntax_error_is_reported_with_its_position(empty_db_conninfo: str, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path / "migrations")
    (folder / "0002_typo.sql").write_text("CREATE TABEL oops (id integer);\n")
    async with Database(empty_db_conninfo) as db:
        with pytest.raises(MigrationError, match=r"0002_typo\.sql failed.*at character 8.*syntax error"):
            await migrate(db, folder)
        # 0001 ran in its own transaction before 0002 failed: it stays.
        assert await applied_versions(db) == {1: "init"}


async def test_an_edited_applied_migration_is_an_error(empty_db_conninfo: str, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path / "migrations")
    async with Database(empty_db_conninfo) as db:
        await migrate(db, folder)
        before = await _schema(db)
        with (folder / "0001_init.sql").open("a") as f:
            f.write("\nCREATE TABLE sneaky (id integer);\n")
        (folder / "0002_next.sql").write_text("CREATE TABLE next_one (id integer);\n")
        with pytest.raises(MigrationError, match=r"0001_init\.sql changed after it was applied"):
            await migrate(db, folder)
        assert await _schema(db) == before  # and 0002 was not applied either


async def test_a_database_newer_than_the_code_is_an_error(empty_db_conninfo: str, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path / "migrations")
    (folder / "0002_future.sql").write_text("SELECT 1;\n")
    async with Database(empty_db_conninfo) as db:
        await migrate(db, folder)
        (folder / "0002_future.sql").unlink()
        with pytest.raises(MigrationError, match=r"does not know \(0002_future\)"):
            await migrate(db, folder)


@pytest.mark.parametrize("name", ["1_init.sql", "0002-dash.sql", "0002_Upper.sql"])
def test_badly_named_files_are_refused(tmp_path: Path, name: str) -> None:
    folder = _copy_migrations(tmp_path / "migrations")
    (folder / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"is not named NNNN_lowercase_name\.sql"):
        load_migrations(folder)


def test_two_files_with_one_version_are_refused(tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path / "migrations")
    (folder / "0001_again.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="two migrations have version 0001"):
        load_migrations(folder)


# -- the schema ------------------------------------------------------------------------------

_SAT = "INSERT INTO satellites (id, name, updated_at) VALUES ('sat-1', 'Sat 1', now())"
_GOOD_ROWS = [
    _SAT,
    "INSERT INTO ground_stations (id, name, lat_deg, lon_deg) VALUES ('gs', 'GS', 10, 20)",
    "INSERT INTO telemetry VALUES ('sat-1', now(), 50, 1, 'science', NULL, NULL, NULL, true)",
    "INSERT INTO commands (satellite_id, kind, idempotency_key, submitted_by) VALUES ('sat-1', 'noop', 'k1', 'me')",
    "INSERT INTO tasks (satellite_id, kind, ground_station_id, window_start, window_end)"
    " VALUES ('sat-1', 'downlink', 'gs', now(), now() + interval '5 min')",
    "INSERT INTO alarms (satellite_id, kind, severity) VALUES ('sat-1', 'low_energy', 'critical')",
    "INSERT INTO audit_log (actor, action, entity) VALUES ('me', 'thing.do', 'thing')",
]
# (statement, the SQLSTATE class that refuses it)
_BAD_ROWS = [
    ("INSERT INTO satellites (id, name, updated_at) VALUES ('bad id!', 'x', now())", psycopg.errors.CheckViolation),
    ("INSERT INTO satellites (id, name, mode, updated_at) VALUES ('s2', 'x', 'party', now())", psycopg.errors.CheckViolation),
    ("INSERT INTO satellites (id, name, energy_pct, updated_at) VALUES ('s2', 'x', 100.5, now())", psycopg.errors.CheckViolation),
    ("INSERT INTO satellites (id, name, energy_pct, updated_at) VALUES ('s2', 'x', 'NaN', now())", psycopg.errors.CheckViolation),
    ("INSERT INTO satellites (id, name, memory_used_mb, memory_capacity_mb, updated_at) VALUES ('s2', 'x', 11, 10, now())",
     psycopg.errors.CheckViolation),
    ("INSERT INTO satellites (id, name, tle_line1, updated_at) VALUES ('s2', 'x', NULL, now())", None),  # fine: no TLE
    ("INSERT INTO satellites (id, name, tle_line1, updated_at) VALUES ('s3', 'x', repeat('1', 69), now())",
     psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES ('sat-1', now(), 50, 1, 'nominal', 10, NULL, NULL, true)", psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES ('sat-1', now(), 50, 1, 'nominal', 91, 0, 500, true)", psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES ('sat-1', now(), -1, 1, 'nominal', NULL, NULL, NULL, true)", psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES ('sat-1', now(), 50, 1, 'warp', NULL, NULL, NULL, true)", psycopg.errors.CheckViolation),
    # a telemetry row's satellite id: 1-64 of [A-Za-z0-9_.-] (0012 states the rule without '{1,64}')
    ("INSERT INTO telemetry VALUES ('bad id!', now(), 50, 1, 'nominal', NULL, NULL, NULL, true)", psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES ('', now(), 50, 1, 'nominal', NULL, NULL, NULL, true)", psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES (repeat('a', 65), now(), 50, 1, 'nominal', NULL, NULL, NULL, true)", psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES ('saté', now(), 50, 1, 'nominal', NULL, NULL, NULL, true)", psycopg.errors.CheckViolation),
    ("INSERT INTO telemetry VALUES (repeat('a', 64), now(), 50, 1, 'nominal', NULL, NULL, NULL, true)", None),  # fine: 64
    ("INSERT INTO commands (satellite_id, kind, idempotency_key, submitted_by) VALUES ('nope', 'noop', 'k', 'me')",
     psycopg.errors.ForeignKeyViolation),
    ("INSERT INTO commands (satellite_id, kind, idempotency_key, submitted_by) VALUES ('sat-1', 'noop', 'k1', 'me')",
     psycopg.errors.UniqueViolation),
    ("INSERT INTO commands (satellite_id, kind, args, idempotency_key, submitted_by) VALUES ('sat-1', 'noop', '[1]', 'k2', 'me')",
     psycopg.errors.CheckViolation),
    ("INSERT INTO commands (satellite_id, kind, idempotency_key, submitted_by, status) VALUES ('sat-1', 'noop', 'k3', 'me', 'done')",
     psycopg.errors.CheckViolation),  # final without finished_at and result
    ("INSERT INTO commands (satellite_id, kind, idempotency_key, submitted_by) VALUES ('sat-1', 'Bad Kind', 'k4', 'me')",
     psycopg.errors.CheckViolation),
    ("INSERT INTO ground_stations (id, name, lat_deg, lon_deg) VALUES ('gs2', 'GS', 91, 0)", psycopg.errors.CheckViolation),
    ("INSERT INTO ground_stations (id, name, lat_deg, lon_deg, min_el_deg) VALUES ('gs2', 'GS', 0, 0, 90)",
     psycopg.errors.CheckViolation),
    ("INSERT INTO tasks (kind, priority) VALUES ('imaging', 101)", psycopg.errors.CheckViolation),
    ("INSERT INTO tasks (kind, window_start, window_end) VALUES ('imaging', now(), now() - interval '1 s')",
     psycopg.errors.CheckViolation),
    ("INSERT INTO tasks (kind, window_start) VALUES ('imaging', now())", psycopg.errors.CheckViolation),
    ("INSERT INTO tasks (kind, ground_station_id) VALUES ('imaging', 'nowhere')", psycopg.errors.ForeignKeyViolation),
    ("INSERT INTO tasks (kind, status) VALUES ('imaging', 'maybe')", psycopg.errors.CheckViolation),
    ("INSERT INTO tasks (kind) VALUES ('juggling')", psycopg.errors.CheckViolation),  # not a TASK_KINDS kind
    ("INSERT INTO alarms (satellite_id, kind, severity) VALUES ('sat-1', 'low_energy', 'critical')",
     psycopg.errors.UniqueViolation),  # a second active alarm of the same kind
    ("INSERT INTO alarms (satellite_id, kind, severity) VALUES ('sat-1', 'other', 'apocalyptic')", psycopg.errors.CheckViolation),
    ("UPDATE audit_log SET actor = 'someone else'", psycopg.errors.InsufficientPrivilege),
    ("DELETE FROM audit_log", psycopg.errors.InsufficientPrivilege),
]


@pytest.mark.parametrize(("statement", "error"), _BAD_ROWS, ids=[f"bad{i}" for i in range(len(_BAD_ROWS))])
async def test_the_schema_refuses_bad_rows(db: Database, statement: str, error: type[Exception] | None) -> None:
    async with db.transaction() as conn:
        for good in _GOOD_ROWS:
            await conn.execute(good.encode())
    if error is None:
        async with db.transaction() as conn:
            await conn.execute(statement.encode())
        return
    with pytest.raises(error):
        async with db.transaction() as conn:
            await conn.execute(statement.encode())


async def test_indexes_for_time_range_queries_and_retention_exist(db: Database) -> None:
    async with db.connection() as conn:
        rows = await (await conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'telemetry'")).fetchall()
    defs = dict(rows)
    assert "(satellite_id, \"time\")" in defs["telemetry_satellite_time"]
    assert "USING brin (\"time\")" in defs["telemetry_time_brin"]


async def test_telemetry_prune_deletes_only_older_rows(db: Database) -> None:
    async with db.transaction() as conn:
        for age_days in (40, 31, 29, 0):
            await conn.execute(
                "INSERT INTO telemetry VALUES ('s', now() - make_interval(days => %s), 50, 0, 'safe', NULL, NULL, NULL, true)",
                (age_days,),
            )
        row = await (await conn.execute("SELECT telemetry_prune(30)")).fetchone()
        assert row == (2,)
        left = await (await conn.execute("SELECT count(*) FROM telemetry")).fetchone()
        assert left == (2,)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        async with db.transaction() as conn:
            await conn.execute("SELECT telemetry_prune(0)")


# -- the command line ------------------------------------------------------------------------


def test_stellarops_migrate_uses_database_url(
    empty_db_conninfo: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_conninfo)
    assert cli.main(["--log-level", "WARNING", "migrate"]) == 0
    assert "applied migration 0001_init.sql" in capsys.readouterr().out
    assert cli.main(["--log-level", "WARNING", "migrate"]) == 0
    assert f"up to date ({len(SHIPPED)} migrations applied)" in capsys.readouterr().out


def test_stellarops_migrate_reports_an_unreachable_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://someone:s3cret-pw@/x?host={tmp_path}&connect_timeout=2")
    assert cli.main(["--log-level", "CRITICAL", "migrate"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to someone@" in err
    assert "s3cret-pw" not in err


def test_embedded_server_from_a_clean_home(tmp_path: Path) -> None:
    """`stellarops migrate` then `seed` with no DATABASE_URL: the embedded server is created under
    $STELLAROPS_HOME/pg (0700, as an unprivileged user when we are root), used, and stopped."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["STELLAROPS_HOME"] = str(home)
    run = [sys.executable, "-m", "py_nodes", "--log-level", "INFO"]
    first = subprocess.run([*run, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "applied migration 0001_init.sql" in first.stdout
    second = subprocess.run([*run, "seed"], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "inserted 24 satellites and 7 ground stations" in second.stdout
    pg = home / "pg"
    assert stat.S_IMODE(pg.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "pg.passfile").stat().st_mode) == 0o600
    if os.geteuid() == 0:
        assert pg.stat().st_uid != 0  # PostgreSQL refuses root; it runs as its own system user
    assert not (pg / "postmaster.pid").exists()  # stopped after each command
    password = (home / "pg.passfile").read_text().strip().rsplit(":", 1)[1]
    log = (pg / "server.log").read_text()
    for text in (first.stdout, first.stderr, second.stdout, second.stderr, log):
        assert password not in text
