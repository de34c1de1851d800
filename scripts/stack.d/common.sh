# Shared helpers for the local stack. Sourced by scripts/stack and every scripts/stack.d/<service>.sh.
# Everything the stack keeps (data, logs, pid files, caches) lives under $UNICOP_VAR (default: <repo>/var).
set -euo pipefail

UNICOP_REPO="${UNICOP_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
UNICOP_VAR="${UNICOP_VAR:-$UNICOP_REPO/var}"
UNICOP_HOST=127.0.0.1
# Ports: non-default so the stack never collides with a system service of the same kind.
UNICOP_REDIS_PORT="${UNICOP_REDIS_PORT:-16379}"
UNICOP_NETBOX_REDIS_PORT="${UNICOP_NETBOX_REDIS_PORT:-16380}"   # NetBox's own Redis (redis.sh)
UNICOP_AWX_REDIS_PORT="${UNICOP_AWX_REDIS_PORT:-16381}"         # the stack AWX's own Redis (redis.sh)
UNICOP_PG_PORT="${UNICOP_PG_PORT:-15432}"
UNICOP_KAFKA_PORT="${UNICOP_KAFKA_PORT:-19092}"
UNICOP_KAFKA_CONTROLLER_PORT="${UNICOP_KAFKA_CONTROLLER_PORT:-19093}"
UNICOP_NETBOX_PORT="${UNICOP_NETBOX_PORT:-18000}"
UNICOP_AWX_PORT="${UNICOP_AWX_PORT:-18053}"   # real AWX (18052 is the AWX double's)
export UNICOP_REPO UNICOP_VAR UNICOP_HOST UNICOP_REDIS_PORT UNICOP_NETBOX_REDIS_PORT UNICOP_AWX_REDIS_PORT UNICOP_PG_PORT \
  UNICOP_KAFKA_PORT UNICOP_KAFKA_CONTROLLER_PORT UNICOP_NETBOX_PORT UNICOP_AWX_PORT

# Downloads and built artefacts that survive a new clone on the same machine (NetBox's root and
# migrated database, AWX's wheelhouse, images): keyed by what they were made from, never required.
UNICOP_CACHE="${UNICOP_CACHE:-/var/cache/unicop}"
export UNICOP_CACHE

UNICOP_LOG_DIR="$UNICOP_VAR/log"
UNICOP_RUN_DIR="$UNICOP_VAR/run"
mkdir -p "$UNICOP_LOG_DIR" "$UNICOP_RUN_DIR"

say() { printf '[stack %s] %s\n' "${STACK_SERVICE:-main}" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# apt_install PKG... — installs the Debian packages that are missing; runs `apt-get update` at most
# once per stack invocation.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ ! -f "$UNICOP_RUN_DIR/.apt-updated.$$" ] && [ -z "${UNICOP_APT_UPDATED:-}" ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >"$UNICOP_LOG_DIR/apt.log" 2>&1 || die "apt-get update failed (see $UNICOP_LOG_DIR/apt.log)"
    export UNICOP_APT_UPDATED=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    >>"$UNICOP_LOG_DIR/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed (see $UNICOP_LOG_DIR/apt.log)"
}

# wait_for_port PORT SECONDS [NAME] — waits until something accepts TCP connections on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 timeout=$2 name=${3:-port $1} i
  for ((i = 0; i < timeout * 5; i++)); do
    (exec 3<>"/dev/tcp/$UNICOP_HOST/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  die "$name did not open $UNICOP_HOST:$port within ${timeout}s"
}

port_open() { (exec 3<>"/dev/tcp/$UNICOP_HOST/$1") 2>/dev/null; }

# start_daemon NAME CMD... — starts CMD detached in its own session, output to var/log/NAME.log,
# pid in var/run/NAME.pid. Does nothing if that pid is still alive.
start_daemon() {
  local name=$1; shift
  if daemon_alive "$name"; then return 0; fi
  setsid nohup "$@" >>"$UNICOP_LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$UNICOP_RUN_DIR/$name.pid"
}

daemon_pid() { cat "$UNICOP_RUN_DIR/$1.pid" 2>/dev/null || true; }
daemon_alive() { local pid; pid=$(daemon_pid "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# stop_daemon NAME [SECONDS] — TERM the daemon's process group, KILL after SECONDS (default 20).
stop_daemon() {
  local name=$1 timeout=${2:-20} pid i
  pid=$(daemon_pid "$name")
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$UNICOP_RUN_DIR/$name.pid"
}

# env_get KEY — the value env_set last recorded in var/stack.env (empty when none).
env_get() { sed -n "s/^$1=//p" "$UNICOP_VAR/stack.env" 2>/dev/null | tail -n 1; }

# mark STEP VALUE / marked STEP VALUE — provisioning markers in the calling script's $state folder:
# a step is skipped while its marker holds the value it was done for.
mark() { mkdir -p "$state"; printf '%s\n' "$2" >"$state/$1"; }
marked() { [ -f "$state/$1" ] && [ "$(cat "$state/$1")" = "$2" ]; }

# timed LABEL CMD... — runs CMD and reports how long it took (if it took a second or more).
timed() {
  local label=$1 t=$SECONDS; shift
  "$@"
  [ $((SECONDS - t)) -eq 0 ] || say "$label: done in $((SECONDS - t))s"
}

# secret NAME — prints $secrets/NAME (the calling script's secrets folder), generating it (64 hex
# chars, mode 600) on first use; never on a command line.
secret() {
  local f="$secrets/$1"
  if [ ! -s "$f" ]; then
    mkdir -p "$secrets"; chmod 700 "$secrets"
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$f.tmp") && mv "$f.tmp" "$f"
  fi
  cat "$f"
}

# env_set KEY VALUE — records one connection fact in var/stack.env (read by tests, demo, bridge).
env_set() {
  local file="$UNICOP_VAR/stack.env" key=$1 value=$2 tmp
  touch "$file"
  tmp=$(mktemp "$file.XXXXXX")
  grep -v "^$key=" "$file" >"$tmp" || true
  printf '%s=%s\n' "$key" "$value" >>"$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$file"
}
