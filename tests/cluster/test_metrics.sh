#!/usr/bin/env bash
# Metrics end to end (issue 8) on a cluster running a backpressured job (slow_sink.so, with
# checkpoints): every REST endpoint's field names and types (one jq check per endpoint), Flink's
# metric shapes ([{"id"}] and [{"id","value"}]), the logs endpoints and path tricks in the spirit of
# CVE-2020-17519 (404), GET /metrics through a strict parser of the Prometheus text format, and the
# CLI: flint status, flint list, and run's progress line (plain lines without a terminal, one line
# updated in place on a terminal through script(1)).
# shellcheck disable=SC2317  # functions called through check/wait_until
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
TJ=$ROOT/build/tests/jobs
[ -f "$TJ/slow_sink.so" ] || abort setup "$TJ/slow_sink.so is missing: run make"

start_local_cluster 1 taskmanager.numberOfTaskSlots=2 io.tmp.dirs="$TEST_TMP" execution.checkpointing.interval=500ms "state.checkpoints.dir=$TEST_TMP/checkpoints"
FLINT=("$BIN_DIR/flint")
JM_ADDR=127.0.0.1:$RPC_PORT

out=$("${FLINT[@]}" run -d -m "$JM_ADDR" "$TJ/slow_sink.so" --sleep-ms 1 --payload-bytes 200 --output "$TEST_TMP/slow" 2>&1)
JOB=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
[ -n "$JOB" ] || abort submit "flint run -d: $out"
job_is() { [ "$(rest_json "/jobs/$JOB" .state)" = "$1" ]; }
wait_until 10 job_is RUNNING || abort submit "job not RUNNING: $(rest_get "/jobs/$JOB" | cut -c1-300)"
SRC=$(rest_json "/jobs/$JOB" '.vertices[0].id')
SINK=$(rest_json "/jobs/$JOB" '.vertices[1].id')
TM=$(rest_json /taskmanagers '.taskmanagers[0].id')
TM_ENC=$(jq -rn --arg s "$TM" '$s|@uri')
# metrics arrive with heartbeats; checkpoints complete every 500 ms
metrics_there() { [ "$(rest_json "/jobs/$JOB/vertices/$SRC/metrics?get=0.numRecordsOut" '.[0].value // 0')" -gt 0 ] 2>/dev/null; }
checkpointed() { [ "$(rest_json "/jobs/$JOB/checkpoints" .counts.completed)" -ge 1 ] 2>/dev/null; }
wait_until 15 metrics_there || fail metrics_arrive "no numRecordsOut for the source after 15 s"
wait_until 15 checkpointed || fail checkpoints_complete "no completed checkpoint after 15 s"

