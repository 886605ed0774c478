%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Reads and checks the `stellar' application environment. The checks are pure functions
%% (validate_py_nodes/1, resolve_python_exe/3) so that they can be unit tested.
-module(stellar_config).

-export([py_nodes/0]).
-export([python_exe/0]).
-export([restart_intensity/0]).
-export([timeout/2]).
-export([validate_py_nodes/1]).
-export([resolve_python_exe/3]).

-type py_node() :: #{role := atom(), name := node()}.
-export_type([py_node/0]).

-define(PY_NODE_KEYS, [name, role]).

%% The configured Python nodes, checked.
-spec py_nodes() -> {ok, [py_node()]} | {error, term()}.
py_nodes() ->
    validate_py_nodes(application:get_env(stellar, py_nodes, [])).

%% The executable that starts a Python node (the `stellarops' console script).
-spec python_exe() -> file:filename().
python_exe() ->
    {ok, Cwd} = file:get_cwd(),
    resolve_python_exe(application:get_env(stellar, python_exe), os:getenv("STELLAROPS_PY"), Cwd).

%% {Intensity, Period} for stellar_sup.
-spec restart_intensity() -> {non_neg_integer(), pos_integer()}.
restart_intensity() ->
    {application:get_env(stellar, sup_intensity, 5), application:get_env(stellar, sup_period, 10)}.

%% A timeout in milliseconds from the application environment.
-spec timeout(atom(), timeout()) -> timeout().
timeout(Key, Default) ->
    application:get_env(stellar, Key, Default).

%% Checks a `py_nodes' value: a list of #{role => atom(), name => 'alive@host'} with unique
%% names. Returns the first problem found, naming the entry.
-spec validate_py_nodes(term()) -> {ok, [py_node()]} | {error, term()}.
validate_py_nodes(PyNodes) when is_list(PyNodes) ->
    validate_py_nodes(PyNodes, [], #{});
validate_py_nodes(Other) ->
    {error, {py_nodes_not_a_list, Other}}.

validate_py_nodes([], Acc, _Seen) ->
    {ok, lists:reverse(Acc)};
validate_py_nodes([Entry | Rest], Acc, Seen) ->
    case validate_py_node(Entry) of
        {ok, #{name := Name}} when is_map_key(Name, Seen) ->
            {error, {duplicate_py_node_name, Name}};
        {ok, PyNode = #{name := Name}} ->
            validate_py_nodes(Rest, [PyNode | Acc], Seen#{Name => true});
        Error = {error, _} ->
            Error
    end.

validate_py_node(Entry = #{role := Role, name := Name}) ->
    case maps:keys(maps:without(?PY_NODE_KEYS, Entry)) of
        [] when not is_atom(Role); Role =:= undefined ->
            {error, {bad_py_node_role, Role}};
        [] ->
            case is_node_name(Name) of
                true -> {ok, #{role => Role, name => Name}};
                false -> {error, {bad_py_node_name, Name}}
            end;
        Unknown ->
            {error, {unknown_py_node_keys, Name, Unknown}}
    end;
validate_py_node(Entry) ->
    {error, {bad_py_node, Entry, "expected #{role => Role, name => 'name@host'}"}}.

is_node_name(Name) when is_atom(Name) ->
    case string:split(atom_to_list(Name), "@") of
        [Alive, Host] when Alive =/= [], Host =/= [] ->
            lists:all(fun is_alive_char/1, Alive) andalso not lists:member($@, Host);
        _ ->
            false
    end;
is_node_name(_) ->
    false.

is_alive_char(C) ->
    (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z)
        orelse (C >= $0 andalso C =< $9) orelse C =:= $_ orelse C =:= $-.

%% Where the Python CLI is: the `python_exe' app env, else $STELLAROPS_PY, else
%% <Cwd>/.venv/bin/stellarops.
-spec resolve_python_exe({ok, file:filename()} | undefined, string() | false, file:filename())
    -> file:filename().
resolve_python_exe({ok, Exe}, _OsEnv, _Cwd) ->
    Exe;
resolve_python_exe(undefined, OsEnv, _Cwd) when is_list(OsEnv), OsEnv =/= [] ->
    OsEnv;
resolve_python_exe(undefined, _OsEnv, Cwd) ->
    filename:join([Cwd, ".venv", "bin", "stellarops"]).
