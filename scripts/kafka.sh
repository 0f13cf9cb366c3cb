#!/usr/bin/env bash
# A local Apache Kafka 4.x broker in KRaft mode (one combined broker+controller node), assembled
# from Maven Central jars with a tiny pom: no Docker, no tarball mirror. Used by tests, CI and dev.
#   kafka.sh fetch    download the jars once per machine into $KAFKA_CACHE (about 30 s cold)
#   kafka.sh up       fetch if needed, format the data dir on first start, start, wait until ready
#   kafka.sh down     stop the broker started by `up` (data kept)
#   kafka.sh reset    stop and wipe the data dir
#   kafka.sh status   exit 0 when the broker answers
#   kafka.sh brokers  print host:port for KAFKA_BROKERS
# Environment (all optional): KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1),
# KAFKA_DATA (.data/kafka-<port>), KAFKA_CACHE (~/.cache/ecommerce-pipeline/kafka-<version>),
# KAFKA_VERSION (4.1.0), KAFKA_HEAP (512m).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/common/dotenv.sh
. "$ROOT/scripts/lib/common/dotenv.sh"
load_dotenv
KAFKA_VERSION="${KAFKA_VERSION:-4.1.0}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_CACHE="${KAFKA_CACHE:-$HOME/.cache/ecommerce-pipeline/kafka-$KAFKA_VERSION}"
KAFKA_DATA="${KAFKA_DATA:-$ROOT/.data/kafka-$KAFKA_PORT}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
PIDFILE="$KAFKA_DATA/kafka.pid"
LOG="$KAFKA_DATA/kafka.log"

die() {
  echo "error: $*" >&2
  exit 1
}
say() { echo "kafka: $*" >&2; }

fetch() {
  if [[ -f "$KAFKA_CACHE/.complete" ]]; then return; fi
  command -v java >/dev/null 2>&1 || die "java (17+) is needed to run Kafka: apt-get install openjdk-17-jre-headless"
  command -v mvn >/dev/null 2>&1 || die "maven is needed to fetch the Kafka jars: apt-get install maven"
  mkdir -p "$KAFKA_CACHE"
  local tmp
  tmp="$(mktemp -d "$KAFKA_CACHE/.fetch.XXXXXX")"
  cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ecommerce-pipeline</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
POM
  say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_CACHE"
  (cd "$tmp" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$tmp/lib" -Dmdep.includeScope=runtime) >&2 ||
    die "mvn dependency:copy-dependencies failed: check that Maven Central is reachable, then run again"
  rm -rf "$KAFKA_CACHE/lib"
  mv "$tmp/lib" "$KAFKA_CACHE/lib"
  cp "$tmp/pom.xml" "$KAFKA_CACHE/pom.xml"
  rm -rf "$tmp"
  touch "$KAFKA_CACHE/.complete"
}

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }

up() {
  fetch
  if running; then
    say "already running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$PIDFILE"))"
    return
  fi
  answers && die "port $KAFKA_PORT is taken by another process: set KAFKA_PORT to a free port"
  mkdir -p "$KAFKA_DATA"
  cat >"$KAFKA_DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA/logs
num.partitions=4
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
log.retention.hours=24
PROPS
  cat >"$KAFKA_DATA/log4j.properties" <<'L4J'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
L4J
  local cp="$KAFKA_CACHE/lib/*"
  if [[ ! -f "$KAFKA_DATA/logs/meta.properties" ]]; then
    say "formatting $KAFKA_DATA/logs"
    java -cp "$cp" -Dlog4j.configuration="file:$KAFKA_DATA/log4j.properties" kafka.tools.StorageTool format \
      -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
      -c "$KAFKA_DATA/server.properties" --standalone >"$KAFKA_DATA/format.log" 2>&1 ||
      die "kafka storage format failed: see $KAFKA_DATA/format.log"
  fi
  say "starting on 127.0.0.1:$KAFKA_PORT (log: $LOG)"
  nohup java -Xms128m -Xmx"$KAFKA_HEAP" -XX:+UseSerialGC -Dlog4j.configuration="file:$KAFKA_DATA/log4j.properties" \
    -cp "$cp" kafka.Kafka "$KAFKA_DATA/server.properties" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 120); do
    if answers && grep -q "Kafka Server started" "$LOG" 2>/dev/null; then
      say "ready on 127.0.0.1:$KAFKA_PORT"
      return
    fi
    running || die "the broker exited during start: see $LOG"
    sleep 0.5
  done
  die "the broker did not become ready in 60 s: see $LOG"
}

down() {
  if ! running; then
    rm -f "$PIDFILE"
    return
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  say "stopping pid $pid"
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PIDFILE"
}

case "${1:-}" in
fetch) fetch ;;
up) up ;;
down) down ;;
reset) down && rm -rf "$KAFKA_DATA" ;;
status) answers ;;
brokers) echo "127.0.0.1:$KAFKA_PORT" ;;
*) die "usage: scripts/kafka.sh fetch|up|down|reset|status|brokers" ;;
esac
