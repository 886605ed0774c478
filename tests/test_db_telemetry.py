"""TelemetryWriter: COPY batches land exactly; rows wait through a real server outage and land after
it; overflow and refused rows are counted and logged, never silent; close() accounts for the rest."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from db_fixtures import fast_temp_dir

from py_nodes.db import Database, EmbeddedServer, TelemetryRow, TelemetryWriter, migrate

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def rows(n: int, sat: str = "sat-1", start: int = 0) -> list[TelemetryRow]:
    """Distinct rows with awkward values: full-precision floats, µs times, missing positions."""
    out = []
    for i in range(start, start + n):
        lat_deg, lon_deg, alt_km = -90 + (i * 0.1234567) % 180, -180 + (i * 7.654321) % 360, 550.0 + i / 7
        row = TelemetryRow(sat, T0 + timedelta(microseconds=1001 * i), 100.0 * ((i * 0.61803398875) % 1),
                           math.pi * i, ("nominal", "science", "safe")[i % 3], lat_deg, lon_deg, alt_km, i % 2 == 0)  # fmt: skip
        out.append(row._replace(lat_deg=None, lon_deg=None, alt_km=None) if i % 3 == 0 else row)
    return out


async def stored(db: Database) -> list[TelemetryRow]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT satellite_id, time, energy_pct, memory_used_mb, mode, lat_deg, lon_deg, alt_km, in_sunlight"
            " FROM telemetry ORDER BY satellite_id, time"
        )
        return [TelemetryRow(*r) for r in await cur.fetchall()]


async def test_copy_batches_land_with_exact_values(db: Database) -> None:
    sent = rows(1000)
    async with TelemetryWriter(db, batch_rows=128, flush_interval_s=0.05) as writer:
        assert writer.offer(sent[:500]) == 500
        assert writer.offer(iter(sent[500:])) == 500  # any iterable
        await asyncio.wait_for(writer.flush(), 10)
        stats = writer.stats()
    assert (stats.written, stats.pending, stats.overflow, stats.rejected) == (1000, 0, 0, 0)
    assert stats.batches >= 1000 // 128
    assert await stored(db) == sent  # floats bit for bit, times to the µs, NULL positions


async def test_a_partial_batch_goes_after_the_flush_interval(db: Database) -> None:
    # Timing-safe both ways: a slow machine only delays what we observe, so "not before the
    # interval" is checked on observations made before it ends, and "after it" with a long bound.
    interval_s = 1.0
    async with TelemetryWriter(db, batch_rows=1000, flush_interval_s=interval_s) as writer:
        t0 = time.monotonic()
        writer.offer(rows(3))
        n_early = len(await stored(db))
        if time.monotonic() - t0 < interval_s:
            assert n_early == 0  # still gathering a batch
        while writer.stats().written < 3:
            assert time.monotonic() - t0 < 60, "the partial batch was never written"
            await asyncio.sleep(0.01)
        assert time.monotonic() - t0 >= interval_s  # it waited for the interval
        assert writer.stats().written == 3
    assert len(await stored(db)) == 3


async def test_offer_never_raises(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    writer = TelemetryWriter(db)
    assert writer.offer(None) == 0  # type: ignore[arg-type]

    def failing() -> Iterator[TelemetryRow]:
        yield from rows(2)
        raise RuntimeError("the producer broke")

    assert writer.offer(failing()) == 0
    assert "offer failed" in caplog.text
    await writer.close()


async def test_overflow_is_counted_and_logged(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "py_nodes.db.telemetry")
    writer = TelemetryWriter(db, max_rows=10, batch_rows=5, overflow_log_interval_s=60)
    # Not started yet: nothing drains the buffer, as when the database is down.
    assert writer.offer(rows(8)) == 8
    assert writer.offer(rows(5, start=8)) == 2
    assert writer.offer(rows(4, start=13)) == 0
    stats = writer.stats()
    assert (stats.pending, stats.overflow, stats.written) == (10, 7, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate-limited
    assert "3 rows not queued (the buffer holds 10 rows); 3 since the last warning, 3 in total" in warnings[0]
    await writer.start()
    await asyncio.wait_for(writer.flush(), 10)
    final = await writer.close()
    assert (final.written, final.overflow, final.pending, final.lost_on_close) == (10, 7, 0, 0)
    assert await stored(db) == rows(10)
    assert "7 rows overflowed in total" in caplog.text  # the total is logged at close
    assert writer.offer(rows(1)) == 0 and writer.stats().overflow == 8  # closed: counted too


async def test_rows_the_database_refuses_are_isolated_counted_and_logged(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    good = rows(40)
    bad = [
        good[0]._replace(energy_pct=101.0),  # CHECK violation
        good[0]._replace(lat_deg=12.0, lon_deg=None),  # half a position
        good[0]._replace(time=datetime(2026, 1, 1)),  # naive time: ambiguous
        good[0]._replace(mode="warp"),
    ]
    mixed = good[:10] + bad[:2] + good[10:30] + bad[2:] + good[30:]
    async with TelemetryWriter(db, batch_rows=64) as writer:
        writer.offer(mixed)
        await asyncio.wait_for(writer.flush(), 10)
        stats = writer.stats()
    assert (stats.written, stats.rejected, stats.pending) == (40, 4, 0)
    assert await stored(db) == good
    assert "the database refused a row" in caplog.text


def ms_rows(n: int, start: int = 0, sat: str = "sat-1") -> list[TelemetryRow]:
    """rows() with times in whole ms (what a batch by columns carries)."""
    return [r._replace(time=r.time.replace(microsecond=r.time.microsecond // 1000 * 1000)) for r in rows(n, sat, start)]


async def test_columns_land_exactly_as_rows_do_bad_ones_isolated_duplicates_skipped(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The store node's batches (by columns, COPY encoded by column) store what the same rows
    offered one by one store: bit-exact floats, NULL positions, ids of any length; a bad row
    among them is refused alone; a batch sent again adds nothing (the staging path)."""
    from py_nodes.db import TelemetryColumns

    good = ms_rows(300) + ms_rows(5, sat="a") + ms_rows(5, sat="x" * 64) + ms_rows(3, sat="s.2_B-c")
    special = [good[1]._replace(time=good[1].time + timedelta(seconds=1), energy_pct=0.0, memory_used_mb=0.0,
                                lat_deg=-90.0, lon_deg=180.0, alt_km=-99.5, in_sunlight=False)]  # fmt: skip
    bad = [good[4]._replace(time=good[4].time + timedelta(seconds=2), energy_pct=101.0),
           good[4]._replace(time=good[4].time + timedelta(seconds=3), mode="warp"),
           good[4]._replace(satellite_id="sat\u00e9")]  # fmt: skip
    mixed = good[:100] + bad[:1] + special + good[100:200] + bad[1:] + good[200:]
    done: list[tuple[int, int]] = []
    async with TelemetryWriter(db, batch_rows=128, flush_interval_s=0.02) as writer:
        for i in range(0, len(mixed), 50):
            assert writer.offer_batch(TelemetryColumns.from_rows(mixed[i : i + 50]), lambda s, r: done.append((s, r)))
        await asyncio.wait_for(writer.flush(), 10)
        first = writer.stats()
        assert writer.offer_batch(TelemetryColumns.from_rows(good[:50]), lambda s, r: done.append((s, r)))  # again
        await asyncio.wait_for(writer.flush(), 10)
        stats = writer.stats()
    assert (first.written, first.rejected, first.pending) == (len(good) + 1, 3, 0)
    assert (stats.written, stats.duplicates) == (len(good) + 1, 50)
    assert sum(s for s, _ in done) == len(good) + 1 + 50 and sum(r for _, r in done) == 3
    assert await stored(db) == sorted(good + special, key=lambda r: (r.satellite_id, r.time))
    assert "the database refused a row" in caplog.text


