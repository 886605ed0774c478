#!/usr/bin/env bash
# Attaches an Erlang remote shell to the running BEAM node (started by `make run`). The cookie
# comes from $HOME/.erlang.cookie in the project's Erlang home: it is never on a command line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
stellarops_env

NODE="${STELLAROPS_NODE_NAME:-${STELLAR_NODE_NAME:-stellar@127.0.0.1}}"
# Without a terminal, erl does not attach: it starts a plain local shell that reads stdin and ends.
[[ -t 0 ]] || die "make shell needs a terminal (stdin is not a tty), else erl starts a local shell instead of attaching to $NODE. Run it in an interactive terminal; from a script use .venv/bin/stellarops status or the HTTP API"
prepare_erlang_home
grep -q "^name ${NODE%@*} at" <<<"$(epmd -names 2>/dev/null || true)" \
    || die "$NODE is not running: start it with make run"

echo "remote shell on $NODE: try stellar:nodes(). Leave with Ctrl-G then q (the node keeps running)."
# With TLS distribution (STELLAROPS_DIST_TLS_DIR) the shell needs the options `stellarops up` wrote.
TLS=()
[[ -z "${STELLAROPS_DIST_TLS_DIR:-}" ]] || TLS=(-proto_dist inet_tls -ssl_dist_optfile "$STELLAROPS_HOME/ssl_dist.conf")
HOME="$STELLAROPS_ERLANG_HOME" exec erl -name "shell-$$@127.0.0.1" -hidden -remsh "$NODE" "${TLS[@]}" \
    -kernel inet_dist_use_interface '{127,0,0,1}'
