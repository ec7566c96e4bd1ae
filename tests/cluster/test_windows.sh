#!/usr/bin/env bash
# Windows and joins end to end on a real cluster (a jobmanager, two taskmanagers with two slots
# each), every windowed job on both state backends (hashmap and -D state.backend.type=rocksdb)
# with identical output, checked against references computed here with awk:
#   - window_wordcount on out-of-order input: event-time tumbling windows; late records to the
#     side output unchanged; with allowed lateness, re-firings with updated counts;
#   - session_clicks: session windows merging (an aggregate's accumulators, a process function's
#     element lists);
#   - window_modes (tests/jobs): tumbling and sliding windows with offsets and negative
#     timestamps (count, sum, min, max, avg, reduce, user aggregate), count windows (tumbling and
#     sliding), a count trigger, a count evictor before a process function, processing-time
#     windows, tumbling/sliding/session window joins;
#   - interval_join against a nested-loop reference;
#   - window arguments checked before submission.
# Lateness depends on when watermarks go out (every pipeline.auto-watermark-interval, here 1 ms):
# the inputs keep every record far from the lateness boundary, so that the result is the one of
# a watermark after every record, which is what the awk references compute.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
TJ=$ROOT/build/tests/jobs
for so in "$EX/window_wordcount.so" "$EX/session_clicks.so" "$EX/interval_join.so" "$TJ/window_modes.so"; do
    [ -f "$so" ] || abort setup "$so is missing: run make"
done

start_local_cluster 2 taskmanager.numberOfTaskSlots=2 slot.request.timeout=5s io.tmp.dirs="$TEST_TMP"
FLINT=("$BIN_DIR/flint")

D=$TEST_TMP
BACKENDS=(hashmap rocksdb)

# run_flint NAME ARGS...: run attached; false (and FAIL NAME) unless the job FINISHED.
run_flint() {
    local name=$1 out rc
    shift
    out=$("${FLINT[@]}" run -m "127.0.0.1:$RPC_PORT" "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q "switched to FINISHED" <<<"$out"; then
        fail "$name" "flint run exited $rc: $(tail -n 4 <<<"$out" | tr '\n' ' ' | cut -c1-400)"
        return 1
    fi
}

# same NAME GOT EXPECTED: PASS when the sorted files are equal.
same() {
    local name=$1
    if diff <(sort "$2") <(sort "$3") >"$D/$name.diff" 2>&1; then
        pass "$name"
    else
        fail "$name" "differs from the reference ($(wc -l <"$D/$name.diff") diff lines): $(head -n 6 "$D/$name.diff" | tr '\n' ' ' | cut -c1-300)"
    fi
}

# each_backend NAME EXPECTED OUTDIR_BASE [-p P] ARGS-WITH-@OUT@...: run on both backends (the
# output directory replaces @OUT@), compare each with EXPECTED and the two with each other.
each_backend() {
    local name=$1 expected=$2 base=$3 be
    shift 3
    for be in "${BACKENDS[@]}"; do
        local out=$base-$be args=() a
        for a in "$@"; do args+=("${a//@OUT@/$out}"); done
        rm -rf "$out"
        run_flint "${name}_$be" -D "state.backend.type=$be" -D pipeline.auto-watermark-interval=1ms "${args[@]}" || continue
        cat "$out"/part-* 2>/dev/null >"$out.txt"
        same "${name}_$be" "$out.txt" "$expected"
    done
    if [ -f "$base-hashmap.txt" ] && [ -f "$base-rocksdb.txt" ]; then
        check "${name}_backends_identical" "hashmap and rocksdb outputs differ" \
            cmp -s <(sort "$base-hashmap.txt") <(sort "$base-rocksdb.txt")
    fi
}

# ---- window_wordcount: out-of-order words, late data, allowed lateness -------------------------------
# 10 lines per ms of event time from -5000 ms, each up to 400 ms out of order (within the bound of
# 500 ms); from line 30000 on, every 997th line a record 3000 or 20000 ms behind: late (to the
# side output) without lateness; with 5000 ms of lateness the first kind re-fires its window.
awk -v SEED=3 -v LINES=100000 'BEGIN {
    srand(SEED);
    nw = split("alpha beta gamma delta eps zeta eta theta iota kappa lam mu nu xi omicron pi rho sigma tau ups", W, " ");
    for (i = 0; i < LINES; i++) {
        base = int(i / 10) - 5000;
        print base - int(rand() * 400), W[int(rand() * nw) + 1];
        if (i >= 30000 && i % 997 == 500) { k++; print base - ((k % 2) ? 3000 : 20000), "late" (k % 3); }
    }
}' >"$D/words.txt"
# The reference: the watermark before each line is the largest earlier timestamp - 500 - 1; a
# record whose window ended (end - 1 <= watermark) re-fires it when end - 1 + L > watermark and is
# late otherwise; windows fire once on time with what they had.
wordcount_ref() {
    awk -v N=1000 -v M=500 -v L="$1" '
    function start(ts) { return ts - ((ts % N) + N) % N }
    BEGIN { have = 0 }
    {
        ts = $1 + 0; w = $2; wm = have ? max - M - 1 : -9e18;
        s = start(ts); e = s + N; k = w SUBSEP s;
        if (e - 1 + L <= wm) print "LATE " $0;
        else if (e - 1 > wm) ontime[k]++;
        else { tot[k] = (k in tot ? tot[k] : ontime[k] + 0) + 1; print s, e, w, tot[k] }
        if (!have || ts > max) max = ts; have = 1;
    }
    END { for (k in ontime) { split(k, p, SUBSEP); print p[2], p[2] + N, p[1], ontime[k] } }' "$D/words.txt"
}
wordcount_ref 0 >"$D/wc-ref0.all"
wordcount_ref 5000 >"$D/wc-ref5000.all"
grep -q '^LATE ' "$D/wc-ref0.all" && grep -q '^LATE ' "$D/wc-ref5000.all" &&
    [ "$(grep -c '^LATE ' "$D/wc-ref0.all")" -gt "$(grep -c '^LATE ' "$D/wc-ref5000.all")" ] ||
    abort wordcount_input "the input has no late records to test with"

