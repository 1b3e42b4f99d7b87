/* alert.c -- encode SPEC §6 alerts and publish them (see alert.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "alert.h"
#include "log.h"

#define ALERT_FIELDS 20

struct alert_pub {
    void *sock;
};

void alert_topic(alert_kind k, const char *niche, char out[ALERT_TOPIC_MAX]) {
    snprintf(out, ALERT_TOPIC_MAX, "%s.%s", alert_kind_name(k), niche && niche[0] ? niche : "_");
}

static void key(msgpack_packer *pk, const char *k) {
    size_t n = strlen(k);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, k, n);
}

static void kv_str(msgpack_packer *pk, const char *k, const char *v) {
    key(pk, k);
    if (!v) {
        msgpack_pack_nil(pk);
        return;
    }
    size_t n = strlen(v);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, v, n);
}

static void kv_int(msgpack_packer *pk, const char *k, int64_t v) {
    key(pk, k);
    msgpack_pack_int64(pk, v);
}

static void kv_double(msgpack_packer *pk, const char *k, double v) {
    key(pk, k);
    msgpack_pack_double(pk, v);
}

void alert_encode_head(msgpack_sbuffer *out, alert_kind k, const creator_summary *c,
                       const detect_result *r, char reasons[][DETECT_REASON_LEN],
                       size_t n_reasons, int64_t emitted_ms, int64_t window_s) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    const creator_window *w = &c->w;
    msgpack_pack_map(&pk, ALERT_FIELDS);
    kv_int(&pk, "v", 1);
    kv_str(&pk, "kind", alert_kind_name(k));
    kv_str(&pk, "creator", c->creator);
    kv_str(&pk, "niche", c->niche);
    kv_int(&pk, "ts", w->now_ms);
    kv_int(&pk, "emitted", emitted_ms);
    kv_int(&pk, "followers", w->followers);
    kv_str(&pk, "tier", tier_name(r->tier));
    kv_int(&pk, "window_s", window_s);
    kv_double(&pk, "engagement", w->e_recent);
    kv_double(&pk, "expected", r->mu);
    kv_double(&pk, "z", r->z);
    kv_double(&pk, "velocity", r->velocity);
    kv_double(&pk, "engagement_rate", r->rate);
    kv_double(&pk, "follower_growth", r->follower_growth);
    kv_int(&pk, "unique_engagers", w->unique_engagers < 0 ? 0 : w->unique_engagers);
    kv_double(&pk, "repeat_ratio", r->repeat_ratio);
    kv_double(&pk, "sponsored_share", r->sponsored_share);
    key(&pk, "reasons");
    msgpack_pack_array(&pk, n_reasons);
    for (size_t i = 0; i < n_reasons; i++) {
        size_t n = strlen(reasons[i]);
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, reasons[i], n);
    }
    key(&pk, "seq"); /* its value comes from Redis (nousu_alert) */
}

alert_pub *alert_pub_new(void *zctx, const char *endpoint, int sndhwm, int64_t max_msg_size,
                         const security *sec) {
    alert_pub *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (!endpoint || !endpoint[0])
        return p; /* disabled: alerts still go to the stream */
    p->sock = zmq_socket(zctx, ZMQ_PUB);
    if (!p->sock)
        goto fail;
    int linger = 0;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    /* Subscriptions are inbound messages: cap them like any input. */
    zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &max_msg_size, sizeof max_msg_size);
    if (security_apply(sec, p->sock) < 0 || zmq_bind(p->sock, endpoint) != 0) {
        log_error("alerts: cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        goto fail;
    }
    log_info("alerts: publishing on %s", endpoint);
    return p;
fail:
    alert_pub_destroy(&p);
    return NULL;
}

void alert_pub_destroy(alert_pub **pp) {
    alert_pub *p = pp ? *pp : NULL;
    if (!p)
        return;
    if (p->sock)
        zmq_close(p->sock);
    free(p);
    *pp = NULL;
}

int alert_publish(alert_pub *p, const char *topic, const char *msg, size_t len) {
    if (!p->sock)
        return 0;
    if (zmq_send(p->sock, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(p->sock, msg, len, ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    return 0;
}
