/* nousu.h -- the nousu client library (libnousu): send engagement events to
 * nousud, receive its alerts live, and catch up on the alerts you missed.
 *
 * The wire formats are fixed by SPEC §2-§7; this library is one client of
 * them, not the only one (any ZeroMQ + msgpack stack can talk to nousud).
 *
 *   producer    PUSH (fire and forget, SPEC §3) or DEALER (acknowledged,
 *               SPEC §4) -> nousud's ingest / ingest-ack endpoints
 *   subscriber  SUB <- nousud's alerts PUB (SPEC §6)
 *   catch-up    Redis stream <prefix>alerts, via hiredis (SPEC §6)
 *
 * Conventions: every function returns 0 (or a positive count) on success and
 * -errno on failure; x_new() returns NULL on failure (errno is set);
 * x_destroy(x **) accepts NULL and sets the pointer to NULL; outputs are the
 * last arguments, named ret_*, and are left untouched on failure. Objects are
 * not thread-safe: use each from one thread at a time. Strings are UTF-8 and
 * NUL-terminated unless a length is given. */
#ifndef NOUSU_NOUSU_H
#define NOUSU_NOUSU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(NOUSU_BUILDING) && defined(__GNUC__)
#define NOUSU_API __attribute__((visibility("default")))
#else
#define NOUSU_API
#endif

#define NOUSU_VERSION_STRING "0.1.0"

/* SPEC §2 default endpoints. */
#define NOUSU_DEFAULT_INGEST "tcp://127.0.0.1:7710"
#define NOUSU_DEFAULT_INGEST_ACK "tcp://127.0.0.1:7711"
#define NOUSU_DEFAULT_ALERTS "tcp://127.0.0.1:7712"
#define NOUSU_DEFAULT_KEY_PREFIX "nousu:"

/* SPEC §3 bounds the library relies on. */
#define NOUSU_MAX_BATCH_EVENTS 10000
#define NOUSU_DEFAULT_BATCH 1000
#define NOUSU_DEFAULT_MAX_FRAME (1024 * 1024)

/* The library's version, e.g. "0.1.0". */
NOUSU_API const char *nousu_version(void);

/* ---------------------------------------------------------------- security */

/* CURVE keys (SPEC §8), each a 40-character Z85 string. When a daemon runs
 * with CURVE, every client needs the server's public key and its own key
 * pair (whose public key is on the daemon's allow list). The library copies
 * nothing: the strings only need to live through x_new(). */
typedef struct nousu_curve {
    const char *server_key; /* the daemon's public key */
    const char *public_key; /* this client's public key */
    const char *secret_key; /* this client's secret key */
} nousu_curve;

/* ------------------------------------------------------------------ events */

/* One engagement event (SPEC §3). Initialise with NOUSU_EVENT_INIT or
 * nousu_event_init(), which mark every optional field absent: a zeroed struct
 * would mean "0 followers, not sponsored". The producer copies what it needs
 * during nousu_producer_add(); nothing here is kept. */
typedef struct nousu_event {
    const char *creator;   /* required, 1..128 bytes, e.g. "ig:alice_knits" */
    const char *type;      /* required: view like comment share save mention
                            * follow unfollow post */
    int64_t ts;            /* required: event time, ms since the epoch, > 0 */
    const char *id;        /* NULL: absent. Unique event id, 1..64 bytes */
    int64_t n;             /* 0: absent (the daemon counts 1) */
    int64_t followers;     /* -1: absent. Follower count at ts */
    const char *niche;     /* NULL: absent. [a-z0-9_-], 1..64 bytes */
    const char *actor;     /* NULL: absent. Who engaged, 1..128 bytes */
    const char *post;      /* NULL: absent. The post interacted with */
    int sponsored;         /* -1: absent, 0: false, 1: true */
} nousu_event;

#define NOUSU_EVENT_INIT { .followers = -1, .sponsored = -1 }

NOUSU_API void nousu_event_init(nousu_event *ev);

/* -------------------------------------------------------------------- acks */

#define NOUSU_REASON_MAX 48

/* One rejected event of an acknowledged batch. */
typedef struct nousu_ack_error {
    int64_t i;                      /* index in the batch; -1: the whole frame */
    char reason[NOUSU_REASON_MAX];  /* e.g. "bad_type" (truncated if longer) */
} nousu_ack_error;

