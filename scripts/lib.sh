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
# $STELLAROPS_HOME/cookie. Erlang nodes started with HOME=$STELLAROPS_ERLANG_HOME read it from
# there, so the cookie never appears on a command line (`ps` shows those to every user).
prepare_erlang_home() {
    local cookie file="$STELLAROPS_ERLANG_HOME/.erlang.cookie"
    if [[ -n "${STELLAROPS_COOKIE:-}" ]]; then
        cookie="$STELLAROPS_COOKIE"
    elif [[ -r "$STELLAROPS_HOME/cookie" ]]; then
        read -r cookie <"$STELLAROPS_HOME/cookie" || true
    fi
    [[ -n "${cookie:-}" ]] || die "no cookie: set STELLAROPS_COOKIE or run scripts/setup.sh (it creates $STELLAROPS_HOME/cookie)"
    mkdir -p "$STELLAROPS_ERLANG_HOME"
    chmod 700 "$STELLAROPS_HOME" "$STELLAROPS_ERLANG_HOME"
    if [[ -f "$file" ]]; then
        local current=""
        read -r current <"$file" || true
        [[ "$current" == "$cookie" ]] && return 0
        rm -f "$file"
    fi
    (umask 277 && printf '%s' "$cookie" >"$file")
}
