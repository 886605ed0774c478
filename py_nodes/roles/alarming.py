"""The store node's alarm keeper: judges every telemetry sample by the limits in the database,
stores the alarm transitions they make, expires shelves, and publishes each transition.

Why here and not on the satellites' nodes: the store node already receives every tick's
telemetry (``stellar_store`` batches) and owns the database, so the limit table needs no
distribution (no new messages between BEAM and Python) and a limit edited over HTTP is in force
for the next samples anywhere in the cluster; after a restart it is read again from PostgreSQL.

Every ``PERIOD_S`` (while this store node owns the database) the keeper reloads the limit table
(small) and expires shelves. An alarm an operator clears by hand while its value is still out
of limits is raised again only once the value has come back and left again (as before limits
were data: one alarm per entry into the condition); a restarted store starts its watches from
the open alarms in the database. Judging is synchronous and pure (``py_nodes.limits``); the
transitions go through a queue to the database, retried while it is down, in order. Each stored
transition is published as an ``alarm`` event on BEAM's bus (``stellar:publish/3``).
``memory_used_pct`` needs each satellite's capacity (``py_nodes.capacities``): every one read
from the database when the keeper starts judging, then learned from creates and checkpoints (a
satellite looked up and not known is read once from the database; judged from then on).
Samples that arrive before the first load, or while another store owns the database, are not
judged; a store that (re)gains ownership starts its watches from the open alarms stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import numpy as np

from py_nodes.capacities import Capacities
from py_nodes.db import Database, DatabaseUnavailable, DbError, TelemetryColumns
from py_nodes.db.alarms import AlarmRecord, Alarms, AlarmTransition
from py_nodes.db.limits import Limits
from py_nodes.db.values import ms_from_datetime
from py_nodes.limits import Change, LimitEngine

__all__ = ["JUDGE_CHUNK", "PERIOD_S", "AlarmKeeper", "event_data"]

log = logging.getLogger("stellarops.alarms")

PERIOD_S: Final = 1.0
RETRY_MAX_S: Final = 5.0
MAX_QUEUED: Final = 10_000  # transitions waiting for the database (beyond: dropped, logged)
# Samples judged in one go. A tick's telemetry (10,000 rows a second at 10k satellites) judged at
# once held the store node's event loop ~80 ms, and every command call waited behind it: beyond
# this many, the rest is judged by a task, a chunk at a time, in arrival order. (Judged by column,
# a chunk within limits takes well under a ms; one whose every sample is out of limits, ~4 ms.)
JUDGE_CHUNK: Final = 500

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]  # (satellite id, event data)


def event_data(alarm: AlarmRecord, transition: AlarmTransition) -> dict[str, Any]:
    """An ``alarm`` event's data: the alarm after the transition (``alarm`` names its kind,
    as the satellites' own alarm events did)."""
    data: dict[str, Any] = {
        "alarm_id": alarm.id, "alarm": alarm.kind, "kind": alarm.kind, "severity": alarm.severity,
        "message": alarm.message, "transition": transition.transition, "state": alarm.state, "active": alarm.active,
        "actor": transition.actor, "comment": transition.comment,
    }  # fmt: skip
    if transition.value is not None:
        data["value"] = transition.value
    if alarm.state == "cleared":
        data["cleared"] = True
        data["cleared_by"] = alarm.cleared_by
    if alarm.shelved_until is not None:
        data["shelved_until_ms"] = ms_from_datetime(alarm.shelved_until)
    return data


