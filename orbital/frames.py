"""Frames: TEME -> Earth-fixed (ECEF), WGS84 geodetic coordinates, ground tracks, footprints.

TEME -> ECEF is one rotation about z by GMST (IAU 1982), the Earth-fixed frame being the pseudo
Earth-fixed frame (PEF), used here as ITRS. Neglected, with their size:

* UT1-UTC (|ΔUT1| <= 0.9 s; UTC stands in for UT1): a rotation error of up to 0.9 s × 15"/s =
  13.5" (6.5e-5 rad), i.e. up to ~0.42 km along the direction of Earth rotation at the equator
  on the ground, ~0.45 km for a LEO satellite;
* polar motion (|xp|, |yp| <~ 0.5"): up to ~15 m at the surface, ~17 m at LEO;
* the equation of the equinoxes: none, because TEME is defined on the mean equinox, so GMST
  (not apparent sidereal time) is the correct angle from TEME to PEF.

For an SGP4 state (itself good to ~1 km) these are negligible; they are not for precise orbit
work. Geodetic conversions are on the WGS84 ellipsoid and accurate to well under 1 mm for any
point outside the Earth's core.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .elements import Elements
from .propagate import SatBatch, propagate
from .timescale import gmst_rad

__all__ = [
    "EARTH_ROTATION_RAD_S",
    "WGS84_A_KM",
    "WGS84_F",
    "Geodetic",
    "ecef_to_geodetic",
    "footprint_half_angle_deg",
    "footprint_radius_km",
    "geodetic_to_ecef",
    "ground_track",
    "subsatellite_point",
    "teme_to_ecef",
    "teme_to_ecef_position",
]

FloatArray = NDArray[np.float64]

WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563
_B_KM = WGS84_A_KM * (1.0 - WGS84_F)
_E2 = WGS84_F * (2.0 - WGS84_F)  # first eccentricity squared
_EP2 = _E2 / (1.0 - _E2)  # second eccentricity squared
EARTH_ROTATION_RAD_S = 7.292115146706979e-5  # IAU 1982 sidereal rate, nominal length of day
_TINY = 1e-300  # keeps 0/0 out of the geodetic iteration at the geocentre


class Geodetic(NamedTuple):
    """WGS84 geodetic coordinates; longitude in [-180, 180)."""

    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_km: FloatArray


def _gmst_cos_sin(jd: ArrayLike, fr: ArrayLike) -> tuple[FloatArray, FloatArray]:
    theta = gmst_rad(jd, fr)
    return np.cos(theta), np.sin(theta)


def teme_to_ecef_position(r_teme_km: ArrayLike, jd: ArrayLike, fr: ArrayLike) -> FloatArray:
    """Rotate TEME positions [..., n_times, 3] into ECEF at times ``jd``/``fr`` [n_times]."""
    r = np.asarray(r_teme_km, dtype=np.float64)
    c, s = _gmst_cos_sin(jd, fr)
    out = np.empty(np.broadcast_shapes(r.shape, (*c.shape, 3)), dtype=np.float64)
    out[..., 0] = c * r[..., 0] + s * r[..., 1]
    out[..., 1] = -s * r[..., 0] + c * r[..., 1]
    out[..., 2] = r[..., 2]
    return out


def teme_to_ecef(
    r_teme_km: ArrayLike, v_teme_km_s: ArrayLike, jd: ArrayLike, fr: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """TEME position and velocity -> ECEF; the velocity loses the frame's rotation, ω × r."""
    r_ecef_km = teme_to_ecef_position(r_teme_km, jd, fr)
    v_rot = teme_to_ecef_position(v_teme_km_s, jd, fr)
    v_rot[..., 0] += EARTH_ROTATION_RAD_S * r_ecef_km[..., 1]
    v_rot[..., 1] -= EARTH_ROTATION_RAD_S * r_ecef_km[..., 0]
    return r_ecef_km, v_rot


