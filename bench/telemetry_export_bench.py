"""Telemetry export benchmark: GET /api/satellites/{id}/telemetry?format=csv against a raw psycopg
``COPY ... TO STDOUT`` of the same rows, same run, same database.

    .venv/bin/python bench/telemetry_export_bench.py [--days 1] [--rounds 3] [--strict]

Runs the real stack (``stellarops up`` in a temporary state folder, 2 demo satellites), writes
``days`` x 86,400 samples (1 Hz) of one satellite into its PostgreSQL, then in interleaved
rounds downloads them through the gateway (an aiohttp client reading the stream and counting
lines) and copies them with psycopg directly (the reference: no HTTP, no gateway). Reports rows/s
of both and their ratio, and the gateway's peak RSS during an export above its RSS before it
(the kernel's high-water mark, reset before each export through /proc/PID/clear_refs). Memory
must not grow with the export's size: the same is measured for an export 3 times longer.
A control run (10,000 rows as JSON, a body built in memory) shows the measure sees memory.
Targets: every row arrives; the RSS delta stays under 32 MiB (a day of CSV is ~10 MiB, so a
buffered export would show) and grows by under 8 MiB from 1x to 3x the rows; ours >= 0.3 x raw
COPY (ours parses, re-chunks and sends over HTTP what COPY only reads).
Results also go to bench/results/telemetry_export_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from benchlib import UpStack, rss_kib, save_results

from py_nodes.db.telemetry import COPY_TELEMETRY, COPY_TYPES

SAT = "export-bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAX_RSS_DELTA_MIB = 32.0
MAX_RSS_GROWTH_MIB = 8.0
TARGET_RATIO = 0.3
RAW_COPY = (
    "COPY (SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS time, satellite_id, energy_pct,"
    " memory_used_mb, mode, lat_deg, lon_deg, alt_km, in_sunlight FROM telemetry WHERE satellite_id = %s"
    " AND time >= %s AND time < %s ORDER BY time) TO STDOUT (FORMAT CSV, HEADER)"
)


def fill(conninfo: str, rows: int) -> None:
    """``rows`` samples of SAT, one a second from T0, with a moving position."""
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor().copy(COPY_TELEMETRY) as copy:
        copy.set_types(COPY_TYPES)
        for s in range(rows):
            lat, lon = 50.0 * ((s % 5400) / 2700 - 1), (s * 0.0667) % 360 - 180
            copy.write_row((SAT, T0 + timedelta(seconds=s), 100.0 - (s % 5400) / 60, 100.0 + (s % 900) / 9,
                            ("nominal", "science", "downlink")[s // 1800 % 3], lat, lon, 550.0 + (s % 97) / 10, s % 5400 < 3600))  # fmt: skip


def window(rows: int) -> tuple[datetime, datetime]:
    return T0, T0 + timedelta(seconds=rows)


def gateway_pid(url: str, token: str) -> int:
    import json

    request = urllib.request.Request(f"{url}/api/nodes", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        nodes = json.load(r)["items"]
    return int(next(n["os_pid"] for n in nodes if n["role"] == "gateway"))


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak RSS (VmHWM) of ``pid`` to its current RSS; False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakRss:
    """The peak RSS of ``pid`` from now on: the kernel's VmHWM after resetting it (clear_refs 5),
    with sampling as a fallback where the reset is not allowed."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before_kib = rss_kib(pid)
        self.sampled_kib = self.before_kib
        self._stop = threading.Event()
        self.exact = reset_peak(pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.sampled_kib = max(self.sampled_kib, rss_kib(self.pid))

    def delta_mib(self) -> float:
        self._stop.set()
        self._thread.join()
        peak = self.sampled_kib
        if self.exact:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        return (peak - self.before_kib) / 1024


async def download(url: str, token: str, rows: int) -> dict[str, Any]:
    import aiohttp

    start, end = window(rows)
    query = {"format": "csv", "from": start.isoformat(), "to": end.isoformat()}
    lines = size = 0
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.get(
        f"{url}/api/satellites/{SAT}/telemetry", params=query, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200, await response.text()
        chunked = response.headers.get("Transfer-Encoding") == "chunked"
        async for chunk in response.content.iter_chunked(1 << 16):
            lines += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.perf_counter() - t0
    return {"rows": lines - 1, "bytes": size, "seconds": seconds, "rows_per_s": (lines - 1) / seconds, "chunked": chunked}


async def json_rows(url: str, token: str, rows: int) -> dict[str, Any]:
    import aiohttp

    start, end = window(rows)
    query = {"from": start.isoformat(), "to": end.isoformat(), "limit": str(rows)}
    async with aiohttp.ClientSession() as session, session.get(
        f"{url}/api/satellites/{SAT}/telemetry", params=query, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    return {"rows": len(body["items"])}


def raw_copy(conninfo: str, rows: int) -> dict[str, Any]:
    lines = size = 0
    t0 = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor().copy(RAW_COPY, (SAT, *window(rows))) as copy:
        for data in copy:
            lines += bytes(data).count(b"\n")
            size += len(data)
    seconds = time.perf_counter() - t0
    return {"rows": lines - 1, "bytes": size, "seconds": seconds, "rows_per_s": (lines - 1) / seconds}


def run(args: argparse.Namespace) -> int:
    home = Path(tempfile.mkdtemp(prefix="stellarops-exportbench-"))
    stack = UpStack(home / "home", "stellar_exportbench", STELLAROPS_DEMO_SATELLITES="2")
    load_before = os.getloadavg()
    rows = int(args.days * 86_400)
    checks: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    try:
        print("starting the stack (stellarops up)...", flush=True)
        stack.start(300.0)
        token, url = stack.admin_token(), stack.gateway_url()
        pid = gateway_pid(url, token)
        server = stack.database()
        conninfo = server.conninfo
        t0 = time.perf_counter()
        fill(conninfo, 3 * rows)
        print(f"wrote {3 * rows} rows of {SAT} in {time.perf_counter() - t0:.1f} s", flush=True)
        asyncio.run(download(url, token, 1000))  # warm-up: token cache, pool connection
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "raw": [], "ours_3x": []}
        for _ in range(args.rounds):
            runs["raw"].append(raw_copy(conninfo, rows))
            peak = PeakRss(pid)
            result = asyncio.run(download(url, token, rows))
            result["rss_delta_mib"] = peak.delta_mib()
            runs["ours"].append(result)
        for _ in range(max(1, args.rounds // 2)):
            peak = PeakRss(pid)
            result = asyncio.run(download(url, token, 3 * rows))
            result["rss_delta_mib"] = peak.delta_mib()
            runs["ours_3x"].append(result)
        # Control, last (memory freed stays in the process and would hide what follows): 10,000
        # rows as JSON, a body built in memory: the measure must see it.
        peak = PeakRss(pid)
        control = asyncio.run(json_rows(url, token, 10_000))
        control["rss_delta_mib"] = peak.delta_mib()
        print(f"control: {control['rows']} rows as JSON (built in memory): gateway RSS delta {control['rss_delta_mib']:.1f} MiB")
        summary = {
            name: {
                "rows": min(r["rows"] for r in rs),
                "rows_per_s": statistics.median(r["rows_per_s"] for r in rs),
                "mib": statistics.median(r["bytes"] for r in rs) / 2**20,
                **({"rss_delta_mib": max(r["rss_delta_mib"] for r in rs)} if name != "raw" else {}),
            }
            for name, rs in runs.items()
        }
        ratio = summary["ours"]["rows_per_s"] / summary["raw"]["rows_per_s"]
        growth = summary["ours_3x"]["rss_delta_mib"] - summary["ours"]["rss_delta_mib"]
        print(f"{'':8} {'rows':>8} {'MiB':>6} {'rows/s':>9} {'gateway RSS delta MiB':>22}")
        for name, s in summary.items():
            rss = f"{s['rss_delta_mib']:22.1f}" if "rss_delta_mib" in s else f"{'-':>22}"
            print(f"{name:8} {s['rows']:8d} {s['mib']:6.1f} {s['rows_per_s']:9.0f} {rss}")
        exact = "VmHWM" if reset_peak(pid) else "sampled every 10 ms"
        print(f"ratio ours/raw COPY: {ratio:.2f} (target >= {TARGET_RATIO}); RSS peak ({exact}) 1x -> 3x rows: "
              f"{growth:+.1f} MiB")  # fmt: skip
        body = {"runs": runs, "summary": summary, "ratio": ratio, "rss_growth_mib": growth, "rss_measure": exact, "control": control}
        checks = [
            {"check": "every row exported", "value": [summary["ours"]["rows"], summary["ours_3x"]["rows"]],
             "pass": summary["ours"]["rows"] == rows and summary["ours_3x"]["rows"] == 3 * rows},
            {"check": "chunked transfer", "value": all(r["chunked"] for r in runs["ours"]), "pass": all(r["chunked"] for r in runs["ours"])},
            {"check": f"gateway RSS delta < {MAX_RSS_DELTA_MIB} MiB", "value": round(summary["ours_3x"]["rss_delta_mib"], 1),
             "pass": summary["ours_3x"]["rss_delta_mib"] < MAX_RSS_DELTA_MIB},
            {"check": f"RSS growth 1x -> 3x rows < {MAX_RSS_GROWTH_MIB} MiB", "value": round(growth, 1), "pass": growth < MAX_RSS_GROWTH_MIB},
            {"check": f"ours >= {TARGET_RATIO} x raw COPY", "value": round(ratio, 3), "pass": ratio >= TARGET_RATIO},
            {"check": "the measure sees a body built in memory (control > 1 MiB)", "value": round(control["rss_delta_mib"], 1),
             "pass": control["rss_delta_mib"] > 1.0},
        ]  # fmt: skip
    finally:
        stack.stop(120.0)
        shutil.rmtree(home, ignore_errors=True)
    passed = bool(checks) and all(c["pass"] for c in checks)
    save_results("telemetry_export_bench", {"days": args.days, "rounds": args.rounds}, None, load_before, body, checks, passed)
    for c in checks:
        print(f"  [{'ok' if c['pass'] else 'FAIL'}] {c['check']}: {c['value']}")
    return 0 if passed or not args.strict else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=float, default=1.0, help="days of 1 Hz telemetry per export")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
