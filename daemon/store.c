/* store.c -- Redis through hiredis: connection, the Function library, the
 * per-iteration commit and the post-detection round trip (see store.h). */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "clock.h"
#include "log.h"
#include "plan.h"
#include "resp.h"
#include "store.h"
#include "wire.h"

extern const char nousu_lua_source[];
extern const size_t nousu_lua_source_len;

typedef struct dl_entry {
    char reason[24];
    batch_source src;
    int64_t received_ms;
    char *raw;
    size_t raw_len;
} dl_entry;

/* A commit sent, waiting for its reply. */
typedef struct sent_commit {
    plan pl; /* the reply's states name its runs */
    uint64_t seq;
    bool runs_form;
    bool stashed; /* the reply of its NOUSU.STASH comes first */
    uint32_t hints;
    size_t n_units;
} sent_commit;

/* Hints and fallbacks smaller than this go as arguments: a STASH costs
 * Redis a command (~2 us), hashing 1 KB in Lua about as much. */
#define STASH_MIN_BYTES 1024

#define SENT_MAX 4

struct store {
    store_opts o;
    char *host, *user, *password, *prefix;
    redisContext *c;
    dl_entry *dlq;
    size_t dl_n;
    mpbuf sb;
    /* the runs form of a commit: the events of one run, the ids, their runs */
    mpbuf ids, owners;
    wire_bufs wb;
    /* commits sent and not yet answered, oldest first; ready: a reply
     * read ahead by store_commit_poll */
    sent_commit sent[SENT_MAX];
    size_t sent_head, sent_n;
    uint64_t sent_seq; /* the last commit sent's */
    redisReply *ready;
    /* the plan of a batch not sent yet (store_commit_blind) */
    plan prepared;
    const batch *prepared_for;
    int64_t intset_max; /* Redis's set-max-intset-entries; 0 unknown, -1 not read yet */
    bool stash_ok;      /* Redis has NOUSU.STASH (the nousu module) and we may use it */
    /* the ids of the commits sent (NULL: none kept); the last commit sent,
     * the one the next follows in the chain (nousu.lua, Dedup), and the
     * one that followed, for a resend of the last after a lost connection */
    idfilter *idf;
    char chain_last[64], chain_prev[64];
};

/* ---- connection ------------------------------------------------------ */

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

store *store_new(const store_opts *o) {
    store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->host = dup_or_empty(o->host);
    s->user = dup_or_empty(o->user);
    s->password = dup_or_empty(o->password);
    s->prefix = dup_or_empty(o->prefix);
    s->dlq = calloc(o->deadletter_queue_max ? o->deadletter_queue_max : 1, sizeof *s->dlq);
    if (o->dedup_filter_bytes)
        s->idf = idfilter_new(o->dedup_filter_bytes, wall_ms());
    if (!s->host || !s->user || !s->password || !s->prefix || !s->dlq ||
        (o->dedup_filter_bytes && !s->idf)) {
        store_destroy(&s);
        return NULL;
    }
    mpbuf_init(&s->sb);
    wire_bufs_init(&s->wb);
    mpbuf_init(&s->ids);
    mpbuf_init(&s->owners);
    return s;
}

/* Commits sent on the connection are lost with it. */
static void drop_connection(store *s) {
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    for (; s->sent_n; s->sent_n--, s->sent_head = (s->sent_head + 1) % SENT_MAX)
        plan_free(&s->sent[s->sent_head].pl);
    if (s->ready)
        freeReplyObject(s->ready);
    s->ready = NULL;
}

void store_destroy(store **sp) {
    store *s = sp ? *sp : NULL;
    if (!s)
        return;
    drop_connection(s);
    for (size_t i = 0; i < s->dl_n; i++)
        free(s->dlq[i].raw);
    free(s->dlq);
    if (s->password) /* do not leave the secret in freed memory */
        memset(s->password, 0, strlen(s->password));
    free(s->host);
    free(s->user);
    free(s->password);
    free(s->prefix);
    mpbuf_destroy(&s->sb);
    wire_bufs_destroy(&s->wb);
    mpbuf_destroy(&s->ids);
    mpbuf_destroy(&s->owners);
    plan_free(&s->prepared);
    idfilter_destroy(&s->idf);
    free(s);
    *sp = NULL;
}

bool store_connected(const store *s) { return s->c != NULL; }

void store_disconnect(store *s) { drop_connection(s); }

