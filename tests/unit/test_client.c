/* test_client.c -- libnousu and the tools against fake peers.
 *
 * No daemon and no TCP ports: every endpoint is ipc:// in a mkdtemp
 * directory. A PULL socket checks what producers and nousu-send put on the
 * wire, a ROUTER thread plays the ack side of SPEC §4, an XPUB publishes
 * hand-made alerts (XPUB, so the test sees the subscription arrive and never
 * sleeps for the slow joiner), and a redis-server on a unix socket in the
 * same directory holds a hand-made alerts stream for catch-up (skipped when
 * redis-server is not installed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "nousu/nousu.h"

#define DEADLINE_MS 10000

/* ------------------------------------------------------------- fixture */

typedef struct fake_router fake_router;

/* Everything a test opens is registered here and closed by teardown, also
 * when an assertion jumped out of the test (zmq_ctx_term would wait forever
 * for a socket left open). */
typedef struct fixture {
    char dir[64];
    char ep_in[128], ep_ack[128], ep_pub[128];
    void *ctx;
    void *socks[8];
    int n_socks;
    fake_router *fake;
    pid_t pids[8];
    int n_pids;
} fixture;

static void fake_stop(fake_router *r);

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/nousu-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->ep_in, sizeof f->ep_in, "ipc://%s/ingest", f->dir);
    snprintf(f->ep_ack, sizeof f->ep_ack, "ipc://%s/ingest-ack", f->dir);
    snprintf(f->ep_pub, sizeof f->ep_pub, "ipc://%s/alerts", f->dir);
    f->ctx = zmq_ctx_new();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    for (int i = 0; i < f->n_pids; i++)
        if (kill(f->pids[i], SIGKILL) == 0)
            waitpid(f->pids[i], NULL, 0);
    if (f->fake)
        fake_stop(f->fake);
    for (int i = 0; i < f->n_socks; i++)
        zmq_close(f->socks[i]);
    zmq_ctx_term(f->ctx);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *bound(fixture *f, int type, const char *ep) {
    void *s = zmq_socket(f->ctx, type);
    int linger = 0;
    assert_non_null(s);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (type == ZMQ_XPUB) /* every subscription, duplicates too: see wait_subscribed() */
        zmq_setsockopt(s, ZMQ_XPUB_VERBOSE, &(int){1}, sizeof(int));
    assert_int_equal(zmq_bind(s, ep), 0);
    assert_true(f->n_socks < 8);
    f->socks[f->n_socks++] = s;
    return s;
}

/* One frame within the deadline; returns its size, buf gets a copy. */
static int recv_frame(void *s, char *buf, size_t cap, int timeout_ms) {
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return -1;
    int n = zmq_recv(s, buf, cap, 0);
    assert_true(n >= 0 && (size_t)n <= cap);
    return n;
}

/* ------------------------------------------------------ msgpack helpers */

static void pk_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A complete SPEC §6 alert; niche NULL -> nil. */
static void pack_alert(msgpack_sbuffer *sb, uint64_t seq, const char *kind, const char *creator,
                       const char *niche) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 20);
    pk_str(&pk, "v"), msgpack_pack_int(&pk, 1);
    pk_str(&pk, "seq"), msgpack_pack_uint64(&pk, seq);
    pk_str(&pk, "kind"), pk_str(&pk, kind);
    pk_str(&pk, "creator"), pk_str(&pk, creator);
    pk_str(&pk, "niche");
    if (niche)
        pk_str(&pk, niche);
    else
        msgpack_pack_nil(&pk);
    pk_str(&pk, "ts"), msgpack_pack_int64(&pk, 1700000000000);
    pk_str(&pk, "emitted"), msgpack_pack_int64(&pk, 1700000000123);
    pk_str(&pk, "followers"), msgpack_pack_int64(&pk, 3090);
    pk_str(&pk, "tier"), pk_str(&pk, "micro");
    pk_str(&pk, "window_s"), msgpack_pack_int(&pk, 86400);
    pk_str(&pk, "engagement"), msgpack_pack_int(&pk, 950);
    pk_str(&pk, "expected"), msgpack_pack_double(&pk, 64.5);
    pk_str(&pk, "z"), msgpack_pack_double(&pk, 11.4);
    pk_str(&pk, "velocity"), msgpack_pack_double(&pk, 14.7);
    pk_str(&pk, "engagement_rate"), msgpack_pack_double(&pk, 0.307);
    pk_str(&pk, "follower_growth"), msgpack_pack_float(&pk, 0.03f);
    pk_str(&pk, "unique_engagers"), msgpack_pack_int(&pk, 420);
    pk_str(&pk, "repeat_ratio"), msgpack_pack_double(&pk, 1.05);
    pk_str(&pk, "sponsored_share"), msgpack_pack_double(&pk, 0);
    pk_str(&pk, "reasons"), msgpack_pack_array(&pk, 2);
    pk_str(&pk, "engagement 14.7x its 7-day baseline (z=11.4)");
    pk_str(&pk, "broad audience");
}

