"""The BEAM <-> Python contract is one contract: stellar_proto_v1's shape tables, read from a real
erl node running the compiled `stellar` app, equal py_nodes/proto_v1.py's, table for table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from erl_support import ROOT, erl_eval

from py_nodes import proto_v1
from py_nodes.erldist import Atom as A
from py_nodes.erldist import Node, Pid
from py_nodes.satellite.modes import Mode

pytestmark = pytest.mark.erlang

SHADOW = Pid(A("stellar@127.0.0.1"), 4711, 0, 1)
STELLAR_EBIN = ROOT / "_build" / "default" / "lib" / "stellar" / "ebin"


def as_python(term: Any) -> Any:
    """Erlang shape terms in proto_v1's Python spelling: binaries and atoms as str."""
    if isinstance(term, bytes):
        return term.decode()
    if isinstance(term, tuple):
        return tuple(as_python(item) for item in term)
    if isinstance(term, dict):
        return {str(key): as_python(value) for key, value in term.items()}
    return term


@pytest.fixture
def stellar_erl(erl_factory: Any) -> Any:
    if not (STELLAR_EBIN / "stellar_proto_v1.beam").exists():
        pytest.fail(f"{STELLAR_EBIN} has no stellar_proto_v1.beam: run `rebar3 compile` (make setup does)")
    return erl_factory("contract", extra=["-pa", str(Path(STELLAR_EBIN))])


@pytest.mark.parametrize(
    ("function", "python_table"),
    [
        ("shapes", proto_v1.SHAPES),
        ("map_shapes", proto_v1.MAP_SHAPES),
        ("enums", proto_v1.ENUMS),
        ("unions", proto_v1.UNIONS),
    ],
)
async def test_erlang_and_python_tables_are_equal(
    py_node: Node, stellar_erl: Any, function: str, python_table: Any
) -> None:
    erlang_table = await erl_eval(py_node, stellar_erl, f"stellar_proto_v1:{function}().")
    assert as_python(erlang_table) == {key: value for key, value in python_table.items()}
    assert len(python_table) > 0


async def test_telemetry_from_either_side_conforms_on_the_other(py_node: Node, stellar_erl: Any) -> None:
    state = proto_v1.state_from_term(
        {
            proto_v1.K_ID: b"sat-1",
            proto_v1.K_NAME: b"Sat 1",
            proto_v1.K_MODE: proto_v1.MODE_ATOMS[Mode.NOMINAL],
            proto_v1.K_ENERGY: 80.0,
            proto_v1.K_MEMORY_USED: 1.0,
            proto_v1.K_MEMORY_CAPACITY: 100.0,
            proto_v1.K_TLE: None,
            proto_v1.K_APPLIED: [],
            proto_v1.K_UPDATED_AT: 1,
        }
    )
    for position in [(51.5, -0.1, 412.0), None]:
        tick = proto_v1.sat_tick(b"sat-1", state, in_sunlight=position is None, position=position)
        classified = await erl_eval(py_node, stellar_erl, "stellar_proto_v1:classify(Tick).", Tick=tick)
        assert classified[0] == "sat_tick" and classified[2] == tick[3]
    from_erlang = await erl_eval(
        py_node,
        stellar_erl,
        "stellar_proto_v1:sat_tick(<<\"sat-1\">>, S, #{lat_deg => -33.9, lon_deg => 151.2, alt_km => 550.0,"
        " in_sunlight => false}).",
        S=proto_v1.state_to_term(state),
    )
    assert proto_v1.conforms(from_erlang, proto_v1.SHAPES["sat_tick"])


