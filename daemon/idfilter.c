/* idfilter.c -- blocked Bloom filters by dedup slice (see idfilter.h). */
#include <stdlib.h>
#include <string.h>

#include "idfilter.h"
#include "mix64.h"

enum {
    SLICE_MS = 60000, /* nousu.lua's DEDUP_SLICE_MS */
    BLOCK_BITS = 512, /* one cache line per lookup */
    BLOCK_WORDS = BLOCK_BITS / 64,
    BITS_PER_ID = 12,
    PROBES = 7, /* 9 bits each, from one 64-bit mix */
    MIN_IDS = 65536,
    GROWTH = 4,
};

typedef struct bloom {
    uint64_t *words;
    size_t n_blocks, cap, n; /* cap: ids it is sized for */
} bloom;

typedef struct slice_filter {
    int64_t slice;
    size_t n; /* ids added */
    bloom *gens;
    size_t n_gens;
} slice_filter;

struct idfilter {
    slice_filter *slices; /* ascending by slice */
    size_t n_slices, cap_slices;
    /* every slice below was dropped or lost: a commit asking one of them
     * cannot be vouched for */
    int64_t dropped_below;
    int64_t since;
    size_t bytes, max_bytes;
};

static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static uint64_t *block_of(const bloom *b, uint64_t h) {
    uint64_t x = mix64(h) >> 32; /* n_blocks < 2^32 */
    return b->words + (size_t)((x * b->n_blocks) >> 32) * BLOCK_WORDS;
}

static uint64_t probe_bits(uint64_t h) { return mix64(h ^ UINT64_C(0x9e3779b97f4a7c15)); }

static bool bloom_has(const bloom *b, uint64_t h) {
    const uint64_t *blk = block_of(b, h);
    uint64_t y = probe_bits(h);
    for (int i = 0; i < PROBES; i++, y >>= 9)
        if (!(blk[(y & 511) >> 6] & (UINT64_C(1) << (y & 63))))
            return false;
    return true;
}

static void bloom_add(bloom *b, uint64_t h) {
    uint64_t *blk = block_of(b, h);
    uint64_t y = probe_bits(h);
    for (int i = 0; i < PROBES; i++, y >>= 9)
        blk[(y & 511) >> 6] |= UINT64_C(1) << (y & 63);
    b->n++;
}

static size_t bloom_bytes(const bloom *b) { return b->n_blocks * BLOCK_WORDS * sizeof(uint64_t); }

idfilter *idfilter_new(size_t max_bytes, int64_t now_ms) {
    idfilter *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->max_bytes = max_bytes, f->since = now_ms, f->dropped_below = INT64_MIN;
    return f;
}

static void slice_free(idfilter *f, slice_filter *s) {
    for (size_t g = 0; g < s->n_gens; g++) {
        f->bytes -= bloom_bytes(&s->gens[g]);
        free(s->gens[g].words);
    }
    free(s->gens);
}

/* Drop the slices below slice; none of them can be vouched for again. */
static void drop_below(idfilter *f, int64_t slice) {
    size_t k = 0;
    while (k < f->n_slices && f->slices[k].slice < slice)
        slice_free(f, &f->slices[k++]);
    memmove(f->slices, f->slices + k, (f->n_slices - k) * sizeof *f->slices);
    f->n_slices -= k;
    if (slice > f->dropped_below)
        f->dropped_below = slice;
}

void idfilter_destroy(idfilter **fp) {
    idfilter *f = fp ? *fp : NULL;
    if (!f)
        return;
    for (size_t k = 0; k < f->n_slices; k++)
        slice_free(f, &f->slices[k]);
    free(f->slices);
    free(f);
    *fp = NULL;
}

int64_t idfilter_since(const idfilter *f) { return f->since; }

bool idfilter_covers(const idfilter *f, int64_t wall_ms, int64_t horizon_ms) {
    return floordiv(wall_ms - horizon_ms, SLICE_MS) >= f->dropped_below;
}

