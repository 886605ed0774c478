%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The sink of batched ticks. A sats node advances all its actors in one pass and sends, per
%% chunk of that pass, one sat_ticks message (the rows packed as the store takes them, and each
%% row's shadow pid: stellar_proto_v1:sat_ticks/1) to the process registered as stellar_ticks
%% on each BEAM node whose shadows it serves (docs/protocol-v1.md).
%% One message per chunk instead of one per satellite, and the shadows stay asleep (hibernated)
%% between commands: a tick goes to the event bus (stellar_events:publish_many/2, one cast per
%% batch) and the telemetry buffer (stellar_store:telemetry_packed/3: the rows as they came
%% when every one of them counts, else telemetry_many/1), as the shadow's
%% own sat_tick clause does, and into the catalog entry's tick slot
%% (stellar_catalog:put_ticks/1, written from here: no message to the catalog, which may be
%% busy placing thousands, and no copy of its entries).
%%
%% A tick counts only when ShadowPid is the satellite's registered shadow on this node: an actor
%% whose shadow was replaced (moved or re-placed) is not heard (stellar_registry:holds/2).
-module(stellar_ticks).
-behaviour(gen_server).

-export([start_link/0]).
-export([child_spec/0]).
-export([counts/0]).

-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).

%% Tick lag (arrival here - the actor's updated_at) is counted in buckets this wide, up to
%% ?LAG_MAX_MS (later ones count in the last bucket).
-define(LAG_BUCKET_MS, 10).
-define(LAG_MAX_MS, 60000).
%% Drops are logged at most this often: a sats node of another release sends every batch off
%% the contract (200 a second at 100,000 satellites); the drops in between are counted.
-define(WARN_EVERY_MS, 10000).

-record(state, {
    batches = 0 :: non_neg_integer(),
    ticks = 0 :: non_neg_integer(),
    stale = 0 :: non_neg_integer(),    % ticks of an actor whose shadow is not the catalog's
    dropped = 0 :: non_neg_integer(),  % off-contract entries and messages
    lags = #{} :: #{non_neg_integer() => pos_integer()},  % ?LAG_BUCKET_MS bucket => ticks
    warned_at :: integer() | undefined,  % when the last drop was logged (ms)
    unwarned = 0 :: non_neg_integer()  % drops not logged since
}).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

%% Batches and ticks taken since start, ticks of stale actors, off-contract ticks dropped, and
%% the ticks' lags (ms from the actor's tick to its arrival here) as #{BucketStartMs => Ticks}.
-spec counts() -> #{batches := non_neg_integer(), ticks := non_neg_integer(),
                    stale := non_neg_integer(), dropped := non_neg_integer(),
                    lag_ms := #{non_neg_integer() => pos_integer()}}.
counts() ->
    gen_server:call(?MODULE, counts).

-spec init([]) -> {ok, #state{}}.
init([]) ->
    %% Batches queued while it works are not copied by each garbage collection of its heap.
    process_flag(message_queue_data, off_heap),
    {ok, #state{}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(counts, _From, State = #state{batches = B, ticks = T, stale = S, dropped = D, lags = L}) ->
    Lags = maps:fold(fun(K, V, Acc) -> Acc#{K * ?LAG_BUCKET_MS => V} end, #{}, L),
    {reply, #{batches => B, ticks => T, stale => S, dropped => D, lag_ms => Lags}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(Msg = {sat_ticks, _, _, _, _, _}, State) ->
    case stellar_proto_v1:classify(Msg) of
        {sat_ticks, Ticks, Bad} ->
            State0 = case Bad > 0 of
                true -> warn("dropped ~b off-contract tick(s) of a batch", [Bad], State);
                false -> State
            end,
            Live = [{Id, Telemetry} || {Id, Shadow, Telemetry} <- Ticks, stellar_registry:holds(Id, Shadow)],
            LiveCount = length(Live),
            Stale = length(Ticks) - LiveCount,
            ok = stellar_events:publish_many(telemetry, Live),
            ok = case Stale =:= 0 andalso Bad =:= 0 of
                true -> {sat_ticks, _, Count, Ids, _, Records} = Msg,
                        stellar_store:telemetry_packed(Count, Ids, Records);
                false -> stellar_store:telemetry_many(Live)
            end,
            ok = stellar_catalog:put_ticks(Live),
            {noreply, State0#state{batches = State0#state.batches + 1,
                                   lags = count_lag(Live, LiveCount, State0#state.lags),
                                   ticks = State0#state.ticks + LiveCount,
                                   stale = State0#state.stale + Stale,
                                   dropped = State0#state.dropped + Bad}};
        {bad_message, Why} ->
            State1 = warn("dropped an off-contract batch (~p)", [Why], State),
            {noreply, State1#state{dropped = State1#state.dropped + 1}}
    end;
handle_info(Msg, State) ->
    State1 = warn("dropped an unexpected message: ~0P", [Msg, 20], State),
    {noreply, State1#state{dropped = State1#state.dropped + 1}}.

%% Logs a drop unless one was logged less than ?WARN_EVERY_MS ago (then it is only counted, and
%% the next line says how many went unlogged).
warn(Format, Args, State = #state{warned_at = At, unwarned = Unwarned}) ->
    Now = erlang:monotonic_time(millisecond),
    case At =:= undefined orelse Now - At >= ?WARN_EVERY_MS of
        true ->
            logger:warning("stellar_ticks: " ++ Format ++ " (~b more dropped unlogged since the last warning)",
                           Args ++ [Unwarned]),
            State#state{warned_at = Now, unwarned = 0};
        false ->
            State#state{unwarned = Unwarned + 1}
    end.

%% A sats node stamps every tick of a pass with one time: the lag of a batch's first tick
%% stands for all of its ticks.
count_lag([], _Count, Lags) ->
    Lags;
count_lag([{_, #{updated_at := At}} | _], Count, Lags) ->
    Lag = min(max(erlang:system_time(millisecond) - At, 0), ?LAG_MAX_MS),
    maps:update_with(Lag div ?LAG_BUCKET_MS, fun(C) -> C + Count end, Count, Lags).
