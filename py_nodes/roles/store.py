"""The ``store`` role: the cluster's PostgreSQL, for the BEAM node's ``stellar_store``.

Registers ``store``, a GenServer. It owns the database through ``py_nodes.db`` (one pool): the
BEAM side never talks SQL. Requests (terms as ``stellar_store`` sends them)::

    call {create_satellite, SatState, DeadlineMs}      -> ok | {error, already_exists | ...}
                                                          (a late one is deleted at once)
    call {create_satellites, [SatState], DeadlineMs}   -> {ok, [ok | {error, already_exists | ...}]}
                                                          (at most MAX_BATCH; each as above)
    call {submit_command, _Proposed, SatId, Kind, Args, IdemKey | undefined, DeadlineMs, SubmittedBy | undefined}
                                                       -> {ok, CommandId, new | {existing, Status}}
                                                          (committed before DeadlineMs, or nothing)
    call satellites                                    -> {ok, [SatState]}   (live ones, by id)
    call pending_commands                              -> {ok, [{CommandId, SatId, Kind, Args}]}
    call/cast {checkpoint, [#{id, state, deleted}]}    -> ok
    cast {commands_sent, [CommandId]}
    cast {command_result, CommandId, SatId, Outcome, KnownState}
    cast {telemetry, From, BatchId, TelemetryRows}  (proto_v1.telemetry_rows; answered From ! {telemetry_ack, BatchId,
                                                         Stored, Rejected} | {telemetry_nack, BatchId})
    cast {alarm, SatId, #{alarm, severity, message}}   (to the alarms table; one active per kind)
    cast {quorum, From, HasQuorum}                     (every tick; answered From ! {store_lease,
                                                         Owner, Why})

One cluster owns the database (``OwnershipLease``: an advisory lock on a connection of its own):
while this store node does not hold it, every call answers ``{error, {not_owner, Why}}`` (BEAM
then restores and delivers nothing) and casts are not written; it keeps trying and takes over
when the owner stops or dies. A store whose BEAM node says it has no quorum (``{quorum, _,
false}``: the minority side of a partition) gives the lease up at once and takes it again only
once told it has quorum, so the majority side's store can take the database over.

Calls that must be durable before BEAM acknowledges anything (a new satellite, a command) go to
the database at once and answer ``{error, store_unavailable}`` when it is down. Calls run
concurrently (``concurrent_calls``): the submissions (and creations) that arrive while one
transaction commits go together in the next (``GroupCommit``: one fsync for the lot), each answered
on its own, exactly as if written alone (its own id, its own ``existing``, error or deadline).
Casts are work BEAM will not repeat, so they are never dropped: command outcomes and checkpoints
wait in order in a queue, retried with backoff while the database is down (checkpoints coalesced
per satellite); what queued while the previous write ran is written in one transaction ("sent"
marks, then states, then outcomes), or job by job when one of them is bad, so only it is dropped.
Telemetry goes to the bounded ``TelemetryWriter``. A command's outcome is written with (or after)
the state it produced: if we stop before, the command stays ``sent``, is delivered again, and the
actor, which has its id in ``applied``, answers ``done`` without applying it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from py_nodes import proto_v1
from py_nodes.db import (
    Alarms,
    Command,
    CommandLedger,
    Database,
    DatabaseUnavailable,
    NotFound,
    Satellites,
    TelemetryColumns,
    TelemetryWriter,
    ValidationError,
    migrate,
)
from py_nodes.db.commands import LateCommit, Submission, SubmitResult, finish_many, mark_sent_many
from py_nodes.db.errors import DbError
from py_nodes.db.lease import OwnershipLease
from py_nodes.db.satellites import checkpoint_rows, delete_rows
from py_nodes.erldist import Atom, Caller, GenServer, Node, Pid
from py_nodes.jsonterms import to_json
from py_nodes.roles.alarming import AlarmKeeper
from py_nodes.roles.group_commit import GroupCommit
from py_nodes.satellite.model import SatState
from py_nodes.settings import Settings

__all__ = ["StoreServer", "serve_store", "start"]

log = logging.getLogger("stellarops.store")

ACTOR: Final = "beam"
OK: Final = Atom("ok")
ERROR: Final = Atom("error")
UNAVAILABLE: Final = (ERROR, Atom("store_unavailable"))
RETRY_INITIAL_S: Final = 0.2
RETRY_MAX_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 2.0  # under the BEAM side's 4 s submit timeout
# A command commits this long before its caller's deadline, or not at all: time for the reply.
COMMIT_MARGIN_S: Final = 1.0
LATE_LOG_S: Final = 10.0
MAX_BATCH: Final = 2000  # submissions, creations or queued jobs in one transaction
# Telemetry rows a COPY transaction writes at most, and rows the writer holds: at 100,000
# satellites one commit (and its fsync) per 5,000 rows kept the writer at ~75,000 rows/s with
# the CPU not full; per 20,000 it keeps up with 100,000/s. The writer holds two BEAM nodes'
# windows (stellar_store's telemetry_window: 80 batches of up to 1,000 rows each).
TELEMETRY_BATCH_ROWS: Final = 20_000
TELEMETRY_MAX_ROWS: Final = 200_000


class StoreServer(GenServer):
    concurrent_calls = True  # submissions wait for their group's commit, not for each other

    def __init__(self, conninfo: str, holder: str | None = None, *, lease_grace_s: float = 10.0) -> None:
        self.db = Database(conninfo, max_size=8, timeout_s=CONNECT_TIMEOUT_S, name="store")
        # One cluster owns the database: calls and casts are refused while we do not hold this.
        self.lease = OwnershipLease(conninfo, holder or f"store (os pid {os.getpid()})", grace_s=lease_grace_s)
        self._refused_casts = 0
        self._late, self._late_logged_at = 0, -math.inf  # calls refused for their deadline
        self.satellites = Satellites(self.db)
        self.ledger = CommandLedger(self.db)
        self.alarms = Alarms(self.db)
        self.telemetry = TelemetryWriter(self.db, max_rows=TELEMETRY_MAX_ROWS, batch_rows=TELEMETRY_BATCH_ROWS)
        # Limits judged on every telemetry sample, alarm transitions stored and published.
        self.alarm_keeper = AlarmKeeper(self.db, self._publish_alarm, lambda: self.lease.owner)
        self.beam_node: str | None = None  # where alarm events are published (set by serve_store)
        # Durable work in arrival order; checkpoints coalesced by satellite id (latest wins).
        self._jobs: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._checkpoints: OrderedDict[str, dict[Atom, Any]] = OrderedDict()
        self._worker: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Group commit: a caller awaits its own item's answer (an error of its own is raised).
        # Items carry their caller's deadline (s since the epoch): one written after it is undone
        # (``_Late``) with the others of its batch, in one statement.
        self.submits: GroupCommit[tuple[Submission, float], tuple[Command, bool]] = GroupCommit(self._submit_many, max_items=MAX_BATCH)
        self.creates: GroupCommit[tuple[SatState, float], None] = GroupCommit(self._create_many, max_items=MAX_BATCH)

    async def init(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run_jobs())
        await self._connect()

    async def _connect(self) -> None:
        delay_s = RETRY_INITIAL_S
        while True:
            try:
                await self.db.connect()
                applied = await migrate(self.db)
                break
            except DatabaseUnavailable as exc:
                log.warning("store: %s; retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, RETRY_MAX_S)
        if applied:
            log.info("store: applied %s", ", ".join(m.filename for m in applied))
        await self.telemetry.start()
        await self.lease.start()
        self.alarm_keeper.start()
        self._ready.set()
        log.info("store: connected to %s", self.db.target)

    async def close(self, timeout_s: float = 1.5) -> None:
        """A clean stop: finish the durable work and flush telemetry (each within ``timeout_s``:
        BEAM kills a Python node 2 s after asking it to stop)."""
        if self._ready.is_set():
            try:
                await asyncio.wait_for(self.submits.wait_idle(), timeout_s)  # replies of calls in flight
                await asyncio.wait_for(self._jobs.join(), timeout_s)
            except TimeoutError:
                log.error("store: stopping with %d durable job(s) not written", self._jobs.qsize())
        await self.alarm_keeper.close()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        stats = await self.telemetry.close(timeout_s)
        if stats.lost_on_close:
            log.error("store: %d telemetry row(s) not written at stop", stats.lost_on_close)
        await self.lease.close()  # last: the next owner finds everything written
        await self.db.close()

    # -- calls: durable before BEAM acknowledges --------------------------------------------

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if not self.lease.owner:  # another cluster owns the database: restore nothing, write nothing
            return (ERROR, (Atom("not_owner"), self.lease.reason.encode()))
        try:
            return await self._call(request)
        except DatabaseUnavailable as exc:
            log.warning("store: %s", exc)
            return UNAVAILABLE
        except NotFound as exc:
            return (ERROR, Atom("not_found")) if exc.field == "satellite_id" else (ERROR, (Atom("bad_field"), Atom(exc.field)))
        except ValidationError as exc:
            return (ERROR, (Atom("bad_field"), Atom(exc.field)))
        except proto_v1.ProtocolError as exc:
            return (ERROR, (Atom("bad_field"), Atom(str(exc.field))))
        except Exception as exc:  # a bug: answer, log, keep serving
            log.exception("store: %.200r failed", request)
            return (ERROR, (Atom("internal"), f"{type(exc).__name__}: {exc}".encode()))

    async def _call(self, request: Any) -> Any:
        if request == "satellites":
            return (OK, [proto_v1.state_to_term(r.state) for r in await self.satellites.resume_states()])
        if request == "pending_commands":
            pending = await self.ledger.pending(limit=100_000)
            return (OK, [term for c in pending if (term := _pending_term(c)) is not None])
        if type(request) is not tuple or not request:
            return (ERROR, Atom("unknown_call"))
        tag = request[0]
        if tag == "create_satellite" and len(request) == 3:
            return await self._create(request[1], request[2])
        if tag == "create_satellites" and len(request) == 3:
            return await self._create_list(request[1], request[2])
        if tag == "submit_command" and len(request) in (7, 8):  # 7: a node without submitted_by
            return await self._submit(*request[2:])
        if tag == "checkpoint" and len(request) == 2 and type(request[1]) is list:
            self._queue_checkpoints(request[1])
            await self._jobs.join()  # a call (the final checkpoint at stop) waits for the write
            return OK
        return (ERROR, Atom("unknown_call"))

    async def _create(self, term: Any, deadline_ms: Any) -> Any:
        """A new satellite, refused unwritten past ``deadline_ms`` (its caller gave up), and
        deleted again (never restored) if the write itself outlived the caller: a list of one."""
        reply = await self._create_list([term], deadline_ms)
        return reply[1][0] if type(reply) is tuple and reply[0] == OK else reply

    async def _create_list(self, terms: Any, deadline_ms: Any) -> Any:
        """Many new satellites (an import) in one call, written in as few transactions as
        ``creates`` batches them; each answered as ``_create`` would. A malformed state refuses
        the whole call unwritten: BEAM checked every one, so it is a bug, not an operator's."""
        if type(terms) is not list or len(terms) > MAX_BATCH:
            return (ERROR, (Atom("bad_field"), Atom("satellites")))
        if type(deadline_ms) is not int:
            return (ERROR, (Atom("bad_field"), Atom("deadline")))
        states = [proto_v1.state_from_term(term) for term in terms]
        if time.time() > deadline_ms / 1000 - COMMIT_MARGIN_S:
            self._refused_late("%d satellite(s) refused uncreated: the call arrived after its deadline", len(states))
            return UNAVAILABLE
        for state in states:
            self.alarm_keeper.note_capacity(state.id.decode(), state.memory_capacity_mb)
        results = await self.creates.submit_many([(state, deadline_ms / 1000) for state in states])
        return (OK, [_create_answer(result) for result in results])

    async def _submit(self, sat_id: Any, kind: Any, args: Any, key: Any, deadline_ms: Any, by: Any = None) -> Any:
        """A command into the ledger, committed before ``deadline_ms`` (the caller's timeout,
        ms since the epoch) less ``COMMIT_MARGIN_S`` for the reply, or not at all: a caller
        that gave up was told "refused", and a refused command must never run."""
        if not (type(sat_id) is bytes and type(kind) is Atom and type(args) is dict):
            return (ERROR, (Atom("bad_field"), Atom("command")))
        if key is not None and type(key) is not bytes:
            return (ERROR, (Atom("bad_field"), Atom("idempotency_key")))
        if type(deadline_ms) is not int:
            return (ERROR, (Atom("bad_field"), Atom("deadline")))
        submitted_by = _submitter(by)
        if submitted_by is None:
            return (ERROR, (Atom("bad_field"), Atom("submitted_by")))
        deadline_s = deadline_ms / 1000
        if time.time() > deadline_s - COMMIT_MARGIN_S:  # waited in the mailbox: its caller gave up
            self._refused_late("command for %s refused unwritten: it arrived after its deadline", sat_id.decode(errors="replace"))
            return UNAVAILABLE
        commit_by = datetime.fromtimestamp(deadline_s - COMMIT_MARGIN_S, UTC)
        try:
            key_text = None if key is None else key.decode()
        except UnicodeDecodeError:
            return (ERROR, (Atom("bad_field"), Atom("idempotency_key")))
        submission = Submission(sat_id.decode(errors="replace"), str(kind), _args_json(args), key_text, submitted_by, commit_by)
        try:
            command, created = await self.submits.submit((submission, deadline_s))  # committed with the others that came meanwhile
        except LateCommit as exc:
            self._refused_late("%s", exc)
            return UNAVAILABLE
        except _Late:  # the COMMIT itself outlived the caller: expired, never delivered
            return UNAVAILABLE
        status = Atom("new") if created else (Atom("existing"), Atom(command.status))
        return (OK, str(command.id).encode(), status)

    def _refused_late(self, message: str, arg: object) -> None:
        """One warning per LATE_LOG_S at most (with the count since the last): an overloaded
        store must not spend its time logging each call it is too late for."""
        self._late += 1
        now = time.monotonic()
        if now - self._late_logged_at >= LATE_LOG_S:
            log.warning("store: " + message + " (%d refused so far)", arg, self._late)
            self._late_logged_at = now

    async def _create_many(self, items: list[tuple[SatState, float]]) -> list[DbError | _Late | None]:
        # Items whose callers gave up while they waited for this batch (an import bigger than
        # the store writes in time) are refused unwritten, not written and deleted again.
        start = time.time()
        results: list[DbError | _Late | None] = [_Late() if start > d - COMMIT_MARGIN_S else None for _, d in items]
        timely = [i for i, r in enumerate(results) if r is None]
        if len(timely) < len(items):
            self._refused_late("%d satellite(s) refused uncreated: their callers' deadline passed while they waited", len(items) - len(timely))
        written = await self.satellites.create_many([items[i][0] for i in timely], actor=ACTOR) if timely else []
        for i, r in zip(timely, written, strict=True):
            results[i] = r
        now = time.time()
        late = [i for i in timely if results[i] is None and now > items[i][1]]
        if late:
            await self.satellites.delete([items[i][0].id.decode() for i in late], actor=ACTOR)
            log.warning("store: %d satellite(s) written after their callers' deadline: deleted again", len(late))
            for i in late:
                results[i] = _Late()
        return results

    async def _submit_many(self, items: list[tuple[Submission, float]]) -> list[SubmitResult | _Late]:
        results: list[SubmitResult | _Late] = list(await self.ledger.submit_many([s for s, _ in items]))
        now = time.time()
        late = [i for i, ((_, deadline_s), r) in enumerate(zip(items, results, strict=True)) if isinstance(r, tuple) and r[1] and now > deadline_s]
        if late:
            # The COMMIT itself outlived the caller: make the rows inert before anything sees them.
            ids = [r[0].id for i in late if isinstance(r := results[i], tuple)]
            await self.ledger.expire_many(ids)
            log.warning("store: %d command(s) committed after their callers' deadline: expired, never delivered", len(late))
            for i in late:
                results[i] = _Late()
        return results

    async def _publish_alarm(self, sat_id: str, data: dict[str, Any]) -> None:
        """An alarm transition on BEAM's event bus (every gateway's event streams)."""
        if self.beam_node is None:
            return
        term = {Atom(k): v.encode() if isinstance(v, str) else v for k, v in data.items()}
        await self.process.node.rpc(self.beam_node, "stellar", "publish", [Atom("alarm"), sat_id.encode(), term], timeout=5)

    # -- casts: never dropped ---------------------------------------------------------------

    def handle_cast(self, request: Any) -> None:
        if type(request) is not tuple or len(request) < 2:
            log.warning("store: dropped a malformed cast %.200r", request)
            return
        tag = request[0]
        if tag == "quorum" and len(request) == 3 and type(request[1]) is Pid and type(request[2]) is bool:
            self._quorum(request[1], request[2])
            return
        if not self.lease.ever_owned:  # a cluster that never owned the database has nothing to write
            self._refuse_cast(request)
            return
        if tag == "telemetry" and len(request) == 4 and type(request[1]) is Pid and type(request[2]) is int:
            self._telemetry_batch(request[1], request[2], request[3])
        elif tag == "checkpoint" and type(request[1]) is list:
            self._queue_checkpoints(request[1])
        elif tag == "commands_sent" and type(request[1]) is list:
            self._jobs.put_nowait(("sent", [c for c in request[1] if type(c) is bytes]))
        elif tag == "command_result" and len(request) == 5:
            self._jobs.put_nowait(("result", request[1:]))
        elif tag == "alarm" and len(request) == 3 and type(request[1]) is bytes and type(request[2]) is dict:
            self._jobs.put_nowait(("alarm", request[1:]))
        else:
            log.warning("store: dropped an unknown cast %.200r", request)

    def _quorum(self, sender: Pid, quorum: bool) -> None:
        """BEAM's word on quorum (every tick): the lease follows it; the answer says whether we
        own the database now."""
        if quorum != self.lease.allowed and not quorum:
            log.warning("store: this node's BEAM node has no quorum: giving the ownership lease up")
        self.lease.allow(quorum)
        owner = self.lease.owner
        self.process.send(sender, (Atom("store_lease"), owner, b"" if owner else self.lease.reason.encode()))

    def _refuse_cast(self, request: tuple[Any, ...]) -> None:
        if request[0] == "telemetry" and len(request) == 4 and type(request[1]) is Pid:
            self.process.send(request[1], (Atom("telemetry_nack"), request[2]))  # BEAM keeps it
            return
        self._refused_casts += 1
        if self._refused_casts % 100 == 1:
            log.warning("store: %s not written (%d so far): %s", request[0], self._refused_casts, self.lease.reason)

    def _telemetry_batch(self, sender: Pid, batch_id: int, packed: Any) -> None:
        """A batch (``proto_v1.telemetry_rows``) BEAM keeps until we confirm it:
        ``{telemetry_ack, BatchId, Stored, Rejected}`` once the database has it,
        ``{telemetry_nack, BatchId}`` at once if we cannot take it (BEAM sends it again later;
        the insert is idempotent, so twice is harmless). A batch off the contract is confirmed
        as rejected whole: sent again it would be refused again. A batch the writer has no room
        for is refused by its row count, before it is read: when the database falls behind,
        reading every batch only to refuse it took most of this loop (100,000 satellites)."""
        if type(packed) is tuple and len(packed) == 5 and type(packed[2]) is int and not self.telemetry.has_room(packed[2]):
            self.process.send(sender, (Atom("telemetry_nack"), batch_id))
            return
        try:
            batch = _telemetry_columns(proto_v1.telemetry_batch_from_term(packed))
        except proto_v1.ProtocolError as exc:
            count = packed[2] if type(packed) is tuple and len(packed) == 5 and type(packed[2]) is int else 0
            log.warning("store: rejected a telemetry batch off the contract (%s)", exc)
            self.process.send(sender, (Atom("telemetry_ack"), batch_id, 0, max(count, 0)))
            return

        def confirm(stored: int, rejected: int) -> None:
            self.process.send(sender, (Atom("telemetry_ack"), batch_id, stored, rejected))

        if not self.telemetry.offer_batch(batch, confirm):
            self.process.send(sender, (Atom("telemetry_nack"), batch_id))
            return
        self.alarm_keeper.offer(batch)  # samples judged twice (a batch sent again) count once

    def _queue_checkpoints(self, items: list[Any]) -> None:
        fresh = not self._checkpoints
        for item in items:
            if type(item) is dict and type(item.get(Atom("id"))) is bytes:
                sat_id = item[Atom("id")].decode()
                state = item.get(Atom("state"))
                if type(state) is dict:
                    self.alarm_keeper.note_capacity(sat_id, state.get(proto_v1.K_MEMORY_CAPACITY))
                self._checkpoints.pop(sat_id, None)
                self._checkpoints[sat_id] = item
        if fresh and self._checkpoints:
            self._jobs.put_nowait(("checkpoints", None))

    async def _run_jobs(self) -> None:
        """The durable work in arrival order: what queued while the previous write ran goes
        in one transaction, retried until the database takes it."""
        await self._ready.wait()
        while True:
            jobs = [await self._jobs.get()]
            while len(jobs) < MAX_BATCH and not self._jobs.empty():
                jobs.append(self._jobs.get_nowait())
            await self._write([j for j in jobs if j[0] != "alarm"])
            for job in jobs:
                if job[0] == "alarm":  # a transaction of its own (rare)
                    await self._write([job])
                self._jobs.task_done()

    async def _write(self, jobs: list[tuple[str, Any]]) -> None:
        """``jobs`` in one transaction, retried while the database is down; when the lot fails
        otherwise (bad data), job by job, so only the bad one is dropped."""
        delay_s = RETRY_INITIAL_S
        while jobs:
            try:
                await self._do(jobs)
                return
            except DatabaseUnavailable as exc:
                log.warning("store: %s; retrying %d job(s) in %.1f s", exc, len(jobs), delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, RETRY_MAX_S)
            except Exception:  # bad data: it will not get better by retrying
                if len(jobs) == 1:
                    log.exception("store: %s job dropped", jobs[0][0])
                    return
                for job in jobs:
                    await self._write([job])
                return

    async def _do(self, jobs: list[tuple[str, Any]]) -> None:
        if len(jobs) == 1 and jobs[0][0] == "alarm":
            sat_id, data = jobs[0][1]
            message = data.get(Atom("message"), b"")
            await self.alarms.raise_alarm(
                sat_id.decode(), str(data.get(Atom("alarm"))), str(data.get(Atom("severity"))),  # type: ignore[arg-type]
                message.decode(errors="replace") if type(message) is bytes else "",
            )  # fmt: skip
            return
        sent: list[uuid.UUID] = []
        states: dict[bytes, SatState] = {}  # the newest state per satellite
        outcomes: list[tuple[uuid.UUID, bool, Any]] = []
        taken: list[dict[Atom, Any]] = []  # checkpoints written by this transaction
        for kind, payload in jobs:
            if kind == "sent":
                sent.extend(u for c in payload if (u := _command_uuid(c)) is not None)
            elif kind == "result":
                command_id, _sat_id, outcome, state = payload
                _newest(states, proto_v1.state_from_term(_sat_state(state)))
                if (u := _command_uuid(command_id)) is not None:
                    done = outcome == "done"
                    outcomes.append((u, done, {"outcome": "done"} if done else to_json(outcome[1] if type(outcome) is tuple else outcome)))
            elif kind == "checkpoints" and not taken:
                taken = list(self._checkpoints.values())
                for item in taken:
                    if not item.get(Atom("deleted")):
                        _newest(states, proto_v1.state_from_term(_sat_state(item[Atom("state")])))
        gone = [i[Atom("id")].decode() for i in taken if i.get(Atom("deleted"))]
        finished = {o[0] for o in outcomes}
        # One round trip for the lot (pipelined); a command with its "sent" and its outcome in
        # this batch (the usual case) is updated once.
        async with self.db.transaction(pipelined=True) as conn:
            await mark_sent_many(conn, [u for u in sent if u not in finished])
            await checkpoint_rows(conn, list(states.values()))
            if gone:
                await delete_rows(conn, gone, actor=ACTOR)
            await finish_many(conn, outcomes, Counter(u for u in sent if u in finished))
        for item in taken:  # newer ones that came in meanwhile stay for the next job
            sat_id = item[Atom("id")].decode()
            if self._checkpoints.get(sat_id) is item:
                del self._checkpoints[sat_id]
        if taken and self._checkpoints:
            self._jobs.put_nowait(("checkpoints", None))