/* Run one command synchronously; NULL on any failure (logged). */
static redisReply *command(store *s, const char *what, int argc, const char **argv,
                           const size_t *lens) {
    redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
    if (!r) {
        log_error("redis: %s: %s", what, s->c->errstr[0] ? s->c->errstr : "no reply");
        drop_connection(s);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("redis: %s: %s", what, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int run_simple(store *s, const char *what, int argc, const char **argv,
                      const size_t *lens) {
    redisReply *r = command(s, what, argc, argv, lens);
    if (!r)
        return -EIO;
    freeReplyObject(r);
    return 0;
}

static int authenticate(store *s) {
    if (!s->password[0])
        return 0;
    if (s->user[0]) {
        const char *argv[] = {"AUTH", s->user, s->password};
        return run_simple(s, "AUTH (user)", 3, argv, NULL);
    }
    const char *argv[] = {"AUTH", s->password};
    return run_simple(s, "AUTH", 2, argv, NULL);
}

static int select_db(store *s) {
    if (s->o.db == 0)
        return 0;
    char db[24];
    snprintf(db, sizeof db, "%d", s->o.db);
    const char *argv[] = {"SELECT", db};
    return run_simple(s, "SELECT", 2, argv, NULL);
}

/* FUNCTION LOAD REPLACE on every connect: cheap, and it upgrades the library
 * of an older daemon (Functions persist in Redis across its restarts). */
static int load_functions(store *s) {
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", nousu_lua_source};
    size_t lens[] = {8, 4, 7, nousu_lua_source_len};
    return run_simple(s, "FUNCTION LOAD", 4, argv, lens);
}

/* Whether the nousu module's stash answers (nil for a stash that is not
 * there); an older module, none, or an ACL without it: hints as arguments.
 * -EIO when the connection went. */
static int probe_stash(store *s) {
    s->stash_ok = false;
    if (!s->o.stash)
        return 0;
    redisReply *r = redisCommand(s->c, "NOUSU.STASHLEN nousu-probe");
    if (!r)
        return -EIO;
    s->stash_ok = r->type == REDIS_REPLY_NIL;
    if (r->type == REDIS_REPLY_ERROR)
        log_debug("redis: NOUSU.STASHLEN: %s; hints go as arguments", r->str);
    freeReplyObject(r);
    return 0;
}

/* set-max-intset-entries, for the dedup's sizing. A user without CONFIG
 * rights (the least-privilege ACL of docs/security.md) gets 0: unknown. */
static int64_t read_intset_max(store *s) {
    redisReply *r = redisCommand(s->c, "CONFIG GET set-max-intset-entries");
    int64_t v = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        v = strtoll(r->element[1]->str, NULL, 10);
    if (r && r->type == REDIS_REPLY_ERROR)
        log_info("redis: CONFIG GET set-max-intset-entries: %s; dedup sets sized for 512",
                 r->str);
    if (r)
        freeReplyObject(r);
    else
        drop_connection(s);
    return v > 0 ? v : 0;
}

/* Read on first use after a connect: only the loop's connection needs it. */
int64_t store_intset_max(store *s) {
    if (s->intset_max < 0 && s->c)
        s->intset_max = read_intset_max(s);
    return s->intset_max > 0 ? s->intset_max : 0;
}

int store_connect(store *s) {
    drop_connection(s);
    struct timeval tv = {s->o.timeout_ms / 1000, (s->o.timeout_ms % 1000) * 1000};
    s->c = redisConnectWithTimeout(s->host, s->o.port, tv);
    if (!s->c || s->c->err) {
        log_error("redis: cannot connect to %s:%d: %s", s->host, s->o.port,
                  s->c ? s->c->errstr : "out of memory");
        drop_connection(s);
        return -ECONNREFUSED;
    }
    redisSetTimeout(s->c, tv);
    redisEnableKeepAlive(s->c);
    if (authenticate(s) < 0 || select_db(s) < 0 || load_functions(s) < 0 || probe_stash(s) < 0) {
        drop_connection(s);
        return -EIO;
    }
    s->intset_max = -1;
    return 0;
}

/* ---- msgpack helpers ---------------------------------------------------- */

static void pack_cstr(mpbuf *out, const char *p) { mpbuf_str(out, p, strlen(p)); }

static double mp_num(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return o->via.f64;
    default: return 0;
    }
}

static int64_t mp_int(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (int64_t)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return o->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return (int64_t)o->via.f64;
    default: return 0;
    }
}

/* A copy of a str/bin object as a C string; NULL for anything else. */
static char *mp_strdup(const msgpack_object *o, size_t *ret_len) {
    if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)
        return NULL;
    size_t len = o->via.str.size;
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, o->via.str.ptr, len);
    p[len] = '\0';
    if (ret_len)
        *ret_len = len;
    return p;
}

static const msgpack_object *mp_at(const msgpack_object *o, size_t i) {
    static const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    if (o->type != MSGPACK_OBJECT_ARRAY || i >= o->via.array.size)
        return &nil;
    return &o->via.array.ptr[i];
}

static size_t mp_len(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 0;
}

/* ---- pipelining ------------------------------------------------------------ */

static int append(store *s, int argc, const char **argv, const size_t *lens) {
    if (redisAppendCommandArgv(s->c, argc, argv, lens) != REDIS_OK)
        return -ENOMEM;
    return 0;
}

/* Read one pipelined reply. Returns NULL and drops the connection on I/O
 * errors; an error reply is returned as such (the caller decides). */
static redisReply *read_reply(store *s) {
    void *r = NULL;
    if (redisGetReply(s->c, &r) != REDIS_OK || !r) {
        log_error("redis: %s", s->c->errstr[0] ? s->c->errstr : "connection lost");
        drop_connection(s);
        return NULL;
    }
    return r;
}

static const char *source_name(batch_source src) {
    return src == SOURCE_ACK ? "ingest_ack" : "ingest";
}

int store_deadletter(store *s, const char *reason, batch_source src, int64_t received_ms,
                     const void *raw, size_t raw_len) {
    if (s->dl_n >= s->o.deadletter_queue_max)
        return -ENOBUFS;
    if (raw_len > s->o.deadletter_raw_max)
        raw_len = s->o.deadletter_raw_max;
    dl_entry *e = &s->dlq[s->dl_n];
    e->raw = malloc(raw_len ? raw_len : 1);
    if (!e->raw)
        return -ENOBUFS;
    memcpy(e->raw, raw, raw_len);
    e->raw_len = raw_len;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    e->src = src;
    e->received_ms = received_ms;
    s->dl_n++;
    return 0;
}

