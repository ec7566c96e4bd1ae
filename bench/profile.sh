#!/usr/bin/env bash
# Profile a taskmanager while it runs one of the benchmark jobs, on a cluster of its own (free
# loopback ports), with perf or callgrind:
#
#   perf (default): the job runs unbounded; `perf record -e cpu-clock` (a software event, so it
#   works in VMs without hardware counters) samples the taskmanager for SECONDS, the job is
#   canceled, and the hottest symbols are printed per thread (task-<n> threads run subtasks; the
#   main thread runs the event loop: RPC, network I/O, timers).
#
#   --callgrind N: the taskmanager runs under valgrind --tool=callgrind and the job processes N
#   records (events for q0-q2); prints instructions per record (the whole taskmanager process,
#   start-up included: use N >= 500000) and the functions with the most instructions. Instruction
#   counts do not depend on what else runs on the machine, unlike times.
#
# Output stays in build/bench/profile/ (<job>.perf.data, <job>.callgrind.<pid>, <job>.top.txt).
#
# Usage: bench/profile.sh [chain|q0|q1|q2|shuffle|shuffle1k|window_hop|window_hop_rocksdb] [SECONDS] [-g] [-p N]
#            [--callgrind N]
#   -g   perf: record call graphs too (DWARF unwinding; perf report then shows callers)
#   -p N parallelism N (chain, q0-q2: one taskmanager with N slots; default 1)
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
    echo "usage: bench/profile.sh [chain|q0|q1|q2|shuffle|shuffle1k|window_hop|window_hop_rocksdb] [SECONDS] [-g] [-p N] [--callgrind N]" >&2
    exit 2
}
WHAT=chain SECONDS_=5 CALLGRAPH=() P=1 CG_N=""
while [ $# -gt 0 ]; do
    a=$1
    shift
    case $a in
        -g) CALLGRAPH=(--call-graph "dwarf,16384") ;;
        -p) P=${1:-}; shift ;;
        --callgrind) CG_N=${1:-}; shift ;;
        [0-9]*) SECONDS_=$a ;;
        chain | q0 | q1 | q2 | shuffle | shuffle1k | window_hop | window_hop_rocksdb) WHAT=$a ;;
        *) usage ;;
    esac
done
[[ $P =~ ^[0-9]+$ ]] || usage
OUT=$BB_OUT/profile
mkdir -p "$OUT"

N=${CG_N:-100000000000}
[ -n "$CG_N" ] || [ "$WHAT" = chain ] || [ "$WHAT" = shuffle ] || [ "$WHAT" = shuffle1k ] || N=-1
case $WHAT in
    chain) NTMS=1 SLOTS=$P JOB=(-p "$P" "$EX/datagen_pipeline.so" --count "$N") ;;
    q0 | q1 | q2) NTMS=1 SLOTS=$P JOB=(-p "$P" "$EX/nexmark_$WHAT.so" --events "$N") ;;
    shuffle) NTMS=2 SLOTS=1 JOB=(-p 2 "$BB/jobs/keyby_count.so" --count "$N") ;;
    shuffle1k) NTMS=2 SLOTS=1 JOB=(-p 2 "$BB/jobs/keyby_count.so" --count "$N" --payload-bytes 988) ;;
    window_hop*) NTMS=1 SLOTS=$P JOB=(-p "$P" -D "state.backend.type=$([ "$WHAT" = window_hop ] && echo hashmap || echo rocksdb)"
        "$BB/jobs/window_hop.so" --events "$N") ;;
esac

if [ -n "$CG_N" ]; then
    command -v valgrind >/dev/null || die "valgrind is not installed"
    rm -f "$OUT/$WHAT.callgrind."*
    TM_WRAPPER=(valgrind --tool=callgrind "--callgrind-out-file=$OUT/$WHAT.callgrind.%p")
    TM_REGISTER_TIMEOUT=60
    start_cluster prof "$NTMS" "$SLOTS" heartbeat.timeout=600s
    log "callgrind: $WHAT, $CG_N records: ${JOB[*]}"
    run_job prof "${JOB[@]}" || die "the job failed"
    # shellcheck disable=SC2046
    stop_pids $(tm_pids prof)
    CL_TMS[prof]=""
    sum=0
    for f in "$OUT/$WHAT.callgrind."*; do
        total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
        sum=$((sum + total))
        echo "$(basename "$f"): $total instructions"
        callgrind_annotate "$f" 2>/dev/null | awk '/file:function/ { on = 1; getline; next } on && NF' |
            head -n 30 | sed -E 's| \[[^]]*\]$||; s|/work/[^ ]*/(common\|taskmanager\|examples\|bench)/|\1/|' | cut -c1-150
    done >"$OUT/$WHAT.functions.txt"
    {
        echo "$WHAT: $(calc "$sum / $CG_N") instructions per record in all taskmanagers ($sum for $CG_N records, start-up included)"
        cat "$OUT/$WHAT.functions.txt"
    } >"$OUT/$WHAT.top.txt"
    rm -f "$OUT/$WHAT.functions.txt"
    cat "$OUT/$WHAT.top.txt"
    log "full report: callgrind_annotate [--inclusive=yes] build/bench/profile/$WHAT.callgrind.<pid>"
    stop_cluster prof
    exit 0
fi

command -v perf >/dev/null || die "perf is not installed (linux-perf); try --callgrind N"
start_cluster prof "$NTMS" "$SLOTS"
out=$("$FLINT" run -d -m "127.0.0.1:${CL_RPC[prof]}" "${JOB[@]}" 2>&1)
jid=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
[ -n "$jid" ] || die "submission failed: $out"
job_running() { [ "$(rest_get prof "/jobs/$jid" | jq -r .state)" = RUNNING ]; }
wait_until 10 job_running || die "job $jid is not RUNNING"
sleep 1
tm=$(tm_pids prof | awk '{ print $1 }')
log "perf record of taskmanager $tm ($WHAT, p=$P) for $SECONDS_ s"
perf record -e cpu-clock -F 1999 "${CALLGRAPH[@]}" -p "$tm" -o "$OUT/$WHAT.perf.data" -- sleep "$SECONDS_" 2>"$OUT/$WHAT.record.log"
"$FLINT" cancel -m "127.0.0.1:${CL_RPC[prof]}" "$jid" >/dev/null 2>&1
perf report -i "$OUT/$WHAT.perf.data" --stdio --no-children --sort comm,symbol,dso 2>/dev/null |
    grep -v "^#" | grep -v "^$" | sed -E "s/[[:space:]]+-[[:space:]]+-[[:space:]]*$//" | head -n 40 | tee "$OUT/$WHAT.top.txt"
log "full report: perf report -i build/bench/profile/$WHAT.perf.data"
stop_cluster prof
