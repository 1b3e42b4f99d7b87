/* nousu-demo -- a deterministic synthetic world of creators, played to
 * nousud in event time, so that its alerts show up within seconds.
 *
 * Event time runs from wall-clock now - 10 days to now (never ahead of the
 * daemon's clock, which refuses ts more than 5 minutes in the future). Every
 * creator gets a planted role: one rises, one is boosted by a handful of
 * accounts, one graduates out of the micro tier, the rest are background
 * that must never be flagged. The whole world is generated first, sorted by
 * event time and then sent in batches, so each creator's events arrive in
 * order (SPEC §3 lateness) and --seed fully determines the events. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define PROG "nousu-demo"
#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define SPAN_DAYS 10

/* ------------------------------------------------------------- the world */

enum { T_VIEW, T_LIKE, T_COMMENT, T_SHARE, T_SAVE, T_MENTION, T_FOLLOW, T_UNFOLLOW, T_POST };
static const char *const type_names[] = {"view",    "like",   "comment",  "share", "save",
                                         "mention", "follow", "unfollow", "post"};
/* SPEC §5 weights: only used to size the generated engagement. */
static const int type_weight[] = {0, 1, 3, 4, 4, 5, 0, 0, 0};

/* Probabilities of like, comment, share, save, mention. */
typedef struct mix {
    double p[5];
} mix;
static const mix MIX_BROAD = {{0.55, 0.20, 0.10, 0.12, 0.03}};
static const mix MIX_VIRAL = {{0.65, 0.15, 0.10, 0.08, 0.02}};
static const mix MIX_LIKES = {{1, 0, 0, 0, 0}};
static const mix MIX_RING = {{0.6, 0.4, 0, 0, 0}};

typedef struct gen_event {
    int64_t ts;
    int64_t followers; /* -1: absent */
    int64_t actor;     /* -1: absent; sent as "u<N>" */
    int32_t n;         /* 0: absent */
    int32_t post;      /* -1: absent; sent as "<creator>/p<N>" */
    uint16_t creator;
    uint8_t type;
    int8_t sponsored;  /* -1: absent */
    uint8_t niche;     /* carries the niche */
    uint32_t seq;      /* per creator, in time order: the id */
    uint32_t gen;      /* generation order: breaks ties in the sort */
} gen_event;

typedef struct world world;
typedef void gen_fn(world *w, int c);

/* One creator's planted role. Followers move linearly from f0 to f1 over
 * [end - grow_h, end]. */
typedef struct spec {
    char id[24];
    const char *niche, *role, *expect;
    int64_t f0, f1, grow_h;
    double snap;            /* share of events carrying a follower snapshot */
    int sponsored_every;    /* every Nth daily post is sponsored; 0: never */
    double views_per_day;   /* view events, each standing for 1..20 views */
    double follows_per_day;
    gen_fn *gen;
    double rate;            /* background: weighted engagement / followers / day */
    char role_buf[64];
} spec;

struct world {
    uint64_t seed;
    int64_t end, start; /* event time: [start, end] */
    spec *specs;
    int n_specs;
    gen_event *ev;
    size_t n_ev, cap_ev;
    uint64_t rng;
    int oom;
};

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(world *w) {
    return (double)(splitmix(&w->rng) >> 11) / 9007199254740992.0;
}

static int64_t below(world *w, int64_t n) {
    return n > 0 ? (int64_t)(splitmix(&w->rng) % (uint64_t)n) : 0;
}

/* Day-to-day wobble of a creator's activity, the same for every flow. */
static double day_noise(const world *w, int c, int64_t ts, double amount) {
    uint64_t s = w->seed ^ ((uint64_t)c << 32) ^ (uint64_t)((ts - w->start) / DAY);
    double u = (double)(splitmix(&s) >> 11) / 9007199254740992.0;
    return 1 + amount * (2 * u - 1);
}

static int64_t followers_at(const world *w, const spec *s, int64_t ts) {
    int64_t from = w->end - s->grow_h * HOUR;
    if (ts <= from || s->grow_h == 0)
        return s->f0;
    return s->f0 + (int64_t)((double)(s->f1 - s->f0) * (double)(ts - from) / (double)(w->end - from));
}

