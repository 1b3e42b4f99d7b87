/* resp.h -- a Redis command written to a socket straight from its
 * arguments, for the commit's few large ones (store.c).
 *
 * hiredis copies every argument twice, formatting the command into a new
 * string and appending that to its output buffer, which it frees once
 * written: a commit's megabytes were copied twice and faulted in afresh
 * each time (on the VMs this runs on a page fault costs ~13 us; the two
 * copies were ~55% of the daemon's faults, docs/performance.md, session
 * 24). resp_write sends the same bytes (RESP: "*argc", then "$len", the
 * argument, for each) with writev from the caller's buffers. */
#ifndef NOUSU_RESP_H
#define NOUSU_RESP_H

#include <stddef.h>

#define RESP_ARGS_MAX 16

/* Write argv[0..argc) as one command to the blocking socket fd, all of it
 * (short writes and EINTR are resumed). Returns 0, or -errno: -EINVAL for
 * more than RESP_ARGS_MAX arguments (nothing written), -EAGAIN when the
 * socket's send timeout passed, or write's error; after an error part of
 * the command may have been written, so the connection is to be dropped. */
int resp_write(int fd, int argc, const char *const *argv, const size_t *lens);

#endif
