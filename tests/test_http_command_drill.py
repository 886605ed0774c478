"""The commands drill over HTTP (issue 12): commands at a steady rate through the gateway while,
in turn, a sats node, the store node, the PostgreSQL postmaster and the gateway itself are killed
with SIGKILL. Every acknowledged command (202) ends in the ledger, done, applied exactly once;
every refused one (503) never runs; no answer is a 500 (or anything but 202 / 503)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from drills import clean_up, stack_pids
from stack import UpStack

from py_nodes.db import Database, EmbeddedServer

pytestmark = [pytest.mark.erlang, pytest.mark.slow]

SATS = ("demo-01", "demo-02", "demo-03")
PHASE_S = 4.0  # commands flow this long between two kills
RATE_HZ = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """Submits noop commands with an Idempotency-Key each; retries a key only when the answer was
    lost (connection error: it may have been accepted), never after a 503 (a refusal is final)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.headers = url, {"Authorization": f"Bearer {token}"}
        self.acked: dict[str, tuple[str, str]] = {}  # key -> (satellite, command id)
        self.refused: dict[str, str] = {}  # key -> satellite
        self.unexpected: list[tuple[int, str]] = []
        self.lost_answers = 0

    async def submit(self, http: aiohttp.ClientSession, sat: str) -> None:
        key = uuid.uuid4().hex
        headers = {**self.headers, "Idempotency-Key": key}
        deadline = time.monotonic() + 60
        while True:
            try:
                async with http.post(
                    f"{self.url}/api/satellites/{sat}/commands", json={"kind": "noop"}, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as reply:  # fmt: skip
                    body = await reply.text()
                    if reply.status == 202:
                        self.acked[key] = (sat, (await reply.json())["id"])
                    elif reply.status == 503:
                        self.refused[key] = sat
                    else:
                        self.unexpected.append((reply.status, body[:300]))
                    return
            except (aiohttp.ClientError, TimeoutError):
                self.lost_answers += 1  # the gateway is down or was killed mid-request: ask again
                assert time.monotonic() < deadline, f"no answer for {key} in 60 s"
                await asyncio.sleep(0.2)

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            n = 0
            while not stop.is_set():
                started = time.monotonic()
                await self.submit(http, SATS[n % len(SATS)])
                n += 1
                await asyncio.sleep(max(0.0, 1 / RATE_HZ - (time.monotonic() - started)))


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(600)
def test_commands_over_http_survive_kills_of_every_part(tmp_path: Path) -> None:
    port = _free_port()
    stack = UpStack(tmp_path / "home", "stellar_httpdrill", STELLAROPS_DEMO_SATELLITES="3", STELLAROPS_HTTP_PORT=str(port))
    stack.start()
    pids: dict[str, int] = {}
    try:
        url = f"http://127.0.0.1:{port}"
        client = Client(url, stack.admin_token())

        async def drill() -> dict[str, int]:
            nonlocal pids
            pids = await stack_pids(stack, "httpdrill_pids")
            by_role = {name.rsplit("_", 1)[-1].split("@")[0].rstrip("0123456789"): pid for name, pid in pids.items()}
            stop = asyncio.Event()
            flow = asyncio.create_task(client.run(stop))
            killed: dict[str, int] = {}
            postmaster = EmbeddedServer(stack.home / "pg").postmaster_pid()
            assert postmaster is not None
            for role, pid in (("sats", by_role["sats"]), ("store", by_role["store"]), ("postgres", postmaster),
                              ("gateway", by_role["gateway"])):  # fmt: skip
                await asyncio.sleep(PHASE_S)
                _kill(pid)
                killed[role] = pid
            await asyncio.sleep(2 * PHASE_S)  # and the gateway comes back: commands flow again
            acked_before = len(client.acked)
            await asyncio.sleep(PHASE_S)
            stop.set()
            await flow
            assert len(client.acked) > acked_before, "no command acknowledged after the gateway's restart"
            pids = await stack_pids(stack, "httpdrill_pids2")  # the restarted nodes, for clean-up
            return killed

        killed = asyncio.run(drill())
        assert set(killed) == {"sats", "store", "postgres", "gateway"}
        assert client.unexpected == [], client.unexpected
        assert len(client.acked) >= 100, (len(client.acked), len(client.refused))

        # Every acknowledged command is final (done) in the ledger, once; refused ones never run.
        server = stack.database()

        async def ledger() -> dict[str, tuple[str, str]]:
            async with Database(server.conninfo) as db:
                deadline = time.monotonic() + 120
                while True:
                    async with db.connection() as conn:
                        rows = await (
                            await conn.execute("SELECT idempotency_key, id::text, status FROM commands WHERE idempotency_key IS NOT NULL")
                        ).fetchall()
                    by_key = {r[0]: (r[1], r[2]) for r in rows}
                    if all(by_key.get(k, ("", ""))[1] == "done" for k in client.acked) or time.monotonic() > deadline:
                        return by_key
                    await asyncio.sleep(0.5)

        by_key = asyncio.run(ledger())
        for key, (sat, command_id) in client.acked.items():
            assert by_key.get(key) == (command_id, "done"), (key, sat, by_key.get(key))
        for key in client.refused:
            assert by_key.get(key, ("", "expired"))[1] == "expired", (key, by_key[key])

        # Applied exactly once: each satellite's applied ids (after the final checkpoint) are its
        # acknowledged commands, none twice and none of the refused.
        assert stack.stop(120) == 0

        async def applied() -> dict[str, list[str]]:
            server2 = EmbeddedServer(stack.home / "pg")
            server2.start()
            try:
                async with Database(server2.conninfo) as db, db.connection() as conn:
                    rows = await (await conn.execute("SELECT id, applied FROM satellites")).fetchall()
            finally:
                server2.stop()
            return {r[0]: [bytes(x).decode() for x in r[1]] for r in rows}

        applied_by_sat = asyncio.run(applied())
        for sat in SATS:
            wanted = {cid for s, cid in client.acked.values() if s == sat}
            ids = applied_by_sat[sat]
            assert len(ids) == len(set(ids)), f"{sat}: a command applied twice"
            assert len(wanted) <= 256  # the applied list keeps the newest 256
            assert set(ids) == wanted, (sat, len(ids), len(wanted))
        print(f"drill: {len(client.acked)} acknowledged, {len(client.refused)} refused, "
              f"{client.lost_answers} lost answers asked again; kills: {sorted(killed)}")  # fmt: skip
    finally:
        clean_up(stack, pids)
