"""The whole stack as an operator runs it (``stellarops up``), for end-to-end tests and the
benchmarks (bench/benchlib.py imports this module): the one harness that starts a stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from py_nodes.db import EmbeddedServer
from py_nodes.erldist import Atom, Node

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "py_nodes"]
BANNER_END = "Stop with Ctrl-C"


class UpStack:
    """``stellarops up`` with its own state folder and node names; ``start()`` waits for the
    banner (kept in ``banner``), ``stop()`` sends SIGTERM and waits for a clean exit. Where the
    stack is (gateway URL, nodes) comes from the ``up-status.json`` that ``up`` writes when ready."""

    prefix: tuple[str, ...] = ()  # what up runs under, e.g. ("ip", "netns", "exec", NAME)

    def __init__(self, home: Path, beam_name: str, **env: str) -> None:
        self.home = home
        self.beam = f"{beam_name}@127.0.0.1"
        self.env = {k: v for k, v in os.environ.items() if k not in ("STELLAROPS_COOKIE", "DATABASE_URL")}
        # The gateway on any free port (up-status.json says which): stacks can run side by side.
        self.env.update(STELLAROPS_HOME=str(home), STELLAROPS_NODE_NAME=self.beam, STELLAROPS_HTTP_PORT="0")
        self.env.update(env)
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""
        self.log_tail: deque[str] = deque(maxlen=500)  # the output after the banner (BEAM's log)

    def start(self, timeout_s: float = 90.0, stderr: IO[str] | int | None = None) -> UpStack:
        """Start ``up``; its stderr (what it says of its own start) goes to ``stderr``, by default
        to ``<home>-up.stderr`` beside the home folder, which an early end then quotes."""
        if stderr is None:
            self.home.parent.mkdir(parents=True, exist_ok=True)
            with self.default_stderr_path().open("w") as err:
                return UpStack.start(self, timeout_s, err)
        self.proc = subprocess.Popen([*self.prefix, *CLI, "up"], env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert self.proc.stdout is not None
        self.banner = ""
        deadline = time.monotonic() + timeout_s
        while BANNER_END not in self.banner:
            line = self.proc.stdout.readline()
            assert line, f"stellarops up ended early: {self.banner}{self.failure_detail()}"
            assert time.monotonic() < deadline, f"no banner within {timeout_s} s: {self.banner}{self.failure_detail()}"
            self.banner += line
        # Keep reading: the BEAM node logs to the same pipe, and a full pipe would block it.
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        return self

    def default_stderr_path(self) -> Path:
        return self.home.with_name(f"{self.home.name}-up.stderr")

    def failure_detail(self) -> str:
        """The last lines ``up`` wrote to the default stderr file (subclasses keep their own)."""
        path = self.default_stderr_path()
        if not path.exists():
            return ""
        tail = path.read_text(errors="replace").splitlines()[-40:]
        return "\n--- stellarops up's stderr (last lines) ---\n" + "\n".join(tail)

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.log_tail.append(line)

    def stop(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def cluster(self) -> dict[str, Any]:
        """``cluster`` of ``$STELLAROPS_HOME/up-status.json`` (nodes, gateway): written by this
        stack's ``up`` before its banner."""
        assert self.proc is not None, "not started"
        path = self.home / "up-status.json"
        data = json.loads(path.read_text())
        assert data["pid"] == self.proc.pid and "cluster" in data, f"{path} is not from this stack's readiness: {data}"
        cluster: dict[str, Any] = data["cluster"]
        return cluster

    def gateway_url(self) -> str:
        """The gateway's base URL (``http://127.0.0.1:PORT``)."""
        gateway = self.cluster()["gateway"]
        assert gateway is not None, f"this stack has no gateway: {self.cluster()}"
        url: str = gateway["url"]
        return url

    def admin_token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def cookie(self) -> bytes:
        return (self.home / "cookie").read_bytes().strip()

    def ctl(self, name: str) -> Node:
        return Node(f"{name}{os.getpid()}@127.0.0.1", cookie=self.cookie())

    def database(self) -> EmbeddedServer:
        """The stack's embedded PostgreSQL, attached (stopping this object leaves it running)."""
        server = EmbeddedServer(self.home / "pg")
        server.start()
        return server

    async def rpc(self, node: Node, module: str, function: str, args: list[Any], timeout: float = 10.0) -> Any:
        return await node.rpc(self.beam, module, function, args, timeout=timeout)

    def py_nodes(self, node_info: list[Any], role: str) -> list[Any]:
        return [n for n in node_info if n[Atom("role")] == role]
