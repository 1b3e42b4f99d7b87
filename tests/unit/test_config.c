/* test_config.c -- config.c: defaults, the file syntax, argv, errors,
 * cross-checks, reload rules, --help, the dump and the shipped sample. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#ifndef NOUSU_SOURCE_DIR
#define NOUSU_SOURCE_DIR "."
#endif
#define SAMPLE_CONF NOUSU_SOURCE_DIR "/systemd/nousud.conf"

/* ---- helpers ---------------------------------------------------------------- */

/* Writes text to a fresh temp file; the caller unlinks and frees the path. */
static char *write_temp(const char *text) {
    char *path = strdup("/tmp/test_config_XXXXXX");
    int fd;
    FILE *f;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void drop_temp(char *path) {
    unlink(path);
    free(path);
}

static char *dump_str(const config *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    config_dump(f, c);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static char *help_str(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    config_print_help(f, "nousud");
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void assert_same_config(const config *a, const config *b) {
    char *da = dump_str(a), *db = dump_str(b);

    assert_string_equal(da, db);
    free(da);
    free(db);
}

/* Loads text as a config file over the defaults; returns the result and the error. */
static int load_text(config *c, const char *text, char *err, size_t errlen) {
    char *path = write_temp(text);
    int r = config_load_file(c, path, err, errlen);

    drop_temp(path);
    return r;
}

/* Every key name, from the dump (one `key = value` per line); NULL-terminated. */
static char **all_keys(void) {
    config c;
    char *d, *line, *save = NULL;
    char **keys = calloc(256, sizeof *keys);
    size_t n = 0;

    assert_non_null(keys);
    assert_int_equal(config_init(&c), 0);
    d = dump_str(&c);
    for (line = strtok_r(d, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        assert_true(n < 255);
        keys[n++] = strndup(line, strcspn(line, " "));
    }
    free(d);
    config_free(&c);
    return keys;
}

static void free_keys(char **keys) {
    for (char **k = keys; *k; k++)
        free(*k);
    free(keys);
}

static int parse(config *c, char **argv, config_action *action, char *err, size_t errlen) {
    int argc = 0;

    while (argv[argc])
        argc++;
    return config_parse_args(c, argc, argv, action, NULL, err, errlen);
}

/* ---- defaults --------------------------------------------------------------- */

static void test_defaults(void **state) {
    config c;
    char err[256] = "";

    assert_int_equal(config_init(&c), 0);
    assert_string_equal(c.ingest, "tcp://127.0.0.1:7710");
    assert_string_equal(c.ingest_ack, "tcp://127.0.0.1:7711");
    assert_string_equal(c.alerts, "tcp://127.0.0.1:7712");
    assert_string_equal(c.control, "tcp://127.0.0.1:7713");
    assert_string_equal(c.metrics, "127.0.0.1:9710");
    assert_string_equal(c.redis_host, "127.0.0.1");
    assert_int_equal(c.redis_port, 6379);
    assert_int_equal(c.redis_db, 0);
    assert_string_equal(c.redis_user, "");
    assert_string_equal(c.redis_password_file, "");
    assert_int_equal(c.redis_timeout_ms, 2000);
    assert_string_equal(c.key_prefix, "nousu:");
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.curve_secret_key_file, "");
    assert_string_equal(c.curve_allowed_keys_file, "");
    assert_int_equal(c.max_frame_bytes, 1048576);
    assert_int_equal(c.max_batch_events, 10000);
    assert_int_equal(c.transport_max_bytes, 16777216);
    assert_int_equal(c.rcvhwm, 100);
    assert_int_equal(c.sndhwm, 10000);
    assert_int_equal(c.iteration_max_events, 20000);
    assert_int_equal(c.lateness_s, 86400);
    assert_int_equal(c.future_s, 300);
    assert_int_equal(c.deadletter_maxlen, 100000);
    assert_int_equal(c.deadletter_raw_max, 4096);
    assert_int_equal(c.alerts_maxlen, 1000000);
    assert_int_equal(c.bucket_s, 3600);
    assert_int_equal(c.window_s, 86400);
    assert_int_equal(c.baseline_s, 604800);
    assert_int_equal(c.min_history_s, 259200);
    assert_int_equal(c.dedup_horizon_s, 120);
    assert_int_equal(c.dedup_buckets, 16);
    assert_int_equal(c.dedup_set_ids, 0);
    assert_int_equal(c.request_ttl_s, 86400);
    assert_int_equal(c.tier_micro_min, 1000);
    assert_int_equal(c.tier_micro_max, 10000);
    assert_int_equal(c.tier_mid_max, 100000);
    assert_int_equal(c.weight[EV_VIEW], 0);
    assert_int_equal(c.weight[EV_LIKE], 1);
    assert_int_equal(c.weight[EV_COMMENT], 3);
    assert_int_equal(c.weight[EV_SHARE], 4);
    assert_int_equal(c.weight[EV_SAVE], 4);
    assert_int_equal(c.weight[EV_MENTION], 5);
    assert_int_equal(c.weight[EV_FOLLOW], 0);
    assert_int_equal(c.weight[EV_UNFOLLOW], 0);
    assert_int_equal(c.weight[EV_POST], 0);
    assert_true(c.prior_rate == 0.03);
    assert_true(c.rising_min_engagement == 50);
    assert_true(c.rising_min_velocity == 3);
    assert_true(c.rising_min_z == 4);
    assert_true(c.rising_min_rate == 0.03);
    assert_int_equal(c.audience_min_interactions, 30);
    assert_true(c.audience_min_unique_ratio == 0.3);
    assert_true(c.suspicious_follower_jump == 0.2);
    assert_true(c.suspicious_max_velocity == 1.5);
    assert_true(c.board_min_velocity == 1.5);
    assert_int_equal(c.board_stale_s, 86400);
    assert_int_equal(c.cooldown_s, 86400);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    config_free(&c);
    config_free(&c); /* idempotent */
}

static void test_weight_keys_follow_event_types(void **state) {
    config c;
    char key[64], err[256];

    assert_int_equal(config_init(&c), 0);
    for (int t = 0; t < EV__COUNT; t++) {
        snprintf(key, sizeof key, "weight_%s", event_type_name((event_type)t));
        assert_int_equal(config_set(&c, key, "17", err, sizeof err), 0);
        assert_int_equal(c.weight[t], 17);
    }
    config_free(&c);
}

/* ---- the file ------------------------------------------------------------------ */

static void test_file_syntax(void **state) {
    static const char text[] =
        "# a comment line\n"
        "\n"
        "   \t\n"
        "   # an indented comment\n"
        "redis_port=7000\n"
        "  redis_host   =   redis.internal   \n"
        "log_level = debug # trailing comment\n"
        "key_prefix = a#b:\n" /* '#' not after whitespace is kept */
        "redis_password_file = \"/etc/my secrets/#pw\"  # quoted keeps spaces and #\n"
        "metrics = \"\"\n"
        "ingest =\n"
        "control = # nothing but a comment: empty\n"
        "prior_rate = 0.05\r\n" /* CRLF */
        "weight_save\t=\t6\n"
        "alerts = ipc:///run/nousu/alerts.sock"; /* no final newline */
    config c;
    char err[256] = "";

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(load_text(&c, text, err, sizeof err), 0);
    assert_int_equal(c.redis_port, 7000);
    assert_string_equal(c.redis_host, "redis.internal");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.key_prefix, "a#b:");
    assert_string_equal(c.redis_password_file, "/etc/my secrets/#pw");
    assert_string_equal(c.metrics, "");
    assert_string_equal(c.ingest, "");
    assert_string_equal(c.control, "");
    assert_true(c.prior_rate == 0.05);
    assert_int_equal(c.weight[EV_SAVE], 6);
    assert_string_equal(c.alerts, "ipc:///run/nousu/alerts.sock");
    assert_string_equal(c.ingest_ack, "tcp://127.0.0.1:7711"); /* untouched */
    config_free(&c);
}

static void test_file_unknown_key(void **state) {
    char *path = write_temp("# x\n\nredis_port = 1\ningset = tcp://*:1\n");
    char want[512], err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, path, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:4: unknown key 'ingset'", path);
    assert_string_equal(err, want);
    config_free(&c);
    drop_temp(path);
}

static void test_file_bad_value_names_line_and_key(void **state) {
    char *path = write_temp("\n\n\n\n\n\nredis_port = 70000\n");
    char want[512], err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, path, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:7: redis_port: '70000' out of range 1..65535", path);
    assert_string_equal(err, want);
    assert_int_equal(c.redis_port, 6379); /* unchanged on failure */
    config_free(&c);
    drop_temp(path);
}

static void test_file_syntax_errors(void **state) {
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"redis_port 6379\n", ":1: expected 'key = value'"},
        {"= 5\n", ":1: missing key before '='"},
        {"\nredis_host = \"abc\n", ":2: unterminated quoted value"},
        {"redis_host = \"abc\" def\n", ":1: unexpected text after the closing quote"},
        {"redis_port = 1\nredis_port = 2\n", ":2: redis_port: already set on line 1"},
        {"redis_host = a\"b\n", ":1: redis_host: 'a\"b' must not contain '\"' or control characters"},
        {"redis_port =\n", ":1: redis_port: '' not an integer"},
        {"log_level = verbose\n",
         ":1: log_level: 'verbose' must be one of: debug info notice warning err"},
    };
    char err[256];
    config c;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(config_init(&c), 0);
        err[0] = '\0';
        assert_int_equal(load_text(&c, cases[i].text, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "/tmp/test_config_"));
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: got \"%s\", want \"...%s\"", i, err, cases[i].want);
        config_free(&c);
    }
}

