%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The BEAM <-> Python satellite protocol, version 1 (docs/protocol-v1.md): builders and
%% checks for every message, and shapes/0 (with map_shapes/0, enums/0, unions/0), the same
%% shape tables as py_nodes/proto_v1.py's SHAPES, MAP_SHAPES, ENUMS and UNIONS, so that an
%% interop test fails when the two sides drift.
-module(stellar_proto_v1).

-export([version/0]).
-export([modes/0]).
-export([command_kinds/0]).
-export([command_args/0]).
-export([shapes/0]).
-export([map_shapes/0]).
-export([enums/0]).
-export([unions/0]).
-export([conforms/2]).
-export([is_command_id/1]).
-export([is_sat_state/1]).
-export([is_mode/1]).
-export([is_outcome/1]).
-export([is_id/1]).
-export([start_actor/2]).
-export([load/0]).
-export([command/4]).
-export([command_result/4]).
-export([stop/0]).
-export([sat_tick/2]).
-export([sat_tick/3]).
-export([sat_ticks/1]).
-export([state_keys/0]).
-export([is_telemetry/1]).
-export([telemetry_rows/1, telemetry_rows_join/1, telemetry_rows_split/3]).
-export([telemetry_rows_list/1]).
-export([sat_event_state/4]).
-export([sat_event_alarm/4]).
-export([classify/1]).

-define(V, 1).
-define(MAX_ID, 64).
-define(MAX_APPLIED, 256).
-define(MAX_COMMAND_ID, 128).
-define(ROW_BYTES, 50).  % a packed telemetry row (telemetry_rows/1)
%% A tick's ranges (is_telemetry/1, tick_rows/5): energy in percent, memory in MB, WGS84 degrees, km.
-define(ENERGY_MIN, 0.0).
-define(ENERGY_MAX, 100.0).
-define(MEMORY_MIN, 0.0).
-define(LAT_MIN, -90.0).
-define(LAT_MAX, 90.0).
-define(LON_MIN, -180.0).
-define(LON_MAX, 180.0).
-define(ALT_MIN, -1.0e4).
-define(ALT_MAX, 1.0e7).
-define(STATE_KEYS, [id, name, mode, energy_pct, memory_used_mb, memory_capacity_mb, tle, applied,
                     updated_at]).

-type mode() :: safe | standby | nominal | science | downlink | maintenance.
-type command_kind() :: set_mode | collect | downlink | reboot | noop | set_tle.
-type sat_state() :: #{id := binary(), name := binary(), mode := mode(),
                       energy_pct := float(), memory_used_mb := float(),
                       memory_capacity_mb := float(),
                       tle := undefined | {binary(), binary()},
                       applied := [binary()], updated_at := integer()}.
%% What a shadow knows of its satellite: the SatState and, after a tick, its orbit keys.
-type known_state() :: #{id := binary(), name := binary(), mode := mode(),
                         energy_pct := float(), memory_used_mb := float(),
                         memory_capacity_mb := float(),
                         tle := undefined | {binary(), binary()},
                         applied := [binary()], updated_at := integer(),
                         lat_deg => float() | undefined, lon_deg => float() | undefined,
                         alt_km => float() | undefined, in_sunlight => boolean()}.
-type outcome() :: done | {failed, term()}.
-type shape() :: binary() | tuple().
-type orbit() :: #{lat_deg := float() | undefined, lon_deg := float() | undefined,
                   alt_km := float() | undefined, in_sunlight := boolean()}.
-type telemetry() :: #{mode := mode(), energy_pct := float(), memory_used_mb := float(),
                       updated_at := integer(), lat_deg := float() | undefined,
                       lon_deg := float() | undefined, alt_km := float() | undefined,
                       in_sunlight := boolean()}.
%% {sat_ticks, 1, Count, Ids, Shadows, Records}: Ids and Records as in telemetry_rows/1, Shadows
%% the shadow pid of each row.
-type sat_ticks() :: {sat_ticks, 1, non_neg_integer(), binary(), [pid()], binary()}.
-export_type([mode/0, command_kind/0, sat_state/0, known_state/0, orbit/0, telemetry/0, outcome/0, shape/0,
              sat_ticks/0]).

%% The protocol version carried by every tuple message.
-spec version() -> 1.
version() ->
    ?V.

%% The satellite modes, in the table's order.
-spec modes() -> [mode(), ...].
modes() ->
    [safe, standby, nominal, science, downlink, maintenance].

