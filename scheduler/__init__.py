"""scheduler: the mission planning engine, a pure library (no I/O; standard library only;
imports nothing else from the project).

A ``Problem`` (tasks, satellites' live energy and memory, stations, passes, target windows,
sunlight; see ``scheduler.model`` for the exact model) goes in; ``plan`` returns a ``Plan``:
placements, unplaced tasks with a reason each, the value (sum of placed priorities) and, for a
re-plan, what changed and why. ``validate`` checks any plan against the model independently of
the planner; ``forecast_energy``/``forecast_memory`` give a satellite's profiles under a plan.

Errors::

    ValueError   misuse: a naive datetime, a negative duration, a priority outside 0..100,
                 repeated ids (raised when the object is built)
    TypeError    a time that is not a datetime

Everything the problem as a whole makes impossible is data: ``Unplaced.reason``.
"""

from .forecast import Forecast, forecast_energy, forecast_memory
from .model import (
    CHANGE_KINDS,
    KIND_MODES,
    TASK_KINDS,
    UNPLACED_REASONS,
    VIOLATION_KINDS,
    ChangeKind,
    Placement,
    Plan,
    PlanChange,
    Problem,
    Reason,
    SatelliteResources,
    Station,
    Task,
    TaskKind,
    Unplaced,
    Violation,
    ViolationKind,
    Window,
)
from .planner import greedy_plan, plan
from .validate import validate

__all__ = [
    "CHANGE_KINDS",
    "KIND_MODES",
    "TASK_KINDS",
    "UNPLACED_REASONS",
    "VIOLATION_KINDS",
    "ChangeKind",
    "Forecast",
    "Placement",
    "Plan",
    "PlanChange",
    "Problem",
    "Reason",
    "SatelliteResources",
    "Station",
    "Task",
    "TaskKind",
    "Unplaced",
    "Violation",
    "ViolationKind",
    "Window",
    "forecast_energy",
    "forecast_memory",
    "greedy_plan",
    "plan",
    "validate",
]
