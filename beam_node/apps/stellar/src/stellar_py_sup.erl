%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% One stellar_py_node child per configured Python node; restart intensity from the app env
%% (sup_intensity restarts in sup_period s).
-module(stellar_py_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([child_spec/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => infinity, type => supervisor, modules => [?MODULE]}.

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    {ok, PyNodes} = stellar_config:py_nodes(),
    {Intensity, Period} = stellar_config:restart_intensity(),
    Procs = [stellar_py_node:child_spec(PyNode) || PyNode <- PyNodes],
    {ok, {#{strategy => one_for_one, intensity => Intensity, period => Period}, Procs}}.
