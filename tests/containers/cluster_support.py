"""Several `stellar` hosts of the image on a private network of their own, for the cluster
drills: each container with its own address and hostname, all sharing the network alias ALIAS
(whose A records are theirs, as a Kubernetes headless Service's are), one PostgreSQL, secrets as
files. A drill subclasses ClusterHosts and says, in host_args, what its hosts get beyond that."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compose_support import ROOT, free_port, wait_for

IMAGE = os.environ.get("STELLAROPS_IMAGE", "localhost/stellarops:latest")
POSTGRES_IMAGE = "docker.io/library/postgres:15-bookworm"
ALIAS = "stellar-headless"
BUILD_TIMEOUT_S = 45 * 60
START_TIMEOUT_S = 600  # a host's `up`: its database prepared, its Python nodes up, restored


def build_image() -> None:
    """The image from this tree (cached layers: quick when nothing changed), unless
    STELLAROPS_IMAGE_BUILT=1 says STELLAROPS_IMAGE is built already."""
    if os.environ.get("STELLAROPS_IMAGE_BUILT") != "1":
        subprocess.run(["bash", str(ROOT / "scripts" / "containers.sh"), "build"], cwd=ROOT, check=True, timeout=BUILD_TIMEOUT_S)


@dataclass
class ClusterHosts:
    """One network, one database and ``count`` `stellar` containers of this run (unique names)."""

    prefix: str
    secrets_dir: Path
    count: int = 3
    engine: str = field(default_factory=lambda: shutil.which("podman") or "docker")
    ports: dict[str, int] = field(default_factory=dict)  # container -> published gateway port
    tokens: dict[str, str] = field(default_factory=dict)
    made: list[tuple[str, str]] = field(default_factory=list)  # (kind, name), in creation order

    @property
    def network(self) -> str:
        return f"{self.prefix}-net"

    @property
    def db(self) -> str:
        return f"{self.prefix}-db"

    def host(self, i: int) -> str:
        return f"{self.prefix}-s{i}"

    def host_args(self, i: int) -> list[str]:
        """What host i gets beyond the database, the cookie, its name and the DNS discovery."""
        return []

    def cli(self, *args: str, timeout_s: float = 180, check: bool = True) -> str:
        done = subprocess.run([self.engine, *args], env=self._env(), text=True, capture_output=True, timeout=timeout_s)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.engine} {' '.join(args[:3])}... exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    @staticmethod
    def _env() -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}

    # ---- bring-up and clean-up -------------------------------------------------------------

    def _secret(self, name: str, value: str) -> Path:
        path = self.secrets_dir / name
        path.write_text(value)
        path.chmod(0o644)  # read by uid 10001 (the image) and postgres in the containers
        return path

    def up(self) -> None:
        db_password = self._secret("db_password", secrets.token_urlsafe(24))
        cookie = self._secret("erlang_cookie", secrets.token_hex(20).upper())
        database = [
            "-e", f"DATABASE_URL=postgresql://stellarops@{self.db}:5432/stellarops",
            "-e", "DATABASE_PASSWORD_FILE=/run/secrets/db_password",
            "-v", f"{db_password}:/run/secrets/db_password:ro",
        ]  # fmt: skip
        self.cli("network", "create", self.network)
        self.made += [("network", self.network), ("container", self.db)]
        self.cli("run", "-d", "--name", self.db, "--network", self.network,
                 "-e", "POSTGRES_USER=stellarops", "-e", "POSTGRES_DB=stellarops",
                 "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/db_password",
                 "-v", f"{db_password}:/run/secrets/db_password:ro", POSTGRES_IMAGE)  # fmt: skip
        wait_for("PostgreSQL ready", lambda: True if self.cli(
            "exec", self.db, "pg_isready", "--username=stellarops", "--dbname=stellarops", "--host=127.0.0.1", check=False
        ).strip().endswith("accepting connections") else None, 120)  # fmt: skip
        migrate = f"{self.prefix}-migrate"
        self.made.append(("container", migrate))
        self.cli("run", "--name", migrate, "--network", self.network, *database, IMAGE, "stellarops", "migrate")
        for i in range(1, self.count + 1):
            name, port = self.host(i), free_port()
            self.made.append(("container", name))
            self.cli(
                "run", "-d", "--name", name, "--hostname", f"stellar-{i}",
                "--network", self.network, "--network-alias", ALIAS, *database,
                "-e", "STELLAROPS_COOKIE_FILE=/run/secrets/erlang_cookie",
                "-v", f"{cookie}:/run/secrets/erlang_cookie:ro",
                "-e", "STELLAROPS_NODE_NAME=stellar@auto", "-e", "STELLAROPS_DIST_INTERFACE=auto",
                "-e", f"STELLAROPS_CLUSTER_SIZE={self.count}", "-e", f"STELLAROPS_CLUSTER_DNS={ALIAS}",
                # Three hosts' BEAM and Python nodes starting at once on 2 shared cores: up's 60 s
                # for the Python nodes to come up was missed under load (up then exits, and a
                # container, unlike a pod, is not restarted).
                "-e", f"STELLAROPS_START_TIMEOUT={START_TIMEOUT_S}",
                *self.host_args(i), "-p", f"127.0.0.1:{port}:8080", IMAGE,
            )  # fmt: skip
            self.ports[name] = port

    def volumes(self) -> set[str]:
        """The anonymous volumes of this run's containers (the PostgreSQL image's VOLUME)."""
        template = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}'
        return {v for kind, name in self.made if kind == "container"
                for v in self.cli("inspect", "--format", template, name, check=False).split()}  # fmt: skip

    def remove_everything(self) -> None:
        volumes = self.volumes()
        for kind, name in reversed(self.made):
            if kind == "container":
                self.cli("rm", "-f", "-v", "-t", "5", name, check=False)
            else:
                self.cli(kind, "rm", "-f", name, check=False)
        for name in volumes:
            self.cli("volume", "rm", "-f", name, check=False)
        left = [f"{kind} {name}" for kind, name in self.made if self.exists(kind, name)]
        left += [f"volume {name}" for name in volumes if self.exists("volume", name)]
        assert not left, f"left behind: {left}"

    def exists(self, kind: str, name: str) -> bool:
        return subprocess.run([self.engine, kind, "inspect", name], env=self._env(), capture_output=True, timeout=60).returncode == 0

    # ---- one host, from the outside --------------------------------------------------------

    def logs(self, name: str) -> str:
        done = subprocess.run([self.engine, "logs", name], env=self._env(), text=True, capture_output=True, timeout=60)
        return done.stdout + done.stderr

    def running(self, name: str) -> bool:
        return self.cli("inspect", "--format", "{{.State.Running}}", name, check=False).strip() == "true"

    def assert_running(self, names: list[str]) -> None:
        """Fails at once (AssertionError: wait_for does not poll again) when a host that should
        run has exited, with its last lines, instead of a wait for it that cannot end."""
        for name in names:
            if not self.running(name):
                tail = "\n".join(self.logs(name).splitlines()[-15:])
                raise AssertionError(f"{name} is not running; its last lines:\n{tail}")

    def beam_eval(self, name: str, expr: str, timeout_s: float = 90) -> str:
        """What the Erlang expression ``expr`` gives (~p) on host ``name``'s BEAM node, asked by
        a hidden node started in the container (the release's erl, the node's cookie file):
        for diagnostics, the rpc shell an operator would use."""
        ip = self.ip(name)
        script = (f"R = rpc:call('stellar@{ip}', erlang, apply, [fun() -> {expr} end, []], 30000), "
                  "io:format(\"~p~n\", [R]), halt().")  # fmt: skip
        command = ('rel=/opt/stellarops/rel; HOME="$STELLAROPS_HOME/erlang-home" exec "$(ls -d $rel/erts-*)/bin/erl" '
                   f'-boot "$(ls -d $rel/releases/*/)start_clean" -noshell -hidden -name diag$$@{ip} -eval "$0"')  # fmt: skip
        try:
            return self.cli("exec", name, "sh", "-c", command, script, check=False, timeout_s=timeout_s).strip()
        except subprocess.TimeoutExpired:
            return f"(no answer within {timeout_s:.0f} s)"

    def ip(self, name: str) -> str:
        return self.cli("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).strip()

    def token(self, name: str) -> str:
        if name not in self.tokens:
            token = self.cli("exec", name, "sh", "-c", 'cat "$STELLAROPS_HOME/admin-token"', check=False).strip()
            if not token:  # up writes it once the database is ready: wait_for asks again
                raise ConnectionError(f"{name}: no admin token yet")
            self.tokens[name] = token
        return self.tokens[name]

    def request(self, name: str, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports[name]}{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token(name)}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def get_ok(self, name: str, path: str) -> Any:
        """A 200's body; any other answer raises ConnectionError (wait_for polls again)."""
        status, body = self.request(name, "GET", path)
        if status != 200:
            raise ConnectionError(f"{name} GET {path}: {status} {body}")
        return body
