%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
-module(stellar_log_tests).
-include_lib("eunit/include/eunit.hrl").

-define(JSON, #{format => "json"}).

event(Level, Msg, Meta) ->
    #{level => Level, msg => Msg, meta => maps:merge(#{time => 1764766800123456}, Meta)}.

line(Event, Config) ->
    unicode:characters_to_binary(stellar_log:format(Event, Config)).

%% The keys in order, one line; ts in UTC with ms.
json_keys_test() ->
    Line = line(event(warning, {"satellite ~s: ~p", ["sat-1", {a, "b"}]}, #{sat_id => <<"sat-1">>}), ?JSON),
    Node = atom_to_binary(node()),
    ?assertEqual(<<"{\"ts\":\"2025-12-03T13:00:00.123Z\",\"level\":\"warning\",\"node\":\"", Node/binary,
                   "\",\"msg\":\"satellite sat-1: {a,\\\"b\\\"}\",\"sat_id\":\"sat-1\"}\n">>, Line).

%% Quotes, backslashes and control characters are escaped, newlines made ", " (single_line): the
%% object stays on one line.
json_escapes_test() ->
    Line = line(event(error, {string, <<"a\"b\\c\td\n", 1, "é"/utf8>>}, #{}), ?JSON),
    ?assertEqual(1, length(binary:split(Line, <<"\n">>, [global])) - 1),
    ?assertNotEqual(nomatch, binary:match(Line, <<"\"msg\":\"a\\\"b\\\\c\\td, \\u0001", "é"/utf8, "\"">>)).

%% Bytes that are not UTF-8 still make valid text (as Latin-1).
json_latin1_test() ->
    Line = line(event(info, {string, <<"x", 255>>}, #{}), ?JSON),
    ?assertNotEqual(nomatch, binary:match(Line, <<"\"msg\":\"xÿ"/utf8>>)).

%% Reports are rendered as logger_formatter renders them.
json_report_test() ->
    Line = line(event(info, {report, #{what => started}}, #{}), ?JSON),
    ?assertNotEqual(nomatch, binary:match(Line, <<"started">>)).

%% A Python node's own JSON line passes through unchanged; another line of it is wrapped with
%% its node name.
json_python_lines_test() ->
    Py = <<"{\"ts\":\"2025-12-03T13:00:00.000Z\",\"level\":\"info\",\"node\":\"sats1@h\",\"msg\":\"hi\"}">>,
    ?assertEqual(<<Py/binary, "\n">>,
                 line(event(info, {"[~s] ~ts", ['sats1@h', Py]}, #{py_node => 'sats1@h', py_line => Py}), ?JSON)),
    Raw = <<"Traceback (most recent call last):">>,
    Wrapped = line(event(info, {"[~s] ~ts", ['sats1@h', Raw]}, #{py_node => 'sats1@h', py_line => Raw}), ?JSON),
    ?assertNotEqual(nomatch, binary:match(Wrapped, <<"\"node\":\"sats1@h\",\"msg\":\"Traceback (most recent call last):\"}">>)).

%% Text mode (and anything but json) is logger_formatter with the template.
text_test() ->
    Config = #{format => "", single_line => true, template => [level, ": ", msg, "\n"]},
    ?assertEqual(<<"info: hello\n">>, line(event(info, {string, "hello"}, #{}), Config)),
    ?assertEqual(ok, stellar_log:check_config(Config#{format => "json"})),
    ?assertMatch({error, _}, stellar_log:check_config(Config#{bogus => 1})).
