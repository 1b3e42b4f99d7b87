/* fuzz_hintflat.c -- libFuzzer target for hintflat.c, which the Redis module
 * runs on ARGV[3] and ARGV[4] of NOUSU.HINTS, bytes any client can send:
 * reading hints and places must refuse or accept any bytes without reading
 * past them, every string it returns must lie within them, and a hint's
 * actors must be as many as it says. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hintflat.h"

static void within(const hintflat_str *s, const unsigned char *buf, size_t size) {
    if (s->ptr && ((const unsigned char *)s->ptr < buf ||
                   (const unsigned char *)s->ptr + s->len > buf + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *buf = malloc(size ? size : 1); /* exact, for ASan */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    hintflat f;
    hintflat_hint h;
    if (hintflat_open(&f, buf, size) == 0) {
        uint32_t last = 0;
        while (hintflat_next(&f, &h) == 1) {
            if (h.p <= last)
                abort();
            last = h.p;
            within(&h.creator, buf, size), within(&h.old_state, buf, size);
            within(&h.new_state, buf, size), within(&h.bucket, buf, size);
            within(&h.niche, buf, size);
            hintflat_str a;
            uint32_t n = 0;
            while (hintflat_actor(&h, &a))
                within(&a, buf, size), n++;
            if (n != h.n_actors)
                abort();
        }
    }
    uint32_t places[64];
    long n = hintflat_places(buf, size, places, 64);
    if (n > 64)
        abort();
    free(buf);
    return 0;
}
