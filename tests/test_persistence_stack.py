"""Persistence through the whole stack (``stellarops up``: BEAM, sats, orbital and store nodes,
embedded PostgreSQL): restarts lose nothing, and the command ledger holds under faults."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from stack import UpStack

from py_nodes.db import CommandLedger, Database, Satellites, Stations
from py_nodes.erldist import Atom, Node

A = Atom
pytestmark = [pytest.mark.erlang, pytest.mark.slow]


async def _wait_done(db: Database, ids: list[str], timeout_s: float) -> dict[str, str]:
    """Poll the ledger until every id is final; {id: status}."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with db.connection() as conn:
            rows = await (
                await conn.execute("SELECT id::text, status FROM commands WHERE id::text = ANY(%s)", (ids,))
            ).fetchall()
        statuses = {row[0]: row[1] for row in rows}
        if all(statuses.get(i) in ("done", "failed") for i in ids) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.2)


async def _sat(stack: UpStack, ctl: Node, sat_id: bytes) -> dict[Any, Any]:
    ok, sat = await stack.rpc(ctl, "stellar", "sat", [sat_id])
    assert ok == "ok"
    return dict(sat)


def test_restart_of_the_whole_stack_loses_nothing(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_persist", STELLAROPS_DEMO_SATELLITES="6")

    async def first_run() -> tuple[str, int]:
        async with stack.ctl("persist_a") as ctl:
            assert await stack.rpc(ctl, "stellar", "set_mode", [b"demo-02", A("science")]) == "ok"
            ok, command_id = await stack.rpc(
                ctl, "stellar", "command", [b"demo-03", A("downlink"), {}, {A("idempotency_key"): b"pass-1"}]
            )
            assert ok == "ok"
            await asyncio.sleep(2.5)  # telemetry of a few ticks
            sat2 = await _sat(stack, ctl, b"demo-02")
            return command_id.decode(), sat2[A("updated_at")]

    stack.start()
    assert "satellites:   6 (demo constellation of 6 seeded now)" in stack.banner
    command_id, seen_at_ms = asyncio.run(first_run())
    assert stack.stop() == 0

    stack.start()
    assert "satellites:   6 (restored)" in stack.banner

    async def second_run() -> None:
        async with stack.ctl("persist_b") as ctl:
            sats = await stack.rpc(ctl, "stellar", "sats", [])
            assert [s[A("id")] for s in sats] == [f"demo-{i:02d}".encode() for i in range(1, 7)]
            sat2, sat3 = await _sat(stack, ctl, b"demo-02"), await _sat(stack, ctl, b"demo-03")
            assert sat2[A("mode")] == "science" and sat3[A("mode")] == "downlink"
            # Resumed from the checkpoint written at the clean stop, not from the seed.
            assert sat2[A("updated_at")] >= seen_at_ms
            # The same idempotency key after the restart: the original command, not a second one.
            again = await stack.rpc(ctl, "stellar", "command", [b"demo-03", A("downlink"), {}, {A("idempotency_key"): b"pass-1"}])
            assert again == (A("ok"), command_id.encode())
        server = stack.database()
        async with Database(server.conninfo) as db:
            history = await CommandLedger(db).history("demo-03")
            assert [(str(c.id), c.kind, c.status) for c in history] == [(command_id, "downlink", "done")]
            assert [c.status for c in await CommandLedger(db).history("demo-02")] == ["done"]
            async with db.connection() as conn:
                row = await (
                    await conn.execute(
                        "SELECT count(*), count(DISTINCT satellite_id), count(lat_deg) FROM telemetry"
                    )
                ).fetchone()
            assert row is not None and row[0] >= 6 * 2 and row[1] == 6 and row[2] == row[0]
            assert len(await Stations(db).list_all()) == 7
            record = await Satellites(db).get("demo-02")
            assert record is not None and record.state.mode == "science" and record.version > 1

    try:
        asyncio.run(second_run())
    finally:
        assert stack.stop() == 0


def test_fault_drill_every_acknowledged_command_done_exactly_once(tmp_path: Path) -> None:
    """1,000 commands to one satellite; meanwhile its sats node is killed (kill -9) and
    PostgreSQL is restarted. Every acknowledged command ends `done`, once; none is applied twice."""
    stack = UpStack(tmp_path / "home", "stellar_drill", STELLAROPS_DEMO_SATELLITES="2").start()
    target = b"demo-01"

    async def drill() -> None:
        server = stack.database()
        async with stack.ctl("drill") as ctl:
            deadline = time.monotonic() + 20
            while (sat := await _sat(stack, ctl, target))[A("status")] != "running":
                assert time.monotonic() < deadline, f"{target!r} not running: {sat}"
                await asyncio.sleep(0.1)
            host = sat[A("node")]
            nodes = await stack.rpc(ctl, "stellar", "nodes", [])
            victim = next(n[A("os_pid")] for n in nodes if n[A("name")] == host)
            acknowledged: list[str] = []
            refused: list[Any] = []
            for i in range(1000):
                if i == 300:
                    os.kill(victim, signal.SIGKILL)
                if i == 600:
                    await asyncio.to_thread(server.restart)
                mode = A("standby") if i % 2 == 0 else A("nominal")
                reply = await stack.rpc(ctl, "stellar", "command", [target, A("set_mode"), {A("mode"): mode}], timeout=15)
                if reply[0] == "ok":
                    acknowledged.append(reply[1].decode())
                else:
                    refused.append(reply[1])
            # While the database restarted, commands were refused, never acknowledged.
            assert all(r == "store_unavailable" for r in refused), refused
            assert len(acknowledged) >= 900
            async with Database(server.conninfo) as db:
                statuses = await _wait_done(db, acknowledged, 60)
                assert sorted(statuses.values()) == ["done"] * len(acknowledged)
                async with db.connection() as conn:
                    total = await (await conn.execute("SELECT count(*) FROM commands WHERE satellite_id = 'demo-01'")).fetchone()
                assert total == (len(acknowledged),)  # one ledger row each: no duplicates
            # Applied once each, in submission order: the newest 256 ids of the state are exactly
            # the last 256 acknowledged (a command applied twice would show up again).
            deadline = time.monotonic() + 10
            while True:
                applied = await _applied(stack, ctl, target)
                if applied[:1] == [acknowledged[-1]] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert applied == list(reversed(acknowledged))[: len(applied)]
            assert len(applied) == min(256, len(acknowledged)) and len(set(applied)) == len(applied)
            # The killed node came back under its supervisor.
            after = {n[A("name")]: n for n in await stack.rpc(ctl, "stellar", "nodes", [])}
            assert after[host][A("status")] == "up" and after[host][A("restarts")] >= 1

    try:
        asyncio.run(drill())
    finally:
        assert stack.stop() == 0


async def _applied(stack: UpStack, ctl: Node, sat_id: bytes) -> list[str]:
    """The satellite's applied command ids, newest first, as its shadow last heard them."""
    entry = await stack.rpc(ctl, "stellar_catalog", "lookup", [sat_id])
    assert entry[0] == "ok"
    return [c.decode() for c in entry[1][A("state")][A("applied")]]
