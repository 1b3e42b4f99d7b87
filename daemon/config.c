/* config.c -- every setting of nousud, in one table.
 *
 * First stage of the pipeline: argv and the config file become a `config`
 * that main.c hands to every other stage. The table below is the only place
 * a setting is described: its name, type, field, default, bounds, whether
 * SIGHUP may change it, and its help text. Loading the file, `--key=value`,
 * defaults (parsed from their text like any other value), --check-config,
 * --help, the dump and the reload check all walk the same table (Redis
 * static_configs[], Fluent Bit config_map).
 *
 * Pure: no logging, no global mutable state; errors come back as one line of
 * text in the caller's buffer. Secrets are never read here, only the names of
 * the files that hold them. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "config.h"

typedef enum setting_type {
    SET_STR,  /* char *, any text within the length bounds */
    SET_ENUM, /* char *, one of `choices` */
    SET_INT,  /* int64_t within imin..imax */
    SET_DBL,  /* finite double within dmin..dmax */
} setting_type;

/* Format check of a string value; writes the reason into why. */
typedef int (*str_check_fn)(const char *v, char *why, size_t whylen);

typedef struct setting {
    const char *name;
    const char *group;
    setting_type type;
    size_t offset;
    const char *def;            /* default, spelled as in the file */
    int64_t imin, imax;         /* SET_INT: bounds; SET_STR: length bounds */
    double dmin, dmax;          /* SET_DBL: bounds */
    str_check_fn check;         /* SET_STR: may be NULL */
    const char *const *choices; /* SET_ENUM: NULL-terminated */
    bool reload;                /* SIGHUP may change it */
    const char *help;
} setting;

#define RELOAD true
#define RESTART false

#define STR_(x) #x
#define STR(x) STR_(x)

#define CFG_STR(f, grp, dflt, lo, hi, chk, rel, text)                          \
    { .name = #f, .group = grp, .type = SET_STR, .offset = offsetof(config, f), \
      .def = dflt, .imin = lo, .imax = hi, .check = chk, .reload = rel,         \
      .help = text }
#define CFG_ENUM(f, grp, dflt, list, rel, text)                                 \
    { .name = #f, .group = grp, .type = SET_ENUM, .offset = offsetof(config, f), \
      .def = dflt, .choices = list, .reload = rel, .help = text }
