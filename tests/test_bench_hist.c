/*
 * test_bench_hist.c — invcore-bench's latency histogram
 * (core/tools/bench/hist.c), called directly:
 *  - values below 2^HIST_SUB_BITS read back exactly;
 *  - any value read back through hist_percentile is within 2^-8 of it
 *    (so under 1%): every power of two and its neighbours, and a seeded
 *    pseudo-random sweep of the whole range;
 *  - percentiles of uniform, exponential, bimodal and constant samples
 *    against the exact ones found by sorting the same samples, ranks that
 *    a decimal pct (99.9, 1.1) must not skip, and pct 100 == max exactly;
 *  - the bucket layout: HIST_BUCKETS contiguous increasing ranges covering
 *    [0, HIST_VALUE_MAX_NS], every value inside its bucket's range;
 *  - merge == recording everything into one; min, max, total, clamped and
 *    the mean; an empty histogram answers 0; sizeof bounded.
 * Every random stream has a fixed seed: a failure reproduces.
 */
#include "test_util.h"

#include <math.h>

#include "tools/bench/hist.h"

/* ---- helpers ------------------------------------------------------------- */

#define SAMPLES_N 100000 /* per distribution: 1e-5 resolution for p99.999 */
#define SWEEP_N 20000 /* single values of the random sweep */
#define MERGE_PARTS 3

/* Percentiles asked of every distribution, in parts per million so the
 * exact rank is integer arithmetic: ceil(ppm * n / 1e6). */
static const uint64_t pct_ppm[] = {10,     10000,  100000, 250000, 500000, 750000, 900000,
                                   900010, 950000, 990000, 999000, 999900, 999990, 1000000};
#define PCT_N (sizeof pct_ppm / sizeof pct_ppm[0])

/* got is within want / 2^HIST_SUB_BITS of want (hist.h's promise), in
 * integers so no rounding can hide an error. 2^-8 < 1%. */
static bool within_rel(uint64_t got, uint64_t want)
{
    uint64_t d = got > want ? got - want : want - got;
    return (d << HIST_SUB_BITS) <= want;
}

/* The midpoint read back for v alone among far neighbours: 0 and
 * HIST_VALUE_MAX_NS widen [min, max] so the clamp cannot help, and p50
 * (rank 2 of 3) is v's bucket. */
