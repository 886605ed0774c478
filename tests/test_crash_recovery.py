"""Crash recovery from the periodic checkpoint, with real processes (``stellarops up``: BEAM, its
Python nodes, the embedded PostgreSQL): kill -9 of the BEAM node, and kill -9 of ``stellarops up``
itself. No clean stop writes a last checkpoint here: the restarted stack must resume each
satellite from its last periodic one (mode changes made before it survive)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest
from drills import A, checkpoints, clean_up, ms, read_checkpoints, sats_by_id, stack_pids, wait_gone
from stack import UpStack

pytestmark = [pytest.mark.erlang, pytest.mark.slow, pytest.mark.timeout(400)]

SATELLITES = 4
CHANGES = {"demo-02": "science", "demo-03": "downlink"}  # from nominal, before the checkpoint


def _until_checkpointed(stack: UpStack) -> None:
    """Makes the mode changes, then waits until a periodic checkpoint has them (5 s period)."""

    async def run() -> None:
        async with stack.ctl("crash_a") as ctl:
            for sat_id, mode in CHANGES.items():
                assert await stack.rpc(ctl, "stellar", "set_mode", [sat_id.encode(), A(mode)]) == "ok"
        conninfo = stack.database().conninfo  # attached: the stack's own server, left running
        deadline = time.monotonic() + 60
        while True:
            rows = await checkpoints(conninfo)
            if all(rows[s][0] == m for s, m in CHANGES.items()):
                return
            assert time.monotonic() < deadline, f"no periodic checkpoint with the changes: {rows}"
            await asyncio.sleep(0.2)

    asyncio.run(run())


def _resumes_from(stack: UpStack, last: dict[str, tuple[str, float, datetime]]) -> None:
    """The restarted stack runs every satellite once, from the checkpoint ``last``."""
    assert f"satellites:   {SATELLITES} (restored)" in stack.banner, stack.banner

    async def run() -> None:
        async with stack.ctl("crash_b") as ctl:
            sats = sats_by_id(await stack.rpc(ctl, "stellar", "sats", []))
        assert sorted(sats) == sorted(last)
        for sat_id, (mode, energy_pct, updated_at) in last.items():
            sat = sats[sat_id]
            assert sat[A("mode")] == mode, (sat_id, sat, last[sat_id])
            assert sat[A("updated_at")] >= ms(updated_at)
            assert abs(sat[A("energy_pct")] - energy_pct) < 2.0, (sat_id, sat, last[sat_id])

    asyncio.run(run())


def _restart_resumes(stack: UpStack, pids: dict[str, int]) -> None:
    """The last checkpoint holds the changes; a new start resumes every satellite from it."""
    last = read_checkpoints(stack.home)
    assert all(last[s][0] == m for s, m in CHANGES.items()), last
    stack.start()
    pids.update(asyncio.run(stack_pids(stack, "crash_pids2")))
    _resumes_from(stack, last)
    assert stack.stop() == 0


def test_kill_9_of_the_beam_node_resumes_from_the_periodic_checkpoint(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_crash_beam", STELLAROPS_DEMO_SATELLITES=str(SATELLITES))
    pids: dict[str, int] = {}
    try:
        stack.start()
        pids = asyncio.run(stack_pids(stack, "crash_pids"))
        _until_checkpointed(stack)
        os.kill(pids[stack.beam], signal.SIGKILL)
        # `stellarops up` notices, stops what it started and ends; the Python nodes go with BEAM.
        assert stack.proc is not None
        stack.proc.wait(120)
        assert wait_gone(list(pids.values()), 60) == [], "processes outlived the BEAM node"
        _restart_resumes(stack, pids)
    finally:
        clean_up(stack, pids)


def test_kill_9_of_stellarops_up_resumes_from_the_periodic_checkpoint(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_crash_up", STELLAROPS_DEMO_SATELLITES=str(SATELLITES))
    pids: dict[str, int] = {}
    try:
        stack.start()
        pids = asyncio.run(stack_pids(stack, "crash_pids"))
        _until_checkpointed(stack)
        assert stack.proc is not None
        os.kill(stack.proc.pid, signal.SIGKILL)
        stack.proc.wait(30)
        # Nothing of the old cluster may run on: it would keep its node names, and a second
        # cluster on the same database would run every satellite twice.
        left = wait_gone(list(pids.values()), 60)
        assert left == [], f"processes outlived a kill -9 of stellarops up: {left}"
        _restart_resumes(stack, pids)
    finally:
        clean_up(stack, pids)
