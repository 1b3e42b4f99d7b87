/* main.c -- argv -> config -> wire the stages -> run the loop -> exit status. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "loop.h"

/* glibc gives freed memory back to the kernel (heap tops past 128 KiB, and
 * blocks it mapped on their own, the threshold for those moving with what
 * is freed), and the daemon's working set swings with every commit: each
 * swing faulted its pages in again, and a fault costs ~13 us on the VMs
 * this runs on (with the commit's own copies, 23-100k faults over 3M
 * events, ~10.5k after; docs/performance.md, session 24). Blocks under 32 MiB come from the heap, and up to 64 MiB freed at
 * its top is kept: the peak RSS is unchanged, it just stays. */
static void keep_freed_memory(void) {
    (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int main(int argc, char **argv) {
    config cfg;
    config_action act = CONFIG_RUN;
    char *path = NULL, err[512] = "";
    setvbuf(stderr, NULL, _IOLBF, 0);
    keep_freed_memory();
    if (config_init(&cfg) < 0) {
        fprintf(stderr, "nousud: out of memory\n");
        return 1;
    }
    if (config_parse_args(&cfg, argc, argv, &act, &path, err, sizeof err) < 0) {
        fprintf(stderr, "nousud: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    int status = 0;
    if (act == CONFIG_HELP) {
        config_print_help(stdout, argv[0]);
    } else if (act == CONFIG_VERSION) {
        printf("nousud %s\n", NOUSU_VERSION);
    } else if (act == CONFIG_CHECK) {
        printf("%s: configuration ok\n", path ? path : "(defaults)");
    } else {
        log_set_level(log_level_parse(cfg.log_level));
        loop *l = loop_new(&cfg, argc, argv);
        status = l ? loop_run(l) : 1;
        loop_destroy(&l);
    }
    config_free(&cfg);
    return status;
}