# ---- REST: one JSON check per endpoint ------------------------------------------------------------
# jcheck NAME PATH JQ: PASS when the body of GET PATH satisfies the jq filter (true).
jcheck() {
    local name=$1 path=$2 filter=$3 body
    body=$(rest_get "$path")
    if jq -e "$filter" <<<"$body" >/dev/null 2>&1; then pass "$name"; else fail "$name" "GET $path: $(cut -c1-300 <<<"$body")"; fi
}
num='type == "number"'
str='type == "string"'
jcheck rest_config /config "(.\"refresh-interval\" | $num) and (.\"timezone-name\" | $str) and (.features.\"web-cancel\" == true)"
jcheck rest_overview /overview "(.taskmanagers == 1) and (.\"slots-total\" | $num) and (.\"slots-available\" | $num) and (.\"jobs-running\" == 1)"
jcheck rest_jobs /jobs "(.jobs | type == \"array\") and any(.jobs[]; .id == \"$JOB\" and .status == \"RUNNING\")"
jcheck rest_jobs_overview /jobs/overview "any(.jobs[]; .jid == \"$JOB\" and (.name | $str) and (.\"start-time\" | $num) and (.duration | $num) and (.tasks.total == 2))"
jcheck rest_job "/jobs/$JOB" "(.jid == \"$JOB\") and (.state == \"RUNNING\") and (.vertices | length == 2) and
    all(.vertices[]; (.id | test(\"^[0-9a-f]{32}$\")) and (.name | $str) and (.parallelism | $num) and (.status | $str)
        and (.metrics.\"read-records\" | $num) and (.metrics.\"write-records\" | $num)) and (.plan.nodes | length == 2)"
jcheck rest_job_plan "/jobs/$JOB/plan" "(.plan.jid == \"$JOB\") and (.plan.nodes | length == 2) and
    any(.plan.nodes[]; .inputs[0].ship_strategy == \"REBALANCE\" and .inputs[0].id == \"$SRC\")"
jcheck rest_job_metrics_list "/jobs/$JOB/metrics" "([.[].id] | index(\"uptime\") != null and index(\"numRestarts\") != null and
    index(\"lastCheckpointDuration\") != null and index(\"lastCheckpointSize\") != null and
    index(\"numberOfCompletedCheckpoints\") != null and index(\"numberOfFailedCheckpoints\") != null)"
jcheck rest_job_metrics_get "/jobs/$JOB/metrics?get=uptime,numRestarts,numberOfCompletedCheckpoints,lastCheckpointDuration" \
    "(length == 4) and all(.[]; (.id | $str) and (.value | $str) and (.value | test(\"^-?[0-9]+$\")))
     and (map(select(.id == \"numberOfCompletedCheckpoints\"))[0].value | tonumber >= 1)"
jcheck rest_job_exceptions "/jobs/$JOB/exceptions" "(.\"all-exceptions\" | type == \"array\") and (.exceptionHistory.entries | type == \"array\")"
jcheck rest_job_checkpoints "/jobs/$JOB/checkpoints" "(.counts.completed >= 1) and (.latest.completed.id | $num) and
    (.latest.completed.end_to_end_duration | $num) and (.latest.completed.checkpointed_size | $num) and (.history | length >= 1)"
jcheck rest_job_checkpoints_config "/jobs/$JOB/checkpoints/config" "(.mode | $str) and (.interval == 500)"
jcheck rest_vertex "/jobs/$JOB/vertices/$SRC" "(.id == \"$SRC\") and (.subtasks | length == 1) and
    (.subtasks[0].metrics.\"write-records\" | $num) and (.subtasks[0].status == \"RUNNING\")"
jcheck rest_vertex_backpressure "/jobs/$JOB/vertices/$SRC/backpressure" "(.\"backpressure-level\" | $str) and (.subtasks[0].ratio | $num)"
METRIC_IDS='["0.numRecordsIn","0.numRecordsOut","0.numRecordsInPerSecond","0.numRecordsOutPerSecond","0.numBytesOutPerSecond",
  "0.currentInputWatermark","0.currentOutputWatermark","0.backPressuredTimeMsPerSecond","0.busyTimeMsPerSecond",
  "0.idleTimeMsPerSecond","0.inPoolUsage","0.outPoolUsage","0.mailboxLatencyMs_p99"]'
jcheck rest_vertex_metrics_list "/jobs/$JOB/vertices/$SRC/metrics" "(. | type == \"array\") and all(.[]; keys == [\"id\"]) and
    ([.[].id] as \$ids | $METRIC_IDS | all(. as \$m | \$ids | index(\$m) != null)) and
    any(.[]; .id == \"0.Source__DataGen.numRecordsOut\")"
jcheck rest_vertex_metrics_get "/jobs/$JOB/vertices/$SRC/metrics?get=0.numRecordsOut,0.backPressuredTimeMsPerSecond,0.outPoolUsage,0.Source__DataGen.numRecordsOut,0.no.such.metric" \
    "(length == 4) and all(.[]; (keys == [\"id\",\"value\"]) and (.value | $str) and (.value | tonumber | . >= 0))"
jcheck rest_vertex_subtasks_metrics "/jobs/$JOB/vertices/$SINK/subtasks/metrics?get=numRecordsIn,busyTimeMsPerSecond&agg=min,max,sum" \
    "(length == 2) and all(.[]; (.id | $str) and (.min | $num) and (.max | $num) and (.sum | $num))"
jcheck rest_vertex_watermarks "/jobs/$JOB/vertices/$SINK/watermarks" \
    "(length == 1) and (.[0].id == \"0.currentInputWatermark\") and (.[0].value | $str) and (.[0].value | test(\"^-?[0-9]+$\"))"
jcheck rest_taskmanagers /taskmanagers "(.taskmanagers | length == 1) and (.taskmanagers[0].metrics.nettyShuffleMemorySegmentsTotal > 0)"
jcheck rest_taskmanager "/taskmanagers/$TM_ENC" "(.id == \"$TM\") and (.slotsNumber == 2) and (.timeSinceLastHeartbeat | $num) and
    (.hardware.cpuCores | $num) and (.metrics.nettyShuffleMemorySegmentsUsed | $num) and (.metrics.rss > 0) and
    (.metrics.cpuLoad | $num) and (.memoryConfiguration.networkMemory > 0)"
jcheck rest_taskmanager_metrics_list "/taskmanagers/$TM_ENC/metrics" "[.[].id] | (index(\"Status.CPU.Load\") != null and
    index(\"Status.Memory.RSS\") != null and index(\"Status.Shuffle.Netty.UsedMemorySegments\") != null and
    index(\"Status.Shuffle.Netty.AvailableMemorySegments\") != null)"
jcheck rest_taskmanager_metrics_get "/taskmanagers/$TM_ENC/metrics?get=Status.Memory.RSS,Status.Shuffle.Netty.TotalMemorySegments" \
    "(length == 2) and all(.[]; (.value | tonumber) > 0)"
jcheck rest_jobmanager_config /jobmanager/config "all(.[]; (.key | $str) and (.value | $str))"
jcheck rest_jobmanager_metrics_list /jobmanager/metrics "[.[].id] | (index(\"numRegisteredTaskManagers\") != null and
    index(\"taskSlotsTotal\") != null and index(\"Status.CPU.Load\") != null and index(\"Status.Memory.RSS\") != null)"
jcheck rest_jobmanager_metrics_get "/jobmanager/metrics?get=numRegisteredTaskManagers,numRunningJobs" \
    "(. == [{\"id\":\"numRegisteredTaskManagers\",\"value\":\"1\"},{\"id\":\"numRunningJobs\",\"value\":\"1\"}])"
jcheck rest_unknown_taskmanager_metrics /taskmanagers/no-such-tm/metrics '(.errors | length == 1)'

# ---- logs: the daemon's own log file, and nothing else ------------------------------------------------
check rest_jobmanager_log "GET /jobmanager/log is not the jobmanager's log" \
    bash -c "curl -sS --max-time 5 '$REST_BASE/jobmanager/log' | grep -q 'REST endpoint listening'"
check rest_taskmanager_log "GET /taskmanagers/<id>/log is not the taskmanager's log" \
    bash -c "curl -sS --max-time 5 '$REST_BASE/taskmanagers/$TM_ENC/log' | grep -q 'registered at jobmanager'"
check rest_log_content_type "the log is not text/plain" \
    bash -c "curl -sS -o /dev/null -w '%{content_type}' '$REST_BASE/jobmanager/log' | grep -q '^text/plain'"
for trick in "/jobmanager/logs/..%252f..%252f..%252fetc%252fpasswd" "/jobmanager/log/..%252f..%252fetc%252fpasswd" \
             "/jobmanager/logs/..%2f..%2f..%2fetc%2fpasswd" "/jobmanager/log/../../etc/passwd" \
             "/jobmanager/log/%2e%2e/%2e%2e/etc/passwd" "/taskmanagers/$TM_ENC/log/..%252f..%252fetc%252fpasswd" \
             "/taskmanagers/..%252f..%252fetc%252fpasswd/log" "/jobmanager/log%00/etc/passwd" \
             "/jobmanager/logs/%252e%252e%252f%252e%252e%252fetc%252fpasswd"; do
    code=$(curl -s -o "$TEST_TMP/trick.out" -w '%{http_code}' --path-as-is --max-time 3 "$REST_BASE$trick")
    if [ "$code" = 404 ] && ! grep -q 'root:' "$TEST_TMP/trick.out"; then
        pass "log_path_trick_404 ${trick:0:40}"
    else
        fail "log_path_trick_404 ${trick:0:40}" "answered $code: $(head -c 200 "$TEST_TMP/trick.out")"
    fi
done

# ---- Prometheus ----------------------------------------------------------------------------------------
curl -sS --max-time 5 -D "$TEST_TMP/prom.head" "$REST_BASE/metrics" >"$TEST_TMP/prom.txt"
check prometheus_content_type "Content-Type is not the 0.0.4 text format: $(grep -i content-type "$TEST_TMP/prom.head")" \
    grep -qi '^content-type: text/plain; version=0.0.4' "$TEST_TMP/prom.head"
# A strict parser of the text exposition format 0.0.4: every line is a HELP, a TYPE or a sample;
# names and label names are valid, label values use only \\ \" \n escapes, values are numbers
# (or NaN, +Inf, -Inf); a family's HELP and TYPE come once, before its samples; a family's samples
# are contiguous; summaries have quantile labels, _sum and _count.
prom_parse() {
    awk '
    function err(msg) { printf "line %d: %s: %s\n", NR, msg, substr($0, 1, 160); bad = 1; exit 1 }
    function family(n,   b) {
        if (n in type) return n
        b = n; sub(/_(sum|count|bucket)$/, "", b)
        if (b in type && (type[b] == "summary" || type[b] == "histogram")) return b
        return ""
    }
    BEGIN { name_re = "^[a-zA-Z_:][a-zA-Z0-9_:]*$"; lname_re = "^[a-zA-Z_][a-zA-Z0-9_]*$"
            num_re = "^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$" }
    /^$/ { next }
    /^# HELP / { n = $3; if (n !~ name_re) err("bad HELP name"); if (n in help) err("second HELP for " n)
                 if (n in seen) err("HELP after samples of " n); help[n] = 1; next }
    /^# TYPE / { n = $3; t = $4; if (n !~ name_re) err("bad TYPE name"); if (n in type) err("second TYPE for " n)
                 if (t !~ /^(counter|gauge|summary|histogram|untyped)$/ || NF != 4) err("bad TYPE")
                 if (n in seen) err("TYPE after samples of " n); type[n] = t; next }
    /^#/ { next }
    {
        line = $0
        if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) err("no metric name")
        n = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
        labels = ""; hasq = 0
        if (substr(rest, 1, 1) == "{") {
            i = 2; L = length(rest); first = 1
            while (1) {
                if (substr(rest, i, 1) == "}") { i++; break }
                if (!first) { if (substr(rest, i, 1) != ",") err("expected , between labels"); i++ }
                first = 0
                if (!match(substr(rest, i), /^[a-zA-Z_][a-zA-Z0-9_]*/)) err("bad label name")
                ln = substr(rest, i, RLENGTH); i += RLENGTH
                if (ln in lseen) err("duplicate label " ln); lseen[ln] = 1
                if (ln == "quantile") hasq = 1
                if (substr(rest, i, 2) != "=\"") err("expected =\" after " ln); i += 2
                while (1) {
                    if (i > L) err("unterminated label value")
                    c = substr(rest, i, 1)
                    if (c == "\\") { e = substr(rest, i + 1, 1); if (e != "\\" && e != "\"" && e != "n") err("bad escape \\" e); i += 2; continue }
                    if (c == "\"") { i++; break }
                    i++
                }
            }
            split("", lseen)
            rest = substr(rest, i)
        }
        if (substr(rest, 1, 1) != " ") err("expected a space before the value")
        nf = split(substr(rest, 2), parts, " ")
        if (nf < 1 || nf > 2) err("expected a value and an optional timestamp")
        v = parts[1]
        if (v !~ num_re && v != "NaN" && v != "+Inf" && v != "-Inf") err("bad value " v)
        if (nf == 2 && parts[2] !~ /^-?[0-9]+$/) err("bad timestamp")
        f = family(n)
        if (f == "") err("sample of " n " without a TYPE")
        if (!(f in help)) err("sample of " n " without a HELP")
        if (f != cur) { if (f in seen) err("samples of " f " are not contiguous"); cur = f }
        seen[f] = 1
        if (type[f] == "summary" && n == f && !hasq) err("summary sample without quantile")
        samples++
        names[n] = 1
    }
    END { if (bad) exit 1; if (samples == 0) { print "no samples"; exit 1 }
          printf "%d samples\n", samples }
    ' "$1"
}
if msg=$(prom_parse "$TEST_TMP/prom.txt" 2>&1); then pass "prometheus_strict_parse ($msg)"; else fail prometheus_strict_parse "$msg"; fi
prom_has() { grep -qE "$1" "$TEST_TMP/prom.txt"; }
check prometheus_task_labels "no flint_taskmanager_job_task_numRecordsOut with job_id, job_name, task_name, subtask_index, tm_id" \
    prom_has "^flint_taskmanager_job_task_numRecordsOut\{job_id=\"$JOB\",job_name=\"Slow Sink\",.*task_name=\"Source: DataGen -> Payload\",subtask_index=\"0\",.*tm_id=\"[^\"]+\"\} [0-9]+$"
check prometheus_operator_metrics "no operator-scoped numRecordsIn" \
    prom_has '^flint_taskmanager_job_task_operator_numRecordsIn\{.*operator_name="Sink: Slow Sink"\} [0-9]+$'
check prometheus_backpressure "no backPressuredTimeMsPerSecond" prom_has '^flint_taskmanager_job_task_backPressuredTimeMsPerSecond\{'
check prometheus_job_metrics "no job scope (numRestarts, numberOfCompletedCheckpoints)" \
    bash -c "grep -q '^flint_jobmanager_job_numRestarts{job_id=\"$JOB\"' '$TEST_TMP/prom.txt' && grep -q '^flint_jobmanager_job_numberOfCompletedCheckpoints{' '$TEST_TMP/prom.txt'"
check prometheus_tm_system "no taskmanager system metrics" \
    bash -c "grep -q '^flint_taskmanager_Status_CPU_Load{tm_id=' '$TEST_TMP/prom.txt' && grep -q '^flint_taskmanager_Status_Shuffle_Netty_UsedMemorySegments{' '$TEST_TMP/prom.txt'"
check prometheus_summary "no mailboxLatencyMs summary" \
    bash -c "grep -q '^# TYPE flint_taskmanager_job_task_mailboxLatencyMs summary' '$TEST_TMP/prom.txt' && grep -q '^flint_taskmanager_job_task_mailboxLatencyMs_count{' '$TEST_TMP/prom.txt'"
# The parser itself refuses broken input.
printf '# HELP x y\n# TYPE x gauge\nx{a="b} 1\n' >"$TEST_TMP/bad1.txt"
printf 'x 1\n' >"$TEST_TMP/bad2.txt"
printf '# HELP x y\n# TYPE x gauge\nx 1\n# HELP z y\n# TYPE z gauge\nz 1\nx 2\n' >"$TEST_TMP/bad3.txt"
printf '# HELP x y\n# TYPE x gauge\nx{a="b"} one\n' >"$TEST_TMP/bad4.txt"
strict=1
for b in bad1 bad2 bad3 bad4; do prom_parse "$TEST_TMP/$b.txt" >/dev/null 2>&1 && strict=0; done
check prometheus_parser_rejects_bad_input "the strict parser accepted a malformed exposition" test "$strict" = 1

# ---- CLI ------------------------------------------------------------------------------------------------
st=$("${FLINT[@]}" status -m "$JM_ADDR" "$JOB" 2>&1)
if grep -q "^State *RUNNING" <<<"$st" && grep -qE '^Source: DataGen -> Payload +1 +RUNNING .*HIGH' <<<"$st" &&
   grep -qE '^Sink: Slow Sink +1 +RUNNING' <<<"$st" && grep -qE '^Checkpoints +[1-9][0-9]* completed' <<<"$st"; then
    pass cli_status
else
    fail cli_status "$(tr '\n' '|' <<<"$st" | cut -c1-500)"
fi
check cli_status_bad_id "flint status with a bad id did not exit 2" \
    bash -c "'${FLINT[0]}' status -m $JM_ADDR not-a-job-id >/dev/null 2>&1; test \$? = 2"
ls=$("${FLINT[@]}" list -m "$JM_ADDR" 2>&1)
check cli_list_table "flint list: $(tr '\n' '|' <<<"$ls" | cut -c1-300)" \
    bash -c "grep -qE '^JOB ID +NAME +STATE +START TIME +DURATION +TASKS' <<<\"\$0\" && grep -qE '^$JOB +Slow Sink +RUNNING .* 2/2 running' <<<\"\$0\"" "$ls"
"${FLINT[@]}" cancel -m "$JM_ADDR" "$JOB" >/dev/null 2>&1
wait_until 10 job_is CANCELED || fail cancel "job not CANCELED"

# run without -d, stdout not a terminal: plain progress lines (one every 5 s) between the state lines
out=$("${FLINT[@]}" run -m "$JM_ADDR" "$TJ/slow_sink.so" --count 8000 --sleep-ms 1 --payload-bytes 64 --output "$TEST_TMP/slow2" 2>&1)
if grep -q "switched to FINISHED" <<<"$out" && grep -qE '^RUNNING +[0-9]+s +in +[0-9.]+[kM]? rec/s +out +[0-9.]+[kM]? rec/s +(chk #[0-9]+|no checkpoint)' <<<"$out" &&
   ! grep -q $'\r' <<<"$out"; then
    pass cli_run_progress_plain
else
    fail cli_run_progress_plain "$(tr '\n' '|' <<<"$out" | cut -c1-500)"
fi
# on a terminal (script(1) gives it a pty): the line is redrawn in place with \r
if command -v script >/dev/null; then
    script -qefc "'${FLINT[0]}' run -m $JM_ADDR '$TJ/slow_sink.so' --count 3000 --sleep-ms 1 --payload-bytes 64 --output '$TEST_TMP/slow3'" \
        "$TEST_TMP/tty.txt" >/dev/null 2>&1 </dev/null
    if grep -q "switched to FINISHED" "$TEST_TMP/tty.txt" && [ "$(grep -o $'\r\033\\[K' "$TEST_TMP/tty.txt" | wc -l)" -ge 2 ] &&
       grep -q 'rec/s' "$TEST_TMP/tty.txt"; then
        pass cli_run_progress_tty
    else
        fail cli_run_progress_tty "$(tr '\r\n' '^|' <"$TEST_TMP/tty.txt" | cut -c1-400)"
    fi
fi

check no_crash_reports "a daemon crashed or a sanitizer reported" no_crash_reports
finish
