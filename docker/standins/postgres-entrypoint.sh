#!/bin/bash
# Entrypoint of the postgres stand-in (postgres.Dockerfile): the part of the official image's
# interface our compose files use. As root it fixes PGDATA's owner and runs itself again as
# postgres; on an empty PGDATA it runs initdb, sets the superuser's password, creates the
# database and runs /docker-entrypoint-initdb.d; then it execs the server on every address.
set -Eeuo pipefail

file_env() {  # VAR or VAR_FILE (a secret), not both
    local var="$1" file_var="${1}_FILE" default="${2:-}"
    if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
        echo "error: both $var and $file_var are set (only one may be)" >&2
        exit 1
    fi
    local value="$default"
    if [[ -n "${!var:-}" ]]; then
        value="${!var}"
    elif [[ -n "${!file_var:-}" ]]; then
        value="$(<"${!file_var}")"
    fi
    export "$var"="$value"
    unset "$file_var"
}

if [[ "${1:-}" == -* ]]; then
    set -- postgres "$@"
fi

if [[ "$1" == postgres && "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [[ "$1" == postgres && ! -s "$PGDATA/PG_VERSION" ]]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    if [[ -z "$POSTGRES_PASSWORD" && "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]]; then
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        echo "       (set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words, as upstream
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    # A server on the socket only, for the set-up below.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    export PGUSER="$POSTGRES_USER" PGPASSWORD="$POSTGRES_PASSWORD"
    if [[ "$POSTGRES_DB" != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --dbname postgres --quiet \
            --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --dbname "$POSTGRES_DB" -f "$f" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGPASSWORD
    echo "PostgreSQL init process complete; ready for start up."
fi

if [[ "$1" == postgres ]]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
