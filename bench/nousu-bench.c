/* nousu-bench.c -- how fast nousud counts, next to naive Redis consumers, and
 * how quickly it alerts under load. Not a test: it prints numbers. It exits
 * non-zero when a wait passes its deadline, when the counters read back do not
 * match what was sent, or when a planted riser did not alert.
 *
 *   (a) nousud end to end: N pre-encoded events (msgpack arrays of 1000) over
 *       PUSH; wall time from the first send until the control `stats` reports
 *       them all committed (events_accepted), polled every 10 ms. Then the
 *       creator query's `counts` are compared with what was sent.
 *   (b) the same pre-encoded stream into consumers in this process, each bound
 *       to its own PULL endpoint: one synchronous HINCRBY per event (naive),
 *       then 1000 events' commands per round trip (pipelined).
 *   (c) alert latency: P micro creators primed with 8 days of steady history;
 *       under background load at a fraction of (a)'s rate each gets one burst;
 *       latency is CLOCK_MONOTONIC from its send to its `rising.` alert on SUB.
 *
 * Every endpoint is the caller's (bench/run.sh gives ipc:// ones in a temp
 * dir); every wait has a deadline (--timeout-s). */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define BATCH 1000
#define RISER_FOLLOWERS 3000
#define RISER_BURST 300
#define PRIME_DAYS 8
#define PRIME_SLOT_MS (2 * 3600 * 1000LL) /* one slot: 2 likes + 1 comment = E 5 */
#define HOUR_MS (3600 * 1000LL)
#define STATS_POLL_MS 10
#define NTYPES 9

/* SPEC §3 event types and §5 default weights, in one table. */
static const struct {
    const char *name;
    int weight;
    bool interaction;
} TYPES[NTYPES] = {
    {"view", 0, false},   {"like", 1, true},    {"comment", 3, true},
    {"share", 4, true},   {"save", 4, true},    {"mention", 5, true},
    {"follow", 0, false}, {"unfollow", 0, false}, {"post", 0, false},
};
enum { T_VIEW, T_LIKE, T_COMMENT, T_SHARE, T_SAVE, T_MENTION, T_FOLLOW, T_UNFOLLOW, T_POST };

/* "mostly like/view/comment": a cumulative mix in percent. */
static const struct {
    int type, upto;
} MIX[] = {
    {T_VIEW, 40}, {T_LIKE, 75}, {T_COMMENT, 87}, {T_SHARE, 91}, {T_SAVE, 95},
    {T_MENTION, 97}, {T_FOLLOW, 99}, {T_POST, 100},
};

