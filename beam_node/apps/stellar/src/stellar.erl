%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The API for the Erlang remote shell (`make shell'). Ids may be given as binaries or
%% strings; bad input gets an error tuple and changes nothing.
-module(stellar).

-export([sats/0]).
-export([sats_page/3]).
-export([sat/1]).
-export([create/1]).
-export([create_many/1]).
-export([stop/1]).
-export([set_mode/2]).
-export([set_tle/2]).
-export([command/3]).
-export([command/4]).
-export([crash/1]).
-export([nodes/0]).
-export([cluster/0]).
-export([ping/1]).
-export([tles/1]).
-export([propagate/2]).
-export([passes/5]).
-export([visible/2]).
-export([subscribe/2]).
-export([events_since/1]).
-export([last_event_id/0]).
-export([publish/3]).
-export([store_status/0]).
-export([metrics/0]).
-export([tasks/0]).
-export([task/1]).
-export([submit_task/1]).
-export([cancel_task/1]).
-export([plan/0]).

-define(SYNC_TIMEOUT, 5000).
%% Satellites per store call in create_many/1 (the store node's largest transaction).
-define(CREATE_CHUNK, 2000).

-type sat() :: #{id := binary(), name := binary(), mode := stellar_proto_v1:mode(),
                 energy_pct := float(), memory_used_mb := float(),
                 memory_capacity_mb := float(), tle := undefined | {binary(), binary()},
                 lat_deg := float() | undefined, lon_deg := float() | undefined,
                 alt_km := float() | undefined, in_sunlight := boolean() | undefined,
                 node := node() | undefined, beam := node(), status := placing | running,
                 updated_at := integer()}.
-type id() :: binary() | string().
-type node_info() :: #{name := node(), role := atom(), status := stellar_py_node:status(),
                       restarts := non_neg_integer(), os_pid := non_neg_integer() | undefined,
                       satellites := non_neg_integer(), beam => node(),
                       joins => non_neg_integer(), leaves => non_neg_integer()}.
-export_type([sat/0, id/0, node_info/0]).

%% Every satellite of the cluster, sorted by id.
-spec sats() -> [sat()].
sats() ->
    [sat_map(E) || E <- stellar_catalog:entries()].

%% One page of the satellites (sorted by id) that match Filter, and how many match: what the
%% HTTP list needs, without copying all of them to the gateway for each page (at 10,000
%% satellites that copy and its decoding were most of a list request). Filter values are the
%% names as binaries, compared with the atoms' names: no atom is made from a query.
-spec sats_page(#{mode => binary(), node => binary(), status => binary()},
                non_neg_integer(), non_neg_integer()) -> {non_neg_integer(), [sat()]}.
sats_page(Filter, Offset, Limit) when is_map(Filter), is_integer(Offset), Offset >= 0,
                                      is_integer(Limit), Limit >= 0 ->
    Tests = [{Key, Value} || Key <- [mode, node, status], {ok, Value} <- [maps:find(Key, Filter)]],
    Matching = [E || E <- stellar_catalog:entries(), matches(Tests, E)],
    Total = length(Matching),
    Page = case Offset < Total of
               true -> lists:sublist(lists:nthtail(Offset, Matching), Limit);
               false -> []
           end,
    {Total, [sat_map(E) || E <- Page]}.

matches([], _Entry) -> true;
matches([{mode, Want} | Rest], #{state := State} = E) ->
    name_is(maps:get(mode, State, undefined), Want) andalso matches(Rest, E);
matches([{Key, Want} | Rest], E) ->  % node, status: fields of the catalog entry itself
    name_is(maps:get(Key, E, undefined), Want) andalso matches(Rest, E).

name_is(Atom, Want) when is_atom(Atom), Atom =/= undefined -> atom_to_binary(Atom) =:= Want;
name_is(_, _Want) -> false.

-spec sat(id()) -> {ok, sat()} | {error, not_found | {bad_field, id}}.
sat(Id) ->
    with_id(Id, fun(B) ->
        case stellar_catalog:lookup(B) of
            {ok, E} -> {ok, sat_map(E)};
            error -> {error, not_found}
        end
    end).

%% Creates a satellite from #{id, name, tle => {L1, L2}, mode, energy_pct,
%% memory_capacity_mb, memory_used_mb} (only id and name are required) and starts its shadow
%% on this BEAM node, which places its actor.
-spec create(map()) -> {ok, binary()} | {error, term()}.
create(Spec) ->
    case stellar_spec:sat_state(Spec, erlang:system_time(millisecond)) of
        {ok, SatState} ->
            try
                start(SatState)
            catch
                exit:{noproc, _} -> {error, not_running}
            end;
        Error ->
            Error
    end.

%% Creates many satellites at once (an import): one store call and one catalog call for each
%% ?CREATE_CHUNK of them instead of one each. One answer per spec, in order, as create/1 would
%% give it; an id that came earlier in Specs is {error, already_exists}.
-spec create_many([map()]) -> [{ok, binary()} | {error, term()}] | {error, {bad_specs, term()}}.
create_many(Specs) when is_list(Specs) ->
    create_list(Specs);
create_many(NotAList) ->
    {error, {bad_specs, NotAList}}.

%% Stops the satellite's actor and shadow and removes it from the catalog.
-spec stop(id()) -> ok | {error, not_found | {bad_field, id}}.
stop(Id) ->
    with_id(Id, fun(B) ->
        case call_shadow(B, fun stellar_sat:stop/1) of
            ok -> ok;
            {error, _} -> catalog_delete(B)
        end
    end).

%% Asks the actor to change mode and waits for the outcome.
-spec set_mode(id(), stellar_proto_v1:mode() | binary() | string()) ->
    ok | {error, {invalid_transition, atom(), atom()} | not_found | {bad_mode, term()}
                 | {bad_field, id} | timeout | term()}.
set_mode(Id, Mode) ->
    with_id(Id, fun(B) ->
        case stellar_spec:mode(Mode) of
            {ok, M} ->
                Sync = {sync, ?SYNC_TIMEOUT},
                case submit_and_send(B, set_mode, #{mode => M}, #{}, Sync) of
                    {done, _CmdId} -> ok;
                    {failed, _CmdId, {bad_args, mode}} -> {error, {bad_mode, Mode}};
                    {failed, _CmdId, Reason} -> {error, Reason};
                    {error, Reason} -> {error, Reason}
                end;
            Error ->
                Error
        end
    end).

%% Gives the satellite new two-line elements {Line1, Line2} (binaries or strings) and waits for
%% the actor to take them: a set_tle command, so it is in the ledger first, applied once, and the
%% checkpoint that follows stores the TLE. The actor flies it from its next tick.
-spec set_tle(id(), {binary() | string(), binary() | string()}) ->
    {ok, binary()} | {error, not_found | {bad_tle, term()} | {bad_field, id | tle} | timeout | term()}.
set_tle(Id, Tle) ->
    with_id(Id, fun(B) ->
        case stellar_spec:tle(Tle) of
            {ok, {L1, L2}} ->
                Sync = {sync, ?SYNC_TIMEOUT},
                case submit_and_send(B, set_tle, #{line1 => L1, line2 => L2}, #{}, Sync) of
                    {done, CmdId} -> {ok, CmdId};
                    {failed, _CmdId, Reason} -> {error, Reason};
                    {error, Reason} -> {error, Reason}
                end;
            {ok, undefined} ->
                {error, {bad_field, tle}};
            Error ->
                Error
        end
    end).

%% Sends a command (set_mode, collect, downlink, reboot, noop, set_tle) without waiting for it; its
%% outcome is published as a `command' event with this id. With persistence on, the command
%% is in the ledger before this returns ({error, store_unavailable} otherwise: not accepted).
-spec command(id(), atom(), map()) -> {ok, binary()} | {error, term()}.
command(Id, Kind, Args) ->
    command(Id, Kind, Args, #{}).

%% As command/3; `idempotency_key' (a binary, unique per satellite) makes a retry return the
%% first command's id instead of creating a second command; `submitted_by' (1..128 bytes, e.g.
%% the gateway's token name) is who the ledger records as the submitter (default: this node).
-spec command(id(), atom(), map(), #{idempotency_key => binary(), submitted_by => binary()})
    -> {ok, binary()} | {error, term()}.
command(Id, Kind, Args, Opts) when is_map(Opts) ->
    with_id(Id, fun(B) ->
        Key = maps:get(idempotency_key, Opts, undefined),
        By = maps:get(submitted_by, Opts, undefined),
        case stellar_spec:command(Kind, Args) of
            {ok, _, _} when Key =/= undefined, not is_binary(Key) ->
                {error, {bad_field, idempotency_key}};
            {ok, _, _} when By =/= undefined,
                            not (is_binary(By) andalso byte_size(By) >= 1 andalso byte_size(By) =< 128) ->
                {error, {bad_field, submitted_by}};
            {ok, K, A} ->
                submit_and_send(B, K, A, #{key => Key, by => By}, async);
            Error ->
                Error
        end
    end);
command(_Id, _Kind, _Args, _Opts) ->
    {error, {bad_field, opts}}.

%% Kills the satellite's Python actor (a drill): its shadow restarts and re-places it.
-spec crash(id()) -> ok | {error, not_found | not_running | {bad_field, id}}.
crash(Id) ->
    with_id(Id, fun(B) ->
        case call_shadow(B, fun stellar_sat:actor/1) of
            {ok, Actor} -> exit(Actor, kill), ok;
            {error, Reason} -> {error, Reason}
        end
    end).

%% Every BEAM node of the cluster, then every Python node (with its BEAM node in `beam').
%% BEAM nodes carry how often they joined and left (as seen from here); a discovered peer
%% that is not connected is listed with status down.
-spec nodes() -> [node_info()].
nodes() ->
    Members = stellar_cluster:members(),
    Counts = fun(N) -> maps:with([joins, leaves], maps:get(N, Members, #{joins => 0, leaves => 0})) end,
    Up = [maps:merge(B, Counts(N)) || B = #{name := N} <- stellar_catalog:beam_nodes()],
    UpNames = [N || #{name := N} <- Up],
    Down = [#{name => N, role => beam, status => down, restarts => 0, os_pid => undefined,
              satellites => 0, joins => J, leaves => L}
            || {N, #{status := down, discovered := true, joins := J, leaves := L}} <- lists:sort(maps:to_list(Members)),
               not lists:member(N, UpNames)],
    lists:sort(fun(#{name := A}, #{name := B}) -> A =< B end, Up ++ Down) ++ stellar_catalog:py_nodes().

%% How this node finds its peers (the `cluster' app env), whom it found and is connected to,
%% and how many nodes joined and left since it started.
-spec cluster() -> stellar_cluster:info().
cluster() ->
    stellar_cluster:info().

%% Whether Node answers: `pong' or `pang' (as net_adm:ping/1).
-spec ping(node()) -> pong | pang.
ping(Node) when is_atom(Node) ->
    net_adm:ping(Node).

%% The TLE of each given satellite (undefined without one; unknown ids are left out), or with
%% `all' of every satellite that has one. The orbital node resolves satellite ids with it.
-spec tles([id()] | all) -> #{binary() => {binary(), binary()} | undefined}.
tles(all) ->
    maps:from_list([{Id, Tle} || #{id := Id, state := #{tle := Tle}} <- stellar_catalog:entries(),
                                 Tle =/= undefined]);
tles(Ids) when is_list(Ids) ->
    maps:from_list([{B, Tle} || Id <- Ids, {ok, B} <- [stellar_spec:id(Id)],
                                {ok, #{state := #{tle := Tle}}} <- [stellar_catalog:lookup(B)]]).

%% Positions (WGS84 and TEME) and sunlight of satellites, given by id or as
%% {Name, Line1, Line2}, at times in ms since the epoch (UTC); computed by the orbital node.
-spec propagate([id() | {binary(), binary(), binary()}], [integer()]) -> {ok, [map()]} | {error, term()}.
propagate(Sats, TimesMs) when is_list(Sats), is_list(TimesMs) ->
    orbital_call({propagate, [to_binary(S) || S <- Sats], TimesMs}).

%% Passes of satellites over ground stations (ids, or station maps) between two times (ms
%% since the epoch, UTC), above MinElDeg (undefined: each station's own mask).
-spec passes([id() | {binary(), binary(), binary()}], [binary() | string() | map()], integer(),
             integer(), number() | undefined) -> {ok, [map()]} | {error, term()}.
passes(Sats, Stations, FromMs, ToMs, MinElDeg) when is_list(Sats), is_list(Stations) ->
    orbital_call({passes, [to_binary(S) || S <- Sats], [to_binary(S) || S <- Stations], FromMs,
                  ToMs, MinElDeg}).

%% The satellites above a ground station's elevation mask at TimeMs (ms since the epoch, UTC).
-spec visible(binary() | string(), integer()) -> {ok, [map()]} | {error, term()}.
visible(Station, TimeMs) ->
    orbital_call({visible, to_binary(Station), TimeMs}).

%% Events (the gateway's SSE stream): Pid gets each new event that matches Filter (all, or
%% #{types => [...], sat_ids => [...]}).
-spec subscribe(pid(), stellar_events:filter()) -> ok | {error, {bad_filter, term()}}.
subscribe(Pid, Filter) ->
    stellar_events:subscribe(Pid, Filter).

%% The events after LastId still in the replay buffer, oldest first ({truncated, _}: some after
%% LastId are gone, so a client that resumes from there must start again from a snapshot).
-spec events_since(non_neg_integer()) -> {ok | truncated, [stellar_events:event()]}.
events_since(LastId) ->
    stellar_events:since(LastId).

%% The id of the newest event (0 before the first).
-spec last_event_id() -> non_neg_integer().
last_event_id() ->
    stellar_events:last_id().

%% Publishes an event on the cluster's bus (the gateway's alarm clears, for instance).
-spec publish(stellar_events:type(), binary() | undefined, map()) -> ok.
publish(Type, Subject, Data) ->
    stellar_events:publish(Type, Subject, Data).

%% Persistence as the BEAM node sees it: the store node, restores, telemetry counters, ownership.
-spec store_status() -> map().
store_status() ->
    stellar_store:status().

%% The node's metrics (VM, commands, orbital calls, Python nodes, distribution), for the
%% gateway's /metrics.
-spec metrics() -> stellar_metrics:metrics().
metrics() ->
    stellar_metrics:collect().

%% Mission tasks (the scheduler node answers from the database; see py_nodes/roles/scheduler.py
%% for the maps): every task, newest first.
-spec tasks() -> {ok, [map()]} | {error, term()}.
tasks() ->
    scheduler_call(tasks).

-spec task(pos_integer()) -> {ok, map()} | {error, not_found | {bad_field, id} | term()}.
task(Id) when is_integer(Id), Id > 0 ->
    scheduler_call({task, Id});
task(_Id) ->
    {error, {bad_field, id}}.

%% Submits a task: #{kind => imaging | downlink | maintenance | command, satellite_id => Bin,
%% ground_station_id => Bin, priority => 0..100, earliest_start_ms => Ms, deadline_ms => Ms,
%% duration_s => S, energy_pct => Pct, memory_mb => MB, depends_on => Id, args => #{...}};
%% {error, {bad_field, Field}} (nothing stored) when a field is wrong.
-spec submit_task(map()) -> {ok, pos_integer()} | {error, term()}.
submit_task(Spec) when is_map(Spec) ->
    scheduler_call({submit_task, Spec});
submit_task(_Spec) ->
    {error, {bad_field, spec}}.

-spec cancel_task(pos_integer()) -> ok | {error, not_found | {already, atom()} | term()}.
cancel_task(Id) when is_integer(Id), Id > 0 ->
    scheduler_call({cancel_task, Id});
cancel_task(_Id) ->
    {error, {bad_field, id}}.

%% The current plan: the newest plan run (cause, solve time, counts) and the open tasks with
%% their placements or the reasons they are not placed.
-spec plan() -> {ok, #{run := map() | undefined, tasks := [map()]}} | {error, term()}.
plan() ->
    scheduler_call(plan).

%% Internal.

%% A call to the `scheduler' server of a scheduler Python node that is up (this BEAM node's first).
scheduler_call(Request) ->
    Up = [{B =/= node(), N} || #{role := scheduler, status := up, name := N} = Info <- stellar_catalog:py_nodes(),
                                B <- [maps:get(beam, Info, node())]],
    case lists:sort(Up) of
        [] ->
            {error, no_scheduler_node};
        [{_, Node} | _] ->
            try
                stellar_py_node:call(Node, scheduler, Request, 15000)
            catch
                exit:{timeout, _} -> {error, timeout};
                exit:{noproc, _} -> {error, no_scheduler_node};
                exit:{{nodedown, _}, _} -> {error, no_scheduler_node}
            end
    end.

%% The ledger first (when on), then the shadow. A command found in the ledger by its
%% idempotency key is not sent again (its first submission was).
submit_and_send(Id, Kind, Args, Ledger, Mode) ->
    case stellar_catalog:lookup(Id) of
        error ->
            {error, not_found};
        {ok, _} ->
            case stellar_store:submit(Id, Kind, Args, maps:get(key, Ledger, undefined),
                                      maps:get(by, Ledger, undefined)) of
                {ok, CmdId, new} ->
                    Deadline = erlang:monotonic_time(millisecond) + ?SYNC_TIMEOUT,
                    send_to_shadow(Id, fun(P) -> stellar_sat:command(P, CmdId, Kind, Args, Mode) end,
                                   Deadline);
                {ok, CmdId, {existing, _Status}} when Mode =:= async ->
                    {ok, CmdId};
                {ok, CmdId, {existing, done}} ->
                    {done, CmdId};
                {ok, CmdId, {existing, Status}} ->
                    {error, {duplicate, CmdId, Status}};
                {error, Reason} ->
                    {error, Reason}
            end
    end.

to_binary(S) when is_list(S) ->
    case unicode:characters_to_binary(S) of
        B when is_binary(B) -> B;
        _ -> S
    end;
to_binary(S) ->
    S.

%% A call to the `orbital' server of an orbital Python node that is up, timed.
orbital_call(Request) ->
    T0 = erlang:monotonic_time(),
    Result = orbital_call_untimed(Request),
    stellar_metrics:orbital_call(element(1, Request), erlang:monotonic_time() - T0, Result),
    Result.

%% Calls are spread over every orbital node that is up (in the cluster, not only this node's):
%% each starts at a random one and goes on to the next when that one is gone.
orbital_call_untimed(Request) ->
    case [N || #{role := orbital, status := up, name := N} <- stellar_catalog:py_nodes()] of
        [] -> {error, no_orbital_node};
        Nodes -> call_orbital(rotate(Nodes, rand:uniform(length(Nodes)) - 1), Request)
    end.

call_orbital([], _Request) ->
    {error, no_orbital_node};
call_orbital([Node | Rest], Request) ->
    try
        stellar_py_node:call(Node, orbital, Request, 60000)
    catch
        exit:{timeout, _} -> {error, timeout};
        exit:{noproc, _} -> call_orbital(Rest, Request);
        exit:{{nodedown, _}, _} -> call_orbital(Rest, Request)
    end.

%% The list started at its Nth element (0-based), the ones before it at the end.
rotate(List, N) ->
    {Front, Back} = lists:split(N rem length(List), List),
    Back ++ Front.

%% With persistence on, a satellite is in the database before it exists here; a restore
%% (stellar_store) re-creates it after a restart.
start(SatState = #{id := Id}) ->
    case stellar_catalog:lookup(Id) =:= error andalso stellar_store:create(SatState) of
        false -> {error, already_exists};
        ok -> start_shadow(SatState);
        {error, Reason} -> {error, Reason}
    end.

start_shadow(SatState = #{id := Id}) ->
    start_created(Id, stellar_catalog:create(SatState)).

%% The catalog took Id (ok): its shadow starts here.
start_created(Id, ok) ->
    case stellar_sat_sup:start_shadow(Id) of
        {ok, _} ->
            {ok, Id};
        {error, Reason} ->
            _ = stellar_catalog:delete(Id),
            {error, Reason}
    end;
start_created(_Id, {error, Reason}) ->
    {error, Reason}.

create_list(Specs) when length(Specs) > ?CREATE_CHUNK ->
    {Chunk, Rest} = lists:split(?CREATE_CHUNK, Specs),
    create_list(Chunk) ++ create_list(Rest);
create_list(Specs) ->
    Now = erlang:system_time(millisecond),
    create_chunk([stellar_spec:sat_state(S, Now) || S <- Specs]).

%% create_many/1 for at most ?CREATE_CHUNK checked specs: the same steps as start/1, each for
%% the lot (ids new to the catalog and to this chunk -> store -> catalog -> shadows).
create_chunk(Checked) ->
    try
        Fresh = fresh_states(Checked),
        Stored = lists:zip(Fresh, stellar_store:create_many(Fresh)),
        InStore = [S || {S, ok} <- Stored],
        Taken = lists:zip(InStore, stellar_catalog:create_many(InStore)),
        Outcomes = maps:from_list([{Id, Error} || {#{id := Id}, Error = {error, _}} <- Stored] ++
                                  [{Id, start_created(Id, R)} || {#{id := Id}, R} <- Taken]),
        answers(Checked, Outcomes)
    catch
        exit:{noproc, _} -> [case C of {ok, _} -> {error, not_running}; Error -> Error end
                             || C <- Checked]
    end.

%% The valid states whose id is not in the catalog, each id once (its first spec).
fresh_states(Checked) ->
    {Fresh, _Seen} = lists:foldl(
        fun({ok, S = #{id := Id}}, {Acc, Seen}) ->
                case is_map_key(Id, Seen) orelse stellar_catalog:lookup(Id) =/= error of
                    true -> {Acc, Seen};
                    false -> {[S | Acc], Seen#{Id => true}}
                end;
           (_Error, AccSeen) ->
                AccSeen
        end, {[], #{}}, Checked),
    lists:reverse(Fresh).

%% One answer per checked spec: its id's outcome, taken once (a repeated id, or one the
%% catalog had, already exists), or its spec's error.
answers([{ok, #{id := Id}} | Rest], Outcomes) ->
    case maps:take(Id, Outcomes) of
        {Outcome, Left} -> [Outcome | answers(Rest, Left)];
        error -> [{error, already_exists} | answers(Rest, Outcomes)]
    end;
answers([Error | Rest], Outcomes) ->
    [Error | answers(Rest, Outcomes)];
answers([], _Outcomes) ->
    [].

%% The command is in the ledger: it must reach the shadow, also when the shadow is being
%% restarted (its actor just died) as we call it. A shadow records a command id once, so
%% calling again is safe.
send_to_shadow(Id, Fun, Deadline) ->
    case call_shadow(Id, Fun) of
        {error, Reason} when Reason =:= not_found; element(1, Reason) =:= actor_down ->
            case erlang:monotonic_time(millisecond) < Deadline andalso
                 stellar_catalog:lookup(Id) =/= error of
                true -> timer:sleep(20), send_to_shadow(Id, Fun, Deadline);
                false -> {error, Reason}
            end;
        Other ->
            Other
    end.

with_id(Id, Fun) ->
    case stellar_spec:id(Id) of
        {ok, B} -> Fun(B);
        Error -> Error
    end.

call_shadow(Id, Fun) ->
    case stellar_sat:whereis(Id) of
        undefined ->
            {error, not_found};
        Pid ->
            try
                Fun(Pid)
            catch
                exit:{noproc, _} -> {error, not_found};
                exit:{normal, _} -> {error, not_found};
                exit:{timeout, _} -> {error, timeout};
                exit:{{nodedown, _}, _} -> {error, not_found};
                exit:{{actor_down, Reason}, _} -> {error, {actor_down, Reason}}
            end
    end.

catalog_delete(Id) ->
    try stellar_catalog:delete(Id)
    catch exit:{noproc, _} -> {error, not_found}
    end.

%% The position and sunlight come from the last tick (undefined before the first one, and
%% without a TLE).
sat_map(#{id := Id, state := S, node := Node, owner := Owner, status := Status}) ->
    Keys = [name, mode, energy_pct, memory_used_mb, memory_capacity_mb, tle, updated_at,
            lat_deg, lon_deg, alt_km, in_sunlight],
    Unknown = #{lat_deg => undefined, lon_deg => undefined, alt_km => undefined,
                in_sunlight => undefined},
    (maps:merge(Unknown, maps:with(Keys, S)))#{id => Id, node => Node, beam => Owner,
                                               status => Status}.

-ifdef(TEST).
-include_lib("eunit/include/eunit.hrl").

rotate_test_() ->
    [?_assertEqual([a, b, c], rotate([a, b, c], 0)),
     ?_assertEqual([b, c, a], rotate([a, b, c], 1)),
     ?_assertEqual([c, a, b], rotate([a, b, c], 2)),
     ?_assertEqual([a], rotate([a], 0))].

%% Nodes that are gone are skipped, in order, until one answers; the call fails only when
%% every one is gone. (This node stands in for a live orbital node: a local `orbital' process.)
call_orbital_test() ->
    Gone = ['orbital_gone1@127.0.0.1', 'orbital_gone2@127.0.0.1'],
    ?assertEqual({error, no_orbital_node}, call_orbital(Gone, ping)),
    Server = spawn(fun() -> receive {'$gen_call', From, Req} -> gen_server:reply(From, {pong, Req}) end end),
    true = register(orbital, Server),
    try
        ?assertEqual({pong, ping}, call_orbital(Gone ++ [node()], ping))
    after
        catch unregister(orbital)
    end.
-endif.
