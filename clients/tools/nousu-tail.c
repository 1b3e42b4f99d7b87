/* nousu-tail -- print nousud's alerts as JSON lines.
 *
 * Live alerts come from the alerts PUB endpoint. With --since SEQ the tool
 * subscribes first, then reads the Redis stream for every alert after SEQ,
 * then goes on live: alerts published during the catch-up wait in the SUB
 * queue, so nothing is missed, and a live alert the catch-up already printed
 * is recognised by its seq and skipped, so nothing is printed twice. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define PROG "nousu-tail"

typedef struct tail {
    char **topics; /* prefixes; none: everything */
    int n_topics;
    uint64_t count, printed; /* count 0: no limit */
    uint64_t since;
    bool have_since;
    /* seqs printed by the catch-up, ascending, to skip them live; freed once
     * the live stream has passed the last of them */
    uint64_t *seen;
    size_t n_seen, cap_seen;
    int failed; /* write error on stdout */
    /* The subscription reaches the publisher some time after it is made:
     * until a live alert proves it is in place, the stream is read again
     * (from last_read) so that nothing published in between is missed. */
    const nousu_redis_opts *redis;
    uint64_t last_read; /* highest seq read from the stream */
    bool synced;
    int64_t next_sync; /* mono ms of the next such read */
} tail;

#define SYNC_POLL_MS 500

static void usage(FILE *f) {
    fprintf(f,
            "Usage: " PROG " [OPTIONS] [TOPIC_PREFIX...]\n"
            "Print nousud's alerts, one JSON object per line, as they are published.\n"
            "TOPIC_PREFIX filters by topic (<kind>.<niche>), e.g. 'rising.' or\n"
            "'graduated.gaming'; several may be given; none: every alert.\n"
            "\n"
            "  -e, --endpoint URL      alerts endpoint (default " NOUSU_DEFAULT_ALERTS ")\n"
            "  -s, --since SEQ         first print the alerts after SEQ from the Redis\n"
            "                          stream, then go on live without gaps or repeats\n"
            "  -r, --redis HOST:PORT   Redis for --since (default 127.0.0.1:6379; a path\n"
            "                          starting with / is a unix socket)\n"
            "      --redis-db N        Redis database (default 0)\n"
            "      --redis-user USER   Redis ACL user\n"
            "      --redis-password-file FILE  Redis password (else the environment\n"
            "                          variable NOUSU_REDIS_PASSWORD)\n"
            "  -p, --prefix P          Redis key prefix (default " NOUSU_DEFAULT_KEY_PREFIX ")\n"
            "  -n, --count N           exit after N alerts\n"
            "  -t, --timeout-ms T      exit after T ms without an alert\n"
            "      --curve-server-key KEY  the daemon's CURVE public key (Z85)\n"
            "      --curve-keys FILE   this client's public and secret key, one per line\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Exit status: 0 on --count, --timeout-ms, SIGINT or SIGTERM; 1 when the\n"
            "endpoint or Redis fails; 2 bad usage. Malformed alerts are reported on\n"
            "stderr and skipped.\n");
}

static bool topic_wanted(const tail *t, const char *topic) {
    if (t->n_topics == 0)
        return true;
    for (int i = 0; i < t->n_topics; i++)
        if (strncmp(topic, t->topics[i], strlen(t->topics[i])) == 0)
            return true;
    return false;
}

/* One alert as one JSON line; flushed, so a pipe reader sees it at once. */
static int print_alert(tail *t, const nousu_alert *a) {
    char *json = NULL;
    int r = nousu_msgpack_to_json(a->raw, a->raw_len, &json);
    if (r < 0) {
        fprintf(stderr, PROG ": alert %llu: cannot render: %s, ignoring\n",
                (unsigned long long)a->seq, strerror(-r));
        return 0;
    }
    if (puts(json) < 0 || fflush(stdout) != 0)
        t->failed = -EPIPE;
    free(json);
    t->printed++;
    return t->failed;
}

static bool done(const tail *t) {
    return cli_stop || t->failed || (t->count && t->printed >= t->count);
}

/* ------------------------------------------------------------- catch-up */

