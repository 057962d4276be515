/*
 * test_util.h — helpers shared by the Criterion suites in tests/.
 *
 *  - tu_scale() / tu_iters(): INVCORE_STRESS_SCALE (1 in release, 4 under
 *    ASan, 8 under TSan) divides every iteration count, so one suite fits
 *    every build.
 *  - tu_rng: a per-thread xorshift64* generator (never shared: no atomics).
 *  - tu_run_threads(): starts N threads behind one barrier and joins them.
 *  - TU_CHECK(): an assertion usable from any thread. Criterion's cr_assert
 *    may only run on the test's own thread, so worker threads count their
 *    failures here (keeping the first message) and the test thread asserts
 *    tu_failures() == 0 after joining (tu_assert_no_failures()).
 *  - tu_open_engine(): an in-memory engine with N items and M locations
 *    (ids from tu_item_id() / tu_loc_id()), for level tests;
 *    tu_open_dir(): an engine on a data directory; tu_put_item(),
 *    tu_set_level(), tu_level_of(), tu_stats_of(): one call, asserted.
 *  - tu_deadline_*: bounded waits (a spin that gives up after a time);
 *    clocks and sleeps are core/clock.h's.
 *  - tu_tmpdir() / tu_remove_tree() / tu_copy_file(): scratch directories
 *    under /tmp for the suites that write files.
 *
 * Everything is static inline so a suite that uses part of it still builds
 * with -Wall -Wextra -Werror -Wmissing-prototypes.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fault.h"
#include "invcore.h"

#define TU_THREADS_MAX 64 /* threads one tu_run_threads() may start */
#define TU_SCALE_MAX 1024 /* larger INVCORE_STRESS_SCALE values are clamped */
#define TU_MSG_MAX 512 /* bytes of the first failure message kept */
#define TU_TREE_FDS 16 /* descriptors tu_remove_tree's walk may hold */

/* ---- time and bounded waits ----------------------------------------- */

static inline uint64_t tu_now_ns(void)
{
    return clock_mono_ns();
}

static inline uint64_t tu_deadline_ms(uint64_t ms)
{
    return tu_now_ns() + ms * 1000000ull;
}
static inline bool tu_past(uint64_t deadline_ns)
{
    return tu_now_ns() >= deadline_ns;
}

static inline void tu_sleep_ms(unsigned ms)
{
    clock_sleep_ms(ms);
}

/* Waits (yielding) until *flag >= value or timeout_ms passed; true if seen. */
static inline bool tu_wait_at_least(_Atomic int *flag, int value, unsigned timeout_ms)
{
    uint64_t deadline = tu_deadline_ms(timeout_ms);
    /* acquire: what the setter wrote before raising the flag is visible. */
    while (atomic_load_explicit(flag, memory_order_acquire) < value) {
        if (tu_past(deadline))
            return false;
        sched_yield();
    }
    return true;
}

/* ---- INVCORE_STRESS_SCALE ------------------------------------------- */

static inline uint64_t tu_scale(void)
{
    const char *s = getenv("INVCORE_STRESS_SCALE");
    if (!s || !*s)
        return 1;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || v == 0)
        return 1;
    return v > TU_SCALE_MAX ? TU_SCALE_MAX : (uint64_t)v;
}

/* n divided by the stress scale, at least min_n. */
static inline uint64_t tu_iters_min(uint64_t n, uint64_t min_n)
{
    uint64_t v = n / tu_scale();
    return v < min_n ? min_n : v;
}

static inline uint64_t tu_iters(uint64_t n)
{
    return tu_iters_min(n, 1);
}

/* ---- per-thread random numbers (xorshift64*) ------------------------ */

typedef struct {
    uint64_t s;
} tu_rng;

static inline tu_rng tu_rng_seed(uint64_t seed)
{
    /* splitmix64 step: distinct small seeds give unrelated streams. */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (tu_rng){z ? z : 0x2545f4914f6cdd1dull};
}

static inline uint64_t tu_rng_next(tu_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n) (n > 0), by the multiply-shift reduction. */
static inline uint64_t tu_rng_below(tu_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)tu_rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline int64_t tu_rng_range(tu_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)tu_rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* ---- failures from any thread --------------------------------------- */

static _Atomic uint64_t tu_failure_count;
static _Atomic int tu_failure_msg_taken;
static char tu_failure_msg[TU_MSG_MAX];

