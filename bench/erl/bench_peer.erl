%% Erlang twin of the Python `echo` role, the baseline of bench/dist_bench.py.
%% Registers `echo` (a gen_server whose handle_call returns the request) and `sink` (counts the
%% messages it receives; `{done, From}` sends `{count, N}` to From and resets the count).
-module(bench_peer).
-behaviour(gen_server).

-export([start/0]).
-export([init/1, handle_call/3, handle_cast/2]).

-spec start() -> ok.
start() ->
    %% `sink` first: the driver takes a working `echo` as the sign that both are there.
    %% Neither is linked to the -eval process, which exits once this returns.
    true = register(sink, spawn(fun() -> sink(0) end)),
    {ok, _} = gen_server:start({local, echo}, ?MODULE, [], []),
    ok.

init([]) -> {ok, nostate}.

handle_call(Request, _From, State) -> {reply, Request, State}.

handle_cast(_Request, State) -> {noreply, State}.

-spec sink(non_neg_integer()) -> no_return().
sink(Count) ->
    receive
        {done, From} when is_pid(From) ->
            From ! {count, Count},
            sink(0);
        _ ->
            sink(Count + 1)
    end.
