"""orbital: pure orbital mechanics for StellarOps (no I/O; imports nothing else from the project).

Element sets (TLE/OMM) -> SGP4 states in TEME (vectorised over satellites × times; a ``SatBatch``
prepares satellites once for repeated propagation) -> Earth-fixed frames, geodetic coordinates,
look angles, passes over ground stations, and sunlight/eclipse.
Times are timezone-aware UTC datetimes at this API and split Julian dates ``(jd, fr)`` inside.
Each module's docstring states its accuracy and what it neglects.

Errors::

    ValueError
     ├── ElementsError   malformed TLE/OMM data: .line, .column, .problem
     └── (plain)         misuse: naive datetimes, impossible constellation or window parameters
"""

from .constellation import sgp4_mean_motion_rev_day, walker_delta
from .elements import Elements, ElementsError, make_elements, parse_omm, parse_tle, tle_checksum
from .frames import (
    EARTH_ROTATION_RAD_S,
    WGS84_A_KM,
    WGS84_F,
    Geodetic,
    ecef_to_geodetic,
    footprint_half_angle_deg,
    footprint_radius_km,
    geodetic_to_ecef,
    ground_track,
    subsatellite_point,
    teme_to_ecef,
    teme_to_ecef_position,
)
from .passes import Pass, find_passes
from .propagate import SGP4_ERRORS, Propagation, SatBatch, propagate, propagate_jd
from .stations import GroundStation, LookAngles, elevations_deg, look_angles
from .sun import (
    AU_KM,
    SUN_RADIUS_KM,
    in_sunlight,
    in_sunlight_jd,
    sun_direction,
    sun_position_km,
    sunlit_fraction,
)
from .timescale import (
    as_utc,
    gmst_rad,
    jd_fr_from_unix_s,
    jd_fr_from_utc,
    jd_fr_offsets,
    utc_from_jd_fr,
)

__all__ = [
    "AU_KM",
    "EARTH_ROTATION_RAD_S",
    "SGP4_ERRORS",
    "SUN_RADIUS_KM",
    "WGS84_A_KM",
    "WGS84_F",
    "Elements",
    "ElementsError",
    "Geodetic",
    "GroundStation",
    "LookAngles",
    "Pass",
    "Propagation",
    "SatBatch",
    "as_utc",
    "ecef_to_geodetic",
    "elevations_deg",
    "find_passes",
    "footprint_half_angle_deg",
    "footprint_radius_km",
    "geodetic_to_ecef",
    "gmst_rad",
    "ground_track",
    "in_sunlight",
    "in_sunlight_jd",
    "jd_fr_from_unix_s",
    "jd_fr_from_utc",
    "jd_fr_offsets",
    "look_angles",
    "make_elements",
    "parse_omm",
    "parse_tle",
    "propagate",
    "propagate_jd",
    "sgp4_mean_motion_rev_day",
    "subsatellite_point",
    "sun_direction",
    "sun_position_km",
    "sunlit_fraction",
    "teme_to_ecef",
    "teme_to_ecef_position",
    "tle_checksum",
    "utc_from_jd_fr",
    "walker_delta",
]
