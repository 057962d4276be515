/*
 * hist.h — invcore-bench's latency histogram: log-linear buckets in the
 * layout of HdrHistogram (Gil Tene), fixed size, no allocation.
 *
 * Values are nanoseconds. Below 2^HIST_SUB_BITS every value has its own
 * bucket; above, each power of two [2^k, 2^(k+1)) is split into
 * 2^(HIST_SUB_BITS-1) equal buckets, so a bucket's width is at most
 * 2^-(HIST_SUB_BITS-1) of its lower bound. A value read back (a
 * percentile) is the midpoint of its bucket: within 2^-HIST_SUB_BITS
 * (0.39% with 8 bits) of every value recorded into it, under the 1% the
 * issue asks for. Values above HIST_VALUE_MAX_NS are clamped to it and
 * counted in `clamped` (a run never hides them: the final table prints
 * the count).
 *
 * Invariants: total == sum of counts[]; min_ns <= every recorded value
 * <= max_ns (after clamping); memory is sizeof(struct hist), whatever is
 * recorded. Not thread-safe: each worker thread records into its own and
 * the reporting thread merges copies.
 */
#ifndef INVCORE_BENCH_HIST_H
#define INVCORE_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Bits of precision per power of two (relative error 2^-HIST_SUB_BITS). */
#define HIST_SUB_BITS 8
/* The largest value kept: 2^37 ns, about 137 s; larger ones are clamped. */
#define HIST_VALUE_BITS 37
#define HIST_VALUE_MAX_NS ((UINT64_C(1) << HIST_VALUE_BITS) - 1)
/* Buckets: 2^SUB_BITS exact ones, then 2^(SUB_BITS-1) per power of two
 * from 2^SUB_BITS up to 2^VALUE_BITS. */
#define HIST_BUCKETS                  \
    ((UINT64_C(1) << HIST_SUB_BITS) + \
     (HIST_VALUE_BITS - HIST_SUB_BITS) * (UINT64_C(1) << (HIST_SUB_BITS - 1)))

struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total; /* values recorded */
    uint64_t clamped; /* of them, above HIST_VALUE_MAX_NS */
    uint64_t min_ns; /* UINT64_MAX while empty */
    uint64_t max_ns; /* 0 while empty */
    long double sum_ns; /* for the mean */
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t value_ns);
/* into += from (bucket by bucket, min, max, totals). */
void hist_merge(struct hist *into, const struct hist *from);
/* The value at percentile pct (0 < pct <= 100): the midpoint of the bucket
 * holding the ceil(pct/100 * total)-th smallest value, clamped into
 * [min_ns, max_ns]; 0 when empty. pct 100 answers max_ns exactly. */
uint64_t hist_percentile(const struct hist *h, double pct);
double hist_mean_ns(const struct hist *h);
/* Bucket i's range of values [lo, hi] (inclusive), for the distribution
 * plot; i < HIST_BUCKETS. */
void hist_bucket_range(size_t i, uint64_t *lo_ns, uint64_t *hi_ns);
/* The bucket a value goes to (clamped values go to the last one). */
size_t hist_bucket_of(uint64_t value_ns);

#endif
