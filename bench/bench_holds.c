/*
 * bench_holds.c — in-process throughput of holds (reservations) through the
 * public API, in memory (no data dir): one op is inv_hold_create of a hold
 * with a unique id ("t<thread>-<counter>", hex) followed by inv_hold_commit
 * (sold) or inv_hold_release (given back) of that same hold.
 *
 * Rows: single-line and 3-line holds, x
 *   hot     every thread reserves the same 1 (or 3) levels, each started at
 *           INV_QTY_MAX units (a commit takes 1 unit per line for good; on
 *           INSUFFICIENT the thread restocks by RESTOCK and retries, counted)
 *   spread  the 1 (or 3 distinct) levels of each hold are drawn uniformly
 *           from SPREAD_LEVELS levels (100 locations x 1000 items)
 * x 1 and 2 threads (BENCH_THREADS), x commit / release.
 * Every (lines, pattern, end, threads) row runs on a fresh engine (ended
 * holds stay in the engine's id table for HOLD_RETAIN_MS, so rows must not
 * pile up each other's records), and is checked afterwards: hold counters
 * in inv_stats match the successful ops, no units stay reserved, the sum
 * of available moved by exactly the committed units (0 for release), those
 * units now count as committed (sold, not yet fulfilled: a commit moves
 * them from reserved to committed), and on_hand moved only by restocks.
 * The create+commit column is the "hold create+commit per second"
 * (1 and 2 threads, a hot level and uniformly drawn levels).
 *
 * Each cell is the best of BENCH_ROUNDS runs, each on its fresh engine
 * (this is often a shared VM: the first engine of a process also pays for
 * the first touch of its memory, seen as a first cell 1000x slower).
 *
 * Knobs (env): BENCH_SECONDS per run (default 0.5), BENCH_ROUNDS (2),
 * BENCH_THREADS ("1,2"),
 * BENCH_HOLDS_CAPACITY (holds_capacity hint, default 4194304),
 * BENCH_SPREAD_LEVELS (100000).
 */
#include "bench_util.h"

#include <invcore.h>

#include <inttypes.h>
#include <stdalign.h>

#define ITEM_BASE 10000000000ull
#define LOC_BASE 70000000000ull
#define SPREAD_LOCATIONS 100
#define HOT_LEVELS 3 /* items ITEM_BASE..+2 at LOC_BASE */
#define RESTOCK 100000000 /* units added to a drained hot level */
#define TTL_MS 600000 /* no hold expires during a row */
#define CHECK_EVERY 64 /* ops between two clock reads */
#define ROWS_MAX 64

enum { END_COMMIT, END_RELEASE, END_N };
static const char *const end_name[END_N] = {"commit", "release"};

typedef struct {
    uint64_t n_levels; /* spread: levels drawn from; hot: HOT_LEVELS */
    bool hot;
} layout;

typedef struct {
    alignas(64) inv_engine *e;
    const layout *lay;
    unsigned tid;
    size_t lines;
    int end;
    bench_clock clk;
    uint64_t ops, errors, restocks, elapsed_ns;
    int first_error;
    const char *first_error_op;
    int64_t committed_units, restocked_units;
} worker;

static inline uint64_t level_item(uint64_t idx)
{
    return ITEM_BASE + idx / SPREAD_LOCATIONS;
}

static inline uint64_t level_loc(uint64_t idx)
{
    return LOC_BASE + idx % SPREAD_LOCATIONS;
}

/* "t<tid hex>-<n hex>" into buf; returns its length. */
static inline size_t make_id(char *buf, unsigned tid, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t len = 0, k = 0;
    buf[len++] = 't';
    do {
        tmp[k++] = hex[tid & 15];
        tid >>= 4;
    } while (tid != 0);
    while (k > 0)
        buf[len++] = tmp[--k];
    buf[len++] = '-';
    do {
        tmp[k++] = hex[n & 15];
        n >>= 4;
    } while (n != 0);
    while (k > 0)
        buf[len++] = tmp[--k];
    return len;
}

static void note_error(worker *w, int rc, const char *op)
{
    if (w->errors++ == 0) {
        w->first_error = rc;
        w->first_error_op = op;
    }
}

