/* test_decimal.c -- decimal.h: the digits snprintf writes, at every power of
 * ten and its neighbours, both ends of int64 and uint64, and in between. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "decimal.h"

static void expect_i64(int64_t v) {
    char want[32], got[DECIMAL_MAX];
    int n = snprintf(want, sizeof want, "%" PRId64, v);
    uint32_t len = decimal_i64(got, v);
    if (len != (uint32_t)n || strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\" (%u)", want, got, len);
}

static void test_i64(void **state) {
    (void)state;
    int64_t p = 1; /* 10^0 .. 10^18, the powers of ten in int64 */
    for (int k = 0; k <= 18; k++) {
        for (int64_t d = -1; d <= 1; d++) {
            expect_i64(p + d);
            expect_i64(-(p + d));
        }
        if (k < 18)
            p *= 10;
    }
    expect_i64(INT64_MAX);
    expect_i64(INT64_MIN);
    expect_i64(INT64_MIN + 1);
    for (uint64_t x = 0x9e3779b97f4a7c15ULL, i = 0; i < 1000; i++)
        expect_i64((int64_t)(x = x * 6364136223846793005ULL + 1442695040888963407ULL));
}

static void test_u64(void **state) {
    (void)state;
    char got[DECIMAL_MAX];
    assert_int_equal(decimal_format(got, false, UINT64_MAX), 20);
    assert_string_equal(got, "18446744073709551615");
    assert_int_equal(decimal_format(got, true, (uint64_t)INT64_MAX + 1), 20);
    assert_string_equal(got, "-9223372036854775808");
    assert_int_equal(decimal_format(got, false, 0), 1);
    assert_string_equal(got, "0");
    /* 10^19 and its neighbours: only uint64 holds them */
    assert_int_equal(decimal_format(got, false, 10000000000000000000ULL), 20);
    assert_string_equal(got, "10000000000000000000");
    assert_int_equal(decimal_format(got, false, 9999999999999999999ULL), 19);
    assert_string_equal(got, "9999999999999999999");
    assert_int_equal(decimal_format(got, false, 10000000000000000001ULL), 20);
    assert_string_equal(got, "10000000000000000001");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64),
        cmocka_unit_test(test_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
