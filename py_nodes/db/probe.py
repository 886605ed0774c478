"""A connection of its own that answers one question: is the server there?

The gateway's outage gate probes with it, apart from the pool, so that a pool busy with slow
requests (or one waiting on a dead server) cannot make the probe lie. The connection is made on
first use and made again after it is lost.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

__all__ = ["ProbeConnection"]


class ProbeConnection:
    def __init__(self, conninfo: str, *, connect_timeout_s: float = 2.0) -> None:
        self._conninfo = conninfo
        self._connect_timeout_s = max(2, round(connect_timeout_s))  # libpq takes whole seconds, >= 2
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def check(self) -> None:
        """``SELECT 1``; raises ``psycopg.Error`` or ``OSError`` (the connection is dropped then)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=self._connect_timeout_s
                )
            await self._conn.execute("SELECT 1")
        except (psycopg.Error, OSError):
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
