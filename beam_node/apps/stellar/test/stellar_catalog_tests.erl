%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_catalog_tests).
-include_lib("eunit/include/eunit.hrl").

least_loaded_test_() ->
    C = fun stellar_catalog:choose/1,
    [
        ?_assertEqual(none, C([])),
        ?_assertEqual({ok, b}, C([{a, 3, true}, {b, 2, false}])),
        %% A tie goes to a node of this BEAM node, then to the smallest name.
        ?_assertEqual({ok, b}, C([{a, 2, false}, {b, 2, true}])),
        ?_assertEqual({ok, a}, C([{b, 0, true}, {a, 0, true}]))
    ].

spreads_evenly_test() ->
    %% Choosing and counting each placement alternates over equal nodes.
    Place = fun(_, Counts) ->
        {ok, N} = stellar_catalog:choose([{Node, Count, true} || {Node, Count} <- maps:to_list(Counts)]),
        maps:update_with(N, fun(X) -> X + 1 end, Counts)
    end,
    ?assertEqual(#{s1 => 5, s2 => 5}, lists:foldl(Place, #{s1 => 0, s2 => 0}, lists:seq(1, 10))),
    ?assertEqual(#{s1 => 4, s2 => 3, s3 => 3},
                 lists:foldl(Place, #{s1 => 0, s2 => 0, s3 => 0}, lists:seq(1, 10))).

assignee_test() ->
    Ids = [integer_to_binary(I) || I <- lists:seq(1, 1000)],
    Alive = ['b@h', 'a@h'],
    %% Deterministic whatever the order of the list, and spread over the survivors.
    ?assertEqual([stellar_catalog:assignee(Id, Alive) || Id <- Ids],
                 [stellar_catalog:assignee(Id, lists:reverse(Alive)) || Id <- Ids]),
    ForA = length([x || Id <- Ids, stellar_catalog:assignee(Id, Alive) =:= 'a@h']),
    ?assert(ForA > 400 andalso ForA < 600),
    ?assertEqual('a@h', stellar_catalog:assignee(<<"x">>, ['a@h'])).

without_app_test() ->
    ?assertEqual([], stellar_catalog:entries()),
    ?assertEqual(error, stellar_catalog:lookup(<<"x">>)),
    ?assertEqual(0, stellar_catalog:satellite_count(py, 'a@b')).

%% Rebalancing: even shares over the nodes that can run actors (the extra ones to those that
%% hold the most, so fewer move); a node that cannot run actors gets none.
shares_test_() ->
    S = fun stellar_catalog:shares/2,
    [?_assertEqual(#{a => 4, b => 3, c => 3}, S(#{a => 10, b => 0, c => 0}, [a, b, c])),
     ?_assertEqual(#{a => 3, b => 3, c => 4}, S(#{a => 0, b => 0, c => 10}, [a, b, c])),
     ?_assertEqual(#{a => 5, b => 5, g => 0}, S(#{a => 2, b => 0, g => 8}, [a, b])),
     ?_assertEqual(#{a => 0, b => 0}, S(#{a => 3, b => 4}, [])),
     ?_assertEqual(#{a => 0, b => 0}, S(#{a => 0, b => 0}, [a, b]))].

%% The issue's case (a node back after a kill: 968 vs 9,032): the big node gives the small
%% one and the returning one their share; within 2 % of a share nothing moves.
transfers_test_() ->
    T = fun stellar_catalog:transfers/2,
    [?_assertEqual([{b, c, 3333}, {b, a, 2365}], lists:sort(fun({_, X, _}, {_, Y, _}) -> X >= Y end,
                                                          T(#{a => 968, b => 9032, c => 0}, [a, b, c]))),
     ?_assertEqual([{a, b, 5}], T(#{a => 10, b => 0}, [a, b])),
     ?_assertEqual([], T(#{a => 1010, b => 990}, [a, b])),          % 1 %: left as is
     ?_assertEqual([{a, b, 25}], T(#{a => 1025, b => 975}, [a, b])),  % 2.5 %: evened
     ?_assertEqual([{g, a, 3}, {g, b, 3}], T(#{a => 0, b => 0, g => 6}, [a, b])),  % g runs no actor
     ?_assertEqual([], T(#{a => 5}, [a])),
     ?_assertEqual([], T(#{}, []))].

%% Every node computes the same transfers and makes only its own rows, at most Max moves,
%% each id once, to the node that is its assignee first.
plan_test() ->
    Ids = [integer_to_binary(I) || I <- lists:seq(1, 3000)],
    Counts = #{a => 0, b => 3000, c => 0},
    ?assertEqual([], stellar_catalog:plan(Counts, [a, b, c], a, [], 200)),
    Moves = stellar_catalog:plan(Counts, [a, b, c], b, Ids, 200),
    ?assertEqual(200, length(Moves)),
    ?assertEqual(200, length(lists:usort([Id || {Id, _} <- Moves]))),
    ?assert(lists:all(fun({Id, _}) -> lists:member(Id, Ids) end, Moves)),
    %% The first destination in name order takes the batch; its assignees first.
    ?assertEqual([a], lists:usort([To || {_, To} <- Moves])),
    ?assert(lists:all(fun({Id, To}) -> stellar_catalog:assignee(Id, [a, b, c]) =:= To end, Moves)),
    %% Unbounded, the whole surplus moves: exactly the shares.
    All = stellar_catalog:plan(Counts, [a, b, c], b, Ids, 100000),
    ?assertEqual(#{a => 1000, c => 1000},
                 lists:foldl(fun({_, To}, Acc) -> maps:update_with(To, fun(X) -> X + 1 end, 1, Acc) end, #{}, All)),
    ?assertEqual(2000, length(lists:usort([Id || {Id, _} <- All]))),
    %% Fewer own ids than the surplus (the counts are a little ahead): only those move.
    ?assertEqual(10, length(stellar_catalog:plan(Counts, [a, b, c], b, lists:sublist(Ids, 10), 200))).

%% Repeated rounds of at most 200 moves converge to within 2 % of the shares and then stop.
plan_converges_test() ->
    Ids = fun(N, P) -> [<<P/binary, (integer_to_binary(I))/binary>> || I <- lists:seq(1, N)] end,
    Own0 = #{a => Ids(968, <<"a">>), b => Ids(9032, <<"b">>), c => []},
    Round = fun Round(Own, K) ->
        Counts = maps:map(fun(_, L) -> length(L) end, Own),
        Moves = lists:append([[{From, Id, To} || {Id, To} <- stellar_catalog:plan(Counts, [a, b, c], From, L, 200)]
                              || {From, L} <- maps:to_list(Own)]),
        case Moves of
            [] -> {Counts, K};
            _ -> Round(lists:foldl(fun({From, Id, To}, O) ->
                                       O#{From => maps:get(From, O) -- [Id], To => [Id | maps:get(To, O)]}
                                   end, Own, Moves), K + 1)
        end
    end,
    {Final, Rounds} = Round(Own0, 0),
    ?assertEqual(10000, lists:sum(maps:values(Final))),
    [?assert(abs(C - 3333) =< 3333 div 50 + 1) || C <- maps:values(Final)],
    ?assert(Rounds =< 30).

%% A read merges the tick slot into an entry this node owns, not deleted, whose state is not
%% newer than the tick; the entry's updated_at moves up to the tick's stamp, never down.
tick_slot_test_() ->
    Entry = fun(Owner, Status, KnownAt) ->
                    #{id => <<"s1">>, owner => Owner, status => Status, node => undefined, updated_at => 500,
                      state => #{id => <<"s1">>, mode => nominal, energy => 90.0, updated_at => KnownAt}}
            end,
    Tick = #{energy => 80.0, updated_at => 2000},
    Merged = fun(E, Stamp) -> stellar_catalog:entry({<<"s1">>, E, Tick, Stamp}) end,
    Mine = Entry(node(), running, 1000),
    [
        ?_assertEqual(Mine, stellar_catalog:entry({<<"s1">>, Mine, none, 0})),
        ?_assertEqual(Mine#{state => #{id => <<"s1">>, mode => nominal, energy => 80.0, updated_at => 2000},
                            updated_at => 700},
                      Merged(Mine, 700)),
        ?_assertMatch(#{updated_at := 500, state := #{energy := 80.0}}, Merged(Mine, 100)),
        %% A command's outcome newer than the tick, another node's entry, a tombstone: as written.
        ?_assertEqual(Entry(node(), running, 3000), Merged(Entry(node(), running, 3000), 700)),
        ?_assertEqual(Entry('other@h', running, 1000), Merged(Entry('other@h', running, 1000), 700)),
        ?_assertEqual(Entry(node(), deleted, 1000), Merged(Entry(node(), deleted, 1000), 700))
    ].

%% put_ticks/1 writes the slots of the ids the table has (no other), stamped with the start of
%% the last sync round; lookup/1 and entries/0 read the merged entry.
put_ticks_test() ->
    Test = self(),
    Owner = spawn(fun() -> ok = stellar_catalog:new_tables(), Test ! ready, receive stop -> ok end end),
    receive ready -> ok after 5000 -> error(no_tables) end,
    try
        Id = <<"s1">>,
        E = #{id => Id, owner => node(), status => running, node => undefined, updated_at => 500,
              state => #{id => Id, energy => 90.0, updated_at => 1000}},
        true = ets:insert(stellar_catalog, {Id, E, none, 0}),
        ok = atomics:put(persistent_term:get({stellar_catalog, sync_clock}), 1, 1500),
        Tick = #{energy => 80.0, updated_at => 2000},
        ok = stellar_catalog:put_ticks([{Id, Tick}, {<<"unknown">>, Tick}]),
        ?assertEqual([{Id, E, Tick, 1500}], ets:lookup(stellar_catalog, Id)),
        ?assertEqual([], ets:lookup(stellar_catalog, <<"unknown">>)),
        ?assertMatch({ok, #{updated_at := 1500, state := #{energy := 80.0, updated_at := 2000}}},
                     stellar_catalog:lookup(Id)),
        ?assertMatch([#{id := Id, state := #{energy := 80.0}}], stellar_catalog:entries())
    after
        Owner ! stop
    end.
