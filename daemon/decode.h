/* decode.h -- frame bytes -> events + rejection reasons (SPEC §3).
 *
 * Pure: no I/O, no logging, no global state, no allocation per frame. One
 * pass reads the frame in place, checking every msgpack header against the
 * bytes left and capping the nesting depth, and validates each event map
 * into a fixed struct event whose strings point into the caller's frame. */
#ifndef NOUSU_DECODE_H
#define NOUSU_DECODE_H

#include "event.h"

typedef struct decode_limits {
    size_t max_frame_bytes;  /* larger frames: oversize (default 1 MiB) */
    size_t max_batch_events; /* larger arrays: batch_too_large (default 10,000) */
    int64_t future_ms;       /* ts > now + future_ms: future (default 300,000) */
} decode_limits;

/* One slot per event of a frame, or a single slot for a frame rejected whole. */
typedef struct decode_item {
    reject_reason reason; /* REJECT_NONE: ev is valid */
    event ev;             /* ev.raw is always set: the unit's own bytes */
} decode_item;

typedef struct decoder decoder;

/* Returns NULL on allocation failure. Limits are copied. */
decoder *decoder_new(const decode_limits *lim);
/* Accepts NULL; sets *d to NULL. */
void decoder_destroy(decoder **d);
/* Replace the limits (config reload). */
void decoder_set_limits(decoder *d, const decode_limits *lim);

/* Decode one frame of len bytes received at wall-clock now_ms.
 *
 * Writes at most cap items (cap must be >= max_batch_events, and >= 1) and
 * stores their count in *ret_n: one per event of the frame (0 for an empty
 * batch), or exactly one with a frame reason (malformed, oversize,
 * batch_too_large) and ev.raw = the whole frame when the frame is rejected
 * whole; *ret_whole tells which. A batch longer than cap is batch_too_large
 * too, should a caller break the rule above. Item strings point into data,
 * which must outlive them. Returns 0, -ENOMEM, or -EINVAL when cap is 0; on
 * error *ret_n and *ret_whole are untouched and items[] is meaningless. */
int decode_frame(decoder *d, const void *data, size_t len, int64_t now_ms,
                 decode_item *items, size_t cap, size_t *ret_n, bool *ret_whole);

/* The decoder's structural checks alone, for other readers of untrusted msgpack
 * (control.c) to run before msgpack_unpack(): 0 when data is exactly one map
 * or array, nested at most 8 levels, whose every header fits in the bytes
 * that follow it; -EBADMSG otherwise. No allocation. */
int decode_prescan(const void *data, size_t len);

#endif
