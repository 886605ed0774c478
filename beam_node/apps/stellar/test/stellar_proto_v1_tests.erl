%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_proto_v1_tests).
-include_lib("eunit/include/eunit.hrl").

state() ->
    #{id => <<"sat-1">>, name => <<"Sat 1">>, mode => nominal, energy_pct => 80.0,
      memory_used_mb => 10.0, memory_capacity_mb => 100.0, tle => undefined, applied => [],
      updated_at => 1700000000000}.

valid_state_test() ->
    ?assert(stellar_proto_v1:is_sat_state(state())),
    ?assert(stellar_proto_v1:is_sat_state((state())#{tle => {<<"1 ...">>, <<"2 ...">>},
                                                     applied => [<<"cmd-1">>]})),
    %% As strict as the Python side: no key beyond the contract's.
    ?assertEqual({false, extra}, stellar_proto_v1:is_sat_state((state())#{extra => 1})),
    ?assertEqual({false, state}, stellar_proto_v1:is_sat_state((state())#{<<"extra">> => 1})).

bad_state_names_the_field_test_() ->
    Bad = fun(Patch) -> stellar_proto_v1:is_sat_state(maps:merge(state(), Patch)) end,
    [
        ?_assertEqual({false, state}, stellar_proto_v1:is_sat_state([])),
        ?_assertEqual({false, name}, stellar_proto_v1:is_sat_state(maps:without([name, mode], state()))),
        ?_assertEqual({false, id}, stellar_proto_v1:is_sat_state(maps:remove(id, state()))),
        ?_assertEqual({false, id}, Bad(#{id => <<>>})),
        ?_assertEqual({false, id}, Bad(#{id => <<"a b">>})),
        ?_assertEqual({false, id}, Bad(#{id => binary:copy(<<"a">>, 65)})),
        ?_assertEqual({false, id}, Bad(#{id => "sat-1"})),
        ?_assertEqual({false, name}, Bad(#{name => 'Sat'})),
        ?_assertEqual({false, mode}, Bad(#{mode => warp})),
        ?_assertEqual({false, energy_pct}, Bad(#{energy_pct => 80})),
        ?_assertEqual({false, energy_pct}, Bad(#{energy_pct => 100.5})),
        ?_assertEqual({false, energy_pct}, Bad(#{energy_pct => -0.1})),
        ?_assertEqual({false, memory_capacity_mb}, Bad(#{memory_capacity_mb => 0.0})),
        ?_assertEqual({false, memory_used_mb}, Bad(#{memory_used_mb => 100.5})),
        ?_assertEqual({false, memory_used_mb}, Bad(#{memory_used_mb => -1.0})),
        ?_assertEqual({false, tle}, Bad(#{tle => {<<"1">>}})),
        ?_assertEqual({false, tle}, Bad(#{tle => {"1", "2"}})),
        ?_assertEqual({false, applied}, Bad(#{applied => [x]})),
        ?_assertEqual({false, applied}, Bad(#{applied => lists:duplicate(257, <<"c">>)})),
        ?_assertEqual({false, applied}, Bad(#{applied => [<<>>]})),
        ?_assertEqual({false, applied}, Bad(#{applied => [binary:copy(<<"c">>, 129)]})),
        ?_assertEqual({false, updated_at}, Bad(#{updated_at => -1})),
        ?_assertEqual({false, updated_at}, Bad(#{updated_at => 1.5}))
    ].

builders_match_shapes_test() ->
    Pid = self(),
    S = state(),
    Messages = #{
        start_actor => stellar_proto_v1:start_actor(S, Pid),
        start_actor_ok => {ok, Pid},
        start_actor_bad_state => {error, {bad_state, energy_pct}},
        start_actor_already_running => {error, {already_running, Pid}},
        load => stellar_proto_v1:load(),
        load_ok => {ok, #{actors => 3}},
        command => stellar_proto_v1:command(<<"cmd-1">>, noop, #{}, Pid),
        command_result => stellar_proto_v1:command_result(<<"sat-1">>, <<"cmd-1">>, done, S),
        stop => stellar_proto_v1:stop(),
        sat_tick => stellar_proto_v1:sat_tick(<<"sat-1">>, S),
        sat_ticks => stellar_proto_v1:sat_ticks([{<<"sat-1">>, Pid, element(4, stellar_proto_v1:sat_tick(<<"sat-1">>, S))}]),
        sat_event_state => stellar_proto_v1:sat_event_state(<<"sat-1">>, nominal, safe, low_energy),
        telemetry_rows => stellar_proto_v1:telemetry_rows(
                              [{<<"sat-1">>, element(4, stellar_proto_v1:sat_tick(<<"sat-1">>, S))}]),
        sat_event_alarm => stellar_proto_v1:sat_event_alarm(<<"sat-1">>, low_energy, critical,
                                                            <<"energy below 10 %">>)
    },
    Shapes = stellar_proto_v1:shapes(),
    ?assertEqual(lists:sort(maps:keys(Shapes)), lists:sort(maps:keys(Messages))),
    maps:foreach(fun(Name, Msg) ->
        ?assertEqual({Name, true}, {Name, stellar_proto_v1:conforms(Msg, maps:get(Name, Shapes))})
    end, Messages).

conforms_test_() ->
    C = fun stellar_proto_v1:conforms/2,
    S = state(),
    [
        ?_assert(C({failed, {invalid_transition, safe, science}}, <<"union:outcome">>)),
        ?_assert(C({failed, {unknown_command, fly}}, <<"union:outcome">>)),
        ?_assertNot(C({failed, oops}, <<"union:outcome">>)),
        ?_assertNot(C({failed, {invalid_transition, safe, warp}}, <<"union:outcome">>)),
        ?_assert(C(S#{tle => {<<"a">>, <<"b">>}}, <<"map:SatState">>)),
        ?_assertNot(C(S#{extra => 1}, <<"map:SatState">>)),
        ?_assertNot(C(maps:remove(tle, S), <<"map:SatState">>)),
        ?_assertNot(C(S#{energy_pct => 1}, <<"map:SatState">>)),
        ?_assertNot(C({sat_tick, 2, <<"a">>, S}, maps:get(sat_tick, stellar_proto_v1:shapes()))),
        ?_assertNot(C({sat_tick, 1, <<"a">>}, maps:get(sat_tick, stellar_proto_v1:shapes()))),
        ?_assert(C({failed, {bad_args, mode}}, <<"union:outcome">>)),
        ?_assert(C(stop, <<"atom:stop">>)),
        ?_assertNot(C({stop}, <<"atom:stop">>)),
        ?_assert(C(#{from => safe, to => standby, reason => command}, <<"map:StateChange">>)),
        ?_assert(C([<<"a">>], <<"list:binary">>)),
        ?_assertNot(C([a], <<"list:binary">>)),
        ?_assert(C(critical, <<"enum:severity">>)),
        ?_assertNot(C(fatal, <<"enum:severity">>))
    ].

classify_test_() ->
    S = state(),
    Orbit = #{lat_deg => 51.5, lon_deg => -0.1, alt_km => 412.0, in_sunlight => false},
    C = fun stellar_proto_v1:classify/1,
    [
        ?_assertEqual({sat_tick, <<"sat-1">>,
                       (maps:with([mode, energy_pct, memory_used_mb, updated_at], S))#{
                           lat_deg => undefined, lon_deg => undefined, alt_km => undefined,
                           in_sunlight => true}},
                      C(stellar_proto_v1:sat_tick(<<"sat-1">>, S))),
        ?_assertMatch({sat_tick, <<"sat-1">>, #{lat_deg := 51.5, lon_deg := -0.1, alt_km := 412.0,
                                                in_sunlight := false}},
                      C(stellar_proto_v1:sat_tick(<<"sat-1">>, S, Orbit))),
        ?_assertEqual({bad_message, bad_telemetry},
                      C(stellar_proto_v1:sat_tick(<<"sat-1">>, S, Orbit#{lat_deg => 91.0}))),
        ?_assertEqual({bad_message, bad_telemetry},
                      C(stellar_proto_v1:sat_tick(<<"sat-1">>, S, Orbit#{in_sunlight => maybe}))),
        ?_assertEqual({bad_message, bad_telemetry},
                      C(stellar_proto_v1:sat_tick(<<"sat-1">>, S, Orbit#{alt_km => 400}))),
        ?_assertEqual({bad_message, bad_telemetry}, C({sat_tick, 1, <<"sat-1">>, S})),
        ?_assertEqual({bad_message, bad_telemetry},
                      C(stellar_proto_v1:sat_tick(<<"sat-1">>, S#{energy_pct => 1}))),
        ?_assertEqual({bad_message, {bad_outcome, {failed, x}}},
                      C({command_result, 1, <<"s">>, <<"c">>, {failed, x}, S})),
        ?_assertMatch({sat_event, <<"sat-1">>, state, #{to := safe}},
                      C(stellar_proto_v1:sat_event_state(<<"sat-1">>, nominal, safe, low_energy))),
        ?_assertEqual({bad_message, {bad_event, state}},
                      C({sat_event, 1, <<"sat-1">>, state, #{from => x, to => safe}})),
        ?_assertMatch({sat_event, <<"sat-1">>, alarm, _},
                      C(stellar_proto_v1:sat_event_alarm(<<"sat-1">>, memory_full, warning, <<>>))),
        ?_assertEqual({bad_message, {bad_event, other}}, C({sat_event, 1, <<"s">>, other, #{}})),
        ?_assertEqual({command_result, <<"s">>, <<"c">>, {failed, {bad_args, mode}}, S},
                      C({command_result, 1, <<"s">>, <<"c">>, {failed, {bad_args, mode}}, S})),
        ?_assertEqual({bad_message, {bad_outcome, maybe}},
                      C({command_result, 1, <<"s">>, <<"c">>, maybe, S})),
        ?_assertEqual({bad_message, {unknown, sat_tick}}, C({sat_tick, 2, <<"s">>, S})),
        ?_assertEqual({bad_message, {unknown, sat_ticks}}, C({sat_ticks, 1, not_a_list})),
        ?_assertEqual({bad_message, unknown}, C(hello))
    ].

%% A packed batch keeps its good rows and counts the others; sizes that disagree refuse it whole.
sat_ticks_classify_test() ->
    C = fun stellar_proto_v1:classify/1,
    Me = self(),
    Tel = element(4, stellar_proto_v1:sat_tick(<<"sat-1">>, state(),
                                               #{lat_deg => 51.5, lon_deg => -0.1, alt_km => 412.0, in_sunlight => false})),
    NoFix = Tel#{lat_deg => undefined, lon_deg => undefined, alt_km => undefined, in_sunlight => true},
    Good = [{<<"a">>, Me, Tel}, {<<"b">>, Me, NoFix}],
    ?assertEqual({sat_ticks, Good, 0}, C(stellar_proto_v1:sat_ticks(Good))),
    ?assertEqual({sat_ticks, [], 0}, C(stellar_proto_v1:sat_ticks([]))),
    %% Bad rows: energy over 100, a shadow that is not a pid, an empty id, NaN energy, a mode
    %% index beyond the modes, unknown flag bits.
    {sat_ticks, 1, 7, Ids, Shadows, Records} = stellar_proto_v1:sat_ticks(
        [{<<"a">>, Me, Tel}, {<<"b">>, Me, Tel#{energy_pct => 101.0}}, {<<"c">>, not_a_pid, Tel},
         {<<>>, Me, Tel}, {<<"e">>, Me, Tel}, {<<"f">>, Me, Tel}, {<<"g">>, Me, Tel}]),
    <<First:(4 * 50)/binary, ET:8/binary, _:8/binary, ERest:34/binary, FPre:24/binary, _:1/binary, FRest:25/binary,
      GPre:25/binary, _:1/binary, GRest:24/binary>> = Records,
    Nan = <<0, 0, 0, 0, 0, 0, 16#F8, 16#7F>>,
    Patched = <<First/binary, ET/binary, Nan/binary, ERest/binary, FPre/binary, 9, FRest/binary, GPre/binary, 4,
                GRest/binary>>,
    ?assertEqual({sat_ticks, [{<<"a">>, Me, Tel}], 6}, C({sat_ticks, 1, 7, Ids, Shadows, Patched})),
    %% Off-contract as a whole: a record short, an id missing, a shadow missing, an improper list.
    {sat_ticks, 1, 2, GoodIds, GoodShadows, GoodRecords} = stellar_proto_v1:sat_ticks(Good),
    Bad = {bad_message, bad_ticks},
    ?assertEqual(Bad, C({sat_ticks, 1, 2, GoodIds, GoodShadows, binary:part(GoodRecords, 0, 99)})),
    ?assertEqual(Bad, C({sat_ticks, 1, 2, GoodIds, GoodShadows, <<GoodRecords/binary, 0>>})),
    ?assertEqual(Bad, C({sat_ticks, 1, 2, GoodIds, not_a_list, GoodRecords})),
    ?assertEqual(Bad, C({sat_ticks, 1, 2, <<"a", 0>>, GoodShadows, GoodRecords})),
    ?assertEqual(Bad, C({sat_ticks, 1, 2, <<"a", 0, "b">>, GoodShadows, GoodRecords})),
    ?assertEqual(Bad, C({sat_ticks, 1, 2, GoodIds, [Me], GoodRecords})),
    ?assertEqual(Bad, C({sat_ticks, 1, 2, GoodIds, [Me, Me | Me], GoodRecords})),
    %% The tuple form of earlier releases is off-contract.
    ?assertEqual({bad_message, {unknown, sat_ticks}}, C({sat_ticks, 1, [{<<"a">>, Me, nominal}]})).

%% A packed row's ranges are those of is_telemetry/1: each bound in, just past each bound out;
%% a position's values count only when its flag says it is known.
sat_ticks_ranges_test() ->
    Me = self(),
    Row = fun(E, U, Flags, Lat, Lon, Alt) ->
        <<1000:64/signed-little, E:64/float-little, U:64/float-little, 2:8, Flags:8,
          Lat:64/float-little, Lon:64/float-little, Alt:64/float-little>>
    end,
    Kept = fun(Record) ->
        {sat_ticks, Good, _} = stellar_proto_v1:classify({sat_ticks, 1, 1, <<"r", 0>>, [Me], Record}),
        case Good of
            [{<<"r">>, Me, Tel}] -> ?assert(stellar_proto_v1:is_telemetry(Tel)), Tel;
            [] -> false
        end
    end,
    Known = 2,
    ?assertMatch(#{energy_pct := 0.0, memory_used_mb := 0.0, lat_deg := -90.0, lon_deg := -180.0, alt_km := -1.0e4},
                 Kept(Row(0.0, 0.0, Known, -90.0, -180.0, -1.0e4))),
    ?assertMatch(#{energy_pct := 100.0, lat_deg := 90.0, lon_deg := 180.0, alt_km := 1.0e7},
                 Kept(Row(100.0, 5.0, Known, 90.0, 180.0, 1.0e7))),
    [?assertEqual(false, Kept(Bad)) || Bad <- [Row(-0.5, 0.0, Known, 0.0, 0.0, 0.0), Row(100.5, 0.0, Known, 0.0, 0.0, 0.0),
                                              Row(50.0, -1.0, Known, 0.0, 0.0, 0.0), Row(50.0, 0.0, Known, 90.5, 0.0, 0.0),
                                              Row(50.0, 0.0, Known, -90.5, 0.0, 0.0), Row(50.0, 0.0, Known, 0.0, 180.5, 0.0),
                                              Row(50.0, 0.0, Known, 0.0, -180.5, 0.0), Row(50.0, 0.0, Known, 0.0, 0.0, 1.1e7),
                                              Row(50.0, 0.0, Known, 0.0, 0.0, -1.1e4)]],
    %% Unknown position (flag 2 clear): whatever the record holds there is not a position.
    ?assertMatch(#{lat_deg := undefined, lon_deg := undefined, alt_km := undefined, in_sunlight := true},
                 Kept(Row(50.0, 0.0, 1, 1.0e9, -1.0e9, 1.0e12))).

telemetry_rows_split_test() ->
    Tel = element(4, stellar_proto_v1:sat_tick(<<"x">>, state())),
    Rows = [{<<"id-", (integer_to_binary(I))/binary>>, Tel#{updated_at => I}} || I <- lists:seq(1, 5)],
    {telemetry_rows, 1, 5, Ids, Records} = stellar_proto_v1:telemetry_rows(Rows),
    {HI, HR, TI, TR} = stellar_proto_v1:telemetry_rows_split(2, Ids, Records),
    ?assertEqual(lists:sublist(Rows, 2), stellar_proto_v1:telemetry_rows_list({telemetry_rows, 1, 2, HI, HR})),
    ?assertEqual(lists:nthtail(2, Rows), stellar_proto_v1:telemetry_rows_list({telemetry_rows, 1, 3, TI, TR})),
    ?assertEqual({Ids, Records, <<>>, <<>>}, stellar_proto_v1:telemetry_rows_split(5, Ids, Records)).

modes_test() ->
    ?assertEqual([safe, standby, nominal, science, downlink, maintenance], stellar_proto_v1:modes()),
    ?assert(stellar_proto_v1:is_mode(science)),
    ?assertNot(stellar_proto_v1:is_mode(<<"science">>)).

%% Packed telemetry rows come back as they went in: every mode, position known or not, sunlight
%% or shadow; each row is 50 bytes after its id and NUL.
telemetry_rows_test() ->
    Dark = #{mode => safe, energy_pct => 0.0, memory_used_mb => 0.5, updated_at => -1,
             lat_deg => undefined, lon_deg => undefined, alt_km => undefined, in_sunlight => false},
    Lit = [{<<"sat-", (atom_to_binary(M))/binary>>,
            #{mode => M, energy_pct => 99.5, memory_used_mb => 1024.25, updated_at => 1700000000123,
              lat_deg => -51.5, lon_deg => 179.0, alt_km => 550.125, in_sunlight => true}}
           || M <- stellar_proto_v1:modes()],
    Rows = [{<<"a.b_c-9">>, Dark} | Lit],
    Packed = {telemetry_rows, 1, 7, Ids, Records} = stellar_proto_v1:telemetry_rows(Rows),
    ?assertEqual(7 * 50, byte_size(Records)),
    ?assertEqual(<<"a.b_c-9", 0, "sat-safe", 0>>, binary:part(Ids, 0, 17)),
    ?assertEqual(Rows, stellar_proto_v1:telemetry_rows_list(Packed)),
    ?assertEqual({telemetry_rows, 1, 0, <<>>, <<>>}, stellar_proto_v1:telemetry_rows([])),
    ?assertEqual([], stellar_proto_v1:telemetry_rows_list(stellar_proto_v1:telemetry_rows([]))).
