"""Prometheus metrics of the gateway, in a registry of its own (no global state).

Fleet gauges (``stellar_satellites_active``, ``stellar_energy_avg``, ``stellar_tasks_pending``,
``stellar_tasks_failed_total``) are refreshed when ``/metrics`` is scraped, at most once per
``fleet_refresh_s``, from the cluster and the database (telemetry delivery counters from BEAM's
``stellar_store:status()``, cumulative there); HTTP and SSE metrics are updated as
requests run; distribution messages in/out are read from the erldist connections at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "DistCollector", "GatewayMetrics", "TelemetryCollector"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Latency buckets for a gateway answering in ~1 ms from memory up to seconds (orbital work).
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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


class GatewayMetrics:
    def __init__(self, *, fleet_refresh_s: float = 2.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fleet_refresh_s = fleet_refresh_s
        self.fleet_refreshed_at = -1e9
        self.satellites_active = Gauge("stellar_satellites_active", "Satellites whose actor is running", registry=r)
        self.satellites_total = Gauge("stellar_satellites_total", "Satellites in the cluster", registry=r)
        self.energy_avg = Gauge("stellar_energy_avg", "Mean battery level of the satellites, percent", registry=r)
        self.tasks_pending = Gauge("stellar_tasks_pending", "Tasks pending or scheduled", registry=r)
        self.tasks_failed = Gauge(
            "stellar_tasks_failed_total", "Tasks that failed (a count from the database, never decreases)", registry=r
        )
        self.http_duration = Histogram(
            "stellar_http_request_duration_seconds", "HTTP request duration by route",
            ["method", "route"], buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.http_requests = Counter(
            "stellar_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=r
        )
        self.sse_clients = Gauge("stellar_sse_clients", "Connected server-sent-event clients", registry=r)
        self.sse_dropped = Counter(
            "stellar_sse_clients_dropped", "SSE clients dropped because they could not keep up", registry=r
        )
        self.sse_events = Counter("stellar_sse_events", "Events received from the cluster for fan-out", registry=r)
        self.sse_resets = Counter("stellar_sse_resets", "reset events sent (a client resumed too late)", registry=r)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.telemetry = TelemetryCollector()
        r.register(self.telemetry)

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
        self.tasks_pending.set(pending)
        self.tasks_failed.set(failed)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # labels() looks up under a lock: once per (method, route, status)
            children = self._children[key] = (
                self.http_duration.labels(method, route),
                self.http_requests.labels(method, route, str(status)),
            )
        children[0].observe(seconds)
        children[1].inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
