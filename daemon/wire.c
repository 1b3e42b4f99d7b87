/* wire.c -- the commit's msgpack forms (wire.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "hint.h"
#include "wire.h"

static void pack_cstr(mpbuf *out, const char *s) { mpbuf_str(out, s, strlen(s)); }

/* The order is the det array of nousu.lua (Creator:conditions, Creator:watch). */
static void pack_watch(mpbuf *out, const commit_params *p) {
    const detect_params *d = &p->det;
    mpbuf_array(out, 14);
    mpbuf_int(out, d->micro_min);
    mpbuf_int(out, d->micro_max);
    mpbuf_int(out, d->min_history_ms);
    mpbuf_double(out, d->prior_rate);
    mpbuf_double(out, d->rising_min_engagement);
    mpbuf_double(out, d->rising_min_velocity);
    mpbuf_double(out, d->rising_min_z);
    mpbuf_double(out, d->rising_min_rate);
    mpbuf_double(out, d->suspicious_follower_jump);
    mpbuf_double(out, d->suspicious_max_velocity);
    mpbuf_int(out, p->cooldown_ms);
    mpbuf_int(out, p->max_checkpoints);
    mpbuf_int(out, d->audience_min_interactions);
    mpbuf_double(out, d->audience_min_unique_ratio);
}

static void pack_cfg(mpbuf *out, const char *prefix, const commit_params *p) {
    mpbuf_array(out, 15);
    pack_cstr(out, prefix);
    mpbuf_int(out, p->wall_ms);
    mpbuf_int(out, p->bucket_ms);
    mpbuf_int(out, p->recent);
    mpbuf_int(out, p->hist);
    mpbuf_int(out, p->lateness_ms);
    mpbuf_int(out, p->horizon_ms);
    mpbuf_int(out, p->request_ttl_s);
    mpbuf_int(out, p->micro_max);
    mpbuf_int(out, p->ttl_s);
    mpbuf_array(out, EV__COUNT);
    for (int t = 0; t < EV__COUNT; t++)
        mpbuf_int(out, p->weight[t]);
    pack_watch(out, p);
    mpbuf_int(out, p->dedup_buckets);
    mpbuf_int(out, p->dedup_set_ids);
    if (p->hints == COMMIT_HINTS_VERIFY)
        mpbuf_bool(out, true);
    else
        mpbuf_bool(out, false);
}

static void pack_opt_str(mpbuf *out, const strref *r) {
    if (r->len)
        mpbuf_str(out, r->ptr, r->len);
    else
        mpbuf_nil(out);
}

/* An event id is remembered as its 64-bit XXH3 hash, exact in practice: as
 * a signed decimal, so that Redis keeps the sets of them as intsets (8 bytes
 * an id). Its place, the top 16 bits, picks its set among however many a
 * slice of the dedup has (nousu.lua, Dedup): ids sorted by place fall into
 * the sets in contiguous stretches, whatever their number. */
static uint64_t id_place(uint64_t h) { return h >> 48; }

static void pack_id(mpbuf *out, const plan_event *pe) {
    mpbuf_str(out, pe->id_dec, pe->id_dec_len);
}

/* [i, creator, type, ts, n, id, actor, sponsored, followers, niche,
 *  id place(, unit)]: the creator is left out (nil) inside a run, whose
 * events carry their unit (1-based) instead. */
static void pack_event(mpbuf *out, size_t i, const plan_event *pe, uint32_t unit1) {
    const event *e = pe->ev;
    mpbuf_array(out, unit1 ? 12 : 11);
    mpbuf_uint(out, i);
    if (unit1)
        mpbuf_nil(out);
    else
        mpbuf_str(out, e->creator.ptr, e->creator.len);
    mpbuf_int(out, (int)e->type);
    mpbuf_int(out, e->ts);
    mpbuf_int(out, e->n);
    if (e->id.len)
        pack_id(out, pe);
    else
        mpbuf_nil(out);
    if (e->actor.len)
        mpbuf_str(out, event_actor(e), e->actor.len);
    else
        mpbuf_nil(out);
    if (e->sponsored == 1)
        mpbuf_int(out, 1);
    else
        mpbuf_nil(out);
    if (e->followers >= 0)
        mpbuf_int(out, e->followers);
    else
        mpbuf_nil(out);
    pack_opt_str(out, &e->niche);
    mpbuf_uint(out, e->id.len ? id_place(pe->idh) : 0);
    if (unit1)
        mpbuf_uint(out, unit1);
}

