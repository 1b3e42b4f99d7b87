/* hints.c -- NOUSU.HINTS: the hinted runs of a commit (the Hints section of
 * nousu.lua) taken in C, where the Function would spend ~6 us a run in Lua:
 * it hashes every byte of each state once more on unpacking ARGV[7] and
 * again when SET ... GET returns the old one (docs/performance.md).
 *
 *   NOUSU.HINTS prefix ttl-seconds hints leave
 *     hints: ARGV[7] of nousu_commit_runs (daemon/hintflat.h)
 *     leave: msgpack array of the places of hints not to take, or ''
 *   -> [taken, [place of each hint refused ...], [niche, now, ...]]
 *
 * A hint is taken when the creator's state is still its old bytes: the new
 * state is written with the TTL (a compare-and-set: nothing is written when
 * it is refused), its actors are PFADDed into prefix{creator}:u:bucket and,
 * for a new bucket, that key gets the TTL. The niches of the hints taken
 * come back once each, with the newest now. A hint whose now is not an
 * integer is refused (the Function takes it the usual way; the daemon sends
 * integers).
 *
 * Replication: the writes, not the command (SET ... PXAT, PFADD, EXPIRE), so
 * that replicas and the AOF need no module for them.
 *
 * Errors: before any write (bad arguments, malformed hints) the reply is an
 * "ERR nousu: ..." and nothing changed; the Function then takes the hints
 * itself. An error after a write (a PFADD refused: the key is not a
 * HyperLogLog) says "partly written", and the Function fails the commit
 * with it, as its own PFADD would have. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hintflat.h"
#include "hints.h"

#define PARTLY "ERR nousu: hints partly written: "
#define TTL_MAX_S (100LL * 365 * 86400)

typedef struct niche_now {
    hintflat_str niche;
    long long now;
} niche_now;

/* What one call needs beyond the hints: grown as needed, freed at the end. */
typedef struct scratch {
    char *name;
    size_t name_cap;
    RedisModuleString **actors;
    size_t actors_cap;
} scratch;

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = RedisModule_Realloc(*p, n * size);
    if (!q)
        return false;
    *p = q, *cap = n;
    return true;
}

/* prefix{creator}, with ":u:" bucket when bucket is not NULL. */
static RedisModuleString *key_name(RedisModuleCtx *ctx, scratch *s, const hintflat_str *prefix,
                                   const hintflat_hint *h, const hintflat_str *bucket) {
    size_t n = prefix->len + h->creator.len + 2 + (bucket ? 3 + bucket->len : 0);
    if (!grow((void **)&s->name, &s->name_cap, n, 1))
        return NULL;
    char *w = s->name;
    memcpy(w, prefix->ptr, prefix->len), w += prefix->len;
    *w++ = '{';
    memcpy(w, h->creator.ptr, h->creator.len), w += h->creator.len;
    *w++ = '}';
    if (bucket) {
        memcpy(w, ":u:", 3), w += 3;
        memcpy(w, bucket->ptr, bucket->len), w += bucket->len;
    }
    return RedisModule_CreateString(ctx, s->name, n);
}

/* The open string k becomes s. One of the same length (most: a state's
 * fields change in value, seldom in size) is written over the old bytes:
 * a new string costs an allocation, another lookup of the key and its TTL
 * dropped, to be set again. */
static void write_state(RedisModuleCtx *ctx, RedisModuleKey *k, size_t cur_len,
                        const hintflat_str *s) {
    char *cur = cur_len == s->len ? RedisModule_StringDMA(k, &cur_len, REDISMODULE_WRITE) : NULL;
    if (cur && cur_len == s->len) {
        memcpy(cur, s->ptr, s->len);
        return;
    }
    RedisModuleString *v = RedisModule_CreateString(ctx, s->ptr, s->len);
    RedisModule_StringSet(k, v);
    RedisModule_FreeString(ctx, v);
}

/* The state at name becomes the hint's new one if it is still its old one:
 * true when it did. */
static bool swap_state(RedisModuleCtx *ctx, RedisModuleString *name, const hintflat_hint *h,
                       long long ttl_ms) {
    RedisModuleKey *k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ | REDISMODULE_WRITE);
    bool fresh = false;
    size_t len = 0;
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_STRING) {
        const char *cur = RedisModule_StringDMA(k, &len, REDISMODULE_READ);
        fresh = cur && len == h->old_state.len && memcmp(cur, h->old_state.ptr, len) == 0;
    }
    if (fresh) {
        write_state(ctx, k, len, &h->new_state);
        RedisModule_SetExpire(k, ttl_ms);
        RedisModule_Replicate(ctx, "SET", "sbcl", name, h->new_state.ptr, h->new_state.len,
                              "PXAT", RedisModule_GetAbsExpire(k));
    }
    RedisModule_CloseKey(k);
    return fresh;
}

