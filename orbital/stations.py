"""Ground stations and topocentric look angles (azimuth, elevation, range, range rate).

Look angles are geometric, from the ECEF satellite position in the station's local East-North-Up
frame (up = WGS84 ellipsoid normal). Neglected: atmospheric refraction (raises apparent elevation
by ~0.5° at the horizon, ~0.1° at 5°), light time (~10 ms, ~80 m along-track for LEO), and the
frame errors listed in ``orbital.frames``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .frames import geodetic_to_ecef

__all__ = ["GroundStation", "LookAngles", "elevations_deg", "look_angles"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class GroundStation:
    """A fixed antenna site; ``min_el_deg`` is its elevation mask (passes count above it)."""

    station_id: str
    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_el_deg: float = 0.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(
                f"station {self.station_id}: lat_deg {self.lat_deg} is outside [-90, 90]"
            )
        if not -180.0 <= self.lon_deg <= 360.0:
            raise ValueError(
                f"station {self.station_id}: lon_deg {self.lon_deg} is outside [-180, 360]"
            )
        if not math.isfinite(self.alt_m):
            raise ValueError(f"station {self.station_id}: alt_m must be finite, got {self.alt_m}")
        if not -90.0 <= self.min_el_deg < 90.0:
            raise ValueError(
                f"station {self.station_id}: min_el_deg {self.min_el_deg} is outside [-90, 90)"
            )

    @property
    def r_ecef_km(self) -> FloatArray:
        return geodetic_to_ecef(self.lat_deg, self.lon_deg, self.alt_m / 1000.0)

    def enu_basis(self) -> FloatArray:
        """Rows: unit East, North and Up vectors in ECEF."""
        lat, lon = math.radians(self.lat_deg), math.radians(self.lon_deg)
        sin_lat, cos_lat, sin_lon, cos_lon = (
            math.sin(lat),
            math.cos(lat),
            math.sin(lon),
            math.cos(lon),
        )
        return np.array(
            [
                [-sin_lon, cos_lon, 0.0],
                [-sin_lat * cos_lon, -sin_lat * sin_lon, cos_lat],
                [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat],
            ]
        )


class LookAngles(NamedTuple):
    """Azimuth from north through east in [0, 360), elevation, slant range and its rate."""

    az_deg: FloatArray
    el_deg: FloatArray
    range_km: FloatArray
    range_rate_km_s: FloatArray


def look_angles(station: GroundStation, r_ecef_km: ArrayLike, v_ecef_km_s: ArrayLike) -> LookAngles:
    """Look angles from ``station`` to ECEF states [..., 3] (velocity ECEF too, for range rate)."""
    r = np.asarray(r_ecef_km, dtype=np.float64)
    v = np.asarray(v_ecef_km_s, dtype=np.float64)
    rho = r - station.r_ecef_km
    enu = rho @ station.enu_basis().T
    east, north, up = enu[..., 0], enu[..., 1], enu[..., 2]
    range_km = np.linalg.norm(rho, axis=-1)
    el_deg = np.degrees(np.arctan2(up, np.hypot(east, north)))
    az_deg = np.mod(np.degrees(np.arctan2(east, north)), 360.0)
    range_rate = np.einsum("...k,...k->...", rho, v) / range_km
    return LookAngles(az_deg, el_deg, range_km, range_rate)


def elevations_deg(stations: Sequence[GroundStation], r_ecef_km: ArrayLike) -> FloatArray:
    """Elevation of positions [..., n_times, 3] from every station: [..., n_stations, n_times]."""
    r = np.asarray(r_ecef_km, dtype=np.float64)
    sites = np.array([s.r_ecef_km for s in stations]).reshape(-1, 3)  # [n_st, 3]
    ups = np.array([s.enu_basis()[2] for s in stations]).reshape(-1, 3)  # [n_st, 3]
    rho = r[..., None, :, :] - sites[:, None, :]  # [..., n_st, n_times, 3]
    up = np.einsum("...stk,sk->...st", rho, ups)
    range_km = np.sqrt(np.einsum("...k,...k->...", rho, rho))
    horizontal = np.sqrt(np.maximum(range_km**2 - up**2, 0.0))
    result: FloatArray = np.degrees(np.arctan2(up, horizontal))
    return result
