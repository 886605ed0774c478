# Stand-in for docker.io/library/node:20-bookworm-slim where no registry is reachable: this
# machine's own Node.js (20.19 or newer: Vite 7 needs it; Debian 12's nodejs is 18) and its npm,
# copied into the local Debian base, at the official image's paths (/usr/local/bin/node,
# /usr/local/lib/node_modules/npm). scripts/containers.sh prepares the context: node and npm/.
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
COPY node /usr/local/bin/node
COPY npm/ /usr/local/lib/node_modules/npm/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
CMD ["node"]
