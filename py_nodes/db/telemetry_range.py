"""Telemetry over a time range, for the gateway: raw samples or one row per bucket, as rows (JSON)
or streamed as CSV.

A bucket (``date_bin(step, time, start)``: aligned on ``start``) carries, for each numeric
parameter (``SERIES``), its min, mean and max over the bucket, so a peak inside a bucket is not
lost when a day is drawn in a thousand points; plus the last mode, position and sunlight in it
(a mean of longitudes across the antimeridian would be wrong) and how many samples it holds.

``telemetry_csv`` yields the same rows as CSV text in chunks of about ``chunk_bytes``, straight
from ``COPY (...) TO STDOUT``: a day of 1 Hz samples never sits in memory, here or in the server.
The caller must finish or ``aclose()`` the generator (it holds a pooled connection meanwhile).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from .pool import Database

__all__ = ["CSV_CHUNK_BYTES", "SERIES", "TelemetryRange", "telemetry_csv", "telemetry_rows"]

SERIES: Final = ("energy_pct", "memory_used_mb", "alt_km")  # numeric parameters with min/avg/max
CSV_CHUNK_BYTES: Final = 64 * 1024
_LAST: Final = ("mode", "lat_deg", "lon_deg", "alt_km", "in_sunlight")
_WHERE: Final = "FROM telemetry WHERE satellite_id = %(sat)s AND time >= %(start)s AND time < %(end)s"

_RAW_COLUMNS: Final = ("time", "energy_pct", "memory_used_mb", "mode", "lat_deg", "lon_deg", "alt_km", "in_sunlight")
_RAW: Final = f"SELECT {', '.join(_RAW_COLUMNS)} {_WHERE} ORDER BY time LIMIT %(limit)s"

# Bucket columns: time, samples, then min/avg/max of each series, then the last of _LAST.
_STATS: Final = [f"{fn}({name}) AS {name}_{fn}" for name in SERIES for fn in ("min", "avg", "max")]
_LASTS: Final = [f"(array_agg({name} ORDER BY time DESC))[1] AS {name}_last" for name in _LAST]
_BINNED_COLUMNS: Final = (
    "time", "samples", *(f"{name}_{fn}" for name in SERIES for fn in ("min", "avg", "max")), *(f"{n}_last" for n in _LAST),
)  # fmt: skip
_BINNED: Final = (
    f"SELECT date_bin(%(step)s, time, %(start)s) AS time, count(*) AS samples, {', '.join(_STATS + _LASTS)}"
    f" {_WHERE} GROUP BY 1 ORDER BY 1 LIMIT %(limit)s"
)
# CSV: the same query, times as RFC 3339 UTC with microseconds.
_CSV_TIME: Final = "to_char(q.time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS time"


@dataclass(frozen=True, slots=True)
class TelemetryRange:
    """Samples of ``satellite_id`` in [start, end) (aware datetimes), oldest first; one row per
    ``step_s`` seconds when given; at most ``limit`` rows (None: all, for exports)."""

    satellite_id: str
    start: datetime
    end: datetime
    step_s: int | None = None
    limit: int | None = None

    def _query(self) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        query, columns = (_RAW, _RAW_COLUMNS) if self.step_s is None else (_BINNED, _BINNED_COLUMNS)
        args = {
            "sat": self.satellite_id, "start": self.start, "end": self.end, "limit": self.limit,
            "step": timedelta(seconds=self.step_s or 1),
        }  # fmt: skip
        return query, columns, args


async def telemetry_rows(db: Database, wanted: TelemetryRange) -> list[dict[str, Any]]:
    """The rows as dicts: raw ones with the sample's fields; buckets with the means as the
    parameters' values, ``min``/``avg``/``max`` objects per parameter, the last mode and
    position, and ``samples``."""
    query, columns, args = wanted._query()
    async with db.connection() as conn:
        rows = await (await conn.execute(query, args)).fetchall()
    if wanted.step_s is None:
        return [{**dict(zip(_RAW_COLUMNS, row, strict=True)), "samples": 1} for row in rows]
    return [_bucket(dict(zip(columns, row, strict=True))) for row in rows]


def _bucket(raw: dict[str, Any]) -> dict[str, Any]:
    stats = {fn: {name: raw[f"{name}_{fn}"] for name in SERIES} for fn in ("min", "avg", "max")}
    return {
        "time": raw["time"], "energy_pct": raw["energy_pct_avg"], "memory_used_mb": raw["memory_used_mb_avg"],
        **{name: raw[f"{name}_last"] for name in _LAST}, "samples": raw["samples"], **stats,
    }  # fmt: skip


async def telemetry_csv(db: Database, wanted: TelemetryRange, *, chunk_bytes: int = CSV_CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The rows as CSV with a header line (raw: ``time, satellite_id`` and the sample's fields;
    buckets: ``time, samples``, ``<param>_min/_avg/_max``, ``<param>_last``), in chunks."""
    query, columns, args = wanted._query()
    outer = ", ".join([_CSV_TIME, "%(sat)s AS satellite_id", *(f"q.{c}" for c in columns[1:])])
    statement = f"COPY (SELECT {outer} FROM ({query}) q ORDER BY q.time) TO STDOUT (FORMAT CSV, HEADER)"
    async for chunk in copy_out(db, statement, args, chunk_bytes):
        yield chunk


async def copy_out(db: Database, statement: str, args: dict[str, Any], chunk_bytes: int) -> AsyncIterator[bytes]:
    """``COPY ... TO STDOUT`` output regrouped into chunks of about ``chunk_bytes`` (the server
    sends one message per row: writing each to a socket would cost a system call per row)."""
    pending = bytearray()
    async with db.connection() as conn, conn.cursor().copy(statement, args) as copy:
        async for data in copy:
            pending += data
            if len(pending) >= chunk_bytes:
                yield bytes(pending)
                pending.clear()
    if pending:
        yield bytes(pending)
