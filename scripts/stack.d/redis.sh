#!/usr/bin/env bash
# Redis from Debian's redis-server, three instances, as production keeps them apart (issue #14,
# observation 11): losing one must not take the others' data or writes with it.
#   redis         127.0.0.1:$UNICOP_REDIS_PORT (16379): UNICOP's BullMQ queue, the bridge's
#                 de-duplication memory, the sweeper's epoch key. No persistence: the queue state
#                 is rebuilt from Kafka and NetBox (docs/architecture.md).
#   redis-netbox  127.0.0.1:$UNICOP_NETBOX_REDIS_PORT (16380): NetBox's own — its RQ queues (the
#                 webhooks it has still to send, database 0) and its cache (database 1). Append-only
#                 file, fsync every second: queued webhooks survive a restart of this instance.
#   redis-awx     127.0.0.1:$UNICOP_AWX_REDIS_PORT (16381): the stack's AWX — its broker and channel
#                 layer (database 10) and cache (database 11), as AWX's own pod has its own Redis.
#                 No persistence (AWX keeps its jobs in PostgreSQL). Until session 8 AWX used UNICOP's
#                 instance, so a loss of UNICOP's Redis errored the AWX jobs then running.
# Each has its own data folder (var/redis, var/redis-netbox), pid (var/run/<name>.pid) and log
# (var/log/<name>.log). `up` starts all three, `down` stops them, `status` reports each.
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

port_of() {
  case $1 in
    redis) echo "$UNICOP_REDIS_PORT" ;;
    redis-netbox) echo "$UNICOP_NETBOX_REDIS_PORT" ;;
    redis-awx) echo "$UNICOP_AWX_REDIS_PORT" ;;
  esac
}

up() {
  command -v redis-server >/dev/null || apt_install redis-server
  # Debian's package starts its own instance on 6379; ours are separate and do not need it.
  start_instance redis "$UNICOP_REDIS_PORT" --save '' --appendonly no
  start_instance redis-netbox "$UNICOP_NETBOX_REDIS_PORT" --save '' --appendonly yes --appendfsync everysec
  start_instance redis-awx "$UNICOP_AWX_REDIS_PORT" --save '' --appendonly no
  env_set UNICOP_REDIS_URL "redis://$UNICOP_HOST:$UNICOP_REDIS_PORT"
  env_set UNICOP_NETBOX_REDIS_URL "redis://$UNICOP_HOST:$UNICOP_NETBOX_REDIS_PORT"
  status
}

status() {
  local rc=0 name port
  for name in redis redis-netbox redis-awx; do
    port=$(port_of "$name")
    if redis-cli -h "$UNICOP_HOST" -p "$port" ping 2>/dev/null | grep -q PONG; then
      echo "$name: up on $UNICOP_HOST:$port ($(redis-server --version | awk '{print $3}'))"
    else
      echo "$name: down"; rc=1
    fi
  done
  return $rc
}

down() { stop_daemon redis-netbox & stop_daemon redis-awx & stop_daemon redis; wait; }

logs() {
  local name
  for name in redis redis-netbox redis-awx; do
    echo "==> $UNICOP_LOG_DIR/$name.log <=="
    tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/$name.log" 2>/dev/null || true
  done
}

"${1:-status}"
