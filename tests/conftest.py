"""Fixtures that start real Erlang nodes (``erl``) and Python nodes on 127.0.0.1 (the helpers
they use, which tests import too, are in erl_support.py)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from erl_support import ERLANG_SRC, HOST, ErlNode, unique_name

from py_nodes.erldist import Node

pytest_plugins = ["db_fixtures"]  # PostgreSQL: one server per session, a database per test

os.environ.setdefault("ERL_EPMD_ADDRESS", HOST)

# Temporary folders outside /tmp/pytest-of-<user>: every pytest start makes that folder 0700
# again, which takes away the traverse bit the embedded PostgreSQL's system user needs, so a
# second test run started on the machine would break the first one's databases mid-run.
TEMP_ROOT = Path(tempfile.gettempdir()) / "stellarops-pytest"


def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is not None or hasattr(config, "workerinput"):
        return
    TEMP_ROOT.mkdir(mode=0o711, exist_ok=True)
    for old in TEMP_ROOT.glob("run-*"):  # runs whose process is gone
        pid = old.name.removeprefix("run-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    config.option.basetemp = str(TEMP_ROOT / f"run-{os.getpid()}")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Tests that run a command line in process (``cli.main``) reconfigure the root logger
    (``basicConfig(force=True)``, e.g. at CRITICAL); later tests must not inherit that level."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture(scope="session")
def cookie() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="session")
def erl_ebin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-side Erlang modules (tests/erlang/*.erl), compiled once."""
    out = tmp_path_factory.mktemp("ebin")
    sources = sorted(str(p) for p in ERLANG_SRC.glob("*.erl"))
    subprocess.run(["erlc", "-o", str(out), *sources], check=True)
    return out


@pytest.fixture
def erl_factory(cookie: str, erl_ebin: Path, tmp_path: Path) -> Iterator[Any]:
    started: list[ErlNode] = []

    def make(prefix: str = "erl", *, extra: list[str] | None = None, node_cookie: str | None = None) -> ErlNode:
        node = ErlNode(unique_name(prefix), node_cookie or cookie, erl_ebin, tmp_path, extra).start()
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


@pytest.fixture(scope="session")
def shared_erl(cookie: str, erl_ebin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErlNode]:
    """One Erlang node shared by tests that do not kill it."""
    node = ErlNode(unique_name("shared"), cookie, erl_ebin, tmp_path_factory.mktemp("erl")).start()
    yield node
    node.stop()


@pytest.fixture
async def py_node(cookie: str) -> AsyncIterator[Node]:
    async with Node(unique_name("py"), cookie=cookie) as node:
        yield node
