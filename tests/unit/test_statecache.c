/* test_statecache.c -- statecache.c: get/put copy and replace values, the
 * byte accounts follow value lengths, drop and clear, a budget of 0 holds
 * nothing, touch makes a key blind until a put as of that commit, rotation
 * keeps the bytes bounded and keeps only what is read once per rotation,
 * pointers from get survive puts and promotion, hash table growth, and keys
 * with NUL bytes or differing only in length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "statecache.h"

/* get with a NUL-terminated key; *len is poisoned first so that a hit must
 * write it. */
static const char *get_s(state_cache *c, const char *key, size_t *len, bool *blind) {
    *len = (size_t)-1;
    return state_cache_get(c, key, strlen(key), len, blind);
}

static int put_s(state_cache *c, const char *key, const char *val, uint64_t seq) {
    return state_cache_put(c, key, strlen(key), val, strlen(val), seq);
}

/* key holds exactly the len bytes val. */
static void assert_holds(state_cache *c, const char *key, size_t klen, const char *val,
                         size_t len) {
    size_t got_len = (size_t)-1;
    bool blind = true;
    const char *p = state_cache_get(c, key, klen, &got_len, &blind);
    assert_non_null(p);
    assert_false(blind);
    assert_int_equal(got_len, len);
    assert_memory_equal(p, val, len);
}

static void assert_misses(state_cache *c, const char *key, size_t klen) {
    size_t len = 0;
    bool blind = true;
    assert_null(state_cache_get(c, key, klen, &len, &blind));
    assert_false(blind);
}

/* What the public accounts say an entry costs besides its key and value,
 * and what the slot array of a fresh (one-entry) table costs, measured on a
 * fresh cache from two puts of equal sizes. */
static void measure(size_t *overhead, size_t *slots0) {
    state_cache *c = state_cache_new(1 << 20);
    assert_non_null(c);
    assert_int_equal(state_cache_put(c, "k1", 2, "0123456789", 10, 1), 0);
    size_t b1 = state_cache_bytes(c);
    assert_int_equal(state_cache_put(c, "k2", 2, "0123456789", 10, 1), 0);
    size_t b2 = state_cache_bytes(c);
    assert_true(b2 > b1);
    size_t cost = b2 - b1; /* overhead + 2 + 10 */
    assert_true(cost >= 12);
    *overhead = cost - 12;
    assert_true(b1 >= cost);
    *slots0 = b1 - cost;
    state_cache_destroy(&c);
    assert_null(c);
}

/* Force a rotation: a filler entry worth the whole budget in the young
 * generation, then trim. Everything before it is then old. */
static void rotate(state_cache *c, size_t max, int n) {
    char key[32];
    char *big = malloc(max);
    assert_non_null(big);
    memset(big, 'F', max);
    snprintf(key, sizeof key, "__filler%d", n);
    assert_int_equal(state_cache_put(c, key, strlen(key), big, max, 1), 0);
    free(big);
    state_cache_trim(c);
}

static void test_empty_get_misses(void **state) {
    (void)state;
    state_cache *c = state_cache_new(4096);
    assert_non_null(c);
    size_t len;
    bool blind = true;
    assert_null(get_s(c, "nobody", &len, &blind));
    assert_false(blind);
    assert_int_equal(state_cache_entries(c), 0);
    assert_int_equal(state_cache_bytes(c), 0);
    /* a miss makes nothing */
    assert_null(get_s(c, "nobody", &len, &blind));
    assert_int_equal(state_cache_entries(c), 0);
    state_cache_destroy(&c);
    assert_null(c);
    state_cache_destroy(&c); /* NULL is fine */
    state_cache_destroy(NULL);
}

static void test_put_then_get_returns_a_copy(void **state) {
    (void)state;
    state_cache *c = state_cache_new(4096);
    char key[] = "creator:1";
    char val[] = "state\0with\0nuls"; /* 15 bytes, NULs included */
    size_t vlen = sizeof val - 1;
    assert_int_equal(state_cache_put(c, key, strlen(key), val, vlen, 1), 0);
    assert_int_equal(state_cache_entries(c), 1);
    assert_holds(c, "creator:1", 9, "state\0with\0nuls", vlen);

    /* the caller's buffers are its own again after put */
    memset(val, 'X', vlen);
    memset(key, 'Y', strlen(key));
    assert_holds(c, "creator:1", 9, "state\0with\0nuls", vlen);
    assert_misses(c, key, 9);

    /* the returned pointer is not the caller's buffer */
    size_t len;
    bool blind;
    assert_true(get_s(c, "creator:1", &len, &blind) != val);

    /* an empty value is a value, not a miss */
    assert_int_equal(state_cache_put(c, "empty", 5, "", 0, 1), 0);
    const char *p = get_s(c, "empty", &len, &blind);
    assert_non_null(p);
    assert_false(blind);
    assert_int_equal(len, 0);
    state_cache_destroy(&c);
}