%% The command kinds an actor knows (anything else fails with {unknown_command, Kind}).
-spec command_kinds() -> [command_kind(), ...].
command_kinds() ->
    [set_mode, collect, downlink, reboot, noop, set_tle].

%% The args of each command kind, as shapes (py_nodes/proto_v1.py's COMMAND_ARGS): the table
%% by which the store turns a command read back from the ledger's JSON into the terms the
%% shell gave (a mode is an atom again, not a binary). Keys not listed pass through.
-spec command_args() -> #{command_kind() => #{atom() => shape()}}.
command_args() ->
    #{set_mode => #{mode => <<"enum:mode">>}, collect => #{}, downlink => #{}, reboot => #{},
      noop => #{}, set_tle => #{line1 => <<"binary">>, line2 => <<"binary">>}}.

%% Every message as data, exactly as py_nodes/proto_v1.py's SHAPES (an interop test compares
%% shapes/0, map_shapes/0, enums/0 and unions/0 with SHAPES, MAP_SHAPES, ENUMS and UNIONS).
%% A shape is a kind (a binary) or a tuple of shapes (an Erlang tuple):
%%   <<"atom:NAME">> that atom           <<"atom">> any atom
%%   <<"int:N">> / <<"int">>             that integer / any integer
%%   <<"float">>, <<"binary">>, <<"pid">>, <<"map">> (any map)
%%   <<"map:NAME">>    a map with exactly the keys of map_shapes() NAME
%%   <<"list:KIND">>   a proper list of KIND
%%   <<"enum:NAME">>   one of the atoms enums() NAME
%%   <<"union:NAME">>  one of the shapes unions() NAME
%% conforms/2 checks a term against a shape (structure only; is_sat_state/1 also checks
%% ranges).
-spec shapes() -> #{atom() => shape()}.
shapes() ->
    #{
        %% BEAM -> Python: gen_server calls to {sats, PyNode} and their replies.
        start_actor => {<<"atom:start_actor">>, <<"int:1">>, <<"map:SatState">>, <<"pid">>},
        start_actor_ok => {<<"atom:ok">>, <<"pid">>},
        start_actor_bad_state => {<<"atom:error">>, {<<"atom:bad_state">>, <<"atom">>}},
        start_actor_already_running => {<<"atom:error">>, {<<"atom:already_running">>, <<"pid">>}},
        load => <<"atom:load">>,
        load_ok => {<<"atom:ok">>, <<"map:Load">>},
        %% BEAM -> Python: plain messages to an actor, and the actor's answer.
        command => {<<"atom:command">>, <<"int:1">>, <<"binary">>, <<"atom">>, <<"map">>, <<"pid">>},
        stop => <<"atom:stop">>,
        command_result => {<<"atom:command_result">>, <<"int:1">>, <<"binary">>, <<"binary">>,
                           <<"union:outcome">>, <<"map:SatState">>},
        %% Python -> BEAM: what an actor reports to its shadow.
        sat_tick => {<<"atom:sat_tick">>, <<"int:1">>, <<"binary">>, <<"map:Telemetry">>},
        %% Python -> BEAM: a sats node's ticks for this node's shadows, one message per pass
        %% chunk, to the registered stellar_ticks: the rows packed as telemetry_rows packs
        %% them, and each row's shadow pid (sat_ticks/1).
        sat_ticks => {<<"atom:sat_ticks">>, <<"int:1">>, <<"int">>, <<"binary">>, <<"list:pid">>, <<"binary">>},
        telemetry_rows => {<<"atom:telemetry_rows">>, <<"int:1">>, <<"int">>, <<"binary">>, <<"binary">>},
        sat_event_state => {<<"atom:sat_event">>, <<"int:1">>, <<"binary">>, <<"atom:state">>,
                            <<"map:StateChange">>},
        sat_event_alarm => {<<"atom:sat_event">>, <<"int:1">>, <<"binary">>, <<"atom:alarm">>,
                            <<"map:Alarm">>}
    }.

