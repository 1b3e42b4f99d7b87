/* mpread.c -- msgpack bytes read in place (see mpread.h). */
#include <string.h>

#include "mpread.h"

int mp_head_parse_long(const uint8_t *p, size_t left, mp_head *h) {
    uint8_t b = p[0];
    unsigned lb;

    switch (b) {
    case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
        lb = 1u << (b - 0xc4);
        if (left < 1 + lb)
            return -1;
        mp_head_scalar(h, (uint8_t)(1 + lb), mp_var_len(p, lb));
        return 0;
    case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
        lb = 1u << (b - 0xd9);
        if (left < 1 + lb)
            return -1;
        mp_head_scalar(h, (uint8_t)(1 + lb), mp_var_len(p, lb));
        return 0;
    case 0xc7: case 0xc8: case 0xc9: { /* ext 8/16/32: length, type, data */
        lb = 1u << (b - 0xc7);
        if (left < 1 + lb)
            return -1;
        uint64_t n = mp_var_len(p, lb);
        /* msgpack-c computes n + 1 in 32 bits: keep it from wrapping. */
        if (n == UINT32_MAX)
            return -1;
        mp_head_scalar(h, (uint8_t)(1 + lb), n + 1);
        return 0;
    }
    case 0xca: mp_head_scalar(h, 1, 4); return 0;  /* float 32 */
    case 0xcb: mp_head_scalar(h, 1, 8); return 0;  /* float 64 */
    case 0xcc: case 0xd0: mp_head_scalar(h, 1, 1); return 0;
    case 0xcd: case 0xd1: mp_head_scalar(h, 1, 2); return 0;
    case 0xce: case 0xd2: mp_head_scalar(h, 1, 4); return 0;
    case 0xcf: case 0xd3: mp_head_scalar(h, 1, 8); return 0;
    case 0xd4: mp_head_scalar(h, 1, 2); return 0;  /* fixext 1: type + data */
    case 0xd5: mp_head_scalar(h, 1, 3); return 0;
    case 0xd6: mp_head_scalar(h, 1, 5); return 0;
    case 0xd7: mp_head_scalar(h, 1, 9); return 0;
    case 0xd8: mp_head_scalar(h, 1, 17); return 0;
    case 0xdc: case 0xdd: /* array 16/32 */
        lb = b == 0xdc ? 2 : 4;
        if (left < 1 + lb)
            return -1;
        mp_head_container(h, (uint8_t)(1 + lb), mp_var_len(p, lb), true);
        return 0;
    case 0xde: case 0xdf: /* map 16/32 */
        lb = b == 0xde ? 2 : 4;
        if (left < 1 + lb)
            return -1;
        mp_head_container(h, (uint8_t)(1 + lb), mp_var_len(p, lb), false);
        return 0;
    default: /* 0xc1: never used */
        return -1;
    }
}

int mpread_skip_at(mpread *r, unsigned depth) {
    uint64_t left[MPREAD_MAX_DEPTH]; /* children still to pass per open container */
    unsigned open = 0;
    mpread at = *r;
    for (;;) {
        mp_head h;
        if (mpread_head(&at, &h) < 0)
            return -1;
        if (h.container) {
            if (depth + open >= MPREAD_MAX_DEPTH)
                return -1;
            if (h.items > 0) {
                left[open++] = h.items;
                continue;
            }
        } else {
            at.pos += h.body;
        }
        while (open > 0 && --left[open - 1] == 0)
            open--;
        if (open == 0)
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
