"""How the gateway talks to the cluster: the ``Cluster`` interface and its erldist client.

Routes depend on ``Cluster`` only (tests use a fake); ``ErldistCluster`` implements it with rpc
into the BEAM facade ``stellar`` (the event stream included) from the gateway's
Python node. Every value crossing this interface is JSON-ready (``str`` ids, ms integers, dicts
with ``str`` keys); every failure is one of::

    ClusterError
     ├── ClusterUnavailable   the control node is not reachable or did not answer in time (503)
     ├── ClusterRefusal       BEAM answered ``{error, Reason}``; ``reason`` is its JSON form,
     │                        e.g. ``"not_found"``, ``["bad_field", "id"]`` (mapped to 4xx/503)
     └── ClusterFault         BEAM raised (a bug there, or a version skew): 502

Atoms only reach BEAM from fixed sets (modes, command kinds, spec keys): nothing a client sends
becomes a new atom there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol

from py_nodes.erldist import Atom, Node, NodeDownError, Process, RpcError
from py_nodes.jsonterms import JsonValue, to_json

__all__ = [
    "EVENT_TYPES",
    "Cluster",
    "ClusterError",
    "ClusterFault",
    "ClusterRefusal",
    "ClusterUnavailable",
    "ErldistCluster",
    "Event",
    "EventReceiver",
]

log = logging.getLogger("stellarops.web.cluster")

EVENT_TYPES: Final = ("state", "telemetry", "alarm", "node", "command", "task", "plan")
IMPORT_TIMEOUT_S: Final = 30.0
SPEC_KEYS: Final = frozenset({"id", "name", "mode", "energy_pct", "memory_capacity_mb", "memory_used_mb"})
OK: Final = Atom("ok")
ERROR: Final = Atom("error")
STELLAR_EVENT: Final = Atom("stellar_event")
NODEDOWN: Final = Atom("nodedown")
RESUBSCRIBE_S: Final = 1.0


class ClusterError(Exception):
    """Base of the cluster client's errors."""


class ClusterUnavailable(ClusterError):
    """The control node cannot be reached (or timed out): try again later."""


class ClusterRefusal(ClusterError):
    """BEAM refused the request: ``reason`` is its JSON form."""

    def __init__(self, reason: JsonValue) -> None:
        super().__init__(f"refused: {reason!r}")
        self.reason = reason


class ClusterFault(ClusterError):
    """BEAM raised instead of answering."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the BEAM event bus (``stellar_events``); ids increase by one per event."""

    id: int
    type: str  # one of EVENT_TYPES
    sat_id: str | None
    data: dict[str, Any]
    at_ms: int


class EventReceiver(Protocol):
    """Where ``Cluster.run_events`` delivers."""

    def set_head(self, head_id: int) -> None:
        """The id of the last event the control node published (when the stream starts)."""

    def publish(self, event: Event) -> None:
        """The next event (ids increase)."""

    def reset(self, reason: str, head_id: int) -> None:
        """Events may have been lost (``head_id``: the last id now); clients must resynchronise."""