static void test_put_replaces_and_accounts(void **state) {
    (void)state;
    state_cache *c = state_cache_new(1 << 20);
    char v50[50];
    memset(v50, 'b', sizeof v50);

    assert_int_equal(state_cache_put(c, "k", 1, "aaaaaaaaaa", 10, 1), 0);
    size_t b10 = state_cache_bytes(c);
    assert_true(b10 >= 1 + 10);
    assert_int_equal(state_cache_entries(c), 1);

    assert_int_equal(state_cache_put(c, "k", 1, v50, 50, 2), 0);
    assert_int_equal(state_cache_entries(c), 1);
    assert_int_equal(state_cache_bytes(c), b10 + 40);
    assert_holds(c, "k", 1, v50, 50);

    assert_int_equal(state_cache_put(c, "k", 1, "ccccc", 5, 3), 0);
    assert_int_equal(state_cache_entries(c), 1);
    assert_int_equal(state_cache_bytes(c), b10 - 5);
    assert_holds(c, "k", 1, "ccccc", 5);

    assert_int_equal(state_cache_put(c, "k", 1, "", 0, 4), 0);
    assert_int_equal(state_cache_entries(c), 1);
    assert_int_equal(state_cache_bytes(c), b10 - 10);

    assert_int_equal(state_cache_put(c, "k", 1, "aaaaaaaaaa", 10, 5), 0);
    assert_int_equal(state_cache_bytes(c), b10);

    /* a second key costs what the first did, less its slots */
    size_t overhead, slots0;
    measure(&overhead, &slots0);
    assert_int_equal(b10, slots0 + overhead + 1 + 10);
    assert_int_equal(state_cache_put(c, "j", 1, "aaaaaaaaaa", 10, 1), 0);
    assert_int_equal(state_cache_entries(c), 2);
    assert_int_equal(state_cache_bytes(c), b10 + overhead + 1 + 10);

    /* replacing a value of an old-generation key keeps the accounts too */
    rotate(c, 1 << 20, 0); /* k, j, filler now old */
    size_t before = state_cache_bytes(c);
    assert_int_equal(state_cache_put(c, "k", 1, v50, 50, 6), 0);
    /* k moved young (one fresh slot array) and grew by 40 */
    assert_int_equal(state_cache_bytes(c), before + slots0 + 40);
    assert_int_equal(state_cache_entries(c), 3);
    assert_holds(c, "k", 1, v50, 50);
    state_cache_destroy(&c);
}

static void test_drop_from_either_generation(void **state) {
    (void)state;
    size_t max = 4096;
    state_cache *c = state_cache_new(max);
    assert_int_equal(put_s(c, "A", "value-a", 1), 0);
    assert_int_equal(put_s(c, "B", "value-b", 1), 0);
    rotate(c, max, 0); /* A, B and filler are old */
    assert_int_equal(put_s(c, "C", "value-c", 1), 0); /* young */
    assert_int_equal(state_cache_entries(c), 4);

    size_t before = state_cache_bytes(c);
    state_cache_drop(c, "A", 1); /* from the old generation */
    assert_int_equal(state_cache_entries(c), 3);
    assert_true(state_cache_bytes(c) < before);
    assert_misses(c, "A", 1);

    before = state_cache_bytes(c);
    state_cache_drop(c, "C", 1); /* from the young generation */
    assert_int_equal(state_cache_entries(c), 2);
    assert_true(state_cache_bytes(c) < before);
    assert_misses(c, "C", 1);

    /* dropping what is not there changes nothing */
    before = state_cache_bytes(c);
    state_cache_drop(c, "A", 1);
    state_cache_drop(c, "nobody", 6);
    assert_int_equal(state_cache_entries(c), 2);
    assert_int_equal(state_cache_bytes(c), before);

    assert_holds(c, "B", 1, "value-b", 7);

    /* a dropped key can be put again */
    assert_int_equal(put_s(c, "A", "again", 2), 0);
    assert_holds(c, "A", 1, "again", 5);
    state_cache_destroy(&c);
}

