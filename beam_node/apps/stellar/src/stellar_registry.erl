%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The shadows of this BEAM node by satellite id: a public ETS table ({Id, Pid}) that the
%% shadows write themselves, created with the catalog tables (stellar_sup owns it).
%%
%% Why not `global' names: in OTP 25 registering a global name gets slower as names pile up
%% (0.4 ms each at 10,000, 74% of the time to create a satellite), and every re-placement
%% re-registers. Here a claim is one ETS operation. Uniqueness across BEAM nodes is the
%% catalog's job: each entry names its owner node and shadow pid, any node finds a remote
%% shadow from there, and the catalog resolves two nodes claiming one id (see
%% stellar_catalog:merge/1).
-module(stellar_registry).

-export([new_table/0]).
-export([claim/1]).
-export([release/1]).
-export([whereis_local/1]).
-export([holds/2]).
-export([ids/0]).

-define(TAB, stellar_registry).

-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [set, public, named_table, {read_concurrency, true},
                          {write_concurrency, true}]),
    ok.

%% Registers the calling process as the shadow of Id on this node. A dead holder (a shadow
%% that crashed: nothing cleans up after a kill) is replaced atomically.
-spec claim(binary()) -> yes | {no, pid()}.
claim(Id) ->
    Self = self(),
    case ets:insert_new(?TAB, {Id, Self}) of
        true ->
            yes;
        false ->
            case ets:lookup(?TAB, Id) of
                [{_, Self}] ->
                    yes;
                [{_, Holder}] ->
                    case is_process_alive(Holder) of
                        true -> {no, Holder};
                        false -> replace(Id, Holder, Self)
                    end;
                [] ->
                    claim(Id)
            end
    end.

%% Removes the calling process's registration of Id (if it holds it).
-spec release(binary()) -> ok.
release(Id) ->
    true = ets:delete_object(?TAB, {Id, self()}),
    ok.

%% The live shadow of Id on this node.
-spec whereis_local(binary()) -> pid() | undefined.
whereis_local(Id) ->
    case ets:whereis(?TAB) =/= undefined andalso ets:lookup(?TAB, Id) of
        [{_, Pid}] ->
            case is_process_alive(Pid) of
                true -> Pid;
                false -> undefined
            end;
        _ ->
            undefined
    end.

%% Whether Pid holds Id's registration on this node, alive or not: the check of each tick
%% (stellar_ticks), where a shadow killed this instant does no harm (its actor, linked, goes
%% with it) and is_process_alive/1 on 100,000 pids a second, each a cache miss, was ~5 % of
%% BEAM's time.
-spec holds(binary(), pid()) -> boolean().
holds(Id, Pid) ->
    case ets:lookup(?TAB, Id) of
        [{_, Holder}] -> Holder =:= Pid;
        [] -> false
    end.

%% The ids of this node's live shadows, sorted.
-spec ids() -> [binary()].
ids() ->
    case ets:whereis(?TAB) of
        undefined -> [];
        _ -> lists:sort([Id || {Id, Pid} <- ets:tab2list(?TAB), is_process_alive(Pid)])
    end.

%% Compare-and-swap: takes Id over from the dead Holder unless another claimant was first.
replace(Id, Holder, Self) ->
    case ets:select_replace(?TAB, [{{Id, Holder}, [], [{{Id, {const, Self}}}]}]) of
        1 -> yes;
        0 -> claim(Id)
    end.