/* The value of key in an unpacked map, or NULL. */
static const msgpack_object *get(const msgpack_object *map, const char *key) {
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static void assert_str_obj(const msgpack_object *o, const char *want) {
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
}

/* --------------------------------------------------------- alert decode */

static void test_alert_decode(void **state) {
    msgpack_sbuffer sb;
    nousu_alert a;
    msgpack_sbuffer_init(&sb);
    pack_alert(&sb, 42, "rising", "demo:riser", "knitting");
    assert_int_equal(nousu_alert_decode(sb.data, sb.size, &a), 0);
    assert_int_equal(a.seq, 42);
    assert_int_equal(a.kind, NOUSU_ALERT_RISING);
    assert_string_equal(a.kind_name, "rising");
    assert_string_equal(a.creator, "demo:riser");
    assert_string_equal(a.niche, "knitting");
    assert_string_equal(a.tier, "micro");
    assert_string_equal(a.topic, "");
    assert_int_equal(a.v, 1);
    assert_int_equal(a.ts, 1700000000000);
    assert_int_equal(a.emitted, 1700000000123);
    assert_int_equal(a.followers, 3090);
    assert_int_equal(a.window_s, 86400);
    assert_true(a.engagement == 950); /* an int where a float may be */
    assert_true(a.z == 11.4 && a.velocity == 14.7 && a.expected == 64.5);
    assert_true(a.follower_growth > 0.0299 && a.follower_growth < 0.0301); /* float32 */
    assert_int_equal(a.unique_engagers, 420);
    assert_int_equal(a.n_reasons, 2);
    assert_string_equal(a.reasons[1], "broad audience");
    assert_ptr_equal(a.raw, sb.data);
    assert_int_equal(a.raw_len, sb.size);

    pack_alert(&sb, 7, "graduated", "x", NULL); /* nil niche */
    assert_int_equal(nousu_alert_decode(sb.data, sb.size, &a), 0);
    assert_int_equal(a.kind, NOUSU_ALERT_GRADUATED);
    assert_string_equal(a.niche, "");
    pack_alert(&sb, 7, "fancy_new_kind", "x", "y"); /* forward compatible */
    assert_int_equal(nousu_alert_decode(sb.data, sb.size, &a), 0);
    assert_int_equal(a.kind, NOUSU_ALERT_OTHER);
    msgpack_sbuffer_destroy(&sb);
}

/* Build a small map from (key, packer callback) pairs for the bad cases. */
static int decode_map_with(void (*extra)(msgpack_packer *), int keys) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    nousu_alert a;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)keys);
    extra(&pk);
    int r = nousu_alert_decode(sb.data, sb.size, &a);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

static void base4(msgpack_packer *pk) {
    pk_str(pk, "seq"), msgpack_pack_uint64(pk, 1);
    pk_str(pk, "kind"), pk_str(pk, "rising");
    pk_str(pk, "creator"), pk_str(pk, "c");
    pk_str(pk, "ts"), msgpack_pack_int64(pk, 5);
}
static void ok_minimal(msgpack_packer *pk) { base4(pk); }
static void bad_z(msgpack_packer *pk) { base4(pk), pk_str(pk, "z"), pk_str(pk, "high"); }
static void dup_seq(msgpack_packer *pk) { base4(pk), pk_str(pk, "seq"), msgpack_pack_int(pk, 2); }
static void neg_seq(msgpack_packer *pk) {
    pk_str(pk, "seq"), msgpack_pack_int(pk, -1);
    pk_str(pk, "kind"), pk_str(pk, "rising");
    pk_str(pk, "creator"), pk_str(pk, "c");
    pk_str(pk, "ts"), msgpack_pack_int64(pk, 5);
}
static void no_creator(msgpack_packer *pk) {
    pk_str(pk, "seq"), msgpack_pack_uint64(pk, 1);
    pk_str(pk, "kind"), pk_str(pk, "rising");
    pk_str(pk, "ts"), msgpack_pack_int64(pk, 5);
}
static void long_creator(msgpack_packer *pk) {
    char c[200];
    memset(c, 'a', sizeof c - 1);
    c[sizeof c - 1] = 0;
    pk_str(pk, "seq"), msgpack_pack_uint64(pk, 1);
    pk_str(pk, "kind"), pk_str(pk, "rising");
    pk_str(pk, "creator"), pk_str(pk, c);
    pk_str(pk, "ts"), msgpack_pack_int64(pk, 5);
}
static void reason_not_str(msgpack_packer *pk) {
    base4(pk), pk_str(pk, "reasons"), msgpack_pack_array(pk, 1), msgpack_pack_int(pk, 3);
}
static void nil_optional(msgpack_packer *pk) {
    base4(pk), pk_str(pk, "z"), msgpack_pack_nil(pk); /* nil: absent */
    pk_str(pk, "x-unknown"), msgpack_pack_array(pk, 0);     /* ignored */
}

