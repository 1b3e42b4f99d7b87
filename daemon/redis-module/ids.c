/* ids.c -- the nousu module's event-id tables (daemon/idtable.h) as plain
 * Redis strings, tested and added to in one call per table.
 *
 *   NOUSU.IDADD key slots id [id ...]   -> the number of ids not there before
 *   NOUSU.IDHAS key id [id ...]         -> an array of 0/1, one per id
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
#include <stdint.h>
#include <string.h>

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

static int idadd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModule_AutoMemory(ctx); /* the key is closed with the command */
    if (argc < 3)
        return RedisModule_WrongArity(ctx);
    long long slots;
    if (RedisModule_StringToLongLong(argv[2], &slots) != REDISMODULE_OK || slots < 0 ||
        !idtable_slots_ok((uint64_t)slots))
        return RedisModule_ReplyWithError(ctx, "ERR nousu: slots must be from 64 to 2^30");
    uint64_t *ids = parse_ids(ctx, argv, 3, argc);
    if (!ids)
        return REDISMODULE_OK;
    size_t n = (size_t)(argc - 3), len;
    RedisModuleKey *key = RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ | REDISMODULE_WRITE);
    if (RedisModule_KeyType(key) == REDISMODULE_KEYTYPE_EMPTY) {
        if (n > idtable_limit((uint64_t)slots))
            return RedisModule_ReplyWithError(ctx, "ERR nousu: the id table is full");
        if (RedisModule_StringTruncate(key, idtable_bytes((uint64_t)slots)) != REDISMODULE_OK)
            return RedisModule_ReplyWithError(ctx, "ERR nousu: cannot make the table");
        idtable_init(RedisModule_StringDMA(key, &len, REDISMODULE_WRITE));
    }
    unsigned char *buf = table_of(ctx, key, REDISMODULE_WRITE, &len);
    if (!buf)
        return REDISMODULE_OK;
    if (idtable_count(buf) + n > idtable_limit(idtable_slots(len)))
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the id table is full");
    long long added = 0;
    for (size_t i = 0; i < n; i++) {
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
    for (size_t i = 0; i < n; i++)
        RedisModule_ReplyWithLongLong(ctx, buf && idtable_has(buf, len, ids[i]));
    return REDISMODULE_OK;
}

int ids_register(RedisModuleCtx *ctx) {
    if (RedisModule_CreateCommand(ctx, "nousu.idadd", idadd, "write deny-oom", 1, 1, 1) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "nousu.idhas", idhas, "readonly", 1, 1, 1) ==
            REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