/* The daemon's answer to one batch (SPEC §4). ok + dup + rejected is the
 * number of events in the batch (a frame rejected whole counts 1). */
typedef struct nousu_ack {
    uint64_t batch;   /* producer-local batch number, 0, 1, 2, ... */
    uint64_t first;   /* index of the batch's first event among all events
                       * this producer has added, to map errors back */
    uint32_t events;  /* events in the batch */
    uint64_t ok, dup, rejected;
    size_t n_errors;
    const nousu_ack_error *errors; /* n_errors entries; valid during the callback */
} nousu_ack;

/* Called once per acknowledged batch, from inside nousu_producer_add() or
 * nousu_producer_flush(), before they return. Must not call back into the
 * producer. */
typedef void (*nousu_ack_fn)(const nousu_ack *ack, void *userdata);

/* ---------------------------------------------------------------- producer */

typedef struct nousu_producer nousu_producer;

typedef enum nousu_mode {
    NOUSU_MODE_PUSH = 0, /* PUSH to ingest: fire and forget */
    NOUSU_MODE_ACK = 1,  /* DEALER to ingest-ack: wait for each batch's ack */
} nousu_mode;

/* Every field's zero value means its default, so `nousu_producer_opts o =
 * {0};` (or passing NULL) gives a PUSH producer with defaults. */
typedef struct nousu_producer_opts {
    nousu_mode mode;
    uint32_t batch_size;      /* events per message: 0 = 1000, at most 10,000 */
    uint32_t max_batch_bytes; /* a message is sent before it would grow past
                               * this: 0 = 1 MiB, the daemon's default limit */
    int ack_timeout_ms;       /* ACK: wait per attempt, 0 = 3000 */
    int retries;              /* ACK: resends per batch, 0 = 3, < 0 = none */
    int send_timeout_ms;      /* PUSH: give up queueing after this, 0 = block */
    int sndhwm;               /* ZMQ_SNDHWM in messages (batches), 0 = 100 */
    int linger_ms;            /* ZMQ_LINGER, 0 = 2000, < 0 = drop at once */
    const nousu_curve *curve; /* NULL: no CURVE */
    void *zmq_ctx;            /* NULL: the producer owns a context */
    nousu_ack_fn on_ack;      /* ACK: NULL = only count (see stats) */
    void *userdata;
} nousu_producer_opts;

typedef struct nousu_producer_stats {
    uint64_t events_added;   /* accepted by nousu_producer_add*() */
    uint64_t events_sent;    /* in batches handed to ZeroMQ (ACK: acknowledged) */
    uint64_t batches_sent;
    uint64_t resends;        /* ACK: a batch sent again after a timeout */
    uint64_t ok, dup, rejected; /* ACK: summed over every ack */
    uint64_t buffered;       /* events added but not yet sent/acknowledged */
} nousu_producer_stats;

/* Connect a producer to endpoint (any ZeroMQ transport). Returns NULL with
 * errno set on failure (EINVAL: bad options or endpoint). Connecting never
 * waits for the daemon: ZeroMQ connects in the background. */
NOUSU_API nousu_producer *nousu_producer_new(const char *endpoint, const nousu_producer_opts *opts);

/* Close the socket (and the context if the producer owns it; that waits at
 * most linger_ms for queued messages to leave). Events not yet flushed are
 * discarded: call nousu_producer_flush() first. Accepts NULL. */
NOUSU_API void nousu_producer_destroy(nousu_producer **p);

/* Buffer one event (copied: ev and its strings may go right after). When
 * the batch reaches batch_size events it is sent (see nousu_producer_flush()
 * for how that blocks); a batch that would pass max_batch_bytes is sent
 * before this event is added, and so is a batch still waiting for its ack.
 * Returns 0 when the event is buffered; -EINVAL when creator, type or ts is
 * missing or a field is out of its documented range; -EMSGSIZE when the
 * event alone is larger than max_batch_bytes; or the error of sending an
 * earlier batch first (-EAGAIN, -ETIMEDOUT, -EINTR, ...): then this event
 * was not added and can be added again. When sending the batch this event
 * completed fails, the event is buffered all the same (0) and the next add
 * or flush retries that batch and reports. */
