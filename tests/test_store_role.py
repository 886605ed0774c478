"""The store role's durable work against a real PostgreSQL: alarms, outcomes after their state,
checkpoints coalesced, and nothing lost while the work waits."""

from __future__ import annotations

import asyncio

from py_nodes import proto_v1
from py_nodes.db import Alarms, CommandLedger, Database, Satellites
from py_nodes.erldist import Atom
from py_nodes.roles.store import StoreServer
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode

A = Atom


def sat(sat_id: bytes, updated_at: int, mode: Mode = Mode.NOMINAL, applied: tuple[bytes, ...] = ()) -> SatState:
    return SatState(sat_id, b"Sat", mode, 50.0, 0.0, 1024.0, None, applied, updated_at)


async def started(conninfo: str) -> StoreServer:
    server = StoreServer(conninfo)
    await server.init()
    return server


async def test_alarms_outcomes_and_checkpoints_land(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"s1", 1_000), actor="t")
    command, _ = await CommandLedger(db).submit("s1", "set_mode", {"mode": "standby"}, "k")
    server = await started(db_conninfo)
    try:
        alarm = {A("alarm"): A("low_energy"), A("severity"): A("critical"), A("message"): b"energy 9.9 %"}
        server.handle_cast((A("alarm"), b"s1", alarm))
        server.handle_cast((A("alarm"), b"s1", alarm))  # still active: not a second one
        applied_state = proto_v1.state_to_term(sat(b"s1", 2_000, Mode.STANDBY, (str(command.id).encode(),)))
        server.handle_cast((A("command_result"), str(command.id).encode(), b"s1", A("done"), applied_state))
        # Checkpoints coalesce per satellite: the newest one queued wins.
        for at in (3_000, 4_000):
            item = {A("id"): b"s1", A("state"): proto_v1.state_to_term(sat(b"s1", at, Mode.STANDBY)), A("deleted"): False}
            server.handle_cast((A("checkpoint"), [item]))
        server.handle_cast((A("alarm"), b"s1", {A("alarm"): 42}))  # malformed: logged, the rest goes on
        await asyncio.wait_for(server._jobs.join(), 10)
        active = await Alarms(db).active("s1")
        assert [(a.kind, a.severity, a.message) for a in active] == [("low_energy", "critical", "energy 9.9 %")]
        done = await CommandLedger(db).get(command.id)
        assert done is not None and done.status == "done"
        record = await Satellites(db).get("s1")
        assert record is not None and record.state.updated_at == 4_000 and record.state.mode == Mode.STANDBY
    finally:
        await server.close()
