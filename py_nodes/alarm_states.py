"""An alarm's lifecycle as ground systems have it: pure (the repository, py_nodes/db/alarms.py,
stores what these functions decide).

An alarm has a ``state`` (what the operator has done about it) and ``active`` (whether its
condition, the value out of limits, still holds)::

    raised -> unacknowledged --ack--> acknowledged --value returns--> cleared
                  |   \\--value returns--> cleared, or (latched) stays unacknowledged
                  |                        until acknowledged, then cleared
                  \\--shelve(duration)--> shelved --expiry / unshelve--> unacknowledged (still
                                                   active) | cleared (value returned meanwhile)

A higher severity (escalation) asks for a new acknowledgement (a shelved alarm stays shelved).
``cleared`` is final: the condition coming back raises a new alarm. Each function returns the new
status and the transitions it made (``vocabulary.ALARM_TRANSITIONS``; none: nothing changed), or
raises AlarmStateError when the request makes no sense in the alarm's state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

__all__ = [
    "AlarmStateError",
    "State",
    "Status",
    "acknowledged",
    "cleared",
    "raised",
    "returned",
    "shelved",
    "unshelved",
]

State = Literal["unacknowledged", "acknowledged", "shelved", "cleared"]
Transition = Literal["raised", "escalated", "returned", "acknowledged", "shelved", "unshelved", "cleared"]
RANK: Final = {"info": 0, "warning": 1, "critical": 2}


class AlarmStateError(ValueError):
    """What was asked cannot be done in the alarm's state (an HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Status:
    state: State
    active: bool
    severity: str  # info, warning, critical
    latched: bool = False


Result = tuple[Status, tuple[Transition, ...]]


def raised(status: Status | None, severity: str, latched: bool) -> Result:
    """The condition holds at ``severity`` (``status`` None: no open alarm of this kind)."""
    if status is None or status.state == "cleared":
        return Status("unacknowledged", True, severity, latched), ("raised",)
    if not status.active:  # back out of limits before its acknowledgement
        worst = max(status.severity, severity, key=RANK.__getitem__)
        state: State = "shelved" if status.state == "shelved" else "unacknowledged"
        return Status(state, True, worst, latched), ("raised",)
    if RANK[severity] > RANK[status.severity]:
        state = "shelved" if status.state == "shelved" else "unacknowledged"
        return replace(status, state=state, severity=severity), ("escalated",)
    return status, ()


def returned(status: Status) -> Result:
    """The value is back within limits."""
    if status.state == "cleared" or not status.active:
        return status, ()
    if status.state == "unacknowledged" and status.latched:
        return replace(status, active=False), ("returned",)
    return replace(status, state="cleared", active=False), ("returned", "cleared")


def acknowledged(status: Status) -> Result:
    """An operator acknowledges (idempotent: acknowledging twice changes nothing)."""
    if status.state in ("acknowledged", "cleared"):
        return status, ()
    if status.state == "shelved":
        raise AlarmStateError("the alarm is shelved: unshelve it first")
    if status.active:
        return replace(status, state="acknowledged"), ("acknowledged",)
    return replace(status, state="cleared"), ("acknowledged", "cleared")


def shelved(status: Status) -> Result:
    """An operator shelves it for a while (shelving a shelved alarm sets a new expiry)."""
    if status.state == "cleared":
        raise AlarmStateError("the alarm is cleared: there is nothing to shelve")
    if not status.active:
        raise AlarmStateError("the alarm's value is back within limits: acknowledge it instead")
    return replace(status, state="shelved"), ("shelved",)


def unshelved(status: Status) -> Result:
    """Its shelf expired or an operator took it off (not shelved: nothing changes)."""
    if status.state != "shelved":
        return status, ()
    if status.active:
        return replace(status, state="unacknowledged"), ("unshelved",)
    return replace(status, state="cleared"), ("unshelved", "cleared")


def cleared(status: Status) -> Result:
    """An operator closes it whatever its condition (the pre-lifecycle "clear")."""
    if status.state == "cleared":
        return status, ()
    return replace(status, state="cleared", active=False), ("cleared",)
