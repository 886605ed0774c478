"""Repositories against a real PostgreSQL: round trips, the command ledger's idempotency and
exactly-once transitions, redelivery, and bad input that changes nothing. Also the pool."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from py_nodes.db import (
    Alarms,
    AuditLog,
    CommandLedger,
    Database,
    DatabaseUnavailable,
    NotFound,
    Satellites,
    Stations,
    StationSpec,
    ValidationError,
)
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode

TLE = (
    b"1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927",
    b"2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537",
)


def sat(sat_id: str = "sat-1", **changes: Any) -> SatState:
    state = SatState(sat_id.encode(), b"Sat \xc3\xa9", Mode.NOMINAL, 87.5, 12.25, 1024.0, TLE,
                     (b"cmd-2", b"\x00\xffraw"), 1_700_000_000_123)  # fmt: skip
    return replace(state, **changes)


async def count(db: Database, table: str) -> int:
    async with db.connection() as conn:
        row = await (await conn.execute(f"SELECT count(*) FROM {table}".encode())).fetchone()
    assert row is not None
    return int(row[0])


# -- satellites --------------------------------------------------------------------------------


async def test_satellite_round_trip_is_exact(db: Database) -> None:
    sats = Satellites(db)
    created = await sats.create(sat(), actor="alice")
    assert created.state == sat()
    assert created.version == 1
    fetched = await sats.get("sat-1")
    assert fetched is not None and fetched.state == sat()
    no_tle = sat("sat-2", tle=None, applied=())
    await sats.create(no_tle, actor="alice")
    assert [r.state for r in await sats.list_all()] == [sat(), no_tle]
    assert await sats.get("nope") is None
    entries = await AuditLog(db).entries(entity="satellite", entity_id="sat-1")
    assert [(e.actor, e.action) for e in entries] == [("alice", "satellite.create")]


async def test_creating_an_existing_satellite_is_refused(db: Database) -> None:
    sats = Satellites(db)
    await sats.create(sat(), actor="alice")
    with pytest.raises(ValidationError) as info:
        await sats.create(sat(energy_pct=1.0), actor="bob")
    assert info.value.field == "id"
    record = await sats.get("sat-1")
    assert record is not None and record.state.energy_pct == 87.5
    assert await count(db, "audit_log") == 1


async def test_checkpoints_are_optimistic_newer_wins(db: Database) -> None:
    sats = Satellites(db)
    assert await sats.checkpoint(sat()) == 1  # upsert: a new satellite
    newer = sat(mode=Mode.SCIENCE, energy_pct=80.0, updated_at=sat().updated_at + 1000, applied=(b"cmd-3", b"cmd-2"))
    assert await sats.checkpoint(newer) == 2
    older = sat(energy_pct=10.0, updated_at=sat().updated_at + 500)
    assert await sats.checkpoint(older) is None  # late: ignored
    assert await sats.checkpoint(newer) is None  # replayed: ignored
    record = await sats.get("sat-1")
    assert record is not None
    assert (record.state, record.version) == (newer, 2)


async def test_checkpoint_many_writes_the_newer_ones_in_one_go(db: Database) -> None:
    sats = Satellites(db)
    base = sat().updated_at
    await sats.checkpoint(sat("a", updated_at=base + 1000))
    batch = [sat("a", updated_at=base + 500), sat("b", updated_at=base), sat("c", mode=Mode.SCIENCE, updated_at=base)]
    assert await sats.checkpoint_many(batch) == 2  # "a" is older than the stored one
    assert await sats.checkpoint_many([]) == 0
    records = {r.state.id: r for r in await sats.list_all()}
    assert records[b"a"].state.updated_at == base + 1000 and records[b"c"].state.mode == Mode.SCIENCE
    with pytest.raises(ValidationError):
        await sats.checkpoint_many([sat("d"), sat("e", energy_pct=101.0)])
    assert {r.state.id for r in await sats.list_all()} == {b"a", b"b", b"c"}  # none of the batch


async def test_deleted_satellites_keep_their_history_and_can_come_back(db: Database) -> None:
    sats, ledger = Satellites(db), CommandLedger(db)
    await sats.create(sat("gone"), actor="t")
    command, _ = await ledger.submit("gone", "noop", {}, "k1")
    assert await sats.delete(["gone", "never"], actor="t") == 1
    assert await sats.delete(["gone"], actor="t") == 0
    assert await sats.list_all() == [] and await sats.count() == 0
    assert await sats.checkpoint(sat("gone", updated_at=sat().updated_at + 1)) is None  # stays deleted
    assert [c.id for c in await ledger.history("gone")] == [command.id]  # the ledger keeps it
    again = await sats.create(sat("gone", name=b"Again"), actor="t")  # the id can be created again
    assert again.state.name == b"Again" and [r.state.id for r in await sats.list_all()] == [b"gone"]
    with pytest.raises(ValidationError):
        await sats.create(sat("gone"), actor="t")  # a live one still cannot


async def add_telemetry(db: Database, sat_id: str, t_ms: int, energy_pct: float, used_mb: float, mode: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO telemetry (satellite_id, time, energy_pct, memory_used_mb, mode, in_sunlight)"
            " VALUES (%s, to_timestamp(%s / 1000.0), %s, %s, %s, true)",
            (sat_id, t_ms, energy_pct, used_mb, mode),
        )


async def test_a_restart_resumes_from_telemetry_newer_than_the_checkpoint(db: Database) -> None:
    sats = Satellites(db)
    base = sat().updated_at
    for sat_id in ("ticked", "stale", "quiet"):
        await sats.checkpoint(sat(sat_id))
    await add_telemetry(db, "ticked", base + 1000, 70.0, 20.0, "science")
    await add_telemetry(db, "ticked", base + 2000, 65.5, 22.5, "downlink")  # the newest wins
    await add_telemetry(db, "stale", base - 1000, 10.0, 1.0, "safe")  # older than the checkpoint
    resumed = {r.state.id: r.state for r in await sats.resume_states()}
    assert resumed[b"ticked"] == sat(
        "ticked", energy_pct=65.5, memory_used_mb=22.5, mode=Mode.DOWNLINK, updated_at=base + 2000
    )  # name, TLE, capacity and applied commands are the checkpoint's
    assert resumed[b"stale"] == sat("stale") and resumed[b"quiet"] == sat("quiet")
    # Deleted: not resumed; created again: its old telemetry (older than the new row) is not it.
    await sats.delete(["ticked"], actor="t")
    assert b"ticked" not in {r.state.id for r in await sats.resume_states()}
    await sats.create(sat("ticked", updated_at=base + 5000), actor="t")
    resumed = {r.state.id: r.state for r in await sats.resume_states()}
    assert resumed[b"ticked"] == sat("ticked", updated_at=base + 5000)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"energy_pct": 100.5}, "energy_pct"),
        ({"energy_pct": float("nan")}, "energy_pct"),
        ({"memory_used_mb": 2000.0}, "memory_used_mb"),
        ({"memory_capacity_mb": 0.0}, "memory_capacity_mb"),
        ({"name": b"\xff\xfe"}, "name"),
        ({"name": b""}, "name"),
        ({"id": b"bad id"}, "id"),
        ({"mode": "warp"}, "mode"),
        ({"tle": (b"1 short", b"2 short")}, "tle_line1"),
        ({"updated_at": 10**20}, "updated_at"),
    ],
)
async def test_bad_checkpoints_change_nothing(db: Database, changes: dict[str, Any], field: str) -> None:
    sats = Satellites(db)
    await sats.checkpoint(sat())
    bad = replace(sat(updated_at=sat().updated_at + 1), **changes)
    with pytest.raises(ValidationError) as info:
        await sats.checkpoint(bad)
    assert info.value.field == field
    record = await sats.get("sat-1")
    assert record is not None and (record.state, record.version) == (sat(), 1)


# -- the command ledger --------------------------------------------------------------------------


@pytest.fixture
async def ledger(db: Database) -> CommandLedger:
    await Satellites(db).create(sat("sat-1"), actor="test")
    await Satellites(db).create(sat("sat-2"), actor="test")
    return CommandLedger(db)


async def test_submit_records_a_queued_command_and_audits_it(db: Database, ledger: CommandLedger) -> None:
    command, created = await ledger.submit("sat-1", "set_mode", {"mode": "science"}, "key-1", actor="alice")
    assert created
    assert (command.satellite_id, command.kind, command.args, command.idempotency_key) == (
        "sat-1", "set_mode", {"mode": "science"}, "key-1")  # fmt: skip
    assert (command.status, command.attempts, command.result, command.submitted_by) == ("queued", 0, None, "alice")
    assert command.sent_at is None and command.finished_at is None and not command.final
    assert await ledger.get(command.id) == command
    assert await ledger.get(str(command.id)) == command
    [entry] = await AuditLog(db).entries(entity="command")
    assert (entry.actor, entry.action, entry.entity_id) == ("alice", "command.submit", str(command.id))
    assert entry.details == {"satellite_id": "sat-1", "kind": "set_mode", "args": {"mode": "science"}}


async def test_a_duplicate_key_returns_the_original_and_creates_nothing(db: Database, ledger: CommandLedger) -> None:
    original, created = await ledger.submit("sat-1", "collect", {}, "key-1")
    assert created
    again, created_again = await ledger.submit("sat-1", "reboot", {"x": 1}, "key-1", actor="bob")
    assert not created_again
    assert again == original  # the original, whatever the second payload said
    other_sat, created_other = await ledger.submit("sat-2", "collect", {}, "key-1")  # keys are per satellite
    assert created_other and other_sat.id != original.id
    assert await count(db, "commands") == 2
    assert await count(db, "audit_log") == 4  # 2 satellites + 2 commands


async def test_concurrent_duplicates_create_one_command(db: Database, ledger: CommandLedger) -> None:
    results = await asyncio.gather(*(ledger.submit("sat-1", "noop", {}, "same") for _ in range(8)))
    assert len({command.id for command, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await count(db, "commands") == 1


async def test_without_a_key_each_submission_is_new(ledger: CommandLedger) -> None:
    a, _ = await ledger.submit("sat-1", "noop")
    b, _ = await ledger.submit("sat-1", "noop")
    assert a.id != b.id


@pytest.mark.parametrize(
    ("call", "field", "error"),
    [
        (("nope", "noop", {}, "k"), "satellite_id", NotFound),
        (("bad id!", "noop", {}, "k"), "satellite_id", ValidationError),
        (("sat-1", "self_destruct", {}, "k"), "kind", ValidationError),
        (("sat-1", 42, {}, "k"), "kind", ValidationError),
        (("sat-1", "noop", [1, 2], "k"), "args", ValidationError),
        (("sat-1", "noop", "{}", "k"), "args", ValidationError),
        (("sat-1", "noop", {1: "x"}, "k"), "args", ValidationError),
        (("sat-1", "noop", {"x": float("nan")}, "k"), "args", ValidationError),
        (("sat-1", "noop", {"x": object()}, "k"), "args", ValidationError),
        (("sat-1", "set_mode", {}, "k"), "args.mode", ValidationError),
        (("sat-1", "set_mode", {"mode": "warp"}, "k"), "args.mode", ValidationError),
        (("sat-1", "noop", {}, ""), "idempotency_key", ValidationError),
        (("sat-1", "noop", {}, "k" * 129), "idempotency_key", ValidationError),
        (("sat-1", "noop", {}, "nul\x00"), "idempotency_key", ValidationError),
    ],
)
async def test_bad_submissions_change_nothing(
    db: Database, ledger: CommandLedger, call: tuple[Any, ...], field: str, error: type[ValidationError]
) -> None:
    audit_before = await count(db, "audit_log")
    with pytest.raises(error) as info:
        await ledger.submit(*call)
    assert type(info.value) is error
    assert info.value.field == field
    assert await count(db, "commands") == 0
    assert await count(db, "audit_log") == audit_before


async def test_transitions_happen_exactly_once(ledger: CommandLedger) -> None:
    command, _ = await ledger.submit("sat-1", "collect")
    sent, changed = await ledger.mark_sent(command.id)
    assert changed and sent.status == "sent" and sent.attempts == 1 and sent.sent_at is not None
    resent, changed = await ledger.mark_sent(command.id)  # redelivery
    assert changed and resent.attempts == 2
    done, changed = await ledger.mark_done(command.id, {"state": {"mode": "science"}})
    assert changed and done.status == "done" and done.final and done.finished_at is not None
    assert done.result == {"state": {"mode": "science"}}
    # Every later mark returns the existing outcome and changes nothing.
    for later in (ledger.mark_done(command.id, {"other": 1}), ledger.mark_failed(command.id, "late"),
                  ledger.mark_sent(command.id)):  # fmt: skip
        again, changed = await later
        assert not changed and again == done


async def test_failure_is_final_too(ledger: CommandLedger) -> None:
    command, _ = await ledger.submit("sat-1", "set_mode", {"mode": "science"})
    failed, changed = await ledger.mark_failed(command.id, ["invalid_transition", "nominal", "science"])
    assert changed and failed.status == "failed"
    assert failed.result == {"reason": ["invalid_transition", "nominal", "science"]}
    again, changed = await ledger.mark_done(command.id)
    assert not changed and again == failed


async def test_racing_outcomes_record_one(ledger: CommandLedger) -> None:
    command, _ = await ledger.submit("sat-1", "noop")
    results = await asyncio.gather(
        *(ledger.mark_done(command.id, {"n": i}) if i % 2 else ledger.mark_failed(command.id, i) for i in range(10))
    )
    winners = [c for c, changed in results if changed]
    assert len(winners) == 1
    assert all(c == winners[0] for c, _ in results)


async def test_marking_unknown_or_malformed_ids(ledger: CommandLedger) -> None:
    with pytest.raises(NotFound) as info:
        await ledger.mark_done(uuid.uuid4())
    assert info.value.field == "command_id"
    with pytest.raises(ValidationError) as bad:
        await ledger.mark_sent("not-a-uuid")
    assert bad.value.field == "command_id"
    command, _ = await ledger.submit("sat-1", "noop")
    with pytest.raises(ValidationError) as unjson:
        await ledger.mark_done(command.id, {"x": {1, 2}})
    assert unjson.value.field == "result"
    fetched = await ledger.get(command.id)
    assert fetched is not None and fetched.status == "queued"


async def test_pending_lists_queued_and_sent_oldest_first(ledger: CommandLedger) -> None:
    a, _ = await ledger.submit("sat-1", "noop", {}, "a")
    b, _ = await ledger.submit("sat-2", "noop", {}, "b")
    c, _ = await ledger.submit("sat-1", "noop", {}, "c")
    d, _ = await ledger.submit("sat-1", "noop", {}, "d")
    await ledger.mark_sent(b.id)
    await ledger.mark_sent(c.id)
    await ledger.mark_done(c.id)
    await ledger.mark_failed(d.id, "x")
    assert [x.id for x in await ledger.pending()] == [a.id, b.id]
    assert [x.id for x in await ledger.pending(satellite_id="sat-2")] == [b.id]
    assert [x.id for x in await ledger.pending(limit=1)] == [a.id]
    assert [x.id for x in await ledger.history("sat-1")] == [d.id, c.id, a.id]


# -- ground stations ---------------------------------------------------------------------------


async def test_station_crud_round_trip_and_audit(db: Database) -> None:
    stations = Stations(db)
    spec = StationSpec("kiruna", "Kiruna", 67.8833, 21.0667, 400.0, min_el_deg=10.0, downlink_mbps=150.0)
    created = await stations.create(spec, actor="alice")
    assert (created.id, created.name, created.lat_deg, created.lon_deg, created.alt_m) == (
        "kiruna", "Kiruna", 67.8833, 21.0667, 400.0)  # fmt: skip
    assert (created.min_el_deg, created.downlink_mbps, created.active) == (10.0, 150.0, True)
    assert await stations.get("kiruna") == created
    updated = await stations.update("kiruna", actor="bob", active=False, alt_m=402)
    assert updated.active is False and updated.alt_m == 402.0 and updated.updated_at >= created.updated_at
    assert await stations.list_all(active_only=True) == []
    assert [s.id for s in await stations.list_all()] == ["kiruna"]
    orbital_station = updated.to_orbital()
    assert (orbital_station.station_id, orbital_station.min_el_deg) == ("kiruna", 10.0)
    assert await stations.delete("kiruna", actor="carol")
    assert not await stations.delete("kiruna", actor="carol")
    assert await stations.get("kiruna") is None
    log = await AuditLog(db).entries(entity="ground_station")
    assert [(e.actor, e.action) for e in log] == [
        ("carol", "ground_station.delete"), ("bob", "ground_station.update"), ("alice", "ground_station.create")]  # fmt: skip
    assert log[1].details == {"active": {"from": True, "to": False}, "alt_m": {"from": 400.0, "to": 402.0}}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lat_deg": 90.5}, "lat_deg"),
        ({"lon_deg": -181}, "lon_deg"),
        ({"lat_deg": float("nan")}, "lat_deg"),
        ({"lat_deg": "10"}, "lat_deg"),
        ({"alt_m": 10_000}, "alt_m"),
        ({"min_el_deg": 90}, "min_el_deg"),
        ({"downlink_mbps": 0}, "downlink_mbps"),
        ({"id": "Bad Id"}, "id"),
        ({"name": ""}, "name"),
        ({"active": "yes"}, "active"),
    ],
)
async def test_bad_stations_change_nothing(db: Database, changes: dict[str, Any], field: str) -> None:
    stations = Stations(db)
    base = StationSpec("gs", "GS", 1.0, 2.0)
    with pytest.raises(ValidationError) as info:
        await stations.create(replace(base, **changes), actor="alice")
    assert info.value.field == field
    assert await count(db, "ground_stations") == 0
    await stations.create(base, actor="alice")
    if field != "id":
        with pytest.raises(ValidationError) as info:
            await stations.update("gs", actor="bob", **changes)
        assert info.value.field == field
    assert await stations.get("gs") == (await stations.list_all())[0]
    assert (await stations.list_all())[0].lat_deg == 1.0
    assert await count(db, "audit_log") == 1


async def test_station_update_errors(db: Database) -> None:
    stations = Stations(db)
    with pytest.raises(NotFound):
        await stations.update("nowhere", actor="bob", name="x")
    await stations.create(StationSpec("gs", "GS", 1.0, 2.0), actor="alice")
    with pytest.raises(ValidationError) as info:
        await stations.update("gs", actor="bob", colour="red")
    assert info.value.field == "colour"
    with pytest.raises(ValidationError) as dup:
        await stations.create(StationSpec("gs", "Other", 3.0, 4.0), actor="alice")
    assert dup.value.field == "id"


# -- alarms and the audit log ------------------------------------------------------------------


async def test_alarms_raise_once_and_clear_once(db: Database) -> None:
    await Satellites(db).create(sat(), actor="test")
    alarms = Alarms(db)
    alarm, raised = await alarms.raise_alarm("sat-1", "low_energy", "critical", "energy 9.5 %")
    assert raised and alarm.active and alarm.severity == "critical"
    again, raised_again = await alarms.raise_alarm("sat-1", "low_energy", "critical", "energy 9.1 %")
    assert not raised_again and again == alarm
    memory, _ = await alarms.raise_alarm("sat-1", "memory_full", "warning")
    assert [a.id for a in await alarms.active()] == [alarm.id, memory.id]  # critical first
    cleared, changed = await alarms.clear(alarm.id, actor="alice")
    assert changed and not cleared.active and cleared.cleared_by == "alice"
    assert cleared.cleared_at is not None and cleared.cleared_at >= cleared.raised_at
    same, changed = await alarms.clear(alarm.id, actor="bob")
    assert not changed and same == cleared
    assert [a.id for a in await alarms.active("sat-1")] == [memory.id]
    fresh, raised = await alarms.raise_alarm("sat-1", "low_energy", "critical")
    assert raised and fresh.id != alarm.id
    [entry] = await AuditLog(db).entries(entity="alarm")
    assert (entry.actor, entry.entity_id) == ("alice", str(alarm.id))


async def test_bad_alarms_change_nothing(db: Database) -> None:
    await Satellites(db).create(sat(), actor="test")
    alarms = Alarms(db)
    cases: list[tuple[tuple[Any, ...], str, type[ValidationError]]] = [
        (("nope", "low_energy", "critical"), "satellite_id", NotFound),
        (("sat-1", "Low Energy", "critical"), "kind", ValidationError),
        (("sat-1", "low_energy", "apocalyptic"), "severity", ValidationError),
        (("sat-1", "low_energy", "info", "x" * 1001), "message", ValidationError),
    ]
    for call, field, error in cases:
        with pytest.raises(error) as info:
            await alarms.raise_alarm(*call)
        assert info.value.field == field
    assert await count(db, "alarms") == 0
    with pytest.raises(NotFound):
        await alarms.clear(12345, actor="alice")
    with pytest.raises(ValidationError):
        await alarms.clear(12345, actor="")


async def test_audit_append_and_read(db: Database) -> None:
    log = AuditLog(db)
    await log.append("alice", "token.create", "token", "t1", {"scopes": ["read"]})
    await log.append("bob", "export.run", "export")
    entries = await log.entries()
    assert [(e.actor, e.action, e.entity, e.entity_id, e.details) for e in entries] == [
        ("bob", "export.run", "export", None, {}),
        ("alice", "token.create", "token", "t1", {"scopes": ["read"]}),
    ]
    assert [e.actor for e in await log.entries(entity="token", entity_id="t1")] == ["alice"]
    with pytest.raises(ValidationError) as info:
        await log.append("alice", "Bad Action", "token")
    assert info.value.field == "action"


# -- the pool ----------------------------------------------------------------------------------


async def test_ping_and_transactions_roll_back_on_error(db: Database) -> None:
    assert 0 < await db.ping() < 1
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO audit_log (actor, action, entity) VALUES ('a', 'b', 'c')")
            raise RuntimeError("boom")
    assert await count(db, "audit_log") == 0


async def test_an_unreachable_database_is_unavailable_without_the_password(tmp_path: Path) -> None:
    conninfo = f"host={tmp_path} port=5432 user=someone password=hunter2-secret dbname=x"
    db = Database(conninfo, timeout_s=1.0)
    with pytest.raises(DatabaseUnavailable) as info:
        await db.connect()
    message = str(info.value)
    assert message.startswith(f"cannot connect to someone@{tmp_path}:5432/x: ")
    assert "hunter2" not in message
    url = "postgresql://u:hunter2-secret@127.0.0.1:1/x?connect_timeout=1"
    with pytest.raises(DatabaseUnavailable) as info:
        await Database(url, timeout_s=1.0).connect()
    assert "hunter2" not in str(info.value) and "u@127.0.0.1:1/x" in str(info.value)


async def test_a_wrong_password_is_refused(db_conninfo: str) -> None:
    from psycopg.conninfo import make_conninfo

    wrong = make_conninfo(db_conninfo, passfile="/nonexistent", password="not-the-password")
    with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        await Database(wrong, timeout_s=2.0).connect()


async def test_a_database_can_be_closed_and_connected_again(db_conninfo: str) -> None:
    db = Database(db_conninfo)
    with pytest.raises(DatabaseUnavailable, match="not connected"):
        await db.ping()
    await db.connect()
    await db.ping()
    await db.close()
    with pytest.raises(DatabaseUnavailable, match="not connected"):
        await db.ping()
    async with db:
        await db.ping()
