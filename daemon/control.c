/* control.c -- SPEC §7 control queries: parse, encode replies, socket
 * (see control.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "control.h"
#include "decode.h"
#include "log.h"

/* ---- parsing ----------------------------------------------------------------- */

static bool key_is(const msgpack_object *k, const char *name) {
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

static bool is_text(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

static const char *parse_op(const msgpack_object *v, control_request *r) {
    static const struct { const char *name; control_op op; } ops[] = {
        {"ping", CONTROL_PING}, {"creator", CONTROL_CREATOR},
        {"top", CONTROL_TOP},   {"stats", CONTROL_STATS},
    };
    if (v->type != MSGPACK_OBJECT_STR)
        return "bad_op";
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (key_is(v, ops[i].name)) {
            r->op = ops[i].op;
            return NULL;
        }
    return "unknown_op";
}

static const char *copy_text(const msgpack_object *v, char *dst, size_t cap, const char *err) {
    if (!is_text(v) || v->via.str.size == 0 || v->via.str.size >= cap)
        return err;
    memcpy(dst, v->via.str.ptr, v->via.str.size);
    dst[v->via.str.size] = '\0';
    if (strlen(dst) != v->via.str.size) /* embedded NUL */
        return err;
    return NULL;
}

static const char *parse_n(const msgpack_object *v, control_request *r) {
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 < 1 ||
        v->via.u64 > CONTROL_TOP_MAX)
        return "bad_n";
    r->n = (size_t)v->via.u64;
    return NULL;
}

static const char *parse_map(const msgpack_object *o, control_request *r) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return "malformed";
    bool have_op = false, have_creator = false;
    const char *err = NULL;
    for (uint32_t i = 0; i < o->via.map.size && !err; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (key_is(k, "op"))
            err = parse_op(v, r), have_op = true;
        else if (key_is(k, "creator"))
            err = copy_text(v, r->creator, sizeof r->creator, "bad_creator"), have_creator = true;
        else if (key_is(k, "niche") && v->type != MSGPACK_OBJECT_NIL)
            err = copy_text(v, r->niche, sizeof r->niche, "bad_niche"), r->has_niche = true;
        else if (key_is(k, "n"))
            err = parse_n(v, r);
    }
    if (err)
        return err;
    if (!have_op)
        return "missing_op";
    if (r->op == CONTROL_CREATOR && !have_creator)
        return "missing_creator";
    return NULL;
}

const char *control_parse(const void *data, size_t len, control_request *ret) {
    control_request r = {.n = 10};
    if (len == 0 || len > CONTROL_MAX_REQUEST)
        return "malformed";
    /* The structural check runs before msgpack-c sees the bytes, so a
     * 5-byte container header cannot make it reserve gigabytes. */
    if (decode_prescan(data, len) < 0)
        return "malformed";
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 2048))
        return "internal";
    msgpack_object obj;
    size_t off = 0;
    const char *err = "malformed";
    if (msgpack_unpack(data, len, &off, &zone, &obj) == MSGPACK_UNPACK_SUCCESS && off == len)
        err = parse_map(&obj, &r);
    msgpack_zone_destroy(&zone);
    if (!err)
        *ret = r;
    return err;
}

/* ---- replies ------------------------------------------------------------------- */

static void p_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void p_opt_str(msgpack_packer *pk, const char *s) {
    if (s)
        p_str(pk, s);
    else
        msgpack_pack_nil(pk);
}

static msgpack_packer start(msgpack_sbuffer *out) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    return pk;
}

void control_reply_error(msgpack_sbuffer *out, const char *reason) {
    msgpack_packer pk = start(out);
    msgpack_pack_map(&pk, 1);
    p_str(&pk, "error");
    p_str(&pk, reason);
}

void control_reply_pong(msgpack_sbuffer *out, const char *version) {
    msgpack_packer pk = start(out);
    msgpack_pack_map(&pk, 2);
    p_str(&pk, "pong");
    msgpack_pack_true(&pk);
    p_str(&pk, "version");
    p_str(&pk, version);
}

