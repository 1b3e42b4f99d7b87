/* test_hint.c -- hint.c: a hot run's new state is the old one with the
 * run applied (rE, r, ria, cur, now), every other entry's bytes copied as
 * they were, in their order; cur is made when the run opens the bucket;
 * and a state that is not one nousu.lua writes (a key twice, a field
 * missing or of the wrong shape, trailing bytes, too many entries) gets no
 * hint. The run is tests/hint_run.h's (three events in bucket 480000, the
 * weight of type t is t), its first event (type 1) sponsored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "../hint_run.h"
#include "hint.h"
#include "plan.h"

/* ---- states ------------------------------------------------------------ */

typedef struct sbuf {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} sbuf;

static void sbuf_init(sbuf *b) {
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void key(msgpack_packer *pk, const char *k) { msgpack_pack_str_with_body(pk, k, strlen(k)); }

static void ints(msgpack_packer *pk, const int64_t *v, size_t n) {
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_int64(pk, v[i]);
}

/* The state of a micro creator 5 days old, rE 3 in bucket 480000 (as the
 * corpus seed hot_cur_niche), without the field named omit; with cur and
 * niche when asked. The map's header counts `extra` entries more, which the
 * caller packs after. */
static void state(sbuf *b, bool cur, bool niche, const char *omit, unsigned extra) {
    const struct {
        const char *k;
        int64_t v;
    } nums[] = {{"now", TS - 500},  {"first", TS - 120 * HOUR_MS}, {"H", 480000},
                {"fol", 3000},     {"folts", TS - 24 * HOUR_MS}, {"below", TS - 24 * HOUR_MS},
                {"gbase", 0},      {"nichets", cur ? TS - 1000 : 0}, {"ef", -1},
                {"eft", 0},        {"rE", 3},                     {"ria", 2},
                {"rse", 0},        {"hE", 40}};
    static const int64_t r[9] = {0, 3}, cd[3] = {0}, cu[14] = {3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, -1, 0};
    size_t n = sizeof nums / sizeof nums[0];
    unsigned count = (unsigned)n + 2 + cur + niche + extra - (omit != NULL);
    msgpack_pack_map(&b->pk, count);
    for (size_t i = 0; i < n; i++)
        if (!omit || strcmp(omit, nums[i].k)) {
            key(&b->pk, nums[i].k);
            msgpack_pack_int64(&b->pk, nums[i].v);
        }
    if (!omit || strcmp(omit, "r"))
        key(&b->pk, "r"), ints(&b->pk, r, 9);
    if (!omit || strcmp(omit, "cd"))
        key(&b->pk, "cd"), ints(&b->pk, cd, 3);
    if (cur)
        key(&b->pk, "cur"), ints(&b->pk, cu, 14);
    if (niche)
        key(&b->pk, "niche"), key(&b->pk, "cats");
}

/* n entries x0..x(n-1), all nil: keys of no field. */
static void nil_entries(sbuf *b, int n) {
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "x%d", i);
        key(&b->pk, k), msgpack_pack_nil(&b->pk);
    }
}

/* ---- the hint ------------------------------------------------------------ */

typedef struct result {
    int rc;
    msgpack_unpacked obj[HINT_FIXED + 2];
    msgpack_unpacked st; /* the new state, decoded */
    char news[1024];
    size_t news_len;
    msgpack_sbuffer out; /* the hint's bytes, which obj points into */
} result;

static void hint_of(const sbuf *b, result *res) {
    decode_item items[3];
    hint_run_events(items);
    items[0].ev.sponsored = 1;
    batch_unit unit = {.source = SOURCE_INGEST, .n_items = 3};
    batch bt = {.items = items, .n_items = 3, .cap_items = 3, .units = &unit, .n_units = 1,
                .cap_units = 1};
    plan pl;
    assert_int_equal(plan_build(&pl, &bt, HOUR_MS), 0);
    assert_int_equal(pl.n_runs, 1);
    commit_params p = hint_run_params();
    mpbuf out, scratch;
    mpbuf_init(&out);
    mpbuf_init(&scratch);
    res->rc = hint_pack(&out, &scratch, b->sb.data, b->sb.size, &pl, &pl.runs[0], &p);
    assert_false(out.failed);
    res->out = out.sb;
    size_t off = 0;
    for (int i = 0; i < res->rc; i++) {
        msgpack_unpacked_init(&res->obj[i]);
        assert_int_equal(msgpack_unpack_next(&res->obj[i], out.sb.data, out.sb.size, &off),
                         MSGPACK_UNPACK_SUCCESS);
    }
    assert_int_equal(off, res->rc > 0 ? out.sb.size : 0);
    msgpack_unpacked_init(&res->st);
    if (res->rc > 0) {
        const msgpack_object *n = &res->obj[1].data;
        assert_int_equal(n->type, MSGPACK_OBJECT_STR);
        assert_true(n->via.str.size <= sizeof res->news);
        memcpy(res->news, n->via.str.ptr, n->via.str.size);
        res->news_len = n->via.str.size;
        assert_int_equal(msgpack_unpack_next(&res->st, res->news, res->news_len, NULL),
                         MSGPACK_UNPACK_SUCCESS);
    }
    mpbuf_destroy(&scratch);
    plan_free(&pl);
}