# -- a real outage: a server of its own, stopped and started -----------------------------------


@pytest.fixture
def own_server() -> Iterator[EmbeddedServer]:
    folder = fast_temp_dir()
    server = EmbeddedServer(folder / "pg", durable=False)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def own_db(own_server: EmbeddedServer) -> AsyncIterator[Database]:
    async with Database(own_server.conninfo, timeout_s=0.5) as db:
        await migrate(db)
        yield db


async def test_rows_wait_through_an_outage_and_land_after_it(
    own_server: EmbeddedServer, own_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "py_nodes.db.telemetry")
    writer = TelemetryWriter(own_db, batch_rows=50, flush_interval_s=0.02, backoff_initial_s=0.05, backoff_max_s=0.2)
    await writer.start()
    writer.offer(rows(10))
    await asyncio.wait_for(writer.flush(), 10)
    assert writer.stats().written == 10

    await asyncio.to_thread(own_server.stop)
    assert writer.offer(rows(120, start=10)) == 120  # never blocks, database or not
    for _ in range(100):
        await asyncio.sleep(0.05)
        if writer.stats().retries >= 2:
            break
    stats = writer.stats()
    assert (stats.written, stats.pending, stats.overflow) == (10, 120, 0)
    assert stats.retries >= 2
    assert "database unavailable" in caplog.text

    await asyncio.to_thread(own_server.start)
    await asyncio.wait_for(writer.flush(), 20)
    stats = await writer.close()
    assert (stats.written, stats.pending, stats.lost_on_close, stats.rejected) == (130, 0, 0, 0)
    assert await stored(own_db) == rows(130)
    assert "database back" in caplog.text


