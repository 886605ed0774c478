%% Test peer for tests/test_etf_erlang.py: reads {packet,4} frames on stdin, answers on stdout.
%%   <<0, Ext/binary>>          -> <<0, term_to_binary(binary_to_term(Ext), [{minor_version,2}])>>
%%                                 or <<1, Reason/utf8>> when binary_to_term fails
%%   <<1, Seed:64, Depth:8>>    -> <<0, Len:32, Plain:Len/binary, Compressed/binary>>: a random
%%                                 term (pids, refs, ports, funs included) as plain and compressed
%% Nothing else may be written to stdout: it carries the frames.
-module(etf_peer).
-export([main/0]).

-define(OPTS, [{minor_version, 2}]).

%% Started by `erl -noinput -run etf_peer main`; the VM halts when stdin closes.
-spec main() -> pid().
main() ->
    spawn(fun() ->
        process_flag(trap_exit, true),
        loop(open_port({fd, 0, 1}, [{packet, 4}, binary, eof]))
    end).

loop(Port) ->
    receive
        {Port, {data, Frame}} ->
            Port ! {self(), {command, handle(Frame)}},
            loop(Port);
        {Port, eof} ->
            halt(0);
        {'EXIT', Port, _} ->
            halt(0)
    end.

handle(<<0, Ext/binary>>) ->
    try binary_to_term(Ext) of
        Term -> <<0, (term_to_binary(Term, ?OPTS))/binary>>
    catch
        Class:Reason -> <<1, (iolist_to_binary(io_lib:format("~p:~p", [Class, Reason])))/binary>>
    end;
handle(<<1, Seed:64, Depth:8>>) ->
    rand:seed(exsss, Seed),
    Term = term(Depth),
    Plain = term_to_binary(Term, ?OPTS),
    <<0, (byte_size(Plain)):32, Plain/binary,
      (term_to_binary(Term, [compressed | ?OPTS]))/binary>>;
handle(_) ->
    <<1, "bad request">>.

%% Random terms. Map keys avoid floats, true/false and lists so Python can hold them (1 == 1.0
%% == true in Python; lists are unhashable).
term(0) -> leaf();
term(D) ->
    case rand:uniform(10) of
        1 -> list_to_tuple(terms(D - 1));
        2 -> terms(D - 1);
        3 -> [term(D - 1) | terms(D - 1)] ++ leaf_tail();
        4 -> maps:from_list([{key(D - 1), term(D - 1)} || _ <- lists:seq(1, rand:uniform(6) - 1)]);
        5 -> maps:from_list([{key(1), leaf()} || _ <- lists:seq(1, 33 + rand:uniform(10))]);
        6 -> Y = term(D - 1), fun() -> Y end;
        _ -> leaf()
    end.

terms(D) -> [term(D) || _ <- lists:seq(1, rand:uniform(5) - 1)].

leaf_tail() -> leaf_nonlist().

leaf_nonlist() ->
    case leaf() of
        L when is_list(L) -> {L};
        T -> T
    end.

key(0) -> key_leaf();
key(D) ->
    case rand:uniform(4) of
        1 -> list_to_tuple([key(D - 1) || _ <- lists:seq(1, rand:uniform(3) - 1)]);
        _ -> key_leaf()
    end.

key_leaf() ->
    case rand:uniform(7) of
        1 -> rand:uniform(1000) - 500;
        2 -> big();
        3 -> rand:bytes(rand:uniform(8) - 1);
        4 -> atom();
        5 -> make_ref();
        6 -> self();
        7 -> undefined
    end.

leaf() ->
    case rand:uniform(22) of
        1 -> rand:uniform(256) - 1;
        2 -> rand:uniform(1 bsl 32) - (1 bsl 31) - 1;
        3 -> big();
        4 -> float();
        5 -> atom();
        6 -> rand:bytes(rand:uniform(70) - 1);
        7 -> bits();
        8 -> [rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(20))];
        9 -> make_ref();
        10 -> self();
        11 -> hd(erlang:ports());
        12 -> fun(X) -> X end;
        13 -> fun lists:map/2;
        14 -> lists:nth(rand:uniform(3), [true, false, undefined]);
        15 -> lists:nth(rand:uniform(3), [[], {}, #{}]);
        16 -> -rand:uniform(1 bsl 31);
        17 -> rand:uniform(1 bsl 63) * lists:nth(rand:uniform(2), [1, -1]);
        18 -> lists:duplicate(rand:uniform(300), rand:uniform(256) - 1);
        19 -> list_to_tuple([rand:uniform(256) || _ <- lists:seq(1, 256 + rand:uniform(10))]);
        20 -> binary_to_term(<<131, 88, 119, 11, "x@127.0.0.1", (rand:bytes(12))/binary>>);
        21 -> binary_to_term(<<131, 120, 119, 11, "y@127.0.0.1", (rand:bytes(12))/binary>>);
        22 -> binary_to_term(<<131, 90, 0, 3, 119, 11, "z@127.0.0.1", (rand:bytes(16))/binary>>)
    end.

big() ->
    N = binary:decode_unsigned(rand:bytes(rand:uniform(300))) + (1 bsl 31),
    lists:nth(rand:uniform(2), [N, -N - 1]).

float() ->
    <<Bits:64>> = rand:bytes(8),
    case <<Bits:64>> of
        <<F:64/float>> -> F;
        _ -> rand:normal() * 1.0e10  % NaN or infinity bits
    end.

atom() ->
    Chars = [char() || _ <- lists:seq(1, rand:uniform(12) - 1)],
    case list_to_atom(Chars) of
        A when A =:= true; A =:= false; A =:= undefined -> x;
        A -> A
    end.

char() ->
    case rand:uniform(4) of
        1 -> rand:uniform(16#D7FF);
        2 -> 16#E000 + rand:uniform(16#10FFFF - 16#E000);
        _ -> $a + rand:uniform(25)
    end.

bits() ->
    Size = rand:uniform(7),
    <<(rand:bytes(rand:uniform(5) - 1))/binary, (rand:uniform(1 bsl Size) - 1):Size>>.
