"""Test support for the gateway: a fake cluster (same answers and refusals as BEAM's ``stellar``
facade), helpers to read server-sent events, and the fuzzing of every operation of the OpenAPI
document (run against the fake here and against the real stack in test_web_stack_fuzz.py)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import schemathesis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation

from py_nodes.db import ROLES, ApiTokens, Database
from py_nodes.jsonterms import JsonValue
from py_nodes.limits import Limit, LimitError
from py_nodes.satellite.modes import Mode, check_transition
from web import GatewayConfig, create_app
from web.cluster import ClusterRefusal, ClusterUnavailable, Event, EventReceiver
from web.elements import from_omm, from_text, from_tle_pair
from web.errors import ValidationFailed

DEMO_TLE = (
    "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927",
    "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537",
)


class FakeCluster:
    """An in-memory cluster: satellites, modes (the real transition table), commands with
    idempotency keys, and an event bus with a bounded replay buffer like stellar_events."""

    def __init__(self, *, buffer: int = 50) -> None:
        self.sats_by_id: dict[str, dict[str, Any]] = {}
        self.keys: dict[tuple[str, str], str] = {}
        self.commands: list[tuple[str, str, dict[str, Any]]] = []
        self.joined_flag = True
        self.down = False
        self.next_id = 1
        self.buffer: deque[Event] = deque(maxlen=buffer)
        self.live: asyncio.Queue[Event] = asyncio.Queue()
        self.receiver: EventReceiver | None = None
        self.passes_result: list[dict[str, Any]] = []
        self.passes_calls: list[tuple[Any, ...]] = []
        self.propagate_calls: list[tuple[str, list[int]]] = []
        self.decays_at_ms: int | None = None  # propagate fails (SGP4 error 6) from then on
        self.published: list[tuple[str, str | None, dict[str, Any]]] = []
        self.publish_fails = False

    # -- helpers for tests ---------------------------------------------------------------------

    def add(self, sat_id: str, *, mode: str = "nominal", tle: tuple[str, str] | None = None, node: str = "sats1@127.0.0.1") -> None:
        self.sats_by_id[sat_id] = {
            "id": sat_id, "name": f"Sat {sat_id}", "mode": mode, "energy_pct": 90.0, "memory_used_mb": 10.0,
            "memory_capacity_mb": 1024.0, "tle": {"line1": tle[0], "line2": tle[1]} if tle else None,
            "lat_deg": 10.0 if tle else None, "lon_deg": 20.0 if tle else None, "alt_km": 550.0 if tle else None,
            "in_sunlight": True if tle else None, "node": node, "beam": "stellar@127.0.0.1", "status": "running",
            "updated_at": int(time.time() * 1000),
        }  # fmt: skip

    def emit(self, kind: str, sat_id: str | None, data: dict[str, Any]) -> Event:
        event = Event(self.next_id, kind, sat_id, data, int(time.time() * 1000))
        self.next_id += 1
        self.buffer.append(event)
        self.live.put_nowait(event)
        return event

    def _check(self) -> None:
        if self.down:
            raise ClusterUnavailable("the control node stellar@127.0.0.1 is not reachable")

    def _get(self, sat_id: str) -> dict[str, Any]:
        self._check()
        if sat_id not in self.sats_by_id:
            raise ClusterRefusal("not_found")
        return self.sats_by_id[sat_id]

    # -- Cluster -------------------------------------------------------------------------------

    @property
    def joined(self) -> bool:
        return self.joined_flag and not self.down

    async def sats(self) -> list[dict[str, Any]]:
        self._check()
        return [dict(self.sats_by_id[k]) for k in sorted(self.sats_by_id)]

    async def sats_page(self, filters: dict[str, str], offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        chosen = [s for s in await self.sats() if all(s.get(k) == v for k, v in filters.items())]
        return len(chosen), chosen[offset : offset + limit]

    async def sat(self, sat_id: str) -> dict[str, Any]:
        return dict(self._get(sat_id))

    async def create(self, spec: dict[str, Any]) -> str:
        self._check()
        if spec["id"] in self.sats_by_id:
            raise ClusterRefusal("already_exists")
        if spec.get("memory_used_mb", 0) > spec.get("memory_capacity_mb", 1024.0):
            raise ClusterRefusal(["bad_field", "memory_used_mb"])
        tle = spec.get("tle")
        if tle is not None and tle["line1"][2:7] != tle["line2"][2:7]:
            raise ClusterRefusal(["bad_tle", "catalog_number_mismatch"])
        self.add(spec["id"], mode=spec.get("mode", "nominal"), tle=(tle["line1"], tle["line2"]) if tle else None)
        self.sats_by_id[spec["id"]].update(name=spec["name"], status="placing")
        return str(spec["id"])

    async def create_many(self, specs: list[dict[str, Any]]) -> list[JsonValue | None]:
        self._check()
        refused: list[JsonValue | None] = []
        for spec in specs:
            try:
                await self.create(spec)
                refused.append(None)
            except ClusterRefusal as exc:
                refused.append(exc.reason)
        return refused

    async def stop(self, sat_id: str) -> None:
        self._get(sat_id)
        del self.sats_by_id[sat_id]

    async def set_mode(self, sat_id: str, mode: str) -> None:
        sat = self._get(sat_id)
        refused = check_transition(Mode(sat["mode"]), Mode(mode))
        if refused is not None:
            raise ClusterRefusal(["invalid_transition", sat["mode"], mode])
        self.emit("state", sat_id, {"from": sat["mode"], "to": mode, "reason": "command"})
        sat["mode"] = mode

    async def set_tle(self, sat_id: str, line1: str, line2: str) -> str:
        sat = self._get(sat_id)
        sat["tle"] = {"line1": line1, "line2": line2}
        return str(uuid.uuid4())

    async def command(
        self, sat_id: str, kind: str, args: dict[str, Any], idempotency_key: str | None, submitted_by: str | None = None
    ) -> str:
        self._get(sat_id)
        if idempotency_key is not None and (sat_id, idempotency_key) in self.keys:
            return self.keys[(sat_id, idempotency_key)]
        command_id = str(uuid.uuid4())
        if idempotency_key is not None:
            self.keys[(sat_id, idempotency_key)] = command_id
        self.commands.append((sat_id, kind, args))
        return command_id

    async def nodes(self) -> list[dict[str, Any]]:
        self._check()
        return [
            {"name": "stellar@127.0.0.1", "role": "beam", "status": "up", "restarts": 0, "os_pid": 1, "satellites": len(self.sats_by_id)},
            {"name": "sats1@127.0.0.1", "role": "sats", "status": "up", "restarts": 0, "os_pid": 2, "satellites": 0, "beam": "stellar@127.0.0.1"},
        ]  # fmt: skip

    async def propagate(self, sat_id: str, times_ms: list[int]) -> dict[str, Any]:
        self._check()
        if sat_id not in self.sats_by_id:
            return {"id": sat_id, "error": ["unknown_satellite", "no such satellite"]}
        if self.sats_by_id[sat_id]["tle"] is None:
            return {"id": sat_id, "error": ["no_tle", "no TLE"]}
        self.propagate_calls.append((sat_id, list(times_ms)))
        points: list[dict[str, Any]] = []
        for t in times_ms:
            if self.decays_at_ms is not None and t >= self.decays_at_ms:  # SGP4 error 6: decayed
                points.append({"t": t, "lat_deg": None, "lon_deg": None, "alt_km": None, "r_teme_km": None,
                               "v_teme_km_s": None, "in_sunlight": None, "error": 6})  # fmt: skip
                continue
            points.append({"t": t, "lat_deg": 1.5, "lon_deg": -2.5, "alt_km": 550.0, "r_teme_km": [1.0, 2.0, 3.0],
                           "v_teme_km_s": [4.0, 5.0, 6.0], "in_sunlight": True, "error": 0})  # fmt: skip
        first_error = next((p["error"] for p in points if p["error"]), 0)
        return {"id": sat_id, "norad_id": 25544, "error": first_error, "positions": points}

    async def publish(self, event_type: str, sat_id: str | None, data: dict[str, Any]) -> None:
        self._check()
        if self.publish_fails:
            raise ClusterUnavailable("the control node stellar@127.0.0.1 did not answer in time")
        self.published.append((event_type, sat_id, data))
        self.emit(event_type, sat_id, data)  # on the bus, as stellar_events:publish/3 does

    async def passes(
        self, sat_ids: list[str], stations: list[dict[str, Any]], from_ms: int, to_ms: int, min_el_deg: float | None
    ) -> list[dict[str, Any]]:
        self._check()
        self.passes_calls.append((sat_ids, stations, from_ms, to_ms, min_el_deg))
        return self.passes_result

    async def since(self, last_id: int) -> tuple[bool, list[Event]]:
        self._check()
        events = [e for e in self.buffer if e.id > last_id]
        complete = not self.buffer or self.buffer[0].id <= last_id + 1
        return complete, events

    async def run_events(self, receiver: EventReceiver) -> None:
        self.receiver = receiver
        receiver.set_head(self.next_id - 1)
        while True:
            receiver.publish(await self.live.get())


async def expect_error(response: ClientResponse, status: int, code: str) -> dict[str, Any]:
    """The response is the gateway's JSON error with this status and code; returns the error."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return dict(body["error"])


