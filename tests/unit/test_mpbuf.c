/* test_mpbuf.c -- mpbuf.c: writes land in the buffer; a failed write (a
 * length no allocator can give) fails every later write too and leaves the
 * bytes as they were, packers see it, and clear starts over. mpbuf's own
 * packers write what msgpack-c's do, at every boundary of every form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <stdlib.h>

#include "mpbuf.h"

/* Under ASan an impossible allocation must return NULL, as malloc does,
 * rather than stop the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* A length realloc refuses at once (and that never reads its source). */
#define TOO_BIG ((size_t)1 << 62)

static void test_writes_append(void **state) {
    (void)state;
    mpbuf b;
    mpbuf_init(&b);
    assert_int_equal(mpbuf_write(&b, "ab", 2), 0);
    assert_int_equal(mpbuf_write(&b, "cde", 3), 0);
    assert_false(b.failed);
    assert_int_equal(b.sb.size, 5);
    assert_memory_equal(b.sb.data, "abcde", 5);
    mpbuf_destroy(&b);
}

/* Writes of every length from 0 to 40 after every prefix from 0 to 20, and
 * a long run of them across the buffer's growth, against memcpy. */
static void test_every_length(void **state) {
    (void)state;
    char src[64], want[4096];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)(0x41 + i * 7);
    for (size_t prefix = 0; prefix <= 20; prefix++) {
        for (size_t len = 0; len <= 40; len++) {
            mpbuf b;
            mpbuf_init(&b);
            assert_int_equal(mpbuf_write(&b, src + 30, prefix), 0);
            assert_int_equal(mpbuf_write(&b, src + 1, len), 0);
            assert_int_equal(mpbuf_write(&b, "!", 1), 0);
            assert_int_equal(b.sb.size, prefix + len + 1);
            assert_memory_equal(b.sb.data, src + 30, prefix);
            assert_memory_equal(b.sb.data + prefix, src + 1, len);
            assert_int_equal(b.sb.data[prefix + len], '!');
            mpbuf_destroy(&b);
        }
    }
    mpbuf b;
    mpbuf_init(&b);
    size_t n = 0;
    for (size_t k = 0; n + 17 <= sizeof want; k++) {
        size_t len = k % 18, from = k % 11;
        memcpy(want + n, src + from, len);
        n += len;
        assert_int_equal(mpbuf_write(&b, src + from, len), 0);
    }
    assert_int_equal(b.sb.size, n);
    assert_memory_equal(b.sb.data, want, n);
    mpbuf_destroy(&b);
}

/* mpbuf's packers against msgpack-c's, value by value into two buffers. */
static void test_packers_match_msgpack_c(void **state) {
    (void)state;
    static const int64_t ints[] = {
        0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
        INT64_MAX, -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769,
        -2147483647LL, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN + 1, INT64_MIN,
    };
    static const uint64_t uints[] = {0, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
                                     (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    static const double doubles[] = {0.0, -0.0, 1.5, -2.25e300, 1e-310, 3.0};
    static const size_t counts[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000};
    char *bytes = malloc(70000);
    assert_non_null(bytes);
    for (size_t i = 0; i < 70000; i++)
        bytes[i] = (char)('a' + i % 26);
    mpbuf ours, theirs;
    mpbuf_init(&ours);
    mpbuf_init(&theirs);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &theirs, mpbuf_write);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        mpbuf_int(&ours, ints[i]);
        msgpack_pack_int64(&pk, ints[i]);
    }
    for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
        mpbuf_uint(&ours, uints[i]);
        msgpack_pack_uint64(&pk, uints[i]);
    }
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++) {
        mpbuf_double(&ours, doubles[i]);
        msgpack_pack_double(&pk, doubles[i]);
    }
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        mpbuf_array(&ours, counts[i]);
        msgpack_pack_array(&pk, counts[i]);
        mpbuf_map(&ours, counts[i]);
        msgpack_pack_map(&pk, counts[i]);
        mpbuf_str(&ours, bytes, counts[i]);
        msgpack_pack_str(&pk, counts[i]);
        msgpack_pack_str_body(&pk, bytes, counts[i]);
    }
    mpbuf_nil(&ours), msgpack_pack_nil(&pk);
    mpbuf_bool(&ours, true), msgpack_pack_true(&pk);
    mpbuf_bool(&ours, false), msgpack_pack_false(&pk);
    assert_false(ours.failed);
    assert_int_equal(ours.sb.size, theirs.sb.size);
    assert_memory_equal(ours.sb.data, theirs.sb.data, ours.sb.size);
    mpbuf_destroy(&ours);
    mpbuf_destroy(&theirs);
    free(bytes);
}

/* After a failed write the packers write nothing, whatever room is left. */
static void test_packers_after_a_failure(void **state) {
    (void)state;
    mpbuf b;
    mpbuf_init(&b);
    mpbuf_int(&b, 7);
    assert_int_equal(mpbuf_write(&b, "x", TOO_BIG), -1);
    mpbuf_int(&b, 300);
    mpbuf_str(&b, "abc", 3);
    mpbuf_array(&b, 2);
    mpbuf_nil(&b);
    mpbuf_double(&b, 1.0);
    assert_true(b.failed);
    assert_int_equal(b.sb.size, 1);
    assert_null(mpbuf_room(&b, 1));
    mpbuf_clear(&b);
    mpbuf_uint(&b, 300);
    assert_false(b.failed);
    assert_int_equal(b.sb.size, 3);
    mpbuf_destroy(&b);
}

static void test_failure_sticks_until_clear(void **state) {
    (void)state;
    mpbuf b;
    mpbuf_init(&b);
    assert_int_equal(mpbuf_write(&b, "ab", 2), 0);
    assert_int_equal(mpbuf_write(&b, "x", TOO_BIG), -1);
    assert_true(b.failed);
    assert_int_equal(b.sb.size, 2); /* what was there stays, nothing half-written */
    assert_memory_equal(b.sb.data, "ab", 2);
    /* a write that would fit now fails too: the buffer has a hole */
    assert_int_equal(mpbuf_write(&b, "c", 1), -1);
    assert_int_equal(b.sb.size, 2);
    mpbuf_clear(&b);
    assert_false(b.failed);
    assert_int_equal(b.sb.size, 0);
    assert_int_equal(mpbuf_write(&b, "c", 1), 0);
    assert_memory_equal(b.sb.data, "c", 1);
    mpbuf_destroy(&b);
}

static void test_packer_sees_the_failure(void **state) {
    (void)state;
    mpbuf b;
    mpbuf_init(&b);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, mpbuf_write);
    assert_int_equal(msgpack_pack_array(&pk, 2), 0);
    assert_int_equal(msgpack_pack_int(&pk, 7), 0);
    assert_int_equal(b.sb.size, 2);
    assert_int_equal(mpbuf_write(&b, "x", TOO_BIG), -1);
    assert_int_not_equal(msgpack_pack_int(&pk, 8), 0);
    assert_int_not_equal(msgpack_pack_str(&pk, 3), 0);
    assert_int_equal(b.sb.size, 2);
    assert_true(b.failed);
    mpbuf_destroy(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_append),
        cmocka_unit_test(test_every_length),
        cmocka_unit_test(test_packers_match_msgpack_c),
        cmocka_unit_test(test_packers_after_a_failure),
        cmocka_unit_test(test_failure_sticks_until_clear),
        cmocka_unit_test(test_packer_sees_the_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
