/* producer.c -- events -> batches -> nousud's ingest (PUSH) or ingest-ack
 * (DEALER) endpoint, SPEC §3 and §4.
 *
 * Events are packed with msgpack-c into one reused sbuffer that keeps
 * HDR_RESERVE bytes free in front; sealing a batch writes the smallest array
 * header that fits right before the first event, so a batch leaves as one
 * frame without being copied or re-encoded.
 *
 * Acknowledged mode keeps each sealed batch in a `request` (request id,
 * frame, position among all events) until its ack arrives. Today the window
 * holds one request and flush waits for it; a windowed lazy-pirate producer
 * keeps several requests in flight, matching acks by request id, without
 * changing how a request is built, sent, resent or decoded. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ack.h"
#include "internal.h"

#define HDR_RESERVE 5 /* array32 header: 0xdd + 4 bytes */
#define REQUEST_ID_LEN 16
#define ACK_MAX_BYTES (4 * 1024 * 1024)

/* One sealed batch on the acknowledged path, from send to ack. */
typedef struct request {
    uint8_t id[REQUEST_ID_LEN]; /* session bytes + batch number */
    msgpack_sbuffer frame;      /* the batch; the frame starts at off */
    size_t off;
    uint64_t batch, first;
    uint32_t events;
    unsigned sends; /* times put on the wire */
    bool live;      /* sealed and not acknowledged yet */
} request;

struct nousu_producer {
    void *ctx;
    bool own_ctx;
    void *sock;
    nousu_producer_opts o; /* defaults resolved */
    msgpack_sbuffer batch; /* events being gathered, after HDR_RESERVE bytes */
    msgpack_sbuffer scratch; /* one event being encoded */
    msgpack_packer pk;       /* writes into scratch */
    uint32_t n;              /* events in batch */
    uint64_t first;          /* index of the batch's first event */
    uint8_t session[8];      /* random: request ids differ across producers */
    uint64_t next_batch;
    request req;             /* the window: one request */
    nousu_ack_error *errors; /* batch_size + 1 entries, reused for every ack */
    nousu_producer_stats st;
};

static void resolve_defaults(nousu_producer_opts *o) {
    if (o->batch_size == 0)
        o->batch_size = NOUSU_DEFAULT_BATCH;
    if (o->max_batch_bytes == 0)
        o->max_batch_bytes = NOUSU_DEFAULT_MAX_FRAME;
    if (o->ack_timeout_ms <= 0)
        o->ack_timeout_ms = 3000;
    if (o->retries == 0)
        o->retries = 3;
    else if (o->retries < 0)
        o->retries = 0;
    if (o->sndhwm <= 0)
        o->sndhwm = 100; /* batches: with 1000-event batches about 10 MB queued */
    if (o->linger_ms == 0)
        o->linger_ms = 2000;
    else if (o->linger_ms < 0)
        o->linger_ms = 0;
}

static int setopt_int(void *sock, int opt, int v) {
    return zmq_setsockopt(sock, opt, &v, sizeof v) < 0 ? zerr() : 0;
}

static int socket_open(nousu_producer *p, const char *endpoint) {
    bool ack = p->o.mode == NOUSU_MODE_ACK;
    p->sock = zmq_socket(p->ctx, ack ? ZMQ_DEALER : ZMQ_PUSH);
    if (!p->sock)
        return zerr();
    /* PUSH blocks at the high-water mark unless a send timeout is set; an
     * acknowledged send that cannot even be queued counts as a timed-out
     * attempt, so it uses the ack timeout. */
    int sndtimeo = ack ? p->o.ack_timeout_ms : (p->o.send_timeout_ms > 0 ? p->o.send_timeout_ms : -1);
    int64_t maxmsg = ACK_MAX_BYTES;
    int r;
    if ((r = setopt_int(p->sock, ZMQ_SNDHWM, p->o.sndhwm)) < 0 ||
        (r = setopt_int(p->sock, ZMQ_LINGER, p->o.linger_ms)) < 0 ||
        (r = setopt_int(p->sock, ZMQ_SNDTIMEO, sndtimeo)) < 0 ||
        (r = zsock_curve(p->sock, p->o.curve)) < 0)
        return r;
    if (ack && zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0)
        return zerr();
    if (zmq_connect(p->sock, endpoint) < 0)
        return zerr();
    return 0;
}

