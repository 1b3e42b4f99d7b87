/* ingest.h -- the two ingest endpoints (SPEC §2, §4): PULL for
 * fire-and-forget frames, ROUTER for acknowledged requests.
 *
 * Backpressure is by not reading: the loop takes at most one iteration's
 * worth of events, and nothing more until that batch is committed, so a slow
 * or absent Redis fills the sockets' receive queues and ZeroMQ's high-water
 * marks push back on producers. Messages stay open until the batch is
 * released, because decoded events point into their bytes; they are held by
 * the batch, so the loop can fill one batch while another is committed. */
#ifndef NOUSU_INGEST_H
#define NOUSU_INGEST_H

#include <stdint.h>

#include "batch.h"
#include "decode.h"
#include "security.h"
#include "store.h"

typedef struct ingest ingest;

typedef struct ingest_opts {
    const char *pull_endpoint; /* "" or NULL: disabled */
    const char *ack_endpoint;  /* "" or NULL: disabled */
    int rcvhwm;
    int64_t max_msg_size; /* ZMQ_MAXMSGSIZE: larger messages disconnect the peer */
    size_t max_batch_events;
    const security *sec; /* CURVE, or off */
} ingest_opts;

/* Creates and binds the sockets. NULL on failure (reason logged). */
ingest *ingest_new(void *zctx, const ingest_opts *o);
void ingest_destroy(ingest **in);

/* Sockets for zmq_poll; NULL when disabled. */
void *ingest_pull_socket(const ingest *in);
void *ingest_ack_socket(const ingest *in);

/* Read without blocking from both sockets, alternating, until they are empty
 * or b holds at least max_events items. Decodes each frame into b, after
 * what b already holds. Returns
 * the number of frames read, or -errno. Envelopes that are not
 * [request_id, payload] are counted in *ret_bad_envelopes and dead-lettered. */
int ingest_read(ingest *in, decoder *d, store *st, batch *b, size_t max_events, int64_t now_ms,
                uint64_t *ret_bad_envelopes);

/* Send the ack of every acknowledged unit of b (after its commit). */
void ingest_ack(ingest *in, const batch *b, const commit_result *r);

/* Close the messages behind b and empty it (capacity kept). */
void ingest_release(batch *b);

void batch_free(batch *b);

#endif
