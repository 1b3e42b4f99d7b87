/* decimal.h -- an integer's decimal digits, as printf's %lld/%llu write
 * them, without printf: the commit writes one per event id (wire.c) and
 * per hint (hint.c), and the decoder one per int actor (decode.c), where
 * snprintf's format parsing cost more than the rest of the hint. */
#ifndef NOUSU_DECIMAL_H
#define NOUSU_DECIMAL_H

#include <stdbool.h>
#include <stdint.h>

/* The longest: "-9223372036854775808" or "18446744073709551615", and a NUL. */
#define DECIMAL_MAX 24

/* How many decimal digits v has: log2 by its leading zeros, times log10(2)
 * (1233 / 4096), then one compare against a power of ten. */
static inline uint32_t decimal_digits(uint64_t v) {
    static const uint64_t pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
    };
    uint64_t w = v | 1; /* 0 has one digit; no power of ten above 1 is odd */
    uint32_t t = (uint32_t)(64 - __builtin_clzll(w)) * 1233 >> 12;
    return t + (w >= pow10[t]);
}

/* -mag when neg, else mag, into out, NUL-terminated; returns its length.
 * Written from the last digit, two at a time from a table, in 32-bit
 * arithmetic once the rest fits: an event id's hash has 19 or 20 digits. */
static inline uint32_t decimal_format(char out[DECIMAL_MAX], bool neg, uint64_t mag) {
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    uint32_t len = decimal_digits(mag) + neg;
    char *d = out + len;
    *d = '\0';
    while (mag > UINT32_MAX) {
        const char *two = pairs + 2 * (mag % 100);
        mag /= 100;
        *--d = two[1], *--d = two[0];
    }
    uint32_t m = (uint32_t)mag;
    while (m >= 100) {
        const char *two = pairs + 2 * (m % 100);
        m /= 100;
        *--d = two[1], *--d = two[0];
    }
    if (m >= 10)
        *--d = pairs[2 * m + 1], *--d = pairs[2 * m];
    else
        *--d = (char)('0' + m);
    if (neg)
        out[0] = '-';
    return len;
}

/* A signed one. Negated in unsigned arithmetic: INT64_MIN has no int64
 * opposite. */
static inline uint32_t decimal_i64(char out[DECIMAL_MAX], int64_t v) {
    return decimal_format(out, v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

#endif
