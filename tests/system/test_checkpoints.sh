#!/usr/bin/env bash
# Fault tolerance end to end (issue 6), with real daemons: keyed_count (a replayable text file
# source, a keyed count in value state, the exactly-once file sink) under barrier checkpoints
# every 200 ms on three taskmanagers.
#   - a taskmanager running tasks is killed (kill -9) mid-run and another started: once the job
#     finished, the committed output holds, for every key k seen n times, exactly the lines
#     "k 1" ... "k n", each once; on hashmap and on RocksDB with incremental checkpoints;
#   - five kills in a row within one run, same check;
#   - stop with a savepoint, resume at parallelism 2 -> 4 and 4 -> 2 (hashmap -> RocksDB):
#     the counts go on exactly;
#   - AT_LEAST_ONCE: a kill loses nothing (duplicates allowed);
#   - checkpoints after tasks finish: a job of two pipelines whose sink subtasks finish at
#     different times; the short pipeline's sinks commit with their final checkpoint and finish,
#     a taskmanager of the long one is killed after that: the restore counts the finished tasks
#     with their final state, so nothing is replayed or committed twice in either output;
#   - a checkpoint that cannot complete (a blocked sink) expires, is counted, and the job fails
#     once execution.checkpointing.tolerable-failed-checkpoints is exceeded (restart-strategy none);
#   - a corrupted _metadata: recovery falls back to the previous retained checkpoint; a missing
#     state file with nothing to fall back to: the job fails naming the file.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
TJ=$ROOT/build/tests/jobs
for so in "$EX/keyed_count.so" "$TJ/slow_sink.so"; do
    [ -f "$so" ] || abort setup "$so is missing: run make"
done

mkdir -p "$TEST_TMP/tmp"
start_local_cluster 3 taskmanager.numberOfTaskSlots=2 slot.request.timeout=10s io.tmp.dirs="$TEST_TMP/tmp" \
    state.checkpoints.dir="$TEST_TMP/cp" state.savepoints.dir="$TEST_TMP/sp" \
    restart-strategy.fixed-delay.delay=100ms
FLINT=("$BIN_DIR/flint")
M=(-m "127.0.0.1:$RPC_PORT")
CP=(-D execution.checkpointing.interval=200ms)
TMS=(tm1 tm2 tm3)
NEXT_TM=4

# ---- helpers ------------------------------------------------------------------------------------

