/*
 * level_list.c — filtered cursor listings of levels (inv_level_list_page):
 * every level, a location's levels, an item's, those updated since a time;
 * each row with every named quantity.
 *
 * A page is one table_scan over the levels table (the cursor is a hash
 * position, SCAN style), so what table_scan keeps holds here: a level
 * present for the whole scan is visited exactly once, across growth. A
 * filter then keeps some of the visited levels: count bounds the levels a
 * page visits, never the rows it keeps, so a page may keep none and still
 * carry a cursor that is not 0.
 *
 * Invariants:
 *  - a kept row is one state of its level: it is read whole by
 *    level_read_full (level_cold.c: the hot word and the cold part read
 *    between two equal loads of the word, LOCK clear), never pieced
 *    together from the scan's word and a later cold read;
 *  - a level deleted between its visit and its read is left out (it was not
 *    present for the whole scan);
 *  - reads only: no lock, no write, no wait except level_read_full's on a
 *    cold change in flight; memory: what table_scan allocates for a page.
 */
#include "catalog.h"
#include "epoch.h"
#include "level.h"

#include <assert.h>

/* Level timestamps are whole Unix seconds (level_word.h: created_s,
 * updated_s); a filter in ms compares at that resolution. */
#define LEVEL_LIST_MS_PER_S 1000

typedef struct {
    inv_engine *e;
    const inv_level_filter *f;
    int64_t since_ms; /* the filter's time cut down to its second (0: none) */
    inv_level_full_row *rows;
    size_t cap, n;
} page_ctx;

static bool keys_match(const inv_level_filter *f, uint64_t item, uint64_t loc)
{
    assert(f != NULL);
    return (!f->has_item || f->item == item) && (!f->has_location || f->location == loc);
}

/* table_scan's visitor: keeps (item, loc) when the filter does, read whole.
 * The visited word v is not used: the row is the consistent full read. */
static int keep_visited(void *p, uint64_t item, uint64_t loc, table_word v)
{
    page_ctx *c = p;
    (void)v;
    assert(c->n < c->cap); /* table_scan visits at most cap levels */
    if (!keys_match(c->f, item, loc))
        return 0;
    inv_level_full_row *row = &c->rows[c->n];
    assert(c->e != NULL && c->rows != NULL);
    if (level_read_full(c->e, item, loc, &row->level) != INV_OK)
        return 0; /* deleted since it was visited */
    if (c->since_ms && row->level.updated_at_ms < c->since_ms)
        return 0;
    assert(row->level.revision >= 1);
    row->item = item;
    row->location = loc;
    c->n++;
    assert(c->n <= c->cap);
    return 0;
}

/* The filter's arguments: INV_OK, INV_EINVALID or, for an item or a
 * location the catalog does not know, INV_ENOTFOUND (inside an epoch
 * section). */
static int filter_check(inv_engine *e, const inv_level_filter *f)
{
    assert(e != NULL && f != NULL);
    if (f->updated_since_ms < 0)
        return INV_EINVALID;
    if (f->has_item && !catalog_item_exists(&e->cat, f->item, NULL))
        return INV_ENOTFOUND;
    if (f->has_location && !catalog_location_exists(&e->cat, f->location))
        return INV_ENOTFOUND;
    assert(f->updated_since_ms >= 0);
    return INV_OK;
}

int inv_level_list_page(inv_engine *e, const inv_level_filter *filter, uint64_t cursor,
                        size_t count, inv_level_full_row *rows, size_t cap, size_t *n_out,
                        uint64_t *next_cursor)
{
    static const inv_level_filter none = {0, 0, false, false, 0};
    if (!e || !rows || cap == 0 || !n_out || !next_cursor || count == 0 ||
        count > INV_LIST_COUNT_MAX)
        return INV_EINVALID;
    const inv_level_filter *f = filter ? filter : &none;
    /* Whole seconds: a change in the same second as the filter's time
     * carries that second, and is kept. */
    int64_t since_ms = f->updated_since_ms / LEVEL_LIST_MS_PER_S * LEVEL_LIST_MS_PER_S;
    assert(since_ms <= f->updated_since_ms || f->updated_since_ms < 0);
    page_ctx c = {e, f, since_ms, rows, count < cap ? count : cap, 0};
    uint64_t next = 0;
    epoch_enter();
    int rc = filter_check(e, f);
    if (rc == INV_OK)
        rc = table_scan(&e->levels, cursor, c.cap, keep_visited, &c, &next);
    epoch_exit();
    if (rc != INV_OK)
        return rc;
    assert(c.n <= c.cap && c.n <= count);
    *n_out = c.n;
    *next_cursor = next;
    return INV_OK;
}
