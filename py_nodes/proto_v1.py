"""The BEAM <-> Python satellite protocol, version 1: the Python half of docs/protocol-v1.md.

Builders make every message Python sends (and, for tests and clients, the ones BEAM sends);
strict parsers check what arrives from BEAM and raise ``ProtocolError(field)`` naming the first
offending field, in the contract's order. Nothing else in the project spells these shapes out.

``SHAPES`` describes every message as data, for the interop test that compares it (and
``MAP_SHAPES``, ``ENUMS``, ``UNIONS``) with ``stellar_proto_v1.erl``'s ``shapes/0``, ``map_shapes/0``,
``enums/0`` and ``unions/0``. A shape is a kind string or a tuple of shapes (an Erlang tuple):

=========================  ======================================================
``"atom:NAME"``            that atom (``atom:undefined`` is Python ``None``)
``"atom"``                 any atom
``"int:N"`` / ``"int"``    that integer / any integer
``"float"``                a float
``"binary"``               a binary
``"pid"``                  a pid
``"map"``                  any map
``"map:NAME"``             a map with exactly the keys of ``MAP_SHAPES[NAME]``
``"list:KIND"``            a proper list of KIND
``"enum:NAME"``            one of the atoms ``ENUMS[NAME]``
``"union:NAME"``           one of the shapes ``UNIONS[NAME]``
=========================  ======================================================

``conforms(term, shape)`` checks a term against a shape (structure only; the parsers also check
ranges such as 0 <= energy_pct <= 100).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from typing import Any, Final, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from py_nodes import vocabulary
from py_nodes.erldist import Atom, Pid
from py_nodes.satellite.model import (
    DONE,
    MAX_APPLIED,
    Alarm,
    Event,
    Failed,
    ModeChanged,
    Outcome,
    SatState,
)
from py_nodes.satellite.modes import Mode

__all__ = [
    "ACTORS",
    "ALARM",
    "ALREADY_RUNNING",
    "BAD_STATE",
    "COMMAND",
    "COMMAND_ARGS",
    "COMMAND_RESULT",
    "ENUMS",
    "ERROR",
    "FAILED",
    "LOAD",
    "MAP_SHAPES",
    "MAX_COMMAND_ID_BYTES",
    "MODE_ATOMS",
    "OK",
    "SAT_EVENT",
    "SAT_TICK",
    "SAT_TICKS",
    "SHAPES",
    "START_ACTOR",
    "STATE",
    "STATE_KEYS",
    "STOP",
    "TICKS_SINK",
    "UNIONS",
    "VERSION",
    "Command",
    "ProtocolError",
    "Shape",
    "StartActor",
    "TelemetrySample",
    "TickRows",
    "already_running",
    "bad_state",
    "command",
    "command_args_from_json",
    "command_result",
    "conforms",
    "is_start_actor",
    "is_stop",
    "load_ok",
    "outcome_to_term",
    "parse_command",
    "parse_start_actor",
    "sat_event",
    "sat_tick",
    "sat_ticks",
    "start_actor",
    "start_actor_ok",
    "state_from_term",
    "state_to_term",
    "telemetry",
    "telemetry_rows",
    "telemetry_rows_from_term",
]

VERSION: Final = 1
MAX_SAT_ID_BYTES: Final = 64
# Not in the contract text (which says binary()): bounds what every actor keeps 256 of.
MAX_COMMAND_ID_BYTES: Final = 128

# -- atoms ------------------------------------------------------------------------------------

START_ACTOR: Final = Atom("start_actor")
LOAD: Final = Atom("load")
OK: Final = Atom("ok")
ERROR: Final = Atom("error")
BAD_STATE: Final = Atom("bad_state")
ALREADY_RUNNING: Final = Atom("already_running")
ACTORS: Final = Atom("actors")
COMMAND: Final = Atom("command")
COMMAND_RESULT: Final = Atom("command_result")
FAILED: Final = Atom("failed")
STOP: Final = Atom("stop")
SAT_TICK: Final = Atom("sat_tick")
SAT_TICKS: Final = Atom("sat_ticks")
TELEMETRY_ROWS: Final = Atom("telemetry_rows")
# The registered process of each BEAM node that takes a sats node's batched ticks.
TICKS_SINK: Final = Atom("stellar_ticks")
SAT_EVENT: Final = Atom("sat_event")
STATE: Final = Atom("state")
ALARM: Final = Atom("alarm")
_DONE_ATOM: Final = Atom(DONE)

# SatState keys, in the contract's order (also the order parse errors are looked for in).
K_ID, K_NAME, K_MODE = Atom("id"), Atom("name"), Atom("mode")
K_ENERGY, K_MEMORY_USED, K_MEMORY_CAPACITY = Atom("energy_pct"), Atom("memory_used_mb"), Atom("memory_capacity_mb")
K_TLE, K_APPLIED, K_UPDATED_AT = Atom("tle"), Atom("applied"), Atom("updated_at")
STATE_KEYS: Final = (K_ID, K_NAME, K_MODE, K_ENERGY, K_MEMORY_USED, K_MEMORY_CAPACITY, K_TLE, K_APPLIED, K_UPDATED_AT)
_STATE_KEY_SET: Final = frozenset(STATE_KEYS)
K_FROM, K_TO, K_REASON = Atom("from"), Atom("to"), Atom("reason")
K_ALARM, K_SEVERITY, K_MESSAGE = Atom("alarm"), Atom("severity"), Atom("message")
K_LAT, K_LON, K_ALT, K_SUNLIT = Atom("lat_deg"), Atom("lon_deg"), Atom("alt_km"), Atom("in_sunlight")

MODE_ATOMS: Final[Mapping[Mode, Atom]] = {mode: Atom(mode.value) for mode in Mode}
_MODES_BY_ATOM: Final[Mapping[str, Mode]] = {mode.value: mode for mode in Mode}
_SAT_ID = re.compile(rb"[A-Za-z0-9_.\-]{1,%d}" % MAX_SAT_ID_BYTES)

# -- shapes -----------------------------------------------------------------------------------

Shape: TypeAlias = "str | tuple[Shape, ...]"

SHAPES: Final[Mapping[str, Shape]] = {
    # BEAM -> Python: gen_server calls to {sats, PyNode} and their replies
    "start_actor": ("atom:start_actor", "int:1", "map:SatState", "pid"),
    "start_actor_ok": ("atom:ok", "pid"),
    "start_actor_bad_state": ("atom:error", ("atom:bad_state", "atom")),
    "start_actor_already_running": ("atom:error", ("atom:already_running", "pid")),
    "load": "atom:load",
    "load_ok": ("atom:ok", "map:Load"),
    # BEAM -> Python: plain messages to an actor, and the actor's answer
    "command": ("atom:command", "int:1", "binary", "atom", "map", "pid"),
    "stop": "atom:stop",
    "command_result": ("atom:command_result", "int:1", "binary", "binary", "union:outcome", "map:SatState"),
    # Python -> BEAM: what an actor reports to its shadow
    "sat_tick": ("atom:sat_tick", "int:1", "binary", "map:Telemetry"),
    # Python -> BEAM: a sats node's ticks for one BEAM node's shadows, one message per pass chunk:
    # Count, the ids and records of telemetry_rows (no term per value: cheaper both ways, and
    # BEAM hands the rows to the store as they came), and each row's shadow pid
    "sat_ticks": ("atom:sat_ticks", "int:1", "int", "binary", "list:pid", "binary"),
    "telemetry_rows": ("atom:telemetry_rows", "int:1", "int", "binary", "binary"),
    "sat_event_state": ("atom:sat_event", "int:1", "binary", "atom:state", "map:StateChange"),
    "sat_event_alarm": ("atom:sat_event", "int:1", "binary", "atom:alarm", "map:Alarm"),
}

MAP_SHAPES: Final[Mapping[str, Mapping[str, Shape]]] = {
    "SatState": {
        "id": "binary",
        "name": "binary",
        "mode": "enum:mode",
        "energy_pct": "float",
        "memory_used_mb": "float",
        "memory_capacity_mb": "float",
        "tle": "union:tle",
        "applied": "list:binary",
        "updated_at": "int",
    },
    # What changes every tick; the rest of SatState changes only through commands. The position
    # (WGS84) is undefined for a satellite without a TLE or whose propagation failed.
    "Telemetry": {
        "mode": "enum:mode",
        "energy_pct": "float",
        "memory_used_mb": "float",
        "updated_at": "int",
        "lat_deg": "union:opt_float",
        "lon_deg": "union:opt_float",
        "alt_km": "union:opt_float",
        "in_sunlight": "enum:bool",
    },
    "StateChange": {"from": "enum:mode", "to": "enum:mode", "reason": "atom"},
    "Alarm": {"alarm": "enum:alarm", "severity": "enum:severity", "message": "binary"},
    "Load": {"actors": "int"},
}

ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "mode": vocabulary.MODES,
    "alarm": vocabulary.ALARM_KINDS,
    "severity": vocabulary.ALARM_SEVERITIES,
    "bool": ("false", "true"),
    "command_kind": vocabulary.COMMAND_KINDS,
    "command_status": vocabulary.COMMAND_STATUSES,
    "node_role": vocabulary.NODE_ROLES,
    "task_state": vocabulary.TASK_STATES,
}

UNIONS: Final[Mapping[str, tuple[Shape, ...]]] = {
    "tle": ("atom:undefined", ("binary", "binary")),
    "opt_float": ("atom:undefined", "float"),
    "outcome": ("atom:done", ("atom:failed", "union:reason")),
    "reason": (
        ("atom:invalid_transition", "enum:mode", "enum:mode"),
        ("atom:bad_args", "atom:mode"),
        ("atom:unknown_command", "atom"),
    ),
}


# The args of each command kind (stellar_proto_v1:command_args/0): how a command read back from
# the ledger's JSON becomes the terms the shell gave. Keys not listed pass through (strings as
# binaries).
COMMAND_ARGS: Final[Mapping[str, Mapping[str, Shape]]] = {
    "set_mode": {"mode": "enum:mode"},
    "collect": {},
    "downlink": {},
    "reboot": {},
    "noop": {},
    "set_tle": {"line1": "binary", "line2": "binary"},
}


def _atom_name(term: Any) -> str | None:
    """The atom's name, counting the atoms that decode to Python values; None if not an atom."""
    if type(term) is Atom:
        return term
    if term is None:
        return "undefined"
    if type(term) is bool:
        return "true" if term else "false"
    return None


