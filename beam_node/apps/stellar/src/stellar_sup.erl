%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Top supervisor: one stellar_py_node child per configured Python node.
-module(stellar_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    %% The supervisor owns the table of Python node states, as ranch_sup does: it outlives
    %% the children, so restart counts survive their restarts.
    ok = stellar_py_node:new_table(),
    {ok, PyNodes} = stellar_config:py_nodes(),
    {Intensity, Period} = stellar_config:restart_intensity(),
    Procs = [stellar_py_node:child_spec(PyNode) || PyNode <- PyNodes],
    {ok, {#{strategy => one_for_one, intensity => Intensity, period => Period}, Procs}}.
