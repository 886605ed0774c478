"""Gateway benchmark: our GET /api/satellites/{id} against a bare aiohttp JSON handler, same load.

    .venv/bin/python bench/gateway_bench.py [--duration 10] [--connections 32] [--rounds 2]
        [--sse-clients 1000] [--sse-seconds 30] [--sse-procs 2] [--no-sse] [--strict]

Runs the real stack (``stellarops up`` in a temporary state folder: BEAM, sats, orbital, store
and gateway nodes, embedded PostgreSQL, the demo constellation of 24) and, beside it, a bare
aiohttp server whose one handler returns a satellite-sized JSON object. The same load generator
(``wrk`` when installed: ``apt-get install wrk``; else a Python aiohttp client in its own
process) hits both, in interleaved rounds: requests/s, p50 and p99 latency, and the gateway's
CPU. Ours goes through bearer auth (cached), validation, the satellites' read model (an rpc to
BEAM, ``stellar:sat/1``, when it is stale), metrics and a JSON access-log line. Target (issue 19):
ours >= 0.8 x the bare rate. On a shared machine the rates swing with the neighbours' load, so
the CPU each server spends per request is reported too (its ratio, bare/ours, is steadier).

SSE fan-out: N clients (a separate process) each subscribe to the telemetry of 10 satellites
(the actors tick every second: 10 events/s per client) for the given time; reports events
received, gaps, drops counted by the gateway, and the gateway's CPU. Targets (``sse_checks``):
no drops, no gaps, and every client got events at the ticking rate (10/s, within 20 %): a run
where nothing arrived has no gaps and no drops, and must fail.
Results also go to bench/results/gateway_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import UpStack, save_results

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TARGET_RATIO = 0.8
SSE_SATS = [f"demo-{i:02d}" for i in range(1, 11)]
SSE_RATE_PER_S = float(len(SSE_SATS))  # each satellite ticks once a second
SSE_RATE_TOLERANCE = 0.2
# The shape and size of one satellite as the gateway answers it.
SAMPLE_SAT = {
    "id": "demo-01", "name": "Demo 01", "mode": "nominal", "status": "running", "energy_pct": 97.25,
    "memory_used_mb": 12.5, "memory_capacity_mb": 1024.0,
    "tle": {"line1": "1 99001U          24060.50000000 -.00000250  00000-0 -12345-3 0  9993",
            "line2": "2 99001  53.0000   0.0000 0001000   0.0000   0.0000 15.05000000    01"},
    "lat_deg": 12.345678, "lon_deg": -45.678901, "alt_km": 551.23, "in_sunlight": True,
    "node": "stellar_gwbench_sats1@127.0.0.1", "beam": "stellar_gwbench@127.0.0.1",
    "updated_at": "2026-03-01T12:00:00.000Z",
}  # fmt: skip


# -- the bare server and the Python load generator (run as subprocesses of this file) ----------


def bare_server() -> None:
    from aiohttp import web

    body = json.dumps(SAMPLE_SAT, separators=(",", ":"))

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/satellites/{sat_id}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def py_load(url: str, token: str, connections: int, seconds: float) -> None:
    """Closed-loop load: ``connections`` workers each sending the next request when answered."""
    import aiohttp

    async def main() -> None:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    async with http.get(url, headers=headers) as r:
                        await r.read()
                        if r.status != 200:
                            errors += 1
                    latencies.append(time.perf_counter() - start)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - start
        latencies.sort()
        print(json.dumps({
            "rps": len(latencies) / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3, "errors": errors,
        }), flush=True)  # fmt: skip

    asyncio.run(main())


def sse_clients(url: str, token: str, clients: int, seconds: float) -> None:
    """``clients`` event streams (telemetry of SSE_SATS); prints what each received."""
    import aiohttp

    async def main() -> None:
        counts = [0] * clients
        gaps = [0] * clients
        closed = [False] * clients
        sats = ",".join(SSE_SATS)
        headers = {"Authorization": f"Bearer {token}"}
        connected = 0
        all_connected = asyncio.Event()
        counting = asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def client(i: int) -> None:
                nonlocal connected
                last: dict[str, int] = {}
                async with http.get(f"{url}/api/events?types=telemetry&sat={sats}", headers=headers) as r:
                    connected += 1
                    if connected == clients:
                        all_connected.set()
                    # Whole chunks, split into frames here: reading line by line costs the client
                    # more than the gateway spends sending (5,000 clients x 10 events/s).
                    pending = b""
                    async for chunk in r.content.iter_any():
                        frames = (pending + chunk).split(b"\n\n")
                        pending = frames.pop()
                        if not counting.is_set():
                            continue
                        for frame in frames:
                            start = frame.find(b"data: ")
                            if start < 0:
                                continue  # a ping (comment)
                            end = frame.find(b"\n", start)
                            event = json.loads(frame[start + 6 : end if end >= 0 else len(frame)])
                            counts[i] += 1
                            ms = event["data"].get("updated_at", 0)
                            sat = event["sat_id"]
                            if sat in last and ms - last[sat] > 1500:  # a tick missed
                                gaps[i] += 1
                            last[sat] = ms
                closed[i] = True

            tasks = [asyncio.create_task(client(i)) for i in range(clients)]
            await asyncio.wait_for(all_connected.wait(), 60)
            await asyncio.sleep(1.0)
            counting.set()
            start = time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - start
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        print(json.dumps({
            "clients": clients, "seconds": elapsed, "events": sum(counts), "min_per_client": min(counts),
            "max_per_client": max(counts), "per_client_per_s": sum(counts) / clients / elapsed, "gaps": sum(gaps),
            "closed_by_server": sum(closed),
        }), flush=True)  # fmt: skip

    asyncio.run(main())


def sse_checks(sse: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE verdicts: nothing dropped or missed, and the events actually flowed at the rate
    the satellites tick (the mean per client, and the slowest client over the whole run)."""
    low, high = SSE_RATE_PER_S * (1 - SSE_RATE_TOLERANCE), SSE_RATE_PER_S * (1 + SSE_RATE_TOLERANCE)
    slowest_per_s = sse["min_per_client"] / sse["seconds"] if sse["seconds"] > 0 else 0.0
    return [
        {"check": "SSE: events received", "value": sse["events"], "pass": sse["events"] > 0},
        {"check": "SSE: no client dropped", "value": sse["dropped"], "pass": sse["dropped"] == 0},
        {"check": "SSE: no stream closed by the gateway", "value": sse["closed_by_server"], "pass": sse["closed_by_server"] == 0},
        {"check": "SSE: no gaps", "value": sse["gaps"], "pass": sse["gaps"] == 0},
        {"check": f"SSE: {low:g}..{high:g} events/s per client (mean)", "value": round(sse["per_client_per_s"], 2),
         "pass": low <= sse["per_client_per_s"] <= high},
        {"check": f"SSE: slowest client >= {low:g} events/s", "value": round(slowest_per_s, 2), "pass": slowest_per_s >= low},
    ]  # fmt: skip