def conforms(term: Any, shape: Shape) -> bool:
    """True when ``term`` has ``shape`` (see the module docstring for the kinds)."""
    if isinstance(shape, tuple):
        return (
            type(term) is tuple
            and len(term) == len(shape)
            and all(conforms(item, part) for item, part in zip(term, shape, strict=True))
        )
    kind, _, arg = shape.partition(":")
    if kind == "atom":
        name = _atom_name(term)
        return name is not None and (not arg or name == arg)
    if kind == "int":
        return type(term) is int and (not arg or term == int(arg))
    if kind == "float":
        return type(term) is float
    if kind == "binary":
        return type(term) is bytes
    if kind == "pid":
        return type(term) is Pid
    if kind == "map":
        if type(term) is not dict:
            return False
        if not arg:
            return True
        fields = MAP_SHAPES[arg]
        return (
            all(type(key) is Atom for key in term)
            and set(term) == set(fields)
            and all(conforms(term[Atom(key)], part) for key, part in fields.items())
        )
    if kind == "list":
        return type(term) is list and all(conforms(item, arg) for item in term)
    if kind == "enum":
        return _atom_name(term) in ENUMS[arg]
    if kind == "union":
        return any(conforms(term, alternative) for alternative in UNIONS[arg])
    raise ValueError(f"unknown shape kind {shape!r}")


