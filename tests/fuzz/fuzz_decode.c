/* fuzz_decode.c -- libFuzzer target for decode_frame() (decode.c).
 *
 * Besides "no crash, no leak, no huge allocation" it checks the decoder's
 * contract on every input, and that the decoder agrees with msgpack-c: a
 * frame it does not find malformed must unpack completely, and an accepted
 * event's fields must be the ones msgpack-c finds in its map (the decoder
 * reads in place, msgpack-c is the second, independent reader). Small limits
 * (4,000-byte frames, 32-event batches) put oversize and batch_too_large
 * within reach of fuzzer-sized inputs. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "decode.h"

#define FUZZ_NOW 1700000000000LL
#define FUZZ_CAP 32

static const decode_limits FUZZ_LIMITS = {4000, FUZZ_CAP, 300000};

#define check(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

static bool inside(strref r, const uint8_t *data, size_t size) {
    if (r.len == 0)
        return true;
    const uint8_t *p = (const uint8_t *)r.ptr;
    return p >= data && r.len <= size && p - data <= (ptrdiff_t)(size - r.len);
}

/* An accepted event keeps every bound of SPEC §3. */
static void check_event(const event *e, const uint8_t *data, size_t size) {
    check(e->creator.len >= 1 && e->creator.len <= 128 && inside(e->creator, data, size));
    check((unsigned)e->type < EV__COUNT);
    check(e->ts > 0 && e->ts <= FUZZ_NOW + FUZZ_LIMITS.future_ms);
    check(e->id.len <= 64 && inside(e->id, data, size));
    check(e->n >= 1 && e->n <= 1000000);
    check(e->followers >= -1 && e->followers <= 10000000000LL);
    check(e->niche.len <= 64 && inside(e->niche, data, size));
    check(e->post.len <= 128 && inside(e->post, data, size));
    check(e->sponsored >= -1 && e->sponsored <= 1);
    if (e->actor.ptr)
        check(e->actor.len <= 128 && inside(e->actor, data, size));
    else
        check(e->actor.len < sizeof e->actor_num && strlen(e->actor_num) == e->actor.len);
}

/* The value of the first str key named key, or NULL; nil counts as absent. */
static const msgpack_object *lookup(const msgpack_object_map *m, const char *key) {
    size_t n = strlen(key);
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return m->ptr[i].val.type == MSGPACK_OBJECT_NIL ? NULL : &m->ptr[i].val;
    }
    return NULL;
}

/* The str or bin o is exactly the bytes r points at; no o, no r. */
static bool same_bytes(const msgpack_object *o, strref r) {
    if (!o)
        return r.len == 0;
    if (o->type == MSGPACK_OBJECT_STR)
        return r.ptr == o->via.str.ptr && r.len == o->via.str.size;
    return o->type == MSGPACK_OBJECT_BIN && r.ptr == o->via.bin.ptr && r.len == o->via.bin.size;
}

/* A non-negative int o, or dflt when there is no o. */
static int64_t int_or(const msgpack_object *o, int64_t dflt) {
    if (!o)
        return dflt;
    check(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    return (int64_t)o->via.u64;
}

static void check_fields_agree(msgpack_zone *z, const event *e) {
    msgpack_object obj;
    size_t off = 0;
    check(msgpack_unpack(e->raw.ptr, e->raw.len, &off, z, &obj) == MSGPACK_UNPACK_SUCCESS);
    check(obj.type == MSGPACK_OBJECT_MAP);
    const msgpack_object_map *m = &obj.via.map;
    check(same_bytes(lookup(m, "creator"), e->creator) && same_bytes(lookup(m, "id"), e->id));
    check(same_bytes(lookup(m, "niche"), e->niche) && same_bytes(lookup(m, "post"), e->post));
    const msgpack_object *t = lookup(m, "type");
    const char *name = event_type_name(e->type);
    strref tr = {t->type == MSGPACK_OBJECT_STR ? t->via.str.ptr : t->via.bin.ptr,
                 (uint32_t)strlen(name)};
    check(same_bytes(t, tr) && memcmp(tr.ptr, name, tr.len) == 0);
    check(int_or(lookup(m, "ts"), 0) == e->ts && int_or(lookup(m, "n"), 1) == e->n);
    check(int_or(lookup(m, "followers"), -1) == e->followers);
    const msgpack_object *s = lookup(m, "sponsored");
    check(s ? s->type == MSGPACK_OBJECT_BOOLEAN && s->via.boolean == e->sponsored
            : e->sponsored == -1);
    const msgpack_object *a = lookup(m, "actor");
    if (a && (a->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
              a->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        char dec[24];
        if (a->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            snprintf(dec, sizeof dec, "%" PRIu64, a->via.u64);
        else
            snprintf(dec, sizeof dec, "%" PRId64, a->via.i64);
        check(!e->actor.ptr && strcmp(e->actor_num, dec) == 0);
    } else {
        check(same_bytes(a, e->actor));
    }
    msgpack_zone_clear(z);
}

/* The decoder found data well formed: msgpack-c must consume exactly all of it. */
static void check_msgpack_agrees(msgpack_zone *z, const uint8_t *data, size_t size) {
    msgpack_object obj;
    size_t off = 0;
    check(msgpack_unpack((const char *)data, size, &off, z, &obj) == MSGPACK_UNPACK_SUCCESS);
    check(off == size);
    check(obj.type == MSGPACK_OBJECT_MAP || obj.type == MSGPACK_OBJECT_ARRAY);
    msgpack_zone_clear(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* One decoder for the whole run, as in the daemon: its zone is reused. */
    static decoder *d;
    static msgpack_zone *z;
    decode_item items[FUZZ_CAP];
    size_t n = 0;
    bool whole = false;

    if (!d) {
        d = decoder_new(&FUZZ_LIMITS);
        z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        check(d && z);
    }
    check(decode_frame(d, data, size, FUZZ_NOW, items, FUZZ_CAP, &n, &whole) == 0);
    check(n <= FUZZ_CAP);

    if (whole) {
        check(n == 1 && reject_reason_is_frame(items[0].reason));
        check((const uint8_t *)items[0].ev.raw.ptr == data && items[0].ev.raw.len == size);
        check(items[0].reason != REJECT_OVERSIZE || size > FUZZ_LIMITS.max_frame_bytes);
        if (items[0].reason == REJECT_BATCH_TOO_LARGE)
            check_msgpack_agrees(z, data, size);
        return 0;
    }
    check(size <= FUZZ_LIMITS.max_frame_bytes);
    check_msgpack_agrees(z, data, size);
    /* The units tile the frame: one map is all of it; a batch's elements
     * follow each other after the array header, up to the last byte. */
    const uint8_t *next = NULL;
    for (size_t i = 0; i < n; i++) {
        const decode_item *it = &items[i];
        check(!reject_reason_is_frame(it->reason) && it->reason != REJECT_TOO_OLD);
        check(it->ev.raw.len >= 1 && inside(it->ev.raw, data, size));
        if (next)
            check((const uint8_t *)it->ev.raw.ptr == next);
        next = (const uint8_t *)it->ev.raw.ptr + it->ev.raw.len;
        if (it->reason == REJECT_NONE) {
            check_event(&it->ev, data, size);
            check_fields_agree(z, &it->ev);
        }
    }
    if (n > 0)
        check(next == data + size);
    return 0;
}
