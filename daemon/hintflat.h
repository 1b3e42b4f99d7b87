/* hintflat.h -- a reader of ARGV[7] of nousu_commit_runs: the hinted runs
 * laid out flat (daemon/wire.c, hint.h; the Hints section of nousu.lua), for
 * the nousu Redis module, which takes the hints in C (NOUSU.HINTS).
 *
 * ARGV[7] is one msgpack array whose elements are, hint after hint:
 *   creator, want, offset, length, old state, new state, bucket, new bucket?,
 *   niche or false, now, n, then the n actors.
 * A hint's place p (the number a hinted run carries in ARGV[1]) is the
 * 1-based index of its creator in the array.
 *
 * Strict: the daemon writes ARGV[7], so anything else in it (another type,
 * a length past the buffer, a trailing byte) makes the whole of it
 * malformed. Strings may be msgpack str or bin. Pure: no allocation, no
 * I/O; the strings point into the caller's buffer. */
#ifndef NOUSU_HINTFLAT_H
#define NOUSU_HINTFLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hintflat_str {
    const char *ptr; /* NULL for a niche of false */
    size_t len;
} hintflat_str;

typedef struct hintflat_hint {
    uint32_t p;
    hintflat_str creator, old_state, new_state, bucket, niche;
    bool new_bucket;
    bool now_is_int; /* false: now is a float, in now_f */
    int64_t now;
    double now_f;
    uint32_t n_actors;
    /* the actors, read with hintflat_actor() */
    const unsigned char *actor_at, *end;
} hintflat_hint;

typedef struct hintflat {
    const unsigned char *at, *end;
    uint32_t count, read; /* objects in the array, objects read so far */
} hintflat;

/* Start reading buf: 0, or -EBADMSG when it is not a msgpack array header
 * whose count the bytes could hold. */
int hintflat_open(hintflat *f, const void *buf, size_t len);

/* The next hint into *ret_hint: 1, 0 at the end of the array (and of the
 * buffer), -EBADMSG when the rest is malformed (*ret_hint is then
 * undefined). Checks every object of the hint, actors included. */
int hintflat_next(hintflat *f, hintflat_hint *ret_hint);

/* The next actor of h into *ret_actor; false after the last. Only for a hint
 * that hintflat_next returned (its actors were checked then). */
bool hintflat_actor(hintflat_hint *h, hintflat_str *ret_actor);

/* The places in a msgpack array of unsigned integers (ARGV[4] of NOUSU.HINTS,
 * the hints the module must leave alone) into ret_places (cap of them):
 * their number, or -EBADMSG (not such an array, or more than cap). An empty
 * buffer is an empty array. */
long hintflat_places(const void *buf, size_t len, uint32_t *ret_places, size_t cap);

#endif
