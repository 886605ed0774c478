"""The command ledger: a command is written here before it is acknowledged.

Life of a command: ``queued`` (written, acknowledged) -> ``sent`` (handed to the satellite;
again on each redelivery) -> ``done`` | ``failed`` (final). Submitting again with the same
idempotency key for the same satellite returns the original command, whatever its payload.
A submission may carry ``commit_by``: the insert is rolled back (``LateCommit``) unless the
database's clock is still before it just before COMMIT, so a caller that was told "refused"
finds no row. A row that committed late anyway (the COMMIT itself outlived the caller) is
marked ``expired`` with ``expire()``: never delivered, not final, and the same key submitted
again revives it as a new command.
Marking a final command again changes nothing and returns the existing outcome, so results that
arrive twice (redelivery, retries) are recorded exactly once. ``pending()`` lists what to
(re)deliver after a restart: everything queued or sent.

Group commit: ``submit_many`` records many submissions in one transaction with the same answer
per item as ``submit`` one after the other (a key repeated in the batch: the first is new, the
others get it as existing); ``mark_sent_many`` and ``finish_many`` are ``mark_sent`` and
``mark_done``/``mark_failed`` for many commands, on the caller's transaction.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import class_row

from py_nodes import vocabulary
from py_nodes.satellite.modes import Mode

from .audit import append_audit
from .errors import DbError, NotFound, ValidationError
from .pool import Connection, Database
from .values import check_actor, check_text, json_object, json_value, refused

__all__ = [
    "COMMAND_KINDS", "Command", "CommandLedger", "CommandStatus", "LateCommit", "Submission", "SubmitResult",
    "finish_many", "mark_sent_many",
]  # fmt: skip

CommandStatus = Literal["queued", "sent", "done", "failed", "expired"]
# The kinds an actor knows (docs/protocol-v1.md, "Talking to an actor").
COMMAND_KINDS: Final = frozenset(vocabulary.COMMAND_KINDS)
MAX_IDEMPOTENCY_KEY_CHARS: Final = 128
_SAT_ID: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_COLUMNS: Final = (
    "id, satellite_id, kind, args, idempotency_key, status, attempts, result, submitted_by,"
    " created_at, sent_at, finished_at"
)


class LateCommit(DbError):
    """The submission could not commit before its ``commit_by``: nothing was written."""


@dataclass(frozen=True, slots=True)
class Command:
    id: uuid.UUID
    satellite_id: str
    kind: str
    args: dict[str, Any]
    idempotency_key: str
    status: CommandStatus
    attempts: int  # times sent
    result: Any  # JSON; set when done or failed
    submitted_by: str
    created_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None

    @property
    def final(self) -> bool:
        return self.status in ("done", "failed")


@dataclass(frozen=True, slots=True)
class Submission:
    """One command for ``CommandLedger.submit_many`` (the arguments of ``submit``)."""

    satellite_id: str
    kind: str
    args: dict[str, Any] | None = None
    idempotency_key: str | None = None
    actor: str = "system"
    commit_by: datetime | None = None


SubmitResult = tuple[Command, bool] | DbError
_Prepared = tuple[str, str, str, str, str, datetime | None]  # satellite, kind, args JSON, key, actor, commit_by


class CommandLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def submit(
        self,
        satellite_id: str,
        kind: str,
        args: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        *,
        actor: str = "system",
        commit_by: datetime | None = None,
    ) -> tuple[Command, bool]:
        """Record a command: ``(command, True)``, or ``(original, False)`` for a known key
        (an ``expired`` original is revived with this payload: ``(revived, True)``).

        Without a key every call is a new command. Bad input raises ValidationError (NotFound
        for an unknown satellite) and writes nothing; so does ``LateCommit``, raised when the
        transaction is still open at ``commit_by`` (timezone-aware).
        """
        check_text(satellite_id, "satellite_id", max_chars=64, pattern=_SAT_ID)
        payload = json_object({} if args is None else args, "args")
        _check_kind(kind, args)
        key = str(uuid.uuid4()) if idempotency_key is None else idempotency_key
        check_text(key, "idempotency_key", max_chars=MAX_IDEMPOTENCY_KEY_CHARS)
        check_actor(actor)
        async with self._db.transaction() as conn:
            cur = conn.cursor(row_factory=class_row(Command))
            try:
                await cur.execute(
                    "INSERT INTO commands (satellite_id, kind, args, idempotency_key, submitted_by, accept_by)"
                    f" VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (satellite_id, idempotency_key) DO NOTHING RETURNING {_COLUMNS}",
                    (satellite_id, kind, payload, key, actor, commit_by),
                )
            except psycopg.errors.ForeignKeyViolation:
                raise NotFound("satellite_id", f"no satellite {satellite_id!r}") from None
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise refused(exc) from None
            created = await cur.fetchone()
            if created is None:  # the key is known: the original wins, unless it expired
                await cur.execute(
                    "UPDATE commands SET kind = %s, args = %s, status = 'queued', attempts = 0, submitted_by = %s,"
                    " created_at = now(), sent_at = NULL, accept_by = %s"
                    f" WHERE satellite_id = %s AND idempotency_key = %s AND status = 'expired' RETURNING {_COLUMNS}",
                    (kind, payload, actor, commit_by, satellite_id, key),
                )
                created = await cur.fetchone()
            if created is None:
                await cur.execute(
                    f"SELECT {_COLUMNS} FROM commands WHERE satellite_id = %s AND idempotency_key = %s",
                    (satellite_id, key),
                )
                original = await cur.fetchone()
                assert original is not None
                return original, False
            details = {"satellite_id": satellite_id, "kind": kind, "args": created.args}
            await append_audit(conn, actor, "command.submit", "command", str(created.id), details)
            if commit_by is not None:
                # Last thing before COMMIT, on the database's clock: past commit_by, write nothing.
                on_time = await (await conn.execute("SELECT clock_timestamp() < %s", (commit_by,))).fetchone()
                if not (on_time and on_time[0]):
                    raise LateCommit(f"command for {satellite_id!r} not written: past its deadline {commit_by.isoformat()}")
        return created, True

    async def submit_many(self, submissions: Sequence[Submission]) -> list[SubmitResult]:
        """``submit`` for each submission, new keys in one statement and the rest (known or
        expired keys, unknown satellites, late items) in one transaction: per item ``(command, created)``
        or the error ``submit`` would raise for it (ValidationError, NotFound, LateCommit), which
        writes nothing for that item only. A row the checks miss and the schema refuses makes
        the lot go one by one (``submit`` each), so it fails alone."""
        results: list[SubmitResult | None] = [None] * len(submissions)
        leaders: dict[tuple[str, str], int] = {}  # (satellite, key) -> its first item
        followers: dict[int, int] = {}  # a later item with the same key -> the first one
        prepared: dict[int, _Prepared] = {}
        for i, sub in enumerate(submissions):
            try:
                item = _prepare(sub)
            except ValidationError as exc:
                results[i] = exc
                continue
            pair = (item[0], item[3])
            if pair in leaders:
                followers[i] = leaders[pair]
            else:
                leaders[pair] = i
                prepared[i] = item
        if prepared:
            try:
                async with self._db.connection() as conn:
                    results_by_pair: dict[tuple[str, str], SubmitResult] = await _insert_new(conn, list(prepared.values()))
                rest = [item for item in prepared.values() if (item[0], item[3]) not in results_by_pair]
                if rest:  # known keys, expired ones, unknown satellites, late items: the full path
                    async with self._db.transaction() as conn:
                        results_by_pair.update(await _submit_batch(conn, rest))
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
                return await self._submit_one_by_one(submissions)
            for i, item in prepared.items():
                results[i] = results_by_pair[(item[0], item[3])]
        for i, first in followers.items():
            lead = results[first]
            # Submitted after the first in the same batch: it finds the first one's command.
            results[i] = (lead[0], False) if isinstance(lead, tuple) else lead
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    async def _submit_one_by_one(self, submissions: Sequence[Submission]) -> list[SubmitResult]:
        results: list[SubmitResult] = []
        for sub in submissions:
            try:
                results.append(
                    await self.submit(sub.satellite_id, sub.kind, sub.args, sub.idempotency_key,
                                      actor=sub.actor, commit_by=sub.commit_by)
                )  # fmt: skip
            except (ValidationError, LateCommit) as exc:
                results.append(exc)
        return results

    async def expire(self, command_id: uuid.UUID | str) -> bool:
        """Queued -> expired (a commit that outlived its caller: never to be delivered); False
        when the command had already moved on (then it was accepted after all)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "UPDATE commands SET status = 'expired' WHERE id = %s AND status = 'queued'", (_uuid(command_id),)
            )
            return cur.rowcount == 1

    async def expire_many(self, command_ids: Sequence[uuid.UUID]) -> int:
        """``expire`` for each id, in one statement; how many were still queued."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "UPDATE commands SET status = 'expired' WHERE id = ANY(%s) AND status = 'queued'", (list(command_ids),)
            )
            return cur.rowcount

    async def get(self, command_id: uuid.UUID | str) -> Command | None:
        async with self._db.connection() as conn:
            return await _get(conn, _uuid(command_id))

    async def mark_sent(self, command_id: uuid.UUID | str) -> tuple[Command, bool]:
        """Queued or sent -> sent (one more attempt); a final command is returned unchanged."""
        return await self._transition(
            command_id, "status = 'sent', attempts = attempts + 1, sent_at = now()", ()
        )

    async def mark_done(self, command_id: uuid.UUID | str, result: Any = None) -> tuple[Command, bool]:
        """-> done with ``result`` (JSON, default {}); ``(existing, False)`` if already final."""
        outcome = json_value({} if result is None else result, "result")
        return await self._transition(command_id, "status = 'done', result = %s, finished_at = now()", (outcome,))

    async def mark_failed(self, command_id: uuid.UUID | str, reason: Any) -> tuple[Command, bool]:
        """-> failed with ``reason`` (JSON); ``(existing, False)`` if already final."""
        outcome = json_value({"reason": reason}, "reason")
        return await self._transition(command_id, "status = 'failed', result = %s, finished_at = now()", (outcome,))

    async def pending(self, *, satellite_id: str | None = None, limit: int = 1000) -> list[Command]:
        """Queued and sent commands, oldest first: what to deliver (again) after a restart."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Command))
            await cur.execute(
                f"SELECT {_COLUMNS} FROM commands WHERE status IN ('queued', 'sent')"
                " AND (%(sat)s::text IS NULL OR satellite_id = %(sat)s) ORDER BY created_at, id LIMIT %(limit)s",
                {"sat": satellite_id, "limit": limit},
            )
            return await cur.fetchall()

    async def history(self, satellite_id: str, *, limit: int = 100) -> list[Command]:
        """A satellite's newest ``limit`` commands, newest first."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Command))
            await cur.execute(
                f"SELECT {_COLUMNS} FROM commands WHERE satellite_id = %s ORDER BY created_at DESC, id LIMIT %s",
                (satellite_id, limit),
            )
            return await cur.fetchall()

    async def _transition(
        self, command_id: uuid.UUID | str, assignments: str, params: tuple[Any, ...]
    ) -> tuple[Command, bool]:
        # The WHERE on status makes the transition happen once: a second writer finds it final.
        ident = _uuid(command_id)
        query = f"UPDATE commands SET {assignments} WHERE id = %s AND status IN ('queued', 'sent') RETURNING {_COLUMNS}"
        async with self._db.transaction() as conn:
            cur = conn.cursor(row_factory=class_row(Command))
            await cur.execute(query, (*params, ident))
            changed = await cur.fetchone()
            if changed is not None:
                return changed, True
            existing = await _get(conn, ident)
        if existing is None:
            raise NotFound("command_id", f"no command {ident}")
        return existing, False


def _prepare(sub: Submission) -> _Prepared:
    """``submit``'s checks on one submission; its key (a fresh one when it has none)."""
    check_text(sub.satellite_id, "satellite_id", max_chars=64, pattern=_SAT_ID)
    payload = json_object({} if sub.args is None else sub.args, "args")
    _check_kind(sub.kind, sub.args)
    key = str(uuid.uuid4()) if sub.idempotency_key is None else sub.idempotency_key
    check_text(key, "idempotency_key", max_chars=MAX_IDEMPOTENCY_KEY_CHARS)
    check_actor(sub.actor)
    return (sub.satellite_id, sub.kind, json.dumps(payload.obj), key, sub.actor, sub.commit_by)