%% The maps of shapes/0 (MAP_SHAPES): SatState everywhere, what sat_event_state and
%% sat_event_alarm carry, and the reply to load.
-spec map_shapes() -> #{atom() => #{atom() => shape()}}.
map_shapes() ->
    #{
        'SatState' => #{id => <<"binary">>, name => <<"binary">>, mode => <<"enum:mode">>,
                        energy_pct => <<"float">>, memory_used_mb => <<"float">>,
                        memory_capacity_mb => <<"float">>, tle => <<"union:tle">>,
                        applied => <<"list:binary">>, updated_at => <<"int">>},
        %% What changes every tick; the rest of SatState changes only through commands. The
        %% position (WGS84) is undefined without a TLE or when propagation failed.
        'Telemetry' => #{mode => <<"enum:mode">>, energy_pct => <<"float">>,
                         memory_used_mb => <<"float">>, updated_at => <<"int">>,
                         lat_deg => <<"union:opt_float">>, lon_deg => <<"union:opt_float">>,
                         alt_km => <<"union:opt_float">>, in_sunlight => <<"enum:bool">>},
        'StateChange' => #{from => <<"enum:mode">>, to => <<"enum:mode">>, reason => <<"atom">>},
        'Alarm' => #{alarm => <<"enum:alarm">>, severity => <<"enum:severity">>,
                     message => <<"binary">>},
        'Load' => #{actors => <<"int">>}
    }.

%% The atom sets of the kinds <<"enum:NAME">> (ENUMS).
-spec enums() -> #{atom() => tuple()}.
enums() ->
    #{
        mode => list_to_tuple([atom_to_binary(M) || M <- modes()]),
        alarm => {<<"low_energy">>, <<"memory_full">>},
        severity => {<<"warning">>, <<"critical">>},
        bool => {<<"false">>, <<"true">>},
        command_kind => list_to_tuple([atom_to_binary(K) || K <- command_kinds()]),
        command_status => {<<"queued">>, <<"sent">>, <<"done">>, <<"failed">>, <<"expired">>},
        node_role => {<<"echo">>, <<"gateway">>, <<"orbital">>, <<"sats">>, <<"scheduler">>, <<"store">>},
        task_state => {<<"pending">>, <<"scheduled">>, <<"running">>, <<"done">>, <<"failed">>,
                       <<"cancelled">>}
    }.

%% The alternatives of the kinds <<"union:NAME">> (UNIONS).
-spec unions() -> #{atom() => tuple()}.
unions() ->
    #{
        tle => {<<"atom:undefined">>, {<<"binary">>, <<"binary">>}},
        opt_float => {<<"atom:undefined">>, <<"float">>},
        outcome => {<<"atom:done">>, {<<"atom:failed">>, <<"union:reason">>}},
        reason => {
            {<<"atom:invalid_transition">>, <<"enum:mode">>, <<"enum:mode">>},
            {<<"atom:bad_args">>, <<"atom:mode">>},
            {<<"atom:unknown_command">>, <<"atom">>}
        }
    }.

%% Whether Term has Shape (see shapes/0 for the kinds).
-spec conforms(term(), shape()) -> boolean().
conforms(Term, Shape) when is_tuple(Shape) ->
    is_tuple(Term) andalso tuple_size(Term) =:= tuple_size(Shape) andalso
        lists:all(fun({T, S}) -> conforms(T, S) end,
                  lists:zip(tuple_to_list(Term), tuple_to_list(Shape)));
conforms(Term, Kind) when is_binary(Kind) ->
    case binary:split(Kind, <<":">>) of
        [<<"atom">>] -> is_atom(Term);
        [<<"atom">>, Name] -> is_atom(Term) andalso atom_to_binary(Term) =:= Name;
        [<<"int">>] -> is_integer(Term);
        [<<"int">>, N] -> Term =:= binary_to_integer(N);
        [<<"float">>] -> is_float(Term);
        [<<"binary">>] -> is_binary(Term);
        [<<"pid">>] -> is_pid(Term);
        [<<"map">>] -> is_map(Term);
        [<<"map">>, Name] -> conforms_map(Term, maps:get(binary_to_atom(Name), map_shapes()));
        [<<"list">>, Sub] -> is_list(Term) andalso lists:all(fun(T) -> conforms(T, Sub) end, Term);
        [<<"enum">>, Name] ->
            is_atom(Term) andalso
                lists:member(atom_to_binary(Term),
                             tuple_to_list(maps:get(binary_to_atom(Name), enums())));
        [<<"union">>, Name] ->
            lists:any(fun(S) -> conforms(Term, S) end,
                      tuple_to_list(maps:get(binary_to_atom(Name), unions())))
    end.