/* The post an interaction at ts belongs to: one post a day. */
static int32_t post_at(const world *w, int64_t ts) {
    return (int32_t)((ts - w->start) / DAY);
}

static gen_event *push(world *w, int c, int type, int64_t ts) {
    if (w->n_ev == w->cap_ev) {
        size_t cap = w->cap_ev ? 2 * w->cap_ev : 65536;
        gen_event *e = realloc(w->ev, cap * sizeof *e);
        if (!e) {
            w->oom = 1;
            return NULL;
        }
        w->ev = e;
        w->cap_ev = cap;
    }
    const spec *s = &w->specs[c];
    gen_event *e = &w->ev[w->n_ev++];
    *e = (gen_event){.ts = ts, .followers = -1, .actor = -1, .post = -1, .creator = (uint16_t)c,
                     .type = (uint8_t)type, .sponsored = -1, .gen = (uint32_t)w->n_ev - 1};
    if (uniform(w) < s->snap)
        e->followers = followers_at(w, s, ts);
    e->niche = uniform(w) < 0.2;
    return e;
}

/* A flow of interactions: weighted engagement per day going linearly from
 * per_day0 to per_day1 over [from, to), hour by hour, from actors drawn out
 * of [actor_lo, actor_lo + actors). Events stand for 1..n_max interactions
 * (n_max 1: n absent); only single ones carry an actor. */
typedef struct flow {
    int64_t from, to;
    double per_day0, per_day1, noise;
    const mix *mix;
    int64_t actor_lo, actors;
    double actor_share;
    int n_max;
} flow;

static int pick_type(world *w, const mix *m) {
    double u = uniform(w), acc = 0;
    for (int i = 0; i < 5; i++) {
        acc += m->p[i];
        if (u < acc)
            return T_LIKE + i;
    }
    return T_LIKE;
}

static void interaction(world *w, int c, const flow *f, int64_t h, int64_t end, double *budget) {
    const spec *s = &w->specs[c];
    int type = pick_type(w, f->mix);
    int32_t n = f->n_max > 1 ? 1 + (int32_t)below(w, f->n_max) : 0;
    gen_event *e = push(w, c, type, h + below(w, end - h));
    *budget -= type_weight[type] * (n ? n : 1);
    if (!e)
        return;
    e->n = n;
    if (f->actors && n <= 1 && uniform(w) < f->actor_share)
        e->actor = f->actor_lo + below(w, f->actors);
    e->post = post_at(w, e->ts);
    if (s->sponsored_every)
        e->sponsored = e->post % s->sponsored_every == s->sponsored_every - 1;
}

static void flow_emit(world *w, int c, const flow *f) {
    double budget = 0;
    for (int64_t h = f->from; h < f->to && !w->oom; h += HOUR) {
        int64_t end = h + HOUR < f->to ? h + HOUR : f->to;
        double x = ((double)(h + end) / 2 - (double)f->from) / (double)(f->to - f->from);
        double per_day = f->per_day0 + (f->per_day1 - f->per_day0) * x;
        budget += per_day * (double)(end - h) / DAY * day_noise(w, c, h, f->noise);
        while (budget > 0 && !w->oom)
            interaction(w, c, f, h, end, &budget);
    }
}

/* Events that carry no engagement weight: `per_day` of them, at random
 * times, each standing for 1..n_max (1: n absent). */
static void plain_emit(world *w, int c, int type, double per_day, int n_max) {
    double budget = 0;
    for (int64_t h = w->start; h < w->end && !w->oom; h += HOUR) {
        budget += per_day / 24 * day_noise(w, c, h, 0.2);
        for (; budget >= 1 && !w->oom; budget -= 1) {
            gen_event *e = push(w, c, type, h + below(w, HOUR));
            if (e && n_max > 1)
                e->n = 1 + (int32_t)below(w, n_max);
        }
    }
}

