/* plan.h -- a batch's accepted events grouped into per-creator runs, the
 * shape in which store.c commits them (FCALL nousu_commit_runs).
 *
 * A run is a creator's consecutive events (in arrival order) that fall in
 * one event-time bucket and, after its first event, carry no follower count.
 * The Function applies the rest of a run (every event but the first) as one
 * aggregate whenever no rule can start to hold inside it, which is what
 * takes the per-event work out of Redis; otherwise it walks the events one
 * by one, exactly as before. Pure: no I/O, no logging. */
#ifndef NOUSU_PLAN_H
#define NOUSU_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "decimal.h"

typedef struct plan_event {
    const event *ev;
    uint32_t unit; /* index of its batch unit */
    uint32_t item; /* index within that unit */
    uint64_t idh;  /* XXH3 of the event id; meaningful when ev->id.len */
    int64_t bucket;
    /* idh as the Function gets it, a signed decimal (wire.c): made once
     * here, as the commit sends every id twice. */
    uint32_t id_dec_len;
    char id_dec[DECIMAL_MAX];
} plan_event;

typedef struct plan_run {
    size_t first; /* events order[first .. first + n) */
    size_t n;     /* >= 1 */
} plan_run;

typedef struct plan {
    plan_event *events; /* accepted events in batch order */
    size_t n_events;
    uint32_t *order; /* indexes into events: creator by creator, run by run */
    plan_run *runs;
    size_t n_runs;
    /* An event id or a request id appears twice in the batch: which copy
     * counts depends on the global order, so the batch must be committed
     * event by event (nousu_commit). */
    bool repeats;
} plan;

/* Event k (0-based) of run r. */
static inline const plan_event *plan_run_event(const plan *p, const plan_run *r, size_t k) {
    return &p->events[p->order[r->first + k]];
}

/* Fill p from b (bucket_ms > 0). Events point into b, which must outlive p.
 * Returns 0 or -ENOMEM (p is then empty). */
int plan_build(plan *p, const batch *b, int64_t bucket_ms);

/* Free what plan_build allocated; p may be zeroed or half-built. */
void plan_free(plan *p);

/* The 64-bit hash an event id is remembered by (XXH3). */
uint64_t plan_id_hash(const strref *id);

/* pe->idh and pe->id_dec of pe->ev's id (0 and "" without one). */
void plan_event_id(plan_event *pe);

#endif