job_state() { rest_json "/jobs/$1" .state; }
job_is() { [ "$(job_state "$1")" = "$2" ]; }
job_ended() { case $(job_state "$1") in FINISHED | FAILED | CANCELED) return 0 ;; esac; return 1; }
cp_count() { rest_json "/jobs/$1/checkpoints" ".counts.$2"; }
cp_count_ge() { local n; n=$(cp_count "$1" "$2"); [ -n "$n" ] && [ "$n" != null ] && [ "$n" -ge "$3" ]; }
# submit ARGS...: run -d; JOB is the job id (empty on failure, the output in last_submit.txt).
submit() {
    local out
    out=$("${FLINT[@]}" run "${M[@]}" -d "$@" 2>&1)
    JOB=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
    [ -n "$JOB" ] || echo "$out" >"$TEST_TMP/last_submit.txt"
}
# make_input FILE LINES KEYS SEED: one key per line.
make_input() {
    awk -v n="$2" -v k="$3" -v s="$4" 'BEGIN { srand(s); for (i = 0; i < n; i++) print "key" int(rand() * k) }' >"$1"
}
# expected FILE: the lines a correct keyed_count writes for FILE ("k 1" ... "k n"), sorted.
expected() { sort "$1" | uniq -c | awk '{ for (i = 1; i <= $1; i++) print $2, i }' | sort; }
# committed DIR: every committed line (visible part files), sorted.
committed() { find "$1" -maxdepth 1 -type f -name 'part-*' -exec cat {} + 2>/dev/null | sort; }
# check_exact NAME INPUT OUTDIR: the committed output is exactly what the input makes.
check_exact() {
    expected "$2" >"$TEST_TMP/$1.expected"
    committed "$3" >"$TEST_TMP/$1.got"
    if cmp -s "$TEST_TMP/$1.expected" "$TEST_TMP/$1.got"; then
        pass "$1"
    else
        fail "$1" "output differs: $(wc -l <"$TEST_TMP/$1.expected") lines expected, $(wc -l <"$TEST_TMP/$1.got") committed; $(diff "$TEST_TMP/$1.expected" "$TEST_TMP/$1.got" | head -n 4 | tr '\n' ' ')"
    fi
}
# busy_tm JOB: the name of a live taskmanager running a task of JOB.
busy_tm() {
    local vid rid t
    for vid in $(rest_json "/jobs/$1" '.vertices[].id'); do
        for rid in $(rest_json "/jobs/$1/vertices/$vid" '.subtasks[] | select(.status == "RUNNING") | ."taskmanager-id"'); do
            for t in "${TMS[@]}"; do
                if alive "$(pid_of "$t")" && grep -qF "as $rid with" "$TEST_TMP/$t.log"; then
                    echo "$t"
                    return 0
                fi
            done
        done
    done
    return 1
}
busy_debug() {
    local vid t
    for vid in $(rest_json "/jobs/$1" '.vertices[].id'); do
        rest_json "/jobs/$1/vertices/$vid" '[.subtasks[] | .status + "@" + ."taskmanager-id"] | join(",")'
    done | tr '\n' ' '
    for t in "${TMS[@]}"; do echo -n "$t=$(grep -o 'as [^ ]* with' "$TEST_TMP/$t.log" | tail -n 1) "; done
}
# kill_busy_tm JOB: kill -9 a taskmanager running tasks of JOB and start a new one.
kill_busy_tm() {
    local victim
    victim=$(busy_tm "$1") || return 1
    kill_tm "$victim"
}
# kill_tm TM: kill -9 taskmanager TM and start a new one.
kill_tm() {
    local victim=$1
    kill -9 "$(pid_of "$victim")"
    wait_exit "$(pid_of "$victim")" 5
    local t=tm$NEXT_TM
    NEXT_TM=$((NEXT_TM + 1))
    local keep=()
    for x in "${TMS[@]}"; do [ "$x" != "$victim" ] && keep+=("$x"); done
    TMS=("${keep[@]}" "$t")
    start_tm "$t"
    KILLED=$victim
}
all_running() {
    local vid s
    job_is "$1" RUNNING || return 1
    for vid in $(rest_json "/jobs/$1" '.vertices[].id'); do
        s=$(rest_json "/jobs/$1/vertices/$vid" '[.subtasks[] | select(.status != "RUNNING")] | length')
        [ "$s" = 0 ] || return 1
    done
}

# ---- kill -9 of a busy taskmanager mid-run, hashmap and RocksDB (incremental) --------------------

# kill_run NAME ARGS...: keyed_count at parallelism 2 over 3000 lines at 1000 lines/s with
# checkpoints every 200 ms; once two checkpoints completed a busy taskmanager is killed.
kill_run() {
    local name=$1
    shift
    make_input "$TEST_TMP/$name.in" 3000 60 "${#name}"
    submit -p 2 "${CP[@]}" "$@" "$EX/keyed_count.so" --input "$TEST_TMP/$name.in" --output "$TEST_TMP/$name.out" \
        --records-per-second 1000
    [ -n "$JOB" ] || { fail "$name" "not submitted: $(cat "$TEST_TMP/last_submit.txt")"; return; }
    if ! wait_until 10 cp_count_ge "$JOB" completed 2; then
        fail "$name" "no checkpoint completed within 10 s: $(rest_get "/jobs/$JOB/checkpoints" | head -c 300)"
        return
    fi
    if ! kill_busy_tm "$JOB"; then
        fail "$name" "found no taskmanager running its tasks"
        return
    fi
    wait_until 10 tm_count_is 3
    if ! wait_until 40 job_ended "$JOB" || ! job_is "$JOB" FINISHED; then
        fail "$name" "job $(job_state "$JOB") after the kill of $KILLED: $(rest_json "/jobs/$JOB/exceptions" '.["root-exception"]' | head -c 300)"
        return
    fi
    if ! cp_count_ge "$JOB" restored 1; then
        fail "$name" "the job did not restore a checkpoint: $(rest_get "/jobs/$JOB/checkpoints" | jq -c .counts)"
        return
    fi
    check_exact "$name" "$TEST_TMP/$name.in" "$TEST_TMP/$name.out"
}

