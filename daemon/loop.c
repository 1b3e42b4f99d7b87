/* loop.c -- the reactor and the pipeline of a batch (see loop.h):
 *
 *   read (ingest) -> decode -> commit (committer thread, 1 round trip) ->
 *   detect -> post (store: alerts, boards, dead letters; 1 round trip) ->
 *   publish -> ack
 *
 * Three batches at most are in hand: up to COMMITTER_DEPTH at the committer
 * (q: one running in Redis, the next being prepared and sent behind it), and
 * one being filled (b) meanwhile, up to iteration_max_events. A commit takes
 * everything read since the last was handed over, so commits grow with the
 * load: small and quick when it is light, large (and cheaper per event) when
 * it is heavy; commit_interval_ms, when set, spaces them further under load.
 * A batch that could not be committed stays in q and is retried,
 * with every batch after it, in order; once b is full nothing more is read:
 * that is the bounded buffer that turns a Redis outage into backpressure on
 * producers (ZeroMQ high-water marks). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "alert.h"
#include "clock.h"
#include "committer.h"
#include "control.h"
#include "decide.h"
#include "detect.h"
#include "ingest.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "stats.h"
#include "store.h"
#include "window.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define SHUTDOWN_GRACE_MS 5000
#define CONTROL_PER_ITERATION 64
#define MAX_CHECKPOINTS 4 /* per creator per commit */
#define CRON_MS 250              /* metrics, watchdog, status */
#define DEDUP_SET_IDS_FALLBACK 384 /* 3/4 of Redis's default 512 */
#define STATUS_MS 1000

/* q_remove takes out the oldest or the newest entry only. */
_Static_assert(COMMITTER_DEPTH == 2, "q holds two batches: q_remove needs no shifting");

/* A batch taken in and not committed yet. */
typedef struct inhand {
    batch b;
    commit_result res;
    uint64_t seq;       /* its commit is <instance>:<seq>, on every retry */
    bool at_committer;  /* else waiting to be sent (again) */
    bool events_form;   /* the runs form was declined */
} inhand;

struct loop {
    config cfg;
    int argc;
    char **argv;
    void *zctx;
    ingest *in;
    alert_pub *pub;
    control *ctl;
    store *st; /* control, post, dead letters; the committer has its own */
    committer *com;
    decoder *dec;
    int sigfd;
    batch b;                   /* being filled */
    inhand q[COMMITTER_DEPTH]; /* oldest first, from q_head */
    size_t q_head, q_n;
    char instance[17];   /* random, names this process's commits */
    uint64_t commit_seq; /* the next batch's */
    stats stats;
    detect_params dp;
    window_params wp;
    int64_t backoff_ms; /* reconnecting l->st */
    int64_t next_connect_ms;
    int64_t commit_backoff_ms; /* retrying q */
    int64_t next_commit_ms;
    int64_t last_enqueue_ms; /* b's predecessor went to q (commit_interval_ms) */
    bool stopping;
    msgpack_sbuffer sbuf;
    log_limit bad_input_log;
    metrics *metrics;
    security *sec;
    int64_t next_cron_ms;
    int64_t next_status_ms;
    uint64_t status_accepted; /* events_accepted at the last STATUS= */
};

/* ---- settings derived from the config ------------------------------------- */

static void derive(loop *l) {
    const config *c = &l->cfg;
    l->dp = (detect_params){
        .micro_min = c->tier_micro_min, .micro_max = c->tier_micro_max,
        .mid_max = c->tier_mid_max, .prior_rate = c->prior_rate,
        .baseline_days = (double)c->baseline_s / 86400.0,
        .min_history_ms = c->min_history_s * 1000,
        .rising_min_engagement = c->rising_min_engagement,
        .rising_min_velocity = c->rising_min_velocity, .rising_min_z = c->rising_min_z,
        .rising_min_rate = c->rising_min_rate,
        .audience_min_interactions = c->audience_min_interactions,
        .audience_min_unique_ratio = c->audience_min_unique_ratio,
        .suspicious_follower_jump = c->suspicious_follower_jump,
        .suspicious_max_velocity = c->suspicious_max_velocity,
        .board_min_velocity = c->board_min_velocity,
    };
    l->wp = window_params_make(c->bucket_s, c->window_s, c->baseline_s);
    log_set_level(log_level_parse(c->log_level));
}

