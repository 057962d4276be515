/*
 * test_level_list.c — level listings and create-only writes through the
 * public API (core/level_list.c, inv_level_create in core/level.c,
 * inv_item_create / inv_location_create in core/catalog.c):
 * inv_level_list_page's filters (location, item, updated since), its rows
 * (every named quantity, one consistent state each), cursor round trips,
 * exactness across a concurrent table growth, bad arguments; NX creation
 * alone, after deletion, across a reopen, and raced by 8 threads (exactly
 * one wins, the losers leave nothing behind).
 */
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------- */

#define NX_THREADS 8

/* Index of an id made by tu_item_id / tu_loc_id. */
static size_t item_index(uint64_t item)
{
    return (size_t)(item - tu_item_id(0)) / 7;
}
static size_t loc_index(uint64_t loc)
{
    return (size_t)(loc - tu_loc_id(0)) / 3;
}

/* An engine with n_items x n_locs levels, available = 10 * i + j. */
static inv_engine *open_grid(size_t n_items, size_t n_locs, size_t extra_items, size_t capacity)
{
    inv_engine *e = tu_open_engine(n_items + extra_items, n_locs, capacity);
    for (size_t i = 0; i < n_items; i++)
        for (size_t j = 0; j < n_locs; j++)
            tu_set_level(e, tu_item_id(i), tu_loc_id(j), (int64_t)(10 * i + j));
    return e;
}

typedef struct {
    size_t rows, pages, empty_pages_mid; /* empty pages with a cursor not 0 */
} walk_stats;

/* Pages through the listing with filter f and count; seen[i * n_locs + j]
 * counts each level of the grid (others must match the filter too). */
static walk_stats walk(inv_engine *e, const inv_level_filter *f, size_t count, size_t n_items,
                       size_t n_locs, uint8_t *seen)
{
    static inv_level_full_row rows[INV_LIST_COUNT_MAX];
    walk_stats st = {0, 0, 0};
    uint64_t cursor = 0;
    do {
        size_t got = 99999;
        cr_assert_eq(
            inv_level_list_page(e, f, cursor, count, rows, INV_LIST_COUNT_MAX, &got, &cursor),
            INV_OK);
        cr_assert_leq(got, count, "a page keeps at most count rows");
        for (size_t k = 0; k < got; k++) {
            cr_assert(!f || !f->has_location || rows[k].location == f->location);
            cr_assert(!f || !f->has_item || rows[k].item == f->item);
            size_t i = item_index(rows[k].item), j = loc_index(rows[k].location);
            if (i < n_items && j < n_locs)
                seen[i * n_locs + j]++;
        }
        st.rows += got;
        st.empty_pages_mid += got == 0 && cursor != 0;
        cr_assert_lt(++st.pages, 10000000, "the listing never ends");
    } while (cursor != 0);
    return st;
}

/* ---- arguments ------------------------------------------------------------ */

