"""What the benchmarks share: a private Erlang environment, the cluster under test (a BEAM node
with the Python nodes it starts, or the whole stack as `stellarops up` runs it: ``UpStack``, the
tests' harness from tests/stack.py, so one class starts a stack), /proc readings, and the results
record."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from py_nodes.up import _beam_command, render_sys_config

# The stack harness lives with the tests (its main users); appended, so it shadows nothing.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))
from stack import UpStack

__all__ = ["HOST", "BenchCluster", "UpStack", "cpu_ticks", "erlang_env", "rss_kib", "save_results"]

HOST = "127.0.0.1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def erlang_env(home: Path, extra: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """A random cookie in ``home/.erlang.cookie`` (0400) and the env that makes erl read it.

    The cookie is never on a command line; epmd is started (bound to 127.0.0.1) if needed.
    """
    cookie = secrets.token_hex(16)
    fd = os.open(home / ".erlang.cookie", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write(cookie)
    env = {**os.environ, "HOME": str(home), "ERL_EPMD_ADDRESS": HOST, **(extra or {})}
    env.pop("STELLAROPS_COOKIE", None)
    subprocess.run(["epmd", "-daemon"], env=env, check=True)
    return env, cookie


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class BenchCluster:
    """The BEAM node of one benchmark run, named ``{prefix}{pid}@127.0.0.1`` (its Python nodes
    ``{prefix}{pid}_<role>N``), with an Erlang helper module compiled into its code path; its
    output goes to ``tmp/beam.log``. ``stop_all`` stops it and every Python node it started."""

    def __init__(self, tmp: Path, prefix: str, helper_module: str, helper_source: str) -> None:
        self.tmp = tmp
        self.prefix = f"{prefix}{os.getpid()}"
        self.beam_name = f"{self.prefix}@{HOST}"
        self.ctl_name = f"{self.prefix}_ctl@{HOST}"
        self.helper = (helper_module, helper_source)
        self.cookie = ""
        self.beam: subprocess.Popen[bytes] | None = None
        self.py_pids: set[int] = set()  # every Python node's OS pid seen, for the cleanup

    def py_nodes(self, counts: dict[str, int]) -> str:
        """The app's ``py_nodes`` value: ``counts[role]`` nodes per role, named after this run."""
        return "[" + ", ".join(
            f'#{{role => {role}, count => {n}, prefix => "{self.prefix}_{role}"}}' for role, n in counts.items()
        ) + "]"

    def start(
        self, py_nodes: dict[str, int], app_env: dict[str, str], extra_env: dict[str, str] | None = None,
        home: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start the node with ``py_nodes`` and the ``stellar`` app settings ``app_env`` (Erlang
        terms as text); ``extra_env`` only in its environment (secrets stay off argv)."""
        ebin = self.tmp / "ebin"
        ebin.mkdir()
        module, source = self.helper
        (self.tmp / f"{module}.erl").write_text(source)
        subprocess.run(["erlc", "-o", str(ebin), str(self.tmp / f"{module}.erl")], check=True)
        stellarops = str(Path(sys.executable).parent / "stellarops")
        env, self.cookie = erlang_env(home or self.tmp, {"STELLAROPS_PY": stellarops, **(extra_env or {})})
        argv = [*_beam_command(self.beam_name, render_sys_config(env, self.tmp)), "-pa", str(ebin), "-stellar", "py_nodes", self.py_nodes(py_nodes)]
        for key, value in app_env.items():
            argv += ["-stellar", key, value]
        with open(self.tmp / "beam.log", "wb") as log:
            # Own session: Ctrl-C reaches only us, and we can kill the node's process group.
            # stdin a pipe we keep open: the node stops when it closes (py_nodes.up._beam_command).
            self.beam = subprocess.Popen(
                argv, env=env, stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True
            )
        return self.beam

    def note_nodes(self, nodes: list[Any]) -> None:
        self.py_pids.update(
            n["os_pid"] for n in nodes if n["role"] != "beam" and isinstance(n["os_pid"], int)
        )

    def stop_all(self, timeout_s: float = 60.0) -> None:
        sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip this
        try:
            beam = self.beam
            if beam is not None and beam.poll() is None:
                beam.terminate()  # init:stop(): the supervisors stop the Python nodes they started
                with contextlib.suppress(subprocess.TimeoutExpired):
                    beam.wait(timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(beam.pid, signal.SIGKILL)  # erl_child_setup and friends
                beam.wait()
            for pid in self.py_pids:  # normally gone already (stdin EOF, --stop-on-eof)
                with contextlib.suppress(OSError):
                    if self.prefix.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, signal.SIGKILL)
        finally:
            signal.signal(signal.SIGINT, sigint)

    def log_text(self) -> str:
        path = self.tmp / "beam.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = 25) -> str:
        text = self.log_text().splitlines()
        return f"--- beam.log (last {lines} lines)\n" + "\n".join(text[-lines:])


def save_results(
    name: str,
    params: dict[str, Any],
    otp: Any,
    load: tuple[float, float, float],
    body: dict[str, Any],
    results: list[dict[str, Any]],
    passed: bool,
) -> None:
    """Write ``results/NAME.json``: parameters, host, figures, checks and the verdict."""
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": params,
        "host": {
            "cpus": os.cpu_count(),
            "loadavg_before": load,
            "otp": otp,
            "python": sys.version.split()[0],
        },
        **body,
        "checks": results,
        "pass": passed,
    }
    path = RESULTS_DIR / f"{name}.json"
    RESULTS_DIR.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"results: {path}")