static void test_file_nul_byte(void **state) {
    char *path = write_temp("");
    FILE *f = fopen(path, "w");
    char err[256] = "";
    config c;

    assert_non_null(f);
    fwrite("redis_host = a\0b\n", 1, 17, f);
    fclose(f);
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, path, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":1: NUL byte in line"));
    config_free(&c);
    drop_temp(path);
}

static void test_file_missing(void **state) {
    char err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, "/nonexistent/nousud.conf", err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent/nousud.conf: No such file or directory");
    config_free(&c);
}

/* ---- values ---------------------------------------------------------------------- */

static void test_bad_values(void **state) {
    static const struct {
        const char *key, *value, *why;
    } cases[] = {
        {"redis_port", "abc", "not an integer"},
        {"redis_port", "12x", "not an integer"},
        {"redis_port", " 12", "not an integer"},
        {"redis_port", "+12", "not an integer"},
        {"redis_port", "0x10", "not an integer"},
        {"redis_port", "1.5", "not an integer"},
        {"redis_port", "", "not an integer"},
        {"redis_port", "-", "not an integer"},
        {"redis_port", "0", "out of range 1..65535"},
        {"redis_port", "65536", "out of range 1..65535"},
        {"redis_port", "99999999999999999999", "out of range 1..65535"},
        {"max_batch_events", "10000001", "out of range 1..10000000"},
        {"weight_like", "-1", "out of range 0..1000000"},
        {"prior_rate", "abc", "not a number"},
        {"prior_rate", "0.03x", "not a number"},
        {"prior_rate", "", "not a number"},
        {"prior_rate", "nan", "not a number"},
        {"prior_rate", "inf", "not a number"},
        {"prior_rate", "1e999", "not a finite number"},
        {"prior_rate", "0", "out of range 1e-06..10"},
        {"audience_min_unique_ratio", "1.01", "out of range 0..1"},
        {"log_level", "INFO", "must be one of: debug info notice warning err"},
        {"key_prefix", "a{b}", "must not contain '{', '}' or whitespace"},
        {"key_prefix", "a b", "must not contain '{', '}' or whitespace"},
        {"key_prefix", "", "must not be empty"},
        {"key_prefix", "0123456789012345678901234567890123456789012345678901234567890123x",
         "longer than 64 characters"},
        {"redis_host", "", "must not be empty"},
        {"redis_host", "a b", "must not contain whitespace"},
        {"ingest", "127.0.0.1:7710", "expected transport://address"},
        {"ingest", "tcp://", "expected transport://address"},
        {"metrics", "9710", "expected host:port"},
        {"metrics", "localhost:0", "expected host:port"},
        {"metrics", "localhost:http", "expected host:port"},
        {"redis_password_file", "a\tb", "must not contain '\"' or control characters"},
    };
    char want[256], err[256];
    config c;

    assert_int_equal(config_init(&c), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        if (config_set(&c, cases[i].key, cases[i].value, err, sizeof err) != -EINVAL)
            fail_msg("case %zu: %s=%s accepted", i, cases[i].key, cases[i].value);
        snprintf(want, sizeof want, "%s: '%s' %s", cases[i].key, cases[i].value, cases[i].why);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, want);
    }
    assert_int_equal(config_set(&c, "ingset", "x", err, sizeof err), -EINVAL);
    assert_string_equal(err, "unknown key 'ingset'");
    config_free(&c);
}