#define CFG_INT(f, grp, dflt, lo, hi, rel, text)                                \
    { .name = #f, .group = grp, .type = SET_INT, .offset = offsetof(config, f), \
      .def = #dflt, .imin = lo, .imax = hi, .reload = rel, .help = text }
#define CFG_DBL(f, grp, dflt, lo, hi, rel, text)                                \
    { .name = #f, .group = grp, .type = SET_DBL, .offset = offsetof(config, f), \
      .def = #dflt, .dmin = lo, .dmax = hi, .reload = rel, .help = text }

/* SPEC §5 weights; one per EVENT_TYPES entry (a new type without a default
 * here does not compile). */
#define WEIGHT_VIEW 0
#define WEIGHT_LIKE 1
#define WEIGHT_COMMENT 3
#define WEIGHT_SHARE 4
#define WEIGHT_SAVE 4
#define WEIGHT_MENTION 5
#define WEIGHT_FOLLOW 0
#define WEIGHT_UNFOLLOW 0
#define WEIGHT_POST 0
#define CFG_WEIGHT(id, wname)                                                  \
    { .name = "weight_" wname, .group = G_WEIGHTS, .type = SET_INT,            \
      .offset = offsetof(config, weight) + (size_t)EV_##id * sizeof(int64_t),  \
      .def = STR(WEIGHT_##id), .imin = 0, .imax = 1000000, .reload = RELOAD,   \
      .help = "weight of one '" wname "' in the weighted engagement E" },

#define G_ENDPOINTS "Endpoints (SPEC 2)"
#define G_REDIS "Redis"
#define G_LOGSEC "Logging and security"
#define G_INPUT "Input limits (SPEC 3)"
#define G_STREAMS "Streams"
#define G_WINDOWS "Windows and retention (SPEC 5)"
#define G_TIERS "Tiers by follower count (SPEC 5)"
#define G_WEIGHTS "Weights (SPEC 5)"
#define G_DETECT "Detection (SPEC 5)"
#define G_BOARD "Leaderboard (SPEC 5)"

static const char *const log_levels[] = {"debug", "info", "notice", "warning", "err", NULL};
static const char *const hint_modes[] = {"off", "on", "verify", NULL};
static const char *const on_off[] = {"off", "on", NULL};

static int check_endpoint(const char *v, char *why, size_t whylen);
static int check_hostport(const char *v, char *why, size_t whylen);
static int check_token(const char *v, char *why, size_t whylen);
static int check_prefix(const char *v, char *why, size_t whylen);

static const setting settings[] = {
    CFG_STR(ingest, G_ENDPOINTS, "tcp://127.0.0.1:7710", 0, 1024, check_endpoint, RESTART,
            "ZeroMQ PULL endpoint (bind) for fire-and-forget events; empty disables"),
    CFG_STR(ingest_ack, G_ENDPOINTS, "tcp://127.0.0.1:7711", 0, 1024, check_endpoint, RESTART,
            "ZeroMQ ROUTER endpoint (bind) for acknowledged events; empty disables"),
    CFG_STR(alerts, G_ENDPOINTS, "tcp://127.0.0.1:7712", 0, 1024, check_endpoint, RESTART,
            "ZeroMQ PUB endpoint (bind) for alerts; empty disables"),
    CFG_STR(control, G_ENDPOINTS, "tcp://127.0.0.1:7713", 0, 1024, check_endpoint, RESTART,
            "ZeroMQ ROUTER endpoint (bind) for control queries; empty disables"),
    CFG_STR(metrics, G_ENDPOINTS, "127.0.0.1:9710", 0, 262, check_hostport, RESTART,
            "host:port of the HTTP /metrics and /healthz listener; empty disables"),

    CFG_STR(redis_host, G_REDIS, "127.0.0.1", 1, 255, check_token, RESTART,
            "Redis server host name or address"),
    CFG_INT(redis_port, G_REDIS, 6379, 1, 65535, RESTART, "Redis server TCP port"),
    CFG_INT(redis_db, G_REDIS, 0, 0, INT32_MAX, RESTART, "Redis database number (SELECT)"),
    CFG_STR(redis_user, G_REDIS, "", 0, 256, check_token, RESTART,
            "Redis ACL user name; empty: the default user"),
    CFG_STR(redis_password_file, G_REDIS, "", 0, 4096, NULL, RESTART,
            "file holding the Redis password on its first line; empty: no AUTH"),
    CFG_INT(redis_timeout_ms, G_REDIS, 2000, 1, 3600000, RESTART,
            "Redis connect and command timeout, milliseconds"),
    CFG_STR(key_prefix, G_REDIS, "nousu:", 1, 64, check_prefix, RESTART,
            "prefix of every Redis key and stream; no '{', '}' or whitespace"),

    CFG_ENUM(log_level, G_LOGSEC, "info", log_levels, RELOAD,
             "lowest level logged: debug, info, notice, warning or err"),
    CFG_STR(curve_secret_key_file, G_LOGSEC, "", 0, 4096, NULL, RESTART,
            "file with the server's Z85 CURVE secret key; set with curve_allowed_keys_file"),
    CFG_STR(curve_allowed_keys_file, G_LOGSEC, "", 0, 4096, NULL, RESTART,
            "file with one allowed Z85 client public key per line; empty: no CURVE"),

    CFG_INT(max_frame_bytes, G_INPUT, 1048576, 64, INT64_C(1073741824), RESTART,
            "largest accepted frame, bytes; larger is rejected whole as oversize"),
    CFG_INT(max_batch_events, G_INPUT, 10000, 1, 10000000, RESTART,
            "most events in one batch; more is rejected whole as batch_too_large"),
    CFG_INT(transport_max_bytes, G_INPUT, 16777216, 64, INT64_C(4294967296), RESTART,
            "ZMQ_MAXMSGSIZE: larger messages disconnect the sender; >= max_frame_bytes"),
    CFG_INT(rcvhwm, G_INPUT, 100, 1, 100000000, RESTART,
            "ZMQ_RCVHWM of the ingest sockets, messages (per producer connection); "
            "the daemon's memory is mostly rcvhwm x frame size"),
    CFG_INT(sndhwm, G_INPUT, 10000, 1, 100000000, RESTART,
            "ZMQ_SNDHWM of the alerts PUB socket, messages"),
    CFG_INT(iteration_max_events, G_INPUT, 20000, 1, 10000000, RELOAD,
            "most events in one batch (one Redis commit); one batch fills while another commits"),
    CFG_INT(commit_interval_ms, G_INPUT, 0, 0, 10000, RELOAD,
            "least time between the starts of two commits while one is under way, unless "
            "the batch is full: fewer larger commits under load, cheaper in Redis; "
            "0: a commit as soon as there is room"),
    CFG_INT(lateness_s, G_INPUT, 86400, 0, 31536000, RELOAD,
            "events older than this behind their creator's newest event are too_old, seconds"),
    CFG_INT(future_s, G_INPUT, 300, 0, 31536000, RELOAD,
            "events further ahead of the wall clock are rejected as future, seconds"),

    CFG_INT(deadletter_maxlen, G_STREAMS, 100000, 1, 1000000000, RELOAD,
            "approximate cap of the <key_prefix>deadletter stream, entries"),
    CFG_INT(deadletter_raw_max, G_STREAMS, 4096, 0, 1048576, RELOAD,
            "rejected bytes kept per dead-letter entry"),
    CFG_INT(alerts_maxlen, G_STREAMS, 1000000, 1, 1000000000, RELOAD,
            "approximate cap of the <key_prefix>alerts stream, entries"),

    CFG_INT(bucket_s, G_WINDOWS, 3600, 60, 86400, RESTART,
            "event-time bucket width, seconds; divides window_s and baseline_s"),
    CFG_INT(window_s, G_WINDOWS, 86400, 60, 2592000, RESTART,
            "recent window ending at the creator's newest event, seconds"),
    CFG_INT(baseline_s, G_WINDOWS, 604800, 60, 7776000, RESTART,
            "baseline span before the recent window, seconds"),
    CFG_INT(min_history_s, G_WINDOWS, 259200, 0, 31536000, RELOAD,
            "event time since a creator's first event before it may be flagged, seconds"),
    CFG_INT(dedup_horizon_s, G_WINDOWS, 120, 1, 604800, RELOAD,
            "how long event ids are remembered for dedup, wall-clock seconds"),
    CFG_INT(dedup_buckets, G_WINDOWS, 16, 1, 65536, RELOAD,
            "at least this many Redis sets hold a 60 s slice's remembered ids (a slice "
            "sizes itself from the one before, and grows in a surge)"),
    CFG_ENUM(commit_hints, G_WINDOWS, "on", hint_modes, RELOAD,
             "on: the daemon computes the state after a hot run and Redis only checks and "
             "writes it; off; verify: Redis computes it too and fails the commit on any "
             "difference (tests)"),
    CFG_ENUM(commit_stash, G_WINDOWS, "on", on_off, RESTART,
             "on: when Redis has the nousu module's NOUSU.STASH, a commit's hints go to it "
             "just before the commit, which then reads them there, not as arguments (Lua "
             "would hash every byte of them); off: as arguments"),
    CFG_INT(dedup_set_ids, G_WINDOWS, 0, 0, 1000000, RELOAD,
            "remembered ids per Redis set aimed at; below Redis's set-max-intset-entries "
            "a set stays a compact intset, about 8 bytes an id; 0: 3/4 of that setting "
            "as read from Redis (384 when it cannot be read)"),
    CFG_INT(dedup_filter_mb, G_WINDOWS, 128, 0, 65536, RESTART,
            "the ids this daemon sent within the dedup horizon, as Bloom filters (about "
            "1.5 bytes an id), MiB: while it is Redis's only writer, Redis then looks up "
            "only the ids they may hold; 0: none, every id is looked up"),
    CFG_INT(state_cache_mb, G_WINDOWS, 64, 0, 65536, RESTART,
            "the creators' states the daemon keeps to compute hints without reading Redis "
            "first, MiB (about 0.3 KiB a creator); 0: none, and no hints"),
    CFG_INT(request_ttl_s, G_WINDOWS, 86400, 1, 2592000, RESTART,
            "how long acknowledged request ids and their acks are remembered, seconds"),

    CFG_INT(tier_micro_min, G_TIERS, 1000, 1, INT64_C(10000000000), RELOAD,
            "fewest followers of a micro creator (below: nano)"),
    CFG_INT(tier_micro_max, G_TIERS, 10000, 1, INT64_C(10000000000), RELOAD,
            "most followers of a micro creator"),
    CFG_INT(tier_mid_max, G_TIERS, 100000, 1, INT64_C(10000000000), RELOAD,
            "most followers of a mid creator (above: macro)"),

    EVENT_TYPES(CFG_WEIGHT)

    CFG_DBL(prior_rate, G_DETECT, 0.03, 1e-6, 10, RELOAD,
            "baseline prior: daily weighted engagement per follower (> 0 keeps mu > 0)"),
    CFG_DBL(rising_min_engagement, G_DETECT, 50, 0, 1e15, RELOAD,
            "rising: least weighted engagement E over the recent window"),
    CFG_DBL(rising_min_velocity, G_DETECT, 3, 0, 1e6, RELOAD,
            "rising: least velocity E / mu"),
    CFG_DBL(rising_min_z, G_DETECT, 4, 0, 1e6, RELOAD,
            "rising: least z = (E - mu) / sqrt(mu + 1)"),
    CFG_DBL(rising_min_rate, G_DETECT, 0.03, 0, 1e6, RELOAD,
            "rising: least engagement rate E / followers"),
    CFG_INT(audience_min_interactions, G_DETECT, 30, 0, 1000000000, RELOAD,
            "interactions with an actor needed before the audience rule applies"),
    CFG_DBL(audience_min_unique_ratio, G_DETECT, 0.3, 0, 1, RELOAD,
            "least unique engagers / interactions with an actor"),
    CFG_DBL(suspicious_follower_jump, G_DETECT, 0.2, 0, 1e6, RELOAD,
            "suspicious: follower growth over the window at least this fraction..."),
    CFG_DBL(suspicious_max_velocity, G_DETECT, 1.5, 0, 1e6, RELOAD,
            "...while velocity E / mu stays under this"),
    CFG_INT(cooldown_s, G_DETECT, 86400, 0, 31536000, RELOAD,
            "at most one alert of a kind per creator per this much event time, seconds"),

    CFG_DBL(board_min_velocity, G_BOARD, 1.5, 0, 1e6, RELOAD,
            "a creator leaves its niche's board when its velocity falls under this"),
    CFG_INT(board_stale_s, G_BOARD, 86400, 1, 31536000, RELOAD,
            "...or after this much event time without an event while its niche moves on"),
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void *field(config *c, const setting *s) { return (char *)c + s->offset; }

static const void *cfield(const config *c, const setting *s) {
    return (const char *)c + s->offset;
}

static bool is_string(const setting *s) { return s->type == SET_STR || s->type == SET_ENUM; }

static const setting *setting_find(const char *name, size_t len) {
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

/* ---- string format checks ---------------------------------------------- */

static bool has_space(const char *v) {
    for (; *v; v++)
        if (isspace((unsigned char)*v))
            return true;
    return false;
}

static int check_endpoint(const char *v, char *why, size_t whylen) {
    const char *sep = strstr(v, "://");

    if (*v == '\0')
        return 0;
    if (!sep || sep == v || sep[3] == '\0' || has_space(v)) {
        seterr(why, whylen, "expected transport://address (e.g. tcp://127.0.0.1:7710) "
                            "or empty to disable");
        return -EINVAL;
    }
    return 0;
}

static int check_hostport(const char *v, char *why, size_t whylen) {
    const char *colon = strrchr(v, ':');
    char *end;
    long port;

    if (*v == '\0')
        return 0;
    if (colon && colon != v && isdigit((unsigned char)colon[1]) && !has_space(v)) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (*end == '\0' && errno == 0 && port >= 1 && port <= 65535)
            return 0;
    }
    seterr(why, whylen, "expected host:port (e.g. 127.0.0.1:9710) or empty to disable");
    return -EINVAL;
}

static int check_token(const char *v, char *why, size_t whylen) {
    if (has_space(v)) {
        seterr(why, whylen, "must not contain whitespace");
        return -EINVAL;
    }
    return 0;
}

/* Braces would make the prefix a Redis Cluster hash tag and pin every key
 * to one slot, or break the store's own tags. */
static int check_prefix(const char *v, char *why, size_t whylen) {
    if (strpbrk(v, "{}") || has_space(v)) {
        seterr(why, whylen, "must not contain '{', '}' or whitespace");
        return -EINVAL;
    }
    return 0;
}

/* ---- value checks, shared by config_set and config_validate ------------- */

static int check_str(const setting *s, const char *v, char *why, size_t whylen) {
    size_t len;

    if (!v) {
        seterr(why, whylen, "not set");
        return -EINVAL;
    }
    len = strlen(v);
    if ((int64_t)len < s->imin) {
        seterr(why, whylen, "must not be empty");
        return -EINVAL;
    }
    if ((int64_t)len > s->imax) {
        seterr(why, whylen, "longer than %" PRId64 " characters", s->imax);
        return -EINVAL;
    }
    /* Keeps every value writable as one (quoted) line of a config file. */
    for (const char *p = v; *p; p++)
        if (*p == '"' || iscntrl((unsigned char)*p)) {
            seterr(why, whylen, "must not contain '\"' or control characters");
            return -EINVAL;
        }
    return s->check ? s->check(v, why, whylen) : 0;
}

static int check_enum(const setting *s, const char *v, char *why, size_t whylen) {
    for (const char *const *ch = s->choices; v && *ch; ch++)
        if (strcmp(*ch, v) == 0)
            return 0;
    seterr(why, whylen, "must be one of:");
    for (const char *const *ch = s->choices; *ch; ch++) {
        size_t n = strlen(why);

        seterr(why + n, whylen - n, " %s", *ch);
    }
    return -EINVAL;
}

static int check_int(const setting *s, int64_t x, char *why, size_t whylen) {
    if (x < s->imin || x > s->imax) {
        seterr(why, whylen, "out of range %" PRId64 "..%" PRId64, s->imin, s->imax);
        return -ERANGE;
    }
    return 0;
}

static int check_dbl(const setting *s, double x, char *why, size_t whylen) {
    if (!isfinite(x)) {
        seterr(why, whylen, "not a finite number");
        return -EINVAL;
    }
    if (x < s->dmin || x > s->dmax) {
        seterr(why, whylen, "out of range %g..%g", s->dmin, s->dmax);
        return -ERANGE;
    }
    return 0;
}

/* Checks the value a setting holds in c. */
static int setting_check(const setting *s, const config *c, char *why, size_t whylen) {
    const void *f = cfield(c, s);

    switch (s->type) {
    case SET_STR:
        return check_str(s, *(char *const *)f, why, whylen);
    case SET_ENUM:
        return check_enum(s, *(char *const *)f, why, whylen);
    case SET_INT:
        return check_int(s, *(const int64_t *)f, why, whylen);
    case SET_DBL:
        return check_dbl(s, *(const double *)f, why, whylen);
    }
    return -EINVAL;
}

/* ---- parsing one value --------------------------------------------------- */

/* Strict: optional '-', digits, nothing else (no spaces, '+', hex or suffixes). */
static int parse_int(const setting *s, const char *v, int64_t *ret, char *why, size_t whylen) {
    const char *d = v[0] == '-' ? v + 1 : v;
    char *end;
    long long x;

    if (!isdigit((unsigned char)*d)) {
        seterr(why, whylen, "not an integer");
        return -EINVAL;
    }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (*end != '\0') {
        seterr(why, whylen, "not an integer");
        return -EINVAL;
    }
    if (errno == ERANGE) {
        seterr(why, whylen, "out of range %" PRId64 "..%" PRId64, s->imin, s->imax);
        return -ERANGE;
    }
    *ret = x;
    return check_int(s, x, why, whylen);
}

static int parse_dbl(const setting *s, const char *v, double *ret, char *why, size_t whylen) {
    char *end;
    double x;

    if (!(isdigit((unsigned char)*v) || (*v && strchr("+-.", *v)))) {
        seterr(why, whylen, "not a number");
        return -EINVAL;
    }
    x = strtod(v, &end);
    if (*end != '\0') {
        seterr(why, whylen, "not a number");
        return -EINVAL;
    }
    *ret = x;
    return check_dbl(s, x, why, whylen);
}

static int set_string(const setting *s, config *c, const char *v, char *why, size_t whylen) {
    char **f = field(c, s);
    char *dup;
    int r;

    r = s->type == SET_ENUM ? check_enum(s, v, why, whylen) : check_str(s, v, why, whylen);
    if (r < 0)
        return r;
    dup = strdup(v);
    if (!dup) {
        seterr(why, whylen, "out of memory");
        return -ENOMEM;
    }
    free(*f);
    *f = dup;
    return 0;
}

/* Parses v into the setting's field; c is unchanged on failure. */
static int setting_set(const setting *s, config *c, const char *v, char *why, size_t whylen) {
    int64_t i;
    double d;
    int r;

    switch (s->type) {
    case SET_STR:
    case SET_ENUM:
        return set_string(s, c, v, why, whylen);
    case SET_INT:
        r = parse_int(s, v, &i, why, whylen);
        if (r == 0)
            *(int64_t *)field(c, s) = i;
        return r < 0 ? -EINVAL : 0;
    case SET_DBL:
        r = parse_dbl(s, v, &d, why, whylen);
        if (r == 0)
            *(double *)field(c, s) = d;
        return r < 0 ? -EINVAL : 0;
    }
    return -EINVAL;
}

static bool setting_equal(const setting *s, const config *a, const config *b) {
    const void *fa = cfield(a, s), *fb = cfield(b, s);
    const char *sa, *sb;

    switch (s->type) {
    case SET_STR:
    case SET_ENUM:
        sa = *(char *const *)fa;
        sb = *(char *const *)fb;
        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    case SET_INT:
        return *(const int64_t *)fa == *(const int64_t *)fb;
    case SET_DBL:
        return *(const double *)fa == *(const double *)fb;
    }
    return false;
}

/* ---- lifecycle ------------------------------------------------------------ */

int config_init(config *c) {
    char why[160];
    int r;

    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        r = setting_set(&settings[i], c, settings[i].def, why, sizeof why);
        if (r < 0) {
            config_free(c);
            return r; /* -ENOMEM; a bad default is caught by the unit test */
        }
    }
    return 0;
}

void config_free(config *c) {
    if (!c)
        return;
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (is_string(&settings[i])) {
            char **f = field(c, &settings[i]);
            free(*f);
            *f = NULL;
        }
}

int config_copy(config *dst, const config *src) {
    config tmp = *src;

    for (size_t i = 0; i < N_SETTINGS; i++)
        if (is_string(&settings[i]))
            *(char **)field(&tmp, &settings[i]) = NULL;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v;
        char **f;

        if (!is_string(&settings[i]))
            continue;
        v = *(char *const *)cfield(src, &settings[i]);
        f = field(&tmp, &settings[i]);
        if (v && !(*f = strdup(v))) {
            config_free(&tmp);
            return -ENOMEM;
        }
    }
    *dst = tmp;
    return 0;
}

int config_set(config *c, const char *key, const char *value, char *err, size_t errlen) {
    const setting *s = setting_find(key, strlen(key));
    char why[160];
    int r;

    if (!s) {
        seterr(err, errlen, "unknown key '%s'", key);
        return -EINVAL;
    }
    r = setting_set(s, c, value, why, sizeof why);
    if (r < 0)
        seterr(err, errlen, "%s: '%s' %s", key, value, why);
    return r;
}

/* ---- the file ------------------------------------------------------------- */

static char *skip_space(char *p) {
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static void trim_right(char *p) {
    size_t n = strlen(p);

    while (n > 0 && isspace((unsigned char)p[n - 1]))
        p[--n] = '\0';
}

/* The text after '=': a double-quoted value is taken literally up to the
 * next '"'; otherwise a '#' at the start or after whitespace opens a
 * comment, and surrounding whitespace is dropped. */
static int split_value(char *p, char **ret_value, const char **why) {
    char *q;

    p = skip_space(p);
    if (*p == '"') {
        q = strchr(p + 1, '"');
        if (!q) {
            *why = "unterminated quoted value";
            return -EINVAL;
        }
        *q = '\0';
        q = skip_space(q + 1);
        if (*q != '\0' && *q != '#') {
            *why = "unexpected text after the closing quote";
            return -EINVAL;
        }
        *ret_value = p + 1;
        return 1;
    }
    for (q = p; *q; q++)
        if (*q == '#' && (q == p || isspace((unsigned char)q[-1]))) {
            *q = '\0';
            break;
        }
    trim_right(p);
    *ret_value = p;
    return 1;
}

/* Splits one line in place. Returns 0 for a blank or comment line, 1 with
 * key and value set, or -EINVAL with why set. */
static int split_line(char *line, char **ret_key, char **ret_value, const char **why) {
    char *p = skip_space(line), *eq;

    if (*p == '\0' || *p == '#')
        return 0;
    eq = strchr(p, '=');
    if (!eq) {
        *why = "expected 'key = value'";
        return -EINVAL;
    }
    *eq = '\0';
    trim_right(p);
    if (*p == '\0') {
        *why = "missing key before '='";
        return -EINVAL;
    }
    *ret_key = p;
    return split_value(eq + 1, ret_value, why);
}

/* Applies one line; seen[] holds the line each key was first set on. */
static int load_line(config *c, char *line, size_t len, const char *path, unsigned lineno,
                     unsigned *seen, char *err, size_t errlen) {
    const char *what = NULL;
    char *key, *value, why[160];
    const setting *s;
    int r;

    if (strlen(line) != len) {
        seterr(err, errlen, "%s:%u: NUL byte in line", path, lineno);
        return -EINVAL;
    }
    r = split_line(line, &key, &value, &what);
    if (r <= 0) {
        if (r < 0)
            seterr(err, errlen, "%s:%u: %s", path, lineno, what);
        return r;
    }
    s = setting_find(key, strlen(key));
    if (!s) {
        seterr(err, errlen, "%s:%u: unknown key '%s'", path, lineno, key);
        return -EINVAL;
    }
    if (seen[s - settings]) {
        seterr(err, errlen, "%s:%u: %s: already set on line %u", path, lineno, key,
               seen[s - settings]);
        return -EINVAL;
    }
    seen[s - settings] = lineno;
    r = setting_set(s, c, value, why, sizeof why);
    if (r < 0)
        seterr(err, errlen, "%s:%u: %s: '%s' %s", path, lineno, key, value, why);
    return r;
}

int config_load_file(config *c, const char *path, char *err, size_t errlen) {
    unsigned seen[N_SETTINGS] = {0}, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    FILE *f;
    int r = 0;

    f = fopen(path, "re");
    if (!f) {
        r = -errno;
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return r;
    }
    while (r == 0 && (len = getline(&line, &cap, f)) >= 0)
        r = load_line(c, line, (size_t)len, path, ++lineno, seen, err, errlen);
    if (r == 0 && ferror(f)) {
        r = -EIO;
        seterr(err, errlen, "%s: read error", path);
    }
    free(line);
    fclose(f);
    return r < 0 ? r : 0;
}

/* ---- argv ----------------------------------------------------------------- */

static bool is_key_arg(const char *a) {
    return strncmp(a, "--", 2) == 0 && strchr(a, '=') && strncmp(a, "--config=", 9) != 0;
}

/* Raises the action: help beats version beats check-config beats run. */
static void want(config_action *action, config_action a) {
    static const int rank[] = {[CONFIG_RUN] = 0, [CONFIG_CHECK] = 1,
                               [CONFIG_VERSION] = 2, [CONFIG_HELP] = 3};

    if (rank[a] > rank[*action])
        *action = a;
}

static int set_path(char **path, char *p, const char *arg, char *err, size_t errlen) {
    if (!p || *p == '\0') {
        seterr(err, errlen, "%s: missing file name", arg);
        return -EINVAL;
    }
    if (*path) {
        seterr(err, errlen, "%s: config file given twice", arg);
        return -EINVAL;
    }
    *path = p;
    return 0;
}

static int bad_option(const char *a, char *err, size_t errlen) {
    const char *name = a + 2;

    if (strncmp(a, "--", 2) == 0 && (setting_find(name, strlen(name)) ||
                                     strcmp(name, "config") == 0))
        seterr(err, errlen, "%s: expected %s=VALUE", a, a);
    else if (a[0] == '-')
        seterr(err, errlen, "unknown option '%s' (see --help)", a);
    else
        seterr(err, errlen, "unexpected argument '%s' (see --help)", a);
    return -EINVAL;
}

/* First pass: every argument's shape, the file name and the action. */
static int scan_args(int argc, char **argv, config_action *action, char **path, char *err,
                     size_t errlen) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = 0;

        if (strcmp(a, "-c") == 0)
            r = set_path(path, i + 1 < argc ? argv[++i] : NULL, a, err, errlen);
        else if (strncmp(a, "--config=", 9) == 0)
            r = set_path(path, argv[i] + 9, a, err, errlen);
        else if (strcmp(a, "--check-config") == 0)
            want(action, CONFIG_CHECK);
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            want(action, CONFIG_HELP);
        else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
            want(action, CONFIG_VERSION);
        else if (!is_key_arg(a))
            r = bad_option(a, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Second pass: `--key=value` in order, so the last one wins. */
static int apply_args(config *c, int argc, char **argv, char *err, size_t errlen) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq;
        const setting *s;
        char why[160];

        if (strcmp(a, "-c") == 0) {
            i++; /* its file name */
            continue;
        }
        if (!is_key_arg(a))
            continue;
        eq = strchr(a, '=');
        s = setting_find(a + 2, (size_t)(eq - a - 2));
        if (!s) {
            seterr(err, errlen, "%s: unknown key '%.*s'", a, (int)(eq - a - 2), a + 2);
            return -EINVAL;
        }
        if (setting_set(s, c, eq + 1, why, sizeof why) < 0) {
            seterr(err, errlen, "%s: %s", a, why);
            return -EINVAL;
        }
    }
    return 0;
}

int config_parse_args(config *c, int argc, char **argv, config_action *ret_action,
                      char **ret_path, char *err, size_t errlen) {
    config_action action = CONFIG_RUN;
    char *path = NULL;
    int r;

    r = scan_args(argc, argv, &action, &path, err, errlen);
    if (r < 0)
        return r;
    if (action == CONFIG_RUN || action == CONFIG_CHECK) {
        if (path && (r = config_load_file(c, path, err, errlen)) < 0)
            return r;
        if ((r = apply_args(c, argc, argv, err, errlen)) < 0)
            return r;
        if ((r = config_validate(c, err, errlen)) < 0)
            return r;
    }
    if (ret_action)
        *ret_action = action;
    if (ret_path)
        *ret_path = path;
    return 0;
}

/* ---- cross checks ----------------------------------------------------------- */

static int check_tiers(const config *c, char *err, size_t errlen) {
    if (c->tier_micro_min <= c->tier_micro_max && c->tier_micro_max <= c->tier_mid_max)
        return 0;
    seterr(err, errlen,
           "tiers: need tier_micro_min (%" PRId64 ") <= tier_micro_max (%" PRId64
           ") <= tier_mid_max (%" PRId64 ")",
           c->tier_micro_min, c->tier_micro_max, c->tier_mid_max);
    return -EINVAL;
}

static int check_buckets(const config *c, char *err, size_t errlen) {
    const char *name = c->window_s % c->bucket_s ? "window_s"
                       : c->baseline_s % c->bucket_s ? "baseline_s" : NULL;

    if (!name)
        return 0;
    seterr(err, errlen, "bucket_s (%" PRId64 ") must divide %s (%" PRId64 ")", c->bucket_s,
           name, c->window_s % c->bucket_s ? c->window_s : c->baseline_s);
    return -EINVAL;
}

static int check_sizes(const config *c, char *err, size_t errlen) {
    if (c->max_frame_bytes <= c->transport_max_bytes)
        return 0;
    seterr(err, errlen, "max_frame_bytes (%" PRId64 ") must be <= transport_max_bytes (%" PRId64 ")",
           c->max_frame_bytes, c->transport_max_bytes);
    return -EINVAL;
}

static int check_curve(const config *c, char *err, size_t errlen) {
    if ((*c->curve_secret_key_file == '\0') == (*c->curve_allowed_keys_file == '\0'))
        return 0;
    seterr(err, errlen, "curve_secret_key_file and curve_allowed_keys_file must be set together");
    return -EINVAL;
}

/* Two sockets cannot bind one endpoint; say so before the bind fails. */
static int check_endpoints_differ(const config *c, char *err, size_t errlen) {
    const char *const names[] = {"ingest", "ingest_ack", "alerts", "control"};
    const char *const v[] = {c->ingest, c->ingest_ack, c->alerts, c->control};

    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            if (*v[i] && strcmp(v[i], v[j]) == 0) {
                seterr(err, errlen, "%s and %s both use '%s'", names[i], names[j], v[i]);
                return -EINVAL;
            }
    return 0;
}

int config_validate(const config *c, char *err, size_t errlen) {
    static int (*const cross[])(const config *, char *, size_t) = {
        check_tiers, check_buckets, check_sizes, check_curve, check_endpoints_differ,
    };
    char why[160];
    int r;

    for (size_t i = 0; i < N_SETTINGS; i++)
        if (setting_check(&settings[i], c, why, sizeof why) < 0) {
            seterr(err, errlen, "%s: %s", settings[i].name, why);
            return -EINVAL;
        }
    for (size_t i = 0; i < sizeof cross / sizeof cross[0]; i++)
        if ((r = cross[i](c, err, errlen)) < 0)
            return r;
    return 0;
}

bool config_reloadable(const config *a, const config *b, char *err, size_t errlen) {
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (!settings[i].reload && !setting_equal(&settings[i], a, b)) {
            seterr(err, errlen, "%s cannot change on reload; restart nousud to apply it",
                   settings[i].name);
            return false;
        }
    return true;
}

/* ---- output ------------------------------------------------------------------ */

/* Shortest of %.15g..%.17g that reads back as the same double. */
static void format_double(double x, char *buf, size_t len) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

static void print_value(FILE *out, const setting *s, const config *c) {
    const void *f = cfield(c, s);
    const char *v;
    char buf[64];

    switch (s->type) {
    case SET_STR:
    case SET_ENUM:
        v = *(char *const *)f;
        v = v ? v : "";
        fprintf(out, *v == '\0' || strpbrk(v, "# \t") ? "\"%s\"" : "%s", v);
        break;
    case SET_INT:
        fprintf(out, "%" PRId64, *(const int64_t *)f);
        break;
    case SET_DBL:
        format_double(*(const double *)f, buf, sizeof buf);
        fputs(buf, out);
        break;
    }
}

void config_dump(FILE *out, const config *c) {
    for (size_t i = 0; i < N_SETTINGS; i++) {
        fprintf(out, "%s = ", settings[i].name);
        print_value(out, &settings[i], c);
        fputc('\n', out);
    }
}

static void print_setting_help(FILE *out, const setting *s) {
    const char *rel = s->reload ? "; SIGHUP reloads" : "";
    const char *q = *s->def ? "" : "\"\"";

    switch (s->type) {
    case SET_STR:
        fprintf(out, "  --%s=STRING  (default %s%s%s)\n", s->name, s->def, q, rel);
        break;
    case SET_ENUM:
        fprintf(out, "  --%s=WORD  (default %s%s)\n", s->name, s->def, rel);
        break;
    case SET_INT:
        fprintf(out, "  --%s=INT  (%" PRId64 "..%" PRId64 "; default %s%s)\n", s->name,
                s->imin, s->imax, s->def, rel);
        break;
    case SET_DBL:
        fprintf(out, "  --%s=NUMBER  (%g..%g; default %s%s)\n", s->name, s->dmin, s->dmax,
                s->def, rel);
        break;
    }
    fprintf(out, "      %s\n", s->help);
}

void config_print_help(FILE *out, const char *argv0) {
    const char *group = NULL;

    fprintf(out,
            "Usage: %s [-c FILE] [--KEY=VALUE ...] [--check-config] [--version] [--help]\n"
            "\n"
            "nousud: flags rising micro-influencers from engagement events.\n"
            "\n"
            "  -c FILE, --config=FILE  read `key = value` lines from FILE first\n"
            "  --KEY=VALUE             set a key; wins over the file\n"
            "  --check-config          validate the settings and exit\n"
            "  -V, --version           print the version and exit\n"
            "  -h, --help              print this help and exit\n",
            argv0 ? argv0 : "nousud");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (!group || strcmp(group, settings[i].group) != 0) {
            group = settings[i].group;
            fprintf(out, "\n%s:\n", group);
        }
        print_setting_help(out, &settings[i]);
    }
}
