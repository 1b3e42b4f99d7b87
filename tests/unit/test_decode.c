/* test_decode.c -- decode.c: every rejection reason, every bound, batches,
 * and hostile frames (amplification headers, deep nesting, truncation).
 *
 * Event frames are built with msgpack-c's packer from a valid base event
 * (creator, type, ts) plus per-case overrides; hostile frames are written out
 * byte by byte. Run under ASan+UBSan: an amplification header that reached
 * msgpack-c would make ASan abort on a multi-gigabyte allocation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "decode.h"

#define NOW 1700000000000LL
#define TS (NOW - 1000)
#define MAX_FRAME (1u << 20)
#define MAX_BATCH 10000
#define FUTURE_MS 300000

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static const decode_limits LIMITS = {MAX_FRAME, MAX_BATCH, FUTURE_MS};

/* 'a' x 300, filled before the tests run; table entries point into it. */
static char LONG[300];

/* ---- frame building ---------------------------------------------------- */

enum vkind {
    V_END, V_STR, V_BIN, V_INT, V_UINT, V_F64, V_F32, V_BOOL, V_NIL, V_OMIT,
    V_RAW,    /* s holds msgpack bytes, written as they are */
    V_INTKEY, /* a pair whose key is the int i and value the str s */
    V_BINKEY, /* a pair whose key is key as bin and value the str s */
};

typedef struct kv {
    const char *key;
    enum vkind kind;
    const char *s;
    size_t len;
    int64_t i;
    uint64_t u;
    double d;
    bool add; /* append even when the key is already there */
} kv;

#define S(k, v) {.key = k, .kind = V_STR, .s = v, .len = sizeof(v) - 1}
#define SN(k, p, n) {.key = k, .kind = V_STR, .s = p, .len = n}
#define B(k, v) {.key = k, .kind = V_BIN, .s = v, .len = sizeof(v) - 1}
#define BN(k, p, n) {.key = k, .kind = V_BIN, .s = p, .len = n}
#define I(k, v) {.key = k, .kind = V_INT, .i = v}
#define U(k, v) {.key = k, .kind = V_UINT, .u = v}
#define F64(k, v) {.key = k, .kind = V_F64, .d = v}
#define F32(k, v) {.key = k, .kind = V_F32, .d = v}
#define BOOL(k, v) {.key = k, .kind = V_BOOL, .i = v}
#define NIL(k) {.key = k, .kind = V_NIL}
#define OMIT(k) {.key = k, .kind = V_OMIT}
#define RAW(k, v) {.key = k, .kind = V_RAW, .s = v, .len = sizeof(v) - 1}
#define ADD_I(k, v) {.key = k, .kind = V_INT, .i = v, .add = true}
#define ADD_S(k, v) {.key = k, .kind = V_STR, .s = v, .len = sizeof(v) - 1, .add = true}
#define ADD_NIL(k) {.key = k, .kind = V_NIL, .add = true}
#define INTKEY(k, v) {.kind = V_INTKEY, .i = k, .s = v, .len = sizeof(v) - 1, .add = true}
#define BINKEY(k, v) {.key = k, .kind = V_BINKEY, .s = v, .len = sizeof(v) - 1, .add = true}

#define MAX_OVER 6
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void pack_bytes(msgpack_packer *pk, bool bin, const char *s, size_t n) {
    if (bin) {
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, s, n);
    } else {
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, s, n);
    }
}

static void pack_value(msgpack_sbuffer *sb, msgpack_packer *pk, const kv *f) {
    switch (f->kind) {
    case V_STR: case V_INTKEY: case V_BINKEY: pack_bytes(pk, false, f->s, f->len); break;
    case V_BIN: pack_bytes(pk, true, f->s, f->len); break;
    case V_INT: msgpack_pack_int64(pk, f->i); break;
    case V_UINT: msgpack_pack_uint64(pk, f->u); break;
    case V_F64: msgpack_pack_double(pk, f->d); break;
    case V_F32: msgpack_pack_float(pk, (float)f->d); break;
    case V_BOOL:
        if (f->i)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case V_NIL: msgpack_pack_nil(pk); break;
    case V_RAW: msgpack_sbuffer_write(sb, f->s, f->len); break;
    default: fail_msg("bad kind %d", f->kind);
    }
}

static void pack_key(msgpack_packer *pk, const kv *f) {
    if (f->kind == V_INTKEY)
        msgpack_pack_int64(pk, f->i);
    else
        pack_bytes(pk, f->kind == V_BINKEY, f->key, strlen(f->key));
}

/* Appends one event map to sb: creator, type and ts, with over[] replacing,
 * removing (V_OMIT) or adding (unknown key, or .add) pairs. */
static void pack_event(msgpack_sbuffer *sb, const kv *over, size_t nover) {
    kv f[3 + MAX_OVER] = {
        S("creator", "ig:alice_knits"),
        S("type", "like"),
        I("ts", TS),
    };
    size_t n = 3;
    assert_true(nover <= MAX_OVER);
    for (size_t j = 0; j < nover && over[j].kind != V_END; j++) {
        size_t k = 0;
        while (!over[j].add && k < n && (!f[k].key || strcmp(f[k].key, over[j].key) != 0))
            k++;
        if (over[j].add || k == n)
            f[n++] = over[j];
        else
            f[k] = over[j];
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    size_t pairs = 0;
    for (size_t k = 0; k < n; k++)
        pairs += f[k].kind != V_OMIT;
    msgpack_pack_map(&pk, pairs);
    for (size_t k = 0; k < n; k++) {
        if (f[k].kind == V_OMIT)
            continue;
        pack_key(&pk, &f[k]);
        pack_value(sb, &pk, &f[k]);
    }
}

static void pack_array_head(msgpack_sbuffer *sb, size_t n) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
}

/* The event with every optional field set. */
static const kv FULL[] = {
    S("id", "ev-0001"), I("n", 3), I("followers", 4200), S("niche", "knitting"),
    S("actor", "u:bob"), S("post", "p:42"),
};

/* ---- fixture ----------------------------------------------------------- */

typedef struct fx {
    decoder *d;
    decode_item *items;
    size_t n;
    bool whole;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->d = decoder_new(&LIMITS);
    f->items = calloc(MAX_BATCH, sizeof *f->items);
    if (!f->d || !f->items)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    decoder_destroy(&f->d);
    assert_null(f->d);
    free(f->items);
    free(f);
    return 0;
}

static void decode(fx *f, const void *p, size_t len) {
    f->n = SIZE_MAX;
    assert_int_equal(decode_frame(f->d, p, len, NOW, f->items, MAX_BATCH, &f->n, &f->whole), 0);
    assert_true(f->n <= MAX_BATCH);
}

static bool strref_eq(strref r, const char *s) {
    return r.len == strlen(s) && r.ptr && memcmp(r.ptr, s, r.len) == 0;
}

