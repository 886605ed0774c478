"""Three `stellar` hosts, one cluster: three containers of the image on a private network of their
own, each with its own address and hostname, sharing the network alias `stellar-headless` (whose
A records are the three of them, as a Kubernetes headless Service's are) and one PostgreSQL.

What is checked, with real containers: the three BEAM nodes find each other by DNS and each
gateway sees all three; the demo satellites run exactly once across the cluster; a command sent
to the gateway of the host that owns the database goes to done; then that host is killed
(`kill` from the host: SIGKILL, a host lost): its departure is logged and counted on the others,
its satellites run on them, exactly once, another host takes the database's ownership lease, no
acknowledged command is lost, and a command goes to done there.

Then the new owner is cut off (`network disconnect`): the other host takes the lease over (the
database drops the cut-off session through server-side TCP keepalive, set by the lease) and, once
the distribution notices (net_ticktime), runs every satellite once and takes commands.

Not checked because it does not hold yet (issue 15): what the cut-off host does. It loses the
address its Python nodes are named after, so they die and cannot restart (`STELLAROPS_DIST_INTERFACE
='auto'`: no default route), and its BEAM node stops (restart intensity) about 80 s later; it
logged "taking over 24 satellite(s)" first, so a partition that keeps the interface (a firewall
drop) could run satellites twice. Commands sent to a standby host's gateway are refused (503) in a
healthy cluster too, and a command accepted by the owner for a satellite that runs on a standby
host is executed there but its outcome is not stored (that host's store node is a standby): it
stays `queued` in the ledger. The commands after the kill and the cut therefore go to a satellite
on the owner's host."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from compose_support import ROOT, free_port, wait_for

IMAGE = os.environ.get("STELLAROPS_IMAGE", "localhost/stellarops:latest")
POSTGRES_IMAGE = "docker.io/library/postgres:15-bookworm"
HOSTS = 3
DEMO_SATELLITES = 24  # STELLAROPS_DEMO_SATELLITES' default
ALIAS = "stellar-headless"
DIST_PORT_MIN, DIST_PORT_MAX = 9100, 9105
BUILD_TIMEOUT_S = 45 * 60
# Bounds for conditions polled on 2 shared cores (never what they usually take: ~25 s to form,
# ~12 s to re-place and take the lease over after a kill).
FORM_TIMEOUT_S = 240
TAKEOVER_TIMEOUT_S = 120


@dataclass
class Hosts:
    """One network, one database and HOSTS `stellar` containers of this run (unique names)."""

    prefix: str
    secrets_dir: Path
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

    def cli(self, *args: str, timeout_s: float = 180, check: bool = True) -> str:
        env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}
        done = subprocess.run(
            [self.engine, *args], env=env, text=True, capture_output=True, timeout=timeout_s
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{self.engine} {' '.join(args[:3])}... exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        return done.stdout

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
        self.made.append(("network", self.network))
        self.made.append(("container", self.db))
        self.cli("run", "-d", "--name", self.db, "--network", self.network,
                 "-e", "POSTGRES_USER=stellarops", "-e", "POSTGRES_DB=stellarops",
                 "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/db_password",
                 "-v", f"{db_password}:/run/secrets/db_password:ro", POSTGRES_IMAGE)  # fmt: skip
        wait_for("PostgreSQL ready", lambda: True if self.cli(
            "exec", self.db, "pg_isready", "--username=stellarops", "--dbname=stellarops", "--host=127.0.0.1", check=False
        ).strip().endswith("accepting connections") else None, 120)  # fmt: skip
        migrate = f"{self.prefix}-migrate"
        self.made.append(("container", migrate))
        self.cli(
            "run",
            "--name",
            migrate,
            "--network",
            self.network,
            *database,
            IMAGE,
            "stellarops",
            "migrate",
        )
        for i in range(1, HOSTS + 1):
            name, port = self.host(i), free_port()
            self.made.append(("container", name))
            self.cli(
                "run", "-d", "--name", name, "--hostname", f"stellar-{i}",
                "--network", self.network, "--network-alias", ALIAS, *database,
                "-e", "STELLAROPS_COOKIE_FILE=/run/secrets/erlang_cookie",
                "-v", f"{cookie}:/run/secrets/erlang_cookie:ro",
                "-e", "STELLAROPS_NODE_NAME=stellar@auto", "-e", "STELLAROPS_DIST_INTERFACE=auto",
                "-e", f"STELLAROPS_CLUSTER_DNS={ALIAS}", "-e", "STELLAROPS_CLUSTER_DNS_POLL_S=2",
                "-e", f"STELLAROPS_DIST_PORT_MIN={DIST_PORT_MIN}", "-e", f"STELLAROPS_DIST_PORT_MAX={DIST_PORT_MAX}",
                "-p", f"127.0.0.1:{port}:8080", IMAGE,
            )  # fmt: skip
            self.ports[name] = port

    def volumes(self) -> set[str]:
        names: set[str] = set()
        template = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}'
        for kind, name in self.made:
            if kind == "container":
                names.update(self.cli("inspect", "--format", template, name, check=False).split())
        return names

    def remove_everything(self) -> None:
        volumes = self.volumes()  # anonymous ones (the PostgreSQL image's VOLUME)
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
        env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}
        return (
            subprocess.run(
                [self.engine, kind, "inspect", name], env=env, capture_output=True, timeout=60
            ).returncode
            == 0
        )

    # ---- one host, from the outside --------------------------------------------------------

    def logs(self, name: str) -> str:
        env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}
        done = subprocess.run(
            [self.engine, "logs", name], env=env, text=True, capture_output=True, timeout=60
        )
        return done.stdout + done.stderr

    def status(self, name: str) -> dict[str, Any]:
        """`stellarops status` inside the host (its nodes, satellites and database ownership)."""
        out = self.cli("exec", name, "stellarops", "status", timeout_s=60)
        decoded: dict[str, Any] = json.loads(out[out.index("{\n") :])
        return decoded

    def token(self, name: str) -> str:
        if name not in self.tokens:
            self.tokens[name] = self.cli(
                "exec", name, "sh", "-c", 'cat "$STELLAROPS_HOME/admin-token"'
            ).strip()
            assert self.tokens[name], f"{name}: empty admin token"
        return self.tokens[name]

    def request(self, name: str, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[name]}{path}", data=data, method=method
        )
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
        status, body = self.request(name, "GET", path)
        assert status == 200, f"{name} GET {path}: {status} {body}"
        return body

    def metric(self, name: str, metric: str) -> float:
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports[name]}/metrics")
        req.add_header("Authorization", f"Bearer {self.token(name)}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(metric + " "):
                    return float(line.split()[1])
        raise KeyError(metric)


def _ip(hosts: Hosts, name: str) -> str:
    return hosts.cli(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
    ).strip()


def _beams(hosts: Hosts, via: str) -> set[str]:
    return {
        n["name"]
        for n in hosts.get_ok(via, "/api/nodes")["items"]
        if n["role"] == "beam" and n["status"] == "up"
    }


def _sees(hosts: Hosts, via: str, expected: set[str]) -> Callable[[], bool | None]:
    return lambda: True if _beams(hosts, via) == expected else None


def _counts(hosts: Hosts, via: str, metric: str, expected: float) -> Callable[[], bool | None]:
    return lambda: True if hosts.metric(via, metric) == expected else None


def _actors(hosts: Hosts, via: str) -> dict[str, int]:
    """sats node -> satellites it runs, over the whole cluster (each sats node's own count)."""
    return {
        n["name"]: n["satellites"]
        for n in hosts.get_ok(via, "/api/nodes")["items"]
        if n["role"] == "sats"
    }


def _satellites(hosts: Hosts, via: str) -> dict[str, dict[str, Any]]:
    page = hosts.get_ok(via, "/api/satellites?limit=1000")
    ids = [s["id"] for s in page["items"]]
    assert len(ids) == len(set(ids)) == page["total"], (
        f"satellite list: {page['total']} total, ids {ids}"
    )
    return {s["id"]: s for s in page["items"]}


def _owner(hosts: Hosts, candidates: list[str]) -> str | None:
    owners = [name for name in candidates if hosts.status(name)["ownership"]["owner"]]
    assert len(owners) <= 1, f"two hosts own the database: {owners}"
    return owners[0] if owners else None


def _command_done(hosts: Hosts, via: str, sat_id: str, key: str) -> dict[str, Any]:
    status, body = hosts.request(via, "POST", f"/api/satellites/{sat_id}/commands", {"kind": "noop"},
                                 headers={"Idempotency-Key": key})  # fmt: skip
    assert status == 202, f"POST command to {sat_id} via {via}: {status} {body}"
    cid = str(body["id"])

    def done() -> dict[str, Any] | None:
        rows = {
            str(r["id"]): r
            for r in hosts.get_ok(via, f"/api/satellites/{sat_id}/commands?limit=1000")["items"]
        }
        assert rows.get(cid, {}).get("status") not in ("failed", "expired"), rows.get(cid)
        return rows[cid] if rows.get(cid, {}).get("status") == "done" else None

    return wait_for(f"command {cid} to {sat_id} done", done, 120)


def _ledger(hosts: Hosts, via: str, sat_ids: list[str]) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for sat_id in sat_ids:
        for row in hosts.get_ok(via, f"/api/satellites/{sat_id}/commands?limit=1000")["items"]:
            rows[str(row["id"])] = (sat_id, row["status"])
    return rows


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    # The image, as `make up` builds it (quick when the layer cache has it); this file may run
    # before the compose stack's.
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "containers.sh"), "build"],
        cwd=ROOT,
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    hosts = Hosts(
        prefix=f"stellaropsch{os.getpid()}", secrets_dir=tmp_path_factory.mktemp("cluster-secrets")
    )
    try:
        hosts.up()
        yield hosts
    finally:
        for kind, name in hosts.made:  # what each host said, for a failure's report
            if kind == "container" and name != hosts.db:
                print(
                    f"---- {name} (last lines)\n" + "\n".join(hosts.logs(name).splitlines()[-40:])
                )
        hosts.remove_everything()


