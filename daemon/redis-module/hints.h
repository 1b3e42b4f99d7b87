/* hints.h -- NOUSU.HINTS (hints.c): a commit's hinted runs taken in C. */
#ifndef NOUSU_MODULE_HINTS_H
#define NOUSU_MODULE_HINTS_H

#include "redismodule.h"

/* NOUSU.HINTS on hints (ARGV[7] of nousu_commit_runs) wherever they are
 * kept: takes them and replies (hints.c's header says how). */
int hints_take(RedisModuleCtx *ctx, RedisModuleString *prefix, RedisModuleString *ttl,
               const char *hints, size_t hints_len, RedisModuleString *leave);

/* Create the command: REDISMODULE_OK or REDISMODULE_ERR. */
int hints_register(RedisModuleCtx *ctx);

#endif
