/* notify.h -- the systemd notification protocol (sd_notify): READY=1 once
 * sockets are bound and Redis answers, STATUS= with the rates, WATCHDOG=1
 * from the loop while it makes progress, RELOADING=1/READY=1 around SIGHUP,
 * STOPPING=1 on SIGTERM. Every call is a no-op outside systemd. */
#ifndef NOUSU_NOTIFY_H
#define NOUSU_NOTIFY_H

#include <stdint.h>

void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *status);
void notify_watchdog(void);

#endif
