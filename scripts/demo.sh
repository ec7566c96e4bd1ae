#!/usr/bin/env bash
# `make demo`: start a local cluster (one jobmanager, two taskmanagers) from conf/, run WordCount
# on examples/data/streams.txt at parallelism 2, and show the result and the cluster's status.
# The cluster keeps running; scripts/stop-cluster.sh stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
FLINT=build/bin/flint

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

out=build/demo-output/wordcount
rm -rf "$out"
echo
echo "Running WordCount on examples/data/streams.txt:"
$FLINT run -p 2 build/examples/wordcount.so --input examples/data/streams.txt --output "$out"
echo
echo "Most frequent words (word count), from $out/part-*:"
cat "$out"/part-* | awk '{ if ($2 + 0 > m[$1]) m[$1] = $2 + 0 } END { for (w in m) print m[w], w }' |
  sort -rn | head -n 10 | awk '{ printf "  %-12s %s\n", $2, $1 }'
echo
$FLINT overview
$FLINT list
echo
echo "REST:   curl http://localhost:$rest_port/overview"
curl -s "http://localhost:$rest_port/overview"; echo
echo "Web UI: http://localhost:$rest_port/"
echo "Logs:   log/   Stop: scripts/stop-cluster.sh"