/* Reply with the error of a call made after a write; REDISMODULE_OK. */
static int partly(RedisModuleCtx *ctx, const char *cmd, RedisModuleString *key,
                  RedisModuleCallReply *r) {
    size_t len = 0;
    const char *msg = r ? RedisModule_CallReplyStringPtr(r, &len) : NULL;
    RedisModuleString *e = RedisModule_CreateStringPrintf(
        ctx, PARTLY "%s %s: %.*s", cmd, RedisModule_StringPtrLen(key, NULL), (int)len,
        msg ? msg : strerror(errno));
    RedisModule_ReplyWithError(ctx, RedisModule_StringPtrLen(e, NULL));
    RedisModule_FreeString(ctx, e);
    return REDISMODULE_OK;
}

static bool call_ok(RedisModuleCallReply *r) {
    return r && RedisModule_CallReplyType(r) != REDISMODULE_REPLY_ERROR;
}

/* PFADD the hint's actors (and EXPIRE a new bucket): 0, or -1 after an
 * error reply. */
static int add_actors(RedisModuleCtx *ctx, scratch *s, const hintflat_str *prefix,
                      hintflat_hint *h, RedisModuleString *ttl) {
    if (h->n_actors == 0)
        return 0;
    if (!grow((void **)&s->actors, &s->actors_cap, h->n_actors, sizeof *s->actors))
        return RedisModule_ReplyWithError(ctx, PARTLY "out of memory"), -1;
    RedisModuleString *hk = key_name(ctx, s, prefix, h, &h->bucket);
    if (!hk)
        return RedisModule_ReplyWithError(ctx, PARTLY "out of memory"), -1;
    hintflat_str a;
    size_t n = 0;
    while (hintflat_actor(h, &a))
        s->actors[n++] = RedisModule_CreateString(ctx, a.ptr, a.len);
    RedisModuleCallReply *r = RedisModule_Call(ctx, "PFADD", "!sv", hk, s->actors, n);
    int rc = call_ok(r) ? 0 : (partly(ctx, "PFADD", hk, r), -1);
    if (r)
        RedisModule_FreeCallReply(r);
    for (size_t i = 0; i < n; i++)
        RedisModule_FreeString(ctx, s->actors[i]);
    if (rc == 0 && h->new_bucket) {
        r = RedisModule_Call(ctx, "EXPIRE", "!ss", hk, ttl);
        rc = call_ok(r) ? 0 : (partly(ctx, "EXPIRE", hk, r), -1);
        if (r)
            RedisModule_FreeCallReply(r);
    }
    RedisModule_FreeString(ctx, hk);
    return rc;
}

/* 1 taken, 0 refused, -1 after an error reply. */
static int take_hint(RedisModuleCtx *ctx, scratch *s, const hintflat_str *prefix,
                     hintflat_hint *h, RedisModuleString *ttl, long long ttl_ms) {
    if (!h->now_is_int)
        return 0;
    RedisModuleString *name = key_name(ctx, s, prefix, h, NULL);
    if (!name)
        return RedisModule_ReplyWithError(ctx, PARTLY "out of memory"), -1;
    bool fresh = swap_state(ctx, name, h, ttl_ms);
    RedisModule_FreeString(ctx, name);
    if (!fresh)
        return 0;
    return add_actors(ctx, s, prefix, h, ttl) < 0 ? -1 : 1;
}

static int cmp_place(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_niche(const void *a, const void *b) {
    const hintflat_str *x = &((const niche_now *)a)->niche, *y = &((const niche_now *)b)->niche;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->ptr, y->ptr, x->len);
}

/* Each niche once, with its newest now. */
static void reply_niches(RedisModuleCtx *ctx, niche_now *nn, size_t n) {
    qsort(nn, n, sizeof *nn, cmp_niche);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out && cmp_niche(&nn[out - 1], &nn[i]) == 0) {
            if (nn[i].now > nn[out - 1].now)
                nn[out - 1].now = nn[i].now;
        } else {
            nn[out++] = nn[i];
        }
    }
    RedisModule_ReplyWithArray(ctx, (long)(2 * out));
    for (size_t i = 0; i < out; i++) {
        RedisModule_ReplyWithStringBuffer(ctx, nn[i].niche.ptr, nn[i].niche.len);
        RedisModule_ReplyWithLongLong(ctx, nn[i].now);
    }
}

