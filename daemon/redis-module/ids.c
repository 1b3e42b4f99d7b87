/* ids.c -- the nousu module's event-id tables (daemon/idtable.h) as plain
 * Redis strings, tested and added to in one call per table.
 *
 *   NOUSU.IDADD key slots id [id ...]   -> the number of ids not there before
 *   NOUSU.IDHAS key id [id ...]         -> an array of 0/1, one per id
 *   NOUSU.IDADDN base parts slots ttl-ms id [id ...]
 *                                       -> the number of ids not there before
 *
 * IDADDN is a commit's IDADDs and PEXPIREs for one generation of tables in
 * one call (a call from Lua costs ~2 us, and a commit at half load touched
 * ~64 parts): ids sorted by place, their top 16 bits (daemon/wire.c,
 * id_place), each into the part base<place / (65536 / parts)>, every part
 * touched given ttl-ms. It checks
 * every part before its first write, so that a part that would overflow
 * fails it whole, and replicates as IDADD and PEXPIREAT per part (an AOF
 * made with it loads with a module of before it).
 *
 * Ids are signed 64-bit decimals (nousu.lua sends its hashes so). IDADD makes
 * key a table of `slots` slots when it does not exist; an
 * existing one keeps its size, and an IDADD that would take it past 7/8 full
 * fails whole, before any change (nousu.lua sizes tables so that it does
 * not happen). IDHAS on a missing key answers 0s. A key that is not a table
 * is refused (WRONGTYPE), never overwritten.
 *
 * The values are strings: RDB, AOF (IDADD is replicated as called),
 * replicas, EXPIRE and DEL work as for any string; a Redis without the
 * module can still save, load, expire and delete them. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "idtable.h"
#include "ids.h"

/* Parse argv[from..argc) as ids into a module allocation (freed with the
 * command's context); NULL after replying with an error. */
static uint64_t *parse_ids(RedisModuleCtx *ctx, RedisModuleString **argv, int from, int argc) {
    uint64_t *ids = RedisModule_PoolAlloc(ctx, sizeof *ids * (size_t)(argc - from + 1));
    for (int i = from; i < argc; i++) {
        long long v;
        if (RedisModule_StringToLongLong(argv[i], &v) != REDISMODULE_OK) {
            RedisModule_ReplyWithError(ctx, "ERR nousu: an id is not a signed 64-bit integer");
            return NULL;
        }
        ids[i - from] = (uint64_t)v;
    }
    return ids;
}

/* The table at an open key (a string with the table's magic), or NULL after
 * replying WRONGTYPE. */
static unsigned char *table_of(RedisModuleCtx *ctx, RedisModuleKey *key, int mode, size_t *len) {
    if (RedisModule_KeyType(key) == REDISMODULE_KEYTYPE_STRING) {
        unsigned char *buf = (unsigned char *)RedisModule_StringDMA(key, len, mode);
        if (buf && idtable_valid(buf, *len))
            return buf;
    }
    RedisModule_ReplyWithError(ctx, "WRONGTYPE nousu: not an id table");
    return NULL;
}

/* A table with no empty slot left (not one of ours: a count within its room
 * leaves a quarter empty): the first `done` ids went in, and only those are
 * replicated, so that a replica or the AOF holds what this Redis holds. */
static int corrupt(RedisModuleCtx *ctx, RedisModuleString **argv, size_t done, long long added) {
    if (done)
        RedisModule_Replicate(ctx, "NOUSU.IDADD", "sv", argv[1], argv + 2, done + 1);
    RedisModule_Log(ctx, "warning", "nousu: the id table at %s has no empty slot (%lld added)",
                    RedisModule_StringPtrLen(argv[1], NULL), added);
    return RedisModule_ReplyWithError(ctx, "ERR nousu: the id table is corrupt: no empty slot");
}

/* A table's slots from an argument: 0, or -1 after replying. */
static int parse_slots(RedisModuleCtx *ctx, RedisModuleString *arg, long long *slots) {
    if (RedisModule_StringToLongLong(arg, slots) != REDISMODULE_OK || *slots < 0 ||
        !idtable_slots_ok((uint64_t)*slots))
        return RedisModule_ReplyWithError(ctx, "ERR nousu: slots must be from 64 to 2^30"), -1;
    return 0;
}

/* Whether n more ids fit the table at key, or one of `slots` made for them
 * when there is none: 0, or -1 after replying (not a table, full). Writes
 * nothing: an IDADDN checks every part before its first write. */
static int room_for(RedisModuleCtx *ctx, RedisModuleKey *key, long long slots, size_t n) {
    uint64_t have = 0, limit = idtable_limit((uint64_t)slots);
    if (RedisModule_KeyType(key) != REDISMODULE_KEYTYPE_EMPTY) {
        size_t len;
        unsigned char *buf = table_of(ctx, key, REDISMODULE_READ, &len);
        if (!buf)
            return -1;
        have = idtable_count(buf), limit = idtable_limit(idtable_slots(len));
    }
    if (have + n > limit)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the id table is full"), -1;
    return 0;
}

