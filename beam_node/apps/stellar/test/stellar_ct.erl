%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Helpers shared by the Common Test suites.
-module(stellar_ct).

-export([require_distribution/0]).
-export([sats_exe/1]).
-export([project_root/0]).
-export([own_code_path/0]).
-export([start_app/2]).
-export([stop_app/0]).
-export([wait_until/3]).
-export([wait_py_nodes_up/2]).
-export([running_sats/0]).
-export([os_process_alive/1]).
-export([shadow_names/0]).

require_distribution() ->
    erlang:is_alive() orelse
        ct:fail("this ct node is not distributed: run `rebar3 ct --name ct@127.0.0.1` "
                "(scripts/test.sh does)"),
    ok.

%% The executable that the app starts for a `sats' node: the real Python CLI
%% ($STELLAROPS_PY, else .venv/bin/stellarops), or with STELLAR_FAKE_SATS=1 the Erlang
%% stand-in (stellar_fake_sats) written into the suite's priv_dir.
sats_exe(Config) ->
    case os:getenv("STELLAR_FAKE_SATS") of
        "1" ->
            ct:log("STELLAR_FAKE_SATS=1: the sats nodes are the Erlang stand-in"),
            stellar_fake_sats:write_script(proplists:get_value(priv_dir, Config), own_code_path());
        _ ->
            Exe = case os:getenv("STELLAROPS_PY") of
                E when is_list(E), E =/= [] -> E;
                _ -> filename:join([project_root(), ".venv", "bin", "stellarops"])
            end,
            filelib:is_regular(Exe) orelse
                ct:fail("the Python CLI ~ts is missing: run scripts/setup.sh", [Exe]),
            Exe
    end.

%% The first folder above this file with a rebar.config.
project_root() ->
    project_root(filename:dirname(code:which(?MODULE))).

project_root("/") ->
    ct:fail("no rebar.config above ~ts", [code:which(?MODULE)]);
project_root(Dir) ->
    case filelib:is_regular(filename:join(Dir, "rebar.config")) of
        true -> Dir;
        false -> project_root(filename:dirname(Dir))
    end.

%% The code path entries that are not OTP's (our ebin and test dirs).
own_code_path() ->
    Lib = code:lib_dir(),
    [D || D <- code:get_path(), not lists:prefix(Lib, D), D =/= "."].

%% Loads and starts the app with Env on top of its defaults.
start_app(Exe, Env) ->
    _ = application:load(stellar),
    ok = application:set_env(stellar, python_exe, Exe),
    [ok = application:set_env(stellar, K, V) || {K, V} <- Env],
    {ok, _} = application:ensure_all_started(stellar),
    ok.

stop_app() ->
    _ = application:stop(stellar),
    _ = application:unload(stellar),
    ok.

%% Polls Fun every 20 ms until it returns true or {true, Value}; fails after Ms.
wait_until(What, Fun, Ms) ->
    wait_until(What, Fun, erlang:monotonic_time(millisecond) + Ms, undefined).

wait_until(What, Fun, Deadline, _Last) ->
    case Fun() of
        true ->
            ok;
        {true, Value} ->
            Value;
        Last ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> ct:fail("timed out waiting for ~s; last: ~p", [What, Last]);
                false -> timer:sleep(20), wait_until(What, Fun, Deadline, Last)
            end
    end.

%% Waits until every listed Python node is up; returns their stellar:nodes() entries.
wait_py_nodes_up(Names, Ms) ->
    wait_until("Python nodes up", fun() ->
        Infos = [I || I = #{name := N} <- stellar:nodes(), lists:member(N, Names)],
        case length(Infos) =:= length(Names) andalso
             lists:all(fun(#{status := S}) -> S =:= up end, Infos) of
            true -> {true, Infos};
            false -> Infos
        end
    end, Ms).

%% Satellites whose shadow reports a running actor: [{Id, PyNode, ActorPid}].
running_sats() ->
    lists:filtermap(fun(#{id := Id}) ->
        case stellar_sat:whereis(Id) of
            undefined -> false;
            Pid ->
                try stellar_sat:info(Pid) of
                    #{phase := running, py := Py, actor := A} -> {true, {Id, Py, A}};
                    _ -> false
                catch exit:_ -> false
                end
        end
    end, stellar:sats()).

%% The ids of every shadow registered on a connected BEAM node (an id twice if two nodes
%% both run a shadow of it).
shadow_names() ->
    lists:sort(lists:append(
        [try erpc:call(N, stellar_registry, ids, [], 5000) catch _:_ -> [] end
         || N <- [node() | nodes()]])).

os_process_alive(OsPid) ->
    case string:trim(os:cmd("ps -o stat= -p " ++ integer_to_list(OsPid))) of
        "" -> false;
        "Z" ++ _ -> false;
        _ -> true
    end.
