"""The ``stellarops node`` command: cookie handling and the echo role as a real OS process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from erl_support import ErlNode, erl_eval, unique_name

from py_nodes.erldist import Atom, Node

CLI = [sys.executable, "-m", "py_nodes"]


def _env_without_cookie() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "STELLAROPS_COOKIE"}


def test_missing_cookie_is_a_clear_error() -> None:
    done = subprocess.run(
        [*CLI, "node", "--role", "echo", "--name", unique_name("nocookie")],
        env=_env_without_cookie(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no cookie: pass --cookie-file FILE or set STELLAROPS_COOKIE" in done.stderr


def test_cookie_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    cookie_file = tmp_path / "cookie"
    cookie_file.write_text("sesame")
    cookie_file.chmod(0o644)
    done = subprocess.run(
        [*CLI, "node", "--role", "echo", "--name", unique_name("open"), "--cookie-file", str(cookie_file)],
        env=_env_without_cookie(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and "readable by others" in done.stderr
    assert "sesame" not in done.stderr + done.stdout


def test_name_without_host_is_refused() -> None:
    done = subprocess.run(
        [*CLI, "node", "--role", "echo", "--name", "justaname"],
        env={**os.environ, "STELLAROPS_COOKIE": "x"}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and "must look like name@host" in done.stderr


async def test_echo_role_from_a_cookie_file_serves_erlang(
    tmp_path: Path, cookie: str, shared_erl: ErlNode, py_node: Node
) -> None:
    cookie_file = tmp_path / "cookie"
    cookie_file.write_text(cookie)
    cookie_file.chmod(0o600)
    name = unique_name("cliecho")
    proc = subprocess.Popen(
        [*CLI, "node", "--role", "echo", "--name", name, "--cookie-file", str(cookie_file)],
        env=_env_without_cookie(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert f"node {name} up" in proc.stdout.readline()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert cookie.encode() not in cmdline
        got = await erl_eval(
            py_node, shared_erl,
            "{gen_server:call({echo, N}, {x, 1}), rpc:call(N, echo, echo, [y]),"
            " begin {sink, N} ! a, {sink, N} ! b, {sink, N} ! {done, self()},"
            " receive {count, C} -> C after 5000 -> timeout end end}.",
            N=Atom(name),
        )  # fmt: skip
        assert got == ((Atom("x"), 1), Atom("y"), 2)
    finally:
        proc.terminate()
        assert proc.wait(10) == 0  # SIGTERM is a clean stop
        assert proc.stderr is not None
        assert cookie not in proc.stderr.read()


def test_stop_on_eof_exits_when_stdin_closes(cookie: str) -> None:
    proc = subprocess.Popen(
        [*CLI, "node", "--role", "echo", "--name", unique_name("eof"), "--stop-on-eof"],
        env={**os.environ, "STELLAROPS_COOKIE": cookie}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    assert "up" in proc.stdout.readline()
    proc.stdin.close()
    try:
        assert proc.wait(10) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the node did not stop when its stdin closed")