static uint64_t read_back(struct hist *h, uint64_t v)
{
    hist_reset(h);
    hist_record(h, 0);
    hist_record(h, v);
    hist_record(h, HIST_VALUE_MAX_NS);
    return hist_percentile(h, 50);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Records samples, sorts them, and holds every percentile, min, max,
 * total and the mean to the exact ones. */
static void check_against_sorted(const char *name, uint64_t *samples, size_t n)
{
    static struct hist h; /* static: one 31 KiB copy, not on the stack */
    hist_reset(&h);
    unsigned __int128 sum = 0;
    for (size_t i = 0; i < n; i++) {
        hist_record(&h, samples[i]);
        sum += samples[i];
    }
    qsort(samples, n, sizeof *samples, cmp_u64);
    cr_assert_eq(h.total, n, "%s: total", name);
    cr_assert_eq(h.min_ns, samples[0], "%s: min", name);
    cr_assert_eq(h.max_ns, samples[n - 1], "%s: max", name);
    for (size_t k = 0; k < PCT_N; k++) {
        uint64_t rank = (pct_ppm[k] * n + 999999) / 1000000;
        uint64_t want = samples[rank - 1];
        double pct = (double)pct_ppm[k] / 1e4;
        uint64_t got = hist_percentile(&h, pct);
        cr_expect(within_rel(got, want), "%s: p%g is %" PRIu64 ", the sorted samples say %" PRIu64,
                  name, pct, got, want);
    }
    cr_assert_eq(hist_percentile(&h, 100), samples[n - 1], "%s: p100 is the max", name);
    double mean = (double)sum / (double)n;
    cr_expect_leq(fabs(hist_mean_ns(&h) - mean), mean * 1e-12, "%s: mean %f, exact %f", name,
                  hist_mean_ns(&h), mean);
}

static uint64_t *samples_new(void)
{
    uint64_t *s = malloc(SAMPLES_N * sizeof *s);
    cr_assert_not_null(s);
    return s;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_unit(tu_rng *r)
{
    return (double)(tu_rng_next(r) >> 11) * 0x1p-53;
}

/* A value whose bit length is uniform in [0, 37]: every power of two of
 * the range gets as many as the next, unlike a uniform draw. */
static uint64_t rng_log_uniform(tu_rng *r)
{
    unsigned bits = (unsigned)tu_rng_below(r, HIST_VALUE_BITS + 1);
    return bits == 0 ? 0 : tu_rng_next(r) >> (64 - bits);
}

/* ---- exact values and relative error ------------------------------------ */

Test(bench_hist, values_below_256_have_their_own_bucket_and_read_back_exactly)
{
    static struct hist h;
    for (uint64_t v = 0; v < (UINT64_C(1) << HIST_SUB_BITS); v++) {
        cr_assert_eq(hist_bucket_of(v), v);
        uint64_t lo = 1, hi = 0;
        hist_bucket_range(v, &lo, &hi);
        cr_assert(lo == v && hi == v, "bucket %" PRIu64 " is [%" PRIu64 ", %" PRIu64 "]", v, lo,
                  hi);
        cr_assert_eq(read_back(&h, v), v);
    }
    /* All of 0..255 at once: the k-th smallest is k - 1, for every k. */
    const uint64_t exact_n = UINT64_C(1) << HIST_SUB_BITS;
    hist_reset(&h);
    for (uint64_t v = 0; v < exact_n; v++)
        hist_record(&h, v);
    for (uint64_t k = 1; k <= exact_n; k++)
        cr_assert_eq(hist_percentile(&h, 100.0 * (double)k / (double)exact_n), k - 1,
                     "rank %" PRIu64, k);
}

Test(bench_hist, every_power_of_two_and_its_neighbours_read_back_within_2_pow_minus_8)
{
    static struct hist h;
    for (unsigned k = 0; k < HIST_VALUE_BITS; k++) {
        for (int d = -3; d <= 3; d++) {
            uint64_t p = UINT64_C(1) << k;
            if (d < 0 && p < (uint64_t)-d)
                continue;
            uint64_t v = p + (uint64_t)(int64_t)d;
            uint64_t got = read_back(&h, v);
            cr_assert(within_rel(got, v), "2^%u%+d = %" PRIu64 " reads back as %" PRIu64, k, d, v,
                      got);
        }
    }
    /* The top of the range reads back within 2^-8 too (its bucket is the last). */
    cr_assert(within_rel(read_back(&h, HIST_VALUE_MAX_NS - 1), HIST_VALUE_MAX_NS - 1));
}

Test(bench_hist, a_seeded_sweep_of_the_whole_range_reads_back_within_2_pow_minus_8)
{
    static struct hist h;
    tu_rng r = tu_rng_seed(0xb1a5);
    uint64_t worst_ppb = 0; /* the largest relative error seen, in 1e-9 */
    for (size_t i = 0; i < SWEEP_N; i++) {
        uint64_t v = rng_log_uniform(&r);
        v = v > HIST_VALUE_MAX_NS ? HIST_VALUE_MAX_NS : v;
        uint64_t got = read_back(&h, v);
        cr_assert(within_rel(got, v), "%" PRIu64 " reads back as %" PRIu64, v, got);
        uint64_t d = got > v ? got - v : v - got;
        if (v > 0 && d * 1000000000u / v > worst_ppb)
            worst_ppb = d * 1000000000u / v;
    }
    /* The bound is tight enough to be met, not vacuous: a sweep this long
     * sees errors above a quarter of it. */
    cr_assert_leq(worst_ppb, 1000000000u >> HIST_SUB_BITS);
    cr_assert_gt(worst_ppb, (1000000000u >> HIST_SUB_BITS) / 4);
}

Test(bench_hist, a_lone_value_reads_back_exactly_at_every_percentile)
{
    /* The midpoint is clamped into [min, max], which is [v, v]. */
    static const uint64_t vs[] = {0, 1, 255, 256, 257, 1000003, UINT64_C(98765432109)};
    static struct hist h;
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        hist_reset(&h);
        hist_record(&h, vs[i]);
        for (size_t k = 0; k < PCT_N; k++)
            cr_assert_eq(hist_percentile(&h, (double)pct_ppm[k] / 1e4), vs[i]);
    }
}

/* ---- known distributions --------------------------------------------------- */

Test(bench_hist, uniform_percentiles_match_the_sorted_samples)
{
    uint64_t *s = samples_new();
    tu_rng r = tu_rng_seed(1);
    for (size_t i = 0; i < SAMPLES_N; i++)
        s[i] = (uint64_t)tu_rng_range(&r, 1000, 1000000);
    check_against_sorted("uniform", s, SAMPLES_N);
    free(s);
}

Test(bench_hist, exponential_percentiles_match_the_sorted_samples)
{
    uint64_t *s = samples_new();
    tu_rng r = tu_rng_seed(2);
    for (size_t i = 0; i < SAMPLES_N; i++)
        s[i] = (uint64_t)(-log1p(-rng_unit(&r)) * 50000.0); /* mean 50 us */
    check_against_sorted("exponential", s, SAMPLES_N);
    free(s);
}

Test(bench_hist, bimodal_percentiles_match_the_sorted_samples_across_the_gap)
{
    /* 90% fast (20-30 us), 10% slow (5-8 ms): p90 is the last fast one
     * and p90.001 a slow one, so a rank off by one is a 200x error. */
    uint64_t *s = samples_new();
    tu_rng r = tu_rng_seed(3);
    for (size_t i = 0; i < SAMPLES_N; i++)
        s[i] = i % 10 != 0 ? (uint64_t)tu_rng_range(&r, 20000, 30000)
                           : (uint64_t)tu_rng_range(&r, 5000000, 8000000);
    check_against_sorted("bimodal", s, SAMPLES_N);
    free(s);
}

Test(bench_hist, constant_samples_read_back_exactly)
{
    uint64_t *s = samples_new();
    for (size_t i = 0; i < SAMPLES_N; i++)
        s[i] = 123457;
    check_against_sorted("constant", s, SAMPLES_N);
    static struct hist h;
    hist_reset(&h);
    for (size_t i = 0; i < SAMPLES_N; i++)
        hist_record(&h, s[i]);
    for (size_t k = 0; k < PCT_N; k++)
        cr_assert_eq(hist_percentile(&h, (double)pct_ppm[k] / 1e4), 123457);
    free(s);
}

Test(bench_hist, a_decimal_pct_does_not_skip_a_rank)
{
    /* 99.9 / 100 * 1000 is 999.0000000000001 in doubles, and 1.1 * 3000 /
     * 100 is 33.00000000000001: a plain ceil would take the next rank. */
    static struct hist h;
    hist_reset(&h);
    for (int i = 0; i < 999; i++)
        hist_record(&h, 10);
    hist_record(&h, 20);
    cr_assert_eq(hist_percentile(&h, 99.9), 10);
    cr_assert_eq(hist_percentile(&h, 99.95), 20);

    hist_reset(&h);
    for (int i = 0; i < 33; i++)
        hist_record(&h, 5);
    for (int i = 0; i < 2967; i++)
        hist_record(&h, 200);
    cr_assert_eq(hist_percentile(&h, 1.1), 5);
    cr_assert_eq(hist_percentile(&h, 1.11), 200);
    cr_assert_eq(hist_percentile(&h, 1e-9), 5, "a tiny pct is rank 1, the smallest");
}

Test(bench_hist, pct_100_is_the_max_exactly_not_its_bucket_midpoint)
{
    static struct hist h;
    hist_reset(&h);
    hist_record(&h, 100);
    hist_record(&h, 1000003);
    uint64_t lo = 0, hi = 0;
    hist_bucket_range(hist_bucket_of(1000003), &lo, &hi);
    cr_assert_neq(lo + (hi - lo) / 2, 1000003, "pick a value off its bucket's midpoint");
    cr_assert_eq(hist_percentile(&h, 100), 1000003);
    cr_assert_eq(hist_percentile(&h, 50), 100);
    cr_assert(within_rel(hist_percentile(&h, 99.9999), 1000003));
}

/* ---- bucket layout ----------------------------------------------------------- */

Test(bench_hist, buckets_are_contiguous_increasing_and_cover_the_range)
{
    cr_assert_eq(HIST_BUCKETS, 256 + 29 * 128, "8 sub-bits, 2^37 ns: 3968 buckets");
    uint64_t prev_hi = 0;
    size_t n = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++, n++) {
        uint64_t lo = 1, hi = 0;
        hist_bucket_range(i, &lo, &hi);
        cr_assert_leq(lo, hi, "bucket %zu", i);
        cr_assert_eq(lo, i == 0 ? 0 : prev_hi + 1, "bucket %zu starts where %zu ended", i, i - 1);
        /* Width at most 2^-(SUB_BITS-1) of the lower bound, above the exact ones. */
        if (lo >= 256)
            cr_assert_leq((hi - lo + 1) << (HIST_SUB_BITS - 1), lo, "bucket %zu too wide", i);
        else
            cr_assert_eq(hi, lo, "bucket %zu should be exact", i);
        cr_assert_eq(hist_bucket_of(lo), i);
        cr_assert_eq(hist_bucket_of(hi), i);
        prev_hi = hi;
    }
    cr_assert_eq(n, HIST_BUCKETS);
    cr_assert_eq(prev_hi, HIST_VALUE_MAX_NS, "the last bucket ends at the largest value kept");
}

