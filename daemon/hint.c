/* hint.c -- a creator's state after a hot run (see hint.h). This is the
 * hot part of Creator in nousu.lua (apply into the current bucket, snapshot
 * of the niche, the rules' conditions and may_fire), in the same double
 * arithmetic and order, so that verify mode finds no difference. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "decimal.h"
#include "hint.h"
#include "mpread.h"

#define DAY_MS 86400000.0
#define EXACT_INT 9007199254740992.0 /* 2^53 */

/* BUCKET of nousu.lua, 0-based: { E, t0..t8, ia, se, f, ft } */
enum { B_E = 0, B_T0 = 1, B_IA = 10, B_SE = 11, B_F = 12, B_LEN = 14 };

typedef struct hstate {
    double now, first, H, fol, folts, below, gbase, nichets, ef, eft, rE, ria, rse, hE;
    double r[EV__COUNT], cd[3], cur[B_LEN];
    bool has_cur, has_bd;
    const char *niche;
    size_t niche_len;
} hstate;

/* The fields hint.c knows (field_of spells them): the numbers every state
 * has (new_state in nousu.lua, plus H) come first, as doubles of hstate. */
enum {
    F_NOW, F_FIRST, F_H, F_FOL, F_FOLTS, F_BELOW, F_GBASE, F_NICHETS, F_EF, F_EFT, F_RE,
    F_RIA, F_RSE, F_HE, F_R, F_CD, F_CUR, F_BD, F_NICHE, F__KNOWN, F_OTHER = F__KNOWN
};
#define N_NUMS (F_HE + 1)
#define ALL_SEEN ((1u << (F_CD + 1)) - 1) /* the numbers, r and cd */

static double *num_field(hstate *s, int f) {
    static const size_t off[N_NUMS] = {
        offsetof(hstate, now),     offsetof(hstate, first), offsetof(hstate, H),
        offsetof(hstate, fol),     offsetof(hstate, folts), offsetof(hstate, below),
        offsetof(hstate, gbase),   offsetof(hstate, nichets), offsetof(hstate, ef),
        offsetof(hstate, eft),     offsetof(hstate, rE),    offsetof(hstate, ria),
        offsetof(hstate, rse),     offsetof(hstate, hE),
    };
    return (double *)((char *)s + off[f]);
}

/* Where each entry of the state map lies in its bytes, so that the new
 * state is the old one with only the changed values packed again. States
 * of nousu.lua have ~20 entries; more is not a state this code knows. */
#define STATE_MAX_ENTRIES 32

typedef struct entry {
    uint32_t key, val, end; /* offsets of the key, the value, and past it */
    int field;
} entry;

typedef struct layout {
    entry e[STATE_MAX_ENTRIES];
    uint32_t n, start; /* start: the first entry's offset, past the map header */
} layout;

/* ---- reading the state ------------------------------------------------------ */

/* The field a state key names. A switch on the length, then memcmp()s of a
 * constant length, which gcc inlines: a search over a table of names cost a
 * memcmp() call per name, 4% of the daemon's instructions (session 23). */
static int field_of(const char *k, size_t n) {
#define IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0)
    switch (n) {
    case 1: return k[0] == 'H' ? F_H : k[0] == 'r' ? F_R : F_OTHER;
    case 2:
        return IS("rE") ? F_RE : IS("hE") ? F_HE : IS("ef") ? F_EF : IS("cd") ? F_CD
             : IS("bd") ? F_BD : F_OTHER;
    case 3:
        return IS("now") ? F_NOW : IS("ria") ? F_RIA : IS("rse") ? F_RSE : IS("cur") ? F_CUR
             : IS("fol") ? F_FOL : IS("eft") ? F_EFT : F_OTHER;
    case 5:
        return IS("first") ? F_FIRST : IS("folts") ? F_FOLTS : IS("below") ? F_BELOW
             : IS("gbase") ? F_GBASE : IS("niche") ? F_NICHE : F_OTHER;
    case 7: return IS("nichets") ? F_NICHETS : F_OTHER;
    default: return F_OTHER;
    }
#undef IS
}

static bool nums_at(mpread *r, double *ret, size_t n) {
    mp_head h;
    if (mpread_head(r, &h) < 0 || !h.container || !h.array || h.count != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!mpread_num(r, &ret[i]))
            return false;
    return true;
}

/* The value of field f; false when it is not what nousu.lua writes. */
static bool read_value(mpread *r, int f, hstate *s) {
    if (f < N_NUMS)
        return mpread_num(r, num_field(s, f));
    switch (f) {
    case F_R:
        return nums_at(r, s->r, EV__COUNT);
    case F_CD:
        return nums_at(r, s->cd, 3);
    case F_CUR:
        return (s->has_cur = nums_at(r, s->cur, B_LEN));
    case F_NICHE:
        return mpread_str(r, &s->niche, &s->niche_len);
    case F_BD:
        s->has_bd = true;
        return mpread_skip(r) == 0;
    default:
        return mpread_skip(r) == 0;
    }
}