static size_t unit_rejected(const batch *b, const batch_unit *u) {
    size_t rejected = 0;
    for (size_t i = 0; i < u->n_items; i++)
        rejected += b->items[u->first_item + i].reason != REJECT_NONE;
    return rejected;
}

/* [rid or nil, total, [[i, reason]...]] and, in the events form, the events;
 * in the runs form, how many events the unit has in runs. */
static void pack_unit_head(mpbuf *out, const batch *b, const batch_unit *u,
                           size_t rejected) {
    const decode_item *items = b->items + u->first_item;
    if (u->rid_len)
        mpbuf_str(out, (const char *)u->rid, u->rid_len);
    else
        mpbuf_nil(out);
    mpbuf_uint(out, batch_unit_total(u));
    mpbuf_array(out, rejected);
    for (size_t i = 0; i < u->n_items; i++) {
        if (items[i].reason == REJECT_NONE)
            continue;
        mpbuf_array(out, 2);
        mpbuf_int(out, u->whole ? -1 : (int64_t)i);
        pack_cstr(out, reject_reason_name(items[i].reason));
    }
}

void wire_pack_events(mpbuf *out, const char *prefix, const batch *b,
                      const commit_params *p) {
    mpbuf_array(out, 2);
    pack_cfg(out, prefix, p);
    mpbuf_array(out, b->n_units);
    for (size_t u = 0; u < b->n_units; u++) {
        const batch_unit *bu = &b->units[u];
        const decode_item *items = b->items + bu->first_item;
        size_t rejected = unit_rejected(b, bu);
        mpbuf_array(out, 4);
        pack_unit_head(out, b, bu, rejected);
        mpbuf_array(out, bu->n_items - rejected);
        for (size_t i = 0; i < bu->n_items; i++) {
            if (items[i].reason != REJECT_NONE)
                continue;
            plan_event pe = {.ev = &items[i].ev};
            plan_event_id(&pe);
            pack_event(out, i, &pe, 0);
        }
    }
}

/* ---- the runs form ---------------------------------------------------------- */


/* What the rest of a run (every event but the first) adds, as the Function's
 * Creator:apply_run reads it. */
typedef struct run_sum {
    int64_t ts_min, ts_max, E, ia, se, nichets;
    int64_t counts[EV__COUNT];
    size_t n_actors; /* interactions carrying an actor */
    const strref *niche;
} run_sum;

static void sum_rest(run_sum *r, const plan *pl, const plan_run *run, const commit_params *p) {
    *r = (run_sum){.ts_min = INT64_MAX, .ts_max = INT64_MIN};
    for (size_t k = 1; k < run->n; k++) {
        const event *e = plan_run_event(pl, run, k)->ev;
        int64_t w = p->weight[e->type] * e->n;
        r->ts_min = e->ts < r->ts_min ? e->ts : r->ts_min;
        r->ts_max = e->ts > r->ts_max ? e->ts : r->ts_max;
        r->counts[e->type] += e->n;
        r->E += w;
        if (e->sponsored == 1)
            r->se += w;
        if (event_has_engager(e))
            r->ia += e->n, r->n_actors++;
        /* the newest ts wins; among equal ones the later event */
        if (e->niche.len && (!r->niche || e->ts >= r->nichets))
            r->niche = &e->niche, r->nichets = e->ts;
    }
}

static void pack_event_of(mpbuf *out, const plan_event *pe) {
    pack_event(out, pe->item, pe, pe->unit + 1);
}

