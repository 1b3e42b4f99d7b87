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

#include "decode.h"
#include "hint.h"
#include "wire.h"

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

/* The numbers every state has (new_state in nousu.lua, plus H). */
static const struct {
    const char *name;
    size_t off;
} NUMS[] = {
    {"now", offsetof(hstate, now)},         {"first", offsetof(hstate, first)},
    {"H", offsetof(hstate, H)},             {"fol", offsetof(hstate, fol)},
    {"folts", offsetof(hstate, folts)},     {"below", offsetof(hstate, below)},
    {"gbase", offsetof(hstate, gbase)},     {"nichets", offsetof(hstate, nichets)},
    {"ef", offsetof(hstate, ef)},           {"eft", offsetof(hstate, eft)},
    {"rE", offsetof(hstate, rE)},           {"ria", offsetof(hstate, ria)},
    {"rse", offsetof(hstate, rse)},         {"hE", offsetof(hstate, hE)},
};
#define N_NUMS (sizeof NUMS / sizeof NUMS[0])
#define ALL_SEEN ((1u << (N_NUMS + 2)) - 1) /* the numbers, r and cd */

/* ---- reading the state ------------------------------------------------------ */

static bool num_of(const msgpack_object *o, double *ret) {
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *ret = (double)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *ret = (double)o->via.i64;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *ret = o->via.f64;
        return true;
    default:
        return false;
    }
}

static bool nums_of(const msgpack_object *o, double *ret, size_t n) {
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!num_of(&o->via.array.ptr[i], &ret[i]))
            return false;
    return true;
}

