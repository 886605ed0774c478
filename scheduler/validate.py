"""An independent check of a plan against the model (``scheduler.model``'s docstring).

Written apart from the planner and as plainly as possible: datetimes throughout, every pair of
placements compared where two may clash, energy and memory from ``forecast_energy`` /
``forecast_memory``. It shares nothing with the planner but the model's dataclasses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .forecast import forecast_energy, forecast_memory
from .model import (
    Placement,
    Plan,
    Problem,
    SatelliteResources,
    Station,
    Task,
    Violation,
    ViolationKind,
    Window,
)

__all__ = ["validate"]

_Flag = Callable[[ViolationKind, tuple[str, ...], str], None]

_TOLERANCE = timedelta(microseconds=2)  # datetimes are rounded to microseconds
_ENERGY_TOLERANCE_WH = 1e-6
_MEMORY_TOLERANCE_MB = 1e-6
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def validate(problem: Problem, plan: Plan, *, previous: Plan | None = None) -> list[Violation]:
    """Every rule ``plan`` breaks (empty when it is valid). With ``previous``, also that no
    placement inside its freeze window was moved or dropped without cause."""
    out: list[Violation] = []

    def flag(kind: ViolationKind, ids: tuple[str, ...], detail: str) -> None:
        out.append(Violation(kind, ids, detail))

    tasks = {t.task_id: t for t in problem.tasks}
    sats = {s.sat_id: s for s in problem.satellites}
    stations = {s.station_id: s for s in problem.stations}
    horizon_end = problem.now_utc + timedelta(seconds=problem.horizon_s)
    placed: dict[str, Placement] = {}
    known: list[tuple[Placement, Task]] = []

    for p in plan.placements:
        task = tasks.get(p.task_id)
        if task is None or p.sat_id not in sats or (p.station_id is not None and p.station_id not in stations):
            flag("unknown", (p.task_id,), f"names an unknown task, satellite or station ({p.sat_id}, {p.station_id})")
            continue
        if p.task_id in placed:
            flag("duplicate", (p.task_id,), "placed twice")
            continue
        placed[p.task_id] = p
        known.append((p, task))

    for p, task in known:
        ids = (p.task_id,)
        _check_identity(p, task, placed, tasks, flag)
        if not sats[p.sat_id].available and not p.frozen:
            flag("unavailable", ids, f"satellite {p.sat_id} is unavailable")
        expected_s = task.duration_s
        if task.kind == "downlink" and p.station_id is not None:
            expected_s = max(task.duration_s, 8.0 * task.memory_mb / stations[p.station_id].downlink_mbps)
        if abs(p.duration_s - expected_s) > 1e-5:
            flag("duration", ids, f"lasts {p.duration_s} s, not {expected_s} s")
        if not p.frozen and (p.start_utc < task.earliest_utc - _TOLERANCE or p.start_utc < problem.now_utc - _TOLERANCE):
            flag("earliest", ids, f"starts {p.start_utc.isoformat()} before its earliest start or now")
        if p.end_utc > task.deadline_utc + _TOLERANCE:
            flag("deadline", ids, f"ends {p.end_utc.isoformat()} after its deadline {task.deadline_utc.isoformat()}")
        if p.end_utc > horizon_end + _TOLERANCE:
            flag("horizon", ids, f"ends {p.end_utc.isoformat()} after the horizon")
        if not p.frozen and not _on_grid(p.start_utc, problem.slot_s):
            flag("grid", ids, f"starts {p.start_utc.isoformat()}, not a multiple of {problem.slot_s} s")
        if task.kind == "downlink" and not any(
            w.sat_id == p.sat_id and w.station_id == p.station_id
            and w.max_elevation_deg >= task.min_elevation_deg and _inside(p, w.start_utc, w.end_utc)
            for w in problem.station_passes
        ):  # fmt: skip
            flag("window", ids, f"not inside a pass of {p.sat_id} over {p.station_id} reaching {task.min_elevation_deg}°")
        if task.kind == "imaging" and not any(
            w.sat_id == p.sat_id and w.task_id == task.task_id and _inside(p, w.start_utc, w.end_utc)
            for w in problem.target_windows
        ):
            flag("window", ids, f"not inside a target window of {p.sat_id}")
        if task.needs_sunlight and not _covered(p, [w for w in problem.sunlit if w.sat_id == p.sat_id]):
            flag("sunlight", ids, f"{p.sat_id} is not in sunlight for all of it")
        if p.station_id is not None:
            for a, b in stations[p.station_id].unavailable:
                if p.start_utc < b - _TOLERANCE and a < p.end_utc - _TOLERANCE:
                    flag("station_down", ids, f"{p.station_id} is down from {a.isoformat()} to {b.isoformat()}")
            if p.antenna is None or not 0 <= p.antenna < stations[p.station_id].antennas:
                flag("antenna", ids, f"{p.station_id} has no antenna {p.antenna}")

    _check_pairs(known, stations, flag)

    for sat_id, sat in sats.items():
        own = [p for p, _ in known if p.sat_id == sat_id]
        if not own:
            continue
        if any(not p.frozen for p in own):
            energy = forecast_energy(problem, own, sat_id)
            if energy.min_value < sat.reserve_wh - _ENERGY_TOLERANCE_WH:
                at = energy.first_time_below(sat.reserve_wh - _ENERGY_TOLERANCE_WH)
                flag("energy", tuple(p.task_id for p in own),
                     f"{sat_id}: {energy.min_value:.3f} Wh < reserve {sat.reserve_wh} Wh (from {at})")  # fmt: skip
        memory = forecast_memory(problem, own, sat_id)
        if memory.min_value < -_MEMORY_TOLERANCE_MB or memory.max_value > sat.memory_capacity_mb + _MEMORY_TOLERANCE_MB:
            flag("memory", tuple(p.task_id for p in own),
                 f"{sat_id}: memory spans {memory.min_value:.3f}..{memory.max_value:.3f} MB, "
                 f"capacity {sat.memory_capacity_mb} MB")  # fmt: skip

    if previous is not None:
        _check_frozen(problem, previous, placed, tasks, sats, stations, flag)
    return out


def _check_identity(
    p: Placement, task: Task, placed: dict[str, Placement], tasks: dict[str, Task], flag: _Flag
) -> None:
    ids = (p.task_id,)
    if task.sat_id is not None and p.sat_id != task.sat_id:
        flag("wrong_satellite", ids, f"on {p.sat_id}, the task names {task.sat_id}")
    if task.kind == "downlink":
        if p.station_id is None or (task.station_id is not None and p.station_id != task.station_id):
            flag("wrong_station", ids, f"via {p.station_id}, the task names {task.station_id or 'a station'}")
    elif p.station_id is not None or p.antenna is not None:
        flag("wrong_station", ids, f"a {task.kind} uses no station, placed via {p.station_id}")
    for d in task.depends_on:
        dep = placed.get(d)
        if dep is None:
            flag("dependency", (p.task_id, d), f"depends on {d}, which is not placed")
            continue
        if dep.end_utc > p.start_utc + _TOLERANCE:
            flag("dependency", (p.task_id, d), f"starts before {d} ends ({dep.end_utc.isoformat()})")
        if task.kind == "downlink" and d in tasks and tasks[d].kind == "imaging" and dep.sat_id != p.sat_id:
            flag("wrong_satellite", (p.task_id, d), f"downlinks from {p.sat_id}; {d}'s data is on {dep.sat_id}")


def _check_pairs(known: list[tuple[Placement, Task]], stations: dict[str, Station], flag: _Flag) -> None:
    by_sat: dict[str, list[Placement]] = defaultdict(list)
    by_antenna: dict[tuple[str, int | None], list[Placement]] = defaultdict(list)
    for p, _ in known:
        by_sat[p.sat_id].append(p)
        if p.station_id is not None:
            by_antenna[(p.station_id, p.antenna)].append(p)
    for group in by_sat.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if a.start_utc < b.end_utc - _TOLERANCE and b.start_utc < a.end_utc - _TOLERANCE:
                    flag("satellite_overlap", (a.task_id, b.task_id), f"both on {a.sat_id} at once")
    for (station_id, antenna), group in by_antenna.items():
        gap = timedelta(seconds=stations[station_id].setup_gap_s)
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if a.start_utc < b.end_utc + gap - _TOLERANCE and b.start_utc < a.end_utc + gap - _TOLERANCE:
                    flag("antenna", (a.task_id, b.task_id),
                         f"{station_id} antenna {antenna}: closer than the setup gap {gap.total_seconds()} s")  # fmt: skip


def _check_frozen(
    problem: Problem,
    previous: Plan,
    placed: dict[str, Placement],
    tasks: dict[str, Task],
    sats: dict[str, SatelliteResources],
    stations: dict[str, Station],
    flag: _Flag,
) -> None:
    freeze_end = problem.now_utc + timedelta(seconds=problem.freeze_s)
    for p in previous.placements:
        if not (p.start_utc < freeze_end and p.end_utc > problem.now_utc) or p.task_id not in tasks:
            continue
        sat = sats.get(p.sat_id)
        if sat is None or not sat.available:
            continue  # its satellite is gone: it cannot run where it was
        if p.station_id is not None and (
            p.station_id not in stations
            or any(p.start_utc < b and a < p.end_utc for a, b in stations[p.station_id].unavailable)
        ):
            continue  # its station is down: likewise
        now = placed.get(p.task_id)
        if now is None or (now.sat_id, now.station_id, now.antenna, now.start_utc, now.end_utc) != (
            p.sat_id, p.station_id, p.antenna, p.start_utc, p.end_utc
        ):  # fmt: skip
            flag("frozen_moved", (p.task_id,), "inside the freeze window of the previous plan, but moved or dropped")


def _inside(p: Placement, start: datetime, end: datetime) -> bool:
    return start - _TOLERANCE <= p.start_utc and p.end_utc <= end + _TOLERANCE


def _covered(p: Placement, windows: list[Window]) -> bool:
    """Whether the union of ``windows`` covers [start, end] of ``p``."""
    reached = p.start_utc
    for w in sorted(windows, key=lambda w: w.start_utc):
        if w.start_utc <= reached + _TOLERANCE and w.end_utc > reached:
            reached = w.end_utc
    return reached >= p.end_utc - _TOLERANCE


def _on_grid(t: datetime, slot_s: float) -> bool:
    k = (t - _EPOCH).total_seconds() / slot_s
    return abs(k - round(k)) * slot_s <= 1e-5