static void test_clear_empties(void **state) {
    (void)state;
    size_t max = 4096;
    state_cache *c = state_cache_new(max);
    assert_int_equal(put_s(c, "old", "o", 1), 0);
    rotate(c, max, 0);
    assert_int_equal(put_s(c, "young", "y", 1), 0);
    state_cache_touch(c, "blind", 5, 9);
    assert_true(state_cache_entries(c) >= 3);
    assert_true(state_cache_bytes(c) > 0);

    state_cache_clear(c);
    assert_int_equal(state_cache_entries(c), 0);
    assert_int_equal(state_cache_bytes(c), 0);
    assert_misses(c, "old", 3);
    assert_misses(c, "young", 5);
    assert_misses(c, "blind", 5); /* not blind either: forgotten */

    /* still usable */
    assert_int_equal(put_s(c, "young", "again", 2), 0);
    assert_holds(c, "young", 5, "again", 5);
    assert_int_equal(state_cache_entries(c), 1);
    state_cache_clear(c);
    state_cache_clear(c); /* twice is fine */
    assert_int_equal(state_cache_bytes(c), 0);
    state_cache_destroy(&c);
}

static void test_zero_budget_holds_nothing(void **state) {
    (void)state;
    state_cache *c = state_cache_new(0);
    assert_non_null(c);
    assert_int_equal(put_s(c, "k", "value", 1), 0);
    assert_misses(c, "k", 1);
    state_cache_touch(c, "k", 1, 2);
    assert_misses(c, "k", 1); /* not blind: not known at all */
    assert_int_equal(state_cache_entries(c), 0);
    assert_int_equal(state_cache_bytes(c), 0);
    state_cache_trim(c);
    assert_int_equal(state_cache_bytes(c), 0);
    state_cache_drop(c, "k", 1);
    state_cache_destroy(&c);
}

static void test_touch_makes_blind_until_put(void **state) {
    (void)state;
    state_cache *c = state_cache_new(4096);
    size_t len;
    bool blind = false;

    state_cache_touch(c, "k", 1, 5); /* commit 5 sent, no state known */
    assert_null(get_s(c, "k", &len, &blind));
    assert_true(blind);
    assert_int_equal(state_cache_entries(c), 1);

    assert_int_equal(put_s(c, "k", "as-of-4", 4), 0); /* a stale reply */
    blind = false;
    assert_null(get_s(c, "k", &len, &blind));
    assert_true(blind);

    assert_int_equal(put_s(c, "k", "as-of-5", 5), 0);
    assert_holds(c, "k", 1, "as-of-5", 7);

    state_cache_touch(c, "k", 1, 3); /* an older seq changes nothing */
    assert_holds(c, "k", 1, "as-of-5", 7);

    state_cache_touch(c, "k", 1, 6);
    blind = false;
    assert_null(get_s(c, "k", &len, &blind));
    assert_true(blind);

    assert_int_equal(put_s(c, "k", "as-of-7", 7), 0);
    assert_holds(c, "k", 1, "as-of-7", 7);

    /* an untouched, unknown key is a plain miss */
    blind = true;
    assert_null(get_s(c, "other", &len, &blind));
    assert_false(blind);
    state_cache_destroy(&c);
}

static void test_rotation_keeps_only_what_is_read(void **state) {
    (void)state;
    size_t max = 4096;
    state_cache *c = state_cache_new(max);

    /* put before a rotation and unread after it: gone at the next one */
    assert_int_equal(put_s(c, "cold", "c", 1), 0);
    assert_int_equal(put_s(c, "warm", "w", 1), 0);
    rotate(c, max, 0); /* cold, warm now old */
    assert_holds(c, "warm", 4, "w", 1); /* read: young again */
    assert_int_equal(put_s(c, "once", "o", 1), 0);
    rotate(c, max, 1); /* cold dropped with the old generation */
    assert_misses(c, "cold", 4);
    assert_misses(c, "__filler0", 9);
    assert_holds(c, "once", 4, "o", 1); /* one rotation unread: still there */
    assert_holds(c, "warm", 4, "w", 1);
    rotate(c, max, 2);
    assert_holds(c, "warm", 4, "w", 1);
    rotate(c, max, 3);
    assert_holds(c, "warm", 4, "w", 1); /* read once per rotation: stays */
    rotate(c, max, 4);
    rotate(c, max, 5); /* two rotations unread */
    assert_misses(c, "warm", 4);
    assert_misses(c, "once", 4);
    /* the rotations left at most the last filler */
    assert_true(state_cache_entries(c) <= 1);
    state_cache_destroy(&c);
}

