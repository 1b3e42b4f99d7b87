/* wire.h -- the msgpack forms in which store.c hands a batch to the Redis
 * Functions of nousu.lua. Two forms of one commit:
 *
 *   nousu_commit       ARGV[1] = [cfg, units with their events]: event by
 *                      event, in batch order (any batch);
 *   nousu_commit_runs  ARGV[1] = [cfg, units, runs], ARGV[3] = the event
 *                      ids by dedup set, ARGV[4] = the run of each of those
 *                      ids: events grouped by creator into runs (plan.h), the
 *                      rest of each run pre-aggregated here so that Redis
 *                      does no per-event work where no rule is in play.
 *
 * The Function's comments give every field. Pure: no I/O. */
#ifndef NOUSU_WIRE_H
#define NOUSU_WIRE_H

#include <msgpack.h>

#include "idfilter.h"
#include "mpbuf.h"
#include "plan.h"
#include "store.h"

/* ARGV[1] of nousu_commit. */
void wire_pack_events(mpbuf *out, const char *prefix, const batch *b,
                      const commit_params *p);

/* What the daemon knows of a run's creator (statecache.h), for its hint
 * (hint.h), and what the hint left. */
typedef struct wire_state {
    const char *ptr; /* the state bytes before the commit; NULL: unknown */
    size_t len;
    bool want;        /* ask for the state after the commit (run[5]) */
    size_t new_off;   /* out: the hinted state after the run, in wb->news */
    size_t new_len;   /* out: 0 when the run was not hinted */
} wire_state;

/* Scratch space of wire_pack_runs, reused from commit to commit. */
typedef struct wire_bufs {
    mpbuf detail;             /* the per-event part of a run */
    mpbuf state;              /* a hinted state, being built */
    mpbuf hint;               /* a run's hint */
    mpbuf hints;              /* out: the hinted runs, flat (ARGV[7]) */
    uint32_t n_hint_objects;  /* in hints so far */
    mpbuf fallbacks;          /* out: hinted runs' events, for when not taken */
    mpbuf news;               /* out: the hinted states, one after another */
} wire_bufs;

void wire_bufs_init(wire_bufs *wb);
void wire_bufs_destroy(wire_bufs *wb);

/* ARGV[1] of nousu_commit_runs, its ARGV[6] into wb->fallbacks and its
 * ARGV[7] into wb->hints. states:
 * one per run, or NULL for no hints; the hinted states go to wb->news
 * (wire_state.new_off). Returns the number of runs hinted, or -ENOMEM. */
int wire_pack_runs(mpbuf *out, wire_bufs *wb, const char *prefix, const batch *b,
                   const plan *pl, wire_state *states, const commit_params *p);

/* ARGV[3] (into ids: [[id...], [place...]], sorted by place, and with a
 * filter [index...], 1-based, of the ids it may hold, for a commit at p's
 * wall clock) and ARGV[4] (into owners: [run...], the run of each id) of
 * nousu_commit_runs. Returns 0 or -ENOMEM. */
int wire_pack_ids(mpbuf *ids, mpbuf *owners, const plan *pl,
                  const idfilter *filter, const commit_params *p);

#endif
