/* mpbuf.h -- a msgpack buffer whose first failed write sticks, with its own
 * inline packers.
 *
 * A commit is packed in hundreds of thousands of writes; a buffer that
 * failed to grow half-way (realloc under memory pressure) would otherwise go
 * out truncated -- for a hinted state, into Redis as the creator's state.
 * Every write after a failure fails too, so one check of `failed` once
 * packing is done covers them all.
 *
 * The packers (mpbuf_int ... mpbuf_str) write the same bytes as msgpack-c's
 * msgpack_pack_* of the same name (the smallest encoding of each int, float
 * 64 for doubles), but straight into the buffer: msgpack-c's packer calls a
 * write function through a pointer for each item, 1 to 9 bytes at a time,
 * which was a quarter of the daemon's instructions (callgrind, session 23). */
#ifndef NOUSU_MPBUF_H
#define NOUSU_MPBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

typedef struct mpbuf {
    msgpack_sbuffer sb;
    bool failed;
} mpbuf;

void mpbuf_init(mpbuf *b);
void mpbuf_destroy(mpbuf *b);
/* Empty it, and forget a failure: the next pack starts over. */
void mpbuf_clear(mpbuf *b);
/* len bytes as they are; 0, or -1 once any write failed. Also a
 * msgpack_packer_write: msgpack_packer_init(&pk, b, mpbuf_write). */
int mpbuf_write(void *data, const char *buf, size_t len);

/* Grows the buffer for n more bytes: where they go, or NULL (and failed
 * set) when it cannot. Out of line: the packers call it only when full. */
unsigned char *mpbuf_grow(mpbuf *b, size_t n);

/* Where n (> 0) more bytes go, or NULL once a write failed. */
static inline unsigned char *mpbuf_room(mpbuf *b, size_t n) {
    if (!b->failed && b->sb.alloc - b->sb.size >= n)
        return (unsigned char *)b->sb.data + b->sb.size;
    return mpbuf_grow(b, n);
}

static inline void mpbuf_be16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v >> 8), p[1] = (unsigned char)v;
}

static inline void mpbuf_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static inline void mpbuf_be64(unsigned char *p, uint64_t v) {
    mpbuf_be32(p, (uint32_t)(v >> 32));
    mpbuf_be32(p + 4, (uint32_t)v);
}

/* One type byte. */
static inline void mpbuf_byte(mpbuf *b, unsigned char c) {
    unsigned char *p = mpbuf_room(b, 1);
    if (p)
        p[0] = c, b->sb.size++;
}

static inline void mpbuf_nil(mpbuf *b) { mpbuf_byte(b, 0xc0); }
static inline void mpbuf_bool(mpbuf *b, bool v) { mpbuf_byte(b, v ? 0xc3 : 0xc2); }

static inline void mpbuf_uint(mpbuf *b, uint64_t v) {
    unsigned char *p = mpbuf_room(b, 9);
    if (!p)
        return;
    if (v < 0x80) {
        p[0] = (unsigned char)v, b->sb.size += 1;
    } else if (v <= UINT8_MAX) {
        p[0] = 0xcc, p[1] = (unsigned char)v, b->sb.size += 2;
    } else if (v <= UINT16_MAX) {
        p[0] = 0xcd, mpbuf_be16(p + 1, (uint16_t)v), b->sb.size += 3;
    } else if (v <= UINT32_MAX) {
        p[0] = 0xce, mpbuf_be32(p + 1, (uint32_t)v), b->sb.size += 5;
    } else {
        p[0] = 0xcf, mpbuf_be64(p + 1, v), b->sb.size += 9;
    }
}

static inline void mpbuf_int(mpbuf *b, int64_t v) {
    if (v >= 0) {
        mpbuf_uint(b, (uint64_t)v);
        return;
    }
    unsigned char *p = mpbuf_room(b, 9);
    if (!p)
        return;
    if (v >= -32) {
        p[0] = (unsigned char)v, b->sb.size += 1; /* negative fixint */
    } else if (v >= INT8_MIN) {
        p[0] = 0xd0, p[1] = (unsigned char)v, b->sb.size += 2;
    } else if (v >= INT16_MIN) {
        p[0] = 0xd1, mpbuf_be16(p + 1, (uint16_t)v), b->sb.size += 3;
    } else if (v >= INT32_MIN) {
        p[0] = 0xd2, mpbuf_be32(p + 1, (uint32_t)v), b->sb.size += 5;
    } else {
        p[0] = 0xd3, mpbuf_be64(p + 1, (uint64_t)v), b->sb.size += 9;
    }
}

static inline void mpbuf_double(mpbuf *b, double v) {
    unsigned char *p = mpbuf_room(b, 9);
    uint64_t bits;
    if (!p)
        return;
    memcpy(&bits, &v, sizeof bits);
    p[0] = 0xcb, mpbuf_be64(p + 1, bits), b->sb.size += 9;
}

/* An array, map or str header: the fix form's type byte or'ed with n when
 * n < fix_max, else the 16- or 32-bit form (t16, t16 + 1); str8 (0xd9) for
 * strs of 32..255 bytes. */
static inline void mpbuf_head(mpbuf *b, unsigned char fix, size_t fix_max,
                              unsigned char t16, size_t n) {
    unsigned char *p = mpbuf_room(b, 5);
    if (!p)
        return;
    if (n < fix_max) {
        p[0] = (unsigned char)(fix | n), b->sb.size += 1;
    } else if (fix == 0xa0 && n <= UINT8_MAX) {
        p[0] = 0xd9, p[1] = (unsigned char)n, b->sb.size += 2;
    } else if (n <= UINT16_MAX) {
        p[0] = t16, mpbuf_be16(p + 1, (uint16_t)n), b->sb.size += 3;
    } else {
        p[0] = (unsigned char)(t16 + 1), mpbuf_be32(p + 1, (uint32_t)n), b->sb.size += 5;
    }
}

static inline void mpbuf_array(mpbuf *b, size_t n) { mpbuf_head(b, 0x90, 16, 0xdc, n); }
static inline void mpbuf_map(mpbuf *b, size_t n) { mpbuf_head(b, 0x80, 16, 0xde, n); }

/* A str: header and bytes. */
static inline void mpbuf_str(mpbuf *b, const char *s, size_t len) {
    mpbuf_head(b, 0xa0, 32, 0xda, len);
    unsigned char *p = len ? mpbuf_room(b, len) : NULL;
    if (p)
        memcpy(p, s, len), b->sb.size += len;
}

#endif
