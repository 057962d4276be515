/*
 * bench_tenants.c — what tenants cost (docs/TENANTS.md):
 *   1. the hot adjust row (bench_levels' method: every thread adjusts one
 *      level by +1/-1, no floor) in a tenant of a set with 1 tenant and of
 *      a set with 1,000 (999 idle, the shared background thread running);
 *      the ratio should be >= 0.9;
 *   2. the shared background pass: ns per idle tenant per tick;
 *   3. memory per empty tenant: RSS and table bytes before and after
 *      creating 1,000 empty tenants, in memory and on a data directory;
 *   4. isolation: tenant B's reads (inv_level_get over a few hundred
 *      levels) alone, and while tenant A runs a flash sale (floored
 *      adjusts on one level from another thread); the ratio, and as
 *      controls the same reads beside a thread that touches no engine
 *      (plain CPU work; a 16-byte CAS loop): on a machine with few cores
 *      any second busy thread costs the reader, and the sale should cost
 *      no more than that.
 * Each rate is the best of BENCH_ROUNDS measurements of BENCH_SECONDS.
 * Knobs: BENCH_SECONDS (0.5), BENCH_ROUNDS (3), BENCH_TENANTS (1000).
 */
#include "bench_util.h"

#include "engine.h"
#include "invcore.h"

#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>

#define HOT_ITEM 1
#define HOT_LOC 10
#define READ_LEVELS 300 /* tenant B's levels in the isolation row */
#define TICK_PASSES 200 /* background passes timed for the tick cost */
#define SALE_RESTOCK_EVERY 1000 /* the flash sale's restock period (ops) */
#define RM_FDS 16

/* W_SPIN: plain CPU work touching no engine (the control: what a second
 * busy thread costs on this machine at all). */
/* W_LOOKUP: inv_tenant_get + inv_tenant_put of the hot tenant by name. */
typedef enum { W_NONE, W_ADJUST, W_READ, W_SALE, W_SPIN, W_CAS, W_LOOKUP } work_kind;

#define HOT_TENANT "hot000000"

/* One cache line (or more) each: workers sit side by side in an array, and
 * a field one writes must not share a line with another's (false sharing
 * between the measured reader and the side worker would be charged to the
 * engine). */
typedef struct {
    _Alignas(64) inv_engine *e;
    inv_tenants *ts; /* W_LOOKUP */
    work_kind kind;
    bench_clock clk;
    _Atomic int *stop; /* W_SALE runs until set (NULL: by the clock) */
    uint64_t ops, errors;
    uint64_t elapsed_ns;
    int64_t sink;
} worker;

static int one_op(worker *w, uint64_t k)
{
    inv_level lv;
    int rc;
    if (w->kind == W_CAS) {
        /* A 16-byte locked CAS on the worker's own line, as a level's. */
        static _Alignas(64) __thread unsigned __int128 word;
        unsigned __int128 old = word;
        (void)__sync_val_compare_and_swap(&word, old, old + 1);
        return INV_OK;
    }
    if (w->kind == W_LOOKUP) {
        inv_tenant *t;
        rc = inv_tenant_get(w->ts, HOT_TENANT, strlen(HOT_TENANT), &t);
        inv_tenant_put(t);
        return rc;
    }
    if (w->kind == W_SPIN) {
        w->sink = w->sink * 6364136223846793005LL + (int64_t)k;
        return INV_OK;
    }
    if (w->kind == W_READ) {
        uint64_t i = k % READ_LEVELS;
        rc = inv_level_get(w->e, HOT_ITEM + i, HOT_LOC, &lv);
    } else if (w->kind == W_SALE) {
        int64_t d = (k % SALE_RESTOCK_EVERY) == SALE_RESTOCK_EVERY - 1 ? SALE_RESTOCK_EVERY : -1;
        rc = inv_level_adjust(w->e, HOT_ITEM, HOT_LOC, d, 0, &lv);
        if (rc == INV_EINSUFFICIENT)
            rc = INV_OK;
    } else {
        rc = inv_level_adjust(w->e, HOT_ITEM, HOT_LOC, (k & 1) ? -1 : 1, INV_NO_FLOOR, &lv);
    }
    if (rc == INV_OK)
        w->sink += lv.available;
    return rc;
}

