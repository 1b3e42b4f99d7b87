/* cli.h -- small helpers shared by nousu-send, nousu-tail and nousu-demo:
 * number parsing, CURVE key files, Redis addresses, signal flags. */
#ifndef NOUSU_CLI_H
#define NOUSU_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "nousu/nousu.h"

/* Exit statuses: 0 fine, 1 something was refused or failed, 2 bad usage. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Set by SIGINT/SIGTERM (installed without SA_RESTART, so blocking ZeroMQ
 * calls return EINTR and the tools see the flag promptly). */
extern volatile sig_atomic_t cli_stop;
void cli_signals(void);

/* The longest a tool blocks in one ZeroMQ wait. A signal that lands after
 * the loop checked cli_stop but before zmq_poll() blocks does not interrupt
 * it (there is no ppoll() for ZeroMQ sockets): the next wake-up sees it. */
#define CLI_STOP_POLL_MS 200

/* Decimal integer in [min, max]; false (with a message naming opt) otherwise. */
bool cli_int(const char *prog, const char *opt, const char *s, int64_t min, int64_t max,
             int64_t *ret);
bool cli_uint64(const char *prog, const char *opt, const char *s, uint64_t *ret);
bool cli_double(const char *prog, const char *opt, const char *s, double min, double *ret);

/* CURVE client keys: the server key from the command line (it is public),
 * the client pair from a file (public key line, secret key line; blank
 * lines and # comments ignored), since a secret never belongs in argv. */
typedef struct cli_curve {
    char server[41], public_key[41], secret[41];
    nousu_curve keys; /* points at the arrays above */
} cli_curve;

/* Fills c from the two options; returns false with a message on error.
 * *ret_use is false when neither option was given. */
bool cli_curve_load(const char *prog, const char *server_key, const char *key_file, cli_curve *c,
                    bool *ret_use);

/* "HOST:PORT", "HOST" (port 6379) or a unix socket path ("/..."). */
bool cli_redis_addr(const char *prog, const char *s, char *host, size_t cap, int *ret_port);

#endif