static void test_rotation_bounds_bytes(void **state) {
    (void)state;
    enum { VLEN = 100, N = 3000 };
    size_t max = 8192;
    size_t overhead, slots0;
    measure(&overhead, &slots0);
    size_t klen = 9; /* "key-%05d" */
    size_t cost = overhead + klen + VLEN;
    size_t per_gen = (max / 2) / cost; /* distinct keys a generation takes */
    assert_true(per_gen >= 4);
    size_t every = per_gen / 2; /* read the hot key more than once per rotation */
    /* each generation holds at most half the budget plus the entry that
     * tipped it, and has a fresh table's slots (it never holds 64 keys) */
    assert_true(per_gen + 2 < 64);
    size_t bound = max + 2 * (overhead + 16 + VLEN) + 2 * slots0;

    state_cache *c = state_cache_new(max);
    char val[VLEN], key[32];
    assert_int_equal(put_s(c, "hot", "hot-value", 1), 0);
    size_t max_seen = 0, rotations = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%05d", i);
        memset(val, 'a' + i % 26, VLEN);
        assert_int_equal(state_cache_put(c, key, strlen(key), val, VLEN, (uint64_t)i), 0);
        size_t b = state_cache_bytes(c);
        assert_true(b <= bound);
        if (b > max_seen)
            max_seen = b;
        size_t n_before = state_cache_entries(c);
        state_cache_trim(c);
        assert_true(state_cache_bytes(c) <= bound);
        if (state_cache_entries(c) < n_before)
            rotations++;
        assert_true(state_cache_entries(c) <= 2 * (per_gen + 2));
        if (i % every == 0)
            assert_holds(c, "hot", 3, "hot-value", 9);
    }
    /* the budget was actually used, and generations actually turned */
    assert_true(max_seen >= max / 2);
    assert_true(rotations >= N / (2 * per_gen));
    assert_holds(c, "hot", 3, "hot-value", 9);

    /* the recent keys are there with their values; the early ones gone */
    snprintf(key, sizeof key, "key-%05d", N - 1);
    memset(val, 'a' + (N - 1) % 26, VLEN);
    assert_holds(c, key, strlen(key), val, VLEN);
    size_t misses = 0;
    for (int i = 0; i < N - (int)(4 * per_gen); i++) {
        snprintf(key, sizeof key, "key-%05d", i);
        size_t len;
        bool blind;
        if (!state_cache_get(c, key, strlen(key), &len, &blind))
            misses++;
    }
    assert_int_equal(misses, (size_t)(N - 4 * per_gen));
    state_cache_destroy(&c);
}

static void test_pointers_survive_puts_and_promotion(void **state) {
    (void)state;
    size_t max = 4096;
    state_cache *c = state_cache_new(max);
    char key[32], val[32];
    size_t len;
    bool blind;

    assert_int_equal(put_s(c, "A", "alpha-value", 1), 0);
    const char *p = get_s(c, "A", &len, &blind);
    assert_non_null(p);
    /* many puts of others, no trim: the young table grows several times */
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "other-%d", i);
        snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(put_s(c, key, val, 1), 0);
    }
    assert_memory_equal(p, "alpha-value", 11);
    assert_holds(c, "A", 1, "alpha-value", 11);

    /* rotate: A is old; the get moves it young */
    rotate(c, max, 0);
    assert_int_equal(put_s(c, "B", "beta-value", 1), 0); /* young has a table */
    const char *q = get_s(c, "A", &len, &blind);
    assert_non_null(q);
    assert_int_equal(len, 11);
    const char *r = get_s(c, "B", &len, &blind);
    assert_non_null(r);
    /* puts of others, no trim: the young table grows again */
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "next-%d", i);
        snprintf(val, sizeof val, "w%d", i);
        assert_int_equal(put_s(c, key, val, 2), 0);
    }
    assert_memory_equal(q, "alpha-value", 11);
    assert_memory_equal(r, "beta-value", 10);
    /* and a get of something else old (a promotion) moves nothing else */
    const char *s = get_s(c, "other-7", &len, &blind);
    assert_non_null(s);
    assert_memory_equal(s, "v7", 2);
    assert_memory_equal(q, "alpha-value", 11);
    assert_holds(c, "A", 1, "alpha-value", 11);
    state_cache_destroy(&c);
}

