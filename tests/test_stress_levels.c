/*
 * test_stress_levels.c — the engine's acceptance stress test: many threads
 * setting, adjusting (with and without a floor) and reading hot and cold
 * levels while the level table grows under them. Checked after the race:
 *
 *  - no oversell: a floored adjust that succeeds returns available >= the
 *    floor, and a level only ever changed by floored adjusts and non-negative
 *    sets is never seen below 0;
 *  - monotonic revisions: every thread sees each hot level's revision never
 *    go back, and each of its own changes lands above all it saw before;
 *  - no lost update: in an adjust-only phase, final available = initial +
 *    the sum of the successful deltas, exactly, per level (while other
 *    threads create levels so that the table migrates meanwhile);
 *  - a flash sale: N threads take one unit at a time with floor 0 from a
 *    level of stock S: exactly S succeed, each remaining count is returned
 *    once, and the level ends at 0.
 *
 * Op counts are divided by INVCORE_STRESS_SCALE (4 under ASan, 8 under TSan).
 */
#include "test_util.h"

#include "engine.h" /* e->levels.resizes: growth of the level table itself */

#define THREADS 8
#define HOT 8 /* hot levels: items HOT_ITEM0 + h at location 0 */
#define HOT_FLOORED 4 /* hot levels 0..3 see only floored adjusts, sets >= 0 */
#define HOT_ITEM0 1
#define COLD_ITEMS 1000
#define COLD_LOCS 50 /* 50k cold levels */
#define CHECKED_COLD 512 /* cold levels of the adjust-only phase */
#define OPS_TOTAL 1000000 /* phase 1, all threads together */
#define OPS_PHASE2 400000 /* phase 2 adjusts, all adjusting threads together */
#define CREATORS 2 /* phase 2 threads that create levels (growth) */
#define CHECKED (HOT + CHECKED_COLD)

static uint64_t resizes(inv_engine *e)
{
    /* relaxed: a statistic. */
    return atomic_load_explicit(&e->levels.resizes, memory_order_relaxed);
}

static uint64_t hot_item(size_t h)
{
    return HOT_ITEM0 + h;
}

/* Checked level k (< CHECKED): hot ones first, then cold ones. */
static void checked_level(size_t k, uint64_t *item, uint64_t *loc)
{
    if (k < HOT) {
        *item = hot_item(k);
        *loc = tu_loc_id(0);
    } else {
        size_t c = k - HOT;
        *item = tu_item_id(c % COLD_ITEMS);
        *loc = tu_loc_id(c / COLD_ITEMS);
    }
}

typedef struct {
    inv_engine *e;
    uint64_t ops_per_thread;
    /* phase 2 */
    int64_t delta_sum[THREADS][CHECKED];
    uint64_t changes[THREADS][CHECKED];
    uint64_t creations_per_creator;
    uint64_t extra_loc0; /* first location index of the creators */
    _Atomic uint64_t created;
} stress_ctx;

/* Revision bookkeeping of one thread for one level. */
static void saw_revision(uint64_t *last, uint64_t rev, bool changed, size_t h, size_t t)
{
    if (changed)
        TU_CHECK(rev > *last, "thread %zu level %zu: own change at revision %llu after seeing %llu",
                 t, h, (unsigned long long)rev, (unsigned long long)*last);
    else
        TU_CHECK(rev >= *last, "thread %zu level %zu: revision went back %llu -> %llu", t, h,
                 (unsigned long long)*last, (unsigned long long)rev);
    if (rev > *last)
        *last = rev;
}

