%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The event bus of this BEAM node. Every published event gets the next integer id (one more
%% than the last on this node) and goes to each subscriber whose filter matches, as
%% `{stellar_event, Id, Type, SatId, Data, AtMs}'. Subscribers are monitored and dropped when
%% they die. The last `event_buffer' events (default 10,000) stay in an ETS table, owned by
%% stellar_sup so that ids keep increasing across restarts of this server; since/1 replays
%% them (the gateway resumes an SSE stream with it). A batch (publish_many/2: a tick pass,
%% 1,000 satellites) is one object of the table, {FirstId, LastId, Type, AtMs, [{SatId, Data}]}:
%% at 100,000 satellites an insert and a delete per event were a fifth of the node's work. An
%% object leaves when none of its events is among the last `event_buffer'.
-module(stellar_events).
-behaviour(gen_server).

%% API.
-export([start_link/0]).
-export([child_spec/0]).
-export([new_table/0]).
-export([subscribe/2]).
-export([unsubscribe/1]).
-export([publish/3]).
-export([publish_many/2]).
-export([since/1]).
-export([last_id/0]).
-export([matches/4]).

%% gen_server.
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).

-define(TAB, stellar_events).

-type type() :: state | telemetry | alarm | node | command | task | plan.
-type filter() :: all | #{types => [type()], sat_ids => [binary()]}.
-type event() :: {stellar_event, pos_integer(), type(), binary() | undefined, map(), integer()}.
-export_type([type/0, filter/0, event/0]).

-record(state, {
    next_id :: pos_integer(),
    max :: pos_integer(),
    subs = #{} :: #{pid() => {reference(), filter()}}
}).

%% API.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

%% Creates the buffer table; the calling process (stellar_sup) owns it.
-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [ordered_set, public, named_table, {read_concurrency, true}]),
    ok.

%% Pid receives every later event that Filter matches (a second call replaces the filter).
-spec subscribe(pid(), filter()) -> ok | {error, {bad_filter, term()}}.
subscribe(Pid, Filter) when is_pid(Pid) ->
    case is_filter(Filter) of
        true -> gen_server:call(?MODULE, {subscribe, Pid, Filter});
        false -> {error, {bad_filter, Filter}}
    end;
subscribe(Pid, _Filter) ->
    {error, {bad_pid, Pid}}.

-spec unsubscribe(pid()) -> ok.
unsubscribe(Pid) when is_pid(Pid) ->
    gen_server:call(?MODULE, {unsubscribe, Pid}).

%% Publishes an event (asynchronously: never blocks the publisher).
-spec publish(type(), binary() | undefined, map()) -> ok.
publish(Type, SatId, Data) when is_atom(Type), is_map(Data) ->
    gen_server:cast(?MODULE, {publish, Type, SatId, Data}).

%% Publishes one event of Type per {SatId, Data}, in order, in one message (a tick batch).
-spec publish_many(type(), [{binary() | undefined, map()}]) -> ok.
publish_many(_Type, []) ->
    ok;
publish_many(Type, Events) when is_atom(Type), is_list(Events) ->
    gen_server:cast(?MODULE, {publish_many, Type, Events}).

%% The buffered events with an id greater than LastSeen, oldest first: `{ok, Events}', or
%% `{truncated, Events}' when events after LastSeen have already left the buffer.
-spec since(non_neg_integer()) -> {ok | truncated, [event()]}.
since(LastSeen) when is_integer(LastSeen), LastSeen >= 0 ->
    Objects = ets:select(?TAB, [{{'_', '$1', '_', '_', '_'}, [{'>', '$1', LastSeen}], ['$_']}]),
    Events = [{stellar_event, Id, Type, SatId, Data, At}
              || {First, _, Type, At, Items} <- Objects,
                 {Id, {SatId, Data}} <- lists:zip(lists:seq(First, First + length(Items) - 1), Items),
                 Id > LastSeen],
    case ets:first(?TAB) of
        First when is_integer(First), First > LastSeen + 1 -> {truncated, Events};
        _ -> {ok, Events}
    end.

%% The id of the last event published on this node (0 before the first).
-spec last_id() -> non_neg_integer().
last_id() ->
    case ets:last(?TAB) of
        '$end_of_table' -> 0;
        First -> ets:lookup_element(?TAB, First, 2)
    end.

%% Whether Filter lets the event through.
-spec matches(filter(), type(), binary() | undefined, map()) -> boolean().
matches(all, _Type, _SatId, _Data) ->
    true;
matches(Filter, Type, SatId, _Data) ->
    lists:member(Type, maps:get(types, Filter, [Type]))
        andalso lists:member(SatId, maps:get(sat_ids, Filter, [SatId])).

is_filter(all) ->
    true;
is_filter(F) when is_map(F) ->
    maps:fold(fun(types, L, Ok) -> Ok andalso is_list(L) andalso lists:all(fun is_atom/1, L);
                 (sat_ids, L, Ok) -> Ok andalso is_list(L) andalso lists:all(fun is_binary/1, L);
                 (_, _, _) -> false
              end, true, F);
is_filter(_) ->
    false.

%% gen_server.

-spec init([]) -> {ok, #state{}}.
init([]) ->
    {ok, #state{next_id = last_id() + 1, max = application:get_env(stellar, event_buffer, 10000)}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({subscribe, Pid, Filter}, _From, State = #state{subs = Subs}) ->
    Ref = case Subs of
        #{Pid := {R, _}} -> R;
        _ -> erlang:monitor(process, Pid)
    end,
    {reply, ok, State#state{subs = Subs#{Pid => {Ref, Filter}}}};
handle_call({unsubscribe, Pid}, _From, State = #state{subs = Subs}) ->
    case maps:take(Pid, Subs) of
        {{Ref, _}, Rest} ->
            erlang:demonitor(Ref, [flush]),
            {reply, ok, State#state{subs = Rest}};
        error ->
            {reply, ok, State}
    end;
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({publish, Type, SatId, Data}, State) ->
    {noreply, publish_batch(Type, [{SatId, Data}], State)};
handle_cast({publish_many, Type, Events}, State) ->
    {noreply, publish_batch(Type, [E || E = {_, Data} <- Events, is_map(Data)], State)};
handle_cast(_Msg, State) ->
    {noreply, State}.

publish_batch(_Type, [], State) ->
    State;
publish_batch(Type, Items, State = #state{next_id = First, max = Max, subs = Subs}) ->
    At = erlang:system_time(millisecond),
    Last = First + length(Items) - 1,
    true = ets:insert(?TAB, {First, Last, Type, At, Items}),
    ok = evict(Last - Max),
    _ = map_size(Subs) > 0 andalso
        lists:foldl(fun({SatId, Data}, Id) -> notify(Subs, {stellar_event, Id, Type, SatId, Data, At}),
                                              Id + 1
                    end, First, Items),
    State#state{next_id = Last + 1}.

%% Deletes the oldest objects whose events all have an id up to Below.
evict(Below) ->
    case ets:first(?TAB) of
        First when is_integer(First) ->
            case ets:lookup_element(?TAB, First, 2) =< Below of
                true -> true = ets:delete(?TAB, First), evict(Below);
                false -> ok
            end;
        '$end_of_table' ->
            ok
    end.

notify(Subs, Event = {stellar_event, _, Type, SatId, Data, _}) ->
    maps:foreach(fun(Pid, {_, Filter}) ->
                         case matches(Filter, Type, SatId, Data) of
                             true -> Pid ! Event;
                             false -> ok
                         end
                 end, Subs).

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'DOWN', Ref, process, Pid, _}, State = #state{subs = Subs}) ->
    case Subs of
        #{Pid := {Ref, _}} -> {noreply, State#state{subs = maps:remove(Pid, Subs)}};
        _ -> {noreply, State}
    end;
handle_info(_Info, State) ->
    {noreply, State}.