/* Posts (one a day), views and follows: the part every creator shares. */
static void common_emit(world *w, int c) {
    const spec *s = &w->specs[c];
    for (int d = 0; d < SPAN_DAYS && !w->oom; d++) {
        gen_event *e = push(w, c, T_POST, w->start + d * DAY + below(w, 60000));
        if (e)
            e->post = d;
    }
    plain_emit(w, c, T_VIEW, s->views_per_day, 20);
    plain_emit(w, c, T_FOLLOW, s->follows_per_day, 1);
    plain_emit(w, c, T_UNFOLLOW, s->follows_per_day / 4, 1);
}

/* ----------------------------------------------------------------- roles */

/* ~60/day from a few hundred fans for 8.75 days, then 30 h of a broad,
 * fresh audience: climbing to ~900/day within 6 h and ~1,100/day at the
 * end. Rising: E_24h ~1,000 against mu ~64. */
static void gen_riser(world *w, int c) {
    int64_t ramp = w->end - 30 * HOUR, top = w->end - 24 * HOUR;
    flow base = {w->start, ramp, 60, 60, 0.15, &MIX_BROAD, 100000, 400, 0.95, 1};
    flow up = {ramp, top, 60, 900, 0, &MIX_VIRAL, 110000, 20000, 0.95, 1};
    flow high = {top, w->end, 900, 1100, 0.05, &MIX_VIRAL, 110000, 20000, 0.95, 1};
    flow_emit(w, c, &base);
    flow_emit(w, c, &up);
    flow_emit(w, c, &high);
}

/* ~80/day from a broad audience, then ~1,000 in the last day from 5
 * accounts: likes first (so the audience rule already fails when the volume
 * rules start to hold), then likes and comments. Suspicious. */
static void gen_burst(world *w, int c) {
    flow steady = {w->start, w->end, 80, 80, 0.15, &MIX_BROAD, 200000, 1000, 1.0, 1};
    flow likes = {w->end - 22 * HOUR, w->end - 10 * HOUR, 1200, 1200, 0, &MIX_LIKES, 299990, 5, 1.0, 1};
    flow ring = {w->end - 10 * HOUR, w->end - HOUR, 1070, 1070, 0, &MIX_RING, 299990, 5, 1.0, 1};
    flow_emit(w, c, &steady);
    flow_emit(w, c, &likes);
    flow_emit(w, c, &ring);
}

/* ~150/day (3% of 5,000) for 10 days, small noise. Never flagged. */
static void gen_steady(world *w, int c) {
    flow f = {w->start, w->end, 150, 150, 0.1, &MIX_BROAD, 300000, 2000, 0.9, 1};
    flow_emit(w, c, &f);
}

/* 500,000 followers, 20,000/day, 200,000 in the last day, in events of
 * 1..20 interactions. Macro tier: never flagged. */
static void gen_macro(world *w, int c) {
    flow base = {w->start, w->end - DAY, 20000, 20000, 0.1, &MIX_BROAD, 1000000, 1000000, 0.9, 20};
    flow spike = {w->end - DAY, w->end, 200000, 200000, 0, &MIX_VIRAL, 1000000, 1000000, 0.9, 20};
    flow_emit(w, c, &base);
    flow_emit(w, c, &spike);
}

/* Followers 9,600 -> 10,400 over the 10 days (0.8%/day, a snapshot on most
 * events), ~75/day engagement. Graduated once, on the first snapshot above
 * 10,000 (about day 5); nothing else. */
static void gen_grad(world *w, int c) {
    flow f = {w->start, w->end, 75, 75, 0.1, &MIX_BROAD, 400000, 1500, 0.9, 1};
    flow_emit(w, c, &f);
}

/* Steady engagement at `rate` of followers a day. Never flagged. */
static void gen_background(world *w, int c) {
    const spec *s = &w->specs[c];
    double per_day = s->rate * (double)s->f0;
    flow f = {w->start, w->end, per_day, per_day, 0.15, &MIX_BROAD, 500000 + 10000LL * c, 3000,
              0.85, 1};
    flow_emit(w, c, &f);
}

