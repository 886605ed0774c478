%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_app).
-behaviour(application).

-export([start/2]).
-export([stop/1]).

-define(FILTER, stellar_quiet_actor_down).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    case stellar_config:check() of
        ok ->
            _ = application:get_env(stellar, quiet_actor_down, true) andalso
                logger:add_primary_filter(?FILTER, {fun stellar_sat:log_filter/2, []}),
            stellar_sup:start_link();
        {error, Reason} ->
            {error, {bad_config, Reason}}
    end.

-spec stop(term()) -> ok.
stop(_State) ->
    _ = logger:remove_primary_filter(?FILTER),
    ok.
