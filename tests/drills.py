"""What the stack drills share (tests/test_crash_recovery.py, tests/test_secrets_cmdline.py): the
processes of a running ``stellarops up``, waiting for processes to end, the satellites' last
checkpoint read from the stack's own PostgreSQL, and a clean-up of whatever a drill left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from stack import UpStack

from py_nodes.db import Database, EmbeddedServer
from py_nodes.erldist import Atom

A = Atom


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Polls until none of ``pids`` runs or the bound passes; the ones still running."""
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


async def stack_pids(stack: UpStack, ctl_name: str) -> dict[str, int]:
    """{node name: OS pid} of the BEAM node and every Python node it started (all up)."""
    async with stack.ctl(ctl_name) as ctl:
        deadline = time.monotonic() + 60
        while True:
            nodes = await stack.rpc(ctl, "stellar", "nodes", [])
            if all(n[A("status")] == "up" for n in nodes) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        beam_pid = int("".join(map(chr, await stack.rpc(ctl, "os", "getpid", []))))
    pids = {str(n[A("name")]): n[A("os_pid")] for n in nodes if n[A("name")] != stack.beam}
    assert all(isinstance(p, int) for p in pids.values()), nodes
    return {stack.beam: beam_pid, **pids}


async def checkpoints(conninfo: str) -> dict[str, tuple[str, float, datetime]]:
    """{satellite id: (mode, energy_pct, updated_at)} as checkpointed in the database."""
    async with Database(conninfo) as db, db.connection() as conn:
        cur = await conn.execute("SELECT id, mode, energy_pct, updated_at FROM satellites ORDER BY id")
        return {r[0]: (r[1], r[2], r[3]) for r in await cur.fetchall()}


def read_checkpoints(home: Path) -> dict[str, tuple[str, float, datetime]]:
    """The last checkpoint in the stack's embedded PostgreSQL; starts the server when it is down
    (and then stops it again), attaches to it when it runs."""
    server = EmbeddedServer(home / "pg")
    server.start()
    try:
        return asyncio.run(checkpoints(server.conninfo))
    finally:
        server.stop()  # only if started here


def clean_up(stack: UpStack, pids: dict[str, int]) -> None:
    """After a drill: stop what it left running, its own processes only (by pid). A running
    ``stellarops up`` is stopped gracefully first: it stops the cluster it started, whichever
    start of the drill that was (``pids`` may be those of an earlier one)."""
    if stack.proc is not None and stack.proc.poll() is None:
        with contextlib.suppress(Exception):
            stack.stop(90)
        if stack.proc.poll() is None:
            stack.proc.kill()
            stack.proc.wait(30)
    for pid in pids.values():
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    postmaster = EmbeddedServer(stack.home / "pg").postmaster_pid()
    if postmaster is not None and alive(postmaster):
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGINT)  # fast shutdown
        wait_gone([postmaster], 30)


def process_tree(main: int) -> list[int]:
    """``main`` and its direct children (a postmaster and its backends, checkpointer...)."""
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


def ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def sats_by_id(sats: list[Any]) -> dict[str, dict[Any, Any]]:
    return {s[A("id")].decode(): dict(s) for s in sats}
