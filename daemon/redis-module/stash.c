/* stash.c -- a commit's bulky arguments kept in the module for the Function
 * that follows, so that they never become Lua strings.
 *
 *   NOUSU.STASH id hints events            -> OK
 *   NOUSU.STASHLEN id                      -> [hints bytes, events bytes] or nil
 *   NOUSU.STASHGET id hints|events [from to] -> the bytes (from..to, 1-based,
 *                                             inclusive, as Lua's string.sub)
 *                                             or nil when there is no such stash
 *   NOUSU.STASHDEL id                      -> 1, or 0 when there was none
 *   NOUSU.HINTSOF id prefix ttl leave      -> NOUSU.HINTS on the stash's hints
 *
 * Why: Redis's Lua hashes every byte of every string it makes, and every
 * argument of an FCALL is made one. A commit's hints (ARGV[7] of
 * nousu_commit_runs) and the events of its hinted runs (ARGV[6], read only
 * for a hint refused) are most of its bytes: the daemon stashes them under
 * its commit id just before the FCALL, which names the stash in ARGV[10]
 * (docs/performance.md, "The stash").
 *
 * The stash is not the keyspace: nothing here is replicated, saved or
 * loaded, and a restart or a failover between the two commands loses it.
 * The Function then declines the commit before writing anything (it answers
 * 0, as for a request committed before) and the daemon sends it again
 * without hints. Entries are dropped by the Function that took them, by an
 * id stashed again, and at the next STASH once stash_max_age_ms old (a
 * daemon gone between its STASH and its FCALL); a STASH that would take the
 * stash past stash_max_mb is refused, and the commit goes without (0 refuses
 * every STASH: each commit with hints then goes twice). Both are module
 * arguments: loadmodule nousu.so stash_max_age_ms 60000 stash_max_mb 256 */
#include <stdbool.h>
#include <string.h>

#include "hints.h"
#include "stash.h"

static long long max_age_ms = 60000, max_bytes = 256LL << 20;

typedef struct entry {
    RedisModuleString *hints, *events; /* the arguments themselves, retained */
    long long at_ms;
    size_t bytes;
} entry;

static RedisModuleDict *stash;
static long long stash_bytes, n_stashed, n_expired, n_refused;

static void entry_free(entry *e) {
    RedisModule_FreeString(NULL, e->hints);
    RedisModule_FreeString(NULL, e->events);
    RedisModule_Free(e);
}

static void drop(RedisModuleString *id) {
    entry *e = NULL;
    if (RedisModule_DictDel(stash, id, &e) == REDISMODULE_OK) {
        stash_bytes -= (long long)e->bytes;
        entry_free(e);
    }
}

/* Drop the entries older than max_age_ms (a few: one per commit in
 * flight per daemon, and what daemons that stopped left). */
static void expire_old(long long now_ms) {
    RedisModuleDictIter *it = RedisModule_DictIteratorStartC(stash, "^", NULL, 0);
    size_t klen;
    void *key;
    entry *e;
    while ((key = RedisModule_DictNextC(it, &klen, (void **)&e)))
        if (now_ms - e->at_ms > max_age_ms) {
            /* the key is the iterator's: copied to seek past it once deleted */
            RedisModuleString *k = RedisModule_CreateString(NULL, key, klen);
            drop(k);
            RedisModule_DictIteratorReseek(it, ">", k);
            RedisModule_FreeString(NULL, k);
            n_expired++;
        }
    RedisModule_DictIteratorStop(it);
}

static int stash_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 4)
        return RedisModule_WrongArity(ctx);
    long long now = RedisModule_Milliseconds();
    expire_old(now);
    drop(argv[1]); /* a commit sent again */
    size_t hl, el;
    RedisModule_StringPtrLen(argv[2], &hl);
    RedisModule_StringPtrLen(argv[3], &el);
    if (stash_bytes + (long long)(hl + el) > max_bytes) {
        n_refused++;
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the stash is full");
    }
    entry *e = RedisModule_Alloc(sizeof *e);
    *e = (entry){.hints = argv[2], .events = argv[3], .at_ms = now, .bytes = hl + el};
    RedisModule_RetainString(NULL, e->hints);
    RedisModule_RetainString(NULL, e->events);
    RedisModule_DictSet(stash, argv[1], e);
    stash_bytes += (long long)e->bytes, n_stashed++;
    return RedisModule_ReplyWithSimpleString(ctx, "OK");
}

static entry *find(RedisModuleString *id) { return RedisModule_DictGet(stash, id, NULL); }

