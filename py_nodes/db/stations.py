"""Ground stations: where passes are computed for and downlinks planned. Changes are audited."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import class_row

from orbital import GroundStation

from .audit import append_audit
from .errors import NotFound, ValidationError
from .pool import Connection, Database
from .values import check_number, check_text, refused

__all__ = ["Station", "StationSpec", "Stations", "insert_station"]

_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_COLUMNS: Final = "id, name, lat_deg, lon_deg, alt_m, min_el_deg, downlink_mbps, active, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class StationSpec:
    """What a caller gives to create or change a station."""

    id: str  # lowercase slug, e.g. "svalbard"
    name: str
    lat_deg: float  # geodetic, WGS84
    lon_deg: float  # east positive, [-180, 180]
    alt_m: float = 0.0  # above the WGS84 ellipsoid
    min_el_deg: float = 5.0  # elevation mask
    downlink_mbps: float = 100.0
    active: bool = True

    def checked(self) -> StationSpec:
        """This spec with numbers as floats; ValidationError names the first bad field."""
        check_text(self.id, "id", max_chars=64, pattern=_ID)
        check_text(self.name, "name", max_chars=128)
        if not isinstance(self.active, bool):
            raise ValidationError("active", f"expected true or false, got {self.active!r:.40}")
        return replace(
            self,
            lat_deg=check_number(self.lat_deg, "lat_deg", -90.0, 90.0),
            lon_deg=check_number(self.lon_deg, "lon_deg", -180.0, 180.0),
            alt_m=check_number(self.alt_m, "alt_m", -500.0, 9000.0),
            min_el_deg=check_number(self.min_el_deg, "min_el_deg", 0.0, 90.0, high_open=True),
            downlink_mbps=check_number(self.downlink_mbps, "downlink_mbps", 0.0, math.inf, low_open=True, high_open=True),
        )


@dataclass(frozen=True, slots=True)
class Station:
    id: str
    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    min_el_deg: float
    downlink_mbps: float
    active: bool
    created_at: datetime
    updated_at: datetime

    def to_orbital(self) -> GroundStation:
        """The station for pass and look-angle computations."""
        return GroundStation(self.id, self.name, self.lat_deg, self.lon_deg, self.alt_m, self.min_el_deg)


_CHANGEABLE: Final = frozenset(f.name for f in fields(StationSpec)) - {"id"}


class Stations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, spec: StationSpec, *, actor: str) -> Station:
        """Insert a station; ValidationError on ``id`` when one exists with that id."""
        async with self._db.transaction() as conn:
            return await insert_station(conn, spec, actor=actor)

    async def get(self, station_id: str) -> Station | None:
        async with self._db.connection() as conn:
            return await _get(conn, station_id)

    async def list_all(self, *, active_only: bool = False) -> list[Station]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Station))
            where = " WHERE active" if active_only else ""
            await cur.execute(f"SELECT {_COLUMNS} FROM ground_stations{where} ORDER BY id")
            return await cur.fetchall()

    async def update(self, station_id: str, *, actor: str, **changes: Any) -> Station:
        """Change some fields (not the id); NotFound for an unknown id, ValidationError for bad values."""
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValidationError(sorted(unknown)[0], f"not a changeable field; changeable: {', '.join(sorted(_CHANGEABLE))}")
        async with self._db.transaction() as conn:
            current = await _get(conn, station_id, lock=True)
            if current is None:
                raise NotFound("id", f"no ground station {station_id!r}")
            old = {name: getattr(current, name) for name in _CHANGEABLE}
            spec = StationSpec(id=station_id, **{**old, **changes}).checked()
            new = {name: getattr(spec, name) for name in _CHANGEABLE}
            cur = conn.cursor(row_factory=class_row(Station))
            try:
                await cur.execute(
                    "UPDATE ground_stations SET name = %(name)s, lat_deg = %(lat_deg)s, lon_deg = %(lon_deg)s,"
                    " alt_m = %(alt_m)s, min_el_deg = %(min_el_deg)s, downlink_mbps = %(downlink_mbps)s,"
                    f" active = %(active)s, updated_at = now() WHERE id = %(id)s RETURNING {_COLUMNS}",
                    {**new, "id": station_id},
                )
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise refused(exc) from None
            station = await cur.fetchone()
            assert station is not None
            diff = {k: {"from": old[k], "to": new[k]} for k in sorted(_CHANGEABLE) if old[k] != new[k]}
            await append_audit(conn, actor, "ground_station.update", "ground_station", station_id, diff)
        return station

    async def delete(self, station_id: str, *, actor: str) -> bool:
        """Remove a station (tasks planned on it keep no station); False when there was none."""
        async with self._db.transaction() as conn:
            cur = await conn.execute("DELETE FROM ground_stations WHERE id = %s RETURNING name", (station_id,))
            row = await cur.fetchone()
            if row is None:
                return False
            await append_audit(conn, actor, "ground_station.delete", "ground_station", station_id, {"name": row[0]})
        return True


async def insert_station(conn: Connection, spec: StationSpec, *, actor: str) -> Station:
    """``Stations.create`` on the caller's transaction (for seeding in one transaction)."""
    spec = spec.checked()
    values = asdict(spec)
    cur = conn.cursor(row_factory=class_row(Station))
    try:
        await cur.execute(
            "INSERT INTO ground_stations (id, name, lat_deg, lon_deg, alt_m, min_el_deg, downlink_mbps, active)"
            " VALUES (%(id)s, %(name)s, %(lat_deg)s, %(lon_deg)s, %(alt_m)s, %(min_el_deg)s,"
            f" %(downlink_mbps)s, %(active)s) ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}",
            values,
        )
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise refused(exc) from None
    station = await cur.fetchone()
    if station is None:
        raise ValidationError("id", f"ground station {spec.id!r} already exists")
    await append_audit(conn, actor, "ground_station.create", "ground_station", spec.id, values)
    return station


async def _get(conn: Connection, station_id: str, *, lock: bool = False) -> Station | None:
    cur = conn.cursor(row_factory=class_row(Station))
    suffix = " FOR UPDATE" if lock else ""
    await cur.execute(f"SELECT {_COLUMNS} FROM ground_stations WHERE id = %s{suffix}", (station_id,))
    return await cur.fetchone()
