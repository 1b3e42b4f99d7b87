/* control.h -- SPEC §7 control queries on a ROUTER socket: REQ clients (or
 * DEALERs sending an empty delimiter first) send one msgpack map and get one
 * back. Parsing and the reply encoders are pure; the loop runs the queries. */
#ifndef NOUSU_CONTROL_H
#define NOUSU_CONTROL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "security.h"
#include "stats.h"
#include "store.h"

#define CONTROL_MAX_REQUEST 65536
#define CONTROL_TOP_MAX 1000

typedef enum control_op { CONTROL_PING, CONTROL_CREATOR, CONTROL_TOP, CONTROL_STATS } control_op;

typedef struct control_request {
    control_op op;
    char creator[129];
    char niche[65];
    bool has_niche;
    size_t n; /* top: 1..1000, default 10 */
} control_request;

/* NULL when valid, else the error reason for {"error": reason}. Pure. */
const char *control_parse(const void *data, size_t len, control_request *ret);

void control_reply_error(msgpack_sbuffer *out, const char *reason);
void control_reply_pong(msgpack_sbuffer *out, const char *version);
void control_reply_creator(msgpack_sbuffer *out, const creator_summary *c, const detect_result *r);
void control_reply_top(msgpack_sbuffer *out, const char *niche, const top_entry *e, size_t n);
void control_reply_stats(msgpack_sbuffer *out, const stats *st, int64_t now_ms);

typedef struct control control;

control *control_new(void *zctx, const char *endpoint, int64_t max_msg_size, const security *sec);
void control_destroy(control **c);
void *control_socket(const control *c);

/* Receive one request without blocking. Returns 1 with the request body in
 * *ret_body (valid until control_reply), 0 when none is waiting, -errno. */
int control_recv(control *c, const void **ret_body, size_t *ret_len);
/* Answer the request last received. */
void control_reply(control *c, const msgpack_sbuffer *reply);

#endif
