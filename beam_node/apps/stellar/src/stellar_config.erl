%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Reads and checks the `stellar' application environment. The checks are pure functions
%% (validate_py_nodes/2, resolve_python_exe/3, validate_tick_s/1) so that they can be unit
%% tested.
-module(stellar_config).

-export([check/0]).
-export([py_nodes/0]).
-export([default_prefixes/2]).
-export([python_exe/0]).
-export([restart_intensity/0]).
-export([sat_restart_intensity/0]).
-export([tick_s/0]).
-export([timeout/2]).
-export([validate_py_nodes/2]).
-export([validate_tick_s/1]).
-export([resolve_python_exe/3]).
-export([cluster/0]).
-export([validate_cluster/2]).
-export([py_nodes_local/0]).
-export([py_host/2]).

-type py_node() :: #{role := atom(), name := node()}.
-type cluster() :: #{peers := [node()], dns := string() | undefined, basename := string(),
                     poll_ms := pos_integer(), nameservers := [{inet:ip4_address(), inet:port_number()}],
                     size := pos_integer(), failure_ms := pos_integer()}.
-export_type([py_node/0, cluster/0]).

-define(PY_NODE_KEYS, [name, role]).
-define(PY_COUNT_KEYS, [count, prefix, role]).
-define(MAX_COUNT, 64).
-define(CLUSTER_KEYS, [basename, dns, failure_ms, nameservers, peers, poll_ms, size]).
-define(MAX_CLUSTER_SIZE, 1000).
-define(MIN_FAILURE_MS, 300).
-define(MAX_FAILURE_MS, 600000).
-define(MAX_POLL_MS, 3600000).

%% Checks the whole environment; the application does not start when this fails.
-spec check() -> ok | {error, term()}.
check() ->
    case application:get_env(stellar, py_nodes_local, true) of
        Local when is_boolean(Local) -> check_rest();
        Bad -> {error, {bad_py_nodes_local, Bad, "expected true or false"}}
    end.

check_rest() ->
    case {py_nodes(), cluster()} of
        {{ok, _}, {ok, _}} -> validate_tick_s(application:get_env(stellar, tick_s, 1.0));
        {{ok, _}, Error} -> Error;
        {Error, _} -> Error
    end.

%% How this node finds the other BEAM nodes (stellar_cluster), checked, with defaults.
-spec cluster() -> {ok, cluster()} | {error, term()}.
cluster() ->
    [Alive | _] = string:split(atom_to_list(node()), "@"),
    validate_cluster(application:get_env(stellar, cluster, #{}), Alive).

%% The configured Python nodes, checked, `count' entries expanded with this node's host.
-spec py_nodes() -> {ok, [py_node()]} | {error, term()}.
%% Without a prefix, the nodes of a BEAM node named other than stellar@ are named after it
%% (e.g. demo@h starts demo_sats1@h), so that two clusters can run on one host.
%% With py_nodes_local (the default) they listen on loopback, named apart per host (see py_host/2).
py_nodes() ->
    [Alive, Host] = string:split(atom_to_list(node()), "@"),
    validate_py_nodes(default_prefixes(application:get_env(stellar, py_nodes, []), Alive),
                      py_host(Host, py_nodes_local())).