static void work_main(void *arg)
{
    worker *w = arg;
    uint64_t done = 0, chunk, k = 0, errors = 0;
    uint64_t t0 = bench_start(&w->clk);
    for (;;) {
        if (w->stop)
            /* relaxed: a stop flag, polled. */
            chunk = atomic_load_explicit(w->stop, memory_order_relaxed) ? 0 : BENCH_CHUNK_OPS;
        else
            chunk = bench_next_chunk(&w->clk, done);
        if (chunk == 0)
            break;
        for (uint64_t i = 0; i < chunk; i++, k++)
            errors += one_op(w, k) != INV_OK; /* a local: no store per op */
        done += chunk;
    }
    w->elapsed_ns = bench_now_ns() - t0;
    w->ops = done;
    w->errors = errors;
}

/* Runs n workers of kind on e (plus, unless side is W_NONE, one side
 * worker of that kind on side_e until they finish); the rate of the n, in
 * ops/s. */
static inv_tenants *lookup_set; /* W_LOOKUP workers' set */

static double measure(inv_engine *e, work_kind kind, unsigned n, work_kind side, inv_engine *side_e,
                      double seconds)
{
    worker w[BENCH_THREADS_MAX];
    _Atomic int stop = 0;
    bool sale = side != W_NONE;
    unsigned total = n + (sale ? 1 : 0);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, total);
    for (unsigned i = 0; i < total; i++) {
        bool s = i == n;
        w[i] = (worker){.e = s ? side_e : e,
                        .ts = lookup_set,
                        .kind = s ? side : kind,
                        .stop = s ? &stop : NULL};
        w[i].clk = (bench_clock){.seconds = seconds, .start = &start};
    }
    /* The sale worker stops when the measured ones are done: run it on a
     * thread of its own so bench_spawn's join covers only the measured. */
    pthread_t sale_tid;
    bench_thread_start sale_ts = {work_main, &w[n], -1, false};
    if (sale && pthread_create(&sale_tid, NULL, bench_thread_main_, &sale_ts) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    if (bench_spawn(n, work_main, w, sizeof w[0]) < 0) {
        fprintf(stderr, "bench_spawn failed\n");
        exit(1);
    }
    /* relaxed: the sale worker only polls it. */
    atomic_store_explicit(&stop, 1, memory_order_relaxed);
    if (sale)
        pthread_join(sale_tid, NULL);
    pthread_barrier_destroy(&start);
    double rate = 0;
    for (unsigned i = 0; i < total; i++) {
        if (w[i].errors) {
            fprintf(stderr, "CHECK FAILED: %" PRIu64 " errors in worker %u\n", w[i].errors, i);
            exit(1);
        }
        if (i < n)
            rate += (double)w[i].ops * 1e9 / (double)w[i].elapsed_ns;
    }
    return rate;
}

static double best_of(inv_engine *e, work_kind kind, unsigned n, work_kind side, inv_engine *side_e,
                      double seconds, uint64_t rounds)
{
    double best = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        double v = measure(e, kind, n, side, side_e, seconds);
        best = v > best ? v : best;
    }
    return best;
}

static inv_engine *engine_of(inv_tenants *ts, const char *name)
{
    inv_tenant *t;
    if (inv_tenant_get(ts, name, strlen(name), &t) != INV_OK) {
        fprintf(stderr, "tenant %s missing\n", name);
        exit(1);
    }
    inv_engine *e = inv_tenant_engine(t);
    inv_tenant_put(t); /* the set keeps it open: nobody drops it here */
    return e;
}

/* n levels (items HOT_ITEM..) at HOT_LOC with qty each. */
static void stock(inv_engine *e, size_t n, int64_t qty)
{
    int rc = inv_location_put(e, HOT_LOC, NULL);
    for (size_t i = 0; rc == INV_OK && i < n; i++) {
        rc = inv_item_put(e, HOT_ITEM + i, NULL);
        if (rc == INV_OK)
            rc = inv_level_set(e, HOT_ITEM + i, HOT_LOC, qty, 0, NULL);
    }
    if (rc != INV_OK) {
        fprintf(stderr, "stock: %s\n", inv_strerror(rc));
        exit(1);
    }
}

static void create_many(inv_tenants *ts, uint64_t n, const char *prefix)
{
    char name[INV_TENANT_NAME_MAX + 1];
    for (uint64_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%06" PRIu64, prefix, i);
        int rc = inv_tenant_create(ts, name, strlen(name));
        if (rc != INV_OK) {
            fprintf(stderr, "create %s: %s\n", name, inv_strerror(rc));
            exit(1);
        }
    }
}

