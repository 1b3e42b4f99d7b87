/* event.c -- names of event types and rejection reasons (event.h tables). */
#include <string.h>

#include "event.h"

static const char *const type_names[EV__COUNT] = {
#define X(id, name) name,
    EVENT_TYPES(X)
#undef X
};

static const char *const reason_names[REJECT__COUNT] = {
    "ok",
#define X(id, name) name,
    REJECT_REASONS(X)
#undef X
};

const char *event_type_name(event_type t) {
    return (unsigned)t < EV__COUNT ? type_names[t] : "?";
}

/* On the decoder's hot path, once per event: a switch on the length, then
 * memcmp()s of a constant length, which gcc inlines (a loop over the names
 * called memcmp() per candidate). test_decode's test_every_type checks it
 * against EVENT_TYPES. */
int event_type_parse(const char *s, size_t len) {
#define IS(lit) (memcmp(s, lit, sizeof(lit) - 1) == 0)
    switch (len) {
    case 4:
        return IS("view") ? EV_VIEW : IS("like") ? EV_LIKE : IS("save") ? EV_SAVE
             : IS("post") ? EV_POST : -1;
    case 5: return IS("share") ? EV_SHARE : -1;
    case 6: return IS("follow") ? EV_FOLLOW : -1;
    case 7: return IS("comment") ? EV_COMMENT : IS("mention") ? EV_MENTION : -1;
    case 8: return IS("unfollow") ? EV_UNFOLLOW : -1;
    default: return -1;
    }
#undef IS
}

const char *reject_reason_name(reject_reason r) {
    return (unsigned)r < REJECT__COUNT ? reason_names[r] : "?";
}

bool reject_reason_is_frame(reject_reason r) {
    return r == REJECT_MALFORMED || r == REJECT_OVERSIZE || r == REJECT_BATCH_TOO_LARGE;
}