for L in 0 5000; do
    grep -v '^LATE ' "$D/wc-ref$L.all" >"$D/wc-ref$L.txt"
    sed -n 's/^LATE //p' "$D/wc-ref$L.all" >"$D/wc-late-ref$L.txt"
    for be in "${BACKENDS[@]}"; do
        out=$D/wc$L-$be
        rm -rf "$out" "$out-late"
        run_flint "window_wordcount_L${L}_$be" -p 3 -D "state.backend.type=$be" -D pipeline.auto-watermark-interval=1ms \
            "$EX/window_wordcount.so" --input "$D/words.txt" --output "$out" --window-ms 1000 --out-of-orderness-ms 500 \
            --allowed-lateness-ms "$L" --late-output "$out-late" || continue
        cat "$out"/part-* >"$out.txt"
        cat "$out-late"/part-* >"$out-late.txt"
        same "window_wordcount_L${L}_$be" "$out.txt" "$D/wc-ref$L.txt"
        same "window_wordcount_late_data_L${L}_$be" "$out-late.txt" "$D/wc-late-ref$L.txt"
    done
    check "window_wordcount_L${L}_backends_identical" "hashmap and rocksdb outputs differ" \
        cmp -s <(sort "$D/wc$L-hashmap.txt") <(sort "$D/wc$L-rocksdb.txt")
done
# Re-firings: with lateness some windows fire more than once, each time with a larger count.
check window_wordcount_refires "no window fired twice with allowed lateness" \
    test "$(awk '{print $1, $2, $3}' "$D/wc5000-hashmap.txt" | sort | uniq -d | wc -l)" -gt 0
# Without --late-output the late records are simply dropped.
rm -rf "$D/wc-nolate"
if run_flint window_wordcount_no_late_output -p 2 -D pipeline.auto-watermark-interval=1ms "$EX/window_wordcount.so" \
    --input "$D/words.txt" --output "$D/wc-nolate" --window-ms 1000 --out-of-orderness-ms 500; then
    cat "$D/wc-nolate"/part-* >"$D/wc-nolate.txt"
    same window_wordcount_no_late_output "$D/wc-nolate.txt" "$D/wc-ref0.txt"
fi