static void test_alert_decode_bad(void **state) {
    nousu_alert a;
    memset(&a, 0x5a, sizeof a);
    assert_int_equal(decode_map_with(ok_minimal, 4), 0);
    assert_int_equal(decode_map_with(nil_optional, 6), 0);
    assert_int_equal(decode_map_with(bad_z, 5), -EBADMSG);
    assert_int_equal(decode_map_with(dup_seq, 5), -EBADMSG);
    assert_int_equal(decode_map_with(neg_seq, 4), -EBADMSG);
    assert_int_equal(decode_map_with(no_creator, 3), -EBADMSG);
    assert_int_equal(decode_map_with(long_creator, 4), -EBADMSG);
    assert_int_equal(decode_map_with(reason_not_str, 5), -EBADMSG);
    /* Container sizes larger than the bytes: refused before any allocation. */
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t huge_arr[] = {0x81, 0xa1, 'x', 0xdd, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t huge_str[] = {0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
    static const uint8_t never_used[] = {0x81, 0xa1, 'x', 0xc1};
    static const uint8_t not_map[] = {0x93, 1, 2, 3};
    assert_int_equal(nousu_alert_decode(huge_map, sizeof huge_map, &a), -EBADMSG);
    assert_int_equal(nousu_alert_decode(huge_arr, sizeof huge_arr, &a), -EBADMSG);
    assert_int_equal(nousu_alert_decode(huge_str, sizeof huge_str, &a), -EBADMSG);
    assert_int_equal(nousu_alert_decode(never_used, sizeof never_used, &a), -EBADMSG);
    assert_int_equal(nousu_alert_decode(not_map, sizeof not_map, &a), -EBADMSG);
    assert_int_equal(nousu_alert_decode("", 0, &a), -EBADMSG);
    /* Nesting far deeper than any alert. */
    uint8_t deep[200];
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = 0xc0;
    char *json = NULL;
    assert_int_equal(nousu_msgpack_to_json(deep, sizeof deep, &json), -EBADMSG);
    /* Untouched on failure. */
    assert_int_equal(((unsigned char *)&a)[0], 0x5a);
}

/* Every truncation and many one-byte corruptions of a valid alert: decoded
 * or refused, never a crash (ASan/UBSan builds check the "never"). */
static void test_alert_decode_mangled(void **state) {
    msgpack_sbuffer sb;
    nousu_alert a;
    msgpack_sbuffer_init(&sb);
    pack_alert(&sb, 42, "rising", "demo:riser", "knitting");
    for (size_t n = 0; n < sb.size; n++)
        assert_int_equal(nousu_alert_decode(sb.data, n, &a), -EBADMSG);
    char *copy = malloc(sb.size + 1);
    static const uint8_t vals[] = {0x00, 0x7f, 0x80, 0x8f, 0x9f, 0xbf, 0xc0, 0xc1, 0xc4,
                                   0xc7, 0xca, 0xcf, 0xd4, 0xd8, 0xdb, 0xdd, 0xdf, 0xff};
    for (size_t i = 0; i < sb.size; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(copy, sb.data, sb.size);
            copy[i] = (char)vals[v];
            int r = nousu_alert_decode(copy, sb.size, &a);
            assert_true(r == 0 || r == -EBADMSG);
            char *json = NULL;
            r = nousu_msgpack_to_json(copy, sb.size, &json);
            assert_true(r == 0 || r == -EBADMSG);
            free(json);
        }
    memcpy(copy, sb.data, sb.size);
    copy[sb.size] = 0; /* trailing byte */
    assert_int_equal(nousu_alert_decode(copy, sb.size + 1, &a), -EBADMSG);
    free(copy);
    msgpack_sbuffer_destroy(&sb);
}

static void test_msgpack_to_json(void **state) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char *json = NULL;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 9);
    pk_str(&pk, "s"), pk_str(&pk, "caf\xc3\xa9");
    pk_str(&pk, "bad"), msgpack_pack_str(&pk, 3), msgpack_pack_str_body(&pk, "a\xff" "b", 3);
    pk_str(&pk, "bin"), msgpack_pack_bin(&pk, 2), msgpack_pack_bin_body(&pk, "hi", 2);
    msgpack_pack_int(&pk, 7), msgpack_pack_true(&pk); /* non-string key */
    pk_str(&pk, "neg"), msgpack_pack_int64(&pk, -5);
    pk_str(&pk, "f"), msgpack_pack_double(&pk, 0.1);
    pk_str(&pk, "nan"), msgpack_pack_double(&pk, NAN);
    pk_str(&pk, "arr"), msgpack_pack_array(&pk, 2), msgpack_pack_nil(&pk),
        msgpack_pack_uint64(&pk, UINT64_MAX);
    pk_str(&pk, "ext"), msgpack_pack_ext(&pk, 2, 5), msgpack_pack_ext_body(&pk, "\x01\xab", 2);
    assert_int_equal(nousu_msgpack_to_json(sb.data, sb.size, &json), 0);
    assert_null(strchr(json, '\n'));
    assert_string_equal(json, "{\"s\":\"caf\xc3\xa9\",\"bad\":\"a\xef\xbf\xbd" "b\",\"bin\":\"hi\","
                              "\"7\":true,\"neg\":-5,\"f\":0.1,\"nan\":null,"
                              "\"arr\":[null,1.84467440737096e19],"
                              "\"ext\":{\"ext\":5,\"hex\":\"01ab\"}}");
    free(json);
    /* Alerts round-trip through jansson. */
    pack_alert(&sb, 9, "rising", "demo:riser", "knitting");
    assert_int_equal(nousu_msgpack_to_json(sb.data, sb.size, &json), 0);
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 9);
    assert_true(json_real_value(json_object_get(j, "z")) == 11.4);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "reasons"), 1)),
                        "broad audience");
    json_decref(j);
    free(json);
    msgpack_sbuffer_destroy(&sb);
}

/* -------------------------------------------------------------- producer */