static void test_many_keys_grow_the_table(void **state) {
    (void)state;
    enum { N = 10000 };
    state_cache *c = state_cache_new((size_t)1 << 30);
    char key[32], val[64];
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "creator:%d", i);
        int vl = snprintf(val, sizeof val, "state-%d-%.*s", i * 7, i % 13, "xxxxxxxxxxxxx");
        assert_int_equal(state_cache_put(c, key, (size_t)kl, val, (size_t)vl, (uint64_t)i), 0);
    }
    assert_int_equal(state_cache_entries(c), N);
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "creator:%d", i);
        int vl = snprintf(val, sizeof val, "state-%d-%.*s", i * 7, i % 13, "xxxxxxxxxxxxx");
        assert_holds(c, key, (size_t)kl, val, (size_t)vl);
    }
    assert_misses(c, "creator:10000", 13);
    assert_misses(c, "creator:", 8);

    /* drop the even ones: exactly those go */
    for (int i = 0; i < N; i += 2) {
        int kl = snprintf(key, sizeof key, "creator:%d", i);
        state_cache_drop(c, key, (size_t)kl);
    }
    assert_int_equal(state_cache_entries(c), N / 2);
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "creator:%d", i);
        int vl = snprintf(val, sizeof val, "state-%d-%.*s", i * 7, i % 13, "xxxxxxxxxxxxx");
        if (i % 2)
            assert_holds(c, key, (size_t)kl, val, (size_t)vl);
        else
            assert_misses(c, key, (size_t)kl);
    }
    state_cache_destroy(&c);
}

static void test_keys_with_nuls_and_lengths_are_distinct(void **state) {
    (void)state;
    static const struct {
        const char *k;
        size_t klen;
        const char *v;
        size_t vlen;
    } keys[] = {
        {"ab", 2, "v-ab", 4},         {"ab\0", 3, "v-ab0", 5},   {"ab\0\0", 4, "v\0ab00", 6},
        {"a\0b", 3, "v-a0b", 5},      {"\0ab", 3, "v-0ab", 5},   {"a", 1, "v-a", 3},
        {"", 0, "v-empty", 7},        {"\0", 1, "v-0", 3},
    };
    enum { NK = sizeof keys / sizeof keys[0] };
    state_cache *c = state_cache_new(1 << 20);
    for (size_t i = 0; i < NK; i++)
        assert_int_equal(state_cache_put(c, keys[i].k, keys[i].klen, keys[i].v, keys[i].vlen, 1), 0);
    assert_int_equal(state_cache_entries(c), NK);
    for (size_t i = 0; i < NK; i++)
        assert_holds(c, keys[i].k, keys[i].klen, keys[i].v, keys[i].vlen);
    assert_misses(c, "abc", 3);
    assert_misses(c, "ab\0\0\0", 5);

    state_cache_drop(c, "ab\0", 3);
    assert_int_equal(state_cache_entries(c), NK - 1);
    assert_misses(c, "ab\0", 3);
    for (size_t i = 0; i < NK; i++)
        if (i != 1)
            assert_holds(c, keys[i].k, keys[i].klen, keys[i].v, keys[i].vlen);
    state_cache_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_get_misses),
        cmocka_unit_test(test_put_then_get_returns_a_copy),
        cmocka_unit_test(test_put_replaces_and_accounts),
        cmocka_unit_test(test_drop_from_either_generation),
        cmocka_unit_test(test_clear_empties),
        cmocka_unit_test(test_zero_budget_holds_nothing),
        cmocka_unit_test(test_touch_makes_blind_until_put),
        cmocka_unit_test(test_rotation_keeps_only_what_is_read),
        cmocka_unit_test(test_rotation_bounds_bytes),
        cmocka_unit_test(test_pointers_survive_puts_and_promotion),
        cmocka_unit_test(test_many_keys_grow_the_table),
        cmocka_unit_test(test_keys_with_nuls_and_lengths_are_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