/* Append every queued dead-letter XADD to the pipeline. */
static int append_deadletters(store *s) {
    char key[128], maxlen[24];
    snprintf(key, sizeof key, "%sdeadletter", s->prefix);
    snprintf(maxlen, sizeof maxlen, "%zu", s->o.deadletter_maxlen);
    for (size_t i = 0; i < s->dl_n; i++) {
        dl_entry *e = &s->dlq[i];
        char recv[24];
        snprintf(recv, sizeof recv, "%lld", (long long)e->received_ms);
        const char *src = source_name(e->src);
        const char *argv[] = {"XADD", key, "MAXLEN", "~", maxlen, "*", "reason", e->reason,
                              "received", recv, "source", src, "raw", e->raw};
        size_t lens[] = {4, strlen(key), 6, 1, strlen(maxlen), 1, 6, strlen(e->reason),
                         8, strlen(recv), 6, strlen(src), 3, e->raw_len};
        if (append(s, 14, argv, lens) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Read the replies of the queued dead-letter entries and forget them. */
static int read_deadletters(store *s) {
    size_t n = s->dl_n;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = read_reply(s);
        if (!r)
            return -EIO;
        if (r->type == REDIS_REPLY_ERROR)
            log_error("redis: XADD deadletter: %s", r->str);
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n; i++)
        free(s->dlq[i].raw);
    s->dl_n = 0;
    return 0;
}

/* ---- commit ---------------------------------------------------------------- */

void commit_result_clear(commit_result *r) {
    for (size_t i = 0; i < r->n_units; i++) {
        free(r->units[i].too_old);
        free(r->units[i].ack);
    }
    for (size_t i = 0; i < r->n_creators; i++)
        creator_summary_clear(&r->creators[i]);
    for (size_t i = 0; i < r->n_checkpoints; i++)
        creator_summary_clear(&r->checkpoints[i]);
    free(r->units);
    free(r->creators);
    free(r->checkpoints);
    memset(r, 0, sizeof *r);
}

void creator_summary_clear(creator_summary *c) {
    free(c->creator);
    free(c->niche);
    free(c->board_niche);
    memset(c, 0, sizeof *c);
}

static int parse_unit(const msgpack_object *o, unit_result *u) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) { /* a plain frame, all ok */
        u->ok = (uint32_t)o->via.u64;
        return 0;
    }
    u->replayed = mp_int(mp_at(o, 0)) == 1;
    u->ok = (uint32_t)mp_int(mp_at(o, 1));
    u->dup = (uint32_t)mp_int(mp_at(o, 2));
    const msgpack_object *late = mp_at(o, 3);
    u->n_too_old = (uint32_t)mp_len(late);
    if (u->n_too_old) {
        u->too_old = calloc(u->n_too_old, sizeof *u->too_old);
        if (!u->too_old)
            return -ENOMEM;
        for (uint32_t i = 0; i < u->n_too_old; i++)
            u->too_old[i] = (uint32_t)mp_int(mp_at(late, i));
    }
    const msgpack_object *ack = mp_at(o, 4);
    if (ack->type == MSGPACK_OBJECT_STR || ack->type == MSGPACK_OBJECT_BIN) {
        u->ack = mp_strdup(ack, &u->ack_len);
        if (!u->ack)
            return -ENOMEM;
    }
    return 0;
}

/* Summary layout: see Creator:summary() in nousu.lua. */
static int parse_summary(const msgpack_object *o, creator_summary *c) {
    memset(c, 0, sizeof *c);
    c->creator = mp_strdup(mp_at(o, 0), &c->creator_len);
    if (!c->creator)
        return -EBADMSG;
    creator_window *w = &c->w;
    w->now_ms = mp_int(mp_at(o, 1));
    w->first_ms = mp_int(mp_at(o, 2));
    w->followers = mp_int(mp_at(o, 3));
    w->followers_ts = mp_int(mp_at(o, 4));
    w->early_followers = mp_int(mp_at(o, 5));
    w->early_followers_ts = mp_int(mp_at(o, 6));
    w->below_ts = mp_int(mp_at(o, 7));
    w->grad_base = mp_int(mp_at(o, 8));
    w->e_recent = mp_num(mp_at(o, 9));
    w->e_hist = mp_num(mp_at(o, 10));
    const msgpack_object *counts = mp_at(o, 11);
    for (int t = 0; t < EV__COUNT; t++)
        w->counts[t] = mp_int(mp_at(counts, (size_t)t));
    w->interactions_with_actor = mp_int(mp_at(o, 12));
    w->e_sponsored = mp_num(mp_at(o, 13));
    w->unique_engagers = mp_len(o) > 19 ? mp_int(mp_at(o, 19)) : -1;
    for (int k = 0; k < ALERT__COUNT; k++)
        c->cooldown[k] = mp_int(mp_at(o, 14 + (size_t)k));
    c->niche = mp_strdup(mp_at(o, 17), NULL);
    c->board_niche = mp_strdup(mp_at(o, 18), NULL);
    return 0;
}

static int parse_summaries(const msgpack_object *arr, creator_summary **ret, size_t *ret_n) {
    size_t n = mp_len(arr);
    *ret = calloc(n ? n : 1, sizeof **ret);
    if (!*ret)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_summary(mp_at(arr, i), &(*ret)[i]);
        if (rc < 0)
            return rc;
        (*ret_n)++;
    }
    return 0;
}

