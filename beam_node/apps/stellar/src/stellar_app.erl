%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_app).
-behaviour(application).

-export([start/2]).
-export([stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    case stellar_config:py_nodes() of
        {ok, _} -> stellar_sup:start_link();
        {error, Reason} -> {error, {bad_config, Reason}}
    end.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
