# shellcheck shell=bash
# Shared by the scripts in this folder: source it after `cd "$ROOT"`.
# Nothing here prints the cookie or puts it on a command line (printf and read are builtins).

die() {
    echo "error: $*" >&2
    exit 1
}

# STELLAROPS_HOME: the state folder (cookie, Erlang home, later the embedded database).
stellarops_env() {
    export STELLAROPS_HOME="${STELLAROPS_HOME:-$PWD/.stellarops}"
    export STELLAROPS_ERLANG_HOME="$STELLAROPS_HOME/erlang-home"
    export ERL_EPMD_ADDRESS="${ERL_EPMD_ADDRESS:-127.0.0.1}"
    export STELLAROPS_PY="${STELLAROPS_PY:-$PWD/.venv/bin/stellarops}"
}

# Starts epmd (on ERL_EPMD_ADDRESS) unless one answers already.
ensure_epmd() {
    epmd -names >/dev/null 2>&1 && return 0
    epmd -daemon
    local _
    for _ in $(seq 50); do
        epmd -names >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "epmd did not start (tried: ERL_EPMD_ADDRESS=$ERL_EPMD_ADDRESS epmd -daemon)"
}

# Writes $STELLAROPS_ERLANG_HOME/.erlang.cookie (0400) from $STELLAROPS_COOKIE, else from
# $STELLAROPS_HOME/cookie (made on first use). Erlang nodes started with HOME=$STELLAROPS_ERLANG_HOME
# read it from there, so the cookie never appears on a command line (`ps` shows those to every
# user). The state folder's permissions are decided in one place, py_nodes/state_dir.py: never
# chmod it here (taking its o+x away under a running embedded PostgreSQL kills the database).
prepare_erlang_home() {
    [[ -x .venv/bin/python ]] || die "no .venv in $PWD: run make setup"
    .venv/bin/python -m py_nodes.state_dir prepare || die "could not prepare the state folder $STELLAROPS_HOME"
}
