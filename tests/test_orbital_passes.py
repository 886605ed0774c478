"""Pass prediction (orbital.passes) against a brute-force scan of elevation at every second.

24 h × 20 satellites (three Walker shells at different heights and inclinations) × 5 stations
including polar Svalbard and equatorial Kourou and Singapore. The brute force computes look
angles with ``look_angles`` (a different code path from the search) at each whole second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from orbital import (
    GroundStation,
    Pass,
    find_passes,
    jd_fr_offsets,
    look_angles,
    propagate_jd,
    teme_to_ecef,
    walker_delta,
)

START = datetime(2024, 9, 1, tzinfo=UTC)
DAY_S = 86400
EPOCH = START - timedelta(hours=6)
SATS = (
    walker_delta(8, 2, 1, 550.0, 53.0, EPOCH, name_prefix="MID", first_norad_id=91000)
    + walker_delta(8, 4, 1, 800.0, 97.6, EPOCH, name_prefix="SSO", first_norad_id=92000)
    + walker_delta(4, 2, 1, 1100.0, 30.0, EPOCH, name_prefix="LOW", first_norad_id=93000)
)
STATIONS = [
    GroundStation("SVB", "Svalbard", 78.23, 15.39, 500.0, 5.0),
    GroundStation("KOU", "Kourou", 5.25, -52.80, 10.0, 10.0),
    GroundStation("SIN", "Singapore", 1.35, 103.82, 15.0, 0.0),
    GroundStation("CAN", "Canberra", -35.40, 148.98, 690.0, 10.0),
    GroundStation("FAI", "Fairbanks", 64.86, -147.85, 200.0, 5.0),
]


@dataclass
class BrutePass:
    sat: int
    station: str
    aos_s: int  # first whole second above the mask
    los_s: int  # last whole second above the mask
    max_el_deg: float
    tca_s: int


@pytest.fixture(scope="module")
def brute_force() -> list[BrutePass]:
    offsets = np.arange(DAY_S + 1, dtype=float)
    jd, fr = jd_fr_offsets(START, offsets)
    el = np.empty((len(STATIONS), len(SATS), len(offsets)))
    for lo in range(0, len(offsets), 7200):
        sl = slice(lo, lo + 7200)
        states = propagate_jd(SATS, jd[sl], fr[sl])
        r, v = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd[sl], fr[sl])
        for k, station in enumerate(STATIONS):
            el[k, :, sl] = look_angles(station, r, v).el_deg
    found = []
    for k, station in enumerate(STATIONS):
        up = el[k] >= station.min_el_deg
        for sat in range(len(SATS)):
            edges = np.flatnonzero(np.diff(up[sat].astype(np.int8))).tolist()
            starts = [0] if up[sat, 0] else []
            starts += [e + 1 for e in edges if up[sat, e + 1]]
            ends = [e for e in edges if up[sat, e]] + ([DAY_S] if up[sat, -1] else [])
            for a, b in zip(starts, ends, strict=True):
                peak = a + int(np.argmax(el[k, sat, a : b + 1]))
                found.append(
                    BrutePass(sat, station.station_id, a, b, float(el[k, sat, peak]), peak)
                )
    return found


def offset_s(t: datetime) -> float:
    return (t - START).total_seconds()


def match(passes: list[Pass], brute: list[BrutePass]) -> dict[int, Pass]:
    """Brute-force pass index -> our pass (same satellite and station, overlapping in time)."""
    matched: dict[int, Pass] = {}
    for p in passes:
        hits = [
            i
            for i, b in enumerate(brute)
            if b.sat == p.sat_index
            and b.station == p.station_id
            and offset_s(p.aos_utc) <= b.los_s + 1
            and b.aos_s - 1 <= offset_s(p.los_utc)
        ]
        assert len(hits) == 1, f"{p} matches {len(hits)} brute-force passes"
        assert hits[0] not in matched
        matched[hits[0]] = p
    return matched


@pytest.mark.slow
def test_passes_match_a_one_second_brute_force_scan(brute_force: list[BrutePass]) -> None:
    passes = find_passes(SATS, STATIONS, START, START + timedelta(seconds=DAY_S))
    assert len(brute_force) > 300 and {b.station for b in brute_force} == {
        s.station_id for s in STATIONS
    }
    matched = match(passes, brute_force)
    long_enough = {i for i, b in enumerate(brute_force) if b.los_s - b.aos_s >= 30}
    assert long_enough <= set(matched), "a pass of at least 30 s was missed"
    assert len(passes) == len(matched)  # nothing extra
    for i, p in matched.items():
        b = brute_force[i]
        assert p.norad_id == SATS[b.sat].norad_id and p.sat_name == SATS[b.sat].name
        # The true crossing lies between the last second below and the first second above;
        # ours is refined to 0.01 s.
        assert b.aos_s - 1.01 <= offset_s(p.aos_utc) <= b.aos_s + 0.01
        assert b.los_s - 0.01 <= offset_s(p.los_utc) <= b.los_s + 1.01
        assert abs(offset_s(p.tca_utc) - b.tca_s) <= 1.0
        assert b.max_el_deg - 1e-9 <= p.max_el_deg <= b.max_el_deg + 0.5
        assert p.aos_cut == (b.aos_s == 0) and p.los_cut == (b.los_s == DAY_S)
    assert [p.aos_utc for p in passes] == sorted(p.aos_utc for p in passes)


@pytest.mark.slow
def test_coarse_step_guarantee_holds_for_longer_steps_and_small_chunks(
    brute_force: list[BrutePass],
) -> None:
    """With min_pass_s = 300 every pass of at least 300 s is still found, and splitting the scan
    into tiny time chunks changes nothing."""
    end = START + timedelta(seconds=DAY_S)
    passes = find_passes(SATS, STATIONS, START, end, min_pass_s=300.0, max_chunk_bytes=200_000)
    matched = match(passes, brute_force)
    long_enough = {i for i, b in enumerate(brute_force) if b.los_s - b.aos_s >= 300}
    assert long_enough <= set(matched)
    assert len(long_enough) < len(brute_force)  # the test really has shorter passes to lose
    reference = find_passes(SATS, STATIONS, START, end)
    for p in passes:  # the same refined times (to 0.01 s) whatever the coarse grid
        (q,) = [
            q
            for q in reference
            if (q.sat_index, q.station_id) == (p.sat_index, p.station_id)
            and abs(offset_s(q.aos_utc) - offset_s(p.aos_utc)) < 0.02
        ]
        assert abs(offset_s(p.los_utc) - offset_s(q.los_utc)) < 0.02
        assert abs(offset_s(p.tca_utc) - offset_s(q.tca_utc)) < 0.05
        assert abs(p.max_el_deg - q.max_el_deg) < 1e-4  # sharp peaks near the zenith


def test_passes_cut_by_the_window_edges() -> None:
    end = START + timedelta(hours=6)
    whole = find_passes(SATS, STATIONS, START, end)
    p = max((p for p in whole if not p.aos_cut and not p.los_cut), key=lambda p: p.duration_s)
    window_start = p.tca_utc
    window_end = p.tca_utc + timedelta(seconds=60)
    (cut,) = [
        q
        for q in find_passes([SATS[p.sat_index]], STATIONS, window_start, window_end)
        if q.station_id == p.station_id
    ]
    assert cut.aos_cut and cut.los_cut
    assert (cut.aos_utc, cut.los_utc) == (window_start, window_end)
    assert cut.tca_utc - window_start < timedelta(seconds=0.1)  # elevation falls after TCA
    assert cut.max_el_deg == pytest.approx(p.max_el_deg, abs=1e-6)
    assert cut.sat_index == 0  # index into the list passed in


def test_mask_override_and_argument_checks() -> None:
    end = START + timedelta(hours=3)
    sso = SATS[8:16]  # over Svalbard every orbit
    low = find_passes(sso, STATIONS[:1], START, end, min_el_deg=0.0)
    high = find_passes(sso, STATIONS[:1], START, end, min_el_deg=30.0)
    assert 0 < len(high) < len(low) and all(p.max_el_deg >= 30.0 for p in high)
    for p in high:  # a 30° pass sits inside a 0° pass of the same satellite
        assert any(
            q.sat_index == p.sat_index and q.aos_utc < p.aos_utc and p.los_utc < q.los_utc
            for q in low
        )
    assert find_passes([], STATIONS, START, end) == []
    with pytest.raises(ValueError, match="after from_utc"):
        find_passes(SATS, STATIONS, end, START)
    with pytest.raises(ValueError, match="naive"):
        find_passes(SATS, STATIONS, datetime(2024, 9, 1), end)
    with pytest.raises(ValueError, match="min_pass_s"):
        find_passes(SATS, STATIONS, START, end, min_pass_s=0.0)
