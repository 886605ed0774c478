"""Visibility passes of many satellites over many ground stations.

Visibility is decided with d, the signed distance (km) of the satellite from the station's mask
cone: the cone of directions at elevation = mask about the local vertical (the ellipsoid normal),
apex at the antenna. With ρ the station-to-satellite vector, ``up`` its component along the
vertical and ``h`` the horizontal remainder, d = up·cos(mask) - h·sin(mask) = |ρ|·sin(el - mask),
positive inside the cone (the exact distance when |el - mask| <= 90°; beyond that the formula
is larger than the distance, which only makes the test below more cautious). d >= 0 exactly when
el >= mask. Unlike elevation, whose rate has no useful bound (it grows as the range shrinks), a
signed distance to a surface changes no faster than the point moves: |ḋ| <= |v|, the satellite's
Earth-fixed speed. V bounds |v| for each satellite: its mean orbit's perigee speed plus Earth
rotation at its apogee distance (and the fastest speed seen in the scan, if larger), times 1.05
(mean-to-osculating J2 terms change the speed by ~0.1%, a day of drag by less).

A tighter bound where ḋ is known: for a mask >= 0, d is a concave function of ρ (a linear term
minus sin(mask) times the norm of ρ's horizontal part) with a gradient of length 1, so
d(ρ(t)) <= d(a) + ḋ(a)·τ + A·τ²/2 for τ = t - a of either sign, where A bounds |ρ̈|, the
satellite's Earth-fixed acceleration: gravity at the mean perigee, Coriolis for the speed bound
and centrifugal at apogee, times 1.2 (J2 adds ~0.3%). From an end below the mask, d stays < 0
until the larger root of that parabola (and until |d(a)|/V); so in a cell [a, b] with both ends
below the mask, the satellite can be above it only in a window [lo, hi], lo = a + that time
from a, hi = b - the same from b.

Method:

1. Coarse scan: satellites are searched in groups by grid step (240 s; 600 s for orbits of
   225 min or longer, whose Earth-fixed motion is slow: any step keeps the guarantee below, it
   only sets the cost), on a uniform grid of step Δ = duration / ceil(duration / max(min_pass_s,
   step)), including both window edges, vectorised over blocks of satellites × times
   (``max_chunk_bytes`` bounds their memory). For every sample and station one matrix product
   gives ``up``; as d <= up·cos(mask) when the mask is >= 0, a sample with up·cos(mask) below
   -(V·(Δ - T) + 1 km) is below the mask and too far from it for step 2 ("far": ~90% of LEO
   samples); d itself is computed for the others only. Sign changes between consecutive
   samples bracket AOS and LOS; d and ḋ are kept at both ends.
2. Cells that could hide a pass: a pass lasting T >= ``min_pass_s`` strictly inside a cell
   [a, b] whose ends are both below the mask lies inside its window [lo, hi] (above), so
   hi - lo >= T. With the speed bound alone, |d(a)| + |d(b)| <= V·(L - T) for a cell of length
   L: the scan drops the cells that fail this first (a cell with a far end always fails), then
   those whose window, with ḋ at both ends, is shorter than T (the acceleration bound prunes
   ~98% of what the speed bound leaves). The others are split at m, the middle of the window
   (one batched evaluation for all of them, d and ḋ): if d(m) >= 0, m is inside a pass,
   bracketed by [a, m] and [m, b]; otherwise both parts are tested the same way. The window
   at least halves each round and must stay T long, so this ends within log2(Δ / T) + 1
   rounds.
3. Refinement, batched over all passes (each round is one ``sgp4_array`` call per satellite
   for all of its points, not one per pass). AOS and LOS: Newton's method on d (ḋ from the SGP4
   velocity), starting from the root of the cubic Hermite interpolant of d over the bracket
   (regula falsi where ḋ at its ends is not known), bisecting whenever a step would leave the
   bracket, which therefore always holds a crossing; it stops once a step is below 0.01 s and
   applies that step. TCA: Newton's method on the rate of sin(elevation) (its second
   derivative from gravity with J2 and the Earth-fixed frame's terms), from the middle of
   [AOS, LOS] (from the highest sample for a cut pass, or where the middle leads to a lower
   local maximum than that sample), kept within [AOS, LOS], to a step below 0.01 s (applied);
   the maximum elevation is sin(el) at the last evaluation carried to the reported TCA by its
   second-order expansion (error ~1e-13 in sin(el)), so no further evaluation is needed.
4. Large searches can be spread over worker processes (``workers``): the satellites of each
   grid group are dealt into interleaved pieces, each searched whole (steps 1-3) in a
   process, and the passes merged; the result does not depend on the split.

Guarantee (``min_pass_s``): a pass is an interval where el >= mask. If its part inside the window
lasts at least ``min_pass_s``, either it contains a grid sample (found in step 1), or it lies
strictly inside one cell whose ends are below the mask. That cell passes step 2's tests by the
bounds above; when its midpoint is below the mask the pass lies strictly inside one half, whose
ends are below the mask, so that half passes the test too; and so on until a midpoint falls
inside the pass, which happens while the halves are still longer than it. So it is found and
refined. Shorter passes may be missed. Two passes of one satellite over one station are
separated by most of an orbit, so a dip below the mask shorter than the grid step cannot merge
two passes.

Accuracy, for the SGP4 model: AOS and LOS within ~1e-5 s of the crossing; TCA within ~1e-3 s
of the elevation maximum (the search uses SGP4's velocity, which differs from the derivative of
its positions by ~1 cm/s); the maximum elevation within ~1e-9° of the maximum, the peak
being flat. Checked against dense look-angle sampling of 3,200 passes: AOS/LOS
within 20 µs, TCA within 0.7 ms, elevation within 3e-10°. The model itself (TLE errors of ~1 km,
see ``orbital.propagate``) and the neglected effects in ``orbital.frames`` and
``orbital.stations`` (no refraction: a real AOS at a 0° mask comes ~5-15 s earlier) dominate.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sgp4.api import Satrec, SatrecArray  # type: ignore[import-untyped]

from .elements import Elements
from .frames import EARTH_ROTATION_RAD_S
from .stations import GroundStation
from .timescale import as_utc, gmst_rad, jd_fr_from_utc

__all__ = ["Pass", "find_passes"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_COARSE_STEP_S = 240.0  # coarse grid step when min_pass_s is shorter
_HIGH_STEP_S = 600.0  # ... for orbits of _HIGH_PERIOD_MIN or longer (MEO, GEO, HEO)
_HIGH_PERIOD_MIN = 225.0  # SGP4's deep-space threshold
_PARALLEL_MIN_SAMPLES = 20_000_000  # satellite × station × grid samples worth a worker pool
_CHUNKS_PER_WORKER = 4
_SPEED_MARGIN = 1.05  # on the Earth-fixed speed bound V
_ACCEL_MARGIN = 1.2  # on the Earth-fixed acceleration bound A
_DISTANCE_SLACK_KM = 1e-6  # rounding allowance in the cell test
_FAR_SLACK_KM = 1.0  # margin on the near/far split of the scan (rounding, and more)
_EDGE_TOLERANCE_S = 0.01  # AOS/LOS: stop when the Newton step is below this (then apply it)
_TCA_TOLERANCE_S = 0.01  # TCA: likewise
_EL_SLACK_DEG = 1e-6  # elevations closer than this count as equal (rounding)
_MAX_ROUNDS = 200  # a bound that is never reached (bisection alone needs ~40 rounds)
_BLOCK_BYTES = 8_000_000  # coarse-scan blocks: small enough to stay in cache
# Gravity model for the TCA search's second derivative only (Newton's steps, not the results).
_MU_KM3_S2 = 398600.8
_J2 = 1.082616e-3
_RE_KM = 6378.135


class Pass(NamedTuple):
    """One pass of satellite ``sat_index`` (its position in the input list) over a station.

    ``aos_cut``/``los_cut`` mark a pass already in progress at the window start / still in
    progress at its end; the cut time is then the window edge. A named tuple (immutable, and
    built in C: a catalog's day makes millions of them, and a frozen dataclass's ``__init__``
    took twice as long as the search behind each pass).
    """

    sat_index: int
    norad_id: int
    sat_name: str
    station_id: str
    aos_utc: datetime
    tca_utc: datetime
    los_utc: datetime
    max_el_deg: float
    aos_cut: bool
    los_cut: bool

    @property
    def duration_s(self) -> float:
        return (self.los_utc - self.aos_utc).total_seconds()


def find_passes(
    elements: Sequence[Elements],
    stations: Sequence[GroundStation],
    from_utc: datetime,
    to_utc: datetime,
    min_el_deg: float | None = None,
    *,
    min_pass_s: float = 30.0,
    max_chunk_bytes: int = 50_000_000,
    workers: int = 1,
) -> list[Pass]:
    """Every pass in [from_utc, to_utc] lasting at least ``min_pass_s`` (see module docstring),
    sorted by AOS. ``min_el_deg`` overrides every station's own mask when given.

    ``workers`` > 1 spreads large searches over that many processes (satellites split into
    interleaved chunks; each is searched whole, the results are merged); small ones, below
    ``_PARALLEL_MIN_SAMPLES`` satellite × station samples, stay in this process. Workers are
    forked, or started by a fork server when other threads are running (then ``__main__`` must
    be importable without side effects, as for any ``multiprocessing`` program). The result is
    the same for any ``workers``."""
    start = as_utc(from_utc, "from_utc")
    end = as_utc(to_utc, "to_utc")
    if end <= start:
        raise ValueError(f"to_utc {end.isoformat()} must be after from_utc {start.isoformat()}")
    if not min_pass_s > 0.0:
        raise ValueError(f"min_pass_s must be positive, got {min_pass_s}")
    if min_el_deg is not None and not -90.0 <= min_el_deg < 90.0:
        raise ValueError(f"min_el_deg {min_el_deg} is outside [-90, 90)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not elements or not stations:
        return []
    masks = np.array([s.min_el_deg if min_el_deg is None else min_el_deg for s in stations])
    (jd0,), (fr0,) = jd_fr_from_utc(start)
    job = _Job(
        np.array([s.r_ecef_km for s in stations]).reshape(-1, 3),
        np.array([s.enu_basis()[2] for s in stations]).reshape(-1, 3),
        masks,
        float(jd0),
        float(fr0),
        (end - start).total_seconds(),
        min_pass_s,
        max(1, min(max_chunk_bytes, _BLOCK_BYTES)),
    )
    satrecs = [e.satrec() for e in elements]
    pieces, parallel = _plan(job, satrecs, workers)
    if parallel:
        # fork (cheap, and no re-import of an unguarded __main__) unless other threads run,
        # whose locks a forked child could inherit held; then forkserver.
        one_thread = threading.active_count() == 1
        ctx = multiprocessing.get_context("fork" if one_thread else "forkserver")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [
                pool.submit(
                    _search_tles,
                    job,
                    [(elements[i].line1, elements[i].line2) for i in index.tolist()],
                    step_s,
                )
                for index, step_s in pieces
            ]
            results = [f.result() for f in futures]
    else:
        results = [
            _search(job, [satrecs[i] for i in index.tolist()], step_s) for index, step_s in pieces
        ]
    found = _Found.merge([r.renumber(index) for r, (index, _) in zip(results, pieces, strict=True)])
    return _make_passes(elements, stations, start, found)


class _Job(NamedTuple):
    """What every piece of a search shares (picklable, for worker processes)."""

    sites: FloatArray  # [n_st, 3] ECEF km
    ups: FloatArray  # [n_st, 3] unit ellipsoid normals
    masks: FloatArray  # [n_st] deg
    jd0: float
    fr0: float
    duration_s: float
    min_pass_s: float
    block_bytes: int


class _Found(NamedTuple):
    """Refined passes as columns (``sat`` indexes the satellites of the search that made it)."""

    sat: IntArray
    st: IntArray
    aos_s: FloatArray
    tca_s: FloatArray
    los_s: FloatArray
    max_el: FloatArray
    aos_cut: BoolArray
    los_cut: BoolArray

    def renumber(self, index: IntArray) -> _Found:
        return self._replace(sat=index[self.sat])

    @staticmethod
    def merge(parts: Sequence[_Found]) -> _Found:
        return _Found(*(np.concatenate(c) for c in zip(*parts, strict=True)))


def _grid_step_s(satrec: Any) -> float:
    """Coarse-grid step for one satellite: _COARSE_STEP_S below _HIGH_PERIOD_MIN, _HIGH_STEP_S
    above (slow Earth-fixed motion and long passes: fewer samples, few cells to halve). Any step
    keeps the guarantee (step 2 halves whatever cells could hide a pass); it only sets the cost."""
    no_rad_min = float(satrec.no_kozai)
    if no_rad_min > 0.0 and 2.0 * math.pi / no_rad_min >= _HIGH_PERIOD_MIN:
        return _HIGH_STEP_S
    return _COARSE_STEP_S


def _plan(
    job: _Job, satrecs: Sequence[Any], workers: int
) -> tuple[list[tuple[IntArray, float]], bool]:
    """Satellite index arrays with their grid step, and whether to use worker processes: one
    piece per step, or, when the search is big enough to share out, ``_CHUNKS_PER_WORKER`` ×
    workers interleaved pieces per step (so each holds a like mix of orbits, and a slow piece
    does not leave a process idle at the end)."""
    steps = np.array([_grid_step_s(s) for s in satrecs])
    grids = {step: max(step, job.min_pass_s) for step in np.unique(steps).tolist()}
    samples = sum(
        np.count_nonzero(steps == step) * len(job.masks) * job.duration_s / grid
        for step, grid in grids.items()
    )
    parallel = workers > 1 and samples >= _PARALLEL_MIN_SAMPLES
    pieces: list[tuple[IntArray, float]] = []
    for step in grids:
        index = np.flatnonzero(steps == step)
        n = min(len(index), workers * _CHUNKS_PER_WORKER) if parallel else 1
        pieces += [(index[c::n], float(step)) for c in range(n)]
    return pieces, parallel


def _search_tles(job: _Job, lines: list[tuple[str, str]], step_s: float) -> _Found:
    """``_search`` in a worker process, from TLE lines (cheaper to send than Satrecs)."""
    return _search(job, [Satrec.twoline2rv(a, b) for a, b in lines], step_s)


def _search(job: _Job, satrecs: list[Any], step_s: float) -> _Found:
    """Steps 1-3 of the method for some satellites, on a grid of about ``step_s``."""
    duration_s, min_pass_s = job.duration_s, job.min_pass_s
    n_cells = max(1, math.ceil(duration_s / max(min_pass_s, step_s)))
    grid_s = np.linspace(0.0, duration_s, n_cells + 1)
    sky = _Sky(satrecs, job)
    scan = _coarse_scan(sky, grid_s, min_pass_s, job.block_bytes)
    p = _assemble(sky, scan, grid_s, min_pass_s)

    aos_s = np.zeros(len(p.sat))
    los_s = np.full(len(p.sat), duration_s)
    rise_i, set_i = np.flatnonzero(~p.aos_cut), np.flatnonzero(~p.los_cut)
    edges = _crossings(
        sky,
        np.concatenate([p.sat[rise_i], p.sat[set_i]]),
        np.concatenate([p.st[rise_i], p.st[set_i]]),
        p.rise.take(rise_i).join(p.set.take(set_i)),
    )
    aos_s[rise_i] = edges[: len(rise_i)]
    los_s[set_i] = edges[len(rise_i) :]
    # TCA from the middle of each pass (a LEO pass is nearly symmetric about its maximum; a cut
    # pass starts from its highest sample), then from the highest sample where the middle led
    # to a (local) maximum lower than that sample.
    cut = p.aos_cut | p.los_cut
    tca_s, max_el = _culminations(
        sky, p.sat, p.st, aos_s, los_s, np.where(cut, p.best_t, 0.5 * (aos_s + los_s))
    )
    low = np.flatnonzero(~cut & ~(max_el >= p.best_el - _EL_SLACK_DEG))  # NaN too
    if len(low):
        tca_2, el_2 = _culminations(
            sky, p.sat[low], p.st[low], aos_s[low], los_s[low], p.best_t[low]
        )
        better = el_2 >= np.fmax(max_el[low], p.best_el[low] - _EL_SLACK_DEG)
        tca_s[low] = np.where(better, tca_2, p.best_t[low])
        max_el[low] = np.where(better, el_2, p.best_el[low])
    return _Found(p.sat, p.st, aos_s, tca_s, los_s, max_el, p.aos_cut, p.los_cut)


# ---------------------------------------------------------------- geometry


class _Look(NamedTuple):
    """Station-to-satellite geometry at K points: d (km), and what the refinements need."""

    d: FloatArray  # signed distance from the mask cone, km; NaN where SGP4 fails
    up: FloatArray  # ρ·up, km
    horizontal: FloatArray  # |ρ - up·û|, km
    rho: FloatArray  # station-to-satellite vectors [K, 3], ECEF km
    v: FloatArray  # ECEF velocities [K, 3], km/s
    r: FloatArray  # ECEF positions [K, 3], km


class _Sky:
    """Satellites and stations; d and its derivatives at (satellite, station, offset) points,
    with one ``sgp4_array`` call per satellite involved."""

    def __init__(self, satrecs: list[Any], job: _Job) -> None:
        self.satrecs = satrecs
        self.n_sats, self.n_st = len(satrecs), len(job.masks)
        self.sites, self.ups = job.sites, job.ups
        self.site_up = np.einsum("sk,sk->s", self.sites, self.ups)  # site·û
        self.site2 = np.einsum("sk,sk->s", self.sites, self.sites)
        mask_rad = np.radians(job.masks)
        self.cos_m, self.sin_m = np.cos(mask_rad), np.sin(mask_rad)
        self.jd0, self.fr0 = job.jd0, job.fr0
        self.speed_bound = _speed_bounds(satrecs)
        self.accel_bound = _accel_bounds(satrecs)
        # The acceleration bound holds for d only where d is concave: masks >= 0.
        self.concave = self.sin_m >= 0.0

    def window(
        self,
        sat: IntArray,
        st: IntArray,
        a: FloatArray,
        b: FloatArray,
        da: FloatArray,
        db: FloatArray,
        ga: FloatArray,
        gb: FloatArray,
        speed: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """[lo, hi] within a cell [a, b] whose ends are below the mask (d < 0, ḋ = g, NaN if
        unknown) outside which d < 0 holds throughout: d reaches 0 no sooner than |d|/V from
        an end, and, for a mask >= 0, no sooner than the root of d + ḋτ + Aτ²/2 (module
        docstring). A pass of T inside the cell needs hi - lo >= T (NaN d: no window)."""
        ea = np.maximum(-da - _DISTANCE_SLACK_KM, 0.0)
        eb = np.maximum(-db - _DISTANCE_SLACK_KM, 0.0)
        acc = np.where(self.concave[st], self.accel_bound[sat], np.inf)
        with np.errstate(invalid="ignore", divide="ignore"):
            # the larger root of ea = gτ + Aτ²/2, in the form without cancellation for g's sign
            ra, rb = np.sqrt(ga * ga + 2.0 * acc * ea), np.sqrt(gb * gb + 2.0 * acc * eb)
            ta = np.where(ga >= 0.0, 2.0 * ea / (ga + ra), (ra - ga) / acc)
            tb = np.where(gb <= 0.0, 2.0 * eb / (rb - gb), (rb + gb) / acc)
        ta = np.fmax(ta, ea / speed)  # NaN (no ḋ, or A = inf) -> the speed bound alone
        tb = np.fmax(tb, eb / speed)
        return a + ta, b - tb

    def times(self, offset_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Split Julian dates of start + offsets (``fr`` may exceed 1; SGP4 and GMST accept it)."""
        return np.full(offset_s.shape, self.jd0), self.fr0 + offset_s / 86400.0

    def look(self, sat: IntArray, st: IntArray, offset_s: FloatArray) -> _Look:
        """Geometry of satellites ``sat`` from stations ``st`` at ``offset_s`` (1-D, one length)."""
        n = len(sat)
        jd, fr = self.times(offset_s)
        order = np.argsort(sat, kind="stable")
        sorted_sat = sat[order]
        cuts = (np.flatnonzero(sorted_sat[1:] != sorted_sat[:-1]) + 1).tolist()
        jd_o, fr_o = jd[order], fr[order]
        error, r_o, v_o = np.empty(n, dtype=np.uint8), np.empty((n, 3)), np.empty((n, 3))
        satrecs = self.satrecs
        starts, ends = ([0, *cuts], [*cuts, n]) if n else ([], [])
        # Satrec._sgp4 is what sgp4_array wraps: it writes into our (contiguous) slices, so no
        # arrays are made per satellite (a round has one run per satellite: thousands).
        for lo, hi, k in zip(starts, ends, sorted_sat[starts].tolist(), strict=True):
            satrecs[k]._sgp4(jd_o[lo:hi], fr_o[lo:hi], error[lo:hi], r_o[lo:hi], v_o[lo:hi])
        failed = error != 0
        if failed.any():
            r_o[failed] = np.nan
            v_o[failed] = np.nan
        r_teme, v_teme = np.empty((n, 3)), np.empty((n, 3))
        r_teme[order] = r_o
        v_teme[order] = v_o
        # TEME -> ECEF as orbital.frames.teme_to_ecef, with GMST computed once for r and v
        theta = gmst_rad(jd, fr)
        c, s = np.cos(theta), np.sin(theta)
        r_ecef, v_ecef = np.empty((n, 3)), np.empty((n, 3))
        r_ecef[:, 0] = c * r_teme[:, 0] + s * r_teme[:, 1]
        r_ecef[:, 1] = c * r_teme[:, 1] - s * r_teme[:, 0]
        r_ecef[:, 2] = r_teme[:, 2]
        v_ecef[:, 0] = c * v_teme[:, 0] + s * v_teme[:, 1] + EARTH_ROTATION_RAD_S * r_ecef[:, 1]
        v_ecef[:, 1] = c * v_teme[:, 1] - s * v_teme[:, 0] - EARTH_ROTATION_RAD_S * r_ecef[:, 0]
        v_ecef[:, 2] = v_teme[:, 2]
        return self.geometry(st, r_ecef, v_ecef)

    def geometry(self, st: IntArray, r_ecef: FloatArray, v_ecef: FloatArray) -> _Look:
        rho = r_ecef - self.sites[st]
        up = np.einsum("ik,ik->i", rho, self.ups[st])
        horizontal = np.sqrt(np.maximum(np.einsum("ik,ik->i", rho, rho) - up * up, 0.0))
        d = up * self.cos_m[st] - horizontal * self.sin_m[st]
        return _Look(d, up, horizontal, rho, v_ecef, r_ecef)

    def d_rate(self, st: IntArray, look: _Look) -> FloatArray:
        """ḋ (km/s) at the points of ``look``; NaN straight overhead when the mask is not 0."""
        up_rate = np.einsum("ik,ik->i", look.v, self.ups[st])
        rho_v = np.einsum("ik,ik->i", look.rho, look.v)
        with np.errstate(invalid="ignore", divide="ignore"):
            horizontal_rate = (rho_v - look.up * up_rate) / look.horizontal
        result: FloatArray = up_rate * self.cos_m[st] - horizontal_rate * self.sin_m[st]
        return result


