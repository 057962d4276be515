/*
 * stats.c — per-thread counters and log-linear latency histograms.
 *
 * Invariants: a registered block is never freed while the process may read
 * it (blocks are registered in a fixed array of STATS_THREADS_MAX slots and
 * a freed slot is emptied first); a histogram bucket index is always
 * < STATS_HIST_BUCKETS (latencies are clamped to 2^40 ns).
 */
#include "server/stats.h"

#include <pthread.h>
#include <stdlib.h>

static _Atomic(stats_thread *) g_threads[STATS_THREADS_MAX];
static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;

stats_thread *stats_thread_new(void)
{
    stats_thread *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    pthread_mutex_lock(&g_reg_lock);
    for (size_t i = 0; i < STATS_THREADS_MAX; i++) {
        /* relaxed: the registration lock orders writers; readers only
         * need a pointer to zeroed memory, published by the release below */
        if (atomic_load_explicit(&g_threads[i], memory_order_relaxed) == NULL) {
            /* release: the calloc'd block is visible before its pointer */
            atomic_store_explicit(&g_threads[i], t, memory_order_release);
            pthread_mutex_unlock(&g_reg_lock);
            return t;
        }
    }
    pthread_mutex_unlock(&g_reg_lock);
    free(t);
    return NULL;
}

/* Unregisters and frees t. Its counts leave the totals. Callers must make
 * sure no INFO is being rendered concurrently (done at loop exit, after
 * which the server answers nothing more). */
void stats_thread_free(stats_thread *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&g_reg_lock);
    for (size_t i = 0; i < STATS_THREADS_MAX; i++) {
        /* relaxed: serialized by the registration lock */
        if (atomic_load_explicit(&g_threads[i], memory_order_relaxed) == t)
            atomic_store_explicit(&g_threads[i], NULL, memory_order_relaxed);
    }
    pthread_mutex_unlock(&g_reg_lock);
    free(t);
}

static unsigned bucket_of(uint64_t ns)
{
    unsigned msb;
    if (ns >= (1ull << 40))
        ns = (1ull << 40) - 1;
    if (ns < 8)
        return (unsigned)ns;
    msb = 63u - (unsigned)__builtin_clzll(ns);
    return (msb - 2) * 8 + (unsigned)((ns >> (msb - 3)) & 7);
}

/* The upper bound of a bucket, in ns. */
static uint64_t bucket_high(unsigned idx)
{
    unsigned msb, sub;
    if (idx < 8)
        return idx;
    msb = idx / 8 + 2;
    sub = idx % 8;
    return ((8ull + sub + 1) << (msb - 3)) - 1;
}

/* single writer: relaxed load + relaxed store, readers may see it late */
static void bump(_Atomic uint64_t *c, uint64_t n)
{
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    atomic_store_explicit(c, v + n, memory_order_relaxed);
}

void stats_record(stats_thread *t, unsigned cmd, uint64_t ns, int failed)
{
    if (t == NULL || cmd >= STATS_COMMANDS_MAX)
        return;
    bump(&t->calls[cmd], 1);
    if (failed)
        bump(&t->errors[cmd], 1);
    bump(&t->hist[cmd][bucket_of(ns)], 1);
}

void stats_add_global(_Atomic uint64_t *c, uint64_t n)
{
    /* relaxed: a statistic, orders nothing */
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

uint64_t stats_get(const _Atomic uint64_t *c)
{
    /* relaxed: a statistic, orders nothing */
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

static stats_thread *slot(size_t i)
{
    /* acquire: pairs with the release in stats_thread_new */
    return atomic_load_explicit(&g_threads[i], memory_order_acquire);
}

uint64_t stats_calls(unsigned cmd)
{
    uint64_t s = 0;
    for (size_t i = 0; i < STATS_THREADS_MAX && cmd < STATS_COMMANDS_MAX; i++) {
        stats_thread *t = slot(i);
        if (t)
            s += stats_get(&t->calls[cmd]);
    }
    return s;
}

uint64_t stats_errors(unsigned cmd)
{
    uint64_t s = 0;
    for (size_t i = 0; i < STATS_THREADS_MAX && cmd < STATS_COMMANDS_MAX; i++) {
        stats_thread *t = slot(i);
        if (t)
            s += stats_get(&t->errors[cmd]);
    }
    return s;
}

uint64_t stats_quantile_ns(unsigned cmd, double q)
{
    static const size_t nb = STATS_HIST_BUCKETS;
    uint64_t sum[STATS_HIST_BUCKETS] = {0};
    uint64_t total = 0, want, acc = 0;
    if (cmd >= STATS_COMMANDS_MAX)
        return 0;
    for (size_t i = 0; i < STATS_THREADS_MAX; i++) {
        stats_thread *t = slot(i);
        if (t == NULL)
            continue;
        for (size_t b = 0; b < nb; b++) {
            uint64_t v = stats_get(&t->hist[cmd][b]);
            sum[b] += v;
            total += v;
        }
    }
    if (total == 0)
        return 0;
    want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (size_t b = 0; b < nb; b++) {
        acc += sum[b];
        if (acc > want)
            return bucket_high((unsigned)b);
    }
    return bucket_high((unsigned)nb - 1);
}
