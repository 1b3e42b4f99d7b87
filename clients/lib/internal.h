/* internal.h -- helpers shared by the library's modules; not installed.
 *
 * mpcheck.c  structural pre-scan of untrusted msgpack (before msgpack-c
 *            allocates anything)
 * object.c   small typed accessors over an unpacked msgpack_object tree
 * zsock.c    socket options shared by producer and subscriber */
#ifndef NOUSU_INTERNAL_H
#define NOUSU_INTERNAL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nousu/nousu.h"

/* These helpers are shared between the library's files, so they cannot be
 * static; in libnousu.a they would still be global symbols. Their linker
 * names get the library's prefix, so that a program linking it statically
 * can have its own zerr() or mp_check(). */
#define mp_check nousu__mp_check
#define mp_unpack nousu__mp_unpack
#define mp_map_get nousu__mp_map_get
#define mp_bytes nousu__mp_bytes
#define mp_int nousu__mp_int
#define mp_number nousu__mp_number
#define copy_text nousu__copy_text
#define zsock_curve nousu__zsock_curve
#define zerr nousu__zerr
#define mono_ms nousu__mono_ms
#define ack_decode nousu__ack_decode

/* Deepest nesting the library accepts: alerts and acks need 3. */
#define MP_MAX_DEPTH 32

/* Check that buf holds exactly one well-formed msgpack object, every
 * container's declared size fits in the bytes that follow, and nesting is at
 * most max_depth. After this succeeds msgpack-c's unpacker allocates at most
 * a small multiple of len. Returns 0 or -EBADMSG. Pure. */
int mp_check(const void *buf, size_t len, int max_depth);

/* mp_check() then unpack into ret (msgpack_unpacked_init() done by the
 * caller, msgpack_unpacked_destroy() too, also on failure). 0, -EBADMSG or
 * -ENOMEM. */
int mp_unpack(const void *buf, size_t len, msgpack_unpacked *ret);

/* The value of a string key in a map, or NULL when absent. A key present
 * twice: -EBADMSG through *ret_err (a map is untrusted input). */
const msgpack_object *mp_map_get(const msgpack_object *map, const char *key, int *ret_err);

/* str or bin: pointer and length; false for any other type. */
bool mp_bytes(const msgpack_object *o, const char **ret_ptr, size_t *ret_len);
/* Any msgpack integer that fits int64_t. */
bool mp_int(const msgpack_object *o, int64_t *ret);
/* Any integer or float, as a double. */
bool mp_number(const msgpack_object *o, double *ret);

/* Copy bytes into a NUL-terminated buffer of cap bytes; false if they do
 * not fit or contain a NUL. */
bool copy_text(char *dst, size_t cap, const char *src, size_t len);

/* Apply CURVE client keys to a socket (before connect). 0 or -errno. */
int zsock_curve(void *sock, const nousu_curve *curve);
/* -errno from zmq_errno(), never 0. */
int zerr(void);

/* Monotonic milliseconds. */
int64_t mono_ms(void);

#endif
