#!/usr/bin/env bash
# `make demo`: start a local cluster (one jobmanager, two taskmanagers) from conf/, run WordCount
# on examples/data/streams.txt at parallelism 2, and show the result and the cluster's status.
# The cluster keeps running; scripts/stop-cluster.sh stops it.
#
# `make demo-kafka` (scripts/demo.sh --kafka): the same with Kafka in between: a local
# Kafka-protocol cluster (scripts/kafka-local.sh), the text's lines written to topic `lines` with
# kcat, examples/kafka_wordcount.c counting words per 10 s event-time window into topic `counts`
# as JSON, read back with kcat. scripts/kafka-local.sh stop stops the Kafka cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
FLINT=build/bin/flint
KAFKA=false
case ${1:-} in
  --kafka) KAFKA=true ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--kafka]" >&2; exit 2 ;;
esac

wordcount_files() {
  local out=build/demo-output/wordcount
  rm -rf "$out"
  echo
  echo "Running WordCount on examples/data/streams.txt:"
  $FLINT run -p 2 build/examples/wordcount.so --input examples/data/streams.txt --output "$out"
  echo
  echo "Most frequent words (word count), from $out/part-*:"
  cat "$out"/part-* | awk '{ if ($2 + 0 > m[$1]) m[$1] = $2 + 0 } END { for (w in m) print m[w], w }' |
    sort -rn | head -n 10 | awk '{ printf "  %-12s %s\n", $2, $1 }'
}

wordcount_kafka() {
  local b
  scripts/kafka-local.sh stop >/dev/null 2>&1 || true
  b=$(scripts/kafka-local.sh start --topic lines:2 --topic counts:2)
  echo
  echo "Kafka (flint-kafka-local) at $b; writing examples/data/streams.txt to topic 'lines' with kcat"
  kcat -P -b "$b" -X log_level=0 -t lines <examples/data/streams.txt
  echo "Running Kafka WordCount (lines -> 10 s event-time windows -> topic 'counts'):"
  $FLINT run -p 2 build/examples/kafka_wordcount.so --bootstrap-servers "$b" --input-topic lines \
    --output-topic counts --bounded
  echo
  echo "Most frequent words, from the JSON records of topic 'counts' (kcat -C -t counts):"
  kcat -C -b "$b" -X log_level=0 -t counts -e -q -f '%s\n' | jq -r '"\(.count) \(.word)"' |
    awk '{ c[$2] += $1 } END { for (w in c) print c[w], w }' | sort -k1,1rn -k2 | head -n 10 |
    awk '{ printf "  %-12s %s\n", $2, $1 }'
  echo "  a record: $(kcat -C -b "$b" -X log_level=0 -t counts -e -q -c 1 -f 'key %k, value %s')"
}

# A cluster left from an earlier demo would hold the ports.
scripts/stop-cluster.sh >/dev/null 2>&1 || true

scripts/jobmanager.sh start
scripts/taskmanager.sh start
scripts/taskmanager.sh start

rest_port=$($FLINT config rest.port)
for _ in $(seq 1 100); do
  n=$(curl -sf "http://localhost:$rest_port/overview" | sed -n 's/.*"taskmanagers":\([0-9]*\).*/\1/p' || true)
  [ "${n:-0}" -ge 2 ] && break
  sleep 0.1
done

if $KAFKA; then wordcount_kafka; else wordcount_files; fi
echo
$FLINT overview
$FLINT list
echo
echo "REST:   curl http://localhost:$rest_port/overview"
curl -s "http://localhost:$rest_port/overview"; echo
echo "Web UI: http://localhost:$rest_port/"
echo "Logs:   log/   Stop: scripts/stop-cluster.sh"
if $KAFKA; then echo "Kafka:  $(scripts/kafka-local.sh bootstrap)   Stop: scripts/kafka-local.sh stop"; fi
