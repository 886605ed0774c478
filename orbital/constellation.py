"""Walker-delta constellations as TLE element sets.

Orbits are circular (e = 0, argument of perigee 0, so mean anomaly = argument of latitude) with no
drag (B* = 0). The mean motion is chosen so that SGP4's own Brouwer mean semi-major axis is
Earth radius + ``alt_km`` exactly, using the WGS72 constants SGP4 uses (the printed TLE rounds it
to ~3 mm). The instantaneous SGP4 radius oscillates about that mean by ~±10 km (J2 short-period
terms), and the geodetic altitude varies by a further ~21 km with latitude because the Earth is
oblate while ``alt_km`` is measured above the WGS72 equatorial radius.
"""

from __future__ import annotations

import math
from datetime import datetime

from sgp4.earth_gravity import wgs72  # type: ignore[import-untyped]

from .elements import Elements, make_elements
from .timescale import as_utc

__all__ = ["sgp4_mean_motion_rev_day", "walker_delta"]


def sgp4_mean_motion_rev_day(alt_km: float, inc_deg: float) -> float:
    """Kozai mean motion (rev/day) that SGP4 turns into a circular orbit of mean radius
    ``wgs72.radiusearthkm + alt_km``.

    SGP4 reads the TLE mean motion as Kozai's and divides it by (1 + δ) with δ from J2 and the
    inclination; we invert that by fixed-point iteration (δ ~ 1e-3, converges in a few steps).
    """
    a_er = (wgs72.radiusearthkm + alt_km) / wgs72.radiusearthkm
    n_brouwer = wgs72.xke / a_er**1.5  # rad/min
    d1 = 0.75 * wgs72.j2 * (3.0 * math.cos(math.radians(inc_deg)) ** 2 - 1.0)  # e = 0
    n_kozai = n_brouwer
    for _ in range(8):
        a1 = (wgs72.xke / n_kozai) ** (2.0 / 3.0)
        delta = d1 / a1**2
        a0 = a1 * (1.0 - delta * delta - delta * (1.0 / 3.0 + 134.0 * delta * delta / 81.0))
        n_kozai = n_brouwer * (1.0 + d1 / a0**2)
    return float(n_kozai * 1440.0 / (2.0 * math.pi))


def walker_delta(
    total: int,
    planes: int,
    phasing: int,
    alt_km: float,
    inc_deg: float,
    epoch_utc: datetime,
    *,
    name_prefix: str = "WALKER",
    first_norad_id: int = 90001,
) -> list[Elements]:
    """A Walker-delta constellation i:T/P/F, plane by plane.

    Planes are spaced 360/P in RAAN, satellites 360/(T/P) apart within a plane, and each plane's
    pattern is shifted F·360/T along-track from the previous one. Satellite k of plane p is named
    ``{name_prefix}-{p+1}-{k+1}`` and numbered ``first_norad_id + p·(T/P) + k``.
    """
    epoch = as_utc(epoch_utc, "epoch_utc")
    if total <= 0 or planes <= 0:
        raise ValueError(f"total ({total}) and planes ({planes}) must be positive")
    if total % planes != 0:
        raise ValueError(f"total {total} is not a multiple of planes {planes}")
    if not 0 <= phasing < planes:
        raise ValueError(f"phasing {phasing} must be in 0..{planes - 1} (planes - 1)")
    if not alt_km > 0.0:
        raise ValueError(f"alt_km must be positive, got {alt_km}")
    if not 0.0 <= inc_deg <= 180.0:
        raise ValueError(f"inc_deg {inc_deg} is outside [0, 180]")
    per_plane = total // planes
    mean_motion = sgp4_mean_motion_rev_day(alt_km, inc_deg)
    constellation: list[Elements] = []
    for plane in range(planes):
        for slot in range(per_plane):
            constellation.append(
                make_elements(
                    norad_id=first_norad_id + plane * per_plane + slot,
                    epoch_utc=epoch,
                    inclination_deg=inc_deg,
                    raan_deg=plane * 360.0 / planes,
                    eccentricity=0.0,
                    arg_perigee_deg=0.0,
                    mean_anomaly_deg=slot * 360.0 / per_plane + plane * phasing * 360.0 / total,
                    mean_motion_rev_day=mean_motion,
                    name=f"{name_prefix}-{plane + 1}-{slot + 1}",
                )
            )
    return constellation