/* The states the Function sent back (run index, bytes, ...), into the cache:
 * the states after commit seq. */
static void keep_states(const msgpack_object *list, const plan *pl, uint64_t seq,
                        state_cache *cache) {
    size_t n = mp_len(list);
    for (size_t i = 0; i + 1 < n; i += 2) {
        const msgpack_object *bytes = mp_at(list, i + 1);
        int64_t k = mp_int(mp_at(list, i)) - 1;
        if (k < 0 || (uint64_t)k >= pl->n_runs || bytes->type != MSGPACK_OBJECT_STR)
            continue;
        const strref *c = &plan_run_event(pl, &pl->runs[k], 0)->ev->creator;
        state_cache_put(cache, c->ptr, c->len, bytes->via.str.ptr, bytes->via.str.size, seq);
    }
}

/* t: a runs-form commit, whose states go to cache; or NULL. */
static int parse_commit(const char *buf, size_t len, size_t n_units, const sent_commit *t,
                        state_cache *cache, commit_result *ret) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = -EBADMSG;
    if (msgpack_unpack_next(&up, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS)
        goto out;
    const msgpack_object *units = mp_at(&up.data, 0);
    if (mp_len(units) != n_units)
        goto out;
    ret->units = calloc(n_units ? n_units : 1, sizeof *ret->units);
    rc = -ENOMEM;
    if (!ret->units)
        goto out;
    ret->n_units = n_units;
    for (size_t i = 0; i < n_units; i++)
        if ((rc = parse_unit(mp_at(units, i), &ret->units[i])) < 0)
            goto out;
    rc = parse_summaries(mp_at(&up.data, 1), &ret->creators, &ret->n_creators);
    if (rc == 0)
        rc = parse_summaries(mp_at(&up.data, 2), &ret->checkpoints, &ret->n_checkpoints);
    if (rc == 0 && mp_len(&up.data) > 3) /* nousu_commit_runs: the hints taken */
        ret->hints_taken = (uint32_t)mp_int(mp_at(&up.data, 3));
    if (rc == 0 && t && cache && mp_len(&up.data) > 4)
        keep_states(mp_at(&up.data, 4), &t->pl, t->seq, cache);
    if (rc == 0 && mp_len(&up.data) > 5) /* nousu_commit_runs: the filter trusted */
        ret->dedup_filtered = mp_at(&up.data, 5)->type == MSGPACK_OBJECT_BOOLEAN &&
                              mp_at(&up.data, 5)->via.boolean;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* Send the pipeline built by the caller after the dead letters, read the
 * dead-letter replies, and return the reply of the one command that follows. */
static redisReply *round_trip_one(store *s, int argc, const char **argv, const size_t *lens) {
    if (!s->c)
        return NULL;
    if (append_deadletters(s) < 0 || append(s, argc, argv, lens) < 0) {
        drop_connection(s);
        return NULL;
    }
    if (read_deadletters(s) < 0)
        return NULL;
    redisReply *r = read_reply(s);
    if (r && r->type == REDIS_REPLY_ERROR) {
        log_error("redis: %s: %s", argv[1], r->str);
        freeReplyObject(r);
        /* A script error means the library is missing or broken: reconnect
         * reloads it. */
        drop_connection(s);
        return NULL;
    }
    return r;
}

static bool same_creator(const plan *pl, size_t a, size_t b) {
    const strref *x = &plan_run_event(pl, &pl->runs[a], 0)->ev->creator;
    const strref *y = &plan_run_event(pl, &pl->runs[b], 0)->ev->creator;
    return x->len == y->len && memcmp(x->ptr, y->ptr, x->len) == 0;
}

/* The runs that may be hot (hint.h): their creator's only run (a creator's
 * runs are adjacent), no follower count in it. */
static bool hint_candidate(const plan *pl, size_t k) {
    if ((k > 0 && same_creator(pl, k - 1, k)) || (k + 1 < pl->n_runs && same_creator(pl, k, k + 1)))
        return false;
    const plan_run *run = &pl->runs[k];
    for (size_t i = 0; i < run->n; i++)
        if (plan_run_event(pl, run, i)->ev->followers >= 0)
            return false;
    return true;
}

static bool last_of_creator(const plan *pl, size_t k) {
    return k + 1 == pl->n_runs || !same_creator(pl, k, k + 1);
}

static const strref *run_creator(const plan *pl, size_t k) {
    return &plan_run_event(pl, &pl->runs[k], 0)->ev->creator;
}

/* What the cache knows of each run's creator, and which runs should bring
 * their creator's state back: the last run of each creator, so that the
 * cache follows every state this daemon writes. Returns the runs that may
 * be hot but whose creator is blind (statecache.h). */
static size_t known_states(const plan *pl, state_cache *cache, wire_state *states) {
    size_t blind = 0;
    for (size_t k = 0; k < pl->n_runs; k++) {
        bool b = false;
        if (states)
            states[k].want = last_of_creator(pl, k);
        if (!hint_candidate(pl, k))
            continue;
        const strref *c = run_creator(pl, k);
        size_t len = 0;
        const char *ptr = state_cache_get(cache, c->ptr, c->len, &len, &b);
        if (states)
            states[k].ptr = ptr, states[k].len = len;
        blind += b;
    }
    return blind;
}

/* Commit seq touches every creator of its runs; a hinted run's state is
 * known now, as Redis will hold it if the hint is taken: the next commit may
 * be prepared before this one's reply. */
static void cache_sent(const plan *pl, const wire_state *states, const mpbuf *news,
                       uint64_t seq, state_cache *cache) {
    for (size_t k = 0; k < pl->n_runs; k++) {
        if (!last_of_creator(pl, k))
            continue;
        const strref *c = run_creator(pl, k);
        state_cache_touch(cache, c->ptr, c->len, seq);
        if (states[k].new_len)
            state_cache_put(cache, c->ptr, c->len, news->sb.data + states[k].new_off,
                            states[k].new_len, seq);
    }
    state_cache_trim(cache);
}

/* ARGV[1], ARGV[3] and ARGV[4] of nousu_commit_runs, into s->sb, s->ids and
 * s->owners; with hints, from the states in cache. */
static int pack_runs_form(store *s, const batch *b, const plan *pl, const commit_params *p,
                          bool claim, uint64_t seq, state_cache *cache, uint32_t *ret_hints) {
    mpbuf_clear(&s->sb);
    mpbuf_clear(&s->ids);
    mpbuf_clear(&s->owners);
    wire_state *states = NULL;
    if (p->hints != COMMIT_HINTS_OFF && cache) {
        if (!(states = calloc(pl->n_runs ? pl->n_runs : 1, sizeof *states)))
            return -ENOMEM;
        known_states(pl, cache, states);
    }
    int hints = wire_pack_runs(&s->sb, &s->wb, s->prefix, b, pl,
                               states, p);
    int rc = hints < 0 || wire_pack_ids(&s->ids, &s->owners, pl, claim ? s->idf : NULL, p) < 0 ||
                     s->sb.failed ||
                     s->ids.failed || s->owners.failed
                 ? -ENOMEM
                 : 0;
    if (rc == 0 && states)
        cache_sent(pl, states, &s->wb.news, seq, cache);
    *ret_hints = hints > 0 ? (uint32_t)hints : 0;
    free(states);
    return rc;
}

/* Write out what hiredis holds (dead letters), then the command from its
 * arguments, uncopied (resp.h): 0, or -EIO with the connection dropped.
 * The replies are read through hiredis, which does not count commands. */
static int send_call(store *s, int argc, const char **argv, const size_t *lens) {
    int done = 0;
    while (!done)
        if (redisBufferWrite(s->c, &done) != REDIS_OK) {
            log_error("redis: %s: %s", argv[1], s->c->errstr[0] ? s->c->errstr : "write failed");
            drop_connection(s);
            return -EIO;
        }
    int rc = resp_write(s->c->fd, argc, argv, lens);
    if (rc < 0) {
        log_error("redis: %s %s: %s", argv[0], argv[1],
                  rc == -EAGAIN ? "write timed out" : strerror(-rc));
        drop_connection(s);
        return -EIO;
    }
    return 0;
}

/* Into the filter, before the commit can land: every id the plan sends;
 * the slices no commit from now on asks go (either form: a daemon may send
 * only events forms for a while). */
static void hold_ids(store *s, const plan *pl, const commit_params *p) {
    if (!s->idf)
        return;
    idfilter_expire(s->idf, p->wall_ms, p->horizon_ms);
    for (size_t i = 0; i < pl->n_events; i++) {
        if (i + IDFILTER_AHEAD < pl->n_events)
            idfilter_prefetch(s->idf, pl->events[i + IDFILTER_AHEAD].idh, p->wall_ms, 0);
        if (pl->events[i].ev->id.len)
            idfilter_add(s->idf, pl->events[i].idh, p->wall_ms);
    }
    idfilter_prepare(s->idf, p->wall_ms);
}

/* The commit this one follows in the chain: the last one sent, or for a
 * resend of that one (its connection lost) the one it followed. */
static const char *chain_expect(const store *s, const char *commit_id) {
    return strcmp(commit_id, s->chain_last) == 0 ? s->chain_prev : s->chain_last;
}

static void chain_sent(store *s, const char *commit_id) {
    if (strcmp(commit_id, s->chain_last) == 0)
        return;
    memcpy(s->chain_prev, s->chain_last, sizeof s->chain_prev);
    snprintf(s->chain_last, sizeof s->chain_last, "%s", commit_id);
}

static int send_events_form(store *s, const batch *b, const plan *pl, const commit_params *p,
                            const char *commit_id, const char *after) {
    mpbuf_clear(&s->sb);
    wire_pack_events(&s->sb, s->prefix, b, p);
    if (s->sb.failed)
        return -ENOMEM;
    hold_ids(s, pl, p);
    const char *expect = chain_expect(s, commit_id);
    const char *argv[] = {"FCALL", "nousu_commit", "0", s->sb.sb.data, commit_id, after, expect};
    size_t lens[] = {5, 12, 1, s->sb.sb.size, strlen(commit_id), strlen(after), strlen(expect)};
    return send_call(s, 7, argv, lens);
}

/* NOUSU.STASH of the commit's hints and fallbacks, sent before its FCALL
 * (which then names the stash) when they are worth it: *stashed says
 * whether it was. 0, or -EIO with the connection dropped. */
static int send_stash(store *s, const char *commit_id, bool *stashed) {
    size_t hl = s->wb.hints.sb.size, fl = s->wb.fallbacks.sb.size;
    *stashed = s->stash_ok && hl + fl >= STASH_MIN_BYTES;
    if (!*stashed)
        return 0;
    const char *argv[] = {"NOUSU.STASH", commit_id, s->wb.hints.sb.data,
                          fl ? s->wb.fallbacks.sb.data : ""};
    size_t lens[] = {11, strlen(commit_id), hl, fl};
    return send_call(s, 4, argv, lens);
}

static int send_runs_form(store *s, const batch *b, sent_commit *t, const commit_params *p,
                          const char *commit_id, const char *after, state_cache *cache) {
    char claim[24] = "";
    if (s->idf && idfilter_covers(s->idf, p->wall_ms, p->horizon_ms))
        snprintf(claim, sizeof claim, "%" PRId64, idfilter_since(s->idf));
    int rc = pack_runs_form(s, b, &t->pl, p, claim[0], t->seq, cache, &t->hints);
    if (rc < 0)
        return rc;
    hold_ids(s, &t->pl, p);
    rc = send_stash(s, commit_id, &t->stashed);
    if (rc < 0)
        return rc;
    const char *fallbacks = s->wb.fallbacks.sb.data ? s->wb.fallbacks.sb.data : "";
    const char *expect = chain_expect(s, commit_id);
    const char *argv[] = {"FCALL", "nousu_commit_runs", "0", s->sb.sb.data, commit_id,
                          s->ids.sb.data, s->owners.sb.data, after,
                          t->stashed ? "" : fallbacks, t->stashed ? "" : s->wb.hints.sb.data,
                          expect, claim, commit_id};
    size_t lens[] = {5, 17, 1, s->sb.sb.size, strlen(commit_id), s->ids.sb.size,
                     s->owners.sb.size, strlen(after), t->stashed ? 0 : s->wb.fallbacks.sb.size,
                     t->stashed ? 0 : s->wb.hints.sb.size, strlen(expect), strlen(claim),
                     strlen(commit_id)};
    return send_call(s, t->stashed ? 13 : 12, argv, lens);
}

int store_commit_send(store *s, const batch *b, const commit_params *p, const char *commit_id,
                      const char *after, bool events_form, state_cache *cache) {
    if (!s->c)
        return -EIO;
    if (s->sent_n == SENT_MAX)
        return -EBUSY;
    sent_commit *t = &s->sent[(s->sent_head + s->sent_n) % SENT_MAX];
    memset(t, 0, sizeof *t);
    t->n_units = b->n_units, t->seq = s->sent_seq + 1;
    int rc = 0;
    if (s->prepared_for == b) { /* planned by store_commit_blind */
        t->pl = s->prepared;
        memset(&s->prepared, 0, sizeof s->prepared);
    } else {
        plan_free(&s->prepared);
        rc = plan_build(&t->pl, b, p->bucket_ms);
    }
    s->prepared_for = NULL;
    if (rc < 0)
        return rc;
    t->runs_form = !events_form && !t->pl.repeats;
    after = after ? after : "";
    if (t->runs_form) {
        rc = send_runs_form(s, b, t, p, commit_id, after, cache);
    } else {
        /* It rewrites states and sends none back. */
        if (cache)
            state_cache_clear(cache);
        rc = send_events_form(s, b, &t->pl, p, commit_id, after);
    }
    if (rc < 0 || !s->c) {
        plan_free(&t->pl);
        return rc < 0 ? rc : -EIO;
    }
    chain_sent(s, commit_id);
    s->sent_n++, s->sent_seq++;
    return 0;
}

int store_commit_blind(store *s, const batch *b, const commit_params *p, state_cache *cache,
                       size_t *ret_runs) {
    plan_free(&s->prepared);
    s->prepared_for = NULL;
    int rc = plan_build(&s->prepared, b, p->bucket_ms);
    if (rc < 0)
        return rc;
    s->prepared_for = b;
    *ret_runs = s->prepared.n_runs;
    return (int)known_states(&s->prepared, cache, NULL);
}

size_t store_commits_sent(const store *s) { return s->sent_n; }

int store_fd(const store *s) { return s->c ? s->c->fd : -1; }

/* r is the reply of t's NOUSU.STASH, which comes before its FCALL's: looked
 * at and freed (true), or not (false). An error there (the stash full) makes
 * the FCALL decline, and the batch goes again without. */
static bool took_stash_reply(sent_commit *t, redisReply *r) {
    if (!t->stashed)
        return false;
    t->stashed = false;
    if (r->type == REDIS_REPLY_ERROR)
        log_info("redis: NOUSU.STASH: %s; the commit goes again without it", r->str);
    freeReplyObject(r);
    return true;
}

int store_commit_poll(store *s, bool readable) {
    if (s->ready)
        return 1;
    if (!s->c)
        return -EIO;
    void *r = NULL;
    if (readable && redisBufferRead(s->c) != REDIS_OK)
        goto lost;
    do {
        if (redisGetReplyFromReader(s->c, &r) != REDIS_OK)
            goto lost;
    } while (r && s->sent_n && took_stash_reply(&s->sent[s->sent_head], r));
    s->ready = r;
    return r ? 1 : 0;
lost:
    log_error("redis: %s", s->c->errstr[0] ? s->c->errstr : "connection lost");
    drop_connection(s);
    return -EIO;
}

/* The reply of commit t: its result, or why there is none. */
static int take_reply(store *s, redisReply *r, const sent_commit *t, state_cache *cache,
                      commit_result *ret) {
    const char *fn = t->runs_form ? "nousu_commit_runs" : "nousu_commit";
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("redis: %s: %s", fn, r->str);
        /* A script error means the library is missing or broken: reconnect
         * reloads it. */
        drop_connection(s);
        return -EIO;
    }
    int rc = -EBADMSG;
    if (r->type == REDIS_REPLY_STRING)
        rc = parse_commit(r->str, r->len, t->n_units, t->runs_form ? t : NULL, cache, ret);
    else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0 && t->runs_form)
        rc = -EAGAIN;
    else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        rc = -ESTALE;
    if (rc == -EBADMSG || rc == -ENOMEM) {
        log_error("redis: %s: unexpected reply", fn);
        commit_result_clear(ret);
    }
    if (t->runs_form && rc == 0)
        ret->hints_sent = t->hints;
    if (rc == 0 && s->idf)
        ret->dedup_filter_bytes = idfilter_bytes(s->idf);
    return rc;
}