# -- errors -----------------------------------------------------------------------------------


class ProtocolError(Exception):
    """A message from the wire does not follow the contract; ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# -- the satellite state ----------------------------------------------------------------------


def state_to_term(state: SatState) -> dict[Atom, Any]:
    """The contract's ``SatState`` map."""
    return {
        K_ID: state.id,
        K_NAME: state.name,
        K_MODE: MODE_ATOMS[state.mode],
        K_ENERGY: state.energy_pct,
        K_MEMORY_USED: state.memory_used_mb,
        K_MEMORY_CAPACITY: state.memory_capacity_mb,
        K_TLE: state.tle,
        K_APPLIED: list(state.applied),
        K_UPDATED_AT: state.updated_at,
    }


def state_from_term(term: Any) -> SatState:
    """Check a ``SatState`` map strictly; ProtocolError names the first bad field."""
    if type(term) is not dict:
        raise ProtocolError("state", f"expected a map, got {_brief(term)}")
    for key in STATE_KEYS:
        if key not in term:
            raise ProtocolError(key, "missing")
    if len(term) != len(STATE_KEYS):
        extra = next(key for key in term if key not in _STATE_KEY_SET)
        raise ProtocolError(extra if type(extra) is Atom else "state", f"unknown key {_brief(extra)}")
    sat_id = term[K_ID]
    if type(sat_id) is not bytes or not _SAT_ID.fullmatch(sat_id):
        raise ProtocolError(K_ID, f"expected 1..{MAX_SAT_ID_BYTES} bytes of [A-Za-z0-9_.-], got {_brief(sat_id)}")
    name = term[K_NAME]
    if type(name) is not bytes:
        raise ProtocolError(K_NAME, f"expected a binary, got {_brief(name)}")
    mode = _MODES_BY_ATOM.get(term[K_MODE]) if type(term[K_MODE]) is Atom else None
    if mode is None:
        raise ProtocolError(K_MODE, f"expected one of {', '.join(ENUMS['mode'])}, got {_brief(term[K_MODE])}")
    energy_pct = term[K_ENERGY]
    if type(energy_pct) is not float or not 0.0 <= energy_pct <= 100.0:
        raise ProtocolError(K_ENERGY, f"expected a float in 0.0..100.0, got {_brief(energy_pct)}")
    capacity_mb = term[K_MEMORY_CAPACITY]
    used_mb = term[K_MEMORY_USED]
    if type(used_mb) is not float or not used_mb >= 0.0:
        raise ProtocolError(K_MEMORY_USED, f"expected a float >= 0.0, got {_brief(used_mb)}")
    if type(capacity_mb) is not float or not 0.0 < capacity_mb < math.inf:
        raise ProtocolError(K_MEMORY_CAPACITY, f"expected a float > 0.0, got {_brief(capacity_mb)}")
    if used_mb > capacity_mb:
        raise ProtocolError(K_MEMORY_USED, f"{used_mb} MB is more than the capacity {capacity_mb} MB")
    tle = term[K_TLE]
    if tle is not None and not (type(tle) is tuple and len(tle) == 2 and all(type(line) is bytes for line in tle)):
        raise ProtocolError(K_TLE, f"expected undefined or {{Line1, Line2}} binaries, got {_brief(tle)}")
    applied = term[K_APPLIED]
    if type(applied) is not list or len(applied) > MAX_APPLIED or not all(map(_is_command_id, applied)):
        raise ProtocolError(K_APPLIED, f"expected at most {MAX_APPLIED} command ids, got {_brief(applied)}")
    updated_at = term[K_UPDATED_AT]
    if type(updated_at) is not int or updated_at < 0:
        raise ProtocolError(K_UPDATED_AT, f"expected ms since the epoch (an integer >= 0), got {_brief(updated_at)}")
    return SatState(sat_id, name, mode, energy_pct, used_mb, capacity_mb, tle, tuple(applied), updated_at)


