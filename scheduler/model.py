"""The scheduling problem and its plan, as frozen dataclasses (the contract with the integration).

Times are timezone-aware UTC ``datetime`` objects (``*_utc``), durations seconds (``*_s``),
energy watt-hours (``*_wh``), power watts (``*_w``), data megabytes (``*_mb``, 1 MB = 8 Mbit),
rates megabits per second (``*_mbps``). Structural mistakes (a naive datetime, a negative
duration, a priority outside 0..100, an end before its start) raise ``ValueError`` when the object
is built; what only the problem as a whole can tell (an unknown satellite, an impossible window)
is reported in the plan, as data (``Unplaced.reason``).

What the integration provides (``Problem``):

- ``tasks``: the tasks still to run (pending, scheduled or running); drop done, failed and
  cancelled ones, and drop a dependency on a task that is already done.
- ``satellites``: every satellite a task may use, with its live energy and memory at ``now_utc``
  (``available=False`` for one in safe mode or lost by its node: nothing new goes on it).
- ``stations``: every ground station, with the windows in which it is down.
- ``station_passes``: one ``Window(sat_id, start, end, station_id=...)`` per pass of a satellite
  over a station in the horizon, computed with the station's elevation mask (``orbital.find_passes``);
  ``max_elevation_deg`` the pass's maximum (a downlink needs ``>= task.min_elevation_deg``).
- ``target_windows``: per imaging task and satellite, ``Window(sat_id, start, end, task_id=...)``
  while the task's target is in view above the task's ``min_elevation_deg``.
- ``sunlit``: per satellite, ``Window(sat_id, start, end)`` while it is in sunlight (outside:
  eclipse). A satellite with no sunlit window is in eclipse for the whole horizon.
- For a re-plan: ``plan(problem, previous=<the Plan in force>, cause=...)``; reuse the same
  window tuple objects when they did not change (fast path, see ``scheduler.planner``).
- Vocabulary for the database and the API: ``UNPLACED_REASONS``, ``CHANGE_KINDS``,
  ``VIOLATION_KINDS``, ``TASK_KINDS`` (mirror them in ``py_nodes/vocabulary.py`` with a test).

The model (the validator checks exactly this; the planner plans against it):

- A satellite runs one task at a time. Outside tasks it is in ``idle_mode``; during a task in the
  task's mode (``KIND_MODES`` unless the task names one). Its battery charges at ``charge_w`` in
  sunlight and drains at ``load_w[mode]`` always, plus a task's own ``energy_wh`` spread evenly
  over the task; the charge stops at ``battery_wh`` (full). The energy must never fall below
  ``reserve_wh`` over the horizon (an energy already below it at ``now_utc`` must not fall further).
- Memory: an imaging (maintenance, command) task takes its ``memory_mb`` at its start; a downlink
  frees its ``memory_mb`` at its end. Used memory stays within [0, ``memory_capacity_mb``].
- A downlink runs inside one pass of its satellite over its station, on one antenna of that
  station, lasting ``max(duration_s, 8 * memory_mb / downlink_mbps)``; two downlinks on one
  antenna are ``setup_gap_s`` apart at least; none overlaps a station's down window.
- An imaging task runs inside one of its target windows (and a sunlit window if
  ``needs_sunlight``). Maintenance and command tasks need no window (sunlit if asked).
- Every task starts at or after ``earliest_utc`` and ``now_utc``, ends at or before
  ``deadline_utc`` and ``now_utc + horizon_s``, and starts after every task it depends on ends;
  a downlink that depends on imaging tasks runs on their satellite.
- Starts fall on the grid ``now_utc + k * slot_s`` (placements already frozen keep theirs).
- Effects of a task that started before ``now_utc`` (a running one) are in the live state
  already at its start: only what remains (its drain until its end, a downlink's release) counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

__all__ = [
    "CHANGE_KINDS",
    "KIND_MODES",
    "TASK_KINDS",
    "UNPLACED_REASONS",
    "VIOLATION_KINDS",
    "ChangeKind",
    "Placement",
    "Plan",
    "PlanChange",
    "Problem",
    "Reason",
    "SatelliteResources",
    "Station",
    "Task",
    "TaskKind",
    "Unplaced",
    "Violation",
    "ViolationKind",
    "Window",
]

TaskKind = Literal["imaging", "downlink", "maintenance", "command"]
TASK_KINDS: Final = ("imaging", "downlink", "maintenance", "command")

# The satellite's mode while a task of each kind runs (None: it stays in its idle mode).
KIND_MODES: Final[Mapping[str, str | None]] = {
    "imaging": "science",
    "downlink": "downlink",
    "maintenance": "maintenance",
    "command": None,
}

# Why a task is not in the plan.
Reason = Literal[
    "window",  # no window (pass, target visibility, sunlight) long enough for it
    "deadline",  # windows exist, but none between its earliest start and its deadline
    "horizon",  # it cannot start before the horizon ends (planned on a later run)
    "energy",  # every feasible time would take the battery below its reserve
    "memory",  # ... would overflow the memory (or free data the satellite does not hold)
    "station_conflict",  # the station's antennas are taken (or it is down) in every window
    "satellite_busy",  # its satellite runs other tasks in every window
    "dependency",  # a task it depends on is unplaced, unknown, or cyclic
    "unknown_satellite",  # it names a satellite the problem does not have
    "unknown_station",  # ... a station the problem does not have
    "satellite_unavailable",  # its satellite is in safe mode or lost
]
UNPLACED_REASONS: Final = (
    "window",
    "deadline",
    "horizon",
    "energy",
    "memory",
    "station_conflict",
    "satellite_busy",
    "dependency",
    "unknown_satellite",
    "unknown_station",
    "satellite_unavailable",
)

ChangeKind = Literal["added", "moved", "removed"]
CHANGE_KINDS: Final = ("added", "moved", "removed")

ViolationKind = Literal[
    "unknown",  # a placement names a task, satellite or station the problem does not have
    "duplicate",  # a task placed twice
    "wrong_satellite",  # not the task's satellite (or not its dependencies' for a downlink)
    "wrong_station",  # a downlink not at the task's station, or a station on a non-downlink
    "unavailable",  # a new placement on an unavailable satellite
    "duration",  # end - start is not the task's duration
    "earliest",  # starts before earliest_utc or now_utc (a frozen placement may have started)
    "deadline",  # ends after deadline_utc
    "horizon",  # ends after now_utc + horizon_s
    "grid",  # a new placement whose start is off the slot grid
    "window",  # outside every pass / target window, or below the elevation asked
    "sunlight",  # not inside a sunlit window although needs_sunlight
    "station_down",  # overlaps a station's down window
    "antenna",  # two downlinks on one antenna overlap (with the setup gap), or no such antenna
    "satellite_overlap",  # two tasks on one satellite overlap
    "dependency",  # starts before a task it depends on ends, or that task is not placed
    "energy",  # the battery falls below its reserve
    "memory",  # memory above capacity or below zero
    "frozen_moved",  # a placement inside the previous plan's freeze window was moved or dropped
]
VIOLATION_KINDS: Final = (
    "unknown",
    "duplicate",
    "wrong_satellite",
    "wrong_station",
    "unavailable",
    "duration",
    "earliest",
    "deadline",
    "horizon",
    "grid",
    "window",
    "sunlight",
    "station_down",
    "antenna",
    "satellite_overlap",
    "dependency",
    "energy",
    "memory",
    "frozen_moved",
)


def _aware(value: datetime, what: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} is naive; pass a timezone-aware UTC time")


def _finite(value: float, what: str, *, minimum: float | None = 0.0) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")


def _ordered(start: datetime, end: datetime, what: str) -> None:
    _aware(start, f"{what} start")
    _aware(end, f"{what} end")
    if end <= start:
        raise ValueError(f"{what}: end {end.isoformat()} must be after start {start.isoformat()}")


@dataclass(frozen=True, slots=True)
class Task:
    """One thing to do. ``sat_id``/``station_id`` None: any satellite/station that can."""

    task_id: str
    kind: TaskKind
    priority: int
    earliest_utc: datetime
    deadline_utc: datetime
    duration_s: float
    energy_wh: float = 0.0  # on top of the mode's load, spread over the task
    memory_mb: float = 0.0  # taken at the start (imaging...) or freed at the end (downlink)
    sat_id: str | None = None
    station_id: str | None = None  # downlink only
    depends_on: tuple[str, ...] = ()
    min_elevation_deg: float = 0.0  # downlink: the pass must reach it (imaging: in its windows)
    needs_sunlight: bool = False
    mode: str | None = None  # the satellite's mode while it runs (None: KIND_MODES[kind])

    def __post_init__(self) -> None:
        what = f"task {self.task_id!r}"
        if not isinstance(self.task_id, str) or not self.task_id:
            raise ValueError(f"task_id must be a non-empty string, got {self.task_id!r}")
        if self.kind not in TASK_KINDS:
            raise ValueError(f"{what}: kind {self.kind!r} is not one of {', '.join(TASK_KINDS)}")
        if not isinstance(self.priority, int) or not 0 <= self.priority <= 100:
            raise ValueError(f"{what}: priority must be an integer in 0..100, got {self.priority!r}")
        _ordered(self.earliest_utc, self.deadline_utc, f"{what} earliest..deadline")
        _finite(self.duration_s, f"{what}: duration_s")
        if self.duration_s <= 0 and self.kind != "downlink":
            raise ValueError(f"{what}: duration_s must be > 0, got {self.duration_s}")
        _finite(self.energy_wh, f"{what}: energy_wh")
        _finite(self.memory_mb, f"{what}: memory_mb")
        if self.kind == "downlink" and self.duration_s <= 0 and self.memory_mb <= 0:
            raise ValueError(f"{what}: a downlink needs duration_s > 0 or memory_mb > 0")
        if self.station_id is not None and self.kind != "downlink":
            raise ValueError(f"{what}: only a downlink names a station, not a {self.kind}")
        if self.task_id in self.depends_on:
            raise ValueError(f"{what} depends on itself")
        _finite(self.min_elevation_deg, f"{what}: min_elevation_deg", minimum=-90.0)
        if self.min_elevation_deg >= 90.0:
            raise ValueError(f"{what}: min_elevation_deg must be < 90, got {self.min_elevation_deg}")

    @property
    def run_mode(self) -> str | None:
        """The mode it runs in (None: the satellite's idle mode)."""
        return self.mode if self.mode is not None else KIND_MODES[self.kind]


@dataclass(frozen=True, slots=True)
class SatelliteResources:
    """A satellite's live state at ``Problem.now_utc`` and its power model."""

    sat_id: str
    battery_wh: float  # capacity
    energy_now_wh: float
    reserve_wh: float
    charge_w: float  # solar charge in sunlight
    load_w: Mapping[str, float]  # drain per mode (a mode it lacks: idle_mode's)
    memory_capacity_mb: float
    memory_used_mb: float
    available: bool = True
    idle_mode: str = "nominal"

    def __post_init__(self) -> None:
        what = f"satellite {self.sat_id!r}"
        if not isinstance(self.sat_id, str) or not self.sat_id:
            raise ValueError(f"sat_id must be a non-empty string, got {self.sat_id!r}")
        for name in ("battery_wh", "energy_now_wh", "reserve_wh", "charge_w",
                     "memory_capacity_mb", "memory_used_mb"):  # fmt: skip
            _finite(getattr(self, name), f"{what}: {name}")
        if self.energy_now_wh > self.battery_wh:
            raise ValueError(f"{what}: energy_now_wh {self.energy_now_wh} > battery_wh {self.battery_wh}")
        if self.reserve_wh > self.battery_wh:
            raise ValueError(f"{what}: reserve_wh {self.reserve_wh} > battery_wh {self.battery_wh}")
        if self.memory_used_mb > self.memory_capacity_mb:
            raise ValueError(
                f"{what}: memory_used_mb {self.memory_used_mb} > capacity {self.memory_capacity_mb}"
            )
        for mode, watts in self.load_w.items():
            _finite(watts, f"{what}: load_w[{mode!r}]")
        if self.idle_mode not in self.load_w:
            raise ValueError(f"{what}: load_w has no entry for its idle mode {self.idle_mode!r}")

    def mode_load_w(self, mode: str | None) -> float:
        """Drain in ``mode`` (None or a mode without an entry: the idle mode's)."""
        if mode is None or mode not in self.load_w:
            return self.load_w[self.idle_mode]
        return self.load_w[mode]


@dataclass(frozen=True, slots=True)
class Station:
    """A ground station: ``antennas`` satellites at a time, ``setup_gap_s`` between two on one
    antenna, down during each ``(start_utc, end_utc)`` of ``unavailable``."""

    station_id: str
    downlink_mbps: float
    antennas: int = 1
    setup_gap_s: float = 0.0
    unavailable: tuple[tuple[datetime, datetime], ...] = ()

    def __post_init__(self) -> None:
        what = f"station {self.station_id!r}"
        if not isinstance(self.station_id, str) or not self.station_id:
            raise ValueError(f"station_id must be a non-empty string, got {self.station_id!r}")
        _finite(self.downlink_mbps, f"{what}: downlink_mbps")
        if self.downlink_mbps <= 0:
            raise ValueError(f"{what}: downlink_mbps must be > 0, got {self.downlink_mbps}")
        if not isinstance(self.antennas, int) or self.antennas < 1:
            raise ValueError(f"{what}: antennas must be an integer >= 1, got {self.antennas!r}")
        _finite(self.setup_gap_s, f"{what}: setup_gap_s")
        for start, end in self.unavailable:
            _ordered(start, end, f"{what} unavailable window")


@dataclass(frozen=True, slots=True)
class Window:
    """An interval of one satellite: a pass over ``station_id``, the view of imaging task
    ``task_id``'s target, or (neither named) a sunlit interval."""

    sat_id: str
    start_utc: datetime
    end_utc: datetime
    station_id: str | None = None
    task_id: str | None = None
    max_elevation_deg: float = 90.0

    def __post_init__(self) -> None:
        _ordered(self.start_utc, self.end_utc, f"window of {self.sat_id!r}")
        if self.station_id is not None and self.task_id is not None:
            raise ValueError(f"window of {self.sat_id!r}: a pass or a target window, not both")


@dataclass(frozen=True, slots=True)
class Problem:
    """Everything ``plan`` needs (see the module docstring for what each part means)."""

    now_utc: datetime
    tasks: tuple[Task, ...]
    satellites: tuple[SatelliteResources, ...]
    stations: tuple[Station, ...] = ()
    station_passes: tuple[Window, ...] = ()
    target_windows: tuple[Window, ...] = ()
    sunlit: tuple[Window, ...] = ()
    horizon_s: float = 86_400.0
    freeze_s: float = 300.0
    slot_s: float = 1.0

    def __post_init__(self) -> None:
        _aware(self.now_utc, "now_utc")
        _finite(self.horizon_s, "horizon_s")
        _finite(self.freeze_s, "freeze_s")
        _finite(self.slot_s, "slot_s")
        if self.horizon_s <= 0 or self.slot_s <= 0:
            raise ValueError(f"horizon_s and slot_s must be > 0, got {self.horizon_s}, {self.slot_s}")
        for label, ids in (
            ("task", [t.task_id for t in self.tasks]),
            ("satellite", [s.sat_id for s in self.satellites]),
            ("station", [s.station_id for s in self.stations]),
        ):
            if len(set(ids)) != len(ids):
                dup = sorted({i for i in ids if ids.count(i) > 1})
                raise ValueError(f"{label} ids must be unique; repeated: {', '.join(dup)}")
        for w in self.station_passes:
            if w.station_id is None:
                raise ValueError(f"station_passes: a window of {w.sat_id!r} names no station")
        for w in self.target_windows:
            if w.task_id is None:
                raise ValueError(f"target_windows: a window of {w.sat_id!r} names no task")
        for w in self.sunlit:
            if w.station_id is not None or w.task_id is not None:
                raise ValueError(f"sunlit: a window of {w.sat_id!r} names a station or task")


@dataclass(frozen=True, slots=True)
class Placement:
    """A task placed: on ``sat_id`` (via ``station_id``'s antenna ``antenna`` for a downlink)
    from ``start_utc`` to ``end_utc``; ``energy_wh`` drawn in all (mode load + the task's own),
    ``memory_mb`` signed (+ taken at the start, - freed at the end). ``frozen``: kept from the
    previous plan because it runs or starts inside its freeze window."""

    task_id: str
    sat_id: str
    start_utc: datetime
    end_utc: datetime
    station_id: str | None = None
    antenna: int | None = None
    energy_wh: float = 0.0
    memory_mb: float = 0.0
    frozen: bool = False

    @property
    def duration_s(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds()


@dataclass(frozen=True, slots=True)
class Unplaced:
    """A task left out, and why (``reason`` from ``UNPLACED_REASONS``, ``detail`` for people)."""

    task_id: str
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What a re-plan did to one task compared with the previous plan, and why."""

    task_id: str
    change: ChangeKind
    cause: str  # the re-plan's cause ("task_added", "station_down", ...), as the caller named it
    detail: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The plan: placements sorted by start, unplaced tasks with reasons. ``value`` is the sum
    of the placed tasks' priorities (the objective); ``changes`` compares with ``previous``."""

    now_utc: datetime
    horizon_s: float
    placements: tuple[Placement, ...]
    unplaced: tuple[Unplaced, ...]
    value: int
    solve_ms: float
    cause: str = "initial"
    changes: tuple[PlanChange, ...] = ()
    stats: Mapping[str, float] = field(default_factory=dict)  # iterations, greedy value, ...
    # Opaque: what a re-plan from this plan may reuse (the windows grouped, while the new
    # problem holds the very same window tuples). Not part of the plan's value or equality.
    reuse: object = field(default=None, repr=False, compare=False)

    def placement(self, task_id: str) -> Placement | None:
        for p in self.placements:
            if p.task_id == task_id:
                return p
        return None


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in a plan, found by ``validate``."""

    kind: ViolationKind
    task_ids: tuple[str, ...]
    detail: str
