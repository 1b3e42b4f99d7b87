/* stash.h -- NOUSU.STASH and its kin (stash.c): a commit's hints and
 * fallback events kept in the module until its Function takes them. */
#ifndef NOUSU_MODULE_STASH_H
#define NOUSU_MODULE_STASH_H

#include "redismodule.h"

/* Create the commands and the INFO section, with the module's arguments
 * (stash.c): REDISMODULE_OK or REDISMODULE_ERR. */
int stash_register(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

#endif
