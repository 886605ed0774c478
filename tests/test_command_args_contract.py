"""Commands read back from the ledger are the commands the shell gave (issue 12 item 5): for every
command kind, args normalised by the real `stellar_spec:command/2` on an erl node go through the
store into PostgreSQL's JSON and back out of `pending_commands`, and arrive on the erl node equal
(`=:=`: a mode is an atom again, not a binary), and the actor model accepts them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from erl_support import erl_eval
from test_proto_contract import as_python, stellar_erl  # noqa: F401  (the fixture)

from py_nodes import proto_v1
from py_nodes.db import Database, Satellites
from py_nodes.erldist import Atom, Node
from py_nodes.roles.store import StoreServer
from py_nodes.satellite.model import DONE, SatState, apply_command
from py_nodes.satellite.modes import Mode

pytestmark = pytest.mark.erlang
A = Atom

_L1 = "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9009"
_L2 = "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579 12348"
# Args as a shell user may give them, per kind (every kind must have samples).
SAMPLES: dict[str, list[str]] = {
    "set_mode": [f"#{{mode => {m.value}}}" for m in Mode] + [f'#{{mode => <<"{m.value}">>}}' for m in Mode],
    "collect": ["#{}"],
    "downlink": ["#{}"],
    "reboot": ["#{}"],
    "noop": ["#{}"],
    # A pasted pair may end with spaces or a CR: stellar_spec trims it (the ledger keeps the trimmed lines).
    "set_tle": [f'#{{line1 => <<"{_L1}">>, line2 => <<"{_L2}">>}}', f'#{{line1 => "{_L1}  ", line2 => <<"{_L2}\\r">>}}'],
}


async def test_the_args_table_is_one_table_on_both_sides(py_node: Node, stellar_erl: Any) -> None:  # noqa: F811
    kinds = await erl_eval(py_node, stellar_erl, "stellar_proto_v1:command_kinds().")
    assert sorted(kinds) == sorted(proto_v1.COMMAND_ARGS) == sorted(SAMPLES)
    table = await erl_eval(py_node, stellar_erl, "stellar_proto_v1:command_args().")
    assert as_python(table) == {kind: dict(args) for kind, args in proto_v1.COMMAND_ARGS.items()}


async def test_every_kind_survives_the_ledger_round_trip(
    py_node: Node, stellar_erl: Any, db: Database, db_conninfo: str  # noqa: F811
) -> None:
    state = SatState(b"s1", b"Sat", Mode.NOMINAL, 80.0, 0.0, 1024.0, None, (), 1)
    await Satellites(db).create(state, actor="t")
    server = StoreServer(db_conninfo)
    await server.init()
    try:
        for kind, samples in SAMPLES.items():
            for sample in samples:
                ok, norm_kind, norm_args = await erl_eval(py_node, stellar_erl, f"stellar_spec:command({kind}, {sample}).")
                assert (ok, norm_kind) == ("ok", kind), sample
                deadline_ms = int(time.time() * 1000) + 4000
                reply = await server.handle_call((A("submit_command"), b"p", b"s1", norm_kind, norm_args, None, deadline_ms), None)  # type: ignore[arg-type]
                assert reply[0] == "ok", reply
                ok, pending = await server.handle_call(A("pending_commands"), None)  # type: ignore[arg-type]
                [(command_id, sat_id, back_kind, back_args)] = [p for p in pending if p[0] == reply[1]]
                assert (sat_id, back_kind) == (b"s1", kind)
                same = await erl_eval(py_node, stellar_erl, "{A =:= B, stellar_spec:command(K, B)}.", A=norm_args, B=back_args, K=back_kind)
                assert same == (True, (A("ok"), kind, norm_args)), (kind, sample, back_args)
                _, outcome, _ = apply_command(state, command_id, back_kind, back_args, 2)
                assert outcome == DONE, (kind, sample, outcome)
                await server.ledger.mark_done(command_id.decode())
    finally:
        await server.close()
