/* mpcheck.c -- structural pre-scan of untrusted msgpack, and typed
 * accessors over the unpacked tree.
 *
 * msgpack-c's C unpacker reserves whatever a container header claims, so a
 * five-byte message can ask for gigabytes. Every message the library
 * receives (alerts, acks, Redis stream entries) goes through mp_check()
 * first: each declared size is compared with the bytes that follow and the
 * nesting depth is capped, so what msgpack-c then allocates is bounded by a
 * small multiple of the input length. Pure: no I/O, no logging. */
#include <errno.h>
#include <string.h>

#include "internal.h"

typedef struct cursor {
    const uint8_t *p, *end;
} cursor;

static uint64_t read_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static size_t left(const cursor *c) {
    return (size_t)(c->end - c->p);
}

/* Layout of a type byte >= 0xc0: *ret_size_bytes is how many bytes of
 * length follow it (0: none), *ret_fixed the payload bytes besides that
 * length (the ext type byte included), *ret_kind 0 for payload bytes, 1 when
 * the length counts array items, 2 map pairs. */
static int format_layout(uint8_t b, int *ret_size_bytes, uint64_t *ret_fixed, int *ret_kind) {
    static const struct {
        uint8_t lo, hi;
        int size_bytes;
        uint64_t fixed;
        int kind;
    } table[] = {
        {0xc0, 0xc0, 0, 0, 0}, {0xc2, 0xc3, 0, 0, 0},            /* nil, bool */
        {0xc4, 0xc4, 1, 0, 0}, {0xc5, 0xc5, 2, 0, 0}, {0xc6, 0xc6, 4, 0, 0}, /* bin */
        {0xc7, 0xc7, 1, 1, 0}, {0xc8, 0xc8, 2, 1, 0}, {0xc9, 0xc9, 4, 1, 0}, /* ext */
        {0xca, 0xca, 0, 4, 0}, {0xcb, 0xcb, 0, 8, 0},            /* float */
        {0xcc, 0xcc, 0, 1, 0}, {0xcd, 0xcd, 0, 2, 0}, {0xce, 0xce, 0, 4, 0},
        {0xcf, 0xcf, 0, 8, 0},                                   /* uint */
        {0xd0, 0xd0, 0, 1, 0}, {0xd1, 0xd1, 0, 2, 0}, {0xd2, 0xd2, 0, 4, 0},
        {0xd3, 0xd3, 0, 8, 0},                                   /* int */
        {0xd4, 0xd4, 0, 2, 0}, {0xd5, 0xd5, 0, 3, 0}, {0xd6, 0xd6, 0, 5, 0},
        {0xd7, 0xd7, 0, 9, 0}, {0xd8, 0xd8, 0, 17, 0},           /* fixext */
        {0xd9, 0xd9, 1, 0, 0}, {0xda, 0xda, 2, 0, 0}, {0xdb, 0xdb, 4, 0, 0}, /* str */
        {0xdc, 0xdc, 2, 0, 1}, {0xdd, 0xdd, 4, 0, 1},            /* array */
        {0xde, 0xde, 2, 0, 2}, {0xdf, 0xdf, 4, 0, 2},            /* map */
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (b >= table[i].lo && b <= table[i].hi) {
            *ret_size_bytes = table[i].size_bytes;
            *ret_fixed = table[i].fixed;
            *ret_kind = table[i].kind;
            return 0;
        }
    return -EBADMSG; /* 0xc1: never used */
}

static int skip(cursor *c, int depth);

static int skip_items(cursor *c, uint64_t items, int depth) {
    /* Every object takes at least one byte: a count larger than the bytes
     * left is a lie, refused before anything trusts it. */
    if (depth <= 0 || items > left(c))
        return -EBADMSG;
    for (uint64_t i = 0; i < items; i++)
        if (skip(c, depth - 1) < 0)
            return -EBADMSG;
    return 0;
}

static int skip(cursor *c, int depth) {
    if (left(c) < 1)
        return -EBADMSG;
    uint8_t b = *c->p++;
    if (b <= 0x7f || b >= 0xe0)
        return 0; /* fixints */
    if (b <= 0x8f)
        return skip_items(c, 2u * (b & 0x0f), depth);
    if (b <= 0x9f)
        return skip_items(c, b & 0x0f, depth);
    uint64_t payload;
    int size_bytes, kind;
    if (b <= 0xbf) {
        payload = b & 0x1f;
        size_bytes = 0;
        kind = 0;
    } else if (format_layout(b, &size_bytes, &payload, &kind) < 0) {
        return -EBADMSG;
    }
    if (size_bytes) {
        if (left(c) < (size_t)size_bytes)
            return -EBADMSG;
        uint64_t n = read_be(c->p, size_bytes);
        c->p += size_bytes;
        if (kind == 1)
            return skip_items(c, n, depth);
        if (kind == 2)
            return skip_items(c, 2 * n, depth);
        payload += n; /* ext: type byte + data */
    }
    if (payload > left(c))
        return -EBADMSG;
    c->p += payload;
    return 0;
}

int mp_check(const void *buf, size_t len, int max_depth) {
    if (!buf || len == 0)
        return -EBADMSG;
    cursor c = {buf, (const uint8_t *)buf + len};
    if (skip(&c, max_depth) < 0 || c.p != c.end)
        return -EBADMSG; /* truncated, bad byte, too deep, or trailing bytes */
    return 0;
}

int mp_unpack(const void *buf, size_t len, msgpack_unpacked *ret) {
    int r = mp_check(buf, len, MP_MAX_DEPTH);
    if (r < 0)
        return r;
    size_t off = 0;
    msgpack_unpack_return u = msgpack_unpack_next(ret, buf, len, &off);
    if (u == MSGPACK_UNPACK_NOMEM_ERROR)
        return -ENOMEM;
    if (u != MSGPACK_UNPACK_SUCCESS || off != len)
        return -EBADMSG;
    return 0;
}

bool mp_bytes(const msgpack_object *o, const char **ret_ptr, size_t *ret_len) {
    if (o->type == MSGPACK_OBJECT_STR) {
        *ret_ptr = o->via.str.ptr;
        *ret_len = o->via.str.size;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *ret_ptr = o->via.bin.ptr;
        *ret_len = o->via.bin.size;
        return true;
    }
    return false;
}

const msgpack_object *mp_map_get(const msgpack_object *map, const char *key, int *ret_err) {
    const msgpack_object *found = NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const char *p;
        size_t n;
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (!mp_bytes(&kv->key, &p, &n) || n != klen || memcmp(p, key, n) != 0)
            continue;
        if (found) {
            *ret_err = -EBADMSG;
            return NULL;
        }
        found = &kv->val;
    }
    return found;
}

bool mp_int(const msgpack_object *o, int64_t *ret) {
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *ret = o->via.i64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *ret = (int64_t)o->via.u64;
        return true;
    }
    return false;
}

bool mp_number(const msgpack_object *o, double *ret) {
    int64_t i;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        *ret = o->via.f64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *ret = (double)o->via.u64;
        return true;
    }
    if (mp_int(o, &i)) {
        *ret = (double)i;
        return true;
    }
    return false;
}

bool copy_text(char *dst, size_t cap, const char *src, size_t len) {
    if (len >= cap || memchr(src, '\0', len))
        return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}
