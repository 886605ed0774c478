# Stand-in for docker.io/library/postgres:15-bookworm where no registry is reachable: Debian's
# postgresql-15 on the local Debian base, with the official image's interface (PGDATA, port 5432,
# POSTGRES_USER / POSTGRES_PASSWORD[_FILE] / POSTGRES_DB / POSTGRES_INITDB_ARGS, *.sql and *.sh in
# /docker-entrypoint-initdb.d on first start, `postgres` as the command, pg_isready on PATH).
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# The postgres user is 999:999, as in the official image (secret files and volumes made for it
# fit both). No "main" cluster from the package: the entrypoint makes one in PGDATA on first start.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql /var/lib/postgresql/data \
 && chown postgres:postgres /var/run/postgresql /var/lib/postgresql/data \
 && chmod 0700 /var/lib/postgresql/data
# UTF-8 databases (initdb takes the locale from LANG), as the official image's en_US.utf8.
ENV PG_MAJOR=15 \
    LANG=C.UTF-8 \
    PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
