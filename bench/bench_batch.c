/*
 * bench_batch.c — in-process throughput of a batch of 3 lines: one
 * inv_batch call with 3 INV_BATCH_LEVEL_ADJUST lines on 3 distinct levels,
 * all or nothing (what MULTI / 3 x LEVEL.ADJUST / EXEC runs in the server,
 * without the network), against a yardstick measured in the same run: the
 * same 3 adjusts as 3 separate inv_level_adjust calls (no atomicity).
 *
 * Rows: hot (every thread changes the same 3 levels) and uniform (3
 * distinct levels drawn uniformly from BENCH_BATCH_LEVELS, default 1M:
 * 256 locations x n/256 items, as bench_levels), x 1 and 2 threads. Each
 * op changes its 3 levels by +1, the next op by -1 (no floor), so stock
 * never drains. One engine serves every row (built once, in memory).
 *
 * Checks, after every measurement: no call failed, and the sum of
 * available over every level equals its start plus the successful deltas
 * (a batch adds its 3 deltas or none).
 *
 * Knobs (env): BENCH_SECONDS per run (default 0.5), BENCH_ROUNDS runs per
 * cell, the best kept (default 2: this is often a shared VM),
 * BENCH_THREADS ("1,2"), BENCH_BATCH_LEVELS (1048576).
 */
#include "bench_util.h"

#include <invcore.h>

#include <inttypes.h>
#include <stdalign.h>

#define ITEM_BASE 10000000000ull /* as bench_levels: sparse, large ids */
#define LOC_BASE 70000000000ull
#define LOCATIONS 256 /* per item; uniform index i: item i / 256, location i % 256 */
#define LINES 3 /* lines per batch */
#define STOCK_START 1000000 /* available of every level at load */
#define CHECK_EVERY 64 /* ops between two clock reads */
#define ROUNDS_MAX 100
#define LEVELS_MAX (1ull << 32) /* bench_rng_below needs n <= 2^32 */

enum { IMPL_BATCH, IMPL_SINGLE, IMPL_N };
static const char *const impl_name[IMPL_N] = {"batch", "3 adjusts"};

typedef struct {
    inv_engine *e;
    uint64_t n_levels; /* uniform: levels drawn from */
} store;

typedef struct {
    alignas(64) const store *st; /* aligned: no false sharing of results */
    bool hot;
    int impl;
    unsigned tid;
    bench_clock clk;
    uint64_t ops, errors, elapsed_ns;
    int first_error;
    int64_t net; /* successful deltas, summed over every line */
} worker;

static inline uint64_t level_item(uint64_t idx)
{
    return ITEM_BASE + idx / LOCATIONS;
}

static inline uint64_t level_loc(uint64_t idx)
{
    return LOC_BASE + idx % LOCATIONS;
}

/* The op's 3 level indexes: the first 3 levels (hot), or 3 distinct ones
 * drawn uniformly (a batch may name a level twice, but the MULTI this
 * stands for names 3 levels). */
static inline void pick_levels(const worker *w, uint64_t *rng, uint64_t idx[LINES])
{
    for (size_t i = 0; i < LINES; i++) {
        bool again;
        do {
            idx[i] = w->hot ? i : bench_rng_below(rng, w->st->n_levels);
            again = false;
            for (size_t j = 0; j < i; j++)
                again |= idx[j] == idx[i];
        } while (again);
    }
}

/* One op: the 3 adjusts as one batch or as 3 calls; INV_OK or the error. */
static inline int run_op(const worker *w, const uint64_t idx[LINES], int64_t delta,
                         int64_t *applied)
{
    *applied = 0;
    if (w->impl == IMPL_BATCH) {
        inv_batch_line lines[LINES];
        inv_batch_result res[LINES];
        memset(lines, 0, sizeof lines);
        for (size_t i = 0; i < LINES; i++) {
            lines[i].op = INV_BATCH_LEVEL_ADJUST;
            lines[i].item = level_item(idx[i]);
            lines[i].location = level_loc(idx[i]);
            lines[i].qty = delta;
            lines[i].floor = INV_NO_FLOOR;
        }
        int rc = inv_batch(w->st->e, lines, LINES, res, NULL);
        if (rc == INV_OK)
            *applied = LINES * delta;
        return rc;
    }
    int first = INV_OK;
    for (size_t i = 0; i < LINES; i++) {
        int rc = inv_level_adjust(w->st->e, level_item(idx[i]), level_loc(idx[i]), delta,
                                  INV_NO_FLOOR, NULL);
        if (rc == INV_OK)
            *applied += delta;
        else if (first == INV_OK)
            first = rc;
    }
    return first;
}

