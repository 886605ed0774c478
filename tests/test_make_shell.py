"""`make shell` (scripts/remsh.sh) and the state-folder preparation it shares with the other
scripts: run beside a live embedded PostgreSQL, it must leave the database alive."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from erl_support import ErlNode

from py_nodes.db import EmbeddedServer
from py_nodes.state_dir import StateDir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[Path, EmbeddedServer]]:
    """An embedded server in a fresh state folder (0700 before it starts, as a first run makes it)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    server = EmbeddedServer(home / "pg", durable=False)
    server.start()
    try:
        yield home, server
    finally:
        home.chmod(stat.S_IMODE(home.stat().st_mode) | 0o001)  # so a failed test still stops it
        server.stop()


def _answers_after_checkpoint(server: EmbeddedServer) -> None:
    # A checkpoint opens global/pg_control by its absolute path: without the traverse bit on the
    # state folder, PostgreSQL PANICs here and the next query finds no server.
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def _assert_folder_mode(home: Path) -> None:
    mode = stat.S_IMODE(home.stat().st_mode)
    if os.geteuid() == 0:  # the server runs as its own user, which must traverse the folder
        assert mode & stat.S_IXOTH, oct(mode)
    assert mode & 0o066 == 0 and mode & 0o700 == 0o700, oct(mode)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STELLAROPS_COOKIE", "DATABASE_URL")}
    return env | {"STELLAROPS_HOME": str(home)} | extra


def test_shell_preparation_leaves_a_running_database_alive(live_server: tuple[Path, EmbeddedServer]) -> None:
    """What `make shell` (and setup, and test.sh) run before attaching: scripts/lib.sh's
    prepare_erlang_home. It used to chmod 700 the state folder and kill the database."""
    home, server = live_server
    _answers_after_checkpoint(server)
    (home / "cookie").write_text("c" * 32)  # as set-up left it
    (home / "cookie").chmod(0o600)
    script = ". scripts/lib.sh && stellarops_env && prepare_erlang_home"
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=_env(home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (home / "erlang-home" / ".erlang.cookie").read_bytes() == (home / "cookie").read_bytes()
    _answers_after_checkpoint(server)
    _assert_folder_mode(home)


def test_state_dir_prepare_leaves_a_running_database_alive(live_server: tuple[Path, EmbeddedServer], monkeypatch: pytest.MonkeyPatch) -> None:
    home, server = live_server
    monkeypatch.delenv("STELLAROPS_COOKIE", raising=False)
    home.chmod(stat.S_IMODE(home.stat().st_mode) | 0o066)  # someone opened it up: prepare closes it again
    StateDir(home).prepare()
    _answers_after_checkpoint(server)
    _assert_folder_mode(home)


def test_make_shell_without_a_terminal_says_why(tmp_path: Path, erl_factory: object, cookie: str) -> None:
    """With a node to attach to, but stdin not a terminal: a clear refusal, not a local shell."""
    node: ErlNode = erl_factory("remsh")  # type: ignore[operator]
    env = _env(tmp_path / "home", STELLAROPS_COOKIE=cookie, STELLAROPS_NODE_NAME=node.name)
    done = subprocess.run(
        ["bash", "scripts/remsh.sh"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert f"make shell needs a terminal (stdin is not a tty), else erl starts a local shell instead of attaching to {node.name}" in done.stderr
    assert "Eshell" not in done.stdout