static void test_producer_push(void **state) {
    fixture *f = *state;
    void *pull = bound(f, ZMQ_PULL, f->ep_in);
    nousu_producer_opts o = {.batch_size = 2, .zmq_ctx = f->ctx};
    nousu_producer *p = nousu_producer_new(f->ep_in, &o);
    assert_non_null(p);
    nousu_event full = NOUSU_EVENT_INIT, minimal = NOUSU_EVENT_INIT;
    full = (nousu_event){"ig:alice", "like", 1700000000000, "e1", 3, 2500, "knitting", "u7",
                         "p1", 1};
    minimal.creator = "ig:bob";
    minimal.type = "view";
    minimal.ts = 1700000000001;
    assert_int_equal(nousu_producer_add(p, &full), 0);
    assert_int_equal(nousu_producer_add(p, &minimal), 0); /* batch of 2: sent */
    char buf[4096];
    int n = recv_frame(pull, buf, sizeof buf, DEADLINE_MS);
    assert_true(n > 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, buf, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u.data.via.array.size, 2);
    const msgpack_object *e0 = &u.data.via.array.ptr[0], *e1 = &u.data.via.array.ptr[1];
    assert_int_equal(e0->via.map.size, 10);
    assert_str_obj(get(e0, "creator"), "ig:alice");
    assert_str_obj(get(e0, "type"), "like");
    assert_int_equal(get(e0, "ts")->via.u64, 1700000000000);
    assert_str_obj(get(e0, "id"), "e1");
    assert_int_equal(get(e0, "n")->via.u64, 3);
    assert_int_equal(get(e0, "followers")->via.u64, 2500);
    assert_str_obj(get(e0, "niche"), "knitting");
    assert_str_obj(get(e0, "actor"), "u7");
    assert_str_obj(get(e0, "post"), "p1");
    assert_int_equal(get(e0, "sponsored")->type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(e1->via.map.size, 3); /* absent fields are left out */
    assert_null(get(e1, "followers"));
    msgpack_unpacked_destroy(&u);

    /* A partial batch waits for flush. */
    assert_int_equal(nousu_producer_add(p, &minimal), 0);
    assert_int_equal(recv_frame(pull, buf, sizeof buf, 50), -1);
    assert_int_equal(nousu_producer_flush(p), 0);
    n = recv_frame(pull, buf, sizeof buf, DEADLINE_MS);
    assert_true(n > 0);
    assert_int_equal((uint8_t)buf[0], 0x91); /* fixarray of 1 */

    nousu_producer_stats st;
    nousu_producer_stats_get(p, &st);
    assert_int_equal(st.events_added, 3);
    assert_int_equal(st.events_sent, 3);
    assert_int_equal(st.batches_sent, 2);
    assert_int_equal(st.buffered, 0);

    /* Refused locally. */
    nousu_event bad = minimal;
    bad.ts = 0;
    assert_int_equal(nousu_producer_add(p, &bad), -EINVAL);
    bad = minimal;
    bad.creator = NULL;
    assert_int_equal(nousu_producer_add(p, &bad), -EINVAL);
    assert_int_equal(nousu_producer_add_raw(p, "\x82\xa1", 2), -EBADMSG);
    assert_int_equal(nousu_producer_add_raw(p, "\x80\x80", 2), -EBADMSG); /* two objects */
    assert_int_equal(nousu_producer_add_raw(p, "\x80", 1), 0);
    assert_int_equal(nousu_producer_flush(p), 0);
    assert_int_equal(recv_frame(pull, buf, sizeof buf, DEADLINE_MS), 2);
    assert_memory_equal(buf, "\x91\x80", 2);
    nousu_producer_destroy(&p);
    assert_null(p);
    nousu_producer_destroy(&p); /* NULL is fine */
}

/* Batches split by bytes as well as by count, and the array header is the
 * smallest that fits. */
static void test_producer_batch_bytes(void **state) {
    fixture *f = *state;
    void *pull = bound(f, ZMQ_PULL, f->ep_in);
    nousu_producer_opts o = {.batch_size = 10000, .max_batch_bytes = 1000, .zmq_ctx = f->ctx};
    nousu_producer *p = nousu_producer_new(f->ep_in, &o);
    assert_non_null(p);
    nousu_event ev = NOUSU_EVENT_INIT;
    ev.creator = "c";
    ev.type = "like";
    ev.ts = 1;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 100; i++)
        assert_int_equal(nousu_producer_add(p, &ev), 0);
    ev.actor = big;
    assert_int_equal(nousu_producer_add(p, &ev), -EMSGSIZE);
    assert_int_equal(nousu_producer_flush(p), 0);
    char buf[2048];
    int n, frames = 0;
    size_t events = 0;
    while ((n = recv_frame(pull, buf, sizeof buf, frames ? 200 : DEADLINE_MS)) > 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        assert_true(n <= 1000);
        assert_int_equal(msgpack_unpack_next(&u, buf, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal((uint8_t)buf[0], u.data.via.array.size > 15 ? 0xdc : 0x90 | u.data.via.array.size);
        events += u.data.via.array.size;
        frames++;
        msgpack_unpacked_destroy(&u);
    }
    assert_int_equal(events, 100);
    assert_true(frames >= 2);
    nousu_producer_destroy(&p);
}

/* ------------------------------------------------------- fake ack peer */

typedef struct fake_router {
    void *sock;
    atomic_int stop, answer; /* answer 0: stay silent */
    int drop_first;          /* requests to ignore before answering */
    int stale_first;         /* send a reply for another request id first */
    int requests;
    uint8_t ids[16][32];
    size_t id_len[16];
    pthread_t thread;
} fake_router;

/* An ack for a batch: events with a key "bad" are rejected (bad_type), with
 * a key "dup" are duplicates, the rest ok. */
static void build_ack(const char *payload, size_t len, msgpack_sbuffer *out) {
    msgpack_unpacked u;
    msgpack_packer pk;
    uint32_t ok = 0, dup = 0, bad[64], n_bad = 0;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, payload, len, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < u.data.via.array.size; i++) {
        const msgpack_object *e = &u.data.via.array.ptr[i];
        if (e->type == MSGPACK_OBJECT_MAP && get(e, "bad"))
            bad[n_bad++] = i;
        else if (e->type == MSGPACK_OBJECT_MAP && get(e, "dup"))
            dup++;
        else
            ok++;
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_clear(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "ok"), msgpack_pack_uint32(&pk, ok);
    pk_str(&pk, "dup"), msgpack_pack_uint32(&pk, dup);
    pk_str(&pk, "rejected"), msgpack_pack_uint32(&pk, n_bad);
    pk_str(&pk, "errors"), msgpack_pack_array(&pk, n_bad);
    for (uint32_t k = 0; k < n_bad; k++) {
        msgpack_pack_map(&pk, 2);
        pk_str(&pk, "i"), msgpack_pack_uint32(&pk, bad[k]);
        pk_str(&pk, "reason"), pk_str(&pk, "bad_type");
    }
}

static void fake_handle(fake_router *r, zmq_msg_t *m) {
    msgpack_sbuffer ack;
    int n = r->requests++;
    if (n < 16) {
        r->id_len[n] = zmq_msg_size(&m[1]);
        memcpy(r->ids[n], zmq_msg_data(&m[1]), r->id_len[n] < 32 ? r->id_len[n] : 32);
    }
    if (n < r->drop_first || !atomic_load(&r->answer))
        return;
    msgpack_sbuffer_init(&ack);
    build_ack(zmq_msg_data(&m[2]), zmq_msg_size(&m[2]), &ack);
    if (r->stale_first) {
        zmq_send(r->sock, zmq_msg_data(&m[0]), zmq_msg_size(&m[0]), ZMQ_SNDMORE);
        zmq_send(r->sock, "stale-request-id", 16, ZMQ_SNDMORE);
        zmq_send(r->sock, "\xc1", 1, 0); /* and not even msgpack */
    }
    zmq_send(r->sock, zmq_msg_data(&m[0]), zmq_msg_size(&m[0]), ZMQ_SNDMORE);
    zmq_send(r->sock, zmq_msg_data(&m[1]), zmq_msg_size(&m[1]), ZMQ_SNDMORE);
    zmq_send(r->sock, ack.data, ack.size, 0);
    msgpack_sbuffer_destroy(&ack);
}

static void *fake_run(void *arg) {
    fake_router *r = arg;
    while (!atomic_load(&r->stop)) {
        zmq_pollitem_t it = {.socket = r->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 20) <= 0)
            continue;
        zmq_msg_t m[3];
        int parts = 0, more = 1;
        for (int i = 0; i < 3; i++)
            zmq_msg_init(&m[i]);
        while (more && parts < 3) {
            zmq_msg_recv(&m[parts], r->sock, 0);
            more = zmq_msg_more(&m[parts++]);
        }
        if (parts == 3 && !more)
            fake_handle(r, m);
        for (int i = 0; i < 3; i++)
            zmq_msg_close(&m[i]);
    }
    return NULL;
}

/* The socket is the fixture's; the thread is stopped by fake_stop() or
 * by teardown. */
static void fake_start(fixture *f, fake_router *r) {
    r->sock = bound(f, ZMQ_ROUTER, f->ep_ack);
    assert_int_equal(pthread_create(&r->thread, NULL, fake_run, r), 0);
    f->fake = r;
}

static void fake_stop(fake_router *r) {
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
}

typedef struct acks_seen {
    int calls;
    uint64_t ok, dup, rejected, first, batch;
    int64_t err_i;
    char reason[NOUSU_REASON_MAX];
} acks_seen;

static void on_ack(const nousu_ack *a, void *ud) {
    acks_seen *s = ud;
    s->calls++;
    s->ok += a->ok, s->dup += a->dup, s->rejected += a->rejected;
    s->first = a->first, s->batch = a->batch;
    if (a->n_errors) {
        s->err_i = a->errors[0].i;
        strcpy(s->reason, a->errors[0].reason);
    }
}

static void add_three(nousu_producer *p) {
    nousu_event ev = NOUSU_EVENT_INIT;
    ev.creator = "c";
    ev.type = "like";
    ev.ts = 1700000000000;
    assert_int_equal(nousu_producer_add(p, &ev), 0);
    /* {"bad": 1.5} */
    assert_int_equal(nousu_producer_add_raw(p, "\x81\xa3" "bad\xcb\x3f\xf8\0\0\0\0\0\0", 14), 0);
    assert_int_equal(nousu_producer_add_raw(p, "\x81\xa3" "dup\xc3", 6), 0);
}

static void test_producer_ack(void **state) {
    fixture *f = *state;
    fake_router r = {.drop_first = 1, .stale_first = 1};
    atomic_store(&r.answer, 1);
    fake_start(f, &r);
    acks_seen seen = {0};
    nousu_producer_opts o = {.mode = NOUSU_MODE_ACK, .ack_timeout_ms = 300, .retries = 3,
                             .zmq_ctx = f->ctx, .on_ack = on_ack, .userdata = &seen};
    nousu_producer *p = nousu_producer_new(f->ep_ack, &o);
    assert_non_null(p);
    add_three(p);
    assert_int_equal(nousu_producer_flush(p), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.ok, 1);
    assert_int_equal(seen.dup, 1);
    assert_int_equal(seen.rejected, 1);
    assert_int_equal(seen.err_i, 1);
    assert_string_equal(seen.reason, "bad_type");
    /* The first send was dropped: the resend carried the same request id. */
    assert_int_equal(r.requests, 2);
    assert_int_equal(r.id_len[0], 16);
    assert_memory_equal(r.ids[0], r.ids[1], 16);
    nousu_producer_stats st;
    nousu_producer_stats_get(p, &st);
    assert_int_equal(st.resends, 1);
    assert_int_equal(st.events_sent, 3);
    assert_int_equal(st.rejected, 1);

    /* A second batch: a new request id, first = 3. */
    add_three(p);
    assert_int_equal(nousu_producer_flush(p), 0);
    assert_int_equal(seen.first, 3);
    assert_int_equal(seen.batch, 1);
    assert_int_equal(r.requests, 3);
    assert_memory_not_equal(r.ids[1], r.ids[2], 16);
    assert_int_equal(nousu_producer_flush(p), 0); /* nothing to send */
    nousu_producer_destroy(&p);
    fake_stop(&r);
    f->fake = NULL;
}

/* No ack at all: -ETIMEDOUT after 1 + retries sends, the batch kept; once
 * the peer answers, the next flush resends it under the same request id. */
static void test_producer_ack_timeout(void **state) {
    fixture *f = *state;
    fake_router r = {0};
    fake_start(f, &r);
    acks_seen seen = {0};
    nousu_producer_opts o = {.mode = NOUSU_MODE_ACK, .ack_timeout_ms = 100, .retries = 1,
                             .zmq_ctx = f->ctx, .on_ack = on_ack, .userdata = &seen};
    nousu_producer *p = nousu_producer_new(f->ep_ack, &o);
    assert_non_null(p);
    add_three(p);
    int64_t t0 = now_ms();
    assert_int_equal(nousu_producer_flush(p), -ETIMEDOUT);
    assert_true(now_ms() - t0 >= 200);
    nousu_producer_stats st;
    nousu_producer_stats_get(p, &st);
    assert_int_equal(st.buffered, 3);
    assert_int_equal(seen.calls, 0);
    atomic_store(&r.answer, 1);
    assert_int_equal(nousu_producer_flush(p), 0);
    assert_int_equal(seen.calls, 1);
    assert_true(r.requests >= 3);
    for (int i = 1; i < r.requests && i < 16; i++)
        assert_memory_equal(r.ids[0], r.ids[i], 16);
    nousu_producer_stats_get(p, &st);
    assert_int_equal(st.buffered, 0);
    nousu_producer_destroy(&p);
    fake_stop(&r);
    f->fake = NULL;
}

/* ------------------------------------------------------------ subscriber */

/* Wait for a subscription to prefix on an XPUB: the subscriber is
 * connected. Unsubscriptions of earlier subscribers are skipped. */
static void wait_subscribed(void *xpub, const char *prefix) {
    char buf[256];
    int64_t end = now_ms() + DEADLINE_MS;
    for (;;) {
        int n = recv_frame(xpub, buf, sizeof buf, (int)(end - now_ms()));
        assert_true(n >= 1);
        if (buf[0] == 1 && (size_t)n - 1 == strlen(prefix) && memcmp(buf + 1, prefix, n - 1) == 0)
            return;
    }
}

static void publish(void *pub, const char *topic, uint64_t seq, const char *kind,
                    const char *creator, const char *niche) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_alert(&sb, seq, kind, creator, niche);
    assert_true(zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(pub, sb.data, sb.size, 0) >= 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_subscriber(void **state) {
    fixture *f = *state;
    void *pub = bound(f, ZMQ_XPUB, f->ep_pub);
    nousu_subscriber_opts so = {.zmq_ctx = f->ctx};
    nousu_subscriber *s = nousu_subscriber_new_opts(f->ep_pub, "rising.", &so);
    nousu_alert a;
    assert_non_null(s);
    wait_subscribed(pub, "rising.");
    assert_int_equal(nousu_subscriber_recv(s, &a, 0), -EAGAIN);
    publish(pub, "graduated.gaming", 1, "graduated", "g", "gaming"); /* filtered */
    publish(pub, "rising.knitting", 2, "rising", "demo:riser", "knitting");
    assert_int_equal(nousu_subscriber_recv(s, &a, DEADLINE_MS), 0);
    assert_string_equal(a.topic, "rising.knitting");
    assert_int_equal(a.seq, 2);
    assert_string_equal(a.creator, "demo:riser");

    /* Malformed messages: each consumed and refused, the stream goes on. */
    zmq_send(pub, "rising.x", 8, 0); /* one frame */
    zmq_send(pub, "rising.x", 8, ZMQ_SNDMORE);
    zmq_send(pub, "\xdf\xff\xff\xff\xff", 5, 0); /* lying map */
    zmq_send(pub, "rising.x", 8, ZMQ_SNDMORE);
    zmq_send(pub, "\x80", 1, ZMQ_SNDMORE);
    zmq_send(pub, "\x80", 1, 0); /* three frames */
    publish(pub, "rising.books", 3, "rising", "b", "books");
    for (int i = 0; i < 3; i++)
        assert_int_equal(nousu_subscriber_recv(s, &a, DEADLINE_MS), -EBADMSG);
    assert_int_equal(nousu_subscriber_recv(s, &a, DEADLINE_MS), 0);
    assert_int_equal(a.seq, 3);
    int64_t t0 = now_ms();
    assert_int_equal(nousu_subscriber_recv(s, &a, 100), -EAGAIN);
    assert_true(now_ms() - t0 >= 90);
    nousu_subscriber_destroy(&s);
    assert_null(s);
    nousu_subscriber_destroy(&s);
}

/* ------------------------------------------------------- running tools */

typedef struct child {
    pid_t pid;
    char out[256], err[256];
} child;

/* Run argv with stdin from `input` (written to a file first), stdout and
 * stderr to files in the fixture directory: no pipe can fill up. */
static void spawn(fixture *f, child *c, const char *name, char *const argv[], const char *input) {
    char in[256];
    snprintf(in, sizeof in, "%s/%s.in", f->dir, name);
    snprintf(c->out, sizeof c->out, "%s/%s.out", f->dir, name);
    snprintf(c->err, sizeof c->err, "%s/%s.err", f->dir, name);
    FILE *fi = fopen(in, "w");
    assert_non_null(fi);
    fputs(input ? input : "", fi);
    fclose(fi);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid > 0 && f->n_pids < 8)
        f->pids[f->n_pids++] = c->pid;
    if (c->pid == 0) {
        int i = open(in, O_RDONLY), o = open(c->out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            e = open(c->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(i, 0), dup2(o, 1), dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
}

/* A reaped child is no longer teardown's to kill. */
static void forget_pid(fixture *f, pid_t pid) {
    for (int i = 0; i < f->n_pids; i++)
        if (f->pids[i] == pid)
            f->pids[i] = f->pids[--f->n_pids];
}

/* Exit status, or -1 when it had to be killed at the deadline. */
static int reap(fixture *f, child *c, int timeout_ms) {
    int64_t end = now_ms() + timeout_ms;
    int st;
    while (waitpid(c->pid, &st, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            forget_pid(f, c->pid);
            return -1;
        }
        struct timespec d = {0, 5000000};
        nanosleep(&d, NULL);
    }
    forget_pid(f, c->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static void assert_contains(const char *hay, const char *needle) {
    if (!strstr(hay, needle))
        fail_msg("'%s' not in:\n%s", needle, hay);
}

static void test_send_push(void **state) {
    fixture *f = *state;
    void *pull = bound(f, ZMQ_PULL, f->ep_in);
    char *argv[] = {NOUSU_SEND_BIN, "--endpoint", f->ep_in, "--batch", "2", NULL};
    child c;
    spawn(f, &c, "send", argv,
          "{\"creator\":\"a\",\"type\":\"like\",\"ts\":1700000000000,\"id\":\"x1\"}\n"
          "[{\"creator\":\"a\",\"type\":\"save\",\"ts\":2},{\"creator\":\"b\",\"type\":\"view\",\"ts\":3}]\n"
          "{\"creator\": oops}\n"
          "\n"
          "{\"creator\":\"c\",\"type\":\"like\",\"ts\":4.0,\"n\":null,\"x-new\":{\"k\":[true,false]}}\n");
    char buf[4096];
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int n = recv_frame(pull, buf, sizeof buf, DEADLINE_MS);
    assert_true(n > 0);
    assert_int_equal(msgpack_unpack_next(&u, buf, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.via.array.size, 2);
    assert_str_obj(get(&u.data.via.array.ptr[0], "id"), "x1");
    assert_int_equal(get(&u.data.via.array.ptr[0], "ts")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    n = recv_frame(pull, buf, sizeof buf, DEADLINE_MS);
    assert_true(n > 0);
    assert_int_equal(msgpack_unpack_next(&u, buf, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.via.array.size, 2);
    const msgpack_object *last = &u.data.via.array.ptr[1];
    assert_int_equal(get(last, "ts")->type, MSGPACK_OBJECT_FLOAT64); /* for bad_type */
    assert_int_equal(get(last, "n")->type, MSGPACK_OBJECT_NIL);
    const msgpack_object *x = get(last, "x-new");
    assert_non_null(x);
    assert_int_equal(get(x, "k")->via.array.size, 2);
    msgpack_unpacked_destroy(&u);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 1); /* an invalid line */
    char *err = slurp(c.err);
    assert_contains(err, "stdin:3: ");
    assert_contains(err, "4 events sent in 2 batches (5 lines, 1 invalid)");
    free(err);
}

static void test_send_ack(void **state) {
    fixture *f = *state;
    fake_router r = {0};
    atomic_store(&r.answer, 1);
    fake_start(f, &r);
    char *argv[] = {NOUSU_SEND_BIN, "--ack", "--endpoint", f->ep_ack, "--batch", "2", NULL};
    child c;
    spawn(f, &c, "sendack", argv,
          "{\"creator\":\"a\",\"type\":\"like\",\"ts\":1}\n"
          "[{\"creator\":\"a\",\"type\":\"like\",\"ts\":2},{\"bad\":1.5},{\"dup\":1}]\n"
          "{\"creator\":\"a\",\"type\":\"like\",\"ts\":3}\n");
    assert_int_equal(reap(f, &c, DEADLINE_MS), 1); /* a rejected event */
    char *err = slurp(c.err);
    assert_contains(err, "stdin:2/1: bad_type\n");
    assert_contains(err, "5 events sent in 3 batches (3 lines, 0 invalid); ok 3, dup 1, rejected 1");
    free(err);

    char *argv_ok[] = {NOUSU_SEND_BIN, "-a", "-e", f->ep_ack, NULL};
    spawn(f, &c, "sendok", argv_ok, "{\"creator\":\"a\",\"type\":\"like\",\"ts\":1}\n");
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    err = slurp(c.err);
    assert_contains(err, "ok 1, dup 0, rejected 0");
    free(err);
    fake_stop(&r);
    f->fake = NULL;
}

static void test_send_usage(void **state) {
    fixture *f = *state;
    child c;
    char *help[] = {NOUSU_SEND_BIN, "--help", NULL};
    spawn(f, &c, "help", help, NULL);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    char *out = slurp(c.out);
    assert_contains(out, "--batch");
    free(out);
    char *bad[] = {NOUSU_SEND_BIN, "--batch", "10001", NULL};
    spawn(f, &c, "bad", bad, NULL);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 2);
    char *ver[] = {NOUSU_TAIL_BIN, "--version", NULL};
    spawn(f, &c, "ver", ver, NULL);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    out = slurp(c.out);
    assert_contains(out, NOUSU_VERSION_STRING);
    free(out);
}

static void test_tail_live(void **state) {
    fixture *f = *state;
    void *pub = bound(f, ZMQ_XPUB, f->ep_pub);
    char *argv[] = {NOUSU_TAIL_BIN, "--endpoint", f->ep_pub, "--count", "2", "rising.", NULL};
    child c;
    spawn(f, &c, "tail", argv, NULL);
    wait_subscribed(pub, "rising.");
    publish(pub, "graduated.gaming", 1, "graduated", "g", "gaming");
    publish(pub, "rising.knitting", 2, "rising", "demo:riser", "knitting");
    zmq_send(pub, "rising.x", 8, 0); /* malformed: reported, skipped */
    publish(pub, "rising.books", 3, "rising", "b", NULL);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    char *out = slurp(c.out), *err = slurp(c.err);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = 0;
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "creator")), "demo:riser");
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 2);
    json_decref(j);
    assert_contains(nl + 1, "\"seq\":3,");
    assert_contains(nl + 1, "\"niche\":null");
    assert_contains(err, "malformed alert");
    free(out);
    free(err);

    /* --timeout-ms: exit 0 after a quiet spell. */
    char *quiet[] = {NOUSU_TAIL_BIN, "-e", f->ep_pub, "--timeout-ms", "100", NULL};
    spawn(f, &c, "quiet", quiet, NULL);
    wait_subscribed(pub, ""); /* consumed here, so the next wait sees the next one */
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    /* SIGTERM: clean exit 0. */
    char *forever[] = {NOUSU_TAIL_BIN, "-e", f->ep_pub, NULL};
    spawn(f, &c, "forever", forever, NULL);
    wait_subscribed(pub, "");
    kill(c.pid, SIGTERM);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
}

/* --------------------------------------------------- catch-up via Redis */

static bool have_redis(char *path, size_t cap) {
    const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/usr/sbin"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, cap, "%s/redis-server", dirs[i]);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

/* redis-server on a unix socket in the fixture dir, no TCP, no persistence. */
static pid_t redis_start(fixture *f, const char *bin, char *sock, size_t cap, redisContext **ret) {
    snprintf(sock, cap, "%s/redis.sock", f->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0 && f->n_pids < 8)
        f->pids[f->n_pids++] = pid;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        execl(bin, bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
              "--dir", f->dir, (char *)NULL);
        _exit(127);
    }
    int64_t end = now_ms() + DEADLINE_MS;
    struct timeval tv = {1, 0};
    redisContext *c = NULL;
    while (now_ms() < end) {
        c = redisConnectUnixWithTimeout(sock, tv);
        if (c && !c->err)
            break;
        redisFree(c);
        c = NULL;
        struct timespec d = {0, 10000000};
        nanosleep(&d, NULL);
    }
    assert_non_null(c);
    *ret = c;
    return pid;
}

static void xadd(redisContext *c, uint64_t seq, const char *topic, const char *msg, size_t len) {
    char id[32], s[24];
    snprintf(id, sizeof id, "%llu-0", (unsigned long long)seq);
    snprintf(s, sizeof s, "%llu", (unsigned long long)seq);
    redisReply *r = redisCommand(c, "XADD nousu:alerts %s seq %s topic %s msg %b", id, s, topic,
                                 msg, len);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

static void xadd_alert(redisContext *c, uint64_t seq, const char *kind, const char *niche) {
    msgpack_sbuffer sb;
    char topic[64];
    msgpack_sbuffer_init(&sb);
    pack_alert(&sb, seq, kind, "creator", niche);
    snprintf(topic, sizeof topic, "%s.%s", kind, niche);
    xadd(c, seq, topic, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

typedef struct collected {
    uint64_t seqs[2100];
    int n, bad;
} collected;

static int collect(int err, const nousu_alert *a, void *ud) {
    collected *c = ud;
    if (err < 0)
        c->bad++;
    else if (c->n < 2100)
        c->seqs[c->n++] = a->seq;
    return 0;
}

static void test_catchup(void **state) {
    fixture *f = *state;
    char bin[256], sock[256];
    redisContext *rc;
    if (!have_redis(bin, sizeof bin))
        skip();
    pid_t redis = redis_start(f, bin, sock, sizeof sock, &rc);
    /* 2,005 alerts: three pages of XRANGE; one entry is not an alert. */
    for (uint64_t s = 1; s <= 2005; s++)
        if (s == 1500)
            xadd(rc, s, "rising.x", "\xc1", 1);
        else
            xadd_alert(rc, s, s % 2 ? "rising" : "graduated", "knitting");
    nousu_redis_opts ro = {.host = sock};
    collected got = {0};
    assert_int_equal(nousu_alerts_since(&ro, 2, collect, &got), 0);
    assert_int_equal(got.bad, 1);
    assert_int_equal(got.n, 2002);
    assert_int_equal(got.seqs[0], 3);
    assert_int_equal(got.seqs[got.n - 1], 2005);
    for (int i = 1; i < got.n; i++)
        assert_true(got.seqs[i] > got.seqs[i - 1]);
    memset(&got, 0, sizeof got);
    assert_int_equal(nousu_alerts_since(&ro, 2005, collect, &got), 0);
    assert_int_equal(got.n, 0);
    /* Wrong password: refused (no password is set: AUTH fails). */
    setenv("NOUSU_REDIS_PASSWORD", "nope", 1);
    assert_int_equal(nousu_alerts_since(&ro, 0, collect, &got), -EACCES);
    unsetenv("NOUSU_REDIS_PASSWORD");
    nousu_redis_opts missing = {.host = "/nonexistent/redis.sock"};
    assert_true(nousu_alerts_since(&missing, 0, collect, &got) < 0);

    /* nousu-tail --since: catch-up (filtered by topic), then live without
     * repeats: seq 3 arrives both ways and is printed once. */
    freeReplyObject(redisCommand(rc, "DEL nousu:alerts"));
    xadd_alert(rc, 1, "rising", "knitting");
    xadd_alert(rc, 2, "graduated", "gaming");
    xadd_alert(rc, 3, "rising", "books");
    xadd(rc, 4, "rising.x", "junk", 4);
    void *pub = bound(f, ZMQ_XPUB, f->ep_pub);
    char *argv[] = {NOUSU_TAIL_BIN, "--since", "1", "--redis", sock, "--prefix", "nousu:",
                    "-e", f->ep_pub, "--count", "3", "rising.", NULL};
    child c;
    spawn(f, &c, "since", argv, NULL);
    wait_subscribed(pub, "rising.");
    publish(pub, "rising.books", 3, "rising", "creator", "books");
    publish(pub, "rising.pets", 5, "rising", "creator", "pets");
    publish(pub, "rising.pets", 6, "rising", "creator", "pets");
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    char *out = slurp(c.out), *err = slurp(c.err);
    const char *want[] = {"\"seq\":3,", "\"seq\":5,", "\"seq\":6,"};
    char *line = out;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        assert_contains(line, want[i]);
        line = nl + 1;
    }
    assert_string_equal(line, "");
    assert_contains(err, "stream entry 4 is not a valid alert");
    free(out);
    free(err);
    redisFree(rc);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
    forget_pid(f, redis);
}

/* ------------------------------------------------------------------ demo */

static bool files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    int ca, cb;
    assert_non_null(fa);
    assert_non_null(fb);
    do {
        ca = getc(fa);
        cb = getc(fb);
    } while (ca == cb && ca != EOF);
    fclose(fa);
    fclose(fb);
    return ca == cb;
}

/* The same seed and end time give the same events, byte for byte. */
static void test_demo_deterministic(void **state) {
    fixture *f = *state;
    child c1, c2;
    char *argv[] = {NOUSU_DEMO_BIN, "--jsonl", "--seed", "3", "--end-ms", "1800000000000", NULL};
    spawn(f, &c1, "jsonl1", argv, NULL);
    assert_int_equal(reap(f, &c1, DEADLINE_MS), 0);
    spawn(f, &c2, "jsonl2", argv, NULL);
    assert_int_equal(reap(f, &c2, DEADLINE_MS), 0);
    assert_true(files_equal(c1.out, c2.out));
    char *head = slurp(c1.out); /* the first MiB */
    assert_contains(head, "\"ts\":1799136000");
    free(head);
}

static void test_demo(void **state) {
    fixture *f = *state;
    child c;
    char *print[] = {NOUSU_DEMO_BIN, "--print-world", "--dry-run", NULL};
    spawn(f, &c, "world", print, NULL);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    char *out = slurp(c.out);
    assert_contains(out, "demo:riser   knitting");
    assert_contains(out, "demo:bg19");
    free(out);

    void *pull = bound(f, ZMQ_PULL, f->ep_in);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    int64_t wall = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
    char *argv[] = {NOUSU_DEMO_BIN, "--endpoint", f->ep_in, "--seed", "7", NULL};
    spawn(f, &c, "demo", argv, NULL);
    size_t events = 0, riser = 0;
    int64_t min_ts = INT64_MAX, max_ts = 0, riser_last = 0;
    char *buf = malloc(4 << 20);
    int n;
    while ((n = recv_frame(pull, buf, 4 << 20, events ? 1000 : DEADLINE_MS)) > 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        assert_int_equal(msgpack_unpack_next(&u, buf, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
        for (uint32_t i = 0; i < u.data.via.array.size; i++) {
            const msgpack_object *e = &u.data.via.array.ptr[i];
            int64_t ts = (int64_t)get(e, "ts")->via.u64;
            assert_non_null(get(e, "id"));
            min_ts = ts < min_ts ? ts : min_ts;
            max_ts = ts > max_ts ? ts : max_ts;
            const msgpack_object *cr = get(e, "creator");
            if (cr->via.str.size == 10 && memcmp(cr->via.str.ptr, "demo:riser", 10) == 0) {
                assert_true(ts >= riser_last); /* each creator in event-time order */
                riser_last = ts;
                riser++;
            }
        }
        events += u.data.via.array.size;
        msgpack_unpacked_destroy(&u);
    }
    free(buf);
    assert_int_equal(reap(f, &c, DEADLINE_MS), 0);
    assert_in_range(events, 50000, 150000);
    assert_true(riser > 500);
    assert_true(max_ts <= wall + 5000); /* never in the future */
    assert_true(max_ts >= wall - 60000);
    assert_true(max_ts - min_ts > 9 * 86400000LL && max_ts - min_ts <= 10 * 86400000LL);
    char *err = slurp(c.err);
    char want[64];
    snprintf(want, sizeof want, "%zu events sent", events);
    assert_contains(err, want);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_decode),
        cmocka_unit_test(test_alert_decode_bad),
        cmocka_unit_test(test_alert_decode_mangled),
        cmocka_unit_test(test_msgpack_to_json),
        cmocka_unit_test_setup_teardown(test_producer_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_producer_batch_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_producer_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_producer_ack_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscriber, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catchup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
