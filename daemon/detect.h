/* detect.h -- the SPEC §5 rules: tiers, baseline, rising / suspicious /
 * graduated. Pure arithmetic over one creator's windowed sums, testable with
 * hand calculations. The store fetches the sums; alert.c turns a verdict
 * into a message. */
#ifndef NOUSU_DETECT_H
#define NOUSU_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define ALERT_KINDS(X)                                                        \
    X(RISING, "rising")                                                       \
    X(SUSPICIOUS, "suspicious")                                               \
    X(GRADUATED, "graduated")

typedef enum alert_kind {
#define X(id, name) ALERT_##id,
    ALERT_KINDS(X)
#undef X
    ALERT__COUNT
} alert_kind;

#define TIERS(X)                                                              \
    X(UNKNOWN, "unknown")                                                     \
    X(NANO, "nano")                                                           \
    X(MICRO, "micro")                                                         \
    X(MID, "mid")                                                             \
    X(MACRO, "macro")

typedef enum tier {
#define X(id, name) TIER_##id,
    TIERS(X)
#undef X
    TIER__COUNT
} tier;

const char *alert_kind_name(alert_kind k);
const char *tier_name(tier t);

typedef struct detect_params {
    int64_t micro_min, micro_max, mid_max; /* 1,000 10,000 100,000 */
    double prior_rate;                     /* 0.03 */
    double baseline_days;                  /* 7: the span of e_hist, for texts */
    int64_t min_history_ms;                /* 3 days */
    double rising_min_engagement;          /* 50 */
    double rising_min_velocity;            /* 3 */
    double rising_min_z;                   /* 4 */
    double rising_min_rate;                /* 0.03 */
    int64_t audience_min_interactions;     /* 30 */
    double audience_min_unique_ratio;      /* 0.3 */
    double suspicious_follower_jump;       /* 0.2 */
    double suspicious_max_velocity;        /* 1.5 */
    double board_min_velocity;             /* 1.5 */
} detect_params;

/* One creator's state as the store returns it, all on event time. */
typedef struct creator_window {
    int64_t now_ms;        /* newest ts seen */
    int64_t first_ms;      /* oldest ts seen */
    int64_t followers;     /* latest snapshot, -1 unknown */
    int64_t followers_ts;  /* its ts, 0 when unknown */
    int64_t early_followers;    /* earliest snapshot in the recent window, -1 none */
    int64_t early_followers_ts; /* its ts */
    int64_t below_ts;   /* newest ts of a snapshot <= micro_max, 0 none */
    int64_t grad_base;  /* below_ts a graduated alert was last based on, 0 none */
    double e_recent;    /* E_24h: weighted engagement, recent window */
    double e_hist;      /* weighted engagement over the baseline span */
    double days_hist;   /* window_days_hist() */
    int64_t counts[EV__COUNT]; /* recent window, n included */
    int64_t interactions_with_actor; /* recent window */
    double e_sponsored;        /* recent window */
    int64_t unique_engagers;   /* recent window; -1: not fetched */
} creator_window;

typedef struct detect_result {
    tier tier;
    double mu;        /* expected E over the window */
    double velocity;  /* E_24h / mu (0 when mu is 0) */
    double z;         /* (E_24h - mu) / sqrt(mu + 1) */
    double rate;      /* E_24h / followers (0 when unknown) */
    double follower_growth;
    double repeat_ratio;    /* interactions / unique engagers (0 when none) */
    double sponsored_share; /* e_sponsored / E_24h (0 when E is 0) */
    int64_t interactions;
    int64_t net_follows;
    bool eligible;     /* micro tier and seen long enough */
    bool volume;       /* the volume rules of rising hold */
    bool needs_uniques;/* the audience rule decides, and unique_engagers is -1 */
    bool fired[ALERT__COUNT];
    bool on_board;     /* rising now: belongs on the leaderboard */
    bool board_drop;   /* velocity under board_min_velocity: leaves the board */
} detect_result;

/* Evaluate every rule. When needs_uniques comes back true, fetch
 * unique_engagers and call again; rising/suspicious are then decided. */
void detect_eval(const detect_params *p, const creator_window *w, detect_result *ret);

/* Human-readable reasons for an alert of kind k (SPEC §6), e.g.
 * "engagement 7.2x its 7-day baseline (z=11.4)". Writes at most max strings
 * of at most DETECT_REASON_LEN bytes each; returns how many. */
#define DETECT_REASON_LEN 128
size_t detect_reasons(const detect_params *p, const creator_window *w, const detect_result *r,
                      alert_kind k, char out[][DETECT_REASON_LEN], size_t max);

#endif
