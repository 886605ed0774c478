%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_config_tests).
-include_lib("eunit/include/eunit.hrl").

default_prefixes_test() ->
    Sats = #{role => sats, count => 2},
    ?assertEqual([Sats], stellar_config:default_prefixes([Sats], "stellar")),
    ?assertEqual([Sats#{prefix => "demo_sats"}], stellar_config:default_prefixes([Sats], "demo")),
    ?assertEqual([Sats#{prefix => "x"}], stellar_config:default_prefixes([Sats#{prefix => "x"}], "demo")),
    Named = #{role => echo, name => 'e@h'},
    ?assertEqual([Named], stellar_config:default_prefixes([Named], "demo")),
    ?assertEqual({ok, ['demo_sats1@h', 'demo_sats2@h']},
                 begin
                     {ok, Nodes} = stellar_config:validate_py_nodes(
                                     stellar_config:default_prefixes([Sats], "demo"), "h"),
                     {ok, [N || #{name := N} <- Nodes]}
                 end),
    ?assertEqual(foo, stellar_config:default_prefixes(foo, "demo")).

valid_py_nodes_test() ->
    Echo = #{role => echo, name => 'py_echo@127.0.0.1'},
    Orb = #{name => 'orbital@host-1', role => orbital},
    ?assertEqual({ok, []}, stellar_config:validate_py_nodes([], "h")),
    ?assertEqual({ok, [Echo, Orb]}, stellar_config:validate_py_nodes([Echo, Orb], "h")).

not_a_list_test() ->
    ?assertMatch({error, {py_nodes_not_a_list, foo}}, stellar_config:validate_py_nodes(foo, "h")).

bad_entries_test_() ->
    Bad = fun(Entry) -> stellar_config:validate_py_nodes([Entry], "h") end,
    [
        ?_assertMatch({error, {bad_py_node, {echo, x}, _}}, Bad({echo, x})),
        ?_assertMatch({error, {bad_py_node, #{role := echo}, _}}, Bad(#{role => echo})),
        ?_assertMatch({error, {bad_py_node_role, "echo"}}, Bad(#{role => "echo", name => 'a@b'})),
        ?_assertMatch({error, {bad_py_node_role, undefined}}, Bad(#{role => undefined, name => 'a@b'})),
        ?_assertMatch({error, {bad_py_node_name, 'nohost'}}, Bad(#{role => echo, name => nohost})),
        ?_assertMatch({error, {bad_py_node_name, '@host'}}, Bad(#{role => echo, name => '@host'})),
        ?_assertMatch({error, {bad_py_node_name, 'a@'}}, Bad(#{role => echo, name => 'a@'})),
        ?_assertMatch({error, {bad_py_node_name, 'a@b@c'}}, Bad(#{role => echo, name => 'a@b@c'})),
        ?_assertMatch({error, {bad_py_node_name, 'a b@c'}}, Bad(#{role => echo, name => 'a b@c'})),
        ?_assertMatch({error, {bad_py_node_name, "a@b"}}, Bad(#{role => echo, name => "a@b"})),
        ?_assertMatch({error, {unknown_py_node_keys, 'a@b', [cookie]}},
                      Bad(#{role => echo, name => 'a@b', cookie => secret}))
    ].

duplicate_names_test() ->
    E = #{role => echo, name => 'a@b'},
    ?assertEqual({error, {duplicate_py_node_name, 'a@b'}},
                 stellar_config:validate_py_nodes([E, E#{role => orbital}], "h")),
    ?assertEqual({error, {duplicate_py_node_name, 'sats2@h'}},
                 stellar_config:validate_py_nodes([#{role => sats, count => 2},
                                                   #{role => echo, name => 'sats2@h'}], "h")).

count_expands_test() ->
    V = fun(Entries) -> stellar_config:validate_py_nodes(Entries, "127.0.0.1") end,
    ?assertEqual({ok, [#{role => sats, name => 'sats1@127.0.0.1'},
                       #{role => sats, name => 'sats2@127.0.0.1'},
                       #{role => echo, name => 'py_echo@127.0.0.1'}]},
                 V([#{role => sats, count => 2}, #{role => echo, name => 'py_echo@127.0.0.1'}])),
    ?assertEqual({ok, [#{role => sats, name => 'b_sats1@127.0.0.1'}]},
                 V([#{role => sats, count => 1, prefix => "b_sats"}])),
    ?assertEqual({error, {bad_py_node_count, 0}}, V([#{role => sats, count => 0}])),
    ?assertEqual({error, {bad_py_node_count, two}}, V([#{role => sats, count => two}])),
    ?assertEqual({error, {bad_py_node_prefix, "a b"}}, V([#{role => sats, count => 1, prefix => "a b"}])),
    ?assertEqual({error, {bad_py_node_prefix, 7}}, V([#{role => sats, count => 1, prefix => 7}])),
    ?assertEqual({error, {unknown_py_node_keys, sats, [size]}},
                 V([#{role => sats, count => 1, size => 3}])),
    ?assertEqual({error, {bad_py_node_role, "sats"}}, V([#{role => "sats", count => 1}])).

tick_s_test_() ->
    [
        ?_assertEqual(ok, stellar_config:validate_tick_s(1.0)),
        ?_assertEqual(ok, stellar_config:validate_tick_s(2)),
        ?_assertEqual({error, {bad_tick_s, 0}}, stellar_config:validate_tick_s(0)),
        ?_assertEqual({error, {bad_tick_s, "1"}}, stellar_config:validate_tick_s("1"))
    ].

python_exe_test_() ->
    R = fun stellar_config:resolve_python_exe/3,
    [
        ?_assertEqual("/opt/x", R({ok, "/opt/x"}, "/env/y", "/cwd")),
        ?_assertEqual("/env/y", R(undefined, "/env/y", "/cwd")),
        ?_assertEqual("/cwd/.venv/bin/stellarops", R(undefined, false, "/cwd")),
        ?_assertEqual("/cwd/.venv/bin/stellarops", R(undefined, "", "/cwd"))
    ].

port_args_test() ->
    ?assertEqual(["node", "--role", "echo", "--name", "py_echo@127.0.0.1", "--stop-on-eof"],
                 stellar_py_node:port_args(#{role => echo, name => 'py_echo@127.0.0.1'})).

cookie_only_in_env_test() ->
    Args = stellar_py_node:port_args(#{role => echo, name => 'a@b'}),
    Beam = {"STELLAROPS_BEAM_NODE", atom_to_list(node())},
    ?assertEqual([{"STELLAROPS_COOKIE", "s3cr3t"}, {"STELLAROPS_TICK_S", "1.0"}, Beam],
                 stellar_py_node:port_env('s3cr3t', 1.0)),
    ?assertEqual([{"STELLAROPS_COOKIE", "c"}, {"STELLAROPS_TICK_S", "0.25"}, Beam],
                 stellar_py_node:port_env(c, 0.25)),
    ?assertEqual([{"STELLAROPS_COOKIE", "c"}, {"STELLAROPS_TICK_S", "2"}, Beam],
                 stellar_py_node:port_env(c, 2)),
    ?assertNot(lists:member("s3cr3t", Args)).

info_without_app_test() ->
    ?assertEqual([], stellar_py_node:info()),
    [#{name := Self, role := beam, status := up}] = stellar:nodes(),
    ?assertEqual(node(), Self).

cluster_defaults_test() ->
    ?assertEqual({ok, #{peers => [], dns => undefined, basename => "stellar", poll_ms => 5000,
                        nameservers => [], size => 1, failure_ms => 3000}},
                 stellar_config:validate_cluster(#{}, "stellar")),
    ?assertMatch({ok, #{peers := ['a@10.0.0.5'], dns := "stellar-headless.ops.svc.cluster.local",
                        basename := "ops", poll_ms := 100, nameservers := [{{127, 0, 0, 1}, 53}]}},
                 stellar_config:validate_cluster(
                   #{peers => ['a@10.0.0.5'], dns => "stellar-headless.ops.svc.cluster.local",
                     basename => "ops", poll_ms => 100, nameservers => [{{127, 0, 0, 1}, 53}]}, "x")).

bad_cluster_test_() ->
    Bad = fun(C) -> stellar_config:validate_cluster(C, "stellar") end,
    [
        ?_assertMatch({error, {cluster_not_a_map, [a]}}, Bad([a])),
        ?_assertMatch({error, {unknown_cluster_keys, [peer]}}, Bad(#{peer => []})),
        ?_assertMatch({error, {bad_cluster_peers, 'a@h', _}}, Bad(#{peers => 'a@h'})),
        ?_assertMatch({error, {bad_cluster_peers, ["a@h"], _}}, Bad(#{peers => ["a@h"]})),
        ?_assertMatch({error, {bad_cluster_peers, [nohost], _}}, Bad(#{peers => [nohost]})),
        ?_assertMatch({error, {bad_cluster_dns, name, _}}, Bad(#{dns => name})),
        ?_assertMatch({error, {bad_cluster_dns, "", _}}, Bad(#{dns => ""})),
        ?_assertMatch({error, {bad_cluster_dns, "a..b", _}}, Bad(#{dns => "a..b"})),
        ?_assertMatch({error, {bad_cluster_dns, "a b", _}}, Bad(#{dns => "a b"})),
        ?_assertMatch({error, {bad_cluster_basename, "a@b"}}, Bad(#{basename => "a@b"})),
        ?_assertMatch({error, {bad_cluster_basename, ""}}, Bad(#{basename => ""})),
        ?_assertMatch({error, {bad_cluster_poll_ms, 99}}, Bad(#{poll_ms => 99})),
        ?_assertMatch({error, {bad_cluster_poll_ms, 1.5}}, Bad(#{poll_ms => 1.5})),
        ?_assertMatch({error, {bad_cluster_nameservers, [{{1, 2, 3}, 53}]}}, Bad(#{nameservers => [{{1, 2, 3}, 53}]})),
        ?_assertMatch({error, {bad_cluster_nameservers, [{{1, 2, 3, 4}, 0}]}}, Bad(#{nameservers => [{{1, 2, 3, 4}, 0}]})),
        ?_assertMatch({error, {bad_cluster_size, 0, _}}, Bad(#{size => 0})),
        ?_assertMatch({error, {bad_cluster_size, 1001, _}}, Bad(#{size => 1001})),
        ?_assertMatch({error, {bad_cluster_size, "3", _}}, Bad(#{size => "3"})),
        ?_assertMatch({error, {bad_cluster_failure_ms, 299, _}}, Bad(#{failure_ms => 299})),
        ?_assertMatch({error, {bad_cluster_failure_ms, 2.5, _}}, Bad(#{failure_ms => 2.5})),
        ?_assertMatch({ok, #{size := 5, failure_ms := 1500}}, Bad(#{size => 5, failure_ms => 1500}))
    ].

%% The app does not start with a bad cluster value (stellar_config:check/0 includes it).
check_includes_cluster_test() ->
    application:load(stellar),
    ok = application:set_env(stellar, cluster, #{poll_ms => 0}),
    try
        ?assertMatch({error, {bad_cluster_poll_ms, 0}}, stellar_config:check())
    after
        application:unset_env(stellar, cluster)
    end.