/* v lies inside the range of the bucket hist_bucket_of gives it. */
static void assert_inside_its_bucket(uint64_t v)
{
    size_t b = hist_bucket_of(v);
    cr_assert_lt(b, HIST_BUCKETS);
    uint64_t lo = 1, hi = 0;
    hist_bucket_range(b, &lo, &hi);
    cr_assert(lo <= v && v <= hi,
              "%" PRIu64 " is outside its bucket %zu [%" PRIu64 ", %" PRIu64 "]", v, b, lo, hi);
}

Test(bench_hist, every_value_lies_inside_its_buckets_range)
{
    for (uint64_t v = 0; v < 65536; v++)
        assert_inside_its_bucket(v);
    for (unsigned k = 0; k < HIST_VALUE_BITS; k++)
        for (uint64_t d = 0; d <= 6; d++)
            assert_inside_its_bucket((UINT64_C(1) << k) + d - 3 * (k >= 2));
    tu_rng r = tu_rng_seed(4);
    for (size_t i = 0; i < SWEEP_N; i++) {
        uint64_t a = rng_log_uniform(&r), b = rng_log_uniform(&r);
        assert_inside_its_bucket(a);
        /* Buckets keep the order of values. */
        if (a <= b)
            cr_assert_leq(hist_bucket_of(a), hist_bucket_of(b), "%" PRIu64 " <= %" PRIu64, a, b);
        else
            cr_assert_geq(hist_bucket_of(a), hist_bucket_of(b), "%" PRIu64 " > %" PRIu64, a, b);
    }
}