static void hot_op(stress_ctx *c, tu_rng *r, size_t t, uint64_t *last_rev)
{
    size_t h = tu_rng_below(r, HOT);
    uint64_t item = hot_item(h), loc = tu_loc_id(0);
    bool floored_only = h < HOT_FLOORED;
    inv_level lv = {0, 0, 0};
    uint64_t pick = tu_rng_below(r, 100);
    int64_t delta = tu_rng_range(r, -3, 3);
    int rc;
    if (pick < 10) {
        int64_t qty = floored_only ? tu_rng_range(r, 0, 200) : tu_rng_range(r, -50, 200);
        rc = inv_level_set(c->e, item, loc, qty, 0, &lv);
        TU_CHECK(rc == INV_OK, "set hot %zu: %s", h, inv_strerror(rc));
        TU_CHECK(lv.available == qty, "set hot %zu to %lld returned %lld", h, (long long)qty,
                 (long long)lv.available);
        saw_revision(&last_rev[h], lv.revision, true, h, t);
    } else if (pick < 60 || (floored_only && pick < 70)) {
        rc = inv_level_adjust(c->e, item, loc, delta, 0, &lv);
        TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "adjust hot %zu: %s", h,
                 inv_strerror(rc));
        if (rc == INV_OK)
            TU_CHECK(lv.available >= 0, "floored adjust on hot %zu returned %lld", h,
                     (long long)lv.available);
        else
            TU_CHECK(lv.available + delta < 0,
                     "hot %zu: INSUFFICIENT with %lld available, delta %lld", h,
                     (long long)lv.available, (long long)delta);
        saw_revision(&last_rev[h], lv.revision, rc == INV_OK, h, t);
    } else if (pick < 70) {
        rc = inv_level_adjust(c->e, item, loc, delta, INV_NO_FLOOR, &lv);
        TU_CHECK(rc == INV_OK, "unfloored adjust hot %zu: %s", h, inv_strerror(rc));
        saw_revision(&last_rev[h], lv.revision, true, h, t);
    } else {
        rc = inv_level_get(c->e, item, loc, &lv);
        TU_CHECK(rc == INV_OK, "get hot %zu: %s", h, inv_strerror(rc));
        if (floored_only)
            TU_CHECK(lv.available >= 0, "hot floored-only level %zu seen at %lld", h,
                     (long long)lv.available);
        saw_revision(&last_rev[h], lv.revision, false, h, t);
    }
}

static void cold_op(stress_ctx *c, tu_rng *r)
{
    /* Cold levels beyond the checked ones. */
    uint64_t k = CHECKED_COLD + tu_rng_below(r, (uint64_t)COLD_ITEMS * COLD_LOCS - CHECKED_COLD);
    uint64_t item = tu_item_id(k % COLD_ITEMS), loc = tu_loc_id(k / COLD_ITEMS);
    inv_level lv = {0, 0, 0};
    uint64_t pick = tu_rng_below(r, 100);
    int64_t delta = tu_rng_range(r, -5, 5);
    int rc;
    if (pick < 35) {
        rc = inv_level_set(c->e, item, loc, tu_rng_range(r, 0, 100), 0, &lv);
        TU_CHECK(rc == INV_OK, "set cold %llu: %s", (unsigned long long)k, inv_strerror(rc));
        TU_CHECK(lv.revision >= 1, "cold %llu: revision 0", (unsigned long long)k);
    } else if (pick < 65) {
        rc = inv_level_adjust(c->e, item, loc, delta, 0, &lv);
        TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT || rc == INV_ENOTFOUND, "adjust cold: %s",
                 inv_strerror(rc));
        if (rc == INV_OK)
            TU_CHECK(lv.available >= 0, "floored adjust on cold %llu returned %lld",
                     (unsigned long long)k, (long long)lv.available);
    } else if (pick < 80) {
        /* Cold levels keep the default policy (deny): a floor-less
         * decrement stops at 0 as a floored one does. */
        rc = inv_level_adjust(c->e, item, loc, delta, INV_NO_FLOOR, &lv);
        TU_CHECK(rc == INV_OK || rc == INV_ENOTFOUND ||
                     (rc == INV_EINSUFFICIENT && lv.available + delta < 0),
                 "adjust cold: %s", inv_strerror(rc));
        if (rc == INV_OK)
            TU_CHECK(lv.available >= 0, "deny policy on cold %llu let it reach %lld",
                     (unsigned long long)k, (long long)lv.available);
    } else {
        rc = inv_level_get(c->e, item, loc, &lv);
        TU_CHECK(rc == INV_OK || rc == INV_ENOTFOUND, "get cold: %s", inv_strerror(rc));
    }
}

static void phase1_thread(void *arg, size_t t)
{
    stress_ctx *c = arg;
    tu_rng r = tu_rng_seed(t + 1);
    uint64_t last_rev[HOT] = {0};
    for (uint64_t i = 0; i < c->ops_per_thread; i++) {
        if (tu_rng_below(&r, 2))
            hot_op(c, &r, t, last_rev);
        else
            cold_op(c, &r);
    }
}

