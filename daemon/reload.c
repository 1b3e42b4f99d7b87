/* reload.c -- reading the configuration again for SIGHUP (see reload.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reload.h"

/* The keys whose values differ between two configurations, for the log:
 * config_dump prints the same keys in the same order for both. */
static void changed_keys(const config *a, const config *b, char *out, size_t cap) {
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = open_memstream(&da, &la), *fb = open_memstream(&db, &lb);
    out[0] = '\0';
    if (fa && fb) {
        config_dump(fa, a);
        config_dump(fb, b);
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    char *sa = NULL, *sb = NULL;
    for (char *x = da ? strtok_r(da, "\n", &sa) : NULL, *y = db ? strtok_r(db, "\n", &sb) : NULL;
         x && y; x = strtok_r(NULL, "\n", &sa), y = strtok_r(NULL, "\n", &sb)) {
        if (strcmp(x, y) == 0 || x[0] == '#')
            continue;
        size_t klen = strcspn(y, " =");
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%.*s", used ? ", " : "", (int)klen, y);
    }
    free(da);
    free(db);
}

int reload_read(const config *cur, int argc, char **argv, config *next, char *err,
                size_t err_cap, char *changed, size_t changed_cap) {
    config_action act;
    char *path = NULL;
    changed[0] = '\0';
    int rc = config_init(next);
    if (rc < 0)
        snprintf(err, err_cap, "out of memory");
    if (rc == 0)
        rc = config_parse_args(next, argc, argv, &act, &path, err, err_cap);
    if (rc == 0 && !config_reloadable(cur, next, err, err_cap))
        rc = -EINVAL;
    if (rc < 0) {
        config_free(next);
        return rc;
    }
    changed_keys(cur, next, changed, changed_cap);
    return 0;
}
