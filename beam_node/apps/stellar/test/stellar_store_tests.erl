%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% stellar_store's telemetry buffer against a stand-in store process (registered `store' on
%% this node, listed as the store node in stellar_py_node's table): the buffer's bound (dropped
%% rows counted and logged, never reset), batching, rows kept until the store confirms them,
%% sent again after a refusal or to the next store node, and commands refused without a store.
-module(stellar_store_tests).

-include_lib("eunit/include/eunit.hrl").

-export([log/2]).  % a logger handler: forwards stellar_store's warnings to the test

-define(WAIT_MS, 30000).

store_test_() ->
    %% Each case sets up in its own process: the stand-in store and the log handler answer to it.
    [{Title, {timeout, 120, fun() -> with_store(Case) end}}
     || {Title, Case} <- [
         {"buffer bound: dropped rows counted, logged, and the count is never reset",
          fun buffer_bound/0},
         {"batches of at most 1000 rows, kept until acknowledged", fun batches_kept_until_ack/0},
         {"a tick pass is buffered packed, 1000 rows an object; beyond the bound it is cut",
          fun tick_pass_packed/0},
         {"rows that came packed (sat_ticks) are buffered as they are, 1000 an object, cut at the bound",
          fun rows_kept_packed/0},
         {"at most telemetry_window batches unconfirmed; an ack lets the next go",
          fun window_bounds_unconfirmed/0},
         {"a refused batch (nack) is sent again, after a pause", fun nack_resends/0},
         {"store node death: unconfirmed batches go to the next store node",
          fun store_death_resends/0},
         {"no store node: commands and satellite creation are refused, nothing acknowledged",
          fun refused_without_store/0},
         {"checkpoints: changed entries every period, entries only ticked once a checkpoint_ticks_ms",
          fun checkpoint_shares/0}]].

%% The buffer's table has no decentralized counters, with which a size read suspended the
%% caller until thread progress (0.1-7 s each on a loaded host: the shadows, then every
%% rebalancing move, stalled behind their ticks); its rows are counted in one counter.
telemetry_size_is_one_counter_test() ->
    Test = self(),
    Owner = spawn(fun() -> ok = stellar_store:new_table(), Test ! made, receive stop -> ok end end),
    receive made -> ok end,
    try
        ?assertEqual(false, ets:info(stellar_store_telemetry, decentralized_counters)),
        ?assertEqual(0, ets:info(stellar_store_telemetry, size)),
        ?assertEqual([{buffered, 0}], ets:lookup(stellar_store_counters, buffered))
    after
        Owner ! stop,
        wait_gone(stellar_store_telemetry)
    end.

wait_gone(Tab) ->
    case ets:whereis(Tab) of
        undefined -> ok;
        _ -> timer:sleep(10), wait_gone(Tab)
    end.

with_store(Case) ->
    Setup = setup(),
    try Case() after cleanup(Setup) end.