typedef struct opts {
    const char *redis_host;
    int redis_port;
    const char *ingest, *alerts, *control, *naive_ep, *key_prefix;
    long events, creators, naive_events, pipelined_events, risers;
    double zipf_s, load, load_rate, spread_s, timeout_s;
    long daemon_pid;
    long verify; /* creators to check; 0: every creator that got events */
    bool no_ids; /* (a) and background events without `id`: no dedup work */
    long frame_events; /* events per frame of (a) and the background */
    uint64_t seed;
    const char *latency_log; /* (c): one line per riser, or NULL */
} opts;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("nousu-bench: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- clocks, numbers --------------------------------------------------------- */

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_s(double s) {
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* 1234567 -> "1,234,567" in one of a few rotating buffers (for printf). */
static const char *grouped(double v) {
    static char bufs[8][32];
    static int next;
    char *out = bufs[next++ % 8], tmp[32];
    long long x = llround(v);
    bool neg = x < 0;
    int n = snprintf(tmp, sizeof tmp, "%lld", neg ? -x : x), o = 0;
    if (neg)
        out[o++] = '-';
    for (int i = 0; i < n; i++) {
        out[o++] = tmp[i];
        if ((n - i - 1) % 3 == 0 && i != n - 1)
            out[o++] = ',';
    }
    out[o] = '\0';
    return out;
}

/* splitmix64: small, fast, seeded, good enough for workload shapes. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_u01(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Zipf popularity: rank k (0-based) has weight 1/(k+1)^s. */
static double *zipf_cdf(long n, double s) {
    double *cdf = xcalloc((size_t)n, sizeof *cdf), sum = 0;
    for (long k = 0; k < n; k++)
        cdf[k] = (sum += pow((double)(k + 1), -s));
    for (long k = 0; k < n; k++)
        cdf[k] /= sum;
    return cdf;
}

static long zipf_pick(const double *cdf, long n, double u) {
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (cdf[mid] >= u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int pick_type(rng *r) {
    int p = (int)(rng_next(r) % 100);
    for (size_t i = 0; i < sizeof MIX / sizeof MIX[0]; i++)
        if (p < MIX[i].upto)
            return MIX[i].type;
    return T_VIEW;
}

/* ---- msgpack ------------------------------------------------------------------- */

static void pk_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static bool mp_is(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    return (o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN) &&
           o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

static const msgpack_object *mp_get(const msgpack_object *map, const char *key) {
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (mp_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

static bool mp_int(const msgpack_object *o, int64_t *ret) {
    if (!o)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *ret = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *ret = o->via.i64;
    else
        return false;
    return true;
}

static double mp_num(const msgpack_object *o) {
    int64_t i;
    if (mp_int(o, &i))
        return (double)i;
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
        return o->via.f64;
    return NAN;
}

/* One event as this bench writes it; absent optional fields are NULL / < 0. */
typedef struct ev {
    const char *creator;
    int type;
    int64_t ts;
    const char *id;
    int64_t actor;       /* >= 0: an int actor */
    const char *actor_s; /* else a string actor, or NULL: none */
    const char *post;
    int64_t followers; /* < 0: absent */
    const char *niche;
} ev;

static void pack_ev(msgpack_packer *pk, const ev *e) {
    bool actor = e->actor >= 0 || e->actor_s;
    size_t n = 4 + (e->id != NULL) + actor + (e->post != NULL) + (e->followers >= 0) +
               (e->niche != NULL);
    msgpack_pack_map(pk, n);
    pk_str(pk, "creator"), pk_str(pk, e->creator);
    pk_str(pk, "type"), pk_str(pk, TYPES[e->type].name);
    pk_str(pk, "ts"), msgpack_pack_int64(pk, e->ts);
    if (e->id)
        pk_str(pk, "id"), pk_str(pk, e->id);
    if (e->actor >= 0)
        pk_str(pk, "actor"), msgpack_pack_int64(pk, e->actor);
    else if (e->actor_s)
        pk_str(pk, "actor"), pk_str(pk, e->actor_s);
    if (e->post)
        pk_str(pk, "post"), pk_str(pk, e->post);
    if (e->followers >= 0)
        pk_str(pk, "followers"), msgpack_pack_int64(pk, e->followers);
    if (e->niche)
        pk_str(pk, "niche"), pk_str(pk, e->niche);
    pk_str(pk, "n"), msgpack_pack_int(pk, 1);
}

/* Pre-encoded frames: each one msgpack array of events, owned here. */
typedef struct frame {
    char *data;
    size_t len;
    uint32_t n;
} frame;

typedef struct frames {
    frame *v;
    size_t n, cap;
    uint64_t events, bytes;
} frames;

/* Encodes one frame of a known event count: begin, pack_ev each, close. */
typedef struct framer {
    frames *f;
    msgpack_sbuffer sb;
    msgpack_packer pk;
} framer;

static void framer_begin(framer *w, frames *f, uint32_t n_in_frame) {
    w->f = f;
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    msgpack_pack_array(&w->pk, n_in_frame);
}

static void framer_close(framer *w, uint32_t n) {
    frames *f = w->f;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->v = realloc(f->v, f->cap * sizeof *f->v);
        if (!f->v)
            die("out of memory");
    }
    f->v[f->n++] = (frame){w->sb.data, w->sb.size, n};
    f->events += n;
    f->bytes += w->sb.size;
    w->sb.data = NULL; /* ownership moved to the frame */
    msgpack_sbuffer_destroy(&w->sb);
}

static void frames_free(frames *f) {
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].data);
    free(f->v);
    memset(f, 0, sizeof *f);
}

/* ---- the workload -------------------------------------------------------------- */

typedef struct workload {
    char tag[16];    /* per run, so creator names and ids never meet older data */
    bool ids;
    long creators;
    long frame_events;
    char **names;    /* creator name by Zipf rank */
    double *cdf;
    rng r;
} workload;

static void workload_init(workload *w, const opts *o) {
    uint64_t seed = o->seed ? o->seed : ((uint64_t)wall_ms() << 20) ^ (uint64_t)getpid();
    w->r.s = seed;
    snprintf(w->tag, sizeof w->tag, "%06" PRIx64, rng_next(&w->r) & 0xffffff);
    w->creators = o->creators;
    w->ids = !o->no_ids;
    w->frame_events = o->frame_events;
    w->names = xcalloc((size_t)o->creators, sizeof *w->names);
    for (long k = 0; k < o->creators; k++) {
        char buf[64];
        snprintf(buf, sizeof buf, "bench.%s.c%ld", w->tag, k);
        if (!(w->names[k] = strdup(buf)))
            die("out of memory");
    }
    w->cdf = zipf_cdf(o->creators, o->zipf_s);
}

/* n Zipf-distributed events with ts rising evenly over [ts0, ts1]; when
 * ret_sent is given, counts what each creator got per type. */
static void gen_zipf(workload *w, frames *f, const char *idkind, long n, int64_t ts0,
                     int64_t ts1, uint32_t (*ret_sent)[NTYPES]) {
    framer fr;
    char id[48], actor_s[24], post[16];
    for (long i = 0; i < n; i += w->frame_events) {
        uint32_t m = (uint32_t)(n - i < w->frame_events ? n - i : w->frame_events);
        framer_begin(&fr, f, m);
        for (uint32_t j = 0; j < m; j++) {
            long k = zipf_pick(w->cdf, w->creators, rng_u01(&w->r));
            int t = pick_type(&w->r);
            uint64_t a = rng_next(&w->r) % 1000000;
            snprintf(id, sizeof id, "%s-%s-%ld", w->tag, idkind, i + j);
            snprintf(post, sizeof post, "p%" PRIu64, rng_next(&w->r) % 5000);
            ev e = {.creator = w->names[k], .type = t, .id = w->ids ? id : NULL, .post = post,
                    .ts = ts0 + (int64_t)((double)(ts1 - ts0) * (double)(i + j) / (double)n),
                    .actor = -1, .followers = -1};
            if (a % 10 < 7) {
                e.actor = (int64_t)a; /* SPEC: an int actor or its decimal string */
            } else {
                snprintf(actor_s, sizeof actor_s, "u%" PRIu64, a);
                e.actor_s = actor_s;
            }
            pack_ev(&fr.pk, &e);
            if (ret_sent)
                ret_sent[k][t]++;
        }
        framer_close(&fr, m);
    }
}

/* ---- control client --------------------------------------------------------------- */

typedef struct ctl {
    void *zctx, *req;
    const char *ep;
    char *buf; /* the last reply's bytes: the unpacked objects point into it */
    msgpack_unpacked up;
    msgpack_sbuffer sb;
} ctl;

static void ctl_open(ctl *c) {
    int linger = 0;
    if (!(c->req = zmq_socket(c->zctx, ZMQ_REQ)))
        die("zmq_socket: %s", zmq_strerror(zmq_errno()));
    zmq_setsockopt(c->req, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(c->req, c->ep) != 0)
        die("control %s: %s", c->ep, zmq_strerror(zmq_errno()));
}

static void ctl_init(ctl *c, void *zctx, const char *ep) {
    memset(c, 0, sizeof *c);
    c->zctx = zctx, c->ep = ep;
    msgpack_unpacked_init(&c->up);
    msgpack_sbuffer_init(&c->sb);
    ctl_open(c);
}

static void ctl_fini(ctl *c) {
    zmq_close(c->req);
    msgpack_unpacked_destroy(&c->up);
    msgpack_sbuffer_destroy(&c->sb);
    free(c->buf);
}

/* Sends the request packed in c->sb; on success *ret is the reply map, valid
 * until the next call. -ETIMEDOUT leaves a fresh socket (a REQ that missed
 * its reply cannot send again). */
static int ctl_call(ctl *c, int timeout_ms, const msgpack_object **ret) {
    if (zmq_send(c->req, c->sb.data, c->sb.size, 0) < 0)
        return -zmq_errno();
    zmq_pollitem_t it = {c->req, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&it, 1, timeout_ms);
    if (rc <= 0) {
        zmq_close(c->req);
        ctl_open(c);
        return -ETIMEDOUT;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->req, 0) < 0) {
        zmq_msg_close(&m);
        return -zmq_errno();
    }
    free(c->buf);
    size_t len = zmq_msg_size(&m), off = 0;
    c->buf = malloc(len ? len : 1);
    if (!c->buf)
        die("out of memory");
    memcpy(c->buf, zmq_msg_data(&m), len);
    zmq_msg_close(&m);
    if (msgpack_unpack_next(&c->up, c->buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        c->up.data.type != MSGPACK_OBJECT_MAP)
        return -EPROTO;
    *ret = &c->up.data;
    return 0;
}

static msgpack_packer ctl_request(ctl *c, const char *op, size_t extra_pairs) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(&c->sb);
    msgpack_packer_init(&pk, &c->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + extra_pairs);
    pk_str(&pk, "op"), pk_str(&pk, op);
    return pk;
}

typedef struct dstats {
    uint64_t accepted, rejected, duplicate, alerts, commits, redis_errors, hints_sent,
        hints_taken, filtered;
} dstats;

static int get_stats(ctl *c, int timeout_ms, dstats *ret) {
    const msgpack_object *m;
    ctl_request(c, "stats", 0);
    int rc = ctl_call(c, timeout_ms, &m);
    if (rc < 0)
        return rc;
    int64_t v[9] = {0};
    const char *keys[9] = {"events_accepted", "events_rejected",  "events_duplicate",
                           "alerts_published", "commits",         "redis_errors",
                           "hints_sent",       "hints_taken",     "dedup_filtered_commits"};
    if (!mp_int(mp_get(m, "events_accepted"), &v[0]))
        return -EPROTO;
    for (int i = 1; i < 9; i++)
        mp_int(mp_get(m, keys[i]), &v[i]);
    *ret = (dstats){(uint64_t)v[0], (uint64_t)v[1], (uint64_t)v[2], (uint64_t)v[3],
                    (uint64_t)v[4], (uint64_t)v[5], (uint64_t)v[6], (uint64_t)v[7],
                    (uint64_t)v[8]};
    return 0;
}

static void must_stats(ctl *c, dstats *ret) {
    int rc = get_stats(c, 5000, ret);
    if (rc < 0)
        die("control stats: %s", rc == -ETIMEDOUT ? "no reply within 5 s" : strerror(-rc));
}

static int query_creator(ctl *c, const char *name, const msgpack_object **ret) {
    msgpack_packer pk = ctl_request(c, "creator", 1);
    pk_str(&pk, "creator"), pk_str(&pk, name);
    return ctl_call(c, 5000, ret);
}

/* Waits until the daemon has settled `want` more events than `base` (accepted
 * + rejected + duplicate), polling every 10 ms; returns the time it saw that. */
static double wait_settled(ctl *c, const dstats *base, uint64_t want, double deadline,
                           const char *what, dstats *ret) {
    for (;;) {
        dstats s;
        int rc = get_stats(c, 5000, &s);
        double now = mono_s();
        if (rc < 0 && rc != -ETIMEDOUT)
            die("control stats: %s", strerror(-rc));
        if (rc == 0) {
            uint64_t done = (s.accepted - base->accepted) + (s.rejected - base->rejected) +
                            (s.duplicate - base->duplicate);
            if (done >= want) {
                *ret = s;
                return now;
            }
            if (now > deadline)
                die("%s: timed out: the daemon settled %" PRIu64 " of %" PRIu64 " events "
                    "(accepted %" PRIu64 ", rejected %" PRIu64 ", duplicate %" PRIu64 ")",
                    what, done, want, s.accepted - base->accepted, s.rejected - base->rejected,
                    s.duplicate - base->duplicate);
        } else if (now > deadline) {
            die("%s: timed out: control stats does not answer", what);
        }
        sleep_s(STATS_POLL_MS / 1000.0);
    }
}

/* ---- Redis and /proc --------------------------------------------------------------- */

static redisContext *redis_open(const opts *o) {
    struct timeval tv = {5, 0};
    redisContext *r = redisConnectWithTimeout(o->redis_host, o->redis_port, tv);
    if (!r || r->err)
        die("redis %s:%d: %s", o->redis_host, o->redis_port, r ? r->errstr : "out of memory");
    redisSetTimeout(r, (struct timeval){30, 0});
    return r;
}

/* A numeric field of INFO <section>, e.g. used_memory; NAN when absent. */
static double redis_info(redisContext *r, const char *section, const char *field) {
    redisReply *rep = redisCommand(r, "INFO %s", section);
    if (!rep || rep->type != REDIS_REPLY_STRING)
        die("redis INFO %s: %s", section, rep ? rep->str : r->errstr);
    double v = NAN;
    size_t fl = strlen(field);
    for (const char *p = rep->str; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, field, fl) == 0 && (p[fl] == ':' || p[fl] == '=')) {
            v = strtod(p + fl + 1, NULL);
            break;
        }
    freeReplyObject(rep);
    return v;
}

/* FCALL statistics from INFO commandstats: calls and total microseconds
 * (a line "cmdstat_fcall:calls=N,usec=N,..."); 0 before the first call. */
static void redis_fcall_stats(redisContext *r, double *calls, double *usec) {
    *calls = *usec = 0;
    redisReply *rep = redisCommand(r, "INFO commandstats");
    if (!rep || rep->type != REDIS_REPLY_STRING)
        die("redis INFO commandstats: %s", rep ? rep->str : r->errstr);
    const char *p = strstr(rep->str, "cmdstat_fcall:");
    const char *c = p ? strstr(p, "calls=") : NULL, *u = p ? strstr(p, "usec=") : NULL;
    if (c)
        *calls = strtod(c + 6, NULL);
    if (u)
        *usec = strtod(u + 5, NULL);
    freeReplyObject(rep);
}

static double redis_cpu(redisContext *r) {
    return redis_info(r, "cpu", "used_cpu_user") + redis_info(r, "cpu", "used_cpu_sys");
}

/* VmRSS / VmHWM of a process in kB, or -1. */
static long proc_kb(long pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t fl = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* user + system CPU seconds of a process, or NAN. */
static double proc_cpu_s(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NAN;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return NAN;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- producer thread ---------------------------------------------------------------- */

/* Sends pre-encoded frames over PUSH, as fast as the socket takes them or
 * paced at `rate` events/s; keeps the socket open (so nothing queued is
 * dropped) until told to stop. */
typedef struct producer {
    void *zctx;
    const char *ep;
    const frames *f;
    double rate, deadline;
    atomic_bool stop;
    atomic_ullong sent;
    atomic_int state; /* 0 running, 1 all sent, -1 failed */
    double t_first, t_last;
    char err[160];
    pthread_t th;
} producer;

static void *producer_main(void *arg) {
    producer *p = arg;
    void *s = zmq_socket(p->zctx, ZMQ_PUSH);
    /* linger: frames counted in sent are in the socket's queue, and a close
     * with linger 0 dropped the last ones when the daemon lagged (a report
     * run's background "settled 6011000 of 6013000"); bounded, as the run. */
    int hwm = 1000000, linger = 10000, timeout = 100;
    if (!s || zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout) || zmq_connect(s, p->ep)) {
        snprintf(p->err, sizeof p->err, "PUSH %s: %s", p->ep, zmq_strerror(zmq_errno()));
        atomic_store(&p->state, -1);
        goto out;
    }
    p->t_first = mono_s();
    uint64_t sent = 0;
    for (size_t i = 0; i < p->f->n && !atomic_load(&p->stop); i++) {
        if (p->rate > 0)
            sleep_s(p->t_first + (double)sent / p->rate - mono_s());
        while (zmq_send(s, p->f->v[i].data, p->f->v[i].len, 0) < 0) {
            if (zmq_errno() != EAGAIN || atomic_load(&p->stop) || mono_s() > p->deadline) {
                snprintf(p->err, sizeof p->err, "PUSH %s: send %s after %zu of %zu frames",
                         p->ep, zmq_errno() == EAGAIN ? "blocked past the deadline"
                                                      : zmq_strerror(zmq_errno()),
                         i, p->f->n);
                atomic_store(&p->state, -1);
                goto out;
            }
        }
        sent += p->f->v[i].n;
        atomic_store(&p->sent, sent);
    }
    p->t_last = mono_s();
    atomic_store(&p->state, 1);
    while (!atomic_load(&p->stop) && mono_s() < p->deadline)
        sleep_s(0.005);
out:
    if (s)
        zmq_close(s);
    return NULL;
}

static void producer_start(producer *p, void *zctx, const char *ep, const frames *f,
                           double rate, double deadline) {
    memset(p, 0, sizeof *p);
    p->zctx = zctx, p->ep = ep, p->f = f, p->rate = rate, p->deadline = deadline;
    atomic_init(&p->stop, false);
    atomic_init(&p->sent, 0);
    atomic_init(&p->state, 0);
    if (pthread_create(&p->th, NULL, producer_main, p) != 0)
        die("pthread_create failed");
}

static void producer_join(producer *p) {
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
}

static void producer_check(producer *p) {
    if (atomic_load(&p->state) < 0)
        die("producer: %s", p->err);
}

/* ---- baseline consumers (b) ------------------------------------------------------------ */

typedef struct consumer {
    void *zctx;
    const opts *o;
    const char *ep, *prefix;
    bool pipelined;
    uint64_t target;
    double deadline;
    atomic_ullong processed;
    atomic_int state; /* 0 starting, 1 bound, 2 done, -1 failed */
    double t_done;
    uint64_t commands, round_trips;
    char err[256];
    pthread_t th;
} consumer;

typedef struct fields {
    const msgpack_object *creator, *type, *ts, *n, *actor;
} fields;

static bool event_fields(const msgpack_object *m, fields *f, int *type, int64_t *hour,
                         int64_t *n) {
    memset(f, 0, sizeof *f);
    if (m->type != MSGPACK_OBJECT_MAP)
        return false;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (mp_is(k, "creator"))
            f->creator = v;
        else if (mp_is(k, "type"))
            f->type = v;
        else if (mp_is(k, "ts"))
            f->ts = v;
        else if (mp_is(k, "n"))
            f->n = v;
        else if (mp_is(k, "actor"))
            f->actor = v;
    }
    int64_t ts;
    *n = 1;
    if (!f->creator || f->creator->type != MSGPACK_OBJECT_STR || !f->type ||
        !mp_int(f->ts, &ts) || (f->n && !mp_int(f->n, n)))
        return false;
    *type = -1;
    for (int t = 0; t < NTYPES; t++)
        if (mp_is(f->type, TYPES[t].name))
            *type = t;
    *hour = ts / HOUR_MS;
    return *type >= 0;
}

static bool reply_ok(redisContext *r, redisReply *rep, consumer *c) {
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        snprintf(c->err, sizeof c->err, "redis: %s", rep ? rep->str : r->errstr);
        freeReplyObject(rep);
        return false;
    }
    freeReplyObject(rep);
    return true;
}

/* One frame's events: a synchronous round trip each, or all their commands
 * in one pipeline. Returns the events handled, -1 on a Redis error. */
static long consume_frame(consumer *c, redisContext *r, const char *data, size_t len) {
    msgpack_unpacked up;
    size_t off = 0;
    long done = 0, queued = 0;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_ARRAY) {
        msgpack_unpacked_destroy(&up);
        return 0; /* not ours to judge: the bench only sends good frames */
    }
    for (uint32_t i = 0; i < up.data.via.array.size; i++) {
        fields f;
        int t;
        int64_t hour, n;
        if (!event_fields(&up.data.via.array.ptr[i], &f, &t, &hour, &n))
            continue;
        const char *cp = f.creator->via.str.ptr;
        size_t cl = f.creator->via.str.size;
        if (!c->pipelined) {
            redisReply *rep = redisCommand(r, "HINCRBY %s:{%b}:%lld %s %lld", c->prefix, cp, cl,
                                           (long long)hour, TYPES[t].name, (long long)n);
            if (!reply_ok(r, rep, c))
                goto fail;
            c->commands++, c->round_trips++;
            done++;
            continue;
        }
        redisAppendCommand(r, "HINCRBY %s:{%b}:%lld %s %lld", c->prefix, cp, cl,
                           (long long)hour, TYPES[t].name, (long long)n);
        queued++;
        if (TYPES[t].weight) {
            redisAppendCommand(r, "HINCRBY %s:{%b}:%lld E %lld", c->prefix, cp, cl,
                               (long long)hour, (long long)(TYPES[t].weight * n));
            queued++;
        }
        if (f.actor && TYPES[t].interaction) {
            int64_t a;
            if (mp_int(f.actor, &a))
                redisAppendCommand(r, "PFADD %s:{%b}:%lld:u %lld", c->prefix, cp, cl,
                                   (long long)hour, (long long)a);
            else
                redisAppendCommand(r, "PFADD %s:{%b}:%lld:u %b", c->prefix, cp, cl,
                                   (long long)hour, f.actor->via.str.ptr,
                                   (size_t)f.actor->via.str.size);
            queued++;
        }
        done++;
    }
    if (queued) {
        c->commands += (uint64_t)queued, c->round_trips++;
        for (long q = 0; q < queued; q++) {
            redisReply *rep = NULL;
            if (redisGetReply(r, (void **)&rep) != REDIS_OK)
                rep = NULL;
            if (!reply_ok(r, rep, c))
                goto fail;
        }
    }
    msgpack_unpacked_destroy(&up);
    return done;
fail:
    msgpack_unpacked_destroy(&up);
    return -1;
}

