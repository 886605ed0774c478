"""Prometheus metrics of the gateway, in a registry of its own (no global state).

Fleet figures (``stellar_satellites_active``, ``stellar_energy_avg``, ``stellar_tasks_pending``,
``stellar_tasks_failed_total``, ``stellar_alarms_active{severity}``, ``stellar_alarms{severity,state}``,
``stellar_database_up``)
are refreshed when ``/metrics`` is scraped, at most once per ``fleet_refresh_s``, from the
cluster and the database; so are the BEAM node's own metrics (``stellar:metrics()``: VM,
commands, orbital calls, Python nodes, distribution; ``BeamCollector``) and its telemetry
delivery counters (``stellar_store:status()``), both cumulative there. A BEAM node that does not
answer in time leaves its series out and sets ``stellar_beam_up`` to 0: /metrics still answers.
HTTP and SSE metrics are updated as requests run; distribution messages in/out are read from
the erldist connections at scrape time. Labels come from fixed sets (routes, kinds, severities,
node names): none is per satellite.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client import metrics as client_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from py_nodes.vocabulary import ALARM_STATES

__all__ = ["CONTENT_TYPE", "SEVERITIES", "BeamCollector", "DistCollector", "GatewayMetrics", "TelemetryCollector"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Latency buckets for a gateway answering in ~1 ms from memory up to seconds (orbital work).
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SEVERITIES = ("info", "warning", "critical")  # alarms' (py_nodes.db.alarms.Severity)


# The BEAM node's one-number cluster figures: (family, name, help, key in its dist map, default).
_CLUSTER_SCALARS: Final = (
    (CounterMetricFamily, "stellar_cluster_joins", "Times a node joined the BEAM node's cluster (since it started)", "joins", 0),
    (CounterMetricFamily, "stellar_cluster_leaves", "Times a node left the BEAM node's cluster (since it started)", "leaves", 0),
    (GaugeMetricFamily, "stellar_cluster_discovered_peers", "BEAM peers that discovery names (static and DNS)", "discovered", 0),
    (GaugeMetricFamily, "stellar_cluster_quorum", "1 while the BEAM node sees a majority of STELLAROPS_CLUSTER_SIZE", "quorum", 1),
    (CounterMetricFamily, "stellar_cluster_quorum_losses", "Times the BEAM node lost quorum and stopped its satellites", "quorum_losses", 0),
    (CounterMetricFamily, "stellar_cluster_peer_failures", "BEAM peers disconnected for silence (STELLAROPS_CLUSTER_FAILURE_MS)", "peer_failures", 0),
    (CounterMetricFamily, "stellar_cluster_rebalance_moves", "Satellites this BEAM node moved to others to even out the load", "moves", 0),
)  # fmt: skip

class RequestMetrics(Collector):
    """``stellar_http_request_duration_seconds{method,route}`` (a histogram) and
    ``stellar_http_requests_total{method,route,status}``, counted in plain lists per label set:
    a request costs one bisect and a few additions, where prometheus_client's children take a
    lock per bucket and per counter (their observe was the largest part of a request's metrics
    work). No lock is needed: only the event loop writes, and a scrape reads whole numbers. At
    scrape time the series come out as prometheus_client's Histogram and Counter write them
    (buckets cumulative, ``_count``, ``_sum``, ``_created``)."""

    DURATION: Final = "stellar_http_request_duration_seconds"
    REQUESTS: Final = "stellar_http_requests"

    def __init__(self, buckets: tuple[float, ...] = _BUCKETS) -> None:
        self._bounds = (*buckets, float("inf"))
        self._les: list[str] = [floatToGoString(b) for b in self._bounds]  # type: ignore[no-untyped-call]
        # (method, route) -> [count per bucket..., sum_s, created]; (method, route, status) -> [count, created]
        self._durations: dict[tuple[str, str], list[float]] = {}
        self._requests: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        durations = self._durations.get((method, route))
        if durations is None:
            durations = self._durations[(method, route)] = [0.0] * len(self._bounds) + [0.0, time.time()]
        durations[bisect.bisect_left(self._bounds, seconds)] += 1
        durations[-2] += seconds
        requests = self._requests.get((method, route, status))
        if requests is None:
            requests = self._requests[(method, route, status)] = [0.0, time.time()]
        requests[0] += 1

    def collect(self) -> Iterable[Metric]:
        created = client_metrics._use_created  # PROMETHEUS_DISABLE_CREATED_SERIES, as the library reads it
        duration = Metric(self.DURATION, "HTTP request duration by route", "histogram")
        n = len(self._bounds)
        for (method, route), values in list(self._durations.items()):
            counts, total_s, at = values[:n], values[n], values[n + 1]
            acc = 0.0
            for le, count in zip(self._les, counts, strict=True):
                acc += count
                duration.add_sample(self.DURATION + "_bucket", {"method": method, "route": route, "le": le}, acc)
            duration.add_sample(self.DURATION + "_count", {"method": method, "route": route}, acc)
            duration.add_sample(self.DURATION + "_sum", {"method": method, "route": route}, total_s)
            if created:
                duration.add_sample(self.DURATION + "_created", {"method": method, "route": route}, at)
        requests = Metric(self.REQUESTS, "HTTP requests by route and status", "counter")
        for (method, route, status), (count, at) in list(self._requests.items()):
            labels = {"method": method, "route": route, "status": str(status)}
            requests.add_sample(self.REQUESTS + "_total", labels, count)
            if created:
                requests.add_sample(self.REQUESTS + "_created", labels, at)
        return [duration, requests]


class DistCollector(Collector):
    """``stellar_dist_messages_{received,sent}_total`` per peer node, from erldist connections."""

    def __init__(self, connections: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        self._connections = connections

    def collect(self) -> Iterable[Metric]:
        received = CounterMetricFamily(
            "stellar_dist_messages_received", "Erlang distribution messages received, per peer node", labels=["peer"]
        )
        sent = CounterMetricFamily("stellar_dist_messages_sent", "Erlang distribution messages sent, per peer node", labels=["peer"])
        for peer, messages_in, messages_out in self._connections():
            received.add_metric([peer], messages_in)
            sent.add_metric([peer], messages_out)
        return [received, sent]


class TelemetryCollector(Collector):
    """Telemetry delivery, as BEAM counts it (``stellar_store:status()``'s ``telemetry`` map):
    rows stored, rows dropped by reason (never reset), rows buffered. Nothing until first read."""

    def __init__(self) -> None:
        self.status: dict[str, Any] | None = None

    def collect(self) -> Iterable[Metric]:
        status = self.status
        if status is None:
            return []
        rows = CounterMetricFamily("stellar_telemetry_rows", "Telemetry rows the store confirmed written")
        rows.add_metric([], status.get("rows", 0))
        dropped = CounterMetricFamily(
            "stellar_telemetry_dropped", "Telemetry rows given up, by reason (buffer_full, rejected)", labels=["reason"]
        )
        for reason, count in sorted(status.get("dropped", {}).items()):
            dropped.add_metric([reason], count)
        buffered = GaugeMetricFamily(
            "stellar_telemetry_buffered_rows", "Telemetry rows in BEAM's buffer, not yet confirmed written"
        )
        buffered.add_metric([], status.get("buffered", 0))
        return [rows, dropped, buffered]


class TasksCollector(Collector):
    """``stellar_tasks_failed_total``: a counter whose value is the database's count (it never
    decreases); nothing until first read."""

    def __init__(self) -> None:
        self.failed: int | None = None
        # The scheduler's figures (py_nodes.db.tasks): tasks per state, plan runs per cause (the
        # database's counts: a counter), the newest run's solve time.
        self.by_state: dict[str, int] | None = None
        self.replans: dict[str, int] | None = None
        self.solve_ms: float | None = None

    def collect(self) -> Iterable[Metric]:
        found: list[Metric] = []
        if self.failed is not None:
            failed = CounterMetricFamily("stellar_tasks_failed", "Tasks that failed (the database's count)")
            failed.add_metric([], self.failed)
            found.append(failed)
        if self.by_state is not None:
            states = GaugeMetricFamily("stellar_tasks", "Mission tasks by state", labels=["state"])
            for state, count in self.by_state.items():
                states.add_metric([state], count)
            found.append(states)
        if self.replans is not None:
            replans = CounterMetricFamily("stellar_replans", "Plan runs by cause (the database's count)", labels=["cause"])
            for cause, count in self.replans.items():
                replans.add_metric([cause], count)
            found.append(replans)
        if self.solve_ms is not None:
            solve = GaugeMetricFamily("stellar_plan_solve_seconds", "Solve time of the newest plan run")
            solve.add_metric([], self.solve_ms / 1000.0)
            found.append(solve)
        return found


def _histogram(family: HistogramMetricFamily, labels: list[str], value: Any) -> None:
    """One labelled histogram from ``stellar_metrics``' form: cumulative ``[[le_s, count], ...]``."""
    buckets = [(_le(le), count) for le, count in value["buckets"]] + [("+Inf", value["count"])]
    family.add_metric(labels, buckets, value["sum_s"])


