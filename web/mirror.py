"""A read model of the satellites, fed by the event stream: how GET /api/satellites/{id} answers
without a round trip to BEAM.

An entry is a full snapshot (``stellar:sat/1`` or ``sats/0``), then kept current by the events:
``telemetry`` (every tick: mode, energy, memory, position, sunlight, updated_at) and ``state``
(mode). It is served only while it is *fresh*: an event for the satellite within
``event_fresh_s`` (a satellite whose actor stops ticking, or that was deleted, goes stale at once)
and a snapshot within ``snapshot_max_s`` (fields no event carries, such as the node hosting its
actor after a re-placement, are at most that old). Otherwise the caller asks the cluster and
stores the answer. The JSON body of an entry is encoded once per change, not per request.
"""

from __future__ import annotations

import time
from typing import Any, Final

from .cluster import Event
from .models import present_sat
from .respond import dumps

__all__ = ["SatMirror"]

_TELEMETRY_KEYS: Final = frozenset(
    {"mode", "energy_pct", "memory_used_mb", "updated_at", "lat_deg", "lon_deg", "alt_km", "in_sunlight"}
)
MAX_ENTRIES: Final = 100_000


class _Entry:
    __slots__ = ("body", "event_at", "raw", "snapshot_at")

    def __init__(self, raw: dict[str, Any], now: float) -> None:
        self.raw = raw
        self.snapshot_at = now
        self.event_at = now
        self.body: bytes | None = None


class SatMirror:
    def __init__(self, *, event_fresh_s: float = 2.5, snapshot_max_s: float = 5.0) -> None:
        self.event_fresh_s = event_fresh_s
        self.snapshot_max_s = snapshot_max_s
        self._entries: dict[str, _Entry] = {}
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.snapshot_max_s > 0

    def body(self, sat_id: str) -> bytes | None:
        """The satellite's JSON when its entry is fresh, else None (ask the cluster)."""
        entry = self._entries.get(sat_id)
        now = time.monotonic()
        if entry is None or now - entry.event_at > self.event_fresh_s or now - entry.snapshot_at > self.snapshot_max_s:
            self.misses += 1
            return None
        self.hits += 1
        if entry.body is None:
            entry.body = dumps(present_sat(entry.raw)).encode()
        return entry.body

    def put(self, raw: dict[str, Any]) -> None:
        """A full snapshot from the cluster."""
        if not self.enabled:
            return
        sat_id = raw.get("id")
        if isinstance(sat_id, str):
            if sat_id not in self._entries and len(self._entries) >= MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
            self._entries[sat_id] = _Entry(raw, time.monotonic())

    def drop(self, sat_id: str) -> None:
        self._entries.pop(sat_id, None)

    def apply(self, event: Event) -> None:
        """Keep an entry current with an event about its satellite."""
        entry = self._entries.get(event.sat_id) if event.sat_id is not None else None
        if entry is None:
            return
        if event.type == "telemetry":
            entry.raw.update((k, v) for k, v in event.data.items() if k in _TELEMETRY_KEYS)
        elif event.type == "state" and isinstance(event.data.get("to"), str):
            entry.raw["mode"] = event.data["to"]
        else:
            return
        entry.event_at = time.monotonic()
        entry.body = None
