"""Placeholder planner (replaced by the real one shortly): every task unplaced."""

from __future__ import annotations

import time

from .model import Plan, Problem, Unplaced


def plan(
    problem: Problem,
    *,
    budget_s: float = 1.0,
    previous: Plan | None = None,
    cause: str = "initial",
    seed: int = 0,
    incremental: bool = True,
) -> Plan:
    t0 = time.perf_counter()
    unplaced = tuple(Unplaced(t.task_id, "window", "planner not written yet") for t in problem.tasks)
    return Plan(problem.now_utc, problem.horizon_s, (), unplaced, 0, (time.perf_counter() - t0) * 1e3, cause)


def greedy_plan(problem: Problem) -> Plan:
    return plan(problem, budget_s=0.0)
