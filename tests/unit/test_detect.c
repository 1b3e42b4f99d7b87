/* test_detect.c -- the SPEC §5 rules against hand calculations.
 *
 * Every expected number below is worked out in the comment next to it, with
 * the default parameters: tiers 1,000 / 10,000 / 100,000, prior 0.03, 3 days
 * of history, rising E >= 50, velocity >= 3, z >= 4, rate >= 0.03, audience
 * rule from 30 interactions with an actor at a unique ratio of 0.3,
 * suspicious follower jump 20% while E < 1.5 mu, board drop at velocity 1.5.
 *
 *   mu       = (e_hist + 0.03 * followers) / (days_hist + 1)
 *   velocity = E / mu
 *   z        = (E - mu) / sqrt(mu + 1)
 *   rate     = E / followers */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "detect.h"

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define NOW (10 * DAY_MS)

#define assert_near(a, b, eps)                                                 \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        if (!(fabs(a_ - b_) <= (eps)))                                         \
            fail_msg("%s = %.12g, expected %.12g", #a, a_, b_);                \
    } while (0)

static const detect_params P = {
    .micro_min = 1000,
    .micro_max = 10000,
    .mid_max = 100000,
    .prior_rate = 0.03,
    .baseline_days = 7,
    .min_history_ms = 3 * DAY_MS,
    .rising_min_engagement = 50,
    .rising_min_velocity = 3,
    .rising_min_z = 4,
    .rising_min_rate = 0.03,
    .audience_min_interactions = 30,
    .audience_min_unique_ratio = 0.3,
    .suspicious_follower_jump = 0.2,
    .suspicious_max_velocity = 1.5,
    .board_min_velocity = 1.5,
};

/* The worked example: 3,000 followers, 420 of engagement over a full 7-day
 * baseline, 600 in the last 24 h.
 *   mu       = (420 + 0.03 * 3,000) / (7 + 1) = 510 / 8 = 63.75
 *   velocity = 600 / 63.75 = 9.41176
 *   z        = (600 - 63.75) / sqrt(64.75) = 536.25 / 8.04674 = 66.6419
 *   rate     = 600 / 3,000 = 0.2
 * Counts: like 300, comment 50, share 20, save 10, mention 6
 *   E = 300 + 3*50 + 4*20 + 4*10 + 5*6 = 600; interactions = 386.
 * No interaction carries an actor: the audience rule does not apply. */
static creator_window base(void) {
    creator_window w = {
        .now_ms = NOW,
        .first_ms = 0,
        .followers = 3000,
        .followers_ts = NOW,
        .early_followers = -1,
        .early_followers_ts = 0,
        .below_ts = 0,
        .grad_base = 0,
        .e_recent = 600,
        .e_hist = 420,
        .days_hist = 7,
        .interactions_with_actor = 0,
        .e_sponsored = 0,
        .unique_engagers = -1,
    };
    w.counts[EV_VIEW] = 5000;
    w.counts[EV_LIKE] = 300;
    w.counts[EV_COMMENT] = 50;
    w.counts[EV_SHARE] = 20;
    w.counts[EV_SAVE] = 10;
    w.counts[EV_MENTION] = 6;
    return w;
}

static detect_result eval(const creator_window *w) {
    detect_result r;

    memset(&r, 0xa5, sizeof r); /* detect_eval must set every field */
    detect_eval(&P, w, &r);
    return r;
}

static void assert_fired(const detect_result *r, bool rising, bool suspicious, bool graduated) {
    assert_int_equal(r->fired[ALERT_RISING], rising);
    assert_int_equal(r->fired[ALERT_SUSPICIOUS], suspicious);
    assert_int_equal(r->fired[ALERT_GRADUATED], graduated);
}

/* --- names ---------------------------------------------------------------- */

static void test_names(void **state) {
    assert_string_equal(alert_kind_name(ALERT_RISING), "rising");
    assert_string_equal(alert_kind_name(ALERT_SUSPICIOUS), "suspicious");
    assert_string_equal(alert_kind_name(ALERT_GRADUATED), "graduated");
    assert_string_equal(alert_kind_name(ALERT__COUNT), "?");
    assert_string_equal(tier_name(TIER_UNKNOWN), "unknown");
    assert_string_equal(tier_name(TIER_NANO), "nano");
    assert_string_equal(tier_name(TIER_MICRO), "micro");
    assert_string_equal(tier_name(TIER_MID), "mid");
    assert_string_equal(tier_name(TIER_MACRO), "macro");
    assert_string_equal(tier_name(TIER__COUNT), "?");
}

