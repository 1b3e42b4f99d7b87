/* module.c -- the nousu Redis module (nousu.so): what a Lua Function does
 * at the floor of its cost per call, done in C for nousu.lua, which uses it
 * when a probe answers and does the same work itself when not.
 *
 *   NOUSU.IDADD, IDHAS, IDADDN event-id tables (ids.c)
 *   NOUSU.HINTS                a commit's hinted runs (hints.c)
 *   NOUSU.STASH, NOUSU.HINTSOF a commit's hints kept out of Lua (stash.c)
 *
 * Load it with `loadmodule /path/nousu.so [stash_max_age_ms N] [stash_max_mb N]`
 * (docs/operations.md, section 3). */
#include "hints.h"
#include "ids.h"
#include "stash.h"

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (RedisModule_Init(ctx, "nousu", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR ||
        ids_register(ctx) == REDISMODULE_ERR || hints_register(ctx) == REDISMODULE_ERR ||
        stash_register(ctx, argv, argc) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
