/* fuzz_idtable.c -- libFuzzer target for idtable.c, which the Redis module
 * runs on the bytes of any string key it is pointed at: idtable_valid must
 * refuse or accept any bytes without reading past them, and on a table it
 * accepts, adding and finding ids must stay within the buffer and keep
 * what was added findable (the ids come from the input's tail). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idtable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a table of the input's own bytes, in its own allocation so that ASan
     * sees any read past them */
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (idtable_valid(buf, size)) {
        uint64_t slots = idtable_slots(size);
        /* probe every slot: a table from outside may be full of junk */
        for (size_t off = IDTABLE_HEADER; off + 8 <= size; off += 8) {
            uint64_t id;
            memcpy(&id, data + off, 8);
            if (id)
                (void)idtable_has(buf, size, id);
        }
        /* the limit is the caller's (the module's) to keep: stay within it */
        uint64_t left = idtable_limit(slots) - idtable_count(buf);
        for (size_t off = 0; off + 8 <= size && left; off += 8, left--) {
            uint64_t id;
            memcpy(&id, data + off, 8);
            /* in, or refused for want of an empty slot */
            if (idtable_add(buf, size, id) >= 0 && !idtable_has(buf, size, id))
                abort();
        }
    }
    free(buf);
    return 0;
}
