%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_registry_tests).
-include_lib("eunit/include/eunit.hrl").

%% holds/2 is the tick's check: the registered pid, alive or not; whereis_local/1 only a live one.
holds_test() ->
    Test = self(),
    Owner = spawn(fun() -> ok = stellar_registry:new_table(), Test ! ready, receive stop -> ok end end),
    receive ready -> ok after 5000 -> error(no_table) end,
    try
        Shadow = spawn(fun() -> yes = stellar_registry:claim(<<"s1">>), Test ! claimed, receive stop -> ok end end),
        receive claimed -> ok after 5000 -> error(no_claim) end,
        ?assert(stellar_registry:holds(<<"s1">>, Shadow)),
        ?assertNot(stellar_registry:holds(<<"s1">>, self())),
        ?assertNot(stellar_registry:holds(<<"s2">>, Shadow)),
        Ref = monitor(process, Shadow),
        exit(Shadow, kill),
        receive {'DOWN', Ref, process, Shadow, killed} -> ok after 5000 -> error(not_killed) end,
        ?assert(stellar_registry:holds(<<"s1">>, Shadow)),
        ?assertEqual(undefined, stellar_registry:whereis_local(<<"s1">>)),
        ?assertEqual(yes, stellar_registry:claim(<<"s1">>)),  % the dead holder is replaced
        ?assertNot(stellar_registry:holds(<<"s1">>, Shadow)),
        ?assert(stellar_registry:holds(<<"s1">>, self()))
    after
        Owner ! stop
    end.
