/* log.c -- leveled, rate-limitable lines on stderr (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "clock.h"

static int max_level = LOG_INFO;

int log_level_parse(const char *name) {
    static const struct { const char *name; int level; } levels[] = {
        {"err", LOG_ERR},   {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
        {"info", LOG_INFO}, {"debug", LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(levels[i].name, name) == 0)
            return levels[i].level;
    return -1;
}

void log_set_level(int level) { max_level = level; }
int log_get_level(void) { return max_level; }

static void log_v(int level, const char *fmt, va_list ap) {
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    /* One write per line so concurrent writers never interleave mid-line. */
    fprintf(stderr, "<%d>%s\n", level, line);
}

void log_msg(int level, const char *fmt, ...) {
    if (level > max_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fmt, ap);
    va_end(ap);
}

void log_limited(log_limit *rl, int level, const char *fmt, ...) {
    if (level > max_level)
        return;
    int64_t now = mono_ms();
    if (now - rl->window_start_ms >= rl->interval_ms) {
        rl->window_start_ms = now;
        rl->used = 0;
    }
    if (rl->used >= rl->burst) {
        rl->suppressed++;
        return;
    }
    rl->used++;
    if (rl->suppressed) {
        log_msg(level, "(%llu similar lines suppressed)", (unsigned long long)rl->suppressed);
        rl->suppressed = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fmt, ap);
    va_end(ap);
}
