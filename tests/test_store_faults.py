"""The store node and PostgreSQL under kill -9, through the whole stack (``stellarops up``):
telemetry has no gap across either kill (nothing dropped, counted or not), commands whose results
the dead store never wrote are delivered again and end done once, commands and satellites refused
while PostgreSQL is down never exist, and a second cluster on the same database stands by (no
satellite runs twice) until the first stops, then takes over. (Issue 12 items 4, 6, 12; issue 20
coverage gaps 2 and 3.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from stack import UpStack

from py_nodes.db import Database, EmbeddedServer
from py_nodes.erldist import Atom, Node

A = Atom
pytestmark = [pytest.mark.erlang, pytest.mark.slow]
TICK_S = 1.0  # the stack's default tick: one telemetry row per satellite per second
# A lost tick leaves a 2 s hole; scheduling jitter on a loaded machine a few hundred ms.
MAX_GAP_S = 1.8 * TICK_S
SATS = [b"demo-01", b"demo-02", b"demo-03"]


async def until(what: str, check: Any, timeout_s: float = 60.0, every_s: float = 0.2) -> Any:
    """Polls the coroutine function ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(every_s)


async def node_of_role(stack: UpStack, ctl: Node, role: str) -> dict[Any, Any]:
    [node] = stack.py_nodes(await stack.rpc(ctl, "stellar", "nodes", []), role)
    return dict(node)


async def all_running(stack: UpStack, ctl: Node) -> bool:
    sats = await stack.rpc(ctl, "stellar", "sats", [])
    return sorted(s[A("id")] for s in sats if s[A("status")] == "running") == SATS


async def store_status(stack: UpStack, ctl: Node) -> dict[Any, Any]:
    return dict(await stack.rpc(ctl, "stellar_store", "status", []))


async def kill_store(stack: UpStack, ctl: Node) -> None:
    """kill -9 of the store node; returns when BEAM restored from its successor."""
    before = (await store_status(stack, ctl))[A("restores")]
    store = await node_of_role(stack, ctl, "store")
    os.kill(store[A("os_pid")], signal.SIGKILL)

    async def restored() -> bool:
        return bool((await store_status(stack, ctl))[A("restores")] > before)

    await until("BEAM restores from the restarted store node", restored)


async def drained(stack: UpStack, ctl: Node) -> bool:
    telemetry = (await store_status(stack, ctl))[A("telemetry")]
    return bool(telemetry[A("unconfirmed_batches")] == 0)


