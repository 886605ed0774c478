"""``OwnershipLease``: one cluster at a time owns a database.

The owner is the store node holding PostgreSQL session advisory lock ``OWNER_KEY``, on a
connection of its own (not the pool's: a pooled connection is shared and recycled, and the lock
belongs to the session). PostgreSQL releases the lock when that session ends, however the owner
ends (clean stop, kill -9, lost connection), so ownership cannot be leaked by a dead process.

The ``cluster_owner`` row (migration 0006) says who holds it, for the reason a refused cluster
logs, and when the owner last renewed it (every ``renew_s``). A lock found free while that row,
held by another cluster, was renewed less than ``grace_s`` ago belongs to an owner whose
connection dropped (a database restart) and that is reconnecting: the newcomer lets go and waits,
so the old owner gets it back. A clean stop deletes the row: the next cluster takes over at its
next attempt (every ``retry_s``) without waiting for the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any, Final

import psycopg

__all__ = ["OWNER_KEY", "OwnershipLease"]

log = logging.getLogger(__name__)

OWNER_KEY: Final = 0x5354_454C_4F57_4E  # "STELOWN" (migrations use "STELLAR")


class OwnershipLease:
    """``await lease.start()`` makes a first attempt, then keeps trying (or renewing) in the
    background; ``owner`` says whether we hold it, ``reason`` why not; ``close()`` lets go."""

    def __init__(
        self, conninfo: str, holder: str, *, retry_s: float = 2.0, renew_s: float = 2.0, grace_s: float = 10.0
    ) -> None:
        if not (retry_s > 0 and 0 < renew_s < grace_s):
            raise ValueError(f"need retry_s > 0 and 0 < renew_s ({renew_s}) < grace_s ({grace_s})")
        if not 1 <= len(holder) <= 255:
            raise ValueError(f"holder must be 1..255 characters, got {len(holder)}")
        self.conninfo = conninfo
        self.holder = holder
        self.retry_s, self.renew_s, self.grace_s = retry_s, renew_s, grace_s
        self.owner = False
        self.ever_owned = False
        self.reason = "the ownership lease was not tried yet"
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self._attempt()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ownership-lease")

    async def wait_changed(self) -> None:
        """Returns at the next change of ``owner`` (for tests and status readers)."""
        self._changed.clear()
        await self._changed.wait()

    async def close(self) -> None:
        """Stop trying; as owner, delete the row and unlock, so the next cluster takes over now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(psycopg.Error):
            if self.owner:
                await conn.execute("DELETE FROM cluster_owner WHERE holder = %s", (self.holder,))
                await conn.execute("SELECT pg_advisory_unlock(%s)", (OWNER_KEY,))
                log.info("ownership lease released: the database is free for another cluster")
        self._set(False, "stopped")
        with contextlib.suppress(psycopg.Error):
            await conn.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s if self.owner else self.retry_s)
            await self._attempt()

    async def _attempt(self) -> None:
        try:
            conn = await self._connection()
            if self.owner:
                cur = await conn.execute(
                    "UPDATE cluster_owner SET renewed_at = now() WHERE holder = %s", (self.holder,)
                )
                if cur.rowcount != 1:  # the row went (by hand?): we still hold the lock, say so again
                    await self._claim(conn)
            else:
                await self._acquire(conn)
        except psycopg.Error as exc:
            await self._drop_connection()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.owner:
                log.error("ownership lease lost with its connection (%s); taking it again when the database is back", first)
            self._set(False, f"no connection to the database for the ownership lease: {first}")

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, connect_timeout=max(1, math.ceil(self.retry_s))
            )
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _acquire(self, conn: psycopg.AsyncConnection[Any]) -> None:
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (OWNER_KEY,))).fetchone()
        current = await (
            await conn.execute(
                "SELECT holder, acquired_at, extract(epoch FROM now() - renewed_at)::float8 FROM cluster_owner"
            )
        ).fetchone()
        if not (row and row[0]):
            who = f"{current[0]} (owner since {current[1]:%Y-%m-%d %H:%M:%S %Z})" if current else "another session"
            self._set(False, f"the database is owned by {who}")
            return
        if current is not None and current[0] != self.holder and current[2] < self.grace_s:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (OWNER_KEY,))
            self._set(
                False,
                f"the database was owned by {current[0]} {current[2]:.1f} s ago (its lease is free: it may be"
                f" reconnecting); taking over if it is not back within {self.grace_s - current[2]:.0f} s",
            )
            return
        await self._claim(conn)

    async def _claim(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            "INSERT INTO cluster_owner (holder) VALUES (%s) ON CONFLICT (singleton) DO UPDATE"
            " SET holder = EXCLUDED.holder, acquired_at = now(), renewed_at = now()",
            (self.holder,),
        )
        self._set(True, "")

    def _set(self, owner: bool, reason: str) -> None:
        changed = owner != self.owner or (not owner and reason != self.reason)
        self.owner, self.reason = owner, reason
        if owner and not self.ever_owned:
            self.ever_owned = True
        if changed:
            if owner:
                log.info("ownership lease taken: this cluster (%s) owns the database", self.holder)
            else:
                log.warning("not the owner of the database: %s; not restoring or delivering anything", reason)
            self._changed.set()
