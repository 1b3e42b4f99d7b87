/* test_hintflat.c -- the reader of ARGV[7] (hintflat.c), on bytes packed by
 * msgpack-c as daemon/wire.c packs them: every field, each integer and
 * string width, the places, and refusals of what the daemon never writes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "hintflat.h"

static void pstr(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* One hint as wire.c lays it out; niche NULL: false. */
static void pack_hint(msgpack_packer *pk, const char *creator, const char *niche, int64_t now,
                      int n_actors, const char **actors) {
    pstr(pk, creator);
    msgpack_pack_true(pk);
    msgpack_pack_uint64(pk, 300);
    msgpack_pack_uint64(pk, 70000);
    pstr(pk, "old state");
    pstr(pk, "new state");
    pstr(pk, "493921");
    msgpack_pack_false(pk);
    if (niche)
        pstr(pk, niche);
    else
        msgpack_pack_false(pk);
    msgpack_pack_int64(pk, now);
    msgpack_pack_uint32(pk, (uint32_t)n_actors);
    for (int i = 0; i < n_actors; i++)
        pstr(pk, actors[i]);
}

static bool str_is(const hintflat_str *s, const char *want) {
    return s->ptr && s->len == strlen(want) && memcmp(s->ptr, want, s->len) == 0;
}

