"""Property-based tests: on random small problems every plan validates clean, the search never
ends below the greedy construction, and a re-plan after one change keeps the freeze window."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scheduler_support import T0, at, synthetic_problem

from scheduler import (
    UNPLACED_REASONS,
    Plan,
    Problem,
    SatelliteResources,
    Station,
    Task,
    TaskKind,
    Window,
    greedy_plan,
    plan,
    validate,
)

pytestmark = pytest.mark.property

HORIZON_S = 4 * 3600.0
SLOT_S = 60.0
MODES = ["science", "downlink", "maintenance", "nominal"]


def _span(draw: st.DrawFn, min_len: float, max_len: float) -> tuple[float, float]:
    start = draw(st.one_of(st.just(0), st.integers(0, int(HORIZON_S // SLOT_S) - 1))) * SLOT_S
    length = draw(st.integers(int(min_len // SLOT_S), int(max_len // SLOT_S))) * SLOT_S
    return start, min(HORIZON_S, start + length)


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    """A few satellites, stations and tasks with tight batteries and memories."""
    n_sats = draw(st.integers(1, 3))
    n_stations = draw(st.integers(1, 2))
    sats: list[SatelliteResources] = []
    stations: list[Station] = []
    passes: list[Window] = []
    sunlit: list[Window] = []
    targets: list[Window] = []
    tasks: list[Task] = []
    for j in range(n_stations):
        down = []
        if draw(st.booleans()):
            a, b = _span(draw, 600, 3600)
            down.append((at(a), at(b)))
        stations.append(Station(f"gs-{j}", downlink_mbps=draw(st.sampled_from([10.0, 50.0])),
                                antennas=draw(st.integers(1, 2)),
                                setup_gap_s=draw(st.sampled_from([0.0, 60.0, 120.0])),
                                unavailable=tuple(down)))  # fmt: skip
    for i in range(n_sats):
        sid = f"sat-{i}"
        battery = draw(st.floats(20, 100))
        sats.append(SatelliteResources(
            sid, battery_wh=battery, energy_now_wh=battery * draw(st.floats(0.3, 1.0)),
            reserve_wh=battery * 0.2, charge_w=draw(st.floats(0, 40)),
            load_w={"nominal": draw(st.floats(0, 10)), "science": draw(st.floats(0, 60)),
                    "downlink": draw(st.floats(0, 40)), "maintenance": draw(st.floats(0, 10))},
            memory_capacity_mb=draw(st.floats(100, 2000)), memory_used_mb=draw(st.floats(0, 100)),
            available=draw(st.integers(0, 9)) > 0,
        ))  # fmt: skip
        for _ in range(draw(st.integers(0, 3))):
            a, b = _span(draw, 1200, 5400)
            sunlit.append(Window(sid, at(a), at(b)))
        for station in stations:
            for _ in range(draw(st.integers(0, 3))):
                a, b = _span(draw, 120, 900)
                passes.append(Window(sid, at(a), at(b), station_id=station.station_id,
                                     max_elevation_deg=draw(st.floats(0, 90))))  # fmt: skip
    sat_ids = [s.sat_id for s in sats]
    for k in range(draw(st.integers(1, 9))):
        tid = f"t{k}"
        kind: TaskKind = draw(st.sampled_from(["imaging", "downlink", "maintenance", "command"]))
        earliest, deadline = _span(draw, 600, HORIZON_S)
        imaging_done = [t.task_id for t in tasks if t.kind == "imaging"]
        depends = tuple(draw(st.lists(st.sampled_from(imaging_done), max_size=1))) if imaging_done and kind == "downlink" else ()
        pinned = draw(st.one_of(st.none(), st.sampled_from(sat_ids)))
        tasks.append(Task(
            tid, kind, draw(st.integers(0, 100)), at(earliest), at(deadline + SLOT_S),
            draw(st.integers(1, 10)) * SLOT_S if kind != "downlink" or draw(st.booleans()) else 0.0,
            energy_wh=draw(st.floats(0, 20)),
            memory_mb=draw(st.floats(1 if kind == "downlink" else 0, 600)),
            sat_id=pinned, depends_on=depends,
            station_id=draw(st.one_of(st.none(), st.sampled_from([s.station_id for s in stations]))) if kind == "downlink" else None,
            min_elevation_deg=draw(st.floats(0, 60)),
            needs_sunlight=kind != "downlink" and draw(st.booleans()),
            mode=draw(st.sampled_from(MODES)) if kind == "maintenance" and draw(st.booleans()) else None,
        ))  # fmt: skip
        if kind == "imaging":
            for v in ([pinned] if pinned else sat_ids):
                for _ in range(draw(st.integers(0, 2))):
                    a, b = _span(draw, 300, 3600)
                    targets.append(Window(v, at(a), at(b), task_id=tid))
    return Problem(T0, tuple(tasks), tuple(sats), tuple(stations), tuple(passes), tuple(targets),
                   tuple(sunlit), horizon_s=HORIZON_S, slot_s=SLOT_S)  # fmt: skip


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _accounted(p: Problem, result: Plan) -> None:
    placed = [x.task_id for x in result.placements]
    assert len(placed) == len(set(placed))
    assert sorted(placed + [u.task_id for u in result.unplaced]) == sorted(t.task_id for t in p.tasks)
    assert all(u.reason in UNPLACED_REASONS for u in result.unplaced)
    prio = {t.task_id: t.priority for t in p.tasks}
    assert result.value == sum(prio[t] for t in placed)


@FAST
@given(problems())
def test_every_plan_validates_and_beats_or_equals_the_greedy(p: Problem) -> None:
    baseline = greedy_plan(p)
    assert validate(p, baseline) == []
    result = plan(p, budget_s=5.0, max_iterations=60, seed=1)
    assert validate(p, result) == []
    _accounted(p, result)
    assert result.value >= baseline.value


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_synthetic_constellation_days_validate(seed: int) -> None:
    p = synthetic_problem(seed, n_tasks=40, n_sats=5, n_stations=3, tight=0.5)
    result = plan(p, budget_s=5.0, max_iterations=40, seed=seed)
    assert validate(p, result) == []
    _accounted(p, result)
    assert result.value >= greedy_plan(p).value


def _change(p: Problem, which: int, later: timedelta, first: Plan) -> tuple[Problem, str]:
    """One change to ``p``, seen ``later`` (the clock moved on)."""
    now = p.now_utc + later
    if which == 0 and p.tasks:
        return dataclasses.replace(p, now_utc=now, tasks=p.tasks[1:]), "task_cancelled"
    if which == 1:
        # Urgent, on the satellite of the first placement: it would push that one out if the
        # freeze window did not hold it.
        sat_id = first.placements[0].sat_id if first.placements else None
        extra = Task("new", "command", 100, now, now + timedelta(seconds=300), 120.0, energy_wh=1.0, sat_id=sat_id)
        return dataclasses.replace(p, now_utc=now, tasks=(*p.tasks, extra)), "task_added"
    if which == 2 and p.stations:
        down = dataclasses.replace(p.stations[0], unavailable=((now, now + timedelta(hours=2)),))
        return dataclasses.replace(p, now_utc=now, stations=(down, *p.stations[1:])), "station_down"
    sat0 = dataclasses.replace(p.satellites[0], available=False)
    return dataclasses.replace(p, now_utc=now, satellites=(sat0, *p.satellites[1:])), "satellite_unavailable"


@FAST
@given(problems(), st.integers(0, 3), st.sampled_from([0, 60, 120, 240]))
def test_a_replan_after_one_change_keeps_the_freeze_window_and_validates(p: Problem, which: int, later_s: int) -> None:
    first = plan(p, budget_s=5.0, max_iterations=30)
    changed, cause = _change(p, which, timedelta(seconds=later_s), first)
    for incremental in (True, False):
        again = plan(changed, budget_s=5.0, max_iterations=30, previous=first, cause=cause, incremental=incremental)
        assert validate(changed, again, previous=first) == []
        _accounted(changed, again)
        assert all(c.cause == cause for c in again.changes)