/* Make the pages of the next allocation of `bytes` resident, in one call.
 * Redis zeroes a new string page by page, and on the VMs this runs on a page
 * fault costs ~13 us (each one traps to the host): a 2 MiB part took 512
 * faults, ~7 ms of a commit, and making tables was 40-65% of Redis's CPU in
 * the first seconds of a slice (docs/performance.md, session 24). So an
 * allocation of the same size is populated with one madvise and freed just
 * before the string is made: jemalloc then serves the string from its dirty
 * extents, this one or another already resident. Best effort: where the
 * kernel has no MADV_POPULATE_WRITE (before Linux 5.14) the string faults
 * its pages in as before. */
#define WARM_MIN_BYTES 65536 /* smaller strings: an sds header of another type, slabs */

static void warm_next_alloc(size_t bytes) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    char *p = RedisModule_Alloc(bytes);
    if (!p)
        return;
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t to = ((uintptr_t)p + bytes) & ~(page - 1);
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
    RedisModule_Free(p);
}

/* The table at key for writing, made of `slots` when there is none (after
 * room_for); NULL after replying. */
static unsigned char *table_made(RedisModuleCtx *ctx, RedisModuleKey *key, long long slots,
                                 size_t *len) {
    if (RedisModule_KeyType(key) == REDISMODULE_KEYTYPE_EMPTY) {
        size_t bytes = idtable_bytes((uint64_t)slots);
        if (bytes >= WARM_MIN_BYTES) /* sdsnewlen's: a 9-byte header and the NUL */
            warm_next_alloc(bytes + 10);
        if (RedisModule_StringTruncate(key, idtable_bytes((uint64_t)slots)) != REDISMODULE_OK) {
            RedisModule_ReplyWithError(ctx, "ERR nousu: cannot make the table");
            return NULL;
        }
        idtable_init(RedisModule_StringDMA(key, len, REDISMODULE_WRITE));
    }
    return table_of(ctx, key, REDISMODULE_WRITE, len);
}

static int idadd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModule_AutoMemory(ctx); /* the key is closed with the command */
    if (argc < 3)
        return RedisModule_WrongArity(ctx);
    long long slots;
    if (parse_slots(ctx, argv[2], &slots) < 0)
        return REDISMODULE_OK;
    uint64_t *ids = parse_ids(ctx, argv, 3, argc);
    if (!ids)
        return REDISMODULE_OK;
    size_t n = (size_t)(argc - 3), len;
    RedisModuleKey *key = RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ | REDISMODULE_WRITE);
    unsigned char *buf;
    if (room_for(ctx, key, slots, n) < 0 || !(buf = table_made(ctx, key, slots, &len)))
        return REDISMODULE_OK;
    long long added = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + IDTABLE_AHEAD < n)
            idtable_prefetch(buf, len, ids[i + IDTABLE_AHEAD]);
        int rc = idtable_add(buf, len, ids[i]);
        if (rc < 0) /* the ids before it are in: replicate what was done */
            return corrupt(ctx, argv, i, added);
        added += rc;
    }
    RedisModule_ReplicateVerbatim(ctx);
    return RedisModule_ReplyWithLongLong(ctx, added);
}

static int idhas(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModule_AutoMemory(ctx);
    if (argc < 2)
        return RedisModule_WrongArity(ctx);
    uint64_t *ids = parse_ids(ctx, argv, 2, argc);
    if (!ids)
        return REDISMODULE_OK;
    size_t n = (size_t)(argc - 2), len = 0;
    RedisModuleKey *key = RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ);
    const unsigned char *buf = NULL;
    if (RedisModule_KeyType(key) != REDISMODULE_KEYTYPE_EMPTY &&
        !(buf = table_of(ctx, key, REDISMODULE_READ, &len)))
        return REDISMODULE_OK;
    RedisModule_ReplyWithArray(ctx, (long)n);
    for (size_t i = 0; i < n; i++) {
        if (buf && i + IDTABLE_AHEAD < n)
            idtable_prefetch(buf, len, ids[i + IDTABLE_AHEAD]);
        RedisModule_ReplyWithLongLong(ctx, buf && idtable_has(buf, len, ids[i]));
    }
    return REDISMODULE_OK;
}

#define PLACES 65536

/* The arguments of IDADDN before its ids; 0, or -1 after replying. */
typedef struct idaddn_args {
    long long parts, slots, ttl_ms;
    size_t n;
} idaddn_args;

#define ID_PLACE(id) ((id) >> 48)

