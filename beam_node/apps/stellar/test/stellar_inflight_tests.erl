%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_inflight_tests).

-include_lib("eunit/include/eunit.hrl").

inflight_test_() ->
    {setup,
     fun() ->
         %% The table lives as long as its owner: wait until the owner says it exists.
         Self = self(),
         Owner = spawn(fun() -> ok = stellar_inflight:new_table(), Self ! {table, self()},
                                receive stop -> ok end end),
         receive {table, Owner} -> Owner after 10000 -> error(no_table) end
     end,
     fun(Owner) -> Owner ! stop end,
     fun(_) ->
         [?_test(begin
              true = stellar_inflight:add(<<"a">>, <<"c1">>, set_mode, #{mode => science}),
              true = stellar_inflight:add(<<"b">>, <<"c2">>, noop, #{}),
              true = stellar_inflight:add(<<"a">>, <<"c3">>, noop, #{}),
              %% The same id twice (a redelivery) is kept once.
              false = stellar_inflight:add(<<"a">>, <<"c1">>, set_mode, #{mode => science}),
              ?assertEqual([{<<"c1">>, set_mode, #{mode => science}}, {<<"c3">>, noop, #{}}],
                           stellar_inflight:list(<<"a">>)),
              ?assertEqual(2, stellar_inflight:count(<<"a">>)),
              ok = stellar_inflight:remove(<<"a">>, <<"c1">>),
              ?assertEqual([{<<"c3">>, noop, #{}}], stellar_inflight:list(<<"a">>)),
              ok = stellar_inflight:remove(<<"a">>, <<"unknown">>),
              ok = stellar_inflight:clear(<<"a">>),
              ?assertEqual([], stellar_inflight:list(<<"a">>)),
              ?assertEqual([{<<"c2">>, noop, #{}}], stellar_inflight:list(<<"b">>))
          end)]
     end}.
