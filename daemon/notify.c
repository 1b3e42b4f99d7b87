/* notify.c -- sd_notify wrappers (see notify.h). */
#include <systemd/sd-daemon.h>

#include "notify.h"

void notify_ready(void) { sd_notify(0, "READY=1"); }
void notify_reloading(void) { sd_notify(0, "RELOADING=1"); }
void notify_stopping(void) { sd_notify(0, "STOPPING=1"); }
void notify_watchdog(void) { sd_notify(0, "WATCHDOG=1"); }

void notify_status(const char *status) { sd_notifyf(0, "STATUS=%s", status); }