/* --- the worked example ------------------------------------------------- */

static void test_worked_example(void **state) {
    creator_window w = base();
    detect_result r = eval(&w);

    assert_int_equal(r.tier, TIER_MICRO);
    assert_near(r.mu, 63.75, 1e-12);
    assert_near(r.velocity, 9.411764706, 1e-9);
    assert_near(r.z, 66.641907404, 1e-9);
    assert_near(r.rate, 0.2, 1e-15);
    assert_int_equal(r.interactions, 386);
    assert_int_equal(r.net_follows, 0);
    assert_true(r.eligible);
    assert_true(r.volume);
    assert_false(r.needs_uniques);
    assert_fired(&r, true, false, false);
    assert_true(r.on_board);
    assert_false(r.board_drop);
    /* no uniques fetched, no sponsored engagement, no earlier snapshot and no
     * follows: 0 / (3,000 - 0) = 0 */
    assert_near(r.repeat_ratio, 0, 0);
    assert_near(r.sponsored_share, 0, 0);
    assert_near(r.follower_growth, 0, 0);
}

static void test_short_history(void **state) {
    creator_window w = base();

    /* days_hist 0, e_hist 0: mu = (0 + 0.03 * 3,000) / (0 + 1) = 90
     * velocity = 600 / 90 = 6.6667, z = 510 / sqrt(91) = 53.4625 */
    w.days_hist = 0;
    w.e_hist = 0;
    detect_result r = eval(&w);
    assert_near(r.mu, 90, 1e-12);
    assert_near(r.velocity, 6.666666667, 1e-9);
    assert_near(r.z, 53.462526673, 1e-9);
    assert_fired(&r, true, false, false);

    /* half a day of history with 30 in it: mu = (30 + 90) / 1.5 = 80 */
    w.days_hist = 0.5;
    w.e_hist = 30;
    r = eval(&w);
    assert_near(r.mu, 80, 1e-12);
    assert_near(r.velocity, 7.5, 1e-12);
}

/* --- tiers ------------------------------------------------------------------ */

static void test_tiers(void **state) {
    static const struct {
        int64_t followers;
        tier t;
    } cases[] = {
        {-1, TIER_UNKNOWN}, {0, TIER_NANO},        {999, TIER_NANO},
        {1000, TIER_MICRO}, {10000, TIER_MICRO},   {10001, TIER_MID},
        {100000, TIER_MID}, {100001, TIER_MACRO},  {10000000000LL, TIER_MACRO},
    };
    creator_window w = base();

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        w.followers = cases[i].followers;
        detect_result r = eval(&w);
        assert_int_equal(r.tier, cases[i].t);
        assert_int_equal(r.eligible, cases[i].t == TIER_MICRO);
    }
}

/* Rising needs the micro tier on both sides of each bound. E = 600 and
 * e_hist 0, days_hist 7, so mu = 0.03 f / 8:
 *   f =    999: nano                                  -> no
 *   f =  1,000: mu = 3.75,  v = 160,  rate = 0.6      -> rising
 *   f = 10,000: mu = 37.5,  v = 16,   rate = 0.06     -> rising
 *   f = 10,001: mid                                   -> no */
static void test_tier_bounds_rising(void **state) {
    static const struct {
        int64_t followers;
        bool rising;
    } cases[] = {{999, false}, {1000, true}, {10000, true}, {10001, false}};
    creator_window w = base();

    w.e_hist = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        w.followers = cases[i].followers;
        detect_result r = eval(&w);
        assert_int_equal(r.fired[ALERT_RISING], cases[i].rising);
        assert_int_equal(r.volume, cases[i].rising);
    }
}

static void test_unknown_never_rising(void **state) {
    creator_window w = base();

    /* no follower count: mu = (420 + 0) / 8 = 52.5, velocity = 600 / 52.5
     * = 11.43, z = 547.5 / sqrt(53.5) = 74.85 -- would pass every other
     * volume rule, but the tier is unknown and the rate is 0. */
    w.followers = -1;
    w.followers_ts = 0;
    w.e_recent = 100000;
    detect_result r = eval(&w);
    assert_int_equal(r.tier, TIER_UNKNOWN);
    assert_near(r.mu, 52.5, 1e-12);
    assert_near(r.rate, 0, 0);
    assert_false(r.eligible);
    assert_false(r.volume);
    assert_fired(&r, false, false, false);
    assert_false(r.on_board);
    assert_near(r.follower_growth, 0, 0);
}

