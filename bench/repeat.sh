#!/usr/bin/env bash
# repeat.sh -- run bench/run.sh N times and summarize: on a shared 2-CPU
# machine one run's figures move by 15-20%, so compare medians, not runs.
#
# Usage: bench/repeat.sh N [BUILD_DIR] [-- nousu-bench options...]
#   e.g. REDIS_ARGS="--appendonly yes --appendfsync everysec" bench/repeat.sh 3 -- --no-ids
# Environment: as run.sh (NOUSUD_ARGS, REDIS_ARGS, ...). Each run's full
# output goes to the directory printed first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
n=${1:?usage: bench/repeat.sh N [BUILD_DIR] [-- options]}
shift
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "repeat.sh: N must be a positive integer" >&2; exit 2; }
out=$(mktemp -d "${TMPDIR:-/tmp}/nousu-repeat.XXXXXX")
echo "repeat.sh: $n runs, outputs in $out"

# One line per run (figures.awk): events/s, Redis us/event, x naive,
# x pipelined, p50, p99 (ms, at half load), then more that this script skips.
figures() { awk -f "$here/figures.awk" "$1"; }

for ((r = 1; r <= n; r++)); do
    "$here/run.sh" "$@" >"$out/run$r.txt" 2>&1 || { echo "repeat.sh: run $r failed, see $out/run$r.txt" >&2; exit 1; }
    figures "$out/run$r.txt" >>"$out/figures"
    echo "run $r: $(tail -n 1 "$out/figures" | awk '{printf "%s events/s, %s us/event in Redis, %s naive, %s pipelined, alert p50 %s ms p99 %s ms", $1, $2, $3, $4, $5, $6}')"
done

# min / median / max of each column
for col in 1 2 5 6; do
    name=$(echo "events/s us/event - - p50_ms p99_ms" | cut -d' ' -f"$col")
    cut -d' ' -f"$col" "$out/figures" | sed 's/x$//' | sort -g |
        awk -v name="$name" '{ v[NR] = $1 } END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%-10s min %-10s median %-10s max %s\n", name, v[1], m, v[NR] }'
done
