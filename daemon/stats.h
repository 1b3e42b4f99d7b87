/* stats.h -- the daemon's own counters (control `stats`, logs, later the
 * Prometheus metrics). Plain data, updated only by the loop thread. */
#ifndef NOUSU_STATS_H
#define NOUSU_STATS_H

#include <stdint.h>

#include "detect.h"
#include "event.h"

/* A Prometheus histogram with fixed upper bounds (the last is +Inf). */
#define HISTOGRAM_MAX_BUCKETS 16
typedef struct histogram {
    const double *bounds; /* ascending, n_bounds of them */
    int n_bounds;
    uint64_t counts[HISTOGRAM_MAX_BUCKETS]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
} histogram;

void histogram_init(histogram *h, const double *bounds, int n_bounds);
void histogram_observe(histogram *h, double v);

typedef struct stats {
    int64_t started_ms;        /* wall clock */
    uint64_t frames;           /* frames read, both endpoints */
    uint64_t requests;         /* acknowledged requests read */
    uint64_t requests_replayed;/* answered with their first ack */
    uint64_t events_accepted;  /* effects committed in Redis */
    uint64_t events_duplicate;
    uint64_t events_rejected;
    uint64_t rejected[REJECT__COUNT];
    uint64_t bad_envelopes;    /* ack-endpoint messages not [request_id, payload] */
    uint64_t deadletter_shed;  /* dead-letter entries dropped while Redis was away */
    uint64_t curve_refused;    /* handshakes the ZAP handler refused */
    uint64_t alerts[ALERT__COUNT];
    uint64_t alerts_published;
    uint64_t commits;
    uint64_t hints_sent, hints_taken; /* runs whose state the daemon computed */
    uint64_t dedup_filtered_commits;  /* ids looked up only where the filter said */
    uint64_t redis_errors;
    histogram redis_seconds; /* round-trip latency of commits and posts */
    histogram commit_events; /* events per commit */
    histogram commit_lag_seconds; /* a commit's first event read to its reply */
    /* gauges */
    int redis_up;
    uint64_t pending_events;   /* taken in, not yet committed */
    uint64_t deadletter_queue; /* dead-letter entries waiting for Redis */
    uint64_t state_cache_bytes; /* the committer's (statecache.h) */
    uint64_t dedup_filter_bytes; /* the committer's (idfilter.h), as of the last commit */
} stats;

/* Set up the histograms of a zeroed stats. */
void stats_init(stats *st);

#endif