/* One entry of the map: a key that is no str is no field of ours. */
static bool read_entry(mpread *r, entry *e, hstate *s, unsigned *seen) {
    const char *k;
    size_t kn;
    e->key = (uint32_t)r->pos;
    e->field = F_OTHER;
    if (mpread_str(r, &k, &kn))
        e->field = field_of(k, kn);
    else if (mpread_skip(r) < 0)
        return false;
    if (e->field != F_OTHER) {
        if (*seen & 1u << e->field)
            return false; /* twice: which one would Lua have read? */
        *seen |= 1u << e->field;
    }
    e->val = (uint32_t)r->pos;
    if (!read_value(r, e->field, s))
        return false;
    e->end = (uint32_t)r->pos;
    return true;
}

static bool read_state(const char *state, size_t len, hstate *s, layout *lo) {
    mpread r;
    mp_head h;
    mpread_init(&r, state, len);
    if (len > UINT32_MAX || mpread_head(&r, &h) < 0 || !h.container || h.array ||
        h.count > STATE_MAX_ENTRIES)
        return false;
    memset(s, 0, sizeof *s);
    lo->n = h.count, lo->start = (uint32_t)r.pos;
    unsigned seen = 0;
    for (uint32_t i = 0; i < h.count; i++)
        if (!read_entry(&r, &lo->e[i], s, &seen))
            return false;
    return r.pos == len && (seen & ALL_SEEN) == ALL_SEEN;
}

/* ---- the rules (Creator:conditions, cooling, may_fire) ------------------------ */

typedef struct holds {
    bool grad, volume, jump;
} holds;

static double days_hist(const hstate *s, const commit_params *p) {
    double span_end = (s->H - (double)p->recent + 1) * (double)p->bucket_ms;
    double span_start = span_end - (double)p->hist * (double)p->bucket_ms;
    double d = (span_end - fmax(span_start, s->first)) / DAY_MS;
    return fmax(0, fmin(d, (double)p->hist * (double)p->bucket_ms / DAY_MS));
}

static holds conditions(const hstate *s, const commit_params *p, double E, double now) {
    const detect_params *d = &p->det;
    holds h = {false, false, false};
    double fol = s->fol;
    if (fol > (double)d->micro_max) {
        h.grad = s->below > 0 && s->below < s->folts && s->below != s->gbase;
        return h;
    }
    if (fol < (double)d->micro_min || now - s->first < (double)d->min_history_ms)
        return h;
    double mu = (s->hE + d->prior_rate * fol) / (days_hist(s, p) + 1);
    h.volume = E >= d->rising_min_engagement && E >= d->rising_min_velocity * mu &&
               (E - mu) / sqrt(mu + 1) >= d->rising_min_z && E >= d->rising_min_rate * fol;
    h.jump = s->ef > 0 && s->eft < s->folts && fol >= (1 + d->suspicious_follower_jump) * s->ef &&
             E < d->suspicious_max_velocity * mu;
    return h;
}

static bool cooling(const hstate *s, const commit_params *p, int k, double now) {
    return s->cd[k] > 0 && fabs(now - s->cd[k]) < (double)p->cooldown_ms;
}

/* Whether a rule may hold at the run's end (E1, now1), the follower jump
 * judged at its start, where it is likeliest (run_fits in nousu.lua). */
static bool may_fire(const hstate *s, const commit_params *p, double E1, double now1) {
    holds end = conditions(s, p, E1, now1), start = conditions(s, p, s->rE, now1);
    return (end.grad && !cooling(s, p, 2, now1)) || (start.jump && !cooling(s, p, 1, now1)) ||
           (end.volume && !(cooling(s, p, 0, now1) && cooling(s, p, 1, now1)));
}

/* ---- the run ------------------------------------------------------------------ */

static bool hot(const hstate *s, const plan *pl, const plan_run *run, const commit_params *p) {
    if (s->has_bd || s->first <= 0)
        return false;
    for (int k = 0; k < 3; k++)
        if (s->cd[k] > s->now) /* cooldowns in the future break the argument */
            return false;
    double now1 = s->now, ts_min = INFINITY, E = 0;
    for (size_t k = 0; k < run->n; k++) {
        const plan_event *pe = plan_run_event(pl, run, k);
        const event *e = pe->ev;
        double ts = (double)e->ts;
        if (e->followers >= 0 || (double)pe->bucket != s->H || ts < s->first)
            return false;
        now1 = fmax(now1, ts), ts_min = fmin(ts_min, ts);
        E += (double)(p->weight[e->type] * e->n);
    }
    if (ts_min < now1 - (double)p->lateness_ms) /* one may be too old */
        return false;
    return !may_fire(s, p, s->rE + E, now1);
}