Test(level_list_page, refuses_bad_arguments)
{
    inv_engine *e = open_grid(1, 1, 0, 0);
    inv_level_full_row rows[4];
    size_t n = 0;
    uint64_t next = 0;
    inv_level_filter f = {0, 0, false, false, 0};
    cr_expect_eq(inv_level_list_page(NULL, &f, 0, 4, rows, 4, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_list_page(e, &f, 0, 0, rows, 4, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_list_page(e, &f, 0, INV_LIST_COUNT_MAX + 1, rows, 4, &n, &next),
                 INV_EINVALID);
    cr_expect_eq(inv_level_list_page(e, &f, 0, 4, NULL, 4, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_list_page(e, &f, 0, 4, rows, 0, &n, &next), INV_EINVALID);
    cr_expect_eq(inv_level_list_page(e, &f, 0, 4, rows, 4, NULL, &next), INV_EINVALID);
    cr_expect_eq(inv_level_list_page(e, &f, 0, 4, rows, 4, &n, NULL), INV_EINVALID);
    f.updated_since_ms = -1;
    cr_expect_eq(inv_level_list_page(e, &f, 0, 4, rows, 4, &n, &next), INV_EINVALID);
    f = (inv_level_filter){tu_item_id(5), 0, true, false, 0};
    cr_expect_eq(inv_level_list_page(e, &f, 0, 4, rows, 4, &n, &next), INV_ENOTFOUND,
                 "an unknown item");
    f = (inv_level_filter){0, 4242, false, true, 0};
    cr_expect_eq(inv_level_list_page(e, &f, 0, 4, rows, 4, &n, &next), INV_ENOTFOUND,
                 "an unknown location");
    n = 7;
    cr_expect_eq(inv_level_list_page(e, NULL, 0, 4, rows, 4, &n, &next), INV_OK, "no filter");
    cr_expect_eq(n, 1);
    cr_expect_eq(next, 0);
    /* Any cursor is a position: one past every level answers an empty end. */
    cr_expect_eq(inv_level_list_page(e, NULL, UINT64_MAX, 4, rows, 4, &n, &next), INV_OK);
    cr_expect_leq(n, 1);
    inv_close(e);
}

/* ---- rows ----------------------------------------------------------------- */

Test(level_list_page, rows_carry_every_named_quantity_as_get_full_reads_it)
{
    inv_engine *e = open_grid(2, 2, 0, 0);
    uint64_t i0 = tu_item_id(0), l0 = tu_loc_id(0), l1 = tu_loc_id(1);
    tu_set_level(e, i0, l0, 50);
    cr_assert_eq(
        inv_level_move(e, i0, l0, 4, INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_NO_FLOOR, NULL),
        INV_OK);
    cr_assert_eq(
        inv_level_move(e, i0, l0, 3, INV_QTY_AVAILABLE, INV_QTY_INCOMING, INV_NO_FLOOR, NULL),
        INV_OK);
    inv_hold_line line = {i0, l0, 5};
    cr_assert_eq(inv_hold_create(e, "h", 1, 60000, &line, 1, NULL), INV_OK);
    cr_assert_eq(inv_level_set_policy(e, i0, l1, INV_POLICY_CONTINUE, 7), INV_OK);
    inv_level_full_row rows[8];
    size_t n = 0;
    uint64_t next = 1;
    cr_assert_eq(inv_level_list_page(e, NULL, 0, 8, rows, 8, &n, &next), INV_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(next, 0);
    for (size_t k = 0; k < n; k++) {
        inv_level_full want;
        cr_assert_eq(inv_level_get_full(e, rows[k].item, rows[k].location, &want), INV_OK);
        cr_expect(memcmp(want.qty, rows[k].level.qty, sizeof want.qty) == 0, "row %zu's quantities",
                  k);
        cr_expect_eq(rows[k].level.on_hand, want.on_hand);
        cr_expect_eq(rows[k].level.revision, want.revision);
        cr_expect_eq(rows[k].level.policy, want.policy);
        cr_expect_eq(rows[k].level.preorder_limit, want.preorder_limit);
        cr_expect_eq(rows[k].level.updated_at_ms, want.updated_at_ms);
        cr_expect_eq(rows[k].level.created_at_ms, want.created_at_ms);
        cr_expect(rows[k].level.location_active);
        if (rows[k].item == i0 && rows[k].location == l0) {
            cr_expect_eq(rows[k].level.qty[INV_QTY_AVAILABLE], 38);
            cr_expect_eq(rows[k].level.qty[INV_QTY_RESERVED], 5);
            cr_expect_eq(rows[k].level.qty[INV_QTY_DAMAGED], 4);
            cr_expect_eq(rows[k].level.qty[INV_QTY_INCOMING], 3);
        }
        if (rows[k].item == i0 && rows[k].location == l1) {
            cr_expect_eq(rows[k].level.policy, INV_POLICY_CONTINUE);
            cr_expect_eq(rows[k].level.preorder_limit, 7);
        }
    }
    inv_close(e);
}

Test(level_list_page, leaves_out_deleted_levels_and_lists_recreated_ones)
{
    inv_engine *e = open_grid(3, 2, 0, 0);
    cr_assert_eq(inv_level_del(e, tu_item_id(1), tu_loc_id(0)), INV_OK);
    cr_assert_eq(inv_level_del(e, tu_item_id(2), tu_loc_id(1)), INV_OK);
    tu_set_level(e, tu_item_id(2), tu_loc_id(1), 77);
    uint8_t seen[6] = {0};
    walk_stats st = walk(e, NULL, 4, 3, 2, seen);
    cr_expect_eq(st.rows, 5);
    cr_expect_eq(seen[1 * 2 + 0], 0, "a deleted level was listed");
    cr_expect_eq(seen[2 * 2 + 1], 1, "a re-created level is listed once");
    inv_close(e);
}

/* ---- filters -------------------------------------------------------------- */

Test(level_list_page, filters_by_location_by_item_and_by_both)
{
    size_t n_items = 12, n_locs = 9;
    inv_engine *e = open_grid(n_items, n_locs, 0, 0);
    uint8_t seen[12 * 9];
    size_t counts[] = {1, 5, 1000};
    for (size_t c = 0; c < 3; c++) {
        memset(seen, 0, sizeof seen);
        inv_level_filter f = {0, tu_loc_id(4), false, true, 0};
        walk_stats st = walk(e, &f, counts[c], n_items, n_locs, seen);
        cr_expect_eq(st.rows, n_items, "every item has one level at the location");
        for (size_t x = 0; x < n_items * n_locs; x++)
            cr_expect_eq(seen[x], x % n_locs == 4 ? 1 : 0, "location filter: level %zu", x);

        memset(seen, 0, sizeof seen);
        f = (inv_level_filter){tu_item_id(7), 0, true, false, 0};
        st = walk(e, &f, counts[c], n_items, n_locs, seen);
        cr_expect_eq(st.rows, n_locs);
        for (size_t x = 0; x < n_items * n_locs; x++)
            cr_expect_eq(seen[x], x / n_locs == 7 ? 1 : 0, "item filter: level %zu", x);

        memset(seen, 0, sizeof seen);
        f = (inv_level_filter){tu_item_id(7), tu_loc_id(4), true, true, 0};
        st = walk(e, &f, counts[c], n_items, n_locs, seen);
        cr_expect_eq(st.rows, 1);
        cr_expect_eq(seen[7 * n_locs + 4], 1);
    }
    /* A known location without levels lists nothing (not NOTFOUND). */
    cr_assert_eq(inv_location_put(e, 9999, NULL), INV_OK);
    inv_level_filter f = {0, 9999, false, true, 0};
    memset(seen, 0, sizeof seen);
    cr_expect_eq(walk(e, &f, 50, n_items, n_locs, seen).rows, 0);
    inv_close(e);
}

Test(level_list_page, a_filtered_page_may_keep_no_row_and_still_go_on)
{
    size_t n_items = 20, n_locs = 10;
    inv_engine *e = open_grid(n_items, n_locs, 0, 0);
    uint8_t seen[20 * 10] = {0};
    inv_level_filter f = {0, tu_loc_id(3), false, true, 0};
    walk_stats st = walk(e, &f, 1, n_items, n_locs, seen);
    cr_expect_eq(st.rows, n_items);
    /* count 1 visits one level a page: 180 of the 200 visits keep nothing */
    cr_expect_gt(st.empty_pages_mid, 0, "an empty page with a cursor to go on");
    cr_expect_geq(st.pages, n_items * n_locs / 2, "count bounds visits, not rows");
    inv_close(e);
}

/* updated_at is kept in whole seconds: a filter time in the same second as
 * a level's update keeps it; the next second does not. The bounds come from
 * the levels' own timestamps, so the test never depends on the clock. */
Test(level_list_page, updated_since_compares_whole_seconds)
{
    size_t n_items = 6, n_locs = 5;
    inv_engine *e = open_grid(n_items, n_locs, 0, 0);
    int64_t newest = 0, oldest = INT64_MAX;
    for (size_t i = 0; i < n_items; i++)
        for (size_t j = 0; j < n_locs; j++) {
            inv_level_full f;
            cr_assert_eq(inv_level_get_full(e, tu_item_id(i), tu_loc_id(j), &f), INV_OK);
            cr_assert_gt(f.updated_at_ms, 0);
            cr_assert_eq(f.updated_at_ms % 1000, 0, "whole seconds");
            newest = f.updated_at_ms > newest ? f.updated_at_ms : newest;
            oldest = f.updated_at_ms < oldest ? f.updated_at_ms : oldest;
        }
    uint8_t seen[6 * 5];
    size_t at_newest = 0;
    for (size_t i = 0; i < n_items; i++)
        for (size_t j = 0; j < n_locs; j++) {
            inv_level_full f;
            cr_assert_eq(inv_level_get_full(e, tu_item_id(i), tu_loc_id(j), &f), INV_OK);
            at_newest += f.updated_at_ms == newest;
        }
    int64_t cases[][2] = {
        /* since, how many levels it keeps (-1: at_newest) */
        {1, (int64_t)(n_items * n_locs)},
        {999, (int64_t)(n_items * n_locs)},
        {oldest, (int64_t)(n_items * n_locs)},
        {newest, -1},
        {newest + 1, -1},
        {newest + 999, -1},
        {newest + 1000, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(seen, 0, sizeof seen);
        inv_level_filter f = {0, 0, false, false, cases[c][0]};
        walk_stats st = walk(e, &f, 7, n_items, n_locs, seen);
        size_t want = cases[c][1] < 0 ? at_newest : (size_t)cases[c][1];
        cr_expect_eq(st.rows, want, "since %lld keeps %zu, want %zu", (long long)cases[c][0],
                     st.rows, want);
    }
    /* Combined with a location: both filters hold. */
    memset(seen, 0, sizeof seen);
    inv_level_filter f = {0, tu_loc_id(2), false, true, newest + 1000};
    cr_expect_eq(walk(e, &f, 7, n_items, n_locs, seen).rows, 0);
    f.updated_since_ms = 1;
    cr_expect_eq(walk(e, &f, 7, n_items, n_locs, seen).rows, n_items);
    inv_close(e);
}

/* ---- cursors -------------------------------------------------------------- */

Test(level_list_page, cursors_round_trip_and_a_page_repeats_exactly)
{
    size_t n_items = 30, n_locs = 20;
    inv_engine *e = open_grid(n_items, n_locs, 0, 0);
    size_t counts[] = {1, 7, 100, INV_LIST_COUNT_MAX};
    static uint8_t seen[30 * 20];
    for (size_t c = 0; c < 4; c++) {
        memset(seen, 0, sizeof seen);
        walk_stats st = walk(e, NULL, counts[c], n_items, n_locs, seen);
        cr_expect_eq(st.rows, n_items * n_locs);
        for (size_t x = 0; x < n_items * n_locs; x++)
            cr_assert_eq(seen[x], 1, "level %zu seen %u times (count %zu)", x, seen[x], counts[c]);
    }
    /* The same cursor, nothing changed: the same page. */
    static inv_level_full_row a[INV_LIST_COUNT_MAX], b[INV_LIST_COUNT_MAX];
    uint64_t cursor = 0, next_a = 0, next_b = 0;
    size_t na = 0, nb = 0;
    cr_assert_eq(inv_level_list_page(e, NULL, 0, 37, a, 37, &na, &cursor), INV_OK);
    cr_assert_neq(cursor, 0);
    cr_assert_eq(inv_level_list_page(e, NULL, cursor, 50, a, 50, &na, &next_a), INV_OK);
    cr_assert_eq(inv_level_list_page(e, NULL, cursor, 50, b, 50, &nb, &next_b), INV_OK);
    cr_expect_eq(na, nb);
    cr_expect_eq(next_a, next_b);
    for (size_t k = 0; k < na && k < nb; k++)
        cr_expect(a[k].item == b[k].item && a[k].location == b[k].location &&
                      a[k].level.revision == b[k].level.revision,
                  "row %zu differs", k);
    inv_close(e);
}

Test(level_list_page, a_cap_below_count_bounds_the_page)
{
    inv_engine *e = open_grid(10, 10, 0, 0);
    inv_level_full_row rows[3];
    size_t n = 0, total = 0, pages = 0;
    uint64_t cursor = 0;
    do {
        cr_assert_eq(inv_level_list_page(e, NULL, cursor, 100, rows, 3, &n, &cursor), INV_OK);
        cr_assert_leq(n, 3);
        total += n;
        cr_assert_lt(++pages, 1000);
    } while (cursor != 0);
    cr_expect_eq(total, 100);
    inv_close(e);
}

/* ---- exactness across a concurrent growth ----------------------------------
 * Thread 0 lists (unfiltered, or at one location) pass after pass, with
 * each count in turn, until the other threads have created every level on
 * the extra items (growing the table several times); every level of the
 * grid, present for the whole listing, must come exactly once per pass. */

#define GROW_WRITERS 3

typedef struct {
    inv_engine *e;
    size_t n_items, n_locs, extra_items;
    size_t counts[4];
    _Atomic int listing_done;
    _Atomic size_t created;
    bool by_location;
} grow_ctx;

static void grow_list(grow_ctx *g)
{
    uint8_t *seen = calloc(g->n_items * g->n_locs, 1);
    TU_CHECK(seen != NULL, "calloc");
    if (!seen)
        return;
    static inv_level_full_row rows[INV_LIST_COUNT_MAX];
    size_t total = g->extra_items * g->n_locs;
    /* relaxed: a count; the passes go on until it is complete (bounded:
     * the writers create a fixed number of levels). */
    for (size_t pass = 0;
         pass < 4 || atomic_load_explicit(&g->created, memory_order_relaxed) < total; pass++) {
        size_t c = pass % 4;
        memset(seen, 0, g->n_items * g->n_locs);
        inv_level_filter f = {0, tu_loc_id(1), false, g->by_location, 0};
        uint64_t cursor = 0;
        size_t pages = 0;
        do {
            size_t got = 0;
            int rc = inv_level_list_page(g->e, &f, cursor, g->counts[c], rows, INV_LIST_COUNT_MAX,
                                         &got, &cursor);
            TU_CHECK(rc == INV_OK, "page: %s", inv_strerror(rc));
            if (rc != INV_OK)
                break;
            for (size_t k = 0; k < got; k++) {
                size_t i = item_index(rows[k].item), j = loc_index(rows[k].location);
                TU_CHECK(!g->by_location || j == 1, "filter let location %zu through", j);
                TU_CHECK(rows[k].level.revision >= 1, "a row without revision");
                if (i < g->n_items)
                    seen[i * g->n_locs + j]++;
            }
        } while (cursor != 0 && ++pages < 10000000);
        for (size_t x = 0; x < g->n_items * g->n_locs; x++) {
            size_t want = !g->by_location || x % g->n_locs == 1;
            TU_CHECK(seen[x] == want, "level %zu seen %u times (count %zu)", x, seen[x],
                     g->counts[c]);
        }
    }
    free(seen);
    /* release: nothing to publish but the end; pairs with the writers' acquire. */
    atomic_store_explicit(&g->listing_done, 1, memory_order_release);
}

static void grow_write(grow_ctx *g, size_t w)
{
    size_t total = g->extra_items * g->n_locs;
    /* Writer w creates the extra levels of its share, then, until the
     * listing is done, adjusts the grid's levels (revisions move on). */
    for (size_t x = w; x < total; x += GROW_WRITERS) {
        size_t i = g->n_items + x / g->n_locs, j = x % g->n_locs;
        int rc = inv_level_set(g->e, tu_item_id(i), tu_loc_id(j), 1, 0, NULL);
        TU_CHECK(rc == INV_OK, "create: %s", inv_strerror(rc));
        /* relaxed: a count read after the join. */
        atomic_fetch_add_explicit(&g->created, 1, memory_order_relaxed);
    }
    tu_rng r = tu_rng_seed(w);
    /* acquire: pairs with the lister's release of listing_done. */
    while (!atomic_load_explicit(&g->listing_done, memory_order_acquire)) {
        size_t i = tu_rng_below(&r, g->n_items), j = tu_rng_below(&r, g->n_locs);
        int rc = inv_level_adjust(g->e, tu_item_id(i), tu_loc_id(j), 1, INV_NO_FLOOR, NULL);
        TU_CHECK(rc == INV_OK, "adjust: %s", inv_strerror(rc));
    }
}

static void grow_thread(void *p, size_t index)
{
    grow_ctx *g = p;
    if (index == 0)
        grow_list(g);
    else
        grow_write(g, index - 1);
}

static void list_while_growing(bool by_location)
{
    static grow_ctx g;
    memset(&g, 0, sizeof g);
    g.n_items = (size_t)tu_iters_min(40, 8);
    g.n_locs = 25;
    /* enough creations for several growths past TABLE_CLAIM_SLACK */
    g.extra_items = (size_t)tu_iters_min(400, 160);
    g.counts[0] = 1;
    g.counts[1] = 13;
    g.counts[2] = 200;
    g.counts[3] = INV_LIST_COUNT_MAX;
    g.by_location = by_location;
    g.e = open_grid(g.n_items, g.n_locs, g.extra_items, 1);
    inv_stats before = tu_stats_of(g.e);
    tu_run_threads(1 + GROW_WRITERS, grow_thread, &g);
    tu_assert_no_failures();
    inv_stats after = tu_stats_of(g.e);
    cr_expect_eq(atomic_load_explicit(&g.created, memory_order_relaxed), g.extra_items * g.n_locs);
    cr_expect_gt(after.table_resizes, before.table_resizes, "the table grew");
    cr_expect_eq(after.levels, (g.n_items + g.extra_items) * g.n_locs);
    inv_close(g.e);
}

Test(level_list_page, every_level_present_comes_once_while_the_table_grows)
{
    list_while_growing(false);
}

Test(level_list_page, a_location_filter_stays_exact_while_the_table_grows)
{
    list_while_growing(true);
}

/* ---- consistency of a row ---------------------------------------------------
 * Movers shift units between named quantities that are all on hand
 * (available, damaged, safety_stock, quality_control): on_hand never
 * changes, so a row pieced together from two states would show it. */

#define MOVERS 3
#define MOVE_ON_HAND 1000

typedef struct {
    inv_engine *e;
    size_t n_items, n_locs;
    _Atomic int done;
} move_ctx;

static void move_thread(void *p, size_t index)
{
    move_ctx *m = p;
    if (index == 0) {
        static inv_level_full_row rows[INV_LIST_COUNT_MAX];
        for (uint64_t pass = 0; pass < tu_iters_min(200, 20); pass++) {
            uint64_t cursor = 0;
            do {
                size_t got = 0;
                int rc = inv_level_list_page(m->e, NULL, cursor, 16, rows, INV_LIST_COUNT_MAX, &got,
                                             &cursor);
                TU_CHECK(rc == INV_OK, "page: %s", inv_strerror(rc));
                for (size_t k = 0; k < got; k++) {
                    const inv_level_full *l = &rows[k].level;
                    int64_t sum = l->qty[INV_QTY_AVAILABLE] + l->qty[INV_QTY_DAMAGED] +
                                  l->qty[INV_QTY_SAFETY_STOCK] + l->qty[INV_QTY_QUALITY_CONTROL];
                    TU_CHECK(l->on_hand == MOVE_ON_HAND && sum == MOVE_ON_HAND,
                             "a torn row: on_hand %lld, sum %lld", (long long)l->on_hand,
                             (long long)sum);
                }
            } while (cursor != 0);
        }
        /* release: pairs with the movers' acquire; only the end is told. */
        atomic_store_explicit(&m->done, 1, memory_order_release);
        return;
    }
    static const inv_qty_name names[4] = {INV_QTY_AVAILABLE, INV_QTY_DAMAGED, INV_QTY_SAFETY_STOCK,
                                          INV_QTY_QUALITY_CONTROL};
    tu_rng r = tu_rng_seed(index);
    /* acquire: pairs with the lister's release of done. */
    while (!atomic_load_explicit(&m->done, memory_order_acquire)) {
        size_t i = tu_rng_below(&r, m->n_items), j = tu_rng_below(&r, m->n_locs);
        size_t from = tu_rng_below(&r, 4), to = (from + 1 + tu_rng_below(&r, 3)) % 4;
        int rc = inv_level_move(m->e, tu_item_id(i), tu_loc_id(j), 1 + (int64_t)tu_rng_below(&r, 5),
                                names[from], names[to], INV_NO_FLOOR, NULL);
        TU_CHECK(rc == INV_OK || rc == INV_EINSUFFICIENT, "move: %s", inv_strerror(rc));
    }
}

Test(level_list_page, every_row_is_one_state_of_its_level_under_concurrent_moves)
{
    move_ctx m = {NULL, 4, 4, 0};
    m.e = tu_open_engine(m.n_items, m.n_locs, 0);
    for (size_t i = 0; i < m.n_items; i++)
        for (size_t j = 0; j < m.n_locs; j++)
            tu_set_level(m.e, tu_item_id(i), tu_loc_id(j), MOVE_ON_HAND);
    tu_run_threads(1 + MOVERS, move_thread, &m);
    tu_assert_no_failures();
    inv_close(m.e);
}

/* ---- create-only levels --------------------------------------------------- */

Test(level_create, creates_once_then_answers_exists_with_the_level)
{
    inv_engine *e = tu_open_engine(2, 2, 0);
    uint64_t item = tu_item_id(0), loc = tu_loc_id(0);
    inv_level lv = {0, 0, 0};
    cr_assert_eq(inv_level_create(e, item, loc, 12, &lv), INV_OK);
    cr_expect_eq(lv.available, 12);
    cr_expect_geq(lv.revision, 1);
    uint64_t rev = lv.revision;
    inv_level again = {0, 0, 0};
    cr_expect_eq(inv_level_create(e, item, loc, 99, &again), INV_EEXISTS);
    cr_expect_eq(again.available, 12, "EXISTS reports the level as it is");
    cr_expect_eq(again.revision, rev);
    cr_expect_eq(tu_level_of(e, item, loc).available, 12, "a refused create changes nothing");
    cr_expect_eq(tu_level_of(e, item, loc).revision, rev);
    cr_expect_eq(inv_level_create(e, item, loc, 99, NULL), INV_EEXISTS, "out may be NULL");
    /* After a deletion the level may be created again, revisions going on. */
    cr_assert_eq(inv_level_del(e, item, loc), INV_OK);
    cr_expect_eq(inv_level_create(e, item, loc, 5, &lv), INV_OK);
    cr_expect_eq(lv.available, 5);
    cr_expect_gt(lv.revision, rev);
    inv_close(e);
}

Test(level_create, refuses_unknown_ids_bad_quantities_and_inactive_locations)
{
    inv_engine *e = tu_open_engine(1, 2, 0);
    uint64_t item = tu_item_id(0);
    cr_expect_eq(inv_level_create(NULL, item, tu_loc_id(0), 1, NULL), INV_EINVALID);
    cr_expect_eq(inv_level_create(e, 4242, tu_loc_id(0), 1, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_create(e, item, 4242, 1, NULL), INV_ENOTFOUND);
    cr_expect_eq(inv_level_create(e, item, tu_loc_id(0), INV_QTY_MAX + 1, NULL), INV_ELIMIT);
    cr_expect_eq(inv_level_create(e, item, tu_loc_id(0), -INV_QTY_MAX - 1, NULL), INV_ELIMIT);
    inv_location_fields off;
    memset(&off, 0, sizeof off);
    off.mask = INV_LOC_ACTIVE;
    off.active = false;
    cr_assert_eq(inv_location_put(e, tu_loc_id(1), &off), INV_OK);
    cr_expect_eq(inv_level_create(e, item, tu_loc_id(1), 1, NULL), INV_EINVALID);
    inv_level lv;
    cr_expect_eq(inv_level_get(e, item, tu_loc_id(1), &lv), INV_ENOTFOUND, "nothing created");
    cr_expect_eq(inv_level_create(e, item, tu_loc_id(0), -INV_QTY_MAX, &lv), INV_OK);
    cr_expect_eq(lv.available, -INV_QTY_MAX);
    inv_close(e);
}

Test(level_create, survives_a_reopen)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "level-create");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    cr_assert_eq(inv_location_create(e, 7, NULL), INV_OK);
    cr_assert_eq(inv_item_create(e, 8, NULL), INV_OK);
    cr_assert_eq(inv_level_create(e, 8, 7, 33, NULL), INV_OK);
    cr_assert_eq(inv_level_create(e, 8, 7, 44, NULL), INV_EEXISTS);
    inv_close(e);
    e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    cr_expect_eq(tu_level_of(e, 8, 7).available, 33);
    cr_expect_eq(inv_item_create(e, 8, NULL), INV_EEXISTS, "the item came back");
    cr_expect_eq(inv_location_create(e, 7, NULL), INV_EEXISTS, "the location came back");
    cr_expect_eq(inv_level_create(e, 8, 7, 1, NULL), INV_EEXISTS, "the level came back");
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

/* ---- NX races: 8 creators of one level, item or location --------------------- */

typedef struct {
    inv_engine *e;
    uint64_t round_id; /* the level's item, or the item / location id */
    int rc[NX_THREADS];
    int kind; /* 0: level, 1: item, 2: location */
} nx_ctx;

static void nx_thread(void *p, size_t index)
{
    nx_ctx *c = p;
    if (c->kind == 0) {
        c->rc[index] = inv_level_create(c->e, c->round_id, tu_loc_id(0), (int64_t)index + 1, NULL);
    } else if (c->kind == 1) {
        inv_item_fields f;
        memset(&f, 0, sizeof f);
        f.mask = INV_ITEM_SKU | INV_ITEM_TRACKED;
        f.tracked = true;
        snprintf(f.sku, sizeof f.sku, "sku-%llu-%zu", (unsigned long long)c->round_id, index);
        c->rc[index] = inv_item_create(c->e, c->round_id, &f);
    } else {
        inv_location_fields f;
        memset(&f, 0, sizeof f);
        f.mask = INV_LOC_NAME;
        snprintf(f.name, sizeof f.name, "loc-%zu", index);
        c->rc[index] = inv_location_create(c->e, c->round_id, &f);
    }
}

/* The index of the one winner among rc[] (asserted: exactly one INV_OK,
 * every other INV_EEXISTS). */
static size_t one_winner(const nx_ctx *c)
{
    size_t wins = 0, winner = NX_THREADS;
    for (size_t t = 0; t < NX_THREADS; t++) {
        if (c->rc[t] == INV_OK) {
            wins++;
            winner = t;
        } else {
            cr_assert_eq(c->rc[t], INV_EEXISTS, "thread %zu: %s", t, inv_strerror(c->rc[t]));
        }
    }
    cr_assert_eq(wins, 1, "%zu creators won", wins);
    return winner;
}

Test(nx_race, exactly_one_of_eight_creates_a_level)
{
    size_t rounds = (size_t)tu_iters_min(200, 20);
    inv_engine *e = tu_open_engine(rounds, 1, 1); /* capacity 1: creations grow the table */
    static nx_ctx c;
    for (size_t r = 0; r < rounds; r++) {
        memset(&c, 0, sizeof c);
        c.e = e;
        c.round_id = tu_item_id(r);
        c.kind = 0;
        tu_run_threads(NX_THREADS, nx_thread, &c);
        size_t w = one_winner(&c);
        inv_level lv = tu_level_of(e, c.round_id, tu_loc_id(0));
        cr_assert_eq(lv.available, (int64_t)w + 1, "the level holds the winner's quantity");
    }
    cr_expect_eq(tu_stats_of(e).levels, rounds);
    inv_close(e);
}

Test(nx_race, exactly_one_of_eight_creates_an_item_and_losers_claim_no_sku)
{
    size_t rounds = (size_t)tu_iters_min(100, 10);
    inv_engine *e = tu_open_engine(0, 0, 0);
    static nx_ctx c;
    for (size_t r = 0; r < rounds; r++) {
        memset(&c, 0, sizeof c);
        c.e = e;
        c.round_id = 500 + r;
        c.kind = 1;
        tu_run_threads(NX_THREADS, nx_thread, &c);
        size_t w = one_winner(&c);
        inv_item it;
        cr_assert_eq(inv_item_get(e, c.round_id, &it), INV_OK);
        char want[64];
        snprintf(want, sizeof want, "sku-%llu-%zu", (unsigned long long)c.round_id, w);
        cr_assert_str_eq(it.fields.sku, want, "the item is the winner's");
        for (size_t t = 0; t < NX_THREADS; t++) {
            char sku[64];
            uint64_t owner = 0;
            snprintf(sku, sizeof sku, "sku-%llu-%zu", (unsigned long long)c.round_id, t);
            int rc = inv_item_by_sku(e, sku, &owner);
            cr_assert_eq(rc, t == w ? INV_OK : INV_ENOTFOUND, "sku of thread %zu: %s", t,
                         inv_strerror(rc));
        }
    }
    cr_expect_eq(tu_stats_of(e).items, rounds);
    inv_close(e);
}

Test(nx_race, exactly_one_of_eight_creates_a_location)
{
    size_t rounds = (size_t)tu_iters_min(100, 10);
    inv_engine *e = tu_open_engine(0, 0, 0);
    static nx_ctx c;
    for (size_t r = 0; r < rounds; r++) {
        memset(&c, 0, sizeof c);
        c.e = e;
        c.round_id = 900 + r;
        c.kind = 2;
        tu_run_threads(NX_THREADS, nx_thread, &c);
        size_t w = one_winner(&c);
        inv_location l;
        cr_assert_eq(inv_location_get(e, c.round_id, &l), INV_OK);
        char want[32];
        snprintf(want, sizeof want, "loc-%zu", w);
        cr_assert_str_eq(l.fields.name, want);
    }
    cr_expect_eq(tu_stats_of(e).locations, rounds);
    inv_close(e);
}

/* ---- create-only items and locations, alone ------------------------------------ */

Test(item_create, refuses_an_existing_item_and_changes_nothing)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    f.mask = INV_ITEM_SKU;
    strcpy(f.sku, "A");
    cr_assert_eq(inv_item_create(e, 1, &f), INV_OK);
    strcpy(f.sku, "B");
    cr_expect_eq(inv_item_create(e, 1, &f), INV_EEXISTS);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 1, &it), INV_OK);
    cr_expect_str_eq(it.fields.sku, "A");
    uint64_t owner;
    cr_expect_eq(inv_item_by_sku(e, "B", &owner), INV_ENOTFOUND, "the refused SKU is not taken");
    /* Another item's SKU: EXISTS as for inv_item_put, nothing created. */
    strcpy(f.sku, "A");
    cr_expect_eq(inv_item_create(e, 2, &f), INV_EEXISTS);
    cr_expect_eq(inv_item_get(e, 2, &it), INV_ENOTFOUND);
    /* Deleted: created again. */
    cr_assert_eq(inv_item_del(e, 1), INV_OK);
    strcpy(f.sku, "C");
    cr_expect_eq(inv_item_create(e, 1, &f), INV_OK);
    cr_expect_eq(inv_item_create(NULL, 1, &f), INV_EINVALID);
    f.mask = INV_ITEM_COST;
    strcpy(f.cost, "x");
    cr_expect_eq(inv_item_create(e, 3, &f), INV_EINVALID, "fields are checked as for a put");
    inv_close(e);
}
