"""Sun position and Earth-shadow (eclipse) tests for satellites.

The Sun is the Astronomical Almanac's low-precision solar ephemeris (as given in Vallado,
*Fundamentals of Astrodynamics and Applications*, Algorithm 29): about 0.01° in direction and
1e-4 AU in distance for 1950-2050. It gives the mean equator and equinox of date; we use it as
TEME, which differs by nutation in right ascension only (<= ~0.005°). UTC stands for the TDB
time the formula wants (~70 s, 0.0008° of solar motion).

Shadow: the Earth is a sphere of the WGS84 equatorial radius and the Sun a disk of radius
695,700 km (conical umbra and penumbra). Neglected: Earth oblateness (the shadow edge moves by up
to ~21 km, a few seconds for LEO), atmospheric refraction and absorption (the real edge is soft
over ~10 s for LEO), and the Moon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .frames import WGS84_A_KM
from .timescale import jd_fr_from_utc

__all__ = [
    "AU_KM",
    "SUN_RADIUS_KM",
    "in_sunlight",
    "in_sunlight_jd",
    "sun_direction",
    "sun_position_km",
    "sunlit_fraction",
]

FloatArray = NDArray[np.float64]

AU_KM = 149597870.7
SUN_RADIUS_KM = 695700.0  # IAU 2015 nominal solar radius
_J2000_JD = 2451545.0


def sun_position_km(jd: ArrayLike, fr: ArrayLike) -> FloatArray:
    """Geocentric Sun position (mean equator/equinox of date ≈ TEME), km, shape [..., 3]."""
    t = (
        (np.asarray(jd, dtype=np.float64) - _J2000_JD) + np.asarray(fr, dtype=np.float64)
    ) / 36525.0
    mean_lon = np.radians(280.460 + 36000.771 * t)
    mean_anomaly = np.radians(357.5291092 + 35999.05034 * t)
    ecliptic_lon = mean_lon + np.radians(
        1.914666471 * np.sin(mean_anomaly) + 0.019994643 * np.sin(2.0 * mean_anomaly)
    )
    distance_au = (
        1.000140612 - 0.016708617 * np.cos(mean_anomaly) - 0.000139589 * np.cos(2.0 * mean_anomaly)
    )
    obliquity = np.radians(23.439291 - 0.0130042 * t)
    distance_km = distance_au * AU_KM
    return np.stack(
        [
            distance_km * np.cos(ecliptic_lon),
            distance_km * np.cos(obliquity) * np.sin(ecliptic_lon),
            distance_km * np.sin(obliquity) * np.sin(ecliptic_lon),
        ],
        axis=-1,
    )


def sun_direction(jd: ArrayLike, fr: ArrayLike) -> FloatArray:
    """Unit vector from the Earth's centre to the Sun, [..., 3]."""
    r_sun_km = sun_position_km(jd, fr)
    result: FloatArray = r_sun_km / np.linalg.norm(r_sun_km, axis=-1, keepdims=True)
    return result


def _shadow_geometry(
    r_teme_km: ArrayLike, jd: ArrayLike, fr: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Angular radii of the Sun (a) and Earth (b) seen from the satellite, and their separation (c)."""
    r = np.asarray(r_teme_km, dtype=np.float64)
    to_sun = sun_position_km(jd, fr) - r  # broadcasts [n_times, 3] against [..., n_times, 3]
    r_norm = np.linalg.norm(r, axis=-1)
    d_norm = np.linalg.norm(to_sun, axis=-1)
    a = np.arcsin(np.clip(SUN_RADIUS_KM / d_norm, 0.0, 1.0))
    b = np.arcsin(np.clip(WGS84_A_KM / r_norm, 0.0, 1.0))
    cos_c = -np.einsum("...k,...k->...", r, to_sun) / (r_norm * d_norm)
    c = np.arccos(np.clip(cos_c, -1.0, 1.0))
    return a, b, c


def sunlit_fraction(r_teme_km: ArrayLike, jd: ArrayLike, fr: ArrayLike) -> FloatArray:
    """Fraction of the solar disk visible from TEME positions [..., n_times, 3]: 1 in sunlight,
    0 in the umbra, between in the penumbra (area of overlapping disks); NaN for NaN positions."""
    a, b, c = _shadow_geometry(r_teme_km, jd, fr)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Overlap area of two disks, radii a (Sun) and b (Earth), centres c apart.
        x = (c**2 + a**2 - b**2) / (2.0 * c)
        y = np.sqrt(np.maximum(a**2 - x**2, 0.0))
        overlap = (
            a**2 * np.arccos(np.clip(x / a, -1.0, 1.0))
            + b**2 * np.arccos(np.clip((c - x) / b, -1.0, 1.0))
            - c * y
        )
        partial = 1.0 - overlap / (math.pi * a**2)
        annular = 1.0 - (b / a) ** 2
    fraction = np.where(
        c >= a + b, 1.0, np.where(c <= b - a, 0.0, np.where(c <= a - b, annular, partial))
    )
    result: FloatArray = np.where(np.isnan(c), np.nan, np.clip(fraction, 0.0, 1.0))
    return result


def in_sunlight_jd(r_teme_km: ArrayLike, jd: ArrayLike, fr: ArrayLike) -> NDArray[np.bool_]:
    """True where the Sun's centre is above the Earth's limb as seen from the satellite (so at
    least half the disk shows); False in umbra, the darker half of the penumbra, and NaN rows."""
    _, b, c = _shadow_geometry(r_teme_km, jd, fr)
    result: NDArray[np.bool_] = c > b
    return result


def in_sunlight(r_teme_km: ArrayLike, t_utc: datetime | Sequence[datetime]) -> NDArray[np.bool_]:
    """``in_sunlight_jd`` at timezone-aware UTC times: positions [..., n_times, 3] -> [..., n_times]."""
    jd, fr = jd_fr_from_utc(t_utc)
    if isinstance(t_utc, datetime):
        jd, fr = jd.reshape(()), fr.reshape(())
    return in_sunlight_jd(r_teme_km, jd, fr)
