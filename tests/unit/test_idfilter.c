/* test_idfilter.c -- idfilter.c: no id added is ever missed, across the
 * filters of a slice; the false positive rate; which slices a wall clock
 * asks; expiry frees and stops vouching for the walls that asked the dropped
 * slices; a budget exceeded loses the slice (not vouched for until it leaves
 * the horizon) instead of missing ids; a slice sized from the one before;
 * a filter of 2 MiB or more mapped in 2 MiB steps, zeroed; the next filter
 * of a slice and the next slice's first made ahead, within the budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "idfilter.h"

#define SLICE 60000
#define HORIZON 120000
#define W0 (INT64_C(1700000000000) / SLICE * SLICE + 1000) /* early in a slice */

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void add_n(idfilter *f, uint64_t seed, size_t n, int64_t wall) {
    for (size_t i = 0; i < n; i++)
        idfilter_add(f, rnd(&seed), wall);
}

static size_t count_maybe(const idfilter *f, uint64_t seed, size_t n, int64_t wall) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += idfilter_maybe(f, rnd(&seed), wall, HORIZON);
    return k;
}

static void test_no_id_missed_across_filters(void **state) {
    (void)state;
    idfilter *f = idfilter_new(64u << 20, W0);
    assert_non_null(f);
    assert_int_equal(idfilter_since(f), W0);
    assert_false(idfilter_maybe(f, 42, W0, HORIZON));
    add_n(f, 1, 400000, W0); /* 64 Ki, then 256 Ki, then 1 Mi ids */
    assert_int_equal(count_maybe(f, 1, 400000, W0 + 1000), 400000);
    size_t fp = count_maybe(f, 2, 100000, W0 + 1000);
    assert_true(fp > 0);
    assert_true(fp < 1500); /* < 1.5% */
    size_t bytes = idfilter_bytes(f);
    assert_true(bytes >= 400000 * 12 / 8);
    assert_true(bytes <= (65536 + 262144 + 1048576) * 12 / 8 + 64 * 3);
    idfilter_destroy(&f);
    assert_null(f);
}

static void test_walls_ask_the_live_slices(void **state) {
    (void)state;
    idfilter *f = idfilter_new(64u << 20, W0);
    idfilter_add(f, 7, W0);
    idfilter_add(f, 8, W0 + SLICE);
    assert_true(idfilter_maybe(f, 7, W0 + SLICE, HORIZON));
    assert_true(idfilter_maybe(f, 7, W0 + HORIZON, HORIZON)); /* the oldest live slice */
    assert_false(idfilter_maybe(f, 7, W0 + HORIZON + SLICE, HORIZON));
    assert_true(idfilter_maybe(f, 8, W0 + HORIZON + SLICE, HORIZON));
    assert_false(idfilter_maybe(f, 8, W0, HORIZON)); /* a slice after the wall's */
    idfilter_destroy(&f);
}

static void test_expiry_frees_and_stops_vouching(void **state) {
    (void)state;
    idfilter *f = idfilter_new(64u << 20, W0);
    assert_true(idfilter_covers(f, W0 - 10 * SLICE, HORIZON)); /* nothing sent before */
    add_n(f, 3, 1000, W0);
    size_t one = idfilter_bytes(f);
    add_n(f, 4, 1000, W0 + SLICE);
    assert_int_equal(idfilter_bytes(f), 2 * one);
    idfilter_expire(f, W0 + HORIZON, HORIZON); /* W0's slice is still live */
    assert_int_equal(idfilter_bytes(f), 2 * one);
    idfilter_expire(f, W0 + HORIZON + SLICE, HORIZON);
    assert_int_equal(idfilter_bytes(f), one);
    assert_int_equal(count_maybe(f, 4, 1000, W0 + 2 * SLICE), 1000);
    /* a commit asking the dropped slice (a clock stepped back) is not vouched for */
    assert_false(idfilter_covers(f, W0 + HORIZON, HORIZON));
    assert_true(idfilter_covers(f, W0 + HORIZON + SLICE, HORIZON));
    idfilter_add(f, 9, W0); /* nor kept */
    assert_int_equal(idfilter_bytes(f), one);
    idfilter_destroy(&f);
}

static void test_budget_loses_the_slice(void **state) {
    (void)state;
    /* room for the first filter of a slice (64 Ki ids, 96 KiB), not a second */
    idfilter *f = idfilter_new(100 * 1024, W0);
    add_n(f, 5, 65536, W0);
    assert_true(idfilter_covers(f, W0, HORIZON));
    assert_int_equal(count_maybe(f, 5, 65536, W0), 65536);
    idfilter_add(f, 1, W0); /* no room: not held, so the slice is lost */
    assert_int_equal(idfilter_bytes(f), 0);
    assert_false(idfilter_covers(f, W0, HORIZON));
    assert_false(idfilter_covers(f, W0 + HORIZON, HORIZON)); /* still live */
    assert_true(idfilter_covers(f, W0 + HORIZON + SLICE, HORIZON));
    idfilter_add(f, 2, W0 + SLICE); /* the next slice is held */
    assert_true(idfilter_maybe(f, 2, W0 + SLICE, HORIZON));
    idfilter_destroy(&f);
}

