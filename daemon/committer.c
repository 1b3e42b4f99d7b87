/* committer.c -- a worker thread running store_commit (see committer.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "committer.h"

struct committer {
    store *st;
    pthread_t thread;
    int efd; /* written by the thread when a commit has finished */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* the job, under mu */
    const batch *b;
    commit_params p;
    char id[64];
    commit_result *res;
    bool queued, busy, done, quit;
    int rc;
    int64_t took_us;
};

/* Reconnect here, not in the loop: connecting may take redis_timeout_ms. */
static int run_job(committer *c) {
    if (!store_connected(c->st) && store_connect(c->st) < 0)
        return -EIO;
    return store_commit(c->st, c->b, &c->p, c->id, c->res);
}

static void *thread_main(void *arg) {
    committer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->queued && !c->quit)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->quit)
            break;
        c->queued = false;
        pthread_mutex_unlock(&c->mu);
        int64_t t0 = mono_us();
        int rc = run_job(c);
        int64_t took = mono_us() - t0;
        pthread_mutex_lock(&c->mu);
        c->rc = rc, c->took_us = took, c->done = true;
        pthread_cond_broadcast(&c->cv);
        uint64_t one = 1;
        (void)!write(c->efd, &one, sizeof one);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

committer *committer_new(store *st) {
    committer *c = calloc(1, sizeof *c);
    if (!c) {
        store_destroy(&st);
        return NULL;
    }
    c->st = st;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (c->efd < 0 || pthread_create(&c->thread, NULL, thread_main, c) != 0) {
        if (c->efd >= 0)
            close(c->efd);
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
    if (c->busy)
        committer_finish(c, true, &rc, &took);
    pthread_mutex_lock(&c->mu);
    c->quit = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    close(c->efd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    store_destroy(&c->st);
    free(c);
    *cp = NULL;
}

int committer_fd(const committer *c) { return c->efd; }
bool committer_busy(const committer *c) { return c->busy; }

void committer_start(committer *c, const batch *b, const commit_params *p, const char *commit_id,
                     commit_result *res) {
    pthread_mutex_lock(&c->mu);
    c->b = b, c->p = *p, c->res = res;
    snprintf(c->id, sizeof c->id, "%s", commit_id);
    c->queued = true, c->done = false, c->busy = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

bool committer_finish(committer *c, bool wait, int *rc, int64_t *took_us) {
    if (!c->busy)
        return false;
    pthread_mutex_lock(&c->mu);
    while (wait && !c->done)
        pthread_cond_wait(&c->cv, &c->mu);
    bool done = c->done;
    if (done) {
        uint64_t n;
        (void)!read(c->efd, &n, sizeof n);
        *rc = c->rc, *took_us = c->took_us;
        c->done = c->busy = false;
    }
    pthread_mutex_unlock(&c->mu);
    return done;
}