def _accel_bounds(satrecs: Sequence[Any]) -> FloatArray:
    """Bound on each satellite's Earth-fixed acceleration (km/s²): gravity at the mean orbit's
    perigee, Coriolis for the Earth-fixed speed bound (without its margin) and centrifugal at
    apogee, times _ACCEL_MARGIN (J2 adds ~0.3% to gravity; the osculating perigee lies ~0.1%
    below the mean one; drag and lunisolar terms are smaller still); +inf outside the elliptic
    range."""
    out = np.empty(len(satrecs))
    speed = _speed_bounds(satrecs) / _SPEED_MARGIN
    for i, s in enumerate(satrecs):
        a_km, e = s.a * s.radiusearthkm, s.ecco
        if a_km > 0.0 and 0.0 <= e < 1.0:
            r_p, r_a = a_km * (1.0 - e), a_km * (1.0 + e)
            omega = EARTH_ROTATION_RAD_S
            out[i] = s.mu / (r_p * r_p) + 2.0 * omega * speed[i] + omega * omega * r_a
        else:
            out[i] = math.inf
    return out * _ACCEL_MARGIN


def _speed_bounds(satrecs: Sequence[Any]) -> FloatArray:
    """Bound on each satellite's Earth-fixed speed (km/s): perigee speed of the mean orbit plus
    Earth rotation at apogee distance (|v - ω×r| <= |v| + ω|r|), times _SPEED_MARGIN; +inf for
    element sets outside the elliptic range (SGP4 fails on those anyway)."""
    out = np.empty(len(satrecs))
    for i, s in enumerate(satrecs):
        a_km, e = s.a * s.radiusearthkm, s.ecco
        if a_km > 0.0 and 0.0 <= e < 1.0:
            v_perigee = math.sqrt(s.mu * (1.0 + e) / (a_km * (1.0 - e)))
            out[i] = v_perigee + EARTH_ROTATION_RAD_S * a_km * (1.0 + e)
        else:
            out[i] = math.inf
    return out * _SPEED_MARGIN


