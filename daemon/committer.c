/* committer.c -- a worker thread sending commits and reading their replies,
 * up to COMMITTER_DEPTH at a time (see committer.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "committer.h"
#include "log.h"
#include "statecache.h"

/* Wait for the replies before a commit when more than 1 in this many of its
 * runs would go unhinted for want of them. */
#define BLIND_WAIT_SHARE 16

typedef enum job_phase { JOB_QUEUED, JOB_SENT, JOB_DONE } job_phase;

typedef struct job {
    const batch *b;
    commit_params p;
    char id[64];
    bool events_form;
    commit_result *res;
    job_phase phase;
    bool stale; /* one before it failed: so does it, as -ESTALE */
    int rc;
    int64_t t0, took_us;
} job;

struct committer {
    store *st;
    state_cache *cache; /* the thread's alone */
    int timeout_ms;
    pthread_t thread;
    int efd;  /* to the loop: a job is done */
    int wake; /* to the thread: a job was queued, or quit */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu; n and the jobs' inputs change only on the loop's thread */
    job jobs[COMMITTER_DEPTH]; /* oldest first, from head */
    size_t head, n;
    bool quit;
    size_t cache_bytes;
};

static job *job_at(committer *c, size_t i) { return &c->jobs[(c->head + i) % COMMITTER_DEPTH]; }

static void signal_fd(int fd) {
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof one);
}

static void drain_fd(int fd) {
    uint64_t n;
    (void)!read(fd, &n, sizeof n);
}

/* ---- the thread --------------------------------------------------------------- */

/* j is finished. A failure fails every job after it (they were sent naming
 * it, or must not be sent before it), and empties the cache: its entries
 * may hold states of commits that were not applied. */
static void complete(committer *c, job *j, int rc) {
    if (rc < 0)
        state_cache_clear(c->cache);
    pthread_mutex_lock(&c->mu);
    j->rc = rc < 0 && j->stale ? -ESTALE : rc;
    j->took_us = mono_us() - j->t0;
    j->phase = JOB_DONE;
    bool after = false;
    for (size_t i = 0; i < c->n; i++) {
        job *k = job_at(c, i);
        if (after)
            k->stale = k->stale || rc < 0;
        after = after || k == j;
    }
    c->cache_bytes = state_cache_bytes(c->cache);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    signal_fd(c->efd);
}

/* Under mu: the oldest job in phase ph, and the one before it. */
static job *find_job(committer *c, job_phase ph, job **ret_prev) {
    for (size_t i = 0; i < c->n; i++)
        if (job_at(c, i)->phase == ph) {
            *ret_prev = i ? job_at(c, i - 1) : NULL;
            return job_at(c, i);
        }
    return NULL;
}

/* The connection is gone: every commit sent on it is lost. */
static void fail_sent(committer *c, int rc) {
    for (;;) {
        job *prev, *j;
        pthread_mutex_lock(&c->mu);
        j = find_job(c, JOB_SENT, &prev);
        pthread_mutex_unlock(&c->mu);
        if (!j)
            return;
        complete(c, j, rc);
    }
}

static void await_reply(committer *c, job *j);

/* Wait for the commits sent before j when too many of j's runs would lose
 * their hints for want of those replies (blind creators, statecache.h): it
 * happens after a cold start, or when many hints were not taken, and would
 * otherwise last as long as those creators are in every commit. */
static void wait_if_blind(committer *c, job *j) {
    size_t runs = 0;
    int blind = store_commit_blind(c->st, j->b, &j->p, c->cache, &runs);
    if (blind <= 0 || (size_t)blind * BLIND_WAIT_SHARE <= runs)
        return;
    for (;;) {
        job *prev, *sent;
        pthread_mutex_lock(&c->mu);
        sent = find_job(c, JOB_SENT, &prev);
        pthread_mutex_unlock(&c->mu);
        if (!sent)
            return;
        await_reply(c, sent);
    }
}

/* Reconnect here, not in the loop: connecting may take redis_timeout_ms.
 * after: the id of the commit sent before j and still unanswered, or NULL. */
static void send_job(committer *c, job *j, const char *after) {
    if (after) {
        wait_if_blind(c, j);
        after = store_commits_sent(c->st) ? after : NULL;
    }
    if (j->stale) {
        complete(c, j, -ESTALE);
        return;
    }
    j->t0 = mono_us();
    if (!store_connected(c->st) && store_connect(c->st) < 0) {
        complete(c, j, -EIO);
        return;
    }
    int rc = store_commit_send(c->st, j->b, &j->p, j->id, after, j->events_form, c->cache);
    if (rc < 0) {
        if (!store_connected(c->st))
            fail_sent(c, -EIO);
        complete(c, j, rc);
        return;
    }
    pthread_mutex_lock(&c->mu);
    j->phase = JOB_SENT;
    pthread_mutex_unlock(&c->mu);
}

static void recv_job(committer *c, job *j) {
    int rc = store_commit_recv(c->st, c->cache, j->res);
    complete(c, j, rc);
    if (!store_connected(c->st))
        fail_sent(c, -EIO);
}

