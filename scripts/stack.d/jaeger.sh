#!/usr/bin/env bash
# Jaeger v2 all-in-one (github.com/jaegertracing/jaeger cmd/jaeger v1.76.0, a Go program built from
# the Go module proxy once into the cache), in-memory storage, on 127.0.0.1 only: OTLP/HTTP on
# $UNICOP_JAEGER_OTLP_PORT (the bridge and workers export their traces there: UNICOP_OTLP_URL),
# the query UI and API (/api/traces/<id>, /api/traces?service=…) on $UNICOP_JAEGER_QUERY_PORT,
# the health check on $UNICOP_JAEGER_HEALTH_PORT. Why OTLP/HTTP and what travels where:
# docs/decisions/0040-tracing.md.
#
# The build is long on a cold machine (the module pulls in the whole OpenTelemetry collector and its
# storage back ends): `npm test` and `scripts/stack up` start it detached first (`jaeger.sh
# prebuild`), so it runs beside the build of dist/ and the other services' provisioning, and `up`
# never waits for it: while the binary is missing, `up` leaves a detached starter that starts Jaeger
# when the build ends, and returns. Whoever needs traces waits for Jaeger's query API
# (test/trace/one-trace.test.ts does, with a generous cap).
#
#   up        start (built: wait for the health check; not built yet: leave the starter) and
#             record the URLs in var/stack.env
#   prebuild  only the build, detached (log var/log/jaeger-build.log); does nothing once built
#   status    up, starting (being built or started by the starter; exit 0) or down (exit 1)
#   down      stops Jaeger and a starter still waiting for the build (a build keeps going: the cache)
#   logs
STACK_SERVICE=jaeger
source "$(dirname "$0")/common.sh"

JAEGER_VERSION=1.76.0
OTLP_PORT="${UNICOP_JAEGER_OTLP_PORT:-14318}"
QUERY_PORT="${UNICOP_JAEGER_QUERY_PORT:-16686}"
QUERY_GRPC_PORT="${UNICOP_JAEGER_QUERY_GRPC_PORT:-16685}"
HEALTH_PORT="${UNICOP_JAEGER_HEALTH_PORT:-14133}"
CACHE="${UNICOP_CACHE:-/var/cache/unicop}/jaeger"
bin="$CACHE/jaeger-$JAEGER_VERSION"
dir="$UNICOP_VAR/jaeger"
config="$dir/config.yaml"
build_log="$UNICOP_LOG_DIR/jaeger-build.log"
health="http://$UNICOP_HOST:$HEALTH_PORT/status"

# The binary, built once into the cache inside a throwaway Go module (its go.mod never reaches the
# repository). Serialised by a lock, so that `prebuild` and `up` never build twice.
build() {
  [ -x "$bin" ] && return 0
  command -v go >/dev/null || apt_install golang-go
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.build.lock"
  flock -w 7200 8 || die "another build holds $CACHE/.build.lock"
  [ -x "$bin" ] && { exec 8>&-; return 0; }
  say "building Jaeger $JAEGER_VERSION from the Go module proxy (long on a cold machine; log $build_log)"
  local mod t=$SECONDS
  mod=$(mktemp -d -p "$CACHE" build.XXXXXX)
  if ! ( cd "$mod" && go mod init unicop.invalid/jaeger-build &&
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION" &&
    go build -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger && mv "$bin.tmp" "$bin" ) >>"$build_log" 2>&1; then
    rm -rf "$mod"
    die "Jaeger build failed (see $build_log)"
  fi
  rm -rf "$mod"
  say "Jaeger built in $((SECONDS - t))s"
  exec 8>&-
}

prebuild() {
  [ -x "$bin" ] && return 0
  # Go first, here: a detached apt-get would race the other services' for dpkg's lock.
  command -v go >/dev/null || apt_install golang-go
  mkdir -p "$CACHE"
  # A build already running (its lock held) is the one we want.
  flock -n "$CACHE/.build.lock" true || return 0
  # Detached: the caller (npm test, scripts/stack up) goes on with the other services.
  setsid nohup "$0" build </dev/null >>"$build_log" 2>&1 &
}

write_config() {
  mkdir -p "$dir"
  cat >"$config.new" <<YAML
# Written by scripts/stack.d/jaeger.sh: all-in-one, memory storage, 127.0.0.1 only.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 50000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: $UNICOP_HOST:$QUERY_PORT
    grpc:
      endpoint: $UNICOP_HOST:$QUERY_GRPC_PORT
  healthcheckv2:
    use_v2: true
    http:
      endpoint: $UNICOP_HOST:$HEALTH_PORT
receivers:
  otlp:
    protocols:
      http:
        endpoint: $UNICOP_HOST:$OTLP_PORT
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
  if cmp -s "$config.new" "$config"; then rm "$config.new"; return 1; fi
  mv "$config.new" "$config"
}

up() {
  command -v curl >/dev/null || apt_install curl
  env_set UNICOP_OTLP_URL "http://$UNICOP_HOST:$OTLP_PORT"
  env_set UNICOP_JAEGER_URL "http://$UNICOP_HOST:$QUERY_PORT"
  if [ ! -x "$bin" ]; then
    prebuild
    start_daemon jaeger-start "$0" start_when_built
    say "Jaeger $JAEGER_VERSION is still being built (log $build_log): it starts when the build ends" \
      "(starter log $UNICOP_LOG_DIR/jaeger-start.log); not waiting for it"
    return 0
  fi
  start
}

# The detached starter `up` leaves on a cold machine: waits for the build (its lock), then starts.
start_when_built() {
  timed "build" build
  start
}

start() {
  if write_config && daemon_alive jaeger; then
    say "configuration changed: restarting Jaeger"
    stop_daemon jaeger
  fi
  if ! daemon_alive jaeger && port_open "$OTLP_PORT"; then
    die "$UNICOP_HOST:$OTLP_PORT is taken by another process"
  fi
  start_daemon jaeger "$bin" --config "file:$config"
  local i
  for ((i = 0; i < 300; i++)); do
    curl -sf -m 2 "$health" >/dev/null 2>&1 && break
    daemon_alive jaeger || die "Jaeger exited (see $UNICOP_LOG_DIR/jaeger.log)"
    sleep 0.2
  done
  curl -sf -m 2 "$health" >/dev/null || die "Jaeger's health check did not answer within 60s ($health)"
  wait_for_port "$OTLP_PORT" 30 "Jaeger OTLP/HTTP"
  wait_for_port "$QUERY_PORT" 30 "Jaeger query"
  status
}

status() {
  if curl -sf -m 2 "$health" >/dev/null 2>&1; then
    echo "jaeger: up (Jaeger $JAEGER_VERSION; OTLP/HTTP $UNICOP_HOST:$OTLP_PORT, UI and API http://$UNICOP_HOST:$QUERY_PORT)"
  elif daemon_alive jaeger-start; then
    echo "jaeger: starting (being built, log $build_log; it starts when the build ends)"
  else
    echo "jaeger: down"
    return 1
  fi
}

down() {
  stop_daemon jaeger-start
  stop_daemon jaeger
}
logs() { tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/jaeger.log"; }

"${1:-status}"