static void pack_counts(msgpack_packer *pk, const creator_window *w) {
    msgpack_pack_map(pk, EV__COUNT);
    for (int t = 0; t < EV__COUNT; t++) {
        p_str(pk, event_type_name((event_type)t));
        msgpack_pack_int64(pk, w->counts[t]);
    }
}

static void pack_last_alert(msgpack_packer *pk, const creator_summary *c) {
    if (!c->last_alert_kind[0]) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 2);
    p_str(pk, "kind");
    p_str(pk, c->last_alert_kind);
    p_str(pk, "ts");
    msgpack_pack_int64(pk, c->last_alert_ts);
}

void control_reply_creator(msgpack_sbuffer *out, const creator_summary *c, const detect_result *r) {
    msgpack_packer pk = start(out);
    const creator_window *w = &c->w;
    msgpack_pack_map(&pk, 18);
    p_str(&pk, "creator"), p_str(&pk, c->creator);
    p_str(&pk, "niche"), p_opt_str(&pk, c->niche);
    p_str(&pk, "followers");
    if (w->followers >= 0)
        msgpack_pack_int64(&pk, w->followers);
    else
        msgpack_pack_nil(&pk);
    p_str(&pk, "tier"), p_str(&pk, tier_name(r->tier));
    p_str(&pk, "first_seen"), msgpack_pack_int64(&pk, w->first_ms);
    p_str(&pk, "last_seen"), msgpack_pack_int64(&pk, w->now_ms);
    p_str(&pk, "engagement"), msgpack_pack_double(&pk, w->e_recent);
    p_str(&pk, "expected"), msgpack_pack_double(&pk, r->mu);
    p_str(&pk, "velocity"), msgpack_pack_double(&pk, r->velocity);
    p_str(&pk, "z"), msgpack_pack_double(&pk, r->z);
    p_str(&pk, "unique_engagers"), msgpack_pack_int64(&pk, w->unique_engagers);
    p_str(&pk, "interactions"), msgpack_pack_int64(&pk, r->interactions);
    p_str(&pk, "engagement_rate"), msgpack_pack_double(&pk, r->rate);
    p_str(&pk, "follower_growth"), msgpack_pack_double(&pk, r->follower_growth);
    p_str(&pk, "sponsored_share"), msgpack_pack_double(&pk, r->sponsored_share);
    p_str(&pk, "rising");
    if (c->board_niche)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    p_str(&pk, "counts"), pack_counts(&pk, w);
    p_str(&pk, "last_alert"), pack_last_alert(&pk, c);
}

void control_reply_top(msgpack_sbuffer *out, const char *niche, const top_entry *e, size_t n) {
    msgpack_packer pk = start(out);
    msgpack_pack_map(&pk, 2);
    p_str(&pk, "niche"), p_opt_str(&pk, niche);
    p_str(&pk, "creators");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 5);
        p_str(&pk, "creator"), p_str(&pk, e[i].creator);
        p_str(&pk, "niche"), p_opt_str(&pk, e[i].niche);
        p_str(&pk, "followers"), msgpack_pack_int64(&pk, e[i].followers);
        p_str(&pk, "z"), msgpack_pack_double(&pk, e[i].z);
        p_str(&pk, "velocity"), msgpack_pack_double(&pk, e[i].velocity);
    }
}

static void kv_u64(msgpack_packer *pk, const char *k, uint64_t v) {
    p_str(pk, k);
    msgpack_pack_uint64(pk, v);
}

