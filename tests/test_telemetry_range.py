"""Telemetry over a range (py_nodes/db/telemetry_range.py) on a real PostgreSQL: [from, to)
bounds, buckets aligned on ``from`` with min/avg/max per parameter (a property test: each
bucket's min and max are exactly the raw extremes of its rows, so peaks survive downsampling),
and the CSV export: the same rows, in bounded chunks."""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from py_nodes.db import Database, TelemetryRow, TelemetryWriter
from py_nodes.db.telemetry_range import SERIES, TelemetryRange, telemetry_csv, telemetry_rows

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MODES = ("nominal", "science", "safe")


def row(sat: str, offset_ms: int, energy: float, memory: float, alt: float | None, mode: str = "nominal") -> TelemetryRow:
    position = (None, None, None) if alt is None else (10.0, 20.0, alt)
    return TelemetryRow(sat, T0 + timedelta(milliseconds=offset_ms), energy, memory, mode, *position, offset_ms % 2 == 0)


async def write(db: Database, rows: list[TelemetryRow]) -> None:
    async with TelemetryWriter(db, flush_interval_s=0.01, staging="never") as writer:
        assert writer.offer(rows) == len(rows)
        await writer.flush()
        assert writer.stats().written == len(rows)


async def test_raw_rows_are_the_half_open_range_of_one_satellite(db: Database) -> None:
    await write(db, [row("a", s * 1000, 50.0, 1.0, 500.0) for s in range(-5, 15)] + [row("b", 0, 1.0, 1.0, None)])
    rows = await telemetry_rows(db, TelemetryRange("a", T0, T0 + timedelta(seconds=10)))
    assert [r["time"] for r in rows] == [T0 + timedelta(seconds=s) for s in range(10)]  # 10 s itself left out
    assert {r["samples"] for r in rows} == {1} and "min" not in rows[0]
    limited = await telemetry_rows(db, TelemetryRange("a", T0, T0 + timedelta(seconds=10), limit=3))
    assert len(limited) == 3
    assert await telemetry_rows(db, TelemetryRange("c", T0, T0 + timedelta(seconds=10))) == []


async def test_buckets_keep_the_peak_and_the_last_position(db: Database) -> None:
    # 60 s of 1 Hz samples around 50 %, one spike to 99 % and one dip to 1 % in the second minute.
    energy = [50.0] * 120
    energy[75], energy[100] = 99.0, 1.0
    modes = ["nominal"] * 90 + ["science"] * 30
    await write(db, [row("a", s * 1000, energy[s], float(s), 500.0 + s, modes[s]) for s in range(120)])
    rows = await telemetry_rows(db, TelemetryRange("a", T0, T0 + timedelta(minutes=2), step_s=60))
    assert [r["time"] for r in rows] == [T0, T0 + timedelta(minutes=1)]
    first, second = rows
    assert first["min"]["energy_pct"] == first["max"]["energy_pct"] == 50.0
    assert (second["min"]["energy_pct"], second["max"]["energy_pct"]) == (1.0, 99.0)  # a mean would hide both
    assert second["energy_pct"] == pytest.approx((50.0 * 58 + 99 + 1) / 60) == second["avg"]["energy_pct"]
    assert (second["min"]["memory_used_mb"], second["max"]["memory_used_mb"]) == (60.0, 119.0)
    assert (second["min"]["alt_km"], second["max"]["alt_km"], second["alt_km"]) == (560.0, 619.0, 619.0)
    assert (first["mode"], second["mode"], second["samples"]) == ("nominal", "science", 60)


async def test_buckets_start_at_from_and_positions_may_be_missing(db: Database) -> None:
    await write(db, [row("a", s * 1000, 10.0, 0.0, None) for s in range(10)])
    start = T0 + timedelta(seconds=3)
    rows = await telemetry_rows(db, TelemetryRange("a", start, T0 + timedelta(seconds=10), step_s=4))
    assert [(r["time"], r["samples"]) for r in rows] == [(start, 4), (start + timedelta(seconds=4), 3)]
    assert rows[0]["min"]["alt_km"] is None and rows[0]["lat_deg"] is None