async def gaps(db: Database, since: datetime, until_: datetime) -> dict[str, tuple[int, float]]:
    """Per satellite: rows in [since, until_] and the longest time between two of them, s."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT satellite_id, count(*), coalesce(extract(epoch FROM max(gap)), 0)::float8 FROM ("
            " SELECT satellite_id, time - lag(time) OVER (PARTITION BY satellite_id ORDER BY time) AS gap"
            " FROM telemetry WHERE time BETWEEN %s AND %s) g GROUP BY satellite_id ORDER BY 1",
            (since, until_),
        )
        return {row[0]: (row[1], row[2]) for row in await cur.fetchall()}


def assert_no_gap(found: dict[str, tuple[int, float]], window_s: float) -> None:
    assert sorted(found) == [s.decode() for s in SATS], found
    for sat_id, (rows, longest_s) in found.items():
        assert longest_s < MAX_GAP_S, f"{sat_id}: a {longest_s:.2f} s hole in its telemetry: {found}"
        assert rows >= window_s / TICK_S - 2, f"{sat_id}: {rows} rows in {window_s:.0f} s: {found}"


def assert_nothing_dropped(status: dict[Any, Any]) -> None:
    dropped = status[A("telemetry")][A("dropped")]
    assert (dropped[A("buffer_full")], dropped[A("rejected")]) == (0, 0), status


def now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.timeout(400)
def test_store_node_kill_loses_no_telemetry_and_redelivers_queued_commands(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_storekill", STELLAROPS_DEMO_SATELLITES="3").start()

    async def drill() -> None:
        server = stack.database()
        async with stack.ctl("storekill") as ctl, Database(server.conninfo) as db:
            await until("the satellites run", lambda: all_running(stack, ctl))
            # 1. Telemetry across a kill -9 of the store node: every tick of every satellite lands.
            await asyncio.sleep(3 * TICK_S)
            since = now()
            await asyncio.sleep(3 * TICK_S)
            await kill_store(stack, ctl)
            await asyncio.sleep(4 * TICK_S)
            until_ = now()
            await asyncio.sleep(TICK_S)
            await until("every telemetry batch confirmed", lambda: drained(stack, ctl))
            assert_no_gap(await gaps(db, since, until_), (until_ - since).total_seconds())
            status = await store_status(stack, ctl)
            assert_nothing_dropped(status)
            assert status[A("telemetry")][A("rows")] > 0 and status[A("owner")] is True
            # The same counters on the gateway's /metrics (no authentication: Prometheus scrapes it).
            async with aiohttp.ClientSession() as http, http.get(stack.gateway_url() + "/metrics") as reply:
                assert reply.status == 200
                exposition = await reply.text()
            metrics = dict(re.findall(r"^(stellar_telemetry_\S+) (\S+)$", exposition, re.MULTILINE))
            assert float(metrics["stellar_telemetry_rows_total"]) > 0, exposition
            assert float(metrics['stellar_telemetry_dropped_total{reason="buffer_full"}']) == 0
            assert float(metrics['stellar_telemetry_dropped_total{reason="rejected"}']) == 0
            assert "stellar_telemetry_buffered_rows" in metrics

            # 2. Commands whose outcome the store never wrote: the sats node is paused (the actor
            # gets them later), the store is killed; its successor has them queued or sent, BEAM
            # delivers them again, and each ends done, applied once.
            target = b"demo-01"
            sat = dict((await stack.rpc(ctl, "stellar", "sat", [target]))[1])
            nodes = await stack.rpc(ctl, "stellar", "nodes", [])
            sats_pid = next(n[A("os_pid")] for n in nodes if n[A("name")] == sat[A("node")])
            acknowledged: list[str] = []
            os.kill(sats_pid, signal.SIGSTOP)
            try:
                for i in range(6):
                    mode = A("standby") if i % 2 == 0 else A("nominal")
                    ok, command_id = await stack.rpc(ctl, "stellar", "command", [target, A("set_mode"), {A("mode"): mode}])
                    assert ok == "ok", command_id
                    acknowledged.append(command_id.decode())
                store = await node_of_role(stack, ctl, "store")
                before = (await store_status(stack, ctl))[A("restores")]
                os.kill(store[A("os_pid")], signal.SIGKILL)
            finally:
                os.kill(sats_pid, signal.SIGCONT)

            async def restored() -> bool:
                return bool((await store_status(stack, ctl))[A("restores")] > before)

            await until("BEAM restores from the restarted store node", restored)

            async def all_done() -> bool:
                async with db.connection() as conn:
                    cur = await conn.execute("SELECT status FROM commands WHERE id::text = ANY(%s)", (acknowledged,))
                    return sorted(r[0] for r in await cur.fetchall()) == ["done"] * len(acknowledged)

            await until("every acknowledged command done", all_done)
            redelivered = [int(m) for m in re.findall(r"(\d+) command\(s\) delivered again", "".join(stack.log_tail))]
            assert redelivered and redelivered[-1] >= 1, list(stack.log_tail)[-40:]

            async def applied_once() -> bool:
                entry = await stack.rpc(ctl, "stellar_catalog", "lookup", [target])
                applied = [c.decode() for c in entry[1][A("state")][A("applied")]]
                return applied[: len(acknowledged)] == list(reversed(acknowledged))

            await until("the actor applied each command once, in order", applied_once)

    try:
        asyncio.run(drill())
    finally:
        assert stack.stop() == 0


@pytest.mark.timeout(400)
def test_postgresql_kill_and_freeze_lose_no_telemetry_and_refusals_never_run(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_pgkill", STELLAROPS_DEMO_SATELLITES="3").start()

    async def drill() -> None:
        server = stack.database()
        async with stack.ctl("pgkill") as ctl:
            await until("the satellites run", lambda: all_running(stack, ctl))
            await asyncio.sleep(3 * TICK_S)
            since = now()
            await asyncio.sleep(3 * TICK_S)
            # 1. kill -9 of the postmaster: it comes back (the stack's watcher), telemetry waits.
            pid = server.postmaster_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(TICK_S)
            await _database_back(server)
            # 2. A database that stops answering (every server process stopped, as a hung host):
            # a new satellite and commands are refused (4 s), and must never exist afterwards,
            # even though their inserts are still waiting in the store when it answers again.
            frozen = _stop_all(_server_processes(server))
            try:
                spec = {A("id"): b"outage-1", A("name"): b"Outage 1"}
                created = await stack.rpc(ctl, "stellar", "create", [spec], timeout=30)
                refused_keys: list[bytes] = []
                for i in range(3):
                    key = f"outage-{i}".encode()
                    reply = await stack.rpc(
                        ctl, "stellar", "command", [b"demo-02", A("noop"), {}, {A("idempotency_key"): key}], timeout=30
                    )
                    assert reply == (A("error"), A("store_unavailable")), reply
                    refused_keys.append(key)
            finally:
                _continue_all(frozen)
            assert created == (A("error"), A("store_unavailable")), created
            await asyncio.sleep(4 * TICK_S)
            until_ = now()
            await asyncio.sleep(TICK_S)
            await until("every telemetry batch confirmed", lambda: drained(stack, ctl), timeout_s=120)
            # Whatever the store still had queued is answered by now: a restart of the store node
            # (restore and redelivery) must not bring any of it to life either.
            await kill_store(stack, ctl)
            async with Database(server.conninfo) as db:
                async with db.connection() as conn:
                    cur = await conn.execute(
                        "SELECT idempotency_key, status FROM commands WHERE idempotency_key = ANY(%s)",
                        ([k.decode() for k in refused_keys],),
                    )
                    live = [(k, st) for k, st in await cur.fetchall() if st != "expired"]
                    assert live == [], live
                    satellite = await (
                        await conn.execute("SELECT id FROM satellites WHERE id = 'outage-1' AND deleted_at IS NULL")
                    ).fetchone()
                    assert satellite is None
                assert (await stack.rpc(ctl, "stellar", "sat", [b"outage-1"]))[0] == "error"
                # A retry with the same key after the refusal is accepted, once.
                for key in refused_keys:
                    await until("the retry is accepted", lambda key=key: _accepted(stack, ctl, key))
                async with db.connection() as conn:
                    cur = await conn.execute(
                        "SELECT count(*) FROM commands WHERE idempotency_key = ANY(%s) AND status <> 'expired'",
                        ([k.decode() for k in refused_keys],),
                    )
                    assert await cur.fetchone() == (len(refused_keys),)
                assert_no_gap(await gaps(db, since, until_), (until_ - since).total_seconds())
            assert_nothing_dropped(await store_status(stack, ctl))

    try:
        asyncio.run(drill())
    finally:
        assert stack.stop() == 0


def _server_processes(server: EmbeddedServer) -> list[int]:
    """The postmaster and its children (backends, checkpointer, ...)."""
    postmaster = server.postmaster_pid()
    assert postmaster is not None
    found = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                found.append(int(entry.name))
    return found


def _stop_all(pids: list[int]) -> list[int]:
    """SIGSTOP each pid that still exists: a backend can end between the listing and the stop
    (its client closed), which leaves nothing to freeze. The postmaster itself must be stopped."""
    stopped = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            continue
        stopped.append(pid)
    assert pids[0] in stopped, "the postmaster is gone"
    return stopped


def _continue_all(pids: list[int]) -> None:
    """SIGCONT the stopped pids, backends before the postmaster: a backend that was already
    exiting when stopped is a zombie the postmaster reaps once it runs, and a pid reaped needs
    no continuing (a run here failed with ProcessLookupError)."""
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def _accepted(stack: UpStack, ctl: Node, key: bytes) -> tuple[Any, Any] | None:
    reply = await stack.rpc(ctl, "stellar", "command", [b"demo-02", A("noop"), {}, {A("idempotency_key"): key}], timeout=30)
    return (reply[0], reply[1]) if reply[0] == "ok" else None


async def _database_back(server: EmbeddedServer) -> None:
    """The conninfo once PostgreSQL answers again: the stack's watcher restarts it; if nothing
    has after 20 s, the test does (the drill is about the store, not the watcher)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            async with Database(server.conninfo, max_size=1, timeout_s=2) as db:
                await db.ping()
                return
        except Exception:
            if time.monotonic() > deadline:
                await asyncio.to_thread(server.revive)
                deadline = time.monotonic() + 60
            await asyncio.sleep(0.5)


