"""Pass prediction (orbital.passes) against a brute-force scan of elevation at every second.

24 h × 20 satellites (three Walker shells at different heights and inclinations) × 5 stations
including polar Svalbard and equatorial Kourou and Singapore. The brute force computes look
angles with ``look_angles`` (a different code path from the search) at each whole second.
Passes that fit between two coarse-grid samples (the search's step-2 margin logic) are checked
separately: grazing passes placed inside one cell, and a short ``min_pass_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import orbital.passes
from orbital import (
    Elements,
    GroundStation,
    Pass,
    find_passes,
    jd_fr_offsets,
    look_angles,
    make_elements,
    propagate_jd,
    teme_to_ecef,
    walker_delta,
)
from orbital.passes import (
    _ACCEL_MARGIN,
    _COARSE_STEP_S,
    _SPEED_MARGIN,
    _accel_bounds,
    _speed_bounds,
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
    into tiny blocks (one satellite, ~40 time samples) changes nothing."""
    end = START + timedelta(seconds=DAY_S)
    passes = find_passes(SATS, STATIONS, START, end, min_pass_s=300.0, max_chunk_bytes=20_000)
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
    assert find_passes(sso, STATIONS, START, end, min_el_deg=89.99) == []  # nothing that high
    with pytest.raises(ValueError, match="after from_utc"):
        find_passes(SATS, STATIONS, end, START)
    with pytest.raises(ValueError, match="naive"):
        find_passes(SATS, STATIONS, datetime(2024, 9, 1), end)
    with pytest.raises(ValueError, match="min_pass_s"):
        find_passes(SATS, STATIONS, START, end, min_pass_s=0.0)


@pytest.mark.slow
def test_short_min_pass_s_finds_every_pass_that_long(brute_force: list[BrutePass]) -> None:
    """min_pass_s = 5 s, far below the coarse step: passes that fit between two grid samples are
    left to the cell test and its halvings (five rounds here); each of at least 5 s is found."""
    end = START + timedelta(seconds=DAY_S)
    # A pass of >= 1 s contains a whole second, so the brute force has it too.
    passes = [
        p for p in find_passes(SATS, STATIONS, START, end, min_pass_s=5.0) if p.duration_s >= 1
    ]
    matched = match(passes, brute_force)
    long_enough = {i for i, b in enumerate(brute_force) if b.los_s - b.aos_s >= 5}
    assert long_enough <= set(matched), "a pass of at least 5 s was missed"
    assert sum(5 <= b.los_s - b.aos_s < _COARSE_STEP_S for b in brute_force) >= 5
    for i, p in matched.items():
        b = brute_force[i]
        assert b.aos_s - 1.01 <= offset_s(p.aos_utc) <= b.aos_s + 0.01
        assert b.los_s - 0.01 <= offset_s(p.los_utc) <= b.los_s + 1.01
        assert b.max_el_deg - 1e-9 <= p.max_el_deg <= b.max_el_deg + 0.5


def _elevations(
    sat: Elements, station: GroundStation, t0: datetime, offsets: np.ndarray
) -> np.ndarray:
    jd, fr = jd_fr_offsets(t0, offsets)
    states = propagate_jd([sat], jd, fr)
    r, v = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd, fr)
    el: np.ndarray = look_angles(station, r, v).el_deg[0]
    return el


@pytest.mark.parametrize("above_s", [30.5, 45.0])
@pytest.mark.parametrize("where_in_cell", [0.2, 0.5, 0.8])
def test_a_grazing_pass_inside_one_coarse_cell_is_found(
    above_s: float, where_in_cell: float
) -> None:
    """The top of a real pass, with the mask raised until it is above the mask for only
    ``above_s`` >= min_pass_s, placed strictly inside one coarse cell (both grid samples around
    it below the mask): only the cell test can find it, and it must."""
    sat, station = SATS[0], STATIONS[2]  # a 62° pass over Singapore in the first 12 h
    top = max(
        find_passes([sat], [station], START, START + timedelta(hours=12)),
        key=lambda p: p.max_el_deg,
    )
    fine = np.arange(-40.0, 40.0, 0.01)  # around its TCA
    el = _elevations(sat, station, top.tca_utc, fine)
    mask = float(min(np.interp(-above_s / 2, fine, el), np.interp(above_s / 2, fine, el)))
    up = np.flatnonzero(el >= mask)  # the crossings lie within 0.01 s outside these samples
    assert len(up) == up[-1] - up[0] + 1  # one interval
    assert above_s - 0.02 <= fine[up[-1]] - fine[up[0]] <= above_s + 0.5

    start = top.tca_utc - timedelta(seconds=(5 + where_in_cell) * _COARSE_STEP_S)
    end = start + timedelta(seconds=11 * _COARSE_STEP_S)  # a grid of 11 cells of _COARSE_STEP_S
    grid_el = _elevations(sat, station, start, np.arange(12) * _COARSE_STEP_S)
    assert (grid_el < mask).all()  # the coarse scan alone sees nothing

    (found,) = find_passes([sat], [station], start, end, mask, min_pass_s=30.0)
    since_tca = (found.aos_utc - top.tca_utc).total_seconds()
    assert fine[up[0]] - 0.011 <= since_tca <= fine[up[0]]
    since_tca = (found.los_utc - top.tca_utc).total_seconds()
    assert fine[up[-1]] <= since_tca <= fine[up[-1]] + 0.011
    assert abs((found.tca_utc - top.tca_utc).total_seconds()) < 0.01
    assert found.max_el_deg == pytest.approx(top.max_el_deg, abs=1e-6)
    assert not found.aos_cut and not found.los_cut


