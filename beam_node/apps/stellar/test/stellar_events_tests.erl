%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_events_tests).
-include_lib("eunit/include/eunit.hrl").

filter_test_() ->
    M = fun stellar_events:matches/4,
    [
        ?_assert(M(all, telemetry, <<"a">>, #{})),
        ?_assert(M(#{}, alarm, <<"a">>, #{})),
        ?_assert(M(#{types => [alarm, state]}, alarm, <<"a">>, #{})),
        ?_assertNot(M(#{types => [alarm]}, telemetry, <<"a">>, #{})),
        ?_assert(M(#{sat_ids => [<<"a">>]}, telemetry, <<"a">>, #{})),
        ?_assertNot(M(#{sat_ids => [<<"a">>]}, node, undefined, #{})),
        ?_assertNot(M(#{types => [telemetry], sat_ids => [<<"b">>]}, telemetry, <<"a">>, #{}))
    ].

bus_test_() ->
    {setup,
     fun() ->
         Owner = table_owner(),
         ok = application:set_env(stellar, event_buffer, 5),
         {ok, Pid} = stellar_events:start_link(),
         unlink(Pid),
         {Owner, Pid}
     end,
     fun({Owner, Pid}) ->
         exit(Pid, shutdown),
         Owner ! stop,
         application:unset_env(stellar, event_buffer)
     end,
     %% Above wait/1's bound, so that a condition that never holds fails with its own error.
     fun(_) -> [{timeout, 60, T} || T <- [fun publish_subscribe_replay/0, fun batches_replayed/0,
                                          fun bad_filter/0, fun dead_subscriber_dropped/0]] end}.

publish_subscribe_replay() ->
    Self = self(),
    ok = stellar_events:subscribe(Self, #{types => [alarm]}),
    Last = stellar_events:last_id(),
    ok = stellar_events:publish(telemetry, <<"a">>, #{n => 1}),
    ok = stellar_events:publish(alarm, <<"a">>, #{n => 2}),
    Id2 = Last + 2,
    receive
        {stellar_event, Id, Type, SatId, Data, At} ->
            ?assertEqual({Id2, alarm, <<"a">>, #{n => 2}}, {Id, Type, SatId, Data}),
            ?assert(is_integer(At))
    after 10000 -> error(no_event)
    end,
    ?assertMatch({ok, [{stellar_event, Id2, alarm, _, _, _}]}, stellar_events:since(Last + 1)),
    ?assertEqual({ok, []}, stellar_events:since(Id2)),
    %% The buffer keeps the last 5 events.
    [ok = stellar_events:publish(node, undefined, #{n => N}) || N <- lists:seq(1, 10)],
    Last2 = Id2 + 10,
    wait(fun() -> stellar_events:last_id() =:= Last2 end),
    {truncated, Events} = stellar_events:since(Last),
    ?assertEqual(lists:seq(Last2 - 4, Last2), [element(2, E) || E <- Events]),
    ?assertEqual({ok, []}, stellar_events:since(Last2)),
    ok = stellar_events:unsubscribe(Self).

%% A batch takes consecutive ids, reaches a subscriber event by event, and leaves the buffer
%% (5 events here) only when none of its events is among the last 5.
batches_replayed() ->
    Self = self(),
    ok = stellar_events:subscribe(Self, #{types => [telemetry]}),
    Last = stellar_events:last_id(),
    ok = stellar_events:publish_many(telemetry, [{<<"a">>, #{n => 1}}, {<<"b">>, bad}, {<<"c">>, #{n => 3}}]),
    ok = stellar_events:publish_many(telemetry, []),
    ok = stellar_events:publish(alarm, <<"x">>, #{n => 4}),
    wait(fun() -> stellar_events:last_id() =:= Last + 3 end),
    ?assertEqual([{Last + 1, <<"a">>, #{n => 1}}, {Last + 2, <<"c">>, #{n => 3}}],
                 [receive {stellar_event, Id, telemetry, SatId, Data, _} -> {Id, SatId, Data}
                  after 10000 -> error(no_event) end || _ <- [1, 2]]),
    {ok, Replayed} = stellar_events:since(Last + 1),
    ?assertEqual([{Last + 2, telemetry, <<"c">>}, {Last + 3, alarm, <<"x">>}],
                 [{Id, Type, SatId} || {stellar_event, Id, Type, SatId, _, _} <- Replayed]),
    %% Three more: one of the first batch's events (Last + 2) is among the last five, it stays.
    ok = stellar_events:publish_many(node, [{undefined, #{n => N}} || N <- [5, 6, 7]]),
    wait(fun() -> stellar_events:last_id() =:= Last + 6 end),
    {ok, Kept} = stellar_events:since(Last),
    ?assertEqual(lists:seq(Last + 1, Last + 6), [element(2, E) || E <- Kept]),
    %% One more: none of its events is, it leaves whole.
    ok = stellar_events:publish(node, undefined, #{n => 8}),
    wait(fun() -> stellar_events:last_id() =:= Last + 7 end),
    {truncated, Left} = stellar_events:since(Last),
    ?assertEqual(lists:seq(Last + 3, Last + 7), [element(2, E) || E <- Left]),
    ok = stellar_events:unsubscribe(Self).

bad_filter() ->
    ?assertEqual({error, {bad_filter, #{kinds => []}}}, stellar_events:subscribe(self(), #{kinds => []})),
    ?assertEqual({error, {bad_filter, some}}, stellar_events:subscribe(self(), some)),
    ?assertEqual({error, {bad_pid, x}}, stellar_events:subscribe(x, all)).

dead_subscriber_dropped() ->
    Sub = spawn(fun() -> receive _ -> ok end end),
    ok = stellar_events:subscribe(Sub, all),
    ?assert(maps:is_key(Sub, subscribers())),
    exit(Sub, kill),
    %% The bus learns of the death through its monitor, asynchronously: wait for that.
    wait(fun() -> not maps:is_key(Sub, subscribers()) end),
    ok = stellar_events:publish(alarm, <<"x">>, #{}),
    ?assertNot(maps:is_key(Sub, subscribers())).

subscribers() ->
    {state, _, _, Subs} = sys:get_state(stellar_events),
    Subs.

%% A process that creates the table and says so (the table lives as long as it does).
table_owner() ->
    Self = self(),
    Owner = spawn(fun() -> ok = stellar_events:new_table(), Self ! {table, self()},
                           receive stop -> ok end end),
    receive {table, Owner} -> Owner after 10000 -> error(no_table) end.

%% Polls Fun until it holds; fails after a long bound (a loaded machine is slow, not broken).
wait(Fun) -> wait(Fun, 1000).

wait(_Fun, 0) -> error(condition_never_held);
wait(Fun, N) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(10), wait(Fun, N - 1)
    end.