async def test_close_during_an_outage_counts_and_logs_what_is_lost(
    own_server: EmbeddedServer, own_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = TelemetryWriter(own_db, batch_rows=20, flush_interval_s=0.02, backoff_initial_s=0.05, backoff_max_s=0.1)
    await writer.start()
    await asyncio.to_thread(own_server.stop)
    writer.offer(rows(50))
    await asyncio.sleep(0.2)
    stats = await writer.close(timeout_s=0.3)
    assert (stats.written, stats.lost_on_close, stats.pending) == (0, 50, 0)
    assert "50 rows could not be written before close" in caplog.text


# -- at-least-once delivery: batches confirmed, and a batch written twice is stored once ---------


async def test_a_batch_delivered_twice_is_stored_once(db: Database) -> None:
    sent = rows(300)
    confirmed: list[tuple[str, int, int]] = []
    async with TelemetryWriter(db, batch_rows=128, flush_interval_s=0.05) as writer:
        assert writer.offer_batch(sent, lambda s, r: confirmed.append(("first", s, r)))
        await asyncio.wait_for(writer.flush(), 10)
        # The sender did not get the confirmation (its store node died): it sends the batch again,
        # overlapping with new rows.
        assert writer.offer_batch(sent[200:] + rows(50, start=300), lambda s, r: confirmed.append(("again", s, r)))
        await asyncio.wait_for(writer.flush(), 10)
        stats = writer.stats()
    assert confirmed == [("first", 300, 0), ("again", 150, 0)]
    assert (stats.written, stats.duplicates, stats.rejected) == (350, 100, 0)
    assert await stored(db) == rows(350)


async def test_offer_batch_takes_all_or_nothing_and_confirms_in_order_with_refusals(db: Database) -> None:
    good = rows(12)
    writer = TelemetryWriter(db, max_rows=10, batch_rows=4, flush_interval_s=0.05)
    confirmed: list[tuple[int, int, int]] = []
    # Not started: nothing drains the buffer (the database is down). A batch that does not fit is
    # refused whole, and not counted as lost: its sender keeps it.
    assert writer.offer_batch(good[:6], lambda s, r: confirmed.append((1, s, r)))
    assert not writer.offer_batch(good[6:12], lambda s, r: confirmed.append((0, s, r)))
    bad = good[0]._replace(time=good[0].time + timedelta(days=1), energy_pct=101.0)
    assert writer.offer_batch([good[6], bad, good[7]], lambda s, r: confirmed.append((2, s, r)))
    assert writer.offer_batch([], lambda s, r: confirmed.append((3, s, r)))
    assert writer.stats().overflow == 0
    await writer.start()
    await asyncio.wait_for(writer.flush(), 10)
    final = await writer.close()
    assert confirmed == [(1, 6, 0), (2, 2, 1), (3, 0, 0)]
    assert (final.written, final.rejected, final.overflow) == (8, 1, 0)
    assert await stored(db) == good[:8]


def test_columns_hold_rows_exactly_and_slice_as_views() -> None:
    """TelemetryColumns (the store node's form of a batch): rows in, the same rows out (times
    in whole ms, as the protocol carries them), unknown positions as None, slices of rows."""
    from py_nodes.db import TelemetryColumns

    sent = [r._replace(time=r.time.replace(microsecond=r.time.microsecond // 1000 * 1000)) for r in rows(7)]
    columns = TelemetryColumns.from_rows(sent)
    assert len(columns) == 7
    assert columns.rows() == sent
    assert columns.slice(2, 5).rows() == sent[2:5]
    assert [r.lat_deg is None for r in columns.rows()] == [True, False, False, True, False, False, True]
    with pytest.raises(ValueError, match="None together"):
        TelemetryColumns.from_rows([sent[1]._replace(alt_km=None)])
    with pytest.raises(ValueError, match="different lengths"):
        c = columns
        TelemetryColumns(["a"], c.time_ms[:2], c.energy_pct[:1], c.memory_used_mb[:1], ["safe"], c.position_known[:1],
                         c.lat_deg[:1], c.lon_deg[:1], c.alt_km[:1], c.in_sunlight[:1])  # fmt: skip
