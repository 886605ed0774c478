"""Telemetry ingest benchmark: our TelemetryWriter pipeline against a raw psycopg COPY.

    .venv/bin/python bench/db_bench.py [--rows 200000] [--rounds 3] [--no-durable] [--strict]

Starts an embedded PostgreSQL (durable: fsync on, as in production) in a temporary folder,
applies the migrations, and generates N telemetry rows once. Then, in interleaved rounds on an
emptied table (TRUNCATE and CHECKPOINT before each, not timed):

1. raw: one ``COPY telemetry ... FROM STDIN (FORMAT BINARY)`` of the N rows in one transaction,
   ``write_row`` per row: the floor of what psycopg can do;
2. ours: the rows offered to a ``TelemetryWriter`` in chunks of ``--chunk`` rows (as ticks of that
   many satellites would), timed until ``flush()`` returns: buffering, batches of
   ``--batch-rows`` in their own transactions, pool checkouts (a plain COPY per batch; the
   staging path only for a batch that meets rows already stored);
3. staged: the same with every batch through the idempotent path (COPY into a temporary
   staging table, INSERT ... ON CONFLICT DO NOTHING): what a batch delivered again costs.

Prints rows/s (median of the rounds), the ratio ours/raw (target >= 0.7) and how long ``offer``
blocked its caller; results also go to bench/results/db_bench.json. Exit 0 unless --strict and a
check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import save_results

from py_nodes.db import Database, EmbeddedServer, TelemetryRow, TelemetryWriter, migrate
from py_nodes.db.telemetry import COPY_TELEMETRY, COPY_TYPES, Staging

TARGET_RATIO = 0.7
MODES = ("safe", "standby", "nominal", "science", "downlink", "maintenance")


def make_rows(n: int, satellites: int) -> list[TelemetryRow]:
    """N rows as ticks of ``satellites`` satellites, one second apart, with plausible values."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        sat, tick = i % satellites, i // satellites
        rows.append(TelemetryRow(
            f"sat-{sat:05d}", t0 + timedelta(seconds=tick), 50.0 + 40.0 * ((i * 0.618) % 1), 1024.0 * ((i * 0.37) % 1),
            MODES[i % 6], -60.0 + (i * 0.77) % 120.0, -180.0 + (i * 1.3) % 360.0, 550.0 + (i % 10), i % 3 != 0,
        ))  # fmt: skip
    return rows


