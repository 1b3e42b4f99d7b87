/* subscriber.c -- nousud's alerts PUB -> struct nousu_alert (SPEC §6).
 *
 * A message is two frames, [topic, msgpack map]. Anything else on the wire
 * (wrong frame count, oversized topic, a map that does not decode) is
 * consumed whole and reported as -EBADMSG, so one bad message never stalls
 * or desynchronises the stream. ZMQ_MAXMSGSIZE caps what ZeroMQ will even
 * buffer for us. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "internal.h"

struct nousu_subscriber {
    void *ctx;
    bool own_ctx;
    void *sock;
    zmq_msg_t topic, body; /* the last message; body backs alert->raw */
};

static int socket_open(nousu_subscriber *s, const char *endpoint, const char *prefix,
                       const nousu_subscriber_opts *o) {
    int hwm = o && o->rcvhwm > 0 ? o->rcvhwm : 100000;
    int linger = 0; /* a SUB socket has nothing worth waiting for */
    int64_t maxmsg = NOUSU_MAX_ALERT_BYTES + NOUSU_TOPIC_MAX;
    int r;
    s->sock = zmq_socket(s->ctx, ZMQ_SUB);
    if (!s->sock)
        return zerr();
    if (zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) < 0 ||
        zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
        zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0)
        return zerr();
    if ((r = zsock_curve(s->sock, o ? o->curve : NULL)) < 0)
        return r;
    /* Subscribe before connecting, so nothing published once the
     * connection is up can slip past the filter. */
    if ((r = nousu_subscriber_subscribe(s, prefix)) < 0)
        return r;
    if (zmq_connect(s->sock, endpoint) < 0)
        return zerr();
    return 0;
}

nousu_subscriber *nousu_subscriber_new_opts(const char *endpoint, const char *topic_prefix,
                                            const nousu_subscriber_opts *opts) {
    int r = -EINVAL;
    nousu_subscriber *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    zmq_msg_init(&s->topic);
    zmq_msg_init(&s->body);
    if (!endpoint)
        goto fail;
    r = -ENOMEM;
    s->ctx = opts ? opts->zmq_ctx : NULL;
    if (!s->ctx) {
        s->ctx = zmq_ctx_new();
        s->own_ctx = true;
        if (!s->ctx)
            goto fail;
    }
    if ((r = socket_open(s, endpoint, topic_prefix, opts)) < 0)
        goto fail;
    return s;
fail:
    nousu_subscriber_destroy(&s);
    errno = -r;
    return NULL;
}

nousu_subscriber *nousu_subscriber_new(const char *endpoint, const char *topic_prefix) {
    return nousu_subscriber_new_opts(endpoint, topic_prefix, NULL);
}

int nousu_subscriber_subscribe(nousu_subscriber *s, const char *topic_prefix) {
    if (!s)
        return -EINVAL;
    const char *t = topic_prefix ? topic_prefix : "";
    return zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, t, strlen(t)) < 0 ? zerr() : 0;
}

void *nousu_subscriber_socket(nousu_subscriber *s) {
    return s ? s->sock : NULL;
}

void nousu_subscriber_destroy(nousu_subscriber **ps) {
    if (!ps || !*ps)
        return;
    nousu_subscriber *s = *ps;
    zmq_msg_close(&s->topic);
    zmq_msg_close(&s->body);
    if (s->sock)
        zmq_close(s->sock);
    if (s->own_ctx && s->ctx)
        zmq_ctx_term(s->ctx);
    free(s);
    *ps = NULL;
}

/* Read every frame of the next message; keep the first two. Returns the
 * number of frames, or -errno. */
static int message_take(nousu_subscriber *s) {
    int frames = 0, more = 1;
    zmq_msg_t extra;
    zmq_msg_init(&extra);
    while (more) {
        zmq_msg_t *m = frames == 0 ? &s->topic : frames == 1 ? &s->body : &extra;
        if (zmq_msg_recv(m, s->sock, ZMQ_DONTWAIT) < 0) {
            int r = zerr();
            zmq_msg_close(&extra);
            return frames ? frames : r; /* parts of one message come together */
        }
        frames++;
        more = zmq_msg_more(m);
    }
    zmq_msg_close(&extra);
    return frames;
}

static int alert_from_message(nousu_subscriber *s, nousu_alert *ret) {
    size_t tlen = zmq_msg_size(&s->topic);
    nousu_alert a;
    if (tlen > NOUSU_TOPIC_MAX)
        return -EBADMSG;
    int r = nousu_alert_decode(zmq_msg_data(&s->body), zmq_msg_size(&s->body), &a);
    if (r < 0)
        return r;
    if (!copy_text(a.topic, sizeof a.topic, zmq_msg_data(&s->topic), tlen))
        return -EBADMSG;
    *ret = a;
    return 0;
}

int nousu_subscriber_recv(nousu_subscriber *s, nousu_alert *ret, int timeout_ms) {
    if (!s || !ret)
        return -EINVAL;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        long wait = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - mono_ms();
            wait = left > 0 ? (long)left : 0;
        }
        zmq_pollitem_t it = {.socket = s->sock, .events = ZMQ_POLLIN};
        int n = zmq_poll(&it, 1, wait);
        if (n < 0)
            return zerr();
        if (n == 0)
            return -EAGAIN;
        int frames = message_take(s);
        if (frames == -EAGAIN && wait != 0)
            continue; /* readable but nothing to read: poll again */
        if (frames < 0)
            return frames;
        return frames == 2 ? alert_from_message(s, ret) : -EBADMSG;
    }
}
