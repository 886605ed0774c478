"""Orbital benchmark: `orbital` propagation and pass search against references measured in the same run.

    .venv/bin/python bench/orbital_bench.py [--satellites 30000] [--pass-satellites 30000]
        [--catalog synthetic|walker] [--workers 1,2] [--stations 20] [--hours 24] [--min-el 10]
        [--repeats 7] [--pass-repeats 1] [--sample-sats 20] [--sample-stations 2] [--brute-sats 40]
        [--strict]

No network and no data files (epoch 2025-01-01T00:00Z). Propagation uses Walker-delta shells made
by `orbital.walker_delta`; passes use `--catalog`: `synthetic` (default), a 30,000-object catalog
shaped like the public one by `orbital.catalog.synthetic_catalog` (LEO shells and debris clouds,
MEO navigation, GEO, HEO; fixed seed), or `walker` (the LEO shells). The 20 ground stations
(polar to equatorial) are defined below. The machine may be shared: absolute times move with
the load (printed), the ratios against the references measured in the same run much less.

1. Propagation, N satellites at one time (epoch + 6 h). Prepared outside the timed region, for
   both sides alike: the satellites (the list of `sgp4.api.Satrec` objects parsed once from the
   TLE lines, then the array each side propagates with) and the split Julian date `(jd, fr)`.
   - reference: raw `SatrecArray.sgp4(jd, fr)` on a `SatrecArray` built once, outside timing
     (the issue's "raw SatrecArray.sgp4");
   - ours: `batch.propagate_jd(jd, fr)` + `orbital.subsatellite_point(...)` on an
     `orbital.SatBatch` built once from the same Satrecs, outside timing like the reference's
     array: the full path to latitude/longitude/altitude (NaN masking, GMST rotation, geodetic).
   Breakdown rows time the parts, the batch's construction, and for scale
   `orbital.propagate_jd(satrecs, ...)`, which builds its `SatrecArray` on every call.
   Target: our satellites/s >= 0.6x the raw rate. Median of --repeats runs, variants
   interleaved within each repetition so that drifting load hits both alike.
2. Passes: `orbital.find_passes` for M satellites x S stations over --hours (from the Elements,
   so our time includes building the Satrecs), once per worker count in --workers (default 1
   and every usable core): seconds, CPU seconds of this process and number of passes, median of
   --pass-repeats runs. Target: the largest worker count within 60 s for 30,000 x 20 x 24 h.
3. If `skyfield` is importable (the `bench` extra): `EarthSatellite(line1, line2, ts=ts)
   .find_events(topos, t0, t1, altitude_degrees=mask)` for a sample (--sample-sats spread over
   the shells x --sample-stations, one polar and one equatorial), timed with the EarthSatellite
   and topos construction inside (as ours includes Satrec construction), `load.timescale(
   builtin=True)` (no downloads). Ours runs on the same sample with the same mask; passes are
   compared (skyfield events 0 = rise, 1 = culminate, 2 = set; a pass already up at t0 starts
   with 1 or 2, one still up at t1 has no 2: these are our aos_cut / los_cut). Same passes =
   every pass pairs up and rise/set are within 1 s of our AOS/LOS; skyfield passes shorter than
   --min-pass-s, which find_passes does not promise to find, are reported separately. Speed-up =
   skyfield's time per (satellite x station x day) on the sample / ours per pair in the full
   run of step 2 with the most workers (the batched use find_passes is for); target >= 30x
   (the single-worker ratio is printed too). Without skyfield the
   comparison is skipped, and a skipped check is not a pass: the result says pass: false
   (`make bench` installs the `bench` extra, skyfield).

4. Brute force on a sample (--brute-sats satellites spread over the catalog x every station):
   elevation from `orbital.look_angles` at every whole second of the window; every run of seconds
   above the mask lasting >= --min-pass-s must overlap a pass of step 2's full run (missed = 0),
   and each AOS/LOS lie within its sampled 1 s bracket (the last second below, the first above).

Prints the environment, a table and PASS/FAIL per target of the issue; results also go to
bench/results/orbital_bench.json. Exit code 0 unless --strict and a check fails.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import numpy as np
from benchlib import save_results
from sgp4.api import SatrecArray  # type: ignore[import-untyped]

import orbital
from orbital.catalog import synthetic_catalog

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
PROPAGATE_AT = EPOCH + timedelta(hours=6)
TARGET_RATIO, TARGET_SPEEDUP, TARGET_EDGE_S = 0.6, 30.0, 1.0
TARGET_PASSES_S = 60.0  # 30,000 x 20 stations x 24 h

# (share of the satellites, altitude km, inclination deg): LEO shells, broadband-like to SSO.
SHELLS = (
    (0.40, 550.0, 53.0),
    (0.20, 570.0, 70.0),
    (0.20, 560.0, 97.6),
    (0.10, 1200.0, 87.9),
    (0.10, 340.0, 42.0),
)
MAX_PLANES = 40

# (id, name, lat deg, lon deg, alt m): real-ish ground station sites, polar to equatorial.
STATIONS = (
    ("SVB", "Svalbard", 78.230, 15.408, 500.0),
    ("TRL", "Troll, Antarctica", -72.012, 2.535, 1270.0),
    ("MCM", "McMurdo", -77.839, 166.667, 100.0),
    ("INU", "Inuvik", 68.318, -133.549, 100.0),
    ("FBK", "Fairbanks", 64.859, -147.850, 300.0),
    ("KIR", "Kiruna", 67.857, 20.964, 400.0),
    ("PAR", "Punta Arenas", -52.938, -70.857, 50.0),
    ("AWA", "Awarua", -46.529, 168.381, 10.0),
    ("WAL", "Wallops", 37.940, -75.466, 10.0),
    ("MAD", "Madrid", 40.429, -4.249, 800.0),
    ("MAS", "Maspalomas", 27.764, -15.634, 200.0),
    ("HAW", "South Point, Hawaii", 19.014, -155.663, 370.0),
    ("KRU", "Kourou", 5.252, -52.805, 10.0),
    ("SGP", "Singapore", 1.396, 103.835, 20.0),
    ("MAL", "Malindi", -2.996, 40.195, 10.0),
    ("ASC", "Ascension", -7.969, -14.394, 100.0),
    ("HBK", "Hartebeesthoek", -25.887, 27.707, 1550.0),
    ("DON", "Dongara", -29.046, 115.349, 30.0),
    ("SAN", "Santiago", -33.151, -70.668, 700.0),
    ("BLR", "Bangalore", 13.034, 77.512, 900.0),
)
SAMPLE_STATION_ORDER = ("SVB", "SGP", "MCM", "KRU", "KIR", "MAL")  # polar, equatorial, ...


# ---------------------------------------------------------------- inputs


def constellation(n: int) -> list[orbital.Elements]:
    """n satellites in the SHELLS (shares rounded; the last shell takes the remainder)."""
    counts = [round(share * n) for share, _alt, _inc in SHELLS[:-1]]
    counts.append(n - sum(counts))
    sats: list[orbital.Elements] = []
    for shell, (count, (_share, alt_km, inc_deg)) in enumerate(zip(counts, SHELLS, strict=True)):
        if count <= 0:
            continue
        planes = next(p for p in range(min(MAX_PLANES, count), 0, -1) if count % p == 0)
        sats += orbital.walker_delta(
            count,
            planes,
            1 % planes,
            alt_km,
            inc_deg,
            EPOCH,
            name_prefix=f"SHELL{shell + 1}",
            first_norad_id=10_000 + len(sats),
        )
    return sats


def stations(n: int, min_el_deg: float) -> list[orbital.GroundStation]:
    return [
        orbital.GroundStation(sid, name, lat, lon, alt_m, min_el_deg)
        for sid, name, lat, lon, alt_m in STATIONS[:n]
    ]


def spread(n_from: int, k: int) -> list[int]:
    """k indices spread evenly over range(n_from) (so a sample covers every shell)."""
    return sorted({int(i) for i in np.linspace(0, n_from - 1, k).round()})


def median_times(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time (s) of each variant; one warm-up call each, then ``repeats`` rounds with
    the variants interleaved (rotating order) so drifting machine load hits them alike."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


# ---------------------------------------------------------------- 1. propagation


def bench_propagation(n: int, repeats: int) -> dict[str, Any]:
    elements = constellation(n)
    satrecs = [e.satrec() for e in elements]  # prepared input of both sides
    (jd0,), (fr0,) = orbital.jd_fr_from_utc(PROPAGATE_AT)
    jd, fr = np.array([jd0]), np.array([fr0])
    prepared = SatrecArray(satrecs)  # the raw reference's array, built once
    batch = orbital.SatBatch(satrecs)  # ours, built once

    def raw() -> object:
        return prepared.sgp4(jd, fr)

    def ours() -> object:
        states = batch.propagate_jd(jd, fr)
        return orbital.subsatellite_point(states.r_teme_km, states.jd, states.fr)

    def per_call() -> object:
        states = orbital.propagate_jd(satrecs, jd, fr)
        return orbital.subsatellite_point(states.r_teme_km, states.jd, states.fr)

    states = batch.propagate_jd(jd, fr)
    variants: dict[str, Callable[[], object]] = {
        "raw": raw,
        "ours": ours,
        "propagate_jd": lambda: batch.propagate_jd(jd, fr),
        "subsatellite_point": lambda: orbital.subsatellite_point(
            states.r_teme_km, states.jd, states.fr
        ),
        "build": lambda: orbital.SatBatch(satrecs),
        "per_call": per_call,
        "from_elements": lambda: orbital.propagate_jd(elements, jd, fr),
    }
    t = median_times(variants, repeats)

    # Same work: our positions are the raw ones (bit for bit where SGP4 succeeded).
    error, r_raw, _ = prepared.sgp4(jd, fr)
    ok = np.asarray(error) == 0
    same = bool(np.array_equal(np.asarray(r_raw)[ok], states.r_teme_km[ok]))
    geo = orbital.subsatellite_point(states.r_teme_km, states.jd, states.fr)
    return {
        "satellites": n,
        "median_s": t,
        "sats_per_s": {k: n / v for k, v in t.items()},
        "ratio": t["raw"] / t["ours"],
        "ratio_per_call": t["raw"] / t["per_call"],
        "sgp4_failures": int((~ok).sum()),
        "same_positions_as_raw": same,
        "alt_km_range": [float(np.nanmin(geo.alt_km)), float(np.nanmax(geo.alt_km))],
    }


# ---------------------------------------------------------------- 2. passes


def pass_catalog(args: argparse.Namespace) -> list[orbital.Elements]:
    if args.catalog == "walker":
        return constellation(args.pass_satellites)
    return synthetic_catalog(args.pass_satellites, EPOCH)


def bench_passes(
    args: argparse.Namespace, workers: int
) -> tuple[dict[str, Any], list[orbital.Pass]]:
    elements = pass_catalog(args)
    sites = stations(args.stations, args.min_el)
    end = EPOCH + timedelta(hours=args.hours)
    found: list[orbital.Pass] = []
    cpu: list[float] = []

    def run() -> object:
        found.clear()  # the previous run's objects go before the next run builds its own
        c0 = cpu_s()
        found[:] = orbital.find_passes(
            elements, sites, EPOCH, end, min_pass_s=args.min_pass_s, workers=workers
        )
        cpu.append(cpu_s() - c0)
        return found

    load_before = os.getloadavg()[0]
    t = median_times({"find_passes": run}, args.pass_repeats)["find_passes"]
    pairs = len(elements) * len(sites)
    days = args.hours / 24.0
    return {
        "catalog": args.catalog,
        "satellites": len(elements),
        "stations": len(sites),
        "hours": args.hours,
        "min_el_deg": args.min_el,
        "min_pass_s": args.min_pass_s,
        "workers": workers,
        "median_s": t,
        "cpu_s": statistics.median(cpu),
        "cpu_s_per_pair_day": statistics.median(cpu) / (pairs * days),
        "loadavg_before": load_before,
        "passes": len(found),
        "cut_passes": sum(p.aos_cut or p.los_cut for p in found),
        "s_per_pair_day": t / (pairs * days),
    }, found


# ---------------------------------------------------------------- 3. skyfield


@dataclass
class Window:
    """One pass as offsets (s) from the window start; None = cut by the window edge."""

    rise: float | None
    set: float | None

    def interval(self, duration_s: float) -> tuple[float, float]:
        return (
            0.0 if self.rise is None else self.rise,
            duration_s if self.set is None else self.set,
        )


def skyfield_windows(times_s: Sequence[float], events: Sequence[int]) -> list[Window]:
    """find_events output (0 rise, 1 culminate, 2 set) -> passes, cut ones with None edges."""
    out: list[Window] = []
    current: Window | None = None
    for t, event in zip(times_s, events, strict=True):
        if event == 0:
            if current is not None:  # a rise without a set: should not happen; keep it
                out.append(current)
            current = Window(t, None)
        elif current is None:  # culminate or set of a pass already up at t0
            current = Window(None, None)
        if event == 2:
            current.set = t
            out.append(current)
            current = None
    if current is not None:
        out.append(current)
    return out


def our_windows(
    found: Sequence[orbital.Pass], start: datetime
) -> dict[tuple[int, str], list[Window]]:
    by_pair: dict[tuple[int, str], list[Window]] = {}
    for p in found:
        by_pair.setdefault((p.norad_id, p.station_id), []).append(
            Window(
                None if p.aos_cut else (p.aos_utc - start).total_seconds(),
                None if p.los_cut else (p.los_utc - start).total_seconds(),
            )
        )
    return by_pair


def compare(
    sky: dict[tuple[int, str], list[Window]],
    ours: dict[tuple[int, str], list[Window]],
    duration_s: float,
    min_pass_s: float,
) -> dict[str, Any]:
    """Pairs passes by overlap; the largest rise/set differences and what did not pair up."""
    max_rise = max_set = 0.0
    edges = matched = 0
    cut_mismatch = 0
    sky_unmatched: list[float] = []  # durations (s)
    ours_unmatched = 0
    for key in sorted(set(sky) | set(ours)):
        mine = list(ours.get(key, []))
        for w in sky.get(key, []):
            a, b = w.interval(duration_s)
            hit = next(
                (
                    m
                    for m in mine
                    if m.interval(duration_s)[0] <= b and a <= m.interval(duration_s)[1]
                ),
                None,
            )
            if hit is None:
                sky_unmatched.append(b - a)
                continue
            mine.remove(hit)
            matched += 1
            for theirs, our, attr in ((w.rise, hit.rise, "rise"), (w.set, hit.set, "set")):
                if (theirs is None) != (our is None):
                    cut_mismatch += 1
                elif theirs is not None and our is not None:
                    edges += 1
                    if attr == "rise":
                        max_rise = max(max_rise, abs(theirs - our))
                    else:
                        max_set = max(max_set, abs(theirs - our))
        ours_unmatched += len(mine)
    short = [d for d in sky_unmatched if d < min_pass_s]
    return {
        "skyfield_passes": sum(len(v) for v in sky.values()),
        "our_passes": sum(len(v) for v in ours.values()),
        "matched": matched,
        "edges_compared": edges,
        "max_rise_diff_s": max_rise,
        "max_set_diff_s": max_set,
        "cut_mismatch": cut_mismatch,
        "skyfield_only_short": len(short),
        "skyfield_only_short_durations_s": short,
        "skyfield_only_long": len(sky_unmatched) - len(short),
        "ours_only": ours_unmatched,
    }


def bench_skyfield(
    args: argparse.Namespace, full_found: Sequence[orbital.Pass]
) -> dict[str, Any] | None:
    try:
        sf = importlib.import_module("skyfield.api")
    except ImportError:
        return None
    all_elements = pass_catalog(args)
    elements = [all_elements[i] for i in spread(len(all_elements), args.sample_sats)]
    by_id = {s.station_id: s for s in stations(args.stations, args.min_el)}
    ids = [sid for sid in SAMPLE_STATION_ORDER if sid in by_id] + sorted(by_id)
    sites = [by_id[sid] for sid in dict.fromkeys(ids)][: args.sample_stations]
    end = EPOCH + timedelta(hours=args.hours)
    duration_s = (end - EPOCH).total_seconds()

    ts = sf.load.timescale(builtin=True)
    t0, t1 = ts.from_datetime(EPOCH), ts.from_datetime(end)
    raw_events: dict[tuple[int, str], tuple[Any, Any]] = {}

    sky_cpu: list[float] = []

    def run_skyfield() -> object:
        c0 = cpu_s()
        run_skyfield_timed()
        sky_cpu.append(cpu_s() - c0)
        return raw_events

    def run_skyfield_timed() -> object:
        topos = [sf.wgs84.latlon(s.lat_deg, s.lon_deg, elevation_m=s.alt_m) for s in sites]
        for e in elements:
            sat = sf.EarthSatellite(e.line1, e.line2, e.name, ts)
            for site, topo in zip(sites, topos, strict=True):
                raw_events[(e.norad_id, site.station_id)] = sat.find_events(
                    topo, t0, t1, altitude_degrees=args.min_el
                )
        return raw_events

    ours_found: list[orbital.Pass] = []

    def run_ours() -> object:
        ours_found[:] = orbital.find_passes(
            elements, sites, EPOCH, end, args.min_el, min_pass_s=args.min_pass_s
        )
        return ours_found

    t = median_times({"skyfield": run_skyfield, "ours_sample": run_ours}, args.repeats)

    sky: dict[tuple[int, str], list[Window]] = {}
    by_norad = {e.norad_id: e for e in elements}
    by_station = {s.station_id: s for s in sites}
    for key, (times, events) in raw_events.items():
        offsets = [(d - EPOCH).total_seconds() for d in times.utc_datetime()]
        sky[key] = skyfield_windows(offsets, [int(x) for x in events])
        if not sky[key]:  # no events: never up, or up all day (GEO); skyfield's altitude says
            e, site = by_norad[key[0]], by_station[key[1]]
            sat = sf.EarthSatellite(e.line1, e.line2, e.name, ts)
            topo = sf.wgs84.latlon(site.lat_deg, site.lon_deg, elevation_m=site.alt_m)
            if (sat - topo).at(t0).altaz()[0].degrees >= args.min_el:
                sky[key] = [Window(None, None)]
    ours = our_windows(ours_found, EPOCH)
    cmp = compare(sky, ours, duration_s, args.min_pass_s)

    # The speed-up uses the full run's time per pair: check it found the same passes here.
    sample_keys = set(sky)
    full = our_windows([p for p in full_found if (p.norad_id, p.station_id) in sample_keys], EPOCH)
    full_cmp = compare(full, ours, duration_s, 0.0)
    consistent = (
        full_cmp["skyfield_passes"] == full_cmp["our_passes"] == full_cmp["matched"]
        and full_cmp["cut_mismatch"] == 0
        and max(full_cmp["max_rise_diff_s"], full_cmp["max_set_diff_s"]) <= 0.02
    )

    pairs = len(elements) * len(sites)
    days = args.hours / 24.0
    return {
        "skyfield": metadata.version("skyfield"),
        "sample_sats": [e.name for e in elements],
        "sample_stations": [s.station_id for s in sites],
        "median_s": t,
        "skyfield_s_per_pair_day": t["skyfield"] / (pairs * days),
        "skyfield_cpu_s_per_pair_day": statistics.median(sky_cpu) / (pairs * days),
        "ours_sample_s_per_pair_day": t["ours_sample"] / (pairs * days),
        "compare": cmp,
        "full_run_consistent": consistent,
    }


# ---------------------------------------------------------------- 4. brute force


def bench_brute_force(
    args: argparse.Namespace, full_found: Sequence[orbital.Pass]
) -> dict[str, Any]:
    """The no-missed-pass guarantee on a sample: --brute-sats satellites spread over the catalog
    x every station, elevation from `orbital.look_angles` (not the search's code) at every whole
    second of the window. A run of whole seconds above the mask from s0 to s1 is a pass of at
    least s1 - s0 s; each with s1 - s0 >= min_pass_s must overlap a pass of the full run (same
    satellite and station): missed otherwise. Also counted: passes of the full run that no
    sampled second is inside (possible only for passes under ~1 s), and how far an AOS (LOS) lies
    outside its sampled bracket, [last second below, first second above] the mask (0 expected:
    the search refines to 0.01 s)."""
    elements = pass_catalog(args)
    index = spread(len(elements), args.brute_sats)
    sample = [elements[i] for i in index]
    sites = stations(args.stations, args.min_el)
    duration_s = int(args.hours * 3600)
    offsets = np.arange(duration_s + 1, dtype=float)
    jd, fr = orbital.jd_fr_offsets(EPOCH, offsets)
    c0 = cpu_s()
    up = np.empty((len(sites), len(sample), len(offsets)), dtype=np.bool_)
    for lo in range(0, len(offsets), 3600):
        sl = slice(lo, lo + 3600)
        states = orbital.propagate_jd(sample, jd[sl], fr[sl])
        r, v = orbital.teme_to_ecef(states.r_teme_km, states.v_teme_km_s, jd[sl], fr[sl])
        for k, site in enumerate(sites):
            up[k, :, sl] = orbital.look_angles(site, r, v).el_deg >= site.min_el_deg
    ours: dict[tuple[int, str], list[orbital.Pass]] = {}
    position = {sat: j for j, sat in enumerate(index)}
    for p in full_found:
        if p.sat_index in position:
            ours.setdefault((position[p.sat_index], p.station_id), []).append(p)
    brute = missed = long_enough = 0
    worst_edge = 0.0
    missed_list: list[dict[str, Any]] = []
    matched: set[tuple[int, str, int]] = set()
    for k, site in enumerate(sites):
        for j in range(len(sample)):
            row = up[k, j]
            change = np.flatnonzero(np.diff(row.astype(np.int8))).tolist()
            starts = ([0] if row[0] else []) + [c + 1 for c in change if row[c + 1]]
            ends = [c for c in change if row[c]] + ([duration_s] if row[-1] else [])
            mine = ours.get((j, site.station_id), [])
            for s0, s1 in zip(starts, ends, strict=True):
                brute += 1
                hits = [
                    n for n, p in enumerate(mine)
                    if (p.aos_utc - EPOCH).total_seconds() <= s1 + 1
                    and s0 - 1 <= (p.los_utc - EPOCH).total_seconds()
                ]  # fmt: skip
                for n in hits:
                    matched.add((j, site.station_id, n))
                    p = mine[n]
                    if not p.aos_cut:
                        aos = (p.aos_utc - EPOCH).total_seconds()
                        worst_edge = max(worst_edge, aos - s0, s0 - 1 - aos)
                    if not p.los_cut:
                        los = (p.los_utc - EPOCH).total_seconds()
                        worst_edge = max(worst_edge, s1 - los, los - (s1 + 1))
                if s1 - s0 >= args.min_pass_s:
                    long_enough += 1
                    if not hits:
                        missed += 1
                        missed_list.append(
                            {"satellite": sample[j].name, "station": site.station_id,
                             "from_s": s0, "to_s": s1}
                        )  # fmt: skip
    ours_total = sum(len(v) for v in ours.values())
    return {
        "satellites": [e.name for e in sample],
        "stations": len(sites),
        "step_s": 1.0,
        "brute_passes": brute,
        "brute_passes_min_pass_s": long_enough,
        "our_passes": ours_total,
        "missed": missed,
        "missed_passes": missed_list[:20],
        "ours_unseen": ours_total - len(matched),
        "max_edge_s": worst_edge,
        "cpu_s": cpu_s() - c0,
    }


# ---------------------------------------------------------------- checks, report


def checks(fig: dict[str, Any]) -> list[dict[str, Any]]:
    prop, sky, passes, brute = fig["propagation"], fig["skyfield"], fig["passes"], fig["brute"]
    results: list[dict[str, Any]] = [
        {
            "check": f"SatBatch propagate + geodetic >= {TARGET_RATIO:g}x raw SatrecArray.sgp4",
            "value": prop["ratio"],
            "limit": TARGET_RATIO,
            "unit": "x",
            "ok": prop["ratio"] >= TARGET_RATIO and prop["same_positions_as_raw"],
        },
        {
            "check": (
                f"brute force (1 s), {len(brute['satellites'])} sats x {brute['stations']}: "
                f"passes >= {passes['min_pass_s']:g} s missed = 0"
            ),
            "value": brute["missed"],
            "limit": 0,
            "unit": "",
            "ok": brute["missed"] == 0 and brute["max_edge_s"] <= 0.01,
        },
    ]
    if sky is None:
        for name in (
            f"find_passes >= {TARGET_SPEEDUP:g}x skyfield find_events",
            "same passes as skyfield",
        ):
            results.append({"check": name, "value": None, "limit": None, "unit": "", "ok": None})
        return results
    speedup = sky["skyfield_s_per_pair_day"] / passes["s_per_pair_day"]
    results.append(
        {
            "check": (
                f"find_passes {passes['satellites']:,} x {passes['stations']} x "
                f"{passes['hours']:g} h, {passes['workers']} workers <= {TARGET_PASSES_S:g} s"
            ),
            "value": passes["median_s"],
            "limit": TARGET_PASSES_S,
            "unit": " s",
            "ok": passes["median_s"] <= TARGET_PASSES_S,
        }
    )
    c = sky["compare"]
    worst = max(c["max_rise_diff_s"], c["max_set_diff_s"])
    same = (
        c["skyfield_only_long"] == 0
        and c["ours_only"] == 0
        and c["cut_mismatch"] == 0
        and worst <= TARGET_EDGE_S
        and sky["full_run_consistent"]
    )
    results += [
        {
            "check": f"find_passes >= {TARGET_SPEEDUP:g}x skyfield find_events",
            "value": speedup,
            "limit": TARGET_SPEEDUP,
            "unit": "x",
            "ok": speedup >= TARGET_SPEEDUP,
        },
        {
            "check": f"same passes as skyfield, rise/set within {TARGET_EDGE_S:g} s",
            "value": worst,
            "limit": TARGET_EDGE_S,
            "unit": " s",
            "ok": same,
        },
    ]
    return results


def cpu_s() -> float:
    """CPU seconds of this process and of its reaped children (find_passes' workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def environment() -> dict[str, Any]:
    affinity = usable_cpus()
    sgp4_api = importlib.import_module("sgp4.api")
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": affinity,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sgp4": metadata.version("sgp4"),
        "sgp4_accelerated": bool(sgp4_api.accelerated),
        "loadavg_before": os.getloadavg(),
    }


def report(fig: dict[str, Any], results: list[dict[str, Any]]) -> None:
    env, prop, passes, sky = fig["env"], fig["propagation"], fig["passes"], fig["skyfield"]
    print(
        f"Orbital benchmark: {env['cpus']} CPUs ({env['cpus_usable']} usable, {env['machine']}), "
        f"load avg before {env['loadavg_before'][0]:.2f}; Python {env['python']}, "
        f"numpy {env['numpy']}, sgp4 {env['sgp4']} (C++ accelerated: {env['sgp4_accelerated']})"
    )
    n, t, rate = prop["satellites"], prop["median_s"], prop["sats_per_s"]
    print(
        f"\n1. propagation: {n:,} satellites ({len(SHELLS)} Walker shells) at one time; "
        f"median of {fig['params']['repeats']} runs; prepared outside timing: Satrecs, (jd, fr), "
        "and the array each side propagates with (raw: SatrecArray; ours: orbital.SatBatch)"
    )
    print(f"{'path':<58}{'ms':>9}{'satellites/s':>15}")
    rows = (
        ("reference: raw SatrecArray.sgp4 (array built once)", "raw"),
        ("ours: SatBatch.propagate_jd + subsatellite_point", "ours"),
        ("  breakdown: SatBatch.propagate_jd (sgp4, NaN mask)", "propagate_jd"),
        ("  breakdown: subsatellite_point (GMST rotation + Bowring)", "subsatellite_point"),
        ("  not timed in ours: SatBatch(satrecs) construction", "build"),
        ("  for scale: propagate_jd(satrecs) (array built per call)", "per_call"),
        ("  for scale: propagate_jd from Elements (parses TLEs)", "from_elements"),
    )
    for label, key in rows:
        print(f"{label:<58}{t[key] * 1e3:>9.2f}{rate[key]:>15,.0f}")
    print(
        f"  ours / raw rate: {prop['ratio']:.2f}x; with the array built per call "
        f"(propagate_jd(satrecs) + subsatellite_point): {prop['ratio_per_call']:.2f}x"
    )
    lo, hi = prop["alt_km_range"]
    print(
        f"  same positions as raw: {prop['same_positions_as_raw']}; SGP4 failures "
        f"{prop['sgp4_failures']}; geodetic altitude {lo:.0f}..{hi:.0f} km"
    )
    print(
        f"\n2. passes: find_passes, {passes['satellites']:,} satellites ({passes['catalog']} "
        f"catalog) x {passes['stations']} stations x {passes['hours']:g} h, mask "
        f"{passes['min_el_deg']:g}°, min_pass_s {passes['min_pass_s']:g}; median of "
        f"{fig['params']['pass_repeats']} runs"
    )
    for run in fig["passes_by_workers"]:
        print(
            f"  {run['workers']} worker(s): {run['median_s']:.2f} s (CPU, workers included "
            f"{run['cpu_s']:.1f} s; load avg before {run['loadavg_before']:.1f}), "
            f"{run['passes']:,} passes ({run['cut_passes']} cut by the window), "
            f"{run['s_per_pair_day'] * 1e3:.4f} ms per satellite x station x day"
        )
    if sky is None:
        print(
            "\n3. skyfield comparison skipped: skyfield is not importable (pip install '.[bench]')"
        )
    else:
        c = sky["compare"]
        print(
            f"\n3. skyfield {sky['skyfield']} find_events (builtin timescale) on a sample: "
            f"{len(sky['sample_sats'])} satellites x {sky['sample_stations']} x "
            f"{passes['hours']:g} h, mask {passes['min_el_deg']:g}°; median of "
            f"{fig['params']['repeats']} runs"
        )
        print(f"{'':<58}{'ms':>9}{'ms/pair·day':>15}")
        st = sky["median_s"]
        print(
            f"{'skyfield EarthSatellite.find_events':<58}{st['skyfield'] * 1e3:>9.1f}"
            f"{sky['skyfield_s_per_pair_day'] * 1e3:>15.3f}"
        )
        print(
            f"{'ours find_passes, same sample':<58}{st['ours_sample'] * 1e3:>9.1f}"
            f"{sky['ours_sample_s_per_pair_day'] * 1e3:>15.3f}"
        )
        for run in fig["passes_by_workers"]:
            label = f"ours find_passes, full run of step 2, {run['workers']} worker(s)"
            print(f"{label:<58}{'':>9}{run['s_per_pair_day'] * 1e3:>15.4f}")
        ratios = ", ".join(
            f"{sky['skyfield_s_per_pair_day'] / run['s_per_pair_day']:.1f}x with "
            f"{run['workers']} worker(s)"
            for run in fig["passes_by_workers"]
        )
        cpu_ratios = ", ".join(
            f"{sky['skyfield_cpu_s_per_pair_day'] / run['cpu_s_per_pair_day']:.1f}x with "
            f"{run['workers']} worker(s)"
            for run in fig["passes_by_workers"]
        )
        print(
            f"  in CPU time per pair (less distorted by other load; workers' CPU included): "
            f"{cpu_ratios}"
        )
        print(
            f"  speed-up per pair (full run): {ratios}; "
            f"{sky['skyfield_s_per_pair_day'] / sky['ours_sample_s_per_pair_day']:.1f}x "
            f"(same small sample, our fixed costs not amortised)"
        )
        print(
            f"  passes: skyfield {c['skyfield_passes']}, ours {c['our_passes']}, paired "
            f"{c['matched']}; skyfield-only {c['skyfield_only_long']} (+{c['skyfield_only_short']} "
            f"shorter than min_pass_s), ours-only {c['ours_only']}, cut-edge mismatches "
            f"{c['cut_mismatch']}"
        )
        print(
            f"  {c['edges_compared']} rise/set edges: max |Δrise| {c['max_rise_diff_s']:.3f} s, "
            f"max |Δset| {c['max_set_diff_s']:.3f} s; sample passes = full run's: "
            f"{sky['full_run_consistent']}"
        )
    b = fig["brute"]
    print(
        f"\n4. brute force on a sample: {len(b['satellites'])} satellites (spread over the catalog) x "
        f"{b['stations']} stations, look_angles every {b['step_s']:g} s ({b['cpu_s']:.1f} s CPU): "
        f"{b['brute_passes']} passes ({b['brute_passes_min_pass_s']} of >= "
        f"{passes['min_pass_s']:g} s); the full run has {b['our_passes']} for them; missed "
        f"{b['missed']}; full-run passes between two sampled seconds {b['ours_unseen']}; "
        f"AOS/LOS outside their sampled 1 s bracket by at most {b['max_edge_s']:.3f} s"
    )
    print()
    for r in results:
        if r["ok"] is None:
            print(f"SKIP  {r['check']} (skyfield not installed: not passed)")
        else:
            print(
                f"{'PASS' if r['ok'] else 'FAIL'}  {r['check']:<58} ({r['value']:,.2f}{r['unit']})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--satellites", type=int, default=30_000, help="for the propagation")
    parser.add_argument("--pass-satellites", type=int, default=30_000, help="for the passes")
    parser.add_argument(
        "--catalog", choices=("synthetic", "walker"), default="synthetic", help="pass satellites"
    )
    parser.add_argument(
        "--workers",
        default=f"1,{usable_cpus()}",
        help="comma-separated worker counts for find_passes (default: 1 and all usable cores)",
    )
    parser.add_argument("--stations", type=int, default=len(STATIONS), help="ground stations")
    parser.add_argument("--hours", type=float, default=24.0, help="pass search window (h)")
    parser.add_argument("--min-el", type=float, default=10.0, help="elevation mask (deg)")
    parser.add_argument("--min-pass-s", type=float, default=30.0, help="find_passes min_pass_s")
    parser.add_argument("--repeats", type=int, default=7, help="runs per short measurement")
    parser.add_argument("--pass-repeats", type=int, default=1, help="runs of the full pass search")
    parser.add_argument("--sample-sats", type=int, default=20, help="skyfield sample satellites")
    parser.add_argument("--sample-stations", type=int, default=2, help="skyfield sample stations")
    parser.add_argument(
        "--brute-sats",
        type=int,
        default=40,
        help="satellites of the brute-force check (x all stations)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)
    if args.satellites < len(SHELLS) or args.pass_satellites < len(SHELLS):
        parser.error(f"--satellites and --pass-satellites must be >= {len(SHELLS)}")
    if not 1 <= args.stations <= len(STATIONS):
        parser.error(f"--stations must be in 1..{len(STATIONS)}")
    if not 1 <= args.sample_stations <= args.stations:
        parser.error("--sample-stations must be in 1..--stations")
    if not 1 <= args.sample_sats <= args.pass_satellites:
        parser.error("--sample-sats must be in 1..--pass-satellites")
    if not 1 <= args.brute_sats <= args.pass_satellites:
        parser.error("--brute-sats must be in 1..--pass-satellites")
    if min(args.repeats, args.pass_repeats) < 1 or not args.hours > 0 or not args.min_pass_s > 0:
        parser.error("--repeats, --pass-repeats, --hours and --min-pass-s must be positive")
    if not -90.0 <= args.min_el < 90.0 or not math.isfinite(args.min_el):
        parser.error("--min-el must be in [-90, 90)")
    try:
        worker_counts = sorted({int(w) for w in args.workers.split(",")})
    except ValueError:
        parser.error(f"--workers {args.workers!r} is not a comma-separated list of integers")
    if not worker_counts or worker_counts[0] < 1:
        parser.error("--workers counts must be >= 1")

    env = environment()
    started = time.perf_counter()
    propagation = bench_propagation(args.satellites, args.repeats)
    by_workers: list[dict[str, Any]] = []
    found: list[orbital.Pass] = []
    for workers in worker_counts:
        found.clear()
        passes, found = bench_passes(args, workers)
        by_workers.append(passes)
    brute = bench_brute_force(args, found)
    sky = bench_skyfield(args, found)
    params = {k: v for k, v in vars(args).items() if k != "strict"}
    fig = {
        "params": params,
        "env": env,
        "propagation": propagation,
        "passes": passes,
        "passes_by_workers": by_workers,
        "skyfield": sky,
        "brute": brute,
        "wall_s": time.perf_counter() - started,
    }
    results = checks(fig)
    report(fig, results)
    print(f"total {fig['wall_s']:.1f} s")
    # A check that did not run (ok None: skyfield missing) is not a pass.
    passed = all(r["ok"] is True for r in results)
    skipped = [r["check"] for r in results if r["ok"] is None]
    if skipped:
        print(
            f"NOT PASSED: {len(skipped)} checks did not run (pip install -e '.[bench]', or make bench)"
        )
    body = {**{k: v for k, v in fig.items() if k != "params"}, "skipped_checks": skipped}
    save_results("orbital_bench", params, None, env["loadavg_before"], body, results, passed)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
