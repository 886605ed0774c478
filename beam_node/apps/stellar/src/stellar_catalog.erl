%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The cluster-wide satellite catalog. Every BEAM node keeps, in ETS, one entry per satellite
%% (its last known SatState, the Python node hosting its actor, the BEAM node owning its
%% shadow) and the Python nodes of the other BEAM nodes. This server is the only writer; it
%% replicates each change to the stellar_catalog of every other BEAM node (creations,
%% deletions and changes of owner at once; placements, command results and mode changes
%% batched every catalog_flush ms) and merges what they send by updated_at. Ticks (put_ticks/1,
%% every satellite every second) are the one write this server does not make: stellar_ticks
%% puts each tick's telemetry in its entry's tick slot (an object is {Id, Entry, Tick, Stamp}),
%% one ETS update each, and every read merges the slot into the entry (entry/1); any write of
%% the entry by this server folds the slot in and empties it. Ticks are not replicated one by
%% one either: every catalog_state_sync ms
%% the entries of this node changed since the last round go to the peers in one pass, so a
%% takeover starts a satellite from a state at most that old (a command's outcome is never
%% older: it goes with the next flush). Only BEAM peers get these messages, never the Python
%% nodes (which would decode and drop them). On nodeup both sides exchange their whole tables.
%%
%% Takeover: when a BEAM node goes down (or its app stops), every live entry that it owned
%% is started here if this node is the entry's assignee among the survivors (phash2 of the id
%% over the sorted live BEAM nodes). A periodic reconcile (catalog_reconcile ms) repeats the
%% check, and also restarts entries owned by this node that have no shadow anywhere (after a
%% restart of this app). Each entry names its shadow's pid, so any node finds any shadow. When
%% two BEAM nodes claim one id at once (survivors that disagree on who is alive), the claim of
%% the node with the smaller name wins on both sides and the other shadow yields: exactly one
%% shadow per id, without a cluster-wide lock on the creation and re-placement paths.
%%
%% Quorum (stellar_cluster): without it this node takes nothing over, moves nothing, and stops
%% every local shadow and actor (the entries stay). With it again, nothing starts until every
%% BEAM peer heard from has sent its whole table (merged by updated_at: the newer checkpoint
%% wins); then this node's own entries without a shadow are started again at once.
%%
%% Rebalancing: every reconcile, with quorum and every peer's table merged, the satellites per
%% BEAM node are compared with an even share over the nodes that have a `sats' node up (a node
%% without one gets none); each node moves at most rebalance_batch (200) of its own surplus to
%% the nodes short of their share, by stellar_sat:hand_off/4 (the state, the commands in
%% flight and the waiting callers go along; one actor at a time). Every node computes the same
%% plan from the same counts (plan/5) and carries out its own rows only.
-module(stellar_catalog).
-behaviour(gen_server).

%% API.
-export([start_link/0]).
-export([child_spec/0]).
-export([new_tables/0]).
-export([create/1]).
-export([create_many/1]).
-export([lookup/1]).
-export([shadow/1]).
-export([entries/0]).
-export([place/1]).
-export([running/2]).
-export([actor_down/1]).
-export([put_state/2]).
-export([put_persisted_state/2]).
-export([put_ticks/1]).
-export([entry/1]).
-export([delete/1]).
-export([py_node_changed/0]).
-export([py_nodes/0]).
-export([beam_nodes/0]).
-export([satellite_count/2]).
-export([choose/1]).
-export([assignee/2]).
-export([moving/2]).
-export([adopt/5]).
-export([rebalance_info/0]).
%% Pure parts of rebalancing.
-export([shares/2]).
-export([transfers/2]).
-export([plan/5]).

%% gen_server.
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-define(TAB, stellar_catalog).
-define(COUNTS, stellar_catalog_counts).
-define(PY, stellar_catalog_py).
%% An atomics array: the system ms when the last state sync round started (ticks are stamped
%% with it).
-define(SYNC_CLOCK, {?MODULE, sync_clock}).
-define(TOMBSTONE_MS, 60000).
-define(SELF_ORPHAN_MS, 10000).
-define(MOVE_CONCURRENCY, 16).
-define(ADOPT_TIMEOUT_MS, 60000).
%% No rebalancing until the membership has been still this long and takeovers are done: the
%% nodes' counts must agree first, or two nodes that see each other's takeover late move
%% satellites back and forth.
-define(SETTLE_MS, 3000).
%% Entries per message of a state sync round (and of a create_many's new entries).
-define(SYNC_CHUNK, 2000).

-type status() :: placing | running | deleted.
%% changed_at: system ms of the entry's last write other than a tick (what checkpoints go by:
%% a tick's fields reach the database as telemetry). Absent in entries from older peers.
%% persisted_at: the changed_at of a write whose state went to the store anyway (a command's
%% outcome carries it): no checkpoint is needed for it.
-type entry() :: #{id := binary(), state := stellar_proto_v1:known_state(),
                   node := node() | undefined, owner := node(), status := status(),
                   shadow => pid() | undefined, updated_at := integer(), changed_at => integer(),
                   persisted_at => integer()}.
-type py_info() :: #{name := node(), role := atom(), status := stellar_py_node:status(),
                     restarts := non_neg_integer(), os_pid := non_neg_integer() | undefined,
                     beam := node(), satellites := non_neg_integer()}.
-type beam_info() :: #{name := node(), role := beam, status := up, restarts := 0,
                       os_pid := non_neg_integer() | undefined, satellites := non_neg_integer()}.
-type rebalance() :: #{moved := non_neg_integer(), failed := non_neg_integer(),
                       rounds := non_neg_integer(), moving := non_neg_integer(),
                       stopped := non_neg_integer()}.
-export_type([entry/0, py_info/0, beam_info/0, rebalance/0]).

%% An object of the table: the entry and its newest tick's telemetry (none since the entry's
%% last write here), stamped with the start of the sync round before it (Stamp, system ms).
-type object() :: {binary(), entry(), stellar_proto_v1:telemetry() | none, integer()}.
-export_type([object/0]).

-record(state, {
    peers = #{} :: #{node() => non_neg_integer() | undefined},
    left = [] :: [node()],
    pending = #{} :: #{binary() => entry()},
    flush_timer :: reference() | undefined,
    takeover :: pid() | undefined,
    synced = [] :: [node()],
    beam_peers = [] :: [node()],  % stellar_cluster's peers heard from, sent every heartbeat
    restart_own = false :: boolean(),
    mover :: pid() | undefined,
    moving = 0 :: non_neg_integer(),
    moved = 0 :: non_neg_integer(),
    move_failed = 0 :: non_neg_integer(),
    rounds = 0 :: non_neg_integer(),
    stopped = 0 :: non_neg_integer(),
    changed_at = 0 :: integer(),
    %% System ms when the last state sync round started: a tick moves its entry's updated_at
    %% up to this, never to now, so that a claim of the id by another node, stamped after our
    %% last round, wins the merge here even while ticks keep coming, and the next round's
    %% select (updated_at >= this) picks the entry up. Stamping them all at the round instead
    %% took a second lookup and insert per entry, and a map of the ticked ids.
    synced_at = 0 :: integer()
}).

%% API.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

%% Creates the catalog tables; the calling process (stellar_sup) owns them.
-spec new_tables() -> ok.
new_tables() ->
    ?TAB = ets:new(?TAB, [set, public, named_table, {read_concurrency, true}]),
    ?COUNTS = ets:new(?COUNTS, [set, public, named_table, {write_concurrency, true}]),
    ?PY = ets:new(?PY, [set, public, named_table]),
    %% The sync clock survives a restart of the app (a new one would mean a new persistent
    %% term: a global garbage collection).
    _ = persistent_term:get(?SYNC_CLOCK, undefined) =:= undefined andalso
        persistent_term:put(?SYNC_CLOCK, atomics:new(1, [])),
    stellar_registry:new_table().

%% Adds a satellite from its initial state; its shadow is started by the caller.
-spec create(stellar_proto_v1:sat_state()) -> ok | {error, already_exists}.
create(SatState = #{id := _}) ->
    %% Long: at 100,000 satellites the catalog may be busy placing thousands for a while.
    gen_server:call(?MODULE, {create, SatState}, 60000).

%% create/1 for many states in one call: one answer per state, in order; their entries go to
%% the other BEAM nodes in one message.
-spec create_many([stellar_proto_v1:sat_state()]) -> [ok | {error, already_exists}].
create_many([]) ->
    [];
create_many(SatStates) ->
    gen_server:call(?MODULE, {create_many, SatStates}, 60000).

%% The live entry of Id.
-spec lookup(binary()) -> {ok, entry()} | error.
lookup(Id) ->
    case ets:whereis(?TAB) =/= undefined andalso ets:lookup(?TAB, Id) of
        [Object] -> case entry(Object) of
                        Entry = #{status := S} when S =/= deleted -> {ok, Entry};
                        _ -> error
                    end;
        _ -> error
    end.

%% The shadow of Id as the catalog knows it (it may have died since).
-spec shadow(binary()) -> pid() | undefined.
shadow(Id) ->
    case lookup(Id) of
        {ok, #{shadow := Pid}} when is_pid(Pid) -> Pid;
        _ -> undefined
    end.

%% Every live entry, sorted by id.
-spec entries() -> [entry()].
entries() ->
    case ets:whereis(?TAB) of
        undefined -> [];
        _ -> [E || O <- lists:keysort(1, ets:tab2list(?TAB)), E = #{status := S} <- [entry(O)], S =/= deleted]
    end.

%% Called by the shadow of Id before it starts an actor: makes this node Id's owner and the
%% caller its shadow, picks
%% the least-loaded connected `sats' node (counting this placement at once, so concurrent
%% placements spread) and returns it with the last known state.
-spec place(binary()) -> {ok, node(), stellar_proto_v1:known_state()}
                         | {error, no_sats_node | not_found}.
