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
from drills import A, clean_up, process_tree, stack_pids, wait_gone
from stack import UpStack
from web_support import read_sse

from py_nodes.db import ApiTokens, Database
from py_nodes.db.server import postmaster_alive
from web import GatewayConfig
from web.role import Gateway

pytestmark = [pytest.mark.erlang, pytest.mark.slow, pytest.mark.timeout(400)]

BOUND_S = 60.0
SSE_CLIENTS = 100


def _pg_pids(stack: UpStack) -> list[int]:
    """The stack's postmaster and its children."""
    main = stack.database().postmaster_pid()
    assert main is not None and postmaster_alive(main)
    return process_tree(main)


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


# -- PostgreSQL frozen, then killed, with real BEAM ------------------------------------------------


def test_database_outage_with_real_beam(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_weboutage", STELLAROPS_DEMO_SATELLITES="2")
    pids: dict[str, int] = {}
    try:
        stack.start()
        pids = asyncio.run(stack_pids(stack, "weboutage"))
        tokens = asyncio.run(_tokens(stack))
        asyncio.run(_outage(stack, stack.gateway_url(), tokens))
        assert stack.stop() == 0
    finally:
        clean_up(stack, pids)


async def _outage(stack: UpStack, url: str, tokens: dict[str, str]) -> None:
    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    async with aiohttp.ClientSession(url) as http:

        async def status(path: str) -> int:
            async with http.get(path) as r:
                return r.status

        async def command() -> tuple[int, dict[str, Any], float]:
            start = time.perf_counter()
            async with http.post("/api/satellites/demo-01/commands", json={"kind": "noop"}, headers=auth("operator")) as r:
                return r.status, await r.json(), time.perf_counter() - start

        async def sat(sat_id: str) -> dict[str, Any]:
            async with http.get(f"/api/satellites/{sat_id}", headers=auth("viewer")) as r:
                assert r.status == 200, await r.text()
                return dict(await r.json())

        await _until(lambda: _is(status("/readyz"), 200), "ready")
        for role in ("viewer", "operator"):  # seen once: cached
            assert (await http.get("/api/satellites", headers=auth(role))).status == 200
        await _fresh(stack, sat)

        # Frozen (SIGSTOP): queries hang with no error; the gateway must not.
        frozen = _pg_pids(stack)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            code, body, first_s = await command()  # before anything noticed: BEAM's store times out
            assert code == 503 and body["error"]["code"] == "database_unavailable", body
            await _until(lambda: _is(status("/readyz"), 503), "readyz 503")
            async with http.get("/readyz") as r:
                details = (await r.json())["error"]["details"]
                assert details["database"] is False and details["cluster"] is True and details["database_reason"]
            code, body, later_s = await command()
            assert code == 503 and body["error"]["code"] == "database_unavailable", body
            async with http.get("/api/satellites", headers=auth("unseen")) as r:
                assert r.status == 503 and (await r.json())["error"]["code"] == "database_unavailable"
                assert r.headers["Retry-After"].isdigit()
            async with http.get("/api/alarms", headers=auth("viewer")) as r:
                assert r.status == 503 and (await r.json())["error"]["code"] == "database_unavailable"
            print(f"frozen database: first command 503 after {first_s * 1000:.0f} ms, then {later_s * 1000:.0f} ms")
            # Live state and events need no database.
            await _fresh(stack, sat, change_mode=False)
            async with http.get("/api/events?types=telemetry&sat=demo-02", headers=auth("viewer")) as stream:
                assert stream.status == 200
                frames = [f for f in await read_sse(stream, 3, timeout=BOUND_S) if f.get("event") == "telemetry"]
                assert frames, "no telemetry event during the outage"
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        await _until(lambda: _is(status("/readyz"), 200), "ready after SIGCONT")
        assert (await command())[0] == 202

        # Killed (SIGKILL of the postmaster): the stack starts it again; commands meanwhile are
        # accepted (202) or refused as database_unavailable, nothing else.
        postmaster = _pg_pids(stack)[0]
        os.kill(postmaster, signal.SIGKILL)
        answers: list[tuple[int, str]] = []
        saw_down = False
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            code, body, _ = await command()
            answers.append((code, body.get("error", {}).get("code", "accepted")))
            saw_down = saw_down or code == 503 or await status("/readyz") == 503
            if saw_down and code == 202 and await status("/readyz") == 200:
                break
            await asyncio.sleep(0.2)
        print(f"commands across kill -9 of the postmaster: {answers}")
        assert set(answers) <= {(202, "accepted"), (503, "database_unavailable")}, answers
        assert answers[-1][0] == 202, "the database did not come back"


async def _is(answer: Any, expected: int) -> bool:
    return bool(await answer == expected)


async def _fresh(stack: UpStack, sat: Any, *, change_mode: bool = True) -> None:
    """The read model: a satellite's state from events is recent and moves on; a mode changed
    directly on BEAM (not through this gateway) is seen without waiting for a snapshot (a mode
    change is persisted: not while the database is away)."""
    first = await sat("demo-02")

    async def moved() -> bool:
        return bool((await sat("demo-02"))["updated_at"] > first["updated_at"])

    await _until(moved, "demo-02's updated_at did not move")
    if not change_mode:
        return
    async with stack.ctl(f"fresh{time.monotonic_ns()}") as ctl:
        current = (await sat("demo-01"))["mode"]
        target = "safe" if current != "safe" else "nominal"
        assert await stack.rpc(ctl, "stellar", "set_mode", [b"demo-01", A(target)]) == "ok"

    async def changed() -> bool:
        return bool((await sat("demo-01"))["mode"] == target)

    await _until(changed, f"demo-01 not seen in mode {target}", bound_s=10.0)


# -- a gateway of its own across a restart of the control node ------------------------------------


def test_a_gateway_reconnects_after_the_control_node_restarts(tmp_path: Path) -> None:
    """A gateway that BEAM did not start (as in a deployment where it runs apart) sees the
    control node and the database go away (503, not 500: ``/readyz`` says which), and comes
    back by itself when the stack is started again: ready, the satellites listed, and its SSE
    clients told to reload (``reset``: the new node's event ids started again)."""
    stack = UpStack(tmp_path / "home", "stellar_webrestart", STELLAROPS_DEMO_SATELLITES="2")
    pids: dict[str, int] = {}
    try:
        stack.start()
        pids = asyncio.run(stack_pids(stack, "webrestart"))
        asyncio.run(_restart(stack))
    finally:
        clean_up(stack, pids)


async def _restart(stack: UpStack) -> None:
    conninfo = stack.database().conninfo
    async with stack.ctl("extgw") as node:
        gateway = Gateway(node, stack.beam, conninfo, GatewayConfig(host="127.0.0.1", port=0))
        gateway.start()
        try:
            await _until(lambda: _true(gateway.url is not None), "the gateway listens")
            assert gateway.url is not None
            headers = {"Authorization": f"Bearer {stack.admin_token()}"}
            async with aiohttp.ClientSession(gateway.url) as http:

                async def status(path: str) -> int:
                    async with http.get(path, headers=headers) as r:
                        assert r.status != 500, await r.text()
                        return r.status

                await _until(lambda: _is(status("/readyz"), 200), "ready")
                async with http.get("/api/events", headers=headers) as stream:
                    await read_sse(stream, 1)
                    assert await asyncio.to_thread(stack.stop) == 0
                    await _until(lambda: _is(status("/readyz"), 503), "readyz 503 with the stack stopped")
                    async with http.get("/readyz") as r:
                        details = (await r.json())["error"]["details"]
                        assert details["cluster"] is False, details
                    async with http.get("/api/satellites", headers=headers) as r:
                        assert r.status == 503, await r.text()
                    await asyncio.to_thread(stack.start)
                    await _until(lambda: _is(status("/readyz"), 200), "ready again after the restart", bound_s=90)
                    async with asyncio.timeout(BOUND_S):
                        while True:
                            frames = await read_sse(stream, 1, timeout=BOUND_S)
                            if frames and frames[0].get("event") == "reset":
                                break
                async with http.get("/api/satellites", headers=headers) as r:
                    assert r.status == 200 and [s["id"] for s in (await r.json())["items"]] == ["demo-01", "demo-02"]
        finally:
            await gateway.close()


async def _true(value: bool) -> bool:
    return value
