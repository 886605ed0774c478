%% A plain Erlang gen_server that Python tests call.
-module(dist_test_server).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2]).

init([]) -> {ok, undefined}.

handle_call({echo, X}, _From, S) -> {reply, {ok, X}, S};
handle_call(stored, _From, S) -> {reply, S, S};
handle_call({sleep, Ms}, _From, S) -> timer:sleep(Ms), {reply, slept, S};
handle_call({crash, Reason}, _From, S) -> {stop, Reason, S}.

handle_cast({store, X}, _S) -> {noreply, X}.
