#!/usr/bin/env bash
# run.sh -- run nousu-bench against a fresh nousud and a throwaway Redis.
#
# Usage: bench/run.sh [BUILD_DIR] [-- nousu-bench options...]
#   BUILD_DIR  a build tree holding nousud and bench/nousu-bench
#              (default: build-bench next to bench/; build it with
#               cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
#               make -C build-bench -j2)
#   e.g. bench/run.sh build-bench -- --events=200000 --risers=20
# Environment: NOUSUD_ARGS  extra --key=value settings for nousud
#              REDIS_ARGS   extra redis-server settings, e.g.
#                           "--appendonly yes --appendfsync everysec"; they
#                           come after run.sh's own, so they override them:
#                           "--set-max-intset-entries 512" for Redis's default
#                           instead of the 4096 of docs/operations.md
#              REDIS_WRAP   a command to run redis-server under, e.g.
#                           "valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p"
#                           (instruction counts of a whole run; see bench/README.md)
#              NOUSUD_WRAP  the same for nousud, e.g. "perf record -g -o /tmp/n.data --"
#                           (the RSS and CPU figures are then the wrapper's)
#              MODULE=1     load BUILD_DIR/nousu.so into redis-server: event ids
#                           go to its tables instead of intsets (docs/performance.md)
#              KEEP=1       keep the temp dir (logs) instead of removing it
#              STATS=1      print Redis's per-command time at the end
#              SLOWLOG=N    print the N slowest commit FCALLs (from SLOWLOG)
#              LATENCY=MS   print Redis's LATENCY LATEST and the times (s into
#                           the run) of its spikes over MS ms, by event
#                           (command, expire-cycle, fork, ...)
#
# Starts redis-server on a free 127.0.0.1 port in a mktemp dir (no
# persistence) and nousud with ipc:// endpoints in the same dir, runs the
# bench, then stops both by PID and removes the dir. Every wait has a deadline.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build-bench
if [[ $# -gt 0 && $1 != -- ]]; then build=$1; shift; fi
[[ ${1:-} == -- ]] && shift
build=$(cd "$build" && pwd)
nousud=$build/nousud
bench=$build/bench/nousu-bench
for f in "$nousud" "$bench"; do
    [[ -x $f ]] || { echo "run.sh: $f not found; build first (see the top of $0)" >&2; exit 2; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/nousu-bench.XXXXXX")
redis_pid= nousud_pid=

stop() { # stop PID [seconds]: TERM, then KILL after the grace period
    local pid=$1 grace=${2:-10} i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "run.sh: pid $pid did not stop in ${grace}s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop "$nousud_pid"
    stop "$redis_pid"
    if [[ $rc -ne 0 && -f $dir/nousud.log ]]; then
        echo "run.sh: exit $rc; last lines of the nousud log:" >&2
        tail -n 20 "$dir/nousud.log" >&2
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "run.sh: kept $dir" >&2
    else
        rm -rf "$dir"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free port: random candidates, skipping any that answers; the start itself
# is the real test (bind fails if someone took it meanwhile), so retry that.
module_args=()
if [[ ${MODULE:-0} == 1 ]]; then
    [[ -f $build/nousu.so ]] || { echo "run.sh: $build/nousu.so not built (bash .ci/redismodule-h, then cmake again)" >&2; exit 2; }
    module_args=(--loadmodule "$build/nousu.so")
fi
for attempt in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    # shellcheck disable=SC2086 # REDIS_WRAP, REDIS_ARGS: word-split on purpose
    ${REDIS_WRAP:-} redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
        --set-max-intset-entries 4096 --daemonize no --logfile "$dir/redis.log" \
        "${module_args[@]}" ${REDIS_ARGS:-} &
    redis_pid=$!
    for ((i = 0; i < 300; i++)); do # 30 s (valgrind starts slowly)
        kill -0 "$redis_pid" 2>/dev/null || break
        redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break 2
        sleep 0.1
    done
    stop "$redis_pid" 2
    redis_pid=
done
[[ -n $redis_pid ]] || { echo "run.sh: could not start redis-server" >&2; exit 1; }

ep() { echo "ipc://$dir/$1.sock"; }
# shellcheck disable=SC2086
${NOUSUD_WRAP:-} "$nousud" --redis_port="$port" --metrics= --log_level=info \
    --ingest="$(ep ingest)" --ingest_ack="$(ep ingest_ack)" \
    --alerts="$(ep alerts)" --control="$(ep control)" ${NOUSUD_ARGS:-} \
    >"$dir/nousud.log" 2>&1 &
nousud_pid=$!
for ((i = 0; i < 100; i++)); do # 10 s for the control socket to appear
    kill -0 "$nousud_pid" 2>/dev/null || { echo "run.sh: nousud exited:" >&2; cat "$dir/nousud.log" >&2; exit 1; }
    [[ -S $dir/control.sock ]] && break
    sleep 0.1
done

if [[ ${LATENCY:-0} -gt 0 ]]; then
    redis-cli -h 127.0.0.1 -p "$port" config set latency-monitor-threshold "$LATENCY" >/dev/null
fi
t_start=$(date +%s)
if [[ ${SLOWLOG:-0} -gt 0 ]]; then
    redis-cli -h 127.0.0.1 -p "$port" config set slowlog-log-slower-than 5000 >/dev/null
    redis-cli -h 127.0.0.1 -p "$port" config set slowlog-max-len 10000 >/dev/null
fi
echo "run.sh: redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port (pid $redis_pid), nousud pid $nousud_pid, dir $dir"
redis_setting() { redis-cli -h 127.0.0.1 -p "$port" config get "$1" | sed -n 2p; }
echo "run.sh: redis set-max-intset-entries $(redis_setting set-max-intset-entries), appendonly $(redis_setting appendonly), appendfsync $(redis_setting appendfsync), nousu module $([[ ${#module_args[@]} -gt 0 ]] && echo loaded || echo not loaded)"
rc=0
"$bench" --redis-port="$port" --daemon-pid="$nousud_pid" \
    --ingest="$(ep ingest)" --alerts="$(ep alerts)" --control="$(ep control)" \
    --naive-endpoint="$(ep bench-naive)" "$@" || rc=$?

# Where Redis spent its time, command by command (calls made inside the
# Functions included): STATS=1.
if [[ ${STATS:-0} == 1 ]]; then
    echo "redis commandstats (calls, usec, usec_per_call), busiest first:"
    redis-cli -h 127.0.0.1 -p "$port" info commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),usec=\([0-9]*\),usec_per_call=\([0-9.]*\).*/\3 \1 \2 \4/p' |
        sort -rn | head -n 15 | awk '{printf "  %-22s %10d calls %10.0f ms %8.2f us/call\n", $2, $3, $1 / 1000, $4}'
fi

# The slowest commits (FCALLs over 5 ms): where a run's Redis time went.
if [[ ${SLOWLOG:-0} -gt 0 ]]; then
    echo "slowest commit FCALLs (ms, function), of $(redis-cli -h 127.0.0.1 -p "$port" slowlog len) over 5 ms:"
    redis-cli -h 127.0.0.1 -p "$port" slowlog get 10000 | tr -d '\r' |
        awk '$0 == "FCALL" && prev ~ /^[0-9]+$/ { getline fn; print prev / 1000, fn } { prev = $0 }' |
        sort -rn | awk -v n="$SLOWLOG" 'NR <= n {printf "  %8.1f ms %s\n", $1, $2}' # reads all: no SIGPIPE
fi

# Redis's own latency spikes: which event, and when in the run.
if [[ ${LATENCY:-0} -gt 0 ]]; then
    echo "redis latency spikes over ${LATENCY} ms (event: s into the run/ms ...):"
    for e in $(redis-cli -h 127.0.0.1 -p "$port" latency latest | tr -d '\r' | awk 'NR % 4 == 1'); do
        echo "  $e: $(redis-cli -h 127.0.0.1 -p "$port" latency history "$e" | tr -d '\r' |
            awk -v t0="$t_start" 'NR % 2 == 1 {t = $0 - t0} NR % 2 == 0 {printf "%d/%d ", t, $0}')"
    done
fi

# What the daemon said about the load: warnings and errors, counted.
if grep -qE '^<[0-4]>' "$dir/nousud.log"; then
    echo "nousud log: $(grep -cE '^<[0-4]>' "$dir/nousud.log") warning/error lines, the first:"
    grep -E '^<[0-4]>' "$dir/nousud.log" | head -n 5 | sed 's/^/  /'
else
    echo "nousud log: no warnings or errors ($(wc -l <"$dir/nousud.log") lines)"
fi
exit "$rc"
