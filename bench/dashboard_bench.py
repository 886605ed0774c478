"""Dashboard benchmark: the React dashboard in headless Chromium with a live constellation.

    .venv/bin/python bench/dashboard_bench.py [--satellites 1000] [--longtask-s 60] [--memory-s 300]
        [--strict]

Starts the whole stack (``stellarops up`` in a temporary state folder, the demo constellation of N
satellites updating at 1 Hz, the gateway on a free port serving web/dashboard/dist), waits until
every satellite has a position and telemetry flows, then runs ``web/dashboard/e2e/bench.mjs``
(Playwright + /usr/bin/chromium), which measures in the browser:

1. first render of the map: ms from navigation start until the canvas shows all N satellites
   (3 fresh pages, median);
2. long tasks (PerformanceObserver) and main-thread time (CDP Performance.getMetrics) on the map
   for --longtask-s, on the satellites list for a third of it;
3. JS heap after a forced GC every 10 s on the map for --memory-s;
4. the reference, in the same run: a bare page reading /api/events and drawing N dots on a canvas
   at each 250 ms batch, for a third of --longtask-s; our figures over its.

The verdict is against the reference measured in the same run (a loaded machine slows both):
main-thread time and Chromium CPU on the map at most 4x the bare page's, and no more long tasks
per minute on the map or the list than on the bare page. Absolute floors are a second line,
reported apart (floors_pass):
no task > 50 ms at all (the API reports only tasks over 50 ms, whatever duration it shows), first
render median < 1500 ms (the bare page has no first render to compare: it only draws what the
stream brings). Memory is judged against itself: flat = the average of the last minute within
10% of the first minute after a 30 s warm-up, two disjoint windows (so --memory-s >= 150).
Results also go to bench/results/dashboard_bench.json. Exit code 0 unless --strict and a check
fails (2: no build).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchlib import UpStack, save_results

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "web" / "dashboard"
SCRIPT = DASHBOARD / "e2e" / "bench.mjs"
MAX_LONG_TASK_MS = 50.0
FIRST_RENDER_MS = 1500.0
MAX_RATIO_TO_REFERENCE = 4.0  # main-thread time and Chromium CPU, map / bare page
MEMORY_MIN_S = 150.0  # 30 s warm-up, then a first and a last minute that share no sample


def get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)


def wait_ready(url: str, token: str, satellites: int, timeout_s: float = 300.0) -> None:
    """Until every satellite has a position (the map can draw them all) and telemetry flows."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            page = get_json(f"{url}/api/satellites?limit={satellites}", token)
            placed = sum(1 for s in page["items"] if s.get("lat_deg") is not None)
            if page["total"] == satellites and placed == satellites:
                break
            state = f"{page['total']} satellites, {placed} placed"
        except OSError as e:
            state = str(e)
        if time.monotonic() > deadline:
            raise SystemExit(f"the constellation is not ready after {timeout_s:g} s: {state}")
        time.sleep(2)
    request = urllib.request.Request(
        f"{url}/api/events?types=telemetry", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as stream:
        events, start = 0, time.monotonic()
        while events < satellites:  # about a second of telemetry
            line = stream.readline()
            if not line:
                raise SystemExit("the event stream closed")
            events += line.startswith(b"data: ")
    print(f"telemetry flows: {events} events in {time.monotonic() - start:.1f} s")


def verdicts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Checks against the bare page of the same run first, then the absolute floors."""
    ref, ratios, mem = body["reference"], body["ratios"], body["memory"]
    first = body["first_render"]["median_ms"]

    def within(name: str, what: str) -> dict[str, Any]:
        ratio = ratios[name]
        return {"check": f"vs reference: {what} on the map <= {MAX_RATIO_TO_REFERENCE:g}x the bare page's",
                "value": f"x{ratio}", "pass": ratio is not None and ratio <= MAX_RATIO_TO_REFERENCE}  # fmt: skip

    checks = [
        within("main_thread_busy", "main-thread time"),
        within("chromium_cpu", "Chromium CPU"),
        *({"check": f"vs reference: {view}: long tasks per minute <= the bare page's",
           "value": f"{body[view]['long_tasks_per_min']}/min vs {ref['long_tasks_per_min']}/min",
           "pass": body[view]["long_tasks_per_min"] <= ref["long_tasks_per_min"]} for view in ("map", "list")),
        {"check": f"memory flat over {mem['seconds']:g} s (last minute within 10% of the first, disjoint)",
         "value": f"{mem['change_pct']:+}%, {mem['slope_bytes_per_min'] / 1e3:.0f} kB/min", "pass": mem["flat"]},
        {"check": f"floor: first render of the map, median < {FIRST_RENDER_MS:g} ms", "value": first,
         "pass": first < FIRST_RENDER_MS},
        *({"check": f"floor: {view}: no main-thread task > {MAX_LONG_TASK_MS:g} ms over {body[view]['seconds']:g} s",
           "value": f"{body[view]['long_tasks']} long tasks, max {body[view]['long_task_max_ms']} ms",
           "pass": body[view]["long_tasks"] == 0} for view in ("map", "list")),
    ]  # fmt: skip
    return checks


def run(args: argparse.Namespace) -> int:
    if not (DASHBOARD / "dist" / "index.html").exists():
        print(
            "no dashboard build: run `bash scripts/dashboard.sh` (or `npm run build` in web/dashboard)"
        )
        return 2
    node = shutil.which("node")
    if node is None:
        print("node is not installed")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="stellarops-dashbench-"))
    stack = UpStack(tmp / "home", "dashbench", STELLAROPS_DEMO_SATELLITES=str(args.satellites))
    load_before = os.getloadavg()
    out = tmp / "browser.json"
    try:
        print(
            f"starting the stack (stellarops up, {args.satellites} demo satellites)...", flush=True
        )
        stack.start(300.0)
        token, url = stack.admin_token(), stack.gateway_url()
        wait_ready(url, token, args.satellites)
        env = {**os.environ, "DASHBOARD_URL": url, "STELLAROPS_TOKEN": token, "BENCH_OUT": str(out),
               "BENCH_LONGTASK_S": f"{args.longtask_s:g}", "BENCH_MEMORY_S": f"{args.memory_s:g}"}  # fmt: skip
        if subprocess.run([node, str(SCRIPT)], env=env, cwd=DASHBOARD).returncode != 0:
            print(f"{SCRIPT.relative_to(ROOT)} failed")
            return 1
        body: dict[str, Any] = json.loads(out.read_text())
    finally:
        stack.stop(120.0)
        shutil.rmtree(tmp, ignore_errors=True)

    checks = verdicts(body)
    # The verdict is the comparison with the bare page and memory; floors are a second line.
    passed = all(c["pass"] for c in checks if not c["check"].startswith("floor:"))
    body["floors_pass"] = all(c["pass"] for c in checks if c["check"].startswith("floor:"))
    params = {
        "satellites": args.satellites,
        "longtask_s": args.longtask_s,
        "memory_s": args.memory_s,
    }
    save_results("dashboard_bench", params, None, load_before, body, checks, passed)
    print(f"reference ratio (map / bare page): main-thread busy x{body['ratios']['main_thread_busy']}, "
          f"Chromium CPU x{body['ratios']['chromium_cpu']}, JS heap x{body['ratios']['heap_after_gc']}")  # fmt: skip
    for c in checks:
        print(f"  [{'ok' if c['pass'] else 'FAIL'}] {c['check']}: {c['value']}")
    print(f"verdict (vs reference): {'PASS' if passed else 'FAIL'}; absolute floors: "
          f"{'PASS' if body['floors_pass'] else 'FAIL'}")  # fmt: skip
    return 0 if passed or not args.strict else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--satellites", type=int, default=1000)
    parser.add_argument(
        "--longtask-s", type=float, default=60.0, help="seconds on the map (a third on the list)"
    )
    parser.add_argument(
        "--memory-s", type=float, default=300.0, help="seconds of heap samples on the map"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args()
    if args.memory_s < MEMORY_MIN_S:
        parser.error(f"--memory-s must be at least {MEMORY_MIN_S:g} (a 30 s warm-up, then two disjoint minutes)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
