/* test_mpbuf.c -- mpbuf.c: writes land in the buffer; a failed write (a
 * length no allocator can give) fails every later write too and leaves the
 * bytes as they were, packers see it, and clear starts over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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
    mpbuf_packer_init(&pk, &b);
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
        cmocka_unit_test(test_failure_sticks_until_clear),
        cmocka_unit_test(test_packer_sees_the_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
