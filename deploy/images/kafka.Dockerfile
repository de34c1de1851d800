# syntax=docker/dockerfile:1
# `unicop-kafka`: Apache Kafka 4.1.1, one KRaft node in combined mode, from the Maven Central jars
# (the same pom as the local stack, scripts/stack.d/kafka/) on Debian trixie's OpenJDK 21. Commands
# (deploy/kafka/entrypoint.sh): `broker` (default); `create-topics` (one-shot: the topics of
# scripts/stack.d/kafka/topics.txt — auto-creation is off); `tool CLASS ARGS...` (Kafka's tools).
# Users with a registry may run apache/kafka:4.1.1 instead (docs/decisions/0030-deployment-images.md).
ARG DEBIAN_IMAGE=docker.io/library/debian:trixie-slim

FROM ${DEBIAN_IMAGE} AS jre
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-21-jre-headless \
 && rm -rf /var/lib/apt/lists/*

FROM jre AS jars
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends maven ca-certificates-java \
 && rm -rf /var/lib/apt/lists/*
# A TLS-intercepting proxy's CA when the build mounts one at /run/build-ca (Java's trust store is
# regenerated from the system one); this stage is never shipped.
RUN if ls /run/build-ca/*.crt >/dev/null 2>&1; then \
      cp /run/build-ca/*.crt /usr/local/share/ca-certificates/ && update-ca-certificates; fi
ARG KAFKA_VERSION=4.1.1
COPY scripts/stack.d/kafka/pom.xml /build/pom.xml
RUN mvn -B -q -f /build/pom.xml -Dmaven.repo.local=/build/m2 -Dkafka.version=${KAFKA_VERSION} \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=/opt/kafka/libs \
 && test -f /opt/kafka/libs/kafka_2.13-${KAFKA_VERSION}.jar

FROM jre AS runtime
RUN groupadd --system --gid 10003 kafka \
 && useradd --system --uid 10003 --gid kafka --home-dir /var/lib/kafka --shell /usr/sbin/nologin kafka \
 && mkdir -p /var/lib/kafka/data /opt/kafka/config && chown -R kafka:kafka /var/lib/kafka
COPY --from=jars /opt/kafka/libs /opt/kafka/libs
COPY scripts/stack.d/kafka/log4j2.yaml scripts/stack.d/kafka/tools-log4j2.yaml scripts/stack.d/kafka/topics.txt /opt/kafka/config/
COPY deploy/kafka/entrypoint.sh /usr/local/bin/kafka
USER kafka
VOLUME ["/var/lib/kafka/data"]
EXPOSE 9092
ENV KAFKA_HEAP_OPTS="-Xmx512m -Xms512m"
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["kafka", "healthcheck"]
ENTRYPOINT ["kafka"]
CMD ["broker"]