static void expect_whole(fx *f, reject_reason why, const void *p, size_t len) {
    if (f->n != 1 || !f->whole || f->items[0].reason != why)
        fail_msg("got n=%zu whole=%d %s, expected whole %s", f->n, f->whole,
                 reject_reason_name(f->items[0].reason), reject_reason_name(why));
    assert_ptr_equal(f->items[0].ev.raw.ptr, p);
    assert_int_equal(f->items[0].ev.raw.len, len);
}

/* ---- one event per case ------------------------------------------------ */

typedef struct ecase {
    const char *name;
    reject_reason want;
    kv over[MAX_OVER];
} ecase;

static const ecase EVENT_CASES[] = {
    {"minimal", REJECT_NONE, {{0}}},
    {"every field", REJECT_NONE, {S("id", "x"), I("n", 2), I("followers", 5), S("niche", "a"),
                                  S("actor", "b"), BOOL("sponsored", 1)}},
    {"bin strings", REJECT_NONE, {B("creator", "ig:a"), B("type", "save"), B("id", "i"),
                                  B("niche", "knit"), B("actor", "u"), B("post", "p")}},

    {"creator missing", REJECT_MISSING_CREATOR, {OMIT("creator")}},
    {"creator nil", REJECT_MISSING_CREATOR, {NIL("creator")}},
    {"creator only as bin key", REJECT_MISSING_CREATOR, {OMIT("creator"), BINKEY("creator", "x")}},
    {"creator int", REJECT_BAD_TYPE, {I("creator", 7)}},
    {"creator array", REJECT_BAD_TYPE, {RAW("creator", "\x91\xa1x")}},
    {"creator 128 bytes", REJECT_NONE, {SN("creator", LONG, 128)}},
    {"creator 129 bytes", REJECT_BAD_CREATOR, {SN("creator", LONG, 129)}},
    {"creator 129 bytes bin", REJECT_BAD_CREATOR, {BN("creator", LONG, 129)}},
    {"creator empty", REJECT_BAD_CREATOR, {S("creator", "")}},
    {"creator utf8 e-acute", REJECT_NONE, {S("creator", "caf\xc3\xa9")}},
    {"creator utf8 nbsp", REJECT_NONE, {S("creator", "a\xc2\xa0" "b")}},
    {"creator utf8 U+D7FF", REJECT_NONE, {S("creator", "\xed\x9f\xbf")}},
    {"creator utf8 U+FFFD", REJECT_NONE, {S("creator", "\xef\xbf\xbd")}},
    {"creator utf8 emoji", REJECT_NONE, {S("creator", "\xf0\x9f\x98\x80")}},
    {"creator utf8 U+10FFFF", REJECT_NONE, {S("creator", "\xf4\x8f\xbf\xbf")}},
    {"creator NUL", REJECT_BAD_CREATOR, {SN("creator", "a\0b", 3)}},
    {"creator tab", REJECT_BAD_CREATOR, {S("creator", "a\tb")}},
    {"creator DEL", REJECT_BAD_CREATOR, {S("creator", "a\x7f")}},
    {"creator C1 U+0080", REJECT_BAD_CREATOR, {S("creator", "\xc2\x80")}},
    {"creator C1 U+009F", REJECT_BAD_CREATOR, {S("creator", "\xc2\x9f")}},
    {"creator overlong 2", REJECT_BAD_CREATOR, {S("creator", "\xc0\xaf")}},
    {"creator overlong 2 C1", REJECT_BAD_CREATOR, {S("creator", "\xc1\xbf")}},
    {"creator overlong 3", REJECT_BAD_CREATOR, {S("creator", "\xe0\x80\xaf")}},
    {"creator overlong 4", REJECT_BAD_CREATOR, {S("creator", "\xf0\x80\x80\xaf")}},
    {"creator surrogate", REJECT_BAD_CREATOR, {S("creator", "\xed\xa0\x80")}},
    {"creator past U+10FFFF", REJECT_BAD_CREATOR, {S("creator", "\xf4\x90\x80\x80")}},
    {"creator F5 lead", REJECT_BAD_CREATOR, {S("creator", "\xf5\x80\x80\x80")}},
    {"creator FF", REJECT_BAD_CREATOR, {S("creator", "a\xff")}},
    {"creator lone continuation", REJECT_BAD_CREATOR, {S("creator", "a\x80")}},
    {"creator cut sequence", REJECT_BAD_CREATOR, {S("creator", "a\xe2\x82")}},
    {"creator bad continuation", REJECT_BAD_CREATOR, {S("creator", "\xe2\x28\xa1")}},

    {"type missing", REJECT_MISSING_TYPE, {OMIT("type")}},
    {"type nil", REJECT_MISSING_TYPE, {NIL("type")}},
    {"type int", REJECT_BAD_TYPE, {I("type", 1)}},
    {"type bool", REJECT_BAD_TYPE, {BOOL("type", 1)}},
    {"type upper case", REJECT_UNKNOWN_TYPE, {S("type", "LIKE")}},
    {"type plural", REJECT_UNKNOWN_TYPE, {S("type", "likes")}},
    {"type empty", REJECT_UNKNOWN_TYPE, {S("type", "")}},
    {"type long", REJECT_UNKNOWN_TYPE, {SN("type", LONG, 300)}},
    {"type bin", REJECT_NONE, {B("type", "mention")}},

    {"ts missing", REJECT_MISSING_TS, {OMIT("ts")}},
    {"ts nil", REJECT_MISSING_TS, {NIL("ts")}},
    {"ts float 3.0", REJECT_BAD_TYPE, {F64("ts", 3.0)}},
    {"ts float32", REJECT_BAD_TYPE, {F32("ts", 3.0)}},
    {"ts str", REJECT_BAD_TYPE, {S("ts", "1700000000000")}},
    {"ts zero", REJECT_BAD_TS, {I("ts", 0)}},
    {"ts negative", REJECT_BAD_TS, {I("ts", -1)}},
    {"ts int64 min", REJECT_BAD_TS, {I("ts", INT64_MIN)}},
    {"ts above int64", REJECT_BAD_TS, {U("ts", (uint64_t)INT64_MAX + 1)}},
    {"ts uint64 max", REJECT_BAD_TS, {U("ts", UINT64_MAX)}},
    {"ts one", REJECT_NONE, {I("ts", 1)}},
    {"ts at future bound", REJECT_NONE, {I("ts", NOW + FUTURE_MS)}},
    {"ts past future bound", REJECT_FUTURE, {I("ts", NOW + FUTURE_MS + 1)}},
    {"ts int64 max", REJECT_FUTURE, {I("ts", INT64_MAX)}},

    {"id nil", REJECT_NONE, {NIL("id")}},
    {"id 64 bytes", REJECT_NONE, {SN("id", LONG, 64)}},
    {"id 64 bytes bin", REJECT_NONE, {BN("id", LONG, 64)}},
    {"id 65 bytes", REJECT_BAD_ID, {SN("id", LONG, 65)}},
    {"id empty", REJECT_BAD_ID, {S("id", "")}},
    {"id empty bin", REJECT_BAD_ID, {B("id", "")}},
    {"id int", REJECT_BAD_TYPE, {I("id", 5)}},

    {"n nil", REJECT_NONE, {NIL("n")}},
    {"n one", REJECT_NONE, {I("n", 1)}},
    {"n 1e6", REJECT_NONE, {I("n", 1000000)}},
    {"n 1e6+1", REJECT_BAD_N, {I("n", 1000001)}},
    {"n zero", REJECT_BAD_N, {I("n", 0)}},
    {"n negative", REJECT_BAD_N, {I("n", -5)}},
    {"n uint64 max", REJECT_BAD_N, {U("n", UINT64_MAX)}},
    {"n float 3.0", REJECT_BAD_TYPE, {F64("n", 3.0)}},
    {"n str", REJECT_BAD_TYPE, {S("n", "3")}},

    {"followers nil", REJECT_NONE, {NIL("followers")}},
    {"followers zero", REJECT_NONE, {I("followers", 0)}},
    {"followers 1e10", REJECT_NONE, {I("followers", 10000000000LL)}},
    {"followers 1e10+1", REJECT_BAD_FOLLOWERS, {I("followers", 10000000001LL)}},
    {"followers negative", REJECT_BAD_FOLLOWERS, {I("followers", -1)}},
    {"followers float", REJECT_BAD_TYPE, {F64("followers", 1000.0)}},

    {"niche nil", REJECT_NONE, {NIL("niche")}},
    {"niche charset", REJECT_NONE, {S("niche", "a-z_0-9")}},
    {"niche 64 bytes", REJECT_NONE, {SN("niche", LONG, 64)}},
    {"niche 65 bytes", REJECT_BAD_NICHE, {SN("niche", LONG, 65)}},
    {"niche empty", REJECT_BAD_NICHE, {S("niche", "")}},
    {"niche upper case", REJECT_BAD_NICHE, {S("niche", "Knit")}},
    {"niche space", REJECT_BAD_NICHE, {S("niche", "a b")}},
    {"niche dot", REJECT_BAD_NICHE, {S("niche", "a.b")}},
    {"niche utf8", REJECT_BAD_NICHE, {S("niche", "caf\xc3\xa9")}},
    {"niche int", REJECT_BAD_TYPE, {I("niche", 1)}},

    {"actor nil", REJECT_NONE, {NIL("actor")}},
    {"actor 128 bytes", REJECT_NONE, {SN("actor", LONG, 128)}},
    {"actor 129 bytes", REJECT_BAD_ACTOR, {SN("actor", LONG, 129)}},
    {"actor 129 bytes bin", REJECT_BAD_ACTOR, {BN("actor", LONG, 129)}},
    {"actor empty", REJECT_BAD_ACTOR, {S("actor", "")}},
    {"actor int", REJECT_NONE, {I("actor", 42)}},
    {"actor negative int", REJECT_NONE, {I("actor", -42)}},
    {"actor float", REJECT_BAD_TYPE, {F64("actor", 42.0)}},
    {"actor bool", REJECT_BAD_TYPE, {BOOL("actor", 1)}},

    {"post 128 bytes", REJECT_NONE, {SN("post", LONG, 128)}},
    {"post 129 bytes", REJECT_BAD_POST, {SN("post", LONG, 129)}},
    {"post empty", REJECT_BAD_POST, {S("post", "")}},
    {"post int", REJECT_BAD_TYPE, {I("post", 9)}},

    {"sponsored true", REJECT_NONE, {BOOL("sponsored", 1)}},
    {"sponsored false", REJECT_NONE, {BOOL("sponsored", 0)}},
    {"sponsored nil", REJECT_NONE, {NIL("sponsored")}},
    {"sponsored int", REJECT_BAD_TYPE, {I("sponsored", 1)}},
    {"sponsored str", REJECT_BAD_TYPE, {S("sponsored", "true")}},
    {"sponsored empty map", REJECT_BAD_TYPE, {RAW("sponsored", "\x80")}},
    {"n fixext", REJECT_BAD_TYPE, {RAW("n", "\xd4\x01\x02")}},
    {"n ext8", REJECT_BAD_TYPE, {RAW("n", "\xc7\x01\x05\x00")}},
    {"n array", REJECT_BAD_TYPE, {RAW("n", "\x91\x01")}},
    {"creator map", REJECT_BAD_TYPE, {RAW("creator", "\x81\xa1x\xa1y")}},
    {"followers nested array", REJECT_BAD_TYPE, {RAW("followers", "\x92\x91\x01\x80")}},

    {"duplicate ts", REJECT_DUPLICATE_KEY, {ADD_I("ts", TS)}},
    {"duplicate creator", REJECT_DUPLICATE_KEY, {ADD_S("creator", "ig:alice_knits")}},
    {"duplicate nil id", REJECT_DUPLICATE_KEY, {NIL("id"), ADD_NIL("id")}},
    {"duplicate after a nested value", REJECT_DUPLICATE_KEY,
     {RAW("x", "\x92\x81\xa2ts\x01\x90"), ADD_I("ts", TS)}},
    {"duplicate of an array-valued key", REJECT_DUPLICATE_KEY,
     {RAW("n", "\x91\x01"), ADD_I("n", 1)}},
    {"unknown key twice", REJECT_NONE, {ADD_I("x", 1), ADD_I("x", 2)}},
    {"unknown key nested", REJECT_NONE, {RAW("extra", "\x81\xa1" "a\x93\x01\x02\x81\xa1" "b\xc0")}},
    {"unknown key ext", REJECT_NONE, {RAW("extra", "\xd4\x01\x02"), RAW("e2", "\xc7\x00\x05")}},
    {"unknown key float", REJECT_NONE, {F64("score", 0.5)}},
    {"int key ignored", REJECT_NONE, {INTKEY(1, "x"), INTKEY(-1, "y")}},
    {"bin key ts ignored", REJECT_NONE, {BINKEY("ts", "not an int")}},
    {"prefix of a key", REJECT_NONE, {ADD_I("t", 1), ADD_I("creators", 1), ADD_I("", 1)}},

    /* first problem in the documented order */
    {"order: duplicate before missing", REJECT_DUPLICATE_KEY, {OMIT("creator"), ADD_I("n", 1),
                                                               ADD_I("n", 2)}},
    {"order: creator before ts", REJECT_BAD_CREATOR, {S("creator", ""), I("ts", 0)}},
    {"order: missing type before bad ts", REJECT_MISSING_TYPE, {OMIT("type"), I("ts", -1)}},
    {"order: ts type before niche", REJECT_BAD_TYPE, {F64("ts", 1.0), S("niche", "X")}},
    {"order: post before sponsored", REJECT_BAD_POST, {S("post", ""), I("sponsored", 1)}},
    {"order: field before future", REJECT_BAD_NICHE, {I("ts", INT64_MAX), S("niche", "X")}},
};

