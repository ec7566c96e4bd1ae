#!/usr/bin/env bash
# The Kafka connectors through failures: a taskmanager kill -9ed mid-run, the job restarted from
# its latest checkpoint (three taskmanagers with two slots each, checkpoints every 200 ms).
#  - kafka_keyed_count at parallelism 2 over 100k records of four partitions: the committed file
#    output is exactly "k 1" .. "k n" once each per key (offsets restored exactly, end to end);
#  - the at-least-once sink: no record missing from the output topic;
#  - the exactly-once sink: transactions committed per checkpoint, and the restarted attempt
#    initializes the same transactional ids again, which aborts what the killed one left open.
# The bounded jobs' source subtasks finish at different times, often while a checkpoint is being
# aligned downstream: the channel that ended without the barrier gives up that alignment and the
# jobmanager aborts the checkpoint (docs/checkpointing-protocol.md, "Tasks that finished").
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
TJ=$ROOT/build/tests/jobs

start_local_cluster 3 taskmanager.numberOfTaskSlots=2 slot.request.timeout=10s io.tmp.dirs="$TEST_TMP" \
    state.checkpoints.dir="$TEST_TMP/checkpoints" execution.checkpointing.interval=200ms \
    restart-strategy.type=fixed-delay restart-strategy.fixed-delay.attempts=5 restart-strategy.fixed-delay.delay=200ms
flint() { "$BIN_DIR/flint" "$1" -m "127.0.0.1:$RPC_PORT" "${@:2}"; }

start_kafka_local --brokers 3 --topic keys:4 --topic in:4 --topic alo-out:4 --topic eo-out:4

job_state() { rest_json "/jobs/$1" .state; }
job_is() { [ "$(job_state "$1")" = "$2" ]; }
submit_detached() {
    local out
    out=$(flint run -d "$@" 2>&1)
    JOB=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
    [ -n "$JOB" ] || echo "$out" >"$TEST_TMP/last_submit.txt"
}
# Completed checkpoints of a job (the jobmanager's log; REST /jobs/:id/checkpoints when it has it).
completed_checkpoints() {
    local n
    n=$(rest_json "/jobs/$1/checkpoints" '.counts.completed // empty' 2>/dev/null)
    [ -n "$n" ] || n=$(grep -c "Completed checkpoint [0-9]* for job $1" "$TEST_TMP/jm.log" 2>/dev/null)
    echo "${n:-0}"
}
has_checkpoints() { [ "$(completed_checkpoints "$1")" -ge "$2" ] 2>/dev/null; }
# kill_a_tm_of JOB: kill -9 a taskmanager running a task of JOB; KILLED names it.
kill_a_tm_of() {
    local n
    KILLED=""
    for n in tm1 tm2 tm3; do
        alive "$(pid_of $n)" || continue
        if grep -q "deploying .* of job $1" "$TEST_TMP/$n.log" 2>/dev/null; then
            kill -9 "$(pid_of $n)"
            KILLED=$n
            return 0
        fi
    done
    return 1
}
tm_logs() { cat "$TEST_TMP"/tm*.log 2>/dev/null; }

# ---- keyed count, exactly once through a kill -9 -------------------------------------------------------
awk 'BEGIN { srand(5); for (i = 0; i < 100000; i++) print "k" int(rand() * 500) }' >"$TEST_TMP/keys.txt"
for p in 0 1 2 3; do awk -v p=$p 'NR % 4 == p' "$TEST_TMP/keys.txt" | "${KCAT[@]}" -P -t keys -p $p; done
sort "$TEST_TMP/keys.txt" | uniq -c | awk '{ for (i = 1; i <= $1; i++) print $2, i }' | sort >"$TEST_TMP/keys.expected"
submit_detached -p 2 "$EX/kafka_keyed_count.so" --bootstrap-servers "$B" --topic keys --output "$TEST_TMP/kc" \
    --bounded --records-per-second 20000 --group-id kc