static void test_good_values(void **state) {
    config c;
    char err[256] = "";

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_set(&c, "redis_port", "65535", err, sizeof err), 0);
    assert_int_equal(c.redis_port, 65535);
    assert_int_equal(config_set(&c, "tier_mid_max", "10000000000", err, sizeof err), 0);
    assert_int_equal(c.tier_mid_max, 10000000000LL);
    assert_int_equal(config_set(&c, "prior_rate", "1e-2", err, sizeof err), 0);
    assert_true(c.prior_rate == 0.01);
    assert_int_equal(config_set(&c, "rising_min_z", ".5", err, sizeof err), 0);
    assert_true(c.rising_min_z == 0.5);
    assert_int_equal(config_set(&c, "metrics", "[::1]:9710", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "ingest", "ipc:///run/nousu/ingest", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "ingest_ack", "", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "log_level", "err", err, sizeof err), 0);
    assert_string_equal(c.log_level, "err");
    config_free(&c);
}

/* ---- argv ------------------------------------------------------------------------- */

static void test_argv_overrides_file(void **state) {
    char *path = write_temp("redis_port = 7000\nlog_level = debug\nweight_like = 2\n");
    char copt[600];
    /* the override comes before -c: the file still loads first */
    char *argv[] = {"nousud", "--redis_port=7001", "--weight_like=9", copt,
                    "--weight_like=8", NULL};
    config_action action = CONFIG_HELP;
    char *ret_path = NULL, err[256] = "";
    config c;

    snprintf(copt, sizeof copt, "--config=%s", path);
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_parse_args(&c, 5, argv, &action, &ret_path, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_RUN);
    assert_string_equal(ret_path, path);
    assert_int_equal(c.redis_port, 7001);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.weight[EV_LIKE], 8); /* last one wins */
    config_free(&c);
    drop_temp(path);
}

