"""A ``scheduler.Problem`` from live state: the open tasks and the stations (database), the
satellites as the cluster sees them now, and the windows ``orbital`` computes from their TLEs.

Windows (station passes, imaging targets in view, sunlight) are computed for a span that starts
at a bucket boundary and covers the horizon plus one bucket, and kept until the clock leaves the
bucket or the satellites' TLEs or the stations change: a re-plan every few seconds reuses them.
Computation is numpy (SGP4 vectorised): the caller runs ``build`` in a worker thread.

The power model maps the satellite simulation's percentages onto watt-hours: the battery is
``BATTERY_WH`` (1 % = 1 Wh), so the simulation's drain and charge rates (% per second) become
watts by x3600; the reserve is the simulation's safe-mode threshold plus a margin. The idle
baseline is standby's drain (``IDLE_MODE``): the simulation idles in nominal, whose drain no
battery carries through a whole eclipse (every satellite would be "below its reserve by itself"
within one orbit and nothing could be planned); the simulation's own switch to safe mode at
10 % is what protects an idle satellite, and a task's start step fails (and is retried) on a
satellite that is in safe mode then.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import scheduler
from orbital import GroundStation, find_passes, in_sunlight, parse_tle, propagate
from orbital.elements import Elements
from py_nodes.db.stations import Station as DbStation
from py_nodes.db.tasks import Task as DbTask
from py_nodes.satellite.model import (
    CHARGE_PCT_PER_S,
    DRAIN_PCT_PER_S,
    LOW_ENERGY_PCT,
    SCIENCE_FILL_MB_PER_S,
)

__all__ = ["BATTERY_WH", "LiveSat", "ProblemBuilder", "previous_plan"]

BATTERY_WH: Final = 100.0
WH_PER_PCT: Final = BATTERY_WH / 100.0
RESERVE_WH: Final = (LOW_ENERGY_PCT + 5.0) * WH_PER_PCT
BUCKET_S: Final = 600.0
SUN_STEP_S: Final = 30.0
SLOT_S: Final = 5.0
LOAD_W: Final = {str(mode): pct_s * WH_PER_PCT * 3600.0 for mode, pct_s in DRAIN_PCT_PER_S.items()}
CHARGE_W: Final = CHARGE_PCT_PER_S * WH_PER_PCT * 3600.0
IDLE_MODE: Final = "standby"


@dataclass(frozen=True, slots=True)
class LiveSat:
    """A satellite as the cluster reports it now."""

    sat_id: str
    mode: str
    energy_pct: float
    memory_used_mb: float
    memory_capacity_mb: float
    tle: tuple[str, str] | None
    running: bool  # its actor is placed and running

    @property
    def available(self) -> bool:
        """New tasks may go on it: running and not in safe mode."""
        return self.running and self.mode != "safe"


@dataclass(slots=True)
class _Cache:
    key: tuple[Any, ...] = ()
    passes: list[scheduler.Window] = field(default_factory=list)
    sunlit: list[scheduler.Window] = field(default_factory=list)
    targets: dict[tuple[Any, ...], list[scheduler.Window]] = field(default_factory=dict)


class ProblemBuilder:
    """Builds problems; keeps the windows of the current bucket between calls."""

    def __init__(self, *, horizon_s: float, freeze_s: float, setup_gap_s: float) -> None:
        self.horizon_s, self.freeze_s, self.setup_gap_s = horizon_s, freeze_s, setup_gap_s
        self._cache = _Cache()
        self.window_computations = 0  # how many times windows were computed (not reused)

    def build(self, now: datetime, tasks: Sequence[DbTask], sats: Sequence[LiveSat], stations: Sequence[DbStation]) -> scheduler.Problem:
        end = now + timedelta(seconds=self.horizon_s)
        elements = _elements(sats)
        self._refresh(now, elements, stations)
        open_ids = {t.id for t in tasks}
        by_id = {t.id: t for t in tasks}
        problem_tasks = [_task(t, by_id, open_ids) for t in tasks]
        targets: list[scheduler.Window] = []
        for t in tasks:
            if t.kind == "imaging":
                targets += [
                    replace_task(w, str(t.id))
                    for w in self._targets(t, elements)
                    if t.satellite_id is None or w.sat_id == t.satellite_id
                ]
        return scheduler.Problem(
            now_utc=now,
            tasks=tuple(problem_tasks),
            satellites=tuple(_resources(s) for s in sats),
            stations=tuple(_station(s, now, end, self.setup_gap_s) for s in stations),
            station_passes=tuple(_clip(self._cache.passes, now, end)),
            target_windows=tuple(_clip(targets, now, end)),
            sunlit=tuple(_clip(self._cache.sunlit, now, end)),
            horizon_s=self.horizon_s,
            freeze_s=self.freeze_s,
            slot_s=SLOT_S,
        )

    def _refresh(self, now: datetime, elements: dict[str, Elements], stations: Sequence[DbStation]) -> None:
        start = datetime.fromtimestamp(math.floor(now.timestamp() / BUCKET_S) * BUCKET_S, now.tzinfo)
        station_key = tuple((s.id, s.lat_deg, s.lon_deg, s.alt_m, s.min_el_deg) for s in stations)
        key = (start, tuple((sid, e.line1, e.line2) for sid, e in sorted(elements.items())), station_key)
        if key == self._cache.key:
            return
        self.window_computations += 1
        span_end = start + timedelta(seconds=self.horizon_s + BUCKET_S)
        ids = sorted(elements)
        els = [elements[i] for i in ids]
        passes = find_passes(els, [s.to_orbital() for s in stations], start, span_end) if els and stations else []
        self._cache = _Cache(
            key=key,
            passes=[
                scheduler.Window(ids[p.sat_index], p.aos_utc, p.los_utc, station_id=p.station_id, max_elevation_deg=p.max_el_deg)
                for p in passes
                if p.los_utc > p.aos_utc
            ],
            sunlit=_sunlit(ids, els, start, span_end),
        )

    def _targets(self, task: DbTask, elements: dict[str, Elements]) -> list[scheduler.Window]:
        """Windows while the task's target is above its elevation, per satellite (task_id unset:
        the caller names it)."""
        lat, lon, min_el = task.args["target_lat_deg"], task.args["target_lon_deg"], task.args.get("min_el_deg", 10.0)
        key = (lat, lon, min_el)
        found = self._cache.targets.get(key)
        if found is None:
            start = self._cache.key[0]
            ids = sorted(elements)
            target = GroundStation("target", "target", lat, lon, 0.0, min_el)
            span_end = start + timedelta(seconds=self.horizon_s + BUCKET_S)
            passes = find_passes([elements[i] for i in ids], [target], start, span_end) if ids else []
            found = [
                scheduler.Window(ids[p.sat_index], p.aos_utc, p.los_utc, task_id="?", max_elevation_deg=p.max_el_deg)
                for p in passes
                if p.los_utc > p.aos_utc
            ]
            self._cache.targets[key] = found
        return found


def replace_task(window: scheduler.Window, task_id: str) -> scheduler.Window:
    return scheduler.Window(window.sat_id, window.start_utc, window.end_utc, task_id=task_id, max_elevation_deg=window.max_elevation_deg)


def previous_plan(now: datetime, horizon_s: float, tasks: Iterable[DbTask], last: scheduler.Plan | None = None) -> scheduler.Plan:
    """The stored placements (scheduled and running tasks) as the plan in force, for a re-plan
    (frozen placements stay, the others stay where they still fit). ``last``, the engine's own
    previous plan (none after a takeover), gives each placement it still agrees with its antenna
    and its reusable window grouping; the others get the lowest antenna free at a station."""
    engine = {p.task_id: p for p in last.placements} if last is not None else {}
    placements: list[scheduler.Placement] = []
    unassigned: list[scheduler.Placement] = []
    for t in tasks:
        if t.status not in ("scheduled", "running") or not (t.planned_satellite_id and t.planned_start and t.planned_end):
            continue
        stored = scheduler.Placement(str(t.id), t.planned_satellite_id, t.planned_start, t.planned_end,
                                     station_id=t.planned_station_id, antenna=0 if t.planned_station_id else None)  # fmt: skip
        known = engine.get(stored.task_id)
        same = known is not None and (known.sat_id, known.station_id, known.start_utc, known.end_utc) == (
            stored.sat_id, stored.station_id, stored.start_utc, stored.end_utc)  # fmt: skip
        if same and known is not None:
            placements.append(known)
        elif stored.station_id is None:
            placements.append(stored)
        else:
            unassigned.append(stored)
    for p in sorted(unassigned, key=lambda p: (p.start_utc, p.task_id)):
        taken = {q.antenna for q in placements if q.station_id == p.station_id and q.start_utc < p.end_utc and p.start_utc < q.end_utc}
        placements.append(dataclasses.replace(p, antenna=next(a for a in range(len(taken) + 1) if a not in taken)))
    placements.sort(key=lambda p: (p.start_utc, p.task_id))
    reuse = last.reuse if last is not None else None
    return scheduler.Plan(now, horizon_s, tuple(placements), (), 0, 0.0, "stored", reuse=reuse)


def _elements(sats: Sequence[LiveSat]) -> dict[str, Elements]:
    out: dict[str, Elements] = {}
    for s in sats:
        if s.tle is not None:
            try:
                out[s.sat_id] = parse_tle(f"{s.tle[0]}\n{s.tle[1]}")[0]
            except ValueError:
                continue  # a satellite without a usable TLE has no windows
    return out


def _sunlit(ids: list[str], els: list[Elements], start: datetime, end: datetime) -> list[scheduler.Window]:
    if not els:
        return []
    steps = int((end - start).total_seconds() // SUN_STEP_S) + 1
    times = [start + timedelta(seconds=SUN_STEP_S * i) for i in range(steps)]
    lit = in_sunlight(propagate(els, times).r_teme_km, times)
    windows = []
    for row, sat_id in zip(lit, ids, strict=True):
        begin: int | None = None
        for i, flag in enumerate([*row.tolist(), False]):
            if flag and begin is None:
                begin = i
            elif not flag and begin is not None:
                last = min(i, steps - 1)
                if last > begin:
                    windows.append(scheduler.Window(sat_id, times[begin], times[last]))
                begin = None
    return windows


def _clip(windows: Iterable[scheduler.Window], start: datetime, end: datetime) -> list[scheduler.Window]:
    out = []
    for w in windows:
        a, b = max(w.start_utc, start), min(w.end_utc, end)
        if b > a:
            out.append(w if (a, b) == (w.start_utc, w.end_utc) else
                       scheduler.Window(w.sat_id, a, b, station_id=w.station_id, task_id=w.task_id, max_elevation_deg=w.max_elevation_deg))  # fmt: skip
    return out


def _resources(s: LiveSat) -> scheduler.SatelliteResources:
    energy = min(BATTERY_WH, max(0.0, s.energy_pct * WH_PER_PCT))
    capacity = max(s.memory_capacity_mb, 1e-9)
    return scheduler.SatelliteResources(
        sat_id=s.sat_id, battery_wh=BATTERY_WH, energy_now_wh=energy, reserve_wh=RESERVE_WH, charge_w=CHARGE_W,
        load_w=LOAD_W, memory_capacity_mb=capacity, memory_used_mb=min(capacity, max(0.0, s.memory_used_mb)),
        available=s.available, idle_mode=IDLE_MODE,
    )  # fmt: skip


def _station(s: DbStation, now: datetime, end: datetime, setup_gap_s: float) -> scheduler.Station:
    # A station taken down is down for the whole horizon (and a bit around it); otherwise during
    # its stored down windows that reach into the horizon.
    if not s.active:
        down: tuple[tuple[datetime, datetime], ...] = ((now - timedelta(hours=1), end + timedelta(hours=1)),)
    else:
        down = tuple((a, b) for a, b in s.unavailable if b > now and a < end)
    return scheduler.Station(s.id, s.downlink_mbps, antennas=s.antennas, setup_gap_s=setup_gap_s, unavailable=down)


def _task(t: DbTask, by_id: dict[int, DbTask], open_ids: set[int]) -> scheduler.Task:
    earliest = t.earliest_start or t.created_at
    if t.retry_after is not None and t.status == "pending":
        earliest = max(earliest, t.retry_after)
    deadline = t.deadline or earliest + timedelta(hours=24)
    if deadline <= earliest:  # a retry pushed past the deadline: fails at the next expiry check
        earliest = deadline - timedelta(seconds=t.duration_s)
    memory_mb = t.memory_mb
    depends: tuple[str, ...] = ()
    if t.depends_on is not None and t.depends_on in open_ids:
        depends = (str(t.depends_on),)
        if t.kind == "downlink" and memory_mb == 0.0:
            dep = by_id[t.depends_on]
            memory_mb = _produced_mb(dep)
    elif t.depends_on is not None and t.kind == "downlink" and memory_mb == 0.0:
        memory_mb = 0.0  # its imaging is done: the data is in the live memory figure
    if t.kind == "imaging" and memory_mb == 0.0:
        memory_mb = _produced_mb(t)
    mode = t.args.get("mode") if t.kind == "maintenance" else None
    pinned_sat = t.satellite_id if t.status != "running" else (t.planned_satellite_id or t.satellite_id)
    return scheduler.Task(
        task_id=str(t.id), kind=t.kind, priority=t.priority, earliest_utc=earliest, deadline_utc=deadline,  # type: ignore[arg-type]
        duration_s=t.duration_s, energy_wh=t.energy_pct * WH_PER_PCT, memory_mb=memory_mb, sat_id=pinned_sat,
        station_id=t.ground_station_id if t.kind == "downlink" else None, depends_on=depends,
        min_elevation_deg=0.0, needs_sunlight=bool(t.args.get("sunlit", False)), mode=mode,
    )  # fmt: skip


def _produced_mb(t: DbTask) -> float:
    """What an imaging task fills: its own figure, else the simulation's science fill rate."""
    return t.memory_mb if t.memory_mb > 0 else t.duration_s * SCIENCE_FILL_MB_PER_S
