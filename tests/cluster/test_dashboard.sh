#!/usr/bin/env bash
# The web dashboard in a real browser (issue 8): a cluster running a backpressured job (a fast
# source behind a slow sink, with checkpoints), Debian's chromium headless driven over the Chrome
# DevTools Protocol by tests/browser/dashboard.js (node, no packages): the job graph shows the
# job's vertices with the source coloured HIGH, the record counters grow between two refreshes,
# the checkpoints tab opens; screenshots go to build/test-artifacts/.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

require_built
TJ=$ROOT/build/tests/jobs
ART=$ROOT/build/test-artifacts
[ -f "$TJ/slow_sink.so" ] || abort setup "$TJ/slow_sink.so is missing: run make"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || abort setup "chromium is not installed (scripts/install-deps.sh installs it)"
command -v node >/dev/null || abort setup "node is not installed (scripts/install-deps.sh installs nodejs)"

start_local_cluster 1 web.refresh-interval=1s taskmanager.numberOfTaskSlots=2 io.tmp.dirs="$TEST_TMP" execution.checkpointing.interval=1s "state.checkpoints.dir=$TEST_TMP/checkpoints"

out=$("$BIN_DIR/flint" run -d -m "127.0.0.1:$RPC_PORT" "$TJ/slow_sink.so" --sleep-ms 1 --payload-bytes 200 \
      --output "$TEST_TMP/slow" 2>&1)
JOB=$(sed -n 's/^Job has been submitted with JobID \([0-9a-f]\{32\}\)$/\1/p' <<<"$out")
[ -n "$JOB" ] || abort submit "flint run -d: $out"
job_running() { [ "$(rest_json "/jobs/$JOB" .state)" = RUNNING ]; }
wait_until 10 job_running || abort submit "the job is not RUNNING"
pass backpressured_job_runs

mkdir -p "$ART"
rm -f "$ART"/dashboard-*.png
timeout -k 5 150 node "$ROOT/tests/browser/dashboard.js" --url "$REST_BASE/" --job "$JOB" --vertices 2 \
    --source-name "Source: DataGen" --out "$ART" --chromium "$CHROMIUM" 2>"$TEST_TMP/browser.err.txt"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "(browser driver exited $rc; stderr: $(head -c 400 "$TEST_TMP/browser.err.txt"))"
    # 1: it reported its failures itself; anything else (killed, crashed) is one more
    [ "$rc" -eq 1 ] || fail browser_driver "exited $rc: $(head -c 300 "$TEST_TMP/browser.err.txt")"
fi
n=$(find "$ART" -name 'dashboard-*.png' -size +10k | wc -l)
check screenshots_saved "$n screenshots in ${ART#"$ROOT"/}" test "$n" -ge 4
echo "(screenshots in ${ART#"$ROOT"/}: $(cd "$ART" && ls dashboard-*.png 2>/dev/null | tr '\n' ' '))"

"$BIN_DIR/flint" cancel -m "127.0.0.1:$RPC_PORT" "$JOB" >/dev/null 2>&1
check no_crash_reports "a daemon crashed or a sanitizer reported" no_crash_reports
finish
