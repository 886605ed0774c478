"""``TelemetryColumns``: a batch of telemetry samples held by column, one array per field.

At 100,000 satellites a second the store node handles 100,000 samples a second; as one Python
object per sample, building and judging them took more than a core. As columns, a batch is
judged against the fleet's limits with a few array operations (``py_nodes.limits``) and only the
samples that need it become Python objects one by one.

Row ``i`` of the batch is element ``i`` of every column. ``rows()`` gives the batch as
``TelemetryRow`` s (for a refused row's log, and tests); ``copy_tuples()`` gives them as the
tuples of a binary ``COPY`` of the telemetry table (``TELEMETRY_COLUMNS`` order), encoded by
column rather than a Python call per row and field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .telemetry_row import TelemetryRow

__all__ = ["TelemetryColumns"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_MS: Final = 946_684_800_000  # PostgreSQL's timestamps count µs from 2000-01-01 UTC
COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # then the tuples (no flags, no extension)
COPY_TRAILER: Final = b"\xff\xff"
# A tuple's fields after the id, big-endian: (length, value) for time, energy, memory, and the
# mode's length; the position known or NULL (length -1) three times; in_sunlight.
_FIXED: Final = np.dtype([
    ("time_len", ">i4"), ("time_us", ">i8"), ("energy_len", ">i4"), ("energy_pct", ">f8"),
    ("memory_len", ">i4"), ("memory_used_mb", ">f8"), ("mode_len", ">i4"),
])  # fmt: skip
_POSITION: Final = np.dtype([
    ("lat_len", ">i4"), ("lat_deg", ">f8"), ("lon_len", ">i4"), ("lon_deg", ">f8"), ("alt_len", ">i4"), ("alt_km", ">f8"),
])  # fmt: skip
_NO_POSITION: Final = np.full(12, 0xFF, dtype=np.uint8)  # three NULLs
_SUN: Final = np.dtype([("sun_len", ">i4"), ("in_sunlight", "u1")])


@dataclass(frozen=True, slots=True, eq=False)
class TelemetryColumns:
    """Samples by column. Positions are known or not per sample (``position_known``): where
    unknown, lat/lon/alt hold 0.0 and mean NULL."""

    satellite_id: Sequence[str]
    time_ms: npt.NDArray[np.int64]  # ms since the Unix epoch, UTC (the protocol's times)
    energy_pct: npt.NDArray[np.float64]
    memory_used_mb: npt.NDArray[np.float64]
    mode: Sequence[str]
    position_known: npt.NDArray[np.bool_]
    lat_deg: npt.NDArray[np.float64]
    lon_deg: npt.NDArray[np.float64]
    alt_km: npt.NDArray[np.float64]
    in_sunlight: npt.NDArray[np.bool_]

    def __post_init__(self) -> None:
        n = len(self.satellite_id)
        columns = (self.time_ms, self.energy_pct, self.memory_used_mb, self.mode, self.position_known,
                   self.lat_deg, self.lon_deg, self.alt_km, self.in_sunlight)  # fmt: skip
        if any(len(c) != n for c in columns):
            raise ValueError(f"columns of different lengths: {[n, *(len(c) for c in columns)]}")

    @classmethod
    def from_rows(cls, rows: Sequence[TelemetryRow]) -> TelemetryColumns:
        """Rows as columns (times to whole ms); ``ValueError`` for a row whose position is
        partly known (the three are None together or not at all)."""
        known = [r.lat_deg is not None for r in rows]
        if any((r.lon_deg is None, r.alt_km is None) != (not k, not k) for r, k in zip(rows, known, strict=True)):
            raise ValueError("lat_deg, lon_deg and alt_km must be None together")
        return cls(
            [r.satellite_id for r in rows],
            np.array([(r.time - _EPOCH) // timedelta(milliseconds=1) for r in rows], dtype=np.int64),
            np.array([r.energy_pct for r in rows], dtype=np.float64),
            np.array([r.memory_used_mb for r in rows], dtype=np.float64),
            [r.mode for r in rows],
            np.array(known, dtype=np.bool_),
            np.array([r.lat_deg or 0.0 for r in rows], dtype=np.float64),
            np.array([r.lon_deg or 0.0 for r in rows], dtype=np.float64),
            np.array([r.alt_km or 0.0 for r in rows], dtype=np.float64),
            np.array([r.in_sunlight for r in rows], dtype=np.bool_),
        )

    def __len__(self) -> int:
        return len(self.satellite_id)

    def slice(self, start: int, stop: int) -> TelemetryColumns:
        """Rows ``start`` to ``stop`` (views, not copies)."""
        return TelemetryColumns(
            self.satellite_id[start:stop], self.time_ms[start:stop], self.energy_pct[start:stop],
            self.memory_used_mb[start:stop], self.mode[start:stop], self.position_known[start:stop],
            self.lat_deg[start:stop], self.lon_deg[start:stop], self.alt_km[start:stop], self.in_sunlight[start:stop],
        )  # fmt: skip

    def rows(self) -> list[TelemetryRow]:
        """The samples as rows; samples of one time share one datetime object."""
        times: dict[int, datetime] = {}
        rows = []
        known = self.position_known.tolist()
        for sat_id, t_ms, energy, memory, mode, k, lat, lon, alt, sun in zip(
            self.satellite_id, self.time_ms.tolist(), self.energy_pct.tolist(), self.memory_used_mb.tolist(),
            self.mode, known, self.lat_deg.tolist(), self.lon_deg.tolist(), self.alt_km.tolist(),
            self.in_sunlight.tolist(), strict=True,
        ):  # fmt: skip
            time_utc = times.get(t_ms)
            if time_utc is None:
                time_utc = times[t_ms] = _EPOCH + timedelta(milliseconds=t_ms)
            if k:
                rows.append(TelemetryRow(sat_id, time_utc, energy, memory, mode, lat, lon, alt, sun))
            else:
                rows.append(TelemetryRow(sat_id, time_utc, energy, memory, mode, None, None, None, sun))
        return rows

    def copy_tuples(self) -> bytes:
        """The rows as binary ``COPY`` tuples (no signature, no trailer: ``COPY_SIGNATURE``
        goes before the first, ``COPY_TRAILER`` after the last)."""
        n = len(self)
        if n == 0:
            return b""
        ids = "".join(self.satellite_id).encode()
        id_len = np.fromiter(map(len, self.satellite_id), dtype=np.int64, count=n)
        if len(ids) != int(id_len.sum()):  # the lengths must be in bytes
            ids_b = [s.encode() for s in self.satellite_id]
            ids, id_len = b"".join(ids_b), np.fromiter(map(len, ids_b), dtype=np.int64, count=n)
        modes = [m.encode() for m in self.mode]
        mode_len = np.fromiter(map(len, modes), dtype=np.int64, count=n)
        known = np.asarray(self.position_known, dtype=np.bool_)
        row_len = 2 + 4 + id_len + _FIXED.itemsize + mode_len + np.where(known, _POSITION.itemsize, 12) + _SUN.itemsize
        start = np.cumsum(row_len) - row_len
        out = np.empty(int(start[-1] + row_len[-1]), dtype=np.uint8)

        head = np.empty(n, dtype=np.dtype([("n", ">i2"), ("id_len", ">i4")]))
        head["n"], head["id_len"] = 9, id_len
        _put(out, start, head)
        at = start + 6
        _scatter(out, at, np.frombuffer(ids, dtype=np.uint8), id_len)
        at += id_len
        fixed = np.empty(n, dtype=_FIXED)
        fixed["time_len"], fixed["energy_len"], fixed["memory_len"] = 8, 8, 8
        fixed["time_us"] = (self.time_ms - _PG_EPOCH_MS) * 1000
        fixed["energy_pct"], fixed["memory_used_mb"], fixed["mode_len"] = self.energy_pct, self.memory_used_mb, mode_len
        _put(out, at, fixed)
        at += _FIXED.itemsize
        _scatter(out, at, np.frombuffer(b"".join(modes), dtype=np.uint8), mode_len)
        at += mode_len
        position = np.empty(int(known.sum()), dtype=_POSITION)
        position["lat_len"], position["lon_len"], position["alt_len"] = 8, 8, 8
        position["lat_deg"], position["lon_deg"], position["alt_km"] = (
            self.lat_deg[known], self.lon_deg[known], self.alt_km[known]
        )
        _put(out, at[known], position)
        unknown = ~known
        _put(out, at[unknown], np.broadcast_to(_NO_POSITION, (int(unknown.sum()), 12)))
        at += np.where(known, _POSITION.itemsize, 12)
        sun = np.empty(n, dtype=_SUN)
        sun["sun_len"], sun["in_sunlight"] = 1, self.in_sunlight
        _put(out, at, sun)
        return out.tobytes()


def _put(out: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], records: npt.NDArray[Any]) -> None:
    """Record ``i`` (fixed size) into ``out`` from offset ``at[i]``."""
    if len(at) == 0:
        return
    raw = np.ascontiguousarray(records).view(np.uint8).reshape(len(at), -1)
    out[(at[:, None] + np.arange(raw.shape[1])).ravel()] = raw.ravel()


def _scatter(out: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], flat: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]) -> None:
    """Piece ``i`` of ``flat`` (``lengths[i]`` bytes, the pieces one after the other) into
    ``out`` from offset ``at[i]``."""
    source_start = np.cumsum(lengths) - lengths
    out[np.repeat(at - source_start, lengths) + np.arange(flat.size)] = flat
