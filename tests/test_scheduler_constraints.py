"""Each constraint of the model binds on a small case, and the planner says why with the
expected reason; every plan here is also checked by the independent validator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from scheduler_support import T0, at, problem, sat, station, task, window

from scheduler import UNPLACED_REASONS, Plan, Problem, Task, Window, plan, validate

LOADS = {"nominal": 10.0, "science": 40.0, "downlink": 20.0, "maintenance": 5.0}


def solve(p: Problem, **kw: object) -> Plan:
    result = plan(p, budget_s=0.5, **kw)  # type: ignore[arg-type]
    assert validate(p, result) == []
    assert {u.reason for u in result.unplaced} <= set(UNPLACED_REASONS)
    placed = {x.task_id for x in result.placements}
    assert placed.isdisjoint(u.task_id for u in result.unplaced)
    assert placed | {u.task_id for u in result.unplaced} == {t.task_id for t in p.tasks}
    assert result.value == sum(t.priority for t in p.tasks if t.task_id in placed)
    return result


def reasons(result: Plan) -> dict[str, str]:
    return {u.task_id: u.reason for u in result.unplaced}


def downlink(task_id: str = "dl", **kw: object) -> Task:
    return task(task_id, "downlink", sat_id="sat-1", **kw)


def passes(*spans: tuple[float, float], sat_id: str = "sat-1", station_id: str = "gs-1", el: float = 45.0) -> tuple[Window, ...]:
    return tuple(window(sat_id, a, b, station_id=station_id, max_elevation_deg=el) for a, b in spans)


def test_a_downlink_goes_inside_a_pass_on_the_grid() -> None:
    p = problem(tasks=(downlink(duration_s=120.0),), stations=(station(),),
                station_passes=passes((1000.5, 1500.0)), slot_s=60.0)  # fmt: skip
    result = solve(p)
    (placed,) = result.placements
    assert (placed.start_utc, placed.end_utc) == (at(1020), at(1140))  # first minute in the pass
    assert (placed.station_id, placed.antenna) == ("gs-1", 0)


def test_a_downlink_lasts_what_its_data_needs_at_the_station_rate() -> None:
    # 800 MB at 80 Mbps: 80 s (longer than its 30 s minimum).
    p = problem(tasks=(downlink(duration_s=30.0, memory_mb=800.0),), stations=(station(),),
                station_passes=passes((0, 500)), satellites=(sat(memory_used_mb=800.0),))  # fmt: skip
    (placed,) = solve(p).placements
    assert placed.duration_s == 80.0
    assert placed.memory_mb == -800.0


def test_no_pass_is_window_and_a_low_pass_too() -> None:
    p = problem(
        tasks=(downlink("ok"), downlink("low", min_elevation_deg=30.0), downlink("short", duration_s=600.0)),
        stations=(station(),),
        station_passes=passes((100, 400), el=20.0),
    )
    assert reasons(solve(p)) == {"low": "window", "short": "window"}


def test_windows_only_after_the_deadline_is_deadline_and_after_the_horizon_is_horizon() -> None:
    p = problem(
        tasks=(
            downlink("late", deadline_utc=at(1000)),
            task("far", "maintenance", sat_id="sat-1", earliest_utc=at(7200), deadline_utc=at(9000)),
        ),
        stations=(station(),),
        station_passes=passes((2000, 2600)),
        horizon_s=3600.0,
    )
    assert reasons(solve(p)) == {"late": "deadline", "far": "horizon"}


def test_energy_binds() -> None:
    # 50 Wh above a 20 Wh reserve; idle drains 10 W for 3 h = 30 Wh, science +30 W over idle.
    # A 1 h imaging costs 30 Wh more: 60 Wh > 50 Wh, so it cannot go; a 30 min one (15 Wh) can.
    s = sat(energy_now_wh=70.0, load_w=LOADS)
    long_one = task("long", "imaging", sat_id="sat-1", duration_s=3600.0)
    short_one = task("short", "imaging", sat_id="sat-1", duration_s=1800.0)
    targets = (window("sat-1", 0, 7200, task_id="long"), window("sat-1", 0, 7200, task_id="short"))
    p = problem(tasks=(long_one,), satellites=(s,), target_windows=targets[:1], horizon_s=10_800.0)
    assert reasons(solve(p)) == {"long": "energy"}
    p = problem(tasks=(short_one,), satellites=(s,), target_windows=targets[1:], horizon_s=10_800.0)
    assert reasons(solve(p)) == {}


def test_a_satellite_already_short_of_energy_takes_nothing_new() -> None:
    s = sat(energy_now_wh=25.0, reserve_wh=20.0, load_w=LOADS)  # idle alone: -10 W for 1 h
    p = problem(tasks=(task("cmd", sat_id="sat-1", duration_s=10.0),), satellites=(s,), horizon_s=3600.0)
    result = solve(p)
    assert reasons(result) == {"cmd": "energy"}
    assert "by itself" in result.unplaced[0].detail


def test_memory_binds_and_a_downlink_makes_room() -> None:
    # 900 of 1000 MB used: a 300 MB image fits only after the downlink freed 500 MB.
    s = sat(memory_used_mb=900.0)
    img = task("img", "imaging", sat_id="sat-1", memory_mb=300.0, priority=90)
    dl = downlink(memory_mb=500.0, priority=10)
    p = problem(tasks=(img,), satellites=(s,), target_windows=(window("sat-1", 0, 3000, task_id="img"),))
    assert reasons(solve(p)) == {"img": "memory"}
    p = problem(
        tasks=(img, dl), satellites=(s,), stations=(station(),), station_passes=passes((1000, 1500)),
        target_windows=(window("sat-1", 0, 3000, task_id="img"),),
    )
    result = solve(p)
    assert reasons(result) == {}
    assert result.placement("img").start_utc >= result.placement("dl").end_utc  # type: ignore[union-attr]


def test_a_downlink_cannot_free_data_that_is_not_on_board() -> None:
    p = problem(tasks=(downlink(memory_mb=500.0),), satellites=(sat(memory_used_mb=100.0),),
                stations=(station(),), station_passes=passes((0, 900)))  # fmt: skip
    assert reasons(solve(p)) == {"dl": "memory"}


def test_one_antenna_one_satellite_at_a_time_with_the_setup_gap() -> None:
    # Two satellites over one station at once; the pass holds both one after the other only
    # without the 120 s setup gap: 600 s pass, two 250 s downlinks.
    tasks = (task("a", "downlink", sat_id="sat-1", duration_s=250.0, priority=60),
             task("b", "downlink", sat_id="sat-2", duration_s=250.0, priority=40))  # fmt: skip
    windows = passes((0, 600)) + passes((0, 600), sat_id="sat-2")
    sats = (sat("sat-1"), sat("sat-2"))
    no_gap = solve(problem(tasks=tasks, satellites=sats, stations=(station(),), station_passes=windows))
    assert reasons(no_gap) == {}
    gap = solve(problem(tasks=tasks, satellites=sats, stations=(station(setup_gap_s=120.0),), station_passes=windows))
    assert reasons(gap) == {"b": "station_conflict"}  # the lower priority gives way
    two = solve(problem(tasks=tasks, satellites=sats, stations=(station(setup_gap_s=120.0, antennas=2),),
                        station_passes=windows))  # fmt: skip
    assert reasons(two) == {}
    assert {p.antenna for p in two.placements} == {0, 1}


def test_a_station_down_moves_downlinks_to_another_pass_or_out() -> None:
    down = (at(0), at(1000))
    p = problem(tasks=(downlink(duration_s=100.0),), stations=(station(unavailable=(down,)),),
                station_passes=passes((200, 600), (1500, 1900)))  # fmt: skip
    (placed,) = solve(p).placements
    assert placed.start_utc == at(1500)
    p = problem(tasks=(downlink(duration_s=100.0),), stations=(station(unavailable=(down,)),),
                station_passes=passes((200, 600)))  # fmt: skip
    assert reasons(solve(p)) == {"dl": "station_conflict"}


def test_one_task_at_a_time_on_a_satellite() -> None:
    tasks = (task("a", sat_id="sat-1", duration_s=600.0, priority=70, deadline_utc=at(900)),
             task("b", sat_id="sat-1", duration_s=600.0, priority=30, deadline_utc=at(900)))  # fmt: skip
    assert reasons(solve(problem(tasks=tasks))) == {"b": "satellite_busy"}


def test_sunlight_when_asked() -> None:
    img = task("img", "imaging", sat_id="sat-1", duration_s=300.0, needs_sunlight=True)
    targets = (window("sat-1", 0, 1000, task_id="img"), window("sat-1", 5000, 6000, task_id="img"))
    p = problem(tasks=(img,), target_windows=targets, sunlit=(window("sat-1", 4000, 5500),))
    (placed,) = solve(p).placements
    assert placed.start_utc == at(5000)
    p = problem(tasks=(img,), target_windows=targets[:1], sunlit=(window("sat-1", 4000, 5500),))
    assert reasons(solve(p)) == {"img": "window"}


def test_any_satellite_and_the_downlink_follows_its_data() -> None:
    # The image can only be taken by sat-2; its downlink (no satellite named) must then run on
    # sat-2 too, after the image, in sat-2's pass (not sat-1's earlier one).
    img = task("img", "imaging", duration_s=60.0, memory_mb=400.0)
    dl = task("dl", "downlink", duration_s=60.0, memory_mb=400.0, depends_on=("img",), priority=90)
    p = problem(
        tasks=(img, dl), satellites=(sat("sat-1"), sat("sat-2")), stations=(station(),),
        target_windows=(window("sat-2", 1000, 1200, task_id="img"),),
        station_passes=passes((0, 900)) + passes((100, 600), sat_id="sat-2") + passes((3000, 3600), sat_id="sat-2"),
    )  # fmt: skip
    result = solve(p)
    assert [(x.task_id, x.sat_id) for x in result.placements] == [("img", "sat-2"), ("dl", "sat-2")]
    assert result.placement("dl").start_utc == at(3000)  # type: ignore[union-attr]


def test_dependency_reasons() -> None:
    p = problem(tasks=(
        task("img", "imaging", sat_id="sat-1"),  # no target window
        task("dl", "downlink", sat_id="sat-1", depends_on=("img",)),
        task("orphan", depends_on=("gone",)),
        task("x", depends_on=("y",)), task("y", depends_on=("x",)),
    ))  # fmt: skip
    assert reasons(solve(p)) == {"img": "window", "dl": "dependency", "orphan": "dependency",
                                 "x": "dependency", "y": "dependency"}  # fmt: skip


def test_a_low_priority_task_goes_first_when_a_high_priority_one_needs_it() -> None:
    # Only one of prep/other fits; main (95) needs prep (5), so prep beats other (50).
    tasks = (task("prep", sat_id="sat-1", priority=5, deadline_utc=at(60)),
             task("other", sat_id="sat-1", priority=50, deadline_utc=at(60)),
             task("main", sat_id="sat-1", priority=95, depends_on=("prep",)))  # fmt: skip
    result = solve(problem(tasks=tasks))
    assert reasons(result) == {"other": "satellite_busy"}
    assert result.value == 100


def test_unknown_and_unavailable() -> None:
    p = problem(
        tasks=(task("a", sat_id="sat-9"), downlink("b", station_id="gs-9"), task("c", sat_id="sat-2"),
               task("d", "imaging")),
        satellites=(sat("sat-1"), sat("sat-2", available=False)), stations=(station(),),
        target_windows=(window("sat-2", 0, 600, task_id="d"),),
    )  # fmt: skip
    assert reasons(solve(p)) == {"a": "unknown_satellite", "b": "unknown_station",
                                 "c": "satellite_unavailable", "d": "satellite_unavailable"}  # fmt: skip


def test_earliest_and_now() -> None:
    p = problem(tasks=(task("a", sat_id="sat-1", earliest_utc=at(-3600), deadline_utc=at(3600)),
                       task("b", sat_id="sat-1", earliest_utc=at(1800))))  # fmt: skip
    result = solve(p)
    assert result.placement("a").start_utc == T0  # type: ignore[union-attr]
    assert result.placement("b").start_utc == at(1800)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: task("t", priority=101), "priority"),
        (lambda: task("t", duration_s=-1.0), "duration_s"),
        (lambda: task("t", deadline_utc=T0), "must be after"),
        (lambda: task("t", earliest_utc=T0.replace(tzinfo=None)), "naive"),
        (lambda: task("t", kind="launch"), "kind"),
        (lambda: task("t", station_id="gs-1"), "only a downlink"),
        (lambda: task("t", depends_on=("t",)), "itself"),
        (lambda: task("t", energy_wh=float("nan")), "finite"),
        (lambda: sat(energy_now_wh=120.0), "energy_now_wh"),
        (lambda: sat(load_w={"science": 1.0}), "idle mode"),
        (lambda: station(antennas=0), "antennas"),
        (lambda: station(downlink_mbps=0.0), "downlink_mbps"),
        (lambda: window("sat-1", 10, 10), "must be after"),
        (lambda: problem(tasks=(task("t"), task("t"))), "repeated: t"),
        (lambda: problem(station_passes=(window("sat-1", 0, 10),)), "names no station"),
        (lambda: problem(horizon_s=0.0), "horizon_s"),
    ],
)
def test_structural_mistakes_are_clear_errors(build: Callable[[], object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_plan_times_are_aware_utc() -> None:
    result = solve(problem(tasks=(task("a", sat_id="sat-1"),)))
    assert result.placements[0].start_utc.utcoffset() == timedelta(0)


def test_a_downlink_that_names_a_satellite_only_takes_data_from_it() -> None:
    # Its image can only be taken by sat-2; it names sat-1: it cannot go anywhere.
    img = task("img", "imaging", duration_s=60.0, memory_mb=100.0)
    dl = task("dl", "downlink", sat_id="sat-1", duration_s=60.0, memory_mb=100.0, depends_on=("img",))
    p = problem(
        tasks=(img, dl), satellites=(sat("sat-1"), sat("sat-2")), stations=(station(),),
        target_windows=(window("sat-2", 0, 600, task_id="img"),),
        station_passes=passes((1000, 1600)) + passes((1000, 1600), sat_id="sat-2"),
    )  # fmt: skip
    assert reasons(solve(p)) == {"dl": "dependency"}
