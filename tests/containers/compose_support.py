"""The compose stack as the container tier drives it: scripts/compose.sh for up/down/health (the
same commands `make up` runs), the engine's CLI (podman, or docker where an engine runs) for what
an operator does from the host (inspect, exec, kill -9 of the main process), and plain HTTP on the
published ports."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SH = ROOT / "scripts" / "compose.sh"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, interval_s: float = 1.0) -> T:
    """Polls ``probe`` until it returns something other than None (or raises AssertionError with
    ``what`` and the last error when ``timeout_s`` has passed)."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while True:
        try:
            value = probe()
            if value is not None:
                return value
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s (last error: {last!r})")
        time.sleep(interval_s)


@dataclass
class Stack:
    """One compose project of our own (its own name, published ports and secrets folder)."""

    project: str
    http_port: int
    prometheus_port: int
    secrets_dir: Path
    timings_s: dict[str, float] = field(default_factory=dict)
    _token: str | None = None
    _engine: str | None = None
    # Every volume the project's containers had mounted, seen before each `down`: compose removes
    # the named ones with `down -v`, but podman-compose leaves anonymous ones (an image's VOLUME).
    _volumes: set[str] = field(default_factory=set)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "STELLAROPS_HTTP_PUBLISH": str(self.http_port),
            "STELLAROPS_PROMETHEUS_PUBLISH": str(self.prometheus_port),
            "STELLAROPS_SECRETS_DIR": str(self.secrets_dir),
        }

    # ---- compose.sh and the engine -------------------------------------------------------

    def compose(self, *args: str, timeout_s: float, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        """scripts/compose.sh ARGS; its output goes to ours (pytest shows it on failure)."""
        if args[:1] == ("down",) and self._engine is not None:
            self._volumes |= self.mounted_volumes()
        done = subprocess.run(
            ["bash", str(COMPOSE_SH), *args], cwd=ROOT, env={**self.env, **env}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout_s,
        )  # fmt: skip
        print(f"$ scripts/compose.sh {' '.join(args)}  (exit {done.returncode})\n{done.stdout[-20000:]}")
        if check and done.returncode != 0:
            raise AssertionError(f"scripts/compose.sh {' '.join(args)} exited {done.returncode}:\n{done.stdout[-5000:]}")
        return done

    def timed_compose(self, label: str, *args: str, timeout_s: float, **env: str) -> None:
        start = time.monotonic()
        self.compose(*args, timeout_s=timeout_s, **env)
        self.timings_s[label] = round(time.monotonic() - start, 1)

    @property
    def engine(self) -> str:
        if self._engine is None:
            self._engine = self.compose("engine", timeout_s=60).stdout.strip().splitlines()[-1]
        return self._engine

    def cli(self, *args: str, timeout_s: float = 120, check: bool = True) -> str:
        """The engine's own command (podman/docker ARGS), with the project's containers.conf."""
        env = {**self.env, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}
        done = subprocess.run([self.engine, *args], env=env, text=True, capture_output=True, timeout=timeout_s)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.engine} {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def cli_ok(self, *args: str) -> bool:
        env = {**self.env, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}
        return subprocess.run([self.engine, *args], env=env, capture_output=True, timeout=120).returncode == 0

    def containers(self, service: str | None = None, *, running: bool = False) -> list[str]:
        filters = ["--filter", f"label={PROJECT_LABEL}={self.project}"]
        if service:
            filters += ["--filter", f"label={SERVICE_LABEL}={service}"]
        if running:
            filters += ["--filter", "status=running"]
        return self.cli("ps", "-a", "-q", "--no-trunc", *filters).split()

    def container(self, service: str) -> str:
        ids = self.containers(service)
        assert len(ids) == 1, f"service {service}: containers {ids}"
        return ids[0]

    def inspect(self, service: str, template: str) -> str:
        return self.cli("inspect", "--format", template, self.container(service)).strip()

    def mounted_volumes(self) -> set[str]:
        names: set[str] = set()
        template = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}'
        for cid in self.cli("ps", "-a", "-q", "--filter", f"label={PROJECT_LABEL}={self.project}", check=False).split():
            names.update(self.cli("inspect", "--format", template, cid, check=False).split())
        return names

    def remove_everything(self) -> list[str]:
        """Whatever of this project is left (containers, volumes, networks), removed; returns
        what there was, so a caller can say that compose's own `down -v` left it."""
        left: list[str] = []
        label = f"label={PROJECT_LABEL}={self.project}"
        for kind, listing in (
            ("container", ["ps", "-a", "-q", "--filter", label]),
            ("volume", ["volume", "ls", "-q", "--filter", label]),
            ("network", ["network", "ls", "-q", "--filter", label]),
        ):
            names = self.cli(*listing, check=False).split()
            for name in names:
                left.append(f"{kind} {name}")
                remove = ["rm", "-f", "-v"] if kind == "container" else [kind, "rm", "-f"]
                self.cli(*remove, name, check=False)
        for name in sorted(self._volumes):  # anonymous ones included (they have no label)
            if self.cli_ok("volume", "inspect", name):
                left.append(f"volume {name}")
                self.cli("volume", "rm", "-f", name, check=False)
        return left

    # ---- HTTP ------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def admin_token(self) -> str:
        """The admin token `stellarops up` wrote into the container's state folder (read with
        exec: never on a command line)."""
        if self._token is None:
            self._token = self.cli(
                "exec", self.container("stellar"), "sh", "-c", 'cat "$STELLAROPS_HOME/admin-token"'
            ).strip()
            assert self._token, "empty admin token"
        return self._token

    def request(self, method: str, path: str, body: Any = None, *, timeout_s: float = 30,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
        """(status, decoded JSON or text) of one request with the admin token."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.admin_token()}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode()
        try:
            return status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return status, text

    def get_ok(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def satellites(self) -> dict[str, str]:
        """id -> name of every satellite."""
        page = self.get_ok("/api/satellites?limit=1000")
        assert page["total"] == len(page["items"]), page["total"]
        return {sat["id"]: sat["name"] for sat in page["items"]}

    def ledger(self, sat_ids: list[str]) -> dict[str, tuple[str, str, str]]:
        """command id -> (satellite, kind, status) over the given satellites' ledgers."""
        rows: dict[str, tuple[str, str, str]] = {}
        for sat_id in sat_ids:
            body = self.get_ok(f"/api/satellites/{urllib.parse.quote(sat_id)}/commands?limit=1000")
            items = body["items"] if isinstance(body, dict) else body
            for row in items:
                rows[str(row["id"])] = (sat_id, row["kind"], row["status"])
        return rows

    def sse_events(self, path: str, count: int, timeout_s: float) -> Iterator[dict[str, str]]:
        """The first ``count`` events of a server-sent event stream (comments and frames with
        no data, such as the opening ``retry:``, skipped)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout_s)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {self.admin_token()}", "Accept": "text/event-stream"})
            resp = conn.getresponse()
            assert resp.status == 200, f"GET {path}: {resp.status} {resp.read()[:500]!r}"
            assert resp.getheader("Content-Type", "").startswith("text/event-stream")
            deadline = time.monotonic() + timeout_s
            seen, frame = 0, {}
            while seen < count and time.monotonic() < deadline:
                line = resp.readline().decode().rstrip("\n")
                if line == "":
                    if "data" in frame:
                        seen += 1
                        yield frame
                    frame = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    frame[key] = value.removeprefix(" ")
        finally:
            conn.close()

    # ---- Prometheus ------------------------------------------------------------------------

    def promql(self, query: str) -> list[dict[str, Any]]:
        """The result vector (or matrix) of an instant query on the compose Prometheus."""
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return [{"value": result}]
        return list(result)
