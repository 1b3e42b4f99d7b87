/* ids.h -- NOUSU.IDADD and NOUSU.IDHAS (ids.c): the event-id tables. */
#ifndef NOUSU_MODULE_IDS_H
#define NOUSU_MODULE_IDS_H

#include "redismodule.h"

/* Create the two commands: REDISMODULE_OK or REDISMODULE_ERR. */
int ids_register(RedisModuleCtx *ctx);

#endif
