"""Satellite benchmark (issue 3): create, tick and re-place N satellites on the real control plane.

    .venv/bin/python bench/sats_bench.py [--satellites 10000] [--steady-s 60] [--strict]

Starts the `stellar` BEAM node (as `stellarops up` does) with its two Python `sats` nodes (tick
1 s) on 127.0.0.1 with a random cookie (in a temporary HOME, never on a command line), and a
hidden Python control node. The work is done inside the BEAM node by a helper module compiled at
run time (`bench_sats`, below), so that the client is not measured:

1. reference, in the same BEAM node before any satellite exists: N bare gen_servers started under
   a simple_one_for_one supervisor, each writing one ETS row (the OTP floor of creating a
   supervised, registered process, without Python); the same N ticking at 1 Hz, each updating its
   row, for a third of the steady window (the BEAM node's CPU: the floor of N 1 Hz processes);
   and the ones of a share as large as the killed node's, killed and restarted by their
   supervisor (the floor of recovering them);
2. create N satellites with `stellar:create/1` in a loop: satellites/s, and the time until all run;
3. steady state: CPU (utime + stime from /proc, % of one core) and RSS of each OS process;
4. kill -9 the `sats` node hosting the most satellites: time until all of them run again.

The verdict is against the reference of the same run (a slow or loaded machine slows both):
creation rate, steady CPU and re-placement time as ratios to the reference's, within bounds that
are the issue's targets (2,000/s, 50% of a core, 5 s for 10,000 satellites) divided by the
reference measured on the 2-core development machine; the absolute targets are a second line,
reported apart (floors_pass).
Prints a table and PASS/FAIL per check; results also go to bench/results/sats_bench.json. Exit
code 0 unless --strict and a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from benchlib import BenchCluster, cpu_ticks, rss_kib, save_results

from py_nodes.erldist import Atom, Node, RpcError
from py_nodes.jsonterms import to_json
from py_nodes.up import _wait_until_ready

BENCH_DIR = Path(__file__).resolve().parent
TICK_S = 1.0
SETTLE_S = 5.0  # after all satellites run, before the steady-state window
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_CREATE_PER_S, TARGET_CPU_PCT, TARGET_REPLACE_S = 2_000.0, 50.0, 5.0
# Issue 19, target 3 (at 100,000 satellites): all CPU under 1.5 cores, >= 99 % of the telemetry
# rows, their lag p99 under 5 s, the killed node's satellites re-placed within 10 s. This bench
# runs no store node: it counts the ticks that reach BEAM's telemetry path; rows written to
# PostgreSQL at that scale are persistence_bench.py's (--satellites 100000).
SCALE_CPU_PCT, SCALE_ROWS_PCT, SCALE_LAG_P99_MS, SCALE_REPLACE_S = 150.0, 99.0, 5_000.0, 10.0
# Bounds on ours / reference: the targets above over the reference measured on the 2-core
# development machine at 10,000 satellites (2026-12-03: 159,000 bare gen_servers/s, 11.3% of a
# core for 10,000 bare 1 Hz gen_servers, 0.58 s for their supervisor to restart 5,000 of them).
MIN_CREATE_RATIO = 2_000 / 159_000  # 0.0126: creation rate, ours / bare gen_servers'
MAX_CPU_RATIO = 50.0 / 11.3  # 4.4: steady CPU of all nodes, ours / bare 1 Hz gen_servers'
MAX_REPLACE_RATIO = 5.0 / 0.58  # 8.6: seconds per satellite re-placed / per process restarted

HELPER = r"""
-module(bench_sats).
-export([sup_ref/1, start_ref_child/2, init/1, handle_call/3, handle_cast/2, handle_info/2, create/1, wait_running/3, fresh/1, counts/0, memory/0, kill_and_wait/4]).
-export([tick_ref/3, restart_ref/3, ticks/0, profile/1]).

now_us() -> erlang:monotonic_time(microsecond).