# ---------------------------------------------------------------- 1. coarse scan


class _Scan(NamedTuple):
    """What the coarse scan found, as flat arrays (k: index of a cell's first grid sample)."""

    # sign changes between grid[k] and grid[k + 1]; k = -1 / n_cells for a pass up at an edge
    sat: IntArray
    st: IntArray
    k: IntArray
    rising: BoolArray
    d0: FloatArray  # d at grid[k] (NaN for k = -1)
    d1: FloatArray  # d at grid[k + 1] (NaN for k = n_cells)
    rate0: FloatArray  # ḋ at grid[k] (NaN for k = -1 or n_cells)
    rate1: FloatArray  # ḋ at grid[k + 1] (likewise)
    # cells below the mask at both ends that could hide a pass of min_pass_s
    cell_sat: IntArray
    cell_st: IntArray
    cell_k: IntArray
    cell_d0: FloatArray
    cell_d1: FloatArray
    cell_rate0: FloatArray
    cell_rate1: FloatArray
    # samples above the mask and their sin(elevation)
    up_sat: IntArray
    up_st: IntArray
    up_k: IntArray
    up_sin_el: FloatArray
    speed_bound: FloatArray  # V per satellite, raised to the fastest speed sampled


def _coarse_scan(sky: _Sky, grid_s: FloatArray, min_pass_s: float, block_bytes: int) -> _Scan:
    """Step 1 over blocks of satellites × times. In each block, ``up`` (height above each
    station's horizontal plane) for every sample comes from one matrix product; d <= up·cos(mask)
    for a mask >= 0, so a sample with up·cos(mask) < -reach is below the mask and too far from it
    for its cell to hide a pass: only the others ("near", ~10% for LEO) get the full geometry.
    The rest of the scan works on the near samples alone."""
    n_st, n_grid = sky.n_st, len(grid_s)
    n_cells = n_grid - 1
    cell_s = grid_s[1] - grid_s[0]
    bytes_per_sat_time = 8 * (16 + 8 * n_st)  # float64 temporaries, generously
    sats_per_block = max(1, block_bytes // (bytes_per_sat_time * n_grid))
    times_per_block = max(2, min(n_grid, block_bytes // (bytes_per_sat_time * sats_per_block)))
    jd, fr = sky.times(grid_s)
    theta = gmst_rad(jd, fr)
    cos_g, sin_g = np.cos(theta), np.sin(theta)
    ups_t = np.ascontiguousarray(sky.ups.T)
    # A far sample has d <= up·cos(mask) < -reach; for a negative mask that bound fails, so
    # every sample is near.
    far_ok = sky.sin_m >= 0.0
    hiding = cell_s > min_pass_s
    speed = sky.speed_bound.copy()
    edges: list[list[Any]] = [[] for _ in range(8)]  # sat, st, k, rising, d0, d1, rate0, rate1
    cells: list[list[Any]] = [[] for _ in range(7)]  # sat, st, k, d0, d1, rate0, rate1
    highs: list[list[Any]] = [[] for _ in range(4)]  # sat, st, k, sin(el)

    def add(into: list[list[Any]], *columns: Any) -> None:
        n = len(columns[0])
        for column, values in zip(into, columns, strict=True):
            column.append(values if isinstance(values, np.ndarray) else np.full(n, values))

    for s0 in range(0, sky.n_sats, sats_per_block):
        s1 = min(s0 + sats_per_block, sky.n_sats)
        array = SatrecArray(sky.satrecs[s0:s1])
        k0 = 0
        while True:
            k1 = min(k0 + times_per_block - 1, n_cells)  # blocks share their edge sample
            m = k1 - k0 + 1
            error, r_teme, v_teme = array.sgp4(jd[k0 : k1 + 1], fr[k0 : k1 + 1])
            r_teme = np.asarray(r_teme)
            v_teme = np.asarray(v_teme)
            failed = np.asarray(error) != 0
            if failed.any():
                r_teme[failed] = np.nan
                v_teme[failed] = np.nan
            # Earth-fixed speed |v - ω×r|, rotation-invariant, so from TEME directly
            vx = v_teme[..., 0] + EARTH_ROTATION_RAD_S * r_teme[..., 1]
            vy = v_teme[..., 1] - EARTH_ROTATION_RAD_S * r_teme[..., 0]
            seen = np.sqrt(np.nanmax(vx * vx + vy * vy + v_teme[..., 2] ** 2, axis=1, initial=0.0))
            speed[s0:s1] = np.maximum(speed[s0:s1], _SPEED_MARGIN * seen)
            c, s = cos_g[k0 : k1 + 1], sin_g[k0 : k1 + 1]
            r = np.empty_like(r_teme)
            r[..., 0] = c * r_teme[..., 0] + s * r_teme[..., 1]
            r[..., 1] = c * r_teme[..., 1] - s * r_teme[..., 0]
            r[..., 2] = r_teme[..., 2]
            r = r.reshape(-1, 3)
            up_all = r @ ups_t  # [S·m, n_st]
            up_all -= sky.site_up
            reach = speed[s0:s1] * (cell_s - min_pass_s) + _DISTANCE_SLACK_KM if hiding else None
            limit = (0.0 if reach is None else float(reach.max())) + _FAR_SLACK_KM
            near_at = np.flatnonzero(
                (up_all >= np.where(far_ok, -limit / sky.cos_m, -np.inf)).reshape(-1)
            )  # NaN (SGP4 failed) -> far: below the mask, as d = NaN counts
            row, st = np.divmod(near_at, n_st)
            up = up_all.reshape(-1)[near_at]
            rho = r[row] - sky.sites[st]
            rho2 = np.einsum("ik,ik->i", rho, rho)
            h = np.sqrt(np.maximum(rho2 - up * up, 0.0))
            d = up * sky.cos_m[st] - h * sky.sin_m[st]
            sat, j = np.divmod(row, m)
            vis = d >= 0.0
            # Neighbours in time: the same (satellite, station) one sample later is near_at +
            # n_st, if near; `nxt` is its position in the near list (or -1).
            nxt = np.searchsorted(near_at, near_at + n_st)
            nxt[nxt >= len(near_at)] = 0
            nxt = np.where((near_at[nxt] == near_at + n_st) & (j < m - 1), nxt, -1)
            nxt_vis = np.where(nxt >= 0, vis[nxt], False)
            prv = np.full(len(near_at), -1)
            prv[nxt[nxt >= 0]] = np.flatnonzero(nxt >= 0)
            prv_vis = np.where(prv >= 0, vis[prv], False)
            # sign changes: a visible sample whose next (previous) sample in the block is not
            falls = np.flatnonzero(vis & ~nxt_vis & (j < m - 1))
            rises = np.flatnonzero(vis & ~prv_vis & (j > 0))
            at_end = np.concatenate([falls, rises])  # the visible end of each cell
            cell_j = np.concatenate([j[falls], j[rises] - 1])
            e_sat, e_st = sat[at_end], st[at_end]
            # ḋ (and d) at both ends of these cells, for the refinement's starting points
            ends_j = np.concatenate([cell_j, cell_j + 1])
            rows = np.concatenate([e_sat, e_sat]) * m + ends_j
            tt = np.concatenate([e_st, e_st])
            look = sky.geometry(tt, r[rows], _rotate_v(r_teme, v_teme, rows, c[ends_j], s[ends_j]))
            rate = sky.d_rate(tt, look)
            n_e = len(at_end)
            add(
                edges,
                e_sat + s0,
                e_st,
                cell_j + k0,
                np.arange(n_e) >= len(falls),
                look.d[:n_e],
                look.d[n_e:],
                rate[:n_e],
                rate[n_e:],
            )
            if k0 == 0:
                first = np.flatnonzero(vis & (j == 0))
                add(edges, sat[first] + s0, st[first], -1, True, np.nan, d[first], np.nan, np.nan)
            if k1 == n_cells:
                last = np.flatnonzero(vis & (j == m - 1))
                add(
                    edges, sat[last] + s0, st[last], n_cells, False, d[last], np.nan, np.nan, np.nan
                )
            if reach is not None:
                # both ends near (a far end is too far) and below, and within reach
                a = np.flatnonzero(nxt >= 0)
                b = nxt[a]
                a = a[(d[a] < 0.0) & (d[b] < 0.0) & (d[a] + d[b] >= -reach[sat[a]])]
                b = nxt[a]
                # ḋ at both ends, for the tighter test with the acceleration bound
                ends_j = np.concatenate([j[a], j[b]])
                rows = np.concatenate([row[a], row[b]])
                tt = np.concatenate([st[a], st[a]])
                look = sky.geometry(
                    tt, r[rows], _rotate_v(r_teme, v_teme, rows, c[ends_j], s[ends_j])
                )
                rate = sky.d_rate(tt, look)
                g0, g1 = rate[: len(a)], rate[len(a) :]
                c_sat = sat[a] + s0
                t0 = grid_s[j[a] + k0]
                lo, hi = sky.window(c_sat, st[a], t0, t0 + cell_s, d[a], d[b], g0, g1, speed[c_sat])
                ok = hi - lo >= min_pass_s
                a, b = a[ok], b[ok]
                add(cells, c_sat[ok], st[a], j[a] + k0, d[a], d[b], g0[ok], g1[ok])
            p_sat, p_st, p_j, p_sin = _run_peaks(
                sat[vis], st[vis], j[vis], up[vis] / np.sqrt(rho2[vis]), m, n_st
            )
            add(highs, p_sat + s0, p_st, p_j + k0, p_sin)
            if k1 == n_cells:
                break
            k0 = k1

    def cat(columns: list[list[Any]], dtypes: str) -> list[Any]:
        return [
            np.concatenate(c).astype(dt, copy=False) if c else np.zeros(0, dt)
            for c, dt in zip(columns, dtypes, strict=True)
        ]

    e_sat, e_st, e_k, e_rising, e_d0, e_d1, e_rate0, e_rate1 = cat(edges, "qqq?dddd")
    c_sat, c_st, c_k, c_d0, c_d1, c_rate0, c_rate1 = cat(cells, "qqqdddd")
    h_sat, h_st, h_k, h_sin = cat(highs, "qqqd")
    return _Scan(
        e_sat,
        e_st,
        e_k,
        e_rising,
        e_d0,
        e_d1,
        e_rate0,
        e_rate1,
        c_sat,
        c_st,
        c_k,
        c_d0,
        c_d1,
        c_rate0,
        c_rate1,
        h_sat,
        h_st,
        h_k,
        h_sin,
        speed,
    )


def _rotate_v(
    r_teme: FloatArray, v_teme: FloatArray, rows: IntArray, c: FloatArray, s: FloatArray
) -> FloatArray:
    """ECEF velocity at ``rows`` of a block's [S·m, 3] TEME states, GMST cos/sin given."""
    r = r_teme.reshape(-1, 3)[rows]
    v = v_teme.reshape(-1, 3)[rows]
    out = np.empty_like(v)
    out[:, 0] = c * v[:, 0] + s * v[:, 1] + EARTH_ROTATION_RAD_S * (c * r[:, 1] - s * r[:, 0])
    out[:, 1] = c * v[:, 1] - s * v[:, 0] - EARTH_ROTATION_RAD_S * (c * r[:, 0] + s * r[:, 1])
    out[:, 2] = v[:, 2]
    return out


def _run_peaks(
    sat: IntArray, st: IntArray, j: IntArray, sin_el: FloatArray, m: int, n_st: int
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """The highest sample of each run of consecutive samples above the mask in one block (of
    m samples): satellite, station, sample and sin(elevation). A pass's highest sample is the
    highest of its runs' (one per block it spans). Keeping only these, not every sample above
    the mask, matters for GEO: up all day long."""
    if not len(sat):
        return sat, st, j, sin_el
    key = (sat * n_st + st) * m + j
    order = np.argsort(key)
    key, sat, st, j, sin_el = key[order], sat[order], st[order], j[order], sin_el[order]
    is_start = (np.diff(key, prepend=-2) != 1) | (j == 0)
    peak = np.maximum.reduceat(sin_el, np.flatnonzero(is_start))
    run = np.cumsum(is_start) - 1
    at = np.flatnonzero(sin_el >= peak[run])
    first = at[np.diff(run[at], prepend=-1) != 0]
    return sat[first], st[first], j[first], sin_el[first]


# ---------------------------------------------------------------- 2. passes, hidden ones


class _Brackets(NamedTuple):
    """Intervals [lo, hi] (offsets, s) holding a crossing of the mask: d at both ends (one
    >= 0, the other < 0 or NaN) and ḋ there (NaN where not known)."""

    lo: FloatArray
    hi: FloatArray
    d_lo: FloatArray
    d_hi: FloatArray
    rate_lo: FloatArray
    rate_hi: FloatArray

    def take(self, index: IntArray) -> _Brackets:
        return _Brackets(*(a[index] for a in self))

    def join(self, other: _Brackets) -> _Brackets:
        return _Brackets(*(np.concatenate([a, b]) for a, b in zip(self, other, strict=True)))


class _Passes(NamedTuple):
    """Passes before refinement: AOS and LOS brackets (unused where cut) and the pass's
    highest known sample (its time and elevation)."""

    sat: IntArray
    st: IntArray
    aos_cut: BoolArray
    los_cut: BoolArray
    rise: _Brackets
    set: _Brackets
    best_t: FloatArray
    best_el: FloatArray


def _assemble(sky: _Sky, scan: _Scan, grid_s: FloatArray, min_pass_s: float) -> _Passes:
    n_cells = len(grid_s) - 1
    span = n_cells + 2
    # Each (satellite, station) has rise, set, rise, set, ... in time order.
    order = np.argsort((scan.sat * sky.n_st + scan.st) * span + (scan.k + 1))
    rises, sets = order[0::2], order[1::2]
    if not (
        len(rises) == len(sets) and scan.rising[rises].all() and not scan.rising[sets].any()
    ):  # pragma: no cover - a bug
        raise AssertionError("pass edges do not alternate rise/set")
    sat, st = scan.sat[rises], scan.st[rises]
    k_rise, k_set = scan.k[rises], scan.k[sets]
    edge = np.append(grid_s, grid_s[-1])  # grid[k + 1] for k = n_cells is never used
    # Highest grid sample of each pass: samples above the mask belong to the pass of their
    # (satellite, station) with the last rise before them.
    pass_key = (sat * sky.n_st + st) * span + (k_rise + 1)
    sample_key = (scan.up_sat * sky.n_st + scan.up_st) * span + scan.up_k
    owner = np.searchsorted(pass_key, sample_key, side="right") - 1
    by_height = np.lexsort((-scan.up_sin_el, owner))
    best = by_height[np.flatnonzero(np.diff(owner[by_height], prepend=-1))]  # first of each
    if len(best) != len(sat):  # pragma: no cover - a bug
        raise AssertionError("a pass without a sample above the mask")
    coarse = _Passes(
        sat,
        st,
        k_rise < 0,
        k_set >= n_cells,
        _Brackets(
            grid_s[np.maximum(k_rise, 0)],
            edge[k_rise + 1],
            scan.d0[rises],
            scan.d1[rises],
            scan.rate0[rises],
            scan.rate1[rises],
        ),
        _Brackets(
            grid_s[k_set],
            edge[k_set + 1],
            scan.d0[sets],
            scan.d1[sets],
            scan.rate0[sets],
            scan.rate1[sets],
        ),
        grid_s[scan.up_k[best]],
        np.degrees(np.arcsin(np.clip(scan.up_sin_el[best], -1.0, 1.0))),
    )
    hidden = _hidden_passes(sky, scan, grid_s, min_pass_s)
    return _Passes(
        np.concatenate([coarse.sat, hidden.sat]),
        np.concatenate([coarse.st, hidden.st]),
        np.concatenate([coarse.aos_cut, hidden.aos_cut]),
        np.concatenate([coarse.los_cut, hidden.los_cut]),
        coarse.rise.join(hidden.rise),
        coarse.set.join(hidden.set),
        np.concatenate([coarse.best_t, hidden.best_t]),
        np.concatenate([coarse.best_el, hidden.best_el]),
    )


def _hidden_passes(sky: _Sky, scan: _Scan, grid_s: FloatArray, min_pass_s: float) -> _Passes:
    """Passes strictly inside a cell whose ends are below the mask (step 2 of the method)."""
    sat, st = scan.cell_sat, scan.cell_st
    a, b = grid_s[scan.cell_k], grid_s[scan.cell_k + 1]
    da, db = scan.cell_d0, scan.cell_d1
    ga, gb = scan.cell_rate0, scan.cell_rate1
    found: list[tuple[Any, ...]] = []
    for _ in range(_MAX_ROUNDS):
        if not len(sat):
            break
        # The middle of the window where the satellite can be inside the cone (Sky.window);
        # it halves that window each round.
        lo, hi = sky.window(sat, st, a, b, da, db, ga, gb, scan.speed_bound[sat])
        mid = np.clip(0.5 * (lo + hi), a, b)
        look = sky.look(sat, st, mid)
        dm, gm = look.d, sky.d_rate(st, look)
        hit = dm >= 0.0
        if hit.any():
            sin_el = look.up[hit] / np.hypot(look.up[hit], look.horizontal[hit])
            found.append(
                (sat[hit], st[hit], a[hit], mid[hit], b[hit], da[hit], dm[hit], db[hit],
                 ga[hit], gm[hit], gb[hit], sin_el)
            )  # fmt: skip
        miss = ~hit
        sat, st = np.tile(sat[miss], 2), np.tile(st[miss], 2)
        a, b = np.concatenate([a[miss], mid[miss]]), np.concatenate([mid[miss], b[miss]])
        da, db = np.concatenate([da[miss], dm[miss]]), np.concatenate([dm[miss], db[miss]])
        ga, gb = np.concatenate([ga[miss], gm[miss]]), np.concatenate([gm[miss], gb[miss]])
        lo, hi = sky.window(sat, st, a, b, da, db, ga, gb, scan.speed_bound[sat])
        keep = hi - lo >= min_pass_s  # NaN -> False
        sat, st, a, b = sat[keep], st[keep], a[keep], b[keep]
        da, db, ga, gb = da[keep], db[keep], ga[keep], gb[keep]
    else:  # pragma: no cover - the cells halve each round
        raise AssertionError("hidden-pass search did not end")
    if found:
        cols = [np.concatenate(c) for c in zip(*found, strict=True)]
    else:
        cols = [np.zeros(0)] * 12
    h_sat, h_st, h_a, h_m, h_b, h_da, h_dm, h_db, h_ga, h_gm, h_gb, h_sin = cols
    none = np.zeros(len(h_sat), dtype=np.bool_)
    return _Passes(
        h_sat.astype(np.int64),
        h_st.astype(np.int64),
        none,
        none,
        _Brackets(h_a, h_m, h_da, h_dm, h_ga, h_gm),
        _Brackets(h_m, h_b, h_dm, h_db, h_gm, h_gb),
        h_m,
        np.degrees(np.arcsin(np.clip(h_sin, -1.0, 1.0))),
    )


# ---------------------------------------------------------------- 3. refinement


def _crossings(sky: _Sky, sat: IntArray, st: IntArray, b: _Brackets) -> FloatArray:
    """Where d crosses zero in each bracket: Newton's method from the root of the cubic Hermite
    interpolant of d (regula falsi where ḋ at the ends is unknown), bisecting whenever Newton
    would leave the bracket; each evaluation replaces the bracket end on its side of the mask.
    Stops when the Newton step is below _EDGE_TOLERANCE_S and applies it."""
    lo, hi = b.lo.copy(), b.hi.copy()
    n = len(sat)
    result = np.empty(n)
    lo_up = b.d_lo >= 0.0
    x = lo + (hi - lo) * _hermite_root(b.d_lo, b.d_hi, b.rate_lo * (hi - lo), b.rate_hi * (hi - lo))
    x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, 0.5 * (lo + hi))
    active = np.arange(n)
    for _ in range(_MAX_ROUNDS):
        if not len(active):
            break
        t = st[active]
        look = sky.look(sat[active], t, x)
        d = look.d
        with np.errstate(invalid="ignore", divide="ignore"):
            step = -d / sky.d_rate(t, look)
        same_as_lo = (d >= 0.0) == lo_up[active]
        lo_a = np.where(same_as_lo, x, lo[active])
        hi_a = np.where(same_as_lo, hi[active], x)
        newton = x + step
        inside = (newton > lo_a) & (newton < hi_a)  # NaN -> False
        done_newton = inside & (np.abs(step) < _EDGE_TOLERANCE_S)
        done_width = ~done_newton & (hi_a - lo_a < _EDGE_TOLERANCE_S)
        result[active[done_newton]] = newton[done_newton]
        result[active[done_width]] = 0.5 * (lo_a + hi_a)[done_width]
        go = ~(done_newton | done_width)
        lo[active], hi[active] = lo_a, hi_a
        x = np.where(inside, newton, 0.5 * (lo_a + hi_a))[go]
        active = active[go]
    else:  # pragma: no cover - bisection halves every bracket
        raise AssertionError("AOS/LOS refinement did not converge")
    return result


def _hermite_root(d0: FloatArray, d1: FloatArray, g0: FloatArray, g1: FloatArray) -> FloatArray:
    """A root τ in [0, 1] of the cubic with values d0, d1 and slopes g0, g1 (per unit τ) at 0
    and 1, by Newton's method from the regula-falsi point; the regula-falsi point itself where
    that fails (slopes unknown, no convergence). Only a starting point: callers check it."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        start = d0 / (d0 - d1)
        # p(τ) = d0 + g0 τ + c2 τ² + c3 τ³
        c2 = 3.0 * (d1 - d0) - 2.0 * g0 - g1
        c3 = 2.0 * (d0 - d1) + g0 + g1
        tau = start
        for _ in range(6):
            value = d0 + tau * (g0 + tau * (c2 + tau * c3))
            slope = g0 + tau * (2.0 * c2 + tau * 3.0 * c3)
            tau = np.clip(tau - value / slope, 0.0, 1.0)
        value = d0 + tau * (g0 + tau * (c2 + tau * c3))
        scale = np.maximum(np.abs(d0), np.abs(d1))
    good = np.abs(value) <= 1e-6 * scale  # NaN -> False
    result: FloatArray = np.where(good, tau, start)
    return result


def _culminations(
    sky: _Sky,
    sat: IntArray,
    st: IntArray,
    aos_s: FloatArray,
    los_s: FloatArray,
    start_s: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Time and elevation (deg) of a (local) maximum of elevation within [AOS, LOS] of each
    pass (NaN elevation where SGP4 fails): Newton's method on the rate of s = sin(el) from
    ``start_s``. Each evaluation moves the
    bracket end [lo, hi] on the side the rate points away from; a Newton step that would leave
    the bracket (or where s is not concave) is replaced by the bracket end it points to, if not
    yet evaluated (a maximum at a window edge), or else by bisection."""
    n = len(sat)
    tca, el_max = np.empty(n), np.empty(n)
    lo, hi = aos_s.copy(), los_s.copy()
    lo_seen, hi_seen = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
    x = np.clip(start_s, lo, hi)
    active = np.arange(n)
    omega = EARTH_ROTATION_RAD_S
    for _ in range(_MAX_ROUNDS):
        if not len(active):
            break
        t = st[active]
        look = sky.look(sat[active], t, x)
        u = sky.ups[t]
        rho_vec, v, r = look.rho, look.v, look.r
        # Earth-fixed acceleration: gravity with J2, Coriolis and centrifugal terms.
        r2 = np.einsum("ik,ik->i", r, r)
        z2 = 5.0 * r[:, 2] ** 2 / r2
        j2 = 1.5 * _J2 * _RE_KM**2 / r2
        g = -_MU_KM3_S2 / (r2 * np.sqrt(r2))
        acc = r * (g * (1.0 + j2 * (1.0 - z2)))[:, None]
        acc[:, 2] += g * j2 * 2.0 * r[:, 2]
        acc[:, 0] += 2.0 * omega * v[:, 1] + omega * omega * r[:, 0]
        acc[:, 1] += -2.0 * omega * v[:, 0] + omega * omega * r[:, 1]
        rng = np.sqrt(look.up * look.up + look.horizontal * look.horizontal)
        s = look.up / rng
        rng_dot = np.einsum("ik,ik->i", rho_vec, v) / rng
        rng_ddot = (
            np.einsum("ik,ik->i", v, v) + np.einsum("ik,ik->i", rho_vec, acc) - rng_dot**2
        ) / rng
        s_dot = (np.einsum("ik,ik->i", v, u) - s * rng_dot) / rng
        s_ddot = (np.einsum("ik,ik->i", acc, u) - 2.0 * s_dot * rng_dot - s * rng_ddot) / rng
        rising, falling = s_dot > 0.0, s_dot < 0.0
        lo_a = np.where(rising, x, lo[active])
        hi_a = np.where(falling, x, hi[active])
        lo_seen[active] |= rising
        hi_seen[active] |= falling
        with np.errstate(invalid="ignore", divide="ignore"):
            newton = x - s_dot / s_ddot
        inside = (s_ddot < 0.0) & (newton > lo_a) & (newton < hi_a)  # NaN -> False
        # Newton inside the bracket; else an end not yet evaluated (the maximum may be there,
        # at a window edge); else bisection.
        target = np.where(
            inside,
            newton,
            np.where(
                rising & ~hi_seen[active],
                hi_a,
                np.where(falling & ~lo_seen[active], lo_a, 0.5 * (lo_a + hi_a)),
            ),
        )
        converged = inside & (np.abs(newton - x) < _TCA_TOLERANCE_S)
        done = (
            converged | (np.abs(target - x) < _TCA_TOLERANCE_S) | (hi_a - lo_a < _TCA_TOLERANCE_S)
        )
        done |= ~(rising | falling)  # at the maximum, or SGP4 failed here (NaN)
        tca[active] = np.where(converged, newton, x)
        # Where the last Newton step (< _TCA_TOLERANCE_S) is applied, s at its end from the
        # quadratic about x, s - ṡ²/(2 s̈): its error, s⃛·δ³/6 with δ < 0.01 s, is ~1e-13.
        with np.errstate(invalid="ignore", divide="ignore"):
            s_top = np.where(converged, s - 0.5 * s_dot * s_dot / s_ddot, s)
        el_max[active] = np.degrees(np.arcsin(np.clip(s_top, -1.0, 1.0)))
        lo[active], hi[active] = lo_a, hi_a
        x = target[~done]
        active = active[~done]
    else:  # pragma: no cover - bisection halves every bracket
        raise AssertionError("TCA refinement did not converge")
    return tca, el_max


# ---------------------------------------------------------------- results


def _make_passes(
    elements: Sequence[Elements],
    stations: Sequence[GroundStation],
    start: datetime,
    p: _Found,
) -> list[Pass]:
    """Pass objects sorted by (AOS, station id, satellite index); times rounded to the µs."""
    aos_us = np.rint(p.aos_s * 1e6).astype(np.int64)
    tca_us = np.rint(p.tca_s * 1e6).astype(np.int64)
    los_us = np.rint(p.los_s * 1e6).astype(np.int64)
    ids = [s.station_id for s in stations]
    rank = np.argsort(np.argsort(np.array(ids, dtype=object), kind="stable"), kind="stable")
    order = np.lexsort((p.sat, rank[p.st], aos_us))
    sat, st = p.sat[order], p.st[order]
    us = timedelta(microseconds=1)

    def column(values: list[Any], index: IntArray) -> list[Any]:
        return np.array(values, dtype=object)[index].tolist()  # type: ignore[no-any-return]

    def times(offsets_us: IntArray) -> list[datetime]:
        return list(map(start.__add__, map(us.__mul__, offsets_us[order].tolist())))

    # Millions of new objects, none in a reference cycle: the cyclic collector's passes over
    # them would take ~45% of this function's time, so it is paused here.
    collecting = gc.isenabled()
    gc.disable()
    try:
        rows = zip(
            sat.tolist(),
            column([e.norad_id for e in elements], sat),
            column([e.name for e in elements], sat),
            column([s.station_id for s in stations], st),
            times(aos_us),
            times(tca_us),
            times(los_us),
            p.max_el[order].tolist(),
            p.aos_cut[order].tolist(),
            p.los_cut[order].tolist(),
            strict=True,
        )
        # tuple.__new__ over the rows: the named tuples are made without a Python call each
        passes: list[Pass] = list(map(tuple.__new__, repeat(Pass), rows))
        return passes
    finally:
        if collecting:
            gc.enable()
