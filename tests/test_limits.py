"""Limits and the alarm lifecycle, pure (py_nodes.limits, py_nodes.alarm_states): examples for
each rule, then properties over random sample streams and operator actions (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from py_nodes import alarm_states
from py_nodes.alarm_states import AlarmStateError, Status
from py_nodes.limits import (
    Change,
    Limit,
    LimitEngine,
    LimitError,
    Watch,
    alarm_kind,
    classify,
    step,
)

ENERGY = Limit("energy_pct", warning_low=20, critical_low=10, hysteresis=2, persistence=1, latched=True)


def run(limit: Limit | None, values: list[float], parameter: str = "energy_pct") -> tuple[Watch, list[Change]]:
    watch, changes = Watch(), []
    for i, value in enumerate(values):
        watch, made = step(parameter, limit, watch, value, i)
        changes += made
    return watch, changes


# -- limits ------------------------------------------------------------------------------------


def test_a_value_is_in_limits_from_low_up_to_below_high() -> None:
    memory = Limit("memory_used_pct", warning_high=100)
    assert classify(memory, 99.99) == (0, None) and classify(memory, 100.0) == (1, "high")
    assert classify(ENERGY, 10.0) == (1, "low") and classify(ENERGY, 9.99) == (2, "low")
    assert classify(ENERGY, 20.0) == (0, None)


def test_hysteresis_holds_a_level_until_the_value_is_clearly_back() -> None:
    assert classify(ENERGY, 21.0, level=1, side="low") == (1, "low")  # 20 + 2 not reached
    assert classify(ENERGY, 22.0, level=1, side="low") == (0, None)
    assert classify(ENERGY, 11.0, level=2, side="low") == (2, "low")
    assert classify(ENERGY, 12.0, level=2, side="low") == (1, "low")
    _, changes = run(ENERGY, [30, 19, 21, 21.9, 22])
    assert [(c.transition, c.kind, c.severity) for c in changes] == [
        ("raised", "low_energy", "warning"), ("returned", "low_energy", "warning"),
    ]  # fmt: skip
    assert changes[0].message == "energy 19 % is below 20 % (warning limit)" and changes[0].latched


def test_persistence_needs_that_many_samples_in_a_row() -> None:
    limit = replace(ENERGY, persistence=3)
    _, changes = run(limit, [15, 15, 30, 15, 15])
    assert changes == []
    _, changes = run(limit, [15, 15, 15])
    assert [c.transition for c in changes] == ["raised"] and changes[0].value == 15


def test_escalation_and_a_jump_to_the_other_side() -> None:
    both = Limit("alt_km", warning_low=400, warning_high=600, critical_low=300, critical_high=700)
    _, changes = run(both, [500, 350, 250, 800], "alt_km")
    assert [(c.transition, c.kind, c.severity) for c in changes] == [
        ("raised", "alt_km_low", "warning"), ("escalated", "alt_km_low", "critical"),
        ("returned", "alt_km_low", "critical"), ("raised", "alt_km_high", "critical"),
    ]  # fmt: skip


def test_samples_seen_already_are_judged_once_and_no_limit_means_normal() -> None:
    watch, [raised] = step("energy_pct", ENERGY, Watch(), 5.0, 10)
    assert raised.transition == "raised"
    assert step("energy_pct", ENERGY, watch, 50.0, 10) == (watch, ())  # the same sample again
    assert step("energy_pct", ENERGY, watch, 50.0, 9) == (watch, ())
    _, [back] = step("energy_pct", None, watch, 5.0, 11)  # the limit was deleted
    assert back.transition == "returned" and back.kind == "low_energy"
    assert step("alt_km", ENERGY, Watch(), None, 1)[1] == ()


def test_the_engine_prefers_a_satellites_own_limit_and_starts_from_raised_alarms() -> None:
    engine = LimitEngine()
    engine.set_limits([(None, ENERGY), ("sat-2", replace(ENERGY, warning_low=50, critical_low=40))])
    assert engine.sample("sat-1", 1, {"energy_pct": 45.0}) == []
    [own] = engine.sample("sat-2", 1, {"energy_pct": 45.0})
    assert (own.satellite_id, own.kind, own.severity) == ("sat-2", "low_energy", "warning")
    engine.seed({("sat-3", "low_energy"): "critical"})  # raised before a restart
    [back] = engine.sample("sat-3", 5, {"energy_pct": 80.0})
    assert (back.transition, back.satellite_id, back.severity) == ("returned", "sat-3", "critical")
    assert engine.sample("sat-3", 6, {"energy_pct": 80.0}) == []


_BATCH_SATS = ("s-0", "s-1", "s-2", "own", "seeded")
_BATCH_VALUE = st.one_of(st.floats(0, 100), st.just(float("nan")), st.just(float("inf")))


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from(_BATCH_SATS), st.integers(0, 40), _BATCH_VALUE, _BATCH_VALUE), max_size=30),
        max_size=8,
    ),
    persistence=st.integers(1, 3),
)
def test_a_batch_is_judged_exactly_as_its_samples_one_by_one(
    batches: list[list[tuple[str, int, float, float]]], persistence: int
) -> None:
    """sample_many's shortcut (rows the fleet's limits find within range, of satellites with
    nothing going on) must change nothing: the same changes, in the same order, and the same
    watches as sample() row by row; with batches sent again and times out of order."""
    import numpy as np

    fleet = replace(ENERGY, persistence=persistence)
    memory = Limit("memory_used_pct", warning_high=80, critical_high=95, hysteresis=3, persistence=persistence)
    own = replace(ENERGY, warning_low=60, critical_low=50)
    one_by_one, batched = LimitEngine(), LimitEngine()
    for engine in (one_by_one, batched):
        engine.set_limits([(None, fleet), (None, memory), ("own", own)])
        engine.seed({("seeded", "low_energy"): "warning"})
    for batch in batches + batches[:2]:  # the first two again: judged once
        expected: list[Change] = []
        for sat_id, at_ms, energy, memory_pct in batch:
            expected += one_by_one.sample(sat_id, at_ms, {"energy_pct": energy, "memory_used_pct": memory_pct})
        got = batched.sample_many(
            [b[0] for b in batch], [b[1] for b in batch],
            {"energy_pct": np.array([b[2] for b in batch]), "memory_used_pct": np.array([b[3] for b in batch])},
        )  # fmt: skip
        assert got == expected
    for sat_id in _BATCH_SATS:
        for parameter in ("energy_pct", "memory_used_pct"):
            normal = Watch()
            assert batched._watches.get((sat_id, parameter), normal) == one_by_one._watches.get((sat_id, parameter), normal)


def test_a_batch_judges_only_rows_out_of_range_or_of_satellites_with_something_going_on() -> None:
    """The shortcut is taken: a batch of 1,000 rows within limits makes no watch at all."""
    import numpy as np

    engine = LimitEngine()
    engine.set_limits([(None, ENERGY)])
    ids = [f"s-{i}" for i in range(1000)]
    assert engine.sample_many(ids, [1] * 1000, {"energy_pct": np.full(1000, 50.0)}) == []
    assert engine._watches == {}
    energy = np.full(1000, 50.0)
    energy[7] = 5.0
    [raised] = engine.sample_many(ids, [2] * 1000, {"energy_pct": energy})
    assert (raised.satellite_id, raised.severity) == ("s-7", "critical")
    assert set(engine._watches) == {("s-7", "energy_pct")}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"parameter": "temperature"}, "parameter", "is not one of"),
        ({"warning_low": 30.0, "warning_high": 20.0}, "warning_low", "must be below warning_high"),
        ({"critical_low": 25.0}, "critical_low", "must be at most warning_low"),
        ({"persistence": -1}, "persistence", "1..3600"),
        ({"persistence": 1.5}, "persistence", "integer"),
        ({"hysteresis": -0.5}, "hysteresis", ">= 0"),
        ({"warning_low": None, "critical_low": None}, "warning_low", "at least one bound"),
        ({"warning_low": float("nan")}, "warning_low", "finite"),
    ],
)
def test_a_limit_that_makes_no_sense_names_its_bad_field(changes: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(LimitError) as info:
        replace(ENERGY, **changes).check()  # type: ignore[arg-type]
    assert info.value.field == field and words in info.value.problem


# -- properties of the limit watch -------------------------------------------------------------

values = st.floats(min_value=-50, max_value=150, allow_nan=False)
limits = st.builds(
    lambda warn, width, h, n: Limit("energy_pct", warning_low=warn, critical_low=warn - width, hysteresis=h, persistence=n),
    st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=50), st.floats(min_value=0, max_value=5),
    st.integers(min_value=1, max_value=5),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(limits, st.lists(values, max_size=60))
def test_raised_and_returned_alternate_and_respect_persistence_and_hysteresis(limit: Limit, samples: list[float]) -> None:
    watch, raised = Watch(), False
    for i, value in enumerate(samples):
        before = watch
        watch, changes = step("energy_pct", limit, watch, value, i)
        for change in changes:
            if change.transition == "raised":
                assert not raised
                raised = True
                # persistence: the last N samples were all below the warning limit
                assert all(v < limit.warning_low for v in samples[i + 1 - limit.persistence : i + 1])  # type: ignore[operator]
                assert i + 1 >= limit.persistence
            elif change.transition == "returned":
                assert raised
                raised = False
                assert before.level >= 1
                assert value >= limit.warning_low + limit.hysteresis  # type: ignore[operator]
            else:
                assert raised and change.severity == "critical"
        assert (watch.level > 0) == raised


@settings(max_examples=200, deadline=None)
@given(limits, st.lists(values, max_size=40))
def test_a_stream_sent_twice_changes_nothing_the_second_time(limit: Limit, samples: list[float]) -> None:
    watch = Watch()
    for i, value in enumerate(samples):
        watch, _ = step("energy_pct", limit, watch, value, i)
    for i, value in enumerate(samples):
        assert step("energy_pct", limit, watch, value, i) == (watch, ())


@settings(max_examples=300, deadline=None)
@given(limits, st.lists(values, max_size=60))
def test_the_engine_makes_the_changes_step_makes_and_judges_a_sample_once(limit: Limit, samples: list[float]) -> None:
    """``LimitEngine.sample`` leaves a normal watch within limits alone (its fast path): what it
    reports is what ``step`` reports for the same samples; a sample sent again changes nothing."""
    engine = LimitEngine()
    engine.set_limits([(None, limit)])
    watch = Watch()
    for i, value in enumerate(samples):
        watch, expected = step("energy_pct", limit, watch, value, i)
        got = engine.sample("s", i, {"energy_pct": value})
        assert [(c.transition, c.severity, c.value, c.message) for c in got] == [
            (c.transition, c.severity, c.value, c.message) for c in expected
        ]
        assert all(c.satellite_id == "s" for c in got)
        assert engine.sample("s", i, {"energy_pct": value}) == []


# -- the alarm lifecycle ---------------------------------------------------------------------------


def test_acknowledge_then_return_clears_and_latched_return_waits_for_ack() -> None:
    status, made = alarm_states.raised(None, "warning", latched=False)
    assert made == ("raised",) and status == Status("unacknowledged", True, "warning")
    acked, made = alarm_states.acknowledged(status)
    assert made == ("acknowledged",) and acked.state == "acknowledged"
    assert alarm_states.acknowledged(acked) == (acked, ())  # idempotent
    assert alarm_states.returned(acked)[0].state == "cleared"
    assert alarm_states.returned(status)[0].state == "cleared"  # not latched: cleared at once
    latched, _ = alarm_states.raised(None, "critical", latched=True)
    back, made = alarm_states.returned(latched)
    assert made == ("returned",) and back == Status("unacknowledged", False, "critical", True)
    assert alarm_states.acknowledged(back) == (replace(back, state="cleared"), ("acknowledged", "cleared"))


def test_escalation_asks_for_a_new_acknowledgement_and_shelving_hides_until_expiry() -> None:
    status, _ = alarm_states.raised(None, "warning", latched=False)
    acked, _ = alarm_states.acknowledged(status)
    escalated, made = alarm_states.raised(acked, "critical", latched=False)
    assert made == ("escalated",) and escalated.state == "unacknowledged" and escalated.severity == "critical"
    assert alarm_states.raised(escalated, "warning", latched=False) == (escalated, ())
    shelved, _ = alarm_states.shelved(escalated)
    with pytest.raises(AlarmStateError, match="shelved"):
        alarm_states.acknowledged(shelved)
    assert alarm_states.unshelved(shelved) == (escalated, ("unshelved",))  # still active: back
    gone, made = alarm_states.returned(shelved)
    assert gone.state == "cleared" and made == ("returned", "cleared")
    with pytest.raises(AlarmStateError, match="cleared"):
        alarm_states.shelved(gone)


actions = st.lists(st.sampled_from(["raise_w", "raise_c", "return", "ack", "shelve", "unshelve", "clear"]), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), actions)
def test_lifecycle_invariants(latched: bool, script: list[str]) -> None:
    status: Status | None = None
    for action in script:
        before = status
        try:
            if action.startswith("raise"):
                status, made = alarm_states.raised(status, "warning" if action == "raise_w" else "critical", latched)
            elif status is None:
                continue
            else:
                fn = {"return": alarm_states.returned, "ack": alarm_states.acknowledged, "shelve": alarm_states.shelved,
                      "unshelve": alarm_states.unshelved, "clear": alarm_states.cleared}[action]  # fmt: skip
                status, made = fn(status)
        except AlarmStateError:
            continue
        assert status is not None
        # cleared is final: only a new raise leaves it (as a new alarm)
        if before is not None and before.state == "cleared" and not action.startswith("raise"):
            assert status == before and made == ()
        # a cleared alarm's condition never holds; an acknowledged one's always does
        assert status.state != "cleared" or not status.active
        assert status.state != "acknowledged" or status.active
        # a condition that returns unacknowledged stays only when latched
        if action == "return" and before is not None and before.state == "unacknowledged" and before.active:
            assert status.state == ("unacknowledged" if latched else "cleared")
        if made:
            assert set(made) <= {"raised", "escalated", "returned", "acknowledged", "shelved", "unshelved", "cleared"}


def test_legacy_kind_names_are_kept() -> None:
    assert alarm_kind("energy_pct", "low") == "low_energy" and alarm_kind("memory_used_pct", "high") == "memory_full"
    assert alarm_kind("alt_km", "low") == "alt_km_low"

