"""``OwnershipLease``: one cluster at a time owns a database.

The owner is the store node holding PostgreSQL session advisory lock ``OWNER_KEY``, on a
connection of its own (not the pool's: a pooled connection is shared and recycled, and the lock
belongs to the session). PostgreSQL releases the lock when that session ends, however the owner
ends (clean stop, kill -9, lost connection), so ownership cannot be leaked by a dead process.

``owner`` holds until ``grace_s - renew_s`` after the last renewal that got an answer, not while
the lock's session merely looks open: a renewal stuck on a session that a partition cut off (no
answer and no error until the network returns) does not keep us the owner.

The ``cluster_owner`` row (migration 0006) says who holds it, for the reason a refused cluster
logs, and when the owner last renewed it (every ``renew_s``). A newcomer that finds the lock free
takes over only if that row is its own, absent, or older than ``grace_s``; otherwise the owner's
session merely dropped (a database restart) and it is reconnecting. The owner, for its part,
stays owner for ``grace_s - renew_s`` after its last renewal while it takes the lock back (fast
retries), which no newcomer can reach: a database restart does not interrupt it. A clean stop
deletes the row, so the next cluster takes over at its next attempt (every ``retry_s``).

``allow(False)`` (the BEAM node of this store lost quorum: it is on the minority side of a
partition) gives the lease up the same way (row deleted, lock released, ``owner`` false at once)
and makes no attempt until ``allow(True)``: the majority side's store takes the database over at
its next attempt, while this side refuses everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any, Final

import psycopg

__all__ = ["OWNER_KEY", "AdvisoryLock", "OwnershipLease", "lock_session"]

log = logging.getLogger(__name__)

OWNER_KEY: Final = 0x5354_454C_4F57_4E  # "STELOWN" (migrations use "STELLAR")
RECONNECT_S: Final = 0.2  # the owner's first retry after losing its lease connection
# Server-side TCP keepalive of the lease session (s, s, probes): ignored on Unix sockets.
KEEPALIVE: Final = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3}


class OwnershipLease:
    """``await lease.start()`` makes a first attempt, then keeps trying (or renewing) in the
    background; ``owner`` says whether we own the database, ``reason`` why not; ``close()``
    lets go."""

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
        self.held = False  # the lock is ours on a live session
        self.ever_owned = False
        self.connection_losses = 0
        self.reason = "the ownership lease was not tried yet"
        self._valid_until = -math.inf  # monotonic: owner until then even without the session
        self._was_owner = False
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self.allowed = True
        self._lock = asyncio.Lock()  # one attempt or give-up at a time on the lease session
        self._give_up_task: asyncio.Task[None] | None = None

    @property
    def owner(self) -> bool:
        # Not `held`: a renewal stuck on a session cut off by a partition (no answer, no error
        # until the network returns) must not keep us the owner past our lease.
        return self.allowed and time.monotonic() < self._valid_until

    async def start(self) -> None:
        await self._attempt()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ownership-lease")

    async def close(self) -> None:
        """Stop trying; as owner, delete the row and unlock, so the next cluster takes over now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                if self.held:
                    await conn.execute("DELETE FROM cluster_owner WHERE holder = %s", (self.holder,))
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (OWNER_KEY,))
                    log.info("ownership lease released: the database is free for another cluster")
            with contextlib.suppress(psycopg.Error):
                await conn.close()
        self.held, self._valid_until = False, -math.inf
        self._note("stopped")

    def allow(self, allowed: bool, why: str = "this node's cluster has no quorum") -> None:
        """Whether this store may own the database (call it in the event loop). Refused,
        ``owner`` is false at once and the lease is given up in the background as soon as no
        attempt is running on its session (one stuck on a cut-off connection ends with it)."""
        if allowed == self.allowed:
            return
        self.allowed = allowed
        if allowed:
            log.info("ownership lease: allowed again (%s)", self.holder)
            return
        self._valid_until = -math.inf  # not the owner again before an attempt takes the lock again
        self._note(why)
        if self.held:
            self._give_up_task = asyncio.get_running_loop().create_task(self._give_up(why), name="lease-give-up")

    async def _give_up(self, why: str) -> None:
        async with self._lock:
            conn = self._conn
            if self.allowed or not self.held or conn is None:
                return
            try:
                await conn.execute("DELETE FROM cluster_owner WHERE holder = %s", (self.holder,))
                await conn.execute("SELECT pg_advisory_unlock(%s)", (OWNER_KEY,))
            except psycopg.Error:
                await self._drop_connection()  # the session's end releases the lock too
            self.held = False
            log.warning("ownership lease given up: %s", why)

    async def _run(self) -> None:
        delay_s = RECONNECT_S
        while True:
            if self.held:
                wait_s, delay_s = self.renew_s, RECONNECT_S
            elif self.owner:  # lost the session, still within our lease: take it back quickly
                wait_s, delay_s = delay_s, min(delay_s * 2, self.retry_s)
            else:
                wait_s = self.retry_s
            await asyncio.sleep(wait_s)
            await self._attempt()

    async def _attempt(self) -> None:
        async with self._lock:
            if self.allowed:
                await self._attempt_locked()

    async def _attempt_locked(self) -> None:
        started = time.monotonic()
        try:
            conn = await self._connection()
            if self.held:
                cur = await conn.execute("UPDATE cluster_owner SET renewed_at = now() WHERE holder = %s", (self.holder,))
                if cur.rowcount != 1:  # the row went (by hand?): we hold the lock, say so again
                    await self._claim(conn, started)
                self._valid_until = started + self.grace_s - self.renew_s
            else:
                await self._acquire(conn, started)
        except psycopg.Error as exc:
            await self._drop_connection()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.held:
                self.connection_losses += 1
                log.error(
                    "ownership lease: lost its connection (%s); still the owner for %.1f s while taking it back",
                    first, max(0.0, self._valid_until - time.monotonic()),
                )  # fmt: skip
            self.held = False
            self._note(f"no connection to the database for the ownership lease: {first}")

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await lock_session(self.conninfo, connect_timeout_s=max(1, math.ceil(self.retry_s)))
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _acquire(self, conn: psycopg.AsyncConnection[Any], started: float) -> None:
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (OWNER_KEY,))).fetchone()
        current = await (
            await conn.execute(
                "SELECT holder, acquired_at, extract(epoch FROM now() - renewed_at)::float8 FROM cluster_owner"
            )
        ).fetchone()
        if not (row and row[0]):
            self._valid_until = -math.inf  # someone else holds it: whatever we thought is over
            who = f"{current[0]} (owner since {current[1]:%Y-%m-%d %H:%M:%S %Z})" if current else "another session"
            self._note(f"the database is owned by {who}")
            return
        if current is not None and current[0] != self.holder and current[2] < self.grace_s:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (OWNER_KEY,))
            self._note(
                f"the database is owned by {current[0]}, whose lease is free but was renewed {current[2]:.0f} s"
                f" ago (it may be reconnecting); taking over if it is not back within {self.grace_s:.0f} s"
            )
            return
        await self._claim(conn, started)

    async def _claim(self, conn: psycopg.AsyncConnection[Any], started: float) -> None:
        await conn.execute(
            "INSERT INTO cluster_owner (holder) VALUES (%s) ON CONFLICT (singleton) DO UPDATE"
            " SET holder = EXCLUDED.holder, acquired_at = now(), renewed_at = now()",
            (self.holder,),
        )
        self._valid_until = started + self.grace_s - self.renew_s
        self.held = self.ever_owned = True
        self._note("")

    def _note(self, reason: str) -> None:
        """Logs changes of ownership (and of the reason we do not have it)."""
        owner = self.owner
        if owner and not self._was_owner:
            log.info("ownership lease taken: this cluster (%s) owns the database", self.holder)
        elif not owner and (self._was_owner or reason != self.reason):
            log.warning("not the owner of the database: %s; not restoring or delivering anything", reason)
        self._was_owner = owner
        self.reason = reason