kill_run kill_hashmap -D state.backend.type=hashmap
kill_run kill_rocksdb_incremental -D state.backend.type=rocksdb -D state.backend.incremental=true
# incremental: some checkpoint wrote less than its full state (SST files shared with an earlier one)
if [ -n "$JOB" ]; then
    inc=$(rest_json "/jobs/$JOB/checkpoints" '[.history[] | select(.status == "COMPLETED" and .checkpointed_size < .state_size)] | length')
    check incremental_reuses_files "no completed checkpoint wrote less than its state: $(rest_get "/jobs/$JOB/checkpoints" | jq -c '[.history[] | [.id, .state_size, .checkpointed_size]]')" \
        test "${inc:-0}" -gt 0
    check shared_dir_used "no SST file under shared/" \
        bash -c "ls '$TEST_TMP/cp/$JOB/shared' 2>/dev/null | grep -q sst || ! test -d '$TEST_TMP/cp/$JOB'"
fi

# ---- five kills in a row ----------------------------------------------------------------------------

# Driven by progress, not time: each run is killed right after the first checkpoint it completes
# (the victim picked before), so that it gets one checkpoint further whatever the machine's load;
# the input leaves room for many more runs than five.
make_input "$TEST_TMP/five.in" 12000 80 5
submit -p 2 "${CP[@]}" -D state.backend.type=hashmap "$EX/keyed_count.so" --input "$TEST_TMP/five.in" \
    --output "$TEST_TMP/five.out" --records-per-second 900
kills=0
progress=""
if [ -n "$JOB" ]; then
    for i in 1 2 3 4 5; do
        want=$(($(cp_count "$JOB" completed) + 1))
        wait_until 15 all_running "$JOB" && victim=$(busy_tm "$JOB") || break
        wait_until 10 cp_count_ge "$JOB" completed "$want" && ! job_ended "$JOB" || break
        kill_tm "$victim"
        kills=$((kills + 1))
        progress="$progress $(committed "$TEST_TMP/five.out" | wc -l)"
        wait_until 10 tm_count_is 3
    done
fi
if [ "$kills" -ne 5 ]; then
    fail five_kills "only $kills kills happened (job $(job_state "$JOB"), $(cp_count "$JOB" completed) checkpoints, committed lines at each kill:$progress)"
elif ! wait_until 60 job_ended "$JOB" || ! job_is "$JOB" FINISHED; then
    fail five_kills "job $(job_state "$JOB"): $(rest_json "/jobs/$JOB/exceptions" '.["root-exception"]' | head -c 300)"
else
    check_exact five_kills "$TEST_TMP/five.in" "$TEST_TMP/five.out"
fi

# ---- savepoints: stop, resume at another parallelism and backend ---------------------------------------

