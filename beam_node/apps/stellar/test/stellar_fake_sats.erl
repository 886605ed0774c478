%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% TEST HELPER ONLY: an Erlang stand-in for the Python `sats' role, for testing the BEAM side
%% before (or without) the Python one. write_script/2 writes an executable that takes the
%% arguments of the `stellarops' CLI (node --role sats --name NAME --stop-on-eof) and starts
%% a hidden Erlang node running this module: a gen_server registered as `sats' answering
%% protocol v1 (start_actor, load), and actors that tick, run commands and exit when their
%% shadow's link breaks. The suites use it when STELLAR_FAKE_SATS=1; by default they run the
%% real Python role.
-module(stellar_fake_sats).
-behaviour(gen_server).

-export([write_script/2]).
-export([main/0]).
-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).

-define(TRANSITIONS, #{safe => [standby, maintenance],
                       standby => [nominal, maintenance, safe],
                       nominal => [science, downlink, standby, maintenance, safe],
                       science => [nominal, downlink, safe],
                       downlink => [nominal, science, safe],
                       maintenance => [standby, safe]}).

%% Writes the fake CLI into Dir; returns its path.
write_script(Dir, CodePath) ->
    Path = filename:join(Dir, "fake_stellarops"),
    Pa = lists:join(" ", ["'" ++ D ++ "'" || D <- CodePath]),
    Script = [
        "#!/bin/sh\n",
        "# Test stand-in for `stellarops node --role sats --name NAME --stop-on-eof'.\n",
        "while [ $# -gt 0 ]; do\n",
        "  case \"$1\" in --name) NAME=\"$2\"; shift;; esac\n",
        "  shift\n",
        "done\n",
        "exec erl -hidden -name \"$NAME\" -noinput -pa ", Pa,
        " -eval 'stellar_fake_sats:main()'\n"
    ],
    ok = file:write_file(Path, Script),
    ok = file:change_mode(Path, 8#755),
    Path.

%% The fake node's entry point.
main() ->
    case os:getenv("STELLAROPS_COOKIE") of
        false -> ok;
        Cookie -> erlang:set_cookie(node(), list_to_atom(Cookie))
    end,
    TickMs = round(list_to_float(os:getenv("STELLAROPS_TICK_S", "1.0")) * 1000),
    {ok, _} = gen_server:start({local, sats}, ?MODULE, TickMs, []),
    %% Stop when stdin closes, as --stop-on-eof does.
    spawn(fun() ->
        Port = open_port({fd, 0, 1}, [in, eof, binary]),
        eof_loop(Port)
    end),
    io:format("stellarops: node ~s up (role sats, fake)~n", [node()]).

eof_loop(Port) ->
    receive
        {Port, eof} -> erlang:halt(0);
        {Port, {data, _}} -> eof_loop(Port)
    end.

%% The `sats' server.

init(TickMs) ->
    {ok, #{tick => TickMs, actors => #{}}}.

handle_call({start_actor, 1, SatState, Shadow}, _From, S = #{tick := Tick, actors := Actors})
        when is_pid(Shadow) ->
    case stellar_proto_v1:is_sat_state(SatState) of
        {false, Field} ->
            {reply, {error, {bad_state, Field}}, S};
        true ->
            Id = maps:get(id, SatState),
            case Actors of
                #{Id := {Pid, _}} ->
                    {reply, {error, {already_running, Pid}}, S};
                _ ->
                    {Pid, Ref} = spawn_monitor(fun() -> actor(SatState, Shadow, Tick) end),
                    {reply, {ok, Pid}, S#{actors => Actors#{Id => {Pid, Ref}}}}
            end
    end;
handle_call(load, _From, S = #{actors := Actors}) ->
    {reply, {ok, #{actors => maps:size(Actors)}}, S};
handle_call(_Other, _From, S) ->
    {reply, {error, bad_request}, S}.

handle_cast(_Msg, S) ->
    {noreply, S}.

handle_info({'DOWN', Ref, process, Pid, _}, S = #{actors := Actors}) ->
    {noreply, S#{actors => maps:filter(fun(_, V) -> V =/= {Pid, Ref} end, Actors)}};
handle_info(_Msg, S) ->
    {noreply, S}.

%% An actor.

actor(State, Shadow, Tick) ->
    process_flag(trap_exit, true),
    erlang:send_after(Tick, self(), tick),
    actor_loop(State, Shadow, Tick).

actor_loop(State = #{id := Id}, Shadow, Tick) ->
    receive
        {'EXIT', _, _} ->
            exit(normal);
        stop ->
            exit(normal);
        tick ->
            erlang:send_after(Tick, self(), tick),
            S1 = tick(State),
            Shadow ! stellar_proto_v1:sat_tick(Id, S1),
            actor_loop(S1, Shadow, Tick);
        {command, 1, CmdId, Kind, Args, ReplyTo} ->
            Applied = maps:get(applied, State),
            {Outcome, S1} = case lists:member(CmdId, Applied) of
                true -> {done, State};
                false -> run(Kind, Args, State)
            end,
            S2 = S1#{applied => lists:sublist([CmdId | Applied -- [CmdId]], 256),
                     updated_at => erlang:system_time(millisecond)},
            ReplyTo ! stellar_proto_v1:command_result(Id, CmdId, Outcome, S2),
            case {maps:get(mode, State), maps:get(mode, S2)} of
                {Same, Same} -> ok;
                {From, To} -> Shadow ! stellar_proto_v1:sat_event_state(Id, From, To, command)
            end,
            actor_loop(S2, Shadow, Tick);
        _ ->
            actor_loop(State, Shadow, Tick)
    end.

tick(S = #{energy_pct := E}) ->
    S#{energy_pct => max(10.0, E - 0.01), updated_at => erlang:system_time(millisecond)}.

run(set_mode, #{mode := To}, S) -> transition(To, S);
run(set_mode, _, S) -> {{failed, {bad_args, mode}}, S};
run(collect, _, S) -> transition(science, S);
run(downlink, _, S) -> transition(downlink, S);
run(reboot, _, S) -> {done, S#{mode => safe}};
run(noop, _, S) -> {done, S};
run(Kind, _, S) -> {{failed, {unknown_command, Kind}}, S}.

transition(To, S = #{mode := From}) ->
    case maps:find(From, ?TRANSITIONS) of
        {ok, Allowed} ->
            case lists:member(To, Allowed) of
                true -> {done, S#{mode => To}};
                false when is_atom(To) -> {{failed, {invalid_transition, From, To}}, S};
                false -> {{failed, {bad_args, mode}}, S}
            end
    end.