/* Creator:apply of each event, into the current bucket. */
static void apply(hstate *s, const plan *pl, const plan_run *run, const commit_params *p) {
    if (!s->has_cur) {
        memset(s->cur, 0, sizeof s->cur);
        s->cur[B_F] = -1;
    }
    for (size_t k = 0; k < run->n; k++) {
        const event *e = plan_run_event(pl, run, k)->ev;
        double ts = (double)e->ts, n = (double)e->n, w = (double)(p->weight[e->type] * e->n);
        if (ts > s->now)
            s->now = ts;
        s->cur[B_T0 + e->type] += n;
        s->r[e->type] += n;
        if (w != 0) {
            s->cur[B_E] += w, s->rE += w;
            if (e->sponsored == 1)
                s->cur[B_SE] += w, s->rse += w;
        }
        if (event_has_engager(e))
            s->cur[B_IA] += n, s->ria += n;
        if (e->niche.len && ts >= s->nichets)
            s->niche = e->niche.ptr, s->niche_len = e->niche.len, s->nichets = ts;
    }
}

/* ---- writing ------------------------------------------------------------------ */

/* As cmsgpack packs a Lua number: an integer when it is one. */
static void pack_num(mpbuf *out, double v) {
    /* The range first: a double past int64 has no conversion. */
    if (fabs(v) < EXACT_INT && (double)(int64_t)v == v)
        mpbuf_int(out, (int64_t)v);
    else
        mpbuf_double(out, v);
}

static void pack_nums(mpbuf *out, const double *v, size_t n) {
    mpbuf_array(out, n);
    for (size_t i = 0; i < n; i++)
        pack_num(out, v[i]);
}

/* Whether the run may change field f: its value is packed again. */
static bool changed(int f) {
    return f == F_NOW || f == F_RE || f == F_RIA || f == F_RSE || f == F_NICHETS ||
           f == F_R || f == F_CUR || f == F_NICHE;
}

static void pack_value(mpbuf *out, int f, const hstate *s) {
    if (f < N_NUMS)
        pack_num(out, *num_field((hstate *)s, f));
    else if (f == F_R)
        pack_nums(out, s->r, EV__COUNT);
    else if (f == F_CUR)
        pack_nums(out, s->cur, B_LEN);
    else
        mpbuf_str(out, s->niche, s->niche_len);
}

/* The state map again, with the run's changes; cur and niche added when the
 * run made them. Every byte between two changed values (keys included) is
 * copied as it was. */
static void pack_state(mpbuf *out, const char *state, const layout *lo, const hstate *s,
                       bool add_cur, bool add_niche) {
    mpbuf_map(out, lo->n + add_cur + add_niche);
    uint32_t from = lo->start;
    for (uint32_t i = 0; i < lo->n; i++) {
        const entry *e = &lo->e[i];
        if (!changed(e->field))
            continue;
        mpbuf_write(out, state + from, e->val - from);
        pack_value(out, e->field, s);
        from = e->end;
    }
    uint32_t end = lo->n ? lo->e[lo->n - 1].end : lo->start;
    mpbuf_write(out, state + from, end - from);
    if (add_cur) {
        mpbuf_str(out, "cur", 3);
        pack_nums(out, s->cur, B_LEN);
    }
    if (add_niche) {
        mpbuf_str(out, "niche", 5);
        mpbuf_str(out, s->niche, s->niche_len);
    }
}

/* The number of actors, then each: their count is the run's last element. */
static uint32_t pack_actors(mpbuf *out, const plan *pl, const plan_run *run) {
    uint32_t n = 0;
    for (size_t k = 0; k < run->n; k++) {
        const event *e = plan_run_event(pl, run, k)->ev;
        n += event_has_engager(e);
    }
    mpbuf_uint(out, n);
    for (size_t k = 0; k < run->n; k++) {
        const event *e = plan_run_event(pl, run, k)->ev;
        if (event_has_engager(e))
            mpbuf_str(out, event_actor(e), e->actor.len);
    }
    return n;
}

/* The hint's objects (hint.h); returns how many. */
static int pack_hint(mpbuf *out, const char *state, size_t len,
                     const mpbuf *new_state, const hstate *s, bool new_bucket,
                     const plan *pl, const plan_run *run) {
    mpbuf_str(out, state, len);
    mpbuf_str(out, new_state->sb.data, new_state->sb.size);
    char h[DECIMAL_MAX]; /* a string: it only goes into a key name, unconverted */
    mpbuf_str(out, h, decimal_i64(h, (int64_t)s->H));
    mpbuf_bool(out, new_bucket);
    if (s->niche)
        mpbuf_str(out, s->niche, s->niche_len);
    else
        mpbuf_bool(out, false);
    pack_num(out, s->now);
    return HINT_FIXED + (int)pack_actors(out, pl, run);
}

int hint_pack(mpbuf *out, mpbuf *scratch, const char *state, size_t len,
              const plan *pl, const plan_run *run, const commit_params *p) {
    hstate s;
    layout lo;
    /* Redis holds what nousu.lua wrote; still, bytes that are not what they
     * should be only cost their reading (mpread checks every length). */
    if (!state || !read_state(state, len, &s, &lo) || !hot(&s, pl, run, p))
        return 0;
    bool had_niche = s.niche != NULL, new_bucket = !s.has_cur;
    apply(&s, pl, run, p);
    mpbuf_clear(scratch);
    pack_state(scratch, state, &lo, &s, new_bucket, !had_niche && s.niche);
    if (scratch->failed)
        return -ENOMEM;
    return pack_hint(out, state, len, scratch, &s, new_bucket, pl, run);
}
