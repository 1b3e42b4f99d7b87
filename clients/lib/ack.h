/* ack.h -- decode the daemon's ack map (SPEC §4). Internal. */
#ifndef NOUSU_ACK_H
#define NOUSU_ACK_H

#include "internal.h"

/* Decode an ack of len bytes. Fills ret's ok, dup, rejected, n_errors and
 * errors (= the caller's array of max_errors entries, the most the ack may
 * carry); the other fields are the caller's. 0, -EBADMSG or -ENOMEM; ret is
 * untouched on failure (errors[] may be written). */
int ack_decode(const void *buf, size_t len, nousu_ack_error *errors, size_t max_errors,
               nousu_ack *ret);

#endif
