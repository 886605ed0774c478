"""Watching the database that ``stellarops up`` runs or uses, and starting the embedded one again.

``EmbeddedWatch`` looks at the embedded server's postmaster every ``poll_s`` (0.5 s): when it is
gone (killed, crashed, stopped by hand) it starts the server again at once, then after 0.5 s, 1 s,
2 s... (at most 30 s) while starts fail or the server keeps dying; the backoff starts over once
the server has stayed up for a minute. ``ExternalWatch`` (``DATABASE_URL``) never starts anything:
it connects every ``poll_s`` (2 s) and reports whether the server answers.

Both keep a ``DatabaseHealth`` (what ``stellarops status`` shows under ``database``), log each
change of state, and call ``on_change`` with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

import psycopg

from .errors import EmbeddedServerError, describe_target
from .server import EmbeddedServer, postmaster_alive

__all__ = ["DatabaseHealth", "EmbeddedWatch", "ExternalWatch"]

log = logging.getLogger(__name__)

State = Literal["up", "restarting", "unreachable", "stopped"]
BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
STABLE_AFTER_S: Final = 60.0  # up this long: the next death starts the backoff over


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    """The database as ``up`` sees it. ``restarts``: how many times we started it again."""

    kind: Literal["embedded", "external"]
    target: str  # user@host:port/dbname, never a password
    state: State
    since: float  # Unix time of the last change of state
    restarts: int = 0
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


OnChange = Callable[[DatabaseHealth], None]


class _Watch:
    def __init__(self, health: DatabaseHealth, on_change: OnChange | None) -> None:
        self.health = health
        self._on_change = on_change
        self._is_up = asyncio.Event()
        self._is_up.set()

    def _set(self, state: State, **changes: Any) -> None:
        self.health = replace(self.health, state=state, since=time.time(), **changes)
        if state == "up":
            self._is_up.set()
        else:
            self._is_up.clear()
        if self._on_change is not None:
            self._on_change(self.health)

    async def wait_up(self, timeout_s: float) -> bool:
        """Wait until the database is up (at most ``timeout_s``); whether it is."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._is_up.wait(), timeout_s)
        return self._is_up.is_set()

    def stopped(self) -> None:
        self._set("stopped")


class EmbeddedWatch(_Watch):
    """Keeps the embedded server running; ``run()`` until cancelled (start the server first)."""

    def __init__(self, server: EmbeddedServer, *, poll_s: float = 0.5, on_change: OnChange | None = None) -> None:
        super().__init__(DatabaseHealth("embedded", describe_target(server.conninfo), "up", time.time()), on_change)
        self.server = server
        self.poll_s = poll_s

    async def run(self) -> None:
        failures = 0  # deaths and failed starts in a row (the backoff's exponent)
        pid = self.server.postmaster_pid()
        up_since = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_s)
            now_pid = self.server.postmaster_pid()
            if now_pid is not None and postmaster_alive(now_pid):
                if now_pid != pid:  # restarted by someone else (a drill's pg_ctl restart)
                    log.info("embedded PostgreSQL runs again as pid %d", now_pid)
                    pid = now_pid
                continue
            died_at = time.monotonic()
            if died_at - up_since >= STABLE_AFTER_S:
                failures = 0
            reason = f"the postmaster (pid {pid}) is gone" if pid is not None else "the server is not running"
            log.error("embedded PostgreSQL died (%s): starting it again", reason)
            self._set("restarting", last_error=reason)
            pid = await self._start_again(died_at, failures)
            failures += 1
            up_since = time.monotonic()

    async def _start_again(self, died_at: float, failures: int) -> int | None:
        """Start the server, with backoff while it fails; its new postmaster pid."""
        attempt = 0
        while True:
            delay = 0.0 if failures + attempt == 0 else min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (failures + attempt - 1))
            await asyncio.sleep(delay)
            attempt += 1
            try:
                started = await asyncio.to_thread(self.server.revive)
            except EmbeddedServerError as exc:
                problem = _start_problem(str(exc))
                log.error("embedded PostgreSQL did not start again (attempt %d): %s", attempt, problem)
                self._set("restarting", last_error=problem)
                continue
            took_s = time.monotonic() - died_at
            restarts = self.health.restarts + (1 if started else 0)
            log.warning(
                "embedded PostgreSQL is back %.1f s after we saw it die (%s)", took_s,
                f"restart {restarts}" if started else "started by someone else",
            )  # fmt: skip
            self._set("up", restarts=restarts)
            return self.server.postmaster_pid()


class ExternalWatch(_Watch):
    """Reports whether the server at ``conninfo`` answers; ``run()`` until cancelled."""

    def __init__(self, conninfo: str, *, poll_s: float = 2.0, on_change: OnChange | None = None) -> None:
        super().__init__(DatabaseHealth("external", describe_target(conninfo), "up", time.time()), on_change)
        self._conninfo = conninfo
        self.poll_s = poll_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            problem = await self.probe()
            if problem is None and self.health.state != "up":
                log.warning("the database %s answers again", self.health.target)
                self._set("up")
            elif problem is not None and problem != self.health.last_error:
                log.error("the database %s does not answer: %s", self.health.target, problem)
                self._set("unreachable", last_error=problem)

    async def probe(self, timeout_s: float = 2.0) -> str | None:
        """None when the server answers ``SELECT 1`` within ``timeout_s``; else why not."""
        try:
            async with await psycopg.AsyncConnection.connect(
                self._conninfo, connect_timeout=max(1, round(timeout_s)), autocommit=True
            ) as conn:
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout_s)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            return _first_problem(str(exc)) or type(exc).__name__
        return None


def _first_problem(message: str) -> str:
    """The first line of an error (the server log tail that follows is for the log, not status)."""
    return message.strip().split("\n", 1)[0][:300]


def _start_problem(message: str) -> str:
    """Why a start failed: the server log's last FATAL or PANIC line (with the line before it
    from the same process, which often names the cause), else the error's first line."""
    lines = message.splitlines()
    at = next((i for i in reversed(range(len(lines))) if "FATAL:" in lines[i] or "PANIC:" in lines[i]), None)
    if at is None:
        return _first_problem(message)
    problem = _log_message(lines[at])
    pid = _log_pid(lines[at])
    if at > 0 and pid is not None and _log_pid(lines[at - 1]) == pid:
        problem = f"{_log_message(lines[at - 1])}; {problem}"
    return problem[:500]


def _log_message(line: str) -> str:
    """``2026-... UTC [123] FATAL:  text`` -> ``FATAL: text``."""
    for level in ("PANIC:", "FATAL:", "ERROR:", "LOG:", "DETAIL:", "HINT:"):
        if level in line:
            return " ".join(line[line.index(level) :].split())
    return " ".join(line.split())


def _log_pid(line: str) -> str | None:
    start, end = line.find(" ["), line.find("] ")
    return line[start + 2 : end] if 0 <= start < end else None
