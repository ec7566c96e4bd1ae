#!/usr/bin/env bash
# Runs every test tier and ends with one line "N passed, N failed".
#   unit:    build/tests/check_* (Check suites; every test case counts)
#   cluster: tests/cluster/test_*.sh (real daemons on loopback)
#   system:  tests/system/test_*.sh (scripts, CLI, hosts in network namespaces)
# A test script reports each case as a line "PASS <name>" or "FAIL <name>: <reason>"; a script
# that exits non-zero without reporting a failure counts as one failed case.
# Usage: tests/run.sh [unit|cluster|system]... [-k PATTERN]   (default: all tiers)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/test-logs
mkdir -p "$OUT"

tiers=() pattern=""
while [ $# -gt 0 ]; do
  case "$1" in
    -k) pattern=$2; shift 2 ;;
    unit|cluster|system) tiers+=("$1"); shift ;;
    *) echo "usage: tests/run.sh [unit|cluster|system]... [-k PATTERN]" >&2; exit 2 ;;
  esac
done
[ ${#tiers[@]} -eq 0 ] && tiers=(unit cluster system)

passed=0 failed=0 failures=()

run_unit() {
  local bin name log summary total bad
  for bin in build/tests/check_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    [ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
    log=$OUT/$name.log
    CK_FORK=yes CK_DEFAULT_TIMEOUT=60 "$bin" >"$log" 2>&1
    summary=$(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
    if [ -z "$summary" ]; then
      echo "FAIL $name: no Check summary (crashed?), see $log"
      failed=$((failed + 1)); failures+=("$name"); continue
    fi
    total=$(echo "$summary" | awk -F'[:,]' '{print $2+0}')
    bad=$(echo "$summary" | awk -F'[:,]' '{print $4 + $6}')
    passed=$((passed + total - bad)); failed=$((failed + bad))
    if [ "$bad" -gt 0 ]; then
      echo "FAIL $name: $summary"; grep -E ':[EF]:' "$log" | head -n 20
      failures+=("$name")
    else
      echo "ok   $name: $summary"
    fi
  done
}

run_scripts() {
  local dir=$1 t name log rc p f
  for t in "$dir"/test_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    [ -n "$pattern" ] && [[ $name != *$pattern* ]] && continue
    log=$OUT/$name.log
    local start=$SECONDS
    timeout -k 10 300 bash "$t" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1; echo "FAIL $name: exited with $rc without reporting a failure, see $log"
    fi
    passed=$((passed + p)); failed=$((failed + f))
    grep -E '^(FAIL) ' "$log"
    if [ "$f" -gt 0 ]; then
      failures+=("$name"); echo "FAIL $name ($p passed, $f failed, $((SECONDS - start)) s), see $log"
    else
      echo "ok   $name ($p passed, $((SECONDS - start)) s)"
    fi
  done
}

for tier in "${tiers[@]}"; do
  echo "== $tier"
  case $tier in
    unit) run_unit ;;
    cluster) run_scripts tests/cluster ;;
    system) run_scripts tests/system ;;
  esac
done

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]} (logs in build/test-logs/)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
