"""The satellite model: pure functions over an immutable state (no I/O, no asyncio, no clock).

``tick`` advances a state by ``dt_s`` seconds; ``apply_command`` applies one command. Both take
the time (``now_ms``) as an argument and return the new state plus the events it caused, which
the actor turns into messages (``proto_v1``). Rules (docs/protocol-v1.md):

- energy drains at a per-mode rate and charges in sunlight, clamped to [0, 100] %;
- memory fills in ``science`` up to its capacity and drains in ``downlink`` down to 0;
- energy below 10 % forces ``safe`` (reason ``low_energy``): the on-board protection. Alarms are
  not the model's business: the ground judges telemetry by limits that operators edit
  (``py_nodes.limits``, the store node); the seeded limits raise ``low_energy`` below 10 % and
  ``memory_full`` at capacity, as the model did before (``Alarm`` stays in the protocol);
- ``applied`` keeps the newest 256 applied command ids; a command whose id is there is answered
  ``done`` and not applied again. Failed commands are not recorded: a retry is evaluated anew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from orbital import Elements, ElementsError

from .modes import Mode, check_transition

__all__ = [
    "CHARGE_PCT_PER_S",
    "DONE",
    "DOWNLINK_DRAIN_MB_PER_S",
    "DRAIN_PCT_PER_S",
    "LOW_ENERGY_PCT",
    "MAX_APPLIED",
    "SCIENCE_FILL_MB_PER_S",
    "Alarm",
    "Event",
    "Failed",
    "ModeChanged",
    "Outcome",
    "SatState",
    "apply_command",
    "tick",
]

DRAIN_PCT_PER_S: Final[Mapping[Mode, float]] = {
    Mode.SAFE: 0.01,
    Mode.STANDBY: 0.02,
    Mode.NOMINAL: 0.05,
    Mode.SCIENCE: 0.12,
    Mode.DOWNLINK: 0.10,
    Mode.MAINTENANCE: 0.04,
}
CHARGE_PCT_PER_S: Final = 0.15
SCIENCE_FILL_MB_PER_S: Final = 0.5
DOWNLINK_DRAIN_MB_PER_S: Final = 2.0
LOW_ENERGY_PCT: Final = 10.0
MAX_APPLIED: Final = 256

# Bound once: the tick runs for every satellite every second.
_SAFE: Final = Mode.SAFE
_SCIENCE: Final = Mode.SCIENCE
_DOWNLINK: Final = Mode.DOWNLINK


@dataclass(slots=True)
class SatState:
    """One satellite's state: the contract's ``SatState`` map, field for field.

    Not validated here (that costs on every tick): ``proto_v1.state_from_term`` checks what
    arrives from the wire, and the functions below keep the invariants. A state is a value:
    nothing changes one, the functions below return a new one. It is not a frozen dataclass
    only because a frozen one's ``__init__`` (``object.__setattr__`` a field) took 0.96 us
    against 0.19 us: a new state a tick, ~8 % of a core at 100,000 satellites.
    """

    id: bytes
    name: bytes
    mode: Mode
    energy_pct: float
    memory_used_mb: float
    memory_capacity_mb: float
    tle: tuple[bytes, bytes] | None
    applied: tuple[bytes, ...]  # newest first, at most MAX_APPLIED
    updated_at: int  # ms since the Unix epoch (the contract's name for it)


@dataclass(frozen=True, slots=True)
class ModeChanged:
    from_mode: Mode
    to_mode: Mode
    reason: str  # the command kind, or "low_energy"


@dataclass(frozen=True, slots=True)
class Alarm:
    alarm: Literal["low_energy", "memory_full"]
    severity: Literal["warning", "critical"]
    message: str


Event = ModeChanged | Alarm


@dataclass(frozen=True, slots=True)
class Failed:
    reason: tuple[Any, ...]  # e.g. ("invalid_transition", Mode.SAFE, Mode.SCIENCE)


DONE: Final = "done"
Outcome = Literal["done"] | Failed

_NO_EVENTS: Final[tuple[Event, ...]] = ()


def tick(state: SatState, dt_s: float, in_sunlight: bool, now_ms: int) -> tuple[SatState, tuple[Event, ...]]:
    """Advance ``state`` by ``dt_s`` (>= 0) seconds spent in the mode it has now."""
    mode = state.mode
    rate_pct_per_s = (CHARGE_PCT_PER_S if in_sunlight else 0.0) - DRAIN_PCT_PER_S[mode]
    energy_pct = state.energy_pct + rate_pct_per_s * dt_s
    if energy_pct > 100.0:
        energy_pct = 100.0
    elif energy_pct < 0.0:
        energy_pct = 0.0
    memory_mb = state.memory_used_mb
    capacity_mb = state.memory_capacity_mb
    events = _NO_EVENTS
    if mode is _SCIENCE:
        memory_mb = min(capacity_mb, memory_mb + SCIENCE_FILL_MB_PER_S * dt_s)
    elif mode is _DOWNLINK:
        memory_mb = max(0.0, memory_mb - DOWNLINK_DRAIN_MB_PER_S * dt_s)
    if energy_pct < LOW_ENERGY_PCT and mode is not _SAFE:
        events = (ModeChanged(mode, _SAFE, "low_energy"),)
        mode = _SAFE
    new_state = SatState(
        state.id,
        state.name,
        mode,
        energy_pct,
        memory_mb,
        capacity_mb,
        state.tle,
        state.applied,
        now_ms,
    )
    return new_state, events


def apply_command(
    state: SatState, command_id: bytes, kind: str, args: Mapping[Any, Any], now_ms: int
) -> tuple[SatState, Outcome, tuple[Event, ...]]:
    """Apply one command: the new state, its outcome (``DONE`` or ``Failed``) and its events."""
    if command_id in state.applied:
        return state, DONE, _NO_EVENTS  # exactly-once: already applied, report success again
    if kind == "set_tle":
        return _set_tle(state, command_id, args, now_ms)
    target_of = COMMAND_TARGETS.get(kind)
    if target_of is None:
        return state, Failed(("unknown_command", kind)), _NO_EVENTS
    target = target_of(state, args)
    if target is None:
        return state, Failed(("bad_args", "mode")), _NO_EVENTS
    refusal = check_transition(state.mode, target)
    if refusal is not None:
        return state, Failed(refusal), _NO_EVENTS
    events = _NO_EVENTS if target is state.mode else (ModeChanged(state.mode, target, kind),)
    applied = (command_id, *state.applied[: MAX_APPLIED - 1])
    return replace(state, mode=target, applied=applied, updated_at=now_ms), DONE, events


def _set_tle(
    state: SatState, command_id: bytes, args: Mapping[Any, Any], now_ms: int
) -> tuple[SatState, Outcome, tuple[Event, ...]]:
    """New two-line elements (``line1``, ``line2``: binaries that SGP4's parser accepts); the mode
    is kept. The node's orbit tracker picks them up (``satellite.actor``)."""
    line1, line2 = args.get("line1"), args.get("line2")
    if type(line1) is not bytes or type(line2) is not bytes:
        return state, Failed(("bad_args", "tle")), _NO_EVENTS
    try:
        Elements.from_tle(line1.decode("ascii"), line2.decode("ascii"))
    except (UnicodeDecodeError, ElementsError):
        return state, Failed(("bad_args", "tle")), _NO_EVENTS
    applied = (command_id, *state.applied[: MAX_APPLIED - 1])
    return replace(state, tle=(line1, line2), applied=applied, updated_at=now_ms), DONE, _NO_EVENTS


def _mode_arg(args: Mapping[Any, Any]) -> Mode | None:
    value = args.get("mode")
    # A str here is an atom (binaries arrive as bytes); anything else is not a mode.
    if isinstance(value, str) and value in _MODE_NAMES:
        return Mode(value)
    return None


# The mode each command kind asks for (None: bad args); its keys are py_nodes.vocabulary's
# COMMAND_KINDS (a test checks it).
COMMAND_TARGETS: Final[Mapping[str, Callable[[SatState, Mapping[Any, Any]], Mode | None]]] = {
    "set_mode": lambda state, args: _mode_arg(args),
    "collect": lambda state, args: Mode.SCIENCE,
    "downlink": lambda state, args: Mode.DOWNLINK,
    "reboot": lambda state, args: Mode.SAFE,  # energy and memory are kept
    "noop": lambda state, args: state.mode,
    "set_tle": lambda state, args: state.mode,  # the mode is kept: apply_command sets the TLE (_set_tle)
}


_MODE_NAMES: Final = frozenset(m.value for m in Mode)
