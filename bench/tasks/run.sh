#!/bin/sh
# bench/tasks/run.sh <build-dir>: TaskService under load at 1,000 and at
# 1,000,000 stored tasks of one user. For each size it stops twd, seeds the
# missing tasks straight into the store with tw-seed-tasks (the same steps
# CreateTask runs, many per transaction), starts twd again (durable, the
# default) and drives four calls with tw-loadgen, each with the user's token:
#
#   list_first     ListTasks, 50 per page, first page in creation order
#   list_open_due  ListTasks, 50 per page, TODO tasks by due (an index merge)
#   list_middle    ListTasks, 50 per page, from a page token half way down
#   create         CreateTask (a write fsynced before it is acknowledged)
#
# and prints tw-loadgen's JSON line for each (calls/s, p99 ...), prefixed by
# a line naming the figure and the size. The list figures should barely
# move between the sizes: every page is a prefix scan of an index.
#
# Settings: TW_BENCH_TASK_SIZES ("1000 1000000"), TW_BENCH_DURATION (10s),
# TW_BENCH_WARMUP (2s), TW_BENCH_CONCURRENCY (16), TW_BENCH_CHANNELS (4).
set -eu

[ $# -eq 1 ] || { echo "usage: bench/tasks/run.sh <build-dir>" >&2; exit 2; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
loadgen=$build/bench/loadgen/tw-loadgen
seed=$build/bench/tasks/tw-seed-tasks
twd=$build/server/twd
stubs=$build/e2e_stubs
schema=$build/gen/tw_descriptor_set.pb
python=/usr/bin/python3
client="$python $here/bench_client.py $stubs"
sizes=${TW_BENCH_TASK_SIZES:-"1000 1000000"}
duration=${TW_BENCH_DURATION:-10s}
warmup=${TW_BENCH_WARMUP:-2s}
concurrency=${TW_BENCH_CONCURRENCY:-16}
channels=${TW_BENCH_CHANNELS:-4}
for tool in "$loadgen" "$seed" "$twd"; do
    [ -x "$tool" ] || { echo "bench/tasks/run.sh: no $tool; build first" >&2; exit 1; }
done
[ -d "$stubs" ] || { echo "bench/tasks/run.sh: no $stubs; build with tests" >&2; exit 1; }

. "$here/twd.sh"
twd_workspace tw-task-bench

request() { # request NAME METHOD JSON: a request file for tw-loadgen
    "$here/../json2pb" "$schema" "$2" "$3" >"$work/$1.pb"
}

measure() { # measure FIGURE SIZE METHOD REQUEST-NAME
    echo "== $1 at $2 tasks: $concurrency calls in flight over $channels connections, $warmup warm-up, $duration measured"
    "$loadgen" -c "$concurrency" -m "$channels" --warmup "$warmup" -d "$duration" \
        -H "authorization: Bearer $token" --data-file "$work/$4.pb" "$address" "$3"
}

mkdir -p "$data"
start_twd
set -- $($client "$address" signup)
user=$1 email=$2 password=$3
have=0
request list_first /tw.v1.TaskService/ListTasks '{"page_size": 50}'
request list_open_due /tw.v1.TaskService/ListTasks \
    '{"page_size": 50, "statuses": ["TASK_STATUS_TODO"], "order_by": "TASK_ORDER_DUE"}'
request create /tw.v1.TaskService/CreateTask '{"task": {"title": "benchmark task", "priority": 2}}'

for size in $sizes; do
    if [ "$size" -gt "$have" ]; then
        stop_twd
        echo "== seeding $((size - have)) tasks (to $size)"
        "$seed" --data-dir "$data" --user "$user" --count $((size - have))
        have=$size
        start_twd
    fi
    token=$($client "$address" login "$email" "$password")
    middle=$($client "$address" token-at "$token" $((size / 2)))
    request list_middle /tw.v1.TaskService/ListTasks "{\"page_size\": 50, \"page_token\": \"$middle\"}"
    measure list_first "$size" /tw.v1.TaskService/ListTasks list_first
    measure list_open_due "$size" /tw.v1.TaskService/ListTasks list_open_due
    measure list_middle "$size" /tw.v1.TaskService/ListTasks list_middle
    measure create "$size" /tw.v1.TaskService/CreateTask create
    echo "== the user now has $($client "$address" count "$token") tasks"
done
stop_twd
