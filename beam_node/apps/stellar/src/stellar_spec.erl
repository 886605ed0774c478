%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Input from the shell API, checked and normalised: a satellite spec into its initial
%% SatState, ids, modes and commands. Pure functions; every problem is a specific error tuple.
-module(stellar_spec).

-export([sat_state/2]).
-export([id/1]).
-export([mode/1]).
-export([command/2]).
-export([tle/1]).

-define(KEYS, [id, name, tle, mode, energy_pct, memory_capacity_mb, memory_used_mb]).
-define(MAX_NAME, 256).
-define(DEFAULTS, #{mode => nominal, energy_pct => 100.0, memory_capacity_mb => 1024.0,
                    memory_used_mb => 0.0, tle => undefined}).

-type error() :: {error, term()}.

%% The initial SatState of a satellite from its spec: id and name (binaries or strings),
%% optional tle {Line1, Line2}, mode (default nominal), energy_pct (100.0),
%% memory_capacity_mb (1024.0), memory_used_mb (0.0). NowMs becomes updated_at.
-spec sat_state(term(), integer()) -> {ok, stellar_proto_v1:sat_state()} | error().
sat_state(Spec, NowMs) when is_map(Spec) ->
    case maps:keys(maps:without(?KEYS, Spec)) of
        [] -> fields(maps:merge(?DEFAULTS, Spec), NowMs);
        Unknown -> {error, {unknown_fields, lists:sort(Unknown)}}
    end;
sat_state(Spec, _NowMs) ->
    {error, {bad_spec, Spec}}.