def _newest(states: dict[bytes, SatState], state: SatState) -> None:
    known = states.get(state.id)
    if known is None or known.updated_at < state.updated_at:
        states[state.id] = state


def _command_uuid(command_id: Any) -> uuid.UUID | None:
    """A ledger id from BEAM; None for anything else (an id from before persistence was on)."""
    try:
        return uuid.UUID(command_id.decode()) if type(command_id) is bytes else None
    except ValueError:
        return None


class _Late(Exception):
    """Written after its caller's deadline, and undone (the caller was told "unavailable")."""


def _sat_state(known: Any) -> Any:
    """The SatState keys of a shadow's known state (which also carries the last position)."""
    if type(known) is not dict:
        return known
    return {k: v for k, v in known.items() if k in proto_v1.STATE_KEYS}


def _submitter(by: Any) -> str | None:
    """Who the ledger records for a command: the gateway's principal (1..128 bytes of UTF-8),
    or this node for a caller that names nobody (``undefined``); None when ``by`` is bad."""
    if by is None or by == Atom("undefined"):
        return ACTOR
    if type(by) is not bytes or not 1 <= len(by) <= 128:
        return None
    try:
        return by.decode()
    except UnicodeDecodeError:
        return None


def _args_json(args: dict[Any, Any]) -> dict[str, Any]:
    value = to_json(args)
    assert isinstance(value, dict)
    return value


