# syntax=docker/dockerfile:1
# The `unicop` image: the bridge and the workers (`unicop bridge`, `unicop workers`), compiled
# JavaScript on Debian trixie's Node.js 20. Build from the repository root:
#   docker build -f deploy/images/unicop.Dockerfile -t unicop .
# (deploy/build-images does the same with podman, offline, with a cache outside the clone).
# Stages: build (npm ci with dev dependencies, tsc) → prod-deps (npm ci --omit=dev) → runtime
# (node, the production node_modules and dist/ only: no npm, no TypeScript, no tsx).
ARG DEBIAN_IMAGE=docker.io/library/debian:trixie-slim

FROM ${DEBIAN_IMAGE} AS node
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM node AS npm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
# A TLS-intercepting proxy's CA, when the build mounts one at /run/build-ca (deploy/build-images
# does on machines that need it); this stage is never shipped. Node reads the system bundle only
# through NODE_EXTRA_CA_CERTS.
RUN if ls /run/build-ca/*.crt >/dev/null 2>&1; then \
      cp /run/build-ca/*.crt /usr/local/share/ca-certificates/ && update-ca-certificates; fi
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
WORKDIR /app
COPY package.json package-lock.json ./

FROM npm AS build
RUN npm ci --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY bin bin
COPY core core
COPY bridge bridge
COPY workers workers
COPY openapi/generated openapi/generated
RUN npm run build

FROM npm AS prod-deps
RUN npm ci --omit=dev --ignore-scripts --loglevel=error

FROM node AS runtime
RUN groupadd --system --gid 10001 unicop \
 && useradd --system --uid 10001 --gid unicop --home-dir /app --shell /usr/sbin/nologin unicop \
 && ln -s /app/dist/bin/unicop.js /usr/local/bin/unicop
WORKDIR /app
COPY --from=prod-deps /app/node_modules node_modules
COPY --from=build /app/package.json package.json
COPY --from=build /app/dist dist
ENV NODE_ENV=production UNICOP_VAR=/var/lib/unicop \
    UNICOP_BRIDGE_HOST=0.0.0.0 UNICOP_BRIDGE_PORT=8080 UNICOP_WORKERS_METRICS_PORT=9464
USER unicop
EXPOSE 8080
# /healthz of whichever service this container runs (the bridge's port or the workers' listener).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["unicop", "healthcheck"]
ENTRYPOINT ["unicop"]
CMD ["--help"]