Test(bench_hist, values_above_the_max_go_to_the_last_bucket)
{
    static const uint64_t vs[] = {HIST_VALUE_MAX_NS, HIST_VALUE_MAX_NS + 1,
                                  UINT64_C(1) << HIST_VALUE_BITS, UINT64_C(1) << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
        cr_assert_eq(hist_bucket_of(vs[i]), HIST_BUCKETS - 1, "%" PRIu64, vs[i]);
    cr_assert_lt(hist_bucket_of(HIST_VALUE_MAX_NS - (UINT64_C(1) << 29)), HIST_BUCKETS - 1);
}

/* ---- counters, merge, empty, memory ----------------------------------------- */

Test(bench_hist, min_max_total_clamped_and_mean_are_kept)
{
    static struct hist h;
    hist_reset(&h);
    hist_record(&h, 300);
    hist_record(&h, 100);
    hist_record(&h, 200);
    cr_assert_eq(h.total, 3);
    cr_assert_eq(h.clamped, 0);
    cr_assert_eq(h.min_ns, 100);
    cr_assert_eq(h.max_ns, 300);
    cr_assert_eq(hist_mean_ns(&h), 200.0);

    /* Above HIST_VALUE_MAX_NS: kept as the max, and counted. */
    hist_record(&h, HIST_VALUE_MAX_NS + 1);
    hist_record(&h, UINT64_MAX);
    hist_record(&h, HIST_VALUE_MAX_NS); /* the max itself is not clamped */
    cr_assert_eq(h.total, 6);
    cr_assert_eq(h.clamped, 2);
    cr_assert_eq(h.min_ns, 100);
    cr_assert_eq(h.max_ns, HIST_VALUE_MAX_NS);
    cr_assert_eq(hist_percentile(&h, 100), HIST_VALUE_MAX_NS);
    /* p90 is rank 6 of 6, in the last bucket: its midpoint, not the max. */
    uint64_t lo = 0, hi = 0;
    hist_bucket_range(HIST_BUCKETS - 1, &lo, &hi);
    cr_assert_eq(hist_percentile(&h, 90), lo + (hi - lo) / 2);
    cr_assert(within_rel(hist_percentile(&h, 90), HIST_VALUE_MAX_NS));
    double want = (600.0 + 3.0 * (double)HIST_VALUE_MAX_NS) / 6.0;
    cr_assert_leq(fabs(hist_mean_ns(&h) - want), want * 1e-12, "mean %f, want %f", hist_mean_ns(&h),
                  want);
    uint64_t sum_counts = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        sum_counts += h.counts[i];
    cr_assert_eq(sum_counts, h.total);
    cr_assert_eq(h.counts[HIST_BUCKETS - 1], 3);
}

Test(bench_hist, merge_equals_recording_everything_into_one)
{
    static struct hist all, parts[MERGE_PARTS], merged;
    hist_reset(&all);
    hist_reset(&merged);
    for (size_t p = 0; p < MERGE_PARTS; p++)
        hist_reset(&parts[p]);
    tu_rng r = tu_rng_seed(5);
    for (size_t i = 0; i < SWEEP_N; i++) {
        /* About 1 in 38 above the max, so clamped counts merge too. */
        uint64_t v = rng_log_uniform(&r);
        v = tu_rng_below(&r, 38) == 0 ? HIST_VALUE_MAX_NS + v : v;
        hist_record(&all, v);
        /* Uneven parts: the first gets half, and the last at least one. */
        hist_record(&parts[i % 2 == 0 ? 0 : 1 + (i / 2) % (MERGE_PARTS - 1)], v);
    }
    hist_merge(&merged, &parts[0]); /* into an empty one: a copy */
    cr_assert_eq(memcmp(merged.counts, parts[0].counts, sizeof merged.counts), 0);
    for (size_t p = 1; p < MERGE_PARTS; p++)
        hist_merge(&merged, &parts[p]);
    cr_assert_gt(all.clamped, 0);
    cr_assert_eq(memcmp(merged.counts, all.counts, sizeof all.counts), 0);
    cr_assert_eq(merged.total, all.total);
    cr_assert_eq(merged.clamped, all.clamped);
    cr_assert_eq(merged.min_ns, all.min_ns);
    cr_assert_eq(merged.max_ns, all.max_ns);
    /* Integer sums below 2^64 are exact in a long double, whatever the order. */
    cr_assert(merged.sum_ns == all.sum_ns);
    for (size_t k = 0; k < PCT_N; k++) {
        double pct = (double)pct_ppm[k] / 1e4;
        cr_assert_eq(hist_percentile(&merged, pct), hist_percentile(&all, pct), "p%g", pct);
    }

    /* Merging an empty one changes nothing. */
    static struct hist empty;
    hist_reset(&empty);
    hist_merge(&merged, &empty);
    cr_assert_eq(memcmp(merged.counts, all.counts, sizeof all.counts), 0);
    cr_assert(merged.total == all.total && merged.min_ns == all.min_ns &&
              merged.max_ns == all.max_ns && merged.sum_ns == all.sum_ns);
}

Test(bench_hist, an_empty_histogram_answers_0)
{
    static struct hist h;
    memset(&h, 0xa5, sizeof h); /* reset must not rely on zeroed memory */
    hist_reset(&h);
    cr_assert_eq(h.total, 0);
    cr_assert_eq(h.clamped, 0);
    cr_assert_eq(h.min_ns, UINT64_MAX);
    cr_assert_eq(h.max_ns, 0);
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        cr_assert_eq(h.counts[i], 0);
    for (size_t k = 0; k < PCT_N; k++)
        cr_assert_eq(hist_percentile(&h, (double)pct_ppm[k] / 1e4), 0);
    cr_assert_eq(hist_percentile(&h, 1e-9), 0);
    cr_assert_eq(hist_mean_ns(&h), 0.0);

    /* Two empties merged are empty; a used one reset is empty again. */
    static struct hist other;
    hist_reset(&other);
    hist_merge(&h, &other);
    cr_assert_eq(hist_percentile(&h, 50), 0);
    cr_assert_eq(h.min_ns, UINT64_MAX);
    hist_record(&h, 12345);
    cr_assert_eq(hist_percentile(&h, 50), 12345);
    hist_reset(&h);
    cr_assert_eq(h.total, 0);
    cr_assert_eq(hist_percentile(&h, 50), 0);
    cr_assert_eq(hist_mean_ns(&h), 0.0);
}

Test(bench_hist, memory_is_bounded_whatever_is_recorded)
{
    cr_assert_lt(sizeof(struct hist), 40 * 1024, "sizeof(struct hist) is %zu", sizeof(struct hist));
    cr_assert_geq(sizeof(struct hist), HIST_BUCKETS * sizeof(uint64_t));
}
