"""The project's one time module: UTC datetimes <-> integer ms since the Unix epoch (the
protocol's and the database's times) <-> split Julian dates, and Greenwich mean sidereal time.

Times cross the public API as timezone-aware ``datetime`` objects and live inside as a split
Julian date ``(jd, fr)``: ``jd`` is the Julian date of the preceding midnight (always ``x.5``) and
``fr`` the fraction of the day, the form ``sgp4`` takes. The split keeps sub-nanosecond resolution
where a single float64 Julian date keeps only ~40 µs.

Accuracy and neglected effects: UTC is used in place of UT1 (|UT1-UTC| <= 0.9 s) and leap
seconds are ignored (a datetime cannot name 23:59:60); GMST follows the IAU 1982 model and is
exact to float64 precision for the UT1 it is given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "UNIX_EPOCH",
    "as_utc",
    "gmst_rad",
    "jd_fr_from_ms",
    "jd_fr_from_utc",
    "jd_fr_offsets",
    "ms_from_utc",
    "utc_from_jd_fr",
    "utc_from_ms",
]

FloatArray = NDArray[np.float64]

_UNIX_EPOCH_JD = 2440587.5  # Julian date of 1970-01-01T00:00:00
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNIX_EPOCH = _UNIX_EPOCH
_MS_PER_DAY = 86_400_000
_ONE_MS = timedelta(milliseconds=1)
_J2000_JD = 2451545.0
_SECONDS_PER_DAY = 86400.0


def as_utc(t_utc: datetime, what: str = "time") -> datetime:
    """Return ``t_utc`` converted to UTC; a naive datetime is refused because its zone is a guess."""
    if not isinstance(t_utc, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(t_utc).__name__}")
    if t_utc.tzinfo is None or t_utc.utcoffset() is None:
        raise ValueError(
            f"{what} {t_utc.isoformat()} is a naive datetime; pass a timezone-aware UTC time, "
            "e.g. datetime(..., tzinfo=datetime.UTC)"
        )
    return t_utc.astimezone(UTC)


def jd_fr_from_utc(times_utc: datetime | Iterable[datetime]) -> tuple[FloatArray, FloatArray]:
    """Split Julian dates ``(jd, fr)`` for one time or a sequence (always 1-D arrays)."""
    items = [times_utc] if isinstance(times_utc, datetime) else list(times_utc)
    jd = np.empty(len(items), dtype=np.float64)
    fr = np.empty(len(items), dtype=np.float64)
    for i, item in enumerate(items):
        t = as_utc(item, f"times_utc[{i}]")
        delta = t - _UNIX_EPOCH
        jd[i] = _UNIX_EPOCH_JD + delta.days
        fr[i] = (delta.seconds + delta.microseconds * 1e-6) / _SECONDS_PER_DAY
    return jd, fr


def utc_from_ms(t_ms: int) -> datetime:
    """Integer ms since the Unix epoch -> an aware UTC datetime, exactly (OverflowError beyond
    the years 1..9999)."""
    return _UNIX_EPOCH + timedelta(milliseconds=t_ms)


def ms_from_utc(t_utc: datetime) -> int:
    """An aware datetime -> whole ms since the Unix epoch, to the nearest ms (exact for the
    ms-precision times of the protocol and the database)."""
    return round((t_utc - _UNIX_EPOCH) / _ONE_MS)


def jd_fr_from_ms(times_ms: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Split Julian dates of integer ms since the Unix epoch, exact to the float64 day fraction."""
    days, rest_ms = np.divmod(np.atleast_1d(np.asarray(times_ms, dtype=np.int64)), _MS_PER_DAY)
    return _UNIX_EPOCH_JD + days.astype(np.float64), rest_ms / float(_MS_PER_DAY)


def jd_fr_from_unix_s(t_unix_s: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Split Julian dates of UTC seconds since 1970 (POSIX time: leap seconds not counted, as
    in UTC datetimes); always 1-D. Whole days go to ``jd`` so ``fr`` keeps µs resolution."""
    t = np.atleast_1d(np.asarray(t_unix_s, dtype=np.float64))
    days = t / _SECONDS_PER_DAY
    whole = np.floor(days)
    return _UNIX_EPOCH_JD + whole, days - whole


def jd_fr_offsets(start_utc: datetime, offsets_s: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Split Julian dates of ``start_utc + offsets_s`` seconds, without building datetimes.

    Used for dense time grids (pass search, ground tracks) where a datetime per sample would
    dominate the run time.
    """
    (jd0,), (fr0,) = jd_fr_from_utc(start_utc)
    offsets = np.asarray(offsets_s, dtype=np.float64)
    days = fr0 + offsets / _SECONDS_PER_DAY
    whole = np.floor(days)
    return np.broadcast_to(jd0, offsets.shape) + whole, days - whole


def utc_from_jd_fr(jd: float, fr: float) -> datetime:
    """The UTC datetime (rounded to the microsecond) of one split Julian date."""
    whole_days = math.floor(jd - _UNIX_EPOCH_JD)
    rest_days = (jd - _UNIX_EPOCH_JD - whole_days) + fr
    micros = round(rest_days * _SECONDS_PER_DAY * 1e6)
    return _UNIX_EPOCH + timedelta(days=whole_days, microseconds=micros)


def gmst_rad(jd: ArrayLike, fr: ArrayLike) -> FloatArray:
    """IAU 1982 Greenwich mean sidereal time in radians, in [0, 2π), from UT1 (we pass UTC).

    GMST(s) = 67310.54841 + (876600 h + 8640184.812866 s) T + 0.093104 T² - 6.2e-6 T³, with T
    in Julian centuries of UT1 from J2000. The dominant 876600 h·T term is a whole number of days
    plus the day fraction, so it is reduced modulo one day from the split date before it can
    swamp the small terms.
    """
    jd_a = np.asarray(jd, dtype=np.float64)
    fr_a = np.asarray(fr, dtype=np.float64)
    days = (jd_a - _J2000_JD) + fr_a
    t = days / 36525.0
    whole_part = np.mod(jd_a - _J2000_JD, 1.0) + fr_a  # 876600 h·T ≡ this many days (mod 1)
    seconds = (
        67310.54841
        + _SECONDS_PER_DAY * np.mod(whole_part, 1.0)
        + (8640184.812866 + (0.093104 - 6.2e-6 * t) * t) * t
    )
    result: FloatArray = np.mod(seconds, _SECONDS_PER_DAY) * (2.0 * math.pi / _SECONDS_PER_DAY)
    return result