conforms_map(Term, Fields) when is_map(Term), map_size(Term) =:= map_size(Fields) ->
    lists:all(fun({K, S}) -> is_map_key(K, Term) andalso conforms(maps:get(K, Term), S) end,
              maps:to_list(Fields));
conforms_map(_Term, _Fields) ->
    false.

%% Checks a SatState map as strictly as py_nodes/proto_v1.py's state_from_term: `true', or
%% `{false, Field}' naming the first problem in the same order (missing keys in the
%% contract's order, then an unknown key, then each value). Not a map: `{false, state}'.
-spec is_sat_state(term()) -> true | {false, atom()}.
is_sat_state(S) when is_map(S) ->
    case [K || K <- ?STATE_KEYS, not is_map_key(K, S)] of
        [Missing | _] ->
            {false, Missing};
        [] when map_size(S) =/= length(?STATE_KEYS) ->
            case [K || K <- maps:keys(S), not lists:member(K, ?STATE_KEYS)] of
                [Extra | _] when is_atom(Extra) -> {false, Extra};
                _ -> {false, state}
            end;
        [] ->
            #{id := Id, name := Name, mode := Mode, energy_pct := E, memory_used_mb := U,
              memory_capacity_mb := C, tle := Tle, applied := Applied, updated_at := At} = S,
            Checks = [
                {id, is_id(Id)},
                {name, is_binary(Name)},
                {mode, is_mode(Mode)},
                {energy_pct, is_float(E) andalso E >= 0.0 andalso E =< 100.0},
                {memory_used_mb, is_float(U) andalso U >= 0.0},
                {memory_capacity_mb, is_float(C) andalso C > 0.0},
                {memory_used_mb, U =< C},
                {tle, is_tle(Tle)},
                {applied, is_applied(Applied)},
                {updated_at, is_integer(At) andalso At >= 0}
            ],
            case [Field || {Field, false} <- Checks] of
                [] -> true;
                [Field | _] -> {false, Field}
            end
    end;
is_sat_state(_) ->
    {false, state}.

-spec is_mode(term()) -> boolean().
is_mode(M) ->
    lists:member(M, modes()).

%% A satellite id: 1..64 bytes of [A-Za-z0-9_.-].
-spec is_id(term()) -> boolean().
is_id(Id) when is_binary(Id), byte_size(Id) >= 1, byte_size(Id) =< ?MAX_ID ->
    lists:all(fun is_id_char/1, binary_to_list(Id));
is_id(_) ->
    false.

is_id_char(C) ->
    (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z) orelse (C >= $0 andalso C =< $9)
        orelse C =:= $_ orelse C =:= $. orelse C =:= $-.

is_tle(undefined) -> true;
is_tle({L1, L2}) -> is_binary(L1) andalso is_binary(L2);
is_tle(_) -> false.

is_applied(L) when is_list(L) ->
    length(L) =< ?MAX_APPLIED andalso lists:all(fun is_command_id/1, L);
is_applied(_) ->
    false.

%% A command id: 1..128 bytes (the bound py_nodes/proto_v1.py puts on the contract's binary()).
-spec is_command_id(term()) -> boolean().
is_command_id(Id) ->
    is_binary(Id) andalso byte_size(Id) >= 1 andalso byte_size(Id) =< ?MAX_COMMAND_ID.

-spec is_outcome(term()) -> boolean().
is_outcome(Outcome) ->
    conforms(Outcome, <<"union:outcome">>).

%% Builders (BEAM -> Python).

%% The call to `{sats, PyNode}' that places an actor. A shadow's last known state also
%% carries the last tick's position: only the SatState keys go.
-spec start_actor(map(), pid()) -> {start_actor, 1, sat_state(), pid()}.
start_actor(SatState, ShadowPid) when is_map(SatState), is_pid(ShadowPid) ->
    {start_actor, ?V, maps:with(?STATE_KEYS, SatState), ShadowPid}.

%% The keys of a SatState map, in the contract's order.
-spec state_keys() -> [atom(), ...].
state_keys() ->
    ?STATE_KEYS.

%% The call to `{sats, PyNode}' that asks for its number of actors.
-spec load() -> load.
load() ->
    load.

-spec command(binary(), atom(), map(), pid()) -> {command, 1, binary(), atom(), map(), pid()}.
command(CommandId, Kind, Args, ReplyTo)
        when is_binary(CommandId), is_atom(Kind), is_map(Args), is_pid(ReplyTo) ->
    {command, ?V, CommandId, Kind, Args, ReplyTo}.

%% The message that ends an actor normally.
-spec stop() -> stop.
stop() ->
    stop.

%% Builders (Python -> BEAM), for tests and fakes.

-spec command_result(binary(), binary(), outcome(), sat_state())
    -> {command_result, 1, binary(), binary(), outcome(), sat_state()}.
command_result(SatId, CommandId, Outcome, SatState) ->
    {command_result, ?V, SatId, CommandId, Outcome, SatState}.

%% Only what a tick changes, taken from a full state; position unknown, in sunlight.
-spec sat_tick(binary(), sat_state()) -> {sat_tick, 1, binary(), telemetry()}.
sat_tick(SatId, SatState) ->
    sat_tick(SatId, SatState, #{lat_deg => undefined, lon_deg => undefined, alt_km => undefined,
                                in_sunlight => true}).

