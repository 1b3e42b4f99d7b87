/* window.c -- event-time buckets and window bounds (SPEC §5, window.h).
 *
 * Sits between the decoder and the store: store.c asks which bucket an event
 * falls in and which span the baseline covers; detect.c gets days_hist from
 * here. Pure arithmetic: no I/O, no logging, no state. */
#include <assert.h>

#include "window.h"

window_params window_params_make(int64_t bucket_s, int64_t window_s, int64_t baseline_s) {
    assert(bucket_s > 0);
    /* The recent window is the bucket of now plus window/bucket whole buckets
     * before it, so it always contains the full 24 h ending at now and at most
     * one bucket more (SPEC §5: up to 25 h). */
    return (window_params){
        .bucket_ms = bucket_s * 1000,
        .recent = window_s / bucket_s + 1,
        .hist = baseline_s / bucket_s,
    };
}

int64_t window_bucket(const window_params *p, int64_t ts_ms) {
    int64_t q = ts_ms / p->bucket_ms;

    /* C division truncates toward zero; a bucket index must floor so that
     * every bucket is exactly bucket_ms wide on both sides of the epoch. */
    if (ts_ms % p->bucket_ms != 0 && ts_ms < 0)
        q--;
    return q;
}

void window_baseline_span(const window_params *p, int64_t now_ms, int64_t *ret_start,
                          int64_t *ret_end) {
    int64_t h = window_bucket(p, now_ms);
    /* The baseline ends where the recent window starts: bucket H - recent + 1. */
    int64_t end = (h - p->recent + 1) * p->bucket_ms;

    *ret_start = end - p->hist * p->bucket_ms;
    *ret_end = end;
}

double window_days_hist(const window_params *p, int64_t now_ms, int64_t first_ms) {
    int64_t start, end;

    window_baseline_span(p, now_ms, &start, &end);

    /* Only the part of the span after the creator's first event counts as
     * history: a creator first seen mid-baseline has a shorter one, a creator
     * first seen inside the recent window has none. */
    int64_t from = first_ms > start ? first_ms : start;
    double days = (double)(end - from) / (double)WINDOW_DAY_MS;
    double max_days = (double)(p->hist * p->bucket_ms) / (double)WINDOW_DAY_MS;

    if (days < 0)
        return 0;
    if (days > max_days)
        return max_days;
    return days;
}
