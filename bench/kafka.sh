#!/usr/bin/env bash
# Kafka benchmarks: kafka_source and kafka_sink, records/s per core reading from and writing to
# the local Kafka-protocol cluster (build/bin/flint-kafka-local, one broker), next to kcat's own
# consume and produce rates measured in the same run as their baselines (each Flint run is paired
# with a kcat run right before it). Per-core figures divide the records by the CPU seconds of the
# Flint processes (jobmanager, taskmanager, client) or of kcat; the broker's CPU is left out of
# both. Prints BENCH / BASELINE / RATIO lines as bench/run.sh does (meant to join it as the
# groups kafka_source and kafka_sink).
#
# Usage: bench/kafka.sh [-r RUNS] [-s SCALE]     (RUNS default 3; SCALE multiplies the 1M records)
# shellcheck disable=SC2317
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${BENCH_RUNS:-3}
SCALE=${BENCH_SCALE:-1}
while [ $# -gt 0 ]; do
    case $1 in
        -r) RUNS=$2; shift 2 ;;
        -s) SCALE=$2; shift 2 ;;
        *) echo "usage: bench/kafka.sh [-r RUNS] [-s SCALE]" >&2; exit 2 ;;
    esac
done
N=$(icalc "int(1000000 * $SCALE)")
JOB=$BB/jobs/kafka_io.so
[ -x "$BIN_DIR/flint-kafka-local" ] || die "$BIN_DIR/flint-kafka-local is missing: run make"
[ -f "$JOB" ] || die "$JOB is missing: run make bench-build"
command -v kcat >/dev/null || die "kcat is not installed (scripts/install-deps.sh)"

"$BIN_DIR/flint-kafka-local" --brokers 1 --topic in:4 >"$BENCH_TMP/kafka.out" 2>"$BENCH_TMP/kafka.log" </dev/null &
_PIDS+=($!)
kafka_up() { [[ $(head -n 1 "$BENCH_TMP/kafka.out" 2>/dev/null) == *:* ]]; }
wait_until 10 kafka_up || die "flint-kafka-local did not start: $(cat "$BENCH_TMP/kafka.log")"
B=$(head -n 1 "$BENCH_TMP/kafka.out")
KCAT=(kcat -b "$B" -X log_level=0)

# Records as datagen's rows print in the text format: "<id> <10 characters>".
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "%d abcdefghij\n", i }' >"$BENCH_TMP/records.txt"

# kcat_time CMD...: run it; KCAT_WALL and KCAT_CPU in seconds.
kcat_time() {
    local TIMEFORMAT='%R %U %S' t
    t=$({ time "$@" >/dev/null 2>&1; } 2>&1)
    KCAT_WALL=$(awk '{ print $1 }' <<<"$t")
    KCAT_CPU=$(awk '{ printf "%.3f", $2 + $3 }' <<<"$t")
}

# The input topic, written by kcat (its produce rate is measured below, per run).
"${KCAT[@]}" -P -t in <"$BENCH_TMP/records.txt"
start_cluster k 1 2

SRC_PC=() SRC_BASE=() SINK_PC=() SINK_BASE=() SRC_WALL=() SINK_WALL=() KC_WALL=() KP_WALL=()
for ((i = 1; i <= RUNS; i++)); do
    kcat_time "${KCAT[@]}" -C -t in -e -q -o beginning
    KC_WALL+=("$(calc "$N / $KCAT_WALL")")
    SRC_BASE+=("$(calc "$N / $KCAT_CPU")")
    run_job k -p 1 "$JOB" --read --bootstrap "$B" --topic in || die "the read job failed"
    SRC_PC+=("$(calc "$N / $JOB_CPU_S")")
    SRC_WALL+=("$(calc "$N * 1000 / $JOB_MS")")
    log "kafka_source run $i: kcat consumes $(calc "$N / $KCAT_WALL")/s wall ($KCAT_CPU CPU s), Flint reads in $JOB_MS ms ($JOB_CPU_S CPU s)"

    kcat_time "${KCAT[@]}" -P -t "kcat-$i" <"$BENCH_TMP/records.txt"
    KP_WALL+=("$(calc "$N / $KCAT_WALL")")
    SINK_BASE+=("$(calc "$N / $KCAT_CPU")")
    run_job k -p 1 "$JOB" --write "$N" --bootstrap "$B" --topic "flint-$i" || die "the write job failed"
    SINK_PC+=("$(calc "$N / $JOB_CPU_S")")
    SINK_WALL+=("$(calc "$N * 1000 / $JOB_MS")")
    log "kafka_sink run $i: kcat produces $(calc "$N / $KCAT_WALL")/s wall ($KCAT_CPU CPU s), Flint writes in $JOB_MS ms ($JOB_CPU_S CPU s)"
done
stop_cluster k

pair() {
    local -n a=$1 b=$2
    local i r=()
    for i in "${!a[@]}"; do r+=("$(calc "${a[$i]} / ${b[$i]}")"); done
    median "${r[@]}"
}
echo "BENCH kafka_source $(median "${SRC_PC[@]}") records/s/core"
echo "BENCH kafka_sink $(median "${SINK_PC[@]}") records/s/core"
echo "BASELINE kcat_consume $(median "${SRC_BASE[@]}") records/s/core"
echo "BASELINE kcat_produce $(median "${SINK_BASE[@]}") records/s/core"
echo "RATIO kafka_source $(pair SRC_PC SRC_BASE)"
echo "RATIO kafka_sink $(pair SINK_PC SINK_BASE)"
echo
echo "Kafka, $N records of about 17 bytes, one broker (flint-kafka-local), parallelism 1, median of $RUNS runs:"
echo "  kafka_source  $(median "${SRC_PC[@]}") records/s/core, $(median "${SRC_WALL[@]}") records/s wall (bounded source -> blackhole)"
echo "  kcat -C       $(median "${SRC_BASE[@]}") records/s/core, $(median "${KC_WALL[@]}") records/s wall"
echo "  kafka_sink    $(median "${SINK_PC[@]}") records/s/core, $(median "${SINK_WALL[@]}") records/s wall (datagen -> sink, at least once)"
echo "  kcat -P       $(median "${SINK_BASE[@]}") records/s/core, $(median "${KP_WALL[@]}") records/s wall"