@st.composite
def series(draw: st.DrawFn) -> tuple[list[TelemetryRow], int, int]:
    """Rows at distinct ms offsets around a one-hour window, a bucket size and the window's start."""
    offsets = draw(st.lists(st.integers(-600_000, 4_200_000), min_size=1, max_size=300, unique=True))
    values = st.floats(0, 100, allow_nan=False)
    rows = [
        row("p", ms, draw(values), draw(st.floats(0, 1e6, allow_nan=False)),
            draw(st.one_of(st.none(), st.floats(-99, 999_999, allow_nan=False))), draw(st.sampled_from(MODES)))
        for ms in offsets
    ]  # fmt: skip
    return rows, draw(st.integers(1, 900)), draw(st.integers(-60, 60))


@pytest.mark.property
@given(case=series())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)
def test_each_bucket_holds_the_raw_extremes_of_its_rows(db_conninfo: str, case: tuple[list[TelemetryRow], int, int]) -> None:
    rows, step_s, start_shift_s = case
    asyncio.run(_check_buckets(db_conninfo, rows, step_s, start_shift_s))


async def _check_buckets(conninfo: str, rows: list[TelemetryRow], step_s: int, start_shift_s: int) -> None:
    start = T0 + timedelta(seconds=start_shift_s)
    end = start + timedelta(hours=1)
    async with Database(conninfo, max_size=1) as db:
        async with db.connection() as conn:
            await conn.execute("DELETE FROM telemetry")
        await write(db, rows)
        got = await telemetry_rows(db, TelemetryRange("p", start, end, step_s=step_s))
    expected: dict[datetime, list[TelemetryRow]] = defaultdict(list)
    for r in rows:
        if start <= r.time < end:
            index = math.floor((r.time - start) / timedelta(seconds=step_s))
            expected[start + index * timedelta(seconds=step_s)].append(r)
    assert [b["time"] for b in got] == sorted(expected)
    for bucket in got:
        members = expected[bucket["time"]]
        assert bucket["samples"] == len(members)
        for name in SERIES:
            values = [getattr(r, name) for r in members if getattr(r, name) is not None]
            assert bucket["min"][name] == (min(values) if values else None), name
            assert bucket["max"][name] == (max(values) if values else None), name
            if values:
                assert bucket["avg"][name] == pytest.approx(math.fsum(values) / len(values), rel=1e-9, abs=1e-9)
        last = max(members, key=lambda r: r.time)
        assert (bucket["mode"], bucket["alt_km"], bucket["in_sunlight"]) == (last.mode, last.alt_km, last.in_sunlight)


async def test_csv_is_the_same_rows_in_bounded_chunks(db: Database) -> None:
    sent = [row("a", s * 1000, (s * 7.3) % 100, s / 3, 500.0 + s / 7 if s % 5 else None, MODES[s % 3]) for s in range(3000)]
    await write(db, sent)
    wanted = TelemetryRange("a", T0, T0 + timedelta(hours=1))
    chunks = [c async for c in telemetry_csv(db, wanted, chunk_bytes=4096)]
    assert len(chunks) > 10 and all(len(c) >= 4096 for c in chunks[:-1]) and all(len(c) < 4096 + 200 for c in chunks)
    table = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert len(table) == 3000
    assert list(table[0]) == ["time", "satellite_id", "energy_pct", "memory_used_mb", "mode", "lat_deg", "lon_deg", "alt_km", "in_sunlight"]
    for line, r in zip(table, sent, strict=True):
        assert datetime.fromisoformat(line["time"]) == r.time and line["satellite_id"] == "a"
        assert float(line["energy_pct"]) == r.energy_pct and float(line["memory_used_mb"]) == r.memory_used_mb  # exact
        assert (float(line["alt_km"]) if line["alt_km"] else None) == r.alt_km
        assert (line["mode"], line["in_sunlight"]) == (r.mode, "t" if r.in_sunlight else "f")
    binned = [c async for c in telemetry_csv(db, TelemetryRange("a", T0, T0 + timedelta(hours=1), step_s=600))]
    table = list(csv.DictReader(io.StringIO(b"".join(binned).decode())))
    assert [int(line["samples"]) for line in table] == [600] * 5
    assert float(table[0]["energy_pct_max"]) == max(r.energy_pct for r in sent[:600])
    assert {"energy_pct_min", "energy_pct_avg", "memory_used_mb_max", "alt_km_min", "mode_last", "in_sunlight_last"} <= set(table[0])
