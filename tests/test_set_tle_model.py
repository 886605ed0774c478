"""The satellite model's ``set_tle`` command (issue 18): new elements, the mode kept, applied
once; lines SGP4's parser refuses fail ``{bad_args, tle}`` and change nothing. The actor tells
its node's orbit tracker (tests/test_manage_stack.py flies it in the real stack)."""

from __future__ import annotations

from orbital import tle_checksum
from py_nodes.satellite.model import DONE, Failed, SatState, apply_command
from py_nodes.satellite.modes import Mode
from py_nodes.satellite.orbit import OrbitTracker

L1 = b"1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9009"
L2 = b"2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579 12348"
HIGH = L2[:52] + b"12.00000000" + L2[63:68]
HIGH += str(tle_checksum(HIGH.decode())).encode()
STATE = SatState(b"s", b"S", Mode.SCIENCE, 50.0, 10.0, 100.0, (L1, L2), (), 1)


def test_new_elements_keep_the_mode_and_apply_once() -> None:
    state, outcome, events = apply_command(STATE, b"c1", "set_tle", {"line1": L1, "line2": HIGH}, 5)
    assert (outcome, events, state.tle, state.mode, state.applied, state.updated_at) == (DONE, (), (L1, HIGH), Mode.SCIENCE, (b"c1",), 5)
    again, outcome, _ = apply_command(state, b"c1", "set_tle", {"line1": L1, "line2": L2}, 6)
    assert outcome == DONE and again is state  # the same command id: not applied twice


def test_bad_lines_change_nothing() -> None:
    bad = L2[:68] + b"0"
    for args in ({"line1": L1, "line2": bad}, {"line1": L1}, {"line1": "text", "line2": L2}, {"line1": L1, "line2": b"\xff" * 69}):
        state, outcome, _ = apply_command(STATE, b"c2", "set_tle", args, 5)
        assert state is STATE and outcome == Failed(("bad_args", "tle")), args


def test_the_tracker_flies_what_it_is_given() -> None:
    tracker = OrbitTracker()
    assert tracker.track(b"s", (L1, L2))
    low = tracker.fixes(1704110400.0)[b"s"].alt_km
    assert tracker.track(b"s", (L1, HIGH))  # what the actor's on_tle hook does
    high = tracker.fixes(1704110400.0)[b"s"].alt_km
    assert low < 600 and high > 1400, (low, high)