static void *consumer_main(void *arg) {
    consumer *c = arg;
    redisContext *r = NULL;
    void *s = zmq_socket(c->zctx, ZMQ_PULL);
    int linger = 0, hwm = 1000000;
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) || zmq_bind(s, c->ep)) {
        snprintf(c->err, sizeof c->err, "PULL bind %s: %s", c->ep, zmq_strerror(zmq_errno()));
        goto fail;
    }
    struct timeval tv = {5, 0};
    r = redisConnectWithTimeout(c->o->redis_host, c->o->redis_port, tv);
    if (!r || r->err) {
        snprintf(c->err, sizeof c->err, "redis: %s", r ? r->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(r, (struct timeval){10, 0});
    atomic_store(&c->state, 1);
    uint64_t done = 0;
    while (done < c->target) {
        if (mono_s() > c->deadline) {
            snprintf(c->err, sizeof c->err, "timed out after %" PRIu64 " of %" PRIu64 " events",
                     done, c->target);
            goto fail;
        }
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        long got = consume_frame(c, r, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
        if (got < 0)
            goto fail;
        done += (uint64_t)got;
        atomic_store(&c->processed, done);
    }
    c->t_done = mono_s();
    atomic_store(&c->state, 2);
    goto out;
fail:
    atomic_store(&c->state, -1);
out:
    if (r)
        redisFree(r);
    if (s)
        zmq_close(s);
    return NULL;
}

typedef struct run_result {
    uint64_t events;
    double secs, rate;
    uint64_t commands, round_trips;
} run_result;

/* Runs one baseline: consumer thread bound first, then the producer. */
static run_result run_baseline(void *zctx, const opts *o, const frames *all, uint64_t n,
                               bool pipelined, const char *prefix) {
    frames f = *all;
    size_t nf = (size_t)((n + BATCH - 1) / BATCH);
    f.n = nf < all->n ? nf : all->n;
    f.events = 0;
    for (size_t i = 0; i < f.n; i++)
        f.events += f.v[i].n;
    double deadline = mono_s() + o->timeout_s;
    consumer c = {.zctx = zctx, .o = o, .ep = o->naive_ep, .prefix = prefix,
                  .pipelined = pipelined, .target = f.events, .deadline = deadline};
    atomic_init(&c.processed, 0);
    atomic_init(&c.state, 0);
    if (pthread_create(&c.th, NULL, consumer_main, &c) != 0)
        die("pthread_create failed");
    while (atomic_load(&c.state) == 0 && mono_s() < deadline)
        sleep_s(0.001);
    if (atomic_load(&c.state) != 1) {
        pthread_join(c.th, NULL);
        die("%s baseline: %s", pipelined ? "pipelined" : "naive", c.err);
    }
    producer p;
    double t0 = mono_s();
    producer_start(&p, zctx, o->naive_ep, &f, 0, deadline);
    pthread_join(c.th, NULL);
    producer_join(&p);
    producer_check(&p);
    if (atomic_load(&c.state) != 2)
        die("%s baseline: %s", pipelined ? "pipelined" : "naive", c.err);
    run_result res = {.events = f.events, .secs = c.t_done - t0, .commands = c.commands,
                      .round_trips = c.round_trips};
    res.rate = (double)res.events / res.secs;
    return res;
}

/* Deletes the baselines' keys (SCAN + UNLINK), bounded by the deadline. */
static void drop_keys(redisContext *r, const char *prefix, double deadline) {
    char cursor[32] = "0";
    do {
        redisReply *rep = redisCommand(r, "SCAN %s MATCH %s:* COUNT 1000", cursor, prefix);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
            die("redis SCAN: %s", rep && rep->str ? rep->str : r->errstr);
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        if (keys->elements) {
            const char **argv = xcalloc(keys->elements + 1, sizeof *argv);
            size_t *lens = xcalloc(keys->elements + 1, sizeof *lens);
            argv[0] = "UNLINK", lens[0] = 6;
            for (size_t i = 0; i < keys->elements; i++)
                argv[i + 1] = keys->element[i]->str, lens[i + 1] = keys->element[i]->len;
            freeReplyObject(redisCommandArgv(r, (int)keys->elements + 1, argv, lens));
            free(argv);
            free(lens);
        }
        freeReplyObject(rep);
        if (mono_s() > deadline)
            die("deleting %s:* keys: timed out", prefix);
    } while (strcmp(cursor, "0") != 0);
}

/* ---- (a) nousud end to end ----------------------------------------------------------- */

/* What (a) measured and read back. */
typedef struct phase_a {
    run_result run;
    dstats before, after;
    uint64_t checked, mismatched, events_checked;
    char first_mismatch[256];
    double daemon_cpu, redis_cpu, bench_cpu, fcalls, fcall_usec;
} phase_a;

/* Reads back every creator's (or a sample's) counts and compares them with
 * what was sent, type by type. */
static void verify_counts(ctl *c, const workload *w, uint32_t (*sent)[NTYPES], long sample,
                          double deadline, phase_a *a) {
    long step = sample > 0 && sample < w->creators ? w->creators / sample : 1;
    for (long k = 0; k < w->creators; k += step) {
        uint64_t total = 0;
        for (int t = 0; t < NTYPES; t++)
            total += sent[k][t];
        const msgpack_object *m;
        int rc = query_creator(c, w->names[k], &m);
        if (rc < 0)
            die("control creator %s: %s", w->names[k], rc == -ETIMEDOUT ? "no reply" : strerror(-rc));
        if (mono_s() > deadline)
            die("verifying counters: timed out after %" PRIu64 " creators", a->checked);
        a->checked++;
        const msgpack_object *err = mp_get(m, "error"), *counts = mp_get(m, "counts");
        if (total == 0 && err && mp_is(err, "unknown_creator"))
            continue;
        char why[200] = "";
        if (!counts) {
            snprintf(why, sizeof why, "no counts in the reply%s%.*s", err ? ": " : "",
                     err ? (int)err->via.str.size : 0, err ? err->via.str.ptr : "");
        } else {
            for (int t = 0; t < NTYPES && !why[0]; t++) {
                int64_t got = -1;
                mp_int(mp_get(counts, TYPES[t].name), &got);
                if (got != (int64_t)sent[k][t])
                    snprintf(why, sizeof why, "%s: %" PRId64 " counted, %" PRIu32 " sent",
                             TYPES[t].name, got, sent[k][t]);
            }
        }
        if (why[0]) {
            if (!a->mismatched++)
                snprintf(a->first_mismatch, sizeof a->first_mismatch, "%s %s", w->names[k], why);
        } else {
            a->events_checked += total;
        }
    }
}

/* MEMORY USAGE of the dedup-id sets (<prefix>ids:<slice>:<bucket>). */
static double ids_memory(redisContext *r, const opts *o, const workload *w, uint32_t (*sent)[NTYPES]) {
    (void)w, (void)sent;
    double sum = 0;
    char cursor[32] = "0";
    do {
        redisReply *rep = redisCommand(r, "SCAN %s MATCH %sids:* COUNT 1000", cursor, o->key_prefix);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
            die("redis SCAN: %s", r->errstr);
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++)
            redisAppendCommand(r, "MEMORY USAGE %s SAMPLES 0", keys->element[i]->str);
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *m = NULL;
            if (redisGetReply(r, (void **)&m) != REDIS_OK)
                die("redis MEMORY USAGE: %s", r->errstr);
            if (m->type == REDIS_REPLY_INTEGER)
                sum += (double)m->integer;
            freeReplyObject(m);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return sum;
}

/* ---- (c) alert latency ----------------------------------------------------------------- */

typedef struct risers {
    long n;
    char **names;
    double *t_send, *t_alert;
    long alerted, early, others;
} risers;

/* Index of a riser from its name, or -1. */
static long riser_index(const risers *rs, const workload *w, const char *p, size_t len) {
    char prefix[48];
    int pl = snprintf(prefix, sizeof prefix, "bench.%s.r", w->tag);
    if (len <= (size_t)pl || len > 40 || memcmp(p, prefix, (size_t)pl) != 0)
        return -1;
    long k = 0;
    for (size_t i = (size_t)pl; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        k = k * 10 + (p[i] - '0');
    }
    return k < rs->n ? k : -1;
}

/* Takes every alert waiting on SUB; stamps the first for each riser. */
static void take_alerts(void *sub, risers *rs, const workload *w, int timeout_ms) {
    zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return;
    for (;;) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        if (zmq_msg_recv(&topic, sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&topic);
            return;
        }
        double now = mono_s();
        zmq_msg_init(&body);
        int more = zmq_msg_more(&topic);
        zmq_msg_close(&topic);
        if (!more || zmq_msg_recv(&body, sub, 0) < 0) {
            zmq_msg_close(&body);
            rs->others++;
            continue;
        }
        msgpack_unpacked up;
        size_t off = 0;
        msgpack_unpacked_init(&up);
        long k = -1;
        if (msgpack_unpack_next(&up, zmq_msg_data(&body), zmq_msg_size(&body), &off) ==
            MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *cr = mp_get(&up.data, "creator");
            if (cr && cr->type == MSGPACK_OBJECT_STR)
                k = riser_index(rs, w, cr->via.str.ptr, cr->via.str.size);
        }
        msgpack_unpacked_destroy(&up);
        zmq_msg_close(&body);
        if (k < 0)
            rs->others++;
        else if (rs->t_send[k] == 0)
            rs->early++; /* alerted on its history alone: the priming is wrong */
        else if (rs->t_alert[k] == 0)
            rs->t_alert[k] = now, rs->alerted++;
    }
}

/* 8 days of steady history per riser (E ~60/day, 100 distinct actors),
 * ending 2 h before now, creator by creator in event-time order. */
static void gen_priming(const workload *w, risers *rs, frames *f, int64_t now_ms) {
    framer fr;
    const uint64_t slots = PRIME_DAYS * 24 * HOUR_MS / PRIME_SLOT_MS;
    const uint64_t total = (uint64_t)rs->n * slots * 3;
    char id[64];
    rng r = {0x5eed};
    for (uint64_t i = 0; i < total; i += BATCH) {
        uint32_t m = (uint32_t)(total - i < BATCH ? total - i : BATCH);
        framer_begin(&fr, f, m);
        for (uint64_t e_i = i; e_i < i + m; e_i++) {
            uint64_t k = e_i / (slots * 3), s = e_i / 3 % slots, j = e_i % 3;
            snprintf(id, sizeof id, "%s-p-%" PRIu64, w->tag, e_i);
            ev e = {.creator = rs->names[k], .type = j < 2 ? T_LIKE : T_COMMENT, .id = id,
                    .ts = now_ms - 2 * HOUR_MS - (int64_t)(slots - s) * PRIME_SLOT_MS +
                          (int64_t)j * 60000,
                    .actor = (int64_t)(k * 1000 + rng_next(&r) % 100),
                    .followers = RISER_FOLLOWERS, .niche = "bench"};
            pack_ev(&fr.pk, &e);
        }
        framer_close(&fr, m);
    }
}

/* One frame per riser: RISER_BURST likes from distinct actors over the last
 * 10 minutes of event time. */
static void gen_bursts(const workload *w, risers *rs, frames *f, int64_t now_ms) {
    framer fr;
    char id[64];
    for (long k = 0; k < rs->n; k++) {
        framer_begin(&fr, f, RISER_BURST);
        for (int j = 0; j < RISER_BURST; j++) {
            snprintf(id, sizeof id, "%s-b-%ld-%d", w->tag, k, j);
            ev e = {.creator = rs->names[k], .type = T_LIKE, .id = id,
                    .ts = now_ms - 600000 + j * (600000 / RISER_BURST),
                    .actor = 100000000 + k * 1000 + j, .followers = -1};
            pack_ev(&fr.pk, &e);
        }
        framer_close(&fr, RISER_BURST);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p) {
    if (!n)
        return NAN;
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[i ? i - 1 : 0];
}

/* ---- options ---------------------------------------------------------------------------- */

static void usage(FILE *out, const char *argv0) {
    fprintf(out,
        "Usage: %s --redis-port=N --ingest=EP --alerts=EP --control=EP [options]\n"
        "\n"
        "Benchmarks a running nousud (bench/run.sh starts one with a throwaway Redis).\n"
        "\n"
        "  --redis-host=H          Redis of the daemon (default 127.0.0.1)\n"
        "  --redis-port=N          its port (default 6379)\n"
        "  --key-prefix=P          the daemon's key_prefix (default nousu:)\n"
        "  --ingest=EP             the daemon's PULL endpoint\n"
        "  --alerts=EP             the daemon's PUB endpoint\n"
        "  --control=EP            the daemon's control endpoint\n"
        "  --naive-endpoint=EP     PULL endpoint the baselines bind (default ipc:///tmp/nousu-bench-PID.sock)\n"
        "  --daemon-pid=PID        for RSS and CPU figures from /proc\n"
        "  --events=N              events for (a) (default 1000000)\n"
        "  --creators=N            creators, Zipf popularity (default 10000)\n"
        "  --zipf-s=S              Zipf exponent (default 1.1)\n"
        "  --naive-events=N        events for the naive baseline (default 50000)\n"
        "  --pipelined-events=N    events for the pipelined baseline (default: --events)\n"
        "  --risers=P              planted risers for (c) (default 200; 0 skips (c); under 100\n"
        "                          the p99 is the max, and is printed as such)\n"
        "  --load=F                background load in (c), fraction of (a)'s rate (default 0.5)\n"
        "  --load-rate=N           background load in (c), events/s, whatever (a)'s rate: the\n"
        "                          same load for runs compared in turn (a drifts run to run)\n"
        "  --spread-s=S            seconds over which the risers' bursts are sent (default 20)\n"
        "  --verify=N              creators to read back after (a); 0: all (default 0)\n"
        "  --timeout-s=S           deadline of each phase (default 180)\n"
        "  --seed=N                workload seed (default: from the clock)\n"
        "  --no-ids                send (a) and the background without event ids (no dedup)\n"
        "  --frame-events=N        events per frame of (a) and the background (default 1000;\n"
        "                          the baselines keep frames, hence pipelines, of 1000)\n"
        "  --latency-log=FILE      write (c)'s latencies to FILE, one riser a line: the\n"
        "                          wall clock of its send (s since the epoch) and its latency\n"
        "                          in ms (-1: no alert), to line up with Redis's log\n",
        argv0);
}

static long arg_long(const char *name, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        die("--%s=%s: expected an integer in %ld..%ld", name, v, lo, hi);
    return x;
}

static double arg_double(const char *name, const char *v, double lo, double hi) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        die("--%s=%s: expected a number in %g..%g", name, v, lo, hi);
    return x;
}

static void parse_opts(int argc, char **argv, opts *o) {
    static char naive_default[96];
    static const struct option lo[] = {
        {"redis-host", 1, 0, 'H'}, {"redis-port", 1, 0, 'p'}, {"key-prefix", 1, 0, 'K'},
        {"ingest", 1, 0, 'i'}, {"alerts", 1, 0, 'a'}, {"control", 1, 0, 'c'},
        {"naive-endpoint", 1, 0, 'N'}, {"daemon-pid", 1, 0, 'P'}, {"events", 1, 0, 'e'},
        {"creators", 1, 0, 'C'}, {"zipf-s", 1, 0, 'z'}, {"naive-events", 1, 0, 'n'},
        {"pipelined-events", 1, 0, 'l'}, {"risers", 1, 0, 'r'}, {"load", 1, 0, 'L'}, {"load-rate", 1, 0, 'R'},
        {"spread-s", 1, 0, 'S'}, {"verify", 1, 0, 'v'}, {"timeout-s", 1, 0, 't'},
        {"seed", 1, 0, 's'}, {"no-ids", 0, 0, 'I'}, {"frame-events", 1, 0, 'f'},
        {"latency-log", 1, 0, 'T'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    snprintf(naive_default, sizeof naive_default, "ipc:///tmp/nousu-bench-%ld.sock", (long)getpid());
    *o = (opts){.redis_host = "127.0.0.1", .redis_port = 6379, .key_prefix = "nousu:",
                .ingest = "tcp://127.0.0.1:7710", .alerts = "tcp://127.0.0.1:7712",
                .control = "tcp://127.0.0.1:7713", .naive_ep = naive_default,
                .events = 1000000, .creators = 10000, .naive_events = 50000, .frame_events = BATCH,
                .pipelined_events = -1, .risers = 200, .zipf_s = 1.1, .load = 0.5,
                .spread_s = 20, .timeout_s = 180, .daemon_pid = -1};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'H': o->redis_host = optarg; break;
        case 'p': o->redis_port = (int)arg_long("redis-port", optarg, 1, 65535); break;
        case 'K': o->key_prefix = optarg; break;
        case 'i': o->ingest = optarg; break;
        case 'a': o->alerts = optarg; break;
        case 'c': o->control = optarg; break;
        case 'N': o->naive_ep = optarg; break;
        case 'P': o->daemon_pid = arg_long("daemon-pid", optarg, 1, 1L << 30); break;
        case 'e': o->events = arg_long("events", optarg, 1, 100000000); break;
        case 'C': o->creators = arg_long("creators", optarg, 1, 10000000); break;
        case 'z': o->zipf_s = arg_double("zipf-s", optarg, 0, 10); break;
        case 'n': o->naive_events = arg_long("naive-events", optarg, 0, 100000000); break;
        case 'l': o->pipelined_events = arg_long("pipelined-events", optarg, 0, 100000000); break;
        case 'r': o->risers = arg_long("risers", optarg, 0, 100000); break;
        case 'L': o->load = arg_double("load", optarg, 0, 10); break;
        case 'R': o->load_rate = arg_double("load-rate", optarg, 1, 1e8); break;
        case 'S': o->spread_s = arg_double("spread-s", optarg, 0, 3600); break;
        case 'v': o->verify = arg_long("verify", optarg, 0, 100000000); break;
        case 't': o->timeout_s = arg_double("timeout-s", optarg, 1, 86400); break;
        case 's': o->seed = (uint64_t)arg_long("seed", optarg, 0, INT64_MAX); break;
        case 'I': o->no_ids = true; break;
        case 'f': o->frame_events = arg_long("frame-events", optarg, 1, 10000); break;
        case 'T': o->latency_log = optarg; break;
        case 'h': usage(stdout, argv[0]); exit(0);
        default: usage(stderr, argv[0]); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nousu-bench: unexpected argument %s\n", argv[optind]);
        usage(stderr, argv[0]);
        exit(2);
    }
    if (o->pipelined_events < 0)
        o->pipelined_events = o->events;
}

/* ---- the phases --------------------------------------------------------------------------- */

/* What every phase shares: options, sockets, the Redis connection. */
typedef struct bench {
    opts o;
    void *zctx, *sub;
    ctl c;
    redisContext *r;
    workload w;
    long ncpu;
    int failures;
} bench;

/* (a): send fa as fast as the daemon takes it; time until all are settled. */
static void e2e_measure(bench *b, const frames *fa, phase_a *a) {
    const opts *o = &b->o;
    double fc0, fu0, fc1, fu1;
    redis_fcall_stats(b->r, &fc0, &fu0);
    double rcpu0 = redis_cpu(b->r), dcpu0 = proc_cpu_s(o->daemon_pid), bcpu0 = self_cpu_s();
    must_stats(&b->c, &a->before);
    double deadline = mono_s() + o->timeout_s;
    producer p;
    double t0 = mono_s();
    producer_start(&p, b->zctx, o->ingest, fa, 0, deadline);
    double t1 = wait_settled(&b->c, &a->before, fa->events, deadline, "nousud end-to-end",
                             &a->after);
    producer_join(&p);
    producer_check(&p);
    a->run = (run_result){.events = fa->events, .secs = t1 - t0};
    a->run.rate = (double)fa->events / a->run.secs;
    a->daemon_cpu = proc_cpu_s(o->daemon_pid) - dcpu0;
    a->redis_cpu = redis_cpu(b->r) - rcpu0;
    a->bench_cpu = self_cpu_s() - bcpu0;
    redis_fcall_stats(b->r, &fc1, &fu1);
    a->fcalls = fc1 - fc0;
    a->fcall_usec = fu1 - fu0;
}

/* (a) and its report; returns the measured events/s. */
static double run_e2e(bench *b, const frames *fa, uint32_t (*sent)[NTYPES]) {
    const opts *o = &b->o;
    long touched = 0;
    uint64_t top = 0;
    for (long k = 0; k < o->creators; k++) {
        uint64_t t = 0;
        for (int j = 0; j < NTYPES; j++)
            t += sent[k][j];
        touched += t > 0;
        top = t > top ? t : top;
    }
    phase_a a = {0};
    double mem0 = redis_info(b->r, "memory", "used_memory");
    e2e_measure(b, fa, &a);
    uint64_t acc = a.after.accepted - a.before.accepted;
    uint64_t rej = a.after.rejected - a.before.rejected;
    uint64_t dup = a.after.duplicate - a.before.duplicate;
    uint64_t commits = a.after.commits - a.before.commits;
    uint64_t rerr = a.after.redis_errors - a.before.redis_errors;

    verify_counts(&b->c, &b->w, sent, o->verify, mono_s() + o->timeout_s, &a);
    char verdict[400];
    if (a.mismatched == 0)
        snprintf(verdict, sizeof verdict, "counters verified: exact");
    else
        snprintf(verdict, sizeof verdict,
                 "COUNTERS MISMATCH: %" PRIu64 " of %" PRIu64 " creators differ, first %s",
                 a.mismatched, a.checked, a.first_mismatch);
    b->failures += a.mismatched != 0;
    printf("nousud end-to-end: %" PRIu64 " events in %.2f s = %s events/s (%s)\n", a.run.events,
           a.run.secs, grouped(a.run.rate), verdict);
    printf("  read back %s creators: %s events, every type's count; busiest creator got %s "
           "events\n",
           grouped((double)a.checked), grouped((double)a.events_checked), grouped((double)top));
    printf("  daemon stats: %s accepted, %s rejected, %s duplicate, %" PRIu64 " redis_errors; "
           "%s commits (%s events/commit); hints %s sent, %s taken; %s commits with ids "
           "filtered\n",
           grouped((double)acc), grouped((double)rej), grouped((double)dup), rerr,
           grouped((double)commits), grouped(commits ? (double)(acc + dup) / (double)commits : 0),
           grouped((double)(a.after.hints_sent - a.before.hints_sent)),
           grouped((double)(a.after.hints_taken - a.before.hints_taken)),
           grouped((double)(a.after.filtered - a.before.filtered)));
    if (acc != fa->events)
        printf("  WARNING: every event was unique, yet events_accepted is %s short of %s%s\n",
               grouped((double)fa->events - (double)acc), grouped((double)fa->events),
               rerr && dup ? " (commits that hit the Redis timeout were retried and their "
                             "events counted as duplicates; see the nousud log)"
                           : "");
    printf("  Redis: %s FCALLs, %.2f s inside them = %.1f us/event; CPU during the run: "
           "redis-server %.2f s, nousud %.2f s, bench %.2f s (wall %.2f s, %ld CPUs)\n",
           grouped(a.fcalls), a.fcall_usec / 1e6, a.fcall_usec / (double)fa->events, a.redis_cpu,
           a.daemon_cpu, a.bench_cpu, a.run.secs, b->ncpu);
    double mem1 = redis_info(b->r, "memory", "used_memory");
    double ids = o->no_ids ? 0 : ids_memory(b->r, o, &b->w, sent);
    if (o->daemon_pid > 0)
        printf("  daemon RSS: %.1f MB (peak %.1f MB)\n", proc_kb(o->daemon_pid, "VmRSS") / 1024.0,
               proc_kb(o->daemon_pid, "VmHWM") / 1024.0);
    printf("  Redis used_memory: +%.1f MB for %s creators = %.2f KB/creator", (mem1 - mem0) / 1e6,
           grouped((double)touched), (mem1 - mem0) / 1024.0 / (double)touched);
    if (ids > 0)
        printf("; %.1f MB of it the dedup sets of %s event ids (%.0f B/id, held for the dedup "
               "horizon), leaving %.2f KB/creator of counters",
               ids / 1e6, grouped((double)fa->events), ids / (double)fa->events,
               (mem1 - mem0 - ids) / 1024.0 / (double)touched);
    printf(" (events span 1 min: 1-2 live buckets per creator)\n");
    return a.run.rate;
}

/* (b): the same frames into the naive and the pipelined consumer. */
static void run_baselines(bench *b, const frames *fa, double rate_a) {
    const opts *o = &b->o;
    run_result nv = {0}, pl = {0};
    if (o->naive_events > 0) {
        nv = run_baseline(b->zctx, o, fa, (uint64_t)o->naive_events, false, "bench-naive");
        printf("naive (1 sync round trip/event, HINCRBY): %" PRIu64 " events in %.2f s = %s "
               "events/s (N=%s: one round trip per event)\n",
               nv.events, nv.secs, grouped(nv.rate), grouped((double)nv.events));
        drop_keys(b->r, "bench-naive", mono_s() + o->timeout_s);
    }
    if (o->pipelined_events > 0) {
        pl = run_baseline(b->zctx, o, fa, (uint64_t)o->pipelined_events, true, "bench-pipe");
        printf("pipelined (%d events/round trip, %.1f cmds/event: HINCRBY type, HINCRBY E, "
               "PFADD actor): %" PRIu64 " events in %.2f s = %s events/s\n",
               BATCH, (double)pl.commands / (double)pl.events, pl.events, pl.secs,
               grouped(pl.rate));
        drop_keys(b->r, "bench-pipe", mono_s() + o->timeout_s);
    }
    if (nv.rate > 0 || pl.rate > 0) {
        printf("ratio: ");
        if (nv.rate > 0)
            printf("%.2fx naive%s", rate_a / nv.rate, pl.rate > 0 ? ", " : "");
        if (pl.rate > 0)
            printf("%.2fx pipelined", rate_a / pl.rate);
        printf(" (nousud / baseline; the baselines only count: no dedup, windows, detection or "
               "atomicity)\n");
    }
}

static void *push_open(bench *b) {
    void *s = zmq_socket(b->zctx, ZMQ_PUSH);
    int zero = 0, hwm = 1000000, sndto = 1000;
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &sndto, sizeof sndto) || zmq_connect(s, b->o.ingest))
        die("PUSH %s: %s", b->o.ingest, zmq_strerror(zmq_errno()));
    return s;
}