-spec sat_tick(binary(), sat_state(), orbit()) -> {sat_tick, 1, binary(), telemetry()}.
sat_tick(SatId, SatState, Orbit) ->
    Telemetry = maps:with([mode, energy_pct, memory_used_mb, updated_at], SatState),
    {sat_tick, ?V, SatId, maps:merge(Telemetry, maps:with([lat_deg, lon_deg, alt_km, in_sunlight], Orbit))}.

%% Many satellites' ticks in one message to stellar_ticks, [{SatId, ShadowPid, Telemetry}]
%% packed: the ids and records of telemetry_rows/1 (so that stellar_ticks hands the store
%% the batch as it came, and neither side makes a term per value), and the shadows' pids.
-spec sat_ticks([{binary(), pid(), telemetry()}]) -> sat_ticks().
sat_ticks(Ticks) ->
    {telemetry_rows, ?V, Count, Ids, Records} = telemetry_rows([{Id, T} || {Id, _, T} <- Ticks]),
    {sat_ticks, ?V, Count, Ids, [Shadow || {_, Shadow, _} <- Ticks], Records}.

%% Telemetry rows for the store node, packed: {telemetry_rows, 1, Count, Ids, Records}. Ids
%% is each satellite id followed by a NUL byte (ids never hold one); Records is Count records of
%% ?ROW_BYTES bytes, little-endian: updated_at (ms, int64), energy_pct and memory_used_mb
%% (float64), the mode's index in modes/0 (uint8), flags (uint8: 1 in sunlight, 2 position
%% known), lat_deg, lon_deg, alt_km (float64, 0.0 when unknown). At 100,000 satellites a tick's
%% rows as maps cost the store node more to decode than everything else it does together.
-spec telemetry_rows([{binary(), telemetry()}]) -> {telemetry_rows, 1, non_neg_integer(), binary(), binary()}.
telemetry_rows(Rows) ->
    Index = maps:from_list(lists:zip(modes(), lists:seq(0, length(modes()) - 1))),
    Ids = << <<Id/binary, 0>> || {Id, _} <- Rows >>,
    Records = << <<(telemetry_record(T, Index))/binary>> || {_, T} <- Rows >>,
    {telemetry_rows, ?V, length(Rows), Ids, Records}.

telemetry_record(#{mode := M, energy_pct := E, memory_used_mb := U, updated_at := T,
                   lat_deg := Lat, lon_deg := Lon, alt_km := Alt, in_sunlight := Sun}, Index) ->
    {Known, LatF, LonF, AltF} = case {Lat, Lon, Alt} of
        {undefined, _, _} -> {0, 0.0, 0.0, 0.0};
        _ -> {2, float(Lat), float(Lon), float(Alt)}
    end,
    Flags = Known bor case Sun of true -> 1; false -> 0 end,
    <<T:64/signed-little, (float(E)):64/float-little, (float(U)):64/float-little,
      (maps:get(M, Index)):8, Flags:8, LatF:64/float-little, LonF:64/float-little, AltF:64/float-little>>.