running() -> ets:select_count(stellar_catalog, [{{'_', #{status => running}, '_', '_'}, [], [true]}]).

%% Reference: starts N gen_servers (this module) under a simple_one_for_one supervisor (this
%% module too), each inserting one ETS row as a shadow registers itself; µs.
sup_ref(N) ->
    Tab = ets:new(bench_ref, [set, public, {write_concurrency, true}]),
    {ok, Sup} = supervisor:start_link(?MODULE, {sup, Tab}),
    unlink(Sup),
    T0 = now_us(),
    lists:foreach(fun(I) -> {ok, _} = supervisor:start_child(Sup, [I]) end, lists:seq(1, N)),
    Us = now_us() - T0,
    teardown(Sup),
    Us.

init({sup, Tab}) ->
    init({sup, Tab, temporary, 1});
init({sup, Tab, Restart, Intensity}) ->
    Child = #{id => ref, start => {?MODULE, start_ref_child, [Tab]}, restart => Restart},
    {ok, {#{strategy => simple_one_for_one, intensity => Intensity, period => 10}, [Child]}};
init({child, {ticking, Tab} = Spec, I}) ->
    true = ets:insert(Tab, {I, self(), 0}),
    %% A BIF timer per process (timer:send_interval's one timer_server would be the bottleneck
    %% at 100,000 processes, not the floor this measures).
    _ = erlang:send_after(1000, self(), tick),
    {ok, {Spec, I}};
init({child, Tab, I}) ->
    true = ets:insert(Tab, {I, self(), 0}),
    {ok, {Tab, I}}.

start_ref_child(Tab, I) ->
    gen_server:start_link(?MODULE, {child, Tab, I}, []).

handle_call(_, _, State) -> {reply, ok, State}.
handle_cast(_, State) -> {noreply, State}.
handle_info(tick, State = {{ticking, Tab}, I}) ->
    _ = erlang:send_after(1000, self(), tick),
    _ = ets:update_counter(Tab, I, {3, 1}),
    {noreply, State}.

%% Ends a reference's supervisor and its children at once, and waits until they are gone:
%% exit(Sup, shutdown) stops N children one by one, with a selective receive over the other
%% exits each time (quadratic: minutes at 100,000, while the real run is being measured).
teardown(Sup) ->
    Ref = erlang:monitor(process, Sup),
    Children = [P || {_, P, _, _} <- supervisor:which_children(Sup), is_pid(P)],
    exit(Sup, kill),
    receive {'DOWN', Ref, process, Sup, _} -> ok end,
    lists:foreach(fun(P) -> exit(P, kill) end, Children),
    wait_gone(Children).

wait_gone([]) -> ok;
wait_gone([P | Rest] = All) ->
    case is_process_alive(P) of
        true -> timer:sleep(10), wait_gone(All);
        false -> wait_gone(Rest)
    end.

%% Reference for the steady CPU: N supervised gen_servers, each updating its ETS row at 1 Hz;
%% after SettleMs, this OS process's CPU (clock ticks, /proc) over WindowMs, and the ticks made.
tick_ref(N, SettleMs, WindowMs) ->
    Tab = ets:new(bench_tick, [set, public, {write_concurrency, true}]),
    {ok, Sup} = supervisor:start_link(?MODULE, {sup, {ticking, Tab}, temporary, 1}),
    unlink(Sup),
    [{ok, _} = supervisor:start_child(Sup, [I]) || I <- lists:seq(1, N)],
    timer:sleep(SettleMs),
    {Cpu0, Ticks0, T0} = {cpu_ticks(), ticks(Tab), now_us()},
    timer:sleep(WindowMs),
    {Cpu1, Ticks1, T1} = {cpu_ticks(), ticks(Tab), now_us()},
    teardown(Sup),
    #{cpu_ticks => Cpu1 - Cpu0, us => T1 - T0, ticks => Ticks1 - Ticks0}.

ticks(Tab) -> ets:foldl(fun({_, _, C}, Acc) -> Acc + C end, 0, Tab).

%% utime + stime of this OS process, in clock ticks.
cpu_ticks() ->
    {ok, Stat} = file:read_file("/proc/" ++ os:getpid() ++ "/stat"),
    [_, After] = binary:split(Stat, <<") ">>),
    Fields = binary:split(After, <<" ">>, [global]),
    binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)).

%% Reference for the re-placement: N supervised gen_servers; K of them killed at once; µs until
%% the supervisor has restarted all K (each new child registers its row again).
restart_ref(N, K, TimeoutMs) ->
    Tab = ets:new(bench_restart, [set, public, {write_concurrency, true}]),
    {ok, Sup} = supervisor:start_link(?MODULE, {sup, Tab, permanent, K + 1}),
    unlink(Sup),
    [{ok, _} = supervisor:start_child(Sup, [I]) || I <- lists:seq(1, N)],
    Victims = [{I, ets:lookup_element(Tab, I, 2)} || I <- lists:seq(1, K)],
    T0 = now_us(),
    [exit(P, kill) || {_, P} <- Victims],
    Result = restarted_loop(Tab, Victims, T0, T0 + TimeoutMs * 1000),
    teardown(Sup),
    Result#{killed => K}.

restarted_loop(Tab, Left, T0, Deadline) ->
    Left1 = [V || V = {I, Old} <- Left, ets:lookup_element(Tab, I, 2) =:= Old],
    Now = now_us(),
    if
        Left1 =:= [] -> #{result => ok, us => Now - T0};
        Now > Deadline -> #{result => timeout, us => Now - T0};
        true -> timer:sleep(1), restarted_loop(Tab, Left1, T0, Deadline)
    end.

%% Creates bench-000001 .. bench-N, one stellar:create/1 after the other.
create(N) ->
    T0 = now_us(),
    Errors = lists:foldl(
        fun(I, Acc) ->
            Id = iolist_to_binary(io_lib:format("bench-~6..0b", [I])),
            case stellar:create(#{id => Id, name => Id}) of
                {ok, _} -> Acc;
                Error -> [Error | Acc]
            end
        end, [], lists:seq(1, N)),
    #{us => now_us() - T0, t0 => T0, errors => length(Errors),
      first_errors => lists:sublist(lists:reverse(Errors), 3)}.

%% Waits until N satellites have status running; µs since T0 (monotonic, this node).
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

%% Running satellites whose newest tick (their catalog entry's tick slot) is at most AgeMs old.
fresh(AgeMs) ->
    Min = erlang:system_time(millisecond) - AgeMs,
    ets:select_count(stellar_catalog, [{{'_', #{status => running}, #{updated_at => '$1'}, '_'},
                                        [{'>=', '$1', Min}], [true]}]).

%% The tick sink's counters (stellar_ticks:counts/0), or none on a node without one.
ticks() ->
    try stellar_ticks:counts() catch exit:_ -> #{} end.

%% Where the BEAM node's time goes for Ms: microstate accounting (per thread type: % of the
%% time in emulator, gc, port, other... summed over threads) and the reductions per group of
%% processes (shadows together, registered ones by name, others by initial call), top 12.
profile(Ms) ->
    Before = reductions(),
    msacc:start(Ms),
    After = reductions(),
    Stats = msacc:stats(),
    Top = top_reductions(Before, After),
    ByType = lists:foldl(
        fun(#{type := Type, counters := C}, Acc) ->
            maps:update_with(Type, fun(Old) -> maps:merge_with(fun(_, A, B) -> A + B end, Old, C) end, C, Acc)
        end, #{}, Stats),
    Msacc = maps:map(fun(_, C) ->
                         Total = max(1, lists:sum(maps:values(C))),
                         maps:filter(fun(_, V) -> V >= 0.5 end,
                                     maps:map(fun(_, V) -> round(1000 * V / Total) / 10 end, C))
                     end, ByType),
    #{msacc => Msacc, reductions_top => Top}.

%% The 12 groups of processes that ran the most reductions between two reductions/0 readings
%% (processes that started meanwhile count from 0).
top_reductions(Before, After) ->
    Delta = maps:fold(fun(P, {G, R}, Acc) ->
                          R0 = case maps:find(P, Before) of {ok, {_, X}} -> X; error -> 0 end,
                          maps:update_with(G, fun(Y) -> Y + R - R0 end, R - R0, Acc)
                      end, #{}, After),
    Total = max(1, lists:sum(maps:values(Delta))),
    Top = lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(Delta))), 12),
    [#{group => G, reductions => R, pct => round(1000 * R / Total) / 10} || {G, R} <- Top].

reductions() ->
    Self = self(),  % not the profiler itself
    maps:from_list([{P, {group(P), R}} || P <- processes(), P =/= Self,
                    {reductions, R} <- [erlang:process_info(P, reductions)]]).

group(P) ->
    case erlang:process_info(P, [registered_name, dictionary, initial_call]) of
        [{registered_name, Name}, _, _] when is_atom(Name) -> atom_to_binary(Name);
        [_, {dictionary, D}, {initial_call, Init}] ->
            {M, F, A} = proplists:get_value('$initial_call', D, Init),
            iolist_to_binary(io_lib:format("~s:~s/~b", [M, F, A]));
        _ -> <<"other">>
    end.

%% Live satellites in the catalog, and how many of them run.
counts() ->
    #{total => length(stellar_catalog:entries()), running => running()}.

%% erlang:memory/0 (bytes), the messages queued in all processes, the 3 largest processes.
memory() ->
    Procs = lists:sort([{Mem, Q, P} || P <- processes(),
                        [{memory, Mem}, {message_queue_len, Q}]
                            <- [erlang:process_info(P, [memory, message_queue_len])]]),
    Top = [#{name => name(P), memory => M, queue => Q}
           || {M, Q, P} <- lists:sublist(lists:reverse(Procs), 3)],
    #{erlang => maps:from_list(erlang:memory()), top => Top,
      queued => lists:sum([Q || {_, Q, _} <- Procs])}.

name(P) ->
    case erlang:process_info(P, registered_name) of
        {registered_name, Name} -> Name;
        _ -> list_to_binary(pid_to_list(P))
    end.

%% kill -9 of the sats node PyNode (OS pid OsPid), then waits until every satellite it hosted
%% has a new shadow whose actor runs on a connected sats node, and all N run.
kill_and_wait(OsPid, PyNode, N, TimeoutMs) ->
    Moved = [{Id, actor_of(Id)} || #{id := Id, node := P} <- stellar_catalog:entries(), P =:= PyNode],
    Before = reductions(),
    T0 = now_us(),
    _ = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    Result = replaced_loop(Moved, length(Moved), N, T0, T0 + TimeoutMs * 1000),
    Result#{reductions_top => top_reductions(Before, reductions())}.

%% Cheap polls (one select_count) until all N run; then the moved ids are checked one by one.
replaced_loop(Left, Moved, N, T0, Deadline) ->
    Running = running(),
    Left1 = case Running >= N of
        true -> Connected = nodes(connected), [M || M <- Left, not replaced(M, Connected)];
        false -> Left
    end,
    Now = now_us(),
    Done = Left1 =:= [] andalso Running >= N,
    if
        Done -> #{result => ok, moved => Moved, us => Now - T0, left => 0, running => Running};
        Now > Deadline ->
            Connected1 = nodes(connected),
            #{result => timeout, moved => Moved, us => Now - T0, running => Running,
              left => length([M || M <- Left1, not replaced(M, Connected1)])};
        true -> timer:sleep(20), replaced_loop(Left1, Moved, N, T0, Deadline)
    end.

%% Placed again: a new actor (the shadow places it again itself; a new shadow would too) that
%% the catalog shows running on a connected sats node.
replaced({Id, Old}, Connected) ->
    case actor_of(Id) of
        New when is_pid(New), New =/= Old ->
            case stellar_catalog:lookup(Id) of
                {ok, #{status := running, node := Py}} -> lists:member(Py, Connected);
                _ -> false
            end;
        _ ->
            false
    end.

actor_of(Id) ->
    case stellar_sat:whereis(Id) of
        undefined -> undefined;
        Shadow ->
            try gen_server:call(Shadow, actor, 2000) of
                {ok, Actor} -> Actor;
                _ -> undefined
            catch exit:_ -> undefined
            end
    end.
"""


def telemetry_figures(n: int, before: dict[Any, Any], after: dict[Any, Any], window_s: float) -> dict[str, Any]:
    """Ticks that reached the BEAM node's telemetry path (stellar_ticks) in the window against
    N per tick period, and their lag (actor tick to arrival) p50/p99 from its histogram."""
    if not before or not after:
        return {"rows": 0, "expected": n * window_s / TICK_S, "pct": 0.0, "lag_p50_ms": None, "lag_p99_ms": None}
    rows = int(after["ticks"]) - int(before["ticks"])
    old = {int(k): int(v) for k, v in before["lag_ms"].items()}
    hist = sorted((int(k), int(v) - old.get(int(k), 0)) for k, v in after["lag_ms"].items())
    total = sum(c for _, c in hist)

    def pct(q: float) -> float | None:
        seen = 0
        for bucket_ms, count in hist:
            seen += count
            if total and seen >= q * total:
                return float(bucket_ms + 10)  # the bucket's upper bound (10 ms buckets)
        return None

    expected = n * window_s / TICK_S
    return {
        "rows": rows,
        "expected": expected,
        "pct": 100 * rows / expected,
        "stale": int(after["stale"]) - int(before["stale"]),
        "dropped": int(after["dropped"]) - int(before["dropped"]),
        "lag_p50_ms": pct(0.50),
        "lag_p99_ms": pct(0.99),
    }


def start_py_spy(tmp: Path, pids: dict[str, int], seconds: float) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
    """py-spy (the bench extras) sampling each sats node for ``seconds``, if installed."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        return {}
    spies = {}
    for node, pid in pids.items():
        out = tmp / f"py-spy-{pid}.txt"
        argv = [str(exe), "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", "100", "-f", "raw",
                "-o", str(out), "--nonblocking"]  # fmt: skip
        spies[node] = (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)
    return spies


def collect_py_spy(spies: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> dict[str, Any]:
    """Per sats node: the share of samples in the functions that cost the most (inclusive)."""
    result: dict[str, Any] = {}
    for node, (proc, out) in spies.items():
        proc.wait(120)
        if not out.exists():
            continue
        inclusive: dict[str, int] = {}
        total = 0
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            total += int(count)
            for frame in {f.split(" (")[0] for f in stack.split(";")}:
                inclusive[frame] = inclusive.get(frame, 0) + int(count)
        top = sorted(inclusive.items(), key=lambda kv: -kv[1])[:25]
        result[node] = {"samples": total, "top_inclusive_pct": {f: round(100 * c / total, 1) for f, c in top if total}}
    return result


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


class Run(BenchCluster):
    """This benchmark's cluster: two `sats` nodes, tick TICK_S."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, "sats_bench", "bench_sats", HELPER)

    def start(self) -> subprocess.Popen[bytes]:  # type: ignore[override]
        return super().start({"sats": 2}, {"tick_s": repr(TICK_S)})


async def measure(
    run: Run, beam: subprocess.Popen[bytes], args: argparse.Namespace
) -> dict[str, Any]:
    """Every phase of the benchmark; returns the figures."""
    n, name = args.satellites, run.beam_name
    async with Node(run.ctl_name, cookie=run.cookie) as ctl:

        async def rpc(module: str, function: str, a: list[Any], timeout: float = 10.0) -> Any:
            return await ctl.rpc(name, module, function, a, timeout=timeout)

        async def nodes() -> list[Any]:
            result: list[Any] = await rpc("stellar", "nodes", [])
            run.note_nodes(result)
            return result

        run.note_nodes(await _wait_until_ready(ctl, beam, name, 60.0))
        otp = bytes(await rpc("erlang", "system_info", [Atom("otp_release")])).decode()
        procs = {str(x["name"]): (str(x["role"]), int(x["os_pid"])) for x in await nodes()}
        idle_rss = {node: rss_kib(pid) for node, (_role, pid) in procs.items()}

        slow = max(120.0, n / 50)  # rpc timeout of the long phases (s)
        ref_us = await rpc("bench_sats", "sup_ref", [n], slow)
        ref_window_ms = int(1000 * args.steady_s / 3)
        ref_tick = await rpc(
            "bench_sats", "tick_ref", [n, int(1000 * SETTLE_S), ref_window_ms], slow + args.steady_s
        )
        ref_restart = await rpc("bench_sats", "restart_ref", [n, max(1, n // 2), 60_000], slow)
        created = await rpc("bench_sats", "create", [n], slow)
        if created["errors"]:
            raise BenchError(f"{created['errors']} creations failed: {to_json(created)}")
        running = await rpc("bench_sats", "wait_running", [n, created["t0"], 120_000], slow)
        if running["result"] != "ok":
            raise BenchError(f"only {running['running']} of {n} satellites running after 120 s")

        await asyncio.sleep(SETTLE_S)
        ticks0 = await rpc("bench_sats", "ticks", [])
        t0, before = time.monotonic(), {node: cpu_ticks(pid) for node, (_r, pid) in procs.items()}
        start_rss = {node: rss_kib(pid) for node, (_role, pid) in procs.items()}
        await asyncio.sleep(args.steady_s)
        t1, after = time.monotonic(), {node: cpu_ticks(pid) for node, (_r, pid) in procs.items()}
        ticks1 = await rpc("bench_sats", "ticks", [])
        fresh = await rpc("bench_sats", "fresh", [int(2000 * TICK_S)])
        beam_memory = to_json(await rpc("bench_sats", "memory", []))
        steady = {
            node: {
                "role": role,
                "cpu_pct": 100 * (after[node] - before[node]) / CLK_TCK / (t1 - t0),
                "rss_kib": rss_kib(pid),
                "start_rss_kib": start_rss[node],
                "idle_rss_kib": idle_rss[node],
            }
            for node, (role, pid) in procs.items()
        }

        profile: dict[str, Any] = {}
        if args.profile_s > 0:  # after the window: the profilers' own cost stays out of it
            sats_pids = {node: pid for node, (role, pid) in procs.items() if role == "sats"}
            spies = start_py_spy(run.tmp, sats_pids, args.profile_s)
            profile["beam"] = to_json(
                await rpc("bench_sats", "profile", [int(1000 * args.profile_s)], args.profile_s + 60)
            )
            profile["python"] = collect_py_spy(spies)

        placed = {str(x["name"]): x for x in await nodes() if x["role"] == "sats"}
        victim = max(placed.values(), key=lambda x: int(x["satellites"]))
        survivors = {node: pid for node, (role, pid) in procs.items() if role == "sats" and node != str(victim["name"])}
        spies = start_py_spy(run.tmp, survivors, 10.0) if args.profile_s > 0 else {}
        try:
            replace = await rpc(
                "bench_sats", "kill_and_wait", [victim["os_pid"], victim["name"], n, 120_000], 150.0
            )
        except RpcError as exc:  # a node too busy to answer: the figures above still count
            moved = int(victim["satellites"])
            replace = {"result": f"no answer ({exc})", "moved": moved, "us": 150_000_000, "left": moved, "running": 0}
        profile["replace_python"] = collect_py_spy(spies)
        placement_before = {node: int(x["satellites"]) for node, x in placed.items()}
        back: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the killed node comes back (its supervisor)
            back = {str(x["name"]): x for x in await nodes() if x["role"] == "sats"}
            if back[str(victim["name"])]["status"] == "up":
                break
            await asyncio.sleep(0.2)
        counts = await rpc("bench_sats", "counts", [])

    return {
        "otp": otp,
        "reference_s": ref_us / 1e6,
        "reference_cpu_pct": 100 * ref_tick["cpu_ticks"] / CLK_TCK / (ref_tick["us"] / 1e6),
        "reference_ticks_per_s": ref_tick["ticks"] / (ref_tick["us"] / 1e6),
        "reference_window_s": ref_tick["us"] / 1e6,
        "reference_restart": {k: to_json(v) for k, v in ref_restart.items()},
        "reference_restart_s": ref_restart["us"] / 1e6,
        "create_s": created["us"] / 1e6,
        "all_running_s": running["us"] / 1e6,
        "steady": steady,
        "steady_window_s": t1 - t0,
        "ticked_recently": fresh,
        "telemetry": telemetry_figures(n, ticks0, ticks1, t1 - t0),
        "profile": profile,
        "beam_memory_end": beam_memory,
        "placement_before_kill": placement_before,
        "killed": {"node": str(victim["name"]), "os_pid": victim["os_pid"]},
        "replace": {k: to_json(v) for k, v in replace.items()},
        "replace_s": replace["us"] / 1e6,
        "after_kill": {
            "nodes": {n_: to_json(x) for n_, x in back.items()},
            "catalog": to_json(counts),
        },
    }


def checks(n: int, fig: dict[str, Any]) -> list[dict[str, Any]]:
    """Against the reference of the same run first, then the absolute targets (a second line)."""
    rep, ref_restart = fig["replace"], fig["reference_restart"]
    total_cpu = sum(p["cpu_pct"] for p in fig["steady"].values())
    create_ratio = fig["reference_s"] / fig["create_s"]  # our rate / the reference's
    # The reference must itself have done its job: N processes ticking at 1 Hz.
    ref_ticked = fig["reference_ticks_per_s"] >= 0.9 * n / TICK_S
    cpu_ratio = total_cpu / fig["reference_cpu_pct"] if fig["reference_cpu_pct"] > 0 else float("inf")
    # Per satellite moved vs per process restarted: the two shares need not be the same size.
    per_moved_s = fig["replace_s"] / max(1, int(rep["moved"]))
    per_restarted_s = fig["reference_restart_s"] / int(ref_restart["killed"])
    replace_ratio = per_moved_s / per_restarted_s if per_restarted_s > 0 else float("inf")
    replaced = rep["result"] == "ok" and ref_restart["result"] == "ok"
    return [
        {
            "check": f"vs reference: creation rate >= {MIN_CREATE_RATIO:.4f}x bare gen_servers'",
            "value": create_ratio,
            "unit": "x",
            "limit": MIN_CREATE_RATIO,
            "ok": create_ratio >= MIN_CREATE_RATIO,
        },
        {
            "check": f"vs reference: steady CPU <= {MAX_CPU_RATIO:.1f}x N bare 1 Hz gen_servers'",
            "value": cpu_ratio,
            "unit": "x",
            "limit": MAX_CPU_RATIO,
            "ok": ref_ticked and cpu_ratio <= MAX_CPU_RATIO,
        },
        {
            "check": f"vs reference: re-placement per satellite <= {MAX_REPLACE_RATIO:.1f}x a supervisor restart",
            "value": replace_ratio,
            "unit": "x",
            "limit": MAX_REPLACE_RATIO,
            "ok": replaced and replace_ratio <= MAX_REPLACE_RATIO,
        },
        {
            "check": f"floor: creation >= {TARGET_CREATE_PER_S:,.0f} satellites/s",
            "value": n / fig["create_s"],
            "unit": "/s",
            "limit": TARGET_CREATE_PER_S,
            "ok": n / fig["create_s"] >= TARGET_CREATE_PER_S,
        },
        {
            "check": f"floor: steady 1 Hz ticking < {TARGET_CPU_PCT:.0f}% of one core",
            "value": total_cpu,
            "unit": "%",
            "limit": TARGET_CPU_PCT,
            "ok": total_cpu < TARGET_CPU_PCT,
        },
        *scale_checks(fig),
        {
            "check": f"floor: re-placement of {rep['moved']:,} within {TARGET_REPLACE_S:.0f} s",
            "value": fig["replace_s"],
            "unit": " s",
            "limit": TARGET_REPLACE_S,
            "ok": rep["result"] == "ok" and fig["replace_s"] <= TARGET_REPLACE_S,
        },
    ]


def scale_checks(fig: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 19's target 3, printed apart ("scale:"): absolute, like the floors."""
    total_cpu = sum(p["cpu_pct"] for p in fig["steady"].values())
    tel = fig["telemetry"]
    lag = tel["lag_p99_ms"] if tel["lag_p99_ms"] is not None else float("inf")
    rep = fig["replace"]
    return [
        {"check": f"scale: steady CPU of all nodes < {SCALE_CPU_PCT / 100:.1f} cores", "value": total_cpu / 100,
         "unit": " cores", "limit": SCALE_CPU_PCT / 100, "ok": total_cpu < SCALE_CPU_PCT},
        {"check": f"scale: ticks reaching the telemetry path >= {SCALE_ROWS_PCT:.0f}% of N (no store)", "value": tel["pct"],
         "unit": "%", "limit": SCALE_ROWS_PCT, "ok": tel["pct"] >= SCALE_ROWS_PCT},
        {"check": f"scale: tick-to-telemetry-path lag p99 < {SCALE_LAG_P99_MS / 1000:.0f} s", "value": lag / 1000,
         "unit": " s", "limit": SCALE_LAG_P99_MS / 1000, "ok": lag < SCALE_LAG_P99_MS},
        {"check": f"scale: re-placement of {rep['moved']:,} within {SCALE_REPLACE_S:.0f} s", "value": fig["replace_s"],
         "unit": " s", "limit": SCALE_REPLACE_S, "ok": rep["result"] == "ok" and fig["replace_s"] <= SCALE_REPLACE_S},
    ]  # fmt: skip


def report(
    n: int,
    args: argparse.Namespace,
    fig: dict[str, Any],
    results: list[dict[str, Any]],
    load: tuple[float, float, float],
) -> None:
    print(
        f"Satellite benchmark: {n:,} satellites, 2 sats nodes, tick {TICK_S:g} s, OTP {fig['otp']},"
        f" {os.cpu_count()} CPUs, load avg before {load[0]:.2f}"
    )
    r, c = fig["reference_s"], fig["create_s"]
    print(f"{'phase':<46}{'seconds':>9}{'per second':>13}")
    print(f"{'reference: bare supervised gen_servers x N':<46}{r:>9.2f}{n / r:>13,.0f}")
    print(f"{'create (stellar:create/1 loop in BEAM)':<46}{c:>9.2f}{n / c:>13,.0f}")
    print(f"  (ours / reference rate: {r / c:.2f}x)")
    print(
        f"{'  ... until all running':<46}{fig['all_running_s']:>9.2f}{n / fig['all_running_s']:>13,.0f}"
    )
    print(
        f"steady state over {fig['steady_window_s']:.1f} s "
        f"(ticked in the last 2 s: {fig['ticked_recently']:,}/{n:,}):"
    )
    print(f"  {'node':<34}{'role':<6}{'CPU % core':>11}{'RSS MiB: idle':>15}{'start':>7}{'end':>7}")
    for node, p in fig["steady"].items():
        rss_cols = (p["idle_rss_kib"], p["start_rss_kib"], p["rss_kib"])
        print(
            f"  {node:<34}{p['role']:<6}{p['cpu_pct']:>11.1f}"
            f"{rss_cols[0] / 1024:>15.1f}{rss_cols[1] / 1024:>7.1f}{rss_cols[2] / 1024:>7.1f}"
        )
    cpu = sum(p["cpu_pct"] for p in fig["steady"].values())
    rss = sum(p["rss_kib"] for p in fig["steady"].values())
    start = sum(p["start_rss_kib"] for p in fig["steady"].values())
    idle = sum(p["idle_rss_kib"] for p in fig["steady"].values())
    print(f"  {'total':<40}{cpu:>11.1f}{idle / 1024:>15.1f}{start / 1024:>7.1f}{rss / 1024:>7.1f}")
    bm = fig["beam_memory_end"]
    mem = {k: v / 2**20 for k, v in bm["erlang"].items()}
    top = ", ".join(
        f"{t['name']} {t['memory'] / 2**20:.1f} MiB q {t['queue']:,}" for t in bm["top"]
    )
    print(
        f"  BEAM erlang:memory() at the end, MiB: total {mem['total']:.1f}, processes "
        f"{mem['processes']:.1f}, binary {mem['binary']:.1f}, ets {mem['ets']:.1f}; "
        f"{bm['queued']:,} messages queued; largest: {top}"
    )
    print(
        f"  memory per satellite (BEAM + Python): {rss / n:.1f} KiB total RSS / N, "
        f"{(rss - idle) / n:.1f} KiB above idle"
    )
    for role in ("beam", "sats"):
        procs = [p for p in fig["steady"].values() if p["role"] == role]
        above = sum(p["start_rss_kib"] - p["idle_rss_kib"] for p in procs)
        cores = sum(p["cpu_pct"] for p in procs) / 100
        print(f"  {role:<5}: {cores:.2f} cores, {above / n:.2f} KiB RSS per satellite above idle (at the window's start)")
    print(f"  BEAM erlang:memory() total / N: {bm['erlang']['total'] / n / 1024:.2f} KiB per satellite")
    tel = fig["telemetry"]
    print(
        f"  telemetry: {tel['rows']:,} ticks reached BEAM's telemetry path of {tel['expected']:,.0f} expected "
        f"({tel['pct']:.1f}%), lag p50 {tel['lag_p50_ms']} ms, p99 {tel['lag_p99_ms']} ms "
        f"(stale {tel.get('stale', 0)}, dropped {tel.get('dropped', 0)})"
    )
    prof = fig.get("profile") or {}
    if prof.get("beam"):
        beam = prof["beam"]
        print(f"  BEAM profile: msacc {beam['msacc']}")
        print("  BEAM reductions: " + ", ".join(f"{t['group']} {t['pct']}%" for t in beam["reductions_top"]))
    for node, spy in (prof.get("python") or {}).items():
        frames = list(spy["top_inclusive_pct"].items())[8:20]  # below the event loop's own frames
        print(f"  py-spy {node} ({spy['samples']} samples): " + ", ".join(f"{f} {p}%" for f, p in frames))
    rep, after = fig["replace"], fig["after_kill"]
    print(f"kill -9 {fig['killed']['node']} (placement before: {fig['placement_before_kill']}):")
    print(
        f"  {rep['moved']:,} satellites running again after {fig['replace_s']:.2f} s "
        f"({rep['result']}, {rep['left']} left); catalog after: {after['catalog']}"
    )
    for node, x in after["nodes"].items():
        print(f"  {node}: {x['status']}, restarts {x['restarts']}, {x['satellites']:,} satellites")
    if rep.get("reductions_top"):
        print("  BEAM reductions while re-placing: " + ", ".join(f"{t['group']} {t['pct']}%" for t in rep["reductions_top"]))
    for node, spy in (prof.get("replace_python") or {}).items():
        frames = list(spy["top_inclusive_pct"].items())[6:20]
        print(f"  py-spy {node} while re-placing, first 10 s ({spy['samples']} samples): " + ", ".join(f"{f} {p}%" for f, p in frames))
    print(
        f"reference: N bare 1 Hz gen_servers {fig['reference_cpu_pct']:.1f}% of a core "
        f"({fig['reference_ticks_per_s']:,.0f} ticks/s over {fig['reference_window_s']:.1f} s); "
        f"{fig['reference_restart']['killed']:,} of them killed and restarted by their supervisor in "
        f"{fig['reference_restart_s']:.3f} s ({fig['reference_restart']['result']})"
    )
    for r in results:
        print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['check']:<62} ({r['value']:,.2f}{r['unit']})")


def save(
    n: int,
    args: argparse.Namespace,
    fig: dict[str, Any],
    results: list[dict[str, Any]],
    load: tuple[float, float, float],
    passed: bool,
) -> None:
    params = {
        "satellites": n,
        "steady_s": args.steady_s,
        "settle_s": SETTLE_S,
        "tick_s": TICK_S,
        "sats_nodes": 2,
    }
    save_results("sats_bench", params, fig["otp"], load, {"figures": fig}, results, passed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--satellites", type=int, default=10_000, help="satellites to create")
    parser.add_argument("--steady-s", type=float, default=60.0, help="steady-state window (s)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    parser.add_argument(
        "--profile-s", type=float, default=5.0, help="after the window: msacc + reductions and py-spy for this long (0: off)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.satellites <= 999_999:
        parser.error("--satellites must be in 1..999999 (ids are bench-000001 ..)")

    def on_sigterm(_sig: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)  # unwinds through the `finally` below

    signal.signal(signal.SIGTERM, on_sigterm)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sats_bench_") as tmp:
        run = Run(Path(tmp))
        try:
            fig = asyncio.run(measure(run, run.start(), args))
        except KeyboardInterrupt:
            print("sats_bench: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # report any failure with the node's log, after the cleanup
            run.stop_all()
            print(f"sats_bench: {type(exc).__name__}: {exc}\n{run.log_tail()}", file=sys.stderr)
            return 2
        finally:
            run.stop_all()

    results = checks(args.satellites, fig)
    report(args.satellites, args, fig, results, load)
    # The verdict is the comparison with the reference; the absolute floors are a second line.
    passed = all(r["ok"] for r in results if not r["check"].startswith(("floor:", "scale:")))
    floors = all(r["ok"] for r in results if r["check"].startswith("floor:"))
    print(f"verdict (vs reference): {'PASS' if passed else 'FAIL'}; absolute floors: {'PASS' if floors else 'FAIL'}")
    fig["floors_pass"] = floors
    save(args.satellites, args, fig, results, load, passed)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
