"""Ground stations' antennas and down windows (issue 17), on a real PostgreSQL: stored and
validated (repository and HTTP: 422 naming the field, nothing stored), turned into the
scheduler's stations by the live problem builder and planned by the real engine; a change asks
for a re-plan, and the live re-plan is incremental (the engine's previous plan, with antennas).

Pass windows are given (the demo constellation rarely puts two satellites over one station at
once): ``Passes`` is the live builder (tasks, satellites and stations as stored) with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from web_support import expect_invalid_field, gateway

import scheduler
from py_nodes.db import Database, Satellites, Stations, StationSpec, ValidationError
from py_nodes.db.stations import Station as DbStation
from py_nodes.db.tasks import PlacementRow, Task, Tasks, TaskSpec
from py_nodes.demo import demo_constellation
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode
from py_nodes.tasking.problem import LiveSat, ProblemBuilder
from py_nodes.tasking.service import PlanOutcome, plan_once

BASE = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
# Real orbits (the demo's): their sunlight charges the batteries over the horizon.
SATS = [
    LiveSat(sat_id, "nominal", 90.0, 0.0, 1024.0, (demo.tle_line1, demo.tle_line2), True)
    for sat_id, demo in zip(("sat-a", "sat-b"), demo_constellation(2), strict=True)
]


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


class Passes(ProblemBuilder):
    def __init__(self, passes: Sequence[tuple[str, float, float]], *, freeze_s: float = 30.0) -> None:
        super().__init__(horizon_s=5400.0, freeze_s=freeze_s, setup_gap_s=0.0)
        self.passes = tuple(scheduler.Window(sat, at(a), at(b), station_id="gs") for sat, a, b in passes)

    def build(self, now: datetime, tasks: Sequence[Task], sats: Sequence[LiveSat], stations: Sequence[DbStation]) -> scheduler.Problem:
        return dataclasses.replace(super().build(now, tasks, sats, stations), station_passes=self.passes)


async def setup(db: Database, **station: Any) -> Tasks:
    for sat_id in ("sat-a", "sat-b"):
        await Satellites(db).create(SatState(sat_id.encode(), b"Sat", Mode.NOMINAL, 90.0, 0.0, 1024.0, None, (), 1), actor="t")
    await Stations(db).create(StationSpec("gs", "GS", 10.0, 20.0, **station), actor="t")
    return Tasks(db)


async def downlink(tasks: Tasks, sat_id: str, deadline_min: float, duration_s: float = 240.0) -> Task:
    return await tasks.create(
        TaskSpec("downlink", sat_id, "gs", earliest_start=BASE, deadline=at(deadline_min), duration_s=duration_s), actor="t"
    )


async def solve(db: Database, builder: ProblemBuilder, cause: str, now: datetime = BASE, last: scheduler.Plan | None = None) -> PlanOutcome:
    tasks = await Tasks(db).open_tasks()
    outcome = await plan_once(builder, tasks, SATS, await Stations(db).list_all(), budget_s=2.0, cause=cause, now=now, last=last)
    assert scheduler.validate(outcome.problem, outcome.plan) == []
    return outcome


async def store(db: Database, outcome: PlanOutcome) -> None:
    plan = outcome.plan
    await Tasks(db).apply_plan(
        cause=plan.cause, detail="", holder="test", horizon=(BASE, at(180)), solve_ms=plan.solve_ms, value=float(plan.value),
        placements=[PlacementRow(int(p.task_id), p.sat_id, p.station_id, p.start_utc, p.end_utc) for p in plan.placements],
        unplaced={int(u.task_id): (str(u.reason), u.detail) for u in plan.unplaced}, handled_requests=[],
    )  # fmt: skip


@pytest.mark.parametrize("antennas", [1, 2])
async def test_two_downlinks_share_a_pass_only_on_two_antennas(db: Database, antennas: int) -> None:
    tasks = await setup(db, antennas=antennas)
    a, b = await downlink(tasks, "sat-a", 10), await downlink(tasks, "sat-b", 10)
    outcome = await solve(db, Passes([("sat-a", 1, 6), ("sat-b", 1, 6)]), "manual")
    station = outcome.problem.stations[0]
    assert station.antennas == antennas
    placed = {p.task_id: p for p in outcome.plan.placements}
    if antennas == 2:
        pa, pb = placed[str(a.id)], placed[str(b.id)]
        assert pa.start_utc < pb.end_utc and pb.start_utc < pa.end_utc, (pa, pb)  # at the same time
        assert {pa.antenna, pb.antenna} == {0, 1}
    else:
        assert len(placed) == 1, outcome.plan.unplaced
        (unplaced,) = outcome.plan.unplaced
        assert unplaced.reason == "station_conflict", unplaced


async def test_a_down_window_over_a_downlink_moves_it_then_leaves_it_out(db: Database) -> None:
    tasks = await setup(db)
    task = await downlink(tasks, "sat-a", 60, duration_s=120)
    builder = Passes([("sat-a", 5, 10), ("sat-a", 30, 35)])
    first = await solve(db, builder, "manual")
    (placed,) = first.plan.placements
    assert at(5) <= placed.start_utc < at(10)
    await store(db, first)

    station, changed, request = await tasks.change_station("gs", {"unavailable": [(at(4), at(11))]}, actor="op")
    assert changed and request is not None and station.unavailable == ((at(4), at(11)),)
    assert await tasks.open_requests() == [(request, "station_down", "gs down: unavailable changed")]
    second = await solve(db, builder, "station_down", last=first.plan)
    (moved,) = second.plan.placements
    assert at(30) <= moved.start_utc < at(35)
    assert [(c.task_id, c.change) for c in second.plan.changes] == [(str(task.id), "moved")]
    await store(db, second)

    await tasks.change_station("gs", {"unavailable": [(at(4), at(11)), (at(29), at(40))]}, actor="op")
    third = await solve(db, builder, "station_down", last=second.plan)
    assert third.plan.placements == ()
    (out,) = third.plan.unplaced
    assert (out.task_id, out.reason) == (str(task.id), "station_conflict")
    assert (await tasks.get(task.id) or task).planned_start == moved.start_utc  # not stored yet: the test stores plans

    # Shorter down time is capacity back: station_up.
    _, _, request = await tasks.change_station("gs", {"unavailable": []}, actor="op")
    assert (await tasks.open_requests())[-1] == (request, "station_up", "gs up: unavailable changed")


async def test_a_replan_keeps_overlapping_frozen_downlinks_on_their_antennas(db: Database) -> None:
    tasks = await setup(db, antennas=2)
    a, b = await downlink(tasks, "sat-a", 10), await downlink(tasks, "sat-b", 10)
    builder = Passes([("sat-a", 1, 6), ("sat-b", 1, 6), ("sat-a", 60, 70)], freeze_s=600.0)
    first = await solve(db, builder, "manual")
    await store(db, first)
    before = {p.task_id: (p.start_utc, p.antenna) for p in first.plan.placements}
    assert set(before) == {str(a.id), str(b.id)}
    await downlink(tasks, "sat-a", 80)  # a change elsewhere
    # With the engine's previous plan, and after a takeover (none: antennas from the stored placements).
    for last in (first.plan, None):
        again = await solve(db, builder, "task_added", now=BASE + timedelta(seconds=90), last=last)
        kept = {p.task_id: (p.start_utc, p.antenna) for p in again.plan.placements if p.task_id in before}
        assert {k: v[0] for k, v in kept.items()} == {k: v[0] for k, v in before.items()}, last
        assert {v[1] for v in kept.values()} == {0, 1}
        assert len(again.plan.placements) == 3
        assert all(c.task_id not in before for c in again.plan.changes), again.plan.changes


# -- bad values: the field named, nothing stored ------------------------------------------------

NOW = datetime.now(UTC)
BAD: list[tuple[dict[str, Any], str]] = [
    ({"antennas": 0}, "antennas"),
    ({"antennas": 17}, "antennas"),
    ({"antennas": True}, "antennas"),
    ({"antennas": 2.0}, "antennas"),
    ({"unavailable": [(NOW + timedelta(hours=2), NOW + timedelta(hours=1))]}, "unavailable[0].to"),
    ({"unavailable": [(NOW, NOW)]}, "unavailable[0].to"),
    ({"unavailable": [(NOW, NOW + timedelta(hours=1)), (NOW, NOW + timedelta(days=400))]}, "unavailable[1].to"),
    ({"unavailable": [(datetime(1999, 1, 1, tzinfo=UTC), NOW)]}, "unavailable[0].from"),
    ({"unavailable": [(datetime(2030, 1, 1), datetime(2030, 1, 2))]}, "unavailable[0].from"),  # naive
    ({"unavailable": [(NOW, NOW + timedelta(hours=1))] * 33}, "unavailable"),
    ({"unavailable": "soon"}, "unavailable"),
]


@pytest.mark.parametrize(("changes", "field"), BAD)
async def test_bad_capacity_names_its_field_and_stores_nothing(db: Database, changes: dict[str, Any], field: str) -> None:
    tasks = await setup(db)
    with pytest.raises(ValidationError) as created:
        await Stations(db).create(StationSpec("gs2", "GS2", 1.0, 2.0, **changes), actor="t")
    assert created.value.field == field
    with pytest.raises(ValidationError) as changed:
        await tasks.change_station("gs", changes, actor="op")
    assert changed.value.field == field
    assert [(s.id, s.antennas, s.unavailable) for s in await Stations(db).list_all()] == [("gs", 1, ())]
    assert await tasks.open_requests() == []


def _t(delta: timedelta) -> str:
    return (NOW + delta).isoformat().replace("+00:00", "Z")


HTTP_BAD: list[tuple[dict[str, Any], str]] = [
    ({"antennas": 0}, "antennas"),
    ({"antennas": 17}, "antennas"),
    ({"antennas": "2"}, "antennas"),
    ({"unavailable": [{"from": _t(timedelta(hours=2)), "to": _t(timedelta(hours=1))}]}, "unavailable[0].to"),
    ({"unavailable": [{"from": _t(timedelta(0)), "to": _t(timedelta(days=400))}]}, "unavailable[0].to"),
    ({"unavailable": [{"from": "tomorrow", "to": _t(timedelta(hours=1))}]}, "unavailable[0].from"),
    ({"unavailable": [{"from": _t(timedelta(0))}]}, "unavailable[0].to"),
    ({"unavailable": [{"from": _t(timedelta(0)), "to": _t(timedelta(hours=1))}] * 33}, "unavailable"),
]


async def test_bad_capacity_over_http_is_422_with_the_field_and_nothing_stored(db_conninfo: str) -> None:
    async with gateway(db_conninfo) as gw:
        admin = gw.auth("admin")
        base = {"id": "gs", "name": "GS", "lat_deg": 1, "lon_deg": 2}
        created = await gw.client.post("/api/ground-stations", json={**base, "antennas": 3}, headers=admin)
        assert created.status == 201
        assert (await created.json())["antennas"] == 3
        for body, field in HTTP_BAD:
            await expect_invalid_field(await gw.client.post("/api/ground-stations", json={**base, "id": "gs2", **body}, headers=admin), field)
            await expect_invalid_field(await gw.client.patch("/api/ground-stations/gs", json=body, headers=admin), field)
        stations = await (await gw.client.get("/api/ground-stations", headers=gw.auth("viewer"))).json()
        assert [(s["id"], s["antennas"], s["unavailable"]) for s in stations["items"]] == [("gs", 3, [])]
        window = {"from": _t(timedelta(hours=1)), "to": _t(timedelta(hours=2))}
        response = await gw.client.patch("/api/ground-stations/gs", json={"antennas": 2, "unavailable": [window]}, headers=admin)
        assert response.status == 200
        body = await response.json()
        assert (body["antennas"], body["active"], body["changed"], len(body["unavailable"])) == (2, True, True, 1)
        assert isinstance(body["request_id"], int)