/* dedup_set_ids, or 0 (auto): 3/4 of Redis's set-max-intset-entries, room
 * for the spread of a hash's sets around their mean. */
static int64_t dedup_set_ids(loop *l) {
    if (l->cfg.dedup_set_ids)
        return l->cfg.dedup_set_ids;
    int64_t max = store_intset_max(l->st);
    return max ? (max * 3 + 3) / 4 : DEDUP_SET_IDS_FALLBACK;
}

static int commit_hints(const config *c) {
    if (strcmp(c->commit_hints, "off") == 0)
        return COMMIT_HINTS_OFF;
    return strcmp(c->commit_hints, "verify") == 0 ? COMMIT_HINTS_VERIFY : COMMIT_HINTS_ON;
}

static commit_params commit_params_now(loop *l) {
    const config *c = &l->cfg;
    commit_params p = {
        .wall_ms = wall_ms(), .bucket_ms = l->wp.bucket_ms, .recent = l->wp.recent,
        .hist = l->wp.hist, .lateness_ms = c->lateness_s * 1000,
        .horizon_ms = c->dedup_horizon_s * 1000, .request_ttl_s = c->request_ttl_s,
        /* Every key of a creator outlives its windows, in wall-clock time,
         * with margin for late events and slow replays. */
        .ttl_s = 2 * (c->window_s + c->baseline_s + c->lateness_s) + c->bucket_s,
        .micro_max = c->tier_micro_max, .dedup_buckets = c->dedup_buckets,
        .dedup_set_ids = dedup_set_ids(l), .hints = commit_hints(c), .det = l->dp,
        .cooldown_ms = c->cooldown_s * 1000, .max_checkpoints = MAX_CHECKPOINTS,
    };
    memcpy(p.weight, c->weight, sizeof p.weight);
    return p;
}

/* ---- setup ------------------------------------------------------------------ */