int store_commit_recv(store *s, state_cache *cache, commit_result *ret) {
    commit_result_clear(ret);
    if (!s->sent_n)
        return -EINVAL;
    /* Taken off the queue first: a lost connection empties it. */
    sent_commit t = s->sent[s->sent_head];
    s->sent_head = (s->sent_head + 1) % SENT_MAX, s->sent_n--;
    redisReply *r = s->ready;
    s->ready = NULL;
    if (!r)
        while ((r = read_reply(s)) && took_stash_reply(&t, r))
            ;
    int rc = r ? take_reply(s, r, &t, cache, ret) : -EIO;
    if (r)
        freeReplyObject(r);
    plan_free(&t.pl);
    return rc;
}

/* ---- creator details ------------------------------------------------------ */

/* FCALL nousu_creator for n creators; calls back with each decoded entry. */
static int fetch_creators(store *s, int64_t recent, const char *const *names, size_t n,
                          int (*each)(void *ctx, size_t i, const msgpack_object *entry),
                          void *ctx) {
    const char **argv = calloc(n + 5, sizeof *argv);
    size_t *lens = calloc(n + 5, sizeof *lens);
    char rec[24];
    int rc = -ENOMEM;
    if (!argv || !lens)
        goto out;
    snprintf(rec, sizeof rec, "%lld", (long long)recent);
    argv[0] = "FCALL", argv[1] = "nousu_creator", argv[2] = "0", argv[3] = s->prefix,
    argv[4] = rec;
    for (size_t i = 0; i < n; i++)
        argv[5 + i] = names[i];
    for (size_t i = 0; i < n + 5; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = round_trip_one(s, (int)(n + 5), argv, lens);
    rc = -EIO;
    if (!r)
        goto out;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    rc = -EBADMSG;
    if (r->type == REDIS_REPLY_STRING &&
        msgpack_unpack_next(&up, r->str, r->len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        mp_len(&up.data) == n) {
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = each(ctx, i, mp_at(&up.data, i));
    }
    msgpack_unpacked_destroy(&up);
    freeReplyObject(r);
out:
    free(argv);
    free(lens);
    return rc;
}

static int take_unique(void *ctx, size_t i, const msgpack_object *entry) {
    ((int64_t *)ctx)[i] = mp_int(mp_at(entry, 1));
    return 0;
}

int store_uniques(store *s, int64_t recent, creator_summary *const *creators, size_t n,
                  int64_t *ret_uniques) {
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        names[i] = creators[i]->creator;
    int rc = fetch_creators(s, recent, names, n, take_unique, ret_uniques);
    free(names);
    return rc;
}

typedef struct one_creator {
    creator_summary *out;
    bool found;
} one_creator;

static int take_creator(void *ctx, size_t i, const msgpack_object *entry) {
    one_creator *oc = ctx;
    const msgpack_object *sum = mp_at(entry, 0);
    if (sum->type != MSGPACK_OBJECT_ARRAY)
        return 0;
    int rc = parse_summary(sum, oc->out);
    if (rc < 0)
        return rc;
    oc->found = true;
    oc->out->w.unique_engagers = mp_int(mp_at(entry, 1));
    const msgpack_object *lak = mp_at(entry, 2);
    if (lak->type == MSGPACK_OBJECT_STR && lak->via.str.size < sizeof oc->out->last_alert_kind)
        memcpy(oc->out->last_alert_kind, lak->via.str.ptr, lak->via.str.size);
    oc->out->last_alert_ts = mp_int(mp_at(entry, 3));
    return 0;
}

int store_creator(store *s, const char *creator, int64_t recent, creator_summary *ret,
                  bool *ret_found) {
    one_creator oc = {ret, false};
    memset(ret, 0, sizeof *ret);
    int rc = fetch_creators(s, recent, &creator, 1, take_creator, &oc);
    if (rc < 0)
        return rc;
    *ret_found = oc.found;
    return 0;
}

/* ---- top ------------------------------------------------------------------- */

void top_entries_free(top_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(e[i].creator);
        free(e[i].niche);
    }
    free(e);
}

static int parse_top(const msgpack_object *arr, top_entry **ret, size_t *ret_n) {
    size_t n = mp_len(arr);
    top_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *o = mp_at(arr, i);
        e[i].creator = mp_strdup(mp_at(o, 0), NULL);
        e[i].niche = mp_strdup(mp_at(o, 1), NULL);
        e[i].followers = mp_int(mp_at(o, 2));
        e[i].z = mp_num(mp_at(o, 3));
        e[i].velocity = mp_num(mp_at(o, 4));
        if (!e[i].creator) {
            top_entries_free(e, i + 1);
            return -EBADMSG;
        }
    }
    *ret = e;
    *ret_n = n;
    return 0;
}