def test_scan_blocks_change_nothing() -> None:
    """The coarse scan's blocks (satellites × times, sized by max_chunk_bytes) down to one
    satellite and two time samples give the same passes."""
    end = START + timedelta(hours=6)
    reference = find_passes(SATS, STATIONS, START, end)
    for budget in (1, 5_000):
        got = find_passes(SATS, STATIONS, START, end, max_chunk_bytes=budget)
        assert [(p.sat_index, p.station_id, p.aos_cut, p.los_cut) for p in got] == [
            (p.sat_index, p.station_id, p.aos_cut, p.los_cut) for p in reference
        ]
        for p, q in zip(got, reference, strict=True):
            for a, b in ((p.aos_utc, q.aos_utc), (p.tca_utc, q.tca_utc), (p.los_utc, q.los_utc)):
                assert abs((a - b).total_seconds()) <= 1e-6


def test_speed_bound_holds_for_leo_heo_and_geo() -> None:
    """The cell test rests on V bounding the Earth-fixed speed. Sampled every 10 s for two days,
    the speed stays below the bound without its margin plus 1% (J2 and drag make the osculating
    orbit faster than the mean one by ~0.1%), for circular LEO, Molniya, GTO and GEO orbits."""
    sats = [*SATS, *_odd_orbits()]
    bound = _speed_bounds([e.satrec() for e in sats])
    offsets = np.arange(0.0, 2 * DAY_S, 10.0)
    jd, fr = jd_fr_offsets(START, offsets)
    states = propagate_jd(sats, jd, fr)
    _, v = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd, fr)
    fastest = np.linalg.norm(v, axis=-1).max(axis=1)
    assert (fastest < bound / _SPEED_MARGIN * 1.01).all()
    # Not loose either: within 15% for LEO (|v| + ω|r| counts Earth rotation in full, where a
    # prograde orbit's Earth-fixed speed is lower by up to ω|r| cos(inclination)).
    assert (fastest[: len(SATS)] > bound[: len(SATS)] / _SPEED_MARGIN / 1.15).all()


def test_acceleration_bound_holds_for_leo_heo_and_geo() -> None:
    """The cell test's quadratic bound rests on A bounding the Earth-fixed acceleration of the
    SGP4 trajectory. From centred differences of the ECEF velocity every 2 s over two days
    (error ~1e-7 of the value), the acceleration stays below the bound without its margin plus
    2% (J2, the osculating perigee below the mean one), for LEO with drag, Molniya, GTO, GEO."""
    sats = [*SATS, *_odd_orbits()]
    bound = _accel_bounds([e.satrec() for e in sats])
    step = 2.0
    offsets = np.arange(0.0, 2 * DAY_S, step)
    jd, fr = jd_fr_offsets(START, offsets)
    states = propagate_jd(sats, jd, fr)
    _, v = teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd, fr)
    accel = np.linalg.norm(v[:, 2:] - v[:, :-2], axis=-1) / (2 * step)
    largest = accel.max(axis=1)
    assert (largest < bound / _ACCEL_MARGIN * 1.02).all()
    # Not loose either: within 40% for the near-circular LEO orbits (the bound counts Coriolis
    # in full, which a prograde orbit's gravity partly cancels).
    assert (largest[: len(SATS)] > bound[: len(SATS)] / _ACCEL_MARGIN / 1.4).all()


def _odd_orbits() -> list[Elements]:
    """Molniya, GTO (with drag) and GEO element sets."""
    return [
        make_elements(
            norad_id=94000 + i,
            epoch_utc=EPOCH,
            inclination_deg=inc,
            raan_deg=40.0 * i,
            eccentricity=ecc,
            arg_perigee_deg=270.0,
            mean_anomaly_deg=10.0,
            mean_motion_rev_day=n,
            bstar_per_earth_radius=bstar,
        )
        for i, (inc, ecc, n, bstar) in enumerate(
            [(63.4, 0.74, 2.006, 0.0), (27.0, 0.73, 2.26, 1e-4), (0.05, 0.0002, 1.0027, 0.0)]
        )
    ]


def test_workers_argument_and_small_searches_stay_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small search (here LEO and GEO: two grid groups) with workers > 1 starts no process;
    a bad worker count is refused."""
    geo = make_elements(
        norad_id=95000, epoch_utc=EPOCH, inclination_deg=0.05, raan_deg=0.0, eccentricity=0.0002,
        arg_perigee_deg=0.0, mean_anomaly_deg=300.0, mean_motion_rev_day=1.0027,
    )  # fmt: skip
    end = START + timedelta(hours=6)
    reference = find_passes([*SATS, geo], STATIONS, START, end)
    assert any(p.sat_index == len(SATS) for p in reference)  # the GEO is up somewhere

    def no_processes(*args: object, **kwargs: object) -> None:
        raise AssertionError("a small search started worker processes")

    monkeypatch.setattr(orbital.passes, "ProcessPoolExecutor", no_processes)
    assert find_passes([*SATS, geo], STATIONS, START, end, workers=2) == reference
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a positive integer"):
            find_passes(SATS, STATIONS, START, end, workers=bad)  # type: ignore[arg-type]
