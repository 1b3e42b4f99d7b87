/* hint.h -- the state of a creator after a "hot" run, computed by the daemon
 * so that Redis only checks and writes it (the Hints section of nousu.lua).
 *
 * A run is hot when all its events fall in the creator's current bucket,
 * none can be too old or carries a follower count, no rule of SPEC §5 can
 * start to hold during it (the same monotonicity argument as run_fits in
 * nousu.lua), the creator has no other run in the commit and is on no
 * leaderboard. Anything else is left to the Function: a hint is only ever
 * an offer, taken when the state in Redis is still the bytes it started
 * from. Pure: no I/O. */
#ifndef NOUSU_HINT_H
#define NOUSU_HINT_H

#include <stddef.h>

#include "mpbuf.h"
#include "plan.h"
#include "store.h"

/* The objects of a hint before its actors (see hint_pack). */
#define HINT_FIXED 7

/* Pack into out the hint of run, from the creator's state bytes as read from Redis:
 * a sequence of msgpack objects, not an array (wire.c lays hints out flat,
 * one after another, so that Redis makes no table per hint):
 *   old bytes, new bytes, bucket (decimal string), new bucket?, niche or
 *   false, now, the number of actors n, then the n actors to PFADD.
 * Nothing is packed when the run is not hot or the state is not one this
 * code knows. scratch holds the new state while it is built. Returns the
 * number of objects packed (HINT_FIXED + n), 0 (none) or -ENOMEM. */
int hint_pack(mpbuf *out, mpbuf *scratch, const char *state, size_t len,
              const plan *pl, const plan_run *run, const commit_params *p);

#endif
