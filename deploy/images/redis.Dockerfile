# syntax=docker/dockerfile:1
# `unicop-redis`: Debian trixie's Redis with the append-only file on (everysec) in /data: BullMQ's
# queue and the bridge's de-duplication memory survive a restart (docs/runbooks/redis-data-lost.md).
# No password: it listens only on the compose network, which nothing outside reaches (no port is
# published). Users with a registry may run redis:7 with the same command instead
# (docs/decisions/0030-deployment-images.md).
ARG DEBIAN_IMAGE=docker.io/library/debian:trixie-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["redis-cli", "ping"]
ENTRYPOINT ["redis-server"]
CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