static int idaddn_parse(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, idaddn_args *a) {
    if (RedisModule_StringToLongLong(argv[2], &a->parts) != REDISMODULE_OK || a->parts < 1 ||
        a->parts > PLACES || (a->parts & (a->parts - 1)) != 0)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: parts must be a power of 2 up to 65536"), -1;
    if (parse_slots(ctx, argv[3], &a->slots) < 0)
        return -1;
    if (RedisModule_StringToLongLong(argv[4], &a->ttl_ms) != REDISMODULE_OK || a->ttl_ms < 1)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the TTL must be a positive number of ms"), -1;
    a->n = (size_t)(argc - 5);
    return 0;
}

/* Whether ids ascend by place. */
static bool by_place(const uint64_t *ids, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (ID_PLACE(ids[i]) < ID_PLACE(ids[i - 1]))
            return false;
    return true;
}

/* One part's stretch of the ids: [from, to), its key open for writing. */
typedef struct stretch {
    size_t from, to;
    RedisModuleKey *key;
    RedisModuleString *name;
} stretch;

/* Open each part the ids go to and check that they fit: the number of
 * stretches, or -1 after replying (nothing written). */
static long open_parts(RedisModuleCtx *ctx, RedisModuleString *base, const idaddn_args *a,
                       const uint64_t *ids, stretch *st) {
    size_t blen, width = PLACES / (size_t)a->parts, i = 0;
    const char *b = RedisModule_StringPtrLen(base, &blen);
    long k = 0;
    while (i < a->n) {
        unsigned long long part = ID_PLACE(ids[i]) / width;
        size_t j = i + 1;
        while (j < a->n && ID_PLACE(ids[j]) / width == part)
            j++;
        st[k] = (stretch){.from = i, .to = j};
        st[k].name = RedisModule_CreateStringPrintf(ctx, "%.*s%llu", (int)blen, b, part);
        st[k].key = RedisModule_OpenKey(ctx, st[k].name, REDISMODULE_READ | REDISMODULE_WRITE);
        if (room_for(ctx, st[k].key, a->slots, j - i) < 0)
            return -1;
        i = j, k++;
    }
    return k;
}

/* Add a stretch's ids to its part (made when missing), give it the TTL and
 * replicate both; the ids added, or -1 after replying (corrupt: what was
 * done is replicated). */
static long long add_stretch(RedisModuleCtx *ctx, RedisModuleString **argv, const idaddn_args *a,
                             const uint64_t *ids, const stretch *s) {
    size_t len;
    unsigned char *buf = table_made(ctx, s->key, a->slots, &len);
    if (!buf)
        return -1;
    long long added = 0;
    size_t i = s->from;
    int rc = 0;
    for (; i < s->to; i++) {
        if (i + IDTABLE_AHEAD < s->to)
            idtable_prefetch(buf, len, ids[i + IDTABLE_AHEAD]);
        if ((rc = idtable_add(buf, len, ids[i])) < 0)
            break;
        added += rc;
    }
    if (i > s->from)
        RedisModule_Replicate(ctx, "NOUSU.IDADD", "ssv", s->name, argv[3], argv + 5 + s->from,
                              i - s->from);
    RedisModule_SetExpire(s->key, a->ttl_ms);
    RedisModule_Replicate(ctx, "PEXPIREAT", "sl", s->name, RedisModule_GetAbsExpire(s->key));
    if (rc < 0) {
        RedisModule_Log(ctx, "warning", "nousu: the id table at %s has no empty slot",
                        RedisModule_StringPtrLen(s->name, NULL));
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the id table is corrupt: no empty slot"), -1;
    }
    return added;
}

static int idaddn(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModule_AutoMemory(ctx); /* the keys and names go with the command */
    if (argc < 5)
        return RedisModule_WrongArity(ctx);
    idaddn_args a;
    if (idaddn_parse(ctx, argv, argc, &a) < 0)
        return REDISMODULE_OK;
    uint64_t *ids = parse_ids(ctx, argv, 5, argc);
    if (!ids)
        return REDISMODULE_OK;
    if (!by_place(ids, a.n))
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the ids must ascend by place (top 16 bits)");
    stretch *st = RedisModule_PoolAlloc(ctx, sizeof *st * (a.n + 1));
    long k = open_parts(ctx, argv[1], &a, ids, st);
    if (k < 0)
        return REDISMODULE_OK;
    long long added = 0;
    for (long i = 0; i < k; i++) {
        long long n = add_stretch(ctx, argv, &a, ids, &st[i]);
        if (n < 0)
            return REDISMODULE_OK;
        added += n;
    }
    return RedisModule_ReplyWithLongLong(ctx, added);
}

int ids_register(RedisModuleCtx *ctx) {
    if (RedisModule_CreateCommand(ctx, "nousu.idadd", idadd, "write deny-oom", 1, 1, 1) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "nousu.idaddn", idaddn, "write deny-oom", 0, 0, 0) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "nousu.idhas", idhas, "readonly", 1, 1, 1) ==
            REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
