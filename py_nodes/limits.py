"""Limits and the alarm state they give a satellite's parameters: pure (no I/O, no clock).

A ``Limit`` has a warning and a critical range; a value is within a range when
``low <= value < high`` (a missing bound is open), so ``energy_pct < 10`` and "memory at 100 %
of capacity" both read naturally. The critical range is the wider one. ``hysteresis`` (in the
parameter's unit) is how far back inside a range a value must come to leave the level it is at,
so an alarm does not flap around a threshold; ``persistence`` is how many samples in a row must
be at a higher level before it is raised (coming back down is immediate).

``step`` moves one ``Watch`` (a satellite's parameter) by one sample; ``LimitEngine`` holds the
limits (a satellite's own override the fleet's) and the watches of every satellite, and turns
telemetry samples into ``Change``s for the alarm repository (``py_nodes.db.alarms``). Samples
are judged in time order: one not newer than the last judged (a batch sent again) is ignored.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from py_nodes.vocabulary import LIMIT_PARAMETERS

__all__ = [
    "LEVELS",
    "Change",
    "Limit",
    "LimitEngine",
    "LimitError",
    "Side",
    "Watch",
    "alarm_kind",
    "beyond",
    "classify",
    "step",
]

Side = Literal["low", "high"]
LEVELS: Final = ("normal", "warning", "critical")  # index = level
MAX_PERSISTENCE: Final = 3600
# Kinds that existed before limits were data keep their names (dashboards and scripts use them).
_LEGACY_KINDS: Final[Mapping[tuple[str, Side], str]] = {
    ("energy_pct", "low"): "low_energy",
    ("memory_used_pct", "high"): "memory_full",
}
_UNITS: Final[Mapping[str, str]] = {"energy_pct": " %", "memory_used_pct": " %", "memory_used_mb": " MB", "alt_km": " km"}


def alarm_kind(parameter: str, side: Side) -> str:
    """The alarm a parameter raises on one side of its limits (``low_energy``, ``alt_km_high``)."""
    return _LEGACY_KINDS.get((parameter, side), f"{parameter}_{side}")


class LimitError(ValueError):
    """A limit that makes no sense: ``field`` names the bad part (as the HTTP API names it)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Limit:
    parameter: str
    warning_low: float | None = None
    warning_high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None
    hysteresis: float = 0.0
    persistence: int = 1  # samples
    latched: bool = False

    def check(self) -> Limit:
        """This limit if it makes sense, else LimitError naming the first bad field."""
        if self.parameter not in LIMIT_PARAMETERS:
            raise LimitError("parameter", f"{self.parameter!r:.40} is not one of {', '.join(LIMIT_PARAMETERS)}")
        bounds = {
            "warning_low": self.warning_low, "warning_high": self.warning_high,
            "critical_low": self.critical_low, "critical_high": self.critical_high,
        }  # fmt: skip
        for name, value in bounds.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
                raise LimitError(name, f"expected a finite number or null, got {value!r:.40}")
        if all(v is None for v in bounds.values()):
            raise LimitError("warning_low", "a limit needs at least one bound (warning_low, warning_high, critical_low, critical_high)")
        _ordered("warning_low", self.warning_low, "warning_high", self.warning_high, strict=True)
        _ordered("critical_low", self.critical_low, "critical_high", self.critical_high, strict=True)
        _ordered("critical_low", self.critical_low, "warning_low", self.warning_low, strict=False)
        _ordered("warning_high", self.warning_high, "critical_high", self.critical_high, strict=False)
        if isinstance(self.hysteresis, bool) or not isinstance(self.hysteresis, int | float):
            raise LimitError("hysteresis", f"expected a number, got {self.hysteresis!r:.40}")
        if not (math.isfinite(self.hysteresis) and self.hysteresis >= 0):
            raise LimitError("hysteresis", f"must be a finite number >= 0, got {self.hysteresis!r:.40}")
        for low, high in ((self.warning_low, self.warning_high), (self.critical_low, self.critical_high)):
            if low is not None and high is not None and self.hysteresis >= high - low:
                raise LimitError("hysteresis", f"{self.hysteresis:g} must be smaller than the range it applies to ({low:g} to {high:g})")
        if type(self.persistence) is not int or not 1 <= self.persistence <= MAX_PERSISTENCE:
            raise LimitError("persistence", f"must be an integer of samples in 1..{MAX_PERSISTENCE}, got {self.persistence!r:.40}")
        if type(self.latched) is not bool:
            raise LimitError("latched", f"expected true or false, got {self.latched!r:.40}")
        return self