static void drop_many(inv_tenants *ts, uint64_t n, const char *prefix)
{
    char name[INV_TENANT_NAME_MAX + 1];
    for (uint64_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%06" PRIu64, prefix, i);
        int rc = inv_tenant_drop(ts, name, strlen(name), false);
        if (rc != INV_OK) {
            fprintf(stderr, "drop %s: %s\n", name, inv_strerror(rc));
            exit(1);
        }
    }
}

static inv_tenants *open_set(const char *dir)
{
    inv_tenants *ts;
    inv_config cfg = {.data_dir = dir, .fsync_policy = INV_FSYNC_INTERVAL};
    int rc = inv_tenants_open(&ts, &cfg, NULL);
    if (rc != INV_OK) {
        fprintf(stderr, "inv_tenants_open: %s\n", inv_strerror(rc));
        exit(1);
    }
    return ts;
}

/* ---- 1. hot adjust with 1 and with N tenants -------------------------------- */

static void row_hot_adjust(double seconds, uint64_t rounds, uint64_t n_tenants)
{
    inv_tenants *ts = open_set(NULL);
    create_many(ts, 1, "hot");
    inv_engine *e = engine_of(ts, HOT_TENANT);
    stock(e, 1, 0);
    unsigned max_thr = (unsigned)sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
    double one[2] = {0}, many[2] = {0};
    /* Interleaved rounds (1 tenant, then the idle ones created, measured
     * and dropped again): load from other work drifts less between the
     * two figures than between two blocks of rounds. */
    for (uint64_t r = 0; r < rounds; r++) {
        for (unsigned thr = 1; thr <= max_thr; thr++)
            one[thr - 1] = fmax(one[thr - 1], measure(e, W_ADJUST, thr, W_NONE, NULL, seconds));
        create_many(ts, n_tenants - 1, "idle");
        for (unsigned thr = 1; thr <= max_thr; thr++)
            many[thr - 1] = fmax(many[thr - 1], measure(e, W_ADJUST, thr, W_NONE, NULL, seconds));
        if (r + 1 < rounds)
            drop_many(ts, n_tenants - 1, "idle");
    }
    char a[24], b[24];
    for (unsigned thr = 1; thr <= max_thr; thr++)
        printf("hot adjust    %u thr  1 tenant %10s/s  %" PRIu64 " tenants %10s/s  ratio %.2f"
               " (target >= 0.90)\n",
               thr, bench_fmt_rate(a, sizeof a, one[thr - 1]), n_tenants,
               bench_fmt_rate(b, sizeof b, many[thr - 1]), many[thr - 1] / one[thr - 1]);
    /* What a per-request lookup by name would cost (one shared count). */
    lookup_set = ts;
    for (unsigned thr = 1; thr <= max_thr; thr++) {
        double r = best_of(NULL, W_LOOKUP, thr, W_NONE, NULL, seconds, rounds);
        printf("tenant get+put %u thr  %10s/s  (%.0f ns each per thread, %" PRIu64 " tenants)\n",
               thr, bench_fmt_rate(a, sizeof a, r), 1e9 * thr / r, n_tenants);
    }
    lookup_set = NULL;
    inv_tenants_close(ts);
}

/* ---- 2. the shared background pass per idle tenant ---------------------------- */

static void row_tick_cost(uint64_t n_tenants)
{
    inv_engine **v = calloc(n_tenants, sizeof *v);
    engine_tuning tuning = {.no_background = true};
    for (uint64_t i = 0; i < n_tenants; i++)
        if (!v || engine_open_tuned(&v[i], &(inv_config){0}, &tuning) != INV_OK) {
            fprintf(stderr, "engine_open_tuned failed\n");
            exit(1);
        }
    /* Simulated wall time, one period per pass (as the shared thread
     * sees it); the first pass (each engine's first sweep covers its whole
     * hold wheel) is a warm-up outside the timing. */
    uint32_t period_ms = engine_background_period_ms(v[0]);
    int64_t now_ms = (int64_t)(bench_now_ns() / 1000000) + 1;
    for (uint64_t i = 0; i < n_tenants; i++)
        engine_background_tick(v[i], now_ms);
    uint64_t t0 = bench_now_ns();
    for (int p = 0; p < TICK_PASSES; p++) {
        now_ms += period_ms;
        for (uint64_t i = 0; i < n_tenants; i++)
            engine_background_tick(v[i], now_ms);
    }
    double ns = (double)(bench_now_ns() - t0) / TICK_PASSES / (double)n_tenants;
    printf("background tick  %.0f ns per idle tenant per pass (%" PRIu64 " tenants, a pass "
           "every %u ms: %.3f%% of one core)\n",
           ns, n_tenants, period_ms, ns * (double)n_tenants / (period_ms * 1e6) * 100);
    for (uint64_t i = 0; i < n_tenants; i++)
        inv_close(v[i]);
    free(v);
}