setup() ->
    flush_mailbox(),  % what an earlier case left behind
    Test = self(),
    Owner = spawn(fun() ->
        ok = stellar_store:new_table(),
        stellar_catalog = ets:new(stellar_catalog, [named_table, public, set]),
        stellar_py_nodes = ets:new(stellar_py_nodes, [named_table, public, set]),
        Test ! {tables, self()},
        receive stop -> ok end
    end),
    receive {tables, Owner} -> ok after ?WAIT_MS -> error(no_tables) end,
    ok = application:set_env(stellar, py_nodes, [#{role => store, count => 1}]),
    ok = application:set_env(stellar, telemetry_flush_ms, 20),
    ok = application:set_env(stellar, checkpoint_ms, 3600000),
    ok = application:set_env(stellar, telemetry_buffer, 200000),
    ok = logger:add_handler(store_test_log, ?MODULE, #{config => #{pid => Test}, level => warning}),
    Fake = start_fake_store(),
    store_up(),
    {ok, Server} = stellar_store:start_link(),
    unlink(Server),
    {Owner, Server, Fake}.

cleanup({Owner, Server, Fake}) ->
    _ = logger:remove_handler(store_test_log),
    Ref = monitor(process, Server),
    exit(Server, kill),
    receive {'DOWN', Ref, process, Server, _} -> ok end,
    [kill_and_wait(P) || P <- [Fake, whereis(store)], is_pid(P)],
    Owner ! stop,
    [application:unset_env(stellar, K) || K <- [py_nodes, telemetry_flush_ms, checkpoint_ms,
                                                  checkpoint_ticks_ms, telemetry_buffer,
                                                  telemetry_window]],
    ok.

%% The stand-in store: answers the restore calls, passes telemetry batches to the test.
start_fake_store() ->
    Test = self(),
    Pid = spawn(fun() -> true = register(store, self()), Test ! {store_ready, self()}, fake_store(Test) end),
    receive {store_ready, Pid} -> Pid after ?WAIT_MS -> error(no_fake_store) end.

fake_store(Test) ->
    receive
        {'$gen_call', From, Request} ->
            gen_server:reply(From, case Request of
                                       satellites -> {ok, []};
                                       pending_commands -> {ok, []};
                                       _ -> {error, store_unavailable}
                                   end);
        {'$gen_cast', {telemetry, From, Id, Rows}} ->
            Test ! {batch, self(), From, Id, stellar_proto_v1:telemetry_rows_list(Rows)};
        {'$gen_cast', {checkpoint, Rows}} ->
            Test ! {checkpoint_rows, [Id || #{id := Id} <- Rows]};
        {'$gen_cast', _} ->
            ok
    end,
    fake_store(Test).

kill_and_wait(Pid) ->
    Ref = monitor(process, Pid),
    exit(Pid, kill),
    receive {'DOWN', Ref, process, Pid, _} -> ok end.

flush_mailbox() ->
    receive _ -> flush_mailbox() after 0 -> ok end.

%% Rows added while no store is up, so that they go in one flush when it is back.
add_while_down(From, To) ->
    store_down(),
    wait_until(fun() -> maps:get(store, stellar_store:status()) =:= undefined end),
    ok = add(From, To),
    store_up().

store_up() ->
    true = ets:insert(stellar_py_nodes, {node(), store, up, 0, 1}).

store_down() ->
    true = ets:insert(stellar_py_nodes, {node(), store, down, 1, undefined}).

log(#{level := Level, msg := Msg}, #{config := #{pid := Pid}}) ->
    Text = case Msg of
        {report, R} -> io_lib:format("~0p", [R]);
        {string, S} -> S;
        {Format, Args} -> io_lib:format(Format, Args)
    end,
    Pid ! {log, Level, unicode:characters_to_binary(Text)},
    ok.

sample(I) ->
    #{mode => nominal, energy_pct => 50.0, memory_used_mb => 0.0, updated_at => I,
      lat_deg => undefined, lon_deg => undefined, alt_km => undefined, in_sunlight => true}.

add(From, To) ->
    [ok = stellar_store:telemetry(<<"sat-1">>, sample(I)) || I <- lists:seq(From, To)],
    ok.

next_batch() ->
    receive {batch, _Store, From, Id, Rows} -> {From, Id, Rows}
    after ?WAIT_MS -> error(no_batch)
    end.

telemetry() ->
    maps:get(telemetry, stellar_store:status()).

wait_until(Fun) ->
    wait_until(Fun, erlang:monotonic_time(millisecond) + ?WAIT_MS).

wait_until(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        false ->
            erlang:monotonic_time(millisecond) < Deadline orelse error(timeout),
            receive after 10 -> wait_until(Fun, Deadline) end
    end.

times(Rows) ->
    [T || {<<"sat-1">>, #{updated_at := T}} <- Rows].

%% Cases.

buffer_bound() ->
    ok = application:set_env(stellar, telemetry_buffer, 10),
    store_down(),  % nothing is sent: the buffer fills as when the store is away
    wait_until(fun() -> maps:get(store, stellar_store:status()) =:= undefined end),
    ok = add(1, 15),
    ?assertMatch(#{buffered := 10, dropped := #{buffer_full := 5, rejected := 0}}, telemetry()),
    ?assertEqual(5, maps:get(overflow, stellar_store:status())),
    Logged = receive_log(<<"telemetry buffer full">>),
    %% The first warning goes out on the next flush tick, which may fall between two of the
    %% adds above: it reports the rows dropped so far (1..5), as many since the last warning
    %% as in total.
    {match, [Since, Total]} = re:run(Logged, "(\\d+) sample\\(s\\) dropped since the last warning, (\\d+) in total",
                                     [{capture, all_but_first, binary}]),
    ?assertEqual(Since, Total),
    ?assert(lists:member(binary_to_integer(Total), lists:seq(1, 5))),
    %% Logging does not reset the count (it is what /metrics reports).
    ok = add(16, 17),
    ?assertMatch(#{dropped := #{buffer_full := 7}}, telemetry()),
    %% The store is back: the 10 kept rows go, oldest first.
    store_up(),
    {From, Id, Rows} = next_batch(),
    ?assertEqual(lists:seq(1, 10), times(Rows)),
    From ! {telemetry_ack, Id, 10, 0},
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 0 end),
    ?assertMatch(#{rows := 10, dropped := #{buffer_full := 7}}, telemetry()).

batches_kept_until_ack() ->
    add_while_down(1, 2500),
    Batches = [next_batch() || _ <- lists:seq(1, 3)],
    ?assertEqual([1000, 1000, 500], [length(R) || {_, _, R} <- Batches]),
    ?assertEqual(lists:seq(1, 2500), lists:append([times(R) || {_, _, R} <- Batches])),
    %% Sent, not confirmed: still buffered.
    ?assertMatch(#{buffered := 2500, unconfirmed_batches := 3, rows := 0}, telemetry()),
    [{From, Id2, _}] = [B || B = {_, Id, _} <- Batches, Id =:= element(2, lists:nth(2, Batches))],
    From ! {telemetry_ack, Id2, 1000, 0},
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 1500 end),
    [From ! {telemetry_ack, Id, 999, 1} || {_, Id, _} <- [hd(Batches)]],
    {_, Id3, _} = lists:nth(3, Batches),
    From ! {telemetry_ack, Id3, 500, 0},
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 0 end),
    ?assertMatch(#{rows := 2499, unconfirmed_batches := 0, dropped := #{rejected := 1}}, telemetry()),
    _ = receive_log(<<"refused 1 sample(s)">>),
    %% Nothing is sent twice when everything was confirmed.
    receive {batch, _, _, _, Extra} -> error({sent_again, length(Extra)}) after 200 -> ok end.

tick_pass_packed() ->
    ok = application:set_env(stellar, telemetry_buffer, 2200),
    store_down(),
    wait_until(fun() -> maps:get(store, stellar_store:status()) =:= undefined end),
    ok = stellar_store:telemetry_many([{<<"sat-1">>, sample(I)} || I <- lists:seq(1, 2500)]),
    %% Three objects (1000, 1000 and the 200 within the bound), not a row each.
    ?assertEqual(3, ets:info(stellar_store_telemetry, size)),
    ?assertMatch(#{buffered := 2200, dropped := #{buffer_full := 300}}, telemetry()),
    ok = stellar_store:telemetry_many([{<<"sat-1">>, sample(2501)}]),  % full: dropped
    ?assertMatch(#{buffered := 2200, dropped := #{buffer_full := 301}}, telemetry()),
    store_up(),
    Batches = [next_batch() || _ <- lists:seq(1, 3)],
    ?assertEqual([1000, 1000, 200], [length(R) || {_, _, R} <- Batches]),
    ?assertEqual(lists:seq(1, 2200), lists:append([times(R) || {_, _, R} <- Batches])),
    [From ! {telemetry_ack, Id, length(R), 0} || {From, Id, R} <- Batches],
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 0 end),
    ?assertEqual(0, ets:info(stellar_store_telemetry, size)),
    ?assertMatch(#{rows := 2200}, telemetry()).

rows_kept_packed() ->
    ok = application:set_env(stellar, telemetry_buffer, 2200),
    store_down(),
    wait_until(fun() -> maps:get(store, stellar_store:status()) =:= undefined end),
    Rows = [{<<"sat-", (integer_to_binary(I))/binary>>, sample(I)} || I <- lists:seq(1, 2500)],
    {telemetry_rows, 1, 2500, Ids, Records} = stellar_proto_v1:telemetry_rows(Rows),
    ok = stellar_store:telemetry_packed(2500, Ids, Records),
    ?assertEqual(3, ets:info(stellar_store_telemetry, size)),
    ?assertMatch(#{buffered := 2200, dropped := #{buffer_full := 300}}, telemetry()),
    ok = stellar_store:telemetry_packed(0, <<>>, <<>>),
    ?assertMatch(#{buffered := 2200, dropped := #{buffer_full := 300}}, telemetry()),
    store_up(),
    Batches = [next_batch() || _ <- lists:seq(1, 3)],
    ?assertEqual([1000, 1000, 200], [length(R) || {_, _, R} <- Batches]),
    ?assertEqual(lists:sublist(Rows, 2200), lists:append([R || {_, _, R} <- Batches])),
    [From ! {telemetry_ack, Id, length(R), 0} || {From, Id, R} <- Batches],
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 0 end),
    ?assertMatch(#{rows := 2200}, telemetry()).

window_bounds_unconfirmed() ->
    ok = application:set_env(stellar, telemetry_window, 2),
    add_while_down(1, 4500),
    [{From, Id1, R1}, {From, Id2, R2}] = [next_batch() || _ <- lists:seq(1, 2)],
    %% Two unconfirmed: the third waits, however many flush periods go by.
    receive {batch, _, _, _, Early} -> error({past_the_window, length(Early)}) after 300 -> ok end,
    ?assertMatch(#{buffered := 4500, unconfirmed_batches := 2}, telemetry()),
    From ! {telemetry_ack, Id1, length(R1), 0},
    {From, Id3, R3} = next_batch(),
    receive {batch, _, _, _, Early2} -> error({past_the_window, length(Early2)}) after 300 -> ok end,
    From ! {telemetry_ack, Id2, length(R2), 0},
    From ! {telemetry_ack, Id3, length(R3), 0},
    Rest = [next_batch() || _ <- lists:seq(1, 2)],
    ?assertEqual([1000, 1000, 1000, 1000, 500], [length(R) || R <- [R1, R2, R3 | [R || {_, _, R} <- Rest]]]),
    ?assertEqual(lists:seq(1, 4500), lists:append([times(R) || R <- [R1, R2, R3 | [R || {_, _, R} <- Rest]]])),
    [From ! {telemetry_ack, Id, length(R), 0} || {_, Id, R} <- Rest],
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 0 end),
    ?assertMatch(#{rows := 4500, unconfirmed_batches := 0}, telemetry()).

nack_resends() ->
    add_while_down(1, 3),
    {From, Id, Rows} = next_batch(),
    ?assertEqual([1, 2, 3], times(Rows)),
    NackedAt = erlang:monotonic_time(millisecond),
    From ! {telemetry_nack, Id},
    {From, Id2, Rows2} = next_batch(),
    %% Not at once: a store whose buffer is full gets a pause (2 s), not a flood every tick.
    ?assert(erlang:monotonic_time(millisecond) - NackedAt >= 2000),
    ?assertNotEqual(Id, Id2),
    ?assertEqual([1, 2, 3], times(Rows2)),
    From ! {telemetry_ack, Id, 3, 0},  % a stale answer for the refused batch changes nothing
    From ! {telemetry_ack, Id2, 3, 0},
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 0 end),
    ?assertMatch(#{rows := 3}, telemetry()).

store_death_resends() ->
    add_while_down(1, 4),
    {_From, _Id, Rows} = next_batch(),
    ?assertEqual([1, 2, 3, 4], times(Rows)),
    Restores = maps:get(restores, stellar_store:status()),
    %% The store node dies before confirming: its process is gone, the node is down, then up.
    kill_and_wait(whereis(store)),
    store_down(),
    wait_until(fun() -> maps:get(store, stellar_store:status()) =:= undefined end),
    ok = add(5, 6),
    _ = start_fake_store(),
    store_up(),
    {From2, Id2, Rows2} = next_batch(),
    ?assertEqual([1, 2, 3, 4, 5, 6], times(Rows2)),  % nothing lost across the store's death
    From2 ! {telemetry_ack, Id2, 6, 0},
    wait_until(fun() -> maps:get(buffered, telemetry()) =:= 0 end),
    ?assertMatch(#{rows := 6, dropped := #{buffer_full := 0}}, telemetry()),
    ?assertEqual(Restores + 1, maps:get(restores, stellar_store:status())).

refused_without_store() ->
    store_down(),
    State = #{id => <<"sat-9">>},
    ?assertEqual({error, store_unavailable}, stellar_store:create(State)),
    ?assertMatch({error, store_unavailable}, stellar_store:submit(<<"sat-9">>, noop, #{}, undefined)).

%% 40 satellites only ticked (updated_at moves, changed_at does not), one a command keeps
%% changing, one unchanged since before the rounds, one another node owns, one changed by a
%% command whose outcome carried its state to the store (persisted_at): a round each 300 ms
%% writes the changed one and a quarter of the ticked ones (checkpoint_ticks_ms 1200).
checkpoint_shares() ->
    ok = application:set_env(stellar, checkpoint_ticks_ms, 1200),
    Ticked = [<<"tick-", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 40)],
    Entry = fun(Id, Owner) -> #{id => Id, owner => Owner, node => undefined, status => running,
                                state => #{id => Id}, updated_at => 1, changed_at => 1} end,
    %% Rounds every 300 ms from now; the first round after setup (which writes everything) is
    %% over when a probe entry changed now has been written.
    ok = application:set_env(stellar, checkpoint_ms, 300),
    Probe = Entry(<<"probe">>, node()),
    true = ets:insert(stellar_catalog, {<<"probe">>, Probe#{changed_at => erlang:system_time(millisecond)}, none, 0}),
    receive {checkpoint_rows, [<<"probe">>]} -> ok after ?WAIT_MS -> error(no_first_round) end,
    Now = erlang:system_time(millisecond),  % changed by a command whose outcome carried its state
    Outcome = (Entry(<<"outcome-1">>, node()))#{changed_at => Now, persisted_at => Now},
    true = ets:insert(stellar_catalog, [{Id, Entry(Id, node()), none, 0} || Id <- [<<"cmd-1">>, <<"idle-1">> | Ticked]]
                                       ++ [{<<"other-1">>, Entry(<<"other-1">>, 'other@nowhere'), none, 0},
                                           {<<"outcome-1">>, Outcome, none, 0}]),
    Ticker = spawn_link(fun() -> tick_entries([<<"other-1">> | Ticked], <<"cmd-1">>) end),
    Counts = count_checkpoints(#{}),
    unlink(Ticker),
    kill_and_wait(Ticker),
    TickCounts = [maps:get(Id, Counts, 0) || Id <- Ticked],
    %% 9 rounds: each share two or three times (a round's last slice may still be on its way).
    ?assertEqual([], [{Id, N} || {Id, N} <- lists:zip(Ticked, TickCounts), N < 1 orelse N > 4]),
    ?assert(lists:sum(TickCounts) < 40 * 9 div 2),
    ?assertEqual(0, maps:get(<<"idle-1">>, Counts, 0)),
    ?assertEqual(0, maps:get(<<"outcome-1">>, Counts, 0)),
    ?assertEqual(0, maps:get(<<"other-1">>, Counts, 0)).

%% Until the changed satellite was written in 9 rounds.
count_checkpoints(Counts) ->
    case maps:get(<<"cmd-1">>, Counts, 0) >= 9 of
        true -> Counts;
        false ->
            receive {checkpoint_rows, Ids} ->
                count_checkpoints(lists:foldl(fun(Id, C) -> C#{Id => maps:get(Id, C, 0) + 1} end, Counts, Ids))
            after ?WAIT_MS -> error({checkpoints_stopped, Counts})
            end
    end.

%% As ticks (stellar_catalog:put_ticks/1: the tick slot) and a command (a write: updated_at
%% and changed_at) would.
tick_entries(Ids, Changed) ->
    Now = erlang:system_time(millisecond),
    [true = ets:update_element(stellar_catalog, Id, [{3, #{updated_at => Now}}, {4, Now}]) || Id <- Ids],
    [{_, C, _, _}] = ets:lookup(stellar_catalog, Changed),
    true = ets:insert(stellar_catalog, {Changed, C#{updated_at => Now, changed_at => Now}, none, 0}),
    receive after 50 -> tick_entries(Ids, Changed) end.

receive_log(Needle) ->
    receive
        {log, _Level, Text} ->
            case binary:match(Text, Needle) of
                nomatch -> receive_log(Needle);
                _ -> Text
            end
    after ?WAIT_MS -> error({not_logged, Needle})
    end.