NOUSU_API int nousu_producer_add(nousu_producer *p, const nousu_event *ev);

/* Buffer one pre-encoded msgpack object (normally an event map; it is sent
 * as is, unknown keys and all). Checked to be exactly one well-formed object;
 * -EBADMSG otherwise. Otherwise as nousu_producer_add(). */
NOUSU_API int nousu_producer_add_raw(nousu_producer *p, const void *obj, size_t len);

/* Send the buffered batch, if any, as one msgpack array.
 *
 * PUSH: returns once ZeroMQ has queued it. That blocks while the queue is
 * at its high-water mark (the daemon is not keeping up, or not there); with
 * send_timeout_ms it gives up with -EAGAIN and keeps the batch.
 * ACK: sends [request_id, batch] and blocks until the ack arrives, sending
 * the same request again after each ack_timeout_ms without one, at most
 * `retries` times; the daemon applies a request id once, so a resend never
 * counts twice. Then returns -ETIMEDOUT and keeps the batch with its request
 * id: the next flush (or add) sends it again, still under the same id.
 * -EINTR: a signal interrupted the wait, the batch is kept likewise.
 * -EBADMSG: the ack for this request could not be parsed (the daemon did
 * commit the batch; it is dropped). Returns 0 when there was nothing to send. */
NOUSU_API int nousu_producer_flush(nousu_producer *p);

NOUSU_API void nousu_producer_stats_get(const nousu_producer *p, nousu_producer_stats *ret);

/* ------------------------------------------------------------------ alerts */

typedef enum nousu_alert_kind {
    NOUSU_ALERT_OTHER = 0,   /* a kind this library does not know (kind_name) */
    NOUSU_ALERT_RISING,
    NOUSU_ALERT_SUSPICIOUS,
    NOUSU_ALERT_GRADUATED,
} nousu_alert_kind;

#define NOUSU_TOPIC_MAX 255
#define NOUSU_CREATOR_MAX 128
#define NOUSU_NICHE_MAX 64
#define NOUSU_MAX_REASONS 16
#define NOUSU_REASON_TEXT_MAX 255
#define NOUSU_MAX_ALERT_BYTES (256 * 1024)

/* One alert (SPEC §6), decoded into fixed storage: no allocation, nothing
 * to free. Numbers the message lacks are 0 (followers: -1). */
typedef struct nousu_alert {
    char topic[NOUSU_TOPIC_MAX + 1];   /* "<kind>.<niche>", "" if unknown */
    nousu_alert_kind kind;
    char kind_name[32];                /* as sent, e.g. "rising" */
    char creator[NOUSU_CREATOR_MAX + 1];
    char niche[NOUSU_NICHE_MAX + 1];   /* "" when nil (unknown) */
    char tier[16];
    int64_t v;
    uint64_t seq;
    int64_t ts, emitted;               /* event time / wall clock, ms */
    int64_t followers;                 /* -1 when nil */
    int64_t window_s;
    double engagement, expected, z, velocity, engagement_rate;
    double follower_growth;
    int64_t unique_engagers;
    double repeat_ratio, sponsored_share;
    size_t n_reasons;                  /* stored, at most NOUSU_MAX_REASONS */
    size_t reasons_total;              /* as sent */
    char reasons[NOUSU_MAX_REASONS][NOUSU_REASON_TEXT_MAX + 1];
    const void *raw;                   /* the message's msgpack bytes; not */
    size_t raw_len;                    /* owned, valid as documented below */
} nousu_alert;

/* Decode one alert map. ret->raw points at buf. Returns 0, or -EBADMSG (no
 * map, malformed msgpack, a required key missing (seq, kind, creator, ts), a
 * known key of the wrong type or too long); the input is never trusted:
 * container sizes are checked against the bytes before anything is
 * allocated. ret->topic is left "" (the topic is another frame). */
NOUSU_API int nousu_alert_decode(const void *buf, size_t len, nousu_alert *ret);

/* Render one msgpack object as compact JSON text on one line, no newline:
 * maps -> objects (non-string keys become their JSON text), str and bin ->
 * strings (invalid UTF-8 replaced by U+FFFD), ints, floats (NaN/Inf -> null),
 * nil, bools; ext -> {"ext": type, "hex": "..."}. Works for any map, not
 * just alerts. *ret_json is malloc()ed: free() it. -EBADMSG on malformed
 * input, -ENOMEM. */
