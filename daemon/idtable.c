/* idtable.c -- a set of 64-bit ids in a flat buffer (see idtable.h). */
#include <string.h>

#include "idtable.h"
#include "mix64.h"

static const char MAGIC[8] = {'n', 'o', 'u', 's', 'u', 'i', 'd', '1'};

/* The buffer is a Redis string's bytes: no alignment to count on. */
static uint64_t load(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void store(unsigned char *p, uint64_t v) { memcpy(p, &v, sizeof v); }

size_t idtable_bytes(uint64_t slots) { return IDTABLE_HEADER + (size_t)slots * 8; }

bool idtable_slots_ok(uint64_t slots) {
    return slots >= IDTABLE_MIN_SLOTS && slots <= IDTABLE_MAX_SLOTS;
}

uint64_t idtable_room(uint64_t slots) { return slots * 3 / 4; }

uint64_t idtable_limit(uint64_t slots) { return slots * 7 / 8; }

void idtable_init(void *buf) {
    memcpy(buf, MAGIC, sizeof MAGIC);
    store((unsigned char *)buf + 8, 0);
}

uint64_t idtable_slots(size_t len) {
    return len < IDTABLE_HEADER ? 0 : (uint64_t)(len - IDTABLE_HEADER) / 8;
}

uint64_t idtable_count(const void *buf) { return load((const unsigned char *)buf + 8); }

bool idtable_valid(const void *buf, size_t len) {
    uint64_t slots = idtable_slots(len);
    return len >= IDTABLE_HEADER && memcmp(buf, MAGIC, sizeof MAGIC) == 0 &&
           idtable_slots_ok(slots) && idtable_bytes(slots) == len &&
           idtable_count(buf) <= idtable_limit(slots);
}

/* The slot holding id, or the empty one where it would go; NULL when every
 * slot holds another id, which only a table written by someone else can
 * (the count says nothing about the slots): the probe stops there. */
/* id's first slot of n: the mix scaled to n (any n, not only powers of 2). */
static uint64_t first_slot(uint64_t id, uint64_t n) {
    return (uint64_t)(((unsigned __int128)mix64(id) * n) >> 64);
}

static unsigned char *find(const unsigned char *buf, size_t len, uint64_t id) {
    uint64_t n = idtable_slots(len);
    uint64_t i = first_slot(id, n);
    const unsigned char *slots = buf + IDTABLE_HEADER;
    for (uint64_t probes = 0; probes < n; probes++) {
        uint64_t v = load(slots + i * 8);
        if (v == id || v == 0)
            return (unsigned char *)slots + i * 8;
        if (++i == n)
            i = 0;
    }
    return NULL;
}

int idtable_add(void *buf, size_t len, uint64_t id) {
    id = id ? id : IDTABLE_ZERO;
    unsigned char *slot = find(buf, len, id);
    if (!slot)
        return -1;
    if (load(slot) == id)
        return 0;
    store(slot, id);
    store((unsigned char *)buf + 8, idtable_count(buf) + 1);
    return 1;
}

bool idtable_has(const void *buf, size_t len, uint64_t id) {
    id = id ? id : IDTABLE_ZERO;
    const unsigned char *slot = find(buf, len, id);
    return slot && load(slot) == id;
}

void idtable_prefetch(const void *buf, size_t len, uint64_t id) {
    uint64_t n = idtable_slots(len);
    if (n)
        __builtin_prefetch((const unsigned char *)buf + IDTABLE_HEADER +
                           first_slot(id ? id : IDTABLE_ZERO, n) * 8);
}
