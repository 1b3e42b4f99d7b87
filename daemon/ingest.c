/* ingest.c -- PULL and ROUTER sockets, framing and decoding into a batch
 * (see ingest.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ingest.h"
#include "log.h"

/* The messages behind one unit: payload, and for requests the peer identity.
 * Each lives at a fixed address until batch_free: a message of up to 33
 * bytes keeps its bytes inside the zmq_msg_t itself, and decoded events point
 * into them, so growing the table must not move the messages. */
struct batch_held {
    zmq_msg_t payload;
    zmq_msg_t identity;
    bool has_identity;
};
typedef batch_held held;

struct ingest {
    void *pull;
    void *router;
    ingest_opts o;
    bool turn_ack; /* alternate sockets so neither starves the other */
};

static void close_socket(void **s) {
    if (*s) {
        zmq_close(*s);
        *s = NULL;
    }
}

static void *open_socket(void *zctx, int type, const char *ep, const ingest_opts *o) {
    void *s = zmq_socket(zctx, type);
    if (!s)
        return NULL;
    int linger = 0, hwm = o->rcvhwm;
    int64_t max = o->max_msg_size;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max);
    if (security_apply(o->sec, s) < 0 || zmq_bind(s, ep) != 0) {
        log_error("ingest: cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    log_info("ingest: listening on %s (%s)", ep, type == ZMQ_PULL ? "PULL" : "ROUTER, acknowledged");
    return s;
}

ingest *ingest_new(void *zctx, const ingest_opts *o) {
    ingest *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->o = *o;
    if (o->pull_endpoint && o->pull_endpoint[0] &&
        !(in->pull = open_socket(zctx, ZMQ_PULL, o->pull_endpoint, o)))
        goto fail;
    if (o->ack_endpoint && o->ack_endpoint[0] &&
        !(in->router = open_socket(zctx, ZMQ_ROUTER, o->ack_endpoint, o)))
        goto fail;
    return in;
fail:
    ingest_destroy(&in);
    return NULL;
}

void ingest_destroy(ingest **inp) {
    ingest *in = inp ? *inp : NULL;
    if (!in)
        return;
    close_socket(&in->pull);
    close_socket(&in->router);
    free(in);
    *inp = NULL;
}

void *ingest_pull_socket(const ingest *in) { return in->pull; }
void *ingest_ack_socket(const ingest *in) { return in->router; }

void batch_free(batch *b) {
    for (size_t i = 0; i < b->held_cap; i++)
        free(b->held[i]);
    free(b->held);
    free(b->items);
    free(b->units);
    memset(b, 0, sizeof *b);
}

/* Room for one more unit and a full frame's items. */
static int reserve(ingest *in, batch *b) {
    size_t need_items = b->n_items + in->o.max_batch_events + 1;
    if (need_items > b->cap_items) {
        size_t cap = need_items * 2;
        decode_item *p = realloc(b->items, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        b->items = p, b->cap_items = cap;
    }
    if (b->n_units == b->cap_units) {
        size_t cap = b->cap_units ? b->cap_units * 2 : 256;
        batch_unit *u = realloc(b->units, cap * sizeof *u);
        if (!u)
            return -ENOMEM;
        b->units = u, b->cap_units = cap;
    }
    if (b->n_units == b->held_cap) {
        size_t cap = b->held_cap ? b->held_cap * 2 : 256;
        held **h = realloc(b->held, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        b->held = h;
        for (; b->held_cap < cap; b->held_cap++)
            if (!(h[b->held_cap] = calloc(1, sizeof **h)))
                return -ENOMEM;
    }
    return 0;
}

static bool more_parts(void *s) {
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &len);
    return more != 0;
}

/* Discard the rest of a multipart message. */
static void drain_parts(void *s) {
    while (more_parts(s)) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s, ZMQ_DONTWAIT);
        zmq_msg_close(&m);
    }
}

static int decode_unit(decoder *d, batch *b, batch_unit *u, const zmq_msg_t *payload,
                       int64_t now_ms) {
    size_t n = 0;
    bool whole = false;
    u->first_item = b->n_items;
    int rc = decode_frame(d, zmq_msg_data((zmq_msg_t *)payload), zmq_msg_size((zmq_msg_t *)payload),
                          now_ms, b->items + b->n_items, b->cap_items - b->n_items, &n, &whole);
    if (rc < 0)
        return rc;
    u->n_items = n;
    u->whole = whole;
    b->n_items += n;
    return 0;
}

