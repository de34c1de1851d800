#!/usr/bin/env bash
# Apache Kafka, one KRaft node in combined mode (broker + controller) on 127.0.0.1:$UNICOP_KAFKA_PORT
# (controller on $UNICOP_KAFKA_CONTROLLER_PORT). No tarball can be fetched here, so the jars come
# from Maven Central through kafka/pom.xml and run with the machine's Java 17.
#   var/kafka/libs              the jars (+ .stamp naming the version; re-fetched when the pin changes)
#   var/kafka/data              log.dirs and the KRaft metadata log (formatted once, kept by `down`)
#   var/kafka/server.properties rendered from kafka/server.properties.in on every `up`
#   var/m2                      Maven's local repository
# Topics are listed in kafka/topics.txt; `up` creates the missing ones and brings partitions
# and retention.ms of existing ones in line with it.
STACK_SERVICE=kafka
source "$(dirname "$0")/common.sh"

KAFKA_VERSION=4.1.1 # exact release on Maven Central (org.apache.kafka:kafka_2.13)

conf="$(cd "$(dirname "$0")" && pwd)/kafka"
dir="$UNICOP_VAR/kafka"
libs="$dir/libs"
data="$dir/data"
props="$dir/server.properties"
admin="$dir/admin.properties"
bootstrap="$UNICOP_HOST:$UNICOP_KAFKA_PORT"
log="$UNICOP_LOG_DIR/kafka.log"

# Broker JVM: the start script's G1 flags, with a smaller heap (one dev node, ~150 partitions).
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m}"
broker_jvm=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true)

libs_stamp() { echo "$KAFKA_VERSION $(sha256sum <"$conf/pom.xml" | cut -c1-16)"; }
libs_version() { awk '{print $1; exit}' "$libs/.stamp" 2>/dev/null || true; }