# -- the driver ----------------------------------------------------------------------------------


def run_sse_clients(url: str, token: str, clients: int, seconds: float, procs: int) -> dict[str, Any]:
    """The SSE clients split over ``procs`` processes (one Python process cannot read 50,000
    events/s), their reports merged."""
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    running = [
        subprocess.Popen([PY, __file__, "--child-sse-clients", url, token, str(n), str(seconds)], stdout=subprocess.PIPE, text=True)
        for n in shares if n > 0
    ]  # fmt: skip
    parts = []
    for proc in running:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"an SSE client process failed ({proc.returncode})")
        parts.append(json.loads(out))
    events = sum(p["events"] for p in parts)
    return {
        "clients": clients, "processes": len(parts), "seconds": max(p["seconds"] for p in parts), "events": events,
        "min_per_client": min(p["min_per_client"] for p in parts), "max_per_client": max(p["max_per_client"] for p in parts),
        "per_client_per_s": sum(p["per_client_per_s"] * p["clients"] for p in parts) / clients,
        "gaps": sum(p["gaps"] for p in parts), "closed_by_server": sum(p["closed_by_server"] for p in parts),
    }  # fmt: skip


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str, connections: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match is not None, out
        return float(match[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rps is not None, out
    return {"rps": float(rps[1]), "p50_ms": ms("50%"), "p99_ms": ms("99%"), "errors": int(non2xx[1]) if non2xx else 0}


def load(url: str, token: str, connections: int, seconds: float) -> dict[str, Any]:
    if shutil.which("wrk"):
        return wrk(url, token, connections, seconds)
    out = subprocess.run([PY, __file__, "--py-load", url, token, str(connections), str(seconds)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return dict(json.loads(out))


def gateway_pid(url: str, token: str) -> int:
    import urllib.request

    request = urllib.request.Request(f"{url}/api/nodes", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        nodes = json.load(r)["items"]
    return int(next(n["os_pid"] for n in nodes if n["role"] == "gateway"))


def metric(url: str, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return float("nan")


def run(args: argparse.Namespace) -> int:
    home = Path(tempfile.mkdtemp(prefix="stellarops-gwbench-"))
    stack = UpStack(home / "home", "stellar_gwbench", STELLAROPS_DEMO_SATELLITES="24")
    bare = subprocess.Popen([PY, __file__, "--bare-server"], stdout=subprocess.PIPE, text=True)
    load_before = os.getloadavg()
    checks: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    try:
        assert bare.stdout is not None
        bare_url = f"http://127.0.0.1:{bare.stdout.readline().strip()}/api/satellites/demo-01"
        print("starting the stack (stellarops up)...", flush=True)
        stack.start(300.0)
        token, url = stack.admin_token(), stack.gateway_url()
        ours_url = f"{url}/api/satellites/demo-01"
        pid = gateway_pid(url, token)
        generator = "wrk -t1" if shutil.which("wrk") else "python aiohttp client"
        print(f"load: {generator}, {args.connections} connections, {args.duration:g} s per run, {args.rounds} rounds")
        load(ours_url, token, args.connections, 2)  # warm-up (token cache, connections)
        load(bare_url, token, args.connections, 2)
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "ours": []}
        for _ in range(args.rounds):
            before = cpu_s(bare.pid)
            result = load(bare_url, token, args.connections, args.duration)
            result["cpu_us_per_request"] = 1e6 * (cpu_s(bare.pid) - before) / max(1.0, result["rps"] * args.duration)
            runs["bare"].append(result)
            before = cpu_s(pid)
            result = load(ours_url, token, args.connections, args.duration)
            result["gateway_cpu_pct"] = 100 * (cpu_s(pid) - before) / args.duration
            result["cpu_us_per_request"] = 1e6 * (cpu_s(pid) - before) / max(1.0, result["rps"] * args.duration)
            runs["ours"].append(result)
        summary = {
            name: {
                "rps": statistics.median(r["rps"] for r in rs),
                "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
                "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in rs),
            }
            for name, rs in runs.items()
        }
        summary["ours"]["gateway_cpu_pct"] = statistics.median(r["gateway_cpu_pct"] for r in runs["ours"])
        ratio = summary["ours"]["rps"] / summary["bare"]["rps"]
        cpu_ratio = summary["bare"]["cpu_us_per_request"] / summary["ours"]["cpu_us_per_request"]
        print(f"{'':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/req':>10}")
        for name in ("bare", "ours"):
            s = summary[name]
            print(f"{name:6} {s['rps']:9.0f} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['errors']:7d} {s['cpu_us_per_request']:10.1f}")
        print(f"ratio ours/bare: {ratio:.2f} (target >= {TARGET_RATIO}); CPU per request bare/ours {cpu_ratio:.2f}; "
              f"gateway CPU under load {summary['ours']['gateway_cpu_pct']:.0f}%")  # fmt: skip
        load_after = os.getloadavg()
        print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores: above ~2 the neighbours share the CPU)")
        body["http"] = {"generator": generator, "runs": runs, "summary": summary, "ratio": ratio, "cpu_ratio": cpu_ratio,
                        "loadavg_after": load_after}  # fmt: skip
        checks.append({"check": f"ours >= {TARGET_RATIO} x bare", "value": round(ratio, 3), "pass": ratio >= TARGET_RATIO})
        checks.append({"check": "no errors", "value": summary["ours"]["errors"], "pass": summary["ours"]["errors"] == 0})
        if not args.no_sse:
            print(f"SSE: {args.sse_clients} clients x telemetry of {len(SSE_SATS)} satellites for {args.sse_seconds:g} s...")
            dropped_before = metric(url, "stellar_sse_clients_dropped_total")
            before, t0 = cpu_s(pid), time.perf_counter()
            sse = run_sse_clients(url, token, args.sse_clients, args.sse_seconds, args.sse_procs)
            cpu_pct = 100 * (cpu_s(pid) - before) / (time.perf_counter() - t0)
            sse["dropped"] = metric(url, "stellar_sse_clients_dropped_total") - dropped_before
            sse["gateway_cpu_pct"] = cpu_pct
            print(f"  events {sse['events']} ({sse['per_client_per_s']:.2f}/s per client; min {sse['min_per_client']}, "
                  f"max {sse['max_per_client']} per client), gaps {sse['gaps']}, dropped {sse['dropped']:.0f}, "
                  f"gateway CPU {cpu_pct:.0f}% (incl. connecting)")  # fmt: skip
            body["sse"] = sse
            checks += sse_checks(sse)
    finally:
        bare.terminate()
        stack.stop(120.0)
        shutil.rmtree(home, ignore_errors=True)
    passed = all(c["pass"] for c in checks)
    params = {"duration_s": args.duration, "connections": args.connections, "rounds": args.rounds,
              "sse_clients": args.sse_clients, "sse_seconds": args.sse_seconds, "sse_procs": args.sse_procs,
              "sse": not args.no_sse}  # fmt: skip
    save_results("gateway_bench", params, None, load_before, body, checks, passed)
    for c in checks:
        print(f"  [{'ok' if c['pass'] else 'FAIL'}] {c['check']}: {c['value']}")
    return 0 if passed or not args.strict else 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-server":
        bare_server()
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--py-load":
        py_load(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--child-sse-clients":
        sse_clients(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sse-clients", type=int, default=1000)
    parser.add_argument("--sse-seconds", type=float, default=30.0)
    parser.add_argument("--sse-procs", type=int, default=2, help="processes the SSE clients are split over")
    parser.add_argument("--no-sse", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
