/* decode.c -- frame bytes -> events + rejection reasons (SPEC §3).
 *
 * First stage after ingest.c: takes one ZeroMQ frame, hands store.c a slot
 * per event. Pure: no I/O, no logging, no globals (hiredis read.c).
 *
 * One pass over a frame, reading it in place (mpread.h): no allocation, no
 * object tree. Every header is checked against the bytes left (a container
 * of n items needs >= n bytes, a map of n pairs >= 2n), containers nest at
 * most MPREAD_MAX_DEPTH deep (top-level array 0, event maps 1, six levels
 * for values of unknown keys), and the frame is exactly one map or array
 * with nothing after it. msgpack-c's unpacker would otherwise reserve count
 * * sizeof(msgpack_object) for a 5-byte array32 header. Each known key's
 * value becomes a small tagged value whose strings point into the caller's
 * frame; unknown keys and their values are walked over. A frame found
 * malformed anywhere is rejected whole, so what was decoded before is
 * dropped. (Until session 23 a structural pre-scan walked the frame first
 * and msgpack_unpack() then made each event's object tree: three walks.)
 *
 * Order of checks, first hit wins:
 *   frame:  oversize (len > max_frame_bytes), malformed (anywhere in it),
 *           batch_too_large (array longer than max_batch_events);
 *   event:  not_a_map; duplicate_key (first known key seen twice, in wire
 *           order); then per field, in SPEC table order creator, type, ts, id,
 *           n, followers, niche, actor, post, sponsored: bad_type (wrong
 *           msgpack type), missing_* (required and absent or nil), bad_*
 *           (out of bounds); last, future (needs a valid ts and the clock).
 * Any msgpack type other than the listed ones is bad_type, including for
 * actor (str/bin of the wrong length is bad_actor). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "decode.h"
#include "mpread.h"

#define CREATOR_MAX 128
#define ID_MAX 64
#define NICHE_MAX 64
#define ACTOR_MAX 128
#define POST_MAX 128
#define N_MAX 1000000
#define FOLLOWERS_MAX 10000000000LL

struct decoder {
    decode_limits lim;
};

decoder *decoder_new(const decode_limits *lim) {
    decoder *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->lim = *lim;
    return d;
}

void decoder_destroy(decoder **d) {
    if (!d || !*d)
        return;
    free(*d);
    *d = NULL;
}

void decoder_set_limits(decoder *d, const decode_limits *lim) { d->lim = *lim; }

/* ---- structure ------------------------------------------------------- */

/* The frame's first header into *h, when it opens a map or an array: a
 * top-level scalar is no event. Its count is not checked yet. */
static bool top_is_container(const uint8_t *p, size_t len, mp_head *h) {
    return len > 0 && mp_head_parse(p, len, h) == 0 && h->container;
}

/* The frame is one map or array, well formed, with nothing after it. Read
 * alone: for batches too large to decode (malformed wins) and for other
 * readers (decode_prescan). */
static int frame_ok(const uint8_t *p, size_t len) {
    mpread r;
    mp_head h;
    mpread_init(&r, p, len);
    if (!top_is_container(p, len, &h))
        return -1;
    return mpread_skip(&r) == 0 && r.pos == len ? 0 : -1;
}

int decode_prescan(const void *data, size_t len) {
    return frame_ok(data, len) < 0 ? -EBADMSG : 0;
}

/* ---- one event -------------------------------------------------------- */

enum {
    K_CREATOR, K_TYPE, K_TS, K_ID, K_N, K_FOLLOWERS, K_NICHE, K_ACTOR, K_POST,
    K_SPONSORED, K__COUNT
};

