#!/usr/bin/env bash
# Profile a taskmanager while it runs one of the benchmark jobs: starts a cluster of its own on
# free loopback ports, submits the job detached, samples the taskmanager with `perf record`
# (the cpu-clock software event, so it works in VMs without hardware counters) for a few seconds,
# cancels the job and prints the hottest symbols. The perf data stays in build/bench/profile/.
#
# Usage: bench/profile.sh [chain|q0|q1|q2|shuffle|shuffle1k] [SECONDS] [-g] [-p N]
#   -g   record call graphs too (perf report then shows callers; larger data)
#   -p N parallelism N (chain, q0-q2: one taskmanager with N slots; default 1)
# The report is by thread name (task-<n> runs subtasks; the taskmanager's main thread runs the
# event loop: RPC, network I/O, timers) and symbol.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

WHAT=chain SECONDS_=5 CALLGRAPH=() P=1
while [ $# -gt 0 ]; do
    a=$1
    shift
    case $a in
        -g) CALLGRAPH=(-g) ;;
        -p) P=$1; shift ;;
        [0-9]*) SECONDS_=$a ;;
        chain | q0 | q1 | q2 | shuffle | shuffle1k) WHAT=$a ;;
        *) echo "usage: bench/profile.sh [chain|q0|q1|q2|shuffle|shuffle1k] [SECONDS] [-g] [-p N]" >&2; exit 2 ;;
    esac
done
command -v perf >/dev/null || die "perf is not installed (linux-perf); valgrind --tool=callgrind on a taskmanager is the alternative"
OUT=$BB_OUT/profile
mkdir -p "$OUT"

case $WHAT in
    chain) NTMS=1 SLOTS=$P JOB=(-p "$P" "$EX/datagen_pipeline.so") ;;
    q0 | q1 | q2) NTMS=1 SLOTS=$P JOB=(-p "$P" "$EX/nexmark_$WHAT.so" --events -1) ;;
    shuffle) NTMS=2 SLOTS=1 JOB=(-p 2 "$BB/jobs/keyby_count.so" --count 100000000000) ;;
    shuffle1k) NTMS=2 SLOTS=1 JOB=(-p 2 "$BB/jobs/keyby_count.so" --count 100000000000 --payload-bytes 988) ;;
esac

start_cluster prof "$NTMS" "$SLOTS"
out=$("$FLINT" run -d -m "127.0.0.1:${CL_RPC[prof]}" "${JOB[@]}" 2>&1)
jid=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
[ -n "$jid" ] || die "submission failed: $out"
job_running() { [ "$(rest_get prof "/jobs/$jid" | jq -r .state)" = RUNNING ]; }
wait_until 10 job_running || die "job $jid is not RUNNING"
sleep 1
tm=$(tm_pids prof | awk '{ print $1 }')
log "perf record of taskmanager $tm ($WHAT, p=$P) for $SECONDS_ s"
top -H -b -n 1 -d 1 -p "$tm" | sed -n '7,20p' >&2
perf record -e cpu-clock -F 1999 "${CALLGRAPH[@]}" -p "$tm" -o "$OUT/$WHAT.perf.data" -- sleep "$SECONDS_" 2>"$OUT/$WHAT.record.log"
"$FLINT" cancel -m "127.0.0.1:${CL_RPC[prof]}" "$jid" >/dev/null 2>&1
perf report -i "$OUT/$WHAT.perf.data" --stdio --no-children --sort comm,symbol,dso 2>/dev/null |
    grep -v "^#" | grep -v "^$" | sed -E "s/[[:space:]]+-[[:space:]]+-[[:space:]]*$//" | head -n 40 | tee "$OUT/$WHAT.top.txt"
log "full report: perf report -i build/bench/profile/$WHAT.perf.data"
stop_cluster prof
