#!/bin/bash
# Entrypoint of the unicop-postgres image: on an empty $PGDATA, initdb (superuser postgres, local
# peer authentication only), then the role $POSTGRES_USER with the password read from
# $POSTGRES_PASSWORD_FILE and the database $POSTGRES_DB it owns; then the server, listening on
# every address of the container with scram-sha-256 for network clients. A volume that already
# holds a cluster is started as it is (the password file is not re-read).
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
db="${POSTGRES_DB:-netbox}" user="${POSTGRES_USER:-netbox}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ -s "$POSTGRES_PASSWORD_FILE" ] ||
    { echo "postgres: POSTGRES_PASSWORD_FILE must name a file holding the password" >&2; exit 1; }
  echo "postgres: initialising $PGDATA (database $db, owner $user)" >&2
  initdb -D "$PGDATA" --username=postgres --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  printf '%s\n' "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/run/postgresql" -w start >/dev/null
  password=$(head -n 1 "$POSTGRES_PASSWORD_FILE")
  # The password goes through a psql variable (:'pw' quotes it), never onto a command line.
  psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -U postgres -d postgres -v pw="$password" <<SQL
SET password_encryption = 'scram-sha-256';
CREATE ROLE "$user" LOGIN PASSWORD :'pw';
CREATE DATABASE "$db" OWNER "$user";
SQL
  unset password
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql "$@"