static void test_argv_short_config(void **state) {
    char *path = write_temp("redis_db = 3\n");
    char *argv[] = {"nousud", "--check-config", "-c", path, "--redis_db=4", NULL};
    config_action action = CONFIG_RUN;
    char *ret_path = NULL, err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_parse_args(&c, 5, argv, &action, &ret_path, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_CHECK);
    assert_ptr_equal(ret_path, path);
    assert_int_equal(c.redis_db, 4);
    config_free(&c);
    drop_temp(path);
}

static void test_argv_no_file(void **state) {
    char *argv[] = {"nousud", NULL};
    config_action action = CONFIG_HELP;
    char *ret_path = (char *)"x", err[256] = "";
    config c, d;

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_init(&d), 0);
    assert_int_equal(config_parse_args(&c, 1, argv, &action, &ret_path, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_RUN);
    assert_null(ret_path);
    assert_same_config(&c, &d);
    config_free(&c);
    config_free(&d);
}

static void test_argv_actions(void **state) {
    /* help and version neither read the file nor validate */
    char *help[] = {"nousud", "-c", "/nonexistent", "--check-config", "--help", NULL};
    char *help2[] = {"nousud", "-h", NULL};
    char *version[] = {"nousud", "--version", "--config=/nonexistent", NULL};
    char *version2[] = {"nousud", "-V", "--tier_micro_min=50000", NULL};
    char *check[] = {"nousud", "--check-config", NULL};
    config_action action;
    char err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(parse(&c, help, &action, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_HELP);
    assert_int_equal(parse(&c, help2, &action, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_HELP);
    assert_int_equal(parse(&c, version, &action, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_VERSION);
    assert_int_equal(parse(&c, version2, &action, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_VERSION);
    assert_int_equal(parse(&c, check, &action, err, sizeof err), 0);
    assert_int_equal(action, CONFIG_CHECK);
    config_free(&c);
}

static void test_argv_errors(void **state) {
    static const struct {
        const char *args[4];
        const char *want;
    } cases[] = {
        {{"--redis_port=abc"}, "--redis_port=abc: not an integer"},
        {{"--redis_port=70000"}, "--redis_port=70000: out of range 1..65535"},
        {{"--ingset=tcp://*:1"}, "--ingset=tcp://*:1: unknown key 'ingset'"},
        {{"--redis_port", "6379"}, "--redis_port: expected --redis_port=VALUE"},
        {{"--config", "x"}, "--config: expected --config=VALUE"},
        {{"--bogus"}, "unknown option '--bogus' (see --help)"},
        {{"-x"}, "unknown option '-x' (see --help)"},
        {{"extra"}, "unexpected argument 'extra' (see --help)"},
        {{"-c"}, "-c: missing file name"},
        {{"--config="}, "--config=: missing file name"},
        {{"-c", "a", "--config=b"}, "--config=b: config file given twice"},
        {{"-c", "/nonexistent/x.conf"}, "/nonexistent/x.conf: No such file or directory"},
        {{"--tier_micro_min=50000"}, "tiers: need tier_micro_min (50000) <= tier_micro_max"},
    };
    char *argv[6];
    char err[256];
    config c;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int argc = 1;

        argv[0] = "nousud";
        for (int j = 0; j < 4 && cases[i].args[j]; j++)
            argv[argc++] = (char *)cases[i].args[j];
        argv[argc] = NULL;
        err[0] = '\0';
        assert_int_equal(config_init(&c), 0);
        if (config_parse_args(&c, argc, argv, NULL, NULL, err, sizeof err) >= 0)
            fail_msg("case %zu accepted", i);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
        config_free(&c);
    }
}

static void test_argv_file_error_names_file_line_key(void **state) {
    char *path = write_temp("redis_port = 6379\nrising_min_z = high\n");
    char *argv[] = {"nousud", "-c", path, NULL};
    char want[512], err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_parse_args(&c, 3, argv, NULL, NULL, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:2: rising_min_z: 'high' not a number", path);
    assert_string_equal(err, want);
    config_free(&c);
    drop_temp(path);
}

/* ---- cross-checks ------------------------------------------------------------------ */

static void test_validate(void **state) {
    static const struct {
        const char *key, *value, *want;
    } cases[] = {
        {"tier_micro_min", "20000", "tiers: need tier_micro_min (20000) <= tier_micro_max (10000)"},
        {"tier_micro_max", "200000", "tiers: need"},
        {"bucket_s", "7000", "bucket_s (7000) must divide window_s (86400)"},
        {"baseline_s", "88200", "bucket_s (3600) must divide baseline_s (88200)"},
        {"max_frame_bytes", "16777217",
         "max_frame_bytes (16777217) must be <= transport_max_bytes (16777216)"},
        {"curve_secret_key_file", "/etc/nousu/server.key",
         "curve_secret_key_file and curve_allowed_keys_file must be set together"},
        {"curve_allowed_keys_file", "/etc/nousu/clients",
         "curve_secret_key_file and curve_allowed_keys_file must be set together"},
        {"control", "tcp://127.0.0.1:7710", "ingest and control both use 'tcp://127.0.0.1:7710'"},
    };
    char err[256];
    config c;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_set(&c, cases[i].key, cases[i].value, err, sizeof err), 0);
        err[0] = '\0';
        assert_int_equal(config_validate(&c, err, sizeof err), -EINVAL);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
        config_free(&c);
    }
}

static void test_validate_ok_cases(void **state) {
    char err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    /* both curve files; equal tiers; empty endpoints may repeat */
    assert_int_equal(config_set(&c, "curve_secret_key_file", "/k", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "curve_allowed_keys_file", "/a", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "tier_micro_max", "1000", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "tier_mid_max", "1000", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "ingest", "", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "control", "", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "bucket_s", "60", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    config_free(&c);
}

/* A struct filled by code, not by config_set, is checked too. */
static void test_validate_direct_fields(void **state) {
    char err[256] = "";
    config c;

    assert_int_equal(config_init(&c), 0);
    free(c.key_prefix);
    c.key_prefix = strdup("{nousu}:");
    assert_int_equal(config_validate(&c, err, sizeof err), -EINVAL);
    assert_string_equal(err, "key_prefix: must not contain '{', '}' or whitespace");
    config_free(&c);

    assert_int_equal(config_init(&c), 0);
    c.redis_port = 0;
    assert_int_equal(config_validate(&c, err, sizeof err), -EINVAL);
    assert_string_equal(err, "redis_port: out of range 1..65535");
    config_free(&c);

    assert_int_equal(config_init(&c), 0);
    free(c.log_level);
    c.log_level = NULL;
    assert_int_equal(config_validate(&c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "log_level: must be one of"));
    config_free(&c);
}

/* ---- reload ---------------------------------------------------------------------- */

static void test_reloadable(void **state) {
    static const struct {
        const char *key, *value;
        bool ok;
    } cases[] = {
        {"log_level", "debug", true},
        {"weight_comment", "7", true},
        {"rising_min_z", "5.5", true},
        {"tier_micro_max", "20000", true},
        {"cooldown_s", "3600", true},
        {"board_min_velocity", "2", true},
        {"board_stale_s", "1000", true},
        {"lateness_s", "3600", true},
        {"future_s", "60", true},
        {"dedup_horizon_s", "300", true},
        {"deadletter_maxlen", "5", true},
        {"alerts_maxlen", "5", true},
        {"iteration_max_events", "5", true},
        {"ingest", "tcp://127.0.0.1:8000", false},
        {"metrics", "", false},
        {"redis_port", "6380", false},
        {"redis_password_file", "/run/pw", false},
        {"redis_timeout_ms", "1", false},
        {"key_prefix", "other:", false},
        {"curve_secret_key_file", "/k", false},
        {"bucket_s", "1800", false},
        {"window_s", "43200", false},
        {"baseline_s", "302400", false},
        {"max_frame_bytes", "2048", false},
        {"max_batch_events", "5", false},
        {"transport_max_bytes", "2097152", false},
        {"rcvhwm", "5", false},
        {"sndhwm", "5", false},
    };
    char err[256];
    config a, b;

    assert_int_equal(config_init(&a), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(config_copy(&b, &a), 0);
        assert_true(config_reloadable(&a, &b, err, sizeof err));
        assert_int_equal(config_set(&b, cases[i].key, cases[i].value, err, sizeof err), 0);
        err[0] = '\0';
        if (config_reloadable(&a, &b, err, sizeof err) != cases[i].ok)
            fail_msg("case %zu: %s reloadable should be %d", i, cases[i].key, cases[i].ok);
        if (!cases[i].ok) {
            char want[128];

            snprintf(want, sizeof want, "%s cannot change on reload", cases[i].key);
            assert_non_null(strstr(err, want));
        }
        config_free(&b);
    }
    config_free(&a);
}

static void test_copy_is_deep(void **state) {
    char err[256];
    config a, b;

    assert_int_equal(config_init(&a), 0);
    assert_int_equal(config_set(&a, "redis_user", "nousu", err, sizeof err), 0);
    assert_int_equal(config_copy(&b, &a), 0);
    assert_same_config(&a, &b);
    assert_ptr_not_equal(a.redis_user, b.redis_user);
    assert_int_equal(config_set(&a, "redis_user", "other", err, sizeof err), 0);
    assert_string_equal(b.redis_user, "nousu");
    config_free(&a);
    assert_string_equal(b.ingest, "tcp://127.0.0.1:7710");
    config_free(&b);
}

/* ---- output ------------------------------------------------------------------------ */

static void test_help_has_every_key(void **state) {
    char **keys = all_keys(), *help = help_str(), opt[128];

    assert_non_null(strstr(help, "Usage: nousud [-c FILE]"));
    assert_non_null(strstr(help, "--check-config"));
    assert_non_null(strstr(help, "--redis_port=INT  (1..65535; default 6379)"));
    assert_non_null(strstr(help, "--log_level=WORD  (default info; SIGHUP reloads)"));
    assert_non_null(strstr(help, "--redis_user=STRING  (default \"\")"));
    assert_non_null(strstr(help, "\nWeights (SPEC 5):\n"));
    for (char **k = keys; *k; k++) {
        snprintf(opt, sizeof opt, "  --%s=", *k);
        if (!strstr(help, opt))
            fail_msg("--help lacks %s", *k);
    }
    free(help);
    free_keys(keys);
}

static void test_dump_round_trips(void **state) {
    static const char *const set[][2] = {
        {"ingest", ""},
        {"redis_password_file", "/etc/with space/#x"},
        {"redis_user", "nousu"},
        {"key_prefix", "a#b:"},
        {"log_level", "warning"},
        {"prior_rate", "0.1"},
        {"rising_min_z", "3.3000000000000003"}, /* needs 17 digits */
        {"rising_min_rate", "1e-300"},
        {"suspicious_follower_jump", "123456.789"},
        {"tier_mid_max", "10000000000"},
        {"weight_post", "1000000"},
        {"lateness_s", "0"},
    };
    char *path, *d, err[256] = "";
    config a, b;

    assert_int_equal(config_init(&a), 0);
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        assert_int_equal(config_set(&a, set[i][0], set[i][1], err, sizeof err), 0);
    assert_true(a.rising_min_z == 3.3000000000000003);
    d = dump_str(&a);
    assert_memory_equal(d, "ingest = \"\"\n", 12); /* first key */
    assert_non_null(strstr(d, "\nprior_rate = 0.1\n"));
    assert_non_null(strstr(d, "\nredis_port = 6379\n"));
    path = write_temp(d);
    assert_int_equal(config_init(&b), 0);
    assert_int_equal(config_load_file(&b, path, err, sizeof err), 0);
    assert_same_config(&a, &b);
    assert_true(b.rising_min_z == a.rising_min_z);
    assert_true(b.rising_min_rate == a.rising_min_rate);
    assert_string_equal(b.redis_password_file, "/etc/with space/#x");
    config_free(&a);
    config_free(&b);
    drop_temp(path);
    free(d);
}

static void test_sample_conf_is_the_defaults(void **state) {
    char **keys = all_keys(), err[512] = "";
    char *argv[] = {"nousud", "--check-config", "-c", SAMPLE_CONF, NULL};
    config_action action;
    config a, b;
    char *line = NULL;
    size_t cap = 0;
    FILE *f;

    assert_int_equal(config_init(&a), 0);
    assert_int_equal(config_init(&b), 0);
    if (config_parse_args(&b, 4, argv, &action, NULL, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(action, CONFIG_CHECK);
    assert_same_config(&a, &b);
    /* every key is written out (active, not commented) */
    for (char **k = keys; *k; k++) {
        bool found = false;

        f = fopen(SAMPLE_CONF, "r");
        assert_non_null(f);
        while (!found && getline(&line, &cap, f) >= 0)
            found = strncmp(line, *k, strlen(*k)) == 0 && line[strlen(*k)] == ' ';
        fclose(f);
        if (!found)
            fail_msg("%s lacks the key %s", SAMPLE_CONF, *k);
    }
    free(line);
    free_keys(keys);
    config_free(&a);
    config_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_weight_keys_follow_event_types),
        cmocka_unit_test(test_file_syntax),
        cmocka_unit_test(test_file_unknown_key),
        cmocka_unit_test(test_file_bad_value_names_line_and_key),
        cmocka_unit_test(test_file_syntax_errors),
        cmocka_unit_test(test_file_nul_byte),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_argv_overrides_file),
        cmocka_unit_test(test_argv_short_config),
        cmocka_unit_test(test_argv_no_file),
        cmocka_unit_test(test_argv_actions),
        cmocka_unit_test(test_argv_errors),
        cmocka_unit_test(test_argv_file_error_names_file_line_key),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_validate_ok_cases),
        cmocka_unit_test(test_validate_direct_fields),
        cmocka_unit_test(test_reloadable),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_help_has_every_key),
        cmocka_unit_test(test_dump_round_trips),
        cmocka_unit_test(test_sample_conf_is_the_defaults),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
