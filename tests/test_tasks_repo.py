"""The tasks repository (py_nodes/db/tasks.py) on a real PostgreSQL: checks, transitions, plans."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from py_nodes import vocabulary
from py_nodes.db import Database, NotFound, Satellites, Stations, StationSpec, ValidationError
from py_nodes.db.tasks import PlacementRow, Tasks, TaskSpec, step_key
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


async def setup(db: Database) -> Tasks:
    await Satellites(db).create(SatState(b"sat-1", b"Sat", Mode.NOMINAL, 90.0, 0.0, 1024.0, None, (), 1), actor="t")
    await Stations(db).create(StationSpec("gs", "GS", 10.0, 20.0), actor="t")
    return Tasks(db)


def imaging(**changes: Any) -> TaskSpec:
    spec = TaskSpec("imaging", "sat-1", args={"target_lat_deg": 1.0, "target_lon_deg": 2.0}, memory_mb=5.0,
                    earliest_start=NOW, deadline=NOW + timedelta(hours=2), duration_s=30.0)  # fmt: skip
    return replace(spec, **changes)


async def count(db: Database, table: str) -> int:
    async with db.connection() as conn:
        row = await (await conn.execute(f"SELECT count(*) FROM {table}".encode())).fetchone()
    assert row is not None
    return int(row[0])


BAD: list[tuple[dict[str, Any], str]] = [
    ({"kind": "juggling"}, "kind"),
    ({"priority": 101}, "priority"),
    ({"priority": -1}, "priority"),
    ({"energy_pct": -1.0}, "energy_pct"),
    ({"memory_mb": -5.0}, "memory_mb"),
    ({"duration_s": 0.0}, "duration_s"),
    ({"deadline": NOW - timedelta(seconds=1)}, "deadline"),  # in the past
    ({"deadline": NOW + timedelta(seconds=10)}, "duration_s"),  # 30 s do not fit in 10
    ({"earliest_start": NOW + timedelta(hours=3)}, "deadline"),  # deadline before the start
    ({"deadline": datetime(2030, 1, 2)}, "deadline"),  # naive
    ({"args": {"target_lat_deg": 91.0, "target_lon_deg": 0.0}}, "args.target_lat_deg"),
    ({"args": {"target_lon_deg": 0.0}}, "args.target_lat_deg"),
    ({"args": {"target_lat_deg": 0.0, "target_lon_deg": 0.0, "colour": 1}}, "args.colour"),
    ({"ground_station_id": "gs"}, "ground_station_id"),  # an imaging task uses no station
    ({"satellite_id": "sat 1"}, "satellite_id"),
    ({"satellite_id": "nope"}, "satellite_id"),  # unknown (NotFound)
    ({"kind": "downlink", "args": {}, "ground_station_id": "nowhere"}, "ground_station_id"),
    ({"kind": "downlink", "args": {}, "depends_on": 999}, "depends_on"),
    ({"kind": "maintenance", "args": {"mode": "party"}}, "args.mode"),
    ({"kind": "command", "args": {"command": "launch"}}, "args.command"),
    ({"kind": "command", "args": {"command": "set_mode"}}, "args.mode"),
    ({"kind": "command", "args": {"command": "noop", "mode": "safe"}}, "args.mode"),
]


@pytest.mark.parametrize(("changes", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
async def test_a_bad_task_names_its_field_and_writes_nothing(db: Database, changes: dict[str, Any], field: str) -> None:
    tasks = await setup(db)
    with pytest.raises(ValidationError) as caught:
        await tasks.create(imaging(**changes), actor="op", now=NOW)
    assert caught.value.field == field, caught.value
    assert await count(db, "tasks") == 0
    assert await count(db, "audit_log WHERE entity = 'task'") == 0


async def test_unknown_references_are_not_found(db: Database) -> None:
    tasks = await setup(db)
    with pytest.raises(NotFound):
        await tasks.create(imaging(satellite_id="ghost"), actor="op", now=NOW)


async def test_a_task_goes_through_its_life_once(db: Database) -> None:
    tasks = await setup(db)
    task = await tasks.create(imaging(), actor="op", now=NOW)
    assert (task.status, task.attempts, task.planned_start) == ("pending", 0, None)
    run = await tasks.apply_plan(
        cause="task_added", detail="", holder="h", horizon=(NOW, NOW + timedelta(hours=24)), solve_ms=1.5, value=50,
        placements=[PlacementRow(task.id, "sat-1", None, NOW + timedelta(minutes=5), NOW + timedelta(minutes=6))],
        unplaced={}, handled_requests=[],
    )  # fmt: skip
    assert (run.placed, run.unplaced, run.cause) == (1, 0, "task_added")
    got = await tasks.get(task.id)
    assert got is not None and (got.status, got.planned_attempt, got.plan_run_id) == ("scheduled", 1, run.id)
    assert await tasks.mark_running(task.id, 1)
    assert not await tasks.mark_running(task.id, 1)  # a second scheduler finds it moved
    assert await tasks.mark_done(task.id, {"ok": True})
    assert not await tasks.mark_done(task.id, {"ok": True})
    done = await tasks.get(task.id)
    assert done is not None and (done.status, done.attempts, done.planned_start) == ("done", 1, None)
    _, changed = await tasks.cancel(task.id, actor="op")
    assert not changed  # final stays final


async def test_a_failed_attempt_retries_then_fails(db: Database) -> None:
    tasks = await setup(db)
    task = await tasks.create(imaging(max_retries=1, earliest_start=None, deadline=datetime.now(UTC) + timedelta(hours=1)), actor="op")
    horizon = (NOW, NOW + timedelta(hours=24))
    for attempt, expected in ((1, "pending"), (2, "failed")):
        await tasks.apply_plan(
            cause="manual", detail="", holder="h", horizon=horizon, solve_ms=0, value=0,
            placements=[PlacementRow(task.id, "sat-1", None, NOW, NOW + timedelta(seconds=30))], unplaced={},
            handled_requests=[],
        )  # fmt: skip
        got = await tasks.get(task.id)
        assert got is not None and got.planned_attempt == attempt
        assert await tasks.mark_running(task.id, attempt)
        assert await tasks.mark_attempt_failed(task.id, "refused", backoff_s=1.0) == expected
    final = await tasks.get(task.id)
    assert final is not None and (final.status, final.reason, final.attempts) == ("failed", "execution_failed", 2)


async def test_an_unplaced_task_keeps_its_reason_and_a_cancel_wins_over_a_plan(db: Database) -> None:
    tasks = await setup(db)
    a = await tasks.create(imaging(), actor="op", now=NOW)
    b = await tasks.create(imaging(), actor="op", now=NOW)
    await tasks.cancel(b.id, actor="op")
    request = await tasks.request_replan("manual", "by hand", actor="op")
    assert [r[0] for r in await tasks.open_requests()] == [request]
    run = await tasks.apply_plan(
        cause="manual", detail="", holder="h", horizon=(NOW, NOW + timedelta(hours=1)), solve_ms=0, value=0,
        placements=[PlacementRow(b.id, "sat-1", None, NOW, NOW + timedelta(seconds=30))],
        unplaced={a.id: ("energy", "battery too low")}, handled_requests=[request],
    )  # fmt: skip
    got_a, got_b = await tasks.get(a.id), await tasks.get(b.id)
    assert got_a is not None and (got_a.status, got_a.reason, got_a.reason_detail) == ("pending", "energy", "battery too low")
    assert got_b is not None and (got_b.status, got_b.planned_start) == ("cancelled", None)
    assert await tasks.open_requests() == []
    assert await tasks.request_outcome(request) == run.id
    assert await tasks.run_changes(run.id) == []
    changed = await tasks.apply_plan(
        cause="station_down", detail="gs down", holder="h", horizon=(NOW, NOW + timedelta(hours=1)), solve_ms=0,
        value=0, placements=[], unplaced={}, handled_requests=[],
        changes=[{"task_id": a.id, "change": "removed", "detail": "gs is down"}],
    )  # fmt: skip
    assert await tasks.run_changes(changed.id) == [{"task_id": a.id, "change": "removed", "detail": "gs is down"}]
    with pytest.raises(ValidationError):
        await tasks.apply_plan(
            cause="because", detail="", holder="h", horizon=(NOW, NOW + timedelta(hours=1)), solve_ms=0, value=0,
            placements=[], unplaced={}, handled_requests=[],
        )  # fmt: skip


async def test_a_station_taken_down_asks_for_a_replan(db: Database) -> None:
    tasks = await setup(db)
    changed, request = await tasks.set_station_active("gs", False, actor="op")
    assert changed and request is not None
    assert await tasks.open_requests() == [(request, "station_down", "gs down")]
    assert await tasks.set_station_active("gs", False, actor="op") == (False, None)
    with pytest.raises(NotFound):
        await tasks.set_station_active("nowhere", False, actor="op")


async def test_counts_and_the_step_keys(db: Database) -> None:
    tasks = await setup(db)
    await tasks.create(imaging(), actor="op", now=NOW)
    counts = await tasks.counts()
    assert tuple(counts) == vocabulary.TASK_STATES and counts["pending"] == 1
    by_cause, last = await tasks.run_stats()
    assert tuple(by_cause) == vocabulary.PLAN_CAUSES and last is None
    assert step_key(7, 2, "start") == "task-7-a2-start"