static const spec planted[] = {
    {.id = "demo:riser", .niche = "knitting", .expect = "rising",
     .role = "micro, ~60/day from ~180 fans, then 30 h climbing to ~1,000/day from ~550 new actors",
     .f0 = 3000, .f1 = 3090, .grow_h = 30, .snap = 0.5, .views_per_day = 40,
     .follows_per_day = 4, .gen = gen_riser},
    {.id = "demo:burst", .niche = "fitness", .expect = "suspicious",
     .role = "micro, ~80/day, then ~1,000 in the last day from only 5 accounts",
     .f0 = 4000, .f1 = 4010, .grow_h = 240, .snap = 0.3, .views_per_day = 50,
     .follows_per_day = 3, .gen = gen_burst},
    {.id = "demo:steady", .niche = "cooking", .expect = "none", .role = "micro, steady ~150/day",
     .f0 = 5000, .f1 = 5020, .grow_h = 240, .snap = 0.3, .sponsored_every = 4,
     .views_per_day = 80, .follows_per_day = 3, .gen = gen_steady},
    {.id = "demo:macro", .niche = "travel", .expect = "none",
     .role = "macro, 20,000/day, 200,000 in the last day", .f0 = 500000, .f1 = 502000,
     .grow_h = 240, .snap = 0.3, .sponsored_every = 5, .views_per_day = 3000,
     .follows_per_day = 400, .gen = gen_macro},
    {.id = "demo:grad", .niche = "gaming", .expect = "graduated",
     .role = "followers 9,600 -> 10,400 smoothly (crosses 10,000 on day 5), ~75/day",
     .f0 = 9600, .f1 = 10400, .grow_h = 240, .snap = 0.9, .views_per_day = 100,
     .follows_per_day = 6, .gen = gen_grad},
};

#define N_BG 20
static const char *const bg_niches[] = {"knitting", "fitness", "cooking", "travel", "gaming",
                                        "beauty",   "music",   "books",   "pets",   "gardening"};
static const int64_t bg_followers[N_BG] = {400,  650,  900,  1200, 1500, 2000, 2500,
                                           3000, 3500, 4200, 5000, 5800, 6500, 7200,
                                           8000, 8800, 9500, 700,  1800, 2700};

static int world_specs(world *w) {
    size_t n_planted = sizeof planted / sizeof planted[0];
    w->n_specs = (int)n_planted + N_BG;
    w->specs = calloc((size_t)w->n_specs, sizeof *w->specs);
    if (!w->specs)
        return -ENOMEM;
    memcpy(w->specs, planted, sizeof planted);
    for (int k = 0; k < N_BG; k++) {
        spec *s = &w->specs[n_planted + (size_t)k];
        int64_t f = bg_followers[k];
        snprintf(s->id, sizeof s->id, "demo:bg%d", k);
        s->niche = bg_niches[k % 10];
        s->rate = 0.01 + 0.005 * (k % 5); /* 1% .. 3% of followers a day */
        snprintf(s->role_buf, sizeof s->role_buf, "background %s, steady ~%.0f/day (%.1f%%)",
                 f < 1000 ? "nano" : "micro", s->rate * (double)f, 100 * s->rate);
        s->role = s->role_buf;
        s->expect = "none";
        s->f0 = f;
        s->f1 = f + f / 100; /* +1% over 10 days */
        s->grow_h = 240;
        s->snap = 0.3;
        s->sponsored_every = k % 3 == 0 ? 5 : 0;
        s->views_per_day = (double)f / 50;
        s->follows_per_day = (double)f / 500;
        s->gen = gen_background;
    }
    return 0;
}

static int cmp_event(const void *a, const void *b) {
    const gen_event *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->creator != y->creator)
        return x->creator < y->creator ? -1 : 1;
    return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* Generate, sort by event time, then number each creator's events and make
 * its first one carry the follower count and niche (tier known from the
 * start; a macro creator is never "graduated"). */
