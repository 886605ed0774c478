"""Persistence benchmark: telemetry ingest, a 1 Hz constellation into PostgreSQL, command latency.

    .venv/bin/python bench/persistence_bench.py [--satellites 10000] [--steady-s 60]
        [--cmd-rate 1000] [--cmd-s 60] [--create-workers 4] [--create-batch 1000] [--create-only]
        [--copy-rows 200000] [--copy-rounds 3] [--strict]

Starts an embedded PostgreSQL (durable: fsync on, as in production) in a temporary folder and
migrates it (no seed). Then, in one run:

1. ingest: raw psycopg COPY of --copy-rows telemetry rows against our ``TelemetryWriter`` for
   the same rows (``db_bench.bench``, same server, median of --copy-rounds; the table is emptied
   afterwards). Target: ours >= 0.7x the raw rate. Then the reference for creation: N satellite
   rows inserted with plain psycopg (executemany, 1,000 rows a transaction; deleted afterwards).
2. The `stellar` BEAM node (as `stellarops up` starts it: DATABASE_URL in its environment, never
   on a command line) with 2 `sats` nodes and 1 `store` node, tick 1 s, on 127.0.0.1 with a
   random cookie in a temporary HOME, driven by a hidden Python control node through rpc and a
   helper module compiled at run time (`bench_persist`, below). Once the store has restored
   (stellar_store:status() restores >= 1), N satellites are created with `stellar:create_many/1`
   (an import: --create-batch specs a call, one store call and one transaction for each 2,000)
   from --create-workers processes inside BEAM at once; with --create-batch 1 with
   `stellar:create/1` each (as concurrent API clients; each create waits for its row, which the
   store commits with the others that came meanwhile): satellites/s and per-call latency, and
   the time until all run. Target (issue 19): >= 5,000/s, 100,000 in under a minute.
   --create-only stops here.
3. steady state (--steady-s at 1 Hz, after --settle-s): every second the bench reads the
   newest telemetry time of 100 probed satellites in PostgreSQL (lag = now - newest; one index
   lookup each: a max(time) over the table costs PostgreSQL more than the ingest at 100,000
   satellites), stellar_store:status()
   (ETS buffer) and, every 5 s, the rows inserted (pg_stat_user_tables) and the age of the satellites'
   checkpoints. Rows whose time falls in the window are counted once the pipeline has passed its
   end, against N x window expected. Overflow: BEAM's buffer_full counter (status(), since its
   start) over the window, and in the whole run from it and the logs of the BEAM node and the
   store node (the creation phase can fill the buffer at 100,000). CPU (% of one core) and RSS
   of each OS process: BEAM, sats nodes, store node, PostgreSQL (postmaster and backends summed;
   PSS as well, since backends share memory). Target: no overflow, lag p99 < 5 s and >= 99% of
   the window's rows written. Also reported: PostgreSQL's WAL over the window (bytes, full-page
   images, checkpoints) and, over 5 s after it, BEAM's busiest processes by reductions. Then, for 5 s, a read-only call of the store's own API
   (pending_commands) every 20 ms from BEAM: how long the store node's mailbox holds a call.
4. commands: the reference (run in phase 1, before the cluster starts, so that its load does not
   starve the store's lease): a bare psycopg insert of the same ledger row (same table, fsync
   on, one transaction per command) at --cmd-rate for up to 10 s, open loop on 8 connections
   (the store's pool), and a plain sequential insert loop for 3 s (its rows are deleted). Ours: --cmd-rate commands/s for --cmd-s seconds (noop and set_mode
   standby/nominal alternating, one satellite each), each `stellar:command/3` in its own process
   (open loop, as concurrent API clients would), from inside BEAM. A collector subscribed to
   stellar_events (type command) times submit (ledger commit, acknowledged) and submit-to-done
   (the outcome event); then the bench polls the ledger until all are final. Targets (issue
   19, at 1,000/s for 60 s): submit p99 <= 50 ms, submit-to-done p99 <= 100 ms, every ledger row
   final within 1 s of its creation (created_at -> finished_at, the database's clock), every
   acknowledged command in the ledger and final.

Prints a table and PASS/FAIL per target; results also go to
bench/results/persistence_bench.json. Exit code 0 unless --strict and a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import db_bench
import psycopg
from benchlib import BenchCluster, cpu_ticks, rss_kib, save_results
from psycopg_pool import AsyncConnectionPool

from py_nodes.db import Database, EmbeddedServer, migrate
from py_nodes.erldist import Atom, Node
from py_nodes.jsonterms import to_json
from py_nodes.settings import DEFAULT_PG_SHARED_BUFFERS_MB
from py_nodes.up import _wait_until_ready, _wait_until_restored

TICK_S = 1.0
SAMPLE_S = 1.0  # lag / buffer sampling period
COUNT_EVERY = 5  # samples between row counts (and checkpoint ages)
PROBE_SATS = 100  # satellites whose newest telemetry row gives the lag (one index lookup each)
# The newest row of each probed satellite through the (satellite_id, time) index: the newest and
# the oldest of those, as epoch seconds.
NEWEST_SQL = (
    "SELECT extract(epoch FROM max(newest)), extract(epoch FROM min(newest)) FROM unnest(%s::text[]) AS p(id)"
    " CROSS JOIN LATERAL (SELECT time AS newest FROM telemetry WHERE satellite_id = p.id"
    " ORDER BY time DESC LIMIT 1) AS x"
)
# Rows inserted into telemetry so far (cumulative statistics: flushed by each backend at the end
# of a transaction, at most once a second).
INSERTED_SQL = "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'telemetry'"
# WAL written and checkpoints taken (PostgreSQL 17+ views): what a telemetry row costs the server
# beyond its pages (full-page images after each checkpoint are most of the WAL at 100,000 rows/s).
WAL_SQL = (
    "SELECT w.wal_records, w.wal_fpi, w.wal_bytes, c.num_timed + c.num_requested"
    " FROM pg_stat_wal w, pg_stat_checkpointer c"
)
PROBE_MS = 5_000  # store round-trip probe, between the steady window and the commands
SLOW_MS = 100.0  # a submission slower than this is listed in the bursts
TARGET_RATIO, TARGET_LAG_P99_S, TARGET_WRITTEN = 0.7, 5.0, 0.99
# Issue 19: commands at 1,000/s (ms), ledger final (s after creation), creations per second.
TARGET_SUBMIT_P99_MS, TARGET_DONE_P99_MS, TARGET_FINAL_S, TARGET_CREATE_PER_S = 50.0, 100.0, 1.0, 5000.0
BARE_POOL = 8  # connections of the bare reference (the store node's pool size)
BARE_MAX_S = 10.0
_BARE_INSERT = (
    "INSERT INTO commands (satellite_id, kind, args, idempotency_key, submitted_by)"
    " VALUES (%s, 'noop', '{}', %s, 'bare')"
)
RPC = Callable[..., Awaitable[Any]]
BUSIEST_MS = 5000  # BEAM's processes and schedulers sampled this long after the steady window

HELPER = r"""
-module(bench_persist).
-export([create/1, create/2, create_batches/3, wait_running/3, fresh/1, queues/0, busiest/2,
         probe_store/2, commands/4]).

now_us() -> erlang:monotonic_time(microsecond).

