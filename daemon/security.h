/* security.h -- CURVE on every ZeroMQ endpoint, with the daemon's own ZAP
 * handler enforcing an allow-list of client public keys.
 *
 * libzmq 4.3 lets any CURVE client that knows the server key in unless a ZAP
 * handler says otherwise, so the handler is started (inproc://zeromq.zap.01,
 * its own thread) before any socket is bound, and start-up fails when it
 * cannot be: no handler, no start. Every peer that is not an allow-listed
 * CURVE client -- NULL security or an unknown key -- is refused at the
 * handshake: nothing in, nothing out. */
#ifndef NOUSU_SECURITY_H
#define NOUSU_SECURITY_H

#include <stddef.h>
#include <stdint.h>

typedef struct security security;

/* Read the server secret key file (one line, 40 Z85 characters) and the
 * allow-list (one Z85 public key per line; blank lines and # comments
 * ignored), start the ZAP handler in zctx. Both paths empty: CURVE off,
 * returns an object that applies nothing. NULL on error (logged). */
security *security_new(void *zctx, const char *secret_key_file, const char *allowed_keys_file);
void security_destroy(security **s);

/* Make sock a CURVE server checked by the handler (before bind). 0 or -errno. */
int security_apply(const security *s, void *sock);

/* Handshakes refused so far (for logs and metrics). */
uint64_t security_refused(const security *s);

/* Parse one allow-list line into a 32-byte key: 1 key, 0 blank/comment,
 * -EINVAL bad. Pure. */
int security_parse_key_line(const char *line, uint8_t key[32]);

#endif
