%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_spec_tests).
-include_lib("eunit/include/eunit.hrl").

-define(L1, <<"1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927">>).
-define(L2, <<"2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537">>).

defaults_test() ->
    ?assertEqual({ok, #{id => <<"a">>, name => <<"A">>, mode => nominal, energy_pct => 100.0,
                        memory_used_mb => 0.0, memory_capacity_mb => 1024.0, tle => undefined,
                        applied => [], updated_at => 7}},
                 stellar_spec:sat_state(#{id => "a", name => <<"A">>}, 7)).

full_spec_test() ->
    {ok, S} = stellar_spec:sat_state(#{id => <<"iss">>, name => "ISS", tle => {?L1, ?L2},
                                       mode => <<"safe">>, energy_pct => 50,
                                       memory_capacity_mb => 10, memory_used_mb => 2}, 1),
    ?assertEqual(true, stellar_proto_v1:is_sat_state(S)),
    ?assertMatch(#{mode := safe, energy_pct := 50.0, memory_capacity_mb := 10.0,
                   memory_used_mb := 2.0, tle := {?L1, ?L2}}, S).

bad_specs_test_() ->
    E = fun(Spec) -> stellar_spec:sat_state(Spec, 0) end,
    Ok = #{id => <<"a">>, name => <<"b">>},
    [
        ?_assertEqual({error, {bad_spec, x}}, E(x)),
        ?_assertEqual({error, {missing_field, id}}, E(#{name => <<"b">>})),
        ?_assertEqual({error, {missing_field, name}}, E(#{id => <<"b">>})),
        ?_assertEqual({error, {unknown_fields, [a, b]}}, E(Ok#{b => 1, a => 2})),
        ?_assertEqual({error, {bad_field, id}}, E(Ok#{id => 42})),
        ?_assertEqual({error, {bad_field, id}}, E(Ok#{id => <<"é"/utf8>>})),
        ?_assertEqual({error, {bad_field, id}}, E(Ok#{id => [1 | 2]})),
        ?_assertEqual({error, {bad_field, name}}, E(Ok#{name => <<>>})),
        ?_assertEqual({error, {bad_field, name}}, E(Ok#{name => <<255>>})),
        ?_assertEqual({error, {bad_field, mode}}, E(Ok#{mode => "warp"})),
        ?_assertEqual({error, {bad_field, energy_pct}}, E(Ok#{energy_pct => 100.1})),
        ?_assertEqual({error, {bad_field, energy_pct}}, E(Ok#{energy_pct => "50"})),
        ?_assertEqual({error, {bad_field, memory_capacity_mb}}, E(Ok#{memory_capacity_mb => -1})),
        ?_assertEqual({error, {bad_field, memory_used_mb}},
                      E(Ok#{memory_capacity_mb => 10, memory_used_mb => 11})),
        ?_assertEqual({error, {bad_field, tle}}, E(Ok#{tle => [?L1, ?L2]})),
        ?_assertEqual({error, {bad_field, tle}}, E(Ok#{tle => {?L1, 2}}))
    ].

tle_test_() ->
    T = fun stellar_spec:tle/1,
    Swap = fun(Line, Pos, Char) ->
        <<(binary:part(Line, 0, Pos))/binary, Char, (binary:part(Line, Pos + 1, 68 - Pos))/binary>>
    end,
    [
        ?_assertEqual({ok, undefined}, T(undefined)),
        ?_assertEqual({ok, {?L1, ?L2}}, T({?L1, ?L2})),
        ?_assertEqual({ok, {?L1, ?L2}}, T({binary_to_list(?L1) ++ "\r\n", ?L2})),
        ?_assertEqual({error, {bad_tle, {line1, length}}}, T({<<"1 25544U">>, ?L2})),
        ?_assertEqual({error, {bad_tle, {line1, checksum}}}, T({Swap(?L1, 68, $0), ?L2})),
        ?_assertEqual({error, {bad_tle, {line2, checksum}}}, T({?L1, Swap(?L2, 20, $9)})),
        ?_assertEqual({error, {bad_tle, {line1, line_number}}}, T({?L2, ?L1})),
        ?_assertEqual({error, {bad_tle, catalog_number_mismatch}},
                      T({?L1, <<"2 25545", (binary:part(?L2, 7, 61))/binary, "8">>}))
    ].

ids_modes_commands_test_() ->
    [
        ?_assertEqual({ok, <<"a-1.b_c">>}, stellar_spec:id("a-1.b_c")),
        ?_assertEqual({error, {bad_field, id}}, stellar_spec:id(a)),
        ?_assertEqual({ok, science}, stellar_spec:mode("science")),
        ?_assertEqual({ok, science}, stellar_spec:mode(<<"science">>)),
        ?_assertEqual({error, {bad_mode, "Science"}}, stellar_spec:mode("Science")),
        ?_assertEqual({error, {bad_mode, 1}}, stellar_spec:mode(1)),
        ?_assertEqual({ok, set_mode, #{mode => safe}}, stellar_spec:command(set_mode, #{mode => "safe"})),
        ?_assertEqual({error, {bad_args, #{}}}, stellar_spec:command(set_mode, #{})),
        ?_assertEqual({ok, noop, #{}}, stellar_spec:command(noop, #{})),
        ?_assertEqual({error, {unknown_command, fly}}, stellar_spec:command(fly, #{})),
        ?_assertEqual({error, {bad_command, <<"noop">>}}, stellar_spec:command(<<"noop">>, #{})),
        ?_assertEqual({error, {bad_args, []}}, stellar_spec:command(noop, []))
    ].

%% set_tle takes exactly #{line1, line2}, a valid pair, trimmed to binaries (as stored).
set_tle_command_test_() ->
    Bad = <<(binary_part(?L2, 0, 68))/binary, "0">>,
    [
        ?_assertEqual({ok, set_tle, #{line1 => ?L1, line2 => ?L2}},
                      stellar_spec:command(set_tle, #{line1 => binary_to_list(?L1) ++ " ", line2 => ?L2})),
        ?_assertEqual({error, {bad_tle, {line2, checksum}}}, stellar_spec:command(set_tle, #{line1 => ?L1, line2 => Bad})),
        ?_assertEqual({error, {bad_tle, catalog_number_mismatch}},
                      stellar_spec:command(set_tle, #{line1 => ?L1, line2 => <<"2 25553", (binary_part(?L2, 7, 62))/binary>>})),
        ?_assertEqual({error, {bad_args, #{line1 => ?L1}}}, stellar_spec:command(set_tle, #{line1 => ?L1})),
        ?_assertEqual({error, {bad_args, #{line1 => ?L1, line2 => ?L2, x => 1}}},
                      stellar_spec:command(set_tle, #{line1 => ?L1, line2 => ?L2, x => 1})),
        ?_assertEqual({error, {bad_field, tle}}, stellar_spec:command(set_tle, #{line1 => 1, line2 => ?L2}))
    ].
