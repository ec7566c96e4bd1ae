# shellcheck shell=bash
# The `kafka` group of bench/run.sh (sourced by it; run it alone with `bench/run.sh -k kafka`):
# kafka_source and kafka_sink, records/s per core reading from and writing to the local
# Kafka-protocol cluster (build/bin/flint-kafka-local, one broker, the input topic with 4
# partitions), jobs of bench/jobs/kafka_io.c at parallelism 1. Each Flint run goes right after a
# kcat run over the same records, its baseline (kcat_consume, kcat_produce), and the ratios are
# medians of the run pairs. Per-core figures divide the records by the CPU seconds of the Flint
# processes (jobmanager, taskmanager, client) or of kcat; the broker's CPU is left out of both.
# Uses run.sh's helpers (job_runs, fig, ratio, missing, pair_ratio, nonempty) and SCALE.

N_KAFKA=$(icalc "int(1000000 * $SCALE)")   # records per run, about 17 bytes each
KAFKA_RECORDS=$BENCH_TMP/kafka-records.txt
KCAT=() KCAT_RUN=0

# kcat_once INPUT ARGS...: one timed kcat run (stdin from INPUT); appends its records/s per CPU
# second to BASE_VALS (empty on failure).
kcat_once() {
    local input=$1 TIMEFORMAT='%R %U %S' t
    shift
    if ! t=$({ time "${KCAT[@]}" "$@" <"$input" >/dev/null 2>&1; } 2>&1); then
        BASE_VALS+=("")
        return
    fi
    log "kcat $1: $N_KAFKA records in $(awk '{ printf "%s s wall, %.3f CPU s", $1, $2 + $3 }' <<<"$t")"
    BASE_VALS+=("$(awk -v n="$N_KAFKA" '{ printf "%.6g", n / ($2 + $3) }' <<<"$t")")
}
kcat_consume_once() { kcat_once /dev/null -C -t in -e -q -o beginning; }
kcat_produce_once() {
    KCAT_RUN=$((KCAT_RUN + 1))
    kcat_once "$KAFKA_RECORDS" -P -t "kcat-$KCAT_RUN"
}

# kafka_pair NAME BASELINE_FN BASELINE_NAME DESC KAFKA_IO_ARGS...: RUNS runs of kafka_io.so, each
# after a run of BASELINE_FN.
kafka_pair() {
    local name=$1 base_fn=$2 base=$3 desc=$4 vals
    shift 4
    BASE_VALS=() BEFORE_EACH=$base_fn
    if job_runs kafka "$N_KAFKA" "$name" -p 1 "$BB/jobs/kafka_io.so" "$@"; then
        fig BENCH "$name" "$(fmt_int "$PER_CORE")" records/s/core "$desc ($(fmt_int "$WALL") records/s wall)"
        ratio "${name}_vs_kcat" "$(pair_ratio RUN_PC BASE_VALS)" "$name per core / $base per core, median of run pairs"
    else
        missing "$name" "the job failed"
    fi
    BEFORE_EACH=""
    mapfile -t vals < <(nonempty "${BASE_VALS[@]}")
    if [ ${#vals[@]} -gt 0 ]; then
        fig BASELINE "$base" "$(fmt_int "$(median "${vals[@]}")")" records/s/core "the same records through kcat, per CPU second of kcat"
    else
        missing "$base" "kcat failed"
    fi
}

kafka_up() { [[ $(head -n 1 "$BENCH_TMP/kafka.out" 2>/dev/null) == *:* ]]; }

bench_kafka() {
    local kpid b
    if [ ! -f "$BB/jobs/kafka_io.so" ] || [ ! -x "$BIN_DIR/flint-kafka-local" ] || ! command -v kcat >/dev/null; then
        missing kafka "needs build/bench/jobs/kafka_io.so, build/bin/flint-kafka-local (make bench-build) and kcat (scripts/install-deps.sh)"
        return
    fi
    "$BIN_DIR/flint-kafka-local" --brokers 1 --topic in:4 >"$BENCH_TMP/kafka.out" 2>"$BENCH_TMP/kafka.log" </dev/null &
    kpid=$!
    _PIDS+=("$kpid")
    if ! wait_until 10 kafka_up; then
        missing kafka "flint-kafka-local did not start: $(head -c 300 "$BENCH_TMP/kafka.log")"
        return
    fi
    b=$(head -n 1 "$BENCH_TMP/kafka.out")
    KCAT=(kcat -b "$b" -X log_level=0)
    # Records as datagen's rows print in the text format: "<id> <10 characters>".
    awk -v n="$N_KAFKA" 'BEGIN { for (i = 0; i < n; i++) printf "%d abcdefghij\n", i }' >"$KAFKA_RECORDS"
    "${KCAT[@]}" -P -t in <"$KAFKA_RECORDS"
    log "cluster 'kafka': a jobmanager and one taskmanager with 2 slots, flint-kafka-local at $b"
    start_cluster kafka 1 2
    kafka_pair kafka_source kcat_consume_once kcat_consume "bounded Kafka source (text) -> blackhole, p=1" \
        --read --bootstrap "$b" --topic in
    kafka_pair kafka_sink kcat_produce_once kcat_produce "datagen -> Kafka sink (text, at least once), p=1" \
        --write "$N_KAFKA" --bootstrap "$b" --topic flint-out
    stop_cluster kafka
    stop_pids "$kpid"
}
