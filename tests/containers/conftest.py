"""The container tier (`make test-containers`, never collected by `make test`: pyproject's
norecursedirs keeps this folder out of the fast tier). One compose project of its own per run,
brought up through scripts/compose.sh as `make up` does; every container, network and volume it
made is removed at the end, whatever happened."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from compose_support import ROOT, Stack, free_port

TIMINGS_FILE = ROOT / "test-output" / "container-tier.json"
# Building the images cold (base image, stand-ins, Erlang release, Python venv, dashboard) on 2
# cores takes minutes; with the layer cache, seconds.
UP_TIMEOUT_S = 45 * 60
DOWN_TIMEOUT_S = 5 * 60
_timings: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue  # the hook sees the whole session's items
        item.add_marker(pytest.mark.containers)
        # pytest-timeout counts fixture set-up: the first test waits for the build and `up`.
        item.add_marker(pytest.mark.timeout(UP_TIMEOUT_S + DOWN_TIMEOUT_S + 15 * 60))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        project=f"stellaropsct{os.getpid()}",
        http_port=free_port(),
        prometheus_port=free_port(),
        secrets_dir=tmp_path_factory.mktemp("compose-secrets"),
    )
    started = time.monotonic()
    try:
        stack.timed_compose("build_and_up_s", "up", timeout_s=UP_TIMEOUT_S)
        yield stack
    finally:
        try:
            stack.compose("down", "-v", timeout_s=DOWN_TIMEOUT_S, check=False)
        finally:
            left = stack.remove_everything()
            _timings.update(stack.timings_s, tier_total_s=round(time.monotonic() - started, 1))
        assert not left, f"`compose.sh down -v` left {left} (removed now)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _timings:
        return
    TIMINGS_FILE.parent.mkdir(exist_ok=True)
    Path(TIMINGS_FILE).write_text(json.dumps(_timings, indent=2) + "\n")
    terminalreporter.write_line("container tier timings (s): " + ", ".join(f"{k}={v}" for k, v in _timings.items()))
