"""Placeholder validator (replaced shortly)."""

from __future__ import annotations

from .model import Plan, Problem, Violation


def validate(problem: Problem, plan: Plan, *, previous: Plan | None = None) -> list[Violation]:
    return []
