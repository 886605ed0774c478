"""The ground stations of StellarOps: one table, the only one (a short id, e.g. ``"svalbard"``).

Everything that needs default stations reads them from here: the database seed
(``py_nodes.db.seed``) and ``stellarops passes --station ID`` (offline). In a running cluster the
database is the one source of station data (edited over HTTP: POST, PUT, PATCH, DELETE
/api/ground-stations): passes, the scheduler and the ``orbital`` role's station ids read it; these
defaults serve an orbital node that has no database. Coordinates are
approximate (about 0.01°, tens of metres in height): good enough for pass prediction, where the
TLE itself is uncertain by ~1 km. Sources: the sites' Wikipedia articles and operators' pages
(KSAT, SSC, NASA, SANSA, ASF), rounded. Every mask is 5°, a common antenna minimum.
"""

from __future__ import annotations

from typing import Final

from orbital import GroundStation

__all__ = ["DEFAULT_MIN_EL_DEG", "DEFAULT_STATIONS", "default_stations"]

DEFAULT_MIN_EL_DEG: Final = 5.0

DEFAULT_STATIONS: Final[tuple[GroundStation, ...]] = (
    # KSAT SvalSat on Platåberget, Longyearbyen (78°13'47"N 15°24'28"E).
    GroundStation("svalbard", "Svalbard SvalSat", 78.2297, 15.4077, 500.0, DEFAULT_MIN_EL_DEG),
    # SSC Esrange Space Center's satellite station near Kiruna (67°53'N 21°04'E).
    GroundStation("kiruna", "Kiruna Esrange", 67.8833, 21.0667, 330.0, DEFAULT_MIN_EL_DEG),
    # Alaska Satellite Facility antennas, University of Alaska Fairbanks (64°51'31"N 147°51'27"W).
    GroundStation("fairbanks", "Fairbanks ASF", 64.8587, -147.8576, 200.0, DEFAULT_MIN_EL_DEG),
    # SANSA / HartRAO Hartebeesthoek, South Africa (25°53'S 27°41'E, ~1415 m).
    GroundStation("hartebeesthoek", "Hartebeesthoek", -25.89, 27.69, 1415.0, DEFAULT_MIN_EL_DEG),
    # Singapore (KSAT and others; the island, 1°21'N 103°49'E).
    GroundStation("singapore", "Singapore", 1.35, 103.82, 20.0, DEFAULT_MIN_EL_DEG),
    # McMurdo Ground Station, Ross Island, Antarctica (77°51'S 166°40'E).
    GroundStation("mcmurdo", "McMurdo", -77.84, 166.67, 100.0, DEFAULT_MIN_EL_DEG),
    # NASA Wallops Flight Facility, Virginia (37°56'N 75°28'W).
    GroundStation("wallops", "Wallops", 37.9402, -75.4664, 10.0, DEFAULT_MIN_EL_DEG),
)


def default_stations() -> dict[str, GroundStation]:
    """A fresh id -> station dict of the defaults (callers may change their copy)."""
    return {station.station_id: station for station in DEFAULT_STATIONS}