static int read_pull(ingest *in, decoder *d, batch *b, int64_t now_ms) {
    held *h = b->held[b->n_units];
    zmq_msg_init(&h->payload);
    h->has_identity = false;
    if (zmq_msg_recv(&h->payload, in->pull, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&h->payload);
        return zmq_errno() == EAGAIN ? 0 : -zmq_errno();
    }
    drain_parts(in->pull); /* a PUSH frame is one part; extra parts are ignored */
    batch_unit *u = &b->units[b->n_units];
    memset(u, 0, sizeof *u);
    u->source = SOURCE_INGEST;
    if (decode_unit(d, b, u, &h->payload, now_ms) < 0) {
        zmq_msg_close(&h->payload);
        return -ENOMEM;
    }
    b->n_units++;
    return 1;
}

/* A request is [identity, request_id, payload]. Anything else cannot be
 * acknowledged: it is dead-lettered as malformed and dropped. */
static int read_request(ingest *in, decoder *d, store *st, batch *b, int64_t now_ms,
                        uint64_t *bad) {
    held *h = b->held[b->n_units];
    zmq_msg_t rid;
    zmq_msg_init(&h->identity);
    if (zmq_msg_recv(&h->identity, in->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&h->identity);
        return zmq_errno() == EAGAIN ? 0 : -zmq_errno();
    }
    zmq_msg_init(&rid);
    zmq_msg_init(&h->payload);
    bool ok = more_parts(in->router) && zmq_msg_recv(&rid, in->router, ZMQ_DONTWAIT) >= 0 &&
              more_parts(in->router) && zmq_msg_recv(&h->payload, in->router, ZMQ_DONTWAIT) >= 0 &&
              !more_parts(in->router) && zmq_msg_size(&rid) >= 1 &&
              zmq_msg_size(&rid) <= BATCH_RID_MAX;
    if (!ok) {
        drain_parts(in->router);
        (*bad)++;
        store_deadletter(st, "malformed", SOURCE_ACK, now_ms, zmq_msg_data(&h->payload),
                         zmq_msg_size(&h->payload));
        zmq_msg_close(&rid);
        zmq_msg_close(&h->payload);
        zmq_msg_close(&h->identity);
        return 1;
    }
    batch_unit *u = &b->units[b->n_units];
    memset(u, 0, sizeof *u);
    u->source = SOURCE_ACK;
    u->rid_len = (uint8_t)zmq_msg_size(&rid);
    memcpy(u->rid, zmq_msg_data(&rid), u->rid_len);
    zmq_msg_close(&rid);
    h->has_identity = true;
    if (decode_unit(d, b, u, &h->payload, now_ms) < 0) {
        zmq_msg_close(&h->payload);
        zmq_msg_close(&h->identity);
        return -ENOMEM;
    }
    b->n_units++;
    return 1;
}

int ingest_read(ingest *in, decoder *d, store *st, batch *b, size_t max_events, int64_t now_ms,
                uint64_t *ret_bad_envelopes) {
    int frames = 0;
    bool pull_open = in->pull != NULL, ack_open = in->router != NULL;
    while ((pull_open || ack_open) && b->n_items < max_events) {
        if (reserve(in, b) < 0)
            return -ENOMEM;
        bool use_ack = ack_open && (in->turn_ack || !pull_open);
        in->turn_ack = !in->turn_ack;
        int rc = use_ack ? read_request(in, d, st, b, now_ms, ret_bad_envelopes)
                         : read_pull(in, d, b, now_ms);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (use_ack)
                ack_open = false;
            else
                pull_open = false;
        }
        frames += rc;
    }
    return frames;
}

void ingest_ack(ingest *in, const batch *b, const commit_result *r) {
    for (size_t i = 0; i < b->n_units && i < r->n_units; i++) {
        const batch_unit *u = &b->units[i];
        held *h = b->held[i];
        if (u->source != SOURCE_ACK || !h->has_identity || !r->units[i].ack)
            continue;
        /* Best effort: a peer that went away resends and gets the stored ack. */
        zmq_msg_t id;
        zmq_msg_init(&id);
        zmq_msg_copy(&id, &h->identity);
        if (zmq_msg_send(&id, in->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            continue;
        }
        zmq_send(in->router, u->rid, u->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(in->router, r->units[i].ack, r->units[i].ack_len, ZMQ_DONTWAIT);
    }
}

void ingest_release(batch *b) {
    for (size_t i = 0; i < b->n_units; i++) {
        zmq_msg_close(&b->held[i]->payload);
        if (b->held[i]->has_identity)
            zmq_msg_close(&b->held[i]->identity);
    }
    b->n_units = 0;
    b->n_items = 0;
}
