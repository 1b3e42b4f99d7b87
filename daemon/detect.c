/* detect.c -- the SPEC §5 rules over one creator's windowed sums (detect.h).
 *
 * The store fetches a creator_window after each commit; detect_eval() turns
 * it into a verdict (tier, baseline, velocity, z, which alerts fire), and
 * alert.c turns a fired kind into a message with detect_reasons() as its
 * human-readable part. Cooldowns and the leaderboard live in Redis; this file
 * only decides. Pure arithmetic: no I/O, no logging, no state. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "detect.h"

static const char *const kind_names[ALERT__COUNT] = {
#define X(id, name) name,
    ALERT_KINDS(X)
#undef X
};

static const char *const tier_names[TIER__COUNT] = {
#define X(id, name) name,
    TIERS(X)
#undef X
};

const char *alert_kind_name(alert_kind k) {
    return (unsigned)k < ALERT__COUNT ? kind_names[k] : "?";
}

const char *tier_name(tier t) {
    return (unsigned)t < TIER__COUNT ? tier_names[t] : "?";
}

static tier tier_of(const detect_params *p, int64_t followers) {
    if (followers < 0)
        return TIER_UNKNOWN;
    if (followers < p->micro_min)
        return TIER_NANO;
    if (followers <= p->micro_max)
        return TIER_MICRO;
    if (followers <= p->mid_max)
        return TIER_MID;
    return TIER_MACRO;
}

/* The audience rule judges only when enough interactions carry an actor.
 * With no actor at all there is no audience to judge, even if the threshold
 * is configured to 0 (and the ratio below would divide by zero). */
static bool audience_applies(const detect_params *p, const creator_window *w) {
    return w->interactions_with_actor > 0 &&
           w->interactions_with_actor >= p->audience_min_interactions;
}

static double unique_ratio(const creator_window *w) {
    return (double)w->unique_engagers / (double)w->interactions_with_actor;
}

/* Only meaningful when audience_applies() and unique_engagers >= 0. */
static bool audience_passes(const detect_params *p, const creator_window *w) {
    return unique_ratio(w) >= p->audience_min_unique_ratio;
}

/* An earlier snapshot of the recent window exists, and the latest one is far
 * enough above it while engagement did not follow: followers without
 * engagement. */
static bool follower_jump(const detect_params *p, const creator_window *w, double mu) {
    double jumped = (1.0 + p->suspicious_follower_jump) * (double)w->early_followers;

    return w->early_followers > 0 && w->early_followers_ts < w->followers_ts &&
           (double)w->followers >= jumped && w->e_recent < p->suspicious_max_velocity * mu;
}

static double follower_growth(const creator_window *w, int64_t net_follows) {
    /* An unknown follower count has no growth; neither formula means anything. */
    if (w->followers < 0)
        return 0;
    if (w->early_followers > 0 && w->early_followers_ts < w->followers_ts)
        return (double)(w->followers - w->early_followers) / (double)w->early_followers;
    /* No earlier snapshot in the window (SPEC §6): what the count was before
     * the window's net follows, as the base. */
    int64_t before = w->followers - net_follows;
    if (before > 0)
        return (double)net_follows / (double)before;
    return 0;
}