/* --- each volume rule on both sides of its bound ------------------------ */

static void test_min_engagement(void **state) {
    /* f = 1,000, e_hist 0, days 7: mu = 30 / 8 = 3.75.
     * E = 50: v = 13.33, z = 46.25 / sqrt(4.75) = 21.2, rate = 0.05 -> rising
     * E = 49: v = 13.07, z = 45.25 / 2.179 = 20.8,   rate = 0.049 -> E fails */
    creator_window w = base();

    w.followers = 1000;
    w.e_hist = 0;
    w.e_recent = 50;
    detect_result r = eval(&w);
    assert_near(r.mu, 3.75, 1e-12);
    assert_fired(&r, true, false, false);

    w.e_recent = 49;
    r = eval(&w);
    assert_false(r.volume);
    assert_fired(&r, false, false, false);
}

static void test_min_velocity(void **state) {
    /* f = 5,000, e_hist 650, days 7: mu = (650 + 150) / 8 = 100.
     * E = 300: v = 3.00, z = 200 / sqrt(101) = 19.9, rate = 0.06 -> rising
     * E = 299: v = 2.99                                         -> no */
    creator_window w = base();

    w.followers = 5000;
    w.e_hist = 650;
    w.e_recent = 300;
    detect_result r = eval(&w);
    assert_near(r.mu, 100, 1e-12);
    assert_near(r.velocity, 3, 1e-12);
    assert_fired(&r, true, false, false);

    w.e_recent = 299;
    r = eval(&w);
    assert_near(r.velocity, 2.99, 1e-12);
    assert_false(r.volume);
    assert_fired(&r, false, false, false);
}

static void test_min_z(void **state) {
    /* With the default E >= 50 and velocity >= 3, z is never the binding
     * rule: at E = 50 the smallest z is at mu = 50/3, z = 33.3 / 4.2 = 7.9.
     * So lower those two here to let z decide.
     * f = 1,000, e_hist 90, days 7: mu = (90 + 30) / 8 = 15, sqrt(16) = 4.
     * E = 31:    z = 16 / 4 = 4.0,     v = 2.07, rate = 0.031 -> rising
     * E = 30.99: z = 15.99 / 4 = 3.9975                        -> no */
    detect_params p = P;
    creator_window w = base();
    detect_result r;

    p.rising_min_engagement = 10;
    p.rising_min_velocity = 2;
    w.followers = 1000;
    w.e_hist = 90;
    w.e_recent = 31;
    detect_eval(&p, &w, &r);
    assert_near(r.mu, 15, 1e-12);
    assert_near(r.z, 4, 1e-12);
    assert_true(r.fired[ALERT_RISING]);

    w.e_recent = 30.99;
    detect_eval(&p, &w, &r);
    assert_near(r.z, 3.9975, 1e-12);
    assert_false(r.volume);
    assert_false(r.fired[ALERT_RISING]);
}

static void test_min_rate(void **state) {
    /* f = 10,000, e_hist 0, days 7: mu = 300 / 8 = 37.5.
     * E = 300: rate = 0.03,   v = 8, z = 262.5 / sqrt(38.5) = 42.3 -> rising
     * E = 299: rate = 0.0299                                      -> no */
    creator_window w = base();

    w.followers = 10000;
    w.e_hist = 0;
    w.e_recent = 300;
    detect_result r = eval(&w);
    assert_near(r.rate, 0.03, 1e-15);
    assert_fired(&r, true, false, false);

    w.e_recent = 299;
    r = eval(&w);
    assert_near(r.rate, 0.0299, 1e-15);
    assert_false(r.volume);
    assert_fired(&r, false, false, false);
}

static void test_min_history(void **state) {
    /* seen for 3 days = 259,200,000 ms between first and now */
    creator_window w = base();

    w.first_ms = NOW - 3 * DAY_MS;
    detect_result r = eval(&w);
    assert_true(r.eligible);
    assert_fired(&r, true, false, false);

    w.first_ms = NOW - 3 * DAY_MS + 1; /* 3 days minus 1 ms */
    r = eval(&w);
    assert_false(r.eligible);
    assert_false(r.volume);
    assert_fired(&r, false, false, false);
}