/* (c), first half: history for every riser, committed, and no alert yet. */
static void prime_risers(bench *b, risers *rs, void *push) {
    frames fp = {0};
    dstats s0, s1;
    gen_priming(&b->w, rs, &fp, wall_ms());
    must_stats(&b->c, &s0);
    double deadline = mono_s() + b->o.timeout_s;
    for (size_t i = 0; i < fp.n; i++)
        if (zmq_send(push, fp.v[i].data, fp.v[i].len, 0) < 0)
            die("priming: send: %s", zmq_strerror(zmq_errno()));
    wait_settled(&b->c, &s0, fp.events, deadline, "priming", &s1);
    take_alerts(b->sub, rs, &b->w, 0);
    if (s1.accepted - s0.accepted != fp.events || rs->early)
        die("priming: %" PRIu64 " of %" PRIu64 " events accepted, %ld risers alerted on "
            "history alone (see the daemon log)",
            s1.accepted - s0.accepted, fp.events, rs->early);
    const msgpack_object *m, *tier;
    if (query_creator(&b->c, rs->names[0], &m) < 0)
        die("control creator %s: no reply", rs->names[0]);
    tier = mp_get(m, "tier");
    printf("primed %ld micro creators (%d followers, niche bench): %s events over %d days "
           "of event time; %s: E_24h %.0f, expected %.1f, tier %.*s\n",
           rs->n, RISER_FOLLOWERS, grouped((double)fp.events), PRIME_DAYS, rs->names[0],
           mp_num(mp_get(m, "engagement")), mp_num(mp_get(m, "expected")),
           tier ? (int)tier->via.str.size : 1, tier ? tier->via.str.ptr : "?");
    frames_free(&fp);
}

