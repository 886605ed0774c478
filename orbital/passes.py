"""Visibility passes of many satellites over many ground stations.

Method: a vectorised coarse scan of elevation minus mask, f(t), on a uniform grid over every
satellite × station × time (in time chunks, to bound memory), then per-pass refinement, batched
over all passes: bisection of AOS and LOS to 0.01 s and golden-section search of the elevation
maximum (TCA) to 0.01 s.

Guarantee (``min_pass_s``): the grid includes both window edges and its step is
duration / ceil(duration / min_pass_s) <= min_pass_s. A pass is an interval where f >= 0; if
its part inside the window lasts at least ``min_pass_s`` it contains a grid point, so it is found
and then refined. Shorter passes may be missed. Two passes of one satellite over one station are
separated by most of an orbit, so a gap shorter than the step cannot merge two passes.

Accuracy: AOS/LOS/TCA times are exact to ~0.01 s for the SGP4 model; the model itself (TLE
errors of ~1 km, see ``orbital.propagate``) and the neglected effects in ``orbital.frames`` and
``orbital.stations`` (no refraction: a real AOS at a 0° mask comes ~5-15 s earlier) dominate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sgp4.api import SatrecArray  # type: ignore[import-untyped]

from .elements import Elements
from .frames import teme_to_ecef_position
from .stations import GroundStation, elevations_deg
from .timescale import as_utc, jd_fr_offsets

__all__ = ["Pass", "find_passes"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_TIME_TOLERANCE_S = 0.01
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass of satellite ``sat_index`` (its position in the input list) over a station.

    ``aos_cut``/``los_cut`` mark a pass already in progress at the window start / still in
    progress at its end; the cut time is then the window edge.
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
) -> list[Pass]:
    """Every pass in [from_utc, to_utc] lasting at least ``min_pass_s`` (see module docstring),
    sorted by AOS. ``min_el_deg`` overrides every station's own mask when given."""
    start = as_utc(from_utc, "from_utc")
    end = as_utc(to_utc, "to_utc")
    if end <= start:
        raise ValueError(f"to_utc {end.isoformat()} must be after from_utc {start.isoformat()}")
    if not min_pass_s > 0.0:
        raise ValueError(f"min_pass_s must be positive, got {min_pass_s}")
    if min_el_deg is not None and not -90.0 <= min_el_deg < 90.0:
        raise ValueError(f"min_el_deg {min_el_deg} is outside [-90, 90)")
    if not elements or not stations:
        return []
    duration_s = (end - start).total_seconds()
    n_steps = max(1, math.ceil(duration_s / min_pass_s))
    grid_s = np.linspace(0.0, duration_s, n_steps + 1)
    masks = np.array([s.min_el_deg if min_el_deg is None else min_el_deg for s in stations])
    satrecs = [e.satrec() for e in elements]
    f = _Margin(satrecs, stations, masks, start)

    sat, st, k_rise, k_set = _coarse_scan(f, SatrecArray(satrecs), grid_s, max_chunk_bytes)
    n_last = len(grid_s) - 1
    aos_cut, los_cut = k_rise < 0, k_set >= n_last
    # Refine AOS and LOS brackets [grid[k], grid[k+1]] together, skipping cut edges.
    rise_i, set_i = np.flatnonzero(~aos_cut), np.flatnonzero(~los_cut)
    edges = _bisect(
        f,
        np.concatenate([sat[rise_i], sat[set_i]]),
        np.concatenate([st[rise_i], st[set_i]]),
        np.concatenate([grid_s[k_rise[rise_i]], grid_s[k_set[set_i]]]),
        np.concatenate([grid_s[k_rise[rise_i] + 1], grid_s[k_set[set_i] + 1]]),
        np.concatenate([np.ones(len(rise_i), bool), np.zeros(len(set_i), bool)]),
    )
    aos_s = np.zeros(len(sat))
    los_s = np.full(len(sat), duration_s)
    aos_s[rise_i] = edges[: len(rise_i)]
    los_s[set_i] = edges[len(rise_i) :]
    tca_s, max_f = _maximise(
        f, sat, st, grid_s, k_rise + 1, np.minimum(k_set, n_last), aos_s, los_s
    )

    def at(offset_s: float) -> datetime:
        return start + timedelta(seconds=round(float(offset_s), 6))

    found = []
    for i in range(len(sat)):
        sat_i, st_i = int(sat[i]), int(st[i])
        found.append(
            Pass(
                sat_index=sat_i,
                norad_id=elements[sat_i].norad_id,
                sat_name=elements[sat_i].name,
                station_id=stations[st_i].station_id,
                aos_utc=at(aos_s[i]),
                tca_utc=at(tca_s[i]),
                los_utc=at(los_s[i]),
                max_el_deg=float(max_f[i] + masks[st_i]),
                aos_cut=bool(aos_cut[i]),
                los_cut=bool(los_cut[i]),
            )
        )
    found.sort(key=lambda p: (p.aos_utc, p.station_id, p.sat_index))
    return found


