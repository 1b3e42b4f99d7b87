# figures.awk -- one line of figures from a bench/run.sh output, for
# repeat.sh and report.sh: events/s, Redis us/event, x naive, x pipelined,
# alert p50 and p99 (ms, at half load), counters verified (exact or NO),
# daemon RSS peak (MB), Redis KB/creator, bytes per remembered id.
# Space-separated, "-" for a figure the run did not print.
/^nousud end-to-end:/ {
    for (i = 1; i <= NF; i++) if ($i == "=") { eps = $(i + 1); gsub(",", "", eps) }
    verified = ($0 ~ /counters verified: exact/) ? "exact" : "NO"
}
/^  Redis: .* us\/event/ { for (i = 1; i <= NF; i++) if ($i ~ /^us\/event/) us = $(i - 1) }
/^ratio:/ { naive = $2; pipe = $4 }
/^alert latency/ { for (i = 1; i <= NF; i++) { if ($i == "p50") p50 = $(i + 1); if ($i == "p99") p99 = $(i + 1) } }
/^daemon RSS at the end:/ { for (i = 1; i <= NF; i++) if ($i == "(peak") rss = $(i + 1) }
/^  Redis used_memory:/ {
    for (i = 1; i <= NF; i++) {
        if ($i ~ /^KB\/creator/) kb = $(i - 1)
        if ($i ~ /^B\/id/) { bid = $(i - 1); sub(/^\(/, "", bid) }
    }
}
function or_dash(v) { return v == "" ? "-" : v }
END {
    printf "%s %s %s %s %s %s %s %s %s %s\n", or_dash(eps), or_dash(us), or_dash(naive),
           or_dash(pipe), or_dash(p50), or_dash(p99), or_dash(verified), or_dash(rss),
           or_dash(kb), or_dash(bid)
}
