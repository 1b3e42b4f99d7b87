/* loop.h -- the reactor: a zmq_poll loop over the ingest, control and signal
 * sockets. Each iteration reads at most iteration_max_events, commits them in
 * one Redis round trip, runs detection on every creator touched, publishes
 * alerts, then acks (Redis beforeSleep-style). Single-threaded. */
#ifndef NOUSU_LOOP_H
#define NOUSU_LOOP_H

#include "config.h"

typedef struct loop loop;

/* Binds every socket and connects to Redis. argc/argv are kept for SIGHUP
 * (the file and the command line are read again). NULL on failure. */
loop *loop_new(const config *cfg, int argc, char **argv);
void loop_destroy(loop **l);

/* Run until SIGTERM/SIGINT. Returns the process exit status: 0 when every
 * event taken in was committed. */
int loop_run(loop *l);

#endif