_BATCH_ROWS: Final = (
    "unnest(%b::text[], %b::text[], %b::jsonb[], %b::text[], %b::text[], %b::timestamptz[])"
    " WITH ORDINALITY AS t(satellite_id, kind, args, key, actor, accept_by, n)"
)


async def _insert_new(conn: Connection, items: list[_Prepared]) -> dict[tuple[str, str], SubmitResult]:
    """The common case of ``submit_many`` in two round trips (pipelined: BEGIN, the insert of
    the commands and their audit rows, the database's clock; then COMMIT): the items with a new
    key and a known satellite, when all of them are still before their commit_by after the
    insert (its waits included). Otherwise nothing is written here and every item is left for
    ``_submit_batch``, which judges them one by one; so are the items not inserted here."""
    columns = [list(col) for col in zip(*items, strict=True)]
    commit_by = {(item[0], item[3]): item[5] for item in items}
    cur = conn.cursor(row_factory=class_row(Command))
    try:
        async with conn.pipeline():
            await conn.execute("BEGIN")
            await cur.execute(
                "WITH new AS (INSERT INTO commands (satellite_id, kind, args, idempotency_key, submitted_by, accept_by, created_at)"
                f" SELECT satellite_id, kind, args, key, actor, accept_by, clock_timestamp() FROM {_BATCH_ROWS}"
                " WHERE EXISTS (SELECT 1 FROM satellites s WHERE s.id = t.satellite_id) ORDER BY n"
                f" ON CONFLICT (satellite_id, idempotency_key) DO NOTHING RETURNING {_COLUMNS}),"
                " audit AS (INSERT INTO audit_log (actor, action, entity, entity_id, details)"
                " SELECT submitted_by, 'command.submit', 'command', id::text,"
                " jsonb_build_object('satellite_id', satellite_id, 'kind', kind, 'args', args) FROM new)"
                f" SELECT {_COLUMNS} FROM new",
                columns,
            )
            clock = await conn.execute("SELECT clock_timestamp()")
            created = await cur.fetchall()
            row = await clock.fetchone()
            assert row is not None
            # Last before COMMIT, on the database's clock: one item late sends the lot the long way.
            on_time = all((by := commit_by[(c.satellite_id, c.idempotency_key)]) is None or row[0] < by for c in created)
            await conn.execute("COMMIT" if on_time else "ROLLBACK")
    finally:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.rollback()  # a statement failed in the pipeline: its transaction is still open
    return {(c.satellite_id, c.idempotency_key): (c, True) for c in created} if on_time else {}


