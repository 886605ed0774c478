"""Fixtures that start real Erlang nodes (``erl``) and Python nodes on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from py_nodes.erldist import Atom, Node

pytest_plugins = ["db_fixtures"]  # PostgreSQL: one server per session, a database per test

ROOT = Path(__file__).resolve().parent.parent
ERLANG_SRC = Path(__file__).resolve().parent / "erlang"
HOST = "127.0.0.1"
_names = itertools.count(1)

os.environ.setdefault("ERL_EPMD_ADDRESS", HOST)


def unique_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}_{next(_names)}@{HOST}"


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


class ErlNode:
    """A real ``erl`` node running tests/erlang/dist_driver.erl (registered as ``driver``)."""

    def __init__(self, name: str, cookie: str, ebin: Path, workdir: Path, extra: list[str] | None = None) -> None:
        self.name = name
        self.ebin = ebin
        self.extra = extra or []
        self.home = workdir / f"home-{name.split('@')[0]}"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie_file = self.home / ".erlang.cookie"
        if cookie_file.exists():
            cookie_file.chmod(0o600)
        cookie_file.write_text(cookie)
        cookie_file.chmod(0o400)  # cookie via $HOME/.erlang.cookie: never on the command line
        self.log = workdir / f"{name.split('@')[0]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ErlNode:
        args = [
            "erl", "-name", self.name, "-noshell", "-pa", str(self.ebin),
            "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
            *self.extra,
            "-eval", "dist_driver:start()",
        ]  # fmt: skip
        env = dict(os.environ, HOME=str(self.home), ERL_EPMD_ADDRESS=HOST)
        log = self.log.open("ab")
        self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if b"driver ready" in self.log.read_bytes().split(b"--restart--")[-1]:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"erl node {self.name} did not start: {self.log.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(10)
                with self.log.open("ab") as f:
                    f.write(b"\n--restart--\n")

    def stop(self) -> None:
        self.kill(signal.SIGKILL)


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


async def erl_eval(node: Node, erl: ErlNode | str, source: str, timeout: float = 10.0, **bindings: Any) -> Any:
    """Evaluate Erlang ``source`` on the driver node, with ``bindings`` as variables."""
    name = erl if isinstance(erl, str) else erl.name
    pairs = [(Atom(k), v) for k, v in bindings.items()]
    result = await node.call(("driver", name), (Atom("eval"), source.encode(), pairs), timeout=timeout)
    if type(result) is tuple and len(result) == 3 and result[0] == "driver_error":
        raise AssertionError(f"Erlang raised {result[1]}:{result[2]!r} evaluating {source}")
    return result
