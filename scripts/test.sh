#!/usr/bin/env bash
# Runs every check (Python lint, types and tests; the dashboard's lint, types and unit tests;
# Erlang eunit, ct, xref and dialyzer), all of
# them even when one fails, then reports and exits non-zero if any failed.
# Extra pytest arguments: PYTEST_ARGS="-k handshake -x" scripts/test.sh
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
stellarops_env
ensure_epmd
prepare_erlang_home

# Plain output in logs (CI): no colour codes.
[[ -t 1 ]] || export REBAR_COLOR=none

passed=()
failed=()
# Each check's output is also kept in test-output/checks/NAME.log: the end of the run repeats the
# failure lines of the checks that failed, so a CI log's tail says what broke, not only that.
CHECK_LOGS="$ROOT/test-output/checks"
mkdir -p "$CHECK_LOGS"

step() {
    local name="$1"
    shift
    echo
    echo "==> $name"
    local start=$SECONDS rc=0
    "$@" 2>&1 | tee "$CHECK_LOGS/$name.log" || rc=$?
    if ((rc == 0)); then
        passed+=("$name")
    else
        failed+=("$name (exit $rc)")
    fi
    echo "<== $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - start)) s"
}

python_paths=()
for dir in py_nodes orbital scheduler web tests bench; do
    [[ -d "$dir" ]] && python_paths+=("$dir")
done

run_pytest() {
    local extra=()
    read -r -a extra <<<"${PYTEST_ARGS:-}"
    local rc=0
    .venv/bin/pytest -q "${extra[@]}" || rc=$?
    ((rc == 5)) && echo "pytest collected no tests: that counts as a failure"
    return "$rc"
}

# Common Test runs in a distributed node (its Python-node cases need one) whose HOME holds the
# project's .erlang.cookie: the cookie is never on a command line.
run_ct() {
    HOME="$STELLAROPS_ERLANG_HOME" \
        REBAR_CACHE_DIR="$ROOT/_build/rebar3-cache" \
        ERL_FLAGS="${ERL_FLAGS:-} -kernel inet_dist_use_interface {127,0,0,1} -kernel prevent_overlapping_partitions false" \
        rebar3 ct --name ct@127.0.0.1
}

# The dashboard's own checks (its browser tests run in pytest, against the real stack).
run_npm() { (cd web/dashboard && npm run --silent "$@"); }

step "ruff" .venv/bin/ruff check "${python_paths[@]}"
step "mypy" .venv/bin/mypy py_nodes orbital scheduler web bench
step "eslint" run_npm lint
step "tsc" run_npm typecheck
step "vitest" run_npm test -- --reporter=dot
step "pytest" run_pytest
step "eunit" rebar3 eunit
step "ct" run_ct
step "xref" rebar3 xref
step "dialyzer" rebar3 dialyzer

# The lines of a failed check's log that say what failed (or its last lines when none match).
failure_excerpt() {
    local log="$CHECK_LOGS/$1.log" lines
    lines="$(grep -n -i -E 'fail|error|assert|timeout|\*\*\*|exception' "$log" | grep -v -E '^[0-9]+:[.]+$' | tail -n 60)"
    [[ -n "$lines" ]] || lines="$(tail -n 40 "$log")"
    echo
    echo "--- $1 failed; from test-output/checks/$1.log:"
    echo "$lines"
}

echo
if ((${#failed[@]})); then
    for entry in "${failed[@]}"; do failure_excerpt "${entry%% (*}"; done
    echo
    echo "test.sh: ${#failed[@]} of $((${#passed[@]} + ${#failed[@]})) checks FAILED: ${failed[*]}"
    exit 1
fi
echo "test.sh: all ${#passed[@]} checks passed (${passed[*]})"
