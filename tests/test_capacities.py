"""Memory capacities and the ``memory_used_pct`` judged from them: a row's percentage is left out
(NaN) only where no limit could judge it, so the alarms come out exactly as with every row's
percentage computed; a capacity not known is NaN and asked for."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from py_nodes.capacities import Capacities
from py_nodes.limits import Limit, LimitEngine, beyond

SATS = [f"c-{i}" for i in range(6)]
MEMORY = Limit("memory_used_pct", warning_high=80, critical_high=95, hysteresis=3)


def exact_pct(capacity_mb: dict[str, float], sat_ids: list[str], memory_used_mb: np.ndarray) -> np.ndarray:
    return np.array([100.0 * m / capacity_mb[s] for s, m in zip(sat_ids, memory_used_mb.tolist(), strict=True)])


@settings(max_examples=300, deadline=None)
@given(
    capacity_mb=st.lists(st.floats(0.5, 5000), min_size=len(SATS), max_size=len(SATS)),
    rows=st.lists(st.tuples(st.sampled_from(SATS), st.floats(0, 5000)), max_size=40),
    low=st.none() | st.floats(1, 40),
    high=st.none() | st.floats(50, 120),
    going_on=st.sets(st.sampled_from(SATS)),
)
def test_a_percentage_is_left_out_only_where_no_limit_judges_it(
    capacity_mb: list[float], rows: list[tuple[str, float]], low: float | None, high: float | None, going_on: set[str]
) -> None:
    capacities = Capacities()
    by_sat = dict(zip(SATS, capacity_mb, strict=True))
    for sat_id, mb in by_sat.items():
        capacities.note(sat_id, mb)
    limit = None if low is None and high is None else Limit("memory_used_pct", warning_low=low, warning_high=high)
    sat_ids = [r[0] for r in rows]
    memory = np.array([r[1] for r in rows], dtype=np.float64)
    got = capacities.memory_used_pct(sat_ids, memory, limit, going_on.__contains__)
    exact = exact_pct(by_sat, sat_ids, memory)
    judged = np.zeros(len(rows), dtype=np.bool_) if limit is None else beyond(limit, exact)
    for i, sat_id in enumerate(sat_ids):
        if judged[i] or sat_id in going_on:
            assert got[i] == exact[i], (i, got[i], exact[i])  # bit for bit
        else:
            assert math.isnan(got[i]) or got[i] == exact[i]
    assert capacities.unknown == set()


@settings(max_examples=200, deadline=None)
@given(
    capacity_mb=st.lists(st.sampled_from([10.0, 100.0, 1000.0, 1024.0]), min_size=len(SATS), max_size=len(SATS)),
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from(SATS), st.integers(0, 30), st.floats(0, 1100)), max_size=20), max_size=6
    ),
)
def test_alarms_are_the_same_as_with_every_percentage_computed(
    capacity_mb: list[float], batches: list[list[tuple[str, int, float]]]
) -> None:
    by_sat = dict(zip(SATS, capacity_mb, strict=True))
    capacities = Capacities()
    capacities.replace_all(by_sat)
    exact_engine, bounded_engine = LimitEngine(), LimitEngine()
    for engine in (exact_engine, bounded_engine):
        engine.set_limits([(None, MEMORY), ("c-5", Limit("memory_used_pct", warning_low=5, warning_high=50))])
    for batch in batches:
        sat_ids = [b[0] for b in batch]
        at_ms = [b[1] for b in batch]
        memory = np.array([b[2] for b in batch], dtype=np.float64)
        want = exact_engine.sample_many(sat_ids, at_ms, {"memory_used_pct": exact_pct(by_sat, sat_ids, memory)})
        going_on = bounded_engine.going_on if bounded_engine.anything_going_on() else None
        pct = capacities.memory_used_pct(sat_ids, memory, bounded_engine.fleet_limit("memory_used_pct"), going_on)
        assert bounded_engine.sample_many(sat_ids, at_ms, {"memory_used_pct": pct}) == want


def test_only_the_rows_a_limit_could_judge_are_looked_up() -> None:
    """An id whose capacity is not known is asked for only when its row is looked up: here the
    row near its fleet limit by the capacities' bounds (100 and 200 MB), not the one far below."""
    capacities = Capacities()
    capacities.note("small", 100.0)
    capacities.note("big", 200.0)
    capacities.note("bad", float("nan"))  # off the contract: ignored
    capacities.note("zero", 0.0)
    assert len(capacities) == 2 and "bad" not in capacities and (capacities.min_mb, capacities.max_mb) == (100.0, 200.0)
    ids = ["small", "big", "new-low", "new-high"]
    pct = capacities.memory_used_pct(ids, np.array([90.0, 190.0, 10.0, 90.0]), MEMORY)
    assert pct[0] == 90.0 and pct[1] == 95.0 and math.isnan(pct[2]) and math.isnan(pct[3])
    assert capacities.unknown == {"new-high"}
    # No fleet limit: nothing looked up but the satellites judged anyway.
    capacities.unknown.clear()
    pct = capacities.memory_used_pct(ids, np.array([90.0, 190.0, 10.0, 90.0]), None, {"big", "new-low"}.__contains__)
    assert math.isnan(pct[0]) and pct[1] == 95.0 and math.isnan(pct[2]) and math.isnan(pct[3])
    assert capacities.unknown == {"new-low"}
    # Every capacity replaced: the bounds are those of the new ones.
    capacities.replace_all({"only": 50.0})
    assert (capacities.min_mb, capacities.max_mb, len(capacities)) == (50.0, 50.0, 1)
