"""Re-planning: the freeze window holds, an incremental re-plan after one change moves only
what the change reaches and says why, and a seed makes the search repeatable."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from scheduler_support import at, problem, sat, station, synthetic_problem, task, window

from scheduler import Plan, PlanChange, Problem, plan, validate


def test_a_task_inside_the_freeze_window_is_not_moved_for_a_higher_priority_one() -> None:
    low = task("low", sat_id="sat-1", priority=10, duration_s=600.0, deadline_utc=at(600))
    high = task("high", sat_id="sat-1", priority=90, duration_s=600.0, deadline_utc=at(600))
    first = plan(problem(tasks=(low,)))
    assert first.placement("low").start_utc == at(0)  # type: ignore[union-attr]
    p = problem(tasks=(low, high))
    assert plan(p).placement("high") is not None  # with nothing frozen, the higher priority wins
    for incremental in (True, False):
        again = plan(p, previous=first, cause="task_added", incremental=incremental)
        assert validate(p, again, previous=first) == []
        kept = again.placement("low")
        assert kept is not None and kept.frozen and kept.start_utc == at(0)
        assert {u.task_id: u.reason for u in again.unplaced} == {"high": "satellite_busy"}


def test_a_running_task_stays_as_it_was_when_the_clock_moves_on() -> None:
    job = task("job", sat_id="sat-1", duration_s=900.0)
    first = plan(problem(tasks=(job,)))
    later = problem(tasks=(job,), now_utc=at(300))
    again = plan(later, previous=first, cause="clock")
    assert again.placement("job") == dataclasses.replace(first.placements[0], frozen=True)
    assert again.changes == ()
    assert validate(later, again, previous=first) == []


def _day(seed: int = 7) -> tuple[Problem, Plan]:
    p = synthetic_problem(seed, n_tasks=150, n_sats=12, n_stations=4)
    return p, plan(p, budget_s=60.0, max_iterations=300)


def _moved(changes: tuple[PlanChange, ...], kind: str = "moved") -> set[str]:
    return {c.task_id for c in changes if c.change == kind}


def test_cancelling_a_task_moves_nothing_else() -> None:
    p, first = _day()
    gone = first.placements[len(first.placements) // 2].task_id
    dependents = {t.task_id for t in p.tasks if gone in t.depends_on}
    changed = dataclasses.replace(p, tasks=tuple(t for t in p.tasks if t.task_id != gone and t.task_id not in dependents))
    again = plan(changed, previous=first, cause="task_cancelled", budget_s=60.0, max_iterations=100)
    assert validate(changed, again, previous=first) == []
    assert _moved(again.changes) == set()
    assert gone in _moved(again.changes, "removed")
    assert all(c.cause == "task_cancelled" for c in again.changes)
    before = {x.task_id: x for x in first.placements}
    for x in again.placements:
        if x.task_id in before:
            assert (x.sat_id, x.start_utc, x.station_id) == (before[x.task_id].sat_id, before[x.task_id].start_utc, before[x.task_id].station_id)
    # Besides the cancelled task, only a downlink whose data it would have brought may go.
    reasons = {u.task_id: u.reason for u in again.unplaced}
    assert all(reasons.get(t) == "memory" for t in _moved(again.changes, "removed") - {gone})


def test_a_station_down_moves_only_its_downlinks_and_says_why() -> None:
    p, first = _day()
    busiest = max(p.stations, key=lambda s: sum(x.station_id == s.station_id for x in first.placements))
    outage = (p.now_utc + timedelta(hours=2), p.now_utc + timedelta(hours=14))
    hit = {x.task_id for x in first.placements
           if x.station_id == busiest.station_id and x.start_utc < outage[1] and outage[0] < x.end_utc}  # fmt: skip
    assert hit, "the scenario needs downlinks in the outage"
    down = dataclasses.replace(busiest, unavailable=(outage,))
    changed = dataclasses.replace(p, stations=tuple(down if s is busiest else s for s in p.stations))
    again = plan(changed, previous=first, cause="station_down", budget_s=60.0, max_iterations=100)
    assert validate(changed, again, previous=first) == []
    touched = _moved(again.changes) | _moved(again.changes, "removed")
    assert hit <= touched  # every downlink in the outage moved or went out
    dependents_of_hit = {t.task_id for t in p.tasks if set(t.depends_on) & hit}
    # Nothing else moves; another task may only go out for want of the data those brought.
    reasons = {u.task_id: u.reason for u in again.unplaced}
    assert all(reasons.get(t) == "memory" for t in touched - hit - dependents_of_hit)
    assert _moved(again.changes) <= hit | dependents_of_hit
    for c in again.changes:
        if c.task_id in hit:
            assert "down" in c.detail or c.change == "removed"


def test_a_satellite_lost_takes_its_future_tasks_out() -> None:
    p, first = _day()
    lost = max(p.satellites, key=lambda s: sum(x.sat_id == s.sat_id for x in first.placements))
    later = p.now_utc + timedelta(seconds=60)
    changed = dataclasses.replace(
        p, now_utc=later,
        satellites=tuple(dataclasses.replace(s, available=False) if s is lost else s for s in p.satellites),
    )  # fmt: skip
    again = plan(changed, previous=first, cause="satellite_unavailable", budget_s=60.0, max_iterations=100)
    assert validate(changed, again, previous=first) == []
    assert all(x.sat_id != lost.sat_id or x.frozen for x in again.placements)
    on_lost = {x.task_id for x in first.placements if x.sat_id == lost.sat_id and x.end_utc > later}
    assert on_lost <= _moved(again.changes) | _moved(again.changes, "removed")


def test_an_added_task_is_placed_and_nothing_moves() -> None:
    p = problem(
        tasks=(task("a", sat_id="sat-1", duration_s=600.0), task("b", "downlink", sat_id="sat-1")),
        stations=(station(),), station_passes=(window("sat-1", 3600, 4200, station_id="gs-1"),),
    )  # fmt: skip
    first = plan(p)
    added = dataclasses.replace(p, tasks=(*p.tasks, task("c", sat_id="sat-1", priority=80)))
    again = plan(added, previous=first, cause="task_added")
    assert [(c.task_id, c.change, c.cause) for c in again.changes] == [("c", "added", "task_added")]
    assert validate(added, again, previous=first) == []


def test_a_full_replan_may_move_what_an_incremental_one_keeps() -> None:
    p, first = _day(11)
    changed = dataclasses.replace(p, now_utc=p.now_utc + timedelta(seconds=30))
    incremental = plan(changed, previous=first, cause="clock", budget_s=60.0, max_iterations=100)
    assert _moved(incremental.changes) == set()
    full = plan(changed, previous=first, cause="clock", budget_s=60.0, max_iterations=100, incremental=False)
    assert validate(changed, full, previous=first) == []
    assert incremental.stats["kept"] > full.stats["kept"]


def test_the_same_seed_gives_the_same_plan() -> None:
    p = synthetic_problem(3, n_tasks=120, n_sats=8, n_stations=3, tight=0.5)
    runs = [plan(p, seed=5, budget_s=60.0, max_iterations=150) for _ in range(2)]
    assert runs[0].placements == runs[1].placements
    assert runs[0].unplaced == runs[1].unplaced
    assert runs[0].stats["iterations"] == 150 or runs[0].stats["iterations"] < 150  # stops when done


def test_a_changed_satellite_state_is_checked_for_kept_placements() -> None:
    # Memory now full: the kept image no longer fits and goes out with its reason.
    img = task("img", "imaging", sat_id="sat-1", memory_mb=500.0)
    p = problem(tasks=(img,), target_windows=(window("sat-1", 1000, 2000, task_id="img"),))
    first = plan(p)
    full = problem(tasks=(img,), satellites=(sat(memory_used_mb=800.0),),
                   target_windows=(window("sat-1", 1000, 2000, task_id="img"),))  # fmt: skip
    again = plan(full, previous=first, cause="telemetry")
    assert [(c.task_id, c.change) for c in again.changes] == [("img", "removed")]
    assert "memory" in again.changes[0].detail
    assert again.unplaced[0].reason == "memory"