async def expect_invalid_field(response: ClientResponse, field: str) -> None:
    """A 422 validation_failed naming ``field``."""
    error = await expect_error(response, 422, "validation_failed")
    assert error["details"]["field"] == field, error


async def read_sse(response: ClientResponse, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
    """The next ``count`` SSE frames (comments included as {"comment": text})."""
    frames: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while len(frames) < count:
            raw = await response.content.readline()
            if not raw:
                break
            line = raw.decode().rstrip("\n")
            if line == "":
                if current:
                    frames.append(current)
                    current = {}
            elif line.startswith(":"):
                current.setdefault("comment", line[1:].strip())
            else:
                key, _, value = line.partition(":")
                current[key] = value[1:] if value.startswith(" ") else value
    return frames


@dataclass
class Harness:
    """A gateway app over a FakeCluster and a real (fresh) database, with a token per role."""

    client: TestClient[Any, Any]
    cluster: FakeCluster
    db: Database
    tokens: dict[str, str]
    app: web.Application

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@asynccontextmanager
async def gateway(conninfo: str, config: GatewayConfig | None = None, cluster: FakeCluster | None = None) -> AsyncIterator[Harness]:
    db = Database(conninfo, max_size=4, timeout_s=5.0)
    cluster = cluster or FakeCluster()
    app = create_app(cluster, db, config or GatewayConfig(port=0))
    async with TestServer(app) as server, TestClient(server) as client:
        tokens = {}
        for role in ROLES:
            _, secret = await ApiTokens(db).create(role, f"test {role}", actor="test")
            tokens[role] = secret
        yield Harness(client, cluster, db, tokens, app)


# -- fuzzing every operation of the OpenAPI document (schemathesis) ------------------------------

_POINTS = re.compile(r"^\S+: (\d+) points, more than (\d+)")
_BUCKETS = re.compile(r"more than (\d+) buckets")


def _time(query: dict[str, Any], name: str, default: datetime) -> datetime:
    text = query.get(name)
    return default if text is None else datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def documented_relation_refused(case: Any, response: Any) -> bool:
    """True when a schema-valid request got 422 for a rule between parameters that JSON Schema
    cannot state and the operation's description does (``from`` < ``to``, a window's length, a
    count of points or buckets, memory used <= capacity), and the request really breaks it: the
    refusal is recomputed here from the request, not taken on trust."""
    if response.status_code != 422 or case.meta is None or not case.meta.generation.mode.is_positive:
        return False
    error = response.json()["error"]
    field, message = error["details"].get("field"), error["message"]
    operation = case.operation.definition.raw["operationId"]
    query: dict[str, Any] = dict(case.query or {})
    now = datetime.now(UTC)
    if operation == "createSatellite" and field == "memory_used_mb" and isinstance(case.body, dict):
        return bool(case.body.get("memory_used_mb", 0) > case.body.get("memory_capacity_mb", 1024))
    if "years 1900-2099" in message:  # a default derived from a given time left the range
        return field not in query
    if operation == "getTelemetry":
        end = _time(query, "to", now)
        start = _time(query, "from", end - timedelta(hours=1))
        if field == "from":
            return start >= end
        if field == "to":  # documented: at most 366 days apart (a minute of slack for the clocks)
            return end - start > timedelta(days=366) - timedelta(minutes=1)
        if field == "max_points":  # documented: step or max_points, not both
            return "step" in query
        return field == "step" and bool(_BUCKETS.search(message)) and (end - start).total_seconds() / query["step"] > 10_000
    if operation in ("listCommands", "listFleetCommands") and field == "from":
        return "to" in query and _time(query, "from", now) >= _time(query, "to", now)
    if operation == "getGroundTrack":
        if message.endswith("must be after from"):
            return "from" in query and "to" in query and _time(query, "from", now) >= _time(query, "to", now)
        points = _POINTS.match(message)
        return points is not None and int(points[1]) > int(points[2]) and field in ("step_s", "to")
    if operation in ("putFleetLimit", "putSatelliteLimit") and isinstance(case.body, dict):
        return _limit_refused(case.path_parameters["parameter"], case.body, message)
    if operation in ("createSatellite", "setSatelliteTle", "submitCommand") and isinstance(case.body, dict):
        return _elements_refused(case.body)  # a TLE's checksum, columns, an OMM's values: recomputed
    if operation == "importSatellites" and isinstance(case.body, dict) and isinstance(field, str):
        item = re.match(r"satellites\[(\d+)\]\.", field)  # an item's element set refuses the whole import
        return item is not None and _elements_refused(case.body["satellites"][int(item[1])])
    if operation in ("createTask", "whatIf", "createGroundStation", "setGroundStationActive", "putGroundStation") and message.endswith("expected integer, got number"):
        return True  # documented: integers are JSON integers (JSON Schema also calls 1.0 an integer)
    if operation in ("createGroundStation", "setGroundStationActive", "putGroundStation") and isinstance(field, str) and isinstance(case.body, dict):
        window = re.fullmatch(r"unavailable\[(\d+)\]\.(from|to)", field)
        if window is not None:  # documented: from < to, to at most 366 days ahead, years from 2000
            w = case.body["unavailable"][int(window[1])]
            start, end = _time(w, "from", now), _time(w, "to", now)
            if window[2] == "from":
                return start.year < 2000
            return end.year < 2000 or end <= start or end > now + timedelta(days=366) - timedelta(minutes=1)
    if operation == "createTask" and isinstance(case.body, dict):
        return _task_relation_broken(case.body, field, message, "")
    if operation == "whatIf" and isinstance(case.body, dict) and isinstance(field, str):
        if field.startswith(("cancel[", "stations_down[")):
            return ": no " in message  # names no open task / no station: stored state, not the schema
        index = re.match(r"add\[(\d+)\]\.", field)
        return index is not None and _task_relation_broken(case.body["add"][int(index[1])], field, message, index[0])
    if operation == "listPasses" and field == "to":
        start = _time(query, "from", now)
        end = _time(query, "to", start + timedelta(days=1))
        return start >= end if message.endswith("must be after from") else end - start > timedelta(days=7)
    return False


def _elements_refused(body: dict[str, Any]) -> bool:
    """Whether web.elements refuses the body's element set (or it gives more than one)."""
    given = [k for k in ("tle", "elements", "omm") if k in body]
    if body.get("kind") == "set_tle":
        given, body = ["tle"], {"tle": body.get("args")}
    if len(given) > 1:
        return True
    try:
        if given == ["tle"]:
            from_tle_pair(body["tle"]["line1"], body["tle"]["line2"])
        elif given == ["elements"]:
            from_text(body["elements"])
        elif given == ["omm"]:
            from_omm(body["omm"])
    except ValidationFailed:
        return True
    return False


def _limit_refused(parameter: str, body: dict[str, Any], message: str) -> bool:
    """A limit's documented relations (bounds ordered, the critical range holding the warning one,
    at least one bound, hysteresis smaller than a range), recomputed with py_nodes.limits."""
    if message.endswith("expected integer, got number"):
        return True  # documented: integers are JSON integers (JSON Schema also calls 1.0 an integer)
    bounds = [body.get(name) for name in ("warning_low", "warning_high", "critical_low", "critical_high")]
    limit = Limit(parameter, *bounds, body.get("hysteresis", 0.0), body.get("persistence", 1), body.get("latched", False))
    try:
        limit.check()
    except LimitError:
        return True
    return False


def _task_relation_broken(body: dict[str, Any], field: str, message: str, prefix: str) -> bool:
    """createTask's documented relations, recomputed (a minute of slack for the clocks)."""
    if field in (f"{prefix}satellite_id", f"{prefix}ground_station_id", f"{prefix}depends_on"):
        return message.startswith((f"{field}: no ", f"{field}: task "))  # names nothing stored
    now, slack = datetime.now(UTC), timedelta(minutes=1)
    earliest = _time(body, "earliest_start", now)
    deadline = _time(body, "deadline", max(earliest, now) + timedelta(hours=24))
    if field == f"{prefix}deadline":
        return deadline <= now + slack or deadline <= earliest
    if field == f"{prefix}earliest_start":
        return earliest - now > timedelta(days=7) - slack
    if field == f"{prefix}duration_s":
        return (deadline - max(earliest, now)).total_seconds() < body.get("duration_s", 60.0) + slack.total_seconds()
    return False


def positive_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' ``positive_data_acceptance``, except for ``documented_relation_refused``."""
    if documented_relation_refused(case, response):
        return None
    return positive_data_acceptance(ctx, response, case)


FUZZ_CHECKS: list[Any] = [
    not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
    positive_data_accepted, negative_data_rejection,
]  # fmt: skip


def _query_value_as_sent(value: Any) -> list[str] | None:
    """What the server receives for one query value, as strings (None: left out of the URL;
    raises ValueError when the shape does not survive serialization in a way we can tell)."""
    if value is None or value == {} or value == []:
        return None
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise ValueError(value)


def negative_query_lost_in_serialization(case: Any) -> bool:
    """True when a case made invalid only in its query is valid once sent: every query value is
    text on the wire, so an integer 0 where an id string is expected arrives as the valid id "0"
    (schemathesis judges the value before serialization). Checked against the operation's own
    parameter schemas, with the server's reading of numbers and comma lists."""
    if case.meta is None or not case.meta.generation.mode.is_negative:
        return False
    components = case.meta.components
    if set(components) != {ParameterLocation.QUERY}:
        return False
    parameters = {p["name"]: p for p in case.operation.definition.raw.get("parameters", []) if p.get("in") == "query"}
    for name, value in (case.query or {}).items():
        param = parameters.get(name)
        if param is None:
            return False
        try:
            sent = _query_value_as_sent(value)
        except ValueError:
            return False
        schema = param.get("schema", {})
        if sent is None:
            if param.get("required"):
                return False
            continue
        if schema.get("type") == "array":
            texts = [t for item in sent for t in item.split(",")]
            if not schema.get("minItems", 0) <= len(texts) <= schema.get("maxItems", len(texts)):
                return False
            item_schema = schema.get("items", {})
        elif len(sent) == 1:
            texts, item_schema = sent, schema
        else:
            return False
        for text in texts:
            kind = item_schema.get("type", "string")
            try:
                decoded: Any = {"integer": int, "number": float}.get(kind, str)(text)
            except ValueError:
                return False
            if isinstance(decoded, float) and decoded != decoded:  # NaN
                return False
            if jsonschema.Draft202012Validator(item_schema).is_valid(decoded) is False:
                return False
    return True


def fuzz_operation(
    document: dict[str, Any], path: str, method: str, base_url: str, token: str, examples: int
) -> Counter[int]:
    """Valid and invalid requests to one operation: no 500, answers as documented, what the
    schema allows is accepted (or refused only for a documented relation), what it refuses is
    refused. Returns how many answers had each status (a run that only met 401s tested nothing)."""
    statuses: Counter[int] = Counter()
    operation = schemathesis.openapi.from_dict(document)[path][method]
    cases = st.one_of(operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE))
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=cases)
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def run(case: Any) -> None:
        # A case whose headers are the invalid part (Authorization left out or garbled) is sent as
        # generated: adding our token would make it valid, and its acceptance a false failure.
        header_info = case.meta.components.get(ParameterLocation.HEADER) if case.meta is not None else None
        negative_headers = header_info is not None and header_info.mode == GenerationMode.NEGATIVE
        checks = FUZZ_CHECKS
        if negative_query_lost_in_serialization(case):
            checks = [check for check in FUZZ_CHECKS if check is not negative_data_rejection]
        response = case.call_and_validate(
            base_url=base_url, headers={} if negative_headers else headers, checks=checks, timeout=30
        )
        statuses[response.status_code] += 1

    run()
    assert not set(statuses) <= {401, 403}, statuses  # the token worked: the operation was exercised
    return statuses
