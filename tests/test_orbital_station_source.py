"""The orbital role's station ids come from one source (issue 18): the database's stations
(``database_stations``, real PostgreSQL), re-read on use at most every STATION_REFRESH_S; a
source that fails leaves the last stations in place; ``put_stations`` adds on top. Without a
source the defaults stay (a node with no database)."""

from __future__ import annotations

import math

from orbital import GroundStation
from py_nodes.db import Database, DatabaseUnavailable, Stations, StationSpec
from py_nodes.erldist import Atom
from py_nodes.ground_stations import DEFAULT_STATIONS
from py_nodes.roles.orbital import OrbitalServer, database_stations

A = Atom


async def ids(server: OrbitalServer) -> list[bytes]:
    ok, items = await server._dispatch(A("stations"))
    assert ok == A("ok")
    return [item[A("id")] for item in items]


async def test_the_database_is_the_source(db: Database) -> None:
    await Stations(db).create(StationSpec(id="turin", name="Turin", lat_deg=45.07, lon_deg=7.69), actor="t")
    own = Database(db.conninfo, max_size=1)  # the node's own pool, connected on first use
    server = OrbitalServer(beam_node=None, station_source=database_stations(own))
    try:
        await _the_database_is_the_source(db, server)
    finally:
        await own.close()


async def _the_database_is_the_source(db: Database, server: OrbitalServer) -> None:
    assert await ids(server) == [b"turin"]  # not the defaults
    await Stations(db).create(StationSpec(id="oslo", name="Oslo", lat_deg=59.9, lon_deg=10.7), actor="t")
    assert await ids(server) == [b"turin"]  # read less than STATION_REFRESH_S ago
    server._read_at = -math.inf  # as if the refresh period passed
    assert await ids(server) == [b"oslo", b"turin"]
    await Stations(db).delete("turin", actor="t")
    server._read_at = -math.inf
    assert await ids(server) == [b"oslo"]


async def test_a_failing_source_keeps_the_last_stations_and_put_adds_on_top() -> None:
    answers: list[list[GroundStation] | Exception] = [[GroundStation("a", "A", 1.0, 2.0)], DatabaseUnavailable("down")]

    async def source() -> list[GroundStation]:
        answer = answers.pop(0) if answers else [GroundStation("b", "B", 1.0, 2.0)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    server = OrbitalServer(beam_node=None, station_source=source)
    assert await ids(server) == [b"a"]
    put = {A("id"): b"mine", A("lat_deg"): 0.0, A("lon_deg"): 0.0}
    assert await server._dispatch((A("put_stations"), [put])) == A("ok")
    server._read_at = -math.inf
    assert await ids(server) == [b"a", b"mine"]  # the source failed: kept
    server._read_at = -math.inf
    assert await ids(server) == [b"b", b"mine"]


async def test_without_a_source_the_defaults_stay() -> None:
    server = OrbitalServer(beam_node=None)
    assert await ids(server) == sorted(s.station_id.encode() for s in DEFAULT_STATIONS)
