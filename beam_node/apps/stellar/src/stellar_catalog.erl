%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The cluster-wide satellite catalog. Every BEAM node keeps, in ETS, one entry per satellite
%% (its last known SatState, the Python node hosting its actor, the BEAM node owning its
%% shadow) and the Python nodes of the other BEAM nodes. This server is the only writer; it
%% replicates each change to the stellar_catalog of every other BEAM node (creations,
%% deletions and changes of owner at once, state updates batched every catalog_flush ms) and
%% merges what they send by updated_at. On nodeup both sides exchange their whole tables.
%%
%% Takeover: when a BEAM node goes down (or its app stops), every live entry that it owned
%% is started here if this node is the entry's assignee among the survivors (phash2 of the id
%% over the sorted live BEAM nodes). A periodic reconcile (catalog_reconcile ms) repeats the
%% check, and also restarts entries owned by this node that have no shadow anywhere (after a
%% restart of this app). Each entry names its shadow's pid, so any node finds any shadow. When
%% two BEAM nodes claim one id at once (survivors that disagree on who is alive), the claim of
%% the node with the smaller name wins on both sides and the other shadow yields: exactly one
%% shadow per id, without a cluster-wide lock on the creation and re-placement paths.
-module(stellar_catalog).
-behaviour(gen_server).

%% API.
-export([start_link/0]).
-export([child_spec/0]).
-export([new_tables/0]).
-export([create/1]).
-export([lookup/1]).
-export([shadow/1]).
-export([entries/0]).
-export([place/1]).
-export([running/2]).
-export([actor_down/1]).
-export([put_state/2]).
-export([delete/1]).
-export([py_node_changed/0]).
-export([py_nodes/0]).
-export([beam_nodes/0]).
-export([satellite_count/2]).
-export([choose/1]).
-export([assignee/2]).

%% gen_server.
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-define(TAB, stellar_catalog).
-define(COUNTS, stellar_catalog_counts).
-define(PY, stellar_catalog_py).
-define(TOMBSTONE_MS, 60000).
-define(SELF_ORPHAN_MS, 10000).

-type status() :: placing | running | deleted.
-type entry() :: #{id := binary(), state := stellar_proto_v1:known_state(),
                   node := node() | undefined, owner := node(), status := status(),
                   shadow => pid() | undefined, updated_at := integer()}.
-type py_info() :: #{name := node(), role := atom(), status := stellar_py_node:status(),
                     restarts := non_neg_integer(), os_pid := non_neg_integer() | undefined,
                     beam := node(), satellites := non_neg_integer()}.
-type beam_info() :: #{name := node(), role := beam, status := up, restarts := 0,
                       os_pid := non_neg_integer() | undefined, satellites := non_neg_integer()}.
-export_type([entry/0, py_info/0, beam_info/0]).

