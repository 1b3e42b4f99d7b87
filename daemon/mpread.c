/* mpread.c -- msgpack bytes read in place (see mpread.h). */
#include <string.h>

#include "mpread.h"

int mpread_skip(mpread *r) {
    uint64_t left[MPREAD_MAX_DEPTH]; /* children still to pass per open container */
    unsigned depth = 0;
    mpread at = *r;
    for (;;) {
        mp_head h;
        if (mpread_head(&at, &h) < 0)
            return -1;
        if (h.container && h.items > 0) {
            if (depth == MPREAD_MAX_DEPTH)
                return -1;
            left[depth++] = h.items;
            continue;
        }
        if (!h.container)
            at.pos += h.body;
        while (depth > 0 && --left[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    r->pos = at.pos;
    return 0;
}

bool mpread_num(mpread *r, double *ret) {
    if (r->pos >= r->len)
        return false;
    const uint8_t *p = r->p + r->pos;
    size_t left = r->len - r->pos;
    uint8_t b = p[0];
    if (b <= 0x7f || b >= 0xe0) {
        *ret = (double)(int8_t)b; /* fixints: 0..127 and -32..-1 */
        r->pos++;
        return true;
    }
    static const uint8_t size_of[] = {/* 0xca..0xd3 */ 4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
    if (b < 0xca || b > 0xd3 || left < 1u + size_of[b - 0xca])
        return false;
    uint64_t u = 0;
    for (unsigned i = 0; i < size_of[b - 0xca]; i++)
        u = u << 8 | p[1 + i];
    switch (b) {
    case 0xca: {
        float f;
        uint32_t u32 = (uint32_t)u;
        memcpy(&f, &u32, sizeof f);
        *ret = f;
        break;
    }
    case 0xcb: {
        double d;
        memcpy(&d, &u, sizeof d);
        *ret = d;
        break;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf: *ret = (double)u; break;
    case 0xd0: *ret = (int8_t)u; break;
    case 0xd1: *ret = (int16_t)u; break;
    case 0xd2: *ret = (int32_t)u; break;
    default:   *ret = (double)(int64_t)u; break;
    }
    r->pos += 1u + size_of[b - 0xca];
    return true;
}
