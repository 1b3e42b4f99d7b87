/* mix64.h -- splitmix64's finalizer, the bit mixer of the event-id
 * structures (idfilter.c, idtable.c). The ids are XXH3 hashes already, but
 * their top 16 bits pick Redis's sets and table parts (places): whatever
 * else picks by id bits (filter blocks, table slots) mixes them first so as
 * not to follow the places. */
#ifndef NOUSU_MIX64_H
#define NOUSU_MIX64_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

#endif
