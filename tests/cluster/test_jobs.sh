#!/usr/bin/env bash
# Jobs end to end on a real cluster: a jobmanager and two taskmanagers with two slots each.
# WordCount at parallelism 4 (remote and local channels) checked against a reference computed with
# tr/sort/uniq; a forced rebalance; REST job details; cancel freeing every slot; a backpressured
# source behind a slow sink (HIGH, bounded memory, nothing lost); too few slots; bad artifacts;
# a failing user function; and a taskmanager killed mid-job failing the job with its name.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
TJ=$ROOT/build/tests/jobs
for so in wordcount datagen_pipeline; do
    [ -f "$EX/$so.so" ] || abort setup "$EX/$so.so is missing: run make"
done

start_local_cluster 2 taskmanager.numberOfTaskSlots=2 slot.request.timeout=3s io.tmp.dirs="$TEST_TMP"
FLINT=("$BIN_DIR/flint")

# job_state ID: the job's state from REST.
job_state() { rest_json "/jobs/$1" .state; }
job_is() { [ "$(job_state "$1")" = "$2" ]; }
slots_free_is() { [ "$(overview slots-available)" = "$1" ]; }
# submit_detached ARGS...: run -d, set JOB to the job id (empty on failure).
submit_detached() {
    local out
    out=$("${FLINT[@]}" run -d "$@" 2>&1)
    JOB=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
    [ -n "$JOB" ] || echo "$out" >"$TEST_TMP/last_submit.txt"
}

# ---- WordCount ------------------------------------------------------------------------------
# A deterministic text: mixed case, digits, punctuation, a vocabulary of a few hundred words.
awk 'BEGIN {
    srand(7);
    split("the a of and to in is was for on that with as by it at from this be are or an " \
          "stream flint flink window state key watermark event time barrier checkpoint slot " \
          "task operator chain buffer credit network partition shuffle record row schema", base, " ");
    n = 0; for (i in base) n++;
    for (line = 0; line < 4000; line++) {
        words = int(rand() * 14);
        s = "";
        for (w = 0; w < words; w++) {
            r = rand();
            if (r < 0.7) word = base[int(rand() * n) + 1];
            else if (r < 0.9) word = "w" int(rand() * 400);
            else word = toupper(base[int(rand() * n) + 1]);
            sep = (rand() < 0.2) ? ", " : ((rand() < 0.1) ? "... " : " ");
            s = s word sep;
        }
        print s;
    }
}' >"$TEST_TMP/input.txt"
tr 'A-Z' 'a-z' <"$TEST_TMP/input.txt" | tr -cs 'a-z0-9' '\n' | sed '/^$/d' | sort | uniq -c |
    awk '{print $2, $1}' | sort >"$TEST_TMP/expected.txt"

# wordcount_result DIR: the largest count of every word in DIR's part files, sorted.
wordcount_result() {
    cat "$1"/part-* 2>/dev/null | awk '{ if (!($1 in m) || $2 + 0 > m[$1]) m[$1] = $2 + 0 }
                                      END { for (w in m) print w, m[w] }' | sort
}

