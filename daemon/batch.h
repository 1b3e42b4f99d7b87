/* batch.h -- what one loop iteration took in: frames (units) and their
 * decoded items. Filled by ingest.c, committed by store.c in one Redis round
 * trip, answered (acks) by ingest.c. Plain data, no I/O. */
#ifndef NOUSU_BATCH_H
#define NOUSU_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"

typedef enum batch_source { SOURCE_INGEST, SOURCE_ACK } batch_source;

#define BATCH_RID_MAX 32

typedef struct batch_unit {
    batch_source source;
    uint8_t rid[BATCH_RID_MAX]; /* request_id of an acknowledged request */
    uint8_t rid_len;            /* 0 for fire-and-forget frames */
    bool whole;                 /* rejected whole: one item, i = -1 */
    size_t first_item;          /* items[first_item .. first_item + n_items) */
    size_t n_items;
} batch_unit;

/* The messages behind each unit (ingest.c). They belong to the batch, not
 * to the sockets, so one batch can be read while another is committed. */
typedef struct batch_held batch_held;

typedef struct batch {
    decode_item *items;
    size_t n_items, cap_items;
    batch_unit *units;
    size_t n_units, cap_units;
    batch_held **held; /* one per unit slot; see ingest.c */
    size_t held_cap;
    int64_t received_ms; /* wall clock when the batch started filling */
} batch;

/* Events a unit stands for in its ack: a frame rejected whole counts 1. */
static inline uint32_t batch_unit_total(const batch_unit *u) {
    return u->whole ? 1u : (uint32_t)u->n_items;
}

#endif
