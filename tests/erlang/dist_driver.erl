%% Test driver for a real Erlang node: evaluates Erlang expressions sent by Python tests.
-module(dist_driver).
-behaviour(gen_server).
-export([start/0, init/1, handle_call/3, handle_cast/2, eval/2]).

-spec start() -> ok.
start() ->
    {ok, _} = gen_server:start({local, driver}, ?MODULE, [], []),
    io:format("driver ready~n"),
    ok.

init([]) -> {ok, #{}}.

%% {eval, Source, Bindings}: evaluated in a fresh process so slow expressions do not block.
handle_call({eval, Src, Bindings}, From, State) ->
    spawn(fun() -> gen_server:reply(From, eval(Src, Bindings)) end),
    {noreply, State};
handle_call(Other, _From, State) ->
    {reply, {unknown, Other}, State}.

handle_cast(_Msg, State) -> {noreply, State}.

-spec eval(binary(), [{atom(), term()}]) -> term().
eval(Src, Bindings) ->
    try
        {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Src)),
        {ok, Exprs} = erl_parse:parse_exprs(Tokens),
        {value, Value, _} = erl_eval:exprs(Exprs, bindings(Bindings)),
        Value
    catch Class:Reason ->
        {driver_error, Class, Reason}
    end.

bindings(Pairs) ->
    lists:foldl(fun({K, V}, B) -> erl_eval:add_binding(K, V, B) end, erl_eval:new_bindings(), Pairs).
