%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Two BEAM nodes on loopback: this ct node (A, two `sats' Python nodes) and a peer started
%% with OTP's `peer' module (B, one `sats' Python node), both running the app. Satellites are
%% created on both; when B goes away (its node halts, or its app stops), A takes over B's
%% satellites and every id keeps exactly one shadow in the cluster. Run through
%% scripts/test.sh; STELLAR_FAKE_SATS=1 replaces the Python nodes by stellar_fake_sats.
-module(stellar_cluster_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-define(A1, 'cta_sats1@127.0.0.1').
-define(A2, 'cta_sats2@127.0.0.1').
-define(B1, 'ctb_sats1@127.0.0.1').
-define(TICK_S, 0.2).

all() ->
    [both_nodes_listed, satellites_spread_and_replicated, takeover_when_node_halts,
     takeover_when_app_stops, same_ids_claimed_on_both, equal_claims_resolved,
     slow_sats_node_starts_each_actor_once].

init_per_suite(Config) ->
    ok = stellar_ct:require_distribution(),
    [{exe, stellar_ct:sats_exe(Config)} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Exe = ?config(exe, Config),
    ok = stellar_ct:start_app(Exe, [{py_nodes, [#{role => sats, count => 2, prefix => "cta_sats"}]},
                                    {tick_s, ?TICK_S}]),
    {ok, Peer, B} = peer:start(#{name => "ct_b", host => "127.0.0.1", longnames => true,
                                 args => ["-pa" | stellar_ct:own_code_path()]}),
    %% The peer is controlled over the distribution: erpc, not peer:call (which needs
    %% peer's alternative connection). A failed start stops it: end_per_testcase won't.
    try
        ok = erpc:call(B, stellar_ct, start_app,
                       [Exe, [{py_nodes, [#{role => sats, count => 1, prefix => "ctb_sats"}]},
                              {tick_s, ?TICK_S}]], 30000),
        _ = stellar_ct:wait_py_nodes_up([?A1, ?A2], 30000),
        _ = erpc:call(B, stellar_ct, wait_py_nodes_up, [[?B1], 30000], 35000)
    catch
        C:R:St ->
            catch peer:stop(Peer),
            stellar_ct:stop_app(),
            erlang:raise(C, R, St)
    end,
    [{peer, Peer}, {b, B} | Config].

end_per_testcase(_Case, Config) ->
    Peer = ?config(peer, Config),
    _ = is_process_alive(Peer) andalso catch peer:stop(Peer),
    stellar_ct:stop_app().

%% Cases.

both_nodes_listed() ->
    [{doc, "stellar:nodes() on either BEAM node lists both BEAM nodes and all three sats nodes."}].
both_nodes_listed(Config) ->
    B = ?config(b, Config),
    A = node(),
    Expected = lists:sort([{A, beam}, {B, beam}, {?A1, sats}, {?A2, sats}, {?B1, sats}]),
    Listed = fun(Nodes) -> lists:sort([{N, R} || #{name := N, role := R, status := up} <- Nodes]) end,
    stellar_ct:wait_until("nodes on A", fun() -> Listed(stellar:nodes()) =:= Expected end, 5000),
    stellar_ct:wait_until("nodes on B", fun() ->
        Listed(erpc:call(B, stellar, nodes, [])) =:= Expected
    end, 5000),
    ?assertMatch([#{beam := B}], [I || I = #{name := ?B1} <- stellar:nodes()]).

satellites_spread_and_replicated() ->
    [{doc, "Satellites created on both BEAM nodes spread over the three sats nodes; both catalogs list them all."}].
satellites_spread_and_replicated(Config) ->
    B = ?config(b, Config),
    {OnA, OnB} = create_on_both(B, 6),
    All = lists:sort(OnA ++ OnB),
    Running = wait_running(All, 5000),
    Hosts = lists:usort([Py || {_, Py, _} <- Running]),
    ?assertEqual([?A1, ?A2, ?B1], Hosts),
    ?assertEqual(All, stellar_ct:shadow_names()),
    ?assertEqual(All, erpc:call(B, stellar_ct, shadow_names, [])),
    Owners = fun(Sats) -> lists:sort([{Id, Beam} || #{id := Id, beam := Beam} <- Sats]) end,
    Expected = lists:sort([{Id, node()} || Id <- OnA] ++ [{Id, B} || Id <- OnB]),
    ?assertEqual(Expected, Owners(stellar:sats())),
    stellar_ct:wait_until("B's catalog", fun() ->
        Owners(erpc:call(B, stellar, sats, [])) =:= Expected
    end, 2000),
    ?assertEqual({error, already_exists},
                 erpc:call(B, stellar, create, [#{id => hd(OnA), name => <<"dup">>}])).

takeover_when_node_halts() ->
    [{doc, "B halts: A takes over B's satellites; each id has exactly one shadow, on A."}].
takeover_when_node_halts(Config) ->
    {Peer, B} = {?config(peer, Config), ?config(b, Config)},
    {OnA, OnB} = create_on_both(B, 6),
    All = lists:sort(OnA ++ OnB),
    _ = wait_running(All, 5000),
    T0 = erlang:monotonic_time(millisecond),
    ok = peer:stop(Peer),
    assert_all_on_this_node(All, 5000),
    ct:log("taken over after ~b ms", [erlang:monotonic_time(millisecond) - T0]).

takeover_when_app_stops() ->
    [{doc, "B's app stops (B stays up): A takes over; B's app starts again and gets its share "
           "back by moves (rebalancing), each id with one shadow and one actor throughout."}].
takeover_when_app_stops(Config) ->
    B = ?config(b, Config),
    {OnA, OnB} = create_on_both(B, 6),
    All = lists:sort(OnA ++ OnB),
    _ = wait_running(All, 5000),
    ok = erpc:call(B, application, stop, [stellar], 30000),
    assert_all_on_this_node(All, 5000),
    %% The peer is controlled over the distribution: erpc, not peer:call (which needs
    %% peer's alternative connection).
    ok = erpc:call(B, stellar_ct, start_app, [?config(exe, Config), []], 30000),
    _ = erpc:call(B, stellar_ct, wait_py_nodes_up, [[?B1], 30000], 35000),
    %% Even shares: 6 and 6 again, moved one by one; never two shadows for an id.
    stellar_ct:wait_until("B gets its share back", fun() ->
        Here = length(stellar_sat_sup:shadows()),
        There = length(erpc:call(B, stellar_sat_sup, shadows, [])),
        Names = stellar_ct:shadow_names(),
        ?assertEqual(lists:usort(Names), Names),  % an id is briefly on neither node, never on both
        ({Here, There} =:= {6, 6} andalso Names =:= All) orelse {Here, There}
    end, 30000),
    _ = wait_running(All, 10000),
    ?assertMatch(#{moved := 6, failed := 0}, stellar_catalog:rebalance_info()).

same_ids_claimed_on_both() ->
    [{doc, "Both BEAM nodes create the same 20 ids at once and then try to start second "
           "shadows: each id ends with exactly one shadow and one actor in the cluster."}].
same_ids_claimed_on_both(Config) ->
    B = ?config(b, Config),
    Ids = [iolist_to_binary(io_lib:format("race-~2..0b", [I])) || I <- lists:seq(1, 20)],
    Create = fun(Node) -> [erpc:call(Node, stellar, create, [#{id => Id, name => Id}]) || Id <- Ids] end,
    Racer = erpc:send_request(B, erlang, apply, [Create, [B]]),
    Here = Create(node()),
    There = erpc:receive_response(Racer, 30000),
    %% Per id, at least one side succeeded; any refusal says already_exists.
    [?assert(lists:member({ok, Id}, [H, T])) || {Id, H, T} <- lists:zip3(Ids, Here, There)],
    [?assert(R =:= {ok, Id} orelse R =:= {error, already_exists})
     || {Id, R} <- lists:zip(Ids, Here) ++ lists:zip(Ids, There)],
    %% A shadow started by hand next to a live one ends at once, on either node.
    [{ok, _} = erpc:call(N, stellar_sat_sup, start_shadow, [Id]) || N <- [node(), B], Id <- Ids],
    _ = wait_running(Ids, 10000),
    Everywhere = fun() -> [Id || Id <- stellar_ct:shadow_names(), lists:member(Id, Ids)] end,
    stellar_ct:wait_until("one shadow per id", fun() ->
        Seen = Everywhere(),
        Seen =:= Ids orelse {{missing, Ids -- Seen}, {twice, Seen -- Ids},
                             [{N, Id, erpc:call(N, stellar_registry, whereis_local, [Id]),
                               erpc:call(N, stellar_catalog, lookup, [Id])}
                              || Id <- lists:usort((Ids -- Seen) ++ (Seen -- Ids)), N <- [node(), B]]}
    end, 5000),
    Actors = fun() ->
        lists:sum([begin {ok, #{actors := K}} = gen_server:call({sats, P}, load), K end
                   || P <- [?A1, ?A2, ?B1]])
    end,
    stellar_ct:wait_until("one actor per id", fun() -> Actors() =:= length(Ids) end, 5000),
    %% Both catalogs agree on where each shadow runs.
    %% A shadow being replaced is briefly in neither catalog: poll again, don't crash on it.
    Where = fun(Node) -> [case erpc:call(Node, stellar_sat, whereis, [Id]) of
                              Pid when is_pid(Pid) -> node(Pid);
                              Other -> Other
                          end || Id <- Ids] end,
    stellar_ct:wait_until("catalogs agree", fun() ->
        OnA = Where(node()),
        (OnA =:= Where(B) andalso not lists:member(undefined, OnA)) orelse OnA
    end, 3000).

equal_claims_resolved() ->
    [{doc, "Each BEAM node's catalog says it owns one id and runs its shadow, both entries "
           "stamped alike (what ticks leave when the first answer to a double claim loses "
           "its race): the node with the smaller name keeps it, the other shadow yields."}].
equal_claims_resolved(Config) ->
    B = ?config(b, Config),
    A = node(),
    ?assert(A < B),
    Id = <<"claimed-twice">>,
    {ok, Id} = stellar:create(#{id => Id, name => Id}),
    _ = wait_running([Id], 10000),
    Shadow = stellar_sat:whereis(Id),
    ?assertEqual(A, node(Shadow)),
    stellar_ct:wait_until("the entry on B", fun() ->
        element(1, erpc:call(B, stellar_catalog, lookup, [Id])) =:= ok
    end, 5000),
    %% A second shadow, on B: a stand-in registered there that ends when told to yield.
    Test = self(),
    Second = erlang:spawn(B, fun() ->
        yes = stellar_registry:claim(Id),
        Test ! {claimed, self()},
        receive {'$gen_cast', yield} -> ok = stellar_registry:release(Id), Test ! {yielded, self()} end
    end),
    receive {claimed, Second} -> ok after 5000 -> ct:fail("the second shadow did not claim ~s", [Id]) end,
    %% The timing cannot be caused for real: both catalogs are given their claim, stamped
    %% alike, as a peer's merge (the message they exchange), here first so that the rounds
    %% that follow carry nothing newer.
    {ok, Entry} = stellar_catalog:lookup(Id),
    At = erlang:system_time(millisecond) + 60000,
    gen_server:cast(stellar_catalog, {merge, B, [Entry#{updated_at => At}]}),
    gen_server:cast({stellar_catalog, B}, {merge, A, [Entry#{owner => B, shadow => Second, updated_at => At}]}),
    receive {yielded, Second} -> ok after 10000 -> ct:fail("the shadow on B never yielded") end,
    stellar_ct:wait_until("B's entry names A's shadow", fun() ->
        case erpc:call(B, stellar_catalog, lookup, [Id]) of
            {ok, #{owner := A, shadow := Shadow}} -> true;
            Other -> Other
        end
    end, 5000),
    ?assertEqual(Shadow, stellar_sat:whereis(Id)),
    ?assertEqual(1, length([I || I <- stellar_ct:shadow_names(), I =:= Id])).

%% Helpers.

slow_sats_node_starts_each_actor_once() ->
    [{doc, "One sats node killed while the other does not answer (SIGSTOP for 8 s): the killed "
           "node's satellites wait for the stopped one (the only node up) instead of giving up "
           "and placing again on the killed node once it is back; after SIGCONT every sats node "
           "hosts as many actors as the catalog places there. A shadow that gave up after 5 s "
           "left, on the stopped node, an actor nobody linked, running beside the new one."}].
slow_sats_node_starts_each_actor_once(_Config) ->
    Ids = [iolist_to_binary(io_lib:format("slow-~2..0b", [I])) || I <- lists:seq(1, 10)],
    [{ok, Id} = stellar:create(#{id => Id, name => Id}) || Id <- Ids],
    _ = wait_running(Ids, 30000),
    OsPid = fun(Py) -> hd([P || #{name := N, os_pid := P} <- stellar_py_node:info(), N =:= Py]) end,
    Signal = fun(Sig, P) -> os:cmd("kill -" ++ Sig ++ " " ++ integer_to_list(P)) end,
    {Killed, Stopped} = {OsPid(?A1), OsPid(?A2)},
    StoppedAt = erlang:monotonic_time(millisecond),
    _ = Signal("STOP", Stopped),
    try
        _ = Signal("KILL", Killed),
        stellar_ct:wait_until("the killed sats node up again", fun() ->
            [{Status, P}] = [{S, P} || #{name := N, status := S, os_pid := P} <- stellar_py_node:info(), N =:= ?A1],
            Status =:= up andalso P =/= Killed
        end, 60000),
        timer:sleep(max(0, 8000 - (erlang:monotonic_time(millisecond) - StoppedAt)))
    after
        Signal("CONT", Stopped)
    end,
    _ = wait_running(Ids, 60000),
    Actors = fun(Py) -> {ok, #{actors := K}} = gen_server:call({sats, Py}, load, 10000), K end,
    stellar_ct:wait_until("as many actors as placed on each sats node", fun() ->
        Hosted = [{Py, Actors(Py)} || Py <- [?A1, ?A2]],
        Placed = [{Py, stellar_catalog:satellite_count(py, Py)} || Py <- [?A1, ?A2]],
        Hosted =:= Placed orelse {Hosted, Placed}
    end, 15000),
    ?assertEqual(length(Ids), lists:sum([Actors(Py) || Py <- [?A1, ?A2]])).

create_on_both(B, N) ->
    Ids = fun(P) -> [iolist_to_binary(io_lib:format("~s-~2..0b", [P, I])) || I <- lists:seq(1, N)] end,
    OnA = Ids("a"),
    OnB = Ids("b"),
    [{ok, Id} = stellar:create(#{id => Id, name => Id}) || Id <- OnA],
    [{ok, Id} = erpc:call(B, stellar, create, [#{id => Id, name => Id}]) || Id <- OnB],
    {OnA, OnB}.

wait_running(Ids, Ms) ->
    stellar_ct:wait_until("satellites running", fun() ->
        Running = stellar_ct:running_sats(),
        lists:all(fun(Id) -> lists:keymember(Id, 1, Running) end, Ids) andalso {true, Running}
    end, Ms).

%% Every id runs, with its one shadow on this node and its actor on this node's sats nodes.
assert_all_on_this_node(All, Ms) ->
    Self = node(),
    stellar_ct:wait_until("all satellites running under this node", fun() ->
        Running = stellar_ct:running_sats(),
        Here = lists:sort([Id || {Id, Py, _} <- Running, lists:member(Py, [?A1, ?A2])]),
        Owned = lists:sort([Id || #{id := Id, beam := Beam} <- stellar:sats(), Beam =:= Self]),
        (Here =:= All andalso Owned =:= All) orelse {Here, Owned}
    end, Ms),
    ?assertEqual(All, stellar_ct:shadow_names()),
    ?assertEqual(All, [Id || #{id := Id} <- stellar:sats()]),
    ?assertEqual(length(All), length(stellar_sat_sup:shadows())),
    [?assertEqual(Self, node(stellar_sat:whereis(Id))) || Id <- All],
    stellar_ct:wait_until("one actor per satellite", fun() ->
        lists:sum([begin {ok, #{actors := K}} = gen_server:call({sats, P}, load), K end
                   || P <- [?A1, ?A2]]) =:= length(All)
    end, 3000).
