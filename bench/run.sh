#!/usr/bin/env bash
# `make bench`: Flint's benchmarks with their same-run baselines. Starts its own clusters on free
# loopback ports, runs every benchmark RUNS times and reports the median, then prints
#   BENCH <name> <value> <unit>       one line per figure
#   BASELINE <name> <value> <unit>    the machine's limits measured in this run
#   RATIO <name> <value>              figure / baseline
# and a readable table. Progress and per-run figures go to stderr. Benchmarks report; they never
# fail on a figure: the exit status is 1 only when a figure could not be measured (a job failed,
# a program is missing), and then the daemons' logs are kept in build/bench/logs/.
#
# Usage: bench/run.sh [-r RUNS] [-s SCALE] [-k PATTERN]...
#   -r RUNS     runs per figure (default 3, or $BENCH_RUNS)
#   -s SCALE    multiply every event count (default 1, or $BENCH_SCALE): 0.2 for a quick look
#   -k PATTERN  only the groups whose name contains PATTERN (repeatable): nexmark (with its
#               baseline nexmark_gen_loop), chain, window_hop, shuffle (with tcp_loopback), latency,
#               footprint, checkpoint, recovery (these two run each case once: their figures are
#               medians over the checkpoints of one run, and RUNS does not apply), kafka (with
#               its baselines kcat_consume and kcat_produce; bench/kafka.sh)
# BENCH_CP_BACKENDS: the state backends of the checkpoint and recovery groups (default
# "hashmap rocksdb").
#
# Per-core figures divide the records by the CPU seconds that every Flint process used during the
# run: utime + stime of the jobmanager and of the taskmanagers (from /proc/<pid>/stat, before and
# after) plus the client's (`flint run`, attached). Wall figures use the job's duration from the
# jobmanager (first deployment to FINISHED). MB = 10^6 bytes; MiB = 2^20.
# shellcheck disable=SC2317  # functions called indirectly
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${BENCH_RUNS:-3}
SCALE=${BENCH_SCALE:-1}
PATTERNS=()
while [ $# -gt 0 ]; do
    case $1 in
        -r) RUNS=$2; shift 2 ;;
        -s) SCALE=$2; shift 2 ;;
        -k) PATTERNS+=("$2"); shift 2 ;;
        *) echo "usage: bench/run.sh [-r RUNS] [-s SCALE] [-k PATTERN]..." >&2; exit 2 ;;
    esac
done

# ---- what to run, and sizes (SCALE 1: each run takes a few seconds on a 2-core machine) -----------
N_NEXMARK=$(icalc "int(10000000 * $SCALE)")     # events per nexmark run (and per generator loop)
N_CHAIN=$(icalc "int(30000000 * $SCALE)")       # rows per chain_stateless run
N_WINDOW_HOP=$(icalc "int(2000000 * $SCALE)")   # events per window_hop run, either backend
N_SHUFFLE_40=$(icalc "int(15000000 * $SCALE)")  # rows per 40-byte shuffle run
N_SHUFFLE_1K=$(icalc "int(5000000 * $SCALE)")   # rows per 1 KiB shuffle run
TCP_SECONDS=$(calc "2 * ($SCALE < 1 ? $SCALE : 1)")
LAT_RATE=100000
LAT_SKIP=100000                                # the first second: start-up, connections
LAT_COUNT=$(icalc "int($LAT_SKIP + 300000 * ($SCALE < 1 ? $SCALE : 1))")
CP_VALUE_BYTES=1000                             # keyed_state: N keys of 1000-byte values
N_CP_100MB=$(icalc "int(100000 * $SCALE)")      # keys for about 100 MB of keyed state
N_CP_1GB=$(icalc "int(1000000 * $SCALE)")       # and for about 1 GB
CP_RATE=1000                                    # updates/s once the state is full
CP_INTERVAL=2s                                  # execution.checkpointing.interval of the checkpoint group
CP_TAKE=3                                       # checkpoints measured per case, once the state is full
RECOVERY_DELAY=200ms                            # restart-strategy.fixed-delay.delay of the recovery group
CP_BACKENDS=${BENCH_CP_BACKENDS:-hashmap rocksdb}   # state backends of the checkpoint and recovery groups
for be in $CP_BACKENDS; do
    case $be in
        hashmap | rocksdb) ;;
        *) echo "bench/run.sh: BENCH_CP_BACKENDS: unknown state backend '$be' (hashmap, rocksdb)" >&2; exit 2 ;;
    esac
