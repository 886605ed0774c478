%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The shadow of one satellite: registered on its BEAM node (stellar_registry) and named in
%% the catalog as the satellite's shadow, so one per id in the cluster. It places the
%% satellite's Python actor on the least-loaded `sats' node (the catalog picks it) from the
%% last known state, links to it and relays: events to the catalog and the event bus, commands
%% to the actor, results back to their callers. Ticks come batched from the sats node to
%% stellar_ticks, not here (the shadow sleeps between commands); the catalog's entry is then
%% the latest state, and the shadow reads it when it needs the whole state. A single
%% {sat_tick, ...} sent to the shadow is still handled the same way.
%%
%% Failures: when the actor exits for any reason (`noconnection' included: its Python node
%% died), the shadow places it again from the catalog's last known state (an actor that exits
%% right after its start, after a pause); the shadow itself crashing is stellar_sat_sup's to
%% restart, as in OTP. When no `sats'
%% node is up, or placing fails, the shadow stays alive in the `placing' phase and retries
%% every sat_place_retry ms (it does not crash-loop its supervisor). A shadow that finds another
%% live shadow of its id (here or on another BEAM node), or that the catalog tells to yield
%% after two BEAM nodes claimed the id at once, ends `normal', quietly.
%%
%% Quorum and moves: a shadow starts no actor while its node is without quorum (it ends at
%% once; stellar_catalog starts it again when quorum returns), and suspend/1 (quorum lost)
%% stops its actor and ends it, leaving the catalog entry. hand_off/4 moves the satellite to
%% another BEAM node (rebalancing): the actor is stopped and its exit awaited, so every
%% message it sent (ticks, command results) is handled here first and the state shipped is
%% its final one; the commands still in flight and the callers waiting for an outcome go with
%% it; the new shadow starts only then. One actor at any moment; only the `node' field shows.
-module(stellar_sat).
-behaviour(gen_server).

%% API.
-export([start_link/1]).
-export([whereis/1]).
-export([stop/1]).
-export([yield/1]).
-export([suspend/1]).
-export([hand_off/4]).
-export([adopt_waiting/2]).
-export([actor/1]).
-export([command/5]).
-export([deliver/4]).
-export([info/1]).
-export([new_command_id/0]).
-export([log_filter/2]).

%% gen_server.
-export([init/1]).
-export([handle_continue/2]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([format_status/1]).

-define(MAX_INFLIGHT, 10000).
%% An actor that exits sooner than this after its start is placed again after sat_place_retry
%% ms, not at once: a satellite whose actor keeps crashing is paced, not spun.
-define(QUICK_EXIT_MS, 1000).

-type phase() :: placing | running | handing_off.

-record(state, {
    id :: binary(),
    phase = placing :: phase(),
    py :: node() | undefined,
    actor :: pid() | undefined,
    last :: stellar_proto_v1:known_state() | undefined,
    waiting = #{} :: #{binary() => gen_server:from()},
    attempts = 0 :: non_neg_integer(),
    timer :: reference() | undefined,
    handoff :: {node(), gen_server:from(), reference()} | undefined,
    placed_at = 0 :: integer()  % monotonic ms when the running actor started
}).

%% API.

-spec start_link(binary()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Id) ->
    %% Idle between ticks, a shadow hibernates: its heap shrinks to its live state (about
    %% 1 KiB) instead of carrying each tick's garbage until the next collection (13-33 KiB
    %% measured, 150-390 MiB at 10,000 shadows).
    gen_server:start_link(?MODULE, Id, [{hibernate_after, 250}]).

%% The shadow of Id, wherever it runs in the cluster: this node's registry, else the shadow
%% that the catalog names if its node is connected.
-spec whereis(binary()) -> pid() | undefined.
whereis(Id) ->
    case stellar_registry:whereis_local(Id) of
        undefined -> remote_shadow(Id);
        Pid -> Pid
    end.

%% Stops the actor and the shadow, and removes the satellite from the catalog.
-spec stop(pid()) -> ok.
stop(Pid) ->
    gen_server:call(Pid, stop).

%% Another BEAM node won the id (stellar_catalog): stop the actor and end, leaving the
%% catalog entry to the winner.
-spec yield(pid()) -> ok.
yield(Pid) ->
    gen_server:cast(Pid, yield).

%% This node lost quorum: stop the actor and end, keeping the catalog entry and the commands
%% in flight (sent again when the satellite is placed anew, here or elsewhere).
-spec suspend(pid()) -> ok.
suspend(Pid) ->
    gen_server:cast(Pid, suspend).

%% Moves the satellite to the BEAM node Dest (see the module doc); ok once Dest's shadow is
%% started with the final state. The actor gets StopMs to stop, Dest AdoptMs to take it over.
%% On an error the satellite is placed here again.
-spec hand_off(pid(), node(), timeout(), timeout()) -> ok | {error, term()}.
hand_off(Pid, Dest, StopMs, AdoptMs) ->
    try gen_server:call(Pid, {hand_off, Dest, StopMs}, StopMs + AdoptMs + 1000)
    catch exit:Reason -> {error, {hand_off, Reason}}
    end.

%% Callers waiting for an outcome, handed over from the satellite's previous shadow.
-spec adopt_waiting(pid(), #{binary() => gen_server:from()}) -> ok.
adopt_waiting(Pid, Waiting) ->
    gen_server:cast(Pid, {adopt_waiting, Waiting}).

-spec actor(pid()) -> {ok, pid()} | {error, not_running}.
actor(Pid) ->
    gen_server:call(Pid, actor).

%% Sends command CmdId to the actor (kept in stellar_inflight until its outcome, and sent again
%% to a re-placed actor). `async' returns at once; `{sync, Ms}' waits up to Ms for the outcome.
-spec command(pid(), binary(), atom(), map(), async | {sync, timeout()})
    -> {ok, binary()} | {done, binary()} | {failed, binary(), term()} | {error, term()}.
command(Pid, CmdId, Kind, Args, async) ->
    gen_server:call(Pid, {command, CmdId, Kind, Args, async});
command(Pid, CmdId, Kind, Args, {sync, Timeout}) ->
    gen_server:call(Pid, {command, CmdId, Kind, Args, {sync, Timeout}}, Timeout + 1000).

%% Delivers a command from the ledger again (after a restart); asynchronous, no reply.
-spec deliver(pid(), binary(), atom(), map()) -> ok.
deliver(Pid, CmdId, Kind, Args) ->
    gen_server:cast(Pid, {deliver, CmdId, Kind, Args}).

-spec info(pid()) -> #{phase := phase(), py := node() | undefined, actor := pid() | undefined}.
info(Pid) ->
    gen_server:call(Pid, info).

%% A command id unique in the cluster and across restarts: the node's hash, the time in
%% microseconds and a per-node unique integer.
-spec new_command_id() -> binary().
new_command_id() ->
    Bin = <<(erlang:phash2(node())):32, (erlang:system_time(microsecond)):64,
            (erlang:unique_integer([positive]) band 16#ffffffff):32>>,
    <<"cmd-", (binary:encode_hex(Bin))/binary>>.

%% A logger filter (stellar_app installs it as a primary filter unless the app env
%% quiet_actor_down is false): drops the gen_server, proc_lib and supervisor reports of a
%% shadow that stopped because its actor died, a normal event of the design. The shadow's
%% own warning (one line, with sat_id) stays. Without it, a Python node hosting 5,000
%% satellites that dies writes 10,000+ multi-line reports.
-spec log_filter(logger:log_event(), term()) -> logger:filter_return().
log_filter(#{msg := {report, #{label := {gen_server, terminate}, reason := Reason}}}, _) ->
    quiet(Reason);
log_filter(#{msg := {report, #{label := {supervisor, child_terminated}, report := Report}}}, _)
        when is_list(Report) ->
    quiet(proplists:get_value(reason, Report));
log_filter(#{msg := {report, #{label := {proc_lib, crash}, report := [Info | _]}}}, _)
        when is_list(Info) ->
    case proplists:get_value(error_info, Info) of
        {exit, Reason, _} -> quiet(Reason);
        _ -> ignore
    end;
log_filter(_Event, _) ->
    ignore.

quiet({actor_down, _}) -> stop;
quiet({{actor_down, _}, _Stacktrace}) -> stop;
quiet(_) -> ignore.

%% gen_server.

-spec init(binary()) -> {ok, #state{}, {continue, place | quit}}.
init(Id) ->
    process_flag(trap_exit, true),
    logger:set_process_metadata(#{sat_id => binary_to_list(Id)}),
    State = #state{id = Id},
    case stellar_catalog:lookup(Id) =/= error andalso stellar_cluster:has_quorum() andalso claim(Id) of
        false ->
            {ok, State, {continue, quit}};
        yes ->
            {ok, State, {continue, place}};
        {no, Holder} ->
            logger:debug("satellite ~s already has its shadow ~p", [Id, Holder]),
            {ok, State, {continue, quit}}
    end.

-spec handle_continue(place | quit, #state{}) -> {noreply, #state{}} | {stop, normal, #state{}}.
handle_continue(place, State) ->
    place(State);
handle_continue(quit, State) ->
    {stop, normal, State}.

-spec handle_call(term(), gen_server:from(), #state{}) ->
    {reply, term(), #state{}} | {noreply, #state{}} | {stop, normal, ok, #state{}}.
handle_call(stop, _From, State = #state{id = Id, actor = Actor}) ->
    case Actor of
        undefined -> ok;
        _ -> unlink(Actor), Actor ! stellar_proto_v1:stop()
    end,
    _ = stellar_catalog:delete(Id),
    ok = stellar_inflight:clear(Id),
    ok = stellar_registry:release(Id),
    logger:info("satellite ~s stopped", [Id]),
    {stop, normal, ok, State#state{actor = undefined}};
handle_call(actor, _From, State = #state{actor = undefined}) ->
    {reply, {error, not_running}, State};
handle_call(actor, _From, State = #state{actor = Actor}) ->
    {reply, {ok, Actor}, State};
handle_call(info, _From, State = #state{phase = Phase, py = Py, actor = Actor}) ->
    {reply, #{phase => Phase, py => Py, actor => Actor}, State};
handle_call({hand_off, _Dest, _Timeout}, _From, State = #state{phase = handing_off}) ->
    {reply, {error, already_moving}, State};
handle_call({hand_off, Dest, _Timeout}, From, State = #state{actor = undefined}) ->
    cancel(State#state.timer),
    transfer(Dest, From, State#state{timer = undefined});
handle_call({hand_off, Dest, Timeout}, From, State = #state{actor = Actor}) ->
    %% The exit signal comes after every message the actor sent: see the 'EXIT' clause.
    Actor ! stellar_proto_v1:stop(),
    Timer = erlang:start_timer(Timeout, self(), hand_off),
    {noreply, State#state{phase = handing_off, handoff = {Dest, From, Timer}}};
handle_call({command, CmdId, Kind, Args, Mode}, From, State = #state{id = Id}) ->
    case stellar_inflight:count(Id) >= ?MAX_INFLIGHT of
        true -> {reply, {error, queue_full}, State};
        false -> accept_command(CmdId, Kind, Args, Mode, From, State)
    end;
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

accept_command(CmdId, Kind, Args, Mode, From, State) ->
    State1 = send_command(CmdId, Kind, Args, State),
    case Mode of
        async ->
            {reply, {ok, CmdId}, State1};
        {sync, Timeout} ->
            _ = erlang:send_after(Timeout, self(), {command_timeout, CmdId}),
            {noreply, State1#state{waiting = (State1#state.waiting)#{CmdId => From}}}
    end.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}} | {stop, normal, #state{}}.
handle_cast(yield, State = #state{id = Id, actor = Actor}) ->
    logger:warning("satellite ~s: another BEAM node owns it; this shadow ends", [Id]),
    case Actor of
        undefined -> ok;
        _ -> unlink(Actor), Actor ! stellar_proto_v1:stop()
    end,
    maps:foreach(fun(_, From) -> gen_server:reply(From, {error, moved}) end, State#state.waiting),
    ok = stellar_registry:release(Id),
    {stop, normal, State#state{actor = undefined, waiting = #{}}};
handle_cast(suspend, State = #state{id = Id, actor = Actor}) ->
    case Actor of
        undefined -> ok;
        _ -> unlink(Actor), Actor ! stellar_proto_v1:stop()
    end,
    maps:foreach(fun(_, From) -> gen_server:reply(From, {error, no_quorum}) end, State#state.waiting),
    ok = stellar_registry:release(Id),
    logger:debug("satellite ~s: suspended (no quorum)", [Id]),
    {stop, normal, State#state{actor = undefined, waiting = #{}}};
handle_cast({adopt_waiting, Waiting}, State = #state{waiting = W}) when is_map(Waiting) ->
    Timeout = stellar_config:timeout(sat_start_timeout, 5000) * 2,
    maps:foreach(fun(CmdId, _) -> erlang:send_after(Timeout, self(), {command_timeout, CmdId}) end, Waiting),
    {noreply, State#state{waiting = maps:merge(W, Waiting)}};
handle_cast({deliver, CmdId, Kind, Args}, State) when is_binary(CmdId), is_atom(Kind), is_map(Args) ->
    {noreply, send_command(CmdId, Kind, Args, State)};
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({'EXIT', Actor, _Reason}, State = #state{actor = Actor, phase = handing_off,
                                                    handoff = {Dest, From, Timer}}) ->
    cancel(Timer),
    transfer(Dest, From, State#state{actor = undefined, handoff = undefined});
handle_info({timeout, Timer, hand_off}, State = #state{id = Id, handoff = {Dest, From, Timer}, actor = Actor}) ->
    %% The actor did not stop in time: as if it died (its supervisor places it again here).
    logger:warning("satellite ~s: its actor did not stop for the move to ~s; placing it again", [Id, Dest]),
    gen_server:reply(From, {error, actor_did_not_stop}),
    _ = is_pid(Actor) andalso exit(Actor, kill),
    stellar_catalog:actor_down(Id),
    maps:foreach(fun(_, F) -> gen_server:reply(F, {error, {actor_down, hand_off}}) end, State#state.waiting),
    {stop, {actor_down, hand_off_timeout}, State#state{actor = undefined, waiting = #{}, handoff = undefined}};
handle_info({'EXIT', Actor, Reason}, State = #state{actor = Actor, id = Id, py = Py})
        when Actor =/= undefined ->
    %% Its node gone (noconnection): stellar_py_node says so once, not once per satellite (a
    %% sats node hosting 50,000 would write 50,000 lines while they are being re-placed).
    Level = case Reason of noconnection -> debug; _ -> warning end,
    logger:log(Level, "satellite ~s: its actor ~p on ~s exited (~p); placing it again",
               [Id, Actor, Py, Reason]),
    maps:foreach(fun(_, From) -> gen_server:reply(From, {error, {actor_down, Reason}}) end,
                 State#state.waiting),
    stellar_catalog:actor_down(Id),
    place_again(State#state{actor = undefined, waiting = #{}, phase = placing, py = undefined});
handle_info({'EXIT', _Pid, _Reason}, State) ->
    %% A link to an earlier actor that we gave up on (see place/1).
    {noreply, State};
handle_info(place, State = #state{phase = placing, handoff = undefined}) ->
    place(State#state{timer = undefined});
handle_info({command_timeout, CmdId}, State = #state{waiting = W}) ->
    case maps:take(CmdId, W) of
        {From, W1} -> gen_server:reply(From, {error, timeout}), {noreply, State#state{waiting = W1}};
        error -> {noreply, State}
    end;
handle_info(Msg, State = #state{id = Id}) when is_tuple(Msg), element(2, Msg) =:= 1 ->
    case stellar_proto_v1:classify(Msg) of
        {sat_tick, Id, Telemetry} when State#state.last =/= undefined ->
            Last = maps:merge(State#state.last, Telemetry),
            stellar_catalog:put_state(Id, Last),
            stellar_events:publish(telemetry, Id, Telemetry),
            stellar_store:telemetry(Id, Telemetry),
            {noreply, State#state{last = Last}};
        {sat_event, Id, state, Data = #{to := To}} ->
            State1 = case known(State) of
                undefined -> State;
                Last -> stellar_catalog:put_state(Id, Last#{mode => To}),
                        State#state{last = Last#{mode => To}}
            end,
            stellar_events:publish(state, Id, Data),
            {noreply, State1};
        {sat_event, Id, alarm, Data} ->
            logger:warning("satellite ~s alarm: ~p", [Id, Data]),
            stellar_events:publish(alarm, Id, Data),
            stellar_store:alarm(Id, Data),
            {noreply, State};
        {command_result, Id, CmdId, Outcome, SatState} ->
            %% Keeps the last tick's position, which a command result does not carry.
            Last = maps:merge(known_or_empty(State), SatState),
            stellar_catalog:put_persisted_state(Id, Last),  % the store writes Last with the outcome
            ok = stellar_inflight:remove(Id, CmdId),
            stellar_store:result(Id, CmdId, Outcome, Last),
            stellar_events:publish(command, Id, #{command_id => CmdId, outcome => Outcome}),
            stellar_metrics:command_outcome(CmdId, Outcome),
            {noreply, reply_result(CmdId, Outcome, State#state{last = Last})};
        {bad_message, Why} ->
            logger:warning("satellite ~s: dropped an off-contract message (~p): ~0P",
                           [Id, Why, Msg, 20]),
            {noreply, State};
        Other ->
            logger:warning("satellite ~s: dropped a message for another satellite: ~0P",
                           [Id, Other, 20]),
            {noreply, State}
    end;
handle_info(Msg, State = #state{id = Id}) ->
    logger:warning("satellite ~s: dropped an unexpected message: ~0P", [Id, Msg, 20]),
    {noreply, State}.

%% Crash reports show the shadow's identity, not its queue and waiting callers.
-spec format_status(gen_server:format_status()) -> gen_server:format_status().
format_status(Status = #{state := #state{id = Id, phase = Phase, py = Py, actor = Actor}}) ->
    Status#{state => #{id => Id, phase => Phase, py => Py, actor => Actor}};
format_status(Status) ->
    Status.

%% Internal.

cancel(undefined) -> ok;
cancel(Timer) -> _ = erlang:cancel_timer(Timer), ok.

%% The actor is gone (or never ran): ship the final state, the commands in flight and the
%% waiting callers to Dest. The registration is released first, so that the catalog entry Dest
%% replicates (owner Dest) meets no local claimant here; on a refusal the satellite is placed
%% here again.
transfer(Dest, From, State = #state{id = Id, waiting = Waiting}) ->
    Inflight = stellar_inflight:list(Id),
    ok = stellar_catalog:moving(Id, Dest),
    %% After moving/2 (a call): the catalog has applied every put_state we cast before it.
    Known = known(State),
    ok = stellar_registry:release(Id),
    case Known =/= undefined andalso stellar_catalog:adopt(Dest, Id, Known, Inflight, Waiting) of
        ok ->
            ok = stellar_inflight:clear(Id),
            gen_server:reply(From, ok),
            logger:debug("satellite ~s moved to ~s", [Id, Dest]),
            {stop, normal, State#state{actor = undefined, waiting = #{}, phase = placing}};
        Refused ->
            Reason = case Refused of false -> not_found; {error, R} -> R end,
            gen_server:reply(From, {error, Reason}),
            case stellar_registry:claim(Id) of
                yes ->
                    place(State#state{phase = placing, actor = undefined});
                {no, _} ->
                    {stop, normal, State#state{actor = undefined}}
            end
    end.

%% The satellite's latest state: the catalog's entry (ticks go there, not here), else ours.
known(#state{id = Id, last = Last}) ->
    case stellar_catalog:lookup(Id) of
        {ok, #{state := S}} when is_map(S) -> S;
        _ -> Last
    end.

known_or_empty(State) ->
    case known(State) of
        undefined -> #{};
        Known -> Known
    end.

%% Registers this shadow on its node, unless a live shadow of Id runs here or (as the catalog
%% says) on another connected BEAM node.
claim(Id) ->
    case remote_shadow(Id) of
        undefined -> stellar_registry:claim(Id);
        Holder -> {no, Holder}
    end.

remote_shadow(Id) ->
    case stellar_catalog:shadow(Id) of
        Pid when is_pid(Pid), node(Pid) =/= node() ->
            case lists:member(node(Pid), nodes()) of
                true -> Pid;
                false -> undefined
            end;
        _ ->
            undefined
    end.

place(State = #state{id = Id}) ->
    case stellar_catalog:place(Id) of
        {ok, Py, SatState} ->
            start_actor(Py, SatState, State);
        {error, not_found} ->
            logger:info("satellite ~s is no longer in the catalog: its shadow ends", [Id]),
            {stop, normal, State};
        {error, no_sats_node} ->
            retry(no_sats_node, State)
    end.

start_actor(Py, SatState, State = #state{id = Id}) ->
    %% No timeout of our own: the call ends when the sats node answers, or its server or its
    %% connection (net_ticktime) goes. A request given up on is still carried out later by a
    %% busy sats node, starting an actor that nobody links to and that runs beside the one
    %% placed by the retry (seen: 501 satellites running twice after a 14 s stall; under load
    %% every retry timed out again, so 364 satellites stayed placing and rebalancing waited).
    try gen_server:call({sats, Py}, stellar_proto_v1:start_actor(SatState, self()), infinity) of
        {ok, Actor} when is_pid(Actor) ->
            true = link(Actor),
            stellar_catalog:running(Id, Py),
            logger:debug("satellite ~s placed on ~s (actor ~p)", [Id, Py, Actor]),
            State1 = State#state{phase = running, py = Py, actor = Actor, last = SatState,
                                 attempts = 0, placed_at = erlang:monotonic_time(millisecond)},
            {noreply, resend_inflight(State1)};
        {error, {already_running, Old}} when is_pid(Old) ->
            %% An actor that no shadow links to (its shadow died, or our call timed out
            %% after it started): it would report to a dead pid. End it, place again.
            exit(Old, kill),
            retry({already_running, Py, Old}, State);
        {error, {bad_state, Field}} ->
            logger:error("satellite ~s: ~s refused its state (bad field ~s)", [Id, Py, Field]),
            retry({bad_state, Field}, State);
        Other ->
            retry({unexpected_reply, Py, Other}, State)
    catch
        exit:Reason ->
            retry({start_actor_failed, Py, Reason}, State)
    end.

%% The actor is gone: this shadow places it again (from the catalog's last known state), as a
%% new shadow would, without stopping. Restarts by stellar_sat_sup cost more with each one in
%% its period: 50,000 shadows restarted after a sats node's kill -9 took 79 s (30 s for bare
%% gen_servers under one supervisor). Without quorum it ends, as a new shadow would at init.
place_again(State = #state{placed_at = At}) ->
    case stellar_cluster:has_quorum() of
        false ->
            {stop, normal, State};
        true ->
            case erlang:monotonic_time(millisecond) - At < ?QUICK_EXIT_MS of
                true -> retry(actor_exited_soon_after_start, State);
                false -> place(State)
            end
    end.

retry(Why, State = #state{id = Id, attempts = N}) ->
    %% One line when placing starts failing, then one every 50 attempts (10 s at 200 ms).
    _ = N rem 50 =:= 0 andalso
        logger:warning("satellite ~s not placed yet (~0P); retrying", [Id, Why, 12]),
    Timer = erlang:send_after(stellar_config:timeout(sat_place_retry, 200), self(), place),
    {noreply, State#state{phase = placing, actor = undefined, attempts = N + 1, timer = Timer}}.

%% Records the command as in flight (once per id) and sends it if the actor runs; a shadow
%% that is still placing sends it with the others once placed (resend_inflight/1).
send_command(CmdId, Kind, Args, State = #state{id = Id, phase = Phase, actor = Actor}) ->
    Added = stellar_inflight:add(Id, CmdId, Kind, Args),
    _ = Added andalso stellar_metrics:command_accepted(CmdId, Kind),
    _ = case Added of
        true when Phase =:= running ->
            Actor ! stellar_proto_v1:command(CmdId, Kind, Args, self()),
            stellar_store:sent(CmdId);
        true ->
            ok;
        false when Phase =:= running ->
            %% Delivered again (from the ledger): the actor answers `done' if it applied it.
            Actor ! stellar_proto_v1:command(CmdId, Kind, Args, self());
        false ->
            ok
    end,
    State.

resend_inflight(State = #state{id = Id, actor = Actor}) ->
    lists:foreach(fun({CmdId, Kind, Args}) ->
                      Actor ! stellar_proto_v1:command(CmdId, Kind, Args, self()),
                      stellar_store:sent(CmdId)
                  end, stellar_inflight:list(Id)),
    State.

reply_result(CmdId, Outcome, State = #state{waiting = W}) ->
    case maps:take(CmdId, W) of
        {From, W1} ->
            Reply = case Outcome of
                done -> {done, CmdId};
                {failed, Reason} -> {failed, CmdId, Reason}
            end,
            gen_server:reply(From, Reply),
            State#state{waiting = W1};
        error ->
            State
    end.