async def reset(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("TRUNCATE telemetry")
        await conn.execute("CHECKPOINT")


async def count(db: Database) -> int:
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM telemetry")).fetchone()
    return int(row[0]) if row else 0


async def run_raw(db: Database, rows: list[TelemetryRow]) -> float:
    start = time.perf_counter()
    async with db.transaction() as conn:
        async with conn.cursor().copy(COPY_TELEMETRY) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                await copy.write_row(row)
    return time.perf_counter() - start


async def run_ours(
    db: Database, rows: list[TelemetryRow], args: argparse.Namespace, *, staging: Staging = "on_conflict"
) -> dict[str, float]:
    writer = TelemetryWriter(
        db, max_rows=len(rows), batch_rows=args.batch_rows, flush_interval_s=0.05, staging=staging
    )
    await writer.start()
    offer_s = 0.0
    offer_max_s = 0.0
    start = time.perf_counter()
    for i in range(0, len(rows), args.chunk):
        t = time.perf_counter()
        writer.offer(rows[i : i + args.chunk])
        spent = time.perf_counter() - t
        offer_s += spent
        offer_max_s = max(offer_max_s, spent)
        await asyncio.sleep(0)  # a tick loop yields between ticks
    await writer.flush()
    elapsed = time.perf_counter() - start
    stats = await writer.close()
    if (stats.written, stats.overflow, stats.rejected) != (len(rows), 0, 0):
        raise RuntimeError(f"writer lost rows: {stats}")
    return {"elapsed_s": elapsed, "offer_total_s": offer_s, "offer_max_s": offer_max_s, "batches": stats.batches}


async def bench(conninfo: str, args: argparse.Namespace) -> dict[str, Any]:
    rows = make_rows(args.rows, args.satellites)
    raw_s: list[float] = []
    ours: list[dict[str, float]] = []
    staged: list[dict[str, float]] = []
    async with Database(conninfo, max_size=4) as db:
        await migrate(db)
        async with db.connection() as conn:
            version = await (await conn.execute("SHOW server_version")).fetchone()
            fsync = await (await conn.execute("SHOW fsync")).fetchone()
        for _ in range(args.rounds):
            await reset(db)
            raw_s.append(await run_raw(db, rows))
            assert await count(db) == args.rows
            await reset(db)
            ours.append(await run_ours(db, rows, args))
            assert await count(db) == args.rows
            await reset(db)
            staged.append(await run_ours(db, rows, args, staging="always"))
            assert await count(db) == args.rows
        await reset(db)
    raw_rate = args.rows / statistics.median(raw_s)
    ours_rate = args.rows / statistics.median(o["elapsed_s"] for o in ours)
    staged_rate = args.rows / statistics.median(o["elapsed_s"] for o in staged)
    return {
        "postgres": version[0] if version else None,
        "fsync": fsync[0] if fsync else None,
        "raw": {"rows_per_s": round(raw_rate), "rounds_s": [round(s, 4) for s in raw_s]},
        "ours": {
            "rows_per_s": round(ours_rate),
            "rounds_s": [round(o["elapsed_s"], 4) for o in ours],
            "batches": ours[0]["batches"],
            "offer_us_per_row": round(1e6 * statistics.median(o["offer_total_s"] for o in ours) / args.rows, 3),
            "offer_max_ms": round(1e3 * max(o["offer_max_s"] for o in ours), 3),
        },
        "staged": {"rows_per_s": round(staged_rate), "rounds_s": [round(o["elapsed_s"], 4) for o in staged]},
        "ratio": round(ours_rate / raw_rate, 3),
        "staged_over_plain": round(staged_rate / ours_rate, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000, help="telemetry rows per run")
    parser.add_argument("--satellites", type=int, default=1_000, help="distinct satellites in the rows")
    parser.add_argument("--chunk", type=int, default=1_000, help="rows per offer() call (one tick)")
    parser.add_argument("--batch-rows", type=int, default=5_000, help="TelemetryWriter batch_rows")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (median reported)")
    parser.add_argument("--no-durable", dest="durable", action="store_false", help="fsync off")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)
    if min(args.rows, args.satellites, args.chunk, args.batch_rows, args.rounds) < 1:
        parser.error("--rows, --satellites, --chunk, --batch-rows and --rounds must be positive")

    load = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="db_bench_"))
    try:
        with EmbeddedServer(folder / "pg", durable=args.durable) as server:
            body = asyncio.run(bench(server.conninfo, args))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    raw, ours = body["raw"], body["ours"]
    print(f"Telemetry ingest: {args.rows:,} rows, PostgreSQL {body['postgres']} (fsync {body['fsync']}), "
          f"median of {args.rounds} rounds, load avg before {load[0]:.2f}")  # fmt: skip
    print(f"{'path':<34}{'rows/s':>12}  rounds (s)")
    print(f"{'raw COPY, one transaction':<34}{raw['rows_per_s']:>12,}  {raw['rounds_s']}")
    print(f"{'TelemetryWriter (offer + flush)':<34}{ours['rows_per_s']:>12,}  {ours['rounds_s']}")
    staged = body["staged"]
    print(f"{'TelemetryWriter, all staged':<34}{staged['rows_per_s']:>12,}  {staged['rounds_s']}")
    print(f"staged (COPY to a temp table + INSERT ON CONFLICT) / plain COPY: {body['staged_over_plain']:.2f}x")
    print(f"ours/raw {body['ratio']:.2f}x; {ours['batches']} COPY batches of <= {args.batch_rows:,} rows; "
          f"offer() {ours['offer_us_per_row']} µs/row, longest call {ours['offer_max_ms']} ms "
          f"for {args.chunk:,} rows")  # fmt: skip
    results = [{"check": f"ours/raw >= {TARGET_RATIO}x", "value": body["ratio"], "target": TARGET_RATIO,
                "ok": body["ratio"] >= TARGET_RATIO}]  # fmt: skip
    passed = all(r["ok"] for r in results)
    for r in results:
        print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['check']} ({r['value']:.2f}x)")
    params = {k: v for k, v in vars(args).items() if k != "strict"}
    save_results("db_bench", params, None, load, body, results, passed)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