static void session_init(nousu_producer *p) {
    if (getrandom(p->session, sizeof p->session, GRND_NONBLOCK) == sizeof p->session)
        return;
    /* No entropy yet (early boot): pid and time still make a collision with
     * another live producer unlikely, and ids only need to differ for 24 h. */
    uint64_t x = ((uint64_t)getpid() << 40) ^ (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)p;
    memcpy(p->session, &x, sizeof x);
}

static int batch_reset(msgpack_sbuffer *b) {
    static const char zeros[HDR_RESERVE];
    msgpack_sbuffer_clear(b);
    return msgpack_sbuffer_write(b, zeros, HDR_RESERVE) < 0 ? -ENOMEM : 0;
}

nousu_producer *nousu_producer_new(const char *endpoint, const nousu_producer_opts *opts) {
    int r = -EINVAL;
    nousu_producer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (opts)
        p->o = *opts;
    resolve_defaults(&p->o);
    msgpack_sbuffer_init(&p->batch);
    msgpack_sbuffer_init(&p->scratch);
    msgpack_sbuffer_init(&p->req.frame);
    msgpack_packer_init(&p->pk, &p->scratch, msgpack_sbuffer_write);
    if (!endpoint || p->o.batch_size > NOUSU_MAX_BATCH_EVENTS ||
        (p->o.mode != NOUSU_MODE_PUSH && p->o.mode != NOUSU_MODE_ACK) ||
        p->o.max_batch_bytes <= HDR_RESERVE)
        goto fail;
    r = -ENOMEM;
    p->errors = calloc((size_t)p->o.batch_size + 1, sizeof *p->errors);
    if (!p->errors || batch_reset(&p->batch) < 0 || batch_reset(&p->req.frame) < 0)
        goto fail;
    p->ctx = p->o.zmq_ctx;
    if (!p->ctx) {
        p->ctx = zmq_ctx_new();
        p->own_ctx = true;
        if (!p->ctx)
            goto fail;
    }
    session_init(p);
    if ((r = socket_open(p, endpoint)) < 0)
        goto fail;
    return p;
fail:
    nousu_producer_destroy(&p);
    errno = -r;
    return NULL;
}

void nousu_producer_destroy(nousu_producer **pp) {
    if (!pp || !*pp)
        return;
    nousu_producer *p = *pp;
    if (p->sock)
        zmq_close(p->sock);
    if (p->own_ctx && p->ctx)
        zmq_ctx_term(p->ctx); /* waits at most linger_ms for queued batches */
    msgpack_sbuffer_destroy(&p->batch);
    msgpack_sbuffer_destroy(&p->scratch);
    msgpack_sbuffer_destroy(&p->req.frame);
    free(p->errors);
    free(p);
    *pp = NULL;
}

/* Write the array header in front of the events; returns the frame's
 * offset in b. Idempotent, so a batch can be sealed again for a retry. */
static size_t seal(msgpack_sbuffer *b, uint32_t n) {
    uint8_t *d = (uint8_t *)b->data;
    if (n <= 15) {
        d[4] = (uint8_t)(0x90 | n);
        return 4;
    }
    if (n <= 0xffff) {
        d[2] = 0xdc;
        d[3] = (uint8_t)(n >> 8);
        d[4] = (uint8_t)n;
        return 2;
    }
    d[0] = 0xdd;
    for (int i = 0; i < 4; i++)
        d[1 + i] = (uint8_t)(n >> (24 - 8 * i));
    return 0;
}

/* Start the next batch. Both sbuffers were given room at creation, so the
 * reserve never reallocates. */
static void batch_restart(nousu_producer *p) {
    static const char zeros[HDR_RESERVE];
    p->first += p->n;
    p->n = 0;
    msgpack_sbuffer_clear(&p->batch);
    (void)msgpack_sbuffer_write(&p->batch, zeros, HDR_RESERVE);
}

static int push_send(nousu_producer *p) {
    size_t off = seal(&p->batch, p->n);
    if (zmq_send(p->sock, p->batch.data + off, p->batch.size - off, 0) < 0)
        return zerr(); /* -EAGAIN after send_timeout_ms: the batch stays */
    p->st.events_sent += p->n;
    p->st.batches_sent++;
    batch_restart(p);
    return 0;
}

