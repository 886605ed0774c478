"""Read-only queries over time for the gateway: telemetry history (raw samples, or one row per
``step`` seconds), task counts and active alarms by severity (for /metrics).

Downsampled rows (``date_bin`` buckets aligned on ``start``) carry the mean energy and memory of
the bucket, the last mode, position and sunlight in it (a mean of longitudes across the
antimeridian would be wrong), and how many samples it holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from .pool import Database

__all__ = ["active_alarm_counts", "task_counts", "telemetry_history"]

_RAW: Final = (
    "SELECT time, energy_pct, memory_used_mb, mode, lat_deg, lon_deg, alt_km, in_sunlight, 1"
    " FROM telemetry WHERE satellite_id = %(sat)s AND time >= %(start)s AND time < %(end)s"
    " ORDER BY time LIMIT %(limit)s"
)
_BINNED: Final = (
    "SELECT date_bin(%(step)s, time, %(start)s) AS bucket, avg(energy_pct), avg(memory_used_mb),"
    " (array_agg(mode ORDER BY time DESC))[1], (array_agg(lat_deg ORDER BY time DESC))[1],"
    " (array_agg(lon_deg ORDER BY time DESC))[1], (array_agg(alt_km ORDER BY time DESC))[1],"
    " (array_agg(in_sunlight ORDER BY time DESC))[1], count(*)"
    " FROM telemetry WHERE satellite_id = %(sat)s AND time >= %(start)s AND time < %(end)s"
    " GROUP BY bucket ORDER BY bucket LIMIT %(limit)s"
)
_FIELDS: Final = ("time", "energy_pct", "memory_used_mb", "mode", "lat_deg", "lon_deg", "alt_km", "in_sunlight", "samples")


async def telemetry_history(
    db: Database, sat_id: str, start: datetime, end: datetime, step_s: int | None, limit: int
) -> list[dict[str, Any]]:
    """Samples of ``sat_id`` in [start, end), oldest first; binned by ``step_s`` when given."""
    query = _RAW if step_s is None else _BINNED
    args = {"sat": sat_id, "start": start, "end": end, "limit": limit, "step": timedelta(seconds=step_s or 1)}
    async with db.connection() as conn:
        rows = await (await conn.execute(query, args)).fetchall()
    return [dict(zip(_FIELDS, row, strict=True)) for row in rows]


async def task_counts(db: Database) -> tuple[int, int]:
    """``(waiting, failed)``: tasks pending or scheduled, and tasks that failed (for /metrics)."""
    async with db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FILTER (WHERE status IN ('pending', 'scheduled')),"
                " count(*) FILTER (WHERE status = 'failed') FROM tasks"
            )
        ).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def active_alarm_counts(db: Database) -> dict[str, int]:
    """Active (not cleared) alarms by severity, for /metrics; severities with none are absent."""
    async with db.connection() as conn:
        rows = await (
            await conn.execute("SELECT severity, count(*) FROM alarms WHERE cleared_at IS NULL GROUP BY severity")
        ).fetchall()
    return {str(severity): int(count) for severity, count in rows}