/* --- the audience rule ---------------------------------------------------- */

static void test_audience_min_interactions(void **state) {
    /* one account behind every interaction with an actor */
    creator_window w = base();

    /* 29 with an actor: the rule does not apply -> rising */
    w.interactions_with_actor = 29;
    w.unique_engagers = 1;
    detect_result r = eval(&w);
    assert_false(r.needs_uniques);
    assert_fired(&r, true, false, false);

    /* 30: it applies, 1 / 30 = 0.033 < 0.3 -> suspicious instead */
    w.interactions_with_actor = 30;
    r = eval(&w);
    assert_true(r.volume);
    assert_fired(&r, false, true, false);
    assert_false(r.on_board);
}

static void test_audience_unique_ratio(void **state) {
    creator_window w = base();

    /* 30 / 100 = 0.3 -> passes */
    w.interactions_with_actor = 100;
    w.unique_engagers = 30;
    detect_result r = eval(&w);
    assert_fired(&r, true, false, false);

    /* 29 / 100 = 0.29 -> fails */
    w.unique_engagers = 29;
    r = eval(&w);
    assert_fired(&r, false, true, false);
}

static void test_suspicious_by_audience(void **state) {
    /* 360 of the 386 interactions carry an actor, from 6 accounts:
     * 6 / 360 = 0.0167 < 0.3; the volume rules hold (worked example). */
    creator_window w = base();

    w.interactions_with_actor = 360;
    w.unique_engagers = 6;
    detect_result r = eval(&w);
    assert_true(r.volume);
    assert_fired(&r, false, true, false);
    /* 386 / 6 = 64.33 */
    assert_near(r.repeat_ratio, 64.333333333, 1e-9);

    /* ... but not for a creator seen for less than 3 days */
    w.first_ms = NOW - DAY_MS;
    r = eval(&w);
    assert_fired(&r, false, false, false);
}

static void test_needs_uniques(void **state) {
    creator_window w = base();

    /* volume holds, 200 interactions carry an actor, uniques not fetched:
     * undecided, neither rising nor suspicious yet */
    w.interactions_with_actor = 200;
    w.unique_engagers = -1;
    detect_result r = eval(&w);
    assert_true(r.volume);
    assert_true(r.needs_uniques);
    assert_fired(&r, false, false, false);
    assert_false(r.on_board);

    /* second call with 150 uniques: 150 / 200 = 0.75 -> rising */
    w.unique_engagers = 150;
    r = eval(&w);
    assert_false(r.needs_uniques);
    assert_fired(&r, true, false, false);
    /* 386 / 150 = 2.5733 */
    assert_near(r.repeat_ratio, 2.573333333, 1e-9);

    /* ... or with 20: 20 / 200 = 0.1 -> suspicious */
    w.unique_engagers = 20;
    r = eval(&w);
    assert_false(r.needs_uniques);
    assert_fired(&r, false, true, false);

    /* no volume: nothing to decide, no fetch */
    w.unique_engagers = -1;
    w.e_recent = 40;
    r = eval(&w);
    assert_false(r.volume);
    assert_false(r.needs_uniques);

    /* the rule does not apply (29 with an actor): no fetch, rising at once */
    w.e_recent = 600;
    w.interactions_with_actor = 29;
    r = eval(&w);
    assert_false(r.needs_uniques);
    assert_fired(&r, true, false, false);
}

/* --- followers without engagement --------------------------------------- */

