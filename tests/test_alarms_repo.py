"""The limits and alarms repositories against a real PostgreSQL (migration 0009): seeded limits,
audited edits, refusals that change nothing, and the stored alarm lifecycle with its history."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from py_nodes.db import AuditLog, Database, NotFound, Satellites, ValidationError
from py_nodes.db.alarms import AlarmConflict, Alarms
from py_nodes.db.limits import Limits
from py_nodes.limits import Change, Limit
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode


def sat(sat_id: str = "sat-1") -> SatState:
    return SatState(sat_id.encode(), b"Sat", Mode.NOMINAL, 80.0, 0.0, 1024.0, None, (), 1_700_000_000_000)


async def test_seeded_limits_are_todays_and_edits_are_audited(db: Database) -> None:
    limits = Limits(db)
    seeded = {(r.parameter, r.satellite_id): r.limit for r in await limits.all()}
    assert seeded == {
        ("energy_pct", None): Limit("energy_pct", critical_low=10, hysteresis=1, persistence=1, latched=True),
        ("memory_used_pct", None): Limit("memory_used_pct", warning_high=100, hysteresis=1, persistence=1, latched=True),
    }
    await Satellites(db).create(sat(), actor="test")
    new = Limit("energy_pct", warning_low=50, critical_low=30, hysteresis=2, persistence=2)
    record, created = await limits.put(new, satellite_id="sat-1", actor="alice")
    assert created and record.satellite_id == "sat-1" and record.updated_by == "alice"
    again, created = await limits.put(replace(new, persistence=3), satellite_id="sat-1", actor="bob")
    assert not created and again.id == record.id and again.persistence == 3
    [latest, first] = await AuditLog(db).entries(entity="limit")
    assert (first.actor, first.action, first.entity_id) == ("alice", "limit.update", "sat-1/energy_pct")
    assert first.details["old"] is None and first.details["new"]["warning_low"] == 50
    assert latest.details["old"]["persistence"] == 2 and latest.details["new"]["persistence"] == 3
    await limits.delete("energy_pct", satellite_id="sat-1", actor="carol")
    assert (await AuditLog(db).entries(entity="limit"))[0].details == {"old": again.definition(), "new": None}
    with pytest.raises(NotFound):
        await limits.delete("energy_pct", satellite_id="sat-1", actor="carol")


async def test_bad_limits_change_nothing(db: Database) -> None:
    limits = Limits(db)
    before = await limits.all()
    cases = [
        (Limit("energy_pct", warning_low=30, warning_high=20), None, "warning_low"),
        (Limit("temperature", warning_low=1), None, "parameter"),
        (Limit("energy_pct", warning_low=10, persistence=-1), None, "persistence"),
        (Limit("energy_pct", warning_low=10), "no-such-sat", "sat_id"),
    ]
    for limit, sat_id, field in cases:
        with pytest.raises(ValidationError) as info:
            await limits.put(limit, satellite_id=sat_id, actor="alice")
        assert info.value.field == field
    assert await limits.all() == before
    assert await AuditLog(db).entries(entity="limit") == []


async def test_the_stored_lifecycle_and_its_history(db: Database) -> None:
    await Satellites(db).create(sat(), actor="test")
    alarms = Alarms(db)
    raise_w = Change("raised", "low_energy", "warning", 15.0, "energy 15 %", latched=False, satellite_id="sat-1")
    alarm, [t] = await alarms.apply(raise_w) or (None, [None])
    assert alarm is not None and t is not None
    assert (alarm.state, alarm.active, alarm.value, t.transition) == ("unacknowledged", True, 15.0, "raised")
    acked, [t] = await alarms.acknowledge(alarm.id, actor="alice", comment="looking")
    assert (acked.state, acked.acknowledged_by, acked.comment, t.actor) == ("acknowledged", "alice", "looking", "alice")
    escalated = await alarms.apply(replace(raise_w, transition="escalated", severity="critical", value=5.0))
    assert escalated is not None and escalated[0].state == "unacknowledged" and escalated[0].severity == "critical"
    shelved, _ = await alarms.shelve(alarm.id, actor="bob", duration_s=1, comment="known")
    assert shelved.state == "shelved" and shelved.shelved_until is not None and shelved.shelved_by == "bob"
    with pytest.raises(AlarmConflict) as info:
        await alarms.acknowledge(alarm.id, actor="alice")
    assert info.value.field == "state" and "shelved" in info.value.problem
    assert [a.id for a in await alarms.find(states=["shelved"])] == [alarm.id]
    assert await alarms.find(severities=["warning"]) == []
    await asyncio.sleep(1.1)
    [(back, [t])] = await alarms.expire_shelves()
    assert back.state == "unacknowledged" and back.active and t.transition == "unshelved" and t.actor == "system"
    assert await alarms.expire_shelves() == []
    returned = await alarms.apply(Change("returned", "low_energy", "critical", 25.0, "back", satellite_id="sat-1"))
    assert returned is not None and returned[0].state == "cleared" and returned[0].cleared_by == "system"
    history = [(h.transition, h.actor) for h in await alarms.history(alarm.id)]
    assert history == [
        ("raised", "system"), ("acknowledged", "alice"), ("escalated", "system"), ("shelved", "bob"),
        ("unshelved", "system"), ("returned", "system"), ("cleared", "system"),
    ]  # fmt: skip
    assert await alarms.find() == [] and [a.id for a in await alarms.find(states=["cleared"])] == [alarm.id]
    actions = [e.action for e in await AuditLog(db).entries(entity="alarm")]
    assert actions == ["alarm.shelve", "alarm.acknowledge"]
    assert await alarms.apply(Change("returned", "low_energy", "critical", 25.0, "", satellite_id="sat-1")) is None


async def test_latched_alarms_wait_for_their_acknowledgement(db: Database) -> None:
    await Satellites(db).create(sat(), actor="test")
    alarms = Alarms(db)
    raised = await alarms.apply(Change("raised", "memory_full", "warning", 100.0, "full", latched=True, satellite_id="sat-1"))
    assert raised is not None
    alarm = raised[0]
    back = await alarms.apply(Change("returned", "memory_full", "warning", 50.0, "", satellite_id="sat-1"))
    assert back is not None and (back[0].state, back[0].active) == ("unacknowledged", False)
    assert await alarms.counts() == {("warning", "unacknowledged"): 1}
    assert await alarms.raised_conditions() == {}
    with pytest.raises(AlarmConflict):
        await alarms.shelve(alarm.id, actor="bob", duration_s=60)
    done, made = await alarms.acknowledge(alarm.id, actor="alice")
    assert done.state == "cleared" and [t.transition for t in made] == ["acknowledged", "cleared"]
    with pytest.raises(ValidationError) as info:
        await alarms.shelve(alarm.id, actor="bob", duration_s=0)
    assert info.value.field == "duration_s"
    with pytest.raises(ValidationError):
        await alarms.find(states=["bogus"])
    with pytest.raises(NotFound):
        await alarms.history(999)
