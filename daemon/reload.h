/* reload.h -- SIGHUP: the configuration read again from the same command
 * line (and the file it names), kept only when it is valid and every key
 * that differs may change while running. */
#ifndef NOUSU_RELOAD_H
#define NOUSU_RELOAD_H

#include <stddef.h>

#include "config.h"

/* Reads the configuration again into *next, to replace cur. Returns 0 (the
 * caller owns next: config_free), or -errno with the reason in err (next is
 * then freed). changed gets the keys whose values differ from cur,
 * comma-separated, "" when none. */
int reload_read(const config *cur, int argc, char **argv, config *next, char *err,
                size_t err_cap, char *changed, size_t changed_cap);

#endif