static void worker_main(void *arg)
{
    worker *w = arg;
    const layout *lay = w->lay;
    inv_hold_line lines[HOT_LEVELS];
    inv_hold_failure fail;
    char id[48];
    uint64_t rng = bench_rng_seed(w->tid), n = 0;
    uint64_t t0 = bench_start(&w->clk);

    for (size_t i = 0; i < w->lines; i++) {
        lines[i].item = ITEM_BASE + i; /* the hot levels */
        lines[i].location = LOC_BASE;
        lines[i].qty = 1;
    }
    while (bench_now_ns() < w->clk.deadline_ns) {
        for (int c = 0; c < CHECK_EVERY; c++, n++) {
            if (!lay->hot) {
                uint64_t idx[HOT_LEVELS];
                for (size_t i = 0; i < w->lines; i++) {
                    bool again;
                    do { /* lines may not repeat a level */
                        idx[i] = bench_rng_below(&rng, lay->n_levels);
                        again = false;
                        for (size_t j = 0; j < i; j++)
                            again |= idx[j] == idx[i];
                    } while (again);
                    lines[i].item = level_item(idx[i]);
                    lines[i].location = level_loc(idx[i]);
                }
            }
            size_t len = make_id(id, w->tid, n);
            int rc = inv_hold_create(w->e, id, len, TTL_MS, lines, w->lines, &fail);
            if (rc == INV_EINSUFFICIENT && lay->hot) {
                /* A drained hot level: restock it and retry once. */
                int rr =
                    inv_level_adjust(w->e, fail.item, fail.location, RESTOCK, INV_NO_FLOOR, NULL);
                if (rr == INV_OK) {
                    w->restocks++;
                    w->restocked_units += RESTOCK;
                }
                rc = inv_hold_create(w->e, id, len, TTL_MS, lines, w->lines, &fail);
            }
            if (rc != INV_OK) {
                note_error(w, rc, "create");
                continue;
            }
            if (w->end == END_COMMIT)
                rc = inv_hold_commit(w->e, id, len);
            else
                rc = inv_hold_release(w->e, id, len);
            if (rc != INV_OK) {
                note_error(w, rc, end_name[w->end]);
                continue;
            }
            w->ops++;
            if (w->end == END_COMMIT)
                w->committed_units += (int64_t)w->lines;
        }
    }
    w->elapsed_ns = bench_now_ns() - t0;
}

/* ---- engine per row --------------------------------------------------- */

static int build_engine(inv_engine **out, const layout *lay, uint64_t holds_capacity)
{
    inv_config cfg;
    inv_engine *e;
    uint64_t n = lay->hot ? HOT_LEVELS : lay->n_levels;
    uint64_t locs = lay->hot ? 1 : SPREAD_LOCATIONS;
    uint64_t items = lay->hot ? HOT_LEVELS : (n + locs - 1) / locs;
    memset(&cfg, 0, sizeof cfg);
    cfg.levels_capacity = n;
    cfg.items_capacity = items;
    cfg.locations_capacity = locs;
    cfg.holds_capacity = holds_capacity;
    int rc = inv_open(&e, &cfg);
    if (rc != INV_OK)
        return rc;
    for (uint64_t j = 0; j < locs && rc == INV_OK; j++) {
        inv_location_fields lf;
        memset(&lf, 0, sizeof lf);
        lf.mask = INV_LOC_NAME;
        snprintf(lf.name, sizeof lf.name, "bench location %" PRIu64, j);
        rc = inv_location_put(e, LOC_BASE + j, &lf);
    }
    for (uint64_t i = 0; i < items && rc == INV_OK; i++) {
        inv_item_fields itf;
        memset(&itf, 0, sizeof itf);
        itf.mask = INV_ITEM_TRACKED;
        itf.tracked = true;
        rc = inv_item_put(e, ITEM_BASE + i, &itf);
    }
    for (uint64_t i = 0; i < n && rc == INV_OK; i++)
        rc = lay->hot ? inv_level_set(e, ITEM_BASE + i, LOC_BASE, INV_QTY_MAX, 0, NULL)
                      : inv_level_set(e, level_item(i), level_loc(i), INV_QTY_MAX, 0, NULL);
    if (rc != INV_OK) {
        inv_close(e);
        return rc;
    }
    *out = e;
    return INV_OK;
}

/* Sums of named quantities over the layout's levels. */
typedef struct {
    int64_t available, reserved, committed, on_hand;
    uint64_t missing;
} level_sums;

