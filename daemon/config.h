/* config.h -- every setting of nousud, in one table (config.c).
 *
 * The same table serves the config file (`key = value`, `#` comments),
 * `--key=value` on the command line (wins over the file), `--check-config`,
 * `--help` (generated from the table) and SIGHUP reload (only entries marked
 * reloadable may change live). */
#ifndef NOUSU_CONFIG_H
#define NOUSU_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"

typedef struct config {
    /* endpoints (SPEC §2); "" disables */
    char *ingest;
    char *ingest_ack;
    char *alerts;
    char *control;
    char *metrics; /* host:port */

    /* Redis */
    char *redis_host;
    int64_t redis_port;
    int64_t redis_db;
    char *redis_user;
    char *redis_password_file;
    int64_t redis_timeout_ms;
    char *key_prefix; /* default "nousu:"; no '{' or '}' */

    char *log_level; /* debug info notice warning err */
    char *curve_secret_key_file;
    char *curve_allowed_keys_file;

    /* input bounds (SPEC §3) */
    int64_t max_frame_bytes;     /* 1 MiB */
    int64_t max_batch_events;    /* 10,000 */
    int64_t transport_max_bytes; /* ZMQ_MAXMSGSIZE, 16 MiB */
    int64_t rcvhwm;              /* ZMQ_RCVHWM of ingest sockets */
    int64_t sndhwm;              /* ZMQ_SNDHWM of the alerts PUB */
    int64_t iteration_max_events;/* events taken per loop iteration (one commit) */
    int64_t commit_interval_ms;  /* 0: least time between two commits' starts */
    int64_t lateness_s;          /* too_old: 86,400 */
    int64_t future_s;            /* future: 300 */
    int64_t deadletter_maxlen;   /* ~100,000 */
    int64_t deadletter_raw_max;  /* 4,096 */
    int64_t alerts_maxlen;       /* ~1,000,000 */

    /* windows (SPEC §5) */
    int64_t bucket_s;   /* 3,600; must divide window_s and baseline_s */
    int64_t window_s;   /* 86,400 */
    int64_t baseline_s; /* 604,800 */
    int64_t min_history_s; /* 259,200: "seen for at least 3 days" */
    int64_t dedup_horizon_s;  /* 120 (wall clock) */
    int64_t dedup_buckets;    /* 16: id sets per 60 s slice, at least */
    int64_t dedup_set_ids;    /* 0 (auto): ids per set aimed at (intsets) */
    char *commit_hints;       /* on off verify */
    char *commit_stash;       /* on off */
    int64_t dedup_filter_mb;  /* 128: committer's filter of ids sent (idfilter.h) */
    int64_t state_cache_mb;   /* 64: committer's state cache (statecache.h) */
    int64_t request_ttl_s;    /* 86,400 */

    /* tiers */
    int64_t tier_micro_min; /* 1,000 */
    int64_t tier_micro_max; /* 10,000 */
    int64_t tier_mid_max;   /* 100,000 */

    /* weights, indexed by event_type (weight_view ... weight_post) */
    int64_t weight[EV__COUNT];

    /* detection */
    double prior_rate;              /* 0.03 of followers per day */
    double rising_min_engagement;   /* 50 */
    double rising_min_velocity;     /* 3 */
    double rising_min_z;            /* 4 */
    double rising_min_rate;         /* 0.03 */
    int64_t audience_min_interactions; /* 30 */
    double audience_min_unique_ratio;  /* 0.3 */
    double suspicious_follower_jump;   /* 0.2 */
    double suspicious_max_velocity;    /* 1.5 */
    double board_min_velocity;         /* 1.5 */
    int64_t board_stale_s;             /* 86,400 */
    int64_t cooldown_s;                /* 86,400 */
} config;

typedef enum config_action {
    CONFIG_RUN,
    CONFIG_CHECK, /* --check-config: validated, exit 0 */
    CONFIG_HELP,  /* -h/--help: caller prints config_print_help(), exits 0 */
    CONFIG_VERSION, /* -V/--version: caller prints the version, exits 0 */
} config_action;

/* Fill c with the defaults (allocates the strings). Returns 0 or -ENOMEM. */
int config_init(config *c);
/* Free the strings; the struct may be reused after config_init(). */
void config_free(config *c);
/* Deep copy into dst, which holds nothing to free. Returns 0 or -ENOMEM
 * (dst untouched). */
int config_copy(config *dst, const config *src);

/* Parse argv: `-c FILE` or `--config=FILE`, `--check-config`, `-h`/`--help`,
 * `-V`/`--version`, `--key=value` (only with '='). Loads the file first
 * whatever the order, then applies argv over it (the last --key wins), then
 * cross-checks (config_validate). With --help or --version nothing is loaded
 * or checked. c must hold config_init() defaults. *ret_path is the file name
 * from argv (not a copy; NULL without one); ret_action and ret_path may be
 * NULL. Calling it again on a fresh config with the same argv rebuilds the
 * same settings (SIGHUP). On error writes one line naming file, line and key
 * (or the argument) into err and returns -EINVAL (-errno when the file cannot
 * be read); c holds partial values then and must still be freed. */
int config_parse_args(config *c, int argc, char **argv, config_action *ret_action,
                      char **ret_path, char *err, size_t errlen);

/* Load `key = value` lines from path over c (`#` comments, blank lines; a
 * value in double quotes keeps spaces and '#'; a key at most once per file).
 * Same error contract. */
int config_load_file(config *c, const char *path, char *err, size_t errlen);

/* Set one key from its text value (the file and argv both use this). */
int config_set(config *c, const char *key, const char *value, char *err, size_t errlen);

/* Cross-field checks (tier order, bucket divides windows, prefix has no braces...). */
int config_validate(const config *c, char *err, size_t errlen);

/* For SIGHUP: true when every key that differs between a and b is reloadable;
 * otherwise false and the first such key named in err. */
bool config_reloadable(const config *a, const config *b, char *err, size_t errlen);

/* `--help` text, generated from the table. */
void config_print_help(FILE *out, const char *argv0);
/* Every key with its current value, as a config file would hold it. */
void config_dump(FILE *out, const config *c);

#endif