# run_wordcount NAME ARGS...: run (attached) and compare with the reference.
run_wordcount() {
    local name=$1 out rc
    shift
    out=$("${FLINT[@]}" run "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name" "flint run exited $rc: $(tail -n 5 <<<"$out" | tr '\n' ' ')"
        return 1
    fi
    if ! grep -q "switched to FINISHED" <<<"$out"; then
        fail "$name" "flint run did not report FINISHED: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
        return 1
    fi
    local dir=${*: -1}
    if diff <(wordcount_result "$dir") "$TEST_TMP/expected.txt" >"$TEST_TMP/$name.diff"; then
        pass "$name"
    else
        fail "$name" "counts differ from the reference ($(wc -l <"$TEST_TMP/$name.diff") diff lines): $(head -n 4 "$TEST_TMP/$name.diff" | tr '\n' ' ')"
    fi
}

run_wordcount wordcount_p4 -m "127.0.0.1:$RPC_PORT" -p 4 "$EX/wordcount.so" \
    --input "$TEST_TMP/input.txt" --output "$TEST_TMP/wc-p4"
# Subtasks of a parallelism-4 job on 2x2 slots run on both taskmanagers: the keyBy exchange
# crosses the network.
check wordcount_used_both_tms "the job did not run on both taskmanagers" \
    test "$(grep -l "deploy" "$TEST_TMP/tm1.log" "$TEST_TMP/tm2.log" 2>/dev/null | wc -l)" = 2
run_wordcount wordcount_rebalance -m "127.0.0.1:$RPC_PORT" -p 4 "$EX/wordcount.so" \
    --rebalance --input "$TEST_TMP/input.txt" --output "$TEST_TMP/wc-rebalance"
# The rolling sum on the rocksdb state backend (under io.tmp.dirs; removed when the tasks end).
run_wordcount wordcount_rocksdb -m "127.0.0.1:$RPC_PORT" -p 4 -D state.backend.type=rocksdb "$EX/wordcount.so" \
    --input "$TEST_TMP/input.txt" --output "$TEST_TMP/wc-rocksdb"
check rocksdb_dirs_removed "state directories left in io.tmp.dirs: $(ls -d "$TEST_TMP"/flint-state-* 2>/dev/null | head -n 3)" \
    bash -c "! ls -d '$TEST_TMP'/flint-state-* >/dev/null 2>&1"

# REST view of a finished job.
WC_JOB=$(rest_json /jobs/overview '.jobs[] | select(.name == "WordCount") | .jid' | head -n 1)
details=$(rest_get "/jobs/$WC_JOB")
if jq -e '.state == "FINISHED" and (.vertices | length) >= 2 and
          all(.vertices[]; .status == "FINISHED" and .parallelism >= 1 and (.id | test("^[0-9a-f]{32}$")))
          and ([.vertices[].metrics."write-records"] | add) > 0
          and ([.vertices[].metrics."read-records"] | add) > 0' <<<"$details" >/dev/null 2>&1; then
    pass rest_job_details
else
    fail rest_job_details "unexpected /jobs/$WC_JOB: $(cut -c1-400 <<<"$details")"
fi
check rest_jobs_overview "/jobs/overview lacks the finished WordCount" \
    test "$(rest_json /jobs/overview '[.jobs[] | select(.state == "FINISHED")] | length')" -ge 2
check slots_free_after_finish "slots not free after the jobs finished: $(overview slots-available)" \
    wait_until 5 slots_free_is 4
check flint_list_shows_jobs "flint list does not show the finished job" \
    bash -c "'${FLINT[0]}' list -m 127.0.0.1:$RPC_PORT | grep -q '$WC_JOB.*FINISHED'"

# ---- cancel -----------------------------------------------------------------------------------
submit_detached -m "127.0.0.1:$RPC_PORT" -p 4 "$EX/datagen_pipeline.so"
if [ -n "$JOB" ] && wait_until 10 job_is "$JOB" RUNNING && wait_until 5 slots_free_is 0; then
    pass unbounded_job_runs
else
    fail unbounded_job_runs "job '$JOB' state $(job_state "$JOB"), free slots $(overview slots-available): $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"
fi
out=$("${FLINT[@]}" cancel -m "127.0.0.1:$RPC_PORT" "$JOB" 2>&1)
if wait_until 10 job_is "$JOB" CANCELED && wait_until 5 slots_free_is 4; then
    pass cancel_frees_slots
else
    fail cancel_frees_slots "after '$out': state $(job_state "$JOB"), free slots $(overview slots-available)"
fi
submit_detached -m "127.0.0.1:$RPC_PORT" -p 2 "$EX/datagen_pipeline.so"
wait_until 10 job_is "$JOB" RUNNING
code=$(http_code -X PATCH "/jobs/$JOB?mode=cancel")
if [ "$code" = 202 ] && wait_until 10 job_is "$JOB" CANCELED && wait_until 5 slots_free_is 4; then
    pass rest_cancel
else
    fail rest_cancel "PATCH answered $code; state $(job_state "$JOB"), free slots $(overview slots-available)"
fi
check cancel_unknown_job "cancelling an unknown job did not fail" \
    bash -c "! '${FLINT[0]}' cancel -m 127.0.0.1:$RPC_PORT 0123456789abcdef0123456789abcdef 2>/dev/null"

# ---- backpressure: a fast source behind a slow sink ---------------------------------------------
if [ -f "$TJ/slow_sink.so" ]; then
    N=4000
    submit_detached -m "127.0.0.1:$RPC_PORT" -p 1 "$TJ/slow_sink.so" --count $N --sleep-ms 1 \
        --payload-bytes 200 --output "$TEST_TMP/slow"
    wait_until 10 job_is "$JOB" RUNNING
    SRC=$(rest_json "/jobs/$JOB" '.vertices[0].id')
    bp_high() { [ "$(rest_json "/jobs/$JOB/vertices/$SRC/backpressure" '."backpressure-level"')" = high ]; }
    check source_backpressured_high "backpressure of the source: $(rest_get "/jobs/$JOB/vertices/$SRC/backpressure" | cut -c1-300)" \
        wait_until 15 bp_high
    max_rss=0
    while job_is "$JOB" RUNNING; do
        for n in tm1 tm2; do
            r=$(ps -o rss= -p "$(pid_of $n)" 2>/dev/null | tr -d ' ')
            [ -n "$r" ] && [ "$r" -gt "$max_rss" ] && max_rss=$r
        done
        sleep 0.5
    done
    check slow_sink_finished "job ended $(job_state "$JOB")" job_is "$JOB" FINISHED
    check rss_bounded "a taskmanager grew to $max_rss kB while backpressured" test "$max_rss" -lt 150000
    got=$(cat "$TEST_TMP"/slow/part-* 2>/dev/null | sort -n | uniq | wc -l)
    check every_record_arrived "$got distinct records of $N arrived" test "$got" = "$N"
else
    fail slow_sink "$TJ/slow_sink.so is missing"
fi

# ---- a user function failing at run time ----------------------------------------------------------
if [ -f "$TJ/fail_at_runtime.so" ]; then
    out=$("${FLINT[@]}" run -m "127.0.0.1:$RPC_PORT" "$TJ/fail_at_runtime.so" 2>&1)
    rc=$?
    if [ "$rc" = 1 ] && grep -q "switched to FAILED" <<<"$out" && grep -q "refusing value 100 on purpose" <<<"$out"; then
        pass runtime_failure_reported
    else
        fail runtime_failure_reported "exit $rc: $(tail -n 4 <<<"$out" | tr '\n' ' ')"
    fi
fi

# ---- bad artifacts: a clear message, exit 1, nothing submitted ------------------------------------
jobs_before=$(rest_json /jobs '.jobs | length')
echo "this is not a shared object" >"$TEST_TMP/not_a_job.so"
printf 'int some_function(void) { return 1; }\n' >"$TEST_TMP/no_main.c"
cc -shared -fPIC -o "$TEST_TMP/no_main.so" "$TEST_TMP/no_main.c"
# expect_refused NAME PATTERN ARTIFACT ARGS...: flint run exits 1 with PATTERN on stderr.
expect_refused() {
    local name=$1 pattern=$2 out rc
    shift 2
    out=$("${FLINT[@]}" run -m "127.0.0.1:$RPC_PORT" "$@" 2>&1)
    rc=$?
    if [ "$rc" = 1 ] && grep -qE "$pattern" <<<"$out" && [ "$(wc -l <<<"$out")" -le 3 ]; then
        pass "$name"
    else
        fail "$name" "exit $rc, expected 1 with /$pattern/: $(head -n 3 <<<"$out" | tr '\n' ' ')"
    fi
}
expect_refused artifact_not_shared_object "not a shared object|invalid ELF|file too short" "$TEST_TMP/not_a_job.so"
expect_refused artifact_without_main "flint_job_main" "$TEST_TMP/no_main.so"
expect_refused artifact_missing_file "No such file|cannot open" "$TEST_TMP/does_not_exist.so"
expect_refused artifact_missing_symbol "hidden_map" "$TJ/bad_missing_symbol.so"
expect_refused artifact_main_error "always refuses to start" "$TJ/bad_main_error.so"
expect_refused artifact_unknown_field "no_such_field" "$TJ/bad_unknown_field.so"
expect_refused wordcount_bad_args "usage: wordcount.so" "$EX/wordcount.so" --input
check bad_artifacts_not_submitted "a bad artifact reached the jobmanager" \
    test "$(rest_json /jobs '.jobs | length')" = "$jobs_before"

# ---- too few slots ------------------------------------------------------------------------------
out=$("${FLINT[@]}" run -m "127.0.0.1:$RPC_PORT" -p 5 "$EX/datagen_pipeline.so" --count 10 2>&1)
rc=$?
if [ "$rc" = 1 ] && grep -q "needs 5 slots" <<<"$out"; then
    pass too_few_slots
else
    fail too_few_slots "exit $rc: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

# ---- a taskmanager lost mid-job -------------------------------------------------------------------
submit_detached -m "127.0.0.1:$RPC_PORT" -p 4 "$EX/datagen_pipeline.so"
wait_until 10 job_is "$JOB" RUNNING
victim=tm2
VICTIM_ID=$(sed -n 's/.* as \([^ ]*\) with .*/\1/p' "$TEST_TMP/$victim.log" | tail -n 1)
kill -9 "$(pid_of $victim)"
if wait_until 10 job_is "$JOB" FAILED; then
    root=$(rest_json "/jobs/$JOB/exceptions" '."root-exception"')
    if grep -qF "$VICTIM_ID" <<<"$root" && grep -qi "lost" <<<"$root"; then
        pass tm_loss_fails_job
    else
        fail tm_loss_fails_job "root exception does not name the lost taskmanager $VICTIM_ID: $root"
    fi
else
    fail tm_loss_fails_job "job is $(job_state "$JOB") 10 s after kill -9 of $victim"
fi

check no_crash_reports "a daemon crashed or a sanitizer reported" no_crash_reports
finish
