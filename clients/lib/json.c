/* json.c -- any msgpack object -> one line of JSON text, via jansson.
 *
 * Used to print alerts (nousu-tail) but generic: every msgpack type has a
 * JSON rendering, so a daemon that adds fields needs no client change. The
 * input is untrusted: mp_unpack() bounds it before msgpack-c allocates, and
 * strings that are not valid UTF-8 (which JSON cannot carry) have each bad
 * byte replaced by U+FFFD instead of failing the whole message. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when it is invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n) {
    uint8_t b = p[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0;
        if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90;
        if (b == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* A JSON string of bytes that may not be UTF-8. New reference or NULL. */
static json_t *json_text(const char *p, size_t n) {
    json_t *s = json_stringn(p, n);
    if (s)
        return s;
    /* Each bad byte becomes the 3-byte U+FFFD: at most 3n bytes. */
    char *clean = malloc(3 * n + 1);
    if (!clean)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const uint8_t *)p + i, n - i);
        if (k == 0) {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(clean + o, p + i, k);
            o += k;
            i += k;
        }
    }
    s = json_stringn(clean, o);
    free(clean);
    return s;
}

static json_t *to_json(const msgpack_object *o);

static json_t *ext_json(const msgpack_object_ext *e) {
    char *hex = malloc(2 * (size_t)e->size + 1);
    if (!hex)
        return NULL;
    for (uint32_t i = 0; i < e->size; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)e->ptr[i]);
    hex[2 * (size_t)e->size] = '\0';
    json_t *j = json_pack("{s:i,s:s}", "ext", (json_int_t)e->type, "hex", hex);
    free(hex);
    return j;
}

static json_t *array_json(const msgpack_object_array *a) {
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (uint32_t i = 0; i < a->size; i++)
        if (json_array_append_new(arr, to_json(&a->ptr[i])) < 0)
            goto fail;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

/* A map key as object key text: strings as themselves, anything else as its
 * own JSON text (1 -> "1"). Returns a new json string or NULL. */
static json_t *key_json(const msgpack_object *k) {
    const char *p;
    size_t n;
    if (mp_bytes(k, &p, &n))
        return json_text(p, n);
    json_t *v = to_json(k);
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    json_t *s = text ? json_string(text) : NULL;
    free(text);
    return s;
}

static json_t *map_json(const msgpack_object_map *m) {
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (uint32_t i = 0; i < m->size; i++) {
        json_t *k = key_json(&m->ptr[i].key);
        int r = k ? json_object_setn_new(obj, json_string_value(k), json_string_length(k),
                                         to_json(&m->ptr[i].val))
                  : -1;
        json_decref(k);
        if (r < 0)
            goto fail;
    }
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

/* New reference, or NULL on allocation failure (jansson's *_new setters
 * treat a NULL value as failure, so errors propagate upward). */
static json_t *to_json(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* Above INT64_MAX a JSON number can still carry it, approximately. */
        if (o->via.u64 > INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        return json_text(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return json_text(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY:
        return array_json(&o->via.array);
    case MSGPACK_OBJECT_MAP:
        return map_json(&o->via.map);
    case MSGPACK_OBJECT_EXT:
        return ext_json(&o->via.ext);
    }
    return json_null();
}

int nousu_msgpack_to_json(const void *buf, size_t len, char **ret_json) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    json_t *root = NULL;
    char *text = NULL;
    int r = mp_unpack(buf, len, &u);
    if (r < 0)
        goto out;
    root = to_json(&u.data);
    /* 15 significant digits: 11.4 prints as 11.4, not 11.400000000000000355. */
    text = root ? json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
                : NULL;
    if (!text) {
        r = -ENOMEM;
        goto out;
    }
    *ret_json = text;
out:
    json_decref(root);
    msgpack_unpacked_destroy(&u);
    return r;
}