static void test_suspicious_follower_jump(void **state) {
    /* early snapshot 2,500 at now - 20 h, latest 3,000 at now:
     * 3,000 >= 1.2 * 2,500 = 3,000 -> a jump; growth = 500 / 2,500 = 0.2.
     * mu = 63.75 (worked example), 1.5 mu = 95.625.
     * E = 60: 60 < 95.625, velocity = 60 / 63.75 = 0.94 -> suspicious */
    creator_window w = base();

    w.early_followers = 2500;
    w.early_followers_ts = NOW - 20 * HOUR_MS;
    w.e_recent = 60;
    detect_result r = eval(&w);
    assert_false(r.volume);
    assert_near(r.follower_growth, 0.2, 1e-15);
    assert_near(r.velocity, 0.941176471, 1e-9);
    assert_fired(&r, false, true, false);
    /* and velocity 0.94 < 1.5: off the board */
    assert_true(r.board_drop);

    /* E = 95.62 < 95.625 -> still suspicious */
    w.e_recent = 95.62;
    r = eval(&w);
    assert_fired(&r, false, true, false);

    /* E = 95.625 = 1.5 mu: engagement followed -> not */
    w.e_recent = 95.625;
    r = eval(&w);
    assert_fired(&r, false, false, false);

    /* 2,999 < 3,000: under 20% (19.96%) -> not */
    w.e_recent = 60;
    w.followers = 2999;
    r = eval(&w);
    assert_fired(&r, false, false, false);

    /* the early snapshot is the latest one (same ts): no jump */
    w.followers = 3000;
    w.early_followers_ts = NOW;
    r = eval(&w);
    assert_fired(&r, false, false, false);

    /* seen for less than 3 days: not */
    w.early_followers_ts = NOW - 20 * HOUR_MS;
    w.first_ms = NOW - 2 * DAY_MS;
    r = eval(&w);
    assert_fired(&r, false, false, false);

    /* a jump into the mid tier is not micro: not */
    w.first_ms = 0;
    w.early_followers = 9000;
    w.followers = 12000;
    r = eval(&w);
    assert_false(r.fired[ALERT_SUSPICIOUS]);
}

/* A creator that is rising is never also suspicious, even if its followers
 * jumped: only possible when E >= 3 mu and E < max_velocity * mu, so widen
 * the latter. */
static void test_rising_excludes_suspicious(void **state) {
    detect_params p = P;
    creator_window w = base();
    detect_result r;

    p.suspicious_max_velocity = 100;
    w.early_followers = 2000;
    w.early_followers_ts = NOW - HOUR_MS;
    detect_eval(&p, &w, &r);
    assert_fired(&r, true, false, false);
}

/* --- graduated ------------------------------------------------------------ */

static void test_graduated(void **state) {
    creator_window w = base();

    /* 10,240 at now after a snapshot at or below 10,000 an hour ago */
    w.followers = 10240;
    w.below_ts = NOW - HOUR_MS;
    detect_result r = eval(&w);
    assert_int_equal(r.tier, TIER_MID);
    assert_fired(&r, false, false, true);

    /* the same crossing was already alerted */
    w.grad_base = NOW - HOUR_MS;
    r = eval(&w);
    assert_false(r.fired[ALERT_GRADUATED]);

    /* a new crossing (down and up again) since: fires again */
    w.below_ts = NOW - 10 * 60000;
    r = eval(&w);
    assert_true(r.fired[ALERT_GRADUATED]);

    /* only ever above the bound: never */
    w.below_ts = 0;
    w.grad_base = 0;
    r = eval(&w);
    assert_false(r.fired[ALERT_GRADUATED]);

    /* the snapshot at or below is the latest one: not above */
    w.followers = 10000;
    w.below_ts = NOW;
    r = eval(&w);
    assert_false(r.fired[ALERT_GRADUATED]);

    /* 10,001 after a lower one: the smallest crossing */
    w.followers = 10001;
    w.below_ts = NOW - 1;
    r = eval(&w);
    assert_true(r.fired[ALERT_GRADUATED]);

    /* the lower snapshot is not earlier than the latest one */
    w.below_ts = NOW;
    r = eval(&w);
    assert_false(r.fired[ALERT_GRADUATED]);
}

/* --- derived numbers -------------------------------------------------------- */

static void test_follower_growth(void **state) {
    creator_window w = base();
    detect_result r;

    /* an earlier snapshot in the window: (3,000 - 2,400) / 2,400 = 0.25 */
    w.early_followers = 2400;
    w.early_followers_ts = NOW - 5 * HOUR_MS;
    r = eval(&w);
    assert_near(r.follower_growth, 0.25, 1e-15);

    /* a loss: (3,000 - 4,000) / 4,000 = -0.25 */
    w.early_followers = 4000;
    r = eval(&w);
    assert_near(r.follower_growth, -0.25, 1e-15);

    /* no earlier snapshot: follows 150, unfollows 30, net 120;
     * 120 / (3,000 - 120) = 120 / 2,880 = 0.041667 */
    w.early_followers = -1;
    w.early_followers_ts = 0;
    w.counts[EV_FOLLOW] = 150;
    w.counts[EV_UNFOLLOW] = 30;
    r = eval(&w);
    assert_int_equal(r.net_follows, 120);
    assert_near(r.follower_growth, 0.041666666667, 1e-12);

    /* the only snapshot in the window is the latest: net follows too */
    w.early_followers = 3000;
    w.early_followers_ts = NOW;
    r = eval(&w);
    assert_near(r.follower_growth, 0.041666666667, 1e-12);

    /* net follows lost: -60 / (3,000 + 60) = -0.019608 */
    w.counts[EV_FOLLOW] = 0;
    w.counts[EV_UNFOLLOW] = 60;
    r = eval(&w);
    assert_int_equal(r.net_follows, -60);
    assert_near(r.follower_growth, -60.0 / 3060.0, 1e-15);

    /* followers - net <= 0: 100 followers, all 100 new -> 0 */
    w.followers = 100;
    w.early_followers = -1;
    w.counts[EV_FOLLOW] = 100;
    w.counts[EV_UNFOLLOW] = 0;
    r = eval(&w);
    assert_near(r.follower_growth, 0, 0);
}

