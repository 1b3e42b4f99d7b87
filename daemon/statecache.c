/* statecache.c -- two generations of chained hash tables (see statecache.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "statecache.h"

typedef struct sc_entry {
    struct sc_entry *next;
    uint64_t hash;
    uint32_t klen, vlen;
    char *val;      /* NULL: none known yet */
    uint64_t as_of; /* val is the state after this commit */
    uint64_t touched; /* the last commit sent touching the key */
    char key[];     /* klen bytes */
} sc_entry;

typedef struct sc_table {
    sc_entry **slots;
    size_t n_slots; /* a power of two, or 0 */
    size_t n, bytes;
} sc_table;

struct state_cache {
    sc_table gen[2]; /* young, old */
    size_t max_bytes;
};

enum { YOUNG, OLD };

/* What an entry costs besides its key and value: the struct and malloc's
 * headers (the slots are counted apart). */
#define ENTRY_OVERHEAD (sizeof(sc_entry) + 32)

static uint64_t hash_of(const char *p, size_t n) { /* FNV-1a, then a mix */
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static size_t entry_cost(const sc_entry *e) { return ENTRY_OVERHEAD + e->klen + e->vlen; }

static sc_entry **find(sc_table *t, uint64_t h, const char *key, size_t klen) {
    if (!t->n_slots)
        return NULL;
    sc_entry **pp = &t->slots[h & (t->n_slots - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
    return NULL;
}

static void entry_free(sc_entry *e) {
    free(e->val);
    free(e);
}

static void table_clear(sc_table *t) {
    for (size_t i = 0; i < t->n_slots; i++)
        for (sc_entry *e = t->slots[i], *next; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static int table_grow(sc_table *t) {
    size_t n = t->n_slots ? t->n_slots * 2 : 64;
    sc_entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < t->n_slots; i++)
        for (sc_entry *e = t->slots[i], *next; e; e = next) {
            next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    free(t->slots);
    t->slots = slots, t->n_slots = n;
    return 0;
}

/* Link e into t (e is in no table). */
static int table_link(sc_table *t, sc_entry *e) {
    if (t->n >= t->n_slots && table_grow(t) < 0)
        return -ENOMEM;
    sc_entry **slot = &t->slots[e->hash & (t->n_slots - 1)];
    e->next = *slot, *slot = e;
    t->n++, t->bytes += entry_cost(e);
    return 0;
}

static sc_entry *table_unlink(sc_table *t, sc_entry **pp) {
    sc_entry *e = *pp;
    *pp = e->next;
    t->n--, t->bytes -= entry_cost(e);
    return e;
}

state_cache *state_cache_new(size_t max_bytes) {
    state_cache *c = calloc(1, sizeof *c);
    if (c)
        c->max_bytes = max_bytes;
    return c;
}

void state_cache_clear(state_cache *c) {
    table_clear(&c->gen[YOUNG]);
    table_clear(&c->gen[OLD]);
}

void state_cache_destroy(state_cache **cp) {
    state_cache *c = cp ? *cp : NULL;
    if (!c)
        return;
    state_cache_clear(c);
    free(c);
    *cp = NULL;
}

/* The entry of key, moved to the young generation; NULL if none. */
static sc_entry *lookup(state_cache *c, uint64_t h, const char *key, size_t klen) {
    sc_entry **pp = find(&c->gen[YOUNG], h, key, klen);
    if (pp)
        return *pp;
    if (!(pp = find(&c->gen[OLD], h, key, klen)))
        return NULL;
    sc_entry *e = table_unlink(&c->gen[OLD], pp);
    if (table_link(&c->gen[YOUNG], e) < 0) {
        entry_free(e);
        return NULL;
    }
    return e;
}

const char *state_cache_get(state_cache *c, const char *key, size_t klen, size_t *ret_len,
                            bool *ret_blind) {
    sc_entry *e = lookup(c, hash_of(key, klen), key, klen);
    bool usable = e && e->val && e->as_of >= e->touched;
    *ret_blind = e && !usable;
    if (!usable)
        return NULL;
    *ret_len = e->vlen;
    return e->val;
}

/* The entry of key, made if there is none. */
static sc_entry *entry_of(state_cache *c, const char *key, size_t klen) {
    uint64_t h = hash_of(key, klen);
    sc_entry *e = lookup(c, h, key, klen);
    if (e)
        return e;
    if (!(e = malloc(sizeof *e + klen)))
        return NULL;
    *e = (sc_entry){.hash = h, .klen = (uint32_t)klen};
    memcpy(e->key, key, klen);
    if (table_link(&c->gen[YOUNG], e) < 0) {
        entry_free(e);
        return NULL;
    }
    return e;
}

void state_cache_touch(state_cache *c, const char *key, size_t klen, uint64_t seq) {
    if (!c->max_bytes || klen > UINT32_MAX)
        return;
    sc_entry *e = entry_of(c, key, klen);
    if (e && seq > e->touched)
        e->touched = seq;
}

void state_cache_drop(state_cache *c, const char *key, size_t klen) {
    uint64_t h = hash_of(key, klen);
    for (int g = YOUNG; g <= OLD; g++) {
        sc_entry **pp = find(&c->gen[g], h, key, klen);
        if (pp)
            entry_free(table_unlink(&c->gen[g], pp));
    }
}

int state_cache_put(state_cache *c, const char *key, size_t klen, const char *bytes, size_t len,
                    uint64_t seq) {
    if (!c->max_bytes || klen > UINT32_MAX || len > UINT32_MAX)
        return 0;
    char *val = malloc(len ? len : 1);
    sc_entry *e = val ? entry_of(c, key, klen) : NULL;
    if (!e) {
        free(val);
        state_cache_drop(c, key, klen);
        return -ENOMEM;
    }
    memcpy(val, bytes, len);
    /* entry_of left it young: swap the value, keeping the accounts right */
    c->gen[YOUNG].bytes -= e->vlen;
    free(e->val);
    e->val = val, e->vlen = (uint32_t)len, e->as_of = seq;
    c->gen[YOUNG].bytes += len;
    return 0;
}

void state_cache_trim(state_cache *c) {
    if (c->gen[YOUNG].bytes < c->max_bytes / 2)
        return;
    table_clear(&c->gen[OLD]);
    c->gen[OLD] = c->gen[YOUNG];
    memset(&c->gen[YOUNG], 0, sizeof c->gen[YOUNG]);
}

size_t state_cache_entries(const state_cache *c) { return c->gen[YOUNG].n + c->gen[OLD].n; }

size_t state_cache_bytes(const state_cache *c) {
    return c->gen[YOUNG].bytes + c->gen[OLD].bytes +
           (c->gen[YOUNG].n_slots + c->gen[OLD].n_slots) * sizeof(sc_entry *);
}
