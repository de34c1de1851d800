#!/bin/bash
# Entrypoint of the unicop-kafka image (installed as /usr/local/bin/kafka):
#   broker          one KRaft node (broker + controller): PLAINTEXT on 0.0.0.0:9092, advertised as
#                   $KAFKA_ADVERTISED_HOST:9092 (default: kafka, the compose service), controller on
#                   127.0.0.1:9093; the data directory is formatted on first start
#   create-topics   one-shot: waits for $KAFKA_BOOTSTRAP (default kafka:9092), then creates the
#                   topics of /opt/kafka/config/topics.txt that are missing (name, partitions,
#                   retention.ms, cleanup.policy) and adds partitions when the file asks for more
#   healthcheck     the broker accepts connections on 9092
#   tool CLASS ARGS...   a Kafka tool, e.g. `tool org.apache.kafka.tools.consumer.ConsoleConsumer ...`
set -euo pipefail
conf=/opt/kafka/config
data=/var/lib/kafka/data
props=/var/lib/kafka/server.properties

tool() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dkafka.logs.dir=/tmp -Dlog4j2.configurationFile="$conf/tools-log4j2.yaml" -cp '/opt/kafka/libs/*' "$@"
}

broker() {
  local host="${KAFKA_ADVERTISED_HOST:-kafka}"
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:9093
listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://$host:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  if [ ! -f "$data/meta.properties" ]; then
    echo "kafka: formatting $data (KRaft, standalone controller)" >&2
    tool kafka.tools.StorageTool format --standalone -t "$(tool kafka.tools.StorageTool random-uuid)" -c "$props" >&2
  fi
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
  exec java $KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true -Dkafka.logs.dir=/tmp \
    -Dlog4j2.configurationFile="$conf/log4j2.yaml" -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
}

create_topics() {
  local bootstrap="${KAFKA_BOOTSTRAP:-kafka:9092}" deadline=$((SECONDS + ${KAFKA_WAIT_SECONDS:-300}))
  local admin=/tmp/admin.properties described name parts retention policy have
  printf '%s\n' 'request.timeout.ms=5000' 'default.api.timeout.ms=15000' >"$admin"
  until described=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
      --command-config "$admin" --describe --exclude-internal 2>/dev/null); do
    ((SECONDS < deadline)) || { echo "kafka: $bootstrap did not answer" >&2; exit 1; }
    echo "kafka: waiting for $bootstrap" >&2
    sleep 2
  done
  while read -r name parts retention policy _; do
    [[ -z $name || $name == \#* ]] && continue
    have=$(awk -v t="$name" '$1 == "Topic:" && $2 == t { for (i = 1; i <= NF; i++) if ($i == "PartitionCount:") print $(i + 1) }' <<<"$described")
    if [ -z "$have" ]; then
      echo "kafka: creating topic $name ($parts partitions, retention.ms=$retention, ${policy:-delete})" >&2
      tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --command-config "$admin" \
        --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 \
        --config "retention.ms=$retention" --config min.insync.replicas=1 --config "cleanup.policy=${policy:-delete}" >&2
    elif ((have < parts)); then
      echo "kafka: topic $name: partitions $have -> $parts" >&2
      tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --command-config "$admin" \
        --alter --topic "$name" --partitions "$parts" >&2
    fi
  done <"$conf/topics.txt"
  echo "kafka: topics ready" >&2
}

cmd="${1:-broker}"
[ $# -gt 0 ] && shift
case "$cmd" in
  broker) broker ;;
  create-topics) create_topics ;;
  healthcheck) (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null ;;
  tool) tool "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