static int world_build(world *w) {
    if (world_specs(w) < 0)
        return -ENOMEM;
    for (int c = 0; c < w->n_specs && !w->oom; c++) {
        w->rng = w->seed * 0x100000001b3ULL + (uint64_t)c;
        w->specs[c].gen(w, c);
        common_emit(w, c);
    }
    if (w->oom)
        return -ENOMEM;
    qsort(w->ev, w->n_ev, sizeof *w->ev, cmp_event);
    uint32_t *next = calloc((size_t)w->n_specs, sizeof *next);
    if (!next)
        return -ENOMEM;
    for (size_t i = 0; i < w->n_ev; i++) {
        gen_event *e = &w->ev[i];
        if (next[e->creator] == 0) {
            e->followers = followers_at(w, &w->specs[e->creator], e->ts);
            e->niche = 1;
        }
        e->seq = next[e->creator]++;
    }
    free(next);
    return 0;
}

/* ------------------------------------------------------------ rendering */

typedef struct strings {
    char id[48], actor[24], post[48];
} strings;

static void event_view(const world *w, const gen_event *g, nousu_event *ret, strings *st) {
    const spec *s = &w->specs[g->creator];
    nousu_event ev = NOUSU_EVENT_INIT;
    ev.creator = s->id;
    ev.type = type_names[g->type];
    ev.ts = g->ts;
    snprintf(st->id, sizeof st->id, "%s:%" PRIu32, s->id, g->seq);
    ev.id = st->id;
    ev.n = g->n;
    ev.followers = g->followers;
    ev.niche = g->niche ? s->niche : NULL;
    if (g->actor >= 0) {
        snprintf(st->actor, sizeof st->actor, "u%" PRId64, g->actor);
        ev.actor = st->actor;
    }
    if (g->post >= 0) {
        snprintf(st->post, sizeof st->post, "%s/p%" PRId32, s->id, g->post);
        ev.post = st->post;
    }
    ev.sponsored = g->sponsored;
    *ret = ev;
}

static int print_jsonl(const nousu_event *ev) {
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "creator", ev->creator, "type", ev->type, "ts",
                          (json_int_t)ev->ts, "id", ev->id);
    if (!o)
        return -ENOMEM;
    if (ev->n > 0)
        json_object_set_new(o, "n", json_integer(ev->n));
    if (ev->followers >= 0)
        json_object_set_new(o, "followers", json_integer(ev->followers));
    if (ev->niche)
        json_object_set_new(o, "niche", json_string(ev->niche));
    if (ev->actor)
        json_object_set_new(o, "actor", json_string(ev->actor));
    if (ev->post)
        json_object_set_new(o, "post", json_string(ev->post));
    if (ev->sponsored >= 0)
        json_object_set_new(o, "sponsored", json_boolean(ev->sponsored));
    int r = json_dumpf(o, stdout, JSON_COMPACT) < 0 || putchar('\n') == EOF ? -EIO : 0;
    json_decref(o);
    return r;
}

static void print_world(const world *w) {
    printf("%-12s %-10s %-15s %-10s %s\n", "creator", "niche", "followers", "expect", "role");
    for (int c = 0; c < w->n_specs; c++) {
        const spec *s = &w->specs[c];
        char fol[32];
        if (s->f0 == s->f1)
            snprintf(fol, sizeof fol, "%" PRId64, s->f0);
        else
            snprintf(fol, sizeof fol, "%" PRId64 "->%" PRId64, s->f0, s->f1);
        printf("%-12s %-10s %-15s %-10s %s\n", s->id, s->niche, fol, s->expect, s->role);
    }
}

/* -------------------------------------------------------------- sending */

typedef struct options {
    const char *endpoint, *server_key, *key_file;
    bool ack, print, jsonl, dry_run;
    int64_t batch, timeout_ms, end_ms;
    uint64_t seed;
    double speed;
} options;

static int64_t wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* --speed: hold event ts back until (ts - start) / speed of wall time has
 * passed since the first event; the batch so far goes out first. */
static int pace(nousu_producer *p, const options *o, const world *w, int64_t t0, int64_t ts) {
    int64_t due = t0 + (int64_t)((double)(ts - w->start) / o->speed);
    int64_t wait = due - wall_ms();
    if (wait <= 0)
        return 0;
    int r = p ? nousu_producer_flush(p) : 0;
    struct timespec d = {wait / 1000, (wait % 1000) * 1000000};
    if (r == 0)
        nanosleep(&d, NULL); /* a signal cuts it short: cli_stop ends the loop */
    return r;
}