static inline void tu_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void tu_fail_at(const char *file, int line, const char *fmt, ...)
{
    /* relaxed: a count read by the test thread after joining. */
    atomic_fetch_add_explicit(&tu_failure_count, 1, memory_order_relaxed);
    int expected = 0;
    /* relaxed: only decides who writes the message; the join publishes it. */
    if (atomic_compare_exchange_strong_explicit(&tu_failure_msg_taken, &expected, 1,
                                                memory_order_relaxed, memory_order_relaxed)) {
        int n = snprintf(tu_failure_msg, sizeof tu_failure_msg, "%s:%d: ", file, line);
        if (n < 0)
            n = 0;
        if ((size_t)n < sizeof tu_failure_msg) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(tu_failure_msg + n, sizeof tu_failure_msg - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
}

/* An assertion for worker threads: counts a failure, never aborts. */
#define TU_CHECK(cond, ...)                              \
    do {                                                 \
        if (!(cond))                                     \
            tu_fail_at(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

static inline uint64_t tu_failures(void)
{
    /* relaxed: read after the threads were joined. */
    return atomic_load_explicit(&tu_failure_count, memory_order_relaxed);
}

/* On the test thread, after joining the workers. */
#define tu_assert_no_failures()                                                    \
    cr_assert_eq(tu_failures(), 0, "%llu failure(s) in worker threads; first: %s", \
                 (unsigned long long)tu_failures(), tu_failure_msg)

/* ---- threads -------------------------------------------------------- */

typedef void (*tu_thread_fn)(void *arg, size_t index);

typedef struct {
    tu_thread_fn fn;
    void *arg;
    size_t index;
    pthread_barrier_t *start;
} tu_thread_ctx;

static inline void *tu_thread_main(void *p)
{
    tu_thread_ctx *c = p;
    pthread_barrier_wait(c->start);
    c->fn(c->arg, c->index);
    return NULL;
}

/* Runs fn(arg, i) for i in [0, n) on n threads released together; returns
 * once all have finished. Asserts (on the test thread) that they started. */
static inline void tu_run_threads(size_t n, tu_thread_fn fn, void *arg)
{
    cr_assert(n >= 1 && n <= TU_THREADS_MAX, "thread count %zu out of range", n);
    pthread_t tids[TU_THREADS_MAX];
    tu_thread_ctx ctx[TU_THREADS_MAX];
    pthread_barrier_t start;
    cr_assert_eq(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (size_t i = 0; i < n; i++) {
        ctx[i] = (tu_thread_ctx){fn, arg, i, &start};
        cr_assert_eq(pthread_create(&tids[i], NULL, tu_thread_main, &ctx[i]), 0,
                     "pthread_create %zu", i);
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&start);
}

/* ---- scratch directories -------------------------------------------- */

/* Creates a fresh directory /tmp/invcore-<name>-XXXXXX; its path in out. */
static inline void tu_tmpdir(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "/tmp/invcore-%s-XXXXXX", name);
    cr_assert(n > 0 && (size_t)n < cap, "tmpdir name %s too long", name);
    cr_assert_not_null(mkdtemp(out), "mkdtemp: %s", strerror(errno));
}

static inline int tu_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes dir and everything below it (as rm -rf: a missing dir is fine).
 * 0, or -1 if something could not be removed. */
static inline int tu_remove_tree(const char *dir)
{
    int rc = nftw(dir, tu_remove_one, TU_TREE_FDS, FTW_DEPTH | FTW_PHYS);
    return rc != 0 && errno == ENOENT ? 0 : rc;
}

static inline void tu_copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    cr_assert(a && b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
}

/* ---- engines -------------------------------------------------------- */

/* inv_open, asserted (fields cfg leaves zero take their defaults). */
static inline inv_engine *tu_open_config(const inv_config *cfg)
{
    inv_engine *e = NULL;
    int rc = inv_open(&e, cfg);
    cr_assert_eq(rc, INV_OK, "inv_open(%s): %s", cfg->data_dir ? cfg->data_dir : "(memory)",
                 inv_strerror(rc));
    cr_assert_not_null(e);
    return e;
}

/* Spread-out ids so that tests exercise large and small values alike. */
static inline uint64_t tu_item_id(size_t i)
{
    return 1000 + (uint64_t)i * 7;
}
static inline uint64_t tu_loc_id(size_t j)
{
    return 50 + (uint64_t)j * 3;
}

/* An in-memory engine (levels_capacity as given: 0 picks the small default)
 * with items tu_item_id(0..n_items-1) and locations tu_loc_id(0..n_locs-1),
 * all with default fields (tracked). */
static inline inv_engine *tu_open_engine(size_t n_items, size_t n_locs, size_t levels_capacity)
{
    inv_engine *e = tu_open_config(&(inv_config){.levels_capacity = levels_capacity});
    int rc;
    for (size_t j = 0; j < n_locs; j++) {
        rc = inv_location_put(e, tu_loc_id(j), NULL);
        cr_assert_eq(rc, INV_OK, "inv_location_put %zu: %s", j, inv_strerror(rc));
    }
    for (size_t i = 0; i < n_items; i++) {
        rc = inv_item_put(e, tu_item_id(i), NULL);
        cr_assert_eq(rc, INV_OK, "inv_item_put %zu: %s", i, inv_strerror(rc));
    }
    return e;
}

/* An in-memory engine whose background sweep (hold expiry) runs every
 * sweep_interval_ms. */
static inline inv_engine *tu_open_with_sweep(uint32_t sweep_interval_ms)
{
    return tu_open_config(&(inv_config){.sweep_interval_ms = sweep_interval_ms});
}

/* An engine on data directory dir (NULL: in memory) with the given fsync
 * policy. */
static inline inv_engine *tu_open_dir(const char *dir, inv_fsync_policy policy)
{
    return tu_open_config(&(inv_config){.data_dir = dir, .fsync_policy = policy});
}

/* An item with only the tracked field written. */
static inline int tu_item_put_tracked(inv_engine *e, uint64_t item, bool tracked)
{
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_ITEM_TRACKED;
    f.tracked = tracked;
    return inv_item_put(e, item, &f);
}

/* An untracked item (only the tracked field written). */
static inline int tu_item_put_untracked(inv_engine *e, uint64_t item)
{
    return tu_item_put_tracked(e, item, false);
}

/* tu_item_put_tracked, asserted. */
static inline void tu_put_item(inv_engine *e, uint64_t item, bool tracked)
{
    cr_assert_eq(tu_item_put_tracked(e, item, tracked), INV_OK, "item %" PRIu64, item);
}

/* inv_level_set without a revision check, asserted. */
static inline void tu_set_level(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty)
{
    int rc = inv_level_set(e, item, loc, qty, 0, NULL);
    cr_assert_eq(rc, INV_OK, "level (%" PRIu64 ", %" PRIu64 "): %s", item, loc, inv_strerror(rc));
}

static inline inv_level tu_level_of(inv_engine *e, uint64_t item, uint64_t loc)
{
    inv_level lv;
    memset(&lv, 0, sizeof lv);
    cr_assert_eq(inv_level_get(e, item, loc, &lv), INV_OK, "level (%" PRIu64 ", %" PRIu64 ")", item,
                 loc);
    return lv;
}

static inline inv_stats tu_stats_of(inv_engine *e)
{
    inv_stats st;
    cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    return st;
}

/* ---- test points through the fault seam (core/fault.h) ------------------- */

/* The shapes the tests' point functions have: a record type about to be
 * published (FAULT_PERSIST_BEFORE_PUBLISH), a hold's point and position
 * (FAULT_HOLD_POINT). */
typedef void (*tu_publish_fn)(uint8_t type);
typedef void (*tu_point_fn)(int point, uint64_t pos);

typedef struct {
    tu_publish_fn publish;
    tu_point_fn point;
} tu_point_ctx;

static inline int tu_point_call(void *ctx, fault_site site, uint64_t call, uint64_t arg,
                                uint64_t arg2)
{
    const tu_point_ctx *c = ctx;
    if (site == FAULT_PERSIST_BEFORE_PUBLISH)
        c->publish((uint8_t)arg);
    else
        c->point((int)arg, arg2);
    return 0; /* a point never fails its call */
}

/* Runs fn before every record is published (NULL: stops). */
static inline void tu_before_publish(tu_publish_fn fn)
{
    static tu_point_ctx ctx;
    ctx.publish = fn;
    fault_hook(FAULT_PERSIST_BEFORE_PUBLISH, fn ? tu_point_call : NULL, &ctx);
}

/* Runs fn at every hold test point (hold.h; NULL: stops). */
static inline void tu_hold_point(tu_point_fn fn)
{
    static tu_point_ctx ctx;
    ctx.point = fn;
    fault_hook(FAULT_HOLD_POINT, fn ? tu_point_call : NULL, &ctx);
}

/* Switches journal positions to publish time (persist.h; a child process
 * only: it breaks the ordering rule on purpose). */
static inline void tu_late_reserve(bool on)
{
    if (on)
        fault_fail(FAULT_PERSIST_LATE_RESERVE, 1, UINT64_MAX, EPERM);
}

#endif /* TEST_UTIL_H */
