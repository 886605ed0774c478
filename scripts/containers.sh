#!/usr/bin/env bash
# Builds the container images with Podman on a machine with no Docker engine and no reachable
# registry (the README's "Containers" section; docs in docker/Dockerfile). Idempotent, and quick
# when nothing changed: each step says how long it took.
#
#   scripts/containers.sh setup    Podman, runc and mmdebstrap (apt) when missing; the local
#                                  stand-ins for the official images our files name, each built
#                                  only when absent or when its recipe changed
#   scripts/containers.sh build    setup, then the `stellarops` image (docker/Dockerfile)
#   scripts/containers.sh sizes    the size of each image
#   scripts/containers.sh names    the stand-ins' names, one a line
#
# Podman runs with the project's docker/containers.conf (through CONTAINERS_CONF): nothing under
# /etc is written. Environment: STELLAROPS_IMAGE (the tag built, default
# localhost/stellarops:latest), STELLAROPS_CA_BUNDLE (the CA bundle given to the build as the
# optional secret `ca`, default /etc/ssl/certs/ca-certificates.crt when it exists).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

export CONTAINERS_CONF="$ROOT/docker/containers.conf"
IMAGE="${STELLAROPS_IMAGE:-localhost/stellarops:latest}"
CA_BUNDLE="${STELLAROPS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

# The stand-ins, under the official images' names (so the Dockerfile and compose files never
# change between this machine and one with a registry).
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
NODE_IMAGE=docker.io/library/node:20-bookworm-slim
POSTGRES_IMAGE=docker.io/library/postgres:15-bookworm
PROMETHEUS_IMAGE=docker.io/prom/prometheus:v2.42.0
STANDINS=(docker/standins)
RECIPE_LABEL=org.stellarops.standin.recipe

log() { echo "containers: $*" >&2; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Runs "$@" and logs how long it took.
timed() {
    local what="$1" start=$SECONDS
    shift
    "$@"
    log "$what: $((SECONDS - start)) s"
}

as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (or install it yourself)"
    fi
}

install_tools() {
    local missing=() pkg
    for pkg in podman runc mmdebstrap; do
        [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] \
            || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]}: install them (Podman 4.3+, runc, mmdebstrap)"
    log "installing ${missing[*]} (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The recipe's hash: a stand-in is built again when it changes.
recipe_hash() {
    cat "$@" | sha256sum | cut -c1-16
}

# True when image $1 exists with recipe hash $2.
is_current() {
    podman image exists "$1" \
        && [[ "$(podman image inspect --format "{{index .Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null)" == "$2" ]]
}

# debian:bookworm-slim: a minbase Debian 12 made by mmdebstrap, slimmed as the official image
# (no docs, man pages or locales; merged /usr without usrmerge's perl; no apt lists).
build_debian() {
    local recipe="mmdebstrap minbase bookworm v1" hash tmp="$WORK/debian"
    hash="$(printf '%s' "$recipe" | recipe_hash)"
    is_current "$DEBIAN_IMAGE" "$hash" && return 0
    mkdir -p "$tmp"
    mmdebstrap --variant=minbase --quiet \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        bookworm "$tmp/base.tar" \
        "deb http://deb.debian.org/debian bookworm main" \
        "deb http://deb.debian.org/debian bookworm-updates main" \
        "deb http://deb.debian.org/debian-security bookworm-security main"
    podman import --quiet --change 'CMD ["bash"]' --change "LABEL $RECIPE_LABEL=$hash" \
        "$tmp/base.tar" "$DEBIAN_IMAGE" >/dev/null
}

# A stand-in from docker/standins/$2.Dockerfile with context $3, tagged $1.
build_standin() {
    local name="$1" recipe="${STANDINS[0]}/$2.Dockerfile" context="$3" hash
    shift 3
    hash="$( (recipe_hash "$recipe" "$@"; podman image inspect --format '{{.Id}}' "$DEBIAN_IMAGE") | recipe_hash)"
    is_current "$name" "$hash" && return 0
    podman build --quiet --file "$recipe" --label "$RECIPE_LABEL=$hash" --tag "$name" "$context" >/dev/null
}

build_node() {
    local node npm tmp="$WORK/node"
    node="$(command -v node)" || die "no node on PATH: the node stand-in is this machine's Node.js (20.19+; see docker/standins/node.Dockerfile)"
    "$node" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a === 20 && b >= 19 ? 0 : 1)' \
        || die "$NODE_IMAGE's stand-in needs this machine's Node.js to be 20.19+ (a 20.x); it is $("$node" --version)"
    npm="$(dirname "$(readlink -f "$(command -v npm)")")/.."
    [[ -f "$npm/bin/npm-cli.js" ]] || die "npm not found next to $node"
    mkdir -p "$tmp"
    cp docker/standins/node.Dockerfile "$tmp/"
    cp "$(readlink -f "$node")" "$tmp/node"
    cp -a "$(readlink -f "$npm")" "$tmp/npm"
    # The recipe includes the Node and npm versions: a new Node on this machine, a new stand-in.
    build_standin "$NODE_IMAGE" node "$tmp" <(node --version; npm --version)
}

setup() {
    timed "tools (podman, runc, mmdebstrap)" install_tools
    timed "$DEBIAN_IMAGE" build_debian
    timed "$NODE_IMAGE" build_node
    timed "$POSTGRES_IMAGE" build_standin "$POSTGRES_IMAGE" postgres docker/standins docker/standins/postgres-entrypoint.sh
    timed "$PROMETHEUS_IMAGE" build_standin "$PROMETHEUS_IMAGE" prometheus docker/standins
}

build_image() {
    # --jobs 2: the builder stages download (apt, npm, PyPI) side by side.
    local args=(--jobs 2 --file docker/Dockerfile --tag "$IMAGE"
        --build-arg "VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
        --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
    [[ -f "$CA_BUNDLE" ]] && args+=(--secret "id=ca,src=$CA_BUNDLE")
    podman build "${args[@]}" .
}

sizes() {
    local name
    for name in "$IMAGE" "$DEBIAN_IMAGE" "$NODE_IMAGE" "$POSTGRES_IMAGE" "$PROMETHEUS_IMAGE"; do
        if podman image exists "$name"; then
            printf '%-45s %s MB\n' "$name" "$(($(podman image inspect --format '{{.Size}}' "$name") / 1000000))"
        else
            printf '%-45s (not built)\n' "$name"
        fi
    done
}

case "${1:-}" in
    setup) timed "setup" setup ;;
    build)
        timed "setup" setup
        timed "$IMAGE" build_image
        sizes
        ;;
    sizes) sizes ;;
    names) printf '%s\n' "$DEBIAN_IMAGE" "$NODE_IMAGE" "$POSTGRES_IMAGE" "$PROMETHEUS_IMAGE" ;;
    *)
        echo "usage: scripts/containers.sh setup|build|sizes|names" >&2
        exit 2
        ;;
esac
