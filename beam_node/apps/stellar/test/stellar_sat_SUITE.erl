%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Satellites on one BEAM node with two real `sats' Python nodes (started and supervised by
%% the app): placement, the shell API, and recovery from the death of an actor and of a
%% whole Python node. Run through scripts/test.sh (`rebar3 ct --name ct@127.0.0.1').
%% STELLAR_FAKE_SATS=1 replaces the Python nodes by the Erlang stand-in stellar_fake_sats.
-module(stellar_sat_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-define(SATS1, 'ct_sats1@127.0.0.1').
-define(SATS2, 'ct_sats2@127.0.0.1').
-define(TICK_S, 0.2).
%% Bound on every wait: the behaviour is asserted, not its speed (bench/sats_bench.py measures
%% that); a loaded 2-core CI machine is slow, not broken.
-define(WAIT_MS, 60000).

all() ->
    [create_spreads_over_sats_nodes, sats_page_filters_and_pages, crash_restarts_actor_with_state,
     kill_sats_node_replaces_its_satellites, commands_and_events, stop_removes_satellite,
     bad_input_returns_errors, create_many_answers_each_spec, tle_gives_position,
     orbital_calls_without_orbital_node].

init_per_suite(Config) ->
    ok = stellar_ct:require_distribution(),
    [{exe, stellar_ct:sats_exe(Config)} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    ok = stellar_ct:start_app(?config(exe, Config), [
        {py_nodes, [#{role => sats, count => 2, prefix => "ct_sats"}]},
        {tick_s, ?TICK_S}
    ]),
    _ = stellar_ct:wait_py_nodes_up([?SATS1, ?SATS2], ?WAIT_MS),
    Config.

end_per_testcase(_Case, _Config) ->
    stellar_ct:stop_app().

%% Demo satellite 1 (py_nodes/demo.py): Walker 53 deg, 550 km.
-define(TLE1, <<"1 90001U          26001.00000000  .00000000  00000-0  00000+0 0  9998">>).
-define(TLE2, <<"2 90001  53.0000   0.0000 0000000   0.0000   0.0000 15.05581646    01">>).

%% Cases.

tle_gives_position() ->
    [{doc, "A satellite created with a TLE has lat_deg/lon_deg/alt_km from SGP4, also after a "
           "crash; one without has them undefined; both say whether they are in sunlight."}].
tle_gives_position(_Config) ->
    case os:getenv("STELLAR_FAKE_SATS") of
        "1" -> {skip, "the Erlang stand-in for sats nodes does not propagate orbits"};
        _ -> tle_gives_position_real()
    end.

tle_gives_position_real() ->
    {ok, <<"orb">>} = stellar:create(#{id => <<"orb">>, name => <<"Orb">>, tle => {?TLE1, ?TLE2}}),
    {ok, <<"flat">>} = stellar:create(#{id => <<"flat">>, name => <<"Flat">>}),
    Positioned = fun() ->
        case stellar:sat(<<"orb">>) of
            {ok, #{lat_deg := Lat, lon_deg := Lon, alt_km := Alt, in_sunlight := Sun}}
                    when is_float(Lat), is_float(Lon), is_float(Alt), is_boolean(Sun) ->
                ?assert(Lat >= -53.5 andalso Lat =< 53.5),
                ?assert(Lon >= -180.0 andalso Lon < 180.0),
                ?assert(Alt > 520.0 andalso Alt < 590.0),
                {true, Lat};
            Other ->
                Other
        end
    end,
    _ = stellar_ct:wait_until("a position from the first ticks", Positioned, ?WAIT_MS),
    {ok, #{lat_deg := undefined, lon_deg := undefined, alt_km := undefined, in_sunlight := Sun}} =
        stellar_ct:wait_until("a tick of the satellite without TLE", fun() ->
            case stellar:sat(<<"flat">>) of
                {ok, #{in_sunlight := S}} = R when is_boolean(S) -> {true, R};
                Other -> Other
            end
        end, ?WAIT_MS),
    ?assert(is_boolean(Sun)),
    {ok, Old} = stellar_sat:actor(stellar_sat:whereis(<<"orb">>)),
    ok = stellar:crash(<<"orb">>),
    _ = wait_new_actor(<<"orb">>, Old),
    %% Re-placed from its last known state (which carries the position keys), it moves on.
    {true, Lat1} = Positioned(),
    stellar_ct:wait_until("moving after the crash", fun() ->
        case Positioned() of
            {true, Lat2} -> Lat2 =/= Lat1;
            Other -> Other
        end
    end, ?WAIT_MS).

orbital_calls_without_orbital_node() ->
    [{doc, "A real cluster with sats nodes and no orbital node: the orbital calls of the shell "
           "API answer {error, no_orbital_node} and nothing crashes."}].
orbital_calls_without_orbital_node(_Config) ->
    {ok, <<"orb">>} = stellar:create(#{id => <<"orb">>, name => <<"Orb">>, tle => {?TLE1, ?TLE2}}),
    _ = wait_running([<<"orb">>], ?WAIT_MS),
    ?assertEqual([], [N || #{role := orbital, name := N} <- stellar:nodes()]),
    Sup = whereis(stellar_sup),
    Now = erlang:system_time(millisecond),
    ?assertEqual({error, no_orbital_node}, stellar:visible(<<"svalbard">>, Now)),
    ?assertEqual({error, no_orbital_node}, stellar:visible("svalbard", Now)),
    ?assertEqual({error, no_orbital_node}, stellar:propagate([<<"orb">>], [Now])),
    ?assertEqual({error, no_orbital_node},
                 stellar:passes([<<"orb">>], [<<"svalbard">>], Now, Now + 3600000, undefined)),
    ?assertEqual(Sup, whereis(stellar_sup)),
    ?assertMatch({ok, #{id := <<"orb">>}}, stellar:sat(<<"orb">>)).

create_spreads_over_sats_nodes() ->
    [{doc, "10 new satellites run, 5 on each sats node, each with exactly one registered shadow."}].
create_spreads_over_sats_nodes(_Config) ->
    Ids = create_n(10),
    Running = wait_running(Ids, ?WAIT_MS),
    ?assertEqual(5, length([x || {_, ?SATS1, _} <- Running])),
    ?assertEqual(5, length([x || {_, ?SATS2, _} <- Running])),
    ?assertEqual(Ids, stellar_ct:shadow_names()),
    ?assertEqual(10, actors_on([?SATS1, ?SATS2])),
    [#{id := Id, name := _, mode := nominal, energy_pct := E, memory_used_mb := _,
       memory_capacity_mb := _, node := Node, updated_at := At} | _] = stellar:sats(),
    ?assert(lists:member(Id, Ids)),
    ?assert(is_float(E) andalso E > 0),
    ?assert(lists:member(Node, [?SATS1, ?SATS2])),
    ?assert(is_integer(At)).

sats_page_filters_and_pages() ->
    [{doc, "stellar:sats_page/3 (the HTTP list) equals filtering and paging stellar:sats(): by "
           "mode, node and status given as binaries (an unknown name matches nothing and makes no "
           "atom), any offset (past the end: an empty page) and limit."}].
sats_page_filters_and_pages(_Config) ->
    Ids = create_n(10),
    _ = wait_running(Ids, ?WAIT_MS),
    Science = lists:nth(3, Ids),
    ok = stellar:set_mode(Science, science),
    All = stellar:sats(),
    ?assertEqual(Ids, [Id || #{id := Id} <- All]),
    Page = fun(Filter, Offset, Limit) ->
        {Total, Sats} = stellar:sats_page(Filter, Offset, Limit),
        {Total, [Id || #{id := Id} <- Sats]}
    end,
    ?assertEqual({10, Ids}, Page(#{}, 0, 100)),
    ?assertEqual({10, lists:sublist(Ids, 4, 3)}, Page(#{}, 3, 3)),
    ?assertEqual({10, lists:nthtail(8, Ids)}, Page(#{}, 8, 5)),
    ?assertEqual({10, []}, Page(#{}, 10, 5)),
    ?assertEqual({10, []}, Page(#{}, 0, 0)),
    OnSats1 = [Id || #{id := Id, node := ?SATS1} <- All],
    ?assertEqual({5, OnSats1}, Page(#{node => atom_to_binary(?SATS1)}, 0, 100)),
    ?assertEqual({5, tl(OnSats1)}, Page(#{node => atom_to_binary(?SATS1), status => <<"running">>}, 1, 100)),
    ?assertEqual({1, [Science]}, Page(#{mode => <<"science">>}, 0, 100)),
    ?assertEqual({0, []}, Page(#{status => <<"placing">>}, 0, 100)),
    Unknown = <<"no_such_node_", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    ?assertEqual({0, []}, Page(#{node => Unknown}, 0, 100)),
    ?assertError(badarg, binary_to_existing_atom(Unknown)),
    %% The page's maps are stellar:sat/1's (values move with ticks: the keys and the id).
    {1, [#{id := Science} = Sat]} = stellar:sats_page(#{mode => <<"science">>}, 0, 1),
    {ok, One} = stellar:sat(Science),
    ?assertEqual(lists:sort(maps:keys(One)), lists:sort(maps:keys(Sat))).

crash_restarts_actor_with_state() ->
    [{doc, "stellar:crash/1 kills an actor: it runs again (a new actor) with its mode and energy."}].
crash_restarts_actor_with_state(_Config) ->
    Ids = create_n(10),
    _ = wait_running(Ids, ?WAIT_MS),
    Id = lists:nth(4, Ids),
    ok = stellar:set_mode(Id, science),
    E0 = stellar_ct:wait_until("the new mode in the shadow's state", fun() ->
        case stellar:sat(Id) of
            {ok, #{mode := science, energy_pct := E}} -> {true, E};
            Other -> Other
        end
    end, ?WAIT_MS),
    {ok, Old} = stellar_sat:actor(stellar_sat:whereis(Id)),
    T0 = erlang:monotonic_time(millisecond),
    ok = stellar:crash(Id),
    _ = wait_new_actor(Id, Old),
    ct:log("running again after ~b ms", [erlang:monotonic_time(millisecond) - T0]),
    stellar_ct:wait_until("the old actor gone", fun() -> not is_process_alive_remote(Old) end, ?WAIT_MS),
    {ok, #{mode := Mode, energy_pct := E1}} = stellar:sat(Id),
    ?assertEqual(science, Mode),
    ?assert(abs(E1 - E0) =< 5.0),
    ?assertEqual(Ids, stellar_ct:shadow_names()),
    stellar_ct:wait_until("10 actors", fun() -> actors_on([?SATS1, ?SATS2]) =:= 10 end, ?WAIT_MS).

kill_sats_node_replaces_its_satellites() ->
    [{doc, "kill -9 of a sats node: its satellites run on the other; it restarts; none lost or doubled."}].
kill_sats_node_replaces_its_satellites(_Config) ->
    Ids = create_n(10),
    Running = wait_running(Ids, ?WAIT_MS),
    Hosted = lists:sort([Id || {Id, ?SATS1, _} <- Running]),
    ?assertEqual(5, length(Hosted)),
    [#{os_pid := OsPid, restarts := 0}] = [I || I = #{name := ?SATS1} <- stellar:nodes()],
    T0 = erlang:monotonic_time(millisecond),
    _ = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    stellar_ct:wait_until("the satellites of the killed node on the other node", fun() ->
        Now = stellar_ct:running_sats(),
        Moved = lists:sort([Id || {Id, ?SATS2, A} <- Now, lists:member(Id, Hosted),
                                  node(A) =:= ?SATS2]),
        Moved =:= Hosted orelse {moved, Moved}
    end, ?WAIT_MS),
    ct:log("re-placed after ~b ms", [erlang:monotonic_time(millisecond) - T0]),
    ?assertEqual(10, length(stellar_ct:running_sats())),
    ?assertEqual(Ids, [Id || #{id := Id} <- stellar:sats()]),
    ?assertEqual(Ids, stellar_ct:shadow_names()),
    ?assertEqual(10, length(stellar_sat_sup:shadows())),
    [#{os_pid := NewOsPid}] = stellar_ct:wait_py_nodes_up([?SATS1], ?WAIT_MS),
    ?assertNotEqual(OsPid, NewOsPid),
    ?assertMatch([#{restarts := 1}], [I || I = #{name := ?SATS1} <- stellar:nodes()]),
    ?assertNot(stellar_ct:os_process_alive(OsPid)),
    ?assertEqual(10, actors_on([?SATS1, ?SATS2])),
    ?assertEqual(Ids, stellar_ct:shadow_names()).

commands_and_events() ->
    [{doc, "Commands reach the actor and their outcomes, state changes and ticks are published."}].
commands_and_events(_Config) ->
    [Id] = create_n(1),
    _ = wait_running([Id], ?WAIT_MS),
    ok = stellar_events:subscribe(self(), #{sat_ids => [Id]}),
    {ok, CmdId} = stellar:command(Id, noop, #{}),
    ?assertMatch(<<"cmd-", _/binary>>, CmdId),
    receive
        {stellar_event, _, command, Id, #{command_id := CmdId, outcome := done}, _} -> ok
    after ?WAIT_MS -> ct:fail("no command event for ~s", [CmdId])
    end,
    ok = stellar:set_mode(Id, <<"downlink">>),
    receive
        {stellar_event, _, state, Id, #{from := nominal, to := downlink}, _} -> ok
    after ?WAIT_MS -> ct:fail("no state event")
    end,
    receive
        {stellar_event, EvId, telemetry, Id, #{mode := downlink}, _} ->
            {_, Replayed} = stellar_events:since(EvId - 1),
            ?assertMatch([{stellar_event, EvId, telemetry, Id, _, _} | _], Replayed)
    after ?WAIT_MS -> ct:fail("no telemetry event")
    end,
    {ok, #{mode := downlink}} = stellar:sat(Id),
    {ok, Cmd2} = stellar:command(Id, set_mode, #{mode => maintenance}),
    receive
        {stellar_event, _, command, Id, #{command_id := Cmd2,
                                          outcome := {failed, {invalid_transition, downlink, maintenance}}}, _} -> ok
    after ?WAIT_MS -> ct:fail("no failed command event")
    end,
    ok = stellar_events:unsubscribe(self()).

stop_removes_satellite() ->
    [{doc, "stellar:stop/1 ends the actor and the shadow and removes the satellite."}].
stop_removes_satellite(_Config) ->
    Ids = [A, B] = create_n(2),
    _ = wait_running(Ids, ?WAIT_MS),
    {ok, Actor} = stellar_sat:actor(stellar_sat:whereis(A)),
    ok = stellar:stop(binary_to_list(A)),
    ?assertEqual({error, not_found}, stellar:sat(A)),
    ?assertEqual({error, not_found}, stellar:stop(A)),
    ?assertEqual([B], stellar_ct:shadow_names()),
    stellar_ct:wait_until("the actor gone", fun() -> not is_process_alive_remote(Actor) end, ?WAIT_MS),
    stellar_ct:wait_until("1 actor", fun() -> actors_on([?SATS1, ?SATS2]) =:= 1 end, ?WAIT_MS),
    %% The id can be used again.
    {ok, A} = stellar:create(#{id => A, name => <<"again">>}),
    _ = wait_running(Ids, ?WAIT_MS).

bad_input_returns_errors() ->
    [{doc, "Unknown ids, bad fields, bad modes, bad commands and wrong types give error tuples; nothing crashes."}].
bad_input_returns_errors(_Config) ->
    Tle1 = <<"1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927">>,
    Tle2 = <<"2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537">>,
    {ok, <<"iss">>} = stellar:create(#{id => "iss", name => "ISS", tle => {Tle1, Tle2},
                                       mode => safe, energy_pct => 80}),
    Running = wait_running([<<"iss">>], ?WAIT_MS),
    Shadows = stellar_sat_sup:shadows(),
    Sup = whereis(stellar_sup),
    Errors = [
        {{error, already_exists}, stellar:create(#{id => <<"iss">>, name => <<"x">>})},
        {{error, {bad_field, energy_pct}}, stellar:create(#{id => "a", name => "b", energy_pct => 101})},
        {{error, {bad_field, id}}, stellar:create(#{id => a, name => <<"b">>})},
        {{error, {bad_field, name}}, stellar:create(#{id => <<"a">>, name => 7})},
        {{error, {bad_field, id}}, stellar:create(#{id => <<"a b">>, name => <<"b">>})},
        {{error, {missing_field, name}}, stellar:create(#{id => <<"a">>})},
        {{error, {bad_field, mode}}, stellar:create(#{id => <<"a">>, name => <<"b">>, mode => warp})},
        {{error, {bad_field, memory_capacity_mb}},
         stellar:create(#{id => <<"a">>, name => <<"b">>, memory_capacity_mb => 0})},
        {{error, {bad_field, tle}}, stellar:create(#{id => <<"a">>, name => <<"b">>, tle => x})},
        {{error, {bad_tle, {line2, checksum}}},
         stellar:create(#{id => <<"a">>, name => <<"b">>,
                          tle => {Tle1, <<(binary:part(Tle2, 0, 68))/binary, "0">>}})},
        {{error, {unknown_fields, [colour]}}, stellar:create(#{id => <<"a">>, name => <<"b">>, colour => red})},
        {{error, {bad_spec, [1, 2]}}, stellar:create([1, 2])},
        {{error, not_found}, stellar:sat(<<"nope">>)},
        {{error, {bad_field, id}}, stellar:sat(42)},
        {{error, not_found}, stellar:stop("nope")},
        {{error, not_found}, stellar:crash(<<"nope">>)},
        {{error, not_found}, stellar:set_mode(<<"nope">>, safe)},
        {{error, {bad_mode, warp}}, stellar:set_mode(<<"iss">>, warp)},
        {{error, {bad_mode, 42}}, stellar:set_mode(<<"iss">>, 42)},
        {{error, {invalid_transition, safe, science}}, stellar:set_mode(<<"iss">>, science)},
        {{error, {unknown_command, warp}}, stellar:command(<<"iss">>, warp, #{})},
        {{error, {bad_args, x}}, stellar:command(<<"iss">>, noop, x)},
        {{error, {bad_command, "noop"}}, stellar:command(<<"iss">>, "noop", #{})},
        {{error, {bad_mode, warp}}, stellar:command(<<"iss">>, set_mode, #{mode => warp})}
    ],
    [?assertEqual(Expected, Got) || {Expected, Got} <- Errors],
    {ok, #{id := <<"iss">>, name := <<"ISS">>, mode := safe, tle := {Tle1, Tle2}}} = stellar:sat("iss"),
    ?assertEqual([<<"iss">>], [Id || #{id := Id} <- stellar:sats()]),
    ?assertEqual(Shadows, stellar_sat_sup:shadows()),
    ?assertEqual(Running, stellar_ct:running_sats()),
    ?assertEqual(Sup, whereis(stellar_sup)).

create_many_answers_each_spec() ->
    [{doc, "create_many/1 (an import) answers each spec in order as create/1 would: new ones "
           "run, a repeated or known id already exists, a bad spec gets its own error and "
           "creates nothing; more than one store chunk (2,000) goes through too."}].
create_many_answers_each_spec(_Config) ->
    {ok, <<"known">>} = stellar:create(#{id => <<"known">>, name => <<"Known">>}),
    Specs = [#{id => <<"imp-1">>, name => <<"One">>},
             #{id => <<"known">>, name => <<"Again">>},
             #{id => <<"imp-2">>, name => <<"Two">>, energy_pct => 101},
             #{id => <<"imp-3">>, name => <<"Three">>, mode => safe},
             #{id => <<"imp-1">>, name => <<"Twice">>},
             [not_a_map]],
    ?assertEqual([{ok, <<"imp-1">>}, {error, already_exists}, {error, {bad_field, energy_pct}},
                  {ok, <<"imp-3">>}, {error, already_exists}, {error, {bad_spec, [not_a_map]}}],
                 stellar:create_many(Specs)),
    _ = wait_running([<<"known">>, <<"imp-1">>, <<"imp-3">>], ?WAIT_MS),
    ?assertMatch({ok, #{name := <<"One">>}}, stellar:sat(<<"imp-1">>)),
    ?assertMatch({ok, #{mode := safe}}, stellar:sat(<<"imp-3">>)),
    ?assertMatch({ok, #{name := <<"Known">>}}, stellar:sat(<<"known">>)),
    ?assertEqual({error, not_found}, stellar:sat(<<"imp-2">>)),
    Many = [iolist_to_binary(io_lib:format("bulk-~4..0b", [I])) || I <- lists:seq(1, 2500)],
    Answers = stellar:create_many([#{id => Id, name => Id} || Id <- Many]),
    ?assertEqual([{ok, Id} || Id <- Many], Answers),
    ?assertEqual(2500 + 3, length(stellar:sats())),
    ?assertEqual([], stellar:create_many([])),
    ?assertEqual({error, {bad_specs, #{id => <<"x">>}}}, stellar:create_many(#{id => <<"x">>})).

%% Helpers.

create_n(N) ->
    Ids = [iolist_to_binary(io_lib:format("sat-~2..0b", [I])) || I <- lists:seq(1, N)],
    [{ok, Id} = stellar:create(#{id => Id, name => <<"Sat ", Id/binary>>}) || Id <- Ids],
    Ids.

%% Waits until every id has a running actor; returns running_sats().
wait_running(Ids, Ms) ->
    stellar_ct:wait_until("satellites running", fun() ->
        Running = stellar_ct:running_sats(),
        lists:all(fun(Id) -> lists:keymember(Id, 1, Running) end, Ids) andalso {true, Running}
    end, Ms).

%% Waits until Id runs on an actor other than Old; returns the new one.
wait_new_actor(Id, Old) ->
    stellar_ct:wait_until("the crashed satellite running again", fun() ->
        case lists:keyfind(Id, 1, stellar_ct:running_sats()) of
            {Id, _, New} when New =/= Old -> {true, New};
            Other -> Other
        end
    end, ?WAIT_MS).

%% The number of actors on these sats nodes, as they report it.
actors_on(Nodes) ->
    lists:sum([begin {ok, #{actors := N}} = gen_server:call({sats, Node}, load, 5000), N end
               || Node <- Nodes]).

%% Whether a (Python) process is alive: a monitor answers at once when it is not.
is_process_alive_remote(Pid) ->
    Ref = erlang:monitor(process, Pid),
    receive
        {'DOWN', Ref, process, Pid, _} -> false
    after 500 ->
        erlang:demonitor(Ref, [flush]),
        true
    end.
