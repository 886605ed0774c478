"""Distribution benchmark: one Erlang driver node measures an Erlang peer and the Python echo role.

    .venv/bin/python bench/dist_bench.py [--messages 50000] [--calls 3000] [--rounds 3] [--strict]

Starts three nodes on 127.0.0.1 with a random cookie (in a temporary HOME, never on a command
line): `bench_peer` (Erlang twin of the echo role), `stellarops node --role echo` and the
`dist_bench` driver. Each round, the driver measures one-way throughput to `sink` and
gen_server:call latency to `echo` on both targets; the table shows the median over rounds.

Verdicts, first against the Erlang peer measured in the same run (a loaded machine slows both):
per round, Python's figure over the Erlang peer's of that round (the two are measured back to
back), and the median of those ratios must be within the target: one-way throughput >= 0.25x,
call p50 <= 1.5x, call p99 <= 2x. Then an absolute floor, as a second line: one-way >= 100,000
msg/s (from the median over rounds). Results also go to bench/results/dist_bench.json. Exit
code 0 unless --strict and a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from benchlib import HOST, erlang_env, save_results

BENCH_DIR = Path(__file__).resolve().parent
METRICS = ("msgs_per_s", "p50_us", "p99_us")
# Python over the Erlang peer of the same round (issue 2's targets): (metric, limit, at_least).
RATIO_TARGETS = (("msgs_per_s", 0.25, True), ("p50_us", 1.5, False), ("p99_us", 2.0, False))
# Issue 19's performance goals, same form: printed and saved beside the verdicts, not judged.
RATIO_GOALS = (("msgs_per_s", 0.5, True), ("p50_us", 1.2, False), ("p99_us", 1.5, False))
FLOOR_MSGS_PER_S = 100_000  # second line: Python one-way, whatever the reference did
PAYLOAD_BYTES, WARMUP_CALLS = 64, 200  # as in erl/dist_bench.erl


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


@dataclass
class Nodes:
    """Child processes of one run, stopped in reverse order by `stop_all`."""

    log_dir: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, label: str, argv: list[str], env: dict[str, str], **kw: Any
    ) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{label}.log", "wb") as log:
            kw.setdefault("stdout", log)
            kw.setdefault("stdin", subprocess.DEVNULL)
            # Own session: Ctrl-C reaches only us, and we kill the node's whole process group.
            proc = subprocess.Popen(argv, env=env, stderr=log, start_new_session=True, **kw)
        self.procs.append((label, proc))
        return proc

    def stop_all(self) -> None:
        sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip this
        try:
            self._stop_all()
        finally:
            signal.signal(signal.SIGINT, sigint)

    def _stop_all(self) -> None:
        for _label, proc in reversed(self.procs):
            if proc.stdin is not None:  # Python node: EOF (--stop-on-eof), then SIGTERM
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(3)
                if proc.poll() is None:
                    proc.terminate()
            elif proc.poll() is None:  # Erlang nodes: kill (with erl_child_setup and friends)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for label, _proc in self.procs:
            text = (self.log_dir / f"{label}.log").read_text(errors="replace").splitlines()
            out.append(f"--- {label}.log (last {lines} lines)\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


def run_nodes(
    tmp: Path, nodes: Nodes, args: argparse.Namespace
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Compile, start the three nodes, return the driver's info line and its measurements."""
    ebin = tmp / "ebin"
    ebin.mkdir()
    sources = sorted(str(p) for p in (BENCH_DIR / "erl").glob("*.erl"))
    subprocess.run(["erlc", "-o", str(ebin), *sources], check=True)

    erl_env, cookie = erlang_env(tmp)

    suffix = os.getpid()
    peer, py, drv = (f"bench{role}{suffix}@{HOST}" for role in ("peer", "py", "drv"))
    erl = ["erl", "-noshell", "-pa", str(ebin), "-kernel", "inet_dist_use_interface", "{127,0,0,1}"]
    nodes.start("erlang_peer", [*erl, "-name", peer, "-eval", "bench_peer:start()"], erl_env)
    stellarops = Path(sys.executable).parent / "stellarops"
    nodes.start(
        "python_echo",
        [str(stellarops), "node", "--role", "echo", "--name", py, "--stop-on-eof"],
        {**erl_env, "STELLAROPS_COOKIE": cookie},
        stdin=subprocess.PIPE,
    )
    call = f"dist_bench:main([['{peer}', '{py}'], {args.messages}, {args.calls}, {args.rounds}])"
    driver = nodes.start(
        "driver", [*erl, "-name", drv, "-eval", call], erl_env, stdout=subprocess.PIPE
    )
    try:
        stdout, _ = driver.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"driver did not finish within {args.timeout} s") from None

    info: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("BENCH_INFO "):
            info = json.loads(line.removeprefix("BENCH_INFO "))
        elif line.startswith("BENCH "):
            rows.append(json.loads(line.removeprefix("BENCH ")))
        elif line.startswith("BENCH_ERROR "):
            raise BenchError(f"driver failed: {line.removeprefix('BENCH_ERROR ')}")
    if driver.returncode != 0 or len(rows) != 2 * args.rounds:
        raise BenchError(
            f"driver exited {driver.returncode} with {len(rows)} results:\n{stdout.decode()}"
        )
    for row in rows:
        row["target"] = "erlang" if row["node"] == peer else "python"
    return info, rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per target: every round, and the median of each metric over rounds."""
    out: dict[str, dict[str, Any]] = {}
    for target in ("erlang", "python"):
        mine = [r for r in rows if r["target"] == target]
        out[target] = {m: statistics.median(r[m] for r in mine) for m in METRICS}
        out[target]["node"] = mine[0]["node"]
        out[target]["rounds"] = [{m: r[m] for m in METRICS} for r in mine]
    return out


def round_ratios(targets: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """Per metric, Python's figure over the Erlang peer's, round by round (paired in time)."""
    erl, py = targets["erlang"]["rounds"], targets["python"]["rounds"]
    return {m: [p[m] / e[m] for e, p in zip(erl, py, strict=True)] for m in METRICS}


def checks(targets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of issue 2: against the same run's Erlang peer first, then the floor."""
    ratios = round_ratios(targets)
    names = {"msgs_per_s": "one-way msg/s", "p50_us": "call p50", "p99_us": "call p99"}
    results = []
    for metric, limit, at_least in RATIO_TARGETS:
        value = statistics.median(ratios[metric])
        ok = value >= limit if at_least else value <= limit
        relation = ">=" if at_least else "<="
        results.append(
            {
                "check": f"vs reference: python {names[metric]} {relation} {limit:g}x erlang's",
                "kind": "reference",
                "metric": metric,
                "value": value,
                "per_round": ratios[metric],
                "limit": limit,
                "ok": ok,
            }
        )
    rate = targets["python"]["msgs_per_s"]
    results.append(
        {
            "check": f"floor: python one-way >= {FLOOR_MSGS_PER_S:,} msg/s",
            "kind": "floor",
            "metric": "msgs_per_s",
            "value": rate,
            "limit": FLOOR_MSGS_PER_S,
            "ok": rate >= FLOOR_MSGS_PER_S,
        }
    )
    return results