static void sum_levels(inv_engine *e, const layout *lay, level_sums *sum)
{
    uint64_t n = lay->hot ? HOT_LEVELS : lay->n_levels;
    inv_level_full lv;
    memset(sum, 0, sizeof *sum);
    for (uint64_t i = 0; i < n; i++) {
        int rc = lay->hot ? inv_level_get_full(e, ITEM_BASE + i, LOC_BASE, &lv)
                          : inv_level_get_full(e, level_item(i), level_loc(i), &lv);
        if (rc != INV_OK) {
            sum->missing++;
            continue;
        }
        sum->available += lv.qty[INV_QTY_AVAILABLE];
        sum->reserved += lv.qty[INV_QTY_RESERVED];
        sum->committed += lv.qty[INV_QTY_COMMITTED];
        sum->on_hand += lv.on_hand;
    }
}

/* ---- rows ------------------------------------------------------------- */

typedef struct {
    size_t lines;
    bool hot;
    unsigned threads;
    double rate[END_N];
    uint64_t restocks[END_N];
    bool bad[END_N];
} row;

static row rows[ROWS_MAX];
static size_t n_rows;
static bool failed, all_pinned = true;

static void measure(row *r, int end, const layout *lay, double seconds, uint64_t holds_capacity)
{
    worker w[BENCH_THREADS_MAX];
    pthread_barrier_t barrier;
    inv_engine *e;
    inv_stats s0, s1;
    level_sums before, after;
    const char *what = end_name[end];

    int rc = build_engine(&e, lay, holds_capacity);
    if (rc != INV_OK) {
        fprintf(stderr, "bench_holds: building the engine: %s\n", inv_strerror(rc));
        r->bad[end] = failed = true;
        return;
    }
    sum_levels(e, lay, &before);
    inv_stats_get(e, &s0);
    pthread_barrier_init(&barrier, NULL, r->threads);
    for (unsigned t = 0; t < r->threads; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].e = e;
        w[t].lay = lay;
        w[t].tid = t;
        w[t].lines = r->lines;
        w[t].end = end;
        w[t].clk.seconds = seconds;
        w[t].clk.start = &barrier;
    }
    int pinned = bench_spawn(r->threads, worker_main, w, sizeof w[0]);
    pthread_barrier_destroy(&barrier);
    if (pinned < 0) {
        fprintf(stderr, "bench_holds: cannot start %u threads\n", r->threads);
        inv_close(e);
        r->bad[end] = failed = true;
        return;
    }
    if ((unsigned)pinned != r->threads)
        all_pinned = false;

    uint64_t ops = 0, errors = 0, restocks = 0;
    int64_t committed = 0, restocked = 0;
    double rate = 0;
    for (unsigned t = 0; t < r->threads; t++) {
        ops += w[t].ops;
        errors += w[t].errors;
        restocks += w[t].restocks;
        committed += w[t].committed_units;
        restocked += w[t].restocked_units;
        if (w[t].elapsed_ns)
            rate += (double)w[t].ops * 1e9 / (double)w[t].elapsed_ns;
        if (w[t].errors && errors == w[t].errors)
            fprintf(stderr,
                    "ODD %zu-line %s %s %u thr: %" PRIu64 " errors, "
                    "first: %s on %s\n",
                    r->lines, lay->hot ? "hot" : "spread", what, r->threads, w[t].errors,
                    inv_strerror(w[t].first_error), w[t].first_error_op);
    }
    if (rate > r->rate[end]) {
        r->rate[end] = rate;
        r->restocks[end] = restocks;
    }

    /* Checks: counters, nothing left reserved, units conserved: the sold
     * ones moved to committed, on hand moved by the restocks alone. */
    sum_levels(e, lay, &after);
    inv_stats_get(e, &s1);
    uint64_t created = s1.holds_created - s0.holds_created;
    uint64_t ended = end == END_COMMIT ? s1.holds_committed - s0.holds_committed
                                       : s1.holds_released - s0.holds_released;
    int64_t want = before.available + restocked - committed;
    if (errors != 0 || after.missing != 0 || after.reserved != 0 || after.available != want ||
        after.committed - before.committed != committed ||
        after.on_hand - before.on_hand != restocked || created != ops || ended != ops ||
        s1.holds_active != 0) {
        fprintf(stderr,
                "CHECK FAILED %zu-line %s %s %u thr: ops %" PRIu64 ", errors %" PRIu64
                ", stats created %" PRIu64 " %s %" PRIu64 " active %" PRIu64
                "; reserved left %" PRId64 "; available %" PRId64 " want %" PRId64
                "; committed +%" PRId64 " want +%" PRId64 "; on_hand +%" PRId64 " want +%" PRId64
                "; levels missing %" PRIu64 "\n",
                r->lines, lay->hot ? "hot" : "spread", what, r->threads, ops, errors, created, what,
                ended, s1.holds_active, after.reserved, after.available, want,
                after.committed - before.committed, committed, after.on_hand - before.on_hand,
                restocked, after.missing);
        r->bad[end] = failed = true;
    }
    inv_close(e);
}

