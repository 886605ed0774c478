"""Whether the database answers, known before a request waits on it.

``DatabaseGate.watch()`` probes PostgreSQL every ``interval_s`` over a connection of its own
(not the pool: a pool busy with slow queries is not an outage), each probe bounded by
``probe_timeout_s``. A failed probe, or a request that got ``DatabaseUnavailable``, marks the
database down at once; a probe that succeeds marks it up again. While it is down:

- ``check()`` raises ``DatabaseDown`` (503 ``database_unavailable`` with ``Retry-After``) so a
  route that needs the database answers in microseconds instead of waiting for the pool's
  timeout;
- requests already waiting inside ``run()`` are cut at once and answer the same 503.

Routes that need no database (live state from BEAM, the event stream, tokens already in the
authenticator's cache) are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

from py_nodes.db import Database
from py_nodes.db.probe import ProbeConnection

from .errors import DatabaseDown

__all__ = ["DatabaseGate"]

log = logging.getLogger("stellarops.web")
T = TypeVar("T")

INTERVAL_S: Final = 0.5
PROBE_TIMEOUT_S: Final = 2.0  # a hung server; a refused connection is known at once
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
        self._went_down: asyncio.Future[None] | None = None  # set when the database goes away
        self._abandoned: set[asyncio.Future[Any]] = set()  # cut requests' work, finishing
        self._probe = ProbeConnection(db.conninfo, connect_timeout_s=self.probe_timeout_s)
        self._probing: asyncio.Future[None] | None = None

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
            if self._went_down is not None and not self._went_down.done():
                self._went_down.set_result(None)  # cut every request waiting in run()
            self._went_down = None
        self.reason = f"the database is unavailable: {reason}"[:300]

    def mark_up(self) -> None:
        if not self.up:
            log.info("gateway: database available again")
        self.up, self.reason, self.down_since = True, "", None

    async def run(self, work: Awaitable[T]) -> T:
        """``await work`` (which uses the database); ``DatabaseDown`` at once if the database is
        away, or as soon as it goes away while ``work`` waits. The work runs in a task of its
        own: cancelling a query on a server that does not answer can itself hang (the driver
        tries to reach the server to cancel it), so a cut request answers first and its task
        finishes in the background."""
        task = asyncio.ensure_future(work)
        if not self.up:
            self._abandon(task)
            raise self.error()
        if self._went_down is None:
            self._went_down = asyncio.get_running_loop().create_future()
        went_down = self._went_down
        try:
            await asyncio.wait((task, went_down), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        if task.done():
            return task.result()
        self._abandon(task)
        raise self.error()

    def _abandon(self, task: asyncio.Future[Any]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a cut database request ended with %r", task.exception())

    async def probe(self) -> None:
        """One probe on the gate's own connection (``ProbeConnection``) (made again when lost), in a
        task of its own that may outlive its deadline (see ``run``); while one is stuck, no
        other starts and the database stays down."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe.check())  # drops its connection on failure
        probing = self._probing
        done, _ = await asyncio.wait((probing,), timeout=self.probe_timeout_s)
        if not done:
            self.mark_down(f"no answer within {self.probe_timeout_s:g} s")
            return
        exc = probing.exception()
        if exc is not None:
            self.mark_down(_first_line(exc))
        else:
            self.mark_up()

    async def watch(self) -> None:
        """Probe until cancelled."""
        try:
            while True:
                await self.probe()
                await asyncio.sleep(self.interval_s)
        finally:
            if self._probing is not None:
                self._probing.cancel()
            for task in list(self._abandoned):
                task.cancel()
            await self._drop_probe()

    async def _drop_probe(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._probe.close(), 1.0)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