/* [n, ts_min, ts_max, counts[9], E, ia, se, actors, niche, nichets, detail],
 * detail = the same events one by one, a msgpack string read only when the
 * Function must walk them. */
static int pack_rest(mpbuf *out, mpbuf *detail, const plan *pl,
                     const plan_run *run, const commit_params *p) {
    run_sum r;
    sum_rest(&r, pl, run, p);
    mpbuf_array(out, 11);
    mpbuf_uint(out, run->n - 1);
    mpbuf_int(out, r.ts_min);
    mpbuf_int(out, r.ts_max);
    mpbuf_array(out, EV__COUNT);
    for (int t = 0; t < EV__COUNT; t++)
        mpbuf_int(out, r.counts[t]);
    mpbuf_int(out, r.E);
    mpbuf_int(out, r.ia);
    mpbuf_int(out, r.se);
    mpbuf_array(out, r.n_actors);
    for (size_t k = 1; k < run->n; k++) {
        const event *e = plan_run_event(pl, run, k)->ev;
        if (event_has_engager(e))
            mpbuf_str(out, event_actor(e), e->actor.len);
    }
    if (r.niche)
        mpbuf_str(out, r.niche->ptr, r.niche->len);
    else
        mpbuf_nil(out);
    mpbuf_int(out, r.nichets);
    mpbuf_clear(detail);
    mpbuf_array(detail, run->n - 1);
    for (size_t k = 1; k < run->n; k++)
        pack_event_of(detail, plan_run_event(pl, run, k));
    if (detail->failed)
        return -ENOMEM;
    mpbuf_str(out, detail->sb.data, detail->sb.size);
    return 0;
}

void wire_bufs_init(wire_bufs *wb) {
    mpbuf_init(&wb->detail);
    mpbuf_init(&wb->state);
    mpbuf_init(&wb->hint);
    mpbuf_init(&wb->hints);
    wb->n_hint_objects = 0;
    mpbuf_init(&wb->fallbacks);
    mpbuf_init(&wb->news);
}

void wire_bufs_destroy(wire_bufs *wb) {
    mpbuf_destroy(&wb->detail);
    mpbuf_destroy(&wb->state);
    mpbuf_destroy(&wb->hint);
    mpbuf_destroy(&wb->hints);
    mpbuf_destroy(&wb->fallbacks);
    mpbuf_destroy(&wb->news);
}

/* run[2] and run[3]: the first event, and the rest or nil. */
static int pack_events(mpbuf *out, mpbuf *detail, const plan *pl,
                       const plan_run *run, const commit_params *p) {
    pack_event_of(out, plan_run_event(pl, run, 0));
    if (run->n == 1) {
        mpbuf_nil(out);
        return 0;
    }
    return pack_rest(out, detail, pl, run, p);
}

/* The hint of run into wb->hint, its state after into wb->news: the number
 * of objects of the hint (hint.h), or 0 when the run is not hot, or -ENOMEM. */
static int make_hint(wire_bufs *wb, const plan *pl, const plan_run *run, wire_state *st,
                     const commit_params *p) {
    mpbuf_clear(&wb->hint);
    int rc = hint_pack(&wb->hint, &wb->state, st->ptr, st->len, pl, run, p);
    if (rc > 0) {
        if (wb->hint.failed)
            return -ENOMEM;
        st->new_off = wb->news.sb.size, st->new_len = wb->state.sb.size;
        if (mpbuf_write(&wb->news, wb->state.sb.data, wb->state.sb.size) != 0)
            return -ENOMEM;
    }
    return rc;
}

/* ARGV[7], the hints laid out flat: an array32 whose count is filled in at
 * the end (wire_hints_end), when it is known. */
#define HINTS_HEAD 5

static void wire_hints_begin(wire_bufs *wb) {
    static const char head[HINTS_HEAD] = {(char)0xdd, 0, 0, 0, 0};
    mpbuf_clear(&wb->hints);
    mpbuf_write(&wb->hints, head, sizeof head); /* a failure shows at the end */
    wb->n_hint_objects = 0;
}

