/* nousu-send -- JSON lines in, engagement events out to nousud.
 *
 * Each input line is one JSON object (one event) or one JSON array (several).
 * Values are converted as they are, not validated: the daemon is the judge
 * (SPEC §3), so a real number stays a msgpack float64 and is rejected there
 * as bad_type, and unknown keys pass through. Events go out in batches over
 * PUSH, or over DEALER with --ack, where every rejection comes back and is
 * reported against the input line it came from. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PROG "nousu-send"
#define MAX_LINE (64u * 1024 * 1024)

/* Where an event came from, to report its rejection. */
typedef struct origin {
    const char *file;
    uint32_t line, idx;
} origin;

typedef struct sender {
    nousu_producer *p;
    bool ack, quiet;
    msgpack_sbuffer sb; /* one event, converted */
    msgpack_packer pk;
    /* Origins of the events added and not yet acknowledged: org[k] is the
     * event with index org_base + k among all events added (ack mode only). */
    origin *org;
    size_t n_org, cap_org;
    uint64_t org_base;
    uint64_t lines, invalid, events, too_large;
} sender;

static void usage(FILE *f) {
    fprintf(f,
            "Usage: " PROG " [OPTIONS] [FILE...]\n"
            "Send engagement events to nousud. Each input line (FILE, or stdin when\n"
            "none or '-') is a JSON object (one event) or a JSON array of them.\n"
            "JSON strings, integers, reals, true/false and null become msgpack str,\n"
            "int, float64, bool and nil; unknown keys pass through.\n"
            "\n"
            "  -e, --endpoint URL      ZeroMQ endpoint (default " NOUSU_DEFAULT_INGEST ",\n"
            "                          with --ack " NOUSU_DEFAULT_INGEST_ACK ")\n"
            "  -a, --ack               acknowledged ingest: wait for each batch's ack,\n"
            "                          report every rejected event as FILE:LINE/INDEX\n"
            "  -b, --batch N           events per message, 1..10000 (default 1000)\n"
            "      --timeout-ms MS     ack wait per attempt (default 3000)\n"
            "      --retries N         resends of an unacknowledged batch (default 3)\n"
            "      --linger-ms MS      at exit, wait this long for queued batches (default 2000)\n"
            "      --curve-server-key KEY  the daemon's CURVE public key (Z85)\n"
            "      --curve-keys FILE   this client's public and secret key, one per line\n"
            "  -q, --quiet             no per-event error lines, only the summary\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "A summary goes to stderr. Exit status: 0 all sent (and, with --ack, all\n"
            "accepted or duplicates), 1 an invalid line, a rejected event or a send\n"
            "failure, 2 bad usage.\n");
}

/* ------------------------------------------------------- JSON -> msgpack */

static int pack_text(msgpack_packer *pk, const char *s, size_t n) {
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

/* Recursion is bounded by jansson's parser depth limit. */
static int pack_json(msgpack_packer *pk, json_t *j) {
    const char *key;
    json_t *v;
    size_t i;
    int r = 0;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        r = msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach(j, key, v) r |= pack_text(pk, key, strlen(key)) | pack_json(pk, v);
        return r;
    case JSON_ARRAY:
        r = msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v) r |= pack_json(pk, v);
        return r;
    case JSON_STRING:
        return pack_text(pk, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(j));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

/* ------------------------------------------------------------ ack report */

static const origin *origin_of(const sender *s, uint64_t event) {
    if (event < s->org_base || event - s->org_base >= s->n_org)
        return NULL;
    return &s->org[event - s->org_base];
}

static void report_error(const sender *s, const nousu_ack *a, const nousu_ack_error *e) {
    const origin *o = e->i >= 0 && e->i < a->events ? origin_of(s, a->first + (uint64_t)e->i) : NULL;
    const origin *lo = origin_of(s, a->first), *hi = origin_of(s, a->first + a->events - 1);
    if (o)
        fprintf(stderr, "%s:%u/%u: %s\n", o->file, o->line, o->idx, e->reason);
    else if (lo && hi) /* i = -1: the whole frame */
        fprintf(stderr, "%s:%u/%u..%s:%u/%u: %s (whole batch)\n", lo->file, lo->line, lo->idx,
                hi->file, hi->line, hi->idx, e->reason);
    else
        fprintf(stderr, PROG ": batch %llu, event %lld: %s\n", (unsigned long long)a->batch,
                (long long)e->i, e->reason);
}

static void on_ack(const nousu_ack *a, void *ud) {
    sender *s = ud;
    if (!s->quiet)
        for (size_t k = 0; k < a->n_errors; k++)
            report_error(s, a, &a->errors[k]);
    /* Forget the origins of this batch and of anything before it. */
    uint64_t done = a->first + a->events;
    if (done > s->org_base) {
        size_t drop = done - s->org_base < s->n_org ? (size_t)(done - s->org_base) : s->n_org;
        memmove(s->org, s->org + drop, (s->n_org - drop) * sizeof *s->org);
        s->n_org -= drop;
        s->org_base += drop;
    }
}

static int origin_push(sender *s, const char *file, uint32_t line, uint32_t idx) {
    if (s->n_org == s->cap_org) {
        size_t cap = s->cap_org ? 2 * s->cap_org : 1024;
        origin *o = realloc(s->org, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        s->org = o;
        s->cap_org = cap;
    }
    s->org[s->n_org++] = (origin){file, line, idx};
    return 0;
}

/* --------------------------------------------------------------- sending */

/* Send one event; returns 0, or -errno when sending must stop. */
static int send_event(sender *s, json_t *ev, const char *file, uint32_t line, uint32_t idx) {
    msgpack_sbuffer_clear(&s->sb);
    if (pack_json(&s->pk, ev) != 0)
        return -ENOMEM;
    if (s->ack && origin_push(s, file, line, idx) < 0)
        return -ENOMEM;
    int r = nousu_producer_add_raw(s->p, s->sb.data, s->sb.size);
    if (r < 0 && s->ack)
        s->n_org--; /* not added: not ours to map */
    if (r == -EMSGSIZE) {
        fprintf(stderr, "%s:%u/%u: event of %zu bytes is larger than a message may be, skipped\n",
                file, line, idx, s->sb.size);
        s->too_large++;
        return 0;
    }
    if (r == 0)
        s->events++;
    return r;
}

static int send_line(sender *s, char *text, size_t len, const char *file, uint32_t line) {
    json_error_t e;
    size_t i;
    json_t *v;
    int r = 0;
    if (strspn(text, " \t\r\n") == len)
        return 0; /* blank line */
    json_t *j = len <= MAX_LINE ? json_loadb(text, len, 0, &e) : NULL;
    if (!j) {
        fprintf(stderr, "%s:%u: %s\n", file, line, len <= MAX_LINE ? e.text : "line too long");
        s->invalid++;
        return 0;
    }
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (r == 0) r = send_event(s, v, file, line, (uint32_t)i);
    } else {
        r = send_event(s, j, file, line, 0);
    }
    json_decref(j);
    return r;
}

static int send_file(sender *s, const char *path) {
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    uint32_t line = 0;
    int r = 0;
    if (!f) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        return -errno;
    }
    while (r == 0 && !cli_stop && (len = getline(&buf, &cap, f)) >= 0) {
        s->lines++;
        r = send_line(s, buf, (size_t)len, name, ++line);
    }
    free(buf);
    if (!is_stdin)
        fclose(f);
    return r;
}

static void summary(const sender *s, const nousu_producer_stats *st) {
    fprintf(stderr, PROG ": %llu events sent in %llu batches (%llu lines, %llu invalid",
            (unsigned long long)st->events_sent, (unsigned long long)st->batches_sent,
            (unsigned long long)s->lines, (unsigned long long)s->invalid);
    if (s->too_large)
        fprintf(stderr, ", %llu events too large", (unsigned long long)s->too_large);
    if (st->buffered)
        fprintf(stderr, ", %llu events not sent", (unsigned long long)st->buffered);
    fprintf(stderr, ")");
    if (s->ack)
        fprintf(stderr, "; ok %llu, dup %llu, rejected %llu", (unsigned long long)st->ok,
                (unsigned long long)st->dup, (unsigned long long)st->rejected);
    fprintf(stderr, "\n");
}

/* --------------------------------------------------------------- options */

typedef struct options {
    const char *endpoint, *server_key, *key_file;
    bool ack, quiet;
    int64_t batch, timeout_ms, retries, linger_ms;
} options;

enum { OPT_TIMEOUT = 256, OPT_RETRIES, OPT_LINGER, OPT_SERVER_KEY, OPT_KEYS };

static int parse_options(int argc, char **argv, options *o) {
    static const struct option longs[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"ack", no_argument, NULL, 'a'},
        {"batch", required_argument, NULL, 'b'},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"linger-ms", required_argument, NULL, OPT_LINGER},
        {"curve-server-key", required_argument, NULL, OPT_SERVER_KEY},
        {"curve-keys", required_argument, NULL, OPT_KEYS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    *o = (options){.batch = NOUSU_DEFAULT_BATCH, .timeout_ms = 3000, .retries = 3,
                   .linger_ms = 2000};
    while ((c = getopt_long(argc, argv, "e:ab:qhV", longs, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'e': o->endpoint = optarg; break;
        case 'a': o->ack = true; break;
        case 'q': o->quiet = true; break;
        case 'b': ok = cli_int(PROG, "--batch", optarg, 1, NOUSU_MAX_BATCH_EVENTS, &o->batch); break;
        case OPT_TIMEOUT: ok = cli_int(PROG, "--timeout-ms", optarg, 1, 86400000, &o->timeout_ms); break;
        case OPT_RETRIES: ok = cli_int(PROG, "--retries", optarg, 0, 1000000, &o->retries); break;
        case OPT_LINGER: ok = cli_int(PROG, "--linger-ms", optarg, 0, 86400000, &o->linger_ms); break;
        case OPT_SERVER_KEY: o->server_key = optarg; break;
        case OPT_KEYS: o->key_file = optarg; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf(PROG " %s\n", nousu_version()); exit(0);
        default: ok = false;
        }
        if (!ok) {
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return -EINVAL;
        }
    }
    if (!o->endpoint)
        o->endpoint = o->ack ? NOUSU_DEFAULT_INGEST_ACK : NOUSU_DEFAULT_INGEST;
    return 0;
}

static nousu_producer *producer_open(const options *o, sender *s, const nousu_curve *curve) {
    nousu_producer_opts po = {
        .mode = o->ack ? NOUSU_MODE_ACK : NOUSU_MODE_PUSH,
        .batch_size = (uint32_t)o->batch,
        .ack_timeout_ms = (int)o->timeout_ms,
        .retries = o->retries ? (int)o->retries : -1,
        .linger_ms = o->linger_ms ? (int)o->linger_ms : -1,
        .curve = curve,
        .on_ack = on_ack,
        .userdata = s,
    };
    nousu_producer *p = nousu_producer_new(o->endpoint, &po);
    if (!p)
        fprintf(stderr, PROG ": %s: %s\n", o->endpoint, strerror(errno));
    return p;
}

int main(int argc, char **argv) {
    options o;
    cli_curve cc;
    bool use_curve;
    sender s = {0};
    int r = 0;
    if (parse_options(argc, argv, &o) < 0 ||
        !cli_curve_load(PROG, o.server_key, o.key_file, &cc, &use_curve))
        return CLI_EXIT_USAGE;
    cli_signals();
    s.ack = o.ack;
    s.quiet = o.quiet;
    msgpack_sbuffer_init(&s.sb);
    msgpack_packer_init(&s.pk, &s.sb, msgpack_sbuffer_write);
    s.p = producer_open(&o, &s, use_curve ? &cc.keys : NULL);
    if (!s.p)
        return CLI_EXIT_FAIL;
    if (optind == argc)
        r = send_file(&s, "-");
    for (int i = optind; i < argc && r == 0 && !cli_stop; i++)
        r = send_file(&s, argv[i]);
    int fr = nousu_producer_flush(s.p);
    if (r == 0)
        r = fr;
    if (r < 0)
        fprintf(stderr, PROG ": sending to %s failed: %s\n", o.endpoint,
                r == -ETIMEDOUT ? "no ack (is nousud running?)" : strerror(-r));
    nousu_producer_stats st;
    nousu_producer_stats_get(s.p, &st);
    summary(&s, &st);
    nousu_producer_destroy(&s.p);
    msgpack_sbuffer_destroy(&s.sb);
    free(s.org);
    bool bad = r < 0 || s.invalid || s.too_large || (s.ack && st.rejected);
    return bad ? CLI_EXIT_FAIL : 0;
}
