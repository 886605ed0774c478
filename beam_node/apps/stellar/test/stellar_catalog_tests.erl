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