static void worker_main(void *arg)
{
    worker *w = arg;
    uint64_t rng = bench_rng_seed(w->tid), k = 0;
    uint64_t t0 = bench_start(&w->clk);
    while (bench_now_ns() < w->clk.deadline_ns) {
        for (int c = 0; c < CHECK_EVERY; c++, k++) {
            uint64_t idx[LINES];
            int64_t applied;
            pick_levels(w, &rng, idx);
            int rc = run_op(w, idx, (k & 1) ? -1 : 1, &applied);
            w->net += applied;
            if (rc != INV_OK && w->errors++ == 0)
                w->first_error = rc;
        }
    }
    w->elapsed_ns = bench_now_ns() - t0;
    w->ops = k;
}

/* ---- the engine ------------------------------------------------------- */

static int build_store(store *st, uint64_t n)
{
    inv_config cfg;
    uint64_t items = (n + LOCATIONS - 1) / LOCATIONS;
    memset(&cfg, 0, sizeof cfg);
    memset(st, 0, sizeof *st);
    st->n_levels = n;
    cfg.levels_capacity = n;
    cfg.items_capacity = items;
    cfg.locations_capacity = LOCATIONS;
    int rc = inv_open(&st->e, &cfg);
    for (uint64_t j = 0; j < LOCATIONS && rc == INV_OK; j++) {
        inv_location_fields lf;
        memset(&lf, 0, sizeof lf);
        lf.mask = INV_LOC_NAME;
        snprintf(lf.name, sizeof lf.name, "bench location %" PRIu64, j);
        rc = inv_location_put(st->e, LOC_BASE + j, &lf);
    }
    for (uint64_t i = 0; i < items && rc == INV_OK; i++) {
        inv_item_fields itf;
        memset(&itf, 0, sizeof itf);
        itf.mask = INV_ITEM_TRACKED;
        itf.tracked = true;
        rc = inv_item_put(st->e, ITEM_BASE + i, &itf);
    }
    for (uint64_t i = 0; i < n && rc == INV_OK; i++)
        rc = inv_level_set(st->e, level_item(i), level_loc(i), STOCK_START, 0, NULL);
    return rc;
}

/* Sum of available over every level; *missing counts absent ones. */
static int64_t sum_available(const store *st, uint64_t *missing)
{
    int64_t sum = 0;
    *missing = 0;
    for (uint64_t i = 0; i < st->n_levels; i++) {
        inv_level lv;
        if (inv_level_get(st->e, level_item(i), level_loc(i), &lv) == INV_OK)
            sum += lv.available;
        else
            (*missing)++;
    }
    return sum;
}

/* ---- rows ------------------------------------------------------------- */

typedef struct {
    bool hot;
    unsigned threads;
    double rate[IMPL_N]; /* ops/s (an op: 3 adjusts), the best run */
} row;

static bool failed, all_pinned = true;
static int64_t net_total; /* successful deltas of every run so far */

/* One run of one cell; keeps the best rate in r. */
static void measure(const store *st, row *r, int impl, double seconds)
{
    worker w[BENCH_THREADS_MAX];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, r->threads);
    for (unsigned t = 0; t < r->threads; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].st = st;
        w[t].hot = r->hot;
        w[t].impl = impl;
        w[t].tid = t;
        w[t].clk.seconds = seconds;
        w[t].clk.start = &barrier;
    }
    int pinned = bench_spawn(r->threads, worker_main, w, sizeof w[0]);
    pthread_barrier_destroy(&barrier);
    if (pinned < 0) {
        fprintf(stderr, "bench_batch: cannot start %u threads\n", r->threads);
        failed = true;
        return;
    }
    if ((unsigned)pinned != r->threads)
        all_pinned = false;
    double rate = 0;
    for (unsigned t = 0; t < r->threads; t++) {
        if (w[t].elapsed_ns)
            rate += (double)w[t].ops * 1e9 / (double)w[t].elapsed_ns;
        net_total += w[t].net;
        if (w[t].errors) {
            fprintf(stderr,
                    "CHECK FAILED %s %s %u thr: %" PRIu64 " of %" PRIu64 " ops failed, "
                    "first: %s\n",
                    impl_name[impl], r->hot ? "hot" : "uniform", r->threads, w[t].errors, w[t].ops,
                    inv_strerror(w[t].first_error));
            failed = true;
        }
    }
    if (rate > r->rate[impl])
        r->rate[impl] = rate;
}

