"""The Erlang cookie is on no command line of a real ``stellarops up``: neither of the BEAM node,
nor of any Python node it starts, nor of any other process on this machine while it runs (the
README's promise: secrets come from env or files, never from a command line)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from drills import clean_up, stack_pids
from stack import UpStack

pytestmark = [pytest.mark.erlang, pytest.mark.slow, pytest.mark.timeout(300)]

PYTHON_NODES = ("sats1", "sats2", "orbital1", "store1", "gateway1", "scheduler1")


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def command_lines_with(secret: bytes) -> dict[int, bytes]:
    """Every process on this machine whose command line holds ``secret``."""
    found: dict[int, bytes] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                line = (proc / "cmdline").read_bytes()
            except OSError:  # ended meanwhile, or not ours to read
                continue
            if secret in line:
                found[int(proc.name)] = line.replace(b"\0", b" ")[:200]
    return found


def test_the_cookie_is_on_no_command_line(tmp_path: Path) -> None:
    stack = UpStack(tmp_path / "home", "stellar_secrets", STELLAROPS_DEMO_SATELLITES="2")
    pids: dict[str, int] = {}
    try:
        stack.start()
        pids = asyncio.run(stack_pids(stack, "secrets"))
        cookie = stack.cookie()
        assert len(cookie) >= 20
        # The processes looked at: BEAM and the six Python nodes, each with a readable command line.
        alive_names = {name.split("@")[0].removeprefix("stellar_secrets_") for name in pids}
        assert alive_names == {"stellar_secrets", *PYTHON_NODES}, pids
        assert stack.proc is not None
        lines = {name: cmdline(pid) for name, pid in {**pids, "up": stack.proc.pid}.items()}
        assert b"beam.smp" in lines[stack.beam] and b"-name" in lines[stack.beam]
        for name in PYTHON_NODES:
            node = f"stellar_secrets_{name}@127.0.0.1"
            assert b"node\0--role" in lines[node] and node.encode() in lines[node], lines[node]
        assert {n: line for n, line in lines.items() if cookie in line} == {}
        assert command_lines_with(cookie) == {}  # nor any other process (ports, helpers...)
        assert stack.stop() == 0
    finally:
        clean_up(stack, pids)
