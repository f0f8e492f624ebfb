#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft: one process is broker and controller) on 127.0.0.1,
# for the tests and for local runs. Needs only Java 17 and Maven: Kafka's jars are
# resolved from Maven Central once and cached outside the repository.
#
#   deploy/kafka.sh [start]   resolve (first time), format (first time), start, wait until
#                             the broker answers; prints KAFKA_BOOTSTRAP_SERVERS=... on
#                             stdout (everything else goes to stderr). Idempotent.
#   deploy/kafka.sh stop      stop the broker this script started (pid file)
#   deploy/kafka.sh status    exit 0 when a broker answers on the port, 3 otherwise
#   deploy/kafka.sh clean     stop, then delete this port's data directory (topics, ids)
#
# Settings (environment):
#   KAFKA_VERSION            org.apache.kafka:kafka_2.13 version          (4.1.1)
#   KAFKA_PORT               PLAINTEXT listener, the bootstrap address      (19092)
#   KAFKA_CONTROLLER_PORT    KRaft controller listener                      (19093)
#   KAFKA_HEAP_OPTS          JVM heap                                       (-Xms128m -Xmx512m)
#   KAFKA_START_TIMEOUT      seconds to wait for the broker                 (120)
#   BACKORDERS_CACHE         cache root                          ($HOME/.cache/backorders)
#
# Layout under $BACKORDERS_CACHE/kafka/:
#   <version>/pom.xml, <version>/libs/*.jar   the runtime classpath (reused when complete)
#   m2/                                        Maven's local repository for the resolve
#   data/<port>/                               cluster.id, server.properties, log4j2.properties,
#                                              logs/ (KRaft metadata and topic data),
#                                              kafka.log (the broker's log), kafka.pid
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
SCALA_VERSION="2.13"
# Kafka 4.x logs through SLF4J 1.7 and ships log4j2 (api + core) without a binding in its
# POM (the distribution adds one): pin a matching log4j2 set, binding included.
LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-2.24.3}"
DEPENDENCY_PLUGIN_VERSION="3.8.1"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
HOST="127.0.0.1"

CACHE="${BACKORDERS_CACHE:-$HOME/.cache/backorders}"
KAFKA_HOME="$CACHE/kafka"
DIST="$KAFKA_HOME/$KAFKA_VERSION"
LIBS="$DIST/libs"
M2_REPO="${BACKORDERS_MAVEN_REPO:-$KAFKA_HOME/m2}"
DATA="$KAFKA_HOME/data/$KAFKA_PORT"
PIDFILE="$DATA/kafka.pid"
LOGFILE="$DATA/kafka.log"
PROPS="$DATA/server.properties"
LOG4J_CONF="$DATA/log4j2.properties"

say() { echo "kafka.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

env_line() { echo "KAFKA_BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT"; }

# Does a Kafka broker answer on the port? A Metadata v4 request (supported from Kafka 1.0
# through 4.x) must list at least one broker. Stdlib Python only: works before the venv.
probe() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$HOST" "$KAFKA_PORT" <<'PY' >/dev/null 2>&1
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])
client = b"backorders-probe"
# header v1: api_key 3 (Metadata), version 4, correlation id, client id;
# body: topics = [] (none), allow_auto_topic_creation = false
request = struct.pack(">hhih", 3, 4, 42, len(client)) + client + struct.pack(">ib", 0, 0)
with socket.create_connection((host, port), timeout=3) as sock:
    sock.settimeout(3)
    sock.sendall(struct.pack(">i", len(request)) + request)

    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                sys.exit(1)
            buf += chunk
        return buf

    (size,) = struct.unpack(">i", read(4))
    data = read(size)
correlation, _throttle, brokers = struct.unpack_from(">iii", data, 0)
sys.exit(0 if correlation == 42 and brokers > 0 else 1)
PY
    else
        # No Python: the port accepts connections and our broker logged its start.
        (exec 3<>"/dev/tcp/$HOST/$KAFKA_PORT") 2>/dev/null \
            && [[ -f "$LOGFILE" ]] && grep -q 'Kafka Server started' "$LOGFILE"
    fi
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# The pid in the pid file, when that process is alive and is our broker.
our_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS" || return 1
    echo "$pid"
}