static int signals_open(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGPIPE);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    sigdelset(&mask, SIGPIPE);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* The Redis password comes from a file (never argv, never logged). */
static char *read_secret(const char *path) {
    if (!path || !path[0])
        return strdup("");
    FILE *f = fopen(path, "r");
    if (!f) {
        log_error("config: cannot read redis_password_file %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[512] = "";
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    char *s = strdup(buf);
    memset(buf, 0, sizeof buf);
    return s;
}

/* 64 random bits in hex: commit ids of different daemons never meet. */
static int instance_id(char out[17]) {
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        return -EIO;
    snprintf(out, 17, "%016llx", (unsigned long long)r);
    return 0;
}

static store *open_store(const config *c, size_t dedup_filter_bytes) {
    char *password = read_secret(c->redis_password_file);
    if (!password)
        return NULL;
    store_opts so = {
        .host = c->redis_host, .port = (int)c->redis_port, .db = (int)c->redis_db,
        .user = c->redis_user, .password = password, .timeout_ms = (int)c->redis_timeout_ms,
        .prefix = c->key_prefix, .deadletter_maxlen = (size_t)c->deadletter_maxlen,
        .deadletter_raw_max = (size_t)c->deadletter_raw_max,
        .deadletter_queue_max = 100000, .dedup_filter_bytes = dedup_filter_bytes,
        .stash = strcmp(c->commit_stash, "on") == 0,
    };
    store *st = store_new(&so);
    memset(password, 0, strlen(password));
    free(password);
    return st;
}

/* CURVE first: with it on, no socket may exist without the ZAP handler. */
static int open_sockets(loop *l) {
    const config *c = &l->cfg;
    l->sec = security_new(l->zctx, c->curve_secret_key_file, c->curve_allowed_keys_file);
    if (!l->sec)
        return -EACCES;
    ingest_opts io = {
        .sec = l->sec,
        .pull_endpoint = c->ingest, .ack_endpoint = c->ingest_ack, .rcvhwm = (int)c->rcvhwm,
        .max_msg_size = c->transport_max_bytes, .max_batch_events = (size_t)c->max_batch_events,
    };
    l->in = ingest_new(l->zctx, &io);
    l->pub = l->in ? alert_pub_new(l->zctx, c->alerts, (int)c->sndhwm, 65536, l->sec) : NULL;
    l->ctl = l->pub ? control_new(l->zctx, c->control, CONTROL_MAX_REQUEST, l->sec) : NULL;
    return l->ctl ? 0 : -EADDRINUSE;
}

loop *loop_new(const config *cfg, int argc, char **argv) {
    loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->sigfd = -1;
    l->argc = argc, l->argv = argv;
    l->bad_input_log = (log_limit)LOG_LIMIT_INIT(10000, 10);
    msgpack_sbuffer_init(&l->sbuf);
    if (config_copy(&l->cfg, cfg) < 0)
        goto fail;
    derive(l);
    decode_limits lim = {(size_t)cfg->max_frame_bytes, (size_t)cfg->max_batch_events,
                         cfg->future_s * 1000};
    if (!(l->dec = decoder_new(&lim)) || !(l->zctx = zmq_ctx_new()))
        goto fail;
    if ((l->sigfd = signals_open()) < 0 || open_sockets(l) < 0)
        goto fail;
    if (cfg->metrics[0] && !(l->metrics = metrics_new(cfg->metrics)))
        goto fail;
    if (!(l->st = open_store(cfg, 0)) || store_connect(l->st) < 0)
        goto fail;
    store *cst = open_store(cfg, (size_t)cfg->dedup_filter_mb << 20);
    size_t cache_bytes = (size_t)cfg->state_cache_mb << 20;
    if (!cst || store_connect(cst) < 0 ||
        !(l->com = committer_new(cst, cache_bytes, (int)cfg->redis_timeout_ms))) {
        store_destroy(&cst);
        goto fail;
    }
    log_notice("redis: connected to %s:%lld db %lld, functions loaded", cfg->redis_host,
               (long long)cfg->redis_port, (long long)cfg->redis_db);
    stats_init(&l->stats);
    l->stats.started_ms = wall_ms();
    if (instance_id(l->instance) < 0)
        goto fail;
    return l;
fail:
    loop_destroy(&l);
    return NULL;
}

void loop_destroy(loop **lp) {
    loop *l = lp ? *lp : NULL;
    if (!l)
        return;
    committer_destroy(&l->com); /* waits for the commits under way */
    ingest_release(&l->b);
    batch_free(&l->b);
    for (size_t i = 0; i < COMMITTER_DEPTH; i++) {
        ingest_release(&l->q[i].b);
        batch_free(&l->q[i].b);
        commit_result_clear(&l->q[i].res);
    }
    ingest_destroy(&l->in);
    alert_pub_destroy(&l->pub);
    control_destroy(&l->ctl);
    security_destroy(&l->sec);
    store_destroy(&l->st);
    decoder_destroy(&l->dec);
    metrics_destroy(&l->metrics);
    if (l->zctx)
        zmq_ctx_term(l->zctx);
    if (l->sigfd >= 0)
        close(l->sigfd);
    config_free(&l->cfg);
    msgpack_sbuffer_destroy(&l->sbuf);
    free(l);
    *lp = NULL;
}

/* ---- accounting of rejected input ------------------------------------------ */

static void reject(loop *l, const batch *b, reject_reason why, batch_source src,
                   const strref *raw) {
    l->stats.events_rejected++;
    l->stats.rejected[why]++;
    if (store_deadletter(l->st, reject_reason_name(why), src, b->received_ms, raw->ptr,
                         raw->len) < 0)
        l->stats.deadletter_shed++;
    log_limited(&l->bad_input_log, LOG_WARNING, "%s: rejected %s (%u bytes), dead-lettered",
                src == SOURCE_ACK ? "ingest_ack" : "ingest", reject_reason_name(why),
                raw->len);
}

/* Count the frames of a batch, once, as it goes to its first commit. */
static void account_batch(loop *l, const batch *b) {
    for (size_t u = 0; u < b->n_units; u++) {
        l->stats.frames++;
        l->stats.requests += b->units[u].source == SOURCE_ACK;
    }
}

/* What the decoder refused, and what Redis refused (too_old), is counted and
 * dead-lettered after the commit: a request answered with its first ack had
 * its rejections counted the first time. */
static void account_unit(loop *l, const batch *b, const batch_unit *bu, const unit_result *r) {
    const decode_item *items = &b->items[bu->first_item];
    for (size_t i = 0; i < bu->n_items; i++)
        if (items[i].reason != REJECT_NONE)
            reject(l, b, items[i].reason, bu->source, &items[i].ev.raw);
    l->stats.events_accepted += r->ok;
    l->stats.events_duplicate += r->dup;
    for (uint32_t i = 0; i < r->n_too_old && r->too_old[i] < bu->n_items; i++)
        reject(l, b, REJECT_TOO_OLD, bu->source, &items[r->too_old[i]].ev.raw);
}

static void account_results(loop *l, const inhand *h) {
    for (size_t u = 0; u < h->res.n_units; u++) {
        if (h->res.units[u].replayed)
            l->stats.requests_replayed++;
        else
            account_unit(l, &h->b, &h->b.units[u], &h->res.units[u]);
    }
}

/* ---- detection ---------------------------------------------------------------- */

static decide_ctx decide_context(loop *l) {
    return (decide_ctx){
        .dp = &l->dp, .wp = &l->wp, .cooldown_ms = l->cfg.cooldown_s * 1000,
        .window_s = l->cfg.window_s, .alerts_maxlen = (size_t)l->cfg.alerts_maxlen,
        .st = l->st, .pub = l->pub, .stats = &l->stats,
    };
}

/* ---- a batch's way through ------------------------------------------------ */

/* The wait after one more failure: doubling, from BACKOFF_MIN_MS to
 * BACKOFF_MAX_MS. */
static int64_t backoff_grow(int64_t ms) {
    ms = ms ? ms * 2 : BACKOFF_MIN_MS;
    return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

static inhand *q_at(loop *l, size_t i) { return &l->q[(l->q_head + i) % COMMITTER_DEPTH]; }

static size_t pending_events(loop *l) {
    size_t n = l->b.n_items;
    for (size_t i = 0; i < l->q_n; i++)
        n += q_at(l, i)->b.n_items;
    return n;
}

/* Take q's entry i out, the oldest or the newest: entries never move, for
 * the committer holds pointers into them. The slot keeps its batch's
 * buffers, for reuse. */
static void q_remove(loop *l, size_t i) {
    if (i == 0)
        l->q_head = (l->q_head + 1) % COMMITTER_DEPTH;
    l->q_n--;
}

static void start_commit(loop *l, inhand *h) {
    commit_params p = commit_params_now(l);
    char id[48];
    snprintf(id, sizeof id, "%s:%llu", l->instance, (unsigned long long)h->seq);
    committer_start(l->com, &h->b, &p, id, h->events_form, &h->res);
    h->at_committer = true;
}

/* b has events and q has room for it. */
static bool b_fits_q(const loop *l) { return l->b.n_units && l->q_n < COMMITTER_DEPTH; }

/* When b may go to q: at once if nothing is in hand (as Nagle's rule: a
 * producer waiting for its ack is not kept waiting) or b is full; else
 * commit_interval_ms after the batch before it. Under load the interval
 * sets the commits' size, and a creator's fixed cost in Redis (its state
 * written and logged) is shared by more of its events. */
static int64_t enqueue_due_ms(const loop *l) {
    if (!l->q_n || l->b.n_items >= (size_t)l->cfg.iteration_max_events)
        return 0;
    return l->last_enqueue_ms + l->cfg.commit_interval_ms;
}

/* b goes to q when there is room and it is due (force: whenever there is
 * room): it is committed behind what is there. */
static void enqueue(loop *l, bool force) {
    if (!b_fits_q(l))
        return;
    int64_t now = mono_ms();
    if (!force && now < enqueue_due_ms(l))
        return;
    l->last_enqueue_ms = now;
    inhand *h = q_at(l, l->q_n++);
    batch t = h->b;
    h->b = l->b, l->b = t;
    h->seq = l->commit_seq++;
    h->at_committer = h->events_form = false;
    account_batch(l, &h->b);
}

/* Hand the committer what q holds and it does not, in order: nothing goes
 * to it ahead of a batch still there. A retry waits for its backoff (force:
 * not). */
static void dispatch(loop *l, bool force) {
    enqueue(l, force);
    for (size_t i = 0; i < l->q_n; i++) {
        inhand *h = q_at(l, i);
        if (h->at_committer)
            continue;
        for (size_t k = i + 1; k < l->q_n; k++)
            if (q_at(l, k)->at_committer)
                return; /* a later batch is still there: wait for it */
        if (!force && mono_ms() < l->next_commit_ms)
            return;
        start_commit(l, h);
    }
}

/* Redis is down or broken: the other connection, idle perhaps, is as stale;
 * dropping it makes health checks say so and reconnect() reopen it. */
static void commit_failed(loop *l) {
    l->stats.redis_errors++;
    store_disconnect(l->st);
    l->commit_backoff_ms = backoff_grow(l->commit_backoff_ms);
    l->next_commit_ms = mono_ms() + l->commit_backoff_ms;
}

static void reconnect_now(loop *l);

/* How long the commit's oldest event waited in the daemon, read to reply:
 * the daemon's share of an alert's latency. received_ms is wall clock, so a
 * clock stepped back reads as no wait rather than a negative one. */
static double commit_lag_s(const batch *b) {
    int64_t lag = wall_ms() - b->received_ms;
    return lag > 0 ? (double)lag / 1000.0 : 0;
}

/* q's entry i is committed: count, detect, post, ack, and let it go. The
 * commit just worked, so the post's connection is reopened now if it was
 * lost. */
static void commit_done(loop *l, size_t i, int64_t took_us) {
    inhand *h = q_at(l, i);
    l->commit_backoff_ms = 0;
    histogram_observe(&l->stats.redis_seconds, (double)took_us / 1e6);
    histogram_observe(&l->stats.commit_events, (double)h->b.n_items);
    histogram_observe(&l->stats.commit_lag_seconds, commit_lag_s(&h->b));
    l->stats.commits++;
    l->stats.hints_sent += h->res.hints_sent;
    l->stats.hints_taken += h->res.hints_taken;
    l->stats.dedup_filtered_commits += h->res.dedup_filtered;
    l->stats.dedup_filter_bytes = h->res.dedup_filter_bytes;
    account_results(l, h);
    reconnect_now(l);
    decide_ctx d = decide_context(l);
    decide_and_post(&d, &h->res);
    ingest_ack(l->in, &h->b, &h->res);
    commit_result_clear(&h->res);
    ingest_release(&h->b);
    q_remove(l, i);
}

/* The committer's oldest job is q's first entry at the committer. */
static size_t q_oldest_sent(loop *l) {
    size_t i = 0;
    while (i < l->q_n && !q_at(l, i)->at_committer)
        i++;
    return i;
}

/* Take the committer's outcomes, in order (with wait, wait for the first).
 * Returns the first one's result, or -EAGAIN when there is none. A batch
 * not committed stays in q: after a failure with a backoff; declined or
 * after another's failure (-ESTALE), at once. */
static int collect(loop *l, bool wait) {
    int rc, first = -EAGAIN;
    int64_t took_us;
    while (committer_finish(l->com, wait, &rc, &took_us)) {
        size_t i = q_oldest_sent(l);
        q_at(l, i)->at_committer = false;
        if (first == -EAGAIN)
            first = rc;
        wait = false;
        if (rc == 0)
            commit_done(l, i, took_us);
        else if (rc == -EAGAIN)
            q_at(l, i)->events_form = true;
        else if (rc != -ESTALE)
            commit_failed(l);
    }
    l->stats.state_cache_bytes = committer_cache_bytes(l->com);
    return first;
}

static bool want_input(const loop *l) {
    return !l->stopping && l->b.n_items < (size_t)l->cfg.iteration_max_events;
}

static void take_input(loop *l) {
    if (!want_input(l))
        return;
    int64_t now = wall_ms();
    if (!l->b.n_units)
        l->b.received_ms = now;
    int rc = ingest_read(l->in, l->dec, l->st, &l->b, (size_t)l->cfg.iteration_max_events, now,
                         &l->stats.bad_envelopes);
    if (rc < 0)
        log_error("ingest: read failed: %s", strerror(-rc));
}

/* ---- Redis reconnects -------------------------------------------------------- */

static void reconnect_if(loop *l, bool due) {
    if (store_connected(l->st) || !due)
        return;
    if (store_connect(l->st) == 0) {
        log_notice("redis: reconnected");
        l->backoff_ms = 0;
        return;
    }
    l->backoff_ms = backoff_grow(l->backoff_ms);
    l->next_connect_ms = mono_ms() + l->backoff_ms;
}

static void reconnect(loop *l) { reconnect_if(l, mono_ms() >= l->next_connect_ms); }
static void reconnect_now(loop *l) { reconnect_if(l, true); }

/* ---- control ---------------------------------------------------------------- */

static void query_creator(loop *l, const control_request *q) {
    creator_summary c;
    bool found = false;
    if (store_creator(l->st, q->creator, l->wp.recent, &c, &found) < 0) {
        control_reply_error(&l->sbuf, "unavailable");
        return;
    }
    if (!found) {
        control_reply_error(&l->sbuf, "unknown_creator");
        return;
    }
    decide_ctx d = decide_context(l);
    detect_result r;
    decide_evaluate(&d, &c, &r);
    control_reply_creator(&l->sbuf, &c, &r);
    creator_summary_clear(&c);
}

static void query_top(loop *l, const control_request *q) {
    top_entry *e = NULL;
    size_t n = 0;
    if (store_top(l->st, q->has_niche ? q->niche : NULL, q->n, l->cfg.board_stale_s * 1000, &e,
                  &n) < 0) {
        control_reply_error(&l->sbuf, "unavailable");
        return;
    }
    control_reply_top(&l->sbuf, q->has_niche ? q->niche : NULL, e, n);
    top_entries_free(e, n);
}

/* The stats that are states, not counts: read when asked for. */
static void refresh_gauges(loop *l) {
    l->stats.redis_up = store_connected(l->st);
    l->stats.pending_events = pending_events(l);
    l->stats.deadletter_queue = store_deadletter_queued(l->st);
    l->stats.curve_refused = security_refused(l->sec);
}

static void answer(loop *l, const void *body, size_t len) {
    control_request q;
    const char *err = control_parse(body, len, &q);
    if (err)
        control_reply_error(&l->sbuf, err);
    else if (q.op == CONTROL_PING)
        control_reply_pong(&l->sbuf, NOUSU_VERSION);
    else if (q.op == CONTROL_STATS) {
        refresh_gauges(l);
        control_reply_stats(&l->sbuf, &l->stats, wall_ms());
    }
    else if (!store_connected(l->st))
        control_reply_error(&l->sbuf, "unavailable");
    else if (q.op == CONTROL_CREATOR)
        query_creator(l, &q);
    else
        query_top(l, &q);
    control_reply(l->ctl, &l->sbuf);
}

static void serve_control(loop *l) {
    const void *body;
    size_t len;
    for (int i = 0; i < CONTROL_PER_ITERATION && control_recv(l->ctl, &body, &len) > 0; i++)
        answer(l, body, len);
}

/* ---- signals ------------------------------------------------------------------ */

static void reload_config(loop *l);

static void reload(loop *l) {
    notify_reloading();
    reload_config(l);
    notify_ready();
}

static void reload_config(loop *l) {
    config next;
    char err[512], changed[512];
    if (reload_read(&l->cfg, l->argc, l->argv, &next, err, sizeof err, changed,
                    sizeof changed) < 0) {
        log_error("reload: %s; keeping the running configuration", err);
        return;
    }
    config_free(&l->cfg);
    l->cfg = next;
    derive(l);
    decode_limits lim = {(size_t)l->cfg.max_frame_bytes, (size_t)l->cfg.max_batch_events,
                         l->cfg.future_s * 1000};
    decoder_set_limits(l->dec, &lim);
    log_notice("reload: configuration reloaded (changed: %s)", changed[0] ? changed : "nothing");
}

static void handle_signals(loop *l) {
    struct signalfd_siginfo si;
    while (read(l->sigfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            reload(l);
        } else if (!l->stopping) {
            log_notice("signal %u: stopping intake, committing what was taken", si.ssi_signo);
            notify_stopping();
            l->stopping = true;
        }
    }
}

/* ---- cron: metrics, status, watchdog ------------------------------------------ */

static void publish_metrics(loop *l) {
    refresh_gauges(l);
    char *text = NULL;
    if (metrics_render(&l->stats, (double)l->stats.started_ms / 1000.0, NOUSU_VERSION, &text) >= 0)
        metrics_publish(l->metrics, text, l->stats.redis_up, mono_ms());
}

static void send_status(loop *l, int64_t now) {
    char status[256];
    double secs = (double)(now - l->next_status_ms + STATUS_MS) / 1000.0;
    double rate = secs > 0 ? (double)(l->stats.events_accepted - l->status_accepted) / secs : 0;
    snprintf(status, sizeof status,
             "%.0f events/s; %llu accepted, %llu rejected, %llu duplicate; %llu alerts; redis %s",
             rate, (unsigned long long)l->stats.events_accepted,
             (unsigned long long)l->stats.events_rejected,
             (unsigned long long)l->stats.events_duplicate,
             (unsigned long long)l->stats.alerts_published,
             store_connected(l->st) ? "up" : "DOWN");
    notify_status(status);
    l->status_accepted = l->stats.events_accepted;
    l->next_status_ms = now + STATUS_MS;
}

/* Runs every CRON_MS from the loop: a loop that stops iterating stops the
 * watchdog pings, and systemd restarts it. */
static void cron(loop *l) {
    int64_t now = mono_ms();
    if (now < l->next_cron_ms)
        return;
    l->next_cron_ms = now + CRON_MS;
    notify_watchdog();
    if (l->metrics)
        publish_metrics(l);
    if (now >= l->next_status_ms)
        send_status(l, now);
}

/* ---- the loop --------------------------------------------------------------- */

static long wait_until(int64_t due_ms) {
    int64_t wait = due_ms - mono_ms();
    return wait < 0 ? 0 : wait < CRON_MS ? wait : CRON_MS;
}

static long poll_timeout(loop *l) {
    long t = CRON_MS;
    if (l->q_n > committer_jobs(l->com)) /* a retry is due */
        t = wait_until(l->next_commit_ms);
    if (b_fits_q(l)) { /* b goes to q when due */
        long tb = wait_until(enqueue_due_ms(l));
        t = tb < t ? tb : t;
    }
    return t;
}

static int poll_once(loop *l) {
    zmq_pollitem_t items[5];
    int n = 0;
    bool reading = want_input(l);
    if (reading && ingest_pull_socket(l->in))
        items[n++] = (zmq_pollitem_t){ingest_pull_socket(l->in), 0, ZMQ_POLLIN, 0};
    if (reading && ingest_ack_socket(l->in))
        items[n++] = (zmq_pollitem_t){ingest_ack_socket(l->in), 0, ZMQ_POLLIN, 0};
    if (control_socket(l->ctl))
        items[n++] = (zmq_pollitem_t){control_socket(l->ctl), 0, ZMQ_POLLIN, 0};
    items[n++] = (zmq_pollitem_t){NULL, committer_fd(l->com), ZMQ_POLLIN, 0};
    items[n++] = (zmq_pollitem_t){NULL, l->sigfd, ZMQ_POLLIN, 0};
    int rc = zmq_poll(items, n, poll_timeout(l));
    return rc < 0 && zmq_errno() != EINTR ? -zmq_errno() : 0;
}

/* After SIGTERM: commit both batches in hand, retrying Redis for a grace
 * period. */
static int drain(loop *l) {
    int64_t deadline = mono_ms() + SHUTDOWN_GRACE_MS;
    collect(l, true);
    while ((l->q_n || l->b.n_units) && mono_ms() < deadline) {
        dispatch(l, true);
        int rc = collect(l, true);
        if (rc < 0 && rc != -ESTALE)
            usleep(50 * 1000);
    }
    size_t left = pending_events(l);
    if (l->q_n || l->b.n_units) {
        log_error("shutdown: Redis unreachable; %zu events taken in were not committed", left);
        return 1;
    }
    log_notice("shutdown: everything taken in is committed (%llu events accepted)",
               (unsigned long long)l->stats.events_accepted);
    return 0;
}

int loop_run(loop *l) {
    log_notice("nousud %s ready", NOUSU_VERSION);
    l->next_status_ms = mono_ms() + STATUS_MS;
    cron(l);
    notify_ready();
    while (!l->stopping) {
        if (poll_once(l) < 0)
            break;
        handle_signals(l);
        serve_control(l);
        reconnect(l);
        collect(l, false);
        take_input(l);
        dispatch(l, false);
        if (!l->q_n && store_connected(l->st) &&
            store_flush(l->st) < 0)
            l->stats.redis_errors++;
        cron(l);
    }
    return drain(l);
}
