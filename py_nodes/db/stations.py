"""Ground stations: where passes are computed for and downlinks planned. Changes are audited.

``antennas`` (1..16) is how many satellites a station serves at once; ``unavailable`` the windows
when it is down (at most ``MAX_DOWN_WINDOWS``, each ``from`` < ``to``, none ending more than
``MAX_DOWN_AHEAD`` from now), stored as JSON ``[{"from": ..., "to": ...}]``."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from orbital import GroundStation

from .audit import append_audit
from .errors import NotFound, ValidationError
from .pool import Connection, Database
from .values import check_number, check_text, refused

__all__ = ["MAX_ANTENNAS", "MAX_DOWN_AHEAD", "MAX_DOWN_WINDOWS", "DownWindow", "Station", "StationSpec", "Stations", "insert_station", "update_station"]

_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_COLUMNS: Final = (
    "id, name, lat_deg, lon_deg, alt_m, min_el_deg, downlink_mbps, active, antennas, unavailable, created_at, updated_at"
)
MAX_ANTENNAS: Final = 16
MAX_DOWN_WINDOWS: Final = 32
MAX_DOWN_AHEAD: Final = timedelta(days=366)  # a window ending later is a typo, not a plan
_EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
DownWindow = tuple[datetime, datetime]  # (from, to), UTC


def _check_windows(value: object, now: datetime) -> tuple[DownWindow, ...]:
    """Down windows as UTC pairs; ValidationError names ``unavailable[i].from``/``.to``."""
    if not isinstance(value, list | tuple):
        raise ValidationError("unavailable", f"expected a list of (from, to) windows, got {type(value).__name__}")
    if len(value) > MAX_DOWN_WINDOWS:
        raise ValidationError("unavailable", f"at most {MAX_DOWN_WINDOWS} windows, got {len(value)}")
    out = []
    for i, window in enumerate(value):
        if not isinstance(window, list | tuple) or len(window) != 2:
            raise ValidationError(f"unavailable[{i}]", "expected a (from, to) pair")
        for name, at in zip(("from", "to"), window, strict=True):
            if not isinstance(at, datetime) or at.tzinfo is None:
                raise ValidationError(f"unavailable[{i}].{name}", "expected a date-time with a time zone")
            if at < _EARLIEST:
                raise ValidationError(f"unavailable[{i}].{name}", "before 2000-01-01")
        start, end = window[0].astimezone(UTC), window[1].astimezone(UTC)
        if end <= start:
            raise ValidationError(f"unavailable[{i}].to", "must be after from")
        if end > now + MAX_DOWN_AHEAD:
            raise ValidationError(f"unavailable[{i}].to", f"more than {MAX_DOWN_AHEAD.days} days ahead")
        out.append((start, end))
    return tuple(sorted(out))


def _windows_json(windows: tuple[DownWindow, ...]) -> list[dict[str, str]]:
    return [{"from": a.isoformat(), "to": b.isoformat()} for a, b in windows]


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
    antennas: int = 1  # satellites served at once
    unavailable: tuple[DownWindow, ...] = ()  # down during each (from, to)

    def checked(self, now: datetime | None = None) -> StationSpec:
        """This spec with numbers as floats; ValidationError names the first bad field."""
        check_text(self.id, "id", max_chars=64, pattern=_ID)
        check_text(self.name, "name", max_chars=128)
        if not isinstance(self.active, bool):
            raise ValidationError("active", f"expected true or false, got {self.active!r:.40}")
        if isinstance(self.antennas, bool) or not isinstance(self.antennas, int) or not 1 <= self.antennas <= MAX_ANTENNAS:
            raise ValidationError("antennas", f"expected an integer from 1 to {MAX_ANTENNAS}, got {self.antennas!r:.40}")
        return replace(
            self,
            unavailable=_check_windows(self.unavailable, now or datetime.now(UTC)),
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
    antennas: int
    unavailable: tuple[DownWindow, ...]  # read as stored JSON, kept as UTC pairs
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        raw: Any = self.unavailable
        if isinstance(raw, list):  # the JSON column as read
            windows = tuple((datetime.fromisoformat(w["from"]), datetime.fromisoformat(w["to"])) for w in raw)
            object.__setattr__(self, "unavailable", windows)

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
        async with self._db.transaction() as conn:
            return (await update_station(conn, station_id, changes, actor=actor))[1]

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
    values = {**asdict(spec), "unavailable": _windows_json(spec.unavailable)}
    cur = conn.cursor(row_factory=class_row(Station))
    try:
        await cur.execute(
            "INSERT INTO ground_stations (id, name, lat_deg, lon_deg, alt_m, min_el_deg, downlink_mbps, active,"
            " antennas, unavailable) VALUES (%(id)s, %(name)s, %(lat_deg)s, %(lon_deg)s, %(alt_m)s, %(min_el_deg)s,"
            f" %(downlink_mbps)s, %(active)s, %(antennas)s, %(jsonb)s) ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}",
            {**values, "jsonb": Jsonb(values["unavailable"])},
        )
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise refused(exc) from None
    station = await cur.fetchone()
    if station is None:
        raise ValidationError("id", f"ground station {spec.id!r} already exists")
    await append_audit(conn, actor, "ground_station.create", "ground_station", spec.id, values)
    return station


async def update_station(conn: Connection, station_id: str, changes: dict[str, Any], *, actor: str) -> tuple[Station, Station]:
    """``Stations.update`` on the caller's transaction: the station (before, after)."""
    unknown = set(changes) - _CHANGEABLE
    if unknown:
        raise ValidationError(sorted(unknown)[0], f"not a changeable field; changeable: {', '.join(sorted(_CHANGEABLE))}")
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
            " active = %(active)s, antennas = %(antennas)s, unavailable = %(unavailable)s, updated_at = now()"
            f" WHERE id = %(id)s RETURNING {_COLUMNS}",
            {**new, "unavailable": Jsonb(_windows_json(new["unavailable"])), "id": station_id},
        )
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise refused(exc) from None
    station = await cur.fetchone()
    assert station is not None
    shown = {"unavailable": _windows_json}
    diff = {
        k: {"from": shown.get(k, _same)(old[k]), "to": shown.get(k, _same)(new[k])} for k in sorted(_CHANGEABLE) if old[k] != new[k]
    }
    if diff:
        await append_audit(conn, actor, "ground_station.update", "ground_station", station_id, diff)
    return current, station


def _same(value: Any) -> Any:
    return value


async def _get(conn: Connection, station_id: str, *, lock: bool = False) -> Station | None:
    cur = conn.cursor(row_factory=class_row(Station))
    suffix = " FOR UPDATE" if lock else ""
    await cur.execute(f"SELECT {_COLUMNS} FROM ground_stations WHERE id = %s{suffix}", (station_id,))
    return await cur.fetchone()