/* --latency-log: each riser's send, as wall clock, and its latency. */
static void write_latency_log(const char *path, const risers *rs) {
    FILE *f = fopen(path, "w");
    if (!f)
        die("--latency-log=%s: %s", path, strerror(errno));
    double wall_minus_mono = (double)wall_ms() / 1000 - mono_s();
    for (long k = 0; k < rs->n; k++)
        fprintf(f, "%.3f %.1f\n", rs->t_send[k] + wall_minus_mono,
                rs->t_alert[k] > 0 ? (rs->t_alert[k] - rs->t_send[k]) * 1000 : -1.0);
    if (fclose(f))
        die("--latency-log=%s: %s", path, strerror(errno));
}

/* (c): background load at o.load x rate_a; one burst per riser, spread over
 * spread_s; latency from each send to its alert. */
static void run_latency(bench *b, double rate_a) {
    const opts *o = &b->o;
    risers rs = {.n = o->risers};
    rs.names = xcalloc((size_t)rs.n, sizeof *rs.names);
    rs.t_send = xcalloc((size_t)rs.n, sizeof *rs.t_send);
    rs.t_alert = xcalloc((size_t)rs.n, sizeof *rs.t_alert);
    for (long k = 0; k < rs.n; k++) {
        char buf[48];
        snprintf(buf, sizeof buf, "bench.%s.r%ld", b->w.tag, k);
        if (!(rs.names[k] = strdup(buf)))
            die("out of memory");
    }
    void *push = push_open(b); /* priming and bursts: one socket, in order */
    prime_risers(b, &rs, push);

    /* Background: (a)'s creators with fresh ids, paced; enough for the
     * whole window, stopped once every alert is in. */
    frames fb = {0}, fg = {0};
    double rate = o->load_rate > 0 ? o->load_rate : rate_a * o->load, lead = 1.0, tail = 10.0;
    long nbg = rate > 0 ? (long)(rate * (lead + o->spread_s + tail)) : 0;
    if (nbg > 20000000)
        nbg = 20000000;
    int64_t t_now = wall_ms();
    gen_zipf(&b->w, &fg, "g", nbg, t_now - 60000, t_now, NULL);
    gen_bursts(&b->w, &rs, &fb, wall_ms());

    dstats g0, g1;
    double fc0, fu0, fc1, fu1;
    must_stats(&b->c, &g0);
    redis_fcall_stats(b->r, &fc0, &fu0);
    producer p;
    double tg0 = mono_s(), deadline = tg0 + o->timeout_s;
    if (nbg)
        producer_start(&p, b->zctx, o->ingest, &fg, rate, deadline);
    double t_first = mono_s() + lead, alert_deadline = t_first + o->spread_s + 30;
    for (long k = 0; k < rs.n;) {
        double due = t_first + o->spread_s * (double)k / (double)rs.n, now = mono_s();
        if (now < due) {
            take_alerts(b->sub, &rs, &b->w, (int)ceil((due - now) * 1000));
            continue;
        }
        rs.t_send[k] = mono_s();
        if (zmq_send(push, fb.v[k].data, fb.v[k].len, 0) < 0)
            die("burst: send: %s", zmq_strerror(zmq_errno()));
        k++;
    }
    double t_sent = mono_s();
    while (rs.alerted < rs.n && mono_s() < alert_deadline)
        take_alerts(b->sub, &rs, &b->w, 20);
    uint64_t bg_sent = 0;
    double tg1 = mono_s();
    if (nbg) {
        atomic_store(&p.stop, true);
        bg_sent = atomic_load(&p.sent);
        producer_join(&p);
        producer_check(&p);
    }
    /* How far behind the daemon was when the load stopped. */
    double tc = wait_settled(&b->c, &g0, bg_sent + fb.events, mono_s() + o->timeout_s,
                             "background catch-up", &g1);
    redis_fcall_stats(b->r, &fc1, &fu1);

    double *lat = xcalloc((size_t)rs.n, sizeof *lat);
    size_t nl = 0;
    for (long k = 0; k < rs.n; k++)
        if (rs.t_alert[k] > 0)
            lat[nl++] = (rs.t_alert[k] - rs.t_send[k]) * 1000;
    qsort(lat, nl, sizeof *lat, cmp_double);
    uint64_t commits = g1.commits - g0.commits;
    uint64_t taken = g1.accepted - g0.accepted + g1.duplicate - g0.duplicate;
    /* Under 100 samples the 99th percentile is the slowest one: say so. */
    printf("alert latency at ~%s events/s background (%.0f%% of (a), %s events sent): p50 "
           "%.1f ms p90 %.1f ms p99 %.1f ms%s max %.1f ms (%zu/%ld alerted)\n",
           grouped((double)bg_sent / (tg1 - tg0)), 100 * rate / rate_a, grouped((double)bg_sent),
           pct(lat, nl, 50), pct(lat, nl, 90), pct(lat, nl, 99),
           nl < 100 ? " (the max: under 100 risers)" : "", nl ? lat[nl - 1] : NAN, nl, rs.n);
    printf("  bursts of %d likes (distinct actors) sent over %.1f s; the daemon settled the "
           "background %.0f ms after it stopped; %s commits of %s events on average, %s FCALLs "
           "averaging %.1f ms; %ld other alerts\n",
           RISER_BURST, t_sent - t_first, (tc - tg1) * 1000, grouped((double)commits),
           grouped(commits ? (double)taken / (double)commits : 0), grouped(fc1 - fc0),
           fc1 > fc0 ? (fu1 - fu0) / (fc1 - fc0) / 1000 : 0, rs.others);
    if ((long)nl < rs.n) {
        b->failures++;
        printf("  MISSING: %ld risers did not alert within 30 s of the last burst (rejected "
               "%" PRIu64 ", redis_errors %" PRIu64 " in the window)\n",
               rs.n - (long)nl, g1.rejected - g0.rejected, g1.redis_errors - g0.redis_errors);
    }
    free(lat);
    if (o->latency_log)
        write_latency_log(o->latency_log, &rs);
    zmq_close(push);
    frames_free(&fb);
    frames_free(&fg);
    for (long k = 0; k < rs.n; k++)
        free(rs.names[k]);
    free(rs.names);
    free(rs.t_send);
    free(rs.t_alert);
}

