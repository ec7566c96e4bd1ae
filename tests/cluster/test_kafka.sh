#!/usr/bin/env bash
# The Kafka connectors on a real cluster (a jobmanager, two taskmanagers with two slots each)
# against the local Kafka-protocol cluster (build/bin/flint-kafka-local, three brokers), with kcat
# as the independent client: the local cluster itself; keyed counts read exactly once from four
# partitions; WordCount from Kafka to Kafka JSON checked against counts computed with kcat and
# awk; transactions of the exactly-once sink in the logs; a broker taken down and brought back
# mid-run; malformed JSON (failure naming partition and offset, skipping with a count, dead
# letters, the numRecordsInErrors metric over REST and Prometheus); metadata columns; record
# headers written by the sink (static, and copied byte for byte from the source's headers
# column); start from a timestamp and from committed group offsets (committed by checkpoints);
# topics discovered while running; errors found at flint run.
# Recovery after kill -9 is in test_kafka_recovery.sh.
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
EX=$ROOT/build/examples
TJ=$ROOT/build/tests/jobs
for so in "$EX/kafka_keyed_count.so" "$EX/kafka_wordcount.so" "$TJ/kafka_pipe.so"; do
    [ -f "$so" ] || abort setup "$so is missing: run make"
done

start_local_cluster 2 taskmanager.numberOfTaskSlots=2 slot.request.timeout=5s io.tmp.dirs="$TEST_TMP" \
    state.checkpoints.dir="$TEST_TMP/checkpoints"
# flint VERB ARGS...: the client against this cluster.
flint() { "$BIN_DIR/flint" "$1" -m "127.0.0.1:$RPC_PORT" "${@:2}"; }

# ---- the local Kafka cluster ---------------------------------------------------------------------
KCTL=$TEST_TMP/kafka.ctl
start_kafka_local --brokers 3 --topic smoke:2 --topic keys:4 --topic lines:4 --topic counts:4 --topic json:2 \
    --topic meta:3 --topic times:2 --topic down-in:4 --topic down-out:4 --topic eo-out:2 --topic grp-out:2 \
    --topic found:1 --topic hdr-in:1 --topic hdr-out:2 --control "$KCTL"
# kctl COMMAND...: a control command through the FIFO; succeeds when it is answered "ok".
kctl() {
    local before answer
    before=$(wc -l <"$TEST_TMP/kafka.out")
    printf '%s\n' "$*" >"$KCTL"
    for _ in $(seq 1 50); do
        answer=$(tail -n +"$((before + 1))" "$TEST_TMP/kafka.out" | grep -m1 -E '^(ok|error:)')
        [ -n "$answer" ] && { [[ $answer == ok* ]]; return; }
        sleep 0.05
    done
    return 1
}
pass kafka_local_up

seq 1 1000 | sed 's/^/line /' >"$TEST_TMP/smoke.txt"
"${KCAT[@]}" -P -t smoke -p 1 <"$TEST_TMP/smoke.txt"
check kafka_local_kcat_roundtrip "kcat read back something else" \
    diff -q "$TEST_TMP/smoke.txt" <("${KCAT[@]}" -C -t smoke -p 1 -e -q)
control_ok() { kctl down 2 && kctl up 2 && kctl topic made:3 && ! kctl down 9; }
check kafka_local_control "broker down/up or topic creation not acknowledged: $(tail -n 2 "$TEST_TMP/kafka.out")" control_ok
made_has_3() { "${KCAT[@]}" -L -t made 2>/dev/null | grep -q 'with 3 partitions'; }
check kafka_local_topic_metadata "topic 'made' has not 3 partitions" made_has_3

