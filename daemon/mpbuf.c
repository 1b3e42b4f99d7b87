/* mpbuf.c -- a msgpack buffer whose first failed write sticks (mpbuf.h). */
#include <stdint.h>
#include <stdlib.h>

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

/* Doubles the allocation (from msgpack-c's first size, as its sbuffer
 * does) until n more bytes fit. */
unsigned char *mpbuf_grow(mpbuf *b, size_t n) {
    msgpack_sbuffer *sb = &b->sb;
    if (b->failed)
        return NULL;
    if (sb->alloc - sb->size >= n)
        return (unsigned char *)sb->data + sb->size;
    if (n > SIZE_MAX - sb->size)
        goto fail;
    size_t need = sb->size + n, cap = sb->alloc ? sb->alloc : MSGPACK_SBUFFER_INIT_SIZE;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(sb->data, cap);
    if (!p)
        goto fail;
    sb->data = p, sb->alloc = cap;
    return (unsigned char *)p + sb->size;
fail:
    b->failed = true;
    return NULL;
}

int mpbuf_write(void *data, const char *buf, size_t len) {
    mpbuf *b = data;
    if (len == 0) /* an empty buffer has no data pointer to offset */
        return b->failed ? -1 : 0;
    unsigned char *p = mpbuf_room(b, len);
    if (!p)
        return -1;
    memcpy(p, buf, len);
    b->sb.size += len;
    return 0;
}
