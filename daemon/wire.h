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

#include "plan.h"
#include "store.h"

/* ARGV[1] of nousu_commit. */
void wire_pack_events(msgpack_packer *pk, const char *prefix, const batch *b,
                      const commit_params *p);

/* A creator's state bytes as read from Redis before the commit, for the
 * hint of its run (hint.h); ptr NULL: none. */
typedef struct wire_state {
    const char *ptr;
    size_t len;
} wire_state;

/* ARGV[1] of nousu_commit_runs; detail and scratch are scratch space (the
 * per-event part of a run, a hinted state). states: one per run, or NULL
 * for no hints. Returns the number of runs hinted, or -ENOMEM. */
int wire_pack_runs(msgpack_packer *pk, msgpack_sbuffer *detail, msgpack_sbuffer *scratch,
                   const char *prefix, const batch *b, const plan *pl, const wire_state *states,
                   const commit_params *p);

/* ARGV[3] (into ids: [[id...], [place...]], sorted by place) and ARGV[4]
 * (into owners: [run...], the run of each id) of nousu_commit_runs.
 * Returns 0 or -ENOMEM. */
int wire_pack_ids(msgpack_packer *ids, msgpack_packer *owners, const plan *pl);

void wire_pack_str(msgpack_packer *pk, const char *s, size_t len);

#endif
