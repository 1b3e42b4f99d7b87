/* alert.h -- SPEC §6 alert messages: encode, then (after store_post has
 * appended them to the stream with their seq) publish on the PUB socket.
 * Order is fixed: XADD to the stream first, then PUB, so a subscriber that
 * missed a message can always catch up from the stream. */
#ifndef NOUSU_ALERT_H
#define NOUSU_ALERT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "security.h"
#include "store.h"

#define ALERT_TOPIC_MAX 96

/* Topic "<kind>.<niche>", niche "_" when unknown. */
void alert_topic(alert_kind k, const char *niche, char out[ALERT_TOPIC_MAX]);

/* Encode the alert map into out (cleared first) with every field but the
 * value of its last key, "seq", which the store appends once Redis assigned
 * it. window_s is the recent window's length. */
void alert_encode_head(msgpack_sbuffer *out, alert_kind k, const creator_summary *c,
                       const detect_result *r, char reasons[][DETECT_REASON_LEN],
                       size_t n_reasons, int64_t emitted_ms, int64_t window_s);

typedef struct alert_pub alert_pub;

/* Binds the PUB socket. NULL on failure (logged). */
alert_pub *alert_pub_new(void *zctx, const char *endpoint, int sndhwm, int64_t max_msg_size,
                         const security *sec);
void alert_pub_destroy(alert_pub **p);
/* Publish [topic, msg]; never blocks (a slow subscriber loses messages at
 * its HWM and catches up from the stream). Returns 0 or -errno. */
int alert_publish(alert_pub *p, const char *topic, const char *msg, size_t len);

#endif
