#!/usr/bin/env bash
# Event time, timers, side outputs and two-input operators end to end on a real cluster (a
# jobmanager and two taskmanagers with two slots each): keyed_timeout at parallelism 2 on both
# state backends against alerts computed independently with awk (and identical output on both);
# keyed and non-keyed connected streams; side outputs (chained and over the network, from a
# process function and a keyed process function); broadcast state on every instance and read-only
# outside the broadcast side; processing-time timers firing while the input flows.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
TJ=$ROOT/build/tests/jobs
for so in "$EX/keyed_timeout.so" "$TJ/time_jobs.so"; do
    [ -f "$so" ] || abort setup "$so is missing: run make"
done

start_local_cluster 2 taskmanager.numberOfTaskSlots=2 slot.request.timeout=3s io.tmp.dirs="$TEST_TMP"
FLINT=("$BIN_DIR/flint")
M=(-m "127.0.0.1:$RPC_PORT")

# run_job NAME ARGS...: run attached; 0 when it FINISHED (else FAIL NAME and 1).
run_job() {
    local name=$1 out rc
    shift
    out=$("${FLINT[@]}" run "${M[@]}" "$@" 2>&1)
    rc=$?
    echo "$out" >"$TEST_TMP/$name.run.txt"
    if [ "$rc" -ne 0 ] || ! grep -q "switched to FINISHED" <<<"$out"; then
        fail "$name" "flint run exited $rc: $(tail -n 4 <<<"$out" | tr '\n' ' ')"
        return 1
    fi
}

# parts DIR: every line of DIR's part files, sorted.
parts() { cat "$1"/part-* 2>/dev/null | sort; }

# same NAME EXPECTED_FILE DIR: PASS when DIR's sorted lines equal the file's.
same() {
    if diff <(parts "$3") <(sort "$2") >"$TEST_TMP/$1.diff"; then
        pass "$1"
    else
        fail "$1" "$(wc -l <"$TEST_TMP/$1.diff") diff lines: $(head -n 6 "$TEST_TMP/$1.diff" | tr '\n' ' ')"
    fi
}

# ---- keyed_timeout -------------------------------------------------------------------------------
# 4000 events of 60 keys in time order with gaps of 0..40 ms overall; a key's own gaps vary a lot,
# so some exceed the 1500 ms timeout and some do not. Equal timestamps occur.
TIMEOUT=1500
awk 'BEGIN {
    srand(11); t = 1700000000000;
    for (i = 0; i < 4000; i++) {
        t += int(rand() * 41);
        k = int(rand() * rand() * 60);          # skewed: hot and cold keys
        printf "%.0f key%d\n", t, k;
    }
    print "not an event";
    print "";
}' >"$TEST_TMP/events.txt"
# The expected alerts, computed with awk: a key alerts with its previous timestamp when its next
# event comes more than TIMEOUT later, and with its last timestamp at the end of the input.
awk -v n="$TIMEOUT" 'NF == 2 && $1 ~ /^[0-9]+$/ {
        if (($2 in last) && $1 > last[$2] + n) print $2, last[$2];
        if (!($2 in last) || $1 > last[$2]) last[$2] = $1;
    }
    END { for (k in last) print k, last[k] }' "$TEST_TMP/events.txt" | sort >"$TEST_TMP/timeouts.expected"
nexp=$(wc -l <"$TEST_TMP/timeouts.expected")
nkeys=$(awk 'NF == 2 && $1 ~ /^[0-9]+$/ { print $2 }' "$TEST_TMP/events.txt" | sort -u | wc -l)
check timeout_input_has_gaps "the input makes no mid-stream alerts ($nexp alerts, $nkeys keys)" \
    test "$nexp" -gt $((nkeys + 20))

for backend in hashmap rocksdb; do
    if run_job "keyed_timeout_$backend" -p 2 -D "state.backend.type=$backend" "$EX/keyed_timeout.so" \
        --input "$TEST_TMP/events.txt" --output "$TEST_TMP/timeout-$backend" --timeout-ms "$TIMEOUT"; then
        same "keyed_timeout_$backend" "$TEST_TMP/timeouts.expected" "$TEST_TMP/timeout-$backend"
    fi
