"""The gateway under faults in the real stack (``stellarops up``: real BEAM, store node, embedded
PostgreSQL): a clean stop with 100 SSE clients connected; PostgreSQL frozen and killed while
commands come in; the read model's freshness; a gateway of its own reconnecting to the cluster
after the control node restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from drills import A, clean_up, stack_pids, wait_gone
from stack import UpStack
from web_support import read_sse

from py_nodes.db import ApiTokens, Database
from py_nodes.db.server import postmaster_alive
from py_nodes.erldist import Node
from web import GatewayConfig
from web.role import Gateway

pytestmark = [pytest.mark.erlang, pytest.mark.slow, pytest.mark.timeout(400)]

BOUND_S = 60.0
SSE_CLIENTS = 100


def _pg_pids(stack: UpStack) -> list[int]:
    """The stack's postmaster and its children."""
    main = stack.database().postmaster_pid()
    assert main is not None and postmaster_alive(main)
    pids = [main]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == main:
                pids.append(int(entry))
    return pids


async def _tokens(stack: UpStack) -> dict[str, str]:
    async with Database(stack.database().conninfo, max_size=1) as db:
        tokens = ApiTokens(db)
        made = {role: (await tokens.create(role, f"faults {role}", actor="test"))[1] for role in ("viewer", "operator")}
        made["unseen"] = (await tokens.create("viewer", "not used before the outage", actor="test"))[1]
    return made


async def _until(check: Any, what: str, bound_s: float = BOUND_S) -> Any:
    deadline = time.monotonic() + bound_s
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {bound_s} s"
        await asyncio.sleep(0.1)


def _log_has(stack: UpStack, text: str, bound_s: float = 15.0) -> bool:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if any(text in line for line in list(stack.log_tail)):
            return True
        time.sleep(0.1)
    return False


# -- a clean stop with SSE clients ---------------------------------------------------------------


def test_clean_stop_with_100_sse_clients(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_webstop", STELLAROPS_DEMO_SATELLITES="2")
    pids: dict[str, int] = {}
    ended: list[str] = []
    try:
        stack.start()
        pids = asyncio.run(stack_pids(stack, "webstop"))
        url, token = stack.gateway_url(), stack.admin_token()

        async def clients() -> None:
            async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=0)) as http:

                async def one() -> None:
                    async with http.get("/api/events", headers={"Authorization": f"Bearer {token}"}) as stream:
                        assert stream.status == 200
                        await read_sse(stream, 1)
                        connected.set() if len(ready) + 1 == SSE_CLIENTS else None
                        ready.append(1)
                        try:
                            while await stream.content.readany():
                                pass
                            ended.append("eof")  # the gateway ended the stream
                        except aiohttp.ClientError as exc:
                            ended.append(type(exc).__name__)

                ready: list[int] = []
                connected = asyncio.Event()
                tasks = [asyncio.create_task(one()) for _ in range(SSE_CLIENTS)]
                await asyncio.wait_for(connected.wait(), BOUND_S)
                assert stack.proc is not None
                start = time.monotonic()
                stack.proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(asyncio.gather(*tasks), BOUND_S)
                print(f"{SSE_CLIENTS} SSE streams ended {time.monotonic() - start:.2f} s after SIGTERM: "
                      f"{ended.count('eof')} cleanly")  # fmt: skip

        asyncio.run(clients())
        assert stack.proc is not None and stack.proc.wait(120) == 0
        assert ended == ["eof"] * SSE_CLIENTS
        gateway = next(name for name in pids if "gateway" in name)
        assert wait_gone([pids[gateway]], 30) == []
        assert not any("ignored SIGTERM" in line for line in stack.log_tail), [
            line for line in stack.log_tail if "ignored SIGTERM" in line
        ]
    finally:
        clean_up(stack, pids)
