"""``stellarops token create --role R [--name N]``: a new API token, its secret on stdout (once).

Uses DATABASE_URL, else the embedded server of the state folder (attached when ``stellarops
up`` runs it, started for the command otherwise), migrated first.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys

from py_nodes.db import ApiTokens, Database, DbError, migrate, running_database
from py_nodes.settings import Settings

__all__ = ["run_token_create"]


def run_token_create(role: str, name: str | None, settings: Settings) -> int:
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("psycopg.pool").setLevel(logging.WARNING)
    label = name or f"{role} token"
    actor = f"cli:{getpass.getuser()}"
    try:
        with running_database(settings.database, settings.node.home) as conninfo:
            token_id, secret = asyncio.run(_create(conninfo, role, label, actor))
    except DbError as exc:
        print(f"stellarops token: {exc}", file=sys.stderr)
        return 1
    print(f"stellarops token: created token {token_id} ({role}, {label!r}); the secret below is not stored "
          "and is shown only now", file=sys.stderr)  # fmt: skip
    print(secret, flush=True)
    return 0


async def _create(conninfo: str, role: str, name: str, actor: str) -> tuple[int, str]:
    async with Database(conninfo, min_size=1, max_size=1) as db:
        await migrate(db)
        token, secret = await ApiTokens(db).create(role, name, actor=actor)
    return token.id, secret
