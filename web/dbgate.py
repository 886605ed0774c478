"""Whether the database answers, known before a request waits on it.

``DatabaseGate.watch()`` probes PostgreSQL every ``interval_s`` over a connection of its own
(not the pool: a pool busy with slow queries is not an outage), each probe bounded by
``probe_timeout_s``. A failed probe, or a request that got ``DatabaseUnavailable``, marks the
database down at once; a probe that succeeds marks it up again. While it is down:

- ``check()`` raises ``DatabaseDown`` (503 ``database_unavailable`` with ``Retry-After``) so a
  route that needs the database answers in microseconds instead of waiting for the pool's
  timeout;
- requests already waiting inside ``guarded()`` are cut (their ``asyncio.timeout`` is
  rescheduled to now) and answer the same 503.

Routes that need no database (live state from BEAM, the event stream, tokens already in the
authenticator's cache) are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import psycopg

from py_nodes.db import Database

from .errors import DatabaseDown

__all__ = ["DatabaseGate"]

log = logging.getLogger("stellarops.web")

INTERVAL_S: Final = 0.5
PROBE_TIMEOUT_S: Final = 1.0
RETRY_AFTER_S: Final = 2


class DatabaseGate:
    def __init__(
        self, db: Database, *, interval_s: float = INTERVAL_S, probe_timeout_s: float = PROBE_TIMEOUT_S
    ) -> None:
        self._db = db
        self.interval_s = interval_s
        self.probe_timeout_s = probe_timeout_s
        self.up = True  # optimistic until a probe or a request says otherwise
        self.reason = ""
        self.down_since: float | None = None  # time.time() of the outage's start
        self.outages = 0
        self._cuts: set[asyncio.Timeout] = set()
        self._probe: psycopg.AsyncConnection[Any] | None = None

    def error(self) -> DatabaseDown:
        return DatabaseDown(self.reason or "the database is unavailable", retry_after_s=RETRY_AFTER_S)

    def check(self) -> None:
        """Raise ``DatabaseDown`` while the database is known to be away."""
        if not self.up:
            raise self.error()

    def mark_down(self, reason: str) -> None:
        if self.up:
            self.up = False
            self.down_since = time.time()
            self.outages += 1
            log.warning("gateway: database unavailable (%s): routes that need it answer 503", reason)
            loop_time = asyncio.get_running_loop().time()
            for cut in self._cuts:
                cut.reschedule(loop_time)
        self.reason = f"the database is unavailable: {reason}"[:300]

    def mark_up(self) -> None:
        if not self.up:
            log.info("gateway: database available again")
        self.up, self.reason, self.down_since = True, "", None

    @contextlib.asynccontextmanager
    async def guarded(self) -> AsyncIterator[None]:
        """Run a block that uses the database; ``DatabaseDown`` if it is away, or goes away
        while the block waits."""
        self.check()
        cut = asyncio.timeout(None)
        try:
            async with cut:
                self._cuts.add(cut)
                try:
                    yield
                finally:
                    self._cuts.discard(cut)
        except TimeoutError:
            if cut.expired():
                raise self.error() from None
            raise

    async def probe(self) -> None:
        """One probe: ``SELECT 1`` on the gate's own connection (made again when lost)."""
        try:
            async with asyncio.timeout(self.probe_timeout_s):
                if self._probe is None or self._probe.closed:
                    self._probe = await psycopg.AsyncConnection.connect(
                        self._db.conninfo, autocommit=True, connect_timeout=max(2, round(self.probe_timeout_s))
                    )
                await self._probe.execute("SELECT 1")
        except (psycopg.Error, TimeoutError, OSError) as exc:
            await self._drop_probe()
            timed_out = isinstance(exc, TimeoutError)
            self.mark_down(f"no answer within {self.probe_timeout_s:g} s" if timed_out else _first_line(exc))
            return
        self.mark_up()

    async def watch(self) -> None:
        """Probe until cancelled."""
        try:
            while True:
                await self.probe()
                await asyncio.sleep(self.interval_s)
        finally:
            await self._drop_probe()

    async def _drop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(probe.close(), 1.0)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
