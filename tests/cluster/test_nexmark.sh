#!/usr/bin/env bash
# The Nexmark example queries end to end on a real cluster: a jobmanager and two taskmanagers with
# one slot each, so that the two source subtasks of a parallelism-2 job generate their parts of
# the event sequence in two processes. q0, q1 and q2 on a small seeded run, written to text part
# files, are compared (sorted) with the rows build/tests/nexmark_ref computes straight from the
# generator; a rate-limited run takes the time its rate says and gives the same rows; bad
# arguments are refused before anything is submitted.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck disable=SC2016  # awk programs in single quotes
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
REF=$ROOT/build/tests/nexmark_ref
for so in nexmark_q0 nexmark_q1 nexmark_q2; do
    [ -f "$EX/$so.so" ] || abort setup "$EX/$so.so is missing: run make"
done
[ -x "$REF" ] || abort setup "$REF is missing: run make"

start_local_cluster 2 taskmanager.numberOfTaskSlots=1 slot.request.timeout=5s io.tmp.dirs="$TEST_TMP"
FLINT=("$BIN_DIR/flint")

EVENTS=20000
SEED=7

# run_query NAME QUERY SECONDS_VAR JOB_ARGS...: run build/examples/nexmark_QUERY.so at parallelism
# 2 with --output, wait for FINISHED, and compare its rows with nexmark_ref's for the same
# --events/--seed (and --rate, which sets the event-time spacing). Sets $SECONDS_VAR to the run's
# wall-clock seconds.
run_query() {
    local name=$1 q=$2 secvar=$3 out rc dir=$TEST_TMP/$1 t0 t1 n
    shift 3
    t0=$(now_ms)
    out=$("${FLINT[@]}" run -m "127.0.0.1:$RPC_PORT" -p 2 "$EX/nexmark_$q.so" "$@" --output "$dir" 2>&1)
    rc=$?
    t1=$(now_ms)
    printf -v "$secvar" '%s' "$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.2f", ms / 1000 }')"
    if [ "$rc" -ne 0 ] || ! grep -q "switched to FINISHED" <<<"$out"; then
        fail "$name" "flint run exited $rc: $(tail -n 4 <<<"$out" | tr '\n' ' ')"
        return 1
    fi
    # Both subtasks wrote rows (each generated its half of the sequence).
    n=0
    for f in "$dir"/part-*; do [ -s "$f" ] && n=$((n + 1)); done
    if [ "$n" -ne 2 ]; then
        fail "$name" "$n non-empty part files in $dir, expected 2 (one per subtask)"
        return 1
    fi
    # The arguments that shape the events (--events, --seed, --rate) go to the reference.
    "$REF" --query "$q" "$@" | LC_ALL=C sort >"$dir.expected"
    cat "$dir"/part-* | LC_ALL=C sort >"$dir.actual"
    if [ ! -s "$dir.expected" ]; then
        fail "$name" "the reference produced no rows"
    elif cmp -s "$dir.expected" "$dir.actual"; then
        pass "$name"
    else
        fail "$name" "rows differ from the reference ($(wc -l <"$dir.actual") vs $(wc -l <"$dir.expected") expected): $(diff "$dir.expected" "$dir.actual" | head -n 3 | cut -c1-200 | tr '\n' ' ')"
    fi
}

secs=""
run_query nexmark_q0_p2 q0 secs --events "$EVENTS" --seed "$SEED"
# q0 passes every bid: 46 of every 50 events.
BIDS=$((EVENTS * 46 / 50))
check nexmark_q0_all_bids "q0 wrote $(wc -l <"$TEST_TMP/nexmark_q0_p2.actual" 2>/dev/null) rows, expected $BIDS" \
    test "$(wc -l <"$TEST_TMP/nexmark_q0_p2.actual" 2>/dev/null)" = "$BIDS"
run_query nexmark_q1_p2 q1 secs --events "$EVENTS" --seed "$SEED"
# q1's prices are 0.908 * q0's (the same bids, in the same order within the reference).
check nexmark_q1_converts_prices "q1's prices are not 0.908 * q0's" \
    awk 'NR == FNR { p[FNR] = $3; next } { d = $3 - 0.908 * p[FNR]; if (d > 1e-6 || d < -1e-6) exit 1 }' \
    <("$REF" --query q0 --events 500 --seed "$SEED") <("$REF" --query q1 --events 500 --seed "$SEED")
run_query nexmark_q2_p2 q2 secs --events "$EVENTS" --seed "$SEED"
check nexmark_q2_selects "q2's rows are not all of auctions % 123 == 0" \
    awk '$1 % 123 != 0 { bad = 1 } END { exit bad || NR == 0 }' "$TEST_TMP/nexmark_q2_p2.actual"

# Another seed, other rows.
check nexmark_seed_matters "seeds 7 and 8 gave the same q0 rows" \
    test "$("$REF" --query q0 --events 200 --seed 7 | md5sum)" != "$("$REF" --query q0 --events 200 --seed 8 | md5sum)"

# Rate-limited: 4000 events at 2000 events/s over both subtasks take about 2 s; the rate also sets
# the event-time spacing (0.5 ms per event), which the reference follows.
run_query nexmark_q0_rate q0 secs --events 4000 --rate 2000 --seed 3
check nexmark_rate_limits "4000 events at 2000/s took ${secs} s" \
    awk -v s="$secs" 'BEGIN { exit !(s >= 1.6 && s < 15) }'

# Bad arguments: refused with the usage, nothing submitted.
jobs_before=$(rest_json /jobs '.jobs | length')
expect_refused() {
    local name=$1 pattern=$2 out rc
    shift 2
    out=$("${FLINT[@]}" run -m "127.0.0.1:$RPC_PORT" "$@" 2>&1)
    rc=$?
    if [ "$rc" = 1 ] && grep -qE -- "$pattern" <<<"$out"; then
        pass "$name"
    else
        fail "$name" "exit $rc, expected 1 with /$pattern/: $(head -n 3 <<<"$out" | tr '\n' ' ')"
    fi
}
expect_refused nexmark_needs_events "--events is required" "$EX/nexmark_q0.so"
expect_refused nexmark_bad_rate "--rate: 'fast' is not a valid" "$EX/nexmark_q1.so" --events 10 --rate fast
expect_refused nexmark_unknown_arg "unknown argument '--bogus'" "$EX/nexmark_q2.so" --events 10 --bogus 1
check nexmark_bad_args_not_submitted "a refused job reached the jobmanager" \
    test "$(rest_json /jobs '.jobs | length')" = "$jobs_before"

check no_crash_reports "a daemon crashed or a sanitizer reported" no_crash_reports
finish