job_state() { rest_json "/jobs/$1" .state; }
job_is() { [ "$(job_state "$1")" = "$2" ]; }
slots_free_is() { [ "$(overview slots-available)" = "$1" ]; }
submit_detached() {
    local out
    out=$(flint run -d "$@" 2>&1)
    JOB=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
    [ -n "$JOB" ] || echo "$out" >"$TEST_TMP/last_submit.txt"
}
# run_finished NAME ARGS...: flint run (attached) must end FINISHED; the output is in $RUN_OUT.
run_finished() {
    local name=$1 rc
    shift
    RUN_OUT=$(flint run "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q "switched to FINISHED" <<<"$RUN_OUT"; then
        fail "$name" "flint run exited $rc: $(tail -n 4 <<<"$RUN_OUT" | tr '\n' ' ')"
        return 1
    fi
}
tm_logs() { cat "$TEST_TMP"/tm*.log 2>/dev/null; }
lines_in() { cat "$1"/part-* 2>/dev/null | wc -l; }

# ---- keyed count: 100k records from four partitions, each exactly once -------------------------
awk 'BEGIN { srand(11); for (i = 0; i < 100000; i++) print "k" int(rand() * 1000) }' >"$TEST_TMP/keys.txt"
for p in 0 1 2 3; do
    awk -v p=$p 'NR % 4 == p' "$TEST_TMP/keys.txt" | "${KCAT[@]}" -P -t keys -p $p
done
sort "$TEST_TMP/keys.txt" | uniq -c | awk '{ for (i = 1; i <= $1; i++) print $2, i }' | sort >"$TEST_TMP/keys.expected"
# keyed_count_ok DIR: the committed output is exactly "k 1" .. "k n" once each for every key.
keyed_count_ok() { diff -q <(cat "$1"/part-* 2>/dev/null | sort) "$TEST_TMP/keys.expected" >/dev/null; }
if run_finished keyed_count_exactly_once -p 2 -D execution.checkpointing.interval=200ms "$EX/kafka_keyed_count.so" \
    --bootstrap-servers "$B" --topic keys --output "$TEST_TMP/kc" --bounded; then
    check keyed_count_exactly_once "output differs from the expected counts ($(lines_in "$TEST_TMP/kc") lines)" \
        keyed_count_ok "$TEST_TMP/kc"
fi

# ---- WordCount: Kafka lines -> event-time windows -> Kafka JSON ---------------------------------
for p in 0 1 2 3; do
    awk -v p=$p 'BEGIN { srand(p + 3); split("the a flint kafka stream window word count state barrier", w, " ");
                         for (i = 0; i < 1500; i++) { s = ""; n = 1 + int(rand() * 6);
                             for (j = 0; j < n; j++) s = s w[int(rand() * 10) + 1] (rand() < 0.2 ? ", " : " ");
                             print s } }' | "${KCAT[@]}" -P -t lines -p $p
    sleep 0.2
done
WINDOW=250
# Expected: counts per (window start, word) from the records' Kafka timestamps.
"${KCAT[@]}" -C -t lines -e -q -f '%T %s\n' | awk -v w=$WINDOW '{ ws = sprintf("%.0f", $1 - $1 % w); $1 = "";
    n = split(tolower($0), t, /[^a-z0-9]+/); for (i = 1; i <= n; i++) if (t[i] != "") c[ws " " t[i]]++ }
    END { for (k in c) print k, c[k] }' | sort >"$TEST_TMP/wc.expected"
if run_finished wordcount_kafka_to_kafka -p 2 "$EX/kafka_wordcount.so" --bootstrap-servers "$B" --input-topic lines \
    --output-topic counts --window-ms $WINDOW --bounded --delivery exactly-once --transactional-id-prefix wc; then
    "${KCAT[@]}" -C -t counts -e -q -f '%k\t%s\n' >"$TEST_TMP/wc.records"
    jq -r '"\(.window_start) \(.word) \(.count)"' < <(cut -f2 "$TEST_TMP/wc.records") | sort >"$TEST_TMP/wc.got"
    check wordcount_kafka_to_kafka "window counts differ from kcat's: $(diff "$TEST_TMP/wc.got" "$TEST_TMP/wc.expected" | head -n 4 | tr '\n' ' ')" \
        diff -q "$TEST_TMP/wc.got" "$TEST_TMP/wc.expected"
    keys_are_words() { awk -F'\t' '{ if (index($2, "\"word\":\"" $1 "\"") == 0) exit 1 }' "$TEST_TMP/wc.records"; }
    check wordcount_keys_are_words "a record key is not its word" keys_are_words
fi
# The exactly-once sink: producers with transactional ids wc-<subtask>-<k> were initialized (which
# aborts what an earlier attempt left open) and the transaction committed at the end of input.
wc_transactions() {
    tm_logs | grep -q 'transactional producers wc-1-0..2 initialized' &&
        [ "$(tm_logs | grep -c 'committed the transaction of wc-[01]-0 (end of input)')" = 2 ]
}
check exactly_once_sink_transactions "no transactional producers or commits in the taskmanager logs" wc_transactions

# Exactly-once with checkpoints: a transaction per checkpoint, committed when it completes.
for p in 0 1; do seq 1 3000 | sed "s/^/e$p-/" | "${KCAT[@]}" -P -t smoke -p $p; done
submit_detached -p 1 -D execution.checkpointing.interval=200ms "$TJ/kafka_pipe.so" --bootstrap "$B" --topic smoke \
    --rate 2000 --out-topic eo-out --delivery exactly-once --prefix eo
