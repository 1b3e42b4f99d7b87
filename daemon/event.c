/* event.c -- names of event types and rejection reasons (event.h tables). */
#include <string.h>

#include "event.h"

static const char *const type_names[EV__COUNT] = {
#define X(id, name) name,
    EVENT_TYPES(X)
#undef X
};

static const uint8_t type_lens[EV__COUNT] = {
#define X(id, name) sizeof(name) - 1,
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

/* On the decoder's hot path: lengths first, one memcmp at most per name. */
int event_type_parse(const char *s, size_t len) {
    for (int t = 0; t < EV__COUNT; t++)
        if (type_lens[t] == len && memcmp(type_names[t], s, len) == 0)
            return t;
    return -1;
}

const char *reject_reason_name(reject_reason r) {
    return (unsigned)r < REJECT__COUNT ? reason_names[r] : "?";
}

bool reject_reason_is_frame(reject_reason r) {
    return r == REJECT_MALFORMED || r == REJECT_OVERSIZE || r == REJECT_BATCH_TOO_LARGE;
}
