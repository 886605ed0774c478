%% Copyright StellarOps contributors. Licensed under the Apache License, Version 2.0.
%% Metrics of the BEAM node, read by the gateway at scrape time (stellar:metrics/0) and exported
%% in its /metrics. Counters live in one public ETS table owned by stellar_sup (as the other
%% tables), so that they survive the restart of any child; they are cumulative (Prometheus
%% counters) and reset only when the node restarts.
%%
%% - commands by kind and outcome (done | failed), counted by the shadow that received the
%%   outcome, and their latency: from the shadow accepting the command (it is already in the
%%   ledger then) to the outcome from the actor, as a histogram per kind. A command whose start
%%   this node did not see (the node restarted meanwhile) is counted, not timed.
%% - orbital calls (propagate, passes, visible) by result (ok | error), with a latency histogram.
%% - at collect time: the VM (processes, ports, run queue, memory by kind, the message queues
%%   of the busiest processes), the Python nodes (status, restarts) and the distribution
%%   connections. Kinds and operations come from fixed sets: the labels are bounded.
-module(stellar_metrics).

-export([new_table/0]).
-export([command_accepted/2]).
-export([command_outcome/2]).
-export([orbital_call/3]).
-export([collect/0]).
-export([buckets_s/0]).

-define(TAB, stellar_metrics).
%% Commands timed at once, at most: a shadow that never gets an outcome must not grow the table.
-define(MAX_TIMED, 100000).
-define(TOP_QUEUES, 5).
%% Seconds; a command takes one or a few ticks (1 s each by default), orbital work up to minutes.
-define(BUCKETS_S, [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]).

-type histogram() :: #{buckets := [{float(), non_neg_integer()}], sum_s := float(),
                       count := non_neg_integer()}.