async def lock_session(conninfo: str, *, connect_timeout_s: int) -> psycopg.AsyncConnection[Any]:
    """A connection of its own for a session advisory lock (autocommit).

    PostgreSQL releases such a lock only when it notices the session is gone. A host cut off by a
    partition sends no FIN, and the OS's default keepalive waits 2 h: the server probes this idle
    session and drops it within ~11 s (``KEEPALIVE``)."""
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=connect_timeout_s)
    for setting, value in KEEPALIVE.items():
        await conn.execute(f"SET {setting} = {value}")
    return conn


class AdvisoryLock:
    """A session advisory lock ``key`` held on a ``lock_session``: ``await check()`` says whether
    we hold it now (taking it if it is free); losing the connection loses the lock."""

    def __init__(self, conninfo: str, key: int, *, what: str) -> None:
        self._conninfo, self._key, self._what = conninfo, key, what
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.held = False

    async def check(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self.held = False
                self._conn = await lock_session(self._conninfo, connect_timeout_s=2)
            if self.held:
                await self._conn.execute("SELECT 1")
            else:
                row = await (await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))).fetchone()
                self.held = bool(row and row[0])
        except psycopg.Error as exc:
            if self.held:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                log.warning("%s: lost the lock's connection (%s)", self._what, first)
            await self.close()
        return self.held

    async def close(self) -> None:
        conn, self._conn, self.held = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
