#!/usr/bin/env bash
# Helpers of the benchmark scripts (sourced by bench/run.sh and bench/profile.sh): a temp dir and a
# snapshot of build/ to run from, free loopback ports,
# clusters of real daemons started in the background, CPU and RSS readings from /proc, jobs run
# through `flint run` with their wall time, CPU time and REST metrics, medians, and a cleanup that
# stops every process the benchmarks started (on success, failure, Ctrl-C or SIGTERM).
#
# Like tests/lib.sh, but its own: benchmarks report figures, they never pass or fail on them.

# shellcheck disable=SC2034  # variables for the scripts that source this file
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/flint-bench.XXXXXX")
BB_OUT=$ROOT/build/bench                # where results, logs and profiles go
FREEPORT=$ROOT/build/tests/freeport

# The benchmarks run a snapshot of build/ (programs, library, examples, bench programs and jobs)
# taken at start, so that a rebuild in the tree during a long run cannot change what is measured
# half-way (nor confuse perf's symbols). The layout is kept, so rpaths ($ORIGIN/../lib) hold.
SNAP=$BENCH_TMP/build
mkdir -p "$SNAP"
for d in bin lib examples bench; do
    [ -d "$ROOT/build/$d" ] && cp -a "$ROOT/build/$d" "$SNAP/" 2>/dev/null
done
rm -rf "$SNAP/bench/profile" "$SNAP/bench/logs"
BIN_DIR=$SNAP/bin
BB=$SNAP/bench                          # bench programs and jobs (built by `make bench`)
EX=$SNAP/examples
FLINT=$BIN_DIR/flint
CLK_TCK=$(getconf CLK_TCK)

declare -A CL_JM_PID=() CL_RPC=() CL_REST=() CL_TMS=() CL_NTM=()   # per cluster name
declare -A TM_LOG=()                                      # a taskmanager's pid -> its log file
TM_WRAPPER=()                                             # a command taskmanagers run under (valgrind)
_PIDS=()                                                  # every daemon started here

log() { echo "bench: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# ---- processes --------------------------------------------------------------------------------

alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}
dead() { ! alive "$1"; }

