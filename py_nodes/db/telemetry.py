"""``TelemetryWriter``: telemetry into PostgreSQL in COPY batches, off the satellites' tick path.

``offer(rows)`` only appends to a bounded in-memory buffer: it never waits for the database and
never raises. A background task takes batches of up to ``batch_rows`` rows (when a batch is full,
or ``flush_interval_s`` after rows arrive) and writes each with one binary ``COPY`` in its own
transaction. Where a row can end up, each with its counter in ``stats()``:

- ``written``: committed.
- ``overflow``: refused by ``offer`` because the buffer held ``max_rows`` rows (the database was
  down or slow too long); logged as warnings at most every ``overflow_log_interval_s``.
- ``rejected``: refused by the database itself (a value out of range...): the batch is split in
  halves until the bad rows are alone; those are logged and counted, the rest written.
- ``lost_on_close``: still unwritten when ``close()`` gave up waiting for the database; logged.
- ``duplicates``: already in the table (same satellite and time): a batch delivered again.

Writes are idempotent, so a sender that delivers at least once (BEAM sends a batch again until
it is confirmed) never writes a sample twice. With ``staging="on_conflict"`` (the default) a
batch goes in with a plain COPY, and only when that hits the unique index on (satellite_id,
time) (a batch delivered again: rare) is it written again through a temporary staging table
with ``INSERT ... ON CONFLICT DO NOTHING``. ``staging="always"`` takes that path for every batch,
``"never"`` never (a duplicate is then a refused row); bench/db_bench.py compares the three.

Rows come as ``TelemetryRow`` s or, from the store node, as a ``TelemetryColumns`` batch, which
is encoded for COPY by column (a call per batch, not per row and field: at 100,000 rows a second
``write_row`` alone took a fifth of a core); a COPY holds one kind or the other.

``offer_batch(rows, on_done)`` is the confirmed form: all rows or none (``False``: no room,
nothing is counted as lost since the sender keeps them), and ``on_done(stored, rejected)`` is
called once every row of the batch is committed or refused by the database. Batches finish in
the order they were offered; ``rejected`` is exact in total (a refusal is reported with the
first batch that finishes after it).

While the database is unavailable the current batch is kept and retried with exponential backoff
(``backoff_initial_s`` doubling up to ``backoff_max_s``), and new rows wait in the buffer.
Use from one event loop thread (as the actors do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal

import psycopg

from .pool import Connection, Database, is_unavailable
from .telemetry_columns import COPY_SIGNATURE, COPY_TRAILER, TelemetryColumns
from .telemetry_row import TelemetryRow

__all__ = ["COPY_TELEMETRY", "TELEMETRY_COLUMNS", "BatchDone", "TelemetryRow", "TelemetryStats", "TelemetryWriter"]

log = logging.getLogger(__name__)

TELEMETRY_COLUMNS: Final = (
    "satellite_id", "time", "energy_pct", "memory_used_mb", "mode", "lat_deg", "lon_deg", "alt_km", "in_sunlight",
)  # fmt: skip
COPY_TELEMETRY: Final = f"COPY telemetry ({', '.join(TELEMETRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
# The idempotent path: a per-session staging table (no CHECKs: the INSERT checks), emptied at commit.
_STAGING: Final = "telemetry_staging"
CREATE_STAGING: Final = f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE telemetry) ON COMMIT DELETE ROWS"
COPY_STAGING: Final = f"COPY {_STAGING} ({', '.join(TELEMETRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
INSERT_STAGED: Final = (
    f"INSERT INTO telemetry ({', '.join(TELEMETRY_COLUMNS)}) SELECT {', '.join(TELEMETRY_COLUMNS)} FROM {_STAGING}"
    " ON CONFLICT (satellite_id, time) DO NOTHING"
)
COPY_TYPES: Final = ("text", "timestamptz", "float8", "float8", "text", "float8", "float8", "float8", "bool")
# Errors that mean "these rows are bad", not "the database is away": isolate the bad rows.
_ROW_ERRORS: Final = (psycopg.DataError, psycopg.IntegrityError, TypeError, ValueError, OverflowError)


BatchDone = Callable[[int, int], None]  # on_done(stored, rejected)
# What the buffer holds: rows as offered, or a batch by columns (the store node's; encoded for
# COPY by column). A COPY takes one kind only.
Chunk = list[TelemetryRow] | TelemetryColumns
Staging = Literal["on_conflict", "always", "never"]


@dataclass(frozen=True, slots=True)
class TelemetryStats:
    written: int
    overflow: int
    rejected: int
    lost_on_close: int
    pending: int  # buffered plus being written
    retries: int  # write attempts that failed and were retried
    batches: int  # COPY statements committed
    duplicates: int = 0  # rows already stored (a batch delivered again): not written twice


class TelemetryWriter:
    """Buffered COPY writer; ``async with TelemetryWriter(db) as writer: writer.offer(rows)``."""

    def __init__(
        self,
        db: Database,
        *,
        max_rows: int = 100_000,
        batch_rows: int = 5_000,
        flush_interval_s: float = 1.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 10.0,
        overflow_log_interval_s: float = 10.0,
        staging: Staging = "on_conflict",
    ) -> None:
        if not 1 <= batch_rows <= max_rows:
            raise ValueError(f"need 1 <= batch_rows ({batch_rows}) <= max_rows ({max_rows})")
        if not (flush_interval_s > 0 and 0 < backoff_initial_s <= backoff_max_s):
            raise ValueError("flush_interval_s, backoff_initial_s must be > 0 and backoff_initial_s <= backoff_max_s")
        self._db = db
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.overflow_log_interval_s = overflow_log_interval_s
        if staging not in ("on_conflict", "always", "never"):
            raise ValueError(f"staging must be on_conflict, always or never, got {staging!r}")
        self.staging = staging
        self._staged: weakref.WeakSet[Connection] = weakref.WeakSet()  # sessions with the staging table
        self._offered = self._finished = 0  # rows ever queued / written or refused, for on_done
        self._done: deque[tuple[int, int, BatchDone]] = deque()  # (rows offered up to it, size, callback)
        self._rejected_reported = 0
        self._duplicates = 0
        self._buffer: deque[Chunk] = deque()
        self._buffered = 0  # rows in the buffer
        self._inflight = 0  # rows taken from the buffer and not yet written or rejected
        self._has_rows = asyncio.Event()
        self._batch_ready = asyncio.Event()  # a full batch is waiting, or a flush was asked for
        self._idle = asyncio.Event()  # nothing buffered or in flight
        self._idle.set()
        self._urgent = 0  # flush() callers waiting: do not wait for batches to fill
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._written = self._overflow = self._rejected = self._lost = self._retries = self._batches = 0
        self._overflow_logged = 0
        self._overflow_logged_at = -math.inf
        self._rejects_logged_at = -math.inf

    # -- the tick path: never blocks, never raises ------------------------------------------

    def offer(self, rows: Iterable[TelemetryRow]) -> int:
        """Queue ``rows`` for writing; how many were taken (the rest are counted as overflow)."""
        try:
            batch = rows if isinstance(rows, Sequence) else list(rows)
            if self._closed:
                self._count_overflow(len(batch), "the writer is closed")
                return 0
            room = self.max_rows - self._buffered - self._inflight
            taken = len(batch) if len(batch) <= room else max(room, 0)
            if taken:
                self._queue(list(batch[:taken]))
            if taken < len(batch):
                self._count_overflow(len(batch) - taken, f"the buffer holds {self.max_rows} rows")
            return taken
        except Exception:  # a bug must not reach the satellites' tick loop
            log.exception("telemetry: offer failed; the rows were not queued")
            return 0

    def has_room(self, n: int) -> bool:
        """Whether ``offer_batch`` would take ``n`` rows now (a sender can be refused before it
        builds them)."""
        return not self._closed and n <= self.max_rows - self._buffered - self._inflight

    def offer_batch(self, rows: Sequence[TelemetryRow] | TelemetryColumns, on_done: BatchDone) -> bool:
        """Queue all of ``rows`` or none (False: closed or no room; the caller keeps them);
        ``on_done(stored, rejected)`` runs when the database has them all."""
        if not self.has_room(len(rows)):
            return False
        if len(rows):
            self._queue(rows if isinstance(rows, TelemetryColumns) else list(rows))
        self._done.append((self._offered, len(rows), on_done))
        self._fire_done()  # an empty batch is done at once
        return True

    def _queue(self, chunk: Chunk) -> None:
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        self._offered += len(chunk)
        self._idle.clear()
        self._has_rows.set()
        if self._buffered >= self.batch_rows:
            self._batch_ready.set()

    def _fire_done(self) -> None:
        while self._done and self._done[0][0] <= self._finished:
            _, size, on_done = self._done.popleft()
            unreported = self._rejected - self._rejected_reported
            rejected = min(size, unreported)
            self._rejected_reported += rejected
            try:
                on_done(size - rejected, rejected)
            except Exception:  # the sender's bug: its other batches still get their answer
                log.exception("telemetry: on_done failed")

    def stats(self) -> TelemetryStats:
        return TelemetryStats(
            written=self._written, overflow=self._overflow, rejected=self._rejected, lost_on_close=self._lost,
            pending=self._buffered + self._inflight, retries=self._retries, batches=self._batches,
            duplicates=self._duplicates,
        )  # fmt: skip

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background writer (a constructor starts nothing)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="telemetry-writer")

    async def flush(self) -> None:
        """Write everything offered so far now (returns when written, rejected or given up on)."""
        if self._task is None:
            raise RuntimeError("TelemetryWriter.flush() before start()")
        self._urgent += 1
        self._batch_ready.set()
        try:
            await self._idle.wait()
        finally:
            self._urgent -= 1

    async def close(self, timeout_s: float = 10.0) -> TelemetryStats:
        """Stop taking rows, write what is buffered within ``timeout_s``, count the rest as lost."""
        self._closed = True
        if self._task is not None:
            self._urgent += 1
            self._batch_ready.set()
            self._has_rows.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._idle.wait()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        unwritten = self._buffered + self._inflight
        if unwritten:
            self._lost += unwritten
            self._buffer.clear()
            self._buffered = self._inflight = 0
            log.error("telemetry: %d rows could not be written before close (database unavailable)", unwritten)
        if self._overflow > self._overflow_logged:
            log.warning("telemetry: %d rows overflowed in total", self._overflow)
        return self.stats()

    async def __aenter__(self) -> TelemetryWriter:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- the background task -----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._buffer:
                self._idle.set()
                self._has_rows.clear()
                await self._has_rows.wait()
                continue
            if self._buffered < self.batch_rows and not self._urgent:
                self._batch_ready.clear()  # let the batch fill, for flush_interval_s at most
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_ready.wait(), self.flush_interval_s)
            batch = self._take(min(self._buffered, self.batch_rows))
            n = _rows_in(batch)
            self._buffered -= n
            self._inflight += n
            await self._write_batch(batch)

    def _take(self, n: int) -> list[Chunk]:
        """Up to ``n`` rows from the buffer's front, in order, of the first chunk's kind (a
        chunk beyond ``n`` is split)."""
        taken: list[Chunk] = []
        kind = type(self._buffer[0])
        while n > 0 and self._buffer and type(self._buffer[0]) is kind:
            chunk = self._buffer.popleft()
            if len(chunk) > n:
                chunk, rest = _split(chunk, n)
                self._buffer.appendleft(rest)
            taken.append(chunk)
            n -= len(chunk)
        return taken

    async def _write_batch(self, rows: list[Chunk]) -> None:
        """Write ``rows``, retrying while the database is away; isolate and reject bad rows."""
        delay_s = self.backoff_initial_s
        failures = 0
        total = _rows_in(rows)
        while True:
            try:
                inserted = await self._copy(rows)
            except _ROW_ERRORS as exc:
                if total == 1:
                    [chunk] = [c for c in rows if len(c)]
                    self._reject(chunk[0] if isinstance(chunk, list) else chunk.rows()[0], exc)
                    return
                left, right = _halves(rows, total // 2)
                await self._write_batch(left)
                await self._write_batch(right)
                return
            except Exception as exc:
                failures += 1
                self._retries += 1
                if failures == 1:
                    how = "database unavailable" if is_unavailable(exc) else "unexpected error"
                    log.warning(
                        "telemetry: %s (%s); %d rows wait and are retried with backoff",
                        how, _first_line(exc), self._buffered + self._inflight,
                        exc_info=not is_unavailable(exc),
                    )  # fmt: skip
                await asyncio.sleep(delay_s * random.uniform(0.8, 1.2))
                delay_s = min(delay_s * 2, self.backoff_max_s)
                continue
            self._written += inserted
            self._duplicates += total - inserted
            self._inflight -= total
            self._finished += total
            self._batches += 1
            self._fire_done()
            if failures:
                log.info("telemetry: database back; wrote %d rows after %d retries", total, failures)
            return

    async def _copy(self, rows: list[Chunk]) -> int:
        """Write ``rows`` in one transaction; how many were new."""
        if self.staging == "always":
            return await self._copy_staged(rows)
        if self.staging == "never":
            return await self._copy_plain(rows)
        try:
            return await self._copy_plain(rows)
        except psycopg.errors.UniqueViolation:  # some are stored already: write the others
            return await self._copy_staged(rows)

    async def _copy_plain(self, rows: list[Chunk]) -> int:
        async with self._db.transaction() as conn:
            await self._copy_into(conn, COPY_TELEMETRY, rows)
        return _rows_in(rows)

    async def _copy_staged(self, rows: list[Chunk]) -> int:
        async with self._db.connection() as conn:
            if conn not in self._staged:
                await conn.execute(CREATE_STAGING)  # autocommit: it outlives a batch rolled back
                self._staged.add(conn)
            async with conn.transaction():
                await self._copy_into(conn, COPY_STAGING, rows)
                cur = await conn.execute(INSERT_STAGED)
                return max(cur.rowcount, 0)

    @staticmethod
    async def _copy_into(conn: Connection, statement: str, chunks: list[Chunk]) -> None:
        async with conn.cursor().copy(statement) as copy:
            if chunks and isinstance(chunks[0], TelemetryColumns):  # a batch is of one kind
                data = [COPY_SIGNATURE, *(c.copy_tuples() for c in chunks if isinstance(c, TelemetryColumns)), COPY_TRAILER]
                await copy.write(b"".join(data))
                return
            copy.set_types(COPY_TYPES)
            for chunk in chunks:
                for row in chunk if isinstance(chunk, list) else chunk.rows():
                    await copy.write_row(row)

    def _reject(self, row: TelemetryRow, exc: BaseException) -> None:
        self._rejected += 1
        self._inflight -= 1
        self._finished += 1
        self._fire_done()
        now = time.monotonic()
        if now - self._rejects_logged_at >= self.overflow_log_interval_s:
            self._rejects_logged_at = now
            log.warning(
                "telemetry: the database refused a row (%s): %r; %d rows refused so far",
                _first_line(exc), row, self._rejected,
            )  # fmt: skip

    def _count_overflow(self, n: int, why: str) -> None:
        self._overflow += n
        now = time.monotonic()
        if now - self._overflow_logged_at >= self.overflow_log_interval_s:
            log.warning(
                "telemetry: %d rows not queued (%s); %d since the last warning, %d in total",
                n, why, self._overflow - self._overflow_logged, self._overflow,
            )  # fmt: skip
            self._overflow_logged_at = now
            self._overflow_logged = self._overflow


def _rows_in(chunks: list[Chunk]) -> int:
    return sum(len(c) for c in chunks)


def _split(chunk: Chunk, n: int) -> tuple[Chunk, Chunk]:
    if isinstance(chunk, TelemetryColumns):
        return chunk.slice(0, n), chunk.slice(n, len(chunk))
    return chunk[:n], chunk[n:]


def _halves(chunks: list[Chunk], n: int) -> tuple[list[Chunk], list[Chunk]]:
    """The first ``n`` rows of ``chunks`` and the rest."""
    left: list[Chunk] = []
    right: list[Chunk] = []
    for chunk in chunks:
        if n <= 0:
            right.append(chunk)
        elif len(chunk) <= n:
            left.append(chunk)
            n -= len(chunk)
        else:
            head, tail = _split(chunk, n)
            left.append(head)
            right.append(tail)
            n = 0
    return left, right


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
