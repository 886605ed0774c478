%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The satellite shadows of this BEAM node, one stellar_sat child each (transient: a shadow
%% that ends `normal' is not restarted; one that stops because its actor died is). Restart
%% intensity from the app env (sat_sup_intensity restarts in sat_sup_period s).
-module(stellar_sat_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([child_spec/0]).
-export([start_shadow/1]).
-export([shadows/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => infinity, type => supervisor, modules => [?MODULE]}.

%% Starts the shadow of satellite Id (its entry must be in the catalog).
-spec start_shadow(binary()) -> {ok, pid()} | {error, term()}.
start_shadow(Id) when is_binary(Id) ->
    case supervisor:start_child(?MODULE, [Id]) of
        {ok, Pid} when is_pid(Pid) -> {ok, Pid};
        {error, Reason} -> {error, Reason}
    end.

%% The shadows running on this node.
-spec shadows() -> [pid()].
shadows() ->
    [Pid || {_, Pid, _, _} <- supervisor:which_children(?MODULE), is_pid(Pid)].

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    {Intensity, Period} = stellar_config:sat_restart_intensity(),
    Shadow = #{id => stellar_sat, start => {stellar_sat, start_link, []}, restart => transient,
               shutdown => 5000, type => worker, modules => [stellar_sat]},
    {ok, {#{strategy => simple_one_for_one, intensity => Intensity, period => Period}, [Shadow]}}.