class AlarmKeeper:
    def __init__(self, db: Database, publish: Publish, owner: Callable[[], bool]) -> None:
        self.alarms = Alarms(db)
        self.limits = Limits(db)
        self.engine = LimitEngine()
        self._publish = publish
        self._owner = owner
        self._ready = False
        self.capacities = Capacities()
        self._changes: asyncio.Queue[Change] = asyncio.Queue()
        self._backlog: deque[TelemetryColumns] = deque()  # offered, not judged yet (in order)
        self._backlog_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._housekeeping()), loop.create_task(self._writer()),
                       loop.create_task(self._judge_backlog())]  # fmt: skip

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def note_capacity(self, sat_id: str, capacity_mb: Any) -> None:
        self.capacities.note(sat_id, capacity_mb)

    def offer(self, batch: TelemetryColumns) -> None:
        """Judge telemetry samples (any order across satellites; time order per satellite): up
        to ``JUDGE_CHUNK`` at once, the rest (or all, while a backlog waits) soon after."""
        if not self._ready or not self._owner():
            return
        if self._backlog or len(batch) > JUDGE_CHUNK:
            self._backlog.extend(batch.slice(i, i + JUDGE_CHUNK) for i in range(0, len(batch), JUDGE_CHUNK))
            self._backlog_ready.set()
            return
        self._judge(batch)

    async def _judge_backlog(self) -> None:
        while True:
            await self._backlog_ready.wait()
            while self._backlog:
                chunk = self._backlog.popleft()
                if self._ready and self._owner():
                    self._judge(chunk)
                await asyncio.sleep(0)  # let the calls waiting on this loop go first
            self._backlog_ready.clear()

    def _judge(self, batch: TelemetryColumns) -> None:
        engine = self.engine
        going_on = engine.going_on if engine.anything_going_on() else None
        values = {
            "energy_pct": batch.energy_pct,
            "memory_used_mb": batch.memory_used_mb,
            "memory_used_pct": self.capacities.memory_used_pct(
                batch.satellite_id, batch.memory_used_mb, engine.fleet_limit("memory_used_pct"), going_on
            ),
            "alt_km": np.where(batch.position_known, batch.alt_km, np.nan),
        }
        for change in self.engine.sample_many(batch.satellite_id, batch.time_ms.tolist(), values):
            if self._changes.qsize() >= MAX_QUEUED:
                log.error("alarms: %d transitions wait for the database; dropped %s", MAX_QUEUED, change)
                continue
            self._changes.put_nowait(change)

    async def _housekeeping(self) -> None:
        seeded = False
        while True:
            try:
                if not self._owner():
                    seeded = False  # another store may raise and clear meanwhile: start over when back
                else:
                    if not seeded:
                        self.engine.seed(await self.alarms.raised_conditions())
                        self.capacities.replace_all(await self.limits.capacities())
                        seeded = True
                    self.engine.set_limits((r.satellite_id, r.limit) for r in await self.limits.all())
                    self._ready = True
                    if self.capacities.unknown:
                        unknown, self.capacities.unknown = list(self.capacities.unknown), set()
                        for sat_id, capacity_mb in (await self.limits.capacities(unknown)).items():
                            self.capacities.note(sat_id, capacity_mb)
                    for alarm, transitions in await self.alarms.expire_shelves():
                        await self._announce(alarm, transitions)
            except DbError as exc:
                log.warning("alarms: %s", exc)
            except Exception:  # a bug: say so, keep the keeper alive
                log.exception("alarms: housekeeping failed")
            await asyncio.sleep(PERIOD_S)

    async def _writer(self) -> None:
        while True:
            change = await self._changes.get()
            delay_s = 0.2
            while True:
                try:
                    result = await self.alarms.apply(change)
                    if result is not None:
                        await self._announce(*result)
                    break
                except DatabaseUnavailable as exc:
                    log.warning("alarms: %s; retrying in %.1f s", exc, delay_s)
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, RETRY_MAX_S)
                except DbError as exc:  # e.g. the satellite was deleted meanwhile
                    log.warning("alarms: %s not stored: %s", change, exc)
                    break

    async def _announce(self, alarm: AlarmRecord, transitions: tuple[AlarmTransition, ...]) -> None:
        for transition in transitions:
            log.log(logging.WARNING if transition.transition in ("raised", "escalated") else logging.INFO,
                    "alarm %d %s %s: %s (%s)", alarm.id, alarm.satellite_id, alarm.kind, transition.transition, alarm.message)  # fmt: skip
            try:
                await self._publish(alarm.satellite_id, event_data(alarm, transition))
            except Exception as exc:  # stored: clients see it on their next fetch
                log.warning("alarms: alarm %d's %s not published: %s", alarm.id, transition.transition, exc)