# ---- session_clicks: merging session windows -------------------------------------------------------------
# Per user, sessions of 1-6 clicks at most 500 ms apart, sessions at least 2000 ms apart; lines in
# time order up to 300 ms out of order (within the bound).
awk -v SEED=5 -v USERS=400 'BEGIN {
    srand(SEED);
    for (u = 0; u < USERS; u++) {
        t = int(rand() * 5000) - 20000;
        for (s = 0; s < 8; s++) {
            c = 1 + int(rand() * 6);
            for (k = 0; k < c; k++) { print t + int(rand() * 300), t, "user" u, "p" int(rand() * 9); t += int(rand() * 500) + (rand() < 0.1 ? 0 : 1) }
            t += 2000 + int(rand() * 3000);
        }
    }
}' | sort -n -k1,1 | cut -d' ' -f2- >"$D/clicks.txt"
sort -k2,2 -k1,1n "$D/clicks.txt" | awk -v G=1000 '
    function flush() { if (n) print u, s, last + G, n, last - s }
    { if ($2 != u || $1 > last + G) { flush(); u = $2; s = $1; n = 0 } n++; last = $1 }
    END { flush() }' >"$D/sessions-ref.txt"
for fn in aggregate process; do
    each_backend "session_clicks_$fn" "$D/sessions-ref.txt" "$D/sessions-$fn" -p 3 "$EX/session_clicks.so" \
        --input "$D/clicks.txt" --output @OUT@ --gap-ms 1000 --out-of-orderness-ms 300 --function "$fn"
done

# ---- window_modes: assigners, functions, count windows, triggers, evictors ------------------------------------
# Rows "<ts> <key> <v>": 4 per ms from -3000 ms, up to 200 ms out of order, 12 keys, v in -50..49.
awk -v SEED=11 -v N=16000 'BEGIN { srand(SEED); for (i = 0; i < N; i++) { t = int(i / 4) - 3000;
    print t + int(rand() * 200), t, "k" int(rand() * 12), int(rand() * 100) - 50 } }' |
    sort -n -k1,1 | cut -d' ' -f2- >"$D/rows.txt"
MODES=("$TJ/window_modes.so" --input "$D/rows.txt" --output @OUT@ --ooo 200)

# time_windows SIZE SLIDE OFFSET FN: the reference of tumbling (SLIDE = SIZE) or sliding windows.
time_windows() {
    awk -v Z="$1" -v S="$2" -v O="$3" -v F="$4" '
    function start(ts) { return ts - (((ts - O) % S) + S) % S }
    {
        for (s = start($1); s > $1 - Z; s -= S) {
            k = $2 SUBSEP s; n[k]++; sum[k] += $3;
            if (!(k in mn) || $3 < mn[k]) mn[k] = $3; if (!(k in mx) || $3 > mx[k]) mx[k] = $3;
            if (!(k in ts) || $1 > ts[k]) ts[k] = $1;
        }
    }
    END { for (k in n) { split(k, p, SUBSEP); r = p[1] " " p[2] " " p[2] + Z " ";
        if (F == "count") print r n[k]; else if (F == "sum") print r sum[k]; else if (F == "min") print r mn[k];
        else if (F == "max") print r mx[k]; else if (F == "avg") printf "%s%.3f\n", r, sum[k] / n[k];
        else if (F == "reduce") print r ts[k], sum[k]; else if (F == "aggregate") printf "%s%d %.3f\n", r, n[k], sum[k] / n[k] } }' "$D/rows.txt"
}
time_windows 500 500 0 count >"$D/tumbling-count-ref.txt"
each_backend window_tumbling_count "$D/tumbling-count-ref.txt" "$D/tumbling-count" -p 3 "${MODES[@]}" --size 500 --fn count
time_windows 1000 250 100 sum >"$D/sliding-sum-ref.txt"
each_backend window_sliding_offset_sum "$D/sliding-sum-ref.txt" "$D/sliding-sum" -p 2 "${MODES[@]}" \
    --window sliding --size 1000 --slide 250 --offset 100 --fn sum
for fn in min max avg reduce aggregate; do
    time_windows 600 200 -50 "$fn" >"$D/sliding-$fn-ref.txt"
    each_backend "window_sliding_$fn" "$D/sliding-$fn-ref.txt" "$D/sliding-$fn" -p 3 "${MODES[@]}" \
        --window sliding --size 600 --slide 200 --offset -50 --fn "$fn"