/* Move the gathered batch into the request: the two sbuffers swap, so
 * neither is copied nor freed. */
static void request_seal(nousu_producer *p) {
    request *q = &p->req;
    msgpack_sbuffer tmp = q->frame;
    q->off = seal(&p->batch, p->n);
    q->frame = p->batch;
    p->batch = tmp;
    q->batch = p->next_batch++;
    q->first = p->first;
    q->events = p->n;
    q->sends = 0;
    q->live = true;
    memcpy(q->id, p->session, sizeof p->session);
    for (int i = 0; i < 8; i++)
        q->id[8 + i] = (uint8_t)(q->batch >> (56 - 8 * i));
    batch_restart(p);
}

static int request_send(nousu_producer *p, request *q) {
    if (zmq_send(p->sock, q->id, sizeof q->id, ZMQ_SNDMORE) < 0)
        return zerr();
    /* DEALER sends the frames of one message atomically: if the first was
     * queued the second is too. */
    if (zmq_send(p->sock, q->frame.data + q->off, q->frame.size - q->off, 0) < 0)
        return zerr();
    if (q->sends++ > 0)
        p->st.resends++;
    return 0;
}

/* Deliver a decoded ack for q and retire it. */
static int request_acked(nousu_producer *p, request *q, const void *buf, size_t len) {
    nousu_ack ack = {.batch = q->batch, .first = q->first, .events = q->events};
    int r = ack_decode(buf, len, p->errors, (size_t)q->events + 1, &ack);
    q->live = false; /* the daemon committed it either way */
    if (r < 0)
        return r;
    p->st.events_sent += q->events;
    p->st.batches_sent++;
    p->st.ok += ack.ok;
    p->st.dup += ack.dup;
    p->st.rejected += ack.rejected;
    if (p->o.on_ack)
        p->o.on_ack(&ack, p->o.userdata);
    return 0;
}

/* Receive one whole message; returns 1 when it was [q->id, ack] and has been
 * handled, 0 for anything else (a stale or foreign reply: dropped). */
static int reply_take(nousu_producer *p, request *q) {
    zmq_msg_t part[2];
    int parts = 0, more = 1, r = 0;
    zmq_msg_init(&part[0]);
    zmq_msg_init(&part[1]);
    while (more) {
        zmq_msg_t *m = &part[parts < 2 ? parts : 1];
        if (zmq_msg_recv(m, p->sock, ZMQ_DONTWAIT) < 0) {
            r = zerr();
            goto out;
        }
        parts++;
        more = zmq_msg_more(m);
    }
    if (parts == 2 && zmq_msg_size(&part[0]) == sizeof q->id &&
        memcmp(zmq_msg_data(&part[0]), q->id, sizeof q->id) == 0) {
        r = request_acked(p, q, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]));
        r = r < 0 ? r : 1;
    }
out:
    zmq_msg_close(&part[0]);
    zmq_msg_close(&part[1]);
    return r;
}

/* Wait until deadline for q's ack: 0 acked, -EAGAIN timed out, -errno. */
static int ack_wait(nousu_producer *p, request *q, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return -EAGAIN;
        zmq_pollitem_t it = {.socket = p->sock, .events = ZMQ_POLLIN};
        int n = zmq_poll(&it, 1, (long)left);
        if (n < 0)
            return zerr(); /* -EINTR: a signal; the request stays live */
        if (n == 0)
            continue;
        int r = reply_take(p, q);
        if (r == 1)
            return 0;
        if (r < 0 && r != -EAGAIN)
            return r;
    }
}

/* Lazy pirate, window of one: send, wait, resend the same request id on
 * timeout. A later call resumes a request that ran out of retries. */
static int request_round(nousu_producer *p, request *q) {
    for (int attempt = 0; attempt <= p->o.retries; attempt++) {
        int64_t deadline = mono_ms() + p->o.ack_timeout_ms;
        int r = request_send(p, q);
        if (r == 0)
            r = ack_wait(p, q, deadline);
        if (r != -EAGAIN)
            return r;
    }
    return -ETIMEDOUT;
}

