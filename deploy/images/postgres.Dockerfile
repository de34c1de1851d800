# syntax=docker/dockerfile:1
# `unicop-postgres`: Debian trixie's PostgreSQL 17 for NetBox (which needs >= 14). The database,
# its owner and password (POSTGRES_DB, POSTGRES_USER, the file POSTGRES_PASSWORD_FILE) are made on
# the first start of an empty volume (deploy/postgres/entrypoint.sh); clients authenticate with
# scram-sha-256. Users with a registry may run postgres:17 with the same variables instead
# (docs/decisions/0030-deployment-images.md).
ARG DEBIAN_IMAGE=docker.io/library/debian:trixie-slim
FROM ${DEBIAN_IMAGE}
ARG PG_MAJOR=17
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-${PG_MAJOR} \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY deploy/postgres/entrypoint.sh /usr/local/bin/postgres-unicop
USER postgres
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["pg_isready", "-h", "127.0.0.1", "-q"]
ENTRYPOINT ["postgres-unicop"]
