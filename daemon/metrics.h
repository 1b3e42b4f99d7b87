/* metrics.h -- GET /metrics (Prometheus text format) and GET /healthz over
 * HTTP with libmicrohttpd. The server runs in libmicrohttpd's own thread and
 * never touches the loop's state: the loop renders the text (metrics_render,
 * pure) and hands it over with metrics_publish; /healthz answers 200 only
 * while Redis is up and the loop published recently. */
#ifndef NOUSU_METRICS_H
#define NOUSU_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

typedef struct metrics metrics;

/* Listen on "host:port". NULL on failure (logged). */
metrics *metrics_new(const char *hostport);
void metrics_destroy(metrics **m);

/* Render every metric into a malloc'd NUL-terminated string (*ret, caller
 * frees). Returns its length or -ENOMEM. start_s: process start time. */
int metrics_render(const stats *st, double start_s, const char *version, char **ret);

/* Hand a rendered text and the health over to the HTTP thread (takes
 * ownership of text). now_mono_ms stamps the loop's liveness. */
void metrics_publish(metrics *m, char *text, bool redis_up, int64_t now_mono_ms);

#endif
