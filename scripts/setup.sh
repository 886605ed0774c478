#!/usr/bin/env bash
# Sets up everything that `make run` and `make test` need, on a fresh Debian/Ubuntu machine:
#   Erlang/OTP and rebar3 (apt), .venv with the project installed editable with dev extras,
#   the compiled BEAM app, the dashboard build, and the state folder with the secret cookie.
#   With --tests also Chromium (apt), for the dashboard's browser tests, and Prometheus (apt:
#   promtool checks the alert rules and dashboards' queries; a real Prometheus scrapes a stack).
# Idempotent; with nothing changed it takes a few seconds (each step keeps a hash stamp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
stellarops_env

PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(erlang-nox erlang-dev rebar3 erlang-common-test erlang-dialyzer)
# --tests: also what only the tests need (Chromium for the dashboard's end-to-end tests,
# prometheus for promtool and the observability tests).
FOR_TESTS=0
[[ "${1:-}" == "--tests" ]] && FOR_TESTS=1
((FOR_TESTS)) && APT_PACKAGES+=(chromium prometheus)
# kubectl (kustomize built in) renders k8s/ for tests/test_k8s.py; a kubectl already on PATH
# (CI runners ship one outside apt) is used as it is. Debian 12 has no kubectl package (the
# Kubernetes or Google Cloud apt repositories do): without one, test_k8s.py reports itself skipped,
# except under CI=true, where its tests fail (a CI set-up must provide kubectl).
if ((FOR_TESTS)) && ! command -v kubectl >/dev/null 2>&1; then
    if apt-cache show kubectl >/dev/null 2>&1; then
        APT_PACKAGES+=(kubectl)
    else
        echo "setup: no kubectl on PATH or in apt: tests/test_k8s.py will be skipped (and fail under CI=true)" >&2
    fi
fi

log() { echo "setup: $*"; }

# ---- (a) system packages -------------------------------------------------------------------
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${APT_PACKAGES[@]}"; do
        [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] \
            || missing+=("$pkg")
    done
    # Debian's python3 has no venv/ensurepip without python3-venv.
    if command -v "$PYTHON" >/dev/null 2>&1 \
        && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
else
    for cmd in erl rebar3 dialyzer ct_run; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found; install Erlang/OTP 25+ with rebar3, common_test and dialyzer (Debian packages: ${APT_PACKAGES[*]})"
    done
fi

if ((${#missing[@]})); then
    if [[ "$(id -u)" == 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        die "missing packages: ${missing[*]}. Run as root, or install sudo, or run: apt-get install ${missing[*]}"
    fi
    log "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${missing[@]}"; }; then
        die "could not install: ${missing[*]} (try: sudo apt-get install ${missing[*]})"
    fi
fi

# ---- (b) Python virtualenv -----------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: StellarOps needs Python 3.11 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "StellarOps needs Python >= 3.11; $PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version())'). Set PYTHON=/path/to/python3.11"

if [[ -d .venv ]] && ! .venv/bin/python -c '' >/dev/null 2>&1; then
    log ".venv is broken (was its Python removed?): recreating it"
    rm -rf .venv
fi
if [[ ! -d .venv ]]; then
    log "creating .venv"
    "$PYTHON" -m venv .venv
fi

stamp=".venv/.stellarops-install.sha256"
want="$(cat pyproject.toml <(.venv/bin/python -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(<"$stamp")" != "$want" ]]; then
    log "installing the project into .venv (pip install -e '.[dev]')"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    printf '%s\n' "$want" >"$stamp"
fi

# ---- (c) the BEAM app ----------------------------------------------------------------------
stamp="_build/.stellarops-compile.sha256"
want="$( (printf '%s\n' rebar.config; find beam_node rel -type f -not -path '*/_build/*' | LC_ALL=C sort) \
    | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(<"$stamp")" != "$want" || ! -f _build/default/lib/stellar/ebin/stellar.app ]]; then
    log "compiling the BEAM app (rebar3 compile)"
    rebar3 compile
    printf '%s\n' "$want" >"$stamp"
fi
# The dialyzer PLT is built lazily by `rebar3 dialyzer` in scripts/test.sh (cached in _build).

# ---- (d) the dashboard ---------------------------------------------------------------------
# The tests need it (and Chromium to drive it); `make run` serves it when Node.js is there and
# otherwise runs without it (the gateway answers / with 503 dashboard_not_built).
dashboard_rc=0
bash scripts/dashboard.sh || dashboard_rc=$?
if ((dashboard_rc != 0)); then
    ((FOR_TESTS)) && die "the dashboard did not build (exit $dashboard_rc); the tests need it"
    ((dashboard_rc == 3)) || die "the dashboard did not build (exit $dashboard_rc)"
    log "running without the dashboard (the HTTP API works as usual)"
fi

# ---- (e) state folder and cookie -----------------------------------------------------------
# py_nodes/state_dir.py decides the folder's permissions (it keeps the traverse bit the embedded
# PostgreSQL needs) and makes the cookie atomically, as `stellarops up` does.
prepare_erlang_home

log "ready"
