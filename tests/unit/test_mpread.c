/* test_mpread.c -- mpread.c: numbers of every encoding read as doubles,
 * strs read in place, whole objects skipped; every length is
 * checked, the nesting capped, and a refused read leaves the cursor where
 * it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "mpread.h"

static double num_of(const void *p, size_t len, size_t *pos) {
    mpread r;
    double d = -12345;
    mpread_init(&r, p, len);
    assert_true(mpread_num(&r, &d));
    *pos = r.pos;
    return d;
}

static void test_numbers_of_every_encoding(void **state) {
    (void)state;
    static const int64_t ints[] = {0,     1,      127,       128,        255,        256,
                                   65535, 65536,  -1,        -32,        -33,        -128,
                                   -129,  -32768, -32769,    INT32_MIN,  4294967296, INT64_MIN,
                                   (int64_t)1 << 53};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_int64(&pk, ints[i]);
        size_t pos;
        assert_true(num_of(sb.data, sb.size, &pos) == (double)ints[i]);
        assert_int_equal(pos, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
    /* non-minimal forms, as another writer could use: int8 5, uint64 7 */
    static const uint8_t i8[] = {0xd0, 0x05}, u64[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 7},
                         u64max[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    size_t pos;
    assert_true(num_of(i8, sizeof i8, &pos) == 5);
    assert_true(num_of(u64, sizeof u64, &pos) == 7);
    assert_true(num_of(u64max, sizeof u64max, &pos) == 18446744073709551615.0);
    static const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0, 0}; /* 1.5f */
    assert_true(num_of(f32, sizeof f32, &pos) == 1.5);
    static const uint8_t f64[] = {0xcb, 0xc0, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18};
    assert_true(num_of(f64, sizeof f64, &pos) == -3.141592653589793);
    assert_int_equal(pos, 9);
}

static void refused_num(const void *p, size_t len) {
    mpread r;
    double d = 42;
    mpread_init(&r, p, len);
    assert_false(mpread_num(&r, &d));
    assert_int_equal(r.pos, 0);
    assert_true(d == 42);
}

static void test_not_numbers_and_cut_numbers(void **state) {
    (void)state;
    refused_num("\xa1x", 2);                     /* a str */
    refused_num("\xc0", 1);                      /* nil */
    refused_num("\xc3", 1);                      /* true */
    refused_num("\x90", 1);                      /* [] */
    refused_num("\xcb\x00\x00\x00", 4);          /* a double cut short */
    refused_num("\xcd\x01", 2);                  /* a uint16 cut short */
    refused_num("", 0);
}

