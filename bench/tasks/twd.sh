# bench/tasks/twd.sh: sourced by bench/tasks/run.sh and instructions.sh.
#
# start_twd [WRAPPER...] starts $twd (under WRAPPER, e.g. valgrind, if given)
# in a session of its own on a free port of 127.0.0.1, over $data, logging
# to $log, with the bench's call limits raised out of the way
# (TW_API_CALLS_PER_HOUR, TW_PLAN_LIMITS=count) and $twd_args added; it
# waits until Health/Check answers, at most $start_seconds (default 10), and
# sets pid and address. stop_twd stops it (SIGTERM, SIGKILL after 30 s).
# twd_workspace NAME makes $work (a temporary directory named after NAME)
# with $data and $log in it, and on exit or interruption stops twd and
# removes $work. The caller sets python, loadgen and twd.

pid=
address=

start_twd() {
    port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    address=127.0.0.1:$port
    # shellcheck disable=SC2086 # twd_args is a list of arguments
    TW_API_CALLS_PER_HOUR=100000000 TW_API_WRITE_CALLS_PER_HOUR=100000000 TW_PLAN_LIMITS=count \
        setsid "$@" "$twd" serve --listen "$address" --data-dir "$data" ${twd_args:-} \
        >>"$log" 2>&1 &
    pid=$!
    tenths=0
    until "$loadgen" -c 1 -m 1 -d 200ms --connect-timeout 500ms "$address" \
            /grpc.health.v1.Health/Check 2>/dev/null | grep -q '"OK":'; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; exit 1; }
        tenths=$((tenths + 1))
        [ "$tenths" -lt $((${start_seconds:-10} * 10)) ] ||
            { echo "twd did not start" >&2; tail -n 20 "$log" >&2; exit 1; }
        sleep 0.1
    done
}

stop_twd() {
    [ -n "$pid" ] || return 0
    kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    tenths=0
    while kill -0 "$pid" 2>/dev/null && [ "$tenths" -lt 300 ]; do
        sleep 0.1
        tenths=$((tenths + 1))
    done
    kill -KILL "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
}

twd_workspace() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    data=$work/data
    log=$work/twd.log
    trap 'stop_twd; rm -rf "$work"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
