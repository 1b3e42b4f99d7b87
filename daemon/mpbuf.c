/* mpbuf.c -- a msgpack_sbuffer whose first failed write sticks (mpbuf.h). */
#include "mpbuf.h"

void mpbuf_init(mpbuf *b) {
    msgpack_sbuffer_init(&b->sb);
    b->failed = false;
}

void mpbuf_destroy(mpbuf *b) {
    msgpack_sbuffer_destroy(&b->sb);
    b->failed = false;
}

void mpbuf_clear(mpbuf *b) {
    msgpack_sbuffer_clear(&b->sb);
    b->failed = false;
}

int mpbuf_write(void *data, const char *buf, size_t len) {
    mpbuf *b = data;
    if (b->failed)
        return -1;
    if (msgpack_sbuffer_write(&b->sb, buf, len) != 0) {
        b->failed = true;
        return -1;
    }
    return 0;
}

void mpbuf_packer_init(msgpack_packer *pk, mpbuf *b) {
    msgpack_packer_init(pk, b, mpbuf_write);
}