def _is_command_id(value: Any) -> bool:
    return type(value) is bytes and 0 < len(value) <= MAX_COMMAND_ID_BYTES


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- commands read back from the ledger (JSON) ------------------------------------------------


def command_args_from_json(kind: str, args: Mapping[str, Any]) -> dict[Atom, Any]:
    """A command's args as stored in the ledger (JSON) back as protocol terms, by
    ``COMMAND_ARGS``; ProtocolError (field ``args.KEY``) for a value its shape does not take."""
    if kind not in COMMAND_ARGS:
        raise ProtocolError("kind", f"expected one of {', '.join(COMMAND_ARGS)}, got {_brief(kind)}")
    shapes = COMMAND_ARGS[kind]
    return {Atom(key): _json_to_term(value, shapes.get(key), f"args.{key}") for key, value in args.items()}


def _json_to_term(value: Any, shape: Shape | None, field: str) -> Any:
    if shape is None:  # not in the table: the generic reading (strings are binaries)
        return value.encode() if isinstance(value, str) else value
    kind, _, arg = str(shape).partition(":") if isinstance(shape, str) else ("", "", "")
    if kind == "enum" and isinstance(value, str) and value in ENUMS[arg]:
        return Atom(value)
    if kind == "binary" and isinstance(value, str):
        return value.encode()
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "int" and type(value) is int:
        return value
    raise ProtocolError(field, f"expected {shape}, got {_brief(value)}")