NOUSU_API int nousu_msgpack_to_json(const void *buf, size_t len, char **ret_json);

/* -------------------------------------------------------------- subscriber */

typedef struct nousu_subscriber nousu_subscriber;

typedef struct nousu_subscriber_opts {
    int rcvhwm;               /* ZMQ_RCVHWM in alerts, 0 = 100,000 */
    const nousu_curve *curve; /* NULL: no CURVE */
    void *zmq_ctx;            /* NULL: the subscriber owns a context */
} nousu_subscriber_opts;

/* SUB-connect to endpoint and subscribe to topic_prefix ("" or NULL: every
 * alert; "rising." only rising; "rising.knitting" one niche). NULL with
 * errno on failure. Alerts published before the connection completes are
 * not received (that is what nousu_alerts_since() is for). */
NOUSU_API nousu_subscriber *nousu_subscriber_new(const char *endpoint, const char *topic_prefix);
NOUSU_API nousu_subscriber *nousu_subscriber_new_opts(const char *endpoint,
                                                      const char *topic_prefix,
                                                      const nousu_subscriber_opts *opts);

/* Add another topic prefix. */
NOUSU_API int nousu_subscriber_subscribe(nousu_subscriber *s, const char *topic_prefix);

/* Wait up to timeout_ms (-1: forever, 0: poll) for one alert and decode it
 * into *ret; ret->raw points into the subscriber and stays valid until the
 * next recv or destroy. Returns 0; -EAGAIN on timeout; -EINTR when a signal
 * interrupted the wait; -EBADMSG when a message arrived but is not a valid
 * alert (not two frames, topic too long, or see nousu_alert_decode()): it
 * was consumed, and the next call goes on with the next one. */
NOUSU_API int nousu_subscriber_recv(nousu_subscriber *s, nousu_alert *ret, int timeout_ms);

/* The ZeroMQ SUB socket, to put in your own zmq_poll(). Owned by s. */
NOUSU_API void *nousu_subscriber_socket(nousu_subscriber *s);

/* Accepts NULL. */
NOUSU_API void nousu_subscriber_destroy(nousu_subscriber **s);

/* ---------------------------------------------------------------- catch-up */

/* Where the daemon's Redis is. Zeroed fields mean their defaults. The
 * password is never taken from here directly: it comes from password_file
 * (first line) or, without one, the NOUSU_REDIS_PASSWORD environment
 * variable, so it never has to appear in argv. */
typedef struct nousu_redis_opts {
    const char *host;          /* NULL: "127.0.0.1"; starting with '/': a unix socket */
    int port;                  /* 0: 6379 */
    int db;                    /* SELECT db; 0 */
    const char *user;          /* ACL user; NULL: env NOUSU_REDIS_USER, or none */
    const char *password_file; /* NULL: env NOUSU_REDIS_PASSWORD, or none */
    const char *key_prefix;    /* NULL: "nousu:" (the stream is <prefix>alerts) */
    int timeout_ms;            /* connect and per command, 0: 5000 */
} nousu_redis_opts;

/* Called for each stream entry in seq order. err is 0 with a decoded alert,
 * or -EBADMSG for an entry that is not a valid alert (then only alert->seq,
 * from the entry id, and alert->raw, if any, are meaningful). alert->raw
 * points into the Redis reply: valid during the call only. Return 0 to go
 * on, anything else to stop (nousu_alerts_since() then returns that). */
typedef int (*nousu_alert_fn)(int err, const nousu_alert *alert, void *userdata);

/* Deliver every alert of the stream whose seq is greater than `seq`, oldest
 * first, reading pages of 1000 entries (XRANGE) until the end of the stream
 * (including alerts added while reading). Blocking. Returns 0 when the
 * stream was read to the end, the callback's non-zero value, or -errno:
 * -ECONNREFUSED (cannot connect), -EACCES (AUTH/SELECT refused), -EIO,
 * -EPROTO (unexpected reply), -ENOMEM. */
NOUSU_API int nousu_alerts_since(const nousu_redis_opts *opts, uint64_t seq, nousu_alert_fn cb,
                                 void *userdata);

#ifdef __cplusplus
}
#endif

#endif
