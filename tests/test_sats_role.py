"""The sats role and its wire contract (proto_v1): parsers alone, then against a real Erlang node."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from typing import Any

import pytest
from erl_support import ErlNode, erl_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from py_nodes import proto_v1
from py_nodes.cli import ROLES
from py_nodes.erldist import Atom, Node, Pid, Process
from py_nodes.roles import sats
from py_nodes.roles.sats import SatsServer, serve_sats
from py_nodes.satellite import Alarm, Failed, Mode, ModeChanged, SatState
from py_nodes.satellite.model import DRAIN_PCT_PER_S
from py_nodes.settings import Settings

A = Atom
PID = Pid(A("x@127.0.0.1"), 1, 0, 1)
TICK_S = 0.1


def sat(**fields: Any) -> SatState:
    base = SatState(b"sat-1", b"Sat One", Mode.NOMINAL, 80.0, 10.0, 512.0, None, (), 1_700_000_000_000)
    return dataclasses.replace(base, **fields)


# -- proto_v1 without a network -----------------------------------------------------------------


@st.composite
def states(draw: st.DrawFn) -> SatState:
    capacity_mb = draw(st.floats(0.001, 1e6))
    command_ids = st.binary(min_size=1, max_size=proto_v1.MAX_COMMAND_ID_BYTES)
    return SatState(
        id=draw(st.text("abcXYZ019_.-", min_size=1, max_size=64)).encode(),
        name=draw(st.binary(max_size=40)),
        mode=draw(st.sampled_from(list(Mode))),
        energy_pct=draw(st.floats(0.0, 100.0)),
        memory_used_mb=draw(st.floats(0.0, capacity_mb)),
        memory_capacity_mb=capacity_mb,
        tle=draw(st.none() | st.tuples(st.binary(max_size=69), st.binary(max_size=69))),
        applied=tuple(draw(st.lists(command_ids, max_size=5, unique=True))),
        updated_at=draw(st.integers(0, 2**62)),
    )


@pytest.mark.property
@given(states())
@settings(max_examples=200, deadline=None)
def test_state_round_trips_and_conforms(state: SatState) -> None:
    term = proto_v1.state_to_term(state)
    assert proto_v1.conforms(term, "map:SatState")
    assert proto_v1.state_from_term(term) == state


def one_tick(state: SatState) -> proto_v1.TickRows:
    rows = proto_v1.TickRows()
    rows.add(state, PID, in_sunlight=True, position=None)
    return rows


def test_every_builder_conforms_to_its_shape() -> None:
    state = sat(tle=(b"1 25544U", b"2 25544"), applied=(b"c2", b"c1"))
    examples = {
        "start_actor": proto_v1.start_actor(state, PID),
        "start_actor_ok": proto_v1.start_actor_ok(PID),
        "start_actor_bad_state": proto_v1.bad_state("energy_pct"),
        "start_actor_already_running": proto_v1.already_running(PID),
        "load": proto_v1.LOAD,
        "load_ok": proto_v1.load_ok(3),
        "command": proto_v1.command(b"c1", "set_mode", {A("mode"): A("science")}, PID),
        "stop": proto_v1.STOP,
        "command_result": proto_v1.command_result(b"sat-1", b"c1", "done", state),
        "sat_tick": proto_v1.sat_tick(b"sat-1", state, in_sunlight=True, position=(51.5, -0.1, 412.0)),
        "sat_ticks": proto_v1.sat_ticks(one_tick(state)),
        "sat_event_state": proto_v1.sat_event(b"sat-1", ModeChanged(Mode.NOMINAL, Mode.SAFE, "low_energy")),
        "sat_event_alarm": proto_v1.sat_event(b"sat-1", Alarm("memory_full", "warning", "full")),
        "telemetry_rows": proto_v1.telemetry_rows(
            [proto_v1.TelemetrySample("sat-1", 1_700_000_000_000, 80.0, 12.5, "nominal", 51.5, -0.1, 412.0, True)]
        ),
    }
    assert set(examples) == set(proto_v1.SHAPES)
    for name, term in examples.items():
        assert [other for other, shape in proto_v1.SHAPES.items() if proto_v1.conforms(term, shape)] == [name]
    unknown_position = proto_v1.sat_tick(b"sat-1", state, in_sunlight=False, position=None)
    assert proto_v1.conforms(unknown_position, proto_v1.SHAPES["sat_tick"])
    assert unknown_position[3][A("lat_deg")] is None and unknown_position[3][A("in_sunlight")] is False
    for reason in [("invalid_transition", Mode.SCIENCE, Mode.MAINTENANCE), ("bad_args", "mode"), ("unknown_command", A("warp"))]:
        result = proto_v1.command_result(b"sat-1", b"c1", Failed(reason), state)
        assert proto_v1.conforms(result, proto_v1.SHAPES["command_result"]), reason
    assert not proto_v1.conforms(
        proto_v1.command_result(b"sat-1", b"c1", Failed(("other", "x")), state), proto_v1.SHAPES["command_result"]
    )


def test_failed_outcome_is_all_atoms() -> None:
    term = proto_v1.outcome_to_term(Failed(("invalid_transition", Mode.SCIENCE, Mode.MAINTENANCE)))
    assert term == (A("failed"), (A("invalid_transition"), A("science"), A("maintenance")))
    assert all(type(part) is Atom for part in term[1])


def with_field(key: str, value: Any) -> dict[Atom, Any]:
    term = proto_v1.state_to_term(sat())
    term[A(key)] = value
    return term


def without_field(key: str) -> dict[Atom, Any]:
    term = proto_v1.state_to_term(sat())
    del term[A(key)]
    return term


BAD_STATES = [
    (with_field("id", b""), "id"),
    (with_field("id", b"x" * 65), "id"),
    (with_field("id", b"bad id!"), "id"),
    (with_field("id", "sat-1"), "id"),
    (with_field("name", A("n")), "name"),
    (with_field("mode", A("warp")), "mode"),
    (with_field("mode", b"safe"), "mode"),
    (with_field("energy_pct", 80), "energy_pct"),
    (with_field("energy_pct", 100.5), "energy_pct"),
    (with_field("energy_pct", -0.1), "energy_pct"),
    (with_field("energy_pct", float("nan")), "energy_pct"),
    (with_field("energy_pct", True), "energy_pct"),
    (with_field("memory_used_mb", 600.0), "memory_used_mb"),
    (with_field("memory_used_mb", -1.0), "memory_used_mb"),
    (with_field("memory_capacity_mb", 0.0), "memory_capacity_mb"),
    (with_field("memory_capacity_mb", float("inf")), "memory_capacity_mb"),
    (with_field("tle", (b"1",)), "tle"),
    (with_field("tle", [b"1", b"2"]), "tle"),
    (with_field("applied", [b"c1", 1]), "applied"),
    (with_field("applied", [b""]), "applied"),
    (with_field("applied", [b"c"] * 257), "applied"),
    (with_field("applied", (b"c1",)), "applied"),
    (with_field("updated_at", 1.5), "updated_at"),
    (with_field("updated_at", -1), "updated_at"),
    (without_field("name"), "name"),
    (with_field("node", A("n@h")), "node"),
    ({**proto_v1.state_to_term(sat()), b"bin": 1}, "state"),
    ([], "state"),
]


@pytest.mark.parametrize(("term", "field"), BAD_STATES)
def test_bad_states_name_their_field(term: Any, field: str) -> None:
    with pytest.raises(proto_v1.ProtocolError) as error:
        proto_v1.parse_start_actor((proto_v1.START_ACTOR, 1, term, PID))
    assert error.value.field == field


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ((A("start_actor"), 2, proto_v1.state_to_term(sat()), PID), "version"),
        ((A("start_actor"), True, proto_v1.state_to_term(sat()), PID), "version"),
        ((A("start_actor"), 1, proto_v1.state_to_term(sat()), b"pid"), "shadow"),
        ((A("start_actor"), 1, proto_v1.state_to_term(sat())), "request"),
        ("start_actor", "request"),
    ],
)
def test_bad_start_actor_requests(request_: Any, field: str) -> None:
    with pytest.raises(proto_v1.ProtocolError) as error:
        proto_v1.parse_start_actor(request_)
    assert error.value.field == field


def test_parse_start_actor_returns_state_and_shadow() -> None:
    assert proto_v1.parse_start_actor(proto_v1.start_actor(sat(), PID)) == (sat(), PID)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ((A("command"), 1, b"c1", A("noop"), {}), "message"),
        ((b"command", 1, b"c1", A("noop"), {}, PID), "message"),
        ((A("command"), 2, b"c1", A("noop"), {}, PID), "version"),
        ((A("command"), 1, "c1", A("noop"), {}, PID), "command_id"),
        ((A("command"), 1, b"", A("noop"), {}, PID), "command_id"),
        ((A("command"), 1, b"c" * 129, A("noop"), {}, PID), "command_id"),
        ((A("command"), 1, b"c1", b"noop", {}, PID), "kind"),
        ((A("command"), 1, b"c1", A("noop"), [], PID), "args"),
        ((A("command"), 1, b"c1", A("noop"), {}, A("me")), "reply_to"),
    ],
)
def test_bad_commands_name_their_field(message: Any, field: str) -> None:
    with pytest.raises(proto_v1.ProtocolError) as error:
        proto_v1.parse_command(message)
    assert error.value.field == field


def test_tick_s_from_the_settings() -> None:
    assert Settings.from_env({}).node.tick_s == 1.0
    assert Settings.from_env({"STELLAROPS_TICK_S": "0.25"}).node.tick_s == 0.25
    for bad in ("fast", "0", "-1", "inf", "nan"):
        with pytest.raises(ValueError, match="STELLAROPS_TICK_S"):
            Settings.from_env({"STELLAROPS_TICK_S": bad})
    with pytest.raises(ValueError, match="tick_s"):
        SatsServer(tick_s=0)
    assert ROLES["sats"] is sats.start


# -- against a real Erlang node ---------------------------------------------------------------

STATE_SRC = (
    "#{id => Id, name => <<\"Sat One\">>, mode => nominal, energy_pct => 80.0, memory_used_mb => 10.0,"
    " memory_capacity_mb => 512.0, tle => undefined, applied => [], updated_at => erlang:system_time(millisecond)}"
)

# A shadow on the Erlang node: places the actor, links to it (when Link), traps exits, forwards
# all it gets to the Python Inbox as {shadow_got, Msg}, and exits when told {do_exit, Reason}.
SHADOW_SRC = """
spawn(fun() ->
    process_flag(trap_exit, true),
    Reply = gen_server:call({sats, PyNode}, {start_actor, 1, State, self()}, 5000),
    case Reply of {ok, Actor} when Link -> link(Actor); _ -> ok end,
    Inbox ! {placed, self(), Reply},
    Forward = fun F() -> receive {do_exit, Why} -> exit(Why); M -> Inbox ! {shadow_got, M}, F() end end,
    Forward()
end).
"""


# The sats node sends ticks in batches to stellar_ticks on the shadows' node; there this stand-in
# hands each shadow its own, as the single message {sat_tick, 1, Id, Telemetry} (which a real
# shadow also takes), so the tests below see one tick per satellite. Shared by every test. (The
# rows unpacked as stellar_proto_v1:classify/1 does: this node does not load the stellar app.)
TICKS_FANOUT_SRC = """
case whereis(stellar_ticks) of
    undefined ->
        Pid = spawn(fun() ->
            Modes = {safe, standby, nominal, science, downlink, maintenance},
            Pos = fun(Flags, X) when Flags band 2 =:= 2 -> X; (_, _) -> undefined end,
            Loop = fun L() ->
                receive {sat_ticks, 1, _Count, Ids, Shadows, Records} ->
                    Rows = lists:zip3(binary:split(Ids, <<0>>, [global, trim]), Shadows, [R || <<R:50/binary>> <= Records]),
                    [Shadow ! {sat_tick, 1, Id, #{mode => element(M + 1, Modes), energy_pct => E, memory_used_mb => U,
                                                  updated_at => T, lat_deg => Pos(Flags, Lat), lon_deg => Pos(Flags, Lon),
                                                  alt_km => Pos(Flags, Alt), in_sunlight => Flags band 1 =:= 1}}
                     || {Id, Shadow, <<T:64/signed-little, E:64/float-little, U:64/float-little, M:8, Flags:8,
                                       Lat:64/float-little, Lon:64/float-little, Alt:64/float-little>>} <- Rows]
                end,
                L()
            end,
            Loop()
        end),
        register(stellar_ticks, Pid), ok;
    _ -> ok