done

# Count windows: per key in arrival (file) order.
awk '{ k = $2; n[k]++; s[k] += $3; if (n[k] % 5 == 0) { print k, "null null", s[k]; s[k] = 0 } }' \
    "$D/rows.txt" >"$D/count-ref.txt"
each_backend window_count_tumbling "$D/count-ref.txt" "$D/count" -p 2 "${MODES[@]}" --window count --size 5 --fn sum
awk '{ k = $2; n[k]++; v[k, n[k]] = $3; if (n[k] % 3 == 0) { t = 0; for (i = n[k]; i > n[k] - 7 && i > 0; i--) t += v[k, i];
    print k, "null null", t } }' "$D/rows.txt" >"$D/count-sliding-ref.txt"
each_backend window_count_sliding "$D/count-sliding-ref.txt" "$D/count-sliding" -p 2 "${MODES[@]}" \
    --window count_sliding --size 7 --slide 3 --fn sum

# A count trigger (every 4 elements of a key's window, not purging) on tumbling windows.
awk -v Z=700 '{ s = $1 - ((($1 % Z) + Z) % Z); k = $2 SUBSEP s; c[k]++; if (c[k] % 4 == 0) print $2, s, s + Z, c[k] }' \
    "$D/rows.txt" >"$D/trigger-ref.txt"
each_backend window_count_trigger "$D/trigger-ref.txt" "$D/trigger" -p 2 "${MODES[@]}" --size 700 --fn count --trigger count:4

# A count evictor (the last 3 elements) before a process function.
awk -v Z=800 '{ s = $1 - ((($1 % Z) + Z) % Z); k = $2 SUBSEP s; n[k]++; T[k, n[k]] = $1; V[k, n[k]] = $3 }
    END { for (k in n) { split(k, p, SUBSEP); m = 0; t = 0; for (i = n[k]; i > n[k] - 3 && i > 0; i--) {
        t += V[k, i]; if (!m || T[k, i] < f) f = T[k, i]; if (!m || T[k, i] > l) l = T[k, i]; m++ }
        print p[1], p[2], p[2] + Z, m, t, f, l } }' "$D/rows.txt" >"$D/evict-ref.txt"
each_backend window_evictor_process "$D/evict-ref.txt" "$D/evict" -p 2 "${MODES[@]}" --size 800 --fn process --evict-count 3

# ---- joins ---------------------------------------------------------------------------------------------------
awk -v SEED=12 -v N=5000 'BEGIN { srand(SEED); for (i = 0; i < N; i++) { t = int(i / 2) - 1000;
    print t + int(rand() * 150), t, "k" int(rand() * 40), i } }' | sort -n -k1,1 | cut -d' ' -f2- >"$D/left.txt"
awk -v SEED=13 -v N=5000 'BEGIN { srand(SEED); for (i = 0; i < N; i++) { t = int(i / 2) - 1000;
    print t + int(rand() * 150), t, "k" int(rand() * 40), 100000 + i } }' | sort -n -k1,1 | cut -d' ' -f2- >"$D/right.txt"
JOIN=("$TJ/window_modes.so" --input "$D/left.txt" --input2 "$D/right.txt" --output @OUT@ --ooo 150)

# Window joins: every pair of a key's rows in a common window (once per common window).
window_join_ref() {
    awk -v Z="$1" -v S="$2" 'function start(ts) { return ts - ((ts % S) + S) % S }
        NR == FNR { for (s = start($1); s > $1 - Z; s -= S) { k = $2 SUBSEP s; n[k]++; A[k, n[k]] = $1 " " $3 } next }
        { for (s = start($1); s > $1 - Z; s -= S) { k = $2 SUBSEP s; for (i = 1; i <= n[k]; i++) print $2, A[k, i], $1, $3 } }' \
        "$D/left.txt" "$D/right.txt"
}
window_join_ref 100 100 >"$D/join-tumbling-ref.txt"
each_backend window_join_tumbling "$D/join-tumbling-ref.txt" "$D/join-tumbling" -p 3 "${JOIN[@]}" --fn join --size 100
window_join_ref 60 20 >"$D/join-sliding-ref.txt"
each_backend window_join_sliding "$D/join-sliding-ref.txt" "$D/join-sliding" -p 2 "${JOIN[@]}" \
    --fn join --window sliding --size 60 --slide 20
