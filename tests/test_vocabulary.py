"""One table per vocabulary: every place that names modes, command kinds, command statuses, node
roles, alarm severities or task states agrees with ``py_nodes/vocabulary.py`` (the Erlang side
is compared with ``proto_v1.ENUMS`` by tests/test_proto_contract.py on a real erl node)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

from py_nodes import proto_v1, vocabulary
from py_nodes.cli import ROLES
from py_nodes.db import COMMAND_KINDS as LEDGER_KINDS
from py_nodes.db import CommandStatus
from py_nodes.satellite.model import COMMAND_TARGETS
from web.openapi import build_document
from web.routes import ROUTES

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "py_nodes" / "db" / "migrations"
TYPES_TS = ROOT / "web" / "dashboard" / "src" / "api" / "types.ts"


def _check_list(column: str) -> list[tuple[str, ...]]:
    """Every ``CHECK (column IN ('a', 'b'))`` list in the migrations, in file order."""
    text = "\n".join(p.read_text() for p in sorted(MIGRATIONS.glob("*.sql")))
    found = re.findall(rf"\b{column}\s+IN\s*\(([^)]*)\)", text)
    return [tuple(re.findall(r"'([^']*)'", group)) for group in found]


def _enums(document: Any) -> list[tuple[str, ...]]:
    """Every string ``enum`` anywhere in the OpenAPI document."""
    found: list[tuple[str, ...]] = []
    if isinstance(document, dict):
        if isinstance(document.get("enum"), list) and all(isinstance(v, str) for v in document["enum"]):
            found.append(tuple(document["enum"]))
        for value in document.values():
            found += _enums(value)
    elif isinstance(document, list):
        for value in document:
            found += _enums(value)
    return found


def _ts_const(name: str) -> tuple[str, ...]:
    match = re.search(rf"export const {name} = \[([^\]]*)\] as const;", TYPES_TS.read_text())
    assert match, f"{name} not found in {TYPES_TS}"
    return tuple(re.findall(r'"([^"]*)"', match.group(1)))


def test_the_protocol_tables_hold_every_vocabulary() -> None:
    assert proto_v1.ENUMS["mode"] == vocabulary.MODES
    assert proto_v1.ENUMS["command_kind"] == vocabulary.COMMAND_KINDS
    assert proto_v1.ENUMS["command_status"] == vocabulary.COMMAND_STATUSES
    assert proto_v1.ENUMS["node_role"] == vocabulary.NODE_ROLES
    assert proto_v1.ENUMS["alarm"] == vocabulary.ALARM_KINDS
    assert proto_v1.ENUMS["severity"] == vocabulary.ALARM_SEVERITIES
    assert proto_v1.ENUMS["task_state"] == vocabulary.TASK_STATES


def test_python_places_use_the_vocabulary() -> None:
    assert tuple(COMMAND_TARGETS) == vocabulary.COMMAND_KINDS  # the model handles every kind
    assert frozenset(vocabulary.COMMAND_KINDS) == LEDGER_KINDS
    assert get_args(CommandStatus) == vocabulary.COMMAND_STATUSES
    assert tuple(sorted(ROLES)) == vocabulary.NODE_ROLES
    assert set(proto_v1.COMMAND_ARGS) == set(vocabulary.COMMAND_KINDS)


def test_the_database_checks_use_the_vocabulary() -> None:
    assert set(_check_list("mode")) == {vocabulary.MODES}
    assert set(_check_list("severity")) == {vocabulary.STORED_ALARM_SEVERITIES}  # alarms, alarm_transitions
    statuses = _check_list("status")
    assert vocabulary.TASK_STATES in statuses
    # The ledger's statuses: the newest CHECK on commands.status (a migration may widen it).
    ledger = [s for s in statuses if "queued" in s]
    assert ledger and set(ledger[-1]) == set(vocabulary.COMMAND_STATUSES)


def test_the_openapi_document_and_the_dashboard_use_the_vocabulary() -> None:
    document = json.loads(json.dumps(build_document(ROUTES)))
    enums = _enums(document)
    assert vocabulary.MODES in enums
    # Every enum that names modes names all of them; the command body's enums (one per shape of
    # arguments) together name every kind and nothing else.
    for values in enums:
        if set(values) >= {"safe", "standby"}:
            assert values == vocabulary.MODES
    kinds_only = {"set_mode", "collect", "reboot", "noop"}
    kind_enums = [values for values in enums if set(values) & kinds_only]
    assert kind_enums and set().union(*kind_enums) == set(vocabulary.COMMAND_KINDS)
    # The dashboard's copies (api/types.ts) match the document it is built against.
    assert _ts_const("MODES") == vocabulary.MODES
    assert _ts_const("COMMAND_KINDS") == vocabulary.COMMAND_KINDS


def test_the_scheduler_vocabularies_agree_everywhere() -> None:
    """Task kinds, states, reasons and plan causes: migration 0007's CHECKs, the OpenAPI
    document and the dashboard's types.ts; the event types the gateway and the dashboard know."""
    from web.cluster import EVENT_TYPES

    assert vocabulary.TASK_KINDS in _check_list("kind")
    assert _check_list("reason") == [vocabulary.TASK_REASONS]
    assert _check_list("cause") == [vocabulary.PLAN_CAUSES, vocabulary.PLAN_CAUSES]  # plan_runs, plan_requests
    enums = _enums(json.loads(json.dumps(build_document(ROUTES))))
    for values in (vocabulary.TASK_KINDS, vocabulary.TASK_STATES, vocabulary.TASK_REASONS, vocabulary.PLAN_CAUSES):
        assert values in enums
    assert _ts_const("TASK_KINDS") == vocabulary.TASK_KINDS
    assert _ts_const("TASK_STATES") == vocabulary.TASK_STATES
    assert _ts_const("TASK_REASONS") == vocabulary.TASK_REASONS
    assert _ts_const("PLAN_CAUSES") == vocabulary.PLAN_CAUSES
    assert set(_ts_const("EVENT_TYPES")) == set(EVENT_TYPES)
