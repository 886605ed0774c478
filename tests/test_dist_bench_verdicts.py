"""bench/dist_bench.py judges Python against the Erlang peer of the same run (issue 20): a loaded
machine that slows both does not fail it; Python alone being slow does. The floor is a second line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import dist_bench


def targets(erl: list[tuple[float, float, float]], py: list[tuple[float, float, float]]) -> dict[str, Any]:
    def target(rounds: list[tuple[float, float, float]]) -> dict[str, Any]:
        return {"rounds": [dict(zip(dist_bench.METRICS, r, strict=True)) for r in rounds],
                "msgs_per_s": sorted(r[0] for r in rounds)[len(rounds) // 2]}  # fmt: skip

    return {"erlang": target(erl), "python": target(py)}


def verdicts(erl: list[tuple[float, float, float]], py: list[tuple[float, float, float]]) -> dict[str, bool]:
    return {f"{c['kind']} {c['metric']}": c["ok"] for c in dist_bench.checks(targets(erl, py))}


QUIET_ERL = [(500_000.0, 60.0, 90.0)] * 3


def test_a_loaded_machine_slowing_both_passes_the_reference_checks() -> None:
    loaded_erl = [(150_000.0, 200.0, 400.0)] * 3
    loaded_py = [(60_000.0, 260.0, 700.0)] * 3  # 0.4x, 1.3x, 1.75x of the same run's peer
    got = verdicts(loaded_erl, loaded_py)
    assert got == {"reference msgs_per_s": True, "reference p50_us": True, "reference p99_us": True,
                   "floor msgs_per_s": False}  # fmt: skip


def test_python_alone_slow_fails_against_the_same_numbers_quiet() -> None:
    py = [(60_000.0, 260.0, 700.0)] * 3  # the same Python figures as above, but the peer is quick
    got = verdicts(QUIET_ERL, py)
    assert got == {"reference msgs_per_s": False, "reference p50_us": False, "reference p99_us": False,
                   "floor msgs_per_s": False}  # fmt: skip


def test_ratios_are_paired_by_round() -> None:
    # Load came and went between rounds: each round's ratio is 0.3x, whatever the absolute level.
    erl = [(500_000.0, 60.0, 90.0), (100_000.0, 300.0, 450.0), (500_000.0, 60.0, 90.0)]
    py = [(150_000.0, 72.0, 117.0), (30_000.0, 360.0, 877.5), (150_000.0, 72.0, 117.0)]
    ratios = dist_bench.round_ratios(targets(erl, py))
    assert [round(r, 6) for r in ratios["msgs_per_s"]] == [0.3, 0.3, 0.3]
    assert [round(r, 6) for r in ratios["p99_us"]] == [1.3, 1.95, 1.3]
    assert all(c["ok"] for c in dist_bench.checks(targets(erl, py)))