/* Known key for a msgpack str, or -1. Switch on length, then compare. */
static int key_index(const char *s, uint32_t n) {
    switch (n) {
    case 1: return s[0] == 'n' ? K_N : -1;
    case 2:
        if (memcmp(s, "ts", 2) == 0) return K_TS;
        if (memcmp(s, "id", 2) == 0) return K_ID;
        return -1;
    case 4:
        if (memcmp(s, "type", 4) == 0) return K_TYPE;
        if (memcmp(s, "post", 4) == 0) return K_POST;
        return -1;
    case 5:
        if (memcmp(s, "niche", 5) == 0) return K_NICHE;
        if (memcmp(s, "actor", 5) == 0) return K_ACTOR;
        return -1;
    case 7: return memcmp(s, "creator", 7) == 0 ? K_CREATOR : -1;
    case 9:
        if (memcmp(s, "followers", 9) == 0) return K_FOLLOWERS;
        if (memcmp(s, "sponsored", 9) == 0) return K_SPONSORED;
        return -1;
    default: return -1;
    }
}

/* A known key's value as read in place. The kinds are the ones SPEC §3's
 * fields tell apart; an int is V_UINT when >= 0 in any encoding (signed ones
 * included, as msgpack-c unpacked them), V_INT only when negative. Strings
 * point into the frame. */
typedef enum val_kind {
    V_ABSENT = 0, /* key not in the map */
    V_NIL, V_BOOL, V_UINT, V_INT, V_STR, V_BIN,
    V_OTHER /* float, ext, array, map */
} val_kind;

typedef struct val {
    val_kind kind;
    union {
        uint64_t u;
        int64_t i;
        bool b;
        struct {
            const char *ptr;
            uint32_t len;
        } s;
    } via;
} val;

static inline bool absent(const val *o) { return o->kind <= V_NIL; }

static inline bool cont(uint8_t c) { return (c & 0xc0) == 0x80; }

/* 8 bytes of printable ASCII: none has the high bit, none is below 0x20
 * (the "hasless" test, exact for bytes below 0x80), none is DEL. */
static inline bool printable8(const uint8_t *s) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t w, del;
    memcpy(&w, s, sizeof w);
    del = w ^ (0x7f * ones);
    return !(w & highs) && !((w - 0x20 * ones) & ~w & highs) && !((del - ones) & ~del & highs);
}

/* Valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF) with no
 * control character: C0, DEL, or C1 (U+0080..U+009F, encoded C2 80..C2 9F).
 * Printable ASCII, what most creator names are, goes 8 bytes at a time. */
