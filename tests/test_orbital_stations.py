"""Ground stations and look angles (orbital.stations): geometry with known answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from orbital import (
    WGS84_A_KM,
    GroundStation,
    elevations_deg,
    geodetic_to_ecef,
    look_angles,
    propagate,
    teme_to_ecef,
    walker_delta,
)

SVALBARD = GroundStation("SVB", "Svalbard", 78.23, 15.39, 500.0, 5.0)
EQUATOR = GroundStation("EQ0", "Gulf of Guinea", 0.0, 0.0, 0.0, 0.0)


def test_overhead_is_elevation_90_at_the_height_difference() -> None:
    # A point up the station's ellipsoid normal: el 90°, range = height above the station.
    r_sat = geodetic_to_ecef(SVALBARD.lat_deg, SVALBARD.lon_deg, 500.0)
    angles = look_angles(SVALBARD, r_sat, np.zeros(3))
    assert float(angles.el_deg) == pytest.approx(90.0, abs=1e-9)
    assert float(angles.range_km) == pytest.approx(500.0 - 0.5, abs=1e-9)
    # Moving straight up at 7 km/s: range rate +7; moving horizontally: 0.
    up = SVALBARD.enu_basis()[2]
    assert float(look_angles(SVALBARD, r_sat, 7.0 * up).range_rate_km_s) == pytest.approx(7.0)
    east = SVALBARD.enu_basis()[0]
    assert float(look_angles(SVALBARD, r_sat, 7.5 * east).range_rate_km_s) == pytest.approx(
        0.0, abs=1e-12
    )


def test_equatorial_geometry_in_closed_form() -> None:
    """Station on the equator at 0°E, satellite 500 km up over 10°E: in the equatorial plane the
    ellipsoid is a circle of radius a, so el = atan2((a+h)cos λ - a, (a+h) sin λ), az = 90°."""
    h, lam = 500.0, math.radians(10.0)
    r_sat = geodetic_to_ecef(0.0, 10.0, h)
    angles = look_angles(EQUATOR, r_sat, np.zeros(3))
    up = (WGS84_A_KM + h) * math.cos(lam) - WGS84_A_KM
    east = (WGS84_A_KM + h) * math.sin(lam)
    assert float(angles.az_deg) == pytest.approx(90.0, abs=1e-9)
    assert float(angles.el_deg) == pytest.approx(math.degrees(math.atan2(up, east)), abs=1e-9)
    assert float(angles.range_km) == pytest.approx(math.hypot(up, east), abs=1e-9)
    # Due north and due west and due south of the station.
    assert float(
        look_angles(EQUATOR, geodetic_to_ecef(10.0, 0.0, h), np.zeros(3)).az_deg
    ) == pytest.approx(0.0, abs=1e-9)
    assert float(
        look_angles(EQUATOR, geodetic_to_ecef(0.0, -10.0, h), np.zeros(3)).az_deg
    ) == pytest.approx(270.0)
    assert float(
        look_angles(EQUATOR, geodetic_to_ecef(-10.0, 0.0, h), np.zeros(3)).az_deg
    ) == pytest.approx(180.0)
    # The antipode is straight down.
    assert float(
        look_angles(EQUATOR, [-WGS84_A_KM, 0.0, 0.0], np.zeros(3)).el_deg
    ) == pytest.approx(-90.0)


def test_range_rate_is_the_derivative_of_range() -> None:
    epoch = datetime(2024, 6, 1, tzinfo=UTC)
    (sat,) = walker_delta(1, 1, 0, 550.0, 97.6, epoch)
    times = [epoch + timedelta(seconds=s) for s in np.arange(0.0, 6000.0, 0.5)]
    states = propagate(sat, times)
    r_ecef, v_ecef = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, states.jd, states.fr)
    angles = look_angles(SVALBARD, r_ecef[0], v_ecef[0])
    numeric = np.gradient(angles.range_km, 0.5)
    assert np.max(np.abs(numeric[1:-1] - angles.range_rate_km_s[1:-1])) < 1e-4
    # Vectorised elevations over stations agree with the per-station path.
    el = elevations_deg([SVALBARD, EQUATOR], r_ecef)
    assert el.shape == (1, 2, len(times))
    np.testing.assert_allclose(el[0, 0], angles.el_deg, atol=1e-9)
    assert np.all((angles.az_deg >= 0.0) & (angles.az_deg < 360.0))


def test_station_validation() -> None:
    with pytest.raises(ValueError, match="lat_deg 91"):
        GroundStation("X", "x", 91.0, 0.0)
    with pytest.raises(ValueError, match="min_el_deg"):
        GroundStation("X", "x", 0.0, 0.0, 0.0, 90.0)
