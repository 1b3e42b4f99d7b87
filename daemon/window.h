/* window.h -- event-time buckets and window bounds (SPEC §5). Pure arithmetic.
 *
 * Time is bucketed into fixed buckets of bucket_ms. For a creator whose *now*
 * falls in bucket H, the recent window is buckets [H - recent + 1, H] (24 h
 * ending at now, covering at most one bucket more: 25 h by default) and the
 * baseline is the hist buckets just before it ([H - recent - hist + 1,
 * H - recent], 7 days). The Redis Function keeps running sums over exactly
 * these buckets; this module is the one C definition of them. */
#ifndef NOUSU_WINDOW_H
#define NOUSU_WINDOW_H

#include <stdint.h>

#define WINDOW_DAY_MS 86400000LL

typedef struct window_params {
    int64_t bucket_ms; /* 3,600,000 */
    int64_t recent;    /* buckets in the recent window: window / bucket + 1 = 25 */
    int64_t hist;      /* buckets in the baseline: baseline / bucket = 168 */
} window_params;

/* From seconds; window_s and baseline_s must be multiples of bucket_s. */
window_params window_params_make(int64_t bucket_s, int64_t window_s, int64_t baseline_s);

/* Bucket index of a timestamp (floor division, also for negative ts). */
int64_t window_bucket(const window_params *p, int64_t ts_ms);

/* Baseline span [*ret_start, *ret_end) in ms for a creator whose now is now_ms. */
void window_baseline_span(const window_params *p, int64_t now_ms, int64_t *ret_start,
                          int64_t *ret_end);

/* days_hist of SPEC §5: the part of the baseline span after the creator's
 * first event, in days (fractional, 0 .. baseline days). */
double window_days_hist(const window_params *p, int64_t now_ms, int64_t first_ms);

#endif