def _ordered(low_name: str, low: float | None, high_name: str, high: float | None, *, strict: bool) -> None:
    if low is None or high is None:
        return
    if low > high or (strict and low == high):
        relation = "below" if strict else "at most"
        raise LimitError(low_name, f"{low:g} must be {relation} {high_name} ({high:g})")


@dataclass(frozen=True, slots=True)
class Watch:
    """A parameter's alarm state: its level (0 normal, 1 warning, 2 critical), on which side,
    how many samples in a row asked for a higher level, and the time of the last sample."""

    level: int = 0
    side: Side | None = None
    pending: int = 0
    last_ms: int = -1


def classify(limit: Limit, value: float, level: int = 0, side: Side | None = None) -> tuple[int, Side | None]:
    """The level and side of ``value``; the thresholds of the level it is at (and below) on its
    side are moved back by the hysteresis: leaving a level takes a clear return."""
    h = limit.hysteresis
    for lvl, low, high in ((2, limit.critical_low, limit.critical_high), (1, limit.warning_low, limit.warning_high)):
        held = level >= lvl
        if low is not None and value < low + (h if held and side == "low" else 0.0):
            return lvl, "low"
        if high is not None and value >= high - (h if held and side == "high" else 0.0):
            return lvl, "high"
    return 0, None


@dataclass(frozen=True, slots=True)
class Change:
    """What a sample did to an alarm: ``raised`` (at ``severity``), ``escalated`` (to it), or
    ``returned`` (the value is back within limits)."""

    transition: Literal["raised", "escalated", "returned"]
    kind: str
    severity: Literal["warning", "critical"]
    value: float
    message: str
    latched: bool = False
    satellite_id: str = ""


def step(
    parameter: str, limit: Limit | None, watch: Watch, value: float | None, at_ms: int
) -> tuple[Watch, tuple[Change, ...]]:
    """``watch`` after one sample of ``parameter`` (``value`` at ``at_ms``) under ``limit``
    (None: no limit, so within limits), and the changes it made."""
    if at_ms <= watch.last_ms:
        return watch, ()  # seen already (or older): judged once
    if value is None or not math.isfinite(value):
        return replace(watch, last_ms=at_ms), ()  # nothing to judge (no position yet)
    level, side = (0, None) if limit is None else classify(limit, value, watch.level, watch.side)
    changes: tuple[Change, ...] = ()
    if watch.side is not None and (level == 0 or side != watch.side):
        message = f"{_describe(parameter, value)} is back within limits"
        changes = (Change("returned", alarm_kind(parameter, watch.side), _severity(watch.level), value, message),)
        watch = Watch(last_ms=watch.last_ms)  # normal again; a jump to the other side is raised below
    if level <= watch.level:  # no higher level: coming down is immediate (the alarm keeps its severity)
        return Watch(level=level, side=side, last_ms=at_ms), changes
    assert limit is not None and side is not None
    pending = watch.pending + 1
    if pending < limit.persistence:
        return replace(watch, pending=pending, last_ms=at_ms), changes
    threshold = _threshold(limit, level, side)
    relation = "below" if side == "low" else "at or above"
    message = f"{_describe(parameter, value)} is {relation} {threshold:g}{_UNITS.get(parameter, '')} ({LEVELS[level]} limit)"
    transition: Literal["raised", "escalated"] = "escalated" if watch.level else "raised"
    change = Change(transition, alarm_kind(parameter, side), _severity(level), value, message, limit.latched)
    return Watch(level=level, side=side, last_ms=at_ms), (*changes, change)