done

selected() {
    local p
    [ ${#PATTERNS[@]} -eq 0 ] && return 0
    for p in "${PATTERNS[@]}"; do [[ $1 == *"$p"* ]] && return 0; done
    return 1
}

# ---- results --------------------------------------------------------------------------------------
BENCH_LINES=() BASE_LINES=() RATIO_LINES=() TABLE=() RATIO_Q0="" RATIO_SHUFFLE=""
MISSING=0

# fig KIND NAME VALUE UNIT NOTE: record a figure (KIND BENCH or BASELINE).
fig() {
    local kind=$1 name=$2 value=$3 unit=$4 note=$5
    if [ "$kind" = BENCH ]; then BENCH_LINES+=("BENCH $name $value $unit"); else BASE_LINES+=("BASELINE $name $value $unit"); fi
    TABLE+=("$kind|$name|$value|$unit|$note")
    log "$kind $name $value $unit"
}
# ratio NAME VALUE NOTE: record a ratio (skipped when VALUE is empty).
ratio() {
    [ -n "$2" ] || return 0
    local v
    v=$(awk -v v="$2" 'BEGIN { printf "%.3f", v }')
    RATIO_LINES+=("RATIO $1 $v")
    TABLE+=("RATIO|$1|$v||$3")
}
missing() {
    log "skipped $1: $2"
    TABLE+=("SKIPPED|$1|-||$2")
    MISSING=$((MISSING + 1))
}

fmt_int() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
fmt_1() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }

print_results() {
    local l
    echo
    for l in "${BENCH_LINES[@]}"; do echo "$l"; done
    for l in "${BASE_LINES[@]}"; do echo "$l"; done
    for l in "${RATIO_LINES[@]}"; do echo "$l"; done
    echo
    echo "Flint benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), median of $RUNS runs, scale $SCALE"
    echo "Load average (1 min) at start $LOAD0, at end $(cut -d' ' -f1 /proc/loadavg): wall figures suffer when other work shares the cores; per-core figures much less."
    {
        echo "kind|figure|value|unit|what"
        echo "----|------|-----|----|----"
        for l in "${TABLE[@]}"; do echo "$l"; done
    } | awk -F'|' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR }
        END { for (r = 1; r <= n; r++) {
                  printf "  %-*s  %-*s  %*s  %-*s  %s\n", w[1], cell[r, 1], w[2], cell[r, 2], w[3], cell[r, 3], w[4], cell[r, 4], cell[r, 5] } }'
}

# ---- checks -----------------------------------------------------------------------------------------
for b in flint-jobmanager flint-taskmanager flint; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing: run make bench (or make)"
done
[ -x "$FREEPORT" ] || die "$FREEPORT is missing: run make bench"
if ! command -v jq >/dev/null || ! command -v curl >/dev/null; then
    die "curl and jq are needed (scripts/install-deps.sh)"
fi
if grep -q sanitize "$ROOT/build/.flags" 2>/dev/null; then
    log "warning: build/ is built with SANITIZE=1: the figures mean nothing (rebuild with plain make)"
fi
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
log "runs $RUNS, scale $SCALE, $(nproc) cores, load average $LOAD0, temp dir $BENCH_TMP"

# ---- baselines ----------------------------------------------------------------------------------------
# A baseline run goes right before each run of the benchmark it is compared with, and the ratio is
# the median of the per-pair ratios: these machines are shared, and pairs see the same load.
# Each *_once function appends one run's figure to BASE_VALS (empty on failure).
BASE_VALS=()

tcp_once() {
    local out
    out=$("$BB/tcp_loopback" --seconds "$TCP_SECONDS") || { BASE_VALS+=(""); return; }
    log "tcp_loopback: $out"
    BASE_VALS+=("$(awk '{ print $2 }' <<<"$out")")
}