running() -> ets:select_count(stellar_catalog, [{{'_', #{status => running}, '_', '_'}, [], [true]}]).

%% (Not io_lib:format: at 100,000 creations its cost was a visible part of BEAM's.)
sat_id(I) ->
    Digits = integer_to_binary(I),
    Pad = binary:copy(<<"0">>, max(0, 6 - byte_size(Digits))),
    <<"pbench-", Pad/binary, Digits/binary>>.

%% Creates pbench-000001 .. pbench-N from Workers processes at once (worker W creates W,
%% W + Workers, ...), as concurrent API clients would; total and per-create µs.
create(N, Workers) ->
    Parent = self(),
    T0 = now_us(),
    Pids = [spawn_link(fun() -> Parent ! {self(), create_slice(lists:seq(W, N, Workers))} end)
            || W <- lists:seq(1, min(Workers, N))],
    {Errors, Lat} = lists:foldl(fun(P, {E, L}) -> receive {P, {E1, L1}} -> {E1 ++ E, L1 ++ L} end end,
                                {[], []}, Pids),
    #{us => now_us() - T0, t0 => T0, errors => length(Errors), latency_us => Lat,
      first_errors => lists:sublist(Errors, 3)}.

create_slice(Is) ->
    lists:foldl(
        fun(I, {Errs, Ls}) ->
            Id = sat_id(I),
            S = now_us(),
            R = stellar:create(#{id => Id, name => Id}),
            L = now_us() - S,
            case R of
                {ok, _} -> {Errs, [L | Ls]};
                Error -> {[Error | Errs], [L | Ls]}
            end
        end, {[], []}, Is).

%% Creates pbench-000001 .. pbench-N with stellar:create_many/1 (an import), Batch specs a
%% call, from Workers processes at once (worker W sends batches W, W + Workers, ...); total and
%% per-call µs.
create_batches(N, Workers, Batch) ->
    Parent = self(),
    T0 = now_us(),
    Batches = chunks(lists:seq(1, N), Batch),
    Slices = [lists:append([B || {J, B} <- lists:zip(lists:seq(1, length(Batches)), Batches),
                                 J rem Workers =:= W rem Workers]) || W <- lists:seq(1, min(Workers, length(Batches)))],
    Pids = [spawn_link(fun() -> Parent ! {self(), batch_slice(Slice, Batch, T0)} end) || Slice <- Slices],
    {Errors, Calls} = lists:foldl(fun(P, {E, C}) -> receive {P, {E1, C1}} -> {E1 ++ E, C1 ++ C} end end,
                                  {[], []}, Pids),
    #{us => now_us() - T0, t0 => T0, errors => length(Errors), latency_us => [L || {_, L} <- Calls],
      started_us => [S || {S, _} <- Calls], first_errors => lists:sublist(Errors, 3)}.

%% Each call as {started µs after T0, µs it took}.
batch_slice(Is, Batch, T0) ->
    lists:foldl(
        fun(Chunk, {Errs, Cs}) ->
            Specs = [begin Id = sat_id(I), #{id => Id, name => Id} end || I <- Chunk],
            S = now_us(),
            Answers = stellar:create_many(Specs),
            L = now_us() - S,
            {[A || A <- Answers, element(1, A) =/= ok] ++ Errs, [{S - T0, L} | Cs]}
        end, {[], []}, chunks(Is, Batch)).

chunks([], _N) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {C, R} = lists:split(N, L), [C | chunks(R, N)].

%% Creates pbench-000001 .. pbench-N one after the other; total and per-create µs.
create(N) ->
    T0 = now_us(),
    {Errors, Lat} = create_slice(lists:seq(1, N)),
    #{us => now_us() - T0, t0 => T0, errors => length(Errors), latency_us => Lat,
      first_errors => lists:sublist(lists:reverse(Errors), 3)}.

wait_running(N, T0, TimeoutMs) ->
    wait_running_loop(N, T0, now_us() + TimeoutMs * 1000).

wait_running_loop(N, T0, Deadline) ->
    Running = running(),
    Now = now_us(),
    if
        Running >= N -> #{result => ok, us => Now - T0, running => Running};
        Now > Deadline -> #{result => timeout, us => Now - T0, running => Running};
        true -> timer:sleep(10), wait_running_loop(N, T0, Deadline)
    end.

fresh(AgeMs) ->
    Min = erlang:system_time(millisecond) - AgeMs,
    ets:select_count(stellar_catalog, [{{'_', #{status => running}, #{updated_at => '$1'}, '_'},
                                        [{'>=', '$1', Min}], [true]}]).

%% Messages queued in stellar_store and stellar_events, and the 3 longest queues.
queues() ->
    Procs = lists:sort([{Q, P} || P <- processes(),
                        {message_queue_len, Q} <- [erlang:process_info(P, message_queue_len)]]),
    Top = [#{name => name(P), queue => Q} || {Q, P} <- lists:sublist(lists:reverse(Procs), 3)],
    #{store => qlen(stellar_store), events => qlen(stellar_events), top => Top}.

%% Where BEAM's time goes over Ms: the Top processes by reductions. (A dist message is decoded
%% by the process that receives it, so its decoding counts there.)
busiest(Ms, Top) ->
    Reductions = fun() -> [{P, R} || P <- processes(), {reductions, R} <- [erlang:process_info(P, reductions)]] end,
    Before = maps:from_list(Reductions()),
    timer:sleep(Ms),
    After = [{R - maps:get(P, Before, 0), P} || {P, R} <- Reductions()],
    #{reductions => lists:sum([R || {R, _} <- After]),
      top => [#{name => name(P), reductions => R} || {R, P} <- lists:sublist(lists:reverse(lists:sort(After)), Top)]}.

qlen(Name) ->
    case whereis(Name) of
        undefined -> -1;
        P -> element(2, erlang:process_info(P, message_queue_len))
    end.

name(P) ->
    case erlang:process_info(P, registered_name) of
        {registered_name, Name} -> Name;
        _ -> list_to_binary(pid_to_list(P))
    end.

%% Round trips (µs) of gen_server:call({store, StoreNode}, pending_commands), a read-only call of
%% the store's own API (one small SELECT), every EveryMs for DurationMs: how long the store's
%% mailbox makes a call wait while telemetry flows.
probe_store(DurationMs, EveryMs) ->
    [Node | _] = [N || #{role := store, status := up, name := N} <- stellar_py_node:info()],
    probe_loop(Node, now_us() + DurationMs * 1000, EveryMs, []).

probe_loop(Node, End, EveryMs, Acc) ->
    case now_us() >= End of
        true ->
            lists:reverse(Acc);
        false ->
            S = now_us(),
            _ = gen_server:call({store, Node}, pending_commands, 10000),  % an error is timed too
            L = now_us() - S,
            timer:sleep(EveryMs),
            probe_loop(Node, End, EveryMs, [L | Acc])
    end.

%% Rate commands/s for DurationMs, command I to satellite I rem N + 1, each stellar:command/3
%% in a process of its own at its due time (open loop). A collector subscribed to the command
%% events pairs each id with its outcome; waits WaitMs at most after the last submission.
commands(Rate, DurationMs, N, WaitMs) ->
    Parent = self(),
    Collector = spawn_link(fun() -> collector_init(Parent) end),
    receive {Collector, subscribed} -> ok after 5000 -> exit(collector_not_subscribed) end,
    Total = Rate * DurationMs div 1000,
    StartMs = erlang:system_time(millisecond),
    T0 = now_us(),
    ok = submit_loop(0, Total, Rate, N, T0, Collector),
    LoopUs = now_us() - T0,
    LastMs = erlang:system_time(millisecond),
    Collector ! {finish, Total, now_us() + WaitMs * 1000},
    receive
        {Collector, Result} ->
            Result#{total => Total, loop_us => LoopUs, start_ms => StartMs, last_submit_ms => LastMs,
                    t0 => T0}
    after WaitMs + 30000 ->
        exit(collector_timeout)
    end.

submit_loop(I, Total, _Rate, _N, _T0, _C) when I >= Total ->
    ok;
submit_loop(I, Total, Rate, N, T0, C) ->
    wait_until(T0 + I * 1000000 div Rate),
    {Kind, Args} = case I rem 2 of
        0 -> {noop, #{}};
        1 -> {set_mode, #{mode => element((I div 2) rem 2 + 1, {standby, nominal})}}
    end,
    SatId = sat_id(I rem N + 1),
    _ = spawn(fun() ->
        S = now_us(),
        R = stellar:command(SatId, Kind, Args),
        C ! {submitted, R, S, now_us()}
    end),
    submit_loop(I + 1, Total, Rate, N, T0, C).

wait_until(Due) ->
    case Due - now_us() of
        D when D >= 1000 -> timer:sleep(D div 1000), wait_until(Due);
        _ -> ok
    end.

collector_init(Parent) ->
    ok = stellar_events:subscribe(self(), #{types => [command]}),
    Parent ! {self(), subscribed},
    collect(Parent, #{pending => #{}, early => #{}, submit => [], done => [], ids => [],
                      errors => [], outcomes => #{}, failures => [], reports => 0,
                      total => infinity, deadline => infinity}).

collect(Parent, S = #{pending := P, reports := R, total := Total, deadline := Deadline}) ->
    case R >= Total andalso map_size(P) =:= 0 of
        true ->
            finish(Parent, S);
        false ->
            Timeout = case Deadline of
                infinity -> infinity;
                _ -> max(0, (Deadline - now_us()) div 1000)
            end,
            receive
                Msg -> collect(Parent, handle(Msg, S))
            after Timeout ->
                finish(Parent, S)
            end
    end.

handle({submitted, {ok, CmdId}, Start, End},
       S = #{pending := P, early := E, submit := Sub, ids := Ids, reports := R}) ->
    S1 = S#{submit := [{Start, End - Start} | Sub], ids := [CmdId | Ids], reports := R + 1},
    case maps:take(CmdId, E) of
        {{DoneUs, Outcome}, E1} -> outcome(Outcome, Start, DoneUs - Start, S1#{early := E1});
        error -> S1#{pending := P#{CmdId => Start}}
    end;
handle({submitted, Error, Start, End}, S = #{errors := Errs, submit := Sub, reports := R}) ->
    S#{errors := [Error | Errs], submit := [{Start, End - Start} | Sub], reports := R + 1};
handle({stellar_event, _, command, _, #{command_id := CmdId, outcome := Outcome}, _},
       S = #{pending := P, early := E}) ->
    Now = now_us(),
    case maps:take(CmdId, P) of
        {Start, P1} -> outcome(Outcome, Start, Now - Start, S#{pending := P1});
        error -> S#{early := E#{CmdId => {Now, Outcome}}}
    end;
handle({finish, Total, Deadline}, S) ->
    S#{total := Total, deadline := Deadline};
handle(_, S) ->
    S.

outcome(Outcome, Start, Us, S = #{done := D, outcomes := O, failures := F}) ->
    Key = case Outcome of done -> done; _ -> failed end,
    F1 = case Key of failed when length(F) < 3 -> [Outcome | F]; _ -> F end,
    S#{done := [{Start, Us} | D], outcomes := O#{Key => maps:get(Key, O, 0) + 1}, failures := F1}.

finish(Parent, #{pending := P, submit := Sub, done := D, ids := Ids, errors := Errs,
                 outcomes := O, failures := F, reports := R}) ->
    Parent ! {self(), #{submit_us => Sub, done_us => D, ids => Ids, errors => length(Errs),
                        first_errors => lists:sublist(Errs, 3), outcomes => O, failures => F,
                        reports => R, no_outcome => map_size(P)}}.
"""


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": max(values)}


# -- PostgreSQL's processes ---------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def pg_pids(postmaster: int) -> list[int]:
    """The postmaster and its children (backends, checkpointer, WAL writer...)."""
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat_fields(int(entry.name))[1]) == postmaster:
                    pids.append(int(entry.name))
    return pids


def pg_ticks(postmaster: int) -> int:
    """CPU ticks of PostgreSQL: the postmaster's own and reaped children's, plus live children's."""
    f = _stat_fields(postmaster)
    total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    for pid in pg_pids(postmaster)[1:]:
        with contextlib.suppress(OSError):
            total += cpu_ticks(pid)
    return total


def pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


@dataclass
class Proc:
    """One measured OS process (or PostgreSQL as a whole, ``pg`` set)."""

    role: str
    pid: int
    pg: bool = False

    def ticks(self) -> int:
        return pg_ticks(self.pid) if self.pg else cpu_ticks(self.pid)

    def memory(self) -> tuple[int, int]:
        """(RSS, PSS) in KiB, summed over PostgreSQL's processes."""
        pids = pg_pids(self.pid) if self.pg else [self.pid]
        rss = pss = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                rss += rss_kib(pid)
                pss += pss_kib(pid)
        return rss, pss


# -- the run ------------------------------------------------------------------------------------


class Run(BenchCluster):
    """This benchmark's cluster: two `sats` nodes and a `store` node, tick TICK_S."""

    def __init__(self, tmp: Path, checkpoint_ms: int) -> None:
        super().__init__(tmp, "persist_bench", "bench_persist", HELPER)
        self.checkpoint_ms = checkpoint_ms

    def start(self, conninfo: str) -> subprocess.Popen[bytes]:  # type: ignore[override]
        home = self.tmp / "home"
        home.mkdir(mode=0o700)
        extra = {
            "STELLAROPS_HOME": str(self.tmp / "state"),
            "DATABASE_URL": conninfo,  # for the store node: env only, never argv, never printed
            "STELLAROPS_LOG_FORMAT": "text",  # rel/sys.config.src needs it (stellarops up defaults it)
        }
        app_env = {"tick_s": repr(TICK_S), "checkpoint_ms": str(self.checkpoint_ms)}
        return super().start({"sats": 2, "store": 1}, app_env, extra, home=home)


def overflow_in_log(text: str) -> dict[str, int]:
    """Telemetry not kept, as the BEAM node and the store node log it."""
    # stellar_store: "telemetry buffer full (B rows): N sample(s) dropped since the last warning, T in total"
    beam = max((int(m) for m in re.findall(r"telemetry buffer full \(\d+ rows\): \d+ sample\(s\) dropped .*?, (\d+) in total", text)), default=0)
    # TelemetryWriter: "telemetry: N rows not queued (...); M since the last warning, T in total"
    store = [int(m) for m in re.findall(r"rows not queued .*?, (\d+) in total", text)]
    lost = sum(int(m) for m in re.findall(r"(\d+) telemetry row\(s\) not written", text))
    return {"beam_buffer_full": beam, "store_writer_overflow": max(store, default=0),
            "store_lost_at_stop": lost}  # fmt: skip


@dataclass
class Sampler:
    """Samples the pipeline every SAMPLE_S seconds until stopped."""

    db: Database
    rpc: RPC
    origin: float
    probe_ids: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    phase: str = "create"

    async def run(self) -> None:
        i = 0
        while True:
            t = time.monotonic()
            s: dict[str, Any] = {"t": round(t - self.origin, 3), "phase": self.phase}
            status = await self.rpc("stellar_store", "status", [])
            s["buffered"], s["overflow"] = int(status["buffered"]), int(status["overflow"])
            async with self.db.connection() as conn:
                row = await (await conn.execute(NEWEST_SQL, (self.probe_ids,))).fetchone()
                now = time.time()
                s["wall"] = now
                s["lag_s"] = None if row is None or row[0] is None else now - float(row[0])
                s["lag_worst_s"] = None if row is None or row[1] is None else now - float(row[1])
                row = await (
                    await conn.execute(
                        "SELECT count(*) FILTER (WHERE status IN ('done', 'failed')), count(*)"
                        " FROM commands"
                    )
                ).fetchone()
                s["cmd_final"], s["cmd_total"] = (int(row[0]), int(row[1])) if row else (0, 0)
                # Rows written from the server's statistics, not count(*): at 100,000 rows/s a
                # count is a parallel scan of millions of rows that took both cores, and so did
                # max(time) through the BRIN index (the bench's own load, not the product's).
                if i % COUNT_EVERY == 0:
                    row = await (await conn.execute(INSERTED_SQL)).fetchone()
                    s["rows"], s["rows_wall"] = (int(row[0]) if row else 0), time.time()
                    row = await (
                        await conn.execute(
                            "SELECT extract(epoch FROM now() - min(updated_at)),"
                            " extract(epoch FROM now() - max(updated_at))"
                            " FROM satellites WHERE deleted_at IS NULL"
                        )
                    ).fetchone()
                    if row and row[0] is not None:
                        s["ckpt_oldest_s"], s["ckpt_newest_s"] = float(row[0]), float(row[1])
            self.samples.append(s)
            i += 1
            await asyncio.sleep(max(0.0, SAMPLE_S - (time.monotonic() - t)))


def probe_ids(n: int) -> list[str]:
    """PROBE_SATS of the bench's satellite ids, spread over all of them (sat_id/1 below)."""
    step = max(1, n // PROBE_SATS)
    return [f"pbench-{i:06d}" for i in range(1, n + 1, step)][:PROBE_SATS]


async def wal_counters(db: Database) -> dict[str, int]:
    async with db.connection() as conn:
        row = await (await conn.execute(WAL_SQL)).fetchone()
    assert row is not None
    return dict(zip(("records", "fpi", "bytes", "checkpoints"), (int(x) for x in row), strict=True))


async def scalar(db: Database, query: str, params: tuple[Any, ...] = ()) -> Any:
    async with db.connection() as conn:
        row = await (await conn.execute(query, params)).fetchone()
    return None if row is None else row[0]


def bursts(pairs: list[Any], t0: int, slow_ms: float = SLOW_MS) -> dict[str, Any]:
    """Submissions slower than ``slow_ms``: how many, and the bursts they form (gap > 1 s), as
    (first start, last start, count, worst ms) in seconds since the first command."""
    slow = sorted(((start - t0) / 1e6, lat / 1e3) for start, lat in pairs if lat / 1e3 > slow_ms)
    groups: list[list[float]] = []
    for t, ms in slow:
        if groups and t - groups[-1][1] <= 1.0:
            g = groups[-1]
            groups[-1] = [g[0], t, g[2] + 1, max(g[3], ms)]
        else:
            groups.append([t, t, 1, ms])
    return {
        "slow_ms": slow_ms,
        "count": len(slow),
        "bursts": [[round(x, 3) for x in g] for g in groups],
    }


def timeline(submits: list[Any], dones: list[Any], t0: int) -> list[list[float]]:
    """[start s since the first command, submit ms, submit-to-done ms or -1] per command."""
    done = {start: lat for start, lat in dones}
    return [
        [round((start - t0) / 1e6, 4), round(lat / 1e3, 2), round(done.get(start, -1000) / 1e3, 2)]
        for start, lat in sorted(submits)
    ]


def window_stats(samples: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    ss = [s for s in samples if s["phase"] == phase]
    lags = [s["lag_s"] for s in ss]
    counted = [s for s in ss if "rows" in s]
    rate = None
    if len(counted) >= 2:
        a, b = counted[0], counted[-1]
        rate = (b["rows"] - a["rows"]) / (b["rows_wall"] - a["rows_wall"])
    ckpt = [s["ckpt_oldest_s"] for s in counted if "ckpt_oldest_s" in s]
    return {
        "samples": len(ss),
        "lag_s": summary([x for x in lags if x is not None]),
        "lag_worst_s": summary([s["lag_worst_s"] for s in ss if s.get("lag_worst_s") is not None]),
        "lag_missing": sum(1 for x in lags if x is None),
        "buffered": summary([s["buffered"] for s in ss]),
        # status()'s overflow counts since the node started: the window's is the difference.
        "overflow_rows": ss[-1]["overflow"] - ss[0]["overflow"] if ss else 0,
        "overflow_total": max((s["overflow"] for s in samples), default=0),
        "rows_per_s": rate,
        "ckpt_oldest_s": summary(ckpt),
    }


async def bare_create(conninfo: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Reference for creation: ``n`` satellite rows with plain psycopg (executemany, 1,000 rows
    per transaction, fsync on); then the commands reference on them (``bare_commands``); all
    deleted afterwards (before the cluster starts: nothing restores them, and the reference's
    load does not starve the store's lease)."""
    at = datetime.now(UTC)
    rows = [(f"bare-{i:06d}", f"bare-{i:06d}", at) for i in range(n)]
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            async with conn.transaction():
                await conn.cursor().executemany(
                    "INSERT INTO satellites (id, name, updated_at) VALUES (%s, %s, %s)", rows[i : i + 1000]
                )
        wall = time.perf_counter() - t0
        commands = None
        if not args.create_only:
            ids = [r[0] for r in rows[: min(n, 10_000)]]
            commands = await bare_commands(conninfo, ids, args.cmd_rate, min(args.cmd_s, BARE_MAX_S))
        await conn.execute("DELETE FROM satellites WHERE id LIKE 'bare-%'")
    return {"n": n, "s": wall, "per_s": n / wall, "commands": commands}


async def bare_commands(conninfo: str, sat_ids: list[str], rate: int, seconds: float) -> dict[str, Any]:
    """Reference for commands: the ledger insert with plain psycopg, one transaction (one
    fsync) each, open loop at ``rate`` on BARE_POOL connections; then a sequential loop on one
    connection for 3 s. Latency in ms; the rows are deleted afterwards."""
    lat: list[float] = []
    total = max(1, int(rate * seconds))
    async with AsyncConnectionPool(
        conninfo, min_size=BARE_POOL, max_size=BARE_POOL, kwargs={"autocommit": True}, open=False, timeout=600
    ) as pool:
        await pool.open(wait=True)

        async def one(i: int) -> None:
            t = time.perf_counter()
            async with pool.connection() as conn:
                await conn.execute(_BARE_INSERT, (sat_ids[i % len(sat_ids)], f"bare-{i}"))
            lat.append((time.perf_counter() - t) * 1e3)

        t0 = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
        seq: list[float] = []
        async with pool.connection() as conn:
            end = time.perf_counter() + 3.0
            while (t := time.perf_counter()) < end:
                await conn.execute(_BARE_INSERT, (sat_ids[len(seq) % len(sat_ids)], f"bare-seq-{len(seq)}"))
                seq.append((time.perf_counter() - t) * 1e3)
            await conn.execute("DELETE FROM commands WHERE idempotency_key LIKE 'bare-%'")
    return {
        "rate": rate, "seconds": seconds, "total": total, "achieved_per_s": total / wall,
        "latency_ms": summary(lat),
        "sequential": {"per_s": len(seq) / 3.0, "latency_ms": summary(seq)},
    }  # fmt: skip


async def measure(run: Run, server: EmbeddedServer, args: argparse.Namespace) -> dict[str, Any]:
    n = args.satellites
    conninfo = server.conninfo
    fig: dict[str, Any] = {}

    # 1. Raw COPY against the TelemetryWriter (the table is emptied afterwards).
    copy_args = argparse.Namespace(
        rows=args.copy_rows,
        satellites=1_000,
        chunk=1_000,
        batch_rows=5_000,
        rounds=args.copy_rounds,
    )
    fig["copy"] = await db_bench.bench(conninfo, copy_args)
    async with Database(conninfo, max_size=2) as db:
        await migrate(db)  # (db_bench migrated already: a no-op)
    fig["bare_create"] = await bare_create(conninfo, n, args)
    fig["bare_commands"] = fig["bare_create"].pop("commands")

    beam = run.start(conninfo)
    name = run.beam_name
    async with Node(run.ctl_name, cookie=run.cookie) as ctl, Database(conninfo, max_size=3) as db:

        async def rpc(module: str, function: str, a: list[Any], timeout: float = 10.0) -> Any:
            return await ctl.rpc(name, module, function, a, timeout=timeout)

        async def nodes() -> list[Any]:
            result: list[Any] = await rpc("stellar", "nodes", [])
            run.note_nodes(result)
            return result

        t_start = time.monotonic()
        run.note_nodes(await _wait_until_ready(ctl, beam, name, 60.0))
        restored = await _wait_until_restored(ctl, beam, name, 60.0)
        fig["start_s"] = time.monotonic() - t_start
        fig["restored"] = restored
        fig["otp"] = bytes(await rpc("erlang", "system_info", [Atom("otp_release")])).decode()
        procs = {str(x["name"]): Proc(str(x["role"]), int(x["os_pid"])) for x in await nodes()}
        postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        procs["postgres (all processes)"] = Proc("pg", postmaster, pg=True)
        idle_mem = {k: p.memory() for k, p in procs.items()}

        sampler = Sampler(db, rpc, time.monotonic(), probe_ids=probe_ids(n))
        task = asyncio.get_running_loop().create_task(sampler.run())
        try:
            # 2. Creation.
            slow = max(300.0, n / 20)
            if args.create_batch > 1:
                created = await rpc("bench_persist", "create_batches", [n, args.create_workers, args.create_batch], slow)
            else:
                created = await rpc("bench_persist", "create", [n, args.create_workers], slow)
            if created["errors"]:
                raise BenchError(
                    f"{created['errors']} creations failed: {to_json(created['first_errors'])}"
                )
            running = await rpc("bench_persist", "wait_running", [n, created["t0"], 120_000], 150.0)
            if running["result"] != "ok":
                raise BenchError(f"only {running['running']} of {n} satellites running after 120 s")
            fig["create"] = {
                "workers": args.create_workers,
                "batch": args.create_batch,
                "s": created["us"] / 1e6,
                "per_s": n / (created["us"] / 1e6),
                "latency_ms": summary([x / 1e3 for x in created["latency_us"]]),
                # The slowest calls, (started s after the first, took ms): a stall shows as a cluster.
                "slowest": sorted(
                    ((s / 1e6, us / 1e3) for s, us in zip(created.get("started_us", []), created["latency_us"], strict=False)),
                    key=lambda c: -c[1],
                )[:5],
                "all_running_s": running["us"] / 1e6,
                "db_rows": await scalar(db, "SELECT count(*) FROM satellites"),
            }
            if args.create_only:
                return fig

            # 3. Steady state at 1 Hz.
            sampler.phase = "settle"
            await asyncio.sleep(args.settle_s)
            sampler.phase = "steady"
            w0 = time.time()
            t0 = time.monotonic()
            before = {k: p.ticks() for k, p in procs.items()}
            wal_before = await wal_counters(db)
            start_mem = {k: p.memory() for k, p in procs.items()}
            await asyncio.sleep(args.steady_s)
            t1 = time.monotonic()
            after = {k: p.ticks() for k, p in procs.items()}
            wal_after = await wal_counters(db)
            w1 = w0 + args.steady_s
            sampler.phase = "drain"
            end_mem = {k: p.memory() for k, p in procs.items()}
            # A tick stamps its catalog entry with the last sync round's start (every 2 s).
            fresh = await rpc("bench_persist", "fresh", [int(5000 * TICK_S)])
            queues = to_json(await rpc("bench_persist", "queues", []))
            busiest = to_json(await rpc("bench_persist", "busiest", [BUSIEST_MS, 8], BUSIEST_MS / 1000 + 10))
            # All rows of the window are in once the pipeline has passed its end.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                async with db.connection() as conn:
                    row = await (await conn.execute(NEWEST_SQL, (sampler.probe_ids,))).fetchone()
                oldest_newest = None if row is None else row[1]  # every probed satellite passed the end
                if oldest_newest is not None and float(oldest_newest) >= w1 + 2 * TICK_S:
                    break
                await asyncio.sleep(0.5)
            drained_after_s = time.monotonic() - t1
            in_window = await scalar(
                db,
                "SELECT count(*) FROM telemetry WHERE time >= to_timestamp(%s) AND time < to_timestamp(%s)",
                (w0, w1),
            )
            fig["steady"] = {
                "window_s": t1 - t0,
                "ticked_recently": fresh,
                "rows_in_window": int(in_window or 0),
                "rows_expected": round(n * args.steady_s / TICK_S),
                "drained_after_s": drained_after_s,
                "wal": {k: wal_after[k] - wal_before[k] for k in wal_before},
                "beam_queues_end": queues,
                "beam_busiest": busiest,
                "procs": {
                    k: {
                        "role": p.role,
                        "cpu_pct": 100
                        * (after[k] - before[k])
                        / os.sysconf("SC_CLK_TCK")
                        / (t1 - t0),
                        "rss_kib": end_mem[k][0],
                        "pss_kib": end_mem[k][1],
                        "start_rss_kib": start_mem[k][0],
                        "idle_rss_kib": idle_mem[k][0],
                    }
                    for k, p in procs.items()
                },
            }

            # Store responsiveness, no commands in flight.
            sampler.phase = "probe"
            probe = await rpc("bench_persist", "probe_store", [PROBE_MS, 20], PROBE_MS / 1000 + 30)
            lat = [x / 1e3 for x in probe]
            fig["store_probe_ms"] = {
                **summary(lat),
                "over_50ms": sum(1 for x in lat if x > 50) / len(lat) if lat else None,
            }

            # 4. Commands (the bare reference ran before the cluster started).
            sampler.phase = "commands"
            wait_ms = 60_000
            cmd_t0, cmd_before = time.monotonic(), {k: p.ticks() for k, p in procs.items()}
            cmd = await rpc(
                "bench_persist",
                "commands",
                [args.cmd_rate, int(args.cmd_s * 1000), n, wait_ms],
                args.cmd_s + wait_ms / 1000 + 60,
            )
            # CPU while commands ran (ticks and telemetry included; until the last outcome came).
            cmd_s = time.monotonic() - cmd_t0
            cmd_cpu = {k: 100 * (p.ticks() - cmd_before[k]) / os.sysconf("SC_CLK_TCK") / cmd_s for k, p in procs.items()}
            ids = [uuid.UUID(bytes(i).decode()) for i in cmd["ids"]]
            sampler.phase = "ledger"
            ledger_deadline = time.monotonic() + 120
            final = 0
            while time.monotonic() < ledger_deadline:
                final = int(await scalar(
                    db, "SELECT count(*) FROM commands WHERE id = ANY(%s) AND status IN ('done', 'failed')", (ids,)
                ) or 0)  # fmt: skip
                if final >= len(ids):
                    break
                await asyncio.sleep(0.05)
            all_final_wall = time.time()
            async with db.connection() as conn:
                rows = await (
                    await conn.execute(
                        "SELECT status, count(*),"
                        " percentile_disc(0.5) WITHIN GROUP (ORDER BY finished_at - created_at),"
                        " percentile_disc(0.99) WITHIN GROUP (ORDER BY finished_at - created_at),"
                        " max(finished_at - created_at)"
                        " FROM commands WHERE id = ANY(%s) GROUP BY status",
                        (ids,),
                    )
                ).fetchall()
            ledger = {
                str(r[0]): {
                    "count": int(r[1]),
                    **(
                        {"p50_ms": r[2].total_seconds() * 1e3, "p99_ms": r[3].total_seconds() * 1e3,
                         "max_ms": r[4].total_seconds() * 1e3}
                        if r[2] is not None else {}
                    ),
                }
                for r in rows
            }  # fmt: skip
            async with db.connection() as conn:
                every = await (
                    await conn.execute("SELECT status, count(*) FROM commands GROUP BY status")
                ).fetchall()
            fig["commands"] = {
                "cpu_pct": cmd_cpu,
                "rate": args.cmd_rate,
                "seconds": args.cmd_s,
                "total": int(cmd["total"]),
                "submitted_per_s": int(cmd["total"]) / (cmd["loop_us"] / 1e6)
                if cmd["loop_us"]
                else None,
                "errors": int(cmd["errors"]),
                "first_errors": to_json(cmd["first_errors"]),
                "outcomes": to_json(cmd["outcomes"]),
                "failures": to_json(cmd["failures"]),
                "no_outcome": int(cmd["no_outcome"]),
                "submit_ms": summary([lat / 1e3 for _, lat in cmd["submit_us"]]),
                "done_ms": summary([lat / 1e3 for _, lat in cmd["done_us"]]),
                "slow_submits": bursts(cmd["submit_us"], cmd["t0"]),
                "timeline": timeline(cmd["submit_us"], cmd["done_us"], cmd["t0"]),
                "ledger": ledger,
                "ledger_final": final,
                # Every ledger row, acknowledged or not: a submit that timed out in BEAM may
                # still have been committed by the store (it then waits, queued, for a restore).
                "ledger_all": {str(r[0]): int(r[1]) for r in every},
                "ledger_all_final_after_last_submit_s": (
                    all_final_wall - cmd["last_submit_ms"] / 1e3 if final >= len(ids) else None
                ),
            }
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        fig["samples"] = sampler.samples
        fig["windows"] = {
            ph: window_stats(sampler.samples, ph) for ph in ("settle", "steady", "commands")
        }
        fig["nodes_end"] = to_json(await nodes())
    return fig


def how_created(c: dict[str, Any]) -> str:
    batch = c.get("batch", 1)
    return "stellar:create/1 each" if batch <= 1 else f"stellar:create_many/1, {batch:,} a call"


def create_check(fig: dict[str, Any]) -> dict[str, Any]:
    per_s = fig["create"]["per_s"]
    return {"check": f"creation with persistence >= {TARGET_CREATE_PER_S:,.0f}/s", "value": per_s,
            "limit": TARGET_CREATE_PER_S, "ok": per_s >= TARGET_CREATE_PER_S, "unit": "/s"}  # fmt: skip


def command_checks(cm: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 19's command targets."""
    rate = cm["rate"]
    sub, done = cm["submit_ms"].get("p99", math.inf), cm["done_ms"].get("p99", math.inf)
    acked = cm["total"] - cm["errors"]
    lags = [v["max_ms"] / 1e3 for v in cm["ledger"].values() if "max_ms" in v]
    final_max = max(lags) if lags and cm["ledger_final"] >= acked else math.inf
    return [
        {"check": f"submit p99 <= {TARGET_SUBMIT_P99_MS:g} ms at {rate}/s", "value": sub,
         "limit": TARGET_SUBMIT_P99_MS, "ok": sub <= TARGET_SUBMIT_P99_MS, "unit": " ms"},
        {"check": f"submit-to-done p99 <= {TARGET_DONE_P99_MS:g} ms at {rate}/s", "value": done,
         "limit": TARGET_DONE_P99_MS, "ok": done <= TARGET_DONE_P99_MS, "unit": " ms"},
        {"check": f"ledger final within {TARGET_FINAL_S:g} s (created -> finished, max)", "value": final_max,
         "limit": TARGET_FINAL_S, "ok": final_max <= TARGET_FINAL_S, "unit": " s"},
        {"check": "every command acknowledged, in the ledger, final", "value": acked - cm["ledger_final"] + cm["errors"],
         "limit": 0, "ok": cm["errors"] == 0 and cm["ledger_final"] == acked, "unit": " missing"},
    ]  # fmt: skip


def checks(n: int, fig: dict[str, Any], log_overflow: dict[str, int]) -> list[dict[str, Any]]:
    if "steady" not in fig:  # --create-only
        return [create_check(fig)]
    st, w = fig["steady"], fig["windows"]["steady"]
    # BEAM's buffer over the window (creation may fill it: reported apart); the store's writer
    # over the whole run (its log counts since start), as before.
    overflow = w["overflow_rows"] + log_overflow["store_writer_overflow"]
    written = st["rows_in_window"] / st["rows_expected"] if st["rows_expected"] else 0.0
    lag_p99 = w["lag_s"].get("p99", math.inf) if not w["lag_missing"] else math.inf
    return [
        {"check": f"TelemetryWriter / raw COPY >= {TARGET_RATIO}x", "value": fig["copy"]["ratio"],
         "limit": TARGET_RATIO, "ok": fig["copy"]["ratio"] >= TARGET_RATIO, "unit": "x"},
        {"check": "no telemetry overflow (BEAM buffer in the window, store writer)", "value": overflow,
         "limit": 0, "ok": overflow == 0, "unit": " rows"},
        {"check": f"lag p99 < {TARGET_LAG_P99_S:g} s at {n:,} sats x 1 Hz", "value": lag_p99,
         "limit": TARGET_LAG_P99_S, "ok": lag_p99 < TARGET_LAG_P99_S, "unit": " s"},
        {"check": f"window's rows written >= {TARGET_WRITTEN:.0%}", "value": 100 * written,
         "limit": 100 * TARGET_WRITTEN, "ok": written >= TARGET_WRITTEN, "unit": "%"},
        create_check(fig),
        *command_checks(fig["commands"]),
    ]  # fmt: skip


def fmt_ms(s: dict[str, float]) -> str:
    if not s.get("n"):
        return "(none)"
    return f"p50 {s['p50']:,.1f}  p99 {s['p99']:,.1f}  max {s['max']:,.1f} ms (n={s['n']:,})"


def report(
    n: int,
    args: argparse.Namespace,
    fig: dict[str, Any],
    results: list[dict[str, Any]],
    log_overflow: dict[str, int],
    load: tuple[float, float, float],
) -> None:
    cp = fig["copy"]
    print(
        f"Persistence benchmark: {n:,} satellites, 2 sats nodes + 1 store node, tick {TICK_S:g} s, "
        f"PostgreSQL {cp['postgres']} (fsync {cp['fsync']}), OTP {fig['otp']}, {os.cpu_count()} CPUs, "
        f"load avg before {load[0]:.2f}"
    )
    print(
        f"1. ingest, {args.copy_rows:,} rows, median of {args.copy_rounds}: raw COPY "
        f"{cp['raw']['rows_per_s']:,} rows/s, TelemetryWriter {cp['ours']['rows_per_s']:,} rows/s "
        f"-> {cp['ratio']:.2f}x"
    )
    c, bc = fig["create"], fig["bare_create"]
    print(
        f"2. create {n:,} ({how_created(c)}, {c['workers']} concurrent callers): {c['s']:.2f} s = "
        f"{c['per_s']:,.0f}/s; per call {fmt_ms(c['latency_ms'])}; all running after "
        f"{c['all_running_s']:.2f} s; {c['db_rows']:,} rows in satellites"
    )
    if c.get("slowest"):
        print("   slowest calls (started s, took ms): " + ", ".join(f"({s:.1f}, {ms:,.0f})" for s, ms in c["slowest"]))
    print(
        f"   reference: bare psycopg executemany of {bc['n']:,} rows, 1,000 a transaction: {bc['s']:.2f} s = "
        f"{bc['per_s']:,.0f}/s -> ours {c['per_s'] / bc['per_s']:.2f}x"
    )
    if "steady" not in fig:
        for r in results:
            print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['check']:<52} ({r['value']:,.2f}{r['unit']})")
        return
    st, w = fig["steady"], fig["windows"]["steady"]
    lag = w["lag_s"]
    print(
        f"3. steady {st['window_s']:.1f} s at 1 Hz (after {args.settle_s:g} s settle; ticked in the "
        f"last 5 s: {st['ticked_recently']:,}/{n:,}):"
    )
    print(
        f"   lag now - newest row of {PROBE_SATS} probed satellites: p50 {lag.get('p50', math.nan):.2f} s, p99 "
        f"{lag.get('p99', math.nan):.2f} s, max {lag.get('max', math.nan):.2f} s "
        f"({w['samples']} samples, {w['lag_missing']} without rows); the probed satellite furthest "
        f"behind: p99 {w['lag_worst_s'].get('p99', math.nan):.2f} s"
    )
    rate = w["rows_per_s"]
    print(
        f"   rows written {rate:,.0f}/s (count every {COUNT_EVERY} s; produced nominally "
        f"{n / TICK_S:,.0f}/s); rows timed in the window: {st['rows_in_window']:,} of "
        f"{st['rows_expected']:,} ({100 * st['rows_in_window'] / st['rows_expected']:.2f}%), "
        f"counted {st['drained_after_s']:.1f} s after its end"
        if rate is not None
        else "   rows written: not enough samples"
    )
    wal = st["wal"]
    print(
        f"   PostgreSQL WAL over the window: {wal['bytes'] / st['window_s'] / 2**20:,.1f} MiB/s, "
        f"{wal['records']:,} records, {wal['fpi']:,} full-page images "
        f"({100 * wal['fpi'] * 8192 / max(wal['bytes'], 1):.0f}% of the bytes at most), "
        f"{wal['checkpoints']} checkpoint(s)"
    )
    b = w["buffered"]
    print(
        f"   BEAM telemetry buffer (ETS): p50 {b.get('p50', 0):,.0f}, max {b.get('max', 0):,.0f} rows; "
        f"overflow in the window {w['overflow_rows']:,} rows; in the whole run {w['overflow_total']:,} "
        f"(logs: {log_overflow})"
    )
    ck = w["ckpt_oldest_s"]
    if ck.get("n"):
        print(
            f"   oldest satellite checkpoint age: p50 {ck['p50']:.1f} s, max {ck['max']:.1f} s "
            f"(checkpoint_ms {args.checkpoint_ms})"
        )
    q = st["beam_queues_end"]
    print(
        f"   BEAM queues at the end: stellar_store {q['store']}, stellar_events {q['events']}; "
        "longest: " + ", ".join(f"{t['name']} {t['queue']}" for t in q["top"])
    )
    bz = st["beam_busiest"]
    print(
        f"   BEAM's busiest processes over {BUSIEST_MS / 1000:g} s after the window (share of {bz['reductions']:,} reductions): "
        + ", ".join(f"{t['name']} {100 * t['reductions'] / max(bz['reductions'], 1):.0f}%" for t in bz["top"])
    )
    print(
        f"   {'process':<38}{'role':<6}{'CPU % core':>11}{'RSS MiB: idle':>15}{'start':>8}{'end':>8}{'PSS':>8}"
    )
    tot = [0.0, 0, 0, 0, 0]
    for node, p in st["procs"].items():
        print(
            f"   {node:<38}{p['role']:<6}{p['cpu_pct']:>11.1f}{p['idle_rss_kib'] / 1024:>15.1f}"
            f"{p['start_rss_kib'] / 1024:>8.1f}{p['rss_kib'] / 1024:>8.1f}{p['pss_kib'] / 1024:>8.1f}"
        )
        tot = [tot[0] + p["cpu_pct"], tot[1] + p["idle_rss_kib"], tot[2] + p["start_rss_kib"],
               tot[3] + p["rss_kib"], tot[4] + p["pss_kib"]]  # fmt: skip
    print(
        f"   {'total':<44}{tot[0]:>11.1f}{tot[1] / 1024:>15.1f}{tot[2] / 1024:>8.1f}"
        f"{tot[3] / 1024:>8.1f}{tot[4] / 1024:>8.1f}"
    )
    pr = fig["store_probe_ms"]
    print(
        f"   store node call round trip (pending_commands every 20 ms for {PROBE_MS / 1000:g} s): "
        f"{fmt_ms(pr)}; {100 * (pr['over_50ms'] or 0):.0f}% > 50 ms"
    )
    cm = fig["commands"]
    wc = fig["windows"]["commands"]
    bare = fig["bare_commands"]
    print(
        f"4. reference: bare psycopg ledger insert, one transaction each (fsync on), {bare['total']:,} at "
        f"{bare['rate']}/s on {BARE_POOL} connections (achieved {bare['achieved_per_s']:,.0f}/s): "
        f"{fmt_ms(bare['latency_ms'])}"
    )
    print(
        f"   reference: sequential insert loop on one connection: {bare['sequential']['per_s']:,.0f}/s, "
        f"{fmt_ms(bare['sequential']['latency_ms'])}"
    )
    if cm["submit_ms"].get("n") and bare["latency_ms"].get("n"):
        print(
            f"   ours / bare: submit p50 {cm['submit_ms']['p50'] / bare['latency_ms']['p50']:.2f}x, "
            f"p99 {cm['submit_ms']['p99'] / bare['latency_ms']['p99']:.2f}x"
        )
    print(
        f"   commands: {cm['total']:,} at {cm['rate']}/s over {cm['seconds']:g} s (submitted at "
        f"{cm['submitted_per_s']:,.0f}/s; errors {cm['errors']}; outcomes {cm['outcomes']}; "
        f"no outcome {cm['no_outcome']})"
    )
    print(f"   submit (ledger commit, stellar:command/3): {fmt_ms(cm['submit_ms'])}")
    print(f"   submit-to-done (outcome event):           {fmt_ms(cm['done_ms'])}")
    sl = cm["slow_submits"]
    print(
        f"   submits > {sl['slow_ms']:g} ms: {sl['count']:,}, in bursts (from s, to s, count, worst ms): "
        + ", ".join(f"({g[0]:.1f}, {g[1]:.1f}, {g[2]:.0f}, {g[3]:.0f})" for g in sl["bursts"][:8])
    )
    led = cm["ledger"]
    after = cm["ledger_all_final_after_last_submit_s"]
    print(
        f"   ledger: {cm['ledger_final']:,}/{cm['total'] - cm['errors']:,} final "
        + (f"{after:.2f} s after the last submit; " if after is not None else "(timed out); ")
        + "; ".join(
            f"{k} {v['count']:,}"
            + (f" (created->finished p50 {v['p50_ms']:,.0f}, p99 {v['p99_ms']:,.0f}, max {v['max_ms']:,.0f} ms)" if "p50_ms" in v else "")
            for k, v in led.items()
        )
    )  # fmt: skip
    extra = sum(cm["ledger_all"].values()) - (cm["total"] - cm["errors"])
    print(
        f"   ledger rows in all: {cm['ledger_all']}; {extra:,} more than acknowledged"
        + (" (refused by BEAM, committed by the store anyway)" if extra > 0 else "")
    )
    if "cpu_pct" in cm:
        cpu = cm["cpu_pct"]
        print(
            "   CPU % of a core while commands ran: " + ", ".join(f"{k.split('@')[0]} {v:.0f}" for k, v in cpu.items())
            + f"; all {sum(cpu.values()):.0f} of {100 * (os.cpu_count() or 1)}"
        )  # fmt: skip
    lagc = wc["lag_s"]
    if lagc.get("n"):
        print(
            f"   telemetry lag meanwhile: p50 {lagc['p50']:.2f} s, max {lagc['max']:.2f} s; "
            f"buffered max {wc['buffered'].get('max', 0):,.0f}"
        )
    for r in results:
        print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['check']:<52} ({r['value']:,.2f}{r['unit']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--satellites", type=int, default=10_000, help="satellites to create")
    parser.add_argument("--steady-s", type=int, default=60, help="steady-state window (s)")
    parser.add_argument(
        "--settle-s", type=float, default=10.0, help="after creation, before the window"
    )
    parser.add_argument("--cmd-rate", type=int, default=1000, help="commands per second")
    parser.add_argument("--cmd-s", type=float, default=60.0, help="seconds of commands")
    parser.add_argument(
        "--create-workers", type=int, default=None, help="concurrent creators in BEAM (default: 200 with --create-batch 1, else 4)"
    )
    parser.add_argument(
        "--create-batch", type=int, default=1000, help="satellites per stellar:create_many/1 call (1: stellar:create/1 each)"
    )
    parser.add_argument("--create-only", action="store_true", help="stop after the creation phase")
    parser.add_argument(
        "--copy-rows", type=int, default=200_000, help="rows of the COPY comparison"
    )
    parser.add_argument("--copy-rounds", type=int, default=3, help="rounds of the COPY comparison")
    parser.add_argument(
        "--checkpoint-ms",
        type=int,
        default=5000,
        help="stellar checkpoint_ms (5000 as in production)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)
    if not 1 <= args.satellites <= 999_999:
        parser.error("--satellites must be in 1..999999 (ids are pbench-000001 ..)")
    if args.create_workers is None:
        args.create_workers = 200 if args.create_batch == 1 else 4
    if min(args.steady_s, args.cmd_rate, args.cmd_s, args.copy_rows, args.copy_rounds, args.create_workers, args.create_batch) <= 0:
        parser.error(
            "--steady-s, --cmd-rate, --cmd-s, --copy-rows, --copy-rounds, --create-workers and --create-batch must be positive"
        )

    def on_sigterm(_sig: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)  # unwinds through the `finally` below

    signal.signal(signal.SIGTERM, on_sigterm)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="persist_bench_") as tmp:
        run = Run(Path(tmp), args.checkpoint_ms)
        # As `stellarops up` configures it (fsync on, its cache size).
        server = EmbeddedServer(Path(tmp) / "pg", durable=True, shared_buffers_mb=DEFAULT_PG_SHARED_BUFFERS_MB)
        try:
            server.start()
            fig = asyncio.run(measure(run, server, args))
        except KeyboardInterrupt:
            print("persistence_bench: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # report any failure with the node's log, after the cleanup
            run.stop_all()
            print(
                f"persistence_bench: {type(exc).__name__}: {exc}\n{run.log_tail()}", file=sys.stderr
            )
            return 2
        finally:
            sigint = signal.signal(
                signal.SIGINT, signal.SIG_IGN
            )  # a second Ctrl-C must not skip this
            try:
                run.stop_all()
                server.stop()
            finally:
                signal.signal(signal.SIGINT, sigint)
        log_overflow = overflow_in_log(run.log_text())
        log_warnings = [
            line
            for line in run.log_text().splitlines()
            if " warning: " in line or " error: " in line
        ]

    results = checks(args.satellites, fig, log_overflow)
    report(args.satellites, args, fig, results, log_overflow, load)
    fig["log_overflow"] = log_overflow
    kinds = Counter(re.sub(r"[0-9]+", "N", line.split("+00:00 ", 1)[-1])[:160] for line in log_warnings)
    fig["log_warnings"] = {"count": len(log_warnings), "first": log_warnings[:10], "kinds": kinds.most_common(20)}
    if log_warnings:
        print(f"({len(log_warnings)} warning/error lines in the node logs; by kind, numbers as N:)")
        for kind, count in kinds.most_common(8):
            print(f"  {count} x {kind}")
    passed = all(r["ok"] for r in results)
    params = {k: v for k, v in vars(args).items() if k != "strict"}
    params.update(tick_s=TICK_S, sats_nodes=2, store_nodes=1, durable=True,
                  telemetry_flush_ms=500)  # fmt: skip
    save_results("persistence_bench", params, fig["otp"], load, {"figures": fig}, results, passed)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