fields(Spec, NowMs) ->
    Steps = [
        fun(S) -> required(id, S) end,
        fun(S) -> required(name, S) end,
        fun(S = #{id := Id}) -> set(id, id(Id), S) end,
        fun(S = #{name := Name}) -> set(name, name(Name), S) end,
        fun(S = #{tle := T}) -> set(tle, tle(T), S) end,
        fun(S = #{mode := M}) -> set(mode, mode_field(M), S) end,
        fun(S = #{energy_pct := E}) -> set(energy_pct, number(energy_pct, E, 0.0, 100.0), S) end,
        fun(S = #{memory_capacity_mb := C}) ->
            set(memory_capacity_mb, positive(memory_capacity_mb, C), S) end,
        fun(S = #{memory_used_mb := U, memory_capacity_mb := C}) ->
            set(memory_used_mb, number(memory_used_mb, U, 0.0, C), S) end
    ],
    case run(Steps, Spec) of
        {ok, S} -> {ok, S#{applied => [], updated_at => NowMs}};
        Error -> Error
    end.

run([], S) ->
    {ok, S};
run([Step | Rest], S) ->
    case Step(S) of
        {ok, S1} -> run(Rest, S1);
        Error -> Error
    end.

required(Key, S) ->
    case maps:is_key(Key, S) of
        true -> {ok, S};
        false -> {error, {missing_field, Key}}
    end.

set(Key, {ok, V}, S) -> {ok, S#{Key => V}};
set(_Key, Error, _S) -> Error.

%% A satellite id from the shell (binary or string) as a binary.
-spec id(term()) -> {ok, binary()} | {error, {bad_field, id}}.
id(Id) ->
    case text(Id) of
        {ok, B} ->
            case stellar_proto_v1:is_id(B) of
                true -> {ok, B};
                false -> {error, {bad_field, id}}
            end;
        error ->
            {error, {bad_field, id}}
    end.

name(Name) ->
    case text(Name) of
        {ok, B} when byte_size(B) >= 1, byte_size(B) =< ?MAX_NAME -> {ok, B};
        _ -> {error, {bad_field, name}}
    end.

mode_field(M) ->
    case mode(M) of
        {ok, Mode} -> {ok, Mode};
        {error, _} -> {error, {bad_field, mode}}
    end.

%% A mode given as an atom, binary or string.
-spec mode(term()) -> {ok, stellar_proto_v1:mode()} | {error, {bad_mode, term()}}.
mode(M) when is_atom(M) ->
    case stellar_proto_v1:is_mode(M) of
        true -> {ok, M};
        false -> {error, {bad_mode, M}}
    end;
mode(M) ->
    case text(M) of
        {ok, B} ->
            case [Mode || Mode <- stellar_proto_v1:modes(), atom_to_binary(Mode) =:= B] of
                [Mode] -> {ok, Mode};
                [] -> {error, {bad_mode, M}}
            end;
        error ->
            {error, {bad_mode, M}}
    end.

number(_Key, N, Min, Max) when is_number(N), N >= Min, N =< Max -> {ok, float(N)};
number(Key, _N, _Min, _Max) -> {error, {bad_field, Key}}.

positive(_Key, N) when is_number(N), N > 0, N =< 1.0e12 -> {ok, float(N)};
positive(Key, _N) -> {error, {bad_field, Key}}.

%% A command from the shell: a known kind (atom) and its args (a map).
-spec command(term(), term()) -> {ok, stellar_proto_v1:command_kind(), map()} | error().
command(Kind, Args) when is_atom(Kind), is_map(Args) ->
    case lists:member(Kind, stellar_proto_v1:command_kinds()) of
        false -> {error, {unknown_command, Kind}};
        true when Kind =:= set_mode -> command_mode(Args);
        true when Kind =:= set_tle -> command_tle(Args);
        true -> {ok, Kind, Args}
    end;
command(Kind, _Args) when not is_atom(Kind) ->
    {error, {bad_command, Kind}};
command(_Kind, Args) ->
    {error, {bad_args, Args}}.

command_mode(#{mode := M}) ->
    case mode(M) of
        {ok, Mode} -> {ok, set_mode, #{mode => Mode}};
        Error -> Error
    end;
command_mode(Args) ->
    {error, {bad_args, Args}}.

%% set_tle: exactly #{line1, line2}, a valid pair (trimmed), as binaries.
command_tle(Args = #{line1 := L1, line2 := L2}) when map_size(Args) =:= 2 ->
    case tle({L1, L2}) of
        {ok, {T1, T2}} -> {ok, set_tle, #{line1 => T1, line2 => T2}};
        Error -> Error
    end;
command_tle(Args) ->
    {error, {bad_args, Args}}.

%% Two-line elements: undefined, or {Line1, Line2} (binaries or strings) with the lengths,
%% line numbers, checksums and matching catalog numbers of the format.
-spec tle(term()) -> {ok, undefined | {binary(), binary()}} | error().
tle(undefined) ->
    {ok, undefined};
tle({L1, L2}) ->
    case {text(L1), text(L2)} of
        {{ok, B1}, {ok, B2}} ->
            T1 = trim(B1),
            T2 = trim(B2),
            case {tle_line(1, T1), tle_line(2, T2)} of
                {ok, ok} when binary_part(T1, 2, 5) =:= binary_part(T2, 2, 5) -> {ok, {T1, T2}};
                {ok, ok} -> {error, {bad_tle, catalog_number_mismatch}};
                {{error, Why}, _} -> {error, {bad_tle, {line1, Why}}};
                {ok, {error, Why}} -> {error, {bad_tle, {line2, Why}}}
            end;
        _ ->
            {error, {bad_field, tle}}
    end;
tle(_) ->
    {error, {bad_field, tle}}.

tle_line(N, Line) when byte_size(Line) =:= 69 ->
    <<First, Space, _/binary>> = Line,
    <<Body:68/binary, Check>> = Line,
    if
        First =/= $0 + N; Space =/= $\s -> {error, line_number};
        Check < $0; Check > $9 -> {error, checksum};
        true ->
            case checksum(Body) =:= Check - $0 of
                true -> ok;
                false -> {error, checksum}
            end
    end;
tle_line(_N, _Line) ->
    {error, length}.

checksum(Body) ->
    lists:foldl(fun(C, Sum) when C >= $0, C =< $9 -> Sum + C - $0;
                   ($-, Sum) -> Sum + 1;
                   (_, Sum) -> Sum
                end, 0, binary_to_list(Body)) rem 10.

trim(<<>>) ->
    <<>>;
trim(B) ->
    case binary:last(B) of
        C when C =:= $\s; C =:= $\r; C =:= $\n; C =:= $\t -> trim(binary_part(B, 0, byte_size(B) - 1));
        _ -> B
    end.

text(B) when is_binary(B) ->
    case unicode:characters_to_binary(B) of
        R when is_binary(R) -> {ok, R};
        _ -> error
    end;
text(L) when is_list(L) ->
    try unicode:characters_to_binary(L) of
        R when is_binary(R) -> {ok, R};
        _ -> error
    catch
        error:_ -> error
    end;
text(_) ->
    error.