static void phase2_thread(void *arg, size_t t)
{
    stress_ctx *c = arg;
    if (t >= THREADS) {
        /* A creator: new levels at locations nobody else touches. */
        size_t cr = t - THREADS;
        for (uint64_t n = 0; n < c->creations_per_creator; n++) {
            uint64_t k = n * CREATORS + cr;
            uint64_t item = tu_item_id(k % COLD_ITEMS);
            uint64_t loc = tu_loc_id(c->extra_loc0 + k / COLD_ITEMS);
            int rc = inv_level_set(c->e, item, loc, 1, 0, NULL);
            TU_CHECK(rc == INV_OK, "creator %zu level %llu: %s", cr, (unsigned long long)k,
                     inv_strerror(rc));
        }
        /* relaxed: read after joining. */
        atomic_fetch_add_explicit(&c->created, c->creations_per_creator, memory_order_relaxed);
        return;
    }
    tu_rng r = tu_rng_seed(1000 + t);
    uint64_t last_rev[CHECKED] = {0};
    uint64_t ops = tu_iters(OPS_PHASE2) / THREADS;
    for (uint64_t i = 0; i < ops; i++) {
        /* Half the ops on the hot levels. */
        size_t k = tu_rng_below(&r, 2) ? tu_rng_below(&r, HOT) : tu_rng_below(&r, CHECKED);
        uint64_t item, loc;
        checked_level(k, &item, &loc);
        int64_t delta = tu_rng_range(&r, -3, 3);
        bool floored = k < HOT_FLOORED || tu_rng_below(&r, 2);
        inv_level lv = {0, 0, 0};
        int rc = inv_level_adjust(c->e, item, loc, delta, floored ? 0 : INV_NO_FLOOR, &lv);
        if (rc == INV_OK) {
            c->delta_sum[t][k] += delta;
            c->changes[t][k]++;
            if (floored)
                TU_CHECK(lv.available >= 0, "phase 2: floored adjust returned %lld",
                         (long long)lv.available);
        } else
            TU_CHECK(floored && rc == INV_EINSUFFICIENT && lv.available + delta < 0,
                     "phase 2 level %zu: %s (available %lld, delta %lld)", k, inv_strerror(rc),
                     (long long)lv.available, (long long)delta);
        saw_revision(&last_rev[k], lv.revision, rc == INV_OK, k, t);
    }
}

