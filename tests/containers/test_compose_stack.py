"""The compose stack for real (docker/compose.yaml on Podman here): built, brought up and checked
over HTTP on the published port; its Prometheus and the Grafana panels' queries; the stellar
container's main process killed with SIGKILL from the host and brought back by the restart
policy; `down` then `up` again. The tests run in file order on one stack and build on each other
(the data the kill and the restart must keep is made by the earlier ones)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from typing import Any

from compose_support import ROOT, Stack, wait_for

DEMO_SATELLITES = 24  # STELLAROPS_DEMO_SATELLITES' default: the compose file does not set it
EXTRA_SAT = {"id": "ctest-1", "name": "Container tier"}
COMMANDS_PER_RUN = 5
GRAFANA_DASHBOARDS = ROOT / "docker" / "grafana" / "dashboards"
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus" / "prometheus.yml"
# What the data made here must look like after the kill and after down/up (filled in as we go).
_kept: dict[str, Any] = {}


def _done_commands(stack: Stack, sat_ids: list[str], tag: str) -> dict[str, tuple[str, str, str]]:
    """Sends a noop to each satellite (idempotency keys tagged) and waits until each is done."""
    ids = {}
    for sat_id in sat_ids:
        status, body = stack.request(
            "POST", f"/api/satellites/{sat_id}/commands", {"kind": "noop"}, headers={"Idempotency-Key": f"{tag}-{sat_id}"}
        )
        assert status == 202, f"POST command to {sat_id}: {status} {body}"
        ids[str(body["id"])] = sat_id

    def all_done() -> dict[str, tuple[str, str, str]] | None:
        ledger = stack.ledger(sorted(set(ids.values())))
        statuses = {cid: ledger.get(cid, ("", "", "missing"))[2] for cid in ids}
        assert not {s for s in statuses.values() if s in ("failed", "expired")}, statuses
        return {cid: ledger[cid] for cid in ids} if set(statuses.values()) == {"done"} else None

    return wait_for(f"commands {sorted(ids)} done", all_done, timeout_s=120)


def _snapshot(stack: Stack) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    sats = stack.satellites()
    return sats, stack.ledger(sorted(sats))


def _assert_kept(stack: Stack, when: str) -> None:
    sats, ledger = _snapshot(stack)
    assert sats == _kept["sats"], f"{when}: satellites differ: {set(sats) ^ set(_kept['sats'])}"
    lost = {cid: row for cid, row in _kept["ledger"].items() if ledger.get(cid) != row}
    assert not lost, f"{when}: ledger rows lost or changed: {lost}"


def test_stack_comes_up_healthy_on_the_published_port(stack: Stack) -> None:
    for path in ("/healthz", "/readyz"):
        status, body = stack.request("GET", path)
        assert status == 200, f"{path}: {status} {body}"
    assert stack.inspect("stellar", "{{.State.Status}}") == "running"
    # PostgreSQL is reachable from the project's network only.
    assert stack.cli("port", stack.container("db"), check=False).strip() == ""
    # The one-shot migrated and exited 0 before the app started.
    assert stack.inspect("migrate", "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"


def test_demo_constellation_is_there(stack: Stack) -> None:
    sats = wait_for("the demo constellation", lambda: stack.satellites() if len(stack.satellites()) >= DEMO_SATELLITES else None, 120)
    demo = sorted(s for s in sats if s.startswith("demo-"))
    assert len(demo) == DEMO_SATELLITES, demo
    status, body = stack.request("GET", "/api/nodes")
    assert status == 200, body
    roles = json.dumps(body)
    for role in ("sats", "orbital", "store", "gateway"):
        assert role in roles, f"no {role} node in {body}"


def test_a_command_goes_to_done(stack: Stack) -> None:
    status, body = stack.request("POST", "/api/satellites", EXTRA_SAT)
    assert status == 201, f"POST /api/satellites: {status} {body}"
    demo = sorted(s for s in stack.satellites() if s.startswith("demo-"))
    targets = [*demo[: COMMANDS_PER_RUN - 1], EXTRA_SAT["id"]]
    done = _done_commands(stack, targets, "before-kill")
    assert len(done) == COMMANDS_PER_RUN


def test_sse_delivers_an_event(stack: Stack) -> None:
    events = list(stack.sse_events("/api/events?types=telemetry,state", count=2, timeout_s=60))
    assert len(events) == 2, events
    for event in events:
        data = json.loads(event["data"])
        assert event["event"] == data["type"] and data["type"] in ("telemetry", "state"), event
        assert int(event["id"]) > 0 and data["sat_id"], event


def test_orbital_node_answers(stack: Stack) -> None:
    # A position and a ground track (SGP4 on the orbital node): the orbital panels' traffic too.
    sat_id = sorted(s for s in stack.satellites() if s.startswith("demo-"))[0]
    for path in (f"/api/satellites/{sat_id}/position", f"/api/satellites/{sat_id}/track"):
        status, body = stack.request("GET", path)
        assert status == 200 and isinstance(body, dict), f"GET {path}: {status} {body}"


def _scrape_jobs() -> list[str]:
    """The job names of docker/prometheus/prometheus.yml (docker/ is B's; read, not assumed)."""
    import yaml

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return [job["job_name"] for job in config["scrape_configs"]]


def test_prometheus_scraped_the_stack(stack: Stack) -> None:
    jobs = _scrape_jobs()
    assert jobs, "no scrape job in prometheus.yml"
    for job in jobs:
        wait_for(f"up{{job={job!r}}} == 1", lambda job=job: stack.promql(f'up{{job="{job}"}} == 1') or None, 120, 2)
    # The gateway's domain metrics went through the scrape, not only the target's `up`.
    # (the demo constellation and the satellite made above: a scrape after it was made)
    query = f"stellar_satellites >= {DEMO_SATELLITES + 1}"
    wait_for(f"{query} scraped", lambda: stack.promql(query) or None, 90, 2)


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard / panel title, PromQL) of every target of every panel (rows' panels too)."""
    found: list[tuple[str, str]] = []

    def walk(title: str, panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(title, panel.get("panels", []))
            for target in panel.get("targets", []):
                if target.get("expr") and not target.get("hide"):
                    found.append((f"{title} / {panel.get('title', '?')}", target["expr"]))

    for path in sorted(GRAFANA_DASHBOARDS.rglob("*.json")):
        dashboard = json.loads(path.read_text())
        dashboard = dashboard.get("dashboard", dashboard)
        walk(dashboard.get("title", path.stem), dashboard.get("panels", []))
    return found


def instant_query(expr: str) -> str:
    """A panel's PromQL as Prometheus takes it: Grafana's interval macros given the values
    Grafana would pick here, template variables matching every value."""
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
    expr = re.sub(r'(\w+)\s*=~?\s*"\$\{?\w+(?::\w+)?\}?"', r'\1=~".*"', expr)
    return re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", expr)


def test_every_grafana_panel_query_returns_data(stack: Stack) -> None:
    queries = panel_queries()
    assert queries, f"no panel queries under {GRAFANA_DASHBOARDS}"
    empty: list[str] = []
    deadline = time.monotonic() + 180
    for name, expr in queries:
        query = instant_query(expr)
        while not stack.promql(query):
            if time.monotonic() > deadline:
                empty.append(f"{name}: {query}")
                break
            time.sleep(5)
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_sigkill_of_the_main_process_is_restarted_with_the_data_kept(stack: Stack) -> None:
    _kept["sats"], _kept["ledger"] = _snapshot(stack)
    assert EXTRA_SAT["id"] in _kept["sats"] and len(_kept["ledger"]) >= COMMANDS_PER_RUN
    pid = int(stack.inspect("stellar", "{{.State.Pid}}"))
    restarts = int(stack.inspect("stellar", "{{.RestartCount}}"))
    assert pid > 0
    os.kill(pid, signal.SIGKILL)  # from the host, as the kernel's OOM killer would

    def restarted() -> bool | None:
        state = stack.inspect("stellar", "{{.State.Status}} {{.State.Pid}} {{.RestartCount}}").split()
        return True if state[0] == "running" and int(state[1]) not in (0, pid) and int(state[2]) > restarts else None

    start = time.monotonic()
    wait_for("the stellar container restarted by its restart policy", restarted, 120)
    stack.compose("health", "600", timeout_s=700)
    stack.timings_s["restart_after_sigkill_s"] = round(time.monotonic() - start, 1)
    wait_for("readyz after the restart", lambda: True if stack.request("GET", "/readyz")[0] == 200 else None, 120)
    _assert_kept(stack, "after SIGKILL and restart")
    # The restarted stack takes commands again.
    _kept["ledger"].update(_done_commands(stack, [EXTRA_SAT["id"]], "after-kill"))


def test_down_then_up_keeps_the_data(stack: Stack) -> None:
    assert _kept, "needs the data of the kill test"
    stack.timed_compose("down_s", "down", timeout_s=300)
    assert stack.containers() == [], "down left containers"
    stack.timed_compose("up_again_s", "up", timeout_s=1800, STELLAROPS_COMPOSE_BUILD="0")
    _assert_kept(stack, "after down and up")

