/* test_window.c -- window.c against hand calculations.
 *
 * Defaults: 1 h buckets (3,600,000 ms), a 24 h window, a 7-day baseline. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "window.h"

#define HOUR_MS 3600000LL

#define assert_near(a, b, eps)                                                 \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        if (!(fabs(a_ - b_) <= (eps)))                                         \
            fail_msg("%s = %.12g, expected %.12g", #a, a_, b_);                \
    } while (0)

static window_params defaults(void) {
    return window_params_make(3600, 86400, 604800);
}

static void test_params_defaults(void **state) {
    window_params p = defaults();

    assert_int_equal(p.bucket_ms, 3600000);
    /* 86,400 / 3,600 + 1 = 25: buckets [H-24, H] */
    assert_int_equal(p.recent, 25);
    /* 604,800 / 3,600 = 168 */
    assert_int_equal(p.hist, 168);
}

static void test_params_other(void **state) {
    /* 1 min buckets, 1 h window, 2 h baseline: 60 + 1 = 61, 7,200 / 60 = 120 */
    window_params p = window_params_make(60, 3600, 7200);

    assert_int_equal(p.bucket_ms, 60000);
    assert_int_equal(p.recent, 61);
    assert_int_equal(p.hist, 120);
}

static void test_bucket(void **state) {
    window_params p = defaults();

    assert_int_equal(window_bucket(&p, 0), 0);
    assert_int_equal(window_bucket(&p, 1), 0);
    assert_int_equal(window_bucket(&p, HOUR_MS - 1), 0);
    assert_int_equal(window_bucket(&p, HOUR_MS), 1);
    assert_int_equal(window_bucket(&p, HOUR_MS + 1), 1);
    /* 865,800,000 / 3,600,000 = 240.5 -> 240 */
    assert_int_equal(window_bucket(&p, 865800000), 240);
    /* 2023-11-14T22:13:20Z = 1,700,000,000,000 ms / 3.6e6 = 472,222.2 -> 472,222 */
    assert_int_equal(window_bucket(&p, 1700000000000LL), 472222);
}

static void test_bucket_negative(void **state) {
    window_params p = defaults();

    /* floor, not truncation: -1 ms is in the hour before the epoch */
    assert_int_equal(window_bucket(&p, -1), -1);
    assert_int_equal(window_bucket(&p, -HOUR_MS + 1), -1);
    assert_int_equal(window_bucket(&p, -HOUR_MS), -1);
    assert_int_equal(window_bucket(&p, -HOUR_MS - 1), -2);
    /* -5,400,000 / 3,600,000 = -1.5 -> -2 */
    assert_int_equal(window_bucket(&p, -5400000), -2);
}

static void test_baseline_span(void **state) {
    window_params p = defaults();
    int64_t start = -1, end = -1;

    /* now = 10 d 30 min = 865,800,000 ms; H = 240.
     * end = (240 - 25 + 1) * 3.6e6 = 216 h = 777,600,000 (= now - 24.5 h, the
     * start of the recent window [H-24, H]);
     * start = end - 168 h = 777,600,000 - 604,800,000 = 172,800,000 (2 d). */
    window_baseline_span(&p, 865800000, &start, &end);
    assert_int_equal(end, 777600000);
    assert_int_equal(start, 172800000);

    /* now on a bucket boundary: 240 h exactly, same H, same span; the recent
     * window is then exactly 24 h plus the 1 ms of bucket H. */
    window_baseline_span(&p, 240 * HOUR_MS, &start, &end);
    assert_int_equal(end, 777600000);
    assert_int_equal(start, 172800000);

    /* 1 ms earlier: H = 239, everything one hour earlier */
    window_baseline_span(&p, 240 * HOUR_MS - 1, &start, &end);
    assert_int_equal(end, 777600000 - HOUR_MS);
    assert_int_equal(start, 172800000 - HOUR_MS);
}

static void test_baseline_span_negative(void **state) {
    window_params p = defaults();
    int64_t start, end;

    /* now = -1: H = -1, end = (-1 - 24) * 3.6e6 = -90,000,000,
     * start = -90,000,000 - 604,800,000 = -694,800,000 */
    window_baseline_span(&p, -1, &start, &end);
    assert_int_equal(end, -90000000);
    assert_int_equal(start, -694800000);
}

static void test_days_hist(void **state) {
    window_params p = defaults();
    const int64_t now = 865800000; /* span [172,800,000, 777,600,000) */

    /* first before the span: the whole span, 7 days */
    assert_near(window_days_hist(&p, now, 0), 7.0, 1e-12);
    assert_near(window_days_hist(&p, now, -5000000000LL), 7.0, 1e-12);
    /* first at the span's start: still 7 */
    assert_near(window_days_hist(&p, now, 172800000), 7.0, 1e-12);
    /* first 1 day into the span: (777.6e6 - 259.2e6) / 86.4e6 = 6 */
    assert_near(window_days_hist(&p, now, 259200000), 6.0, 1e-12);
    /* first 36 h into it: (777.6e6 - 302.4e6) / 86.4e6 = 5.5 */
    assert_near(window_days_hist(&p, now, 302400000), 5.5, 1e-12);
    /* first 1 ms before the span's end: 1 / 86.4e6 */
    assert_near(window_days_hist(&p, now, 777600000 - 1), 1.0 / 86400000.0, 1e-18);
    /* first at the end, or inside the recent window, or after now: none */
    assert_near(window_days_hist(&p, now, 777600000), 0.0, 0);
    assert_near(window_days_hist(&p, now, 800000000), 0.0, 0);
    assert_near(window_days_hist(&p, now, now), 0.0, 0);
    assert_near(window_days_hist(&p, now, now + 1), 0.0, 0);
}

static void test_days_hist_short_baseline(void **state) {
    /* 1 min buckets, 1 h window, 2 h baseline: at most 7,200,000 / 86.4e6 d */
    window_params p = window_params_make(60, 3600, 7200);
    const double max = 7200000.0 / 86400000.0;
    /* now = 10 h = 36,000,000: H = 600, end = (600 - 61 + 1) * 60,000 =
     * 32,400,000, start = 32,400,000 - 7,200,000 = 25,200,000 */
    int64_t start, end;

    window_baseline_span(&p, 36000000, &start, &end);
    assert_int_equal(end, 32400000);
    assert_int_equal(start, 25200000);

    assert_near(window_days_hist(&p, 36000000, 0), max, 1e-15);
    /* first 1 h into the span: 3,600,000 / 86.4e6 */
    assert_near(window_days_hist(&p, 36000000, 28800000), 3600000.0 / 86400000.0, 1e-15);
    assert_near(window_days_hist(&p, 36000000, 35000000), 0.0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_defaults),
        cmocka_unit_test(test_params_other),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_bucket_negative),
        cmocka_unit_test(test_baseline_span),
        cmocka_unit_test(test_baseline_span_negative),
        cmocka_unit_test(test_days_hist),
        cmocka_unit_test(test_days_hist_short_baseline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
