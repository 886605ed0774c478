%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Persistence, BEAM side. PostgreSQL belongs to the `store' Python node (role store, which
%% owns the connections); this server is its client. Without a store node in py_nodes,
%% persistence is off: satellites live in memory and commands get ids without a ledger.
%%
%% - Commands: submit/4 commits a command to the ledger (a call to the store) before its id
%%   goes back to the caller; with no store reachable it answers {error, store_unavailable}
%%   and nothing is acknowledged.
%% - Outcomes: each command result goes to the store with the satellite's state, which the
%%   store writes in one transaction (done/failed is final). A result lost on the way is
%%   healed by redelivery: the actor answers `done' again for an id it applied.
%% - Checkpoints: every checkpoint_ms, the satellites of this node whose catalog entry changed
%%   (deletions included) are written, coalesced; all of them at a clean stop.
%% - Telemetry: shadows put each tick in an ETS buffer (no message per tick); every
%%   telemetry_flush_ms the rows go to the store in one message. The buffer is bounded
%%   (telemetry_buffer rows): beyond it rows are counted as overflow and logged, not hidden.
%% - Restore: each time the store node comes up, satellites that the catalog does not know are
%%   restored from their checkpoints, and every queued or sent command is delivered again.
-module(stellar_store).
-behaviour(gen_server).

%% API.
-export([start_link/0]).
-export([child_spec/0]).
-export([new_table/0]).
-export([enabled/0]).
-export([create/1]).
-export([submit/4]).
-export([sent/1]).
-export([result/4]).
-export([telemetry/2]).
-export([alarm/2]).
-export([status/0]).

%% gen_server.
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-define(TAB, stellar_store_telemetry).
-define(COUNTERS, stellar_store_counters).
-define(ENABLED, {?MODULE, enabled}).
-define(CALL_TIMEOUT, 5000).
-define(SUBMIT_TIMEOUT, 4000).
-define(BATCH, 5000).

-record(state, {
    store :: node() | undefined,
    restores = 0 :: non_neg_integer(),
    checkpoint_at = 0 :: integer(),
    sent = [] :: [binary()],
    overflow_logged = 0 :: non_neg_integer()
}).

%% API.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => 10000, type => worker, modules => [?MODULE]}.

%% The telemetry buffer and its overflow counter (owned by stellar_sup, like the other tables).
-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [ordered_set, public, named_table, {write_concurrency, true}]),
    ?COUNTERS = ets:new(?COUNTERS, [set, public, named_table, {write_concurrency, true}]),
    true = ets:insert(?COUNTERS, {overflow, 0}),
    ok.

%% Whether a store node is configured (persistence on).
-spec enabled() -> boolean().
enabled() ->
    persistent_term:get(?ENABLED, false).

%% Writes a new satellite (its row exists before commands can refer to it). A satellite the
%% store knows, but deleted, is created again from this state.
-spec create(stellar_proto_v1:sat_state()) -> ok | {error, already_exists | store_unavailable | term()}.
create(SatState) ->
    case enabled() of
        false -> ok;
        true -> store_call({create_satellite, SatState})
    end.

%% Commits a command to the ledger. Returns its id (the original one when IdemKey was used
%% before for this satellite) and whether it is new; without persistence, a fresh id.
%% The store gets this call's deadline and commits before it or not at all, so
%% {error, store_unavailable} means the command never runs (the gateway's own timeout is
%% longer than ?SUBMIT_TIMEOUT).
-spec submit(binary(), atom(), map(), binary() | undefined)
    -> {ok, binary(), new | {existing, atom()}} | {error, term()}.
submit(SatId, Kind, Args, IdemKey) ->
    CmdId = stellar_sat:new_command_id(),
    case enabled() of
        false ->
            {ok, CmdId, new};
        true ->
            DeadlineMs = erlang:system_time(millisecond) + ?SUBMIT_TIMEOUT,
            store_call({submit_command, CmdId, SatId, Kind, Args, IdemKey, DeadlineMs},
                       ?SUBMIT_TIMEOUT)
    end.

%% CmdId went to its actor (batched to the ledger).
-spec sent(binary()) -> ok.
sent(CmdId) ->
    case enabled() of
        true -> gen_server:cast(?MODULE, {sent, CmdId});
        false -> ok
    end.

%% The outcome of a command, with the satellite's state after it.
-spec result(binary(), binary(), stellar_proto_v1:outcome(), stellar_proto_v1:known_state()) -> ok.
result(SatId, CmdId, Outcome, SatState) ->
    case enabled() of
        true -> gen_server:cast(?MODULE, {result, SatId, CmdId, Outcome, SatState});
        false -> ok
    end.

