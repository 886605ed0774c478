"""`up` prepares its database (migrate, seed, admin token) even when the database answers only
some seconds after `up` started (hosts and their database often start together: a container's
first connect took over 5 s on busy shared cores, and `up` used to exit on it, so one host of the
three-host drill never came up). Real PostgreSQL behind a real TCP port that opens late."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from py_nodes.up import UpError, _prepare_database

SATELLITES = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def late_proxy(port: int, target: str, opens_after_s: float) -> asyncio.Server:
    """Refuses connections (nothing listens) for ``opens_after_s``, then forwards port to the
    server of ``target`` (a conninfo: TCP host and port, or a Unix socket folder)."""
    params = conninfo_to_dict(target)
    host, pg_port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if host.startswith("/"):
            up_reader, up_writer = await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{pg_port}")
        else:
            up_reader, up_writer = await asyncio.open_connection(host, pg_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    await asyncio.sleep(opens_after_s)
    return await asyncio.start_server(forward, "127.0.0.1", port)


async def test_waits_for_a_database_that_opens_late(empty_db_conninfo: str, tmp_path: Path) -> None:
    """Checked to fail without the wait: the first connect is refused and `up` exits."""
    port = free_port()
    via_proxy = make_conninfo(empty_db_conninfo, host="127.0.0.1", port=str(port))
    opening = asyncio.create_task(late_proxy(port, empty_db_conninfo, opens_after_s=3.0))
    token = tmp_path / "admin-token"
    started = time.monotonic()
    try:
        seeded, secret = await _prepare_database(via_proxy, SATELLITES, token, 60.0, asyncio.Event())
    finally:
        server = await opening
        server.close()
    assert time.monotonic() - started >= 3.0  # it did wait for the port to open
    assert seeded.satellites == SATELLITES
    assert secret is not None and token.read_text().strip() == secret


async def test_gives_up_after_the_wait(tmp_path: Path) -> None:
    closed = make_conninfo("", host="127.0.0.1", port=str(free_port()), dbname="x", user="someone", connect_timeout="2")
    started = time.monotonic()
    with pytest.raises(UpError, match=r"could not be prepared within 2 s: cannot connect to someone@127\.0\.0\.1"):
        await _prepare_database(closed, SATELLITES, tmp_path / "admin-token", 2.0, asyncio.Event())
    assert 2.0 <= time.monotonic() - started < 60.0
    assert not (tmp_path / "admin-token").exists()


async def test_a_stop_while_waiting_ends_it_quietly(tmp_path: Path) -> None:
    closed = make_conninfo("", host="127.0.0.1", port=str(free_port()), dbname="x", user="someone", connect_timeout="2")
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.0, stop.set)
    started = time.monotonic()
    seeded, secret = await _prepare_database(closed, SATELLITES, tmp_path / "admin-token", 60.0, stop)
    assert time.monotonic() - started < 30.0
    assert (seeded.satellites, secret) == (0, None)
