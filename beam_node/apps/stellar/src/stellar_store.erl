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
%%   telemetry_flush_ms the new rows go to the store in numbered batches. A row leaves the
%%   buffer only when the store confirms its batch written ({telemetry_ack, ...}): a batch
%%   the store could not take ({telemetry_nack, ...}), not confirmed within ?ACK_TIMEOUT_MS, or
%%   sent to a store node that died, is sent again (at least once; the store's insert is
%%   idempotent on satellite and time). The buffer is bounded (telemetry_buffer rows): beyond
%%   it rows are dropped, counted (never reset) and logged; so are rows the database refused.
%% - Restore: each time the store node comes up, satellites that the catalog does not know are
%%   restored from their checkpoints, and every queued or sent command is delivered again.
%% - Ownership: one cluster at a time owns the database (the store node's lease). A store that
%%   answers {error, {not_owner, Why}} restores and delivers nothing; this server says why (log,
%%   status/0) and asks again every tick, so it takes over when the owner stops or dies.
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
-define(SUBMIT_TIMEOUT, 4000).
-define(BATCH, 5000).
-define(ACK_TIMEOUT_MS, 60000).
-define(NACK_BACKOFF_MS, 2000).  % a store that refused a batch (its buffer full) gets a pause
-define(OVERFLOW_LOG_MS, 10000).
%% A new store's restore waits (at most this long) for this node's sats nodes that are still
%% starting, so that the satellites spread over all of them rather than the first one up.
-define(SATS_SETTLE_MS, 15000).

-type telemetry_status() :: #{rows := non_neg_integer(), buffered := non_neg_integer(),
                              unconfirmed_batches := non_neg_integer(),
                              dropped := #{buffer_full := non_neg_integer(),
                                           rejected := non_neg_integer()}}.
-export_type([telemetry_status/0]).

-record(state, {
    store :: node() | undefined,
    restores = 0 :: non_neg_integer(),
    checkpoint_at = 0 :: integer(),
    sent = [] :: [binary()],
    overflow_logged = 0 :: non_neg_integer(),  % dropped rows at the last warning
    overflow_logged_at = 0 :: integer(),
    batch_seq = 0 :: non_neg_integer(),
    sent_upto = 0 :: non_neg_integer(),  % the newest buffer key sent to the current store
    unacked = #{} :: #{pos_integer() => {pos_integer(), pos_integer(), integer()}},  % Id => {First, Last, SentAtMs}
    lease = unknown :: unknown | owner | {not_owner, binary()},
    hold_until = 0 :: integer(),  % monotonic ms: no telemetry sent before (after a nack)
    store_seen_at :: integer() | undefined  % monotonic ms: a new store waits for the sats nodes
}).

%% API.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => 10000, type => worker, modules => [?MODULE]}.

%% The telemetry buffer and its counters (owned by stellar_sup, like the other tables): rows
%% confirmed stored, rows dropped because the buffer was full (overflow) or the database
%% refused them (rejected). They only grow.
-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [ordered_set, public, named_table, {write_concurrency, true}]),
    ?COUNTERS = ets:new(?COUNTERS, [set, public, named_table, {write_concurrency, true}]),
    true = ets:insert(?COUNTERS, [{overflow, 0}, {rows, 0}, {rejected, 0}]),
    ok.

%% Whether a store node is configured (persistence on).
-spec enabled() -> boolean().
enabled() ->
    persistent_term:get(?ENABLED, false).

%% Writes a new satellite (its row exists before commands can refer to it). A satellite the
%% store knows, but deleted, is created again from this state. Like submit/4, with a deadline:
%% {error, store_unavailable} means it was not created (a late write is deleted again).
-spec create(stellar_proto_v1:sat_state()) -> ok | {error, already_exists | store_unavailable | term()}.
create(SatState) ->
    case enabled() of
        false -> ok;
        true ->
            DeadlineMs = erlang:system_time(millisecond) + ?SUBMIT_TIMEOUT,
            store_call({create_satellite, SatState, DeadlineMs}, ?SUBMIT_TIMEOUT)
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
                    Key = erlang:unique_integer([monotonic, positive]),
                    true = ets:insert(?TAB, {Key, SatId, Telemetry});
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

%% For operators, /metrics and tests. buffered: rows in the buffer (unconfirmed ones included);
%% overflow: rows dropped because the buffer was full, since start.
%% owner: whether this cluster owns the database (undefined until a store answered), and why not.
-spec status() -> #{enabled := boolean(), store := node() | undefined,
                    restores := non_neg_integer(), buffered := non_neg_integer(),
                    overflow := non_neg_integer(), telemetry := telemetry_status(),
                    owner := boolean() | undefined, not_owner_reason := binary()}.