int store_top(store *s, const char *niche, size_t n, int64_t stale_ms, top_entry **ret,
              size_t *ret_n) {
    char nbuf[24], sbuf[24];
    snprintf(nbuf, sizeof nbuf, "%zu", n);
    snprintf(sbuf, sizeof sbuf, "%lld", (long long)stale_ms);
    const char *argv[] = {"FCALL", "nousu_top", "0", s->prefix, niche ? niche : "", nbuf, sbuf};
    size_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = round_trip_one(s, 7, argv, lens);
    if (!r)
        return -EIO;
    int rc = -EBADMSG;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (r->type == REDIS_REPLY_STRING &&
        msgpack_unpack_next(&up, r->str, r->len, NULL) == MSGPACK_UNPACK_SUCCESS)
        rc = parse_top(&up.data, ret, ret_n);
    msgpack_unpacked_destroy(&up);
    freeReplyObject(r);
    return rc;
}

/* ---- post-detection round trip ------------------------------------------- */

static int append_board(store *s, const board_update *u, size_t n) {
    mpbuf_clear(&s->sb);
    mpbuf_array(&s->sb, 2);
    pack_cstr(&s->sb, s->prefix);
    mpbuf_array(&s->sb, n);
    for (size_t i = 0; i < n; i++) {
        mpbuf_array(&s->sb, 5);
        pack_cstr(&s->sb, u[i].creator);
        if (u[i].niche)
            pack_cstr(&s->sb, u[i].niche);
        else
            mpbuf_nil(&s->sb);
        mpbuf_int(&s->sb, u[i].add ? 1 : 0);
        mpbuf_double(&s->sb, u[i].z);
        mpbuf_double(&s->sb, u[i].velocity);
    }
    if (s->sb.failed)
        return -ENOMEM;
    const char *argv[] = {"FCALL", "nousu_board", "0", s->sb.sb.data};
    size_t lens[] = {5, 11, 1, s->sb.sb.size};
    return append(s, 4, argv, lens);
}