async def _submit_batch(conn: Connection, items: list[_Prepared]) -> dict[tuple[str, str], SubmitResult]:
    """The body of ``submit_many`` for items with distinct (satellite, key) pairs, on ``conn``'s
    transaction: insert the new ones, revive expired ones, find the known ones; then, last
    before COMMIT, take back the ones past their commit_by on the database's clock."""
    columns = [list(col) for col in zip(*items, strict=True)]
    cur = conn.cursor(row_factory=class_row(Command))
    # In item order, each with its own clock_timestamp(): pending() redelivers in this order.
    await cur.execute(
        "INSERT INTO commands (satellite_id, kind, args, idempotency_key, submitted_by, accept_by, created_at)"
        f" SELECT satellite_id, kind, args, key, actor, accept_by, clock_timestamp() FROM {_BATCH_ROWS}"
        " WHERE EXISTS (SELECT 1 FROM satellites s WHERE s.id = t.satellite_id) ORDER BY n"
        f" ON CONFLICT (satellite_id, idempotency_key) DO NOTHING RETURNING {_COLUMNS}",
        columns,
    )
    created = {(c.satellite_id, c.idempotency_key): c for c in await cur.fetchall()}
    rest = [item for item in items if (item[0], item[3]) not in created]
    revived: dict[tuple[str, str], Command] = {}
    known: dict[tuple[str, str], Command] = {}
    if rest:
        rest_columns = [list(col) for col in zip(*rest, strict=True)]
        await cur.execute(
            "UPDATE commands c SET kind = t.kind, args = t.args, status = 'queued', attempts = 0,"
            " submitted_by = t.actor, created_at = clock_timestamp(), sent_at = NULL, accept_by = t.accept_by"
            f" FROM {_BATCH_ROWS} WHERE c.satellite_id = t.satellite_id AND c.idempotency_key = t.key"
            f" AND c.status = 'expired' RETURNING {', '.join('c.' + col for col in _COLUMNS.split(', '))}",
            rest_columns,
        )
        revived = {(c.satellite_id, c.idempotency_key): c for c in await cur.fetchall()}
        await cur.execute(
            f"SELECT {_COLUMNS} FROM commands c WHERE (satellite_id, idempotency_key) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[]))",
            (rest_columns[0], rest_columns[3]),
        )
        known = {(c.satellite_id, c.idempotency_key): c for c in await cur.fetchall() if (c.satellite_id, c.idempotency_key) not in revived}
    results: dict[tuple[str, str], SubmitResult] = {}
    new = {**created, **revived}
    deadlines = {(item[0], item[3]): item[5] for item in items}
    if any(deadlines[pair] is not None for pair in new):
        # Last before COMMIT, on the database's clock: an item past its commit_by writes nothing.
        row = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
        assert row is not None
        late = {pair for pair in new if (by := deadlines[pair]) is not None and not row[0] < by}
        if late:
            gone = [new[p].id for p in late if p in created]
            back = [new[p].id for p in late if p in revived]
            if gone:
                await conn.execute("DELETE FROM commands WHERE id = ANY(%s)", (gone,))
            if back:
                await conn.execute("UPDATE commands SET status = 'expired' WHERE id = ANY(%s)", (back,))
            for pair in late:
                results[pair] = LateCommit(f"command for {pair[0]!r} not written: past its deadline {deadlines[pair]}")
                del new[pair]
    if new:
        await conn.execute(
            "INSERT INTO audit_log (actor, action, entity, entity_id, details)"
            " SELECT actor, 'command.submit', 'command', id, details"
            " FROM unnest(%s::text[], %s::text[], %s::jsonb[]) AS a(actor, id, details)",
            (
                [c.submitted_by for c in new.values()],
                [str(c.id) for c in new.values()],
                [json.dumps({"satellite_id": c.satellite_id, "kind": c.kind, "args": c.args}) for c in new.values()],
            ),
        )
    for pair, command in new.items():
        results[pair] = (command, True)
    for pair, command in known.items():
        results[pair] = (command, False)
    for item in items:
        results.setdefault((item[0], item[3]), NotFound("satellite_id", f"no satellite {item[0]!r}"))
    return results


