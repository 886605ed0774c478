"""The store node's alarm keeper against a real PostgreSQL: telemetry samples judged by the
stored limits (memory in percent of each satellite's stored capacity), transitions written and
published in order, a batch sent twice judged once, shelves expired, nothing judged while
another store owns the database, and watches started from the open alarms after a restart."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from py_nodes.db import Database, Satellites, TelemetryColumns, TelemetryRow
from py_nodes.db.alarms import Alarms
from py_nodes.db.limits import Limits
from py_nodes.limits import Change, Limit
from py_nodes.roles.alarming import JUDGE_CHUNK, AlarmKeeper
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def row(second: int, energy_pct: float = 50.0, memory_used_mb: float = 0.0, sat_id: str = "k-1") -> TelemetryRow:
    return TelemetryRow(sat_id, T0 + timedelta(seconds=second), energy_pct, memory_used_mb, "safe", None, None, None, True)


def cols(rows: list[TelemetryRow]) -> TelemetryColumns:
    return TelemetryColumns.from_rows(rows)


async def until(probe: Any, what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := await probe()):
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.05)
    return value


async def test_the_keeper_judges_stores_and_publishes(db: Database) -> None:
    state = SatState(b"k-1", b"K", Mode.SAFE, 50.0, 0.0, 200.0, None, (), 0)
    await Satellites(db).create(state, actor="test")
    published: list[tuple[str, dict[str, Any]]] = []
    owner = True

    async def publish(sat_id: str, data: dict[str, Any]) -> None:
        published.append((sat_id, data))

    keeper = AlarmKeeper(db, publish, lambda: owner)
    keeper.start()
    try:
        keeper.offer(cols([row(0, energy_pct=5.0)]))  # before the first load: not judged
        await until(lambda: asyncio.sleep(0, keeper._ready), "the limits loaded")
        alarms = Alarms(db)
        assert await alarms.find() == []
        # memory_used_pct needs the capacity (200 MB, read from the database on first sight).
        keeper.offer(cols([row(1, memory_used_mb=200.0)]))
        await until(lambda: asyncio.sleep(0, not keeper.capacities.unknown and "k-1" in keeper.capacities), "the capacity read")
        batch = [row(2, energy_pct=9.0, memory_used_mb=200.0)]
        keeper.offer(cols(batch))
        keeper.offer(cols(batch))  # sent again: judged once
        async def both() -> list[Any]:
            found = await alarms.find()
            return found if len(found) == 2 else []

        raised = await until(both, "two alarms")
        assert sorted((a.kind, a.severity, a.latched) for a in raised) == [("low_energy", "critical", True), ("memory_full", "warning", True)]
        await until(lambda: asyncio.sleep(0, len(published) == 2), "two events")
        assert {d["alarm"] for _, d in published} == {"low_energy", "memory_full"} and all(d["transition"] == "raised" for _, d in published)
        # A limit edited in the database is in force within a period: energy back above 10 + 1.
        await Limits(db).put(Limit("energy_pct", critical_low=40, hysteresis=1), satellite_id="k-1", actor="t")
        await until(lambda: asyncio.sleep(0, (keeper.engine.limit_for("k-1", "energy_pct") or Limit("")).critical_low == 40), "the edit loaded")
        keeper.offer(cols([row(3, energy_pct=30.0, memory_used_mb=200.0)]))
        assert keeper._changes.empty()  # judged at once: 30 < 40, still low, no change
        keeper.offer(cols([row(4, energy_pct=45.0, memory_used_mb=10.0)]))
        await until(lambda: asyncio.sleep(0, len(published) >= 4), "the returns")
        # Latched: both wait for their acknowledgement, inactive.
        assert [(a.state, a.active) for a in await alarms.find()] == [("unacknowledged", False)] * 2
        # Not the owner: nothing judged.
        owner = False
        keeper.offer(cols([row(5, energy_pct=1.0)]))
        assert keeper._changes.empty() and len(published) == 4
    finally:
        await keeper.close()

    # A restarted store's keeper starts its watches from the open alarms: a value back in limits
    # clears the one still active; a shelf that expires is published.
    for alarm in await Alarms(db).find():
        await Alarms(db).clear(alarm.id, actor="t")
    active = await Alarms(db).apply(Change("raised", "low_energy", "critical", 5.0, "low", satellite_id="k-1"))
    await Satellites(db).create(replace(state, id=b"k-2"), actor="test")
    shelved = await Alarms(db).apply(Change("raised", "low_energy", "warning", 5.0, "low", satellite_id="k-2"))
    assert active is not None and shelved is not None
    await Alarms(db).shelve(shelved[0].id, actor="op", duration_s=1)
    published.clear()
    again = AlarmKeeper(db, publish, lambda: True)
    again.start()
    try:
        await until(lambda: asyncio.sleep(0, again._ready), "the limits loaded")
        again.offer(cols([row(10, energy_pct=60.0)]))
        await until(lambda: asyncio.sleep(0, {"cleared", "unshelved"} <= {d["transition"] for _, d in published}), "return and expiry")
        assert (await Alarms(db).get(active[0].id)).state == "cleared"
        assert (await Alarms(db).get(shelved[0].id)).state == "unacknowledged"
        # A batch larger than a chunk is judged after offer() returns, in order: only its last
        # sample is out of limits (fails if the backlog is dropped or judged out of order).
        big = [row(20 + i, energy_pct=60.0) for i in range(JUDGE_CHUNK * 2)] + [row(20 + JUDGE_CHUNK * 2, energy_pct=2.0)]
        again.offer(cols(big))
        assert again._changes.empty()  # not judged yet: the caller's loop is free
        async def raised_again() -> list[Any]:
            return [a for a in await Alarms(db).find() if a.satellite_id == "k-1" and a.active]
        assert [a.kind for a in await until(raised_again, "the big batch's alarm")] == ["low_energy"]
    finally:
        await again.close()