static int play(const world *w, const options *o, nousu_producer *p) {
    int64_t t0 = wall_ms();
    int r = 0;
    for (size_t i = 0; i < w->n_ev && r == 0 && !cli_stop; i++) {
        nousu_event ev;
        strings st;
        if (o->speed > 0)
            r = pace(p, o, w, t0, w->ev[i].ts);
        event_view(w, &w->ev[i], &ev, &st);
        if (r == 0)
            r = p ? nousu_producer_add(p, &ev) : print_jsonl(&ev);
    }
    if (r == 0 && p)
        r = nousu_producer_flush(p);
    return r;
}

static void iso(int64_t ms, char *buf, size_t cap) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void summary(const world *w, const options *o, const nousu_producer_stats *st) {
    char a[32], b[32];
    iso(w->start, a, sizeof a);
    iso(w->end, b, sizeof b);
    if (o->jsonl || o->dry_run) {
        fprintf(stderr, PROG ": %zu events %s, event time %s .. %s\n", w->n_ev,
                o->dry_run ? "generated, none sent" : "written", a, b);
        return;
    }
    fprintf(stderr, PROG ": %llu events sent in %llu batches to %s, event time %s .. %s",
            (unsigned long long)st->events_sent, (unsigned long long)st->batches_sent,
            o->endpoint, a, b);
    if (o->ack)
        fprintf(stderr, "; ok %llu, dup %llu, rejected %llu", (unsigned long long)st->ok,
                (unsigned long long)st->dup, (unsigned long long)st->rejected);
    fprintf(stderr, "\n");
}

static void usage(FILE *f) {
    fprintf(f,
            "Usage: " PROG " [OPTIONS]\n"
            "Play a deterministic synthetic world of creators to nousud, in event time\n"
            "from now - 10 days to now, so its alerts appear within seconds. Expected:\n"
            "rising.knitting demo:riser, suspicious.fitness demo:burst, graduated.gaming\n"
            "demo:grad, and nothing else (see --print-world). Use a fresh Redis (or key\n"
            "prefix): event ids repeat from run to run, and a second run's older\n"
            "events are too_old for creators the first run already moved to now.\n"
            "\n"
            "  -e, --endpoint URL  ingest endpoint (default " NOUSU_DEFAULT_INGEST ",\n"
            "                      with --ack " NOUSU_DEFAULT_INGEST_ACK ")\n"
            "  -a, --ack           acknowledged ingest (DEALER), report ok/dup/rejected\n"
            "  -b, --batch N       events per message (default 1000)\n"
            "      --timeout-ms MS ack wait per attempt (default 3000)\n"
            "  -s, --seed N        world seed (default 1)\n"
            "      --speed X       event time runs X times faster than wall time\n"
            "                      (86400: a day per second); default: as fast as possible\n"
            "      --end-ms MS     event time ends here instead of now (ms since the epoch)\n"
            "      --print-world   first print the creators, their roles and expected alerts\n"
            "      --dry-run       generate the world but send nothing\n"
            "      --jsonl         write the events as JSON lines to stdout instead of\n"
            "                      sending them (for nousu-send or inspection)\n"
            "      --curve-server-key KEY, --curve-keys FILE   CURVE, as in nousu-send\n"
            "  -h, --help, -V, --version\n");
}

enum { OPT_TIMEOUT = 256, OPT_SPEED, OPT_END, OPT_PRINT, OPT_DRY, OPT_JSONL, OPT_SERVER_KEY,
       OPT_KEYS };

