/* catchup.c -- the alerts a subscriber missed, from the Redis stream
 * <prefix>alerts (SPEC §6). The only file of the library that includes
 * hiredis.h.
 *
 * The daemon XADDs each alert with the explicit entry id <seq>-0 before it
 * publishes it, so "every alert after seq" is XRANGE from <seq>-1 (the
 * smallest id above <seq>-0; unlike an exclusive "(" start this also works
 * on Redis before 6.2), paged by COUNT. A subscriber that subscribes first
 * and then catches up misses nothing; it may see an alert twice (stream and
 * live), which is why alerts carry seq. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "internal.h"

#define PAGE 1000
#define PASSWORD_MAX 4096

static int read_password(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int r = fgets(buf, (int)cap, f) ? 0 : -EINVAL;
    fclose(f);
    if (r == 0)
        buf[strcspn(buf, "\r\n")] = '\0';
    return r;
}

/* AUTH from the password file, else NOUSU_REDIS_PASSWORD; user from the
 * options, else NOUSU_REDIS_USER. Never from argv: see nousu.h. */
static int redis_auth(redisContext *c, const nousu_redis_opts *o) {
    char pass[PASSWORD_MAX];
    const char *user = o->user ? o->user : getenv("NOUSU_REDIS_USER");
    const char *env = getenv("NOUSU_REDIS_PASSWORD");
    pass[0] = '\0';
    if (o->password_file) {
        int r = read_password(o->password_file, pass, sizeof pass);
        if (r < 0)
            return r;
    } else if (env) {
        snprintf(pass, sizeof pass, "%s", env);
    }
    if (!pass[0])
        return 0;
    const char *argv[3] = {"AUTH", user, pass};
    int argc = 3;
    if (!user || !user[0]) {
        argv[1] = pass;
        argc = 2;
    }
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    explicit_bzero(pass, sizeof pass);
    int r = !rep ? -EIO : rep->type == REDIS_REPLY_ERROR ? -EACCES : 0;
    freeReplyObject(rep);
    return r;
}

static int redis_select(redisContext *c, int db) {
    if (db == 0)
        return 0;
    redisReply *rep = redisCommand(c, "SELECT %d", db);
    int r = !rep ? -EIO : rep->type == REDIS_REPLY_ERROR ? -EACCES : 0;
    freeReplyObject(rep);
    return r;
}

static int redis_open(const nousu_redis_opts *o, redisContext **ret) {
    int ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    const char *host = o->host ? o->host : "127.0.0.1";
    redisContext *c = host[0] == '/' ? redisConnectUnixWithTimeout(host, tv)
                                     : redisConnectWithTimeout(host, o->port ? o->port : 6379, tv);
    int r;
    if (!c)
        return -ENOMEM;
    if (c->err) {
        r = c->err == REDIS_ERR_IO && errno > 0 ? -errno : -ECONNREFUSED;
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        r = -EIO;
        goto fail;
    }
    if ((r = redis_auth(c, o)) < 0 || (r = redis_select(c, o->db)) < 0)
        goto fail;
    *ret = c;
    return 0;
fail:
    redisFree(c);
    return r;
}

static bool parse_id(const redisReply *rep, uint64_t *ret_ms, uint64_t *ret_seq) {
    char *end;
    if (rep->type != REDIS_REPLY_STRING)
        return false;
    errno = 0;
    *ret_ms = strtoull(rep->str, &end, 10);
    if (errno || end == rep->str || *end != '-')
        return false;
    const char *s = end + 1;
    *ret_seq = strtoull(s, &end, 10);
    return !errno && end != s && *end == '\0';
}

/* The string value of field name in a flat [k, v, k, v...] array, or NULL. */
static const redisReply *field_get(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
            return fields->element[i + 1]->type == REDIS_REPLY_STRING ? fields->element[i + 1]
                                                                      : NULL;
    }
    return NULL;
}

/* Decode one entry's fields into *a: 0 or -EBADMSG. */
static int entry_alert(const redisReply *fields, nousu_alert *a) {
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2)
        return -EBADMSG;
    const redisReply *msg = field_get(fields, "msg");
    const redisReply *topic = field_get(fields, "topic");
    if (!msg)
        return -EBADMSG;
    a->raw = msg->str;
    a->raw_len = msg->len;
    if (nousu_alert_decode(msg->str, msg->len, a) < 0)
        return -EBADMSG;
    if (topic && copy_text(a->topic, sizeof a->topic, topic->str, topic->len))
        return 0;
    /* Older or odd entries without a topic: rebuild it as the daemon does. */
    snprintf(a->topic, sizeof a->topic, "%s.%s", a->kind_name, a->niche[0] ? a->niche : "_");
    return 0;
}

/* Deliver one XRANGE entry; *ret_ms / *ret_seq get its id. Returns the
 * callback's value, or -EPROTO for an entry without a readable id. */
static int entry_deliver(const redisReply *e, nousu_alert_fn cb, void *ud, uint64_t *ret_ms,
                         uint64_t *ret_seq) {
    nousu_alert a;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        !parse_id(e->element[0], ret_ms, ret_seq))
        return -EPROTO;
    memset(&a, 0, sizeof a);
    a.followers = -1;
    int err = entry_alert(e->element[1], &a);
    if (err < 0) {
        const void *raw = a.raw;
        size_t raw_len = a.raw_len;
        memset(&a, 0, sizeof a);
        a.followers = -1;
        a.seq = *ret_ms;
        a.raw = raw;
        a.raw_len = raw_len;
    }
    return cb(err, &a, ud);
}

/* One XRANGE page from start; *ret_done when the stream ended. */
static int page_read(redisContext *c, const char *key, char *start, size_t start_cap,
                     nousu_alert_fn cb, void *ud, bool *ret_done) {
    redisReply *rep = redisCommand(c, "XRANGE %s %s + COUNT %d", key, start, PAGE);
    uint64_t ms = 0, sq = 0;
    int r = 0;
    if (!rep)
        return -EIO;
    if (rep->type != REDIS_REPLY_ARRAY) {
        r = -EPROTO;
        goto out;
    }
    for (size_t i = 0; i < rep->elements && r == 0; i++)
        r = entry_deliver(rep->element[i], cb, ud, &ms, &sq);
    *ret_done = rep->elements < PAGE;
    /* The next page starts right after the last id read. */
    if (sq == UINT64_MAX)
        snprintf(start, start_cap, "%" PRIu64 "-0", ms + 1);
    else
        snprintf(start, start_cap, "%" PRIu64 "-%" PRIu64, ms, sq + 1);
out:
    freeReplyObject(rep);
    return r;
}

int nousu_alerts_since(const nousu_redis_opts *opts, uint64_t seq, nousu_alert_fn cb,
                       void *userdata) {
    nousu_redis_opts o = opts ? *opts : (nousu_redis_opts){0};
    const char *prefix = o.key_prefix ? o.key_prefix : NOUSU_DEFAULT_KEY_PREFIX;
    char key[512], start[48];
    redisContext *c = NULL;
    bool done = false;
    int r;
    if (!cb || strlen(prefix) > sizeof key - sizeof "alerts")
        return -EINVAL;
    snprintf(key, sizeof key, "%salerts", prefix);
    snprintf(start, sizeof start, "%" PRIu64 "-1", seq);
    if ((r = redis_open(&o, &c)) < 0)
        return r;
    while (!done && r == 0)
        r = page_read(c, key, start, sizeof start, cb, userdata, &done);
    redisFree(c);
    return r;
}
