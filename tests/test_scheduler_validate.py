"""The validator catches every kind of violation: a hand-made valid plan passes, and each
hand-made break of it is reported with the expected kind."""

from __future__ import annotations

import dataclasses

import pytest
from scheduler_support import at, problem, sat, station, task, window

from scheduler import VIOLATION_KINDS, Placement, Plan, Problem, plan, validate

LOADS = {"nominal": 10.0, "science": 40.0, "downlink": 20.0, "maintenance": 5.0}


def base(**changes: object) -> Problem:
    fields: dict[str, object] = {
        "tasks": (
            task("img", "imaging", sat_id="sat-1", duration_s=300.0, memory_mb=400.0,
                 needs_sunlight=True, deadline_utc=at(3600)),
            task("dl", "downlink", sat_id="sat-1", duration_s=30.0, memory_mb=400.0, depends_on=("img",)),
            task("dl2", "downlink", sat_id="sat-3", duration_s=60.0),
            task("maint", "maintenance", sat_id="sat-1", duration_s=600.0, earliest_utc=at(2400),
                 deadline_utc=at(4000)),
            task("cmd", "command"),
        ),
        "satellites": (sat("sat-1", load_w=LOADS), sat("sat-2", available=False), sat("sat-3")),
        "stations": (station(setup_gap_s=60.0, unavailable=((at(5000), at(6000)),)),),
        "station_passes": (
            window("sat-1", 1000, 2000, station_id="gs-1", max_elevation_deg=45.0),
            window("sat-1", 5000, 5600, station_id="gs-1", max_elevation_deg=45.0),
            window("sat-3", 1000, 2000, station_id="gs-1", max_elevation_deg=45.0),
        ),
        "target_windows": (window("sat-1", 0, 900, task_id="img"),),
        "sunlit": (window("sat-1", 0, 700),),
        "horizon_s": 7200.0,
        "slot_s": 60.0,
    }  # fmt: skip
    fields.update(changes)
    return problem(**fields)


VALID = {
    "img": Placement("img", "sat-1", at(0), at(300), memory_mb=400.0),
    "dl": Placement("dl", "sat-1", at(1020), at(1060), "gs-1", 0, memory_mb=-400.0),  # 400 MB at 80 Mbps: 40 s
    "dl2": Placement("dl2", "sat-3", at(1200), at(1260), "gs-1", 0),
    "maint": Placement("maint", "sat-1", at(2400), at(3000)),
    "cmd": Placement("cmd", "sat-1", at(3600), at(3660)),
}


def a_plan(*placements: Placement, **replace: Placement | None) -> Plan:
    chosen = {**VALID, **replace}
    items = [p for p in chosen.values() if p is not None] + list(placements)
    return Plan(at(0), 7200.0, tuple(items), (), 0, 0.0)


def kinds(p: Problem, pl: Plan, previous: Plan | None = None) -> set[str]:
    return {v.kind for v in validate(p, pl, previous=previous)}


def test_the_hand_made_plan_is_valid() -> None:
    assert validate(base(), a_plan()) == []


def moved(task_id: str, start_s: float, end_s: float, **kw: object) -> Placement:
    return dataclasses.replace(VALID[task_id], start_utc=at(start_s), end_utc=at(end_s), **kw)  # type: ignore[arg-type]


CASES: dict[str, dict[str, Placement | None]] = {
    "unknown": dict(extra=Placement("zzz", "sat-1", at(4200), at(4260))),
    "duplicate": dict(extra=VALID["cmd"]),
    "wrong_satellite": dict(img=dataclasses.replace(VALID["img"], sat_id="sat-3")),
    "wrong_station": dict(maint=dataclasses.replace(VALID["maint"], station_id="gs-1", antenna=0)),
    "unavailable": dict(cmd=dataclasses.replace(VALID["cmd"], sat_id="sat-2")),
    "duration": dict(dl=moved("dl", 1020, 1050)),
    "earliest": dict(maint=moved("maint", 1800, 2400)),
    "deadline": dict(maint=moved("maint", 3600, 4200)),
    "horizon": dict(cmd=moved("cmd", 7200, 7260)),
    "grid": dict(cmd=moved("cmd", 3630, 3690)),
    "window": dict(dl=moved("dl", 2100, 2140)),
    "sunlight": dict(img=moved("img", 600, 900)),
    "station_down": dict(dl=moved("dl", 5040, 5080)),
    "antenna": dict(dl2=moved("dl2", 1080, 1140)),
    "satellite_overlap": dict(cmd=moved("cmd", 2400, 2460)),
    "dependency": dict(img=None),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_break_is_caught(kind: str) -> None:
    case = dict(CASES[kind])
    extra = case.pop("extra", None)
    broken = a_plan(*([extra] if extra is not None else []), **case)
    assert kind in kinds(base(), broken)


def test_an_antenna_the_station_does_not_have() -> None:
    assert "antenna" in kinds(base(), a_plan(dl2=dataclasses.replace(VALID["dl2"], antenna=1)))


def test_energy_below_reserve() -> None:
    # 40 Wh now, 20 Wh reserve: idle alone drains 10 W x 2 h = 20 Wh, the tasks push it below.
    sats = (sat("sat-1", load_w=LOADS, energy_now_wh=40.0), sat("sat-2", available=False), sat("sat-3"))
    assert kinds(base(satellites=sats), a_plan()) == {"energy"}


def test_memory_above_capacity_and_below_zero() -> None:
    small = (sat("sat-1", load_w=LOADS, memory_capacity_mb=300.0), sat("sat-2", available=False), sat("sat-3"))
    assert kinds(base(satellites=small), a_plan()) == {"memory"}
    # The downlink frees 400 MB that only its (missing) image would have put on board.
    assert {"memory", "dependency"} <= kinds(base(), a_plan(img=None))


def test_a_frozen_placement_moved_is_caught_and_one_kept_is_not() -> None:
    previous = a_plan()  # img runs 0..300 s: inside the 300 s freeze window
    assert kinds(base(), a_plan(), previous) == set()
    assert kinds(base(), a_plan(img=moved("img", 60, 360)), previous) == {"frozen_moved"}
    # Its satellite gone: dropping it is not a violation.
    sats = (sat("sat-1", load_w=LOADS, available=False), sat("sat-2", available=False), sat("sat-3"))
    p = base(satellites=sats)
    assert "frozen_moved" not in kinds(p, a_plan(img=None, dl=None, maint=None, cmd=None), previous)


def test_every_violation_kind_is_exercised() -> None:
    covered = set(CASES) | {"antenna", "energy", "memory", "frozen_moved"}
    assert covered == set(VIOLATION_KINDS)


def test_the_planner_agrees_with_the_validator_here() -> None:
    p = base()
    result = plan(p, budget_s=0.2)
    assert validate(p, result) == []
    assert {x.task_id for x in result.placements} == set(VALID)