/* The hints in flat: their number, or -1 when malformed. */
static long count_hints(const char *flat, size_t len) {
    hintflat f;
    hintflat_hint h;
    long n = 0;
    int rc;
    if (hintflat_open(&f, flat, len) < 0)
        return -1;
    while ((rc = hintflat_next(&f, &h)) == 1)
        n++;
    return rc < 0 ? -1 : n;
}

typedef struct outcome {
    long long taken;
    uint32_t *refused;
    size_t n_refused;
    niche_now *niches;
    size_t n_niches;
} outcome;

/* Take every hint of flat (checked by count_hints) whose place is not in
 * leave (sorted): 0, or -1 after an error reply. */
static int take_all(RedisModuleCtx *ctx, const hintflat_str *prefix, const hintflat_str *flat,
                    const uint32_t *leave, size_t n_leave, RedisModuleString *ttl,
                    long long ttl_ms, outcome *o) {
    scratch s = {0};
    hintflat f;
    hintflat_hint h;
    int rc = 0;
    hintflat_open(&f, flat->ptr, flat->len);
    while (rc == 0 && hintflat_next(&f, &h) == 1) {
        if (bsearch(&h.p, leave, n_leave, sizeof *leave, cmp_place))
            continue;
        int t = take_hint(ctx, &s, prefix, &h, ttl, ttl_ms);
        if (t < 0) {
            rc = -1;
        } else if (t == 0) {
            o->refused[o->n_refused++] = h.p;
        } else {
            o->taken++;
            if (h.niche.ptr)
                o->niches[o->n_niches++] = (niche_now){h.niche, h.now};
        }
    }
    RedisModule_Free(s.name);
    RedisModule_Free(s.actors);
    return rc;
}

int hints_take(RedisModuleCtx *ctx, RedisModuleString *prefix_s, RedisModuleString *ttl,
               const char *hints, size_t hints_len, RedisModuleString *leave_s) {
    long long ttl_s;
    if (RedisModule_StringToLongLong(ttl, &ttl_s) != REDISMODULE_OK || ttl_s <= 0 ||
        ttl_s > TTL_MAX_S)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the TTL must be 1 to 100 years of seconds");
    hintflat_str prefix, flat = {hints, hints_len}, leave_b;
    prefix.ptr = RedisModule_StringPtrLen(prefix_s, &prefix.len);
    leave_b.ptr = RedisModule_StringPtrLen(leave_s, &leave_b.len);
    long n = count_hints(flat.ptr, flat.len);
    if (n < 0)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the hints are malformed");
    uint32_t *leave = RedisModule_PoolAlloc(ctx, sizeof *leave * (leave_b.len + 1));
    long n_leave = hintflat_places(leave_b.ptr, leave_b.len, leave, leave_b.len + 1);
    if (n_leave < 0)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the places to leave are malformed");
    qsort(leave, (size_t)n_leave, sizeof *leave, cmp_place);
    outcome o = {.refused = RedisModule_PoolAlloc(ctx, sizeof *o.refused * ((size_t)n + 1)),
                 .niches = RedisModule_PoolAlloc(ctx, sizeof *o.niches * ((size_t)n + 1))};
    if (take_all(ctx, &prefix, &flat, leave, (size_t)n_leave, ttl, ttl_s * 1000, &o) < 0)
        return REDISMODULE_OK;
    RedisModule_ReplyWithArray(ctx, 3);
    RedisModule_ReplyWithLongLong(ctx, o.taken);
    RedisModule_ReplyWithArray(ctx, (long)o.n_refused);
    for (size_t i = 0; i < o.n_refused; i++)
        RedisModule_ReplyWithLongLong(ctx, o.refused[i]);
    reply_niches(ctx, o.niches, o.n_niches);
    return REDISMODULE_OK;
}

static int hints_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 5)
        return RedisModule_WrongArity(ctx);
    size_t len;
    const char *hints = RedisModule_StringPtrLen(argv[3], &len);
    return hints_take(ctx, argv[1], argv[2], hints, len, argv[4]);
}

int hints_register(RedisModuleCtx *ctx) {
    return RedisModule_CreateCommand(ctx, "nousu.hints", hints_cmd, "write deny-oom", 0, 0, 0);
}
