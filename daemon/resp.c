/* resp.c -- a Redis command written with writev from its arguments. */
#include <errno.h>
#include <sys/uio.h>

#include "decimal.h"
#include "resp.h"

/* "*" or "$", n, CRLF into out; its length. */
static size_t put_head(char *out, char kind, size_t n) {
    out[0] = kind;
    size_t len = 1 + decimal_format(out + 1, false, (uint64_t)n);
    out[len] = '\r', out[len + 1] = '\n';
    return len + 2;
}

/* Past the first done bytes of iov[0..*n): the vector advances, and the
 * first entry left is cut at its start. */
static struct iovec *advance(struct iovec *iov, int *n, size_t done) {
    while (*n > 0 && done >= iov->iov_len)
        done -= iov->iov_len, iov++, (*n)--;
    if (*n > 0)
        iov->iov_base = (char *)iov->iov_base + done, iov->iov_len -= done;
    return iov;
}

static int write_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        iov = advance(iov, &n, (size_t)w);
    }
    return 0;
}

int resp_write(int fd, int argc, const char *const *argv, const size_t *lens) {
    /* each argument: its head, itself, CRLF; the head of the command first */
    char heads[(RESP_ARGS_MAX + 1) * (DECIMAL_MAX + 3)];
    struct iovec iov[3 * RESP_ARGS_MAX + 1];
    if (argc < 1 || argc > RESP_ARGS_MAX)
        return -EINVAL;
    char *h = heads;
    int n = 0;
    size_t len = put_head(h, '*', (size_t)argc);
    iov[n++] = (struct iovec){h, len}, h += len;
    for (int i = 0; i < argc; i++) {
        len = put_head(h, '$', lens[i]);
        iov[n++] = (struct iovec){h, len}, h += len;
        if (lens[i])
            iov[n++] = (struct iovec){(void *)argv[i], lens[i]};
        iov[n++] = (struct iovec){(void *)"\r\n", 2};
    }
    return write_all(fd, iov, n);
}