done
check keyed_timeout_both_parts "the alerts did not come from both subtasks" \
    test "$(find "$TEST_TMP/timeout-hashmap" -name 'part-*' -size +0 | wc -l)" = 2
check keyed_timeout_backends_identical "hashmap and rocksdb wrote different alerts" \
    diff <(parts "$TEST_TMP/timeout-hashmap") <(parts "$TEST_TMP/timeout-rocksdb")
check keyed_timeout_bad_args "a missing --timeout-ms was not refused" \
    bash -c "! '${FLINT[0]}' run ${M[*]} '$EX/keyed_timeout.so' --input x --output y 2>&1 | grep -q FINISHED"

# ---- connected streams ----------------------------------------------------------------------------
for i in $(seq 5 20); do echo "k$i $i $((i * 100))"; done >"$TEST_TMP/connect_keyed.expected"
for backend in hashmap rocksdb; do
    if run_job "connect_keyed_$backend" -p 2 -D "state.backend.type=$backend" "$TJ/time_jobs.so" \
        --mode connect_keyed --output "$TEST_TMP/ck-$backend"; then
        same "connect_keyed_$backend" "$TEST_TMP/connect_keyed.expected" "$TEST_TMP/ck-$backend/main"
    fi
done
{ for i in $(seq 1 20); do echo "A $i"; done; for i in $(seq 5 25); do echo "B $((i * 100))"; done; } \
    >"$TEST_TMP/connect.expected"
if run_job connect -p 2 "$TJ/time_jobs.so" --mode connect --output "$TEST_TMP/connect"; then
    same connect "$TEST_TMP/connect.expected" "$TEST_TMP/connect/main"
fi

# ---- side outputs ------------------------------------------------------------------------------------
if run_job side_outputs -p 2 "$TJ/time_jobs.so" --mode side --output "$TEST_TMP/side"; then
    seq 2 2 100 >"$TEST_TMP/side_main.expected"
    for i in $(seq 1 2 99); do echo "$i $((i * i))"; done >"$TEST_TMP/side_odd.expected"
    for i in $(seq 91 100); do echo "big-$i"; done >"$TEST_TMP/side_big.expected"
    for i in $(seq 10 10 100); do echo "$i $((i % 3))"; done >"$TEST_TMP/side_tens.expected"
    same side_output_main "$TEST_TMP/side_main.expected" "$TEST_TMP/side/main"
    same side_output_network "$TEST_TMP/side_odd.expected" "$TEST_TMP/side/odd"
    same side_output_chained "$TEST_TMP/side_big.expected" "$TEST_TMP/side/big"
    same side_output_keyed "$TEST_TMP/side_tens.expected" "$TEST_TMP/side/tens"
fi

# ---- broadcast state ------------------------------------------------------------------------------------
if run_job broadcast -p 2 "$TJ/time_jobs.so" --mode broadcast --output "$TEST_TMP/bc"; then
    { for i in $(seq 1 10); do echo "n $i"; done
      for r in a b c; do echo "rule $r 0"; echo "rule $r 1"; done; } >"$TEST_TMP/bc.expected"
    same broadcast_every_instance "$TEST_TMP/bc.expected" "$TEST_TMP/bc/main"
fi
out=$("${FLINT[@]}" run "${M[@]}" -p 2 "$TJ/time_jobs.so" --mode broadcast_ro --output "$TEST_TMP/bc-ro" 2>&1)
if grep -q "switched to FAILED" <<<"$out" && grep -q "read-only" <<<"$out"; then
    pass broadcast_state_read_only
else
    fail broadcast_state_read_only "expected a FAILED job about read-only broadcast state: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

# ---- processing-time timers ---------------------------------------------------------------------------
if run_job proctime_timers -p 2 "$TJ/time_jobs.so" --mode proctime --output "$TEST_TMP/pt"; then
    for i in 0 1 2 3 4; do echo "fired $i 1"; done >"$TEST_TMP/pt.expected"
    same proctime_timers "$TEST_TMP/pt.expected" "$TEST_TMP/pt/main"
fi

finish
