/* plan.c -- group a batch's events into per-creator runs (plan.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "plan.h"

#define NONE UINT32_MAX

uint64_t plan_id_hash(const strref *id) { return XXH3_64bits(id->ptr, id->len); }

void plan_event_id(plan_event *pe) {
    pe->idh = pe->ev->id.len ? plan_id_hash(&pe->ev->id) : 0;
    pe->id_dec_len = pe->ev->id.len ? decimal_i64(pe->id_dec, (int64_t)pe->idh) : 0;
    if (!pe->id_dec_len)
        pe->id_dec[0] = '\0';
}

/* Floor division: ts is > 0 for accepted events, but stay exact anyway. */
static int64_t bucket_of(int64_t ts, int64_t bucket_ms) {
    int64_t q = ts / bucket_ms;
    return (ts % bucket_ms < 0) ? q - 1 : q;
}

static size_t table_size(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    return cap;
}

/* ---- creators: open addressing on the creator's bytes --------------------- */

typedef struct creator_slot {
    uint32_t head, tail; /* first and last event of the creator, NONE: empty */
} creator_slot;

typedef struct grouping {
    creator_slot *slots;
    size_t mask;
    uint32_t *next;     /* per event: the creator's next event */
    uint32_t *creators; /* slot index per creator, in order of first appearance */
    size_t n_creators;
} grouping;

static bool same_creator(const plan_event *a, const plan_event *b) {
    return a->ev->creator.len == b->ev->creator.len &&
           memcmp(a->ev->creator.ptr, b->ev->creator.ptr, a->ev->creator.len) == 0;
}

static void group_add(grouping *g, const plan_event *events, uint32_t i) {
    const strref *c = &events[i].ev->creator;
    size_t k = XXH3_64bits(c->ptr, c->len) & g->mask;
    while (g->slots[k].head != NONE && !same_creator(&events[g->slots[k].head], &events[i]))
        k = (k + 1) & g->mask;
    creator_slot *s = &g->slots[k];
    if (s->head == NONE) {
        s->head = i;
        g->creators[g->n_creators++] = (uint32_t)k;
    } else {
        g->next[s->tail] = i;
    }
    s->tail = i;
    g->next[i] = NONE;
}

static int group(grouping *g, const plan_event *events, size_t n) {
    size_t cap = table_size(n);
    g->slots = malloc(cap * sizeof *g->slots);
    g->next = malloc((n ? n : 1) * sizeof *g->next);
    g->creators = malloc((n ? n : 1) * sizeof *g->creators);
    if (!g->slots || !g->next || !g->creators)
        return -ENOMEM;
    memset(g->slots, 0xff, cap * sizeof *g->slots); /* head = tail = NONE */
    g->mask = cap - 1;
    for (size_t i = 0; i < n; i++)
        group_add(g, events, (uint32_t)i);
    return 0;
}

static void grouping_free(grouping *g) {
    free(g->slots);
    free(g->next);
    free(g->creators);
}

/* ---- repeats: a set of 64-bit hashes --------------------------------------- */

/* true when h was already in the set (0 stands for itself via the flag). */
static bool set_add(uint64_t *set, size_t mask, bool *has_zero, uint64_t h) {
    if (h == 0) {
        bool had = *has_zero;
        *has_zero = true;
        return had;
    }
    size_t k = h & mask;
    while (set[k] != 0) {
        if (set[k] == h)
            return true;
        k = (k + 1) & mask;
    }
    set[k] = h;
    return false;
}

static int find_repeats(const plan *p, const batch *b, bool *ret) {
    size_t n = p->n_events + b->n_units, cap = table_size(n);
    uint64_t *ids = calloc(cap, sizeof *ids), *rids = calloc(cap, sizeof *rids);
    bool zero_id = false, zero_rid = false, repeats = false;
    if (!ids || !rids) {
        free(ids);
        free(rids);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->n_events && !repeats; i++)
        if (p->events[i].ev->id.len)
            repeats = set_add(ids, cap - 1, &zero_id, p->events[i].idh);
    for (size_t u = 0; u < b->n_units && !repeats; u++)
        if (b->units[u].rid_len)
            repeats = set_add(rids, cap - 1, &zero_rid,
                              XXH3_64bits(b->units[u].rid, b->units[u].rid_len));
    free(ids);
    free(rids);
    *ret = repeats;
    return 0;
}

/* ---- building -------------------------------------------------------------- */

static int collect(plan *p, const batch *b, int64_t bucket_ms) {
    size_t n = 0;
    for (size_t i = 0; i < b->n_items; i++)
        n += b->items[i].reason == REJECT_NONE;
    p->events = malloc((n ? n : 1) * sizeof *p->events);
    if (!p->events)
        return -ENOMEM;
    for (size_t u = 0; u < b->n_units; u++) {
        const batch_unit *bu = &b->units[u];
        for (size_t i = 0; i < bu->n_items; i++) {
            const decode_item *it = &b->items[bu->first_item + i];
            if (it->reason != REJECT_NONE)
                continue;
            plan_event *pe = &p->events[p->n_events++];
            pe->ev = &it->ev;
            pe->unit = (uint32_t)u;
            pe->item = (uint32_t)i;
            plan_event_id(pe);
            pe->bucket = bucket_of(it->ev.ts, bucket_ms);
        }
    }
    return 0;
}

/* A run ends before an event in another bucket or one carrying followers
 * (a follower count moves the rules' thresholds: it starts a run of its own,
 * whose first event the Function always applies alone). */
static bool continues_run(const plan_event *run_first, const plan_event *e) {
    return e->bucket == run_first->bucket && e->ev->followers < 0;
}

static void cut_runs(plan *p, const grouping *g) {
    size_t k = 0;
    for (size_t c = 0; c < g->n_creators; c++) {
        const plan_event *first = NULL;
        for (uint32_t i = g->slots[g->creators[c]].head; i != NONE; i = g->next[i]) {
            if (!first || !continues_run(first, &p->events[i])) {
                first = &p->events[i];
                p->runs[p->n_runs++] = (plan_run){.first = k, .n = 0};
            }
            p->order[k++] = i;
            p->runs[p->n_runs - 1].n++;
        }
    }
}

int plan_build(plan *p, const batch *b, int64_t bucket_ms) {
    grouping g = {0};
    *p = (plan){0};
    int rc = collect(p, b, bucket_ms);
    if (rc == 0)
        rc = find_repeats(p, b, &p->repeats);
    if (rc == 0)
        rc = group(&g, p->events, p->n_events);
    if (rc == 0) {
        size_t n = p->n_events ? p->n_events : 1;
        p->order = malloc(n * sizeof *p->order);
        p->runs = malloc(n * sizeof *p->runs);
        rc = (p->order && p->runs) ? 0 : -ENOMEM;
    }
    if (rc == 0)
        cut_runs(p, &g);
    grouping_free(&g);
    if (rc < 0)
        plan_free(p);
    return rc;
}

void plan_free(plan *p) {
    free(p->events);
    free(p->order);
    free(p->runs);
    *p = (plan){0};
}
