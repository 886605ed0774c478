%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% One Python node: starts it as an OS process (a port running the `stellarops' CLI), waits
%% until it answers net_adm:ping, monitors it, and stops when the process exits or the node
%% goes down, so that stellar_py_sup starts it again (after py_restart_delay ms). On terminate
%% it stops the OS process (SIGTERM, then SIGKILL) so that no Python node outlives the
%% gen_server that started it. Each change of status goes to the catalog (which tells the
%% other BEAM nodes) and to the event bus as a `node' event.
%%
%% The cookie reaches the Python node through its environment (STELLAROPS_COOKIE), never
%% through its arguments: arguments are visible to every user in `ps'.
-module(stellar_py_node).
-behaviour(gen_server).

%% API.
-export([start_link/1]).
-export([child_spec/1]).
-export([new_table/0]).
-export([info/0]).
-export([port_args/1]).
-export([port_env/2]).
-export([call/4]).

%% gen_server.
-export([init/1]).
-export([handle_continue/2]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-define(TAB, stellar_py_nodes).
-define(PING_INTERVAL, 100).
-define(MAX_LINE, 4096).

%% The table row: {Name, Role, Status, Restarts, OsPid}.
-define(POS_STATUS, 3).
-define(POS_RESTARTS, 4).
-define(POS_OS_PID, 5).

-type status() :: starting | up | down.
-type info() :: #{name := node(), role := atom(), status := status(),
                  restarts := non_neg_integer(), os_pid := non_neg_integer() | undefined}.
-export_type([status/0, info/0]).

-record(state, {
    name :: node(),
    role :: atom(),
    port :: port() | undefined,
    os_pid :: non_neg_integer() | undefined,
    status = starting :: status(),
    deadline :: integer() | undefined,
    partial = <<>> :: binary()
}).

%% API.

-spec start_link(stellar_config:py_node()) -> {ok, pid()} | ignore | {error, term()}.
start_link(PyNode) ->
    gen_server:start_link(?MODULE, PyNode, []).

-spec child_spec(stellar_config:py_node()) -> supervisor:child_spec().
child_spec(PyNode = #{name := Name}) ->
    #{
        id => {py_node, Name},
        start => {?MODULE, start_link, [PyNode]},
        restart => permanent,
        %% terminate/2 may wait py_stop_timeout for SIGTERM, then 1 s after SIGKILL.
        shutdown => stellar_config:timeout(py_stop_timeout, 2000) + 3000,
        type => worker,
        modules => [?MODULE]
    }.

%% Creates the table of Python node states; the calling process owns it.
-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [set, public, named_table, {read_concurrency, true}]),
    ok.

%% The state of every Python node, sorted by name; [] when the application is not running.
-spec info() -> [info()].
info() ->
    case ets:whereis(?TAB) of
        undefined ->
            [];
        _ ->
            [#{name => Name, role => Role, status => Status, restarts => Restarts, os_pid => OsPid}
             || {Name, Role, Status, Restarts, OsPid} <- lists:sort(ets:tab2list(?TAB))]
    end.

%% The arguments of the CLI for a Python node (the contract with py_nodes/cli.py).
%% --stop-on-eof: the node exits when its stdin (this port) closes, so that it does not
%% outlive a BEAM node that was killed without running terminate/2.
-spec port_args(stellar_config:py_node()) -> [string()].
port_args(#{role := Role, name := Name}) ->
    ["node", "--role", atom_to_list(Role), "--name", atom_to_list(Name), "--stop-on-eof"].

%% The environment added to the Python node's own: the cookie (never on its command line),
%% the tick period of the satellite actors in seconds and this BEAM node's name.
-spec port_env(atom(), number()) -> [{string(), string()}].
port_env(Cookie, TickS) ->
    Tick = case is_integer(TickS) of
        true -> integer_to_list(TickS);
        false -> float_to_list(float(TickS), [short])
    end,
    [{"STELLAROPS_COOKIE", atom_to_list(Cookie)}, {"STELLAROPS_TICK_S", Tick},
     {"STELLAROPS_BEAM_NODE", atom_to_list(node())}].

%% gen_server:call(Server, Request, Timeout) to the process registered as Server on the Python
%% node Name, anywhere in the cluster. Another BEAM node's Python nodes listen on that host's
%% loopback when py_nodes_local is on: the call then runs on their BEAM node (erpc), and fails
%% as gen_server:call/3 would ({nodedown, _} when that BEAM node is gone).
-spec call(node(), atom(), term(), timeout()) -> term().
call(Name, Server, Request, Timeout) ->
    case owner(Name) of
        Beam when Beam =:= node() ->
            gen_server:call({Server, Name}, Request, Timeout);
        Beam ->
            Call = {gen_server, call, [{Server, Name}, Request, Timeout]},
            {M, F, A} = Call,
            ErpcTimeout = case Timeout of infinity -> infinity; _ -> Timeout + 5000 end,
            try
                erpc:call(Beam, M, F, A, ErpcTimeout)
            catch
                exit:{exception, Reason} -> exit(Reason);
                error:{exception, Reason, Stack} -> erlang:raise(error, Reason, Stack);
                error:{erpc, timeout} -> exit({timeout, Call});
                error:{erpc, _} -> exit({{nodedown, Beam}, Call})
            end
    end.

%% The BEAM node through which Name is reached: this one for its own Python nodes, for any
%% node when they are not kept local, and for names it does not know (a direct call then
%% fails as it would have).
owner(Name) ->
    case stellar_config:py_nodes_local() andalso
             not lists:any(fun(#{name := N}) -> N =:= Name end, info()) of
        false ->
            node();
        true ->
            case [B || #{name := N, beam := B} <- stellar_catalog:py_nodes(), N =:= Name] of
                [Beam | _] -> Beam;
                [] -> node()
            end
    end.

%% gen_server.

-spec init(stellar_config:py_node()) -> {ok, #state{}} | {ok, #state{}, {continue, start}}.
init(#{name := Name, role := Role}) ->
    process_flag(trap_exit, true),
    %% The first start inserts the row with restarts = -1 + 1 = 0; every later one adds 1.
    Restarts = ets:update_counter(?TAB, Name, {?POS_RESTARTS, 1},
                                  {Name, Role, starting, -1, undefined}),
    set_row(Name, starting, undefined),
    State = #state{name = Name, role = Role},
    case stellar_config:timeout(py_restart_delay, 200) of
        Delay when Restarts > 0, Delay > 0 ->
            _ = erlang:send_after(Delay, self(), start),
            {ok, State};
        _ ->
            {ok, State, {continue, start}}
    end.

-spec handle_continue(start, #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_continue(start, State = #state{name = Name, role = Role}) ->
    Exe = stellar_config:python_exe(),
    case {erlang:is_alive(), filelib:is_regular(Exe)} of
        {false, _} ->
            logger:error("cannot start Python node ~s: this node is not distributed", [Name]),
            {stop, not_distributed, State};
        {true, false} ->
            logger:error("cannot start Python node ~s: ~ts does not exist (run `make setup`)",
                         [Name, Exe]),
            {stop, {python_exe_missing, Exe}, State};
        {true, true} ->
            Port = open_port({spawn_executable, Exe}, [
                {args, port_args(#{role => Role, name => Name})},
                {env, port_env(erlang:get_cookie(), stellar_config:tick_s())},
                exit_status, use_stdio, stderr_to_stdout, binary, hide, {line, ?MAX_LINE}
            ]),
            {os_pid, OsPid} = erlang:port_info(Port, os_pid),
            set_row(Name, starting, OsPid),
            logger:info("started Python node ~s (role ~s, os pid ~b)", [Name, Role, OsPid]),
            Timeout = stellar_config:timeout(py_start_timeout, 30000),
            self() ! ping,
            {noreply, State#state{port = Port, os_pid = OsPid,
                                  deadline = erlang:monotonic_time(millisecond) + Timeout}}
    end.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, {error, bad_call}, #state{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, bad_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info(start, State = #state{port = undefined}) ->
    handle_continue(start, State);
handle_info(ping, State = #state{status = starting, name = Name, deadline = Deadline}) ->
    case net_adm:ping(Name) of
        pong ->
            %% The Python node is hidden: monitor_node/2 watches any connection, hidden or not.
            true = erlang:monitor_node(Name, true),
            set_row(Name, up, State#state.os_pid),
            logger:info("Python node ~s is up", [Name]),
            {noreply, State#state{status = up}};
        pang ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    logger:error("Python node ~s did not answer ping within its start timeout",
                                 [Name]),
                    {stop, {shutdown, start_timeout}, State};
                false ->
                    _ = erlang:send_after(?PING_INTERVAL, self(), ping),
                    {noreply, State}
            end
    end;
handle_info({Port, {data, {Eol, Chunk}}}, State = #state{port = Port}) ->
    {noreply, log_output(Eol, Chunk, State)};
handle_info({Port, {exit_status, Status}}, State = #state{port = Port, name = Name}) ->
    logger:warning("Python node ~s exited with status ~b", [Name, Status]),
    set_row(Name, down, undefined),
    {stop, {shutdown, {exit_status, Status}}, State#state{port = undefined, os_pid = undefined,
                                                          status = down}};
handle_info({nodedown, Name}, State = #state{name = Name}) ->
    logger:warning("Python node ~s went down", [Name]),
    set_row(Name, down, State#state.os_pid),
    {stop, {shutdown, nodedown}, State#state{status = down}};
handle_info({'EXIT', Port, _Reason}, State = #state{port = Port}) when Port =/= undefined ->
    %% The port closed without an exit status: its OS process is gone or going.
    {stop, {shutdown, port_closed}, State#state{port = undefined}};
handle_info(_Info, State) ->
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, State = #state{name = Name, os_pid = OsPid}) ->
    %% Down before the process stops: no shadow places an actor here meanwhile.
    set_row(Name, down, OsPid),
    stop_os_process(State),
    %% A connection that outlived the process would make the next instance's ping succeed
    %% against the old node.
    _ = erlang:disconnect_node(Name),
    set_row(Name, down, undefined),
    ok.

%% Internal.

set_row(Name, Status, OsPid) ->
    true = ets:update_element(?TAB, Name, [{?POS_STATUS, Status}, {?POS_OS_PID, OsPid}]),
    [{Name, Role, Status, Restarts, OsPid}] = ets:lookup(?TAB, Name),
    stellar_catalog:py_node_changed(),
    stellar_events:publish(node, undefined, #{name => Name, role => Role, status => Status,
                                              restarts => Restarts, beam => node()}).

log_output(noeol, Chunk, State = #state{partial = Partial}) when byte_size(Partial) < ?MAX_LINE ->
    State#state{partial = <<Partial/binary, Chunk/binary>>};
log_output(noeol, _Chunk, State) ->
    State;
log_output(eol, Chunk, State = #state{name = Name, partial = Partial}) ->
    %% py_line: the JSON formatter (stellar_log) writes a Python node's own JSON line as it is.
    Line = <<Partial/binary, Chunk/binary>>,
    logger:info("[~s] ~ts", [Name, Line], #{py_node => Name, py_line => Line}),
    State#state{partial = <<>>}.

stop_os_process(#state{port = undefined}) ->
    ok;
stop_os_process(#state{port = Port, os_pid = OsPid, name = Name}) ->
    StopTimeout = stellar_config:timeout(py_stop_timeout, 2000),
    _ = signal(OsPid, "TERM"),
    case wait_exit(Port, StopTimeout) of
        true ->
            ok;
        false ->
            logger:warning("Python node ~s ignored SIGTERM for ~b ms: sending SIGKILL",
                           [Name, StopTimeout]),
            _ = signal(OsPid, "KILL"),
            _ = wait_exit(Port, 1000),
            ok
    end,
    try port_close(Port) catch error:badarg -> ok end,
    ok.

signal(OsPid, Signal) when is_integer(OsPid) ->
    os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(OsPid) ++ " 2>/dev/null");
signal(undefined, _Signal) ->
    ok.

wait_exit(Port, Timeout) ->
    receive
        {Port, {exit_status, _}} -> true
    after Timeout ->
        false
    end.