static bool creator_text_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (n - i >= 8 && printable8(s + i))
        i += 8;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
        } else if (c < 0xc2) { /* stray continuation, or overlong C0/C1 lead */
            return false;
        } else if (c < 0xe0) {
            if (n - i < 2 || !cont(s[i + 1]) || (c == 0xc2 && s[i + 1] < 0xa0))
                return false;
            i += 2;
        } else if (c < 0xf0) {
            if (n - i < 3 || !cont(s[i + 1]) || !cont(s[i + 2]))
                return false;
            if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0))
                return false; /* overlong, surrogate */
            i += 3;
        } else if (c < 0xf5) {
            if (n - i < 4 || !cont(s[i + 1]) || !cont(s[i + 2]) || !cont(s[i + 3]))
                return false;
            if ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
                return false; /* overlong, past U+10FFFF */
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

static bool niche_text_ok(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A string field (str or bin, the same bytes) of 1..max bytes into *ref.
 * Absent or nil leaves *ref empty. */
static reject_reason field_bytes(const val *o, uint32_t max, reject_reason bad,
                                 strref *ref) {
    if (absent(o))
        return REJECT_NONE;
    if (o->kind != V_STR && o->kind != V_BIN)
        return REJECT_BAD_TYPE;
    if (o->via.s.len == 0 || o->via.s.len > max)
        return bad;
    ref->ptr = o->via.s.ptr;
    ref->len = o->via.s.len;
    return REJECT_NONE;
}

/* An int field within lo..hi (hi >= 0) into *v; absent or nil leaves *v.
 * Both msgpack int families are compared without wrapping. */
static reject_reason field_int(const val *o, int64_t lo, int64_t hi, reject_reason bad,
                               int64_t *v) {
    int64_t x;

    if (absent(o))
        return REJECT_NONE;
    if (o->kind == V_UINT) {
        if (o->via.u > (uint64_t)hi)
            return bad;
        x = (int64_t)o->via.u;
    } else if (o->kind == V_INT) {
        x = o->via.i;
    } else {
        return REJECT_BAD_TYPE;
    }
    if (x < lo || x > hi)
        return bad;
    *v = x;
    return REJECT_NONE;
}

/* actor: str/bin 1..128 bytes, or any int (as its decimal, SPEC §3). */
static reject_reason field_actor(const val *o, event *ev) {
    if (absent(o))
        return REJECT_NONE;
    if (o->kind == V_UINT) {
        ev->actor.ptr = NULL;
        ev->actor.len = decimal_format(ev->actor_num, false, o->via.u);
        return REJECT_NONE;
    }
    if (o->kind == V_INT) {
        ev->actor.ptr = NULL;
        /* Negate in unsigned arithmetic: INT64_MIN has no int64 opposite. */
        ev->actor.len = decimal_format(ev->actor_num, true, 0 - (uint64_t)o->via.i);
        return REJECT_NONE;
    }
    return field_bytes(o, ACTOR_MAX, REJECT_BAD_ACTOR, &ev->actor);
}

static reject_reason field_creator(const val *o, event *ev) {
    if (absent(o))
        return REJECT_MISSING_CREATOR;
    reject_reason r = field_bytes(o, CREATOR_MAX, REJECT_BAD_CREATOR, &ev->creator);
    if (r)
        return r;
    if (!creator_text_ok((const uint8_t *)ev->creator.ptr, ev->creator.len))
        return REJECT_BAD_CREATOR;
    return REJECT_NONE;
}

static reject_reason field_type(const val *o, event *ev) {
    strref s = {0};
    if (absent(o))
        return REJECT_MISSING_TYPE;
    /* Longer than any type name: unknown_type rather than a length error. */
    reject_reason r = field_bytes(o, UINT32_MAX, REJECT_UNKNOWN_TYPE, &s);
    if (r)
        return r;
    int t = event_type_parse(s.ptr, s.len);
    if (t < 0)
        return REJECT_UNKNOWN_TYPE;
    ev->type = (event_type)t;
    return REJECT_NONE;
}

static reject_reason field_niche(const val *o, event *ev) {
    reject_reason r = field_bytes(o, NICHE_MAX, REJECT_BAD_NICHE, &ev->niche);
    if (r)
        return r;
    if (ev->niche.len && !niche_text_ok((const uint8_t *)ev->niche.ptr, ev->niche.len))
        return REJECT_BAD_NICHE;
    return REJECT_NONE;
}

static reject_reason field_sponsored(const val *o, event *ev) {
    if (absent(o))
        return REJECT_NONE;
    if (o->kind != V_BOOL)
        return REJECT_BAD_TYPE;
    ev->sponsored = o->via.b ? 1 : 0;
    return REJECT_NONE;
}

/* ts beyond now_ms + future_ms, without overflowing near INT64_MAX. */
static bool in_future(int64_t ts, int64_t now_ms, int64_t future_ms) {
    int64_t limit;
    if (__builtin_add_overflow(now_ms, future_ms, &limit))
        return future_ms < 0; /* limit past either end of int64 */
    return ts > limit;
}

/* The value at the cursor, at nesting depth `depth`, which moves past it.
 * -1 when it is cut short or malformed. */
static int read_val(mpread *r, val *v, unsigned depth) {
    mp_head h;
    size_t at = r->pos;

    if (mpread_head(r, &h) < 0) /* also when the bytes end before the value */
        return -1;
    uint8_t b = r->p[at];
    const uint8_t *body = r->p + r->pos;
    uint64_t u = 0;
    if (b <= 0x7f) {
        *v = (val){.kind = V_UINT, .via.u = b};
    } else if (b >= 0xe0) {
        *v = (val){.kind = V_INT, .via.i = (int8_t)b};
    } else if (b == 0xc0) {
        v->kind = V_NIL;
    } else if (b == 0xc2 || b == 0xc3) {
        *v = (val){.kind = V_BOOL, .via.b = b == 0xc3};
    } else if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb) ||
               (b >= 0xc4 && b <= 0xc6)) {
        /* decode_frame() refused frames of 4 GiB and more: the length fits. */
        v->kind = b >= 0xc4 && b <= 0xc6 ? V_BIN : V_STR;
        v->via.s.ptr = (const char *)body;
        v->via.s.len = (uint32_t)h.body;
    } else if (b >= 0xcc && b <= 0xd3) {
        for (unsigned i = 0; i < h.body; i++)
            u = u << 8 | body[i];
        if (b >= 0xd0) { /* int 8/16/32/64 */
            int64_t x = b == 0xd0 ? (int8_t)u : b == 0xd1 ? (int16_t)u
                      : b == 0xd2 ? (int32_t)u : (int64_t)u;
            *v = x < 0 ? (val){.kind = V_INT, .via.i = x}
                       : (val){.kind = V_UINT, .via.u = (uint64_t)x};
        } else {
            *v = (val){.kind = V_UINT, .via.u = u};
        }
    } else {
        v->kind = V_OTHER; /* float, ext, or a container, skipped whole */
        if (h.container) {
            r->pos = at;
            return mpread_skip_at(r, depth);
        }
    }
    if (!h.container)
        r->pos += (size_t)h.body;
    return 0;
}