eo_committed() { [ "$(tm_logs | grep -c 'committed the transaction of eo-0-[0-2] (checkpoint')" -ge 3 ]; }
check exactly_once_commit_per_checkpoint "transactions committed per checkpoint: $(tm_logs | grep -c 'eo-0-.*checkpoint')" \
    wait_until 20 eo_committed
eo_flushed() { tm_logs | grep -q 'transaction on eo-0-[0-2] flushed for checkpoint'; }
check exactly_once_flush_at_barrier "no transaction flushed for a checkpoint" eo_flushed
flint cancel "$JOB" >/dev/null 2>&1
wait_until 10 job_is "$JOB" CANCELED

# ---- a broker down and back up mid-run: the job goes on and loses nothing -----------------------
for p in 0 1 2 3; do seq $((p * 3000 + 1)) $((p * 3000 + 3000)) | "${KCAT[@]}" -P -t down-in -p $p; done
submit_detached -p 2 -D execution.checkpointing.interval=300ms "$TJ/kafka_pipe.so" --bootstrap "$B" --topic down-in \
    --bounded --rate 4000 --out-topic down-out
if [ -n "$JOB" ] && wait_until 10 job_is "$JOB" RUNNING; then
    sleep 0.8
    kctl down 1 && kctl down 3
    sleep 1.5
    check broker_down_job_keeps_running "the job is $(job_state "$JOB") with brokers 1 and 3 down" job_is "$JOB" RUNNING
    kctl up 1 && kctl up 3
    check broker_down_job_finishes "job ended $(job_state "$JOB")" wait_until 30 job_is "$JOB" FINISHED
    got=$("${KCAT[@]}" -C -t down-out -e -q | sort -n | uniq | wc -l)
    check broker_down_nothing_lost "$got distinct records of 12000 in the output topic" test "$got" = 12000
else
    fail broker_down_job_keeps_running "job did not start: $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"
fi

# ---- malformed JSON -------------------------------------------------------------------------------
printf '{"n": %d, "s": "ok"}\n' 1 2 3 | "${KCAT[@]}" -P -t json -p 0
printf '{"n": 4, "s": "ok"}\n{"n": five}\n{"n": 6, "s": "ok"}\n' | "${KCAT[@]}" -P -t json -p 1
JSON_OUT=$(flint run -p 1 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic json --format json --schema "n BIGINT, s STRING" \
    --bounded --out-dir "$TEST_TMP/json-fail" 2>&1)