def _le(bound: float) -> str:
    return repr(float(bound))


class BeamCollector(Collector):
    """The BEAM node's metrics as ``stellar:metrics()`` answered them at the last refresh
    (``stellar_metrics.erl`` describes them); only ``stellar_beam_up`` when it did not answer."""

    def __init__(self) -> None:
        self.metrics: dict[str, Any] | None = None
        self.up: bool | None = None

    def set(self, metrics: dict[str, Any] | None) -> None:
        self.metrics, self.up = metrics, metrics is not None

    def collect(self) -> Iterable[Metric]:
        if self.up is None:
            return []
        up = GaugeMetricFamily("stellar_beam_up", "1 when the BEAM node answered the last metrics refresh, else 0")
        up.add_metric([], 1 if self.up else 0)
        m = self.metrics
        if m is None:
            return [up]
        return [up, *self._vm(m["vm"], m["top_queues"]), *self._work(m), *self._nodes(m["py_nodes"], m["dist"])]

    @staticmethod
    def _vm(vm: dict[str, Any], top: list[dict[str, Any]]) -> list[Metric]:
        processes = GaugeMetricFamily("stellar_beam_processes", "Erlang processes on the BEAM node")
        processes.add_metric([], vm["processes"])
        ports = GaugeMetricFamily("stellar_beam_ports", "Erlang ports on the BEAM node")
        ports.add_metric([], vm["ports"])
        run_queue = GaugeMetricFamily("stellar_beam_run_queue", "Processes ready to run, all schedulers")
        run_queue.add_metric([], vm["run_queue"])
        memory = GaugeMetricFamily("stellar_beam_memory_bytes", "BEAM memory by kind (erlang:memory/0)", labels=["kind"])
        for kind, size in sorted(vm["memory_bytes"].items()):
            memory.add_metric([kind], size)
        queues = GaugeMetricFamily(
            "stellar_beam_busiest_queue_messages",
            "Message queue length of the busiest processes (rank 1..5; process: registered name or module)",
            labels=["rank", "process"],
        )
        for entry in top:
            queues.add_metric([str(entry["rank"]), entry["process"]], entry["messages"])
        return [processes, ports, run_queue, memory, queues]

    @staticmethod
    def _work(m: dict[str, Any]) -> list[Metric]:
        commands = CounterMetricFamily(
            "stellar_commands", "Commands that got their outcome, by kind and outcome (done, failed)", labels=["kind", "outcome"]
        )
        for row in m["commands"]:
            commands.add_metric([row["kind"], row["outcome"]], row["count"])
        latency = HistogramMetricFamily(
            "stellar_command_duration_seconds",
            "From the satellite's shadow accepting a command (already in the ledger) to its outcome",
            labels=["kind"],
        )
        for row in m["command_latency"]:
            _histogram(latency, [row["kind"]], row["histogram"])
        calls = CounterMetricFamily(
            "stellar_orbital_calls", "Calls to the orbital node by operation and result (ok, error)", labels=["op", "result"]
        )
        for row in m["orbital_calls"]:
            calls.add_metric([row["op"], row["result"]], row["count"])
        orbital = HistogramMetricFamily(
            "stellar_orbital_call_duration_seconds", "Orbital calls (propagate, passes, visible) as BEAM times them",
            labels=["op"],
        )  # fmt: skip
        for row in m["orbital_latency"]:
            _histogram(orbital, [row["op"]], row["histogram"])
        return [commands, latency, calls, orbital]

    @staticmethod
    def _nodes(py_nodes: list[dict[str, Any]], dist: dict[str, Any]) -> list[Metric]:
        up = GaugeMetricFamily("stellar_py_node_up", "1 while the Python node is up", labels=["node", "role"])
        restarts = CounterMetricFamily(
            "stellar_py_node_restarts", "Times BEAM started the Python node again after it died", labels=["node", "role"]
        )
        for n in py_nodes:
            up.add_metric([n["name"], n["role"]], 1 if n["up"] else 0)
            restarts.add_metric([n["name"], n["role"]], n["restarts"])
        connections = GaugeMetricFamily(
            "stellar_dist_connections", "Erlang distribution connections of the BEAM node (visible, hidden)", labels=["kind"]
        )
        for kind in ("visible", "hidden"):
            connections.add_metric([kind], dist.get(kind, 0))
        scalars = [family(name, text, labels=[]) for family, name, text, _, _ in _CLUSTER_SCALARS]
        for metric, (_, _, _, key, default) in zip(scalars, _CLUSTER_SCALARS, strict=True):
            metric.add_metric([], dist.get(key, default))
        return [up, restarts, connections, *scalars]


