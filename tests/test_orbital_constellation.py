"""Walker-delta generator (orbital.constellation): valid TLEs with the requested geometry."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sgp4.earth_gravity import wgs72  # type: ignore[import-untyped]

from orbital import ground_track, parse_tle, propagate, tle_checksum, walker_delta

EPOCH = datetime(2024, 7, 1, 12, tzinfo=UTC)


def test_walker_24_3_1_layout_and_valid_tles() -> None:
    sats = walker_delta(24, 3, 1, 700.0, 55.0, EPOCH, name_prefix="GNSS", first_norad_id=80000)
    assert len(sats) == 24
    assert [s.norad_id for s in sats] == list(range(80000, 80024))
    assert sats[0].name == "GNSS-1-1" and sats[-1].name == "GNSS-3-8"
    text = "".join(s.to_tle() for s in sats)
    assert parse_tle(text) == sats  # every line passes the strict parser
    for s in sats:
        assert s.line1[68] == str(tle_checksum(s.line1)) and s.line2[68] == str(
            tle_checksum(s.line2)
        )
        assert s.epoch_utc == EPOCH and s.eccentricity == 0.0 and s.inclination_deg == 55.0
    # RAAN 360/P apart; 360/(T/P) apart in a plane; F·360/T shift between adjacent planes.
    assert [s.raan_deg for s in sats[::8]] == [0.0, 120.0, 240.0]
    assert [s.mean_anomaly_deg for s in sats[:8]] == [i * 45.0 for i in range(8)]
    assert [s.mean_anomaly_deg for s in sats[8:10]] == [15.0, 60.0]
    assert sats[16].mean_anomaly_deg == 30.0


def test_propagated_altitude_and_inclination_match_the_request() -> None:
    for alt_km, inc_deg in ((550.0, 53.0), (1200.0, 87.9), (800.0, 97.6)):
        sats = walker_delta(4, 2, 1, alt_km, inc_deg, EPOCH)
        # SGP4's own mean semi-major axis is exactly Re + alt (to the TLE's 1e-8 rev/day).
        satrec = sats[0].satrec()
        assert satrec.a * wgs72.radiusearthkm - wgs72.radiusearthkm == pytest.approx(
            alt_km, abs=0.01
        )
        assert math.degrees(satrec.inclo) == pytest.approx(inc_deg, abs=1e-9)
        times = [EPOCH + timedelta(seconds=s) for s in range(0, 86400, 60)]
        states = propagate(sats, times)
        radius = np.linalg.norm(states.r_teme_km, axis=-1)
        assert np.mean(radius) - wgs72.radiusearthkm == pytest.approx(alt_km, abs=5.0)
        assert np.all(np.abs(radius - wgs72.radiusearthkm - alt_km) < 30.0)
        track = ground_track(sats, times)
        # Geodetic height adds the Earth's flattening, ~21.4 km·sin²(lat) (the ellipsoid is lower
        # toward the poles); without it, the height matches the request like the radius does.
        flattening_km = 21.4 * np.sin(np.radians(track.lat_deg)) ** 2
        assert np.mean(track.alt_km - flattening_km) == pytest.approx(alt_km, abs=5.0)
        assert np.all(np.abs(track.alt_km - flattening_km - alt_km) < 30.0)
        h = np.cross(states.r_teme_km, states.v_teme_km_s)
        osculating_inc = np.degrees(np.arccos(h[..., 2] / np.linalg.norm(h, axis=-1)))
        assert np.all(np.abs(osculating_inc - inc_deg) < 0.1)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="not a multiple of planes"):
        walker_delta(10, 3, 1, 550.0, 53.0, EPOCH)
    with pytest.raises(ValueError, match="phasing 3"):
        walker_delta(12, 3, 3, 550.0, 53.0, EPOCH)
    with pytest.raises(ValueError, match="phasing -1"):
        walker_delta(12, 3, -1, 550.0, 53.0, EPOCH)
    with pytest.raises(ValueError, match="alt_km"):
        walker_delta(12, 3, 1, 0.0, 53.0, EPOCH)
    with pytest.raises(ValueError, match="naive"):
        walker_delta(12, 3, 1, 550.0, 53.0, datetime(2024, 7, 1))
    with pytest.raises(ValueError, match="norad_id"):
        walker_delta(12, 3, 1, 550.0, 53.0, EPOCH, first_norad_id=339990)
