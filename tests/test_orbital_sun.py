"""Sun direction and Earth shadow (orbital.sun) against published values and shadow geometry.

References:
* Vallado, *Fundamentals of Astrodynamics and Applications* (4th ed.), Example 5-1: the Sun on
  2006 April 2, 00:00 UTC at r = (146186178, 28787733, 12481063) km (mean equator of date).
* USNO "Earth's Seasons" table for 2024: equinoxes and solstices to the minute (UTC), when the
  Sun's apparent ecliptic longitude is 0°, 90°, 180°, 270°.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from numpy.typing import ArrayLike

from orbital import (
    WGS84_A_KM,
    in_sunlight,
    in_sunlight_jd,
    jd_fr_from_utc,
    make_elements,
    propagate,
    sgp4_mean_motion_rev_day,
    sun_direction,
    sun_position_km,
    sunlit_fraction,
)

OBLIQUITY_2024_RAD = math.radians(23.43929 - 0.0130042 * 0.24)


def angle_deg(a: ArrayLike, b: ArrayLike) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def test_sun_vallado_example_5_1() -> None:
    jd, fr = jd_fr_from_utc(datetime(2006, 4, 2, tzinfo=UTC))
    r_sun_km = sun_position_km(jd, fr)[0]
    published = [146186178.0, 28787733.0, 12481063.0]
    assert angle_deg(r_sun_km, published) < 0.01  # we differ by 0.0005°
    assert np.linalg.norm(r_sun_km) == pytest.approx(np.linalg.norm(published), rel=1e-5)


@pytest.mark.parametrize(
    ("t_utc", "ecliptic_lon_deg"),
    [
        (datetime(2024, 3, 20, 3, 6, tzinfo=UTC), 0.0),
        (datetime(2024, 6, 20, 20, 51, tzinfo=UTC), 90.0),
        (datetime(2024, 9, 22, 12, 44, tzinfo=UTC), 180.0),
        (datetime(2024, 12, 21, 9, 21, tzinfo=UTC), 270.0),
    ],
)
def test_sun_at_2024_equinoxes_and_solstices(t_utc: datetime, ecliptic_lon_deg: float) -> None:
    jd, fr = jd_fr_from_utc(t_utc)
    lon = math.radians(ecliptic_lon_deg)
    eps = OBLIQUITY_2024_RAD
    expected = [math.cos(lon), math.cos(eps) * math.sin(lon), math.sin(eps) * math.sin(lon)]
    assert angle_deg(sun_direction(jd, fr)[0], expected) < 0.01


def test_shadow_points() -> None:
    t = datetime(2024, 5, 1, 6, tzinfo=UTC)
    jd, fr = jd_fr_from_utc(t)
    s = sun_direction(jd, fr)[0]
    side = np.cross(s, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    r = np.array(
        [
            7000.0 * s,  # sunward
            -7000.0 * s,  # behind the Earth, on the shadow axis
            7000.0 * side,  # over the terminator
            -7000.0 * s + 6300.0 * side,  # behind, inside the umbra (~6345 km wide here)
            -7000.0 * s + WGS84_A_KM * side,  # behind, on the geometric shadow edge: penumbra
            -7000.0 * s + 6460.0 * side,  # behind, just outside the penumbra (~6411 km)
        ]
    )[:, None, :]  # [6 points, 1 time, 3]
    fraction = sunlit_fraction(r, jd, fr)[:, 0]
    lit = in_sunlight_jd(r, jd, fr)[:, 0]
    assert fraction[[0, 2, 5]].tolist() == [1.0, 1.0, 1.0]
    assert fraction[[1, 3]].tolist() == [0.0, 0.0]
    assert 0.3 < fraction[4] < 0.7
    assert lit.tolist()[:4] == [True, False, True, False] and lit[5]
    assert in_sunlight(-7000.0 * s, t).shape == ()  # one time, one point
    assert not in_sunlight(-7000.0 * s, t)
    assert np.isnan(sunlit_fraction(np.full((1, 3), np.nan), jd, fr)).all()


def test_eclipse_fraction_of_a_500_km_orbit_at_beta_zero() -> None:
    """A polar orbit whose node is at the Sun's right ascension contains the Sun direction
    (β = 0): the shadow covers 2·asin(Re/(Re+h))/360° ≈ 37.8% of it at 500 km."""
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    jd, fr = jd_fr_from_utc(t0)
    s = sun_direction(jd, fr)[0]
    n = sgp4_mean_motion_rev_day(500.0, 90.0)
    sat = make_elements(
        norad_id=99500,
        epoch_utc=t0,
        inclination_deg=90.0,
        raan_deg=math.degrees(math.atan2(s[1], s[0])),
        eccentricity=0.0,
        arg_perigee_deg=0.0,
        mean_anomaly_deg=0.0,
        mean_motion_rev_day=n,
    )
    times = [t0 + timedelta(seconds=float(x)) for x in np.arange(0.0, 86400.0 / n, 2.0)]
    states = propagate(sat, times)
    r = states.r_teme_km[0]
    h = np.cross(r[0], states.v_teme_km_s[0, 0])
    assert abs(90.0 - angle_deg(h, s)) < 0.1  # β ≈ 0
    dark = 1.0 - np.mean(in_sunlight(r, times))
    assert 0.35 < dark < 0.38
    # Cross-check against the cylindrical shadow, computed independently here.
    sun = sun_direction(states.jd, states.fr)
    along = np.einsum("tk,tk->t", r, sun)
    across = np.linalg.norm(r - along[:, None] * sun, axis=-1)
    cylinder_dark = np.mean((along < 0.0) & (across < WGS84_A_KM))
    assert dark == pytest.approx(cylinder_dark, abs=0.002)
    fraction = sunlit_fraction(r, states.jd, states.fr)
    penumbra_s = 2.0 * np.count_nonzero((fraction > 0.0) & (fraction < 1.0))
    assert 8.0 <= penumbra_s <= 40.0  # two crossings of ~4-20 s each
