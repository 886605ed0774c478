"""Seeding: the demo constellation and real stations on an empty database, and nothing otherwise."""

from __future__ import annotations

import asyncio

import pytest

from orbital import Elements
from py_nodes import cli
from py_nodes.db import AuditLog, Database, Satellites, Stations, StationSpec, seed
from py_nodes.db.seed import GROUND_STATIONS
from py_nodes.demo import DEMO_EPOCH_UTC
from py_nodes.ground_stations import default_stations
from py_nodes.satellite.modes import Mode


async def test_seed_on_an_empty_database(db: Database) -> None:
    report = await seed(db)
    assert (report.satellites, report.ground_stations, report.skipped) == (24, 7, None)
    records = await Satellites(db).list_all()
    assert [r.state.id for r in records] == [f"demo-{i:02d}".encode() for i in range(1, 25)]
    assert [r.state.name for r in records][:2] == [b"Demo 01", b"Demo 02"]
    first = records[0].state
    assert (first.mode, first.energy_pct, first.memory_used_mb, first.memory_capacity_mb) == (Mode.NOMINAL, 100.0, 0.0, 1024.0)
    assert first.tle is not None
    elements = [Elements.from_tle(r.state.tle[0].decode(), r.state.tle[1].decode()) for r in records if r.state.tle]
    assert len(elements) == 24
    assert {round(e.inclination_deg, 4) for e in elements} == {53.0}
    assert len({round(e.raan_deg, 1) for e in elements}) == 6  # six planes
    assert all(e.epoch_utc == DEMO_EPOCH_UTC for e in elements)  # fixed: the same orbits on every run
    stations = {s.id: s for s in await Stations(db).list_all()}
    assert set(stations) == {"svalbard", "kiruna", "fairbanks", "hartebeesthoek", "singapore", "mcmurdo", "wallops"}
    svalbard = stations["svalbard"]
    assert (svalbard.lat_deg, svalbard.lon_deg, svalbard.alt_m) == (78.2297, 15.4077, 500.0)
    # The database holds exactly the one table that the CLI and the orbital role use.
    assert {s.id: s.to_orbital() for s in stations.values()} == default_stations()
    audit = await AuditLog(db).entries(limit=1000)
    assert len(audit) == 31 and {e.actor for e in audit} == {"seed"}


async def test_seed_again_does_nothing(db: Database) -> None:
    await seed(db)
    before = [r.state for r in await Satellites(db).list_all()]
    report = await seed(db)
    assert (report.satellites, report.ground_stations) == (0, 0)
    assert report.skipped == "the database is not empty (24 satellites, 7 ground stations)"
    assert [r.state for r in await Satellites(db).list_all()] == before
    assert len(await Stations(db).list_all()) == 7


async def test_any_existing_data_means_no_seed(db: Database) -> None:
    await Stations(db).create(StationSpec("home", "Home", 48.0, 11.0), actor="alice")
    report = await seed(db)
    assert report.satellites == 0 and report.skipped is not None
    assert await Satellites(db).count() == 0


async def test_concurrent_seeds_insert_once(db: Database) -> None:
    reports = await asyncio.gather(*(seed(db) for _ in range(3)))
    assert sorted(r.satellites for r in reports) == [0, 0, 24]
    assert await Satellites(db).count() == 24


def test_stations_are_valid_specs() -> None:
    assert all(spec.checked() == spec for spec in GROUND_STATIONS)


def test_stellarops_seed_command(
    empty_db_conninfo: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_conninfo)
    assert cli.main(["--log-level", "WARNING", "seed"]) == 0
    out = capsys.readouterr().out
    assert "applied migration 0001_init.sql" in out  # seed migrates first
    assert "seed: inserted 24 satellites and 7 ground stations" in out
    assert cli.main(["--log-level", "WARNING", "seed"]) == 0
    assert "seed: nothing to do: the database is not empty" in capsys.readouterr().out
