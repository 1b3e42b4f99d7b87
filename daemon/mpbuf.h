/* mpbuf.h -- a msgpack_sbuffer whose first failed write sticks.
 *
 * msgpack-c's packers return a failed write (realloc under memory pressure)
 * from each pack call, and a commit is packed in hundreds of thousands of
 * them; a buffer that failed to grow half-way would otherwise go out
 * truncated -- for a hinted state, into Redis as the creator's state.
 * Packed through mpbuf_packer_init, every write after a failure fails too,
 * so one check of `failed` once packing is done covers them all. */
#ifndef NOUSU_MPBUF_H
#define NOUSU_MPBUF_H

#include <stdbool.h>
#include <stddef.h>

#include <msgpack.h>

typedef struct mpbuf {
    msgpack_sbuffer sb;
    bool failed;
} mpbuf;

void mpbuf_init(mpbuf *b);
void mpbuf_destroy(mpbuf *b);
/* Empty it, and forget a failure: the next pack starts over. */
void mpbuf_clear(mpbuf *b);
/* A msgpack_packer_write for an mpbuf; 0, or -1 once any write failed. */
int mpbuf_write(void *data, const char *buf, size_t len);
void mpbuf_packer_init(msgpack_packer *pk, mpbuf *b);

#endif