now_ms() {
    local t=${EPOCHREALTIME//[!0-9]/}
    echo $((t / 1000))
}

# wait_until TIMEOUT_SECONDS CMD...: run CMD every 0.1 s until it succeeds (0) or time is up (1).
wait_until() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    while :; do
        "$@" && return 0
        [ "$(now_ms)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# stop_pids PID...: SIGTERM, SIGKILL after 5 s, and reap.
stop_pids() {
    local pid
    for pid in "$@"; do
        kill -CONT "$pid" 2>/dev/null
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "$@"; do
        wait_until 5 dead "$pid" || kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    return 0
}

_cleanup() {
    local rc=$? left=() pid
    trap - EXIT INT TERM
    for pid in "${_PIDS[@]}"; do alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -gt 0 ] && stop_pids "${left[@]}"
    if [ -n "${FLINT_BENCH_KEEP:-}" ] || [ "$rc" -ne 0 ]; then
        rm -rf "$BB_OUT/logs"
        mkdir -p "$BB_OUT/logs"
        (cd "$BENCH_TMP" && find . -path ./build -prune -o \( -name '*.log' -o -name '*.out' -o -name '*.yaml' -o -name '*.txt' \) \
            -type f -exec cp --parents {} "$BB_OUT/logs/" \;) 2>/dev/null
        log "daemon logs kept in build/bench/logs/"
    fi
    rm -rf "$BENCH_TMP"
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- /proc readings ---------------------------------------------------------------------------

# cpu_ticks PID...: utime + stime of all threads of the processes, in clock ticks (CLK_TCK/s).
cpu_ticks() {
    local pid line sum=0
    for pid in "$@"; do
        read -r line <"/proc/$pid/stat" 2>/dev/null || continue
        line=${line##*) }
        # shellcheck disable=SC2086  # split the fields on purpose: $1 is field 3 (state)
        set -- $line
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}

# rss_kb PID: resident set size (VmRSS) in kB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# ---- clusters ---------------------------------------------------------------------------------

# start_cluster NAME NTMS SLOTS [KEY=VALUE...]: a jobmanager and NTMS taskmanagers with SLOTS
# slots each, on free loopback ports, configured in $BENCH_TMP/NAME/conf; waits until every
# taskmanager registered.
start_cluster() {
    local name=$1 ntms=$2 slots=$3 dir=$BENCH_TMP/$1 rpc rest kv i
    shift 3
    mkdir -p "$dir/conf"
    read -r rpc rest <<<"$("$FREEPORT" 2 | tr '\n' ' ')"
    {
        echo "jobmanager.rpc.address: 127.0.0.1"
        echo "jobmanager.rpc.port: $rpc"
        echo "rest.address: 127.0.0.1"
        echo "rest.port: $rest"
        echo "taskmanager.numberOfTaskSlots: $slots"
        echo "io.tmp.dirs: $dir"
        for kv in "$@"; do echo "${kv%%=*}: ${kv#*=}"; done
    } >"$dir/conf/flint.yaml"
    CL_RPC[$name]=$rpc
    CL_REST[$name]=$rest
    "$BIN_DIR/flint-jobmanager" --config-dir "$dir/conf" --log-file "$dir/jm.log" \
        >>"$dir/jm.out" 2>&1 </dev/null &
    CL_JM_PID[$name]=$!
    _PIDS+=($!)
    wait_until 10 rest_up "$name" || die "cluster $name: no REST answer within 10 s ($(tail -n 2 "$dir/jm.log" 2>/dev/null))"
    CL_TMS[$name]="" CL_NTM[$name]=0
    for ((i = 1; i <= ntms; i++)); do add_tm "$name"; done
    wait_until "${TM_REGISTER_TIMEOUT:-10}" tm_count_is "$name" "$ntms" ||
        die "cluster $name: $(overview "$name" taskmanagers) of $ntms taskmanagers registered ($(tail -n 2 "$dir/tm1.log" 2>/dev/null))"
}

# add_tm NAME: start one more taskmanager in cluster NAME (log tm<k>.log, k counting from 1).
add_tm() {
    local name=$1 dir=$BENCH_TMP/$1 k pid
    k=$((CL_NTM[$name] + 1))
    CL_NTM[$name]=$k
    "${TM_WRAPPER[@]}" "$BIN_DIR/flint-taskmanager" --config-dir "$dir/conf" --log-file "$dir/tm$k.log" \
        >>"$dir/tm$k.out" 2>&1 </dev/null &
    pid=$!
    _PIDS+=("$pid")
    CL_TMS[$name]+="$pid "
    TM_LOG[$pid]=$dir/tm$k.log
}

# forget_tm NAME PID: a taskmanager of cluster NAME that was killed.
forget_tm() {
    local s=" ${CL_TMS[$1]}"
    s=${s// $2 / }
    CL_TMS[$1]=${s# }
}

# stop_cluster NAME
stop_cluster() {
    # shellcheck disable=SC2086
    stop_pids ${CL_TMS[$1]} "${CL_JM_PID[$1]}"
}

# cluster_pids NAME: the jobmanager's and taskmanagers' pids.
cluster_pids() { echo "${CL_JM_PID[$1]} ${CL_TMS[$1]}"; }
tm_pids() { echo "${CL_TMS[$1]}"; }
jm_pid() { echo "${CL_JM_PID[$1]}"; }

rest_get() { curl -sS --max-time 5 "http://127.0.0.1:${CL_REST[$1]}$2" 2>/dev/null; }
overview() { rest_get "$1" /overview | jq -r ".\"$2\"" 2>/dev/null; }
rest_up() { [ -n "$(overview "$1" taskmanagers)" ]; }
tm_count_is() { [ "$(overview "$1" taskmanagers)" = "$2" ]; }
slots_free_is() { [ "$(overview "$1" slots-available)" = "$2" ]; }

# ---- jobs -------------------------------------------------------------------------------------

# run_job CLUSTER [FLINT RUN ARGS...] JOB.so [JOB ARGS...]: run a job attached and wait for it.
# Sets JOB_ID, JOB_MS (wall time from the jobmanager: first deployment to finish), JOB_CPU_S
# (CPU seconds of the jobmanager, all taskmanagers and the client during the run) and JOB_JSON
# (REST /jobs/:id). Returns 1 (with the client's output on stderr) when the job did not finish.
JOB_ID="" JOB_MS=0 JOB_CPU_S=0 JOB_JSON=""
run_job() {
    local cl=$1 out=$BENCH_TMP/client.out tf=$BENCH_TMP/client.time t0 t1 client pids
    shift
    pids=$(cluster_pids "$cl")
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $pids)
    local TIMEFORMAT='%R %U %S'
    { time timeout "${BENCH_JOB_TIMEOUT:-600}" "$FLINT" run -m "127.0.0.1:${CL_RPC[$cl]}" "$@" >"$out" 2>&1; } 2>"$tf"
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $pids)
    client=$(awk '{ printf "%.3f", $2 + $3 }' "$tf")
    JOB_ID=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' "$out")
    if ! grep -q "switched to FINISHED" "$out" || [ -z "$JOB_ID" ]; then
        log "job did not finish: $(tail -n 4 "$out" | tr '\n' ' ')"
        [ -n "$JOB_ID" ] && "$FLINT" cancel -m "127.0.0.1:${CL_RPC[$cl]}" "$JOB_ID" >/dev/null 2>&1
        return 1
    fi
    JOB_JSON=$(rest_get "$cl" "/jobs/$JOB_ID")
    JOB_MS=$(jq -r .duration <<<"$JOB_JSON")
    JOB_CPU_S=$(awk -v a="$t0" -v b="$t1" -v c="$client" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz + c }')
    wait_until 5 slots_free_is "$cl" "$(overview "$cl" slots-total)" || log "slots not free after job $JOB_ID"
    return 0
}

# vertex_metric JQ_SELECT FIELD: a metric of the first vertex of JOB_JSON matching the jq
# condition (".name | test(\"Source\")"), e.g. write-bytes.
vertex_metric() { jq -r "[.vertices[] | select($1)][0].metrics.\"$2\"" <<<"$JOB_JSON"; }

# ---- arithmetic -------------------------------------------------------------------------------

# median VALUE...: the median (mean of the middle two for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) printf "%.6g\n", v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# calc EXPR: awk arithmetic, printed with 6 significant digits.
calc() { awk "BEGIN { printf \"%.6g\n\", $1 }"; }
# icalc EXPR: awk arithmetic, printed as an integer.
icalc() { awk "BEGIN { printf \"%d\n\", $1 }"; }
