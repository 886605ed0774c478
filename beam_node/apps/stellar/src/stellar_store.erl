%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Persistence, BEAM side. PostgreSQL belongs to the `store' Python node (role store, which
%% owns the connections); this server is its client. Without a store node in py_nodes,
%% persistence is off: satellites live in memory and commands get ids without a ledger.
%%
%% - Commands: submit/4 commits a command to the ledger (a call to the store) before its id
%%   goes back to the caller; with no store reachable it answers {error, store_unavailable}
%%   and nothing is acknowledged; on a node without quorum (stellar_cluster:has_quorum/0),
%%   {error, no_quorum}.
%% - Outcomes: each command result goes to the store with the satellite's state, which the
%%   store writes in one transaction (done/failed is final). A result lost on the way is
%%   healed by redelivery: the actor answers `done' again for an id it applied.
%% - Checkpoints: every checkpoint_ms, the satellites of this node whose catalog entry changed
%%   other than by ticks (commands, mode changes, placements, deletions) are written, coalesced,
%%   a slice every ?SLICE_MS over the period (not in one burst); all of them at a clean
%%   stop. A tick's fields (energy, memory, mode, time) reach the database as telemetry, and a
%%   restore takes them from there when newer; so a satellite changed only by ticks is written
%%   once every checkpoint_ticks_ms (a share of them each round), not each period.
%% - Telemetry: each tick pass goes into an ETS buffer already packed for the store, up to
%%   ?BATCH rows an object (no message per tick, no ETS operation per row); every
%%   telemetry_flush_ms the new rows go to the store in numbered batches, spread over the
%%   period (a tick's burst is not sent in one go). A row leaves the
%%   buffer only when the store confirms its batch written ({telemetry_ack, ...}): a batch
%%   the store could not take ({telemetry_nack, ...}), not confirmed within ?ACK_TIMEOUT_MS, or
%%   sent to a store node that died, is sent again (at least once; the store's insert is
%%   idempotent on satellite and time). The buffer is bounded (telemetry_buffer rows): beyond
%%   it rows are dropped, counted (never reset) and logged; so are rows the database refused.
%%   At most telemetry_window (80) batches are unconfirmed at once (flow control: the store
%%   is sent what it can take, and a refusal stays the exception; its writer holds 200,000
%%   rows, two BEAM nodes' windows). 40 held 100,000 satellites' telemetry to ~75,000 rows/s.
%% - Restore: each time the store node comes up, satellites that the catalog does not know are
%%   restored from their checkpoints, and every queued or sent command is delivered again.
%% - Ownership: one store node at a time owns the database (the store node's lease). A store
%%   that answers {error, {not_owner, Why}} restores and delivers nothing; this server says why
%%   (log, status/0) and asks again every tick, so it takes over when the owner stops or dies.
%%   Every tick this server tells its store whether this node has quorum ({quorum, self(), Q});
%%   a store without it gives its lease up, so the majority side's store can take it, and
%%   answers {store_lease, Owner, Why}, which this server follows.
%% - Routing in a cluster: the server whose store owns the database announces it to every
%%   connected BEAM node each tick ({owner_is, Node, StoreNode}). The others send everything
%%   there: commands and creations by erpc (a call to the owner's store node, through its BEAM
%%   node: Python nodes may listen on loopback only), outcomes, alarms, checkpoints and
%%   telemetry through the owner's stellar_store ({relay, ...}, in order; telemetry batches are
%%   acknowledged back to the sender). With no owner known, outcomes wait here (bounded); each
%%   time an owner is found, the pending commands of this node's satellites are delivered
%%   again (an outcome lost with a connection comes back) and every satellite is checkpointed.
-module(stellar_store).
-behaviour(gen_server).

%% API.
-export([start_link/0]).
-export([child_spec/0]).
-export([new_table/0]).
-export([enabled/0]).
-export([create/1]).
-export([create_many/1]).
-export([submit/4, submit/5]).
-export([sent/1]).
-export([result/4]).
-export([telemetry/2, telemetry_many/1, telemetry_packed/3]).
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
-define(SLICE_MS, 100).  % a slice of the checkpoint round this often (not each flush: a flush's 1,000 states held the store node's loop ~40 ms)
-define(BATCH, 1000).  % rows a telemetry message: the store node decodes and judges one message at a time, and a command call waits behind it
-define(ACK_TIMEOUT_MS, 60000).
-define(NACK_BACKOFF_MS, 2000).  % a store that refused a batch (its buffer full) gets a pause
-define(OVERFLOW_LOG_MS, 10000).
%% A new store's restore waits (at most this long) for this node's sats nodes that are still
%% starting, so that the satellites spread over all of them rather than the first one up.
-define(SATS_SETTLE_MS, 15000).
%% An owner not announced for this long (or whose node is gone) is not routed to any more.
-define(OWNER_STALE_MS, 3000).
-define(HELD_MAX, 10000).  % outcomes, alarms and sent marks waiting for an owner
-define(REMOTE_MARGIN_MS, 1000).  % an erpc's timeout beyond the store call's own

-type telemetry_status() :: #{rows := non_neg_integer(), buffered := non_neg_integer(),
                              unconfirmed_batches := non_neg_integer(),
                              dropped := #{buffer_full := non_neg_integer(),
                                           rejected := non_neg_integer()}}.
