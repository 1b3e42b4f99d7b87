/* decide.h -- from a commit's results to alerts and leaderboards.
 *
 * The store reports, for one commit, the state of each creator right after
 * every event where a rule may have started to hold (checkpoints) and after
 * the commit; this module runs detect.c on them, fetches unique engagers
 * where a verdict depends on them, plans board updates and alerts (local
 * cooldown check; Redis has the last word), sends them in one round trip
 * (store_post) and publishes what Redis numbered. */
#ifndef NOUSU_DECIDE_H
#define NOUSU_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "detect.h"
#include "stats.h"
#include "store.h"
#include "window.h"

typedef struct decide_ctx {
    const detect_params *dp;
    const window_params *wp;
    int64_t cooldown_ms;
    int64_t window_s; /* the alert's window_s */
    size_t alerts_maxlen;
    store *st;
    alert_pub *pub;
    stats *stats; /* alerts and Redis errors are counted here */
} decide_ctx;

/* Evaluate the rules on one creator's state (days_hist filled in). */
void decide_evaluate(const decide_ctx *d, creator_summary *c, detect_result *ret);

/* Everything after a commit. Failures lose no event: the commit is done,
 * and a missed alert fires on the creator's next event. */
void decide_and_post(const decide_ctx *d, commit_result *res);

#endif
