"""The property-based fuzzing of every operation of the OpenAPI document (as in
tests/test_web_schemathesis.py) against the real stack instead of the fake cluster: real BEAM
(``stellar`` facade and its refusals), the store node, the orbital node (SGP4) and PostgreSQL,
through the real cluster client (``web/cluster.py``). No request gets a 500; every answer is as
documented; what the schema allows is accepted, what it refuses is refused. The examples per
operation are bounded so that the whole run takes a minute or two."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator

import pytest
from drills import clean_up, stack_pids
from stack import UpStack
from web_support import fuzz_operation

from web import build_document
from web.routes import ROUTES

pytestmark = [pytest.mark.erlang, pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLES = 100  # per operation: ~20 operations, valid and invalid requests mixed

DOCUMENT = json.loads(json.dumps(build_document(ROUTES)))
OPERATIONS = [
    (path, method.upper())
    for path, operations in DOCUMENT["paths"].items()
    for method in operations
    if path != "/api/events"  # a stream never ends; tests/test_web_stack.py and the SSE tests cover it
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    up = UpStack(tmp_path_factory.mktemp("fuzz") / "home", "stellar_webfuzz", STELLAROPS_DEMO_SATELLITES="3")
    pids: dict[str, int] = {}
    try:
        up.start()
        pids = asyncio.run(stack_pids(up, "webfuzz"))
        yield up
    finally:
        clean_up(up, pids)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_operation_against_the_real_stack(path: str, method: str, stack: UpStack) -> None:
    statuses = fuzz_operation(DOCUMENT, path, method, stack.gateway_url(), stack.admin_token(), examples=EXAMPLES)
    print(f"{method} {path}: {dict(sorted(statuses.items()))}")


def test_the_stack_survived(stack: UpStack) -> None:
    """After the fuzzing: every node still up (no input crashed one), the gateway ready."""
    with urllib.request.urlopen(stack.gateway_url() + "/readyz", timeout=30) as r:
        assert r.status == 200
    assert stack.proc is not None and stack.proc.poll() is None
    assert not any("crash" in line.lower() or "exited with status" in line for line in stack.log_tail), [
        line for line in stack.log_tail if "crash" in line.lower() or "exited with status" in line
    ]
