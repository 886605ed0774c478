"""Every enumeration of the system, once: what each word may be.

``py_nodes/proto_v1.py`` puts these in its ``ENUMS`` table, which the contract test compares with
``stellar_proto_v1:enums/0`` on a real ``erl`` node; every other place (the ledger, the gateway's
OpenAPI document, the CLI's roles, the satellite model) imports them from here, and the dashboard's
``api/types.ts`` is checked against the OpenAPI document. Modes (and their transitions) live in
``py_nodes/satellite/modes.py``.
"""

from __future__ import annotations

from typing import Final

from py_nodes.satellite.modes import Mode

__all__ = [
    "ALARM_KINDS",
    "ALARM_SEVERITIES",
    "ALARM_STATES",
    "ALARM_TRANSITIONS",
    "COMMAND_KINDS",
    "COMMAND_STATUSES",
    "LIMIT_PARAMETERS",
    "MODES",
    "NODE_ROLES",
    "PLAN_CAUSES",
    "SCHEDULER_ALARM_KINDS",
    "STORED_ALARM_SEVERITIES",
    "TASK_KINDS",
    "TASK_REASONS",
    "TASK_STATES",
]

MODES: Final = tuple(mode.value for mode in Mode)
# What an operator can ask a satellite to do (docs/protocol-v1.md, "Talking to an actor").
COMMAND_KINDS: Final = ("set_mode", "collect", "downlink", "reboot", "noop", "set_tle")
# A ledger row's life: queued -> sent -> done | failed; expired: committed after its caller gave up.
COMMAND_STATUSES: Final = ("queued", "sent", "done", "failed", "expired")
# The Python node roles BEAM can start (`stellarops node --role R`).
NODE_ROLES: Final = ("echo", "gateway", "orbital", "sats", "scheduler", "store")
# Alarms a satellite raises, and their severities on the wire.
ALARM_KINDS: Final = ("low_energy", "memory_full")
ALARM_SEVERITIES: Final = ("warning", "critical")
# Stored alarms may also be informational (the alarms table).
STORED_ALARM_SEVERITIES: Final = ("info", *ALARM_SEVERITIES)
# A stored alarm's lifecycle (migration 0009, py_nodes/db/alarms.py) and what moves it.
ALARM_STATES: Final = ("unacknowledged", "acknowledged", "shelved", "cleared")
ALARM_TRANSITIONS: Final = ("raised", "escalated", "returned", "acknowledged", "shelved", "unshelved", "cleared")
# What a limit watches in each telemetry sample (py_nodes/limits.py, the limits table).
LIMIT_PARAMETERS: Final = ("energy_pct", "memory_used_pct", "memory_used_mb", "alt_km")
# A mission task's life (the tasks table).
TASK_STATES: Final = ("pending", "scheduled", "running", "done", "failed", "cancelled")
# What a task asks for (the scheduler, issue 17; the tasks table's CHECK).
TASK_KINDS: Final = ("imaging", "downlink", "maintenance", "command")
# Why a task is not placed in the plan, or why it failed or was cancelled (tasks.reason).
TASK_REASONS: Final = (
    "window", "deadline", "horizon", "energy", "memory", "station_conflict", "satellite_busy", "dependency",
    "unknown_satellite", "unknown_station", "satellite_unavailable", "execution_failed", "cancelled",
)  # fmt: skip
# What triggered a (re-)plan (plan_runs.cause, plan_requests.cause).
PLAN_CAUSES: Final = (
    "task_added", "task_cancelled", "station_down", "station_up", "satellite_unavailable",
    "execution_failed", "freeze_passed", "manual", "takeover",
)  # fmt: skip
# Alarms the scheduler raises (stored only: never on the wire between BEAM and Python).
SCHEDULER_ALARM_KINDS: Final = ("task_failed",)
