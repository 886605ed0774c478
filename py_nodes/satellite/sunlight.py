"""Placeholder day/night cycle: the hook the orbital issue replaces with real eclipses.

Every satellite flies a 5,400 s orbit that is sunlit 62 % of the time; its phase comes from a
stable hash of its id (crc32, the same in every process and run), so satellites do not all enter
eclipse together. Anything with the signature of ``in_sunlight`` can be passed to the sats role
instead (``SunlightFn``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Final

__all__ = ["DAYLIGHT_FRACTION", "ORBIT_PERIOD_S", "SunlightFn", "in_sunlight", "orbit_phase_s"]

ORBIT_PERIOD_S: Final = 5400.0
DAYLIGHT_FRACTION: Final = 0.62
_DAYLIGHT_S: Final = DAYLIGHT_FRACTION * ORBIT_PERIOD_S

SunlightFn = Callable[[bytes, float], bool]


def orbit_phase_s(sat_id: bytes) -> float:
    """Where in its orbit the satellite is at t = 0, in seconds after entering sunlight."""
    return zlib.crc32(sat_id) / 2**32 * ORBIT_PERIOD_S


def in_sunlight(sat_id: bytes, t_utc_s: float) -> bool:
    """True when the satellite is in sunlight at ``t_utc_s`` (seconds since the Unix epoch)."""
    return (t_utc_s + orbit_phase_s(sat_id)) % ORBIT_PERIOD_S < _DAYLIGHT_S