Test(stress, levels_under_growth_never_oversell_lose_updates_or_reorder_revisions, .timeout = 240)
{
    uint64_t t0 = tu_now_ns();
    stress_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    /* levels_capacity 1: the table starts at its minimum and grows. */
    c->e = tu_open_engine(COLD_ITEMS, COLD_LOCS, 1);
    for (size_t h = 0; h < HOT; h++) {
        cr_assert_eq(inv_item_put(c->e, hot_item(h), NULL), INV_OK);
        cr_assert_eq(inv_level_set(c->e, hot_item(h), tu_loc_id(0), 100, 0, NULL), INV_OK);
        /* Unfloored adjusts may go below 0: orders continue (no limit). */
        cr_assert_eq(inv_level_set_policy(c->e, hot_item(h), tu_loc_id(0), INV_POLICY_CONTINUE,
                                          INV_NO_PREORDER_LIMIT),
                     INV_OK);
    }
    for (size_t k = HOT; k < CHECKED; k++) {
        uint64_t item, loc;
        checked_level(k, &item, &loc);
        cr_assert_eq(inv_level_set(c->e, item, loc, 50, 0, NULL), INV_OK);
        cr_assert_eq(
            inv_level_set_policy(c->e, item, loc, INV_POLICY_CONTINUE, INV_NO_PREORDER_LIMIT),
            INV_OK);
    }
    uint64_t r0 = resizes(c->e);

    /* Phase 1: everything mixed. */
    c->ops_per_thread = tu_iters(OPS_TOTAL) / THREADS;
    tu_run_threads(THREADS, phase1_thread, c);
    tu_assert_no_failures();
    uint64_t r1 = resizes(c->e);
    cr_expect_gt(r1, r0, "the level table never grew during phase 1");
    for (size_t h = 0; h < HOT_FLOORED; h++) {
        inv_level lv;
        cr_assert_eq(inv_level_get(c->e, hot_item(h), tu_loc_id(0), &lv), INV_OK);
        cr_expect_geq(lv.available, 0, "hot floored-only level %zu ended at %lld", h,
                      (long long)lv.available);
    }

    /* Phase 2: adjust-only on the checked levels, creators force growth. */
    inv_level initial[CHECKED];
    for (size_t k = 0; k < CHECKED; k++) {
        uint64_t item, loc;
        checked_level(k, &item, &loc);
        cr_assert_eq(inv_level_get(c->e, item, loc, &initial[k]), INV_OK, "checked level %zu", k);
    }
    inv_stats st;
    cr_assert_eq(inv_stats_get(c->e, &st), INV_OK);
    /* Growth starts when claimed keys reach about twice the live count. */
    uint64_t need = 2 * st.levels + 4096;
    c->creations_per_creator = need / CREATORS + 1;
    c->extra_loc0 = COLD_LOCS;
    uint64_t extra_locs = need / COLD_ITEMS + 2;
    for (uint64_t m = 0; m < extra_locs; m++)
        cr_assert_eq(inv_location_put(c->e, tu_loc_id(COLD_LOCS + m), NULL), INV_OK);
    tu_run_threads(THREADS + CREATORS, phase2_thread, c);
    tu_assert_no_failures();
    uint64_t r2 = resizes(c->e);
    cr_expect_gt(r2, r1, "the level table never grew during phase 2");
    uint64_t lost = 0;
    for (size_t k = 0; k < CHECKED; k++) {
        uint64_t item, loc;
        checked_level(k, &item, &loc);
        int64_t sum = 0;
        uint64_t changes = 0;
        for (size_t t = 0; t < THREADS; t++) {
            sum += c->delta_sum[t][k];
            changes += c->changes[t][k];
        }
        inv_level fin;
        cr_assert_eq(inv_level_get(c->e, item, loc, &fin), INV_OK, "checked level %zu vanished", k);
        if (fin.available != initial[k].available + sum)
            lost++;
        cr_expect_eq(fin.available, initial[k].available + sum, "level %zu: %lld, want %lld + %lld",
                     k, (long long)fin.available, (long long)initial[k].available, (long long)sum);
        cr_expect_geq(fin.revision - initial[k].revision, changes,
                      "level %zu: revision rose %llu for %llu changes", k,
                      (unsigned long long)(fin.revision - initial[k].revision),
                      (unsigned long long)changes);
        if (k < HOT_FLOORED)
            cr_expect_geq(fin.available, 0);
    }
    cr_expect_eq(lost, 0, "%llu levels lost updates", (unsigned long long)lost);
    /* Every created level is there. */
    cr_assert_eq(inv_stats_get(c->e, &st), INV_OK);
    cr_expect_gt(st.table_resizes, 0);
    for (uint64_t k = 0; k < CREATORS * c->creations_per_creator; k += 97) {
        int rc = inv_level_get(c->e, tu_item_id(k % COLD_ITEMS),
                               tu_loc_id(COLD_LOCS + k / COLD_ITEMS), NULL);
        cr_expect_eq(rc, INV_OK, "created level %llu: %s", (unsigned long long)k, inv_strerror(rc));
    }
    inv_close(c->e);
    free(c);
    cr_log_info("stress: %.2f s", (double)(tu_now_ns() - t0) / 1e9);
}

/* ---- flash sale ---------------------------------------------------------- */

#define SALE_BUYERS 8

typedef struct {
    inv_engine *e;
    int64_t stock;
    _Atomic unsigned char *seen; /* seen[a]: a success returned available a */
    uint64_t sold[SALE_BUYERS];
    _Atomic int buyers_done;
    uint64_t created; /* by the growth thread */
} sale_ctx;

