"""The planner's working state: who is busy when (satellites, station antennas), each
satellite's memory events and energy drains, and the search for the earliest time a task fits
an option. This is the planner's own feasibility check; ``validate`` is written separately.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from .index import EPS_S, Index, Option
from .model import Reason, Task

__all__ = ["STAGE_REASONS", "Slot", "State"]

_ENERGY_EPS_WH = 1e-9
_MEMORY_EPS_MB = 1e-9
_RETRIES = 6  # later start times tried per option after an energy or memory failure

# How far an attempt got: a failure at a later stage is the more telling reason.
STAGE_REASONS: tuple[Reason, ...] = ("deadline", "station_conflict", "satellite_busy", "memory", "energy")
_TIME, _STATION, _SATELLITE, _MEMORY, _ENERGY = range(5)


@dataclass(frozen=True, slots=True)
class Slot:
    """A placement in planner units (seconds after now)."""

    task_id: str
    sat_id: str
    station_id: str | None
    antenna: int | None
    start_s: float
    end_s: float
    extra_w: float  # drain on top of the idle load while it runs
    memory_mb: float  # + taken at the start, - freed at the end
    frozen: bool = False


class _Timeline:
    """Non-overlapping intervals of one resource, sorted by start."""

    __slots__ = ("ends", "ids", "starts")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.ids: list[str] = []

    def add(self, start: float, end: float, task_id: str) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        self.ids.insert(i, task_id)

    def remove(self, task_id: str) -> None:
        i = self.ids.index(task_id)
        del self.starts[i], self.ends[i], self.ids[i]

    def blocker_end(self, start: float, end: float, gap: float = 0.0) -> float | None:
        """The latest end of an interval closer than ``gap`` to [start, end), or None."""
        i = bisect.bisect_left(self.starts, end + gap - EPS_S)
        if i and self.ends[i - 1] + gap > start + EPS_S:
            return self.ends[i - 1]
        return None

    def overlapping(self, start: float, end: float, gap: float = 0.0) -> list[str]:
        i = bisect.bisect_left(self.starts, end + gap - EPS_S)
        out = []
        while i:
            i -= 1
            if self.ends[i] + gap > start + EPS_S:
                out.append(self.ids[i])
            else:
                break
        return out


class State:
    """Placed slots and the resources they hold; ``fit`` finds room for one more."""

    def __init__(self, index: Index) -> None:
        self.ix = index
        self.slots: dict[str, Slot] = {}
        self.value = 0
        self.busy: dict[str, _Timeline] = {s: _Timeline() for s in index.sats}
        self.antennas: dict[tuple[str, int], _Timeline] = {
            (s.station_id, k): _Timeline() for s in index.stations.values() for k in range(s.antennas)
        }
        # memory events per satellite: (time, 0 end / 1 start, task, delta)
        self.memory: dict[str, list[tuple[float, int, str, float]]] = {s: [] for s in index.sats}
        self.drains: dict[str, dict[str, tuple[float, float, float]]] = {s: {} for s in index.sats}
        self.sun_events: dict[str, list[tuple[float, float]]] = {}
        for sat_id, sat in index.sats.items():
            events = []
            for a, b in index.sunlit.get(sat_id, []):
                events += [(a, sat.charge_w), (b, -sat.charge_w)]
            self.sun_events[sat_id] = events

    # -- bookkeeping -------------------------------------------------------------------------

    def add(self, slot: Slot) -> None:
        self.slots[slot.task_id] = slot
        self.value += self.ix.tasks[slot.task_id].priority
        self.busy[slot.sat_id].add(slot.start_s, slot.end_s, slot.task_id)
        if slot.station_id is not None and slot.antenna is not None:
            self.antennas[(slot.station_id, slot.antenna)].add(slot.start_s, slot.end_s, slot.task_id)
        if slot.memory_mb:
            at, order = (slot.start_s, 1) if slot.memory_mb > 0 else (slot.end_s, 0)
            bisect.insort(self.memory[slot.sat_id], (at, order, slot.task_id, slot.memory_mb))
        self.drains[slot.sat_id][slot.task_id] = (slot.start_s, slot.end_s, slot.extra_w)

    def remove(self, task_id: str) -> Slot:
        slot = self.slots.pop(task_id)
        self.value -= self.ix.tasks[task_id].priority
        self.busy[slot.sat_id].remove(task_id)
        if slot.station_id is not None and slot.antenna is not None:
            self.antennas[(slot.station_id, slot.antenna)].remove(task_id)
        if slot.memory_mb:
            events = self.memory[slot.sat_id]
            events.pop(next(i for i, e in enumerate(events) if e[2] == task_id))
        del self.drains[slot.sat_id][task_id]
        return slot

    def make_slot(self, task: Task, sat_id: str, station_id: str | None, antenna: int | None,
                  start_s: float, duration_s: float, frozen: bool = False) -> Slot:  # fmt: skip
        sat = self.ix.sats[sat_id]
        extra_w = (
            sat.mode_load_w(task.run_mode) - sat.mode_load_w(sat.idle_mode)
            + task.energy_wh * 3600.0 / duration_s
        )  # fmt: skip
        memory = -task.memory_mb if task.kind == "downlink" else task.memory_mb
        return Slot(task.task_id, sat_id, station_id, antenna, start_s, start_s + duration_s,
                    extra_w, memory, frozen)  # fmt: skip

    # -- checks ------------------------------------------------------------------------------

    def memory_ok(self, sat_id: str, at_s: float, delta_mb: float) -> bool:
        """Can ``delta_mb`` be taken (> 0, at a start) or freed (< 0, at an end) at ``at_s``?
        Conservative at equal times: every state from just before ``at_s`` on must allow it."""
        sat = self.ix.sats[sat_id]
        used = sat.memory_used_mb
        checking = False
        for t, _, _, d in self.memory[sat_id]:
            if not checking and t >= at_s - EPS_S:
                checking = True
                if not self._memory_fits(used + delta_mb, sat.memory_capacity_mb):
                    return False
            used += d
            if checking and not self._memory_fits(used + delta_mb, sat.memory_capacity_mb):
                return False
        return checking or self._memory_fits(used + delta_mb, sat.memory_capacity_mb)

    @staticmethod
    def _memory_fits(used_mb: float, capacity_mb: float) -> bool:
        return -_MEMORY_EPS_MB <= used_mb <= capacity_mb + _MEMORY_EPS_MB

    def energy_min(self, sat_id: str, extra: tuple[float, float, float] | None = None) -> tuple[float, float]:
        """(lowest energy over the horizon, when) with the satellite's drains (and ``extra``)."""
        sat = self.ix.sats[sat_id]
        horizon = self.ix.horizon_s
        events = list(self.sun_events[sat_id])
        for s, e, w in self.drains[sat_id].values():
            events += [(s, -w), (e, w)]
        if extra is not None:
            s, e, w = extra
            events += [(s, -w), (e, w)]
        events.sort()
        cap = sat.battery_wh
        energy, power, t_prev = sat.energy_now_wh, -sat.mode_load_w(sat.idle_mode), 0.0
        low, low_at = energy, 0.0
        for t, dp in events:
            if t > t_prev:
                t_to = min(t, horizon)
                energy = min(cap, energy + power * (t_to - t_prev) / 3600.0)
                if energy < low:
                    low, low_at = energy, t_to
                t_prev = t_to
                if t_prev >= horizon:
                    break
            power += dp
        if t_prev < horizon:
            energy = min(cap, energy + power * (horizon - t_prev) / 3600.0)
            if energy < low:
                low, low_at = energy, horizon
        return low, low_at

    def energy_ok(self, sat_id: str, extra: tuple[float, float, float] | None = None) -> bool:
        return self.energy_min(sat_id, extra)[0] >= self.ix.sats[sat_id].reserve_wh - _ENERGY_EPS_WH

    # -- search ------------------------------------------------------------------------------

    def fit(self, task: Task, option: Option, lo_s: float, *, before_s: float = math.inf) -> Slot | int:
        """The earliest slot for ``task`` in ``option`` starting at or after ``lo_s`` (and
        ending before ``before_s``), or the furthest stage an attempt reached."""
        ix = self.ix
        dur = option.duration_s
        last_end = min(option.end_s, before_s)
        t = ix.snap(max(option.start_s, lo_s))
        station = ix.stations[option.station_id] if option.station_id is not None else None
        gap = station.setup_gap_s if station is not None else 0.0
        busy = self.busy[option.sat_id]
        stage = _TIME
        retries = 0
        while t + dur <= last_end + EPS_S:
            end = t + dur
            antenna = None
            if station is not None:
                down_end = next((b for a, b in ix.down[station.station_id] if a < end - EPS_S and b > t + EPS_S), None)
                if down_end is not None:
                    stage = max(stage, _STATION)
                    t = ix.snap(down_end)
                    continue
                soonest = math.inf
                for k in range(station.antennas):
                    blocker = self.antennas[(station.station_id, k)].blocker_end(t, end, gap)
                    if blocker is None:
                        antenna = k
                        break
                    soonest = min(soonest, blocker + gap)
                if antenna is None:
                    stage = max(stage, _STATION)
                    t = ix.snap(soonest)
                    continue
            blocker = busy.blocker_end(t, end)
            if blocker is not None:
                stage = max(stage, _SATELLITE)
                t = ix.snap(blocker)
                continue
            slot = self.make_slot(task, option.sat_id, option.station_id, antenna, t, dur)
            if slot.memory_mb and not self.memory_ok(
                slot.sat_id, slot.start_s if slot.memory_mb > 0 else slot.end_s, slot.memory_mb
            ):
                stage = max(stage, _MEMORY)
            elif not self.energy_ok(slot.sat_id, (slot.start_s, slot.end_s, slot.extra_w)):
                stage = max(stage, _ENERGY)
            else:
                return slot
            retries += 1
            if retries > _RETRIES:
                break
            t = self._next_try(option.sat_id, t, last_end - dur)
        return stage

    def _next_try(self, sat_id: str, t: float, latest: float) -> float:
        """After an energy or memory failure at ``t``: the next time something changes on the
        satellite (a task ends, a sunlit edge, a memory event), else the latest start."""
        later = [e for e in self.busy[sat_id].ends if e > t + EPS_S]
        later += [a for a, _ in self.sun_events[sat_id] if a > t + EPS_S]
        later += [m[0] for m in self.memory[sat_id] if m[0] > t + EPS_S]
        nxt = min(later, default=math.inf)
        if nxt > latest:
            nxt = latest if latest > t + EPS_S else math.inf
        return self.ix.snap(nxt) if nxt < math.inf else math.inf

    def fits_exactly(self, slot: Slot, *, resources: bool = True) -> int | None:
        """None when ``slot`` (a kept placement) still fits as it is, else the failing stage
        (memory and energy only with ``resources``)."""
        ix = self.ix
        if slot.station_id is not None:
            station = ix.stations[slot.station_id]
            if any(a < slot.end_s - EPS_S and b > slot.start_s + EPS_S for a, b in ix.down[slot.station_id]):
                return _STATION
            if slot.antenna is None or slot.antenna >= station.antennas or self.antennas[
                (slot.station_id, slot.antenna)
            ].blocker_end(slot.start_s, slot.end_s, station.setup_gap_s) is not None:
                return _STATION
        if self.busy[slot.sat_id].blocker_end(slot.start_s, slot.end_s) is not None:
            return _SATELLITE
        if not resources:
            return None
        if slot.memory_mb and not self.memory_ok(
            slot.sat_id, slot.start_s if slot.memory_mb > 0 else slot.end_s, slot.memory_mb
        ):
            return _MEMORY
        if not self.energy_ok(slot.sat_id, (slot.start_s, slot.end_s, slot.extra_w)):
            return _ENERGY
        return None

    def free_antenna(self, station_id: str, start_s: float, end_s: float, prefer: int | None) -> int | None:
        station = self.ix.stations[station_id]
        order = ([prefer] if prefer is not None and prefer < station.antennas else []) + list(range(station.antennas))
        for k in order:
            if self.antennas[(station_id, k)].blocker_end(start_s, end_s, station.setup_gap_s) is None:
                return k
        return None
