/* mpread.h -- msgpack bytes read in place: one header at a time, every
 * length checked against the bytes left, no allocation.
 *
 * decode.c's pre-scan walks whole frames with mp_head_parse; hint.c reads a
 * creator's state with the rest, so that a hint costs no msgpack_unpack (a
 * zone and an object tree per state) and its unchanged fields are copied as
 * bytes. Header-only parse is inline: the pre-scan calls it once per object
 * of every frame. */
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

/* Parses the header at p (left > 0 bytes available). Only reads bytes of the
 * header itself, after checking they are there. Returns 0, or -1 for a byte
 * that is no msgpack header or a header cut short. */
static inline int mp_head_parse(const uint8_t *p, size_t left, mp_head *h) {
    uint8_t b = p[0];
    unsigned lb;

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
    switch (b) {
    case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
        lb = 1u << (b - 0xc4);
        if (left < 1 + lb)
            return -1;
        mp_head_scalar(h, (uint8_t)(1 + lb), mp_var_len(p, lb));
        return 0;
    case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
        lb = 1u << (b - 0xd9);
        if (left < 1 + lb)
            return -1;
        mp_head_scalar(h, (uint8_t)(1 + lb), mp_var_len(p, lb));
        return 0;
    case 0xc7: case 0xc8: case 0xc9: { /* ext 8/16/32: length, type, data */
        lb = 1u << (b - 0xc7);
        if (left < 1 + lb)
            return -1;
        uint64_t n = mp_var_len(p, lb);
        /* msgpack-c computes n + 1 in 32 bits: keep it from wrapping. */
        if (n == UINT32_MAX)
            return -1;
        mp_head_scalar(h, (uint8_t)(1 + lb), n + 1);
        return 0;
    }
    case 0xca: mp_head_scalar(h, 1, 4); return 0;  /* float 32 */
    case 0xcb: mp_head_scalar(h, 1, 8); return 0;  /* float 64 */
    case 0xcc: case 0xd0: mp_head_scalar(h, 1, 1); return 0;
    case 0xcd: case 0xd1: mp_head_scalar(h, 1, 2); return 0;
    case 0xce: case 0xd2: mp_head_scalar(h, 1, 4); return 0;
    case 0xcf: case 0xd3: mp_head_scalar(h, 1, 8); return 0;
    case 0xd4: mp_head_scalar(h, 1, 2); return 0;  /* fixext 1: type + data */
    case 0xd5: mp_head_scalar(h, 1, 3); return 0;
    case 0xd6: mp_head_scalar(h, 1, 5); return 0;
    case 0xd7: mp_head_scalar(h, 1, 9); return 0;
    case 0xd8: mp_head_scalar(h, 1, 17); return 0;
    case 0xdc: case 0xdd: /* array 16/32 */
        lb = b == 0xdc ? 2 : 4;
        if (left < 1 + lb)
            return -1;
        mp_head_container(h, (uint8_t)(1 + lb), mp_var_len(p, lb), true);
        return 0;
    case 0xde: case 0xdf: /* map 16/32 */
        lb = b == 0xde ? 2 : 4;
        if (left < 1 + lb)
            return -1;
        mp_head_container(h, (uint8_t)(1 + lb), mp_var_len(p, lb), false);
        return 0;
    default: /* 0xc1: never used */
        return -1;
    }
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

/* Containers one object may nest (decode.c's pre-scan allows as many in a
 * whole frame): msgpack-c's unpacker stops at 32, Lua's cmsgpack at 16, so
 * what hint.c copies stays readable by both. */
#define MPREAD_MAX_DEPTH 8

/* Moves past one whole object: -1, cursor unmoved, when it is cut short,
 * malformed, or nests more than MPREAD_MAX_DEPTH containers. */
int mpread_skip(mpread *r);

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