%% Packed rows joined into one batch, in order: [{Count, Ids, Records}] as telemetry_rows/1
%% made them (the store's buffer keeps them packed).
-spec telemetry_rows_join([{non_neg_integer(), binary(), binary()}]) ->
    {telemetry_rows, 1, non_neg_integer(), binary(), binary()}.
telemetry_rows_join(Parts) ->
    {telemetry_rows, ?V, lists:sum([C || {C, _, _} <- Parts]),
     << <<I/binary>> || {_, I, _} <- Parts >>, << <<R/binary>> || {_, _, R} <- Parts >>}.

%% The first N of Count packed rows (0 < N =< Count), and the rest: {HeadIds, HeadRecords,
%% TailIds, TailRecords}.
-spec telemetry_rows_split(pos_integer(), binary(), binary()) -> {binary(), binary(), binary(), binary()}.
telemetry_rows_split(N, Ids, Records) when N * ?ROW_BYTES =:= byte_size(Records) ->
    {Ids, Records, <<>>, <<>>};
telemetry_rows_split(N, Ids, Records) ->
    {IdsEnd, 1} = lists:nth(N, binary:matches(Ids, <<0>>)),
    <<HeadIds:(IdsEnd + 1)/binary, TailIds/binary>> = Ids,
    <<HeadRecords:(N * ?ROW_BYTES)/binary, TailRecords/binary>> = Records,
    {HeadIds, HeadRecords, TailIds, TailRecords}.

%% telemetry_rows/1 the other way round (for tests and tools: the store node is in Python).
-spec telemetry_rows_list({telemetry_rows, 1, non_neg_integer(), binary(), binary()}) -> [{binary(), telemetry()}].
telemetry_rows_list({telemetry_rows, ?V, Count, Ids, Records}) when byte_size(Records) =:= Count * ?ROW_BYTES ->
    Modes = list_to_tuple(modes()),
    IdList = binary:split(Ids, <<0>>, [global, trim]),
    Count = length(IdList),
    [{Id, #{updated_at => T, energy_pct => E, memory_used_mb => U, mode => element(M + 1, Modes),
            in_sunlight => Flags band 1 =:= 1,
            lat_deg => position(Flags, Lat), lon_deg => position(Flags, Lon), alt_km => position(Flags, Alt)}}
     || {Id, <<T:64/signed-little, E:64/float-little, U:64/float-little, M:8, Flags:8,
               Lat:64/float-little, Lon:64/float-little, Alt:64/float-little>>}
            <- lists:zip(IdList, [R || <<R:?ROW_BYTES/binary>> <= Records])].

position(Flags, X) when Flags band 2 =:= 2 -> X;
position(_, _) -> undefined.

%% The rows of a sat_ticks batch that are on contract, as [{SatId, Shadow, Telemetry}]; a float
%% that is not a number (NaN, infinity) does not match a float segment, so it is a bad row. The
%% match types every value, so only is_telemetry/1's ranges are left to check: on the values,
%% before a map is built (at 100,000 ticks a second, matching each map again cost ~1 % of a core).
tick_rows([Id | Ids], [Shadow | Shadows], <<Row:?ROW_BYTES/binary, Rest/binary>>, Modes, Acc) ->
    Acc1 = case Row of
        <<T:64/signed-little, E:64/float-little, U:64/float-little, M:8, Flags:8,
          Lat:64/float-little, Lon:64/float-little, Alt:64/float-little>>
                when M < tuple_size(Modes), Flags < 4, is_pid(Shadow), Id =/= <<>>,
                     E >= ?ENERGY_MIN, E =< ?ENERGY_MAX, U >= ?MEMORY_MIN ->
            case Flags band 2 =:= 0 orelse
                 (in_range(Lat, ?LAT_MIN, ?LAT_MAX) andalso in_range(Lon, ?LON_MIN, ?LON_MAX) andalso
                  in_range(Alt, ?ALT_MIN, ?ALT_MAX)) of
                true ->
                    Tel = #{updated_at => T, energy_pct => E, memory_used_mb => U, mode => element(M + 1, Modes),
                            in_sunlight => Flags band 1 =:= 1, lat_deg => position(Flags, Lat),
                            lon_deg => position(Flags, Lon), alt_km => position(Flags, Alt)},
                    [{Id, Shadow, Tel} | Acc];
                false ->
                    Acc
            end;
        _ ->
            Acc
    end,
    tick_rows(Ids, Shadows, Rest, Modes, Acc1);
tick_rows(_, [], <<>>, _Modes, Acc) ->
    lists:reverse(Acc).

