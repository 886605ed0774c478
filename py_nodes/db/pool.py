"""``Database``: the one owner of database connections (an async psycopg pool).

Everything else borrows a connection for one unit of work (``transaction()``, or
``connection()`` for autocommit statements) and gives it back. Connection failures of any kind
(refused, timed out, lost mid-query, server shutting down, pool exhausted) surface as
``DatabaseUnavailable`` naming the target without its password; SQL errors pass through.
"""

from __future__ import annotations

import logging
import math
import select
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from .errors import DatabaseUnavailable, describe_target

__all__ = ["Connection", "Database", "is_unavailable"]

log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[Any]

# SQLSTATEs that mean "the server went away or is not accepting us", not "your SQL is wrong".
_GONE_STATES = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, cannot connect now


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached (worth retrying later)."""
    if isinstance(exc, DatabaseUnavailable | psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith("08") or state in _GONE_STATES
    return False


class Database:
    """A pool of connections to one database; ``async with Database(conninfo) as db``.

    ``timeout_s`` bounds how long a caller waits for a connection (and the first connect):
    past it the caller gets ``DatabaseUnavailable`` instead of hanging.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout_s: float = 5.0,
        name: str = "stellarops",
    ) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(f"need 0 <= min_size ({min_size}) <= max_size ({max_size}) and max_size >= 1")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.conninfo = conninfo
        self.target = describe_target(conninfo)
        self.timeout_s = timeout_s
        self._sizes = (min_size, max_size)
        self._name = name
        self._pool: AsyncConnectionPool | None = None  # a closed pool cannot reopen: one per connect()

    async def connect(self) -> None:
        """Open the pool; ``DatabaseUnavailable`` (with the server's reason) if the database is unreachable."""
        if self._pool is not None:
            return
        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            timeout=self.timeout_s,
            kwargs={"autocommit": True},
            check=_check_connection,  # drop connections the server closed
            reconnect_timeout=max(60.0, self.timeout_s),
            name=self._name,
            open=False,
        )
        try:
            # One direct attempt first: the pool only says "timed out"; this says why.
            probe = await psycopg.AsyncConnection.connect(self.conninfo, connect_timeout=math.ceil(self.timeout_s))
            await probe.close()
            await pool.open(wait=True, timeout=self.timeout_s)
        except psycopg.Error as exc:
            await pool.close()
            raise DatabaseUnavailable(f"cannot connect to {self.target}: {_reason(exc)}") from None
        self._pool = pool
        log.info("connected to %s", self.target)

    async def close(self) -> None:
        """Close every connection (waits for borrowed ones to come back)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection in autocommit mode, for statements that stand alone (and DDL like CREATE DATABASE)."""
        if self._pool is None:
            raise DatabaseUnavailable(f"not connected to {self.target} (connect() was not called, or failed)")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except BaseException as exc:
            if is_unavailable(exc) and not isinstance(exc, DatabaseUnavailable):
                raise DatabaseUnavailable(f"database {self.target} unavailable: {_reason(exc)}") from None
            raise

    @asynccontextmanager
    async def transaction(self, *, pipelined: bool = False) -> AsyncIterator[Connection]:
        """A connection inside one transaction: committed when the block ends, rolled back if it raises.
        ``pipelined``: statements are sent without waiting for each one's result (psycopg's
        pipeline mode: one round trip for a block that reads nothing back); an error surfaces
        at the end of the block at the latest, and rolls the whole transaction back."""
        async with self.connection() as conn:
            if pipelined:
                async with conn.pipeline(), conn.transaction():
                    yield conn
            else:
                async with conn.transaction():
                    yield conn

    async def ping(self) -> float:
        """Round-trip time of ``SELECT 1`` in seconds; ``DatabaseUnavailable`` when unreachable."""
        start = time.perf_counter()
        async with self.connection() as conn:
            await conn.execute("SELECT 1")
        return time.perf_counter() - start


async def _check_connection(conn: Connection) -> None:
    """The pool's check before it lends ``conn``: a server that closed a connection (a restart,
    an admin's terminate) left its last words and the EOF on the socket, so a socket with
    nothing to read is lent as it is; only a readable one pays a round trip (which raises if it
    is dead). Saves a round trip on every unit of work under load."""
    if not conn.closed:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        if not poller.poll(0):
            return
    await AsyncConnectionPool.check_connection(conn)


def _reason(exc: BaseException) -> str:
    """The first line of a driver error (libpq messages never include the password)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
