%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_metrics_tests).
-include_lib("eunit/include/eunit.hrl").

with_table(Fun) ->
    fun() ->
        Self = self(),
        %% stellar_sup owns the table in the node; here a process of the test does.
        Owner = spawn(fun() -> ok = stellar_metrics:new_table(), Self ! ready, receive stop -> ok end end),
        receive ready -> ok end,
        try Fun() after Owner ! stop, wait_gone() end
    end.

wait_gone() ->
    case ets:whereis(stellar_metrics) of undefined -> ok; _ -> timer:sleep(5), wait_gone() end.

%% Outcomes by kind; the latency from acceptance lands in the buckets, cumulatively.
commands_test_() ->
    with_table(fun() ->
        ok = stellar_metrics:command_accepted(<<"c1">>, noop),
        ok = stellar_metrics:command_accepted(<<"c1">>, noop),  % again (resent): timed once
        ok = stellar_metrics:command_accepted(<<"c2">>, reboot),
        timer:sleep(30),
        ok = stellar_metrics:command_outcome(<<"c1">>, done),
        ok = stellar_metrics:command_outcome(<<"c2">>, {failed, busy}),
        ok = stellar_metrics:command_outcome(<<"c3">>, done),  % its start not seen here
        #{commands := Commands, command_latency := Latency} = stellar_metrics:collect(),
        ?assertEqual([#{kind => noop, outcome => done, count => 1},
                      #{kind => reboot, outcome => failed, count => 1},
                      #{kind => unknown, outcome => done, count => 1}], Commands),
        [#{kind := noop, histogram := #{buckets := Buckets, count := 1, sum_s := Sum}}, #{kind := reboot}] = Latency,
        ?assert(Sum >= 0.03),
        ?assertEqual(length(stellar_metrics:buckets_s()), length(Buckets)),
        [{Le005, N005} | _] = Buckets,
        ?assertEqual({0.005, 0}, {Le005, N005}),   % 30 ms is above 5 ms
        ?assertEqual({60.0, 1}, lists:last(Buckets))
    end).

orbital_test_() ->
    with_table(fun() ->
        Ms = erlang:convert_time_unit(1, millisecond, native),
        ok = stellar_metrics:orbital_call(propagate, 20 * Ms, {ok, []}),
        ok = stellar_metrics:orbital_call(propagate, 2000 * Ms, {error, timeout}),
        #{orbital_calls := Calls, orbital_latency := [#{op := propagate, histogram := H}]} = stellar_metrics:collect(),
        ?assertEqual([#{op => propagate, result => error, count => 1},
                      #{op => propagate, result => ok, count => 1}], Calls),
        #{buckets := Buckets, count := 2, sum_s := Sum} = H,
        ?assert(abs(Sum - 2.02) < 1.0e-6),
        ?assertEqual(1, proplists:get_value(0.025, Buckets)),
        ?assertEqual(2, proplists:get_value(2.5, Buckets))
    end).

%% The VM figures are there; the busiest queue is found and named (bounded: a registered name or
%% a module, never a pid).
vm_test_() ->
    with_table(fun() ->
        Busy = spawn(fun() -> receive stop -> ok end end),
        true = register(stellar_metrics_busy_test, Busy),
        [Busy ! {junk, I} || I <- lists:seq(1, 1000)],
        #{vm := Vm, top_queues := [Top | _] = Tops, dist := Dist, py_nodes := []} = stellar_metrics:collect(),
        Busy ! stop,
        ?assertMatch(#{processes := P, run_queue := R, memory_bytes := #{total := T, ets := _}}
                       when P > 0 andalso R >= 0 andalso T > 0, Vm),
        ?assertMatch(#{rank := 1, process := <<"stellar_metrics_busy_test">>, messages := N} when N >= 1000, Top),
        ?assert(length(Tops) =< 5),
        ?assertMatch(#{visible := _, hidden := _}, Dist)
    end).

%% Without its table (the supervisor restarting) nothing raises in the caller.
no_table_test() ->
    ?assertEqual(ok, stellar_metrics:command_accepted(<<"c">>, noop)),
    ?assertEqual(ok, stellar_metrics:command_outcome(<<"c">>, done)),
    ?assertMatch(#{commands := []}, stellar_metrics:collect()).
