%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Commands sent to a satellite and not answered yet, per satellite in arrival order: an ETS
%% ordered_set ({{SatId, Seq}, CommandId, Kind, Args}) owned by stellar_sup, so that it
%% outlives the shadow. A shadow restarted after its actor died sends its satellite's entries
%% again, in order, to the new actor: nothing acknowledged is lost with the actor, and the
%% actor's list of applied ids keeps a command that did get applied from applying twice.
-module(stellar_inflight).

-export([new_table/0]).
-export([add/4]).
-export([remove/2]).
-export([list/1]).
-export([count/1]).
-export([clear/1]).

-define(TAB, stellar_inflight).

-type entry() :: {binary(), atom(), map()}.
-export_type([entry/0]).

-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [ordered_set, public, named_table, {write_concurrency, true}]),
    ok.

%% Records a command for SatId (unless its id is there already); false when it was.
-spec add(binary(), binary(), atom(), map()) -> boolean().
add(SatId, CommandId, Kind, Args) ->
    case ets:select_count(?TAB, [{{{SatId, '_'}, CommandId, '_', '_'}, [], [true]}]) of
        0 ->
            Seq = erlang:unique_integer([monotonic, positive]),
            ets:insert(?TAB, {{SatId, Seq}, CommandId, Kind, Args});
        _ ->
            false
    end.

%% The command has its outcome.
-spec remove(binary(), binary()) -> ok.
remove(SatId, CommandId) ->
    _ = ets:select_delete(?TAB, [{{{SatId, '_'}, CommandId, '_', '_'}, [], [true]}]),
    ok.

%% SatId's commands in arrival order.
-spec list(binary()) -> [entry()].
list(SatId) ->
    [{C, K, A} || [C, K, A] <- ets:match(?TAB, {{SatId, '_'}, '$1', '$2', '$3'})].

-spec count(binary()) -> non_neg_integer().
count(SatId) ->
    ets:select_count(?TAB, [{{{SatId, '_'}, '_', '_', '_'}, [], [true]}]).

%% The satellite is gone.
-spec clear(binary()) -> ok.
clear(SatId) ->
    _ = ets:select_delete(?TAB, [{{{SatId, '_'}, '_', '_', '_'}, [], [true]}]),
    ok.
