#!/usr/bin/env bash
# Runs the compose stack (docker/compose.yaml; with STELLAROPS_COMPOSE_DEV=1 also
# docker/compose.dev.yaml) with whichever engine this machine has: `docker compose` when a Docker
# engine answers (`docker info`), else Podman + podman-compose (PyPI, installed into .venv on first
# use) with the project's containers.conf (docker/containers.conf, through CONTAINERS_CONF).
#
#   scripts/compose.sh up [SERVICE...]  images built (Podman: scripts/containers.sh build, which
#                                       installs Podman when missing; Docker: compose build), secrets
#                                       made, started detached, waits until every health check passes
#   scripts/compose.sh down [-v]        stops and removes the containers and network (-v: volumes too)
#   scripts/compose.sh health [SECONDS] waits (default 300 s) until every container of the project
#                                       that has a health check is healthy
#   scripts/compose.sh engine           prints `docker` or `podman`
#   scripts/compose.sh secrets          makes the secret files that are missing
#   scripts/compose.sh ARGS...          anything else goes to the compose tool (ps, logs, config...)
#
# Environment: COMPOSE_PROJECT_NAME (default stellarops), COMPOSE_PROFILES (observability adds
# Grafana), STELLAROPS_COMPOSE_DEV=1, STELLAROPS_COMPOSE_ENGINE (docker|podman: skip detection),
# STELLAROPS_COMPOSE_BUILD=0 (up without building), STELLAROPS_SECRETS_DIR, the published ports
# STELLAROPS_HTTP_PUBLISH, STELLAROPS_PROMETHEUS_PUBLISH, STELLAROPS_GRAFANA_PUBLISH.
#
# Under Podman, `up` does the depends_on conditions itself, one stage at a time: the database,
# its health check run (`podman healthcheck run`) until it passes; the migration one-shot, whose
# exit status must be 0; then the rest, until every health check passes. Because: Podman 4.3
# (Debian 12) runs health checks only from systemd timers; podman-compose honours
# `service_healthy` only from Podman 4.6 and takes `service_completed_successfully` as "stopped";
# and the `--requires` it gives a dependent container makes Podman start the one-shot again with
# the app, and stops the restart policy from restarting the app after a crash (its dependency
# is not running). So the containers are created with `--no-deps`. Docker does all of it on its
# own (`up --wait`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

log() { echo "compose: $*" >&2; }

# Under Podman: started first and healthy before the rest; then the one-shot, which must exit 0.
FIRST_SERVICES=(db)
ONE_SHOT=migrate
HEALTH_TIMEOUT_S="${STELLAROPS_HEALTH_TIMEOUT:-300}"
PODMAN_COMPOSE_SPEC="podman-compose>=1.6,<2"

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-stellarops}"
export STELLAROPS_SECRETS_DIR="${STELLAROPS_SECRETS_DIR:-$ROOT/.stellarops/compose-secrets}"
files=(-f docker/compose.yaml)
[[ "${STELLAROPS_COMPOSE_DEV:-0}" == 1 ]] && files+=(-f docker/compose.dev.yaml)

# Podman's settings for this machine (runc, cgroupfs, no systemd), for every podman command here.
export CONTAINERS_CONF="$ROOT/docker/containers.conf"
case "${STELLAROPS_COMPOSE_ENGINE:-}" in
    "" | docker | podman) ;;
    *) die "STELLAROPS_COMPOSE_ENGINE=$STELLAROPS_COMPOSE_ENGINE: must be docker or podman" ;;
esac

detect_engine() {
    if [[ -n "${STELLAROPS_COMPOSE_ENGINE:-}" ]]; then
        echo "$STELLAROPS_COMPOSE_ENGINE"
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 \
        && docker compose version >/dev/null 2>&1; then
        echo docker # a client with no engine behind it (`docker info` fails) does not count
    elif command -v podman >/dev/null 2>&1; then
        echo podman
    fi # else none (yet: `up` installs Podman through scripts/containers.sh)
}
ENGINE="$(detect_engine)"

need_engine() {
    [[ -n "$ENGINE" ]] || die "no container engine: install Docker with the compose plugin, or Podman (scripts/containers.sh setup)"
}

# The compose tool with our files; podman-compose comes from .venv (installed on first use).
compose_tool() {
    need_engine
    if [[ "$ENGINE" == docker ]]; then
        docker compose "${files[@]}" "$@"
        return
    fi
    [[ -f "$CONTAINERS_CONF" ]] || die "$CONTAINERS_CONF is missing (Podman's settings for this machine)"
    if ! .venv/bin/podman-compose version >/dev/null 2>&1; then
        [[ -x .venv/bin/python ]] || python3 -m venv .venv || die "could not create .venv (apt-get install python3-venv)"
        log "installing $PODMAN_COMPOSE_SPEC into .venv"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "$PODMAN_COMPOSE_SPEC" \
            || die "could not install $PODMAN_COMPOSE_SPEC"
    fi
    .venv/bin/podman-compose "${files[@]}" "$@"
}

