/*
 * stats.c — per-thread counters and log-linear latency histograms.
 *
 * Invariants: a registered block is never freed while the process may read
 * it (blocks are registered in a fixed array of STATS_THREADS_MAX slots and
 * a freed slot is emptied first); a histogram bucket index is always
 * < STATS_HIST_BUCKETS (latencies are clamped to 2^40 ns); an ops/s mark
 * names its window, so a reader never takes an old mark for a new one
 * (until 2^24 windows, about 200 days, wrap it).
 */
#include "alloc.h"
#include "server/stats.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if !defined(INV_SANITIZE)
#include <jemalloc/jemalloc.h>
#endif

static _Atomic(stats_thread *) g_threads[STATS_THREADS_MAX];
static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;

stats_thread *stats_thread_new(void)
{
    stats_thread *t = inv_calloc(1, sizeof *t);
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
    if (ns >= (1ull << 40))
        ns = (1ull << 40) - 1;
    if (ns < 8)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    return (msb - 2) * 8 + (unsigned)((ns >> (msb - 3)) & 7);
}

/* The upper bound of a bucket, in ns. */
static uint64_t bucket_high(unsigned idx)
{
    if (idx < 8)
        return idx;
    unsigned msb = idx / 8 + 2, sub = idx % 8;
    return ((8ull + sub + 1) << (msb - 3)) - 1;
}

/* single writer: relaxed load + relaxed store, readers may see it late */
static void bump(_Atomic uint64_t *c, uint64_t n)
{
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    atomic_store_explicit(c, v + n, memory_order_relaxed);
}

/* ---- ops per second: window marks --------------------------------------- */

#define MARK_COUNT_BITS 40u
#define MARK_COUNT_MASK ((1ull << MARK_COUNT_BITS) - 1)
#define MARK_WINDOW_MASK ((1ull << (64u - MARK_COUNT_BITS)) - 1)

static uint64_t mark_pack(uint64_t window, uint64_t count)
{
    return (window & MARK_WINDOW_MASK) << MARK_COUNT_BITS | (count & MARK_COUNT_MASK);
}

static bool mark_in(uint64_t mark, uint64_t window)
{
    return (mark >> MARK_COUNT_BITS) == (window & MARK_WINDOW_MASK);
}

static uint64_t thread_calls(stats_thread *t)
{
    uint64_t s = 0;
    for (size_t c = 0; c < STATS_COMMANDS_MAX; c++)
        s += stats_get(&t->calls[c]);
    return s;
}

/* The first command of a new window: the old current mark becomes the
 * previous one. Once per window per thread. */
static void mark_window(stats_thread *t, uint64_t window)
{
    /* relaxed: only the owner writes the marks */
    uint64_t cur = atomic_load_explicit(&t->mark_cur, memory_order_relaxed);
    t->window = window;
    atomic_store_explicit(&t->mark_prev, cur, memory_order_relaxed);
    /* release: a reader that sees this mark also sees the prev above */
    atomic_store_explicit(&t->mark_cur, mark_pack(window, thread_calls(t)), memory_order_release);
}

/* Commands t ran in window w (0 if it has no marks for it). */
static uint64_t thread_window_count(stats_thread *t, uint64_t w)
{
    /* acquire: pairs with the release in mark_window (prev is as new) */
    uint64_t cur = atomic_load_explicit(&t->mark_cur, memory_order_acquire);
    /* relaxed: ordered after the acquire above */
    uint64_t prev = atomic_load_explicit(&t->mark_prev, memory_order_relaxed);
    if (mark_in(cur, w + 1))
        return mark_in(prev, w) ? ((cur - prev) & MARK_COUNT_MASK) : 0;
    if (mark_in(cur, w))
        return (thread_calls(t) - cur) & MARK_COUNT_MASK;
    return 0;
}

/* Hot path: a handful of relaxed stores and one compare; no lock. */
void stats_record(stats_thread *t, unsigned cmd, uint64_t start_ns, uint64_t end_ns, int failed)
{
    if (t == NULL || cmd >= STATS_COMMANDS_MAX)
        return;
    uint64_t ns = end_ns >= start_ns ? end_ns - start_ns : 0;
    uint64_t window = end_ns >> STATS_WINDOW_SHIFT;
    if (window != t->window)
        mark_window(t, window);
    bump(&t->calls[cmd], 1);
    bump(&t->ns[cmd], ns);
    if (failed)
        bump(&t->errors[cmd], 1);
    bump(&t->hist[cmd][bucket_of(ns)], 1);
}

void stats_reject(stats_thread *t, unsigned cmd)
{
    if (t == NULL || cmd >= STATS_COMMANDS_MAX)
        return;
    bump(&t->rejected[cmd], 1);
}