gen_loop_once() {
    local out
    out=$("$BB/nexmark_gen_loop" --events "$N_NEXMARK") || { BASE_VALS+=(""); return; }
    log "nexmark_gen_loop: $out"
    BASE_VALS+=("$(awk '{ print $2 }' <<<"$out")")
}

# pair_ratio A_VALUES_NAME B_VALUES_NAME: the median of A[i] / B[i] over the pairs where both exist.
pair_ratio() {
    local -n a=$1 b=$2
    local i r=()
    for i in "${!a[@]}"; do
        [ -n "${a[$i]:-}" ] && [ -n "${b[$i]:-}" ] && r+=("$(calc "${a[$i]} / ${b[$i]}")")
    done
    [ ${#r[@]} -gt 0 ] && median "${r[@]}"
}

# nonempty VALUE...: the non-empty arguments.
nonempty() {
    local v
    for v in "$@"; do [ -n "$v" ] && echo "$v"; done
}

# ---- jobs on a cluster -----------------------------------------------------------------------------------
# job_runs CLUSTER RECORDS LABEL [FLINT RUN ARGS...] JOB.so [ARGS...]: RUNS runs; sets PER_CORE, WALL
# (medians, records/s), RUN_PC and RUN_WALL (per run) and RUN_JSONS (each run's REST job JSON).
# With BEFORE_EACH set to a function, calls it before every run (a paired baseline).
PER_CORE="" WALL="" RUN_JSONS=() RUN_PC=() RUN_WALL=() BEFORE_EACH=""
job_runs() {
    local cl=$1 n=$2 label=$3 i p w
    shift 3
    RUN_JSONS=() RUN_PC=() RUN_WALL=()
    for ((i = 1; i <= RUNS; i++)); do
        [ -n "$BEFORE_EACH" ] && "$BEFORE_EACH"
        run_job "$cl" "$@" || return 1
        p=$(calc "$n / $JOB_CPU_S")
        w=$(calc "$n * 1000 / $JOB_MS")
        RUN_PC+=("$p")
        RUN_WALL+=("$w")
        RUN_JSONS+=("$JOB_JSON")
        log "$label run $i/$RUNS: $n records in $JOB_MS ms wall, $JOB_CPU_S CPU s ($(calc "$JOB_CPU_S * 1000 / $JOB_MS") cores busy) -> $(fmt_int "$w") /s wall, $(fmt_int "$p") /s per core"
    done
    PER_CORE=$(median "${RUN_PC[@]}")
    WALL=$(median "${RUN_WALL[@]}")
}

bench_nexmark() {
    local q p so
    for q in q0 q1 q2; do
        so=$EX/nexmark_$q.so
        if [ ! -f "$so" ]; then
            missing "nexmark_$q" "$so is not built yet"
            continue
        fi
        for p in 1 2; do
            # q0 at p=1 runs paired with the generator loop, its baseline.
            BASE_VALS=() BEFORE_EACH=""
            if [ "$q$p" = q01 ]; then
                if [ -x "$BB/nexmark_gen_loop" ]; then
                    BEFORE_EACH=gen_loop_once
                else
                    missing nexmark_gen_loop "build/bench/nexmark_gen_loop is not built"
                fi
            fi
            if job_runs one "$N_NEXMARK" "nexmark_${q}_p$p" -p "$p" "$so" --events "$N_NEXMARK"; then
                fig BENCH "nexmark_${q}_p$p" "$(fmt_int "$PER_CORE")" events/s/core \
                    "Nexmark $q, parallelism $p, blackhole sink ($(fmt_int "$WALL") events/s wall)"
            else
                missing "nexmark_${q}_p$p" "the job failed"
            fi
            if [ -n "$BEFORE_EACH" ]; then
                BEFORE_EACH=""
                mapfile -t vals < <(nonempty "${BASE_VALS[@]}")
                if [ ${#vals[@]} -gt 0 ]; then
                    fig BASELINE nexmark_gen_loop "$(fmt_int "$(median "${vals[@]}")")" events/s/core \
                        "the same generator in a plain loop, bid rows built and discarded (1 thread)"
                    RATIO_Q0=$(pair_ratio RUN_PC BASE_VALS)
                else
                    missing nexmark_gen_loop "nexmark_gen_loop failed"
                fi
            fi
        done
    done
}

bench_chain() {
    if job_runs one "$N_CHAIN" chain_stateless -p 1 "$EX/datagen_pipeline.so" --count "$N_CHAIN"; then
        fig BENCH chain_stateless "$(fmt_int "$PER_CORE")" rows/s/core "datagen -> map -> filter -> blackhole, one chain, one slot"
        fig BENCH datagen_pipeline_1slot "$(fmt_int "$WALL")" rows/s "issue 3: the same job's records/s (wall) on one slot"
    else
        missing chain_stateless "the job failed"
    fi
}

# window_hop: Nexmark q5's inner aggregation (bids per auction, HOP 10 s / 2 s) on each state
# backend, parallelism 1 (bench/jobs/window_hop.c).
bench_window_hop() {
    local so=$BB/jobs/window_hop.so be
    if [ ! -f "$so" ]; then
        missing window_hop "$so is not built yet"
        return
    fi
    local n=$N_WINDOW_HOP
    for be in hashmap rocksdb; do
        if job_runs one "$n" "window_hop_$be" -p 1 -D "state.backend.type=$be" "$so" --events "$n"; then
            fig BENCH "window_hop_$be" "$(fmt_int "$PER_CORE")" events/s/core \
                "HOP(10 s, 2 s) count per auction, $be state backend, p=1 ($(fmt_int "$WALL") events/s wall)"
        else
            missing "window_hop_$be" "the job failed"
        fi
    done
}

# shuffle_one NAME ROWS PAYLOAD_BYTES DESC: sets MBS (MB/s per run)
MBS=()
shuffle_one() {
    local name=$1 n=$2 payload=$3 desc=$4 j bytes ms
    MBS=()
    if ! job_runs two "$n" "$name" -p 2 "$BB/jobs/keyby_count.so" --count "$n" --payload-bytes "$payload"; then
        missing "$name" "the job failed"
        return
    fi
    for j in "${RUN_JSONS[@]}"; do
        bytes=$(jq -r '[.vertices[] | select(.name | test("^Source"))][0].metrics."write-bytes"' <<<"$j")
        ms=$(jq -r .duration <<<"$j")
        MBS+=("$(calc "$bytes / ($ms / 1000) / 1e6")")
    done
    bytes=$(jq -r '[.vertices[] | select(.name | test("^Source"))][0].metrics."write-bytes"' <<<"${RUN_JSONS[0]}")
    fig BENCH "${name}_rows" "$(fmt_int "$WALL")" rows/s "$desc: $(calc "$bytes / $n") bytes per record on the wire"
    fig BENCH "${name}_mb" "$(fmt_1 "$(median "${MBS[@]}")")" MB/s "$desc: serialized bytes through the keyed exchange"
    fig BENCH "${name}_per_core" "$(fmt_int "$PER_CORE")" rows/s/core "$desc: per CPU second of all processes"
}

bench_shuffle() {
    local vals
    shuffle_one shuffle_40b "$N_SHUFFLE_40" 4 "keyBy across 2 TMs (1 slot each, p=2), ~40-byte rows"
    # The 1 KiB runs go paired with tcp_loopback, their baseline.
    BASE_VALS=() BEFORE_EACH=tcp_once
    shuffle_one shuffle_1k "$N_SHUFFLE_1K" 988 "keyBy across 2 TMs (1 slot each, p=2), 1 KiB rows"
    BEFORE_EACH=""
    mapfile -t vals < <(nonempty "${BASE_VALS[@]}")
    if [ ${#vals[@]} -gt 0 ]; then
        fig BASELINE tcp_loopback "$(fmt_1 "$(median "${vals[@]}")")" MB/s "32 KiB write()s -> read()s over one loopback TCP connection"
        RATIO_SHUFFLE=$(pair_ratio MBS BASE_VALS)
    else
        missing tcp_loopback "tcp_loopback failed"
    fi
}

bench_latency() {
    local bt tag i f p50=() p99=() p999=() plan
    for bt in 0 1ms 100ms; do
        tag=${bt%ms}
        # The -D reaches the job graph (the plan shows it), and the task deployment carries it.
        plan=$("$FLINT" info -D "execution.buffer-timeout=$bt" "$BB/jobs/latency.so" --output /dev/null 2>&1)
        if ! grep -q "buffer timeout $tag ms" <<<"$plan"; then
            log "warning: flint info does not show buffer timeout $bt: $(grep -m1 'buffer timeout' <<<"$plan")"
        fi
        p50=() p99=() p999=()
        for ((i = 1; i <= RUNS; i++)); do
            f=$BENCH_TMP/latency-$tag-$i.txt
            if ! run_job two -D "execution.buffer-timeout=$bt" "$BB/jobs/latency.so" --count "$LAT_COUNT" \
                --rate "$LAT_RATE" --skip "$LAT_SKIP" --output "$f" || [ ! -s "$f" ]; then
                missing "latency_bt$tag" "the job failed or wrote no percentiles"
                continue 2
            fi
            log "latency bt=$bt run $i/$RUNS: $(tr '\n' ' ' <"$f")"
            p50+=("$(awk '$1 == "p50" { print $2 / 1000 }' "$f")")
            p99+=("$(awk '$1 == "p99" { print $2 / 1000 }' "$f")")
            p999+=("$(awk '$1 == "p999" { print $2 / 1000 }' "$f")")
        done
        fig BENCH "latency_bt${tag}_p50" "$(fmt_1 "$(median "${p50[@]}")")" us "source -> sink across 2 TMs at $LAT_RATE rows/s, buffer timeout $bt"
        fig BENCH "latency_bt${tag}_p99" "$(fmt_1 "$(median "${p99[@]}")")" us ""
        fig BENCH "latency_bt${tag}_p999" "$(fmt_1 "$(median "${p999[@]}")")" us ""
    done
}

# footprint_idle CLUSTER: RSS of the idle jobmanager and taskmanager of a fresh cluster.
footprint_idle() {
    sleep 1 # let registration and the first heartbeats settle
    fig BENCH footprint_jm_idle "$(fmt_1 "$(calc "$(rss_kb "$(jm_pid "$1")") / 1024")")" MiB "RSS of an idle jobmanager"
    local tm
    tm=$(tm_pids "$1" | awk '{ print $1 }')
    fig BENCH footprint_tm_idle "$(fmt_1 "$(calc "$(rss_kb "$tm") / 1024")")" MiB "RSS of an idle taskmanager (2 slots)"
}

# footprint_q0 CLUSTER: the largest RSS of the taskmanager, sampled every 0.1 s, while q0 runs.
footprint_q0() {
    local so=$EX/nexmark_q0.so tm sampler max_file=$BENCH_TMP/rss_max
    if [ ! -f "$so" ]; then
        missing footprint_tm_q0 "$so is not built yet"
        return
    fi
    tm=$(tm_pids "$1" | awk '{ print $1 }')
    echo 0 >"$max_file"
    (
        max=0
        while :; do
            rss=$(rss_kb "$tm")
            [ -n "$rss" ] && [ "$rss" -gt "$max" ] && max=$rss && echo "$max" >"$max_file"
            sleep 0.1
        done
    ) &
    sampler=$!
    run_job "$1" -p 1 "$so" --events "$N_NEXMARK"
    local rc=$?
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    if [ "$rc" -ne 0 ]; then
        missing footprint_tm_q0 "the q0 job failed"
        return
    fi
    fig BENCH footprint_tm_q0 "$(fmt_1 "$(calc "$(cat "$max_file") / 1024")")" MiB "largest RSS of the taskmanager running q0 (p=1)"
}

# ---- checkpoints and recovery (issue 6) -------------------------------------------------------------------
# Both run bench/jobs/keyed_state.so detached at parallelism 2, one slot per taskmanager, so each
# keyed task aligns barriers from a local and a remote channel: the job fills N keys of
# CP_VALUE_BYTES-byte values, then updates CP_RATE keys per second while checkpoints go on.

# submit_detached CLUSTER [FLINT RUN ARGS...] JOB.so [ARGS...]: sets JOB_ID.
submit_detached() {
    local cl=$1 out=$BENCH_TMP/client.out
    shift
    timeout 60 "$FLINT" run -d -m "127.0.0.1:${CL_RPC[$cl]}" "$@" >"$out" 2>&1
    JOB_ID=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' "$out")
    [ -n "$JOB_ID" ] || log "submission failed: $(tail -n 3 "$out" | tr '\n' ' ')"
    [ -n "$JOB_ID" ]
}

# cancel_job CLUSTER: cancel JOB_ID and wait for its slots.
cancel_job() {
    "$FLINT" cancel -m "127.0.0.1:${CL_RPC[$1]}" "$JOB_ID" >/dev/null 2>&1
    wait_until 30 slots_free_is "$1" "$(overview "$1" slots-total)" || log "slots not free after canceling $JOB_ID"
}

job_field() { rest_get "$1" "/jobs/$JOB_ID" | jq -r "$2" 2>/dev/null; }

# state_full CLUSTER N: the Store vertex has read at least N records (the fill is done).
state_full() {
    local n
    n=$(job_field "$1" '[.vertices[] | select(.name | test("Store"))][0].metrics."read-records" // 0')
    [ "${n:-0}" -ge "$2" ] 2>/dev/null
}

# completed_after CLUSTER T_MS: the completed checkpoints of JOB_ID triggered after T_MS (epoch
# ms), oldest first, as a JSON array.
completed_after() {
    rest_get "$1" "/jobs/$JOB_ID/checkpoints" |
        jq -c --argjson t "$2" '[.history[] | select(.status == "COMPLETED" and .trigger_timestamp > $t)] | sort_by(.id)' 2>/dev/null
}
n_completed_after() { [ "$(completed_after "$1" "$2" | jq length 2>/dev/null)" -ge "$3" ] 2>/dev/null; }

# fill_state CLUSTER NAME KEYS: wait until the job's state holds KEYS values; sets T_FULL (epoch ms).
T_FULL=0
fill_state() {
    local t0
    t0=$(now_ms)
    if ! wait_until 600 state_full "$1" "$3"; then
        missing "$2" "the state did not fill within 600 s (job $(job_field "$1" .state))"
        return 1
    fi
    T_FULL=$(now_ms)
    log "$2: $3 keys of $CP_VALUE_BYTES bytes stored in $(((T_FULL - t0) / 1000)) s"
}

# field_median JSON_ARRAY FIELD: the median of FIELD over the array's objects.
field_median() {
    local vals
    mapfile -t vals < <(jq -r ".[].$2" <<<"$1")
    median "${vals[@]}"
}

# backend_opts BACKEND: the `flint run` options of a backend of CP_BACKENDS (RocksDB: incremental).
backend_opts() {
    case $1 in
        hashmap) echo "-D state.backend.type=hashmap" ;;
        rocksdb) echo "-D state.backend.type=rocksdb -D state.backend.incremental=true" ;;
    esac
}

# checkpoint_one NAME KEYS [FLINT RUN ARGS...]: CP_TAKE checkpoints after the state is full.
checkpoint_one() {
    local name=$1 keys=$2 js
    shift 2
    if ! submit_detached cp -p 2 -D "execution.checkpointing.interval=$CP_INTERVAL" "$@" "$BB/jobs/keyed_state.so" \
        --keys "$keys" --value-bytes "$CP_VALUE_BYTES" --rate "$CP_RATE"; then
        missing "$name" "the job was not submitted"
        return
    fi
    fill_state cp "$name" "$keys" || { cancel_job cp; return; }
    if ! wait_until 300 n_completed_after cp "$T_FULL" "$CP_TAKE"; then
        missing "$name" "fewer than $CP_TAKE checkpoints completed within 300 s after the fill (job $(job_field cp .state))"
        cancel_job cp
        return
    fi
    js=$(completed_after cp "$T_FULL" | jq -c ".[:$CP_TAKE]")
    cancel_job cp
    log "$name: $(jq -c '[.[] | {id, end_to_end_duration, alignment_duration, sync_duration, async_duration, state_size, checkpointed_size}]' <<<"$js")"
    fig BENCH "${name}_duration" "$(fmt_int "$(field_median "$js" end_to_end_duration)")" ms \
        "trigger -> last acknowledgement, median of $CP_TAKE checkpoints once the state is full ($CP_RATE updates/s)"
    fig BENCH "${name}_alignment" "$(fmt_int "$(field_median "$js" alignment_duration)")" ms "barrier alignment, the slowest task (alignment_duration)"
    fig BENCH "${name}_sync" "$(fmt_int "$(field_median "$js" sync_duration)")" ms "synchronous part of the snapshot, the slowest task"
    fig BENCH "${name}_async" "$(fmt_int "$(field_median "$js" async_duration)")" ms "asynchronous part (writing), the slowest task"
    fig BENCH "${name}_state" "$(fmt_1 "$(calc "$(field_median "$js" state_size) / 1e6")")" MB "state_size: the keyed state the checkpoint covers"
    fig BENCH "${name}_written" "$(fmt_1 "$(calc "$(field_median "$js" checkpointed_size) / 1e6")")" MB "checkpointed_size: written by this checkpoint"
    fig BENCH "${name}_written_max" "$(fmt_1 "$(jq 'map(.checkpointed_size) | max / 1e6' <<<"$js")")" MB "the most any of them wrote"
}

bench_checkpoint() {
    local so=$BB/jobs/keyed_state.so be size keys
    if [ ! -f "$so" ]; then
        missing checkpoint "$so is not built yet"
        return
    fi
    for be in $CP_BACKENDS; do
        for size in 100mb 1gb; do
            keys=$N_CP_100MB
            [ "$size" = 1gb ] && keys=$N_CP_1GB
            # shellcheck disable=SC2046  # the options are words
            checkpoint_one "checkpoint_${be}_$size" "$keys" $(backend_opts "$be")
        done
    done
}

# busy_tm CLUSTER: the pid of a taskmanager running a subtask of JOB_ID.
busy_tm() {
    local vid rid pid
    for vid in $(job_field "$1" '.vertices[].id'); do
        for rid in $(rest_get "$1" "/jobs/$JOB_ID/vertices/$vid" | jq -r '.subtasks[] | select(.status == "RUNNING") | ."taskmanager-id"'); do
            for pid in $(tm_pids "$1"); do
                alive "$pid" && grep -qF "as $rid with" "${TM_LOG[$pid]}" && echo "$pid" && return 0
            done
        done
    done
    return 1
}

# all_running_after CLUSTER T_MS: the job and all its vertices RUNNING, the job since after T_MS.
all_running_after() {
    rest_get "$1" "/jobs/$JOB_ID" | jq -e --argjson t "$2" \
        '.state == "RUNNING" and .timestamps.RUNNING > $t and all(.vertices[]; .status == "RUNNING")' >/dev/null 2>&1
}

# recovery_one NAME KEYS [FLINT RUN ARGS...]: kill -9 a busy taskmanager once the state is full
# and a checkpoint of it completed; time the way back.
recovery_one() {
    local name=$1 keys=$2 victim t_kill t_tasks pid js restore lines=()
    shift 2
    if ! submit_detached rec -p 2 -D execution.checkpointing.interval=1s -D restart-strategy.type=fixed-delay \
        -D "restart-strategy.fixed-delay.delay=$RECOVERY_DELAY" "$@" "$BB/jobs/keyed_state.so" \
        --keys "$keys" --value-bytes "$CP_VALUE_BYTES" --rate "$CP_RATE"; then
        missing "$name" "the job was not submitted"
        return
    fi
    fill_state rec "$name" "$keys" || { cancel_job rec; return; }
    if ! wait_until 300 n_completed_after rec "$T_FULL" 1 || ! victim=$(busy_tm rec); then
        missing "$name" "no checkpoint of the full state, or no busy taskmanager (job $(job_field rec .state))"
        cancel_job rec
        return
    fi
    for pid in $(tm_pids rec); do lines+=("$pid:$(wc -l <"${TM_LOG[$pid]}")"); done
    t_kill=$(now_ms)
    kill -9 "$victim"
    wait "$victim" 2>/dev/null
    forget_tm rec "$victim"
    if ! wait_until 120 all_running_after rec "$t_kill"; then
        missing "$name" "not RUNNING again within 120 s (job $(job_field rec .state))"
        cancel_job rec
        return
    fi
    t_tasks=$(now_ms)
    if ! wait_until 120 n_completed_after rec "$t_kill" 1; then
        missing "$name" "no checkpoint within 120 s of the restart"
        cancel_job rec
        return
    fi
    js=$(completed_after rec "$t_kill" | jq -c '.[0]')
    # "restored the state of operator 'Store' from checkpoint N in M ms", in the lines logged since the kill
    restore=$(for l in "${lines[@]}"; do
        [ "${l%%:*}" = "$victim" ] || tail -n +"$((${l#*:} + 1))" "${TM_LOG[${l%%:*}]}"
    done | sed -n "s/.*restored the state of operator 'Store' from checkpoint [0-9]* in \([0-9]*\) ms.*/\1/p" | sort -n | tail -n 1)
    fig BENCH "${name}_job_running" "$(fmt_1 "$(calc "($(job_field rec .timestamps.RUNNING) - $t_kill) / 1000")")" s \
        "kill -9 of a busy taskmanager -> job RUNNING again (restart-strategy fixed-delay, delay $RECOVERY_DELAY)"
    fig BENCH "${name}_tasks_running" "$(fmt_1 "$(calc "($t_tasks - $t_kill) / 1000")")" s \
        "-> every task RUNNING, state restored (REST polled every 0.1 s)"
    fig BENCH "${name}_first_checkpoint" "$(fmt_1 "$(calc "($(jq .latest_ack_timestamp <<<"$js") - $t_kill) / 1000")")" s \
        "-> first checkpoint after the restore completed (interval 1 s)"
    fig BENCH "${name}_restore" "${restore:-nan}" ms "restoring the keyed state of one subtask (the slowest, from its log)"
    fig BENCH "${name}_first_written" "$(fmt_1 "$(calc "$(jq .checkpointed_size <<<"$js") / 1e6")")" MB \
        "checkpointed_size of that first checkpoint"
    cancel_job rec
    add_tm rec
    wait_until 10 tm_count_is rec 3 || log "the replacement taskmanager did not register"
}

bench_recovery() {
    if [ ! -f "$BB/jobs/keyed_state.so" ]; then
        missing recovery "$BB/jobs/keyed_state.so is not built yet"
        return
    fi
    local size keys be
    for size in 100mb 1gb; do
        keys=$N_CP_100MB
        [ "$size" = 1gb ] && keys=$N_CP_1GB
        for be in $CP_BACKENDS; do
            # shellcheck disable=SC2046  # the options are words
            recovery_one "recovery_${be}_$size" "$keys" $(backend_opts "$be")
        done
    done
}

# ---- the run ------------------------------------------------------------------------------------------------
if selected footprint || selected nexmark || selected chain || selected window_hop; then
    log "cluster 'one': a jobmanager and one taskmanager with 2 slots"
    start_cluster one 1 2
    selected footprint && footprint_idle one
    selected footprint && footprint_q0 one
    selected nexmark && bench_nexmark
    selected chain && bench_chain
    selected window_hop && bench_window_hop
    stop_cluster one
fi

if selected shuffle || selected latency; then
    log "cluster 'two': a jobmanager and two taskmanagers with 1 slot each"
    start_cluster two 2 1
    selected shuffle && bench_shuffle
    selected latency && bench_latency
    stop_cluster two
fi

if selected kafka; then
    # shellcheck source=bench/kafka.sh
    . "$(dirname "$0")/kafka.sh"
    bench_kafka
fi

if selected checkpoint; then
    log "cluster 'cp': a jobmanager and two taskmanagers with 1 slot each"
    start_cluster cp 2 1
    bench_checkpoint
    stop_cluster cp
fi

if selected recovery; then
    log "cluster 'rec': a jobmanager and three taskmanagers with 1 slot each (one spare)"
    start_cluster rec 3 1
    bench_recovery
    stop_cluster rec
fi

ratio nexmark_q0_vs_loop "$RATIO_Q0" "q0 (p=1) per core / the generator loop, median of run pairs"
ratio shuffle_1k_vs_tcp "$RATIO_SHUFFLE" "1 KiB shuffle MB/s / one loopback TCP connection's MB/s, median of run pairs"

print_results
[ "$MISSING" -eq 0 ] || log "$MISSING figure(s) could not be measured (see SKIPPED above)"
[ "$MISSING" -eq 0 ]