/* The first slice at or after slice (n_slices if none). */
static size_t lower_bound(const idfilter *f, int64_t slice) {
    size_t lo = 0, hi = f->n_slices;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->slices[mid].slice < slice)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool idfilter_maybe(const idfilter *f, uint64_t h, int64_t wall_ms, int64_t horizon_ms) {
    int64_t cur = floordiv(wall_ms, SLICE_MS);
    for (size_t k = lower_bound(f, floordiv(wall_ms - horizon_ms, SLICE_MS));
         k < f->n_slices && f->slices[k].slice <= cur; k++)
        for (size_t g = 0; g < f->slices[k].n_gens; g++)
            if (bloom_has(&f->slices[k].gens[g], h))
                return true;
    return false;
}

/* The slice's entry, made if missing; NULL on ENOMEM. */
static slice_filter *slice_get(idfilter *f, int64_t slice) {
    size_t k = lower_bound(f, slice);
    if (k < f->n_slices && f->slices[k].slice == slice)
        return &f->slices[k];
    if (f->n_slices == f->cap_slices) {
        size_t cap = f->cap_slices ? 2 * f->cap_slices : 8;
        slice_filter *n = realloc(f->slices, cap * sizeof *n);
        if (!n)
            return NULL;
        f->slices = n, f->cap_slices = cap;
    }
    memmove(f->slices + k + 1, f->slices + k, (f->n_slices - k) * sizeof *f->slices);
    f->n_slices++;
    f->slices[k] = (slice_filter){.slice = slice};
    return &f->slices[k];
}

/* A new filter for s, sized from the slice before (as Redis sizes a slice's
 * sets) or 4 times its last one; NULL past the budget or on ENOMEM. */
static bloom *grow(idfilter *f, slice_filter *s) {
    size_t cap = MIN_IDS;
    if (s->n_gens) {
        cap = GROWTH * s->gens[s->n_gens - 1].cap;
    } else if (s > f->slices && s[-1].slice == s->slice - 1 && s[-1].n / 4 * 5 > cap) {
        cap = s[-1].n / 4 * 5;
    }
    size_t n_blocks = (cap * BITS_PER_ID + BLOCK_BITS - 1) / BLOCK_BITS;
    size_t bytes = n_blocks * BLOCK_WORDS * sizeof(uint64_t);
    if (n_blocks >= (UINT64_C(1) << 32) || bytes > f->max_bytes - f->bytes)
        return NULL;
    bloom *gens = realloc(s->gens, (s->n_gens + 1) * sizeof *gens);
    if (!gens)
        return NULL;
    s->gens = gens;
    uint64_t *words = calloc(n_blocks * BLOCK_WORDS, sizeof *words);
    if (!words)
        return NULL;
    f->bytes += bytes;
    s->gens[s->n_gens] = (bloom){.words = words, .n_blocks = n_blocks, .cap = cap};
    return &s->gens[s->n_gens++];
}

void idfilter_add(idfilter *f, uint64_t h, int64_t wall_ms) {
    int64_t slice = floordiv(wall_ms, SLICE_MS);
    if (slice < f->dropped_below)
        return; /* no commit asking it is vouched for */
    slice_filter *s = slice_get(f, slice);
    bloom *b = s && s->n_gens ? &s->gens[s->n_gens - 1] : NULL;
    if (s && (!b || b->n >= b->cap))
        b = grow(f, s);
    if (!b) {
        /* Not held: the commits this slice is live for are not vouched
         * for; and its filters are no use any more. */
        drop_below(f, slice + 1);
        return;
    }
    bloom_add(b, h);
    s->n++;
}

void idfilter_expire(idfilter *f, int64_t wall_ms, int64_t horizon_ms) {
    int64_t keep = floordiv(wall_ms - horizon_ms, SLICE_MS);
    if (f->n_slices && f->slices[0].slice < keep)
        drop_below(f, keep);
}

size_t idfilter_bytes(const idfilter *f) { return f->bytes; }