int nousu_producer_flush(nousu_producer *p) {
    if (!p)
        return -EINVAL;
    if (p->o.mode == NOUSU_MODE_PUSH)
        return p->n ? push_send(p) : 0;
    if (p->req.live) {
        int r = request_round(p, &p->req);
        if (r < 0)
            return r;
    }
    if (p->n == 0)
        return 0;
    request_seal(p);
    return request_round(p, &p->req);
}

/* Append one encoded event, sending first what must go first: a request
 * still waiting for its ack, or a batch this event would overfill. */
static int add_encoded(nousu_producer *p, const void *obj, size_t len) {
    if (len > p->o.max_batch_bytes - HDR_RESERVE)
        return -EMSGSIZE;
    bool over = p->n > 0 && p->batch.size + len > p->o.max_batch_bytes;
    if (p->req.live || over || p->n >= p->o.batch_size) {
        int r = nousu_producer_flush(p);
        if (r < 0)
            return r;
    }
    if (msgpack_sbuffer_write(&p->batch, obj, len) < 0)
        return -ENOMEM;
    p->n++;
    p->st.events_added++;
    /* Send a full batch now, not when the next event comes. Its failure is
     * not this event's: the batch stays, and the next add or flush retries
     * it and reports. */
    if (p->n >= p->o.batch_size)
        (void)nousu_producer_flush(p);
    return 0;
}

static int pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int pack_kv_str(msgpack_packer *pk, const char *k, const char *v) {
    return v ? pack_str(pk, k) | pack_str(pk, v) : 0;
}

static int pack_kv_int(msgpack_packer *pk, const char *k, int64_t v) {
    return pack_str(pk, k) | msgpack_pack_int64(pk, v);
}

static bool event_valid(const nousu_event *ev) {
    return ev && ev->creator && ev->creator[0] && ev->type && ev->type[0] && ev->ts > 0 &&
           ev->n >= 0 && ev->followers >= -1 && ev->sponsored >= -1 && ev->sponsored <= 1;
}

/* The event as one msgpack map in p->scratch; absent fields are left out
 * rather than sent as nil, which keeps events small. 0 or -ENOMEM. */
static int event_pack(nousu_producer *p, const nousu_event *ev) {
    msgpack_packer *pk = &p->pk;
    uint32_t keys = 3 + !!ev->id + (ev->n > 0) + (ev->followers >= 0) + !!ev->niche +
                    !!ev->actor + !!ev->post + (ev->sponsored >= 0);
    msgpack_sbuffer_clear(&p->scratch);
    int r = msgpack_pack_map(pk, keys);
    r |= pack_kv_str(pk, "creator", ev->creator);
    r |= pack_kv_str(pk, "type", ev->type);
    r |= pack_kv_int(pk, "ts", ev->ts);
    r |= pack_kv_str(pk, "id", ev->id);
    if (ev->n > 0)
        r |= pack_kv_int(pk, "n", ev->n);
    if (ev->followers >= 0)
        r |= pack_kv_int(pk, "followers", ev->followers);
    r |= pack_kv_str(pk, "niche", ev->niche);
    r |= pack_kv_str(pk, "actor", ev->actor);
    r |= pack_kv_str(pk, "post", ev->post);
    if (ev->sponsored >= 0)
        r |= pack_str(pk, "sponsored") |
             (ev->sponsored ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    return r ? -ENOMEM : 0;
}

int nousu_producer_add(nousu_producer *p, const nousu_event *ev) {
    if (!p || !event_valid(ev))
        return -EINVAL;
    int r = event_pack(p, ev);
    return r < 0 ? r : add_encoded(p, p->scratch.data, p->scratch.size);
}

int nousu_producer_add_raw(nousu_producer *p, const void *obj, size_t len) {
    if (!p || !obj)
        return -EINVAL;
    /* One malformed object would corrupt the whole batch around it. */
    if (mp_check(obj, len, MP_MAX_DEPTH) < 0)
        return -EBADMSG;
    return add_encoded(p, obj, len);
}

void nousu_producer_stats_get(const nousu_producer *p, nousu_producer_stats *ret) {
    nousu_producer_stats s = p->st;
    s.buffered = p->n + (p->req.live ? p->req.events : 0);
    *ret = s;
}
