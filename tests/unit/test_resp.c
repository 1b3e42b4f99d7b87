/* test_resp.c -- resp.h: the bytes hiredis would send for the same command
 * (redisFormatCommandArgv), through a socket, whole when the socket takes
 * them a few KiB at a time; and the errors: too many arguments, the peer
 * gone, the send timeout. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "resp.h"

/* Everything the other end of the socket receives, read chunk bytes at a
 * time, until the writer closes its end. */
typedef struct reader {
    int fd;
    size_t chunk;
    char *got;
    size_t len, cap;
} reader;

static void *read_all(void *arg) {
    reader *r = arg;
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, NULL); /* the writer's to take */
    for (;;) {
        if (r->len + r->chunk > r->cap) {
            r->cap = (r->cap + r->chunk) * 2;
            r->got = realloc(r->got, r->cap);
        }
        ssize_t n = read(r->fd, r->got + r->len, r->chunk);
        if (n <= 0)
            return NULL;
        r->len += (size_t)n;
    }
}

/* resp_write's bytes for argv through a socketpair whose buffers are
 * sndbuf bytes (0: the default), read chunk bytes at a time, against
 * hiredis's formatting of the same command. */
static void expect_as_hiredis(int argc, const char **argv, const size_t *lens, int sndbuf,
                              size_t chunk) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (sndbuf) {
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
        assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf), 0);
    }
    reader r = {.fd = sv[1], .chunk = chunk};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_all, &r), 0);
    assert_int_equal(resp_write(sv[0], argc, argv, lens), 0);
    close(sv[0]);
    pthread_join(t, NULL);
    close(sv[1]);
    char *want = NULL;
    long long n = redisFormatCommandArgv(&want, argc, argv, lens);
    assert_true(n > 0);
    assert_int_equal(r.len, (size_t)n);
    assert_memory_equal(r.got, want, r.len);
    free(r.got);
    free(want);
}

static void test_small_commands(void **state) {
    (void)state;
    const char *one[] = {"PING"};
    size_t one_l[] = {4};
    expect_as_hiredis(1, one, one_l, 0, 4096);
    /* empty arguments (NULL among them), CRLF and NUL inside one */
    const char *mixed[] = {"FCALL", "f", "0", "", NULL, "a\r\nb\0c", "1234567890"};
    size_t mixed_l[] = {5, 1, 1, 0, 0, 7, 10};
    expect_as_hiredis(7, mixed, mixed_l, 0, 4096);
}

static void test_most_arguments(void **state) {
    (void)state;
    const char *argv[RESP_ARGS_MAX];
    size_t lens[RESP_ARGS_MAX];
    char bufs[RESP_ARGS_MAX][4];
    for (int i = 0; i < RESP_ARGS_MAX; i++) {
        lens[i] = (size_t)(i % 4);
        memset(bufs[i], 'a' + i, sizeof bufs[i]);
        argv[i] = bufs[i];
    }
    expect_as_hiredis(RESP_ARGS_MAX, argv, lens, 0, 4096);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

/* A blocking write returns short only when a signal interrupts it: a timer
 * without SA_RESTART every 200 us, while the reader takes odd amounts. */
static void interrupt_writes(bool on) {
    struct itimerval it = {{0, 200}, {0, 200}}, off = {{0, 0}, {0, 0}};
    struct sigaction sa = {.sa_handler = on_alarm};
    sigemptyset(&sa.sa_mask);
    if (!on) { /* the timer first: an alarm between the two must find a handler */
        assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
        sa.sa_handler = SIG_IGN;
    }
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    if (on)
        assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* The timer off again even when a test failed with it on. */
static int timer_off(void **state) {
    (void)state;
    interrupt_writes(false);
    return 0;
}

/* A commit's size: through a small socket buffer, and with its writes cut
 * short (or failing with EINTR) over and over, each resumed at the right
 * byte. */
static void test_large_arguments_short_writes(void **state) {
    (void)state;
    size_t big = 5u << 20, mid = 300001;
    char *a = malloc(big), *b = malloc(mid);
    for (size_t i = 0; i < big; i++)
        a[i] = (char)(i * 7 + i / 4099);
    for (size_t i = 0; i < mid; i++)
        b[i] = (char)(i * 13);
    const char *argv[] = {"FCALL", "nousu_commit_runs", "0", a, "c-1", b, "", "after"};
    size_t lens[] = {5, 17, 1, big, 3, mid, 0, 5};
    expect_as_hiredis(8, argv, lens, 0, 65536);
    expect_as_hiredis(8, argv, lens, 4096, 1021);
    alarms = 0;
    interrupt_writes(true);
    expect_as_hiredis(8, argv, lens, 4096, 1021);
    interrupt_writes(false);
    assert_true(alarms > 0);
    free(a);
    free(b);
}

static void test_too_many_arguments(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    const char *argv[RESP_ARGS_MAX + 1] = {0};
    size_t lens[RESP_ARGS_MAX + 1] = {0};
    assert_int_equal(resp_write(sv[0], RESP_ARGS_MAX + 1, argv, lens), -EINVAL);
    assert_int_equal(resp_write(sv[0], 0, argv, lens), -EINVAL);
    char c;
    assert_int_equal(read(sv[1], &c, 1), -1); /* nothing was written */
    assert_int_equal(errno, EAGAIN);
    close(sv[0]);
    close(sv[1]);
}

static void test_peer_gone(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    assert_int_equal(resp_write(sv[0], 1, argv, lens), -EPIPE);
    close(sv[0]);
}

/* Nobody reads: the socket's send timeout ends the write with -EAGAIN. */
static void test_send_timeout(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct timeval tv = {0, 50000};
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    size_t big = 8u << 20;
    char *a = calloc(1, big);
    const char *argv[] = {"SET", "k", a};
    size_t lens[] = {3, 1, big};
    assert_int_equal(resp_write(sv[0], 3, argv, lens), -EAGAIN);
    free(a);
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_commands),
        cmocka_unit_test(test_most_arguments),
        cmocka_unit_test_teardown(test_large_arguments_short_writes, timer_off),
        cmocka_unit_test(test_too_many_arguments),
        cmocka_unit_test(test_peer_gone),
        cmocka_unit_test(test_send_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
