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
# A stand-in built from a recipe is also tagged $RECIPE_TAGS:<name>-<recipe hash> (a tag, not a
# label: labels would be inherited by every image built on the stand-in).
RECIPE_TAGS=localhost/stellarops-standin

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

recipe_tag() {
    local name="${1##*/}"
    echo "$RECIPE_TAGS:${name//:/-}-$2"
}

# True when image $1 exists and was built from the recipe with hash $2.
is_current() {
    podman image exists "$1" && podman image exists "$(recipe_tag "$1" "$2")" \
        && [[ "$(podman image inspect --format '{{.Id}}' "$1")" == "$(podman image inspect --format '{{.Id}}' "$(recipe_tag "$1" "$2")")" ]]
}

# The apt settings of the official image (downloaded packages deleted after install, no
# translations, compressed lists), so that a Dockerfile behaves (and weighs) the same on both.
write_apt_conf() {
    mkdir -p "$1"
    cat >"$1/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$1/docker-autoremove-suggests"
    echo 'Acquire::GzipIndexes "true";' >"$1/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$1/docker-no-languages"
}

# debian:bookworm-slim: a minbase Debian 12 made by mmdebstrap, slimmed as the official image
# (no docs, man pages or locales; merged /usr without usrmerge's perl; no apt lists; its apt
# settings).
build_debian() {
    local hash tmp="$WORK/debian"
    write_apt_conf "$WORK/apt.conf.d"
    hash="$( (echo "mmdebstrap minbase bookworm v2"; cat "$WORK"/apt.conf.d/*) | recipe_hash)"
    is_current "$DEBIAN_IMAGE" "$hash" && return 0
    mkdir -p "$tmp"
    mmdebstrap --variant=minbase --quiet \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --customize-hook="copy-in $WORK/apt.conf.d/docker-clean $WORK/apt.conf.d/docker-autoremove-suggests $WORK/apt.conf.d/docker-gzip-indexes $WORK/apt.conf.d/docker-no-languages /etc/apt/apt.conf.d" \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb' \
        bookworm "$tmp/base.tar" \
        "deb http://deb.debian.org/debian bookworm main" \
        "deb http://deb.debian.org/debian bookworm-updates main" \
        "deb http://deb.debian.org/debian-security bookworm-security main" \
        >"$WORK/mmdebstrap.log" 2>&1 || { cat "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
    podman import --quiet --change 'CMD ["bash"]' "$tmp/base.tar" "$DEBIAN_IMAGE" >/dev/null
    podman tag "$DEBIAN_IMAGE" "$(recipe_tag "$DEBIAN_IMAGE" "$hash")"
}

# A stand-in from docker/standins/$2.Dockerfile with context $3, tagged $1.
build_standin() {
    local name="$1" recipe="${STANDINS[0]}/$2.Dockerfile" context="$3" hash
    shift 3
    # Built on the Debian stand-in: a new base, a new stand-in.
    hash="$( (recipe_hash "$recipe" "$@"; podman image inspect --format '{{.Id}}' "$DEBIAN_IMAGE") | recipe_hash)"
    is_current "$name" "$hash" && return 0
    podman build --quiet --format docker --file "$recipe" --tag "$name" --tag "$(recipe_tag "$name" "$hash")" "$context" >/dev/null
}

build_node() {
    local node npm tmp="$WORK/node" hash
    node="$(command -v node)" || die "no node on PATH: the node stand-in is this machine's Node.js (20.19+; see docker/standins/node.Dockerfile)"
    "$node" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a === 20 && b >= 19 ? 0 : 1)' \
        || die "$NODE_IMAGE's stand-in needs this machine's Node.js to be 20.19+ (a 20.x); it is $("$node" --version)"
    npm="$(dirname "$(readlink -f "$(command -v npm)")")/.."
    [[ -f "$npm/bin/npm-cli.js" ]] || die "npm not found next to $node"
    # The recipe includes the Node and npm versions: a new Node on this machine, a new stand-in.
    printf '%s\n' "$("$node" --version)" "$(npm --version)" >"$WORK/node-versions"
    hash="$( (recipe_hash docker/standins/node.Dockerfile "$WORK/node-versions"; podman image inspect --format '{{.Id}}' "$DEBIAN_IMAGE") | recipe_hash)"
    is_current "$NODE_IMAGE" "$hash" && return 0
    mkdir -p "$tmp"
    cp "$(readlink -f "$node")" "$tmp/node"
    cp -a "$(readlink -f "$npm")" "$tmp/npm"
    build_standin "$NODE_IMAGE" node "$tmp" "$WORK/node-versions"
}

setup() {
    timed "tools (podman, runc, mmdebstrap)" install_tools
    timed "$DEBIAN_IMAGE" build_debian
    timed "$NODE_IMAGE" build_node
    timed "$POSTGRES_IMAGE" build_standin "$POSTGRES_IMAGE" postgres docker/standins docker/standins/postgres-entrypoint.sh
    timed "$PROMETHEUS_IMAGE" build_standin "$PROMETHEUS_IMAGE" prometheus docker/standins
}

build_image() {
    # --format docker: the OCI format has no HEALTHCHECK. --jobs 2: the builder stages download
    # (apt, npm, PyPI) side by side.
    local args=(--format docker --jobs 2 --file docker/Dockerfile --tag "$IMAGE"
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