static bool key_is(const msgpack_object *k, const char *name) {
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

/* One entry of the state map; false when it is not what nousu.lua writes. */
static bool read_entry(const msgpack_object_kv *kv, hstate *s, unsigned *seen) {
    for (size_t i = 0; i < N_NUMS; i++)
        if (key_is(&kv->key, NUMS[i].name)) {
            *seen |= 1u << i;
            return num_of(&kv->val, (double *)((char *)s + NUMS[i].off));
        }
    if (key_is(&kv->key, "r")) {
        *seen |= 1u << N_NUMS;
        return nums_of(&kv->val, s->r, EV__COUNT);
    }
    if (key_is(&kv->key, "cd")) {
        *seen |= 1u << (N_NUMS + 1);
        return nums_of(&kv->val, s->cd, 3);
    }
    if (key_is(&kv->key, "cur"))
        return (s->has_cur = nums_of(&kv->val, s->cur, B_LEN));
    if (key_is(&kv->key, "bd"))
        s->has_bd = true;
    if (key_is(&kv->key, "niche")) {
        if (kv->val.type != MSGPACK_OBJECT_STR)
            return false;
        s->niche = kv->val.via.str.ptr, s->niche_len = kv->val.via.str.size;
    }
    return true;
}

static bool read_state(const msgpack_object *map, hstate *s) {
    if (map->type != MSGPACK_OBJECT_MAP)
        return false;
    memset(s, 0, sizeof *s);
    unsigned seen = 0;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (!read_entry(&map->via.map.ptr[i], s, &seen))
            return false;
    return seen == ALL_SEEN;
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
static void pack_num(msgpack_packer *pk, double v) {
    if (v == floor(v) && fabs(v) < EXACT_INT)
        msgpack_pack_int64(pk, (int64_t)v);
    else
        msgpack_pack_double(pk, v);
}

static void pack_nums(msgpack_packer *pk, const double *v, size_t n) {
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        pack_num(pk, v[i]);
}

/* The value of a field the run changes; false for the others. */
static bool pack_changed(msgpack_packer *pk, const msgpack_object *key, const hstate *s) {
    if (key_is(key, "now"))
        pack_num(pk, s->now);
    else if (key_is(key, "rE"))
        pack_num(pk, s->rE);
    else if (key_is(key, "ria"))
        pack_num(pk, s->ria);
    else if (key_is(key, "rse"))
        pack_num(pk, s->rse);
    else if (key_is(key, "nichets"))
        pack_num(pk, s->nichets);
    else if (key_is(key, "r"))
        pack_nums(pk, s->r, EV__COUNT);
    else if (key_is(key, "cur"))
        pack_nums(pk, s->cur, B_LEN);
    else if (key_is(key, "niche"))
        wire_pack_str(pk, s->niche, s->niche_len);
    else
        return false;
    return true;
}

/* The state map again, with the run's changes; cur and niche added when the
 * run made them. */
static void pack_state(msgpack_packer *pk, const msgpack_object *map, const hstate *s,
                       bool add_cur, bool add_niche) {
    msgpack_pack_map(pk, map->via.map.size + add_cur + add_niche);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        msgpack_pack_object(pk, kv->key);
        if (!pack_changed(pk, &kv->key, s))
            msgpack_pack_object(pk, kv->val);
    }
    if (add_cur) {
        wire_pack_str(pk, "cur", 3);
        pack_nums(pk, s->cur, B_LEN);
    }
    if (add_niche) {
        wire_pack_str(pk, "niche", 5);
        wire_pack_str(pk, s->niche, s->niche_len);
    }
}

/* The number of actors, then each: their count is the run's last element. */
static uint32_t pack_actors(msgpack_packer *pk, const plan *pl, const plan_run *run) {
    uint32_t n = 0;
    for (size_t k = 0; k < run->n; k++) {
        const event *e = plan_run_event(pl, run, k)->ev;
        n += event_has_engager(e);
    }
    msgpack_pack_uint32(pk, n);
    for (size_t k = 0; k < run->n; k++) {
        const event *e = plan_run_event(pl, run, k)->ev;
        if (event_has_engager(e))
            wire_pack_str(pk, event_actor(e), e->actor.len);
    }
    return n;
}

/* The hint's objects (hint.h); returns how many. */
static int pack_hint(msgpack_packer *pk, const char *state, size_t len,
                     const mpbuf *new_state, const hstate *s, bool new_bucket,
                     const plan *pl, const plan_run *run) {
    wire_pack_str(pk, state, len);
    wire_pack_str(pk, new_state->sb.data, new_state->sb.size);
    char h[24]; /* a string: it only goes into a key name, unconverted */
    int hl = snprintf(h, sizeof h, "%lld", (long long)s->H);
    wire_pack_str(pk, h, (size_t)hl);
    if (new_bucket)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    if (s->niche)
        wire_pack_str(pk, s->niche, s->niche_len);
    else
        msgpack_pack_false(pk);
    pack_num(pk, s->now);
    return HINT_FIXED + (int)pack_actors(pk, pl, run);
}

int hint_pack(msgpack_packer *pk, mpbuf *scratch, const char *state, size_t len,
              const plan *pl, const plan_run *run, const commit_params *p) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    hstate s;
    memset(&s, 0, sizeof s);
    bool new_bucket = false;
    int rc = 0;
    /* Redis holds what nousu.lua wrote; still, bytes that are not what they
     * should be must cost no more than their size (decode_prescan). */
    if (state && decode_prescan(state, len) == 0 &&
        msgpack_unpack_next(&up, state, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        off == len && read_state(&up.data, &s) && hot(&s, pl, run, p)) {
        bool had_niche = s.niche != NULL;
        new_bucket = !s.has_cur;
        apply(&s, pl, run, p);
        mpbuf_clear(scratch);
        msgpack_packer sp;
        mpbuf_packer_init(&sp, scratch);
        pack_state(&sp, &up.data, &s, new_bucket, !had_niche && s.niche);
        rc = scratch->failed ? -ENOMEM : 1;
    }
    if (rc == 1)
        rc = pack_hint(pk, state, len, scratch, &s, new_bucket, pl, run);
    msgpack_unpacked_destroy(&up);
    return rc;
}
