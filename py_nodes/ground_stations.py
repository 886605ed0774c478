"""The default ground stations: real antenna sites, known by a short id (``"svalbard"``).

The ``orbital`` role starts its station registry from these (callers add or replace stations with
``put_stations``), and ``stellarops passes --station ID`` accepts these ids. Coordinates are
approximate (about 0.01°, tens of metres in height): good enough for pass prediction, where the
TLE itself is uncertain by ~1 km. Sources: the sites' Wikipedia articles and operators' pages
(KSAT, SSC, NASA, CNES, SANSA), rounded. Every mask is 5°, a common antenna minimum.
"""

from __future__ import annotations

from typing import Final

from orbital import GroundStation

__all__ = ["DEFAULT_MIN_EL_DEG", "DEFAULT_STATIONS", "default_stations"]

DEFAULT_MIN_EL_DEG: Final = 5.0

DEFAULT_STATIONS: Final[tuple[GroundStation, ...]] = (
    # KSAT SvalSat on Platåberget, Longyearbyen (78°13'47"N 15°24'28"E).
    GroundStation("svalbard", "Svalbard SvalSat", 78.2297, 15.4077, 500.0, DEFAULT_MIN_EL_DEG),
    # SSC Esrange Space Center near Kiruna (67°53'N 21°04'E).
    GroundStation("kiruna", "Kiruna Esrange", 67.8833, 21.0667, 330.0, DEFAULT_MIN_EL_DEG),
    # Fairbanks, Alaska (Alaska Satellite Facility / NOAA Gilmore Creek area).
    GroundStation("fairbanks", "Fairbanks", 64.8, -147.65, 200.0, DEFAULT_MIN_EL_DEG),
    # CNES/ESA Kourou station (Diane), French Guiana (5°15'N 52°48'W).
    GroundStation("kourou", "Kourou", 5.2514, -52.8047, 15.0, DEFAULT_MIN_EL_DEG),
    # SANSA Hartebeesthoek, South Africa (25°53'S 27°41'E).
    GroundStation("hartebeesthoek", "Hartebeesthoek", -25.89, 27.69, 1415.0, DEFAULT_MIN_EL_DEG),
    # McMurdo Ground Station, Ross Island, Antarctica (77°51'S 166°40'E).
    GroundStation("mcmurdo", "McMurdo", -77.84, 166.67, 100.0, DEFAULT_MIN_EL_DEG),
    # NASA Wallops Flight Facility, Virginia (37°56'N 75°28'W).
    GroundStation("wallops", "Wallops", 37.94, -75.46, 10.0, DEFAULT_MIN_EL_DEG),
    # Singapore (KSAT and others; the island, 1°21'N 103°49'E).
    GroundStation("singapore", "Singapore", 1.35, 103.82, 20.0, DEFAULT_MIN_EL_DEG),
)


def default_stations() -> dict[str, GroundStation]:
    """A fresh id -> station dict of the defaults (callers may change their copy)."""
    return {station.station_id: station for station in DEFAULT_STATIONS}
