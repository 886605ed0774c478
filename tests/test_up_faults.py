"""``stellarops up`` under faults, with real processes: its embedded PostgreSQL killed with
SIGKILL (started again without a person), a database that cannot start again, a clean stop after
either, and a second ``up`` on the same state folder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from stack import CLI, UpStack

from py_nodes.db import EmbeddedServer
from py_nodes.db.server import postmaster_alive
from py_nodes.erldist import Atom

A = Atom


class FaultStack(UpStack):
    """An ``UpStack`` whose whole output is kept (we look for tracebacks and for what stop says)."""

    def start(self, timeout_s: float = 90.0, stderr: IO[str] | int | None = None) -> FaultStack:
        self.lines: list[str] = []
        super().start(timeout_s, stderr=stderr)
        return self

    def failure_detail(self) -> str:
        return f"\n{self.stderr()}"

    def _drain(self, stream: Any) -> None:
        for line in stream:  # all of it, not a tail: stop's last words are looked for
            self.lines.append(line)

    def stderr(self) -> str:
        """All ``up`` wrote to its stderr (UpStack's default file beside the home folder)."""
        return self.default_stderr_path().read_text()

    def stdout(self) -> str:
        return "".join(self.lines)

    def postmaster(self) -> int | None:
        return EmbeddedServer(self.home / "pg").postmaster_pid()

    def status(self) -> dict[str, Any]:
        done = subprocess.run([*CLI, "status"], env=self.env, capture_output=True, text=True, timeout=60, check=True)
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def finish(self) -> None:
        """After a failed assertion: stop gracefully (a SIGKILL would leave the BEAM node behind)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def kill_postmaster(self) -> int:
        pid = self.postmaster()
        assert pid is not None and postmaster_alive(pid)
        os.kill(pid, signal.SIGKILL)
        return pid


def _http_status(url: str, timeout_s: float = 10.0) -> int | None:
    """The HTTP status of GET ``url``; None when it did not answer within ``timeout_s``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return None


def _wait_for(what: str, check: Any, timeout_s: float, every_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(every_s)


def _back(stack: FaultStack, dead: int) -> bool:
    pid = stack.postmaster()
    return pid is not None and pid != dead and postmaster_alive(pid)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_killed_postgres_is_started_again_and_stop_writes_the_checkpoint(tmp_path: Path) -> None:
    """kill -9 of the postmaster: back within 5 s, counted in `status`, /readyz 200 after; then
    a second kill -9 and Ctrl-C at once: the final checkpoint is written, exit 0, no traceback."""
    stack = FaultStack(tmp_path / "home", "stellar_pgkill", STELLAROPS_DEMO_SATELLITES="4").start()
    ready = stack.gateway_url() + "/readyz"
    try:
        assert _http_status(ready) == 200
        dead = stack.kill_postmaster()
        killed_at = time.monotonic()
        seen: list[int | None] = []
        while not _back(stack, dead):
            seen.append(_http_status(ready, timeout_s=1.0))
            assert time.monotonic() - killed_at < 30, f"PostgreSQL not back after 30 s: {stack.stderr()}"
            time.sleep(0.02)
        back_s = time.monotonic() - killed_at
        # An outage this short may end before the gateway notices it: /readyz 503 while the
        # database is away is asserted below, where it stays away.
        print(f"PostgreSQL back {back_s:.2f} s after kill -9; /readyz meanwhile: {sorted(set(seen), key=str)} ({len(seen)} requests)")
        assert back_s < 5.0, f"PostgreSQL back only after {back_s:.1f} s"
        # The gateway's pool reconnects on its own: ready again without a person.
        _wait_for("/readyz 200 after the restart", lambda: _http_status(ready) == 200, 60, every_s=0.5)
        assert 500 not in seen
        # The watcher marks the server up once its own probe connects, which may come a moment
        # after the gateway's pool did.
        _wait_for("status: database up", lambda: stack.status()["database"]["state"] == "up", 30, every_s=0.2)
        database = stack.status()["database"]
        assert database["kind"] == "embedded" and database["state"] == "up" and database["restarts"] == 1
        assert f"(pid {dead}) is gone" in database["last_error"]
        assert "embedded PostgreSQL died" in stack.stderr() and "is back" in stack.stderr()

        async def science() -> None:
            # Commands go through the store node, whose connections come back on their own.
            async with stack.ctl("pgkill") as ctl:
                deadline = time.monotonic() + 60
                while (reply := await stack.rpc(ctl, "stellar", "set_mode", [b"demo-01", A("science")])) != "ok":
                    assert time.monotonic() < deadline, reply
                    await asyncio.sleep(0.5)

        asyncio.run(science())
        # Killed again, and Ctrl-C right away: the stop waits for the database to be back, then
        # the BEAM node writes its last checkpoint through the store node.
        stack.kill_postmaster()
        assert stack.proc is not None
        stack.proc.send_signal(signal.SIGINT)
        rc = stack.proc.wait(120)
    finally:
        stack.finish()
    time.sleep(0.5)  # the stdout reader thread copies the last lines
    assert rc == 0, stack.stderr()
    assert "Traceback" not in stack.stderr() and "EmbeddedServerError" not in stack.stderr()
    assert "stellarops: final checkpoint written (checkpointed 4 satellite(s) at stop)" in stack.stdout()
    assert "could not be written" not in stack.stderr() and "cannot be written" not in stack.stderr()
    # The database was stopped with the stack, and it holds the state from the final checkpoint.
    assert stack.postmaster() is None
    with EmbeddedServer(stack.home / "pg") as server, psycopg.connect(server.conninfo) as conn:
        row = conn.execute("SELECT mode FROM satellites WHERE id = 'demo-01'").fetchone()
    assert row == ("science",)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_database_that_cannot_start_again_is_reported_and_stop_says_so(tmp_path: Path) -> None:
    """A server that fails every restart: `status` says restarting with the reason, the watcher
    keeps trying with backoff, and SIGTERM still stops everything with exit 0 and a clear line
    that the final checkpoint could not be written."""
    stack = FaultStack(tmp_path / "home", "stellar_pgdown", STELLAROPS_DEMO_SATELLITES="2").start()
    try:
        with (stack.home / "pg" / "postgresql.conf").open("a") as conf:
            conf.write("\nstellarops_bogus_parameter = 1\n")  # every start now fails: FATAL
        stack.kill_postmaster()

        def failing() -> dict[str, Any] | None:
            database: dict[str, Any] = stack.status()["database"]
            error = database.get("last_error") or ""
            return database if database["state"] == "restarting" and "stellarops_bogus_parameter" in error else None

        database = _wait_for("status: restarting, with the reason", failing, 60, every_s=0.5)
        ready = stack.gateway_url() + "/readyz"
        _wait_for("/readyz 503 while the database cannot start", lambda: _http_status(ready) == 503, 60, every_s=0.5)
        assert database["restarts"] == 0
        # Backoff: a handful of attempts in a few seconds, not one per poll.
        time.sleep(4)
        attempts = stack.stderr().count("did not start again")
        assert 2 <= attempts <= 6, stack.stderr()
        assert stack.proc is not None
        stopped_at = time.monotonic()
        stack.proc.send_signal(signal.SIGTERM)
        rc = stack.proc.wait(120)
        stop_s = time.monotonic() - stopped_at
    finally:
        stack.finish()
    err = stack.stderr()
    print(f"stop with the database down took {stop_s:.1f} s")
    assert rc == 0, err
    assert "Traceback" not in err and "EmbeddedServerError" not in err
    assert 'stellarops: the database is down (LOG: unrecognized configuration parameter "stellarops_bogus_parameter"' in err
    assert "the final checkpoint cannot be written" in err
    assert f"stellarops: {stack.beam} stopped" in stack.stdout()
    assert not (stack.home / "up-status.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_second_up_on_the_same_state_folder_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    """While the first `up` runs, and while it is still stopping, a second one is refused."""
    first = FaultStack(tmp_path / "home", "stellar_owner", STELLAROPS_DEMO_SATELLITES="2").start()
    assert first.proc is not None
    try:
        postmaster = first.postmaster()
        # Another node name: without the lock it would get past the name check and attach to
        # the same database, then run the same satellites a second time.
        second_env = dict(first.env, STELLAROPS_NODE_NAME="stellar_intruder@127.0.0.1")
        second = subprocess.run([*CLI, "up"], env=second_env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"already running: pid {first.proc.pid}, node {first.beam}" in second.stderr
        assert "attaching" not in second.stderr and "Traceback" not in second.stderr
        assert first.postmaster() == postmaster
        report = first.status()
        assert report["satellites"]["total"] == 2 and report["database"]["state"] == "up"
        # While the first is stopping (its BEAM node held in SIGSTOP), still refused.
        beam_pid = next(n["os_pid"] for n in report["nodes"] if n["role"] == "beam")
        os.kill(beam_pid, signal.SIGSTOP)
        try:
            first.proc.send_signal(signal.SIGTERM)
            time.sleep(1)
            assert first.proc.poll() is None
            again = subprocess.run([*CLI, "up"], env=second_env, capture_output=True, text=True, timeout=60)
            assert again.returncode == 2 and f"already running: pid {first.proc.pid}" in again.stderr
        finally:
            os.kill(beam_pid, signal.SIGCONT)
        assert first.proc.wait(120) == 0
    finally:
        first.finish()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_external_database_is_reported_and_never_started(tmp_path: Path, empty_db_conninfo: str) -> None:
    """With DATABASE_URL, `up` starts no server of its own; status reports the external one."""
    stack = FaultStack(tmp_path / "home", "stellar_extdb", STELLAROPS_DEMO_SATELLITES="2", DATABASE_URL=empty_db_conninfo).start()
    try:
        database = stack.status()["database"]
        assert database["kind"] == "external" and database["state"] == "up" and database["restarts"] == 0
        assert "password" not in json.dumps(database)
        assert not (stack.home / "pg").exists()
        assert stack.proc is not None
        stack.proc.send_signal(signal.SIGTERM)
        rc = stack.proc.wait(120)
    finally:
        stack.finish()
    time.sleep(0.5)
    assert rc == 0 and "Traceback" not in stack.stderr()
    assert "stellarops: final checkpoint written (checkpointed 2 satellite(s) at stop)" in stack.stdout()
    assert _answers_select(empty_db_conninfo)  # still there: not ours to stop


def _answers_select(conninfo: str) -> bool:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT count(*) FROM satellites").fetchone() == (2,)