%% Whether this node's Python nodes stay local: on loopback, and the only ones its satellites'
%% actors are placed on (stellar_catalog); another host's are reached through their BEAM node
%% (stellar_py_node:call/4). false: named after this node's host and listening there, and
%% placement across hosts (the Python nodes' ports must then be open between the hosts).
-spec py_nodes_local() -> boolean().
py_nodes_local() ->
    application:get_env(stellar, py_nodes_local, true) =/= false.

%% Where the `count' entries' Python nodes live for a BEAM node on Host: Host itself when not
%% local; else 127.0.0.1, and on a BEAM node not named after loopback, with a suffix made of
%% Host (sats1-10-0-0-5@127.0.0.1): every host has a sats1@127.0.0.1 of its own, and a peer
%% that tried another host's by name would reach its own. A name with the suffix is found in
%% no other host's epmd, so no BEAM node ever connects to another host's Python nodes.
-spec py_host(string(), boolean()) -> string() | {string(), string()}.
py_host(Host, false) ->
    Host;
py_host("127.0.0.1", true) ->
    "127.0.0.1";
py_host(Host, true) ->
    Tag = [case is_alive_char(C) of true -> C; false -> $- end || C <- Host],
    {"-" ++ Tag, "127.0.0.1"}.

%% Gives each `count' entry without a prefix the default prefix for the BEAM node Alive.
-spec default_prefixes(term(), string()) -> term().
default_prefixes(PyNodes, Alive) when is_list(PyNodes) ->
    [case Entry of
         #{role := Role, count := _} when is_atom(Role), not is_map_key(prefix, Entry),
                                          Alive =/= "stellar" ->
             Entry#{prefix => Alive ++ "_" ++ atom_to_list(Role)};
         _ ->
             Entry
     end || Entry <- PyNodes];
default_prefixes(Other, _Alive) ->
    Other.

%% The tick period of the satellite actors, in seconds (STELLAROPS_TICK_S for Python).
-spec tick_s() -> number().
tick_s() ->
    application:get_env(stellar, tick_s, 1.0).

-spec validate_tick_s(term()) -> ok | {error, {bad_tick_s, term()}}.
validate_tick_s(T) when is_number(T), T > 0, T =< 3600 ->
    ok;
validate_tick_s(T) ->
    {error, {bad_tick_s, T}}.

%% The executable that starts a Python node (the `stellarops' console script).
-spec python_exe() -> file:filename().
python_exe() ->
    {ok, Cwd} = file:get_cwd(),
    resolve_python_exe(application:get_env(stellar, python_exe), os:getenv("STELLAROPS_PY"), Cwd).

%% {Intensity, Period} for stellar_sup and stellar_py_sup.
-spec restart_intensity() -> {non_neg_integer(), pos_integer()}.
restart_intensity() ->
    {application:get_env(stellar, sup_intensity, 5), application:get_env(stellar, sup_period, 10)}.

%% {Intensity, Period} for stellar_sat_sup: every satellite of a Python node that dies
%% restarts at once, so this is sized by the number of satellites, not by 5.
-spec sat_restart_intensity() -> {non_neg_integer(), pos_integer()}.
sat_restart_intensity() ->
    {application:get_env(stellar, sat_sup_intensity, 250000),
     application:get_env(stellar, sat_sup_period, 10)}.

%% A timeout in milliseconds from the application environment.
-spec timeout(atom(), timeout()) -> timeout().
timeout(Key, Default) ->
    application:get_env(stellar, Key, Default).

%% Checks a `py_nodes' value: a list of #{role => atom(), name => 'alive@host'} or
%% #{role => atom(), count => N} (optional prefix => "alive", default the role), which means
%% the N nodes Prefix1@Host .. PrefixN@Host (Host {Suffix, H}: Prefix1Suffix@H ..). Names must be
%% unique. Returns the first problem found, naming the entry.
-spec validate_py_nodes(term(), string() | {string(), string()}) -> {ok, [py_node()]} | {error, term()}.
validate_py_nodes(PyNodes, Host) when is_list(PyNodes) ->
    validate_py_nodes(PyNodes, Host, [], #{});
validate_py_nodes(Other, _Host) ->
    {error, {py_nodes_not_a_list, Other}}.

validate_py_nodes([], _Host, Acc, _Seen) ->
    {ok, lists:reverse(Acc)};
validate_py_nodes([Entry | Rest], Host, Acc, Seen) ->
    case expand(Entry, Host) of
        {ok, Expanded} ->
            case add_unique(Expanded, Acc, Seen) of
                {ok, Acc1, Seen1} -> validate_py_nodes(Rest, Host, Acc1, Seen1);
                Error -> Error
            end;
        Error = {error, _} ->
            Error
    end.

add_unique([], Acc, Seen) ->
    {ok, Acc, Seen};
add_unique([#{name := Name} | _], _Acc, Seen) when is_map_key(Name, Seen) ->
    {error, {duplicate_py_node_name, Name}};
add_unique([PyNode = #{name := Name} | Rest], Acc, Seen) ->
    add_unique(Rest, [PyNode | Acc], Seen#{Name => true}).

expand(Entry = #{role := Role, count := Count}, Host) when not is_map_key(name, Entry) ->
    Prefix = maps:get(prefix, Entry, Role),
    case maps:keys(maps:without(?PY_COUNT_KEYS, Entry)) of
        [] when not is_integer(Count); Count < 1; Count > ?MAX_COUNT ->
            {error, {bad_py_node_count, Count}};
        [] when not (is_atom(Prefix) orelse is_list(Prefix)) ->
            {error, {bad_py_node_prefix, Prefix}};
        [] ->
            Names = [node_name(Prefix, N, Host) || N <- lists:seq(1, Count)],
            expand_all([Entry#{name => Name} || Name <- Names], [], Role);
        Unknown ->
            {error, {unknown_py_node_keys, Role, Unknown}}
    end;
expand(Entry, _Host) ->
    case validate_py_node(Entry) of
        {ok, PyNode} -> {ok, [PyNode]};
        Error -> Error
    end.

expand_all([], Acc, _Role) ->
    {ok, lists:reverse(Acc)};
expand_all([Entry | Rest], Acc, Role) ->
    case validate_py_node(maps:without([count, prefix], Entry)) of
        {ok, PyNode} -> expand_all(Rest, [PyNode | Acc], Role);
        {error, {bad_py_node_name, _}} -> {error, {bad_py_node_prefix, maps:get(prefix, Entry, Role)}};
        Error -> Error
    end.

node_name(Prefix, N, Host) ->
    Alive = case is_atom(Prefix) of
        true -> atom_to_list(Prefix);
        false -> Prefix
    end,
    {Suffix, At} = case Host of
        {S, H} -> {S, H};
        H -> {"", H}
    end,
    try
        list_to_atom(Alive ++ integer_to_list(N) ++ Suffix ++ "@" ++ At)
    catch
        error:badarg -> 'bad@bad@name'
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
    {error, {bad_py_node, Entry,
             "expected #{role => Role, name => 'name@host'} or #{role => Role, count => N}"}}.

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

%% Checks a `cluster' value: #{peers => ['name@host', ...] (static peers), dns => "name"
%% (every A record of name is a peer Basename@IP), basename => "alive" (default: this node's
%% own, Alive), poll_ms => N (how often peers are looked up and connected, 100..3600000,
%% default 5000), nameservers => [{{A,B,C,D}, Port}] (default: the system's resolv.conf),
%% size => N (the expected number of BEAM nodes, for the quorum rule of stellar_cluster,
%% 1..1000, default 1), failure_ms => N (a connected peer silent this long is disconnected,
%% 300..600000, default 3000)}.
-spec validate_cluster(term(), string()) -> {ok, cluster()} | {error, term()}.
validate_cluster(Cluster, Alive) when is_map(Cluster) ->
    Full = maps:merge(#{peers => [], dns => undefined, basename => Alive, poll_ms => 5000,
                        nameservers => [], size => 1, failure_ms => 3000}, Cluster),
    #{peers := Peers, dns := Dns, basename := Base, poll_ms := Poll, nameservers := Ns} = Full,
    BadPeers = [P || P <- list_or_bad(Peers), not is_node_name(P)],
    if
        map_size(Full) > length(?CLUSTER_KEYS) ->
            {error, {unknown_cluster_keys, maps:keys(maps:without(?CLUSTER_KEYS, Full))}};
        not is_list(Peers); BadPeers =/= [] ->
            {error, {bad_cluster_peers, Peers, "expected a list of node names like 'stellar@10.0.0.5'"}};
        Dns =/= undefined, not is_list(Dns) ->
            {error, {bad_cluster_dns, Dns, "expected a DNS name as a string"}};
        Dns =/= undefined ->
            case is_dns_name(Dns) of
                true -> validate_cluster_rest(Full, Base, Poll, Ns);
                false -> {error, {bad_cluster_dns, Dns, "expected a DNS name as a string"}}
            end;
        true ->
            validate_cluster_rest(Full, Base, Poll, Ns)
    end;
validate_cluster(Other, _Alive) ->
    {error, {cluster_not_a_map, Other}}.

validate_cluster_rest(Full, Base, Poll, Ns) ->
    GoodBase = is_list(Base) andalso Base =/= [] andalso io_lib:printable_latin1_list(Base)
        andalso lists:all(fun is_alive_char/1, Base),
    GoodNs = is_list(Ns) andalso lists:all(fun is_nameserver/1, Ns),
    if
        not GoodBase -> {error, {bad_cluster_basename, Base}};
        not is_integer(Poll); Poll < 100; Poll > ?MAX_POLL_MS -> {error, {bad_cluster_poll_ms, Poll}};
        not GoodNs -> {error, {bad_cluster_nameservers, Ns}};
        true -> validate_quorum(Full)
    end.

validate_quorum(Full = #{size := Size, failure_ms := FailureMs}) ->
    if
        not is_integer(Size); Size < 1; Size > ?MAX_CLUSTER_SIZE ->
            {error, {bad_cluster_size, Size, "expected the number of BEAM nodes, 1..1000"}};
        not is_integer(FailureMs); FailureMs < ?MIN_FAILURE_MS; FailureMs > ?MAX_FAILURE_MS ->
            {error, {bad_cluster_failure_ms, FailureMs, "expected milliseconds, 300..600000"}};
        true ->
            {ok, Full}
    end.

list_or_bad(L) when is_list(L) -> L;
list_or_bad(_) -> [].

%% Letters, digits, '-', '_' in dot-separated labels of 1..63; 253 at most in all.
is_dns_name(Name) ->
    io_lib:printable_latin1_list(Name) andalso length(Name) =< 253 andalso
        lists:all(fun(Label) -> Label =/= [] andalso length(Label) =< 63
                                    andalso lists:all(fun is_alive_char/1, Label) end,
                  string:split(string:trim(Name, trailing, "."), ".", all)).

is_nameserver({{A, B, C, D}, Port}) ->
    lists:all(fun(X) -> is_integer(X) andalso X >= 0 andalso X =< 255 end, [A, B, C, D])
        andalso is_integer(Port) andalso Port > 0 andalso Port < 65536;
is_nameserver(_) ->
    false.
