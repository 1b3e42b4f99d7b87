/* hintflat.c -- see hintflat.h. A hand-written msgpack reader for the few
 * types ARGV[7] holds: the module runs inside redis-server, which should not
 * need libmsgpackc, and these strings are only pointed at, never copied. */
#include <errno.h>
#include <string.h>

#include "hintflat.h"

typedef struct cursor {
    const unsigned char *at, *end;
} cursor;

/* n bytes (big-endian) into *ret; false when fewer are left. */
static bool take(cursor *c, int n, uint64_t *ret) {
    if (c->end - c->at < n)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | c->at[i];
    c->at += n;
    *ret = v;
    return true;
}

/* The bytes of the length that follows a str8/16/32 or bin8/16/32 type
 * byte; 0 for any other type. */
static int str_len_bytes(unsigned char t) {
    switch (t) {
    case 0xd9: case 0xc4: return 1;
    case 0xda: case 0xc5: return 2;
    case 0xdb: case 0xc6: return 4;
    default: return 0;
    }
}

static bool read_str(cursor *c, hintflat_str *ret) {
    if (c->at >= c->end)
        return false;
    unsigned char t = *c->at++;
    uint64_t len;
    int n = str_len_bytes(t);
    if ((t & 0xe0) == 0xa0)
        len = t & 0x1f;
    else if (n == 0 || !take(c, n, &len))
        return false;
    if ((uint64_t)(c->end - c->at) < len)
        return false;
    ret->ptr = (const char *)c->at, ret->len = (size_t)len;
    c->at += len;
    return true;
}

static bool read_bool(cursor *c, bool *ret) {
    if (c->at >= c->end || (*c->at != 0xc2 && *c->at != 0xc3))
        return false;
    *ret = *c->at++ == 0xc3;
    return true;
}

/* Any msgpack integer; *ret_neg when it is below 0 (then *ret is its
 * two's-complement int64). */
static bool read_int(cursor *c, uint64_t *ret, bool *ret_neg) {
    if (c->at >= c->end)
        return false;
    unsigned char t = *c->at++;
    *ret_neg = false;
    if (t <= 0x7f) {
        *ret = t;
        return true;
    }
    if (t >= 0xe0) {
        *ret = (uint64_t)(int64_t)(int8_t)t, *ret_neg = true;
        return true;
    }
    if (t >= 0xcc && t <= 0xcf)
        return take(c, 1 << (t - 0xcc), ret);
    if (t < 0xd0 || t > 0xd3)
        return false;
    int n = 1 << (t - 0xd0);
    uint64_t v;
    if (!take(c, n, &v))
        return false;
    if (n < 8 && v >> (8 * n - 1)) /* sign-extend */
        v |= ~UINT64_C(0) << (8 * n);
    *ret = v, *ret_neg = (int64_t)v < 0;
    return true;
}

static bool read_uint(cursor *c, uint64_t *ret) {
    bool neg;
    return read_int(c, ret, &neg) && !neg;
}

/* now: an integer (signed 64-bit) or a float. */
static bool read_now(cursor *c, hintflat_hint *h) {
    uint64_t v;
    bool neg;
    if (c->at < c->end && (*c->at == 0xca || *c->at == 0xcb)) {
        int n = *c->at++ == 0xca ? 4 : 8;
        if (!take(c, n, &v))
            return false;
        if (n == 4) {
            uint32_t b = (uint32_t)v;
            float f;
            memcpy(&f, &b, sizeof f);
            h->now_f = f;
        } else {
            memcpy(&h->now_f, &v, sizeof h->now_f);
        }
        h->now_is_int = false;
        return true;
    }
    if (!read_int(c, &v, &neg) || (!neg && v > INT64_MAX))
        return false;
    h->now = (int64_t)v, h->now_is_int = true;
    return true;
}

static bool read_niche(cursor *c, hintflat_str *ret) {
    if (c->at < c->end && *c->at == 0xc2) {
        c->at++;
        ret->ptr = NULL, ret->len = 0;
        return true;
    }
    return read_str(c, ret);
}

int hintflat_open(hintflat *f, const void *buf, size_t len) {
    cursor c = {buf, (const unsigned char *)buf + len};
    uint64_t n;
    if (c.at >= c.end)
        return -EBADMSG;
    unsigned char t = *c.at++;
    if ((t & 0xf0) == 0x90)
        n = t & 0x0f;
    else if ((t != 0xdc && t != 0xdd) || !take(&c, t == 0xdc ? 2 : 4, &n))
        return -EBADMSG;
    if (n > (uint64_t)(c.end - c.at)) /* every object is a byte at least */
        return -EBADMSG;
    f->at = c.at, f->end = c.end, f->count = (uint32_t)n, f->read = 0;
    return 0;
}

#define HINT_OBJECTS 11 /* before the actors */

int hintflat_next(hintflat *f, hintflat_hint *h) {
    if (f->read == f->count)
        return f->at == f->end ? 0 : -EBADMSG;
    if (f->count - f->read < HINT_OBJECTS)
        return -EBADMSG;
    cursor c = {f->at, f->end};
    bool want;
    uint64_t off, len, n;
    if (!read_str(&c, &h->creator) || !read_bool(&c, &want) || !read_uint(&c, &off) ||
        !read_uint(&c, &len) || !read_str(&c, &h->old_state) || !read_str(&c, &h->new_state) ||
        !read_str(&c, &h->bucket) || !read_bool(&c, &h->new_bucket) ||
        !read_niche(&c, &h->niche) || !read_now(&c, h) || !read_uint(&c, &n) ||
        n > f->count - f->read - HINT_OBJECTS)
        return -EBADMSG;
    h->actor_at = c.at;
    for (uint64_t i = 0; i < n; i++) {
        hintflat_str a;
        if (!read_str(&c, &a))
            return -EBADMSG;
    }
    h->p = f->read + 1, h->n_actors = (uint32_t)n, h->end = c.at;
    f->read += HINT_OBJECTS + (uint32_t)n;
    f->at = c.at;
    return 1;
}

bool hintflat_actor(hintflat_hint *h, hintflat_str *ret) {
    cursor c = {h->actor_at, h->end};
    if (c.at >= c.end || !read_str(&c, ret))
        return false;
    h->actor_at = c.at;
    return true;
}

long hintflat_places(const void *buf, size_t len, uint32_t *ret_places, size_t cap) {
    if (len == 0)
        return 0;
    hintflat f;
    if (hintflat_open(&f, buf, len) < 0 || f.count > cap)
        return -EBADMSG;
    cursor c = {f.at, f.end};
    for (uint32_t i = 0; i < f.count; i++) {
        uint64_t v;
        if (!read_uint(&c, &v) || v > UINT32_MAX)
            return -EBADMSG;
        ret_places[i] = (uint32_t)v;
    }
    return c.at == c.end ? (long)f.count : -EBADMSG;
}
