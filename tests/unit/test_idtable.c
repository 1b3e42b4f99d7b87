/* test_idtable.c -- idtable.c: ids added are found and counted once, ids
 * never added are not found (it is exact), id 0 works, a table fills to
 * its room with every id still found, and idtable_valid refuses what is
 * not a table: another magic, a length that is no power of 2 of slots, a
 * count past its room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "idtable.h"

static unsigned char *table_new(uint64_t slots, size_t *len) {
    *len = idtable_bytes(slots);
    unsigned char *buf = calloc(1, *len);
    assert_non_null(buf);
    idtable_init(buf);
    return buf;
}

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void test_add_has_count(void **state) {
    (void)state;
    size_t len;
    unsigned char *t = table_new(64, &len);
    assert_true(idtable_valid(t, len));
    assert_int_equal(idtable_slots(len), 64);
    assert_false(idtable_has(t, len, 42));
    assert_int_equal(1, idtable_add(t, len, 42));
    assert_int_equal(0, idtable_add(t, len, 42));
    assert_int_equal(1, idtable_add(t, len, UINT64_MAX));
    assert_int_equal(1, idtable_add(t, len, 0));
    assert_true(idtable_has(t, len, 0));
    assert_true(idtable_has(t, len, IDTABLE_ZERO)); /* the two are one id */
    assert_int_equal(0, idtable_add(t, len, IDTABLE_ZERO));
    assert_true(idtable_has(t, len, 42) && idtable_has(t, len, UINT64_MAX));
    assert_false(idtable_has(t, len, 43));
    assert_int_equal(idtable_count(t), 3);
    free(t);
}

static void test_fills_to_its_room_exactly(void **state) {
    (void)state;
    size_t len;
    unsigned char *t = table_new(4096, &len);
    uint64_t room = idtable_room(4096), s = 1;
    assert_int_equal(room, 3072);
    uint64_t *ids = malloc(room * sizeof *ids);
    assert_non_null(ids);
    for (uint64_t i = 0; i < room; i++) {
        ids[i] = rnd(&s);
        assert_int_equal(1, idtable_add(t, len, ids[i])); /* 2^-64 a collision */
    }
    assert_int_equal(idtable_count(t), room);
    assert_true(idtable_valid(t, len));
    for (uint64_t i = 0; i < room; i++)
        assert_true(idtable_has(t, len, ids[i]));
    uint64_t found = 0;
    for (uint64_t i = 0; i < 100000; i++)
        found += idtable_has(t, len, rnd(&s));
    assert_int_equal(found, 0);
    /* adjacent values, which a weak mix would pile into one run of slots */
    unsigned char *u = table_new(4096, &len);
    for (uint64_t i = 1; i <= room; i++)
        assert_int_equal(1, idtable_add(u, len, i));
    for (uint64_t i = 1; i <= room; i++)
        assert_true(idtable_has(u, len, i));
    assert_false(idtable_has(u, len, room + 1));
    free(u);
    free(ids);
    free(t);
}

static void test_any_number_of_slots(void **state) {
    (void)state;
    size_t len;
    unsigned char *t = table_new(1000, &len); /* not a power of 2 */
    uint64_t room = idtable_room(1000), s = 3;
    assert_int_equal(room, 750);
    uint64_t *ids = malloc(room * sizeof *ids);
    assert_non_null(ids);
    for (uint64_t i = 0; i < room; i++)
        assert_int_equal(1, idtable_add(t, len, ids[i] = rnd(&s)));
    for (uint64_t i = 0; i < room; i++)
        assert_true(idtable_has(t, len, ids[i]));
    for (uint64_t i = 0; i < 10000; i++)
        assert_false(idtable_has(t, len, rnd(&s)));
    /* filled to the last slot: the probe wraps from slot 999 to 0 */
    for (uint64_t i = 0; idtable_count(t) < 1000; i++)
        assert_true(idtable_add(t, len, rnd(&s)) >= 0);
    assert_int_equal(idtable_add(t, len, rnd(&s)), -1);
    free(ids);
    free(t);
}

static void test_valid_refuses_what_is_not_a_table(void **state) {
    (void)state;
    size_t len;
    unsigned char *t = table_new(64, &len);
    assert_false(idtable_valid(t, len - 8));  /* 63 slots */
    assert_false(idtable_valid(t, 8));        /* shorter than the header */
    unsigned char *big = table_new(128, &len);
    assert_false(idtable_valid(big, idtable_bytes(96) + 4)); /* not whole slots */
    assert_true(idtable_valid(big, idtable_bytes(96))); /* any count of slots */
    free(big);
    len = idtable_bytes(64);
    t[0] = 'N';
    assert_false(idtable_valid(t, len));
    t[0] = 'n';
    assert_true(idtable_valid(t, len));
    uint64_t over = idtable_limit(64) + 1;
    memcpy(t + 8, &over, 8);
    assert_false(idtable_valid(t, len));
    /* a table someone else filled: every slot taken, the count small */
    for (size_t off = IDTABLE_HEADER; off < len; off++)
        t[off] = 0xab;
    memset(t + 8, 0, 8);
    assert_true(idtable_valid(t, len));
    assert_false(idtable_has(t, len, 7));      /* probes every slot, then stops */
    assert_int_equal(idtable_add(t, len, 7), -1);
    unsigned char hdr[IDTABLE_HEADER + 32 * 8] = {0};
    idtable_init(hdr);
    assert_false(idtable_valid(hdr, sizeof hdr)); /* under IDTABLE_MIN_SLOTS */
    free(t);
}

static void test_slot_bounds(void **state) {
    (void)state;
    assert_true(idtable_slots_ok(64) && idtable_slots_ok(IDTABLE_MAX_SLOTS));
    assert_true(idtable_slots_ok(96) && idtable_slots_ok(1000003));
    assert_false(idtable_slots_ok(32) || idtable_slots_ok(0));
    assert_false(idtable_slots_ok(IDTABLE_MAX_SLOTS * 2));
    assert_int_equal(idtable_bytes(64), 16 + 512);
    assert_int_equal(idtable_room(64), 48);
    assert_int_equal(idtable_limit(64), 56);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_has_count),
        cmocka_unit_test(test_fills_to_its_room_exactly),
        cmocka_unit_test(test_any_number_of_slots),
        cmocka_unit_test(test_valid_refuses_what_is_not_a_table),
        cmocka_unit_test(test_slot_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
