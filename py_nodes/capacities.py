"""The satellites' memory capacities, for the ``memory_used_pct`` that limits judge.

A sample carries ``memory_used_mb``; its percentage needs the satellite's capacity. Looking it up
by every sample's id (decoded afresh from each batch) was ~12 % of the store node's time at
100,000 samples a second, yet the percentage only matters where a limit could find it beyond its
range, or for a satellite whose every sample is judged. The smallest and largest capacity noted
bound every sample's percentage, so those rows are found by column and only theirs looked up.

The bounds hold for the satellites whose capacity was noted: the owner notes every one
(``replace_all`` from the database when it starts judging, ``note`` at each creation and
checkpoint). A row looked up whose capacity is not known gets NaN (not judged) and its id goes
to ``unknown``, for the owner to read from the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from py_nodes.limits import Limit, beyond

__all__ = ["Capacities"]


class Capacities:
    def __init__(self) -> None:
        self._mb: dict[str, float] = {}
        # Bounds of every capacity noted since the last replace_all: widened, never narrowed
        # (a capacity changed or forgotten leaves them wider than needed, never wrong).
        self.min_mb = math.inf
        self.max_mb = 0.0
        self.unknown: set[str] = set()

    def __contains__(self, sat_id: object) -> bool:
        return sat_id in self._mb

    def __len__(self) -> int:
        return len(self._mb)

    def note(self, sat_id: str, capacity_mb: Any) -> None:
        """``sat_id``'s capacity (ignored unless a finite float > 0, as the contract has it)."""
        if type(capacity_mb) is float and 0.0 < capacity_mb < math.inf:
            self._mb[sat_id] = capacity_mb
            self.min_mb = min(self.min_mb, capacity_mb)
            self.max_mb = max(self.max_mb, capacity_mb)

    def replace_all(self, capacities: Mapping[str, float]) -> None:
        """Every satellite's capacity (as read from the database)."""
        self._mb, self.min_mb, self.max_mb = {}, math.inf, 0.0
        for sat_id, capacity_mb in capacities.items():
            self.note(sat_id, capacity_mb)

    def memory_used_pct(
        self,
        sat_ids: Sequence[str],
        memory_used_mb: npt.NDArray[np.float64],
        limit: Limit | None,
        judged_anyway: Callable[[str], bool] | None = None,
    ) -> npt.NDArray[np.float64]:
        """``memory_used_pct`` by row: exact for a satellite with a row that ``limit`` could find
        beyond its range with some capacity noted, or where ``judged_anyway(sat_id)``; NaN
        elsewhere (no limit can judge it there) and where the capacity is not known."""
        n = len(sat_ids)
        pct = np.full(n, np.nan)
        needed = np.zeros(n, dtype=np.bool_)
        if limit is not None and self._mb:
            hundred_mb = 100.0 * memory_used_mb
            at_most = hundred_mb / self.min_mb  # the same expression as the exact one: monotonic
            at_least = hundred_mb / self.max_mb
            needed = beyond(limit, np.minimum(at_least, at_most)) | beyond(limit, np.maximum(at_least, at_most))
        rows = np.flatnonzero(needed).tolist()
        if rows or judged_anyway is not None:
            # A row near the limit may raise an alarm whose later rows in the batch then count.
            near = {sat_ids[i] for i in rows}
            rows = [
                i for i, sat_id in enumerate(sat_ids)
                if sat_id in near or (judged_anyway is not None and judged_anyway(sat_id))
            ]  # fmt: skip
        if rows:
            capacity_mb = [self._mb.get(sat_ids[i]) for i in rows]
            if None in capacity_mb:
                self.unknown.update(sat_ids[i] for i, c in zip(rows, capacity_mb, strict=True) if c is None)
            pct[rows] = 100.0 * memory_used_mb[rows] / np.array(capacity_mb, dtype=np.float64)  # None: NaN
        return pct
