"""Time scales and frames (orbital.timescale, orbital.frames) against published worked examples.

References:
* Vallado, *Fundamentals of Astrodynamics and Applications* (4th ed.), Example 3-5 (GMST) and
  Example 3-3 (ECEF -> geodetic latitude, longitude, height).
* Vallado, Crawford, Hujsak, Kelso, "Revisiting Spacetrack Report #3", AIAA 2006-6753, Appendix C
  (a TEME state, its PEF rotation, and ITRF after polar motion, 2004-04-06 07:51:28.386009 UTC).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from orbital import (
    WGS84_A_KM,
    WGS84_F,
    ecef_to_geodetic,
    footprint_half_angle_deg,
    footprint_radius_km,
    geodetic_to_ecef,
    gmst_rad,
    ground_track,
    jd_fr_from_utc,
    jd_fr_offsets,
    subsatellite_point,
    teme_to_ecef,
    teme_to_ecef_position,
    utc_from_jd_fr,
    walker_delta,
)

KM_PER_M = 1e-3
ARCSEC = math.radians(1.0 / 3600.0)


def test_split_julian_dates() -> None:
    jd, fr = jd_fr_from_utc(datetime(2000, 1, 1, 12, tzinfo=UTC))
    assert (jd[0], fr[0]) == (2451544.5, 0.5)  # J2000.0 is JD 2451545.0
    eastern = timezone(timedelta(hours=-5))
    jd2, fr2 = jd_fr_from_utc([datetime(2000, 1, 1, 7, tzinfo=eastern)])  # the same instant
    assert (jd2[0], fr2[0]) == (2451544.5, 0.5)
    t = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert utc_from_jd_fr(*(float(a[0]) for a in jd_fr_from_utc(t))) == t
    jd3, fr3 = jd_fr_offsets(datetime(2024, 1, 1, tzinfo=UTC), [0.0, 86400.0 * 1.5])
    assert jd3.tolist() == [2460310.5, 2460311.5] and fr3.tolist() == [0.0, 0.5]
    with pytest.raises(ValueError, match="naive"):
        jd_fr_from_utc(datetime(2024, 1, 1))


def test_gmst_vallado_example_3_5() -> None:
    """1992 Aug 20 12:14 UT1 -> GMST 152.578787886°. We agree to 4e-8° (0.4 cm of rotation at
    the equator); the published value came from a single float64 Julian date (40 µs steps)."""
    jd, fr = jd_fr_from_utc(datetime(1992, 8, 20, 12, 14, tzinfo=UTC))
    assert math.degrees(gmst_rad(jd, fr)[0]) == pytest.approx(152.578787886, abs=1e-7)


def test_teme_to_itrf_aiaa_2006_6753_appendix_c() -> None:
    r_teme_km = np.array([5094.18016210, 6127.64465950, 6380.34453270])
    v_teme_km_s = np.array([-4.746131487, 0.785818041, 5.531931288])
    r_pef_km = np.array([-1033.47503130, 7901.30558560, 6380.34453270])
    r_itrf_km = np.array([-1033.4793830, 7901.2952754, 6380.3565958])
    v_itrf_km_s = np.array([-3.225636520, -2.872451450, 5.531924446])
    t_utc = datetime(2004, 4, 6, 7, 51, 28, 386009, tzinfo=UTC)
    dut1_s, xp, yp = -0.4399619, -0.140682 * ARCSEC, 0.333309 * ARCSEC
    (jd,), (fr,) = jd_fr_from_utc(t_utc + timedelta(seconds=dut1_s))  # UT1

    # Vallado's numbers come from a single float64 JD; with the same input we match to 0.1 mm,
    # with our exact split date to within that JD's ±20 µs rounding (±12 mm here).
    np.testing.assert_allclose(teme_to_ecef_position(r_teme_km, jd + fr, 0.0), r_pef_km, atol=1e-7)
    r_pef, v_pef = teme_to_ecef(r_teme_km, v_teme_km_s, jd, fr)
    np.testing.assert_allclose(r_pef, r_pef_km, atol=12e-6)

    # Polar motion (which orbital neglects) applied here: r_ITRF = W^T r_PEF.
    cx, sx, cy, sy = math.cos(xp), math.sin(xp), math.cos(yp), math.sin(yp)
    w = np.array([[cx, 0.0, -sx], [sx * sy, cy, cx * sy], [sx * cy, -sy, cx * cy]])
    np.testing.assert_allclose(w.T @ r_pef, r_itrf_km, atol=12e-6)
    np.testing.assert_allclose(w.T @ v_pef, v_itrf_km_s, atol=1e-7)  # includes the ω × r term

    # What orbital really computes (UT1 = UTC, no polar motion) is off by the documented amount:
    # 0.44 s of Earth rotation at 7968 km from the axis ≈ 0.256 km, plus ~10 m of polar motion.
    (jd_u,), (fr_u,) = jd_fr_from_utc(t_utc)
    error_km = np.linalg.norm(teme_to_ecef_position(r_teme_km, jd_u, fr_u) - r_itrf_km)
    assert 0.24 < error_km < 0.28


def test_teme_to_ecef_broadcasts_over_satellites_and_times() -> None:
    (jd,), (fr,) = jd_fr_from_utc(datetime(2024, 5, 1, tzinfo=UTC))
    jd_t, fr_t = np.full(4, jd), fr + np.arange(4) / 24.0
    r = np.random.default_rng(1).normal(size=(3, 4, 3)) * 7000.0
    r_ecef = teme_to_ecef_position(r, jd_t, fr_t)
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(
                r_ecef[i, j], teme_to_ecef_position(r[i, j], jd_t[j], fr_t[j])
            )
    np.testing.assert_allclose(np.linalg.norm(r_ecef, axis=-1), np.linalg.norm(r, axis=-1))


def test_ecef_to_geodetic_vallado_example_3_3() -> None:
    """r = (6524.834, 6862.875, 6448.296) km -> φgd 34.352496°, λ 46.4464°, h 5085.22 km."""
    lat_deg, lon_deg, alt_km = ecef_to_geodetic([6524.834, 6862.875, 6448.296])
    assert lat_deg == pytest.approx(34.352496, abs=1e-6)  # printed to 1e-6° (≈ 0.1 m)
    assert lon_deg == pytest.approx(46.4464, abs=1e-4)  # printed to 1e-4°
    assert alt_km == pytest.approx(5085.22, abs=0.005)  # printed to 10 m


def test_wgs84_defining_points() -> None:
    np.testing.assert_allclose(geodetic_to_ecef(0.0, 0.0, 0.0), [WGS84_A_KM, 0.0, 0.0], atol=1e-12)
    b_km = WGS84_A_KM * (1.0 - WGS84_F)  # 6356.752314245 km, WGS84 polar semi-axis
    np.testing.assert_allclose(geodetic_to_ecef(90.0, 0.0, 0.0), [0.0, 0.0, b_km], atol=1e-9)
    assert b_km == pytest.approx(6356.752314245, abs=1e-9)
    lat, _, alt = ecef_to_geodetic([0.0, 0.0, -b_km - 1.0])
    assert float(lat) == -90.0
    assert float(alt) == pytest.approx(1.0, abs=1e-9)
    assert float(ecef_to_geodetic([-7000.0, 0.0, 0.0]).lon_deg) == -180.0  # lon in [-180, 180)


def test_geodetic_ecef_round_trip_below_a_millimetre() -> None:
    rng = np.random.default_rng(20240501)
    n = 20000
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lat[:4] = [90.0, -90.0, 89.9999999, 0.0]
    lon = rng.uniform(-180.0, 180.0, n)
    alt = np.concatenate(
        [rng.uniform(-10.0, 100.0, n // 2), rng.uniform(100.0, 400000.0, n - n // 2)]
    )
    r = geodetic_to_ecef(lat, lon, alt)
    back = ecef_to_geodetic(r)
    assert np.max(np.abs(back.alt_km - alt)) < 1e-6  # 1 mm
    assert np.max(np.linalg.norm(geodetic_to_ecef(*back) - r, axis=-1)) < 1e-6
    assert np.max(np.abs(back.lat_deg - lat)) < 1e-9
    away_from_poles = np.abs(lat) < 89.0
    assert np.max(np.abs(back.lon_deg - lon)[away_from_poles]) < 1e-9


def test_subsatellite_point_and_ground_track() -> None:
    epoch = datetime(2024, 3, 1, tzinfo=UTC)
    sats = walker_delta(2, 1, 0, 550.0, 53.0, epoch)
    times = [epoch + timedelta(minutes=m) for m in range(0, 1440, 1)]
    track = ground_track(sats, times)
    assert track.lat_deg.shape == track.lon_deg.shape == (2, 1440)
    assert np.all((track.lon_deg >= -180.0) & (track.lon_deg < 180.0))
    # Geodetic latitude peaks slightly above the inclination (the normal tilts poleward).
    assert 53.0 < np.max(track.lat_deg) < 53.5 and -53.5 < np.min(track.lat_deg) < -53.0
    assert np.min(track.alt_km) > 525.0 and np.max(track.alt_km) < 580.0
    # A TEME point on the x axis (the mean equinox) lies GMST west of Greenwich.
    jd, fr = jd_fr_from_utc(epoch)
    point = subsatellite_point(np.array([7000.0, 0.0, 0.0]), jd[0], fr[0])
    assert float(point.lat_deg) == 0.0
    expected_lon = (180.0 - math.degrees(gmst_rad(jd, fr)[0])) % 360.0 - 180.0
    assert float(point.lon_deg) == pytest.approx(expected_lon, abs=1e-9)
    assert abs(track.lat_deg[0, 0]) < 0.2


def test_footprint_matches_spherical_geometry() -> None:
    """At the footprint edge a spherical-Earth observer sees the satellite at exactly ε:
    tan ε = (cos λ - Re/(Re+h)) / sin λ."""
    for alt_km in (400.0, 550.0, 1200.0, 35786.0):
        for el_deg in (0.0, 5.0, 10.0, 25.0, 60.0):
            lam = math.radians(footprint_half_angle_deg(alt_km, el_deg))
            ratio = WGS84_A_KM / (WGS84_A_KM + alt_km)
            seen_deg = math.degrees(math.atan2(math.cos(lam) - ratio, math.sin(lam)))
            assert seen_deg == pytest.approx(el_deg, abs=1e-9)
    assert footprint_half_angle_deg(550.0, 90.0) == pytest.approx(0.0, abs=1e-12)
    # Horizon (ε = 0) from GEO: arccos(Re / (Re + h)) = 81.3°.
    assert footprint_half_angle_deg(35786.0, 0.0) == pytest.approx(81.30, abs=0.01)
    # 550 km, 25° mask: the ~940 km coverage radius often quoted for Starlink shells.
    assert footprint_radius_km(550.0, 25.0) == pytest.approx(940.0, abs=2.0)
    with pytest.raises(ValueError, match="alt_km"):
        footprint_radius_km(0.0, 10.0)
