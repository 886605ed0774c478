# Stand-in for docker.io/prom/prometheus:v2.42.0 where no registry is reachable: Debian 12's
# prometheus (2.42.0) and promtool on the local Debian base, with the official image's
# interface: entrypoint /bin/prometheus, config /etc/prometheus/prometheus.yml, data in
# /prometheus, user nobody, port 9090.
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus \
 && chown nobody:nogroup /prometheus
# nobody (numeric: checkable by runAsNonRoot).
USER 65534:65534
WORKDIR /prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
