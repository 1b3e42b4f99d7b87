/* log.h -- one line per event of note on stderr, with a journald level
 * prefix ("<3>" ... "<7>"), so systemd keeps the level. Bad-input lines go
 * through log_limited() so a flood of garbage cannot flood the journal. */
#ifndef NOUSU_LOG_H
#define NOUSU_LOG_H

#include <stdint.h>

enum { LOG_ERR = 3, LOG_WARNING = 4, LOG_NOTICE = 5, LOG_INFO = 6, LOG_DEBUG = 7 };

/* Parse "err" "warning" "notice" "info" "debug"; -1 when unknown. */
int log_level_parse(const char *name);
void log_set_level(int level);
int log_get_level(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A rate limiter: at most burst lines per interval; the first line after a
 * suppressed stretch says how many were dropped. */
typedef struct log_limit {
    int64_t window_start_ms;
    int64_t interval_ms;
    int burst;
    int used;
    uint64_t suppressed;
} log_limit;

#define LOG_LIMIT_INIT(interval, n) {0, (interval), (n), 0, 0}

void log_limited(log_limit *rl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
