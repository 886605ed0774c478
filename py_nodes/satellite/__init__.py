"""Satellites: the pure model (modes, state, tick, commands), the sunlight hook, the actor.

``model``, ``modes`` and ``sunlight`` do no I/O; ``actor`` puts a model on an erldist process.
"""

from .model import DONE, Alarm, Event, Failed, ModeChanged, Outcome, SatState, apply_command, tick
from .modes import TRANSITIONS, Mode, check_transition
from .sunlight import SunlightFn, in_sunlight

__all__ = [
    "DONE",
    "TRANSITIONS",
    "Alarm",
    "Event",
    "Failed",
    "Mode",
    "ModeChanged",
    "Outcome",
    "SatState",
    "SunlightFn",
    "apply_command",
    "check_transition",
    "in_sunlight",
    "tick",
]
