%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Python nodes kept local (py_nodes_local): where they live and what they are named, and where
%% a call to another host's Python node goes (stellar_py_node:call/4).
-module(stellar_py_local_tests).
-include_lib("eunit/include/eunit.hrl").

names(PyNodes, Host) ->
    {ok, Nodes} = stellar_config:validate_py_nodes(PyNodes, Host),
    [N || #{name := N} <- Nodes].

%% A BEAM node on loopback keeps today's names; elsewhere the names carry its host, on loopback.
local_names_test_() ->
    Sats = [#{role => sats, count => 2}],
    [?_assertEqual(['sats1@127.0.0.1', 'sats2@127.0.0.1'],
                   names(Sats, stellar_config:py_host("127.0.0.1", true))),
     ?_assertEqual(['sats1-10-0-0-5@127.0.0.1', 'sats2-10-0-0-5@127.0.0.1'],
                   names(Sats, stellar_config:py_host("10.0.0.5", true))),
     ?_assertEqual(['sats1-stellar-0-stellar-headless@127.0.0.1'],
                   names([#{role => sats, count => 1}],
                         stellar_config:py_host("stellar-0.stellar-headless", true))),
     %% Not local: named after the BEAM node's host, as before.
     ?_assertEqual(['sats1@10.0.0.5', 'sats2@10.0.0.5'],
                   names(Sats, stellar_config:py_host("10.0.0.5", false))),
     %% An entry with its own name keeps it.
     ?_assertEqual(['py_echo@127.0.0.1'],
                   names([#{role => echo, name => 'py_echo@127.0.0.1'}],
                         stellar_config:py_host("10.0.0.5", true)))].

%% Two hosts never share a Python node name.
names_differ_per_host_test() ->
    Roles = [#{role => R, count => 2} || R <- [sats, orbital, gateway, store, scheduler]],
    A = names(Roles, stellar_config:py_host("10.0.0.5", true)),
    B = names(Roles, stellar_config:py_host("10.0.0.6", true)),
    ?assertEqual([], A -- (A -- B)).

py_nodes_local_setting_test_() ->
    {setup,
     fun() -> application:load(stellar) end,
     fun(_) -> application:unset_env(stellar, py_nodes_local) end,
     [fun() ->
          application:set_env(stellar, py_nodes_local, false),
          ?assertNot(stellar_config:py_nodes_local()),
          application:unset_env(stellar, py_nodes_local),
          ?assert(stellar_config:py_nodes_local()),
          application:set_env(stellar, py_nodes_local, maybe),
          ?assertMatch({error, {bad_py_nodes_local, maybe, _}}, stellar_config:check())
      end]}.

%% A Python node this BEAM node does not know is called directly (and fails as
%% gen_server:call does); a local process stands in for a live one.
call_direct_test() ->
    ?assertExit({{nodedown, 'orbital_gone@127.0.0.1'}, _},
                stellar_py_node:call('orbital_gone@127.0.0.1', orbital, ping, 1000)).