@pytest.mark.timeout(BUILD_TIMEOUT_S + 10 * 60)
def test_three_hosts_form_one_cluster_and_survive_losing_one(hosts: Hosts) -> None:
    names = [hosts.host(i) for i in range(1, HOSTS + 1)]
    beams = {name: f"stellar@{_ip(hosts, name)}" for name in names}
    assert len(set(beams.values())) == HOSTS, beams

    # Formed: every gateway sees the three BEAM nodes (found by DNS, each named by its address).
    for name in names:
        wait_for(
            f"{name} sees {sorted(beams.values())}",
            _sees(hosts, name, set(beams.values())),
            FORM_TIMEOUT_S,
            2,
        )
    owner = wait_for("one host owns the database", lambda: _owner(hosts, names), FORM_TIMEOUT_S, 2)

    # The demo satellites run exactly once across the cluster, all running.
    def placed(via: str, expected_beams: set[str]) -> dict[str, dict[str, Any]] | None:
        sats = _satellites(hosts, via)
        actors = _actors(hosts, via)
        if len(sats) != DEMO_SATELLITES or sum(actors.values()) != DEMO_SATELLITES:
            return None
        if {s["status"] for s in sats.values()} != {"running"} or not {
            s["beam"] for s in sats.values()
        } <= expected_beams:
            return None
        return sats

    before = wait_for(
        "the demo satellites running once",
        lambda: placed(owner, set(beams.values())),
        FORM_TIMEOUT_S,
        2,
    )
    for name in names:  # every gateway reads the same constellation
        assert set(_satellites(hosts, name)) == set(before), name

    # A command through the owner's gateway goes to done.
    sat_ids = sorted(before)
    acked = {
        str(_command_done(hosts, owner, sat_id, f"before-{sat_id}")["id"]) for sat_id in sat_ids[:4]
    }

    # Host loss: the owner is killed (SIGKILL from the host).
    survivors = [n for n in names if n != owner]
    leaves_before = {n: hosts.metric(n, "stellar_cluster_leaves_total") for n in survivors}
    killed_at = time.monotonic()
    hosts.cli("kill", owner)
    hosts.ports.pop(owner)
    alive = {beams[n] for n in survivors}
    for name in survivors:
        wait_for(
            f"{name} sees {beams[owner]} leave", _sees(hosts, name, alive), TAKEOVER_TIMEOUT_S, 1
        )
        leaves = leaves_before[name] + 1
        wait_for(
            f"{name} counts the leave",
            _counts(hosts, name, "stellar_cluster_leaves_total", leaves),
            TAKEOVER_TIMEOUT_S,
            1,
        )
        assert f"cluster: node {beams[owner]} left" in hosts.logs(name), f"{name}: no leave line"
    after = wait_for(
        "the lost host's satellites running once on the others",
        lambda: placed(survivors[0], alive),
        TAKEOVER_TIMEOUT_S,
        1,
    )
    replaced_s = round(time.monotonic() - killed_at, 1)
    assert set(after) == set(before)
    new_owner = wait_for(
        "a surviving host takes the database over",
        lambda: _owner(hosts, survivors),
        TAKEOVER_TIMEOUT_S,
        1,
    )
    took_over_s = round(time.monotonic() - killed_at, 1)

    # Nothing acknowledged is lost, and the new owner takes commands.
    ledger = _ledger(hosts, new_owner, sat_ids)
    lost = {cid: ledger.get(cid) for cid in acked if ledger.get(cid, ("", ""))[1] != "done"}
    assert not lost, f"acknowledged commands lost or changed: {lost}"
    # A command to a satellite that now runs on the new owner's host goes to done.
    here = sorted(
        sat_id
        for sat_id, sat in _satellites(hosts, new_owner).items()
        if sat["beam"] == beams[new_owner]
    )
    assert here, f"no satellite on {beams[new_owner]}"
    _command_done(hosts, new_owner, here[0], "after-kill")
    assert sum(_actors(hosts, survivors[1]).values()) == DEMO_SATELLITES
    print(
        f"cluster of {HOSTS} hosts: satellites re-placed {replaced_s} s and ownership taken over {took_over_s} s after the kill"
    )