static void test_event_table(void **state) {
    fx *f = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t c = 0; c < sizeof EVENT_CASES / sizeof EVENT_CASES[0]; c++) {
        const ecase *ec = &EVENT_CASES[c];
        msgpack_sbuffer_clear(&sb);
        pack_event(&sb, ec->over, MAX_OVER);
        decode(f, sb.data, sb.size);
        if (f->n != 1 || f->whole || f->items[0].reason != ec->want)
            fail_msg("case '%s': n=%zu whole=%d %s, expected %s", ec->name, f->n, f->whole,
                     reject_reason_name(f->items[0].reason), reject_reason_name(ec->want));
        /* A single map is its own unit: raw is the whole frame. */
        assert_ptr_equal(f->items[0].ev.raw.ptr, sb.data);
        assert_int_equal(f->items[0].ev.raw.len, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ---- hand-written frames ----------------------------------------------- */

typedef struct fcase {
    const char *name;
    const char *bytes;
    size_t len;
    reject_reason want; /* for one item */
    bool whole;
    size_t max_frame, max_batch; /* 0: defaults */
} fcase;

#define FR(name, b, want, whole) {name, b, sizeof(b) - 1, want, whole, 0, 0}
#define FRL(name, b, want, mf, mb) {name, b, sizeof(b) - 1, want, true, mf, mb}

static const fcase FRAME_CASES[] = {
    {"empty", "", 0, REJECT_MALFORMED, true, 0, 0},
    FR("top int", "\x01", REJECT_MALFORMED, true),
    FR("top nil", "\xc0", REJECT_MALFORMED, true),
    FR("top str", "\xa1" "a", REJECT_MALFORMED, true),
    FR("top bin", "\xc4\x01" "a", REJECT_MALFORMED, true),
    FR("top float", "\xcb\x40\x08\0\0\0\0\0\0", REJECT_MALFORMED, true),
    FR("reserved byte", "\xc1", REJECT_MALFORMED, true),
    FR("reserved byte in map", "\x81\xa1k\xc1", REJECT_MALFORMED, true),
    FR("trailing byte", "\x80\x00", REJECT_MALFORMED, true),
    FR("two maps", "\x80\x80", REJECT_MALFORMED, true),
    FR("batch then byte", "\x91\x80\xc0", REJECT_MALFORMED, true),
    FR("map missing value", "\x81\xa1k", REJECT_MALFORMED, true),
    FR("map cut in key", "\x81\xa3ke", REJECT_MALFORMED, true),
    FR("array cut", "\x92\x80", REJECT_MALFORMED, true),
    FR("array16 cut header", "\xdc\x00", REJECT_MALFORMED, true),
    FR("map32 cut header", "\xdf\x00\x00\x00", REJECT_MALFORMED, true),
    FR("str8 cut header", "\x81\xd9", REJECT_MALFORMED, true),
    FR("uint64 cut", "\x81\xa2ts\xcf\0\0\0", REJECT_MALFORMED, true),
    FR("fixext16 cut", "\x81\xa1x\xd8\x01\x02", REJECT_MALFORMED, true),
    FR("array32 amplification", "\xdd\xff\xff\xff\xff", REJECT_MALFORMED, true),
    FR("map32 amplification", "\xdf\xff\xff\xff\xff", REJECT_MALFORMED, true),
    FR("array16 amplification", "\xdc\xff\xff\x80\x80", REJECT_MALFORMED, true),
    FR("nested map32 amplification", "\x91\xdf\x7f\xff\xff\xff", REJECT_MALFORMED, true),
    FR("nested array32 amplification", "\x81\xa1x\xdd\x10\x00\x00\x00\xc0\xc0",
       REJECT_MALFORMED, true),
    FR("str32 amplification", "\x81\xa1x\xdb\xff\xff\xff\xff", REJECT_MALFORMED, true),
    FR("bin32 amplification", "\x81\xa1x\xc6\xff\xff\xff\xff", REJECT_MALFORMED, true),
    FR("ext32 length wraps", "\x81\xa1x\xc9\xff\xff\xff\xff\x01", REJECT_MALFORMED, true),
    /* 2 pairs need >= 4 bytes; 3 are left */
    FR("map pairs need two bytes", "\x82\xa1k\xc0", REJECT_MALFORMED, true),
    FR("empty batch", "\x90", REJECT_NONE, false),
    FR("empty batch array32", "\xdd\0\0\0\0", REJECT_NONE, false),
    FR("empty map", "\x80", REJECT_MISSING_CREATOR, false),
    FR("batch of int", "\x91\x05", REJECT_NOT_A_MAP, false),
    FR("batch of nil", "\x91\xc0", REJECT_NOT_A_MAP, false),
    FR("batch of array", "\x91\x91\x80", REJECT_NOT_A_MAP, false),
    FR("batch of str", "\x91\xa3" "abc", REJECT_NOT_A_MAP, false),
    FR("batch of empty map", "\x91\x80", REJECT_MISSING_CREATOR, false),
    FRL("batch over max", "\x93\x80\x80\x80", REJECT_BATCH_TOO_LARGE, 0, 2),
    FRL("batch16 over max", "\xdc\x00\x03\x80\x80\x80", REJECT_BATCH_TOO_LARGE, 0, 2),
    FRL("malformed wins over batch size", "\x93\x80\x80", REJECT_MALFORMED, 0, 2),
    FRL("oversize", "\x81\xa1k\xc0\xc0", REJECT_OVERSIZE, 4, 0),
    FRL("oversize wins over malformed", "\xc1\xc1\xc1\xc1\xc1", REJECT_OVERSIZE, 4, 0),
    FRL("oversize wins over batch size", "\x93\x80\x80\x80", REJECT_OVERSIZE, 3, 2),
    {"at frame limit", "\x81\xa1k\xc0", 4, REJECT_MISSING_CREATOR, false, 4, 0},
};

static void test_frame_table(void **state) {
    fx *f = *state;
    for (size_t c = 0; c < sizeof FRAME_CASES / sizeof FRAME_CASES[0]; c++) {
        const fcase *fc = &FRAME_CASES[c];
        decode_limits lim = LIMITS;
        if (fc->max_frame)
            lim.max_frame_bytes = fc->max_frame;
        if (fc->max_batch)
            lim.max_batch_events = fc->max_batch;
        decoder_set_limits(f->d, &lim);
        /* An exact-size heap copy, so ASan sees any read past the end. */
        char *p = malloc(fc->len ? fc->len : 1);
        assert_non_null(p);
        memcpy(p, fc->bytes, fc->len);
        decode(f, p, fc->len);
        bool empty = fc->want == REJECT_NONE;
        if (f->whole != fc->whole || f->n != (empty ? 0u : 1u) ||
            (!empty && f->items[0].reason != fc->want))
            fail_msg("case '%s': n=%zu whole=%d %s, expected %s%s", fc->name, f->n, f->whole,
                     reject_reason_name(f->items[0].reason), reject_reason_name(fc->want),
                     fc->whole ? " whole" : "");
        if (fc->whole) {
            assert_ptr_equal(f->items[0].ev.raw.ptr, p);
            assert_int_equal(f->items[0].ev.raw.len, fc->len);
        }
        free(p);
    }
    decoder_set_limits(f->d, &LIMITS);
}

/* Every reason but too_old (decided by the store) has a case above. */
static void test_every_reason_covered(void **state) {
    bool seen[REJECT__COUNT] = {false};
    for (size_t c = 0; c < sizeof EVENT_CASES / sizeof EVENT_CASES[0]; c++)
        seen[EVENT_CASES[c].want] = true;
    for (size_t c = 0; c < sizeof FRAME_CASES / sizeof FRAME_CASES[0]; c++)
        seen[FRAME_CASES[c].want] = true;
    for (int r = 1; r < REJECT__COUNT; r++)
        if (r != REJECT_TOO_OLD && !seen[r])
            fail_msg("no test case for %s", reject_reason_name((reject_reason)r));
}

/* ---- valid events: field values ---------------------------------------- */

static bool inside(strref r, const void *frame, size_t len) {
    const char *p = frame;
    return r.ptr >= p && r.ptr + r.len <= p + len;
}

static void test_every_field(void **state) {
    fx *f = *state;
    const kv over[] = {
        S("id", "ev-0001"), I("n", 1000000), I("followers", 10000000000LL),
        S("niche", "knit-ting_2"), S("post", "p:42"), BOOL("sponsored", 1),
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_event(&sb, over, NELEM(over));
    /* actor separately: MAX_OVER entries already used */
    msgpack_sbuffer sb2;
    msgpack_sbuffer_init(&sb2);
    const kv with_actor[] = {S("actor", "u:bob"), S("type", "comment")};
    pack_event(&sb2, with_actor, NELEM(with_actor));

    decode(f, sb.data, sb.size);
    assert_int_equal(f->n, 1);
    assert_false(f->whole);
    const event *e = &f->items[0].ev;
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    assert_true(strref_eq(e->creator, "ig:alice_knits"));
    assert_int_equal(e->type, EV_LIKE);
    assert_int_equal(e->ts, TS);
    assert_true(strref_eq(e->id, "ev-0001"));
    assert_int_equal(e->n, 1000000);
    assert_int_equal(e->followers, 10000000000LL);
    assert_true(strref_eq(e->niche, "knit-ting_2"));
    assert_true(strref_eq(e->post, "p:42"));
    assert_int_equal(e->sponsored, 1);
    assert_int_equal(e->actor.len, 0);
    assert_null(event_actor(e));
    /* zero copy: strings point into the frame */
    assert_true(inside(e->creator, sb.data, sb.size));
    assert_true(inside(e->id, sb.data, sb.size));
    assert_true(inside(e->niche, sb.data, sb.size));
    assert_true(inside(e->post, sb.data, sb.size));

    decode(f, sb2.data, sb2.size);
    e = &f->items[0].ev;
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    assert_int_equal(e->type, EV_COMMENT);
    assert_true(strref_eq(e->actor, "u:bob"));
    assert_ptr_equal(event_actor(e), e->actor.ptr);
    assert_true(inside(e->actor, sb2.data, sb2.size));
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&sb2);
}

static void test_defaults_and_nil(void **state) {
    fx *f = *state;
    const kv over[] = {NIL("id"), NIL("n"), NIL("followers"), NIL("niche"), NIL("actor"),
                       NIL("sponsored")};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (int pass = 0; pass < 2; pass++) {
        msgpack_sbuffer_clear(&sb);
        pack_event(&sb, over, pass ? NELEM(over) : 0); /* nil, then absent: the same */
        decode(f, sb.data, sb.size);
        const event *e = &f->items[0].ev;
        assert_int_equal(f->items[0].reason, REJECT_NONE);
        assert_int_equal(e->id.len, 0);
        assert_int_equal(e->niche.len, 0);
        assert_int_equal(e->post.len, 0);
        assert_int_equal(e->actor.len, 0);
        assert_int_equal(e->n, 1);
        assert_int_equal(e->followers, -1);
        assert_int_equal(e->sponsored, -1);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_bin_strings(void **state) {
    fx *f = *state;
    const kv over[] = {B("creator", "ig:bin"), B("type", "share"), B("id", "id-b"),
                       B("niche", "bin_niche"), B("actor", "act"), B("post", "pst")};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_event(&sb, over, NELEM(over));
    decode(f, sb.data, sb.size);
    const event *e = &f->items[0].ev;
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    assert_true(strref_eq(e->creator, "ig:bin"));
    assert_int_equal(e->type, EV_SHARE);
    assert_true(strref_eq(e->id, "id-b"));
    assert_true(strref_eq(e->niche, "bin_niche"));
    assert_true(strref_eq(e->actor, "act"));
    assert_true(strref_eq(e->post, "pst"));
    assert_true(inside(e->creator, sb.data, sb.size));
    msgpack_sbuffer_destroy(&sb);
}

static void test_every_type(void **state) {
    fx *f = *state;
    static const char *const names[EV__COUNT] = {
#define X(id, name) name,
        EVENT_TYPES(X)
#undef X
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (int t = 0; t < EV__COUNT; t++) {
        const kv over[] = {SN("type", names[t], strlen(names[t]))};
        msgpack_sbuffer_clear(&sb);
        pack_event(&sb, over, NELEM(over));
        decode(f, sb.data, sb.size);
        assert_int_equal(f->items[0].reason, REJECT_NONE);
        assert_int_equal(f->items[0].ev.type, t);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_int_actor(void **state) {
    fx *f = *state;
    static const struct {
        bool neg;
        int64_t i;
        uint64_t u;
        const char *dec;
    } cases[] = {
        {false, 0, 0, "0"},
        {false, 0, 42, "42"},
        {true, -7, 0, "-7"},
        {true, -129, 0, "-129"},
        {true, INT64_MIN, 0, "-9223372036854775808"},
        {false, 0, INT64_MAX, "9223372036854775807"},
        {false, 0, UINT64_MAX, "18446744073709551615"},
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        kv over[2] = {{0}};
        over[0] = cases[c].neg ? (kv)I("actor", cases[c].i) : (kv)U("actor", cases[c].u);
        msgpack_sbuffer_clear(&sb);
        pack_event(&sb, over, NELEM(over));
        decode(f, sb.data, sb.size);
        const event *e = &f->items[0].ev;
        assert_int_equal(f->items[0].reason, REJECT_NONE);
        assert_null(e->actor.ptr);
        assert_int_equal(e->actor.len, strlen(cases[c].dec));
        assert_memory_equal(event_actor(e), cases[c].dec, e->actor.len);
        /* a copied event keeps its actor */
        event copy = *e;
        assert_memory_equal(event_actor(&copy), cases[c].dec, copy.actor.len);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A long creator with one odd byte at every position: the decoder checks
 * printable ASCII 8 bytes at a time, and each byte of a block must count. */
static void test_creator_every_position(void **state) {
    fx *f = *state;
    static const struct {
        const char *odd;
        reject_reason want;
    } cases[] = {
        {"\x1f", REJECT_BAD_CREATOR}, {"\x7f", REJECT_BAD_CREATOR},
        {"\x00", REJECT_BAD_CREATOR}, {"\x80", REJECT_BAD_CREATOR},
        {"\xff", REJECT_BAD_CREATOR}, {"\xc2\x85", REJECT_BAD_CREATOR},
        {" ", REJECT_NONE},          {"~", REJECT_NONE},
        {"\xc3\xa9", REJECT_NONE},   {"\xf0\x9f\x98\x80", REJECT_NONE},
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t c = 0; c < NELEM(cases); c++) {
        size_t olen = strlen(cases[c].odd) ? strlen(cases[c].odd) : 1;
        for (size_t at = 0; at + olen <= 40; at++) {
            char name[40];
            memset(name, 'a' + (char)(at % 26), sizeof name);
            memcpy(name + at, cases[c].odd, olen);
            kv over[2] = {SN("creator", name, sizeof name)};
            msgpack_sbuffer_clear(&sb);
            pack_event(&sb, over, NELEM(over));
            decode(f, sb.data, sb.size);
            if (f->items[0].reason != cases[c].want)
                fail_msg("creator with byte 0x%02x at %zu: got %s, expected %s",
                         (unsigned char)cases[c].odd[0], at,
                         reject_reason_name(f->items[0].reason),
                         reject_reason_name(cases[c].want));
        }
    }
    msgpack_sbuffer_destroy(&sb);
}

/* tag, then v big-endian in the width that tag declares (msgpack int
 * 8..64 and uint 8..64, including non-minimal ones). Returns the length. */
static size_t pack_wide_int(uint8_t tag, uint64_t v, char out[9]) {
    static const unsigned width[] = {1, 2, 4, 8}; /* 0xcc..0xcf, 0xd0..0xd3 */
    unsigned w = width[(tag - 0xcc) % 4];
    out[0] = (char)tag;
    for (unsigned i = 0; i < w; i++)
        out[1 + i] = (char)(v >> (8 * (w - 1 - i)));
    return 1 + w;
}

/* Every int encoding, minimal or not, gives the same value and bounds: a
 * non-negative value in a signed encoding is no negative number. */
static void test_wide_ints(void **state) {
    fx *f = *state;
    static const struct {
        const char *key;
        uint8_t tag;
        int64_t v;
        reject_reason want;
        const char *actor; /* for key "actor" */
    } cases[] = {
        {"ts", 0xcf, TS, REJECT_NONE, NULL},
        {"ts", 0xd3, TS, REJECT_NONE, NULL},
        {"ts", 0xd3, -1, REJECT_BAD_TS, NULL},
        {"ts", 0xd0, -1, REJECT_BAD_TS, NULL},
        {"n", 0xcc, 5, REJECT_NONE, NULL},
        {"n", 0xcd, 5, REJECT_NONE, NULL},
        {"n", 0xce, 5, REJECT_NONE, NULL},
        {"n", 0xcf, 5, REJECT_NONE, NULL},
        {"n", 0xd0, 5, REJECT_NONE, NULL},
        {"n", 0xd1, 5, REJECT_NONE, NULL},
        {"n", 0xd2, 5, REJECT_NONE, NULL},
        {"n", 0xd3, 5, REJECT_NONE, NULL},
        {"n", 0xd0, -5, REJECT_BAD_N, NULL},
        {"n", 0xd2, 1000001, REJECT_BAD_N, NULL},
        {"followers", 0xd1, 4200, REJECT_NONE, NULL},
        {"followers", 0xd2, -1, REJECT_BAD_FOLLOWERS, NULL},
        {"followers", 0xd3, 10000000000LL, REJECT_NONE, NULL},
        {"actor", 0xd0, -7, REJECT_NONE, "-7"},
        {"actor", 0xd1, -129, REJECT_NONE, "-129"},
        {"actor", 0xd3, 7, REJECT_NONE, "7"},
        {"actor", 0xcc, 200, REJECT_NONE, "200"},
        {"actor", 0xd3, INT64_MIN, REJECT_NONE, "-9223372036854775808"},
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t c = 0; c < NELEM(cases); c++) {
        char raw[9];
        kv over[2] = {{.key = cases[c].key, .kind = V_RAW, .s = raw}};
        over[0].len = pack_wide_int(cases[c].tag, (uint64_t)cases[c].v, raw);
        msgpack_sbuffer_clear(&sb);
        pack_event(&sb, over, NELEM(over));
        decode(f, sb.data, sb.size);
        const event *e = &f->items[0].ev;
        if (f->items[0].reason != cases[c].want)
            fail_msg("%s as 0x%02x %lld: got %s, expected %s", cases[c].key, cases[c].tag,
                     (long long)cases[c].v, reject_reason_name(f->items[0].reason),
                     reject_reason_name(cases[c].want));
        if (cases[c].want != REJECT_NONE)
            continue;
        if (cases[c].actor) {
            assert_int_equal(e->actor.len, strlen(cases[c].actor));
            assert_memory_equal(event_actor(e), cases[c].actor, e->actor.len);
            continue;
        }
        int64_t got = strcmp(cases[c].key, "ts") == 0 ? e->ts
                      : strcmp(cases[c].key, "n") == 0 ? e->n : e->followers;
        assert_int_equal(got, cases[c].v);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ---- batches ----------------------------------------------------------- */

static void test_batch_every_field(void **state) {
    fx *f = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_array_head(&sb, 3);
    pack_event(&sb, FULL, NELEM(FULL));
    const kv second[] = {S("type", "follow"), I("actor", 77), BOOL("sponsored", 0),
                         I("ts", TS - 5)};
    pack_event(&sb, second, NELEM(second));
    pack_event(&sb, NULL, 0);
    decode(f, sb.data, sb.size);
    assert_int_equal(f->n, 3);
    assert_false(f->whole);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->items[i].reason, REJECT_NONE);
    const event *a = &f->items[0].ev, *b = &f->items[1].ev, *c = &f->items[2].ev;
    assert_true(strref_eq(a->id, "ev-0001"));
    assert_int_equal(a->n, 3);
    assert_int_equal(a->followers, 4200);
    assert_true(strref_eq(a->niche, "knitting"));
    assert_true(strref_eq(a->actor, "u:bob"));
    assert_true(strref_eq(a->post, "p:42"));
    assert_int_equal(b->type, EV_FOLLOW);
    assert_int_equal(b->ts, TS - 5);
    assert_int_equal(b->sponsored, 0);
    assert_memory_equal(event_actor(b), "77", 2);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->followers, -1);
    /* raws tile the frame after the 1-byte array header */
    assert_ptr_equal(a->raw.ptr, sb.data + 1);
    assert_ptr_equal(b->raw.ptr, a->raw.ptr + a->raw.len);
    assert_ptr_equal(c->raw.ptr, b->raw.ptr + b->raw.len);
    assert_ptr_equal(c->raw.ptr + c->raw.len, sb.data + sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* Good events decode, bad ones carry their reason and their own bytes. */
static void test_mixed_batch(void **state) {
    fx *f = *state;
    static const kv bad_ts[] = {I("ts", 0)};
    static const kv bin_ok[] = {B("creator", "ig:bin"), B("type", "view")};
    static const kv dup[] = {ADD_S("type", "like")};
    static const kv nested_extra[] = {RAW("extra", "\x92\x91\x80\x81\xa1z\xc0")};
    msgpack_sbuffer el[8];
    reject_reason want[8];
    size_t n = 0;
    for (size_t i = 0; i < 8; i++)
        msgpack_sbuffer_init(&el[i]);
    pack_event(&el[n], FULL, NELEM(FULL)), want[n++] = REJECT_NONE;
    msgpack_sbuffer_write(&el[n], "\x05", 1), want[n++] = REJECT_NOT_A_MAP;
    pack_event(&el[n], bad_ts, NELEM(bad_ts)), want[n++] = REJECT_BAD_TS;
    msgpack_sbuffer_write(&el[n], "\x92\x80\x80", 3), want[n++] = REJECT_NOT_A_MAP;
    pack_event(&el[n], bin_ok, NELEM(bin_ok)), want[n++] = REJECT_NONE;
    pack_event(&el[n], dup, NELEM(dup)), want[n++] = REJECT_DUPLICATE_KEY;
    pack_event(&el[n], nested_extra, NELEM(nested_extra)), want[n++] = REJECT_NONE;
    msgpack_sbuffer_write(&el[n], "\xa5hello", 6), want[n++] = REJECT_NOT_A_MAP;

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    /* array16 header: raws start after 3 bytes */
    msgpack_sbuffer_write(&sb, "\xdc\x00\x08", 3);
    size_t off[8];
    for (size_t i = 0; i < n; i++) {
        off[i] = sb.size;
        msgpack_sbuffer_write(&sb, el[i].data, el[i].size);
    }
    decode(f, sb.data, sb.size);
    assert_int_equal(f->n, n);
    assert_false(f->whole);
    for (size_t i = 0; i < n; i++) {
        const decode_item *it = &f->items[i];
        if (it->reason != want[i])
            fail_msg("element %zu: %s, expected %s", i, reject_reason_name(it->reason),
                     reject_reason_name(want[i]));
        assert_ptr_equal(it->ev.raw.ptr, sb.data + off[i]);
        assert_int_equal(it->ev.raw.len, el[i].size);
        assert_memory_equal(it->ev.raw.ptr, el[i].data, el[i].size);
    }
    assert_true(strref_eq(f->items[4].ev.creator, "ig:bin"));
    assert_int_equal(f->items[4].ev.type, EV_VIEW);
    for (size_t i = 0; i < 8; i++)
        msgpack_sbuffer_destroy(&el[i]);
    msgpack_sbuffer_destroy(&sb);
}

static void pack_batch(msgpack_sbuffer *sb, size_t n) {
    pack_array_head(sb, n);
    for (size_t i = 0; i < n; i++) {
        kv over[2] = {I("ts", TS - (int64_t)i)};
        pack_event(sb, over, NELEM(over));
    }
}

static void test_batch_limit(void **state) {
    fx *f = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_batch(&sb, MAX_BATCH);
    decode(f, sb.data, sb.size);
    assert_int_equal(f->n, MAX_BATCH);
    assert_false(f->whole);
    for (size_t i = 0; i < MAX_BATCH; i++) {
        assert_int_equal(f->items[i].reason, REJECT_NONE);
        assert_int_equal(f->items[i].ev.ts, TS - (int64_t)i);
    }
    msgpack_sbuffer_clear(&sb);
    pack_batch(&sb, MAX_BATCH + 1);
    decode(f, sb.data, sb.size);
    expect_whole(f, REJECT_BATCH_TOO_LARGE, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* A caller whose items[] is smaller than the batch limit still gets no
 * overflow: the smaller of the two is the limit. */
static void test_small_cap(void **state) {
    fx *f = *state;
    static const char three[] = "\x93\x80\x80\x80";
    size_t n = 99;
    bool whole = false;
    decode_item items[2];
    assert_int_equal(decode_frame(f->d, three, 4, NOW, items, 2, &n, &whole), 0);
    assert_int_equal(n, 1);
    assert_true(whole);
    assert_int_equal(items[0].reason, REJECT_BATCH_TOO_LARGE);
    n = 99;
    assert_int_equal(decode_frame(f->d, three, 4, NOW, items, 0, &n, &whole), -EINVAL);
    assert_int_equal(n, 99);
}

/* ---- size limits ------------------------------------------------------- */

/* A valid event padded by an unknown bin key to exactly len bytes. */
static void pack_padded(msgpack_sbuffer *sb, size_t len) {
    static char pad[MAX_FRAME];
    size_t padlen = len - 100;
    for (;;) {
        kv over[2] = {BN("pad", pad, padlen)};
        msgpack_sbuffer_clear(sb);
        pack_event(sb, over, NELEM(over));
        if (sb->size == len)
            return;
        padlen += len - sb->size; /* bin32 header: size is linear in padlen */
    }
}

static void test_frame_limit(void **state) {
    fx *f = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_padded(&sb, MAX_FRAME);
    decode(f, sb.data, sb.size);
    assert_int_equal(f->n, 1);
    assert_false(f->whole);
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    pack_padded(&sb, MAX_FRAME + 1);
    decode(f, sb.data, sb.size);
    expect_whole(f, REJECT_OVERSIZE, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- hostile structure ------------------------------------------------- */

/* An event whose unknown key holds `levels` nested one-element arrays. */
static void pack_nested(msgpack_sbuffer *sb, bool in_batch, size_t levels) {
    char raw[64];
    assert_true(levels < sizeof raw);
    memset(raw, 0x91, levels);
    raw[levels] = 0x01;
    kv over[2] = {{.key = "deep", .kind = V_RAW, .s = raw, .len = levels + 1}};
    msgpack_sbuffer_clear(sb);
    if (in_batch)
        pack_array_head(sb, 1);
    pack_event(sb, over, NELEM(over));
}

static void test_depth(void **state) {
    fx *f = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    /* 8 levels in all: map + 7 arrays, or batch + map + 6 arrays */
    pack_nested(&sb, false, 7);
    decode(f, sb.data, sb.size);
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    pack_nested(&sb, false, 8);
    decode(f, sb.data, sb.size);
    expect_whole(f, REJECT_MALFORMED, sb.data, sb.size);
    pack_nested(&sb, true, 6);
    decode(f, sb.data, sb.size);
    assert_false(f->whole);
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    pack_nested(&sb, true, 7);
    decode(f, sb.data, sb.size);
    expect_whole(f, REJECT_MALFORMED, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

    /* 100,000 levels: no recursion anywhere, refused at level 9 */
    size_t len = 100001;
    char *p = malloc(len);
    assert_non_null(p);
    memset(p, 0x91, len - 1);
    p[len - 1] = 0x01;
    decode(f, p, len);
    expect_whole(f, REJECT_MALFORMED, p, len);
    memset(p, 0x81, len - 1); /* maps: key is the next map */
    decode(f, p, len);
    expect_whole(f, REJECT_MALFORMED, p, len);
    free(p);
}

/* Every proper prefix of a valid batch is malformed, and is read only
 * within its own bytes (each copy is exactly as large as the prefix). */
static void test_truncated_everywhere(void **state) {
    fx *f = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_array_head(&sb, 3);
    pack_event(&sb, FULL, NELEM(FULL));
    const kv second[] = {U("actor", 123456789), B("id", "bin-id"), F64("score", 1.5),
                         RAW("x", "\xdc\x00\x02\xd4\x01\x02\xc7\x01\x05" "a"),
                         BOOL("sponsored", 1)};
    pack_event(&sb, second, NELEM(second));
    msgpack_sbuffer_write(&sb, "\x07", 1);
    for (size_t len = 0; len < sb.size; len++) {
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, sb.data, len);
        decode(f, p, len);
        if (f->n != 1 || !f->whole || f->items[0].reason != REJECT_MALFORMED)
            fail_msg("prefix of %zu/%zu bytes: n=%zu %s", len, sb.size, f->n,
                     reject_reason_name(f->items[0].reason));
        assert_int_equal(f->items[0].ev.raw.len, len);
        free(p);
    }
    decode(f, sb.data, sb.size);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    assert_int_equal(f->items[1].reason, REJECT_NONE);
    assert_int_equal(f->items[2].reason, REJECT_NOT_A_MAP);

    /* and with a byte after it */
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    decode(f, sb.data, sb.size);
    expect_whole(f, REJECT_MALFORMED, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static const char *const AMPLIFIERS[] = {
    "\xdd\xff\xff\xff\xff", "\xdf\xff\xff\xff\xff", "\x91\xdd\xff\xff\xff\xff",
    "\x81\xa1x\xdf\xff\xff\xff\xff", "\xdc\xff\xff", "\xde\xff\xff",
};

static void decode_amplifiers(fx *f) {
    for (size_t i = 0; i < sizeof AMPLIFIERS / sizeof AMPLIFIERS[0]; i++) {
        size_t len = strlen(AMPLIFIERS[i]);
        decode(f, AMPLIFIERS[i], len);
        expect_whole(f, REJECT_MALFORMED, AMPLIFIERS[i], len);
    }
}

/* 5-byte headers claiming 4 billion elements. Under ASan, an allocation of
 * that size aborts the test; without ASan, a child process runs them under
 * an address-space limit of what it already has plus 64 MiB. */
static void test_amplification(void **state) {
    fx *f = *state;
    decode_amplifiers(f);
#ifndef UNDER_ASAN
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    assert_non_null(statm);
    assert_int_equal(fscanf(statm, "%ld", &pages), 1);
    fclose(statm);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (64u << 20);
        struct rlimit rl = {cap, cap};
        if (setrlimit(RLIMIT_AS, &rl) < 0)
            _exit(2);
        for (int round = 0; round < 100; round++)
            for (size_t i = 0; i < sizeof AMPLIFIERS / sizeof AMPLIFIERS[0]; i++) {
                size_t n = 0;
                bool whole = false;
                if (decode_frame(f->d, AMPLIFIERS[i], strlen(AMPLIFIERS[i]), NOW, f->items,
                                 MAX_BATCH, &n, &whole) != 0 ||
                    !whole || f->items[0].reason != REJECT_MALFORMED)
                    _exit(1);
            }
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
#endif
}

/* The decoder's zone is reused: a big event then many small ones decode the
 * same as on a fresh decoder (and LeakSanitizer checks nothing is kept). */
static void test_reuse(void **state) {
    fx *f = *state;
    msgpack_sbuffer big, small;
    msgpack_sbuffer_init(&big);
    msgpack_sbuffer_init(&small);
    /* an unknown key holding 200,000 nils: ~4.8 MB of msgpack_object */
    char *arr = malloc(200005);
    assert_non_null(arr);
    memcpy(arr, "\xdd\x00\x03\x0d\x40", 5);
    memset(arr + 5, 0xc0, 200000);
    kv over[2] = {{.key = "junk", .kind = V_RAW, .s = arr, .len = 200005}};
    pack_event(&big, over, NELEM(over));
    pack_batch(&small, 50);
    for (int round = 0; round < 20; round++) {
        decode(f, big.data, big.size);
        assert_int_equal(f->items[0].reason, REJECT_NONE);
        decode(f, small.data, small.size);
        assert_int_equal(f->n, 50);
        for (size_t i = 0; i < 50; i++) {
            assert_int_equal(f->items[i].reason, REJECT_NONE);
            assert_true(strref_eq(f->items[i].ev.creator, "ig:alice_knits"));
        }
    }
    free(arr);
    msgpack_sbuffer_destroy(&big);
    msgpack_sbuffer_destroy(&small);
}

static void test_limits_reload(void **state) {
    fx *f = *state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    const kv soon[] = {I("ts", NOW + 1000)};
    pack_event(&sb, soon, NELEM(soon));
    decode(f, sb.data, sb.size);
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    decode_limits lim = LIMITS;
    lim.future_ms = 999;
    decoder_set_limits(f->d, &lim);
    decode(f, sb.data, sb.size);
    assert_int_equal(f->items[0].reason, REJECT_FUTURE);
    decoder_set_limits(f->d, &LIMITS);
    /* now + future_ms past INT64_MAX: no ts can be in the future */
    size_t n = 0;
    bool whole = true;
    assert_int_equal(decode_frame(f->d, sb.data, sb.size, INT64_MAX - 5, f->items, MAX_BATCH,
                                  &n, &whole), 0);
    assert_int_equal(f->items[0].reason, REJECT_NONE);
    msgpack_sbuffer_destroy(&sb);
}

static void test_destroy_null(void **state) {
    decoder *d = NULL;
    decoder_destroy(NULL);
    decoder_destroy(&d);
    assert_null(d);
}

int main(void) {
    memset(LONG, 'a', sizeof LONG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_table),
        cmocka_unit_test(test_frame_table),
        cmocka_unit_test(test_every_reason_covered),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_defaults_and_nil),
        cmocka_unit_test(test_bin_strings),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_int_actor),
        cmocka_unit_test(test_wide_ints),
        cmocka_unit_test(test_creator_every_position),
        cmocka_unit_test(test_batch_every_field),
        cmocka_unit_test(test_mixed_batch),
        cmocka_unit_test(test_batch_limit),
        cmocka_unit_test(test_small_cap),
        cmocka_unit_test(test_frame_limit),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_amplification),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_limits_reload),
        cmocka_unit_test(test_destroy_null),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