-export_type([telemetry_status/0]).

-record(state, {
    store :: node() | undefined,
    restores = 0 :: non_neg_integer(),
    checkpoint_at = 0 :: integer(),  % when the current checkpoint round began (0: none yet)
    checkpoint_todo = [] :: [binary()],  % ids of this round not yet written
    checkpoint_left = 0 :: non_neg_integer(),  % length(checkpoint_todo)
    checkpoint_round = 0 :: non_neg_integer(),  % rounds begun: picks this round's share of ticked satellites
    checkpoint_step = 1 :: pos_integer(),  % ids written each flush in this round
    sent = [] :: [binary()],
    overflow_logged = 0 :: non_neg_integer(),  % dropped rows at the last warning
    overflow_logged_at = 0 :: integer(),
    batch_seq = 0 :: non_neg_integer(),
    sent_upto = 0 :: non_neg_integer(),  % the newest buffer key sent to the current store
    unacked = #{} :: #{pos_integer() => {pos_integer(), pos_integer(), integer()}},  % Id => {First, Last, SentAtMs}
    lease = unknown :: unknown | owner | {not_owner, binary()},
    hold_until = 0 :: integer(),  % monotonic ms: no telemetry sent before (after a nack)
    pacing = false :: boolean(),  % a send_telemetry message will send the next batch
    store_seen_at :: integer() | undefined,  % monotonic ms: a new store waits for the sats nodes
    quorum = true :: boolean(),  % stellar_cluster:has_quorum() at the last tick
    lease_hint = unknown :: unknown | boolean(),  % this node's store's last {store_lease, ...}
    owner :: {node(), node(), integer()} | undefined,  % {Beam, StorePy, SeenAtMs} last announced
    route = none :: route(),  % where casts and telemetry go now
    held = {0, []} :: {non_neg_integer(), [term()]},  % casts waiting for a route, newest first
    dropped_held = 0 :: non_neg_integer(),
    relays = #{} :: #{neg_integer() => {pid(), pos_integer(), integer()}},  % RelayId => {From, Id, AtMs}
    relay_seq = 0 :: non_neg_integer()
}).

-type route() :: none | local | {remote, node(), node()}.

%% API.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => 10000, type => worker, modules => [?MODULE]}.

%% The telemetry buffer and its counters (owned by stellar_sup, like the other tables): rows
%% in the buffer (buffered), rows confirmed stored, rows dropped because the buffer was full
%% (overflow) or the database refused them (rejected); all but buffered only grow. The buffer
%% holds {Key, Count, Ids, Records}: Count rows in stellar_proto_v1:telemetry_rows/1's
%% layout, keys in the order they were buffered.
-spec new_table() -> ok.
new_table() ->
    %% No decentralized counters (the default of an ordered_set with write_concurrency): with
    %% them a size read suspends the caller until thread progress (0.1-7 s measured on a loaded
    %% host). The row count is the buffered counter, read for every tick pass.
    ?TAB = ets:new(?TAB, [ordered_set, public, named_table, {write_concurrency, true},
                          {decentralized_counters, false}]),
    ?COUNTERS = ets:new(?COUNTERS, [set, public, named_table, {write_concurrency, true}]),
    true = ets:insert(?COUNTERS, [{overflow, 0}, {rows, 0}, {rejected, 0}, {buffered, 0}]),
    ok.

%% Whether a store node is configured (persistence on).
-spec enabled() -> boolean().
enabled() ->
    persistent_term:get(?ENABLED, false).

%% Writes a new satellite (its row exists before commands can refer to it). A satellite the
%% store knows, but deleted, is created again from this state. Like submit/4, with a deadline:
%% {error, store_unavailable} means it was not created (a late write is deleted again).
-spec create(stellar_proto_v1:sat_state())
    -> ok | {error, already_exists | store_unavailable | no_quorum | term()}.
create(SatState) ->
    case enabled() of
        false -> ok;
        true ->
            DeadlineMs = erlang:system_time(millisecond) + ?SUBMIT_TIMEOUT,
            store_call({create_satellite, SatState, DeadlineMs}, ?SUBMIT_TIMEOUT)
    end.

%% create/1 for many satellites in one call to the store node (at most its batch, 2,000):
%% one answer per state, in order.
-spec create_many([stellar_proto_v1:sat_state()])
    -> [ok | {error, already_exists | store_unavailable | no_quorum | term()}].
create_many([]) ->
    [];
