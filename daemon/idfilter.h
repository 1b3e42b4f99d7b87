/* idfilter.h -- the event ids this daemon sent to Redis within the dedup
 * horizon, as Bloom filters by 60 s slice of wall clock (the slices of
 * nousu.lua's Dedup): an id is "maybe sent" or surely not.
 *
 * With it, a commit tells the Function which of its ids may have been seen
 * (the others were surely not sent by this daemon), and the Function looks
 * up only those -- but only while this daemon is Redis's only writer of ids
 * (the chain, in nousu.lua). So the filter must never miss an id it was
 * given: a Bloom filter has no false negatives at any load; only its false
 * positives grow, and those cost a lookup, not a wrong count.
 *
 * A slice gets filters sized from the slice before it (at least 64 Ki ids),
 * and another one 4 times larger whenever the last is full. Bounded by
 * bytes: an id that would need a filter past the budget is not kept, and the
 * slice is marked lost, so the filter no longer covers the walls that slice
 * is live for (idfilter_covers) until it leaves the horizon. About 1.5 bytes
 * an id, a false positive rate of ~0.5%. Pure: no I/O, no locking (one
 * thread owns it). */
#ifndef NOUSU_IDFILTER_H
#define NOUSU_IDFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct idfilter idfilter;

/* A filter holding nothing, from wall clock now_ms on. NULL on ENOMEM. */
idfilter *idfilter_new(size_t max_bytes, int64_t now_ms);
void idfilter_destroy(idfilter **fp);

/* The wall clock since which every id added is held (the claim sent to the
 * Function). */
int64_t idfilter_since(const idfilter *f);

/* True when every id added into the slices live at wall_ms (those the
 * Function asks for a commit at wall_ms) is held. */
bool idfilter_covers(const idfilter *f, int64_t wall_ms, int64_t horizon_ms);

/* False when h was surely not added into a slice live at wall_ms. */
bool idfilter_maybe(const idfilter *f, uint64_t h, int64_t wall_ms, int64_t horizon_ms);

/* Hold h as sent by a commit at wall_ms (into the slice Redis remembers it
 * in). */
void idfilter_add(idfilter *f, uint64_t h, int64_t wall_ms);

/* Start loading h's block of each filter idfilter_maybe would read (with
 * horizon_ms 0: the current slice's, which idfilter_add writes). A filter
 * is megabytes and each id's block anywhere in it; called IDFILTER_AHEAD
 * ids ahead, the loads overlap. */
#define IDFILTER_AHEAD 8
void idfilter_prefetch(const idfilter *f, uint64_t h, int64_t wall_ms, int64_t horizon_ms);

/* Make ahead, and fault in a little at a time, the filters the newest slice
 * will need next (call once a commit, after its ids): its next one once the
 * last is half full, and over the last 1/6 of the slice the next slice's
 * first. A filter faulted in by its first adds made them stall the
 * committer (66 ms for 60 MB on a VM). Best effort: nothing past the
 * budget. */
void idfilter_prepare(idfilter *f, int64_t wall_ms);

/* Drop the slices no commit at wall_ms or later asks for (a commit at an
 * earlier wall, the clock stepped back, is then not covered). */
void idfilter_expire(idfilter *f, int64_t wall_ms, int64_t horizon_ms);

/* Bytes of filters held. */
size_t idfilter_bytes(const idfilter *f);

#endif