void detect_eval(const detect_params *p, const creator_window *w, detect_result *ret) {
    detect_result r = {0};
    double followers = w->followers > 0 ? (double)w->followers : 0;

    r.tier = tier_of(p, w->followers);

    /* SPEC §5: a daily rate smoothed toward a prior of prior_rate * followers
     * for one extra day, times the recent window's 1 day. */
    r.mu = (w->e_hist + p->prior_rate * followers) / (w->days_hist + 1.0);
    r.velocity = r.mu > 0 ? w->e_recent / r.mu : 0;
    r.z = r.mu + 1.0 > 0 ? (w->e_recent - r.mu) / sqrt(r.mu + 1.0) : 0;
    r.rate = w->followers > 0 ? w->e_recent / followers : 0;

    r.interactions = w->counts[EV_LIKE] + w->counts[EV_COMMENT] + w->counts[EV_SHARE] +
                     w->counts[EV_SAVE] + w->counts[EV_MENTION];
    r.net_follows = w->counts[EV_FOLLOW] - w->counts[EV_UNFOLLOW];

    r.eligible = r.tier == TIER_MICRO && w->now_ms - w->first_ms >= p->min_history_ms;
    r.volume = r.eligible && w->e_recent >= p->rising_min_engagement &&
               r.velocity >= p->rising_min_velocity && r.z >= p->rising_min_z &&
               r.rate >= p->rising_min_rate;

    bool applies = audience_applies(p, w);
    r.needs_uniques = r.volume && applies && w->unique_engagers < 0;

    if (!r.needs_uniques) {
        bool passes = !applies || audience_passes(p, w);
        bool rising = r.volume && passes;
        bool suspicious = r.eligible && ((r.volume && !passes) || follower_jump(p, w, r.mu));

        r.fired[ALERT_RISING] = rising;
        /* Suspicious is "instead of" rising, never both. */
        r.fired[ALERT_SUSPICIOUS] = suspicious && !rising;
    }
    /* else: rising and suspicious wait for unique_engagers and the second call,
     * so that the two calls cannot disagree about which of them fires. */

    /* below_ts < followers_ts: the snapshot above the bound follows one at or
     * below it; grad_base: that crossing has already been alerted. */
    r.fired[ALERT_GRADUATED] = w->followers > p->micro_max && w->below_ts > 0 &&
                               w->below_ts < w->followers_ts && w->below_ts != w->grad_base;

    r.on_board = r.fired[ALERT_RISING];
    r.board_drop = r.velocity < p->board_min_velocity;

    r.follower_growth = follower_growth(w, r.net_follows);
    r.repeat_ratio =
        w->unique_engagers > 0 ? (double)r.interactions / (double)w->unique_engagers : 0;
    r.sponsored_share = w->e_recent > 0 ? w->e_sponsored / w->e_recent : 0;

    *ret = r;
}

/* v with thousands separators ("10,240") into buf, which holds 32 bytes. */
static const char *fmt_int(char buf[32], int64_t v) {
    char digits[24];
    /* The magnitude as unsigned, so that INT64_MIN has one too. */
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = snprintf(digits, sizeof digits, "%" PRIu64, m);
    size_t o = 0;

    if (v < 0)
        buf[o++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

/* Appends one formatted reason if there is room; returns the new count. */
__attribute__((format(printf, 4, 5))) static size_t
add_reason(char out[][DETECT_REASON_LEN], size_t n, size_t max, const char *fmt, ...) {
    va_list ap;

    if (n >= max)
        return n;
    va_start(ap, fmt);
    vsnprintf(out[n], DETECT_REASON_LEN, fmt, ap);
    va_end(ap);
    return n + 1;
}

static size_t reason_velocity(const detect_params *p, const detect_result *r,
                              char out[][DETECT_REASON_LEN], size_t n, size_t max) {
    return add_reason(out, n, max, "engagement %.1fx its %g-day baseline (z=%.1f)", r->velocity,
                      p->baseline_days, r->z);
}

size_t detect_reasons(const detect_params *p, const creator_window *w, const detect_result *r,
                      alert_kind k, char out[][DETECT_REASON_LEN], size_t max) {
    char a[32], b[32];
    size_t n = 0;

    switch (k) {
    case ALERT_RISING:
        n = reason_velocity(p, r, out, n, max);
        if (w->followers > 0)
            n = add_reason(out, n, max, "24h engagement rate %.1f%% of %s followers",
                           r->rate * 100.0, fmt_int(a, w->followers));
        if (w->unique_engagers >= 0)
            n = add_reason(out, n, max, "%s unique engagers (repeat ratio %.1f)",
                           fmt_int(a, w->unique_engagers), r->repeat_ratio);
        if (r->sponsored_share > 0)
            n = add_reason(out, n, max, "%.0f%% of engagement on sponsored content",
                           r->sponsored_share * 100.0);
        break;

    case ALERT_SUSPICIOUS:
        if (r->volume && audience_applies(p, w) && w->unique_engagers >= 0 &&
            !audience_passes(p, w))
            n = add_reason(out, n, max, "%s interactions from only %s accounts (%.1f%% unique)",
                           fmt_int(a, w->interactions_with_actor),
                           fmt_int(b, w->unique_engagers), unique_ratio(w) * 100.0);
        if (follower_jump(p, w, r->mu))
            n = add_reason(out, n, max,
                           "followers %+.0f%% in 24h while engagement is %.1fx baseline",
                           r->follower_growth * 100.0, r->velocity);
        if (n == 0) /* not fired, or its state changed: still say something true */
            n = reason_velocity(p, r, out, n, max);
        break;

    case ALERT_GRADUATED:
        n = add_reason(out, n, max, "crossed %s followers (now %s)", fmt_int(a, p->micro_max),
                       fmt_int(b, w->followers));
        break;

    default:
        n = reason_velocity(p, r, out, n, max);
        break;
    }
    return n;
}