place(Id) ->
    gen_server:call(?MODULE, {place, Id}, infinity).

%% The actor of Id runs on PyNode.
-spec running(binary(), node()) -> ok.
running(Id, PyNode) ->
    gen_server:cast(?MODULE, {running, Id, PyNode}).

%% The actor of Id died: its shadow is being restarted to place it again.
-spec actor_down(binary()) -> ok.
actor_down(Id) ->
    gen_server:cast(?MODULE, {actor_down, Id}).

%% The last known state of Id (from a tick, an event or a command result).
-spec put_state(binary(), stellar_proto_v1:known_state()) -> ok.
put_state(Id, SatState) ->
    gen_server:cast(?MODULE, {put_state, Id, SatState, false}).

%% As put_state/2, for a state that goes to the store with a command's outcome (written there
%% with it): the checkpoint round leaves it out unless the entry changes again.
-spec put_persisted_state(binary(), stellar_proto_v1:known_state()) -> ok.
put_persisted_state(Id, SatState) ->
    gen_server:cast(?MODULE, {put_state, Id, SatState, true}).

%% The telemetry of ticks [{Id, Telemetry}], put in their entries' tick slots by the calling
%% process (stellar_ticks), one ETS update each: no message, no copy of the entry; an id
%% without an entry is skipped. A read merges a tick into an entry this node owns, not
%% deleted, whose state is not newer than the tick (a command's outcome that came by the
%% shadow first), and moves its updated_at up to the last sync round before the tick (see
%% #state.synced_at); the periodic state sync replicates it. A write of the entry by this
%% server meanwhile may drop a tick (the next comes a tick period later).
-spec put_ticks([{binary(), stellar_proto_v1:telemetry()}]) -> ok.
put_ticks(Ticks) ->
    Stamp = atomics:get(persistent_term:get(?SYNC_CLOCK), 1),
    lists:foreach(fun({Id, Telemetry}) -> _ = ets:update_element(?TAB, Id, [{3, Telemetry}, {4, Stamp}]) end,
                  Ticks).

%% The entry of an object of the table, its tick merged (see put_ticks/1).
-spec entry(object()) -> entry().
entry({_, Entry, none, _}) ->
    Entry;
entry({_, Entry = #{owner := Owner, status := S, state := Known, updated_at := At}, Tick = #{updated_at := TickAt}, Stamp})
        when Owner =:= node(), S =/= deleted, TickAt >= map_get(updated_at, Known) ->
    Entry#{state => maps:merge(Known, Tick), updated_at => max(At, Stamp)};
entry({_, Entry, _, _}) ->
    Entry.

%% Removes Id from the catalog of every BEAM node.
-spec delete(binary()) -> ok | {error, not_found}.
delete(Id) ->
    gen_server:call(?MODULE, {delete, Id}).

%% A Python node of this BEAM node changed status: tell the other BEAM nodes.
-spec py_node_changed() -> ok.
py_node_changed() ->
    gen_server:cast(?MODULE, py_node_changed).

%% Every Python node of the cluster: this node's, then the other BEAM nodes'.
-spec py_nodes() -> [py_info()].
py_nodes() ->
    Local = [I#{beam => node(), satellites => satellite_count(py, N)}
             || I = #{name := N} <- stellar_py_node:info()],
    Remote = case ets:whereis(?PY) of
        undefined -> [];
        _ -> [I#{satellites => satellite_count(py, N)} || {N, I} <- lists:sort(ets:tab2list(?PY))]
    end,
    Local ++ Remote.

%% This BEAM node and every other one that runs the catalog, sorted by name.
-spec beam_nodes() -> [beam_info()].
beam_nodes() ->
    Peers = case whereis(?MODULE) of
        undefined -> #{};
        _ -> try gen_server:call(?MODULE, peers, 5000) catch exit:_ -> #{} end
    end,
    All = Peers#{node() => list_to_integer(os:getpid())},
    [#{name => N, role => beam, status => up, restarts => 0, os_pid => P,
       satellites => satellite_count(beam, N)} || {N, P} <- lists:sort(maps:to_list(All))].

%% The number of live satellites hosted by a Python node (py) or owned by a BEAM node (beam).
-spec satellite_count(py | beam, node()) -> non_neg_integer().
satellite_count(Kind, Node) ->
    case ets:whereis(?COUNTS) =/= undefined andalso ets:lookup(?COUNTS, {Kind, Node}) of
        [{_, N}] -> N;
        _ -> 0
    end.

%% The least-loaded candidate {PyNode, Satellites, IsLocal}: fewest satellites, then a node
%% of this BEAM node, then the smallest name.
-spec choose([{node(), non_neg_integer(), boolean()}]) -> {ok, node()} | none.
choose([]) ->
    none;
choose(Candidates) ->
    [{_, _, Best} | _] = lists:sort([{Count, not Local, Name} || {Name, Count, Local} <- Candidates]),
    {ok, Best}.

%% The BEAM node among Alive (non-empty) that takes over the satellite Id.
-spec assignee(binary(), [node(), ...]) -> node().
assignee(Id, Alive) ->
    Sorted = lists:usort(Alive),
    lists:nth(erlang:phash2(Id, length(Sorted)) + 1, Sorted).

%% The shadow of Id on this node is handing it over to Dest: from now on the entry names Dest
%% as its owner here (not replicated, updated_at kept), so that no reconcile starts it again.
-spec moving(binary(), node()) -> ok.
moving(Id, Dest) ->
    gen_server:call(?MODULE, {moving, Id, Dest}, infinity).

%% Asks Dest's catalog to take satellite Id over from its shadow here: its final state, the
%% commands in flight and the callers waiting for an outcome. ok once Dest's shadow started.
-spec adopt(node(), binary(), stellar_proto_v1:known_state(), [stellar_inflight:entry()],
            #{binary() => gen_server:from()}) -> ok | {error, term()}.
adopt(Dest, Id, Known, Inflight, Waiting) ->
    %% Long: a timeout here while Dest still adopts would leave two shadows for a while; a
    %% Dest that goes down ends the call at once (noconnection).
    try gen_server:call({?MODULE, Dest}, {adopt, Id, Known, Inflight, Waiting}, ?ADOPT_TIMEOUT_MS)
    catch exit:Reason -> {error, {adopt, Dest, Reason}}
    end.

%% Satellites moved here to other nodes (and failed moves), rebalancing rounds, moves under
%% way, satellites stopped for want of quorum.
-spec rebalance_info() -> rebalance().
rebalance_info() ->
    try gen_server:call(?MODULE, rebalance_info, 5000)
    catch exit:_ -> #{moved => 0, failed => 0, rounds => 0, moving => 0, stopped => 0}
    end.

%% An even share of Total satellites (the sum of Counts) for each Eligible node: Total div K,
%% one more for the Total rem K nodes that hold the most now (fewest moves); others get 0.
-spec shares(#{node() => non_neg_integer()}, [node()]) -> #{node() => non_neg_integer()}.
shares(Counts, []) ->
    maps:map(fun(_, _) -> 0 end, Counts);
shares(Counts, Eligible) ->
    Total = lists:sum(maps:values(Counts)),
    K = length(lists:usort(Eligible)),
    Ranked = [N || {_, N} <- lists:sort([{-maps:get(N, Counts, 0), N} || N <- lists:usort(Eligible)])],
    {More, Rest} = lists:split(Total rem K, Ranked),
    Base = Total div K,
    Zero = maps:map(fun(_, _) -> 0 end, Counts),
    maps:merge(Zero, maps:from_list([{N, Base + 1} || N <- More] ++ [{N, Base} || N <- Rest])).

%% The moves {From, To, N} that bring Counts to shares/2, sources and destinations taken in
%% name order; a node within 2 % of its share (at least 1) neither gives nor takes, so that
%% counts that differ a little between nodes' views do not make satellites go back and forth.
-spec transfers(#{node() => non_neg_integer()}, [node()]) -> [{node(), node(), pos_integer()}].
transfers(Counts, Eligible) ->
    Shares = shares(Counts, Eligible),
    Slack = fun(Share) -> max(1, Share div 50) end,
    Surplus = [{N, C - S} || {N, C} <- lists:sort(maps:to_list(Counts)),
                             S <- [maps:get(N, Shares)], C - S > Slack(S) orelse (S =:= 0 andalso C > 0)],
    Deficit = [{N, S - C} || {N, S} <- lists:sort(maps:to_list(Shares)),
                             C <- [maps:get(N, Counts, 0)], S - C > Slack(S)],
    match(Surplus, Deficit, []).

match([], _, Acc) -> lists:reverse(Acc);
match(_, [], Acc) -> lists:reverse(Acc);
match([{From, Give} | Srcs], [{To, Take} | Dsts], Acc) ->
    N = min(Give, Take),
    Srcs1 = case Give - N of 0 -> Srcs; G -> [{From, G} | Srcs] end,
    Dsts1 = case Take - N of 0 -> Dsts; T -> [{To, T} | Dsts] end,
    match(Srcs1, Dsts1, [{From, To, N} | Acc]).

%% The moves this node (Self) makes now: its rows of transfers/2, at most Max satellites in
%% all, taken from OwnIds (those whose assignee among the eligible nodes is the destination
%% first, so that a node coming back gets the same satellites as after an earlier takeover).
-spec plan(#{node() => non_neg_integer()}, [node()], node(), [binary()], non_neg_integer()) ->
    [{binary(), node()}].
plan(Counts, Eligible, Self, OwnIds, Max) ->
    Mine = [{To, N} || {From, To, N} <- transfers(Counts, Eligible), From =:= Self],
    Alive = case Eligible of [] -> [Self]; _ -> Eligible end,
    pick(Mine, Alive, lists:usort(OwnIds), Max, []).

pick([], _Alive, _Ids, _Max, Acc) -> lists:reverse(Acc);
pick(_, _Alive, [], _Max, Acc) -> lists:reverse(Acc);
pick(_, _Alive, _Ids, 0, Acc) -> lists:reverse(Acc);
pick([{To, N} | Rest], Alive, Ids, Max, Acc) ->
    Take = min(N, Max),
    Ranked = lists:sort([{assignee(Id, Alive) =/= To, Id} || Id <- Ids]),
    Chosen = [Id || {_, Id} <- lists:sublist(Ranked, Take)],
    pick(Rest, Alive, Ids -- Chosen, Max - length(Chosen), lists:reverse([{Id, To} || Id <- Chosen], Acc)).

%% gen_server.

-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),
    process_flag(message_queue_data, off_heap),  % a long queue is not copied by each GC
    ok = net_kernel:monitor_nodes(true),
    gen_server:abcast(nodes(), ?MODULE, {hello, node(), os_pid()}),
    schedule_reconcile(),
    schedule_state_sync(),
    {ok, set_synced_at(#state{changed_at = mono_ms()}, now_ms())}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({create, SatState}, _From, State) ->
    case new_entry(SatState) of
        {ok, Entry} -> {reply, ok, replicate_now(Entry, State)};
        Error -> {reply, Error, State}
    end;
handle_call({create_many, SatStates}, _From, State) ->
    Answers = [new_entry(S) || S <- SatStates],
    Entries = [E || {ok, E} <- Answers],
    _ = [gen_server:abcast(peer_nodes(State), ?MODULE, {merge, node(), Chunk})
         || Chunk <- chunks(Entries, ?SYNC_CHUNK)],
    Pending = maps:without([Id || #{id := Id} <- Entries], State#state.pending),
    {reply, [case A of {ok, _} -> ok; Error -> Error end || A <- Answers],
     State#state{pending = Pending}};
handle_call({place, Id}, {Shadow, _}, State) ->
    case lookup(Id) of
        {ok, Entry = #{owner := Owner, state := SatState}} ->
            Claimed = Entry#{owner => node(), shadow => Shadow, updated_at => now_ms()},
            case choose(candidates()) of
                {ok, Py} ->
                    Placed = write(Claimed#{node => Py, status => placing}),
                    {reply, {ok, Py, SatState}, replicate(Placed, Owner =/= node(), State)};
                none ->
                    Claimed1 = write(Claimed),
                    {reply, {error, no_sats_node}, replicate(Claimed1, Owner =/= node(), State)}
            end;
        error ->
            {reply, {error, not_found}, State}
    end;
handle_call({delete, Id}, _From, State) ->
    case lookup(Id) of
        {ok, Entry} ->
            Tomb = write(Entry#{status => deleted, updated_at => now_ms()}),
            {reply, ok, replicate_now(Tomb, State)};
        error ->
            {reply, {error, not_found}, State}
    end;
handle_call({moving, Id, Dest}, _From, State) ->
    _ = case lookup(Id) of
        {ok, Entry} -> write(Entry#{owner => Dest, shadow => undefined});
        error -> ok
    end,
    {reply, ok, State};
handle_call({adopt, Id, Known, Inflight, Waiting}, _From, State) when is_binary(Id), is_map(Known),
                                                                     is_list(Inflight), is_map(Waiting) ->
    case stellar_cluster:has_quorum() of
        false ->
            {reply, {error, no_quorum}, State};
        true ->
            Entry = case lookup(Id) of
                {ok, E} -> E;
                error -> #{id => Id, node => undefined}
            end,
            Adopted = write(Entry#{state => Known, owner => node(), shadow => undefined,
                                   status => placing, updated_at => now_ms()}),
            State1 = replicate_now(Adopted, State),
            _ = [stellar_inflight:add(Id, C, K, A) || {C, K, A} <- Inflight],
            case stellar_sat_sup:start_shadow(Id) of
                {ok, Pid} ->
                    _ = map_size(Waiting) > 0 andalso stellar_sat:adopt_waiting(Pid, Waiting),
                    {reply, ok, State1};
                {error, Reason} ->
                    {reply, {error, Reason}, State1}
            end
    end;
handle_call(rebalance_info, _From, State) ->
    {reply, #{moved => State#state.moved, failed => State#state.move_failed, rounds => State#state.rounds,
              moving => State#state.moving, stopped => State#state.stopped}, State};
handle_call(peers, _From, State = #state{peers = Peers}) ->
    Connected = nodes(),
    {reply, maps:filter(fun(N, _) -> lists:member(N, Connected) end, Peers), State};
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({running, Id, PyNode}, State) ->
    case lookup(Id) of
        {ok, Entry} ->
            E = write(Entry#{node => PyNode, owner => node(), status => running,
                             updated_at => now_ms()}),
            {noreply, replicate(E, false, State)};
        error ->
            {noreply, State}
    end;
handle_cast({actor_down, Id}, State) ->
    case lookup(Id) of
        {ok, Entry} ->
            E = write(Entry#{status => placing, updated_at => now_ms()}),
            {noreply, replicate(E, false, State)};
        error ->
            {noreply, State}
    end;
handle_cast({put_state, Id, SatState, Persisted}, State) ->
    case lookup(Id) of
        {ok, Entry = #{owner := Owner}} ->
            E = write(Entry#{state => SatState, owner => node(), updated_at => now_ms()}, Persisted),
            {noreply, replicate(E, Owner =/= node(), State)};
        error ->
            {noreply, State}
    end;
handle_cast(py_node_changed, State) ->
    gen_server:abcast(nodes(), ?MODULE, {py_nodes, node(), local_py_rows()}),
    {noreply, State};
handle_cast({hello, From, OsPid}, State = #state{peers = Peers, left = Left}) when is_atom(From) ->
    gen_server:cast({?MODULE, From}, {merge, node(), os_pid(), all_entries()}),
    gen_server:cast({?MODULE, From}, {py_nodes, node(), local_py_rows()}),
    %% Its app (re)started without a nodeup here: ask for its table too (it answers our
    %% hello with it, and does not ask back: it has ours, sent just before).
    _ = lists:member(From, State#state.synced) orelse
        gen_server:cast({?MODULE, From}, {hello, node(), os_pid()}),
    {noreply, State#state{peers = Peers#{From => OsPid}, left = Left -- [From]}};
handle_cast({merge, From, OsPid, Entries}, State = #state{peers = Peers, synced = Synced}) when is_list(Entries) ->
    %% A peer's whole table (the answer to our hello): merged, the peer counts as synced.
    State1 = lists:foldl(fun merge/2, State, Entries),
    {noreply, State1#state{peers = Peers#{From => OsPid}, synced = lists:usort([From | Synced])}};
handle_cast({merge, _From, Entries}, State) when is_list(Entries) ->
    {noreply, lists:foldl(fun merge/2, State, Entries)};
handle_cast({py_nodes, From, Rows}, State) when is_list(Rows), From =/= node() ->
    delete_py_rows(From),
    true = ets:insert(?PY, [{N, Row#{beam => From}} || Row = #{name := N} <- Rows]),
    {noreply, State};
handle_cast({leaving, From}, State = #state{peers = Peers, left = Left}) ->
    logger:info("BEAM node ~s stopped its stellar application: taking over its satellites",
                [From]),
    delete_py_rows(From),
    forget_shadows(From),
    {noreply, takeover(State#state{peers = maps:remove(From, Peers), left = [From | Left],
                                   synced = State#state.synced -- [From], changed_at = mono_ms()}, false)};
handle_cast({quorum, false}, State) ->
    Shadows = try stellar_sat_sup:shadows() catch exit:_ -> [] end,  % the app may be stopping
    logger:warning("quorum lost: stopping the ~b satellite(s) of this node (their entries stay)",
                   [length(Shadows)]),
    lists:foreach(fun stellar_sat:suspend/1, Shadows),
    {noreply, State#state{stopped = State#state.stopped + length(Shadows), restart_own = false}};
handle_cast({beam_peers, Peers}, State) when is_list(Peers) ->
    {noreply, State#state{beam_peers = Peers}};
handle_cast({quorum, true}, State) ->
    %% Started again at the next reconcile, once every peer's table is merged.
    {noreply, State#state{restart_own = true}};
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({nodeup, Node}, State) ->
    gen_server:cast({?MODULE, Node}, {hello, node(), os_pid()}),
    {noreply, State#state{changed_at = mono_ms()}};
handle_info({nodedown, Node}, State = #state{peers = Peers}) ->
    case maps:is_key(Node, Peers) of
        true -> logger:warning("BEAM node ~s went down: taking over its satellites", [Node]);
        false -> ok
    end,
    delete_py_rows(Node),
    forget_shadows(Node),
    {noreply, takeover(State#state{peers = maps:remove(Node, Peers), synced = State#state.synced -- [Node],
                                   changed_at = mono_ms()}, false)};
handle_info(flush, State = #state{pending = Pending}) ->
    _ = maps:size(Pending) > 0 andalso
        gen_server:abcast(peer_nodes(State), ?MODULE, {merge, node(), maps:values(Pending)}),
    {noreply, State#state{pending = #{}, flush_timer = undefined}};
handle_info(state_sync, State = #state{synced_at = Since}) ->
    schedule_state_sync(),
    Now = now_ms(),
    _ = case peer_nodes(State) of
        [] ->
            ok;
        Peers ->
            Self = node(),
            Candidates = ets:select(?TAB, [{{'_', #{owner => Self, updated_at => '$1'}, '_', '$2'},
                                            [{'orelse', {'>=', '$1', Since}, {'>=', '$2', Since}}], ['$_']}]),
            Changed = [E || O <- Candidates, E = #{updated_at := At} <- [entry(O)], At >= Since],
            [gen_server:abcast(Peers, ?MODULE, {merge, Self, Chunk}) || Chunk <- chunks(Changed, ?SYNC_CHUNK)]
    end,
    {noreply, set_synced_at(State, Now)};
handle_info(reconcile, State) ->
    schedule_reconcile(),
    purge_tombstones(),
    {noreply, rebalance(takeover(State, true))};
handle_info({'EXIT', Pid, _Reason}, State = #state{takeover = Pid}) ->
    {noreply, State#state{takeover = undefined, changed_at = mono_ms()}};
handle_info({moved, Pid, Ok, Failed}, State = #state{mover = Pid}) ->
    {noreply, State#state{moved = State#state.moved + Ok, move_failed = State#state.move_failed + Failed}};
handle_info({'EXIT', Pid, Reason}, State = #state{mover = Pid}) ->
    _ = Reason =:= normal orelse logger:warning("rebalancing: a round crashed: ~p", [Reason]),
    {noreply, State#state{mover = undefined, moving = 0}};
handle_info(_Info, State) ->
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(shutdown, _State) ->
    %% The application stops (its shadows are already gone): the others take over.
    gen_server:abcast(nodes(), ?MODULE, {leaving, node()}),
    ok;
terminate(_Reason, _State) ->
    ok.

%% Internal.

now_ms() ->
    erlang:system_time(millisecond).

%% A sync round starts at Now: ticks from now on are stamped with it.
set_synced_at(State, Now) ->
    ok = atomics:put(persistent_term:get(?SYNC_CLOCK), 1, Now),
    State#state{synced_at = Now}.

os_pid() ->
    list_to_integer(os:getpid()).

schedule_reconcile() ->
    _ = erlang:send_after(application:get_env(stellar, catalog_reconcile, 1000), self(), reconcile),
    ok.

%% Writes Entry, keeping the satellite counts per Python node and per BEAM node.
write(Entry) ->
    write(Entry, false).

%% The entry of a new satellite, written; an id that is live (in the catalog or as a shadow
%% here) is refused.
new_entry(SatState = #{id := Id}) ->
    case lookup(Id) =/= error orelse stellar_sat:whereis(Id) =/= undefined of
        true ->
            {error, already_exists};
        false ->
            {ok, write(#{id => Id, state => SatState, node => undefined, owner => node(),
                         status => placing, updated_at => now_ms()})}
    end.

%% Persisted: this write's state went to the store anyway (persisted_at = its changed_at); any
%% other write drops an older persisted_at, so a checkpoint sees it even within the same ms.
write(Entry = #{id := Id}, Persisted) ->
    case ets:lookup(?TAB, Id) of
        [{_, Old, _, _}] -> count(Old, -1);
        [] -> ok
    end,
    count(Entry, 1),
    Now = now_ms(),
    Written = case Persisted of
        true -> Entry#{changed_at => Now, persisted_at => Now};
        false -> maps:remove(persisted_at, Entry#{changed_at => Now})
    end,
    true = ets:insert(?TAB, {Id, Written, none, 0}),
    Written.

count(#{status := deleted}, _D) ->
    ok;
count(#{node := Py, owner := Owner}, D) ->
    _ = Py =/= undefined andalso ets:update_counter(?COUNTS, {py, Py}, D, {{py, Py}, 0}),
    _ = ets:update_counter(?COUNTS, {beam, Owner}, D, {{beam, Owner}, 0}),
    ok.

%% Keeps the newer of an entry from another node and ours. When it says that another node owns
%% an id whose shadow runs here, both nodes claimed it: the smaller node name wins, on both
%% sides alike. Winning, we send our entry again, newer; losing, our shadow yields.
%%
%% The winner also answers a claim that is not newer than its entry. Ticks move each side's
%% updated_at up to its own last sync round, so once the winner's first answer loses the race
%% to a write on the loser's side, each side's entry stays newer than what the other sends
%% every round, and both shadows would run on for good. A fresh answer, stamped now, is newer
%% than anything the loser stamped before sending the claim it answers.
merge(Entry = #{id := Id, owner := Owner, updated_at := At}, State)
        when is_binary(Id), is_atom(Owner), is_integer(At) ->
    case [entry(O) || O <- ets:lookup(?TAB, Id)] of
        [Mine = #{updated_at := MyAt, owner := MyOwner}]
                when MyAt >= At, MyOwner =:= node(), node() < Owner ->
            case stellar_registry:whereis_local(Id) of
                undefined ->
                    State;
                _Shadow ->
                    %% Debug: a claim sent before a hand-off to here lands here too.
                    logger:debug("satellite ~s: ~s's claim is older; keeping it here", [Id, Owner]),
                    keep_here(Mine, MyAt, State)
            end;
        [#{updated_at := MyAt}] when MyAt >= At ->
            State;
        Ours ->
            Local = case Owner =/= node() of
                true -> stellar_registry:whereis_local(Id);
                false -> undefined
            end,
            case {Local, Ours} of
                {undefined, _} ->
                    _ = write(Entry),
                    State;
                {_, [Mine]} when node() < Owner ->
                    logger:warning("satellite ~s: claimed by ~s too; keeping it here", [Id, Owner]),
                    keep_here(Mine, At, State);
                {Shadow, _} ->
                    logger:warning("satellite ~s: claimed by ~s too; handing it over", [Id, Owner]),
                    _ = write(Entry),
                    stellar_sat:yield(Shadow),
                    State
            end
    end;
merge(_Bad, State) ->
    State.

%% Our claim again, stamped newer than After (the newest stamp in play) and sent at once.
keep_here(Mine, After, State) ->
    replicate_now(write(Mine#{updated_at => max(now_ms(), After + 1)}), State).

%% A BEAM node went down or left: its shadows are gone.
forget_shadows(Beam) ->
    ets:foldl(fun(O = {_, #{owner := Owner, shadow := Pid}, _, _}, ok) when Owner =:= Beam, is_pid(Pid) ->
                      _ = write((entry(O))#{shadow => undefined}),
                      ok;
                 (_, ok) ->
                      ok
              end, ok, ?TAB).

all_entries() ->
    [entry(O) || O <- ets:tab2list(?TAB)].

replicate(Entry, true, State) ->
    replicate_now(Entry, State);
replicate(Entry = #{id := Id}, false, State = #state{pending = Pending, flush_timer = T}) ->
    Timer = case T of
        undefined -> erlang:send_after(application:get_env(stellar, catalog_flush, 100), self(), flush);
        _ -> T
    end,
    State#state{pending = Pending#{Id => Entry}, flush_timer = Timer}.

replicate_now(Entry = #{id := Id}, State = #state{pending = Pending}) ->
    _ = gen_server:abcast(peer_nodes(State), ?MODULE, {merge, node(), [Entry]}),
    State#state{pending = maps:remove(Id, Pending)}.

%% The connected BEAM nodes whose catalog said hello: where entries are replicated.
peer_nodes(#state{peers = Peers}) ->
    [N || N <- nodes(), is_map_key(N, Peers)].

schedule_state_sync() ->
    _ = erlang:send_after(application:get_env(stellar, catalog_state_sync, 2000), self(), state_sync),
    ok.

chunks([], _N) ->
    [];
chunks(List, N) when length(List) =< N ->
    [List];
chunks(List, N) ->
    {Chunk, Rest} = lists:split(N, List),
    [Chunk | chunks(Rest, N)].

local_py_rows() ->
    [maps:with([name, role, status, restarts, os_pid], I) || I <- stellar_py_node:info()].

delete_py_rows(Beam) ->
    _ = ets:select_delete(?PY, [{{'_', #{beam => '$1'}}, [{'=:=', '$1', Beam}], [true]}]),
    ok.

%% The `sats' nodes an actor can go to: this node's that are up and connected; and, when the
%% Python nodes are not kept local (py_nodes_local false), those the other BEAM nodes report up.
candidates() ->
    Connected = nodes(connected),
    Local = [{N, satellite_count(py, N), true}
             || #{name := N, role := sats, status := up} <- stellar_py_node:info(),
                lists:member(N, Connected)],
    case stellar_config:py_nodes_local() of
        true ->
            Local;
        false ->
            Local ++ [{N, satellite_count(py, N), false}
                      || {N, #{role := sats, status := up}} <- ets:tab2list(?PY)]
    end.

purge_tombstones() ->
    Old = now_ms() - ?TOMBSTONE_MS,
    _ = ets:select_delete(?TAB, [{{'_', #{status => deleted, updated_at => '$1'}, '_', '_'},
                                  [{'<', '$1', Old}], [true]}]),
    ok.

%% Starts, from a helper process, the shadow of every orphan satellite assigned to this node.
%% Periodic runs also restart this node's own entries that have no shadow (IncludeOwn).
takeover(State = #state{takeover = Pid}, _IncludeOwn) when is_pid(Pid) ->
    State;
takeover(State, IncludeOwn) ->
    Alive = alive(State),
    case may_start(Alive, State) of
        true -> takeover(State, IncludeOwn, Alive);
        false -> State
    end.

%% The BEAM nodes that run the catalog, are connected and have not left (this one included).
alive(#state{peers = Peers, left = Left}) ->
    Connected = nodes(),
    lists:usort([node() | [N || N <- maps:keys(Peers), lists:member(N, Connected),
                                not lists:member(N, Left)]]).

%% Satellites may be started or moved here: with quorum (stellar_cluster's, and the catalog's
%% own count of live nodes, which may see a nodedown first), and every BEAM peer heard from
%% has sent its whole table since it (re)connected.
may_start(Alive, #state{synced = Synced, left = Left, beam_peers = Heard}) ->
    {ok, #{size := Size}} = stellar_config:cluster(),
    stellar_cluster:has_quorum() andalso stellar_cluster:quorum_of(length(Alive), Size)
        andalso lists:all(fun(N) -> lists:member(N, Synced) end, Heard -- Left).

%% The nodes among Alive that can run actors: a `sats' node up (all of Alive when none has).
eligible(Alive) ->
    Here = [node() || lists:any(fun(#{role := R, status := S}) -> R =:= sats andalso S =:= up end,
                                stellar_py_node:info())],
    There = lists:usort([B || {_, #{role := sats, status := up, beam := B}} <- ets:tab2list(?PY)]),
    [N || N <- Alive, lists:member(N, Here ++ There)].

takeover(State = #state{restart_own = RestartOwn, left = Left}, IncludeOwn, Alive) ->
    %% An orphan goes to a node that can run its actor (any live node when none can).
    Takers = case eligible(Alive) of
        [] -> Alive;
        Eligible -> Eligible
    end,
    Connected = nodes(),
    Old = case RestartOwn of
        true -> now_ms() + 1;  % quorum is back: every own entry without a shadow, at once
        false -> now_ms() - ?SELF_ORPHAN_MS
    end,
    Self = node(),
    Orphans = [Id || {Id, Owner, At} <- orphan_candidates(Self, Alive, IncludeOwn, Old),
                     %% Dead: gone, or its app stopped. A connected node that has not said hello
                     %% yet (its entries came in a flush first) is not dead.
                     (not lists:member(Owner, Alive) andalso
                          (lists:member(Owner, Left) orelse not lists:member(Owner, Connected))
                          andalso assignee(Id, Takers) =:= Self)
                         orelse (IncludeOwn andalso Owner =:= Self andalso At < Old),
                     not has_live_shadow(Id, [Self | Connected])],
    State1 = State#state{restart_own = RestartOwn andalso not IncludeOwn},
    case Orphans of
        [] ->
            State1;
        _ ->
            logger:info("taking over ~b satellite(s)", [length(Orphans)]),
            Starter = spawn_link(fun() -> start_shadows(Orphans) end),
            State1#state{takeover = Starter}
    end.

%% {Id, Owner, UpdatedAt} of the live entries owned by a node not in Alive, and with
%% IncludeOwn of this node's own neither written nor ticked since Old. Selected in ETS, a tuple each: this
%% runs every reconcile, and copying every entry out (a fold) was most of this server's work
%% at 100,000 satellites, where all but a few are owned by a live node and ticking.
orphan_candidates(Self, Alive, IncludeOwn, Old) ->
    NotAlive = list_to_tuple(['andalso' | [{'=/=', '$3', N} || N <- Alive]] ++ [true]),
    Which = case IncludeOwn of
        true -> {'orelse', NotAlive, {'andalso', {'=:=', '$3', Self}, {'<', '$4', Old}, {'<', '$5', Old}}};
        false -> NotAlive
    end,
    ets:select(?TAB, [{{'$1', #{status => '$2', owner => '$3', updated_at => '$4'}, '_', '$5'},
                       [{'=/=', '$2', deleted}, Which], [{{'$1', '$3', '$4'}}]}]).

%% One rebalancing round (see the module doc), from a helper process: at most
%% rebalance_batch moves, ?MOVE_CONCURRENCY at a time.
rebalance(State = #state{takeover = T, mover = M}) when is_pid(T); is_pid(M) ->
    State;
rebalance(State = #state{changed_at = Changed}) ->
    Alive = alive(State),
    Counts = maps:from_list([{N, satellite_count(beam, N)} || N <- Alive]),
    Self = node(),
    %% Cheap checks first: the passes over every entry below only when this node has to give.
    Gives = mono_ms() - Changed >= ?SETTLE_MS andalso
        lists:any(fun({From, _, _}) -> From =:= Self end, transfers(Counts, eligible(Alive))),
    case Gives andalso settled(Alive) andalso may_start(Alive, State) of
        false ->
            State;
        true ->
            Own = ets:foldl(fun({Id, #{owner := O, status := S}, _, _}, Acc) when O =:= Self, S =/= deleted ->
                                    case stellar_registry:whereis_local(Id) of
                                        undefined -> Acc;
                                        _ -> [Id | Acc]
                                    end;
                               (_, Acc) -> Acc
                            end, [], ?TAB),
            Max = case application:get_env(stellar, rebalance_batch, 200) of
                M when is_integer(M), M >= 0 -> M;
                _ -> 200  % not a count: the default (0 turns rebalancing off)
            end,
            case plan(Counts, eligible(Alive), Self, Own, Max) of
                [] ->
                    State;
                Moves ->
                    PerDest = lists:foldl(fun({_, To}, Acc) -> maps:update_with(To, fun(X) -> X + 1 end, 1, Acc) end,
                                          #{}, Moves),
                    logger:info("rebalancing: moving ~b satellite(s) ~p (counts ~p)",
                                [length(Moves), PerDest, Counts]),
                    Catalog = self(),
                    Mover = spawn_link(fun() -> move_all(Catalog, Moves) end),
                    State#state{mover = Mover, moving = length(Moves), rounds = State#state.rounds + 1}
            end
    end.

%% Every live entry is owned by a live node, and at most 1 % are being placed (a satellite
%% that cannot be placed must not stop rebalancing for good).
settled(Alive) ->
    {Total, Placing, Orphans} = ets:foldl(
        fun({_, #{status := deleted}, _, _}, Acc) -> Acc;
           ({_, #{status := S, owner := O}, _, _}, {T, P, Or}) ->
                {T + 1, P + case S of placing -> 1; _ -> 0 end,
                 Or + case lists:member(O, Alive) of true -> 0; false -> 1 end}
        end, {0, 0, 0}, ?TAB),
    Orphans =:= 0 andalso Placing * 100 =< Total.

mono_ms() ->
    erlang:monotonic_time(millisecond).

move_all(Catalog, Moves) ->
    Timeout = stellar_config:timeout(sat_start_timeout, 5000),
    Results = pmap(fun({Id, Dest}) ->
                       case stellar_registry:whereis_local(Id) of
                           undefined -> skipped;
                           Pid -> stellar_sat:hand_off(Pid, Dest, Timeout, ?ADOPT_TIMEOUT_MS + 1000)
                       end
                   end, Moves, ?MOVE_CONCURRENCY),
    Failed = [R || R <- Results, R =/= ok, R =/= skipped],
    _ = Failed =/= [] andalso logger:warning("rebalancing: ~b move(s) failed, e.g. ~0P",
                                             [length(Failed), hd(Failed), 12]),
    Catalog ! {moved, self(), length([ok || ok <- Results]), length(Failed)}.

%% Fun over List by N workers, each taking every Nth element in turn (a slow one holds up only
%% its own share); the results, in no particular order.
pmap(Fun, List, N) ->
    Shares = [[X || {I, X} <- lists:zip(lists:seq(0, length(List) - 1), List), I rem N =:= K]
              || K <- lists:seq(0, N - 1)],
    Refs = [erpc:send_request(node(), lists, map, [Fun, Share]) || Share <- Shares, Share =/= []],
    lists:append([try erpc:receive_response(R, infinity) catch _:E -> [{error, E}] end || R <- Refs]).

has_live_shadow(Id, Connected) ->
    case stellar_sat:whereis(Id) of
        undefined -> false;
        Pid -> lists:member(node(Pid), Connected)
    end.

start_shadows(Ids) ->
    lists:foreach(
        fun(Id) ->
            case stellar_sat_sup:start_shadow(Id) of
                {ok, _} -> ok;
                {error, Reason} -> logger:error("cannot take over satellite ~s: ~p", [Id, Reason])
            end
        end, Ids).
