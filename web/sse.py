"""Server-sent events: the cluster's events fanned out to HTTP clients.

``EventHub.publish`` gets each event once (from ``Cluster.run_events``), encodes it once as an SSE
frame (``id:``, ``event:``, ``data:`` JSON) and offers the same bytes to every client whose filter
matches. Each client has a bounded queue; a client that cannot keep up is dropped (its
connection aborted, ``stellar_sse_clients_dropped`` counted) and never slows the others or grows
memory: its queue is full, or one write to it did not complete within the write deadline (the
route keeps the socket's send buffer small, so a client that stops reading blocks a write within
a few dozen kilobytes instead of after megabytes of kernel buffer). A dropped client resumes with
``Last-Event-ID`` like any other. ``close_all`` ends every stream (the gateway's shutdown).
A client resuming with ``Last-Event-ID`` first gets the missed events
from BEAM's bounded replay buffer (``Cluster.since``), or a ``reset`` event when they are gone
(or its id is unknown, as after a control node restart): it should then reload what it shows
over REST. Live events queued while the replay was fetched are not sent twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Final

from orbital.timescale import utc_from_ms

from .cluster import Cluster, ClusterError, Event
from .metrics import GatewayMetrics

__all__ = ["EventFilter", "EventHub", "SseClient", "encode_event", "iso_ms"]

log = logging.getLogger("stellarops.web.sse")

Frame = tuple[int, bytes]  # (event id, encoded frame); id 0 for frames outside the sequence
CLOSE: Final = (-1, b"")


def iso_ms(ms: int) -> str:
    """ms since the epoch as RFC 3339 UTC with milliseconds."""
    try:
        return utc_from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return str(ms)


def encode_event(event: Event) -> bytes:
    payload = {"id": event.id, "type": event.type, "sat_id": event.sat_id, "at": iso_ms(event.at_ms), "data": event.data}
    data = json.dumps(payload, separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


def reset_frame(head_id: int, reason: str, last_event_id: int | None) -> bytes:
    data = json.dumps({"reason": reason, "last_event_id": last_event_id, "head_id": head_id}, separators=(",", ":"))
    return f"id: {head_id}\nevent: reset\ndata: {data}\n\n".encode()


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: frozenset[str] | None = None  # None: every type
    sat_ids: frozenset[str] | None = None  # None: every satellite (and events of none)

    def matches(self, event: Event) -> bool:
        return (self.types is None or event.type in self.types) and (
            self.sat_ids is None or event.sat_id in self.sat_ids
        )


class SseClient:
    __slots__ = ("close_transport", "dropped", "filter", "queue", "skip_through", "writing")

    def __init__(self, event_filter: EventFilter, queue_size: int, close_transport: asyncio.Transport | None) -> None:
        self.filter = event_filter
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(queue_size)
        self.dropped = False
        self.skip_through = 0  # live events with ids up to this one were sent by the replay
        self.close_transport = close_transport
        self.writing = False  # a write to the socket is under way (it may be stuck)

    async def next_chunk(self) -> bytes | None:
        """The frames waiting (at least one; waits for it), joined; None when dropped."""
        first = await self.queue.get()
        frames = [first]
        while not self.queue.empty():
            frames.append(self.queue.get_nowait())
        chunks = []
        for event_id, frame in frames:
            if event_id < 0:
                return None
            if event_id == 0 or event_id > self.skip_through:
                chunks.append(frame)
        return b"".join(chunks)


class EventHub:
    def __init__(self, metrics: GatewayMetrics, *, queue_size: int = 2000) -> None:
        self._metrics = metrics
        self._queue_size = queue_size
        self._clients: set[SseClient] = set()
        self.last_id = 0  # of the last event published (BEAM's numbering)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def connect(self, event_filter: EventFilter, transport: asyncio.Transport | None) -> SseClient:
        client = SseClient(event_filter, self._queue_size, transport)
        self._clients.add(client)
        self._metrics.sse_clients.set(len(self._clients))
        return client

    def disconnect(self, client: SseClient) -> None:
        self._clients.discard(client)
        self._metrics.sse_clients.set(len(self._clients))

    def publish(self, event: Event) -> None:
        self.last_id = event.id
        self._metrics.sse_events.inc()
        frame: Frame | None = None
        overflow: list[SseClient] = []
        for client in self._clients:
            if client.filter.matches(event):
                if frame is None:
                    frame = (event.id, encode_event(event))
                try:
                    client.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    overflow.append(client)
        for client in overflow:
            self.drop(client, "its queue is full")

    def set_head(self, head_id: int) -> None:
        self.last_id = head_id

    def reset(self, reason: str, head_id: int) -> None:
        """Tell every client that events may have been lost (e.g. the control node restarted)."""
        self.last_id = head_id
        frame = (0, reset_frame(head_id, reason, None))
        for client in list(self._clients):
            client.skip_through = 0
            try:
                client.queue.put_nowait(frame)
            except asyncio.QueueFull:
                self.drop(client, "its queue is full")

    def drop(self, client: SseClient, why: str) -> None:
        """Drop a client that cannot keep up: counted, its connection aborted (not closed: a
        close would wait for the unread bytes to drain, which never happens)."""
        if client.dropped:
            return
        client.dropped = True
        self.disconnect(client)
        self._metrics.sse_dropped.inc()
        self._end(client, abort=True)
        log.warning("dropped an SSE client that could not keep up (%s)", why)

    def close_all(self) -> None:
        """End every stream (shutdown): each handler writes the end of its stream and returns;
        one stuck in a write to a client that does not read is aborted."""
        for client in list(self._clients):
            self.disconnect(client)
            self._end(client, abort=client.writing)

    @staticmethod
    def _end(client: SseClient, *, abort: bool) -> None:
        while not client.queue.empty():
            client.queue.get_nowait()
        client.queue.put_nowait(CLOSE)
        if abort and client.close_transport is not None:
            client.close_transport.abort()

    async def replay(self, cluster: Cluster, client: SseClient, last_event_id: int) -> bytes:
        """The frames a client resuming after ``last_event_id`` missed (or a reset frame)."""
        if last_event_id > self.last_id:
            self._metrics.sse_resets.inc()
            return reset_frame(self.last_id, "unknown_id", last_event_id)
        if last_event_id == self.last_id:
            return b""
        try:
            complete, events = await cluster.since(last_event_id)
        except ClusterError as exc:
            log.warning("replay after event %d failed: %s", last_event_id, exc)
            complete, events = False, []
        if not complete:
            self._metrics.sse_resets.inc()
            return reset_frame(self.last_id, "too_old", last_event_id)
        frames = [encode_event(e) for e in events if e.id > last_event_id and client.filter.matches(e)]
        if events:
            client.skip_through = max(e.id for e in events)
        return b"".join(frames)
