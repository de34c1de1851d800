#!/usr/bin/env bash
# Redis from Debian's redis-server, one instance on 127.0.0.1:$UNICOP_REDIS_PORT, no persistence
# (the queue state is rebuilt from Kafka and NetBox; see docs/architecture.md).
STACK_SERVICE=redis
source "$(dirname "$0")/common.sh"

dir="$UNICOP_VAR/redis"

up() {
  command -v redis-server >/dev/null || apt_install redis-server
  # Debian's package starts its own instance on 6379; ours is separate and does not need it.
  mkdir -p "$dir"
  if ! daemon_alive redis; then
    start_daemon redis redis-server --bind "$UNICOP_HOST" --port "$UNICOP_REDIS_PORT" \
      --dir "$dir" --save '' --appendonly no --daemonize no --protected-mode yes
  fi
  wait_for_port "$UNICOP_REDIS_PORT" 20 redis
  for _ in $(seq 50); do redis-cli -p "$UNICOP_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
  env_set UNICOP_REDIS_URL "redis://$UNICOP_HOST:$UNICOP_REDIS_PORT"
  status
}

status() {
  redis-cli -h "$UNICOP_HOST" -p "$UNICOP_REDIS_PORT" ping 2>/dev/null | grep -q PONG || { echo "redis: down"; return 1; }
  echo "redis: up on $UNICOP_HOST:$UNICOP_REDIS_PORT ($(redis-server --version | awk '{print $3}'))"
}

down() { stop_daemon redis; }
logs() { tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/redis.log"; }

"${1:-status}"
