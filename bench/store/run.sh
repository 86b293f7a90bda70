#!/bin/sh
# bench/store/run.sh [build-dir]: the store micro-benchmark (tw-store-bench)
# and, in the same run on the same machine, RocksDB's own db_bench (Debian's
# rocksdb-tools) with comparable settings: one put per write, ~100-byte
# values, 24-byte keys, one thread unless the figure says 4, snappy, WAL on.
# Prints one JSON line per figure from each. bench/run calls it.
#
#   figure          tw-store-bench                 db_bench
#   fast_put        txn put+commit, TW_FAST        fillrandom --sync=0
#   durable_put     txn put+commit, TW_DURABLE     fillrandom --sync=1
#   durable_put_4t  the same, 4 threads            fillrandom --sync=1 --threads=4
#   get             tw_store_get, random key       readrandom
#   scan50          tw_store_scan, 50 items        seekrandom --seek_nexts=50
#
# TW_STORE_BENCH_SECONDS (default 2, whole seconds) is each figure's length.
set -eu

build_dir=${1:-build}
seconds=${TW_STORE_BENCH_SECONDS:-2}
bench=$build_dir/bench/store/tw-store-bench
[ -x "$bench" ] || { echo "bench/store/run.sh: no $bench; build first" >&2; exit 1; }

echo "== tw-store-bench: ${seconds}s per figure"
"$bench" --seconds "$seconds"

if ! command -v db_bench >/dev/null; then
    echo "== db_bench not installed (Debian package rocksdb-tools): comparison skipped"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tw-db-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# db_bench <figure> <threads> <options...>: runs one benchmark, prints its line.
db_bench_figure() {
    figure=$1
    threads=$2
    shift 2
    out=$(db_bench --key_size=24 --value_size=100 --compression_type=snappy \
        --threads="$threads" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
    benchmark=$(printf '%s\n' "$*" | sed -n 's/.*--benchmarks=\([a-z]*\).*/\1/p')
    ops=$(printf '%s\n' "$out" |
        sed -n "s/^$benchmark *: *[0-9.]* micros\/op \([0-9]*\) ops\/sec.*/\1/p" | head -n 1)
    [ -n "$ops" ] || { echo "$out" >&2; echo "bench/store/run.sh: no result from db_bench" >&2; exit 1; }
    printf '{"source":"db_bench","figure":"%s","threads":%s,"benchmark":"%s","ops_per_sec":%s}\n' \
        "$figure" "$threads" "$benchmark" "$ops"
}

echo "== db_bench $(db_bench --version 2>/dev/null | head -n 1 || true): ${seconds}s per figure"
# Each write figure on a fresh database (fillrandom insists on one).
writes="--num=100000000 --duration=$seconds"
db_bench_figure fast_put 1 --benchmarks=fillrandom --sync=0 --db="$work/fast" $writes
db_bench_figure durable_put 1 --benchmarks=fillrandom --sync=1 --db="$work/durable" $writes
db_bench_figure durable_put_4t 4 --benchmarks=fillrandom --sync=1 --db="$work/durable4" $writes
# Reads on a database about the size tw-store-bench reads from, every key present.
reads="--db=$work/reads --num=200000"
db_bench --benchmarks=fillseq --key_size=24 --value_size=100 --compression_type=snappy $reads \
    >/dev/null 2>&1
db_bench_figure get 1 --benchmarks=readrandom --use_existing_db=1 --duration="$seconds" $reads
db_bench_figure scan50 1 --benchmarks=seekrandom --seek_nexts=50 --use_existing_db=1 \
    --duration="$seconds" $reads
