#!/usr/bin/env bash
# The main job: starts the BEAM node stellar@127.0.0.1, whose `stellar' app starts and
# supervises the Python nodes; waits until they are up, tells how to attach a remote shell,
# and runs until Ctrl-C or SIGTERM, which stop the BEAM node and with it every Python node.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
stellarops_env
ensure_epmd
prepare_erlang_home

NODE="${STELLAR_NODE_NAME:-stellar@127.0.0.1}"
START_TIMEOUT="${STELLAROPS_START_TIMEOUT:-60}"

[[ -f _build/default/lib/stellar/ebin/stellar.app ]] || die "the BEAM app is not built: run make setup"
[[ -x "$STELLAROPS_PY" ]] || die "$STELLAROPS_PY is missing: run make setup"
if grep -q "^name ${NODE%@*} at" <<<"$(epmd -names 2>/dev/null || true)"; then
    die "a node named ${NODE%@*} is already running here (attach to it with: make shell)"
fi

erl_common=(-kernel inet_dist_use_interface '{127,0,0,1}')
# One line per event; no supervisor progress reports.
LOGGER='[{filters, log, [{no_progress, {fun logger_filters:progress/2, stop}}]},
         {handler, default, logger_std_h,
          #{formatter => {logger_formatter, #{single_line => true,
                                              template => [time, " ", level, ": ", msg, "\n"]}}}}]'

# setsid: Ctrl-C reaches this script only, which then stops the node gracefully (SIGTERM ->
# init:stop/0 -> the supervisors stop the Python nodes). `permanent': if the app gives up
# (restart intensity exceeded), the node stops and so does this script.
HOME="$STELLAROPS_ERLANG_HOME" setsid erl -name "$NODE" -noshell "${erl_common[@]}" \
    -kernel logger_level info -kernel logger "$LOGGER" \
    -pa "$ROOT"/_build/default/lib/*/ebin \
    -eval 'case application:ensure_all_started(stellar, permanent) of
               {ok, _} -> ok;
               Error -> io:format(standard_error, "stellar did not start: ~p~n", [Error]),
                        erlang:halt(1)
           end' &
ERL_PID=$!

stop_node() {
    trap - INT TERM EXIT
    if kill -0 "$ERL_PID" 2>/dev/null; then
        echo "run.sh: stopping $NODE"
        kill -TERM "$ERL_PID" 2>/dev/null || true
        (sleep 20 && kill -KILL "$ERL_PID" 2>/dev/null) &
        local watchdog=$!
        wait "$ERL_PID" 2>/dev/null || true
        kill "$watchdog" 2>/dev/null || true
    fi
}
# A requested stop (Ctrl-C, SIGTERM) that went cleanly is a success.
trap 'stop_node; exit 0' INT TERM
trap 'stop_node' EXIT

# Wait until every Python node is up, from a short-lived hidden node with the same cookie.
probe='Node = list_to_atom(os:getenv("STELLAR_NODE")),
Deadline = erlang:monotonic_time(second) + list_to_integer(os:getenv("START_TIMEOUT")),
Loop = fun Loop(Last) ->
    Started = case rpc:call(Node, application, which_applications, [], 2000) of
                  Apps when is_list(Apps) -> lists:keymember(stellar, 1, Apps);
                  _ -> false
              end,
    Py = case Started andalso rpc:call(Node, stellar, nodes, [], 2000) of
             L when is_list(L) -> [I || I = #{role := R} <- L, R =/= beam];
             _ -> undefined
         end,
    Ready = is_list(Py) andalso lists:all(fun(#{status := S}) -> S =:= up end, Py),
    case {Ready, erlang:monotonic_time(second) > Deadline} of
        {true, _} ->
            [io:format("  ~-28s ~-8s os pid ~p~n", [N, R, P])
             || #{name := N, role := R, os_pid := P} <- rpc:call(Node, stellar, nodes, [])],
            halt(0);
        {false, true} ->
            io:format(standard_error, "not all Python nodes came up: ~p~n", [Last]),
            halt(1);
        {false, false} ->
            timer:sleep(250),
            Loop(Py)
    end
end,
Loop(undefined).'
if ! STELLAR_NODE="$NODE" START_TIMEOUT="$START_TIMEOUT" HOME="$STELLAROPS_ERLANG_HOME" \
    erl -name "probe-$$@127.0.0.1" -hidden -noshell +Bd "${erl_common[@]}" -eval "$probe"; then
    kill -0 "$ERL_PID" 2>/dev/null || die "$NODE stopped during start-up (see its output above)"
    die "the Python nodes did not come up within ${START_TIMEOUT} s (see the output above)"
fi

cat <<MSG

StellarOps is running: $NODE supervises the Python nodes listed above.
Attach a remote shell from another terminal:
    make shell
  or explicitly:
    HOME=$STELLAROPS_ERLANG_HOME erl -name shell-\$\$@127.0.0.1 -hidden -remsh $NODE
  then try:  stellar:nodes().   stellar:ping('py_echo@127.0.0.1').
Stop with Ctrl-C.

MSG

rc=0
wait "$ERL_PID" || rc=$?
trap - INT TERM EXIT
echo "run.sh: $NODE exited with status $rc"
exit "$rc"
