#!/usr/bin/env bash
# report.sh -- issue 5's figures in one go: bench/run.sh with and without
# event ids, with the AOF off and on (everysec, with the AOF settings of
# docs/operations.md §3), and all four again with the nousu Redis module
# when it is built, then bench/memory_per_creator.py (a week of activity),
# and one summary table. ~16 min on 2 CPUs.
#
# Usage: bench/report.sh [BUILD_DIR] [-- nousu-bench options...]
#   e.g. bench/report.sh build-bench -- --events=5000000   (steadier dedup)
# Each run sends 3M events unless told otherwise: over 1M the cold first
# commits (nothing cached, nothing hinted) weigh ~15% of the run, and the
# issue asks for sustained rates (docs/performance.md).
# Environment: as run.sh (NOUSUD_ARGS, ...); REDIS_ARGS is added to every
# configuration. Each run's full output goes to the directory printed first.
# Exit status: the first failing run's (run.sh: 1 deadline, 3 wrong counts).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build-bench
if [[ $# -gt 0 && $1 != -- ]]; then build=$1; shift; fi
[[ ${1:-} == -- ]] && shift
out=$(mktemp -d "${TMPDIR:-/tmp}/nousu-report.XXXXXX")
echo "report.sh: outputs in $out"

aof="--appendonly yes --appendfsync everysec --auto-aof-rewrite-min-size 1gb"
configs=("ids,AOF off|" "no ids,AOF off|--no-ids" "ids,AOF everysec|$aof" "no ids,AOF everysec|$aof --no-ids")
# with the nousu Redis module (hinted runs in C, event ids in its tables), when built
[[ -f $build/nousu.so ]] && configs+=("ids+module,AOF off|module" "no ids+module,AOF off|--no-ids module"
                                      "ids+module,AOF everysec|$aof module"
                                      "no ids+module,AOF everysec|$aof --no-ids module")

rc=0
for c in "${configs[@]}"; do
    name=${c%%|*} rest=${c#*|}
    args=() redis= module=0
    for w in $rest; do
        if [[ $w == --no-ids ]]; then args+=("$w"); elif [[ $w == module ]]; then module=1; else redis+=" $w"; fi
    done
    file=$out/$(echo "$name" | tr ' ,' '_-').txt
    echo "report.sh: $name ..."
    MODULE=$module REDIS_ARGS="$redis ${REDIS_ARGS:-}" "$here/run.sh" "$build" -- --events=3000000 "${args[@]}" "$@" >"$file" 2>&1 ||
        { rc=$?; echo "report.sh: $name failed (exit $rc), see $file" >&2; break; }
    echo "$name|$(awk -f "$here/figures.awk" "$file" | tr ' ' '|')" >>"$out/rows"
done
[[ $rc == 0 ]] || exit "$rc"

echo "report.sh: memory per creator, a week of activity ..."
/usr/bin/python3 "$here/memory_per_creator.py" "$build" >"$out/memory.txt" 2>&1 ||
    { echo "report.sh: memory_per_creator.py failed, see $out/memory.txt" >&2; exit 1; }

echo
head -n 2 "$out/ids-AOF_off.txt" | sed -n 2p
grep -m1 '^nousu-bench: run' "$out/ids-AOF_off.txt"
printf '%-27s %9s %7s %6s %7s %6s %9s %9s %8s %10s %5s\n' config events/s counts us/ev naive pipel \
    "p50 ms" "p99 ms" "RSS MB" KB/creator B/id
while IFS='|' read -r name eps us naive pipe p50 p99 ver rss kb bid; do
    eps=$(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$eps") # figures.awk strips the commas
    printf '%-27s %9s %7s %6s %7s %6s %9s %9s %8s %10s %5s\n' "$name" "$eps" "$ver" "$us" "$naive" \
        "$pipe" "$p50" "$p99" "$rss" "$kb" "$bid"
done <"$out/rows"
echo "(events/s: end to end, counts read back and compared; us/ev: inside the commit Function;"
echo " naive/pipel: nousud's rate over each baseline's, same run; p50/p99: alert latency at half"
echo " load; RSS: daemon peak; KB/creator: Redis growth over the run, 1 min of events)"
grep -E 'per creator|used_memory' "$out/memory.txt" | head -n 3
