#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, resolved from Maven Central with mvn
# and run with the machine's Java 17+. The jars are cached; nothing is downloaded twice.
#
#   deploy/kafka.sh fetch    resolve the broker's jars into the cache
#   deploy/kafka.sh start    fetch if needed, format storage once, start, wait until it answers
#   deploy/kafka.sh stop     stop the broker started from KAFKA_DATA_DIR
#   deploy/kafka.sh status   exit 0 and print the bootstrap address if it runs
#
# Environment:
#   KAFKA_PORT             client port                    (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port          (default KAFKA_PORT + 1)
#   KAFKA_DATA_DIR         broker data, pid and log file  (default ./.chargeledger/kafka)
#   KAFKA_CACHE_DIR        resolved jars                  (default ~/.cache/chargeledger/kafka)
#   KAFKA_HEAP             JVM heap                       (default 512m)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
data_dir=${KAFKA_DATA_DIR:-$PWD/.chargeledger/kafka}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
cache_dir=${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chargeledger/kafka}/$version
heap=${KAFKA_HEAP:-512m}
pid_file=$data_dir/broker.pid
log_file=$data_dir/broker.log

say() { echo "kafka.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

check_java() {
  command -v java >/dev/null || die "java not found; install a Java 17 (or newer) runtime"
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/.*java.specification.version = //p')
  [ "${major%%.*}" -ge 17 ] 2>/dev/null || die "Kafka $version needs Java 17 or newer; found ${major:-unknown}"
}

fetch() {
  if [ -f "$cache_dir/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found; install Maven to resolve the Kafka broker"
  say "resolving Apache Kafka $version from Maven Central into $cache_dir ..."
  mkdir -p "$cache_dir/libs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$cache_dir/libs" \
    || die "mvn could not resolve org.apache.kafka:kafka_2.13:$version (see the output above)"
  touch "$cache_dir/.complete"
}

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

jvm_args() {
  java_args=(-Xms128m -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.log.file="$log_file"
    -cp "$cache_dir/libs/*")
}

start() {
  check_java
  fetch
  if running; then
    say "already running (pid $(cat "$pid_file"))"; echo "127.0.0.1:$port"; return 0
  fi
  if answers; then die "port $port is taken by another program; set KAFKA_PORT"; fi
  mkdir -p "$data_dir"
  jvm_args
  sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$controller_port#g" \
      -e "s#@DATA_DIR@#$data_dir#g" "$here/kafka/server.properties.template" > "$data_dir/server.properties"
  if [ ! -f "$data_dir/logs/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java "${java_args[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    java "${java_args[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$data_dir/server.properties" >"$data_dir/format.log" 2>&1 \
      || die "formatting the broker storage failed; see $data_dir/format.log"
  fi
  nohup java "${java_args[@]}" kafka.Kafka "$data_dir/server.properties" >"$data_dir/stdout.log" 2>&1 &
  echo $! > "$pid_file"
  for _ in $(seq 1 120); do
    if ! running; then die "the broker exited at start; see $log_file and $data_dir/stdout.log"; fi
    if answers && grep -q "Kafka Server started" "$log_file" 2>/dev/null; then
      say "Apache Kafka $version is up (pid $(cat "$pid_file"), data in $data_dir)"
      echo "127.0.0.1:$port"
      return 0
    fi
    sleep 0.5
  done
  die "the broker did not answer on 127.0.0.1:$port within 60 s; see $log_file"
}

stop() {
  if ! running; then say "not running"; rm -f "$pid_file"; return 0; fi
  local pid
  pid=$(cat "$pid_file")
  kill "$pid"
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$pid_file"; say "stopped"; return 0; fi
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pid_file"
  say "killed (did not stop within 30 s)"
}

case "${1:-}" in
  fetch) check_java; fetch ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "127.0.0.1:$port"; else say "not running"; exit 1; fi ;;
  *) echo "usage: deploy/kafka.sh fetch|start|stop|status" >&2; exit 2 ;;
esac
