"""The store role and quorum (issue 15, minority refusal): the BEAM node tells its store every tick
whether it has quorum (``{quorum, From, HasQuorum}``, answered ``{store_lease, Owner, Why}``).
A store told "no quorum" gives the ownership lease up at once (row deleted, lock released), so
another cluster member's store takes the database over without waiting out the grace period,
and it refuses every call meanwhile; told "quorum" again, it is a standby like any other.
And a renewal stuck on the database (as on a session a partition cut off) does not keep the lease
past its term. Real PostgreSQL, real store servers as processes of a (local-only) erldist node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg

from py_nodes.db import Database
from py_nodes.db.lease import OwnershipLease
from py_nodes.erldist import Atom, Node
from py_nodes.erldist.gen_server import GEN_CAST
from py_nodes.erldist.process import Process
from py_nodes.roles.store import StoreServer

A = Atom
# Longer than the test's bounds: the second store can only take over because the first gave the
# lease up (deleted its row), never because the first's renewals stopped for a grace period.
GRACE_S = 600.0


async def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.05)


async def tell(beam: Process, store: str, quorum: bool) -> tuple[Any, ...]:
    """What a BEAM node's stellar_store does every tick: the quorum cast, then the answer."""
    beam.send(A(store), (GEN_CAST, (A("quorum"), beam.pid, quorum)))
    answer: tuple[Any, ...] = await beam.receive(lambda m: type(m) is tuple and m[:1] == (A("store_lease"),), timeout=30)
    return answer


async def holder(db: Database) -> str | None:
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT holder FROM cluster_owner")).fetchone()
    return None if row is None else str(row[0])


async def test_a_store_without_quorum_gives_the_lease_up_and_a_peer_takes_it(db: Database, db_conninfo: str) -> None:
    node = Node("quorum_test@127.0.0.1", cookie=b"never-listens")  # local processes only
    first = StoreServer(db_conninfo, "stellar@a (store node store@a)", lease_grace_s=GRACE_S)
    node.start_server(first, name="store_a")
    await wait_for(lambda: first.lease.owner, "the first store owns the database")
    second = StoreServer(db_conninfo, "stellar@b (store node store@b)", lease_grace_s=GRACE_S)
    node.start_server(second, name="store_b")
    try:
        await wait_for(lambda: second._ready.is_set(), "the second store is connected")
        async with node.process() as beam_a, node.process() as beam_b:
            assert await tell(beam_a, "store_a", True) == (A("store_lease"), True, b"")
            standby = await tell(beam_b, "store_b", True)
            assert standby[1] is False and b"owned by stellar@a" in standby[2], standby

            # The first one's BEAM node lost quorum: it lets go at once and refuses everything.
            gave_up = await tell(beam_a, "store_a", False)
            assert gave_up[1] is False and b"no quorum" in gave_up[2], gave_up
            refused = await first.handle_call(A("pending_commands"), None)  # type: ignore[arg-type]
            assert refused[0] == "error" and refused[1][0] == "not_owner" and b"no quorum" in refused[1][1], refused
            await wait_for(lambda: second.lease.owner, "the second store takes the database over")
            assert await holder(db) == "stellar@b (store node store@b)"
            assert (await tell(beam_b, "store_b", True))[1] is True

            # Quorum back: the first is a standby now (the second holds the lease).
            back = await tell(beam_a, "store_a", True)
            await asyncio.sleep(3 * first.lease.retry_s)  # attempts, which must find the lock taken
            back = await tell(beam_a, "store_a", True)
            assert back[1] is False and b"owned by stellar@b" in back[2], back
            assert second.lease.owner and not first.lease.owner
            ok, _ = await second.handle_call(A("pending_commands"), None)  # type: ignore[arg-type]
            assert ok == "ok"
    finally:
        await first.close()
        await second.close()
        await node.stop()


async def test_a_renewal_stuck_on_the_database_does_not_keep_the_lease(db_conninfo: str) -> None:
    lease = OwnershipLease(db_conninfo, "stellar@a (store node store@a)", retry_s=0.5, renew_s=0.5, grace_s=3.0)
    await lease.start()
    try:
        assert lease.owner
        async with await psycopg.AsyncConnection.connect(db_conninfo) as blocker:
            # The row locked elsewhere: the next renewal waits, with no answer and no error.
            await blocker.execute("SELECT holder FROM cluster_owner FOR UPDATE")
            await wait_for(lambda: not lease.owner, "the lease runs out while its renewal hangs", 30)
            assert lease.held, "the lock's session should still look fine"
            await blocker.rollback()
        await wait_for(lambda: lease.owner, "owner again once the renewal gets its answer", 30)
    finally:
        await lease.close()