def ecef_to_geodetic(r_ecef_km: ArrayLike) -> Geodetic:
    """ECEF [..., 3] -> WGS84 latitude, longitude and height above the ellipsoid.

    Bowring's iteration on the reduced latitude β, from his starting value tan β = z / ((1-f) p).
    Each step takes tan φ = (z + e'² b sin³β) / (p - e² a cos³β) and then tan β = (1-f) tan φ,
    with sin β and cos β from normalising that ratio, so no trigonometric function is evaluated
    inside the loop. The error cubes with each step: one leaves up to ~1e-8 rad (0.35 m) between
    LEO and lunar distance, two leave ~1e-19 rad (checked in extended precision), far below
    float64 rounding, so the result is exact to rounding: ~4e-16 rad of latitude and < 1 µm of
    height and position from the surface out to 400,000 km. The geocentre gives latitude 0 and
    height -a.
    """
    r = np.asarray(r_ecef_km, dtype=np.float64)
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    p = np.hypot(x, y)
    sin_b, cos_b = z, (1.0 - WGS84_F) * p  # ∝ sin β, cos β (normalised below)
    num = den = p  # replaced in the loop
    for _ in range(2):
        scale = 1.0 / np.sqrt(np.maximum(sin_b * sin_b + cos_b * cos_b, _TINY))
        sin_b = sin_b * scale
        cos_b = cos_b * scale
        num = z + (_EP2 * _B_KM) * (sin_b * sin_b * sin_b)  # ∝ sin φ
        den = p - (_E2 * WGS84_A_KM) * (cos_b * cos_b * cos_b)  # ∝ cos φ
        sin_b, cos_b = (1.0 - WGS84_F) * num, den  # tan β = (1 - f) tan φ
    norm = 1.0 / np.sqrt(np.maximum(num * num + den * den, _TINY))
    sin_lat = num * norm
    alt_km = p * (den * norm) + z * sin_lat - WGS84_A_KM * np.sqrt(1.0 - _E2 * sin_lat * sin_lat)
    lat_deg = np.degrees(np.arctan2(num, den))
    lon_deg = np.degrees(np.arctan2(y, x))  # [-180, 180]; +180 becomes -180
    lon_deg = lon_deg - 360.0 * (lon_deg >= 180.0)
    return Geodetic(lat_deg, lon_deg, alt_km)


def geodetic_to_ecef(lat_deg: ArrayLike, lon_deg: ArrayLike, alt_km: ArrayLike) -> FloatArray:
    """WGS84 geodetic coordinates (broadcast together) -> ECEF [..., 3] in km."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(alt_km, dtype=np.float64)
    sin_lat = np.sin(lat)
    n = WGS84_A_KM / np.sqrt(1.0 - _E2 * sin_lat**2)  # prime-vertical radius of curvature
    xy = (n + h) * np.cos(lat)
    return np.stack(
        np.broadcast_arrays(xy * np.cos(lon), xy * np.sin(lon), (n * (1.0 - _E2) + h) * sin_lat),
        axis=-1,
    )


def subsatellite_point(r_teme_km: ArrayLike, jd: ArrayLike, fr: ArrayLike) -> Geodetic:
    """The geodetic point below each TEME position (the ellipsoid normal through it)."""
    return ecef_to_geodetic(teme_to_ecef_position(r_teme_km, jd, fr))


def ground_track(
    elements: Elements | Sequence[Elements] | SatBatch, times_utc: datetime | Sequence[datetime]
) -> Geodetic:
    """Sub-satellite latitude/longitude/altitude, arrays [n_sats, n_times] (NaN where SGP4 fails)."""
    states = propagate(elements, times_utc)
    return subsatellite_point(states.r_teme_km, states.jd, states.fr)


def footprint_half_angle_deg(
    alt_km: float, min_el_deg: float, earth_radius_km: float = WGS84_A_KM
) -> float:
    """Earth central angle λ from the sub-satellite point to the edge of coverage.

    A ground point sees the satellite at elevation >= ε when within λ = arccos(Re cos ε /
    (Re + h)) - ε of the sub-satellite point (spherical Earth of radius ``earth_radius_km``).
    """
    if not alt_km > 0.0:
        raise ValueError(f"alt_km must be positive, got {alt_km}")
    if not -90.0 < min_el_deg <= 90.0:
        raise ValueError(f"min_el_deg must be in (-90, 90], got {min_el_deg}")
    eps = math.radians(min_el_deg)
    lam = math.acos(earth_radius_km * math.cos(eps) / (earth_radius_km + alt_km)) - eps
    return math.degrees(lam)


def footprint_radius_km(
    alt_km: float, min_el_deg: float, earth_radius_km: float = WGS84_A_KM
) -> float:
    """Ground distance (great-circle arc, km) from the sub-satellite point to the coverage edge."""
    return earth_radius_km * math.radians(
        footprint_half_angle_deg(alt_km, min_el_deg, earth_radius_km)
    )