/* ---- main ------------------------------------------------------------------------------- */

static void wait_ready(ctl *c, double deadline) {
    for (;;) {
        const msgpack_object *m;
        ctl_request(c, "ping", 0);
        if (ctl_call(c, 200, &m) == 0 && mp_get(m, "pong"))
            return;
        if (mono_s() > deadline)
            die("nousud does not answer ping on %s", c->ep);
        sleep_s(0.05);
    }
}

static void bench_open(bench *b, int argc, char **argv) {
    memset(b, 0, sizeof *b);
    parse_opts(argc, argv, &b->o);
    if (!(b->zctx = zmq_ctx_new()))
        die("zmq_ctx_new failed");
    ctl_init(&b->c, b->zctx, b->o.control);
    wait_ready(&b->c, mono_s() + (b->o.timeout_s < 30 ? b->o.timeout_s : 30));
    b->r = redis_open(&b->o);
    /* The alert subscriber connects first: a PUB drops what is published
     * before a subscription has arrived. */
    int zero = 0;
    b->sub = zmq_socket(b->zctx, ZMQ_SUB);
    if (!b->sub || zmq_setsockopt(b->sub, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(b->sub, ZMQ_SUBSCRIBE, "rising.", 7) || zmq_connect(b->sub, b->o.alerts))
        die("SUB %s: %s", b->o.alerts, zmq_strerror(zmq_errno()));
    workload_init(&b->w, &b->o);
    b->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
}

static void bench_close(bench *b) {
    zmq_close(b->sub);
    ctl_fini(&b->c);
    redisFree(b->r);
    zmq_ctx_term(b->zctx);
    for (long k = 0; k < b->w.creators; k++)
        free(b->w.names[k]);
    free(b->w.names);
    free(b->w.cdf);
    if (strncmp(b->o.naive_ep, "ipc://", 6) == 0)
        unlink(b->o.naive_ep + 6);
}

int main(int argc, char **argv) {
    bench b;
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_open(&b, argc, argv);
    const opts *o = &b.o;

    /* Everything (a) and (b) send is encoded before any clock starts. */
    uint32_t (*sent)[NTYPES] = xcalloc((size_t)o->creators, sizeof *sent);
    frames fa = {0};
    int64_t t_now = wall_ms();
    gen_zipf(&b.w, &fa, "a", o->events, t_now - 60000, t_now, sent);
    printf("nousu-bench: run %s, %ld CPUs; %s events of ~%.0f bytes in batches of %d (%.1f MB)%s, "
           "%s creators, Zipf s=%.2f\n",
           b.w.tag, b.ncpu, grouped((double)o->events), (double)fa.bytes / (double)fa.events,
           (int)o->frame_events, (double)fa.bytes / 1e6, o->no_ids ? " without ids" : "",
           grouped((double)o->creators), o->zipf_s);

    double rate_a = run_e2e(&b, &fa, sent);
    if (o->frame_events == BATCH) {
        run_baselines(&b, &fa, rate_a);
    } else { /* the baselines pipeline a frame at a time: give them BATCH-event frames */
        frames fb = {0};
        b.w.frame_events = BATCH;
        gen_zipf(&b.w, &fb, "b", o->events, t_now - 60000, t_now, NULL);
        b.w.frame_events = o->frame_events;
        run_baselines(&b, &fb, rate_a);
        frames_free(&fb);
    }
    frames_free(&fa);
    free(sent);
    if (o->risers > 0)
        run_latency(&b, rate_a);
    if (o->daemon_pid > 0)
        printf("daemon RSS at the end: %.1f MB (peak %.1f MB); Redis used_memory %.1f MB\n",
               proc_kb(o->daemon_pid, "VmRSS") / 1024.0, proc_kb(o->daemon_pid, "VmHWM") / 1024.0,
               redis_info(b.r, "memory", "used_memory") / 1e6);
    int failures = b.failures;
    bench_close(&b);
    return failures ? 3 : 0;
}