static int append_alert(store *s, const alert_request *a, size_t maxlen) {
    mpbuf_clear(&s->sb);
    mpbuf_array(&s->sb, 11);
    pack_cstr(&s->sb, s->prefix);
    pack_cstr(&s->sb, a->creator);
    mpbuf_int(&s->sb, (int)a->kind);
    pack_cstr(&s->sb, alert_kind_name(a->kind));
    mpbuf_int(&s->sb, a->ts);
    mpbuf_int(&s->sb, a->cooldown_ms);
    mpbuf_uint(&s->sb, maxlen);
    pack_cstr(&s->sb, a->topic);
    mpbuf_str(&s->sb, a->head, a->head_len);
    mpbuf_str(&s->sb, a->tail, a->tail_len);
    if (a->grad_base)
        mpbuf_int(&s->sb, a->grad_base);
    else
        mpbuf_nil(&s->sb);
    if (s->sb.failed)
        return -ENOMEM;
    const char *argv[] = {"FCALL", "nousu_alert", "0", s->sb.sb.data};
    size_t lens[] = {5, 11, 1, s->sb.sb.size};
    return append(s, 4, argv, lens);
}

static int parse_alert_reply(redisReply *r, alert_request *a) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = -EBADMSG;
    if (r->type == REDIS_REPLY_STRING &&
        msgpack_unpack_next(&up, r->str, r->len, NULL) == MSGPACK_UNPACK_SUCCESS) {
        a->seq = (uint64_t)mp_int(mp_at(&up.data, 0));
        rc = 0;
        if (a->seq) {
            a->msg = mp_strdup(mp_at(&up.data, 1), &a->msg_len);
            rc = a->msg ? 0 : -ENOMEM;
        }
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

static int read_post_replies(store *s, size_t n_boards, alert_request *alerts, size_t n_alerts) {
    int rc = 0;
    for (size_t i = 0; i < (n_boards ? 1u : 0u) + n_alerts; i++) {
        redisReply *r = read_reply(s);
        if (!r)
            return -EIO;
        if (r->type == REDIS_REPLY_ERROR) {
            log_error("redis: post: %s", r->str);
            rc = -EIO;
        } else if (i >= (n_boards ? 1u : 0u)) {
            alert_request *a = &alerts[i - (n_boards ? 1u : 0u)];
            if (parse_alert_reply(r, a) < 0)
                rc = -EBADMSG;
        }
        freeReplyObject(r);
    }
    return rc;
}

int store_post(store *s, const board_update *boards, size_t n_boards, alert_request *alerts,
               size_t n_alerts, size_t alerts_maxlen) {
    if (!s->c)
        return -EIO;
    if (n_boards == 0 && n_alerts == 0 && s->dl_n == 0)
        return 0;
    int rc = append_deadletters(s);
    if (rc == 0 && n_boards)
        rc = append_board(s, boards, n_boards);
    for (size_t i = 0; rc == 0 && i < n_alerts; i++)
        rc = append_alert(s, &alerts[i], alerts_maxlen);
    if (rc < 0) {
        drop_connection(s);
        return rc;
    }
    if (read_deadletters(s) < 0)
        return -EIO;
    return read_post_replies(s, n_boards, alerts, n_alerts);
}

int store_flush(store *s) {
    return store_post(s, NULL, 0, NULL, 0, 0);
}

size_t store_deadletter_queued(const store *s) { return s->dl_n; }