void stats_add_global(_Atomic uint64_t *c, uint64_t n)
{
    /* relaxed: a statistic, orders nothing */
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void stats_sub_global(_Atomic uint64_t *c, uint64_t n)
{
    /* relaxed: a statistic or a gate whose raise is a CAS that needs no
     * ordering with what the lowering thread did (stats_admit) */
    uint64_t was = atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
    assert(was >= n); /* every release follows its charge */
    (void)was;
}

bool stats_admit(_Atomic uint64_t *c, uint64_t limit)
{
    /* relaxed: the count is the only shared state; a failed CAS reloads
     * it, and nothing else is published through it */
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    do {
        if (v >= limit)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(c, &v, v + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    assert(v < limit); /* raised to at most limit */
    return true;
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

static const _Atomic uint64_t *counter_of(const stats_thread *t, stats_counter which, unsigned cmd)
{
    switch (which) {
    case STATS_CALLS:
        return &t->calls[cmd];
    case STATS_ERRORS:
        return &t->errors[cmd];
    case STATS_REJECTED:
        return &t->rejected[cmd];
    case STATS_NS:
        return &t->ns[cmd];
    }
    return &t->calls[cmd];
}

uint64_t stats_sum(stats_counter which, unsigned cmd)
{
    uint64_t s = 0;
    for (size_t i = 0; i < STATS_THREADS_MAX && cmd < STATS_COMMANDS_MAX; i++) {
        stats_thread *t = slot(i);
        if (t)
            s += stats_get(counter_of(t, which, cmd));
    }
    return s;
}

uint64_t stats_calls(unsigned cmd)
{
    return stats_sum(STATS_CALLS, cmd);
}

uint64_t stats_errors(unsigned cmd)
{
    return stats_sum(STATS_ERRORS, cmd);
}

uint64_t stats_ops_per_sec(uint64_t now_ns)
{
    uint64_t w = (now_ns >> STATS_WINDOW_SHIFT) - 1, n = 0;
    for (size_t i = 0; i < STATS_THREADS_MAX; i++) {
        stats_thread *t = slot(i);
        if (t)
            n += thread_window_count(t, w);
    }
    /* n commands in 2^STATS_WINDOW_SHIFT ns */
    return (uint64_t)((double)n * 1e9 / (double)(1ull << STATS_WINDOW_SHIFT));
}

uint64_t stats_quantile_ns(unsigned cmd, double q)
{
    static const size_t nb = STATS_HIST_BUCKETS;
    uint64_t sum[STATS_HIST_BUCKETS] = {0};
    uint64_t total = 0;
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
    uint64_t want = (uint64_t)(q * (double)total), acc = 0;
    if (want >= total)
        want = total - 1;
    for (size_t b = 0; b < nb; b++) {
        acc += sum[b];
        if (acc > want)
            return bucket_high((unsigned)b);
    }
    return bucket_high((unsigned)nb - 1);
}

/* ---- process memory ------------------------------------------------------ */

static _Atomic uint64_t g_memory_peak;

/* Resident set size from /proc/self/statm (0 if unreadable). */
static uint64_t rss_bytes(void)
{
    unsigned long long size = 0, resident = 0;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

#if defined(INV_SANITIZE)
/* The sanitizer runtimes own malloc and count what is allocated. */
size_t __sanitizer_get_current_allocated_bytes(void);

static void allocator_read(stats_memory_info *m)
{
    m->used = (uint64_t)__sanitizer_get_current_allocated_bytes();
    m->active = m->used;
    m->resident = m->rss;
    m->allocator = "libc";
}
#else
#define STATS_STR2(x) #x
#define STATS_STR(x) STATS_STR2(x)

static uint64_t jemalloc_stat(const char *name)
{
    size_t v = 0, len = sizeof v;
    if (mallctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return (uint64_t)v;
}

static void allocator_read(stats_memory_info *m)
{
    /* jemalloc caches its statistics: advancing the epoch refreshes them */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    (void)mallctl("epoch", &epoch, &len, &epoch, len);
    m->used = jemalloc_stat("stats.allocated");
    m->active = jemalloc_stat("stats.active");
    m->resident = jemalloc_stat("stats.resident");
    m->allocator = "jemalloc-" STATS_STR(JEMALLOC_VERSION_MAJOR) "." STATS_STR(
        JEMALLOC_VERSION_MINOR) "." STATS_STR(JEMALLOC_VERSION_BUGFIX);
}
#endif

void stats_memory(stats_memory_info *out)
{
    out->rss = rss_bytes();
    allocator_read(out);
    /* relaxed: a statistic; the CAS keeps the maximum */
    uint64_t peak = atomic_load_explicit(&g_memory_peak, memory_order_relaxed);
    while (out->used > peak &&
           !atomic_compare_exchange_weak_explicit(&g_memory_peak, &peak, out->used,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    out->peak = out->used > peak ? out->used : peak;
}
