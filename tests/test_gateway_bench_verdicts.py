"""bench/gateway_bench.py's SSE verdicts (issue 20): "no drops, no gaps" is not a pass when
nothing arrived; the events must flow at the satellites' ticking rate (10/s per client)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import gateway_bench


def run(per_client: list[int], seconds: float = 30.0, gaps: int = 0, dropped: int = 0, closed: int = 0) -> dict[str, Any]:
    events = sum(per_client)
    return {
        "clients": len(per_client), "seconds": seconds, "events": events, "min_per_client": min(per_client),
        "max_per_client": max(per_client), "per_client_per_s": events / len(per_client) / seconds, "gaps": gaps,
        "closed_by_server": closed, "dropped": dropped,
    }  # fmt: skip


def failed(sse: dict[str, Any]) -> list[str]:
    return [c["check"] for c in gateway_bench.sse_checks(sse) if not c["pass"]]


def test_a_healthy_run_passes() -> None:
    assert failed(run([300, 299, 301, 300])) == []


def test_zero_events_fails_though_nothing_dropped_or_missed() -> None:
    checks = failed(run([0, 0, 0]))
    assert "SSE: events received" in checks and any("events/s per client" in c for c in checks)


def test_too_slow_or_too_fast_or_one_starved_client_fails() -> None:
    assert any("per client (mean)" in c for c in failed(run([150, 150])))  # 5/s: half the ticks
    assert any("per client (mean)" in c for c in failed(run([600, 600])))  # 20/s: events doubled
    assert failed(run([300] * 9 + [20])) == ["SSE: slowest client >= 8 events/s"]


def test_drops_gaps_and_closed_streams_fail() -> None:
    assert failed(run([300, 300], dropped=1)) == ["SSE: no client dropped"]
    assert failed(run([300, 300], gaps=2)) == ["SSE: no gaps"]
    assert failed(run([300, 300], closed=1)) == ["SSE: no stream closed by the gateway"]
