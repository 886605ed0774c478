"""``stellarops migrate`` and ``stellarops seed``: against DATABASE_URL, else the embedded server
(started for the command and stopped after it, unless it was already running)."""

from __future__ import annotations

import asyncio
import logging
import sys

from py_nodes.settings import Settings

from .errors import DbError
from .migrate import applied_versions, migrate
from .pool import Database
from .seed import seed
from .server import running_database

__all__ = ["run_db_command"]


def run_db_command(command: str, settings: Settings) -> int:
    """Run ``migrate`` or ``seed``; the exit status (1 with a message on stderr when it fails)."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("psycopg.pool").setLevel(logging.WARNING)  # one INFO line per checkout
    try:
        with running_database(settings.database, settings.node.home) as conninfo:
            return asyncio.run(_run(command, conninfo, settings.up.demo_satellites))
    except DbError as exc:
        print(f"stellarops {command}: {exc}", file=sys.stderr)
        return 1


async def _run(command: str, conninfo: str, demo_satellites: int) -> int:
    async with Database(conninfo, min_size=1, max_size=2) as db:
        applied = await migrate(db)  # seeding needs the schema too
        for migration in applied:
            print(f"applied migration {migration.filename}")
        if command == "migrate":
            if not applied:
                count = len(await applied_versions(db))
                print(f"{db.target}: up to date ({count} migrations applied)")
            return 0
        report = await seed(db, count=demo_satellites)
        if report.skipped:
            print(f"seed: nothing to do: {report.skipped}")
        else:
            print(f"seed: inserted {report.satellites} satellites and {report.ground_stations} ground stations")
        return 0
