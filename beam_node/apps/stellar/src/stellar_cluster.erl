%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Finds the other BEAM nodes and keeps this node connected to them. Peers come from the
%% `cluster' app env (checked by stellar_config:cluster/0): a static list of node names, and/or
%% every A record of one DNS name (a Kubernetes headless Service, a container network alias)
%% as Basename@IP. Every poll_ms a helper process looks the peers up and connects to those not
%% connected (Erlang does not reconnect by itself after a node returns or a partition heals);
%% the server never blocks on DNS or on a connect.
%%
%% Visible nodes joining and leaving are logged (one line each) and counted, per node and in
%% all: stellar:nodes() and stellar:cluster() show them. The pure parts (discover/2,
%% node_names/2, targets/3, joined/3, left/4, forget/3) are unit tested, the lookup passed as
%% a fun. Peer names from DNS become atoms: one per address ever seen, forgotten by no one.
%%
%% Failure detection: every heartbeat (failure_ms / 6, 500 ms by default) this server casts a
%% heartbeat to the stellar_cluster of every connected node, and looks at how many bytes each
%% BEAM peer sent on its connection (net_kernel:node_info/2). A peer is alive while either
%% moves; one silent for failure_ms (STELLAROPS_CLUSTER_FAILURE_MS, 3 s) is disconnected
%% (logged, counted), so that its satellites run elsewhere within that time instead of after
%% net_ticktime (60 s, which also guards the Python nodes' links and stays as it is). A slow
%% peer whose traffic still flows is never cut. Silence is counted in this node's own running
%% time: when a heartbeat comes late (this node was not scheduled, so it read nothing off its
%% sockets either), every peer is credited with the delay (discount/3). On 2 shared cores a
%% starved node saw its live peers as silent for 3.4-3.8 s and cut them, and the quorum flapped.
%%
%% Quorum (the partition rule): a node runs satellites and takes commands only while it sees a
%% strict majority of the expected cluster size (`size', STELLAROPS_CLUSTER_SIZE, default 1:
%% a single node always has it): the voters among itself and the BEAM peers heard from within
%% failure_ms minus two heartbeats. Voters are the nodes that run satellites (a sats node
%% configured); gateway-only and orbital-only nodes (scaled apart, e.g. by an autoscaler) do not
%% vote, so `size' counts only the nodes that run satellites, and they follow the voters they see. A node that loses quorum (has_quorum/0 turns false, one log line, counted)
%% has the catalog stop every local shadow and actor, keeping the catalog entries; it takes
%% nothing over until quorum returns. The majority side disconnects the silent peers only at
%% failure_ms, so the minority has stopped its copies about a second before the majority
%% starts them. On regaining quorum the catalogs merge (newer updated_at wins) before the
%% catalog starts anything (stellar_catalog waits for every peer's table).
-module(stellar_cluster).
-behaviour(gen_server).

%% API.
-export([start_link/0]).
-export([child_spec/0]).
-export([info/0]).
-export([members/0]).
-export([has_quorum/0]).
-export([quorum/0]).
-export([beam_peers/0]).
%% Pure parts.
-export([quorum_of/2]).
-export([is_voter/0]).
-export([heartbeat_ms/1]).
-export([fresh_ms/1]).
-export([alive/4]).
-export([discount/3]).
-export([discover/2]).
-export([node_names/2]).
-export([targets/3]).
-export([joined/3]).
-export([left/4]).
-export([forget/3]).
-export([dns_lookup/2]).

%% gen_server.
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).

-include_lib("kernel/include/inet.hrl").

-define(DNS_TIMEOUT_MS, 5000).
%% A node that left and that discovery no longer names is forgotten after this long (pods come
%% and go with new addresses: the members map must not grow without bound).
-define(FORGET_MS, 3600000).

-type lookup() :: fun((string()) -> {ok, [inet:ip4_address()]} | {error, term()}).
-type member() :: #{status := up | down, joins := non_neg_integer(), leaves := non_neg_integer(),
                    since := integer(), reason => term(), discovered => boolean()}.
-type members() :: #{node() => member()}.
-type quorum() :: #{size := pos_integer(), seen := non_neg_integer(), has_quorum := boolean(),
                    peers := [node()], losses := non_neg_integer(), failures := non_neg_integer(),
                    since := integer()}.
-type info() :: #{node := node(), peers := [node()], dns := binary() | undefined,
                  poll_ms := pos_integer(), discovered := [node()], connected := [node()],
                  joins := non_neg_integer(), leaves := non_neg_integer(), polls := non_neg_integer(),
                  last_error := term(), quorum := quorum()}.
%% Per BEAM peer: when it last showed life (monotonic ms) and the bytes read from it then.
-type heard() :: #{node() => {integer(), non_neg_integer()}}.
-export_type([lookup/0, member/0, info/0, quorum/0, heard/0]).

-define(QUORUM_KEY, {?MODULE, has_quorum}).

-record(state, {
    config :: stellar_config:cluster(),
    discovered = [] :: [node()],
    members = #{} :: members(),
    joins = 0 :: non_neg_integer(),
    leaves = 0 :: non_neg_integer(),
    polls = 0 :: non_neg_integer(),
    last_error :: term(),
    worker :: pid() | undefined,
    heard = #{} :: heard(),
    quorum = true :: boolean(),
    quorum_since = 0 :: integer(),
    voter = true :: boolean(),                  % this node runs satellites
    voters = #{} :: #{node() => boolean()},     % what each peer's heartbeat said
    losses = 0 :: non_neg_integer(),
    failures = 0 :: non_neg_integer(),
    beat_at :: integer() | undefined            % monotonic ms of the last heartbeat tick
}).

%% API.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec child_spec() -> supervisor:child_spec().
child_spec() ->
    #{id => ?MODULE, start => {?MODULE, start_link, []}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

%% The configuration, what was discovered, who is connected and the join/leave counts.
-spec info() -> info().
info() ->
    gen_server:call(?MODULE, info).

%% Every visible node seen since this node started and every discovered peer (up or down),
%% with its counts and whether discovery names it; empty when the server is not running.
-spec members() -> members().
members() ->
    try gen_server:call(?MODULE, members, 5000) catch exit:_ -> #{} end.

%% Whether this node may run satellites and take commands: it sees a strict majority of the
%% expected BEAM nodes (always true for a single node). Cheap: a persistent term, written only
%% when it changes.
-spec has_quorum() -> boolean().
has_quorum() ->
    persistent_term:get(?QUORUM_KEY, true).

%% The quorum as this node sees it: the expected size, the nodes seen (itself included), the
%% BEAM peers heard from, how often quorum was lost and peers were cut for silence, and since
%% when (ms since the epoch) the current answer holds.
-spec quorum() -> quorum().
quorum() ->
    try gen_server:call(?MODULE, quorum, 5000)
    catch exit:_ -> #{size => 1, seen => 1, has_quorum => has_quorum(), peers => [], losses => 0,
                      failures => 0, since => 0}
    end.

%% The connected BEAM peers (those that run stellar_cluster) heard from recently.
-spec beam_peers() -> [node()].
beam_peers() ->
    maps:get(peers, quorum()).

%% A strict majority of Size (voters seen); a cluster of one always has it.
-spec quorum_of(non_neg_integer(), pos_integer()) -> boolean().
quorum_of(_Seen, 1) ->
    true;
quorum_of(Seen, Size) ->
    Seen * 2 > Size.

%% Whether this node votes: it runs satellites (a sats node among its Python nodes).
-spec is_voter() -> boolean().
is_voter() ->
    case stellar_config:py_nodes() of
        {ok, PyNodes} -> lists:any(fun(#{role := Role}) -> Role =:= sats end, PyNodes);
        {error, _} -> false
    end.

%% How often heartbeats go out: a sixth of the failure time (at least 50 ms).
-spec heartbeat_ms(pos_integer()) -> pos_integer().
heartbeat_ms(FailureMs) ->
    max(50, FailureMs div 6).

%% How recently a peer must have shown life to count for quorum: two heartbeats less than
%% the failure time, so that a minority stops before the majority takes over.
-spec fresh_ms(pos_integer()) -> pos_integer().
fresh_ms(FailureMs) ->
    max(heartbeat_ms(FailureMs), FailureMs - 2 * heartbeat_ms(FailureMs)).

%% Heard after a look at Peer's connection at Now: alive again if it read bytes since the last
%% look (In, or undefined when the peer is no longer connected: then it is dropped).
-spec alive(node(), non_neg_integer() | undefined, integer(), heard()) -> heard().
alive(Peer, undefined, _Now, Heard) ->
    maps:remove(Peer, Heard);
alive(Peer, In, Now, Heard) ->
    case maps:find(Peer, Heard) of
        {ok, {_, In}} -> Heard;
        {ok, {_, _}} -> Heard#{Peer => {Now, In}};
        error -> Heard
    end.

%% Heard at Now after this node was not running for Late ms (its heartbeat came that late):
%% each peer is credited with the delay (never past Now), as nothing could be read meanwhile.
-spec discount(heard(), non_neg_integer(), integer()) -> heard().
discount(Heard, 0, _Now) ->
    Heard;
discount(Heard, Late, Now) when Late > 0 ->
    maps:map(fun(_, {At, In}) -> {min(At + Late, Now), In} end, Heard).

%% The peers of Config: the static ones and Basename@IP for every A record of the DNS name;
%% sorted, unique. A failed lookup is returned beside the static peers, which still count.
-spec discover(stellar_config:cluster(), lookup()) -> {[node()], ok | {error, term()}}.
discover(Config = #{peers := Peers, dns := undefined}, _Lookup) when is_map(Config) ->
    {lists:usort(Peers), ok};
discover(#{peers := Peers, dns := Name, basename := Base}, Lookup) ->
    case Lookup(Name) of
        {ok, Ips} -> {lists:usort(Peers ++ node_names(Base, Ips)), ok};
        {error, Reason} -> {lists:usort(Peers), {error, {dns, Name, Reason}}}
    end.

%% Basename@IP for each IPv4 address (duplicates dropped).
-spec node_names(string(), [inet:ip4_address()]) -> [node()].
node_names(Base, Ips) ->
    lists:usort([list_to_atom(Base ++ "@" ++ inet:ntoa(Ip)) || Ip = {_, _, _, _} <- Ips]).

%% The peers to connect to: discovered, not this node, not connected already.
-spec targets(node(), [node()], [node()]) -> [node()].
targets(Self, Discovered, Connected) ->
    lists:usort(Discovered) -- [Self | Connected].

%% Members after Node joined at Now (ms).
-spec joined(node(), integer(), members()) -> members().
joined(Node, Now, Members) ->
    M = maps:get(Node, Members, #{joins => 0, leaves => 0}),
    Members#{Node => maps:remove(reason, M#{status => up, joins => maps:get(joins, M) + 1, since => Now})}.

%% Members after Node left at Now (ms) for Reason.
-spec left(node(), term(), integer(), members()) -> members().
left(Node, Reason, Now, Members) ->
    M = maps:get(Node, Members, #{joins => 0, leaves => 0}),
    Members#{Node => M#{status => down, leaves => maps:get(leaves, M) + 1, since => Now, reason => Reason}}.

%% Members without the nodes that are down, not discovered, and left before Before (ms).
-spec forget(members(), [node()], integer()) -> members().
forget(Members, Discovered, Before) ->
    maps:filter(fun(N, #{status := Status, since := Since}) ->
                    Status =:= up orelse Since >= Before orelse lists:member(N, Discovered)
                end, Members).

%% Every A record of Name, from the nameservers given (default: the system's resolv.conf).
-spec dns_lookup(string(), [{inet:ip4_address(), inet:port_number()}]) ->
    {ok, [inet:ip4_address()]} | {error, term()}.
dns_lookup(Name, Nameservers) ->
    Opts = case Nameservers of
        [] -> [];
        _ -> [{nameservers, Nameservers}]
    end,
    case inet_res:resolve(Name, in, a, Opts, ?DNS_TIMEOUT_MS) of
        {ok, Msg} ->
            {ok, [inet_dns:rr(RR, data) || RR <- inet_dns:msg(Msg, anlist), inet_dns:rr(RR, type) =:= a]};
        {error, {Reason, _Msg}} ->
            {error, Reason};
        {error, Reason} ->
            {error, Reason}
    end.

%% gen_server.

-spec init([]) -> {ok, #state{}}.
init([]) ->
    {ok, Config} = stellar_config:cluster(),  % checked before the app started
    ok = net_kernel:monitor_nodes(true, #{node_type => visible, nodedown_reason => true}),
    %% Nodes connected before this server started: up, but their join was not seen here.
    Members = maps:from_list([{N, #{status => up, joins => 0, leaves => 0, since => now_ms()}}
                              || N <- nodes()]),
    case Config of
        #{peers := [], dns := undefined} -> ok;
        #{peers := Peers, dns := Dns} ->
            logger:info("cluster: looking for peers ~p~s every ~b ms", [Peers, dns_text(Dns), maps:get(poll_ms, Config)])
    end,
    self() ! poll,
    self() ! heartbeat,
    #{size := Size} = Config,
    Voter = is_voter(),
    Has = quorum_of(self_vote(Voter), Size),
    persistent_term:put(?QUORUM_KEY, Has),
    _ = Has orelse logger:warning("cluster: no quorum yet (~b of ~b voting BEAM nodes seen): no satellite runs "
                                  "here and commands are refused until a majority is connected", [self_vote(Voter), Size]),
    {ok, #state{config = Config, members = Members, quorum = Has, quorum_since = now_ms(),
                voter = Voter}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(info, _From, State = #state{config = C}) ->
    Dns = case maps:get(dns, C) of undefined -> undefined; Name -> list_to_binary(Name) end,
    Info = #{node => node(), peers => maps:get(peers, C), dns => Dns,
             poll_ms => maps:get(poll_ms, C), discovered => State#state.discovered,
             connected => lists:sort(nodes()), joins => State#state.joins,
             leaves => State#state.leaves, polls => State#state.polls,
             last_error => State#state.last_error, quorum => quorum_info(State)},
    {reply, Info, State};
handle_call(quorum, _From, State) ->
    {reply, quorum_info(State), State};
handle_call(members, _From, State = #state{members = Members, discovered = Discovered}) ->
    %% Discovered peers never seen are members too: down, never joined.
    Unseen = maps:from_list([{N, #{status => down, joins => 0, leaves => 0, since => 0}}
                             || N <- Discovered, N =/= node()]),
    All = maps:merge(Unseen, Members),
    {reply, maps:map(fun(N, M) -> M#{discovered => lists:member(N, Discovered)} end, All), State};
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({heartbeat, From}, State) when is_atom(From) ->
    handle_cast({heartbeat, From, true}, State);  % a node of a release before voters: one
handle_cast({heartbeat, From, Votes}, State = #state{heard = Heard, voters = Voters})
  when is_atom(From), is_boolean(Votes) ->
    case lists:member(From, nodes()) of
        true ->
            Now = now_mono(),
            Heard1 = case maps:find(From, Heard) of
                {ok, {_, In}} -> Heard#{From => {Now, In}};
                error -> logger:info("cluster: BEAM peer ~s heard", [From]), Heard#{From => {Now, 0}}
            end,
            %% Only a gain here: the other peers' freshness is looked at by the heartbeat tick
            %% (bytes read), and a late tick must not read as silence.
            {noreply, update_quorum(State#state{heard = Heard1, voters = Voters#{From => Votes}}, gain)};
        false ->
            {noreply, State}  % a late one from a peer already disconnected
    end;
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(poll, State = #state{config = Config = #{poll_ms := PollMs}, worker = undefined}) ->
    _ = erlang:send_after(PollMs, self(), poll),
    Server = self(),
    %% DNS and connects can each take seconds: a helper does them, one round at a time.
    {Worker, _} = spawn_monitor(fun() -> Server ! {polled, self(), poll(Config)} end),
    {noreply, State#state{worker = Worker}};
handle_info(poll, State = #state{config = #{poll_ms := PollMs}}) ->
    _ = erlang:send_after(PollMs, self(), poll),  % the last round is still running
    {noreply, State};
handle_info({polled, Worker, {Discovered, Result}}, State = #state{worker = Worker, last_error = Last}) ->
    _ = Result =/= ok andalso Result =/= Last andalso
        logger:warning("cluster: peer discovery failed: ~p", [Result]),
    _ = Result =:= ok andalso Last =/= undefined andalso
        logger:info("cluster: peer discovery works again", []),
    LastError = case Result of ok -> undefined; _ -> Result end,
    Members = forget(State#state.members, Discovered, now_ms() - ?FORGET_MS),
    {noreply, State#state{discovered = Discovered, polls = State#state.polls + 1, last_error = LastError,
                          members = Members}};
handle_info({'DOWN', _, process, Worker, Reason}, State = #state{worker = Worker}) ->
    _ = Reason =:= normal orelse logger:warning("cluster: a discovery round crashed: ~p", [Reason]),
    {noreply, State#state{worker = undefined}};
handle_info(heartbeat, State = #state{config = #{failure_ms := FailureMs}, beat_at = BeatAt}) ->
    _ = erlang:send_after(heartbeat_ms(FailureMs), self(), heartbeat),
    Connected = nodes(),
    gen_server:abcast(Connected, ?MODULE, {heartbeat, node(), State#state.voter}),
    Now = now_mono(),
    Late = case BeatAt of
        undefined -> 0;
        _ -> max(0, Now - BeatAt - heartbeat_ms(FailureMs))
    end,
    Heard = refresh(discount(State#state.heard, Late, Now), Now),
    Silent = [{P, Now - At} || {P, {At, _}} <- maps:to_list(Heard), Now - At >= FailureMs],
    lists:foreach(fun({Peer, Ms}) ->
                      logger:warning("cluster: node ~s silent for ~b ms (no heartbeat, no traffic): "
                                     "disconnecting it", [Peer, Ms]),
                      erlang:disconnect_node(Peer)
                  end, Silent),
    Heard1 = maps:without([P || {P, _} <- Silent], Heard),
    State1 = update_quorum(State#state{heard = Heard1, failures = State#state.failures + length(Silent),
                                       beat_at = Now}, any),
    %% The catalog gets the peers heard from, every heartbeat, instead of asking (a call here
    %% could wait behind a slow connection's status).
    gen_server:cast(stellar_catalog, {beam_peers, fresh_peers(State1)}),
    {noreply, State1};
handle_info({nodeup, Node, _Info}, State = #state{members = Members, joins = Joins}) ->
    logger:info("cluster: node ~s joined (~b connected)", [Node, length(nodes())]),
    {noreply, State#state{members = joined(Node, now_ms(), Members), joins = Joins + 1}};
handle_info({nodedown, Node, Info}, State = #state{members = Members, leaves = Leaves}) ->
    Reason = maps:get(nodedown_reason, Info, unknown),
    logger:warning("cluster: node ~s left (~p; ~b connected)", [Node, Reason, length(nodes())]),
    State1 = State#state{members = left(Node, Reason, now_ms(), Members), leaves = Leaves + 1,
                         heard = refresh(maps:remove(Node, State#state.heard), now_mono())},
    {noreply, update_quorum(State1, any)};
handle_info(_Info, State) ->
    {noreply, State}.

%% Internal.

%% One round, in the helper: discover, then connect to every peer not connected, in parallel
%% (a peer that does not answer costs net_setuptime, not the others' time).
poll(Config = #{nameservers := Ns}) ->
    {Discovered, Result} = discover(Config, fun(Name) -> dns_lookup(Name, Ns) end),
    Targets = case erlang:is_alive() of
        true -> targets(node(), Discovered, nodes());
        false -> []
    end,
    Connects = [spawn_monitor(net_kernel, connect_node, [N]) || N <- Targets],
    ok = lists:foreach(fun({Pid, Ref}) -> receive {'DOWN', Ref, process, Pid, _} -> ok end end, Connects),
    {Discovered, Result}.

%% The bytes read from Peer's connection; undefined when it is not connected.
bytes_in(Peer) ->
    case net_kernel:node_info(Peer, in) of
        {ok, In} when is_integer(In) -> In;
        _ -> undefined
    end.

%% Every peer heard: alive now if it sent bytes since the last look.
refresh(Heard, Now) ->
    maps:fold(fun(Peer, _, Acc) -> alive(Peer, bytes_in(Peer), Now, Acc) end, Heard, Heard).

fresh_peers(#state{heard = Heard, config = #{failure_ms := FailureMs}}) ->
    Now = now_mono(),
    Fresh = fresh_ms(FailureMs),
    lists:sort([P || {P, {At, _}} <- maps:to_list(Heard), Now - At < Fresh]).

quorum_info(State = #state{config = #{size := Size}}) ->
    Peers = fresh_peers(State),
    #{size => Size, seen => seen(Peers, State), has_quorum => State#state.quorum, peers => Peers,
      losses => State#state.losses, failures => State#state.failures, since => State#state.quorum_since}.

%% Recomputes the quorum (Change: any, or only a gain); on a change: one log line, the
%% persistent term, the catalog told.
update_quorum(State = #state{config = #{size := Size}, quorum = Was}, Change) ->
    Peers = fresh_peers(State),
    Seen = seen(Peers, State),
    case quorum_of(Seen, Size) of
        Was ->
            State;
        false when Change =:= gain ->
            State;
        true ->
            logger:warning("cluster: quorum regained (~b of ~b voting BEAM nodes seen; peers ~p): satellites run "
                           "here again once the catalogs are merged", [Seen, Size, Peers]),
            changed(true, State);
        false ->
            logger:warning("cluster: quorum lost (~b of ~b voting BEAM nodes seen; peers ~p): stopping this "
                           "node's satellites and refusing commands until a majority is back",
                           [Seen, Size, Peers]),
            changed(false, State#state{losses = State#state.losses + 1})
    end.

%% The voters seen: this node if it votes, and the fresh peers whose heartbeat said they vote.
seen(Peers, #state{voter = Voter, voters = Voters}) ->
    self_vote(Voter) + length([P || P <- Peers, maps:get(P, Voters, true)]).

self_vote(true) -> 1;
self_vote(false) -> 0.

changed(Has, State) ->
    persistent_term:put(?QUORUM_KEY, Has),
    %% The peers first: the catalog starts nothing before it has the table of each of them.
    gen_server:cast(stellar_catalog, {beam_peers, fresh_peers(State)}),
    gen_server:cast(stellar_catalog, {quorum, Has}),
    State#state{quorum = Has, quorum_since = now_ms()}.

now_mono() ->
    erlang:monotonic_time(millisecond).

dns_text(undefined) -> "";
dns_text(Name) -> " and the A records of " ++ Name.

now_ms() ->
    erlang:system_time(millisecond).
