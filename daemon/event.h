/* event.h -- one decoded engagement event, its types and the rejection reasons.
 *
 * Produced by decode.c (bytes -> events), consumed by store.c (events -> Redis)
 * and shared with the metrics, the dead-letter stream and the tests, so every
 * name below comes from one X-macro table. */
#ifndef NOUSU_EVENT_H
#define NOUSU_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SPEC §3 event types, in wire spelling. The order is part of the store's
 * protocol with its Redis Function (types travel as these small integers). */
#define EVENT_TYPES(X)                                                        \
    X(VIEW, "view")                                                           \
    X(LIKE, "like")                                                           \
    X(COMMENT, "comment")                                                     \
    X(SHARE, "share")                                                         \
    X(SAVE, "save")                                                           \
    X(MENTION, "mention")                                                     \
    X(FOLLOW, "follow")                                                       \
    X(UNFOLLOW, "unfollow")                                                   \
    X(POST, "post")

typedef enum event_type {
#define X(id, name) EV_##id,
    EVENT_TYPES(X)
#undef X
    EV__COUNT
} event_type;

/* Why an event (or a whole frame) was refused. REJECT_NONE means accepted.
 * The first three reject a frame whole (SPEC §3); the rest one event. */
#define REJECT_REASONS(X)                                                     \
    X(MALFORMED, "malformed")                                                 \
    X(OVERSIZE, "oversize")                                                   \
    X(BATCH_TOO_LARGE, "batch_too_large")                                     \
    X(NOT_A_MAP, "not_a_map")                                                 \
    X(DUPLICATE_KEY, "duplicate_key")                                         \
    X(BAD_TYPE, "bad_type")                                                   \
    X(MISSING_CREATOR, "missing_creator")                                     \
    X(BAD_CREATOR, "bad_creator")                                             \
    X(MISSING_TYPE, "missing_type")                                           \
    X(UNKNOWN_TYPE, "unknown_type")                                           \
    X(MISSING_TS, "missing_ts")                                               \
    X(BAD_TS, "bad_ts")                                                       \
    X(BAD_ID, "bad_id")                                                       \
    X(BAD_N, "bad_n")                                                         \
    X(BAD_FOLLOWERS, "bad_followers")                                         \
    X(BAD_NICHE, "bad_niche")                                                 \
    X(BAD_ACTOR, "bad_actor")                                                 \
    X(BAD_POST, "bad_post")                                                   \
    X(FUTURE, "future")                                                       \
    X(TOO_OLD, "too_old")

typedef enum reject_reason {
    REJECT_NONE = 0,
#define X(id, name) REJECT_##id,
    REJECT_REASONS(X)
#undef X
    REJECT__COUNT
} reject_reason;

/* A byte range inside a received frame. Not owned, not NUL-terminated. */
typedef struct strref {
    const char *ptr;
    uint32_t len; /* 0: absent */
} strref;

typedef struct event {
    strref creator;
    strref id;     /* optional */
    strref niche;  /* optional */
    strref post;   /* optional */
    strref actor;  /* optional; see event_actor() for int actors */
    strref raw;    /* this event's own msgpack bytes (its map in a batch) */
    int64_t ts;    /* ms since the epoch, > 0 */
    int64_t n;     /* 1..1e6, default 1 */
    int64_t followers; /* -1: absent */
    event_type type;
    int8_t sponsored;  /* -1: absent, 0 false, 1 true */
    /* An int actor is the same actor as its decimal string: the decoder
     * writes the decimal here and leaves actor.ptr NULL with actor.len set.
     * Kept inside the struct so events can be copied freely. */
    char actor_num[24];
} event;

/* An interaction (like .. mention) with an actor: the actor is an engager,
 * counted in ia and in the unique-engager HyperLogLogs. */
static inline bool event_has_engager(const event *e) {
    return e->actor.len && e->type >= EV_LIKE && e->type <= EV_MENTION;
}

/* The actor's bytes (event_actor_len() of them), or NULL when absent. */
static inline const char *event_actor(const event *e) {
    if (e->actor.len == 0)
        return NULL;
    return e->actor.ptr ? e->actor.ptr : e->actor_num;
}

/* Wire name of a type, e.g. "like". t must be < EV__COUNT. */
const char *event_type_name(event_type t);
/* Type for a wire name, or -1 when unknown. */
int event_type_parse(const char *s, size_t len);
/* snake_case name of a reason, e.g. "bad_ts"; "ok" for REJECT_NONE. */
const char *reject_reason_name(reject_reason r);
/* true when the reason rejects a frame whole (malformed, oversize, batch_too_large). */
bool reject_reason_is_frame(reject_reason r);

#endif
