"""The problem turned into what the planner searches: times as float seconds after ``now_utc``,
windows merged and grouped, and for each task its static options (a satellite, a station, a
stretch of time it may run in) or the reason it has none.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .model import Problem, Reason, SatelliteResources, Station, Task, Window

__all__ = ["EPS_S", "Index", "Option", "RawWindows", "merge"]

EPS_S = 1e-6  # times closer than this are equal (datetimes carry microseconds)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Option:
    """A task may run on ``sat_id`` (via ``station_id``) anywhere inside [start_s, end_s]."""

    sat_id: str
    station_id: str | None
    start_s: float
    end_s: float
    duration_s: float


def merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted union of intervals (touching ones joined)."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + EPS_S:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _intersect(
    spans: Sequence[tuple[float, float]], cover: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    out = []
    for a, b in spans:
        for c, d in cover:
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                out.append((lo, hi))
    return out


class RawWindows:
    """Passes by satellite and target windows by (task, satellite), as given: independent of
    the clock, so a re-plan whose problem holds the very same window tuples reuses them."""

    def __init__(self, problem: Problem) -> None:
        self.station_passes = problem.station_passes
        self.target_windows = problem.target_windows
        self.passes: dict[str, list[Window]] = defaultdict(list)
        for w in problem.station_passes:
            self.passes[w.sat_id].append(w)
        self.targets: dict[tuple[str, str], list[Window]] = defaultdict(list)
        self.target_sats: dict[str, set[str]] = defaultdict(set)
        for w in problem.target_windows:
            assert w.task_id is not None  # Problem checks it
            self.targets[(w.task_id, w.sat_id)].append(w)
            self.target_sats[w.task_id].add(w.sat_id)

    def fits(self, problem: Problem) -> bool:
        return self.station_passes is problem.station_passes and self.target_windows is problem.target_windows


class Index:
    """Lookups over one problem, built once per ``plan`` call."""

    def __init__(self, problem: Problem, raw: RawWindows | None = None) -> None:
        self.problem = problem
        self.now_utc = problem.now_utc
        self.now_epoch_s = (problem.now_utc - _EPOCH).total_seconds()
        self.horizon_s = problem.horizon_s
        self.slot_s = problem.slot_s
        self.tasks: dict[str, Task] = {t.task_id: t for t in problem.tasks}
        self.sats: dict[str, SatelliteResources] = {s.sat_id: s for s in problem.satellites}
        self.stations: dict[str, Station] = {s.station_id: s for s in problem.stations}
        self.sunlit: dict[str, list[tuple[float, float]]] = {
            sat: merge(spans) for sat, spans in self._group(problem.sunlit).items()
        }
        # Passes and target windows are converted when first needed (a re-plan needs few).
        self.raw = raw if raw is not None and raw.fits(problem) else RawWindows(problem)
        self._passes: dict[str, list[tuple[float, float, str, float]]] = {}
        self._targets: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self.down: dict[str, list[tuple[float, float]]] = {
            s.station_id: merge((self.rel(a), self.rel(b)) for a, b in s.unavailable)
            for s in problem.stations
        }
        self.dependents: dict[str, list[str]] = defaultdict(list)
        for t in problem.tasks:
            for d in t.depends_on:
                self.dependents[d].append(t.task_id)
        self.weight = self._weights()
        self.cyclic = self._cyclic()
        self._options: dict[str, tuple[list[Option], Reason | None, str]] = {}
        self._sat_options: dict[tuple[str, str], tuple[list[Option], tuple[int, int, int, int, int]]] = {}

    # -- time --------------------------------------------------------------------------------

    def rel(self, t_utc: datetime) -> float:
        return (t_utc - self.now_utc).total_seconds()

    def utc(self, t_s: float) -> datetime:
        return self.now_utc + timedelta(microseconds=round(t_s * 1e6))

    def snap(self, t_s: float) -> float:
        """The first grid time (a multiple of slot_s since the Unix epoch) at or after t_s."""
        k = math.ceil((self.now_epoch_s + t_s) / self.slot_s - 1e-9)
        return k * self.slot_s - self.now_epoch_s

    def _group(self, windows: Iterable[object]) -> dict[str, list[tuple[float, float]]]:
        out: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for w in windows:
            out[w.sat_id].append((self.rel(w.start_utc), self.rel(w.end_utc)))  # type: ignore[attr-defined]
        return out

    # -- tasks -------------------------------------------------------------------------------

    def _weights(self) -> dict[str, int]:
        """A task's weight in the planning order: its priority, or a dependent's if higher
        (the imaging a high-priority downlink needs goes first)."""
        weight = {tid: t.priority for tid, t in self.tasks.items()}
        changed = True
        rounds = 0
        while changed and rounds <= len(weight):
            changed, rounds = False, rounds + 1
            for tid, t in self.tasks.items():
                for d in t.depends_on:
                    if d in weight and weight[d] < weight[tid]:
                        weight[d], changed = weight[tid], True
        return weight

    def _cyclic(self) -> set[str]:
        """Tasks on or behind a dependency cycle (Kahn's algorithm leaves them over)."""
        indegree = {tid: sum(d in self.tasks for d in t.depends_on) for tid, t in self.tasks.items()}
        ready = [tid for tid, n in indegree.items() if n == 0]
        seen = set()
        while ready:
            tid = ready.pop()
            seen.add(tid)
            for dep in self.dependents.get(tid, ()):
                indegree[dep] -= 1
                if indegree[dep] == 0:
                    ready.append(dep)
        return set(self.tasks) - seen

    def order_key(self, task_id: str) -> tuple[int, float, str]:
        t = self.tasks[task_id]
        return (-self.weight[task_id], self.rel(t.deadline_utc), task_id)

    def planning_order(self, task_ids: Iterable[str], key: dict[str, tuple[float, ...]] | None = None) -> list[str]:
        """``task_ids`` by weight then deadline (or by ``key``), each after the tasks of the set
        it depends on (cyclic ones are left out)."""
        ids = [tid for tid in task_ids if tid not in self.cyclic]
        members = set(ids)
        sort_key = key if key is not None else {tid: self.order_key(tid) for tid in ids}
        indegree = {tid: sum(d in members for d in self.tasks[tid].depends_on) for tid in ids}
        heap = [(sort_key[tid], tid) for tid in ids if indegree[tid] == 0]
        heapq.heapify(heap)
        out = []
        while heap:
            _, tid = heapq.heappop(heap)
            out.append(tid)
            for dep in self.dependents.get(tid, ()):
                if dep in indegree:
                    indegree[dep] -= 1
                    if indegree[dep] == 0:
                        heapq.heappush(heap, (sort_key[dep], dep))
        return out

    def duration_s(self, task: Task, station_id: str | None) -> float:
        if task.kind == "downlink" and station_id is not None:
            rate = self.stations[station_id].downlink_mbps
            return max(task.duration_s, 8.0 * task.memory_mb / rate)
        return task.duration_s

    def data_holders(self, task: Task) -> list[str] | None:
        """For a downlink of imaging tasks: the satellites all of them could run on (its data
        can only be there); None for other tasks."""
        imaging = [dep for dep in task.depends_on if dep in self.tasks and self.tasks[dep].kind == "imaging"]
        if task.kind != "downlink" or not imaging:
            return None
        holders = set(self.candidate_sats(task))
        for dep in imaging:
            holders &= {o.sat_id for o in self.options(dep)[0]}
        return sorted(holders)

    def candidate_sats(self, task: Task) -> list[str]:
        if task.sat_id is not None:
            return [task.sat_id]
        if task.kind == "imaging":  # only those that see its target
            return sorted(s for s in self.raw.target_sats.get(task.task_id, ()) if s in self.sats)
        return sorted(self.sats)

    def structural(self, task: Task) -> tuple[Reason, str] | None:
        """Why ``task`` can never be placed whatever the windows say, or None."""
        missing = [d for d in task.depends_on if d not in self.tasks]
        if missing:
            return "dependency", f"depends on {', '.join(missing)}, not in the problem"
        if task.task_id in self.cyclic:
            return "dependency", "its dependencies form a cycle"
        if task.sat_id is not None and task.sat_id not in self.sats:
            return "unknown_satellite", f"no satellite {task.sat_id!r}"
        if task.station_id is not None and task.station_id not in self.stations:
            return "unknown_station", f"no station {task.station_id!r}"
        if task.sat_id is not None and not self.sats[task.sat_id].available:
            return "satellite_unavailable", f"satellite {task.sat_id} is unavailable"
        return None

    def options(self, task_id: str) -> tuple[list[Option], Reason | None, str]:
        """Static options on every satellite it may use, sorted by start (within earliest..
        deadline and the horizon, sunlit if asked), or none and the reason."""
        cached = self._options.get(task_id)
        if cached is None:
            task = self.tasks[task_id]
            why = self.structural(task)
            if why is not None:
                cached = ([], why[0], why[1])
            else:
                holders = self.data_holders(task)
                sats = holders if holders is not None else self.candidate_sats(task)
                if holders is not None and not holders:
                    cached = ([], "dependency", "no satellite could both take its data and downlink it")
                else:
                    cached = self.options_over(task, sats)
            self._options[task_id] = cached
        return cached

    def options_on(self, task_id: str, sat_id: str) -> list[Option]:
        """Static options of ``task_id`` on one satellite (an unavailable one has none)."""
        task = self.tasks[task_id]
        if self.structural(task) is not None or not self.sats[sat_id].available:
            return []
        return self._on_sat(task, sat_id)[0]

    def options_over(self, task: Task, sats: list[str]) -> tuple[list[Option], Reason | None, str]:
        """Options on ``sats`` sorted by start, or none and the reason."""
        counts = [0, 0, 0, 0, 0]  # long enough, on an available satellite, timely, in horizon, sunlit
        opts: list[Option] = []
        for sat in sats:
            found, stages = self._on_sat(task, sat)
            opts += found
            counts = [a + b for a, b in zip(counts, stages, strict=True)]
        what = {"downlink": "pass", "imaging": "target window"}.get(task.kind, "window")
        verdicts: list[tuple[Reason, str]] = [
            ("window", f"no {what} of {task.duration_s:g} s or more"),
            ("satellite_unavailable", "every satellite that could do it is unavailable"),
            ("deadline", f"no {what} between its earliest start and its deadline"),
            ("horizon", f"no {what} before the horizon ends ({self.horizon_s:g} s)"),
            ("window", f"no sunlit {what} of {task.duration_s:g} s or more"),
        ]
        for n, (reason, detail) in zip(counts, verdicts, strict=True):
            if n == 0:
                return [], reason, detail
        opts.sort(key=lambda o: (o.start_s, o.sat_id, o.station_id or ""))
        return opts, None, ""

    def _on_sat(self, task: Task, sat: str) -> tuple[list[Option], tuple[int, int, int, int, int]]:
        key = (task.task_id, sat)
        cached = self._sat_options.get(key)
        if cached is not None:
            return cached
        raw: list[tuple[str | None, float, float, float]] = []  # station, a, b, duration
        if task.kind == "downlink":
            for a, b, station, max_el in self.passes_of(sat):
                if (task.station_id is None or station == task.station_id) and (
                    station in self.stations and max_el >= task.min_elevation_deg
                ):
                    raw.append((station, a, b, self.duration_s(task, station)))
        elif task.kind == "imaging":
            raw = [(None, a, b, task.duration_s) for a, b in self.targets_of(task.task_id, sat)]
        else:
            raw = [(None, -math.inf, math.inf, task.duration_s)]
        raw = [r for r in raw if r[2] - r[1] >= r[3] - EPS_S]
        n_raw = len(raw)
        if not self.sats[sat].available:
            raw = []
        n_available = len(raw)
        lo, hi = max(self.rel(task.earliest_utc), 0.0), self.rel(task.deadline_utc)
        timed = [(st, max(a, lo), min(b, hi), d) for st, a, b, d in raw]
        timed = [r for r in timed if r[2] - r[1] >= r[3] - EPS_S]
        n_timed = len(timed)
        timed = [(st, a, min(b, self.horizon_s), d) for st, a, b, d in timed]
        timed = [r for r in timed if r[2] - r[1] >= r[3] - EPS_S]
        n_horizon = len(timed)
        if task.needs_sunlight:
            lit = []
            for st, a, b, d in timed:
                lit += [(st, c, e, d) for c, e in _intersect([(a, b)], self.sunlit.get(sat, []))]
            timed = [r for r in lit if r[2] - r[1] >= r[3] - EPS_S]
        opts = [Option(sat, st, a, b, d) for st, a, b, d in timed]
        result = (opts, (n_raw, n_available, n_timed, n_horizon, len(opts)))
        self._sat_options[key] = result
        return result

    def holds(self, task: Task, sat: str, station: str | None, start_s: float, end_s: float) -> bool:
        """Whether [start_s, end_s] on ``sat`` (via ``station``) is inside one of the task's
        static options (the same rules as ``_on_sat``, checked for one placement)."""
        if not self.sats[sat].available or start_s < -EPS_S or end_s > self.horizon_s + EPS_S:
            return False
        if start_s < self.rel(task.earliest_utc) - EPS_S or end_s > self.rel(task.deadline_utc) + EPS_S:
            return False
        if task.kind == "downlink":
            spans = [(a, b) for a, b, st, el in self.passes_of(sat)
                     if st == station and el >= task.min_elevation_deg]  # fmt: skip
            if station is None or (task.station_id is not None and station != task.station_id):
                return False
        elif task.kind == "imaging":
            spans = self.targets_of(task.task_id, sat)
        else:
            spans = [(-math.inf, math.inf)]
        if not any(a - EPS_S <= start_s and end_s <= b + EPS_S for a, b in spans):
            return False
        return not task.needs_sunlight or any(
            a - EPS_S <= start_s and end_s <= b + EPS_S for a, b in self.sunlit.get(sat, ())
        )

    def passes_of(self, sat: str) -> list[tuple[float, float, str, float]]:
        cached = self._passes.get(sat)
        if cached is None:
            cached = self._passes[sat] = [
                (self.rel(w.start_utc), self.rel(w.end_utc), w.station_id or "", w.max_elevation_deg)
                for w in self.raw.passes.get(sat, ())
            ]
        return cached

    def targets_of(self, task_id: str, sat: str) -> list[tuple[float, float]]:
        key = (task_id, sat)
        cached = self._targets.get(key)
        if cached is None:
            cached = self._targets[key] = [
                (self.rel(w.start_utc), self.rel(w.end_utc)) for w in self.raw.targets.get(key, ())
            ]
        return cached
