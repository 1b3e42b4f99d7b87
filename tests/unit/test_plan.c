/* test_plan.c -- plan.c on hand-built batches: creator grouping, run cuts
 * (bucket, followers), rejected items, repeated ids and request ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "plan.h"

#define HOUR_MS 3600000LL
#define H10 (10 * HOUR_MS) /* start of hour 10 */

#define S(lit) {.ptr = (lit), .len = sizeof(lit) - 1}
/* An accepted event: creator c, time t, follower count f (-1: absent), id. */
#define EVF(c, t, f, i)                                                        \
    {.reason = REJECT_NONE,                                                    \
     .ev = {.creator = c, .id = i, .ts = (t), .n = 1, .followers = (f),        \
            .type = EV_LIKE, .sponsored = -1}}
#define EV(c, t) EVF(S(c), t, -1, {0})
#define REJ(why, c, t)                                                         \
    {.reason = (why),                                                          \
     .ev = {.creator = S(c), .ts = (t), .n = 1, .followers = -1,               \
            .type = EV_LIKE, .sponsored = -1}}

static batch make_batch(decode_item *items, size_t n_items, batch_unit *units,
                        size_t n_units) {
    return (batch){.items = items, .n_items = n_items, .cap_items = n_items,
                   .units = units, .n_units = n_units, .cap_units = n_units};
}

static void assert_order(const plan *p, const uint32_t *want, size_t n) {
    assert_int_equal(p->n_events, n);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(p->order[k], want[k]);
}

static void assert_run(const plan *p, size_t r, size_t first, size_t n) {
    assert_true(r < p->n_runs);
    assert_int_equal(p->runs[r].first, first);
    assert_int_equal(p->runs[r].n, n);
}

static void assert_event(const plan *p, size_t k, const decode_item *it,
                         uint32_t unit, uint32_t item) {
    assert_ptr_equal(p->events[k].ev, &it->ev);
    assert_int_equal(p->events[k].unit, unit);
    assert_int_equal(p->events[k].item, item);
}

/* Creators a, b, a, c, b: the two a's point at different bytes (so creators
 * compare by content, not pointer) and c = "ab" shares a's prefix. */
static void test_interleaved_creators(void **state) {
    static const char names[] = "a b a ab b";
    decode_item items[] = {
        EVF(((strref){names + 0, 1}), H10 + 1, -1, {0}),
        EVF(((strref){names + 2, 1}), H10 + 2, -1, {0}),
        EVF(((strref){names + 4, 1}), H10 + 3, -1, {0}),
        EVF(((strref){names + 6, 2}), H10 + 4, -1, {0}),
        EVF(((strref){names + 9, 1}), H10 + 5, -1, {0}),
    };
    batch_unit units[] = {{.first_item = 0, .n_items = 5}};
    batch b = make_batch(items, 5, units, 1);
    plan p;

    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    assert_int_equal(p.n_events, 5);
    for (uint32_t i = 0; i < 5; i++) {
        assert_event(&p, i, &items[i], 0, i);
        assert_int_equal(p.events[i].bucket, 10);
    }
    assert_order(&p, (const uint32_t[]){0, 2, 1, 4, 3}, 5);
    assert_int_equal(p.n_runs, 3);
    assert_run(&p, 0, 0, 2); /* a: 0, 2 */
    assert_run(&p, 1, 2, 2); /* b: 1, 4 */
    assert_run(&p, 2, 4, 1); /* ab: 3 */
    assert_false(p.repeats);
    plan_free(&p);
}

