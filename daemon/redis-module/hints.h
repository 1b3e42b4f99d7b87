/* hints.h -- NOUSU.HINTS (hints.c): a commit's hinted runs taken in C. */
#ifndef NOUSU_MODULE_HINTS_H
#define NOUSU_MODULE_HINTS_H

#include "redismodule.h"

/* Create the command: REDISMODULE_OK or REDISMODULE_ERR. */
int hints_register(RedisModuleCtx *ctx);

#endif