@pytest.mark.timeout(400)
def test_a_second_cluster_on_the_same_database_stands_by_until_the_first_stops(tmp_path: Path, db_conninfo: str) -> None:
    # One PostgreSQL outside both clusters (DATABASE_URL), so that it outlives the first.
    first = UpStack(tmp_path / "a", "stellar_owner_a", STELLAROPS_DEMO_SATELLITES="3", DATABASE_URL=db_conninfo).start()
    second: UpStack | None = None

    async def check() -> None:
        nonlocal second
        second = UpStack(tmp_path / "b", "stellar_owner_b", DATABASE_URL=db_conninfo).start()
        async with first.ctl("owner_a") as ctl_a, second.ctl("owner_b") as ctl_b:
            await until("the first cluster's satellites run", lambda: all_running(first, ctl_a))
            status_b = await store_status(second, ctl_b)
            assert status_b[A("owner")] is False and status_b[A("restores")] == 0, status_b
            assert b"stellar_owner_a@127.0.0.1" in bytes(status_b[A("not_owner_reason")]), status_b
            assert (await store_status(first, ctl_a))[A("owner")] is True
            # No satellite runs twice: the standby runs none, and its store delivers nothing.
            await asyncio.sleep(3 * TICK_S)
            assert await second.rpc(ctl_b, "stellar", "sats", []) == []
            refused = await second.rpc(ctl_b, "stellar", "command", [b"demo-01", A("noop"), {}])
            assert refused[0] == "error", refused
        assert first.stop() == 0
        async with second.ctl("owner_b2") as ctl_b:

            async def took_over() -> bool:
                status = await store_status(second, ctl_b)
                return bool(status[A("owner")] is True and status[A("restores")] >= 1)

            await until("the second cluster takes over", took_over)
            await until("its satellites run", lambda: all_running(second, ctl_b))
            async with Database(db_conninfo) as db, db.connection() as conn:
                holder = await (await conn.execute("SELECT holder FROM cluster_owner")).fetchone()
            assert holder is not None and holder[0].startswith("stellar_owner_b@127.0.0.1"), holder

    try:
        asyncio.run(check())
    finally:
        if second is not None:
            assert second.stop() == 0
        if first.proc is not None and first.proc.poll() is None:
            first.stop()
