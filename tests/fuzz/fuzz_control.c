/* fuzz_control.c -- libFuzzer target for control requests (SPEC §7):
 * control_parse() must answer every input with a request or a reason, never
 * crash, leak or allocate more than the input justifies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    control_request r;
    memset(&r, 0xa5, sizeof r);
    const char *err = control_parse(data, size, &r);
    if (err) {
        if (!err[0])
            abort();
        return 0;
    }
    /* An accepted request is one the loop can run as is. */
    if (r.op > CONTROL_STATS || r.n < 1 || r.n > CONTROL_TOP_MAX)
        abort();
    if (r.op == CONTROL_CREATOR && (strlen(r.creator) == 0 || strlen(r.creator) > 128))
        abort();
    if (r.has_niche && strlen(r.niche) > 64)
        abort();
    return 0;
}