static void test_reads_every_field(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const char *actors[] = {"u1", "a much longer actor name, longer than a fixstr holds"};
    msgpack_pack_array(&pk, 11 + 2 + 11);
    pack_hint(&pk, "c1", "cats", INT64_C(1733550000000), 2, actors);
    pack_hint(&pk, "c2", NULL, -5, 0, NULL);
    hintflat f;
    hintflat_hint h;
    hintflat_str a;
    assert_int_equal(hintflat_open(&f, sb.data, sb.size), 0);
    assert_int_equal(hintflat_next(&f, &h), 1);
    assert_int_equal(h.p, 1);
    assert_true(str_is(&h.creator, "c1") && str_is(&h.old_state, "old state") &&
                str_is(&h.new_state, "new state") && str_is(&h.bucket, "493921") &&
                str_is(&h.niche, "cats"));
    assert_false(h.new_bucket);
    assert_true(h.now_is_int);
    assert_int_equal(h.now, INT64_C(1733550000000));
    assert_int_equal(h.n_actors, 2);
    assert_true(hintflat_actor(&h, &a) && str_is(&a, "u1"));
    assert_true(hintflat_actor(&h, &a) && str_is(&a, actors[1]));
    assert_false(hintflat_actor(&h, &a));
    assert_int_equal(hintflat_next(&f, &h), 1);
    assert_int_equal(h.p, 14);
    assert_null(h.niche.ptr);
    assert_int_equal(h.now, -5);
    assert_false(hintflat_actor(&h, &a));
    assert_int_equal(hintflat_next(&f, &h), 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_integer_widths_and_floats(void **state) {
    (void)state;
    int64_t nows[] = {0, 127, 128, 255, 65536, INT64_C(1) << 40, -1, -32, -33, -129, -40000,
                      INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof nows / sizeof *nows; i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 11);
        pack_hint(&pk, "c", NULL, nows[i], 0, NULL);
        hintflat f;
        hintflat_hint h;
        assert_int_equal(hintflat_open(&f, sb.data, sb.size), 0);
        assert_int_equal(hintflat_next(&f, &h), 1);
        assert_true(h.now_is_int);
        assert_true(h.now == nows[i]);
        msgpack_sbuffer_destroy(&sb);
    }
    /* a float now: read, and flagged */
    unsigned char fl[] = {0x9b, 0xa1, 'c', 0xc3, 0x01, 0x01, 0xa1, 'o', 0xa1, 'n', 0xa1, '1',
                          0xc2, 0xc2, 0xcb, 0x40, 0x16, 0, 0, 0, 0, 0, 0, 0x00};
    hintflat f;
    hintflat_hint h;
    assert_int_equal(hintflat_open(&f, fl, sizeof fl), 0);
    assert_int_equal(hintflat_next(&f, &h), 1);
    assert_false(h.now_is_int);
    assert_true(h.now_f == 5.5);
    /* uint64 past INT64_MAX is no now */
    unsigned char big[] = {0x9b, 0xa1, 'c', 0xc3, 0x01, 0x01, 0xa1, 'o', 0xa1, 'n', 0xa1, '1',
                           0xc2, 0xc2, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x00};
    assert_int_equal(hintflat_open(&f, big, sizeof big), 0);
    assert_int_equal(hintflat_next(&f, &h), -EBADMSG);
}

/* Every proper prefix of a good array is refused, and so is a byte more. */
static void test_truncated_and_trailing(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const char *actors[] = {"u1", "u2", "u3"};
    msgpack_pack_array(&pk, 14);
    pack_hint(&pk, "creator", "knitting", 99, 3, actors);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    for (size_t len = 0; len <= sb.size; len++) {
        hintflat f;
        hintflat_hint h;
        int rc = hintflat_open(&f, sb.data, len);
        if (rc == 0)
            while ((rc = hintflat_next(&f, &h)) == 1)
                ;
        assert_int_equal(rc, len == sb.size - 1 ? 0 : -EBADMSG);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_wrong_types_are_refused(void **state) {
    (void)state;
    /* want as an integer; n claiming more actors than the array holds */
    unsigned char want_int[] = {0x9b, 0xa1, 'c', 0x01, 0x01, 0x01, 0xa1, 'o', 0xa1, 'n',
                                0xa1, '1', 0xc2, 0xc2, 0x05, 0x00};
    unsigned char too_many[] = {0x9c, 0xa1, 'c', 0xc3, 0x01, 0x01, 0xa1, 'o', 0xa1, 'n',
                                0xa1, '1', 0xc2, 0xc2, 0x05, 0x02, 0xa1, 'x'};
    unsigned char not_array[] = {0x81, 0xa1, 'c', 0x01};
    hintflat f;
    hintflat_hint h;
    assert_int_equal(hintflat_open(&f, want_int, sizeof want_int), 0);
    assert_int_equal(hintflat_next(&f, &h), -EBADMSG);
    assert_int_equal(hintflat_open(&f, too_many, sizeof too_many), 0);
    assert_int_equal(hintflat_next(&f, &h), -EBADMSG);
    assert_int_equal(hintflat_open(&f, not_array, sizeof not_array), -EBADMSG);
    /* other types are refused whatever follows them (a length read from
     * 9 bytes of what follows would have passed) */
    unsigned char map_then_bytes[] = {0x81, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0, 0xc0};
    assert_int_equal(hintflat_open(&f, map_then_bytes, sizeof map_then_bytes), -EBADMSG);
    unsigned char creator_true[] = {0x9b, 0xc3, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xc3, 0x01, 0x01,
                                    0xa1, 'o', 0xa1, 'n', 0xa1, '1', 0xc2, 0xc2, 0x05, 0x00};
    assert_int_equal(hintflat_open(&f, creator_true, sizeof creator_true), 0);
    assert_int_equal(hintflat_next(&f, &h), -EBADMSG);
    /* an array32 claiming more objects than there are bytes */
    assert_int_equal(hintflat_open(&f, "\xdd\x00\x01\x00\x00\xc0", 6), -EBADMSG);
}

static void test_places(void **state) {
    (void)state;
    uint32_t p[4];
    unsigned char ok[] = {0x93, 0x01, 0xcc, 0xc8, 0xce, 0x00, 0x01, 0x00, 0x00};
    assert_int_equal(hintflat_places(ok, sizeof ok, p, 4), 3);
    assert_true(p[0] == 1 && p[1] == 200 && p[2] == 65536);
    assert_int_equal(hintflat_places("", 0, p, 4), 0);
    assert_int_equal(hintflat_places(ok, sizeof ok, p, 2), -EBADMSG);     /* over cap */
    assert_int_equal(hintflat_places("\x91\xff", 2, p, 4), -EBADMSG);     /* negative */
    assert_int_equal(hintflat_places("\x91\xa1x", 3, p, 4), -EBADMSG);    /* a string */
    assert_int_equal(hintflat_places("\x91\x01\x02", 3, p, 4), -EBADMSG); /* trailing */
    unsigned char huge[] = {0x91, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0};          /* > 2^32 */
    assert_int_equal(hintflat_places(huge, sizeof huge, p, 4), -EBADMSG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_every_field),
        cmocka_unit_test(test_integer_widths_and_floats),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_wrong_types_are_refused),
        cmocka_unit_test(test_places),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
