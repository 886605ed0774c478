"""The demo constellation that ``stellarops up`` creates (and the database seed stores).

``demo-01`` .. ``demo-NN`` fly a Walker-delta constellation at 550 km and 53°, like the large LEO
shells in service, so the dashboard has real orbits to draw. The epoch is fixed: the TLEs, and so
the positions at any instant, are the same on every machine and every run (with B* = 0, SGP4
propagates them years ahead without decay).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, NamedTuple

from orbital import walker_delta

__all__ = ["DEMO_ALT_KM", "DEMO_EPOCH_UTC", "DEMO_INC_DEG", "DemoSatellite", "demo_constellation"]

DEMO_EPOCH_UTC: Final = datetime(2026, 1, 1, tzinfo=UTC)
DEMO_ALT_KM: Final = 550.0
DEMO_INC_DEG: Final = 53.0
_MAX_PLANES: Final = 6
_FIRST_NORAD_ID: Final = 90001


class DemoSatellite(NamedTuple):
    sat_id: str
    name: str
    tle_line1: str
    tle_line2: str


def demo_constellation(count: int) -> list[DemoSatellite]:
    """``count`` satellites in as many planes as divide it evenly (at most 6), phasing 1."""
    if count <= 0:
        return []
    planes = max(p for p in range(1, _MAX_PLANES + 1) if count % p == 0)
    elements = walker_delta(
        count, planes, 1 % planes, DEMO_ALT_KM, DEMO_INC_DEG, DEMO_EPOCH_UTC,
        name_prefix="DEMO", first_norad_id=_FIRST_NORAD_ID,
    )  # fmt: skip
    return [
        DemoSatellite(f"demo-{i:02d}", f"Demo {i:02d}", e.line1, e.line2)
        for i, e in enumerate(elements, start=1)
    ]