class _Margin:
    """f = elevation - mask for (satellite, station, offset-from-start) triples, batched: one
    ``sgp4_array`` call per satellite involved. NaN where SGP4 fails (counts as below mask)."""

    def __init__(
        self,
        satrecs: list[Any],
        stations: Sequence[GroundStation],
        masks: FloatArray,
        start: datetime,
    ) -> None:
        self.satrecs = satrecs
        self.stations = stations
        self.masks = masks
        self.start = start
        self.sites = np.array([s.r_ecef_km for s in stations])
        self.ups = np.array([s.enu_basis()[2] for s in stations])

    def __call__(self, sat: IntArray, st: IntArray, offset_s: FloatArray) -> FloatArray:
        if len(sat) == 0:
            return np.zeros(0)
        jd, fr = jd_fr_offsets(self.start, offset_s)
        r_teme = np.full((len(sat), 3), np.nan)
        order = np.argsort(sat, kind="stable")
        sats, first = np.unique(sat[order], return_index=True)
        for s, group in zip(sats, np.split(order, first[1:]), strict=True):
            error, r, _ = self.satrecs[s].sgp4_array(jd[group], fr[group])
            r_teme[group] = np.where((np.asarray(error) == 0)[:, None], r, np.nan)
        rho = teme_to_ecef_position(r_teme, jd, fr) - self.sites[st]
        up = np.einsum("mk,mk->m", rho, self.ups[st])
        horizontal = np.sqrt(np.maximum(np.einsum("mk,mk->m", rho, rho) - up**2, 0.0))
        result: FloatArray = np.degrees(np.arctan2(up, horizontal)) - self.masks[st]
        return result

    def grid(self, sat_array: Any, grid_s: FloatArray) -> FloatArray:
        """f for every satellite × station at the grid offsets: [n_sats, n_stations, n_times]."""
        jd, fr = jd_fr_offsets(self.start, grid_s)
        _, r_teme, _ = sat_array.sgp4(jd, fr)  # NaN rows where SGP4 fails
        el = elevations_deg(self.stations, teme_to_ecef_position(r_teme, jd, fr))
        result: FloatArray = el - self.masks[:, None]
        return result