static void print_header(void)
{
    printf("%-6s %-14s %3s | %14s %8s | %14s %8s | %s\n", "lines", "levels", "thr", "create+commit",
           "ns/op", "create+release", "ns/op", "restocks (commit rows)");
}

static void print_row(const row *r, uint64_t spread_levels)
{
    char lv[32], b[END_N][24];
    if (r->hot)
        snprintf(lv, sizeof lv, "hot %zu", r->lines);
    else
        snprintf(lv, sizeof lv, "spread %" PRIu64 "k", spread_levels / 1000);
    for (int k = 0; k < END_N; k++)
        bench_fmt_rate(b[k], sizeof b[k], r->rate[k]);
    printf(
        "%-6zu %-14s %3u | %12s/s %8.0f | %12s/s %8.0f | %" PRIu64 "%s\n", r->lines, lv, r->threads,
        b[END_COMMIT], r->rate[END_COMMIT] > 0 ? 1e9 * r->threads / r->rate[END_COMMIT] : 0,
        b[END_RELEASE], r->rate[END_RELEASE] > 0 ? 1e9 * r->threads / r->rate[END_RELEASE] : 0,
        r->restocks[END_COMMIT], r->bad[END_COMMIT] || r->bad[END_RELEASE] ? "  CHECK FAILED" : "");
    fflush(stdout);
}

int main(void)
{
    double seconds = bench_env_double("BENCH_SECONDS", 0.5);
    uint64_t rounds = bench_env_u64("BENCH_ROUNDS", 2);
    uint64_t threads[BENCH_LIST_MAX] = {1, 2};
    size_t n_threads =
        bench_env_list("BENCH_THREADS", threads, BENCH_LIST_MAX, 1, BENCH_THREADS_MAX);
    uint64_t holds_capacity = bench_env_u64("BENCH_HOLDS_CAPACITY", 1u << 22);
    uint64_t spread = bench_env_u64("BENCH_SPREAD_LEVELS", 100000);
    char cpu[256];
    int cpus[CPU_SETSIZE];
    if (n_threads == 0)
        n_threads = 2;
    if (spread < HOT_LEVELS || spread > (1ull << 32))
        spread = 100000;
    if (rounds == 0 || rounds > 100)
        rounds = 2;

    bench_cpu_model(cpu, sizeof cpu);
    printf("cpu: %s; %ld cores online, %zu usable; invcore %s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), bench_cpus(cpus, CPU_SETSIZE), INVCORE_VERSION);
    printf("holds in memory: per op one inv_hold_create (unique id, qty 1 "
           "per line, ttl %d ms) then inv_hold_commit or inv_hold_release;\n"
           "best of %" PRIu64
           " runs of %.2f s per cell, a fresh engine per run (holds_capacity %" PRIu64
           "); ops/s summed over threads, ns/op per thread\n\n",
           TTL_MS, rounds, seconds, holds_capacity);
    print_header();
    const size_t line_counts[] = {1, 3};
    for (size_t li = 0; li < 2; li++)
        for (int hot = 1; hot >= 0; hot--)
            for (size_t ti = 0; ti < n_threads && n_rows < ROWS_MAX; ti++) {
                row *r = &rows[n_rows++];
                layout lay = {hot ? HOT_LEVELS : spread, hot != 0};
                memset(r, 0, sizeof *r);
                r->lines = line_counts[li];
                r->hot = hot != 0;
                r->threads = (unsigned)threads[ti];
                for (uint64_t round = 0; round < rounds; round++)
                    for (int end = 0; end < END_N; end++)
                        measure(r, end, &lay, seconds, holds_capacity);
                print_row(r, spread);
            }
    if (!all_pinned)
        printf("note: some threads could not be pinned to a core\n");
    if (failed)
        printf("FAIL  a correctness check failed (see stderr)\n");
    return failed ? 1 : 0;
}