class Cluster(Protocol):
    """What the routes need from the cluster."""

    @property
    def joined(self) -> bool:
        """Whether the control node is connected and the event stream subscribed."""

    async def sats(self) -> list[dict[str, Any]]: ...
    async def sats_page(self, filters: dict[str, str], offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """The satellites (by id) whose ``mode``/``node``/``status`` equal ``filters``': how many,
        and those from ``offset``, at most ``limit``."""
        ...

    async def sat(self, sat_id: str) -> dict[str, Any]: ...  # ClusterRefusal("not_found")
    async def create(self, spec: dict[str, Any]) -> str: ...
    async def create_many(self, specs: list[dict[str, Any]]) -> list[JsonValue | None]:
        """``create`` for each spec (an import, ``stellar:create_many/1``): per spec None
        (created) or the reason it was refused, in order."""
        ...

    async def stop(self, sat_id: str) -> None: ...
    async def set_mode(self, sat_id: str, mode: str) -> None: ...
    async def set_tle(self, sat_id: str, line1: str, line2: str) -> str: ...  # the set_tle command's id
    async def command(
        self, sat_id: str, kind: str, args: dict[str, Any], idempotency_key: str | None, submitted_by: str | None = None
    ) -> str: ...
    async def nodes(self) -> list[dict[str, Any]]: ...
    async def propagate(self, sat_id: str, times_ms: list[int]) -> dict[str, Any]: ...
    async def passes(
        self, sat_ids: list[str], stations: list[dict[str, Any]], from_ms: int, to_ms: int, min_el_deg: float | None
    ) -> list[dict[str, Any]]: ...
    async def publish(self, event_type: str, sat_id: str | None, data: dict[str, Any]) -> None:
        """Put an event of the gateway's own (an alarm cleared over HTTP) on BEAM's event bus, so
        that every gateway's SSE clients see it, in order with the others and replayable."""
        ...

    async def since(self, last_id: int) -> tuple[bool, list[Event]]:
        """Buffered events after ``last_id``: ``(complete, events)``; not complete when some
        have already left BEAM's bounded buffer."""
        ...

    async def run_events(self, receiver: EventReceiver) -> None:
        """Feed every event to ``receiver`` in id order until cancelled (see EventReceiver)."""
        ...


# -- terms -> JSON ------------------------------------------------------------------------------


def sat_json(term: Any) -> dict[str, Any]:
    """A ``stellar:sat/1`` map as the API's satellite object."""
    value = to_json(term)
    assert isinstance(value, dict)
    tle = value.get("tle")
    value["tle"] = {"line1": tle[0], "line2": tle[1]} if isinstance(tle, list) and len(tle) == 2 else None
    return value


def event_from_term(term: Any) -> Event | None:
    """``{stellar_event, Id, Type, SatId, Data, AtMs}`` as an Event (None if malformed)."""
    if type(term) is not tuple or len(term) != 6 or term[0] != STELLAR_EVENT:
        return None
    _, event_id, kind, sat_id, data, at_ms = term
    if type(event_id) is not int or type(kind) is not Atom or type(data) is not dict or type(at_ms) is not int:
        return None
    json_data = to_json(data)
    assert isinstance(json_data, dict)
    return Event(event_id, str(kind), sat_id.decode(errors="replace") if type(sat_id) is bytes else None, json_data, at_ms)


def _arg_term(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


def _spec_term(spec: dict[str, Any]) -> dict[Atom, Any]:
    """A checked creation body as ``stellar:create/1`` takes it."""
    term: dict[Atom, Any] = {Atom(k): Atom(v) if k == "mode" else _arg_term(v) for k, v in spec.items() if k in SPEC_KEYS}
    tle = spec.get("tle")
    if isinstance(tle, dict):
        term[Atom("tle")] = (tle["line1"].encode(), tle["line2"].encode())
    return term


class ErldistCluster:
    """``Cluster`` over erldist rpc from ``node`` to the control node ``beam_node``."""

    def __init__(self, node: Node, beam_node: str, *, timeout_s: float = 5.0, orbital_timeout_s: float = 60.0) -> None:
        self._node = node
        self._beam = beam_node
        self._timeout_s = timeout_s
        self._orbital_timeout_s = orbital_timeout_s
        self._subscribed = False

    @property
    def beam_node(self) -> str:
        return self._beam

    @property
    def joined(self) -> bool:
        return self._subscribed and self._node.connection(self._beam) is not None

    async def _rpc(self, module: str, function: str, args: list[Any], timeout_s: float | None = None) -> Any:
        try:
            return await self._node.rpc(self._beam, module, function, args, timeout=timeout_s or self._timeout_s)
        except NodeDownError:
            raise ClusterUnavailable(f"the control node {self._beam} is not reachable") from None
        except RpcError as exc:
            if exc.kind == "timeout":
                raise ClusterUnavailable(f"the control node {self._beam} did not answer in time") from None
            log.error("rpc %s:%s on %s failed: %s %.300r", module, function, self._beam, exc.kind, exc.reason)
            raise ClusterFault(f"{module}:{function} failed on {self._beam}") from None

    @staticmethod
    def _result(term: Any) -> Any:
        """``{ok, X}`` -> X, ``ok`` -> None, ``{error, R}`` -> ClusterRefusal."""
        if term == OK and type(term) is Atom:
            return None
        if type(term) is tuple and len(term) == 2:
            if term[0] == OK:
                return term[1]
            if term[0] == ERROR:
                raise ClusterRefusal(to_json(term[1]))
        raise ClusterFault(f"unexpected answer {term!r:.200}")

    async def sats(self) -> list[dict[str, Any]]:
        return [sat_json(s) for s in await self._rpc("stellar", "sats", [])]

    async def sats_page(self, filters: dict[str, str], offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        term = await self._rpc("stellar", "sats_page", [{Atom(k): v.encode() for k, v in filters.items()}, offset, limit])
        if type(term) is not tuple or len(term) != 2 or type(term[0]) is not int or type(term[1]) is not list:
            raise ClusterFault(f"unexpected answer {term!r:.200}")
        return term[0], [sat_json(s) for s in term[1]]

    async def sat(self, sat_id: str) -> dict[str, Any]:
        return sat_json(self._result(await self._rpc("stellar", "sat", [sat_id.encode()])))

    async def create(self, spec: dict[str, Any]) -> str:
        created = self._result(await self._rpc("stellar", "create", [_spec_term(spec)]))
        return created.decode() if type(created) is bytes else str(created)

    async def create_many(self, specs: list[dict[str, Any]]) -> list[JsonValue | None]:
        # Longer than one call's timeout: 2,000 creations wait for their store transactions.
        terms = [_spec_term(spec) for spec in specs]
        answers = await self._rpc("stellar", "create_many", [terms], timeout_s=max(self._timeout_s, IMPORT_TIMEOUT_S))
        if type(answers) is not list or len(answers) != len(specs):
            raise ClusterFault(f"unexpected answer {answers!r:.200}")
        refused: list[JsonValue | None] = []
        for answer in answers:
            try:
                self._result(answer)
                refused.append(None)
            except ClusterRefusal as exc:
                refused.append(exc.reason)
        return refused

    async def stop(self, sat_id: str) -> None:
        self._result(await self._rpc("stellar", "stop", [sat_id.encode()]))

    async def set_mode(self, sat_id: str, mode: str) -> None:
        self._result(await self._rpc("stellar", "set_mode", [sat_id.encode(), Atom(mode)], timeout_s=self._timeout_s + 2))

    async def set_tle(self, sat_id: str, line1: str, line2: str) -> str:
        """``stellar:set_tle/2``: waits until the actor flies the new elements (a ledger command)."""
        term = (line1.encode(), line2.encode())
        command_id = self._result(await self._rpc("stellar", "set_tle", [sat_id.encode(), term], timeout_s=self._timeout_s + 2))
        return command_id.decode() if type(command_id) is bytes else str(command_id)

    async def command(
        self, sat_id: str, kind: str, args: dict[str, Any], idempotency_key: str | None, submitted_by: str | None = None
    ) -> str:
        opts: dict[Atom, bytes] = {}
        if idempotency_key is not None:
            opts[Atom("idempotency_key")] = idempotency_key.encode()
        if submitted_by is not None:  # the ledger's submitted_by (the principal), not this node
            opts[Atom("submitted_by")] = submitted_by.encode()[:128]
        term_args = {Atom(k): Atom(v) if k == "mode" else _arg_term(v) for k, v in args.items()}
        command_id = self._result(await self._rpc("stellar", "command", [sat_id.encode(), Atom(kind), term_args, opts]))
        return command_id.decode() if type(command_id) is bytes else str(command_id)

    async def nodes(self) -> list[dict[str, Any]]:
        value = to_json(await self._rpc("stellar", "nodes", []))
        assert isinstance(value, list)
        return value

    async def store_status(self) -> dict[str, Any]:
        """``stellar:store_status()``: persistence, ownership and telemetry delivery counters."""
        value = to_json(await self._rpc("stellar", "store_status", []))
        assert isinstance(value, dict)
        return value

    async def beam_metrics(self, timeout_s: float) -> dict[str, Any]:
        """``stellar:metrics()`` (VM, commands, orbital calls, Python nodes), within ``timeout_s``:
        a scrape must not wait for a busy node."""
        value = to_json(await self._rpc("stellar", "metrics", [], timeout_s=timeout_s))
        assert isinstance(value, dict)
        return value

    async def propagate(self, sat_id: str, times_ms: list[int]) -> dict[str, Any]:
        items = self._result(
            await self._rpc("stellar", "propagate", [[sat_id.encode()], times_ms], timeout_s=self._orbital_timeout_s)
        )
        value = to_json(items[0])
        assert isinstance(value, dict)
        return value

    async def passes(
        self, sat_ids: list[str], stations: list[dict[str, Any]], from_ms: int, to_ms: int, min_el_deg: float | None
    ) -> list[dict[str, Any]]:
        station_terms = [{Atom(k): _arg_term(v) for k, v in s.items()} for s in stations]
        found = self._result(
            await self._rpc(
                "stellar", "passes", [[s.encode() for s in sat_ids], station_terms, from_ms, to_ms, min_el_deg],
                timeout_s=self._orbital_timeout_s,
            )
        )  # fmt: skip
        value = to_json(found)
        assert isinstance(value, list)
        return value

    async def publish(self, event_type: str, sat_id: str | None, data: dict[str, Any]) -> None:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"not an event type: {event_type!r}")
        # A flat map; its keys come from the gateway's code, never from a client (atoms).
        term = {Atom(k): _arg_term(v) for k, v in data.items()}
        subject = None if sat_id is None else sat_id.encode()
        self._result(await self._rpc("stellar", "publish", [Atom(event_type), subject, term]))

    async def since(self, last_id: int) -> tuple[bool, list[Event]]:
        status, terms = await self._rpc("stellar", "events_since", [last_id])
        events = [e for e in (event_from_term(t) for t in terms) if e is not None]
        return status == "ok", events

    async def run_events(self, receiver: EventReceiver) -> None:
        last_id = 0
        while True:
            async with self._node.process() as proc:
                try:
                    last_id = await self._subscribe(proc, receiver, last_id)
                    last_id = await self._receive(proc, receiver, last_id)
                except (ClusterError, TimeoutError) as exc:
                    log.warning("event stream from %s: %s; subscribing again in %.0f s", self._beam, exc, RESUBSCRIBE_S)
                finally:
                    self._subscribed = False
            await asyncio.sleep(RESUBSCRIBE_S)

    async def _subscribe(self, proc: Process, receiver: EventReceiver, last_id: int) -> int:
        """Subscribe ``proc``, then deliver what was missed since ``last_id`` (events that also
        arrive live are skipped by id). The id of the last event delivered."""
        proc.monitor_node(self._beam)
        self._result(await self._rpc("stellar", "subscribe", [proc.pid, Atom("all")]))
        head = await self._rpc("stellar", "last_event_id", [])
        head = head if type(head) is int else 0
        if last_id == 0:
            receiver.set_head(head)
            last_id = head
        elif head < last_id:  # a new control node: its ids started again
            log.warning("event ids on %s went back from %d to %d: clients resynchronise", self._beam, last_id, head)
            receiver.reset("stream_restarted", head)
            last_id = head
        else:
            complete, missed = await self.since(last_id)
            if not complete:
                receiver.reset("events_lost", head)
            for event in missed:
                if event.id > last_id:
                    receiver.publish(event)
                    last_id = event.id
        self._subscribed = True
        log.info("subscribed to the events of %s (after event %d)", self._beam, last_id)
        return last_id

    async def _receive(self, proc: Process, receiver: EventReceiver, last_id: int) -> int:
        while True:
            message = await proc.receive()
            if type(message) is tuple and len(message) == 2 and message[0] == NODEDOWN:
                log.warning("event stream: lost the connection to %s", self._beam)
                return last_id
            event = event_from_term(message)
            if event is None:
                log.warning("event stream: dropped an unexpected message %.200r", message)
            elif event.id > last_id:
                last_id = event.id
                try:
                    receiver.publish(event)
                except Exception:  # a bug in the receiver must not end the stream
                    log.exception("event stream: the receiver failed on event %d", event.id)
