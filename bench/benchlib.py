"""What the benchmarks share: a private Erlang environment and the results record."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
