%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Three BEAM nodes on loopback, each with one real `sats' Python node, clustered with an
%% expected size of 3: this ct node (A) and two peers started with OTP's `peer' module (B over
%% the distribution, C over its standard I/O, so that C can still be driven while it is cut off
%% from A and B). Quorum, rebalancing and the partition rule of stellar_cluster/stellar_catalog:
%% a node that comes back gets its share again; a node cut off (net_kernel:allow/1 refuses its
%% peers in both directions, then disconnect_node/1) stops its copies while the majority runs
%% them; after the heal there is exactly one shadow and one actor per satellite.
-module(stellar_partition_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-define(A1, 'pta_sats1@127.0.0.1').
-define(B1, 'ptb_sats1@127.0.0.1').
-define(C1, 'ptc_sats1@127.0.0.1').
-define(TICK_S, 0.5).
-define(SATS, 150).

all() ->
    [quorum_needs_two_of_three, returning_node_gets_its_share, cut_off_node_stops_its_copies,
     non_voter_makes_no_majority].

init_per_suite(Config) ->
    ok = stellar_ct:require_distribution(),
    %% As rel/sys.config.src: else global disconnects the survivors of a cut from each other.
    {ok, false} =:= application:get_env(kernel, prevent_overlapping_partitions) orelse
        ct:fail("run with -kernel prevent_overlapping_partitions false (scripts/test.sh does)"),
    [{exe, stellar_ct:sats_exe(Config)} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Exe = ?config(exe, Config),
    A = node(),
    B = 'ptb@127.0.0.1',
    C = 'ptc@127.0.0.1',
    ok = stellar_ct:start_app(Exe, env("pta_sats", [B, C])),
    {PeerB, B} = start_peer("ptb", standard, Exe, env("ptb_sats", [A, C])),
    {PeerC, C} = start_peer("ptc", standard_io, Exe, env("ptc_sats", [A, B])),
    Config1 = [{peer_b, PeerB}, {b, B}, {peer_c, PeerC}, {c, C} | Config],
    try
        _ = stellar_ct:wait_py_nodes_up([?A1], 60000),
        stellar_ct:wait_until("quorum on all three", fun() ->
            [has_quorum(N, Config1) || N <- [A, B, C]] =:= [true, true, true]
        end, 30000)
    catch
        Cl:R:St ->
            end_per_testcase(x, Config1),
            erlang:raise(Cl, R, St)
    end,
    Config1.

end_per_testcase(_Case, Config) ->
    [catch peer:stop(P) || K <- [peer_b, peer_c], P <- [?config(K, Config)], is_pid(P), is_process_alive(P)],
    stellar_ct:stop_app().

env(Prefix, Peers) ->
    [{py_nodes, [#{role => sats, count => 1, prefix => Prefix}]}, {tick_s, ?TICK_S},
     {cluster, #{peers => Peers, size => 3, poll_ms => 200, failure_ms => 1500}},
     {catalog_reconcile, 500}, {rebalance_batch, 40}].

start_peer(Name, Connection, Exe, Env) ->
    Opts = #{name => Name, host => "127.0.0.1", longnames => true,
             args => ["-kernel", "prevent_overlapping_partitions", "false",
                      "-pa" | stellar_ct:own_code_path()]},
    {ok, Peer, Node} = case Connection of
        standard -> peer:start(Opts);
        standard_io -> peer:start(Opts#{connection => standard_io})
    end,
    ok = call({Peer, Node}, stellar_ct, start_app, [Exe, Env], 30000),
    {Peer, Node}.

%% A call on a peer: over the distribution (B), or over C's standard I/O (works while C is cut off).
call(Node, M, F, Args, Config) when is_atom(Node), is_list(Config) ->
    case Node =:= node() of
        true -> apply(M, F, Args);
        false -> call(peer_of(Node, Config), M, F, Args, 30000)
    end;
call({Peer, Node}, M, F, Args, Timeout) ->
    case Node of
        'ptc@127.0.0.1' -> peer:call(Peer, M, F, Args, Timeout);
        _ -> erpc:call(Node, M, F, Args, Timeout)
    end.

peer_of(Node, Config) ->
    case Node =:= ?config(b, Config) of
        true -> {?config(peer_b, Config), Node};
        false -> {?config(peer_c, Config), Node}
    end.

has_quorum(Node, Config) ->
    call(Node, stellar_cluster, has_quorum, [], Config).

shadows(Node, Config) ->
    call(Node, stellar_registry, ids, [], Config).

actors(PyNode, Node, Config) ->
    case call(Node, gen_server, call, [{sats, PyNode}, load], Config) of
        {ok, #{actors := K}} -> K
    end.

create(N) ->
    Ids = [iolist_to_binary(io_lib:format("pt-~3..0b", [I])) || I <- lists:seq(1, N)],
    [{ok, Id} = stellar:create(#{id => Id, name => Id}) || Id <- Ids],
    Ids.

%% Every id has exactly one shadow on Nodes, and their sats nodes run exactly one actor each.
one_each(Ids, Nodes, Config, Ms) ->
    Py = #{node() => ?A1, 'ptb@127.0.0.1' => ?B1, 'ptc@127.0.0.1' => ?C1},
    stellar_ct:wait_until("one shadow and one actor per satellite", fun() ->
        Held = lists:sort(lists:append([shadows(N, Config) || N <- Nodes])),
        Actors = lists:sum([actors(maps:get(N, Py), N, Config) || N <- Nodes]),
        (Held =:= Ids andalso Actors =:= length(Ids)) orelse {length(Held), Actors}
    end, Ms).

%% Shadows per node within 10 % of an even share.
spread(Nodes, Total, Config, Ms) ->
    Share = Total / length(Nodes),
    stellar_ct:wait_until("spread within 10 %", fun() ->
        Counts = [length(shadows(N, Config)) || N <- Nodes],
        (lists:sum(Counts) =:= Total andalso lists:all(fun(K) -> abs(K - Share) =< Share / 10 end, Counts))
            orelse Counts
    end, Ms).

%% Cases.

quorum_needs_two_of_three() ->
    [{doc, "size 3: each node sees a majority; quorum/0 says so; a node alone would not."}].
quorum_needs_two_of_three(Config) ->
    %% Two of three already make quorum (what init waited for): the third is heard a moment later.
    BC = lists:sort([?config(b, Config), ?config(c, Config)]),
    stellar_ct:wait_until("all three heard", fun() ->
        case stellar_cluster:quorum() of
            #{size := 3, seen := 3, has_quorum := true, peers := BC} -> true;
            Q -> Q
        end
    end, 30000),
    ?assertMatch(#{quorum := #{has_quorum := true}}, stellar:cluster()),
    ?assertNot(stellar_cluster:quorum_of(1, 3)).

returning_node_gets_its_share() ->
    [{doc, "Satellites created on A spread over A, B, C (within 10 %); B halts: A and C run "
           "them all; B comes back: it gets its share again by moves, one shadow per id."}].
returning_node_gets_its_share(Config) ->
    {B, C} = {?config(b, Config), ?config(c, Config)},
    Ids = create(?SATS),
    spread([node(), B, C], ?SATS, Config, 60000),
    one_each(Ids, [node(), B, C], Config, 30000),
    T0 = erlang:monotonic_time(millisecond),
    ok = peer:stop(?config(peer_b, Config)),
    one_each(Ids, [node(), C], Config, 30000),
    ct:pal("B's satellites run on A and C ~b ms after B halted", [erlang:monotonic_time(millisecond) - T0]),
    {PeerB, B} = start_peer("ptb", standard, ?config(exe, Config), env("ptb_sats", [node(), C])),
    T1 = erlang:monotonic_time(millisecond),
    spread([node(), B, C], ?SATS, [{peer_b, PeerB} | Config], 90000),
    one_each(Ids, [node(), B, C], [{peer_b, PeerB} | Config], 30000),
    ct:pal("rebalanced ~b ms after B started again: ~p", [erlang:monotonic_time(millisecond) - T1,
                                                           stellar_catalog:rebalance_info()]),
    peer:stop(PeerB).

cut_off_node_stops_its_copies() ->
    [{doc, "C is cut off from A and B: C loses quorum and stops its copies, A and B run every "
           "satellite; after the heal C gets its share back, one shadow and one actor per id."}].
cut_off_node_stops_its_copies(Config) ->
    {B, C} = {?config(b, Config), ?config(c, Config)},
    Ids = create(?SATS),
    spread([node(), B, C], ?SATS, Config, 60000),
    one_each(Ids, [node(), B, C], Config, 30000),
    %% The cut: C refuses A and B (both directions), then drops its connections to them.
    ok = call(C, net_kernel, allow, [[?C1]], Config),
    [true = call(C, erlang, disconnect_node, [N], Config) || N <- [node(), B]],
    stellar_ct:wait_until("C without quorum, no copies", fun() ->
        {has_quorum(C, Config), shadows(C, Config), actors(?C1, C, Config)} =:= {false, [], 0}
    end, 15000),
    one_each(Ids, [node(), B], Config, 30000),
    ?assertMatch(#{losses := 1, has_quorum := false}, call(C, stellar_cluster, quorum, [], Config)),
    %% Still cut (its peers keep trying to connect): C starts nothing.
    timer:sleep(3000),
    ?assertEqual({[], 0}, {shadows(C, Config), actors(?C1, C, Config)}),
    ?assertEqual(length(Ids), length(call(C, stellar_catalog, entries, [], Config))),
    %% The heal.
    ok = call(C, net_kernel, allow, [[node(), B]], Config),
    stellar_ct:wait_until("C has quorum again", fun() -> has_quorum(C, Config) end, 30000),
    spread([node(), B, C], ?SATS, Config, 90000),
    one_each(Ids, [node(), B, C], Config, 30000).

non_voter_makes_no_majority() ->
    [{doc, "D runs no satellites (no sats node: a gateway-only node), so it does not vote: C cut "
           "off from A and B but still connected to D has 1 of 3 voters and stops its copies; "
           "D, seeing the three voters, keeps quorum."}].
non_voter_makes_no_majority(Config) ->
    {B, C} = {?config(b, Config), ?config(c, Config)},
    EnvD = [{py_nodes, []}, {tick_s, ?TICK_S},
            {cluster, #{peers => [node(), B, C], size => 3, poll_ms => 200, failure_ms => 1500}}],
    {PeerD, D} = start_peer("ptd", standard, ?config(exe, Config), EnvD),
    try
        ?assertNot(erpc:call(D, stellar_cluster, is_voter, [])),
        stellar_ct:wait_until("D sees the three voters", fun() ->
            case erpc:call(D, stellar_cluster, quorum, []) of
                #{seen := 3, has_quorum := true} -> true;
                Q -> Q
            end
        end, 30000),
        Ids = create(?SATS),
        spread([node(), B, C], ?SATS, Config, 60000),
        ?assertEqual([], erpc:call(D, stellar_registry, ids, [])),
        %% The cut: C keeps only D (and its own sats node).
        ok = call(C, net_kernel, allow, [[?C1, D]], Config),
        [true = call(C, erlang, disconnect_node, [N], Config) || N <- [node(), B]],
        stellar_ct:wait_until("C connected to D, without quorum, no copies", fun() ->
            Seen = call(C, stellar_cluster, quorum, [], Config),
            Connected = lists:member(D, call(C, erlang, nodes, [], Config)),
            case {Connected, Seen, shadows(C, Config), actors(?C1, C, Config)} of
                {true, #{seen := 1, has_quorum := false}, [], 0} -> true;
                Other -> Other
            end
        end, 15000),
        one_each(Ids, [node(), B], Config, 30000),
        ?assert(erpc:call(D, stellar_cluster, has_quorum, [])),
        ok = call(C, net_kernel, allow, [[node(), B]], Config),
        stellar_ct:wait_until("C has quorum again", fun() -> has_quorum(C, Config) end, 30000),
        one_each(Ids, [node(), B, C], Config, 60000)
    after
        catch peer:stop(PeerD)
    end.