static int stashlen_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 2)
        return RedisModule_WrongArity(ctx);
    entry *e = find(argv[1]);
    if (!e)
        return RedisModule_ReplyWithNull(ctx);
    size_t hl, el;
    RedisModule_StringPtrLen(e->hints, &hl);
    RedisModule_StringPtrLen(e->events, &el);
    RedisModule_ReplyWithArray(ctx, 2);
    RedisModule_ReplyWithLongLong(ctx, (long long)hl);
    return RedisModule_ReplyWithLongLong(ctx, (long long)el);
}

static int stashget_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 3 && argc != 5)
        return RedisModule_WrongArity(ctx);
    const char *part = RedisModule_StringPtrLen(argv[2], NULL);
    bool hints = strcmp(part, "hints") == 0;
    if (!hints && strcmp(part, "events") != 0)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: a stash holds hints and events");
    entry *e = find(argv[1]);
    if (!e)
        return RedisModule_ReplyWithNull(ctx);
    size_t len;
    const char *p = RedisModule_StringPtrLen(hints ? e->hints : e->events, &len);
    long long from = 1, to = (long long)len;
    if (argc == 5 && (RedisModule_StringToLongLong(argv[3], &from) != REDISMODULE_OK ||
                      RedisModule_StringToLongLong(argv[4], &to) != REDISMODULE_OK ||
                      from < 1 || to < from - 1 || to > (long long)len))
        return RedisModule_ReplyWithError(ctx, "ERR nousu: the range is not within the stash");
    return RedisModule_ReplyWithStringBuffer(ctx, p + from - 1, (size_t)(to - from + 1));
}

static int stashdel_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 2)
        return RedisModule_WrongArity(ctx);
    bool had = find(argv[1]) != NULL;
    drop(argv[1]);
    return RedisModule_ReplyWithLongLong(ctx, had);
}

static int hintsof_cmd(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 5)
        return RedisModule_WrongArity(ctx);
    entry *e = find(argv[1]);
    if (!e)
        return RedisModule_ReplyWithError(ctx, "ERR nousu: no such stash");
    size_t len;
    const char *hints = RedisModule_StringPtrLen(e->hints, &len);
    return hints_take(ctx, argv[2], argv[3], hints, len, argv[4]);
}

static void info(RedisModuleInfoCtx *ctx, int for_crash_report) {
    (void)for_crash_report;
    RedisModule_InfoAddSection(ctx, "stash");
    RedisModule_InfoAddFieldLongLong(ctx, "stash_entries", (long long)RedisModule_DictSize(stash));
    RedisModule_InfoAddFieldLongLong(ctx, "stash_bytes", stash_bytes);
    RedisModule_InfoAddFieldLongLong(ctx, "stash_stashed", n_stashed);
    RedisModule_InfoAddFieldLongLong(ctx, "stash_expired", n_expired);
    RedisModule_InfoAddFieldLongLong(ctx, "stash_refused", n_refused);
}

/* The module's arguments: name value pairs; REDISMODULE_ERR on one unknown
 * or out of range (the module then fails to load, and says why). */
static int configure(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *name = RedisModule_StringPtrLen(argv[i], NULL);
        long long v;
        if (RedisModule_StringToLongLong(argv[i + 1], &v) != REDISMODULE_OK || v < 0 ||
            v > (1LL << 30))
            goto bad;
        if (strcmp(name, "stash_max_age_ms") == 0 && v > 0)
            max_age_ms = v;
        else if (strcmp(name, "stash_max_mb") == 0)
            max_bytes = v << 20;
        else
            goto bad;
        continue;
    bad:
        RedisModule_Log(ctx, "warning", "nousu: %s %s: not a setting (stash_max_age_ms 1 "
                        "to 2^30, stash_max_mb 0 to 2^30)", name,
                        RedisModule_StringPtrLen(argv[i + 1], NULL));
        return REDISMODULE_ERR;
    }
    if (argc % 2) {
        RedisModule_Log(ctx, "warning", "nousu: module arguments go in name value pairs");
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}

int stash_register(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    static const struct {
        const char *name;
        RedisModuleCmdFunc fn;
        const char *flags;
    } cmds[] = {
        {"nousu.stash", stash_cmd, "write deny-oom"},
        {"nousu.stashlen", stashlen_cmd, "readonly"},
        {"nousu.stashget", stashget_cmd, "readonly"},
        {"nousu.stashdel", stashdel_cmd, "write"},
        {"nousu.hintsof", hintsof_cmd, "write deny-oom"},
    };
    if (configure(ctx, argv, argc) != REDISMODULE_OK || !(stash = RedisModule_CreateDict(NULL)) ||
        RedisModule_RegisterInfoFunc(ctx, info) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (RedisModule_CreateCommand(ctx, cmds[i].name, cmds[i].fn, cmds[i].flags, 0, 0, 0) ==
            REDISMODULE_ERR)
            return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
