/*
 * hist.c — invcore-bench's latency histogram (the contract is hist.h):
 * log-linear buckets in HdrHistogram's layout, a fixed-size struct, no
 * allocation, no locks (one per thread; the reporter merges copies).
 *
 * The layout, with S = HIST_SUB_BITS: a value v is first widened to
 * v | (2^S - 1) to find its power of two k = msb (at least S-1), and
 * shift = k - (S-1) bits are dropped; the bucket is
 * (shift << (S-1)) + (v >> shift). Below 2^S shift is 0 and the bucket is
 * v itself; above, v >> shift lies in [2^(S-1), 2^S), so each power of two
 * gets 2^(S-1) buckets of width 2^shift, laid end to end.
 *
 * Invariants: every index is < HIST_BUCKETS (values are clamped to
 * HIST_VALUE_MAX_NS first, whose bucket is the last one); total == sum of
 * counts[] == values recorded; while not empty min_ns <= max_ns <=
 * HIST_VALUE_MAX_NS and sum_ns <= total * max_ns.
 */
#include "tools/bench/hist.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* The index formula assumes a shift that stays within 64 bits and at
 * least one power of two above the exact buckets. */
_Static_assert(HIST_SUB_BITS >= 1 && HIST_SUB_BITS < HIST_VALUE_BITS && HIST_VALUE_BITS <= 63,
               "HIST_SUB_BITS and HIST_VALUE_BITS out of range");
/* The load tool keeps one per worker plus interval copies: keep it small. */
_Static_assert(sizeof(struct hist) < 40 * 1024, "struct hist must stay below 40 KiB");

#define HIST_SUB_COUNT (UINT64_C(1) << (HIST_SUB_BITS - 1)) /* buckets per power of two */
#define HIST_EXACT_MAX ((UINT64_C(1) << HIST_SUB_BITS) - 1) /* largest value with its own bucket */

/* The bucket of a value already clamped to HIST_VALUE_MAX_NS. Hot path:
 * no branch, no loop; or-ing HIST_EXACT_MAX keeps clzll's argument non-zero
 * and makes every value below 2^S land on shift 0. */
static inline size_t bucket_of_clamped(uint64_t v)
{
    const unsigned msb = 63u - (unsigned)__builtin_clzll(v | HIST_EXACT_MAX);
    const unsigned shift = msb - (HIST_SUB_BITS - 1);
    return (size_t)(((uint64_t)shift << (HIST_SUB_BITS - 1)) + (v >> shift));
}

void hist_reset(struct hist *h)
{
    assert(h != NULL);
    memset(h->counts, 0, sizeof h->counts);
    h->total = 0;
    h->clamped = 0;
    h->min_ns = UINT64_MAX; /* so the first value recorded becomes the min */
    h->max_ns = 0;
    h->sum_ns = 0;
}

/* Hot path (every answered request): allocates nothing, no loop. */
void hist_record(struct hist *h, uint64_t value_ns)
{
    assert(h != NULL);
    const bool over = value_ns > HIST_VALUE_MAX_NS;
    /* Clamped, not dropped: a stall of minutes must still weigh in the
     * percentiles, and `clamped` tells the reader the max is a floor. */
    const uint64_t v = over ? HIST_VALUE_MAX_NS : value_ns;
    const size_t i = bucket_of_clamped(v);
    assert(i < HIST_BUCKETS);
    h->counts[i]++;
    h->total++;
    h->clamped += over;
    h->min_ns = v < h->min_ns ? v : h->min_ns;
    h->max_ns = v > h->max_ns ? v : h->max_ns;
    h->sum_ns += (long double)v; /* 64-bit mantissa: exact up to 2^27 values of 2^37 ns */
}

void hist_merge(struct hist *into, const struct hist *from)
{
    assert(into != NULL && from != NULL);
    const uint64_t total_before = into->total;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->clamped += from->clamped;
    /* An empty `from` has min UINT64_MAX and max 0: it changes neither. */
    into->min_ns = from->min_ns < into->min_ns ? from->min_ns : into->min_ns;
    into->max_ns = from->max_ns > into->max_ns ? from->max_ns : into->max_ns;
    into->sum_ns += from->sum_ns;
    assert(into->total >= total_before); /* 2^64 values would take centuries */
}

/* The rank (1-based) of the value at percentile pct of total values:
 * ceil(pct/100 * total), in [1, total]. pct is usually a decimal (99.9)
 * that a double cannot hold exactly, so pct * total / 100 can land a few
 * ulps above an integer (1.1% of 3000 gives 33.00000000000001); ceil
 * would then skip a rank, which in a bimodal run jumps between modes.
 * A relative 2^-50 (about 8 ulps) is taken off first to forgive that. */
static uint64_t rank_of(double pct, uint64_t total)
{
    double x = pct * (double)total / 100.0;
    x -= x * 0x1p-50;
    uint64_t r = (uint64_t)x; /* x >= 0: truncation is floor */
    r += (double)r < x; /* then ceil */
    r = r < 1 ? 1 : r;
    return r > total ? total : r;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
    assert(h != NULL);
    assert(pct > 0 && pct <= 100); /* also refuses NaN */
    if (h->total == 0)
        return 0;
    if (pct >= 100)
        return h->max_ns; /* exact, where the bucket's midpoint is not */
    const uint64_t rank = rank_of(pct, h->total);
    uint64_t seen = 0;
    size_t i = 0;
    /* Bounded by HIST_BUCKETS: total == sum of counts[], so the running
     * sum reaches rank <= total by the last non-empty bucket. */
    for (; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            break;
    }
    assert(i < HIST_BUCKETS);
    uint64_t lo = 0, hi = 0;
    hist_bucket_range(i, &lo, &hi);
    uint64_t mid = lo + (hi - lo) / 2;
    /* Into [min, max]: the rank-th value lies there too, so this only ever
     * brings the answer closer (and a lone value reads back exactly). */
    mid = mid < h->min_ns ? h->min_ns : mid;
    mid = mid > h->max_ns ? h->max_ns : mid;
    return mid;
}

double hist_mean_ns(const struct hist *h)
{
    assert(h != NULL);
    if (h->total == 0)
        return 0;
    const double mean = (double)(h->sum_ns / (long double)h->total);
    assert(mean >= 0);
    return mean;
}

void hist_bucket_range(size_t i, uint64_t *lo_ns, uint64_t *hi_ns)
{
    assert(i < HIST_BUCKETS);
    assert(lo_ns != NULL && hi_ns != NULL);
    /* The inverse of bucket_of_clamped: below 2^S the bucket is its value;
     * above, i = (shift << (S-1)) + m with m in [2^(S-1), 2^S). */
    if (i <= HIST_EXACT_MAX) {
        *lo_ns = *hi_ns = i;
        return;
    }
    const unsigned shift = (unsigned)(i >> (HIST_SUB_BITS - 1)) - 1u;
    const uint64_t m = (uint64_t)i - ((uint64_t)shift << (HIST_SUB_BITS - 1));
    assert(m >= HIST_SUB_COUNT && m <= HIST_EXACT_MAX);
    *lo_ns = m << shift;
    *hi_ns = *lo_ns + ((UINT64_C(1) << shift) - 1);
}

size_t hist_bucket_of(uint64_t value_ns)
{
    const uint64_t v = value_ns > HIST_VALUE_MAX_NS ? HIST_VALUE_MAX_NS : value_ns;
    const size_t i = bucket_of_clamped(v);
    assert(i < HIST_BUCKETS);
    return i;
}
