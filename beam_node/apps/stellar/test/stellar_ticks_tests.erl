%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% stellar_ticks given what it cannot take: counted as dropped, never a crash, and logged at
%% most every 10 s (a sats node of another release sends every batch off the contract).
-module(stellar_ticks_tests).

-include_lib("eunit/include/eunit.hrl").

-export([log/2]).  % a logger handler: forwards stellar_ticks' warnings to the test

log(#{level := warning, msg := {Format, Args}}, #{config := #{test := Test}}) when is_list(Format) ->
    Text = iolist_to_binary(io_lib:format(Format, Args)),
    _ = binary:match(Text, <<"stellar_ticks:">>) =:= {0, 14} andalso (Test ! {logged, Text}),
    ok;
log(_Event, _Config) ->
    ok.

drops_counted_and_logged_at_most_every_10_s_test_() ->
    {timeout, 60, fun drops_counted_and_logged/0}.

drops_counted_and_logged() ->
    ok = logger:add_handler(stellar_ticks_test, ?MODULE, #{config => #{test => self()}, level => warning}),
    {ok, Ticks} = stellar_ticks:start_link(),
    try
        Me = self(),
        Ticks ! {sat_ticks, 1, [{<<"a">>, Me, nominal}]},  % the tuple form of earlier releases
        Ticks ! {sat_ticks, 1, 2, <<"a", 0>>, [Me], <<>>},  % sizes that disagree
        Ticks ! hello,
        ?assertMatch(#{dropped := 3, batches := 0, ticks := 0}, stellar_ticks:counts()),
        [First] = logged(),
        ?assertMatch({_, _}, binary:match(First, <<"unexpected message">>)),
        ?assertMatch({_, _}, binary:match(First, <<"(0 more dropped unlogged">>)),
        timer:sleep(10000),
        Ticks ! {sat_ticks, 1, 1, <<"a", 0>>, not_a_list, <<0:400>>},
        ?assertMatch(#{dropped := 4}, stellar_ticks:counts()),
        [Second] = logged(),
        ?assertMatch({_, _}, binary:match(Second, <<"off-contract batch (bad_ticks)">>)),
        ?assertMatch({_, _}, binary:match(Second, <<"(2 more dropped unlogged">>)),
        ?assert(is_process_alive(Ticks))
    after
        unlink(Ticks),
        exit(Ticks, kill),
        logger:remove_handler(stellar_ticks_test)
    end.

%% The warnings logged so far (the handler runs in the logging process: wait a moment).
logged() ->
    receive {logged, Text} -> [Text | logged()] after 300 -> [] end.