-type metrics() :: #{
    vm := #{processes := non_neg_integer(), ports := non_neg_integer(),
            run_queue := non_neg_integer(), memory_bytes := #{atom() => non_neg_integer()}},
    top_queues := [#{rank := pos_integer(), process := binary(), messages := non_neg_integer()}],
    commands := [#{kind := atom(), outcome := atom(), count := non_neg_integer()}],
    command_latency := [#{kind := atom(), histogram := histogram()}],
    orbital_calls := [#{op := atom(), result := atom(), count := non_neg_integer()}],
    orbital_latency := [#{op := atom(), histogram := histogram()}],
    py_nodes := [#{name := node(), role := atom(), up := boolean(), restarts := non_neg_integer()}],
    dist := #{visible := non_neg_integer(), hidden := non_neg_integer(),
              joins := non_neg_integer(), leaves := non_neg_integer(), discovered := non_neg_integer(),
              quorum := 0 | 1, quorum_losses := non_neg_integer(), peer_failures := non_neg_integer(),
              moves := non_neg_integer()}
}.
-export_type([metrics/0, histogram/0]).

-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [set, public, named_table, {write_concurrency, true}]),
    ok.

%% The histogram bounds, seconds (ascending; +Inf is implied).
-spec buckets_s() -> [float()].
buckets_s() ->
    ?BUCKETS_S.

%% A shadow took command CmdId of Kind (the first time it sees that id).
-spec command_accepted(binary(), atom()) -> ok.
command_accepted(CmdId, Kind) ->
    _ = safe(fun() ->
        ets:info(?TAB, size) < ?MAX_TIMED andalso
            ets:insert_new(?TAB, {{started, CmdId}, Kind, erlang:monotonic_time()})
    end),
    ok.

%% Command CmdId got its outcome from the actor.
-spec command_outcome(binary(), done | {failed, term()}) -> ok.
command_outcome(CmdId, Outcome) ->
    Result = case Outcome of done -> done; _ -> failed end,
    _ = safe(fun() ->
        case ets:take(?TAB, {started, CmdId}) of
            [{_, Kind, T0}] ->
                bump({commands, Kind, Result}, 1),
                observe({command_latency, Kind}, erlang:monotonic_time() - T0);
            [] ->
                bump({commands, unknown, Result}, 1)
        end
    end),
    ok.

%% An orbital call of Op took Native time units (erlang:monotonic_time/0) and answered Result.
-spec orbital_call(atom(), integer(), term()) -> ok.
orbital_call(Op, Native, Result) ->
    Outcome = case Result of {ok, _} -> ok; _ -> error end,
    _ = safe(fun() ->
        bump({orbital_calls, Op, Outcome}, 1),
        observe({orbital_latency, Op}, Native)
    end),
    ok.

%% Everything, as plain terms (the gateway turns them into Prometheus text).
-spec collect() -> metrics().
collect() ->
    Rows = case ets:whereis(?TAB) of undefined -> []; _ -> ets:tab2list(?TAB) end,
    Memory = maps:with([total, processes, system, atom, binary, code, ets],
                       maps:from_list(erlang:memory())),
    #{
        vm => #{processes => erlang:system_info(process_count),
                ports => erlang:system_info(port_count),
                run_queue => erlang:statistics(total_run_queue_lengths_all),
                memory_bytes => Memory},
        top_queues => top_queues(?TOP_QUEUES),
        commands => [#{kind => K, outcome => O, count => N} || {{commands, K, O}, N} <- lists:sort(Rows)],
        command_latency => histograms(command_latency, Rows, kind),
        orbital_calls => [#{op => Op, result => R, count => N}
                          || {{orbital_calls, Op, R}, N} <- lists:sort(Rows)],
        orbital_latency => histograms(orbital_latency, Rows, op),
        py_nodes => [#{name => N, role => R, up => S =:= up, restarts => C}
                     || #{name := N, role := R, status := S, restarts := C} <- stellar_py_node:info()],
        dist => maps:merge(#{visible => length(erlang:nodes(visible)), hidden => length(erlang:nodes(hidden))},
                           cluster_counts())
    }.

%% Joins and leaves of peers (stellar_cluster) and how many peers discovery names; the quorum
%% (1/0), how often it was lost, peers cut for silence, satellites moved by rebalancing.
cluster_counts() ->
    Moves = #{moves => maps:get(moved, stellar_catalog:rebalance_info())},
    try stellar_cluster:info() of
        #{joins := J, leaves := L, discovered := D, quorum := #{has_quorum := Q, losses := QL, failures := F}} ->
            Moves#{joins => J, leaves => L, discovered => length(D), quorum => case Q of true -> 1; false -> 0 end,
                   quorum_losses => QL, peer_failures => F}
    catch
        exit:_ -> Moves#{joins => 0, leaves => 0, discovered => 0, quorum => 1, quorum_losses => 0, peer_failures => 0}
    end.

%% Internal.

%% Metrics never take a caller down (e.g. the table is gone while the supervisor restarts).
safe(Fun) ->
    try Fun() catch error:badarg -> false end.

bump(Key, N) ->
    ets:update_counter(?TAB, Key, N, {Key, 0}).

%% One observation: the first bucket whose bound holds it (cumulated at collect), the sum in
%% microseconds (ETS counters are integers) and the count.
observe(Name, Native) ->
    Us = erlang:convert_time_unit(max(Native, 0), native, microsecond),
    Index = bucket_index(Us / 1.0e6, ?BUCKETS_S, 1),
    bump({hist, Name, Index}, 1),
    bump({hist_sum_us, Name}, Us),
    bump({hist_count, Name}, 1).

bucket_index(_S, [], I) -> I;  % +Inf
bucket_index(S, [Le | _], I) when S =< Le -> I;
bucket_index(S, [_ | Rest], I) -> bucket_index(S, Rest, I + 1).

histograms(Metric, Rows, Label) ->
    Names = lists:usort([Key || {{hist_count, {M, Key}}, _} <- Rows, M =:= Metric]),
    [#{Label => Key, histogram => histogram({Metric, Key}, Rows)} || Key <- Names].

histogram(Name, Rows) ->
    Counts = maps:from_list([{I, N} || {{hist, N0, I}, N} <- Rows, N0 =:= Name]),
    {Cumulative, _} = lists:mapfoldl(
        fun({Le, I}, Acc) -> Total = Acc + maps:get(I, Counts, 0), {{Le, Total}, Total} end,
        0, lists:zip(?BUCKETS_S, lists:seq(1, length(?BUCKETS_S)))),
    SumUs = proplists:get_value({hist_sum_us, Name}, Rows, 0),
    #{buckets => Cumulative, sum_s => SumUs / 1.0e6,
      count => proplists:get_value({hist_count, Name}, Rows, 0)}.

%% The N longest message queues; a process is named by its registered name, else by the
%% module of its initial call (bounded: code, not pids).
top_queues(N) ->
    Lens = [{Len, P} || P <- erlang:processes(),
                        {message_queue_len, Len} <- [erlang:process_info(P, message_queue_len)]],
    Top = lists:sublist(lists:reverse(lists:sort(Lens)), N),
    lists:zipwith(fun(Rank, {Len, P}) -> #{rank => Rank, process => process_name(P), messages => Len} end,
                  lists:seq(1, length(Top)), Top).

process_name(P) ->
    case erlang:process_info(P, [registered_name, dictionary, initial_call]) of
        undefined ->
            <<"exited">>;
        [{registered_name, Name}, _, _] when is_atom(Name), Name =/= [] ->
            atom_to_binary(Name);
        [_, {dictionary, Dict}, {initial_call, Initial}] ->
            {M, _, _} = proplists:get_value('$initial_call', Dict, Initial),
            atom_to_binary(M)
    end.
