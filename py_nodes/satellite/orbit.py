"""Where a sats node's satellites are, and whether they are sunlit, at each tick.

One vectorised SGP4 call (``orbital.SatBatch``) per tick covers every satellite of the node
that has a valid TLE; frames and the conical Earth shadow come from ``orbital``. A satellite
without a TLE (or with one that SGP4 cannot propagate at that time) has no position and keeps
the placeholder day/night cycle of ``satellite.sunlight``, so its energy model still runs.

The batch is rebuilt only when the set of tracked satellites changes (it copies every Satrec),
not at every tick.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from orbital import (
    Elements,
    ElementsError,
    SatBatch,
    in_sunlight_jd,
    jd_fr_from_unix_s,
    subsatellite_point,
)

__all__ = ["OrbitFix", "OrbitTracker"]

log = logging.getLogger("stellarops.orbit")


class OrbitFix(NamedTuple):
    """A satellite at one instant: WGS84 sub-satellite point and height, and sunlight."""

    lat_deg: float
    lon_deg: float
    alt_km: float
    in_sunlight: bool


class OrbitTracker:
    """The TLEs of one node's satellites, propagated together."""

    def __init__(self) -> None:
        self._satrecs: dict[bytes, Any] = {}
        self._batch: tuple[tuple[bytes, ...], SatBatch] | None = None

    def __len__(self) -> int:
        return len(self._satrecs)

    def track(self, sat_id: bytes, tle: tuple[bytes, bytes] | None) -> bool:
        """Track ``sat_id`` from its TLE; False (and untracked) without one or when it is
        invalid (logged once: the satellite then flies without a position)."""
        self.forget(sat_id)
        if tle is None:
            return False
        try:
            elements = Elements.from_tle(tle[0].decode("ascii"), tle[1].decode("ascii"))
        except (UnicodeDecodeError, ElementsError) as exc:
            log.warning("%s: TLE not usable, no position: %s", sat_id.decode(errors="replace"), exc)
            return False
        self._satrecs[sat_id] = elements.satrec()
        self._batch = None
        return True

    def forget(self, sat_id: bytes) -> None:
        if self._satrecs.pop(sat_id, None) is not None:
            self._batch = None

    def fixes(self, t_unix_s: float, sat_ids: Iterable[bytes] | None = None) -> dict[bytes, OrbitFix]:
        """The fix of every tracked satellite (or of ``sat_ids``) at ``t_unix_s`` (UTC seconds
        since the epoch); satellites that SGP4 fails on are left out."""
        ids, batch = self._prepared()
        if not ids:
            return {}
        jd, fr = jd_fr_from_unix_s(t_unix_s)
        states = batch.propagate_jd(jd, fr)
        ok = states.ok[:, 0]
        point = subsatellite_point(states.r_teme_km, jd, fr)
        sunlit = in_sunlight_jd(states.r_teme_km, jd, fr)[:, 0]
        lat, lon, alt = point.lat_deg[:, 0], point.lon_deg[:, 0], point.alt_km[:, 0]
        wanted = None if sat_ids is None else set(sat_ids)
        return {
            sat_id: OrbitFix(float(lat[i]), float(lon[i]), float(alt[i]), bool(sunlit[i]))
            for i, sat_id in enumerate(ids)
            if ok[i] and (wanted is None or sat_id in wanted)
        }

    def _prepared(self) -> tuple[tuple[bytes, ...], SatBatch]:
        if self._batch is None:
            ids = tuple(self._satrecs)
            self._batch = (ids, SatBatch([self._satrecs[i] for i in ids]))
        return self._batch
