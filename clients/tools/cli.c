/* cli.c -- helpers shared by the command-line tools (see cli.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

volatile sig_atomic_t cli_stop;

static void on_signal(int sig) {
    (void)sig;
    cli_stop = 1;
}

void cli_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupt zmq_poll */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool cli_int(const char *prog, const char *opt, const char *s, int64_t min, int64_t max,
             int64_t *ret) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "%s: %s: expected an integer in %" PRId64 "..%" PRId64 ", got '%s'\n",
                prog, opt, min, max, s);
        return false;
    }
    *ret = v;
    return true;
}

bool cli_uint64(const char *prog, const char *opt, const char *s, uint64_t *ret) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "%s: %s: expected an unsigned integer, got '%s'\n", prog, opt, s);
        return false;
    }
    *ret = v;
    return true;
}

bool cli_double(const char *prog, const char *opt, const char *s, double min, double *ret) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min) {
        fprintf(stderr, "%s: %s: expected a number >= %g, got '%s'\n", prog, opt, min, s);
        return false;
    }
    *ret = v;
    return true;
}

static bool z85_key(const char *s) {
    return strlen(s) == 40 && strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#") == 40;
}

/* The next key line of f into out[41]: skips blanks and comments. */
static bool key_line(FILE *f, char *out) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *s = line + strspn(line, " \t");
        s[strcspn(s, " \t\r\n")] = '\0';
        if (!s[0] || s[0] == '#')
            continue;
        if (!z85_key(s))
            return false;
        memcpy(out, s, 41);
        return true;
    }
    return false;
}

bool cli_curve_load(const char *prog, const char *server_key, const char *key_file, cli_curve *c,
                    bool *ret_use) {
    *ret_use = false;
    if (!server_key && !key_file)
        return true;
    if (!server_key || !key_file) {
        fprintf(stderr, "%s: CURVE needs both --curve-server-key and --curve-keys\n", prog);
        return false;
    }
    if (!z85_key(server_key)) {
        fprintf(stderr, "%s: --curve-server-key: not a 40-character Z85 key\n", prog);
        return false;
    }
    FILE *f = fopen(key_file, "re");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, key_file, strerror(errno));
        return false;
    }
    bool ok = key_line(f, c->public_key) && key_line(f, c->secret);
    fclose(f);
    if (!ok) {
        fprintf(stderr, "%s: %s: expected a public and a secret Z85 key line\n", prog, key_file);
        return false;
    }
    memcpy(c->server, server_key, 41);
    c->keys = (nousu_curve){c->server, c->public_key, c->secret};
    *ret_use = true;
    return true;
}

bool cli_redis_addr(const char *prog, const char *s, char *host, size_t cap, int *ret_port) {
    int64_t port = 6379;
    const char *colon = s[0] == '/' ? NULL : strrchr(s, ':');
    size_t hlen = colon ? (size_t)(colon - s) : strlen(s);
    if (hlen == 0 || hlen >= cap) {
        fprintf(stderr, "%s: --redis: expected HOST:PORT or a socket path, got '%s'\n", prog, s);
        return false;
    }
    if (colon && !cli_int(prog, "--redis port", colon + 1, 1, 65535, &port))
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    *ret_port = (int)port;
    return true;
}
