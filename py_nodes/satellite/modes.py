"""Satellite modes and THE transition table (docs/protocol-v1.md, "Modes").

Every mode change a command asks for goes through ``check_transition``. Staying in the current
mode is not a transition: it is allowed and changes nothing, so re-sending ``set_mode`` with the
mode a satellite already has succeeds. Only the low-energy rule in ``model.tick`` moves a
satellite without asking the table (to ``safe``, which every mode may reach anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["TRANSITIONS", "InvalidTransition", "Mode", "check_transition"]


class Mode(StrEnum):
    SAFE = "safe"
    STANDBY = "standby"
    NOMINAL = "nominal"
    SCIENCE = "science"
    DOWNLINK = "downlink"
    MAINTENANCE = "maintenance"


# from -> the modes it may go to.
TRANSITIONS: Final[Mapping[Mode, frozenset[Mode]]] = MappingProxyType(
    {
        Mode.SAFE: frozenset({Mode.STANDBY, Mode.MAINTENANCE}),
        Mode.STANDBY: frozenset({Mode.NOMINAL, Mode.MAINTENANCE, Mode.SAFE}),
        Mode.NOMINAL: frozenset({Mode.SCIENCE, Mode.DOWNLINK, Mode.STANDBY, Mode.MAINTENANCE, Mode.SAFE}),
        Mode.SCIENCE: frozenset({Mode.NOMINAL, Mode.DOWNLINK, Mode.SAFE}),
        Mode.DOWNLINK: frozenset({Mode.NOMINAL, Mode.SCIENCE, Mode.SAFE}),
        Mode.MAINTENANCE: frozenset({Mode.STANDBY, Mode.SAFE}),
    }
)

# The failure reason, as it goes on the wire: {invalid_transition, From, To}.
InvalidTransition = tuple[str, Mode, Mode]


def check_transition(from_mode: Mode, to_mode: Mode) -> InvalidTransition | None:
    """None when ``from_mode`` may go to ``to_mode``, else ``("invalid_transition", from, to)``."""
    if to_mode is from_mode or to_mode in TRANSITIONS[from_mode]:
        return None
    return ("invalid_transition", from_mode, to_mode)