%% A tick's telemetry map: exactly its keys, each of its kind and range.
-spec is_telemetry(term()) -> boolean().
is_telemetry(#{mode := M, energy_pct := E, memory_used_mb := U, updated_at := T,
               lat_deg := Lat, lon_deg := Lon, alt_km := Alt, in_sunlight := Sun} = Tel)
        when map_size(Tel) =:= 8, is_float(E), is_float(U), is_integer(T), is_boolean(Sun) ->
    is_mode(M) andalso in_range(E, ?ENERGY_MIN, ?ENERGY_MAX) andalso U >= ?MEMORY_MIN andalso
        opt_float(Lat, ?LAT_MIN, ?LAT_MAX) andalso opt_float(Lon, ?LON_MIN, ?LON_MAX) andalso
        opt_float(Alt, ?ALT_MIN, ?ALT_MAX);
is_telemetry(_) ->
    false.

opt_float(undefined, _Min, _Max) -> true;
opt_float(X, Min, Max) when is_float(X) -> in_range(X, Min, Max);
opt_float(_, _, _) -> false.

in_range(X, Min, Max) -> X >= Min andalso X =< Max.

-spec sat_event_state(binary(), mode(), mode(), atom())
    -> {sat_event, 1, binary(), state, #{from := mode(), to := mode(), reason := atom()}}.
sat_event_state(SatId, From, To, Reason) ->
    {sat_event, ?V, SatId, state, #{from => From, to => To, reason => Reason}}.

-spec sat_event_alarm(binary(), low_energy | memory_full, warning | critical, binary())
    -> {sat_event, 1, binary(), alarm, #{alarm := atom(), severity := atom(),
                                          message := binary()}}.
sat_event_alarm(SatId, Alarm, Severity, Message) ->
    {sat_event, ?V, SatId, alarm, #{alarm => Alarm, severity => Severity, message => Message}}.

%% Classifies a message that a shadow received from its actor; anything off-contract is
%% `{bad_message, Why}' (the shadow logs and drops it).
-spec classify(term()) ->
    {sat_tick, binary(), telemetry()}
    | {sat_ticks, [{binary(), pid(), telemetry()}], non_neg_integer()}
    | {sat_event, binary(), state | alarm, map()}
    | {command_result, binary(), binary(), outcome(), sat_state()}
    | {bad_message, term()}.
classify({sat_ticks, ?V, Count, Ids, Shadows, Records})
        when is_integer(Count), is_binary(Ids), is_binary(Records) ->
    %% The sizes must agree, or the rows cannot be told apart: the whole batch is off-contract.
    %% One bad row does not cost the others: the good ones, and how many were dropped.
    IdList = binary:split(Ids, <<0>>, [global]),
    case Count >= 0 andalso byte_size(Records) =:= Count * ?ROW_BYTES andalso
             length(IdList) =:= Count + 1 andalso lists:last(IdList) =:= <<>> andalso
             (catch length(Shadows)) =:= Count of
        true ->
            Good = tick_rows(IdList, Shadows, Records, list_to_tuple(modes()), []),
            {sat_ticks, Good, Count - length(Good)};
        false ->
            {bad_message, bad_ticks}
    end;
classify({sat_tick, ?V, SatId, Telemetry}) when is_binary(SatId) ->
    case is_telemetry(Telemetry) of
        true -> {sat_tick, SatId, Telemetry};
        false -> {bad_message, bad_telemetry}
    end;
classify({sat_event, ?V, SatId, state, Data = #{from := From, to := To}}) when is_binary(SatId) ->
    case is_mode(From) andalso is_mode(To) of
        true -> {sat_event, SatId, state, Data};
        false -> {bad_message, {bad_event, state}}
    end;
classify({sat_event, ?V, SatId, alarm, Data = #{alarm := A, severity := S}})
        when is_binary(SatId), is_atom(A), is_atom(S) ->
    {sat_event, SatId, alarm, Data};
classify({sat_event, ?V, _SatId, Type, _Data}) ->
    {bad_message, {bad_event, Type}};
classify({command_result, ?V, SatId, CommandId, Outcome, SatState})
        when is_binary(SatId), is_binary(CommandId) ->
    case {is_outcome(Outcome), is_sat_state(SatState)} of
        {true, true} -> {command_result, SatId, CommandId, Outcome, SatState};
        {false, _} -> {bad_message, {bad_outcome, Outcome}};
        {true, {false, Field}} -> {bad_message, {bad_state, Field}}
    end;
classify(Other) when is_tuple(Other), tuple_size(Other) > 1 ->
    {bad_message, {unknown, element(1, Other)}};
classify(_Other) ->
    {bad_message, unknown}.