# -- placing an actor (BEAM shadow -> sats server) --------------------------------------------


class StartActor(NamedTuple):
    state: SatState
    shadow: Pid


def start_actor(state: SatState, shadow: Pid) -> tuple[Any, ...]:
    """``{start_actor, 1, SatState, ShadowPid}`` (sent by BEAM; built here for tests and tools)."""
    return (START_ACTOR, VERSION, state_to_term(state), shadow)


def is_start_actor(request: Any) -> bool:
    """Whether a call is meant as ``start_actor`` (then it is answered even when malformed)."""
    return type(request) is tuple and len(request) > 0 and request[0] == START_ACTOR and type(request[0]) is Atom


def parse_start_actor(request: Any) -> StartActor:
    """Check ``{start_actor, 1, SatState, ShadowPid}``; ProtocolError names the bad field."""
    if not is_start_actor(request) or len(request) != 4:
        raise ProtocolError("request", f"expected {{start_actor, {VERSION}, SatState, ShadowPid}}, got {_brief(request)}")
    _check_version(request[1])
    state = state_from_term(request[2])
    if type(request[3]) is not Pid:
        raise ProtocolError("shadow", f"expected a pid, got {_brief(request[3])}")
    return StartActor(state, request[3])


def start_actor_ok(actor: Pid) -> tuple[Atom, Pid]:
    return (OK, actor)


def bad_state(field: str) -> tuple[Atom, tuple[Atom, Atom]]:
    return (ERROR, (BAD_STATE, Atom(field)))


def already_running(actor: Pid) -> tuple[Atom, tuple[Atom, Pid]]:
    return (ERROR, (ALREADY_RUNNING, actor))


def load_ok(actors: int) -> tuple[Atom, dict[Atom, int]]:
    return (OK, {ACTORS: actors})


def _check_version(version: Any) -> None:
    if type(version) is not int or version != VERSION:
        raise ProtocolError("version", f"expected {VERSION}, got {_brief(version)}")


# -- commands (BEAM -> actor -> ReplyTo) -------------------------------------------------------


class Command(NamedTuple):
    command_id: bytes
    kind: Atom
    args: dict[Any, Any]
    reply_to: Pid


def command(command_id: bytes, kind: str, args: dict[Any, Any], reply_to: Pid) -> tuple[Any, ...]:
    """``{command, 1, CommandId, Kind, Args, ReplyTo}`` (sent by BEAM; built here for tests)."""
    return (COMMAND, VERSION, command_id, Atom(kind), args, reply_to)