async def test_packed_telemetry_rows_read_the_same_on_both_sides(py_node: Node, stellar_erl: Any) -> None:
    """BEAM's ``telemetry_rows/1`` (what the store node is sent) parsed by Python gives the
    samples' values; Python's packing read back by Erlang gives the same maps."""
    sample = {"mode": A("science"), "energy_pct": 61.25, "memory_used_mb": 12.5, "updated_at": 1_700_000_000_123,
              "lat_deg": -33.9, "lon_deg": 151.2, "alt_km": 550.0, "in_sunlight": False}  # fmt: skip
    dark = {**sample, "mode": A("safe"), "lat_deg": None, "lon_deg": None, "alt_km": None, "in_sunlight": True}
    rows = [(b"sat-1", {A(k): v for k, v in sample.items()}), (b"sat.2_b", {A(k): v for k, v in dark.items()})]
    packed = await erl_eval(py_node, stellar_erl, "stellar_proto_v1:telemetry_rows(Rows).", Rows=rows)
    assert proto_v1.conforms(packed, proto_v1.SHAPES["telemetry_rows"])
    samples = proto_v1.telemetry_rows_from_term(packed)
    assert samples == [
        proto_v1.TelemetrySample("sat-1", 1_700_000_000_123, 61.25, 12.5, "science", -33.9, 151.2, 550.0, False),
        proto_v1.TelemetrySample("sat.2_b", 1_700_000_000_123, 61.25, 12.5, "safe", None, None, None, True),
    ]
    back = await erl_eval(py_node, stellar_erl, "stellar_proto_v1:telemetry_rows_list(P).", P=proto_v1.telemetry_rows(samples))
    assert back == rows


async def test_packed_ticks_from_python_classify_in_erlang(py_node: Node, stellar_erl: Any) -> None:
    """A sats node's ``sat_ticks`` (TickRows) read by BEAM's classify/1: each satellite's id,
    shadow and Telemetry map; a row that cannot be a tick (energy over 100) is counted, not kept."""
    base = proto_v1.state_from_term(
        {
            proto_v1.K_ID: b"sat-1", proto_v1.K_NAME: b"Sat 1", proto_v1.K_MODE: proto_v1.MODE_ATOMS[Mode.SCIENCE],
            proto_v1.K_ENERGY: 61.25, proto_v1.K_MEMORY_USED: 12.5, proto_v1.K_MEMORY_CAPACITY: 100.0,
            proto_v1.K_TLE: None, proto_v1.K_APPLIED: [], proto_v1.K_UPDATED_AT: 1_700_000_000_123,
        }
    )  # fmt: skip
    rows = proto_v1.TickRows()
    rows.add(base, SHADOW, in_sunlight=False, position=(-33.9, 151.2, 550.0))
    rows.add(replace(base, id=b"sat.2_b", mode=Mode.SAFE), SHADOW, in_sunlight=True, position=None)
    rows.add(replace(base, id=b"sat-3", energy_pct=100.5), SHADOW, in_sunlight=True, position=None)
    term = proto_v1.sat_ticks(rows)
    assert proto_v1.conforms(term, proto_v1.SHAPES["sat_ticks"])
    classified = await erl_eval(py_node, stellar_erl, "stellar_proto_v1:classify(T).", T=term)
    tel = {"mode": A("science"), "energy_pct": 61.25, "memory_used_mb": 12.5, "updated_at": 1_700_000_000_123,
           "lat_deg": -33.9, "lon_deg": 151.2, "alt_km": 550.0, "in_sunlight": False}  # fmt: skip
    dark = {**tel, "mode": A("safe"), "lat_deg": None, "lon_deg": None, "alt_km": None, "in_sunlight": True}
    assert classified == (
        A("sat_ticks"),
        [(b"sat-1", SHADOW, {A(k): v for k, v in tel.items()}), (b"sat.2_b", SHADOW, {A(k): v for k, v in dark.items()})],
        1,
    )
    # What the store is handed as it came reads as the same samples.
    samples = proto_v1.telemetry_rows_from_term((proto_v1.TELEMETRY_ROWS, 1, term[2], term[3], term[5]))
    assert [s.sat_id for s in samples] == ["sat-1", "sat.2_b", "sat-3"]
    assert samples[1] == proto_v1.TelemetrySample("sat.2_b", 1_700_000_000_123, 61.25, 12.5, "safe", None, None, None, True)