static void test_ratios(void **state) {
    creator_window w = base();

    /* 120 of the 600 on sponsored content: 0.2; 386 / 193 = 2 */
    w.e_sponsored = 120;
    w.unique_engagers = 193;
    detect_result r = eval(&w);
    assert_near(r.sponsored_share, 0.2, 1e-15);
    assert_near(r.repeat_ratio, 2, 1e-15);

    /* no uniques, no engagement: both 0, no division */
    w.unique_engagers = 0;
    w.e_recent = 0;
    r = eval(&w);
    assert_near(r.repeat_ratio, 0, 0);
    assert_near(r.sponsored_share, 0, 0);
    assert_near(r.velocity, 0, 0);

    /* mu = 0 (no history, no followers): velocity 0, z = E / 1 */
    w.followers = 0;
    w.e_hist = 0;
    w.e_recent = 7;
    r = eval(&w);
    assert_near(r.mu, 0, 0);
    assert_near(r.velocity, 0, 0);
    assert_near(r.z, 7, 1e-15);
    assert_near(r.rate, 0, 0);
    assert_true(r.board_drop);
}

static void test_board(void **state) {
    /* mu = 100 (as in test_min_velocity): velocity 1.49 drops, 1.5 stays */
    creator_window w = base();

    w.followers = 5000;
    w.e_hist = 650;
    w.e_recent = 149;
    detect_result r = eval(&w);
    assert_true(r.board_drop);
    assert_false(r.on_board);

    w.e_recent = 150;
    r = eval(&w);
    assert_false(r.board_drop);

    w.e_recent = 600; /* velocity 6: rising, on the board */
    r = eval(&w);
    assert_true(r.on_board);
    assert_false(r.board_drop);
}

/* --- reasons ------------------------------------------------------------- */

static void test_reasons_rising(void **state) {
    char out[8][DETECT_REASON_LEN];
    creator_window w = base();

    /* worked example with 150 uniques over 200 and 120 sponsored:
     * velocity 9.41 -> "9.4x", z 66.64 -> "66.6", rate 0.2 -> "20.0%",
     * repeat 386 / 150 = 2.57 -> "2.6", sponsored 0.2 -> "20%" */
    w.interactions_with_actor = 200;
    w.unique_engagers = 150;
    w.e_sponsored = 120;
    detect_result r = eval(&w);
    assert_true(r.fired[ALERT_RISING]);

    size_t n = detect_reasons(&P, &w, &r, ALERT_RISING, out, 8);
    assert_int_equal(n, 4);
    assert_string_equal(out[0], "engagement 9.4x its 7-day baseline (z=66.6)");
    assert_string_equal(out[1], "24h engagement rate 20.0% of 3,000 followers");
    assert_string_equal(out[2], "150 unique engagers (repeat ratio 2.6)");
    assert_string_equal(out[3], "20% of engagement on sponsored content");

    /* bounded by max */
    assert_int_equal(detect_reasons(&P, &w, &r, ALERT_RISING, out, 1), 1);
    assert_int_equal(detect_reasons(&P, &w, &r, ALERT_RISING, out, 0), 0);

    /* without uniques or sponsored engagement: still two */
    w.interactions_with_actor = 0;
    w.unique_engagers = -1;
    w.e_sponsored = 0;
    r = eval(&w);
    n = detect_reasons(&P, &w, &r, ALERT_RISING, out, 8);
    assert_int_equal(n, 2);
}

