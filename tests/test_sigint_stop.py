"""SIGINT (Ctrl-C) stops a real ``stellarops up`` cleanly: exit status 0, a last checkpoint of
every satellite written at the stop, and nothing it started left running. The periodic checkpoint
is set to an hour, so only the stop can write the state the satellites reached since their last
write (the one after the restore)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from drills import A, checkpoints, clean_up, ms, read_checkpoints, sats_by_id, stack_pids, wait_gone
from stack import UpStack

pytestmark = [pytest.mark.erlang, pytest.mark.slow, pytest.mark.timeout(300)]


def test_sigint_writes_a_last_checkpoint_and_exits_0(tmp_path: Path) -> None:
    stack = UpStack(
        tmp_path / "home", "stellar_sigint", STELLAROPS_DEMO_SATELLITES="3",
        ERL_ZFLAGS="-stellar checkpoint_ms 3600000",  # no periodic checkpoint during the test
    )  # fmt: skip
    pids: dict[str, int] = {}
    try:
        stack.start()
        pids = asyncio.run(stack_pids(stack, "sigint"))

        async def ahead_of_the_database() -> dict[str, dict[object, object]]:
            """The satellites once each has ticked past its last write to the database."""
            conninfo = stack.database().conninfo
            async with stack.ctl("sigint_a") as ctl:
                period = await stack.rpc(ctl, "application", "get_env", [A("stellar"), A("checkpoint_ms")])
                assert period == (A("ok"), 3_600_000)
                deadline = time.monotonic() + 60
                while True:
                    stored = await checkpoints(conninfo)
                    sats = sats_by_id(await stack.rpc(ctl, "stellar", "sats", []))
                    if all(sats[i][A("updated_at")] > ms(row[2]) + 2_000 for i, row in stored.items()):
                        return sats
                    assert time.monotonic() < deadline, (stored, sats)
                    await asyncio.sleep(0.2)

        seen = asyncio.run(ahead_of_the_database())
        assert stack.proc is not None
        os.kill(stack.proc.pid, signal.SIGINT)
        assert stack.proc.wait(120) == 0
        assert wait_gone(list(pids.values()), 60) == [], "processes outlived the stop"
        last = read_checkpoints(stack.home)
        for sat_id, sat in seen.items():  # each written at the stop, not older than seen before it
            assert ms(last[sat_id][2]) >= sat[A("updated_at")], (sat_id, last[sat_id], sat)  # type: ignore[operator]
    finally:
        clean_up(stack, pids)
