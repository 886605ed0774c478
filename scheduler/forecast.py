"""A satellite's energy and memory over the horizon under a set of placements (the model in
``scheduler.model``), as exact breakpoints: energy is linear between its points, memory a step
that holds from each point to the next. The validator is built on these; the planner keeps its
own incremental bookkeeping (and the tests compare the two).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .model import Placement, Problem, SatelliteResources, Task

__all__ = ["Forecast", "forecast_energy", "forecast_memory"]


@dataclass(frozen=True, slots=True)
class Forecast:
    """``values[i]`` at ``t_utc[i]``; several points may share a time (memory: one per event
    at that instant, ends before starts, so the lowest and highest states both show)."""

    sat_id: str
    quantity: Literal["energy_wh", "memory_mb"]
    t_utc: tuple[datetime, ...]
    values: tuple[float, ...]

    @property
    def min_value(self) -> float:
        return min(self.values)

    @property
    def max_value(self) -> float:
        return max(self.values)

    def first_time_below(self, limit: float) -> datetime | None:
        """The first breakpoint strictly below ``limit`` (None when there is none)."""
        return next((t for t, v in zip(self.t_utc, self.values, strict=True) if v < limit), None)

    def first_time_above(self, limit: float) -> datetime | None:
        return next((t for t, v in zip(self.t_utc, self.values, strict=True) if v > limit), None)


def _satellite(problem: Problem, sat_id: str) -> SatelliteResources:
    for sat in problem.satellites:
        if sat.sat_id == sat_id:
            return sat
    raise ValueError(f"no satellite {sat_id!r} in the problem")


def _own(problem: Problem, placements: Iterable[Placement], sat_id: str) -> list[tuple[Placement, Task]]:
    tasks = {t.task_id: t for t in problem.tasks}
    return [(p, tasks[p.task_id]) for p in placements if p.sat_id == sat_id and p.task_id in tasks]


def forecast_energy(problem: Problem, placements: Iterable[Placement], sat_id: str) -> Forecast:
    """Battery energy of ``sat_id`` from ``now_utc`` to the end of the horizon.

    Net power is constant between breakpoints (sunlit edges, task starts and ends):
    ``charge_w`` while sunlit, minus the idle mode's load, minus for each running task the
    difference of its mode's load from the idle load and its own ``energy_wh / duration``. Energy
    stops rising at ``battery_wh`` (the point where it gets there is a breakpoint too).
    Placements of unknown tasks are ignored (``validate`` reports them).
    """
    sat = _satellite(problem, sat_id)
    t0, t_end = 0.0, problem.horizon_s

    def rel(t: datetime) -> float:
        return (t - problem.now_utc).total_seconds()

    sunlit = [(rel(w.start_utc), rel(w.end_utc)) for w in problem.sunlit if w.sat_id == sat_id]
    idle_w = sat.mode_load_w(sat.idle_mode)
    drains: list[tuple[float, float, float]] = []  # (start, end, extra watts)
    for p, task in _own(problem, placements, sat_id):
        start, end = rel(p.start_utc), rel(p.end_utc)
        if end <= start:
            continue
        extra = sat.mode_load_w(task.run_mode) - idle_w + task.energy_wh * 3600.0 / (end - start)
        drains.append((start, end, extra))

    cuts = {t0, t_end}
    for a, b in sunlit + [(a, b) for a, b, _ in drains]:
        cuts.update(x for x in (a, b) if t0 < x < t_end)
    times = sorted(cuts)

    def power_w(a: float, b: float) -> float:
        mid = (a + b) / 2.0
        lit = any(s <= mid < e for s, e in sunlit)
        return (sat.charge_w if lit else 0.0) - idle_w - sum(x for s, e, x in drains if s <= mid < e)

    energy = sat.energy_now_wh
    out_t, out_v = [t0], [energy]
    for a, b in itertools.pairwise(times):
        net_w = power_w(a, b)
        if net_w > 0 and energy + net_w * (b - a) / 3600.0 > sat.battery_wh:
            if energy < sat.battery_wh:
                full_at = a + (sat.battery_wh - energy) * 3600.0 / net_w
                out_t.append(full_at)
                out_v.append(sat.battery_wh)
            energy = sat.battery_wh
        else:
            energy += net_w * (b - a) / 3600.0
        out_t.append(b)
        out_v.append(energy)
    return Forecast(
        sat_id,
        "energy_wh",
        tuple(problem.now_utc + timedelta(seconds=t) for t in out_t),
        tuple(out_v),
    )


def forecast_memory(problem: Problem, placements: Iterable[Placement], sat_id: str) -> Forecast:
    """Used memory of ``sat_id`` from ``now_utc`` to the end of the horizon: a downlink frees its
    ``memory_mb`` at its end, any other task takes its ``memory_mb`` at its start. Effects before
    ``now_utc`` are in ``memory_used_mb`` already; at one instant, ends come before starts."""
    sat = _satellite(problem, sat_id)
    end_utc = problem.now_utc + timedelta(seconds=problem.horizon_s)
    events: list[tuple[datetime, int, str, float]] = []  # (time, 0 end / 1 start, task, delta)
    for p, task in _own(problem, placements, sat_id):
        if task.kind == "downlink":
            if problem.now_utc < p.end_utc <= end_utc:
                events.append((p.end_utc, 0, task.task_id, -task.memory_mb))
        elif problem.now_utc <= p.start_utc <= end_utc and task.memory_mb:
            events.append((p.start_utc, 1, task.task_id, task.memory_mb))
    events.sort()
    used = sat.memory_used_mb
    out_t, out_v = [problem.now_utc], [used]
    for t, _, _, delta in events:
        used += delta
        out_t.append(t)
        out_v.append(used)
    return Forecast(sat_id, "memory_mb", tuple(out_t), tuple(out_v))