static int seen_add(tail *t, uint64_t seq) {
    if (t->n_seen == t->cap_seen) {
        size_t cap = t->cap_seen ? 2 * t->cap_seen : 256;
        uint64_t *s = realloc(t->seen, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        t->seen = s;
        t->cap_seen = cap;
    }
    t->seen[t->n_seen++] = seq;
    return 0;
}

static bool seen_has(const tail *t, uint64_t seq) {
    size_t lo = 0, hi = t->n_seen;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->seen[mid] == seq)
            return true;
        if (t->seen[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static int on_stream_alert(int err, const nousu_alert *a, void *ud) {
    tail *t = ud;
    if (a->seq > t->last_read)
        t->last_read = a->seq;
    if (err < 0) {
        fprintf(stderr, PROG ": stream entry %llu is not a valid alert, ignoring\n",
                (unsigned long long)a->seq);
        return done(t);
    }
    if (!topic_wanted(t, a->topic))
        return done(t);
    /* The stream is read in id order, so seen[] stays sorted. */
    if (seen_add(t, a->seq) < 0)
        return -ENOMEM;
    int r = print_alert(t, a);
    return r < 0 ? r : done(t);
}

/* ----------------------------------------------------------------- live */

static bool live_duplicate(tail *t, uint64_t seq) {
    if (t->have_since && seq <= t->since)
        return true; /* queued before the catch-up: already seen by the user */
    if (t->n_seen == 0)
        return false;
    if (seen_has(t, seq))
        return true;
    if (seq > t->seen[t->n_seen - 1]) {
        /* Each daemon's seq only grows: past the catch-up for good. */
        free(t->seen);
        t->seen = NULL;
        t->n_seen = t->cap_seen = 0;
    }
    return false;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the stream from where the last catch-up stopped. */
static int catch_up(tail *t) {
    uint64_t from = t->last_read > t->since ? t->last_read : t->since;
    int r = nousu_alerts_since(t->redis, from, on_stream_alert, t);
    if (r < 0)
        fprintf(stderr, PROG ": catching up from Redis %s: %s\n",
                t->redis->host ? t->redis->host : "127.0.0.1", strerror(-r));
    return r;
}

/* wait, or less when deadline (mono ms, -1: none) comes first. */
static int64_t until(int64_t wait, int64_t deadline) {
    if (deadline < 0)
        return wait;
    int64_t left = deadline - mono_ms();
    return left < 0 ? 0 : left < wait ? left : wait;
}

/* How long the next receive may wait: up to the idle timeout and, while not
 * yet synced, the next read of the stream; never more than CLI_STOP_POLL_MS. */
static int next_wait(const tail *t, int64_t idle_deadline) {
    int64_t wait = until(CLI_STOP_POLL_MS, idle_deadline);
    if (t->have_since && !t->synced)
        wait = until(wait, t->next_sync);
    return (int)wait;
}

static int run_live(tail *t, nousu_subscriber *s, int64_t timeout_ms) {
    nousu_alert a;
    int64_t idle_deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : -1;
    while (!done(t)) {
        int r = nousu_subscriber_recv(s, &a, next_wait(t, idle_deadline));
        if (r == -EAGAIN) {
            if (idle_deadline >= 0 && mono_ms() >= idle_deadline)
                return 0; /* --timeout-ms without an alert */
            if (t->have_since && !t->synced && mono_ms() >= t->next_sync) {
                if (catch_up(t) < 0)
                    return -EIO;
                t->next_sync = mono_ms() + SYNC_POLL_MS;
            }
            continue;
        }
        if (r == -EINTR)
            continue; /* cli_stop is checked by done() */
        if (r == -EBADMSG) {
            fprintf(stderr, PROG ": malformed alert message, ignoring\n");
            continue;
        }
        if (r < 0) {
            fprintf(stderr, PROG ": receiving: %s\n", strerror(-r));
            return r;
        }
        if (timeout_ms > 0)
            idle_deadline = mono_ms() + timeout_ms;
        if (t->have_since && !t->synced) {
            /* The first live alert: the subscription is in place. What was
             * published before it is in the stream. */
            if (catch_up(t) < 0)
                return -EIO;
            t->synced = true;
        }
        if (!live_duplicate(t, a.seq) && (r = print_alert(t, &a)) < 0)
            return r;
    }
    return 0;
}

/* -------------------------------------------------------------- options */

typedef struct options {
    const char *endpoint, *server_key, *key_file;
    char redis_host[256];
    nousu_redis_opts redis;
    int64_t timeout_ms;
} options;

enum { OPT_DB = 256, OPT_USER, OPT_PASSFILE, OPT_SERVER_KEY, OPT_KEYS };

static bool parse_option(int c, options *o, tail *t) {
    int64_t v;
    switch (c) {
    case 'e': o->endpoint = optarg; return true;
    case 's': t->have_since = true; return cli_uint64(PROG, "--since", optarg, &t->since);
    case 'r':
        return cli_redis_addr(PROG, optarg, o->redis_host, sizeof o->redis_host, &o->redis.port);
    case OPT_DB:
        if (!cli_int(PROG, "--redis-db", optarg, 0, 1 << 20, &v))
            return false;
        o->redis.db = (int)v;
        return true;
    case OPT_USER: o->redis.user = optarg; return true;
    case OPT_PASSFILE: o->redis.password_file = optarg; return true;
    case 'p': o->redis.key_prefix = optarg; return true;
    case 'n': return cli_uint64(PROG, "--count", optarg, &t->count);
    case 't': return cli_int(PROG, "--timeout-ms", optarg, 1, INT32_MAX, &o->timeout_ms);
    case OPT_SERVER_KEY: o->server_key = optarg; return true;
    case OPT_KEYS: o->key_file = optarg; return true;
    case 'h': usage(stdout); exit(0);
    case 'V': printf(PROG " %s\n", nousu_version()); exit(0);
    }
    return false;
}

static int parse_options(int argc, char **argv, options *o, tail *t) {
    static const struct option longs[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"since", required_argument, NULL, 's'},
        {"redis", required_argument, NULL, 'r'},
        {"redis-db", required_argument, NULL, OPT_DB},
        {"redis-user", required_argument, NULL, OPT_USER},
        {"redis-password-file", required_argument, NULL, OPT_PASSFILE},
        {"prefix", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"curve-server-key", required_argument, NULL, OPT_SERVER_KEY},
        {"curve-keys", required_argument, NULL, OPT_KEYS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "e:s:r:p:n:t:hV", longs, NULL)) != -1)
        if (!parse_option(c, o, t)) {
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return -EINVAL;
        }
    if (!o->endpoint)
        o->endpoint = NOUSU_DEFAULT_ALERTS;
    if (o->redis_host[0])
        o->redis.host = o->redis_host;
    t->topics = argv + optind;
    t->n_topics = argc - optind;
    return 0;
}

static nousu_subscriber *subscribe(const options *o, const tail *t, const nousu_curve *curve) {
    nousu_subscriber_opts so = {.curve = curve};
    nousu_subscriber *s =
        nousu_subscriber_new_opts(o->endpoint, t->n_topics ? t->topics[0] : "", &so);
    for (int i = 1; s && i < t->n_topics; i++)
        if (nousu_subscriber_subscribe(s, t->topics[i]) < 0)
            nousu_subscriber_destroy(&s);
    if (!s)
        fprintf(stderr, PROG ": %s: %s\n", o->endpoint, strerror(errno));
    return s;
}

int main(int argc, char **argv) {
    options o = {0};
    tail t = {0};
    cli_curve cc;
    bool use_curve;
    int r = 0;
    if (parse_options(argc, argv, &o, &t) < 0 ||
        !cli_curve_load(PROG, o.server_key, o.key_file, &cc, &use_curve))
        return CLI_EXIT_USAGE;
    cli_signals();
    nousu_subscriber *s = subscribe(&o, &t, use_curve ? &cc.keys : NULL);
    if (!s)
        return CLI_EXIT_FAIL;
    t.redis = &o.redis;
    if (t.have_since) {
        r = catch_up(&t);
        t.next_sync = mono_ms() + SYNC_POLL_MS;
    }
    if (r >= 0)
        r = run_live(&t, s, o.timeout_ms);
    nousu_subscriber_destroy(&s);
    free(t.seen);
    return r < 0 ? CLI_EXIT_FAIL : 0;
}