# rescale NAME P1 BACKEND1 P2 BACKEND2
rescale() {
    local name=$1 out sp
    make_input "$TEST_TMP/$name.in" 3000 50 "${#name}"
    submit -p "$2" "${CP[@]}" -D state.backend.type="$3" "$EX/keyed_count.so" --input "$TEST_TMP/$name.in" \
        --output "$TEST_TMP/$name.out" --records-per-second 1500
    [ -n "$JOB" ] && wait_until 10 cp_count_ge "$JOB" completed 2 || { fail "$name" "job not running with checkpoints"; return; }
    out=$("${FLINT[@]}" stop "${M[@]}" --savepoint-path "$TEST_TMP/$name.sp" "$JOB" 2>&1)
    sp=$(sed -n 's/^Savepoint completed. Path: //p' <<<"$out")
    if [ -z "$sp" ] || ! wait_until 10 job_is "$JOB" FINISHED; then
        fail "$name" "stop: $(tr '\n' ' ' <<<"$out") (job $(job_state "$JOB"))"
        return
    fi
    local before
    before=$(committed "$TEST_TMP/$name.out" | wc -l)
    if [ "$before" -ge 3000 ] || [ "$before" -eq 0 ]; then
        fail "$name" "stopped with $before of 3000 lines committed: not mid-run"
        return
    fi
    # what the stopped job committed is a consistent cut: every key's lines 1..m, each once, and
    # nothing is left hidden (the savepoint's parts are committed before the sinks close)
    local cut hidden
    cut=$(committed "$TEST_TMP/$name.out" | awk '{ n[$1]++; if ($2 > m[$1]) m[$1] = $2; if (seen[$0]++) bad++ }
                                              END { for (k in n) if (n[k] != m[k]) bad++; print bad + 0 }')
    hidden=$(find "$TEST_TMP/$name.out" -name '.part-*' -size +0 | wc -l)
    if [ "$cut" -ne 0 ] || [ "$hidden" -ne 0 ]; then
        fail "$name" "after the stop: $cut inconsistent keys, $hidden uncommitted parts"
        return
    fi
    submit -s "$sp" -p "$4" "${CP[@]}" -D state.backend.type="$5" "$EX/keyed_count.so" \
        --input "$TEST_TMP/$name.in" --output "$TEST_TMP/$name.out"
    if [ -z "$JOB" ] || ! wait_until 30 job_ended "$JOB" || ! job_is "$JOB" FINISHED; then
        fail "$name" "resumed job $(job_state "$JOB"): $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"
        return
    fi
    check_exact "$name" "$TEST_TMP/$name.in" "$TEST_TMP/$name.out"
}

rescale savepoint_2_to_4 2 hashmap 4 hashmap
rescale savepoint_4_to_2_hashmap_to_rocksdb 4 hashmap 2 rocksdb

# ---- at-least-once ------------------------------------------------------------------------------------

make_input "$TEST_TMP/alo.in" 3000 40 11
submit -p 2 "${CP[@]}" -D execution.checkpointing.mode=AT_LEAST_ONCE "$EX/keyed_count.so" \
    --input "$TEST_TMP/alo.in" --output "$TEST_TMP/alo.out" --records-per-second 1000
if [ -n "$JOB" ] && wait_until 10 cp_count_ge "$JOB" completed 2 && kill_busy_tm "$JOB" &&
    wait_until 40 job_ended "$JOB" && job_is "$JOB" FINISHED; then
    expected "$TEST_TMP/alo.in" >"$TEST_TMP/alo.expected"
    committed "$TEST_TMP/alo.out" | sort -u >"$TEST_TMP/alo.got"
    missing=$(comm -23 "$TEST_TMP/alo.expected" "$TEST_TMP/alo.got" | wc -l)
    check at_least_once_no_loss "$missing lines missing: $(comm -23 "$TEST_TMP/alo.expected" "$TEST_TMP/alo.got" | head -n 3 | tr '\n' ' ')" \
        test "$missing" -eq 0
else
    fail at_least_once_no_loss "job $(job_state "$JOB")"
fi
wait_until 10 tm_count_is 3

# ---- checkpoints after tasks finish: sinks that finish at different times, then a kill ----------------

vertex_status() { rest_json "/jobs/$1" ".vertices[] | select(.name | contains(\"$2\")) | .status"; }
vertex_is() { [ "$(vertex_status "$1" "$2")" = "$3" ]; }
make_input "$TEST_TMP/short.in" 300 20 21
make_input "$TEST_TMP/long.in" 4000 40 22
submit -p 2 "${CP[@]}" "$EX/keyed_count.so" --input "$TEST_TMP/short.in" --output "$TEST_TMP/short.out" \
    --input "$TEST_TMP/long.in" --output "$TEST_TMP/long.out" --records-per-second 1000
if [ -z "$JOB" ]; then
    fail finished_sinks_then_kill "not submitted: $(cat "$TEST_TMP/last_submit.txt")"
elif ! wait_until 15 vertex_is "$JOB" short.out FINISHED; then
    fail finished_sinks_then_kill "the short pipeline's sinks did not finish: $(vertex_status "$JOB" short.out)"
else
    # finished with their final checkpoint: everything committed, while the long pipeline runs
    short_done=$(committed "$TEST_TMP/short.out" | wc -l)
    long_state=$(vertex_status "$JOB" long.out)
    want=$(($(cp_count "$JOB" completed) + 1))
    if [ "$short_done" -ne 300 ] || [ "$long_state" != RUNNING ]; then
        fail finished_sinks_then_kill "short pipeline finished with $short_done of 300 lines committed, long one $long_state"
    elif ! wait_until 10 cp_count_ge "$JOB" completed "$want" || ! kill_busy_tm "$JOB"; then
        fail finished_sinks_then_kill "no checkpoint after the short pipeline finished, or no busy taskmanager"
    elif ! wait_until 40 job_ended "$JOB" || ! job_is "$JOB" FINISHED || ! cp_count_ge "$JOB" restored 1; then
        fail finished_sinks_then_kill "job $(job_state "$JOB") after the kill of $KILLED: $(rest_json "/jobs/$JOB/exceptions" '.["root-exception"]' | head -c 300)"
    else
        pass finished_sinks_then_kill
        check_exact finished_sinks_short_exactly_once "$TEST_TMP/short.in" "$TEST_TMP/short.out"
        check_exact finished_sinks_long_exactly_once "$TEST_TMP/long.in" "$TEST_TMP/long.out"
    fi
fi
wait_until 10 tm_count_is 3

# ---- a checkpoint that cannot complete expires and fails the job ----------------------------------------

# A sink that sleeps 2 s per row holds its barrier back: every checkpoint expires after 300 ms.
submit -p 1 -D execution.checkpointing.interval=100ms -D execution.checkpointing.timeout=300ms \
    -D execution.checkpointing.tolerable-failed-checkpoints=1 -D restart-strategy.type=none \
    "$TJ/slow_sink.so" --output "$TEST_TMP/slow.out" --sleep-ms 2000 --rate 20
if [ -n "$JOB" ] && wait_until 20 job_ended "$JOB"; then
    failed=$(cp_count "$JOB" failed)
    why=$(rest_json "/jobs/$JOB/exceptions" '.["root-exception"]')
    reason=$(rest_json "/jobs/$JOB/checkpoints" '.latest.failed.failure_message')
    if job_is "$JOB" FAILED && [ "${failed:-0}" -ge 2 ] && grep -q "tolerable failure threshold" <<<"$why"; then
        pass checkpoint_timeout_fails_job
    else
        fail checkpoint_timeout_fails_job "job $(job_state "$JOB"), $failed failed checkpoints ($reason): $why"
    fi
else
    fail checkpoint_timeout_fails_job "job $(job_state "$JOB") after 20 s"
    [ -n "$JOB" ] && "${FLINT[@]}" cancel "${M[@]}" "$JOB" >/dev/null 2>&1
fi

# ---- broken checkpoints -------------------------------------------------------------------------------

# broken_run NAME RETAINED ACTION: run keyed_count with num-retained RETAINED and a 1 s restart
# delay; kill a busy taskmanager, then (while the job waits to restart) ACTION breaks the
# latest retained checkpoint (ACTION DIR).
broken_run() {
    local name=$1 retained=$2 action=$3 latest
    make_input "$TEST_TMP/$name.in" 3000 30 "${#name}"
    submit -p 2 "${CP[@]}" -D state.checkpoints.num-retained="$retained" -D restart-strategy.fixed-delay.delay=1s \
        -D restart-strategy.fixed-delay.attempts=3 "$EX/keyed_count.so" --input "$TEST_TMP/$name.in" \
        --output "$TEST_TMP/$name.out" --records-per-second 1000
    [ -n "$JOB" ] && wait_until 10 cp_count_ge "$JOB" completed 3 || { fail "$name" "no checkpoints"; return 1; }
    kill_busy_tm "$JOB" || { fail "$name" "no busy taskmanager among ${TMS[*]}: $(busy_debug "$JOB")"; return 1; }
    wait_until 5 job_is "$JOB" RESTARTING || { fail "$name" "job $(job_state "$JOB") after the kill"; return 1; }
    # the latest *completed* checkpoint (a newer chk-* directory may belong to one in flight)
    latest=$(rest_json "/jobs/$JOB/checkpoints" '.latest.completed.external_path')
    [ -n "$latest" ] && [ -d "$latest" ] || { fail "$name" "no completed checkpoint directory ($latest)"; return 1; }
    "$action" "$latest"
    BROKEN=$latest
    wait_until 10 tm_count_is 3
    wait_until 40 job_ended "$JOB"
}

corrupt_metadata() { printf 'garbage' | dd of="$1/_metadata" bs=1 seek=40 conv=notrunc 2>/dev/null; }
if broken_run fallback_on_corrupted_metadata 2 corrupt_metadata; then
    if job_is "$JOB" FINISHED && grep -q "falling back to the previous retained checkpoint" "$TEST_TMP/jm.log" &&
        grep -qF "$BROKEN/_metadata" "$TEST_TMP/jm.log"; then
        # an older checkpoint restores rows already committed: nothing may be missing
        missing=$(comm -23 <(expected "$TEST_TMP/fallback_on_corrupted_metadata.in") \
            <(committed "$TEST_TMP/fallback_on_corrupted_metadata.out" | sort -u) | wc -l)
        check fallback_on_corrupted_metadata "$missing lines missing" test "$missing" -eq 0
    else
        fail fallback_on_corrupted_metadata "job $(job_state "$JOB"); jm log: $(grep -i "fall\|corrupt" "$TEST_TMP/jm.log" | tail -n 2 | tr '\n' ' ')"
    fi
fi

# The same size, other bytes: the jobmanager's checks pass, the task fails restoring it and reports
# the file (restore_failure); the next attempt falls back to the previous checkpoint.
corrupt_state() {
    local f
    f=$(find "$1" -type f -name '*-keyed' | head -n 1)
    printf 'XXXXXXXXXXXXXXXX' | dd of="$f" bs=1 seek=0 conv=notrunc 2>/dev/null
}
if broken_run fallback_on_corrupted_state_file 2 corrupt_state; then
    if job_is "$JOB" FINISHED && grep -q "could not restore\|restor.*$BROKEN/.*-keyed" "$TEST_TMP/jm.log"; then
        missing=$(comm -23 <(expected "$TEST_TMP/fallback_on_corrupted_state_file.in") \
            <(committed "$TEST_TMP/fallback_on_corrupted_state_file.out" | sort -u) | wc -l)
        check fallback_on_corrupted_state_file "$missing lines missing" test "$missing" -eq 0
    else
        fail fallback_on_corrupted_state_file "job $(job_state "$JOB"); jm log: $(grep -i "restor" "$TEST_TMP/jm.log" | tail -n 3 | tr '\n' ' ')"
    fi
fi

delete_state() { find "$1" -type f -name '*-keyed' | head -n 1 | xargs rm -f; }
if broken_run missing_state_file_fails 1 delete_state; then
    why=$(rest_json "/jobs/$JOB/exceptions" '.["root-exception"]')
    if job_is "$JOB" FAILED && grep -qF "$BROKEN/" <<<"$why" && grep -q -- "-keyed" <<<"$why"; then
        pass missing_state_file_fails
    else
        fail missing_state_file_fails "job $(job_state "$JOB"): $why"
    fi
fi

check no_crash_reports "a sanitizer or crash report in the logs" no_crash_reports
finish