static void result_free(result *res) {
    for (int i = 0; i < res->rc; i++)
        msgpack_unpacked_destroy(&res->obj[i]);
    msgpack_unpacked_destroy(&res->st);
    msgpack_sbuffer_destroy(&res->out);
}

static const msgpack_object *field(const result *res, const char *k) {
    const msgpack_object_map *m = &res->st.data.via.map;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.type == MSGPACK_OBJECT_STR && m->ptr[i].key.via.str.size == strlen(k) &&
            memcmp(m->ptr[i].key.via.str.ptr, k, strlen(k)) == 0)
            return &m->ptr[i].val;
    return NULL;
}

static int64_t int_field(const result *res, const char *k) {
    const msgpack_object *o = field(res, k);
    assert_non_null(o);
    assert_true(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return o->via.i64;
}

static void assert_ints(const msgpack_object *o, const int64_t *want, size_t n) {
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o->via.array.size, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(o->via.array.ptr[i].via.i64, want[i]);
}

static bool has_bytes(const result *res, const void *p, size_t n) {
    for (size_t i = 0; i + n <= res->news_len; i++)
        if (memcmp(res->news + i, p, n) == 0)
            return true;
    return false;
}

static void test_hot_run_applied(void **unused) {
    (void)unused;
    sbuf b;
    sbuf_init(&b);
    state(&b, true, true, NULL, 1);
    /* an entry of a newer version: kept as its bytes, nested */
    size_t zz = b.sb.size;
    key(&b.pk, "zz");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_double(&b.pk, 0.25);
    msgpack_pack_map(&b.pk, 1);
    key(&b.pk, "deep");
    msgpack_pack_bin_with_body(&b.pk, "\x01\x02", 2);
    size_t zz_len = b.sb.size - zz;
    result res;
    hint_of(&b, &res);
    assert_int_equal(res.rc, HINT_FIXED + 2);
    /* old bytes, bucket, new bucket?, niche, now, actors */
    assert_int_equal(res.obj[0].data.via.str.size, b.sb.size);
    assert_memory_equal(res.obj[0].data.via.str.ptr, b.sb.data, b.sb.size);
    assert_memory_equal(res.obj[2].data.via.str.ptr, "480000", 6);
    assert_false(res.obj[3].data.via.boolean);
    assert_memory_equal(res.obj[4].data.via.str.ptr, "cats", 4);
    assert_int_equal(res.obj[5].data.via.i64, TS + 9);
    assert_int_equal(res.obj[6].data.via.u64, 2);
    assert_memory_equal(res.obj[7].data.via.str.ptr, "a", 1);
    assert_memory_equal(res.obj[8].data.via.str.ptr, "b", 1);
    /* the state: the run's E is 1*1 + 2*1 + 0 = 3, two actors */
    assert_int_equal(res.st.data.via.map.size, 19);
    assert_int_equal(int_field(&res, "now"), TS + 9);
    assert_int_equal(int_field(&res, "rE"), 6);
    assert_int_equal(int_field(&res, "ria"), 4);
    assert_int_equal(int_field(&res, "rse"), 1); /* the like was sponsored */
    assert_int_equal(int_field(&res, "hE"), 40);
    assert_int_equal(int_field(&res, "nichets"), TS - 1000);
    static const int64_t r[9] = {1, 4, 1}, cur[14] = {6, 1, 4, 1, 0, 0, 0, 0, 0, 0, 4, 1, -1, 0};
    assert_ints(field(&res, "r"), r, 9);
    assert_ints(field(&res, "cur"), cur, 14);
    assert_true(has_bytes(&res, b.sb.data + zz, zz_len));
    /* the entries in their order: "zz" last, as it came */
    const msgpack_object_map *m = &res.st.data.via.map;
    assert_memory_equal(m->ptr[0].key.via.str.ptr, "now", 3);
    assert_memory_equal(m->ptr[18].key.via.str.ptr, "zz", 2);
    result_free(&res);
    msgpack_sbuffer_destroy(&b.sb);
}

static void test_new_bucket_makes_cur(void **unused) {
    (void)unused;
    sbuf b;
    sbuf_init(&b);
    state(&b, false, false, NULL, 0);
    result res;
    hint_of(&b, &res);
    assert_int_equal(res.rc, HINT_FIXED + 2);
    assert_true(res.obj[3].data.via.boolean);
    assert_int_equal(res.obj[4].data.type, MSGPACK_OBJECT_BOOLEAN); /* no niche */
    assert_int_equal(res.st.data.via.map.size, 17);
    static const int64_t cur[14] = {3, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 1, -1, 0};
    assert_ints(field(&res, "cur"), cur, 14);
    assert_null(field(&res, "niche"));
    result_free(&res);
    msgpack_sbuffer_destroy(&b.sb);
}

static void test_a_key_that_is_no_str_is_kept(void **unused) {
    (void)unused;
    sbuf b;
    sbuf_init(&b);
    state(&b, true, true, NULL, 1);
    msgpack_pack_int(&b.pk, 7);
    key(&b.pk, "seven");
    result res;
    hint_of(&b, &res);
    assert_int_equal(res.rc, HINT_FIXED + 2);
    assert_int_equal(res.st.data.via.map.size, 19);
    assert_true(has_bytes(&res, "\x07\xa5seven", 7));
    result_free(&res);
    msgpack_sbuffer_destroy(&b.sb);
}

static void no_hint(const sbuf *b) {
    result res;
    hint_of(b, &res);
    assert_int_equal(res.rc, 0);
    result_free(&res);
}

static void test_states_not_known_get_no_hint(void **unused) {
    (void)unused;
    sbuf b;
    static const char *const required[] = {"now", "first", "H", "rE", "hE", "r", "cd"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        sbuf_init(&b);
        state(&b, true, true, required[i], 0);
        no_hint(&b);
        msgpack_sbuffer_destroy(&b.sb);
    }
    sbuf_init(&b); /* a key twice */
    state(&b, true, true, NULL, 1);
    key(&b.pk, "rE"), msgpack_pack_int(&b.pk, 0);
    no_hint(&b);
    msgpack_sbuffer_destroy(&b.sb);
    sbuf_init(&b); /* cur of 13 */
    state(&b, false, true, NULL, 1);
    static const int64_t c13[13] = {0};
    key(&b.pk, "cur"), ints(&b.pk, c13, 13);
    no_hint(&b);
    msgpack_sbuffer_destroy(&b.sb);
    sbuf_init(&b); /* a niche that is no str */
    state(&b, true, false, NULL, 1);
    key(&b.pk, "niche"), msgpack_pack_int(&b.pk, 3);
    no_hint(&b);
    msgpack_sbuffer_destroy(&b.sb);
    sbuf_init(&b); /* rE that is no number */
    state(&b, true, true, "rE", 1);
    key(&b.pk, "rE"), key(&b.pk, "3");
    no_hint(&b);
    msgpack_sbuffer_destroy(&b.sb);
    sbuf_init(&b); /* a trailing byte */
    state(&b, true, true, NULL, 0);
    msgpack_pack_nil(&b.pk);
    no_hint(&b);
    msgpack_sbuffer_destroy(&b.sb);
    sbuf_init(&b); /* cut short */
    state(&b, true, true, NULL, 0);
    b.sb.size--;
    no_hint(&b);
    msgpack_sbuffer_destroy(&b.sb);
    sbuf_init(&b); /* 33 entries */
    state(&b, true, true, NULL, 15);
    nil_entries(&b, 15);
    no_hint(&b);
    msgpack_sbuffer_destroy(&b.sb);
}

static void test_32_entries_still_a_state(void **unused) {
    (void)unused;
    sbuf b;
    sbuf_init(&b);
    state(&b, true, true, NULL, 14);
    nil_entries(&b, 14);
    result res;
    hint_of(&b, &res);
    assert_int_equal(res.rc, HINT_FIXED + 2);
    assert_int_equal(res.st.data.via.map.size, 32);
    result_free(&res);
    msgpack_sbuffer_destroy(&b.sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_run_applied),
        cmocka_unit_test(test_new_bucket_makes_cur),
        cmocka_unit_test(test_a_key_that_is_no_str_is_kept),
        cmocka_unit_test(test_states_not_known_get_no_hint),
        cmocka_unit_test(test_32_entries_still_a_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