create_many(SatStates) ->
    case enabled() of
        false ->
            [ok || _ <- SatStates];
        true ->
            DeadlineMs = erlang:system_time(millisecond) + ?SUBMIT_TIMEOUT,
            N = length(SatStates),
            case store_call({create_satellites, SatStates, DeadlineMs}, ?SUBMIT_TIMEOUT) of
                {ok, Answers} when length(Answers) =:= N -> Answers;
                {error, Reason} -> lists:duplicate(N, {error, Reason});
                Other -> lists:duplicate(N, {error, {bad_reply, Other}})
            end
    end.

%% Commits a command to the ledger. Returns its id (the original one when IdemKey was used
%% before for this satellite) and whether it is new; without persistence, a fresh id.
%% The store gets this call's deadline and commits before it or not at all, so
%% {error, store_unavailable} means the command never runs (the gateway's own timeout is
%% longer than ?SUBMIT_TIMEOUT).
-spec submit(binary(), atom(), map(), binary() | undefined)
    -> {ok, binary(), new | {existing, atom()}} | {error, term()}.
submit(SatId, Kind, Args, IdemKey) ->
    submit(SatId, Kind, Args, IdemKey, undefined).

%% As submit/4; SubmittedBy (undefined: the store's default) is who the ledger records.
-spec submit(binary(), atom(), map(), binary() | undefined, binary() | undefined)
    -> {ok, binary(), new | {existing, atom()}} | {error, term()}.
submit(SatId, Kind, Args, IdemKey, SubmittedBy) ->
    CmdId = stellar_sat:new_command_id(),
    case enabled() of
        false ->
            {ok, CmdId, new};
        true ->
            DeadlineMs = erlang:system_time(millisecond) + ?SUBMIT_TIMEOUT,
            store_call({submit_command, CmdId, SatId, Kind, Args, IdemKey, DeadlineMs, SubmittedBy},
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
    telemetry_many([{SatId, Telemetry}]).

%% The samples of a tick pass (valid telemetry maps: stellar_proto_v1:is_telemetry/1),
%% buffered for the store: packed for the wire at once, ?BATCH rows an ETS object. A tree
%% insert, a lookup and a delete per row took ~3.5 us of a row's 4 here (measured: ~35 % of a
%% core at 100,000 satellites). Beyond the buffer's bound (telemetry_buffer rows) the rest of
%% the pass is dropped and counted.
-spec telemetry_many([{binary(), stellar_proto_v1:telemetry()}]) -> ok.
telemetry_many([]) ->
    ok;
telemetry_many(Samples) ->
    case enabled() of
        true -> lists:foreach(fun buffer/1, chunks(Samples, ?BATCH));
        false -> ok
    end.

buffer(Chunk) ->
    {telemetry_rows, _, Count, Ids, Records} = stellar_proto_v1:telemetry_rows(Chunk),
    buffer_packed(Count, Ids, Records).

%% Samples already packed (stellar_proto_v1:telemetry_rows/1's Count, Ids and Records, such as
%% a sats node's sat_ticks carries them, checked by stellar_proto_v1:classify/1), buffered as
%% telemetry_many/1 buffers them, without unpacking.
-spec telemetry_packed(non_neg_integer(), binary(), binary()) -> ok.
telemetry_packed(0, _Ids, _Records) ->
    ok;
telemetry_packed(Count, Ids, Records) ->
    case enabled() of
        true -> buffer_packed(Count, Ids, Records);
        false -> ok
    end.

buffer_packed(Count, Ids, Records) when Count > ?BATCH ->
    {HeadIds, HeadRecords, TailIds, TailRecords} = stellar_proto_v1:telemetry_rows_split(?BATCH, Ids, Records),
    ok = buffer_packed(?BATCH, HeadIds, HeadRecords),
    buffer_packed(Count - ?BATCH, TailIds, TailRecords);
buffer_packed(Count, Ids, Records) ->
    Limit = application:get_env(stellar, telemetry_buffer, 200000),
    Before = ets:update_counter(?COUNTERS, buffered, Count) - Count,
    Taken = max(0, min(Count, Limit - Before)),
    _ = Taken < Count andalso begin
        _ = ets:update_counter(?COUNTERS, buffered, Taken - Count),
        ets:update_counter(?COUNTERS, overflow, Count - Taken)
    end,
    _ = Taken > 0 andalso begin
        {TakenIds, TakenRecords, _, _} = stellar_proto_v1:telemetry_rows_split(Taken, Ids, Records),
        ets:insert(?TAB, {erlang:unique_integer([monotonic, positive]), Taken, TakenIds, TakenRecords})
    end,
    ok.

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
                    owner := boolean() | undefined, not_owner_reason := binary(),
                    route := none | local | remote, owner_node := node() | undefined,
                    quorum := boolean()}.
status() ->
    gen_server:call(?MODULE, status).


%% gen_server.

-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),  % terminate/2 writes the last checkpoint
    {ok, PyNodes} = stellar_config:py_nodes(),
    persistent_term:put(?ENABLED, lists:any(fun(#{role := R}) -> R =:= store end, PyNodes)),
    true = ets:delete(?COUNTERS, route),  % a route of this server's previous run (the table outlives it)
    _ = case enabled() of
        true -> schedule(tick, 0), schedule(checkpoint_slice, ?SLICE_MS);
        false -> ok
    end,
    Now = erlang:monotonic_time(millisecond),  % (monotonic time may be negative)
    {ok, #state{overflow_logged_at = Now - ?OVERFLOW_LOG_MS, hold_until = Now}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(status, _From, State = #state{store = Store, restores = R, unacked = U}) ->
    Buffered = counter(buffered),
    Telemetry = #{rows => counter(rows), buffered => Buffered, unconfirmed_batches => map_size(U),
                  dropped => #{buffer_full => overflow(), rejected => counter(rejected)}},
    {Owner, Why} = case State#state.lease of
        unknown -> {undefined, <<>>};
        owner -> {true, <<>>};
        {not_owner, W} -> {false, W}
    end,
    {Route, OwnerNode} = case State#state.route of
        none -> {none, undefined};
        local -> {local, node()};
        {remote, Beam, _} -> {remote, Beam}
    end,
    Reply = #{enabled => enabled(), store => Store, restores => R,
              buffered => Buffered, overflow => overflow(), telemetry => Telemetry,
              owner => Owner, not_owner_reason => Why, route => Route, owner_node => OwnerNode,
              quorum => State#state.quorum},
    {reply, Reply, State};
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({sent, CmdId}, State = #state{sent = Sent}) ->
    {noreply, State#state{sent = [CmdId | Sent]}};
handle_cast({result, SatId, CmdId, Outcome, SatState}, State = #state{sent = Sent}) ->
    %% The ledger sees `sent' before the outcome.
    State1 = case Sent of
        [] -> State;
        _ -> to_store({commands_sent, lists:reverse(Sent)}, State#state{sent = []})
    end,
    {noreply, to_store({command_result, CmdId, SatId, Outcome, SatState}, State1)};
handle_cast({alarm, SatId, Data}, State) ->
    {noreply, to_store({alarm, SatId, Data}, State)};
%% Another BEAM node's store owns the database (it says so every tick).
handle_cast({owner_is, Beam, Py}, State) when is_atom(Beam), is_atom(Py), Beam =/= node() ->
    {noreply, State#state{owner = {Beam, Py, erlang:monotonic_time(millisecond)}}};
%% From a node that routes to this one's store (in order, per sender).
handle_cast({relay, _From, Msg}, State = #state{store = undefined}) ->
    logger:warning("~s not written: this node's store no longer owns the database (the sender "
                   "delivers again when it finds the owner)", [element(1, Msg)]),
    {noreply, State};
handle_cast({relay, _From, Msg}, State = #state{store = Store}) ->
    store_cast(Store, Msg),
    {noreply, State};
handle_cast({relay_telemetry, From, Id, _Rows}, State = #state{store = undefined}) ->
    From ! {telemetry_nack, Id},
    {noreply, State};
handle_cast({relay_telemetry, From, Id, Rows}, State = #state{store = Store, relays = Relays,
                                                               relay_seq = Seq}) ->
    RelayId = -(Seq + 1),  % the store acks it here; this server's own batches have ids > 0
    store_cast(Store, {telemetry, self(), RelayId, Rows}),
    At = erlang:monotonic_time(millisecond),
    {noreply, State#state{relays = Relays#{RelayId => {From, Id, At}}, relay_seq = Seq + 1}};
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(tick, State) ->
    schedule(tick, flush_ms()),
    State1 = follow_owner(connect(tell_quorum(State))),
    {noreply, flush(State1)};
handle_info(checkpoint_slice, State = #state{route = Route}) ->
    schedule(checkpoint_slice, ?SLICE_MS),
    {noreply, case Route of none -> State; _ -> write_checkpoints(State) end};
handle_info(send_telemetry, State = #state{route = Route}) ->
    State1 = State#state{pacing = false},
    {noreply, case Route of none -> State1; _ -> flush_telemetry(State1) end};
handle_info({store_lease, Owner, Why}, State) when is_boolean(Owner), is_binary(Why) ->
    Lease = case Owner of
        true -> State#state.lease;
        false when State#state.store =:= undefined -> not_owner_logged(Why, State#state.lease);
        false -> State#state.lease  % connect/1 lets the store go at the next tick
    end,
    {noreply, State#state{lease_hint = Owner, lease = Lease}};
handle_info({telemetry_ack, Id, Stored, Rejected}, State = #state{relays = Relays})
  when is_integer(Id), Id < 0 ->
    case maps:take(Id, Relays) of
        {{From, FromId, _At}, Relays1} ->
            From ! {telemetry_ack, FromId, Stored, Rejected},
            {noreply, State#state{relays = Relays1}};
        error ->
            {noreply, State}
    end;
handle_info({telemetry_nack, Id}, State = #state{relays = Relays}) when is_integer(Id), Id < 0 ->
    case maps:take(Id, Relays) of
        {{From, FromId, _At}, Relays1} ->
            From ! {telemetry_nack, FromId},
            {noreply, State#state{relays = Relays1}};
        error ->
            {noreply, State}
    end;
handle_info({telemetry_ack, Id, Stored, Rejected}, State = #state{unacked = U})
  when is_integer(Stored), Stored >= 0, is_integer(Rejected), Rejected >= 0 ->
    case maps:take(Id, U) of
        {{First, Last, _SentAt}, U1} ->
            delete_range(First, Last),
            _ = ets:update_counter(?COUNTERS, rows, Stored),
            _ = Rejected > 0 andalso reject(Rejected),
            State1 = State#state{unacked = U1},
            %% A full window held the next batch back: this ack lets it go.
            {noreply, case map_size(U) >= window() andalso State#state.route =/= none of
                          true -> flush_telemetry(State1);
                          false -> State1
                      end};
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
terminate(_Reason, State = #state{route = Route}) when Route =/= none ->
    _ = flush(State#state{checkpoint_at = erlang:system_time(millisecond)}),
    Self = node(),
    All = [checkpoint_row(E) || E = #{owner := Owner} <- all_entries(), Owner =:= Self],
    try
        Target = case Route of local -> {local, State#state.store}; _ -> Route end,
        lists:foreach(fun(Chunk) -> ok = route_call(Target, {checkpoint, Chunk}, 30000) end,
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
    case quorum() of
        false ->
            {error, no_quorum};
        true ->
            Route = case ets:lookup(?COUNTERS, route) of
                [{route, R = {remote, _, _}}] -> R;
                _ -> case store_node() of undefined -> none; Py -> {local, Py} end
            end,
            try route_call(Route, Request, Timeout) of
                {error, {not_owner, _Why}} -> {error, store_unavailable};  % status/0 says why
                Reply -> Reply
            catch _:_ -> {error, store_unavailable}
            end
    end.

%% A call to the owning store node: this node's, or another BEAM node's through that node.
route_call(none, _Request, _Timeout) ->
    {error, store_unavailable};
route_call({local, undefined}, _Request, _Timeout) ->
    {error, store_unavailable};
route_call({local, Py}, Request, Timeout) ->
    gen_server:call({store, Py}, Request, Timeout);
route_call({remote, Beam, Py}, Request, Timeout) ->
    erpc:call(Beam, gen_server, call, [{store, Py}, Request, Timeout], Timeout + ?REMOTE_MARGIN_MS).

%% Whether this node may accept commands (a node on the minority side of a partition may not).
quorum() ->
    stellar_cluster:has_quorum().

store_cast(Node, Msg) ->
    gen_server:cast({store, Node}, Msg).

%% Every tick: this node's store hears whether we have quorum (and answers {store_lease, ...}).
tell_quorum(State) ->
    Q = quorum(),
    _ = Q =/= State#state.quorum andalso
        logger:warning("this node ~s quorum: ~s", [case Q of true -> "has"; false -> "lost" end,
            case Q of true -> "commands are taken again";
                      false -> "commands are refused and the store gives its lease up" end]),
    _ = case store_node() of
        undefined -> ok;
        Py -> store_cast(Py, {quorum, self(), Q})
    end,
    State#state{quorum = Q}.

%% Follows this node's store node while it owns the database; each time it (re)appears as
%% the owner, restores from it. It is let go when it says it lost the lease or we lost quorum.
connect(State = #state{store = Old, lease_hint = false}) when Old =/= undefined ->
    logger:warning("store ~s no longer owns the database", [Old]),
    unsent(State#state{store = undefined, lease = {not_owner, <<"the lease was lost">>}});
connect(State = #state{store = Old, quorum = false}) when Old =/= undefined ->
    logger:warning("store ~s: this node lost quorum; it no longer owns the database", [Old]),
    unsent(State#state{store = undefined, lease = {not_owner, <<"this node has no quorum">>}});
connect(State = #state{store = Old}) ->
    case store_node() of
        Old ->
            State;
        undefined ->
            logger:warning("store node ~s is down: commands are refused until it is back", [Old]),
            unsent(State#state{store = undefined});
        _New when not State#state.quorum; State#state.lease_hint =:= false ->
            State;  % not the owner (it says why): nothing to restore
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

%% The route for casts and telemetry: this node's store while it owns the database (then we
%% announce it to the other BEAM nodes), else the last owner announced if it is fresh and
%% connected, else none. A new route gets every unconfirmed telemetry batch, the outcomes held
%% meanwhile, a full checkpoint, and (another node's store) a redelivery of the pending
%% commands of this node's satellites.
follow_owner(State = #state{store = Store, quorum = Q, owner = Owner, route = Old}) ->
    Now = erlang:monotonic_time(millisecond),
    Route = case {Store, Q, Owner} of
        {_, false, _} -> none;
        {Py, true, _} when Py =/= undefined ->
            gen_server:abcast(nodes(), ?MODULE, {owner_is, node(), Py}),
            local;
        {undefined, true, {Beam, Py, SeenAt}} ->
            case Now - SeenAt < max(?OWNER_STALE_MS, 4 * flush_ms()) andalso lists:member(Beam, nodes()) of
                true -> {remote, Beam, Py};
                false -> none
            end;
        {undefined, true, undefined} -> none
    end,
    case Route =:= Old of
        true -> State;
        false -> new_route(Old, Route, State)
    end.

new_route(Old, Route, State) ->
    true = case Route of
        {remote, _, _} -> ets:insert(?COUNTERS, {route, Route});
        _ -> ets:delete(?COUNTERS, route)
    end,
    case Route of
        none ->
            logger:warning("no store owns the database for this node (~s): commands are refused, "
                           "outcomes wait here", [route_text(Old)]);
        _ ->
            logger:info("persistence goes to ~s (was ~s)", [route_text(Route), route_text(Old)])
    end,
    _ = case Route of
        {remote, Beam, Py} -> redeliver_local(Beam, Py);
        _ -> ok
    end,
    {N, Held} = State#state.held,
    State1 = unsent(State#state{route = Route, held = {0, []}}),
    State2 = lists:foldl(fun to_store/2, State1, lists:reverse(Held)),
    _ = N > 0 andalso Route =/= none andalso
        logger:info("~b held outcome(s) and mark(s) sent to the store", [N]),
    case Route of
        none -> State2;
        _ -> State2#state{checkpoint_at = 0}
    end.

route_text(none) -> "no store";
route_text(local) -> "this node's store";
route_text({remote, Beam, Py}) -> io_lib:format("store ~s of ~s", [Py, Beam]).

%% The pending commands of the satellites whose shadow is here, delivered again (in a helper:
%% the list may be long and the owner slow).
redeliver_local(Beam, Py) ->
    _ = spawn(fun() ->
        try route_call({remote, Beam, Py}, pending_commands, 60000) of
            {ok, Pending} ->
                N = lists:foldl(fun(Cmd = {_, SatId, _, _}, Acc) ->
                                    case stellar_registry:whereis_local(SatId) of
                                        undefined -> Acc;
                                        _ -> Acc + redeliver(Cmd)
                                    end
                                end, 0, Pending),
                _ = N > 0 andalso logger:info("~b command(s) of this node's satellites delivered "
                                              "again", [N]);
            Other ->
                logger:warning("pending commands not read from ~s: ~0P", [Beam, Other, 10])
        catch Class:Reason ->
            logger:warning("pending commands not read from ~s: ~p:~0P", [Beam, Class, Reason, 10])
        end
    end),
    ok.

%% A cast for the owning store: to this node's store, through the owner's BEAM node, or held
%% until there is an owner (bounded: the oldest go first; redelivery heals lost outcomes).
to_store(Msg, State = #state{route = local, store = Store}) ->
    store_cast(Store, Msg),
    State;
to_store(Msg, State = #state{route = {remote, Beam, _}}) ->
    gen_server:cast({?MODULE, Beam}, {relay, node(), Msg}),
    State;
to_store(Msg, State = #state{route = none, held = {N, Held}, dropped_held = D}) when N < ?HELD_MAX ->
    _ = N =:= 0 andalso D =:= 0 andalso
        logger:warning("~s waits here: no store owns the database for this node", [element(1, Msg)]),
    State#state{held = {N + 1, [Msg | Held]}};
to_store(Msg, State = #state{route = none, held = {N, Held}, dropped_held = D}) ->
    _ = D rem 1000 =:= 0 andalso
        logger:warning("~b outcome(s) or mark(s) waiting for a store: the oldest are dropped "
                       "(~b so far; delivered again when a store is back)", [N, D + 1]),
    State#state{held = {N, [Msg | lists:droplast(Held)]}, dropped_held = D + 1}.

flush_ms() ->
    application:get_env(stellar, telemetry_flush_ms, 500).

%% Batches sent and not yet confirmed, at most: a store that is behind gets no more than it
%% can hold (its writer holds 200,000 rows, room for two nodes' windows), rather than refusals,
%% a pause and everything after the refused batch sent again.
window() ->
    application:get_env(stellar, telemetry_window, 80).

%% True while one of this node's sats nodes is starting (none is `up' yet, or not all are).
sats_starting() ->
    lists:any(fun(#{role := Role, status := Status}) -> Role =:= sats andalso Status =:= starting end,
              stellar_py_node:info()).

%% A new store (or none): nothing sent to the old one counts as sent; its batches go again.
%% Batches relayed for other nodes to the old store are refused back to them (they send again).
unsent(State = #state{unacked = U, relays = Relays}) ->
    _ = map_size(U) > 0 andalso
        logger:info("telemetry: ~b unconfirmed batch(es) will be sent to the next store", [map_size(U)]),
    _ = [From ! {telemetry_nack, Id} || {From, Id, _} <- maps:values(Relays)],
    State#state{sent_upto = 0, unacked = #{}, relays = #{}}.

%% Relayed batches the store never confirmed: their senders send them again after their own
%% ?ACK_TIMEOUT_MS; their entries go.
expire_relays(State = #state{relays = Relays}) when map_size(Relays) =:= 0 ->
    State;
expire_relays(State = #state{relays = Relays}) ->
    Since = erlang:monotonic_time(millisecond) - ?ACK_TIMEOUT_MS,
    State#state{relays = maps:filter(fun(_, {_, _, At}) -> At >= Since end, Relays)}.

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
not_owner(_Node, Why, State = #state{lease = Lease}) ->
    State#state{store = undefined, lease = not_owner_logged(Why, Lease)}.

not_owner_logged(Why, Lease) ->
    _ = Lease =:= {not_owner, Why} orelse
        logger:warning("this node's store does not own the database: ~ts; it restores nothing "
                       "(asking again every tick)", [Why]),
    {not_owner, Why}.

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

flush(State = #state{route = none}) ->
    report_overflow(expire_relays(State));
flush(State = #state{sent = Sent}) ->
    State1 = case Sent of
        [] -> State;
        _ -> to_store({commands_sent, lists:reverse(Sent)}, State#state{sent = []})
    end,
    State2 = flush_telemetry(resend_late(expire_relays(State1))),
    checkpoint(report_overflow(State2)).

%% Sends the rows after sent_upto, in batches of at most ?BATCH, each remembered until acked.
%% The batches are spread over the flush period, not sent at once: the satellites' ticks come
%% in a burst each second, and 10 batches at once held the store node's loop (and a core of
%% PostgreSQL's COPY) ~50 ms, with every command submitted meanwhile waiting behind them.
flush_telemetry(State = #state{pacing = true}) ->
    State;  % the batches of the previous flush are still on their way: they go on from sent_upto
flush_telemetry(State = #state{hold_until = Hold}) when is_integer(Hold) ->
    case erlang:monotonic_time(millisecond) < Hold of
        true -> State;
        false -> send_telemetry(State)
    end.

send_telemetry(State = #state{sent_upto = Upto, batch_seq = Seq, unacked = U}) ->
    case map_size(U) < window() andalso take(ets:next(?TAB, Upto), 0, []) of
        false ->
            State;  % the window is full: the next ack sends on
        {[], _} ->
            State;
        {Batch = [{First, _, _, _} | _], More} ->
            {Last, _, _, _} = lists:last(Batch),
            Id = Seq + 1,
            send_batch(State, Id, stellar_proto_v1:telemetry_rows_join([{C, I, R} || {_, C, I, R} <- Batch])),
            State1 = State#state{sent_upto = Last, batch_seq = Id,
                                 unacked = U#{Id => {First, Last, erlang:monotonic_time(millisecond)}}},
            case More of
                true ->
                    %% The next batch after a gap that sends what is buffered now within one
                    %% flush period (a longer backlog goes faster, so it is never outpaced).
                    GapMs = flush_ms() * ?BATCH div max(?BATCH, counter(buffered)),
                    _ = schedule(send_telemetry, max(1, GapMs)),
                    State1#state{pacing = true};
                false ->
                    State1
            end
    end.

send_batch(#state{route = local, store = Store}, Id, Rows) ->
    store_cast(Store, {telemetry, self(), Id, Rows});
send_batch(#state{route = {remote, Beam, _}}, Id, Rows) ->
    gen_server:cast({?MODULE, Beam}, {relay_telemetry, self(), Id, Rows}).

%% The buffer's objects from Key on, up to ?BATCH rows (one object at least), and whether
%% more are waiting after them.
take('$end_of_table', _Rows, Acc) ->
    {lists:reverse(Acc), false};
take(Key, Rows, Acc) ->
    case ets:lookup(?TAB, Key) of
        [Object = {_, Count, _, _}] when Acc =:= []; Rows + Count =< ?BATCH ->
            take(ets:next(?TAB, Key), Rows + Count, [Object | Acc]);
        [_] -> {lists:reverse(Acc), true};
        [] -> take(ets:next(?TAB, Key), Rows, Acc)
    end.

delete_range(Key, Last) when is_integer(Key), Key =< Last ->
    Next = ets:next(?TAB, Key),
    _ = case ets:take(?TAB, Key) of
        [{_, Count, _, _}] -> ets:update_counter(?COUNTERS, buffered, -Count);
        [] -> ok
    end,
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

%% A round every checkpoint_ms: the ids of this node's satellites changed since the last round
%% began (other than by ticks), and this round's share of those changed by ticks only (ids by
%% hash, one share of checkpoint_ticks_ms div checkpoint_ms each round), written a slice every
%% ?SLICE_MS so that the round ends with the period. All at once, 10,000 states held the store
%% node's loop 300 ms every 5 s, and the commands submitted meanwhile waited behind them; at
%% 100,000 satellites, a checkpoint of each every period was most of the store node's work.
checkpoint(State = #state{checkpoint_at = Since, checkpoint_left = Left, checkpoint_round = Round}) ->
    Now = erlang:system_time(millisecond),
    PeriodMs = application:get_env(stellar, checkpoint_ms, 5000),
    case Now - Since >= PeriodMs of
        false ->
            State;  % the round's slices are written every ?SLICE_MS (checkpoint_slice)
        true ->
            State1 = write_checkpoints(State#state{checkpoint_step = max(1, Left)}),  % a late round ends now
            Shares = max(1, application:get_env(stellar, checkpoint_ticks_ms, 60000) div PeriodMs),
            Changed = checkpoint_due(Since, Since - (Shares - 1) * PeriodMs, Shares, Round rem Shares),
            Count = length(Changed),
            Slices = max(1, PeriodMs div ?SLICE_MS),
            write_checkpoints(State1#state{checkpoint_at = Now, checkpoint_todo = Changed, checkpoint_left = Count,
                                           checkpoint_step = max(1, (Count + Slices - 1) div Slices),
                                           checkpoint_round = Round + 1})
    end.

%% This node's satellites written since Since (unless that write's state went to the store
%% with a command's outcome), or ticked since TicksSince and in share Share.
checkpoint_due(Since, TicksSince, Shares, Share) ->
    [Id || {Id, At, TickStamp, ChangedAt, PersistedAt} <- checkpoint_candidates(Since, TicksSince),
           (ChangedAt >= Since andalso PersistedAt =/= ChangedAt)
               orelse (max(At, TickStamp) >= TicksSince andalso erlang:phash2(Id, Shares) =:= Share)].

%% {Id, UpdatedAt, TickStamp, ChangedAt, PersistedAt} of this node's entries written since
%% Since, or written or ticked since TicksSince (changed_at is updated_at, persisted_at
%% undefined, where an entry has none; TickStamp: stellar_catalog:object()): selected in ETS,
%% a tuple each, rather than a copy of every entry (~100 MB at 100,000 satellites, every round).
checkpoint_candidates(Since, TicksSince) ->
    Self = node(),
    Clause = fun(Pattern, Changed, Result) ->
                     {{'_', Pattern#{id => '$1', owner => Self, updated_at => '$2'}, '_', '$5'},
                      [{'orelse', {'>=', Changed, Since}, {'>=', '$2', TicksSince}, {'>=', '$5', TicksSince}}],
                      [Result]}
             end,
    %% The first clause that matches an entry is the one used: the one with the most keys first.
    ets:select(stellar_catalog,
               [Clause(#{changed_at => '$3', persisted_at => '$4'}, '$3', {{'$1', '$2', '$5', '$3', '$4'}}),
                Clause(#{changed_at => '$3'}, '$3', {{'$1', '$2', '$5', '$3', undefined}}),
                Clause(#{persisted_at => '$4'}, '$2', {{'$1', '$2', '$5', '$2', '$4'}}),
                Clause(#{}, '$2', {{'$1', '$2', '$5', '$2', undefined}})]).

%% The next slice of the round, each as its entry is now (gone from the catalog: skipped).
write_checkpoints(State = #state{checkpoint_todo = []}) ->
    State;
write_checkpoints(State = #state{checkpoint_todo = Todo, checkpoint_left = Left, checkpoint_step = Step}) ->
    {Slice, Rest} = case Left > Step of
        true -> lists:split(Step, Todo);
        false -> {Todo, []}
    end,
    Self = node(),
    Rows = [checkpoint_row(E) || Id <- Slice, O <- ets:lookup(stellar_catalog, Id),
                                 E = #{owner := Owner} <- [stellar_catalog:entry(O)], Owner =:= Self],
    State1 = lists:foldl(fun(Chunk, S) -> to_store({checkpoint, Chunk}, S) end, State, chunks(Rows, 1000)),
    State1#state{checkpoint_todo = Rest, checkpoint_left = max(0, Left - Step)}.

checkpoint_row(#{id := Id, state := S, status := Status}) ->
    #{id => Id, state => S, deleted => Status =:= deleted}.

all_entries() ->
    [stellar_catalog:entry(O) || O <- ets:tab2list(stellar_catalog)].

chunks(L, N) -> chunks(L, N, length(L)).

chunks([], _N, _Len) -> [];
chunks(L, N, Len) when Len =< N -> [L];
chunks(L, N, Len) -> {H, T} = lists:split(N, L), [H | chunks(T, N, Len - N)].
