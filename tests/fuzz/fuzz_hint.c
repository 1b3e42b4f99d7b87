/* fuzz_hint.c -- libFuzzer target for hint_pack (hint.c), which decodes a
 * creator's state bytes as read from Redis: any bytes must give a hint or
 * nil, never a crash or a leak; a hint holds a state that decodes again. The
 * run is fixed, tests/hint_run.h's: three events of one creator in bucket
 * 480000 (hour buckets), so that seeds with H = 480000 reach the hot path. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../hint_run.h"
#include "hint.h"
#include "plan.h"

/* A hint is n objects (hint.h): old, new, h, new bucket, niche, now, the
 * number of actors, the actors; new is a map. */
static void check_hint(const char *buf, size_t len, int n) {
    msgpack_unpacked up, st;
    msgpack_unpacked_init(&up);
    msgpack_unpacked_init(&st);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
            abort();
        const msgpack_object *o = &up.data;
        if (i == 1 && (o->type != MSGPACK_OBJECT_STR ||
                       msgpack_unpack_next(&st, o->via.str.ptr, o->via.str.size, NULL) !=
                           MSGPACK_UNPACK_SUCCESS ||
                       st.data.type != MSGPACK_OBJECT_MAP))
            abort();
        if (i == HINT_FIXED - 1 && (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                                    o->via.u64 != (uint64_t)(n - HINT_FIXED)))
            abort();
    }
    if (off != len)
        abort();
    msgpack_unpacked_destroy(&st);
    msgpack_unpacked_destroy(&up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode_item items[3];
    hint_run_events(items);
    batch_unit unit = {.source = SOURCE_INGEST, .n_items = 3};
    batch b = {.items = items, .n_items = 3, .cap_items = 3, .units = &unit, .n_units = 1,
               .cap_units = 1};
    plan pl;
    if (plan_build(&pl, &b, HOUR_MS) < 0 || pl.n_runs != 1)
        abort();
    commit_params p = hint_run_params();
    mpbuf out, scratch;
    mpbuf_init(&out);
    mpbuf_init(&scratch);
    int rc = hint_pack(&out, &scratch, (const char *)data, size, &pl, &pl.runs[0], &p);
    if (rc < 0 || (rc > 0 && rc < HINT_FIXED) || rc > HINT_FIXED + 3 || out.failed)
        abort();
    if (rc > 0)
        check_hint(out.sb.data, out.sb.size, rc);
    mpbuf_destroy(&out);
    mpbuf_destroy(&scratch);
    plan_free(&pl);
    return 0;
}
