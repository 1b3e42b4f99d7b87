/* mpread.h -- msgpack bytes read in place: one header at a time, every
 * length checked against the bytes left, no allocation.
 *
 * decode.c reads event frames with it, hint.c a creator's state, so that
 * neither costs a msgpack_unpack (a zone and an object tree per object) and
 * a hint's unchanged fields are copied as bytes. The common headers parse
 * inline: the decoder reads every object of every frame. */
#ifndef NOUSU_MPREAD_H
#define NOUSU_MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One msgpack header: its own size, and either a payload size (scalars,
 * str, bin, ext) or a count of child objects (arrays: n, maps: 2n). */
typedef struct mp_head {
    uint64_t body;
    uint64_t items;
    uint32_t count; /* array elements or map pairs, as declared */
    uint8_t hdr;
    bool container;
    bool array;
} mp_head;

static inline uint64_t mp_be16(const uint8_t *p) { return (uint64_t)p[0] << 8 | p[1]; }

static inline uint64_t mp_be32(const uint8_t *p) {
    return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
}

static inline void mp_head_scalar(mp_head *h, uint8_t hdr, uint64_t body) {
    h->hdr = hdr;
    h->body = body;
    h->container = false;
}

static inline void mp_head_container(mp_head *h, uint8_t hdr, uint64_t n, bool array) {
    h->hdr = hdr;
    h->count = (uint32_t)n;
    h->items = array ? n : 2 * n;
    h->container = true;
    h->array = array;
}

/* The big-endian length or count of lenbytes (1, 2 or 4) bytes after a
 * header's type byte. */
static inline uint64_t mp_var_len(const uint8_t *p, unsigned lenbytes) {
    return lenbytes == 1 ? p[1] : lenbytes == 2 ? mp_be16(p + 1) : mp_be32(p + 1);
}

/* Every other header byte (mp_head_parse's out-of-line part, mpread.c). */
int mp_head_parse_long(const uint8_t *p, size_t left, mp_head *h);

/* Parses the header at p (left > 0 bytes available). Only reads bytes of the
 * header itself, after checking they are there. Returns 0, or -1 for a byte
 * that is no msgpack header or a header cut short. The headers whose type
 * byte is all of them (fixints, nil, bools, fixmaps, fixarrays, fixstrs:
 * most of an event) are parsed inline, the rest out of line, so that this
 * stays small enough to inline into the readers. */
static inline int mp_head_parse(const uint8_t *p, size_t left, mp_head *h) {
    uint8_t b = p[0];
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        mp_head_scalar(h, 1, 0); /* fixint, nil, bool */
        return 0;
    }
    if (b <= 0x8f) {
        mp_head_container(h, 1, b & 0x0f, false);
        return 0;
    }
    if (b <= 0x9f) {
        mp_head_container(h, 1, b & 0x0f, true);
        return 0;
    }
    if (b <= 0xbf) {
        mp_head_scalar(h, 1, b & 0x1f); /* fixstr */
        return 0;
    }
    return mp_head_parse_long(p, left, h);
}

/* A cursor over len bytes at p. */
typedef struct mpread {
    const uint8_t *p;
    size_t len, pos;
} mpread;

static inline void mpread_init(mpread *r, const void *p, size_t len) {
    r->p = p, r->len = len, r->pos = 0;
}

/* The header at the cursor, which moves past it (only the header). -1 when
 * the bytes end or hold no header; a container's count and a scalar's body
 * are also checked against the bytes left. Inline, as are mpread_str: the
 * event decoder reads every key and value of every event with them. */
static inline int mpread_head(mpread *r, mp_head *h) {
    if (r->pos >= r->len || mp_head_parse(r->p + r->pos, r->len - r->pos, h) < 0)
        return -1;
    size_t left = r->len - r->pos - h->hdr;
    /* Every child takes at least one byte: no count may exceed what is left. */
    if (h->container ? h->items > left : h->body > left)
        return -1;
    r->pos += h->hdr;
    return 0;
}

/* Containers nest at most this deep: one at depth MPREAD_MAX_DEPTH or
 * deeper (the outermost object is at 0) is refused, even empty. The limit of
 * a whole event frame (decode.c) and of a creator's state (hint.c):
 * msgpack-c's unpacker stops at 32, Lua's cmsgpack at 16, so what hint.c
 * copies stays readable by both. */
#define MPREAD_MAX_DEPTH 8

/* Moves past one whole object that sits at nesting depth `depth` (inside
 * that many containers): -1, cursor unmoved, when it is cut short, malformed,
 * or holds a container at MPREAD_MAX_DEPTH or deeper. */
int mpread_skip_at(mpread *r, unsigned depth);

/* The same for an object on its own (depth 0). */
static inline int mpread_skip(mpread *r) { return mpread_skip_at(r, 0); }

/* A number (any int or float) as a double: false, cursor unmoved, for any
 * other object. */
bool mpread_num(mpread *r, double *ret);

/* A str object: false, cursor unmoved, for any other object. */
static inline bool mpread_str(mpread *r, const char **ret, size_t *len) {
    if (r->pos >= r->len)
        return false;
    uint8_t b = r->p[r->pos];
    size_t at = r->pos + 1, n;
    if (b >= 0xa0 && b <= 0xbf) { /* fixstr, most keys and short values */
        n = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
        mpread big = *r;
        mp_head h;
        if (mpread_head(&big, &h) < 0)
            return false;
        at = big.pos, n = (size_t)h.body;
    } else {
        return false;
    }
    if (n > r->len - at)
        return false;
    *ret = (const char *)r->p + at, *len = n;
    r->pos = at + n;
    return true;
}

#endif