static void test_strs_in_place(void **state) {
    (void)state;
    char big[300];
    memset(big, 'q', sizeof big);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, "abc", 3);   /* fixstr */
    msgpack_pack_str_with_body(&pk, big, 40);    /* str8 */
    msgpack_pack_str_with_body(&pk, big, 300);   /* str16 */
    msgpack_pack_bin_with_body(&pk, "abc", 3);   /* bin: no str */
    mpread r;
    mpread_init(&r, sb.data, sb.size);
    const char *s;
    size_t n;
    assert_true(mpread_str(&r, &s, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(s, "abc", 3);
    assert_ptr_equal(s, sb.data + 1);
    assert_true(mpread_str(&r, &s, &n));
    assert_int_equal(n, 40);
    assert_true(mpread_str(&r, &s, &n));
    assert_int_equal(n, 300);
    size_t at = r.pos;
    assert_false(mpread_str(&r, &s, &n));
    assert_int_equal(r.pos, at);
    /* a str longer than the bytes left */
    mpread_init(&r, "\xa5" "abc", 4);
    assert_false(mpread_str(&r, &s, &n));
    assert_int_equal(r.pos, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_skip_nested(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_bin_with_body(&pk, "xy", 2);
    msgpack_pack_ext_with_body(&pk, "zz", 2, 7);
    size_t first = sb.size;
    msgpack_pack_int(&pk, 9);
    mpread r;
    mpread_init(&r, sb.data, sb.size);
    assert_int_equal(mpread_skip(&r), 0);
    assert_int_equal(r.pos, first);
    double d;
    assert_true(mpread_num(&r, &d));
    assert_true(d == 9);
    assert_int_equal(mpread_skip(&r), -1); /* nothing left */
    assert_int_equal(r.pos, sb.size);
    /* every cut of the map is refused, the cursor left at 0 */
    for (size_t cut = 0; cut < first; cut++) {
        mpread_init(&r, sb.data, cut);
        assert_int_equal(mpread_skip(&r), -1);
        assert_int_equal(r.pos, 0);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_skip_depth_capped(void **state) {
    (void)state;
    uint8_t p[MPREAD_MAX_DEPTH + 2];
    memset(p, 0x91, sizeof p); /* [[[[...]]]] */
    mpread r;
    p[MPREAD_MAX_DEPTH] = 0x01, p[MPREAD_MAX_DEPTH + 1] = 0x02;
    mpread_init(&r, p, MPREAD_MAX_DEPTH + 1);
    assert_int_equal(mpread_skip(&r), 0);
    assert_int_equal(r.pos, MPREAD_MAX_DEPTH + 1);
    p[MPREAD_MAX_DEPTH] = 0x90; /* a container past the cap, even empty */
    mpread_init(&r, p, MPREAD_MAX_DEPTH + 1);
    assert_int_equal(mpread_skip(&r), -1);
    assert_int_equal(r.pos, 0);
    /* the same object seen one level down: its innermost at the cap */
    p[MPREAD_MAX_DEPTH] = 0x01;
    mpread_init(&r, p + 1, MPREAD_MAX_DEPTH);
    assert_int_equal(mpread_skip_at(&r, 1), 0);
    mpread_init(&r, p, MPREAD_MAX_DEPTH + 1);
    assert_int_equal(mpread_skip_at(&r, 1), -1);
    p[MPREAD_MAX_DEPTH] = 0x91; /* one container more */
    p[MPREAD_MAX_DEPTH + 1] = 0x01;
    mpread_init(&r, p, MPREAD_MAX_DEPTH + 2);
    assert_int_equal(mpread_skip(&r), -1);
    assert_int_equal(r.pos, 0);
    mpread_init(&r, p, MPREAD_MAX_DEPTH); /* the innermost element missing */
    assert_int_equal(mpread_skip(&r), -1);
}

static void test_counts_beyond_the_bytes(void **state) {
    (void)state;
    /* array32 of 2^32-1 elements in 8 bytes; map16 of 3 pairs in 5 bytes;
     * the never-used 0xc1 */
    static const uint8_t a32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3},
                         m16[] = {0xde, 0, 3, 1, 2}, c1[] = {0xc1};
    mpread r;
    mp_head h;
    mpread_init(&r, a32, sizeof a32);
    assert_int_equal(mpread_head(&r, &h), -1);
    assert_int_equal(mpread_skip(&r), -1);
    mpread_init(&r, m16, sizeof m16);
    assert_int_equal(mpread_head(&r, &h), -1);
    mpread_init(&r, c1, sizeof c1);
    assert_int_equal(mpread_head(&r, &h), -1);
    assert_int_equal(mpread_skip(&r), -1);
    static const uint8_t m1[] = {0x81, 0xa1, 'k', 0x05};
    mpread_init(&r, m1, sizeof m1);
    assert_int_equal(mpread_head(&r, &h), 0);
    assert_true(h.container && !h.array);
    assert_int_equal(h.count, 1);
    assert_int_equal(r.pos, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_of_every_encoding),
        cmocka_unit_test(test_not_numbers_and_cut_numbers),
        cmocka_unit_test(test_strs_in_place),
        cmocka_unit_test(test_skip_nested),
        cmocka_unit_test(test_skip_depth_capped),
        cmocka_unit_test(test_counts_beyond_the_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
