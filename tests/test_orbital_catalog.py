"""The synthetic catalog, and the fast pass search on it against a brute-force scan.

A random sample of the 30,000-object synthetic catalog (two objects of every orbit class: LEO
shells and debris, MEO navigation, GEO, HEO) over eight stations (polar to equatorial, masks
from -1° to 10°) for 24 h: every pass of at least ``min_pass_s`` that a look-angle scan at every
whole second sees must be found, by the same path the benchmark times (pieces by grid step,
near/far scan, worker processes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import orbital.passes
from orbital import GroundStation, Pass, find_passes, jd_fr_offsets, look_angles, propagate_jd
from orbital.catalog import CATALOG_CLASSES, synthetic_catalog
from orbital.frames import teme_to_ecef

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
START = EPOCH + timedelta(hours=3)
DAY_S = 86400
MIN_PASS_S = 30.0
STATIONS = [
    GroundStation("SVB", "Svalbard", 78.23, 15.41, 500.0, 5.0),
    GroundStation("MCM", "McMurdo", -77.84, 166.67, 100.0, 10.0),
    GroundStation("KIR", "Kiruna", 67.86, 20.96, 400.0, 0.0),
    GroundStation("WAL", "Wallops", 37.94, -75.47, 10.0, 10.0),
    GroundStation("MAS", "Maspalomas", 27.76, -15.63, 200.0, -1.0),
    GroundStation("KRU", "Kourou", 5.25, -52.81, 10.0, 5.0),
    GroundStation("SGP", "Singapore", 1.40, 103.84, 20.0, 10.0),
    GroundStation("HBK", "Hartebeesthoek", -25.89, 27.71, 1550.0, 10.0),
]


def test_catalog_is_deterministic_and_shaped_like_the_public_one() -> None:
    a = synthetic_catalog(3000, EPOCH)
    assert [e.to_tle() for e in a] == [e.to_tle() for e in synthetic_catalog(3000, EPOCH)]
    assert [e.to_tle() for e in a] != [e.to_tle() for e in synthetic_catalog(3000, EPOCH, 7)]
    assert len({e.norad_id for e in a}) == 3000 and len(synthetic_catalog(3, EPOCH)) == 3
    period_min = np.array([1440.0 / e.mean_motion_rev_day for e in a])
    ecc = np.array([e.eccentricity for e in a])
    leo, geo = period_min < 128.0, (period_min > 1400.0) & (period_min < 1500.0)
    heo = ecc > 0.25
    assert 0.7 < leo.mean() < 0.85 and 0.07 < geo.mean() < 0.12 and 0.06 < heo.mean() < 0.12
    meo = ~leo & ~geo & ~heo
    assert 0.03 < meo.mean() < 0.07  # navigation constellations, Tundra
    assert pytest.approx(1.0) == sum(c.share for c in CATALOG_CLASSES)
    with pytest.raises(ValueError, match="n must be"):
        synthetic_catalog(-1, EPOCH)


def _brute_force(sats: list[orbital.Elements]) -> list[tuple[int, str, int, int]]:
    """(satellite, station, first second above the mask, last one) at every whole second."""
    offsets = np.arange(DAY_S + 1, dtype=float)
    jd, fr = jd_fr_offsets(START, offsets)
    up = np.empty((len(STATIONS), len(sats), len(offsets)), dtype=np.bool_)
    for lo in range(0, len(offsets), 3600):
        sl = slice(lo, lo + 3600)
        states = propagate_jd(sats, jd[sl], fr[sl])
        r, v = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd[sl], fr[sl])
        for k, station in enumerate(STATIONS):
            up[k, :, sl] = look_angles(station, r, v).el_deg >= station.min_el_deg
    found = []
    for k, station in enumerate(STATIONS):
        for i in range(len(sats)):
            row = np.concatenate([[False], up[k, i], [False]]).astype(np.int8)
            change = np.flatnonzero(np.diff(row))
            for a, b in zip(change[0::2], change[1::2] - 1, strict=True):
                found.append((i, station.station_id, int(a), int(b)))
    return found


def _offset_s(t: datetime) -> float:
    return (t - START).total_seconds()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fast_search_misses_no_pass_on_a_random_catalog_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = synthetic_catalog(30_000, EPOCH)
    rng = np.random.default_rng(20261203)
    by_class: dict[str, list[int]] = {}
    for i, e in enumerate(catalog):
        by_class.setdefault(e.name.rsplit("-", 1)[0], []).append(i)
    picks = sorted(int(j) for ids in by_class.values() for j in rng.choice(ids, 2, replace=False))
    sats = [catalog[i] for i in picks]
    assert len(sats) == 2 * len(CATALOG_CLASSES)
    end = START + timedelta(seconds=DAY_S)

    brute = _brute_force(sats)
    assert sum(b[2] == 0 and b[3] == DAY_S for b in brute) >= 4  # GEO: up all day
    # 30 s (the default), and 10 s, which leaves more passes to the cell test (L - T larger)
    for min_pass_s in (MIN_PASS_S, 10.0):
        passes = find_passes(sats, STATIONS, START, end, min_pass_s=min_pass_s)
        _check_against_brute_force(passes, brute, min_pass_s)
    # The worker path: force pieces and processes even for this small search; same result.
    monkeypatch.setattr(orbital.passes, "_PARALLEL_MIN_SAMPLES", 0)
    assert find_passes(sats, STATIONS, START, end, min_pass_s=10.0, workers=2) == passes


def _check_against_brute_force(
    passes: list[Pass], brute: list[tuple[int, str, int, int]], min_pass_s: float
) -> None:
    long_enough = [b for b in brute if b[3] - b[2] >= min_pass_s]
    # The sample has passes that fit between two grid samples (only the cell test finds them)
    assert sum(b[3] - b[2] < 120 for b in long_enough) >= 10

    def ours_for(b: tuple[int, str, int, int]) -> list[Pass]:
        i, station, a, z = b
        return [
            p
            for p in passes
            if p.sat_index == i
            and p.station_id == station
            and _offset_s(p.aos_utc) <= z + 1
            and a - 1 <= _offset_s(p.los_utc)
        ]

    missed = [b for b in long_enough if len(ours_for(b)) != 1]
    assert not missed, f"{len(missed)} passes of >= {min_pass_s} s missed (or split): {missed[:5]}"
    for b in long_enough:
        (p,) = ours_for(b)
        assert p.aos_cut == (b[2] == 0) and p.los_cut == (b[3] == DAY_S)
        if not p.aos_cut:
            assert b[2] - 1.01 <= _offset_s(p.aos_utc) <= b[2] + 0.01
        if not p.los_cut:
            assert b[3] - 0.01 <= _offset_s(p.los_utc) <= b[3] + 1.01
    # Nothing extra: each of ours is a brute-force pass (or one too short to hold a whole second)
    matched = {id(p) for b in brute for p in ours_for(b)}
    assert all(id(p) in matched or p.duration_s < 1.0 for p in passes)