def goals(targets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 19's goals against the same medians of per-round ratios as the checks."""
    ratios = round_ratios(targets)
    out = []
    for metric, limit, at_least in RATIO_GOALS:
        value = statistics.median(ratios[metric])
        out.append(
            {
                "metric": metric,
                "limit": limit,
                "at_least": at_least,
                "value": value,
                "met": value >= limit if at_least else value <= limit,
            }
        )
    return out


def report(
    args: argparse.Namespace,
    info: dict[str, str],
    targets: dict[str, dict[str, Any]],
    results: list[dict[str, Any]],
    load: tuple[float, float, float],
) -> None:
    erl, py = targets["erlang"], targets["python"]
    print(
        f"Erlang distribution benchmark: OTP {info.get('otp', '?')}, "
        f"{args.messages:,} one-way msgs, {args.calls:,} calls, "
        f"median of {args.rounds} rounds, load avg before {load[0]:.2f}"
    )
    print(f"{'target':<16}{'one-way msg/s':>15}{'call p50 µs':>13}{'call p99 µs':>13}")
    for name, t in (("erlang peer", erl), ("python echo", py)):
        print(f"{name:<16}{t['msgs_per_s']:>15,.0f}{t['p50_us']:>13.1f}{t['p99_us']:>13.1f}")
    ratios = [statistics.median(r) for r in round_ratios(targets).values()]
    print(f"{'python/erlang':<16}{ratios[0]:>14.2f}x{ratios[1]:>12.2f}x{ratios[2]:>12.2f}x")
    print("  (python/erlang: median over rounds of each round's ratio)")
    for name, t in (("erlang", erl), ("python", py)):
        rounds = "  ".join(
            f"{r['msgs_per_s']:,}/s {r['p50_us']}/{r['p99_us']} µs" for r in t["rounds"]
        )
        print(f"  rounds {name}: {rounds}")
    for c in results:
        if c["kind"] == "floor":
            value = f"{c['value']:,.0f} msg/s"
        else:
            value = f"{c['value']:.2f}x; rounds " + ", ".join(f"{r:.2f}x" for r in c["per_round"])
        print(f"{'PASS' if c['ok'] else 'FAIL'}  {c['check']:<46} ({value})")
    names = {"msgs_per_s": "one-way msg/s", "p50_us": "call p50", "p99_us": "call p99"}
    for g in goals(targets):
        relation = ">=" if g["at_least"] else "<="
        print(
            f"goal (issue 19) python {names[g['metric']]} {relation} {g['limit']:g}x erlang's: "
            f"{'met' if g['met'] else 'not met'} ({g['value']:.2f}x)"
        )


def save(
    args: argparse.Namespace,
    info: dict[str, str],
    targets: dict[str, dict[str, Any]],
    results: list[dict[str, Any]],
    load: tuple[float, float, float],
    passed: bool,
) -> None:
    params = {
        "messages": args.messages,
        "calls": args.calls,
        "rounds": args.rounds,
        "payload_bytes": PAYLOAD_BYTES,
        "warmup_calls": WARMUP_CALLS,
        "aggregate": "median over rounds",
    }
    data = {"targets": targets, "goals": goals(targets)}
    save_results("dist_bench", params, info.get("otp"), load, data, results, passed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=50_000, help="one-way messages per round")
    parser.add_argument("--calls", type=int, default=3_000, help="timed gen_server calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target (median reported)")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds for the whole driver run"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)

    def on_sigterm(_sig: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)  # unwinds through the `finally` below

    signal.signal(signal.SIGTERM, on_sigterm)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dist_bench_") as tmp:
        nodes = Nodes(Path(tmp))
        try:
            info, rows = run_nodes(Path(tmp), nodes, args)
        except KeyboardInterrupt:
            print("dist_bench: interrupted", file=sys.stderr)
            return 130
        except (BenchError, subprocess.CalledProcessError, OSError) as exc:
            nodes.stop_all()  # first, so that the logs are complete
            print(f"dist_bench: {exc}\n{nodes.log_tails()}", file=sys.stderr)
            return 2
        finally:
            nodes.stop_all()

    targets = summarize(rows)
    results = checks(targets)
    report(args, info, targets, results, load)
    passed = all(c["ok"] for c in results)
    save(args, info, targets, results, load, passed)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