class GatewayMetrics:
    def __init__(self, *, fleet_refresh_s: float = 2.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fleet_refresh_s = fleet_refresh_s
        self.fleet_refreshed_at = -1e9
        self.satellites_active = Gauge("stellar_satellites_active", "Satellites whose actor is running", registry=r)
        self.satellites_total = Gauge("stellar_satellites", "Satellites in the cluster (a gauge: no _total)", registry=r)
        self.energy_avg = Gauge("stellar_energy_avg", "Mean battery level of the satellites, percent", registry=r)
        self.tasks_pending = Gauge("stellar_tasks_pending", "Tasks pending or scheduled", registry=r)
        self.tasks = TasksCollector()
        r.register(self.tasks)
        self.alarms_active = Gauge("stellar_alarms_active", "Active (not cleared) alarms by severity", ["severity"], registry=r)
        self.alarms_open = Gauge("stellar_alarms", "Open (not cleared) alarms by severity and state", ["severity", "state"], registry=r)
        self.database_up = Gauge("stellar_database_up", "1 while the gateway reaches the database, else 0", registry=r)
        self.requests = RequestMetrics()
        r.register(self.requests)
        self.sse_clients = Gauge("stellar_sse_clients", "Connected server-sent-event clients", registry=r)
        self.sse_dropped = Counter(
            "stellar_sse_clients_dropped", "SSE clients dropped because they could not keep up", registry=r
        )
        self.sse_events = Counter("stellar_sse_events", "Events received from the cluster for fan-out", registry=r)
        self.sse_resets = Counter("stellar_sse_resets", "reset events sent (a client resumed too late)", registry=r)
        self.telemetry = TelemetryCollector()
        r.register(self.telemetry)
        self.beam = BeamCollector()
        r.register(self.beam)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def fleet_stale(self) -> bool:
        return time.monotonic() - self.fleet_refreshed_at >= self.fleet_refresh_s

    def set_fleet(self, sats: list[dict[str, Any]]) -> None:
        self.satellites_total.set(len(sats))
        self.satellites_active.set(sum(1 for s in sats if s.get("status") == "running"))
        energies = [s["energy_pct"] for s in sats if isinstance(s.get("energy_pct"), int | float)]
        self.energy_avg.set(sum(energies) / len(energies) if energies else float("nan"))
        self.fleet_refreshed_at = time.monotonic()

    def set_store(self, status: dict[str, Any]) -> None:
        """From ``stellar_store:status()`` (as JSON)."""
        telemetry = status.get("telemetry")
        self.telemetry.status = telemetry if isinstance(telemetry, dict) else None

    def set_tasks(self, pending: int, failed: int) -> None:
        """``failed``: the database's count of failed tasks, which never decreases (a counter)."""
        self.tasks_pending.set(pending)
        self.tasks.failed = failed

    def set_plan(self, by_state: dict[str, int], replans: dict[str, int], solve_ms: float | None) -> None:
        """The scheduler's figures: tasks per state, plan runs per cause, the newest solve time."""
        self.tasks.by_state, self.tasks.replans, self.tasks.solve_ms = by_state, replans, solve_ms

    def set_alarms(self, active: dict[str, int]) -> None:
        """Active alarms by severity (every severity is exported, 0 when none)."""
        for severity in SEVERITIES:
            self.alarms_active.labels(severity).set(active.get(severity, 0))

    def set_alarm_states(self, counts: dict[tuple[str, str], int]) -> None:
        """Open alarms by (severity, state): every pair is exported, 0 when none."""
        for severity in SEVERITIES:
            for state in ALARM_STATES:
                if state != "cleared":
                    self.alarms_open.labels(severity, state).set(counts.get((severity, state), 0))

    def set_database(self, up: bool) -> None:
        self.database_up.set(1 if up else 0)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.observe(method, route, status, seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
