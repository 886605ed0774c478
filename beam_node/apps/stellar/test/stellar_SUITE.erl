%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The stellar application: its shell API, and the Python nodes it starts and supervises.
%% The python_node cases need a distributed ct node and the Python CLI in .venv: run them
%% through scripts/test.sh (`rebar3 ct --name ct@127.0.0.1'), which sets both up. They fail,
%% never skip, when either is missing.
-module(stellar_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-define(PY, 'py_echo_ct@127.0.0.1').

all() ->
    [{group, beam_only}, {group, python_node}].

groups() ->
    [
        {beam_only, [], [local_node_listed, ping, bad_config_refused, tasks_without_scheduler]},
        {python_node, [], [echo_node_up, echo_node_restarts_after_kill, stop_kills_python_node]}
    ].

%% Each case loads the app itself (set_env before load would be overwritten by the load).
init_per_testcase(_Case, Config) ->
    ok = application:load(stellar),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = application:stop(stellar),
    _ = application:unload(stellar),
    ok.

%% beam_only.

local_node_listed() ->
    [{doc, "With no Python nodes configured, stellar:nodes() lists only this BEAM node, up."}].
local_node_listed(_Config) ->
    ok = application:set_env(stellar, py_nodes, []),
    {ok, _} = application:ensure_all_started(stellar),
    OsPid = list_to_integer(os:getpid()),
    Self = node(),
    ?assertMatch([#{name := Self, role := beam, status := up, restarts := 0, os_pid := OsPid}],
                 stellar:nodes()).

ping() ->
    [{doc, "stellar:ping/1 answers pong for a live node and pang for an unknown one."}].
ping(_Config) ->
    case erlang:is_alive() of
        true -> ?assertEqual(pong, stellar:ping(node()));
        false -> ok
    end,
    ?assertEqual(pang, stellar:ping('nobody_here@127.0.0.1')).

tasks_without_scheduler() ->
    [{doc, "The task calls refuse bad ids and, with no scheduler node, say so (nothing crashes)."}].
tasks_without_scheduler(_Config) ->
    ok = application:set_env(stellar, py_nodes, []),
    {ok, _} = application:ensure_all_started(stellar),
    ?assertEqual({error, {bad_field, id}}, stellar:task(0)),
    ?assertEqual({error, {bad_field, id}}, stellar:cancel_task(<<"1">>)),
    ?assertEqual({error, {bad_field, spec}}, stellar:submit_task([kind, imaging])),
    ?assertEqual({error, no_scheduler_node}, stellar:tasks()),
    ?assertEqual({error, no_scheduler_node}, stellar:task(1)),
    ?assertEqual({error, no_scheduler_node}, stellar:submit_task(#{kind => downlink})),
    ?assertEqual({error, no_scheduler_node}, stellar:cancel_task(1)),
    ?assertEqual({error, no_scheduler_node}, stellar:plan()).

bad_config_refused() ->
    [{doc, "A malformed py_nodes entry stops the application from starting, naming the entry."}].
bad_config_refused(_Config) ->
    ok = application:set_env(stellar, py_nodes, [#{role => echo, name => 'no_host'}]),
    ?assertMatch({error, {{bad_config, {bad_py_node_name, 'no_host'}}, _}},
                 application:start(stellar)).

%% python_node.

echo_node_up() ->
    [{doc, "The app starts an echo Python node that comes up and answers net_adm:ping."}].
echo_node_up(_Config) ->
    start_with_echo_node(),
    #{status := up, restarts := 0, os_pid := OsPid} = wait_for(?PY, up, 0),
    ?assert(is_integer(OsPid)),
    ?assertEqual(pong, net_adm:ping(?PY)),
    ?assert(lists:member(?PY, erlang:nodes(hidden))).

echo_node_restarts_after_kill() ->
    [{doc, "kill -9 of the Python node's OS process brings it back with restarts = 1."}].
echo_node_restarts_after_kill(_Config) ->
    start_with_echo_node(),
    #{os_pid := OsPid} = wait_for(?PY, up, 0),
    _ = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    #{os_pid := NewOsPid} = wait_for(?PY, up, 1),
    ?assertNotEqual(OsPid, NewOsPid),
    ?assertNot(os_process_alive(OsPid)),
    ?assertEqual(pong, net_adm:ping(?PY)).

stop_kills_python_node() ->
    [{doc, "Stopping the application stops the Python node's OS process: no orphans."}].
stop_kills_python_node(_Config) ->
    start_with_echo_node(),
    #{os_pid := OsPid} = wait_for(?PY, up, 0),
    ok = application:stop(stellar),
    ?assertNot(os_process_alive(OsPid)),
    ?assertEqual(pang, net_adm:ping(?PY)).

%% Helpers.

start_with_echo_node() ->
    erlang:is_alive() orelse
        ct:fail("this ct node is not distributed: run `rebar3 ct --name ct@127.0.0.1` "
                "(scripts/test.sh does)"),
    Exe = python_exe(),
    filelib:is_regular(Exe) orelse
        ct:fail("the Python CLI ~ts is missing: run scripts/setup.sh", [Exe]),
    ok = application:set_env(stellar, python_exe, Exe),
    ok = application:set_env(stellar, py_nodes, [#{role => echo, name => ?PY}]),
    {ok, _} = application:ensure_all_started(stellar),
    ok.

%% $STELLAROPS_PY, else .venv/bin/stellarops in the project root (the first folder above
%% this file with a rebar.config: ct runs in its log folder, not in the project).
python_exe() ->
    case os:getenv("STELLAROPS_PY") of
        Exe when is_list(Exe), Exe =/= [] -> Exe;
        _ -> filename:join([project_root(filename:dirname(?FILE)), ".venv", "bin", "stellarops"])
    end.

project_root("/") ->
    ct:fail("no rebar.config above ~ts", [?FILE]);
project_root(Dir) ->
    case filelib:is_regular(filename:join(Dir, "rebar.config")) of
        true -> Dir;
        false -> project_root(filename:dirname(Dir))
    end.

%% Waits until Name has Status with Restarts restarts; returns its stellar:nodes() entry.
wait_for(Name, Status, Restarts) ->
    wait_for(Name, Status, Restarts, erlang:monotonic_time(millisecond) + 30000).

wait_for(Name, Status, Restarts, Deadline) ->
    Info = lists:keyfind(Name, 1, [{N, I} || I = #{name := N} <- stellar:nodes()]),
    case Info of
        {Name, I = #{status := Status, restarts := Restarts}} ->
            I;
        _ ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> ct:fail("~s did not reach ~s/~b restarts: ~p", [Name, Status, Restarts, Info]);
                false -> timer:sleep(50), wait_for(Name, Status, Restarts, Deadline)
            end
    end.

os_process_alive(OsPid) ->
    case string:trim(os:cmd("ps -o stat= -p " ++ integer_to_list(OsPid))) of
        "" -> false;
        "Z" ++ _ -> false;
        _ -> true
    end.
