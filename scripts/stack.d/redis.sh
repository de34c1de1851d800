#!/usr/bin/env bash
# Redis from Debian's redis-server, two instances, as production keeps them apart (issue #14,
# observation 11): losing one must not take the other's data or writes with it.
#   redis         127.0.0.1:$UNICOP_REDIS_PORT (16379): UNICOP's BullMQ queue, the bridge's
#                 de-duplication memory, the sweeper's epoch key (and the stack's AWX, databases
#                 10/11). No persistence: the queue state is rebuilt from Kafka and NetBox
#                 (docs/architecture.md).
#   redis-netbox  127.0.0.1:$UNICOP_NETBOX_REDIS_PORT (16380): NetBox's own — its RQ queues (the
#                 webhooks it has still to send, database 0) and its cache (database 1). Append-only
#                 file, fsync every second: queued webhooks survive a restart of this instance.
# Each has its own data folder (var/redis, var/redis-netbox), pid (var/run/<name>.pid) and log
# (var/log/<name>.log). `up` starts both, `down` stops both, `status` reports both.
STACK_SERVICE=redis
source "$(dirname "$0")/common.sh"

# start_instance NAME PORT REDIS-ARGS... — one instance: data in var/NAME, pid and log by NAME.
start_instance() {
  local name=$1 port=$2; shift 2
  mkdir -p "$UNICOP_VAR/$name"
  if ! daemon_alive "$name"; then
    port_open "$port" && die "$UNICOP_HOST:$port is taken by another process (another checkout's stack? stop it with its scripts/stack down)"
    start_daemon "$name" redis-server --bind "$UNICOP_HOST" --port "$port" --dir "$UNICOP_VAR/$name" \
      "$@" --daemonize no --protected-mode yes
  fi
  wait_for_port "$port" 20 "$name"
  for _ in $(seq 50); do redis-cli -h "$UNICOP_HOST" -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
}

up() {
  command -v redis-server >/dev/null || apt_install redis-server
  # Debian's package starts its own instance on 6379; ours are separate and do not need it.
  start_instance redis "$UNICOP_REDIS_PORT" --save '' --appendonly no
  start_instance redis-netbox "$UNICOP_NETBOX_REDIS_PORT" --save '' --appendonly yes --appendfsync everysec
  env_set UNICOP_REDIS_URL "redis://$UNICOP_HOST:$UNICOP_REDIS_PORT"
  env_set UNICOP_NETBOX_REDIS_URL "redis://$UNICOP_HOST:$UNICOP_NETBOX_REDIS_PORT"
  status
}

status() {
  local rc=0 name port
  for name in redis redis-netbox; do
    [ "$name" = redis ] && port=$UNICOP_REDIS_PORT || port=$UNICOP_NETBOX_REDIS_PORT
    if redis-cli -h "$UNICOP_HOST" -p "$port" ping 2>/dev/null | grep -q PONG; then
      echo "$name: up on $UNICOP_HOST:$port ($(redis-server --version | awk '{print $3}'))"
    else
      echo "$name: down"; rc=1
    fi
  done
  return $rc
}

down() { stop_daemon redis-netbox & stop_daemon redis; wait; }

logs() {
  local name
  for name in redis redis-netbox; do
    echo "==> $UNICOP_LOG_DIR/$name.log <=="
    tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/$name.log" 2>/dev/null || true
  done
}

"${1:-status}"
