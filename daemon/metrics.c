/* metrics.c -- Prometheus text rendering and the HTTP endpoint (see
 * metrics.h). */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

/* The loop must publish at least this often for /healthz to say alive. */
#define LIVENESS_MS 10000

static const double redis_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};
static const double commit_bounds[] = {1, 10, 100, 1000, 10000, 100000};
static const double lag_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10};

void histogram_init(histogram *h, const double *bounds, int n_bounds) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n_bounds < HISTOGRAM_MAX_BUCKETS ? n_bounds : HISTOGRAM_MAX_BUCKETS - 1;
}

void histogram_observe(histogram *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++; /* i == n_bounds: the +Inf bucket */
    h->count++;
    h->sum += v;
}

void stats_init(stats *st) {
    histogram_init(&st->redis_seconds, redis_bounds,
                   (int)(sizeof redis_bounds / sizeof redis_bounds[0]));
    histogram_init(&st->commit_events, commit_bounds,
                   (int)(sizeof commit_bounds / sizeof commit_bounds[0]));
    histogram_init(&st->commit_lag_seconds, lag_bounds,
                   (int)(sizeof lag_bounds / sizeof lag_bounds[0]));
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = true;
            return;
        }
        t->buf = nb, t->cap = cap;
    }
}

static void header(text *t, const char *name, const char *type, const char *help) {
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(text *t, const char *name, const char *help, uint64_t v) {
    header(t, name, "counter", help);
    put(t, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(text *t, const char *name, const char *help, double v) {
    header(t, name, "gauge", help);
    put(t, "%s %.17g\n", name, v);
}

static void render_histogram(text *t, const char *name, const char *help, const histogram *h) {
    header(t, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        put(t, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    put(t, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

static void render_events(text *t, const stats *st) {
    header(t, "nousu_events_total", "counter", "Events by outcome (accepted: committed in Redis).");
    put(t, "nousu_events_total{result=\"accepted\"} %llu\n",
        (unsigned long long)st->events_accepted);
    put(t, "nousu_events_total{result=\"duplicate\"} %llu\n",
        (unsigned long long)st->events_duplicate);
    put(t, "nousu_events_total{result=\"rejected\"} %llu\n",
        (unsigned long long)st->events_rejected);
    header(t, "nousu_rejected_total", "counter", "Rejected events or frames by reason.");
    for (int r = 1; r < REJECT__COUNT; r++)
        put(t, "nousu_rejected_total{reason=\"%s\"} %llu\n", reject_reason_name((reject_reason)r),
            (unsigned long long)st->rejected[r]);
    header(t, "nousu_alerts_total", "counter", "Alerts published, by kind.");
    for (int k = 0; k < ALERT__COUNT; k++)
        put(t, "nousu_alerts_total{kind=\"%s\"} %llu\n", alert_kind_name((alert_kind)k),
            (unsigned long long)st->alerts[k]);
}

int metrics_render(const stats *st, double start_s, const char *version, char **ret) {
    text t = {0};
    render_events(&t, st);
    counter(&t, "nousu_frames_total", "Frames read from both ingest endpoints.", st->frames);
    counter(&t, "nousu_requests_total", "Acknowledged requests read.", st->requests);
    counter(&t, "nousu_requests_replayed_total",
            "Requests already committed, answered with their first ack.", st->requests_replayed);
    counter(&t, "nousu_bad_envelopes_total", "Ack-endpoint messages not [request_id, payload].",
            st->bad_envelopes);
    counter(&t, "nousu_deadletter_shed_total",
            "Dead-letter entries dropped while Redis was unreachable.", st->deadletter_shed);
    counter(&t, "nousu_curve_refused_total",
            "ZeroMQ handshakes refused: not an allow-listed CURVE key.", st->curve_refused);
    counter(&t, "nousu_commits_total", "Commits (one Redis Function call each).", st->commits);
    counter(&t, "nousu_hints_sent_total",
            "Runs whose state the daemon computed and sent with the commit.", st->hints_sent);
    counter(&t, "nousu_hints_taken_total",
            "Of those, taken as sent (the state in Redis had not changed).", st->hints_taken);
    counter(&t, "nousu_dedup_filtered_commits_total",
            "Commits whose ids Redis looked up only where the daemon's filter said maybe "
            "(this daemon Redis's only writer).",
            st->dedup_filtered_commits);
    counter(&t, "nousu_redis_errors_total", "Failed Redis round trips.", st->redis_errors);
    render_histogram(&t, "nousu_redis_roundtrip_seconds", "Redis round-trip latency.",
                     &st->redis_seconds);
    render_histogram(&t, "nousu_commit_events", "Events per commit.", &st->commit_events);
    render_histogram(&t, "nousu_commit_lag_seconds",
                     "From reading a commit's first event to its reply from Redis.",
                     &st->commit_lag_seconds);
    gauge(&t, "nousu_redis_up", "1 while Redis answers.", st->redis_up);
    gauge(&t, "nousu_batch_pending_events", "Events taken in and not yet committed.",
          (double)st->pending_events);
    gauge(&t, "nousu_state_cache_bytes",
          "Bytes of creator states the committer keeps for hints (state_cache_mb).",
          (double)st->state_cache_bytes);
    gauge(&t, "nousu_dedup_filter_bytes",
          "Bytes of the filter of ids sent within the dedup horizon (dedup_filter_mb).",
          (double)st->dedup_filter_bytes);
    gauge(&t, "nousu_deadletter_queue", "Dead-letter entries waiting for Redis.",
          (double)st->deadletter_queue);
    gauge(&t, "process_start_time_seconds", "Start time of the process, Unix seconds.", start_s);
    header(&t, "nousu_build_info", "gauge", "Build information.");
    put(&t, "nousu_build_info{version=\"%s\"} 1\n", version);
    if (t.failed) {
        free(t.buf);
        return -ENOMEM;
    }
    *ret = t.buf;
    return (int)t.len;
}

/* ---- HTTP ------------------------------------------------------------------- */

struct metrics {
    struct MHD_Daemon *mhd;
    pthread_mutex_t lock;
    char *text;
    bool redis_up;
    int64_t published_ms;
};

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *body,
                               const char *type) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result serve_metrics(metrics *m, struct MHD_Connection *c) {
    pthread_mutex_lock(&m->lock);
    enum MHD_Result r = respond(c, MHD_HTTP_OK, m->text ? m->text : "",
                                "text/plain; version=0.0.4; charset=utf-8");
    pthread_mutex_unlock(&m->lock);
    return r;
}

static enum MHD_Result serve_health(metrics *m, struct MHD_Connection *c) {
    pthread_mutex_lock(&m->lock);
    bool alive = mono_ms() - m->published_ms < LIVENESS_MS;
    bool ok = alive && m->redis_up;
    pthread_mutex_unlock(&m->lock);
    const char *why = ok ? "ok\n" : !alive ? "loop stalled\n" : "redis unreachable\n";
    return respond(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why, "text/plain");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state) {
    metrics *m = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n", "text/plain");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(m, c);
    if (strcmp(url, "/healthz") == 0)
        return serve_health(m, c);
    return respond(c, MHD_HTTP_NOT_FOUND, "try /metrics or /healthz\n", "text/plain");
}

static int resolve(const char *hostport, struct sockaddr_storage *ret, socklen_t *ret_len) {
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return -EINVAL;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0 || !ai)
        return -EINVAL;
    memcpy(ret, ai->ai_addr, ai->ai_addrlen);
    *ret_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

metrics *metrics_new(const char *hostport) {
    struct sockaddr_storage sa;
    socklen_t len;
    if (resolve(hostport, &sa, &len) < 0) {
        log_error("metrics: cannot resolve %s", hostport);
        return NULL;
    }
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* A scrape is tiny: few connections, short timeouts, bounded memory. */
    m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT,
                              5u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
                              MHD_OPTION_END);
    if (!m->mhd) {
        log_error("metrics: cannot listen on %s", hostport);
        metrics_destroy(&m);
        return NULL;
    }
    log_info("metrics: serving http://%s/metrics and /healthz", hostport);
    return m;
}

void metrics_destroy(metrics **mp) {
    metrics *m = mp ? *mp : NULL;
    if (!m)
        return;
    if (m->mhd)
        MHD_stop_daemon(m->mhd);
    pthread_mutex_destroy(&m->lock);
    free(m->text);
    free(m);
    *mp = NULL;
}

void metrics_publish(metrics *m, char *text_, bool redis_up, int64_t now_mono_ms) {
    pthread_mutex_lock(&m->lock);
    free(m->text);
    m->text = text_;
    m->redis_up = redis_up;
    m->published_ms = now_mono_ms;
    pthread_mutex_unlock(&m->lock);
}
