/* test_reload.c -- reload.c: a configuration read again is kept only when
 * valid and live-changeable, and the keys that changed are named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "reload.h"

/* The running configuration: defaults, as from `nousud` alone. */
static void running(config *c) {
    char *argv[] = {"nousud", NULL};
    config_action act;
    char *path = NULL, err[256];
    assert_int_equal(config_init(c), 0);
    assert_int_equal(config_parse_args(c, 1, argv, &act, &path, err, sizeof err), 0);
}

static void test_live_keys_are_taken_and_named(void **state) {
    (void)state;
    config cur, next;
    char *argv[] = {"nousud", "--cooldown_s=99", "--log_level=debug", NULL};
    char err[256] = "", changed[256];
    running(&cur);
    assert_int_equal(reload_read(&cur, 3, argv, &next, err, sizeof err, changed, sizeof changed), 0);
    assert_int_equal(next.cooldown_s, 99);
    assert_string_equal(next.log_level, "debug");
    assert_non_null(strstr(changed, "cooldown_s"));
    assert_non_null(strstr(changed, "log_level"));
    assert_null(strstr(changed, "window_s"));
    config_free(&next);
    config_free(&cur);
}

static void test_nothing_changed_names_nothing(void **state) {
    (void)state;
    config cur, next;
    char *argv[] = {"nousud", NULL};
    char err[256] = "", changed[256] = "x";
    running(&cur);
    assert_int_equal(reload_read(&cur, 1, argv, &next, err, sizeof err, changed, sizeof changed), 0);
    assert_string_equal(changed, "");
    config_free(&next);
    config_free(&cur);
}

static void test_restart_only_key_is_refused(void **state) {
    (void)state;
    config cur, next;
    char *argv[] = {"nousud", "--redis_port=7000", NULL};
    char err[256] = "", changed[256];
    running(&cur);
    assert_true(reload_read(&cur, 2, argv, &next, err, sizeof err, changed, sizeof changed) < 0);
    assert_non_null(strstr(err, "redis_port"));
    config_free(&cur);
}

static void test_bad_value_is_refused_with_its_reason(void **state) {
    (void)state;
    config cur, next;
    char *argv[] = {"nousud", "--cooldown_s=soon", NULL};
    char err[256] = "", changed[256];
    running(&cur);
    assert_true(reload_read(&cur, 2, argv, &next, err, sizeof err, changed, sizeof changed) < 0);
    assert_non_null(strstr(err, "cooldown_s"));
    config_free(&cur);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_keys_are_taken_and_named),
        cmocka_unit_test(test_nothing_changed_names_nothing),
        cmocka_unit_test(test_restart_only_key_is_refused),
        cmocka_unit_test(test_bad_value_is_refused_with_its_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