/* Reads the pairs of the map of count pairs at the cursor, whose keys and
 * values sit at depth: each known key's value into v[] (V_ABSENT stays for
 * keys not there), the rest walked over. Returns REJECT_NONE,
 * REJECT_DUPLICATE_KEY (the first known key seen twice; the rest of the map
 * is still walked, for malformed bytes after it), or -1 when malformed. */
static int read_fields(mpread *r, uint32_t count, unsigned depth, val v[K__COUNT]) {
    int reason = REJECT_NONE;
    for (uint32_t i = 0; i < count; i++) {
        const char *key;
        size_t klen;
        int k = -1;
        if (mpread_str(r, &key, &klen))
            k = key_index(key, (uint32_t)klen);
        else if (mpread_skip_at(r, depth) < 0) /* forward compatibility: not ours */
            return -1;
        if (k >= 0 && v[k].kind != V_ABSENT)
            reason = REJECT_DUPLICATE_KEY;
        if (k < 0 || reason) {
            if (mpread_skip_at(r, depth) < 0)
                return -1;
            continue;
        }
        if (read_val(r, &v[k], depth) < 0)
            return -1;
    }
    return reason;
}

/* Validates one event's fields into *ev (see the file comment for the order). */
static reject_reason event_from_fields(const val v[K__COUNT], int64_t now_ms,
                                       int64_t future_ms, event *ev) {
    reject_reason r;

    if ((r = field_creator(&v[K_CREATOR], ev)) || (r = field_type(&v[K_TYPE], ev)))
        return r;
    if (absent(&v[K_TS]))
        return REJECT_MISSING_TS;
    if ((r = field_int(&v[K_TS], 1, INT64_MAX, REJECT_BAD_TS, &ev->ts)) ||
        (r = field_bytes(&v[K_ID], ID_MAX, REJECT_BAD_ID, &ev->id)) ||
        (r = field_int(&v[K_N], 1, N_MAX, REJECT_BAD_N, &ev->n)) ||
        (r = field_int(&v[K_FOLLOWERS], 0, FOLLOWERS_MAX, REJECT_BAD_FOLLOWERS,
                       &ev->followers)) ||
        (r = field_niche(&v[K_NICHE], ev)) || (r = field_actor(&v[K_ACTOR], ev)) ||
        (r = field_bytes(&v[K_POST], POST_MAX, REJECT_BAD_POST, &ev->post)) ||
        (r = field_sponsored(&v[K_SPONSORED], ev)))
        return r;
    if (in_future(ev->ts, now_ms, future_ms))
        return REJECT_FUTURE;
    return REJECT_NONE;
}