JSON_RC=$?
json_failed() {
    [ "$JSON_RC" = 1 ] && grep -q "switched to FAILED" <<<"$JSON_OUT" &&
        grep -q "cannot parse the record at topic json, partition 1, offset 1 (format json): not JSON" <<<"$JSON_OUT"
}
check malformed_json_fails_naming_the_record "exit $JSON_RC: $(grep -m1 -i 'parse' <<<"$JSON_OUT" | cut -c1-300)" json_failed
# source_errors JOB: the numRecordsInErrors of the source operator of JOB (one subtask) over REST.
source_errors() {
    local v id
    v=$(rest_json "/jobs/$1" '.vertices[0].id')
    id=$(rest_json "/jobs/$1/vertices/$v/metrics" '[.[].id | select(endswith(".numRecordsInErrors"))][0] // empty')
    [ -n "$id" ] && rest_json "/jobs/$1/vertices/$v/metrics?get=$id" '.[0].value'
}
source_errors_is() { [ "$(source_errors "$1")" = "$2" ]; }
run_job_id() { sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$RUN_OUT"; }
if run_finished malformed_json_skipped -p 1 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic json --format json \
    --schema "n BIGINT, s STRING" --bounded --ignore-parse-errors --out-dir "$TEST_TMP/json-skip"; then
    check malformed_json_skipped "$(lines_in "$TEST_TMP/json-skip") rows, want 5" test "$(lines_in "$TEST_TMP/json-skip")" = 5
    skipped_logged() { tm_logs | grep -q 'skipped a record that does not parse (1 so far): topic json, partition 1, offset 1'; }
    check malformed_json_counted "no count of skipped records in the logs" skipped_logged
    JOB=$(run_job_id)
    check malformed_json_metric "numRecordsInErrors of the finished job is '$(source_errors "$JOB")', want 1" \
        source_errors_is "$JOB" 1
fi
if run_finished malformed_json_dead_letter -p 1 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic json --format json \
    --schema "n BIGINT, s STRING" --bounded --dead-letter "$TEST_TMP/dlq" --out-dir "$TEST_TMP/json-dlq"; then
    dead_lettered() { [ "$(lines_in "$TEST_TMP/dlq")" = 1 ] && grep -q '^json 1 1 .* not JSON' "$TEST_TMP"/dlq/part-*; }
    check malformed_json_dead_letter "dead letters: $(cat "$TEST_TMP"/dlq/part-* 2>/dev/null | cut -c1-200)" dead_lettered
    check malformed_json_dead_letter_rows "$(lines_in "$TEST_TMP/json-dlq") rows, want 5" test "$(lines_in "$TEST_TMP/json-dlq")" = 5
    JOB=$(run_job_id)
    check malformed_json_dead_letter_metric "numRecordsInErrors is '$(source_errors "$JOB")', want 1" source_errors_is "$JOB" 1
fi
# While a job runs the count is in the Prometheus exposition too (with two more bad records).
printf '{"n": 7, "s": "ok"}\nseven\n[]\n' | "${KCAT[@]}" -P -t json -p 0
submit_detached -p 1 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic json --format json --schema "n BIGINT, s STRING" \
    --ignore-parse-errors --out-dir "$TEST_TMP/json-run"
if [ -n "$JOB" ] && wait_until 15 source_errors_is "$JOB" 3; then
    prom_errors() {
        curl -sS --max-time 3 "$REST_BASE/metrics" | grep -qE \
            "^flint_taskmanager_job_task_operator_numRecordsInErrors\{job_id=\"$JOB\",.*operator_name=\"Source: Kafka json\"\} 3\$"
    }
    check malformed_json_metric_prometheus "no numRecordsInErrors 3 of the source in GET /metrics" prom_errors
else
    fail malformed_json_metric_running "numRecordsInErrors of the running job: '$(source_errors "$JOB")', want 3 $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"
fi
flint cancel "$JOB" >/dev/null 2>&1
wait_until 10 job_is "$JOB" CANCELED

# ---- metadata columns --------------------------------------------------------------------------------
for i in $(seq 1 30); do echo "key$((i % 4)):value$i"; done | "${KCAT[@]}" -P -t meta -K:
if run_finished metadata_columns -p 1 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic meta --bounded --schema \
    "v STRING, k STRING METADATA FROM 'key', p INT METADATA FROM 'partition', o BIGINT METADATA FROM 'offset', ts BIGINT METADATA FROM 'timestamp', t STRING METADATA FROM 'topic'" \
    --out-dir "$TEST_TMP/meta"; then
    check metadata_columns "the rows' metadata differ from kcat's" \
        diff -q <(cat "$TEST_TMP"/meta/part-* | sort) <("${KCAT[@]}" -C -t meta -e -q -f '%s %k %p %o %T meta\n' | sort)
fi

# ---- record headers: the source's headers column written by the sink, after a static header -------
# Byte-exact copy: a binary value, a text value that looks like base64, an empty one, a repeated name.
seq 1 20 | sed 's/^/h/' | "${KCAT[@]}" -P -t hdr-in -p 0 -H trace=t-1 -H team=x -H team=y \
    -H "bin=$(printf '\377\376\001')" -H look=AAE= -H empty=
if run_finished sink_headers -p 1 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic hdr-in --bounded \
    --schema "v STRING, h STRING METADATA FROM 'headers'" --out-topic hdr-out --headers-field h --header origin=flint; then
    "${KCAT[@]}" -C -t hdr-in -e -q -f 'origin=flint,%h|%s\n' | sort >"$TEST_TMP/hdr.want"
    "${KCAT[@]}" -C -t hdr-out -e -q -f '%h|%s\n' | sort >"$TEST_TMP/hdr.got"
    hdr_exact() { [ "$(grep -c $'bin=\377\376\001,look=AAE=,empty=|' "$TEST_TMP/hdr.want")" = 20 ] &&
        cmp -s "$TEST_TMP/hdr.want" "$TEST_TMP/hdr.got"; }
    check sink_headers "records of hdr-out (headers|value) differ from hdr-in's: $(head -n 1 "$TEST_TMP/hdr.got" | od -c | head -n 3 | tr -s ' \n' ' ')" \
        hdr_exact
fi

# ---- start from a timestamp, from committed group offsets -------------------------------------------
seq 1 50 | sed 's/^/early/' | "${KCAT[@]}" -P -t times -p 0
sleep 1.1
T_MID=$(($(now_ms) - 500))
seq 1 40 | sed 's/^/late/' | "${KCAT[@]}" -P -t times -p 0
seq 1 10 | sed 's/^/late-p1-/' | "${KCAT[@]}" -P -t times -p 1
if run_finished startup_from_timestamp -p 1 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic times --bounded \
    --startup "timestamp:$T_MID" --out-dir "$TEST_TMP/ts"; then
    only_late() { [ "$(lines_in "$TEST_TMP/ts")" = 50 ] && ! cat "$TEST_TMP"/ts/part-* | grep -q early; }
    check startup_from_timestamp "$(lines_in "$TEST_TMP/ts") rows, $(cat "$TEST_TMP"/ts/part-* | grep -c early) early ones" only_late
fi
# A job with checkpoints commits the offsets of each completed checkpoint to its group...
# topic_count TOPIC: the records in TOPIC.
topic_count() { "${KCAT[@]}" -C -t "$1" -e -q 2>/dev/null | wc -l; }
topic_has() { [ "$(topic_count "$1")" = "$2" ]; }
submit_detached -p 2 -D execution.checkpointing.interval=200ms "$TJ/kafka_pipe.so" --bootstrap "$B" --topic times \
    --group grp --out-topic grp-out
wait_until 20 topic_has grp-out 100
sleep 1   # a checkpoint after the last record
flint cancel "$JOB" >/dev/null 2>&1
wait_until 10 job_is "$JOB" CANCELED
# ...and the next job of the group starts there: only the new records.
seq 1 7 | sed 's/^/new/' | "${KCAT[@]}" -P -t times -p 1
if run_finished startup_from_group_offsets -p 2 "$TJ/kafka_pipe.so" --bootstrap "$B" --topic times --group grp \
    --startup group-none --bounded --out-dir "$TEST_TMP/grp2"; then
    only_new() { [ "$(lines_in "$TEST_TMP/grp2")" = 7 ] && [ "$(cat "$TEST_TMP"/grp2/part-* | grep -c '^new')" = 7 ]; }
    check startup_from_group_offsets "$(lines_in "$TEST_TMP/grp2") rows: $(cat "$TEST_TMP"/grp2/part-* | head -n 3 | tr '\n' ' ')" only_new
fi

# ---- topics discovered while running -------------------------------------------------------------------
kctl topic disc-a:2
echo first | "${KCAT[@]}" -P -t disc-a -p 0
submit_detached -p 2 "$TJ/kafka_pipe.so" --bootstrap "$B" --pattern 'disc-.*' --discovery-ms 300 --out-topic found
if [ -n "$JOB" ] && wait_until 10 topic_has found 1; then
    kctl topic disc-b:3
    for p in 0 1 2; do echo "new-$p" | "${KCAT[@]}" -P -t disc-b -p $p; done
    echo second | "${KCAT[@]}" -P -t disc-a -p 1
    check discovers_new_partitions "$(topic_count found) records after a new topic appeared" wait_until 10 topic_has found 5
else
    fail discovers_new_partitions "the job read nothing: $(cat "$TEST_TMP/last_submit.txt" 2>/dev/null)"
fi
flint cancel "$JOB" >/dev/null 2>&1
wait_until 10 job_is "$JOB" CANCELED

# ---- errors found at flint run ------------------------------------------------------------------------
expect_refused() {
    local name=$1 pattern=$2 out rc
    shift 2
    out=$(flint run "$TJ/kafka_pipe.so" --bootstrap "$B" "$@" 2>&1)
    rc=$?
    if [ "$rc" = 1 ] && grep -q -- "$pattern" <<<"$out" && ! grep -q "submitted" <<<"$out"; then
        pass "$name"
    else
        fail "$name" "exit $rc: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
    fi
}
expect_refused refuses_bad_topic "Source: Kafka bad topic! (source_kafka): 'bad topic!' is not a valid topic name" --topic "bad topic!"
expect_refused refuses_raw_with_two_columns "the value format 'raw' needs exactly one BYTES or STRING column" \
    --topic x --format raw --schema "a STRING, b STRING"
expect_refused refuses_unknown_metadata "unknown metadata key 'leader'" --topic x --schema "v STRING, l INT METADATA FROM 'leader'"
expect_refused refuses_unknown_property "unknown property 'fetch.min.bytes'" --topic x --prop fetch.min.bytes=1

check no_crash_reports "a sanitizer report or crash in the logs" no_crash_reports
finish
