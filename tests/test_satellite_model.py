"""The satellite model: modes table, tick, commands, sunlight; exact values and properties."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from py_nodes.erldist import Atom
from py_nodes.satellite import (
    DONE,
    TRANSITIONS,
    Alarm,
    Failed,
    Mode,
    ModeChanged,
    SatState,
    apply_command,
    check_transition,
    in_sunlight,
    tick,
)
from py_nodes.satellite.model import MAX_APPLIED
from py_nodes.satellite.sunlight import ORBIT_PERIOD_S, orbit_phase_s

S, SB, N, SC, DL, M = Mode.SAFE, Mode.STANDBY, Mode.NOMINAL, Mode.SCIENCE, Mode.DOWNLINK, Mode.MAINTENANCE
T0_MS = 1_700_000_000_000


def sat(**fields: Any) -> SatState:
    base = SatState(
        id=b"sat-1",
        name=b"Sat One",
        mode=N,
        energy_pct=80.0,
        memory_used_mb=10.0,
        memory_capacity_mb=100.0,
        tle=None,
        applied=(),
        updated_at=T0_MS,
    )
    return dataclasses.replace(base, **fields)


def approx(x: float) -> Any:
    return pytest.approx(x, abs=1e-9)


# -- the transition table ---------------------------------------------------------------------


def test_table_is_the_contract_table() -> None:
    assert dict(TRANSITIONS) == {
        S: {SB, M},
        SB: {N, M, S},
        N: {SC, DL, SB, M, S},
        SC: {N, DL, S},
        DL: {N, SC, S},
        M: {SB, S},
    }
    assert all(S in TRANSITIONS[mode] for mode in Mode if mode is not S)  # safe from anywhere


def test_check_transition_names_both_modes() -> None:
    assert check_transition(N, SC) is None
    assert check_transition(SC, SC) is None  # staying put is not a transition
    assert check_transition(SC, M) == ("invalid_transition", SC, M)
    assert check_transition(S, N) == ("invalid_transition", S, N)


# -- tick: energy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "drain_pct_per_s"),
    [(S, 0.01), (SB, 0.02), (N, 0.05), (SC, 0.12), (DL, 0.10), (M, 0.04)],
)
def test_energy_drains_by_mode_and_charges_in_sunlight(mode: Mode, drain_pct_per_s: float) -> None:
    dark, _ = tick(sat(mode=mode), 10.0, False, T0_MS + 10_000)
    lit, _ = tick(sat(mode=mode), 10.0, True, T0_MS + 10_000)
    assert dark.energy_pct == approx(80.0 - 10 * drain_pct_per_s)
    assert lit.energy_pct == approx(80.0 + 10 * (0.15 - drain_pct_per_s))
    assert dark.mode is mode and dark.updated_at == T0_MS + 10_000


def test_energy_is_clamped() -> None:
    full, _ = tick(sat(energy_pct=99.9), 100.0, True, T0_MS)
    assert full.energy_pct == 100.0
    empty, _ = tick(sat(mode=S, energy_pct=0.5), 100.0, False, T0_MS)
    assert empty.energy_pct == 0.0


def test_nominal_example_values() -> None:
    state, events = tick(sat(), 1.0, False, T0_MS + 1000)
    assert (state.energy_pct, state.memory_used_mb, events) == (approx(79.95), 10.0, ())
    assert (state.id, state.name, state.memory_capacity_mb, state.tle, state.applied) == (b"sat-1", b"Sat One", 100.0, None, ())


# -- tick: memory -----------------------------------------------------------------------------


def test_science_fills_memory_up_to_capacity() -> None:
    state, events = tick(sat(mode=SC), 10.0, True, T0_MS)
    assert state.memory_used_mb == approx(15.0) and events == ()
    state, events = tick(sat(mode=SC, memory_used_mb=99.0), 10.0, True, T0_MS)
    assert state.memory_used_mb == 100.0 and events == ()  # memory_full: the ground's limits (py_nodes.limits)


def test_downlink_drains_memory_to_zero_and_other_modes_keep_it() -> None:
    state, _ = tick(sat(mode=DL, memory_used_mb=30.0), 10.0, True, T0_MS)
    assert state.memory_used_mb == approx(10.0)
    state, _ = tick(state, 10.0, True, T0_MS)
    assert state.memory_used_mb == 0.0
    for mode in (S, SB, N, M):
        kept, _ = tick(sat(mode=mode, memory_used_mb=30.0), 10.0, True, T0_MS)
        assert kept.memory_used_mb == 30.0


# -- tick: low energy -------------------------------------------------------------------------


def test_low_energy_forces_safe() -> None:
    state, events = tick(sat(mode=SC, energy_pct=10.05), 1.0, False, T0_MS)
    assert state.mode is S and state.energy_pct == approx(9.93)
    assert events == (ModeChanged(SC, S, "low_energy"),)  # the alarm: the ground's limits
    state, events = tick(state, 1.0, False, T0_MS)
    assert events == ()  # still low, already safe
    # Commanded out of safe while still low: forced back.
    state, outcome, _ = apply_command(state, b"c1", "set_mode", {"mode": Atom("standby")}, T0_MS)
    assert outcome == DONE and state.mode is SB
    state, events = tick(state, 1.0, False, T0_MS)
    assert state.mode is S and events == (ModeChanged(SB, S, "low_energy"),)
    # Recharged above the threshold, then low again: safe again.
    state, _ = tick(state, 10.0, True, T0_MS)
    assert state.energy_pct > 10.0
    state, _, _ = apply_command(state, b"c2", "set_mode", {"mode": Atom("standby")}, T0_MS)
    state, events = tick(state, 100.0, False, T0_MS)
    assert [type(e) for e in events] == [ModeChanged]


def test_state_placed_below_threshold_goes_safe_without_alarm() -> None:
    state, events = tick(sat(mode=N, energy_pct=5.0), 1.0, True, T0_MS)
    assert state.mode is S and events == (ModeChanged(N, S, "low_energy"),)


# -- commands ---------------------------------------------------------------------------------


def mode_args(name: str) -> dict[Atom, Atom]:
    return {Atom("mode"): Atom(name)}


def test_set_mode_applies_a_table_transition() -> None:
    state, outcome, events = apply_command(sat(), b"c1", "set_mode", mode_args("science"), T0_MS + 5)
    assert outcome == DONE and events == (ModeChanged(N, SC, "set_mode"),)
    assert state == sat(mode=SC, applied=(b"c1",), updated_at=T0_MS + 5)


def test_invalid_transition_changes_nothing_and_is_not_recorded() -> None:
    start = sat(mode=SC)
    state, outcome, events = apply_command(start, b"c1", "set_mode", mode_args("maintenance"), T0_MS + 5)
    assert outcome == Failed(("invalid_transition", SC, M)) and state is start and events == ()
    # The same id again is evaluated anew (it was not applied).
    state, outcome, _ = apply_command(sat(mode=N), b"c1", "set_mode", mode_args("maintenance"), T0_MS)
    assert outcome == DONE and state.mode is M


@pytest.mark.parametrize("args", [{}, {Atom("mode"): b"science"}, {Atom("mode"): Atom("warp")}, {Atom("mode"): 3}])
def test_set_mode_with_bad_args(args: dict[Any, Any]) -> None:
    state, outcome, events = apply_command(sat(), b"c1", "set_mode", args, T0_MS)
    assert outcome == Failed(("bad_args", "mode")) and state == sat() and events == ()


@pytest.mark.parametrize(
    ("start", "kind", "target"),
    [(N, "collect", SC), (N, "downlink", DL), (SC, "reboot", S), (M, "reboot", S), (SC, "noop", SC)],
)
def test_kinds_go_to_their_mode(start: Mode, kind: str, target: Mode) -> None:
    state, outcome, events = apply_command(sat(mode=start, energy_pct=42.0), b"c1", kind, {}, T0_MS)
    assert outcome == DONE and state.mode is target and state.applied == (b"c1",)
    assert state.energy_pct == 42.0 and state.memory_used_mb == 10.0  # reboot keeps them
    assert events == (() if start is target else (ModeChanged(start, target, kind),))


def test_collect_follows_the_table() -> None:
    _, outcome, _ = apply_command(sat(mode=S), b"c1", "collect", {}, T0_MS)
    assert outcome == Failed(("invalid_transition", S, SC))


def test_unknown_command() -> None:
    state, outcome, _ = apply_command(sat(), b"c1", Atom("warp"), {}, T0_MS)
    assert outcome == Failed(("unknown_command", "warp")) and state == sat()


def test_repeated_command_id_is_applied_once() -> None:
    state, _, _ = apply_command(sat(), b"c1", "collect", {}, T0_MS)
    state, _, _ = apply_command(state, b"c2", "set_mode", mode_args("nominal"), T0_MS)
    again, outcome, events = apply_command(state, b"c1", "collect", {}, T0_MS + 99)
    assert outcome == DONE and again is state and events == ()  # still nominal, nothing new


def test_applied_keeps_the_newest_256() -> None:
    state = sat()
    for n in range(MAX_APPLIED + 10):
        state, _, _ = apply_command(state, b"c%d" % n, "noop", {}, T0_MS)
    assert len(state.applied) == MAX_APPLIED
    assert state.applied[0] == b"c265" and state.applied[-1] == b"c10"
    state, _, _ = apply_command(state, b"c0", "noop", {}, T0_MS)  # forgotten: applied again
    assert state.applied[0] == b"c0"


# -- sunlight ---------------------------------------------------------------------------------


def test_sunlight_is_62_percent_of_a_5400_s_orbit() -> None:
    for sat_id in (b"sat-1", b"sat-2", b"x"):
        lit_s = sum(in_sunlight(sat_id, 1_700_000_000 + t) for t in range(5400))
        assert abs(lit_s - 3348) <= 1
        assert all(in_sunlight(sat_id, t) == in_sunlight(sat_id, t + ORBIT_PERIOD_S) for t in range(0, 5400, 7))


PHASE_SAT_1_S = 4593.691676063463


def test_sunlight_phase_is_stable_and_per_satellite() -> None:
    assert orbit_phase_s(b"sat-1") == pytest.approx(PHASE_SAT_1_S)  # crc32: the same in every run
    phases = {orbit_phase_s(b"sat-%d" % n) for n in range(100)}
    assert len(phases) == 100 and all(0 <= p < ORBIT_PERIOD_S for p in phases)


# -- properties -------------------------------------------------------------------------------

MODES = list(Mode)
KINDS = ["set_mode", "collect", "downlink", "reboot", "noop", "warp"]
ARGS = [mode_args(m.value) for m in Mode] + [{}, {Atom("mode"): b"safe"}, {Atom("mode"): Atom("warp")}]


@st.composite
def states(draw: st.DrawFn) -> SatState:
    capacity_mb = draw(st.floats(0.5, 5000.0))
    return sat(
        mode=draw(st.sampled_from(MODES)),
        energy_pct=draw(st.floats(0.0, 100.0)),
        memory_capacity_mb=capacity_mb,
        memory_used_mb=draw(st.floats(0.0, capacity_mb)),
    )


def assert_events_follow_the_table(before: SatState, after: SatState, events: tuple[Any, ...]) -> None:
    mode = before.mode
    for event in events:
        if isinstance(event, ModeChanged):
            assert event.from_mode is mode
            assert event.to_mode in TRANSITIONS[mode] or (event.to_mode is S and event.reason == "low_energy")
            mode = event.to_mode
    assert mode is after.mode  # every mode change is reported, none happens silently


class SatelliteMachine(RuleBasedStateMachine):
    """Random ticks and commands (ids from a small pool, so repeats happen)."""

    def __init__(self) -> None:
        super().__init__()
        self.state = sat()
        self.now_ms = T0_MS
        self.applied: list[bytes] = []  # reference model of the applied ids, newest first

    @rule(start=states())
    def replace_state(self, start: SatState) -> None:
        self.state = start
        self.applied = []

    @rule(dt_s=st.floats(0.0, 3600.0), sunlit=st.booleans())
    def tick(self, dt_s: float, sunlit: bool) -> None:
        self.now_ms += int(dt_s * 1000)
        before = self.state
        self.state, events = tick(before, dt_s, sunlit, self.now_ms)
        assert_events_follow_the_table(before, self.state, events)
        if self.state.energy_pct < 10.0:
            assert self.state.mode is S
        assert not any(isinstance(e, Alarm) for e in events)  # alarms: the ground's limits
        assert self.state.applied == before.applied

    @rule(n=st.integers(0, 15), kind=st.sampled_from(KINDS), args=st.sampled_from(ARGS))
    def command(self, n: int, kind: str, args: dict[Any, Any]) -> None:
        command_id = b"cmd-%d" % n
        before = self.state
        self.state, outcome, events = apply_command(before, command_id, kind, args, self.now_ms)
        assert outcome == DONE or isinstance(outcome, Failed)  # exactly one outcome, always
        assert_events_follow_the_table(before, self.state, events)
        if command_id in self.applied:
            assert outcome == DONE and self.state is before and events == ()
        elif outcome == DONE:
            self.applied = [command_id, *self.applied][:MAX_APPLIED]
        else:
            assert self.state is before and events == ()
        assert list(self.state.applied) == self.applied
        assert (self.state.energy_pct, self.state.memory_used_mb) == (before.energy_pct, before.memory_used_mb)

    @invariant()
    def within_bounds(self) -> None:
        assert 0.0 <= self.state.energy_pct <= 100.0
        assert 0.0 <= self.state.memory_used_mb <= self.state.memory_capacity_mb
        assert len(self.state.applied) == len(set(self.state.applied)) <= MAX_APPLIED


TestSatelliteMachine = pytest.mark.property(SatelliteMachine.TestCase)
TestSatelliteMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


@pytest.mark.property
@given(states(), st.lists(st.tuples(st.floats(0.0, 7200.0), st.booleans()), max_size=30))
@settings(max_examples=200, deadline=None)
def test_ticks_keep_energy_and_memory_in_bounds(start: SatState, steps: list[tuple[float, bool]]) -> None:
    state = start
    for dt_s, sunlit in steps:
        before = state
        state, events = tick(state, dt_s, sunlit, T0_MS)
        assert_events_follow_the_table(before, state, events)
        assert 0.0 <= state.energy_pct <= 100.0
        assert 0.0 <= state.memory_used_mb <= state.memory_capacity_mb