static inline bool is_map_head(uint8_t b) {
    return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

static inline void event_reset(event *ev, const uint8_t *raw, size_t len) {
    *ev = (event){
        .raw = {(const char *)raw, (uint32_t)len}, .n = 1, .followers = -1, .sponsored = -1,
    };
}

/* Decodes the event at the cursor, an element of the frame at depth (1 in a
 * batch, 0 alone), into *item, and moves past it. Returns 0, or -1 when its
 * bytes are malformed. */
static int decode_unit(const decoder *d, mpread *r, unsigned depth, int64_t now_ms,
                       decode_item *item) {
    val v[K__COUNT] = {0};
    size_t start = r->pos;
    int rc = REJECT_NOT_A_MAP;
    mp_head h;

    if (start >= r->len) /* a batch declaring more events than its bytes hold */
        return -1;
    event_reset(&item->ev, r->p + start, 0);
    if (!is_map_head(r->p[start])) {
        if (mpread_skip_at(r, depth) < 0)
            return -1;
    } else {
        if (mpread_head(r, &h) < 0 || depth >= MPREAD_MAX_DEPTH)
            return -1;
        if ((rc = read_fields(r, h.count, depth + 1, v)) < 0)
            return -1;
        if (rc == REJECT_NONE)
            rc = (int)event_from_fields(v, now_ms, d->lim.future_ms, &item->ev);
    }
    item->reason = (reject_reason)rc;
    item->ev.raw.len = (uint32_t)(r->pos - start);
    return 0;
}

/* ---- frames ----------------------------------------------------------- */

static int frame_reject(reject_reason why, const void *data, size_t len, decode_item *items,
                        size_t *ret_n, bool *ret_whole) {
    items[0].reason = why;
    event_reset(&items[0].ev, data, len);
    *ret_n = 1;
    *ret_whole = true;
    return 0;
}

/* The elements of a batch, count of them after its header at the cursor. */
static int decode_batch(const decoder *d, mpread *r, size_t count, int64_t now_ms,
                        decode_item *items) {
    for (size_t n = 0; n < count; n++)
        if (decode_unit(d, r, 1, now_ms, &items[n]) < 0)
            return -1;
    return 0;
}

int decode_frame(decoder *d, const void *data, size_t len, int64_t now_ms,
                 decode_item *items, size_t cap, size_t *ret_n, bool *ret_whole) {
    size_t max_items = d->lim.max_batch_events < cap ? d->lim.max_batch_events : cap;
    mpread r;
    mp_head h;
    size_t n = 1;
    int rc;

    if (cap == 0)
        return -EINVAL;
    /* strref lengths are 32-bit: larger frames are oversize whatever the limit. */
    if (len > d->lim.max_frame_bytes || len > UINT32_MAX)
        return frame_reject(REJECT_OVERSIZE, data, len, items, ret_n, ret_whole);
    mpread_init(&r, data, len);
    if (!top_is_container(data, len, &h)) {
        rc = -1;
    } else if (!h.array) {
        rc = decode_unit(d, &r, 0, now_ms, &items[0]);
    } else if (h.count > max_items) {
        if (frame_ok(data, len) < 0)
            return frame_reject(REJECT_MALFORMED, data, len, items, ret_n, ret_whole);
        return frame_reject(REJECT_BATCH_TOO_LARGE, data, len, items, ret_n, ret_whole);
    } else {
        n = h.count;
        rc = mpread_head(&r, &h) < 0 ? -1 : decode_batch(d, &r, n, now_ms, items);
    }
    if (rc < 0 || r.pos != len)
        return frame_reject(REJECT_MALFORMED, data, len, items, ret_n, ret_whole);
    *ret_n = n;
    *ret_whole = false;
    return 0;
}