status() ->
    gen_server:call(?MODULE, status).


%% gen_server.

-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),  % terminate/2 writes the last checkpoint
    {ok, PyNodes} = stellar_config:py_nodes(),
    persistent_term:put(?ENABLED, lists:any(fun(#{role := R}) -> R =:= store end, PyNodes)),
    _ = enabled() andalso schedule(tick, 0),
    Now = erlang:monotonic_time(millisecond),  % (monotonic time may be negative)
    {ok, #state{overflow_logged_at = Now - ?OVERFLOW_LOG_MS, hold_until = Now}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(status, _From, State = #state{store = Store, restores = R, unacked = U}) ->
    Buffered = ets:info(?TAB, size),
    Telemetry = #{rows => counter(rows), buffered => Buffered, unconfirmed_batches => map_size(U),
                  dropped => #{buffer_full => overflow(), rejected => counter(rejected)}},
    {Owner, Why} = case State#state.lease of
        unknown -> {undefined, <<>>};
        owner -> {true, <<>>};
        {not_owner, W} -> {false, W}
    end,
    Reply = #{enabled => enabled(), store => Store, restores => R,
              buffered => Buffered, overflow => overflow(), telemetry => Telemetry,
              owner => Owner, not_owner_reason => Why},
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
handle_info({telemetry_ack, Id, Stored, Rejected}, State = #state{unacked = U})
  when is_integer(Stored), Stored >= 0, is_integer(Rejected), Rejected >= 0 ->
    case maps:take(Id, U) of
        {{First, Last, _SentAt}, U1} ->
            delete_range(First, Last),
            _ = ets:update_counter(?COUNTERS, rows, Stored),
            _ = Rejected > 0 andalso reject(Rejected),
            {noreply, State#state{unacked = U1}};
        error ->  % a batch already sent again (store change, nack, timeout): its rows stay
            {noreply, State}
    end;
handle_info({telemetry_nack, Id}, State = #state{unacked = U}) ->
    case maps:find(Id, U) of
        {ok, {First, _, _}} ->
            Hold = erlang:monotonic_time(millisecond) + ?NACK_BACKOFF_MS,
            {noreply, (resend_from(First, State))#state{hold_until = Hold}};
        error -> {noreply, State}
    end;
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
    counter(overflow).

counter(Name) ->
    ets:lookup_element(?COUNTERS, Name, 2).

store_node() ->
    case [N || #{role := store, status := up, name := N} <- stellar_py_node:info()] of
        [Node | _] -> Node;
        [] -> undefined
    end.

store_call(Request, Timeout) ->
    case store_node() of
        undefined ->
            {error, store_unavailable};
        Node ->
            try gen_server:call({store, Node}, Request, Timeout) of
                {error, {not_owner, _Why}} -> {error, store_unavailable};  % status/0 says why
                Reply -> Reply
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
            unsent(State#state{store = undefined});
        New ->
            Now = erlang:monotonic_time(millisecond),
            SeenAt = case State#state.store_seen_at of undefined -> Now; T -> T end,
            case sats_starting() andalso Now - SeenAt < ?SATS_SETTLE_MS of
                true ->
                    State#state{store_seen_at = SeenAt};
                false ->
                    restore(New, unsent(State#state{store = New, store_seen_at = undefined}))
            end
    end.

%% True while one of this node's sats nodes is starting (none is `up' yet, or not all are).
sats_starting() ->
    lists:any(fun(#{role := Role, status := Status}) -> Role =:= sats andalso Status =:= starting end,
              stellar_py_node:info()).

%% A new store (or none): nothing sent to the old one counts as sent; its batches go again.
unsent(State = #state{unacked = U}) ->
    _ = map_size(U) > 0 andalso
        logger:info("telemetry: ~b unconfirmed batch(es) will be sent to the next store", [map_size(U)]),
    State#state{sent_upto = 0, unacked = #{}}.

restore(Node, State) ->
    try gen_server:call({store, Node}, satellites, 60000) of
        {error, {not_owner, Why}} -> not_owner(Node, Why, State);
        {ok, Sats} -> restore(Node, Sats, State#state{lease = owner})
    catch
        Class:Reason ->
            logger:error("store ~s: restore failed (~p:~0P); retrying", [Node, Class, Reason, 20]),
            State#state{store = undefined}
    end.

%% Another cluster owns the database: nothing is restored or delivered; asked again next tick.
not_owner(Node, Why, State = #state{lease = Lease}) ->
    _ = Lease =:= {not_owner, Why} orelse
        logger:warning("store ~s: this cluster does not own the database: ~ts; nothing is restored "
                       "or delivered until it does (asking again every tick)", [Node, Why]),
    State#state{store = undefined, lease = {not_owner, Why}}.

restore(Node, Sats, State = #state{restores = R}) ->
    try
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
    report_overflow(State);
flush(State = #state{store = Store, sent = Sent}) ->
    _ = Sent =/= [] andalso store_cast(Store, {commands_sent, lists:reverse(Sent)}),
    State1 = flush_telemetry(resend_late(State#state{sent = []})),
    checkpoint(report_overflow(State1)).

%% Sends the rows after sent_upto, in batches of at most ?BATCH, each remembered until acked.
flush_telemetry(State = #state{hold_until = Hold}) when is_integer(Hold) ->
    case erlang:monotonic_time(millisecond) < Hold of
        true -> State;
        false -> send_telemetry(State)
    end.

send_telemetry(State = #state{store = Store, sent_upto = Upto, batch_seq = Seq, unacked = U}) ->
    case take(ets:next(?TAB, Upto), ?BATCH, []) of
        [] ->
            State;
        Batch = [{First, _, _} | _] ->
            {Last, _, _} = lists:last(Batch),
            Id = Seq + 1,
            store_cast(Store, {telemetry, self(), Id, [{SatId, T} || {_, SatId, T} <- Batch]}),
            State1 = State#state{sent_upto = Last, batch_seq = Id,
                                 unacked = U#{Id => {First, Last, erlang:monotonic_time(millisecond)}}},
            case length(Batch) =:= ?BATCH of
                true -> send_telemetry(State1);
                false -> State1
            end
    end.

take('$end_of_table', _N, Acc) ->
    lists:reverse(Acc);
take(_Key, 0, Acc) ->
    lists:reverse(Acc);
take(Key, N, Acc) ->
    case ets:lookup(?TAB, Key) of
        [Row] -> take(ets:next(?TAB, Key), N - 1, [Row | Acc]);
        [] -> take(ets:next(?TAB, Key), N, Acc)
    end.

delete_range(Key, Last) when is_integer(Key), Key =< Last ->
    Next = ets:next(?TAB, Key),
    true = ets:delete(?TAB, Key),
    delete_range(Next, Last);
delete_range(_Key, _Last) ->
    ok.

%% Sends again every row from buffer key First on (batches after it included).
resend_from(First, State = #state{sent_upto = Upto, unacked = U}) ->
    State#state{sent_upto = min(Upto, First - 1),
                unacked = maps:filter(fun(_, {F, _, _}) -> F < First end, U)}.

%% A batch not confirmed within ?ACK_TIMEOUT_MS (the store lost it, or could not write it for
%% that long) is sent again.
resend_late(State = #state{unacked = U}) when map_size(U) =:= 0 ->
    State;
resend_late(State = #state{unacked = U}) ->
    Now = erlang:monotonic_time(millisecond),
    case lists:min([{F, At} || {F, _, At} <- maps:values(U)]) of
        {First, At} when Now - At > ?ACK_TIMEOUT_MS ->
            logger:warning("telemetry: a batch sent ~b ms ago is not confirmed; sending it again",
                           [Now - At]),
            resend_from(First, State);
        _ ->
            State
    end.

reject(N) ->
    Total = ets:update_counter(?COUNTERS, rejected, N),
    logger:warning("telemetry: the database refused ~b sample(s) (~b in total)", [N, Total]).

%% Dropped rows are logged at most every ?OVERFLOW_LOG_MS, with the count since the last
%% warning; the counter itself is never reset (it is in status/0 and /metrics).
report_overflow(State = #state{overflow_logged = Logged, overflow_logged_at = At}) ->
    Now = erlang:monotonic_time(millisecond),
    case overflow() of
        N when N > Logged, Now - At >= ?OVERFLOW_LOG_MS ->
            logger:warning("telemetry buffer full (~b rows): ~b sample(s) dropped since the last "
                           "warning, ~b in total",
                           [application:get_env(stellar, telemetry_buffer, 200000), N - Logged, N]),
            State#state{overflow_logged = N, overflow_logged_at = Now};
        _ ->
            State
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
