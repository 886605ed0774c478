"""Read-only counts for the gateway's /metrics: task counts and active alarms by severity.
(Telemetry over time is in ``telemetry_range``.)"""

from __future__ import annotations

from .pool import Database

__all__ = ["active_alarm_counts", "task_counts"]


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