static bool parse_option(int c, options *o) {
    switch (c) {
    case 'e': o->endpoint = optarg; return true;
    case 'a': o->ack = true; return true;
    case 'b': return cli_int(PROG, "--batch", optarg, 1, NOUSU_MAX_BATCH_EVENTS, &o->batch);
    case OPT_TIMEOUT: return cli_int(PROG, "--timeout-ms", optarg, 1, 86400000, &o->timeout_ms);
    case 's': return cli_uint64(PROG, "--seed", optarg, &o->seed);
    case OPT_SPEED: return cli_double(PROG, "--speed", optarg, 0, &o->speed);
    case OPT_END: return cli_int(PROG, "--end-ms", optarg, 30 * DAY, INT64_MAX / 2, &o->end_ms);
    case OPT_PRINT: o->print = true; return true;
    case OPT_DRY: o->dry_run = true; return true;
    case OPT_JSONL: o->jsonl = true; return true;
    case OPT_SERVER_KEY: o->server_key = optarg; return true;
    case OPT_KEYS: o->key_file = optarg; return true;
    case 'h': usage(stdout); exit(0);
    case 'V': printf(PROG " %s\n", nousu_version()); exit(0);
    }
    return false;
}

static int parse_options(int argc, char **argv, options *o) {
    static const struct option longs[] = {
        {"endpoint", required_argument, NULL, 'e'},  {"ack", no_argument, NULL, 'a'},
        {"batch", required_argument, NULL, 'b'},     {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"seed", required_argument, NULL, 's'},      {"speed", required_argument, NULL, OPT_SPEED},
        {"end-ms", required_argument, NULL, OPT_END}, {"print-world", no_argument, NULL, OPT_PRINT},
        {"dry-run", no_argument, NULL, OPT_DRY},     {"jsonl", no_argument, NULL, OPT_JSONL},
        {"curve-server-key", required_argument, NULL, OPT_SERVER_KEY},
        {"curve-keys", required_argument, NULL, OPT_KEYS},
        {"help", no_argument, NULL, 'h'},            {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    *o = (options){.batch = NOUSU_DEFAULT_BATCH, .timeout_ms = 3000, .seed = 1};
    while ((c = getopt_long(argc, argv, "e:ab:s:hV", longs, NULL)) != -1)
        if (!parse_option(c, o)) {
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return -EINVAL;
        }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\nTry '" PROG " --help'.\n", argv[optind]);
        return -EINVAL;
    }
    if (!o->endpoint)
        o->endpoint = o->ack ? NOUSU_DEFAULT_INGEST_ACK : NOUSU_DEFAULT_INGEST;
    return 0;
}

static nousu_producer *producer_open(const options *o, const nousu_curve *curve) {
    nousu_producer_opts po = {
        .mode = o->ack ? NOUSU_MODE_ACK : NOUSU_MODE_PUSH,
        .batch_size = (uint32_t)o->batch,
        .ack_timeout_ms = (int)o->timeout_ms,
        .curve = curve,
    };
    nousu_producer *p = nousu_producer_new(o->endpoint, &po);
    if (!p)
        fprintf(stderr, PROG ": %s: %s\n", o->endpoint, strerror(errno));
    return p;
}

int main(int argc, char **argv) {
    options o;
    cli_curve cc;
    bool use_curve;
    world w = {0};
    nousu_producer *p = NULL;
    nousu_producer_stats st = {0};
    int r;
    if (parse_options(argc, argv, &o) < 0 ||
        !cli_curve_load(PROG, o.server_key, o.key_file, &cc, &use_curve))
        return CLI_EXIT_USAGE;
    w.seed = o.seed;
    /* A second of margin: the daemon's clock may lag ours a little. */
    w.end = o.end_ms ? o.end_ms : wall_ms() - 1000;
    w.start = w.end - SPAN_DAYS * DAY;
    if ((r = world_build(&w)) == 0 && o.print) {
        print_world(&w);
        fflush(stdout);
    }
    if (r == 0 && o.dry_run) {
        summary(&w, &o, &st);
        goto out;
    }
    cli_signals();
    if (r == 0 && !o.jsonl && !(p = producer_open(&o, use_curve ? &cc.keys : NULL)))
        r = -EIO;
    if (r == 0)
        r = play(&w, &o, p);
    if (r < 0)
        fprintf(stderr, PROG ": %s\n", r == -ETIMEDOUT ? "no ack (is nousud running?)" : strerror(-r));
    if (p)
        nousu_producer_stats_get(p, &st);
    summary(&w, &o, &st);
out:
    nousu_producer_destroy(&p);
    free(w.ev);
    free(w.specs);
    return r < 0 || st.rejected ? CLI_EXIT_FAIL : 0;
}