def parse_command(message: Any) -> Command:
    """Check ``{command, 1, CommandId, Kind, Args, ReplyTo}``; ProtocolError names the bad field."""
    if type(message) is not tuple or len(message) != 6 or message[0] != COMMAND or type(message[0]) is not Atom:
        raise ProtocolError("message", f"expected {{command, {VERSION}, Id, Kind, Args, ReplyTo}}, got {_brief(message)}")
    _, version, command_id, kind, args, reply_to = message
    _check_version(version)
    if not _is_command_id(command_id):
        raise ProtocolError("command_id", f"expected a binary of 1..{MAX_COMMAND_ID_BYTES} bytes, got {_brief(command_id)}")
    if type(kind) is not Atom:
        raise ProtocolError("kind", f"expected an atom, got {_brief(kind)}")
    if type(args) is not dict:
        raise ProtocolError("args", f"expected a map, got {_brief(args)}")
    if type(reply_to) is not Pid:
        raise ProtocolError("reply_to", f"expected a pid, got {_brief(reply_to)}")
    return Command(command_id, kind, args, reply_to)


def is_stop(message: Any) -> bool:
    return type(message) is Atom and message == STOP


def outcome_to_term(outcome: Outcome) -> Any:
    """``done`` or ``{failed, Reason}``; every element of a model reason is an atom."""
    if isinstance(outcome, Failed):
        return (FAILED, tuple(Atom(part) for part in outcome.reason))
    return _DONE_ATOM


def command_result(sat_id: bytes, command_id: bytes, outcome: Outcome, state: SatState) -> tuple[Any, ...]:
    """``{command_result, 1, SatId, CommandId, Outcome, SatState}``."""
    return (COMMAND_RESULT, VERSION, sat_id, command_id, outcome_to_term(outcome), state_to_term(state))


# -- reports (actor -> shadow) ----------------------------------------------------------------


def sat_tick(
    sat_id: bytes, state: SatState, *, in_sunlight: bool, position: tuple[float, float, float] | None
) -> tuple[Any, ...]:
    """``{sat_tick, 1, SatId, Telemetry}``: only what a tick changes (small on the wire).

    ``position`` is (lat_deg, lon_deg, alt_km) on WGS84, or None when unknown.
    """
    return (SAT_TICK, VERSION, sat_id, telemetry(state, in_sunlight=in_sunlight, position=position))


class TickRows:
    """Many satellites' ticks for one BEAM node, packed as ``sat_ticks`` carries them: ``add``
    each satellite's new state, then send ``sat_ticks(rows)``."""

    __slots__ = ("ids", "records", "shadows")

    def __init__(self) -> None:
        self.ids = bytearray()  # each id followed by a NUL (ids never hold one: _SAT_ID)
        self.records = bytearray()  # TELEMETRY_RECORD each
        self.shadows: list[Pid] = []

    def add(self, state: SatState, shadow: Pid, *, in_sunlight: bool, position: tuple[float, float, float] | None) -> None:
        """``position`` is (lat_deg, lon_deg, alt_km) on WGS84, or None when unknown. All or
        nothing: the record is packed (which may raise) before anything is added."""
        flags = _SUNLIT_FLAG if in_sunlight else 0
        if position is None:
            lat_deg = lon_deg = alt_km = 0.0
        else:
            lat_deg, lon_deg, alt_km = position
            flags |= _POSITION_FLAG
        record = _pack_record(
            state.updated_at, state.energy_pct, state.memory_used_mb, _MODE_INDEX[state.mode], flags,
            lat_deg, lon_deg, alt_km,
        )  # fmt: skip
        self.records += record
        self.ids += state.id
        self.ids.append(0)
        self.shadows.append(shadow)

    def __len__(self) -> int:
        return len(self.shadows)


