/* decide.c -- after a commit: the SPEC §5 rules on every checkpoint and
 * creator the commit reported, then one round trip for their consequences
 * (board updates, alerts with their cooldowns and seq), then PUB. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "decide.h"
#include "log.h"


typedef struct verdict {
    creator_summary *c;
    detect_result r;
} verdict;

static void evaluate(const decide_ctx *d, verdict *v) {
    v->c->w.days_hist = window_days_hist(d->wp, v->c->w.now_ms, v->c->w.first_ms);
    detect_eval(d->dp, &v->c->w, &v->r);
}

static bool wants_uniques(const verdict *v) {
    if (v->c->w.unique_engagers >= 0)
        return false;
    if (v->r.needs_uniques || v->r.on_board)
        return true;
    for (int k = 0; k < ALERT__COUNT; k++)
        if (v->r.fired[k])
            return true;
    return false;
}

/* Fetch unique engagers where a verdict depends on them, and re-evaluate. */
static int resolve_uniques(const decide_ctx *d, verdict *v, size_t n) {
    creator_summary **need = calloc(n ? n : 1, sizeof *need);
    int64_t *uniq = calloc(n ? n : 1, sizeof *uniq);
    size_t m = 0;
    int rc = -ENOMEM;
    if (!need || !uniq)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (wants_uniques(&v[i]))
            need[m++] = v[i].c;
    rc = m ? store_uniques(d->st, d->wp->recent, need, m, uniq) : 0;
    if (rc < 0)
        goto out;
    for (size_t i = 0, j = 0; i < n && j < m; i++)
        if (v[i].c == need[j]) {
            v[i].c->w.unique_engagers = uniq[j++];
            evaluate(d, &v[i]);
        }
out:
    free(need);
    free(uniq);
    return rc;
}

static bool in_cooldown(const decide_ctx *d, const creator_summary *c, alert_kind k) {
    int64_t last = c->cooldown[k];
    return last && llabs(c->w.now_ms - last) < d->cooldown_ms;
}

typedef struct post_work {
    board_update *boards;
    size_t n_boards;
    alert_request *alerts;
    size_t n_alerts;
    char (*topics)[ALERT_TOPIC_MAX];
} post_work;

static void plan_board(const verdict *v, post_work *w) {
    const creator_summary *c = v->c;
    bool on = v->r.on_board || (c->board_niche && !v->r.board_drop);
    if (!on && !c->board_niche)
        return;
    w->boards[w->n_boards++] = (board_update){c->creator, c->niche, on, v->r.z, v->r.velocity};
}

static int plan_alert(const decide_ctx *d, const verdict *v, alert_kind k, post_work *w) {
    char reasons[4][DETECT_REASON_LEN];
    size_t nr = detect_reasons(d->dp, &v->c->w, &v->r, k, reasons, 4);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    alert_encode_head(&sb, k, v->c, &v->r, reasons, nr, wall_ms(), d->window_s);
    size_t head_len = sb.size;
    char *head = msgpack_sbuffer_release(&sb); /* owned by the request now */
    if (!head)
        return -ENOMEM;
    char *topic = w->topics[w->n_alerts];
    alert_topic(k, v->c->niche, topic);
    w->alerts[w->n_alerts++] = (alert_request){
        .creator = v->c->creator, .kind = k, .ts = v->c->w.now_ms,
        .cooldown_ms = d->cooldown_ms,
        .grad_base = k == ALERT_GRADUATED ? v->c->w.below_ts : 0, .topic = topic,
        .head = head, .head_len = head_len, .tail = "", .tail_len = 0,
    };
    return 0;
}

/* An alert of this kind for this creator is already planned by this commit
 * within the cooldown (the stored cooldowns predate the commit). */
static bool planned(const decide_ctx *d, const post_work *w, const creator_summary *c,
                    alert_kind k) {
    for (size_t i = 0; i < w->n_alerts; i++)
        if (w->alerts[i].kind == k && strcmp(w->alerts[i].creator, c->creator) == 0 &&
            llabs(w->alerts[i].ts - c->w.now_ms) < d->cooldown_ms)
            return true;
    return false;
}

