"""What tests share besides fixtures: real ``erl`` nodes running tests/erlang/dist_driver.erl,
evaluating Erlang on them, and node names unique to this test run. A plain module (tests import
it; conftest.py builds its fixtures from it)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from py_nodes.erldist import Atom, Node

ROOT = Path(__file__).resolve().parent.parent
ERLANG_SRC = Path(__file__).resolve().parent / "erlang"
HOST = "127.0.0.1"
_names = itertools.count(1)


def unique_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}_{next(_names)}@{HOST}"


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


async def erl_eval(node: Node, erl: ErlNode | str, source: str, timeout: float = 10.0, **bindings: Any) -> Any:
    """Evaluate Erlang ``source`` on the driver node, with ``bindings`` as variables."""
    name = erl if isinstance(erl, str) else erl.name
    pairs = [(Atom(k), v) for k, v in bindings.items()]
    result = await node.call(("driver", name), (Atom("eval"), source.encode(), pairs), timeout=timeout)
    if type(result) is tuple and len(result) == 3 and result[0] == "driver_error":
        raise AssertionError(f"Erlang raised {result[1]}:{result[2]!r} evaluating {source}")
    return result
