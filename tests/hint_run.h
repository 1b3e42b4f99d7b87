/* hint_run.h -- the run that tests/unit/test_hint.c and tests/fuzz/fuzz_hint.c
 * give hint_pack: three events of one creator in bucket 480000 (hour
 * buckets): type 1 by actor "a" at TS, type 2 by "b" at TS + 5, type 0
 * with no actor at TS + 9; the weight of type t is t. Header-only: each
 * test program includes it once. */
#ifndef NOUSU_TESTS_HINT_RUN_H
#define NOUSU_TESTS_HINT_RUN_H

#include <stdint.h>
#include <string.h>

#include "plan.h"
#include "store.h"

#define HOUR_MS 3600000LL
#define TS (480000 * HOUR_MS + 1000)
#define HINT_RUN_EVENTS 3

static void hint_run_event(decode_item *it, int type, int64_t ts, const char *actor) {
    memset(it, 0, sizeof *it);
    it->ev.creator = (strref){"c1", 2};
    it->ev.type = (event_type)type;
    it->ev.ts = ts;
    it->ev.n = 1;
    it->ev.followers = -1;
    it->ev.sponsored = -1;
    if (actor)
        it->ev.actor = (strref){actor, (uint32_t)strlen(actor)};
    it->ev.raw = (strref){"\x80", 1};
}

static void hint_run_events(decode_item items[HINT_RUN_EVENTS]) {
    hint_run_event(&items[0], 1, TS, "a");
    hint_run_event(&items[1], 2, TS + 5, "b");
    hint_run_event(&items[2], 0, TS + 9, NULL);
}

static commit_params hint_run_params(void) {
    commit_params p = {
        .wall_ms = TS, .bucket_ms = HOUR_MS, .recent = 25, .hist = 168,
        .lateness_ms = 2 * HOUR_MS, .cooldown_ms = 24 * HOUR_MS, .max_checkpoints = 4,
        .det = {.micro_min = 1000, .micro_max = 10000, .prior_rate = 0.03,
                .min_history_ms = 72 * HOUR_MS, .rising_min_engagement = 50,
                .rising_min_velocity = 3, .rising_min_z = 4, .rising_min_rate = 0.03,
                .suspicious_follower_jump = 0.2, .suspicious_max_velocity = 1.5},
    };
    for (int t = 0; t < EV__COUNT; t++)
        p.weight[t] = t;
    return p;
}

#endif
