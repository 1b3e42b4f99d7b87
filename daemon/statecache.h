/* statecache.h -- the state bytes of creators, as this daemon last wrote or
 * read them in Redis, so that a commit's hints (hint.h) need no read of
 * Redis before it: the committer prepares commit N+1 from here while Redis
 * still runs commit N.
 *
 * Only an offer, never the truth: a hint is taken when the state in Redis
 * is still the bytes it started from, so an entry made stale by another
 * writer (another daemon, an alert) costs one commit the slow path, whose
 * reply brings the state back.
 *
 * Commits are numbered in the order sent (seq). A commit touches its
 * creators; their bytes are usable once they are the state after the last
 * commit that touched them: after a hinted run, as soon as it is sent (the
 * hint says what Redis will hold); after any other run, once the reply of
 * that commit brings the state. Until then the creator is "blind": the
 * commit after it cannot be hinted from here, and the committer may wait
 * for the reply instead (committer.c).
 *
 * Bounded by bytes, in two generations: entries written or found go to the
 * young one; once it holds half the budget, the old one is dropped and the
 * young one becomes old. A creator seen once per rotation stays. Pure: no
 * I/O, no locking (one thread owns it). */
#ifndef NOUSU_STATECACHE_H
#define NOUSU_STATECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct state_cache state_cache;

/* max_bytes 0: a cache that holds nothing. NULL on ENOMEM. */
state_cache *state_cache_new(size_t max_bytes);
void state_cache_destroy(state_cache **cp);

/* The usable bytes of key, or NULL; *ret_len their length, *ret_blind
 * true when NULL because a commit touched key and its reply is pending. The
 * pointer stays valid until key is put or dropped, or the cache is trimmed
 * or cleared. */
const char *state_cache_get(state_cache *c, const char *key, size_t klen, size_t *ret_len,
                            bool *ret_blind);

/* Commit seq was sent, and touches key. */
void state_cache_touch(state_cache *c, const char *key, size_t klen, uint64_t seq);

/* The state of key after commit seq (a copy is kept). Returns 0 or -ENOMEM
 * (key is then dropped). */
int state_cache_put(state_cache *c, const char *key, size_t klen, const char *bytes, size_t len,
                    uint64_t seq);

void state_cache_drop(state_cache *c, const char *key, size_t klen);
void state_cache_clear(state_cache *c);

/* Rotate the generations if the young one holds half the budget. Separate
 * from put so that pointers from get survive a whole commit's packing. */
void state_cache_trim(state_cache *c);

size_t state_cache_entries(const state_cache *c);
size_t state_cache_bytes(const state_cache *c); /* keys, values and overhead */

#endif
