/* alert.c -- one alert message (SPEC §6) -> struct nousu_alert.
 *
 * Table-driven: each known key, its type and where it goes. Unknown keys are
 * ignored (the daemon may add fields); nil for an optional key means absent;
 * a known key with the wrong type, a duplicate key, a missing required key
 * (seq, kind, creator, ts) or a string that does not fit is -EBADMSG. Numbers
 * are taken as numbers: an integer field may arrive as a whole float and a
 * float field as an integer, since that is an encoder's choice, not a
 * malformed message. Pure: no I/O, no logging. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

typedef enum field_type { F_TEXT, F_INT, F_SEQ, F_NUM, F_REASONS } field_type;

typedef struct field {
    const char *key;
    field_type type;
    size_t off;  /* into nousu_alert */
    size_t cap;  /* F_TEXT: buffer size */
    bool required;
} field;

#define TEXT(k, m, req) {#k, F_TEXT, offsetof(nousu_alert, m), sizeof(((nousu_alert *)0)->m), req}
#define NUM(k, t) {#k, t, offsetof(nousu_alert, k), 0, false}

static const field fields[] = {
    NUM(v, F_INT),
    {"seq", F_SEQ, offsetof(nousu_alert, seq), 0, true},
    TEXT(kind, kind_name, true),
    TEXT(creator, creator, true),
    TEXT(niche, niche, false),
    {"ts", F_INT, offsetof(nousu_alert, ts), 0, true},
    NUM(emitted, F_INT),
    NUM(followers, F_INT),
    TEXT(tier, tier, false),
    NUM(window_s, F_INT),
    NUM(engagement, F_NUM),
    NUM(expected, F_NUM),
    NUM(z, F_NUM),
    NUM(velocity, F_NUM),
    NUM(engagement_rate, F_NUM),
    NUM(follower_growth, F_NUM),
    NUM(unique_engagers, F_INT),
    NUM(repeat_ratio, F_NUM),
    NUM(sponsored_share, F_NUM),
    {"reasons", F_REASONS, 0, 0, false},
};

static const struct {
    const char *name;
    nousu_alert_kind kind;
} kinds[] = {
    {"rising", NOUSU_ALERT_RISING},
    {"suspicious", NOUSU_ALERT_SUSPICIOUS},
    {"graduated", NOUSU_ALERT_GRADUATED},
};

static bool whole_number(const msgpack_object *o, int64_t *ret) {
    if (mp_int(o, ret))
        return true;
    if (o->type != MSGPACK_OBJECT_FLOAT32 && o->type != MSGPACK_OBJECT_FLOAT64)
        return false;
    double d = o->via.f64;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9e18)
        return false;
    *ret = (int64_t)d;
    return true;
}

/* Copy at most NOUSU_REASON_TEXT_MAX bytes, cut at a UTF-8 boundary: a
 * reason is prose for people, a shortened one is still useful. */
static bool copy_reason(char *dst, const char *p, size_t n) {
    if (memchr(p, '\0', n))
        return false;
    if (n > NOUSU_REASON_TEXT_MAX) {
        n = NOUSU_REASON_TEXT_MAX;
        while (n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

static int set_reasons(nousu_alert *a, const msgpack_object *o) {
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return -EBADMSG;
    a->reasons_total = o->via.array.size;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const char *p;
        size_t n;
        if (!mp_bytes(&o->via.array.ptr[i], &p, &n))
            return -EBADMSG;
        if (a->n_reasons < NOUSU_MAX_REASONS && !copy_reason(a->reasons[a->n_reasons++], p, n))
            return -EBADMSG;
    }
    return 0;
}

static int set_field(nousu_alert *a, const field *f, const msgpack_object *o) {
    char *dst = (char *)a + f->off;
    const char *p;
    size_t n;
    int64_t i;
    double d;
    switch (f->type) {
    case F_TEXT:
        return mp_bytes(o, &p, &n) && copy_text(dst, f->cap, p, n) ? 0 : -EBADMSG;
    case F_INT:
        if (!whole_number(o, &i))
            return -EBADMSG;
        memcpy(dst, &i, sizeof i);
        return 0;
    case F_SEQ:
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return -EBADMSG;
        memcpy(dst, &o->via.u64, sizeof(uint64_t));
        return 0;
    case F_NUM:
        if (!mp_number(o, &d))
            return -EBADMSG;
        memcpy(dst, &d, sizeof d);
        return 0;
    case F_REASONS:
        return set_reasons(a, o);
    }
    return -EBADMSG;
}

static int decode_map(const msgpack_object *map, nousu_alert *a) {
    if (map->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        int err = 0;
        const msgpack_object *o = mp_map_get(map, fields[k].key, &err);
        if (err < 0)
            return err;
        if (!o || o->type == MSGPACK_OBJECT_NIL) {
            if (fields[k].required)
                return -EBADMSG;
            continue;
        }
        if (set_field(a, &fields[k], o) < 0)
            return -EBADMSG;
    }
    if (a->creator[0] == '\0' || a->kind_name[0] == '\0')
        return -EBADMSG;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (strcmp(a->kind_name, kinds[k].name) == 0)
            a->kind = kinds[k].kind;
    return 0;
}

int nousu_alert_decode(const void *buf, size_t len, nousu_alert *ret) {
    if (!buf || !ret || len > NOUSU_MAX_ALERT_BYTES)
        return -EBADMSG;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    /* Decode into a scratch copy (about 5 KiB of stack): *ret is left
     * untouched on failure. */
    nousu_alert a;
    memset(&a, 0, sizeof a);
    a.followers = -1;
    int r = mp_unpack(buf, len, &u);
    if (r == 0)
        r = decode_map(&u.data, &a);
    msgpack_unpacked_destroy(&u);
    if (r < 0)
        return r == -ENOMEM ? r : -EBADMSG;
    a.raw = buf;
    a.raw_len = len;
    *ret = a;
    return 0;
}