/* Creators "a", "aa", ... "aaaaaaaa" (one buffer): prefixes stay apart. */
static void test_prefix_creators(void **state) {
    static const char as[] = "aaaaaaaa";
    decode_item items[8];
    batch_unit units[] = {{.first_item = 0, .n_items = 8}};
    batch b = make_batch(items, 8, units, 1);
    plan p;

    for (uint32_t i = 0; i < 8; i++)
        items[i] = (decode_item)EVF(((strref){as, i + 1}), H10 + i, -1, {0});
    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    assert_order(&p, (const uint32_t[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
    assert_int_equal(p.n_runs, 8);
    for (size_t r = 0; r < 8; r++)
        assert_run(&p, r, r, 1);
    plan_free(&p);
}

/* Hour 10, hour 10 (last ms), hour 11 (first ms), hour 11, back to hour 10. */
static void test_bucket_split(void **state) {
    decode_item items[] = {
        EV("a", H10 + 5),
        EV("a", H10 + HOUR_MS - 1),
        EV("a", H10 + HOUR_MS),
        EV("a", H10 + HOUR_MS + 7),
        EV("a", H10 + 9),
    };
    batch_unit units[] = {{.first_item = 0, .n_items = 5}};
    batch b = make_batch(items, 5, units, 1);
    plan p;

    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    assert_int_equal(p.events[1].bucket, 10);
    assert_int_equal(p.events[2].bucket, 11);
    assert_int_equal(p.events[4].bucket, 10);
    assert_order(&p, (const uint32_t[]){0, 1, 2, 3, 4}, 5);
    assert_int_equal(p.n_runs, 3);
    assert_run(&p, 0, 0, 2);
    assert_run(&p, 1, 2, 2);
    assert_run(&p, 2, 4, 1);
    plan_free(&p);
}

/* followers 0 counts as present: a new run, continued by events without. */
static void test_followers_split(void **state) {
    decode_item items[] = {
        EVF(S("a"), H10 + 1, -1, {0}), EVF(S("a"), H10 + 2, 500, {0}),
        EVF(S("a"), H10 + 3, -1, {0}), EVF(S("a"), H10 + 4, -1, {0}),
        EVF(S("a"), H10 + 5, 0, {0}),  EVF(S("a"), H10 + 6, -1, {0}),
    };
    batch_unit units[] = {{.first_item = 0, .n_items = 6}};
    batch b = make_batch(items, 6, units, 1);
    plan p;

    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    assert_order(&p, (const uint32_t[]){0, 1, 2, 3, 4, 5}, 6);
    assert_int_equal(p.n_runs, 3);
    assert_run(&p, 0, 0, 1);
    assert_run(&p, 1, 1, 3);
    assert_run(&p, 2, 4, 2);
    plan_free(&p);
}

/* Rejected items (creator z) never show up; unit/item index survive gaps. */
static void test_rejected_skipped(void **state) {
    decode_item items[] = {
        /* unit 0 */
        EV("a", H10 + 1), REJ(REJECT_BAD_TS, "z", H10 + 2), EV("b", H10 + 3),
        /* unit 1: rejected whole */
        REJ(REJECT_MALFORMED, "z", 0),
        /* unit 2 */
        REJ(REJECT_FUTURE, "z", H10 + 4), EV("a", H10 + 5), EV("c", H10 + 6),
        REJ(REJECT_BAD_ID, "a", H10 + 7),
    };
    batch_unit units[] = {
        {.first_item = 0, .n_items = 3},
        {.whole = true, .first_item = 3, .n_items = 1},
        {.first_item = 4, .n_items = 4},
    };
    batch b = make_batch(items, 8, units, 3);
    plan p;

    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    assert_int_equal(p.n_events, 4);
    assert_event(&p, 0, &items[0], 0, 0);
    assert_event(&p, 1, &items[2], 0, 2);
    assert_event(&p, 2, &items[5], 2, 1);
    assert_event(&p, 3, &items[6], 2, 2);
    assert_order(&p, (const uint32_t[]){0, 2, 1, 3}, 4);
    assert_int_equal(p.n_runs, 3);
    assert_run(&p, 0, 0, 2);
    assert_run(&p, 1, 2, 1);
    assert_run(&p, 2, 3, 1);
    plan_free(&p);
}

static bool repeats_of(decode_item *items, size_t n_items, batch_unit *units,
                       size_t n_units) {
    batch b = make_batch(items, n_items, units, n_units);
    plan p;
    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    bool r = p.repeats;
    plan_free(&p);
    return r;
}

static void test_repeats(void **state) {
    /* Distinct: ids x / xy / y, two events without id, two units without a
     * request id and two with distinct ones (r1 / r12). */
    decode_item distinct[] = {
        EVF(S("a"), H10, -1, S("x")), EVF(S("a"), H10, -1, S("xy")),
        EVF(S("b"), H10, -1, S("y")), EV("a", H10), EV("b", H10),
    };
    batch_unit du[] = {
        {.rid = "r1", .rid_len = 2, .first_item = 0, .n_items = 2},
        {.first_item = 2, .n_items = 1},
        {.first_item = 3, .n_items = 1},
        {.rid = "r12", .rid_len = 3, .first_item = 4, .n_items = 1},
    };
    assert_false(repeats_of(distinct, 5, du, 4));

    /* id "x" in unit 0 and again in unit 1 (other creator, other bytes). */
    static const char ids[] = "x x";
    decode_item same_id[] = {
        EVF(S("a"), H10, -1, ((strref){ids, 1})),
        EVF(S("a"), H10, -1, S("y")),
        EVF(S("b"), H10, -1, ((strref){ids + 2, 1})),
    };
    batch_unit su[] = {{.first_item = 0, .n_items = 2},
                       {.first_item = 2, .n_items = 1}};
    assert_true(repeats_of(same_id, 3, su, 2));
    batch_unit one[] = {{.first_item = 0, .n_items = 3}}; /* one unit too */
    assert_true(repeats_of(same_id, 3, one, 1));

    /* Distinct event ids, request id "req" in units 0 and 2. */
    decode_item rid_items[] = {
        EVF(S("a"), H10, -1, S("1")), EVF(S("a"), H10, -1, S("2")),
        EVF(S("a"), H10, -1, S("3")),
    };
    batch_unit ru[] = {
        {.rid = "req", .rid_len = 3, .first_item = 0, .n_items = 1},
        {.rid = "reqx", .rid_len = 4, .first_item = 1, .n_items = 1},
        {.rid = "req", .rid_len = 3, .first_item = 2, .n_items = 1},
    };
    assert_true(repeats_of(rid_items, 3, ru, 3));

    /* idh is the id's plan_id_hash. */
    batch b = make_batch(distinct, 5, du, 4);
    plan p;
    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    strref xy = S("xy");
    assert_true(p.events[1].idh == plan_id_hash(&xy));
    assert_true(p.events[0].idh != p.events[1].idh);
    plan_free(&p);
}

static void test_empty(void **state) {
    plan p;
    batch b = {0};

    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    assert_int_equal(p.n_events, 0);
    assert_int_equal(p.n_runs, 0);
    assert_false(p.repeats);
    plan_free(&p);
    plan_free(&p); /* zeroed by the first call */

    /* Units but every item rejected: nothing either. */
    decode_item items[] = {REJ(REJECT_MALFORMED, "a", 0)};
    batch_unit units[] = {{.whole = true, .first_item = 0, .n_items = 1},
                          {.first_item = 1, .n_items = 0}};
    b = make_batch(items, 1, units, 2);
    assert_int_equal(plan_build(&p, &b, HOUR_MS), 0);
    assert_int_equal(p.n_events, 0);
    assert_int_equal(p.n_runs, 0);
    assert_false(p.repeats);
    plan_free(&p);

    plan z = {0};
    plan_free(&z);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleaved_creators),
        cmocka_unit_test(test_prefix_creators),
        cmocka_unit_test(test_bucket_split),
        cmocka_unit_test(test_followers_split),
        cmocka_unit_test(test_rejected_skipped),
        cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