/* Wait for the oldest sent job's reply, or for a job to send meanwhile. */
static void await_reply(committer *c, job *j) {
    int rc = store_commit_poll(c->st, false); /* a reply read with the last */
    if (rc == 0) {
        struct pollfd fds[2] = {{.fd = store_fd(c->st), .events = POLLIN},
                                {.fd = c->wake, .events = POLLIN}};
        int n = poll(fds, 2, c->timeout_ms);
        if (n < 0)
            return; /* EINTR: look again */
        if (fds[1].revents)
            drain_fd(c->wake);
        if (fds[0].revents)
            rc = store_commit_poll(c->st, true);
        else if (n == 0) {
            log_error("redis: no reply to a commit in %d ms; reconnecting", c->timeout_ms);
            store_disconnect(c->st);
            rc = -EIO;
        }
    }
    if (rc == 1)
        recv_job(c, j);
    else if (rc < 0)
        fail_sent(c, -EIO);
}

/* One step: send the oldest queued job, else wait for the oldest sent one,
 * else for work. Returns false on quit. */
static bool step(committer *c) {
    job *prev, *sent_prev;
    char after[sizeof c->jobs[0].id] = "";
    pthread_mutex_lock(&c->mu);
    bool quit = c->quit && c->n == 0;
    job *queued = find_job(c, JOB_QUEUED, &prev);
    /* copied under the lock: once done, the loop may reuse prev's slot */
    if (queued && prev && prev->phase == JOB_SENT)
        memcpy(after, prev->id, sizeof after);
    job *sent = find_job(c, JOB_SENT, &sent_prev);
    pthread_mutex_unlock(&c->mu);
    if (quit)
        return false;
    if (queued)
        send_job(c, queued, after[0] ? after : NULL);
    else if (sent)
        await_reply(c, sent);
    else {
        struct pollfd fd = {.fd = c->wake, .events = POLLIN};
        if (poll(&fd, 1, -1) > 0)
            drain_fd(c->wake);
    }
    return true;
}

static void *thread_main(void *arg) {
    committer *c = arg;
    while (step(c))
        ;
    return NULL;
}

/* ---- the loop's side ------------------------------------------------------------ */

committer *committer_new(store *st, size_t cache_bytes, int timeout_ms) {
    committer *c = calloc(1, sizeof *c);
    if (!c) {
        store_destroy(&st);
        return NULL;
    }
    c->st = st, c->timeout_ms = timeout_ms;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->cache = state_cache_new(cache_bytes);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (c->efd < 0 || c->wake < 0 || !c->cache ||
        pthread_create(&c->thread, NULL, thread_main, c) != 0) {
        if (c->efd >= 0)
            close(c->efd);
        if (c->wake >= 0)
            close(c->wake);
        state_cache_destroy(&c->cache);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        store_destroy(&c->st);
        free(c);
        return NULL;
    }
    return c;
}

void committer_destroy(committer **cp) {
    committer *c = cp ? *cp : NULL;
    if (!c)
        return;
    int rc;
    int64_t took;
    while (c->n)
        committer_finish(c, true, &rc, &took);
    pthread_mutex_lock(&c->mu);
    c->quit = true;
    pthread_mutex_unlock(&c->mu);
    signal_fd(c->wake);
    pthread_join(c->thread, NULL);
    close(c->efd);
    close(c->wake);
    state_cache_destroy(&c->cache);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    store_destroy(&c->st);
    free(c);
    *cp = NULL;
}

int committer_fd(const committer *c) { return c->efd; }
size_t committer_jobs(const committer *c) { return c->n; }

void committer_start(committer *c, const batch *b, const commit_params *p, const char *commit_id,
                     bool events_form, commit_result *res) {
    pthread_mutex_lock(&c->mu);
    job *j = &c->jobs[(c->head + c->n) % COMMITTER_DEPTH];
    *j = (job){.b = b, .p = *p, .events_form = events_form, .res = res, .phase = JOB_QUEUED};
    snprintf(j->id, sizeof j->id, "%s", commit_id);
    c->n++;
    pthread_mutex_unlock(&c->mu);
    signal_fd(c->wake);
}

bool committer_finish(committer *c, bool wait, int *rc, int64_t *took_us) {
    if (!c->n)
        return false;
    pthread_mutex_lock(&c->mu);
    job *j = job_at(c, 0);
    while (wait && j->phase != JOB_DONE)
        pthread_cond_wait(&c->cv, &c->mu);
    bool done = j->phase == JOB_DONE;
    if (done) {
        drain_fd(c->efd);
        *rc = j->rc, *took_us = j->took_us;
        c->head = (c->head + 1) % COMMITTER_DEPTH, c->n--;
    }
    pthread_mutex_unlock(&c->mu);
    return done;
}

size_t committer_cache_bytes(const committer *c) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&c->mu; /* a read under the lock */
    pthread_mutex_lock(mu);
    size_t n = c->cache_bytes;
    pthread_mutex_unlock(mu);
    return n;
}
