"""CSV exports streamed to the client: chunks go out as the database produces them.

``wants_csv`` reads the choice (``format=csv``, or an ``Accept`` that prefers ``text/csv``).
``stream_csv`` takes the first chunk before sending anything, so a query that fails at once
still gets its proper error status (422, 503); after that the headers are out, and a failure
(database gone, client stalled past ``STALL_S``) cuts the connection without the chunked
encoding's last chunk: a client sees a truncated download, never a short file that looks whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from aiohttp import web

from py_nodes.db import DatabaseUnavailable

from .dbgate import DatabaseGate
from .observe import prepare_stream

__all__ = ["CSV_MEDIA", "FORMAT_QUERY", "stream_csv", "wants_csv"]

log = logging.getLogger("stellarops.web")

CSV_MEDIA: Final = "text/csv"
STALL_S: Final = 30.0  # a client that reads nothing for this long loses the export
FORMAT_QUERY: Final = {
    "format": {
        "type": "string", "enum": ["json", "csv"],
        "description": "csv: a streamed CSV download (also chosen by `Accept: text/csv`); default json",
    },
}  # fmt: skip
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")


def _quality(accept: str, media: str) -> float:
    """The q of ``media`` (or of the wildcard matching it) in an Accept header; 0 if absent."""
    best = 0.0
    kind = media.split("/")[0]
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() not in (media, f"{kind}/*", "*/*"):
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        exact = 0.001 if fields[0].lower() == media else 0.0  # an exact match beats a wildcard
        best = max(best, q + exact if q > 0 else 0.0)
    return best


def wants_csv(request: web.Request, query: Mapping[str, Any]) -> bool:
    """``format`` when given; else whether ``Accept`` prefers text/csv over application/json."""
    if "format" in query:
        return bool(query["format"] == "csv")
    accept = request.headers.get("Accept", "")
    return _quality(accept, CSV_MEDIA) > _quality(accept, "application/json")


async def stream_csv(
    request: web.Request, filename: str, chunks: AsyncIterator[bytes], gate: DatabaseGate
) -> web.StreamResponse:
    """Send ``chunks`` as a CSV attachment named ``filename`` (chunked transfer encoding). Until
    the first chunk is in, the database ``gate`` may cut the request (503, like a JSON route);
    not after, since a status can no longer be sent."""
    iterator = aiter(chunks)
    try:
        first = await gate.run(anext(iterator, b""))
    except BaseException:
        await _close(chunks)
        raise
    response = web.StreamResponse(headers={
        "Content-Type": f"{CSV_MEDIA}; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{_SAFE_NAME.sub("_", filename)}"',
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })  # fmt: skip
    response.enable_chunked_encoding()
    try:
        await prepare_stream(request, response)
        chunk = first
        while chunk:
            async with asyncio.timeout(STALL_S):
                await response.write(chunk)
            chunk = await anext(iterator, b"")
        await response.write_eof()
    except (Exception, asyncio.CancelledError) as exc:
        if isinstance(exc, DatabaseUnavailable):
            gate.mark_down(str(exc))  # as the guard does before the headers: the probe brings it back
        if not isinstance(exc, ConnectionError | asyncio.CancelledError):
            log.warning("export %s cut after the headers: %s", filename, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if request.transport is not None:
            request.transport.close()  # no final chunk: the client knows the file is incomplete
        if isinstance(exc, asyncio.CancelledError):
            raise
    finally:
        await _close(chunks)
    return response


async def _close(chunks: AsyncIterator[bytes]) -> None:
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()
