"""The store role's durable work against a real PostgreSQL: alarms, outcomes after their state,
checkpoints coalesced, and nothing lost while the work waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from erl_support import unique_name

from py_nodes import proto_v1
from py_nodes.db import Alarms, CommandLedger, Database, Satellites
from py_nodes.erldist import Atom, Node
from py_nodes.roles.store import StoreServer, serve_store
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


# -- a refused command never runs (issue 12 item 4) ------------------------------------------


def submit_request(sat_id: bytes, key: bytes | None, deadline_ms: int, mode: str = "standby") -> tuple[object, ...]:
    return (A("submit_command"), b"proposed", sat_id, A("set_mode"), {A("mode"): A(mode)}, key, deadline_ms)


def now_ms() -> int:
    return int(time.time() * 1000)


async def ledger_rows(db: Database, sat_id: str) -> list[tuple[str, str]]:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT idempotency_key, status FROM commands WHERE satellite_id = %s ORDER BY created_at", (sat_id,))
        return [(r[0], r[1]) for r in await cur.fetchall()]


async def test_a_submission_that_waited_past_its_deadline_writes_nothing(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"s1", 1_000), actor="t")
    server = await started(db_conninfo)
    try:
        # As calls queued in the store's mailbox while the database was away: their callers gave up.
        for i in range(3):
            reply = await server.handle_call(submit_request(b"s1", f"k{i}".encode(), now_ms() - 1), None)  # type: ignore[arg-type]
            assert reply == (A("error"), A("store_unavailable"))
        assert await ledger_rows(db, "s1") == []
        ok = await server.handle_call(submit_request(b"s1", b"k0", now_ms() + 4000), None)  # type: ignore[arg-type]
        assert ok[0] == "ok" and ok[2] == "new"
        assert await ledger_rows(db, "s1") == [("k0", "queued")]
    finally:
        await server.close()


async def test_an_insert_held_up_in_the_database_past_its_deadline_is_rolled_back(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"s1", 1_000), actor="t")
    server = await started(db_conninfo)
    try:
        # Another session locks the satellite row: the ledger insert (its foreign key check) waits.
        async with Database(db_conninfo, max_size=1) as other, other.transaction() as conn:
            await conn.execute("SELECT 1 FROM satellites WHERE id = 's1' FOR UPDATE")
            pending = asyncio.ensure_future(server.handle_call(submit_request(b"s1", b"slow", now_ms() + 2500), None))  # type: ignore[arg-type]
            await asyncio.sleep(2.0)  # past commit_by (deadline - 1 s) while the insert waits
            assert not pending.done()
        assert await asyncio.wait_for(pending, 10) == (A("error"), A("store_unavailable"))
        assert await ledger_rows(db, "s1") == []
    finally:
        await server.close()


async def test_a_commit_that_outlives_its_caller_is_expired_and_a_retry_revives_it(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"s1", 1_000), actor="t")
    async with db.connection() as conn:  # a COMMIT that takes 3 s: a deferred trigger sleeps in it
        await conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$"
        )
        await conn.execute(
            "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON commands DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION slow_commit()"
        )
    server = await started(db_conninfo)
    try:
        reply = await server.handle_call(submit_request(b"s1", b"late", now_ms() + 2500), None)  # type: ignore[arg-type]
        assert reply == (A("error"), A("store_unavailable"))
        assert await ledger_rows(db, "s1") == [("late", "expired")]
        assert await server.handle_call(A("pending_commands"), None) == (A("ok"), [])  # type: ignore[arg-type]
        async with db.connection() as conn:
            await conn.execute("DROP TRIGGER slow_commit ON commands")
        # The caller retries with the same key: now accepted, live, and delivered.
        ok = await server.handle_call(submit_request(b"s1", b"late", now_ms() + 4000, "nominal"), None)  # type: ignore[arg-type]
        assert ok[0] == "ok" and ok[2] == "new"
        assert await ledger_rows(db, "s1") == [("late", "queued")]
        pending = await server.handle_call(A("pending_commands"), None)  # type: ignore[arg-type]
        assert pending == (A("ok"), [(ok[1], b"s1", A("set_mode"), {A("mode"): A("nominal")})])
        again = await server.handle_call(submit_request(b"s1", b"late", now_ms() + 4000), None)  # type: ignore[arg-type]
        assert again == (A("ok"), ok[1], (A("existing"), A("queued")))
    finally:
        await server.close()


async def test_the_ledger_records_who_submitted_and_refuses_a_bad_submitter(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"s1", 1_000), actor="t")
    server = await started(db_conninfo)
    try:
        by_token = (*submit_request(b"s1", b"k1", now_ms() + 4000), b"token:7:ops")
        assert (await server.handle_call(by_token, None))[0] == "ok"  # type: ignore[arg-type]
        nobody = (*submit_request(b"s1", b"k2", now_ms() + 4000), A("undefined"))
        assert (await server.handle_call(nobody, None))[0] == "ok"  # type: ignore[arg-type]
        for bad in (b"", b"x" * 129, b"\xff", 42):
            refused = (*submit_request(b"s1", b"k3", now_ms() + 4000), bad)
            reply = await server.handle_call(refused, None)  # type: ignore[arg-type]
            assert reply == (A("error"), (A("bad_field"), A("submitted_by"))), bad
        async with db.connection() as conn:
            cur = await conn.execute("SELECT idempotency_key, submitted_by FROM commands WHERE satellite_id = 's1' ORDER BY created_at")
            assert await cur.fetchall() == [("k1", "token:7:ops"), ("k2", "beam")]
    finally:
        await server.close()


# -- one cluster owns the database (issue 12 item 12) -----------------------------------------


async def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.05)


async def test_a_second_store_refuses_until_the_owner_stops(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"s1", 1_000), actor="t")
    first = StoreServer(db_conninfo, "cluster-a@h (store node store1@h)")
    await first.init()
    second = StoreServer(db_conninfo, "cluster-b@h (store node store1@h)")
    await second.init()
    try:
        assert first.lease.owner and not second.lease.owner
        refused = await second.handle_call(A("satellites"), None)  # type: ignore[arg-type]
        assert refused[:1] == (A("error"),) and refused[1][0] == "not_owner"
        assert b"owned by cluster-a@h (store node store1@h)" in refused[1][1]
        assert (await second.handle_call(A("pending_commands"), None))[1][0] == "not_owner"  # type: ignore[arg-type]
        refused_submit = await second.handle_call(submit_request(b"s1", b"k", now_ms() + 4000), None)  # type: ignore[arg-type]
        assert refused_submit[1][0] == "not_owner"
        assert await ledger_rows(db, "s1") == []
        ok, sats = await first.handle_call(A("satellites"), None)  # type: ignore[arg-type]
        assert ok == "ok" and [s[A("id")] for s in sats] == [b"s1"]
        await first.close()  # a clean stop lets go at once: no grace period to wait
        await wait_for(lambda: second.lease.owner, "the second store takes over")
        ok, sats = await second.handle_call(A("satellites"), None)  # type: ignore[arg-type]
        assert ok == "ok" and [s[A("id")] for s in sats] == [b"s1"]
    finally:
        await second.close()


async def test_when_the_owner_dies_the_other_waits_the_grace_period_then_takes_over(db: Database, db_conninfo: str) -> None:
    grace_s = 4.0
    first = StoreServer(db_conninfo, "cluster-a@h", lease_grace_s=grace_s)
    await first.init()
    second = StoreServer(db_conninfo, "cluster-b@h", lease_grace_s=grace_s)
    await second.init()
    try:
        assert first.lease.owner and not second.lease.owner
        # The owner dies as a kill -9 would leave it: its session ends, nothing is released.
        assert first.lease._task is not None and first.lease._conn is not None
        first.lease._task.cancel()
        async with db.connection() as conn:
            pid = first.lease._conn.info.backend_pid
            await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        died_at = time.monotonic()
        await wait_for(lambda: second.lease.owner, "the second store takes over after the grace period")
        assert time.monotonic() - died_at >= grace_s - 2.5  # renewed at most renew_s (2 s) before death
        async with db.connection() as conn:
            row = await (await conn.execute("SELECT holder FROM cluster_owner")).fetchone()
        assert row == ("cluster-b@h",)
    finally:
        await second.close()
        first.lease._conn = None
        await first.close()


async def test_the_owner_takes_its_lease_back_after_losing_its_connection(db: Database, db_conninfo: str) -> None:
    first = StoreServer(db_conninfo, "cluster-a@h")
    await first.init()
    second = StoreServer(db_conninfo, "cluster-b@h")
    await second.init()
    try:
        # As in a database restart: the owner's lease session goes. It stays the owner (within
        # its lease, which no newcomer can take) while it takes the lock back, and keeps serving.
        assert first.lease._conn is not None
        async with db.connection() as conn:
            await conn.execute("SELECT pg_terminate_backend(%s)", (first.lease._conn.info.backend_pid,))
        deadline = time.monotonic() + 60
        while not (first.lease.connection_losses == 1 and first.lease.held):
            assert time.monotonic() < deadline, "the owner did not take its lease back"
            assert first.lease.owner and not second.lease.owner
            await asyncio.sleep(0.02)
        ok, _ = await first.handle_call(A("satellites"), None)  # type: ignore[arg-type]
        assert ok == "ok"
        assert not second.lease.owner and second.lease.ever_owned is False
    finally:
        await second.close()
        await first.close()


async def slow_satellite_commits(db: Database, seconds: int) -> None:
    """Every commit that inserted satellites takes ``seconds`` longer (a deferred trigger)."""
    async with db.connection() as conn:
        await conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN PERFORM pg_sleep({int(seconds)}); RETURN NULL; END $$"
        )
        await conn.execute(
            "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON satellites DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION slow_commit()"
        )


async def test_a_satellite_created_past_its_deadline_is_not_created(db: Database, db_conninfo: str) -> None:
    server = await started(db_conninfo)
    try:
        late = (A("create_satellite"), proto_v1.state_to_term(sat(b"late-1", 1_000)), now_ms() - 1)
        assert await server.handle_call(late, None) == (A("error"), A("store_unavailable"))  # type: ignore[arg-type]
        await slow_satellite_commits(db, 3)  # the write itself takes 3 s: past its caller's deadline
        slow = (A("create_satellite"), proto_v1.state_to_term(sat(b"late-2", 1_000)), now_ms() + 2500)
        assert await server.handle_call(slow, None) == (A("error"), A("store_unavailable"))  # type: ignore[arg-type]
        # Never restored: the store lists live satellites only.
        assert await server.handle_call(A("satellites"), None) == (A("ok"), [])  # type: ignore[arg-type]
        assert await Satellites(db).get("late-1") is None
    finally:
        await server.close()


async def test_creations_whose_deadline_passes_while_they_wait_are_never_written(db: Database, db_conninfo: str) -> None:
    server = await started(db_conninfo)
    try:
        await slow_satellite_commits(db, 2)  # each write takes 2 s
        first = (A("create_satellite"), proto_v1.state_to_term(sat(b"first", 1_000)), now_ms() + 4000)
        writing = asyncio.ensure_future(server.handle_call(first, None))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        # Accepted on arrival (1.8 s to its deadline's margin), but the first write holds the
        # store until past it: refused before its own write, never in the table.
        queued = [proto_v1.state_to_term(sat(f"queued-{i}".encode(), 1_000)) for i in range(3)]
        reply = await server.handle_call((A("create_satellites"), queued, now_ms() + 2800), None)  # type: ignore[arg-type]
        assert reply == (A("ok"), [(A("error"), A("store_unavailable"))] * 3)
        assert await writing == A("ok")
        async with db.connection() as conn:
            rows = await (await conn.execute("SELECT count(*) FROM satellites WHERE id LIKE 'queued-%'")).fetchone()
            audited = await (await conn.execute("SELECT count(*) FROM audit_log WHERE entity_id LIKE 'queued-%'")).fetchone()
        assert rows == (0,) and audited == (0,)  # not written and deleted again: never written
    finally:
        await server.close()


# -- telemetry batches (packed rows, issue 19) -----------------------------------------------


async def test_a_telemetry_batch_lands_and_one_off_the_contract_is_confirmed_rejected_whole(
    db: Database, db_conninfo: str, cookie: str
) -> None:
    await Satellites(db).create(sat(b"s1", 1_000), actor="t")
    samples = [
        proto_v1.TelemetrySample("s1", 1_700_000_000_000 + i * 1000, 50.0 - i, 2.5, "nominal", 10.0, 20.0, 550.0, True)
        for i in range(3)
    ] + [proto_v1.TelemetrySample("s1", 1_700_000_005_000, 40.0, 2.5, "safe", None, None, None, False)]
    async with Node(unique_name("store"), cookie=cookie) as node:
        server = serve_store(node, db_conninfo)
        await wait_for(lambda: server.lease.owner, "the store owns the database")
        beam = node.process()
        node.cast("store", (A("telemetry"), beam.pid, 7, proto_v1.telemetry_rows(samples)))
        assert await beam.receive(timeout=30) == (A("telemetry_ack"), 7, 4, 0)
        bad_mode = proto_v1.telemetry_rows(samples[:2])
        bad_mode = (*bad_mode[:4], bad_mode[4][:24] + b"\x09" + bad_mode[4][25:])  # mode index 9 of 6
        node.cast("store", (A("telemetry"), beam.pid, 8, bad_mode))
        assert await beam.receive(timeout=30) == (A("telemetry_ack"), 8, 0, 2)
        node.cast("store", (A("telemetry"), beam.pid, 9, [(b"s1", {})]))  # the old list of maps
        assert await beam.receive(timeout=30) == (A("telemetry_ack"), 9, 0, 0)
        server.telemetry.max_rows = 3  # no room for 4 rows: refused by its count, BEAM keeps it
        node.cast("store", (A("telemetry"), beam.pid, 10, proto_v1.telemetry_rows(samples)))
        assert await beam.receive(timeout=30) == (A("telemetry_nack"), 10)
        async with db.connection() as conn:
            cursor = await conn.execute(
                "SELECT energy_pct, mode, lat_deg, in_sunlight FROM telemetry WHERE satellite_id = 's1' ORDER BY time"
            )
            assert await cursor.fetchall() == [(50.0, "nominal", 10.0, True), (49.0, "nominal", 10.0, True),
                                               (48.0, "nominal", 10.0, True), (40.0, "safe", None, False)]  # fmt: skip
        await server.close()


def test_packed_telemetry_rows_are_checked_whole() -> None:
    one = proto_v1.TelemetrySample("a", 1, 1.0, 1.0, "nominal", None, None, None, True)
    good = proto_v1.telemetry_rows([one, one])
    assert proto_v1.telemetry_rows_from_term(good) == [one, one]
    for bad, field, problem in [
        ((*good[:2], 3, *good[3:]), "telemetry_rows", "100 bytes of records for 3 rows of 50"),
        ((*good[:3], b"a\0", good[4]), "telemetry_rows", "1 NUL-ended ids for 2 rows"),
        ((*good[:3], b"a\0a", good[4]), "telemetry_rows", "1 NUL-ended ids for 2 rows"),  # the last has no NUL
        ((*good[:3], b"\xff\0a\0", good[4]), "id", "a satellite id that is not ASCII"),
        ((A("telemetry_rows"), 2, *good[2:]), "telemetry_rows", "expected {telemetry_rows, 1, Count, Ids, Records}"),
        ((*good[:2], 2.0, *good[3:]), "telemetry_rows", "Count must be an integer, Ids and Records binaries"),
        ((*good[:4], good[4][:24] + b"\x06" + good[4][25:]), "mode", "a mode index beyond the 6 modes"),
        ((*good[:4], good[4][:50] + (2**62).to_bytes(8, "little") + good[4][58:]), "updated_at",
         "a time beyond the years 1 to 9999"),
    ]:
        with pytest.raises(proto_v1.ProtocolError) as error:
            proto_v1.telemetry_rows_from_term(bad)
        assert (error.value.field, error.value.problem.split(", got")[0]) == (field, problem)
