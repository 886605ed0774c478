"""The gateway's HTTP request metrics (``web.metrics.RequestMetrics``, counted in plain lists for
speed) come out exactly as prometheus_client's own Histogram and Counter write the same
observations: names, labels, cumulative buckets (a value on a bound counts in that bucket),
``_count``, ``_sum``, ``_created``."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from web.metrics import _BUCKETS, RequestMetrics

OBSERVATIONS = [
    ("GET", "/api/satellites/{sat_id}", 200, 0.0012),
    ("GET", "/api/satellites/{sat_id}", 200, 0.001),  # on a bound: counted in le="0.001"
    ("GET", "unmatched", 404, 0.0005),
    ("POST", "/api/satellites", 201, 3.0),
    ("GET", "/api/satellites/{sat_id}", 404, 31.0),  # past the last bound: +Inf only
    ("GET", "/api/satellites/{sat_id}", 200, 0.0),
]


def _text(registry: CollectorRegistry) -> str:
    text = generate_latest(registry).decode()
    return re.sub(r"^(\S+_created\{.*\}) \S+$", r"\1 T", text, flags=re.M)  # creation times differ


def test_request_metrics_match_prometheus_clients_histogram_and_counter() -> None:
    reference = CollectorRegistry()
    duration = Histogram(
        "stellar_http_request_duration_seconds", "HTTP request duration by route", ["method", "route"], buckets=_BUCKETS, registry=reference
    )
    requests = Counter("stellar_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=reference)
    ours = CollectorRegistry()
    metrics = RequestMetrics()
    ours.register(metrics)
    for method, route, status, seconds in OBSERVATIONS:
        duration.labels(method, route).observe(seconds)
        requests.labels(method, route, str(status)).inc()
        metrics.observe(method, route, status, seconds)
    expected = _text(reference)
    assert 'le="0.001",method="GET",route="/api/satellites/{sat_id}"} 2.0' in expected
    assert _text(ours) == expected


def test_no_requests_no_series() -> None:
    registry = CollectorRegistry()
    registry.register(RequestMetrics())
    text = generate_latest(registry).decode()
    assert "stellar_http_requests_total{" not in text and "_bucket{" not in text
