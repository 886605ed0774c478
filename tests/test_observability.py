"""Observability (issue 14, phase 8): the Prometheus configuration and alert rules (promtool), the
Grafana provisioning and dashboards (files, and every panel's query parsed), then against one
real stack (``stellarops up`` in JSON-log mode): every metric a panel or an alert names is
exported, a real Prometheus scrapes the stack and every panel's query returns data, a BEAM node
that does not answer leaves /metrics answering, and every line the stack prints is a JSON log
object with the common keys.

promtool and prometheus come from Debian's ``prometheus`` package (``scripts/setup.sh --tests``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML (a dependency of schemathesis, in the dev extras)
from stack import ROOT, UpStack

from py_nodes.logs import JsonFormatter, configure, console_line, sat_id_var

PROM_DIR = ROOT / "docker" / "prometheus"
GRAFANA_DIR = ROOT / "docker" / "grafana"
DASHBOARDS = GRAFANA_DIR / "dashboards"
METRIC = re.compile(r"\bstellar_[a-z0-9_]+\b")
LOG_KEYS = ("ts", "level", "node", "msg")
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
BEAM_NAME = "stellar_obs"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} not found: install Debian's `prometheus` package (scripts/setup.sh --tests)"
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("promtool"), *args], capture_output=True, text=True, timeout=60)


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((PROM_DIR / "rules" / "stellarops.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def _panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every target of every panel."""
    return [
        (name, panel["title"], target["expr"])
        for name, dashboard in _dashboards().items()
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


# -- log lines of the Python processes -----------------------------------------------------------


def test_json_log_lines_have_the_common_keys_first() -> None:
    formatter = JsonFormatter("sats1@h")
    record = logging.LogRecord("stellarops.x", logging.ERROR, __file__, 1, "lost %d", (3,), None)
    record.fields = {"node": "spoofed", "rows": 3}  # extra fields never replace the common keys
    sat_id_var.set("sat-7")
    try:
        line = formatter.format(record)
    finally:
        sat_id_var.set(None)
    entry = json.loads(line)
    assert line.startswith('{"ts":')  # what stellar_log.erl passes through unchanged
    assert list(entry)[:4] == list(LOG_KEYS) and TS.fullmatch(entry["ts"])
    assert (entry["level"], entry["node"], entry["msg"], entry["sat_id"], entry["rows"]) == ("error", "sats1@h", "lost 3", "sat-7", 3)


def test_console_lines_follow_the_log_format() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # pytest's: put back after configure's
    try:
        configure("text", "INFO", "stellarops-up")
        assert console_line("final checkpoint written") == "stellarops: final checkpoint written"
        configure("json", "INFO", "stellarops-up")
        entry = json.loads(console_line("the database is down", level=logging.WARNING))
        assert (entry["node"], entry["level"], entry["msg"]) == ("stellarops-up", "warning", "the database is down")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


# -- Prometheus: configuration and alert rules ---------------------------------------------------


def test_prometheus_config_is_valid_and_scrapes_the_gateway() -> None:
    checked = _promtool("check", "config", str(PROM_DIR / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout  # rules/*.yml, relative to the config
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    # The compose contract: the `stellar` service's gateway on 8080.
    assert job["metrics_path"] == "/metrics" and job["static_configs"] == [{"targets": ["stellar:8080"]}]


def test_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    checked = _promtool("check", "rules", str(PROM_DIR / "rules" / "stellarops.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", str(PROM_DIR / "tests" / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for rule in _rules()}
    # The list: node down, Python node crash loop, telemetry dropping, database
    # unavailable, command failure ratio, energy low across the fleet.
    assert {"StellarGatewayDown", "StellarBeamNodeDown", "StellarPythonNodeCrashLoop", "StellarTelemetryDropping",
            "StellarDatabaseUnavailable", "StellarCommandFailureRatio", "StellarFleetEnergyLow"} <= alerts  # fmt: skip
    tests = yaml.safe_load((PROM_DIR / "tests" / "alerts_test.yml").read_text())["tests"]
    covered = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert covered == alerts, f"alerts without a firing test: {sorted(alerts - covered)}"
    for rule in _rules():
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"], rule["alert"]


def test_each_alert_unit_test_fails_when_its_rule_never_fires(tmp_path: Path) -> None:
    """The unit tests can fail: with one alert's expression replaced by one that never holds,
    promtool test rules reports that alert."""
    shutil.copytree(PROM_DIR, tmp_path / "prometheus")
    rules_file = tmp_path / "prometheus" / "rules" / "stellarops.yml"
    original = yaml.safe_load(rules_file.read_text())
    for index, rule in enumerate(_rules()):
        broken = json.loads(json.dumps(original))
        [r for g in broken["groups"] for r in g["rules"]][index]["expr"] = "vector(0) > 1"
        rules_file.write_text(json.dumps(broken))  # JSON is YAML
        tested = _promtool("test", "rules", str(tmp_path / "prometheus" / "tests" / "alerts_test.yml"))
        assert tested.returncode != 0 and f"alertname: {rule['alert']}," in tested.stdout + tested.stderr, rule["alert"]


# -- Grafana: provisioning and dashboards ----------------------------------------------------------


def test_grafana_provisioning_and_dashboards() -> None:
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "stellarops.yml").read_text())
    (provider,) = providers["providers"]
    # docker/compose.yaml mounts docker/grafana/dashboards there.
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = _dashboards()
    titles = sorted(d["title"] for d in dashboards.values())
    assert titles == ["StellarOps / BEAM and Python nodes", "StellarOps / Commands", "StellarOps / Fleet overview",
                      "StellarOps / Telemetry pipeline"]  # fmt: skip
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards)
    for name, dashboard in dashboards.items():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            where = f"{name}: {panel['title']}"
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
            assert panel["targets"], where
            for target in [panel, *panel["targets"]]:
                assert target["datasource"] == {"type": "prometheus", "uid": source["uid"]}, where


def test_every_panel_query_parses(tmp_path: Path) -> None:
    """promtool has no parser for a bare expression: each query becomes a recording rule, and
    `promtool check rules` parses them (a broken query is caught: checked on the last line)."""
    queries = _panel_queries()
    assert len(queries) >= 20

    def check(exprs: list[str]) -> subprocess.CompletedProcess[str]:
        rules = [{"record": f"stellarops:panel_{i}", "expr": expr} for i, expr in enumerate(exprs)]
        path = tmp_path / "panels.yml"
        path.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}))
        return _promtool("check", "rules", str(path))

    checked = check([expr for _, _, expr in queries])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout
    broken = check(["sum by (kind (rate(stellar_commands_total[5m]))"])
    assert broken.returncode != 0