async def mark_sent_many(conn: Connection, command_ids: Sequence[uuid.UUID]) -> int:
    """``mark_sent`` for each id (one more attempt per occurrence), on ``conn``; final and
    unknown commands are left as they are. How many commands changed."""
    counts = Counter(command_ids)
    if not counts:
        return 0
    cur = await conn.execute(
        "UPDATE commands c SET status = 'sent', attempts = c.attempts + t.n, sent_at = now()"
        " FROM unnest(%s::uuid[], %s::int[]) AS t(id, n) WHERE c.id = t.id AND c.status IN ('queued', 'sent')",
        (list(counts), list(counts.values())),
    )
    return cur.rowcount


async def finish_many(
    conn: Connection, outcomes: Sequence[tuple[uuid.UUID, bool, Any]], sent: Mapping[uuid.UUID, int] | None = None
) -> int:
    """``mark_done`` / ``mark_failed`` for each ``(id, done, result or reason)``, on ``conn``:
    the first outcome of a command wins (a final one is left as it is). ``sent`` counts the
    attempts of these commands reported in the same batch (``mark_sent_many`` for them, folded
    into this UPDATE: one new row version per command instead of two). How many changed."""
    first: dict[uuid.UUID, tuple[str, str]] = {}
    for command_id, done, value in outcomes:
        if command_id not in first:
            outcome = json_value({} if value is None else value, "result") if done else json_value({"reason": value}, "reason")
            first[command_id] = ("done" if done else "failed", json.dumps(outcome.obj))
    if not first:
        return 0
    sent = sent or {}
    cur = await conn.execute(
        "UPDATE commands c SET status = t.status, result = t.result, finished_at = now(),"
        " attempts = c.attempts + t.sent, sent_at = CASE WHEN t.sent > 0 THEN now() ELSE c.sent_at END"
        " FROM unnest(%s::uuid[], %s::text[], %s::jsonb[], %s::int[]) AS t(id, status, result, sent)"
        " WHERE c.id = t.id AND c.status IN ('queued', 'sent')",
        (list(first), [v[0] for v in first.values()], [v[1] for v in first.values()], [sent.get(u, 0) for u in first]),
    )
    return cur.rowcount


async def _get(conn: Connection, command_id: uuid.UUID) -> Command | None:
    cur = conn.cursor(row_factory=class_row(Command))
    await cur.execute(f"SELECT {_COLUMNS} FROM commands WHERE id = %s", (command_id,))
    return await cur.fetchone()


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError("command_id", f"{value!r:.60} is not a command id (a UUID)") from None


def _check_kind(kind: object, args: object) -> None:
    if not isinstance(kind, str) or kind not in COMMAND_KINDS:
        raise ValidationError("kind", f"unknown command kind {kind!r:.40}; known: {', '.join(sorted(COMMAND_KINDS))}")
    if kind == "set_mode":
        mode = args.get("mode") if isinstance(args, dict) else None
        if mode not in set(Mode):
            raise ValidationError("args.mode", f"set_mode needs args.mode, one of {', '.join(Mode)}; got {mode!r:.40}")
