"""``TelemetryRow``: one telemetry sample as the telemetry table's row, fields in COPY order."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

__all__ = ["TelemetryRow"]


class TelemetryRow(NamedTuple):
    """One telemetry sample, fields in COPY order. ``time`` must be timezone-aware."""

    satellite_id: str
    time: datetime
    energy_pct: float
    memory_used_mb: float
    mode: str
    lat_deg: float | None  # WGS84; the three are None together when the position is unknown
    lon_deg: float | None
    alt_km: float | None
    in_sunlight: bool