static void sale_thread(void *arg, size_t t)
{
    sale_ctx *c = arg;
    if (t == SALE_BUYERS) {
        /* Growth while the sale runs: create cold levels until the buyers
         * are done (bounded). */
        uint64_t n = 0, max = (uint64_t)COLD_ITEMS * COLD_LOCS;
        /* acquire: pairs with the buyers' count. */
        while (n < max &&
               atomic_load_explicit(&c->buyers_done, memory_order_acquire) < SALE_BUYERS) {
            int rc = inv_level_set(c->e, tu_item_id(n % COLD_ITEMS), tu_loc_id(n / COLD_ITEMS), 1,
                                   0, NULL);
            TU_CHECK(rc == INV_OK, "growth thread: %s", inv_strerror(rc));
            n++;
        }
        c->created = n;
        return;
    }
    uint64_t last_rev = 0;
    for (int64_t i = 0; i <= c->stock; i++) {
        inv_level lv = {0, 0, 0};
        int rc = inv_level_adjust(c->e, HOT_ITEM0, tu_loc_id(0), -1, 0, &lv);
        if (rc == INV_EINSUFFICIENT) {
            TU_CHECK(lv.available == 0, "buyer %zu: INSUFFICIENT at %lld", t,
                     (long long)lv.available);
            break;
        }
        TU_CHECK(rc == INV_OK, "buyer %zu: %s", t, inv_strerror(rc));
        if (rc != INV_OK)
            break;
        TU_CHECK(lv.available >= 0 && lv.available < c->stock, "buyer %zu: available %lld", t,
                 (long long)lv.available);
        TU_CHECK(lv.revision > last_rev, "buyer %zu: revision %llu after %llu", t,
                 (unsigned long long)lv.revision, (unsigned long long)last_rev);
        last_rev = lv.revision;
        if (lv.available >= 0 && lv.available < c->stock) {
            /* relaxed: a per-value counter read after joining. */
            unsigned char before =
                atomic_fetch_add_explicit(&c->seen[lv.available], 1, memory_order_relaxed);
            TU_CHECK(before == 0, "available %lld returned twice", (long long)lv.available);
        }
        c->sold[t]++;
    }
    /* release: the growth thread may stop. */
    atomic_fetch_add_explicit(&c->buyers_done, 1, memory_order_release);
}

Test(stress, flash_sale_sells_exactly_the_stock, .timeout = 120)
{
    sale_ctx c = {0};
    c.stock = (int64_t)tu_iters_min(200000, 10000);
    c.seen = calloc((size_t)c.stock, sizeof *c.seen);
    cr_assert_not_null(c.seen);
    c.e = tu_open_engine(COLD_ITEMS, COLD_LOCS, 1);
    cr_assert_eq(inv_item_put(c.e, HOT_ITEM0, NULL), INV_OK);
    inv_level lv;
    cr_assert_eq(inv_level_set(c.e, HOT_ITEM0, tu_loc_id(0), c.stock, 0, &lv), INV_OK);
    uint64_t r0 = resizes(c.e);
    tu_run_threads(SALE_BUYERS + 1, sale_thread, &c);
    tu_assert_no_failures();
    uint64_t sold = 0;
    for (size_t t = 0; t < SALE_BUYERS; t++)
        sold += c.sold[t];
    cr_expect_eq(sold, (uint64_t)c.stock, "sold %llu of %lld", (unsigned long long)sold,
                 (long long)c.stock);
    for (int64_t a = 0; a < c.stock; a++)
        cr_assert_eq(atomic_load_explicit(&c.seen[a], memory_order_relaxed), 1,
                     "available %lld returned %d times", (long long)a,
                     atomic_load_explicit(&c.seen[a], memory_order_relaxed));
    cr_assert_eq(inv_level_get(c.e, HOT_ITEM0, tu_loc_id(0), &lv), INV_OK);
    cr_expect_eq(lv.available, 0);
    cr_expect_geq(lv.revision, (uint64_t)c.stock + 1);
    cr_expect_eq(inv_level_adjust(c.e, HOT_ITEM0, tu_loc_id(0), -1, 0, &lv), INV_EINSUFFICIENT);
    cr_log_info("flash sale: %llu levels created meanwhile, %llu resizes",
                (unsigned long long)c.created, (unsigned long long)(resizes(c.e) - r0));
    inv_close(c.e);
    free(c.seen);
}

/* ---- transfers that create their destination, under growth ----------------- */

/* Movers transfer one unit at a time from (item, A) to (item, B), where B
 * starts absent (the first transfer of an item creates it), while growers
 * create fresh levels (the table migrates meanwhile) and readers read A
 * and B together in one batch of GETs. Every read, and the end, must find
 * A + B = the item's stock: a transfer is one step, its destination's
 * creation included (issue 17 #11), and growth keeps a batch's claimed
 * slot. Before, a creating transfer ran without a lock set and a reader
 * could see the unit gone from A and not yet in B. */
#define XC_ITEMS 2048 /* most transfers create their destination */
#define XC_STOCK 1000000
#define XC_MOVERS 3
#define XC_READERS 2
#define XC_GROWERS 1
#define XC_MOVES 40000 /* all movers together */
#define XC_READS 20000 /* all readers together */
#define XC_GROW_LEVELS 45000 /* fresh levels the growers create (locations 2..46) */

typedef struct {
    inv_engine *e;
    _Atomic uint64_t moved[XC_ITEMS]; /* relaxed: counters read after the join */
} xc_ctx;