if [ -n "$JOB" ] && wait_until 15 has_checkpoints "$JOB" 3; then
    if kill_a_tm_of "$JOB"; then
        pass "keyed_count_killed_$KILLED"
    else
        fail keyed_count_killed "no taskmanager of the job found to kill"
    fi
    check keyed_count_finished_after_kill "job ended $(job_state "$JOB")" wait_until 60 job_is "$JOB" FINISHED
    kc_ok() { diff -q <(cat "$TEST_TMP"/kc/part-* 2>/dev/null | sort) "$TEST_TMP/keys.expected" >/dev/null; }
    check keyed_count_exactly_once_after_kill \
        "output differs: $(diff <(cat "$TEST_TMP"/kc/part-* | sort) "$TEST_TMP/keys.expected" | grep -c '^[<>]') lines ($(cat "$TEST_TMP"/kc/part-* | wc -l) written)" kc_ok
    check keyed_count_restored_offsets "no restored partitions in the logs" \
        bash -c "grep -q 'restored [1-9][0-9]* partition(s) from the checkpoint' $TEST_TMP/tm*.log"
else
    fail keyed_count_killed "no 3 checkpoints: job $(job_state "$JOB"): $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"
fi
for n in tm1 tm2 tm3; do alive "$(pid_of $n)" || start_tm "$n"; done
wait_until 15 tm_count_is 3

# ---- the at-least-once sink through a kill -9 ------------------------------------------------------------
for p in 0 1 2 3; do seq $((p * 5000 + 1)) $((p * 5000 + 5000)) | "${KCAT[@]}" -P -t in -p $p; done
submit_detached -p 2 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic in --bounded --rate 8000 --out-topic alo-out
if [ -n "$JOB" ] && wait_until 15 has_checkpoints "$JOB" 3 && kill_a_tm_of "$JOB"; then
    check at_least_once_finished_after_kill "job ended $(job_state "$JOB")" wait_until 60 job_is "$JOB" FINISHED
    got=$("${KCAT[@]}" -C -t alo-out -e -q | sort -n | uniq | wc -l)
    check at_least_once_nothing_missing "$got distinct records of 20000 in the output topic" test "$got" = 20000
else
    fail at_least_once_finished_after_kill "could not kill a taskmanager of the job: $(job_state "$JOB")"
fi
for n in tm1 tm2 tm3; do alive "$(pid_of $n)" || start_tm "$n"; done
wait_until 15 tm_count_is 3

# ---- the exactly-once sink through a kill -9 -------------------------------------------------------------
# (Each pooled producer's first transaction takes about a second on the mock cluster: slower, so
# that the kill comes while the job runs.)
submit_detached -p 2 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic in --bounded --rate 3000 --out-topic eo-out \
    --delivery exactly-once --prefix eo
if [ -n "$JOB" ] && wait_until 15 has_checkpoints "$JOB" 4 && job_is "$JOB" RUNNING && kill_a_tm_of "$JOB"; then
    check exactly_once_finished_after_kill "job ended $(job_state "$JOB")" wait_until 60 job_is "$JOB" FINISHED
    eo_commits() { [ "$(tm_logs | grep -c 'committed the transaction of eo-[01]-[0-2] (checkpoint')" -ge 2 ]; }
    check exactly_once_committed_per_checkpoint "commits: $(tm_logs | grep -c 'committed the transaction of eo-')" eo_commits
    # Every attempt's producers initialize the same ids: the restart aborts the killed one's.
    eo_reinit() { [ "$(tm_logs | grep -c 'transactional producers eo-[01]-0..2 initialized')" -ge 3 ]; }
    check exactly_once_aborts_on_restore "initializations: $(tm_logs | grep -c 'transactional producers eo-')" eo_reinit
    got=$("${KCAT[@]}" -C -t eo-out -e -q | sort -n | uniq | wc -l)
    # (The mock cluster does not implement read-committed isolation: aborted records are visible
    # too, so this checks that nothing is missing, not that nothing is doubled.)
    check exactly_once_nothing_missing "$got distinct records of 20000 in the output topic" test "$got" = 20000
else
    fail exactly_once_finished_after_kill "could not kill a taskmanager of the job: $(job_state "$JOB")"
fi

check no_crash_reports "a sanitizer report or crash in the logs" no_crash_reports
finish
