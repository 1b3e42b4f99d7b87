/* idtable.h -- a set of 64-bit event-id hashes in one flat buffer: the
 * value of a Redis string, kept by the nousu Redis module (daemon/redis-module/)
 * so that a commit tests and adds its ids in one call per table instead of
 * one SADD per intset its ids fall into (docs/performance.md, "A Redis
 * module for the ids").
 *
 * Layout: an 8-byte magic, the count (uint64), then any number of 8-byte
 * slots (so that a table fills its allocation: nousu.lua sizes them to
 * jemalloc's size classes); 0 is an empty slot. Open addressing with linear probing from
 * a mix of the id, planned at most 3/4 full (idtable_room; a miss probes
 * ~8.5 slots there, all in one or two cache lines) and never past 7/8
 * (idtable_limit): 10.7-21 bytes an id at 3/8-3/4 full. Id 0 is stored as IDTABLE_ZERO,
 * so the two are one id (a 2^-64 chance for a hash). Pure: the buffer is the
 * caller's; no allocation, no I/O. Byte order is the host's, like Redis's
 * RDB of a string: a table moves between machines of one byte order only. */
#ifndef NOUSU_IDTABLE_H
#define NOUSU_IDTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDTABLE_HEADER 16
#define IDTABLE_MIN_SLOTS 64
#define IDTABLE_MAX_SLOTS ((uint64_t)1 << 30)
#define IDTABLE_ZERO UINT64_C(0x9e3779b97f4a7c15)

/* Bytes of a table of slots slots (within the bounds above). */
size_t idtable_bytes(uint64_t slots);

/* True when slots is within [IDTABLE_MIN_SLOTS, IDTABLE_MAX_SLOTS]. */
bool idtable_slots_ok(uint64_t slots);

/* Make a zeroed buffer of idtable_bytes(slots) an empty table. */
void idtable_init(void *buf);

/* True when buf (len bytes) is a table: the magic, a valid slot count for
 * len, and a count within its limit. Everything below takes a valid one. */
bool idtable_valid(const void *buf, size_t len);

uint64_t idtable_slots(size_t len);
uint64_t idtable_count(const void *buf);

/* How many ids to plan for: 3/4 of its slots. */
uint64_t idtable_room(uint64_t slots);

/* How many it may hold: 7/8 (a table planned at 3/4 may fill unevenly). */
uint64_t idtable_limit(uint64_t slots);

/* Add id: 1 when it was not there, 0 when it was, -1 when no slot is
 * empty (a table someone else wrote: ours stay within idtable_limit, which
 * the caller keeps to). A probe never passes the last slot twice. */
int idtable_add(void *buf, size_t len, uint64_t id);

bool idtable_has(const void *buf, size_t len, uint64_t id);

/* Start loading id's first slot into the cache. A table is megabytes and an
 * id's slot anywhere in it, so each add or lookup waited for memory; called
 * IDTABLE_AHEAD ids ahead, the loads overlap. */
#define IDTABLE_AHEAD 8
void idtable_prefetch(const void *buf, size_t len, uint64_t id);

#endif
