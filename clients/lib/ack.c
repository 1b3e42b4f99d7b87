/* ack.c -- the daemon's ack map (SPEC §4) -> struct nousu_ack.
 *
 * {"ok": n, "dup": n, "rejected": n, "errors": [{"i": idx, "reason": str}]}.
 * Pure; the caller owns the error array and says how many entries it holds,
 * which is also the most a valid ack can carry (one per event of the batch,
 * or one for a frame rejected whole). */
#include <errno.h>
#include <string.h>

#include "ack.h"

static int count_field(const msgpack_object *map, const char *key, uint64_t *ret) {
    int err = 0;
    int64_t v;
    const msgpack_object *o = mp_map_get(map, key, &err);
    if (err < 0 || !o || !mp_int(o, &v) || v < 0)
        return -EBADMSG;
    *ret = (uint64_t)v;
    return 0;
}

static int error_entry(const msgpack_object *o, nousu_ack_error *ret) {
    int err = 0;
    const char *p;
    size_t n;
    if (o->type != MSGPACK_OBJECT_MAP)
        return -EBADMSG;
    const msgpack_object *i = mp_map_get(o, "i", &err);
    const msgpack_object *reason = mp_map_get(o, "reason", &err);
    if (err < 0 || !i || !reason || !mp_int(i, &ret->i) || !mp_bytes(reason, &p, &n))
        return -EBADMSG;
    /* Reasons are short snake_case words; a longer one is cut, not refused. */
    if (n >= sizeof ret->reason)
        n = sizeof ret->reason - 1;
    memcpy(ret->reason, p, n);
    ret->reason[n] = '\0';
    return 0;
}

int ack_decode(const void *buf, size_t len, nousu_ack_error *errors, size_t max_errors,
               nousu_ack *ret) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    nousu_ack a = {0};
    int err = 0;
    int r = mp_unpack(buf, len, &u);
    if (r < 0)
        goto out;
    r = -EBADMSG;
    const msgpack_object *map = &u.data;
    if (map->type != MSGPACK_OBJECT_MAP || count_field(map, "ok", &a.ok) < 0 ||
        count_field(map, "dup", &a.dup) < 0 || count_field(map, "rejected", &a.rejected) < 0)
        goto out;
    const msgpack_object *list = mp_map_get(map, "errors", &err);
    if (err < 0)
        goto out;
    if (list && list->type != MSGPACK_OBJECT_NIL) {
        if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > max_errors)
            goto out;
        for (uint32_t k = 0; k < list->via.array.size; k++)
            if (error_entry(&list->via.array.ptr[k], &errors[k]) < 0)
                goto out;
        a.n_errors = list->via.array.size;
    }
    a.errors = errors;
    ret->ok = a.ok;
    ret->dup = a.dup;
    ret->rejected = a.rejected;
    ret->n_errors = a.n_errors;
    ret->errors = a.errors;
    r = 0;
out:
    msgpack_unpacked_destroy(&u);
    return r;
}
