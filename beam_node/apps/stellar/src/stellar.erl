%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The API for the Erlang remote shell (`make shell').
-module(stellar).

-export([nodes/0]).
-export([ping/1]).

-type node_info() :: #{name := node(), role := atom(), status := stellar_py_node:status(),
                       restarts := non_neg_integer(), os_pid := non_neg_integer() | undefined}.
-export_type([node_info/0]).

%% This BEAM node, then each Python node that it supervises.
-spec nodes() -> [node_info()].
nodes() ->
    Self = #{name => node(), role => beam, status => up, restarts => 0,
             os_pid => list_to_integer(os:getpid())},
    [Self | stellar_py_node:info()].

%% Whether Node answers: `pong' or `pang' (as net_adm:ping/1).
-spec ping(node()) -> pong | pang.
ping(Node) when is_atom(Node) ->
    net_adm:ping(Node).
