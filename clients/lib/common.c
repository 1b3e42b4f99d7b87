/* common.c -- version, event initialisation and the ZeroMQ details shared
 * by the producer and the subscriber. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "internal.h"

const char *nousu_version(void) {
    return NOUSU_VERSION_STRING;
}

void nousu_event_init(nousu_event *ev) {
    *ev = (nousu_event)NOUSU_EVENT_INIT;
}

int zerr(void) {
    int e = zmq_errno();
    return e > 0 ? -e : -EIO;
}

int zsock_curve(void *sock, const nousu_curve *curve) {
    if (!curve)
        return 0;
    if (!curve->server_key || !curve->public_key || !curve->secret_key)
        return -EINVAL;
    /* Z85 keys are 40 characters; ZeroMQ takes them with that length. */
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, curve->server_key,
                       strlen(curve->server_key)) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, curve->public_key,
                       strlen(curve->public_key)) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, curve->secret_key,
                       strlen(curve->secret_key)) < 0)
        return zerr();
    return 0;
}

int64_t mono_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