@pytest.mark.timeout(10 * 60)
def test_a_cut_off_owner_loses_the_database_to_the_others(hosts: Hosts) -> None:
    """After the kill above, two hosts are left; the owner is cut off from the network (and so
    from PostgreSQL). The database drops its lease session within seconds (server-side TCP
    keepalive), the other host takes the lease over and, once the distribution notices the cut
    (net_ticktime, about a minute), runs every satellite, exactly once, and takes commands."""
    names = [name for name in hosts.ports]
    assert len(names) == HOSTS - 1, names
    owner = wait_for(
        "one host owns the database", lambda: _owner(hosts, names), TAKEOVER_TIMEOUT_S, 1
    )
    (other,) = [name for name in names if name != owner]
    other_beam = f"stellar@{_ip(hosts, other)}"
    sat_ids = sorted(_satellites(hosts, other))
    acked = _ledger(hosts, other, sat_ids)
    cut_at = time.monotonic()
    hosts.cli("network", "disconnect", hosts.network, owner)
    hosts.ports.pop(owner)
    wait_for(
        "the other host takes the database over",
        lambda: _owner(hosts, [other]),
        TAKEOVER_TIMEOUT_S,
        1,
    )
    took_over_s = round(time.monotonic() - cut_at, 1)

    def all_here() -> bool | None:
        sats = _satellites(hosts, other)
        running = {s["beam"] for s in sats.values()} == {other_beam} and {
            s["status"] for s in sats.values()
        } == {"running"}
        return (
            True
            if running and sum(_actors(hosts, other).values()) == len(sat_ids) == len(sats)
            else None
        )

    wait_for("every satellite running once on the other host", all_here, 3 * TAKEOVER_TIMEOUT_S, 2)
    replaced_s = round(time.monotonic() - cut_at, 1)
    ledger = _ledger(hosts, other, sat_ids)
    lost = {cid: row for cid, row in acked.items() if ledger.get(cid) != row and row[1] == "done"}
    assert not lost, f"acknowledged commands lost or changed: {lost}"
    _command_done(hosts, other, sat_ids[0], "after-cut")
    print(
        f"owner cut off: lease taken over {took_over_s} s, satellites re-placed {replaced_s} s after the cut"
    )
