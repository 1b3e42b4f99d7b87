/* main.c -- argv -> config -> wire the stages -> run the loop -> exit status. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "loop.h"

int main(int argc, char **argv) {
    config cfg;
    config_action act = CONFIG_RUN;
    char *path = NULL, err[512] = "";
    setvbuf(stderr, NULL, _IOLBF, 0);
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