def beyond(limit: Limit, values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Where ``values`` are beyond a bound of ``limit`` for a watch at normal (``classify`` at
    level 0, all rows at once); NaN and the infinities never are (nothing to judge: ``step``)."""
    out = np.zeros(len(values), dtype=np.bool_)
    for low in (limit.warning_low, limit.critical_low):
        if low is not None:
            out |= values < low
    for high in (limit.warning_high, limit.critical_high):
        if high is not None:
            out |= values >= high
    return out & np.isfinite(values)


def _normal(watch: Watch | None) -> bool:
    return watch is None or (watch.level == 0 and watch.pending == 0 and watch.side is None)


def _severity(level: int) -> Literal["warning", "critical"]:
    return "critical" if level >= 2 else "warning"


def _threshold(limit: Limit, level: int, side: Side) -> float:
    if level >= 2:
        value = limit.critical_low if side == "low" else limit.critical_high
    else:
        value = limit.warning_low if side == "low" else limit.warning_high
    assert value is not None
    return value


def _describe(parameter: str, value: float) -> str:
    return f"{parameter.replace('_pct', '').replace('_mb', '').replace('_km', '').replace('_', ' ')} {value:.4g}{_UNITS.get(parameter, '')}"


class LimitEngine:
    """The limits in force and the watches of every satellite (one per parameter).

    ``set_limits`` replaces the table (the next sample is judged by it); ``seed`` says which
    alarms are already raised (from the database, when a store node starts), so that a watch
    starts at that level: a value found back within limits then clears it.
    """

    def __init__(self) -> None:
        self._fleet: dict[str, Limit] = {}
        self._own: dict[tuple[str, str], Limit] = {}
        self._watches: dict[tuple[str, str], Watch] = {}
        self._seed: dict[tuple[str, str], int] = {}  # (satellite, kind) -> level
        self._last_ms: dict[str, int] = {}  # satellite -> time of its last sample judged
        # Satellites sample_many judges one parameter at a time even when the fleet's limits
        # find nothing: a limit of their own, an alarm seeded, or a watch that is not normal.
        self._own_sats: frozenset[str] = frozenset()
        self._seeded_sats: frozenset[str] = frozenset()
        self._abnormal: set[str] = set()

    def set_limits(self, limits: Iterable[tuple[str | None, Limit]]) -> None:
        """Every limit as ``(satellite id or None for the fleet, limit)``."""
        self._fleet, self._own = {}, {}
        for sat_id, limit in limits:
            if sat_id is None:
                self._fleet[limit.parameter] = limit
            else:
                self._own[(sat_id, limit.parameter)] = limit
        self._own_sats = frozenset(sat_id for sat_id, _ in self._own)

    def seed(self, raised: Mapping[tuple[str, str], str]) -> None:
        """Alarms raised already, ``(satellite id, kind) -> severity``; forgets every watch."""
        self._seed = {key: 2 if severity == "critical" else 1 for key, severity in raised.items()}
        self._seeded_sats = frozenset(sat_id for sat_id, _ in self._seed)
        self._watches.clear()
        self._last_ms.clear()
        self._abnormal.clear()

    def fleet_limit(self, parameter: str) -> Limit | None:
        return self._fleet.get(parameter)

    def limit_for(self, sat_id: str, parameter: str) -> Limit | None:
        return self._own.get((sat_id, parameter)) or self._fleet.get(parameter)

    def forget(self, sat_id: str) -> None:
        for parameter in LIMIT_PARAMETERS:
            self._watches.pop((sat_id, parameter), None)
        self._last_ms.pop(sat_id, None)
        self._abnormal.discard(sat_id)

    def sample(self, sat_id: str, at_ms: int, values: Mapping[str, float | None]) -> list[Change]:
        """Judge one telemetry sample (``values`` by parameter; a missing one is not judged).

        Only a sample that can change something is judged: a value beyond the fleet's limits,
        or a satellite with something going on (a watch not normal, a limit of its own, an
        alarm seeded); the others leave every watch as it is (at 100,000 samples a second, a
        watch per parameter and sample was most of the cost). A sample at or before the last
        one judged of its satellite is not judged again (a batch delivered twice)."""
        if not (self.going_on(sat_id) or any(self._beyond_fleet(p, v) for p, v in values.items())):
            return []
        if at_ms <= self._last_ms.get(sat_id, -1):
            return []
        self._last_ms[sat_id] = at_ms
        return self._judge(sat_id, at_ms, values)

    def sample_many(
        self, sat_ids: Sequence[str], at_ms: Sequence[int], values: Mapping[str, npt.NDArray[np.float64]]
    ) -> list[Change]:
        """Judge a batch of samples: row ``i`` is ``sat_ids[i]`` at ``at_ms[i]`` with
        ``values[parameter][i]`` (NaN: missing). The same as ``sample`` for each row in order,
        at a cost per row judged rather than per row: which rows the fleet's limits flag is
        found by column, and a satellite is looked up only while some have something going on
        (none, in a fleet within limits, is the common case)."""
        flagged = np.zeros(len(sat_ids), dtype=np.bool_)
        for parameter, column in values.items():
            limit = self._fleet.get(parameter)
            if limit is not None:
                flagged |= beyond(limit, column)
        todo = np.flatnonzero(flagged).tolist()
        if self.anything_going_on():
            todo = sorted({*todo, *(i for i, sat_id in enumerate(sat_ids) if self.going_on(sat_id))})
        changes: list[Change] = []
        rows_of: dict[str, list[int]] | None = None  # built when a satellite starts something mid-batch
        done = -1
        while todo:
            i = heapq.heappop(todo)
            if i <= done:
                continue  # queued twice
            done = i
            sat_id = sat_ids[i]
            was_going_on = self.going_on(sat_id)
            if not (flagged[i] or was_going_on) or at_ms[i] <= self._last_ms.get(sat_id, -1):
                continue
            self._last_ms[sat_id] = at_ms[i]
            changes += self._judge(sat_id, at_ms[i], {p: float(column[i]) for p, column in values.items()})
            if not was_going_on and sat_id in self._abnormal:  # its later rows are judged too
                if rows_of is None:
                    rows_of = {}
                    for j, other in enumerate(sat_ids):
                        rows_of.setdefault(other, []).append(j)
                for j in rows_of[sat_id]:
                    if j > i:
                        heapq.heappush(todo, j)
        return changes

    def anything_going_on(self) -> bool:
        """Whether any satellite is ``going_on`` (if not, no sample needs a lookup by its id)."""
        return bool(self._abnormal or self._own_sats or self._seeded_sats)

    def going_on(self, sat_id: str) -> bool:
        """Whether every sample of ``sat_id`` is judged: a watch not normal, a limit of its
        own, or an alarm seeded."""
        return sat_id in self._abnormal or sat_id in self._own_sats or sat_id in self._seeded_sats

    def _beyond_fleet(self, parameter: str, value: float | None) -> bool:
        limit = self._fleet.get(parameter)
        return limit is not None and value is not None and math.isfinite(value) and classify(limit, value)[0] != 0

    def _judge(self, sat_id: str, at_ms: int, values: Mapping[str, float | None]) -> list[Change]:
        changes: list[Change] = []
        abnormal = False
        for parameter, value in values.items():
            key = (sat_id, parameter)
            watch = self._watches.get(key)
            if watch is None:
                watch = self._watches[key] = self._seeded(sat_id, parameter)
            limit = self._own.get(key) or self._fleet.get(parameter)
            if _normal(watch) and (value is None or limit is None or not math.isfinite(value) or classify(limit, value)[0] == 0):
                continue  # normal, and still within limits
            watch, made = step(parameter, limit, watch, value, at_ms)
            self._watches[key] = watch
            abnormal = abnormal or not _normal(watch)
            changes += [replace(c, satellite_id=sat_id) for c in made]
        if abnormal:
            self._abnormal.add(sat_id)
        elif sat_id in self._abnormal and all(_normal(self._watches.get((sat_id, p))) for p in LIMIT_PARAMETERS):
            self._abnormal.discard(sat_id)
        return changes

    def _seeded(self, sat_id: str, parameter: str) -> Watch:
        sides: tuple[Side, Side] = ("low", "high")
        for side in sides:
            level = self._seed.get((sat_id, alarm_kind(parameter, side)))
            if level:
                return Watch(level=level, side=side)
        return Watch()
