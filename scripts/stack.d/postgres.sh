#!/usr/bin/env bash
# PostgreSQL 15 from Debian's packages, as a cluster of our own: data under $UNICOP_VAR/postgres,
# listening on 127.0.0.1:$UNICOP_PG_PORT only (plus a Unix socket under var/ for administration).
# Debian's own cluster (port 5432, if any) is neither used nor touched.
#
# Holds NetBox's database: role `netbox` (password auth, CREATEDB for the plugin's test databases),
# database `netbox`, extension `ltree` in it and in template1 (so test databases have it too).
#
# Durability: fsync is off by default (a disposable local/CI database: no waiting for disk flushes).
# After a host crash the cluster may be corrupt: `scripts/stack down`, remove var/postgres,
# `scripts/stack up` (netbox.sh notices the new database and migrates it). UNICOP_PG_DURABLE=1
# keeps fsync on.
STACK_SERVICE=postgres
source "$(dirname "$0")/common.sh"

PG_BIN=/usr/lib/postgresql/15/bin
dir="$UNICOP_VAR/postgres"
data="$dir/data"
sock="$dir/run"                 # Unix socket directory (peer auth for the postgres OS user)
pwfile="$dir/netbox.password"   # the netbox role's password, generated once
PG_DB=netbox
PG_USER=netbox

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
psql_admin() { PGOPTIONS="-c client_min_messages=warning" as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$UNICOP_PG_PORT" -U postgres "$@"; }

# The postgres OS user must be able to reach $dir: every ancestor needs the search (x) bit for it.
ensure_traversable() {
  local d
  d=$(dirname "$dir")
  as_postgres test -x "$d" 2>/dev/null && return 0
  while [ "$d" != / ]; do
    if ! as_postgres test -x "$d" 2>/dev/null; then
      say "granting search permission (o+x, not read) on $d so the postgres user can reach $dir"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
}

init_cluster() {
  # The marker is written only after initdb succeeded; a data directory without it is a leftover
  # of an interrupted initdb and is removed.
  [ -f "$dir/.initdb-done" ] && [ -f "$data/PG_VERSION" ] && return 0
  if [ -e "$data" ]; then
    [ -f "$data/postmaster.pid" ] && die "$data has no initdb marker but a postmaster.pid; stop that server, remove $data, retry"
    say "removing incomplete cluster at $data"
    rm -rf "$data"
  fi
  say "initdb $data"
  mkdir -p "$data"
  chown postgres:postgres "$data"
  chmod 700 "$data"
  as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >"$UNICOP_LOG_DIR/postgres-initdb.log" 2>&1 \
    || die "initdb failed (see $UNICOP_LOG_DIR/postgres-initdb.log)"
  touch "$dir/.initdb-done"
}

up() {
  [ -x "$PG_BIN/postgres" ] || apt_install postgresql-15 postgresql-contrib
  [ -f /usr/share/postgresql/15/extension/ltree.control ] || apt_install postgresql-contrib
  mkdir -p "$dir" "$sock"
  chown postgres:postgres "$sock"
  ensure_traversable
  init_cluster

  if [ ! -s "$pwfile" ]; then
    (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$pwfile")
  fi

  local fsync=off
  [ "${UNICOP_PG_DURABLE:-0}" = 1 ] && fsync=on
  if ! daemon_alive postgres; then
    # A server we did not start (or whose pid file we lost) would hold the data directory.
    if as_postgres "$PG_BIN/pg_ctl" status -D "$data" >/dev/null 2>&1; then
      say "a server is already running on $data without our pid file; stopping it first"
      as_postgres "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w >/dev/null
    fi
    port_open "$UNICOP_PG_PORT" && die "$UNICOP_HOST:$UNICOP_PG_PORT is taken by another process (another checkout's stack? stop it with its scripts/stack down)"
    # setpriv execs (no fork), so the recorded pid is the postmaster's.
    start_daemon postgres setpriv --reuid=postgres --regid=postgres --init-groups -- \
      "$PG_BIN/postgres" -D "$data" \
      -c listen_addresses="$UNICOP_HOST" -c port="$UNICOP_PG_PORT" \
      -c unix_socket_directories="$sock" \
      -c max_connections=200 -c shared_buffers=128MB \
      -c fsync="$fsync" -c synchronous_commit="$fsync" -c full_page_writes="$fsync" \
      -c logging_collector=off -c log_min_messages=warning
  fi
  local i
  for ((i = 0; i < 150; i++)); do
    "$PG_BIN/pg_isready" -q -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" && break
    daemon_alive postgres || die "postgres exited during start (see $UNICOP_LOG_DIR/postgres.log)"
    sleep 0.2
  done
  "$PG_BIN/pg_isready" -q -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" || die "postgres not ready within 30s (see $UNICOP_LOG_DIR/postgres.log)"

  # Role, database, extensions — every statement is idempotent; the password travels on stdin as a
  # psql variable, so it appears neither in ps nor in the server log.
  psql_admin -d postgres <<SQL
\set pw '$(cat "$pwfile")'
SELECT 'CREATE ROLE $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \gexec
ALTER ROLE $PG_USER WITH LOGIN CREATEDB PASSWORD :'pw';
\c template1
CREATE EXTENSION IF NOT EXISTS ltree;
\c postgres
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
\c $PG_DB
CREATE EXTENSION IF NOT EXISTS ltree;
SQL

  local pw
  pw=$(cat "$pwfile")
  env_set UNICOP_PG_HOST "$UNICOP_HOST"
  env_set UNICOP_PG_PORT "$UNICOP_PG_PORT"
  env_set UNICOP_PG_DATABASE "$PG_DB"
  env_set UNICOP_PG_USER "$PG_USER"
  env_set UNICOP_PG_PASSWORD "$pw"
  env_set UNICOP_PG_URL "postgresql://$PG_USER:$pw@$UNICOP_HOST:$UNICOP_PG_PORT/$PG_DB"
  status
}

status() {
  if ! "$PG_BIN/pg_isready" -q -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" 2>/dev/null; then
    echo "postgres: down"; return 1
  fi
  local v
  v=$(PGPASSWORD=$(cat "$pwfile" 2>/dev/null) "$PG_BIN/psql" -X -At -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" \
      -U "$PG_USER" -d "$PG_DB" -c 'SHOW server_version' 2>/dev/null) || { echo "postgres: up but database $PG_DB not reachable as $PG_USER"; return 1; }
  echo "postgres: up on $UNICOP_HOST:$UNICOP_PG_PORT ($v, database $PG_DB)"
}

down() {
  # pg_ctl's fast shutdown (SIGINT to the postmaster) ends sessions and checkpoints cleanly;
  # stop_daemon then only removes the pid file (or kills a server that did not stop).
  if [ -f "$data/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null 2>&1 || true
  fi
  stop_daemon postgres
}

logs() { tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/postgres.log"; }

"${1:-status}"