%% A telemetry sample of SatId (from its tick), buffered for the store.
-spec telemetry(binary(), stellar_proto_v1:telemetry()) -> ok.
telemetry(SatId, Telemetry) ->
    case enabled() of
        true ->
            _ = case ets:info(?TAB, size) < application:get_env(stellar, telemetry_buffer, 200000) of
                true ->
                    true = ets:insert(?TAB, {erlang:unique_integer([monotonic]), SatId, Telemetry});
                false ->
                    _ = ets:update_counter(?COUNTERS, overflow, 1)
            end,
            ok;
        false ->
            ok
    end.

%% An alarm raised by a satellite, for the alarms table.
-spec alarm(binary(), map()) -> ok.
alarm(SatId, Data) ->
    case enabled() of
        true -> gen_server:cast(?MODULE, {alarm, SatId, Data});
        false -> ok
    end.

%% For operators and tests.
-spec status() -> #{enabled := boolean(), store := node() | undefined,
                    restores := non_neg_integer(), buffered := non_neg_integer(),
                    overflow := non_neg_integer()}.
status() ->
    gen_server:call(?MODULE, status).

%% gen_server.

-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),  % terminate/2 writes the last checkpoint
    {ok, PyNodes} = stellar_config:py_nodes(),
    persistent_term:put(?ENABLED, lists:any(fun(#{role := R}) -> R =:= store end, PyNodes)),
    _ = enabled() andalso schedule(tick, 0),
    {ok, #state{}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(status, _From, State = #state{store = Store, restores = R}) ->
    Reply = #{enabled => enabled(), store => Store, restores => R,
              buffered => ets:info(?TAB, size), overflow => overflow()},
    {reply, Reply, State};
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({sent, CmdId}, State = #state{sent = Sent}) ->
    {noreply, State#state{sent = [CmdId | Sent]}};
handle_cast({result, SatId, CmdId, _Outcome, _SatState}, State = #state{store = undefined}) ->
    logger:warning("satellite ~s: outcome of ~s not stored (no store node); it is delivered "
                   "again when the store is back", [SatId, CmdId]),
    {noreply, State};
handle_cast({result, SatId, CmdId, Outcome, SatState}, State = #state{store = Store, sent = Sent}) ->
    %% The ledger sees `sent' before the outcome.
    _ = Sent =/= [] andalso store_cast(Store, {commands_sent, lists:reverse(Sent)}),
    store_cast(Store, {command_result, CmdId, SatId, Outcome, SatState}),
    {noreply, State#state{sent = []}};
handle_cast({alarm, SatId, Data}, State = #state{store = undefined}) ->
    logger:warning("satellite ~s: alarm ~0P not stored (no store node)", [SatId, Data, 10]),
    {noreply, State};
handle_cast({alarm, SatId, Data}, State = #state{store = Store}) ->
    store_cast(Store, {alarm, SatId, Data}),
    {noreply, State};
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(tick, State) ->
    schedule(tick, application:get_env(stellar, telemetry_flush_ms, 500)),
    State1 = connect(State),
    {noreply, flush(State1)};
handle_info(_Info, State) ->
    {noreply, State}.

%% A clean stop writes every satellite of this node, waiting for the store to confirm.
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, State = #state{store = Store}) when Store =/= undefined ->
    _ = flush(State#state{checkpoint_at = erlang:system_time(millisecond)}),
    Self = node(),
    All = [checkpoint_row(E) || E = #{owner := Owner} <- all_entries(), Owner =:= Self],
    try
        lists:foreach(fun(Chunk) -> ok = gen_server:call({store, Store}, {checkpoint, Chunk}, 30000) end,
                      chunks(All, 1000)),
        logger:info("checkpointed ~b satellite(s) at stop", [length(All)])
    catch
        Class:Reason -> logger:error("final checkpoint failed: ~p:~0P", [Class, Reason, 20])
    end;
terminate(_Reason, _State) ->
    ok.

%% Internal.

schedule(Msg, Ms) ->
    erlang:send_after(Ms, self(), Msg).

overflow() ->
    ets:lookup_element(?COUNTERS, overflow, 2).

store_node() ->
    case [N || #{role := store, status := up, name := N} <- stellar_py_node:info()] of
        [Node | _] -> Node;
        [] -> undefined
    end.

store_call(Request) ->
    store_call(Request, ?CALL_TIMEOUT).

store_call(Request, Timeout) ->
    case store_node() of
        undefined ->
            {error, store_unavailable};
        Node ->
            try gen_server:call({store, Node}, Request, Timeout)
            catch exit:_ -> {error, store_unavailable}
            end
    end.

store_cast(Node, Msg) ->
    gen_server:cast({store, Node}, Msg).

%% Follows the store node; each time it (re)appears, restores from it.
connect(State = #state{store = Old}) ->
    case store_node() of
        Old ->
            State;
        undefined ->
            logger:warning("store node ~s is down: commands are refused until it is back", [Old]),
            State#state{store = undefined};
        New ->
            restore(New, State#state{store = New})
    end.

restore(Node, State = #state{restores = R}) ->
    try
        {ok, Sats} = gen_server:call({store, Node}, satellites, 60000),
        Restored = lists:foldl(fun(SatState, N) -> N + restore_sat(SatState) end, 0, Sats),
        {ok, Pending} = gen_server:call({store, Node}, pending_commands, 60000),
        Redelivered = lists:foldl(fun(Cmd, N) -> N + redeliver(Cmd) end, 0, Pending),
        logger:info("store ~s: ~b satellite(s) restored, ~b command(s) delivered again",
                    [Node, Restored, Redelivered]),
        %% A new store process: every satellite is checkpointed again at the next tick.
        State#state{restores = R + 1, checkpoint_at = 0}
    catch
        Class:Reason ->
            logger:error("store ~s: restore failed (~p:~0P); retrying", [Node, Class, Reason, 20]),
            State#state{store = undefined}
    end.

restore_sat(SatState = #{id := Id}) ->
    case stellar_catalog:lookup(Id) of
        {ok, _} ->
            0;
        error ->
            case stellar_proto_v1:is_sat_state(maps:with(stellar_proto_v1:state_keys(), SatState)) of
                true ->
                    ok = stellar_catalog:create(SatState),
                    {ok, _} = stellar_sat_sup:start_shadow(Id),
                    1;
                {false, Field} ->
                    logger:error("satellite ~s: checkpoint not restored (bad field ~s)", [Id, Field]),
                    0
            end
    end.

redeliver({CmdId, SatId, Kind, Args}) ->
    case stellar_sat:whereis(SatId) of
        undefined -> 0;
        Pid -> stellar_sat:deliver(Pid, CmdId, Kind, Args), 1
    end.

flush(State = #state{store = undefined}) ->
    State;
flush(State = #state{store = Store, sent = Sent}) ->
    _ = Sent =/= [] andalso store_cast(Store, {commands_sent, lists:reverse(Sent)}),
    flush_telemetry(Store),
    checkpoint(State#state{sent = []}).

flush_telemetry(Store) ->
    Rows = ets:select(?TAB, [{{'$1', '$2', '$3'}, [], [{{'$1', '$2', '$3'}}]}], ?BATCH),
    case Rows of
        '$end_of_table' ->
            ok;
        {Batch, _Cont} ->
            Last = element(1, lists:last(Batch)),
            store_cast(Store, {telemetry, [{SatId, T} || {_, SatId, T} <- Batch]}),
            _ = ets:select_delete(?TAB, [{{'$1', '_', '_'}, [{'=<', '$1', Last}], [true]}]),
            length(Batch) =:= ?BATCH andalso flush_telemetry(Store)
    end,
    report_overflow().

report_overflow() ->
    case overflow() of
        0 -> ok;
        N ->
            _ = ets:update_counter(?COUNTERS, overflow, -N),
            logger:warning("telemetry buffer full: ~b sample(s) not kept", [N])
    end.

checkpoint(State = #state{store = Store, checkpoint_at = Since}) ->
    Now = erlang:system_time(millisecond),
    case Now - Since >= application:get_env(stellar, checkpoint_ms, 5000) of
        false ->
            State;
        true ->
            Self = node(),
            Changed = [checkpoint_row(E) || E = #{owner := Owner, updated_at := At} <- all_entries(),
                                            Owner =:= Self, At >= Since],
            lists:foreach(fun(Chunk) -> store_cast(Store, {checkpoint, Chunk}) end,
                          chunks(Changed, 1000)),
            State#state{checkpoint_at = Now}
    end.

checkpoint_row(#{id := Id, state := S, status := Status}) ->
    #{id => Id, state => S, deleted => Status =:= deleted}.

all_entries() ->
    [E || {_, E} <- ets:tab2list(stellar_catalog)].

chunks([], _N) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {H, T} = lists:split(N, L), [H | chunks(T, N)].