static int wire_hints_end(wire_bufs *wb) {
    if (wb->hints.failed)
        return -ENOMEM;
    uint32_t n = wb->n_hint_objects;
    unsigned char *c = (unsigned char *)wb->hints.sb.data + 1;
    c[0] = (unsigned char)(n >> 24), c[1] = (unsigned char)(n >> 16);
    c[2] = (unsigned char)(n >> 8), c[3] = (unsigned char)n;
    return 0;
}

/* A hinted run. In runs, only p: its place (1-based) among the objects of
 * ARGV[7], where [creator, want, offset, length] and its hint's objects
 * follow one after another. Offset (1-based) and length place in
 * wb->fallbacks (ARGV[6]) the msgpack of its first event and rest, which
 * the Function unpacks only when it does not take the hint. Both because
 * every table and every string Lua unpacks costs Redis time: most of what
 * it unpacked of hinted runs, it never looked at. */
static int pack_hinted_run(mpbuf *out, wire_bufs *wb, const plan *pl,
                           const plan_run *run, const wire_state *st, const commit_params *p,
                           int n_objects) {
    const strref *c = &plan_run_event(pl, run, 0)->ev->creator;
    size_t off = wb->fallbacks.sb.size;
    mpbuf_array(&wb->fallbacks, 2);
    if (pack_events(&wb->fallbacks, &wb->detail, pl, run, p) < 0 || wb->fallbacks.failed)
        return -ENOMEM;
    mpbuf_uint(out, wb->n_hint_objects + 1);
    mpbuf_str(&wb->hints, c->ptr, c->len);
    mpbuf_bool(&wb->hints, st->want);
    mpbuf_uint(&wb->hints, off + 1);
    mpbuf_uint(&wb->hints, wb->fallbacks.sb.size - off);
    mpbuf_write(&wb->hints, wb->hint.sb.data, wb->hint.sb.size); /* packed already */
    wb->n_hint_objects += 4 + (uint32_t)n_objects;
    return wb->hints.failed ? -ENOMEM : 0;
}

/* [creator, first event, rest or nil, nil (no hint), true (want) or absent] */
static int pack_plain_run(mpbuf *out, wire_bufs *wb, const plan *pl,
                          const plan_run *run, bool want, const commit_params *p) {
    const strref *c = &plan_run_event(pl, run, 0)->ev->creator;
    mpbuf_array(out, want ? 5 : 4);
    mpbuf_str(out, c->ptr, c->len);
    if (pack_events(out, &wb->detail, pl, run, p) < 0)
        return -ENOMEM;
    mpbuf_nil(out);
    if (want)
        mpbuf_bool(out, true);
    return 0;
}

/* One run; returns 1 when hinted, 0 when not, -ENOMEM. */
static int pack_run(mpbuf *out, wire_bufs *wb, const plan *pl, const plan_run *run,
                    wire_state *st, const commit_params *p) {
    int n_objects = 0;
    if (st) {
        st->new_len = 0;
        if (st->ptr && (n_objects = make_hint(wb, pl, run, st, p)) < 0)
            return -ENOMEM;
    }
    int rc = n_objects ? pack_hinted_run(out, wb, pl, run, st, p, n_objects)
                       : pack_plain_run(out, wb, pl, run, st && st->want, p);
    return rc < 0 ? rc : n_objects > 0;
}