-record(state, {
    peers = #{} :: #{node() => non_neg_integer() | undefined},
    left = [] :: [node()],
    pending = #{} :: #{binary() => entry()},
    flush_timer :: reference() | undefined,
    takeover :: pid() | undefined
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
    stellar_registry:new_table().

%% Adds a satellite from its initial state; its shadow is started by the caller.
-spec create(stellar_proto_v1:sat_state()) -> ok | {error, already_exists}.
create(SatState = #{id := _}) ->
    gen_server:call(?MODULE, {create, SatState}).

%% The live entry of Id.
-spec lookup(binary()) -> {ok, entry()} | error.
lookup(Id) ->
    case ets:whereis(?TAB) =/= undefined andalso ets:lookup(?TAB, Id) of
        [{_, Entry = #{status := S}}] when S =/= deleted -> {ok, Entry};
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
        _ -> lists:sort([E || {_, E = #{status := S}} <- ets:tab2list(?TAB), S =/= deleted])
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
    gen_server:cast(?MODULE, {put_state, Id, SatState}).

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

%% gen_server.

-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),
    ok = net_kernel:monitor_nodes(true),
    gen_server:abcast(nodes(), ?MODULE, {hello, node(), os_pid()}),
    schedule_reconcile(),
    {ok, #state{}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({create, SatState = #{id := Id}}, _From, State) ->
    Live = lookup(Id) =/= error orelse stellar_sat:whereis(Id) =/= undefined,
    case Live of
        true ->
            {reply, {error, already_exists}, State};
        false ->
            Entry = #{id => Id, state => SatState, node => undefined, owner => node(),
                      status => placing, updated_at => now_ms()},
            {reply, ok, replicate_now(write(Entry), State)}
    end;
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
handle_cast({put_state, Id, SatState}, State) ->
    case lookup(Id) of
        {ok, Entry = #{owner := Owner}} ->
            E = write(Entry#{state => SatState, owner => node(), updated_at => now_ms()}),
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
    {noreply, State#state{peers = Peers#{From => OsPid}, left = Left -- [From]}};
handle_cast({merge, From, OsPid, Entries}, State = #state{peers = Peers}) when is_list(Entries) ->
    State1 = lists:foldl(fun merge/2, State, Entries),
    {noreply, State1#state{peers = Peers#{From => OsPid}}};
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
    {noreply, takeover(State#state{peers = maps:remove(From, Peers), left = [From | Left]}, false)};
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({nodeup, Node}, State) ->
    gen_server:cast({?MODULE, Node}, {hello, node(), os_pid()}),
    {noreply, State};
handle_info({nodedown, Node}, State = #state{peers = Peers}) ->
    case maps:is_key(Node, Peers) of
        true -> logger:warning("BEAM node ~s went down: taking over its satellites", [Node]);
        false -> ok
    end,
    delete_py_rows(Node),
    forget_shadows(Node),
    {noreply, takeover(State#state{peers = maps:remove(Node, Peers)}, false)};
handle_info(flush, State = #state{pending = Pending}) ->
    _ = maps:size(Pending) > 0 andalso
        gen_server:abcast(nodes(), ?MODULE, {merge, node(), maps:values(Pending)}),
    {noreply, State#state{pending = #{}, flush_timer = undefined}};
handle_info(reconcile, State) ->
    schedule_reconcile(),
    purge_tombstones(),
    {noreply, takeover(State, true)};
handle_info({'EXIT', Pid, _Reason}, State = #state{takeover = Pid}) ->
    {noreply, State#state{takeover = undefined}};
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

os_pid() ->
    list_to_integer(os:getpid()).

schedule_reconcile() ->
    _ = erlang:send_after(application:get_env(stellar, catalog_reconcile, 1000), self(), reconcile),
    ok.

%% Writes Entry, keeping the satellite counts per Python node and per BEAM node.
write(Entry = #{id := Id}) ->
    case ets:lookup(?TAB, Id) of
        [{_, Old}] -> count(Old, -1);
        [] -> ok
    end,
    count(Entry, 1),
    true = ets:insert(?TAB, {Id, Entry}),
    Entry.

count(#{status := deleted}, _D) ->
    ok;
count(#{node := Py, owner := Owner}, D) ->
    _ = Py =/= undefined andalso ets:update_counter(?COUNTS, {py, Py}, D, {{py, Py}, 0}),
    _ = ets:update_counter(?COUNTS, {beam, Owner}, D, {{beam, Owner}, 0}),
    ok.

%% Keeps the newer of an entry from another node and ours. When it says that another node owns
%% an id whose shadow runs here, both nodes claimed it: the smaller node name wins, on both
%% sides alike. Winning, we send our entry again, newer; losing, our shadow yields.
merge(Entry = #{id := Id, owner := Owner, updated_at := At}, State)
        when is_binary(Id), is_atom(Owner), is_integer(At) ->
    case ets:lookup(?TAB, Id) of
        [{_, #{updated_at := Mine}}] when Mine >= At ->
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
                {_, [{_, Mine}]} when node() < Owner ->
                    logger:warning("satellite ~s: claimed by ~s too; keeping it here", [Id, Owner]),
                    replicate_now(write(Mine#{updated_at => max(now_ms(), At + 1)}), State);
                {Shadow, _} ->
                    logger:warning("satellite ~s: claimed by ~s too; handing it over", [Id, Owner]),
                    _ = write(Entry),
                    stellar_sat:yield(Shadow),
                    State
            end
    end;
merge(_Bad, State) ->
    State.

%% A BEAM node went down or left: its shadows are gone.
forget_shadows(Beam) ->
    ets:foldl(fun({_, E = #{owner := Owner, shadow := Pid}}, ok) when Owner =:= Beam, is_pid(Pid) ->
                      _ = write(E#{shadow => undefined}),
                      ok;
                 (_, ok) ->
                      ok
              end, ok, ?TAB).

all_entries() ->
    [E || {_, E} <- ets:tab2list(?TAB)].

replicate(Entry, true, State) ->
    replicate_now(Entry, State);
replicate(Entry = #{id := Id}, false, State = #state{pending = Pending, flush_timer = T}) ->
    Timer = case T of
        undefined -> erlang:send_after(application:get_env(stellar, catalog_flush, 100), self(), flush);
        _ -> T
    end,
    State#state{pending = Pending#{Id => Entry}, flush_timer = Timer}.

replicate_now(Entry = #{id := Id}, State = #state{pending = Pending}) ->
    gen_server:abcast(nodes(), ?MODULE, {merge, node(), [Entry]}),
    State#state{pending = maps:remove(Id, Pending)}.

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
    _ = ets:select_delete(?TAB, [{{'_', #{status => deleted, updated_at => '$1'}},
                                  [{'<', '$1', Old}], [true]}]),
    ok.

%% Starts, from a helper process, the shadow of every orphan satellite assigned to this node.
%% Periodic runs also restart this node's own entries that have no shadow (IncludeOwn).
takeover(State = #state{takeover = Pid}, _IncludeOwn) when is_pid(Pid) ->
    State;
takeover(State = #state{peers = Peers, left = Left}, IncludeOwn) ->
    Connected = nodes(),
    Alive = lists:usort([node() | [N || N <- maps:keys(Peers), lists:member(N, Connected),
                                        not lists:member(N, Left)]]),
    Old = now_ms() - ?SELF_ORPHAN_MS,
    Self = node(),
    Orphans = ets:foldl(
        fun({Id, #{status := S, owner := Owner, updated_at := At}}, Acc) when S =/= deleted ->
                Dead = not lists:member(Owner, Alive),
                Own = IncludeOwn andalso Owner =:= Self andalso At < Old,
                case (Dead andalso assignee(Id, Alive) =:= Self) orelse Own of
                    true ->
                        case has_live_shadow(Id, [Self | Connected]) of
                            true -> Acc;
                            false -> [Id | Acc]
                        end;
                    false ->
                        Acc
                end;
           (_, Acc) ->
                Acc
        end, [], ?TAB),
    case Orphans of
        [] ->
            State;
        _ ->
            logger:info("taking over ~b satellite(s)", [length(Orphans)]),
            Starter = spawn_link(fun() -> start_shadows(Orphans) end),
            State#state{takeover = Starter}
    end.

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