/* ---- 3. memory per empty tenant ------------------------------------------------- */

typedef struct {
    uint64_t bytes;
} table_sum;

static int add_table_bytes(void *arg, inv_tenant *t)
{
    inv_stats st;
    if (inv_stats_get(inv_tenant_engine(t), &st) == INV_OK)
        ((table_sum *)arg)->bytes += st.table_bytes;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void row_memory(const char *mode, const char *dir, uint64_t n_tenants)
{
    inv_tenants *ts = open_set(dir);
    table_sum before = {0}, after = {0};
    inv_tenants_each(ts, add_table_bytes, &before);
    uint64_t rss0 = bench_rss_bytes();
    uint64_t t0 = bench_now_ns();
    create_many(ts, n_tenants, "empty");
    double create_us = (double)(bench_now_ns() - t0) / 1e3 / (double)n_tenants;
    uint64_t rss1 = bench_rss_bytes();
    inv_tenants_each(ts, add_table_bytes, &after);
    printf("memory %-8s %" PRIu64 " empty tenants: RSS %.1f KiB each, table bytes %.1f KiB each,"
           " create %.0f us each\n",
           mode, n_tenants, ((double)rss1 - (double)rss0) / 1024.0 / (double)n_tenants,
           (double)(after.bytes - before.bytes) / 1024.0 / (double)n_tenants, create_us);
    inv_tenants_close(ts);
    if (dir)
        nftw(dir, rm_one, RM_FDS, FTW_DEPTH | FTW_PHYS);
}

/* ---- 4. isolation ------------------------------------------------------------- */

static void row_isolation(double seconds, uint64_t rounds)
{
    inv_tenants *ts = open_set(NULL);
    create_many(ts, 1, "sale");
    create_many(ts, 1, "reader");
    inv_engine *a = engine_of(ts, "sale000000"), *b = engine_of(ts, "reader000000");
    stock(a, 1, SALE_RESTOCK_EVERY);
    stock(b, READ_LEVELS, 5);
    /* Interleaved rounds: a machine shared with other work drifts less
     * between the four figures than between four blocks of rounds. */
    double alone = 0, during = 0, spin = 0, cas = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        alone = fmax(alone, measure(b, W_READ, 1, W_NONE, NULL, seconds));
        during = fmax(during, measure(b, W_READ, 1, W_SALE, a, seconds));
        spin = fmax(spin, measure(b, W_READ, 1, W_SPIN, NULL, seconds));
        cas = fmax(cas, measure(b, W_READ, 1, W_CAS, NULL, seconds));
    }
    char x[24], y[24], z[24];
    printf("isolation  tenant B reads (%d levels, 1 thr) alone %10s/s  during A's flash sale "
           "%10s/s  ratio %.2f  (control: during a CPU-only thread %10s/s, ratio %.2f; during a "
           "16-byte CAS loop touching no engine %.2f; sale / CPU-only %.2f)\n",
           READ_LEVELS, bench_fmt_rate(x, sizeof x, alone), bench_fmt_rate(y, sizeof y, during),
           during / alone, bench_fmt_rate(z, sizeof z, spin), spin / alone, cas / alone,
           during / spin);
    inv_tenants_close(ts);
}

int main(void)
{
    double seconds = bench_env_double("BENCH_SECONDS", 0.5);
    uint64_t rounds = bench_env_u64("BENCH_ROUNDS", 3);
    uint64_t n_tenants = bench_env_u64("BENCH_TENANTS", 1000);
    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    printf("bench_tenants: %s, %ld cpus, best of %" PRIu64 " x %.2f s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), rounds, seconds);
    /* Memory first: later rows free memory the allocator may return,
     * which would blur the RSS differences. */
    row_memory("memory", NULL, n_tenants);
    char dir[] = "/tmp/invcore-bench-tenants-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    row_memory("data-dir", dir, n_tenants);
    row_hot_adjust(seconds, rounds, n_tenants);
    row_tick_cost(n_tenants);
    row_isolation(seconds, rounds);
    return 0;
}