# Each secret file once, random, in a folder only its owner can enter (the files themselves are
# 0644 because a container's own user, not the host's, reads them through the bind mount).
make_secrets() {
    local dir="$STELLAROPS_SECRETS_DIR" name
    mkdir -p "$dir"
    chmod 700 "$dir"
    for name in erlang-cookie db-password grafana-admin-password; do
        [[ -s "$dir/$name" ]] && continue
        (umask 022 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/$name.tmp")
        mv "$dir/$name.tmp" "$dir/$name"
    done
}

# The ids of this project's containers (a label both compose tools set).
project_containers() {
    local label=com.docker.compose.project
    "$ENGINE" ps -a -q --filter "label=$label=$COMPOSE_PROJECT_NAME" "$@"
}

# 0 when the container is healthy; under Podman, runs its check first (nothing else does).
check_health() {
    if [[ "$ENGINE" == podman ]]; then
        podman healthcheck run "$1" >/dev/null 2>&1
    else
        [[ "$(docker inspect --format '{{.State.Health.Status}}' "$1")" == healthy ]]
    fi
}

has_healthcheck() {
    local test
    test="$("$ENGINE" inspect --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}' "$1")"
    [[ -n "$test" && "$test" != "[]" && "$test" != "[NONE]" ]]
}

# Waits until every running container of the project with a health check (or those of the given
# services) is healthy, at most $1 seconds.
wait_healthy() {
    local timeout_s="$1" id name pending
    shift
    local filters=(--filter status=running)
    local deadline=$((SECONDS + timeout_s))
    while :; do
        pending=()
        local ids=()
        if (($#)); then
            local svc
            for svc in "$@"; do
                mapfile -t -O "${#ids[@]}" ids < <(project_containers "${filters[@]}" --filter "label=com.docker.compose.service=$svc")
            done
        else
            mapfile -t ids < <(project_containers "${filters[@]}")
        fi
        for id in "${ids[@]}"; do
            has_healthcheck "$id" || continue
            check_health "$id" || pending+=("$("$ENGINE" inspect --format '{{.Name}}' "$id")")
        done
        if ((${#pending[@]} == 0)); then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            log "not healthy after ${timeout_s} s: ${pending[*]}"
            for name in "${pending[@]}"; do
                log "last lines of $name:"
                "$ENGINE" logs --tail 30 "$name" >&2 || true
            done
            return 1
        fi
        sleep 2
    done
}

# Podman: `up -d --no-deps` stage by stage (see the top of this file).
podman_up() {
    local services=("$@") rest=() svc id rc
    compose_tool up -d --no-deps "${FIRST_SERVICES[@]}" >&2
    wait_healthy "$HEALTH_TIMEOUT_S" "${FIRST_SERVICES[@]}"
    compose_tool up -d --no-deps "$ONE_SHOT" >&2
    id="$(project_containers --filter "label=com.docker.compose.service=$ONE_SHOT")"
    [[ -n "$id" ]] || die "no $ONE_SHOT container"
    rc="$(podman wait "$id")"
    if [[ "$rc" != 0 ]]; then
        podman logs --tail 30 "$id" >&2 || true
        die "$ONE_SHOT exited $rc: not starting the rest"
    fi
    if ((${#services[@]} == 0)); then
        mapfile -t services < <(compose_tool config --services)
    fi
    for svc in "${services[@]}"; do
        [[ "$svc" == "$ONE_SHOT" || " ${FIRST_SERVICES[*]} " == *" $svc "* ]] || rest+=("$svc")
    done
    if ((${#rest[@]})); then
        compose_tool up -d --no-deps "${rest[@]}" >&2
    fi
    wait_healthy "$HEALTH_TIMEOUT_S"
}

# Docker builds with compose (its engine reaches the registries); otherwise scripts/containers.sh
# installs Podman when missing, makes the local stand-ins and builds the image.
build_images() {
    [[ "${STELLAROPS_COMPOSE_BUILD:-1}" == 0 ]] && return 0
    if [[ "$ENGINE" == docker ]]; then
        compose_tool build
    else
        bash scripts/containers.sh build
        ENGINE="$(detect_engine)"
    fi
}

cmd="${1:-}"
case "$cmd" in
    engine)
        need_engine
        echo "$ENGINE"
        ;;
    secrets)
        make_secrets
        ;;
    up)
        shift
        make_secrets
        build_images
        if [[ "$ENGINE" == docker ]]; then
            compose_tool up -d --wait --wait-timeout "$HEALTH_TIMEOUT_S" "$@"
        else
            podman_up "$@"
        fi
        log "up: project $COMPOSE_PROJECT_NAME, http://127.0.0.1:${STELLAROPS_HTTP_PUBLISH:-8080}/"
        ;;
    health)
        need_engine
        wait_healthy "${2:-$HEALTH_TIMEOUT_S}"
        ;;
    "")
        die "usage: scripts/compose.sh up [SERVICE...] | down [-v] | health [SECONDS] | engine | secrets | COMPOSE-ARGS..."
        ;;
    *)
        compose_tool "$@"
        ;;
esac
