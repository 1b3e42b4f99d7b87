/* idfilter.c -- blocked Bloom filters by dedup slice (see idfilter.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
    PAGE = 4096,
    /* the next slice's first filter is made from here on, and faulted in
     * over AHEAD_MS: the slice to be dropped at the turn is still held, so
     * its filters and that one are held together for this long */
    NEXT_FROM_MS = SLICE_MS * 5 / 6,
    AHEAD_MS = SLICE_MS / 8,
};

#define HUGE_PAGE ((size_t)2 << 20)

typedef struct bloom {
    uint64_t *words;
    size_t n_blocks, cap, n; /* cap: ids it is sized for */
    size_t mapped;           /* bytes mapped for words, or 0: from calloc */
    size_t touched;          /* bytes faulted in ahead of its first ids */
} bloom;

typedef struct slice_filter {
    int64_t slice;
    size_t n; /* ids added */
    bloom *gens;
    size_t n_gens;
    bloom ahead; /* its next filter, faulted in ahead (words NULL: none yet) */
} slice_filter;

struct idfilter {
    slice_filter *slices; /* ascending by slice */
    size_t n_slices, cap_slices;
    /* every slice below was dropped or lost: a commit asking one of them
     * cannot be vouched for */
    int64_t dropped_below;
    int64_t since;
    size_t bytes, max_bytes;
    bloom next; /* the first filter of slice next_slice, faulted in ahead */
    int64_t next_slice;
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

static size_t bloom_bytes(const bloom *b) {
    return b->mapped ? b->mapped : b->n_blocks * BLOCK_WORDS * sizeof(uint64_t);
}

/* The bytes words_alloc takes for a filter of bytes. */
static size_t alloc_bytes(size_t bytes) {
    return bytes < HUGE_PAGE ? bytes : (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
}

/* Zeroed memory for a filter's words. One of 2 MiB or more is mapped on its
 * own, aligned to and rounded up to 2 MiB, and advised into transparent huge
 * pages (where the kernel allows them: THP "madvise" or "always"). Adds
 * touch a filter's pages at random, so a new 60 MB filter faulted in its
 * 15,000 pages within a few commits: 150 ms of the daemon on a VM, where
 * huge pages take 30 faults. *mapped is the length mapped, 0 for calloc. */
static uint64_t *words_alloc(size_t bytes, size_t *mapped) {
    *mapped = 0;
    if (bytes < HUGE_PAGE)
        return calloc(bytes / sizeof(uint64_t), sizeof(uint64_t));
    size_t len = alloc_bytes(bytes);
    char *p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + len < p + len + HUGE_PAGE)
        munmap(a + len, (size_t)(p + len + HUGE_PAGE - (a + len)));
    (void)madvise(a, len, MADV_HUGEPAGE); /* best effort: small pages without THP */
    *mapped = len;
    return (uint64_t *)a;
}

static void words_free(bloom *b) {
    if (b->mapped)
        munmap(b->words, b->mapped);
    else
        free(b->words);
}

/* Give b the words for cap ids, within the budget; false past it or on
 * ENOMEM. */
static bool bloom_make(idfilter *f, bloom *b, size_t cap) {
    size_t n_blocks = (cap * BITS_PER_ID + BLOCK_BITS - 1) / BLOCK_BITS;
    size_t bytes = n_blocks * BLOCK_WORDS * sizeof(uint64_t);
    if (n_blocks >= (UINT64_C(1) << 32) || alloc_bytes(bytes) > f->max_bytes - f->bytes)
        return false;
    size_t mapped;
    uint64_t *words = words_alloc(bytes, &mapped);
    if (!words)
        return false;
    *b = (bloom){.words = words, .n_blocks = n_blocks, .cap = cap, .mapped = mapped};
    f->bytes += bloom_bytes(b);
    return true;
}

static void bloom_free(idfilter *f, bloom *b) {
    if (!b->words)
        return;
    f->bytes -= bloom_bytes(b);
    words_free(b);
    *b = (bloom){0};
}

/* Fault in b's pages up to fraction done (0 to 1) of it, a write a page:
 * the kernel zeroes a page (2 MiB with huge pages) at its first write. */
static void bloom_touch(bloom *b, double done) {
    size_t bytes = bloom_bytes(b);
    size_t upto = done >= 1 ? bytes : (size_t)((double)bytes * (done > 0 ? done : 0));
    for (; b->touched < upto; b->touched += PAGE)
        ((volatile unsigned char *)b->words)[b->touched] = 0;
}

idfilter *idfilter_new(size_t max_bytes, int64_t now_ms) {
    idfilter *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->max_bytes = max_bytes, f->since = now_ms, f->dropped_below = INT64_MIN;
    return f;
}

static void slice_free(idfilter *f, slice_filter *s) {
    for (size_t g = 0; g < s->n_gens; g++)
        bloom_free(f, &s->gens[g]);
    free(s->gens);
    bloom_free(f, &s->ahead);
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
    if (f->next_slice < slice)
        bloom_free(f, &f->next);
}

void idfilter_destroy(idfilter **fp) {
    idfilter *f = fp ? *fp : NULL;
    if (!f)
        return;
    for (size_t k = 0; k < f->n_slices; k++)
        slice_free(f, &f->slices[k]);
    free(f->slices);
    bloom_free(f, &f->next);
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

void idfilter_prefetch(const idfilter *f, uint64_t h, int64_t wall_ms, int64_t horizon_ms) {
    int64_t cur = floordiv(wall_ms, SLICE_MS);
    for (size_t k = lower_bound(f, floordiv(wall_ms - horizon_ms, SLICE_MS));
         k < f->n_slices && f->slices[k].slice <= cur; k++)
        for (size_t g = 0; g < f->slices[k].n_gens; g++)
            __builtin_prefetch(block_of(&f->slices[k].gens[g], h));
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

/* The ids a slice's next filter is sized for: GROWTH times its last's. */
static size_t grown_cap(const slice_filter *s) { return GROWTH * s->gens[s->n_gens - 1].cap; }

/* A new filter for s: the one made ahead for it, else one sized from the
 * slice before (as Redis sizes a slice's sets) or 4 times its last one;
 * NULL past the budget or on ENOMEM. */
static bloom *grow(idfilter *f, slice_filter *s) {
    bloom b = {0};
    if (s->n_gens && s->ahead.words) {
        b = s->ahead, s->ahead = (bloom){0};
    } else if (!s->n_gens && f->next.words && f->next_slice == s->slice) {
        b = f->next, f->next = (bloom){0};
    } else {
        size_t cap = MIN_IDS;
        if (s->n_gens)
            cap = grown_cap(s);
        else if (s > f->slices && s[-1].slice == s->slice - 1 && s[-1].n / 4 * 5 > cap)
            cap = s[-1].n / 4 * 5;
        if (!bloom_make(f, &b, cap))
            return NULL;
    }
    bloom *gens = realloc(s->gens, (s->n_gens + 1) * sizeof *gens);
    if (!gens) {
        bloom_free(f, &b);
        return NULL;
    }
    s->gens = gens;
    s->gens[s->n_gens] = b;
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

/* The newest slice's next filter, once its last is half full, faulted in
 * as that fills to 9/10. */
static void prepare_growth(idfilter *f, slice_filter *s) {
    const bloom *last = s->n_gens ? &s->gens[s->n_gens - 1] : NULL;
    if (!last || 2 * last->n < last->cap)
        return;
    if (!s->ahead.words && !bloom_make(f, &s->ahead, grown_cap(s)))
        return; /* past the budget: grow() will say so, if it comes to that */
    bloom_touch(&s->ahead, ((double)last->n / last->cap - 0.5) / 0.4);
}

/* The next slice's first filter, over the last 1/6 of this one: sized
 * for 5/4 of this slice's ids at its pace so far, faulted in over AHEAD_MS. */
static void prepare_next(idfilter *f, const slice_filter *s, int64_t wall_ms) {
    int64_t into = wall_ms - s->slice * SLICE_MS;
    if (into < NEXT_FROM_MS)
        return;
    if (f->next.words && f->next_slice != s->slice + 1)
        bloom_free(f, &f->next); /* made for another slice: the clock jumped */
    if (!f->next.words) {
        size_t cap = (size_t)((double)s->n * SLICE_MS / (double)into * 5 / 4);
        if (!bloom_make(f, &f->next, cap > MIN_IDS ? cap : MIN_IDS))
            return;
        f->next_slice = s->slice + 1;
    }
    bloom_touch(&f->next, (double)(into - NEXT_FROM_MS) / AHEAD_MS);
}

void idfilter_prepare(idfilter *f, int64_t wall_ms) {
    if (!f->n_slices)
        return;
    slice_filter *s = &f->slices[f->n_slices - 1];
    if (s->slice != floordiv(wall_ms, SLICE_MS))
        return; /* a wall behind the newest slice: nothing to grow */
    prepare_growth(f, s);
    prepare_next(f, s, wall_ms);
}

size_t idfilter_bytes(const idfilter *f) { return f->bytes; }
