/* committer.h -- the commit round trip on a thread of its own, so the loop
 * reads and decodes the next batch while Redis works on this one.
 *
 * One commit at a time: the loop hands over a batch, polls committer_fd(),
 * and takes the outcome; the batch and its result belong to the committer
 * until then. The committer has its own Redis connection (store), which it
 * opens, and reopens after a failure, at the start of a commit: a Redis
 * outage costs the loop nothing but the wait. */
#ifndef NOUSU_COMMITTER_H
#define NOUSU_COMMITTER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "store.h"

typedef struct committer committer;

/* Takes ownership of st (connected or not). NULL on failure. */
committer *committer_new(store *st);
/* Waits for a commit under way, then stops the thread. */
void committer_destroy(committer **cp);

/* Readable (POLLIN) when a commit has finished. */
int committer_fd(const committer *c);
bool committer_busy(const committer *c);

/* Start committing b with p under commit_id (copied); the outcome goes to
 * *res. b, p and res must stay untouched until committer_finish. */
void committer_start(committer *c, const batch *b, const commit_params *p, const char *commit_id,
                     commit_result *res);

/* If the commit has finished: true, with its store_commit result in *rc and
 * its duration in *took_us. With wait, blocks until it has. */
bool committer_finish(committer *c, bool wait, int *rc, int64_t *took_us);

#endif
