%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% The BEAM node's log formatter (a logger formatter, set in rel/sys.config.src): text lines for a
%% terminal, or JSON lines, one object per event, with the keys every StellarOps node writes:
%% `ts' (UTC, ms), `level', `node', `msg', and `sat_id' when the event concerns a satellite.
%%
%% Config: #{format => "json" | "text" (else text), template => ...}: in text mode the rest of
%% the config goes to logger_formatter unchanged. Lines a Python node printed (stellar_py_node
%% logs them with metadata py_node and py_line) are that node's: in JSON mode a line that is
%% already one of its JSON objects (it starts with {"ts":) is written as it is, any other line
%% (a traceback, a print) becomes an object whose `node' is the Python node.
-module(stellar_log).

-export([format/2]).
-export([check_config/1]).

-define(PY_JSON_PREFIX, <<"{\"ts\":">>).

-spec format(logger:log_event(), logger:formatter_config()) -> unicode:chardata().
format(Event, Config) ->
    case maps:get(format, Config, "text") of
        Json when Json =:= "json"; Json =:= json; Json =:= <<"json">> -> json_line(Event);
        _ -> logger_formatter:format(Event, text_config(Config))
    end.

-spec check_config(logger:formatter_config()) -> ok | {error, term()}.
check_config(Config) when is_map(Config) ->
    logger_formatter:check_config(text_config(Config));
check_config(Config) ->
    {error, {invalid_formatter_config, ?MODULE, Config}}.

%% Internal.

text_config(Config) ->
    maps:without([format], Config).

json_line(Event = #{level := Level, meta := Meta}) ->
    case Meta of
        #{py_line := Line} when is_binary(Line) ->
            case binary:longest_common_prefix([Line, ?PY_JSON_PREFIX]) =:= byte_size(?PY_JSON_PREFIX) of
                true -> [Line, $\n];
                false -> [ordered(ts(Meta), Level, maps:get(py_node, Meta, node()), Line, #{}), $\n]
            end;
        _ ->
            Extra = maps:with([sat_id, request_id], Meta),
            [ordered(ts(Meta), Level, node(), msg(Event), Extra), $\n]
    end.

%% ts, level, node, msg first (as the Python nodes write them), then the ids.
ordered(Ts, Level, Node, Msg, Extra) ->
    Head = [[string(<<"ts">>), $:, string(Ts)], [string(<<"level">>), $:, value(Level)],
            [string(<<"node">>), $:, value(Node)], [string(<<"msg">>), $:, value(Msg)]],
    Tail = [[string(key_text(K)), $:, value(V)] || {K, V} <- lists:sort(maps:to_list(Extra))],
    iolist_to_binary([${, lists:join($,, Head ++ Tail), $}]).

ts(#{time := Us}) ->
    list_to_binary(calendar:system_time_to_rfc3339(Us div 1000, [{unit, millisecond}, {offset, "Z"}]));
ts(_) ->
    ts(#{time => logger:timestamp()}).

%% The message as logger_formatter renders it (format strings, reports, report_cb), on one line.
msg(Event) ->
    Text = logger_formatter:format(Event, #{template => [msg], single_line => true, legacy_header => false}),
    to_binary(Text).

to_binary(Chardata) ->
    case unicode:characters_to_binary(Chardata) of
        B when is_binary(B) -> B;
        _ -> iolist_to_binary(io_lib:format("~0tp", [Chardata]))
    end.

key_text(K) when is_atom(K) -> atom_to_binary(K);
key_text(K) when is_binary(K) -> K.

value(V) when is_integer(V) -> integer_to_binary(V);
value(V) when is_float(V) -> float_to_binary(V, [short]);
value(V) when is_atom(V) -> string(atom_to_binary(V));
value(V) when is_binary(V) -> string(V);
value(V) when is_list(V) -> string(to_binary(V));
value(V) -> string(iolist_to_binary(io_lib:format("~0tp", [V]))).

%% A JSON string: quotes, backslashes and control characters escaped; other UTF-8 kept as it
%% is (bytes that are not UTF-8 are taken as Latin-1, so the line stays valid JSON).
string(B) ->
    [$", escape(utf8(B)), $"].

utf8(B) ->
    case unicode:characters_to_binary(B) of
        U when is_binary(U) -> U;
        _ when is_binary(B) -> unicode:characters_to_binary(B, latin1);
        _ -> unicode:characters_to_binary(io_lib:format("~0tp", [B]))
    end.

escape(B) ->
    [esc(C) || <<C/utf8>> <= B].

esc($") -> <<"\\\"">>;
esc($\\) -> <<"\\\\">>;
esc($\n) -> <<"\\n">>;
esc($\r) -> <<"\\r">>;
esc($\t) -> <<"\\t">>;
esc(C) when C < 16#20; C =:= 16#7F -> io_lib:format("\\u~4.16.0b", [C]);
esc(C) -> <<C/utf8>>.
