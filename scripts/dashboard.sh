#!/usr/bin/env bash
# Builds the dashboard (web/dashboard -> web/dashboard/dist, served by the gateway at /) when its
# sources changed: `npm ci` when package-lock.json (or Node) changed, `vite build` when the
# sources did. Each step keeps a hash stamp, so with nothing changed this takes well under a second.
# Exit 3 when Node.js is missing or too old (callers decide whether that is fatal).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/web/dashboard"

log() { echo "dashboard: $*"; }

# Vite 7 needs Node.js 20.19+ (Debian 12's own nodejs is 18: too old).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "Node.js and npm not found: install Node.js 20.19 or newer (https://nodejs.org) to build the dashboard"
    exit 3
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    log "Node.js $(node --version) is too old: the dashboard build (Vite 7) needs 20.19 or newer"
    exit 3
fi

stamp="node_modules/.stellarops-npm.sha256"
want="$(cat package-lock.json <(node --version) | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(<"$stamp")" != "$want" ]]; then
    log "installing packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    printf '%s\n' "$want" >"$stamp"
fi

stamp="dist/.stellarops-build.sha256"
want="$( (find src public -type f; printf '%s\n' index.html vite.config.ts tsconfig.json package-lock.json) \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(<"$stamp")" != "$want" || ! -f dist/index.html ]]; then
    log "building (vite build)"
    npx vite build --logLevel warn
    printf '%s\n' "$want" >"$stamp"
fi
