"""The whole stack as an operator runs it (``stellarops up``), for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from py_nodes.db import EmbeddedServer
from py_nodes.erldist import Atom, Node

CLI = [sys.executable, "-m", "py_nodes"]


class UpStack:
    """``stellarops up`` with its own state folder and node names; ``start()`` waits for the
    banner, ``stop()`` sends SIGTERM and waits for a clean exit."""

    def __init__(self, home: Path, beam_name: str, **env: str) -> None:
        self.home = home
        self.beam = f"{beam_name}@127.0.0.1"
        self.env = {k: v for k, v in os.environ.items() if k not in ("STELLAROPS_COOKIE", "DATABASE_URL")}
        # The gateway on any free port (the banner says which): stacks can run side by side.
        self.env.update(STELLAROPS_HOME=str(home), STELLAROPS_NODE_NAME=self.beam, STELLAROPS_HTTP_PORT="0")
        self.env.update(env)
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""

    def start(self, timeout_s: float = 90.0) -> UpStack:
        self.proc = subprocess.Popen([*CLI, "up"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.banner = ""
        deadline = time.monotonic() + timeout_s
        while "Stop with Ctrl-C" not in self.banner:
            line = self.proc.stdout.readline()
            assert line, f"stellarops up ended early: {self.banner}"
            assert time.monotonic() < deadline, f"no banner within {timeout_s} s: {self.banner}"
            self.banner += line
        # Keep reading: the BEAM node logs to the same pipe, and a full pipe would block it.
        self.log_tail: deque[str] = deque(maxlen=500)
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        return self

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.log_tail.append(line)

    def stop(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def gateway_url(self) -> str:
        """The gateway's base URL, from the banner."""
        for line in self.banner.splitlines():
            if line.strip().startswith("API:"):
                return line.split()[1].removesuffix("/api/satellites")
        raise AssertionError(f"no gateway URL in the banner: {self.banner}")

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