# -- against a real stack -----------------------------------------------------------------------------


def _http(url: str, token: str | None = None, body: dict[str, Any] | None = None, timeout_s: float = 30.0) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _sample_names(exposition: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in exposition.splitlines() if line and not line.startswith("#")}


def _wait(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    """A stack with JSON logs, some commands done, an orbital call made and one satellite actor
    crashed (its shadow logs with sat_id)."""
    home = tmp_path_factory.mktemp("obs")
    stack = UpStack(home / "home", BEAM_NAME, STELLAROPS_LOG_FORMAT="json", STELLAROPS_DEMO_SATELLITES="4")
    stderr = open(home / "stderr.log", "w")  # noqa: SIM115 (open for the stack's life)
    stack.start(timeout_s=90, stderr=stderr)
    try:
        url, token = stack.gateway_url(), stack.admin_token()
        for _ in range(3):
            status, body = _http(f"{url}/api/satellites/demo-01/commands", token, {"kind": "noop", "args": {}})
            assert status == 202, body
        status, body = _http(f"{url}/api/satellites/demo-02/position", token)
        assert status == 200, body

        async def crash() -> None:
            async with stack.ctl("obs_ctl") as ctl:
                assert await stack.rpc(ctl, "stellar", "crash", [b"demo-03"]) == "ok"

        asyncio.run(crash())
        _wait(lambda: 'stellar_commands_total{kind="noop",outcome="done"} 3.0' in _http(f"{url}/metrics")[1].decode(),
              60, "3 noop commands done in /metrics")  # fmt: skip
        yield stack
    finally:
        stack.stop()
        stderr.close()


@pytest.mark.timeout(240)
def test_every_metric_a_panel_or_alert_names_is_exported(json_stack: UpStack) -> None:
    status, body = _http(f"{json_stack.gateway_url()}/metrics", json_stack.admin_token())
    assert status == 200
    exported = _sample_names(body.decode())
    named = {m for _, _, expr in _panel_queries() for m in METRIC.findall(expr)}
    named |= {m for rule in _rules() for m in METRIC.findall(rule["expr"])}
    assert len(named) >= 25
    assert named <= exported, f"named but not exported: {sorted(named - exported)}"
    # Bounded cardinality: no satellite id in any label of any series.
    assert "demo-0" not in body.decode()
    # Prometheus' conventions: one prefix, counters end in _total (tasks failed is one now),
    # histograms are durations in seconds, gauges never end in _total.
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body.decode(), re.MULTILINE))
    assert types["stellar_tasks_failed_total"] == "counter" and types["stellar_commands_total"] == "counter"
    for family, kind in types.items():
        assert family.startswith("stellar_"), family
        if kind == "counter":
            assert family.endswith("_total") and family in exported, family
        elif kind == "histogram":
            assert family.endswith("_seconds") and f"{family}_bucket" in exported, family
        else:
            assert kind == "gauge" and not family.endswith("_total"), (family, kind)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.timeout(240)