# tool CLASS ARGS... — a short-lived JVM on the Kafka classpath (quiet logging, fast start).
tool() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$conf/tools-log4j2.yaml" \
    -cp "$libs/*" "$@"
}
topic_cmd() { tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --command-config "$admin" "$@"; }

need_tools() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  local v
  v=$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "Kafka 4 needs Java >= 17; \`java\` is $v"
}

# fetch_libs — copies kafka/pom.xml's runtime dependencies into var/kafka/libs unless the stamp
# there already names this version and this pom.
fetch_libs() {
  [ "$(cat "$libs/.stamp" 2>/dev/null)" = "$(libs_stamp)" ] && return 0
  command -v mvn >/dev/null || apt_install maven
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $libs (log: $UNICOP_LOG_DIR/kafka-mvn.log)"
  rm -rf "$libs.tmp"
  mvn -B -q -f "$conf/pom.xml" -Dmaven.repo.local="$UNICOP_VAR/m2" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs.tmp" \
    >"$UNICOP_LOG_DIR/kafka-mvn.log" 2>&1 || die "maven could not fetch the Kafka jars (see $UNICOP_LOG_DIR/kafka-mvn.log)"
  [ -f "$libs.tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "maven ran but kafka_2.13-$KAFKA_VERSION.jar is missing from $libs.tmp"
  libs_stamp >"$libs.tmp/.stamp"
  rm -rf "$libs"
  mv "$libs.tmp" "$libs"
}

# render_props — writes var/kafka/server.properties and admin.properties; prints "changed" when
# server.properties differs from the one already there.
render_props() {
  local tmp="$props.tmp" data_dir="$data"
  sed -e "s|@UNICOP_HOST@|$UNICOP_HOST|g" -e "s|@UNICOP_KAFKA_PORT@|$UNICOP_KAFKA_PORT|g" \
    -e "s|@UNICOP_KAFKA_CONTROLLER_PORT@|$UNICOP_KAFKA_CONTROLLER_PORT|g" -e "s|@data_dir@|$data_dir|g" \
    "$conf/server.properties.in" >"$tmp"
  if [ -f "$props" ] && cmp -s "$tmp" "$props"; then rm -f "$tmp"; else mv "$tmp" "$props" && echo changed; fi
  # Admin client used by the tools: fail within seconds instead of the default minute.
  printf '%s\n' 'request.timeout.ms=5000' 'default.api.timeout.ms=15000' >"$admin"
}

# pid_is_ours PID — that process is a Kafka broker started with this stack's server.properties.
pid_is_ours() {
  local cmdline
  cmdline=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
  [[ $cmdline == *kafka.Kafka*"$props"* ]]
}

# port_holder PORT — "pid command" of the process listening on 127.0.0.1:PORT, or nothing.
port_holder() {
  local pid
  command -v ss >/dev/null || return 0
  pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)
  [ -n "$pid" ] || return 0
  echo "$pid $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-120)"
}

# check_pid_and_ports — makes var/run/kafka.pid tell the truth before `up` or `down` acts on it:
# drops a pid file whose process is gone or is something else (pid reused), adopts this stack's
# broker if it runs without a pid file, and stops with instructions when a foreign process holds
# one of our ports.
check_pid_and_ports() {
  local pid holder p
  pid=$(daemon_pid kafka)
  if [ -n "$pid" ] && ! pid_is_ours "$pid"; then
    say "var/run/kafka.pid names pid $pid, which is not this stack's Kafka (stale pid file); removing it"
    rm -f "$UNICOP_RUN_DIR/kafka.pid"
  fi
  daemon_alive kafka && return 0
  for p in "$UNICOP_KAFKA_PORT" "$UNICOP_KAFKA_CONTROLLER_PORT"; do
    port_open "$p" || continue
    holder=$(port_holder "$p")
    if [ -n "$holder" ] && pid_is_ours "${holder%% *}"; then
      say "adopting this stack's Kafka broker (pid ${holder%% *}), which was running without a pid file"
      echo "${holder%% *}" >"$UNICOP_RUN_DIR/kafka.pid"
      return 0
    fi
    if [ -n "$holder" ]; then
      die "$UNICOP_HOST:$p is held by pid ${holder%% *} (${holder#* }), which is not this stack's Kafka." \
        "Stop it (\`kill ${holder%% *}\`) and run \`scripts/stack up kafka\` again, or use other ports:" \
        "UNICOP_KAFKA_PORT=<port> UNICOP_KAFKA_CONTROLLER_PORT=<port> scripts/stack up kafka"
    fi
    die "$UNICOP_HOST:$p is held by a process that is not this stack's Kafka (see \`ss -ltnp 'sport = :$p'\`)." \
      "Stop it and run \`scripts/stack up kafka\` again, or use other ports:" \
      "UNICOP_KAFKA_PORT=<port> UNICOP_KAFKA_CONTROLLER_PORT=<port> scripts/stack up kafka"
  done
}

format_storage() {
  [ -f "$data/meta.properties" ] && return 0
  local cluster_id
  mkdir -p "$data"
  cluster_id=$(tool kafka.tools.StorageTool random-uuid) || die "kafka.tools.StorageTool random-uuid failed"
  say "formatting $data (KRaft, standalone controller, cluster id $cluster_id)"
  tool kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$props" >>"$log" 2>&1 \
    || die "formatting $data failed (see $log)"
}

# wait_ready SECONDS — until the broker answers a metadata request; fails early if the JVM dies.
# Leaves the describe output of the non-internal topics in $described.
described=
wait_ready() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    daemon_alive kafka || { tail -n 20 "$log" >&2; die "the Kafka JVM exited (last lines of $log above)"; }
    if port_open "$UNICOP_KAFKA_PORT" && described=$(topic_cmd --describe --exclude-internal 2>/dev/null); then
      return 0
    fi
    sleep 0.5
  done
  die "Kafka did not answer on $bootstrap within $1s (see $log)"
}

# sync_topics — kafka/topics.txt against the describe output in $described; sets $topics_changed.
topics_changed=
sync_topics() {
  local name parts retention policy have_parts have_ret
  while read -r name parts retention policy _; do
    [[ -z $name || $name == \#* ]] && continue
    have_parts= have_ret=
    read -r have_parts have_ret < <(awk -v t="$name" '
      $1 == "Topic:" && $2 == t {
        for (i = 1; i <= NF; i++) if ($i == "PartitionCount:") pc = $(i + 1)
        if (match($0, /retention\.ms=[0-9]+/)) rm = substr($0, RSTART + 13, RLENGTH - 13)
        print pc, (rm == "" ? "-" : rm); exit
      }' <<<"$described") || true
    if [ -z "${have_parts:-}" ]; then
      say "creating topic $name ($parts partitions, retention.ms=$retention, ${policy:-delete})"
      topic_cmd --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 \
        --config "retention.ms=$retention" --config min.insync.replicas=1 \
        --config "cleanup.policy=${policy:-delete}" >/dev/null \
        || die "could not create topic $name"
      topics_changed=1
      continue
    fi
    if ((have_parts < parts)); then
      say "topic $name: raising partitions $have_parts -> $parts"
      topic_cmd --alter --topic "$name" --partitions "$parts" >/dev/null || die "could not add partitions to $name"
      topics_changed=1
    elif ((have_parts > parts)); then
      say "WARNING: topic $name has $have_parts partitions, topics.txt says $parts; Kafka cannot remove partitions (delete the topic to shrink it)"
    fi
    if [ "$have_ret" != "$retention" ]; then
      say "topic $name: retention.ms $have_ret -> $retention"
      tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --command-config "$admin" \
        --entity-type topics --entity-name "$name" --alter --add-config "retention.ms=$retention" >/dev/null \
        || die "could not set retention.ms on $name"
    fi
  done <"$conf/topics.txt"
}

up() {
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  # One `up` at a time (CI and a developer's shell may race). The broker must not inherit fd 9.
  flock -w 180 9 || die "another \`kafka.sh up\` has held $dir/.lock for 3 minutes"
  need_tools
  check_pid_and_ports
  local changed
  if daemon_alive kafka; then
    [ "$(libs_version)" = "$KAFKA_VERSION" ] \
      || say "WARNING: the running broker uses Kafka $(libs_version), the pin is $KAFKA_VERSION: run \`$0 down\` then \`$0 up\`"
    changed=$(render_props)
    [ -z "$changed" ] || say "WARNING: server.properties changed while Kafka runs; run \`$0 down\` then \`$0 up\` to apply it"
  else
    fetch_libs
    render_props >/dev/null
    format_storage
    mkdir -p "$dir/logs"
    say "starting Kafka $KAFKA_VERSION on $bootstrap (log: $log)"
    # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
    start_daemon kafka java $KAFKA_HEAP_OPTS "${broker_jvm[@]}" \
      -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$conf/log4j2.yaml" \
      -cp "$libs/*" kafka.Kafka "$props" 9>&-
  fi
  wait_ready 90
  sync_topics
  env_set UNICOP_KAFKA_BROKERS "$bootstrap"
  if [ -n "$topics_changed" ]; then status; else status_line "$(grep -c '^Topic:' <<<"$described" || true)"; fi
}

status() {
  local topics
  port_open "$UNICOP_KAFKA_PORT" || { echo "kafka: down"; return 1; }
  [ -f "$libs/.stamp" ] || { echo "kafka: down ($bootstrap is open, but $libs is missing)"; return 1; }
  topics=$(topic_cmd --list --exclude-internal 2>/dev/null) \
    || { echo "kafka: down ($bootstrap is open but no Kafka answers there)"; return 1; }
  status_line "$(grep -c . <<<"$topics" || true)"
}
status_line() { echo "kafka: up on $bootstrap ($(libs_version)), $1 topics"; }

down() {
  local pid
  pid=$(daemon_pid kafka)
  if [ -n "$pid" ] && ! pid_is_ours "$pid"; then rm -f "$UNICOP_RUN_DIR/kafka.pid"; fi
  # Adopt a broker of ours that lost its pid file, so that it is stopped too.
  if ! daemon_alive kafka; then
    local holder
    holder=$(port_holder "$UNICOP_KAFKA_PORT")
    if [ -n "$holder" ] && pid_is_ours "${holder%% *}"; then echo "${holder%% *}" >"$UNICOP_RUN_DIR/kafka.pid"; fi
  fi
  stop_daemon kafka 30
}

logs() { tail -n "${LINES:-50}" "$log"; }

"${1:-status}"
