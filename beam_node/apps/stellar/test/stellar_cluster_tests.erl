%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% stellar_cluster's pure parts (the lookup passed as a fun) and its DNS lookup against a real
%% nameserver: a UDP server in this test answering with OTP's own DNS codec (inet_dns).
-module(stellar_cluster_tests).
-include_lib("eunit/include/eunit.hrl").

config(Overrides) ->
    {ok, C} = stellar_config:validate_cluster(Overrides, "stellar"),
    C.

static_peers_only_test() ->
    C = config(#{peers => ['b@h', 'a@h', 'b@h']}),
    NoDns = fun(_) -> error(must_not_be_called) end,
    ?assertEqual({['a@h', 'b@h'], ok}, stellar_cluster:discover(C, NoDns)).

dns_peers_are_basename_at_ip_test() ->
    C = config(#{dns => "stellar.local", peers => ['x@h']}),
    Lookup = fun("stellar.local") -> {ok, [{10, 0, 0, 7}, {10, 0, 0, 5}, {10, 0, 0, 7}]} end,
    ?assertEqual({['stellar@10.0.0.5', 'stellar@10.0.0.7', 'x@h'], ok}, stellar_cluster:discover(C, Lookup)),
    Other = config(#{dns => "stellar.local", basename => "ops"}),
    ?assertEqual({['ops@10.0.0.5', 'ops@10.0.0.7'], ok}, stellar_cluster:discover(Other, Lookup)).

failed_lookup_keeps_static_peers_test() ->
    C = config(#{dns => "gone.local", peers => ['x@h']}),
    ?assertEqual({['x@h'], {error, {dns, "gone.local", nxdomain}}},
                 stellar_cluster:discover(C, fun(_) -> {error, nxdomain} end)).

node_names_ignore_non_ipv4_test() ->
    ?assertEqual(['s@1.2.3.4'], stellar_cluster:node_names("s", [{1, 2, 3, 4}, {0, 0, 0, 0, 0, 0, 0, 1}, {1, 2, 3, 4}])),
    ?assertEqual([], stellar_cluster:node_names("s", [])).

targets_test() ->
    ?assertEqual(['c@h'], stellar_cluster:targets('a@h', ['a@h', 'b@h', 'c@h', 'c@h'], ['b@h'])),
    ?assertEqual([], stellar_cluster:targets('a@h', ['a@h'], [])),
    ?assertEqual(['b@h'], stellar_cluster:targets('a@h', ['b@h'], ['z@h'])).

joins_and_leaves_are_counted_per_node_test() ->
    M1 = stellar_cluster:joined('b@h', 10, #{}),
    ?assertEqual(#{'b@h' => #{status => up, joins => 1, leaves => 0, since => 10}}, M1),
    M2 = stellar_cluster:left('b@h', connection_closed, 20, M1),
    ?assertEqual(#{status => down, joins => 1, leaves => 1, since => 20, reason => connection_closed},
                 maps:get('b@h', M2)),
    M3 = stellar_cluster:joined('b@h', 30, M2),
    ?assertEqual(#{status => up, joins => 2, leaves => 1, since => 30}, maps:get('b@h', M3)),
    ?assertMatch(#{'c@h' := #{status := down, joins := 0, leaves := 1}},
                 stellar_cluster:left('c@h', x, 40, M3)).

forget_only_long_gone_undiscovered_nodes_test() ->
    M = lists:foldl(fun({N, F}, Acc) -> F(N, Acc) end, #{},
                    [{'up@h', fun(N, A) -> stellar_cluster:joined(N, 10, A) end},
                     {'old@h', fun(N, A) -> stellar_cluster:left(N, x, 10, A) end},
                     {'new@h', fun(N, A) -> stellar_cluster:left(N, x, 500, A) end},
                     {'named@h', fun(N, A) -> stellar_cluster:left(N, x, 10, A) end}]),
    ?assertEqual(['named@h', 'new@h', 'up@h'], lists:sort(maps:keys(stellar_cluster:forget(M, ['named@h'], 100)))),
    ?assertEqual(M, stellar_cluster:forget(M, [], 0)).

%% The real resolver path (inet_res) against a real nameserver on loopback.
dns_lookup_against_a_nameserver_test() ->
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    {ok, Port} = inet:port(Sock),
    Records = #{"stellar.test" => [{10, 1, 0, 2}, {10, 1, 0, 3}], "one.test" => [{10, 1, 0, 9}]},
    Server = spawn_link(fun() -> serve(Sock, Records) end),
    ok = gen_udp:controlling_process(Sock, Server),
    Ns = [{{127, 0, 0, 1}, Port}],
    try
        {ok, Ips} = stellar_cluster:dns_lookup("stellar.test", Ns),
        ?assertEqual([{10, 1, 0, 2}, {10, 1, 0, 3}], lists:sort(Ips)),
        ?assertEqual({ok, [{10, 1, 0, 9}]}, stellar_cluster:dns_lookup("one.test", Ns)),
        ?assertEqual({error, nxdomain}, stellar_cluster:dns_lookup("none.test", Ns)),
        C = config(#{dns => "stellar.test", nameservers => Ns}),
        ?assertEqual({['stellar@10.1.0.2', 'stellar@10.1.0.3'], ok},
                     stellar_cluster:discover(C, fun(N) -> stellar_cluster:dns_lookup(N, Ns) end))
    after
        unlink(Server),
        exit(Server, kill)
    end.

serve(Sock, Records) ->
    {ok, {Ip, Port, Query}} = gen_udp:recv(Sock, 0),
    {ok, Msg} = inet_dns:decode(Query),
    [Q] = inet_dns:msg(Msg, qdlist),
    Name = inet_dns:dns_query(Q, domain),
    Answers = [inet_dns:make_rr([{domain, Name}, {type, a}, {class, in}, {ttl, 0}, {data, A}])
               || inet_dns:dns_query(Q, type) =:= a, A <- maps:get(Name, Records, [])],
    Rcode = case maps:is_key(Name, Records) of true -> 0; false -> 3 end,  % 3: NXDOMAIN
    Header = inet_dns:make_header(inet_dns:msg(Msg, header), [{qr, true}, {aa, true}, {rcode, Rcode}]),
    Reply = inet_dns:make_msg(Msg, [{header, Header}, {anlist, Answers}]),
    ok = gen_udp:send(Sock, Ip, Port, inet_dns:encode(Reply)),
    serve(Sock, Records).

%% The partition rule: a strict majority of the expected size.
quorum_is_a_strict_majority_test_() ->
    [?_assert(stellar_cluster:quorum_of(1, 1)),
     ?_assertNot(stellar_cluster:quorum_of(1, 2)),
     ?_assert(stellar_cluster:quorum_of(2, 2)),
     ?_assertNot(stellar_cluster:quorum_of(1, 3)),
     ?_assert(stellar_cluster:quorum_of(2, 3)),
     ?_assertNot(stellar_cluster:quorum_of(2, 4)),
     ?_assert(stellar_cluster:quorum_of(3, 4)),
     ?_assert(stellar_cluster:quorum_of(3, 5)),
     ?_assertNot(stellar_cluster:quorum_of(2, 5)),
     %% A node that does not vote (no sats node) counts 0 for itself: alone it has no quorum,
     %% except in a cluster of one, which always has it.
     ?_assertNot(stellar_cluster:quorum_of(0, 3)),
     ?_assert(stellar_cluster:quorum_of(0, 1))].

%% Heartbeats every sixth of the failure time; a peer counts for quorum two heartbeats less
%% than the failure time, so a minority stops before the majority cuts it and takes over.
failure_timings_test() ->
    ?assertEqual(500, stellar_cluster:heartbeat_ms(3000)),
    ?assertEqual(2000, stellar_cluster:fresh_ms(3000)),
    ?assertEqual(50, stellar_cluster:heartbeat_ms(300)),
    ?assertEqual(200, stellar_cluster:fresh_ms(300)),
    [?assert(stellar_cluster:fresh_ms(F) < F andalso stellar_cluster:fresh_ms(F) >= stellar_cluster:heartbeat_ms(F))
     || F <- [300, 1000, 3000, 600000]].

%% Traffic on a peer's connection is life too: bytes read since the last look refresh it;
%% the same count leaves it as it was; a peer no longer connected is dropped; an unknown peer
%% (never heard by heartbeat: not a stellar node) is not added.
alive_by_traffic_test() ->
    H0 = #{'b@h' => {100, 7}},
    ?assertEqual(#{'b@h' => {250, 9}}, stellar_cluster:alive('b@h', 9, 250, H0)),
    ?assertEqual(H0, stellar_cluster:alive('b@h', 7, 250, H0)),
    ?assertEqual(#{}, stellar_cluster:alive('b@h', undefined, 250, H0)),
    ?assertEqual(H0, stellar_cluster:alive('c@h', 3, 250, H0)).

%% A heartbeat that came Late ms late (this node was not running) credits every peer with the
%% delay, never past now: a peer last heard 2,900 ms ago is not silent for 3,000 ms if 1,000 of
%% them were this node's own stall; on time, nothing changes.
discount_own_stall_test() ->
    H = #{'b@h' => {1000, 7}, 'c@h' => {3800, 9}},
    ?assertEqual(H, stellar_cluster:discount(H, 0, 3900)),
    ?assertEqual(#{'b@h' => {2000, 7}, 'c@h' => {3900, 9}}, stellar_cluster:discount(H, 1000, 3900)),
    #{'b@h' := {At, _}} = stellar_cluster:discount(H, 1000, 3900),
    ?assert(3900 - At < 3000).