def test_prometheus_scrapes_the_stack_and_every_panel_returns_data(json_stack: UpStack, tmp_path: Path) -> None:
    """The repository's prometheus.yml and rules, pointed at this stack (and scraping every
    second), in a real Prometheus: the target is up, every rule evaluates, every panel's query
    returns at least one series."""
    shutil.copytree(PROM_DIR, tmp_path / "prometheus")
    config_path = tmp_path / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    gateway = urllib.parse.urlsplit(json_stack.gateway_url()).netloc
    config["scrape_configs"][0]["static_configs"] = [{"targets": [gateway]}]
    config_path.write_text(json.dumps(config))
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    with open(tmp_path / "prometheus.log", "w") as log:
        prometheus = subprocess.Popen(
            [_tool("prometheus"), f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log,
        )  # fmt: skip
    try:

        def query(expr: str) -> list[Any]:
            status, body = _http(f"{api}/query?" + urllib.parse.urlencode({"query": expr}), timeout_s=10)
            assert status == 200, body
            result: list[Any] = json.loads(body)["data"]["result"]
            return result

        def ready() -> bool:
            try:
                return bool(query('up{job="stellar"} == 1'))
            except (urllib.error.URLError, ConnectionError):
                assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()
                return False

        _wait(ready, 60, "Prometheus scraping the stack")
        queries = _panel_queries()
        # rate() needs two samples of a series in its window: a few scrapes.
        deadline = time.monotonic() + 60
        while empty := [f"{name}: {title}: {expr}" for name, title, expr in queries if not query(expr)]:
            assert time.monotonic() < deadline, f"panels without data after 60 s: {empty}"
            time.sleep(1)
        _, body = _http(f"{api}/rules")
        rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        assert len(rules) == len(_rules()) and all(r["health"] == "ok" for r in rules), rules
        # A healthy stack fires nothing (energy is high, nothing is dropped or down).
        assert [r["name"] for r in rules if r["state"] == "firing"] == []
    finally:
        prometheus.terminate()
        prometheus.wait(30)


def _beam_pid(stack: UpStack) -> int:
    assert stack.proc is not None
    children = Path(f"/proc/{stack.proc.pid}/task/{stack.proc.pid}/children").read_text().split()
    (pid,) = [int(c) for c in children if Path(f"/proc/{c}/comm").read_text().startswith("beam")]
    return pid


@pytest.mark.timeout(240)
def test_a_hung_beam_node_leaves_metrics_answering(json_stack: UpStack) -> None:
    """SIGSTOP the BEAM node: /metrics still answers, each time within Prometheus' default scrape
    timeout (10 s), with stellar_beam_up 0 and without the BEAM node's series; after SIGCONT they
    are back."""
    url = f"{json_stack.gateway_url()}/metrics"
    beam = _beam_pid(json_stack)
    os.kill(beam, signal.SIGSTOP)
    try:

        def beam_down() -> str | None:
            start = time.monotonic()
            status, body = _http(url, timeout_s=30)
            took_s = time.monotonic() - start
            assert status == 200 and took_s < 10, (status, took_s)
            text = body.decode()
            return text if "stellar_beam_up 0.0" in text else None

        text = _wait(beam_down, 60, "stellar_beam_up 0 while the BEAM node is stopped")
        assert "stellar_beam_processes" not in text and "stellar_http_requests_total" in text
    finally:
        os.kill(beam, signal.SIGCONT)
    _wait(lambda: "stellar_beam_up 1.0" in _http(url)[1].decode(), 60, "stellar_beam_up 1 after SIGCONT")


@pytest.mark.timeout(240)
def test_every_line_the_stack_prints_is_a_json_log(json_stack: UpStack) -> None:
    """After a clean stop: every line of the up process's stdout (its own lines, the BEAM node's,
    the Python nodes') and stderr is one JSON object with ts, level, node and msg."""
    assert json_stack.stop() == 0
    time.sleep(0.5)  # the reader thread copies the last lines
    stderr = (json_stack.home.parent / "stderr.log").read_text()
    lines = [*json_stack.banner.splitlines(), *"".join(json_stack.log_tail).splitlines(), *stderr.splitlines()]
    entries = []
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        assert isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in LOG_KEYS), line
        assert TS.fullmatch(entry["ts"]), line
        entries.append(entry)
    nodes = {e["node"] for e in entries}
    beam = f"{BEAM_NAME}@127.0.0.1"
    assert {beam, "stellarops-up", f"{BEAM_NAME}_sats1@127.0.0.1", f"{BEAM_NAME}_gateway1@127.0.0.1"} <= nodes, nodes
    assert any("Stop with Ctrl-C" in e["msg"] for e in entries)  # the banner, as one object
    assert any(e.get("sat_id") == "demo-03" and e["node"] == beam for e in entries)  # the crashed actor
    assert any(e["msg"].endswith("stopped (exit status 0)") for e in entries)
    # up read the BEAM node's JSON line about the final checkpoint (its msg, not the whole line).
    assert any(e["msg"] == "final checkpoint written (checkpointed 4 satellite(s) at stop)" for e in entries)
    assert json_stack.admin_token() not in "\n".join(lines)  # JSON output is collected as logs
