%% Driver of bench/dist_bench.py: for each round and each target node, measures one-way
%% throughput to `{sink, Node}` and gen_server:call latency to `{echo, Node}`, prints one
%% `BENCH {json}` line per measurement (`BENCH_ERROR ...` on failure) and halts.
-module(dist_bench).

-export([main/1]).

-define(PAYLOAD, <<"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef">>).
-define(WARMUP_CALLS, 200).
-define(TIMEOUT_MS, 120000).

-spec main([term()]) -> no_return().
main([Targets, Messages, Calls, Rounds]) ->
    Status =
        try
            lists:foreach(fun connect/1, Targets),
            io:format("BENCH_INFO {\"otp\":\"~s\"}~n", [erlang:system_info(otp_release)]),
            [measure(R, T, Messages, Calls) || R <- lists:seq(1, Rounds), T <- Targets],
            0
        catch
            Class:Reason:Stack ->
                io:format("BENCH_ERROR ~p~n", [{Class, Reason, Stack}]),
                1
        end,
    erlang:halt(Status).

%% The target nodes may still be starting: retry for up to 20 s. A node answers pings before
%% its `echo` and `sink` are registered (a message to a missing name vanishes), so wait until
%% `echo` answers; `sink` is registered before it (in the Python role, in the same step).
connect(Node) -> connect(Node, 200).

connect(Node, 0) -> error({not_ready, Node});
connect(Node, Tries) ->
    case net_adm:ping(Node) =:= pong andalso echo_ready(Node) of
        true -> ok;
        false -> timer:sleep(100), connect(Node, Tries - 1)
    end.

echo_ready(Node) ->
    try gen_server:call({echo, Node}, ready, 1000) of
        ready -> true
    catch
        exit:_ -> false  % noproc until registered; a late reply is dropped (alias)
    end.

measure(Round, Node, Messages, Calls) ->
    Rate = one_way(Node, Messages),
    {P50, P99} = call_latency(Node, Calls),
    io:format("BENCH {\"round\":~w,\"node\":\"~s\",\"msgs_per_s\":~w,\"p50_us\":~w,\"p99_us\":~w}~n",
              [Round, Node, round(Rate), P50, P99]).

%% Messages per second from the first send until `{count, N}` comes back.
one_way(Node, N) ->
    Sink = {sink, Node},
    _ = done(Sink),  % reset any stale count
    T0 = erlang:monotonic_time(),
    send_seq(Sink, 1, N),
    case done(Sink) of
        N -> N / seconds(erlang:monotonic_time() - T0);
        Count -> error({wrong_count, Node, Count, expected, N})
    end.

send_seq(_Sink, I, N) when I > N -> ok;
send_seq(Sink, I, N) ->
    Sink ! {seq, I, ?PAYLOAD},
    send_seq(Sink, I + 1, N).

done(Sink) ->
    Sink ! {done, self()},
    receive {count, Count} -> Count
    after ?TIMEOUT_MS -> error({timeout, Sink})
    end.

%% p50 and p99 (nearest rank) in microseconds of N sequential calls, after a warm-up.
call_latency(Node, N) ->
    Echo = {echo, Node},
    _ = [call(Echo, I) || I <- lists:seq(1, ?WARMUP_CALLS)],
    Sorted = lists:sort([call(Echo, I) || I <- lists:seq(1, N)]),
    {percentile_us(Sorted, N, 50), percentile_us(Sorted, N, 99)}.

call(Echo, I) ->
    Request = {ping, I, ?PAYLOAD},
    T0 = erlang:monotonic_time(),
    Request = gen_server:call(Echo, Request, ?TIMEOUT_MS),  % the echo must return the request
    erlang:monotonic_time() - T0.

percentile_us(Sorted, N, P) ->
    Native = lists:nth(max(1, (P * N + 99) div 100), Sorted),
    round(erlang:convert_time_unit(Native, native, nanosecond) / 100) / 10.

seconds(Native) -> erlang:convert_time_unit(Native, native, nanosecond) / 1.0e9.