def _coarse_scan(
    f: _Margin, sat_array: Any, grid_s: FloatArray, max_chunk_bytes: int
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Passes as (satellite, station, k_rise, k_set): f < 0 at grid[k_rise] and >= 0 at
    grid[k_rise + 1]; >= 0 at grid[k_set] and < 0 at grid[k_set + 1]. k_rise = -1 and
    k_set = last index mark passes cut by the window edges."""
    n_sats, n_st, n_last = len(f.satrecs), len(f.stations), len(grid_s) - 1
    bytes_per_sample = 80 * n_sats * (n_st + 1)  # float64 temporaries per time sample, generously
    chunk = max(2, max_chunk_bytes // bytes_per_sample)
    parts: list[tuple[IntArray, IntArray, IntArray, NDArray[np.bool_]]] = []
    k0 = 0
    while k0 < n_last:
        k1 = min(k0 + chunk - 1, n_last)  # chunks share their edge sample
        up = f.grid(sat_array, grid_s[k0 : k1 + 1]) >= 0.0  # NaN -> False
        if k0 == 0:
            s0, t0 = np.nonzero(up[:, :, 0])
            parts.append((s0, t0, np.full(len(s0), -1), np.ones(len(s0), bool)))
        s, t, j = np.nonzero(up[:, :, :-1] != up[:, :, 1:])
        parts.append((s, t, k0 + j, up[s, t, j + 1]))
        if k1 == n_last:
            s1, t1 = np.nonzero(up[:, :, -1])
            parts.append((s1, t1, np.full(len(s1), n_last), np.zeros(len(s1), bool)))
        k0 = k1
    sat = np.concatenate([p[0] for p in parts]).astype(np.int64)
    st = np.concatenate([p[1] for p in parts]).astype(np.int64)
    k = np.concatenate([p[2] for p in parts]).astype(np.int64)
    rising = np.concatenate([p[3] for p in parts])
    # Each (satellite, station) now has rise, set, rise, set, ... in time order.
    order = np.lexsort((k, st, sat))
    rises, sets = order[0::2], order[1::2]
    if not (rising[rises].all() and not rising[sets].any()):  # pragma: no cover - a bug
        raise AssertionError("pass edges do not alternate rise/set")
    return sat[rises], st[rises], k[rises], k[sets]


def _bisect(
    f: _Margin,
    sat: IntArray,
    st: IntArray,
    lo: FloatArray,
    hi: FloatArray,
    rising: NDArray[np.bool_],
) -> FloatArray:
    """Where f crosses zero in each [lo, hi] (upward if ``rising``), to _TIME_TOLERANCE_S."""
    lo, hi = lo.copy(), hi.copy()
    while len(lo) and np.max(hi - lo) > _TIME_TOLERANCE_S:
        mid = 0.5 * (lo + hi)
        up = f(sat, st, mid) >= 0.0
        moves_hi = up == rising  # the crossing lies at or before mid
        hi = np.where(moves_hi, mid, hi)
        lo = np.where(moves_hi, lo, mid)
    result: FloatArray = 0.5 * (lo + hi)
    return result


def _maximise(
    f: _Margin,
    sat: IntArray,
    st: IntArray,
    grid_s: FloatArray,
    k_first: IntArray,
    k_last: IntArray,
    aos_s: FloatArray,
    los_s: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Time and value of each pass's maximum of f: best grid sample, then golden-section search
    within one grid step either side (clipped to [AOS, LOS])."""
    n = len(sat)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    counts = k_last - k_first + 1
    owner = np.repeat(np.arange(n), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + k_first[owner]
    values = f(sat[owner], st[owner], grid_s[k])
    values = np.where(np.isnan(values), -np.inf, values)
    best = np.lexsort((-values, owner))[np.cumsum(counts) - counts]  # first = largest per pass
    t_best = grid_s[k[best]]
    step = grid_s[1] - grid_s[0]
    a = np.maximum(aos_s, t_best - step)
    b = np.minimum(los_s, t_best + step)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(sat, st, c), f(sat, st, d)
    while np.max(b - a) > _TIME_TOLERANCE_S:
        left = fc >= fd  # the maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c, d = np.where(left, b - _GOLDEN * (b - a), d), np.where(left, c, a + _GOLDEN * (b - a))
        x = np.where(left, c, d)
        fx = f(sat, st, x)
        fc, fd = np.where(left, fx, fd), np.where(left, fc, fx)
    t_mid = 0.5 * (a + b)
    f_mid = f(sat, st, t_mid)
    candidates_t = np.stack([t_mid, t_best])
    candidates_f = np.stack([np.where(np.isnan(f_mid), -np.inf, f_mid), values[best]])
    pick = np.argmax(candidates_f, axis=0)
    columns = np.arange(n)
    return candidates_t[pick, columns], candidates_f[pick, columns]
