/* committer.h -- the commit round trips on a thread of its own, so the loop
 * reads and decodes the next batch while Redis works on this one, and two
 * commits deep, so the committer prepares the next commit while Redis runs
 * the last: Redis need not wait for the daemon between commits.
 *
 * The loop hands over up to COMMITTER_DEPTH batches, polls committer_fd(),
 * and takes the outcomes in the order it handed the batches over. A batch
 * and its result belong to the committer until then. A commit sent while
 * the one before is still unanswered names it: Redis applies it only if that
 * one was applied (predecessor_done in nousu.lua). So when a commit fails,
 * every later one still in the committer fails too, with -ESTALE, and the
 * loop sends them all again, in order.
 *
 * The committer has its own Redis connection (store), which it opens, and
 * reopens after a failure, before sending: a Redis outage costs the loop
 * nothing but the wait. It keeps the states of creators it last saw
 * (statecache.h), from which it computes hints without reading Redis. */
#ifndef NOUSU_COMMITTER_H
#define NOUSU_COMMITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "store.h"

#define COMMITTER_DEPTH 2

typedef struct committer committer;

/* Takes ownership of st (connected or not). cache_bytes: the budget of the
 * state cache (0: none, so no hints). timeout_ms: how long a commit may go
 * without a byte from Redis. NULL on failure. */
committer *committer_new(store *st, size_t cache_bytes, int timeout_ms);
/* Waits for the commits under way, then stops the thread. */
void committer_destroy(committer **cp);

/* Readable (POLLIN) when a commit has finished. */
int committer_fd(const committer *c);
/* Batches handed over and not yet taken back. */
size_t committer_jobs(const committer *c);

/* Commit b with p under commit_id (copied); the outcome goes to *res. b, p
 * and res must stay untouched until committer_finish returns this job.
 * Only when committer_jobs() < COMMITTER_DEPTH. */
void committer_start(committer *c, const batch *b, const commit_params *p, const char *commit_id,
                     bool events_form, commit_result *res);

/* If the oldest job has finished: true, with its outcome in *rc (0, or the
 * -errno of store_commit_recv; -ESTALE: not applied because one before it
 * failed) and its duration in *took_us. With wait, blocks until it has. */
bool committer_finish(committer *c, bool wait, int *rc, int64_t *took_us);

/* Bytes held by the state cache, as of the last finished job. */
size_t committer_cache_bytes(const committer *c);

#endif