static void test_slice_sized_from_the_one_before(void **state) {
    (void)state;
    idfilter *f = idfilter_new(64u << 20, W0);
    add_n(f, 6, 300000, W0);
    size_t before = idfilter_bytes(f);
    idfilter_add(f, 1, W0 + SLICE);
    /* 5/4 of 300,000 ids at 12 bits each, in one filter */
    assert_true(idfilter_bytes(f) - before >= 375000 * 12 / 8);
    add_n(f, 7, 300000, W0 + SLICE);
    assert_int_equal(count_maybe(f, 7, 300000, W0 + SLICE), 300000);
    idfilter_destroy(&f);
}

static void test_large_filters_mapped_in_huge_pages(void **state) {
    (void)state;
    idfilter *f = idfilter_new(64u << 20, W0);
    add_n(f, 8, 2000000, W0);
    size_t before = idfilter_bytes(f);
    /* 64 Ki, 256 Ki and 1 Mi ids from calloc, then 4 Mi ids: 6 MiB mapped */
    assert_int_equal(before, (65536 + 262144 + 1048576) * 12 / 8 + (6u << 20));
    add_n(f, 9, 2000000, W0 + SLICE);
    /* 5/4 of 2,000,000 ids at 12 bits each, 3.58 MiB, in 2 MiB pages */
    assert_int_equal(idfilter_bytes(f) - before, 4u << 20);
    assert_int_equal(count_maybe(f, 9, 2000000, W0 + SLICE), 2000000);
    size_t fp = count_maybe(f, 10, 100000, W0 + SLICE); /* zeroed: few false positives */
    assert_true(fp < 3000); /* < 1.5% in each of the two slices asked */
    idfilter_expire(f, W0 + HORIZON + SLICE, HORIZON);
    assert_int_equal(idfilter_bytes(f), 4u << 20);
    idfilter_destroy(&f);
}

static void test_growth_made_ahead(void **state) {
    (void)state;
    idfilter *f = idfilter_new(64u << 20, W0);
    add_n(f, 11, 32767, W0);
    idfilter_prepare(f, W0);
    assert_int_equal(idfilter_bytes(f), 65536 * 12 / 8); /* under half full */
    idfilter_add(f, 1, W0);
    idfilter_prepare(f, W0);
    /* half full: the next, 4 times larger, made now */
    assert_int_equal(idfilter_bytes(f), (65536 + 262144) * 12 / 8);
    add_n(f, 12, 40000, W0); /* past the first: into the one made ahead */
    idfilter_prepare(f, W0);
    assert_int_equal(idfilter_bytes(f), (65536 + 262144) * 12 / 8);
    assert_true(idfilter_maybe(f, 1, W0, HORIZON));
    assert_int_equal(count_maybe(f, 11, 32767, W0), 32767);
    assert_int_equal(count_maybe(f, 12, 40000, W0), 40000);
    idfilter_destroy(&f);
}

static void test_next_slice_made_ahead(void **state) {
    (void)state;
    int64_t start = W0 / SLICE * SLICE;
    idfilter *f = idfilter_new(64u << 20, W0);
    add_n(f, 13, 200000, start + 40000);
    idfilter_prepare(f, start + 40000); /* too early for the next slice */
    size_t one = idfilter_bytes(f);
    idfilter_prepare(f, start + 50000);
    /* 200,000 ids in 50 s: 240,000 a slice, x 5/4 */
    size_t next = (300000 * 12 + 511) / 512 * 64;
    assert_int_equal(idfilter_bytes(f), one + next);
    idfilter_prepare(f, start + 59000);
    assert_int_equal(idfilter_bytes(f), one + next); /* made once */
    add_n(f, 14, 1000, start + SLICE); /* the next slice takes it */
    assert_int_equal(idfilter_bytes(f), one + next);
    assert_int_equal(count_maybe(f, 14, 1000, start + SLICE), 1000);
    assert_int_equal(count_maybe(f, 13, 200000, start + SLICE), 200000);
    idfilter_destroy(&f);
}

static void test_made_ahead_within_the_budget(void **state) {
    (void)state;
    idfilter *f = idfilter_new(100 * 1024, W0); /* one filter of 64 Ki ids */
    add_n(f, 15, 40000, W0);
    idfilter_prepare(f, W0);
    idfilter_prepare(f, W0 / SLICE * SLICE + 55000);
    assert_int_equal(idfilter_bytes(f), 65536 * 12 / 8); /* nothing past it */
    assert_true(idfilter_covers(f, W0, HORIZON));          /* and nothing lost */
    idfilter_destroy(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_id_missed_across_filters),
        cmocka_unit_test(test_walls_ask_the_live_slices),
        cmocka_unit_test(test_expiry_frees_and_stops_vouching),
        cmocka_unit_test(test_budget_loses_the_slice),
        cmocka_unit_test(test_slice_sized_from_the_one_before),
        cmocka_unit_test(test_large_filters_mapped_in_huge_pages),
        cmocka_unit_test(test_growth_made_ahead),
        cmocka_unit_test(test_next_slice_made_ahead),
        cmocka_unit_test(test_made_ahead_within_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