static int plan_alerts(const decide_ctx *d, const verdict *v, post_work *w) {
    for (int k = 0; k < ALERT__COUNT; k++)
        if (v->r.fired[k] && !in_cooldown(d, v->c, (alert_kind)k) &&
            !planned(d, w, v->c, (alert_kind)k) && plan_alert(d, v, (alert_kind)k, w) < 0)
            return -ENOMEM;
    return 0;
}

/* Checkpoints first: an alert carries the state right after the event where
 * its rule first held. The state after the commit then updates the
 * leaderboard, and catches any rule the checkpoints did not see. */
static int plan(const decide_ctx *d, const verdict *v, size_t n_checkpoints, size_t n, post_work *w) {
    for (size_t i = 0; i < n_checkpoints + n; i++) {
        if (i >= n_checkpoints)
            plan_board(&v[i], w);
        if (plan_alerts(d, &v[i], w) < 0)
            return -ENOMEM;
    }
    return 0;
}

static void publish(const decide_ctx *d, post_work *w) {
    for (size_t i = 0; i < w->n_alerts; i++) {
        alert_request *a = &w->alerts[i];
        if (!a->seq)
            continue; /* another daemon alerted first: cooldown */
        d->stats->alerts[a->kind]++;
        d->stats->alerts_published++;
        log_info("alert %llu %s %s", (unsigned long long)a->seq, a->topic, a->creator);
        if (alert_publish(d->pub, a->topic, a->msg, a->msg_len) < 0)
            log_warning("alerts: publish of seq %llu failed, subscribers catch up from the stream",
                        (unsigned long long)a->seq);
    }
}

static void post_work_free(post_work *w) {
    for (size_t i = 0; i < w->n_alerts; i++) {
        free((char *)w->alerts[i].head);
        free(w->alerts[i].msg);
    }
    free(w->boards);
    free(w->alerts);
    free(w->topics);
}

/* Detection over every creator the commit touched, then one round trip for
 * its consequences, then PUB. Failures here lose no event: the commit is
 * done; a missed alert fires on the creator's next event. */
void decide_and_post(const decide_ctx *d, commit_result *res) {
    size_t nc = res->n_checkpoints, n = res->n_creators, all = nc + n;
    verdict *v = calloc(all ? all : 1, sizeof *v);
    post_work w = {
        .boards = calloc(n ? n : 1, sizeof *w.boards),
        .alerts = calloc(all * ALERT__COUNT + 1, sizeof *w.alerts),
        .topics = calloc(all * ALERT__COUNT + 1, sizeof *w.topics),
    };
    if (!v || !w.boards || !w.alerts || !w.topics)
        goto out;
    for (size_t i = 0; i < all; i++) {
        v[i].c = i < nc ? &res->checkpoints[i] : &res->creators[i - nc];
        evaluate(d, &v[i]);
        if (i < nc)
            log_debug("checkpoint %s ts %lld: rising %d suspicious %d graduated %d",
                      v[i].c->creator, (long long)v[i].c->w.now_ms, v[i].r.fired[0],
                      v[i].r.fired[1], v[i].r.fired[2]);
    }
    if (resolve_uniques(d, v, all) < 0 || plan(d, v, nc, n, &w) < 0)
        goto out;
    int64_t t0 = mono_us();
    if (store_post(d->st, w.boards, w.n_boards, w.alerts, w.n_alerts,
                   d->alerts_maxlen) < 0) {
        d->stats->redis_errors++;
        goto out;
    }
    if (w.n_boards || w.n_alerts)
        histogram_observe(&d->stats->redis_seconds, (double)(mono_us() - t0) / 1e6);
    publish(d, &w);
out:
    post_work_free(&w);
    free(v);
}

void decide_evaluate(const decide_ctx *d, creator_summary *c, detect_result *ret) {
    verdict v = {.c = c};
    evaluate(d, &v);
    *ret = v.r;
}