# Session join: sessions over both sides' rows of a key; the pairs within a session.
awk '{ print $1, $2, "L", $3 }' "$D/left.txt" >"$D/both.txt"
awk '{ print $1, $2, "R", $3 }' "$D/right.txt" >>"$D/both.txt"
sort -k2,2 -k1,1n "$D/both.txt" | awk -v G=25 '
    function flush(   i, j) { for (i = 1; i <= nl; i++) for (j = 1; j <= nr; j++) print key, L[i], R[j]; nl = nr = 0 }
    { if ($2 != key || $1 > last + G) { flush(); key = $2 } last = $1;
      if ($3 == "L") L[++nl] = $1 " " $4; else R[++nr] = $1 " " $4 }
    END { flush() }' >"$D/join-session-ref.txt"
each_backend window_join_session "$D/join-session-ref.txt" "$D/join-session" -p 2 "${JOIN[@]}" --fn join --window session --gap 25

# Interval join: a nested loop over both inputs.
for bounds in "-20 35" "-30 -10"; do
    read -r LO UP <<<"$bounds"
    awk -v LO="$LO" -v UP="$UP" 'NR == FNR { n[$2]++; T[$2, n[$2]] = $1; V[$2, n[$2]] = $3; next }
        { for (i = 1; i <= n[$2]; i++) if (T[$2, i] + LO <= $1 && $1 <= T[$2, i] + UP) print $2, T[$2, i], V[$2, i], $1, $3 }' \
        "$D/left.txt" "$D/right.txt" >"$D/interval-ref.txt"
    each_backend "interval_join_${LO}_${UP}" "$D/interval-ref.txt" "$D/interval-$LO-$UP" -p 3 "$EX/interval_join.so" \
        --left "$D/left.txt" --right "$D/right.txt" --output @OUT@ --lower-ms "$LO" --upper-ms "$UP" --out-of-orderness-ms 150
done

# ---- processing time -------------------------------------------------------------------------------------------
# 600 generated rows at 400 rows/s, counted per key in 250 ms processing-time windows: aligned
# windows, each (key, window) once; the windows still open when the input ends do not fire (as in
# Flink), so the counts add up to at most 600.
for be in "${BACKENDS[@]}"; do
    out=$D/proc-$be
    rm -rf "$out"
    run_flint "window_processing_time_$be" -p 2 -D "state.backend.type=$be" "$TJ/window_modes.so" --datagen 600:400 \
        --output "$out" --time processing --size 250 --fn count || continue
    cat "$out"/part-* >"$out.txt"
    if awk '{ if ($3 - $2 != 250 || $2 % 250 != 0 || $4 < 1) bad = 1; if (seen[$1, $2]++) bad = 1; t += $4 }
            END { exit !(NR > 0 && !bad && t <= 600 && t >= 200) }' "$out.txt"; then
        pass "window_processing_time_$be"
    else
        fail "window_processing_time_$be" "unexpected windows: $(head -n 4 "$out.txt" | tr '\n' ' ') ($(wc -l <"$out.txt") lines)"
    fi
done

# ---- validation before submission ------------------------------------------------------------------------------
bad_args() {
    local name=$1 want=$2 out
    shift 2
    out=$("${FLINT[@]}" run -m "127.0.0.1:$RPC_PORT" "$TJ/window_modes.so" --input "$D/rows.txt" --output "$D/bad" "$@" 2>&1)
    if [ $? -ne 0 ] && grep -qF -- "$want" <<<"$out"; then pass "$name"; else fail "$name" "expected '$want': $(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
}
bad_args window_rejects_zero_size "a tumbling window needs a size > 0 ms" --size 0
bad_args window_rejects_bad_offset "offset must satisfy abs(offset) < slide" --window sliding --size 100 --slide 10 --offset 10
bad_args window_rejects_session_without_gap "a session window needs a gap > 0 ms" --window session
bad_args interval_join_rejects_bounds "lower bound (10 ms) is greater than the upper bound (5 ms)" --input2 "$D/rows.txt" \
    --fn interval --lower 10 --upper 5

check no_crash_reports "a daemon log reports a crash or sanitizer error" no_crash_reports
finish