void control_reply_stats(msgpack_sbuffer *out, const stats *st, int64_t now_ms) {
    msgpack_packer pk = start(out);
    msgpack_pack_map(&pk, 20);
    kv_u64(&pk, "events_accepted", st->events_accepted);
    kv_u64(&pk, "events_rejected", st->events_rejected);
    kv_u64(&pk, "events_duplicate", st->events_duplicate);
    kv_u64(&pk, "alerts_published", st->alerts_published);
    kv_u64(&pk, "uptime_s", (uint64_t)((now_ms - st->started_ms) / 1000));
    kv_u64(&pk, "frames", st->frames);
    kv_u64(&pk, "requests", st->requests);
    kv_u64(&pk, "requests_replayed", st->requests_replayed);
    kv_u64(&pk, "bad_envelopes", st->bad_envelopes);
    kv_u64(&pk, "deadletter_shed", st->deadletter_shed);
    kv_u64(&pk, "commits", st->commits);
    kv_u64(&pk, "hints_sent", st->hints_sent);
    kv_u64(&pk, "hints_taken", st->hints_taken);
    kv_u64(&pk, "dedup_filtered_commits", st->dedup_filtered_commits);
    kv_u64(&pk, "redis_errors", st->redis_errors);
    kv_u64(&pk, "pending_events", st->pending_events);
    kv_u64(&pk, "state_cache_bytes", st->state_cache_bytes);
    kv_u64(&pk, "dedup_filter_bytes", st->dedup_filter_bytes);
    p_str(&pk, "rejected");
    size_t nr = 0;
    for (int i = 1; i < REJECT__COUNT; i++)
        nr += st->rejected[i] != 0;
    msgpack_pack_map(&pk, nr);
    for (int i = 1; i < REJECT__COUNT; i++)
        if (st->rejected[i])
            kv_u64(&pk, reject_reason_name((reject_reason)i), st->rejected[i]);
    p_str(&pk, "alerts");
    msgpack_pack_map(&pk, ALERT__COUNT);
    for (int k = 0; k < ALERT__COUNT; k++)
        kv_u64(&pk, alert_kind_name((alert_kind)k), st->alerts[k]);
}

/* ---- socket --------------------------------------------------------------------- */

struct control {
    void *sock;
    zmq_msg_t identity, body;
    bool pending; /* a request was received and awaits its reply */
    bool delimited; /* it came with an empty delimiter frame (REQ) */
};

control *control_new(void *zctx, const char *endpoint, int64_t max_msg_size, const security *sec) {
    control *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (!endpoint || !endpoint[0])
        return c;
    c->sock = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0;
    if (!c->sock)
        goto fail;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &max_msg_size, sizeof max_msg_size);
    if (security_apply(sec, c->sock) < 0 || zmq_bind(c->sock, endpoint) != 0) {
        log_error("control: cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        goto fail;
    }
    log_info("control: listening on %s", endpoint);
    return c;
fail:
    control_destroy(&c);
    return NULL;
}

static void release(control *c) {
    if (c->pending) {
        zmq_msg_close(&c->identity);
        zmq_msg_close(&c->body);
        c->pending = false;
    }
}

void control_destroy(control **cp) {
    control *c = cp ? *cp : NULL;
    if (!c)
        return;
    release(c);
    if (c->sock)
        zmq_close(c->sock);
    free(c);
    *cp = NULL;
}

void *control_socket(const control *c) { return c->sock; }

static bool more(void *s) {
    int m = 0;
    size_t len = sizeof m;
    zmq_getsockopt(s, ZMQ_RCVMORE, &m, &len);
    return m != 0;
}

int control_recv(control *c, const void **ret_body, size_t *ret_len) {
    release(c);
    if (!c->sock)
        return 0;
    zmq_msg_init(&c->identity);
    zmq_msg_init(&c->body);
    if (zmq_msg_recv(&c->identity, c->sock, ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&c->identity);
        zmq_msg_close(&c->body);
        return err == EAGAIN ? 0 : -err;
    }
    c->pending = true;
    c->delimited = false;
    /* [identity, "", body] from REQ; [identity, body] from a bare DEALER. */
    while (more(c->sock)) {
        zmq_msg_close(&c->body);
        zmq_msg_init(&c->body);
        zmq_msg_recv(&c->body, c->sock, ZMQ_DONTWAIT);
        if (zmq_msg_size(&c->body) == 0 && more(c->sock))
            c->delimited = true;
    }
    *ret_body = zmq_msg_data(&c->body);
    *ret_len = zmq_msg_size(&c->body);
    return 1;
}

void control_reply(control *c, const msgpack_sbuffer *reply) {
    if (!c->pending)
        return;
    zmq_msg_t id;
    zmq_msg_init(&id);
    zmq_msg_copy(&id, &c->identity);
    if (zmq_msg_send(&id, c->sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&id);
    else {
        if (c->delimited)
            zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(c->sock, reply->data, reply->size, ZMQ_DONTWAIT);
    }
    release(c);
}
