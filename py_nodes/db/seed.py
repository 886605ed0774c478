"""Development seed data: the demo constellation and the ground stations of py_nodes.ground_stations.

Seeding happens only on an empty database (no satellites and no ground stations), in one
transaction under an advisory lock, so running it again, or twice at once, adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from py_nodes.demo import demo_constellation
from py_nodes.ground_stations import DEFAULT_STATIONS
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode
from py_nodes.settings import DEFAULT_DEMO_SATELLITES

from .pool import Database
from .satellites import insert_satellite
from .stations import StationSpec, insert_station
from .values import ms_from_datetime

__all__ = ["DEMO_SATELLITES", "GROUND_STATIONS", "SeedReport", "demo_satellites", "seed"]

DEMO_SATELLITES: Final = DEFAULT_DEMO_SATELLITES  # one size, defined with the setting
_SEED_LOCK: Final = 0x5354_454C_5345_4544  # advisory lock key ("STELSEED")
ACTOR: Final = "seed"

# The stations table of py_nodes.ground_stations (the one source of truth), as database rows.
GROUND_STATIONS: Final = tuple(
    StationSpec(s.station_id, s.name, s.lat_deg, s.lon_deg, s.alt_m, s.min_el_deg)
    for s in DEFAULT_STATIONS
)


@dataclass(frozen=True, slots=True)
class SeedReport:
    satellites: int  # inserted
    ground_stations: int  # inserted
    skipped: str | None  # why nothing was inserted, or None


def demo_satellites(now_ms: int, count: int = DEMO_SATELLITES) -> list[SatState]:
    """The demo constellation of ``py_nodes.demo`` (ids ``demo-01``.., names ``Demo 01``..)
    as new satellites: nominal, full battery, empty 1 GiB memory."""
    return [
        SatState(
            sat.sat_id.encode(), sat.name.encode(), Mode.NOMINAL, 100.0, 0.0, 1024.0,
            (sat.tle_line1.encode(), sat.tle_line2.encode()), (), now_ms,
        )
        for sat in demo_constellation(count)
    ]


async def seed(db: Database, *, count: int = DEMO_SATELLITES) -> SeedReport:
    """Insert ``count`` demo satellites and the stations if the database has neither; else nothing."""
    now_ms = ms_from_datetime(datetime.now(UTC))
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SEED_LOCK,))
        row = await (
            await conn.execute("SELECT (SELECT count(*) FROM satellites), (SELECT count(*) FROM ground_stations)")
        ).fetchone()
        assert row is not None
        satellites, stations = int(row[0]), int(row[1])
        if satellites or stations:
            return SeedReport(0, 0, f"the database is not empty ({satellites} satellites, {stations} ground stations)")
        for state in demo_satellites(now_ms, count):
            await insert_satellite(conn, state, actor=ACTOR)
        for spec in GROUND_STATIONS:
            await insert_station(conn, spec, actor=ACTOR)
    return SeedReport(count, len(GROUND_STATIONS), None)
