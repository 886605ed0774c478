"""The embedded PostgreSQL after a real kill -9 of its postmaster, and the watchers of
py_nodes/db/watch.py (the embedded server started again; an external server only reported)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from py_nodes.db import EmbeddedServer
from py_nodes.db.server import postmaster_alive
from py_nodes.db.watch import DatabaseHealth, EmbeddedWatch, ExternalWatch


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path / "pg", durable=False)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _answers(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def _kill_postmaster(server: EmbeddedServer) -> int:
    pid = server.postmaster_pid()
    assert pid is not None and postmaster_alive(pid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while postmaster_alive(pid):  # gone, or a zombie (an init that does not reap orphans)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return pid


def test_the_page_cache_is_the_size_asked_for(tmp_path: Path) -> None:
    """shared_buffers from EmbeddedServer(shared_buffers_mb=...) (STELLAROPS_PG_SHARED_BUFFERS_MB
    for `stellarops up`), written at each start: a restart with another size takes it."""
    for size_mb, shown in ((48, "48MB"), (160, "160MB")):
        srv = EmbeddedServer(tmp_path / "pg", durable=False, shared_buffers_mb=size_mb)
        srv.start()
        try:
            with psycopg.connect(srv.conninfo) as conn:
                assert conn.execute("SHOW shared_buffers").fetchone() == (shown,)
        finally:
            srv.stop()


def test_a_durable_server_checkpoints_by_time_and_a_test_server_does_not_sync(tmp_path: Path) -> None:
    """Durable (production): fsync and full-page writes on, checkpoints every 15 min or 8 GB of
    WAL (not PostgreSQL's 1 GB: telemetry at 100,000 satellites forced one every 15 s, most of the
    WAL then full-page images). durable=False (tests): no fsync, no full-page writes."""
    settings = "SELECT current_setting('fsync'), current_setting('full_page_writes'),"
    settings += " current_setting('max_wal_size'), current_setting('checkpoint_timeout')"
    for durable, expected in ((True, ("on", "on", "8GB", "15min")), (False, ("off", "off", "1GB", "5min"))):
        srv = EmbeddedServer(tmp_path / f"pg-{durable}", durable=durable)
        srv.start()
        try:
            with psycopg.connect(srv.conninfo) as conn:
                assert conn.execute(settings).fetchone() == expected
        finally:
            srv.stop()


def test_stop_after_the_server_was_killed_is_not_an_error(server: EmbeddedServer) -> None:
    """It used to raise EmbeddedServerError ("could not send stop signal"): a traceback at Ctrl-C."""
    _kill_postmaster(server)
    server.stop()  # nothing to stop: no exception
    assert not server.started_here


def test_revive_after_kill_9_despite_the_stale_lock_files(server: EmbeddedServer) -> None:
    dead = _kill_postmaster(server)
    assert (server.data_dir / "postmaster.pid").exists()  # left behind by the killed postmaster
    deadline = time.monotonic() + 60
    while True:  # its backends may hold the shared memory for a moment: retried, as the watcher does
        try:
            assert server.revive() is True
            break
        except Exception:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert server.postmaster_pid() != dead and _answers(server.conninfo)
    assert server.revive() is False  # running: nothing to do


async def test_watch_starts_a_killed_server_again(server: EmbeddedServer) -> None:
    seen: list[DatabaseHealth] = []
    watch = EmbeddedWatch(server, on_change=seen.append)
    task = asyncio.create_task(watch.run())
    try:
        for round_ in (1, 2):
            dead = await asyncio.to_thread(_kill_postmaster, server)
            killed_at = time.monotonic()
            while not (watch.health.state == "up" and watch.health.restarts == round_):
                assert time.monotonic() - killed_at < 30, watch.health
                await asyncio.sleep(0.05)
            back_s = time.monotonic() - killed_at
            print(f"round {round_}: back {back_s:.2f} s after kill -9")
            assert back_s < 5.0
            assert server.postmaster_pid() != dead and await asyncio.to_thread(_answers, server.conninfo)
            assert watch.health.last_error == f"the postmaster (pid {dead}) is gone"
    finally:
        task.cancel()
    states = [h.state for h in seen]
    assert states == ["restarting", "up", "restarting", "up"], seen


async def test_external_watch_reports_without_starting_anything(db_conninfo: str, tmp_path: Path) -> None:
    watch = ExternalWatch(db_conninfo)
    assert await watch.probe() is None
    # A server that is not there (no socket in this folder): reported, with why.
    nowhere = make_conninfo(db_conninfo, host=str(tmp_path), port="5999")
    seen: list[DatabaseHealth] = []
    away = ExternalWatch(nowhere, poll_s=0.1, on_change=seen.append)
    problem = await away.probe()
    assert problem is not None and "No such file or directory" in problem
    task = asyncio.create_task(away.run())
    try:
        deadline = time.monotonic() + 30
        while away.health.state != "unreachable":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert away.health.kind == "external" and away.health.last_error == problem
    assert [h.state for h in seen] == ["unreachable"]  # logged once, not at every probe
    assert not list(tmp_path.iterdir())  # nothing was started there