end.
"""


def never_sunlit(sat_id: bytes, t_utc_s: float) -> bool:
    return False


@pytest.fixture
async def role(py_node: Node, shared_erl: ErlNode) -> SatsServer:
    await erl_eval(py_node, shared_erl, TICKS_FANOUT_SRC)
    server = serve_sats(py_node, tick_s=TICK_S, sunlight=never_sunlit)
    await asyncio.sleep(0)
    return server


@pytest.fixture
async def inbox(py_node: Node) -> Any:
    async with py_node.process() as proc:
        yield proc


def is_tagged(tag: str, inner: str | None = None) -> Any:
    def match(m: Any) -> bool:
        return type(m) is tuple and m[0] == tag and (inner is None or (type(m[1]) is tuple and m[1][0] == inner))

    return match


async def place(
    py_node: Node, erl: ErlNode, inbox: Process, sat_id: bytes = b"sat-1", *, link: bool = True
) -> tuple[Pid, Any]:
    """Start an Erlang shadow for ``sat_id``; returns (shadow pid, start_actor reply)."""
    await erl_eval(py_node, erl, f"State = {STATE_SRC}, {SHADOW_SRC}", PyNode=A(py_node.name), Inbox=inbox.pid, Id=sat_id, Link=link)
    placed = await inbox.receive(is_tagged("placed"), timeout=5)
    return placed[1], placed[2]


async def shadow_got(inbox: Process, what: str, timeout: float = 30.0) -> Any:
    return (await inbox.receive(is_tagged("shadow_got", what), timeout=timeout))[1]


async def load(py_node: Node) -> int:
    reply = await py_node.call("sats", proto_v1.LOAD)
    return int(reply[1][A("actors")])


@pytest.mark.erlang
async def test_placed_actor_ticks_to_its_shadow(py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process) -> None:
    _, reply = await place(py_node, shared_erl, inbox)
    assert proto_v1.conforms(reply, proto_v1.SHAPES["start_actor_ok"])
    actor = reply[1]
    assert actor.node == py_node.name and await load(py_node) == 1
    assert await erl_eval(py_node, shared_erl, "gen_server:call({sats, N}, load).", N=A(py_node.name)) == (A("ok"), {A("actors"): 1})
    ticks = [await shadow_got(inbox, "sat_tick") for _ in range(5)]
    for message in ticks:
        assert proto_v1.conforms(message, proto_v1.SHAPES["sat_tick"])
        assert message[2] == b"sat-1" and message[3][A("mode")] == "nominal" and A("applied") not in message[3]
    # Each tick drains the energy for the wall time since the last one (0.05 %/s nominal, in
    # eclipse), however late a loaded machine runs it: checked against the ticks' own stamps.
    energies = [message[3][A("energy_pct")] for message in ticks]
    stamps = [message[3][A("updated_at")] for message in ticks]
    drain_pct_per_s = DRAIN_PCT_PER_S[Mode.NOMINAL]
    assert 0.0 < energies[-1] < energies[0] < 80.0
    for (e0, t0_ms), (e1, t1_ms) in itertools.pairwise(zip(energies, stamps, strict=True)):
        assert t1_ms - t0_ms >= 0.5 * TICK_S * 1000  # paced by the tick, never bunched
        dt_s = min((t1_ms - t0_ms) / 1000, sats.MAX_DT_TICKS * TICK_S)
        assert e0 - e1 == pytest.approx(drain_pct_per_s * dt_s, abs=drain_pct_per_s * 0.002)


async def test_ticks_come_batched_per_beam_node(py_node: Node) -> None:
    """Every actor's tick in one sat_ticks message per pass chunk, to stellar_ticks on the
    shadows' node (here the Python node itself), with each satellite's shadow and telemetry."""
    server = serve_sats(py_node, tick_s=TICK_S, sunlight=never_sunlit)
    n = 3 * sats.CHUNK_ACTORS // 2  # two chunks: two batches per pass
    async with py_node.process("stellar_ticks") as sink, py_node.process() as shadow:
        for i in range(n):
            reply = await py_node.call("sats", proto_v1.start_actor(sat(id=b"sat-%d" % i), shadow.pid))
            assert reply[0] == "ok"
        first = await sink.receive(timeout=30)
        while True:  # passes that began while the actors were being placed carry fewer
            second = await sink.receive(timeout=30)
            if first[2] == sats.CHUNK_ACTORS and second[2] == n - sats.CHUNK_ACTORS:
                break
            first = second
        for batch in (first, second):
            assert proto_v1.conforms(batch, proto_v1.SHAPES["sat_ticks"]), batch
            assert batch[4] == [shadow.pid] * batch[2]
            samples = proto_v1.telemetry_rows_from_term((proto_v1.TELEMETRY_ROWS, 1, batch[2], batch[3], batch[5]))
            assert {s.mode for s in samples} == {"nominal"} and all(0.0 <= s.energy_pct <= 100.0 for s in samples)
        ids = sorted(s for batch in (first, second) for s in batch[3].split(b"\0")[:-1])
        assert ids == sorted(b"sat-%d" % i for i in range(n))
        assert shadow.mailbox_size() == 0  # no tick went to the shadow itself
    assert server.process.alive


@pytest.mark.erlang
async def test_commands_from_erlang(
    py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stellarops.satellite")
    shadow, (_, actor) = await place(py_node, shared_erl, inbox)
    await erl_eval(
        py_node,
        shared_erl,
        """
        [Actor ! {command, 1, Id, Kind, Args, Shadow} || {Id, Kind, Args} <- [
            {<<"c1">>, set_mode, #{mode => science}},
            {<<"c2">>, set_mode, #{mode => maintenance}},
            {<<"c1">>, set_mode, #{mode => science}},
            {<<"c3">>, set_mode, #{mode => <<"safe">>}},
            {<<"c4">>, warp, #{}},
            {<<"c5">>, reboot, #{}}]],
        Actor ! {command, 1, not_a_binary, noop, #{}, Shadow},
        Actor ! {command, 1, <<"c6">>, noop, #{}, Shadow},
        ok.
        """,
        Actor=actor,
        Shadow=shadow,
    )
    results = [await shadow_got(inbox, "command_result") for _ in range(7)]
    for message in results:
        assert proto_v1.conforms(message, proto_v1.SHAPES["command_result"])
        assert message[2] == b"sat-1"
    summary = [(m[3], m[4], m[5][A("mode")], m[5][A("applied")]) for m in results]
    assert summary == [
        (b"c1", A("done"), A("science"), [b"c1"]),
        (b"c2", (A("failed"), (A("invalid_transition"), A("science"), A("maintenance"))), A("science"), [b"c1"]),
        (b"c1", A("done"), A("science"), [b"c1"]),  # applied once: answered done, nothing changes
        (b"c3", (A("failed"), (A("bad_args"), A("mode"))), A("science"), [b"c1"]),
        (b"c4", (A("failed"), (A("unknown_command"), A("warp"))), A("science"), [b"c1"]),
        (b"c5", A("done"), A("safe"), [b"c5", b"c1"]),
        (b"c6", A("done"), A("safe"), [b"c6", b"c5", b"c1"]),  # the malformed command was dropped
    ]
    events = [await shadow_got(inbox, "sat_event") for _ in range(2)]
    assert [e[4] for e in events] == [
        {A("from"): A("nominal"), A("to"): A("science"), A("reason"): A("set_mode")},
        {A("from"): A("science"), A("to"): A("safe"), A("reason"): A("reboot")},
    ]
    assert all(proto_v1.conforms(e, proto_v1.SHAPES["sat_event_state"]) for e in events)
    while (await shadow_got(inbox, "sat_tick"))[3][A("mode")] != "safe":
        pass  # ticks sent before the commands; a safe one must follow
    # Logs carry the satellite id as structured metadata (mode changes at INFO, bad input WARNING).
    records = [r for r in caplog.records if r.name == "stellarops.satellite"]
    assert {r.levelname for r in records} == {"INFO", "WARNING"}
    assert all(getattr(r, "sat_id", None) == "sat-1" for r in records)


@pytest.mark.erlang
async def test_bad_start_actor_requests_get_errors(py_node: Node, shared_erl: ErlNode, role: SatsServer) -> None:
    replies = await erl_eval(
        py_node,
        shared_erl,
        f"""
        Good = {STATE_SRC},
        Call = fun(R) -> gen_server:call({{sats, PyNode}}, R, 5000) end,
        [Call({{start_actor, 1, maps:put(energy_pct, 120.0, Good), self()}}),
         Call({{start_actor, 1, maps:put(energy_pct, 80, Good), self()}}),
         Call({{start_actor, 1, maps:remove(name, Good), self()}}),
         Call({{start_actor, 1, maps:put(mode, warp, Good), self()}}),
         Call({{start_actor, 1, maps:put(id, <<"no spaces">>, Good), self()}}),
         Call({{start_actor, 1, maps:put(memory_used_mb, 600.0, Good), self()}}),
         Call({{start_actor, 1, maps:put(applied, [1], Good), self()}}),
         Call({{start_actor, 1, maps:put(tle, {{<<"1">>}}, Good), self()}}),
         Call({{start_actor, 1, maps:put(node, node(), Good), self()}}),
         Call({{start_actor, 2, Good, self()}}),
         Call({{start_actor, 1, [], self()}}),
         Call({{start_actor, 1, Good, not_a_pid}}),
         Call({{start_actor, 1, Good}}),
         Call(what),
         Call(load)].
        """,
        PyNode=A(py_node.name),
        Id=b"sat-1",
    )
    fields = ["energy_pct", "energy_pct", "name", "mode", "id", "memory_used_mb", "applied", "tle", "node",
              "version", "state", "shadow", "request"]  # fmt: skip
    assert replies == [(A("error"), (A("bad_state"), A(f))) for f in fields] + [
        (A("error"), A("unknown_call")),
        (A("ok"), {A("actors"): 0}),
    ]
    assert role.process.alive and role.ticker is not None and role.ticker.alive


@pytest.mark.erlang
async def test_second_placement_of_a_running_satellite(py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process) -> None:
    _, (_, actor) = await place(py_node, shared_erl, inbox)
    _, again = await place(py_node, shared_erl, inbox)
    assert again == (A("error"), (A("already_running"), actor))
    assert proto_v1.conforms(again, proto_v1.SHAPES["start_actor_already_running"])
    _, other = await place(py_node, shared_erl, inbox, b"sat-2")
    assert other[0] == "ok" and await load(py_node) == 2


@pytest.mark.erlang
async def test_killing_the_actor_sends_the_shadow_an_exit(py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process) -> None:
    _, (_, actor) = await place(py_node, shared_erl, inbox)
    await shadow_got(inbox, "sat_tick")  # linked and running
    await erl_eval(py_node, shared_erl, "exit(Actor, kill).", Actor=actor)
    assert await shadow_got(inbox, "EXIT") == (A("EXIT"), actor, A("killed"))
    assert await load(py_node) == 0
    _, replaced = await place(py_node, shared_erl, inbox)  # the satellite can be placed again
    assert replaced[0] == "ok" and replaced[1] != actor


@pytest.mark.erlang
async def test_killing_the_shadow_ends_the_actor(py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process) -> None:
    shadow, (_, actor) = await place(py_node, shared_erl, inbox)
    await shadow_got(inbox, "sat_tick")
    ref = inbox.monitor(actor)
    await erl_eval(py_node, shared_erl, "exit(Shadow, kill).", Shadow=shadow)
    down = await inbox.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] == ref, timeout=3)
    assert down[4] == "killed"
    assert await load(py_node) == 0


@pytest.mark.erlang
async def test_any_linked_process_that_dies_ends_the_actor(py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process) -> None:
    # The actor does not trap exits: a link alone is enough (the shadow stays alive here).
    _, (_, actor) = await place(py_node, shared_erl, inbox)
    ref = inbox.monitor(actor)
    await erl_eval(py_node, shared_erl, "spawn(fun() -> link(Actor), exit(boom) end), ok.", Actor=actor)
    down = await inbox.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] == ref, timeout=3)
    assert down[4] == "boom"


@pytest.mark.erlang
async def test_a_shadow_gone_before_linking_leaves_no_orphan(py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process) -> None:
    shadow, (_, actor) = await place(py_node, shared_erl, inbox, link=False)
    ref = inbox.monitor(actor)
    inbox.send(shadow, (A("do_exit"), A("normal")))  # a normal exit: no link could carry it
    down = await inbox.receive(lambda m: type(m) is tuple and m[0] == "DOWN" and m[1] == ref, timeout=3)
    assert down[4] == "normal"
    assert await load(py_node) == 0


@pytest.mark.erlang
async def test_stop_ends_the_actor_normally(py_node: Node, shared_erl: ErlNode, role: SatsServer, inbox: Process) -> None:
    _, (_, actor) = await place(py_node, shared_erl, inbox)
    await erl_eval(py_node, shared_erl, "Actor ! stop, ok.", Actor=actor)
    assert await shadow_got(inbox, "EXIT") == (A("EXIT"), actor, A("normal"))
    assert await load(py_node) == 0