need_tools() {
    local missing=()
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    ((${#missing[@]})) || return 0
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]} (Debian packages)"
        apt-get update -qq >&2 || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
            || die "could not install ${missing[*]}"
    else
        die "needs ${missing[*]} (Java 17 and Maven) on PATH"
    fi
}

# Kafka's runtime classpath from Maven Central, into $LIBS (once; a marker says complete).
resolve() {
    if [[ -f "$LIBS/.complete" ]]; then
        return 0
    fi
    need_tools
    say "resolving org.apache.kafka:kafka_$SCALA_VERSION:$KAFKA_VERSION from Maven Central into $LIBS"
    mkdir -p "$DIST"
    cat >"$DIST/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/kafka.sh: only used to resolve Kafka's runtime classpath. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.backorders</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- Logging: log4j2 with its SLF4J 1.x binding (Kafka logs through slf4j-api 1.7). -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    local tmp="$DIST/libs.tmp.$$"
    rm -rf "$tmp"
    if ! mvn -B -q --no-transfer-progress -Dstyle.color=never \
        -f "$DIST/pom.xml" -Dmaven.repo.local="$M2_REPO" \
        "org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN_VERSION:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$DIST/mvn.log" 2>&1; then
        tail -n 40 "$DIST/mvn.log" >&2
        rm -rf "$tmp"
        die "mvn could not resolve kafka_$SCALA_VERSION:$KAFKA_VERSION (is Maven Central reachable?)"
    fi
    ls "$tmp"/kafka_"$SCALA_VERSION"-"$KAFKA_VERSION".jar >/dev/null 2>&1 \
        || { rm -rf "$tmp"; die "resolved classpath has no kafka_$SCALA_VERSION-$KAFKA_VERSION.jar"; }
    if ls "$tmp"/slf4j-api-2.* >/dev/null 2>&1; then
        say "warning: slf4j-api 2.x on the classpath: log4j-slf4j-impl will not bind (use log4j-slf4j2-impl)"
    fi
    touch "$tmp/.complete"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    say "resolved $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

write_config() {
    mkdir -p "$DATA/logs"
    cat >"$PROPS" <<EOF
# Generated by deploy/kafka.sh on each start: a single KRaft node, broker and controller.
node.id=1
process.roles=broker,controller
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
log.dirs=$DATA/logs
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
# After a kill -9 the restarted node waits for its old registration's session to expire
# (9 s by default): a short session for this one-process, local node.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
# A test broker: keep a day of data, in small segments.
log.retention.hours=24
log.segment.bytes=16777216
EOF
    cat >"$LOG4J_CONF" <<'EOF'
# Generated by deploy/kafka.sh: the broker logs to stdout, which goes to kafka.log.
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
# The full configuration dump at each start is noise here.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
}

# The JVM command line, as an array (the classpath wildcard must reach java unexpanded).
java_cmd() {
    local heap
    read -r -a heap <<<"$KAFKA_HEAP_OPTS"
    JAVA=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
        -Djava.awt.headless=true "-Dlog4j2.configurationFile=$LOG4J_CONF" -cp "$LIBS/*")
}

# Format the KRaft storage once, with a cluster id generated once and kept in the data dir.
format_storage() {
    if [[ -f "$DATA/logs/meta.properties" ]]; then
        return 0
    fi
    local cluster_id
    if [[ -s "$DATA/cluster.id" ]]; then
        cluster_id="$(cat "$DATA/cluster.id")"
    else
        cluster_id="$(java -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J_CONF" \
            kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
        [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid gave '$cluster_id'"
        echo "$cluster_id" >"$DATA/cluster.id"
    fi
    say "formatting KRaft storage in $DATA/logs (cluster id $cluster_id)"
    java_cmd
    if ! "${JAVA[@]}" kafka.tools.StorageTool format --ignore-formatted \
        -t "$cluster_id" -c "$PROPS" >"$DATA/format.log" 2>&1; then
        tail -n 30 "$DATA/format.log" >&2
        die "formatting the KRaft storage failed (see $DATA/format.log)"
    fi
}

wait_ready() {
    local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while ! probe; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "the broker exited; last lines of $LOGFILE:"
            tail -n 40 "$LOGFILE" >&2 || true
            rm -f "$PIDFILE"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            say "no answer on $HOST:$KAFKA_PORT after ${KAFKA_START_TIMEOUT}s; last lines of $LOGFILE:"
            tail -n 40 "$LOGFILE" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
}

start() {
    if probe; then
        say "a broker already answers on $HOST:$KAFKA_PORT"
        env_line
        return 0
    fi
    mkdir -p "$DATA"
    # One start at a time per port. The lock's descriptor is closed for the broker itself.
    exec 9>"$DATA/.start.lock"
    flock -w "$((KAFKA_START_TIMEOUT + 60))" 9 || die "another start holds $DATA/.start.lock"
    local pid
    if pid="$(our_pid)"; then
        say "broker pid $pid is starting; waiting for it"
        wait_ready "$pid"
        say "broker pid $pid answers on $HOST:$KAFKA_PORT"
        env_line
        return 0
    fi
    if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
        die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is taken by something that is not a broker of ours (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
    fi
    resolve
    write_config
    format_storage
    local started=$SECONDS
    say "starting Kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (log: $LOGFILE)"
    java_cmd
    setsid nohup "${JAVA[@]}" kafka.Kafka "$PROPS" </dev/null >"$LOGFILE" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
    wait_ready "$pid"
    say "broker pid $pid answers on $HOST:$KAFKA_PORT after $((SECONDS - started))s"
    env_line
}

stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PIDFILE"
        if probe; then
            say "a broker answers on $HOST:$KAFKA_PORT but was not started by this script (no live pid in $PIDFILE)"
            return 1
        fi
        say "not running"
        return 0
    fi
    say "stopping broker pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "still running after 60s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$PIDFILE"
    say "stopped"
}

status() {
    local pid=""
    pid="$(our_pid)" || true
    if probe; then
        say "a broker answers on $HOST:$KAFKA_PORT${pid:+ (pid $pid)}"
        env_line
        return 0
    fi
    if [[ -n "$pid" ]]; then
        say "broker pid $pid is running but does not answer on $HOST:$KAFKA_PORT yet"
    else
        say "not running on $HOST:$KAFKA_PORT"
    fi
    return 3
}

clean() {
    stop
    say "removing $DATA"
    rm -rf "$DATA"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    clean) clean ;;
    *) echo "usage: $0 [start|stop|status|clean]" >&2; exit 2 ;;
esac