static void test_reasons_suspicious(void **state) {
    char out[4][DETECT_REASON_LEN];
    creator_window w = base();

    /* 540 with an actor from 9 accounts: 9 / 540 = 1.67% -> "1.7%" */
    w.counts[EV_LIKE] = 500; /* 586 interactions */
    w.interactions_with_actor = 540;
    w.unique_engagers = 9;
    detect_result r = eval(&w);
    assert_true(r.fired[ALERT_SUSPICIOUS]);
    size_t n = detect_reasons(&P, &w, &r, ALERT_SUSPICIOUS, out, 4);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "540 interactions from only 9 accounts (1.7% unique)");

    /* thousands in both numbers: 1,200 from 30 -> 2.5% */
    w.counts[EV_LIKE] = 1200;
    w.interactions_with_actor = 1200;
    w.unique_engagers = 30;
    r = eval(&w);
    n = detect_reasons(&P, &w, &r, ALERT_SUSPICIOUS, out, 4);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "1,200 interactions from only 30 accounts (2.5% unique)");

    /* followers 2,400 -> 3,000 (+25%) with E = 70: velocity 70 / 63.75
     * = 1.098 -> "1.1x" */
    w = base();
    w.early_followers = 2400;
    w.early_followers_ts = NOW - 12 * HOUR_MS;
    w.e_recent = 70;
    r = eval(&w);
    assert_true(r.fired[ALERT_SUSPICIOUS]);
    n = detect_reasons(&P, &w, &r, ALERT_SUSPICIOUS, out, 4);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "followers +25% in 24h while engagement is 1.1x baseline");

    /* asked for a kind that did not fire: still one true sentence */
    w = base();
    r = eval(&w);
    n = detect_reasons(&P, &w, &r, ALERT_SUSPICIOUS, out, 4);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "engagement 9.4x its 7-day baseline (z=66.6)");
}

static void test_reasons_graduated(void **state) {
    char out[2][DETECT_REASON_LEN];
    creator_window w = base();

    w.followers = 10240;
    w.below_ts = NOW - HOUR_MS;
    detect_result r = eval(&w);
    assert_true(r.fired[ALERT_GRADUATED]);
    size_t n = detect_reasons(&P, &w, &r, ALERT_GRADUATED, out, 2);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "crossed 10,000 followers (now 10,240)");

    /* big numbers: 1,234,567 over a bound of 1,000,000 */
    detect_params p = P;
    p.micro_max = 1000000;
    w.followers = 1234567;
    detect_eval(&p, &w, &r);
    n = detect_reasons(&p, &w, &r, ALERT_GRADUATED, out, 2);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "crossed 1,000,000 followers (now 1,234,567)");
}

static void test_reasons_bounded(void **state) {
    /* absurd numbers are cut at DETECT_REASON_LEN, never overflow */
    char out[2][DETECT_REASON_LEN];
    creator_window w = base();

    w.e_recent = 1e300;
    w.followers = 3000;
    detect_result r = eval(&w);
    size_t n = detect_reasons(&P, &w, &r, ALERT_RISING, out, 2);
    assert_int_equal(n, 2);
    assert_true(strlen(out[0]) < DETECT_REASON_LEN);
    assert_true(strlen(out[1]) < DETECT_REASON_LEN);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_short_history),
        cmocka_unit_test(test_tiers),
        cmocka_unit_test(test_tier_bounds_rising),
        cmocka_unit_test(test_unknown_never_rising),
        cmocka_unit_test(test_min_engagement),
        cmocka_unit_test(test_min_velocity),
        cmocka_unit_test(test_min_z),
        cmocka_unit_test(test_min_rate),
        cmocka_unit_test(test_min_history),
        cmocka_unit_test(test_audience_min_interactions),
        cmocka_unit_test(test_audience_unique_ratio),
        cmocka_unit_test(test_suspicious_by_audience),
        cmocka_unit_test(test_needs_uniques),
        cmocka_unit_test(test_suspicious_follower_jump),
        cmocka_unit_test(test_rising_excludes_suspicious),
        cmocka_unit_test(test_graduated),
        cmocka_unit_test(test_follower_growth),
        cmocka_unit_test(test_ratios),
        cmocka_unit_test(test_board),
        cmocka_unit_test(test_reasons_rising),
        cmocka_unit_test(test_reasons_suspicious),
        cmocka_unit_test(test_reasons_graduated),
        cmocka_unit_test(test_reasons_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
