%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Top supervisor: the event bus, the satellite catalog, peer discovery (stellar_cluster), the
%% Python nodes (stellar_py_sup) and the satellite shadows (stellar_sat_sup), started in that order.
-module(stellar_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    %% The supervisor owns the tables, as ranch_sup does: they outlive the children, so that
    %% restart counts, the catalog and event ids survive the restart of any child.
    ok = stellar_py_node:new_table(),
    ok = stellar_events:new_table(),
    ok = stellar_catalog:new_tables(),
    ok = stellar_inflight:new_table(),
    ok = stellar_store:new_table(),
    ok = stellar_metrics:new_table(),
    {Intensity, Period} = stellar_config:restart_intensity(),
    Procs = [
        stellar_events:child_spec(),
        stellar_catalog:child_spec(),
        stellar_ticks:child_spec(),  % the sats nodes' batched ticks, into the catalog
        %% After the catalog: the peers it connects to find this node's catalog running.
        stellar_cluster:child_spec(),
        stellar_py_sup:child_spec(),
        stellar_sat_sup:child_spec(),
        %% Last: it stops first, and writes the final checkpoint while shadows and the store
        %% node still run.
        stellar_store:child_spec()
    ],
    {ok, {#{strategy => one_for_one, intensity => Intensity, period => Period}, Procs}}.
