"""GET /api/events: the event stream (server-sent events), filtered, resumable."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Final

from aiohttp import web

from ..cluster import EVENT_TYPES
from ..errors import ValidationFailed
from ..keys import CLUSTER, CONFIG, HUB
from ..models import SAT_ID, error_replies
from ..observe import prepare_stream
from ..spec import RouteSpec, params
from ..sse import EventFilter

__all__ = ["ROUTES"]

RETRY_MS: Final = 2000
HEARTBEAT: Final = b": ping\n\n"
HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}
QUERY: Final = {
    "sat": {"type": "array", "items": SAT_ID, "minItems": 1, "maxItems": 100, "description": "satellite ids, comma-separated; default: all"},
    "types": {
        "type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}, "minItems": 1, "maxItems": len(EVENT_TYPES),
        "description": "event types, comma-separated; default: all",
    },
}  # fmt: skip
LAST_EVENT_ID: Final = {
    "Last-Event-ID": {"type": "string", "pattern": "^[0-9]{1,18}$", "description": "resume after this event id"}
}


def _last_event_id(request: web.Request) -> int | None:
    text = request.headers.get("Last-Event-ID")
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise ValidationFailed("Last-Event-ID", "expected an event id (a non-negative integer)")
    return int(text)


def _small_send_buffer(transport: asyncio.Transport | None, size_bytes: int) -> None:
    """Bound what the kernel holds for this client (Linux doubles the value): past it a write
    waits, and the write deadline notices a client that stopped reading."""
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is not None and size_bytes > 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size_bytes)


async def events(request: web.Request) -> web.StreamResponse:
    query = params(request).query
    event_filter = EventFilter(
        frozenset(query["types"]) if "types" in query else None, frozenset(query["sat"]) if "sat" in query else None
    )
    last_event_id = _last_event_id(request)
    hub, config = request.app[HUB], request.app[CONFIG]
    transport = request.transport
    response = web.StreamResponse(headers=HEADERS)
    await prepare_stream(request, response)
    _small_send_buffer(transport, config.sse_send_buffer_bytes)
    client = hub.connect(event_filter, transport)

    async def write(data: bytes) -> None:
        client.writing = True
        try:
            async with asyncio.timeout(config.sse_write_timeout_s):
                await response.write(data)
        finally:
            client.writing = False

    try:
        await write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
        if last_event_id is not None:
            replay = await hub.replay(request.app[CLUSTER], client, last_event_id)
            if replay:
                await write(replay)
        while True:
            try:
                chunk = await asyncio.wait_for(client.next_chunk(), config.sse_heartbeat_s)
            except TimeoutError:
                chunk = HEARTBEAT
            if chunk is None:  # dropped, or the gateway is stopping
                break
            if chunk:
                await write(chunk)
    except TimeoutError:  # a write did not complete in time: the client does not read
        hub.drop(client, f"a write did not complete within {config.sse_write_timeout_s:g} s")
        return response
    except ConnectionError:  # the client went away (or was dropped mid-write)
        return response
    finally:
        hub.disconnect(client)
    if not client.dropped:
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(1.0):
                await response.write_eof()
    return response


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/events", events, "streamEvents", "Server-sent events: state, telemetry, alarm, node, command", "events",
        "viewer", {200: ("an event stream (text/event-stream)", {"type": "string"}), **error_replies(401, 403, 422)},
        query=QUERY, headers=LAST_EVENT_ID, media_type="text/event-stream", query_token=True,
        description="Each event has an `id:`; reconnect with `Last-Event-ID` to get what was missed, or a `reset` "
        "event when it is no longer buffered (reload over REST then). Comment lines are heartbeats. The token may "
        "also be given as `access_token` (EventSource cannot set headers).",
    ),
]  # fmt: skip