def sat_ticks(rows: TickRows) -> tuple[Any, ...]:
    """``{sat_ticks, 1, Count, Ids, Shadows, Records}``: many satellites' ticks in one message to
    ``TICKS_SINK`` on the shadows' BEAM node (whose shadows need not wake for a tick)."""
    return (SAT_TICKS, VERSION, len(rows.shadows), bytes(rows.ids), rows.shadows, bytes(rows.records))


def telemetry(
    state: SatState, *, in_sunlight: bool, position: tuple[float, float, float] | None
) -> dict[Atom, Any]:
    """The ``Telemetry`` map of a tick (see ``sat_tick``)."""
    lat_deg, lon_deg, alt_km = position if position is not None else (None, None, None)
    return {
        K_MODE: MODE_ATOMS[state.mode],
        K_ENERGY: state.energy_pct,
        K_MEMORY_USED: state.memory_used_mb,
        K_UPDATED_AT: state.updated_at,
        K_LAT: lat_deg,
        K_LON: lon_deg,
        K_ALT: alt_km,
        K_SUNLIT: in_sunlight,
    }


# A packed telemetry row after its id (``stellar_proto_v1:telemetry_rows/1``): updated_at ms,
# energy_pct, memory_used_mb, mode index, flags, lat_deg, lon_deg, alt_km; little-endian, 50 bytes.
TELEMETRY_RECORD: Final = struct.Struct("<qddBBddd")
_SUNLIT_FLAG, _POSITION_FLAG = 1, 2  # bits of a record's flags
_pack_record: Final = TELEMETRY_RECORD.pack
_MODE_INDEX: Final[Mapping[Mode, int]] = {mode: vocabulary.MODES.index(mode.value) for mode in Mode}


class TelemetrySample(NamedTuple):
    """One row of a ``telemetry_rows`` batch; lat/lon/alt are None together when unknown."""

    sat_id: str
    updated_at_ms: int
    energy_pct: float
    memory_used_mb: float
    mode: str
    lat_deg: float | None
    lon_deg: float | None
    alt_km: float | None
    in_sunlight: bool


def telemetry_rows(samples: list[TelemetrySample]) -> tuple[Any, ...]:
    """``{telemetry_rows, 1, Count, Ids, Records}``: telemetry for the store node, packed so
    that it decodes without a term per value (what BEAM's ``stellar_store`` sends)."""
    modes = vocabulary.MODES
    ids = b"".join(s.sat_id.encode() + b"\0" for s in samples)
    records = b"".join(
        TELEMETRY_RECORD.pack(
            s.updated_at_ms, s.energy_pct, s.memory_used_mb, modes.index(s.mode),
            (_SUNLIT_FLAG if s.in_sunlight else 0) | (0 if s.lat_deg is None else _POSITION_FLAG),
            s.lat_deg or 0.0, s.lon_deg or 0.0, s.alt_km or 0.0,
        )
        for s in samples
    )  # fmt: skip
    return (TELEMETRY_ROWS, VERSION, len(samples), ids, records)


# TELEMETRY_RECORD as a numpy record: a batch's records become columns without a loop.
TELEMETRY_DTYPE: Final = np.dtype([
    ("updated_at_ms", "<i8"), ("energy_pct", "<f8"), ("memory_used_mb", "<f8"), ("mode", "u1"), ("flags", "u1"),
    ("lat_deg", "<f8"), ("lon_deg", "<f8"), ("alt_km", "<f8"),
])  # fmt: skip
# The times a sample may carry: what a datetime holds (years 1 to 9999), in ms since the epoch.
_TIME_MS_MIN, _TIME_MS_MAX = -62_135_596_800_000, 253_402_300_799_999


