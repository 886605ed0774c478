%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_sat_tests).
-include_lib("eunit/include/eunit.hrl").

log_filter_test_() ->
    F = fun(Msg) -> stellar_sat:log_filter(#{level => error, msg => Msg, meta => #{}}, []) end,
    Down = {actor_down, noconnection},
    [
        ?_assertEqual(stop, F({report, #{label => {gen_server, terminate}, reason => Down}})),
        ?_assertEqual(stop, F({report, #{label => {gen_server, terminate}, reason => {Down, []}}})),
        ?_assertEqual(stop, F({report, #{label => {supervisor, child_terminated},
                                         report => [{supervisor, x}, {reason, Down}]}})),
        ?_assertEqual(stop, F({report, #{label => {proc_lib, crash},
                                         report => [[{error_info, {exit, Down, []}}], []]}})),
        ?_assertEqual(ignore, F({report, #{label => {gen_server, terminate}, reason => badarg}})),
        ?_assertEqual(ignore, F({report, #{label => {supervisor, child_terminated},
                                           report => [{reason, killed}]}})),
        ?_assertEqual(ignore, F({string, "satellite x: its actor exited"}))
    ].

command_ids_test() ->
    Ids = [stellar_sat:new_command_id() || _ <- lists:seq(1, 1000)],
    ?assertEqual(1000, length(lists:usort(Ids))),
    [?assertMatch(<<"cmd-", _:32/binary>>, Id) || Id <- Ids],
    ?assert(lists:all(fun stellar_proto_v1:is_command_id/1, Ids)).
