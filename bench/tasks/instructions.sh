#!/bin/sh
# bench/tasks/instructions.sh <build-dir> get|list|create [users]: twd's
# user-space instructions per call, counted by valgrind's callgrind.
#
# On a machine whose speed wanders (a shared VM), calls/s of the same
# binary can differ by a third between runs; instructions per call differ
# by a few per cent. This runs twd under callgrind on a fresh store of 1,000
# tasks of one user (tw-seed-tasks), drives one method with tw-loadgen (16
# calls in flight over 4 connections; 3 s of warm-up, then the measured
# time), and counts only the measured part (callgrind_control -z, then -d).
# It prints one line: calls, instructions, instructions per call, and the
# profile's path for callgrind_annotate.
#
#   get     GetTask of one task
#   list    ListTasks, 50 per page, the first page
#   create  CreateTask; with users > 1 (e.g. 16), each call slot signs in as
#           its own new user, so their writes interleave
#
# The kernel's share is not counted, and gRPC's idle polling is spread over
# the calls: compare two builds by this, then confirm with bench/run.
# Settings: TW_BENCH_DURATION (10s), TW_BENCH_TWD_ARGS (e.g.
# "--durability fast"), TW_BENCH_PROFILE (where the profile is kept;
# default: a file in the current directory named after the method).
set -eu

[ $# -ge 2 ] || { echo "usage: bench/tasks/instructions.sh <build-dir> get|list|create [users]" >&2; exit 2; }
build=$(cd "$1" && pwd)
kind=$2
users=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
loadgen=$build/bench/loadgen/tw-loadgen
seed=$build/bench/tasks/tw-seed-tasks
twd=$build/server/twd
python=/usr/bin/python3
client="$python $here/bench_client.py $build/e2e_stubs"
duration=${TW_BENCH_DURATION:-10s}
profile=${TW_BENCH_PROFILE:-$PWD/callgrind.$kind}
for tool in "$loadgen" "$seed" "$twd"; do
    [ -x "$tool" ] || { echo "bench/tasks/instructions.sh: no $tool; build first" >&2; exit 1; }
done
command -v callgrind_control >/dev/null || { echo "bench/tasks/instructions.sh: needs valgrind" >&2; exit 1; }

twd_args=${TW_BENCH_TWD_ARGS:-}
start_seconds=120 # twd under callgrind starts slowly
. "$here/twd.sh"
twd_workspace tw-instructions

# The store: one user with 1,000 tasks, seeded while twd is stopped.
mkdir -p "$data"
start_twd
set -- $($client "$address" signup)
user=$1 email=$2 password=$3
stop_twd
"$seed" --data-dir "$data" --user "$user" --count 1000 >/dev/null
start_twd valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" --dump-instr=no
token=$($client "$address" login "$email" "$password")

case $kind in
get)
    id=$($client "$address" task-id "$token")
    method=/tw.v1.TaskService/GetTask body="{\"id\": \"$id\"}" ;;
list) method=/tw.v1.TaskService/ListTasks body='{"page_size": 50}' ;;
create)
    method=/tw.v1.TaskService/CreateTask
    body='{"task": {"title": "benchmark task", "priority": 2}}' ;;
*) echo "bench/tasks/instructions.sh: no method $kind" >&2; exit 2 ;;
esac
"$here/../json2pb" "$build/gen/tw_descriptor_set.pb" "$method" "$body" >"$work/request.pb"
if [ "$users" -gt 1 ]; then
    set --
    for t in $($client "$address" tokens "$users"); do
        set -- "$@" --slot-header "authorization: Bearer $t"
    done
else
    set -- -H "authorization: Bearer $token"
fi

run() { # run DURATION: the load; prints tw-loadgen's JSON line
    "$loadgen" -c 16 -m 4 --data-file "$work/request.pb" "$@" "$address" "$method" 2>/dev/null
}
run -d 3s "$@" >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
calls=$(run -d "$duration" "$@" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["calls"])')
callgrind_control -d "$pid" >/dev/null 2>&1
dump=$(ls -t "$work"/callgrind.out.* | head -n 1)
instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
cp "$dump" "$profile"
echo "$kind: $calls calls, $instructions instructions, $((instructions / calls)) per call; profile $profile"
