/* security.c -- CURVE keys and the ZAP handler thread (see security.h). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "security.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "nousu"
#define MAX_KEYS 4096

struct security {
    bool on;
    char secret[41]; /* Z85 */
    uint8_t (*keys)[32];
    size_t n_keys;
    void *zap; /* REP socket, used only by the thread */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_uint_fast64_t refused;
};

/* ---- key files -------------------------------------------------------------- */

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int security_parse_key_line(const char *line, uint8_t key[32]) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", line);
    char *s = trim(buf);
    if (!*s || *s == '#')
        return 0;
    if (strlen(s) != 40 || !zmq_z85_decode(key, s))
        return -EINVAL;
    return 1;
}

static int read_secret(security *s, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        log_error("curve: cannot read %s: %s", path, strerror(errno));
        return -errno;
    }
    char buf[256] = "";
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    char *k = trim(buf);
    uint8_t raw[32];
    int ok = strlen(k) == 40 && zmq_z85_decode(raw, k);
    if (ok)
        memcpy(s->secret, k, 41);
    memset(buf, 0, sizeof buf);
    memset(raw, 0, sizeof raw);
    if (!ok) {
        log_error("curve: %s: not a 40-character Z85 secret key", path);
        return -EINVAL;
    }
    return 0;
}

static int read_allowed(security *s, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        log_error("curve: cannot read %s: %s", path, strerror(errno));
        return -errno;
    }
    char line[256];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        uint8_t key[32];
        int r = security_parse_key_line(line, key);
        if (r < 0 || (r == 1 && s->n_keys >= MAX_KEYS)) {
            log_error("curve: %s:%d: %s", path, lineno,
                      r < 0 ? "not a 40-character Z85 public key" : "too many keys");
            rc = -EINVAL;
        } else if (r == 1) {
            memcpy(s->keys[s->n_keys++], key, 32);
        }
    }
    fclose(f);
    return rc;
}

/* ---- the ZAP handler (RFC 27) ------------------------------------------------- */

static bool allowed(const security *s, const zmq_msg_t *mechanism, const zmq_msg_t *cred) {
    if (zmq_msg_size((zmq_msg_t *)mechanism) != 5 ||
        memcmp(zmq_msg_data((zmq_msg_t *)mechanism), "CURVE", 5) != 0 ||
        zmq_msg_size((zmq_msg_t *)cred) != 32)
        return false;
    for (size_t i = 0; i < s->n_keys; i++)
        if (memcmp(s->keys[i], zmq_msg_data((zmq_msg_t *)cred), 32) == 0)
            return true;
    return false;
}

/* Read one request: version, request id, domain, address, identity,
 * mechanism, credentials...; answer 200 or 400. */
static void zap_answer(security *s) {
    enum { VERSION, REQUEST_ID, DOMAIN, ADDRESS, IDENTITY, MECHANISM, CRED, PARTS };
    zmq_msg_t part[PARTS];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->zap, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < PARTS)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    bool ok = n >= MECHANISM + 1 && allowed(s, &part[MECHANISM], n > CRED ? &part[CRED] : &part[0]);
    if (n > REQUEST_ID) {
        zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(s->zap, zmq_msg_data(&part[REQUEST_ID]), zmq_msg_size(&part[REQUEST_ID]),
                 ZMQ_SNDMORE);
        zmq_send(s->zap, ok ? "200" : "400", 3, ZMQ_SNDMORE);
        zmq_send(s->zap, ok ? "OK" : "not allowed", ok ? 2 : 11, ZMQ_SNDMORE);
        zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
        zmq_send(s->zap, "", 0, 0);
    }
    if (!ok)
        atomic_fetch_add(&s->refused, 1);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
}

static void *zap_thread(void *arg) {
    security *s = arg;
    while (!atomic_load(&s->stop)) {
        zmq_pollitem_t it = {s->zap, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) > 0)
            zap_answer(s);
    }
    return NULL;
}

static int start_handler(security *s, void *zctx) {
    s->zap = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (!s->zap)
        return -ENOMEM;
    zmq_setsockopt(s->zap, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s->zap, ZAP_ENDPOINT) != 0) {
        log_error("curve: cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
        return -EADDRINUSE;
    }
    if (pthread_create(&s->thread, NULL, zap_thread, s) != 0)
        return -EAGAIN;
    s->thread_started = true;
    return 0;
}

/* ---- lifecycle ----------------------------------------------------------------- */

security *security_new(void *zctx, const char *secret_key_file, const char *allowed_keys_file) {
    security *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!secret_key_file || !secret_key_file[0])
        return s; /* CURVE off */
    s->on = true;
    s->keys = calloc(MAX_KEYS, sizeof *s->keys);
    if (!s->keys || read_secret(s, secret_key_file) < 0 ||
        read_allowed(s, allowed_keys_file) < 0 || start_handler(s, zctx) < 0) {
        security_destroy(&s);
        return NULL;
    }
    log_notice("curve: on for every endpoint, %zu allowed client keys", s->n_keys);
    return s;
}

void security_destroy(security **sp) {
    security *s = sp ? *sp : NULL;
    if (!s)
        return;
    if (s->thread_started) {
        atomic_store(&s->stop, true);
        pthread_join(s->thread, NULL);
    }
    if (s->zap)
        zmq_close(s->zap);
    memset(s->secret, 0, sizeof s->secret);
    free(s->keys);
    free(s);
    *sp = NULL;
}

int security_apply(const security *s, void *sock) {
    if (!s->on)
        return 0;
    int server = 1;
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &server, sizeof server) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, s->secret, 40) != 0)
        return -zmq_errno();
    return 0;
}

uint64_t security_refused(const security *s) { return atomic_load(&s->refused); }
