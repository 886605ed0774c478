"""Persistence across a cluster (issue 15): two ``stellarops up`` stacks on loopback, each with its
own BEAM node, sats, store and gateway, peers of each other, one PostgreSQL. One store owns the
database; the other BEAM node's ``stellar_store`` routes to it. Checked through the HTTP API and
the database: a satellite created through the standby's gateway is stored and runs on the
standby; commands through either gateway, for a satellite on either BEAM node, are acknowledged
and go to done (their outcomes reach the owner's store); telemetry and checkpoints of the
standby's satellite are written. And the minority rule: with STELLAROPS_CLUSTER_SIZE=3, a node
left alone refuses commands (503 no_quorum, nothing in the ledger) and its store gives the
ownership lease up; its peer back, commands are taken again. The container tier
(tests/containers/test_cluster_hosts.py) does this across hosts, with partitions and restarts."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from erl_support import unique_name
from stack import UpStack

T = TypeVar("T")
ROLES = "sats=1,store=1,gateway=1"


def wait_for(what: str, condition: Callable[[], T | None], timeout_s: float = 120.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.5)


def request(stack: UpStack, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{stack.gateway_url()}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {stack.admin_token()}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key is not None:
        req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def get_ok(stack: UpStack, path: str) -> Any:
    status, body = request(stack, "GET", path)
    assert status == 200, f"GET {path}: {status} {body}"
    return body


def command_done(via: UpStack, read: UpStack, sat_id: str, key: str) -> str:
    """A noop through ``via``'s gateway, acknowledged, then done (read through ``read``'s)."""
    status, body = request(via, "POST", f"/api/satellites/{sat_id}/commands", {"kind": "noop"}, key)
    assert status == 202, f"POST a command to {sat_id} via {via.beam}: {status} {body}"
    cid = str(body["id"])

    def done() -> bool:
        rows = {str(r["id"]): r["status"] for r in get_ok(read, f"/api/satellites/{sat_id}/commands?limit=100")["items"]}
        assert rows.get(cid) not in ("failed", "expired"), rows
        return rows.get(cid) == "done"

    wait_for(f"command {cid} to {sat_id} (via {via.beam}) done", done)
    return cid


def pair(tmp_path: Path, db_conninfo: str, cookie: str, demo: int, **env: str) -> tuple[UpStack, UpStack]:
    a_name, b_name = unique_name("stellar_csa").partition("@")[0], unique_name("stellar_csb").partition("@")[0]
    common = {"STELLAROPS_COOKIE": cookie, "DATABASE_URL": db_conninfo, "STELLAROPS_ROLES": ROLES,
              "STELLAROPS_CLUSTER_DNS_POLL_S": "0.5", **env}  # fmt: skip
    a = UpStack(tmp_path / "a", a_name, STELLAROPS_DEMO_SATELLITES=str(demo),
                STELLAROPS_CLUSTER_PEERS=f"{b_name}@127.0.0.1", **common)  # fmt: skip
    b = UpStack(tmp_path / "b", b_name, STELLAROPS_DEMO_SATELLITES="0",
                STELLAROPS_CLUSTER_PEERS=f"{a_name}@127.0.0.1", **common)  # fmt: skip
    return a, b


@pytest.fixture
def two_stacks(tmp_path: Path, db_conninfo: str, cookie: str) -> Iterator[tuple[UpStack, UpStack]]:
    a, b = pair(tmp_path, db_conninfo, cookie, 2)
    started: list[UpStack] = []
    try:
        started.append(a.start(timeout_s=240))  # first: its store owns the database
        started.append(b.start(timeout_s=240))
        yield a, b
    finally:
        for stack in reversed(started):
            stack.stop()


def beams(via: UpStack) -> set[str]:
    return {n["name"] for n in get_ok(via, "/api/nodes")["items"] if n["role"] == "beam" and n["status"] == "up"}


@pytest.mark.erlang
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_commands_outcomes_and_telemetry_reach_the_owner_from_any_node(
    two_stacks: tuple[UpStack, UpStack], db_conninfo: str
) -> None:
    a, b = two_stacks
    wait_for("each gateway sees both BEAM nodes", lambda: beams(a) == beams(b) == {a.beam, b.beam})
    sats = wait_for("the demo satellites run", lambda: [s for s in get_ok(a, "/api/satellites")["items"] if s["status"] == "running"])
    on_a = sats[0]["id"]
    assert sats[0]["beam"] == a.beam, sats

    # Created through the standby's gateway: stored by the owner, placed on the standby (its sats
    # node is the least loaded).
    status, body = request(b, "POST", "/api/satellites", {"id": "far-1", "name": "Far"})
    assert status == 201, (status, body)

    def far_running() -> dict[str, Any] | None:
        found = {s["id"]: s for s in get_ok(b, "/api/satellites")["items"]}.get("far-1")
        return found if found and found["status"] == "running" else None

    far = wait_for("far-1 running", far_running)
    assert far["beam"] == b.beam, far

    # Commands through either gateway, for a satellite on either node: acknowledged, then done.
    acked = [
        command_done(b, b, on_a, "b-to-a"),
        command_done(a, a, "far-1", "a-to-b"),
        command_done(b, a, "far-1", "b-to-b"),
    ]
    with psycopg.connect(db_conninfo) as conn:
        rows = conn.execute("SELECT id::text, status FROM commands WHERE id::text = ANY(%s)", (acked,)).fetchall()
        assert sorted(rows) == sorted((cid, "done") for cid in acked), rows

    # The standby's satellite: its telemetry and checkpoints reach the database (through the
    # owner's node), and the standby hears its telemetry confirmed.
    def version() -> int:
        with psycopg.connect(db_conninfo) as conn:
            row = conn.execute("SELECT version FROM satellites WHERE id = 'far-1'").fetchone()
        return int(row[0]) if row else 0

    def samples() -> int:
        with psycopg.connect(db_conninfo) as conn:
            row = conn.execute("SELECT count(*) FROM telemetry WHERE satellite_id = 'far-1'").fetchone()
        return int(row[0]) if row else 0

    def confirmed_on_b() -> float:
        """stellar_telemetry_rows_total of B's BEAM node: rows whose batch the owner's store
        confirmed, the confirmation relayed back to B (only then do they leave B's buffer)."""
        req = urllib.request.Request(f"{b.gateway_url()}/metrics", headers={"Authorization": f"Bearer {b.admin_token()}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("stellar_telemetry_rows_total "):
                    return float(line.split()[1])
        return 0.0

    after_commands = version()
    wait_for("far-1 checkpointed again (periodic checkpoints)", lambda: version() > after_commands)
    wait_for("far-1's telemetry stored", lambda: samples() >= 3)
    wait_for("B hears its telemetry confirmed", lambda: confirmed_on_b() >= 3)


def ledger_count(db_conninfo: str, sat_id: str) -> int:
    with psycopg.connect(db_conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM commands WHERE satellite_id = %s", (sat_id,)).fetchone()
    return int(row[0]) if row else 0


def lease_holder(db_conninfo: str) -> str | None:
    with psycopg.connect(db_conninfo) as conn:
        row = conn.execute("SELECT holder FROM cluster_owner").fetchone()
    return None if row is None else str(row[0])


@pytest.mark.erlang
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_node_without_quorum_refuses_commands_and_lets_the_database_go(
    tmp_path: Path, db_conninfo: str, cookie: str
) -> None:
    """Two of an expected three (STELLAROPS_CLUSTER_SIZE=3) have quorum; when one stops, the other
    is a minority: its gateway answers 503 no_quorum and acknowledges nothing, and its store gives
    the ownership lease up (no row, no lock). The peer back, commands are taken again."""
    a, b = pair(tmp_path, db_conninfo, cookie, 0, STELLAROPS_CLUSTER_SIZE="3")
    started = [a.start(timeout_s=240), b.start(timeout_s=240)]
    try:
        wait_for("each gateway sees both BEAM nodes", lambda: beams(a) == beams(b) == {a.beam, b.beam})
        created = wait_for("a satellite created (quorum: 2 of 3)",
                           lambda: request(a, "POST", "/api/satellites", {"id": "q-1", "name": "Q"})[0] == 201)  # fmt: skip
        assert created
        wait_for("q-1 running", lambda: any(s["id"] == "q-1" and s["status"] == "running" for s in get_ok(a, "/api/satellites")["items"]))
        command_done(a, a, "q-1", "with-quorum")
        assert lease_holder(db_conninfo) is not None

        started.remove(b)
        stopped_at = time.monotonic()
        assert b.stop() == 0

        def refused() -> dict[str, Any] | None:
            status, body = request(a, "POST", "/api/satellites/q-1/commands", {"kind": "noop"})
            assert status in (503, 202), (status, body)  # 202 only before the loss is seen
            return body if status == 503 and body["error"]["code"] == "no_quorum" else None

        body = wait_for("the minority refuses with 503 no_quorum", refused)
        refused_s = round(time.monotonic() - stopped_at, 1)
        assert body["error"]["details"] == {"reason": "no_quorum"}, body
        before = ledger_count(db_conninfo, "q-1")
        for i in range(5):
            status, body = request(a, "POST", "/api/satellites/q-1/commands", {"kind": "noop"}, f"refused-{i}")
            assert (status, body["error"]["code"]) == (503, "no_quorum"), (status, body)
        assert ledger_count(db_conninfo, "q-1") == before, "a refused command reached the ledger"
        wait_for("the minority's store gives the lease up", lambda: lease_holder(db_conninfo) is None or None)
        gave_up_s = round(time.monotonic() - stopped_at, 1)
        status, body = request(a, "GET", "/api/satellites/q-1/commands?limit=10")
        assert status == 200, (status, body)  # reads still work on the minority

        back = UpStack(b.home, b.beam.partition("@")[0], **{k: v for k, v in b.env.items() if k.startswith(("STELLAROPS_", "DATABASE_URL"))})
        started.append(back.start(timeout_s=240))
        wait_for("quorum back: a command through the first node's gateway",
                 lambda: request(a, "POST", "/api/satellites/q-1/commands", {"kind": "noop"}, "back")[0] == 202, 180)  # fmt: skip
        assert lease_holder(db_conninfo) is not None
        print(f"minority: refused {refused_s} s and lease given up {gave_up_s} s after its peer stopped")
    finally:
        for stack in reversed(started):
            stack.stop()