def _create_answer(result: object) -> Any:
    """A creation's result (``creates``) as the term ``create_satellite`` answers: a database
    that went away answers this item ``store_unavailable``, like a late write."""
    if result is None:
        return OK
    if isinstance(result, _Late | DatabaseUnavailable):
        return UNAVAILABLE
    if isinstance(result, ValidationError):
        return (ERROR, Atom("already_exists")) if result.field == "id" else (ERROR, (Atom("bad_field"), Atom(result.field)))
    log.error("store: a creation failed: %r", result)
    return (ERROR, (Atom("internal"), type(result).__name__.encode()))


def _pending_term(command: Command) -> tuple[bytes, bytes, Atom, dict[Atom, Any]] | None:
    """``{CommandId, SatId, Kind, Args}`` with the args as the shell gave them (a mode is an
    atom again: proto_v1.COMMAND_ARGS); None (logged) for a row that no table reading fits."""
    try:
        args = proto_v1.command_args_from_json(command.kind, command.args)
    except proto_v1.ProtocolError as exc:
        log.error("store: command %s not delivered again: %s", command.id, exc)
        return None
    return (str(command.id).encode(), command.satellite_id.encode(), Atom(command.kind), args)


def _telemetry_columns(batch: proto_v1.TelemetryBatch) -> TelemetryColumns:
    r = batch.records
    return TelemetryColumns(
        batch.sat_ids, r["updated_at_ms"], r["energy_pct"], r["memory_used_mb"], batch.modes(),
        batch.position_known(), r["lat_deg"], r["lon_deg"], r["alt_km"], batch.in_sunlight(),
    )


def serve_store(node: Node, conninfo: str, beam_node: str | None = None) -> StoreServer:
    """Start the ``store`` server on ``node`` (it connects, migrates, then serves)."""
    # The cluster's name, stable across restarts of this node: a restarted store of the owning
    # cluster takes its lease back at once (a newcomer waits the grace period).
    server = StoreServer(conninfo, f"{beam_node or 'a cluster'} (store node {node.name})")
    server.beam_node = beam_node
    node.start_server(server, name="store")
    return server


def start(node: Node, settings: Settings) -> Callable[[], Awaitable[None]]:
    """The role's entry point for ``stellarops node --role store`` (needs DATABASE_URL); returns
    what to await on a clean stop."""
    conninfo = settings.database.url
    if not conninfo:
        raise ValueError("the store role needs DATABASE_URL (stellarops up sets it)")
    return serve_store(node, conninfo, settings.node.beam_node).close