static void print_header(void)
{
    printf("%-14s %3s | %12s %10s | %12s %10s | %s\n", "levels", "thr", "batch of 3/s", "ns/batch",
           "3 adjusts/s", "ns/3 adj", "batch / 3 adjusts");
}

static void print_row(const row *r, const char *label)
{
    char b[IMPL_N][24];
    for (int i = 0; i < IMPL_N; i++)
        bench_fmt_rate(b[i], sizeof b[i], r->rate[i]);
    printf("%-14s %3u | %10s/s %10.0f | %10s/s %10.0f | %.2f\n", label, r->threads, b[IMPL_BATCH],
           r->rate[IMPL_BATCH] > 0 ? 1e9 * r->threads / r->rate[IMPL_BATCH] : 0, b[IMPL_SINGLE],
           r->rate[IMPL_SINGLE] > 0 ? 1e9 * r->threads / r->rate[IMPL_SINGLE] : 0,
           r->rate[IMPL_SINGLE] > 0 ? r->rate[IMPL_BATCH] / r->rate[IMPL_SINGLE] : 0);
    fflush(stdout);
}

int main(void)
{
    double seconds = bench_env_double("BENCH_SECONDS", 0.5);
    uint64_t rounds = bench_env_u64("BENCH_ROUNDS", 2);
    uint64_t threads[BENCH_LIST_MAX] = {1, 2};
    size_t n_threads =
        bench_env_list("BENCH_THREADS", threads, BENCH_LIST_MAX, 1, BENCH_THREADS_MAX);
    uint64_t n = bench_env_u64("BENCH_BATCH_LEVELS", 1ull << 20);
    char cpu[256], label[32];
    int cpus[CPU_SETSIZE];
    store st;
    if (n_threads == 0)
        n_threads = 2;
    if (rounds == 0 || rounds > ROUNDS_MAX)
        rounds = 2;
    if (n < LINES || n > LEVELS_MAX)
        n = 1ull << 20;

    bench_cpu_model(cpu, sizeof cpu);
    printf("cpu: %s; %ld cores online, %zu usable; invcore %s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), bench_cpus(cpus, CPU_SETSIZE), INVCORE_VERSION);
    printf("batches in memory: one op is inv_batch of %d LEVEL_ADJUST lines on %d distinct "
           "levels (+1 then -1, no floor; in the server: MULTI, %d x LEVEL.ADJUST, EXEC),\n"
           "against the same %d adjusts as separate inv_level_adjust calls; best of %" PRIu64
           " runs of %.2f s per cell; ops/s summed over threads, ns per op per thread\n\n",
           LINES, LINES, LINES, LINES, rounds, seconds);
    int rc = build_store(&st, n);
    if (rc != INV_OK) {
        fprintf(stderr, "bench_batch: loading %" PRIu64 " levels: %s\n", n, inv_strerror(rc));
        inv_close(st.e);
        return 1;
    }
    uint64_t missing;
    int64_t start = sum_available(&st, &missing);
    print_header();
    for (int hot = 1; hot >= 0; hot--)
        for (size_t ti = 0; ti < n_threads; ti++) {
            row r = {hot != 0, (unsigned)threads[ti], {0, 0}};
            for (uint64_t round = 0; round < rounds; round++)
                for (int impl = 0; impl < IMPL_N; impl++)
                    measure(&st, &r, impl, seconds);
            if (hot)
                snprintf(label, sizeof label, "hot %d", LINES);
            else if (n % (1u << 20) == 0)
                snprintf(label, sizeof label, "uniform %" PRIu64 "M", n >> 20);
            else
                snprintf(label, sizeof label, "uniform %" PRIu64, n);
            print_row(&r, label);
        }
    int64_t end = sum_available(&st, &missing);
    if (missing != 0 || end != start + net_total) {
        fprintf(stderr,
                "CHECK FAILED conservation: %" PRIu64 " levels missing, available %" PRId64
                ", expected %" PRId64 "\n",
                missing, end, start + net_total);
        failed = true;
    }
    if (!all_pinned)
        printf("note: some threads could not be pinned to a core\n");
    if (failed)
        printf("FAIL  a correctness check failed (see stderr)\n");
    inv_close(st.e);
    return failed ? 1 : 0;
}
