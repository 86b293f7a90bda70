#!/bin/sh
# bench/health/run.sh [build-dir]: the health log benchmark
# (health_bench.py): BatchCreateHealthLogs entries/s in durable batches of
# 500, and GetDailySummary over 30 days with 100,000 stored entries. It
# starts its own twd through tests/e2e/twd_harness.py, with the Python stubs
# the build generates. Prints one JSON line per figure; bench/run calls it.
set -eu

build_dir=$(cd "${1:-build}" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
for f in "$build_dir/server/twd" "$build_dir/bench/loadgen/tw-loadgen"; do
    [ -x "$f" ] || { echo "bench/health/run.sh: no $f; build first" >&2; exit 1; }
done
[ -d "$build_dir/e2e_stubs/tw/v1" ] || {
    echo "bench/health/run.sh: no Python stubs in $build_dir/e2e_stubs; build with tests" >&2
    exit 1
}

echo "== health logs: ${TW_HEALTH_BENCH_ENTRIES:-100000} entries, ${TW_HEALTH_BENCH_DURATION:-10s} per figure"
TWD=$build_dir/server/twd \
TW_LOADGEN=$build_dir/bench/loadgen/tw-loadgen \
TW_E2E_STUBS=$build_dir/e2e_stubs \
TW_REPO=$repo \
PYTHONDONTWRITEBYTECODE=1 \
    exec /usr/bin/python3 "$repo/bench/health/health_bench.py"