int wire_pack_runs(mpbuf *out, wire_bufs *wb, const char *prefix, const batch *b,
                   const plan *pl, wire_state *states, const commit_params *p) {
    uint32_t *in_runs = calloc(b->n_units ? b->n_units : 1, sizeof *in_runs);
    if (!in_runs)
        return -ENOMEM;
    for (size_t i = 0; i < pl->n_events; i++)
        in_runs[pl->events[i].unit]++;
    mpbuf_array(out, 3);
    pack_cfg(out, prefix, p);
    mpbuf_array(out, b->n_units);
    for (size_t u = 0; u < b->n_units; u++) {
        const batch_unit *bu = &b->units[u];
        size_t rejected = unit_rejected(b, bu);
        if (!bu->rid_len && !rejected) { /* a plain frame: its event count alone */
            mpbuf_uint(out, in_runs[u]);
            continue;
        }
        mpbuf_array(out, 4);
        pack_unit_head(out, b, bu, rejected);
        mpbuf_uint(out, in_runs[u]);
    }
    free(in_runs);
    mpbuf_clear(&wb->news);
    mpbuf_clear(&wb->fallbacks);
    wire_hints_begin(wb);
    int hints = 0;
    mpbuf_array(out, pl->n_runs);
    for (size_t k = 0; k < pl->n_runs; k++) {
        int rc = pack_run(out, wb, pl, &pl->runs[k], states ? &states[k] : NULL, p);
        if (rc < 0)
            return -ENOMEM;
        hints += rc;
    }
    return wire_hints_end(wb) < 0 ? -ENOMEM : hints;
}

/* ---- the ids of the runs form, by place ------------------------------------ */

typedef struct id_ref {
    const plan_event *pe;
    uint64_t h;   /* pe->idh, at hand for the sort */
    uint32_t run; /* 1-based */
    bool maybe;   /* the filter may hold it */
} id_ref;

/* refs[] by place, stably: a radix sort of the 16-bit places, low byte then
 * high, through tmp (n more). qsort's comparison call per step was 7% of the
 * daemon's instructions with ids (callgrind, session 23). */
static void sort_by_place(id_ref *refs, id_ref *tmp, size_t n) {
    for (unsigned shift = 0; shift < 16; shift += 8) {
        size_t start[257] = {0};
        for (size_t i = 0; i < n; i++)
            start[(id_place(refs[i].h) >> shift & 0xff) + 1]++;
        for (unsigned b = 1; b < 257; b++)
            start[b] += start[b - 1];
        for (size_t i = 0; i < n; i++)
            tmp[start[id_place(refs[i].h) >> shift & 0xff]++] = refs[i];
        memcpy(refs, tmp, n * sizeof *refs);
    }
}

/* The indexes (1-based) of the ids sorted in refs that filter may hold. */
static void pack_maybe(mpbuf *ids, id_ref *refs, size_t n, const idfilter *filter,
                       const commit_params *p) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + IDFILTER_AHEAD < n)
            idfilter_prefetch(filter, refs[i + IDFILTER_AHEAD].h, p->wall_ms, p->horizon_ms);
        k += refs[i].maybe = idfilter_maybe(filter, refs[i].h, p->wall_ms, p->horizon_ms);
    }
    mpbuf_array(ids, k);
    for (size_t i = 0; i < n; i++)
        if (refs[i].maybe)
            mpbuf_uint(ids, (uint32_t)i + 1);
}

int wire_pack_ids(mpbuf *ids, mpbuf *owners, const plan *pl,
                  const idfilter *filter, const commit_params *p) {
    id_ref *refs = malloc((pl->n_events ? pl->n_events : 1) * 2 * sizeof *refs);
    if (!refs)
        return -ENOMEM;
    size_t n = 0;
    for (size_t k = 0; k < pl->n_runs; k++)
        for (size_t j = 0; j < pl->runs[k].n; j++) {
            const plan_event *pe = plan_run_event(pl, &pl->runs[k], j);
            if (pe->ev->id.len)
                refs[n++] = (id_ref){.pe = pe, .h = pe->idh, .run = (uint32_t)k + 1};
        }
    sort_by_place(refs, refs + n, n);
    mpbuf_array(ids, filter ? 3 : 2);
    mpbuf_array(ids, n);
    for (size_t i = 0; i < n; i++)
        pack_id(ids, refs[i].pe);
    mpbuf_array(ids, n);
    for (size_t i = 0; i < n; i++)
        mpbuf_uint(ids, id_place(refs[i].h));
    if (filter)
        pack_maybe(ids, refs, n, filter, p);
    mpbuf_array(owners, n);
    for (size_t i = 0; i < n; i++)
        mpbuf_uint(owners, refs[i].run);
    free(refs);
    return 0;
}
