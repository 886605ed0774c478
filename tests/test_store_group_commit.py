"""Group commit in the store (issue 19): many concurrent submissions and creations in one
transaction, each answered exactly as if written alone; queued outcomes, "sent" marks and
checkpoints written together, in order; a bad item fails alone. Real PostgreSQL throughout."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from erl_support import unique_name

from py_nodes import proto_v1
from py_nodes.db import CommandLedger, Database, NotFound, Satellites, ValidationError
from py_nodes.db.commands import LateCommit, Submission
from py_nodes.db.satellites import checkpoint_rows
from py_nodes.erldist import Atom, CallError, GenServer, Node
from py_nodes.roles.group_commit import GroupCommit
from py_nodes.roles.store import StoreServer
from py_nodes.satellite.model import SatState
from py_nodes.satellite.modes import Mode

A = Atom


def sat(sat_id: bytes, updated_at: int = 1_000, mode: Mode = Mode.NOMINAL, name: bytes = b"Sat") -> SatState:
    return SatState(sat_id, name, mode, 50.0, 0.0, 1024.0, None, (), updated_at)


def now_ms() -> int:
    return int(time.time() * 1000)


def submit_request(sat_id: bytes, key: bytes | None, mode: str = "standby", deadline_ms: int | None = None) -> tuple[Any, ...]:
    deadline = now_ms() + 4000 if deadline_ms is None else deadline_ms
    return (A("submit_command"), b"proposed", sat_id, A("set_mode"), {A("mode"): A(mode)}, key, deadline)


async def xmins(db: Database, table: str, where: str, params: tuple[Any, ...]) -> set[str]:
    """The transactions that wrote the rows (xmin: the same for rows of one transaction)."""
    async with db.connection() as conn:
        rows = await (await conn.execute(f"SELECT xmin::text FROM {table} WHERE {where}", params)).fetchall()
    return {r[0] for r in rows}


# -- calls answered concurrently (erldist GenServer.concurrent_calls) ---------------------------


class Gate(GenServer):
    """``{wait, N}`` is answered once ``{open, N}`` has come; ``crash`` raises."""

    def __init__(self, concurrent: bool) -> None:
        self.concurrent_calls = concurrent
        self.gates: dict[int, asyncio.Event] = {}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "crash":
            raise RuntimeError("broken")
        tag, n = request
        gate = self.gates.setdefault(n, asyncio.Event())
        if tag == "open":
            gate.set()
            return A("opened")
        await gate.wait()
        return (A("passed"), n)


@pytest.mark.parametrize("concurrent", [True, False])
async def test_a_concurrent_server_answers_a_call_while_another_waits(cookie: str, concurrent: bool) -> None:
    async with Node(unique_name("gate"), cookie=cookie) as node:
        node.start_server(Gate(concurrent), name="gate")
        first = asyncio.ensure_future(node.call(A("gate"), (A("wait"), 1), timeout=30))
        await asyncio.sleep(0.1)
        if concurrent:  # the waiting call does not hold the server: the next one opens its gate
            assert await node.call(A("gate"), (A("open"), 1), timeout=30) == "opened"
            assert await first == (A("passed"), 1)
        else:  # one at a time: the second call waits behind the first, which waits for it
            with pytest.raises(TimeoutError):
                await node.call(A("gate"), (A("open"), 1), timeout=1)
            first.cancel()


async def test_a_concurrent_call_that_raises_ends_the_server_as_a_plain_one_does(cookie: str) -> None:
    async with Node(unique_name("gate"), cookie=cookie) as node:
        node.start_server(Gate(True), name="gate")
        with pytest.raises(CallError) as crash:
            await node.call(A("gate"), A("crash"), timeout=30)
        assert crash.value.reason == (A("python_exception"), b"RuntimeError", b"broken")
        with pytest.raises(ValueError, match="no process is registered as"):  # the server is gone
            await node.call(A("gate"), (A("open"), 1), timeout=30)


# -- GroupCommit on its own ---------------------------------------------------------------------


async def test_items_that_arrive_while_a_write_runs_go_together_each_with_its_own_answer() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def write_many(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        await release.wait()
        return [ValueError(f"bad {i}") if i == 13 else i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write_many)
    calls = [asyncio.ensure_future(group.submit(i)) for i in range(1, 21)]
    await asyncio.sleep(0.05)
    assert batches == [[1]]  # nothing in flight: the first goes at once
    release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert batches == [[1], list(range(2, 21))]  # the others waited for it, then went as one
    assert [r for r in results if not isinstance(r, BaseException)] == [i * 10 for i in range(1, 21) if i != 13]
    assert isinstance(results[12], ValueError) and str(results[12]) == "bad 13"  # its caller alone


async def test_a_failed_write_fails_its_batch_only() -> None:
    fail = True

    async def write_many(items: list[int]) -> list[int | BaseException]:
        await asyncio.sleep(0)
        if fail:
            raise ConnectionError("database down")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write_many, max_items=3)
    with pytest.raises(ConnectionError):
        await group.submit(1)
    fail = False
    assert await asyncio.gather(*(group.submit(i) for i in range(7))) == list(range(7))
    assert group.largest <= 3


async def test_one_callers_items_share_a_batch_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def write_many(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        await asyncio.sleep(0)
        return [ValueError(f"bad {i}") if i == 4 else -i for i in items]

    group: GroupCommit[int, int] = GroupCommit(write_many, max_items=5)
    results = await group.submit_many(list(range(1, 8)))
    assert batches == [[1, 2, 3, 4, 5], [6, 7]]  # not its first item alone: at most max_items
    assert results[:3] == [-1, -2, -3] and results[4:] == [-5, -6, -7]
    assert isinstance(results[3], ValueError) and str(results[3]) == "bad 4"
    assert await group.submit_many([]) == []


# -- submissions --------------------------------------------------------------------------------


async def test_concurrent_submissions_commit_together_each_with_its_own_id(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"s1"), actor="t")
    server = StoreServer(db_conninfo)
    await server.init()
    try:
        replies = await asyncio.gather(
            *(server.handle_call(submit_request(b"s1", f"k{i}".encode()), None) for i in range(20))  # type: ignore[arg-type]
        )
        assert all(r[0] == "ok" and r[2] == "new" for r in replies), replies
        ids = [r[1].decode() for r in replies]
        assert len(set(ids)) == 20
        # The first went alone (nothing was in flight); the 19 that came meanwhile, in one transaction.
        assert server.submits.batches == 2 and server.submits.largest == 19
        assert len(await xmins(db, "commands", "satellite_id = 's1'", ())) == 2
        async with db.connection() as conn:
            rows = await (await conn.execute("SELECT id::text, idempotency_key FROM commands")).fetchall()
        assert {key: cid for cid, key in rows} == {f"k{i}": ids[i] for i in range(20)}  # each its own
        # Redelivery order is submission order: created_at rises within a batch.
        pending = await server.handle_call(A("pending_commands"), None)  # type: ignore[arg-type]
        assert [p[0].decode() for p in pending[1]] == ids
    finally:
        await server.close()


async def test_a_key_repeated_in_one_batch_is_one_command(db: Database) -> None:
    await Satellites(db).create(sat(b"s1"), actor="t")
    ledger = CommandLedger(db)
    results = await ledger.submit_many(
        [Submission("s1", "set_mode", {"mode": "standby"}, "same", "a"),
         Submission("s1", "noop", {}, "other", "a"),
         Submission("s1", "set_mode", {"mode": "nominal"}, "same", "b")]
    )  # fmt: skip
    first, other, again = results
    assert isinstance(first, tuple) and isinstance(other, tuple) and isinstance(again, tuple)
    assert first[1] is True and other[1] is True
    assert again == (first[0], False)  # the first one's command, as if submitted after it
    assert again[0].args == {"mode": "standby"} and again[0].status == "queued"
    assert len(await ledger.history("s1")) == 2
    async with db.connection() as conn:  # one audit entry per command written, none for the repeat
        count = await (await conn.execute("SELECT count(*) FROM audit_log WHERE action = 'command.submit'")).fetchone()
    assert count == (2,)


async def test_one_bad_submission_does_not_fail_the_others(db: Database) -> None:
    await Satellites(db).create(sat(b"s1"), actor="t")
    ledger = CommandLedger(db)
    results = await ledger.submit_many(
        [Submission("s1", "noop", {}, "k1"),
         Submission("nobody", "noop", {}, "k2"),  # no such satellite
         Submission("s1", "fly_to_mars", {}, "k3"),  # caught before SQL
         Submission("s1", "noop", {}, "k4")]
    )  # fmt: skip
    assert isinstance(results[0], tuple) and results[0][1] is True
    assert isinstance(results[1], NotFound) and results[1].field == "satellite_id"
    assert isinstance(results[2], ValidationError) and results[2].field == "kind"
    assert isinstance(results[3], tuple) and results[3][1] is True
    assert sorted(c.idempotency_key for c in await ledger.history("s1")) == ["k1", "k4"]
    # A value only the database refuses (jsonb holds no NUL) fails the batch: it goes one by one.
    results = await ledger.submit_many(
        [Submission("s1", "noop", {}, "k5"), Submission("s1", "noop", {"note": "a\x00b"}, "k6"), Submission("s1", "noop", {}, "k7")]
    )
    assert isinstance(results[0], tuple) and isinstance(results[2], tuple)
    assert isinstance(results[1], ValidationError)
    assert sorted(c.idempotency_key for c in await ledger.history("s1")) == ["k1", "k4", "k5", "k7"]


async def test_a_submission_past_its_deadline_writes_nothing_and_the_others_commit(db: Database) -> None:
    await Satellites(db).create(sat(b"s1"), actor="t")
    ledger = CommandLedger(db)
    soon = datetime.now(UTC) + timedelta(seconds=30)
    past = datetime.now(UTC) - timedelta(milliseconds=1)
    # Known first (an expired one revived late goes back to expired): set one up.
    (expired, _), = [r for r in await ledger.submit_many([Submission("s1", "noop", {}, "old")]) if isinstance(r, tuple)]
    assert await ledger.expire(expired.id)
    results = await ledger.submit_many(
        [Submission("s1", "noop", {}, "on-time", commit_by=soon),
         Submission("s1", "noop", {}, "late", commit_by=past),
         Submission("s1", "noop", {}, "late", commit_by=soon),  # the same key after a late one: refused too
         Submission("s1", "set_mode", {"mode": "safe"}, "old", commit_by=past)]
    )  # fmt: skip
    assert isinstance(results[0], tuple) and results[0][1] is True
    assert isinstance(results[1], LateCommit) and isinstance(results[2], LateCommit) and isinstance(results[3], LateCommit)
    history = {c.idempotency_key: c for c in await ledger.history("s1")}
    assert sorted(history) == ["old", "on-time"]
    assert history["old"].status == "expired"  # revived late: inert again, never delivered
    async with db.connection() as conn:
        audited = await (await conn.execute("SELECT entity_id FROM audit_log WHERE action = 'command.submit'")).fetchall()
    assert sorted(r[0] for r in audited) == sorted([str(expired.id), str(results[0][0].id)])


# -- creations ----------------------------------------------------------------------------------


async def test_concurrent_creations_commit_together_and_answer_one_by_one(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"old"), actor="t")
    server = StoreServer(db_conninfo)
    await server.init()
    try:
        deadline = now_ms() + 4000
        ids = [f"c{i:02d}".encode() for i in range(30)] + [b"old", b"c05"]
        bad = proto_v1.state_to_term(sat(b"bad", name=b"n" * 129))  # a name only the schema refuses (1..128)
        requests = [(A("create_satellite"), proto_v1.state_to_term(sat(i)), deadline) for i in ids]
        requests.insert(10, (A("create_satellite"), bad, deadline))
        replies = await asyncio.gather(*(server.handle_call(r, None) for r in requests))  # type: ignore[arg-type]
        assert replies[:10] == [A("ok")] * 10 and replies[11:31] == [A("ok")] * 20
        assert replies[10] == (A("error"), (A("bad_field"), A("name")))
        assert replies[31:] == [(A("error"), A("already_exists"))] * 2  # known before; twice in the batch
        assert server.creates.batches == 2
        assert await Satellites(db).count() == 31
        # The bad one made its batch go one by one: the first alone, then 31 transactions.
        assert len(await xmins(db, "satellites", "id LIKE 'c%%'", ())) == 30
        async with db.connection() as conn:
            audited = await (await conn.execute("SELECT count(*) FROM audit_log WHERE action = 'satellite.create'")).fetchone()
        assert audited == (31,)
        fresh = [(A("create_satellite"), proto_v1.state_to_term(sat(f"d{i:02d}".encode())), now_ms() + 4000) for i in range(30)]
        assert await asyncio.gather(*(server.handle_call(r, None) for r in fresh)) == [A("ok")] * 30  # type: ignore[arg-type]
        assert len(await xmins(db, "satellites", "id LIKE 'd%%'", ())) == 2  # the first, then the other 29 together
    finally:
        await server.close()


async def test_a_list_of_creations_is_one_transaction_answered_item_by_item(db: Database, db_conninfo: str) -> None:
    await Satellites(db).create(sat(b"old"), actor="t")
    server = StoreServer(db_conninfo)
    await server.init()
    try:
        ids = [f"m{i:03d}".encode() for i in range(300)]
        terms = [proto_v1.state_to_term(sat(i)) for i in [*ids[:150], b"old", ids[3], *ids[150:]]]
        reply = await server.handle_call((A("create_satellites"), terms, now_ms() + 4000), None)  # type: ignore[arg-type]
        assert reply[0] == A("ok") and len(reply[1]) == 302
        exists = (A("error"), A("already_exists"))
        assert reply[1][150:152] == [exists, exists]  # known before; earlier in the list
        assert reply[1][:150] + reply[1][152:] == [A("ok")] * 300
        assert len(await xmins(db, "satellites", "id LIKE 'm%%'", ())) == 1  # one transaction
        assert await Satellites(db).count() == 301
        # Refused whole and unwritten: past its deadline, a malformed state, not a list, too many.
        late = await server.handle_call((A("create_satellites"), [proto_v1.state_to_term(sat(b"late"))], now_ms() + 500), None)  # type: ignore[arg-type]
        assert late == (A("error"), A("store_unavailable"))
        broken = [proto_v1.state_to_term(sat(b"fine")), {A("id"): b"x"}]
        assert (await server.handle_call((A("create_satellites"), broken, now_ms() + 4000), None))[0] == A("error")  # type: ignore[arg-type]
        assert await server.handle_call((A("create_satellites"), b"x", now_ms() + 4000), None) == (A("error"), (A("bad_field"), A("satellites")))  # type: ignore[arg-type]
        many = [proto_v1.state_to_term(sat(f"z{i}".encode())) for i in range(2001)]
        assert await server.handle_call((A("create_satellites"), many, now_ms() + 4000), None) == (A("error"), (A("bad_field"), A("satellites")))  # type: ignore[arg-type]
        assert await Satellites(db).count() == 301
    finally:
        await server.close()


# -- casts: outcomes, "sent" marks and checkpoints ---------------------------------------------


async def test_queued_outcomes_marks_and_checkpoints_go_in_one_transaction_bad_ones_alone(db: Database, db_conninfo: str) -> None:
    sats = Satellites(db)
    for i in range(5):
        await sats.create(sat(f"s{i}".encode()), actor="t")
    ledger = CommandLedger(db)
    commands = [c for c, _ in [r for r in await ledger.submit_many([Submission(f"s{i}", "set_mode", {"mode": "standby"}, "k") for i in range(5)]) if isinstance(r, tuple)]]
    server = StoreServer(db_conninfo)
    await server.init()
    try:
        # Casts are handled without a pause (as the server handles its mailbox): all queue, then go together.
        ids = [str(c.id).encode() for c in commands]
        server.handle_cast((A("commands_sent"), [*ids, b"not-a-ledger-id"]))
        for i, cid in enumerate(ids):
            state = proto_v1.state_to_term(sat(f"s{i}".encode(), 2_000, Mode.STANDBY))
            outcome = A("done") if i != 3 else (A("failed"), A("low_energy"))
            server.handle_cast((A("command_result"), cid, f"s{i}".encode(), outcome, state))
        server.handle_cast((A("command_result"), ids[0], b"s0", A("done"), {A("id"): 42}))  # a bad state: dropped alone
        item = {A("id"): b"s4", A("state"): proto_v1.state_to_term(sat(b"s4", 3_000, Mode.SAFE)), A("deleted"): False}
        server.handle_cast((A("checkpoint"), [item]))
        await asyncio.wait_for(server._jobs.join(), 30)
        final = {c.satellite_id: c for c in [await ledger.get(c.id) for c in commands] if c is not None}
        assert [final[f"s{i}"].status for i in range(5)] == ["done", "done", "done", "failed", "done"]
        assert final["s3"].result == {"reason": "low_energy"}
        assert all(c.attempts == 1 and c.sent_at is not None for c in final.values())
        states = {i: await sats.get(f"s{i}") for i in range(5)}
        assert [s.state.mode for s in states.values() if s] == [Mode.STANDBY] * 4 + [Mode.SAFE]  # the newest state wins
        # The bad job made the batch go job by job: the good ones still landed, each on its own.
        assert len(await xmins(db, "commands", "status = 'done'", ())) == 4
        # Without a bad one: one transaction for the lot.
        more = [c for c, _ in [r for r in await ledger.submit_many([Submission(f"s{i}", "noop", {}, "m") for i in range(5)]) if isinstance(r, tuple)]]
        server.handle_cast((A("commands_sent"), [str(c.id).encode() for c in more]))
        server.handle_cast((A("commands_sent"), [str(more[0].id).encode()]))  # a second attempt
        for i, c in enumerate(more):
            state = proto_v1.state_to_term(sat(f"s{i}".encode(), 5_000, Mode.STANDBY))
            server.handle_cast((A("command_result"), str(c.id).encode(), f"s{i}".encode(), A("done"), state))
        await asyncio.wait_for(server._jobs.join(), 30)
        assert len(await xmins(db, "commands", "idempotency_key = 'm'", ())) == 1
        # A "sent" and the outcome in one batch: one UPDATE that does both.
        landed = [await ledger.get(c.id) for c in more]
        assert [(c.status, c.attempts) for c in landed if c] == [("done", 2)] + [("done", 1)] * 4
        assert all(c.sent_at is not None and c.finished_at is not None and c.sent_at <= c.finished_at for c in landed if c)
        assert len(await xmins(db, "satellites", "updated_at = to_timestamp(5)", ())) == 1
    finally:
        await server.close()


async def test_many_rows_in_one_statement_keep_every_column(db: Database) -> None:
    sats = Satellites(db)
    tle = (b"1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9000",
           b"2 25544  51.6400 208.9163 0006317  69.9862  25.2906 15.49560830    01")  # fmt: skip
    state = SatState(b"full", b"Full", Mode.SCIENCE, 42, 12.5, 2048.0, tle, (b"c-1", b"\x00\xff"), 7_000)
    assert await sats.create_many([state], actor="t") == [None]
    record = await sats.get("full")
    assert record is not None
    got = record.state
    assert (got.name, got.mode, got.energy_pct, got.memory_used_mb, got.tle, got.applied, got.updated_at) == (
        b"Full", Mode.SCIENCE, 42.0, 12.5, tle, (b"c-1", b"\x00\xff"), 7_000
    )
    newer = SatState(b"full", b"Full", Mode.SAFE, 41.0, 13.0, 2048.0, tle, (b"c-2", b"c-1"), 8_000)
    async with db.transaction() as conn:
        assert await checkpoint_rows(conn, [newer, state]) == 1  # the newest per satellite, once
    record = await sats.get("full")
    assert record is not None and record.state == newer