static uint64_t xc_item(size_t i)
{
    return 5000000 + i;
}

static void xc_thread(void *p, size_t t)
{
    xc_ctx *c = p;
    tu_rng r = tu_rng_seed(0xc0ffee + t);
    uint64_t la = tu_loc_id(0), lb = tu_loc_id(1);
    if (t < XC_MOVERS) {
        for (uint64_t n = 0; n < tu_iters(XC_MOVES) / XC_MOVERS; n++) {
            size_t i = (size_t)tu_rng_below(&r, XC_ITEMS);
            int rc = inv_level_transfer(c->e, xc_item(i), la, lb, 1, INV_QTY_AVAILABLE,
                                        INV_QTY_AVAILABLE);
            TU_CHECK(rc == INV_OK, "transfer: %s", inv_strerror(rc));
            if (rc == INV_OK)
                atomic_fetch_add_explicit(&c->moved[i], 1, memory_order_relaxed);
        }
    } else if (t < XC_MOVERS + XC_READERS) {
        for (uint64_t n = 0; n < tu_iters(XC_READS) / XC_READERS; n++) {
            size_t i = (size_t)tu_rng_below(&r, XC_ITEMS);
            inv_batch_line lines[2] = {
                {.op = INV_BATCH_LEVEL_GET, .item = xc_item(i), .location = la},
                {.op = INV_BATCH_LEVEL_GET, .item = xc_item(i), .location = lb}};
            inv_batch_result res[2];
            size_t failed;
            int rc = inv_batch(c->e, lines, 2, res, &failed);
            /* B is absent until the first transfer of the item: the batch
             * fails at its GET then, and A must still hold everything */
            if (rc == INV_ENOTFOUND && failed == 1) {
                TU_CHECK(res[0].rc == INV_OK && res[0].level.available == XC_STOCK,
                         "item %zu: A at %lld with B absent", i, (long long)res[0].level.available);
                continue;
            }
            TU_CHECK(rc == INV_OK, "read: %s (line %zu)", inv_strerror(rc), failed);
            if (rc == INV_OK)
                TU_CHECK(res[0].level.available + res[1].level.available == XC_STOCK,
                         "item %zu read half moved: A %lld + B %lld (reserved %lld/%lld)", i,
                         (long long)res[0].level.available, (long long)res[1].level.available,
                         (long long)res[0].level.reserved, (long long)res[1].level.reserved);
        }
    } else {
        for (uint64_t n = 0; n < tu_iters(XC_GROW_LEVELS) / XC_GROWERS; n++) {
            int rc = inv_level_set(c->e, tu_item_id(n % COLD_ITEMS), tu_loc_id(2 + n / COLD_ITEMS),
                                   1, 0, NULL);
            TU_CHECK(rc == INV_OK, "grow: %s", inv_strerror(rc));
        }
    }
}

Test(stress, transfers_that_create_their_destination_are_one_step_under_growth, .timeout = 240)
{
    xc_ctx c = {0};
    c.e = tu_open_engine(COLD_ITEMS, COLD_LOCS, 1); /* a small level table: it grows */
    for (size_t i = 0; i < XC_ITEMS; i++) {
        cr_assert_eq(inv_item_put(c.e, xc_item(i), NULL), INV_OK);
        cr_assert_eq(inv_level_set(c.e, xc_item(i), tu_loc_id(0), XC_STOCK, 0, NULL), INV_OK);
    }
    uint64_t r0 = resizes(c.e);
    tu_run_threads(XC_MOVERS + XC_READERS + XC_GROWERS, xc_thread, &c);
    tu_assert_no_failures();
    for (size_t i = 0; i < XC_ITEMS; i++) {
        uint64_t moved = atomic_load_explicit(&c.moved[i], memory_order_relaxed);
        inv_level a, b = {0, 0, 0};
        cr_assert_eq(inv_level_get(c.e, xc_item(i), tu_loc_id(0), &a), INV_OK);
        int rc = inv_level_get(c.e, xc_item(i), tu_loc_id(1), &b);
        cr_assert(rc == INV_OK || (rc == INV_ENOTFOUND && moved == 0));
        cr_assert_eq(b.available, (int64_t)moved, "item %zu", i);
        cr_assert_eq(a.available + b.available, XC_STOCK, "item %zu", i);
    }
    cr_assert_gt(resizes(c.e), r0, "the level table did not grow");
    inv_close(c.e);
}