class TelemetryBatch(NamedTuple):
    """A ``telemetry_rows`` batch as read off the wire: the ids, and the records as one numpy
    array of ``TELEMETRY_DTYPE`` (row i of the one is row i of the other)."""

    sat_ids: list[str]
    records: npt.NDArray[np.void]

    def modes(self) -> list[str]:
        names = vocabulary.MODES
        return [names[m] for m in self.records["mode"].tolist()]

    def position_known(self) -> npt.NDArray[np.bool_]:
        known: npt.NDArray[np.bool_] = (self.records["flags"] & _POSITION_FLAG) != 0
        return known

    def in_sunlight(self) -> npt.NDArray[np.bool_]:
        sunlit: npt.NDArray[np.bool_] = (self.records["flags"] & _SUNLIT_FLAG) != 0
        return sunlit


def telemetry_batch_from_term(term: Any) -> TelemetryBatch:
    """A ``telemetry_rows`` batch read; ``ProtocolError`` when it is not one (the batch is
    judged whole: its counts and sizes must agree, every mode index must exist, every time must
    be one a datetime holds)."""
    if type(term) is not tuple or len(term) != 5 or term[0] != TELEMETRY_ROWS or term[1] != VERSION:
        raise ProtocolError("telemetry_rows", f"expected {{telemetry_rows, 1, Count, Ids, Records}}, got {_brief(term)}")
    _, _, count, ids, records = term
    if type(count) is not int or type(ids) is not bytes or type(records) is not bytes:
        raise ProtocolError("telemetry_rows", "Count must be an integer, Ids and Records binaries")
    if len(records) != count * TELEMETRY_RECORD.size:
        raise ProtocolError("telemetry_rows", f"{len(records)} bytes of records for {count} rows of {TELEMETRY_RECORD.size}")
    if not ids.isascii():
        raise ProtocolError("id", "a satellite id that is not ASCII")
    names = ids.decode("ascii").split("\0")
    if len(names) != count + 1 or names[-1] != "":
        raise ProtocolError("telemetry_rows", f"{len(names) - 1} NUL-ended ids for {count} rows")
    names.pop()
    array = np.frombuffer(records, dtype=TELEMETRY_DTYPE)
    if count:
        if int(array["mode"].max()) >= len(vocabulary.MODES):
            raise ProtocolError("mode", f"a mode index beyond the {len(vocabulary.MODES)} modes")
        times = array["updated_at_ms"]
        if int(times.min()) < _TIME_MS_MIN or int(times.max()) > _TIME_MS_MAX:
            raise ProtocolError("updated_at", "a time beyond the years 1 to 9999")
    return TelemetryBatch(names, array)


def telemetry_rows_from_term(term: Any) -> list[TelemetrySample]:
    """The samples of a ``telemetry_rows`` batch one by one (tests and tools; the store node
    takes the batch as columns); ``ProtocolError`` as ``telemetry_batch_from_term``."""
    batch = telemetry_batch_from_term(term)
    r = batch.records
    return [
        TelemetrySample(name, t, energy, memory, mode, lat if known else None, lon if known else None,
                        alt if known else None, sun)
        for name, t, energy, memory, mode, known, lat, lon, alt, sun in zip(
            batch.sat_ids, r["updated_at_ms"].tolist(), r["energy_pct"].tolist(), r["memory_used_mb"].tolist(),
            batch.modes(), batch.position_known().tolist(), r["lat_deg"].tolist(), r["lon_deg"].tolist(),
            r["alt_km"].tolist(), batch.in_sunlight().tolist(), strict=True,
        )
    ]  # fmt: skip


def sat_event(sat_id: bytes, event: Event) -> tuple[Any, ...]:
    """``{sat_event, 1, SatId, state | alarm, Data}``."""
    if isinstance(event, ModeChanged):
        data = {K_FROM: MODE_ATOMS[event.from_mode], K_TO: MODE_ATOMS[event.to_mode], K_REASON: Atom(event.reason)}
        return (SAT_EVENT, VERSION, sat_id, STATE, data)
    assert isinstance(event, Alarm)
    alarm: dict[Atom, Any] = {
        K_ALARM: Atom(event.alarm),
        K_SEVERITY: Atom(event.severity),
        K_MESSAGE: event.message.encode(),
    }
    return (SAT_EVENT, VERSION, sat_id, ALARM, alarm)
