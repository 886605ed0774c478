"""SGP4 propagation of many satellites at many times in one vectorised call.

Positions and velocities are in TEME (the frame SGP4 produces), km and km/s. Accuracy is SGP4's
own: about 1 km at epoch growing by 1-3 km per day for LEO element sets, dominated by the element
set, not by this code (which reproduces Vallado's reference output to 1e-8 km). A satellite that
SGP4 cannot propagate (decayed, eccentricity out of range) is reported as data: its error code is
non-zero and its rows are NaN; nothing raises.

For repeated propagation of one set of satellites (a tick loop, a benchmark), build a
``SatBatch`` once: it holds the ``sgp4.api.SatrecArray`` (whose construction copies every
satellite's state, ~0.1 µs each) so each call pays only for the propagation itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import SGP4_ERRORS as _SGP4_ERRORS  # type: ignore[import-untyped]
from sgp4.api import SatrecArray

from .elements import Elements
from .timescale import jd_fr_from_utc, utc_from_jd_fr

__all__ = ["SGP4_ERRORS", "Propagation", "SatBatch", "propagate", "propagate_jd"]

FloatArray = NDArray[np.float64]

SGP4_ERRORS: Mapping[int, str] = dict(_SGP4_ERRORS)
"""sgp4's error codes (1-4: elements out of range; 6: decayed) and what they mean; 0 is success."""


@dataclass(frozen=True, slots=True, eq=False)
class Propagation:
    """States of n_sats satellites at n_times times (``jd``/``fr``: split Julian dates, UTC)."""

    jd: FloatArray  # [n_times]
    fr: FloatArray  # [n_times]
    r_teme_km: FloatArray  # [n_sats, n_times, 3]; NaN where error != 0
    v_teme_km_s: FloatArray  # [n_sats, n_times, 3]; NaN where error != 0
    error: NDArray[np.uint8]  # [n_sats, n_times]; sgp4 error code, 0 = success

    @property
    def ok(self) -> NDArray[np.bool_]:
        """[n_sats, n_times] True where SGP4 succeeded."""
        result: NDArray[np.bool_] = self.error == 0
        return result

    def t_utc(self) -> list[datetime]:
        """The sample times as UTC datetimes (µs resolution)."""
        return [utc_from_jd_fr(float(j), float(f)) for j, f in zip(self.jd, self.fr, strict=True)]


class SatBatch:
    """Satellites prepared once for repeated propagation: their ``sgp4.api.Satrec`` objects and
    the ``SatrecArray`` built from them.

    ``SatBatch(satellites)`` takes ``Elements`` or ``Satrec`` objects (Elements are converted
    once, here). The array holds copies, so later changes to the Satrec objects do not reach it.
    Index i of every result is ``satellites[i]``.
    """

    __slots__ = ("_array", "_satrecs")

    def __init__(self, satellites: Iterable[Elements | Any]) -> None:
        self._satrecs: tuple[Any, ...] = tuple(
            sat.satrec() if isinstance(sat, Elements) else sat for sat in satellites
        )
        self._array: Any = SatrecArray(list(self._satrecs)) if self._satrecs else None

    def __len__(self) -> int:
        return len(self._satrecs)

    def __repr__(self) -> str:
        return f"SatBatch({len(self._satrecs)} satellites)"

    @property
    def satrecs(self) -> tuple[Any, ...]:
        """The ``sgp4.api.Satrec`` objects, in input order."""
        return self._satrecs

    def propagate(self, times_utc: datetime | Sequence[datetime]) -> Propagation:
        """Propagate to timezone-aware UTC times (naive datetimes raise ValueError)."""
        jd, fr = jd_fr_from_utc(times_utc)
        return self.propagate_jd(jd, fr)

    def propagate_jd(self, jd: ArrayLike, fr: ArrayLike) -> Propagation:
        """Propagate to split Julian dates (1-D arrays): one ``SatrecArray.sgp4`` call covers
        every satellite × time pair, so the loop runs in C++."""
        jd_a = np.ascontiguousarray(np.atleast_1d(np.asarray(jd, dtype=np.float64)))
        fr_a = np.ascontiguousarray(np.atleast_1d(np.asarray(fr, dtype=np.float64)))
        if jd_a.ndim != 1 or jd_a.shape != fr_a.shape:
            raise ValueError(
                f"jd and fr must be 1-D arrays of one length, got shapes {jd_a.shape} and "
                f"{fr_a.shape}"
            )
        n_times = jd_a.shape[0]
        if self._array is None:
            empty = np.empty((0, n_times, 3), dtype=np.float64)
            return Propagation(
                jd_a, fr_a, empty, empty.copy(), np.empty((0, n_times), dtype=np.uint8)
            )
        error, r, v = self._array.sgp4(jd_a, fr_a)
        error = np.asarray(error, dtype=np.uint8)
        r = np.asarray(r, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        failed = error != 0
        if failed.any():
            r[failed] = np.nan
            v[failed] = np.nan
        return Propagation(jd_a, fr_a, r, v, error)


def propagate(
    elements: Elements | Sequence[Elements] | SatBatch, times_utc: datetime | Sequence[datetime]
) -> Propagation:
    """Propagate element sets (or a prepared ``SatBatch``) to timezone-aware UTC times (naive
    datetimes raise ValueError)."""
    jd, fr = jd_fr_from_utc(times_utc)
    if isinstance(elements, SatBatch):
        return elements.propagate_jd(jd, fr)
    items = [elements] if isinstance(elements, Elements) else list(elements)
    return propagate_jd(items, jd, fr)


def propagate_jd(
    satellites: SatBatch | Sequence[Elements | Any], jd: ArrayLike, fr: ArrayLike
) -> Propagation:
    """Propagate a ``SatBatch``, or ``Elements`` / ``sgp4.api.Satrec`` objects, to split Julian
    dates (1-D arrays).

    One ``SatrecArray.sgp4`` call covers every satellite × time pair, so the loop runs in C++.
    Given a sequence, the ``SatrecArray`` is built on every call; build a ``SatBatch`` once to
    propagate the same satellites repeatedly.
    """
    batch = satellites if isinstance(satellites, SatBatch) else SatBatch(satellites)
    return batch.propagate_jd(jd, fr)
