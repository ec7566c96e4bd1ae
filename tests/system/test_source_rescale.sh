#!/usr/bin/env bash
# Generator sources resumed at another parallelism (issue 6, docs/operations.md "Sources and
# sinks"), with real daemons: Nexmark q0 (source.nexmark -> map -> text file sink) is stopped
# with a savepoint mid-run and resumed from it at another parallelism, 2 -> 4 and 4 -> 2. The
# source's stride splits are dealt to the new subtasks, so the rows of the two runs together are
# exactly the rows of one uninterrupted run (build/tests/nexmark_ref), nothing lost or repeated,
# and each resumed subtask's rows are in event-time order, whatever splits it owns.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
REF=$ROOT/build/tests/nexmark_ref
[ -f "$EX/nexmark_q0.so" ] || abort setup "$EX/nexmark_q0.so is missing: run make"
[ -x "$REF" ] || abort setup "$REF is missing: run make"

mkdir -p "$TEST_TMP/tmp"
start_local_cluster 2 taskmanager.numberOfTaskSlots=2 slot.request.timeout=10s io.tmp.dirs="$TEST_TMP/tmp" \
    state.checkpoints.dir="$TEST_TMP/cp" state.savepoints.dir="$TEST_TMP/sp"
FLINT=("$BIN_DIR/flint")
M=(-m "127.0.0.1:$RPC_PORT")

job_state() { rest_json "/jobs/$1" .state; }
job_is() { [ "$(job_state "$1")" = "$2" ]; }
job_ended() { case $(job_state "$1") in FINISHED | FAILED | CANCELED) return 0 ;; esac; return 1; }
# rows_in DIR: the rows of DIR's part files.
rows_in() { cat "$1"/part-* 2>/dev/null | wc -l; }
rows_at_least() { [ "$(rows_in "$1")" -ge "$2" ]; }
# submit ARGS...: run -d; JOB is the job id (empty on failure, the output in last_submit.txt).
submit() {
    local out
    out=$("${FLINT[@]}" run "${M[@]}" -d "$@" 2>&1)
    JOB=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
    [ -n "$JOB" ] || echo "$out" >"$TEST_TMP/last_submit.txt"
}

EVENTS=60000
SEED=5
RATE=20000   # events/s over all subtasks: a run of 3 s, stopped after about a second
ARGS=(--events "$EVENTS" --rate "$RATE" --seed "$SEED")
"$REF" --query q0 "${ARGS[@]}" | LC_ALL=C sort >"$TEST_TMP/q0.expected"

# rescale NAME P1 P2
rescale() {
    local name=$1 out sp before f
    submit -p "$2" "$EX/nexmark_q0.so" "${ARGS[@]}" --output "$TEST_TMP/$name.1"
    [ -n "$JOB" ] && wait_until 10 rows_at_least "$TEST_TMP/$name.1" 5000 ||
        { fail "$name" "job not running: $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"; return; }
    out=$("${FLINT[@]}" stop "${M[@]}" --savepoint-path "$TEST_TMP/$name.sp" "$JOB" 2>&1)
    sp=$(sed -n 's/^Savepoint completed. Path: //p' <<<"$out")
    if [ -z "$sp" ] || ! wait_until 10 job_is "$JOB" FINISHED; then
        fail "$name" "stop: $(tr '\n' ' ' <<<"$out") (job $(job_state "$JOB"))"
        return
    fi
    before=$(rows_in "$TEST_TMP/$name.1")
    if [ "$before" -ge "$(wc -l <"$TEST_TMP/q0.expected")" ]; then
        fail "$name" "stopped with all $before rows written: not mid-run"
        return
    fi
    submit -s "$sp" -p "$3" "$EX/nexmark_q0.so" "${ARGS[@]}" --output "$TEST_TMP/$name.2"
    if [ -z "$JOB" ] || ! wait_until 30 job_ended "$JOB" || ! job_is "$JOB" FINISHED; then
        fail "$name" "resumed job $(job_state "$JOB"): $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"
        return
    fi
    cat "$TEST_TMP/$name.1"/part-* "$TEST_TMP/$name.2"/part-* | LC_ALL=C sort >"$TEST_TMP/$name.actual"
    if ! cmp -s "$TEST_TMP/q0.expected" "$TEST_TMP/$name.actual"; then
        fail "$name" "$before + $(rows_in "$TEST_TMP/$name.2") rows, want $(wc -l <"$TEST_TMP/q0.expected"): missing $(comm -23 "$TEST_TMP/q0.expected" "$TEST_TMP/$name.actual" | wc -l), extra $(comm -13 "$TEST_TMP/q0.expected" "$TEST_TMP/$name.actual" | wc -l)"
        return
    fi
    # q0's dateTime is its 4th column: in order within every resumed subtask.
    for f in "$TEST_TMP/$name.2"/part-*; do
        if ! awk '$4 < last { exit 1 } { last = $4 }' "$f"; then
            fail "$name" "$(basename "$f") of the resumed run is out of event-time order"
            return
        fi
    done
    pass "$name"
}

rescale nexmark_savepoint_2_to_4 2 4
rescale nexmark_savepoint_4_to_2 4 2

finish
